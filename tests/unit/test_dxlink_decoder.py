"""DXLinkDecoder: golden frames, every encoding, FEED_CONFIG handling, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import fastfeed
from fastfeed import ProtocolError
from fastfeed.dxfeed import EVENT_CLASSES, Candle, Greeks, Profile, Quote, Summary, TimeAndSale, Trade
from test_dxlink_helpers import assert_event, reference_decode

FIXTURES = Path("/work/shared/fixtures/tastytrade-client")
DATA = Path(__file__).resolve().parents[1] / "data" / "dxlink"


def feed_data(data, channel=1):
    return json.dumps({"type": "FEED_DATA", "channel": channel, "data": data})


def decode_all(dec):
    out = []
    for t in EVENT_CLASSES:
        out += [(t, ev.to_dict()) for ev in dec.drain(t)]
    return out


def check(dec, message, fields=None):
    n = dec.feed(message)
    exp = reference_decode(message, fields)
    got = decode_all(dec)
    assert n == len(exp) == len(got)
    # compare per type, in order
    for t in EVENT_CLASSES:
        g = [d for tt, d in got if tt == t]
        e = [d for tt, d in exp if tt == t]
        assert len(g) == len(e)
        for i, (a, b) in enumerate(zip(g, e)):
            assert_event(a, b, f"{t}[{i}]")
    return got


# ---- golden frames -------------------------------------------------------------------------

def _fixture_messages():
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["dir"] == "S->C" and "channel" in rec["msg"]:   # DXLink (not account) frames
                yield path.name, rec.get("conn"), json.dumps(rec["msg"])


@pytest.mark.skipif(not FIXTURES.exists(), reason="shared fixtures not available")
def test_tastytrade_fixture_frames():
    decs = {}
    configs = {}
    total = 0
    for name, conn, text in _fixture_messages():
        dec = decs.setdefault((name, conn), fastfeed.DXLinkDecoder())
        msg = json.loads(text)
        if msg.get("type") == "FEED_CONFIG" and "eventFields" in msg:
            configs.setdefault((name, conn, msg["channel"]), {}).update(msg["eventFields"])
        if msg.get("type") == "FEED_DATA":
            got = check(dec, text, configs.get((name, conn, msg["channel"])))
            total += len(got)
        else:
            assert dec.feed(text) == 0
    assert total >= 5


SPEC_EXAMPLE = """{"type":"FEED_DATA","channel":1,"data":[
 "Quote",[
   "AAPL",0,0,0,1767312000123,"Q",1767312000120,"Q",233.41,233.43,300.0,200.0,
   "SPX",0,0,0,0,"",0,"",5912.17,5913.90,"NaN","NaN",
   ".SPXW260320C6000",0,0,0,1767312000087,"C",1767312000090,"C",41.2,41.9,12.0,35.0],
 "Trade",[
   "Trade","AAPL",233.42,1.3743299E7,100.0,
   "Trade","BTC/USD:CXTALP",58356.71,"NaN","NaN"],
 "Greeks",[
   ".SPXW260320C6000",0,7235129486797176832,1767312000050,41.55,0.1731,0.4412,0.00191,-3.92,1.77,9.84,
   ".SPXW260320P5800",0,7235129486797176833,1767312000051,"NaN","NaN","NaN","NaN","NaN","NaN","NaN"]]}"""


def test_spec_example_three_pairs_with_feed_config():
    fields = {
        "Trade": ["eventType", "eventSymbol", "price", "dayVolume", "size"],
        "Greeks": ["eventSymbol", "eventFlags", "index", "time", "price", "volatility", "delta",
                   "gamma", "theta", "rho", "vega"],
    }
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 1, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.1, "eventFields": {"Trade": fields["Trade"]}}))
    # a second FEED_CONFIG for another type is merged (Trade keeps its list)
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 1, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.1, "eventFields": {"Greeks": fields["Greeks"]}}))
    assert dec.event_fields(1, "Trade") == tuple(fields["Trade"])
    got = check(dec, SPEC_EXAMPLE, fields)
    assert [t for t, _ in got].count("Quote") == 3
    greeks = [d for t, d in got if t == "Greeks"]
    assert greeks[0]["index"] == 7235129486797176832          # > 2^53, exact
    assert math.isnan(greeks[1]["price"])
    trades = [d for t, d in got if t == "Trade"]
    assert trades[0]["dayVolume"] == 13743299.0
    assert math.isnan(trades[0]["change"])                     # not sent -> NaN
    assert trades[0]["tickDirection"] is None                  # not sent -> absent


def _golden_cases():
    path = DATA / "golden_frames.jsonl"
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


@pytest.mark.parametrize("case", list(_golden_cases()), ids=lambda c: c["name"])
def test_golden_frames(case):
    dec = fastfeed.DXLinkDecoder()
    if case.get("config"):
        dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 1, "dataFormat": "COMPACT",
                             "aggregationPeriod": 0.1, "eventFields": case["config"]}))
    n = dec.feed(case["frame"].encode())
    got = decode_all(dec)
    assert n == len(case["expected"])
    for (t, d), (et, ed) in zip(got, case["expected"]):
        assert t == et
        ed = {k: _unfloat(v) for k, v in ed.items()}
        assert_event(d, ed, case["name"])
    # and the independent reference agrees
    exp = reference_decode(case["frame"], case.get("config"))
    for (t, d), (et, ed) in zip(got, exp):
        assert_event(d, ed, case["name"] + " (reference)")


def _unfloat(v):
    if isinstance(v, dict) and "float" in v:
        return float.fromhex(v["float"])
    return v


# ---- encodings -----------------------------------------------------------------------------

def test_every_value_encoding():
    dec = fastfeed.DXLinkDecoder()
    values = (r'"X\u00e9\"\\",1,2,3,4,5,"\u0000",1.5,2.5E2,"-Infinity","Infinity",'
              r'"\u0041","SELL",true,false,true,"CORRECTION",null,"b\nuyer",""')
    frame = ('{"type":"FEED_DATA","channel":13,"extra":{"a":[1,2]},"data":["TimeAndSale",['
             + values + ']]}')
    fields = ["eventSymbol", "eventTime", "eventFlags", "index", "time", "timeNanoPart",
              "exchangeCode", "price", "size", "bidPrice", "askPrice", "tradeThroughExempt",
              "aggressorSide", "spreadLeg", "extendedTradingHours", "validTick", "type", "buyer",
              "seller", "exchangeSaleConditions"]
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 13, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0, "eventFields": {"TimeAndSale": fields}}))
    assert dec.feed(frame) == 1
    ev = dec.drain(TimeAndSale)[0]
    assert ev.event_symbol == 'X\u00e9"\\'
    assert ev.exchange_code == ""
    assert ev.price == 1.5
    assert ev.size == 250.0 and ev.bid_price == -math.inf and ev.ask_price == math.inf
    assert ev.trade_through_exempt == "A"
    assert ev.aggressor_side == "SELL" and ev.type == "CORRECTION"
    assert ev.spread_leg is True and ev.extended_trading_hours is False and ev.valid_tick is True
    assert ev.buyer is None and ev.seller == "b\nuyer" and ev.exchange_sale_conditions == ""


def test_enum_codes_are_small_and_names_recoverable():
    from fastfeed._native.dxlink import enum_code, enum_name
    import numpy as np
    dec = fastfeed.DXLinkDecoder()
    dec.feed(feed_data(["Trade", ["A", 0, 0, 0, 0, "Q", 0, "ZERO_UP", False, 1.0, 0.0, 1.0, 1.0, 1.0,
                                  "B", 0, 0, 0, 0, "Q", 0, "NEWVALUE", False, 1.0, 0.0, 1.0, 1.0, 1.0]]))
    arr = np.asarray(dec.drain("Trade"))
    # an unknown name is kept under a code of its own (never None), and counted
    assert list(arr["tick_direction"]) == [enum_code("Direction", "ZERO_UP"), enum_code("Direction", "NEWVALUE")]
    assert enum_name("Direction", int(arr["tick_direction"][1])) == "NEWVALUE"
    assert dec.stats["unknown_enums"] == 1
    assert enum_name("Direction", int(arr["tick_direction"][0])) == "ZERO_UP"
    assert dec.enum_name("Direction", 0) is None


def test_numbers_bit_exact_and_integers():
    texts = ["0.1", "1.3743299E7", "4.81989763184255E-12", "100.0", "-0.0", "1e400", "5E-324",
             "123456789012345678901234567890", "0.30000000000000004", "9007199254740993",
             "2.2250738585072011e-308", "1.7976931348623157E308", "-1.5E-3", "17"]
    vals = ",".join(f'"S{i}",0,0,0,0,"",0,"",{t},1.0,1.0,1.0' for i, t in enumerate(texts))
    dec = fastfeed.DXLinkDecoder()
    assert dec.feed('{"type":"FEED_DATA","channel":7,"data":["Quote",[' + vals + ']]}') == len(texts)
    for ev, t in zip(dec.drain(Quote), texts):
        assert math.copysign(1, ev.bid_price) == math.copysign(1, float(t))
        assert ev.bid_price == float(t) or (math.isnan(ev.bid_price) and math.isnan(float(t)))
        assert float(ev.bid_price).hex() == float(t).hex()
    # int64 slots: exact above 2^53, integral doubles accepted
    ints = ["7235129486797176832", "-9223372036854775808", "9223372036854775807", "100.0", "1.0E3"]
    vals = ",".join(f'"G",0,0,{t},0,0,1,1,1,1,1,1,1' for t in ints)
    assert dec.feed('{"type":"FEED_DATA","channel":3,"data":["Greeks",[' + vals + ']]}') == len(ints)
    got = [ev.index for ev in dec.drain(Greeks)]
    assert got == [7235129486797176832, -9223372036854775808, 9223372036854775807, 100, 1000]


def test_full_format_and_missing_keys():
    dec = fastfeed.DXLinkDecoder()
    msg = {"type": "FEED_DATA", "channel": 5, "data": [
        {"eventType": "Quote", "eventSymbol": "MSFT", "bidPrice": 411.25, "askPrice": 411.31,
         "bidSize": 300.0, "askSize": "NaN", "unknownKey": {"x": [1, {"y": 2}]}},
        {"eventSymbol": "IBM", "eventType": "Quote", "bidPrice": 188.02},
        {"eventType": "Order", "eventSymbol": "IBM", "price": 1.0},
        {"eventType": "Candle", "eventSymbol": "SPY{=5m}", "VWAP": 12.5, "count": 3},
        {"eventType": "Profile", "eventSymbol": "AAPL", "description": None,
         "shortSaleRestriction": "ACTIVE", "tradingStatus": "HALTED", "statusReason": ""},
    ]}
    text = json.dumps(msg)
    assert dec.feed(text) == 5          # Order is decoded too (a generated record type)
    assert dec.drain("Order")[0].price == 1.0
    q = list(dec.drain(Quote))
    assert [e.event_symbol for e in q] == ["MSFT", "IBM"]
    assert q[1].bid_price == 188.02 and math.isnan(q[1].ask_price) and q[1].bid_exchange_code == ""
    c = dec.drain(Candle)[0]
    assert c.vwap == 12.5 and c.count == 3.0
    p = dec.drain(Profile)[0]
    assert p.description is None and p.status_reason == "" and p.trading_status == "HALTED"
    assert dec.stats["skipped"] == 0


def test_feed_config_order_unknown_and_missing_fields_per_channel():
    dec = fastfeed.DXLinkDecoder()
    server = ["eventType", "eventSymbol", "eventTime", "sequence", "timeNanoPart", "bidTime",
              "bidExchangeCode", "bidPrice", "bidSize", "askTime", "askExchangeCode", "askPrice",
              "askSize", "futureField"]
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 9, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.0, "eventFields": {"Quote": server}}))
    row = ["Quote", "AAPL", 5, 1, 2, 3, "Q", 1.5, 10.0, 4, "P", 1.6, 20.0, {"nested": [1]}]
    assert dec.feed(feed_data(["Quote", row + row], channel=9)) == 2
    q = dec.drain(Quote)[1]
    assert (q.bid_price, q.bid_size, q.ask_price, q.ask_size) == (1.5, 10.0, 1.6, 20.0)
    assert (q.bid_exchange_code, q.ask_exchange_code, q.ask_time) == ("Q", "P", 4)
    # another channel still uses the class FIELDS order
    dflt = ["MSFT", 1, 2, 3, 4, "Q", 5, "P", 1.0, 2.0, 3.0, 4.0]
    assert dec.feed(feed_data(["Quote", dflt], channel=7)) == 1
    assert dec.drain(Quote)[0].ask_size == 4.0
    # a config that drops fields: slots not sent stay NaN / 0
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 9, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.0, "eventFields": {"Quote": ["eventSymbol", "bidPrice"]}}))
    assert dec.feed(feed_data(["Quote", ["X", 1.25]], channel=9)) == 1
    q = dec.drain(Quote)[0]
    assert q.bid_price == 1.25 and math.isnan(q.ask_price) and q.event_time == 0
    # CHANNEL_CLOSED forgets the channel's config
    dec.feed('{"type":"CHANNEL_CLOSED","channel":9}')
    assert dec.event_fields(9, Quote) == Quote.FIELDS


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "str"])
def test_input_types(kind):
    text = feed_data(["Quote", ["A", 0, 0, 0, 0, "Q", 0, "Q", 1.0, 2.0, 3.0, 4.0]])
    msg = {"bytes": text.encode(), "bytearray": bytearray(text.encode()),
           "memoryview": memoryview(text.encode()), "str": text}[kind]
    dec = fastfeed.DXLinkDecoder()
    assert dec.feed(msg) == 1
    assert dec.drain("Quote")[0].ask_size == 4.0


def test_unknown_message_types_and_control_events():
    from fastfeed._native import dxlink
    dec = fastfeed.DXLinkDecoder()
    assert dec.feed('{"type":"SOMETHING_NEW","channel":0,"x":1}') == 0
    dec.feed('{"type":"ERROR","channel":3,"error":"BAD_ACTION","message":"no"}')
    dec.feed('{"type":"KEEPALIVE","channel":0}')
    dec.feed('{"type":"AUTH_STATE","channel":0,"state":"AUTHORIZED","userId":"u1"}')
    ev = dec.events_received()
    assert ev[0] == dxlink.ErrorReceived(3, "BAD_ACTION", "no")
    assert isinstance(ev[1], dxlink.KeepaliveReceived)
    assert ev[2].state == "AUTHORIZED" and ev[2].user_id == "u1"
    # FEED_DATA with data before type and channel after data
    assert dec.feed('{"data":["Quote",["A",0,0,0,0,"Q",0,"Q",1,2,3,4]],"type":"FEED_DATA","channel":7}') == 1


# ---- bad input -----------------------------------------------------------------------------

GOOD = ["Quote", ["A", 0, 0, 0, 0, "Q", 0, "Q", 1.0, 2.0, 3.0, 4.0]]


@pytest.mark.parametrize("bad, event_type, field", [
    ("not json at all", None, None),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",["A",0,0,0,0,"Q",0,"Q",1.0,2.0,3.0]]}', "Quote", None),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",["A",0,0,0,0,"Q",0,"Q","x",2.0,3.0,4.0]]}', "Quote", "bidPrice"),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",["A","t",0,0,0,"Q",0,"Q",1.0,2.0,3.0,4.0]]}', "Quote", "eventTime"),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",["A",0,1.5,0,0,"Q",0,"Q",1.0,2.0,3.0,4.0]]}', "Quote", "sequence"),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",["A",0,4294967296,0,0,"Q",0,"Q",1.0,2.0,3.0,4.0]]}', "Quote", "sequence"),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",["A",0,0,0,0,"QQ",0,"Q",1.0,2.0,3.0,4.0]]}', "Quote", "bidExchangeCode"),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",["A",0,0,0,0,"Q",0,"Q",1.0,2.0,3.0,4.0', "Quote", None),
    ('{"type":"FEED_DATA","channel":1,"data":["Trade",["A",0,0,0,0,"Q",0,"UP",3,1,1,1,1,1]]}', "Trade", "extendedTradingHours"),
    ('{"type":"FEED_DATA","channel":1,"data":["Quote",{"a":1}]}', "Quote", None),
    ('{"type":"FEED_DATA","channel":1,"data":[{"eventSymbol":"A"}]}', None, "eventType"),
])
def test_bad_input_raises_and_next_feed_works(bad, event_type, field):
    dec = fastfeed.DXLinkDecoder()
    with pytest.raises(ProtocolError) as ei:
        dec.feed(bad)
    err = ei.value
    assert isinstance(err, ValueError) and isinstance(err, fastfeed.FastFeedError)
    assert err.event_type == event_type
    assert err.field == field
    assert len(dec.drain("Quote")) == 0 and len(dec.drain("Trade")) == 0
    assert dec.feed(feed_data(GOOD)) == 1
    assert len(dec.drain("Quote")) == 1


def test_truncations_never_crash():
    full = feed_data(GOOD + ["Trade", ["A", 0, 0, 0, 0, "Q", 0, "UP", True, 1, 1, 1, 1, 1]]).encode()
    dec = fastfeed.DXLinkDecoder()
    for cut in range(len(full)):
        try:
            dec.feed(full[:cut])
        except ProtocolError:
            pass
        assert dec.feed(full) == 2
    # nothing half-written ever became visible: every Quote is the complete one
    for ev in dec.drain(Quote):
        assert ev.ask_size == 4.0 and ev.event_symbol == "A"


def test_a_bad_value_costs_only_its_event():
    dec = fastfeed.DXLinkDecoder()
    bad_pair = ["Quote", ["B", 0, 0, 0, 0, "Q", 0, "Q", "oops", 2.0, 3.0, 4.0, "C", 0, 0, 0, 0, "Q", 0, "Q", 1, 1, 1, 1]]
    with pytest.raises(ProtocolError, match="bidPrice") as ei:
        dec.feed(feed_data(GOOD + bad_pair + GOOD + ["Greeks", [".X", 0, 0, 1, 2, 0, 1, 1, 1, 1, 1, 1, 1]]))
    assert ei.value.events_written == 4
    assert [e.event_symbol for e in dec.drain(Quote)] == ["A", "C", "A"]
    assert len(dec.drain(Greeks)) == 1
    assert dec.stats["bad_events"] == 1


def test_a_broken_pair_is_dropped_whole():
    """A values array whose length is not a multiple of the field count cannot be split into
    events: the whole pair is dropped (reported), the other pairs are published."""
    dec = fastfeed.DXLinkDecoder()
    short = ["Quote", ["B", 0, 0, 0, 0, "Q", 0, "Q", 1.0, 2.0, 3.0]]
    with pytest.raises(ProtocolError, match="multiple") as ei:
        dec.feed(feed_data(GOOD + short + GOOD))
    assert ei.value.events_written == 2
    assert [e.event_symbol for e in dec.drain(Quote)] == ["A", "A"]


@pytest.mark.parametrize("row, field", [
    # tastytrade SDK test shapes: a string in `sequence`, "NaN" in an int field, a float in a long
    (["T", 0, 0, 0, "bad", "Q", 0, "UP", False, 1.0, 0.0, 1.0, 1.0, 1.0], "sequence"),
    (["T", 0, 0, "NaN", 0, "Q", 0, "UP", False, 1.0, 0.0, 1.0, 1.0, 1.0], "timeNanoPart"),
    (["T", 0, 1.5, 0, 0, "Q", 0, "UP", False, 1.0, 0.0, 1.0, 1.0, 1.0], "time"),
    (["T", 0, 0, 0, 0, "QQ", 0, "UP", False, 1.0, 0.0, 1.0, 1.0, 1.0], "exchangeCode"),
    (["T", 0, 0, 0, 0, "Q", 0, "UP", "yes", 1.0, 0.0, 1.0, 1.0, 1.0], "extendedTradingHours"),
    (["T", 0, 0, 0, 0, "Q", 0, 7, False, 1.0, 0.0, 1.0, 1.0, 1.0], "tickDirection"),
    (["T", 0, 0, 0, 0, "Q", 0, "UP", False, [1.0], 0.0, 1.0, 1.0, 1.0], "price"),
])
def test_each_kind_of_bad_value_drops_one_event(row, field):
    dec = fastfeed.DXLinkDecoder()
    good = ["G", 0, 0, 0, 0, "Q", 0, "UP", False, 2.5, 0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ProtocolError) as ei:
        dec.feed(feed_data(["Trade", good + row + good]))
    assert ei.value.field == field and ei.value.event_type == "Trade"
    assert ei.value.events_written == 2
    assert [e.event_symbol for e in dec.drain(Trade)] == ["G", "G"]
    assert dec.stats["bad_events"] == 1 and dec.stats["errors"] == 1


def test_message_too_large():
    dec = fastfeed.DXLinkDecoder()
    big = feed_data(["Quote", GOOD[1] * (10_000_000 // 40)])
    assert len(big) > 10_000_000
    with pytest.raises(ProtocolError, match="too large"):
        dec.feed(big)
    assert dec.feed(feed_data(GOOD)) == 1
    # a larger limit accepts it
    dec2 = fastfeed.DXLinkDecoder(max_message_size=32 << 20)
    assert dec2.feed(big) == 10_000_000 // 40


def test_summary_openinterest_integer_and_enums():
    dec = fastfeed.DXLinkDecoder()
    row = ["SPY", 1, 20454, "FINAL", 20453, "REGULAR", 12345, 1.0, 2.0, 0.5, 1.5, 1.25, 1.0E9]
    assert dec.feed(feed_data(["Summary", row])) == 1
    s = dec.drain(Summary)[0]
    assert s.open_interest == 12345.0 and s.day_close_price_type == "FINAL"
    assert s.prev_day_close_price_type == "REGULAR" and s.prev_day_volume == 1e9


def test_unknown_enum_strings_are_kept_and_counted():
    """tastytrade's SDK test rows: Summary with enum names the spec does not list, +-Infinity
    and NaN. The names come back from the event (never None), each occurrence is counted."""
    dec = fastfeed.DXLinkDecoder()
    row = ["SPY", 0, 0, "foo", 0, "bar", 0, "Infinity", "-Infinity", "NaN", 1.0, 2.0, 3.0]
    assert dec.feed(feed_data(["Summary", row + row])) == 2
    for s in dec.drain(Summary):
        assert s.day_close_price_type == "foo" and s.prev_day_close_price_type == "bar"
        assert s.to_dict()["dayClosePriceType"] == "foo"
        assert s.day_open_price == math.inf and s.day_high_price == -math.inf
    assert dec.stats["unknown_enums"] == 4
    # known names keep their spec codes; an event built from Python with the new name agrees
    assert Summary(event_symbol="X", day_close_price_type="foo").day_close_price_type == "foo"
    assert Summary(event_symbol="X", day_close_price_type="FINAL").record == \
        Summary(event_symbol="X", day_close_price_type="FINAL").record


def test_new_event_types_decode_in_compact_and_full():
    from fastfeed.dxfeed import AnalyticOrder, OptionSale, Order, Series, SpreadOrder
    dec = fastfeed.DXLinkDecoder()
    head = [0, 0, 7235129486797176832, 1700000000000, 5, 6, "NTV", "NEW", 1, 2, 3, 1.5, 100.0, 0.0, 4, "Q",
            "BUY", "ORDER", 9, "NaN", "NaN"]
    data = ["Order", ["AAPL", *head, "MM"], "SpreadOrder", ["AAPL", *head, "SPREAD"],
            "AnalyticOrder", ["AAPL", *head, "MM", 1.0, 2.0, 3.0, "NATIVE"],
            "OptionSale", [".A", 0, 0, 1, 2, 3, 4, "X", 1.5, 2.0, 1.4, 1.6, "cond", "", "SELL", False, True, True,
                           "NEW", 100.5, 0.3, 0.5, ".AAPL"],
            "Series", ["AAPL", 0, 0, 1, 2, 3, 20500, 0.3, 1.0, 2.0, 0.5, 101.0, 0.1, 0.05],
            {"eventType": "Order", "eventSymbol": "IBM", "price": 2.5, "orderSide": "SELL"}]
    assert dec.feed(feed_data(data)) == 6
    o = list(dec.drain(Order))
    assert o[0].index == 7235129486797176832 and o[0].source == "NTV" and o[0].action == "NEW"
    assert o[0].order_side == "BUY" and o[0].scope == "ORDER" and o[0].market_maker == "MM"
    assert o[1].event_symbol == "IBM" and o[1].price == 2.5 and o[1].order_side == "SELL"
    assert dec.drain(SpreadOrder)[0].spread_symbol == "SPREAD"
    a = dec.drain(AnalyticOrder)[0]
    assert (a.iceberg_peak_size, a.iceberg_type) == (1.0, "NATIVE")
    s = dec.drain(OptionSale)[0]
    assert s.option_symbol == ".AAPL" and s.underlying_price == 100.5 and s.aggressor_side == "SELL"
    assert dec.drain(Series)[0].expiration == 20500


def test_configuration_and_message_events_are_skipped_and_counted():
    """The dxLink spec's Configuration and Message events (an ``attachment`` object) have no
    record: skipped in both formats and counted; the frame's other events are published."""
    dec = fastfeed.DXLinkDecoder()
    data = ["Configuration", ["Configuration", "X", 0, 1, {"a": [1, {"b": None}]}],
            GOOD[0], GOOD[1],
            {"eventType": "Message", "eventSymbol": "M", "eventTime": 0, "attachment": {"k": "v"}},
            "Message", ["M", 0, {}]]
    assert dec.feed(feed_data(data)) == 1
    assert dec.stats["skipped"] == 3 and dec.stats["errors"] == 0
    assert [e.event_symbol for e in dec.drain(Quote)] == ["A"]
