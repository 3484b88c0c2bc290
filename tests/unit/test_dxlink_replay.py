"""Replaying two-way DXLink captures: the client's own messages go in with ``sent=True``, so the
decoder knows what FEED_SETUP asked for and a FEED_CONFIG without ``eventFields`` (what
tastytrade's server sends) means "as requested".

Data: tests/data/dxlink/two_way_*.jsonl are the DXLink frames of the shared captures of the
tastytrade SDK (13.2.3 and 11.1.0 with a reconnect) against a local server, both directions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import fastfeed
from fastfeed import ProtocolError
from fastfeed.dxfeed import EVENT_CLASSES, Trade
from test_dxlink_tastytrade_diff import TT, compare, tt_fields

DATA = Path(__file__).resolve().parents[1] / "data" / "dxlink"
CAPTURES = sorted(DATA.glob("two_way_*.jsonl"))

# The shape of tastytrade's published web-platform session (developer docs, "streaming market
# data"): CHANNEL_OPENED with subFormat LIST, a FEED_CONFIG without eventFields, and a Trade
# frame whose fields are the ones the client asked for.
DOCS_SESSION = [
    ("S", {"type": "SETUP", "channel": 0, "keepaliveTimeout": 60, "acceptKeepaliveTimeout": 60,
           "version": "1.0-1.2.1-20240722-153442"}),
    ("S", {"type": "AUTH_STATE", "channel": 0, "state": "UNAUTHORIZED"}),
    ("C", {"type": "AUTH", "channel": 0, "token": "t"}),
    ("S", {"type": "AUTH_STATE", "channel": 0, "state": "AUTHORIZED", "userId": "u"}),
    ("C", {"type": "CHANNEL_REQUEST", "channel": 3, "service": "FEED", "parameters": {"contract": "AUTO"}}),
    ("S", {"type": "CHANNEL_OPENED", "channel": 3, "service": "FEED",
           "parameters": {"contract": "AUTO", "subFormat": "LIST"}}),
    ("C", {"type": "FEED_SETUP", "channel": 3, "acceptAggregationPeriod": 0.1, "acceptDataFormat": "COMPACT",
           "acceptEventFields": {"Trade": ["eventType", "eventSymbol", "price", "dayVolume", "size"]}}),
    ("S", {"type": "FEED_CONFIG", "channel": 3, "dataFormat": "COMPACT", "aggregationPeriod": 0.1}),
    ("C", {"type": "FEED_SUBSCRIPTION", "channel": 3, "add": [{"type": "Trade", "symbol": "SPY"}]}),
    ("S", {"type": "FEED_DATA", "channel": 3, "data": [
        "Trade", ["Trade", "SPY", 559.36, 1.3743299E7, 100.0,
                  "Trade", "BTC/USD:CXTALP", 58356.71, "NaN", "NaN"]]}),
]


def replay(messages, dec=None):
    dec = dec or fastfeed.DXLinkDecoder()
    for side, msg in messages:
        dec.feed(json.dumps(msg), sent=(side == "C"))
    return dec


def test_docs_session_replays_both_trades():
    dec = replay(DOCS_SESSION)
    trades = list(dec.drain(Trade))
    assert [t.event_symbol for t in trades] == ["SPY", "BTC/USD:CXTALP"]
    assert (trades[0].price, trades[0].day_volume, trades[0].size) == (559.36, 13743299.0, 100.0)
    assert trades[1].price == 58356.71 and math.isnan(trades[1].day_volume) and math.isnan(trades[1].size)
    assert math.isnan(trades[0].change) and trades[0].sequence == 0   # not requested: template
    assert dec.event_fields(3, "Trade") == ("eventType", "eventSymbol", "price", "dayVolume", "size")
    assert dec.stats["sent"] == 4 and dec.stats["errors"] == 0


def test_docs_session_without_the_client_side_loses_the_frame():
    """What the first wave did: only the server's messages, so the field order is unknown and
    the frame cannot be split (reported, never decoded into wrong slots)."""
    dec = fastfeed.DXLinkDecoder()
    with pytest.raises(ProtocolError, match="event Trade"):
        for side, msg in DOCS_SESSION:
            if side == "S":
                dec.feed(json.dumps(msg))
    assert len(dec.drain(Trade)) == 0


def test_server_event_fields_win_over_the_request():
    msgs = list(DOCS_SESSION)
    msgs[7] = ("S", {"type": "FEED_CONFIG", "channel": 3, "dataFormat": "COMPACT", "aggregationPeriod": 0.1,
                     "eventFields": {"Trade": ["eventSymbol", "eventType", "size", "price", "dayVolume"]}})
    msgs[9] = ("S", {"type": "FEED_DATA", "channel": 3, "data": ["Trade", ["SPY", "Trade", 100.0, 559.36, 1.0]]})
    t = replay(msgs).drain(Trade)[0]
    assert (t.size, t.price, t.day_volume) == (100.0, 559.36, 1.0)


def test_request_applies_only_to_its_channel_and_after_feed_config():
    dec = fastfeed.DXLinkDecoder()
    dec.feed(json.dumps(DOCS_SESSION[6][1]), sent=True)       # FEED_SETUP on channel 3
    assert dec.event_fields(3, "Trade") == Trade.FIELDS       # nothing confirmed yet
    dec.feed(json.dumps({"type": "FEED_CONFIG", "channel": 5, "dataFormat": "COMPACT",
                         "aggregationPeriod": 0.1}))
    assert dec.event_fields(5, "Trade") == Trade.FIELDS
    dec.feed(json.dumps(DOCS_SESSION[7][1]))
    assert dec.event_fields(3, "Trade")[:2] == ("eventType", "eventSymbol")


def test_sent_messages_publish_nothing_and_bad_ones_raise():
    dec = fastfeed.DXLinkDecoder()
    frame = json.dumps(DOCS_SESSION[9][1])
    assert dec.feed(frame, sent=True) == 0                    # the client never sends data
    assert len(dec.drain(Trade)) == 0
    with pytest.raises(ProtocolError):
        dec.feed(b"{not json", sent=True)
    with pytest.raises(ProtocolError, match="acceptEventFields"):
        dec.feed(json.dumps({"type": "FEED_SETUP", "channel": 3, "acceptEventFields": {"Trade": "price"}}),
                 sent=True)
    assert dec.stats["errors"] == 2


def _capture(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _decode_capture(recs, strip_event_fields):
    """Replay a capture (one decoder per connection); returns [(type, to_dict())]."""
    out = []
    decs = {}
    for rec in recs:
        msg = dict(rec["msg"])
        dec = decs.setdefault(rec["conn"], fastfeed.DXLinkDecoder())
        if rec["dir"] == "C->S":
            dec.feed(json.dumps(msg), sent=True)
            continue
        if strip_event_fields and msg["type"] == "FEED_CONFIG":
            msg.pop("eventFields", None)
        dec.feed(json.dumps(msg))
        if msg["type"] == "FEED_DATA":
            for t in EVENT_CLASSES:
                out += [(t, ev.to_dict()) for ev in dec.drain(t)]
    return out


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_replays_the_same_without_event_fields(path):
    recs = _capture(path)
    with_fields = _decode_capture(recs, strip_event_fields=False)
    without = _decode_capture(recs, strip_event_fields=True)
    assert len(with_fields) >= 3
    assert json.dumps(without, sort_keys=True) == json.dumps(with_fields, sort_keys=True)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_matches_what_the_tastytrade_sdk_parses(path):
    """Every FEED_DATA of the capture, parsed by tastytrade's own models with the fields its
    client requested, equals fastfeed's replay (FEED_CONFIG eventFields stripped)."""
    recs = _capture(path)
    ours = _decode_capture(recs, strip_event_fields=True)
    theirs = []
    for rec in recs:
        msg = rec["msg"]
        if rec["dir"] == "S->C" and msg["type"] == "FEED_DATA":
            data = msg["data"]
            for k in range(0, len(data), 2):
                cls = TT[data[k]]
                nf = len(tt_fields(cls))
                vals = data[k + 1]
                for i in range(0, len(vals), nf):
                    theirs.append((data[k], cls.from_stream(vals[i:i + nf])[0]))
    assert len(theirs) == len(ours) >= 3
    stats = {"decimal": 0, "nan->default": 0, "nan->None": 0, "nul-char": 0}
    for (t_type, t), (o_type, d) in zip(theirs, ours):
        assert t_type == o_type
        for fname, camel in zip(type(t).model_fields, tt_fields(TT[t_type])):
            compare(f"{t_type}.{camel}", getattr(t, fname), d[camel], stats)
