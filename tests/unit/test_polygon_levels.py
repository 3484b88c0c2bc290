"""The book-level lane of the polygon decoder (XL2 ``b`` / ``a``): levels located by their
brackets and commas, numbers parsed from known bounds, the general code going on from the first
level the lane does not take.  Every number spelling JSON allows, in small (padded) and large
frames, with and without white space, books past the inline capacity and at the very end of a
message: the values equal json.loads' bit for bit (ints stay ints)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_polygon_decode import assert_same, drain_all, expected_by_ev

import fastfeed

pytest.importorskip("fastfeed._native.polygon")

CAP = 100  # Level2Book's inline levels per side

DIGITS = st.text("0123456789", min_size=1, max_size=20)


@st.composite
def number_text(draw) -> str:
    """Any JSON number a book level can hold (ints within 2^53: at most 15 digits)."""
    sign = draw(st.sampled_from(["", "", "", "-"]))
    if draw(st.integers(0, 5)) == 0:
        whole = "0"
    else:
        whole = draw(st.sampled_from("123456789")) + draw(st.text("0123456789", max_size=19))
    frac = "." + draw(DIGITS) if draw(st.integers(0, 3)) else ""
    exp = ""
    if draw(st.integers(0, 7)) == 0:
        exp = draw(st.sampled_from("eE")) + draw(st.sampled_from(["", "+", "-"])) + draw(
            st.text("0123456789", min_size=1, max_size=2))
    if not frac and not exp:
        whole = whole[:15]
    return sign + whole + frac + exp


COMMON = st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 99999).map(str),
                   st.text("0123456789", min_size=1, max_size=7))


def book(levels: list[tuple[str, str]], sep: str) -> str:
    return "[" + sep.join(f"[{p},{s}]" for p, s in levels) + "]"


@st.composite
def xl2_event(draw) -> str:
    num = st.one_of(COMMON, number_text()) if draw(st.booleans()) else COMMON
    level = st.tuples(num, num)
    sides = [draw(st.one_of(st.lists(level, max_size=30),
                            st.lists(level, min_size=CAP - 2, max_size=CAP + 3)))
             for _ in range(2)]
    sep = draw(st.sampled_from([",", ",", ",", ", ", " ,"]))
    items = ['"pair":"BTC-USD"', f'"b":{book(sides[0], sep)}', f'"a":{book(sides[1], sep)}',
             '"t":1767312000000', '"x":1', '"r":1767312000009']
    items = draw(st.permutations(items))
    return '{"ev":"XL2",' + ",".join(items) + "}"


def decode_equals_json(frame: bytes) -> None:
    dec = fastfeed.PolygonDecoder("crypto", ring_bytes=1 << 18)
    objs = json.loads(frame)
    assert dec.feed(frame) == len(objs)
    assert_same(drain_all(dec), expected_by_ev(objs))
    assert dec.stats["errors"] == 0 and dec.stats["skipped"] == 0
    longer = sum(max(0, len(o.get("b", [])) - CAP) + max(0, len(o.get("a", [])) - CAP) for o in objs)
    assert dec.stats["dropped_items"] == longer  # kept whole in the spill, counted


# full books (CAP + 3 levels a side) of long numbers are big draws: several per frame can
# exceed hypothesis' entropy budget per example, which its health check reports at random
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(xl2_event(), min_size=1, max_size=4))
def test_levels_equal_json_loads(events):
    decode_equals_json(("[" + ",".join(events) + "]").encode())


SHAPES = [
    # the lane's own spellings: d{1,8}(.d{1,8})? with at most 15 digits
    "0", "7", "12345678", "0.5", "0.000001", "1.0", "4195.84", "69999.123456", "12345678.1234567",
    "1234567.12345678", "99999999.9999999", "0.10000000",
    # everything else (the general number parser, still inside the lane or after it)
    "123456789", "123456789012345", "12345678.12345678", "123456789.5", "0.123456789",
    "1.5e3", "1E-7", "0.1e1", "-1.5", "-0", "-0.0", "-12345678", "1e22", "1e23",
    "9007199254740993.0", "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308",
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("where", ["small", "large", "end"])
def test_every_number_shape(shape, where):
    """Each shape as price and as size, among common levels; in a padded small frame, in a large
    frame, and as the last level of a large message (the lane's window reaches past the end)."""
    common = [("4195.84", "1.5"), ("4195.83", "12")]
    levels = [*common, (shape, "2.25"), ("4195.8", shape), (shape, shape), *common]
    ev = ('{"ev":"XL2","pair":"BTC-USD","t":1,"x":1,"r":2,"b":' + book(levels, ",") + ',"a":'
          + book(levels[::-1], ",") + "}")
    if where == "small":
        frame = f"[{ev}]"
    else:
        filler = '{"ev":"XL2","pair":"ETH-USD","t":1,"x":1,"r":2,"b":' + book(common * 40, ",") + "}"
        frame = f"[{filler},{ev}]" if where == "end" else f"[{ev},{filler}]"
    decode_equals_json(frame.encode())


def test_ints_beyond_2_53_skip_the_event():
    """A level integer a double cannot hold exactly: the event is skipped and reported, the
    others of the message are published."""
    good = '{"ev":"XL2","pair":"BTC-USD","t":1,"b":[[1.5,2]],"a":[]}'
    bad = '{"ev":"XL2","pair":"BTC-USD","t":2,"b":[[1.5,9007199254740993]],"a":[]}'
    dec = fastfeed.PolygonDecoder("crypto")
    with pytest.raises(fastfeed.ProtocolError) as ei:
        dec.feed(f"[{good},{bad},{good}]".encode())
    assert ei.value.events_written == 2
    assert [e.to_dict()["b"] for e in dec.drain("XL2")] == [[[1.5, 2]], [[1.5, 2]]]
