"""Replay a recording (``fastfeed.record``) through the live streamers' API.

::

    import fastfeed.replay

    streamer = fastfeed.replay.open("rec/2026-12-05", speed=None)   # DXLink recording
    async with streamer:
        await streamer.subscribe(Quote, ["SPY"])
        async for quote in streamer.listen(Quote):       # the bot's code, unchanged
            ...

    client = fastfeed.replay.open("rec/polygon")         # a polygon recording
    await client.subscribe_stock_trades(["AAPL"], on_trade)
    await client.handle_messages(reconnect=True)         # returns at the end of the recording

A DXLink recording gives a :class:`ReplayDXLinkStreamer` (a ``fastfeed.tastytrade.
DXLinkStreamer``), a polygon one a :class:`ReplayPolygonClient` (a ``fastfeed.polygon.
AsyncStreamClient``): ``subscribe``, ``listen``, ``listen_batches``, ``get_event``, ``latest``,
``stats`` and the polygon handlers work as live. Events are delivered only for the subscribed
symbols of each type (all of a type when nothing of it was subscribed, as when listening to a
type without subscribing), further restricted by ``symbols``.

``source``: ``"columns"`` (the Arrow/Parquet records; fastest), ``"raw"`` (every message
decoded again by ``DXLinkDecoder`` / ``PolygonDecoder``, the client's own DXLink messages fed
with ``sent=True`` where the decoder supports it: the records are those of the live session,
bit for bit) or ``"auto"`` (columns when recorded, else raw). ``speed``: ``None`` as fast as the
consumers take it, ``1.0`` the recorded pace, ``N`` N times faster. ``start`` / ``end``: receive
time bounds (``datetime``, or ns since the epoch). Playback starts when the first consumer
waits for events and does not overrun the consumers: it waits while one is half a ring behind,
unless that one reads nothing for ``stall_timeout`` (1 s; a cursor nobody reads then loses its
oldest events, counted as gaps, as live). At the end of the recording the streamer closes:
``listen`` ends after the events already delivered, ``get_event`` then raises
``ConnectionClosedOK``. A multi-type recording is merged by receive time (ties in type-name
order), streamed batch by batch.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

from fastfeed._connection import _as_symbols
from fastfeed.polygon import AsyncStreamClient
from fastfeed.record._read import column_types, read_meta
from fastfeed.streamer import Streamer
from fastfeed.tastytrade import DXLinkStreamer

__all__ = ["Player", "ReplayCore", "ReplayDXLinkStreamer", "ReplayPolygonClient", "open"]

Source = Literal["auto", "raw", "columns"]
_CHUNK = 16384
#: rows of a recorded segment read (and converted to records) at a time
_BATCH_ROWS = 65536


class ReplayCore:
    """The core of a replay streamer: rings and a symbol table, filled by the :class:`Player`."""

    def __init__(self, feed: str, types: dict[str, str], symbols: Any,
                 cluster: str | None = None) -> None:
        from fastfeed._native.core import ring_capacity_for
        from fastfeed._native.ring import RecordRing
        from fastfeed._records_meta import LAYOUTS

        self.feed_name = feed
        self.symbols = symbols
        self.rings: dict[str, Any] = {}
        for wire, layout in types.items():
            rtype = int(LAYOUTS[layout]["rtypes"].get(wire, next(iter(
                LAYOUTS[layout]["rtypes"].values()))))
            self.rings[wire] = RecordRing(layout, wire, rtype, symbols,
                                          ring_capacity_for(layout), "drop_oldest")
        self.ts_recv = 0
        self.control: list[Any] = []
        self.outbox: list[Any] = []
        self.n_messages = self.n_events = self.n_bytes = 0
        self.n_errors = self.n_skipped = self.n_overflowed = 0
        self._pg: Any = None
        if feed == "polygon":
            from fastfeed._native.polygon import PolygonSession

            self._pg = PolygonSession(cluster or "stocks", "replay")

    @property
    def stats(self) -> dict[str, int]:
        return {"messages": self.n_messages, "events": self.n_events, "bytes": self.n_bytes,
                "errors": self.n_errors, "skipped": self.n_skipped,
                "overflowed": self.n_overflowed}

    def under_pressure(self) -> bool:
        return False

    # polygon subscription bookkeeping (nothing is sent)
    @property
    def subscriptions(self) -> tuple[str, ...]:
        subs: tuple[str, ...] = self._pg.subscriptions if self._pg is not None else ()
        return subs

    def subscribe(self, prefix: str, symbols: Any = None, *, force_uppercase: bool = True) -> None:
        self._pg.subscribe(prefix, symbols, force_uppercase=force_uppercase)
        self._pg.data_to_send()

    def unsubscribe(self, prefix: str, symbols: Any = None, *,
                    force_uppercase: bool = True) -> None:
        self._pg.unsubscribe(prefix, symbols, force_uppercase=force_uppercase)
        self._pg.data_to_send()

    def auth(self, api_key: str | None = None) -> None:
        pass

    def data_to_send(self) -> list[Any]:
        out, self.outbox = self.outbox, []
        return out

    def events_received(self) -> list[Any]:
        out, self.control = self.control, []
        return out

    def connection_lost(self) -> None:
        pass


def _as_ns(t: datetime | float | None) -> int | None:
    if t is None:
        return None
    if isinstance(t, datetime):
        return round(t.timestamp() * 1e9)
    return int(t)


#: (ts_recv ns, {wire: (records, spill, spill_base)}): the spill-log bytes the records'
#: ``spill`` members refer to, as an ``EventBatch`` holds them (``None``: none spilled)
Step = tuple[int, dict[str, tuple[Any, Any, int]]]


class Player:
    """Produces the recording's records, read by read (raw) or in chunks (columns)."""

    def __init__(self, path: str, meta: dict[str, Any], source: str,
                 start: int | None, end: int | None) -> None:
        from fastfeed._native.symbols import SymbolTable

        self.path = path
        self.meta = meta
        self.source = source
        self.start = start
        self.end = end
        self.feed = str(meta["feed"])
        self.n_errors = 0
        self.n_messages = 0
        self.n_bytes = 0
        self._decoder: Any = None
        if source == "raw":
            self._decoder = self._make_decoder()
            self.symbols = self._decoder.symbols
        else:
            self.symbols = SymbolTable()

    def _make_decoder(self) -> Any:
        """The decoder of the recorded feed (drained after every recorded socket read: its
        default rings hold more than one read)."""
        if self.feed == "dxlink":
            from fastfeed._native.dxlink import DXLinkDecoder

            return DXLinkDecoder()
        from fastfeed._native.polygon import PolygonDecoder

        return PolygonDecoder(str(self.meta.get("cluster") or "stocks"))

    def types(self) -> dict[str, str]:
        if self._decoder is not None:
            return {w: r.layout for w, r in self._decoder.rings.items()}
        types: dict[str, str] = dict(self.meta.get("types") or {})
        return types

    def steps(self) -> Iterator[Step]:
        return self._raw_steps() if self.source == "raw" else self._column_steps()

    # -------------------------------------------------------------- raw

    def _raw_steps(self) -> Iterator[Step]:
        from fastfeed.errors import ProtocolError
        from fastfeed.record._raw import NOTE, RECV, SENT, iter_block, raw_segments, read_segment

        dec = self._decoder
        sent_ok = self.feed == "dxlink"
        consumers = {w: r.consumer(from_oldest=True) for w, r in dec.rings.items()}
        start, end = self.start, self.end
        cur_ts: int | None = None
        opened = 0
        for seg in raw_segments(os.path.join(self.path, "raw")):
            _h, blocks, _torn = read_segment(seg)
            for data in blocks:
                for ts, kind, _flags, payload in iter_block(data):
                    if cur_ts is not None and ts != cur_ts:
                        out = self._drain(consumers)
                        if out:
                            yield cur_ts, out
                        cur_ts = None
                    if kind == NOTE:
                        if bytes(payload).find(b'"open"') >= 0:
                            opened += 1
                            if opened > 1 and self.feed == "dxlink":
                                dec.reset_channels()
                        continue
                    if kind == SENT:
                        if sent_ok:
                            try:
                                dec.feed(payload, sent=True)
                            except ProtocolError:
                                self.n_errors += 1
                        continue
                    if kind != RECV:
                        continue
                    is_data = (start is not None and ts < start) or (end is not None and ts > end)
                    if is_data and _looks_like_data(self.feed, payload):
                        continue       # outside [start, end]: only control messages are fed
                    self.n_messages += 1
                    self.n_bytes += len(payload)
                    dec.ts_recv = ts
                    try:
                        dec.feed(payload)
                    except ProtocolError:
                        self.n_errors += 1
                    cur_ts = ts
        out = self._drain(consumers)
        if out and cur_ts is not None:
            yield cur_ts, out

    @staticmethod
    def _drain(consumers: dict[str, Any]) -> dict[str, tuple[Any, Any, int]]:
        out = {}
        for wire, cons in consumers.items():
            if cons.available:
                batch = cons.drain()
                out[wire] = (batch.to_numpy(), batch._spill, batch._spill_base)
        return out

    # -------------------------------------------------------------- columns

    def _column_steps(self) -> Iterator[Step]:
        """The recorded records of every type, streamed batch by batch (memory: about one
        batch per type). Several types: each step holds every type's records up to a receive
        time, so the records of one socket read arrive together (the polygon handlers then
        run in wire order, as live)."""
        import numpy as np

        wires = [w for w in column_types(self.path) if w in self.types()]
        its = [self._type_batches(w) for w in wires]
        heads: dict[int, list[Any]] = {}          # type index -> [records, position]
        for k, it in enumerate(its):
            arr = next(it, None)
            if arr is not None:
                heads[k] = [arr, 0]
        while heads:
            bound = min(int(a["ts_recv"][min(len(a), p + _CHUNK) - 1])
                        for (a, _s), p in heads.values())
            out: dict[str, tuple[Any, Any, int]] = {}
            first = None
            done = []
            for k in list(heads):
                (arr, spill), pos = heads[k]
                ts = arr["ts_recv"]
                end = pos + int(np.searchsorted(ts[pos:], bound, side="right"))
                if end > pos:
                    out[wires[k]] = (arr[pos:end], spill, 0)
                    t0 = int(ts[pos])
                    first = t0 if first is None else min(first, t0)
                heads[k][1] = end
                if end == len(arr):
                    done.append(k)
            if out and first is not None:
                yield first, out
            for k in done:      # only now: the next batch reuses the buffer just delivered
                nxt = next(its[k], None)
                if nxt is None:
                    del heads[k]
                else:
                    heads[k] = [nxt, 0]

    def _keep(self, arr: Any) -> Any:
        """``arr`` within [start, end] of receive time."""
        if self.start is None and self.end is None:
            return arr
        ts = arr["ts_recv"]
        keep = (ts >= self.start) if self.start is not None else (ts <= self.end)
        if self.start is not None and self.end is not None:
            keep &= ts <= self.end
        return arr[keep]

    def _type_batches(self, wire: str) -> Iterator[tuple[Any, Any]]:
        """The records of one type and the spill bytes they refer to, segment by segment,
        batch by batch, through one reused buffer (a batch is delivered -- copied into the
        rings -- before the next is made)."""
        from fastfeed.record._columns import new_records, spec_for, spill_data, to_records
        from fastfeed.record._read import column_segments, segment_batches

        intern = self.symbols.intern_str
        buf: Any = None
        for seg in column_segments(self.path, wire):
            got = segment_batches(seg, _BATCH_ROWS)
            if got is None:
                continue
            schema, batches = got
            spec = spec_for(self._layout_of(schema, wire))
            for b in _read_ahead(batches):
                n = b.num_rows
                if not n:
                    continue
                if buf is None or len(buf) < n or buf.dtype != spec.dtype:
                    buf = new_records(spec, max(n, _BATCH_ROWS))
                arr = self._keep(to_records(b, spec, intern, out=buf[:n]))
                if len(arr):
                    yield arr, spill_data(b, spec)

    def _layout_of(self, schema: Any, wire: str) -> str:
        meta = schema.metadata or {}
        layout = meta.get(b"fastfeed.layout", b"").decode()
        return layout or self.types()[wire]


def _read_ahead(batches: Iterator[Any]) -> Iterator[Any]:
    """The items of ``batches``, the next one read by a helper thread while the current one is
    converted and delivered (pyarrow reads and decompresses without the GIL). The same CPU
    per event; with a core free, a replay of Parquet columns ran 17 M events/s from open()
    instead of 10 M (none free: the same rate)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="fastfeed-replay-read") as pool:
        nxt = pool.submit(next, batches, None)
        while True:
            item = nxt.result()
            if item is None:
                return
            nxt = pool.submit(next, batches, None)
            yield item


def _looks_like_data(feed: str, payload: Any) -> bool:
    head = bytes(payload[:64])
    if feed == "dxlink":
        return b'"FEED_DATA"' in head
    return b'"status"' not in head


class _ReplayMixin:
    """Replaces the connection loop of a streamer by the player (see the module docstring)."""

    _core: Any
    _player: Player
    _speed: float | None
    _symbol_filter: set[str] | None
    _go: asyncio.Event | None
    #: seconds a consumer half a ring behind may stall playback without reading
    stall_timeout: float = 1.0
    _error: BaseException | None
    _ready: bool
    _ready_event: asyncio.Event | None
    _closed: bool
    _closing: bool
    #: the recording was played to its end (the streamer closed itself, not the user)
    _played_out: bool = False
    _user_closed: bool = False

    def _replay_init(self, player: Player, speed: float | None,
                     symbols: Iterable[str] | None) -> None:
        self._player = player
        self._speed = speed if speed else None
        self._symbol_filter = set(symbols) if symbols is not None else None
        self._go = None
        self._allowed: dict[str, tuple[tuple[int, frozenset[str]], Any]] = {}

    def _check_usable(self) -> None:
        if self._played_out and not self._user_closed:
            return   # the end of the recording: get_event raises ConnectionClosedOK, listen ends
        super()._check_usable()  # type: ignore[misc]

    async def close(self) -> None:
        self._user_closed = True
        await super().close()  # type: ignore[misc]

    async def _wait(self) -> None:
        if self._go is not None and not self._go.is_set():
            self._go.set()
        await super()._wait()  # type: ignore[misc]

    def _wanted(self, wire: str) -> set[str] | None:
        """Symbols of ``wire`` to deliver (None: all). Overridden per feed."""
        return self._symbol_filter

    def _filter(self, wire: str, arr: Any) -> Any:
        import numpy as np

        wanted = self._wanted(wire)
        if wanted is None:
            return arr
        symbols = self._core.symbols
        key = (len(symbols), frozenset(wanted))
        cached = self._allowed.get(wire)
        if cached is None or cached[0] != key:
            ids = np.array([symbols.id_of(s) for s in wanted], dtype=np.uint32)
            cached = (key, ids)
            self._allowed[wire] = cached
        return arr[np.isin(arr["symbol_id"], cached[1])]

    async def _run(self) -> None:
        self._go = asyncio.Event()
        self._ready = True
        ev = self._ready_event
        if ev is not None:
            ev.set()
        try:
            await self._go.wait()
            for _ in range(3):   # let the other tasks create their cursors
                await asyncio.sleep(0)
            await self._play()
        except Exception as exc:  # noqa: BLE001 - a broken recording: raised to the consumers
            if self._error is None:
                self._error = exc
        finally:
            self._ready = False
            self._played_out = True
            self._closed = True
            self._wake_all()     # type: ignore[attr-defined]

    async def _play(self) -> None:
        core = self._core
        rings = core.rings
        player = self._player
        speed = self._speed
        t0_wall = t0_rec = 0.0
        loop = asyncio.get_running_loop()
        for ts, parts in player.steps():
            if speed is not None:
                now = loop.time()
                if not t0_rec:
                    t0_rec, t0_wall = ts / 1e9, now
                delay = t0_wall + (ts / 1e9 - t0_rec) / speed - now
                if delay > 0:
                    await asyncio.sleep(delay)
            n = 0
            for wire, (arr, spill, base) in parts.items():
                ring = rings.get(wire)
                if ring is None:
                    continue
                arr = self._filter(wire, arr)
                if len(arr):
                    ring.push(arr.view("u1"), spill, base)
                    n += len(arr)
            core.n_messages = player.n_messages
            core.n_bytes = player.n_bytes
            core.n_errors = player.n_errors
            if not n:
                continue
            core.n_events += n
            core.ts_recv = ts
            self._on_wake()      # type: ignore[attr-defined]
            await asyncio.sleep(0)
            await self._drained(rings)

    async def _drained(self, rings: dict[str, Any]) -> None:
        """Wait while a consumer is more than half a ring behind -- unless it makes no progress
        for ``stall_timeout`` s (a cursor nobody reads: it then loses the oldest events and
        counts them as gaps, exactly as live)."""
        loop = asyncio.get_running_loop()
        spins = 0
        last = -1
        since = loop.time()
        while not self._closing:
            behind = max(r.backlog - r.capacity // 2 for r in rings.values())
            if behind <= 0:
                return
            now = loop.time()
            if behind != last:
                last, since = behind, now
            elif now - since > self.stall_timeout:
                return
            spins += 1
            await asyncio.sleep(0 if spins < 100 else 0.001)


class ReplayDXLinkStreamer(_ReplayMixin, DXLinkStreamer):
    """A ``DXLinkStreamer`` fed from a recording (see :mod:`fastfeed.replay`)."""

    def __init__(self, core: ReplayCore, player: Player, speed: float | None = None,
                 symbols: Iterable[str] | None = None) -> None:
        Streamer.__init__(self, core)
        self._session = None
        self._ssl_context = None
        self.proxy = None
        self._channel_waiters = {}
        self._reopens = {}
        self.n_channel_reopens = 0
        self._replay_init(player, speed, symbols)

    def __repr__(self) -> str:
        return f"<fastfeed.replay.ReplayDXLinkStreamer {self._player.path!r}>"

    def _wanted(self, wire: str) -> set[str] | None:
        subs = self._desired.symbols(wire)
        if not subs:
            return self._symbol_filter
        wanted = set(subs)
        return wanted if self._symbol_filter is None else wanted & self._symbol_filter

    async def _subscribe(self, etype: str, symbols: list[str], from_time: Any,
                         refresh_interval: float) -> None:
        if etype not in self._core.rings:
            raise ValueError(f"unknown event type {etype!r}")
        self._prepare_type(etype)
        self._desired.add(etype, symbols, from_time)

    async def unsubscribe(self, event_class: Any, symbols: Iterable[str] | str) -> None:
        self._desired.remove(self._wire_type(event_class), _as_symbols(symbols))

    async def unsubscribe_all(self, event_class: Any) -> None:
        self._desired.clear(self._wire_type(event_class))

    def _connection_ended(self, listener: Any) -> None:
        pass


class ReplayPolygonClient(_ReplayMixin, AsyncStreamClient):
    """A polygon ``AsyncStreamClient`` fed from a recording (see :mod:`fastfeed.replay`)."""

    def __init__(self, core: ReplayCore, player: Player, speed: float | None = None,
                 symbols: Iterable[str] | None = None) -> None:
        cluster = str(player.meta.get("cluster") or "stocks")
        AsyncStreamClient.__init__(self, "replay", cluster, host="ws://replay.invalid")
        self._core = core
        self._replay_init(player, speed, symbols)

    def __repr__(self) -> str:
        return f"<fastfeed.replay.ReplayPolygonClient {self._player.path!r}>"

    def _wanted(self, wire: str) -> set[str] | None:
        subs = [c.partition(".") for c in self._core.subscriptions]
        mine = {s for ev, _d, s in subs if ev == wire}
        if not mine or "*" in mine:
            return self._symbol_filter
        return mine if self._symbol_filter is None else mine & self._symbol_filter

    def _connection_ended(self, listener: Any) -> None:
        pass


def open(path: str | os.PathLike[str], *, source: Source = "auto",
         speed: float | None = None, start: datetime | int | None = None,
         end: datetime | int | None = None, symbols: Iterable[str] | None = None) -> Any:
    """A streamer replaying the recording in ``path`` (see the module docstring)."""
    p = os.fspath(path)
    meta = read_meta(p)
    feed = str(meta.get("feed"))
    if feed not in ("dxlink", "polygon"):
        from fastfeed.errors import FastFeedError

        raise FastFeedError(f"{p}: cannot replay a {feed!r} recording")
    if source == "auto":
        source = "columns" if column_types(p) else "raw"
    if source not in ("raw", "columns"):
        raise ValueError("source must be 'auto', 'raw' or 'columns'")
    player = Player(p, meta, source, _as_ns(start), _as_ns(end))
    core = ReplayCore(feed, player.types(), player.symbols, meta.get("cluster"))
    cls = ReplayDXLinkStreamer if feed == "dxlink" else ReplayPolygonClient
    return cls(core, player, speed, symbols)


async def events(path: str | os.PathLike[str], event_class: Any,
                 **kwargs: Any) -> AsyncIterator[Any]:
    """Every recorded event of ``event_class`` (a shortcut: ``open`` + ``listen``)."""
    streamer = open(path, **kwargs)
    async with streamer:
        async for ev in streamer.listen(event_class):
            yield ev


