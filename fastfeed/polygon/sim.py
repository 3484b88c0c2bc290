"""A faithful local polygon.io / Massive websocket server (polygon-protocol.md §2–§6).

One path per cluster (``/stocks``, ``/options``, ``/forex``, ``/crypto``, ``/indices``,
``/futures``, ``/futures/cme`` …). Sequence: ``connected`` → ``auth`` → ``auth_success`` /
``auth_failed`` (then close 1008) / ``auth_timeout``; subscribe / unsubscribe with one
``success`` frame per channel; data frames are JSON arrays of mixed events for subscribed
channels only.

    async with PolygonServer(cluster="stocks", api_key="k", rate=1000) as srv:
        srv.url          # ws://127.0.0.1:PORT/stocks
        srv.client_host  # "ws://127.0.0.1:PORT"  (AsyncStreamClient(key, "stocks", host=...))
        srv.host_port    # "127.0.0.1:PORT"  (massive: WebSocketClient(feed=srv.host_port, ...))
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from picows import WSUpgradeRequest

from fastfeed.sim._base import SimConnection, SimServer
from fastfeed.sim.generators import (
    POLYGON_CHANNELS,
    POLYGON_TICKERS,
    PolygonGenerator,
    cluster_of_path,
)

__all__ = ["PolygonServer", "PolygonConnection", "status_frame"]

MSG_MAX_CONNECTIONS = "Maximum number of connections exceeded."


def status_frame(status: str, message: str) -> bytes:
    """``[{"ev":"status","status":…,"message":…}]``."""
    return orjson.dumps([{"ev": "status", "status": status, "message": message}])


_STAMPED = {"Q", "XQ", "C"}


class PolygonServer(SimServer):
    """Local polygon/Massive server.

    Protocol options (besides the common ones of :class:`SimServer`):

    cluster
        Cluster of :attr:`url` (every cluster path is served regardless).
    api_key
        Required key (``None`` = any non-empty key is accepted).
    auth_timeout
        Seconds to wait for ``auth`` after connect, then ``auth_timeout`` status and close
        (``None`` = wait forever).
    max_connections, max_connections_mode
        Connection cap per (key, cluster). ``"new"``: the extra connection gets ``connected``,
        ``auth_success`` and its subscribe acks, then ``max_connections`` and close 1008.
        ``"old"``: the older connection gets ``max_connections`` and is closed instead.
    slow_consumer_bytes, slow_consumer_timeout
        When the socket write buffer exceeds N bytes (paced mode), or flat-out sending has been
        blocked by back-pressure for ``slow_consumer_timeout`` seconds with more than N bytes
        queued, send ``slow_consumer`` and close.
    policy_close_code
        Close code after auth_failed / auth_timeout / max_connections / slow_consumer /
        force_disconnect (1008).
    tickers
        ``{cluster: [tickers]}`` used to expand ``PREFIX.*`` subscriptions.
    quirks
        Apply the realistic encoding quirks (omitted keys, int floats, extra keys, shuffled keys,
        string forms, escapes); ``False`` gives plain, stable events.
    """

    kind = "polygon"

    cluster: str = "stocks"
    api_key: str | None = None
    auth_timeout: float | None = 10.0
    max_connections: int | None = None
    max_connections_mode: str = "new"
    slow_consumer_bytes: int | None = None
    slow_consumer_timeout: float = 1.0
    policy_close_code: int = 1008
    tickers: dict[str, tuple[str, ...]] | None = None
    quirks: bool = True

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        if cluster_of_path(self.cluster) is None:
            raise ValueError(f"unknown cluster {self.cluster!r}")

    @property
    def default_path(self) -> str:  # type: ignore[override]
        return "/" + self.cluster

    @property
    def client_host(self) -> str:
        """``"ws://127.0.0.1:PORT"``: what ``AsyncStreamClient(host=...)`` wants (with the
        scheme, so the client connects over plain ws and appends ``/{cluster}`` itself)."""
        return f"ws://{self.host}:{self.port}"

    def url_for(self, cluster: str) -> str:
        return f"ws://{self.host}:{self.port}/{cluster}"

    def make_connection(self, request: WSUpgradeRequest, conn_id: int) -> SimConnection | None:
        path = request.path.decode("latin-1")
        cluster = cluster_of_path(path)
        if cluster is None:
            return None  # 404
        return PolygonConnection(self, conn_id, path, cluster)

    def subscriptions(self, conn_id: int | None = None) -> set[str]:
        conn = self.connection(conn_id)
        assert isinstance(conn, PolygonConnection)
        return set(conn.subs)


class PolygonConnection(SimConnection):
    server: PolygonServer

    def __init__(self, server: PolygonServer, conn_id: int, path: str, cluster: str) -> None:
        super().__init__(server, conn_id, path)
        self.cluster = cluster
        self.base = "futures" if cluster.startswith("futures") else cluster
        if server.quirks:
            self.gen = PolygonGenerator(f"{server.seed}:{conn_id}", cluster)
        else:
            self.gen = PolygonGenerator(f"{server.seed}:{conn_id}", cluster, omit_rate=0.0,
                                        int_float_rate=0.0, extra_key_rate=0.0,
                                        shuffle_rate=0.0, string_rate=0.0, escape_rate=0.0)
        self.authed = False
        self.key: str | None = None
        self.over_limit = False
        self.subs: list[str] = []  # "T.AAPL", "Q.*" in subscription order
        self._pairs: list[tuple[str, str]] = []
        self._cursor = 0
        self._auth_timer: Any = None
        self._malform_variant = 0
        self.status_sent: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def on_open(self) -> None:
        self._status("connected", "Connected Successfully")
        if self.server.auth_timeout is not None:
            self._auth_timer = self.call_later(self.server.auth_timeout, self._on_auth_timeout)

    def _status(self, status: str, message: str) -> bool:
        self.status_sent.append(status)
        return self.send(status_frame(status, message))

    def _on_auth_timeout(self) -> None:
        if not self.authed and not self.closed:
            self._status("auth_timeout", "No authentication request received.")
            self.close(self.server.policy_close_code, "auth timeout")

    # ------------------------------------------------------------------ client messages

    def on_message(self, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._status("error", "invalid json")
            return
        if not isinstance(msg, dict):
            self._status("error", "message must be an object")
            return
        action = msg.get("action")
        params = msg.get("params")
        if action == "auth":
            self._on_auth(params)
        elif action in ("subscribe", "unsubscribe"):
            if not self.authed:
                self._status("auth_required", "authentication required")
                return
            self._on_subscription(action, params)
        else:
            self._status("error", f"unknown action: {action}")

    def _live_peers(self) -> list[PolygonConnection]:
        return [c for c in self.server.live.values()
                if c is not self and isinstance(c, PolygonConnection) and c.authed
                and not c.closed and c.key == self.key and c.cluster == self.cluster]

    def _on_auth(self, params: Any) -> None:
        srv = self.server
        key = params if isinstance(params, str) else None
        ok = bool(key) and (srv.api_key is None or key == srv.api_key)
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if not ok:
            self._status("auth_failed", "authentication failed")
            self.close(srv.policy_close_code, "authentication failed")
            return
        self.key = key
        self._status("auth_success", "authenticated")
        self.authed = True
        if srv.max_connections is not None:
            peers = self._live_peers()
            if len(peers) >= srv.max_connections:
                if srv.max_connections_mode == "old":
                    for p in peers[: len(peers) - srv.max_connections + 1]:
                        p.kick("max_connections", MSG_MAX_CONNECTIONS)
                else:
                    self.over_limit = True

    def kick(self, status: str, message: str, code: int | None = None) -> None:
        """Send a terminal status and close."""
        if self.closed:
            return
        self._status(status, message)
        self.close(self.server.policy_close_code if code is None else code, status)

    def _valid(self, prefix: str) -> bool:
        return prefix in POLYGON_CHANNELS[self.cluster]

    def _on_subscription(self, action: str, params: Any) -> None:
        if not isinstance(params, str):
            self._status("error", "params must be a string")
            return
        for raw in params.split(","):
            chan = raw.strip()
            if not chan:
                continue
            prefix, dot, ticker = chan.partition(".")
            if not dot or not ticker or not self._valid(prefix):
                self._status("error", f"invalid subscription: {chan}")
                continue
            if action == "subscribe":
                if chan not in self.subs:
                    self.subs.append(chan)
                self._status("success", f"subscribed to: {chan}")
            else:
                if chan in self.subs:
                    self.subs.remove(chan)
                if ticker == "*":
                    self.subs = [s for s in self.subs if not s.startswith(prefix + ".")]
                self._status("success", f"unsubscribed to: {chan}")
        self._rebuild()
        if self.over_limit:
            self.kick("max_connections", MSG_MAX_CONNECTIONS)
            return
        self.ensure_pump()

    def _rebuild(self) -> None:
        tick = (self.server.tickers or {}).get(self.cluster) or POLYGON_TICKERS[self.base]
        pairs: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for s in self.subs:
            prefix, _, ticker = s.partition(".")
            for t in (tick if ticker == "*" else (ticker,)):
                if (prefix, t) not in seen:
                    seen.add((prefix, t))
                    pairs.append((prefix, t))
        self._pairs = pairs
        self._pool_version += 1

    # ------------------------------------------------------------------ data

    def has_data(self) -> bool:
        return bool(self._pairs) and self.authed

    def build_data_frame(self, n_events: int, min_bytes: int = 0) -> tuple[bytes, int] | None:
        pairs = self._pairs
        if not pairs:
            return None
        gen = self.gen
        stamp = self.server.stamp_send_time
        quirks = self.server.quirks
        events: list[dict[str, Any]] = []
        est = 0
        while len(events) < n_events or (min_bytes and est < min_bytes):
            ev, ticker = pairs[self._cursor % len(pairs)]
            self._cursor += 1
            d = gen.event(ev, ticker, stamp_ns=time.monotonic_ns() if stamp and ev in _STAMPED
                          else None)
            if quirks:
                d = gen.quirk(d)
            events.append(d)
            est += 130 if ev != "XL2" else 2000
        payload = gen.encode(events) if quirks else orjson.dumps(events)
        return payload, len(events)

    def malform(self, payload: bytes) -> bytes:
        self._malform_variant += 1
        if self._malform_variant % 2 == 0:
            return b'[{"ev":"T","sym":"BAD","p":}]'
        return payload[: max(1, (len(payload) * 2) // 3)]

    def error_message(self, message: str, **kw: Any) -> bytes | None:
        self.status_sent.append("error")
        return status_frame("error", message)

    def after_data_sent(self) -> None:
        lim = self.server.slow_consumer_bytes
        if lim is not None and self.write_buffer_size() > lim:
            self.slow_consumer()

    def on_write_stalled(self, seconds: float) -> None:
        lim = self.server.slow_consumer_bytes
        if (lim is not None and seconds >= self.server.slow_consumer_timeout
                and self.write_buffer_size() > lim):
            self.slow_consumer()

    def slow_consumer(self) -> None:
        if self.closed:
            return
        self.kick("slow_consumer", "Connection closed: client is not consuming data fast enough.")
        # the close frame sits behind the buffered data; drop TCP if the client never drains it
        if self.loop is not None:
            self.loop.call_later(2.0, self.abort)

    def inject_extra(self, kind: str, kw: dict[str, Any]) -> bool:
        if kind == "force_disconnect":
            self.kick("force_disconnect", str(kw.get("message", "Forced disconnect.")),
                      kw.get("code"))
        elif kind == "slow_consumer":
            self.slow_consumer()
        elif kind == "max_connections":
            self.kick("max_connections", MSG_MAX_CONNECTIONS, kw.get("code"))
        elif kind == "status":
            self._status(str(kw.get("status", "error")), str(kw.get("message", "")))
        elif kind == "raw":
            self.send(kw["data"] if isinstance(kw["data"], bytes) else str(kw["data"]).encode())
        else:
            return False
        return True
