"""DXLinkSession: ordering, auth, channels, chunked subscriptions, keepalive."""

from __future__ import annotations

import json

import pytest

from fastfeed import SubscriptionError
from fastfeed._native.dxlink import CHANNELS, DXLinkSession, ChannelClosed, ChannelOpened


def sent(s):
    return [json.loads(b) for b in s.data_to_send()]


def handshake(s, token="tok"):
    s.start(token, now=0.0)
    out = sent(s)
    assert out == [{"type": "SETUP", "channel": 0, "keepaliveTimeout": 60,
                    "acceptKeepaliveTimeout": 60, "version": "0.1-DXF-JS/0.3.0"}]
    s.feed('{"type":"SETUP","channel":0,"keepaliveTimeout":60,"acceptKeepaliveTimeout":60,"version":"1.0"}')
    assert sent(s) == []
    s.feed('{"type":"AUTH_STATE","channel":0,"state":"UNAUTHORIZED"}')
    assert sent(s) == [{"type": "AUTH", "channel": 0, "token": token}]


def test_strict_ordering_nothing_on_channels_before_authorized():
    s = DXLinkSession()
    handshake(s)
    s.subscribe("Quote", ["SPY", "SPX"])
    s.subscribe("Candle", "SPY{=5m,tho=true}", from_time=1767312000000)
    assert sent(s) == []                                   # not yet AUTHORIZED
    s.feed('{"type":"AUTH_STATE","channel":0,"state":"AUTHORIZED","userId":"u1"}')
    out = sent(s)
    assert sorted(m["channel"] for m in out) == [1, 7]
    assert all(m["type"] == "CHANNEL_REQUEST" and m["service"] == "FEED"
               and m["parameters"] == {"contract": "AUTO"} for m in out)
    s.feed('{"type":"CHANNEL_OPENED","channel":7,"service":"FEED","parameters":{"contract":"AUTO","subFormat":"LIST"}}')
    out = sent(s)
    assert out[0]["type"] == "FEED_SETUP" and out[0]["channel"] == 7
    assert out[0]["acceptDataFormat"] == "COMPACT" and out[0]["acceptAggregationPeriod"] == 0.1
    from fastfeed.dxfeed import Quote
    assert out[0]["acceptEventFields"] == {"Quote": list(Quote.FIELDS)}
    assert out[1] == {"type": "FEED_SUBSCRIPTION", "channel": 7,
                      "add": [{"type": "Quote", "symbol": "SPY"}, {"type": "Quote", "symbol": "SPX"}]}
    s.feed('{"type":"CHANNEL_OPENED","channel":1,"service":"FEED","parameters":{"contract":"AUTO"}}')
    out = sent(s)
    assert out[1]["add"] == [{"type": "Candle", "symbol": "SPY{=5m,tho=true}", "fromTime": 1767312000000}]
    s.unsubscribe("Candle", ["SPY{=5m,tho=true}"])
    assert sent(s) == [{"type": "FEED_SUBSCRIPTION", "channel": 1,
                        "remove": [{"type": "Candle", "symbol": "SPY{=5m,tho=true}"}]}]
    s.reset("Quote")
    assert sent(s) == [{"type": "FEED_SUBSCRIPTION", "channel": 7, "reset": True}]
    assert [type(e) for e in s.events_received()].count(ChannelOpened) == 2


def test_cancel_and_reopen_same_channel():
    s = DXLinkSession()
    handshake(s)
    s.feed('{"type":"AUTH_STATE","channel":0,"state":"AUTHORIZED"}')
    s.subscribe("Quote", "SPY")
    sent(s)
    s.feed('{"type":"CHANNEL_OPENED","channel":7,"service":"FEED","parameters":{}}')
    sent(s)
    s.cancel("Quote")
    assert sent(s) == [{"type": "CHANNEL_CANCEL", "channel": 7}]
    s.subscribe("Quote", "QQQ")                 # while the cancel is in flight
    assert sent(s) == []
    s.feed('{"type":"CHANNEL_CLOSED","channel":7}')
    assert sent(s)[0]["type"] == "CHANNEL_REQUEST"
    s.feed('{"type":"CHANNEL_OPENED","channel":7,"service":"FEED","parameters":{}}')
    out = sent(s)
    assert out[0]["type"] == "FEED_SETUP" and out[1]["add"] == [{"type": "Quote", "symbol": "QQQ"}]
    assert any(isinstance(e, ChannelClosed) for e in s.events_received())


def test_subscription_chunks_never_exceed_8k():
    s = DXLinkSession()
    handshake(s)
    s.feed('{"type":"AUTH_STATE","channel":0,"state":"AUTHORIZED"}')
    syms = [f".SPXW260320C{5000 + i}" for i in range(5000)]
    s.subscribe("Greeks", syms)
    sent(s)
    s.feed('{"type":"CHANNEL_OPENED","channel":3,"service":"FEED","parameters":{}}')
    raw = s.data_to_send()
    subs = [b for b in raw if b"FEED_SUBSCRIPTION" in b]
    assert len(subs) > 5
    assert all(len(b) <= 8192 for b in raw)
    got = [it["symbol"] for b in subs for it in json.loads(b)["add"]]
    assert got == syms
    with pytest.raises(SubscriptionError):
        s.subscribe("Quote", "X" * 9000)


def test_rejected_token_is_reported_not_looped():
    s = DXLinkSession()
    handshake(s, "bad")
    s.events_received()
    s.feed('{"type":"AUTH_STATE","channel":0,"state":"UNAUTHORIZED"}')
    assert sent(s) == []
    ev = s.events_received()
    assert ev[0].state == "UNAUTHORIZED" and ev[0].rejected is True
    s.authorize("good")
    assert sent(s) == [{"type": "AUTH", "channel": 0, "token": "good"}]
    assert "good" not in repr(ev) and "bad" not in repr(s.events_received())


def test_keepalive_clock():
    s = DXLinkSession()
    assert not s.keepalive_due(100.0) and not s.server_silent(100.0)
    s.start("t", keepalive_timeout=60, now=1000.0)
    s.feed('{"type":"SETUP","channel":0,"keepaliveTimeout":20,"acceptKeepaliveTimeout":60,"version":"x"}')
    assert s.keepalive_period == 10.0
    assert not s.keepalive_due(1005.0)
    assert s.keepalive_due(1010.0)
    s.send_keepalive(now=1010.0)
    assert json.loads(s.data_to_send()[-1]) == {"type": "KEEPALIVE", "channel": 0}
    assert not s.keepalive_due(1015.0)
    s.note_sent(1019.0)
    assert not s.keepalive_due(1028.0) and s.keepalive_due(1029.0)
    assert not s.server_silent(1060.0)
    assert s.server_silent(1060.5)
    s.note_received(1060.0)
    assert not s.server_silent(1100.0)


def test_error_control_event_and_data_through_session():
    s = DXLinkSession()
    handshake(s)
    s.feed('{"type":"ERROR","channel":0,"error":"TIMEOUT","message":"last received 60 seconds ago"}')
    ev = s.events_received()
    assert ev[-1].error == "TIMEOUT" and ev[-1].channel == 0
    assert s.feed('{"type":"FEED_DATA","channel":7,"data":["Quote",["SPY",0,0,0,0,"Q",0,"Q",1,2,3,4]]}') == 1
    assert s.drain("Quote")[0].ask_size == 4.0


def test_channel_numbers_like_tastytrade():
    assert CHANNELS["Quote"] == 7 and CHANNELS["Greeks"] == 3 and CHANNELS["Candle"] == 1
    s = DXLinkSession()
    assert s.channel_for("Trade") == 15


def test_matches_tastytrade_13_transcript():
    """Our client messages for Quote have the shape tastytrade 13.2.3 sends."""
    from pathlib import Path
    path = Path("/work/shared/fixtures/tastytrade-client/captured_tastytrade_13.2.3_dxlink_and_account.jsonl")
    if not path.exists():
        pytest.skip("fixtures not available")
    theirs = [json.loads(l)["msg"] for l in path.read_text().splitlines()
              if json.loads(l)["dir"] == "C->S" and "channel" in json.loads(l)["msg"]]
    their_setup = next(m for m in theirs if m["type"] == "FEED_SETUP" and m["channel"] == 7)
    s = DXLinkSession()
    handshake(s, "quote-token")
    s.feed('{"type":"AUTH_STATE","channel":0,"state":"AUTHORIZED"}')
    s.subscribe("Quote", ["SPY"])
    req = sent(s)[0]
    assert req == next(m for m in theirs if m["type"] == "CHANNEL_REQUEST" and m["channel"] == 7)
    s.feed('{"type":"CHANNEL_OPENED","channel":7,"service":"FEED","parameters":{}}')
    assert sent(s)[0] == their_setup


def test_desired_subscriptions_are_owned_and_replayed_on_every_authorized():
    from fastfeed.dxlink.session import DXLinkSession as PySession

    assert DXLinkSession is PySession                     # the old import path still works
    s = DXLinkSession()
    assert s.want("Quote", ["SPY"], aggregation_period=0.5) == ["SPY"]
    assert s.want("Quote", ["SPY"]) == []                  # a set: no duplicate
    handshake(s)
    assert sent(s) == []                                   # nothing before AUTHORIZED
    opened = '{"type":"CHANNEL_OPENED","channel":7,"service":"FEED","parameters":{}}'
    for _ in range(2):                                     # first connection, then a reconnect
        s.feed('{"type":"AUTH_STATE","channel":0,"state":"AUTHORIZED"}')
        assert [(m["type"], m["channel"]) for m in sent(s)] == [("CHANNEL_REQUEST", 7)]
        s.feed(opened)
        setup, sub = sent(s)
        assert setup["acceptAggregationPeriod"] == 0.5
        assert sub["add"] == [{"type": "Quote", "symbol": "SPY"}]
        s.connection_lost()
        handshake(s)
    s.feed('{"type":"AUTH_STATE","channel":0,"state":"AUTHORIZED"}')
    s.feed(opened)
    sent(s)
    assert s.want("Quote", ["AAPL"]) == ["AAPL"]           # authorized: sent at once
    assert sent(s)[0]["add"] == [{"type": "Quote", "symbol": "AAPL"}]
    assert s.unwant("Quote", ["SPY"]) == ["SPY"]
    assert sent(s)[0]["remove"] == [{"type": "Quote", "symbol": "SPY"}]
    assert s.types_on(7) == ["Quote"]
    s.feed('{"type":"CHANNEL_CLOSED","channel":7}')        # the server dropped the channel
    s.replay_type("Quote")
    assert [m["type"] for m in sent(s)] == ["CHANNEL_REQUEST"]
    s.feed(opened)
    assert sent(s)[1]["add"] == [{"type": "Quote", "symbol": "AAPL"}]
    s.unwant_all("Quote")
    assert sent(s) == [{"type": "CHANNEL_CANCEL", "channel": 7}] and not s.desired.items
