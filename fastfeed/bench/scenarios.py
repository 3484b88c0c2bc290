"""The fastfeed measurements, and the catalogue of scenarios and clients.

A *scenario* is one frame kind of one feed (``dxlink-quote100``, ``polygon-stocks1`` …) or a
latency run; a *client* is one way of consuming it (``ff-batches``, ``tastytrade-streamer`` …).
Every (scenario, client) pair is measured in its own worker process, see
:mod:`fastfeed.bench._runner`. A fastfeed client whose public name does not exist (not built, not
landed yet) raises :class:`~fastfeed.bench.peers.Unavailable`, and the table says "not available"
instead of a number.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastfeed.bench import peers
from fastfeed.bench.payloads import DX_CHANNELS, POLYGON_KINDS, dxlink_feed_config
from fastfeed.bench.peers import EventClock, Sample, Unavailable

__all__ = ["CLIENTS", "SCENARIOS", "Client", "Scenario", "clients_for"]


@dataclass(frozen=True)
class Scenario:
    name: str
    feed: str  # "dxlink" | "polygon"
    kind: str  # payloads kind, or "latency"
    description: str
    latency: bool = False
    decode_only: bool = False  # only the in-process decode clients (no simulator)
    clients: tuple[str, ...] = ()  # exactly these clients (empty: chosen by feed and mode)
    #: shown under the scenario's rows (what its clients measure beyond events/s)
    notes: str = ""
    #: distinct frames the simulator sends in turn (DXLink)
    distinct: int = 64


@dataclass(frozen=True)
class Client:
    name: str
    mode: str  # "decode" (in-process, no socket) | "e2e" (over the simulator)
    label: str
    feeds: tuple[str, ...]
    is_fastfeed: bool
    latency: bool = False  # also runs in latency scenarios
    latency_only: bool = False  # runs only in latency scenarios
    only: tuple[str, ...] = ()  # runs only in these scenarios (empty: every one of its feeds)
    vs_batches: bool = True  # an e2e fastfeed row: its ratio to ff-batches is shown


SCENARIOS: dict[str, Scenario] = {
    "dxlink-quote100": Scenario("dxlink-quote100", "dxlink", "quote100",
                                "DXLink COMPACT, 100 Quotes per frame"),
    "dxlink-quote1": Scenario("dxlink-quote1", "dxlink", "quote1",
                              "DXLink COMPACT, 1 Quote per frame"),
    "dxlink-greeks100": Scenario("dxlink-greeks100", "dxlink", "greeks100",
                                 "DXLink COMPACT, 100 Greeks per frame"),
    "dxlink-mixed": Scenario("dxlink-mixed", "dxlink", "mixed",
                             "DXLink COMPACT, Quote/Trade/Greeks frames (100 each) in turn"),
    "dxlink-tns100": Scenario("dxlink-tns100", "dxlink", "tns100",
                              "DXLink COMPACT, 100 TimeAndSale per frame (decoders only)",
                              decode_only=True),
    "polygon-stocks100": Scenario("polygon-stocks100", "polygon", "stocks100",
                                  "polygon stocks, 100 T/Q events per frame"),
    "polygon-stocks1": Scenario("polygon-stocks1", "polygon", "stocks1",
                                "polygon stocks, 1 event per frame"),
    "polygon-cryptol2": Scenario("polygon-cryptol2", "polygon", "cryptol2",
                                 "polygon crypto XL2 books, 10 per frame, 25 levels a side"),
    "latency": Scenario("latency", "polygon", "latency",
                        "paced 1-quote polygon frames stamped with the send time", latency=True),
    "latency-dxlink": Scenario("latency-dxlink", "dxlink", "latency",
                               "paced 1-Quote DXLink COMPACT frames, eventTime = the send time",
                               latency=True),
    "record-dxlink": Scenario(
        "record-dxlink", "dxlink", "quote100",
        "DXLink COMPACT, 100 Quotes per frame: listen_batches while recording (issue 16)",
        clients=("ff-batches", "ff-record-raw", "ff-record-columns", "ff-replay-columns"),
        notes="the frames of dxlink-quote100, 1024 distinct ones in turn (7.9 MB: no frame "
              "repeats within zstd's reach, as on a real feed; 64 would compress 30x and cost "
              "zstd a fifth of the CPU); recording starts before the connection (the writer "
              "process is ready first) and is closed after the run (Parquet compaction: not "
              "in the rate)",
        distinct=1024),
    "reconnect-dxlink": Scenario(
        "reconnect-dxlink", "dxlink", "reconnect",
        "server-side TCP drops: time to the first event after resubscription", latency=True,
        clients=("ff-listen", "tastytrade-streamer")),
}

CLIENTS: dict[str, Client] = {c.name: c for c in (
    Client("ff-decoder", "decode", "fastfeed decoder alone (feed + drain)",
           ("dxlink", "polygon"), True),
    Client("ff-batches", "e2e", "fastfeed batches (listen_batches / batch handler)",
           ("dxlink", "polygon"), True, latency=True),
    Client("ff-listen", "e2e", "fastfeed listen() objects", ("dxlink",), True, latency=True),
    Client("ff-get-event", "e2e", "fastfeed get_event() objects", ("dxlink",), True,
           only=("dxlink-quote100", "dxlink-quote1", "dxlink-greeks100")),
    Client("ff-listen-sdk", "e2e",
           "fastfeed listen() with tastytrade's classes (SDK-faithful, lazy Decimal)",
           ("dxlink",), True, only=("dxlink-quote100", "dxlink-quote1", "dxlink-greeks100",
                                    "dxlink-mixed")),
    Client("ff-listen-busypoll", "e2e", "fastfeed listen() objects, busy_poll=True",
           ("dxlink",), True, latency=True, latency_only=True),
    Client("ff-listen-nospin", "e2e", "fastfeed listen() objects, idle_spin_us=0 (no spin)",
           ("dxlink",), True, latency=True, latency_only=True),
    Client("ff-dicts", "e2e", "fastfeed AsyncStreamClient dict handler", ("polygon",), True,
           latency=True),
    Client("ff-record-raw", "e2e", "fastfeed listen_batches while recording raw (zstd frames)",
           ("dxlink",), True, only=("record-dxlink",)),
    Client("ff-record-columns", "e2e",
           "fastfeed listen_batches while recording columns (Arrow IPC)", ("dxlink",), True,
           only=("record-dxlink",)),
    Client("ff-replay-columns", "e2e",
           "fastfeed replay of the recorded columns (Parquet) into listen_batches", ("dxlink",),
           True, only=("record-dxlink",), vs_batches=False),
    Client("tastytrade-decode", "decode", "tastytrade decode path (json + _map_message)",
           ("dxlink",), False),
    Client("tastytrade-streamer", "e2e", "tastytrade DXLinkStreamer.listen()", ("dxlink",),
           False, latency=True),
    Client("polygon-pkg", "decode", "polygon pkg handle_messages (fake WS, sync handler)",
           ("polygon",), False),
    Client("massive", "e2e", "Massive WebSocketClient (stdlib json)", ("polygon",), False),
    Client("orjson-parse", "decode", "orjson.loads + read every field", ("dxlink", "polygon"),
           False),
    Client("websockets-orjson", "e2e", "websockets + orjson, every field read",
           ("dxlink", "polygon"), False, latency=True),
    Client("msgspec-typed", "decode",
           "msgspec into typed Structs (polygon: tagged on ev; DXLink: array_like rows)",
           ("dxlink", "polygon"), False,
           only=("dxlink-quote100", "dxlink-tns100", "polygon-stocks100", "polygon-stocks1",
                 "polygon-cryptol2")),
)}


def clients_for(scenario: Scenario) -> list[Client]:
    if scenario.clients:
        return [CLIENTS[c] for c in scenario.clients]
    if scenario.latency:
        return [c for c in CLIENTS.values() if c.latency and scenario.feed in c.feeds]
    return [c for c in CLIENTS.values() if scenario.feed in c.feeds and not c.latency_only
            and (not c.only or scenario.name in c.only)
            and (c.mode == "decode" or not scenario.decode_only)]


# --------------------------------------------------------------------------------------------
# fastfeed: decoders alone


def _import(module: str, *names: str) -> list[Any]:
    try:
        mod = __import__(module, fromlist=list(names) or ["_"])
    except ImportError as exc:
        hint = ""
        if "fastfeed._native" in str(exc):
            import fastfeed

            hint = (f"; the fastfeed imported from {Path(fastfeed.__file__).parent} has no compiled "
                    "modules: a source checkout shadows the installed package -- use "
                    "`pip install -e .` there, or run from another directory")
        raise Unavailable(f"{module} not importable ({exc}{hint})") from exc
    out = []
    for n in names:
        if not hasattr(mod, n):
            raise Unavailable(f"{module}.{n} does not exist yet")
        out.append(getattr(mod, n))
    return out


def ff_decode_pass(feed: Callable[[bytes], Any], drain: Callable[[str], Any],
                   drains: Sequence[str], chunks: Sequence[Sequence[bytes]]) -> int:
    """One pass of fastfeed's decode rows: ``feed`` each frame of a chunk (a call per frame, as
    msgspec's rows make one decode call per frame), iterated in C (``map`` consumed by a
    zero-length ``deque``: no bytecode per frame; every peer gets its cheapest loop, and for
    msgspec that is its plain ``for`` loop, see ``msgspec_peer.decode_pass``), then ``drain``
    each type of ``drains``; returns the events drained (every event delivered, counted)."""
    consume = _consume
    n = 0
    for chunk in chunks:
        consume(map(feed, chunk))
        for t in drains:
            n += len(drain(t))
    return n


def ff_decode_chunks(frames: Sequence[bytes], events_per_pass: int) -> list[list[bytes]]:
    """The frames grouped by drain: a drain after every frame for big frames (>= 10 events
    each), every 32 frames for small ones."""
    every = 1 if events_per_pass // max(1, len(frames)) >= 10 else 32
    return [list(frames[i:i + every]) for i in range(0, len(frames), every)]


_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend


def measure_ff_decoder(feed: str, kind: str, frames: list[bytes], event_types: list[str],
                       events_per_pass: int, duration: float) -> Sample:
    if feed == "dxlink":
        (cls,) = _import("fastfeed", "DXLinkDecoder")
        dec = cls()
        for t in sorted(set(event_types)):
            dec.feed(dxlink_feed_config(t, DX_CHANNELS[t]))
        drains = sorted(set(event_types))
    else:
        (cls,) = _import("fastfeed", "PolygonDecoder")
        cluster = POLYGON_KINDS[kind][0]
        dec = cls(cluster=cluster)
        drains = ["XL2"] if cluster == "crypto" else ["T", "Q"]
    feed_ = dec.feed
    drain = dec.drain
    chunks = ff_decode_chunks(frames, events_per_pass)

    def one_pass() -> int:
        return ff_decode_pass(feed_, drain, drains, chunks)

    return peers.DecodeLoop(frames, events_per_pass, sum(map(len, frames))).run(one_pass,
                                                                               duration)


# --------------------------------------------------------------------------------------------
# fastfeed: end to end over the simulator


def _dx_classes(kind: str) -> list[Any]:
    names = peers.dx_kind(kind)[0]
    return _import("fastfeed.dxfeed", *names)


async def ff_dxlink_client(url: str, kind: str, duration: float, objects: bool,
                           frames: int | None = None, busy_poll: bool = False,
                           sdk: bool = False, idle_spin_us: float | None = None,
                           get_event: bool = False, record: str = "",
                           record_path: str = "") -> Sample:
    """``sdk=True``: listen() with tastytrade's own classes (SDK-faithful events);
    ``idle_spin_us``: the streamer's idle strategy (``None``: its default); ``get_event=True``
    (with ``objects``): ``await get_event(cls)`` in a loop instead of ``listen()``;
    ``record="raw"`` / ``"columns"``: the streamer records that layer (into ``record_path``,
    or a temporary directory removed after the run) -- see :class:`_Recording`."""
    (Streamer,) = _import("fastfeed.tastytrade", "DXLinkStreamer")
    classes = _import("tastytrade.dxfeed", *peers.dx_kind(kind)[0]) if sdk else _dx_classes(kind)
    if not objects and not hasattr(Streamer, "listen_batches"):
        raise Unavailable("fastfeed.tastytrade.DXLinkStreamer.listen_batches does not exist yet")
    per = peers.dx_kind(kind)[1]
    latency = kind == "latency"
    clock = EventClock(duration, frames * per if frames else None)
    lat = clock.latencies
    if latency and not objects:
        try:  # import before the stream starts: a first import inside the loop would
            import numpy  # noqa: F401  # delay the first events by the import time
        except ImportError:
            pass
    # back-pressure: a consumer slower than the flat-out server pauses the socket instead of
    # losing events, so the rate measured is what the consumer really takes in
    cm = Streamer(peers.FakeTastytradeSession(peers.budget_url(url, frames)),
                  overflow="backpressure", busy_poll=busy_poll, idle_spin_us=idle_spin_us)
    rec = _Recording(cm, record, record_path) if record else None
    streamer = await cm.__aenter__()

    async def consume_batches(cls: Any) -> None:
        async for batch in streamer.listen_batches(cls):
            if clock.add(len(batch), 1, int(getattr(batch, "gaps", 0) or 0)):
                return

    async def latency_batches(cls: Any) -> None:
        async for batch in streamer.listen_batches(cls):
            now = time.monotonic_ns()
            lat.extend(now - int(t) for t in _dx_batch_stamps(batch))
            if clock.add(len(batch), 1, int(getattr(batch, "gaps", 0) or 0)):
                return

    async def latency_objects(cls: Any) -> None:
        async for ev in streamer.listen(cls):
            lat.append(time.monotonic_ns() - ev.event_time)
            if clock.add(1, 0):
                return

    lost_seen = [0, 0]

    def lost_now() -> int:
        """Events lost (drop-oldest) since the last look, looked at every 64th call (every
        4096 events): ``stats`` builds a dict of every counter (~4 us), which read every 64
        events cost the per-event clients ~60 ns an event that the batch clients (reading
        ``batch.gaps``) do not pay."""
        lost_seen[1] += 1
        if lost_seen[1] & 63:
            return 0
        try:
            total = int(streamer.stats["gaps"])
        except Exception:  # noqa: BLE001 - the bench reports, never crashes
            return 0
        new = total - lost_seen[0]
        lost_seen[0] = total
        return new

    async def consume_objects(cls: Any) -> None:
        n = 0
        first = True
        async for _ in streamer.listen(cls):
            if first:
                first = False
                if clock.add(1, 0):
                    return
                continue
            n += 1
            if n == 64:
                n = 0
                if clock.add(64, 0, lost_now()):
                    return

    async def consume_get_event(cls: Any) -> None:
        get = streamer.get_event
        await get(cls)
        if clock.add(1, 0):
            return
        while True:
            for _ in range(64):
                await get(cls)
            if clock.add(64, 0, lost_now()):
                return

    consume: Callable[[Any], Any]
    if latency:
        consume = latency_objects if objects else latency_batches
    elif get_event:
        consume = consume_get_event
    else:
        consume = consume_objects if objects else consume_batches
    tasks = [asyncio.ensure_future(consume(c)) for c in classes]
    for c in classes:
        await streamer.subscribe(c, ["*"])
    waiter = asyncio.ensure_future(clock.wait(peers.run_cap(duration)))
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc,unused-ignore]
    if not waiter.done():
        await waiter
    for t in tasks:
        t.cancel()
    note = ""
    stats = getattr(streamer, "stats", None)
    if stats is not None:
        try:
            note = f"stats={stats() if callable(stats) else stats}"[:300]
        except Exception:  # noqa: BLE001 - the bench reports, never crashes
            note = ""
    sample = clock.sample(note)
    if rec is not None:
        sample.info = await rec.finish(clock.delivered)
        sample.not_recorded = rec.not_recorded
    return sample  # no orderly exit: the worker process ends right after


class _Recording:
    """``streamer.record()`` of one layer for the recording rows: started (and its writer
    process ready) before the connection; after the run, the writer's CPU per event during
    it, then closed (the Parquet compaction) and measured: bytes per million events."""

    def __init__(self, streamer: Any, layer: str, path: str = "") -> None:
        import tempfile

        self.own = not path
        self.path = path or tempfile.mkdtemp(prefix="ff-bench-record-")
        self.layer = layer
        self.rec = streamer.record(self.path, raw=layer == "raw", columns=layer == "columns")
        self.not_recorded = 0
        if not self.rec.sync(60.0):
            raise RuntimeError("the recorder's writer process did not start")
        self.cpu0 = int(self.rec.stats["writer_cpu_ns"])

    async def finish(self, events: int) -> str:
        rec = self.rec
        rec.sync(60.0)
        live = int(rec.stats["writer_cpu_ns"]) - self.cpu0
        await rec.aclose()
        return self._summary(events, live)

    def _summary(self, events: int, live: int) -> str:
        import glob
        import os
        import shutil

        st = self.rec.stats
        closing = int(st["writer_cpu_ns"]) - self.cpu0 - live
        per_m = 1e6 / max(1, events)
        if self.layer == "raw":
            size = sum(os.path.getsize(f)
                       for f in glob.glob(os.path.join(self.path, "raw", "*")))
            msgs = int(st["raw_written"]) + int(st["dropped_messages"])
            per_m = 1e6 / max(1.0, events * int(st["raw_written"]) / max(1, msgs))
            what = (f"raw file {size * per_m / 1e6:.1f} MB per million Quotes (wire "
                    f"{st.get('raw_bytes', 0) * per_m / 1e6:.0f} MB)")
            done = f"{st['raw_written']}/{st['raw_messages']} messages written"
        else:
            size = sum(os.path.getsize(f) for f in glob.glob(
                os.path.join(self.path, "columns", "*", "*.parquet")))
            per_m = 1e6 / max(1, int(st["records_written"]))
            what = (f"Parquet {size * per_m / 1e6:.1f} MB per million Quotes (compaction after "
                    f"the run: {closing / max(1, events):.0f} ns/event more)")
            done = f"{st['records_written']}/{st['records']} records written"
        lost = self.not_recorded = st["dropped_messages"] + st["dropped_records"]
        if self.own:
            shutil.rmtree(self.path, ignore_errors=True)
        return (f"writer process {live / max(1, events):.0f} ns/event; {what}; {done}, "
                f"{lost} not recorded")


async def ff_replay_columns(url: str, kind: str, duration: float, frames: int) -> Sample:
    """Record the columns of ``frames`` frames, then time ``fastfeed.replay.open(path,
    source="columns").listen_batches`` over them (the first batch starts the clock)."""
    import shutil
    import tempfile

    (replay,) = _import("fastfeed", "replay")
    (cls,) = _dx_classes(kind)
    (pq,) = _import("pyarrow", "parquet")  # imported before the clock: the replay is timed
    (column_segments,) = _import("fastfeed.record._read", "column_segments")
    path = tempfile.mkdtemp(prefix="ff-bench-replay-")
    try:
        await ff_dxlink_client(url, kind, duration, False, frames, record="columns",
                               record_path=path)
        recorded = sum(pq.ParquetFile(seg).metadata.num_rows
                       for seg in column_segments(path, "Quote"))
        clock = EventClock(duration, recorded)
        t_open = time.perf_counter()
        streamer = replay.open(path, source="columns")
        async with streamer:
            async for batch in streamer.listen_batches(cls):
                if clock.add(len(batch)):
                    break
        t_end = time.perf_counter()
        if not clock.done.is_set():     # fewer events than recorded: the sample says so
            clock.c1 = time.process_time()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    sample = clock.sample()
    sample.info = (f"{clock.delivered / (t_end - t_open) / 1e6:.1f} M events/s including "
                   f"opening and reading the files ({clock.delivered} events)")
    return sample


async def ff_dxlink_reconnect(url: str, drops: int, stable: float, give_up: float) -> Sample:
    """fastfeed's ``DXLinkStreamer.listen(Quote)`` through ``drops`` server-side drops: each
    recovery is timed from the drop to the first event of the new connection (its own
    reconnect and subscription replay). The streamer's ``stability_window``, where it has one,
    is set below the server's drop period, so every drop follows a stable connection."""
    (Streamer,) = _import("fastfeed.tastytrade", "DXLinkStreamer")
    (Quote,) = _import("fastfeed.dxfeed", "Quote")
    clock = peers.RecoveryClock(drops, give_up)
    cm = Streamer(peers.FakeTastytradeSession(url))
    if hasattr(cm, "stability_window"):
        cm.stability_window = stable / 2
    streamer = await cm.__aenter__()

    async def consume() -> None:
        async for ev in streamer.listen(Quote):
            if clock.seen(ev.event_time):
                return

    task = asyncio.ensure_future(consume())
    await streamer.subscribe(Quote, ["*"])
    waiter = asyncio.ensure_future(clock.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    note = await waiter
    task.cancel()
    stats = getattr(streamer, "stats", None)
    try:
        reconnects = stats["reconnects"] if stats is not None else "?"
    except (KeyError, TypeError):
        reconnects = "?"
    return clock.sample(f"{note} reconnects={reconnects}".strip())


def _dx_batch_stamps(batch: Any) -> Any:
    """The wire ``eventTime`` of every event of a DXLink EventBatch (``event_time``)."""
    try:
        return batch.to_numpy()["event_time"].tolist()
    except Exception:  # noqa: BLE001 - numpy missing or another layout: go through objects
        return [ev.event_time for ev in batch]


def _batch_stamps(batch: Any) -> Any:
    """The wire ``t`` of every event of a polygon EventBatch (attribute ``timestamp``)."""
    try:
        return batch.to_numpy()["timestamp"].tolist()
    except Exception:  # noqa: BLE001 - numpy missing or another layout: go through objects
        return [ev.timestamp for ev in batch]


async def ff_polygon_client(url: str, kind: str, duration: float, dicts: bool,
                            frames: int | None = None) -> Sample:
    (Client_,) = _import("fastfeed.polygon", "AsyncStreamClient")
    latency = kind == "latency"
    cluster, _params = peers.polygon_subscriptions(kind)
    per = POLYGON_KINDS[kind][1] if kind in POLYGON_KINDS else 1
    client = Client_("bench", cluster, host=peers.budget_url(url, frames), overflow="backpressure")
    clock = EventClock(duration, frames * per if frames else None)
    count = [0]
    lat = clock.latencies

    if dicts:
        if latency:
            def handler(msg: dict[str, Any]) -> None:
                lat.append(time.monotonic_ns() - msg["t"])
                count[0] += 1
        else:
            def handler(msg: dict[str, Any]) -> None:
                count[0] += 1
        if cluster == "crypto":
            await client.subscribe_crypto_level2_book(None, handler)
        else:
            # both handlers before the first subscribe: the bench server sends mixed T/Q
            # frames as soon as one channel is subscribed
            await client.change_handler("Q", handler)
            await client.subscribe_stock_trades(None, handler)
            await client.subscribe_stock_quotes(None, handler)
    else:
        if latency:
            try:  # import before the stream starts: a first import inside the handler would
                import numpy  # noqa: F401  # delay the first events by the import time
            except ImportError:
                pass

        def on_batch(batch: Any) -> None:
            count[0] += len(batch)
            if latency:
                now = time.monotonic_ns()
                lat.extend(now - int(t) for t in _batch_stamps(batch))

        try:
            if cluster == "crypto":
                await client.subscribe_crypto_level2_book(None, on_batch, deliver="batch")
            else:
                await client.change_handler("Q", on_batch, deliver="batch")
                await client.subscribe_stock_trades(None, on_batch, deliver="batch")
                await client.subscribe_stock_quotes(None, on_batch, deliver="batch")
        except TypeError as exc:
            raise Unavailable("fastfeed.polygon.AsyncStreamClient has no batch handler mode "
                              f"(deliver='batch'): {exc}") from exc

    async def run() -> None:
        seen = 0
        while True:
            await client.handle_messages()
            if count[0] != seen:
                new = count[0] - seen
                seen = count[0]
                if clock.add(new):
                    return

    task = asyncio.ensure_future(run())
    waiter = asyncio.ensure_future(clock.wait(peers.run_cap(duration)))
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    if not waiter.done():
        await waiter
    task.cancel()
    return clock.sample()  # no orderly exit: the worker process ends right after
