"""The hub's upstream connections (layer 7), one per feed, built from the environment.

The hub drives every record feed through the same small interface: ``start()``, ``close()``,
``subscribe(type, symbols)``, ``unsubscribe(type, symbols)``, ``_ring(type)`` and
``on_data`` (:class:`Upstream`: called in the socket-read callback that filled the rings, so
the hub publishes with no task switch in between). :class:`DXLinkUpstream` gives it to
:class:`fastfeed.tastytrade.DXLinkStreamer`; :class:`PolygonUpstream` to
:class:`fastfeed.polygon.AsyncStreamClient` (one per cluster). The account stream
(an ``AlertStreamer``) is not records: ``fastfeed.hub._account.AccountUpstream``.

Credentials come from the environment only and stay in these objects: nothing the hub
publishes carries them.

=========================  =============================================================
variable                   meaning
=========================  =============================================================
``FASTFEED_DXLINK_URL``    DXLink websocket URL (feed ``dxlink``)
``FASTFEED_DXLINK_TOKEN``  DXLink quote token
``FASTFEED_POLYGON_KEY``   polygon / Massive API key (feeds ``stocks``, ``options``, ...)
``FASTFEED_POLYGON_HOST``  host (default ``socket.polygon.io``; a URL with a scheme, e.g.
                           ``ws://127.0.0.1:8765``, for a local server)
``FASTFEED_ACCOUNT_TOKEN`` tastytrade session token (feed ``account``)
``FASTFEED_ACCOUNT_URL``   account-streamer URL (default tastytrade's production streamer)
=========================  =============================================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import orjson

from fastfeed._connection import BackoffConfig
from fastfeed.errors import SubscriptionError
from fastfeed.polygon import HOST, AsyncStreamClient
from fastfeed.tastytrade import DXLinkStreamer

__all__ = ["DXLinkUpstream", "PolygonUpstream", "Upstream", "upstream_for"]

log = logging.getLogger("fastfeed.hub")

#: the hub's upstreams do not spin after data (``idle_spin_us``) unless ``--idle-spin-us``
#: says so: a spinning hub keeps a core busy that its consumers (and, on a small machine, the
#: other processes) need to wake up on -- measured with ``bench/bench_hub.py --part latency``
HUB_UPSTREAM_SPIN_US = 0.0


class Upstream:
    """Mixin of the hub's upstream streamers: ``on_data()`` is called after every socket read
    that produced events (after the streamer's own consumers were woken) and when the streamer
    stops (its ``error`` then says why). ``take_statuses()``: status frames received since
    the hub last took them (polygon; the hub publishes them to its consumers)."""

    on_data: Callable[[], None] | None = None

    def take_statuses(self) -> list[bytes]:
        """The status frames received while the hub serves (``on_data`` set), oldest first."""
        return []

    async def subscribe_from(self, ev: str, symbols: list[str], from_time: int) -> None:
        """Subscribe with a history start time (ms since the epoch)."""
        raise SubscriptionError(f"{type(self).__name__} has no history to subscribe from")

    def capture_frames(self, on: bool) -> None:
        """Keep (``on``) or stop keeping the frames received, as text, for ``take_frames``."""
        raise SubscriptionError(f"{type(self).__name__} does not give its frames")

    def take_frames(self) -> list[str]:
        """The frames received since the last call (``capture_frames``), oldest first."""
        return []

    def _on_wake_data(self) -> None:
        super()._on_wake_data()   # type: ignore[misc]
        if self.on_data is not None:
            self.on_data()


class DXLinkUpstream(Upstream, DXLinkStreamer):
    """The DXLink feed of the hub."""

    async def subscribe_from(self, ev: str, symbols: list[str], from_time: int) -> None:
        """``FEED_SUBSCRIPTION`` with ``fromTime`` (Candle history), as ``subscribe_candle``
        sends it; symbols already subscribed with that very time are removed first, so that
        the server sends their history again (for the consumer asking now)."""
        again = [s for s in symbols if self._desired.symbols(ev).get(s) == from_time]
        if again:
            self._core.unwant(ev, again)
        await self._subscribe(ev, symbols, from_time, 0.1)


class PolygonUpstream(Upstream, AsyncStreamClient):
    """One polygon cluster for the hub: an :class:`AsyncStreamClient` that reconnects forever
    (websockets' backoff) and has no handlers of its own -- the hub reads its rings through
    ``listen_batches`` -- with the hub's generic ``subscribe(ev, symbols)``: ``symbols`` as the
    records name them (``"AAPL"``, ``"O:SPY..."``, ``"*"``), sent verbatim as channels."""

    def __init__(self, api_key: str, cluster: str, host: str = HOST) -> None:
        super().__init__(api_key, cluster, host)
        self._reconnect_enabled = True
        self.max_reconnect_attempts = None
        self.backoff_config = BackoffConfig.from_env()

    def _set_handler(self, ev: str, fn: Any, deliver: str) -> None:
        """No handler cursors: nothing would drain them."""

    _statuses: list[bytes] | None = None

    def _on_control(self, events: list[Any]) -> None:
        """Statuses act as for any client (errors counted, auth_failed fatal...); nobody
        dispatches them here: those received while the hub serves (not its own handshake's)
        become status frames for its consumers, published by ``on_data`` (which the base
        class calls next). Their messages are already redacted (the session takes the key
        out)."""
        if self.on_data is not None:
            if self._statuses is None:
                self._statuses = []
            self._statuses += [orjson.dumps([{"ev": "status", "status": ev.status,
                                              "message": ev.message}]) for ev in events]
        super()._on_control(events)
        for ev in self._status_q:
            log.debug("hub: polygon %s status %s: %s", self._cluster, ev.status, ev.message)
        self._status_q.clear()

    def take_statuses(self) -> list[bytes]:
        out, self._statuses = self._statuses, None
        return out or []

    def capture_frames(self, on: bool) -> None:
        core = self._core
        if on and core.raw_frames is None:
            core.raw_frames = []   # the decoder appends every message it is fed
        elif not on:
            core.raw_frames = None

    def take_frames(self) -> list[str]:
        frames: list[str] | None = self._core.raw_frames
        if not frames:
            return []
        self._core.raw_frames = []   # a new list for the next frames: no copy of these
        return frames

    async def subscribe(self, ev: str, symbols: Iterable[str]) -> None:
        chans = ",".join(f"{ev}.{s}" for s in symbols)
        if chans:
            await self._modify_sub(chans, "subscribe")

    async def unsubscribe(self, ev: str, symbols: Iterable[str]) -> None:
        chans = ",".join(f"{ev}.{s}" for s in symbols)
        if chans:
            await self._modify_sub(chans, "unsubscribe")


def _need(*names: str) -> list[str]:
    values = [os.environ.get(n) for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise SystemExit(f"fastfeed.hub: set {' and '.join(missing)} in the environment")
    return [str(v) for v in values]


def _spin(opts: dict[str, Any] | None) -> float:
    spin = (opts or {}).get("idle_spin_us")
    return HUB_UPSTREAM_SPIN_US if spin is None else float(spin)


def upstream_for(feed: str, opts: dict[str, Any] | None = None) -> Any:
    """The upstream streamer of ``feed`` (``SystemExit`` naming what is missing); ``opts``:
    the hub's options (``account_hold``, ``idle_spin_us``)."""
    from fastfeed.hub._client import POLYGON_FEEDS

    if feed == "dxlink":
        url, token = _need("FASTFEED_DXLINK_URL", "FASTFEED_DXLINK_TOKEN")
        return DXLinkUpstream(SimpleNamespace(dxlink_url=url, streamer_token=token),
                              idle_spin_us=_spin(opts))
    if feed in POLYGON_FEEDS:
        (key,) = _need("FASTFEED_POLYGON_KEY")
        up = PolygonUpstream(key, feed, os.environ.get("FASTFEED_POLYGON_HOST") or HOST)
        up.idle_spin_us = _spin(opts)
        return up
    if feed == "account":
        from fastfeed.hub._account import AccountUpstream

        (token,) = _need("FASTFEED_ACCOUNT_TOKEN")
        hold = (opts or {}).get("account_hold") or 10_000
        return AccountUpstream(SimpleNamespace(session_token=token),
                               os.environ.get("FASTFEED_ACCOUNT_URL") or None,
                               hold_limit=int(hold))
    raise SystemExit(f"fastfeed.hub: unknown feed {feed!r} (dxlink, account, "
                     f"{', '.join(POLYGON_FEEDS)})")
