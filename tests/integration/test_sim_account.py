"""Protocol tests of fastfeed.sim.AccountStreamerServer with a tiny raw picows client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import picows
import pytest

from fastfeed.sim import spawn
from fastfeed.sim.account import AccountStreamerServer, order_data

pytestmark = pytest.mark.timeout(30)
TOKEN = "tok"


class Client(picows.WSListener):
    def __init__(self) -> None:
        super().__init__()
        self.msgs: list[Any] = []
        self.closed = asyncio.Event()
        self.transport: Any = None

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if frame.msg_type == picows.WSMsgType.TEXT:
            self.msgs.append(orjson.loads(frame.get_payload_as_bytes()))

    def on_ws_disconnected(self, transport: Any) -> None:
        self.closed.set()

    def send(self, action: str, rid: int, value: Any = None, token: str = TOKEN) -> None:
        m: dict[str, Any] = {"auth-token": f"Bearer {token}", "action": action,
                             "request-id": rid, "source": "test"}
        if value is not None:
            m["value"] = value
        self.transport.send(picows.WSMsgType.TEXT, orjson.dumps(m))


async def _connect(url: str) -> Client:
    _t, c = await picows.ws_connect(Client, url)
    return c  # type: ignore[return-value]


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _acks(c: Client) -> list[dict[str, Any]]:
    return [m for m in c.msgs if "request-id" in m]


async def test_token_on_every_message_and_connect_first() -> None:
    async with AccountStreamerServer(token=TOKEN, script=None) as srv:
        c = await _connect(srv.url)
        c.send("quote-alerts-subscribe", 1)
        c.send("connect", 2, ["A1"], token="wrong")
        c.send("connect", 3, ["A1"])
        c.send("heartbeat", 4, token="expired")
        c.send("heartbeat", 5)
        c.send("quote-alerts-subscribe", 6)
        await _until(lambda: len(_acks(c)) == 6)
        a = {m["request-id"]: m for m in _acks(c)}
        assert a[1]["status"] == "error" and a[1]["message"] == "connect-not-completed"
        assert a[2]["status"] == "error" and a[2]["message"] == "invalid-token"
        assert a[3] == {"status": "ok", "action": "connect", "value": ["A1"], "request-id": 3,
                        "web-socket-session-id": a[3]["web-socket-session-id"]}
        assert a[4]["status"] == "error" and a[5]["status"] == "ok"
        assert a[6]["status"] == "ok"
        assert srv.auth_failures == 2
        c.transport.disconnect()


async def test_default_script_order_lifecycle_and_batches() -> None:
    async with AccountStreamerServer(token=TOKEN, batch_size=3) as srv:
        c = await _connect(srv.url)
        c.send("connect", 1, "A1")  # bare string, like the JS SDK
        await _until(lambda: not srv.pending and len(srv.deliveries) >= 10)
        await _until(lambda: sum(len(m.get("results", [m])) for m in c.msgs
                                 if "request-id" not in m) == len(srv.deliveries))
        notes = [n for m in c.msgs if "request-id" not in m for n in m.get("results", [m])]
        orders = [n["data"]["status"] for n in notes if n["type"] == "Order"]
        assert orders == ["Received", "Live", "Filled"]
        assert any("results" in m for m in c.msgs)
        assert {n["type"] for n in notes} >= {"AccountBalance", "CurrentPosition",
                                              "TradingStatus", "ComplexOrder"}
        c.transport.disconnect()


async def test_drop_after_frames_sends_the_rest_on_the_next_connection() -> None:
    async with AccountStreamerServer(token=TOKEN, script=None, drop_after_frames=4) as srv:
        c1 = await _connect(srv.url)
        c1.send("connect", 1, ["A1"])
        await _until(lambda: srv.connection_list and srv.connection_list[0].connected)
        for i in range(10):
            srv.push("Order", order_data("A1", i))
        await asyncio.wait_for(c1.closed.wait(), 5)
        assert [s for s, _c in srv.deliveries] == [1, 2, 3, 4] and len(srv.pending) == 6
        srv.set(drop_after_frames=None)
        c2 = await _connect(srv.url)
        c2.send("connect", 2, ["A1"])
        await _until(lambda: not srv.pending)
        assert srv.sent_on(2) == [5, 6, 7, 8, 9, 10]
        await _until(lambda: len(c2.msgs) == 7)
        assert [m["data"]["id"] for m in c2.msgs[1:]] == [4, 5, 6, 7, 8, 9]
        assert [m["data"]["id"] for m in c1.msgs[1:]] == [0, 1, 2, 3]
        c2.transport.disconnect()


async def test_heartbeat_timeout_stall_and_reject() -> None:
    async with AccountStreamerServer(token=TOKEN, script=None, heartbeat_timeout=0.2,
                                     reject_first=1) as srv:
        with pytest.raises(Exception):
            await _connect(srv.url)  # HTTP 502
        c = await _connect(srv.url)
        c.send("connect", 1, ["A1"])
        await asyncio.wait_for(c.closed.wait(), 3)  # silent client closed by the server
        c = await _connect(srv.url)
        c.send("connect", 1, ["A1"])
        await _until(lambda: len(c.msgs) == 1)
        srv.inject("stall")
        srv.push("Order", order_data("A1", 1))
        await asyncio.sleep(0.05)
        assert len(srv.pending) == 1 and len(c.msgs) == 1  # a stalled socket sends nothing
        c.transport.disconnect()


def test_cli_spawn() -> None:
    with spawn("account", token="t") as proc:
        assert proc.url.startswith("ws://127.0.0.1:")

        async def go() -> None:
            c = await _connect(proc.url)
            c.send("connect", 1, ["A1"], token="t")
            await _until(lambda: len(c.msgs) >= 2)  # ack + the default script
            assert c.msgs[0]["status"] == "ok"
            c.transport.disconnect()

        asyncio.run(go())
