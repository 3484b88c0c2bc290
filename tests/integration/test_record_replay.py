"""Record a simulator session (with a reconnect in the middle) and replay it: the events equal
what was delivered live, field for field (raw and columns)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

import fastfeed.replay
from fastfeed.dxfeed import Quote, Trade
from fastfeed.sim import DXLinkServer, PolygonServer
from fastfeed.tastytrade import DXLinkStreamer

pytestmark = pytest.mark.timeout(60)


class Session:
    def __init__(self, url: str) -> None:
        self.dxlink_url = url
        self.streamer_token = "sim-token"
        self.proxy = None


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_INITIAL_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MIN_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MAX_DELAY", "0.2")


def key(ev: Any) -> tuple[Any, ...]:
    """Every field of an event, compared by repr (NaN == NaN), plus symbol and receive time."""
    return (ev.event_symbol, ev.ts_recv) + tuple(repr(getattr(ev, f)) for f in type(ev).FIELDS)


async def _collect(it: Any, n: int) -> list[Any]:
    out = []
    async for ev in it:
        out.append(ev)
        if len(out) >= n:
            break
    return out


async def record_dxlink(path: str, n: int = 400) -> tuple[list[Any], list[Any], DXLinkStreamer]:
    async with DXLinkServer(token="sim-token", rate=4000, events_per_frame=10,
                            close_after_frames=15) as srv:
        streamer = DXLinkStreamer(Session(srv.url))
        rec = streamer.record(path, raw=True, columns=True, batch_rows=64)
        quotes = streamer.listen(Quote)
        trades = streamer.listen(Trade)
        async with streamer:
            await streamer.subscribe(Quote, ["SPY", "AAPL"])
            await streamer.subscribe(Trade, ["SPY"])
            q_task = asyncio.ensure_future(_collect(quotes, n))
            t_task = asyncio.ensure_future(_collect(trades, 20))
            live_q, live_t = await asyncio.wait_for(asyncio.gather(q_task, t_task), 30)
            assert streamer.n_reconnects >= 1
        assert rec.stats["dropped_messages"] == 0 and rec.stats["dropped_records"] == 0
    return live_q, live_t, streamer


async def replay_all(path: str, cls: Any, **kw: Any) -> list[Any]:
    s = fastfeed.replay.open(path, **kw)
    out = []
    async with s:
        async for ev in s.listen(cls):
            out.append(ev)
    return out


@pytest.mark.parametrize("source", ["raw", "columns"])
async def test_dxlink_record_replay(tmp_path: Any, source: str) -> None:
    path = str(tmp_path / "rec")
    live_q, live_t, _ = await record_dxlink(path)
    got_q = await replay_all(path, Quote, source=source)
    assert len(got_q) >= len(live_q)
    assert [key(e) for e in got_q[: len(live_q)]] == [key(e) for e in live_q]
    got_t = await replay_all(path, Trade, source=source)
    assert [key(e) for e in got_t[: len(live_t)]] == [key(e) for e in live_t]
    # symbol filter
    spy = await replay_all(path, Quote, source=source, symbols=["SPY"])
    assert spy and all(e.event_symbol == "SPY" for e in spy)
    assert [key(e) for e in spy] == [key(e) for e in got_q if e.event_symbol == "SPY"]
    # time filter
    mid = got_q[len(got_q) // 2].ts_recv
    late = await replay_all(path, Quote, source=source, start=mid)
    assert [key(e) for e in late] == [key(e) for e in got_q if e.ts_recv >= mid]
