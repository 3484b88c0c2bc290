"""``DXLinkStreamer``: tastytrade's DXLink streamer on fastfeed (see ``fastfeed.tastytrade``)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar, overload

from fastfeed._connection import Callback, Endpoint, StateCallback, _as_symbols, new_dropin
from fastfeed._fanout import FanoutMixin
from fastfeed._sdk_events import EventsMode, SDKEventsMixin, check_events_mode
from fastfeed.dxfeed import DXFeedEvent
from fastfeed.errors import AuthenticationError, StreamerError, SubscriptionError
from fastfeed.streamer import Streamer

if TYPE_CHECKING:
    from fastfeed._native.ring import EventBatch

U = TypeVar("U", bound=DXFeedEvent)

__all__ = ["DXLinkStreamer"]

log = logging.getLogger("fastfeed.tastytrade")

# ================================================================================ DXLink

#: tastytrade 13.x default candle start when ``start_time`` is None (ms; 2001-09-09)
CANDLE_DEFAULT_FROM_TIME = 1_000_000_000
_CH_OPENED = "OPENED"
_CH_CLOSED = "CLOSED"


def _new_core(overflow: str, ring_bytes: int | None, max_message_size: int | None) -> Any:
    from fastfeed.dxlink.session import DXLinkSession

    kwargs: dict[str, Any] = {"policy": overflow}
    if ring_bytes is not None:
        kwargs["ring_bytes"] = ring_bytes
    if max_message_size is not None:
        kwargs["max_message_size"] = max_message_size
    return DXLinkSession(**kwargs)


class DXLinkStreamer(SDKEventsMixin, FanoutMixin, Streamer):
    """tastytrade-compatible DXLink market-data streamer (see the module docstring).

    The protocol itself (SETUP/AUTH, one channel per event type with tastytrade's numbers,
    FEED_SETUP, chunked FEED_SUBSCRIPTION; decoding in C underneath) is
    :class:`fastfeed.dxlink.session.DXLinkSession`;
    this class adds the connection, the desired-subscription replay and the consumer API.
    """

    #: our keepaliveTimeout announced in SETUP (seconds)
    keepalive_timeout: float = 60.0
    #: seconds to wait for CHANNEL_OPENED in subscribe()
    channel_timeout: float = 10.0
    #: liveness: declare the connection dead after the server's keepaliveTimeout of silence
    #: (``None`` here = use the server's SETUP value, else ``keepalive_timeout``)
    silence_timeout: float | None = None
    #: a channel the server closes is reopened at most this many times per window ...
    max_channel_reopens: int = 3
    #: ... of this many seconds; then ``listen`` of its types raises SubscriptionError
    channel_reopen_window: float = 60.0

    def __new__(cls, *args: Any, hub: str | None = None, **kwargs: Any) -> Self:
        """``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``: read from a fastfeed hub
        instead of DXLink, same API (``fastfeed.hub._dropins``; the session is not used)."""
        obj: Self = new_dropin(cls, hub)
        return obj

    def __init__(
        self,
        session: Any,
        disconnect_args: tuple[Any, ...] = (),   # tastytrade 10.2-11.1's positional order
        disconnect_fn: Callback | None = None,
        reconnect_args: tuple[Any, ...] = (),
        reconnect_fn: Callback | None = None,
        ssl_context: ssl.SSLContext | None = None,
        *,
        overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest",
        ring_bytes: int | None = None,
        busy_poll: bool = False,
        idle_spin_us: float | None = None,
        on_state_change: StateCallback | None = None,
        max_reconnect_attempts: int | None = None,
        max_message_size: int | None = None,
        open_timeout: float | None = None,
        events: EventsMode = "auto",
        hub: str | None = None,
    ) -> None:
        """``overflow``: what happens when a consumer falls a whole ring (``ring_bytes``, about
        8 MB per event type by default) behind: ``"drop_oldest"`` keeps the newest events and
        counts the loss in ``stats["gaps"]`` (a stale quote is worth less than a fresh one);
        ``"backpressure"`` stops reading the socket until the slowest consumer catches up
        (nothing is lost here; the server buffers, and may disconnect a client that stays slow).
        ``idle_spin_us``: after data, the event loop keeps polling for this many microseconds
        before it may sleep in epoll (default ``fastfeed._connection.DEFAULT_IDLE_SPIN_US``;
        0: sleep at once), so a steady stream never waits for the CPU to wake up while an
        idle streamer costs almost nothing. ``busy_poll=True``: the extreme setting, the
        event loop never sleeps while the streamer is open (lowest latency, one core kept
        busy). ``on_state_change(old, new)``: called on every
        :class:`fastfeed.ConnectionState` change (e.g. to mark prices stale while not
        ``ready``). ``max_reconnect_attempts``: consecutive failed attempts before
        :class:`fastfeed.ReconnectionExhausted` (default: unlimited). ``max_message_size``:
        largest message accepted (default 64 MiB; larger ones are counted in
        ``stats["oversize_frames"]`` and the connection is replaced). ``open_timeout``: seconds
        for a connection to become ready (default 10; also the first connect's budget).
        ``ssl_context``: TLS settings for ``wss://`` (default: verified). ``events``:
        ``"auto"`` gives the tastytrade SDK's own event classes (``Decimal`` values,
        ``model_dump()``; see ``fastfeed._sdk_events``) when ``listen`` / ``get_event*`` /
        ``latest`` are given the SDK's class, fastfeed's float events otherwise; ``"sdk"``: the
        SDK's classes always; ``"fast"``: fastfeed's always. ``hub="ipc://NAME"`` /
        ``"nats://HOST:PORT/NAME"``: read from a fastfeed hub instead of DXLink
        (``fastfeed.hub``; the session is not used).
        """
        if overflow not in ("drop_oldest", "backpressure"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'backpressure', not {overflow!r}")
        core = _new_core(overflow, ring_bytes, max_message_size)
        super().__init__(core, reconnect_fn=reconnect_fn, reconnect_args=reconnect_args,
                         disconnect_fn=disconnect_fn, disconnect_args=disconnect_args,
                         logger=log, busy_poll=busy_poll, idle_spin_us=idle_spin_us,
                         on_state_change=on_state_change,
                         max_reconnect_attempts=max_reconnect_attempts)
        self.max_message_size = int(core.max_message_size)
        self._desired = core.desired     # the session owns the desired subscriptions + replay
        if open_timeout is not None:
            self.open_timeout = float(open_timeout)
        self._session = session
        self.session = session
        self._events_mode = check_events_mode(events)
        self._ssl_context = ssl_context
        self.proxy: str | None = getattr(session, "proxy", None)
        self.__token: str | None = None
        self._channel_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._reopens: dict[int, list[float]] = {}
        self.n_channel_reopens = 0

    def __repr__(self) -> str:
        return (f"<fastfeed.tastytrade.DXLinkStreamer {self.state.value} "
                f"subscriptions={len(self._desired)}>")

    def _lifecycle_stats(self) -> dict[str, Any]:
        out = super()._lifecycle_stats()
        out["channel_reopens"] = self.n_channel_reopens
        return out

    # ------------------------------------------------------------------ connection hooks

    async def _endpoint(self) -> Endpoint:
        s = self._session
        url = getattr(s, "dxlink_url", None)
        token = getattr(s, "streamer_token", None)
        if not (isinstance(url, str) and isinstance(token, str)):
            data = await s._get("/api-quote-tokens")
            url, token = data["dxlink-url"], data["token"]
        self.__token = token
        return Endpoint(url, ssl_context=self._ssl_context, proxy=self.proxy)

    def _on_open(self) -> None:
        self._core.start(self.__token, self.keepalive_timeout, self.keepalive_timeout,
                         now=time.monotonic())

    def _on_control(self, events: list[Any]) -> None:
        for ev in events:
            kind = type(ev).__name__
            if kind == "AuthState":
                if ev.state == "AUTHORIZED":
                    self._set_ready()
                elif ev.rejected:
                    self._auth_failed("DXLink authorization refused (check the quote token)")
            elif kind == "ChannelOpened":
                self._resolve_channel(ev.channel, None)
            elif kind == "ChannelClosed":
                self._channel_closed(int(ev.channel))
            elif kind == "ErrorReceived":
                self._server_error(ev.channel, ev.error, ev.message)
            # SetupReceived, FeedConfig and KeepaliveReceived are handled by the session

    def _server_error(self, channel: Any, error: Any, message: Any) -> None:
        """A DXLink ERROR, by its meaning (dxLink spec: informational unless said otherwise)."""
        ch = int(channel) if isinstance(channel, int) else None
        rec = self._record_server_error(str(error or "UNKNOWN"), str(message or ""), ch)
        text = f"DXLink ERROR {rec.error}: {rec.message}"
        if rec.error == "UNAUTHORIZED":
            if self.ready:
                self._fail(AuthenticationError(text))
            else:
                self._auth_failed(text)
        elif rec.error == "UNSUPPORTED_PROTOCOL":
            self._fail(StreamerError(text, error=rec.error, channel=ch))
        elif rec.error == "TIMEOUT":
            self._drop("the server reported TIMEOUT")
        elif ch:  # INVALID_MESSAGE, BAD_ACTION, UNKNOWN about one channel: fail its subscribe
            self._resolve_channel(ch, SubscriptionError(f"{text} (channel {ch})"))

    def _channel_closed(self, channel: int) -> None:
        """CHANNEL_CLOSED: reopen a channel the server dropped (and replay its subscriptions),
        unless it keeps failing; a cancelled channel (``unsubscribe_all``) stays closed."""
        if self._channel_waiters.get(channel):
            # it answers a subscribe() waiting for the channel: that call fails (and drops
            # its symbols); nothing is reopened behind the caller's back
            self._resolve_channel(channel, SubscriptionError(
                f"DXLink channel {channel} closed by the server"))
            return
        types = self._core.types_on(channel)
        if not types or not self.ready or self._core.channel_state(channel) != _CH_CLOSED:
            return
        now = time.monotonic()
        recent = [t for t in self._reopens.get(channel, ()) if now - t < self.channel_reopen_window]
        if len(recent) >= self.max_channel_reopens:
            for etype in types:
                self._fail_type(etype, SubscriptionError(
                    f"DXLink channel {channel} ({etype}) was closed by the server "
                    f"{len(recent) + 1} times within {self.channel_reopen_window:g} s; "
                    "not reopening it"))
            return
        recent.append(now)
        self._reopens[channel] = recent
        self.n_channel_reopens += 1
        self._log.warning("DXLink channel %d (%s) closed by the server; reopening it",
                          channel, ", ".join(types))
        for etype in types:
            self._core.replay_type(etype)
        self._note_flush()

    def _resolve_channel(self, channel: int, exc: BaseException | None) -> None:
        for fut in self._channel_waiters.pop(channel, ()):
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

    def _connection_ended(self, listener: Any) -> None:
        if listener is self._listener:
            self._core.connection_lost()
            for ch in list(self._channel_waiters):
                self._resolve_channel(ch, None)  # replayed on the next connection
        super()._connection_ended(listener)

    def _on_ready(self, reconnected: bool) -> None:
        # the session replayed the desired subscriptions when AUTHORIZED arrived
        self._reopens.clear()
        self._note_flush()

    def _silence_timeout(self) -> float | None:
        if self.silence_timeout is not None:
            return self.silence_timeout
        server = self._core.server_keepalive_timeout
        return float(server) if server else self.keepalive_timeout

    def _on_tick(self, now: float) -> None:
        core = self._core
        if core.keepalive_due(now):
            core.send_keepalive(now)

    def _note_flush(self) -> None:
        listener = self._listener
        if self._core.outbox and listener is not None:
            listener.flush()
            self._core.note_sent(time.monotonic())

    # ------------------------------------------------------------------ subscriptions

    async def _wait_channel(self, etype: str) -> None:
        core = self._core
        ch = core.channel_for(etype)
        if core.channel_state(ch) == _CH_CLOSED:
            core.open_channel(etype)
        self._note_flush()
        if self.ready and core.channel_state(ch) != _CH_OPENED:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._channel_waiters.setdefault(ch, []).append(fut)
            try:
                await asyncio.wait_for(fut, self.channel_timeout)
            except TimeoutError:
                raise SubscriptionError(f"{etype} channel not opened") from None
            finally:
                waiters = self._channel_waiters.get(ch)
                if waiters is not None and fut in waiters:
                    waiters.remove(fut)

    async def subscribe(self, event_class: Any, symbols: Iterable[str] | str,
                        refresh_interval: float = 0.1) -> None:
        """Subscribe to ``event_class`` (fastfeed's or tastytrade's class) for ``symbols``.

        ``refresh_interval`` is the channel's aggregation period; like tastytrade it only takes
        effect when the type's channel is first opened.
        """
        await self._subscribe(self._wire_type(event_class), _as_symbols(symbols), None,
                              refresh_interval)

    async def _subscribe(self, etype: str, symbols: list[str], from_time: Any,
                         refresh_interval: float) -> None:
        if self._error is not None:
            raise self._error
        self._check_usable()
        core = self._core
        core.channel_for(etype)  # ValueError for unknown types
        self._prepare_type(etype)
        changed = core.want(etype, symbols, from_time, refresh_interval)  # sent if authorized
        if not self.ready:
            return  # the session replays it when the connection is authorized
        try:
            await self._wait_channel(etype)
        except SubscriptionError:
            self._desired.remove(etype, changed)   # rejected: not replayed later
            raise
        self._clear_type_error(etype)

    async def unsubscribe(self, event_class: Any, symbols: Iterable[str] | str) -> None:
        """Stop receiving ``event_class`` for ``symbols``."""
        self._check_usable()
        etype = self._wire_type(event_class)
        if self._core.unwant(etype, _as_symbols(symbols)):
            self._note_flush()

    async def unsubscribe_all(self, event_class: Any) -> None:
        """Cancel the type's channel (the next subscribe opens it again)."""
        self._check_usable()
        etype = self._wire_type(event_class)
        self._core.unwant_all(etype)
        self._note_flush()

    @staticmethod
    def candle_symbol(ticker: str, interval: str | None,
                      extended_trading_hours: bool = False) -> str:
        """tastytrade's candle symbol syntax: ``AAPL{=5m,tho=true}`` / ``AAPL{=5m}``."""
        if extended_trading_hours:
            return f"{ticker}{{={interval}}}"
        return f"{ticker}{{={interval},tho=true}}"

    async def subscribe_candle(self, symbols: Iterable[str] | str, interval: str,
                               start_time: datetime | None = None,
                               extended_trading_hours: bool = False,
                               refresh_interval: float = 0.1) -> None:
        """Candles of ``interval`` (e.g. ``"5m"``) from ``start_time`` (default 2001-09-09)."""
        from_time = (round(start_time.timestamp() * 1000) if start_time is not None
                     else CANDLE_DEFAULT_FROM_TIME)
        syms = [self.candle_symbol(t, interval, extended_trading_hours)
                for t in _as_symbols(symbols)]
        await self._subscribe("Candle", syms, from_time, refresh_interval)

    async def unsubscribe_candle(self, ticker: str, interval: str | None = None,
                                 extended_trading_hours: bool = False) -> None:
        """Remove a candle subscription (same symbol syntax as ``subscribe_candle``)."""
        await self.unsubscribe("Candle", [self.candle_symbol(ticker, interval,
                                                             extended_trading_hours)])

    # ------------------------------------------------------------------ typed consumer API
    # Typed by their argument as tastytrade's SDK: ``listen(Quote)`` yields ``Quote``. A wire
    # type name (``"Quote"``) or tastytrade's own class of the same name works too (``Any``).

    @overload
    def listen(self, event_class: type[U]) -> AsyncIterator[U]: ...
    @overload
    def listen(self, event_class: str | type[Any]) -> AsyncIterator[Any]: ...

    def listen(self, event_class: Any) -> AsyncIterator[Any]:
        """Every event of ``event_class`` from now on (each call sees every event)."""
        return super().listen(event_class)

    @overload
    def listen_batches(self, event_class: type[U]) -> AsyncIterator[EventBatch[U]]: ...
    @overload
    def listen_batches(self, event_class: str | type[Any]) -> AsyncIterator[EventBatch[Any]]: ...

    def listen_batches(self, event_class: Any) -> AsyncIterator[EventBatch[Any]]:
        """Zero-copy ``EventBatch``es of ``event_class`` (at most one per socket read)."""
        return super().listen_batches(event_class)

    if TYPE_CHECKING:
        # typing only: at run time get_event is Streamer's (a completed awaitable while
        # events are buffered, no coroutine per event)
        @overload  # type: ignore[no-overload-impl]
        async def get_event(self, event_class: type[U]) -> U: ...
        @overload
        async def get_event(self, event_class: str | type[Any]) -> Any: ...

    @overload
    def get_event_nowait(self, event_class: type[U]) -> U | None: ...
    @overload
    def get_event_nowait(self, event_class: str | type[Any]) -> Any: ...

    def get_event_nowait(self, event_class: Any) -> Any:
        """The next event of ``event_class`` (shared cursor), or ``None`` when none is waiting."""
        return super().get_event_nowait(event_class)

    @overload
    def latest(self, event_class: type[U], symbol: str) -> U | None: ...
    @overload
    def latest(self, event_class: str | type[Any], symbol: str) -> Any: ...

    def latest(self, event_class: Any, symbol: str) -> Any:
        """The last event received for ``symbol`` (``None`` if none yet). O(1), kept in C."""
        return super().latest(event_class, symbol)
