"""Filtered fan-out for every streamer (AsyncWebsocketStreamInterface's model, layer 4).

:class:`FanoutMixin` adds to a :class:`fastfeed.streamer.Streamer` subclass:

* ``stream_filter(filters=None)`` -- an async iterator (:class:`FilteredStream`) of the events
  matching *any* of the filter dicts; a dict matches when *all* its key/value pairs equal the
  event's (``==``). Keys are wire names (``"ev"``, ``"sym"``, ``"eventSymbol"``) or attribute
  names (``"event_type"``, ``"symbol"``, ``"bid_price"``). ``None`` or ``[]`` = everything,
  ``[{}]`` = everything. Every stream sees every matching event (its own unbounded queue,
  or ``maxsize`` with drop-oldest and a ``gaps`` counter). ``close()`` detaches the stream:
  events already queued are still yielded, then iteration ends.
* ``add_handler(fn)`` / ``remove_handler(fn)`` -- ``fn(event)`` for every event; sync functions
  run inline, async ones are awaited in order (no task per event). Exceptions are logged.
* ``send(message)`` -- send a raw message (``str``, ``bytes`` or a JSON-able object) on the
  live connection, waiting until there is one (``StreamerClosedError`` after ``close()``).
* ``exit()`` -- graceful shutdown: close the streamer and end every stream.
* ``present_ws`` -- the live transport (picows ``WSTransport``) or ``None``.

Order: streams and handlers get the events in the order the server sent them, across event
types (records carry a wire sequence; see :meth:`FanoutMixin._fanout_wire_order`).

The mixin runs one pump task (started by the first ``stream_filter`` / ``add_handler``) with
its own ring cursors over every event type of the core; it sleeps on the streamer's wake-ups,
so it costs nothing while nobody asked for fan-out. What an "event" is comes from
:meth:`FanoutMixin._fanout_items` (event objects by default; the polygon client gives the
wire ``dict``).

To mix it into a streamer::

    class DXLinkStreamer(FanoutMixin, Streamer): ...
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from fastfeed._native.ring import ReadySlot

__all__ = ["FanoutMixin", "FanoutHub", "FilteredStream", "matches", "Filters"]

log = logging.getLogger("fastfeed.fanout")

Filters = Iterable[Mapping[str, Any]] | None
_MISSING = object()


def _lookup(event: Any, key: str) -> Any:
    """The event's value for ``key`` (wire or attribute name), or ``_MISSING``."""
    if isinstance(event, Mapping):
        if key in event:
            return event[key]
        ev = event.get("ev")
        attr_map = _ATTR_TO_WIRE.get(ev) if isinstance(ev, str) else None
        if attr_map is not None:
            wire = attr_map.get(key)
            if wire is not None and wire in event:
                return event[wire]
        return _MISSING
    by_name = getattr(type(event), "_BY_NAME", None)
    if by_name is not None:
        field = by_name.get(key)
        if field is not None:
            value = field.__get__(event, type(event))
            # polygon: a key the wire did not carry reads as None = missing
            return _MISSING if value is None else value
        if key in ("eventType", "event_type"):  # dxFeed events: the wire type name
            return getattr(type(event), "WIRE_TYPE", None) or type(event).__name__
    return getattr(event, key, _MISSING)


def _build_attr_map() -> dict[str, dict[str, str]]:
    """polygon ``ev`` -> {attribute name -> wire key} (so dict events match attribute names)."""
    out: dict[str, dict[str, str]] = {}
    try:
        from fastfeed._records_meta import LAYOUTS
    except ImportError:  # pragma: no cover
        return out
    for lay in LAYOUTS.values():
        if lay.get("feed") != "polygon":
            continue
        m = {"event_type": "ev", lay["symbol"]["attr"]: lay["symbol"]["wire"]}
        for f in lay["fields"]:
            m[f["attr"]] = f["wire"]
        for ev in lay["rtypes"]:
            out[ev] = m
    return out


_ATTR_TO_WIRE = _build_attr_map()


def matches(event: Any, filters: list[dict[str, Any]] | None) -> bool:
    """AsyncWebsocketStreamInterface's rule: no filters, or any dict whose pairs all match."""
    if not filters:
        return True
    for flt in filters:
        for key, value in flt.items():
            got = _lookup(event, key)
            if got is _MISSING or got != value:
                break
        else:
            return True
    return False


class _Done:
    """An already-finished awaitable (so ``stream.close()`` and ``await stream.close()`` work)."""

    __slots__ = ()

    def __await__(self) -> Any:
        return
        yield  # pragma: no cover


class FilteredStream:
    """Async iterator of the events matching ``filters``; see :class:`FanoutMixin`."""

    def __init__(self, hub: FanoutHub, filters: list[dict[str, Any]] | None,
                 maxsize: int | None = None) -> None:
        self._hub = hub
        self.filters = filters
        self.maxsize = maxsize
        self._q: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        #: events dropped because ``maxsize`` was reached (drop-oldest)
        self.gaps = 0
        self._slot = ReadySlot()

    # -- producer side
    def _put(self, item: Any) -> None:
        q = self._q
        if self.maxsize is not None and len(q) >= self.maxsize:
            q.popleft()
            self.gaps += 1
        q.append(item)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _end(self, error: BaseException | None = None) -> None:
        self._closed = True
        if error is not None and self._error is None:
            self._error = error
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- consumer side
    @property
    def left(self) -> int:
        """Events queued and not yet read."""
        return len(self._q)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> _Done:
        """Detach from the streamer; queued events are still yielded, then iteration ends."""
        self._hub.detach(self)
        self._end()
        return _Done()

    def __aiter__(self) -> FilteredStream:
        return self

    def __anext__(self) -> Awaitable[Any]:
        # an already-completed awaitable while events are queued (no coroutine per event)
        q = self._q
        if q:
            return self._slot.give(q.popleft())
        return self._next()

    async def _next(self) -> Any:
        while True:
            if self._q:
                return self._q.popleft()
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __repr__(self) -> str:
        return f"<FilteredStream filters={self.filters!r} left={len(self._q)} closed={self._closed}>"


def _norm_filters(filters: Filters) -> list[dict[str, Any]] | None:
    if filters is None:
        return None
    if isinstance(filters, Mapping):
        return [dict(filters)]
    out = [dict(f) for f in filters]
    return out or None


class FanoutHub:
    """Streams + handlers; ``publish(items)`` delivers (used by the mixin and by compat)."""

    def __init__(self) -> None:
        self.streams: list[FilteredStream] = []
        self.handlers: list[Callable[[Any], Any]] = []

    @property
    def active(self) -> bool:
        return bool(self.streams or self.handlers)

    def stream(self, filters: Filters = None, maxsize: int | None = None) -> FilteredStream:
        s = FilteredStream(self, _norm_filters(filters), maxsize)
        self.streams.append(s)
        return s

    def detach(self, stream: FilteredStream) -> None:
        try:
            self.streams.remove(stream)
        except ValueError:
            pass

    def add_handler(self, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise TypeError("handler must be callable")
        if fn not in self.handlers:
            self.handlers.append(fn)

    def remove_handler(self, fn: Callable[[Any], Any]) -> None:
        try:
            self.handlers.remove(fn)
        except ValueError:
            pass

    def end_all(self, error: BaseException | None = None) -> None:
        for s in list(self.streams):
            s._end(error)
        self.streams.clear()

    async def publish(self, items: Iterable[Any]) -> None:
        """Deliver every item to the matching streams, then to every handler, in order."""
        streams = self.streams
        handlers = self.handlers
        for item in items:
            for s in streams:
                f = s.filters
                if not f or matches(item, f):
                    s._put(item)
            for h in handlers:
                try:
                    r = h(item)
                    if r is not None and inspect.isawaitable(r):
                        await r
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("fan-out handler %r raised", h)


class FanoutMixin:
    """Mix into a ``Streamer`` subclass (before it in the bases): see the module docstring."""

    # attributes provided by Streamer / ConnectionManager
    _core: Any
    _listener: Any
    _error: BaseException | None
    _closed: bool
    _closing: bool

    if TYPE_CHECKING:
        async def _wait(self) -> None: ...  # provided by Streamer

        async def close(self) -> None: ...  # provided by ConnectionManager

        def _check_usable(self) -> None: ...  # provided by ConnectionManager

    # ------------------------------------------------------------------ overridable

    def _fanout_types(self) -> list[str]:
        """Wire types whose events are fanned out (default: every ring of the core)."""
        return list(self._core.rings)

    def _fanout_items(self, batch: Any) -> Iterable[Any]:
        """What streams/handlers receive for a batch (default: event objects)."""
        items: Iterable[Any] = batch
        return items

    def _fanout_started(self) -> None:
        """Called once when the pump starts (e.g. start the connection)."""

    # ------------------------------------------------------------------ state

    def _fanout_hub(self) -> FanoutHub:
        hub: FanoutHub | None = self.__dict__.get("_ff_hub")
        if hub is None:
            hub = FanoutHub()
            self.__dict__["_ff_hub"] = hub
        return hub

    def _fanout_ensure_pump(self) -> None:
        task: asyncio.Task[None] | None = self.__dict__.get("_ff_pump")
        if task is None or task.done():
            consumers = {t: self._core.rings[t].consumer() for t in self._fanout_types()}
            self.__dict__["_ff_pump"] = asyncio.get_running_loop().create_task(
                self._fanout_pump(consumers))
            self._fanout_started()

    async def _fanout_pump(self, consumers: dict[str, Any]) -> None:
        hub = self._fanout_hub()
        try:
            while True:
                batches = [b for b in (c.drain() for c in consumers.values()) if b]
                if batches:
                    if hub.active:
                        await hub.publish(self._fanout_wire_order(batches))
                    continue
                if self._error is not None:
                    hub.end_all(self._error)
                    return
                if self._closed or self._closing:
                    hub.end_all()
                    return
                await self._wait()
        finally:
            for cons in consumers.values():
                cons.close()

    def _fanout_wire_order(self, batches: list[Any]) -> Iterable[Any]:
        """The items of ``batches`` (one per event type) in the order the server sent them.

        Records carry their read's ``ts_recv`` and a per-decoder wire sequence in the header
        (``pgdict.merge_order``), so a T, Q, T of one frame come out as T, Q, T.
        """
        if len(batches) == 1:
            return self._fanout_items(batches[0])
        from fastfeed._native.pgdict import merge_order

        per_batch = [list(self._fanout_items(b)) for b in batches]
        pos = [0] * len(batches)
        out: list[Any] = []
        for b in merge_order(batches):
            out.append(per_batch[b][pos[b]])
            pos[b] += 1
        return out

    # ------------------------------------------------------------------ public API

    def stream_filter(self, filters: Filters = None, *,
                      maxsize: int | None = None) -> FilteredStream:
        """An async iterator of the events matching any of ``filters`` (see module docstring)."""
        self._check_usable()
        s = self._fanout_hub().stream(filters, maxsize)
        self._fanout_ensure_pump()
        return s

    def add_handler(self, function_or_coroutine_function: Callable[[Any], Any]) -> None:
        """Call ``fn(event)`` for every event (sync inline, async awaited in order)."""
        self._check_usable()
        self._fanout_hub().add_handler(function_or_coroutine_function)
        self._fanout_ensure_pump()

    def remove_handler(self, function_or_coroutine_function: Callable[[Any], Any]) -> None:
        self._fanout_hub().remove_handler(function_or_coroutine_function)

    @property
    def present_ws(self) -> Any:
        """The live transport (picows ``WSTransport``), or ``None`` while disconnected."""
        listener = self._listener
        if listener is None or not listener.connected:
            return None
        return listener.transport

    async def send(self, message: Any) -> None:
        """Send a raw message on the live connection (waits until one exists)."""
        if isinstance(message, (bytes, bytearray, memoryview)):
            data = bytes(message)
        elif isinstance(message, str):
            data = message.encode()
        else:
            data = orjson.dumps(message)
        while True:
            if self._error is not None:
                raise self._error
            self._check_usable()   # StreamerClosedError after close(), EventLoopError
            listener = self._listener
            if listener is not None and listener.connected:
                listener.send(data)
                return
            await asyncio.sleep(0.01)

    async def exit(self) -> None:
        """Graceful shutdown: close the connection for good and end every stream."""
        await self.close()

    async def _after_close(self) -> None:
        """Called by ``close()``: the pump delivers what was received, then ends (no task is
        left behind), and every stream ends."""
        hub = self._fanout_hub()
        task: asyncio.Task[None] | None = self.__dict__.get("_ff_pump")
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            except Exception:  # noqa: BLE001 - closing: the pump's own failure was already reported
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: the pump's own failure was already reported
                    pass
        hub.end_all()
