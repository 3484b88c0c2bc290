"""The DXLink client session (sans-I/O, typed Python) on top of the C decoder.

:class:`DXLinkSession` *is* a :class:`fastfeed.DXLinkDecoder` (so the transport hands data frames
straight to the C decoder and the rings: no Python per frame or event); only control messages
reach Python, through the decoder's ``_dispatch`` hook, which this class extends. It owns:

* the handshake: SETUP, then AUTH after the server's AUTH_STATE UNAUTHORIZED (strict
  ordering: nothing on a service channel before AUTHORIZED);
* the channels (tastytrade's numbering, one FEED channel per event type), FEED_SETUP with the
  event classes' field order, subscriptions queued until CHANNEL_OPENED;
* FEED_SUBSCRIPTION chunking (no message above ``max_subscription_bytes``, 8 KiB);
* keepalive timing: the caller passes its clock (``now``, seconds) to ``note_sent`` /
  ``note_received`` / ``keepalive_due`` / ``server_silent``;
* what the user wants subscribed (``desired``, a :class:`DesiredSubscriptions`: ``want`` /
  ``unwant`` / ``unwant_all``), sent at once when authorized and replayed in full on every
  AUTHORIZED (a new connection, a re-authorization) and by ``replay_type`` when the server
  closed a channel. ``subscribe`` / ``unsubscribe`` / ``cancel`` are the one-off protocol
  operations underneath (not remembered).

Outgoing messages go to ``outbox`` (``data_to_send()``), control events to ``control``
(``events_received()``).

Moved here from the Cython module (issue #12); ``fastfeed._native.dxlink.DXLinkSession`` and
``fastfeed._native.dxlink.CHANNELS`` still resolve to these objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

import fastfeed.dxlink.events as _events
from fastfeed._native.core import DEFAULT_RING_BYTES
from fastfeed._native.dxlink import DEFAULT_MAX_MESSAGE_SIZE, DXLinkDecoder
from fastfeed._subscriptions import DesiredSubscriptions
from fastfeed.errors import SubscriptionError

__all__ = [
    "DXLinkSession",
    "CHANNELS",
    "MAX_SUBSCRIPTION_BYTES",
    "INITIAL",
    "SETUP_SENT",
    "UNAUTHORIZED",
    "AUTHORIZED",
    "CH_CLOSED",
    "CH_REQUESTED",
    "CH_OPENED",
    "CH_CANCELLING",
]

#: tastytrade's channel numbers (one FEED channel per event type); TradeETH gets 19.
CHANNELS: dict[str, int] = {
    "Candle": 1, "Greeks": 3, "Profile": 5, "Quote": 7, "Summary": 9, "TheoPrice": 11,
    "TimeAndSale": 13, "Trade": 15, "Underlying": 17, "TradeETH": 19}

MAX_SUBSCRIPTION_BYTES = 8192

# session states
INITIAL = "INITIAL"
SETUP_SENT = "SETUP_SENT"
UNAUTHORIZED = "UNAUTHORIZED"
AUTHORIZED = "AUTHORIZED"

# channel states
CH_CLOSED = "CLOSED"
CH_REQUESTED = "REQUESTED"
CH_OPENED = "OPENED"
CH_CANCELLING = "CANCELLING"

_Op = tuple[str, list[dict[str, Any]] | None]


def _to_ms(from_time: Any) -> int | None:
    if from_time is None:
        return None
    if isinstance(from_time, bool):
        raise TypeError("from_time must be ms since the epoch or a datetime")
    if isinstance(from_time, int):
        return from_time
    if isinstance(from_time, float):
        return int(from_time)
    ts = getattr(from_time, "timestamp", None)
    if ts is not None:
        return int(ts() * 1000)
    raise TypeError("from_time must be ms since the epoch or a datetime")


def _fields_of(wire: str) -> list[str]:
    cls = getattr(_events, wire)
    return list(cls.FIELDS)


class DXLinkSession(DXLinkDecoder):
    """DXLink client state machine (sans-I/O) on top of the decoder (see the module docstring)."""

    def __init__(self, *, aggregation_period: float = 0.1, data_format: str = "COMPACT",
                 contract: str = "AUTO", keepalive_interval: float | None = None,
                 version: str = "0.1-DXF-JS/0.3.0",
                 max_subscription_bytes: int = MAX_SUBSCRIPTION_BYTES,
                 policy: str = "drop_oldest", ring_bytes: int = DEFAULT_RING_BYTES,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__(policy=policy, ring_bytes=ring_bytes, max_message_size=max_message_size)
        if data_format not in ("COMPACT", "FULL"):
            raise ValueError("data_format must be 'COMPACT' or 'FULL'")
        self.aggregation_period = aggregation_period
        self.data_format = data_format
        self.contract = contract
        self.version = version
        self.max_subscription_bytes = max_subscription_bytes
        self.keepalive_interval = keepalive_interval
        self.keepalive_timeout = 60.0           # ours: how long the server may stay silent
        self.accept_keepalive_timeout = 60.0
        self.server_keepalive_timeout: float | None = None    # the server's (from its SETUP)
        self.server_version: str | None = None
        self.user_id: str | None = None
        self.state = INITIAL
        self._token: str | None = None
        self._auth_sent = False
        self._last_sent: float | None = None
        self._last_recv: float | None = None
        self._channels: dict[int, str] = {}           # channel -> state
        self._setup_sent: set[int] = set()            # channels whose FEED_SETUP went out
        self._pending: dict[int, list[_Op]] = {}      # channel -> [(op, items)]
        self._types: dict[int, set[str]] = {}         # channel -> set of wire types used
        #: what the user wants, replayed on every AUTHORIZED
        self.desired = DesiredSubscriptions()

    # ---- connection ---------------------------------------------------------------------------

    def start(self, token: str | None, keepalive_timeout: float = 60,
              accept_keepalive_timeout: float = 60, now: float | None = None) -> None:
        """Queue SETUP (the first message of a connection). AUTH follows the server's
        AUTH_STATE UNAUTHORIZED (strict ordering); ``token`` may be None for servers without
        auth."""
        self.connection_lost()
        self._token = token
        self.keepalive_timeout = float(keepalive_timeout)
        self.accept_keepalive_timeout = float(accept_keepalive_timeout)
        self._send({"type": "SETUP", "channel": 0, "keepaliveTimeout": keepalive_timeout,
                    "acceptKeepaliveTimeout": accept_keepalive_timeout,
                    "version": self.version})
        self.state = SETUP_SENT
        if now is not None:
            self._last_recv = now
            self._last_sent = now

    def authorize(self, token: str | None = None) -> None:
        """Send AUTH now (e.g. with a refreshed token)."""
        if token is not None:
            self._token = token
        if self._token is None:
            raise ValueError("no token")
        self._send({"type": "AUTH", "channel": 0, "token": self._token})
        self._auth_sent = True

    def connection_lost(self) -> None:
        """Forget everything per-connection (channels, FEED_CONFIG, pending requests)."""
        self.state = INITIAL
        self._auth_sent = False
        self._channels = {}
        self._setup_sent = set()
        self._pending = {}
        self._types = {}
        self.reset_channels()

    # ---- keepalive --------------------------------------------------------------------------

    @property
    def keepalive_period(self) -> float:
        """Seconds between KEEPALIVEs when otherwise idle."""
        if self.keepalive_interval is not None:
            return float(self.keepalive_interval)
        server = self.server_keepalive_timeout or 60.0
        return max(0.5, min(30.0, float(server) / 2.0))

    def note_sent(self, now: float) -> None:
        """The transport flushed something at ``now``."""
        self._last_sent = now

    def note_received(self, now: float) -> None:
        """Something arrived at ``now`` (call once per socket read)."""
        self._last_recv = now

    def keepalive_due(self, now: float) -> bool:
        """True when nothing was sent for ``keepalive_period`` seconds (after start())."""
        if self.state == INITIAL:
            return False
        if self._last_sent is None:
            return True
        return now - self._last_sent >= self.keepalive_period

    def send_keepalive(self, now: float | None = None) -> None:
        self._send({"type": "KEEPALIVE", "channel": 0})
        if now is not None:
            self._last_sent = now

    def server_silent(self, now: float) -> bool:
        """True when the server has been silent longer than our keepaliveTimeout."""
        if self.state == INITIAL or self._last_recv is None:
            return False
        return now - self._last_recv > self.keepalive_timeout

    # ---- channels and subscriptions ---------------------------------------------------------

    def channel_for(self, event_type: type | str) -> int:
        wire = self._wire_name(event_type)
        if wire not in CHANNELS:
            raise ValueError(f"unknown DXLink event type {event_type!r}")
        return CHANNELS[wire]

    def channel_state(self, channel: int) -> str:
        return self._channels.get(channel, CH_CLOSED)

    def open_channel(self, event_type: type | str) -> int:
        """Make sure the channel of ``event_type`` is (being) opened. Returns its number."""
        ch = self.channel_for(event_type)
        self._types.setdefault(ch, set()).add(self._wire_name(event_type))
        self._pending.setdefault(ch, [])
        self._pump(ch)
        return ch

    def subscribe(self, event_type: type | str, symbols: str | Iterable[str],
                  from_time: Any = None) -> int:
        """FEED_SUBSCRIPTION add (``from_time``: ms since the epoch or datetime, Candle etc.)."""
        wire = self._wire_name(event_type)
        ch = self.channel_for(wire)
        ms = _to_ms(from_time)
        items: list[dict[str, Any]] = []
        for s in ([symbols] if isinstance(symbols, str) else symbols):
            it: dict[str, Any] = {"type": wire, "symbol": str(s)}
            if ms is not None:
                it["fromTime"] = ms
            items.append(it)
        self._check_items(ch, items)
        self._types.setdefault(ch, set()).add(wire)
        self._pending.setdefault(ch, []).append(("add", items))
        self._pump(ch)
        return ch

    def unsubscribe(self, event_type: type | str, symbols: str | Iterable[str]) -> int:
        """FEED_SUBSCRIPTION remove (no fromTime)."""
        wire = self._wire_name(event_type)
        ch = self.channel_for(wire)
        items: list[dict[str, Any]] = [
            {"type": wire, "symbol": str(s)}
            for s in ([symbols] if isinstance(symbols, str) else symbols)]
        self._check_items(ch, items)
        self._pending.setdefault(ch, []).append(("remove", items))
        self._pump(ch)
        return ch

    def reset(self, event_type: type | str) -> int:
        """FEED_SUBSCRIPTION reset: drop every subscription of the channel of ``event_type``."""
        ch = self.channel_for(event_type)
        self._pending.setdefault(ch, []).append(("reset", None))
        self._pump(ch)
        return ch

    def cancel(self, event_type: type | str) -> int:
        """CHANNEL_CANCEL the channel of ``event_type`` (pending requests are dropped)."""
        ch = self.channel_for(event_type)
        self._pending.pop(ch, None)
        st = self._channels.get(ch, CH_CLOSED)
        if st in (CH_OPENED, CH_REQUESTED) and self.state == AUTHORIZED:
            self._send({"type": "CHANNEL_CANCEL", "channel": ch})
            self._channels[ch] = CH_CANCELLING
        elif st != CH_CANCELLING:
            self._channels[ch] = CH_CLOSED
        self._setup_sent.discard(ch)
        self._types.pop(ch, None)
        return ch

    # ---- desired subscriptions (owned here, replayed on every AUTHORIZED) ---------------------

    def want(self, event_type: type | str, symbols: Iterable[str], from_time: Any = None,
             aggregation_period: float | None = None) -> list[str]:
        """Add to ``desired`` (sent now when authorized); returns the new or changed symbols.

        ``aggregation_period``: the type's channel period (kept from the first call, applied
        when its channel opens, as tastytrade does).
        """
        wire = self._wire_name(event_type)
        ch = self.channel_for(wire)
        if aggregation_period is not None:
            self.desired.options.setdefault(wire, {"refresh_interval": aggregation_period})
        changed = self.desired.add(wire, symbols, from_time)
        if self.state == AUTHORIZED:
            if self.channel_state(ch) != CH_OPENED:
                self._apply_period(wire)
            if changed:
                self.subscribe(wire, changed, from_time)
            else:
                self.open_channel(wire)
        return changed

    def unwant(self, event_type: type | str, symbols: Iterable[str]) -> list[str]:
        """Remove from ``desired`` (sent now when authorized); returns the removed symbols."""
        wire = self._wire_name(event_type)
        gone = self.desired.remove(wire, symbols)
        if gone and self.state == AUTHORIZED:
            self.unsubscribe(wire, gone)
        return gone

    def unwant_all(self, event_type: type | str) -> None:
        """Forget the type and cancel its channel (the next ``want`` opens it again)."""
        wire = self._wire_name(event_type)
        self.desired.clear(wire)
        self.desired.options.pop(wire, None)
        self.cancel(wire)

    def types_on(self, channel: int) -> list[str]:
        """The desired types carried by ``channel``."""
        return [t for t in self.desired.items if CHANNELS.get(t) == channel]

    def replay_type(self, event_type: type | str) -> None:
        """(Re)open the type's channel and subscribe everything desired for it."""
        wire = self._wire_name(event_type)
        self._apply_period(wire)
        self.open_channel(wire)
        by_time: dict[Any, list[str]] = {}
        for sym, from_time in self.desired.symbols(wire).items():
            by_time.setdefault(from_time, []).append(sym)
        for from_time, syms in by_time.items():
            self.subscribe(wire, syms, from_time)

    def replay(self) -> None:
        """Replay every desired subscription (called on AUTHORIZED)."""
        for wire in list(self.desired.items):
            self.replay_type(wire)

    def _apply_period(self, wire: str) -> None:
        opts = self.desired.options.get(wire)
        if opts:
            self.aggregation_period = opts["refresh_interval"]

    # ---- internals --------------------------------------------------------------------------

    def _send(self, obj: dict[str, Any]) -> None:
        raw = orjson.dumps(obj)
        self.outbox.append(raw)
        if obj["type"] in ("FEED_SETUP", "CHANNEL_REQUEST"):
            # the decoder learns what we asked for (acceptEventFields, DOM channels), so a
            # FEED_CONFIG without eventFields -- what tastytrade's server sends -- means "as
            # requested", exactly as when a two-way capture is replayed with feed(sent=True)
            self._on_sent(raw)

    def _check_items(self, ch: int, items: list[dict[str, Any]]) -> None:
        limit = self.max_subscription_bytes - len(self._sub_prefix(ch, "remove")) - 2
        for it in items:
            if len(orjson.dumps(it)) > limit:
                raise SubscriptionError(
                    f"subscription item for {it['type']} does not fit in a "
                    f"{self.max_subscription_bytes}-byte FEED_SUBSCRIPTION message")

    @staticmethod
    def _sub_prefix(ch: int, op: str) -> bytes:
        return b'{"type":"FEED_SUBSCRIPTION","channel":%d,"%s":[' % (ch, op.encode())

    def _feed_setup(self, ch: int) -> None:
        types = sorted(self._types.get(ch, ()))
        fields = {t: _fields_of(t) for t in types}
        self._send({"type": "FEED_SETUP", "channel": ch,
                    "acceptAggregationPeriod": self.aggregation_period,
                    "acceptDataFormat": self.data_format,
                    "acceptEventFields": fields})
        self._setup_sent.add(ch)

    def _pump(self, ch: int) -> None:
        if self.state != AUTHORIZED:
            return
        st = self._channels.get(ch, CH_CLOSED)
        if st == CH_CLOSED:
            if not self._pending.get(ch) and ch not in self._types:
                return
            self._send({"type": "CHANNEL_REQUEST", "channel": ch, "service": "FEED",
                        "parameters": {"contract": self.contract}})
            self._channels[ch] = CH_REQUESTED
            return
        if st != CH_OPENED:
            return
        if ch not in self._setup_sent:
            self._feed_setup(ch)
        ops = self._pending.get(ch)
        if not ops:
            return
        self._pending[ch] = []
        # merge consecutive ops of the same kind, then chunk each run
        runs: list[tuple[str, list[dict[str, Any]] | None]] = []
        for op, items in ops:
            last = runs[-1] if runs else None
            if op != "reset" and last is not None and last[0] == op and last[1] is not None:
                last[1].extend(items or ())
            else:
                runs.append((op, list(items) if items else None))
        for op, run_items in runs:
            if op == "reset":
                self.outbox.append(b'{"type":"FEED_SUBSCRIPTION","channel":%d,"reset":true}' % ch)
                continue
            self._emit_chunks(ch, op, run_items or [])

    def _emit_chunks(self, ch: int, op: str, items: list[dict[str, Any]]) -> None:
        prefix = self._sub_prefix(ch, op)
        limit = self.max_subscription_bytes
        parts: list[bytes] = []
        size = len(prefix) + 2          # prefix + "]}"
        for it in items:
            enc = orjson.dumps(it)
            extra = len(enc) + (1 if parts else 0)
            if parts and size + extra > limit:
                self.outbox.append(prefix + b",".join(parts) + b"]}")
                parts = []
                size = len(prefix) + 2
                extra = len(enc)
            parts.append(enc)
            size += extra
        if parts:
            self.outbox.append(prefix + b",".join(parts) + b"]}")

    def _dispatch(self, typ: str, ch: int, msg: dict[str, Any]) -> None:
        super()._dispatch(typ, ch, msg)
        if typ == "SETUP":
            self.server_version = msg.get("version")
            ka = msg.get("keepaliveTimeout")
            if isinstance(ka, (int, float)) and not isinstance(ka, bool) and ka > 0:
                self.server_keepalive_timeout = float(ka)
        elif typ == "AUTH_STATE":
            state = msg.get("state")
            if state == "AUTHORIZED":
                self.state = AUTHORIZED
                self.user_id = msg.get("userId")
                self.replay()
                for c in sorted(set(self._pending) | set(self._types)):
                    self._pump(c)
            elif state == "UNAUTHORIZED":
                was = self.state
                self.state = UNAUTHORIZED
                if was == AUTHORIZED:
                    # authorization withdrawn: channels are gone on the server side
                    self._channels = {}
                    self._setup_sent = set()
                if self._auth_sent:
                    last = self.control[-1]
                    last.rejected = True  # type: ignore[attr-defined]
                elif self._token is not None:
                    self.authorize()
        elif typ == "CHANNEL_OPENED":
            if self._channels.get(ch) == CH_REQUESTED:
                self._channels[ch] = CH_OPENED
                self._setup_sent.discard(ch)
                self._pump(ch)
        elif typ == "CHANNEL_CLOSED":
            prev = self._channels.get(ch, CH_CLOSED)
            self._channels[ch] = CH_CLOSED
            self._setup_sent.discard(ch)
            if prev == CH_CANCELLING and self._pending.get(ch):
                self._pump(ch)      # re-subscribed while the cancel was in flight
