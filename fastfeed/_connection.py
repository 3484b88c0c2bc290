"""The connection manager shared by every fastfeed streamer (layer 4).

It owns one websocket at a time (picows + :class:`fastfeed._native.transport.FeedListener`)
feeding one long-lived :class:`ProtocolCore` (the core, and therefore its rings and every
consumer cursor, survives reconnects), and runs the reconnect loop around it.

State machine (``manager.state``, a :class:`ConnectionState`)::

    closed -> connecting -> handshaking -> ready -> (connection lost)
                 ^   |           |                      |
                 |   v           v                      v
                 +-- backing_off <--- failed attempt / unstable drop
    any state -> closed  (close(), or a fatal error)

* ``connecting``: resolving the endpoint, TCP/TLS, the HTTP upgrade.
* ``handshaking``: the websocket is up, the protocol is not usable yet (DXLink SETUP/AUTH,
  polygon auth). It must become ready within ``open_timeout`` seconds, else the attempt
  **failed**: the socket is closed, ``stats["failed_attempts"]`` grows, backoff follows; a
  failed attempt never reports ready, never calls ``reconnect_fn``, never counts as a reconnect.
* ``ready``: usable (subscriptions replayed). A connection that was ready for at least
  ``stability_window`` seconds is replaced at once when it ends; one that dropped sooner backs
  off (so a server that drops right after AUTHORIZED is not hammered).
* ``backing_off``: waiting before the next attempt (:func:`backoff`).
* ``closed``: not started, closed by ``close()``, or stopped by a fatal error (``manager.error``).

Every change is logged once at INFO (logger of the streamer) and passed to the optional
``on_state_change(old, new)`` callback (sync, or async run as a task; exceptions are logged).

The first connection fails fast: ``start()`` (``await Streamer(...)`` / ``async with``) raises
within ``open_timeout`` seconds -- :class:`~fastfeed.errors.ConnectionFailedError` when the URL
is unreachable, refused, answers 5xx/429 or is never ready (retried with backoff inside that
budget), :class:`~fastfeed.errors.AuthenticationError` on HTTP 401/403,
:class:`~fastfeed.errors.ConfigurationError` on another 4xx or a non-websocket answer. Errors
name the URL without query string or credentials and the HTTP status, and chain the transport's
exception (``__cause__``): no raw picows exception reaches the user. Later connections retry
transient failures with backoff; ``max_reconnect_attempts`` (``None`` = unlimited) consecutive
failed attempts end the loop with :class:`~fastfeed.errors.ReconnectionExhausted`.

A message larger than ``max_message_size`` closes the connection with 1009 (picows or the
transport); it is counted in ``stats["oversize_frames"]``, logged once for that connection, and
the connection is replaced after a backoff delay. The transport's disconnect exception is always
retrieved (no "Future exception was never retrieved").

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
    :class:`~fastfeed.errors.FastFeedError` for anything fatal, :meth:`_drop` to replace the
    connection (e.g. DXLink ERROR TIMEOUT).
``_on_ready(reconnected: bool) -> None``
    The protocol is usable: replay the desired subscriptions (``self._desired``). Runs on
    every connection, before ``reconnect_fn``.
``_on_tick(now: float) -> None``
    Called about every ``_tick_interval()`` seconds (``time.monotonic()``) while connected:
    queue keepalives when due.
``_silence_timeout() -> float | None``
    Seconds without any byte received after which the connection is declared dead and
    replaced (``None``: no liveness check).
``_stop_after_loss() -> BaseException | None``
    A ready connection ended: return an exception to stop instead of reconnecting (polygon
    without ``reconnect=True``). Added for issue #12.

Added for issue #12 (additive; the hooks above are unchanged): ``state``,
``on_state_change=``, ``max_reconnect_attempts=``, ``stability_window``, :meth:`_drop`,
:meth:`_check_usable` (``StreamerClosedError`` after close, ``EventLoopError`` from another
loop), :meth:`_lifecycle_stats` (``state``, ``connects``, ``reconnects``, ``failed_attempts``,
``oversize_frames``, ``server_errors``), :meth:`_record_server_error` and ``server_errors``,
the ``async _after_close()`` hook (end what runs beside the connection), ``open_timeout`` as
the first connect's budget, typed connect errors from :func:`process_exception` (which now
takes the URL), and ``disconnect_fn`` only for connections that had been ready. Behaviour
changes a subclass may notice: ``_on_control`` may see a connection end before ``_set_ready``
takes effect (a failed attempt), and ``process_exception`` returns typed errors.

Reconnection (websockets-compatible): delays come from :func:`backoff`, configured from the
``WEBSOCKETS_BACKOFF_*`` environment variables (read when the manager is created):
``random() * INITIAL``, then ``MIN``, ``MIN * FACTOR`` ... capped at ``MAX``; the sequence
restarts after a stable connection. Retryable errors (``process_exception`` returns ``None``):
``OSError`` (not TLS errors), timeouts, an upgrade refused with HTTP 5xx or 429 (or without a
status, e.g. handshake EOF), a closed connection, a silent connection.

Callbacks (tastytrade 10.2–11.1 semantics): ``disconnect_fn(streamer, *disconnect_args)`` is
scheduled as soon as a connection that had been up ends (also on :meth:`close`);
``reconnect_fn(streamer, *reconnect_args)`` after a re-authorization, never on the first
connect and never for a failed attempt. Both are coroutines run as tasks; their exceptions are
logged, never fatal.

:meth:`close` never reconnects, is idempotent, and waits for the callback tasks.

Subscriptions: :class:`DesiredSubscriptions` is the set a streamer wants; ``_on_ready``
replays it in full after every (re)connect, so events resume even if ``reconnect_fn`` does
nothing, and replaying twice is harmless (it is a set).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import inspect
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from fastfeed._subscriptions import DesiredSubscriptions
from fastfeed.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionFailedError,
    EventLoopError,
    FastFeedError,
    ReconnectionExhausted,
    StreamerClosedError,
    StreamerError,
)

__all__ = [
    "ConnectionState",
    "new_dropin",
    "ServerError",
    "safe_url",
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
StateCallback = Callable[["ConnectionState", "ConnectionState"], Any]


class ConnectionState(enum.StrEnum):
    """Where a streamer's connection is (``streamer.state``); see the module docstring."""

    CONNECTING = "connecting"
    HANDSHAKING = "handshaking"
    READY = "ready"
    BACKING_OFF = "backing_off"
    CLOSED = "closed"


@dataclass(frozen=True)
class ServerError:
    """An error the server reported (DXLink ERROR, polygon ``error`` status), kept for the user.

    ``error`` is the server's code (``"INVALID_MESSAGE"``, ``"BAD_ACTION"``, polygon
    ``"error"``...), ``message`` its text, ``channel`` the DXLink channel (0 = connection level;
    ``None`` for polygon), ``time`` the local ``time.time()`` it arrived.
    """

    error: str
    message: str
    channel: int | None
    time: float

_AUTH_STATUS = frozenset({401, 403})

#: default spin window of the idle strategy (``idle_spin_us``), chosen by measurement
#: (``python -m fastfeed.bench --scenario latency-dxlink``, clients ff-listen / ff-listen-nospin):
#: 2.5x the 100 us frame gap of a 10 k events/s stream, so such a stream never waits for an
#: idle vCPU to wake up (p50 ~11 us instead of ~33 us when a core is free); 1000 us measured
#: the same at that rate but kept a 1 k events/s stream spinning ~all the time (the CPU cost is
#: about window x frame rate while frames are further apart than the window; idle: none)
DEFAULT_IDLE_SPIN_US = 250.0
#: the spinning thread is taken to have lost its CPU when one loop turn took this much more
#: wall time than thread CPU time (the scheduler ran something else: a shared or overloaded
#: machine, where a spinner gets preempted and a sleeper gets woken first) ...
SPIN_PREEMPTED_S = 300e-6
#: ... this many times within SPIN_PREEMPT_WINDOW_S seconds of spinning: the loop then parks and
#: spins again only after a back-off (SPIN_BACKOFF_MIN_S, doubled up to SPIN_BACKOFF_MAX_S each
#: time the CPU is lost again within 4 back-offs of the last one)
SPIN_PREEMPTIONS = 2
SPIN_PREEMPT_WINDOW_S = 1.0
SPIN_BACKOFF_MIN_S = 1.0
SPIN_BACKOFF_MAX_S = 16.0

#: malformed messages of one connection logged one by one; later ones are summarised
PROTOCOL_ERRORS_LOGGED = 10
#: at most one summary line of further malformed messages per this many seconds
PROTOCOL_ERROR_LOG_INTERVAL = 10.0


def new_dropin(cls: type, hub: str | None) -> Any:
    """What a drop-in's ``__new__`` returns: a plain instance of ``cls`` for the vendor
    connection, or (``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``) an instance of its hub
    variant. The hub -- and so its extra, iceoryx2 / nats-py -- is imported only in that case."""
    if hub is None:
        return object.__new__(cls)
    from fastfeed.hub._dropins import new_over_hub

    return new_over_hub(cls, hub)


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


def safe_url(url: str) -> str:
    """``url`` without query string, fragment or credentials (safe for logs and errors)."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = base.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
        return f"{scheme}://{rest}"
    return base


def process_exception(exc: BaseException, url: str | None = None) -> BaseException | None:
    """``None`` when the failed attempt should be retried, else the typed error to report.

    Retried: network errors (``OSError`` except TLS errors), timeouts, ``EOFError``, a closed
    connection, picows errors without an HTTP status, an upgrade refused with HTTP 5xx or 429.
    Reported (``__cause__`` is ``exc``): 401/403 -> :class:`AuthenticationError`, another status
    -> :class:`ConfigurationError`, a TLS failure -> :class:`ConnectionFailedError`. fastfeed
    errors are returned as they are; anything else (a bug, a user hook's error) too.
    ``url`` (already made safe) is named in the messages.
    """
    where = f" to {url}" if url else ""
    err: FastFeedError
    if isinstance(exc, ConnectionClosedError):
        return None
    if isinstance(exc, FastFeedError):
        return exc
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        err = ConnectionFailedError(f"TLS failure connecting{where}: {exc}", url=url)
        err.__cause__ = exc
        return err
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError, EOFError)):
        return None
    try:
        from picows import WSError, WSHandshakeError
    except ImportError:  # pragma: no cover
        return exc
    if isinstance(exc, WSHandshakeError):
        status = _http_status(exc)
        if status is None or status >= 500 or status == 429:
            return None
        if status in _AUTH_STATUS:
            err = AuthenticationError(f"websocket upgrade{where} refused with HTTP {status}",
                                      status=status)
        elif 400 <= status < 500:
            err = ConfigurationError(f"websocket upgrade{where} refused with HTTP {status} "
                                     "(check the URL / host)", url=url, status=status)
        else:
            err = ConfigurationError(f"not a websocket endpoint{where}: HTTP {status} instead of "
                                     "101 Switching Protocols", url=url, status=status)
        err.__cause__ = exc
        return err
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
# DesiredSubscriptions lives in fastfeed._subscriptions (sessions own it); re-exported here.


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
    """Runs the reconnect loop; see the module docstring for the states and the hooks."""

    #: seconds to become ready (handshake + authorization) per attempt; also the first
    #: connection's whole budget (``start()`` raises when it runs out)
    open_timeout: float = 10.0
    #: picows upgrade timeout
    handshake_timeout: float = 10.0
    #: largest websocket frame / reassembled message accepted
    max_message_size: int = 64 * 1024 * 1024
    #: failed authorizations retried (with fresh credentials) before AuthenticationError
    auth_retries: int = 1
    #: delay before an authorization retry
    auth_retry_delay: float = 0.5
    #: a connection ready for less than this many seconds is followed by a backoff delay
    stability_window: float = 5.0
    #: backoff of the first connection's retries (``None``: ``backoff_config``); a streamer
    #: whose ``backoff_config`` is a fixed reconnection delay sets the websockets one here
    first_backoff_config: BackoffConfig | None = None
    #: server errors kept in ``server_errors`` (the oldest are dropped)
    server_errors_kept: int = 100
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
        on_state_change: StateCallback | None = None,
        max_reconnect_attempts: int | None = None,
        idle_spin_us: float | None = None,
    ) -> None:
        if max_reconnect_attempts is not None and max_reconnect_attempts < 1:
            raise ValueError("max_reconnect_attempts must be >= 1 or None")
        if idle_spin_us is None:
            idle_spin_us = DEFAULT_IDLE_SPIN_US
        if not idle_spin_us >= 0:  # also rejects NaN
            raise ValueError("idle_spin_us must be >= 0")
        self._core = core
        # Idle strategy (Aeron's back-off idle strategy, spin then park): after a socket read
        # that produced data the event loop is kept polling (one ready callback, so epoll is
        # called with a zero timeout) for ``idle_spin_us``, then allowed to park in epoll. A
        # steady stream never pays the idle-vCPU wake-up; an idle streamer costs nothing.
        #: ``True``: the extreme setting -- the loop never parks while the streamer is open
        #: (lowest latency, one busy core)
        self.busy_poll = busy_poll
        #: microseconds the loop keeps polling after data before it may park (0: never spins)
        self.idle_spin_us = float(idle_spin_us)
        self._spin: asyncio.Handle | None = None
        self._data_wakes = 0            # socket reads that produced something (spin re-arm)
        #: loop iterations spent polling (spin callbacks run) and times the loop was let park
        self.n_spin_callbacks = 0
        self.n_spin_parks = 0
        #: times spinning was suspended because the spinning thread kept losing its CPU
        self.n_spin_backoffs = 0
        self._spin_resume_at = 0.0      # monotonic time before which data does not start a spin
        self._spin_backoff = SPIN_BACKOFF_MIN_S
        self._spin_backed_off_at = -1e18
        self._spin_preempted_at: list[float] = []
        self.reconnect_fn = reconnect_fn
        self.reconnect_args = tuple(reconnect_args) if reconnect_args else ()
        self.disconnect_fn = disconnect_fn
        self.disconnect_args = tuple(disconnect_args) if disconnect_args else ()
        #: called with ``(old, new)`` on every state change (sync, or async run as a task)
        self.on_state_change = on_state_change
        #: consecutive failed attempts after which reconnecting stops (``None``: never)
        self.max_reconnect_attempts = max_reconnect_attempts
        self.backoff_config = backoff_config or BackoffConfig.from_env()
        self._log = logger or log
        self._desired = DesiredSubscriptions()
        self._listener: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self._ready = False
        self._state = ConnectionState.CLOSED
        self._became_ready = False
        self._ready_event: asyncio.Event | None = None
        self._conn_ready: asyncio.Future[None] | None = None
        self._conn_done: asyncio.Future[None] | None = None
        self._auth_failures = 0
        self._auth_retry_pending = False
        self._perr_count = 0            # malformed messages on this connection (log limiting)
        self._perr_suppressed = 0
        self._perr_logged_at = 0.0
        self._delays: Iterator[float] | None = None
        self._consecutive_failures = 0
        self._oversize_seen = False
        self.n_connects = 0
        self.n_reconnects = 0
        self.n_ready = 0
        self.n_failed_attempts = 0
        self.n_oversize_frames = 0
        self.n_server_errors = 0
        #: the most recent errors reported by the server (:class:`ServerError`), oldest first
        self.server_errors: collections.deque[ServerError] = collections.deque(
            maxlen=self.server_errors_kept)
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

    def _stop_after_loss(self) -> BaseException | None:
        """A ready connection ended: an exception to stop with (given to the consumers), or
        ``None`` to reconnect (the default)."""
        return None

    def _tick_interval(self) -> float:
        t = self._silence_timeout()
        return 1.0 if t is None else max(0.02, min(1.0, t / 4.0))

    def _on_wake_data(self) -> None:
        """Called once per socket read that produced events (Streamer wakes consumers)."""

    def process_exception(self, exc: BaseException) -> BaseException | None:
        """Override to change which failures are retried (see :func:`process_exception`)."""
        return process_exception(exc, self._url_for_errors)

    # ------------------------------------------------------------------ state changes for hooks

    def _set_ready(self) -> None:
        self._auth_failures = 0
        self._became_ready = True
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
            # a normal close the caller asked to end on (reconnect=False) is not an error
            level = logging.INFO if isinstance(exc, ConnectionClosedOK) else logging.ERROR
            self._log.log(level, "streamer stopped: %s: %s", type(exc).__name__, exc)
        for fut in (self._conn_ready, self._conn_done):
            if fut is not None and not fut.done():
                fut.set_result(None)
        if self._listener is not None:
            self._listener.close(1000, "")
        self._wake_all()

    def _drop(self, reason: str) -> None:
        """Replace the current connection (it is closed; the loop reconnects by its rules)."""
        listener = self._listener
        if listener is not None:
            self._log.warning("replacing the connection: %s", reason)
            listener.close(1000, "")

    def _record_server_error(self, error: str, message: str, channel: int | None) -> ServerError:
        """Count, log and keep an error the server reported (the stream goes on)."""
        rec = ServerError(str(error), str(message or ""), channel, time.time())
        self.n_server_errors += 1
        self.server_errors.append(rec)
        self._log.warning("server error %s on channel %s: %s", rec.error, channel, rec.message)
        return rec

    def _wake_all(self) -> None:
        """Wake every waiting consumer (Streamer overrides)."""

    def _set_state(self, new: ConnectionState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self._log.info("%s: %s -> %s", type(self).__name__, old.value, new.value)
        cb = self.on_state_change
        if cb is None:
            return
        try:
            r = cb(old, new)
        except Exception:  # noqa: BLE001 - a user callback's error is logged, never fatal
            self._log.exception("on_state_change raised")
            return
        if r is not None and inspect.isawaitable(r):
            async def run() -> None:
                try:
                    await r
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - a user callback's error is logged, never fatal
                    self._log.exception("on_state_change raised")

            t = asyncio.get_running_loop().create_task(run())
            self._callback_tasks.add(t)
            t.add_done_callback(self._callback_tasks.discard)

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
    def state(self) -> ConnectionState:
        """Where the connection is: connecting, handshaking, ready, backing_off or closed."""
        return self._state

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

    def _lifecycle_stats(self) -> dict[str, Any]:
        return {
            "state": self._state.value,
            "connects": self.n_connects,
            "reconnects": self.n_reconnects,
            "failed_attempts": self.n_failed_attempts,
            "oversize_frames": self.n_oversize_frames,
            "server_errors": self.n_server_errors,
        }

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

    def _start_spin(self) -> None:
        """Keep one ready callback on the loop (epoll polls, never sleeps) until the spin
        window has passed with no new data (never, with ``busy_poll``); then let it park.

        Spinning pays only while the thread keeps its CPU: when a loop turn shows the thread
        was descheduled (:data:`SPIN_PREEMPTED_S`) :data:`SPIN_PREEMPTIONS` times within
        :data:`SPIN_PREEMPT_WINDOW_S`, the loop parks and data restarts the spin only after a
        back-off (a spinner on a contended machine waits for its next time slice, which costs
        far more than waking a sleeping thread). ``busy_poll`` never backs off."""
        loop = asyncio.get_running_loop()
        clock = time.monotonic
        cpu_clock = time.thread_time
        window = self.idle_spin_us * 1e-6
        forever = self.busy_poll
        seen = self._data_wakes
        last = clock()
        last_cpu = cpu_clock()
        deadline = last + window

        def spin() -> None:
            nonlocal seen, deadline, last, last_cpu
            if self._closed or self._closing:
                self._spin = None
                return
            self.n_spin_callbacks += 1
            if not forever:
                now = clock()
                cpu = cpu_clock()
                lost = (now - last) - (cpu - last_cpu) > SPIN_PREEMPTED_S
                last, last_cpu = now, cpu
                if lost and self._spin_lost_cpu(now):
                    self._spin = None
                    self.n_spin_parks += 1
                    return
                if self._data_wakes != seen:     # data since the last turn: re-arm the window
                    seen = self._data_wakes
                    deadline = now + window
                elif now >= deadline:            # quiet for the whole window: park in epoll
                    self._spin = None
                    self.n_spin_parks += 1
                    return
            self._spin = loop.call_soon(spin)

        self._spin = loop.call_soon(spin)

    def _spin_lost_cpu(self, now: float) -> bool:
        """The spinning thread was descheduled: True when it is time to back off."""
        recent = [t for t in self._spin_preempted_at if now - t < SPIN_PREEMPT_WINDOW_S]
        recent.append(now)
        if len(recent) < SPIN_PREEMPTIONS:
            self._spin_preempted_at = recent
            return False
        self._spin_preempted_at = []
        if now - self._spin_backed_off_at < 4 * self._spin_backoff:   # again: back off longer
            self._spin_backoff = min(self._spin_backoff * 2, SPIN_BACKOFF_MAX_S)
        else:
            self._spin_backoff = SPIN_BACKOFF_MIN_S
        self._spin_backed_off_at = now
        self._spin_resume_at = now + self._spin_backoff
        self.n_spin_backoffs += 1
        return True

    def _note_data(self) -> None:
        """A socket read produced something: (re)start the spin window."""
        self._data_wakes += 1
        if (self._spin is None and self.idle_spin_us > 0 and not (self._closed or self._closing)
                and (not self._spin_resume_at or time.monotonic() >= self._spin_resume_at)):
            self._start_spin()

    async def start(self) -> None:
        """Start the connection loop and wait until the first connection is ready.

        Raises within ``open_timeout`` when the first connection cannot be made (see the module
        docstring); the streamer is then closed.
        """
        if self._error is not None:
            raise self._error
        self._check_usable()
        if self.busy_poll and self._spin is None:
            self._start_spin()
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._ready_event = asyncio.Event()
            self._task = self._loop.create_task(self._run())
        assert self._ready_event is not None
        waiter = asyncio.ensure_future(self._ready_event.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._ready_event.is_set():
            # the first connection became ready: whatever happened after it (even in the same
            # socket read) reaches the consumers with the events it delivered, not start()
            return
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
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            self._check_usable()
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
                except (TimeoutError, asyncio.CancelledError):
                    pass
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the loop task's own failure was already reported
                pass
        if self._listener is not None:  # cancelled before the disconnect was seen
            self._connection_ended(self._listener)
        self._closed = True
        self._ready = False
        self._set_state(ConnectionState.CLOSED)
        if self._spin is not None:
            self._spin.cancel()
            self._spin = None
        self._wake_all()
        await self._after_close()
        # wait for the callback/reaper tasks, including any they start; finished ones are
        # dropped here rather than by their done-callback (seen left behind on 3.13's asyncio
        # loop, which turned this into an endless loop)
        while self._callback_tasks:
            tasks = list(self._callback_tasks)
            await asyncio.gather(*tasks, return_exceptions=True)
            self._callback_tasks.difference_update(tasks)
        if self._recorder is not None:
            await self._recorder.aclose()

    async def _after_close(self) -> None:
        """Hook: end what the subclass runs beside the connection (e.g. the fan-out pump)."""

    # ------------------------------------------------------------------ loop

    def _spawn_callback(self, fn: Callback | None, args: tuple[Any, ...], what: str) -> None:
        if fn is None:
            return

        async def run() -> None:
            try:
                await fn(self, *args)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a user callback's error is logged, never fatal
                self._log.exception("%s raised", what)

        t = asyncio.get_running_loop().create_task(run())
        self._callback_tasks.add(t)
        t.add_done_callback(self._callback_tasks.discard)

    def _reap(self, transport: Any) -> None:
        """Retrieve the transport's disconnect exception (picows stores protocol errors such
        as an oversize frame there; unretrieved, asyncio would log it at garbage collection)."""
        async def run() -> None:
            try:
                await asyncio.wait_for(transport.wait_disconnected(), 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - how the transport ended is only logged (its error was handled already)
                self._log.debug("transport ended with %s: %s", type(exc).__name__, exc)

        t = asyncio.get_running_loop().create_task(run())
        self._callback_tasks.add(t)
        t.add_done_callback(self._callback_tasks.discard)

    def _connection_ended(self, listener: Any) -> None:
        """The listener's on_disconnect: runs once per connection, synchronously."""
        if listener is not self._listener:
            return
        self._listener = None
        was_ready = self._ready
        self._ready = False
        self._frames_done += int(listener.n_frames)
        if self._recorder is not None:
            self._recorder.detach(listener)
        self._last_close = (listener.close_code, listener.close_reason)
        transport = getattr(listener, "transport", None)
        hs = getattr(transport, "close_handshake", None)
        sent = getattr(hs, "sent", None)
        if sent is not None and int(sent.code) == 1009 and not getattr(hs, "recv_then_sent", 0):
            # we closed with 1009: a message above max_message_size (picows or the transport)
            self.n_oversize_frames += 1
            self._oversize_seen = True
            self._log.warning("a message larger than max_message_size (%d bytes) arrived; "
                              "replacing the connection (oversize messages so far: %d)",
                              self.max_message_size, self.n_oversize_frames)
        if transport is not None:
            self._reap(transport)
        if was_ready:
            self._spawn_callback(self.disconnect_fn, self.disconnect_args, "disconnect_fn")
        for fut in (self._conn_ready, self._conn_done):
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._wake_all()

    def _on_wake(self) -> None:
        self._note_data()
        core = self._core
        if core.control:
            events = core.control
            core.control = []
            try:
                self._on_control(events)
            except Exception as exc:  # noqa: BLE001 - a bug in a hook fails the streamer with that error, never silently
                self._log.exception("control handling failed")
                self._fail(exc)
            if core.outbox and self._listener is not None:
                self._listener.flush()
        self._on_wake_data()     # a recorder hooks this (Recorder.on_wake): once per wake

    def _on_protocol_error(self, err: BaseException) -> None:
        """Log a skipped malformed message (it is already counted by the core).

        The first :data:`PROTOCOL_ERRORS_LOGGED` of a connection are logged one by one; after
        that at most one summary line per :data:`PROTOCOL_ERROR_LOG_INTERVAL` seconds, with how
        many were skipped since the last line, so a server that sends nothing but bad frames
        cannot flood the log (or cost a formatted line per frame)."""
        self._perr_count += 1
        if self._perr_count <= PROTOCOL_ERRORS_LOGGED:
            self._log.warning("malformed message skipped: %s", err)
            if self._perr_count == PROTOCOL_ERRORS_LOGGED:
                self._log.warning("further malformed messages on this connection are summarised "
                                  "at most every %.0f s", PROTOCOL_ERROR_LOG_INTERVAL)
            self._perr_logged_at = time.monotonic()
            return
        self._perr_suppressed += 1
        now = time.monotonic()
        if now - self._perr_logged_at >= PROTOCOL_ERROR_LOG_INTERVAL:
            self._log.warning("%d more malformed messages skipped (last: %s)",
                              self._perr_suppressed, err)
            self._perr_suppressed = 0
            self._perr_logged_at = now

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

        self._perr_count = self._perr_suppressed = 0
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

    _url_for_errors: str | None = None

    async def _failed_attempt(self, reason: str, cause: BaseException | None, first: bool,
                              deadline: float) -> bool:
        """Count a failed attempt; back off and return True, or fail and return False."""
        loop = asyncio.get_running_loop()
        self.n_failed_attempts += 1
        self._consecutive_failures += 1
        url = self._url_for_errors or "the server"
        status = _http_status(cause) if cause is not None else None
        err: FastFeedError | None = None
        if first and loop.time() >= deadline:
            err = ConnectionFailedError(
                f"could not connect to {url} within {self.open_timeout:g} s: {reason}",
                url=self._url_for_errors, status=status)
        elif (not first and self.max_reconnect_attempts is not None
              and self._consecutive_failures >= self.max_reconnect_attempts):
            err = ReconnectionExhausted(
                f"gave up after {self._consecutive_failures} failed reconnection attempts "
                f"to {url} (last: {reason})")
        if err is not None:
            err.__cause__ = cause
            self._fail(err)
            return False
        if self._delays is None:
            cfg = self.backoff_config
            if first and self.first_backoff_config is not None:
                cfg = self.first_backoff_config
            self._delays = backoff(cfg, self._rand if cfg is self.backoff_config else random.random)
        delay = next(self._delays)
        if first and loop.time() + delay >= deadline:
            # the next attempt could not finish within open_timeout: fail now, not later
            err = ConnectionFailedError(
                f"could not connect to {url} within {self.open_timeout:g} s: {reason}",
                url=self._url_for_errors, status=status)
            err.__cause__ = cause
            self._fail(err)
            return False
        self._set_state(ConnectionState.BACKING_OFF)
        self._log.warning("connection attempt failed (%s); retrying in %.2f s", reason, delay)
        await self._sleep(delay)
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        first = True
        deadline = loop.time() + self.open_timeout
        try:
            while not self._closing and self._error is None:
                # ---------------------------------------------------- connect
                self._set_state(ConnectionState.CONNECTING)
                self._conn_ready = loop.create_future()
                self._conn_done = loop.create_future()
                self._became_ready = False
                self._oversize_seen = False
                budget = self.handshake_timeout + 5.0
                if first:
                    budget = max(0.01, min(budget, deadline - loop.time()))
                try:
                    ep = await self._endpoint()
                    self._url_for_errors = safe_url(ep.url)
                    listener = await asyncio.wait_for(self._connect_once(ep), budget)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every connect failure goes through process_exception (retry or typed error)
                    fatal = self.process_exception(exc)
                    if fatal is not None:
                        if fatal is exc and not isinstance(exc, FastFeedError) and isinstance(
                                exc, (OSError, TimeoutError, EOFError)):
                            wrapped = ConnectionFailedError(
                                f"connection to {self._url_for_errors} failed: "
                                f"{type(exc).__name__}: {exc}", url=self._url_for_errors)
                            wrapped.__cause__ = exc
                            fatal = wrapped
                        self._fail(fatal)
                        break
                    status = _http_status(exc)
                    what = f"HTTP {status}" if status is not None else type(exc).__name__
                    if not await self._failed_attempt(f"{what}: {exc}", exc, first, deadline):
                        break
                    continue
                self.n_connects += 1
                if not listener.connected:
                    # the whole connection ended during the upgrade (a fast server can answer,
                    # send its events and close before ws_connect returns): register it so its
                    # close code is known; if it became ready, its events were delivered and it
                    # counts as a (short-lived) ready connection
                    self._listener = listener
                    self._connection_ended(listener)
                    if self._error is not None or self._closing:
                        break
                    if not self._became_ready:
                        if not await self._failed_attempt(
                                f"closed during the upgrade (close code {listener.close_code})",
                                None, first, deadline):
                            break
                        continue
                else:
                    self._listener = listener
                    self._auth_retry_pending = False
                    self._set_state(ConnectionState.HANDSHAKING)
                    self._core.outbox = []   # what an earlier connection left unsent belongs to it
                    self._on_open()
                    listener.flush()
                    # ---------------------------------------------------- wait until usable
                    wait = self.open_timeout
                    if first:
                        wait = max(0.01, deadline - loop.time())
                    try:
                        await asyncio.wait_for(asyncio.shield(self._conn_ready), wait)
                    except TimeoutError:
                        pass
                    if self._error is not None or self._closing:
                        break
                    # a connection that became ready counts as ready even if it already ended in
                    # the same socket read (its events were delivered); a short-lived one is
                    # followed by backoff below (stability_window), not by a failed attempt
                    if not self._became_ready:
                        if self._listener is listener:
                            reason = f"not ready within {wait:.3g} s"
                            listener.close(1000, "")
                            try:
                                await asyncio.wait_for(asyncio.shield(self._conn_done), 2.0)
                            except TimeoutError:
                                listener.abort()
                                self._connection_ended(listener)
                        else:
                            reason = f"closed before ready (close code {listener.close_code})"
                        if self._error is not None or self._closing:
                            break
                        if self._auth_retry_pending:
                            await self._sleep(self.auth_retry_delay)
                            continue
                        if not await self._failed_attempt(reason, None, first, deadline):
                            break
                        continue
                # ---------------------------------------------------- ready
                if first and self.first_backoff_config is not None:
                    self._delays = None   # reconnects use backoff_config
                first = False
                self._ready = self._listener is listener
                self._consecutive_failures = 0
                ready_at = loop.time()
                reconnected = self.n_ready > 0
                self.n_ready += 1
                self._set_state(ConnectionState.READY)
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
                stop = self._stop_after_loss()
                if stop is not None:
                    self._fail(stop)
                    break
                code, _reason = self._last_close
                if code == 1009 and listener.close_received and not self._oversize_seen:
                    self._fail(StreamerError("server closed the connection: message too big "
                                             "(1009)", error="MESSAGE_TOO_BIG"))
                    break
                if loop.time() - ready_at >= self.stability_window and not self._oversize_seen:
                    self._delays = None
                    self._log.info("connection ended (close %s); reconnecting now", code)
                    continue
                if self._delays is None:
                    self._delays = backoff(self.backoff_config, self._rand)
                delay = next(self._delays)
                self._set_state(ConnectionState.BACKING_OFF)
                self._log.warning("connection ended (close %s) %.2f s after it became ready; "
                                  "reconnecting in %.2f s", code, loop.time() - ready_at, delay)
                await self._sleep(delay)
        finally:
            if self._listener is not None:
                self._listener.close(1000, "")
            if self._error is not None:
                self._set_state(ConnectionState.CLOSED)

    async def _supervise(self, listener: Any) -> None:
        """While connected: liveness check and keepalives, until the connection ends."""
        done = self._conn_done
        assert done is not None
        while not done.done():
            try:
                await asyncio.wait_for(asyncio.shield(done), self._tick_interval())
            except TimeoutError:
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
