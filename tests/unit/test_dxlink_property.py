"""Property tests: random events encoded as a server would (COMPACT with random field orders,
unknown server fields, several pairs per message; FULL with omitted keys), decoded and checked
against the values that were encoded (float()/int() of the text, bit for bit)."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest

import fastfeed
from fastfeed import ProtocolError
from fastfeed._records_meta import ENUMS, LAYOUTS
from fastfeed.dxfeed import EVENT_CLASSES
from test_dxlink_helpers import assert_event, convert, default, java_double, kinds

TYPES = list(EVENT_CLASSES)

finite = st.floats(allow_nan=False, allow_infinity=False)
double_text = st.one_of(
    finite.map(java_double),
    finite.map(repr).filter(lambda r: "inf" not in r and "nan" not in r),
    st.sampled_from(['"NaN"', '"Infinity"', '"-Infinity"', "100.0", "1.3743299E7",
                     "4.81989763184255E-12", "-0.0", "0", "17"]),
    st.integers(-10**25, 10**25).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(lambda d: str(d) if "E" not in str(d) and "e" not in str(d) else "1.5"),
)
text_st = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def value_text(f):
    kind = f["base"]
    if kind == "f64":
        return double_text
    if kind == "i64":
        return st.one_of(st.integers(-2**63, 2**63 - 1).map(str),
                         st.integers(-2**40, 2**40).map(lambda v: f"{v}.0"))
    if kind == "i32":
        return st.integers(-2**31, 2**31 - 1).map(str)
    if kind == "bool":
        return st.sampled_from(["true", "false"])
    if kind == "char":
        return st.one_of(st.characters(blacklist_categories=("Cs",)).map(json.dumps),
                         st.sampled_from(['""', '"\\u0000"']))
    if kind in ("str", "symbol"):
        return st.one_of(text_st.map(json.dumps), st.just("null") if kind == "str" else text_st.map(json.dumps))
    if kind == "enum":
        # the spec's names and names it does not list (kept, never None)
        return st.one_of(st.sampled_from(ENUMS[f["enum"]]), st.sampled_from(["foo", "bar", "NEW_ONE"])).map(json.dumps)
    raise AssertionError(kind)


def with_null(f, strat):
    return st.one_of(strat, st.just("null")) if f["base"] != "symbol" else strat


@st.composite
def event_type_and_fields(draw):
    t = draw(st.sampled_from(TYPES))
    k = kinds(t)
    names = ["eventSymbol"] + [f["wire"] for f in LAYOUTS[t]["fields"]]
    chosen = draw(st.permutations(names))
    chosen = chosen[:draw(st.integers(1, len(chosen)))]
    if "eventSymbol" not in chosen:
        chosen = ["eventSymbol"] + list(chosen)
    extra = draw(st.lists(st.sampled_from(["eventType", "serverField", "anotherOne"]), unique=True, max_size=2))
    fields = list(chosen)
    for e in extra:
        fields.insert(draw(st.integers(0, len(fields))), e)
    return t, fields


BAD_TEXT = {
    "f64": ['"x"', "[1]", "{}", "true"],
    "i64": ['"bad"', '"NaN"', "1.5", "true", "[]"],
    "i32": ['"bad"', '"NaN"', "1.5", "4294967296", "-2147483649"],
    "bool": ["1", '"true"', "[]"],
    "char": ['"ab"', "5", "[]"],
    "enum": ["7", "true", "{}"],
    "str": ["5", "true", "[]"],
    "symbol": ["5", "false"],
}


@st.composite
def message(draw, bad=False):
    """(eventFields, FEED_DATA text, expected events). ``bad``: some events carry one value of
    the wrong type; they are not expected (a bad value costs its own event only)."""
    pairs = draw(st.lists(event_type_and_fields(), min_size=1, max_size=4, unique_by=lambda p: p[0]))
    full = draw(st.booleans())
    config = {t: f for t, f in pairs}
    data_parts = []
    expected = []
    for t, fields in pairs:
        k = kinds(t)
        n = draw(st.integers(0, 4))
        events = []
        for _ in range(n):
            texts = {}
            for name in fields:
                if name == "eventType":
                    texts[name] = json.dumps(t)
                elif name in k:
                    texts[name] = draw(with_null(k[name], value_text(k[name])))
                else:
                    texts[name] = draw(st.sampled_from(['{"a":[1,2]}', "null", "12.5", '"x"', "[]"]))
            decoded = [nm for nm in texts if nm in k and nm != "eventType"]
            if bad and decoded and draw(st.booleans()):
                victim = draw(st.sampled_from(decoded))
                texts[victim] = draw(st.sampled_from(BAD_TEXT[k[victim]["base"]]))
                events.append(texts)
                continue
            events.append(texts)
            exp = {"eventSymbol": None}
            for f in LAYOUTS[t]["fields"]:
                exp[f["wire"]] = default(f)
            for name, txt in texts.items():
                if name in k and name != "eventType":
                    raw = json.loads(txt, parse_float=str, parse_int=str)
                    exp[name] = convert(k[name], raw)
            expected.append((t, exp))
        if full:
            for texts in events:
                items = ['"eventType":' + json.dumps(t)] + [
                    f"{json.dumps(nm)}:{txt}" for nm, txt in texts.items() if nm != "eventType"]
                data_parts.append("{" + ",".join(items) + "}")
        else:
            vals = ",".join(texts[nm] for texts in events for nm in fields)
            data_parts.append(json.dumps(t) + ",[" + vals + "]")
    ws = draw(st.sampled_from(["", " ", "\n "]))
    text = ('{"type":"FEED_DATA",' + ws + '"channel":5,"data":[' + ("," + ws).join(data_parts) + "]}")
    return config, text, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_random_events_round_trip(msg):
    config, text, expected = msg
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 5, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.1, "eventFields": config}))
    n = dec.feed(text.encode())
    assert n == len(expected)
    for t in TYPES:
        got = [e.to_dict() for e in dec.drain(t)]
        exp = [e for tt, e in expected if tt == t]
        assert len(got) == len(exp)
        for i, (g, e) in enumerate(zip(got, exp)):
            assert_event(g, e, f"{t}[{i}]")


def _events(dec):
    return [(t, e.to_dict()) for t in TYPES for e in dec.drain(t)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message(bad=True))
def test_bad_values_cost_only_their_events(msg):
    config, text, expected = msg
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 5, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.1, "eventFields": config}))
    try:
        n = dec.feed(text.encode())
        raised = False
    except ProtocolError as e:
        n = e.events_written
        raised = True
    assert n == len(expected)
    assert raised == (dec.stats["bad_events"] > 0)
    got = _events(dec)
    for t in TYPES:
        g = [d for tt, d in got if tt == t]
        e = [d for tt, d in expected if tt == t]
        assert len(g) == len(e)
        for i, (a, b) in enumerate(zip(g, e)):
            assert_event(a, b, f"{t}[{i}]")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_requested_fields_equal_announced_fields(msg):
    """FEED_SETUP (sent) + a FEED_CONFIG without eventFields decodes exactly like a FEED_CONFIG
    that announces the same fields."""
    config, text, expected = msg
    announced = fastfeed.DXLinkDecoder()
    announced.feed(json.dumps({"type": "FEED_CONFIG", "channel": 5, "dataFormat": "COMPACT",
                               "aggregationPeriod": 0.1, "eventFields": config}))
    requested = fastfeed.DXLinkDecoder()
    requested.feed(json.dumps({"type": "FEED_SETUP", "channel": 5, "acceptDataFormat": "COMPACT",
                               "acceptEventFields": config}), sent=True)
    requested.feed(json.dumps({"type": "FEED_CONFIG", "channel": 5, "dataFormat": "COMPACT",
                               "aggregationPeriod": 0.1}))
    assert announced.feed(text) == requested.feed(text) == len(expected)
    assert json.dumps(_events(announced)) == json.dumps(_events(requested))
