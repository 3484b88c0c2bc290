"""The hub's wire format: envelope, symbol messages, control frames, gap/restart tracking."""

from __future__ import annotations

import struct

import pytest

from fastfeed._native.dxlink import DXLinkDecoder
from fastfeed.errors import ProtocolError
from fastfeed.hub._control import WAKE, FrameReader, encode, socket_path
from fastfeed.hub._wire import (
    ENVELOPE_SIZE,
    FEEDS,
    KIND_DATA,
    KIND_SYMBOLS,
    MAGIC,
    VERSION,
    Envelope,
    StreamTracker,
    SymbolMap,
    layout_hash,
    pack_envelope,
    pack_symbols,
    unpack_envelope,
    unpack_symbols,
)


def _data(seq: int, first: int, n: int, rtype: int = 1, publisher: int = 7, rsize: int = 88,
          gaps: int = 0) -> bytearray:
    buf = bytearray(ENVELOPE_SIZE + n * rsize)
    pack_envelope(buf, KIND_DATA, FEEDS["dxlink"], rtype, rsize, n, publisher, seq, first,
                  gaps, 123)
    return buf


def test_envelope_round_trip_and_layout() -> None:
    buf = _data(5, 100, 3, rtype=4, publisher=2**64 - 1, rsize=104, gaps=9)
    env = unpack_envelope(buf)
    assert env == Envelope(KIND_DATA, FEEDS["dxlink"], 4, 104, 3, 2**64 - 1, 5, 100, 9, 123)
    assert ENVELOPE_SIZE == 64
    assert struct.unpack_from("<IH", buf) == (MAGIC, VERSION)
    assert bytes(buf[:4]) == b"FFHB"
    assert struct.unpack_from("<I", buf, 56)[0] == layout_hash()


@pytest.mark.parametrize("offset,value,what", [
    (0, b"XXXX", "magic"),
    (4, struct.pack("<H", VERSION + 1), "version"),
    (56, struct.pack("<I", 0), "layouts"),
])
def test_envelope_refused(offset: int, value: bytes, what: str) -> None:
    buf = _data(1, 1, 1)
    buf[offset:offset + len(value)] = value
    with pytest.raises(ProtocolError, match=what):
        unpack_envelope(buf)


def test_truncated_messages_refused() -> None:
    with pytest.raises(ProtocolError, match="shorter"):
        unpack_envelope(b"FFHB")
    with pytest.raises(ProtocolError, match="truncated"):
        unpack_envelope(_data(1, 1, 2)[:-1])
    body = pack_symbols([(1, "SPY"), (2, "AAPL")])
    with pytest.raises(ProtocolError, match="truncated"):
        unpack_symbols(body[:-1], 2)


def test_symbols_round_trip_unicode_and_escapes() -> None:
    items = [(1, "SPY"), (2, ".SPXW251205C6000"), (3, "é{=5m,tho=true}"), (70000, "\udcff")]
    assert unpack_symbols(pack_symbols(items), len(items)) == items


def test_tracker_counts_lost_messages_records_and_restarts() -> None:
    tr = StreamTracker()
    tr.start(7, 10, {1: 500})
    assert tr.observe(unpack_envelope(_data(10, 500, 4))) == "ok"
    assert tr.observe(unpack_envelope(_data(11, 504, 2))) == "ok"
    assert (tr.lost_messages, tr.gaps) == (0, 0)
    # messages 12 and 13 lost (records 506..515 of rtype 1)
    assert tr.observe(unpack_envelope(_data(14, 516, 1, gaps=3))) == "gap"
    assert (tr.lost_messages, tr.gaps, tr.hub_gaps) == (2, 10, 3)
    # another rtype starts its own record sequence
    assert tr.observe(unpack_envelope(_data(15, 1, 5, rtype=2, rsize=96))) == "ok"
    assert tr.gaps == 10
    # a new publisher id: the hub restarted, sequences start again, nothing counted as lost
    assert tr.observe(unpack_envelope(_data(1, 1, 1, publisher=8))) == "restart"
    assert (tr.restarts, tr.lost_messages, tr.gaps) == (1, 2, 10)
    assert tr.observe(unpack_envelope(_data(2, 2, 1, publisher=8))) == "ok"


def test_symbol_map_identity_and_remap() -> None:
    m = SymbolMap()
    m.add(1, 1)
    m.add(2, 2)
    assert m.identity and m.known(2) and not m.known(3)
    m.add(3, 5)
    assert not m.identity
    # two Quote records with hub ids 3 and 1 -> local 5 and 1; other bytes untouched
    recs = bytearray(2 * 88)
    struct.pack_into("<HHIq", recs, 0, 1, 0, 3, 111)
    struct.pack_into("<HHIq", recs, 88, 1, 0, 1, 222)
    m.remap(memoryview(recs), 88, 2)
    assert struct.unpack_from("<HHIq", recs, 0) == (1, 0, 5, 111)
    assert struct.unpack_from("<HHIq", recs, 88) == (1, 0, 1, 222)


def test_symbol_table_replica_keeps_hub_ids() -> None:
    """Interning the hub's symbols in id order gives a fresh table the same ids (fast path)."""
    hub = DXLinkDecoder().symbols
    ids = [(hub.intern_str(s), s) for s in ("SPY", "AAPL", "QQQ")]
    local = DXLinkDecoder().symbols
    m = SymbolMap()
    for hid, s in ids:
        m.add(hid, local.intern_str(s))
    assert m.identity


def test_control_frames() -> None:
    r = FrameReader()
    data = encode({"op": "hello", "id": 1}) + WAKE + WAKE + encode({"id": 2, "ok": True})
    wakes, msgs = r.feed(data[:7])
    assert (wakes, msgs) == (0, [])
    wakes, msgs = r.feed(data[7:])
    assert wakes == 2 and msgs == [{"op": "hello", "id": 1}, {"id": 2, "ok": True}]
    with pytest.raises(ProtocolError):
        FrameReader().feed(struct.pack("<I", 2) + b"[]")
    with pytest.raises(ProtocolError):
        FrameReader().feed(struct.pack("<I", 3) + b"{x}")


def test_socket_path(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("FASTFEED_HUB_DIR", str(tmp_path))
    assert socket_path("main") == f"{tmp_path}/fastfeed-hub-main.sock"
    for bad in ("", "a/b", ".x"):
        with pytest.raises(ValueError):
            socket_path(bad)
    assert KIND_SYMBOLS != KIND_DATA
