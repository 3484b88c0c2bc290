"""Process orchestration, timing and statistics for ``python -m fastfeed.bench``.

Three kinds of process, all started with ``sys.executable -m fastfeed.bench._runner``:

``serve``
    The simulator (:mod:`fastfeed.sim`, picows server) for one scenario, sending the
    deterministic frames of :mod:`fastfeed.bench.payloads` flat-out (or paced for latency).
    Prints ``READY <url>`` and runs until its stdin closes or it gets SIGTERM.
``worker``
    One measurement: one client on one scenario. Prints ``RESULT <json>`` and exits.
the parent (:func:`run_plan`)
    Starts one simulator per scenario, then for each repetition runs every client of the
    scenario back to back, rotating the order each repetition, so that every ratio is taken
    between measurements made under the same machine load. Every child runs in its own session
    and is stopped by its pid on exit, on error and on Ctrl-C / SIGTERM; children also ask the
    kernel for SIGTERM when the parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import math
import os
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ChildRegistry", "Measurement", "Plan", "run_plan", "summarize"]

_PKG_PARENT = str(Path(__file__).resolve().parents[2])


# ============================================================================================
# children


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent exits (best effort)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        libc.prctl(29, 1)  # PR_SET_TIMERSLACK = 1 ns, for the paced sender
    except Exception:  # noqa: BLE001 - the bench reports, never crashes
        pass


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    pp = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = _PKG_PARENT + (os.pathsep + pp if pp else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


class ChildRegistry:
    """Every process the bench starts; :meth:`stop_all` ends them by pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.started_pids: list[int] = []
        self._lock = threading.Lock()

    def popen(self, args: list[str], **kw: Any) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-m", "fastfeed.bench._runner", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_child_env(), start_new_session=True, **kw,
        )
        with self._lock:
            self.procs.append(p)
            self.started_pids.append(p.pid)
        return p

    def stop(self, p: subprocess.Popen[str], grace: float = 2.0) -> None:
        if p.poll() is None:
            try:
                if p.stdin is not None:
                    p.stdin.close()
            except OSError:
                pass
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
            except ProcessLookupError:
                pass
        for s in (p.stdout, p.stderr, p.stdin):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass
        with self._lock:
            if p in self.procs:
                self.procs.remove(p)

    def stop_all(self) -> None:
        for p in list(self.procs):
            self.stop(p, grace=1.0)


# ============================================================================================
# plan and results


@dataclass
class Plan:
    scenarios: list[str]
    runs: int = 5
    duration: float = 1.0
    latency_duration: float = 3.0
    latency_rate: float = 10_000.0
    clients: list[str] | None = None  # None = every client of each scenario
    worker_timeout: float = 60.0
    quick: bool = False
    #: runs of a peer that is far below fastfeed, see :func:`far_below`
    far_runs: int = 3
    reconnect_drops: int = 20  # server-side drops per client in the reconnect scenario
    reconnect_stable: float = 2.0  # seconds of data on a connection before the server drops it


@dataclass
class Measurement:
    scenario: str
    client: str
    run: int
    order: int
    status: str  # "ok" | "unavailable" | "error" | "timeout"
    sample: dict[str, Any] | None = None
    reason: str = ""
    wall_started: float = 0.0
    elapsed: float = 0.0  # wall seconds of the whole measurement (worker start to result)


@dataclass
class Results:
    plan: Plan
    measurements: list[Measurement] = field(default_factory=list)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    interrupted: bool = False
    #: (scenario, client) -> runs, for peers far below fastfeed (see :func:`far_below`)
    reduced: dict[tuple[str, str], int] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float = 0.0


def _pct(values: list[float], q: float) -> float:

    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = math.floor(k)
    hi = math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(values: list[float]) -> dict[str, float] | None:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals)}


def latency_stats(lat_ns: list[int]) -> dict[str, float]:
    us = [x / 1000.0 for x in lat_ns]
    return {"p50": _pct(us, 0.50), "p99": _pct(us, 0.99), "p999": _pct(us, 0.999),
            "max": max(us) if us else float("nan"), "n": len(us)}


# ============================================================================================
# the parent


class Progress:
    """A plain progress bar on stderr (one line rewritten with ``\\r`` on a tty), with an ETA.

    The ETA adds, for every measurement still to run, the mean wall time of the finished
    measurements of the same class (throughput / latency / reconnect), or the caller's guess
    for a class with none finished yet.
    """

    def __init__(self, total: int, stream: Any = None, enabled: bool = True) -> None:
        self.total = max(1, total)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self._last = ""
        self.remaining: dict[str, int] = {}  # class -> measurements still to run
        self.guess: dict[str, float] = {}  # class -> guessed seconds per measurement
        self._spent: dict[str, list[float]] = {}

    def plan(self, remaining: dict[str, int], guess: dict[str, float]) -> None:
        self.remaining = dict(remaining)
        self.guess = dict(guess)
        self.total = max(1, self.done + sum(remaining.values()))

    def eta(self) -> float | None:
        if not self.remaining:
            return None
        left = 0.0
        for cls, n in self.remaining.items():
            spent = self._spent.get(cls)
            per = statistics.fmean(spent) if spent else self.guess.get(cls, 2.0)
            left += n * per
        return left

    def update(self, label: str) -> None:
        if not self.enabled:
            return
        width = 30
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        el = time.monotonic() - self.t0
        eta = self.eta()
        left = f" ETA {_clock(eta)}" if eta is not None else ""
        line = f"[{bar}] {self.done:>3}/{self.total} {_clock(el)}{left}  {label}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(len(self._last)))
        else:
            self.stream.write(line + "\n")
        self._last = line[:120]
        self.stream.flush()

    def step(self, label: str, cls: str = "", seconds: float = 0.0) -> None:
        self.done += 1
        if cls:
            self._spent.setdefault(cls, []).append(seconds)
            if self.remaining.get(cls, 0) > 0:
                self.remaining[cls] -= 1
        self.update(label)

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


def _read_line(p: subprocess.Popen[str], prefix: str, timeout: float) -> str | None:
    """Read stdout lines until one starts with ``prefix`` or the timeout/exit."""
    assert p.stdout is not None
    deadline = time.monotonic() + timeout
    fd = p.stdout.fileno()
    buf = ""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not r:
            if p.poll() is not None:
                return None
            continue
        chunk = os.read(fd, 65536).decode(errors="replace")
        if not chunk:
            return None
        buf += chunk
        while "\n" in buf:
            line, buf = buf.split("\n", 1)
            if line.startswith(prefix):
                return line[len(prefix):].strip()


def _read_result(p: subprocess.Popen[str], timeout: float) -> tuple[str, Any]:
    assert p.stdout is not None
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"no result within {timeout:.0f} s"
    for line in out.splitlines():
        if line.startswith("RESULT "):
            try:
                return "ok", json.loads(line[7:])
            except ValueError as exc:
                return "error", f"unreadable result from the worker ({exc})"
    tail = (err or "").strip().splitlines()[-6:]
    return "error", f"exit {p.returncode}: " + " | ".join(tail)


#: first-run guess of events/s per end-to-end client (100-event frames); later runs use the
#: previous repetition's measured rate, so each burst lasts about ``duration`` seconds
_GUESS = {"ff-batches": 5e6, "ff-listen": 3e6, "ff-get-event": 2e6, "ff-listen-sdk": 2e6,
          "ff-dicts": 1e6, "ff-record-raw": 4e6, "ff-record-columns": 4e6,
          "ff-replay-columns": 3e6,
          "tastytrade-streamer": 6e4,
          "websockets-orjson": 1e6, "massive": 2e5}


#: events recorded per second of ``duration`` for the replay row (``ff-replay-columns``)
REPLAY_EVENTS = 3e6


def burst_frames(sc: Any, events: float) -> int:
    from fastfeed.bench.payloads import DXLINK_KINDS, POLYGON_KINDS

    per = (DXLINK_KINDS[sc.kind][1] if sc.feed == "dxlink" else POLYGON_KINDS[sc.kind][1])
    return int(min(max(events / per, 200), 5_000_000))


def initial_budget(sc: Any, client: str, duration: float) -> int:
    if sc.latency:
        return 0
    rate = _GUESS.get(client, 1e5)
    if sc.kind in ("quote1", "stocks1"):
        rate /= 5
    else:  # the guesses are for ~100 B events: bigger events (Greeks, XL2 books) come slower
        from fastfeed.bench.payloads import frame_set

        fs = frame_set(sc.feed, sc.kind, n_distinct=4)
        rate /= max(1.0, fs.total_bytes / fs.total_events / 100.0)
    return burst_frames(sc, rate * duration)


def plan_knobs(plan: Plan) -> dict[str, Any]:
    """What a worker needs from the plan besides its own measurement."""
    return {"reconnect_drops": plan.reconnect_drops, "reconnect_stable": plan.reconnect_stable}


def worker_timeout(plan: Plan, sc: Any, duration: float) -> float:
    if sc.kind == "reconnect":
        return plan.reconnect_drops * (plan.reconnect_stable + 10.0) + plan.worker_timeout
    return duration + plan.worker_timeout


def start_server(reg: ChildRegistry, scenario: str, plan: Plan) -> tuple[subprocess.Popen[str], str]:
    args = ["serve", "--scenario", scenario, "--rate", str(plan.latency_rate),
            "--stable", str(plan.reconnect_stable)]
    p = reg.popen(args)
    url = _read_line(p, "READY ", 30.0)
    if url is None:
        err = ""
        if p.poll() is not None and p.stderr is not None:
            err = p.stderr.read()[-2000:]
        reg.stop(p)
        raise RuntimeError(f"simulator for {scenario} did not start: {err.strip()}")
    return p, url


#: a peer at least this many times below the scenario's fastest fastfeed row (first
#: repetition) runs only ``Plan.far_runs`` times, unless a ratio target compares with it
FAR_BELOW = 20.0


def far_below(scenario: str, rates: dict[str, float], paced: float = 0.0) -> set[str]:
    """Peers of ``scenario`` whose first-repetition events/s (``rates``) are far below fastfeed.

    Their ratios are above 20x: a few percent more or less does not change a verdict or the
    README's rounded figure, so fewer repetitions of them keep the run short. Peers compared
    by a ratio target in this scenario always get every repetition. In a latency scenario
    (paced at ``paced`` events/s): the peers that fell behind (took < 90 % of the events),
    whose "latency" is their growing backlog.
    """
    from fastfeed.bench._report import TARGETS
    from fastfeed.bench.scenarios import CLIENTS, SCENARIOS

    sc = SCENARIOS[scenario]
    if sc.latency:
        if sc.kind == "reconnect":
            return set()
        return {c for c, v in rates.items() if not CLIENTS[c].is_fastfeed and v < 0.9 * paced}
    ff = [v for c, v in rates.items() if CLIENTS[c].is_fastfeed and v > 0]
    if not ff:
        return set()
    best = max(ff)
    keep = {peer for _, _, sc, _, kind, peer, _ in TARGETS if sc == scenario and peer}
    return {c for c, v in rates.items()
            if not CLIENTS[c].is_fastfeed and c not in keep and 0 < v * FAR_BELOW <= best}


def measurement_class(sc: Any) -> str:
    """Measurements of one class take about the same wall time (for the ETA)."""
    return "reconnect" if sc.kind == "reconnect" else "latency" if sc.latency else "throughput"


def run_plan(plan: Plan, progress: bool = True,
             on_measurement: Callable[[Measurement], None] | None = None) -> Results:
    from fastfeed.bench.scenarios import CLIENTS, SCENARIOS, clients_for

    res = Results(plan)
    reg = ChildRegistry()
    todo: list[tuple[str, list[str]]] = []
    for name in plan.scenarios:
        sc = SCENARIOS[name]
        cl = [c.name for c in clients_for(sc)]
        if plan.clients:
            cl = [c for c in cl if c in plan.clients]
        if cl:
            todo.append((name, cl))
    # the reconnect scenario runs once per client: its repetitions are the drops
    runs_of: dict[tuple[str, str], int] = {
        (name, c): 1 if SCENARIOS[name].kind == "reconnect" else plan.runs
        for name, cl in todo for c in cl}
    total_of = dict(runs_of)
    bar = Progress(sum(runs_of.values()), enabled=progress)
    guess = {"throughput": plan.duration + 0.8, "latency": plan.latency_duration + 0.8,
             "reconnect": plan.reconnect_drops * (plan.reconnect_stable + 0.2) + 3.0}

    def replan() -> None:
        left: dict[str, int] = {}
        for (name, _c), n in runs_of.items():
            cls = measurement_class(SCENARIOS[name])
            left[cls] = left.get(cls, 0) + n
        bar.plan(left, guess)

    replan()

    def _on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_term) if main_thread else None
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler) if main_thread else None
    server: subprocess.Popen[str] | None = None
    try:
        for name, cl in todo:
            sc = SCENARIOS[name]
            cls = measurement_class(sc)
            dur = plan.latency_duration if sc.latency else plan.duration
            needs_server = any(CLIENTS[c].mode == "e2e" for c in cl)
            url = ""
            server_error = ""
            budgets: dict[str, int] = {}
            if needs_server:
                bar.update(f"{name}: starting simulator")
                try:
                    server, url = start_server(reg, name, plan)
                    res.servers[name] = {"url": url, "pid": server.pid}
                except RuntimeError as exc:
                    server_error = str(exc)
                    res.servers[name] = {"error": server_error}
            first_rates: dict[str, float] = {}
            for r in range(plan.runs):
                now_cl = [c for c in cl if runs_of[(name, c)] > 0]  # runs still to do
                if not now_cl:
                    break
                k = r % len(now_cl)
                order = now_cl[k:] + now_cl[:k]
                for pos, client in enumerate(order):
                    of = res.reduced.get((name, client), total_of[(name, client)])
                    bar.update(f"{name} {client} run {r + 1}/{of}")
                    m = Measurement(name, client, r, pos, "error", wall_started=time.time())
                    t_start = time.monotonic()
                    if CLIENTS[client].mode == "e2e" and not url:
                        m.status, m.reason = "error", f"no simulator: {server_error}"
                    else:
                        cfg = {"scenario": name, "client": client, "url": url,
                               "duration": dur, "plan": plan_knobs(plan),
                               "frames": budgets.get(client) or initial_budget(sc, client, dur)}
                        p = reg.popen(["worker", json.dumps(cfg)])
                        status, payload = _read_result(p, worker_timeout(plan, sc, dur))
                        reg.stop(p)
                        if status == "ok":
                            if "unavailable" in payload:
                                m.status, m.reason = "unavailable", payload["unavailable"]
                            elif "error" in payload:
                                m.status, m.reason = "error", payload["error"]
                            else:
                                m.status, m.sample = "ok", payload
                                if not sc.latency and CLIENTS[client].mode == "e2e":
                                    budgets[client] = burst_frames(
                                        sc, payload["events_per_s"] * dur)
                                if r == 0:
                                    first_rates[client] = float(payload["events_per_s"])
                        else:
                            m.status, m.reason = status, payload
                    m.elapsed = time.monotonic() - t_start
                    res.measurements.append(m)
                    if on_measurement is not None:
                        on_measurement(m)
                    bar.step(f"{name} {client} run {r + 1}/{of}: {m.status}", cls, m.elapsed)
                    runs_of[(name, client)] -= 1
                if r == 0 and first_rates and plan.far_runs < plan.runs:
                    for c in far_below(name, first_rates, plan.latency_rate):
                        res.reduced[(name, c)] = plan.far_runs
                        runs_of[(name, c)] = max(0, plan.far_runs - 1)
                    replan()
            if server is not None:
                reg.stop(server)
                server = None
    except KeyboardInterrupt:
        res.interrupted = True
    finally:
        reg.stop_all()
        bar.close()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
    res.finished = time.time()
    return res


# ============================================================================================
# worker


def _worker(cfg: dict[str, Any]) -> dict[str, Any]:
    from fastfeed.bench import peers, scenarios
    from fastfeed.bench.payloads import POLYGON_KINDS, frame_set

    sc = scenarios.SCENARIOS[cfg["scenario"]]
    cl = scenarios.CLIENTS[cfg["client"]]
    dur = float(cfg["duration"])
    url = cfg.get("url", "")
    if cl.mode == "decode":
        fs = frame_set(sc.feed, sc.kind)
        n = fs.total_events
        if cl.name == "ff-decoder":
            s = scenarios.measure_ff_decoder(sc.feed, sc.kind, fs.frames, fs.event_types, n, dur)
        elif cl.name == "tastytrade-decode":
            s = peers.measure_tastytrade_decode(fs.frames, n, dur)
        elif cl.name == "polygon-pkg":
            s = peers.measure_polygon_pkg(fs.frames, n, dur)
        elif cl.name == "orjson-parse":
            s = peers.measure_orjson_parse(sc.feed, fs.frames, n, dur)
        elif cl.name == "msgspec-typed":
            from fastfeed.bench import msgspec_peer

            cluster = POLYGON_KINDS[sc.kind][0] if sc.feed == "polygon" else ""
            s = msgspec_peer.measure(sc.feed, cluster, fs.frames, n, dur)
        else:
            raise ValueError(cl.name)
        return s.to_json()

    kind = sc.kind
    nf = None if sc.latency else int(cfg.get("frames") or 0) or None
    cap = peers.run_cap(dur) + 30.0
    if kind == "reconnect":
        knobs = cfg.get("plan") or {}
        drops = int(knobs.get("reconnect_drops", 20))
        stable = float(knobs.get("reconnect_stable", 1.0))
        give_up = stable + 20.0
        cap = drops * (stable + 5.0) + give_up + 30.0
        coro_fn: Callable[[], Any] = {
            "ff-listen": lambda: scenarios.ff_dxlink_reconnect(url, drops, stable, give_up),
            "tastytrade-streamer": lambda: peers.tastytrade_reconnect_client(url, drops,
                                                                             give_up),
        }[cl.name]
    elif sc.feed == "dxlink":
        coro_fn = {
            "ff-batches": lambda: scenarios.ff_dxlink_client(url, kind, dur, False, nf),
            "ff-listen": lambda: scenarios.ff_dxlink_client(url, kind, dur, True, nf),
            "ff-listen-sdk": lambda: scenarios.ff_dxlink_client(url, kind, dur, True, nf,
                                                                sdk=True),
            "ff-get-event": lambda: scenarios.ff_dxlink_client(url, kind, dur, True, nf,
                                                               get_event=True),
            "ff-listen-busypoll": lambda: scenarios.ff_dxlink_client(url, kind, dur, True, nf,
                                                                     busy_poll=True),
            "ff-listen-nospin": lambda: scenarios.ff_dxlink_client(url, kind, dur, True, nf,
                                                                   idle_spin_us=0),
            "ff-record-raw": lambda: scenarios.ff_dxlink_client(url, kind, dur, False, nf,
                                                                record="raw"),
            "ff-record-columns": lambda: scenarios.ff_dxlink_client(url, kind, dur, False, nf,
                                                                    record="columns"),
            # a recording of at most ~3 M events (recorded then compacted: a few seconds)
            "ff-replay-columns": lambda: scenarios.ff_replay_columns(
                url, kind, dur, min(nf or 1, burst_frames(sc, REPLAY_EVENTS * dur))),
            "tastytrade-streamer": lambda: peers.tastytrade_streamer_client(url, kind, dur, nf),
            "websockets-orjson": lambda: peers.websockets_dxlink_client(url, kind, dur, nf),
        }[cl.name]
    else:
        coro_fn = {
            "ff-batches": lambda: scenarios.ff_polygon_client(url, kind, dur, False, nf),
            "ff-dicts": lambda: scenarios.ff_polygon_client(url, kind, dur, True, nf),
            "massive": lambda: peers.massive_client(url, kind, dur, nf),
            "websockets-orjson": lambda: peers.websockets_polygon_client(url, kind, dur, nf),
        }[cl.name]

    async def main() -> Any:
        return await asyncio.wait_for(coro_fn(), cap)

    try:
        import uvloop

        s = uvloop.run(main())
    except ImportError:
        s = asyncio.run(main())
    out: dict[str, Any] = s.to_json()
    lat = out.pop("latencies_ns", [])
    if lat:
        # warm-up: the first events after connecting (each reconnect sample is a whole drop)
        drop = 0 if kind == "reconnect" else min(len(lat) // 20, 500)
        out["latency_us"] = latency_stats(lat[drop:])
        out["latency_sample_us"] = [round(x / 1000.0, 2) for x in lat[drop:][:20000]]
    return out


def worker_main(arg: str) -> int:
    from fastfeed.bench.peers import Unavailable

    _die_with_parent()
    cfg = json.loads(arg)
    try:
        out = _worker(cfg)
    except Unavailable as exc:
        out = {"unavailable": str(exc)}
    except Exception as exc:  # reported in the table, not a crash of the whole bench  # noqa: BLE001 - the bench reports, never crashes
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    # The event loop may have left stdout non-blocking (libuv does that to inherited pipes):
    # then a large result (latency samples) would be cut at the pipe's 64 KiB. Write it whole.
    sys.stdout.flush()
    fd = sys.stdout.fileno()
    os.set_blocking(fd, True)
    data = memoryview(("RESULT " + json.dumps(out) + "\n").encode())
    while data:
        data = data[os.write(fd, data):]
    os._exit(0)  # do not wait for third-party tear-down (open sockets, task groups)


# ============================================================================================
# simulator process


def _path_budget(path: str) -> int:
    """``/frames=N/...`` in the upgrade path = send a burst of N data frames, then stop."""
    import re

    m = re.search(r"frames=(\d+)", path or "")
    return int(m.group(1)) if m else 1 << 62


class _BenchFrames:
    """The frames a simulator connection sends in a bench scenario (payloads.py, in rotation)."""

    def __init__(self, scenario: str) -> None:
        from fastfeed.bench.scenarios import SCENARIOS

        self.sc = SCENARIOS[scenario]
        self._dx_cache: dict[tuple[tuple[str, int], ...], list[tuple[str, bytes, int]]] = {}
        self._pg: list[bytes] = []
        if self.sc.feed == "polygon" and not self.sc.latency:
            from fastfeed.bench.payloads import POLYGON_KINDS, polygon_frames

            self._pg = polygon_frames(self.sc.kind, 64)
            self._pg_events = POLYGON_KINDS[self.sc.kind][1]

    def dxlink(self, channels: dict[str, int]) -> list[tuple[str, bytes, int]]:
        """Frames of this scenario for the types subscribed on ``channels`` (type -> channel)."""
        from fastfeed.bench.payloads import DXLINK_KINDS, dxlink_frames

        key = tuple(sorted(channels.items()))
        got = self._dx_cache.get(key)
        if got is None:
            per = DXLINK_KINDS[self.sc.kind][1]
            got = [(t, f, per) for t, f in dxlink_frames(self.sc.kind, self.sc.distinct,
                                                          channels)
                   if t in channels]
            self._dx_cache[key] = got
        return got


def _strip_budget(path: str) -> str:
    import re

    return re.sub(r"/frames=\d+", "", path or "/") or "/"


#: paced rate (events/s, 1-Quote frames) of the reconnect scenario: the first frame of a new
#: connection is sent as soon as it subscribes, whatever the rate
RECONNECT_RATE = 500.0


def _make_server(scenario: str, rate: float, stable: float = 1.0) -> Any:
    """The :mod:`fastfeed.sim` server of this scenario's feed, sending the bench's frames.

    The protocol (handshake, auth, channels, FEED_SETUP/FEED_CONFIG, subscriptions, statuses,
    keepalives) is the simulator's own; only two hooks change: ``build_data_frame`` returns the
    deterministic frames of :mod:`fastfeed.bench.payloads` (so the end-to-end clients receive
    exactly the frames the decode measurements parse) and ``has_data`` ends the burst after the
    number of frames the client asked for in its URL (``/frames=N``). DXLink fields are
    announced in tastytrade's order (the frames' order) whatever the client requested, which
    the protocol allows: clients decode by FEED_CONFIG's ``eventFields``.
    """
    from fastfeed.bench.payloads import DX_FIELDS, dxlink_latency_frame, polygon_latency_frame

    frames = _BenchFrames(scenario)
    sc = frames.sc
    knobs: dict[str, Any] = {"record": False, "rate": None, "events_per_frame": 1,
                             "pool_frames": sc.distinct}
    if sc.latency:
        knobs.update(rate=RECONNECT_RATE if sc.kind == "reconnect" else rate,
                     events_per_frame=1)

    if sc.feed == "dxlink":
        from fastfeed.dxlink.sim import DXLinkConnection, DXLinkServer

        class BenchDXConn(DXLinkConnection):
            def __init__(self, *a: Any) -> None:
                super().__init__(*a)
                self.budget = _path_budget(self.path)
                self.k = 0
                self.drop_timer: Any = None

            def _server_drop(self) -> None:
                """The reconnect scenario's fault: a TCP abort, its time kept for the stamps."""
                if self.closed or self.disconnected:
                    return
                srv: Any = self.server
                srv.last_drop_ns = time.monotonic_ns()
                srv.drops += 1
                self.abort()

            def _fields_for(self, etype: str, requested: list[str] | None) -> list[str]:
                if etype in DX_FIELDS:
                    return list(DX_FIELDS[etype])
                return super()._fields_for(etype, requested)

            def has_data(self) -> bool:
                return bool(super().has_data()) and self.frames_sent < self.budget

            def build_data_frame(self, n_events: int,
                                 min_bytes: int = 0) -> tuple[bytes, int] | None:
                chans = [c for c in self.channels.values() if c.pairs]
                if not chans:
                    return None
                self.k += 1
                if sc.latency:
                    quote = [c for c in chans if any(t == "Quote" for t, _ in c.subs)]
                    if not quote:
                        return None
                    c = quote[self.k % len(quote)]
                    self._announce(c, ["Quote"])  # FEED_CONFIG once, before the first frame
                    if sc.kind == "reconnect":  # eventTime = the time of the latest drop
                        if self.drop_timer is None:
                            self.drop_timer = self.call_later(stable, self._server_drop)
                        srv: Any = self.server
                        return dxlink_latency_frame(srv.last_drop_ns, self.k, c.number), 1
                    # stamped last: the frame is written right after this returns
                    return dxlink_latency_frame(time.monotonic_ns(), self.k, c.number), 1
                c = chans[self.k % len(chans)]
                types = sorted({t for t, _ in c.subs if t in DX_FIELDS})
                pool = frames.dxlink(dict.fromkeys(types, c.number))
                if not pool:
                    return None
                etype, payload, n = pool[(self.k // len(chans)) % len(pool)]
                self._announce(c, [etype])
                return payload, n

        class BenchDXServer(DXLinkServer):
            last_drop_ns = 0  # reconnect scenario: monotonic ns of the latest drop
            drops = 0

            def make_connection(self, request: Any, conn_id: int) -> Any:
                return BenchDXConn(self, conn_id, request.path.decode("latin-1"))

        return BenchDXServer(check_token=False, edge_rate=0.0, **knobs)

    from fastfeed.polygon.sim import PolygonConnection, PolygonServer
    from fastfeed.sim.generators import cluster_of_path

    class BenchPGConn(PolygonConnection):
        def __init__(self, *a: Any) -> None:
            super().__init__(*a)
            self.budget = _path_budget(self.path)
            self.k = 0

        def has_data(self) -> bool:
            return bool(super().has_data()) and self.frames_sent < self.budget

        def build_data_frame(self, n_events: int, min_bytes: int = 0) -> tuple[bytes, int] | None:
            self.k += 1
            if sc.latency:
                return polygon_latency_frame(time.monotonic_ns(), self.k), 1
            return frames._pg[self.k % len(frames._pg)], frames._pg_events

    class BenchPGServer(PolygonServer):
        def make_connection(self, request: Any, conn_id: int) -> Any:
            path = request.path.decode("latin-1")
            cluster = cluster_of_path(_strip_budget(path))
            if cluster is None:
                return None
            return BenchPGConn(self, conn_id, path, cluster)

    cluster = "crypto" if sc.kind == "cryptol2" else "stocks"
    return BenchPGServer(cluster=cluster, api_key=None, auth_timeout=None, quirks=False, **knobs)


async def _serve_async(scenario: str, rate: float, stable: float = 1.0) -> None:
    srv = _make_server(scenario, rate, stable)
    await srv.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # the parent closing our stdin also means stop
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(
        sys.stdin.fileno(), 4096) else None)
    sys.stdout.write(f"READY ws://{srv.host}:{srv.port}\n")
    sys.stdout.flush()
    await stop.wait()
    try:
        await asyncio.wait_for(srv.stop(), 2.0)
    except Exception:  # noqa: BLE001 - the bench reports, never crashes
        pass


def serve_main(argv: list[str]) -> int:
    _die_with_parent()
    ap = argparse.ArgumentParser(prog="fastfeed.bench._runner serve")
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--stable", type=float, default=1.0)
    a = ap.parse_args(argv)
    try:
        import uvloop

        uvloop.run(_serve_async(a.scenario, a.rate, a.stable))
    except ImportError:
        asyncio.run(_serve_async(a.scenario, a.rate, a.stable))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m fastfeed.bench._runner serve|worker ...", file=sys.stderr)
        return 2
    if argv[0] == "worker":
        return worker_main(argv[1])
    if argv[0] == "serve":
        return serve_main(argv[1:])
    print(f"unknown command {argv[0]!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
