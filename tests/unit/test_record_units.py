"""Units of fastfeed.record: columns <-> records byte for byte, Consumer.drain_into, the raw
segment format (torn last block, compressed on roll), redaction."""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from fastfeed._records_meta import LAYOUTS
from fastfeed.record._columns import ColumnBuffers, spec_for, spill_data, to_arrow, to_records
from fastfeed.record._raw import (
    NOTE,
    RECV,
    SENT,
    RawWriter,
    compress_segment,
    encode_records,
    iter_messages,
    read_segment,
    redact,
)
from fastfeed.records import dtype_for


def random_records(layout: str, n: int, rng: np.random.Generator) -> Any:
    """Records with random bytes in every member (NaN payloads, any ints), zero padding,
    symbol and string ids in 1..99."""
    spec = spec_for(layout)
    arr = np.zeros(n, dtype_for(layout))
    raw = arr.view(np.uint8).reshape(n, -1)
    raw[:] = rng.integers(0, 256, raw.shape, dtype=np.uint8)
    for m in LAYOUTS[layout]["members"]:
        if m["np"] is None:
            raw[:, m["offset"]:m["offset"] + m["size"]] = 0
    arr["rtype"] = spec.rtype
    for _c, member, role, _t in spec.columns:
        if role == "dict":
            arr[member] = rng.integers(0, 100, n)
        elif role == "fixstr":
            arr[member] = [b"x" * int(k) for k in rng.integers(0, arr.dtype[member].itemsize, n)]
    if "spill" in arr.dtype.names:
        arr["spill"] = 0      # see add_spill
        for bit in spec.str_bits.values():   # no string spilled (the integration test has)
            arr["alt"] &= ~np.uint64(1 << (32 + bit))
    return arr


def add_spill(arr: Any, rng: np.random.Generator, base: int = 0xFFFFFF00) -> tuple[bytes, int]:
    """Give about a third of the records spilled values: their ``spill`` members refer to the
    returned bytes, whose first byte is at spill-log position ``base`` (near 2^32: wraps)."""
    n = len(arr)
    lens = rng.integers(1, 60, n) * (rng.random(n) < 0.3)
    starts = 7 + np.concatenate([[0], np.cumsum(lens)[:-1]])
    data = rng.integers(0, 256, 7 + int(lens.sum()), dtype=np.uint8).tobytes()
    pos = (starts + base) & 0xFFFFFFFF
    arr["spill"] = np.where(lens > 0, (lens.astype(np.uint64) << np.uint64(32))
                            | pos.astype(np.uint64), np.uint64(0))
    return data, base


def spilled(arr: Any, spill: Any, base: int) -> list[bytes]:
    """Each record's spilled bytes (b"" when none)."""
    out = []
    for ref in arr["spill"].tolist():
        ln, pos = ref >> 32, ref & 0xFFFFFFFF
        rel = (pos - base) & 0xFFFFFFFF
        out.append(bytes(memoryview(spill)[rel:rel + ln]) if ln else b"")
    return out


def assert_same(back: Any, arr: Any, spill: Any, base: int, back_spill: Any,
                back_base: int = 0) -> None:
    """``back`` holds ``arr``'s records byte for byte, its spill members aside: those refer to
    ``back_spill`` (first byte at position ``back_base``) and give the same bytes."""
    if "spill" not in arr.dtype.names:
        assert back.tobytes() == arr.tobytes()
        return
    assert spilled(back, back_spill, back_base) == spilled(arr, spill, base)
    a, b = (np.frombuffer(bytearray(x.tobytes()), np.uint8).reshape(len(x), -1)
            for x in (arr, back))
    a[:, 32:40] = b[:, 32:40] = 0         # the spill member (spill.h)
    assert b.tobytes() == a.tobytes()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_columns_round_trip_is_byte_exact(layout: str) -> None:
    rng = np.random.default_rng(zlib.crc32(layout.encode()))    # str hash() varies per process
    n = 300 if LAYOUTS[layout]["size"] > 1000 else 5000
    arr = random_records(layout, n, rng)
    for _c, member, role, _t in spec_for(layout).columns:
        if role == "dict":
            arr[member][[10, n - 15]] = 0     # null symbols inside the slice below, always
    spill, base = add_spill(arr, rng) if "spill" in arr.dtype.names else (None, 0)
    names = [""] + [f"S{i}" for i in range(1, 100)]
    spec = spec_for(layout)
    batch = to_arrow(arr, spec, pa.array(names), layout, spill, base)
    assert batch.schema.names[0] == LAYOUTS[layout]["symbol"]["attr"]
    assert batch.schema.field("ts_recv").type == pa.timestamp("ns", tz="UTC")
    back = to_records(batch, spec, names.index)
    assert_same(back, arr, spill, base, spill_data(batch, spec))
    # a slice: every column read at an offset into its buffers (null symbols included)
    part = batch.slice(7, n - 20)
    assert part.column(0).null_count and part.column(0).offset == 7
    assert_same(to_records(part, spec, names.index), arr[7:n - 13], spill, base,
                spill_data(part, spec))
    # pieces through reused buffers, and through an Arrow IPC stream
    bufs = ColumnBuffers(spec)
    k = bufs.fill([(arr[: n // 3], n // 3, spill, base), (arr[n // 3:], n - n // 3, spill, base)])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(bufs.batch(k, pa.array(names), layout))
    b2 = pa.ipc.open_stream(sink.getvalue()).read_all().to_batches()[0]
    assert_same(to_records(b2, spec, names.index), arr, spill, base, spill_data(b2, spec))
    # and back into a ring: its events read the spilled values
    if spill is not None:
        from fastfeed._native.ring import RecordRing
        from fastfeed._native.symbols import SymbolTable

        ring = RecordRing(layout, layout, spec.rtype, SymbolTable(), 1 << 16, "drop_oldest")
        cons = ring.consumer()
        ring.push(to_records(b2, spec, names.index).view(np.uint8), spill_data(b2, spec), 0)
        got = cons.drain()
        assert_same(got.to_numpy(), arr, spill, base, got._spill, got._spill_base)


def test_dxfeed_time_fields_are_arrow_timestamps() -> None:
    spec = spec_for("Quote")
    types = {c: t for c, _m, _r, t in spec.columns}
    assert types["event_time"] == pa.timestamp("ms", tz="UTC")
    assert types["bid_price"] == pa.float64()
    assert pa.types.is_dictionary(types["event_symbol"])


def test_drain_into_reuses_the_buffer_and_reports_gaps() -> None:
    from fastfeed._native.ring import RecordRing
    from fastfeed._native.symbols import SymbolTable

    ring = RecordRing("Quote", "Quote", 1, SymbolTable(), 64, "drop_oldest")
    cons = ring.consumer()
    recs = np.zeros(10, dtype_for("Quote"))
    recs["rtype"] = 1
    recs["bid_price"] = np.arange(10)
    ring.push(recs.view(np.uint8))
    buf = np.zeros(4, dtype_for("Quote"))
    n, gaps, sp, _base = cons.drain_into(buf)
    assert (n, gaps, sp) == (4, 0, None) and list(buf["bid_price"]) == [0, 1, 2, 3]
    n, gaps, _sp, _base = cons.drain_into(buf)
    assert n == 4 and list(buf["bid_price"]) == [4, 5, 6, 7]
    for _ in range(10):                     # overflow the 64-record ring
        ring.push(recs.view(np.uint8))
    total = 0
    lost = 0
    while True:
        n, gaps, _sp, _base = cons.drain_into(buf)
        lost += gaps
        if not n:
            break
        total += n
    assert lost > 0 and total == 64 and total + lost == 110 - 8


def test_raw_segments_torn_last_block(tmp_path: Any) -> None:
    import time

    w = RawWriter(str(tmp_path), {"feed": "dxlink"}, roll_bytes=1 << 40, roll_seconds=None)
    items = [(1, NOTE, 0, b'{"event":"open","conn":1}'), (2, RECV, 0, b"hello"),
             (3, SENT, 0, b"world")]
    w.write(encode_records(items), 3, time.monotonic())
    w.write(encode_records([(4, RECV, 1, b"x" * 1000)]), 1, time.monotonic())
    w.close()
    seg = os.path.join(str(tmp_path), "raw-000001.ffraw")
    full = [(m.ts_ns, m.kind, m.flags, m.payload) for m in iter_messages(str(tmp_path))]
    assert full == [*items, (4, RECV, 1, b"x" * 1000)]
    with open(seg, "r+b") as f:             # a kill in the middle of the last block
        f.truncate(os.path.getsize(seg) - 5)
    got = [(m.ts_ns, m.kind, m.flags, m.payload) for m in iter_messages(str(tmp_path))]
    assert got == items
    _h, blocks, torn = read_segment(seg)
    assert len(list(blocks)) == 1 and torn == [1]


def _messages(path: str) -> list[tuple[int, int, int, bytes]]:
    return [(m.ts_ns, m.kind, m.flags, m.payload) for m in iter_messages(path)]


def _blocks_of(items: int, seed: int) -> list[tuple[int, int, int, bytes]]:
    import random

    rng = random.Random(seed)
    return [(seed * 1000 + i, RECV, 0, rng.randbytes(rng.randrange(1, 300)))
            for i in range(items)]


def test_raw_compressed_on_roll_reads_the_same(tmp_path: Any) -> None:
    """``compress="roll"``: the open segment's blocks are written as they are (readable so),
    each closed segment goes to ``on_closed`` and is compressed whole; readers take both."""
    import time

    closed: list[str] = []
    w = RawWriter(str(tmp_path), {"feed": "dxlink"}, roll_bytes=3000, roll_seconds=None,
                  level=1, compress="roll", on_closed=closed.append)
    items = []
    for k in range(6):
        block = _blocks_of(20, k)
        items += block
        w.write(encode_records(block), len(block), time.monotonic())
    assert len(closed) >= 2
    assert _messages(str(tmp_path)) == items          # closed and open, none compressed yet
    sizes = {p: os.path.getsize(p) for p in closed}
    for p in closed:
        before, after = compress_segment(p, 1)
        assert before == sizes[p] and after < before
        with open(p, "rb") as f:
            assert b"FFB0" not in f.read()
        assert compress_segment(p, 1) == (after, after)       # nothing left to compress
    assert _messages(str(tmp_path)) == items          # compressed ones and the open one
    w.close()                           # the last one too
    assert closed[-1] not in sizes
    compress_segment(closed[-1], 1)
    assert _messages(str(tmp_path)) == items
    w2 = RawWriter(str(tmp_path / "at-once"), {}, roll_bytes=1 << 40, roll_seconds=None,
                   compress="roll")           # no callback: compressed as it closes
    w2.write(encode_records(items), len(items), time.monotonic())
    w2.close()
    assert _messages(str(tmp_path / "at-once")) == items
    with open(os.path.join(str(tmp_path / "at-once"), "raw-000001.ffraw"), "rb") as f:
        assert b"FFB1" in f.read()
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith(".tmp")]


def test_raw_killed_open_segment_uncompressed(tmp_path: Any) -> None:
    """A writer killed with its segment open (``compress="roll"``): the uncompressed segment
    reads up to its last complete block; compressing it later keeps exactly those."""
    import time

    w = RawWriter(str(tmp_path), {"feed": "dxlink"}, roll_bytes=1 << 40, roll_seconds=None,
                  compress="roll", on_closed=lambda p: None)
    first, second = _blocks_of(10, 1), _blocks_of(10, 2)
    w.write(encode_records(first), len(first), time.monotonic())
    w.write(encode_records(second), len(second), time.monotonic())
    seg = os.path.join(str(tmp_path), "raw-000001.ffraw")
    assert _messages(str(tmp_path)) == first + second   # flushed per block, still open
    with open(seg, "r+b") as f:                         # the kill: in the middle of a block
        f.truncate(os.path.getsize(seg) - 7)
    assert _messages(str(tmp_path)) == first
    _h, blocks, torn = read_segment(seg)
    assert len(list(blocks)) == 1 and torn == [1]
    compress_segment(seg)
    _h, blocks, torn = read_segment(seg)
    assert len(list(blocks)) == 1 and torn == [0]
    assert _messages(str(tmp_path)) == first


def test_raw_direct_aligned_blocks(tmp_path: Any) -> None:
    """``write_slot`` (the recorder's writer): with O_DIRECT, blocks padded to 4096 bytes
    from a page-aligned slot; they read back as written, torn or compressed."""
    import mmap
    import time

    from fastfeed.record._raw import ALIGN

    slot = mmap.mmap(-1, 16 * ALIGN)
    view = memoryview(slot)
    w = RawWriter(str(tmp_path), {"feed": "dxlink"}, roll_bytes=1 << 40, roll_seconds=None,
                  compress="roll", on_closed=lambda p: None, direct=True)
    items: list[tuple[int, int, int, bytes]] = []
    for k in range(3):
        block = _blocks_of(40, k)
        data = encode_records(block)
        slot[:] = b"\xee" * len(slot)               # what the padding may hold
        slot[:len(data)] = data
        w.write_slot(view, len(data), len(block), time.monotonic())
        items += block
    assert w._direct >= 0                           # O_DIRECT where the test runs (Linux)
    extra = _blocks_of(5, 9)                        # write() on it: an aligned copy
    w.write(encode_records(extra), len(extra), time.monotonic())
    items += extra
    seg = os.path.join(str(tmp_path), "raw-000001.ffraw")
    assert os.path.getsize(seg) % ALIGN == 0
    assert _messages(str(tmp_path)) == items
    with open(seg, "r+b") as f:                     # a kill in the middle of the last block
        f.truncate(os.path.getsize(seg) - ALIGN)
    assert _messages(str(tmp_path)) == items[:120]
    w.close()
    compress_segment(seg)
    assert _messages(str(tmp_path)) == items[:120]
    view.release()
    slot.close()


def test_raw_direct_refused_falls_back_to_buffered(tmp_path: Any, monkeypatch: Any) -> None:
    """A file system that opens with O_DIRECT but refuses the writes (EINVAL): the block is
    written buffered instead, nothing lost."""
    import errno
    import mmap
    import time

    from fastfeed.record._raw import ALIGN

    def refuse(fd: int, buffers: Any) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "writev", refuse)
    slot = mmap.mmap(-1, 4 * ALIGN)
    items = _blocks_of(10, 3)
    data = encode_records(items)
    slot[:len(data)] = data
    w = RawWriter(str(tmp_path), {}, roll_bytes=1 << 40, roll_seconds=None, compress="roll",
                  on_closed=lambda p: None, direct=True)
    with memoryview(slot) as view:
        w.write_slot(view, len(data), len(items), time.monotonic())
        w.write_slot(view, len(data), len(items), time.monotonic())
    w.close()
    assert not w.direct and _messages(str(tmp_path)) == items + items
    slot.close()


def test_redact_removes_credentials_only() -> None:
    assert redact(b'{"type":"AUTH","channel":0,"token":"s3cr\\"et"}') == \
        b'{"type":"AUTH","channel":0,"token":"***"}'
    assert redact(b'{"action":"auth","params":"KEY"}') == b'{"action":"auth","params":"***"}'
    sub = b'{"action":"subscribe","params":"T.AAPL"}'
    assert redact(sub) == sub


def _rings(*layouts: str, capacity: int = 64) -> list[Any]:
    from fastfeed._native.ring import RecordRing
    from fastfeed._native.symbols import SymbolTable

    syms = SymbolTable()
    return [RecordRing(lay, lay, 1 + i, syms, capacity, "backpressure")
            for i, lay in enumerate(layouts)]


def _quotes(first: int, n: int) -> Any:
    recs = np.zeros(n, dtype_for("Quote"))
    recs["rtype"] = 1
    recs["bid_price"] = np.arange(first, first + n)
    return recs


def test_record_sink_captures_each_publish_in_chunks_and_the_rings_keep_rebasing() -> None:
    """``RecordSink`` (ring.h "Capture"): every publish lands in the buffer at once, as chunks
    of one ring's records (consecutive publishes of a ring grow one chunk); no cursor, so a
    ring drained by its own consumer after each read still restarts at its first slot."""
    from fastfeed._native.ring import RecordSink, capture_chunks, capture_join

    q, t = _rings("Quote", "Trade")
    sink = RecordSink()
    assert (sink.attach(q), sink.attach(t)) == (0, 1)
    with pytest.raises(RuntimeError):
        sink.attach(q)
    buf = bytearray(8192)
    assert sink.swap(buf)[:3] == (None, 0, 0)
    cons = q.consumer()
    trades = np.zeros(2, dtype_for("Trade"))
    trades["rtype"] = 2
    trades["price"] = [7.5, 8.5]
    q.push(_quotes(0, 3).view(np.uint8))
    q.push(_quotes(3, 3).view(np.uint8))
    assert len(cons.drain()) == 6
    t.push(trades.view(np.uint8))
    q.push(_quotes(6, 1).view(np.uint8))       # written at slot 0 again: rebased
    assert len(cons.drain()) == 1 and q.rebased >= 1
    nbytes = 3 * 8 + 7 * 88 + 2 * 96
    assert (sink.nbytes, sink.records, sink.dropped) == (nbytes, 9, 0)
    sizes = [88, 96]
    assert capture_chunks(buf, nbytes, sizes) == {0: (8, 7, 2), 1: (8 + 6 * 88 + 8, 2, 1)}
    got = np.frombuffer(capture_join(buf, nbytes, 0, sizes), dtype_for("Quote"))
    assert got.tobytes() == _quotes(0, 7).tobytes()
    got_t = np.frombuffer(capture_join(buf, nbytes, 1, sizes), dtype_for("Trade"))
    assert got_t.tobytes() == trades.tobytes()
    old, n_bytes, records, parts = sink.swap(bytearray(1024))
    assert (old, n_bytes, records) == (buf, nbytes, 9)
    assert parts == [(7, None, 0, False), (2, None, 0, False)]
    with pytest.raises(ValueError):
        capture_chunks(buf, nbytes - 1, sizes)        # a chunk cut short
    assert sink.close()[1:] == (0, 0, [(0, None, 0, False), (0, None, 0, False)])
    q.push(_quotes(0, 1).view(np.uint8))             # detached: nothing captured
    assert (sink.records, sink.dropped) == (0, 0)


def test_record_sink_full_buffer_keeps_what_fits_and_counts_the_rest() -> None:
    """A publish that does not fit: what fits is kept, the sink takes nothing more until the
    next buffer (each ring's records stay consecutive), every record not taken is counted."""
    from fastfeed._native.ring import RecordSink, capture_join

    (q,) = _rings("Quote")
    sink = RecordSink()
    sink.attach(q)
    q.push(_quotes(0, 2).view(np.uint8))             # no buffer yet: counted
    assert sink.dropped == 2
    buf = bytearray(8 + 5 * 88 + 40)
    sink.swap(buf)
    q.push(_quotes(0, 3).view(np.uint8))
    q.push(_quotes(3, 3).view(np.uint8))             # 2 of 3 fit: sealed
    q.push(_quotes(6, 1).view(np.uint8))             # would fit the 40 bytes left: sealed
    assert (sink.records, sink.dropped) == (5, 2 + 1 + 1)
    _, nbytes, records, parts = sink.swap(bytearray(1024))
    assert (nbytes, records, parts) == (8 + 5 * 88, 5, [(5, None, 0, False)])
    assert capture_join(buf, nbytes, 0, [88]) == _quotes(0, 5).tobytes()
    q.push(_quotes(7, 1).view(np.uint8))             # the new buffer takes it
    assert (sink.records, sink.dropped) == (1, 4)


def test_record_sink_and_its_rings_may_be_freed_in_any_order() -> None:
    """A sink that dies as cyclic garbage (a recorder and its streamer refer to each other):
    the collector may clear the sink's ring list before the sink goes, or free the rings
    first. The rings share the sink's C state by reference (ring.h ``refs``), so a ring left
    alive never writes through a dangling pointer (without this the heap was corrupted and the
    process aborted), it stops capturing, and another sink can attach it."""
    import gc

    from fastfeed._native.ring import RecordSink

    (q,) = _rings("Quote")
    sink = RecordSink()
    sink.attach(q)
    sink.swap(bytearray(4096))
    holder: list[object] = [sink]
    holder.append(holder)                        # the sink reachable only from a cycle
    del sink, holder
    assert gc.collect() > 0
    for i in range(64):                          # publish through the ring afterwards
        q.push(_quotes(i, 1).view(np.uint8))
    again = RecordSink()
    assert again.attach(q) == 0
    buf = bytearray(4096)
    again.swap(buf)
    q.push(_quotes(64, 2).view(np.uint8))
    assert again.records == 2
    # the rings go with the sink, in one cycle
    r1, r2 = _rings("Quote", "Trade")
    both = RecordSink()
    both.attach(r1)
    both.attach(r2)
    both.swap(bytearray(4096))
    cycle: list[object] = [both, r1, r2]
    cycle.append(cycle)
    del both, r1, r2, cycle
    assert gc.collect() > 0


def test_record_sink_hands_over_the_spill_of_its_records_or_counts_them_lost() -> None:
    """Spilled values (spill.h): the swap copies the log range the captured records use; when
    the buffer stayed sealed while the ring went a full capacity further (that range may be
    overwritten), its records are reported lost instead."""
    from fastfeed._native.ring import RecordSink, capture_join

    rng = np.random.default_rng(5)
    (ring,) = _rings("EquityTrade", capacity=64)
    sink = RecordSink()
    sink.attach(ring)
    size = ring.record_size
    arr = random_records("EquityTrade", 40, rng)
    data, base = add_spill(arr, rng)
    buf = bytearray(8 + 40 * size)
    sink.swap(buf)
    ring.push(arr.view(np.uint8), data, base)
    _, nbytes, records, parts = sink.swap(bytearray(8 + 10 * size))
    n, spill, spill_base, lost = parts[0]
    assert (records, n, lost) == (40, 40, False) and spill is not None
    back = np.frombuffer(capture_join(buf, nbytes, 0, [size]), dtype_for("EquityTrade"))
    assert spilled(back, spill, spill_base) == spilled(arr, data, base)
    more = random_records("EquityTrade", 10, rng)
    data2, base2 = add_spill(more, rng)
    assert (more["spill"] != 0).any()
    ring.push(more.view(np.uint8), data2, base2)     # fills the 10-record buffer
    for _ in range(8):                               # 80 more: the ring (64) goes round
        ring.push(more.view(np.uint8), data2, base2)
    _, _, records, parts = sink.swap(None)
    assert records == 10 and parts[0][0] == 10 and parts[0][3] is True
    assert sink.dropped == 80


def test_record_sink_copies_a_publish_that_wraps_the_ring() -> None:
    """A publish whose records straddle the end of the ring's buffer lands whole, in order."""
    from fastfeed._native.ring import RecordSink, capture_join

    (q,) = _rings("Quote", capacity=8)
    sink = RecordSink()
    sink.attach(q)
    buf = bytearray(4096)
    sink.swap(buf)
    for first in (0, 6, 12):     # no consumer, no rebase: seqs 6..11 wrap the 8 slots
        q.push(_quotes(first, 6).view(np.uint8))
    assert q.rebased == 0
    assert capture_join(buf, sink.nbytes, 0, [88]) == _quotes(0, 18).tobytes()
