"""Event objects: both spellings, repr, equality by value, to_dict, FIELDS — for every class."""

from __future__ import annotations

import math
import pickle
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfeed import dxfeed, polygon_events
from fastfeed._records_meta import ENUMS, LAYOUTS

DX_CLASSES = [getattr(dxfeed, n) for n, lay in LAYOUTS.items() if lay["feed"] == "dxfeed"]
PG_CLASSES = [getattr(polygon_events, n) for n, lay in LAYOUTS.items() if lay["feed"] == "polygon"]

TT_13_2_3_ORDER = {
    "Quote": ["eventSymbol", "eventTime", "sequence", "timeNanoPart", "bidTime", "bidExchangeCode",
              "askTime", "askExchangeCode", "bidPrice", "askPrice", "bidSize", "askSize"],
    "Greeks": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence", "price",
               "volatility", "delta", "gamma", "theta", "rho", "vega"],
}


def value_strategy(f: dict[str, Any]) -> st.SearchStrategy[Any]:
    base = f["base"]
    if base == "f64":
        return st.floats(allow_nan=True, allow_infinity=True)
    if base == "i64":
        return st.integers(-(2**63), 2**63 - 1)
    if base == "i32":
        return st.integers(-(2**31), 2**31 - 1)
    if base == "bool":
        return st.booleans()
    if base == "enum":
        return st.sampled_from(ENUMS[f["enum"]])
    if base == "char":
        return st.characters(min_codepoint=1, max_codepoint=0x10FFFF, blacklist_categories=("Cs",))
    if base == "str":
        return st.one_of(st.none(), st.text(max_size=30))
    if base == "fixstr":
        n = f["n"]
        return st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=n)
    if base == "i32arr":
        return st.lists(st.integers(-(2**31), 2**31 - 1), max_size=f["n"])
    if base == "levels":
        num = st.floats(allow_nan=False, allow_infinity=False, width=64)
        return st.lists(st.tuples(num, num).map(list), max_size=5)
    raise AssertionError(base)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@pytest.mark.parametrize("cls", DX_CLASSES, ids=lambda c: c.__name__)
def test_dxfeed_defaults_both_spellings_repr_and_fields(cls: type) -> None:
    lay = LAYOUTS[cls.__name__]
    assert cls.FIELDS[0] == "eventSymbol"
    assert list(cls.FIELDS[1:]) == [f["wire"] for f in lay["fields"]]
    if cls.__name__ in TT_13_2_3_ORDER:
        assert list(cls.FIELDS) == TT_13_2_3_ORDER[cls.__name__]
    ev = cls(event_symbol="SPY")
    for f in lay["fields"]:
        snake, camel = getattr(ev, f["attr"]), getattr(ev, f["wire"])
        assert same(snake, camel)
        if f["base"] == "f64":
            assert math.isnan(snake)          # slots not sent are NaN
        elif f["base"] in ("i64", "i32"):
            assert snake == 0
        elif f["base"] == "char":
            assert snake == ""
    assert ev.eventSymbol == ev.event_symbol == "SPY"
    text = repr(ev)
    assert text.startswith(f"{cls.__name__}(eventSymbol='SPY', ")
    assert all(f"{name}=" in text for name in cls.FIELDS)
    assert list(ev.to_dict()) == list(cls.FIELDS)


def test_quote_repr_matches_the_tastytrade_style() -> None:
    q = dxfeed.Quote(event_symbol="SPY", bid_price=576.88, ask_size=1313.0, bid_exchange_code="Q")
    assert repr(q) == (
        "Quote(eventSymbol='SPY', eventTime=0, sequence=0, timeNanoPart=0, bidTime=0, "
        "bidExchangeCode='Q', askTime=0, askExchangeCode='', bidPrice=576.88, askPrice=nan, "
        "bidSize=nan, askSize=1313.0)"
    )


@pytest.mark.parametrize("cls", DX_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_dxfeed_random_records_round_trip(cls: type, data: st.DataObject) -> None:
    lay = LAYOUTS[cls.__name__]
    values = {f["attr"]: data.draw(value_strategy(f), label=f["attr"]) for f in lay["fields"]}
    sym = data.draw(st.text(min_size=1, max_size=20))
    ev = cls(event_symbol=sym, **values)
    for f in lay["fields"]:
        assert same(getattr(ev, f["attr"]), values[f["attr"]]), f["attr"]
        assert same(getattr(ev, f["wire"]), values[f["attr"]])
    twin = cls(event_symbol=sym, **values)
    assert ev == twin and hash(ev) == hash(twin)          # NaN-holding events equal their copies
    assert pickle.loads(pickle.dumps(ev)) == ev
    other = cls(event_symbol=sym + "X", **values)
    assert ev != other


@pytest.mark.parametrize("cls", PG_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_polygon_to_dict_has_exactly_the_keys_given(cls: type, data: st.DataObject) -> None:
    lay = LAYOUTS[cls.__name__]
    chosen = data.draw(st.lists(st.sampled_from(lay["fields"]), unique_by=lambda f: f["wire"]))
    wire: dict[str, Any] = {}
    for f in chosen:
        kind = f["kind"]
        if kind == "f64":
            v = data.draw(st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False)))
        elif kind == "i64":
            v = data.draw(st.integers(-(2**63), 2**63 - 1))
        elif kind == "i64|str":
            v = data.draw(st.one_of(st.integers(0, 999), st.integers(0, 999).map(str)))
        elif kind == "fixstr:32|int":
            v = data.draw(st.one_of(st.integers(0, 10**15), st.text(alphabet="0123456789", min_size=1, max_size=20)))
        else:
            v = data.draw(value_strategy(f))
        wire[f["wire"]] = v
    sym_key = lay["symbol"]["wire"]
    with_symbol = data.draw(st.booleans())
    kwargs = dict(wire)
    if with_symbol:
        kwargs[sym_key] = "AAPL"
    ev = cls(**kwargs)
    expected = {"ev": cls.EV_CODES[0], **({sym_key: "AAPL"} if with_symbol else {}), **wire}
    got = ev.to_dict()
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert type(got[k]) is type(v) and same(got[k], v), k
    for f in lay["fields"]:
        if f["wire"] not in wire:
            assert getattr(ev, f["attr"]) is None


def test_events_are_immutable() -> None:
    q = dxfeed.Quote(event_symbol="SPY")
    with pytest.raises(AttributeError):
        q.bid_price = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        dxfeed.Quote(no_such_field=1)


def test_indexed_event_flag_properties() -> None:
    g = dxfeed.Greeks(event_symbol="X", event_flags=0x04 | 0x08, index=7235129486797176832)
    assert g.snapshot_begin and g.snapshot_end and not g.remove and not g.pending
    assert g.index == 7235129486797176832


def test_level2_book_keeps_int_and_float_levels() -> None:
    book = polygon_events.Level2Book(pair="BTC-USD", b=[[64210, 0.5], [64209.8, 2]], a=[], t=1)
    assert book.to_dict() == {"ev": "XL2", "pair": "BTC-USD", "b": [[64210, 0.5], [64209.8, 2]], "a": [], "t": 1}
    assert type(book.bid_prices[0][0]) is int and type(book.bid_prices[1][1]) is int


def test_polygon_event_type_attribute_and_absent_floats_are_nan_in_records() -> None:
    import numpy as np

    from fastfeed._native.ring import RecordRing
    from fastfeed._native.symbols import SymbolTable

    t = polygon_events.EquityTrade(sym="AAPL", p=1.5)
    assert t.event_type == "T" and t.to_dict()["ev"] == "T"
    assert t.size is None                        # absent key
    ring = RecordRing("EquityTrade", "T", t._RTYPE, SymbolTable(), 8)
    cons = ring.consumer()
    ring.push(t.record)
    arr = cons.drain().to_numpy()
    assert arr["price"][0] == 1.5 and np.isnan(arr["size"][0])
