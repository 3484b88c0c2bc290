"""Scaffolding of the account-stream and AsyncWebsocketStreamInterface conformance tests.

Independent servers: plain ``websockets`` (``websockets.asyncio.server.serve`` on 127.0.0.1,
port 0), written here from the protocol description (tastytrade-api.md §6), not fastfeed.sim.
Each test scripts one server coroutine per connection (``handler(conn, index)``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

CERT = Path(__file__).parent / "certs" / "localhost.pem"
TOKEN = "conformance-s3cr3t"
ACCOUNT = "5WT00001"


class Conn:
    """One accepted connection: every client message decoded, and helpers to answer."""

    def __init__(self, ws: ServerConnection, index: int) -> None:
        self.ws = ws
        self.index = index
        self.received: list[dict[str, Any]] = []
        self.ended = False
        self._new = asyncio.Event()

    async def pump(self) -> None:
        """Read client messages into ``received`` until the connection ends."""
        try:
            async for raw in self.ws:
                self.received.append(json.loads(raw))
                self._new.set()
        except Exception:  # noqa: BLE001 - any end of the connection: the test reads close codes from ws
            pass
        finally:
            self.ended = True
            self._new.set()

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool],
                       timeout: float = 5.0) -> dict[str, Any]:
        """The first received message matching ``pred`` (waits for it; ``ConnectionError``
        when the connection ends first)."""
        async def find() -> dict[str, Any]:
            seen = 0
            while True:
                for m in self.received[seen:]:
                    if pred(m):
                        return m
                seen = len(self.received)
                if self.ended:
                    raise ConnectionError("the client connection ended")
                self._new.clear()
                await self._new.wait()
        return await asyncio.wait_for(find(), timeout)

    async def wait_action(self, action: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.wait_for(lambda m: m.get("action") == action, timeout)

    async def ack(self, msg: dict[str, Any], status: str = "ok",
                  message: str | None = None) -> None:
        out: dict[str, Any] = {"status": status, "action": msg.get("action"),
                               "web-socket-session-id": f"ws-{self.index}",
                               "request-id": msg.get("request-id")}
        if message is not None:
            out["message"] = message
        elif msg.get("value") is not None:
            out["value"] = msg["value"]
        await self.ws.send(json.dumps(out))

    async def notify(self, type_: str, data: dict[str, Any]) -> None:
        await self.ws.send(json.dumps({"type": type_, "data": data, "timestamp": 1}))

    async def drop(self) -> None:
        """End the TCP connection without a CLOSE frame (after flushing what was sent)."""
        self.ws.transport.close()
        await self.ws.wait_closed()


Handler = Callable[[Conn], Awaitable[None]]


class Server:
    """``async with Server(handler) as srv``: ``srv.url``, ``srv.conns`` (every connection),
    ``await srv.connection(i)`` (waits until the i-th connection, from 0, is accepted)."""

    def __init__(self, handler: Handler, *, tls: bool = False) -> None:
        self.handler = handler
        self.tls = tls
        self.conns: list[Conn] = []
        self._accepted = asyncio.Event()
        self._server: Any = None
        self.url = ""

    async def _serve(self, ws: ServerConnection) -> None:
        conn = Conn(ws, len(self.conns))
        self.conns.append(conn)
        self._accepted.set()
        pump = asyncio.get_running_loop().create_task(conn.pump())
        try:
            await self.handler(conn)
            await ws.wait_closed()
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def connection(self, index: int, timeout: float = 5.0) -> Conn:
        async def wait() -> Conn:
            while len(self.conns) <= index:
                self._accepted.clear()
                await self._accepted.wait()
            return self.conns[index]
        return await asyncio.wait_for(wait(), timeout)

    async def __aenter__(self) -> Server:
        ctx = None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(CERT)
        self._server = await serve(self._serve, "127.0.0.1", 0, ssl=ctx, max_size=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'wss' if self.tls else 'ws'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 5)


def client_ssl_context() -> ssl.SSLContext:
    """Trusts the test certificate (and nothing else)."""
    ctx = ssl.create_default_context(cafile=str(CERT))
    return ctx


class Session:
    """What AlertStreamer needs of a tastytrade Session; ``refresh()`` may rotate the token."""

    is_test = False
    proxy = None

    def __init__(self, token: str = TOKEN) -> None:
        self.session_token = token
        self.refreshes = 0
        self.next_token: str | None = None

    async def refresh(self, force: bool = False) -> None:
        self.refreshes += 1
        if self.next_token is not None:
            self.session_token, self.next_token = self.next_token, None


def order(seq: int) -> dict[str, Any]:
    """A complete ``Order`` notification body (valid for fastfeed's PlacedOrder)."""
    return {
        "id": seq, "account-number": ACCOUNT, "time-in-force": "Day", "order-type": "Limit",
        "size": "1", "underlying-symbol": "SPY", "underlying-instrument-type": "Equity",
        "price": "1.5", "price-effect": "Debit", "status": "Filled", "cancellable": False,
        "editable": False, "edited": False, "updated-at": "2026-12-05T10:00:00+00:00",
        "legs": [{"instrument-type": "Equity", "symbol": "SPY", "action": "Buy to Open",
                  "quantity": "1"}],
    }


async def take(aiter: AsyncIterator[Any], n: int, timeout: float = 10.0) -> list[Any]:
    """The next ``n`` items of an async iterator (bounded in time)."""
    async def run() -> list[Any]:
        out: list[Any] = []
        async for x in aiter:
            out.append(x)
            if len(out) == n:
                break
        return out
    return await asyncio.wait_for(run(), timeout)


class LoopErrors:
    """Collects what the running loop's exception handler gets (e.g. "Future exception was
    never retrieved")."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __enter__(self) -> LoopErrors:
        self.loop = asyncio.get_running_loop()
        self.old = self.loop.get_exception_handler()
        self.loop.set_exception_handler(lambda loop, ctx: self.contexts.append(ctx))
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.collect()
        self.loop.set_exception_handler(self.old)

    def messages(self) -> list[str]:
        gc.collect()
        return [str(c.get("message")) for c in self.contexts]


@asynccontextmanager
async def no_task_left(timeout: float = 3.0) -> AsyncIterator[None]:
    """Asserts that every task created inside the block is finished when it ends."""
    before = set(asyncio.all_tasks())

    def left() -> set[asyncio.Task[Any]]:
        return {t for t in asyncio.all_tasks() - before if not t.done()}

    yield
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # tasks that are ending (cancelled, closing): a bounded poll, there is no event to await
    while left() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    remaining = left()
    assert not remaining, f"tasks left after close: {remaining}"
