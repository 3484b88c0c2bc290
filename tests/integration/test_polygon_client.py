"""fastfeed.polygon.AsyncStreamClient against the polygon simulator over loopback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

import fastfeed
from fastfeed.polygon import AsyncStreamClient, StreamCluster, StreamServicePrefix
from fastfeed.sim import PolygonServer

pytestmark = pytest.mark.timeout(40)

KEY = "sekrit-key-123"



def _wire_events(srv: PolygonServer, evs: set[str]) -> list[dict[str, Any]]:
    out = []
    for rec in srv.sent:
        for d in orjson.loads(rec.data):
            if d.get("ev") in evs:
                out.append(d)
    return out


async def _collect(client: AsyncStreamClient, box: list[Any], n: int) -> None:
    while len(box) < n:
        await client.handle_messages()


@pytest.mark.parametrize("quirks", [False, True])
async def test_dicts_equal_orjson_of_sent_frames(quirks: bool) -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=3000, events_per_frame=20,
                             quirks=quirks) as srv:
        got: dict[str, list[dict[str, Any]]] = {"T": [], "Q": [], "AM": []}
        async with AsyncStreamClient(KEY, StreamCluster.STOCKS, host=srv.client_host) as client:
            await client.subscribe_stock_trades(["AAPL", "msft"], got["T"].append)
            await client.subscribe_stock_quotes(None, got["Q"].append)
            await client.subscribe_stock_minute_aggregates("all", got["AM"].append)
            while sum(len(v) for v in got.values()) < 600:
                await client.handle_messages()
        await asyncio.sleep(0.05)
        for ev, items in got.items():
            wire = _wire_events(srv, {ev})[: len(items)]
            assert len(wire) == len(items)
            for mine, theirs in zip(items, wire):
                assert type(mine) is dict
                assert mine == theirs    # unknown keys (quirks) included: nothing dropped
                assert {k: type(v) for k, v in mine.items()} == \
                    {k: type(v) for k, v in theirs.items()}


async def test_subscription_messages_and_symbol_rules() -> None:
    async with PolygonServer(cluster="options", api_key=KEY, rate=None) as srv:
        client = AsyncStreamClient(KEY, "options", host=srv.client_host)
        try:
            await client.subscribe_option_trades(["spy251219c00650000", "O:AAPL250117C00220000"])
            await client.subscribe_option_quotes(None)
            await client.unsubscribe_option_quotes([])
            await asyncio.sleep(0.2)
        finally:
            await client.close_stream()
        recv = [orjson.loads(r.data) for r in srv.received]
        assert recv[0] == {"action": "auth", "params": KEY}
        subs = [m for m in recv[1:]]
        assert {"action": "subscribe",
                "params": "T.O:SPY251219C00650000,T.O:AAPL250117C00220000"} in subs
        assert {"action": "subscribe", "params": "Q.*"} in subs
        assert {"action": "unsubscribe", "params": "Q.*"} in subs


async def test_async_handlers_awaited_in_order_and_change_handler() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=5000, events_per_frame=10,
                             quirks=False) as srv:
        seen: list[int] = []
        active = 0
        overlap = False

        async def slow(d: dict[str, Any]) -> None:
            nonlocal active, overlap
            active += 1
            overlap = overlap or active > 1
            await asyncio.sleep(0)
            seen.append(d["q"])
            active -= 1

        other: list[dict[str, Any]] = []
        async with AsyncStreamClient(KEY, "stocks", host=srv.client_host) as client:
            await client.subscribe_stock_trades(["AAPL"], slow)
            await _collect(client, seen, 50)
            await client.change_handler(StreamServicePrefix.STOCK_TRADES, other.append)
            await _collect(client, other, 20)
        assert not overlap
        assert seen == sorted(seen)  # one ticker: sequence numbers increase in wire order
        assert all(d["ev"] == "T" for d in other)


async def test_handler_exception_logged_no_reconnect(caplog: pytest.LogCaptureFixture) -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=5000, events_per_frame=10) as srv:
        n = 0

        def bad(d: dict[str, Any]) -> None:
            nonlocal n
            n += 1
            if n % 7 == 0:
                raise RuntimeError("user bug")

        client = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        try:
            await client.subscribe_stock_trades(None, bad)
            with caplog.at_level(logging.ERROR, logger="fastfeed.polygon"):
                task = asyncio.ensure_future(client.handle_messages(reconnect=True,
                                                                    reconnection_delay=0))
                while n < 100:
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert client.stats["connects"] == 1
            assert any("user bug" in r.getMessage() for r in caplog.records)
        finally:
            await client.close_stream()


async def test_handler_exception_reraised_when_asked() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=2000, events_per_frame=5) as srv:
        def bad(d: dict[str, Any]) -> None:
            raise KeyError("boom")

        async with AsyncStreamClient(KEY, "stocks", host=srv.client_host,
                                     handler_errors="raise") as client:
            await client.subscribe_stock_trades(None, bad)
            with pytest.raises(KeyError):
                for _ in range(100):
                    await client.handle_messages()


async def test_reconnect_resubscribes_once_and_counter_resets() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=2000, events_per_frame=5,
                             close_after_frames=15, close_code=1011) as srv:
        got: list[dict[str, Any]] = []
        client = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        try:
            await client.subscribe_stock_trades(["AAPL", "MSFT"], got.append)
            await client.subscribe_stock_quotes(["AAPL"], got.append)
            task = asyncio.ensure_future(client.handle_messages(
                reconnect=True, max_reconnection_attempts=1, reconnection_delay=0))
            # four drops in a row with a budget of one attempt: the counter must reset
            while client.stats["reconnects"] < 4:
                await asyncio.sleep(0.02)
                assert not task.done(), task.exception()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await client.close_stream()
        for conn in range(2, 5):
            subs = [orjson.loads(m) for m in srv.received_from(conn)]
            subs = [m for m in subs if m["action"] == "subscribe"]
            assert len(subs) == 1, subs  # the current set, once
            assert set(subs[0]["params"].split(",")) == {"T.AAPL", "T.MSFT", "Q.AAPL"}


async def test_running_out_of_attempts_raises_typed_error() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=1000, events_per_frame=5) as srv:
        client = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        try:
            await client.subscribe_stock_trades(None, lambda d: None)
            await client.handle_messages()
            srv.set(reject_first=10**6)  # every later upgrade fails with HTTP 502
            srv.inject("drop")
            with pytest.raises(fastfeed.ReconnectionExhausted):
                await asyncio.wait_for(client.handle_messages(
                    reconnect=True, max_reconnection_attempts=2, reconnection_delay=0.01), 20)
        finally:
            await client.close_stream()


async def test_no_reconnect_mode_raises_connection_closed() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=1000, events_per_frame=5) as srv:
        client = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        try:
            await client.subscribe_stock_trades(None, lambda d: None)
            await client.handle_messages()
            srv.inject("close", code=1011)
            with pytest.raises(fastfeed.ConnectionClosed):
                for _ in range(10000):
                    await asyncio.wait_for(client.handle_messages(), 5)
        finally:
            await client.close_stream()


async def test_auth_failure_raises_and_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY) as srv:
        bad_key = "WRONG-KEY-zzz"
        client = AsyncStreamClient(bad_key, "stocks", host=srv.client_host)
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(fastfeed.AuthenticationError) as ei:
                await client.subscribe_stock_trades(["AAPL"])
        assert bad_key not in str(ei.value)
        assert bad_key not in repr(client)
        assert all(bad_key not in r.getMessage() for r in caplog.records)
        await client.close_stream()
        assert srv.connections == 0 or True


async def test_max_connections_is_typed() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=500, max_connections=1) as srv:
        first = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        second = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        statuses: list[dict[str, Any]] = []
        try:
            await first.subscribe_stock_trades(None, lambda d: None)
            await second.change_handler("status", statuses.append)
            with pytest.raises(fastfeed.MaxConnectionsError):
                await second.subscribe_stock_trades(None, lambda d: None)
                for _ in range(1000):
                    await asyncio.wait_for(second.handle_messages(reconnect=True), 5)
            assert any(s["status"] == "max_connections" for s in statuses)
        finally:
            await first.close_stream()
            await second.close_stream()


async def test_slow_consumer_status_reaches_status_handler() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=500) as srv:
        statuses: list[Any] = []
        client = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        try:
            await client.change_handler("status", statuses.append, deliver="event")
            await client.subscribe_stock_trades(None, lambda d: None)
            srv.inject("slow_consumer")
            task = asyncio.ensure_future(client.handle_messages(reconnect=True,
                                                                reconnection_delay=0))
            while client.slow_consumer_count == 0 or not any(
                    type(s).__name__ == "SlowConsumer" for s in statuses):
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await client.close_stream()


@pytest.mark.parametrize("deliver", ["event", "batch"])
async def test_fast_paths(deliver: str) -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=5000, events_per_frame=20,
                             quirks=False) as srv:
        got: list[Any] = []
        async with AsyncStreamClient(KEY, "stocks", host=srv.client_host) as client:
            await client.subscribe_stock_trades(None, got.append, deliver=deliver)  # type: ignore[arg-type]
            while sum(len(x) if deliver == "batch" else 1 for x in got) < 100:
                await client.handle_messages()
            assert client.stats["events"] >= 100
        if deliver == "batch":
            assert all(isinstance(b, fastfeed.EventBatch) for b in got)
            events = [e for b in got for e in b]
        else:
            events = got
        wire = _wire_events(srv, {"T"})
        assert [e.to_dict() for e in events] == wire[: len(events)]


async def test_batch_handler_reads_the_ring_in_place_and_errors_are_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    """A batch handler that keeps nothing gets the records with no copy (batch.borrowed) and the
    same values; one that raises is logged and the stream goes on."""
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=5000, events_per_frame=20,
                             quirks=False) as srv:
        dicts: list[dict[str, Any]] = []
        borrowed: list[bool] = []
        calls = [0]

        def handler(b: Any) -> None:
            calls[0] += 1
            borrowed.append(b.borrowed)
            dicts.extend(e.to_dict() for e in b)
            if calls[0] == 2:
                raise RuntimeError("handler bug")

        async with AsyncStreamClient(KEY, "stocks", host=srv.client_host) as client:
            await client.subscribe_stock_trades(None, handler, deliver="batch")  # type: ignore[arg-type]
            while len(dicts) < 200 or calls[0] < 3:
                await client.handle_messages()
        assert any(borrowed)
        assert dicts == _wire_events(srv, {"T"})[: len(dicts)]
        assert "handler bug" in caplog.text


async def test_reconnect_method_after_closed_connection() -> None:
    async with PolygonServer(cluster="stocks", api_key=KEY, rate=1000, events_per_frame=5) as srv:
        got: list[dict[str, Any]] = []
        client = AsyncStreamClient(KEY, "stocks", host=srv.client_host)
        try:
            await client.subscribe_stock_trades(["AAPL"], got.append)
            await client.handle_messages()
            srv.inject("close", code=1011)
            with pytest.raises(fastfeed.ConnectionClosed):
                for _ in range(10000):
                    await asyncio.wait_for(client.handle_messages(), 5)
            assert await client.reconnect() == (True, "Reconnect Successful")
            before = len(got)
            while len(got) < before + 10:
                await asyncio.wait_for(client.handle_messages(), 5)
        finally:
            await client.close_stream()
        subs = [orjson.loads(m) for m in srv.received_from(2)]
        assert [m for m in subs if m["action"] == "subscribe"] == [
            {"action": "subscribe", "params": "T.AAPL"}]
