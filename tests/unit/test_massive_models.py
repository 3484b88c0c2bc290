"""fastfeed.massive's models, enums and client surface against massive 2.9.1's."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import orjson
import pytest

import fastfeed
import fastfeed.massive as ffm
from fastfeed import PolygonDecoder
from fastfeed._native.pgmodels import build_models
from fastfeed.massive._client import models_of

massive = pytest.importorskip("massive")
mmodels = pytest.importorskip("massive.websocket.models.models")
mcommon = pytest.importorskip("massive.websocket.models.common")
mexc = pytest.importorskip("massive.exceptions")
massive_parse = pytest.importorskip("massive.websocket.models").parse

pytestmark = pytest.mark.peer

MODELS = ["EquityAgg", "CurrencyAgg", "EquityTrade", "CryptoTrade", "EquityQuote", "ForexQuote",
          "CryptoQuote", "Imbalance", "LimitUpLimitDown", "Level2Book", "IndexValue",
          "LaunchpadValue", "FairMarketValue", "FuturesTrade", "FuturesQuote", "FuturesAgg"]

# (market, frame): vendor-shaped events (values mine), with the spec's quirks: integral prices
# without a fraction, optional keys missing, "x" as a string, otc, fractional strings, an
# unknown key, escaped slashes, futures keys
FRAMES: list[tuple[str, list[dict[str, Any]]]] = [
    ("stocks", [
        {"ev": "Q", "sym": "NVDA", "bx": 12, "bp": 131.05, "bs": 3, "ax": 11, "ap": 131, "as": 5,
         "c": 1, "i": [604, 607], "t": 1718901234567, "q": 51234001, "z": 3},
        {"ev": "T", "sym": "NVDA", "i": "62879131889021", "x": 4, "p": 131.06, "s": 100,
         "c": [12, 37], "t": 1718901234568, "q": 51234002, "z": 3, "trfi": 202,
         "trft": 1718901234541, "ds": "0.5", "pt": 1718901234560},
        {"ev": "T", "sym": "SPY", "i": "5", "x": 15, "p": 548, "s": 300, "t": 1, "q": 2, "z": 2},
        {"ev": "AM", "sym": "TSLA", "v": 182340, "av": 40123991, "op": 181.02, "vw": 183.4417,
         "o": 183.3, "c": 183.61, "h": 183.77, "l": 183.12, "a": 182.5513, "z": 97,
         "s": 1718901180000, "e": 1718901240000, "dv": "182340.25", "dav": "1.5"},
        {"ev": "A", "sym": "OTCXY", "v": 1200, "av": 15000, "op": 0.0412, "vw": 0.0415,
         "o": 0.0414, "c": 0.0416, "h": 0.0416, "l": 0.0414, "a": 0.0413, "z": 400,
         "s": 1718901239000, "e": 1718901240000, "otc": True},
        {"ev": "LULD", "T": "GME", "h": 27.18, "l": 22.24, "i": [21], "z": 1,
         "t": 1718901234583112, "q": 1203344},
        {"ev": "NOI", "T": "MSFT", "t": 1718913001234567890, "at": 1600, "a": "C", "i": 4412,
         "x": 10, "o": 125300, "p": 880000, "b": 447.35},
        {"ev": "FMV", "fmv": 214.291, "sym": "AAPL", "t": 1718901234640123456},
        {"ev": "LV", "val": 3.5, "sym": "AAPL", "t": 17},
    ]),
    ("forex", [
        {"ev": "C", "p": "EUR/USD", "x": "44", "a": 1.07421, "b": 1.07418, "t": 1718901234610},
        {"ev": "C", "p": "USD/JPY", "x": 48, "a": 157, "b": 156.9, "t": 1718901234611},
        {"ev": "CA", "pair": "EUR/USD", "o": 1.0741, "c": 1.07421, "h": 1.07433, "l": 1.07402,
         "v": 312, "s": 1718901180000, "e": 1718901240000},
        {"ev": "AM", "sym": "C:USD-EUR", "v": 1, "o": 1.1, "c": 1.2, "h": 1.3, "l": 1.0,
         "s": 1, "e": 2},
    ]),
    ("crypto", [
        {"ev": "XT", "pair": "BTC-USD", "p": 64210.5, "t": 1718901234620, "s": 0.00431,
         "c": [2], "i": "585331204", "x": 1, "r": 1718901234633},
        {"ev": "XQ", "pair": "ETH-USD", "bp": 3530.12, "bs": 1.2, "ap": 3530.6, "as": 0.75,
         "t": 1718901234621, "x": 2, "r": 1718901234630},
        {"ev": "XAS", "pair": "SOL-USD", "v": 1840.2231, "vw": 133.9051, "z": 12, "o": 133.8,
         "c": 134.05, "h": 134.1, "l": 133.77, "s": 1718901180000, "e": 1718901240000},
        {"ev": "XL2", "pair": "BTC-USD", "t": 1718901234622, "r": 1718901234631, "x": 1,
         "b": [[64210.1, 0.513], [64209, 1]], "a": [[64210.9, 0.25], [64211.4, 2.4]]},
    ]),
    ("indices", [
        {"ev": "V", "val": 5473.17, "T": "I:SPX", "t": 1718901234630},
        {"ev": "A", "sym": "I:NDX", "op": 19601.3, "o": 19640.11, "c": 19641.02, "h": 19641.5,
         "l": 19639.9, "s": 1718901233000, "e": 1718901234000},
    ]),
    ("futures/cme", [
        {"ev": "T", "sym": "ESZ5", "p": 6012.25, "s": 3, "t": 1718901234650, "q": 991},
        {"ev": "Q", "sym": "ESZ5", "bp": 6012, "bs": 12, "bt": 1718901234640, "ap": 6012.25,
         "as": 9, "at": 1718901234641, "t": 1718901234651},
        {"ev": "AM", "sym": "ESZ5", "v": 5120, "dv": 30781440, "o": 6011.5, "c": 6012.25,
         "h": 6013, "l": 6010.75, "n": 811, "s": 1718901180000, "e": 1718901240000},
        {"ev": "A", "sym": "NQZ5", "v": 12, "dv": "254012.5", "o": 21011.5, "c": 21012,
         "h": 21013, "l": 21010.75, "n": 8, "s": 1, "e": 2},
    ]),
]


def _same(mine: Any, ref: Any, skip: tuple[str, ...] = ()) -> None:
    assert type(mine).__name__ == type(ref).__name__
    assert [f.name for f in dataclasses.fields(mine)] == [f.name for f in dataclasses.fields(ref)]
    for f in dataclasses.fields(ref):
        if f.name in skip:
            continue
        a, b = getattr(mine, f.name), getattr(ref, f.name)
        assert a == b and type(a) is type(b), (type(ref).__name__, f.name, a, b)
        if isinstance(b, list):
            assert repr(a) == repr(b)  # element types too (ints stay ints in levels)
    if not skip:
        assert repr(mine) == repr(ref)


def test_enums_equal_massive() -> None:
    for name in ("Feed", "Market", "EventType"):
        mine = {m.name: m.value for m in getattr(ffm, name).__members__.values()}
        ref = {m.name: m.value for m in getattr(mcommon, name).__members__.values()}
        assert mine == ref, name
    assert ffm.Feed.RealTime.value == "socket.massive.com"
    assert ffm.Market("futures/comex") is ffm.Market.FuturesCOMEX


@pytest.mark.parametrize("name", MODELS)
def test_fields_and_defaults_equal_massive(name: str) -> None:
    mine, ref = getattr(ffm, name), getattr(mmodels, name)
    assert dataclasses.is_dataclass(mine)
    assert [f.name for f in dataclasses.fields(mine)] == [f.name for f in dataclasses.fields(ref)]
    # every field None when absent (built without an event type, a model reads its class's
    # first ev code: a record always has one)
    for m, r in ((mine(), ref()), (mine.from_dict({}), ref.from_dict({}))):
        assert m.event_type == next(iter(m._RTYPES)) and r.event_type is None
        _same(m, r, skip=("event_type",))


@pytest.mark.parametrize(("market", "frame"), FRAMES, ids=[m for m, _ in FRAMES])
def test_decoded_models_equal_massive_parse(market: str, frame: list[dict[str, Any]]) -> None:
    raw = orjson.dumps(frame).replace(b"EUR/USD", b"EUR\\/USD")
    ref = massive_parse(orjson.loads(raw), None, mcommon.Market(market))
    assert len(ref) == len(frame)
    # the decoder's records -> models, in wire order across types
    dec = PolygonDecoder(market)
    cmap = ffm.MARKET_EVENT_MAP[ffm.Market(market)]
    assert dec.feed(raw) == len(frame)
    batches, classes = [], []
    for ev, cls in cmap.items():
        b = dec.drain(ev)
        if b:
            batches.append(b)
            classes.append(cls)
    got = models_of(batches, classes)
    assert len(got) == len(ref)
    for mine, r in zip(got, ref):
        _same(mine, r)
    # and from_dict, the same
    for mine, r in zip(ffm.parse(orjson.loads(raw), None, ffm.Market(market)), ref):
        _same(mine, r)


def test_dataclass_behaviour() -> None:
    d = FRAMES[0][1][1]
    mine, ref = ffm.EquityTrade.from_dict(d), mmodels.EquityTrade.from_dict(d)
    assert dataclasses.asdict(mine) == dataclasses.asdict(ref)
    assert mine == ffm.EquityTrade.from_dict(d)
    assert mine != ffm.EquityTrade.from_dict({**d, "p": 1.0})
    assert mine != ref  # another class, as two dataclasses of different classes
    _same(dataclasses.replace(mine, price=2.5), dataclasses.replace(ref, price=2.5))
    _same(ffm.EquityTrade("T", "AAPL", 4, price=1.5), mmodels.EquityTrade("T", "AAPL", 4,
                                                                            price=1.5))
    with pytest.raises(TypeError):
        hash(mine)
    _same(pickle.loads(pickle.dumps(mine)), ref)
    _same(copy.deepcopy(mine), ref)
    with pytest.raises(AttributeError):
        mine.price = 3.0  # type: ignore[misc]
    assert ffm.EquityAgg.from_dict({"ev": ffm.EventType.EquityAggMin}).event_type == "AM"


def test_models_of_keeps_wire_order_and_checks_input() -> None:
    dec = PolygonDecoder("stocks")
    frame = [{"ev": "T", "sym": "A", "q": 1}, {"ev": "Q", "sym": "A", "q": 2},
             {"ev": "T", "sym": "A", "q": 3}, {"ev": "LULD", "T": "A", "q": 4}]
    dec.feed(orjson.dumps(frame))
    batches = [dec.drain("T"), dec.drain("Q"), dec.drain("LULD")]
    classes = [ffm.EquityTrade, ffm.EquityQuote, ffm.LimitUpLimitDown]
    assert [m.sequence_number for m in models_of(batches, classes)] == [1, 2, 3, 4]
    # a None class leaves its batch out; without an order, batch after batch
    assert [m.sequence_number for m in build_models(batches, [None, ffm.EquityQuote, None])] == [2]
    assert [m.sequence_number for m in build_models(batches, classes)] == [1, 3, 2, 4]
    with pytest.raises(ValueError):
        build_models(batches, classes, b"\x00\x00")
    with pytest.raises(ValueError):
        build_models(batches, classes, b"\x00\x00\x00\x07")
    with pytest.raises(ValueError):
        build_models(batches, classes[:2])


def test_constructor_like_massive(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(mexc.AuthError) as info:
        ffm.WebSocketClient(api_key=None)
    assert isinstance(info.value, fastfeed.AuthenticationError)
    c = ffm.WebSocketClient(api_key="k", feed=ffm.Feed.Delayed, market="futures/cme")
    assert c.url == "wss://delayed.massive.com/futures/cme"
    assert c.market is ffm.Market.FuturesCME and c.market_value == "futures/cme"
    c = ffm.WebSocketClient(api_key="k", feed="127.0.0.1:9", market=ffm.Market.Crypto,
                            secure=False, subscriptions=["XT.*"], max_reconnects=None,
                            custom_json=orjson, ping_interval=3)
    assert c.url == "ws://127.0.0.1:9/crypto"
    assert c.scheduled_subs == {"XT.*"} and c.max_reconnects is None and c.json is orjson
    assert c.websocket_cfg == {"ping_interval": 3}
    assert "k" not in repr(c).replace("WebSocketClient", "")
    with pytest.raises(ValueError):
        ffm.WebSocketClient(api_key="k", market="bonds")
    # massive's own enums work too (a user who changed only the client's import)
    c = ffm.WebSocketClient(api_key="k", feed=mcommon.Feed.Business,
                            market=mcommon.Market.FuturesNYMEX)
    assert c.url == "wss://business.massive.com/futures/nymex"
    assert c.market is ffm.Market.FuturesNYMEX


def test_subscription_bookkeeping_like_massive() -> None:
    ref = massive.WebSocketClient(api_key="k")
    mine = ffm.WebSocketClient(api_key="k")
    mine.subscribe("no-dot")  # warned about and ignored (Massive's own warning call is broken)
    assert mine.scheduled_subs == set()
    for c in (ref, mine):
        c.subscribe("T.AAPL", "T.MSFT", "Q.AAPL")
        c.subs = {"T.AAPL", "T.MSFT", "Q.AAPL"}  # as after a reconcile
        c.subscribe("T.*")
        c.unsubscribe("Q.AAPL")
    assert mine.scheduled_subs == ref.scheduled_subs == {"T.*"}
    assert mine.schedule_resub and ref.schedule_resub
    for c in (ref, mine):
        c.subs = set(c.scheduled_subs) | {"Q.A", "Q.B"}
        c.scheduled_subs |= {"Q.A", "Q.B", "AM.X"}
        c.unsubscribe("Q.*")
    assert mine.scheduled_subs == ref.scheduled_subs == {"T.*", "AM.X"}
    for c in (ref, mine):
        c.unsubscribe_all()
    assert mine.scheduled_subs == ref.scheduled_subs == set()


async def test_close_without_connection_is_a_no_op() -> None:
    c = ffm.WebSocketClient(api_key="k")
    await c.close()
    assert c.websocket is None


def test_objects_of_one_read_share_its_records_yet_stay_distinct() -> None:
    dec = PolygonDecoder("stocks")
    frame = [{"ev": "T", "sym": "A", "p": 1.5, "q": 1}, {"ev": "T", "sym": "B", "p": 2, "q": 2}]
    dec.feed(orjson.dumps(frame))
    batch = dec.drain("T")
    a, b = build_models([batch], [ffm.EquityTrade])
    assert a != b and (a.symbol, b.symbol, a.price, b.price) == ("A", "B", 1.5, 2)
    assert [a.record, b.record] == [e.record for e in batch]  # fastfeed's own event objects
    for m in (a, b):
        back = pickle.loads(pickle.dumps(m))
        assert type(back) is ffm.EquityTrade and back == m
        _same(back, mmodels.EquityTrade.from_dict(
            {"ev": "T", "sym": m.symbol, "p": m.price, "q": m.sequence_number}))
    del batch, b
    assert (a.symbol, a.price, a.sequence_number) == ("A", 1.5, 1)  # a keeps what it needs
    with pytest.raises(TypeError):
        build_models([dec.drain("T")], [dict])


async def test_channels_the_market_lacks_are_warned_about_not_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    class Stream:  # records what the client asks of fastfeed.polygon.AsyncStreamClient
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        async def _modify_sub(self, symbols: str, action: str) -> None:
            self.calls.append((action, symbols))

        async def change_handler(self, ev: str, fn: Any, *, deliver: str) -> None:
            self.calls.append(("handler", f"{ev}:{deliver}"))

    c = ffm.WebSocketClient(api_key="k", market="indices", subscriptions=["V.I:SPX", "T.AAPL"])
    stream = Stream()
    c.websocket = stream
    with caplog.at_level("WARNING", logger="fastfeed.massive"):
        await c._reconcile()
    # a batch handler for V (and only V) first, then the subscription
    assert stream.calls == [("handler", "V:batch"), ("subscribe", "V.I:SPX")]
    assert c.subs == {"V.I:SPX"}
    assert any("'T.AAPL'" in r.getMessage() for r in caplog.records)
    c.unsubscribe_all()
    await c._reconcile()
    assert stream.calls[-1] == ("unsubscribe", "V.I:SPX") and c.subs == set()
