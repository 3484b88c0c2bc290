"""Pieces of the hub's feeds that need no process: the spill section of data messages, the
record filter for them, hub URLs, and which class a drop-in pointed at a hub becomes."""

from __future__ import annotations

import pytest

from fastfeed._native.pgdict import to_dicts
from fastfeed._native.polygon import PolygonDecoder
from fastfeed.errors import ProtocolError
from fastfeed.hub._client import parse_hub_url
from fastfeed.hub._server import _public_url
from fastfeed.hub._wire import (
    ENVELOPE,
    ENVELOPE_SIZE,
    KIND_DATA,
    MAGIC,
    VERSION,
    layout_hash,
    pack_spill,
    unpack_envelope,
    unpack_spill,
)

FRAME = (b'[{"ev":"T","sym":"AAPL","p":1.5,"s":2,"t":1,"zz":5,"c":[1,2,3,4,5,6,7,8,9,10]},'
         b'{"ev":"T","sym":"MSFT","p":2.5,"s":3,"t":2},'
         b'{"ev":"T","sym":"AAPL","p":3.5,"s":4,"t":3,"yy":"long"}]')


def test_spill_travels_with_the_records_and_reads_back_whole() -> None:
    src = PolygonDecoder("stocks")
    src.feed(FRAME)
    batch = src.drain("T")
    assert batch._spill is not None
    section = pack_spill(batch._spill, batch._spill_base)
    body = bytes(memoryview(batch).cast("B")) + section
    n = len(batch)
    msg = ENVELOPE.pack(MAGIC, VERSION, KIND_DATA, 10, 32, batch.record_size, n, 1, 1, 1, 0, 0,
                        layout_hash(), len(section)) + body
    env = unpack_envelope(msg)
    assert env.spill == len(section)
    spill, base = unpack_spill(memoryview(msg)[ENVELOPE_SIZE + n * env.record_size:])
    # a consumer's ring (its own table: the ids are the same, as on a hub replica)
    dst = PolygonDecoder("stocks")
    for sym in ("AAPL", "MSFT"):
        dst.symbols.intern_str(sym)
    ring = dst.rings["T"]
    cons = ring.consumer()
    ring.push(memoryview(msg)[ENVELOPE_SIZE:ENVELOPE_SIZE + n * env.record_size], spill, base)
    assert to_dicts(cons.drain()) == to_dicts(batch)
    # filtered: only AAPL (id 1), its values whole
    bits = bytearray(1)
    bits[0] = 1 << 1
    keep = ring.select(memoryview(msg)[ENVELOPE_SIZE:ENVELOPE_SIZE + n * env.record_size], bits)
    ring.push(keep, spill, base)
    assert to_dicts(cons.drain()) == [d for d in to_dicts(batch) if d["sym"] == "AAPL"]
    assert pack_spill(None, 0) == b""
    # a spill section that does not fit the message is refused
    with pytest.raises(ProtocolError):
        unpack_envelope(msg[:-1])


def test_hub_urls() -> None:
    assert parse_hub_url("ipc://main") == (None, "main")
    assert parse_hub_url("nats://h:4222/x") == ("nats://h:4222", "x")
    assert parse_hub_url("tls://h:4222") == ("tls://h:4222", "main")
    with pytest.raises(ValueError):
        parse_hub_url("http://h")
    # what the hub tells local account consumers: never its NATS credentials
    assert _public_url("nats://user:pw@h:4222") == "nats://h:4222"
    assert _public_url("nats://h:4222") == "nats://h:4222"


def test_dropins_pointed_at_a_hub_are_instances_of_their_class() -> None:
    from fastfeed.hub import HubAlertStreamer, HubStreamer
    from fastfeed.massive import WebSocketClient
    from fastfeed.polygon import AsyncStreamClient
    from fastfeed.tastytrade import AlertStreamer, DXLinkStreamer

    for st in (DXLinkStreamer(object(), hub="ipc://h"),
               AsyncStreamClient("k", "crypto", hub="nats://127.0.0.1:1/h")):
        assert isinstance(st, HubStreamer)
        assert st.url in ("ipc://h", "nats://127.0.0.1:1/h")
    assert type(DXLinkStreamer(object())) is DXLinkStreamer
    assert type(AsyncStreamClient("k", "stocks")) is AsyncStreamClient
    acc = AlertStreamer(object(), hub="ipc://h")
    assert isinstance(acc, AlertStreamer) and isinstance(acc, HubAlertStreamer)
    assert "ipc://h" in repr(acc)
    assert isinstance(WebSocketClient(api_key="k", raw=True, hub="ipc://h"), WebSocketClient)
    with pytest.raises(ValueError):
        DXLinkStreamer(object(), hub="tcp://h")
