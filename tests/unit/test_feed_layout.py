"""The code is organised by feed (``fastfeed/{dxlink,polygon,account}/``); the old import paths
keep working and give the very same objects."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: old (public or former) module -> the module that now defines its names
MOVED = {
    "fastfeed.dxfeed": "fastfeed.dxlink.events",
    "fastfeed.polygon_events": "fastfeed.polygon.events",
    "fastfeed.sim.dxlink": "fastfeed.dxlink.sim",
    "fastfeed.sim.polygon": "fastfeed.polygon.sim",
    "fastfeed.sim.account": "fastfeed.account.sim",
}


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_module_gives_the_same_objects(old: str, new: str) -> None:
    old_mod, new_mod = importlib.import_module(old), importlib.import_module(new)
    assert old_mod.__all__ == new_mod.__all__ and new_mod.__all__
    for name in new_mod.__all__:
        assert getattr(old_mod, name) is getattr(new_mod, name), f"{old}.{name}"


def test_public_paths_of_the_account_streamer_and_its_events() -> None:
    import fastfeed.account
    import fastfeed.account.events as events
    import fastfeed.account.session as session
    import fastfeed.account.streamer as streamer
    import fastfeed.alerts as alerts
    import fastfeed.tastytrade as tastytrade

    assert tastytrade.AlertStreamer is streamer.AlertStreamer is fastfeed.account.AlertStreamer
    assert fastfeed.account.AccountSession is session.AccountSession
    for name in alerts.__all__:
        assert getattr(alerts, name) is getattr(events, name)
    assert not (ROOT / "fastfeed" / "_alerts.py").exists()


def test_simulators_from_fastfeed_sim_are_the_feed_folders_ones() -> None:
    import fastfeed.account.sim
    import fastfeed.dxlink.sim
    import fastfeed.polygon.sim
    import fastfeed.sim

    assert fastfeed.sim.DXLinkServer is fastfeed.dxlink.sim.DXLinkServer
    assert fastfeed.sim.PolygonServer is fastfeed.polygon.sim.PolygonServer
    assert fastfeed.sim.AccountStreamerServer is fastfeed.account.sim.AccountStreamerServer
    assert fastfeed.sim.account.main is fastfeed.account.sim.main
    assert {"DXLinkServer", "PolygonServer", "AccountStreamerServer"} <= set(dir(fastfeed.sim))
    assert set(fastfeed.sim.__all__) <= set(dir(fastfeed.sim))


def test_classes_report_their_defining_module_and_old_pickles_still_load() -> None:
    from fastfeed.alerts import PlacedOrder
    from fastfeed.dxfeed import Quote
    from fastfeed.polygon_events import EquityTrade

    assert Quote.__module__ == "fastfeed.dxlink.events"
    assert EquityTrade.__module__ == "fastfeed.polygon.events"
    assert PlacedOrder.__module__ == "fastfeed.account.events"
    q = Quote(event_symbol="SPY", bid_price=1.5)
    assert repr(q).startswith("Quote(")
    back = pickle.loads(pickle.dumps(q))
    assert type(back) is Quote and back == q
    # a pickle written when the classes lived in fastfeed.dxfeed / polygon_events / _alerts
    # names those paths: the re-exports resolve them to the same classes
    assert pickle.loads(b"cfastfeed.dxfeed\nQuote\n.") is Quote
    assert pickle.loads(b"cfastfeed.polygon_events\nEquityTrade\n.") is EquityTrade
    assert pickle.loads(b"cfastfeed.alerts\nPlacedOrder\n.") is PlacedOrder


def test_each_feed_has_one_folder() -> None:
    wanted = {"dxlink": {"session.py", "streamer.py", "events.py", "sim.py"},
              "polygon": {"session.py", "client.py", "events.py", "sim.py"},
              "account": {"session.py", "streamer.py", "events.py", "sim.py"}}
    for feed, files in wanted.items():
        have = {p.name for p in (ROOT / "fastfeed" / feed).glob("*.py")}
        assert files <= have, feed



def _verbatim_c_lines(pyx: str) -> list[str]:
    """The C lines of every ``cdef extern from *:`` block's verbatim string in ``pyx``."""
    import re
    out: list[str] = []
    for m in re.finditer(r'cdef extern from \*[^:]*:\n\s*"""(.*?)"""', pyx, re.S):
        out += [ln.strip() for ln in m.group(1).splitlines() if ln.strip()]
    return out


def test_no_c_source_inside_pyx_strings() -> None:
    """C lives in ``src_cython/include/fastfeed/*.h``; a ``.pyx`` verbatim block may only
    include a header or set a macro for it (the old transport clock was C inside a string)."""
    pyx = sorted((ROOT / "src_cython").rglob("*.pyx"))
    assert pyx
    for path in pyx:
        for ln in _verbatim_c_lines(path.read_text()):
            assert ln.startswith(("#include", "#define", "/*", "*", "//")), (path.name, ln)
    bad = 'cdef extern from *:\n    """\n    static inline int f(void) { return 1; }\n    """\n'
    assert _verbatim_c_lines(bad) == ["static inline int f(void) { return 1; }"]

# every module first in a fresh interpreter: no import cycle between the feed folders, the
# simulators' shared core and the compiled decoders (which import the event classes)
FIRST = ["fastfeed.dxlink.events", "fastfeed.dxfeed", "fastfeed._native.dxlink",
         "fastfeed.dxlink.sim", "fastfeed.polygon.events", "fastfeed.polygon.sim",
         "fastfeed.account.sim", "fastfeed.account.session", "fastfeed.sim.account",
         "fastfeed.sim._base", "fastfeed.alerts"]


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    code = ("import importlib, subprocess, sys\n"
            "for m in sys.argv[1:]:\n"
            "    r = subprocess.run([sys.executable, '-c', f'import {m}'], capture_output=True,"
            " text=True, timeout=60)\n"
            "    if r.returncode:\n"
            "        print(m, r.stderr.strip().splitlines()[-1])\n")
    out = subprocess.run([sys.executable, "-c", code, *FIRST], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, check=True)
    assert out.stdout == ""


def test_python_m_fastfeed_sim_help() -> None:
    top = subprocess.run([sys.executable, "-m", "fastfeed.sim", "--help"], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, check=False)
    assert top.returncode == 0 and "dxlink,polygon,account" in top.stdout
    for kind in ("dxlink", "polygon", "account"):
        sub = subprocess.run([sys.executable, "-m", "fastfeed.sim", kind, "--help"],
                             capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
        assert sub.returncode == 0 and f"python -m fastfeed.sim {kind}" in sub.stdout
    bad = subprocess.run([sys.executable, "-m", "fastfeed.sim"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr
