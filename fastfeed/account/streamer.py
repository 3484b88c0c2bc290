"""tastytrade account streamer ("AlertStreamer") drop-in: order fills, balances, positions, alerts.

``fastfeed.tastytrade.AlertStreamer`` has tastytrade's API (``AlertStreamer(session, ...)``,
``await AlertStreamer(session)`` / ``async with``, ``subscribe_accounts``,
``subscribe_public_watchlists``, ``subscribe_quote_alerts``, ``subscribe_user_messages``,
``listen(alert_class)``, ``close()``) on top of :class:`fastfeed._connection.ConnectionManager`
(backoff, liveness, callbacks). The protocol -- handshake, request ids and their
acknowledgements, the desired subscriptions and their replay after every reconnect, heartbeat
timing, the meaning of every server message -- is :class:`fastfeed.account.session.AccountSession`
(sans-I/O, ``streamer.protocol``); this class drives it and keeps the consumers' queues. The
socket is read by the transport every streamer shares (``FeedListener``); its ``MessageCore``
hands each JSON message to the protocol once per socket read.

Delivery guarantees (order fills travel here):

* every notification received is queued exactly once, in arrival order, in the queue of its
  ``type``; nothing received is discarded on reconnect; batches ``{"results": [...]}`` are
  unpacked in order;
* queues are bounded (``queue_size``) with **back-pressure**: when a queue is full the socket
  is no longer read until its consumers catch up; nothing is ever dropped;
* every ``listen(cls)`` call has its own cursor (fan-out: two loops both see every order);
  notifications that arrive before anyone listens are kept for the first listener;
* a notification that fails validation is delivered anyway as an :class:`InvalidAlert` (raw
  data, same attribute names, ``validation_error`` attached) and logged; it never stops the
  streamer. Unknown types are delivered to ``listen(dict)`` (raw messages) and logged once
  per type.

``listen()`` accepts tastytrade's model classes (``tastytrade.order.PlacedOrder`` …) and yields
instances of them, or fastfeed's own classes (:mod:`fastfeed.account.events`, same field names,
no pydantic needed). The session's token is sent on every message and never logged or shown.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any, Self, TypeVar

from fastfeed._connection import (
    BackoffConfig,
    Callback,
    ConnectionManager,
    Endpoint,
    new_dropin,
)
from fastfeed._native.transport import MessageCore
from fastfeed.account.events import (
    ALERT_TYPES,
    MAP_ALERTS,
    AlertData,
    InvalidAlert,
    tastytrade_types,
)
from fastfeed.account.session import (
    AccountSession,
    Event,
    Notification,
    Ready,
    RequestAcked,
    RequestRejected,
    TokenRefused,
    UnknownMessage,
)
from fastfeed.errors import ConnectionClosedError, StreamerClosedError, SubscriptionError

__all__ = [
    "AlertStreamer",
    "STREAMER_URL",
    "CERT_STREAMER_URL",
    "PAPER_STREAMER_URL",
]

log = logging.getLogger("fastfeed.alerts")

STREAMER_URL = "wss://streamer.tastyworks.com"
CERT_STREAMER_URL = "wss://streamer.cert.tastyworks.com"
PAPER_STREAMER_URL = "wss://tastyware.dev/api/notifications"

T = TypeVar("T")

_UNKNOWN = "\x00unknown"  # queue key of types without a class (listen(dict))

# ---------------------------------------------------------------------------------- queues


class _Entry:
    __slots__ = ("msg", "cache")

    def __init__(self, msg: dict[str, Any]) -> None:
        self.msg = msg
        self.cache: dict[Any, Any] | None = None


class _Cursor:
    __slots__ = ("pos",)

    def __init__(self, pos: int) -> None:
        self.pos = pos


class _TypeQueue:
    """Received notifications of one type, kept until every active listener has seen them."""

    __slots__ = ("items", "base", "cursors", "waiters", "warned")

    def __init__(self) -> None:
        self.items: deque[_Entry] = deque()
        self.base = 0  # absolute index of items[0]
        self.cursors: list[_Cursor] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.warned = False

    @property
    def end(self) -> int:
        return self.base + len(self.items)

    def push(self, e: _Entry) -> None:
        self.items.append(e)
        self.wake()

    def wake(self) -> None:
        ws, self.waiters = self.waiters, []
        for w in ws:
            if not w.done():
                w.set_result(None)

    def trim(self) -> None:
        if not self.cursors:
            return
        low = min(c.pos for c in self.cursors)
        while self.base < low and self.items:
            self.items.popleft()
            self.base += 1


# ---------------------------------------------------------------------------------- streamer

_FAILURE: list[type[ConnectionClosedError]] = []


def _failure_class() -> type[ConnectionClosedError]:
    """ConnectionClosedError, mixed with the SDK transport's HTTPXWSException when installed."""
    if not _FAILURE:
        cls: type[ConnectionClosedError] = ConnectionClosedError
        for mod in ("httpx2.websockets", "httpx_ws"):
            try:
                sdk_exc = __import__(mod, fromlist=["HTTPXWSException"]).HTTPXWSException
            except (ImportError, AttributeError):
                continue
            cls = type("StreamerFailure", (ConnectionClosedError, sdk_exc),
                       {"__module__": __name__})
            break
        _FAILURE.append(cls)
    return _FAILURE[0]


class AlertStreamer(ConnectionManager):
    """tastytrade-compatible account streamer (see the module docstring).

    ``AlertStreamer(session, disconnect_args=(), disconnect_fn=None, reconnect_args=(),
    reconnect_fn=None, url=None)`` (tastytrade 10.2-11.1's positional order); the host is
    chosen from the session as tastytrade 13.x does (``PaperSession`` -> tastyware.dev,
    ``session.is_test`` -> the cert host); ``url`` overrides it. Keyword-only extras: ``ssl_context`` (``None``: verified default for
    ``wss://``), ``heartbeat_interval`` (s, default 15), ``liveness_timeout`` (s without any
    frame before the connection is replaced; default ``2 * heartbeat_interval + 10``),
    ``ack_timeout`` (s, default 10), ``queue_size`` (notifications per type before reading
    pauses; default 10,000), ``max_message_size`` (bytes, default 64 MiB), ``backoff_config``,
    ``hub`` (``"ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``: read a fastfeed hub's account
    stream instead, ``fastfeed.hub``; the session's token is not used).

    The socket is carried by the same :class:`~fastfeed._native.transport.FeedListener` as the
    market-data streamers, with a :class:`~fastfeed._native.transport.MessageCore` (every JSON
    message is handed to ``protocol``, the :class:`~fastfeed.account.session.AccountSession`,
    once per socket read; what it reports becomes queued notifications, resolved
    ``subscribe_*`` calls, readiness or a typed error). A refused token is retried once with
    fresh credentials, then raises :class:`~fastfeed.errors.AuthenticationError` (from the
    pending ``subscribe_*`` call and from ``listen()``); ``subscribe_*`` / ``listen`` after
    :meth:`close` raise :class:`~fastfeed.errors.StreamerClosedError`; use from another event
    loop than the one the streamer was started on raises an error that says so.
    """

    def __new__(cls, *args: Any, hub: str | None = None, **kwargs: Any) -> Self:
        """``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``: read the account stream a
        fastfeed hub holds (JetStream) instead of tastytrade's, same API
        (``fastfeed.hub._account``; the session's token is not used)."""
        obj: Self = new_dropin(cls, hub)
        return obj

    def __init__(
        self,
        session: Any,
        disconnect_args: tuple[Any, ...] = (),   # tastytrade 10.2-11.1's positional order
        disconnect_fn: Callback | None = None,
        reconnect_args: tuple[Any, ...] = (),
        reconnect_fn: Callback | None = None,
        url: str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        heartbeat_interval: float = 15.0,
        liveness_timeout: float | None = None,
        ack_timeout: float = 10.0,
        queue_size: int = 10_000,
        max_message_size: int | None = None,
        backoff_config: BackoffConfig | None = None,
        hub: str | None = None,
    ) -> None:
        super().__init__(MessageCore(feed_name="account"), reconnect_fn=reconnect_fn,
                         reconnect_args=reconnect_args, disconnect_fn=disconnect_fn,
                         disconnect_args=disconnect_args, backoff_config=backoff_config,
                         logger=log)
        self.session = session
        if url is not None:
            self.base_url = url
        elif any(c.__name__ == "PaperSession" for c in type(session).__mro__):
            self.base_url = PAPER_STREAMER_URL
        else:
            self.base_url = CERT_STREAMER_URL if getattr(session, "is_test", False) else STREAMER_URL
        self.proxy: str | None = getattr(session, "proxy", None)
        self.ssl_context = ssl_context
        if max_message_size is not None:
            self.max_message_size = int(max_message_size)
        #: the protocol (sans-I/O): handshake, request ids and acks, desired subscriptions and
        #: their replay, heartbeat timing, the meaning of every server message
        self.protocol = AccountSession(heartbeat_interval=heartbeat_interval)
        self._desired = self.protocol.desired
        self.liveness_timeout = (2.0 * self.heartbeat_interval + 10.0
                                 if liveness_timeout is None else float(liveness_timeout))
        self.ack_timeout = float(ack_timeout)
        self.queue_size = max(1, int(queue_size))
        self._queues: dict[str, _TypeQueue] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._hb_task: asyncio.Task[None] | None = None
        self.n_invalid = 0

    def __repr__(self) -> str:
        state = "ready" if self.ready else ("closed" if self._closed else "connecting")
        p = self.protocol
        return (f"<fastfeed AlertStreamer {state} accounts={len(p.accounts)} "
                f"topics={list(p.topics)}>")

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``notifications`` received, ``unknown`` (of no known type, for
        ``listen(dict)``), ``malformed`` (invalid JSON, skipped), ``invalid`` (delivered as
        :class:`InvalidAlert`), ``connects``, ``reconnects``."""
        p = self.protocol
        return {"notifications": p.n_notifications, "unknown": p.n_unknown,
                "malformed": p.n_malformed, "invalid": self.n_invalid,
                "connects": self.n_connects, "reconnects": self.n_reconnects}

    @property
    def n_notifications(self) -> int:
        """Notifications received (``stats["notifications"]``)."""
        return self.protocol.n_notifications

    @property
    def n_malformed(self) -> int:
        """Messages that were not JSON, skipped (``stats["malformed"]``)."""
        return self.protocol.n_malformed

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats (the protocol's)."""
        return self.protocol.heartbeat_interval

    @property
    def request_id(self) -> int:
        """request-id of the last message sent (increases across connections)."""
        return self.protocol.request_id

    @property
    def session_id(self) -> str | None:
        """web-socket-session-id of the current connection."""
        return self.protocol.session_id

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Close for good: no reconnect; pending listen() loops end after what they hold."""
        t = self._hb_task
        if t is not None and not t.done():
            t.cancel()
        await super().close()
        if t is not None:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: the task's own failure was already reported
                pass
        self._fail_waiters(StreamerClosedError("AlertStreamer closed"))

    def fail(self) -> None:
        """tastytrade 13.x's test hook: raise what a broken connection raises, so that a retry
        loop can be tested. The exception is a :class:`~fastfeed.errors.ConnectionClosedError`
        and, when tastytrade 13.x's transport is installed (``httpx2`` / ``httpx-ws``), also its
        ``HTTPXWSException``: ``except* HTTPXWSException`` loops written for the SDK catch it."""
        raise _failure_class()(None, "Something happened and the fake streamer broke, oh no!")

    def _check_open(self) -> None:
        """Misuse: after close(), or from another event loop; a fatal error is raised again."""
        self._check_usable()
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------ token / sending

    async def _refresh(self) -> None:
        refresh = getattr(self.session, "refresh", None)
        if refresh is not None:
            res = refresh()
            if asyncio.iscoroutine(res) or isinstance(res, asyncio.Future):
                await res
        self._sync_token()

    def _sync_token(self) -> None:
        """Hand the session's current token to the protocol (read before anything is sent)."""
        self.protocol.set_token(str(self.session.session_token))

    def _take_output(self) -> None:
        """Move the protocol's messages to the transport's outbox and act on its events."""
        p = self.protocol
        out = p.data_to_send()
        if out:
            self._core.outbox.extend(out)
        for ev in p.events_received():
            self._on_event(ev)

    def _flush(self) -> None:
        self._take_output()
        if self._core.outbox and self._listener is not None:
            self._listener.flush()

    # ------------------------------------------------------------------ connection hooks

    async def _endpoint(self) -> Endpoint:
        await self._refresh()
        return Endpoint(self.base_url, ssl_context=self.ssl_context, proxy=self.proxy)

    def _on_open(self) -> None:
        self._sync_token()
        self.protocol.connection_made(time.monotonic())
        self._take_output()
        if self._under_pressure() and self._listener is not None:
            self._listener.pause()

    def _connection_ended(self, listener: Any) -> None:
        if listener is self._listener:
            self.protocol.connection_lost()
        super()._connection_ended(listener)

    def _silence_timeout(self) -> float | None:
        return self.liveness_timeout

    def _tick_interval(self) -> float:
        return max(0.01, min(1.0, self.heartbeat_interval / 4.0, self.liveness_timeout / 4.0))

    def _on_tick(self, now: float) -> None:
        # No heartbeat while reading is paused (back-pressure): a write that fails on a reset
        # socket makes the loop close it with received-but-unread notifications still in the
        # kernel; without writes, the reset is only seen after those bytes have been read.
        if self._listener is not None and self._listener.paused:
            return
        if self.protocol.heartbeat_due(now) and (self._hb_task is None or self._hb_task.done()):
            self._hb_task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        try:
            await self._refresh()    # a fresh token first
            if self._listener is not None and self.ready and not self._listener.paused:
                self.protocol.send_heartbeat(time.monotonic())
                self._flush()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("heartbeat failed")

    def _wake_all(self) -> None:
        for q in self._queues.values():
            q.wake()
        if self._error is not None:  # fatal: the pending subscribe_* calls get it too
            self._fail_waiters(self._error)

    def _fail_waiters(self, exc: BaseException) -> None:
        waiters, self._waiters = self._waiters, {}
        for ws in waiters.values():
            for w in ws:
                if not w.done():
                    w.set_exception(exc)

    # ------------------------------------------------------------------ incoming

    def _on_control(self, events: list[Any]) -> None:
        self._sync_token()
        receive = self.protocol.receive_message
        for raw in events:
            receive(raw)
            self._take_output()

    def _on_event(self, ev: Event) -> None:
        """What the protocol reports, turned into the streamer's reactions."""
        if isinstance(ev, Notification):
            q = self._queue(ev.type)
            q.push(_Entry(ev.message))
            self._check_pressure(q, ev.type)
        elif isinstance(ev, RequestAcked):
            self._auth_failures = 0    # the token was accepted
            self._resolve(ev.action, None)
        elif isinstance(ev, Ready):
            failures = self._auth_failures
            self._set_ready()
            if not ev.authorized:
                # nothing was asked of the server yet: the token is judged by its first
                # answer (an ok acknowledgement resets the count of refusals)
                self._auth_failures = failures
        elif isinstance(ev, RequestRejected):
            if ev.opening:     # nothing can be received on this connection
                self._fail(ev.error)
            else:
                self._resolve(ev.action, ev.error)
        elif isinstance(ev, TokenRefused):
            # reconnect with fresh credentials once, then AuthenticationError (the pending
            # subscribe_* calls stay pending across the retry: the subscriptions are replayed)
            self._auth_failed(str(ev.error))
        elif isinstance(ev, UnknownMessage):
            q = self._queue(_UNKNOWN)
            q.push(_Entry(ev.message))
            self._check_pressure(q, _UNKNOWN)
        else:
            self._on_protocol_error(ev.error)   # MalformedMessage: counted, logged, skipped

    def _resolve(self, action: str, error: BaseException | None) -> None:
        for w in self._waiters.pop(action, []):
            if w.done():
                continue
            if error is None:
                w.set_result(None)
            else:
                w.set_exception(error)

    def _queue(self, key: str) -> _TypeQueue:
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = _TypeQueue()
        return q

    def _check_pressure(self, q: _TypeQueue, key: str) -> None:
        listener = self._listener
        if len(q.items) >= self.queue_size and listener is not None and not listener.paused:
            listener.pause()
            if not q.cursors and not q.warned:
                q.warned = True
                log.warning("reading paused: %d unread %s notifications and nobody listens "
                            "to them (listen() to that type or raise queue_size)",
                            len(q.items), "unknown-type" if key == _UNKNOWN else key)

    def _under_pressure(self) -> bool:
        return any(len(q.items) >= self.queue_size for q in self._queues.values())

    def _maybe_resume(self) -> None:
        lst = self._listener
        if lst is not None and lst.paused and not any(
                len(q.items) > self.queue_size // 2 for q in self._queues.values()):
            lst.resume()

    # ------------------------------------------------------------------ subscriptions

    async def _request(self, action: str) -> None:
        """Send ``action`` now when the connection can take it (``connect`` as soon as a socket
        is open, the topics once it is ready), else the protocol replays it as soon as it can;
        then wait for its acknowledgement."""
        await self._refresh()
        self._check_open()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(action, []).append(fut)
        if self._listener is not None and self.protocol.request(action) is not None:
            self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.ack_timeout)
        except TimeoutError:
            ws = self._waiters.get(action, [])
            if fut in ws:
                ws.remove(fut)
            raise SubscriptionError(
                f"{action}: no acknowledgement within {self.ack_timeout:g} s") from None

    async def subscribe_accounts(self, accounts: Iterable[Any] | Any) -> None:
        """Order, balance, position … updates of ``accounts`` (Account objects or numbers)."""
        self._check_open()
        if isinstance(accounts, str) or hasattr(accounts, "account_number"):
            accounts = [accounts]
        numbers = []
        for a in accounts:
            n = a if isinstance(a, str) else getattr(a, "account_number", None)
            if not isinstance(n, str):
                raise TypeError(f"not an account or account number: {type(a).__name__}")
            numbers.append(n)
        added = self.protocol.want_accounts(numbers)
        try:
            await self._request("connect")  # every desired account
        except SubscriptionError:
            self.protocol.unwant_accounts(added)
            raise

    async def _subscribe_topic(self, action: str, value: Any) -> None:
        self._check_open()
        self.protocol.want_topic(action, value)
        await self._request(action)

    async def subscribe_public_watchlists(self) -> None:
        """Changes in public watchlists (``listen(Watchlist)``)."""
        await self._subscribe_topic("public-watchlists-subscribe", None)

    async def subscribe_quote_alerts(self) -> None:
        """Quote alerts configured by the user (``listen(QuoteAlert)``)."""
        await self._subscribe_topic("quote-alerts-subscribe", None)

    async def subscribe_user_messages(self, session: Any) -> None:
        """User-level messages (value: the user's external id, when the session has it)."""
        user = getattr(session, "user", None)
        ext = getattr(user, "external_id", None)
        await self._subscribe_topic("user-message-subscribe", ext)

    # ------------------------------------------------------------------ consuming

    def _resolve_class(self, alert_class: Any) -> tuple[str, Any]:
        if alert_class is dict:
            return _UNKNOWN, None
        if isinstance(alert_class, str):
            if alert_class not in MAP_ALERTS:
                raise KeyError(f"unknown alert type {alert_class!r}")
            return alert_class, None
        t = ALERT_TYPES.get(alert_class)
        if t is not None:
            return t, alert_class
        t = tastytrade_types().get(alert_class)
        if t is not None:
            return t, alert_class
        raise KeyError(f"{getattr(alert_class, '__name__', alert_class)!r} is not an alert "
                       f"class (known: {', '.join(c.__name__ for c in ALERT_TYPES)})")

    def _convert(self, e: _Entry, cls: Any) -> Any:
        if cls is None:
            return e.msg
        cache = e.cache
        if cache is not None and cls in cache:
            return cache[cls]
        msg = e.msg
        data = msg.get("data")
        try:
            if isinstance(cls, type) and issubclass(cls, AlertData):
                obj: Any = cls.from_data(data)
            else:
                # tastytrade models mutate their input (price effects): give them a copy
                obj = cls(**copy.deepcopy(data)) if isinstance(data, dict) else cls(data)
        except Exception as exc:  # noqa: BLE001 - a model's validation error becomes an InvalidAlert handed to the user
            self.n_invalid += 1
            obj = InvalidAlert(str(msg.get("type")), data, msg.get("timestamp"), cls, exc)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("%s notification failed validation as %s (delivered as "
                        "InvalidAlert): %s", msg.get("type"), cls.__name__, first)
        if cache is None:
            e.cache = cache = {}
        cache[cls] = obj
        return obj

    async def listen(self, alert_class: type[T]) -> AsyncIterator[T | InvalidAlert]:
        """Every notification of ``alert_class``'s type, in arrival order, across reconnects.

        ``alert_class``: a fastfeed class (:class:`PlacedOrder` …), a tastytrade model class,
        or ``dict`` for raw messages of unknown types. Each call has its own cursor and starts
        at the oldest notification still held. Items that fail validation come as
        :class:`InvalidAlert`. Ends after :meth:`close`; raises the fatal error, if any.
        """
        self._check_usable()
        key, cls = self._resolve_class(alert_class)
        q = self._queue(key)
        cur = _Cursor(q.base)
        q.cursors.append(cur)
        loop = asyncio.get_running_loop()
        try:
            while True:
                while cur.pos < q.end:
                    e = q.items[cur.pos - q.base]
                    cur.pos += 1
                    q.trim()
                    self._maybe_resume()
                    yield self._convert(e, cls)
                if self._error is not None:
                    raise self._error
                if self._closed:
                    return
                w: asyncio.Future[None] = loop.create_future()
                q.waiters.append(w)
                await w
        finally:
            if cur in q.cursors:
                q.cursors.remove(cur)
            q.trim()
            self._maybe_resume()
