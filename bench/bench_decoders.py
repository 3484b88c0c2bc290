"""Layer 2: each protocol core on each frame kind, with two references: orjson + field access,
and msgspec decoding into typed Structs (the strongest Python decoder, issue #13).

One benchmarked call decodes every frame of a :class:`~fastfeed.bench.payloads.FrameSet`
(32 distinct frames) and drains the rings; ``extra_info["events_per_call"]`` turns the mean time
into events/s.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from conftest import per_event  # type: ignore[import-not-found]

from fastfeed.bench import msgspec_peer
from fastfeed.bench.payloads import DX_CHANNELS, POLYGON_KINDS, FrameSet, dxlink_feed_config
from fastfeed.bench.peers import dx_extract, pg_extract


def _dx_decoder(fs: FrameSet) -> Any:
    fastfeed = pytest.importorskip("fastfeed")
    try:
        dec = fastfeed.DXLinkDecoder()
    except Exception as exc:  # not built / not landed yet  # noqa: BLE001 - the bench reports, never crashes
        pytest.skip(f"fastfeed.DXLinkDecoder unavailable: {exc}")
    for t in sorted(set(fs.event_types)):
        dec.feed(dxlink_feed_config(t, DX_CHANNELS[t]))
    return dec


def _pg_decoder(fs: FrameSet) -> Any:
    fastfeed = pytest.importorskip("fastfeed")
    try:
        cls = fastfeed.PolygonDecoder
        return cls(cluster=POLYGON_KINDS[fs.kind][0])
    except Exception as exc:  # noqa: BLE001 - the bench reports, never crashes
        pytest.skip(f"fastfeed.PolygonDecoder unavailable: {exc}")


def _bench_feed_drain(benchmark: Any, dec: Any, fs: FrameSet, types: list[str]) -> None:
    """Feed every frame and drain every type after each one; checks the event count."""
    frames = fs.frames

    def run() -> int:
        n = 0
        for f in frames:
            dec.feed(f)
            for t in types:
                n += len(dec.drain(t))
        return n

    assert run() == fs.total_events
    per_event(benchmark, fs.total_events, fs.total_bytes)
    assert benchmark(run) == fs.total_events


@pytest.mark.layer("dxlink-core")
def test_dxlink_decoder(benchmark: Any, dxlink_frames: FrameSet) -> None:
    fs = dxlink_frames
    _bench_feed_drain(benchmark, _dx_decoder(fs), fs, sorted(set(fs.event_types)))


@pytest.mark.layer("polygon-core")
def test_polygon_decoder(benchmark: Any, polygon_frames: FrameSet) -> None:
    fs = polygon_frames
    types = ["XL2"] if POLYGON_KINDS[fs.kind][0] == "crypto" else ["T", "Q"]
    _bench_feed_drain(benchmark, _pg_decoder(fs), fs, types)


@pytest.mark.layer("reference")
def test_orjson_dxlink_reference(benchmark: Any, dxlink_frames: FrameSet) -> None:
    fs = dxlink_frames
    loads = orjson.loads
    per_event(benchmark, fs.total_events, fs.total_bytes)
    assert benchmark(lambda: sum(dx_extract(loads(f)) for f in fs.frames)) == fs.total_events


@pytest.mark.layer("reference")
def test_orjson_polygon_reference(benchmark: Any, polygon_frames: FrameSet) -> None:
    fs = polygon_frames
    loads = orjson.loads
    per_event(benchmark, fs.total_events, fs.total_bytes)
    assert benchmark(lambda: sum(pg_extract(loads(f)) for f in fs.frames)) == fs.total_events


def _bench_decode_each(benchmark: Any, decode: Any, fs: FrameSet) -> None:
    """Decode every frame into a list of objects; checks the event count."""
    frames = fs.frames

    def run() -> int:
        n = 0
        for f in frames:
            n += len(decode(f))
        return n

    assert run() == fs.total_events
    per_event(benchmark, fs.total_events, fs.total_bytes)
    assert benchmark(run) == fs.total_events


@pytest.mark.layer("reference")
def test_msgspec_dxlink_reference(benchmark: Any, dxlink_frames: FrameSet) -> None:
    pytest.importorskip("msgspec")
    _bench_decode_each(benchmark, msgspec_peer.dxlink_decoder(), dxlink_frames)


@pytest.mark.layer("reference")
def test_msgspec_polygon_reference(benchmark: Any, polygon_frames: FrameSet) -> None:
    pytest.importorskip("msgspec")
    cluster = POLYGON_KINDS[polygon_frames.kind][0]
    _bench_decode_each(benchmark, msgspec_peer.polygon_decoder(cluster), polygon_frames)
