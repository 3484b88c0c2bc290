"""Peer and baseline measurements: what fastfeed is compared against.

Each ``measure_*`` function runs inside a worker process started by :mod:`fastfeed.bench._runner`
(never in the simulator's process) and returns a :class:`Sample`. Decode paths loop over the
same deterministic frames (:mod:`fastfeed.bench.payloads`) for ``duration`` seconds; end-to-end
clients connect to the simulator at ``url``, subscribe, count events from the first data event on
for ``duration`` seconds, then disconnect. Client CPU is ``time.process_time()`` over the same
window.

Peers measured:

* tastytrade 13.2.3 decode path (L2 of perf-ceilings/tastytrade-api §9): ``json.loads`` of the
  text frame, the reader's ``logger.debug``, ``DXLinkStreamer._map_message(data, channel)`` and
  draining its queue with ``get_event_nowait``; every event must come out (no drop).
* tastytrade ``DXLinkStreamer`` end to end (fake session, ``ws://`` URL).
* the ``polygon`` package (pssolanki111 1.2.8) receive path: the real
  ``AsyncStreamClient.handle_messages()`` with ``WS`` replaced by an object whose ``recv()``
  returns the frame, a sync no-op handler per event (its ``login()`` cannot connect with
  websockets >= 14, polygon-api.md §1.7 D1).
* Massive 2.9.1 ``WebSocketClient`` end to end (default stdlib json), an async processor counting
  model objects.
* baselines: ``orjson.loads`` + reading every field of every event, and a ``websockets`` (asyncio,
  uvloop) + ``orjson`` client doing the same per frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from fastfeed.bench.payloads import DX_CHANNELS, DX_FIELDS, DXLINK_KINDS, POLYGON_KINDS

__all__ = ["PEERS", "DecodeLoop", "EventClock", "Sample", "Unavailable"]


class Unavailable(Exception):
    """The measured package or fastfeed component is not installed / not built yet."""


@dataclass
class Sample:
    events: int
    frames: int
    wall_s: float
    cpu_s: float
    bytes: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    note: str = ""
    lost: int = 0  # events the client reported lost (drop-oldest ring gaps)
    info: str = ""  # other figures of the run, shown under the scenario's rows
    not_recorded: int = 0  # a recording row: messages / records its recorder counted lost

    @property
    def rate(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["events_per_s"] = self.rate
        d["events_per_cpu_s"] = self.events / self.cpu_s if self.cpu_s > 0 else None
        return d


class DecodeLoop:
    """Time a per-frame function over ``frames`` for at least ``duration`` seconds."""

    def __init__(self, frames: list[Any], events_per_pass: int, nbytes: int) -> None:
        self.frames = frames
        self.events_per_pass = events_per_pass
        self.nbytes = nbytes

    def run(self, one_pass: Callable[[], int], duration: float) -> Sample:
        got = one_pass()  # warm-up and check
        if got != self.events_per_pass:
            raise AssertionError(f"expected {self.events_per_pass} events per pass, got {got}")
        passes = 0
        events = 0
        c0 = time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + duration
        while True:
            events += one_pass()
            passes += 1
            if time.perf_counter() >= deadline:
                break
        t1 = time.perf_counter()
        c1 = time.process_time()
        if events != passes * self.events_per_pass:
            raise AssertionError("events were dropped")
        return Sample(events, passes * len(self.frames), t1 - t0, c1 - c0,
                      passes * self.nbytes)


class EventClock:
    """Counts delivered events; the first delivery starts the clock and is not counted.

    Throughput runs (``expected`` set): the simulator sends a fixed burst and the run ends at
    the last expected event, so a client that decodes faster than its consumer drains (an
    unbounded queue) is still timed on what its consumer received. Latency runs
    (``expected=None``): the run ends after ``duration`` seconds.
    """

    def __init__(self, duration: float, expected: int | None = None) -> None:
        self.duration = duration
        self.expected = expected
        self.delivered = 0
        self.lost = 0
        self.events = 0
        self.frames = 0
        self.t0 = 0.0
        self.c0 = 0.0
        self.t1 = 0.0
        self.c1 = 0.0
        self.deadline = float("inf")
        self.done = asyncio.Event()
        self.latencies: list[int] = []

    def add(self, n: int, frames: int = 1, lost: int = 0) -> bool:
        """Count ``n`` delivered events (and ``lost`` ones the client reports dropped);
        return True once the run is over. Lost events end the run like delivered ones but
        are not counted in the rate."""
        if self.done.is_set():
            return True
        now = time.perf_counter()
        self.delivered += n + lost
        self.lost += lost
        if self.t0 == 0.0:
            self.t0 = self.t1 = now
            self.c0 = self.c1 = time.process_time()
            self.deadline = self.t0 + self.duration
        else:
            self.events += n + lost
            self.frames += frames
            self.t1 = now
        if (self.expected is not None and self.delivered >= self.expected) or (
                self.expected is None and now >= self.deadline):
            self.c1 = time.process_time()
            self.done.set()
            return True
        return False

    async def wait(self, cap: float) -> None:
        """Wait for the end of the run, at most ``cap`` seconds (then the run is partial)."""
        try:
            await asyncio.wait_for(self.done.wait(), cap)
        except TimeoutError:
            self.c1 = time.process_time()

    def sample(self, note: str = "") -> Sample:
        if self.events == 0 or self.t1 <= self.t0:
            raise TimeoutError(f"only {self.delivered} events arrived")
        if not self.done.is_set():
            note = (note + " " if note else "") + (
                f"partial: {self.delivered} of {self.expected} events within the time cap")
        if self.lost:
            note = (note + " " if note else "") + f"lost {self.lost} events (ring gaps)"
        return Sample(self.events - self.lost, self.frames, self.t1 - self.t0,
                      self.c1 - self.c0, latencies_ns=self.latencies, note=note,
                      lost=self.lost)


class RecoveryClock:
    """Times recoveries from server-side drops (the ``reconnect-dxlink`` scenario).

    The bench simulator writes, into the ``eventTime`` of every Quote it sends, the
    ``time.monotonic_ns()`` of its latest drop of a connection (``CLOCK_MONOTONIC`` is
    system-wide on Linux). So the first event whose stamp differs from the previous events' is
    the first event after the drop and the resubscription: its recovery time is now - stamp.
    The stamp of the first connection is only remembered (it may be an earlier client's drop).
    """

    def __init__(self, drops: int, give_up: float) -> None:
        self.drops = drops
        self.give_up = give_up  # seconds without a recovery after which the run ends
        self.current: int | None = None
        self.recoveries: list[int] = []
        self.events = 0
        self.done = asyncio.Event()
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()
        self.last_change = time.monotonic()

    def seen(self, stamp: int) -> bool:
        """One event with its ``eventTime``; True once ``drops`` recoveries were timed."""
        self.events += 1
        if stamp != self.current:
            if self.current is not None:
                self.recoveries.append(time.monotonic_ns() - stamp)
            self.current = stamp
            self.last_change = time.monotonic()
            if len(self.recoveries) >= self.drops:
                self.done.set()
        return self.done.is_set()

    async def wait(self) -> str:
        """Until every drop was timed, or ``give_up`` seconds pass without a recovery."""
        while not self.done.is_set():
            left = self.last_change + self.give_up - time.monotonic()
            if left <= 0:
                return (f"partial: no event within {self.give_up:.0f} s after drop "
                        f"{len(self.recoveries) + 1}")
            try:
                await asyncio.wait_for(self.done.wait(), left)
            except TimeoutError:
                pass
        return ""

    def sample(self, note: str = "") -> Sample:
        if not self.recoveries:
            raise TimeoutError(f"no recovery timed ({self.events} events, {note or 'no note'})")
        return Sample(len(self.recoveries), self.events, time.perf_counter() - self.t0,
                      time.process_time() - self.c0, latencies_ns=self.recoveries, note=note)


def backoff_settings() -> dict[str, float]:
    """The ``WEBSOCKETS_BACKOFF_*`` values in force (websockets' defaults where unset)."""
    import os

    defaults = {"INITIAL_DELAY": 5.0, "MIN_DELAY": 3.1, "MAX_DELAY": 90.0, "FACTOR": 1.618}
    out = {}
    for k, v in defaults.items():
        raw = os.environ.get(f"WEBSOCKETS_BACKOFF_{k}", "")
        try:
            out[k] = float(raw) if raw.strip() else v
        except ValueError:
            out[k] = v
    return out


async def tastytrade_reconnect_client(url: str, drops: int, give_up: float) -> Sample:
    """tastytrade 13.2.3 after a server-side drop: it has no reconnect (removed in 12.0), so
    this is the loop an application writes: re-enter ``async with DXLinkStreamer(session)`` and
    subscribe again -- at once after a connection that had delivered events (as fastfeed after a
    stable one), after websockets' backoff delays (``WEBSOCKETS_BACKOFF_*``) after a failure."""
    try:
        from tastytrade import DXLinkStreamer
        from tastytrade.dxfeed import Quote
        from websockets.client import backoff
    except ImportError as exc:
        raise Unavailable(f"tastytrade not installed ({exc})") from exc
    clock = RecoveryClock(drops, give_up)
    session = FakeTastytradeSession(url)
    reconnects = 0
    errors: list[str] = []  # what each lost connection raised out of `async with`

    async def run() -> None:
        nonlocal reconnects
        delays = None
        while not clock.done.is_set():
            got = clock.events
            try:
                async with DXLinkStreamer(session) as streamer:  # type: ignore[arg-type]
                    await streamer.subscribe(Quote, ["*"])
                    async for ev in streamer.listen(Quote):
                        if clock.seen(int(ev.event_time)):
                            return
            except Exception as exc:  # noqa: BLE001 - the drop surfaces as an ExceptionGroup
                errors.append(type(exc).__name__)
            reconnects += 1
            if clock.events > got:
                delays = None  # that connection worked: reconnect at once
                continue
            if delays is None:
                delays = backoff()
            await asyncio.sleep(next(delays))

    task = asyncio.ensure_future(run())
    note = await clock.wait()
    task.cancel()
    raised = ",".join(sorted(set(errors)))
    return clock.sample(f"{note} reconnects={reconnects} raised={raised}".strip())


def run_cap(duration: float) -> float:
    return max(3.0 * duration, duration + 5.0)


def budget_url(url: str, frames: int | None) -> str:
    """The simulator URL asking for a burst of ``frames`` data frames (bench simulator only)."""
    base = url.rstrip("/")
    return f"{base}/frames={frames}" if frames else base


def _text(frames: Iterable[bytes]) -> list[str]:
    return [f.decode() for f in frames]


# --------------------------------------------------------------------------------------------
# baselines: orjson + read every field


def _dx_double_positions(event_type: str) -> tuple[int, ...]:
    from fastfeed.bench.payloads import DX_FIELDS as F

    doubles = {"bidPrice", "askPrice", "bidSize", "askSize", "price", "change", "size",
               "dayVolume", "dayTurnover", "volatility", "delta", "gamma", "theta", "rho",
               "vega"}
    return tuple(i for i, f in enumerate(F[event_type]) if f in doubles)


_DX_LAYOUT = {t: (len(DX_FIELDS[t]), _dx_double_positions(t)) for t in DX_FIELDS}
_DX_EVENT_TIME = {t: DX_FIELDS[t].index("eventTime") for t in DX_FIELDS}


def dx_extract(msg: dict[str, Any]) -> int:
    """Read every field of every event of a COMPACT FEED_DATA message ("NaN" -> float)."""
    data = msg["data"]
    n = 0
    for k in range(0, len(data), 2):
        nf, dpos = _DX_LAYOUT[data[k]]
        vals = data[k + 1]
        for i in range(0, len(vals), nf):
            ev = vals[i:i + nf]
            for j in dpos:
                v = ev[j]
                if v.__class__ is str:
                    ev[j] = float(v)
            n += 1
    return n


def pg_extract(events: list[dict[str, Any]]) -> int:
    """Read every field of every polygon event (book levels included)."""
    for e in events:
        ev = e["ev"]
        if ev == "XL2":
            for lvl in e["b"]:
                lvl[0], lvl[1]
            for lvl in e["a"]:
                lvl[0], lvl[1]
            e["pair"], e["t"], e["r"], e["x"]
        else:
            tuple(e.values())
    return len(events)


def measure_orjson_parse(feed: str, frames: list[bytes], events_per_pass: int,
                         duration: float) -> Sample:
    import orjson

    loads = orjson.loads
    if feed == "dxlink":
        def one_pass() -> int:
            return sum(dx_extract(loads(f)) for f in frames)
    else:
        def one_pass() -> int:
            return sum(pg_extract(loads(f)) for f in frames)
    return DecodeLoop(frames, events_per_pass, sum(map(len, frames))).run(one_pass, duration)


# --------------------------------------------------------------------------------------------
# tastytrade


class FakeTastytradeSession:
    """What tastytrade 13.2.3's DXLinkStreamer needs from a Session (tastytrade-api.md §5)."""

    def __init__(self, url: str = "ws://127.0.0.1:1") -> None:
        self.dxlink_url = url
        self.streamer_token = "bench-token"
        self.proxy = None
        self.is_test = False
        self.client_kwargs: dict[str, Any] = {}
        self.session_token = "bench-session"

    async def _get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return {"dxlink-url": self.dxlink_url, "token": self.streamer_token, "level": "api"}

    async def refresh(self, force: bool = False) -> None:
        return None


def measure_tastytrade_decode(frames: list[bytes], events_per_pass: int,
                              duration: float) -> Sample:
    try:
        from tastytrade import logger as tt_logger
        from tastytrade.streamer import MAP_EVENTS, DXLinkStreamer
    except ImportError as exc:
        raise Unavailable(f"tastytrade not installed ({exc})") from exc
    streamer = DXLinkStreamer(FakeTastytradeSession())  # type: ignore[arg-type]
    texts = _text(frames)
    loads = json.loads
    debug = tt_logger.debug
    map_message = streamer._map_message
    nowait = streamer.get_event_nowait
    classes = [MAP_EVENTS[t] for t in DX_FIELDS]

    def one_pass() -> int:
        n = 0
        for text in texts:
            message = loads(text)
            debug("received: %s", message)
            map_message(message["data"], message["channel"])
            for cls in classes:
                while nowait(cls) is not None:
                    n += 1
        return n

    return DecodeLoop(frames, events_per_pass, sum(map(len, frames))).run(one_pass, duration)


async def tastytrade_streamer_client(url: str, kind: str, duration: float,
                                     frames: int | None = None) -> Sample:
    try:
        from tastytrade import DXLinkStreamer
        from tastytrade.streamer import MAP_EVENTS
    except ImportError as exc:
        raise Unavailable(f"tastytrade not installed ({exc})") from exc
    types, per = dx_kind(kind)
    clock = EventClock(duration, frames * per if frames else None)
    session = FakeTastytradeSession(budget_url(url, frames))
    cm = DXLinkStreamer(session)  # type: ignore[arg-type]
    streamer = await cm.__aenter__()
    lat = clock.latencies

    async def count(cls: type) -> None:
        async for _ in streamer.listen(cls):
            if clock.add(1, 0):
                return

    async def count_latency(cls: Any) -> None:
        async for ev in streamer.listen(cls):
            lat.append(time.monotonic_ns() - ev.event_time)
            if clock.add(1, 0):
                return

    consume = count_latency if kind == "latency" else count

    tasks = [asyncio.ensure_future(consume(MAP_EVENTS[t])) for t in types]
    for t in types:
        await streamer.subscribe(MAP_EVENTS[t], ["*"])
    await clock.wait(run_cap(duration))
    for task in tasks:
        task.cancel()
    return clock.sample()  # no orderly exit: the worker process ends right after


# --------------------------------------------------------------------------------------------
# websockets + orjson end-to-end baselines


async def websockets_dxlink_client(url: str, kind: str, duration: float,
                                   frames: int | None = None) -> Sample:
    import orjson
    from websockets.asyncio.client import connect

    types, per = dx_kind(kind)
    clock = EventClock(duration, frames * per if frames else None)
    latency = kind == "latency"
    lat = clock.latencies
    dumps = orjson.dumps
    loads = orjson.loads
    ws = await connect(budget_url(url, frames), max_size=None, compression=None,
                       ping_interval=None)

    async def run() -> None:
        await ws.send(dumps({"type": "SETUP", "channel": 0, "keepaliveTimeout": 60,
                             "acceptKeepaliveTimeout": 60, "version": "fastfeed-bench"}))
        await ws.send(dumps({"type": "SETUP", "channel": 0, "keepaliveTimeout": 60,
                             "acceptKeepaliveTimeout": 60, "version": "fastfeed-bench"}))
        async for raw in ws:
            msg = loads(raw)
            typ = msg["type"]
            if typ == "FEED_DATA":
                n = dx_extract(msg)
                if latency:  # COMPACT rows in DX_FIELDS order: read each row's eventTime
                    now = time.monotonic_ns()
                    data = msg["data"]
                    for k in range(0, len(data), 2):
                        vals = data[k + 1]
                        width = _DX_LAYOUT[data[k]][0]
                        at = _DX_EVENT_TIME[data[k]]
                        lat.extend(now - vals[i + at] for i in range(0, len(vals), width))
                if clock.add(n):
                    return
            elif typ == "AUTH_STATE":
                if msg["state"] == "UNAUTHORIZED":
                    await ws.send(dumps({"type": "AUTH", "channel": 0, "token": "bench"}))
                else:
                    for t in types:
                        await ws.send(dumps({"type": "CHANNEL_REQUEST",
                                             "channel": DX_CHANNELS[t], "service": "FEED",
                                             "parameters": {"contract": "AUTO"}}))
            elif typ == "CHANNEL_OPENED":
                ch = msg["channel"]
                t = next(k for k, v in DX_CHANNELS.items() if v == ch)
                await ws.send(dumps({"type": "FEED_SETUP", "channel": ch,
                                     "acceptAggregationPeriod": 0.1,
                                     "acceptDataFormat": "COMPACT",
                                     "acceptEventFields": {t: list(DX_FIELDS[t])}}))
                await ws.send(dumps({"type": "FEED_SUBSCRIPTION", "channel": ch,
                                     "add": [{"type": t, "symbol": "*"}]}))

    task = asyncio.ensure_future(run())
    await asyncio.wait([task], timeout=run_cap(duration))
    if task.done() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    task.cancel()
    return clock.sample()


def dx_kind(kind: str) -> tuple[tuple[str, ...], int]:
    """(event types, events per frame) of a DXLink frame kind; ``"latency"`` = 1-Quote frames."""
    return (("Quote",), 1) if kind == "latency" else DXLINK_KINDS[kind]


def polygon_subscriptions(kind: str) -> tuple[str, str]:
    """(cluster, subscribe params) for a polygon frame kind."""
    cluster = POLYGON_KINDS[kind][0] if kind in POLYGON_KINDS else "stocks"
    return cluster, ("XL2.*" if cluster == "crypto" else "T.*,Q.*")


async def websockets_polygon_client(url: str, kind: str, duration: float,
                                    frames: int | None = None) -> Sample:
    import orjson
    from websockets.asyncio.client import connect

    cluster, params = polygon_subscriptions(kind)
    per = POLYGON_KINDS[kind][1] if kind in POLYGON_KINDS else 1
    clock = EventClock(duration, frames * per if frames else None)
    loads = orjson.loads
    latency = kind == "latency"
    ws = await connect(f"{budget_url(url, frames)}/{cluster}", max_size=None,
                       compression=None, ping_interval=None)

    async def run() -> None:
        await ws.send('{"action":"auth","params":"bench"}')
        await ws.send(f'{{"action":"subscribe","params":"{params}"}}')
        async for raw in ws:
            events = loads(raw)
            if events and events[0].get("ev") == "status":
                continue
            if latency:
                now = time.monotonic_ns()
                clock.latencies.extend(now - e["t"] for e in events)
            if clock.add(pg_extract(events)):
                return

    task = asyncio.ensure_future(run())
    await asyncio.wait([task], timeout=run_cap(duration))
    if task.done() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    task.cancel()
    return clock.sample()


# --------------------------------------------------------------------------------------------
# polygon (pssolanki111) and Massive


def polygon_pkg_runner(texts: list[str], cluster: str,
                       handler: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    """A function that runs the ``polygon`` package's (pssolanki111) receive path over
    ``texts``: its ``AsyncStreamClient.handle_messages`` on each frame, from a socket stand-in
    whose ``recv()`` never suspends, every handler set to ``handler``."""
    try:
        import polygon
        from polygon import AsyncStreamClient
    except ImportError as exc:
        raise Unavailable(f"polygon (pssolanki111) not installed ({exc})") from exc
    if not hasattr(polygon, "AsyncStreamClient"):
        raise Unavailable("the installed 'polygon' is not pssolanki111's package")
    client = AsyncStreamClient("bench", cluster)

    class FakeWS:
        frame = ""

        async def recv(self) -> str:
            return self.frame

    fake = FakeWS()
    client.WS = fake
    client._auth = True
    for key in list(client._handlers):
        client._handlers[key] = handler
    handle = client.handle_messages

    def run() -> None:
        for text in texts:
            fake.frame = text
            coro = handle()
            try:
                coro.send(None)  # recv() never suspends: the coroutine finishes here
            except StopIteration:
                pass
            else:  # pragma: no cover - would mean the path awaited something real
                coro.close()
                raise AssertionError("handle_messages suspended")

    return run


def measure_polygon_pkg(frames: list[bytes], events_per_pass: int, duration: float) -> Sample:
    cluster = "crypto" if b'"XL2"' in frames[0] else "stocks"
    counter = [0]

    def handler(msg: dict[str, Any]) -> None:
        counter[0] += 1

    run = polygon_pkg_runner(_text(frames), cluster, handler)

    def one_pass() -> int:
        start = counter[0]
        run()
        return counter[0] - start

    return DecodeLoop(frames, events_per_pass, sum(map(len, frames))).run(one_pass, duration)


async def massive_client(url: str, kind: str, duration: float,
                         frames: int | None = None) -> Sample:
    try:
        from massive import WebSocketClient
    except ImportError as exc:
        raise Unavailable(f"massive not installed ({exc})") from exc
    cluster, params = polygon_subscriptions(kind)
    per = POLYGON_KINDS[kind][1] if kind in POLYGON_KINDS else 1
    hostport = budget_url(url, frames).split("://", 1)[1]
    logging.getLogger("massive").setLevel(logging.WARNING)
    client = WebSocketClient(api_key="bench", feed=hostport, market=cluster, secure=False,
                             subscriptions=params.split(","), max_reconnects=0)
    clock = EventClock(duration, frames * per if frames else None)

    async def processor(msgs: list[Any]) -> None:
        if clock.add(len(msgs)):
            raise _Stop

    task = asyncio.ensure_future(client.connect(processor))
    waiter = asyncio.ensure_future(clock.wait(run_cap(duration)))
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if not clock.done.is_set() and task.done():
        err = task.exception()
        if err is not None and not isinstance(err, _Stop):
            raise err
    if not waiter.done():
        await waiter
    task.cancel()
    return clock.sample()


class _Stop(Exception):
    pass


#: peer name -> (feed, "decode"|"e2e", label)
PEERS: dict[str, tuple[str, str, str]] = {
    "tastytrade-decode": ("dxlink", "decode", "tastytrade decode path (json + _map_message)"),
    "tastytrade-streamer": ("dxlink", "e2e", "tastytrade DXLinkStreamer.listen"),
    "orjson-parse": ("both", "decode", "orjson.loads + read every field"),
    "websockets-orjson": ("both", "e2e", "websockets + orjson client"),
    "polygon-pkg": ("polygon", "decode", "polygon pkg handle_messages (fake WS, sync handler)"),
    "massive": ("polygon", "e2e", "Massive WebSocketClient (stdlib json, models)"),
}
