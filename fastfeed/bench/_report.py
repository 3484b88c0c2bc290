"""Turn :class:`fastfeed.bench._runner.Results` into the table, the JSON file and the plot."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from dataclasses import asdict
from typing import Any

from fastfeed.bench._runner import Results, latency_stats, summarize
from fastfeed.bench.scenarios import CLIENTS, SCENARIOS

__all__ = [
    "TARGETS",
    "aggregate",
    "check_targets",
    "environment",
    "format_table",
    "to_json",
    "write_json",
    "write_plot",
]

PACKAGES = ("picows", "uvloop", "orjson", "tastytrade", "massive", "polygon", "websockets",
            "numpy", "pydantic")


def environment() -> dict[str, Any]:
    """Versions of everything measured, and the machine."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    try:
        from fastfeed._version import __version__ as ffv

        versions["fastfeed"] = ffv
    except Exception:  # noqa: BLE001 - the bench reports, never crashes
        versions["fastfeed"] = None
    versions["python"] = platform.python_version()
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "versions": versions,
        "machine": {
            "cpu_model": cpu,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python_implementation": platform.python_implementation(),
            "python_executable": sys.executable,
            "loadavg": list(load),
        },
    }


# ============================================================================================
# aggregation


def aggregate(res: Results) -> dict[str, Any]:
    """Per scenario and client: medians with min–max; per-repetition ratios; latency."""
    out: dict[str, Any] = {}
    by: dict[tuple[str, str], list[Any]] = {}
    for m in res.measurements:
        by.setdefault((m.scenario, m.client), []).append(m)
    for (sc, cl), ms in by.items():
        oks = [m for m in ms if m.status == "ok" and m.sample]
        entry: dict[str, Any] = {"runs": len(ms), "ok": len(oks)}
        if not oks:
            bad = ms[-1]
            entry["status"] = bad.status
            entry["reason"] = bad.reason
        else:
            entry["status"] = "ok"
            entry["events_per_s"] = summarize([m.sample["events_per_s"] for m in oks])
            entry["events_per_cpu_s"] = summarize(
                [m.sample["events_per_cpu_s"] for m in oks if m.sample.get("events_per_cpu_s")])
            entry["cpu_s"] = summarize([m.sample["cpu_s"] for m in oks])
            entry["wall_s"] = summarize([m.sample["wall_s"] for m in oks])
            entry["cpu_busy"] = summarize([m.sample["cpu_s"] / m.sample["wall_s"]
                                           for m in oks if m.sample["wall_s"] > 0])
            entry["events"] = sum(m.sample["events"] for m in oks)
            entry["lost"] = sum(int(m.sample.get("lost") or 0) for m in oks)
            entry["partial_runs"] = sum(1 for m in oks if "partial" in (m.sample.get("note") or ""))
            lats = [m.sample["latency_us"] for m in oks if m.sample.get("latency_us")]
            if lats:
                entry["latency_us"] = {
                    k: summarize([x[k] for x in lats]) for k in ("p50", "p99", "p999", "max")}
                pooled: list[float] = []
                for m in oks:
                    pooled += m.sample.get("latency_sample_us", [])
                entry["latency_pooled_us"] = latency_stats([int(x * 1000) for x in pooled])
            if any(m.sample.get("note") for m in oks):
                entry["note"] = next(m.sample["note"] for m in oks if m.sample.get("note"))
        out.setdefault(sc, {})[cl] = entry
    # ratios, taken inside each repetition
    for sc, clients in out.items():
        runs: dict[int, dict[str, float]] = {}
        for m in res.measurements:
            if m.scenario == sc and m.status == "ok" and m.sample:
                runs.setdefault(m.run, {})[m.client] = m.sample["events_per_s"]
        ratios: dict[str, dict[str, Any]] = {}
        for ff in clients:
            if not CLIENTS[ff].is_fastfeed:
                continue
            for peer in clients:
                if CLIENTS[peer].is_fastfeed:
                    continue
                vals = [r[ff] / r[peer] for r in runs.values()
                        if ff in r and peer in r and r[peer] > 0]
                s = summarize(vals)
                if s is not None:
                    ratios.setdefault(ff, {})[peer] = s
        clients["_ratios"] = ratios
    return out


# ============================================================================================
# targets


#: (id, text, scenario, client, kind, peer, threshold)
TARGETS: list[tuple[str, str, str, str, str, str | None, float]] = [
    ("dx-decode-rate", "DXLink decode >= 10 M ev/s", "dxlink-quote100", "ff-decoder",
     "rate", None, 10e6),
    ("dx-decode-vs-tt", "DXLink decode >= 50x tastytrade's decode path", "dxlink-quote100",
     "ff-decoder", "ratio", "tastytrade-decode", 50.0),
    ("dx-e2e-batches", "DXLink end to end listen_batches >= 8 M ev/s", "dxlink-quote100",
     "ff-batches", "rate", None, 8e6),
    ("dx-e2e-listen-vs-tt", "DXLink listen() >= 10x tastytrade's DXLinkStreamer",
     "dxlink-quote100", "ff-listen", "ratio", "tastytrade-streamer", 10.0),
    ("pg-decode-rate", "polygon decode >= 8 M ev/s", "polygon-stocks100", "ff-decoder",
     "rate", None, 8e6),
    ("pg-decode-vs-orjson", "polygon decode >= 4x orjson + field access", "polygon-stocks100",
     "ff-decoder", "ratio", "orjson-parse", 4.0),
    ("pg-e2e-batches", "polygon end to end batch handler >= 8 M ev/s", "polygon-stocks100",
     "ff-batches", "rate", None, 8e6),
    ("pg-e2e-batches-1ev", "polygon 1-event frames, batch handler >= 5 M ev/s",
     "polygon-stocks1", "ff-batches", "rate", None, 5e6),
    ("pg-dicts-vs-polygon", "polygon dict handlers >= 1.5x the polygon package",
     "polygon-stocks100", "ff-dicts", "ratio", "polygon-pkg", 1.5),
    ("pg-dicts-vs-massive", "polygon dict handlers >= 4x Massive", "polygon-stocks100",
     "ff-dicts", "ratio", "massive", 4.0),
    ("latency-p99", "latency p99 <= 50 us (fastfeed dict handler)", "latency", "ff-dicts",
     "p99", None, 50.0),
    ("latency-p99-batches", "latency p99 <= 50 us (fastfeed batches)", "latency", "ff-batches",
     "p99", None, 50.0),
    ("latency-dx-p50", "latency p50 <= 20 us (DXLink listen())", "latency-dxlink", "ff-listen",
     "p50", None, 20.0),
    ("latency-dx-p99", "latency p99 <= 50 us (DXLink listen())", "latency-dxlink", "ff-listen",
     "p99", None, 50.0),
    ("latency-dx-bp-p50", "latency p50 <= 20 us (DXLink listen(), busy_poll=True)",
     "latency-dxlink", "ff-listen-busypoll", "p50", None, 20.0),
    ("latency-dx-bp-p99", "latency p99 <= 50 us (DXLink listen(), busy_poll=True)",
     "latency-dxlink", "ff-listen-busypoll", "p99", None, 50.0),
]

#: target kinds read from a client's latency percentiles (µs, lower is better)
_LATENCY_KINDS = ("p50", "p99")


def check_targets(agg: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tid, text, sc, cl, kind, peer, thr in TARGETS:
        row: dict[str, Any] = {"id": tid, "target": text, "scenario": sc, "client": cl,
                               "kind": kind, "threshold": thr, "value": None,
                               "status": "not measured"}
        e = agg.get(sc, {}).get(cl)
        if e is None:
            out.append(row)
            continue
        if e.get("status") != "ok":
            row["status"] = "not available" if e.get("status") == "unavailable" else "error"
            row["reason"] = e.get("reason", "")
            out.append(row)
            continue
        if kind == "rate":
            v = e["events_per_s"]["median"]
            ok = v >= thr
        elif kind == "ratio":
            assert peer is not None
            pe = agg.get(sc, {}).get(peer)
            r = agg.get(sc, {}).get("_ratios", {}).get(cl, {}).get(peer)
            if r is None:
                row["status"] = "peer not measured" if not pe or pe.get("status") != "ok" \
                    else "no paired run"
                if pe and pe.get("status") != "ok":
                    row["reason"] = f"{peer}: {pe.get('reason', '')}"
                out.append(row)
                continue
            v = r["median"]
            ok = v >= thr
        else:  # a latency percentile: median over the runs, in µs
            assert kind in _LATENCY_KINDS, kind
            lat = e.get("latency_us")
            if not lat:
                row["status"] = "no latency figures"
                out.append(row)
                continue
            v = lat[kind]["median"]
            ok = v <= thr
            row["percentiles_us"] = {k: lat[k]["median"] for k in ("p50", "p99", "p999")}
        row["value"] = v
        row["status"] = "met" if ok else "MISSED"
        out.append(row)
    return out


# ============================================================================================
# table


def _m(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"


def _rng(s: dict[str, float] | None, fmt: Any = _m) -> str:
    if not s:
        return "-"
    if s["n"] == 1:
        return str(fmt(s["median"]))
    return f"{fmt(s['median'])} [{fmt(s['min'])}–{fmt(s['max'])}]"


def _x(v: float) -> str:
    return f"{v:.1f}x" if v < 100 else f"{v:.0f}x"


def _rx(s: dict[str, float]) -> str:
    if s["n"] == 1:
        return _x(s["median"])
    return f"{_x(s['median'])} [{_x(s['min'])}–{_x(s['max'])}]"


def _us(v: float) -> str:
    return f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def format_table(res: Results, agg: dict[str, Any], targets: list[dict[str, Any]],
                 env: dict[str, Any]) -> str:
    from fastfeed.bench.payloads import frame_set

    lines: list[str] = []
    p = res.plan
    lines.append("fastfeed benchmark — events/s: median [min–max] over "
                 f"{p.runs} run(s) of {p.duration:g} s each"
                 + (" (INTERRUPTED: partial results)" if res.interrupted else ""))
    lines.append("ratios are taken inside each repetition (clients back to back, order "
                 "rotated), then the median [min–max] of those ratios is shown")
    lines.append("")
    for sc_name in p.scenarios:
        if sc_name not in agg:
            continue
        sc = SCENARIOS[sc_name]
        rows = agg[sc_name]
        head = f"== {sc_name}: {sc.description}"
        if not sc.latency:
            try:
                fs = frame_set(sc.feed, sc.kind)
                head += f" ({fs.total_bytes // len(fs.frames):,} B/frame avg)"
            except Exception:  # noqa: BLE001, S110 - the bench reports, never crashes
                pass
        else:
            head += f" ({p.latency_rate:,.0f} ev/s, {p.latency_duration:g} s per run)"
        lines.append(head)
        srv = res.servers.get(sc_name)
        if srv and srv.get("error"):
            lines.append(f"   simulator failed: {srv['error'][:200]}")
        w = 46
        if sc.latency:
            lines.append(f"   {'client':<{w}} {'p50 µs':>22} {'p99 µs':>22} {'p99.9 µs':>22}"
                         f" {'pooled p50/p99/p99.9':>22}")
        else:
            lines.append(f"   {'client':<{w}} {'events/s':>26} {'ev per CPU-s':>14}"
                         f" {'CPU s':>6} {'busy':>5}")
        for cname, e in rows.items():
            if cname.startswith("_"):
                continue
            c = CLIENTS[cname]
            label = f"{'*' if c.is_fastfeed else ' '} {cname} ({c.mode})"
            if e.get("status") != "ok":
                status = "not available" if e.get("status") == "unavailable" else e.get("status")
                lines.append(f"   {label:<{w}} {status}: {str(e.get('reason', ''))[:110]}")
                continue
            if sc.latency:
                lat = e.get("latency_us")
                pooled = e.get("latency_pooled_us", {})
                if not lat:
                    lines.append(f"   {label:<{w}} no latency figures")
                    continue
                pool = (f"{_us(pooled.get('p50', float('nan')))}/"
                        f"{_us(pooled.get('p99', float('nan')))}/"
                        f"{_us(pooled.get('p999', float('nan')))}")
                behind = ""
                got = e["events_per_s"]["median"]
                if got < 0.9 * p.latency_rate:  # a growing backlog, not a transit time
                    behind = (f"  (fell behind: took {_m(got)} of {_m(p.latency_rate)} ev/s, "
                              "latency includes its backlog)")
                lines.append(f"   {label:<{w}} {_rng(lat['p50'], _us):>22} "
                             f"{_rng(lat['p99'], _us):>22} {_rng(lat['p999'], _us):>22}"
                             f" {pool:>22}" + behind)
            else:
                busy = e.get("cpu_busy")
                busy_s = f"{busy['median'] * 100:.0f}%" if busy else "-"
                eps = e["events_per_cpu_s"]["median"] if e.get("events_per_cpu_s") else None
                flags = []
                if e.get("lost"):
                    flags.append(f"lost {e['lost']:,} events (ring gaps)")
                if e.get("partial_runs"):
                    flags.append(f"{e['partial_runs']} run(s) hit the time cap")
                if e["ok"] < e["runs"]:
                    flags.append(f"{e['runs'] - e['ok']} run(s) failed")
                lines.append(
                    f"   {label:<{w}} {_rng(e['events_per_s']):>26} "
                    f"{_m(eps):>14} {e['cpu_s']['median']:>6.2f} {busy_s:>5}"
                    + (f"  ({'; '.join(flags)})" if flags else ""))
        ratios = rows.get("_ratios", {})
        if ratios and not sc.latency:
            lines.append("   fastfeed vs peers (events/s ratio):")
            for ff, peers_ in ratios.items():
                parts = ", ".join(f"{_rx(s)} {peer}" for peer, s in peers_.items())
                lines.append(f"     {ff:<16} {parts}")
        lines.append("")
    lines.append("== targets")
    for t in targets:
        if t["value"] is None:
            val = ""
        elif t.get("kind") in _LATENCY_KINDS:
            pc = t.get("percentiles_us") or {}
            val = f"{t['value']:.1f} µs" + (
                f" (p50 {_us(pc['p50'])} / p99 {_us(pc['p99'])} / p99.9 {_us(pc['p999'])} µs)"
                if pc else "")
        elif "ratio" in t["id"] or "vs" in t["id"]:
            val = _x(t["value"])
        else:
            val = f"{_m(t['value'])} ev/s"
        mark = {"met": "[met]   ", "MISSED": "[MISSED]"}.get(t["status"], f"[{t['status']}]")
        extra = f" — {t['reason'][:90]}" if t.get("reason") and t["status"] != "met" else ""
        lines.append(f"   {mark} {t['target']}: {val} ({t['scenario']} / {t['client']}){extra}")
    missed = [t for t in targets if t["status"] == "MISSED"]
    unmeasured = [t for t in targets if t["status"] not in ("met", "MISSED")]
    lines.append(f"   {len(targets) - len(missed) - len(unmeasured)} met, {len(missed)} MISSED, "
                 f"{len(unmeasured)} not measured" + (
                     " — targets are stated for the full run; --quick figures are a smoke test"
                     if p.quick else ""))
    lines.append("")
    v = env["versions"]
    mach = env["machine"]
    lines.append("versions: " + ", ".join(f"{k} {v[k] or 'not installed'}" for k in v))
    lines.append(f"machine: {mach['cpu_model']}, {mach['cpu_count']} cores, {mach['platform']},"
                 f" load avg {', '.join(f'{x:.2f}' for x in mach['loadavg'])} at start"
                 + (f", {', '.join(f'{x:.2f}' for x in mach['loadavg_end'])} at end"
                    if mach.get("loadavg_end") else ""))
    lines.append("rows marked * are fastfeed; (decode) = in-process over the same frames, no "
                 "socket; (e2e) = separate client process over the simulator on 127.0.0.1")
    return "\n".join(lines)


# ============================================================================================
# json and plot


def to_json(res: Results, agg: dict[str, Any], targets: list[dict[str, Any]],
            env: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "fastfeed.bench/1",
        "plan": asdict(res.plan),
        "environment": env,
        "interrupted": res.interrupted,
        "started": res.started,
        "finished": res.finished,
        "servers": res.servers,
        "clients": {k: {"mode": c.mode, "label": c.label, "fastfeed": c.is_fastfeed}
                    for k, c in CLIENTS.items()},
        "scenarios": {k: {"feed": s.feed, "kind": s.kind, "description": s.description}
                      for k, s in SCENARIOS.items() if k in res.plan.scenarios},
        "summary": agg,
        "targets": targets,
        "measurements": [asdict(m) for m in res.measurements],
    }


def write_json(path: str, doc: dict[str, Any]) -> None:
    def clean(o: Any) -> Any:
        if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    with open(path, "w") as f:
        json.dump(clean(doc), f, indent=1)
        f.write("\n")


def write_plot(path: str, res: Results, agg: dict[str, Any]) -> str | None:
    """Throughput bars (log scale, min–max whiskers) and a latency CDF; None if no matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot written"
    thr = [s for s in res.plan.scenarios if s in agg and not SCENARIOS[s].latency]
    lat = [s for s in res.plan.scenarios if s in agg and SCENARIOS[s].latency]
    nplots = (1 if thr else 0) + (1 if lat else 0)
    if nplots == 0:
        return "nothing to plot"
    fig, axes = plt.subplots(nplots, 1, figsize=(12, 5 * nplots), squeeze=False)
    ax_i = 0
    if thr:
        ax = axes[ax_i][0]
        ax_i += 1
        names = [c for c in CLIENTS]
        width = 0.8 / len(names)
        cmap = plt.get_cmap("tab10")
        for j, cname in enumerate(names):
            xs, ys, lo, hi = [], [], [], []
            for i, sc in enumerate(thr):
                e = agg[sc].get(cname)
                if not e or e.get("status") != "ok":
                    continue
                s = e["events_per_s"]
                xs.append(i + (j - len(names) / 2) * width + width / 2)
                ys.append(s["median"])
                lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"])
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], label=cname, color=cmap(j % 10),
                       capsize=2, hatch="" if CLIENTS[cname].is_fastfeed else "//")
        ax.set_xticks(range(len(thr)))
        ax.set_xticklabels(thr, rotation=15)
        ax.set_yscale("log")
        ax.set_ylabel("events/s (median, min–max)")
        ax.set_title("throughput (hatched = peers and baselines)")
        ax.legend(fontsize=7, ncol=3)
        ax.grid(axis="y", which="both", alpha=0.3)
    if lat:
        ax = axes[ax_i][0]
        for sc in lat:
            for cname, e in agg[sc].items():
                if cname.startswith("_") or e.get("status") != "ok":
                    continue
                pooled: list[float] = []
                for m in res.measurements:
                    if m.scenario == sc and m.client == cname and m.status == "ok" and m.sample:
                        pooled += m.sample.get("latency_sample_us", [])
                if not pooled:
                    continue
                pooled.sort()
                n = len(pooled)
                label = f"{cname}, {sc} (n={n})" if len(lat) > 1 else f"{cname} (n={n})"
                ax.plot(pooled, [(k + 1) / n for k in range(n)], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("µs from server send to consumer")
        ax.set_ylabel("fraction of events")
        ax.axvline(50, color="grey", linestyle=":", label="50 µs (p99 target)")
        ax.set_title(f"latency CDF, {res.plan.latency_rate:,.0f} ev/s paced")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    _ = statistics
    return None
