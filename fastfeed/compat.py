"""``AsyncWebsocketStreamInterface`` (asyncwebsocketstreaminterface 1.0.5's API) on picows.

Code written for that library runs unchanged: subclass :class:`AsyncWebsocketStreamInterface`,
implement the three hooks, then use ``stream_filter`` / ``add_handler`` / ``send`` / ``exit`` /
``present_ws``::

    class MyStream(AsyncWebsocketStreamInterface):
        async def _create_ws(self):
            ws = await fastfeed.compat.connect("ws://127.0.0.1:8765/stocks")   # picows
            await ws.send('{"action":"auth","params":"KEY"}')
            return ws
        async def _when2create_new_ws(self):
            await asyncio.sleep(3600)          # rotate hourly
        async def _parse_raw_data(self, raw_data):
            return orjson.loads(raw_data)

``_create_ws`` may return a :func:`connect` connection (picows) or anything with
``async recv()`` / ``async send()`` / ``async close()`` (e.g. a ``websockets`` connection).

Semantics kept from the original: handlers get every parsed message (sync ones inline, async
ones run concurrently per message and awaited before the next message is read, so a slow
handler back-pressures the socket); a filter list matches when *any* dict has *all* its pairs
equal (``key in msg and msg[key] == value``); rotation when ``_when2create_new_ws`` returns or
the reader fails; a clean server close (1000/1001) stops reading without rotation.
Differences: no eager pretty-printing of every message and no ``deepcopy`` per handler;
handler exceptions are logged (not silently swallowed); a stream is never detached because it
holds 20 items (``maxsize`` opts into drop-oldest); ``close()`` on a stream ends its iteration
after the queued items; the previous connection is always closed on rotation. With
``split_lists = True`` (class attribute) a parsed ``list`` is fanned out element by element
to streams and handlers (so ``[{"ev": "T"}]`` filters work on polygon frames).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fastfeed._fanout import FanoutHub, FilteredStream, Filters

__all__ = ["AsyncWebsocketStreamInterface", "PicowsConnection", "connect"]

log = logging.getLogger("fastfeed.compat")


class _Closed(Exception):
    """Raised by ``PicowsConnection.recv`` after the connection ended."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class PicowsConnection:
    """A websockets-like client connection on picows: ``send``, ``recv``, ``close``, iteration."""

    def __init__(self) -> None:
        self.transport: Any = None
        self._q: asyncio.Queue[Any] = asyncio.Queue()
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = False

    # picows listener callbacks (set up by connect())
    def _on_connected(self, transport: Any) -> None:
        self.transport = transport

    def _on_frame(self, transport: Any, frame: Any) -> None:
        from picows import WSMsgType

        mt = frame.msg_type
        if mt == WSMsgType.TEXT:
            self._q.put_nowait(frame.get_payload_as_utf8_text())
        elif mt == WSMsgType.BINARY:
            self._q.put_nowait(frame.get_payload_as_bytes())
        elif mt == WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
            try:
                self.close_reason = frame.get_close_reason() or ""
            except Exception:
                self.close_reason = ""
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def _on_disconnected(self, transport: Any) -> None:
        self.closed = True
        self._q.put_nowait(_Closed(self.close_code, self.close_reason))

    async def send(self, message: str | bytes) -> None:
        from picows import WSMsgType

        if self.closed or self.transport is None:
            raise _Closed(self.close_code, self.close_reason)
        data = message.encode() if isinstance(message, str) else bytes(message)
        self.transport.send(WSMsgType.TEXT, data)

    async def recv(self) -> Any:
        item = await self._q.get()
        if isinstance(item, _Closed):
            self._q.put_nowait(item)  # every later recv raises too
            raise item
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        from picows import WSCloseCode

        if self.transport is not None and not self.closed:
            self.transport.send_close(WSCloseCode(code), reason.encode())
            self.transport.disconnect()
            try:
                await asyncio.wait_for(self.transport.wait_disconnected(), 2.0)
            except (asyncio.TimeoutError, Exception):
                pass
        self.closed = True

    def __aiter__(self) -> PicowsConnection:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.recv()
        except _Closed:
            raise StopAsyncIteration from None


async def connect(url: str, **picows_kwargs: Any) -> PicowsConnection:
    """Open a websocket with picows; returns a :class:`PicowsConnection`."""
    from picows import WSListener, ws_connect

    conn = PicowsConnection()

    class _L(WSListener):
        def on_ws_connected(self, transport: Any) -> None:
            conn._on_connected(transport)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            conn._on_frame(transport, frame)

        def on_ws_disconnected(self, transport: Any) -> None:
            conn._on_disconnected(transport)

    picows_kwargs.setdefault("enable_auto_pong", True)
    await ws_connect(_L, url, **picows_kwargs)
    return conn


def _is_clean_close(exc: BaseException) -> bool:
    code = getattr(exc, "code", None)
    if code is None:
        rcvd = getattr(exc, "rcvd", None)  # websockets ConnectionClosed
        code = getattr(rcvd, "code", None)
    return code in (1000, 1001)


class AsyncWebsocketStreamInterface(abc.ABC):
    """Abstract base (see the module docstring). Must be constructed inside a running loop."""

    #: fan a parsed ``list`` out element by element (per-event filters on polygon frames)
    split_lists: bool = False

    def __init__(self) -> None:
        self._hub = FanoutHub()
        self._ws: Any = None
        self._exiting = False
        self._reader: asyncio.Task[None] | None = None
        self._ws_ready = asyncio.Event()
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
        while not self._exiting:
            try:
                ws = await self._create_ws()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("_create_ws failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                continue
            old, self._ws = self._ws, ws
            if old is not None and old is not ws:
                await self._close_ws(old)
            self._ws_ready.set()
            reader = asyncio.get_running_loop().create_task(self._read(ws))
            self._reader = reader
            rotate = asyncio.get_running_loop().create_task(self._when2create_new_ws())
            done, _ = await asyncio.wait({reader, rotate}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                rotate.cancel()
                exc = reader.exception() if not reader.cancelled() else None
                if exc is None or _is_clean_close(exc):
                    # clean end: no reconnect unless _when2create_new_ws says so
                    self._ws_ready.clear()
                    try:
                        await rotate
                    except (asyncio.CancelledError, Exception):
                        pass
                    return
                log.warning("reader failed (%s); creating a new connection", exc)
            else:
                await asyncio.sleep(1.0)
                reader.cancel()
                try:
                    await reader
                except (asyncio.CancelledError, Exception):
                    pass
            self._ws_ready.clear()

    async def _read(self, ws: Any) -> None:
        while True:
            try:
                raw = await ws.recv()
            except _Closed as exc:
                if exc.code in (1000, 1001):
                    return
                raise
            msg = await self._parse_raw_data(raw)
            if self.split_lists and isinstance(msg, list):
                await self._hub.publish(msg)
            else:
                await self._hub.publish((msg,))

    @staticmethod
    async def _close_ws(ws: Any) -> None:
        try:
            await ws.close()
        except Exception:
            pass

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
        """Send on the current connection, waiting until one exists."""
        while not self._exiting:
            ws = self._ws
            if ws is not None and self._ws_ready.is_set():
                await ws.send(msg)
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("stream interface has exited")

    async def exit(self) -> None:
        """Stop the manager, close the connection and end every stream."""
        self._exiting = True
        for task in (self._manager, self._reader):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if self._ws is not None:
            await self._close_ws(self._ws)
        self._hub.end_all()
