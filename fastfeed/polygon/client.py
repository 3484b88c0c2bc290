"""The polygon/Massive client ``AsyncStreamClient`` (see the ``fastfeed.polygon`` docstring)."""

from __future__ import annotations

import asyncio
import collections
import enum
import inspect
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, Self

from fastfeed._connection import BackoffConfig, Endpoint, new_dropin
from fastfeed._fanout import FanoutMixin
from fastfeed.errors import (
    AuthenticationError,
    ConnectionClosedError,
    ConnectionClosedOK,
    MaxConnectionsError,
)
from fastfeed.streamer import Streamer

__all__ = [
    "AsyncStreamClient",
    "StreamCluster",
    "StreamHost",
    "StreamServicePrefix",
    "HOST",
    "DELAYED_HOST",
    "STREAM_CLUSTER_PREFIX_MAP",
    "ensure_prefix",
    "Deliver",
]

log = logging.getLogger("fastfeed.polygon")

HOST = "socket.polygon.io"
DELAYED_HOST = "delayed.polygon.io"
STREAM_CLUSTER_PREFIX_MAP = {"options": "O:", "forex": "C:", "crypto": "X:", "indices": "I:"}

Deliver = Literal["dict", "event", "batch"]
Handler = Callable[[Any], Any]


class StreamCluster(enum.Enum):
    """The cluster (websocket path) to connect to."""

    STOCKS = "stocks"
    OPTIONS = "options"
    FOREX = "forex"
    CRYPTO = "crypto"
    INDICES = "indices"


class StreamHost(enum.Enum):
    """Websocket hosts."""

    REAL_TIME = "socket.polygon.io"
    BUSINESS = "business.polygon.io"
    DELAYED = "delayed.polygon.io"


class StreamServicePrefix(enum.Enum):
    """Channel prefixes (``ev`` codes); the OPTION_* / INDICES_* members are aliases."""

    STOCK_TRADES = "T"
    STOCK_QUOTES = "Q"
    STOCK_MINUTE_AGGREGATES = "AM"
    STOCK_SECOND_AGGREGATES = "A"
    STOCK_LULD = "LULD"
    STOCK_IMBALANCES = "NOI"
    FOREX_QUOTES = "C"
    FOREX_MINUTE_AGGREGATES = "CA"
    CRYPTO_TRADES = "XT"
    CRYPTO_QUOTES = "XQ"
    CRYPTO_LEVEL2 = "XL2"
    CRYPTO_MINUTE_AGGREGATES = "XA"
    STATUS = "status"
    OPTION_TRADES = "T"  # noqa: PIE796 - an alias, as in the SDK
    OPTION_QUOTES = "Q"  # noqa: PIE796 - an alias, as in the SDK
    OPTION_MINUTE_AGGREGATES = "AM"  # noqa: PIE796 - an alias, as in the SDK
    OPTION_SECOND_AGGREGATES = "A"  # noqa: PIE796 - an alias, as in the SDK
    FAIR_MARKET_VALUE = "FMV"
    INDICES_MINUTE_AGGREGATES = "AM"  # noqa: PIE796 - an alias, as in the SDK
    INDICES_SECOND_AGGREGATES = "A"  # noqa: PIE796 - an alias, as in the SDK
    INDICES_VALUE = "V"


def ensure_prefix(symbol: str, _prefix: str = "O:") -> str:
    """``symbol`` upper-cased with ``_prefix`` added when missing (the package's helper)."""
    if symbol.upper().startswith(_prefix):
        return symbol.upper()
    return f"{_prefix}{symbol.upper()}"


def _enum_value(val: Any) -> str | None:
    """The package's ``_change_enum``: Enum -> value, str -> itself, else None."""
    if isinstance(val, enum.Enum):
        v = val.value
        return v if isinstance(v, str) else None
    if isinstance(val, str):
        return val
    return None


_MERGED = object()  # backlog tag: a wire-order run over several batches


class _Entry:
    __slots__ = ("fn", "deliver")

    def __init__(self, fn: Handler, deliver: str) -> None:
        self.fn = fn
        self.deliver = deliver


_DATA_EVS = ("T", "Q", "AM", "A", "LULD", "NOI", "C", "CA", "CAS", "XT", "XQ", "XL2", "XA",
             "XAS", "FMV", "V", "LV")


class AsyncStreamClient(FanoutMixin, Streamer):
    """The ``polygon`` package's ``AsyncStreamClient`` API on fastfeed (see module docstring).

    ``AsyncStreamClient(api_key, cluster, host="socket.polygon.io", ping_interval=20,
    ping_timeout=19, max_message_size=1048576, max_memory_queue=32, read_limit=65536,
    write_limit=65536, *, handler_errors="log", reconnect_fn=None, disconnect_fn=None)``.

    ``ping_interval`` / ``ping_timeout``: a websocket ping every ``ping_interval`` s; the
    connection is replaced when nothing (not even a pong) arrived for ``ping_interval +
    ping_timeout`` s (``None`` disables). ``max_message_size``: largest message accepted.
    ``max_memory_queue``, ``read_limit``, ``write_limit`` are accepted and kept for
    compatibility (fastfeed's bounded rings replace the websockets queue). ``ssl_context``:
    TLS settings for ``wss://`` (default: verified). ``open_timeout``: seconds to connect and
    authenticate (default 10). ``on_state_change=`` / ``reconnect_fn=`` / ``disconnect_fn=``:
    see :class:`fastfeed.streamer.Streamer`. ``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``:
    read from a fastfeed hub instead of polygon (``fastfeed.hub``; the key is not sent).
    """

    def __new__(cls, *args: Any, hub: str | None = None, **kwargs: Any) -> Self:
        """``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``: read from a fastfeed hub
        instead of polygon, same API (``fastfeed.hub._dropins``; ``api_key`` is not used)."""
        obj: Self = new_dropin(cls, hub)
        return obj

    def __init__(
        self,
        api_key: str,
        cluster: StreamCluster | str,
        host: StreamHost | str = HOST,
        ping_interval: int | float | None = 20,
        ping_timeout: int | float | None = 19,
        max_message_size: int = 1048576,
        max_memory_queue: int | None = 32,
        read_limit: int = 65536,
        write_limit: int = 65536,
        *,
        handler_errors: Literal["log", "raise"] = "log",
        overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest",
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float | None = None,
        hub: str | None = None,
        **streamer_kwargs: Any,
    ) -> None:
        from fastfeed.polygon.session import PolygonSession

        cluster_s = _enum_value(cluster)
        host_s = _enum_value(host)
        if cluster_s is None:
            raise ValueError(f"invalid cluster {cluster!r}")
        if host_s is None:
            raise ValueError(f"invalid host {host!r}")
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty str")
        if handler_errors not in ("log", "raise"):
            raise ValueError("handler_errors must be 'log' or 'raise'")
        if overflow not in ("drop_oldest", "backpressure"):
            raise ValueError("overflow must be 'drop_oldest' or 'backpressure'")
        # overflow: see fastfeed.tastytrade.DXLinkStreamer (drop-oldest counts losses in
        # stats["gaps"]; backpressure pauses reading the socket instead of losing events)
        core = PolygonSession(cluster_s, api_key, policy=overflow)
        super().__init__(core, **streamer_kwargs)
        self._cluster = cluster_s
        self._host = host_s
        if "://" in host_s:
            self._url = f"{host_s.rstrip('/')}/{cluster_s}"
        else:
            self._url = f"wss://{host_s}/{cluster_s}"
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_message_size = max_message_size
        self.max_message_size = max_message_size
        self._ssl_context = ssl_context
        if open_timeout is not None:
            self.open_timeout = float(open_timeout)
        self._max_memory_queue = max_memory_queue
        self._read_limit = read_limit
        self._write_limit = write_limit
        self.auth_retries = 0
        self.handler_errors = handler_errors
        self._handlers: dict[str, _Entry] = {}
        self._consumers: dict[str, Any] = {}
        self._status_q: collections.deque[Any] = collections.deque()
        # (ev, batch, i), or (_MERGED, evs, batches, order, i) for a wire-order run
        self._backlog: list[tuple[Any, ...]] = []
        # reconnect policy (handle_messages arguments)
        self._reconnect_enabled = False
        self.max_reconnect_attempts = 5
        self._user_restart = False
        self._close_was_clean = False
        self._last_ping = 0.0
        #: ``slow_consumer`` statuses received
        self.slow_consumer_count = 0
        self._set_delay(5)
        # reconnection_delay is for reconnects; the first connection retries (HTTP 5xx/429,
        # refused) inside open_timeout with the websockets backoff (WEBSOCKETS_BACKOFF_*)
        self.first_backoff_config = BackoffConfig.from_env()
        self._handlers["status"] = _Entry(self._default_process_message, "dict")

    def __repr__(self) -> str:
        return (f"<fastfeed.polygon.AsyncStreamClient url={self._url!r} "
                f"connected={self.connected} subscriptions={len(self.subscriptions)}>")

    # ------------------------------------------------------------------ properties

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The current channel set (``"T.AAPL"``...), replayed once after every reconnect."""
        subs: tuple[str, ...] = self._core.subscriptions
        return subs

    @property
    def url(self) -> str:
        return self._url

    # ------------------------------------------------------------------ connection hooks

    def _set_delay(self, delay: float) -> None:
        d = float(delay)
        if d < 0:
            raise ValueError("reconnection_delay must be >= 0")
        self.backoff_config = BackoffConfig(initial_delay=d, min_delay=d, max_delay=d, factor=1.0)
        self._rand = lambda: 1.0

    async def _endpoint(self) -> Endpoint:
        if self.n_ready and not self._user_restart:
            log.warning("polygon: reconnecting (failed attempts so far: %d/%s)",
                        self._consecutive_failures,
                        self.max_reconnect_attempts if self.max_reconnect_attempts else "inf")
        self._user_restart = False
        return Endpoint(self._url, ssl_context=self._ssl_context)

    def _stop_after_loss(self) -> BaseException | None:
        code, reason = self._last_close
        if not self._reconnect_enabled:
            cls = ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError
            return cls(code, reason)
        if self._close_was_clean:
            return ConnectionClosedOK(code, reason)
        return None

    def _connection_ended(self, listener: Any) -> None:
        if listener is self._listener:
            # the server closed a ready connection normally (1000/1001): the stream is over
            hs = getattr(getattr(listener, "transport", None), "close_handshake", None)
            recv = getattr(hs, "recv", None)
            self._close_was_clean = bool(
                self._ready and recv is not None and getattr(hs, "recv_then_sent", False)
                and int(recv.code) in (1000, 1001))
            # reset the session here, not in _on_open: the server's first frames (connected,
            # auth_success) may be decoded before the manager gets to run _on_open
            self._core.connection_lost()
        super()._connection_ended(listener)

    def _on_open(self) -> None:
        self._last_ping = time.monotonic()

    def _on_control(self, events: list[Any]) -> None:
        from fastfeed._native.polygon import (
            AuthFailed,
            AuthSuccess,
            AuthTimeout,
            ForceDisconnect,
            MaxConnections,
            SlowConsumer,
            StatusError,
        )

        for ev in events:
            self._status_q.append(ev)
            cls = type(ev)
            if cls is AuthSuccess:
                self._set_ready()
            elif cls is AuthFailed:
                self._fail(AuthenticationError(f"polygon: {ev.message or 'authentication failed'}"))
            elif cls is MaxConnections:
                self._fail(MaxConnectionsError(f"polygon: {ev.message or 'max_connections'}"))
            elif cls is SlowConsumer:
                self.slow_consumer_count += 1
                log.warning("polygon: server reported slow_consumer (%s); it will close the "
                            "connection", ev.message)
            elif cls is ForceDisconnect:
                log.warning("polygon: server sent force_disconnect (%s)", ev.message)
            elif cls is AuthTimeout:
                log.warning("polygon: server sent auth_timeout (%s)", ev.message)
            elif cls is StatusError:
                self._record_server_error("error", ev.message or "", None)
        self._on_wake_data()

    def _silence_timeout(self) -> float | None:
        if self._ping_interval is None or self._ping_timeout is None:
            return None
        return float(self._ping_interval) + float(self._ping_timeout)

    def _on_tick(self, now: float) -> None:
        if self._ping_interval is None:
            return
        if now - self._last_ping >= float(self._ping_interval):
            self._last_ping = now
            listener = self._listener
            if listener is not None and listener.connected:
                try:
                    listener.transport.send_ping()
                except Exception:  # noqa: BLE001 - transport went away: the reader reports it  # pragma: no cover
                    pass

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AsyncStreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_stream()

    async def close_stream(self) -> None:
        """Close the connection for good (a no-op when never connected)."""
        await self.close()
        self._fanout_hub().end_all()

    async def _ensure_started(self) -> None:
        try:
            if self._task is None:
                await self.start()
            elif self._error is not None:
                raise self._error
        except Exception:
            # statuses that explain the failure (auth_failed, max_connections) still reach
            # the status handler, and events received before it their handlers
            while self._status_q:
                await self._run_status(self._status_q.popleft())
            if self._has_pending():
                await self._dispatch_available()
            raise

    async def login(self, key: str | None = None) -> None:
        """Connect and authenticate (the first subscribe does it too). ``key`` replaces the key."""
        if key is not None:
            self._core.auth(key)  # stores the key (and queues an auth message)
            listener = self._listener
            if listener is not None and listener.connected:
                listener.flush()
            else:
                self._core.data_to_send()  # sent after the server's "connected" instead
        await self._ensure_started()

    async def reconnect(self) -> tuple[bool, str]:
        """Drop the connection (if any) and connect again; subscriptions are replayed once."""
        log.info("polygon: reconnecting on request")
        try:
            if self._task is not None:
                self._closed = False
                await Streamer.close(self)
            self._closed = False
            self._closing = False
            self._error = None
            self._task = None
            self._ready_event = None
            self._consecutive_failures = 0
            self._delays = None
            self._user_restart = True
            await self.start()
        except Exception as exc:  # noqa: BLE001 - the SDK's reconnect() hands the error back as text
            return False, f"Reconnect Failed. Exception: {type(exc).__name__}: {exc}"
        return True, "Reconnect Successful"

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _default_process_message(update: Any) -> None:
        """The package's default handler: print the message."""
        print(update)

    def _set_handler(self, ev: str, fn: Handler | None, deliver: str) -> None:
        if deliver not in ("dict", "event", "batch"):
            raise ValueError("deliver must be 'dict', 'event' or 'batch'")
        if fn is not None and not callable(fn):
            raise TypeError("handler_function must be callable")
        if ev == "status" and deliver == "batch":
            raise ValueError("status events cannot be delivered as batches")
        self._handlers[ev] = _Entry(fn or self._default_process_message, deliver)
        if ev != "status" and ev not in self._consumers and ev in self._core.rings:
            self._consumers[ev] = self._core.rings[ev].consumer()
            self._prepare_type(ev)

    async def change_handler(self, service_prefix: StreamServicePrefix | str,
                             handler_function: Handler, *, deliver: Deliver = "dict") -> None:
        """Use ``handler_function`` for ``service_prefix`` (any prefix, incl. ``status``)."""
        ev = _enum_value(service_prefix)
        if ev is None:
            raise ValueError(f"invalid service prefix {service_prefix!r}")
        ev = ev.rstrip(".")
        if ev != "status" and ev not in self._core.rings:
            raise ValueError(f"unknown service prefix {ev!r}")
        self._set_handler(ev, handler_function, deliver)

    def _on_handler_error(self, ev: str, exc: BaseException) -> None:
        if self.handler_errors == "raise":
            raise exc
        log.error("polygon: the %r handler raised %s: %s", ev, type(exc).__name__, exc,
                  exc_info=exc)

    async def _settle(self, ev: str, result: Any, exc: Exception | None) -> None:
        """Finish one handler call: await its awaitable result (async handlers run in order),
        then log -- or re-raise with ``handler_errors="raise"`` -- the exception it raised."""
        if exc is None and result is not None and inspect.isawaitable(result):
            try:
                await result
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a user handler's error is logged or re-raised
                exc = e
        if exc is not None:
            self._on_handler_error(ev, exc)

    async def _call(self, ev: str, fn: Callable[[Any], Any], item: Any) -> None:
        """``fn(item)`` for a handler outside the C dispatch loops, settled."""
        try:
            r = fn(item)
        except Exception as exc:  # noqa: BLE001 - a user handler's error is logged or re-raised
            await self._settle(ev, None, exc)
            return
        await self._settle(ev, r, None)

    async def _call_batch_handler(self, ev: str, cons: Any, fn: Callable[[Any], Any]) -> int:
        """Drain ``cons`` into one EventBatch for a ``deliver="batch"`` handler.

        The batch reads the ring in place unless the handler keeps it (see
        ``Consumer.call_with_batch``): the batch path makes no copy of the records.
        """
        total = 0
        for _ in range(2):  # records that wrap around the ring's end come in a second batch
            n, gaps, r, exc = cons.call_with_batch(fn)
            if n or gaps:
                self._note_drained(int(gaps), cons.ring.event_class.__name__)
            total += int(n)
            await self._settle(ev, r, exc)
            if not n or not cons.available:
                break
        return total

    async def _run_batch(self, ev: str, batch: Any, start: int) -> None:
        from fastfeed._native.pgdict import dispatch_dicts, dispatch_events

        entry = self._handlers.get(ev)
        if entry is None:
            return
        n = len(batch)
        if entry.deliver == "batch":
            await self._call(ev, entry.fn, batch)
            return
        loop_fn = dispatch_dicts if entry.deliver == "dict" else dispatch_events
        fn = entry.fn

        def step(i: int) -> tuple[int, Any, bool, str]:
            j, value, is_exc = loop_fn(batch, i, fn)
            return j, value, is_exc, ev

        await self._drive(step, n, start, lambda i: (ev, batch, i))

    async def _drive(self, step: Callable[[int], tuple[int, Any, bool, str]], n: int, start: int,
                     resume: Callable[[int], tuple[Any, ...]]) -> None:
        """Run a C dispatch loop (pgdict) from ``start`` to ``n``.

        ``step(i)`` calls handlers from position ``i`` and stops early on an awaitable (awaited
        here, so async handlers run in order) or an exception (logged, or re-raised with
        ``handler_errors="raise"``: then ``resume(i)`` stays in the backlog and the next
        ``handle_messages()`` goes on from the next event -- nothing received is skipped).
        """
        i = start
        while i < n:
            i, value, is_exc, ev = step(i)
            if is_exc:
                exc = value
            elif value is not None and inspect.isawaitable(value):
                try:
                    await value
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - a user handler's error is logged or re-raised
                    exc = e
            else:
                continue
            entry = resume(i) if i < n else None
            if entry is not None:
                self._backlog.append(entry)
            self._on_handler_error(ev, exc)
            if entry is not None:
                self._backlog.pop()

    async def _run_status(self, ev: Any) -> None:
        entry = self._handlers.get("status")
        if entry is None:
            return
        item = ev if entry.deliver == "event" else {
            "ev": "status", "status": ev.status, "message": ev.message}
        await self._call("status", entry.fn, item)

    async def _run_merged(self, evs: list[str], batches: list[Any], order: bytes,
                          start: int) -> None:
        """Per-event handlers of several types, called in wire order (see pgdict.merge_order)."""
        from fastfeed._native.pgdict import dispatch_merged

        entries = [self._handlers.get(ev) for ev in evs]
        handlers = [e.fn if e is not None else None for e in entries]
        as_dicts = [e is not None and e.deliver == "dict" for e in entries]

        def step(i: int) -> tuple[int, Any, bool, str]:
            j, value, is_exc, b = dispatch_merged(batches, handlers, as_dicts, order, i)
            return j, value, is_exc, evs[b] if b >= 0 else ""

        await self._drive(step, len(order), start, lambda i: (_MERGED, evs, batches, order, i))

    async def _dispatch_available(self) -> int:
        """Hand everything received so far to the handlers; returns the number of events.

        Per-event handlers (dicts, event objects) are called in wire order across event types
        (a T, then a Q, then a T ... as the frames had them); ``deliver="batch"`` handlers get
        one EventBatch per type.
        """
        from fastfeed._native.pgdict import merge_order

        count = 0
        while self._backlog:
            item = self._backlog.pop(0)
            if item[0] is _MERGED:
                _, evs, batches, order, i = item
                count += len(order) - i
                await self._run_merged(evs, batches, order, i)
            else:
                ev, batch, i = item
                count += len(batch) - i
                await self._run_batch(ev, batch, i)
        while self._status_q:
            count += 1
            await self._run_status(self._status_q.popleft())
        per_event: list[tuple[str, Any]] = []
        for ev, cons in list(self._consumers.items()):
            entry = self._handlers.get(ev)
            if entry is not None and entry.deliver == "batch":
                count += await self._call_batch_handler(ev, cons, entry.fn)
                continue
            batch = cons.drain()
            if not batch:
                continue
            self._note_batch(batch)
            count += len(batch)
            per_event.append((ev, batch))
        if len(per_event) == 1:
            await self._run_batch(per_event[0][0], per_event[0][1], 0)
        elif per_event:
            evs = [ev for ev, _ in per_event]
            batches = [b for _, b in per_event]
            await self._run_merged(evs, batches, merge_order(batches), 0)
        return count

    def _has_pending(self) -> bool:
        if self._backlog or self._status_q:
            return True
        return any(c.available for c in self._consumers.values())

    async def _dispatch_round(self) -> None:
        while True:
            if self._has_pending():
                await self._dispatch_available()
                return
            if self._error is not None:
                raise self._error
            if self._closed or self._closing:
                raise ConnectionClosedOK(1000, "stream closed")
            await self._wait()

    # ------------------------------------------------------------------ the main loop

    async def handle_messages(self, reconnect: bool = False,
                              max_reconnection_attempts: int | bool = 5,
                              reconnection_delay: int | float = 5) -> None:
        """Receive and dispatch messages.

        ``reconnect=False``: wait for the next socket read's messages, dispatch them, return
        (call it in a loop); a lost connection raises :class:`fastfeed.ConnectionClosed`.
        ``reconnect=True``: dispatch forever, reconnecting after a lost connection up to
        ``max_reconnection_attempts`` consecutive failed attempts (``False`` = unlimited;
        reset after every successful connection), ``reconnection_delay`` s apart; raises
        :class:`fastfeed.ReconnectionExhausted` when they run out and returns when the server
        closed the connection normally (1000/1001). Either way ``auth_failed`` raises
        :class:`fastfeed.AuthenticationError` and ``max_connections``
        :class:`fastfeed.MaxConnectionsError`.
        """
        if reconnect:
            if max_reconnection_attempts is False:
                log.warning("polygon: unlimited reconnection attempts")
                self.max_reconnect_attempts = None
            elif isinstance(max_reconnection_attempts, int):
                if max_reconnection_attempts < 1:
                    raise ValueError("max_reconnection_attempts must be >= 1 or False")
                self.max_reconnect_attempts = int(max_reconnection_attempts)
            else:
                raise ValueError("max_reconnection_attempts must be an int or False")
            self._set_delay(reconnection_delay)
        self._reconnect_enabled = bool(reconnect)
        await self._ensure_started()
        if not reconnect:
            await self._dispatch_round()
            return
        while True:
            try:
                await self._dispatch_round()
            except ConnectionClosedOK:
                if self._error is None and (self._closed or self._closing):
                    return
                if isinstance(self._error, ConnectionClosedOK):
                    log.info("polygon: the server closed the connection normally; stopping")
                    return
                raise

    # ------------------------------------------------------------------ subscriptions

    def _channels_of(self, prefix: str, symbols: Any, force_upper: bool) -> list[tuple[str, Any]]:
        """[(prefix, symbols)] for the session: a ``str`` with a ``.`` is verbatim channels."""
        if isinstance(symbols, str) and "." in symbols and symbols not in ("all", "*"):
            out: list[tuple[str, Any]] = []
            for part in symbols.split(","):
                chan = part.strip()
                if not chan:
                    continue
                p, dot, ticker = chan.partition(".")
                if not dot or not ticker:
                    raise ValueError(f"bad channel {chan!r}")
                out.append((p, [ticker]))
            return out
        if isinstance(symbols, list) and not symbols:
            symbols = None
        return [(prefix, symbols)]

    async def _modify_sub(self, symbols: Any = None, action: str = "subscribe",
                          _prefix: str = "T.", force_uppercase_symbols: bool = True) -> None:
        self._check_usable()
        prefix = _prefix.rstrip(".")
        core = self._core
        chans: list[str] = []
        for p, syms in self._channels_of(prefix, symbols, force_uppercase_symbols):
            verbatim = p != prefix or (isinstance(symbols, str) and "." in symbols)
            upper = False if verbatim else force_uppercase_symbols
            # the channels (a replay's core, which sends nothing, returns None)
            if action == "subscribe":
                chans += core.subscribe(p, syms, force_uppercase=upper) or ()
                if p not in self._handlers and p in core.rings:
                    self._set_handler(p, None, "dict")
            elif action == "unsubscribe":
                chans += core.unsubscribe(p, syms, force_uppercase=upper) or ()
            else:
                raise ValueError(f"unknown action {action!r}")
        await self._channels_changed(action, chans)

    async def _channels_changed(self, action: str, channels: list[str]) -> None:
        """The session queued the (un)subscribe messages of ``channels``: send them (a client
        pointed at a hub asks the hub instead, ``fastfeed.hub._dropins``)."""
        listener = self._listener
        if listener is not None and listener.connected:
            listener.flush()
        await self._ensure_started()

    async def _sub(self, ev: str, symbols: Any, handler: Handler | None, upper: bool,
                   deliver: str) -> None:
        self._set_handler(ev, handler, deliver)
        await self._modify_sub(symbols, "subscribe", ev + ".", upper)

    async def _unsub(self, ev: str, symbols: Any) -> None:
        await self._modify_sub(symbols, "unsubscribe", ev + ".")

    def _only(self, *clusters: str) -> None:
        if self._cluster not in clusters:
            raise ValueError("This method is only available on "
                             f"{'/'.join(c.capitalize() for c in clusters)} stream.")

    # common
    async def subscribe_fair_market_value(self, symbols: list[str] | str | None = None,
                                          handler_function: Handler | None = None,
                                          force_uppercase_symbols: bool = True, *,
                                          deliver: Deliver = "dict") -> None:
        """``FMV`` (business host)."""
        await self._sub("FMV", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_fair_market_value(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("FMV", symbols)

    # stocks
    async def subscribe_stock_trades(self, symbols: list[str] | str | None = None,
                                     handler_function: Handler | None = None,
                                     force_uppercase_symbols: bool = True, *,
                                     deliver: Deliver = "dict") -> None:
        """``T`` on the stocks cluster."""
        await self._sub("T", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_stock_trades(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("T", symbols)

    async def subscribe_stock_quotes(self, symbols: list[str] | str | None = None,
                                     handler_function: Handler | None = None,
                                     force_uppercase_symbols: bool = True, *,
                                     deliver: Deliver = "dict") -> None:
        """``Q`` on the stocks cluster."""
        await self._sub("Q", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_stock_quotes(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("Q", symbols)

    async def subscribe_stock_minute_aggregates(self, symbols: list[str] | str | None = None,
                                                handler_function: Handler | None = None,
                                                force_uppercase_symbols: bool = True, *,
                                                deliver: Deliver = "dict") -> None:
        """``AM`` on the stocks cluster."""
        await self._sub("AM", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_stock_minute_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("AM", symbols)

    async def subscribe_stock_second_aggregates(self, symbols: list[str] | str | None = None,
                                                handler_function: Handler | None = None,
                                                force_uppercase_symbols: bool = True, *,
                                                deliver: Deliver = "dict") -> None:
        """``A`` on the stocks cluster."""
        await self._sub("A", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_stock_second_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("A", symbols)

    async def subscribe_stock_limit_up_limit_down(self, symbols: list[str] | str | None = None,
                                                  handler_function: Handler | None = None,
                                                  force_uppercase_symbols: bool = True, *,
                                                  deliver: Deliver = "dict") -> None:
        """``LULD``."""
        await self._sub("LULD", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_stock_limit_up_limit_down(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("LULD", symbols)

    async def subscribe_stock_imbalances(self, symbols: list[str] | str | None = None,
                                         handler_function: Handler | None = None,
                                         force_uppercase_symbols: bool = True, *,
                                         deliver: Deliver = "dict") -> None:
        """``NOI``."""
        await self._sub("NOI", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_stock_imbalances(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("NOI", symbols)

    # options (symbols get O:)
    async def subscribe_option_trades(self, symbols: list[str] | str | None = None,
                                      handler_function: Handler | None = None,
                                      force_uppercase_symbols: bool = True, *,
                                      deliver: Deliver = "dict") -> None:
        """``T`` on the options cluster (``O:`` added to symbols)."""
        await self._sub("T", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_option_trades(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("T", symbols)

    async def subscribe_option_quotes(self, symbols: list[str] | str | None = None,
                                      handler_function: Handler | None = None,
                                      force_uppercase_symbols: bool = True, *,
                                      deliver: Deliver = "dict") -> None:
        """``Q`` on the options cluster."""
        await self._sub("Q", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_option_quotes(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("Q", symbols)

    async def subscribe_option_minute_aggregates(self, symbols: list[str] | str | None = None,
                                                 handler_function: Handler | None = None,
                                                 force_uppercase_symbols: bool = True, *,
                                                 deliver: Deliver = "dict") -> None:
        """``AM`` on the options cluster."""
        await self._sub("AM", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_option_minute_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("AM", symbols)

    async def subscribe_option_second_aggregates(self, symbols: list[str] | str | None = None,
                                                 handler_function: Handler | None = None,
                                                 force_uppercase_symbols: bool = True, *,
                                                 deliver: Deliver = "dict") -> None:
        """``A`` on the options cluster."""
        await self._sub("A", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_option_second_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("A", symbols)

    # forex
    async def subscribe_forex_quotes(self, symbols: list[str] | str | None = None,
                                     handler_function: Handler | None = None,
                                     force_uppercase_symbols: bool = True, *,
                                     deliver: Deliver = "dict") -> None:
        """``C`` (pairs as ``USD/CNH``)."""
        await self._sub("C", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_forex_quotes(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("C", symbols)

    async def subscribe_forex_minute_aggregates(self, symbols: list[str] | str | None = None,
                                                handler_function: Handler | None = None,
                                                force_uppercase_symbols: bool = True, *,
                                                deliver: Deliver = "dict") -> None:
        """``CA``."""
        await self._sub("CA", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_forex_minute_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("CA", symbols)

    async def subscribe_forex_second_aggregates(self, symbols: list[str] | str | None = None,
                                                handler_function: Handler | None = None,
                                                force_uppercase_symbols: bool = True, *,
                                                deliver: Deliver = "dict") -> None:
        """``CAS``."""
        await self._sub("CAS", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_forex_second_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("CAS", symbols)

    # crypto
    async def subscribe_crypto_trades(self, symbols: list[str] | str | None = None,
                                      handler_function: Handler | None = None,
                                      force_uppercase_symbols: bool = True, *,
                                      deliver: Deliver = "dict") -> None:
        """``XT`` (pairs as ``BTC-USD``)."""
        await self._sub("XT", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_crypto_trades(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("XT", symbols)

    async def subscribe_crypto_quotes(self, symbols: list[str] | str | None = None,
                                      handler_function: Handler | None = None,
                                      force_uppercase_symbols: bool = True, *,
                                      deliver: Deliver = "dict") -> None:
        """``XQ``."""
        await self._sub("XQ", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_crypto_quotes(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("XQ", symbols)

    async def subscribe_crypto_minute_aggregates(self, symbols: list[str] | str | None = None,
                                                 handler_function: Handler | None = None,
                                                 force_uppercase_symbols: bool = True, *,
                                                 deliver: Deliver = "dict") -> None:
        """``XA``."""
        await self._sub("XA", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_crypto_minute_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("XA", symbols)

    async def subscribe_crypto_second_aggregates(self, symbols: list[str] | str | None = None,
                                                 handler_function: Handler | None = None,
                                                 force_uppercase_symbols: bool = True, *,
                                                 deliver: Deliver = "dict") -> None:
        """``XAS``."""
        await self._sub("XAS", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_crypto_second_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("XAS", symbols)

    async def subscribe_crypto_level2_book(self, symbols: list[str] | str | None = None,
                                           handler_function: Handler | None = None,
                                           force_uppercase_symbols: bool = True, *,
                                           deliver: Deliver = "dict") -> None:
        """``XL2``."""
        await self._sub("XL2", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_crypto_level2_book(self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("XL2", symbols)

    # indices (symbols get I:)
    async def subscribe_indices_minute_aggregates(self, symbols: list[str] | str | None = None,
                                                  handler_function: Handler | None = None,
                                                  force_uppercase_symbols: bool = True, *,
                                                  deliver: Deliver = "dict") -> None:
        """``AM`` on the indices cluster (``I:`` added to symbols)."""
        await self._sub("AM", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_indices_minute_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("AM", symbols)

    async def subscribe_indices_second_aggregates(self, symbols: list[str] | str | None = None,
                                                  handler_function: Handler | None = None,
                                                  force_uppercase_symbols: bool = True, *,
                                                  deliver: Deliver = "dict") -> None:
        """``A`` on the indices cluster."""
        await self._sub("A", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_indices_second_aggregates(
            self, symbols: list[str] | str | None = None) -> None:
        await self._unsub("A", symbols)

    async def subscribe_index_value(self, symbols: list[str] | str | None = None,
                                    handler_function: Handler | None = None,
                                    force_uppercase_symbols: bool = True, *,
                                    deliver: Deliver = "dict") -> None:
        """``V`` (indices cluster only, else ``ValueError``)."""
        self._only("indices")
        await self._sub("V", symbols, handler_function, force_uppercase_symbols, deliver)

    async def unsubscribe_index_value(self, symbols: list[str] | str | None = None) -> None:
        self._only("indices")
        await self._unsub("V", symbols)

    # the spelling of the sync client and of the package's docs
    unsubscribe_indices_value = unsubscribe_index_value

    # ------------------------------------------------------------------ fan-out (dict events)

    def _fanout_items(self, batch: Any) -> Iterable[Any]:
        from fastfeed._native.pgdict import to_dicts

        items: list[Any] = to_dicts(batch)
        return items

    def _fanout_types(self) -> list[str]:
        return [ev for ev in _DATA_EVS if ev in self._core.rings]

