"""What recording costs, how fast a recording replays, and how big it is (issue 16).

    python bench/bench_record.py [--frames 20000] [--repeats 5]

* end-to-end ``DXLinkStreamer.listen_batches(Quote)`` throughput on 100-Quote frames from the
  bench simulator (``fastfeed.bench._runner serve --scenario dxlink-quote100``, a separate
  process, flat out, back-pressure), without recording and with ``record(raw=True)``,
  ``record(columns=True)`` and both -- runs interleaved, median (min-max) and the ratio to the
  run without recording;
* replay of the recorded columns into ``listen_batches`` (``fastfeed.replay.open(path,
  source="columns")``): delivery rate, and the rate including loading the files;
* bytes per million Quotes: raw capture file (zstd) and Parquet (zstd).

Standalone: prints a table, the versions, and the machine's load (a shared machine's numbers are
lower bounds; compare within one run).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

MODES = ("none", "raw", "columns", "raw+columns", "raw/discard", "columns/discard")
NICE = 0


class Session:
    def __init__(self, url: str) -> None:
        self.dxlink_url = url
        self.streamer_token = "bench-token"
        self.proxy = None


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastfeed.bench._runner", "serve", "--scenario",
         "dxlink-quote100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"bench simulator did not start: {line!r}")
    return proc, line.split()[1]


def proc_cpu_ns(pid: int) -> int:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


async def run_live(url: str, frames: int, mode: str, path: str,
                   sim_pid: int = 0) -> dict[str, Any]:
    from fastfeed.bench.peers import budget_url
    from fastfeed.dxfeed import Quote
    from fastfeed.tastytrade import DXLinkStreamer

    want = frames * 100
    streamer = DXLinkStreamer(Session(budget_url(url, frames)), overflow="backpressure")
    rec = None
    if mode != "none":
        # "/discard": the feed-side cost alone, the writer process takes the data and drops
        # it (what recording costs the feed when the writer has a core of its own)
        rec = streamer.record(path, raw="raw" in mode, columns="columns" in mode,
                              nice=NICE, discard=mode.endswith("/discard"))
        rec.sync()          # the writer process has started
    batches = streamer.listen_batches(Quote)
    n = 0
    t0 = t1 = 0.0
    c0 = c1 = 0
    async with streamer:
        await streamer.subscribe(Quote, ["SPY"])
        async for batch in batches:
            if not n:
                t0 = time.perf_counter()
                c0 = time.thread_time_ns()
                p0 = time.process_time_ns()
                s0 = proc_cpu_ns(sim_pid)
                n0 = len(batch)
            n += len(batch)
            if n >= want:
                t1 = time.perf_counter()
                c1 = time.thread_time_ns()
                p1 = time.process_time_ns()
                s1 = proc_cpu_ns(sim_pid)
                break
        stats = dict(rec.stats) if rec is not None else {}
    if rec is not None:
        stats = dict(rec.stats)       # after close: everything written
    m = n - n0
    return {"rate": m / (t1 - t0), "events": n, "stats": stats, "loop_ns": (c1 - c0) / m,
            "proc_ns": (p1 - p0) / m, "sim_ns": (s1 - s0) / m, "wall_ns": (t1 - t0) * 1e9 / m}


async def run_replay(path: str) -> dict[str, float]:
    import fastfeed.replay
    from fastfeed.dxfeed import Quote

    t_open = time.perf_counter()
    streamer = fastfeed.replay.open(path, source="columns")
    n = 0
    t0 = 0.0
    async with streamer:
        async for batch in streamer.listen_batches(Quote):
            if not n:
                t0 = time.perf_counter()
            n += len(batch)
    t1 = time.perf_counter()
    return {"events": n, "rate": n / (t1 - t0), "rate_with_load": n / (t1 - t_open)}


def fmt(values: list[float]) -> str:
    return (f"{statistics.median(values) / 1e6:6.2f} M/s "
            f"({min(values) / 1e6:.2f}-{max(values) / 1e6:.2f})")


def versions() -> str:
    out = [f"python {platform.python_version()}", f"{platform.machine()}",
           f"cpus {os.cpu_count()}", f"load {os.getloadavg()[0]:.1f}"]
    for mod in ("fastfeed", "pyarrow", "zstandard", "numpy", "picows", "uvloop"):
        try:
            m = __import__(mod)
            out.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            out.append(f"{mod} -")
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False).stdout.strip()
        out.append(f"commit {rev}")
    except OSError:
        pass
    return ", ".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20000, help="100-Quote frames per run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--nice", type=int, default=0, help="the recorder's writer-thread nice")
    a = ap.parse_args()
    global NICE
    NICE = a.nice
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    tmp = tempfile.mkdtemp(prefix="ff-bench-record-")
    proc, url = start_server()
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    loop_ns: dict[str, list[float]] = {m: [] for m in MODES}
    writer_ns: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, dict[str, list[float]]] = {m: {"proc_ns": [], "sim_ns": [], "wall_ns": []}
                                              for m in MODES}
    last: dict[str, dict[str, Any]] = {}
    try:
        runner(run_live(url, 2000, "none", os.path.join(tmp, "warm")))   # warm-up
        for r in range(a.repeats):
            for mode in MODES:
                path = os.path.join(tmp, f"{mode}-{r}")
                res = runner(run_live(url, a.frames, mode, path, proc.pid))
                rates[mode].append(res["rate"])
                loop_ns[mode].append(res["loop_ns"])
                writer_ns[mode].append(res["stats"].get("writer_cpu_ns", 0) / res["events"])
                for k, v in cpu[mode].items():
                    v.append(res[k])
                last[mode] = {**res, "path": path}
                if (r < a.repeats - 1 and mode != "columns") or mode.endswith("discard"):
                    shutil.rmtree(path, ignore_errors=True)
        replays = [runner(run_replay(last["columns"]["path"])) for _ in range(a.repeats)]
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(10)
    base = statistics.median(rates["none"])
    print(f"# bench_record: {a.frames} frames x 100 Quotes per run, {a.repeats} runs each, "
          f"interleaved; writer nice {a.nice}")
    print(f"# {versions()}")
    print(f"{'end to end listen_batches(Quote)':40s} {'median (min-max)':28s} vs none   "
          "loop-thread CPU ns/event, writer-thread CPU ns/event (medians)")
    base_ns = statistics.median(loop_ns["none"])
    for mode in MODES:
        med = statistics.median(rates[mode])
        lns = statistics.median(loop_ns[mode])
        print(f"  record {mode:32s} {fmt(rates[mode]):28s} {med / base:5.2f}x "
              f"({(1 - med / base) * 100:+.1f} % cost)  loop {lns:6.1f} ns "
              f"({(lns / base_ns - 1) * 100:+.1f} %), writer "
              f"{statistics.median(writer_ns[mode]):6.1f} ns")
    print("CPU per event in the measured window (medians): wall ns, simulator process, this "
          "process (all threads); the machine has "
          f"{os.cpu_count()} cores = {os.cpu_count()} x wall of CPU")
    for mode in MODES:
        c = {k: statistics.median(v) for k, v in cpu[mode].items()}
        print(f"  {mode:20s} wall {c['wall_ns']:6.1f} ns  simulator {c['sim_ns']:6.1f} ns  "
              f"streamer process {c['proc_ns']:6.1f} ns  idle "
              f"{(os.cpu_count() or 1) * c['wall_ns'] - c['sim_ns'] - c['proc_ns']:6.1f} ns")
    for mode in MODES[1:4]:
        st = last[mode]["stats"]
        print(f"  {mode}: dropped messages {st.get('dropped_messages')}, dropped records "
              f"{st.get('dropped_records')}, errors {st.get('errors')}")
    print(f"{'replay columns -> listen_batches':40s} "
          f"{fmt([x['rate'] for x in replays]):28s} "
          f"(incl. loading the files: {fmt([x['rate_with_load'] for x in replays])}; "
          f"{replays[0]['events']} events)")
    raw_path = last["raw"]["path"]
    raw_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(raw_path, "raw", "*")))
    pq_files = glob.glob(os.path.join(last["columns"]["path"], "columns", "Quote", "*.parquet"))
    pq_bytes = sum(os.path.getsize(p) for p in pq_files)
    wire = last["raw"]["stats"].get("raw_bytes", 0)
    n_raw = last["raw"]["events"]
    n_pq = last["columns"]["stats"].get("records_written", 0) or 1
    print(f"bytes per million Quotes: raw capture (zstd) {raw_bytes / n_raw * 1e6 / 1e6:.1f} MB "
          f"(wire {wire / n_raw * 1e6 / 1e6:.1f} MB), Parquet (zstd) "
          f"{pq_bytes / n_pq * 1e6 / 1e6:.1f} MB, records in memory "
          f"{88:.0f} MB")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
