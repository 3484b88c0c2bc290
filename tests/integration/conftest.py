"""Fixtures shared by the hub's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_hub_feeds import FeedRig


@pytest.fixture
async def frig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FeedRig]:
    """A FeedRig (hub and consumer processes) stopped after the test."""
    monkeypatch.setenv("FASTFEED_HUB_DIR", str(tmp_path))   # for consumers in this process
    r = FeedRig(tmp_path)
    try:
        yield r
    finally:
        await r.stop()
