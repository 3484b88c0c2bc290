"""PolygonSession: connect -> auth -> subscribe sequence, typed status events, channel strings."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import fastfeed
from fastfeed._native import polygon as pg

DATA = Path(__file__).parent.parent / "data" / "polygon"
KEY = "sEcReT-KeY-123"


def status(s, m="x"):
    return orjson.dumps([{"ev": "status", "status": s, "message": m}])


def sent(sess):
    return [orjson.loads(b) for b in sess.data_to_send()]


def test_status_catalogue_is_typed():
    dec = fastfeed.PolygonDecoder()
    expected = [pg.Connected, pg.AuthSuccess, pg.SubscriptionAck, pg.SubscriptionAck, pg.AuthFailed,
                pg.AuthTimeout, pg.MaxConnections, pg.StatusError, pg.ForceDisconnect, pg.SlowConsumer,
                pg.AuthRequired, pg.UnknownStatus]
    for line in (DATA / "status.jsonl").read_text().splitlines():
        assert dec.feed(line.encode()) == 0
    got = dec.events_received()
    assert [type(e) for e in got] == expected
    assert got[0].message == "Connected Successfully"
    assert got[2].action == "subscribe" and got[2].channel == "T.AAPL"
    assert got[3].action == "unsubscribe" and got[3].channel == "Q.AAPL"
    assert got[-1].status == "brand_new"
    assert dec.stats["status"] == len(expected)


def test_status_mixed_with_data():
    dec = fastfeed.PolygonDecoder()
    n = dec.feed(b'[{"ev":"T","sym":"A","p":1},{"ev":"status","status":"success","message":"m"},'
                 b'{"ev":"Q","sym":"A"}]')
    assert n == 2
    assert [type(e) for e in dec.events_received()] == [pg.SubscriptionAck]


def test_sequence_with_key_given_upfront():
    s = pg.PolygonSession("stocks", KEY)
    assert s.state == "connecting"
    assert s.subscribe("T", ["aapl", "msft"]) == ["T.AAPL", "T.MSFT"]
    assert s.data_to_send() == []  # not authenticated yet
    s.feed(status("connected", "Connected Successfully"))
    assert s.state == "authenticating"
    assert sent(s) == [{"action": "auth", "params": KEY}]
    s.feed(status("auth_success", "authenticated"))
    assert s.state == "authenticated"
    assert sent(s) == [{"action": "subscribe", "params": "T.AAPL,T.MSFT"}]
    s.subscribe("Q.", None)
    assert sent(s) == [{"action": "subscribe", "params": "Q.*"}]
    s.unsubscribe("T", "msft")
    assert sent(s) == [{"action": "unsubscribe", "params": "T.MSFT"}]
    assert s.subscriptions == ("T.AAPL", "Q.*")
    assert [type(e) for e in s.events_received()] == [pg.Connected, pg.AuthSuccess]


def test_reconnect_replays_subscriptions():
    s = pg.PolygonSession("stocks", KEY)
    s.subscribe("AM", "all")
    s.feed(status("connected"))
    s.feed(status("auth_success"))
    s.data_to_send()
    s.connection_lost()
    assert s.state == "connecting"
    s.feed(status("connected"))
    s.feed(status("auth_success"))
    assert [m["action"] for m in sent(s)] == ["auth", "subscribe"]


def test_explicit_auth_and_failures():
    s = pg.PolygonSession("crypto")
    s.feed(status("connected"))
    assert s.data_to_send() == []  # no key: the caller authenticates
    s.auth(KEY)
    assert sent(s) == [{"action": "auth", "params": KEY}]
    s.feed(status("auth_failed", f"authentication failed for {KEY}"))
    assert s.state == "auth_failed"
    ev = s.events_received()[-1]
    assert isinstance(ev, pg.AuthFailed) and KEY not in repr(ev)
    for st, cls in [("max_connections", pg.MaxConnections), ("slow_consumer", pg.SlowConsumer),
                    ("force_disconnect", pg.ForceDisconnect), ("auth_timeout", pg.AuthTimeout)]:
        s2 = pg.PolygonSession("stocks", KEY)
        s2.feed(status(st))
        assert s2.state == "closed" and isinstance(s2.last_status, cls)


def test_key_never_in_repr_or_errors():
    s = pg.PolygonSession("stocks", KEY)
    assert KEY not in repr(s)
    s.feed(status("connected"))
    with pytest.raises(fastfeed.ProtocolError) as ei:
        s.feed(b"[" + KEY.encode())
    assert KEY not in str(ei.value)
    with pytest.raises(ValueError):
        pg.PolygonSession("stocks").auth()


@pytest.mark.parametrize(
    "cluster, prefix, symbols, want",
    [
        ("stocks", "T", None, ["T.*"]),
        ("stocks", "T", [], ["T.*"]),
        ("stocks", "T", "all", ["T.*"]),
        ("stocks", "T.", ["aapl", "BRK.A"], ["T.AAPL", "T.BRK.A"]),
        ("stocks", "LULD", ["gme"], ["LULD.GME"]),
        ("options", "Q", ["spy251219c00650000", "O:SPY251219P00650000", "o:x"],
         ["Q.O:SPY251219C00650000", "Q.O:SPY251219P00650000", "Q.O:X"]),
        ("options", "T", ["*"], ["T.*"]),
        ("indices", "V", ["spx", "I:NDX"], ["V.I:SPX", "V.I:NDX"]),
        ("forex", "C", ["eur/usd"], ["C.EUR/USD"]),
        ("crypto", "XL2", ["btc-usd"], ["XL2.BTC-USD"]),
    ],
)
def test_channels(cluster, prefix, symbols, want):
    assert pg.build_channels(cluster, prefix, symbols) == want


def test_channels_no_uppercase_and_errors():
    assert pg.build_channels("stocks", "T", ["aapl"], force_uppercase=False) == ["T.aapl"]
    assert pg.build_channels("options", "T", ["o:spy"], force_uppercase=False) == ["T.O:SPY"]
    with pytest.raises(ValueError):
        pg.build_channels("stocks", "XT", ["A"])
    with pytest.raises(ValueError):
        pg.build_channels("stocks", "T", ["A,B"])
    with pytest.raises(ValueError):
        pg.build_channels("futures/eurex", "T", ["A"])  # futures/cme etc. are clusters
    with pytest.raises(ValueError):
        pg.build_channels("bonds", "T", ["A"])
    with pytest.raises(ValueError):
        pg.build_channels("futures/cme", "LULD", ["ESZ5"])
    # Massive's futures markets: T, Q, A, AM, symbols as given
    assert pg.build_channels("futures", "Q", ["ESZ5"]) == ["Q.ESZ5"]
    assert pg.build_channels("futures/cme", "AM", None) == ["AM.*"]


def test_long_subscriptions_are_split():
    syms = [f"SYM{i:05d}" for i in range(3000)]
    s = pg.PolygonSession("stocks", KEY, max_params_bytes=1000)
    s.feed(status("connected"))
    s.feed(status("auth_success"))
    s.data_to_send()
    s.subscribe("T", syms)
    msgs = sent(s)
    assert len(msgs) > 1
    assert all(len(m["params"].encode()) <= 1000 for m in msgs)
    assert ",".join(m["params"] for m in msgs).split(",") == [f"T.{x}" for x in syms]


def test_split_params():
    assert pg.split_params(["T.A", "T.B", "T.C"], 7) == ["T.A,T.B", "T.C"]
    assert pg.split_params([], 7) == []
    assert pg.split_params(["T.LONGER_THAN_LIMIT"], 5) == ["T.LONGER_THAN_LIMIT"]
