"""Conformance suite fixtures: quick backoff, loop-error capture. Servers: ``ffservers.py``."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small websockets-style backoff so the fault tests stay quick."""
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_INITIAL_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MIN_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MAX_DELAY", "0.2")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_FACTOR", "2")


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the loop's exception handler (e.g. "Future exception was never retrieved");
    the test checks it after ``gc.collect()``."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    try:
        yield seen
    finally:
        gc.collect()
        loop.set_exception_handler(old)
