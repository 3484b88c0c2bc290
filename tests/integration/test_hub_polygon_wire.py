"""The hub's polygon feed against an independent plain-``websockets`` server written here (not
fastfeed.sim): a large backlog with spilled values split into messages that each carry only
the spill they need and fit the NATS server's max_payload; statuses delivered to consumers as
the direct client delivers them. Real hub process, real nats-server, always stopped."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from test_hub import TIMEOUT, NatsServer
from test_hub_feeds import FeedRig

import fastfeed.hub
from fastfeed._native.pgdict import to_dicts
from fastfeed._native.polygon import PolygonDecoder

pytestmark = pytest.mark.timeout(90)

KEY = "pk-secret-wire-key-9876"
#: the test server's max_payload: far below a backlog's records + spill
MAX_PAYLOAD = 32 * 1024


def _status(status: str, message: str) -> bytes:
    return orjson.dumps([{"ev": "status", "status": status, "message": message}])


def _trades(n: int) -> bytes:
    """One frame of ``n`` AAPL trades, each with a key no record has a slot for (spilled)."""
    return orjson.dumps([
        {"ev": "T", "sym": "AAPL", "i": str(k), "x": 4, "p": 100.0 + k / 100, "s": k + 1,
         "c": [12, 37], "t": 1_700_000_000_000 + k, "q": k + 1, "z": 3,
         "zz_note": f"{k}:" + "x" * 300}
        for k in range(n)])


class PolygonUp:
    """A polygon stocks server: after each subscription, ``script(self, ws)`` sends what the
    test wants (``send``); ``frames`` is every frame sent so."""

    def __init__(self, script: Callable[[PolygonUp, Any], Awaitable[None]]) -> None:
        self.script = script
        self.subscribed = asyncio.Event()
        self.frames: list[bytes] = []
        self.server: Any = None

    async def _handler(self, ws: Any) -> None:
        await ws.send(_status("connected", "Connected Successfully"))
        if orjson.loads(await ws.recv()) != {"action": "auth", "params": KEY}:
            await ws.send(_status("auth_failed", "authentication failed"))
            return
        await ws.send(_status("auth_success", "authenticated"))
        async for raw in ws:
            msg = orjson.loads(raw)
            if msg.get("action") == "subscribe":
                await ws.send(_status("success", f"subscribed to: {msg['params']}"))
                self.subscribed.set()
                await self.script(self, ws)

    async def send(self, ws: Any, frame: bytes) -> None:
        self.frames.append(frame)
        await ws.send(frame.decode())

    async def __aenter__(self) -> PolygonUp:
        self.server = await websockets.serve(self._handler, "127.0.0.1", 0, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def host(self) -> str:
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


def _direct(frames: list[bytes]) -> list[dict[str, Any]]:
    """The trade dicts a direct client decodes from ``frames``."""
    dec = PolygonDecoder("stocks")
    out: list[dict[str, Any]] = []
    for f in frames:
        dec.feed(f)
        b = dec.drain("T")
        if b:
            out += to_dicts(b)
    return out


@pytest.fixture
async def small_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A nats-server whose max_payload is MAX_PAYLOAD."""
    conf = tmp_path / "nats.conf"
    conf.write_text(f"max_payload: {MAX_PAYLOAD}\n")
    srv = NatsServer(tmp_path)
    srv.js_args = ["-c", str(conf)]
    try:
        yield await srv.start()
    finally:
        await srv.stop(signal.SIGKILL)


async def _collect(client: Any, got: list[Any], n: int) -> None:
    while len(got) < n:
        await asyncio.wait_for(client.handle_messages(), TIMEOUT)


async def test_spilled_backlog_split_by_max_payload_each_part_with_its_own_spill(
        frig: FeedRig, small_nats: str) -> None:
    n = 600   # 600 records of 200 bytes, each with ~310 spilled bytes: one drained batch
    both = asyncio.Event()   # both consumers subscribed (the hub subscribes upstream once)

    async def script(up: PolygonUp, ws: Any) -> None:
        await asyncio.wait_for(both.wait(), TIMEOUT)
        await up.send(ws, _trades(n))

    async with PolygonUp(script) as up:
        await frig.hub("stocks", {"FASTFEED_POLYGON_KEY": KEY, "FASTFEED_POLYGON_HOST": up.host},
                      small_nats)
        import nats

        sizes: list[int] = []
        sniffer = await nats.connect(small_nats)
        try:
            assert sniffer.max_payload == MAX_PAYLOAD

            async def cb(msg: Any) -> None:
                sizes.append(len(msg.data))

            await sniffer.subscribe(f"ff.{frig.name}.stocks.T", cb=cb)
            await sniffer.flush()
            over_nats: list[dict[str, Any]] = []
            over_shm: list[dict[str, Any]] = []
            async with fastfeed.hub.connect(f"{small_nats}/{frig.name}", "stocks") as a, \
                    fastfeed.hub.connect(f"ipc://{frig.name}", "stocks") as b:
                await b.subscribe_stock_trades(["AAPL"], over_shm.append)
                await a.subscribe_stock_trades(["AAPL"], over_nats.append)
                both.set()
                await asyncio.gather(_collect(a, over_nats, n), _collect(b, over_shm, n))
                stats = a.stats
            expected = _direct(up.frames)
            assert len(expected) == n
            assert over_nats == expected   # every spilled value whole, over NATS ...
            assert over_shm == expected    # ... and shared memory
            assert stats["gaps"] == 0 and stats["lost_messages"] == 0
            # several messages, each within the server's limit, carrying only its own spill:
            # together no more than the records plus the spill once (+ envelopes)
            assert len(sizes) > 1 and max(sizes) <= MAX_PAYLOAD
            spill_total = sum(len(d["zz_note"]) for d in expected)
            assert sum(sizes) < n * 200 + 1.2 * spill_total + 64 * len(sizes) + 8 * n
        finally:
            await sniffer.close()
        await frig.stop()


def _five_trades_notice_five_trades(trades: list[Any]) -> Callable[[PolygonUp, Any],
                                                                    Awaitable[None]]:
    """An upstream script: 5 trades, a status notice, 5 more trades."""
    async def script(up: PolygonUp, ws: Any) -> None:
        await up.send(ws, orjson.dumps(trades[:5]))
        await up.send(ws, _status("notice", "maintenance at 17:00"))
        await up.send(ws, orjson.dumps(trades[5:]))
    return script


async def test_statuses_reach_consumers_as_the_direct_client_gets_them(frig: FeedRig) -> None:
    from fastfeed.polygon import AsyncStreamClient

    trades = orjson.loads(_trades(10))
    script = _five_trades_notice_five_trades(trades)

    async def run(client: Any, n: int) -> list[Any]:
        seen: list[Any] = []
        await client.change_handler("status", seen.append)
        await client.subscribe_stock_trades(["AAPL"], seen.append)
        while sum(1 for x in seen if x["ev"] == "T") < n:
            await asyncio.wait_for(client.handle_messages(), TIMEOUT)
        return seen

    async with PolygonUp(script) as up:
        await frig.hub("stocks", {"FASTFEED_POLYGON_KEY": KEY, "FASTFEED_POLYGON_HOST": up.host})
        async with AsyncStreamClient(KEY, "stocks", host=up.host) as direct:
            await direct.login()
            want = await run(direct, 10)
        async with AsyncStreamClient("unused", "stocks", hub=f"ipc://{frig.name}") as client:
            got = await run(client, 10)
        await frig.stop()
    # the direct client: the handshake, the acknowledgement, 5 trades, the notice, 5 trades
    assert [x["status"] for x in want if x["ev"] == "status"] == [
        "connected", "auth_success", "success", "notice"]
    # through the hub: the same dicts and order after the handshake (the hub's, not replayed)
    assert got == want[2:]
    assert not any(KEY in str(x) for x in got)


async def test_massive_raw_frames_through_the_hub_are_the_frames_received(frig: FeedRig) -> None:
    from fastfeed.massive import WebSocketClient

    trades = orjson.loads(_trades(10))
    script = _five_trades_notice_five_trades(trades)

    async def run(client: Any) -> list[str]:
        got: list[str] = []
        done = asyncio.Event()

        async def handle(frame: str) -> None:
            got.append(frame)
            if sum(1 for f in got if '"ev":"T"' in f) == 2:
                done.set()

        client.subscribe("T.AAPL")
        task = asyncio.create_task(client.connect(handle))
        try:
            await asyncio.wait_for(done.wait(), TIMEOUT)
        finally:
            await client.close()
            await asyncio.wait_for(task, TIMEOUT)
        return got

    async with PolygonUp(script) as up:
        await frig.hub("stocks", {"FASTFEED_POLYGON_KEY": KEY, "FASTFEED_POLYGON_HOST": up.host})
        want = await run(WebSocketClient(api_key=KEY, feed=up.host.removeprefix("ws://"),
                                         secure=False, raw=True))
        got = await run(WebSocketClient(api_key="unused", raw=True, hub=f"ipc://{frig.name}"))
        await frig.stop()
    # a direct client: the acknowledgement, 5 trades, the notice, 5 trades, as frames
    assert len(want) == 4 and want[1:] == [f.decode() for f in up.frames[:3]]
    assert got == want   # through the hub: the very frames the hub received
