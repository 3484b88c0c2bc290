"""Units of fastfeed.record: columns <-> records byte for byte, Consumer.drain_into, the raw
segment format (torn last block), redaction."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from fastfeed._records_meta import LAYOUTS
from fastfeed.record._columns import ColumnBuffers, spec_for, to_arrow, to_records
from fastfeed.record._raw import (
    NOTE,
    RECV,
    SENT,
    RawWriter,
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
    return arr


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_columns_round_trip_is_byte_exact(layout: str) -> None:
    rng = np.random.default_rng(hash(layout) & 0xFFFF)
    n = 300 if LAYOUTS[layout]["size"] > 1000 else 5000
    arr = random_records(layout, n, rng)
    names = [""] + [f"S{i}" for i in range(1, 100)]
    spec = spec_for(layout)
    batch = to_arrow(arr, spec, pa.array(names), layout)
    assert batch.schema.names[0] == LAYOUTS[layout]["symbol"]["attr"]
    assert batch.schema.field("ts_recv").type == pa.timestamp("ns", tz="UTC")
    back = to_records(batch, spec, names.index)
    assert back.tobytes() == arr.tobytes()
    # pieces through reused buffers, and through an Arrow IPC stream
    bufs = ColumnBuffers(spec)
    k = bufs.fill([(arr[: n // 3], n // 3), (arr[n // 3:], n - n // 3)])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(bufs.batch(k, pa.array(names), layout))
    table = pa.ipc.open_stream(sink.getvalue()).read_all()
    assert to_records(table.to_batches()[0], spec, names.index).tobytes() == arr.tobytes()


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
    n, gaps = cons.drain_into(buf)
    assert (n, gaps) == (4, 0) and list(buf["bid_price"]) == [0, 1, 2, 3]
    n, gaps = cons.drain_into(buf)
    assert n == 4 and list(buf["bid_price"]) == [4, 5, 6, 7]
    for _ in range(10):                     # overflow the 64-record ring
        ring.push(recs.view(np.uint8))
    total = 0
    lost = 0
    while True:
        n, gaps = cons.drain_into(buf)
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


def test_redact_removes_credentials_only() -> None:
    assert redact(b'{"type":"AUTH","channel":0,"token":"s3cr\\"et"}') == \
        b'{"type":"AUTH","channel":0,"token":"***"}'
    assert redact(b'{"action":"auth","params":"KEY"}') == b'{"action":"auth","params":"***"}'
    sub = b'{"action":"subscribe","params":"T.AAPL"}'
    assert redact(sub) == sub
