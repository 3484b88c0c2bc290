"""Massive drop-in: frame -> the list of model objects the processor gets, fastfeed vs Massive.

Massive 2.9.1's per-frame path is exactly what its ``WebSocketClient.connect`` does with each
frame it receives (``json.loads``, the status scan, ``_log_server_statuses``, ``parse`` into its
models, ``_flush_server_errors``), called on a real client instance. fastfeed's is what
``fastfeed.massive.WebSocketClient`` does with each socket read (the C decoder fills the rings,
the per-``ev`` batches are drained and turned into model objects in wire order by
``fastfeed.massive._client.models_of``). Same frames for both (``fastfeed.bench.payloads``:
32 distinct stock frames of 100 or 1 T/Q events); every variant's output is checked equal,
attribute by attribute, before timing.

Run as a script (medians of ``--rounds`` round-robin rounds, min-max, ratio)::

    taskset -c 1 python bench/bench_massive.py [--rounds 9] [--repeat 20]

or with pytest-benchmark: ``pytest bench/bench_massive.py --benchmark-only -p no:cacheprovider``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from fastfeed.bench.payloads import POLYGON_KINDS, polygon_frames

KINDS = ("stocks100", "stocks1")


def massive_path(frames: list[bytes]) -> Callable[[], list[Any]]:
    """Massive's per-frame work in ``connect()`` (stdlib json, its default)."""
    from massive import WebSocketClient
    from massive.websocket.models import parse

    client = WebSocketClient(api_key="bench", secure=False, feed="127.0.0.1:1")
    wslog = logging.getLogger("WebSocketClient")
    texts = [f.decode() for f in frames]  # websockets hands text frames over as str

    def run() -> list[Any]:
        out: list[Any] = []
        for cmsg in texts:
            msg_json = client.json.loads(cmsg)
            for m in msg_json:
                if m["ev"] == "status":
                    wslog.debug("status: %s", m["message"])
            client._log_server_statuses(msg_json)
            models = parse(msg_json, wslog, client.market)
            client._flush_server_errors()
            if models:
                out.append(models)
        return out

    return run


def fastfeed_path(frames: list[bytes]) -> Callable[[], list[Any]]:
    """fastfeed.massive's per-read work: decode into rings, drain, models in wire order."""
    from fastfeed import PolygonDecoder
    from fastfeed.massive import MARKET_EVENT_MAP, Market
    from fastfeed.massive._client import models_of

    dec = PolygonDecoder("stocks")
    # the client holds one consumer per ev subscribed (here T.* and Q.*)
    sinks = [(dec.rings[ev].consumer(), MARKET_EVENT_MAP[Market.Stocks][ev]) for ev in ("T", "Q")]

    def run() -> list[Any]:
        out: list[Any] = []
        for f in frames:
            dec.feed(f)
            batches = []
            classes = []
            for cons, cls in sinks:
                if cons.available:
                    batches.append(cons.drain())
                    classes.append(cls)
            if batches:
                out.append(models_of(batches, classes))
        return out

    return run


def check_same(a: list[Any], b: list[Any]) -> int:
    """Both outputs hold the same objects (names, attributes, values and types)."""
    import dataclasses

    n = 0
    for la, lb in zip(a, b, strict=True):
        for x, y in zip(la, lb, strict=True):
            assert type(x).__name__ == type(y).__name__
            for f in dataclasses.fields(y):
                u, v = getattr(x, f.name), getattr(y, f.name)
                assert u == v and type(u) is type(v), (f.name, u, v)
            n += 1
    return n


# ------------------------------------------------------------------------------ pytest-benchmark

@pytest.fixture(params=KINDS)
def frames(request: Any) -> tuple[str, list[bytes]]:
    pytest.importorskip("massive")
    return request.param, polygon_frames(request.param)


def _events(frames: list[bytes]) -> int:
    return sum(len(json.loads(f)) for f in frames)


def test_massive_client_models(benchmark: Any, frames: tuple[str, list[bytes]]) -> None:
    _, fr = frames
    run = massive_path(fr)
    benchmark.extra_info["events_per_call"] = _events(fr)
    benchmark(run)


def test_fastfeed_massive_models(benchmark: Any, frames: tuple[str, list[bytes]]) -> None:
    _, fr = frames
    run = fastfeed_path(fr)
    assert check_same(run(), massive_path(fr)()) == _events(fr)
    benchmark.extra_info["events_per_call"] = _events(fr)
    benchmark(run)


# ------------------------------------------------------------------------------ script

def _time(run: Callable[[], Any], repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        run()
    return time.perf_counter() - t0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _replay_server(port: int, blob: bytes) -> None:
    """A minimal websocket server (another process): handshake, ``connected``, ``auth_success``
    after the client's first message, then -- after its subscribe -- ``blob`` (pre-encoded data
    frames) in one write and a normal close. Sending costs nothing per event, so the figure is
    the client's."""
    import asyncio
    import base64
    import hashlib
    import re

    from fastfeed.sim._base import ws_text_frame

    def status(st: str, msg: str) -> bytes:
        return ws_text_frame(json.dumps([{"ev": "status", "status": st,
                                          "message": msg}]).encode())

    async def read_frame(reader: asyncio.StreamReader) -> None:
        head = await reader.readexactly(2)
        n = head[1] & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        await reader.readexactly(n + (4 if head[1] & 0x80 else 0))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the bench's readiness probe, or a client gone
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await reader.readuntil(b"\r\n\r\n")
        m = re.search(rb"sec-websocket-key:\s*(\S+)", req, re.IGNORECASE)
        assert m is not None
        accept = base64.b64encode(hashlib.sha1(
            m.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        writer.write(status("connected", "Connected Successfully"))
        await read_frame(reader)  # auth
        writer.write(status("auth_success", "authenticated"))
        await read_frame(reader)  # subscribe
        writer.write(blob)
        writer.write(b"\x88\x02\x03\xe8")  # close 1000
        await writer.drain()
        await read_frame(reader)  # the client's close: then the TCP connection goes

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def end_to_end(client_cls: Any, kind: str, target_events: int) -> float:
    """Events/s from the socket to the processor, the frames of ``kind`` replayed flat out by
    :func:`_replay_server` in another process (the server closes normally: connect() returns)."""
    import asyncio
    import multiprocessing
    import socket

    from fastfeed.sim._base import ws_text_frame

    frames = polygon_frames(kind)
    per = POLYGON_KINDS[kind][1]
    reps = max(1, target_events // (per * len(frames)))
    blob = b"".join(ws_text_frame(f) for f in frames) * reps
    total = per * len(frames) * reps
    port = _free_port()
    proc = multiprocessing.get_context("fork").Process(target=_replay_server, args=(port, blob),
                                                       daemon=True)
    proc.start()
    try:
        deadline = time.monotonic() + 20
        while True:  # wait for the listener
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        count = 0
        first_n = 0
        first = last = 0.0

        async def processor(msgs: list[Any]) -> None:
            nonlocal count, first_n, first, last
            now = time.perf_counter()
            if not count:  # the clock starts at the first delivery (after imports, handshake)
                first, first_n = now, len(msgs)
            count += len(msgs)
            last = now

        client = client_cls(api_key="bench", feed=f"127.0.0.1:{port}", secure=False,
                            subscriptions=["T.*", "Q.*"])
        asyncio.run(client.connect(processor))
        assert count == total, (count, total)
        return (count - first_n) / (last - first)
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=20, help="passes over the frames per round")
    ap.add_argument("--e2e", action="store_true",
                    help="also end to end: frames replayed flat out by another process -> "
                         "processor")
    args = ap.parse_args()
    if args.e2e:
        from massive import WebSocketClient as Massive

        from fastfeed.massive import WebSocketClient as FastFeed

        for kind, n in (("stocks100", 320_000), ("stocks1", 64_000)):
            res: dict[str, list[float]] = {"massive 2.9.1": [], "fastfeed.massive": []}
            for _ in range(3):
                res["massive 2.9.1"].append(end_to_end(Massive, kind, n))
                res["fastfeed.massive"].append(end_to_end(FastFeed, kind, n))
            for name, v in res.items():
                print(f"e2e {kind:<10} {name:<18} {statistics.median(v):12,.0f} events/s"
                      f" [{min(v):,.0f}-{max(v):,.0f}]")
            ratio = statistics.median(res["fastfeed.massive"]) / statistics.median(
                res["massive 2.9.1"])
            print(f"e2e {kind:<10} ratio {ratio:.1f}x")
    print(f"{'frames':<10} {'client':<22} {'ns/event median [min-max]':<30} {'events/s':>12}")
    for kind in KINDS:
        fr = polygon_frames(kind)
        n = _events(fr)
        runs = {"massive 2.9.1": massive_path(fr), "fastfeed.massive": fastfeed_path(fr)}
        assert check_same(runs["fastfeed.massive"](), runs["massive 2.9.1"]()) == n
        per: dict[str, list[float]] = {k: [] for k in runs}
        repeat = args.repeat * (10 if POLYGON_KINDS[kind][1] == 1 else 1)  # ~same time per kind
        for _ in range(args.rounds):
            for name, run in runs.items():  # round-robin: both see the same machine state
                per[name].append(_time(run, repeat) / (repeat * n) * 1e9)
        med = {k: statistics.median(v) for k, v in per.items()}
        for name, v in per.items():
            print(f"{kind:<10} {name:<22} {med[name]:8.0f} [{min(v):.0f}-{max(v):.0f}]"
                  f"{'':<13} {1e9 / med[name]:12,.0f}")
        ratios = [m / f for m, f in zip(per["massive 2.9.1"], per["fastfeed.massive"])]
        print(f"{kind:<10} {'ratio (massive/ff)':<22} {statistics.median(ratios):8.1f}x "
              f"[{min(ratios):.1f}-{max(ratios):.1f}]")


if __name__ == "__main__":
    main()
