"""Consumer machinery shared by the streamers (layer 4): fan-out listen / batches / latest / stats.

:class:`Streamer` extends :class:`fastfeed._connection.ConnectionManager` with the consumer API
over the core's rings:

* ``listen(cls)`` -- async iterator of event objects. **Each call has its own cursor**
  (fan-out: two ``listen(Quote)`` loops both see every Quote).
* ``listen_batches(cls)`` -- async iterator of :class:`~fastfeed.EventBatch` (zero-copy,
  one per socket read at most; ``len``, iteration, buffer protocol / numpy).
* ``get_event(cls)`` / ``get_event_nowait(cls)`` -- one shared cursor per type, created when
  the type is first subscribed (or first asked for), so nothing published after the
  subscription is missed. ``get_event_nowait`` returns ``None`` when nothing is waiting.
* ``latest(cls, symbol)`` -- the last event of a symbol, kept in C by the ring (O(1)).
* ``stats`` -- frames, events, bytes, parse errors, gaps, reconnects, last receive time.

Wake-ups: the transport calls ``_on_wake`` once per socket read that produced something; it
resolves the futures of every waiting consumer (no task and no queue per frame).

Overflow: market-data rings are drop-oldest and hold about 8 MB of records per type (the
core's ``DEFAULT_RING_BYTES``); a consumer that falls a whole ring behind loses the oldest
events, counted in ``stats["gaps"]`` and the batch's ``gaps``, with a
:class:`~fastfeed.RingOverflowWarning` at most once per ``overflow_warning_interval`` seconds.

Errors: a fatal error (``AuthenticationError``, ``StreamerError``, ...) is raised from every
waiting and future ``listen`` / ``listen_batches`` / ``get_event`` call (after the events
already received are delivered). An error of one event type only (e.g. its DXLink channel
could not be reopened, :meth:`Streamer._fail_type`) is raised from that type's iterators.
Iterators running when ``close()`` is called end cleanly (``StopAsyncIteration``; a waiting
``get_event`` raises :class:`~fastfeed.ConnectionClosedOK`); a *new* ``listen`` /
``get_event`` after ``close()`` raises :class:`~fastfeed.StreamerClosedError`, and any of them
from another event loop than the streamer's :class:`~fastfeed.EventLoopError`.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

from fastfeed._connection import ConnectionManager
from fastfeed._native.lazymodel import wrap
from fastfeed._native.ring import (
    EventCursor,
    EventStream,
    LifeFlag,
    event_getter,
    streamer_get_event,
)
from fastfeed.errors import ConnectionClosedOK, RingOverflowWarning

__all__ = ["Streamer"]


class Streamer(ConnectionManager):
    """Connection manager + consumer API over a ProtocolCore's rings (see module docstring)."""

    overflow_warning_interval: float = 10.0

    if not TYPE_CHECKING:
        # the closed state (plain bool attributes to everyone) kept in C, where get_event(),
        # which checks it on every call, reads it without an attribute lookup
        _closing = LifeFlag("closing")
        _closed = LifeFlag("closed")

    def __init__(self, core: Any, **kwargs: Any) -> None:
        super().__init__(core, **kwargs)
        self._waiters: list[asyncio.Future[None]] = []
        self._shared: dict[str, EventCursor] = {}   # by wire type
        # the same, by the class (or name) asked for, with get_event's model for it
        self._cursors: dict[Any, tuple[EventCursor, type | None]] = {}
        self._gaps = 0
        self._last_overflow_warning = 0.0
        self._type_errors: dict[str, BaseException] = {}
        # get_event as this instance's own function (no bound method, no cursor lookup per
        # call); the class's get_event below does the same, looked up per call. Set without
        # touching self.__dict__: materialising it makes every attribute access slower (3.11).
        # Not when a subclass overrides get_event: the instance attribute would hide it
        if type(self).get_event is streamer_get_event:
            object.__setattr__(self, "get_event", event_getter(self))

    # ------------------------------------------------------------------ rings

    def _wire_type(self, event_class: Any) -> str:
        """Wire type name of an event class (fastfeed's, a peer SDK's of the same name) or str."""
        if isinstance(event_class, str):
            return event_class
        name = getattr(event_class, "WIRE_TYPE", None) or getattr(event_class, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(f"not an event class: {event_class!r}")
        return name

    def _ring(self, event_class: Any) -> Any:
        key = self._wire_type(event_class)
        try:
            ring = self._core.rings[key]
        except KeyError:
            raise KeyError(f"unknown event type {key!r}") from None
        return ring

    def _shared_for(self, event_class: Any) -> EventCursor:
        key = self._wire_type(event_class)
        sh = self._shared.get(key)
        if sh is None:
            # weak until get_event*/ is first used: an unused shared cursor must not hold back
            # a back-pressure ring (it would stall the feed) nor count gaps nobody asked for
            sh = EventCursor(self, self._ring(key).consumer(weak=True))
            self._shared[key] = sh
        return sh

    def _prepare_type(self, event_class: Any) -> None:
        """Called when a type is subscribed: shared cursor + latest-per-symbol table."""
        self._shared_for(event_class)
        ring = self._ring(event_class)
        ring.enable_latest()

    # ------------------------------------------------------------------ wake-ups

    def _on_wake_data(self) -> None:
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _wake_all(self) -> None:
        self._on_wake_data()

    async def _wait(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    def _note_batch(self, batch: Any) -> None:
        self._note_drained(int(batch.gaps), batch.event_class.__name__)

    def _note_drained(self, gaps: int, cls_name: str) -> None:
        """Count (and warn of) records lost before a drain; resume a paused transport."""
        if gaps:
            self._gaps += int(gaps)
            now = time.monotonic()
            if now - self._last_overflow_warning >= self.overflow_warning_interval:
                self._last_overflow_warning = now
                warnings.warn(
                    f"a {cls_name} consumer fell behind and lost {gaps} "
                    f"events (drop-oldest ring); total lost: {self._gaps}",
                    RingOverflowWarning, stacklevel=3)
        listener = self._listener
        if listener is not None and listener.paused:
            listener.maybe_resume()

    def _check_end(self, wire_type: str | None = None) -> bool:
        """Raise the fatal error (or ``wire_type``'s own) if any; True when closed."""
        if self._error is not None:
            raise self._error
        if wire_type is not None and self._type_errors:
            err = self._type_errors.get(wire_type)
            if err is not None:
                raise err
        return self._closed or self._closing

    def _fail_type(self, wire_type: str, exc: BaseException) -> None:
        """End the iterators of one event type with ``exc`` (the other types go on)."""
        self._type_errors[wire_type] = exc
        self._log.error("%s stream stopped: %s", wire_type, exc)
        self._wake_all()

    def _clear_type_error(self, wire_type: str) -> None:
        self._type_errors.pop(wire_type, None)

    # ------------------------------------------------------------------ consumer API

    def listen_batches(self, event_class: Any) -> AsyncIterator[Any]:
        """Yield an EventBatch (zero-copy) each time events of ``event_class`` arrive.

        The cursor is created by this call: events published after it are all seen.
        """
        self._check_usable()
        return self._listen_batches(self._ring(event_class).consumer())

    async def _listen_batches(self, consumer: Any) -> AsyncGenerator[Any, None]:
        wire_type = str(consumer.ring.wire_type)
        try:
            self._check_usable()
            while True:
                batch = consumer.drain()
                if batch:
                    self._note_batch(batch)
                    yield batch
                    continue
                if self._check_end(wire_type):
                    return
                await self._wait()
        finally:
            consumer.close()

    def listen(self, event_class: Any) -> AsyncIterator[Any]:
        """Yield every event of ``event_class`` (this iterator's own cursor: fan-out).

        The cursor is created by this call: events published after it are all seen. The
        iterator (:class:`fastfeed._native.ring.EventStream`) is written in Cython: while the
        last drained batch has events left, ``__anext__`` completes at once.
        """
        self._check_usable()
        return EventStream(self, self._ring(event_class).consumer())

    def _model_of(self, event_class: Any) -> type | None:
        """The class whose instances ``get_event(event_class)`` hands out instead of fastfeed's
        events (wrapping them: ``fastfeed._native.lazymodel.wrap``), or None."""
        return None

    def _cursor(self, event_class: Any) -> tuple[EventCursor, type | None]:
        """get_event's shared cursor of ``event_class``'s type and the model its events are
        wrapped in (looked up once per class asked for)."""
        entry = self._cursors.get(event_class)
        if entry is None:
            entry = (self._shared_for(event_class), self._model_of(event_class))
            self._cursors[event_class] = entry
        return entry

    def get_event_nowait(self, event_class: Any) -> Any:
        """The next event of the shared per-type cursor, or ``None`` when none is waiting."""
        sh, model = self._cursor(event_class)
        event = sh.next()
        return event if model is None or event is None else wrap(model, event)

    if TYPE_CHECKING:
        def get_event(self, event_class: Any) -> Awaitable[Any]:
            """Wait for the next event of the shared per-type cursor (``await
            get_event(cls)``); see :func:`fastfeed._native.ring.streamer_get_event`."""
            raise NotImplementedError
    else:
        # in C: an already-completed awaitable while the cursor has events buffered, else
        # the coroutine _get_event (misuse checks, ring, wait)
        get_event = streamer_get_event

    async def _get_event(self, sh: EventCursor, model: type | None, event_class: Any) -> Any:
        self._check_usable()
        event = sh.next()
        if event is None:
            event = await self._wait_event(sh, self._wire_type(event_class))
        return event if model is None else wrap(model, event)

    async def _wait_event(self, sh: EventCursor, wire_type: str) -> Any:
        while True:
            if self._check_end(wire_type):
                raise ConnectionClosedOK(1000, "streamer closed")
            await self._wait()
            event = sh.next()
            if event is not None:
                return event

    def latest(self, event_class: Any, symbol: str) -> Any:
        """The last event received for ``symbol`` (``None`` if none yet). O(1), kept in C."""
        ring = self._ring(event_class)
        sid = ring.symbols.id_of(symbol)
        if not sid:
            return None
        return ring.latest(sid)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters since the streamer was created (all connections).

        ``frames``, ``messages``, ``events``, ``bytes``, ``parse_errors``, ``skipped``,
        ``gaps``, ``last_recv_time``; the connection's ``state``, ``connects``,
        ``reconnects``, ``failed_attempts``, ``oversize_frames``, ``server_errors``; and the
        feed's own counters (e.g. ``channel_reopens``, ``unknown_keys``).
        """
        core = self._core
        listener = self._listener
        frames = self._frames_done + (int(listener.n_frames) if listener is not None else 0)
        gaps = self._gaps  # every cursor reports its losses through _note_batch
        ts = int(core.ts_recv)
        out: dict[str, Any] = {
            "frames": frames,
            "messages": int(core.n_messages),
            "events": int(core.n_events),
            "bytes": int(core.n_bytes),
            "parse_errors": int(core.n_errors),
            "skipped": int(core.n_skipped),
            "gaps": gaps,
            "last_recv_time": ts / 1e9 if ts else None,
        }
        out.update(self._lifecycle_stats())
        for key, value in core.stats.items():   # feed-specific counters (unknown_keys, ...)
            out.setdefault(key, value)
        return out
