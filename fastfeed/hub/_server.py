"""The hub process (layer 7): one upstream streamer per feed, its record batches published to
every consumer process through shared memory, subscriptions merged and reference-counted.

``Hub(name, upstreams)`` where ``upstreams`` maps a feed name (``"dxlink"``) to a started-on-
demand upstream streamer (``fastfeed.hub._upstreams``: ``subscribe``, ``unsubscribe``,
``_ring``, ``on_data``). For each event type some consumer subscribed, the hub holds a cursor
on the streamer's ring; in the streamer's socket-read callback (``on_data``: no task switch,
no loop turn in between) it drains every cursor and publishes each batch as it is (one
envelope + the records), then wakes the consumers; symbols new since the last message are
published first, on the same ordered stream. NATS messages are written to the NATS socket from
there too (``NatsSink.write_now``), or by a flush task when the socket is backed up.

Subscriptions: ``(feed, type, symbol)`` -> set of consumer connections. The first consumer
asking for a key subscribes upstream, the last one leaving (unsubscribe, close, or its process
dying: the control connection ends) unsubscribes upstream. Credentials stay in the upstream
streamers: nothing the hub publishes carries them.

A consumer that stalls never slows the hub (drop-oldest streams): its shared-memory buffer
recycles its oldest samples, and its wake-ups are skipped while its socket buffer is full.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Iterable
from typing import Any, Self

from fastfeed.hub._control import WAKE, FrameReader, encode, socket_path
from fastfeed.hub._shm import ShmPublisher, ShmSettings, new_node, service_name
from fastfeed.hub._wire import (
    ENVELOPE,
    ENVELOPE_SIZE,
    FEEDS,
    KIND_DATA,
    KIND_ERROR,
    KIND_RAW,
    KIND_STATUS,
    KIND_SYMBOLS,
    MAGIC,
    VERSION,
    layout_hash,
    pack_spill,
    pack_symbols,
    spill_ref,
)

__all__ = ["Hub"]

log = logging.getLogger("fastfeed.hub")

#: wake-ups are skipped for a consumer whose socket has this many bytes unsent (it is stalled;
#: it drains everything when it runs again)
WAKE_SKIP_BYTES = 4096
#: a message (envelope, records, their spill) is at most this many bytes, or the NATS server's
#: max_payload when that is smaller: a backlog drained at once is split into several
MAX_MESSAGE_BYTES = 64 * 1024


class _Consumer:
    """A consumer streamer: on the control socket (``writer``) or over NATS (``lease``: the
    last time it was heard of; it is dropped when silent for ``NATS_LEASE`` seconds)."""

    __slots__ = ("cid", "feed", "frames", "lease", "parked", "parks", "skipped_wakes", "subs",
                 "writer")

    def __init__(self, cid: int, writer: asyncio.StreamWriter | None) -> None:
        self.cid = cid
        self.writer = writer
        self.lease = 0.0
        self.feed: str | None = None
        self.subs: set[tuple[str, str]] = set()   # (type, symbol)
        self.frames = False   # it asked for the upstream's frames (Massive's raw=True)
        self.skipped_wakes = 0
        self.parks = False    # it spins after data and says when it parks (op "park") ...
        self.parked = False   # ... and is parked now: the next message wakes it


class _Feed:
    """One upstream streamer and its shared-memory stream."""

    def __init__(self, name: str, streamer: Any, publisher: ShmPublisher, code: int) -> None:
        self.name = name
        self.streamer = streamer
        self.pub = publisher
        self.code = code
        self.seq = 1                      # next message sequence number
        self.rec_seq: dict[int, int] = {}  # rtype -> next record sequence number
        self.sent_symbols = 0             # hub symbol ids 1..sent_symbols were published
        self.symbols: Any = None          # the streamer's SymbolTable (from its first batch)
        self.hub_gaps = 0
        self.publish_errors = 0
        self.failed: BaseException | None = None
        self.refs: dict[tuple[str, str], set[int]] = {}
        #: consumers that asked for the upstream's frames (the upstream keeps them meanwhile)
        self.frame_consumers: set[int] = set()
        #: wire type -> (rtype, the hub's cursor on the streamer's ring of that type)
        self.cursors: dict[str, tuple[int, Any]] = {}
        self.started = False
        self.lock = asyncio.Lock()


class Hub:
    """See the module docstring. ``async with Hub(...)`` or ``start()`` / ``close()``."""

    def __init__(self, name: str, upstreams: dict[str, Any],
                 settings: dict[str, ShmSettings] | None = None,
                 nats_url: str | None = None, nats_lease: float | None = None) -> None:
        for feed in upstreams:
            if feed not in FEEDS:
                raise ValueError(f"unknown feed {feed!r} (known: {', '.join(FEEDS)})")
        if "account" in upstreams and not nats_url:
            raise ValueError("the account feed needs a NATS server (--nats): its notifications "
                             "go through JetStream, so that none is lost")
        self.name = name
        self.path = socket_path(name)
        self.publisher_id = int.from_bytes(secrets.token_bytes(8), "little") or 1
        self._upstreams = {k: v for k, v in upstreams.items() if k != "account"}
        self._account_up = upstreams.get("account")
        self._account: Any = None
        self._settings = settings or {}
        self._feeds: dict[str, _Feed] = {}
        self._consumers: dict[int, _Consumer] = {}
        self._next_cid = 1
        self._server: asyncio.AbstractServer | None = None
        self._node: Any = None
        self._closed = False
        #: set when the hub should stop (an upstream failed for good: ``error``)
        self.done = asyncio.Event()
        self.error: BaseException | None = None
        self._nats_url = nats_url
        self._nats_lease = nats_lease
        self._nats: Any = None
        self._flusher: asyncio.Task[None] | None = None
        self.n_wakes = 0
        self.n_skipped_wakes = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        self._node = new_node()
        for feed, streamer in self._upstreams.items():
            settings = self._settings.get(feed) or ShmSettings()
            pub = ShmPublisher(self._node, service_name(self.name, feed), settings)
            self._feeds[feed] = _Feed(feed, streamer, pub, FEEDS[feed])
        try:
            os.unlink(self.path)   # a previous hub of this name that died
        except FileNotFoundError:
            pass
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        os.chmod(self.path, 0o600)
        if self._nats_url:
            from fastfeed.hub._nats import NATS_LEASE, NatsSink

            self._nats = await NatsSink.connect(self._nats_url, self,
                                                self._nats_lease or NATS_LEASE)
        if self._account_up is not None:
            from fastfeed.hub._account import AccountFeed

            self._account = AccountFeed(self.name, self._account_up, self.publisher_id,
                                        on_fail=self._upstream_failed)
            await self._account.start(self._nats.nc)
        return self

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        for f in self._feeds.values():   # publishing stops first
            f.streamer.on_data = None
            for _, cursor in f.cursors.values():
                cursor.close()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._account is not None:
            await self._account.close()
        if self._nats is not None:
            await self._nats.close()
        for c in list(self._consumers.values()):
            if c.writer is not None:
                c.writer.close()
        for f in self._feeds.values():
            if f.started:
                await f.streamer.close()
            f.pub.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"ipc://{self.name}"

    @property
    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"consumers": len(self._consumers), "wakes": self.n_wakes,
                               "skipped_wakes": self.n_skipped_wakes}
        for name, f in self._feeds.items():
            out[name] = {"messages": f.pub.sent, "bytes": f.pub.bytes, "hub_gaps": f.hub_gaps,
                         "publish_errors": f.publish_errors,
                         "subscriptions": sorted(f"{t}:{s}" for t, s in f.refs)}
        if self._nats is not None:
            out["nats"] = {"published": self._nats.published, "errors": self._nats.errors}
        if self._account is not None:
            out["account"] = self._account.stats
        return out

    # ------------------------------------------------------------------ publishing

    def _publish_symbols(self, f: _Feed) -> None:
        syms = f.symbols
        n = len(syms)
        if n <= f.sent_symbols:
            return
        first = f.sent_symbols + 1
        items = [(i, syms[i]) for i in range(first, n + 1)]
        body = pack_symbols(items)
        self._emit(f, (MAGIC, VERSION, KIND_SYMBOLS, f.code, 0, 0, len(items), self.publisher_id,
                       f.seq, first, f.hub_gaps, time.time_ns(), layout_hash(), 0),
                   body, len(body), "sym")
        f.seq += 1
        f.sent_symbols = n

    def _publish_batch(self, f: _Feed, rtype: int, etype: str, batch: Any) -> None:
        if f.symbols is None:
            f.symbols = batch.symbols
        if batch.gaps:
            f.hub_gaps += int(batch.gaps)
        self._publish_symbols(f)
        total = len(batch)
        rsize = batch.record_size
        view = memoryview(batch).cast("B")
        limit = self._message_limit()
        spill = batch._spill   # bytes beside the records (rare: polygon values beyond slots)
        start = 0
        while start < total:   # a backlog drained at once is split into messages of <= limit
            if spill:
                end, section = _spill_part(view, start, total, rsize, limit, spill,
                                           batch._spill_base)
            else:
                end, section = min(total, start + max(1, (limit - ENVELOPE_SIZE) // rsize)), b""
            n = end - start
            first = f.rec_seq.get(rtype, 1)
            body: Any = view[start * rsize:end * rsize]
            if section:
                body = bytes(body) + section
            self._emit(f, (MAGIC, VERSION, KIND_DATA, f.code, rtype, rsize, n,
                           self.publisher_id, f.seq, first, f.hub_gaps, time.time_ns(),
                           layout_hash(), len(section)),
                       body, n * rsize + len(section), etype)
            f.seq += 1
            f.rec_seq[rtype] = first + n
            start = end

    def _message_limit(self) -> int:
        """Bytes per message at most: MAX_MESSAGE_BYTES, or the NATS server's max_payload when
        smaller (read from its connection info, which may change at a reconnect)."""
        if self._nats is None:
            return MAX_MESSAGE_BYTES
        return min(MAX_MESSAGE_BYTES, int(self._nats.max_payload))

    def _emit(self, f: _Feed, fields: tuple[Any, ...], body: Any, nbytes: int,
              subject: str) -> None:
        """One message to every transport: shared memory now, NATS in the flush task
        (``_flush_nats``; in order: the NATS sink keeps a queue)."""
        f.pub.send(fields, body, nbytes)
        if self._nats is not None:
            self._nats.queue(f"{f.name}.{subject}", b"".join((ENVELOPE.pack(*fields), body)))

    def _wake(self) -> None:
        """A wake-up to every consumer, right after the sample is visible (a consumer reads
        every waiting sample per wake-up, so a skipped one costs nothing but latency)."""
        self.n_wakes += 1
        for c in self._consumers.values():
            w = c.writer
            if w is None or w.is_closing():
                continue
            if c.parks:   # awake consumers poll shared memory: no system call for them
                if not c.parked:
                    continue
                c.parked = False
            if w.transport.get_write_buffer_size() > WAKE_SKIP_BYTES:
                c.skipped_wakes += 1
                self.n_skipped_wakes += 1
                continue
            w.write(WAKE)

    # ------------------------------------------------------------------ subscriptions

    async def _ensure_started(self, f: _Feed) -> None:
        if f.failed is not None:
            raise f.failed
        if not f.started:
            f.started = True
            try:
                await f.streamer.start()
            except Exception as exc:   # e.g. a refused key: as fatal as a failure later on
                log.error("hub: the %s upstream could not start: %s", f.name, exc)
                self._fail_feed(f, exc)
                if self._nats is not None:
                    await self._nats.flush_queue()
                raise

    async def _subscribe(self, c: _Consumer, etype: str, symbols: list[str],
                         from_time: int | None = None, frames: bool = False) -> None:
        assert c.feed is not None
        f = self._feeds[c.feed]
        async with f.lock:
            await self._ensure_started(f)
            if frames and not c.frames:
                f.streamer.capture_frames(True)
                c.frames = True
                f.frame_consumers.add(c.cid)
            new = []
            for s in symbols:
                holders = f.refs.setdefault((etype, s), set())
                if not holders:
                    new.append(s)
                holders.add(c.cid)
                c.subs.add((etype, s))
            if etype not in f.cursors:
                # the cursor exists before the upstream subscription: nothing is missed
                ring = f.streamer._ring(etype)
                f.cursors[etype] = (int(ring.rtype), ring.consumer())
                f.streamer.on_data = lambda: self._on_data(f)
            if from_time is not None:   # history asked for: upstream again, with its time
                await f.streamer.subscribe_from(etype, symbols, from_time)
            elif new:
                await f.streamer.subscribe(etype, new)

    def _on_data(self, f: _Feed) -> None:
        """The upstream's socket-read callback filled its rings (or it stopped): publish every
        waiting batch of every subscribed type, wake the consumers once, start the NATS flush."""
        published = False
        for text in f.streamer.take_frames():   # for consumers that asked for frames
            raw = text.encode("utf-8", "surrogateescape")
            self._emit(f, (MAGIC, VERSION, KIND_RAW, f.code, 0, 0, 0, self.publisher_id,
                           f.seq, 0, f.hub_gaps, time.time_ns(), layout_hash(), 0),
                       raw, len(raw), "raw")
            f.seq += 1
            published = True
        for frame in f.streamer.take_statuses():   # before this read's records
            self._emit(f, (MAGIC, VERSION, KIND_STATUS, f.code, 0, 0, 0, self.publisher_id,
                           f.seq, 0, f.hub_gaps, time.time_ns(), layout_hash(), 0),
                       frame, len(frame), "status")
            f.seq += 1
            published = True
        for etype, (rtype, cursor) in f.cursors.items():
            while True:
                batch = cursor.drain()
                if not batch:
                    break
                try:
                    self._publish_batch(f, rtype, etype, batch)
                    published = True
                except Exception as exc:  # noqa: BLE001 - e.g. shm exhausted: count, go on
                    f.hub_gaps += len(batch)
                    f.publish_errors += 1
                    if f.publish_errors == 1 or f.publish_errors % 1000 == 0:
                        log.error("hub: %s %s batch not published (%d so far): %s",
                                  f.name, etype, f.publish_errors, exc)
                f.streamer._note_batch(batch)   # gaps counted; a paused socket resumed
        if published:
            self._wake()
        st = f.streamer
        err = st.error or next(iter(st._type_errors.values()), None)
        if err is not None and not self._closed:   # the upstream failed for good
            log.error("hub: the %s upstream failed: %s", f.name, err)
            self._fail_feed(f, err)
        self._flush_nats()

    def _flush_nats(self) -> None:
        """Publish what is queued for NATS: written to its socket now when the sink can
        (``NatsSink.write_now``), else in a flush task (one at a time: the queue keeps the
        order)."""
        if self._nats is not None and self._nats.pending and (
                self._flusher is None or self._flusher.done()) and not self._nats.write_now():
            self._flusher = asyncio.get_running_loop().create_task(self._nats.flush_queue())

    def _fail_feed(self, f: _Feed, exc: BaseException) -> None:
        """Tell the feed's consumers (their iterators raise it), then stop the hub: a
        supervisor restarting it is better than a hub that serves nothing."""
        if f.failed is not None:
            return
        f.failed = exc
        text = f"{type(exc).__name__}: {exc}".encode()
        self._emit(f, (MAGIC, VERSION, KIND_ERROR, f.code, 0, 0, 0, self.publisher_id, f.seq, 0,
                       f.hub_gaps, time.time_ns(), layout_hash(), 0), text, len(text), "err")
        f.seq += 1
        self._wake()
        # the control socket too: the hub exits next, and shared-memory samples a consumer had
        # not read yet may go with it -- the socket delivers what was written before its end
        frame = encode({"op": "error", "feed": f.name, "error": text.decode()})
        for c in self._consumers.values():
            if c.feed == f.name and c.writer is not None and not c.writer.is_closing():
                c.writer.write(frame)
        self._upstream_failed(exc)

    def _upstream_failed(self, exc: BaseException) -> None:
        self.error = exc
        self.done.set()

    async def _unsubscribe(self, c: _Consumer, etype: str, symbols: Iterable[str]) -> None:
        if c.feed is None:
            return
        if c.feed == "account":
            keys = [(etype, s) for s in symbols]
            c.subs.difference_update(keys)
            await self._account.unsubscribe(c.cid, keys)
            return
        f = self._feeds[c.feed]
        async with f.lock:
            gone = []
            for s in symbols:
                key = (etype, s)
                c.subs.discard(key)
                holders = f.refs.get(key)
                if holders is None:
                    continue
                holders.discard(c.cid)
                if not holders:
                    del f.refs[key]
                    gone.append(s)
            if gone and f.started and not self._closed:
                await f.streamer.unsubscribe(etype, gone)

    async def _drop(self, c: _Consumer) -> None:
        f = self._feeds.get(c.feed) if c.feed else None
        if f is not None and c.cid in f.frame_consumers:
            f.frame_consumers.discard(c.cid)
            if not f.frame_consumers:
                f.streamer.capture_frames(False)
        by_type: dict[str, list[str]] = {}
        for etype, s in list(c.subs):
            by_type.setdefault(etype, []).append(s)
        for etype, syms in by_type.items():
            try:
                await self._unsubscribe(c, etype, syms)
            except Exception:
                log.exception("hub: unsubscribe after a consumer left failed")

    # ------------------------------------------------------------------ control connections

    def _info(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Where a feed's stream is and its QoS (the consumer opens its subscriber with it
        before asking for the snapshot, so nothing after the snapshot is missed)."""
        feed = msg.get("feed")
        if feed == "account" and self._account is not None:
            return {"op": "info", "ok": True, "nats": _public_url(str(self._nats_url)),
                    "stream": self._account.stream}
        if feed not in self._feeds:
            return {"op": "info", "ok": False,
                    "error": f"this hub has no feed {feed!r} (it has {self._feed_names()})"}
        f = self._feeds[feed]
        return {"op": "info", "ok": True, "service": service_name(self.name, feed),
                "qos": f.pub.settings.as_dict(), "layout_hash": layout_hash()}

    def _hello(self, c: _Consumer, msg: dict[str, Any]) -> dict[str, Any]:
        """The snapshot: publisher id, stream position, every symbol published so far."""
        feed = msg.get("feed")
        if feed == "account" and self._account is not None:
            c.feed = feed
            return {"op": "hello", "ok": True, "publisher": self.publisher_id}
        if feed not in self._feeds:
            return {"op": "hello", "ok": False, "error": f"this hub has no feed {feed!r}"}
        c.feed = feed
        f = self._feeds[feed]
        if f.symbols is not None:
            self._publish_symbols(f)   # everything interned so far is in the snapshot below
        syms = f.symbols
        snapshot = [[i, syms[i]] for i in range(1, f.sent_symbols + 1)] if syms is not None else []
        return {"op": "hello", "ok": True, "publisher": self.publisher_id, "seq": f.seq,
                "rec": {str(k): v for k, v in f.rec_seq.items()}, "symbols": snapshot}

    def _feed_names(self) -> list[str]:
        return sorted(self._feeds) + (["account"] if self._account is not None else [])

    def _new_consumer(self, writer: asyncio.StreamWriter | None) -> _Consumer:
        c = _Consumer(self._next_cid, writer)
        self._next_cid += 1
        self._consumers[c.cid] = c
        return c

    async def _remove_consumer(self, c: _Consumer) -> None:
        if self._consumers.pop(c.cid, None) is not None:
            await self._drop(c)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        c = self._new_consumer(writer)
        frames = FrameReader()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                _, msgs = frames.feed(data)
                for msg in msgs:
                    if msg.get("op") == "park":
                        self._park(c, msg)
                        continue
                    reply = await self._handle(c, msg)
                    if not writer.is_closing():
                        writer.write(encode(reply))
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception("hub: consumer %d sent something unusable; dropped", c.cid)
        finally:
            await self._remove_consumer(c)
            writer.close()

    def _park(self, c: _Consumer, msg: dict[str, Any]) -> None:
        """A consumer parks after having seen message ``seq``: woken at once if a later one
        exists, else by the next message (``_wake``). No reply."""
        c.parks = True
        f = self._feeds.get(c.feed) if c.feed else None
        if f is not None and f.seq - 1 > int(msg.get("seq", 0)) and c.writer is not None:
            c.parked = False
            if not c.writer.is_closing():
                c.writer.write(WAKE)
        else:
            c.parked = True

    async def _handle(self, c: _Consumer, msg: dict[str, Any]) -> dict[str, Any]:
        """A consumer's request -> the reply (whatever the transport)."""
        op = msg.get("op")
        if op in ("info", "hello"):
            out = self._info(msg) if op == "info" else self._hello(c, msg)
            out["id"] = msg.get("id")
            return out
        if op == "stats":   # the hub's counters (for operators and tests); no credentials
            return {"id": msg.get("id"), "ok": True, "stats": self.stats}
        reply: dict[str, Any] = {"id": msg.get("id"), "ok": True}
        try:
            etype = str(msg["type"])
            symbols = [str(s) for s in msg.get("symbols", [])]
            if c.feed is None:
                raise ValueError("hello first")
            if c.feed == "account":
                if self._account is None:
                    raise ValueError(f"this hub has no account feed (it has {self._feed_names()})")
                if op == "subscribe":
                    c.subs.update(await self._account.subscribe(c.cid, etype, symbols,
                                                                msg.get("value")))
                elif op == "unsubscribe":
                    await self._unsubscribe(c, etype, symbols)
                else:
                    raise ValueError(f"unknown op {op!r}")
            elif op == "subscribe":
                from_time = msg.get("from_time")
                await self._subscribe(c, etype, symbols,
                                      None if from_time is None else int(from_time),
                                      bool(msg.get("frames")))
            elif op == "unsubscribe":
                await self._unsubscribe(c, etype, symbols)
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # noqa: BLE001 - any failure is the consumer's answer
            reply = {"id": msg.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return reply


def _spill_part(view: memoryview, start: int, total: int, rsize: int, limit: int, spill: bytes,
                base: int) -> tuple[int, bytes]:
    """The records ``start..end`` of a batch with spill that one message of at most ``limit``
    bytes carries (at least one), and its spill section: only the spill bytes those records
    use (``_wire.pack_spill`` of that range; ``b""`` when none of them spilled)."""
    lo = hi = -1
    end = start
    while end < total:
        a, b = spill_ref(view, end, rsize, base)
        nlo, nhi = lo, hi
        if b:
            nlo = a if lo < 0 else min(lo, a)
            nhi = max(hi, b)
        size = ENVELOPE_SIZE + (end + 1 - start) * rsize + (nhi - nlo + 4 if nhi >= 0 else 0)
        if end > start and size > limit:
            break
        lo, hi = nlo, nhi
        end += 1
    if hi < 0:
        return end, b""
    return end, pack_spill(spill[lo:hi], (base + lo) & 0xFFFFFFFF)


def _public_url(url: str) -> str:
    """``url`` without user information (the hub's NATS credentials stay in the hub)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"


