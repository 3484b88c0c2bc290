"""The connection manager shared by every fastfeed streamer (layer 4).

It owns one websocket at a time (picows + :class:`fastfeed._native.transport.FeedListener`)
feeding one long-lived :class:`ProtocolCore` (the core, and therefore its rings and every
consumer cursor, survives reconnects), and runs the reconnect loop around it.

Reuse it by subclassing :class:`ConnectionManager` (``fastfeed.streamer.Streamer`` does, and the
DXLink / polygon / account streamers subclass that) and overriding the protocol hooks:

``async _endpoint() -> Endpoint``
    Where to connect (url, ssl_context, proxy, extra headers). Called before **every** attempt,
    so fresh tokens can be fetched here. Exceptions go through :meth:`process_exception`.
``_on_open() -> None``
    A websocket is up: reset the per-connection protocol state and queue the opening messages
    in ``self._core.outbox`` (they are flushed right after).
``_on_control(events: list) -> None``
    Control events decoded by the core (drained once per socket read). Call
    :meth:`_set_ready` when the protocol is usable (e.g. DXLink AUTHORIZED),
    :meth:`_auth_failed` when credentials were refused, :meth:`_fail` with a
    :class:`~fastfeed.errors.FastFeedError` for anything fatal (e.g. a DXLink ERROR).
``_on_ready(reconnected: bool) -> None``
    The protocol is usable: replay the desired subscriptions (``self._desired``). Runs on
    every connection, before ``reconnect_fn``.
``_on_tick(now: float) -> None``
    Called about every ``_tick_interval()`` seconds (``time.monotonic()``) while connected:
    queue keepalives when due.
``_silence_timeout() -> float | None``
    Seconds without any byte received after which the connection is declared dead and
    replaced (``None``: no liveness check).

Reconnection (websockets-compatible): delays come from :func:`backoff`, configured from the
``WEBSOCKETS_BACKOFF_*`` environment variables (read when the manager is created): after a
*failed* attempt ``random() * INITIAL``, then ``MIN``, ``MIN * FACTOR`` ... capped at ``MAX``;
a connection that had become ready and then dropped reconnects at once. Retryable errors
(``process_exception`` returns ``None``): ``OSError`` (not TLS errors), timeouts, an upgrade
refused with HTTP 500/502/503/504, a closed connection (any close code but 1009), a silent
connection. Anything else ends the loop and the error is delivered to the consumers
(``_fail``); an upgrade refused with 401/403 becomes :class:`AuthenticationError`.

Callbacks (tastytrade 10.2–11.1 semantics): ``disconnect_fn(streamer, *disconnect_args)`` is
scheduled as soon as a connection ends (also on :meth:`close`); ``reconnect_fn(streamer,
*reconnect_args)`` after a re-authorization, never on the first connect. Both are
coroutines run as tasks; their exceptions are logged, never fatal.

:meth:`close` never reconnects, is idempotent, and waits for the callback tasks.

Subscriptions: :class:`DesiredSubscriptions` is the set a streamer wants; ``_on_ready``
replays it in full after every (re)connect, so events resume even if ``reconnect_fn`` does
nothing, and replaying twice is harmless (it is a set).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from fastfeed._loop import install_uvloop_policy
from fastfeed.errors import (
    AuthenticationError,
    ConnectionClosedError,
    EventLoopError,
    StreamerClosedError,
    StreamerError,
)

__all__ = [
    "BackoffConfig",
    "backoff",
    "process_exception",
    "Endpoint",
    "DesiredSubscriptions",
    "ConnectionManager",
    "Callback",
]

log = logging.getLogger("fastfeed.connection")

Callback = Callable[..., Awaitable[None]]

_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_AUTH_STATUS = frozenset({401, 403})


# ---------------------------------------------------------------------------------- backoff


@dataclass(frozen=True)
class BackoffConfig:
    """Reconnect delays, websockets-compatible (same env variables, same defaults)."""

    initial_delay: float = 5.0
    min_delay: float = 3.1
    max_delay: float = 90.0
    factor: float = 1.618

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> BackoffConfig:
        """Read ``WEBSOCKETS_BACKOFF_{INITIAL_DELAY,MIN_DELAY,MAX_DELAY,FACTOR}``."""
        env = os.environ if environ is None else environ

        def get(name: str, default: float) -> float:
            raw = env.get(f"WEBSOCKETS_BACKOFF_{name}")
            if raw is None or raw.strip() == "":
                return default
            try:
                return float(raw)
            except ValueError:
                log.warning("ignoring WEBSOCKETS_BACKOFF_%s=%r (not a number)", name, raw)
                return default

        return cls(
            initial_delay=get("INITIAL_DELAY", cls.initial_delay),
            min_delay=get("MIN_DELAY", cls.min_delay),
            max_delay=get("MAX_DELAY", cls.max_delay),
            factor=get("FACTOR", cls.factor),
        )


def backoff(
    config: BackoffConfig | None = None, rand: Callable[[], float] = random.random
) -> Iterator[float]:
    """Delays before successive reconnection attempts after failures (an endless generator).

    First ``rand() * initial_delay`` (jitter, so many clients do not reconnect in lock-step),
    then ``min_delay``, ``min_delay * factor``, ... capped at ``max_delay``.
    """
    cfg = config if config is not None else BackoffConfig.from_env()
    yield rand() * cfg.initial_delay
    delay = cfg.min_delay
    while delay < cfg.max_delay:
        yield delay
        delay *= cfg.factor
    while True:
        yield cfg.max_delay


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status", None)
    if status is None:
        return None
    try:
        return int(status)
    except (TypeError, ValueError):
        return None


def process_exception(exc: BaseException) -> BaseException | None:
    """``None`` when the failed attempt should be retried, else the exception to report.

    Retried: network errors (``OSError`` except TLS errors), timeouts, ``EOFError``, a
    closed connection, an upgrade refused with 500/502/503/504 (or without a status, e.g.
    handshake EOF). 401/403 on the upgrade -> :class:`AuthenticationError`. Anything else
    (TLS verification failure, bad URL, programming errors) is returned as is.
    """
    if isinstance(exc, ssl.SSLError):
        return exc
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError, EOFError,
                        ConnectionClosedError)):
        return None
    try:
        from picows import WSError, WSHandshakeError
    except ImportError:  # pragma: no cover
        return exc
    if isinstance(exc, WSHandshakeError):
        status = _http_status(exc)
        if status is None or status in _RETRYABLE_STATUS:
            return None
        if status in _AUTH_STATUS:
            return AuthenticationError(f"websocket upgrade refused with HTTP {status}")
        return exc
    if isinstance(exc, WSError):
        return None
    return exc


# ---------------------------------------------------------------------------------- endpoint


@dataclass
class Endpoint:
    """Where and how to connect. ``ssl_context`` ``None`` = verified default for ``wss://``."""

    url: str
    ssl_context: ssl.SSLContext | None = None
    proxy: str | None = None
    extra_headers: dict[str, str] | None = None

    def __repr__(self) -> str:  # never show query strings (may carry credentials)
        return f"Endpoint({self.url.split('?', 1)[0]!r}, proxy={'set' if self.proxy else None})"


# ---------------------------------------------------------------------------------- subscriptions


@dataclass
class DesiredSubscriptions:
    """What the user wants, replayed after every reconnect.

    ``items[event_type]`` maps a symbol to its parameters (e.g. DXLink Candle ``fromTime``,
    ``None`` when there are none). ``options[event_type]`` holds per-type settings such as the
    aggregation period. Insertion order is kept (replay order = subscription order).
    """

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, event_type: str, symbols: Iterable[str], params: Any = None) -> list[str]:
        """Add symbols; returns the ones that were new or changed."""
        d = self.items.setdefault(event_type, {})
        changed = []
        for s in symbols:
            if s not in d or d[s] != params:
                changed.append(s)
            d[s] = params
        return changed

    def remove(self, event_type: str, symbols: Iterable[str]) -> list[str]:
        d = self.items.get(event_type)
        if not d:
            return []
        gone = [s for s in symbols if d.pop(s, _MISSING) is not _MISSING]
        if not d:
            self.items.pop(event_type, None)
        return gone

    def clear(self, event_type: str) -> list[str]:
        return list(self.items.pop(event_type, {}))

    def symbols(self, event_type: str) -> dict[str, Any]:
        return self.items.get(event_type, {})

    def __len__(self) -> int:
        return sum(len(d) for d in self.items.values())


_MISSING = object()


def _as_symbols(symbols: Iterable[str] | str) -> list[str]:
    """A single ``str`` is one symbol (tastytrade 11.x iterated it per character)."""
    if isinstance(symbols, str):
        return [symbols]
    out = []
    for s in symbols:
        if not isinstance(s, str):
            raise TypeError(f"symbols must be strings, got {type(s).__name__}")
        out.append(s)
    return out


# ---------------------------------------------------------------------------------- manager


class ConnectionManager:
    """Runs the reconnect loop; see the module docstring for the hooks subclasses override."""

    #: seconds to wait for the protocol to become ready after the websocket is up
    open_timeout: float = 10.0
    #: picows upgrade timeout
    handshake_timeout: float = 10.0
    #: largest websocket frame / reassembled message accepted
    max_message_size: int = 64 * 1024 * 1024
    #: failed authorizations retried (with fresh credentials) before AuthenticationError
    auth_retries: int = 1
    #: delay before an authorization retry
    auth_retry_delay: float = 0.5
    #: SO_RCVBUF set before connect (0 = OS autotuning). Bounded so that one socket read never
    #: holds more events than a ring (picows#117: an unbounded read buffer turns a backlog into
    #: multi-MB reads); measured: 3.7 M ev/s with gaps at the default vs 6.7 M ev/s without.
    rcvbuf: int = 1024 * 1024

    def __init__(
        self,
        core: Any,
        *,
        reconnect_fn: Callback | None = None,
        reconnect_args: tuple[Any, ...] = (),
        disconnect_fn: Callback | None = None,
        disconnect_args: tuple[Any, ...] = (),
        backoff_config: BackoffConfig | None = None,
        logger: logging.Logger | None = None,
        busy_poll: bool = False,
    ) -> None:
        install_uvloop_policy()
        self._core = core
        #: opt-in: keep the event loop polling (never sleeping in epoll) while the stream is
        #: open -- no idle-CPU wake-up on each frame, the lowest latency, at the cost of one
        #: busy core. Off by default.
        self.busy_poll = busy_poll
        self._spin: asyncio.Handle | None = None
        self.reconnect_fn = reconnect_fn
        self.reconnect_args = tuple(reconnect_args) if reconnect_args else ()
        self.disconnect_fn = disconnect_fn
        self.disconnect_args = tuple(disconnect_args) if disconnect_args else ()
        self.backoff_config = backoff_config or BackoffConfig.from_env()
        self._log = logger or log
        self._desired = DesiredSubscriptions()
        self._listener: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self._ready = False
        self._ready_event: asyncio.Event | None = None
        self._conn_ready: asyncio.Future[None] | None = None
        self._conn_done: asyncio.Future[None] | None = None
        self._auth_failures = 0
        self._auth_retry_pending = False
        self.n_connects = 0
        self.n_reconnects = 0
        self._frames_done = 0
        self._last_close: tuple[int | None, str] = (None, "")
        #: the attached fastfeed.record Recorder (``Streamer.record``), if any
        self._recorder: Any = None
        # injectable for tests
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._rand: Callable[[], float] = random.random

    # ------------------------------------------------------------------ hooks (override)

    async def _endpoint(self) -> Endpoint:
        raise NotImplementedError

    def _on_open(self) -> None:
        pass

    def _on_control(self, events: list[Any]) -> None:
        pass

    def _on_ready(self, reconnected: bool) -> None:
        pass

    def _on_tick(self, now: float) -> None:
        pass

    def _silence_timeout(self) -> float | None:
        return None

    def _tick_interval(self) -> float:
        t = self._silence_timeout()
        return 1.0 if t is None else max(0.02, min(1.0, t / 4.0))

    def _on_wake_data(self) -> None:
        """Called once per socket read that produced events (Streamer wakes consumers)."""

    def process_exception(self, exc: BaseException) -> BaseException | None:
        """Override to change which failures are retried (see :func:`process_exception`)."""
        return process_exception(exc)

    # ------------------------------------------------------------------ state changes for hooks

    def _set_ready(self) -> None:
        self._auth_failures = 0
        fut = self._conn_ready
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _auth_failed(self, message: str = "authorization refused") -> None:
        """Credentials refused: retry a bounded number of times, then AuthenticationError."""
        self._auth_failures += 1
        if self._auth_failures > self.auth_retries:
            self._fail(AuthenticationError(message))
        else:
            self._log.warning("%s; retrying with fresh credentials (%d/%d)", message,
                              self._auth_failures, self.auth_retries)
            self._auth_retry_pending = True
            if self._listener is not None:
                self._listener.close(1000, "")

    def _fail(self, exc: BaseException) -> None:
        """Fatal: stop reconnecting and deliver ``exc`` to every consumer."""
        if self._error is None and not self._closing:
            self._error = exc
            self._log.error("streamer stopped: %s", exc)
        for fut in (self._conn_ready, self._conn_done):
            if fut is not None and not fut.done():
                fut.set_result(None)
        if self._listener is not None:
            self._listener.close(1000, "")
        self._wake_all()

    def _wake_all(self) -> None:
        """Wake every waiting consumer (Streamer overrides)."""

    def _check_usable(self) -> None:
        """Raise for misuse: after ``close()`` or from another event loop than the streamer's."""
        if self._closed or self._closing:
            raise StreamerClosedError(f"{type(self).__name__} is closed")
        loop = self._loop
        if loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                return
            if running is not loop:
                raise EventLoopError(
                    f"{type(self).__name__} runs on the event loop it was started on and "
                    "cannot be used from another event loop (create one streamer per loop)")

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self._listener is not None and bool(self._listener.connected)

    @property
    def ready(self) -> bool:
        """True while a connection is up and authorized."""
        return self._ready

    @property
    def error(self) -> BaseException | None:
        """The fatal error that stopped the streamer, if any."""
        return self._error

    def record(self, path: Any, *, raw: bool = True, columns: bool = True,
               **options: Any) -> Any:
        """Record this streamer into the directory ``path`` (see :mod:`fastfeed.record`):
        ``raw`` every message of both directions (zstd), ``columns`` the decoded records
        (Arrow IPC, compacted to Parquet; market-data streamers). Returns the
        :class:`fastfeed.record.Recorder`; ``close()`` of the streamer (or ``await
        recorder.aclose()``) finishes the files. Call it before connecting for a raw capture
        that replays (it must hold the connection's handshake)."""
        from fastfeed.record import Recorder

        if self._recorder is not None:
            raise RuntimeError("this streamer is already recording")
        rec = Recorder(self, path, raw=raw, columns=columns, **options)
        self._recorder = rec
        if self._listener is not None:
            rec.attach(self._listener)
        return rec

    # ------------------------------------------------------------------ lifecycle
    # ``await Streamer(...)`` and ``async with Streamer(...)`` connect and wait until ready
    # (tastytrade's streamers); exiting closes for good.

    def __await__(self) -> Generator[Any, None, Self]:
        return self._open().__await__()

    async def _open(self) -> Self:
        await self.start()
        return self

    async def __aenter__(self) -> Self:
        return await self._open()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _start_busy_poll(self) -> None:
        loop = asyncio.get_running_loop()

        def spin() -> None:
            if self._closed or self._closing:
                self._spin = None
                return
            self._spin = loop.call_soon(spin)   # always one ready callback: epoll never sleeps

        self._spin = loop.call_soon(spin)

    async def start(self) -> None:
        """Start the connection loop and wait until the first connection is ready."""
        if self.busy_poll and self._spin is None:
            self._start_busy_poll()
        if self._task is None:
            self._ready_event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run())
        assert self._ready_event is not None
        waiter = asyncio.ensure_future(self._ready_event.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._error is not None:
            err = self._error
            await self.close()
            raise err
        if self._task.done() and not self._ready:
            await self.close()
            raise ConnectionClosedError(None, "connection loop ended before ready")

    async def close(self) -> None:
        """Close for good (never reconnects). Idempotent; waits for callback tasks."""
        if self._closed:
            return
        self._closing = True
        listener = self._listener
        if listener is not None:
            listener.close(1000, "")
        task = self._task
        if task is not None and not task.done():
            done_fut = self._conn_done
            if done_fut is not None and not done_fut.done() and listener is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(done_fut), 2.0)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    pass
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._listener is not None:  # cancelled before the disconnect was seen
            self._connection_ended(self._listener)
        self._closed = True
        self._ready = False
        if self._spin is not None:
            self._spin.cancel()
            self._spin = None
        self._wake_all()
        if self._callback_tasks:
            await asyncio.gather(*list(self._callback_tasks), return_exceptions=True)
        if self._recorder is not None:
            await self._recorder.aclose()

    # ------------------------------------------------------------------ loop

    def _spawn_callback(self, fn: Callback | None, args: tuple[Any, ...], what: str) -> None:
        if fn is None:
            return

        async def run() -> None:
            try:
                await fn(self, *args)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("%s raised", what)

        t = asyncio.get_running_loop().create_task(run())
        self._callback_tasks.add(t)
        t.add_done_callback(self._callback_tasks.discard)

    def _connection_ended(self, listener: Any) -> None:
        """The listener's on_disconnect: runs once per connection, synchronously."""
        if listener is not self._listener:
            return
        self._listener = None
        self._ready = False
        self._frames_done += int(listener.n_frames)
        if self._recorder is not None:
            self._recorder.detach(listener)
        self._last_close = (listener.close_code, listener.close_reason)
        self._spawn_callback(self.disconnect_fn, self.disconnect_args, "disconnect_fn")
        for fut in (self._conn_ready, self._conn_done):
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._wake_all()

    def _on_wake(self) -> None:
        core = self._core
        if core.control:
            events = core.control
            core.control = []
            try:
                self._on_control(events)
            except Exception as exc:  # a bug in a hook must not kill the loop silently
                self._log.exception("control handling failed")
                self._fail(exc)
            if core.outbox and self._listener is not None:
                self._listener.flush()
        if self._recorder is not None:
            self._recorder.on_wake()
        self._on_wake_data()

    def _on_protocol_error(self, err: BaseException) -> None:
        self._log.warning("malformed message skipped: %s", err)

    def _socket_factory(self) -> Callable[[Any], Any] | None:
        if not self.rcvbuf:
            return None
        rcvbuf = self.rcvbuf

        def factory(parsed_url: Any) -> Any:
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.setblocking(False)
            return s

        return factory

    def _make_listener(self) -> Any:
        """The picows listener of one connection (the Cython FeedListener feeding the core)."""
        from fastfeed._native.transport import FeedListener

        return FeedListener(self._core, on_wake=self._on_wake,
                            on_disconnect=self._connection_ended,
                            on_error=self._on_protocol_error,
                            max_message_size=self.max_message_size)

    async def _connect_once(self, ep: Endpoint) -> Any:
        from picows import ws_connect

        factory = self._make_listener
        if self._recorder is not None:
            recorder = self._recorder

            def factory() -> Any:
                listener = self._make_listener()
                recorder.attach(listener)     # captures from the first frame on
                return listener
        kwargs: dict[str, Any] = {}
        if ep.extra_headers:
            kwargs["extra_headers"] = ep.extra_headers
        sf = self._socket_factory()
        if sf is not None and ep.proxy is None:
            kwargs["socket_factory"] = sf
        _transport, listener = await ws_connect(
            factory, ep.url, ssl_context=ep.ssl_context, proxy=ep.proxy,
            websocket_handshake_timeout=self.handshake_timeout,
            enable_auto_pong=True, max_frame_size=self.max_message_size,
            disconnect_on_exception=True, **kwargs)
        return listener

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delays: Iterator[float] | None = None
        first = True
        try:
            while not self._closing and self._error is None:
                # ---------------------------------------------------- connect
                self._conn_ready = loop.create_future()
                self._conn_done = loop.create_future()
                listener = None
                try:
                    ep = await self._endpoint()
                    listener = await asyncio.wait_for(self._connect_once(ep),
                                                      self.handshake_timeout + 5.0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    fatal = self.process_exception(exc)
                    if fatal is not None:
                        self._fail(fatal)
                        break
                    if delays is None:
                        delays = backoff(self.backoff_config, self._rand)
                    delay = next(delays)
                    self._log.warning("connect failed (%s: %s); retrying in %.1f s",
                                      type(exc).__name__, exc, delay)
                    await self._sleep(delay)
                    continue
                self.n_connects += 1
                if not listener.connected:  # dropped during the upgrade
                    continue
                self._listener = listener
                self._auth_retry_pending = False
                self._on_open()
                listener.flush()
                # ---------------------------------------------------- wait until usable
                try:
                    await asyncio.wait_for(asyncio.shield(self._conn_ready), self.open_timeout)
                except asyncio.TimeoutError:
                    self._log.warning("no authorization within %.0f s; reconnecting",
                                      self.open_timeout)
                    listener.close(1000, "")
                if self._error is not None or self._closing:
                    break
                if self._listener is not listener:  # ended before becoming ready
                    await self._conn_done
                    if self._auth_retry_pending:
                        await self._sleep(self.auth_retry_delay)
                        continue
                    if delays is None:
                        delays = backoff(self.backoff_config, self._rand)
                    delay = next(delays)
                    self._log.warning("connection ended before ready (close %s); retrying "
                                      "in %.1f s", listener.close_code, delay)
                    await self._sleep(delay)
                    continue
                # ---------------------------------------------------- ready
                delays = None
                self._ready = True
                reconnected = not first
                first = False
                self._on_ready(reconnected)
                listener.flush()
                if reconnected:
                    self.n_reconnects += 1
                    self._spawn_callback(self.reconnect_fn, self.reconnect_args, "reconnect_fn")
                if self._ready_event is not None:
                    self._ready_event.set()
                await self._supervise(listener)
                if self._error is not None or self._closing:
                    break
                if self._auth_retry_pending:
                    await self._sleep(self.auth_retry_delay)
                    continue
                code, _reason = self._last_close
                if code == 1009 and listener.close_received:  # the server refused our message
                    self._fail(StreamerError("server closed the connection: message too big "
                                             "(1009)", error="MESSAGE_TOO_BIG"))
                    break
                self._log.info("connection ended (close %s); reconnecting now", code)
        finally:
            if self._listener is not None:
                self._listener.close(1000, "")

    async def _supervise(self, listener: Any) -> None:
        """While connected: liveness check and keepalives, until the connection ends."""
        done = self._conn_done
        assert done is not None
        while not done.done():
            try:
                await asyncio.wait_for(asyncio.shield(done), self._tick_interval())
            except asyncio.TimeoutError:
                pass
            if done.done():
                break
            timeout = self._silence_timeout()
            if timeout is not None and listener.idle_ns > timeout * 1e9:
                self._log.warning("nothing received for %.1f s (timeout %.1f s); "
                                  "replacing the connection", listener.idle_ns / 1e9, timeout)
                listener.abort()
                await done
                break
            self._on_tick(time.monotonic())
            if self._core.outbox:
                listener.flush()
