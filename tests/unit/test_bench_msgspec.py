"""The bench's msgspec baseline decodes the same values as fastfeed, field for field.

The ``msgspec-typed`` rows (issue #13) are only a fair baseline if msgspec does the same work:
every field of every event converted to a typed value. These tests decode the bench's own frames
with both and compare every value (bit for bit; NaN equals NaN).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from fastfeed.bench import msgspec_peer
from fastfeed.bench.payloads import (
    DX_CHANNELS,
    DX_FIELDS,
    POLYGON_KINDS,
    dxlink_feed_config,
    frame_set,
)

msgspec = pytest.importorskip("msgspec")
fastfeed = pytest.importorskip("fastfeed")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a.hex() == b.hex()
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("kind", ["quote100", "tns100", "greeks100", "mixed"])
def test_dxlink_rows_hold_fastfeeds_values(kind: str) -> None:
    fs = frame_set("dxlink", kind, n_distinct=6)
    decode = msgspec_peer.dxlink_decoder()
    dec = fastfeed.DXLinkDecoder()
    for t in sorted(set(fs.event_types)):
        dec.feed(dxlink_feed_config(t, DX_CHANNELS[t]))
    compared = 0
    for etype, frame in zip(fs.event_types, fs.frames, strict=True):
        rows = decode(frame)
        dec.feed(frame)
        ours = [ev.to_dict() for ev in dec.drain(etype)]
        assert len(rows) == len(ours) == fs.events_per_frame[0]
        for row, ev in zip(rows, ours, strict=True):
            got = msgspec.structs.asdict(row)
            assert list(got) == list(DX_FIELDS[etype])  # every field, in the wire order
            for name in DX_FIELDS[etype]:
                assert _same(got[name], ev[name]), (etype, name, got[name], ev[name])
                compared += 1
    assert compared >= 6 * 100 * 12


def test_dxlink_nan_strings_become_floats() -> None:
    fs = frame_set("dxlink", "quote100", n_distinct=4)
    rows = [r for f in fs.frames for r in msgspec_peer.dxlink_decoder()(f)]
    assert any(math.isnan(r.bidSize) for r in rows)  # index symbols send "NaN" sizes


@pytest.mark.parametrize("kind", sorted(POLYGON_KINDS))
def test_polygon_structs_hold_fastfeeds_values(kind: str) -> None:
    cluster, per = POLYGON_KINDS[kind]
    fs = frame_set("polygon", kind, n_distinct=6)
    decode = msgspec_peer.polygon_decoder(cluster)
    dec = fastfeed.PolygonDecoder(cluster=cluster)
    types = ["XL2"] if cluster == "crypto" else ["T", "Q"]
    compared = 0
    for frame in fs.frames:
        structs = decode(frame)
        assert len(structs) == per
        dec.feed(frame)
        for t in types:
            ours = [ev.to_dict() for ev in dec.drain(t)]
            theirs = [msgspec.to_builtins(s) for s in structs if msgspec.to_builtins(s)["ev"] == t]
            assert len(ours) == len(theirs)
            for a, b in zip(theirs, ours, strict=True):
                assert set(a) == set(b), (a, b)  # the same keys: none skipped, none invented
                for k in a:
                    assert _same(a[k], b[k]), (t, k, a[k], b[k])
                    compared += 1
    assert compared >= 6 * per * 6


def test_side_by_side_runner() -> None:
    """``python -m fastfeed.bench.msgspec_peer``: one (fastfeed, msgspec) pair per round."""
    res = msgspec_peer.side_by_side(["polygon-stocks1", "dxlink-quote100"], 2, 0.01)
    assert list(res) == ["polygon-stocks1", "dxlink-quote100"]
    assert all(len(pairs) == 2 and all(a > 0 and b > 0 for a, b in pairs) for pairs in res.values())
    with pytest.raises(SystemExit):
        msgspec_peer.main(["no-such-scenario"])
