"""``python -m fastfeed.bench`` — fastfeed against tastytrade, polygon, Massive and baselines.

With no arguments: every scenario, 5 runs of 1 s per measurement, the simulator in its own
process on 127.0.0.1, no network and no credentials needed. See ``bench/README.md`` for the
method and ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from fastfeed.bench._runner import Plan, run_plan
from fastfeed.bench.scenarios import CLIENTS, SCENARIOS

QUICK_SCENARIOS = ["dxlink-quote100", "polygon-stocks100", "latency", "latency-dxlink",
                   "reconnect-dxlink", "record-dxlink"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m fastfeed.bench",
        description="Measure fastfeed's decoders and streamers against the tastytrade SDK, the "
                    "polygon package, Massive and a websockets+orjson baseline, over a local "
                    "simulator started in a separate process.",
    )
    ap.add_argument("--scenario", action="append", metavar="NAME",
                    help="run only this scenario (repeatable; prefix match, e.g. 'dxlink'). "
                         f"Known: {', '.join(SCENARIOS)}")
    ap.add_argument("--client", action="append", metavar="NAME",
                    help=f"run only this client (repeatable). Known: {', '.join(CLIENTS)}")
    ap.add_argument("--runs", type=int, default=None,
                    help="repetitions per measurement (default 5; 1 with --quick)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds per throughput measurement (default 1.0; 0.3 with --quick)")
    ap.add_argument("--latency-duration", type=float, default=None,
                    help="seconds per latency measurement (default 3; 1 with --quick)")
    ap.add_argument("--rate", type=float, default=10_000.0,
                    help="events/s of the paced latency stream (default 10000)")
    ap.add_argument("--reconnect-drops", type=int, default=None,
                    help="server-side drops per client in reconnect-dxlink (default 20; 3 "
                         "with --quick)")
    ap.add_argument("--reconnect-stable", type=float, default=None,
                    help="seconds of data on a connection before the server drops it "
                         "(default 1.0; 0.5 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke run (< 60 s): quote100, stocks100, both latency "
                         "scenarios, reconnect and recording, 1 short run")
    ap.add_argument("--json", metavar="PATH", help="write every raw figure to PATH (JSON)")
    ap.add_argument("--plot", metavar="PATH",
                    help="where to write the PNG (throughput bars, latency and reconnect "
                         "CDFs; needs matplotlib). Default: "
                         "build/fastfeed-bench-<date>-<time>.png")
    ap.add_argument("--no-plot", action="store_true", help="write no plot")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--list", action="store_true", help="list scenarios and clients and exit")
    return ap


def default_plot_path() -> str:
    return os.path.join("build", time.strftime("fastfeed-bench-%Y%m%d-%H%M%S.png"))


def _ensure_parent(path: str) -> bool:
    parent = os.path.dirname(path)
    try:
        if parent:
            os.makedirs(parent, exist_ok=True)
    except OSError:
        return False
    return True


def _select(names: list[str] | None, known: list[str], what: str) -> list[str]:
    if not names:
        return list(known)
    out: list[str] = []
    for n in names:
        hits = [k for k in known if k == n] or [k for k in known if k.startswith(n)]
        if not hits:
            raise SystemExit(f"unknown {what} {n!r}; known: {', '.join(known)}")
        out += [h for h in hits if h not in out]
    return out


def main(argv: list[str] | None = None) -> int:
    from fastfeed.bench import _report

    args = build_parser().parse_args(argv)
    if args.list:
        for name, sc in SCENARIOS.items():
            print(f"{name:<20} {sc.description}")
        print()
        for name, c in CLIENTS.items():
            print(f"{name:<20} {c.mode:<7} {c.label}")
        return 0
    if args.quick:
        default_sc = QUICK_SCENARIOS
        runs, dur, ldur, drops, stable = 1, 0.3, 1.0, 3, 0.5
    else:
        default_sc = list(SCENARIOS)
        runs, dur, ldur, drops, stable = 5, 1.0, 3.0, 20, 1.0
    scenarios = _select(args.scenario, list(SCENARIOS), "scenario") if args.scenario \
        else default_sc
    clients = _select(args.client, list(CLIENTS), "client") if args.client else None
    plan = Plan(
        scenarios=scenarios,
        runs=max(1, args.runs if args.runs is not None else runs),
        duration=args.duration if args.duration is not None else dur,
        latency_duration=args.latency_duration if args.latency_duration is not None else ldur,
        latency_rate=args.rate,
        clients=clients,
        quick=args.quick,
        reconnect_drops=max(1, args.reconnect_drops if args.reconnect_drops is not None
                            else drops),
        reconnect_stable=args.reconnect_stable if args.reconnect_stable is not None
        else stable,
    )
    env = _report.environment()
    res = run_plan(plan, progress=not args.no_progress)
    env_end = _report.environment()
    env["machine"]["loadavg_end"] = env_end["machine"]["loadavg"]
    agg = _report.aggregate(res)
    targets = _report.check_targets(agg)
    print(_report.format_table(res, agg, targets, env))
    if args.json:
        _report.write_json(args.json, _report.to_json(res, agg, targets, env))
        print(f"raw figures written to {args.json}", file=sys.stderr)
    if not args.no_plot:
        path = args.plot or default_plot_path()
        msg = _report.write_plot(path, res, agg) if _ensure_parent(path) else \
            f"cannot create the directory of {path}: no plot written"
        print(msg or f"plot written to {path}")
    if res.interrupted:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
