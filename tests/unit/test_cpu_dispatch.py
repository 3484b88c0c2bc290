"""Runtime CPU dispatch of the decoders (fastfeed/compat.h): the x86-64-v3 build is chosen on a
CPU that has every v3 feature, FASTFEED_CPU=baseline forces the baseline build, and the
differential tests hold bit for bit under both (this process runs the default path; the
baseline path runs the same tests in a subprocess)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from fastfeed._native import dxlink, polygon

ROOT = Path(__file__).resolve().parents[2]

#: /proc/cpuinfo's names of the x86-64-v3 features the dispatch checks (lzcnt is "abm")
V3_FLAGS = frozenset({"avx2", "bmi1", "bmi2", "abm", "movbe", "fma"})

#: the differential / property tests of both decoders, run again on the baseline build
DIFFERENTIAL = (
    "tests/unit/test_polygon_props.py::test_round_trip",
    "tests/unit/test_polygon_props.py::test_round_trip_same_key_order",
    "tests/unit/test_polygon_props.py::test_whitespace_and_escapes",
    "tests/unit/test_polygon_levels.py",
    "tests/unit/test_dxlink_property.py::test_random_events_round_trip",
    "tests/unit/test_dxlink_property.py::test_bad_values_cost_only_their_events",
)


def _cpu_has_v3() -> bool:
    if platform.machine() not in {"x86_64", "AMD64"}:
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split()) >= V3_FLAGS
    return False


def _expected_path() -> str:
    if os.environ.get("FASTFEED_CPU") == "baseline" or not _cpu_has_v3():
        return "baseline"
    return "x86-64-v3"


def test_path_matches_cpu_and_environment() -> None:
    """The build in use is x86-64-v3 exactly when the CPU has it and nothing forces the
    baseline (this test also runs inside the baseline subprocess below)."""
    assert _expected_path() == polygon.CPU_PATH
    assert _expected_path() == dxlink.CPU_PATH


def test_v3_chosen_on_this_cpu_unless_forced() -> None:
    if os.environ.get("FASTFEED_CPU") == "baseline":
        assert polygon.CPU_PATH == "baseline"
    elif _cpu_has_v3() and sys.platform == "linux":
        # GCC builds on Linux x86-64 (CI's) carry the v3 decoders: a CPU with v3 runs them
        assert polygon.CPU_PATH == dxlink.CPU_PATH == "x86-64-v3"
    else:
        assert polygon.CPU_PATH == dxlink.CPU_PATH == "baseline"


def test_differential_tests_pass_on_the_baseline_build() -> None:
    env = dict(os.environ, FASTFEED_CPU="baseline")
    ids = (f"{__file__}::test_path_matches_cpu_and_environment", *DIFFERENTIAL)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *ids],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
