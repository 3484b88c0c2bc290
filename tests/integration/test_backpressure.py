"""overflow="backpressure": a slow consumer loses nothing; the socket is paused instead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fastfeed.dxfeed import Quote
from fastfeed.sim import DXLinkServer, PolygonServer


class Session:
    def __init__(self, url: str) -> None:
        self.dxlink_url = url
        self.streamer_token = "sim-token"
        self.proxy = None


@pytest.mark.timeout(60)
async def test_dxlink_backpressure_slow_consumer_loses_nothing() -> None:
    from fastfeed.tastytrade import DXLinkStreamer

    async with DXLinkServer(rate=None, events_per_frame=100, record=False, seed=5) as srv:
        # ~64 KB ring: the flat-out server overruns it many times over while we dawdle
        st = DXLinkStreamer(Session(srv.url), overflow="backpressure", ring_bytes=64 * 1024)
        async with st:
            it = st.listen_batches(Quote)        # cursor first: it must see every Quote decoded
            await st.subscribe(Quote, ["SPY", "AAPL", "QQQ"])   # also makes the get_event cursor
            got = 0
            paused_seen = False
            while True:
                try:
                    batch = await asyncio.wait_for(it.__anext__(), 1.0)
                except asyncio.TimeoutError:
                    break                       # the stalled server has nothing more
                got += len(batch)
                paused_seen = paused_seen or bool(st._listener and st._listener.paused)
                await asyncio.sleep(0.002)      # a slow consumer
                if got >= 60_000 and not srv.connection_list[0].stalled:
                    srv.inject("stall")
            stats = st.stats
            assert stats["gaps"] == 0
            assert st._core.rings["Quote"].overflowed == 0
            assert got == stats["events"] >= 60_000   # every decoded event reached the consumer
            assert paused_seen                        # reading was paused, not events dropped
            await it.aclose()


@pytest.mark.timeout(60)
async def test_polygon_backpressure_dict_handler_sees_every_decoded_event() -> None:
    from fastfeed.polygon import AsyncStreamClient

    async with PolygonServer(rate=None, events_per_frame=100, record=False, seed=5,
                             quirks=False) as srv:
        host = "ws://" + srv.url.split("/")[2]
        client = AsyncStreamClient("key", "stocks", host=host, overflow="backpressure")
        seen = [0]

        def handler(msg: dict[str, Any]) -> None:
            seen[0] += 1

        await client.change_handler("Q", handler)
        await client.subscribe_stock_trades(None, handler)
        await client.subscribe_stock_quotes(None, handler)
        while seen[0] < 50_000:
            await client.handle_messages()
            await asyncio.sleep(0)
        srv.inject("stall")
        await asyncio.sleep(0.3)
        for _ in range(200):
            if client.stats["events"] == seen[0]:
                break
            await asyncio.wait_for(client.handle_messages(), 2)
        stats = client.stats
        assert stats["gaps"] == 0
        assert stats["events"] == seen[0]      # every decoded T/Q event reached the handler
        await client.close_stream()
