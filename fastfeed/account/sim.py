"""A local tastytrade account-streamer ("AlertStreamer") websocket server.

Behaviour follows tastytrade-api.md §6: plain JSON text frames on an unauthenticated socket; every
client message must carry ``auth-token: "Bearer <token>"`` (checked on *every* message); acks
``{"status": "ok", "action", "web-socket-session-id", "request-id", "value"?}``; subscriptions
other than ``connect`` before ``connect`` are rejected with ``connect-not-completed``;
notifications ``{"type", "data", "timestamp"}`` and batches ``{"results": [...]}``.

Notifications are *live events*: :meth:`AccountStreamerServer.push` appends them to one
server-wide pending queue, and each is written once to every live connection that is subscribed
to it (``connect``-ed with its account, or subscribed to quote alerts / public watchlists). A
notification nobody can receive yet stays pending (in order) until a subscribed connection
exists; it is never sent twice to the same subscriber and never re-sent after it was written.

**Delivery accounting** (what the exactly-once tests check): a notification counts as *sent on
connection c* once its frame was written to c's live socket. A ``drop`` fault stops writing, lets
the bytes already written reach the client (up to ``drop_flush_timeout``), then resets the TCP
connection (RST, no close frame); only if they could not be flushed in time are the
notifications still in user space or untransmitted in the kernel (``SIOCOUTQNSD``) un-recorded
and put back at the front of the pending queue. :attr:`AccountStreamerServer.deliveries` is the
resulting ``[(seq, conn_id), ...]`` in send order.

    async with AccountStreamerServer(token="t", script=None) as srv:
        ...                       # connect a client to srv.url
        srv.push("Order", order_data("5WT00000", 1, "Filled"))

Also ``python -m fastfeed.sim account --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import itertools
import socket
import struct
import sys
import termios
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from picows import WSUpgradeRequest

from fastfeed.sim._base import SimConnection, SimServer, parse_options, run_until_signal
from fastfeed.sim.sessions import AccountSession

__all__ = [
    "AccountStreamerServer",
    "AccountConnection",
    "Notification",
    "ACCOUNT_TYPES",
    "order_data",
    "order_lifecycle",
    "balance_data",
    "position_data",
    "trading_status_data",
    "quote_alert_data",
    "watchlist_data",
    "complex_order_data",
    "external_transaction_data",
    "year_gain_data",
    "order_chain_data",
    "default_script",
    "main",
]

#: notification types routed by account number (need ``connect`` with that account)
ACCOUNT_TYPES = frozenset({
    "Order", "ComplexOrder", "AccountBalance", "CurrentPosition", "TradingStatus",
    "ExternalTransaction", "UnderlyingYearGainSummary", "OrderChain",
})
#: notification type -> subscription action it needs (besides account types)
TOPIC_TYPES = {"QuoteAlert": "quote-alerts-subscribe", "PublicWatchlists": "public-watchlists-subscribe"}
_SUB_ACTIONS = frozenset({"public-watchlists-subscribe", "quote-alerts-subscribe",
                          "user-message-subscribe"})


_SIOCOUTQNSD = 0x894B  # Linux: unsent bytes in a TCP socket's send queue


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj)


#: a TCP drop's uncertainty margin: about one loopback segment (MSS 65483) past what had left
_UNCERTAIN_BYTES = 65536

#: offset of ``tcpi_bytes_acked`` (u64) in Linux's ``struct tcp_info``
_TCPI_BYTES_ACKED = 120


def _frame_len(n: int) -> int:
    """Bytes on the wire of an unmasked server frame with an ``n``-byte payload."""
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


class Notification:
    """One pushed notification and where it was sent."""

    __slots__ = ("seq", "type", "message", "account", "topic", "sent_on", "raw")

    def __init__(self, seq: int, type_: str, message: Any, account: str | None,
                 topic: str | None, raw: bytes | None = None) -> None:
        self.seq = seq
        self.type = type_
        self.message = message  # the {type, data, timestamp} dict (None for raw frames)
        self.account = account
        self.topic = topic
        self.sent_on: list[int] = []
        self.raw = raw  # pre-encoded payload (malformed frames are never Notifications)

    def __repr__(self) -> str:
        return f"Notification(seq={self.seq}, type={self.type!r}, sent_on={self.sent_on})"


# ------------------------------------------------------------------------------- sample data
# Field sets are complete for tastytrade 13.2.3's models (valid notifications validate there).

_TS = "2026-01-05T14:30:00.000+00:00"


def order_data(account: str, order_id: int, status: str = "Received", *, symbol: str = "AAPL",
               quantity: int = 1, price: str = "150.25", filled: bool | None = None) -> dict[str, Any]:
    """An ``Order`` notification's data (a PlacedOrder)."""
    filled = status == "Filled" if filled is None else filled
    leg: dict[str, Any] = {
        "instrument-type": "Equity", "symbol": symbol, "action": "Buy to Open",
        "quantity": quantity, "remaining-quantity": 0 if filled else quantity,
        "fills": [],
    }
    if filled:
        leg["fills"] = [{"ext-group-fill-id": f"g{order_id}", "ext-exec-id": f"x{order_id}",
                         "fill-id": f"f{order_id}", "quantity": str(quantity),
                         "fill-price": price, "filled-at": _TS,
                         "destination-venue": "SIM"}]
    data: dict[str, Any] = {
        "id": order_id, "account-number": account, "time-in-force": "Day",
        "order-type": "Limit", "size": quantity, "underlying-symbol": symbol,
        "underlying-instrument-type": "Equity", "price": price, "price-effect": "Debit",
        "status": status, "cancellable": status in ("Received", "Live"),
        "editable": status in ("Received", "Live"), "edited": False,
        "received-at": _TS, "updated-at": 1767623400000 + order_id, "legs": [leg],
    }
    if status in ("Live", "Filled"):
        data["live-at"] = _TS
    if status == "Filled":
        data["terminal-at"] = _TS
    return data


def order_lifecycle(account: str, order_id: int, **kw: Any) -> list[tuple[str, dict[str, Any]]]:
    """Received → Live → Filled for one order."""
    return [("Order", order_data(account, order_id, s, **kw))
            for s in ("Received", "Live", "Filled")]


_BALANCE_DECIMALS = (
    "cash-balance long-equity-value short-equity-value long-derivative-value "
    "short-derivative-value long-futures-value short-futures-value "
    "long-futures-derivative-value short-futures-derivative-value long-margineable-value "
    "short-margineable-value margin-equity equity-buying-power derivative-buying-power "
    "day-trading-buying-power futures-margin-requirement available-trading-funds "
    "maintenance-requirement maintenance-call-value reg-t-call-value day-trading-call-value "
    "day-equity-call-value net-liquidating-value cash-available-to-withdraw day-trade-excess "
    "pending-cash long-cryptocurrency-value short-cryptocurrency-value "
    "cryptocurrency-margin-requirement unsettled-cryptocurrency-fiat-amount "
    "closed-loop-available-balance equity-offering-margin-requirement long-bond-value "
    "bond-margin-requirement used-derivative-buying-power reg-t-margin-requirement "
    "futures-overnight-margin-requirement futures-intraday-margin-requirement "
    "maintenance-excess pending-margin-interest effective-cryptocurrency-buying-power"
).split()


def balance_data(account: str, cash: str = "10000.5") -> dict[str, Any]:
    """An ``AccountBalance`` notification's data."""
    d: dict[str, Any] = {"account-number": account}
    for i, k in enumerate(_BALANCE_DECIMALS):
        d[k] = cash if k == "cash-balance" else f"{i}.25"
    d["pending-cash-effect"] = "Debit"
    d["unsettled-cryptocurrency-fiat-effect"] = "None"
    d["snapshot-date"] = "2026-01-05"
    d["time-of-day"] = "EOD"
    d["updated-at"] = _TS
    return d


def position_data(account: str, symbol: str = "AAPL", quantity: int = 1) -> dict[str, Any]:
    """A ``CurrentPosition`` notification's data."""
    return {
        "account-number": account, "symbol": symbol, "instrument-type": "Equity",
        "underlying-symbol": symbol, "quantity": quantity, "quantity-direction": "Long",
        "close-price": "149.5", "average-open-price": "150.25", "multiplier": 1,
        "cost-effect": "Debit", "is-suppressed": False, "is-frozen": False,
        "realized-day-gain": "1.5", "realized-day-gain-effect": "Debit",
        "realized-today": "0.0", "realized-today-effect": "None",
        "created-at": _TS, "updated-at": _TS, "mark": "150.0",
        "realized-day-gain-date": "2026-01-05",
    }


def trading_status_data(account: str) -> dict[str, Any]:
    """A ``TradingStatus`` notification's data."""
    d: dict[str, Any] = {
        "account-number": account, "equities-margin-calculation-type": "Reg T",
        "fee-schedule-name": "default", "futures-margin-rate-multiplier": "0.0",
        "id": 42, "options-level": "No Restrictions", "short-calls-enabled": True,
        "small-notional-futures-margin-rate-multiplier": "0.0", "updated-at": _TS,
        "day-trade-count": 0, "pdt-reset-on": "2026-01-06",
    }
    for k in ("has-intraday-equities-margin", "is-aggregated-at-clearing", "is-closed",
              "is-closing-only", "is-cryptocurrency-enabled", "is-frozen",
              "is-full-equity-margin-required", "is-futures-closing-only",
              "is-futures-intra-day-enabled", "is-futures-enabled",
              "is-in-day-trade-equity-maintenance-call", "is-in-margin-call",
              "is-pattern-day-trader", "is-small-notional-futures-intra-day-enabled",
              "is-roll-the-day-forward-enabled", "are-far-otm-net-options-restricted",
              "is-equity-offering-enabled", "is-equity-offering-closing-only"):
        d[k] = False
    return d


def quote_alert_data(symbol: str = "SPY", n: int = 1) -> dict[str, Any]:
    """A ``QuoteAlert`` notification's data."""
    return {
        "user-external-id": "U0001", "symbol": symbol, "alert-external-id": f"A{n}",
        "expires-at": 1767709800000, "completed-at": _TS, "created-at": _TS,
        "triggered-at": _TS, "field": "Last", "operator": ">", "threshold": "600",
        "threshold-numeric": "600.0", "dx-symbol": symbol,
    }


def watchlist_data(name: str = "Sim Movers") -> dict[str, Any]:
    """A ``PublicWatchlists`` notification's data (a Watchlist)."""
    return {"name": name, "group-name": "fastfeed", "order-index": 3,
            "watchlist-entries": [{"symbol": "AAPL", "instrument-type": "Equity"},
                                  {"symbol": "SPY", "instrument-type": "Equity"}]}


def complex_order_data(account: str, complex_id: int, status: str = "Live") -> dict[str, Any]:
    """A ``ComplexOrder`` notification's data (an OCO PlacedComplexOrder)."""
    a = order_data(account, complex_id * 10 + 1, status, symbol="SPY")
    b = order_data(account, complex_id * 10 + 2, status, symbol="SPY")
    return {"id": complex_id, "account-number": account, "type": "OCO", "orders": [a, b],
            "related-orders": [{"id": str(complex_id * 10 + 1)}]}


def external_transaction_data(account: str, n: int = 1) -> dict[str, Any]:
    """An ``ExternalTransaction`` notification's data."""
    return {"id": n, "account-number": account, "amount": "2500.0",
            "bank-account-type": "Checking", "banking-date": "2026-01-05", "created-at": _TS,
            "direction": "Deposit", "disbursement-type": "ACH", "ext-transfer-id": f"T{n}",
            "funds-available-date": "2026-01-07", "is-cancelable": False,
            "is-clearing-accepted": True, "state": "Completed", "transfer-method": "ACH",
            "updated-at": _TS}


def year_gain_data(account: str, symbol: str = "AAPL") -> dict[str, Any]:
    """An ``UnderlyingYearGainSummary`` notification's data."""
    return {"year": 2026, "account-number": account, "symbol": symbol,
            "instrument-type": "Equity", "fees": "0.5", "fees-effect": "Debit",
            "commissions": "1.0", "commissions-effect": "Debit",
            "yearly-realized-gain": "12.5", "yearly-realized-gain-effect": "Credit",
            "realized-lot-gain": "12.5", "realized-lot-gain-effect": "Credit"}


def order_chain_data(account: str, chain_id: int = 1) -> dict[str, Any]:
    """An ``OrderChain`` notification's data (tastytrade ≥ 11 has no model for it)."""
    return {"id": chain_id, "account-number": account, "description": "Sim chain",
            "underlying-symbol": "AAPL", "computed-data": {"open": True},
            "lite-nodes": [], "created-at": _TS, "updated-at": _TS}


def default_script(account: str, *, first_order_id: int = 1000) -> list[tuple[str, dict[str, Any]]]:
    """The account part of the scripted sequence played on ``connect`` (all schema-valid)."""
    out: list[tuple[str, dict[str, Any]]] = [
        ("AccountBalance", balance_data(account)),
        ("TradingStatus", trading_status_data(account)),
    ]
    out += order_lifecycle(account, first_order_id)
    out += [
        ("CurrentPosition", position_data(account)),
        ("AccountBalance", balance_data(account, cash="9849.75")),
        ("ComplexOrder", complex_order_data(account, 7)),
        ("ExternalTransaction", external_transaction_data(account)),
        ("UnderlyingYearGainSummary", year_gain_data(account)),
    ]
    return out


def invalid_data(type_: str, account: str) -> dict[str, Any]:
    """Schema-invalid data for ``type_`` (required fields missing, like the captured balance)."""
    if type_ == "Order":
        return {"id": "not-a-number", "account-number": account, "status": "Filled"}
    return {"account-number": account, "cash-balance": "1000.0"}


# ------------------------------------------------------------------------------- server


class AccountStreamerServer(SimServer):
    """Local tastytrade account streamer.

    Protocol options (besides the common ones of :class:`~fastfeed.sim._base.SimServer`; the
    frame-count faults count *notification frames*):

    token, extra_tokens
        Access token(s) accepted in ``auth-token`` (``"Bearer " + token``) on every message;
        ``token=None`` accepts any non-empty token. Change at run time with ``set(token=...)``.
    script
        ``"default"``: on the first ``connect`` naming an account, push :func:`default_script`
        for it; on the first ``quote-alerts-subscribe`` / ``public-watchlists-subscribe`` push
        one quote alert / one watchlist. ``None``: push nothing by itself.
    rate
        Notifications per second per connection (``None`` = as fast as they are pushed).
    batch_size
        Send up to N pending notifications as one ``{"results": [...]}`` frame.
    invalid_every
        Every N-th pushed notification is followed by a schema-invalid one (counted as a
        notification: clients must still deliver it).
    malformed_every
        After every N-th notification frame, send one extra malformed (truncated JSON) frame.
    heartbeat_timeout, heartbeat_close_code
        Close a connection that sent no message for this many seconds (``None`` = never).
    auto_orders
        Order lifecycles (Received → Live → Filled) pushed per second for every connected
        account (CLI demos; 0 = off).
    ack_delay
        Seconds before an ack is sent.
    drop_flush_timeout
        A TCP drop (``drop`` fault, ``drop_after_frames``) first waits up to this long for the
        bytes already written to reach the client, then resets the connection (RST).
    """

    kind = "account"
    default_path = "/"

    rate: float | None = None
    token: str | None = "sim-token"
    extra_tokens: Sequence[str] = ()
    script: str | None = "default"
    batch_size: int = 1
    invalid_every: int | None = None
    heartbeat_timeout: float | None = None
    heartbeat_close_code: int = 1000
    auto_orders: float = 0.0
    ack_delay: float = 0.0
    drop_flush_timeout: float = 2.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.pending: deque[Notification] = deque()
        self.notifications: list[Notification] = []
        self.deliveries: list[tuple[int, int]] = []  # (seq, conn_id) in send order
        self.requeued = 0  # notifications taken back from an aborted socket
        #: seqs written just before a TCP drop that may or may not have reached the client
        #: (within one segment of what had certainly left): not resent, not in ``deliveries``
        self.uncertain: list[int] = []
        self.auth_failures = 0
        self._seq = itertools.count(1)
        self._scripted: set[str] = set()
        self._drain_scheduled = False
        self._auto_task: asyncio.Task[None] | None = None
        self._order_ids = itertools.count(100_000)

    def session(self) -> AccountSession:
        """A session stand-in for ``AlertStreamer`` (pass ``url=srv.url`` too): its token."""
        return AccountSession(self.token if self.token is not None else "sim-token")

    def make_connection(self, request: WSUpgradeRequest, conn_id: int) -> SimConnection | None:
        return AccountConnection(self, conn_id, request.path.decode("latin-1"))

    async def start(self) -> AccountStreamerServer:
        await super().start()
        if self.auto_orders and self._auto_task is None:
            self._auto_task = asyncio.get_running_loop().create_task(self._auto())
        return self

    async def stop(self, close_code: int = 1001) -> None:
        if self._auto_task is not None:
            self._auto_task.cancel()
            self._auto_task = None
        await super().stop(close_code)

    # ------------------------------------------------------------------ tokens

    def token_ok(self, auth: Any) -> bool:
        if not isinstance(auth, str) or not auth.startswith("Bearer ") or len(auth) <= 7:
            return False
        if self.token is None:
            return True
        tok = auth[7:]
        return tok == self.token or tok in self.extra_tokens

    # ------------------------------------------------------------------ pushing notifications

    def push(self, type_: str, data: Any, *, timestamp: int | None = None) -> Notification:
        """Queue one notification ``{"type", "data", "timestamp"}``; it is sent as soon as a
        subscribed connection can take it. Returns its record (``seq``, ``sent_on``)."""
        n = self._push_one(type_, data, timestamp)
        if self.invalid_every and n.seq % self.invalid_every == 0:
            account = n.account or "5WT00000"
            self._push_one("AccountBalance", invalid_data("AccountBalance", account), None)
        self.kick()
        return n

    def push_many(self, items: Iterable[tuple[str, Any]]) -> list[Notification]:
        out = [self.push(t, d) for t, d in items]
        return out

    def _push_one(self, type_: str, data: Any, timestamp: int | None) -> Notification:
        seq = next(self._seq)
        ts = timestamp if timestamp is not None else int(time.time() * 1000)
        msg = {"type": type_, "data": data, "timestamp": ts}
        account = data.get("account-number") if isinstance(data, dict) else None
        topic = TOPIC_TYPES.get(type_)
        n = Notification(seq, type_, msg, account if type_ in ACCOUNT_TYPES or topic is None
                         else None, topic)
        self.notifications.append(n)
        self.pending.append(n)
        return n

    def kick(self) -> None:
        """Schedule a drain of the pending queue (call after changing subscriptions)."""
        if self._drain_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._drain_scheduled = True
        loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        if not self.pending:
            return
        conns = [c for c in self.live.values() if isinstance(c, AccountConnection)]
        if not conns:
            return
        # what each connection may take now, in order
        per_conn: dict[int, list[Notification]] = {}
        for n in self.pending:
            for c in conns:
                if c.wants(n) and c.id not in n.sent_on:
                    per_conn.setdefault(c.id, []).append(n)
        for c in conns:
            items = per_conn.get(c.id)
            if items:
                c.send_notifications(items)
        self.pending = deque(n for n in self.pending if not n.sent_on)

    @property
    def sent_notifications(self) -> list[Notification]:
        """Notifications written to at least one live socket, in push order."""
        return [n for n in self.notifications if n.sent_on]

    def sent_on(self, conn_id: int) -> list[int]:
        """Sequence numbers sent on connection ``conn_id``, in send order."""
        return [s for s, c in self.deliveries if c == conn_id]

    # ------------------------------------------------------------------ scripts

    def _on_connected(self, conn: AccountConnection, accounts: list[str]) -> None:
        if self.script == "default":
            for a in accounts:
                if a not in self._scripted:
                    self._scripted.add(a)
                    self.push_many(default_script(a))

    def _on_topic(self, conn: AccountConnection, action: str) -> None:
        if self.script == "default" and action not in self._scripted:
            self._scripted.add(action)
            if action == "quote-alerts-subscribe":
                self.push("QuoteAlert", quote_alert_data())
            elif action == "public-watchlists-subscribe":
                self.push("PublicWatchlists", watchlist_data())

    async def _auto(self) -> None:
        try:
            while True:
                await asyncio.sleep(1.0 / self.auto_orders if self.auto_orders > 0 else 1.0)
                accounts: set[str] = set()
                for c in self.live.values():
                    if isinstance(c, AccountConnection) and c.connected:
                        accounts.update(c.accounts)
                for a in sorted(accounts):
                    self.push_many(order_lifecycle(a, next(self._order_ids)))
        except asyncio.CancelledError:
            pass


class AccountConnection(SimConnection):
    server: AccountStreamerServer

    def __init__(self, server: AccountStreamerServer, conn_id: int, path: str) -> None:
        super().__init__(server, conn_id, path)
        self.session_id = f"sim-{conn_id}-{self.rng.getrandbits(32):08x}"
        self.connected = False
        self.accounts: list[str] = []
        self.topics: set[str] = set()
        self.actions: list[str] = []
        self.bytes_written = 0
        # (seq list, end offset in bytes_written) of notification frames, for abort accounting
        self._inflight: deque[tuple[list[Notification], int]] = deque()
        self._rate_next = 0.0
        self._rate_timer = False
        self._drop_deadline = 0.0
        self._drop_last_outq = -1
        self._drop_stable = 0
        self._socket_base: int | None = None   # socket bytes before our first frame (HTTP 101)

    # ------------------------------------------------------------------ lifecycle

    def on_open(self) -> None:
        if self.server.heartbeat_timeout:
            self._schedule_tick()

    def _schedule_tick(self) -> None:
        ht = self.server.heartbeat_timeout
        if not self.closed and ht:
            self.call_later(min(1.0, max(0.01, ht / 4)), self._tick)

    def _tick(self) -> None:
        if self.closed or self.loop is None:
            return
        ht = self.server.heartbeat_timeout
        if ht and not self.stalled and self.loop.time() - self.last_recv > ht:
            self.close(self.server.heartbeat_close_code, "heartbeat timeout")
            return
        self._schedule_tick()

    def on_close(self) -> None:
        self.server.kick()  # pending notifications may go to another live connection

    # ------------------------------------------------------------------ sending

    def send(self, payload: bytes) -> bool:
        if self._socket_base is None and self.transport is not None and not self.closed:
            self._socket_base = self._kernel_sent_bytes()
        if not super().send(payload):
            return False
        self.bytes_written += _frame_len(len(payload))
        return True

    def _kernel_sent_bytes(self) -> int | None:
        """Bytes this socket has sent (acknowledged + in flight), from the kernel's counters:
        ``tcpi_bytes_acked`` + (TIOCOUTQ - SIOCOUTQNSD). None when unavailable (not Linux)."""
        if self.transport is None or not sys.platform.startswith("linux"):
            return None
        sock = self.transport.underlying_transport.get_extra_info("socket")
        if sock is None:
            return None
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            outq = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                  struct.pack("i", 0)))[0]
            notsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), _SIOCOUTQNSD,
                                                     struct.pack("i", 0)))[0]
        except OSError:
            return None
        if len(info) < _TCPI_BYTES_ACKED + 8:
            return None
        acked: int = struct.unpack_from("<Q", info, _TCPI_BYTES_ACKED)[0]
        return acked + int(outq) - int(notsent)

    def _delivered_frame_bytes(self) -> int:
        """Frame bytes that left this host for the client (on loopback: reached its kernel).

        Counted by the kernel when possible. Not "acknowledged" alone (delayed ACKs lag data
        the client already holds), and not "written minus queued" (the transport's buffer and
        the kernel queue can both count a chunk in flight: a false loss, then a resend)."""
        sent = self._kernel_sent_bytes()
        if sent is not None and self._socket_base is not None:
            return max(0, sent - self._socket_base)
        return self.bytes_written - self._unsent_bytes()

    def wants(self, n: Notification) -> bool:
        if self.closed or self.stalled or not self.connected:
            return False
        if n.topic is not None:
            return n.topic in self.topics
        return n.account is None or n.account in self.accounts

    def send_notifications(self, items: list[Notification]) -> None:
        srv = self.server
        bs = max(1, int(srv.batch_size))
        i = 0
        while i < len(items):
            if self.closed or self.stalled or self.data_paused:
                return
            if srv.rate is not None and self.loop is not None:
                now = self.loop.time()
                if now < self._rate_next:
                    if not self._rate_timer:
                        self._rate_timer = True
                        self.call_later(self._rate_next - now, self._rate_wake)
                    return
                self._rate_next = max(self._rate_next, now - 1.0) + (
                    1.0 / srv.rate if srv.rate > 0 else 1.0)
            group = items[i:i + bs]
            i += len(group)
            if len(group) == 1:
                payload = _dump(group[0].message)
            else:
                payload = _dump({"results": [n.message for n in group]})
            if not self.send(payload):
                return
            for n in group:
                n.sent_on.append(self.id)
                srv.deliveries.append((n.seq, self.id))
            self._inflight.append((group, self.bytes_written))
            if len(self._inflight) > 4096:
                self._trim_inflight()
            self._count_data(1, len(group))  # frame-count faults (may close / drop now)
            k = self.frames_sent
            if self._pending.pop("malformed", None) is not None or (
                srv.malformed_every and k % srv.malformed_every == 0
            ):
                self.send(self.malform(payload))

    def _rate_wake(self) -> None:
        self._rate_timer = False
        self.server.kick()

    def malform(self, payload: bytes) -> bytes:
        return payload[: max(1, (len(payload) * 2) // 3)]  # truncated: invalid JSON

    def error_message(self, message: str, **kw: Any) -> bytes | None:
        return _dump({"status": "error", "action": str(kw.get("action", "unknown")),
                      "web-socket-session-id": self.session_id, "message": message,
                      "request-id": kw.get("request_id", 0)})

    def abort(self) -> None:
        """TCP drop (RST, no close frame). Nothing more is written; the bytes already written
        are first given ``drop_flush_timeout`` seconds to reach the client (so "sent" means
        "reached the client's host"); whatever is still unsent then is lost with the RST and
        its notifications are requeued for the next connection."""
        if self.transport is None or self.disconnected:
            return
        if not self.closed:
            self.closed = True
            timeout = self.server.drop_flush_timeout
            if self.loop is not None and timeout > 0:
                self._drop_deadline = self.loop.time() + timeout
                self._drop_last_outq = -1
                self._drop_stable = 0
                self.call_later(0.001, self._drop_when_flushed)
                return
        self._do_abort()

    def _drop_when_flushed(self) -> None:
        """Abort once everything written is acknowledged, or -- past ``drop_flush_timeout`` --
        once the send queue has stopped moving (the client's window is closed), so that no
        bytes leave between the measurement and the reset. A hard cap of 2 s more ends a queue
        that never settles."""
        if self.transport is None or self.disconnected or self.loop is None:
            return
        outq = self._unsent_bytes(unacked=True)
        if outq == 0:
            self._do_abort()
            return
        if outq == self._drop_last_outq:
            self._drop_stable += 1
        else:
            self._drop_stable = 0
            self._drop_last_outq = outq
        now = self.loop.time()
        settled = self._drop_stable >= 5
        if now >= self._drop_deadline and (settled or now >= self._drop_deadline + 2.0):
            self._do_abort()
        else:
            self.call_later(0.002, self._drop_when_flushed)

    def _unsent_bytes(self, unacked: bool = False) -> int:
        """Bytes written by the server that have not left this host (``unacked``: or that the
        client's kernel has not acknowledged yet)."""
        assert self.transport is not None
        tr = self.transport.underlying_transport
        n = 0
        try:
            n += int(tr.get_write_buffer_size())
        except (AttributeError, OSError, RuntimeError):
            pass
        sock = tr.get_extra_info("socket")
        if sock is not None:
            try:
                req = termios.TIOCOUTQ if unacked else _SIOCOUTQNSD
                buf = fcntl.ioctl(sock.fileno(), req, struct.pack("i", 0))
                n += struct.unpack("i", buf)[0]
            except OSError:
                pass
        return n

    def _trim_inflight(self) -> None:
        delivered = self._delivered_frame_bytes()
        while self._inflight and self._inflight[0][1] <= delivered:
            self._inflight.popleft()

    def _do_abort(self) -> None:
        if self.transport is None or self.disconnected:
            return
        tr = self.transport.underlying_transport
        sock = tr.get_extra_info("socket")
        if sock is not None:
            try:  # RST now: the kernel discards its send queue (a plain close would flush it)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        delivered = self._delivered_frame_bytes()
        lost: list[Notification] = []
        uncertain: list[Notification] = []
        while self._inflight and self._inflight[-1][1] > delivered:
            group, _end = self._inflight.pop()
            start = self._inflight[-1][1] if self._inflight else 0
            # The socket really closes on a later loop iteration; until then the kernel may
            # still send up to about one segment if the client's window reopens. Frames that
            # start in that margin may or may not reach the client: never resent (a real
            # server does not resend either), never counted as sent.
            if start < delivered + _UNCERTAIN_BYTES:
                uncertain[:0] = group
            else:
                lost[:0] = group
        if lost or uncertain:
            srv = self.server
            gone = {(n.seq, self.id) for n in lost + uncertain}
            srv.deliveries = [d for d in srv.deliveries if d not in gone]
            requeue = []
            for n in lost:
                n.sent_on.remove(self.id)
                if not n.sent_on:
                    requeue.append(n)
            for n in uncertain:
                n.sent_on.remove(self.id)
                srv.uncertain.append(n.seq)
            srv.requeued += len(requeue)
            srv.pending.extendleft(reversed(requeue))
            srv.pending = deque(sorted(srv.pending, key=lambda x: x.seq))
        try:
            self.transport.underlying_transport.abort()
        except (AttributeError, OSError, RuntimeError):
            self.transport.disconnect(graceful=False)

    # ------------------------------------------------------------------ client messages

    def _ack(self, msg: dict[str, Any], status: str = "ok", message: str | None = None,
             value: Any = None) -> None:
        out: dict[str, Any] = {"status": status, "action": msg.get("action"),
                               "web-socket-session-id": self.session_id}
        if message is not None:
            out["message"] = message
        if value is not None:
            out["value"] = value
        out["request-id"] = msg.get("request-id")
        payload = _dump(out)
        delay = self.server.ack_delay
        if delay > 0:
            self.call_later(delay, self.send, payload)
        else:
            self.send(payload)

    def on_message(self, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.send(_dump({"status": "error", "action": None, "message": "invalid-json",
                             "web-socket-session-id": self.session_id}))
            return
        if not isinstance(msg, dict):
            self.send(_dump({"status": "error", "action": None, "message": "invalid-message",
                             "web-socket-session-id": self.session_id}))
            return
        action = msg.get("action")
        self.actions.append(str(action))
        srv = self.server
        if not srv.token_ok(msg.get("auth-token")):
            srv.auth_failures += 1
            self._ack(msg, "error", "invalid-token")
            return
        if action in ("connect", "account-subscribe"):
            value = msg.get("value")
            accounts = [value] if isinstance(value, str) else list(value or [])
            if not accounts or not all(isinstance(a, str) for a in accounts):
                self._ack(msg, "error", "invalid-value")
                return
            for a in accounts:
                if a not in self.accounts:
                    self.accounts.append(a)
            self.connected = True
            self._ack(msg, value=accounts)
            srv._on_connected(self, accounts)
            srv.kick()
        elif action == "heartbeat":
            self._ack(msg)
        elif action in _SUB_ACTIONS:
            if not self.connected:
                self._ack(msg, "error", "connect-not-completed")
                return
            self.topics.add(str(action))
            self._ack(msg, value=msg.get("value"))
            srv._on_topic(self, str(action))
            srv.kick()
        else:
            self._ack(msg, "error", "unknown-action")

    def inject_extra(self, kind: str, kw: dict[str, Any]) -> bool:
        srv = self.server
        if kind == "raw":
            d = kw["data"]
            self.send(d if isinstance(d, bytes) else str(d).encode())
        elif kind == "invalid":
            acct = self.accounts[0] if self.accounts else "5WT00000"
            t = str(kw.get("type", "AccountBalance"))
            srv.push(t, invalid_data(t, acct))
        elif kind == "unknown":
            acct = self.accounts[0] if self.accounts else "5WT00000"
            srv.push(str(kw.get("type", "MysteryEvent")), {"account-number": acct, "x": 1})
        elif kind == "heartbeat_ack":
            self.send(_dump({"status": "ok", "action": "heartbeat",
                             "web-socket-session-id": self.session_id, "request-id": 0}))
        else:
            return False
        return True

    def unsent(self) -> int:
        """Bytes written by the server that have not reached the client's host yet."""
        return self._unsent_bytes() if self.transport is not None else 0

    def inject(self, kind: str, **kw: Any) -> None:
        super().inject(kind, **kw)
        if kind in ("unstall", "resume"):
            self.server.kick()


# ------------------------------------------------------------------------------- CLI


def _rate(text: str) -> float | None:
    if text.lower() in ("max", "none", "null", "flat", "flat-out", "inf"):
        return None
    return float(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fastfeed.sim account")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    p.add_argument("--token", default=argparse.SUPPRESS,
                   help="access token clients must send ('none' = any)")
    p.add_argument("--script", default=argparse.SUPPRESS, help="'default' or 'none'")
    p.add_argument("--rate", type=_rate, default=argparse.SUPPRESS,
                   help="notifications/s per connection, or 'max'")
    p.add_argument("--auto-orders", type=float, default=argparse.SUPPRESS,
                   help="order lifecycles per second per connected account")
    p.add_argument("--batch-size", type=int, default=argparse.SUPPRESS)
    p.add_argument("--invalid-every", type=int, default=argparse.SUPPRESS)
    p.add_argument("--heartbeat-timeout", type=float, default=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS)
    p.add_argument("--record", dest="record", action="store_true", default=False)
    p.add_argument("--close-after-frames", type=int, default=argparse.SUPPRESS)
    p.add_argument("--close-code", type=int, default=argparse.SUPPRESS)
    p.add_argument("--drop-after-frames", type=int, default=argparse.SUPPRESS)
    p.add_argument("--stall-after-frames", type=int, default=argparse.SUPPRESS)
    p.add_argument("--malformed-every", type=int, default=argparse.SUPPRESS)
    p.add_argument("--reject-first", type=int, default=argparse.SUPPRESS)
    p.add_argument("--set", dest="opts", action="append", default=[], metavar="KEY=VALUE",
                   help="any constructor option (JSON value)")
    p.add_argument("--no-uvloop", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m fastfeed.sim account [options]``: run until SIGINT / SIGTERM."""
    ns = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    options = {k: v for k, v in vars(ns).items() if k not in ("opts", "no_uvloop")}
    options.update(parse_options(ns.opts))
    if options.get("token") in ("none", "None", "", "null"):
        options["token"] = None
    if options.get("script") in ("none", "None", "", "null"):
        options["script"] = None
    server = AccountStreamerServer(**options)
    return run_until_signal(
        server, not ns.no_uvloop,
        lambda srv: f"stopped: {srv.connections_total} connections, "
                    f"{len(server.deliveries)} notifications sent")

if __name__ == "__main__":
    sys.exit(main())
