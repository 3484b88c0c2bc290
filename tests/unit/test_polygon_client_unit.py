"""fastfeed.polygon without a network: surface, enums, constructor, symbol rules, dict builder."""

from __future__ import annotations

import inspect

import orjson
import pytest

import fastfeed.polygon as fp
from fastfeed.polygon import AsyncStreamClient, StreamCluster, StreamHost, StreamServicePrefix

pytestmark = pytest.mark.timeout(20)

pkg = pytest.importorskip("polygon.streaming.async_streaming")
penums = pytest.importorskip("polygon.enums")


def test_enums_match_the_package() -> None:
    for ours, theirs in ((StreamCluster, penums.StreamCluster), (StreamHost, penums.StreamHost),
                         (StreamServicePrefix, penums.StreamServicePrefix)):
        assert {m.name: m.value for m in ours.__members__.values()} == \
            {m.name: m.value for m in theirs.__members__.values()}
        assert list(ours.__members__) == list(theirs.__members__)


def test_every_public_method_with_same_parameters() -> None:
    theirs = pkg.AsyncStreamClient
    names = [n for n, f in inspect.getmembers(theirs, inspect.isfunction)
             if (not n.startswith("_") and n != "login") or n in ("__aenter__", "__aexit__")]
    subs = [n for n in names if n.startswith(("subscribe_", "unsubscribe_"))]
    assert len(subs) == 44
    for n in names:
        ours = getattr(AsyncStreamClient, n)
        p_theirs = list(inspect.signature(getattr(theirs, n)).parameters.values())
        p_ours = list(inspect.signature(ours).parameters.values())
        # ours may add trailing extension parameters (deliver=), and __aexit__ takes *exc
        for a, b in zip(p_theirs, p_ours, strict=False):
            if a.name in ("exc_type", "exc_val", "exc_tb"):
                continue
            assert (a.name, a.default) == (b.name, b.default), n
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(
            getattr(theirs, n)), n
    assert AsyncStreamClient.unsubscribe_indices_value is AsyncStreamClient.unsubscribe_index_value
    sig = inspect.signature(AsyncStreamClient.__init__).parameters
    ref = inspect.signature(theirs.__init__).parameters
    for name in ref:
        assert name in sig and sig[name].default == ref[name].default, name


def test_url_and_no_key_in_repr() -> None:
    c = AsyncStreamClient("KEY-abc-123", StreamCluster.CRYPTO)
    assert c.url == "wss://socket.polygon.io/crypto"
    assert "KEY-abc-123" not in repr(c)
    c2 = AsyncStreamClient("k", "stocks", host="ws://127.0.0.1:8765")
    assert c2.url == "ws://127.0.0.1:8765/stocks"
    c3 = AsyncStreamClient("k", "options", host=StreamHost.DELAYED)
    assert c3.url == "wss://delayed.polygon.io/options"
    assert fp.ensure_prefix("spy") == "O:SPY" and fp.ensure_prefix("O:spy") == "O:SPY"


async def test_close_stream_before_connect_is_noop() -> None:
    c = AsyncStreamClient("k", "stocks")
    await c.close_stream()
    async with AsyncStreamClient("k", "stocks") as c2:
        assert c2 is not None


async def test_argument_validation() -> None:
    c = AsyncStreamClient("k", "stocks")
    with pytest.raises(ValueError):
        await c.subscribe_index_value(["SPX"])
    with pytest.raises(ValueError):
        await c.handle_messages(reconnect=True, max_reconnection_attempts=0)
    with pytest.raises(ValueError):
        await c.change_handler("NOPE", print)
    with pytest.raises(ValueError):
        AsyncStreamClient("k", "stocks", handler_errors="ignore")  # type: ignore[arg-type]


async def test_change_handler_every_prefix() -> None:
    c = AsyncStreamClient("k", "crypto")
    for p in ("T", "Q", "AM", "A", "LULD", "NOI", "C", "CA", "CAS", "XT", "XQ", "XL2", "XA",
              "XAS", "FMV", "V", "status"):
        await c.change_handler(p, print)
        assert c._handlers[p].fn is print
    await c.change_handler(StreamServicePrefix.OPTION_TRADES, len)
    assert c._handlers["T"].fn is len


def test_dicts_from_records_equal_orjson() -> None:
    from fastfeed._native.pgdict import dispatch_dicts, to_dicts
    from fastfeed._native.polygon import PolygonDecoder

    frames = [
        b'[{"ev":"T","sym":"NVDA","i":"62879131889021","x":4,"p":131,"s":100,"c":[12,37],'
        b'"t":1718901234568,"q":51234002,"z":3,"trfi":202,"trft":1718901234541,"ds":"0.5"}]',
        b'[{"ev":"Q","sym":"AAPL","bx":19,"bp":214.28,"bs":2,"ax":12,"ap":214.3,"as":1.0,'
        b'"c":1,"i":[604],"t":1718901234570,"q":8891202,"z":3}]',
        b'[{"ev":"AM","sym":"OTCXY","v":1200,"av":15000,"op":0.0412,"vw":0.0415,"o":0.0414,'
        b'"c":0.0416,"h":0.0416,"l":0.0414,"a":0.0413,"z":400,"s":1,"e":2,"otc":true}]',
        b'[{"ev":"C","p":"EUR/USD","x":"44","a":1.07421,"b":1.07418,"t":1718901234610}]',
        b'[{"ev":"XL2","pair":"BTC-USD","t":1,"r":2,"x":1,"b":[[64210.1,0.513],[64209,1]],'
        b'"a":[[64210.9,0.25]]}]',
        b'[{"ev":"XT","pair":"BTC-USD","p":64210.5,"t":1,"s":0.00431,"c":[2],"i":585331204,'
        b'"x":1,"r":2}]',
        b'[{"ev":"NOI","T":"MSFT","t":1718913001234567890,"at":1600,"a":"C","i":4412,"x":10,'
        b'"o":125300,"p":880000,"b":447.35}]',
        b'[{"ev":"V","val":5473.17,"T":"I:SPX","t":1718901234630}]',
    ]
    dec = PolygonDecoder("stocks")
    for f in frames:
        dec.feed(f)
        want = orjson.loads(f)
        ev = want[0]["ev"]
        batch = dec.drain(ev)
        got = to_dicts(batch)
        assert got == want
        assert [{k: type(v) for k, v in d.items()} for d in got] == \
            [{k: type(v) for k, v in d.items()} for d in want]
        seen: list[dict[str, object]] = []
        assert dispatch_dicts(batch, 0, seen.append) == (1, None, False) or seen == want
