"""Protocol tests of fastfeed.sim.PolygonServer over real loopback websockets.

A tiny picows client drives the server; massive 2.9.1's WebSocketClient proves it is faithful
enough for the peer SDK.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import orjson
import picows
import pytest

from fastfeed.sim import PolygonServer
from fastfeed.sim.generators import POLYGON_CHANNELS

pytestmark = pytest.mark.timeout(30)


class Client(picows.WSListener):
    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []
        self.frames: list[Any] = []
        self.bad: list[bytes] = []
        self.close_code: int | None = None
        self.pongs = 0
        self.disconnected = asyncio.Event()
        self.transport: picows.WSTransport | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type == picows.WSMsgType.PONG:
            self.pongs += 1
            return
        data = frame.get_payload_as_bytes()
        self.raw.append(data)
        try:
            self.frames.append(orjson.loads(data))
        except orjson.JSONDecodeError:
            self.bad.append(data)

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.disconnected.set()

    def send(self, obj: Any) -> None:
        assert self.transport is not None
        self.transport.send(picows.WSMsgType.TEXT, json.dumps(obj).encode())

    def statuses(self) -> list[dict[str, Any]]:
        return [e for f in self.frames for e in f if e.get("ev") == "status"]

    def events(self) -> list[dict[str, Any]]:
        return [e for f in self.frames for e in f if e.get("ev") != "status"]

    async def wait(self, pred: Callable[[], Any], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last frames: {self.frames[-3:]}")
            await asyncio.sleep(0.005)

    def close(self) -> None:
        if self.transport is not None and not self.disconnected.is_set():
            self.transport.send_close(picows.WSCloseCode.OK)
            self.transport.disconnect()


async def connect(url: str) -> Client:
    _, client = await picows.ws_connect(Client, url)
    return client  # type: ignore[return-value]


async def authed(srv: PolygonServer, cluster: str | None = None, key: str = "key") -> Client:
    c = await connect(srv.url_for(cluster or srv.cluster))
    c.send({"action": "auth", "params": key})
    await c.wait(lambda: any(s["status"] == "auth_success" for s in c.statuses()))
    return c


# ---------------------------------------------------------------------------------- statuses

async def test_sequence_and_exact_wording() -> None:
    async with PolygonServer(api_key="key") as srv:
        c = await connect(srv.url)
        await c.wait(lambda: c.frames)
        assert c.frames[0] == [{"ev": "status", "status": "connected",
                                "message": "Connected Successfully"}]
        c.send({"action": "auth", "params": "key"})
        c.send({"action": "subscribe", "params": "T.AAPL, Q.AAPL ,AM.*"})
        await c.wait(lambda: len(c.frames) >= 5)
        assert c.frames[1] == [{"ev": "status", "status": "auth_success",
                                "message": "authenticated"}]
        assert c.frames[2:5] == [
            [{"ev": "status", "status": "success", "message": "subscribed to: T.AAPL"}],
            [{"ev": "status", "status": "success", "message": "subscribed to: Q.AAPL"}],
            [{"ev": "status", "status": "success", "message": "subscribed to: AM.*"}]]
        c.send({"action": "unsubscribe", "params": "Q.AAPL"})
        await c.wait(lambda: any(s["message"] == "unsubscribed to: Q.AAPL"
                                 for s in c.statuses()))
        assert srv.subscriptions() == {"T.AAPL", "AM.*"}
        c.close()


async def test_auth_failed_closes_1008() -> None:
    async with PolygonServer(api_key="key") as srv:
        c = await connect(srv.url)
        c.send({"action": "auth", "params": "nope"})
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.statuses()[-1] == {"ev": "status", "status": "auth_failed",
                                    "message": "authentication failed"}
        assert c.close_code == 1008


async def test_auth_timeout() -> None:
    async with PolygonServer(auth_timeout=0.2) as srv:
        c = await connect(srv.url)
        t0 = time.monotonic()
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert time.monotonic() - t0 >= 0.15
        assert c.statuses()[-1]["status"] == "auth_timeout"
        assert c.statuses()[-1]["message"] == "No authentication request received."


async def test_unknown_prefix_and_subscribe_before_auth() -> None:
    async with PolygonServer() as srv:
        c = await connect(srv.url)
        c.send({"action": "subscribe", "params": "T.AAPL"})
        await c.wait(lambda: len(c.frames) >= 2)
        assert c.statuses()[1]["status"] == "auth_required"
        c.send({"action": "auth", "params": "k"})
        c.send({"action": "subscribe", "params": "XT.BTC-USD,T.AAPL"})
        await c.wait(lambda: len(c.statuses()) >= 5)
        st = c.statuses()
        assert st[3]["status"] == "error" and "XT.BTC-USD" in st[3]["message"]
        assert st[4] == {"ev": "status", "status": "success", "message": "subscribed to: T.AAPL"}
        c.close()


async def test_unknown_path_404() -> None:
    async with PolygonServer() as srv:
        with pytest.raises(picows.WSHandshakeError) as ei:
            await picows.ws_connect(Client, f"ws://{srv.host_port}/bonds")
        assert ei.value.response is not None and ei.value.response.status == 404


# ---------------------------------------------------------------------------------- data

EXPECTED_KEYS: dict[tuple[str, str], set[str]] = {
    ("stocks", "T"): {"sym", "x", "i", "z", "p", "s", "t", "q"},
    ("stocks", "Q"): {"sym", "bx", "ax", "bp", "ap", "bs", "as", "t", "q", "z"},
    ("stocks", "AM"): {"sym", "v", "av", "op", "vw", "o", "c", "h", "l", "a", "z", "s", "e"},
    ("stocks", "LULD"): {"T", "h", "l", "i", "z", "t", "q"},
    ("stocks", "NOI"): {"T", "t", "at", "a", "i", "x", "o", "p", "b"},
    ("stocks", "FMV"): {"fmv", "sym", "t"},
    ("options", "Q"): {"sym", "bx", "ax", "bp", "ap", "bs", "as", "t", "q"},
    ("forex", "C"): {"p", "x", "a", "b", "t"},
    ("forex", "CA"): {"pair", "o", "c", "h", "l", "v", "s"},
    ("crypto", "XT"): {"pair", "p", "t", "s", "i", "x", "r"},
    ("crypto", "XQ"): {"pair", "bp", "bs", "ap", "as", "t", "x", "r"},
    ("crypto", "XL2"): {"pair", "b", "a", "t", "x", "r"},
    ("indices", "V"): {"val", "T", "t"},
    ("indices", "A"): {"sym", "op", "o", "c", "h", "l", "s", "e"},
}


@pytest.mark.parametrize("cluster", ["stocks", "options", "forex", "crypto", "indices",
                                     "futures/cme"])
async def test_every_event_of_every_cluster(cluster: str) -> None:
    async with PolygonServer(cluster=cluster, rate=5000, events_per_frame=25) as srv:
        c = await authed(srv)
        prefixes = POLYGON_CHANNELS[cluster]
        c.send({"action": "subscribe", "params": ",".join(f"{p}.*" for p in prefixes)})
        await c.wait(lambda: {e["ev"] for e in c.events()} >= set(prefixes), 10)
        c.close()
        evs = c.events()
        for e in evs:
            want = EXPECTED_KEYS.get((cluster, e["ev"]))
            if want:
                assert want <= set(e), (e["ev"], set(e))
        assert any(len({e["ev"] for e in f}) > 1 for f in c.frames), "no mixed frame"
        # what the client parsed is exactly orjson.loads of the bytes the server recorded
        sent = [orjson.loads(r.data) for r in srv.sent]
        assert c.frames == sent[: len(c.frames)]


async def test_quirks_and_subscription_filter() -> None:
    async with PolygonServer(rate=None, events_per_frame=200, pool_frames=40,
                             close_after_frames=200, close_code=1000) as srv:
        c = await authed(srv)
        c.send({"action": "subscribe", "params": "T.AAPL,Q.AAPL,AM.MSFT,A.MSFT"})
        await asyncio.wait_for(c.disconnected.wait(), 10)
        evs = c.events()
        assert {(e["ev"], e["sym"]) for e in evs} == {("T", "AAPL"), ("Q", "AAPL"),
                                                       ("AM", "MSFT"), ("A", "MSFT")}
        text = b"".join(c.raw)
        assert b'"zz_future"' in text  # unknown extra key
        assert any(isinstance(e.get("p"), int) for e in evs if e["ev"] == "T")  # "p":131
        assert any("c" not in e for e in evs if e["ev"] == "T")  # omitted optional key
        assert any("ds" in e for e in evs if e["ev"] == "T")
        assert any("dv" in e for e in evs if e["ev"] in ("A", "AM"))
        orders = {tuple(e) for e in evs if e["ev"] == "Q"}
        assert len(orders) > 3  # shuffled key order
        assert b"\\/" in text or b"\\\"" in text or b"\\\\" in text  # escapes


async def test_forex_string_x_and_xl2_depth() -> None:
    async with PolygonServer(cluster="crypto", rate=None, events_per_frame=50,
                             pool_frames=20, close_after_frames=40, close_code=1000) as srv:
        c = await authed(srv)
        c.send({"action": "subscribe", "params": "XL2.*"})
        await asyncio.wait_for(c.disconnected.wait(), 10)
        depths = [len(e["b"]) for e in c.events()] + [len(e["a"]) for e in c.events()]
        assert max(depths) > 20 and max(depths) <= 100 and min(depths) >= 1
    async with PolygonServer(cluster="forex", rate=None, events_per_frame=100,
                             pool_frames=20, close_after_frames=20, close_code=1000) as srv:
        c = await authed(srv)
        c.send({"action": "subscribe", "params": "C.*"})
        await asyncio.wait_for(c.disconnected.wait(), 10)
        xs = [e["x"] for e in c.events()]
        assert any(isinstance(x, str) for x in xs) and any(isinstance(x, int) for x in xs)


async def test_stamp_send_time() -> None:
    async with PolygonServer(rate=1000, stamp_send_time=True) as srv:
        c = await authed(srv)
        c.send({"action": "subscribe", "params": "Q.AAPL"})
        await c.wait(lambda: len(c.events()) >= 10)
        now = time.monotonic_ns()
        assert all(0 < now - e["t"] < 5e9 for e in c.events())
        c.close()


# ---------------------------------------------------------------------------------- limits

async def test_max_connections_second_connection() -> None:
    async with PolygonServer(max_connections=1, rate=100) as srv:
        first = await authed(srv)
        first.send({"action": "subscribe", "params": "T.AAPL"})
        second = await authed(srv)
        second.send({"action": "subscribe", "params": "T.AAPL"})
        await asyncio.wait_for(second.disconnected.wait(), 5)
        st = [s["status"] for s in second.statuses()]
        assert st == ["connected", "auth_success", "success", "max_connections"]
        assert second.close_code == 1008
        assert not first.disconnected.is_set()
        first.close()


async def test_slow_consumer() -> None:
    async with PolygonServer(rate=None, events_per_frame=100, record=False,
                             high_water=256 * 1024, slow_consumer_bytes=1,
                             slow_consumer_timeout=0.2) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", srv.port))
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        await loop.sock_sendall(sock, (
            f"GET /stocks HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())

        def masked(obj: Any) -> bytes:
            p = json.dumps(obj).encode()
            return bytes([0x81, 0x80 | len(p)]) + b"\0\0\0\0" + p  # zero mask

        await loop.sock_sendall(sock, masked({"action": "auth", "params": "k"}))
        await loop.sock_sendall(sock, masked({"action": "subscribe", "params": "T.*,Q.*"}))
        await asyncio.sleep(1.0)  # do not read: the server's buffer fills up
        data = bytearray()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 3)
            except (TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            data += chunk
        sock.close()
        assert b'"status":"slow_consumer"' in data
        assert b"\x03\xf0slow_consumer" in data  # close frame: code 1008 + reason


async def test_force_disconnect_and_ping() -> None:
    async with PolygonServer(rate=100) as srv:
        c = await authed(srv)
        assert c.transport is not None
        c.transport.send_ping(b"hi")
        await c.wait(lambda: c.pongs == 1)
        srv.inject("force_disconnect", code=1011)
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.statuses()[-1]["status"] == "force_disconnect" and c.close_code == 1011


async def test_common_faults() -> None:
    async with PolygonServer(rate=3000, reject_first=1, close_after_frames=12, close_code=1012,
                             malformed_every=4) as srv:
        with pytest.raises(picows.WSHandshakeError) as ei:
            await picows.ws_connect(Client, srv.url)
        assert ei.value.response is not None and ei.value.response.status == 502
        c = await authed(srv)
        c.send({"action": "subscribe", "params": "T.AAPL"})
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.close_code == 1012 and len(c.bad) == 3
    async with PolygonServer(rate=3000, drop_after_frames=5) as srv:
        c = await authed(srv)
        c.send({"action": "subscribe", "params": "T.AAPL"})
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.close_code is None and len(c.events()) == 5
    async with PolygonServer(rate=3000, stall_after_frames=5) as srv:
        c = await authed(srv)
        c.send({"action": "subscribe", "params": "T.AAPL"})
        await c.wait(lambda: len(c.events()) == 5)
        await asyncio.sleep(0.3)
        assert len(c.events()) == 5 and not c.disconnected.is_set()
        c.close()


# ---------------------------------------------------------------------------------- peer SDK

@pytest.mark.peer
@pytest.mark.timeout(40)
async def test_real_massive_client_receives_models() -> None:
    pytest.importorskip("massive")
    from massive import WebSocketClient
    from massive.websocket.models import (
        EquityAgg,
        EquityQuote,
        EquityTrade,
        FairMarketValue,
        Imbalance,
        LimitUpLimitDown,
    )

    async with PolygonServer(api_key="secret", rate=3000, events_per_frame=20) as srv:
        client = WebSocketClient(api_key="secret", feed=srv.host_port, market="stocks",
                                 secure=False, subscriptions=["T.*", "Q.*", "A.*", "AM.*",
                                                              "LULD.*", "NOI.*", "FMV.*"])
        got: list[Any] = []
        want = {EquityAgg, EquityQuote, EquityTrade, FairMarketValue, Imbalance,
                LimitUpLimitDown}
        done = asyncio.Event()

        async def handle(msgs: list[Any]) -> None:
            got.extend(msgs)
            if {type(m) for m in got} >= want:
                done.set()

        task = asyncio.create_task(client.connect(handle))
        try:
            await asyncio.wait_for(done.wait(), 20)
        finally:
            await client.close()
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the cancelled task's end is not checked here
                pass
        trades = [m for m in got if isinstance(m, EquityTrade)]
        assert trades and all(t.symbol and t.price is not None for t in trades)
        quotes = [m for m in got if isinstance(m, EquityQuote)]
        assert all(q.bid_price is not None for q in quotes)
        # everything massive parsed came from recorded frames
        sent = [e for r in srv.sent for e in orjson.loads(r.data) if e.get("ev") != "status"]
        assert len(got) <= len(sent)
