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

PACKAGES = ("picows", "uvloop", "orjson", "msgspec", "tastytrade", "massive", "polygon",
            "websockets", "numpy", "pydantic")


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
            entry["not_recorded_runs"] = sum(1 for m in oks if m.sample.get("not_recorded"))
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
            infos = [m.sample["info"] for m in oks if m.sample.get("info")]
            if infos:
                entry["info"] = infos[-1]
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
                # peers, and fastfeed's own batch path for its per-object end-to-end paths
                if CLIENTS[peer].is_fastfeed and not (
                        peer == "ff-batches" and ff != peer and CLIENTS[ff].mode == "e2e"
                        and CLIENTS[ff].vs_batches):
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
    ("dx-e2e-sdk-vs-tt", "DXLink listen() SDK-faithful events >= 10x tastytrade's streamer",
     "dxlink-quote100", "ff-listen-sdk", "ratio", "tastytrade-streamer", 10.0),
    ("dx-e2e-listen-vs-batches", "DXLink listen() objects >= 60% of listen_batches",
     "dxlink-quote100", "ff-listen", "ratio", "ff-batches", 0.6),
    ("dx-e2e-get-event-vs-batches", "DXLink get_event() objects >= 60% of listen_batches",
     "dxlink-quote100", "ff-get-event", "ratio", "ff-batches", 0.6),
    ("pg-decode-rate", "polygon decode >= 8 M ev/s", "polygon-stocks100", "ff-decoder",
     "rate", None, 8e6),
    ("pg-decode-vs-orjson", "polygon decode >= 4x orjson + field access", "polygon-stocks100",
     "ff-decoder", "ratio", "orjson-parse", 4.0),
    ("pg-e2e-batches", "polygon end to end batch handler >= 8 M ev/s", "polygon-stocks100",
     "ff-batches", "rate", None, 8e6),
    ("pg-e2e-batches-1ev", "polygon 1-event frames, batch handler >= 5 M ev/s",
     "polygon-stocks1", "ff-batches", "rate", None, 5e6),
    ("pg-dicts-vs-polygon", "polygon dict handlers >= 2.5x the polygon package",
     "polygon-stocks100", "ff-dicts", "ratio", "polygon-pkg", 2.5),
    ("pg-dicts-vs-massive", "polygon dict handlers >= 10x Massive", "polygon-stocks100",
     "ff-dicts", "ratio", "massive", 10.0),
    ("dx-decode-vs-msgspec", "DXLink 100-Quote decode >= 6x msgspec typed Structs",
     "dxlink-quote100", "ff-decoder", "ratio", "msgspec-typed", 6.0),
    ("dx-tns-decode-vs-msgspec", "DXLink 100-TimeAndSale decode >= 4x msgspec typed Structs",
     "dxlink-tns100", "ff-decoder", "ratio", "msgspec-typed", 4.0),
    ("pg-decode-vs-msgspec", "polygon 100-event decode >= 4x msgspec typed Structs",
     "polygon-stocks100", "ff-decoder", "ratio", "msgspec-typed", 4.0),
    ("pg-1ev-decode-vs-msgspec", "polygon 1-event frames decode >= 3x msgspec typed Structs",
     "polygon-stocks1", "ff-decoder", "ratio", "msgspec-typed", 3.0),
    ("pg-xl2-decode-vs-msgspec", "polygon XL2 books decode >= 4x msgspec typed Structs",
     "polygon-cryptol2", "ff-decoder", "ratio", "msgspec-typed", 4.0),
    ("rec-raw-vs-batches", "recording raw costs <= 10% of listen_batches (>= 0.9x)",
     "record-dxlink", "ff-record-raw", "ratio", "ff-batches", 0.9),
    ("rec-columns-vs-batches", "recording columns costs <= 10% of listen_batches (>= 0.9x)",
     "record-dxlink", "ff-record-columns", "ratio", "ff-batches", 0.9),
    ("rec-replay-rate", "replay of recorded columns into listen_batches >= 10 M ev/s",
     "record-dxlink", "ff-replay-columns", "rate", None, 10e6),
    ("latency-p99", "latency p99 <= 50 us (fastfeed dict handler)", "latency", "ff-dicts",
     "p99", None, 50.0),
    ("latency-p99-batches", "latency p99 <= 50 us (fastfeed batches)", "latency", "ff-batches",
     "p99", None, 50.0),
    ("latency-dx-p50", "latency p50 <= 20 us (DXLink listen())", "latency-dxlink", "ff-listen",
     "p50", None, 20.0),
    ("latency-dx-p99", "latency p99 <= 50 us (DXLink listen())", "latency-dxlink", "ff-listen",
     "p99", None, 50.0),
    ("latency-dx-p999", "latency p99.9 <= 200 us (DXLink listen())", "latency-dxlink",
     "ff-listen", "p999", None, 200.0),
    ("latency-dx-bp-p50", "latency p50 <= 20 us (DXLink listen(), busy_poll=True)",
     "latency-dxlink", "ff-listen-busypoll", "p50", None, 20.0),
    ("latency-dx-bp-p99", "latency p99 <= 50 us (DXLink listen(), busy_poll=True)",
     "latency-dxlink", "ff-listen-busypoll", "p99", None, 50.0),
]

#: target kinds read from a client's latency percentiles (µs, lower is better)
_LATENCY_KINDS = ("p50", "p99", "p999")


def check_targets(agg: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tid, text, sc, cl, kind, peer, thr in TARGETS:
        row: dict[str, Any] = {"id": tid, "target": text, "scenario": sc, "client": cl,
                               "peer": peer, "kind": kind, "threshold": thr, "value": None,
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
        if ok and e.get("not_recorded_runs"):   # a recording that lost data costs no less
            ok = False
            row["reason"] = (f"the writer fell behind in {e['not_recorded_runs']} run(s): "
                             "messages not recorded (counted)")
        row["status"] = "met" if ok else "MISSED"
        out.append(row)
    return out


# ============================================================================================
# machine load


#: below this median ``busy`` of the in-process decode rows, the machine is called busy
BUSY_THRESHOLD = 0.90


def machine_load(res: Results, agg: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """Was the machine busy during the run? ``busy`` = CPU seconds ÷ wall seconds.

    The decode rows are the gauge: they loop in-process with nothing to wait for, so on a quiet
    machine their ``busy`` is about 100 %; less means the scheduler gave their CPU to other
    processes. (End-to-end rows may wait on the sender, so they are used only if no decode row
    ran.) The load average at the start and at the end is compared with the core count.
    """
    decode: list[float] = []
    other: list[float] = []
    for m in res.measurements:
        if m.status != "ok" or not m.sample or m.sample.get("latency_us"):
            continue
        wall = m.sample.get("wall_s") or 0.0
        if wall <= 0 or m.client not in CLIENTS:
            continue
        (decode if CLIENTS[m.client].mode == "decode" else other).append(
            m.sample["cpu_s"] / wall)
    gauge = decode or other
    busy = statistics.median(gauge) if gauge else None
    mach = env.get("machine", {})
    cores = mach.get("cpu_count") or 1
    loads = [x for x in (mach.get("loadavg", [None])[0],
                         (mach.get("loadavg_end") or [None])[0])
             if x is not None and not math.isnan(x)]
    reasons = []
    if busy is not None and busy < BUSY_THRESHOLD:
        reasons.append(f"median busy of the {'decode' if decode else 'end-to-end'} rows "
                       f"{busy * 100:.0f} % (below {BUSY_THRESHOLD * 100:.0f} %)")
    if loads and max(loads) > cores:
        reasons.append(f"load average {max(loads):.1f} above the {cores} cores")
    return {"busy_median": busy, "busy_gauge": "decode" if decode else "e2e",
            "load_max": max(loads) if loads else None, "cores": cores,
            "is_busy": bool(reasons), "reasons": reasons}


def busy_warning(load: dict[str, Any]) -> list[str]:
    """The warning block printed at the top and with the verdicts (empty if not busy)."""
    if not load["is_busy"]:
        return []
    bar = "!" * 98
    return [bar,
            "!! WARNING: the machine was busy during this run: " + "; ".join(load["reasons"]),
            "!! Other processes took CPU from the clients: rates are low, tails are long, and a",
            "!! MISSED verdict may be the machine's. Compare the 'ev per CPU-s' figures and",
            "!! re-run on a quiet machine before drawing conclusions.",
            bar]


LEGEND = """\
legend:
   *              a fastfeed row; the others are peers (SDKs) and baselines
   (decode)       in-process over the scenario's frames, no socket
   (e2e)          a separate client process over the simulator on 127.0.0.1
   events/s       events per wall-clock second: median [min–max] over the runs
   ev per CPU-s   events per second of the client's own CPU time (time.process_time), median;
                  the fairer figure when the machine is shared
   CPU s          the client's CPU seconds in one run (median)
   busy           CPU s ÷ wall s of the run. A decode row has nothing to wait for, so below
                  ~100 % another process had its CPU; an e2e row may also wait for the sender
   ratios         fastfeed ÷ peer events/s, taken inside each repetition (clients back to
                  back, order rotated), then median [min–max] over the repetitions
   n runs         a peer 20x or more below fastfeed (or, in a latency scenario, one that fell
                  behind the paced stream) runs fewer times: ratios that large do not move a
                  verdict; every row a target compares runs every time
   p50/p99/p99.9  latency percentiles in µs from the server's send to the consumer, median
                  [min–max] over runs; pooled = percentiles of all runs' samples together
   reconnect      ms from the server's TCP drop to the first event of the new connection,
                  per drop (median [min–max] of the runs' percentiles, and pooled)"""


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
                 "rotated), then the median [min–max] of those ratios is shown; legend below")
    load = machine_load(res, agg, env)
    lines += busy_warning(load)
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
            except Exception:  # noqa: BLE001 - the bench reports, never crashes
                pass
        elif sc.kind == "reconnect":
            head += (f" ({p.reconnect_drops} drops per client, each after "
                     f"{p.reconnect_stable:g} s of data)")
        else:
            head += f" ({p.latency_rate:,.0f} ev/s, {p.latency_duration:g} s per run)"
        lines.append(head)
        if sc.kind == "reconnect":
            lines += _reconnect_rows(rows)
            lines.append("")
            continue
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
                              "latency includes its backlog"
                              + (f"; {e['runs']} runs" if (sc_name, cname) in res.reduced
                                 else "") + ")")
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
                if e.get("not_recorded_runs"):
                    flags.append(f"{e['not_recorded_runs']} run(s) did not record everything: "
                                 "the writer fell behind, its losses counted")
                if e["ok"] < e["runs"]:
                    flags.append(f"{e['runs'] - e['ok']} run(s) failed")
                if (sc_name, cname) in res.reduced:
                    flags.append(f"{e['runs']} runs: 20x or more below fastfeed")
                lines.append(
                    f"   {label:<{w}} {_rng(e['events_per_s']):>26} "
                    f"{_m(eps):>14} {e['cpu_s']['median']:>6.2f} {busy_s:>5}"
                    + (f"  ({'; '.join(flags)})" if flags else ""))
        infos = [(c, e["info"]) for c, e in rows.items()
                 if not c.startswith("_") and e.get("status") == "ok" and e.get("info")]
        if sc.notes or infos:
            lines += [f"   {sc.notes}"] if sc.notes else []
            lines += [f"     {c}: {info} (last run)" for c, info in infos]
        ratios = rows.get("_ratios", {})
        if ratios and not sc.latency:
            lines.append("   fastfeed vs peers (events/s ratio):")
            for ff, peers_ in ratios.items():
                parts = ", ".join(f"{_rx(s)} {peer}" for peer, s in peers_.items())
                lines.append(f"     {ff:<16} {parts}")
        lines.append("")
    lines += format_targets(res, agg, targets, load)
    lines.append("")
    v = env["versions"]
    mach = env["machine"]
    lines.append("versions: " + ", ".join(f"{k} {v[k] or 'not installed'}" for k in v))
    lines.append(f"machine: {mach['cpu_model']}, {mach['cpu_count']} cores, {mach['platform']},"
                 f" load avg {', '.join(f'{x:.2f}' for x in mach['loadavg'])} at start"
                 + (f", {', '.join(f'{x:.2f}' for x in mach['loadavg_end'])} at end"
                    if mach.get("loadavg_end") else ""))
    lines.append("")
    lines.append(LEGEND)
    return "\n".join(lines)


def _reconnect_rows(rows: dict[str, Any]) -> list[str]:
    """The reconnect scenario's rows: recovery times in ms, and the settings both clients had."""
    from fastfeed.bench.peers import backoff_settings

    b = backoff_settings()
    backoff = ", ".join(f"WEBSOCKETS_BACKOFF_{k}={v:g}" for k, v in b.items())
    out = [("   the server aborts the TCP connection after each period of data; recovery = "
            "the drop to the first event of the new connection (reconnect, handshake, "
            "subscription)"),
           (f"   both clients: {backoff}; fastfeed's stability_window (where it has one) is set "
            "below the drop period, so every drop follows a stable connection"),
           ("   tastytrade 13.2.3 has no reconnect: its row is the application loop that "
            "re-enters `async with DXLinkStreamer` and subscribes again"),
           (f"   {'client':<46} {'drops':>5} {'median ms':>10} {'p99 ms':>10} {'max ms':>10}"
            "  note")]
    for cname, e in rows.items():
        if cname.startswith("_"):
            continue
        c = CLIENTS[cname]
        label = f"{'*' if c.is_fastfeed else ' '} {cname} ({c.mode})"
        if e.get("status") != "ok":
            status = "not available" if e.get("status") == "unavailable" else e.get("status")
            out.append(f"   {label:<46} {status}: {str(e.get('reason', ''))[:110]}")
            continue
        pooled = e.get("latency_pooled_us") or {}
        n = int(pooled.get("n", 0))

        def ms(k: str, pooled: dict[str, Any] = pooled) -> str:
            v = pooled.get(k)
            return "-" if v is None or math.isnan(v) else f"{v / 1000.0:.2f}"

        out.append(f"   {label:<46} {n:>5} {ms('p50'):>10} {ms('p99'):>10} {ms('max'):>10}"
                   f"  {str(e.get('note', ''))[:80]}")
    return out


def _cpu_note(agg: dict[str, Any], t: dict[str, Any]) -> str:
    """Events per CPU-second (and busy) of a rate or ratio target's rows."""
    rows = agg.get(t["scenario"], {})

    def one(client: str) -> tuple[str, str] | None:
        e = rows.get(client)
        if not e or e.get("status") != "ok" or not e.get("events_per_cpu_s"):
            return None
        busy = e.get("cpu_busy")
        return _m(e["events_per_cpu_s"]["median"]), (
            f"{busy['median'] * 100:.0f}%" if busy else "-")

    ff = one(t["client"])
    if ff is None:
        return ""
    if t["kind"] == "ratio" and t.get("peer"):
        pe = one(t["peer"])
        if pe is not None:
            return (f" — ev per CPU-s {ff[0]} vs {pe[0]} (busy {ff[1]} / {pe[1]})")
    return f" — {ff[0]} ev per CPU-s (busy {ff[1]})"


def format_targets(res: Results, agg: dict[str, Any], targets: list[dict[str, Any]],
                   load: dict[str, Any]) -> list[str]:
    """The verdicts: every target of a scenario in this run, with a figure or a reason."""
    lines = ["== targets"]
    lines += busy_warning(load)
    ran = set(res.plan.scenarios)
    shown = [t for t in targets if t["scenario"] in ran]
    skipped = sorted({t["scenario"] for t in targets if t["scenario"] not in ran})
    for t in shown:
        if t["value"] is None:
            why = t.get("reason") or (
                "client not in this run" if res.plan.clients and t["client"] not in
                res.plan.clients else "no result")
            if t["status"] == "peer not measured" and not t.get("reason"):
                why = f"{t.get('peer')} not in this run"
            val = why[:110]
        elif t.get("kind") in _LATENCY_KINDS:
            pc = t.get("percentiles_us") or {}
            val = f"{t['value']:.1f} µs" + (
                f" (p50 {_us(pc['p50'])} / p99 {_us(pc['p99'])} / p99.9 {_us(pc['p999'])} µs)"
                if pc else "")
        elif t.get("kind") == "ratio":
            val = _x(t["value"]) + _cpu_note(agg, t)
        else:
            val = f"{_m(t['value'])} ev/s" + _cpu_note(agg, t)
        mark = {"met": "[met]   ", "MISSED": "[MISSED]"}.get(t["status"], f"[{t['status']}]")
        extra = (f" — {t['reason'][:90]}" if t.get("reason") and t["status"] != "met"
                 and t["value"] is not None else "")
        lines.append(f"   {mark} {t['target']}: {val} ({t['scenario']} / {t['client']}){extra}")
    missed = [t for t in shown if t["status"] == "MISSED"]
    unmeasured = [t for t in shown if t["status"] not in ("met", "MISSED")]
    summary = (f"   {len(shown) - len(missed) - len(unmeasured)} met, {len(missed)} MISSED, "
               f"{len(unmeasured)} not measured")
    if skipped:
        summary += (f"; {len(targets) - len(shown)} more not checked (scenarios not in this "
                    f"run: {', '.join(skipped)})")
    if res.plan.quick:
        summary += " — targets are stated for the full run; --quick figures are a smoke test"
    if load["is_busy"]:
        summary += " — the machine was BUSY (see the warning)"
    lines.append(summary)
    return lines


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
        "machine_load": machine_load(res, agg, env),
        "reduced_runs": [{"scenario": sc, "client": c, "runs": n}
                         for (sc, c), n in sorted(res.reduced.items())],
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


def client_colours() -> dict[str, Any]:
    """One colour per client, the same in every panel (fixed by the client catalogue order)."""
    import matplotlib

    palette: list[Any] = [matplotlib.colormaps["tab10"](i) for i in range(10)]
    palette += ["black", "gold", "navy", "lime", "magenta", "teal", "maroon", "olive", "coral"]
    return {name: palette[i % len(palette)] for i, name in enumerate(CLIENTS)}


def write_plot(path: str, res: Results, agg: dict[str, Any]) -> str | None:
    """Throughput bars (log scale, min–max whiskers), latency CDFs and reconnect times.

    Returns None when written, else why not (matplotlib missing, nothing to plot, an error):
    the bench reports it and goes on.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("matplotlib is not installed (pip install 'fastfeed[bench]'): "
                "no plot written")
    try:
        return _draw(plt, path, res, agg)
    except Exception as exc:  # noqa: BLE001 - the bench reports, never crashes
        plt.close("all")
        return f"plot not written: {type(exc).__name__}: {exc}"


def _samples(res: Results, sc: str, cname: str) -> list[float]:
    out: list[float] = []
    for m in res.measurements:
        if m.scenario == sc and m.client == cname and m.status == "ok" and m.sample:
            out += m.sample.get("latency_sample_us", [])
    return out


def _draw(plt: Any, path: str, res: Results, agg: dict[str, Any]) -> str | None:
    colour = client_colours()
    scen = [s for s in res.plan.scenarios if s in agg]
    thr = [s for s in scen if not SCENARIOS[s].latency]
    lat = [s for s in scen if SCENARIOS[s].latency and SCENARIOS[s].kind != "reconnect"]
    rec = [s for s in scen if SCENARIOS[s].kind == "reconnect"]
    panels = [p for p, on in (("thr", thr), ("lat", lat), ("rec", rec)) if on]
    if not panels:
        return "nothing to plot"
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 5.5 * len(panels)), squeeze=False)
    for ax_row, panel in zip(axes, panels, strict=True):
        ax = ax_row[0]
        if panel == "thr":
            names = [c for c in CLIENTS if any(
                agg[sc].get(c, {}).get("status") == "ok" for sc in thr)]
            width = 0.8 / max(1, len(names))
            for j, cname in enumerate(names):
                xs, ys, lo, hi = [], [], [], []
                for i, sc in enumerate(thr):
                    e = agg[sc].get(cname)
                    if not e or e.get("status") != "ok":
                        continue
                    st = e["events_per_s"]
                    xs.append(i + (j - len(names) / 2) * width + width / 2)
                    ys.append(st["median"])
                    lo.append(st["median"] - st["min"])
                    hi.append(st["max"] - st["median"])
                ax.bar(xs, ys, width, yerr=[lo, hi], label=cname, color=colour[cname],
                       capsize=2, hatch="" if CLIENTS[cname].is_fastfeed else "//",
                       edgecolor="black", linewidth=0.3)
            ax.set_xticks(range(len(thr)))
            ax.set_xticklabels(thr, rotation=15)
            ax.set_yscale("log")
            ax.set_ylabel("events/s (median, min–max)")
            ax.set_title("throughput (hatched = peers and baselines)")
            ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.16))
            ax.grid(axis="y", which="both", alpha=0.3)
        elif panel == "lat":
            styles = ["-", "--", ":", "-."]
            for k, sc in enumerate(lat):
                for cname, e in agg[sc].items():
                    if cname.startswith("_") or e.get("status") != "ok":
                        continue
                    pooled = sorted(_samples(res, sc, cname))
                    if not pooled:
                        continue
                    n = len(pooled)
                    label = f"{cname}, {sc} (n={n})" if len(lat) > 1 else f"{cname} (n={n})"
                    ax.plot(pooled, [(i + 1) / n for i in range(n)], label=label,
                            color=colour[cname], linestyle=styles[k % len(styles)])
            ax.set_xscale("log")
            ax.set_xlabel("µs from server send to consumer")
            ax.set_ylabel("fraction of events")
            ax.axvline(50, color="grey", linestyle=":", label="50 µs (p99 target)")
            ax.set_title(f"latency CDF, {res.plan.latency_rate:,.0f} ev/s paced "
                         "(line style = scenario)")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        else:
            for sc in rec:
                for cname, e in agg[sc].items():
                    if cname.startswith("_") or e.get("status") != "ok":
                        continue
                    ms = sorted(x / 1000.0 for x in _samples(res, sc, cname))
                    if not ms:
                        continue
                    n = len(ms)
                    ax.plot(ms, [(i + 1) / n for i in range(n)], marker=".",
                            label=f"{cname} ({n} drops)", color=colour[cname])
            ax.set_xscale("log")
            ax.set_xlabel("ms from the server's drop to the first event after resubscription")
            ax.set_ylabel("fraction of drops")
            ax.set_title("reconnect: recovery time after a server-side drop")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legends below the axes included
    plt.close(fig)
    return None
