"""polygon values are never altered: strings longer than their slot, keys without a slot (the
live-only keys included), futures markets and the bounded symbol table."""

from __future__ import annotations

import json
import logging
import pickle

import orjson
import pytest
from test_polygon_decode import same

import fastfeed
from fastfeed._native.pgdict import dispatch_dicts, to_dicts
from fastfeed.errors import SymbolTableFull
from fastfeed.polygon_events import EquityAgg, EquityQuote, EquityTrade

pytest.importorskip("fastfeed._native.polygon")

# The shapes of live frames quoted in public code (values changed): T/Q with "pt", T with
# "trfi"/"trft"/"ds", keys outside Massive's spec.
LIVE = (
    b'[{"ev":"Q","sym":"NVDA","i":[604],"bx":10,"ax":15,"bp":225.62,"ap":225.64,"bs":100,'
    b'"as":500,"t":1786649956446,"pt":1786649956445,"q":106078192,"z":3},'
    b'{"ev":"T","sym":"NVDA","i":"40161","x":4,"p":225.63,"s":129,"t":1786649956459,'
    b'"pt":1786649956458,"q":9059424,"z":3,"trfi":202,"trft":1786649956459,"ds":"129.0"}]'
)
LONG_ID = "7" * 20 + "-" + "trade-id-beyond-the-32-byte-slot" + "\u00e9\u4e2d"


def test_live_keys_have_slots():
    dec = fastfeed.PolygonDecoder()
    assert dec.feed(LIVE) == 2
    (q,) = dec.drain(EquityQuote)
    (t,) = dec.drain(EquityTrade)
    assert q.participant_timestamp == 1786649956445 and q.extra == {}
    assert (t.participant_timestamp, t.trf_id, t.trf_timestamp, t.fractional_shares) == (
        1786649956458, 202, 1786649956459, "129.0")
    want = json.loads(LIVE)
    assert q.to_dict() == want[0] and t.to_dict() == want[1]
    assert dec.stats["unknown_keys"] == 0 and dec.stats["spill_bytes"] == 0


def test_long_strings_are_kept_whole_everywhere():
    frame = json.dumps([
        {"ev": "T", "sym": "AAPL", "i": LONG_ID, "p": 1.5, "ds": "0." + "1" * 40},
        {"ev": "T", "sym": "AAPL", "i": "short", "p": 2},
        {"ev": "NOI", "T": "MSFT", "a": "C-with-a-long-auction-type", "b": 1.25},
        {"ev": "XT", "pair": "BTC-USD", "i": 10**40, "p": 3.5},         # fixstr|int, 41 digits
        {"ev": "T", "sym": "NUL", "i": "a\u0000b"},                      # NUL: never cut by C
    ], ensure_ascii=False).encode()
    want = json.loads(frame)
    dec = fastfeed.PolygonDecoder()
    assert dec.feed(frame) == 5
    trades = dec.drain("T")
    assert [e.id for e in trades] == [LONG_ID, "short", "a\x00b"]
    assert trades[0].fractional_shares == "0." + "1" * 40
    assert [e.to_dict() for e in trades] == [want[0], want[1], want[4]]
    assert to_dicts(trades) == [want[0], want[1], want[4]]
    assert dec.drain("NOI")[0].to_dict() == want[2]
    xt = dec.drain("XT")[0]
    assert xt.id == 10**40 and xt.to_dict() == want[3]
    assert dec.stats["spilled_strings"] == 5 and dec.stats["errors"] == 0
    # the event owns its spill: still whole after the ring and its log were reused
    t0 = trades[0]
    for _ in range(3000):
        dec.feed(frame)
        dec.drain("T")
    assert t0.id == LONG_ID and pickle.loads(pickle.dumps(t0)).to_dict() == want[0]
    assert EquityTrade(symbol="X", id=LONG_ID).id == LONG_ID   # constructed events too


def test_keys_without_a_slot_are_kept_in_wire_order():
    frame = (b'[{"zeta":[1,{"b":null}],"ev":"T","sym":"A","new_key":"v","p":1,'
             b'"alpha":1e400,"big":123456789012345678901234567890,"obj":{"x":"}"}}]')
    dec = fastfeed.PolygonDecoder()
    assert dec.feed(frame) == 1
    batch = dec.drain("T")
    (t,) = batch
    want = json.loads(frame)[0]
    assert t.to_dict() == want
    assert list(t.to_dict()) == ["ev", "sym", "p", "zeta", "new_key", "alpha", "big", "obj"]
    assert list(t.extra) == ["zeta", "new_key", "alpha", "big", "obj"]
    assert t.extra["big"] == 123456789012345678901234567890
    got = []
    dispatch_dicts(batch, 0, got.append)
    assert got == [want] and list(got[0]) == list(t.to_dict())
    assert dec.stats["unknown_keys"] == 5



def test_no_spill_when_nothing_needs_it():
    dec = fastfeed.PolygonDecoder()
    dec.feed(LIVE)
    assert dec.drain("T")._spill is None and dec.stats["spill_bytes"] == 0


def test_spill_log_is_bounded_by_the_ring():
    """A server sending long ids forever: the log holds the spill of the records the ring still
    holds (drop-oldest), not more."""
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 14)
    frame = orjson.dumps([{"ev": "T", "sym": "A", "i": "x" * 200 + str(k)} for k in range(50)])
    for _ in range(200):
        dec.feed(frame)
    cap = dec.ring("T").capacity
    assert dec.stats["spill_bytes"] <= (cap + 50) * 220
    tail = dec.drain("T")           # the default consumer lags: it gets the newest `cap`
    assert len(tail) == cap and all(e.id.startswith("x" * 200) for e in tail)


def test_latest_keeps_its_spill_after_the_ring_moved_on():
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 12)
    ring = dec.ring("T")
    ring.enable_latest()
    dec.feed(orjson.dumps([{"ev": "T", "sym": "RARE", "i": LONG_ID, "odd": [1]}]))
    for k in range(20):     # many records of another symbol: RARE's slot and spill are reused
        dec.feed(orjson.dumps([{"ev": "T", "sym": "BUSY", "i": "y" * 50 + str(i)}
                               for i in range(k * 50, k * 50 + 50)]))
    rare = ring.latest(dec.symbols.id_of("RARE"))
    assert rare.id == LONG_ID and rare.extra == {"odd": [1]}
    assert ring.latest(dec.symbols.id_of("BUSY")).id == "y" * 50 + "999"


def test_batch_handler_borrowed_batches_read_the_spill():
    dec = fastfeed.PolygonDecoder()
    cons = dec.ring("T").consumer()
    dec.feed(orjson.dumps([{"ev": "T", "sym": "A", "i": LONG_ID, "k": 1}]))
    seen = []
    cons.call_with_batch(lambda b: seen.append((b.borrowed, b[0].id, to_dicts(b)[0]["k"])))
    assert seen == [(True, LONG_ID, 1)]


def test_futures_cluster():
    frame = (b'[{"ev":"T","sym":"ESZ5","p":6890.25,"s":2,"t":1765000000123,"q":77},'
             b'{"ev":"Q","sym":"ESZ5","bp":6890.0,"bs":12,"bt":1765000000120,"ap":6890.25,'
             b'"as":9,"at":1765000000121,"t":1765000000122},'
             b'{"ev":"AM","sym":"ESZ5","v":1234,"dv":8501234567,"o":6889.5,"c":6890.25,'
             b'"h":6891,"l":6888.75,"n":311,"s":1765000000000,"e":1765000060000}]')
    want = json.loads(frame)
    for cluster in ("futures", "futures/cme", "futures/cbot", "futures/nymex", "futures/comex"):
        dec = fastfeed.PolygonDecoder(cluster)
        assert dec.feed(frame) == 3
        (t,), (q,), (a,) = dec.drain("T"), dec.drain("Q"), dec.drain("AM")
        assert [t.to_dict(), q.to_dict(), a.to_dict()] == want
        assert (q.bid_timestamp, q.ask_timestamp, a.transactions) == (1765000000120, 1765000000121, 311)
        assert a.fractional_volume == 8501234567 and dec.stats["unknown_keys"] == 0
    assert isinstance(a, EquityAgg)
    from fastfeed._native.polygon import build_channels
    assert build_channels("futures/cme", "Q", ["esz5"]) == ["Q.ESZ5"]
    with pytest.raises(ValueError):
        build_channels("futures", "LULD")
    with pytest.raises(ValueError):
        fastfeed.PolygonDecoder("futures/eurex")


def test_symbol_table_cap_is_a_counted_typed_condition(caplog):
    """A server-like stream of ever new symbols against a small cap: the table stops growing,
    events of new symbols are skipped and counted, known symbols keep flowing, SymbolTableFull is
    raised (a ProtocolError) and logged once."""
    dec = fastfeed.PolygonDecoder(max_symbols=100)
    published = refused = 0
    caplog.set_level(logging.WARNING, logger="fastfeed.polygon")
    for k in range(50):
        frame = orjson.dumps([{"ev": "Q", "sym": f"S{k * 20 + i}", "bp": 1.5} for i in range(20)]
                             + [{"ev": "T", "sym": "S0", "p": 1.0}])
        try:
            published += dec.feed(frame)
        except SymbolTableFull as exc:
            assert isinstance(exc, fastfeed.ProtocolError) and exc.event_type == "Q"
            published += exc.events_written
            refused += 1
    s = dec.stats
    assert s["symbols"] == 100 and s["max_symbols"] == 100
    assert s["symbols_refused"] == 1000 - 100 and s["skipped"] == 900
    assert published == 100 + 50 and refused == 45
    assert len(dec.drain("T")) == 50 and len(dec.drain("Q")) == 100
    assert sum("symbol table full" in r.getMessage() for r in caplog.records) == 1
    assert fastfeed.PolygonDecoder().stats["max_symbols"] >= 1_000_000
    with pytest.raises(ValueError):
        fastfeed.PolygonDecoder(max_symbols=0)


def test_book_levels_fast_lane_equals_json_loads():
    """XL2 books through the levels lane (warm key order): plain spellings, and in the same
    books an exponent, a negative, an integer, a long fraction, white space, > 100 levels."""
    from fastfeed.bench.payloads import polygon_frames

    frames = polygon_frames("cryptol2", 4)
    odd = (b'[{"ev":"XL2","pair":"BTC-USD","t":1,"r":2,"x":1,"b":[[1.5,2],[6.5e-05,-3.25],'
           b'[123456789.123456,0.1234567890123]],"a":[[1,2], [3.0 ,4]]},'
           b'{"ev":"XL2","pair":"ETH-USD","t":1,"r":2,"x":1,"b":' +
           orjson.dumps([[100 + i / 8, 1] for i in range(104)]) + b',"a":[]}]')
    dec = fastfeed.PolygonDecoder("crypto")
    for frame in [*frames, odd, *frames, odd]:
        want = json.loads(frame)
        assert dec.feed(frame) == len(want)
        got = [e.to_dict() for e in dec.drain("XL2")]
        assert got == want
        assert all(same(g, w) for g, w in zip(got, want, strict=True))   # int vs float, bits, kept too


def test_handler_dicts_with_many_key_sets():
    """Quotes with 600 different sets of optional keys, each several times and interleaved: more
    than the templates remembered per record type (recent ones looked up without a dict, the
    whole set cleared past 256): every dict is json.loads' event, with its keys in the order of
    ``to_dict()``."""
    import itertools
    import random

    optional = [("bx", 3), ("bp", 1.25), ("bs", 100), ("ax", 4), ("ap", 1.5), ("as", 300),
                ("c", 1), ("i", [604, 607]), ("t", 1786649956446), ("q", 106078192), ("z", 3)]
    rng = random.Random(7)
    masks = rng.sample(range(1 << len(optional)), 600)
    order = masks * 3
    rng.shuffle(order)
    events = []
    for n, m in enumerate(order):
        e = {"ev": "Q", "sym": f"S{m % 37}"}
        e.update((k, (v + n if type(v) is int else v)) for b, (k, v) in enumerate(optional) if m >> b & 1)
        events.append(e)
    dec = fastfeed.PolygonDecoder(cluster="stocks", ring_bytes=1 << 22)
    got = []
    for chunk in itertools.batched(events, 100) if hasattr(itertools, "batched") else \
            (events[i:i + 100] for i in range(0, len(events), 100)):
        frame = orjson.dumps(list(chunk))
        assert dec.feed(frame) == len(chunk)
        batch = dec.drain("Q")
        dicts = to_dicts(batch)
        assert [list(d) for d in dicts] == [list(e.to_dict()) for e in batch]
        got += dicts
    assert len(got) == len(events)
    assert all(same(g, w) for g, w in zip(got, json.loads(orjson.dumps(events)), strict=True))


@pytest.mark.parametrize("trade_id", ["0", "7", "-1", "40161", "9223372036854775807",
                                      "-9223372036854775808", "1000000000000000000"])
def test_handler_dicts_trade_ids_given_as_strings(trade_id):
    """A trade id the wire gives as a string of an integer comes back as that very string."""
    frame = (b'[{"ev":"T","sym":"A","i":"' + trade_id.encode() + b'","x":4,"p":1.5,"s":1,'
             b'"t":1786649956459,"q":1,"z":3}]')
    dec = fastfeed.PolygonDecoder(cluster="stocks")
    assert dec.feed(frame) == 1
    (d,) = to_dicts(dec.drain("T"))
    assert d == json.loads(frame)[0] and d["i"] == trade_id and type(d["i"]) is str
