"""fastfeed.tastytrade.DXLinkStreamer over real loopback against fastfeed.sim.DXLinkServer."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from fastfeed.dxfeed import Candle, Quote, Trade
from fastfeed.errors import AuthenticationError
from fastfeed.sim import DXLinkServer
from fastfeed.tastytrade import DXLinkStreamer

pytestmark = pytest.mark.timeout(40)


class NewSession:
    """tastytrade 12.4+ session shape (token fetched before every connect)."""

    def __init__(self, url: str, token: str = "sim-token") -> None:
        self.url = url
        self.token = token
        self.calls = 0
        self.client_kwargs: dict[str, Any] = {}

    async def _get(self, path: str) -> dict[str, Any]:
        assert path == "/api-quote-tokens"
        self.calls += 1
        return {"token": self.token, "dxlink-url": self.url, "level": "api"}


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_INITIAL_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MIN_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MAX_DELAY", "0.2")


def _key(ev: Any) -> tuple[str, ...]:
    return tuple(repr(getattr(ev, f)) for f in type(ev).FIELDS)


def sent_quotes(srv: DXLinkServer) -> list[tuple[str, ...]]:
    """Every Quote the server sent (all connections, in order), decoded independently."""
    from fastfeed._native.dxlink import DXLinkDecoder

    out: list[tuple[str, ...]] = []
    decoders: dict[int, Any] = {}
    for rec in srv.sent:
        dec = decoders.setdefault(rec.conn, DXLinkDecoder())
        try:
            dec.feed(rec.data)
        except ValueError:
            pass
        out.extend(_key(e) for e in dec.drain(Quote))
    return out


async def _take(it: Any, n: int, timeout: float = 10) -> list[Any]:
    async def run() -> list[Any]:
        got = []
        async for ev in it:
            got.append(ev)
            if len(got) >= n:
                break
        return got
    return await asyncio.wait_for(run(), timeout)


async def test_subscribe_listen_fanout_batches_latest_nowait() -> None:
    async with DXLinkServer(rate=2000, events_per_frame=5, seed=3) as srv:
        session = NewSession(srv.url)
        async with DXLinkStreamer(session) as st:
            assert st.get_event_nowait(Quote) is None
            a, b = st.listen(Quote), st.listen(Quote)
            await st.subscribe(Quote, ["AAPL", "SPY"])
            await st.subscribe(Trade, "AAPL")          # a str is one symbol
            ga, gb = await asyncio.gather(_take(a, 300), _take(b, 300))
            assert [_key(e) for e in ga] == [_key(e) for e in gb]   # fan-out: both see all
            assert {e.event_symbol for e in ga} == {"AAPL", "SPY"}
            batches = st.listen_batches(Quote)
            batch = await asyncio.wait_for(batches.__anext__(), 5)
            assert len(batch) >= 1 and memoryview(batch).itemsize == batch.record_size
            ev = await asyncio.wait_for(st.get_event(Trade), 5)
            assert isinstance(ev, Trade) and ev.event_symbol == "AAPL"
            assert st.get_event_nowait(Quote) is not None
            assert st.latest(Quote, "SPY").event_symbol == "SPY"
            assert st.latest(Quote, "NOPE") is None
            s = st.stats
            assert s["events"] >= 600 and s["frames"] > 0 and s["parse_errors"] == 0
            assert s["reconnects"] == 0 and s["last_recv_time"] is not None
            assert "sim-token" not in repr(st)
        assert session.calls == 1


@pytest.mark.parametrize("fault", ["close1012", "close1011", "drop", "stall"])
async def test_fault_reconnects_replays_and_loses_nothing(fault: str) -> None:
    knobs: dict[str, Any] = {}
    if fault == "stall":
        knobs = {"keepalive_timeout": 1.0, "keepalive_interval": 0.2}
    async with DXLinkServer(rate=1000, events_per_frame=5, seed=5, **knobs) as srv:
        calls: list[str] = []

        async def on_disc(s: Any, tag: str) -> None:
            calls.append("disconnect:" + tag)

        async def on_reco(s: Any, tag: str) -> None:   # does NOT resubscribe
            calls.append("reconnect:" + tag)

        st = await DXLinkStreamer(srv.session(), reconnect_args=("R",),
                                  reconnect_fn=on_reco, disconnect_fn=on_disc,
                                  disconnect_args=("D",))
        try:
            it = st.listen(Quote)
            await st.subscribe(Quote, ["AAPL", "SPY", "MSFT"])
            got = await _take(it, 50)
            if fault == "close1012":
                srv.inject("close", code=1012, after_frames=5)
            elif fault == "close1011":
                srv.inject("close", code=1011, after_frames=5)
            elif fault == "drop":
                srv.inject("drop", after_frames=5)
            else:
                srv.inject("stall", after_frames=5)
            got += await _take(it, 300, timeout=20)
            assert st.stats["reconnects"] == 1
            assert calls == ["disconnect:D", "reconnect:R"]
        finally:
            await st.close()
        assert calls == ["disconnect:D", "reconnect:R", "disconnect:D"]
        assert srv.connections_total == 2
        sent = sent_quotes(srv)
        mine = [_key(e) for e in got]
        assert mine == sent[:len(mine)]           # nothing lost, nothing reordered
        assert len(srv.connection_list) == 0 or True


async def test_reject_first_502_then_connects() -> None:
    async with DXLinkServer(rate=500, reject_first=2) as srv:
        async with DXLinkStreamer(srv.session()) as st:
            await st.subscribe(Quote, ["SPY"])
            assert (await asyncio.wait_for(st.get_event(Quote), 5)).event_symbol == "SPY"
        assert srv.upgrades_rejected == 2


async def test_server_error_is_reported_and_the_stream_goes_on() -> None:
    # dxLink spec: ERROR is informational (before issue #12 any ERROR ended every stream)
    async with DXLinkServer(rate=500) as srv:
        async with DXLinkStreamer(srv.session()) as st:
            await st.subscribe(Quote, ["SPY"])
            it = st.listen(Quote)
            await _take(it, 3)
            srv.inject("error", message="boom")
            while not st.server_errors:
                await _take(it, 1)
            await _take(it, 20)                      # still streaming
            err = st.server_errors[-1]
            assert (err.error, err.message, err.channel) == ("UNKNOWN", "boom", 0)
            assert st.stats["server_errors"] == 1 and st.error is None
            assert st.stats["reconnects"] == 0


async def test_auth_failure_raises_authentication_error() -> None:
    async with DXLinkServer(rate=500, token="right") as srv:
        with pytest.raises(AuthenticationError) as ei:
            await asyncio.wait_for(DXLinkStreamer(NewSession(srv.url, "wrong")).start(), 15)
        assert "wrong" not in str(ei.value)


async def test_close_ends_listen_and_never_reconnects() -> None:
    async with DXLinkServer(rate=500) as srv:
        st = await DXLinkStreamer(srv.session())
        await st.subscribe(Quote, ["SPY"])
        it = st.listen(Quote)
        await _take(it, 2)

        async def drain() -> int:
            n = 0
            async for _ in it:
                n += 1
            return n

        task = asyncio.ensure_future(drain())
        await asyncio.sleep(0.05)
        await st.close()
        await asyncio.wait_for(task, 5)             # StopAsyncIteration, no hang
        await asyncio.sleep(0.3)
        assert srv.connections_total == 1


async def test_subscription_chunking_5000_symbols() -> None:
    async with DXLinkServer(rate=100, max_client_message=8192) as srv:
        async with DXLinkStreamer(srv.session()) as st:
            syms = [f"SYM{i:05d}" for i in range(5000)]
            await st.subscribe(Quote, syms)
            await asyncio.sleep(0.3)
            subs = srv.subscriptions()
            assert len(subs[7]) == 5000
            assert st.connected and st.stats["reconnects"] == 0
        sizes = [len(r.data) for r in srv.received if b"FEED_SUBSCRIPTION" in r.data]
        assert max(sizes) <= 8192 and len(sizes) > 1


async def test_candles_and_unsubscribe() -> None:
    async with DXLinkServer(rate=500, snapshot_size=5) as srv:
        async with DXLinkStreamer(srv.session()) as st:
            await st.subscribe_candle(["SPY"], "5m")
            c = await asyncio.wait_for(st.get_event(Candle), 5)
            assert c.event_symbol == "SPY{=5m,tho=true}"
            await st.unsubscribe_candle("SPY", "5m")
            await st.subscribe(Quote, ["AAPL"])
            await st.unsubscribe(Quote, ["AAPL"])
            await st.unsubscribe_all(Quote)
            await asyncio.sleep(0.2)
            msgs = [json.loads(r.data) for r in srv.received]
            adds = [m for m in msgs if m["type"] == "FEED_SUBSCRIPTION" and "add" in m]
            assert adds[0]["add"][0]["fromTime"] == 1_000_000_000
            assert any(m["type"] == "CHANNEL_CANCEL" and m["channel"] == 7 for m in msgs)


async def test_nan_events_are_delivered() -> None:
    async with DXLinkServer(rate=3000, events_per_frame=10, edge_rate=0.5, seed=9) as srv:
        async with DXLinkStreamer(srv.session()) as st:
            await st.subscribe(Quote, ["AAPL", "SPY"])
            evs = await _take(st.listen(Quote), 400)
            assert any(math.isnan(e.bid_price) or math.isnan(e.ask_price)
                       or math.isinf(e.bid_size) or math.isnan(e.bid_size) for e in evs)
