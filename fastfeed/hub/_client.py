"""Consumers of a hub (layer 7): streamers with the usual API over the hub's stream.

``HubStreamer`` is a :class:`~fastfeed.streamer.Streamer` (plus ``stream_filter`` /
``add_handler``) whose core is a local decoder's rings and symbol table, filled from the hub's
shared-memory stream instead of a websocket:

* the control socket (``_control``) carries subscribe / unsubscribe requests (merged by the
  hub) and the hub's wake-ups; the event loop watches it like any socket;
* on a wake-up every waiting sample is read in place from shared memory, checked
  (``_wire.unpack_envelope``), followed (``StreamTracker``: lost messages, lost records,
  publisher restarts) and its records copied once into the local ring of their type -- from
  there ``listen``, ``listen_batches``, ``get_event``, ``latest`` and ``stream_filter`` work
  exactly as on a direct streamer (own cursors, fan-out, drop-oldest with counted gaps);
* the hub's stream carries every consumer's symbols: records of symbols this streamer did not
  subscribe are left out in C (``RecordRing.push_filtered``), so it sees what a direct
  streamer with its subscriptions would see (``"*"`` keeps everything);
* symbol mappings arrive on the same ordered stream and a snapshot comes with the hello, so
  the local table holds every symbol before any record naming it. Hub ids equal local ids in
  the usual case (the local table replicates the hub's); otherwise records are rewritten
  (``SymbolMap.remap``).

When the hub goes away the control connection ends: the streamer reconnects (every
``reconnect_interval`` seconds), counts the publisher restart, replays its subscriptions and
resumes; consumers' iterators just wait meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, overload

from fastfeed._connection import _as_symbols
from fastfeed._fanout import FanoutMixin
from fastfeed.errors import (
    ConnectionClosedError,
    ProtocolError,
    StreamerError,
    SubscriptionError,
)
from fastfeed.hub._control import FrameReader, encode, socket_path
from fastfeed.hub._shm import ShmSettings, ShmSubscriber, new_node
from fastfeed.hub._wire import (
    ENVELOPE_SIZE,
    FEEDS,
    KIND_DATA,
    KIND_ERROR,
    KIND_SYMBOLS,
    StreamTracker,
    SymbolMap,
    layout_hash,
    select_records,
    unpack_envelope,
    unpack_spill,
    unpack_symbols,
)
from fastfeed.streamer import Streamer

if TYPE_CHECKING:
    from fastfeed.hub._account import HubAlertStreamer
    from fastfeed.polygon import AsyncStreamClient

__all__ = ["POLYGON_FEEDS", "HubStreamer", "connect", "parse_hub_url"]

#: the polygon clusters a hub serves (feed names = cluster names)
POLYGON_FEEDS = ("stocks", "options", "forex", "crypto", "indices", "futures")

log = logging.getLogger("fastfeed.hub")


def _new_core(feed: str) -> Any:
    """The rings (and symbol table) of a consumer of ``feed``."""
    if feed == "dxlink":
        from fastfeed._native.dxlink import DXLinkDecoder

        return DXLinkDecoder()
    if feed in POLYGON_FEEDS:
        from fastfeed.polygon.session import PolygonSession

        return PolygonSession(feed)   # no key: it never connects, the hub fills its rings
    raise ValueError(f"feed {feed!r} is not served as records (dxlink, {', '.join(POLYGON_FEEDS)}"
                     " are; the account feed: fastfeed.hub.connect(url, 'account'))")


def parse_hub_url(url: str) -> tuple[str | None, str]:
    """``"ipc://NAME"`` -> ``(None, NAME)``; ``"nats://HOST:PORT/NAME"`` (or ``tls://``) ->
    ``("nats://HOST:PORT", NAME)`` (NAME defaults to ``main``); ValueError otherwise."""
    if url.startswith("ipc://"):
        return None, url[len("ipc://"):]
    if url.startswith(("nats://", "tls://")):
        scheme, rest = url.split("://", 1)
        server, _, name = rest.partition("/")
        return f"{scheme}://{server}", name or "main"
    raise ValueError(f"hub url must be ipc://NAME or nats://HOST:PORT/NAME, not {url!r}")


class HubStreamer(FanoutMixin, Streamer):
    """A streamer fed by a hub (see the module docstring). Use :func:`connect`."""

    #: seconds between attempts to reach a hub that went away
    reconnect_interval: float = 0.1
    #: seconds to wait for the hub's answer to a request
    request_timeout: float = 30.0

    def __init__(self, name: str, feed: str = "dxlink", *, busy_poll: bool = False) -> None:
        """``busy_poll=True``: the event loop also polls shared memory on every iteration and
        never sleeps (the lowest latency, one core kept busy); by default it sleeps until the
        hub's wake-up arrives on the control socket."""
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}")
        super().__init__(_new_core(feed))
        self._init_hub(name, feed, busy_poll=busy_poll)

    def _init_hub(self, name: str, feed: str, *, busy_poll: bool = False) -> None:
        """The hub link's state (also used by the drop-ins pointed at a hub, whose own
        ``__init__`` made the core: ``fastfeed.hub._dropins``)."""
        self.busy_poll = busy_poll
        self._poller: asyncio.Handle | None = None
        self.hub_name = name
        self.feed = feed
        self.path = socket_path(name)
        self._hub_url = f"ipc://{name}"
        self._sock: socket.socket | None = None
        self._frames = FrameReader()
        self._shm_sub: ShmSubscriber | None = None
        self._node: Any = None
        self._by_rtype = {int(r.rtype): r for r in self._core.rings.values()}
        self._tracker = StreamTracker()
        self._map = SymbolMap()
        self._skip_before = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reconnector: asyncio.Task[None] | None = None
        #: rtype -> bitmap of the local symbol ids this streamer subscribed (None: everything)
        self._filters: dict[int, bytearray | None] = {}
        self._filters_dirty = True
        self.n_events = 0
        self.n_filtered = 0
        self.n_batches = 0
        self.n_messages_seen = 0
        self.n_bad = 0
        self.n_resyncs = 0
        self.n_hub_reconnects = 0
        self.last_send_ns = 0

    def __repr__(self) -> str:
        state = "ready" if self._ready else ("closed" if self._closed else "connecting")
        return f"<fastfeed.hub.HubStreamer ipc://{self.hub_name} {self.feed} {state}>"

    @property
    def url(self) -> str:
        """The hub's url (``ipc://NAME`` or ``nats://HOST:PORT/NAME``)."""
        return self._hub_url

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect to the hub (raises ConnectionClosedError if there is none)."""
        self._check_usable()
        if self._ready:
            return
        self._loop = asyncio.get_running_loop()
        try:
            await self._connect()
        except (OSError, ConnectionClosedError) as exc:
            await self.close()
            raise ConnectionClosedError(None, f"no fastfeed hub at {self.url}: {exc}") from None
        if self.busy_poll and self._poller is None:
            self._poller = self._loop.call_soon(self._poll)

    def _poll(self) -> None:
        if self._closed or self._closing:
            self._poller = None
            return
        self._drain_shm()
        assert self._loop is not None
        self._poller = self._loop.call_soon(self._poll)

    async def _connect(self) -> None:
        """Control channel, then the stream (before the snapshot: nothing after it is
        missed), then the snapshot; then this streamer's subscriptions again (a new hub)."""
        await self._open_control()
        info = await self._request({"op": "info", "feed": self.feed})
        if not info.get("ok"):
            raise ConnectionClosedError(None, str(info.get("error")))
        if int(info["layout_hash"]) != layout_hash():
            raise ProtocolError("hub", "the hub's record layouts differ from this build's")
        await self._open_stream(info)
        hello = await self._request({"op": "hello", "feed": self.feed})
        if not hello.get("ok"):
            raise ConnectionClosedError(None, str(hello.get("error")))
        publisher = int(hello["publisher"])
        tr = self._tracker
        if tr.publisher and tr.publisher != publisher:
            tr.restarts += 1
        if tr.publisher != publisher:
            self._map = SymbolMap()   # a new hub: its ids start again
        tr.start(publisher, int(hello["seq"]), {int(k): int(v) for k, v in hello["rec"].items()})
        self._skip_before = int(hello["seq"])
        self._add_symbols((int(i), str(s)) for i, s in hello["symbols"])
        self.n_connects += 1
        self._ready = True
        await self._resubscribe()
        self._stream_ready()

    async def _resubscribe(self) -> None:
        for etype, syms in list(self._desired.items.items()):
            if syms:
                await self._send_subscription("subscribe", etype, list(syms))

    async def _open_control(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self.path)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._frames = FrameReader()
        loop.add_reader(sock.fileno(), self._on_readable)

    async def _open_stream(self, info: dict[str, Any]) -> None:
        if self._node is None:
            self._node = new_node()
        if self._shm_sub is not None:
            self._shm_sub.close()
        self._shm_sub = ShmSubscriber(self._node, str(info["service"]),
                                      ShmSettings.from_dict(info["qos"]))

    def _stream_ready(self) -> None:
        self._drain_shm()

    def _connection_lost(self) -> None:
        self._connection_lost_quiet()
        self._ready = False
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError(None, "hub connection lost"))
        self._pending.clear()
        if not (self._closed or self._closing or self._error is not None) and (
                self._reconnector is None or self._reconnector.done()):
            self._reconnector = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not (self._closed or self._closing):
            await asyncio.sleep(self.reconnect_interval)
            try:
                await self._connect()
            except (OSError, ConnectionClosedError) as exc:
                log.debug("hub ipc://%s not back yet: %s", self.hub_name, exc)
                if self._sock is not None:
                    self._connection_lost_quiet()
                continue
            self.n_hub_reconnects += 1
            self.n_reconnects += 1
            return

    def _connection_lost_quiet(self) -> None:
        """Close the control socket (no reconnect, no waiter failed)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(sock.fileno())
            except (RuntimeError, ValueError):
                pass
            sock.close()

    async def close(self) -> None:
        """Leave the hub (it drops this streamer's subscriptions) and end every iterator."""
        if self._closed:
            return
        self._closing = True
        if self._reconnector is not None:
            self._reconnector.cancel()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._connection_lost_quiet()
        if self._shm_sub is not None:
            self._shm_sub.close()
            self._shm_sub = None
        self._closed = True
        self._ready = False
        self._wake_all()

    # ------------------------------------------------------------------ control channel

    async def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        sock = self._sock
        if sock is None:
            raise ConnectionClosedError(None, "not connected to the hub")
        rid = next(self._ids)
        msg["id"] = rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        await asyncio.get_running_loop().sock_sendall(sock, encode(msg))
        try:
            return await asyncio.wait_for(fut, self.request_timeout)
        finally:
            self._pending.pop(rid, None)

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._connection_lost()
            return
        try:
            _, msgs = self._frames.feed(data)
        except ProtocolError as exc:
            log.error("hub control channel: %s; reconnecting", exc)
            self._connection_lost()
            return
        for msg in msgs:
            fut = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
            if fut is not None and not fut.done():
                fut.set_result(msg)
            elif msg.get("op") == "hello" and msg.get("ok"):   # a resync after lost messages
                self._add_symbols((int(i), str(s)) for i, s in msg["symbols"])
            elif msg.get("op") == "error":   # the hub's upstream failed for good
                self._drain_shm()   # what came before it first
                self._fail(StreamerError(f"the hub's {self.feed} upstream failed: "
                                         f"{msg.get('error')}"))
        self._drain_shm()

    # ------------------------------------------------------------------ the stream

    def _add_symbols(self, items: Iterable[tuple[int, str]]) -> None:
        table = self._core.symbols
        m = self._map
        for hub_id, sym in items:
            if not m.known(hub_id):
                m.add(hub_id, table.intern_str(sym))
                self._filters_dirty = True

    def _build_filters(self) -> None:
        """The hub carries every consumer's symbols: keep only this streamer's own (a direct
        streamer would receive only those). A ``"*"`` subscription keeps everything."""
        table = self._core.symbols
        out: dict[int, bytearray | None] = {}
        for ring in self._core.rings.values():
            syms = self._desired.symbols(ring.wire_type)
            if "*" in syms:
                out[int(ring.rtype)] = None
                continue
            bits = bytearray((len(table) >> 3) + 1)
            for sym in syms:
                sid = table.id_of(sym)
                if sid:
                    bits[sid >> 3] |= 1 << (sid & 7)
            out[int(ring.rtype)] = bits
        self._filters = out
        self._filters_dirty = False

    def _drain_shm(self) -> None:
        sub = self._shm_sub
        if sub is None or not self._ready:   # not before the snapshot is applied
            return
        got = 0
        while True:
            r = sub.receive()
            if r is None:
                break
            sample, mv = r
            got += self._take(mv)
            del sample, mv
        if got:
            self._on_wake_data()

    def _resync(self) -> None:
        """Messages were lost (maybe a symbols one): ask for the symbol snapshot again."""
        if self._sock is not None:
            self._sock.send(encode({"op": "hello", "feed": self.feed}))

    def _take(self, mv: memoryview) -> int:
        """Apply one hub message (envelope + body); returns the records delivered."""
        tracker = self._tracker
        try:
            env = unpack_envelope(mv)
        except ProtocolError as exc:
            self.n_bad += 1
            log.warning("hub message skipped: %s", exc)
            return 0
        if env.publisher == tracker.publisher and env.seq < self._skip_before:
            return 0   # published before this streamer's snapshot
        status = tracker.observe(env)
        self.n_messages_seen += 1
        if status == "restart":
            self._map = SymbolMap()   # a new hub: its symbol ids start again
        elif status == "gap":
            self.n_resyncs += 1   # a symbols message may be among the lost ones
            self._resync()
        if env.kind == KIND_SYMBOLS:
            self._add_symbols(unpack_symbols(mv[ENVELOPE_SIZE:], env.n))
            return 0
        if env.kind == KIND_ERROR:   # the hub's upstream failed for good
            text = bytes(mv[ENVELOPE_SIZE:]).decode("utf-8", "replace")
            self._fail(StreamerError(f"the hub's {self.feed} upstream failed: {text}"))
            return 0
        if env.kind != KIND_DATA:
            return 0
        ring = self._by_rtype.get(env.rtype)
        n = env.n
        if ring is None or ring.record_size != env.record_size:
            self.n_bad += 1
            return 0
        end = ENVELOPE_SIZE + n * env.record_size
        body: Any = mv[ENVELOPE_SIZE:end]
        if not self._map.identity:
            body = memoryview(bytearray(body))
            self._map.remap(body, env.record_size, n)
        if self._filters_dirty:
            self._build_filters()
        flt = self._filters.get(env.rtype)
        if env.spill:   # values kept beside the records (rare): the ring's log gets them
            spill, base = unpack_spill(mv[end:end + env.spill])
            if flt is not None:
                body = select_records(body, env.record_size, n, flt)
                self.n_filtered += n - len(body) // env.record_size
                n = len(body) // env.record_size
            ring.push(body, spill, base)
        elif flt is None:
            ring.push(body)
        else:
            k = ring.push_filtered(body, flt)
            self.n_filtered += n - k
            n = k
        self.last_send_ns = env.ts_send
        if n:
            self.n_events += n
            self.n_batches += 1
        return n

    # ------------------------------------------------------------------ subscriptions

    async def _send_subscription(self, op: str, etype: str, symbols: list[str]) -> None:
        reply = await self._request({"op": op, "type": etype, "symbols": symbols})
        if not reply.get("ok"):
            raise SubscriptionError(f"hub refused {op} {etype}: {reply.get('error')}")

    async def subscribe(self, event_class: Any, symbols: Iterable[str] | str,
                        refresh_interval: float = 0.1) -> None:
        """Subscribe through the hub (merged with every other consumer's subscriptions)."""
        if self._error is not None:
            raise self._error
        self._check_usable()
        etype = self._wire_type(event_class)
        self._ring(etype)   # KeyError for unknown types
        syms = _as_symbols(symbols)
        self._prepare_type(etype)
        self._desired.add(etype, syms)
        self._filters_dirty = True
        if self._ready:
            await self._send_subscription("subscribe", etype, syms)

    async def unsubscribe(self, event_class: Any, symbols: Iterable[str] | str) -> None:
        """Drop this streamer's interest (the hub unsubscribes upstream if it was the last)."""
        etype = self._wire_type(event_class)
        gone = self._desired.remove(etype, _as_symbols(symbols))
        self._filters_dirty = True
        if gone and self._ready:
            await self._send_subscription("unsubscribe", etype, gone)

    # ------------------------------------------------------------------ stats

    @property
    def stats(self) -> dict[str, Any]:
        """The streamer's counters plus the hub's: ``gaps`` includes records lost between the
        hub and this process (``transport_gaps``); ``hub_gaps`` is what the hub itself lost;
        ``publisher_restarts`` counts hub restarts seen."""
        out = super().stats
        tr = self._tracker
        out["events"] = self.n_events
        out["messages"] = self.n_batches
        out["gaps"] = int(out["gaps"]) + tr.gaps
        out["transport_gaps"] = tr.gaps
        out["lost_messages"] = tr.lost_messages
        out["hub_gaps"] = tr.hub_gaps
        out["publisher_restarts"] = tr.restarts
        out["hub_reconnects"] = self.n_hub_reconnects
        out["resyncs"] = self.n_resyncs
        out["bad_messages"] = self.n_bad
        out["filtered"] = self.n_filtered
        out["hub_messages"] = self.n_messages_seen
        return out


@overload
def connect(url: str, feed: Literal["account"], *,  # type: ignore[overload-overlap]
            busy_poll: bool = False) -> HubAlertStreamer: ...
@overload
def connect(url: str, feed: Literal["stocks", "options", "forex", "crypto", "indices",  # type: ignore[overload-overlap]
                                    "futures"], *,
            busy_poll: bool = False) -> AsyncStreamClient: ...
@overload
def connect(url: str, feed: str = "dxlink", *, busy_poll: bool = False) -> HubStreamer: ...
def connect(url: str, feed: str = "dxlink", *,
            busy_poll: bool = False) -> HubStreamer | HubAlertStreamer | AsyncStreamClient:
    """A streamer fed by the hub at ``url``: ``"ipc://NAME"`` (shared memory, this machine) or
    ``"nats://HOST:PORT/NAME"`` (NATS; NAME defaults to ``main``), for ``feed``:

    * ``"dxlink"``: a :class:`HubStreamer` (``subscribe(Quote, symbols)``, ``listen``,
      ``listen_batches``, ``get_event``, ``latest``, ``stream_filter``, ``stats``);
    * a polygon cluster (``"stocks"``, ``"options"``, ...): a
      :class:`fastfeed.polygon.AsyncStreamClient` reading from the hub (its handlers,
      ``subscribe_*``, ``handle_messages``, and the streamer API above too: it is a
      :class:`HubStreamer`);
    * ``"account"``: an ``AlertStreamer`` reading the hub's JetStream account stream
      (:class:`HubAlertStreamer`).

    ::

        async with fastfeed.hub.connect("ipc://main") as streamer:
            await streamer.subscribe(Quote, ["SPY"])
    """
    if feed == "account":
        from fastfeed.hub._account import HubAlertStreamer

        parse_hub_url(url)   # ValueError now, not at start()
        return HubAlertStreamer(hub=url)
    if feed in POLYGON_FEEDS:
        from fastfeed.polygon import AsyncStreamClient

        parse_hub_url(url)
        return AsyncStreamClient("unused", feed, hub=url, busy_poll=busy_poll)
    server, name = parse_hub_url(url)
    if server is None:
        return HubStreamer(name, feed, busy_poll=busy_poll)
    from fastfeed.hub._nats import NatsHubStreamer

    return NatsHubStreamer(server, name, feed)
