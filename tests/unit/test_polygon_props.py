"""Property-based round trips: random events -> orjson.dumps (shuffled keys, extra keys) -> decode,
compared with ``json.loads`` of the same bytes: every value equal bit for bit, strings longer than
their slot kept whole, keys without a slot kept (in wire order)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_polygon_decode import EV_CODES, KNOWN_KEYS, assert_same, drain_all, expected_by_ev, same

import fastfeed
from fastfeed._records_meta import LAYOUTS

pytest.importorskip("fastfeed._native.polygon")

I64 = st.integers(-(2**63), 2**63 - 1)
EXACT_INT = st.integers(-(2**53), 2**53)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
# text without lone surrogates; LONG_TEXT also beyond any slot (spilled) and with NUL bytes
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
LONG_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)


def fits(n):
    return TEXT.filter(lambda s: len(s.encode()) <= n)


def integral_float():
    return st.integers(-(2**62), 2**62).map(float).filter(lambda f: not (f == 0 and str(f).startswith("-")))


def value_strategy(kind: str):
    base, _, alt = kind.partition("|")
    if base == "f64":
        return st.one_of(FLOATS, EXACT_INT)
    if base == "i64":
        extra = st.integers(-(2**62), 2**62).map(str) if alt == "str" else integral_float()
        return st.one_of(I64, extra)
    if base == "bool":
        return st.booleans()
    if base.startswith("fixstr:"):
        n = int(base[7:])
        s = st.one_of(fits(n), LONG_TEXT)
        if alt == "int":
            s = st.one_of(s, st.integers(-(10**15), 10**15), st.integers(-(2**63), 2**64 - 1))
        return s
    if base.startswith("i32arr:"):   # beyond the inline capacity too (kept whole in the spill)
        return st.lists(st.integers(-(2**31), 2**31 - 1), max_size=int(base[7:]) + 4)
    if base.startswith("levels:"):
        num = st.one_of(FLOATS, EXACT_INT)
        level = st.lists(num, min_size=2, max_size=2)
        return st.one_of(st.lists(level, max_size=6),
                         st.lists(level, min_size=int(base[7:]) - 2, max_size=int(base[7:]) + 3))
    raise AssertionError(kind)


JSON_EXTRA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | FLOATS | TEXT,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3),
    max_leaves=6,
)


@st.composite
def event(draw):
    ev = draw(st.sampled_from(EV_CODES))
    lay = next(lay for lay in LAYOUTS.values() if lay["feed"] == "polygon" and ev in lay["rtypes"])
    items = [("ev", ev)]
    if draw(st.booleans()) or True:
        items.append((lay["symbol"]["wire"], draw(TEXT)))
    for f in lay["fields"]:
        if draw(st.integers(0, 3)):
            items.append((f["wire"], draw(value_strategy(f["kind"]))))
    known = KNOWN_KEYS[ev]
    extras = draw(st.lists(st.tuples(TEXT.filter(lambda k: k not in known), JSON_EXTRA), max_size=3))
    items += extras
    items = draw(st.permutations(items))
    return dict(items)


def unknown_keys_in_order(got: dict[str, list[dict]], want: dict[str, list[dict]]) -> None:
    """to_dict(): the record's keys first, then the keys without a slot in wire order."""
    for ev, evs in want.items():
        for g, w in zip(got[ev], evs, strict=True):
            extra = [k for k in w if k not in KNOWN_KEYS[ev]]
            assert list(g)[len(g) - len(extra):] == extra, (g, w)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event(), max_size=8))
def test_round_trip(events):
    import json

    frame = orjson.dumps(events)
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    assert dec.feed(frame) == len(events)
    got = drain_all(dec)
    want = expected_by_ev(json.loads(frame))
    assert_same(got, want)
    unknown_keys_in_order(got, want)
    assert dec.stats["unknown_keys"] == sum(len(e) - len(KNOWN_KEYS[e["ev"]] & e.keys()) for e in events)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event(), min_size=1, max_size=6), st.integers(1, 40))
def test_spill_survives_ring_reuse(events, repeat):
    """Frames fed over and over into small rings (their slots and spill logs reused, one consumer
    lagging behind): every batch drained holds exactly what json.loads reads, dicts included."""
    import json

    from fastfeed._native.pgdict import to_dicts

    frame = orjson.dumps(events)
    want = expected_by_ev(json.loads(frame))
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 12)
    slow = {ev: dec.ring(ev).consumer() for ev in EV_CODES}
    for _ in range(repeat):
        assert dec.feed(frame) == len(events)
        got = {ev: dec.drain(ev) for ev in EV_CODES}
        assert_same({ev: [e.to_dict() for e in b] for ev, b in got.items()}, want)
        assert_same({ev: to_dicts(b) for ev, b in got.items()}, want)
    lagged = {ev: [e.to_dict() for e in c.drain()] for ev, c in slow.items()}
    # whatever the lagging consumer still gets (the newest events: drop-oldest) is intact
    assert_same(lagged, {ev: (want[ev] * repeat)[len(want[ev]) * repeat - len(lagged[ev]):]
                         for ev in EV_CODES})


@settings(max_examples=150, deadline=None)
@given(st.lists(event(), min_size=1, max_size=4), st.data())
def test_whitespace_and_escapes(events, data):
    """The same events written with indentation and \\u escapes decode identically."""
    import json

    text = json.dumps(events, ensure_ascii=True, indent=data.draw(st.sampled_from([None, 1, "\t"])))
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    assert dec.feed(text.encode()) == len(events)
    assert_same(drain_all(dec), expected_by_ev(orjson.loads(text)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(blob):
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    try:
        dec.feed(blob)
    except fastfeed.ProtocolError:
        pass
    assert dec.feed(b'[{"ev":"T","sym":"A"}]') == 1


# --- the key loop's fast lane ---------------------------------------------------------------
# After the first event of a type, the decoder expects each event's keys in the order the
# previous one had and decodes them through a fast lane that falls back to the general code on
# anything unusual.  These properties keep the order fixed (so the lane is taken) while values
# switch between the lane's common spellings and everything else, and keys go missing.


def common_value(kind: str):
    """The spellings the lane decodes itself (short plain numbers, digit-string ids, ASCII)."""
    base, _, alt = kind.partition("|")
    if base == "f64":
        return st.one_of(st.integers(0, 10**7).map(lambda i: i / 100), st.integers(0, 10**6))
    if base == "i64":
        small = st.integers(0, 10**15)
        return st.one_of(small, small.map(str)) if alt == "str" else small
    if base.startswith("fixstr:"):
        n = int(base[7:])
        return st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", max_size=min(n, 15))
    if base.startswith("i32arr:"):
        return st.lists(st.integers(0, 10**6), max_size=int(base[7:]))
    return value_strategy(kind)


@st.composite
def same_order_events(draw):
    ev = draw(st.sampled_from(EV_CODES))
    lay = next(lay for lay in LAYOUTS.values() if lay["feed"] == "polygon" and ev in lay["rtypes"])
    sym = lay["symbol"]["wire"]
    keys = draw(st.permutations([sym] + [f["wire"] for f in lay["fields"]]))
    kinds = {f["wire"]: f["kind"] for f in lay["fields"]}
    ev_first = draw(st.integers(0, 4)) > 0
    out = []
    for _ in range(draw(st.integers(2, 10))):
        items = [("ev", ev)] if ev_first else []
        for k in keys:
            if draw(st.integers(0, 11)) == 0:
                continue  # an optional key missing from this one event
            if draw(st.integers(0, 40)) == 0:
                v = {"wrong": [1]}  # a wrong type for every kind: the event is skipped
            elif k == sym:
                v = draw(st.one_of(st.sampled_from(["AAPL", "X", "BRK.B", "O:SPY251219C00650000"]),
                                   TEXT))
            elif draw(st.integers(0, 3)):
                v = draw(common_value(kinds[k]))
            else:
                v = draw(value_strategy(kinds[k]))
            items.append((k, v))
        if not ev_first:
            items.insert(draw(st.integers(0, len(items))), ("ev", ev))
        out.append(dict(items))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(same_order_events(), min_size=1, max_size=3), st.integers(1, 4))
def test_round_trip_same_key_order(groups, split):
    """Events whose keys keep one order (the fast lane) decode exactly as orjson reads them,
    whether they arrive in one frame or several (the learnt order carries across frames)."""
    events = [e for g in groups for e in g]
    good = [e for e in events if {"wrong": [1]} not in e.values()]
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    n = 0
    for i in range(0, len(events), split):
        try:
            n += dec.feed(orjson.dumps(events[i:i + split]))
        except fastfeed.ProtocolError as exc:  # a skipped event: the others are published
            assert "wrong" in str(exc) or "type" in str(exc), exc
            n += exc.events_written
    assert n == len(good)
    assert_same(drain_all(dec), expected_by_ev(orjson.loads(orjson.dumps(good))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(same_order_events(), st.data())
def test_cut_frames_publish_exactly_the_complete_events(group, data):
    """A frame cut at any byte (small frames are decoded from a zero-padded copy, so the fast
    lane reads past the cut): the events complete before the cut are published, nothing else,
    and the decoder goes on with the next frame -- with the learnt key order warm."""
    good = [e for e in group if {"wrong": [1]} not in e.values()]
    frame = orjson.dumps(good)
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    dec.feed(frame)                      # learn the key order
    drain_all(dec)
    cut = data.draw(st.integers(0, len(frame) - 1))
    head = frame[:cut]
    complete = 0
    for k in range(1, len(good) + 1):
        if len(orjson.dumps(good[:k])) - 1 <= cut:   # "[e1,...,ek" fits before the cut
            complete = k
    try:
        n = dec.feed(head)
    except fastfeed.ProtocolError as exc:
        n = exc.events_written
    assert n == complete
    assert_same(drain_all(dec), expected_by_ev(orjson.loads(orjson.dumps(good[:complete]))))
    assert dec.feed(frame) == len(good)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(same_order_events(), min_size=1, max_size=3),
       st.sampled_from([(",", ":"), (", ", ":"), (",", ": "), (", ", ": "), (",\n", ":"),
                        (" ,", ":")]),
       st.sampled_from([None, 1]), st.integers(1, 4))
def test_same_key_order_with_white_space(groups, separators, indent, split):
    """The fast lane hands over to the general code wherever white space sits (after commas,
    around colons, at line starts), warm or cold, in small (padded) and large frames."""
    import json

    events = [e for g in groups for e in g if {"wrong": [1]} not in e.values()]
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    n = 0
    for i in range(0, len(events), split):
        n += dec.feed(json.dumps(events[i:i + split], separators=separators, indent=indent,
                                 ensure_ascii=False).encode())
    assert n == len(events)
    assert_same(drain_all(dec), expected_by_ev(orjson.loads(orjson.dumps(events))))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event(), max_size=12))
def test_handler_dicts_are_to_dict_exactly(events):
    """The handlers' dicts (pgdict, values written into a copy of a per-layout template) are
    ``to_dict()`` key for key in the same order, value for value; the cyclic GC tracks exactly
    those holding a container, as ``PyDict_SetItem`` would; building them again from the same
    batch changes none of those handed out before (the templates are never written into)."""
    import copy
    import gc

    from fastfeed._native.pgdict import to_dicts

    frame = orjson.dumps(events)
    dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)
    assert dec.feed(frame) == len(events)
    for ev in EV_CODES:
        batch = dec.drain(ev)
        want = [e.to_dict() for e in batch]
        first = to_dicts(batch)
        kept = copy.deepcopy(first)
        again = to_dicts(batch)
        for dicts in (first, again):
            assert [list(d) for d in dicts] == [list(w) for w in want]
            assert all(same(d, w) for d, w in zip(dicts, want, strict=True))
            for d in dicts:
                assert gc.is_tracked(d) == any(isinstance(v, (list, dict)) for v in d.values()), d
        assert all(same(d, k) for d, k in zip(first, kept, strict=True))
