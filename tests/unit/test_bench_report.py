"""The bench's report: busy warning, targets with CPU rates and no empty rows, legend, ETA,
fewer runs for far-below peers, and a plot that never crashes the bench."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest

from fastfeed.bench import _report
from fastfeed.bench._runner import Measurement, Plan, Progress, Results, far_below


def _sample(events: int, wall: float, cpu: float) -> dict[str, Any]:
    return {"events": events, "frames": events // 100, "wall_s": wall, "cpu_s": cpu,
            "events_per_s": events / wall, "events_per_cpu_s": events / cpu, "note": "",
            "lost": 0}


def _results(busy: float, scenarios: list[str] | None = None, quick: bool = False) -> Results:
    plan = Plan(scenarios=scenarios or ["dxlink-quote100"], runs=2, quick=quick)
    res = Results(plan)
    for r in range(2):
        for pos, (client, events) in enumerate((("ff-decoder", 10_000_000),
                                                ("tastytrade-decode", 100_000),
                                                ("orjson-parse", 2_000_000))):
            res.measurements.append(Measurement(
                "dxlink-quote100", client, r, pos, "ok", _sample(events, 1.0, busy)))
    return res


def _env(load: float) -> dict[str, Any]:
    return {"versions": {"fastfeed": "0"}, "machine": {
        "cpu_model": "x", "cpu_count": 2, "platform": "p", "loadavg": [load, 0.0, 0.0],
        "loadavg_end": [load, 0.0, 0.0]}}


def _table(res: Results, env: dict[str, Any]) -> str:
    agg = _report.aggregate(res)
    return _report.format_table(res, agg, _report.check_targets(agg), env)


def test_busy_machine_is_warned_with_the_verdicts() -> None:
    out = _table(_results(busy=0.5), _env(0.5))
    assert out.count("WARNING: the machine was busy") == 2  # at the top and with the verdicts
    assert "median busy of the decode rows 50 %" in out
    head, verdicts = out.split("== targets")
    assert "WARNING" in head and "WARNING" in verdicts
    assert "the machine was BUSY" in verdicts


def test_load_above_the_cores_is_warned() -> None:
    out = _table(_results(busy=0.99), _env(3.5))
    assert "load average 3.5 above the 2 cores" in out


def test_quiet_machine_has_no_warning() -> None:
    out = _table(_results(busy=0.99), _env(0.3))
    assert "WARNING" not in out and "BUSY" not in out


def test_targets_show_cpu_rates_and_no_empty_rows() -> None:
    out = _table(_results(busy=0.99), _env(0.3))
    verdicts = out.split("== targets")[1].split("versions:")[0]
    rate = next(ln for ln in verdicts.splitlines() if "DXLink decode >= 10 M" in ln)
    assert "ev per CPU-s" in rate and "busy 99%" in rate
    ratio = next(ln for ln in verdicts.splitlines() if "50x tastytrade" in ln)
    assert "ev per CPU-s" in ratio and " vs " in ratio
    for line in verdicts.splitlines():
        if line.strip().startswith("["):
            figure = line.split(": ", 1)[1]
            assert not figure.startswith(" ") and not figure.startswith("("), line
    # targets of scenarios that did not run are summarised, not listed empty
    assert not [ln for ln in verdicts.splitlines()
                if ln.strip().startswith("[") and "(polygon-" in ln]
    assert "more not checked (scenarios not in this run:" in verdicts


def test_targets_of_a_client_left_out_give_a_reason() -> None:
    res = _results(busy=0.99)
    res.plan.clients = ["ff-decoder", "orjson-parse"]
    res.measurements = [m for m in res.measurements if m.client != "tastytrade-decode"]
    out = _table(res, _env(0.3))
    line = next(ln for ln in out.splitlines() if "50x tastytrade" in ln)
    assert "tastytrade-decode not in this run" in line


def test_legend_explains_the_columns() -> None:
    out = _table(_results(busy=0.99), _env(0.3))
    legend = out.split("legend:")[1]
    for word in ("busy", "ev per CPU-s", "events/s", "CPU s", "ratios", "(decode)", "(e2e)",
                 "p50/p99/p99.9"):
        assert word in legend, word


def test_progress_eta_uses_the_measured_time_per_class() -> None:
    stream = io.StringIO()
    bar = Progress(4, stream=stream)
    bar.plan({"throughput": 3, "latency": 1}, {"throughput": 2.0, "latency": 4.0})
    assert bar.eta() == pytest.approx(3 * 2.0 + 4.0)
    bar.step("x", "throughput", 10.0)  # measured: 10 s per throughput measurement
    assert bar.eta() == pytest.approx(2 * 10.0 + 4.0)
    assert "ETA 0:24" in stream.getvalue()


def test_far_below_peers_exclude_target_peers() -> None:
    rates = {"ff-decoder": 10e6, "ff-listen": 2e6, "tastytrade-decode": 1e5,
             "tastytrade-streamer": 5e4, "orjson-parse": 2e6}
    # quote100: both tastytrade rows are compared by a ratio target -> every run
    assert far_below("dxlink-quote100", rates) == set()
    # greeks100 has no target: the two rows 100x below run fewer times, orjson does not
    assert far_below("dxlink-greeks100", rates) == {"tastytrade-decode", "tastytrade-streamer"}
    # latency: a peer that fell behind the paced stream measures its backlog
    paced = {"ff-listen": 10_000.0, "tastytrade-streamer": 3_000.0, "websockets-orjson": 9_990.0}
    assert far_below("latency-dxlink", paced, 10_000.0) == {"tastytrade-streamer"}
    assert far_below("reconnect-dxlink", paced, 10_000.0) == set()


def test_plot_without_matplotlib_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    res = _results(busy=0.99)
    msg = _report.write_plot(str(tmp_path / "p.png"), res, _report.aggregate(res))
    assert msg is not None and "matplotlib is not installed" in msg
    assert not (tmp_path / "p.png").exists()


def test_plot_is_written_with_one_colour_per_client(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    res = _results(busy=0.99)
    path = tmp_path / "p.png"
    assert _report.write_plot(str(path), res, _report.aggregate(res)) is None
    assert path.stat().st_size > 1000
    colours = _report.client_colours()
    assert len({str(c) for c in colours.values()}) == len(colours)


def test_plot_error_is_reported_not_raised(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    res = _results(busy=0.99)
    msg = _report.write_plot(str(tmp_path / "missing-dir" / "p.png"), res,
                             _report.aggregate(res))
    assert msg is not None and msg.startswith("plot not written")


def test_recovery_clock_times_each_new_drop_stamp() -> None:
    import time as _time

    from fastfeed.bench.peers import RecoveryClock

    clock = RecoveryClock(drops=2, give_up=5.0)
    assert not clock.seen(111)  # the first connection's stamp (maybe an earlier client's drop)
    assert not clock.seen(111)
    assert clock.recoveries == []
    stamp = _time.monotonic_ns() - 3_000_000  # a drop 3 ms ago
    assert not clock.seen(stamp)
    assert clock.seen(_time.monotonic_ns())  # the second drop: done
    assert len(clock.recoveries) == 2 and clock.recoveries[0] >= 3_000_000
    s = clock.sample()
    assert s.events == 2 and s.frames == 4 and s.latencies_ns == clock.recoveries


def test_a_recording_that_lost_messages_does_not_meet_its_cost_target() -> None:
    plan = Plan(scenarios=["record-dxlink"], runs=2)
    res = Results(plan)
    for r in range(2):
        for pos, (client, lost) in enumerate((("ff-batches", 0), ("ff-record-raw", 9),
                                              ("ff-record-columns", 0))):
            s = _sample(10_000_000, 1.0, 1.0)
            s["not_recorded"] = lost
            res.measurements.append(Measurement("record-dxlink", client, r, pos, "ok", s))
    agg = _report.aggregate(res)
    verdicts = {t["client"]: t for t in _report.check_targets(agg)
                if t["scenario"] == "record-dxlink" and t["kind"] == "ratio"}
    # both at 1.0x the unrecorded rate; only the one whose writer fell behind is missed
    assert verdicts["ff-record-columns"]["status"] == "met"
    raw = verdicts["ff-record-raw"]
    assert raw["status"] == "MISSED" and "not recorded" in raw["reason"]
    out = _report.format_table(res, agg, _report.check_targets(agg), _env(0.3))
    line = next(ln for ln in out.splitlines() if "ff-record-raw)" in ln and "[MISSED]" in ln)
    assert "writer fell behind" in line
