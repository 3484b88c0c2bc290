"""Smoke test of ``python -m fastfeed.bench``: it runs, writes its JSON, and leaves no process.

No assertion on absolute times or rates: the machine is shared and noisy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in out:
                out.add(k)
                todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.timeout(90)
def test_bench_quick_one_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    cmd = [sys.executable, "-m", "fastfeed.bench", "--quick", "--scenario", "dxlink-quote100",
           "--client", "orjson-parse", "--client", "websockets-orjson", "--client", "ff-decoder",
           "--client", "msgspec-typed",
           "--runs", "1", "--duration", "0.3", "--json", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= _children_of(proc.pid)  # the simulator and the workers, while they live
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
        pytest.fail("python -m fastfeed.bench --quick did not finish within 60 s")
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert "dxlink-quote100" in stdout and "targets" in stdout and "legend:" in stdout
    # a plot by default: written (path printed) or, without matplotlib, said so
    plot_line = next(ln for ln in stdout.splitlines()
                     if ln.startswith(("plot written to ", "matplotlib is not installed")))
    if plot_line.startswith("plot written to "):
        assert (tmp_path / plot_line.removeprefix("plot written to ")).stat().st_size > 0

    doc = json.loads(out.read_text())
    versions = doc["environment"]["versions"]
    for name in ("fastfeed", "python", "picows", "orjson", "websockets"):
        assert versions.get(name), name
    assert doc["environment"]["machine"]["cpu_count"]
    ok = [m for m in doc["measurements"] if m["status"] == "ok"]
    clients = {m["client"] for m in ok}
    assert {"orjson-parse", "websockets-orjson", "msgspec-typed"} <= clients, doc["measurements"]
    for m in ok:
        s = m["sample"]
        assert s["events"] > 0 and s["wall_s"] > 0 and s["cpu_s"] >= 0
        assert s["events_per_s"] > 0
    # fastfeed's decoder either measured or reported plainly as not available
    ff = [m for m in doc["measurements"] if m["client"] == "ff-decoder"]
    assert ff and ff[0]["status"] in ("ok", "unavailable"), ff
    assert doc["summary"]["dxlink-quote100"]["websockets-orjson"]["status"] == "ok"
    targets = {t["id"]: t for t in doc["targets"]}
    assert "dx-decode-rate" in targets
    # the msgspec target row (#13) has a verdict whenever fastfeed's decoder is built
    if ff[0]["status"] == "ok":
        assert targets["dx-decode-vs-msgspec"]["status"] in ("met", "MISSED")
        assert targets["dx-decode-vs-msgspec"]["value"] > 0
    assert doc["environment"]["versions"].get("msgspec")

    # every process the bench started is gone
    assert seen, "the bench started no child process (simulator/workers)"
    time.sleep(0.2)
    left = [p for p in seen if _alive(p)]
    assert not left, f"processes left behind: {left}"


def test_latency_clients_match_the_feed() -> None:
    from fastfeed.bench.scenarios import SCENARIOS, clients_for

    dx = {c.name for c in clients_for(SCENARIOS["latency-dxlink"])}
    pg = {c.name for c in clients_for(SCENARIOS["latency"])}
    assert {"ff-listen", "ff-batches", "websockets-orjson"} <= dx
    assert "ff-dicts" not in dx and "massive" not in dx
    assert "ff-dicts" in pg and "ff-listen" not in pg and "tastytrade-streamer" not in pg


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.timeout(90)
def test_bench_latency_dxlink(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    cmd = [sys.executable, "-m", "fastfeed.bench", "--scenario", "latency-dxlink",
           "--client", "ff-listen", "--client", "websockets-orjson", "--runs", "1",
           "--latency-duration", "1", "--json", str(out), "--no-progress", "--no-plot"]
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=80)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "latency-dxlink" in proc.stdout
    assert "plot" not in proc.stdout and not (tmp_path / "build").exists()  # --no-plot
    doc = json.loads(out.read_text())
    summary = doc["summary"]["latency-dxlink"]
    # the baseline reads the stamp from the raw frame: it must always measure
    ws = summary["websockets-orjson"]
    assert ws["status"] == "ok", ws
    assert ws["latency_us"]["p50"]["median"] > 0
    # fastfeed listen(): measured, or plainly not available (not built)
    ff = summary["ff-listen"]
    assert ff["status"] in ("ok", "unavailable"), ff
    if ff["status"] == "ok":
        # stamps are the sender's monotonic clock: a sane transit time, not a garbage value
        assert 0 < ff["latency_us"]["p50"]["median"] < 1e6
    ids = {t["id"]: t for t in doc["targets"]}
    assert ids["latency-dx-p99"]["status"] in ("met", "MISSED", "not available")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.timeout(90)
def test_bench_quick_reconnect(tmp_path: Path) -> None:
    """#12: recovery after server-side drops, fastfeed and tastytrade on the same simulator."""
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    cmd = [sys.executable, "-m", "fastfeed.bench", "--quick", "--scenario", "reconnect-dxlink",
           "--json", str(out), "--no-progress", "--no-plot"]
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=80)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reconnect-dxlink" in proc.stdout and "WEBSOCKETS_BACKOFF_INITIAL_DELAY=" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["plan"]["reconnect_drops"] == 3
    summary = doc["summary"]["reconnect-dxlink"]
    tt = summary["tastytrade-streamer"]
    assert tt["status"] == "ok", tt
    ff = summary["ff-listen"]
    assert ff["status"] in ("ok", "unavailable"), ff
    for e in (tt, ff) if ff["status"] == "ok" else (tt,):
        pooled = e["latency_pooled_us"]
        assert pooled["n"] == 3  # every drop timed, once each
        # from the drop to the first event of the new connection: positive, and bounded
        assert 0 < pooled["p50"] < 20e6
    runs = [m for m in doc["measurements"] if m["scenario"] == "reconnect-dxlink"]
    assert len(runs) == 2  # once per client: the drops are the repetitions


@pytest.mark.timeout(120)
def test_bench_recording_scenario(tmp_path: Path) -> None:
    """The recording rows (issue 16): listen_batches not recording / recording raw / columns
    and the replay of the columns, each measured, everything recorded, the targets checked."""
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    cmd = [sys.executable, "-m", "fastfeed.bench", "--scenario", "record-dxlink", "--runs", "1",
           "--duration", "0.2", "--json", str(out), "--no-progress", "--no-plot"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    runs = {m["client"]: m for m in doc["measurements"]}
    assert set(runs) == {"ff-batches", "ff-record-raw", "ff-record-columns",
                         "ff-replay-columns"}
    for m in runs.values():
        assert m["status"] == "ok", m
        assert m["sample"]["events"] > 0
    for c in ("ff-record-raw", "ff-record-columns"):
        info = runs[c]["sample"]["info"]
        assert "MB per million Quotes" in info, info
        # everything handed to the writer written; what the writer could not take, counted
        m = re.search(r"(\d+)/(\d+) (?:messages|records) written, (\d+) not recorded", info)
        assert m is not None and m[1] == m[2] and int(m[1]) > 0, info
        assert int(m[3]) == runs[c]["sample"]["not_recorded"], info
    targets = {t["id"]: t for t in doc["targets"]}
    for tid in ("rec-raw-vs-batches", "rec-columns-vs-batches", "rec-replay-rate"):
        assert targets[tid]["status"] in ("met", "MISSED"), targets[tid]
    assert "ff-record-raw: writer process" in proc.stdout
