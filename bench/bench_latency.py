"""Latency of DXLink ``listen()`` at a paced rate, per idle-strategy setting, with what runs
beside it: the streamer process's CPU share and the garbage collector's passes.

Each measurement starts the bench's paced simulator (``python -m fastfeed.bench._runner serve
--scenario latency-dxlink``) and runs the bench's own ``listen()`` latency client
(:func:`fastfeed.bench.scenarios.ff_dxlink_client`) in this process; settings are interleaved
repeat by repeat. Prints p50 / p99 / p99.9 / max in µs (the first 5 % of each run dropped), the
process's CPU time over wall time, and per GC generation the passes and the longest one.

    python bench/bench_latency.py [--spins 250,0] [--repeats 4] [--seconds 2] [--rate 10000]
                                  [--idle-seconds 5]

``--idle-seconds``: also the CPU share of a connected streamer with nothing subscribed (idle).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
from typing import Any

from fastfeed.bench import scenarios


def _one(spin: float | None, seconds: float, rate: float) -> dict[str, Any]:
    srv = subprocess.Popen(
        [sys.executable, "-m", "fastfeed.bench._runner", "serve", "--scenario",
         "latency-dxlink", "--rate", str(rate)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    passes: list[tuple[int, int]] = []
    started = [0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            passes.append((info["generation"], time.perf_counter_ns() - started[0]))

    try:
        assert srv.stdout is not None
        url = srv.stdout.readline().split()[1]
        try:
            import uvloop
            run: Any = uvloop.run
        except ImportError:
            run = asyncio.run
        gc.callbacks.append(on_gc)
        c0, w0 = time.process_time(), time.perf_counter()
        sample = run(scenarios.ff_dxlink_client(url, "latency", seconds, True,
                                                idle_spin_us=spin))
        cpu = (time.process_time() - c0) / (time.perf_counter() - w0)
    finally:
        if on_gc in gc.callbacks:
            gc.callbacks.remove(on_gc)
        assert srv.stdin is not None
        srv.stdin.close()
        srv.terminate()
        srv.wait()
    lat = sorted(sample.latencies_ns)
    lat = lat[len(lat) // 20:]

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1000

    gcs = {g: (sum(1 for x in passes if x[0] == g),
               max((x[1] for x in passes if x[0] == g), default=0) / 1000) for g in (0, 1, 2)}
    return {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": lat[-1] / 1000, "cpu": cpu,
            "gc": gcs, "n": len(lat)}


def _idle(seconds: float) -> float:
    """CPU time over wall time of this process while a connected DXLinkStreamer (default
    settings, a ``listen()`` waiting) receives nothing."""
    from fastfeed.bench import peers
    from fastfeed.dxfeed import Quote
    from fastfeed.tastytrade import DXLinkStreamer

    srv = subprocess.Popen(
        [sys.executable, "-m", "fastfeed.bench._runner", "serve", "--scenario", "latency-dxlink"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    async def run() -> float:
        async with DXLinkStreamer(peers.FakeTastytradeSession(url)) as st:
            waiting = asyncio.ensure_future(st.listen(Quote).__anext__())
            await asyncio.sleep(0.5)              # the handshake's spin window has passed
            c0, w0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            share = (time.process_time() - c0) / (time.perf_counter() - w0)
            waiting.cancel()
            return share

    try:
        assert srv.stdout is not None
        url = srv.stdout.readline().split()[1]
        try:
            import uvloop
            return float(uvloop.run(run()))
        except ImportError:
            return asyncio.run(run())
    finally:
        assert srv.stdin is not None
        srv.stdin.close()
        srv.terminate()
        srv.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spins", default="250,0",
                    help="idle_spin_us values, comma-separated ('default': the streamer's)")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--idle-seconds", type=float, default=0.0)
    a = ap.parse_args()
    spins: list[float | None] = [None if s == "default" else float(s)
                                 for s in a.spins.split(",")]
    out: dict[str, list[dict[str, Any]]] = {}
    for r in range(a.repeats):
        for spin in spins[r % len(spins):] + spins[:r % len(spins)]:
            res = _one(spin, a.seconds, a.rate)
            key = "default" if spin is None else f"{spin:g}"
            out.setdefault(key, []).append(res)
            print(f"  idle_spin_us={key:>7}: p50 {res['p50']:7.1f}  p99 {res['p99']:8.1f}  "
                  f"p99.9 {res['p999']:8.1f}  max {res['max']:8.0f} µs  CPU {res['cpu']:4.0%}  "
                  f"GC passes (count, longest µs) {res['gc']}", flush=True)
    print(f"medians [min-max] over {a.repeats} interleaved runs of {a.seconds:g} s at "
          f"{a.rate:g} events/s:")
    for key, rows in out.items():
        cells = []
        for k in ("p50", "p99", "p999"):
            v = [x[k] for x in rows]
            cells.append(f"{k} {statistics.median(v):.1f} [{min(v):.1f}-{max(v):.1f}]")
        cpu = statistics.median(x["cpu"] for x in rows)
        print(f"  idle_spin_us={key:>7}: {'  '.join(cells)} µs, CPU {cpu:.0%}")
    if a.idle_seconds > 0:
        print(f"idle (connected, nothing subscribed, {a.idle_seconds:g} s): "
              f"{_idle(a.idle_seconds):.2%} of a core")


if __name__ == "__main__":
    main()
