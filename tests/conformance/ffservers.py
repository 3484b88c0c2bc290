"""Independent scripted servers for the lifecycle conformance suite (issue #12).

Written with plain ``websockets`` (``websockets.asyncio.server.serve`` on 127.0.0.1, port 0),
never with ``fastfeed.sim``, so fastfeed is not only tested against itself. Shared by every
streamer's conformance tests (``test_dxlink_*``, ``test_polygon_*``, the account streamer's).

* :class:`ScriptedServer` -- the generic part: start/stop, the URL, an HTTP status script for
  the upgrade (``statuses``: one entry per connection attempt, ``None`` = accept), connection
  counting, per-connection received messages, and :meth:`ScriptedServer.wait_for` to
  synchronise on a condition without sleeps.
* :class:`DXLinkScript` -- a small DXLink server (SETUP, AUTH_STATE, CHANNEL_REQUEST/OPENED,
  FEED_SETUP/FEED_CONFIG honouring the client's ``acceptEventFields`` order, FEED_SUBSCRIPTION,
  COMPACT FEED_DATA) that streams numbered Quote events (``bidPrice`` = the event's number) and
  lets a test inject faults between events.
* :class:`PolygonScript` -- the polygon/Massive sequence (connected, auth, subscribe acks) with
  numbered T events (``q`` = the event's number).
* :func:`unreachable_url`, :func:`assert_no_tasks_left`, :func:`open_fds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Self

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

Handler = Callable[[ServerConnection, int], Awaitable[None]]


def unreachable_url(scheme: str = "ws", path: str = "/realtime?token=SECRET") -> str:
    """A loopback URL nobody listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"{scheme}://127.0.0.1:{port}{path}"


def open_fds() -> int:
    """Open file descriptors of this process (Linux)."""
    return len(os.listdir("/proc/self/fd"))


async def assert_fds_back_to(n: int, timeout: float = 5.0) -> None:
    """The process's open descriptors come back to ``n`` (asyncio's plain loop closes a
    transport's socket a few loop iterations after ``close()`` returns: wait for that condition,
    bounded, instead of reading it at one instant)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while open_fds() > n:
        assert loop.time() < deadline, f"{open_fds()} open descriptors, {n} before"
        await asyncio.sleep(0.01)


def assert_no_tasks_left(before: set[asyncio.Task[Any]], package: str = "fastfeed") -> None:
    """No task running code of ``package`` and created since ``before`` is still pending."""
    def ours(t: asyncio.Task[Any]) -> bool:
        code = getattr(t.get_coro(), "cr_code", None)
        return code is not None and f"/{package}/" in code.co_filename

    left = [t for t in asyncio.all_tasks() - before if not t.done() and ours(t)]
    assert not left, f"tasks left behind: {left}"


class ScriptedServer:
    """A websockets server whose connections run ``handler(ws, conn_index)``.

    ``statuses[i]`` (if given) answers the i-th upgrade with that HTTP status instead of 101.
    """

    def __init__(self, handler: Handler, *, statuses: list[int | None] | None = None,
                 path: str = "/") -> None:
        self.handler = handler
        self.statuses = list(statuses or [])
        self.path = path
        self.upgrades = 0            # upgrade requests seen (accepted or refused)
        self.connections = 0         # websocket connections accepted
        self.received: list[list[Any]] = []   # per accepted connection: decoded messages
        self._server: Any = None
        self._changed = asyncio.Event()
        self.url = ""

    async def __aenter__(self) -> Self:
        self._server = await serve(self._run, "127.0.0.1", 0, max_size=None,
                                   process_request=self._process_request, ping_interval=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}{self.path}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        i = self.upgrades
        self.upgrades += 1
        self.notify()
        status = self.statuses[i] if i < len(self.statuses) else None
        if status is None:
            return None
        return conn.respond(http.HTTPStatus(status), f"scripted {status}\n")

    async def _run(self, ws: ServerConnection) -> None:
        idx = self.connections
        self.connections += 1
        self.received.append([])
        self.notify()
        with contextlib.suppress(ConnectionClosed):
            await self.handler(ws, idx)

    def notify(self) -> None:
        self._changed.set()

    async def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (bounded) until ``cond()`` is true; re-checked whenever the server notifies."""
        async def run() -> None:
            while not cond():
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.05)
                except TimeoutError:
                    pass
        await asyncio.wait_for(run(), timeout)

    async def recv_json(self, ws: ServerConnection, idx: int) -> Any:
        msg = json.loads(await ws.recv())
        self.received[idx].append(msg)
        self.notify()
        return msg


# ================================================================================== DXLink


class DXLinkScript:
    """A scripted DXLink server; see the module docstring.

    Knobs (attributes, may be changed by a test at any time):

    * ``answer_setup(idx) -> bool``: whether connection ``idx`` answers SETUP at all;
    * ``drop_after_auth(idx) -> bool``: close right after AUTHORIZED;
    * ``refuse_channel(idx, channel) -> dict | None``: a message sent instead of
      CHANNEL_OPENED (e.g. an ERROR or a CHANNEL_CLOSED);
    * ``faults``: ``{event_number: callable(ws, channel) -> awaitable}`` run (once) right after
      the event of that number was sent -- e.g. send an ERROR, a CHANNEL_CLOSED, an oversize
      frame, or close the connection;
    * ``total``: how many Quote events to send in all (then it idles, answering keepalives);
    * ``on_subscribe(ws, channel, accepted fields, added items)``: run after each
      FEED_SUBSCRIPTION that adds something (e.g. send a Candle history snapshot).

    ``sent`` lists the numbers of the Quote events sent, in order (all connections); with
    ``interleave_trades`` a Trade precedes each Quote once Trade is subscribed (``wire``: both).
    """

    def __init__(self, total: int = 200, interval: float = 0.002) -> None:
        self.total = total
        self.interval = interval
        self.sent: list[int] = []
        self.sent_trades: list[int] = []
        self.wire: list[tuple[str, int]] = []   # (type, number) of every event, wire order
        self.answer_setup: Callable[[int], bool] = lambda idx: True
        self.drop_after_auth: Callable[[int], bool] = lambda idx: False
        self.refuse_channel: Callable[[int, int], dict[str, Any] | None] = lambda i, c: None
        self.faults: dict[int, Callable[[ServerConnection, int], Awaitable[None]]] = {}
        self.interleave_trades = False
        self.on_subscribe: Callable[[ServerConnection, int, dict[str, list[str]],
                                     list[dict[str, Any]]], Awaitable[None]] | None = None
        self.server: ScriptedServer | None = None

    def make(self, **kw: Any) -> ScriptedServer:
        self.server = ScriptedServer(self.handle, path="/realtime", **kw)
        return self.server

    @staticmethod
    def row(fields: list[str], etype: str, symbol: str, n: int) -> list[Any]:
        out: list[Any] = []
        for f in fields:
            if f == "eventSymbol":
                out.append(symbol)
            elif f == "eventType":
                out.append(etype)
            elif f in ("bidPrice", "price"):
                out.append(float(n))
            elif f.endswith("ExchangeCode") or f == "exchangeCode":
                out.append("Q")
            elif f in ("tickDirection", "side", "type", "scope", "aggressorSide"):
                out.append("UNDEFINED")
            elif f in ("extendedTradingHours", "spreadLeg", "validTick"):
                out.append(False)
            else:
                out.append(0)
        return out

    async def handle(self, ws: ServerConnection, idx: int) -> None:
        srv = self.server
        assert srv is not None
        fields: dict[int, dict[str, list[str]]] = {}
        subscribed: dict[int, set[str]] = {}
        authorized = asyncio.Event()
        streaming: asyncio.Task[None] | None = None

        async def stream() -> None:
            while len(self.sent) < self.total:
                chans = [c for c, types in subscribed.items() if "Quote" in types]
                if not chans or "Quote" not in fields.get(chans[0], {}):
                    await asyncio.sleep(self.interval)
                    continue
                ch = chans[0]
                n = len(self.sent) + 1
                tch = [c for c, types in subscribed.items() if "Trade" in types
                       and "Trade" in fields.get(c, {})]
                if self.interleave_trades and tch:   # a Trade, then the Quote (wire order)
                    m = len(self.sent_trades) + 1
                    await ws.send(json.dumps({"type": "FEED_DATA", "channel": tch[0], "data": [
                        "Trade", self.row(fields[tch[0]]["Trade"], "Trade", "SPY", m)]}))
                    self.sent_trades.append(m)
                    self.wire.append(("Trade", m))
                data: list[Any] = ["Quote", self.row(fields[ch]["Quote"], "Quote", "SPY", n)]
                await ws.send(json.dumps({"type": "FEED_DATA", "channel": ch, "data": data}))
                self.sent.append(n)
                self.wire.append(("Quote", n))
                srv.notify()
                fault = self.faults.pop(n, None)
                if fault is not None:
                    await fault(ws, ch)
                await asyncio.sleep(self.interval)

        try:
            while True:
                msg = await srv.recv_json(ws, idx)
                typ, ch = msg.get("type"), msg.get("channel", 0)
                if typ == "SETUP":
                    if not self.answer_setup(idx):
                        continue
                    await ws.send(json.dumps({"type": "SETUP", "channel": 0, "version": "1.0-test",
                                              "keepaliveTimeout": 60,
                                              "acceptKeepaliveTimeout": 60}))
                    await ws.send(json.dumps({"type": "AUTH_STATE", "channel": 0,
                                              "state": "UNAUTHORIZED"}))
                elif typ == "AUTH":
                    await ws.send(json.dumps({"type": "AUTH_STATE", "channel": 0,
                                              "state": "AUTHORIZED", "userId": "u"}))
                    authorized.set()
                    if self.drop_after_auth(idx):
                        await ws.close(1011, "scripted drop")
                        return
                elif typ == "CHANNEL_REQUEST":
                    alt = self.refuse_channel(idx, ch)
                    if alt is not None:
                        await ws.send(json.dumps(alt))
                        continue
                    await ws.send(json.dumps({"type": "CHANNEL_OPENED", "channel": ch,
                                              "service": "FEED", "parameters": {
                                                  "contract": "AUTO", "subFormat": "LIST"}}))
                elif typ == "FEED_SETUP":
                    fields.setdefault(ch, {}).update(msg.get("acceptEventFields") or {})
                    await ws.send(json.dumps({"type": "FEED_CONFIG", "channel": ch,
                                              "dataFormat": "COMPACT",
                                              "aggregationPeriod": 0.1}))
                elif typ == "FEED_SUBSCRIPTION":
                    subs = subscribed.setdefault(ch, set())
                    if msg.get("reset"):
                        subs.clear()
                    for it in msg.get("add") or ():
                        subs.add(it["type"])
                    if self.on_subscribe is not None and msg.get("add"):
                        await self.on_subscribe(ws, ch, fields.get(ch, {}), msg["add"])
                    if streaming is None:
                        streaming = asyncio.ensure_future(stream())
                elif typ == "CHANNEL_CANCEL":
                    subscribed.pop(ch, None)
                    await ws.send(json.dumps({"type": "CHANNEL_CLOSED", "channel": ch}))
                elif typ == "KEEPALIVE":
                    await ws.send(json.dumps({"type": "KEEPALIVE", "channel": 0}))
        finally:
            if streaming is not None:
                streaming.cancel()
                with contextlib.suppress(BaseException):
                    await streaming


class Session:
    """tastytrade <= 11.x session shape (URL + token attributes)."""

    def __init__(self, url: str, token: str = "SECRET-TOKEN") -> None:
        self.dxlink_url = url
        self.streamer_token = token
        self.proxy = None


# ================================================================================== polygon


class PolygonScript:
    """A scripted polygon/Massive server: ``connected``, ``auth`` -> ``auth_success``,
    ``subscribe`` -> ``success`` per channel, then numbered T events (``q``) -- and Q events
    between them when ``interleave_quotes`` -- for the subscribed symbols.

    Knobs: ``answer_auth(idx)``, ``drop_after_auth(idx)``, ``faults`` (as :class:`DXLinkScript`,
    ``callable(ws)``), ``total``. ``sent`` lists the T numbers sent, ``wire`` every event
    ``(ev, number)`` in wire order.
    """

    def __init__(self, total: int = 200, interval: float = 0.002, key: str = "KEY") -> None:
        self.total = total
        self.interval = interval
        self.key = key
        self.sent: list[int] = []
        self.wire: list[tuple[str, int]] = []
        self.answer_auth: Callable[[int], bool] = lambda idx: True
        self.drop_after_auth: Callable[[int], bool] = lambda idx: False
        self.faults: dict[int, Callable[[ServerConnection], Awaitable[None]]] = {}
        self.interleave_quotes = False
        self.server: ScriptedServer | None = None

    def make(self, **kw: Any) -> ScriptedServer:
        self.server = ScriptedServer(self.handle, path="/stocks", **kw)
        return self.server

    async def handle(self, ws: ServerConnection, idx: int) -> None:
        srv = self.server
        assert srv is not None
        streaming: asyncio.Task[None] | None = None
        subscribed: set[str] = set()

        async def stream() -> None:
            q = 0
            while len(self.sent) < self.total:
                if "T.AAPL" not in subscribed:
                    await asyncio.sleep(self.interval)
                    continue
                n = len(self.sent) + 1
                events: list[dict[str, Any]] = [{"ev": "T", "sym": "AAPL", "i": str(n), "x": 4,
                                                 "p": 100.0 + n, "s": 1, "t": 1700000000000 + n,
                                                 "q": n, "z": 3}]
                if self.interleave_quotes and "Q.AAPL" in subscribed:
                    q += 1
                    events.append({"ev": "Q", "sym": "AAPL", "bx": 1, "bp": 99.0, "bs": 1,
                                   "ax": 1, "ap": 101.0, "as": 1, "t": 1700000000000 + n,
                                   "q": q, "z": 3})
                    events.append({"ev": "T", "sym": "AAPL", "i": f"{n}b", "x": 4, "p": 1.0,
                                   "s": 1, "t": 1700000000000 + n, "q": -n, "z": 3})
                await ws.send(json.dumps(events))
                self.sent.append(n)
                for e in events:
                    self.wire.append((e["ev"], e["q"]))
                srv.notify()
                fault = self.faults.pop(n, None)
                if fault is not None:
                    await fault(ws)
                await asyncio.sleep(self.interval)

        await ws.send(json.dumps([{"ev": "status", "status": "connected",
                                   "message": "Connected Successfully"}]))
        try:
            while True:
                msg = await srv.recv_json(ws, idx)
                action = msg.get("action")
                if action == "auth":
                    if not self.answer_auth(idx):
                        continue
                    if msg.get("params") != self.key:
                        await ws.send(json.dumps([{"ev": "status", "status": "auth_failed",
                                                   "message": "authentication failed"}]))
                        continue
                    await ws.send(json.dumps([{"ev": "status", "status": "auth_success",
                                               "message": "authenticated"}]))
                    if self.drop_after_auth(idx):
                        await ws.close(1011, "scripted drop")
                        return
                elif action == "subscribe":
                    for chan in str(msg.get("params", "")).split(","):
                        subscribed.add(chan)
                        await ws.send(json.dumps([{"ev": "status", "status": "success",
                                                   "message": f"subscribed to: {chan}"}]))
                    if streaming is None:
                        streaming = asyncio.ensure_future(stream())
        finally:
            if streaming is not None:
                streaming.cancel()
                with contextlib.suppress(BaseException):
                    await streaming


