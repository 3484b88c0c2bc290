"""Filtered fan-out: stream_filter / add_handler / send / exit / present_ws on the polygon client,
and fastfeed.compat.AsyncWebsocketStreamInterface on picows (and on a websockets connection)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import orjson
import pytest

from fastfeed._fanout import matches
from fastfeed.compat import AsyncWebsocketStreamInterface, connect
from fastfeed.polygon import AsyncStreamClient
from fastfeed.sim import PolygonServer

pytestmark = pytest.mark.timeout(40)

KEY = "fan-key"


async def _take(stream: Any, n: int) -> list[Any]:
    out = []
    async for item in stream:
        out.append(item)
        if len(out) >= n:
            break
    return out


async def test_filtered_stream_hands_queued_events_out_without_a_coroutine() -> None:
    from fastfeed._fanout import FanoutHub

    hub = FanoutHub()
    stream = hub.stream([{"ev": "T"}], maxsize=None)
    items = [{"ev": "T", "sym": "A", "p": i} for i in range(5)] + [{"ev": "Q", "sym": "A"}]
    await hub.publish(items)
    nxt = stream.__anext__()
    assert not inspect.iscoroutine(nxt)                  # queued: completed at once
    assert await nxt is items[0]
    a, b = stream.__anext__(), stream.__anext__()        # two handed out before either is awaited
    assert [await b, await a] == [items[2], items[1]]
    task = asyncio.ensure_future(stream.__anext__())     # a task takes it as a coroutine
    assert await asyncio.wait_for(task, 5) is items[3]
    assert await stream.__anext__() is items[4]
    waiting = stream.__anext__()
    assert inspect.iscoroutine(waiting)                  # nothing queued: waits
    pending = asyncio.ensure_future(waiting)
    await hub.publish([{"ev": "T", "sym": "B"}])
    assert (await asyncio.wait_for(pending, 5))["sym"] == "B"
    stream.close()
    assert await _take(stream, 1) == []


async def _take_until(stream: Any, last: Any) -> list[Any]:
    out = []
    async for item in stream:
        out.append(item)
        if last(item):
            break
    return out


def test_matches_rules() -> None:
    ev = {"ev": "T", "sym": "AAPL", "p": 1.0, "x": 4}
    assert matches(ev, None) and matches(ev, []) and matches(ev, [{}])
    assert matches(ev, [{"ev": "T"}])
    assert matches(ev, [{"ev": "T", "p": 1}])            # plain ==
    assert matches(ev, [{"event_type": "T", "symbol": "AAPL", "price": 1.0}])  # attribute names
    assert not matches(ev, [{"ev": "T", "sym": "MSFT"}])
    assert matches(ev, [{"sym": "MSFT"}, {"sym": "AAPL"}])  # any of
    assert not matches(ev, [{"missing": 1}])


async def test_polygon_stream_filter_fanout_and_close() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=4000, events_per_frame=10,
                             quirks=False) as srv:
        client = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        try:
            everything = client.stream_filter()
            trades_a = client.stream_filter([{"ev": "T", "sym": "AAPL"}])
            trades_b = client.stream_filter([{"event_type": "T", "symbol": "AAPL"}])
            quotes_or_msft = client.stream_filter([{"ev": "Q"}, {"sym": "MSFT"}])
            seen_sync: list[Any] = []
            seen_async: list[Any] = []

            async def ah(d: dict[str, Any]) -> None:
                seen_async.append(d)

            client.add_handler(seen_sync.append)
            client.add_handler(ah)
            await client.subscribe_stock_trades(["AAPL", "MSFT"], lambda d: None)
            await client.subscribe_stock_quotes(["AAPL"], lambda d: None)
            assert client.present_ws is not None
            a = await asyncio.wait_for(_take(trades_a, 30), 10)
            b = await asyncio.wait_for(_take(trades_b, 30), 10)
            assert a == b  # each stream sees every matching event
            assert all(d["ev"] == "T" and d["sym"] == "AAPL" for d in a)
            qm = await asyncio.wait_for(_take(quotes_or_msft, 30), 10)
            assert all(d["ev"] == "Q" or d["sym"] == "MSFT" for d in qm)
            # up to the first quote (how many trades the server sends before the quotes
            # subscription reaches it depends on the machine)
            allx = await asyncio.wait_for(_take_until(everything, lambda d: d["ev"] == "Q"), 10)
            assert {d["ev"] for d in allx} >= {"T", "Q"}
            # per ev code, the events are the ones sent, in wire order (types of one socket
            # read are delivered type by type)
            sent = [e for r in srv.sent for e in orjson.loads(r.data) if e["ev"] != "status"]
            for ev in ("T", "Q"):
                mine = [d for d in allx if d["ev"] == ev]
                assert mine == [d for d in sent if d["ev"] == ev][: len(mine)]
            trades_a.close()
            left = trades_a.left
            rest = await asyncio.wait_for(_take(trades_a, 10**9), 5)  # ends after queued items
            assert len(rest) == left
            await client.send({"action": "subscribe", "params": "Q.MSFT"})
            await asyncio.sleep(0.1)
            assert "Q.MSFT" in srv.subscriptions()
            assert seen_sync and seen_async
            assert seen_sync[: len(seen_async)] == seen_async[: len(seen_sync)]
        finally:
            await client.exit()
        # streams end after exit()
        assert await asyncio.wait_for(_take(everything, 10**9), 5) is not None


class PolygonStream(AsyncWebsocketStreamInterface):
    """What a user of asyncwebsocketstreaminterface writes for polygon."""

    split_lists = True

    def __init__(self, url: str, use_websockets: bool = False) -> None:
        self.url = url
        self.use_websockets = use_websockets
        self.rotate = asyncio.Event()
        super().__init__()

    async def _create_ws(self) -> Any:
        if self.use_websockets:
            import websockets
            ws = await websockets.connect(self.url)
        else:
            ws = await connect(self.url)
        await ws.send(orjson.dumps({"action": "auth", "params": KEY}).decode())
        await ws.send(orjson.dumps({"action": "subscribe", "params": "T.AAPL,Q.AAPL"}).decode())
        return ws

    async def _when2create_new_ws(self) -> None:
        await self.rotate.wait()
        self.rotate.clear()

    async def _parse_raw_data(self, raw_data: Any) -> Any:
        return orjson.loads(raw_data)


@pytest.mark.parametrize("use_websockets", [False, True])
async def test_compat_interface_filters_handlers_rotation(use_websockets: bool) -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=3000, events_per_frame=5) as srv:
        s = PolygonStream(f"ws://{srv.host_port}/stocks", use_websockets)
        try:
            got: list[Any] = []
            s.add_handler(got.append)
            trades = s.stream_filter([{"ev": "T"}])
            statuses = s.stream_filter([{"ev": "status"}])
            t = await asyncio.wait_for(_take(trades, 20), 10)
            assert all(d["ev"] == "T" for d in t)
            st = await asyncio.wait_for(_take(statuses, 2), 10)
            assert [x["status"] for x in st] == ["connected", "auth_success"]
            await s.wait_enter_handing_ws()
            first = s.present_ws
            s.rotate.set()
            for _ in range(300):
                await asyncio.sleep(0.02)
                if s.present_ws is not first and srv.connections == 1:
                    break
            assert s.present_ws is not first
            more = await asyncio.wait_for(_take(trades, 5), 10)
            assert len(more) == 5
            assert got
            await s.send(orjson.dumps({"action": "subscribe", "params": "Q.MSFT"}).decode())
        finally:
            await s.exit()
        assert await asyncio.wait_for(_take(trades, 10**9), 5) is not None


async def test_mixin_on_dxlink_streamer() -> None:
    """DXLinkStreamer carries the fan-out API (``class DXLinkStreamer(FanoutMixin, Streamer)``)."""
    from fastfeed._fanout import FanoutMixin
    from fastfeed.dxfeed import Quote, Trade
    from fastfeed.sim import DXLinkServer
    from fastfeed.tastytrade import DXLinkStreamer

    assert issubclass(DXLinkStreamer, FanoutMixin)

    async with DXLinkServer(rate=2000, events_per_frame=5, seed=3) as srv:
        st = DXLinkStreamer(srv.session())
        try:
            await st.start()
            spy_quotes = st.stream_filter([{"eventType": "Quote", "eventSymbol": "SPY"}])
            spy_quotes2 = st.stream_filter([{"event_symbol": "SPY", "eventType": "Quote"}])
            trades = st.stream_filter([{"eventType": "Trade"}])
            got: list[Any] = []
            st.add_handler(got.append)
            await st.subscribe(Quote, ["AAPL", "SPY"])
            await st.subscribe(Trade, ["AAPL"])
            a = await asyncio.wait_for(_take(spy_quotes, 20), 10)
            b = await asyncio.wait_for(_take(spy_quotes2, 20), 10)
            assert all(isinstance(e, Quote) and e.event_symbol == "SPY" for e in a)
            assert a == b
            t = await asyncio.wait_for(_take(trades, 3), 10)
            assert all(isinstance(e, Trade) for e in t)
            assert got and st.present_ws is not None
        finally:
            await st.exit()
