"""SDK-faithful tastytrade events (``listen(tastytrade.dxfeed.Quote)``) vs the SDK's own parsing.

In-process, over the same 100-event COMPACT frames (no socket): tastytrade 13.2.3's receive work
(``json.loads`` + ``Event.from_stream``, pydantic validation of every field) against fastfeed's
decoder + lazy SDK classes, with no field read, with the two prices read (``Decimal``), and with
``model_dump()`` of every event (every field converted). Run::

    pytest bench/bench_sdk_events.py --benchmark-only -p no:cacheprovider
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import per_event  # type: ignore[import-not-found]

td = pytest.importorskip("tastytrade.dxfeed")
pytest.importorskip("fastfeed._native.lazymodel", reason="fastfeed is not built")

from fastfeed import DXLinkDecoder
from fastfeed._native.lazymodel import LazyBatch
from fastfeed._sdk_events import sdk_class
from fastfeed.bench.payloads import dxlink_feed_config, dxlink_frames

KINDS = {"quote100": ("bid_price", "ask_price"), "greeks100": ("price", "delta")}


def _frames(kind: str) -> tuple[str, list[bytes], int]:
    pairs = dxlink_frames(kind, n_distinct=8)
    etype = pairs[0][0]
    frames = [f for _, f in pairs]
    n = sum(len(json.loads(f)["data"][1]) for f in frames) // len(td.__dict__[etype].model_fields)
    return etype, frames, n


def _fastfeed(kind: str, reads: str) -> tuple[Any, int]:
    etype, frames, n = _frames(kind)
    model = sdk_class(etype)
    channel = json.loads(frames[0])["channel"]
    dec = DXLinkDecoder()
    dec.feed(dxlink_feed_config(etype, channel))
    a, b = KINDS[kind]

    def run() -> int:
        for f in frames:
            dec.feed(f)
        evs = LazyBatch(dec.drain(etype), model)
        if reads == "none":
            return sum(1 for _ in evs)
        if reads == "prices":
            return sum(1 for e in evs if getattr(e, a) is not None and getattr(e, b) is not None)
        return sum(1 for e in evs if e.model_dump())

    return run, n


def _sdk(kind: str, reads: str) -> tuple[Any, int]:
    etype, frames, n = _frames(kind)
    cls = getattr(td, etype)
    loads = json.loads

    def run() -> int:
        k = 0
        for f in frames:
            evs = cls.from_stream(loads(f)["data"][1])
            k += len(evs) if reads != "dump" else sum(1 for e in evs if e.model_dump())
        return k

    return run, n


@pytest.mark.layer("sdk-events")
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("reads", ["none", "prices", "dump"])
def test_fastfeed_sdk_events(benchmark: Any, kind: str, reads: str) -> None:
    run, n = _fastfeed(kind, reads)
    assert run() == n
    per_event(benchmark, n)
    benchmark(run)


@pytest.mark.layer("sdk-events")
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("reads", ["none", "dump"])
def test_tastytrade_from_stream(benchmark: Any, kind: str, reads: str) -> None:
    run, n = _sdk(kind, reads)
    assert run() > 0          # the SDK drops events with NaN prices: fewer than n
    per_event(benchmark, n)
    benchmark(run)
