"""Shared helpers for the DXLink tests: an independent pure-Python reference decoder and an
encoder that writes events the way a DXLink server does (COMPACT and FULL, Java-style doubles).

The reference works from the JSON *text* of every number (``parse_float=str``) and applies
``float()`` / ``int()`` to it, which is exactly the contract of the C decoder.
"""

from __future__ import annotations

import json
import math
import struct
from decimal import Decimal

from fastfeed._records_meta import LAYOUTS
from fastfeed.dxfeed import EVENT_CLASSES

DX_TYPES = tuple(EVENT_CLASSES)
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


SYMBOL = {"base": "symbol", "enum": None}
EVTYPE = {"base": "evtype", "enum": None}


def kinds(event_type: str) -> dict[str, dict]:
    """wire name (and alias) -> the generated field metadata (``base``, ``enum``, ...)."""
    out = {"eventSymbol": SYMBOL, "eventType": EVTYPE}
    for f in LAYOUTS[event_type]["fields"]:
        out[f["wire"]] = f
        for a in f["aliases"]:
            out[a] = f
    return out


def canonical(event_type: str, name: str) -> str:
    for f in LAYOUTS[event_type]["fields"]:
        if name == f["wire"] or name in f["aliases"]:
            return f["wire"]
    return name


def default(f: dict):
    kind = f["base"]
    if kind == "f64":
        return math.nan
    if kind in ("i64", "i32"):
        return 0
    if kind == "bool":
        return False
    if kind == "char":
        return ""
    return None   # str, enum, symbol


def convert(f: dict, raw):
    """Expected decoded value of JSON value ``raw`` (numbers as text) in field ``f``'s slot."""
    kind = f["base"]
    if raw is None:
        return default(f)
    if kind == "f64":
        return NONFINITE[raw] if raw in NONFINITE else float(raw)
    if kind in ("i64", "i32"):
        d = Decimal(raw)
        assert d == d.to_integral_value()
        return int(d)
    if kind == "bool":
        return raw
    if kind == "char":
        return "" if raw in ("", "\x00") else raw
    return raw   # str / symbol / enum (unknown enum names are kept too)


def reference_decode(message: str | bytes, fields_by_type: dict[str, list[str]] | None = None):
    """[(event_type, {wire: value})] of one FEED_DATA message."""
    msg = json.loads(message, parse_float=str, parse_int=str)
    out = []
    data = msg["data"]
    i = 0
    while i < len(data):
        el = data[i]
        if isinstance(el, dict):
            t = el["eventType"]
            if t in DX_TYPES:
                k = kinds(t)
                ev = expected_defaults(t)
                for key, raw in el.items():
                    if key in k and key != "eventType":
                        ev[canonical(t, key) if key != "eventSymbol" else key] = convert(k[key], raw)
                out.append((t, ev))
            i += 1
            continue
        t, vals = el, data[i + 1]
        i += 2
        if t not in DX_TYPES:
            continue
        names = (fields_by_type or {}).get(t) or list(EVENT_CLASSES[t].FIELDS)
        k = kinds(t)
        assert len(vals) % len(names) == 0
        for j in range(0, len(vals), len(names)):
            ev = expected_defaults(t)
            for name, raw in zip(names, vals[j:j + len(names)]):
                if name in k and name != "eventType":
                    ev[canonical(t, name) if name != "eventSymbol" else name] = convert(k[name], raw)
            out.append((t, ev))
    return out


def expected_defaults(event_type: str) -> dict:
    ev = {"eventSymbol": None}
    for f in LAYOUTS[event_type]["fields"]:
        ev[f["wire"]] = default(f)
    return ev


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def assert_event(ev_dict: dict, expected: dict, where: str = "") -> None:
    for key, want in expected.items():
        got = ev_dict[key]
        assert same(got, want), f"{where} {key}: got {got!r}, want {want!r}"


def java_double(x: float) -> str:
    """Java Double.toString-style text of ``x`` (what DXLink servers send)."""
    if math.isnan(x):
        return '"NaN"'
    if math.isinf(x):
        return '"Infinity"' if x > 0 else '"-Infinity"'
    a = abs(x)
    if a == 0 or 1e-3 <= a < 1e7:
        r = repr(x)
        if "e" in r:
            r = format(x, ".17g") if "e" not in format(x, ".17g") else r
        if "." not in r and "e" not in r:
            r += ".0"
        return r
    r = repr(x)
    mant, _, exp = r.partition("e") if "e" in r else (r, "", "0")
    if not exp or exp == "0":
        # repr without exponent for large values (e.g. 13743299.0): build one
        digits = f"{x:.16e}"
        mant, _, exp = digits.partition("e")
        mant = repr(float(mant))
    if "." not in mant:
        mant += ".0"
    return f"{mant}E{int(exp)}"


def encode_value(kind: str, v) -> str:
    if v is None:
        return "null"
    if kind == "f64":
        if isinstance(v, str):   # pre-formatted text
            return v
        return java_double(v)
    if kind in ("i64", "i32"):
        return v if isinstance(v, str) else str(v)
    if kind == "bool":
        return "true" if v else "false"
    return json.dumps(v)
