"""Differential test: the same COMPACT frames decoded by tastytrade 13.x's own models
(``Event.from_stream`` -> pydantic) and by fastfeed, compared field by field.

Where tastytrade differs, by design (documented, and asserted here so that a change is noticed):

* NaN / Infinity / -Infinity: tastytrade's ``change_nan_to_none`` validator replaces them with the
  field's default (``Decimal(0)`` for sizes, None for optional prices), and an event whose
  *required* Decimal field is NaN fails validation and is **dropped** (logged at debug level).
  fastfeed keeps the event and the exact float (NaN / inf).
* Decimal: tastytrade builds ``Decimal`` from the parsed Python float; fastfeed keeps the C double.
  ``float(tastytrade_value) == fastfeed_value`` holds for every finite value.
* ``null`` strings and events with a ``null`` in a required field are dropped by tastytrade;
  fastfeed delivers them with None / the empty default.
* tastytrade types some dxFeed doubles as ``int`` (TimeAndSale ``size``, Underlying volumes)
  and drops events whose value there is fractional; fastfeed keeps the double.
* ``"\\u0000"`` chars stay ``"\\x00"`` in tastytrade; fastfeed reads them as "" (no value).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

tt = pytest.importorskip("tastytrade")
from pydantic.alias_generators import to_camel
from tastytrade.dxfeed import (
    Candle as TCandle,
)
from tastytrade.dxfeed import (
    Greeks as TGreeks,
)
from tastytrade.dxfeed import (
    Profile as TProfile,
)
from tastytrade.dxfeed import (
    Quote as TQuote,
)
from tastytrade.dxfeed import (
    Summary as TSummary,
)
from tastytrade.dxfeed import (
    TheoPrice as TTheoPrice,
)
from tastytrade.dxfeed import (
    TimeAndSale as TTimeAndSale,
)
from tastytrade.dxfeed import (
    Trade as TTrade,
)
from tastytrade.dxfeed import (
    Underlying as TUnderlying,
)

import fastfeed

TT = {"Quote": TQuote, "Trade": TTrade, "Greeks": TGreeks, "Summary": TSummary,
      "Profile": TProfile, "Candle": TCandle, "TimeAndSale": TTimeAndSale,
      "TheoPrice": TTheoPrice, "Underlying": TUnderlying}
DATA = Path(__file__).resolve().parents[1] / "data" / "dxlink"


def tt_fields(cls):
    return [to_camel(n) for n in cls.model_fields]


def frames():
    out = []
    try:
        from fastfeed.bench.payloads import dxlink_frames
        for kind in ("quote100", "greeks100", "mixed"):
            for et, fr in dxlink_frames(kind, n_distinct=4):
                out.append((et, fr.decode()))
    except ImportError:   # the bench package is optional here
        pass
    for line in (DATA / "golden_frames.jsonl").read_text().splitlines():
        case = json.loads(line)
        t = case["name"].split("-")[0]
        if case["name"].endswith("-compact") and t in TT:
            out.append((t, case["frame"]))
    return out


def compare(name, tv, fv, stats):
    if tv is None:
        assert fv is None or fv == "" or (isinstance(fv, float) and not math.isfinite(fv)), (name, tv, fv)
        if isinstance(fv, float):
            stats["nan->None"] += 1
        return
    if isinstance(tv, Decimal):
        if isinstance(fv, float) and not math.isfinite(fv):
            assert tv == 0, (name, tv, fv)      # NaN/inf replaced by the field default
            stats["nan->default"] += 1
            return
        assert float(tv) == fv, (name, tv, fv)
        stats["decimal"] += 1
        return
    if isinstance(tv, float):
        assert tv == fv or (math.isnan(tv) and math.isnan(fv)), (name, tv, fv)
        return
    if isinstance(tv, str) and tv == "\x00":
        assert fv == ""
        stats["nul-char"] += 1
        return
    if hasattr(tv, "value") and not isinstance(tv, (int, str)):
        tv = tv.value
    if isinstance(tv, bool) or isinstance(fv, bool):
        assert bool(tv) == bool(fv), (name, tv, fv)
        return
    assert tv == fv or str(tv) == str(fv), (name, tv, fv)


def test_tastytrade_and_fastfeed_agree():
    stats = {"events": 0, "dropped_by_tastytrade": 0, "decimal": 0, "nan->default": 0,
             "nan->None": 0, "nul-char": 0, "dropped_type_coercion": 0}
    fr = frames()
    assert fr
    for et, text in fr:
        cls = TT[et]
        fields = tt_fields(cls)
        dec = fastfeed.DXLinkDecoder()
        dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": json.loads(text)["channel"],
                             "dataFormat": "COMPACT", "aggregationPeriod": 0.1,
                             "eventFields": {et: fields}}))
        n = dec.feed(text)
        ours = list(dec.drain(et))
        assert n == len(ours)
        values = json.loads(text)["data"][1]
        nf = len(fields)
        assert len(values) == nf * len(ours)
        for i, ev in enumerate(ours):
            theirs = cls.from_stream(values[i * nf:(i + 1) * nf])
            stats["events"] += 1
            if not theirs:
                raw = values[i * nf:(i + 1) * nf]
                if any(v is None or v in ("NaN", "Infinity", "-Infinity") for v in raw):
                    stats["dropped_by_tastytrade"] += 1      # NaN / null in a required field
                else:
                    # tastytrade types some dxFeed doubles as int (TimeAndSale.size, Underlying
                    # volumes) and rejects fractional values; fastfeed keeps the double
                    assert et in ("TimeAndSale", "Underlying"), (et, raw)
                    stats["dropped_type_coercion"] += 1
                continue
            t = theirs[0]
            d = ev.to_dict()
            for fname, camel in zip(type(t).model_fields, fields, strict=True):
                compare(f"{et}.{camel}", getattr(t, fname), d[camel], stats)
    print("tastytrade differential:", stats)
    assert stats["events"] > 100
