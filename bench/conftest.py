"""pytest-benchmark suites for fastfeed's layers (not part of the default test run).

Run (from the repository root)::

    pytest bench/ --benchmark-only -p no:cacheprovider
    pytest bench/ -o python_files='bench_*.py' --benchmark-only      # equivalent

The files are named ``bench_*.py`` so that the default run (``testpaths = ["tests"]``,
``python_files = test_*.py``) never collects them; the hook below collects them when pytest is
pointed at this directory. Suites whose fastfeed component is not built are skipped.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest

from fastfeed.bench.payloads import DXLINK_KINDS, POLYGON_KINDS, FrameSet, frame_set


def pytest_collect_file(file_path: Path, parent: Any) -> Any:
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    patterns = parent.config.getini("python_files")
    if parent.session.isinitpath(file_path) or any(
            fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return None  # pytest's own Python collector takes it (named on the command line,
        #              or -o python_files='bench_*.py')
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_configure(config: pytest.Config) -> None:
    # bench_* functions are named test_* so that pytest collects them inside the modules
    config.addinivalue_line("markers", "layer(name): which fastfeed layer a benchmark measures")


@pytest.fixture(params=sorted(DXLINK_KINDS))
def dxlink_frames(request: pytest.FixtureRequest) -> FrameSet:
    return frame_set("dxlink", request.param)


@pytest.fixture(params=sorted(POLYGON_KINDS))
def polygon_frames(request: pytest.FixtureRequest) -> FrameSet:
    return frame_set("polygon", request.param)


def per_event(benchmark: Any, events: int, nbytes: int = 0) -> None:
    """Record how many events (and bytes) one benchmarked call handles."""
    benchmark.extra_info["events_per_call"] = events
    if nbytes:
        benchmark.extra_info["bytes_per_call"] = nbytes
