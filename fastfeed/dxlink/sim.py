"""A faithful local DXLink (dxFeed / tastytrade market data) websocket server.

Behaviour follows dxlink-protocol.md §3–§12: SETUP / AUTH_STATE handshake (AUTH accepted at any
time), channels with reuse, FEED_SETUP → FEED_CONFIG (requested order, unknown fields dropped),
FEED_SUBSCRIPTION add / remove / reset with Candle ``fromTime`` snapshots, FEED_DATA in COMPACT
(several ``[type, values]`` pairs per message) or FULL, KEEPALIVE in both directions with
``ERROR TIMEOUT`` on a silent client, and every fault knob of :class:`~fastfeed.sim._base.SimServer`.

    async with DXLinkServer(token="t", rate=1000) as srv:
        url = srv.url        # ws://127.0.0.1:PORT/realtime
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
from picows import WSUpgradeRequest

from fastfeed.sim._base import SimConnection, SimServer
from fastfeed.sim.generators import (
    DX_FIELDS,
    FIELD_ALIASES,
    DXLinkGenerator,
    encode_compact,
    encode_full,
    resolve_fields,
)
from fastfeed.sim.sessions import DXLinkSession

__all__ = ["DXLinkServer", "DXLinkConnection", "Channel"]

_WILDCARD_SYMBOLS = ("AAPL", "SPY", "SPX", "MSFT", ".SPXW260320C6000", "BTC/USD:CXTALP")


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj)


class Channel:
    """Per-channel state: service, parameters, data format, negotiated fields, subscriptions."""

    __slots__ = ("number", "service", "parameters", "data_format", "aggregation_period",
                 "requested", "fields", "announced", "subs", "from_time", "pairs", "cursor")

    def __init__(self, number: int, service: str, parameters: dict[str, Any]) -> None:
        self.number = number
        self.service = service
        self.parameters = parameters
        self.data_format = "FULL"  # spec default until FEED_SETUP says otherwise
        self.aggregation_period = 0.1
        self.requested: dict[str, list[str]] = {}
        self.fields: dict[str, list[str]] = {}  # as announced / to be announced
        self.announced: set[str] = set()
        self.subs: dict[tuple[str, str], int | None] = {}  # (type, symbol) -> fromTime
        self.from_time: dict[tuple[str, str], int] = {}
        self.pairs: list[tuple[str, str]] = []
        self.cursor = 0

    def rebuild(self) -> None:
        pairs: list[tuple[str, str]] = []
        for (etype, sym) in self.subs:
            if sym == "*":
                pairs.extend((etype, s) for s in _WILDCARD_SYMBOLS)
            else:
                pairs.append((etype, sym))
        self.pairs = pairs
        if self.cursor >= len(pairs):
            self.cursor = 0

    @property
    def subscriptions(self) -> set[tuple[str, str]]:
        return set(self.subs)


class DXLinkServer(SimServer):
    """Local DXLink server.

    Protocol options (besides the common ones of :class:`SimServer`):

    token
        Quote token the client must send in AUTH (``None`` = no auth: AUTHORIZED right after
        SETUP). With ``check_token=False`` any token is accepted.
    user_id, version
        ``userId`` of AUTH_STATE AUTHORIZED and the server's SETUP ``version``.
    keepalive_timeout
        Seconds the client may stay silent (sent in the server SETUP); beyond it the server sends
        ``ERROR TIMEOUT`` and closes with ``timeout_close_code`` (if ``enforce_keepalive``).
    keepalive_interval
        Server KEEPALIVE period when idle (default: half of the client's keepaliveTimeout,
        at most 30 s).
    strict_order
        CHANNEL_REQUEST before AUTHORIZED gets ``ERROR UNAUTHORIZED`` and is ignored.
    auth_delay
        Seconds before an AUTH is answered.
    event_fields_mode
        ``"immediate"`` (FEED_CONFIG with eventFields right after FEED_SETUP), ``"lazy"``
        (FEED_CONFIG without eventFields, eventFields right before the first FEED_DATA of a type)
        or ``"omit"`` (never send eventFields).
    server_field_order
        Announce (and send) the server's own field order (eventType first, catalogue order)
        instead of the requested order.
    full_format
        Send FULL FEED_DATA even when COMPACT was negotiated (fault of issue #141).
    multi_pair
        COMPACT frames may carry several ``[type, values]`` pairs.
    snapshot_size
        Candles in a ``fromTime`` snapshot burst.
    edge_rate
        Probability of a §6 edge encoding per event.
    """

    kind = "dxlink"
    default_path = "/realtime"

    token: str | None = "sim-token"
    check_token: bool = True
    user_id: str = "sim-user"
    version: str = "1.0-fastfeed-sim/0.1"
    keepalive_timeout: float = 60.0
    keepalive_interval: float | None = None
    enforce_keepalive: bool = True
    timeout_close_code: int = 1000
    strict_order: bool = False
    auth_delay: float = 0.0
    event_fields_mode: str = "immediate"
    server_field_order: bool = False
    full_format: bool = False
    multi_pair: bool = True
    snapshot_size: int = 10
    edge_rate: float = 0.05

    def session(self) -> DXLinkSession:
        """A session stand-in for ``DXLinkStreamer``: this server's URL and its token."""
        return DXLinkSession(self.url, self.token if self.token is not None else "sim-token")

    def make_connection(self, request: WSUpgradeRequest, conn_id: int) -> SimConnection | None:
        return DXLinkConnection(self, conn_id, request.path.decode("latin-1"))

    def subscriptions(self, conn_id: int | None = None) -> dict[int, set[tuple[str, str]]]:
        """{channel: {(type, symbol)}} of a live connection (newest when conn_id is None)."""
        conn = self.connection(conn_id)
        assert isinstance(conn, DXLinkConnection)
        return {n: set(ch.subs) for n, ch in conn.channels.items()}


class DXLinkConnection(SimConnection):
    server: DXLinkServer

    def __init__(self, server: DXLinkServer, conn_id: int, path: str) -> None:
        super().__init__(server, conn_id, path)
        self.gen = DXLinkGenerator(f"{server.seed}:{conn_id}", edge_rate=server.edge_rate)
        self.setup_received = False
        self.authorized = server.token is None
        self.client_keepalive_timeout: float | None = None
        self.channels: dict[int, Channel] = {}
        self._rr = 0
        self._malform_variant = 0
        self.auth_attempts = 0

    # ------------------------------------------------------------------ lifecycle

    def on_open(self) -> None:
        self._schedule_tick()

    def _tick_period(self) -> float:
        srv = self.server
        iv = self._send_interval()
        p = min(iv, srv.keepalive_timeout) / 4.0
        return min(1.0, max(0.01, p))

    def _send_interval(self) -> float:
        srv = self.server
        if srv.keepalive_interval is not None:
            return srv.keepalive_interval
        ckt = self.client_keepalive_timeout or 60.0
        return min(30.0, ckt / 2.0)

    def _schedule_tick(self) -> None:
        if not self.closed:
            self.call_later(self._tick_period(), self._tick)

    def _tick(self) -> None:
        if self.closed or self.loop is None:
            return
        if not self.stalled:
            now = self.loop.time()
            srv = self.server
            if srv.enforce_keepalive and now - self.last_recv > srv.keepalive_timeout:
                self.send(_dump({"type": "ERROR", "channel": 0, "error": "TIMEOUT",
                                 "message": "No keepalive received, last received "
                                            f"{now - self.last_recv:.0f} seconds ago."}))
                self.close(srv.timeout_close_code, "timeout")
                return
            if now - self.last_send >= self._send_interval():
                self.send(b'{"type":"KEEPALIVE","channel":0}')
        self._schedule_tick()

    # ------------------------------------------------------------------ client messages

    def on_message(self, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(0, "INVALID_MESSAGE", "Invalid JSON")
            return
        if not isinstance(msg, dict):
            self._error(0, "INVALID_MESSAGE", "Message must be an object")
            return
        mtype = msg.get("type")
        ch = msg.get("channel", 0)
        if not isinstance(ch, int):
            self._error(0, "INVALID_MESSAGE", "channel must be an integer")
            return
        handler = _HANDLERS.get(mtype)  # type: ignore[arg-type]
        if handler is None:
            return  # unknown types are ignored
        handler(self, ch, msg)

    def _error(self, channel: int, error: str, message: str) -> None:
        self.send(_dump({"type": "ERROR", "channel": channel, "error": error, "message": message}))

    def error_message(self, message: str, **kw: Any) -> bytes | None:
        return _dump({"type": "ERROR", "channel": int(kw.get("channel", 0)),
                      "error": str(kw.get("error", "UNKNOWN")), "message": message})

    def _on_setup(self, ch: int, msg: dict[str, Any]) -> None:
        self.setup_received = True
        kt = msg.get("keepaliveTimeout")
        if isinstance(kt, (int, float)) and kt > 0:
            self.client_keepalive_timeout = float(kt)
        srv = self.server
        self.send(_dump({"type": "SETUP", "channel": 0, "keepaliveTimeout": srv.keepalive_timeout,
                         "acceptKeepaliveTimeout": srv.keepalive_timeout,
                         "version": srv.version}))
        self._auth_state()

    def _auth_state(self) -> None:
        if self.authorized:
            self.send(_dump({"type": "AUTH_STATE", "channel": 0, "state": "AUTHORIZED",
                             "userId": self.server.user_id}))
        else:
            self.send(b'{"type":"AUTH_STATE","channel":0,"state":"UNAUTHORIZED"}')

    def _on_auth(self, ch: int, msg: dict[str, Any]) -> None:
        self.auth_attempts += 1
        srv = self.server
        ok = srv.token is None or not srv.check_token or msg.get("token") == srv.token
        if srv.auth_delay > 0:
            self.call_later(srv.auth_delay, self._finish_auth, ok)
        else:
            self._finish_auth(ok)

    def _finish_auth(self, ok: bool) -> None:
        if self.closed:
            return
        self.authorized = ok
        self._auth_state()

    def _on_keepalive(self, ch: int, msg: dict[str, Any]) -> None:
        pass

    def _on_channel_request(self, ch: int, msg: dict[str, Any]) -> None:
        if ch <= 0:
            self._error(0, "BAD_ACTION", "CHANNEL_REQUEST needs a channel > 0")
            return
        if self.server.strict_order and not self.authorized:
            self._error(ch, "UNAUTHORIZED", "Channel request before authorization")
            return
        params = msg.get("parameters")
        params = dict(params) if isinstance(params, dict) else {}
        service = str(msg.get("service", "FEED"))
        self.channels[ch] = Channel(ch, service, dict(params))
        out = dict(params)
        out["subFormat"] = "LIST"
        self.send(_dump({"type": "CHANNEL_OPENED", "channel": ch, "service": service,
                         "parameters": out}))
        self._pool_version += 1

    def _on_channel_cancel(self, ch: int, msg: dict[str, Any]) -> None:
        self.channels.pop(ch, None)
        self._pool_version += 1
        self.send(_dump({"type": "CHANNEL_CLOSED", "channel": ch}))

    def _chan(self, ch: int, what: str) -> Channel | None:
        c = self.channels.get(ch)
        if c is None:
            self._error(ch, "BAD_ACTION", f"{what} on a channel that is not open")
        return c

    def _fields_for(self, etype: str, requested: list[str] | None) -> list[str]:
        fields = resolve_fields(etype, requested)
        if self.server.server_field_order and fields:
            cat = list(DX_FIELDS[etype])
            aliases = FIELD_ALIASES.get(etype, {})
            canon = {aliases.get(f, f): f for f in fields}
            fields = ["eventType"] + [canon[f] for f in cat if f in canon and f != "eventType"]
        return fields

    def _on_feed_setup(self, ch: int, msg: dict[str, Any]) -> None:
        c = self._chan(ch, "FEED_SETUP")
        if c is None:
            return
        if "acceptAggregationPeriod" in msg:
            try:
                c.aggregation_period = float(msg["acceptAggregationPeriod"])
            except (TypeError, ValueError):
                pass
        fmt = msg.get("acceptDataFormat")
        if fmt in ("FULL", "COMPACT"):
            c.data_format = fmt
        changed: dict[str, list[str]] = {}
        aef = msg.get("acceptEventFields")
        if isinstance(aef, dict):
            for etype, req in aef.items():
                if etype not in DX_FIELDS:
                    continue
                req_list = [str(f) for f in req] if isinstance(req, list) else []
                c.requested[etype] = req_list
                fields = self._fields_for(etype, req_list)
                if c.fields.get(etype) != fields:
                    c.fields[etype] = fields
                    c.announced.discard(etype)
                    changed[etype] = fields
        reply: dict[str, Any] = {"type": "FEED_CONFIG", "channel": ch,
                                 "dataFormat": c.data_format,
                                 "aggregationPeriod": c.aggregation_period}
        if changed and self.server.event_fields_mode == "immediate":
            reply["eventFields"] = changed
            c.announced.update(changed)
        self.send(_dump(reply))
        self._pool_version += 1

    def _on_feed_subscription(self, ch: int, msg: dict[str, Any]) -> None:
        c = self._chan(ch, "FEED_SUBSCRIPTION")
        if c is None:
            return
        if msg.get("reset"):
            c.subs.clear()
        for item in msg.get("remove") or ():
            if isinstance(item, dict):
                c.subs.pop((str(item.get("type")), str(item.get("symbol"))), None)
        snapshots: list[tuple[str, int]] = []
        for item in msg.get("add") or ():
            if not isinstance(item, dict):
                continue
            etype = str(item.get("type"))
            sym = str(item.get("symbol"))
            if etype not in DX_FIELDS:
                continue
            ft = item.get("fromTime")
            c.subs[(etype, sym)] = ft if isinstance(ft, int) else None
            if etype not in c.fields:
                c.fields[etype] = self._fields_for(etype, c.requested.get(etype))
            if etype == "Candle" and isinstance(ft, int):
                snapshots.append((sym, ft))
        c.rebuild()
        for sym, ft in snapshots:
            self._send_snapshot(c, sym, ft)
        self.ensure_pump()

    # ------------------------------------------------------------------ data

    def has_data(self) -> bool:
        return any(c.pairs for c in self.channels.values())

    def _announce(self, c: Channel, types: list[str]) -> None:
        if self.server.event_fields_mode == "omit":
            return
        todo = {t: c.fields[t] for t in types if t not in c.announced}
        if todo:
            c.announced.update(todo)
            self.send(_dump({"type": "FEED_CONFIG", "channel": c.number,
                             "dataFormat": c.data_format,
                             "aggregationPeriod": c.aggregation_period, "eventFields": todo}))

    def _encode(self, c: Channel, events: list[dict[str, Any]]) -> bytes:
        types: list[str] = []
        for ev in events:
            if ev["eventType"] not in types:
                types.append(ev["eventType"])
        self._announce(c, types)
        if self.server.full_format or c.data_format == "FULL":
            full = []
            for ev in events:
                fields = c.fields[ev["eventType"]]
                aliases = FIELD_ALIASES.get(ev["eventType"], {})
                d = {"eventType": ev["eventType"], "eventSymbol": ev["eventSymbol"]}
                for f in fields:
                    d[f] = ev[aliases.get(f, f)]
                full.append(d)
            return encode_full(c.number, full)
        groups: list[tuple[str, list[list[Any]]]] = []
        for ev in events:
            et = ev["eventType"]
            fields = c.fields[et]
            row_aliases = FIELD_ALIASES.get(et)
            if row_aliases:
                row = [ev[row_aliases.get(f, f)] for f in fields]
            else:
                row = [ev[f] for f in fields]
            if groups and groups[-1][0] == et:
                groups[-1][1].append(row)
            else:
                groups.append((et, [row]))
        return encode_compact(c.number, groups)

    def _send_snapshot(self, c: Channel, sym: str, from_time: int) -> None:
        events = self.gen.candle_snapshot(sym, from_time, max_events=self.server.snapshot_size)
        epf = max(1, int(self.server.events_per_frame))
        for i in range(0, len(events), epf):
            part = events[i:i + epf]
            self.send_data(self._encode(c, part), len(part))

    def build_data_frame(self, n_events: int, min_bytes: int = 0) -> tuple[bytes, int] | None:
        chans = [c for c in self.channels.values() if c.pairs]
        if not chans:
            return None
        self._rr = (self._rr + 1) % len(chans)
        c = chans[self._rr]
        srv = self.server
        gen = self.gen
        pairs = c.pairs
        events: list[dict[str, Any]] = []
        size_est = 0
        single_type = None if srv.multi_pair else pairs[c.cursor % len(pairs)][0]
        while len(events) < n_events or (min_bytes and size_est < min_bytes):
            etype, sym = pairs[c.cursor % len(pairs)]
            c.cursor += 1
            if single_type is not None and etype != single_type:
                if all(p[0] != single_type for p in pairs):
                    single_type = etype
                else:
                    continue
            ev = gen.event(etype, sym)
            events.append(ev)
            size_est += 14 * len(c.fields.get(etype, ())) + 8
            if len(events) > 1_000_000:
                break
        # keep multi-type frames grouped by type (one [type, values] pair per type)
        if srv.multi_pair:
            events.sort(key=lambda e: e["eventType"])
        if srv.stamp_send_time:
            ns = time.monotonic_ns()
            for ev in events:
                if ev["eventType"] == "Quote":
                    ev["eventTime"] = ns
        payload = self._encode(c, events)
        while min_bytes and len(payload) <= min_bytes:
            etype, sym = pairs[c.cursor % len(pairs)]
            c.cursor += 1
            events.extend(gen.event(etype, sym) for _ in range(max(1, len(events) // 4)))
            if srv.multi_pair:
                events.sort(key=lambda e: e["eventType"])
            payload = self._encode(c, events)
        return payload, len(events)

    def malform(self, payload: bytes) -> bytes:
        self._malform_variant += 1
        if self._malform_variant % 2 == 1:
            try:
                msg = json.loads(payload)
                data = msg["data"]
                if len(data) >= 2 and isinstance(data[1], list):
                    data[1].append("NaN")  # value count no longer a multiple of the fields
                    return json.dumps(msg, separators=(",", ":")).encode()
            except (ValueError, KeyError, TypeError):
                pass
        return payload[: max(1, (len(payload) * 2) // 3)]  # truncated: invalid JSON

    def inject_extra(self, kind: str, kw: dict[str, Any]) -> bool:
        if kind == "keepalive":
            self.send(b'{"type":"KEEPALIVE","channel":0}')
        elif kind == "channel_closed":
            ch = int(kw.get("channel", next(iter(self.channels), 1)))
            self.channels.pop(ch, None)
            self.send(_dump({"type": "CHANNEL_CLOSED", "channel": ch}))
        elif kind == "unauthorized":
            self.authorized = False
            self._auth_state()
        elif kind == "raw":
            self.send(kw["data"] if isinstance(kw["data"], bytes) else str(kw["data"]).encode())
        else:
            return False
        return True


_HANDLERS = {
    "SETUP": DXLinkConnection._on_setup,
    "AUTH": DXLinkConnection._on_auth,
    "KEEPALIVE": DXLinkConnection._on_keepalive,
    "CHANNEL_REQUEST": DXLinkConnection._on_channel_request,
    "CHANNEL_CANCEL": DXLinkConnection._on_channel_cancel,
    "FEED_SETUP": DXLinkConnection._on_feed_setup,
    "FEED_SUBSCRIPTION": DXLinkConnection._on_feed_subscription,
}
