"""Drop-in replacements for the tastytrade SDK's streamers (layer 5).

``DXLinkStreamer`` matches tastytrade's API (the 10.2–11.1 callback generation, which is a
superset of 13.2.3's): ``await DXLinkStreamer(session)`` or ``async with``, ``close()``,
``subscribe`` / ``unsubscribe`` / ``unsubscribe_all``, ``subscribe_candle`` /
``unsubscribe_candle``, ``listen``, ``get_event``, ``get_event_nowait``; plus fastfeed's
``listen_batches``, ``latest`` and ``stats``.

Differences from tastytrade (deliberate, documented):

* events are ``fastfeed.dxfeed`` objects with ``float`` values (not ``Decimal``); NaN/Inf values
  are delivered, not dropped; ``event_class`` may be fastfeed's class or tastytrade's own class
  of the same name -- given tastytrade's class (or with ``events="sdk"``) the events are
  instances of it, converted lazily (``fastfeed._sdk_events``);
* every ``listen()`` of a type sees every event (tastytrade splits events between consumers);
* it reconnects (websockets backoff, the ``WEBSOCKETS_BACKOFF_*`` variables) and replays the
  subscriptions itself after every reconnect; ``reconnect_fn`` may resubscribe too (harmless);
* a silent connection (nothing for the server's keepaliveTimeout) is replaced;
* a refused token raises :class:`fastfeed.AuthenticationError` after one retry, a server ERROR
  raises :class:`fastfeed.StreamerError` -- from ``listen`` / ``get_event``, never a silent stop;
* FEED_SUBSCRIPTION is chunked (no 1009 closes for large symbol lists);
* a single ``str`` passed as ``symbols`` is one symbol.

Sessions: either shape tastytrade has had -- ``dxlink_url`` + ``streamer_token`` (+ ``proxy``),
or ``await session._get("/api-quote-tokens")`` returning ``{"token", "dxlink-url"}`` (fetched
again before every reconnect). The token is never logged or shown in a repr.

``AlertStreamer`` (account events: orders, fills, balances, positions …) is implemented in
``fastfeed._alerts`` and re-exported here, so both streamers come from one import.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any, Literal

from fastfeed._connection import Callback, Endpoint, _as_symbols
from fastfeed._alerts import AlertStreamer
from fastfeed._fanout import FanoutMixin
from fastfeed._sdk_events import EventsMode, SDKEventsMixin, check_events_mode
from fastfeed.errors import StreamerError, SubscriptionError
from fastfeed.streamer import Streamer

__all__ = ["DXLinkStreamer", "AlertStreamer"]

log = logging.getLogger("fastfeed.tastytrade")

# ================================================================================ DXLink

#: tastytrade 13.x default candle start when ``start_time`` is None (ms; 2001-09-09)
CANDLE_DEFAULT_FROM_TIME = 1_000_000_000
_CH_OPENED = "OPENED"
_CH_CLOSED = "CLOSED"


def _new_core(overflow: str, ring_bytes: int | None) -> Any:
    from fastfeed._native.dxlink import DXLinkSession

    if ring_bytes is None:
        return DXLinkSession(policy=overflow)
    return DXLinkSession(policy=overflow, ring_bytes=ring_bytes)


class DXLinkStreamer(SDKEventsMixin, FanoutMixin, Streamer):
    """tastytrade-compatible DXLink market-data streamer (see the module docstring).

    The protocol itself (SETUP/AUTH, one channel per event type with tastytrade's numbers,
    FEED_SETUP, chunked FEED_SUBSCRIPTION, decoding) is ``fastfeed._native.dxlink.DXLinkSession``;
    this class adds the connection, the desired-subscription replay and the consumer API.
    """

    #: our keepaliveTimeout announced in SETUP (seconds)
    keepalive_timeout: float = 60.0
    #: seconds to wait for CHANNEL_OPENED in subscribe()
    channel_timeout: float = 10.0
    #: liveness: declare the connection dead after the server's keepaliveTimeout of silence
    #: (``None`` here = use the server's SETUP value, else ``keepalive_timeout``)
    silence_timeout: float | None = None

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
        events: EventsMode = "auto",
    ) -> None:
        """``overflow``: what happens when a consumer falls a whole ring (``ring_bytes``, about
        8 MB per event type by default) behind: ``"drop_oldest"`` keeps the newest events and
        counts the loss in ``stats["gaps"]`` (a stale quote is worth less than a fresh one);
        ``"backpressure"`` stops reading the socket until the slowest consumer catches up
        (nothing is lost here; the server buffers, and may disconnect a client that stays slow).
        ``busy_poll=True``: the event loop never sleeps while the streamer is open (lowest
        latency, one core kept busy). ``events``: ``"auto"`` gives the tastytrade SDK's own
        event classes (``Decimal`` values, ``model_dump()``; see ``fastfeed._sdk_events``) when
        ``listen`` / ``get_event*`` / ``latest`` are given the SDK's class, fastfeed's float
        events otherwise; ``"sdk"``: the SDK's classes always; ``"fast"``: fastfeed's always.
        """
        if overflow not in ("drop_oldest", "backpressure"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'backpressure', not {overflow!r}")
        core = _new_core(overflow, ring_bytes)
        super().__init__(core, reconnect_fn=reconnect_fn, reconnect_args=reconnect_args,
                         disconnect_fn=disconnect_fn, disconnect_args=disconnect_args,
                         logger=log, busy_poll=busy_poll)
        self.max_message_size = int(core.max_message_size)
        self._session = session
        self.session = session
        self._events_mode = check_events_mode(events)
        self._ssl_context = ssl_context
        self.proxy: str | None = getattr(session, "proxy", None)
        self.__token: str | None = None
        self._channel_waiters: dict[int, list[asyncio.Future[None]]] = {}

    def __repr__(self) -> str:
        state = "ready" if self.ready else ("closed" if self._closed else "connecting")
        return f"<fastfeed.tastytrade.DXLinkStreamer {state} subscriptions={len(self._desired)}>"

    # ------------------------------------------------------------------ lifecycle


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
                self._resolve_channel(ev.channel, SubscriptionError(
                    f"DXLink channel {ev.channel} closed by the server"))
            elif kind == "ErrorReceived":
                if ev.error == "UNAUTHORIZED" and not self.ready:
                    self._auth_failed(f"DXLink ERROR {ev.error}: {ev.message}")
                else:
                    self._fail(StreamerError(f"DXLink server error {ev.error}: {ev.message}",
                                             error=ev.error, channel=ev.channel))
            # SetupReceived, FeedConfig and KeepaliveReceived are handled by the session

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

    def _replay_type(self, etype: str) -> None:
        core = self._core
        opts = self._desired.options.get(etype)
        if opts:
            core.aggregation_period = opts["refresh_interval"]
        core.open_channel(etype)
        by_time: dict[Any, list[str]] = {}
        for sym, from_time in self._desired.symbols(etype).items():
            by_time.setdefault(from_time, []).append(sym)
        for from_time, syms in by_time.items():
            core.subscribe(etype, syms, from_time)

    def _on_ready(self, reconnected: bool) -> None:
        for etype in list(self._desired.items):
            self._replay_type(etype)
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
            except asyncio.TimeoutError:
                raise SubscriptionError(f"{etype} channel not opened") from None

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
        core = self._core
        core.channel_for(etype)  # ValueError for unknown types
        self._prepare_type(etype)
        self._desired.options.setdefault(etype, {"refresh_interval": refresh_interval})
        changed = self._desired.add(etype, symbols, from_time)
        if not self.ready:
            return  # replayed when the connection is ready
        if core.channel_state(core.channel_for(etype)) != _CH_OPENED:
            core.aggregation_period = self._desired.options[etype]["refresh_interval"]
        if changed:
            core.subscribe(etype, changed, from_time)
        await self._wait_channel(etype)

    async def unsubscribe(self, event_class: Any, symbols: Iterable[str] | str) -> None:
        """Stop receiving ``event_class`` for ``symbols``."""
        etype = self._wire_type(event_class)
        gone = self._desired.remove(etype, _as_symbols(symbols))
        if gone and self.ready:
            self._core.unsubscribe(etype, gone)
            self._note_flush()

    async def unsubscribe_all(self, event_class: Any) -> None:
        """Cancel the type's channel (the next subscribe opens it again)."""
        etype = self._wire_type(event_class)
        self._desired.clear(etype)
        self._desired.options.pop(etype, None)
        if self.ready:
            self._core.cancel(etype)
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

    def listen(self, event_class: Any) -> AsyncIterator[Any]:
        """Every event of ``event_class`` from now on (each call sees every event)."""
        return super().listen(event_class)

    def listen_batches(self, event_class: Any) -> AsyncIterator[Any]:
        """Zero-copy ``EventBatch``es of ``event_class`` (at most one per socket read)."""
        return super().listen_batches(event_class)
