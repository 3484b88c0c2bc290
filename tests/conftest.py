"""Event loops for the async tests.

fastfeed never installs uvloop itself (no global policy at import); the suite runs on uvloop,
the loop the README recommends, and the lifecycle conformance suite (``tests/conformance``) on
both uvloop and the plain asyncio loop, since the streamers must work on either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import settings

# No per-example deadline: the property tests check values, not speed, and a loaded CI machine
# (2 shared cores) must not turn a slow example into a failure.
settings.register_profile("fastfeed", deadline=None)
settings.load_profile("fastfeed")


def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    import uvloop

    if "conformance" in item.path.parts:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}
