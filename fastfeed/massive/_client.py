"""Massive's ``WebSocketClient`` (massive 2.9.1) on fastfeed's polygon stack.

The connection, authentication, subscription replay and status handling are
:class:`fastfeed.polygon.AsyncStreamClient`'s (picows transport, C decoder into rings); this
class keeps Massive's constructor, methods and delivery: ``processor`` gets one ``list`` of
model objects (:mod:`fastfeed.massive._models`) per socket read, in wire order across event
types, and is awaited before the next (a slow processor delays delivery; the socket is still
read into back-pressure rings).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from fastfeed._native.pgdict import merge_order
from fastfeed._native.pgmodels import build_models
from fastfeed._native.polygon import CLUSTER_PREFIXES
from fastfeed.errors import AuthenticationError, ConnectionClosedError, ConnectionClosedOK
from fastfeed.massive._models import MARKET_EVENT_MAP, Feed, Market
from fastfeed.massive.exceptions import AuthError

__all__ = ["OK_STATUSES", "WebSocketClient", "env_key"]

env_key = "MASSIVE_API_KEY"
logger = logging.getLogger("fastfeed.massive")

#: statuses that mean things work; any other is logged as a warning (as Massive does)
OK_STATUSES = frozenset({"connected", "auth_success", "success"})

_RECONNECT_DELAYS = (0.0, 0.5, 1.0, 2.0, 5.0)  # before each attempt after a failed one


def models_of(batches: list[Any], classes: list[Any]) -> list[Any]:
    """One socket read's batches (one per ``ev``) as model objects in wire order."""
    if len(batches) == 1:
        return build_models(batches, classes)
    return build_models(batches, classes, merge_order(batches))


class _Sink:
    """Batch handler of one ``ev``: keeps the round's batch for :func:`models_of`."""

    __slots__ = ("cls", "out")

    def __init__(self, cls: Any, out: list[tuple[Any, Any]]) -> None:
        self.cls = cls
        self.out = out

    def __call__(self, batch: Any) -> None:
        self.out.append((batch, self.cls))


class WebSocketClient:
    """Massive's ``WebSocketClient`` (same constructor, methods, models and behaviour).

    ``WebSocketClient(api_key=os.getenv("MASSIVE_API_KEY"), feed=Feed.RealTime,
    market=Market.Stocks, raw=False, verbose=False, subscriptions=None, max_reconnects=5,
    secure=True, custom_json=None, ca_certs=None, **kwargs)``: the URL is
    ``ws[s]://{feed}/{market}``; ``feed`` may be any ``host[:port]``.
    """

    def __init__(
        self,
        api_key: str | None = os.getenv(env_key),
        feed: str | Feed = Feed.RealTime,
        market: str | Market = Market.Stocks,
        raw: bool = False,
        verbose: bool = False,
        subscriptions: list[str] | None = None,
        max_reconnects: int | None = 5,
        secure: bool = True,
        custom_json: Any | None = None,
        ca_certs: str | None = None,
        *,
        hub: str | None = None,
        **kwargs: Any,
    ) -> None:
        """``hub="ipc://NAME"`` / ``"nats://HOST:PORT/NAME"``: read from a fastfeed hub
        instead of Massive (``fastfeed.hub._dropins``: the API key is not sent; ``raw=True``
        gives the frames the hub receives, which carry every consumer's channels, merged)."""
        self._hub = hub
        if api_key is None and hub is not None:
            api_key = "hub"
        if api_key is None:
            raise AuthError(f"Must specify env var {env_key} or pass api_key in constructor")
        self.api_key = api_key
        self.feed = feed
        # str, this module's Market, or massive's own Market (the same values)
        self.market = Market(market.value if isinstance(market, enum.Enum) else market)
        self.market_value = self.market.value
        self.raw = raw
        if verbose:
            logger.setLevel(logging.DEBUG)
        self.websocket_cfg = kwargs
        host = feed.value if isinstance(feed, enum.Enum) else feed
        self.url = f"ws{'s' if secure else ''}://{host}/{self.market_value}"
        self._host = f"ws{'s' if secure else ''}://{host}"
        self.subscribed = False
        self.subs: set[str] = set()
        self.max_reconnects = max_reconnects
        #: the underlying :class:`fastfeed.polygon.AsyncStreamClient` while connected
        self.websocket: Any = None
        self.scheduled_subs: set[str] = set(subscriptions or [])
        self.schedule_resub = True
        self.ca_certs = ca_certs
        self.json: Any = custom_json if custom_json else json
        self._server_errors: Counter[tuple[Any, Any]] = Counter()
        self._server_errors_since = 0.0
        self._auth_message: str | None = None
        self._pending: list[tuple[Any, Any]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._sinks: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (f"<fastfeed.massive.WebSocketClient url={self.url!r} "
                f"subscriptions={len(self.scheduled_subs)}>")

    # ------------------------------------------------------------------ subscriptions

    @staticmethod
    def _parse_subscription(s: str) -> tuple[str | None, str | None]:
        parts = s.strip().split(".", 1)
        if len(parts) != 2:
            logger.warning("invalid subscription: %s", s)
            return None, None
        return parts[0], parts[1]

    def subscribe(self, *subscriptions: str) -> None:
        """Subscribe to channels (``"T.AAPL"``, ``"T.*"``); sent at once when connected.

        ``X.*`` replaces the specific ``X.`` channels."""
        for s in subscriptions:
            topic, sym = self._parse_subscription(s)
            if topic is None:
                continue
            s = s.strip()
            self.scheduled_subs.add(s)
            if sym == "*":
                for t in list(self.subs):
                    if t != s and t.startswith(topic + "."):
                        self.scheduled_subs.discard(t)
        self._schedule()

    def unsubscribe(self, *subscriptions: str) -> None:
        """Unsubscribe from channels; ``X.*`` drops every ``X.`` channel."""
        for s in subscriptions:
            topic, sym = self._parse_subscription(s)
            if topic is None:
                continue
            self.scheduled_subs.discard(s.strip())
            if sym == "*":
                for t in list(self.subs):
                    if t.startswith(topic + "."):
                        self.scheduled_subs.discard(t)
        self._schedule()

    def unsubscribe_all(self) -> None:
        """Unsubscribe from every channel."""
        self.scheduled_subs = set()
        self._schedule()

    def _schedule(self) -> None:
        self.schedule_resub = True
        loop = self._loop
        if self.websocket is None or loop is None:
            return  # sent when connect() starts
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._start_sync()
        else:  # from another thread (run() blocks one; others may subscribe)
            loop.call_soon_threadsafe(self._start_sync)

    def _start_sync(self) -> None:
        if self.websocket is not None and (self._sync_task is None or self._sync_task.done()):
            self._sync_task = asyncio.get_running_loop().create_task(self._reconcile_soon())

    async def _reconcile_soon(self) -> None:
        try:
            await self._reconcile()
        except Exception as exc:  # noqa: BLE001 - connect() raises the same error itself
            self.schedule_resub = True
            logger.debug("subscription update deferred: %s", exc)

    async def _reconcile(self) -> None:
        """Send what changed in ``scheduled_subs`` since the last call (one message each way)."""
        stream = self.websocket
        if stream is None or not self.schedule_resub:
            return
        self.schedule_resub = False
        wanted = set(self.scheduled_subs)
        # Massive's order (set iteration): the server's replies and data follow it
        new = [c for c in wanted.difference(self.subs) if self._valid(c)]
        old = list(self.subs.difference(wanted))
        if new:
            for c in new:
                await self._ensure_sink(stream, c)
            logger.debug("subbing: %s", ",".join(new))
            await stream._modify_sub(",".join(new), "subscribe")
        if old:
            logger.debug("unsubbing: %s", ",".join(old))
            await stream._modify_sub(",".join(old), "unsubscribe")
        self.subs = (self.subs & wanted) | set(new)  # what the server was asked for
        self.subscribed = bool(self.subs)

    def _valid(self, channel: str) -> bool:
        prefix, _, ticker = channel.partition(".")
        if not ticker or "," in channel or prefix not in CLUSTER_PREFIXES[self.market_value]:
            logger.warning("not subscribing to %r: no %r channel on the %s market", channel,
                           prefix, self.market_value)
            return False
        return True

    # ------------------------------------------------------------------ statuses

    def _on_status(self, ev: Any) -> None:
        status = ev.status
        logger.debug("status: %s", ev.message)
        if status == "auth_failed":
            self._auth_message = ev.message
        if status in OK_STATUSES:
            return
        if not self._server_errors:
            self._server_errors_since = time.monotonic()
        self._server_errors[(status, ev.message)] += 1

    def _flush_server_errors(self, force: bool = False) -> None:
        if not self._server_errors:
            return
        if not force and time.monotonic() - self._server_errors_since < 1:
            return
        for (status, message), count in self._server_errors.items():
            logger.warning("server %s: %s%s", status, message,
                           f" (x{count})" if count > 1 else "")
        self._server_errors = Counter()

    # ------------------------------------------------------------------ connection

    async def _open(self, kwargs: dict[str, Any]) -> Any:
        from fastfeed.polygon import AsyncStreamClient

        opts: dict[str, Any] = {}
        for key in ("ping_interval", "ping_timeout"):
            if key in kwargs:
                opts[key] = kwargs[key]
        if kwargs.get("max_size") is not None:
            opts["max_message_size"] = int(kwargs["max_size"])
        stream = AsyncStreamClient(self.api_key, self.market_value, self._host,
                                   overflow="backpressure", hub=self._hub, **opts)
        self._pending = []
        self._sinks = set()
        await stream.change_handler("status", self._on_status, deliver="event")
        return stream

    async def _ensure_sink(self, stream: Any, channel: str) -> None:
        """A batch handler for the channel's ``ev`` (one per ``ev`` subscribed: each is looked
        at on every socket read)."""
        ev = channel.partition(".")[0]
        cls = MARKET_EVENT_MAP[self.market].get(ev)
        if cls is not None and ev not in self._sinks:
            await stream.change_handler(ev, _Sink(cls, self._pending), deliver="batch")
            self._sinks.add(ev)

    async def connect(
        self,
        processor: Callable[[Any], Awaitable[Any]],
        close_timeout: int = 1,
        **kwargs: Any,
    ) -> None:
        """Connect and ``await processor(msgs)`` for every socket read until ``close()``.

        ``msgs`` is a ``list`` of model objects (``raw=True``: each frame's ``str``, statuses
        included). A lost connection is re-established (subscriptions replayed) up to
        ``max_reconnects`` times (``None``: forever), then its ``ConnectionClosedError`` is
        raised; a normal close by the server (1000/1001) returns. A rejected key raises
        :class:`~fastfeed.massive.exceptions.AuthError` (also a
        :class:`fastfeed.AuthenticationError`).
        """
        logger.debug("connect: %s", self.url)
        stream = await self._open(kwargs)
        self._loop = asyncio.get_running_loop()
        self.websocket = stream
        self.subs = set()
        self.schedule_resub = True
        reconnects = 0
        failed = 0
        raw_frames: list[str] | None = None
        if self.raw:
            raw_frames = []
            stream._core.raw_frames = raw_frames
        try:
            while True:
                try:
                    if self.schedule_resub:
                        await self._reconcile()
                    await stream.handle_messages()
                    failed = 0
                except ConnectionClosedOK:
                    await self._deliver(processor, raw_frames)
                    self._flush_server_errors(force=True)
                    return
                except AuthenticationError as exc:
                    self._flush_server_errors(force=True)
                    raise AuthError(self._auth_message or str(exc)) from None
                except (ConnectionClosedError, OSError) as exc:  # OSError: refused, timeout...
                    await self._deliver(processor, raw_frames)
                    self._flush_server_errors(force=True)
                    reconnects += 1
                    logger.debug("connection closed (ERR): %s", exc)
                    if self.max_reconnects is not None and reconnects > self.max_reconnects:
                        raise
                    await asyncio.sleep(_RECONNECT_DELAYS[min(failed, len(_RECONNECT_DELAYS) - 1)])
                    failed += 1
                    await self._restart(stream)
                    continue
                await self._deliver(processor, raw_frames)
                self._flush_server_errors()
        finally:
            self.websocket = None
            self._loop = None
            await stream.close_stream()

    async def _restart(self, stream: Any) -> None:
        """Reconnect ``stream``: its session replays the channels of ``subs`` once; changes
        scheduled meanwhile are sent next."""
        ok, msg = await stream.reconnect()
        if not ok:
            logger.debug("reconnect failed: %s", msg)
        self.schedule_resub = True

    async def _deliver(self, processor: Callable[[Any], Awaitable[Any]],
                       raw_frames: list[str] | None) -> None:
        pending = self._pending
        if raw_frames is not None:
            pending.clear()
            frames = raw_frames[:]
            raw_frames.clear()
            for frame in frames:
                if not _is_handshake(frame):
                    await processor(frame)
            return
        if not pending:
            return
        batches = [b for b, _ in pending]
        classes = [c for _, c in pending]
        pending.clear()
        msgs = models_of(batches, classes)
        if msgs:
            await processor(msgs)

    def run(
        self,
        handle_msg: Callable[[Any], Any],
        close_timeout: int = 1,
        **kwargs: Any,
    ) -> None:
        """``connect`` in an event loop of its own (blocks), calling ``handle_msg(msgs)``."""

        async def handle_msg_wrapper(msgs: Any) -> None:
            handle_msg(msgs)

        asyncio.run(self.connect(handle_msg_wrapper, close_timeout, **kwargs))

    async def close(self) -> None:
        """Close the connection (``connect`` / ``run`` then return)."""
        logger.debug("closing")
        self._flush_server_errors(force=True)
        stream = self.websocket
        if stream is not None:
            self.websocket = None
            await stream.close_stream()
        else:
            logger.warning("no websocket open to close")


def _is_handshake(frame: str) -> bool:
    """True for a frame Massive's client reads before its loop (``connected``, auth reply)."""
    if not frame.startswith('[{"ev":"status"') or len(frame) > 512:
        return False
    try:
        items = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return False
    return (len(items) == 1 and isinstance(items[0], dict)
            and items[0].get("status") in ("connected", "auth_success", "auth_failed"))
