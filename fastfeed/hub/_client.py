"""Consumers of a hub (layer 7): streamers with the usual API over the hub's stream.

``HubStreamer`` is a :class:`~fastfeed.streamer.Streamer` (plus ``stream_filter`` /
``add_handler``) whose core is a local decoder's rings and symbol table, filled from the hub's
shared-memory stream instead of a websocket:

* the control socket (``_control``) carries subscribe / unsubscribe requests (merged by the
  hub) and the hub's wake-ups; the event loop watches it like any socket;
* every waiting sample is read in place from shared memory, checked
  (``_wire.unpack_envelope``) and followed (``StreamTracker``: lost messages, lost records,
  publisher restarts). ``listen_batches`` yields batches that **read the shared-memory sample
  itself** (no copy; ``RecordRing.batch_over``): the sample stays loaned to this process while
  a batch (or a numpy array of it) is referenced and goes back to the hub after. The records
  are also copied once into the local ring of their type, from which ``listen``,
  ``get_event``, ``latest`` and ``stream_filter`` work exactly as on a direct streamer;
* overflow is this streamer's own setting, as on a direct streamer: ``"drop_oldest"`` drops a
  slow ``listen_batches`` iterator's oldest batches beyond its ring's capacity (counted in its
  batches' ``gaps`` and ``stats["gaps"]``); ``"backpressure"`` stops reading shared memory
  while an iterator or ring is full -- the hub's own QoS then applies (its drop-oldest service
  recycles this consumer's oldest samples, counted as lost messages; a back-pressure hub
  waits);
* wake-ups (iceoryx2's binding has no file descriptor to wait on): by default the hub writes
  a wake-up on the control socket after every message and the event loop sleeps in epoll
  until it comes (``HUB_IDLE_SPIN_US``: measured the cheapest here). With ``idle_spin_us``
  the loop keeps polling shared memory for that long after data (the streamers' idle
  strategy), then parks and tells the hub so; the hub then wakes only parked consumers, so a
  busy one costs it no system call. ``busy_poll=True``: it polls and never parks;
* the hub's stream carries every consumer's symbols: records of symbols this streamer did not
  subscribe are left out in C (``RecordRing.select``), so it sees what a direct
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
import collections
import itertools
import logging
import socket
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
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
from fastfeed.hub._shm import LoanLimitReached, ShmSettings, ShmSubscriber, new_node
from fastfeed.hub._wire import (
    ENVELOPE_SIZE,
    FEEDS,
    KIND_DATA,
    KIND_ERROR,
    KIND_RAW,
    KIND_STATUS,
    KIND_SYMBOLS,
    StreamTracker,
    SymbolMap,
    layout_hash,
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

#: default ``idle_spin_us`` of hub consumers: 0, a wake-up per message, chosen by measurement
#: (``python bench/bench_hub.py``, 2-vCPU VM shared with other work): a hub setup runs three
#: processes or more (upstream simulator/server, hub, consumers), and a consumer that spins
#: takes the CPU the others need -- a woken consumer saw a sample 3.9 us p50 after it was sent,
#: one polling for 250 us after data 2-8 ms (starved of CPU), an iceoryx2 event + waiter thread
#: 11 us; two consumers received 1.75-2.35 M records/s each without the spin, 1.31-2.14 M
#: with it. With a core free per consumer, ``idle_spin_us=250`` or ``busy_poll`` may do better.
HUB_IDLE_SPIN_US = 0.0


def _new_core(feed: str, overflow: str, ring_bytes: int | None) -> Any:
    """The rings (and symbol table) of a consumer of ``feed``."""
    kw: dict[str, Any] = {"policy": overflow}
    if ring_bytes is not None:
        kw["ring_bytes"] = ring_bytes
    if feed == "dxlink":
        from fastfeed._native.dxlink import DXLinkDecoder

        return DXLinkDecoder(**kw)
    if feed in POLYGON_FEEDS:
        from fastfeed.polygon.session import PolygonSession

        return PolygonSession(feed, **kw)   # no key: it never connects, the hub fills its rings
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


class _Cursor:
    """One ``listen_batches`` iterator: the hub messages it has not taken yet, each an entry
    ``[records, owner, n, spill, spill_base]`` shared by every cursor of the type (``owner``:
    the shared-memory sample the records are read from, or None once copied out; ``spill``:
    the values beyond the records' slots, or None)."""

    __slots__ = ("pending_gaps", "queue", "records", "ring")

    def __init__(self, ring: Any) -> None:
        self.ring = ring
        self.queue: collections.deque[list[Any]] = collections.deque()
        self.records = 0
        self.pending_gaps = 0


class HubStreamer(FanoutMixin, Streamer):
    """A streamer fed by a hub (see the module docstring). Use :func:`connect`."""

    #: seconds between attempts to reach a hub that went away
    reconnect_interval: float = 0.1
    #: seconds to wait for the hub's answer to a request
    request_timeout: float = 30.0

    def __init__(self, name: str, feed: str = "dxlink", *, busy_poll: bool = False,
                 idle_spin_us: float | None = None,
                 overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest",
                 ring_bytes: int | None = None) -> None:
        """``idle_spin_us``: after data the event loop keeps polling shared memory for this many
        microseconds before it parks (default ``HUB_IDLE_SPIN_US`` = 0: it sleeps at once and
        the hub wakes it after every message); ``busy_poll=True``: it polls on every
        iteration and never parks (one core kept busy).
        ``overflow``: see the module docstring; ``ring_bytes``: about how many bytes of records
        each event type's ring -- and each ``listen_batches`` iterator -- holds (as on
        ``DXLinkStreamer``)."""
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}")
        if overflow not in ("drop_oldest", "backpressure"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'backpressure', not {overflow!r}")
        super().__init__(_new_core(feed, overflow, ring_bytes))
        self._init_hub(name, feed, busy_poll=busy_poll, idle_spin_us=idle_spin_us,
                       overflow=overflow)

    def _init_hub(self, name: str, feed: str, *, busy_poll: bool = False,
                  idle_spin_us: float | None = None,
                  overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest") -> None:
        """The hub link's state (also used by the drop-ins pointed at a hub, whose own
        ``__init__`` made the core: ``fastfeed.hub._dropins``)."""
        if idle_spin_us is None:
            idle_spin_us = HUB_IDLE_SPIN_US
        if not idle_spin_us >= 0:
            raise ValueError("idle_spin_us must be >= 0")
        self.busy_poll = busy_poll
        self.idle_spin_us = float(idle_spin_us)
        self.overflow = overflow
        self._poller: asyncio.Handle | None = None
        self._spin_until = 0.0
        self._held = False        # back-pressure: shared memory not read until iterators catch up
        self._shm_cursors: dict[int, list[_Cursor]] = {}
        #: zero-copy batches handed out (weakly): detached when the loan limit is reached
        self._lent: collections.deque[weakref.ref[Any]] = collections.deque()
        self._retry: asyncio.TimerHandle | None = None
        self._more: asyncio.Handle | None = None
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
        self.n_parks = 0
        self.n_detached = 0
        self.n_loan_stalls = 0
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
        """One turn of the polling loop: ``busy_poll`` (never ends) or the idle spin after data
        (ends ``idle_spin_us`` after the last message: the streamer parks)."""
        self._poller = None
        if self._closed or self._closing:
            return
        sub = self._shm_sub
        if sub is not None and self._more is None and sub.has_samples():
            self._drain_shm()
        if self.busy_poll or time.monotonic() < self._spin_until:
            assert self._loop is not None
            self._poller = self._loop.call_soon(self._poll)
        else:
            self._park()

    def _keep_polling(self) -> None:
        """Data (or a wake-up) arrived: keep polling for ``idle_spin_us`` from now, then park."""
        if self.busy_poll:
            return
        if self.idle_spin_us <= 0 or self._loop is None or self._closed or self._closing:
            return
        self._spin_until = time.monotonic() + self.idle_spin_us * 1e-6
        if self._poller is None:
            self._poller = self._loop.call_soon(self._poll)

    def _park(self) -> None:
        """Tell the hub this streamer sleeps until woken: it sends a wake-up after its next
        message (at once if it published after ``seq``, the last message seen here)."""
        sock = self._sock
        if sock is None or not self._ready:
            return
        self.n_parks += 1
        try:
            sock.send(encode({"op": "park", "seq": self._tracker.next_seq - 1}))
        except OSError:
            pass   # the connection's end is seen by _on_readable

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
        """Every subscription again, those with a history start time (Candle) with theirs, as
        a direct streamer replays them after a reconnection."""
        for etype, syms in list(self._desired.items.items()):
            by_time: dict[Any, list[str]] = {}
            for sym, from_time in syms.items():
                by_time.setdefault(from_time, []).append(sym)
            for from_time, batch in by_time.items():
                await self._send_subscription("subscribe", etype, batch, from_time)

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
        self._keep_polling()

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
        for handle in (self._retry, self._more):
            if handle is not None:
                handle.cancel()
        self._connection_lost_quiet()
        if self._shm_sub is not None:
            self._shm_sub.close()
            self._shm_sub = None
        self._closed = True
        self._ready = False
        self._wake_all()
        recorder = getattr(self, "_recorder", None)     # a drop-in's ``record()``
        if recorder is not None:
            await recorder.aclose()

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
        if not data.strip(b"\0") and not len(data) & 3 and self._frames.empty:
            self._drain_shm()   # wake-ups only (the usual case): no frame to parse
            self._keep_polling()
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
        self._keep_polling()   # ends with a park: the hub wakes this streamer again

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
        if sub is None or not self._ready or self._held:   # not before the snapshot is applied
            return
        got = 0
        # at most half the loan limit per turn: the iterators take their batches in between,
        # so a consumer that keeps up never holds more samples than it may (no copies)
        budget = sub.loans // 2
        while True:
            if self.overflow == "backpressure" and self._full():
                self._held = True
                break
            if budget == 0:
                break
            budget -= 1
            try:
                r = sub.receive()
            except LoanLimitReached:
                if self._relieve():
                    continue
                self._stall()
                break
            if r is None:
                break
            sample, mv = r
            got += self._take(mv, sample)
            del sample, mv
        if got:
            self._on_wake_data()
            self._keep_polling()
        if budget == 0 and self._more is None and self._loop is not None:
            self._more = self._loop.call_soon(self._drain_more)   # after the iterators' turn

    def _drain_more(self) -> None:
        self._more = None
        self._drain_shm()

    def _full(self) -> bool:
        """Back-pressure: an iterator or a ring of this streamer is full."""
        for cursors in self._shm_cursors.values():
            for cur in cursors:
                if cur.records >= cur.ring.capacity:
                    return True
        return any(ring.pressure for ring in self._by_rtype.values())

    def _note_drained(self, gaps: int, cls_name: str) -> None:
        super()._note_drained(gaps, cls_name)
        self._unhold()

    def _unhold(self) -> None:
        """Back-pressure: read shared memory again once every iterator and ring has room."""
        if self._held and not self._full() and self._loop is not None:
            self._held = False
            self._loop.call_soon(self._drain_shm)

    def _relieve(self) -> bool:
        """The hub's loan limit per consumer is reached: copy the batches that still read
        shared memory (waiting ones first, then handed-out ones nothing exports) into memory of
        their own, which returns their samples. False when none could be released."""
        freed = 0
        for cursors in self._shm_cursors.values():
            for cur in cursors:
                for entry in cur.queue:
                    if entry[1] is not None:
                        entry[0] = bytes(entry[0])
                        entry[1] = None
                        freed += 1
        lent = self._lent
        for _ in range(len(lent)):
            batch = lent.popleft()()
            if batch is None or not batch.borrowed:
                continue
            if batch.detach():
                freed += 1
            else:
                lent.append(weakref.ref(batch))   # a buffer export reads it: still lent
        self.n_detached += freed
        return freed > 0

    def _stall(self) -> None:
        """Every loaned sample is held by a buffer export (numpy arrays of batches kept): read
        again shortly; meanwhile the hub's QoS applies (counted losses or a waiting hub)."""
        self.n_loan_stalls += 1
        if self.n_loan_stalls == 1 or self.n_loan_stalls % 1000 == 0:
            log.warning("hub consumer holds %d shared-memory batches with live buffer exports "
                        "(numpy arrays): reading paused until some are released (%d times); "
                        "copy what you keep (np.array(batch.to_numpy()))",
                        len(self._lent), self.n_loan_stalls)
        if self._loop is not None:
            self._retry = self._loop.call_later(0.001, self._drain_shm)

    def _resync(self) -> None:
        """Messages were lost (maybe a symbols one): ask for the symbol snapshot again."""
        if self._sock is not None:
            self._sock.send(encode({"op": "hello", "feed": self.feed}))

    def _take(self, mv: memoryview, sample: Any = None) -> int:
        """Apply one hub message (envelope + body; ``sample``: what keeps ``mv`` valid, None
        when it is not shared memory); returns the records delivered."""
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
        if env.kind == KIND_RAW:   # a frame the upstream received (asked for: raw_frames)
            frames = getattr(self._core, "raw_frames", None)
            if frames is not None:
                frames.append(bytes(mv[ENVELOPE_SIZE:]).decode("utf-8", "surrogateescape"))
            return 0
        if env.kind == KIND_STATUS:   # a status the upstream sent (polygon)
            self._on_hub_status(bytes(mv[ENVELOPE_SIZE:]))
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
            sample = None
        if self._filters_dirty:
            self._build_filters()
        flt = self._filters.get(env.rtype)
        spill: bytes | None = None
        base = 0
        if env.spill:   # values kept beside the records (rare, polygon): they go along
            spill, base = unpack_spill(mv[end:end + env.spill])
        if flt is not None:
            kept = ring.select(body, flt)
            if kept is not None:   # some records are other consumers' symbols
                k = len(kept) // env.record_size
                self.n_filtered += n - k
                n, body, sample = k, kept, None
        self.last_send_ns = env.ts_send
        if not n:
            return 0
        ring.push(body, spill, base)   # listen / get_event / latest / stream_filter
        cursors = self._shm_cursors.get(env.rtype)
        if cursors:
            entry = [body, sample, n, spill, base]
            drop = self.overflow == "drop_oldest"
            for cur in cursors:
                cur.queue.append(entry)
                cur.records += n
                if drop:
                    cap = cur.ring.capacity
                    while cur.records > cap and len(cur.queue) > 1:
                        old = cur.queue.popleft()
                        cur.records -= old[2]
                        cur.pending_gaps += old[2]
        self.n_events += n
        self.n_batches += 1
        return n

    def _on_hub_status(self, frame: bytes) -> None:
        """A status frame the hub's upstream received (the polygon drop-ins deliver it)."""

    # ------------------------------------------------------------------ consumer API

    def listen_batches(self, event_class: Any) -> AsyncIterator[Any]:
        """Yield an EventBatch each time events of ``event_class`` arrive, reading the hub's
        shared-memory sample in place (see the module docstring); fan-out as on a direct
        streamer (this iterator's own cursor, created by this call)."""
        self._check_usable()
        cur = _Cursor(self._ring(event_class))
        self._shm_cursors.setdefault(int(cur.ring.rtype), []).append(cur)
        return self._listen_cursor(cur)

    async def _listen_cursor(self, cur: _Cursor) -> AsyncGenerator[Any, None]:
        wire_type = str(cur.ring.wire_type)
        q = cur.queue
        lent = self._lent
        try:
            self._check_usable()
            while True:
                if q:
                    records, owner, n, spill, base = q.popleft()
                    cur.records -= n
                    gaps, cur.pending_gaps = cur.pending_gaps, 0
                    batch = cur.ring.batch_over(records, owner, gaps, spill, base)
                    if owner is not None:
                        if len(lent) >= 4096:
                            lent.popleft()
                        lent.append(weakref.ref(batch))
                    self._note_batch(batch)
                    yield batch
                    continue
                if self._check_end(wire_type):
                    return
                await self._wait()
        finally:
            cursors = self._shm_cursors.get(int(cur.ring.rtype), [])
            if cur in cursors:
                cursors.remove(cur)
                self._unhold()   # it may have been the full one

    # ------------------------------------------------------------------ subscriptions

    async def _send_subscription(self, op: str, etype: str, symbols: list[str],
                                 from_time: int | None = None) -> None:
        msg: dict[str, Any] = {"op": op, "type": etype, "symbols": symbols}
        if from_time is not None:
            msg["from_time"] = from_time
        if op == "subscribe" and getattr(self._core, "raw_frames", None) is not None:
            msg["frames"] = True   # Massive's raw=True: the frames the hub receives, too
        reply = await self._request(msg)
        if not reply.get("ok"):
            raise SubscriptionError(f"hub refused {op} {etype}: {reply.get('error')}")

    async def subscribe(self, event_class: Any, symbols: Iterable[str] | str,
                        refresh_interval: float = 0.1) -> None:
        """Subscribe through the hub (merged with every other consumer's subscriptions)."""
        await self._hub_subscribe(self._wire_type(event_class), _as_symbols(symbols))

    async def _hub_subscribe(self, etype: str, syms: list[str],
                             from_time: int | None = None) -> None:
        """``from_time`` (ms since the epoch): the upstream's history from then (DXLink
        Candle: the hub subscribes upstream with that ``fromTime``)."""
        if self._error is not None:
            raise self._error
        self._check_usable()
        self._ring(etype)   # KeyError for unknown types
        self._prepare_type(etype)
        self._desired.add(etype, syms, from_time)
        self._filters_dirty = True
        if self._ready:
            await self._send_subscription("subscribe", etype, syms, from_time)

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
        out["parks"] = self.n_parks
        out["detached_batches"] = self.n_detached
        out["loan_stalls"] = self.n_loan_stalls
        return out


@overload
def connect(url: str, feed: Literal["account"], *,  # type: ignore[overload-overlap]
            busy_poll: bool = False, idle_spin_us: float | None = None,
            overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest",
            ring_bytes: int | None = None) -> HubAlertStreamer: ...
@overload
def connect(url: str, feed: Literal["stocks", "options", "forex", "crypto", "indices",  # type: ignore[overload-overlap]
                                    "futures"], *,
            busy_poll: bool = False, idle_spin_us: float | None = None,
            overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest",
            ring_bytes: int | None = None) -> AsyncStreamClient: ...
@overload
def connect(url: str, feed: str = "dxlink", *, busy_poll: bool = False,
            idle_spin_us: float | None = None,
            overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest",
            ring_bytes: int | None = None) -> HubStreamer: ...
def connect(url: str, feed: str = "dxlink", *, busy_poll: bool = False,
            idle_spin_us: float | None = None,
            overflow: Literal["drop_oldest", "backpressure"] = "drop_oldest",
            ring_bytes: int | None = None) -> HubStreamer | HubAlertStreamer | AsyncStreamClient:
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

    ``busy_poll``, ``idle_spin_us``, ``overflow``, ``ring_bytes``: as on :class:`HubStreamer`.
    """
    if feed == "account":
        from fastfeed.hub._account import HubAlertStreamer

        parse_hub_url(url)   # ValueError now, not at start()
        return HubAlertStreamer(hub=url)
    if feed in POLYGON_FEEDS:
        from fastfeed.polygon import AsyncStreamClient

        parse_hub_url(url)
        if ring_bytes is not None:
            raise ValueError("ring_bytes is not a setting of AsyncStreamClient (dxlink only)")
        return AsyncStreamClient("unused", feed, hub=url, busy_poll=busy_poll,
                                 idle_spin_us=idle_spin_us, overflow=overflow)
    kw: dict[str, Any] = {"busy_poll": busy_poll, "idle_spin_us": idle_spin_us,
                          "overflow": overflow, "ring_bytes": ring_bytes}
    server, name = parse_hub_url(url)
    if server is None:
        return HubStreamer(name, feed, **kw)
    from fastfeed.hub._nats import NatsHubStreamer

    return NatsHubStreamer(server, name, feed, **kw)
