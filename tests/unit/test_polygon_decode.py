"""PolygonDecoder: golden frames per cluster / event type, value fidelity, bad input."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import orjson
import pytest

import fastfeed
from fastfeed._records_meta import LAYOUTS
from fastfeed.polygon_events import EV_CLASSES, CurrencyAgg, EquityAgg, EquityTrade, Level2Book

pytest.importorskip("fastfeed._native.polygon")

DATA = Path(__file__).parent.parent / "data" / "polygon"
CLUSTER_FILES = ["stocks", "options", "forex", "crypto", "indices"]
EV_CODES = sorted({ev for lay in LAYOUTS.values() if lay["feed"] == "polygon" for ev in lay["rtypes"]})
KNOWN_KEYS = {
    ev: {"ev", lay["symbol"]["wire"]} | {f["wire"] for f in lay["fields"]}
    for lay in LAYOUTS.values()
    if lay["feed"] == "polygon"
    for ev in lay["rtypes"]
}


def same(a, b) -> bool:
    """Equal values of the same JSON type, floats bit for bit."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def known(obj: dict) -> dict:
    """What to_dict() gives: the known keys (layout order), then the others in wire order."""
    keys = KNOWN_KEYS[obj["ev"]]
    return {**{k: v for k, v in obj.items() if k in keys}, **{k: v for k, v in obj.items() if k not in keys}}


def drain_all(dec) -> dict[str, list[dict]]:
    return {ev: [e.to_dict() for e in dec.drain(ev)] for ev in EV_CODES}


def expected_by_ev(objs) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {ev: [] for ev in EV_CODES}
    for o in objs:
        if o.get("ev") in out:
            out[o["ev"]].append(known(o))
    return out


def assert_same(got, want):
    for ev in EV_CODES:
        assert len(got[ev]) == len(want[ev]), ev
        for g, w in zip(got[ev], want[ev], strict=True):
            assert same(g, w), (ev, g, w)


def check_frame(frame: bytes, n: int, cluster: str = "stocks") -> None:
    """``frame`` decodes to ``n`` events equal (known keys, types, bits) to orjson's objects."""
    dec = fastfeed.PolygonDecoder(cluster)
    assert dec.feed(frame) == n
    assert_same(drain_all(dec), expected_by_ev(orjson.loads(frame)))


def frames(name):
    return [line.strip().encode() for line in (DATA / f"{name}.jsonl").read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("cluster", CLUSTER_FILES)
def test_golden_frames(cluster):
    dec = fastfeed.PolygonDecoder(cluster)
    for frame in frames(cluster):
        objs = orjson.loads(frame)
        n = dec.feed(frame)
        assert n == len(objs)
        assert_same(drain_all(dec), expected_by_ev(objs))
    assert dec.stats["skipped"] == 0 and dec.stats["errors"] == 0


def test_every_ev_code_has_a_golden_event():
    seen = set()
    for cluster in CLUSTER_FILES:
        for frame in frames(cluster):
            seen |= {o["ev"] for o in orjson.loads(frame)}
    assert set(EV_CODES) <= seen


def test_event_objects_and_symbols():
    dec = fastfeed.PolygonDecoder()
    dec.feed(frames("stocks")[0])
    trades = list(dec.drain(EquityTrade))
    assert [t.symbol for t in trades] == ["NVDA", "AAPL", "SPY"]
    t = trades[0]
    assert isinstance(t, EquityTrade) and t.to_dict()["ev"] == "T"
    assert t.price == 131.06 and t.size == 100 and isinstance(t.size, int)
    assert t.conditions == [12, 37] and t.id == "62879131889021"
    assert t.ts_recv > 0
    assert trades[2].conditions is None and trades[2].trf_id is None


def test_drain_by_class_and_wire_code():
    dec = fastfeed.PolygonDecoder()
    dec.feed(frames("stocks")[1])
    assert [e.to_dict()["ev"] for e in dec.drain(EquityAgg)] == ["A"]  # the class's first ev code
    assert [e.to_dict()["ev"] for e in dec.drain("AM")] == ["AM"]
    dec2 = fastfeed.PolygonDecoder("forex")
    dec2.feed(frames("forex")[0])
    assert len(dec2.drain(CurrencyAgg)) == 1 and len(dec2.drain("CAS")) == 1
    for cls in EV_CLASSES.values() if isinstance(EV_CLASSES, dict) else EV_CLASSES:
        dec.drain(cls)  # every class resolves to a ring


def test_key_collisions_per_ev():
    dec = fastfeed.PolygonDecoder()
    frame = (b'[{"ev":"C","p":"EUR/USD","a":1.5,"b":1.25,"x":48},'
             b'{"ev":"NOI","T":"X","p":880000,"a":"C","b":447.35,"i":5},'
             b'{"ev":"T","sym":"X","p":1.5,"i":"77","c":[1]},'
             b'{"ev":"Q","sym":"X","c":1,"i":[604]},'
             b'{"ev":"XT","pair":"B-U","i":"abc","c":[2]}]')
    assert dec.feed(frame) == 5
    assert_same(drain_all(dec), expected_by_ev(orjson.loads(frame)))


def test_ev_not_first_and_whitespace():
    frame = b' [ { "sym" : "AAPL" , "p" : 1.25 , "ev" : "T" , "x" : 1 } ,\n\t{"i":[1], "ev":"Q"} ] \n'
    check_frame(frame, 2)


def test_str_and_memoryview_input():
    dec = fastfeed.PolygonDecoder()
    f = frames("stocks")[0]
    assert dec.feed(f.decode()) == 5
    assert dec.feed(memoryview(f)) == 5
    assert dec.feed(bytearray(f)) == 5
    assert len(dec.drain("T")) == 9


def test_number_types_kept():
    dec = fastfeed.PolygonDecoder()
    frame = (b'[{"ev":"T","sym":"A","p":100,"s":2.0,"t":1718901234567.0,"q":9007199254740993,'
             b'"x":-1},{"ev":"XL2","pair":"P","b":[[1,2.5],[3.0,4]],"a":[[-0.0,1e-300]]}]')
    assert dec.feed(frame) == 2
    got = drain_all(dec)
    assert_same(got, expected_by_ev(orjson.loads(frame)))
    assert type(got["T"][0]["t"]) is float and type(got["T"][0]["p"]) is int


def test_big_exact_values():
    frame = (b'[{"ev":"T","sym":"A","t":9223372036854775807,"q":-9223372036854775808,'
             b'"p":0.1000000000000000055511151231257827,"s":123456789012345678901234567890.5}]')
    check_frame(frame, 1)


def test_l2_depth_beyond_capacity_is_kept_and_counted():
    """The record holds the first 100 levels; the whole list is kept beside it (spill)."""
    levels = [[100.0 + i, 1.0 if i % 2 else 2] for i in range(130)]
    frame = orjson.dumps([{"ev": "XL2", "pair": "BTC-USD", "b": levels, "a": levels[:3], "t": 1}])
    dec = fastfeed.PolygonDecoder("crypto")
    assert dec.feed(frame) == 1
    (book,) = list(dec.drain(Level2Book))
    assert book.bid_prices == levels and book.to_dict() == orjson.loads(frame)[0]
    assert book.ask_prices == levels[:3]
    assert same(book.bid_prices, levels)
    rec = book.record
    lay = LAYOUTS["Level2Book"]
    b = next(f for f in lay["fields"] if f["wire"] == "b")
    assert struct.unpack_from("<H", rec, b["n_offset"])[0] == 100
    assert struct.unpack_from("<H", rec, b["dropped_offset"])[0] == 30
    assert dec.stats["dropped_items"] == 30


def test_condition_overflow_is_kept_and_counted():
    frame = orjson.dumps([{"ev": "T", "sym": "A", "c": [1, 2], "p": 1}]
                         )[:-2] + b',"c":' + orjson.dumps(list(range(11))) + b"}]"
    dec = fastfeed.PolygonDecoder()
    assert dec.feed(frame) == 1
    (t,) = list(dec.drain("T"))
    assert t.conditions == list(range(11))      # last value of the duplicated key, whole
    f = next(f for f in LAYOUTS["EquityTrade"]["fields"] if f["wire"] == "c")
    assert t.record[f["dropped_offset"]] == 3 and dec.stats["dropped_items"] == 3
    # a long list, then a short one under the same key: the short one wins
    dec.feed(b'[{"ev":"T","sym":"A","c":[0,1,2,3,4,5,6,7,8,9],"c":[5]}]')
    (t,) = list(dec.drain("T"))
    assert t.conditions == [5] and t.to_dict()["c"] == [5]
    assert fastfeed.polygon_events.EquityTrade(conditions=list(range(12))).conditions == list(range(12))


def test_long_string_kept_whole():
    frame = orjson.dumps([{"ev": "T", "sym": "A", "i": "x" * 31 + "é" + "y"}])
    dec = fastfeed.PolygonDecoder()
    assert dec.feed(frame) == 1
    (t,) = list(dec.drain("T"))
    assert t.id == "x" * 31 + "é" + "y"
    assert dec.stats["spilled_strings"] == 1 and "truncated_strings" not in dec.stats


def test_escaped_strings_and_keys():
    frame = b'[{"\\u0065v":"\\u0054","s\\u0079m":"A\\u00e9\\ud83d\\ude00","i":"\\"q\\"","p":1.5}]'
    check_frame(frame, 1)


def test_duplicate_key_last_wins():
    frame = b'[{"ev":"T","sym":"A","p":1.5,"p":2,"c":[1,2,3],"c":[4]}]'
    check_frame(frame, 1)


def test_empty_object_values_and_nested_unknown_keys():
    frame = b'[{"ev":"Q","x":{"a":[1,{"b":null}],"c":"}"},"sym":"A","zz":[[[]]],"bp":1.5,"e":null}]'
    check_frame(frame, 1)


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------

GOOD = b'{"ev":"T","sym":"OK","p":1.5}'


def feed_err(dec, data):
    with pytest.raises(fastfeed.ProtocolError) as ei:
        dec.feed(data)
    return ei.value


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"not json", "not JSON"),
        (b'{"ev":"T"}', "not a JSON array"),
        (b"42", "not a JSON array"),
        (b"[" + GOOD, "truncated"),
        (b"[" + GOOD[:-5], "truncated"),
        (b'[{"ev":"T"', "truncated"),  # short ev code at the very end of the buffer
        (b'[{"ev":"T","sym":"A"', "truncated"),
        (b'[{"ev":"T","p":1', "truncated"),
        (b'[{"ev":"T","sym":"A","c":[1,2]', "truncated"),  # cut right after an inner list
        (b'[{"ev":"XL2","pair":"A","b":[[1,2]]', "truncated"),
    ],
)
def test_bad_messages(data, reason):
    dec = fastfeed.PolygonDecoder()
    err = feed_err(dec, data)
    assert reason in str(err)
    assert err.feed == "polygon"
    # the next message decodes
    assert dec.feed(b"[" + GOOD + b"]") == 1


def test_large_message_cut_after_a_book_list():
    """A message over 1024 bytes (decoded in place) that ends right after a book list the key
    lane takes: nothing past its end is read (it once read the byte after the message and, when
    that byte was '}', published the unfinished event)."""
    dec = fastfeed.PolygonDecoder(cluster="crypto")
    levels = ",".join(f"[{1000 + i}.25,{i}]" for i in range(90))
    head = b'[{"ev":"XL2","pair":"A","a":[[1,2]],"b":['
    assert dec.feed(head + b"[1,2]]}]") == 1            # the lane learns the key order
    msg = head + levels.encode() + b"]"
    assert len(msg) > 1024
    buf = bytearray(msg + b"}]")
    err = feed_err(dec, memoryview(buf)[: len(msg)])
    assert "truncated" in str(err) and err.events_written == 0
    assert len(dec.drain("XL2")) == 1
    assert dec.feed(bytes(buf)) == 1


def test_truncated_keeps_complete_events():
    dec = fastfeed.PolygonDecoder()
    err = feed_err(dec, b"[" + GOOD + b"," + GOOD + b',{"ev":"T","sym":"X","p":1.')
    assert err.events_written == 2
    assert [t.symbol for t in dec.drain("T")] == ["OK", "OK"]


def test_garbage_between_events_stops_message():
    dec = fastfeed.PolygonDecoder()
    err = feed_err(dec, b"[" + GOOD + b" x " + GOOD + b"]")
    assert err.events_written == 1 and "malformed" in str(err)


def test_trailing_data_after_array():
    dec = fastfeed.PolygonDecoder()
    err = feed_err(dec, b"[" + GOOD + b"] x")
    assert err.events_written == 1 and "after" in str(err)


@pytest.mark.parametrize(
    "bad, field",
    [
        (b'{"ev":"T","sym":"X","p":"1.5"}', "p"),
        (b'{"ev":"T","sym":"X","t":1.5}', "t"),
        (b'{"ev":"T","sym":"X","t":-0.0}', "t"),
        (b'{"ev":"T","sym":"X","t":1e300}', "t"),
        (b'{"ev":"T","sym":"X","s":12345678901234567890}', "s"),
        (b'{"ev":"T","sym":"X","p":9007199254740993}', "p"),
        (b'{"ev":"T","sym":"X","c":[1.5]}', "c"),
        (b'{"ev":"T","sym":"X","c":[4294967296]}', "c"),
        (b'{"ev":"T","sym":"X","c":5}', "c"),
        (b'{"ev":"T","sym":"X","i":7}', "i"),
        (b'{"ev":"T","sym":5}', "sym"),
        (b'{"ev":"T","sym":null}', "sym"),
        (b'{"ev":"A","sym":"X","otc":1}', "otc"),
        (b'{"ev":"C","p":"X","x":"044"}', "x"),
        (b'{"ev":"C","p":"X","x":"4.5"}', "x"),
        (b'{"ev":"XT","pair":"X","i":1.5}', "i"),
        (b'{"ev":"XL2","pair":"X","b":[[1,2,3]]}', "b"),
        (b'{"ev":"XL2","pair":"X","b":[1,2]}', "b"),
        (b'{"ev":"XL2","pair":"X","b":[["1",2]]}', "b"),
        (b'{"ev":"T","sym":"X\\ud800"}', "sym"),
        (b'{"ev":"T","sym":"X","i":"\xff"}', "i"),
        (b'{"ev":"T","ev":"Q","sym":"X"}', "ev"),
    ],
)
def test_wrong_types_skip_the_event(bad, field):
    dec = fastfeed.PolygonDecoder()
    err = feed_err(dec, b"[" + GOOD + b"," + bad + b"," + GOOD + b"]")
    assert err.events_written == 2
    assert err.field == field, err
    assert dec.stats["skipped"] == 1
    assert [t.symbol for t in dec.drain("T")] == ["OK", "OK"]


@pytest.mark.parametrize("bad", [b'{"sym":"X"}', b'{"ev":5,"sym":"X"}', b"5", b'"T"', b"[]", b"null"])
def test_not_an_event_is_skipped_with_error(bad):
    dec = fastfeed.PolygonDecoder()
    err = feed_err(dec, b"[" + GOOD + b"," + bad + b"," + GOOD + b"]")
    assert err.events_written == 2
    assert dec.stats["skipped"] == 1


def test_unknown_ev_is_a_counted_skip_without_error():
    dec = fastfeed.PolygonDecoder()
    assert dec.feed(b'[{"ev":"ZZZ","x":1},' + GOOD + b',{"ev":"FUTURE_EVENT","p":[1]}]') == 1
    assert dec.stats["unknown_ev"] == 2 and dec.stats["skipped"] == 2


def test_too_large():
    dec = fastfeed.PolygonDecoder(max_message_size=100)
    err = feed_err(dec, b"[" + b",".join([GOOD] * 10) + b"]")
    assert "too large" in str(err)
    assert dec.feed(b"[" + GOOD + b"]") == 1


def test_huge_frame_decodes():
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    n = 50_000
    assert dec.feed(b"[" + b",".join([GOOD] * n) + b"]") == n
    assert dec.stats["events"] == n


def test_deep_nesting_in_unknown_key():
    dec = fastfeed.PolygonDecoder()
    deep = b"[" * 100 + b"]" * 100
    err = feed_err(dec, b"[" + GOOD + b',{"ev":"T","zz":' + deep + b"}]")
    assert err.events_written == 1


def test_error_has_offset_and_event_type():
    dec = fastfeed.PolygonDecoder()
    err = feed_err(dec, b'[{"ev":"Q","sym":"X","bp":"x"}]')
    assert err.event_type == "Q" and err.field == "bp" and err.offset == 26
    assert isinstance(err, ValueError)


def test_whitespace_only_after_some_separators():
    """Compact "ev" pairs followed by spaced separators (each fast path hands over to the
    general code at the same position), warm and cold."""
    frame = (b'[{"ev":"T", "sym":"A","p":1.5 ,"s":10,\n"t":1},'
             b'{"ev":"Q",\t"sym":"B", "bp":1.25,"bs":3 }, {"ev":"T","sym":"A", "p":2}]')
    check_frame(frame, 3)
    dec = fastfeed.PolygonDecoder()
    dec.feed(b'[{"ev":"T","sym":"A","p":1.5,"s":10,"t":1},{"ev":"Q","sym":"B","bp":1.25,"bs":3}]')
    drain_all(dec)
    assert dec.feed(frame) == 3
    assert_same(drain_all(dec), expected_by_ev(orjson.loads(frame)))


def test_every_small_message_length_and_no_stale_bytes():
    """Small messages are decoded from a padded copy: every length (each size class of the
    copy: under 8, 16 and 32 bytes, whole and partial 32-byte blocks, up to the 1024-byte
    limit and past it) decodes like orjson, and no byte of a longer message fed before is
    ever read past the end of a shorter one: each of its prefixes is an error that publishes
    nothing."""
    ev = b'{"ev":"T","sym":"ABCD","x":4,"p":101.25,"s":300,"c":[12,37],"t":1767312000123}'
    dec = fastfeed.PolygonDecoder()
    for pad in range(0, 1100, 7):
        frame = b"[" + b" " * pad + ev + b"]"
        assert dec.feed(frame) == 1, pad
        assert_same(drain_all(dec), expected_by_ev(orjson.loads(frame)))
    full = b"[" + ev + b"," + ev + b"]"
    for n in range(1, len(full)):
        assert dec.feed(full) == 2
        drain_all(dec)
        with pytest.raises(fastfeed.ProtocolError) as exc:
            dec.feed(full[:n])
        want = (n >= 1 + len(ev)) + (n >= 2 + 2 * len(ev))  # complete events in the prefix
        assert exc.value.events_written == want, n
        assert [t.symbol for t in dec.drain("T")] == ["ABCD"] * want, n


def test_event_separators():
    """',{' between events (the fast path) and every other separator decode alike; a missing
    or doubled comma, or a comma before ']', is malformed."""
    a = b'{"ev":"T","sym":"A","p":1.5,"s":10}'
    b = b'{"ev":"Q","sym":"B","bp":1.25,"bs":3}'
    for sep in (b",", b" ,", b", ", b",\n", b"\t,\r\n "):
        check_frame(b"[" + a + sep + b + sep + a + b"]", 3)
    for bad in (b"[" + a + b + b"]", b"[" + a + b",," + b + b"]", b"[" + a + b",]"):
        dec = fastfeed.PolygonDecoder()
        err = feed_err(dec, bad)
        assert err.events_written == 1, bad
        assert [t.symbol for t in dec.drain("T")] == ["A"], bad


def test_feed_takes_the_message_positionally_only():
    """feed() is a one-argument C method (METH_O: no keyword parsing per message)."""
    dec = fastfeed.PolygonDecoder()
    assert dec.feed(b"[]") == 0
    with pytest.raises(TypeError):
        dec.feed(message=b"[]")  # type: ignore[call-arg]
