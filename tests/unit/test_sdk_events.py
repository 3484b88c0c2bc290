"""SDK-faithful tastytrade events (fastfeed._sdk_events) against tastytrade 13.2.3's own models.

The same COMPACT rows go through the SDK's ``Event.from_stream`` (pydantic validation) and
through fastfeed's decoder + lazy SDK classes; ``model_dump()``, ``model_dump_json()`` and every
value's type must be equal, for every event type the SDK has. Rows the SDK drops (a required
field NaN / null, a fractional int) are delivered by fastfeed with the documented values.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
from decimal import Decimal
from typing import Any

import pytest

pytestmark = pytest.mark.peer

td = pytest.importorskip("tastytrade.dxfeed")
from pydantic.alias_generators import to_camel

import fastfeed
from fastfeed import dxfeed
from fastfeed._native.lazymodel import LazyBatch
from fastfeed._sdk_events import is_sdk_class, sdk_class
from fastfeed.sim.generators import DXLinkGenerator, encode_compact

SDK_TYPES = ["Quote", "Trade", "Greeks", "Summary", "Profile", "Candle", "TimeAndSale",
             "TheoPrice", "Underlying"]
SYMBOLS = ["SPY", "SPX", "BTC/USD:CXTALP", ".SPY260116C600", "AAPL{=5m,tho=true}"]
NONFINITE = ("NaN", "Infinity", "-Infinity")


def _rows(etype: str, n: int, seed: int, edge_rate: float) -> tuple[list[str], list[list[Any]]]:
    cls = getattr(td, etype)
    fields = [to_camel(f) for f in cls.model_fields]
    g = DXLinkGenerator(seed, edge_rate=edge_rate)
    rows = []
    for i in range(n):
        ev = g.event(etype, SYMBOLS[i % len(SYMBOLS)], flags=(i % 3) * 4)
        rows.append([ev.get(f) for f in fields])
    return fields, rows


def _decode(etype: str, fields: list[str], rows: list[list[Any]]) -> Any:
    frame = encode_compact(9, [(etype, rows)]).decode()
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 9, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.1, "eventFields": {etype: fields}}))
    assert dec.feed(frame) == len(rows)
    # the SDK parses the same text
    return dec.drain(etype), json.loads(frame)["data"][1]


def _nul_free(d: dict[str, Any]) -> dict[str, Any]:
    """fastfeed reads a "\\u0000" char as "" (the SDK keeps "\\x00"): the one known difference."""
    return {k: ("" if v == "\x00" else v) for k, v in d.items()}


@pytest.mark.parametrize("etype", SDK_TYPES)
def test_model_dump_equals_sdk(etype: str) -> None:
    sdk_cls = getattr(td, etype)
    model = sdk_class(etype)
    assert model is not None and issubclass(model, sdk_cls) and model.__name__ == etype
    fields, rows = _rows(etype, 400, seed=7, edge_rate=0.3)
    batch, values = _decode(etype, fields, rows)
    ours = list(LazyBatch(batch, model))
    assert len(ours) == len(rows)
    nf = len(fields)
    same = dropped = 0
    for i, ev in enumerate(ours):
        raw = values[i * nf:(i + 1) * nf]
        theirs = sdk_cls.from_stream(raw)
        assert isinstance(ev, sdk_cls) and isinstance(ev, td.Event)
        if not theirs:
            dropped += 1
            _check_dropped_row(ev, raw, fields)
            continue
        t = theirs[0]
        assert _nul_free(ev.model_dump()) == _nul_free(t.model_dump()), (i, raw)
        assert list(ev.model_dump()) == list(t.model_dump())  # same key order
        for name in sdk_cls.model_fields:
            tv, ov = getattr(t, name), getattr(ev, name)
            assert type(ov) is type(tv) or (tv == "\x00" and ov == ""), (name, tv, ov)
        if "\x00" not in t.model_dump().values():
            assert ev.model_dump_json() == t.model_dump_json()
            assert repr(ev) == repr(t)
        assert ev.model_fields_set == t.model_fields_set
        same += 1
    assert same > 100, (same, dropped)


def _check_dropped_row(ev: Any, raw: list[Any], fields: list[str]) -> None:
    """The SDK dropped this row: fastfeed delivers it with the documented values."""
    reasons = 0
    for camel, wire in zip(fields, raw):
        name = next(n for n in type(ev).model_fields if to_camel(n) == camel)
        info = type(ev).model_fields[name]
        v = getattr(ev, name)
        if wire in NONFINITE and info.is_required():
            reasons += 1
            if isinstance(v, Decimal):
                if name in ("open", "high", "low", "close"):
                    assert v == 0
                else:
                    assert not v.is_finite()
            else:
                assert v is None, (name, v)
        elif wire is None and info.is_required():
            reasons += 1
        elif isinstance(wire, float) and isinstance(v, float):
            assert not wire.is_integer() and v == wire   # fractional value in an int field
            reasons += 1
    assert reasons, ("the SDK dropped a row fastfeed has no documented reason for", raw)


def test_missing_values_as_the_sdk_gives_them() -> None:
    Q = sdk_class("Quote")
    fields = [to_camel(f) for f in td.Quote.model_fields]
    row = ["SPY", 0, 0, 0, 0, "Q", 0, "Q", 1.5, 1.75, "NaN", "Infinity"]
    batch, _ = _decode("Quote", fields, [row])
    ev = next(iter(LazyBatch(batch, Q)))
    assert ev.bid_size == Decimal(0) and ev.ask_size == Decimal(0)   # 13.x: missing size -> 0
    sdk = td.Quote.from_stream(row)[0]
    assert ev.model_dump() == sdk.model_dump()
    assert ev.mid_price == sdk.mid_price == Decimal("1.625")
    assert ev.micro_price == sdk.micro_price      # sizes 0 -> mid (the SDK warns the same)
    # the SDK drops an event with a NaN bid; fastfeed delivers it, NaN kept as Decimal('NaN')
    row2 = ["SPY", 0, 0, 0, 0, "Q", 0, "Q", "NaN", 1.75, 100.0, 200.0]
    assert td.Quote.from_stream(row2) == []
    batch, _ = _decode("Quote", fields, [row2])
    ev2 = next(iter(LazyBatch(batch, Q)))
    assert ev2.bid_price.is_nan() and ev2.ask_price == Decimal("1.75")
    assert ev2.bid_size == Decimal("100.0")
    # Trade: optional fields -> None, size an int
    tf = [to_camel(f) for f in td.Trade.model_fields]
    trow = ["SPY", 1, 2, 3, 4, "Q", 20000, "UP", False, 559.36, "NaN", 100.0, 1.3743299E7,
            "-Infinity"]
    batch, _ = _decode("Trade", tf, [trow])
    t = next(iter(LazyBatch(batch, sdk_class("Trade"))))
    assert t.model_dump() == td.Trade.from_stream(trow)[0].model_dump()
    assert t.change is None and t.day_turnover is None and t.size == 100
    assert type(t.size) is int and t.day_volume == Decimal("13743299.0")


def test_lazy_conversion_per_field_read() -> None:
    from pydantic import BaseModel

    real_dict = BaseModel.__dict__["__dict__"]
    fields, rows = _rows("Quote", 3, seed=1, edge_rate=0.0)
    batch, _ = _decode("Quote", fields, rows)
    ev = next(iter(LazyBatch(batch, sdk_class("Quote"))))
    assert real_dict.__get__(ev) == {}                 # nothing converted on arrival
    price = ev.bid_price
    assert isinstance(price, Decimal)
    assert real_dict.__get__(ev) == {"bid_price": price}   # only the field read
    assert ev.bid_price is price                       # converted once
    assert price + Decimal("0.01") > price             # Decimal arithmetic works
    dumped = ev.model_dump()                           # completes the rest, in field order
    assert list(real_dict.__get__(ev)) == list(td.Quote.model_fields)
    assert dumped["bid_price"] is price


def test_pydantic_behaviour_of_lazy_instances() -> None:
    fields, rows = _rows("Greeks", 5, seed=3, edge_rate=0.0)
    batch, values = _decode("Greeks", fields, rows)
    evs = list(LazyBatch(batch, sdk_class("Greeks")))
    sdk = td.Greeks.from_stream(values)
    assert len(sdk) == 5
    a, b = evs[0], evs[1]
    assert pickle.loads(pickle.dumps(a)).model_dump() == sdk[0].model_dump()
    assert copy.copy(b).model_dump() == sdk[1].model_dump()
    assert copy.deepcopy(evs[2]) == evs[2]
    assert evs[3].model_copy(update={"delta": Decimal(1)}).delta == Decimal(1)
    assert dict(evs[4]) == dict(sdk[4])
    assert vars(evs[4]) == vars(sdk[4])
    assert evs[4].snapshot_begin == sdk[4].snapshot_begin
    evs[0].delta = Decimal("0.5")                      # assignment as on the SDK's model
    assert evs[0].delta == Decimal("0.5") and evs[0].model_dump()["delta"] == Decimal("0.5")
    assert str(evs[1]) == str(sdk[1])
    assert evs[1].model_dump(by_alias=True) == sdk[1].model_dump(by_alias=True)


def test_sdk_class_lookup() -> None:
    assert sdk_class("TradeETH") is None and sdk_class("Order") is None   # not in the SDK
    assert is_sdk_class(td.Quote) and is_sdk_class(sdk_class("Quote"))
    assert not is_sdk_class(dxfeed.Quote) and not is_sdk_class("Quote")
    from fastfeed import _sdk_events

    assert _sdk_events.Quote is sdk_class("Quote")
    with pytest.raises(AttributeError):
        _sdk_events.Nope  # noqa: B018


def test_fractional_int_kept_and_nonfinite_int_is_none() -> None:
    from fastfeed._native.lazymodel import INT, NO_DEFAULT, LazyField

    f = LazyField("size", "size", INT, NO_DEFAULT)
    assert f.convert(100.0) == 100 and type(f.convert(100.0)) is int
    assert f.convert(1.5) == 1.5
    assert f.convert(math.nan) is None
    assert LazyField("size", "size", INT, 7).convert(math.inf) == 7


def test_decimal_of_each_double_and_both_zeros() -> None:
    from fastfeed._native.lazymodel import DECIMAL, NO_DEFAULT, LazyField

    f = LazyField("bid_price", "bid_price", DECIMAL, NO_DEFAULT)
    assert str(f.convert(0.0)) == "0.0" and str(f.convert(-0.0)) == "-0.0"
    assert str(f.convert(0.0)) == "0.0"
    for x in (576.88, 1.3743299e7, 1e16, 4.8e-12, 0.1 + 0.2, -3.5):
        assert f.convert(x) == Decimal(repr(x)) and str(f.convert(x)) == str(Decimal(repr(x)))
        assert f.convert(x) is f.convert(x)             # repeated prices: converted once
        # the SDK's pydantic conversion of the same float
        assert td.Quote(event_symbol="X", event_time=0, sequence=0, time_nano_part=0,
                        bid_time=0, bid_exchange_code="Q", ask_time=0, ask_exchange_code="Q",
                        bid_price=x, ask_price=1.0).bid_price.as_tuple() == f.convert(x).as_tuple()
    assert f.convert(7) == Decimal(7)                   # an integer slot
