"""What recording costs, how fast a recording replays, and how big it is (issue 16).

    python bench/bench_record.py [--frames 20000] [--repeats 5]

* end-to-end ``DXLinkStreamer.listen_batches(Quote)`` throughput on 100-Quote frames from the
  bench simulator (``fastfeed.bench._runner serve --scenario record-dxlink``, a separate
  process, flat out, back-pressure), without recording and with ``record(raw=True)``,
  ``record(columns=True)`` and both -- runs interleaved, median (min-max) and the ratio to the
  run without recording. The upstream is the one of ``python -m fastfeed.bench``'s
  ``listen_batches`` row (and of its ``record-dxlink`` scenario, the short version of this
  script): the same simulator, sending pre-encoded frames of ``fastfeed.bench.payloads``
  (12-15 ns of its CPU per event: it is not what limits the rate) -- 1024 distinct ones in
  turn rather than dxlink-quote100's 64, so that no frame repeats within zstd's reach (with
  64, the raw capture compressed 30x at a fifth of the CPU: not what a real feed gives). The
  rate without recording is that row's at the same machine load;
* CPU per event: the event loop thread, the whole feed process (its events per CPU-second
  vs not recording: what the hand-over costs the feed), the writer process, the simulator;
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

MODES = ("none", "raw", "columns", "raw+columns", "raw/discard", "columns/discard",
         "raw/inline")
NICE = 0
LEVEL = 1


class Session:
    def __init__(self, url: str) -> None:
        self.dxlink_url = url
        self.streamer_token = "bench-token"
        self.proxy = None


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastfeed.bench._runner", "serve", "--scenario",
         "record-dxlink"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
        # "raw/inline": zstd as each block is written (the default compresses each closed
        # segment in the background)
        rec = streamer.record(path, raw="raw" in mode, columns="columns" in mode,
                              nice=NICE, level=LEVEL, discard=mode.endswith("/discard"),
                              raw_compress="inline" if mode.endswith("/inline") else "roll")
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
                w0 = rec.stats["writer_cpu_ns"] if rec is not None else 0
                s0 = proc_cpu_ns(sim_pid)
                n0 = len(batch)
            n += len(batch)
            if n >= want:
                t1 = time.perf_counter()
                c1 = time.thread_time_ns()
                p1 = time.process_time_ns()
                w1 = rec.stats["writer_cpu_ns"] if rec is not None else 0
                s1 = proc_cpu_ns(sim_pid)
                break
        stats = dict(rec.stats) if rec is not None else {}
    if rec is not None:
        stats = dict(rec.stats)       # after close: everything written
    m = n - n0
    return {"rate": m / (t1 - t0), "events": n, "stats": stats, "loop_ns": (c1 - c0) / m,
            "writer_ns": (w1 - w0) / m, "writer_total_ns": stats.get("writer_cpu_ns", 0) / n,
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
    ap.add_argument("--nice", type=int, default=0, help="the recorder's writer-process nice")
    ap.add_argument("--level", type=int, default=1, help="the raw capture's zstd level "
                    "(the recorder's default: 1; negative: faster, bigger)")
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"comma-separated, of {', '.join(MODES)} (none is always run)")
    a = ap.parse_args()
    global NICE, LEVEL
    NICE = a.nice
    LEVEL = a.level
    modes = ["none"] + [m for m in a.modes.split(",") if m and m != "none"]
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r}")
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    tmp = tempfile.mkdtemp(prefix="ff-bench-record-")
    proc, url = start_server()
    res_of: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    last: dict[str, str] = {}
    replays: list[dict[str, float]] = []
    load = [os.getloadavg()[0]]
    try:
        runner(run_live(url, 2000, "none", os.path.join(tmp, "warm")))   # warm-up
        for r in range(a.repeats):
            order = modes[r % len(modes):] + modes[:r % len(modes)]    # rotate each repeat
            for mode in order:
                path = os.path.join(tmp, f"{mode.replace('/', '-')}-{r}")
                res_of[mode].append(runner(run_live(url, a.frames, mode, path, proc.pid)))
                if mode in last:
                    shutil.rmtree(last[mode], ignore_errors=True)
                last[mode] = path
            load.append(os.getloadavg()[0])
        if "columns" in last:
            replays = [runner(run_replay(last["columns"])) for _ in range(a.repeats)]
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(10)

    def med(mode: str, key: str) -> float:
        return statistics.median(x[key] for x in res_of[mode])

    def ratios(mode: str) -> list[float]:   # paired with the run without recording
        return [x["rate"] / y["rate"] for x, y in zip(res_of[mode], res_of["none"],
                                                       strict=True)]

    print(f"# bench_record: {a.frames} frames x 100 Quotes per run, {a.repeats} runs of each "
          f"mode, interleaved (order rotated); writer nice {a.nice}, zstd level {a.level}; load "
          f"average during the "
          f"runs {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print(f"# {versions()}")
    print("end to end listen_batches(Quote)  rate: median (min-max)     vs none: median "
          "(min-max) of paired ratios   CPU ns/event (medians): loop thread, feed process "
          "(and its events per CPU-second vs none), writer process (total: with its start and "
          "the Parquet compaction at close), simulator process; wall ns/event")
    for mode in modes:
        rs = ratios(mode)
        cpu_r = med("none", "proc_ns") / med(mode, "proc_ns")
        print(f"  {mode:18s} {fmt([x['rate'] for x in res_of[mode]]):26s} "
              f"{statistics.median(rs):5.2f}x ({min(rs):.2f}-{max(rs):.2f})   "
              f"loop {med(mode, 'loop_ns'):6.1f}  feed {med(mode, 'proc_ns'):6.1f} "
              f"({cpu_r:4.2f}x)  writer {med(mode, 'writer_ns'):6.1f} "
              f"(total {med(mode, 'writer_total_ns'):6.1f})  "
              f"sim {med(mode, 'sim_ns'):5.1f}  wall {med(mode, 'wall_ns'):6.1f}")
    for mode in modes[1:]:
        st = res_of[mode][-1]["stats"]
        print(f"  {mode}: handed to the writer {st.get('raw_messages')} messages / "
              f"{st.get('records')} records; not recorded {st.get('dropped_messages')} / "
              f"{st.get('dropped_records')} (last run); errors {st.get('errors')}")
    if replays:
        print(f"replay columns -> listen_batches   "
              f"{fmt([x['rate'] for x in replays]):26s} "
              f"(incl. loading the files: {fmt([x['rate_with_load'] for x in replays])}; "
              f"{replays[0]['events']} events)")
    if "raw" in last and "columns" in last:
        raw_st = res_of["raw"][-1]
        raw_bytes = sum(os.path.getsize(p)
                        for p in glob.glob(os.path.join(last["raw"], "raw", "*")))
        pq_files = glob.glob(os.path.join(last["columns"], "columns", "Quote", "*.parquet"))
        pq_bytes = sum(os.path.getsize(p) for p in pq_files)
        st = raw_st["stats"]
        written = int(st.get("raw_written", 0))
        n_raw = raw_st["events"] * written / max(1, written + int(st.get("dropped_messages", 0)))
        n_pq = res_of["columns"][-1]["stats"].get("records_written", 0) or 1
        print(f"bytes per million Quotes: raw capture (zstd) {raw_bytes / n_raw:.1f} MB "
              f"(wire {raw_st['stats'].get('raw_bytes', 0) / n_raw:.1f} MB), Parquet (zstd) "
              f"{pq_bytes / n_pq:.1f} MB, records in memory 88 MB")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
