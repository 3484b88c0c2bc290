"""``AsyncWebsocketStreamInterface`` (asyncwebsocketstreaminterface 1.0.5's API) on fastfeed's
transport.

Code written for that library runs unchanged: subclass :class:`AsyncWebsocketStreamInterface`,
implement the three hooks, then use ``stream_filter`` / ``add_handler`` / ``send`` / ``exit`` /
``present_ws``::

    class MyStream(AsyncWebsocketStreamInterface):
        async def _create_ws(self):
            ws = await fastfeed.compat.connect("ws://127.0.0.1:8765/stocks")
            await ws.send('{"action":"auth","params":"KEY"}')
            return ws
        async def _when2create_new_ws(self):
            await asyncio.sleep(3600)          # rotate hourly
        async def _parse_raw_data(self, raw_data):
            return orjson.loads(raw_data)

:func:`connect` opens a :class:`FeedConnection`: a ``websockets``-like client connection
(``send`` / ``recv`` / ``close`` / ``async for``) carried by the same picows listener as every
fastfeed streamer (:class:`~fastfeed._native.transport.FeedListener` with a
:class:`~fastfeed._native.transport.MessageCore`), so fragment reassembly, close echo,
``max_message_size`` and back-pressure are the streamers'. ``_create_ws`` may also return
anything with ``async recv()`` / ``async send()`` / ``async close()`` (e.g. a ``websockets``
connection).

Semantics kept from the original: handlers get every parsed message (sync ones inline, async
ones awaited before the next message is handled, so a slow handler back-pressures the socket);
a filter list matches when *any* dict has *all* its pairs equal (``key in msg and msg[key] ==
value``); the connection is replaced when ``_when2create_new_ws`` returns or raises (after
``reconnect_delay``, the original's 1 s), and when the connection fails; a message that
``_parse_raw_data`` cannot parse is logged and skipped.

Differences: a connection the server closes -- also cleanly, 1000/1001 (e.g. a maintenance
close) -- is replaced after ``reconnect_delay`` (the original's reader just ended there and the
stream went quiet until ``_when2create_new_ws`` returned); no eager pretty-printing of every
message and no ``deepcopy`` per handler; handler exceptions are logged (not silently
swallowed); a stream is never detached because it holds 20 items (``maxsize`` opts into
drop-oldest); ``close()`` on a stream ends its iteration after the queued items; the previous
connection is always closed on rotation; ``send`` after ``exit()`` raises
:class:`~fastfeed.errors.StreamerClosedError`. With ``split_lists = True`` (class attribute) a
parsed ``list`` is fanned out element by element, in wire order, to streams and handlers (so
``[{"ev": "T"}]`` filters work on polygon frames).
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

from fastfeed._fanout import FanoutHub, FilteredStream, Filters
from fastfeed._native.transport import FeedListener, MessageCore
from fastfeed.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ProtocolError,
    StreamerClosedError,
)

__all__ = ["AsyncWebsocketStreamInterface", "FeedConnection", "connect"]

log = logging.getLogger("fastfeed.compat")

#: largest message a :func:`connect` connection accepts by default (``websockets``' default)
DEFAULT_MAX_SIZE = 1 << 20
#: messages held unread before :class:`FeedConnection` stops reading the socket
DEFAULT_MAX_QUEUE = 1024


class FeedConnection:
    """A ``websockets``-like client connection on :class:`FeedListener` (see :func:`connect`).

    ``recv()`` returns ``str`` for TEXT messages and ``bytes`` for BINARY ones, in arrival
    order; when more than ``max_queue`` messages are unread the socket is no longer read until
    half of them are. After the connection ended ``recv()`` raises
    :class:`~fastfeed.errors.ConnectionClosedOK` (close code 1000/1001) or
    :class:`~fastfeed.errors.ConnectionClosedError` (any other code, or no CLOSE frame), once
    the messages received before are read; ``async for`` ends on the former and raises the
    latter, as ``websockets`` does. ``send(str | bytes)`` sends a TEXT message.
    """

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE,
                 max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.max_size = max_size
        self.max_queue = max(1, max_queue)
        self._core = MessageCore(decode_text=True, feed_name="websocket")
        self._listener = FeedListener(self._core, on_wake=self._on_wake,
                                      on_disconnect=self._on_disconnect,
                                      on_error=self._on_error, max_message_size=max_size)
        self._messages: collections.deque[str | bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    # ------------------------------------------------------------------ listener callbacks

    def _on_wake(self) -> None:
        core = self._core
        msgs, core.control = core.control, []
        self._messages.extend(msgs)
        lst = self._listener
        if len(self._messages) >= self.max_queue and not lst.paused:
            lst.pause()
        self._wake()

    def _on_disconnect(self, listener: Any) -> None:
        self._ended = True
        self._wake()

    @staticmethod
    def _on_error(err: BaseException) -> None:
        log.warning("malformed message skipped: %s", err)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # ------------------------------------------------------------------ state

    @property
    def listener(self) -> FeedListener:
        """The transport's listener (counters in ``listener.stats``)."""
        return self._listener

    @property
    def transport(self) -> Any:
        """picows' ``WSTransport`` (``None`` before the connection is up)."""
        return self._listener.transport

    @property
    def closed(self) -> bool:
        return self._ended or not self._listener.connected

    @property
    def close_code(self) -> int | None:
        code = self._listener.close_code
        return None if code is None else int(code)

    @property
    def close_reason(self) -> str:
        return str(self._listener.close_reason)

    def _closed_error(self) -> ConnectionClosed:
        code = self.close_code
        if code in (1000, 1001):
            return ConnectionClosedOK(code, self.close_reason)
        return ConnectionClosedError(code if code is not None else 1006, self.close_reason)

    # ------------------------------------------------------------------ websockets-like API

    async def recv(self) -> str | bytes:
        """The next message (``str`` for TEXT, ``bytes`` for BINARY)."""
        while True:
            msgs = self._messages
            if msgs:
                m = msgs.popleft()
                lst = self._listener
                if lst.paused and len(msgs) <= self.max_queue // 2:
                    lst.resume()
                return m
            if self.closed:
                raise self._closed_error()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def send(self, message: str | bytes) -> None:
        """Send one TEXT message."""
        if self.closed:
            raise self._closed_error()
        data = message.encode() if isinstance(message, str) else bytes(message)
        self._listener.send(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send CLOSE and wait (at most 2 s) until the connection is down."""
        lst = self._listener
        lst.close(code, reason)
        transport = lst.transport
        if transport is not None:
            try:
                await asyncio.wait_for(transport.wait_disconnected(), 2.0)
            except Exception:  # noqa: BLE001 - the transport's own error: already logged
                lst.abort()
        self._ended = True
        self._wake()

    def __aiter__(self) -> FeedConnection:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<FeedConnection {state} unread={len(self._messages)}>"


async def connect(url: str, *, max_size: int = DEFAULT_MAX_SIZE,
                  max_queue: int = DEFAULT_MAX_QUEUE, **picows_kwargs: Any) -> FeedConnection:
    """Open a websocket (picows ``ws_connect`` options pass through); returns a
    :class:`FeedConnection`. ``max_size``: largest message accepted (a larger one closes the
    connection with 1009); ``max_queue``: unread messages before reading pauses."""
    from picows import ws_connect

    conn = FeedConnection(max_size=max_size, max_queue=max_queue)
    picows_kwargs.setdefault("enable_auto_pong", True)
    picows_kwargs.setdefault("max_frame_size", max_size)
    await ws_connect(lambda: conn.listener, url, **picows_kwargs)
    return conn


def _close_code(exc: BaseException) -> int | None:
    """The close code carried by a connection-closed exception (fastfeed's or websockets')."""
    if isinstance(exc, ConnectionClosed):
        return exc.code
    rcvd = getattr(exc, "rcvd", None)  # websockets.ConnectionClosed
    code = getattr(rcvd, "code", None)
    return code if isinstance(code, int) else None


def _is_clean_close(exc: BaseException) -> bool:
    return _close_code(exc) in (1000, 1001)


class AsyncWebsocketStreamInterface(abc.ABC):
    """Abstract base (see the module docstring). Must be constructed inside a running loop."""

    #: fan a parsed ``list`` out element by element (per-event filters on polygon frames)
    split_lists: bool = False
    #: seconds between the end of a connection and the next ``_create_ws`` (the original's 1 s)
    reconnect_delay: float = 1.0

    def __init__(self) -> None:
        self._hub = FanoutHub()
        self._ws: Any = None
        self._exiting = False
        self._reader: asyncio.Task[None] | None = None
        self._ws_ready = asyncio.Event()
        #: connections made (``_create_ws`` returned), the first one included
        self.n_connections = 0
        self._manager = asyncio.get_running_loop().create_task(self._ws_manager())

    # ------------------------------------------------------------------ hooks

    @abc.abstractmethod
    async def _create_ws(self) -> Any:
        """Return an open connection (authenticate / subscribe here)."""

    @abc.abstractmethod
    async def _when2create_new_ws(self) -> None:
        """Return (or raise) when the connection should be replaced."""

    @abc.abstractmethod
    async def _parse_raw_data(self, raw_data: Any) -> Any:
        """Turn one received message into what handlers and streams get."""

    # ------------------------------------------------------------------ machinery

    async def _ws_manager(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._exiting:
            try:
                ws = await self._create_ws()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("_create_ws failed; retrying in %g s", self.reconnect_delay)
                await asyncio.sleep(self.reconnect_delay)
                continue
            self.n_connections += 1
            old, self._ws = self._ws, ws
            if old is not None and old is not ws:
                await self._close_ws(old)
            self._ws_ready.set()
            reader = loop.create_task(self._read(ws))
            self._reader = reader
            rotate = loop.create_task(self._when2create_new_ws())
            try:
                await asyncio.wait({reader, rotate}, return_when=asyncio.FIRST_COMPLETED)
                if reader.done():
                    exc = reader.exception() if not reader.cancelled() else None
                    if exc is None or _is_clean_close(exc):
                        log.info("the server closed the connection (%s); reconnecting in %g s",
                                 _close_code(exc) if exc else "end of stream",
                                 self.reconnect_delay)
                    else:
                        log.warning("connection failed (%s); reconnecting in %g s", exc,
                                    self.reconnect_delay)
                    self._ws_ready.clear()
                    await asyncio.sleep(self.reconnect_delay)
                else:
                    err = None if rotate.cancelled() else rotate.exception()
                    if err is not None:
                        log.info("_when2create_new_ws raised (%s); replacing the connection", err)
                    await asyncio.sleep(self.reconnect_delay)
            finally:
                for t in (rotate, reader):
                    if not t.done():
                        t.cancel()
                for t in (rotate, reader):
                    try:
                        await t
                    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: the task's own failure was already reported
                        pass
                self._ws_ready.clear()

    async def _read(self, ws: Any) -> None:
        """Read ``ws`` until it ends; returns on a clean close, raises on a failed one."""
        while True:
            try:
                raw = await ws.recv()
            except Exception as exc:
                if _is_clean_close(exc):
                    return
                raise
            try:
                msg = await self._parse_raw_data(raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a user-overridable hook's error is logged and the message skipped
                log.warning("_parse_raw_data failed, message skipped: %s",
                            ProtocolError("websocket", f"{type(exc).__name__}: {exc}"))
                continue
            if self.split_lists and isinstance(msg, list):
                await self._hub.publish(msg)
            else:
                await self._hub.publish((msg,))

    @staticmethod
    async def _close_ws(ws: Any) -> None:
        try:
            await ws.close()
        except Exception as exc:  # noqa: BLE001 - closing a dead connection: any failure is only logged
            log.debug("closing the previous connection failed: %s", exc)

    # ------------------------------------------------------------------ public API

    def stream_filter(self, _filters: Filters = None, *,
                      maxsize: int | None = None) -> FilteredStream:
        """Async iterator of the messages matching any of ``_filters`` (None = all)."""
        return self._hub.stream(_filters, maxsize)

    def add_handler(self, function_or_coroutine_function: Callable[[Any], Any]) -> None:
        """Call it with every message (sync inline, async awaited before the next read)."""
        self._hub.add_handler(function_or_coroutine_function)

    def remove_handler(self, function_or_coroutine_function: Callable[[Any], Any]) -> None:
        self._hub.remove_handler(function_or_coroutine_function)

    @property
    def present_ws(self) -> Any:
        """The current connection (``None`` before the first one)."""
        return self._ws

    async def wait_enter_handing_ws(self) -> None:
        """Wait until a connection is being read."""
        await self._ws_ready.wait()

    async def send(self, msg: str | bytes) -> None:
        """Send on the current connection, waiting until one is being read."""
        while not self._exiting:
            ws = self._ws
            if ws is not None and self._ws_ready.is_set():
                await ws.send(msg)
                return
            await asyncio.sleep(0.01)
        raise StreamerClosedError(f"{type(self).__name__} has exited")

    async def exit(self) -> None:
        """Stop the manager, close the connection and end every stream."""
        self._exiting = True
        task = self._manager
        if not task.done():
            task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: the manager's own failure was already reported
            pass
        if self._ws is not None:
            await self._close_ws(self._ws)
        self._hub.end_all()
