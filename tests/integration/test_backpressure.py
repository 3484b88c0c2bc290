"""overflow="backpressure": a slow consumer loses nothing; the socket is paused instead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fastfeed.dxfeed import Quote
from fastfeed.sim import DXLinkServer, PolygonServer


@pytest.mark.timeout(60)
async def test_dxlink_backpressure_slow_consumer_loses_nothing() -> None:
    from fastfeed.tastytrade import DXLinkStreamer

    async with DXLinkServer(rate=None, events_per_frame=100, record=False, seed=5) as srv:
        # ~64 KB ring: the flat-out server overruns it many times over while we dawdle
        st = DXLinkStreamer(srv.session(), overflow="backpressure", ring_bytes=64 * 1024)
        async with st:
            # The transport pauses reading at the end of a socket read, just before it wakes
            # the streamer; a wake-up seen with ``paused`` set proves reading was paused. (A
            # drain resumes it, so the flag read after a batch arrives says nothing.)
            listener = st._listener
            assert listener is not None
            paused = asyncio.Event()
            streamer_wake = listener.on_wake

            def on_wake() -> None:
                if listener.paused:
                    paused.set()
                streamer_wake()

            listener.on_wake = on_wake
            it = st.listen_batches(Quote)        # cursor first: it must see every Quote decoded
            await st.subscribe(Quote, ["SPY", "AAPL", "QQQ"])   # also makes the get_event cursor
            got = 0
            conn = srv.connection_list[0]
            # until the server has stopped sending and every Quote it sent has been consumed
            while not (conn.stalled and got == conn.events_sent):
                batch = await asyncio.wait_for(it.__anext__(), 10.0)
                got += len(batch)
                await asyncio.sleep(0.002)      # a slow consumer
                if got >= 60_000 and not conn.stalled:
                    srv.inject("stall")
            stats = st.stats
            assert stats["gaps"] == 0
            assert st._core.rings["Quote"].overflowed == 0
            assert got == stats["events"] >= 60_000   # every decoded event reached the consumer
            assert paused.is_set()                    # reading was paused, not events dropped
            await it.aclose()


@pytest.mark.timeout(60)
async def test_polygon_backpressure_dict_handler_sees_every_decoded_event() -> None:
    from fastfeed.polygon import AsyncStreamClient

    async with PolygonServer(rate=None, events_per_frame=100, record=False, seed=5,
                             quirks=False) as srv:
        client = AsyncStreamClient("key", "stocks", host=srv.client_host,
                                   overflow="backpressure")
        seen = [0]

        def handler(msg: dict[str, Any]) -> None:
            seen[0] += 1

        await client.change_handler("Q", handler)
        await client.subscribe_stock_trades(None, handler)
        await client.subscribe_stock_quotes(None, handler)
        while seen[0] < 50_000:
            await asyncio.wait_for(client.handle_messages(), 10)
        srv.inject("stall")
        conn = srv.connection_list[0]
        while seen[0] < conn.events_sent:     # every T/Q the server sent reaches the handler
            await asyncio.wait_for(client.handle_messages(), 10)
        assert seen[0] == conn.events_sent
        stats = client.stats
        assert stats["gaps"] == 0
        assert stats["events"] == seen[0]      # every decoded T/Q event reached the handler
        await client.close_stream()
