"""fastfeed.compat (AsyncWebsocketStreamInterface and connect()) against independent servers.

Plain ``websockets`` servers close cleanly (1000/1001), drop the TCP connection, send
oversize, fragmented, binary and polygon-style list messages. Bounded in time, synchronised on
what was received, no task left after ``exit()``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from _servers_account import Conn, LoopErrors, Server, no_task_left, take

from fastfeed.compat import AsyncWebsocketStreamInterface, FeedConnection, connect
from fastfeed.errors import ConnectionClosedError, ConnectionClosedOK, StreamerClosedError

pytestmark = pytest.mark.timeout(30)


class Stream(AsyncWebsocketStreamInterface):
    reconnect_delay = 0.01

    def __init__(self, url: str, use_websockets: bool = False, split: bool = False) -> None:
        self.url = url
        self.use_websockets = use_websockets
        self.split_lists = split
        self.rotate = asyncio.Event()
        super().__init__()

    async def _create_ws(self) -> Any:
        ws: Any
        if self.use_websockets:
            ws = await websockets.connect(self.url)
        else:
            ws = await connect(self.url)
        await ws.send(json.dumps({"action": "hello"}))
        return ws

    async def _when2create_new_ws(self) -> None:
        await self.rotate.wait()
        self.rotate.clear()

    async def _parse_raw_data(self, raw_data: Any) -> Any:
        return json.loads(raw_data)


def _events(conn: int, n: int = 3) -> list[dict[str, Any]]:
    return [{"conn": conn, "seq": i} for i in range(n)]


@pytest.mark.parametrize("use_websockets", [False, True])
@pytest.mark.parametrize("code", [1000, 1001])
async def test_clean_close_reconnects_and_delivers_after_it(code: int, use_websockets: bool) -> None:
    async def handler(conn: Conn) -> None:
        await conn.wait_action("hello")
        for e in _events(conn.index):
            await conn.ws.send(json.dumps(e))
        if conn.index == 0:
            await conn.ws.close(code, "maintenance")

    async with no_task_left():
        async with Server(handler) as srv:
            s = Stream(srv.url, use_websockets)
            try:
                every = s.stream_filter()
                second = s.stream_filter([{"conn": 1}])
                by_handler: list[Any] = []
                s.add_handler(by_handler.append)
                got = await take(every, 6)
                assert got == _events(0) + _events(1)     # in order, exactly once
                assert await take(second, 3) == _events(1)
                assert by_handler == got
                assert s.n_connections == 2 and len(srv.conns) == 2
                assert srv.conns[0].ws.close_code == code
                await s.send(json.dumps({"action": "after-reconnect"}))
                await srv.conns[1].wait_action("after-reconnect")
            finally:
                await s.exit()
        assert every.closed and await take(every, 1, 2) == []


async def test_drop_without_close_frame_reconnects() -> None:
    async def handler(conn: Conn) -> None:
        await conn.wait_action("hello")
        for e in _events(conn.index):
            await conn.ws.send(json.dumps(e))
        if conn.index == 0:
            await conn.drop()

    async with no_task_left():
        async with Server(handler) as srv:
            s = Stream(srv.url)
            try:
                assert await take(s.stream_filter(), 6) == _events(0) + _events(1)
            finally:
                await s.exit()


async def test_lists_fan_out_in_wire_order_across_types() -> None:
    frame = [{"ev": "T", "i": 1}, {"ev": "Q", "i": 2}, {"ev": "T", "i": 3}, {"ev": "Q", "i": 4}]

    async def handler(conn: Conn) -> None:
        await conn.wait_action("hello")
        await conn.ws.send(json.dumps(frame))
        if conn.index == 0:
            await conn.ws.close(1001)

    async with no_task_left():
        async with Server(handler) as srv:
            s = Stream(srv.url, split=True)
            try:
                trades = s.stream_filter([{"ev": "T"}])
                seen: list[Any] = []
                s.add_handler(seen.append)
                assert [e["i"] for e in await take(trades, 4)] == [1, 3, 1, 3]
                assert [e["i"] for e in seen] == [1, 2, 3, 4, 1, 2, 3, 4]
            finally:
                await s.exit()


async def test_rotation_and_bad_message_skipped() -> None:
    async def handler(conn: Conn) -> None:
        await conn.wait_action("hello")
        await conn.ws.send("not json")
        for e in _events(conn.index):
            await conn.ws.send(json.dumps(e))

    async with no_task_left():
        async with Server(handler) as srv:
            s = Stream(srv.url)
            try:
                every = s.stream_filter()
                assert await take(every, 3) == _events(0)
                s.rotate.set()
                assert await take(every, 3) == _events(1)
                assert len(srv.conns) == 2
                await asyncio.wait_for(srv.conns[0].ws.wait_closed(), 5)  # old one closed
            finally:
                await s.exit()
            with pytest.raises(StreamerClosedError):
                await s.send("late")


# ------------------------------------------------------------------------- FeedConnection


async def test_connection_text_binary_fragments_and_clean_end() -> None:
    async def handler(conn: Conn) -> None:
        await conn.ws.send("text")
        await conn.ws.send(b"\x00\xffbinary")
        await conn.ws.send(["frag", "mented"])
        await conn.ws.send([b"bin", b"frags"])
        await conn.ws.close(1000)

    async with no_task_left():
        async with Server(handler) as srv:
            ws = await connect(srv.url)
            assert isinstance(ws, FeedConnection)
            got = [m async for m in ws]            # ends on the clean close
            assert got == ["text", b"\x00\xffbinary", "fragmented", b"binfrags"]
            assert ws.close_code == 1000 and ws.closed
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            await ws.close()


@pytest.mark.parametrize("fragmented", [False, True])
async def test_connection_oversize_message_closes_1009(fragmented: bool) -> None:
    big = "y" * 5000

    async def handler(conn: Conn) -> None:
        await conn.ws.send("before")
        await conn.ws.send([big[:1000], big[1000:]] if fragmented else big)
        await conn.ws.wait_closed()

    with LoopErrors() as errors:
        async with no_task_left():
            async with Server(handler) as srv:
                ws = await connect(srv.url, max_size=1000)
                assert await ws.recv() == "before"
                with pytest.raises(ConnectionClosedError) as info:
                    await asyncio.wait_for(ws.recv(), 5)
                assert info.value.code == 1009
                assert ws.listener.n_oversize == 1
                await asyncio.wait_for(srv.conns[0].ws.wait_closed(), 5)
                assert srv.conns[0].ws.close_code == 1009
                await ws.close()
        assert not [m for m in errors.messages() if "never retrieved" in m]


async def test_connection_back_pressure_pauses_then_delivers_everything() -> None:
    n = 300
    sent = asyncio.Event()

    async def handler(conn: Conn) -> None:
        for i in range(n):
            await conn.ws.send(str(i))
        sent.set()
        await conn.ws.wait_closed()

    async with no_task_left():
        async with Server(handler) as srv:
            ws = await connect(srv.url, max_queue=20)
            await asyncio.wait_for(sent.wait(), 5)
            first = await ws.recv()
            assert ws.listener.paused                # reading stopped at max_queue unread
            rest = [await asyncio.wait_for(ws.recv(), 5) for _ in range(n - 1)]
            assert [first, *rest] == [str(i) for i in range(n)]
            assert not ws.listener.paused
            await ws.close()
