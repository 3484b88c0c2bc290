"""``fastfeed.run``: run a coroutine on uvloop (the recommended loop), without side effects.

Importing fastfeed never changes the process-wide event-loop policy; the streamers work on any
asyncio loop. ``fastfeed.run(main())`` is the one-line way to get uvloop (``uvloop.run`` under the
hood); without uvloop installed it falls back to ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run ``main`` to completion on a new uvloop event loop (``asyncio.run`` without uvloop).

    Like ``asyncio.run``: creates the loop, runs ``main``, cancels what is left, closes the loop.
    The global event-loop policy is not touched.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(main, debug=debug)
    with asyncio.Runner(debug=debug, loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
