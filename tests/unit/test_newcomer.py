"""What a new user meets first: dir(fastfeed), missing builds, missing numpy, generic batches."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import fastfeed
from fastfeed.dxfeed import Quote

ROOT = Path(__file__).resolve().parents[2]
FRAME = (b'{"type":"FEED_DATA","channel":7,"data":["Quote",'
         b'["SPY",0,0,0,0,"Q",0,"Q",1.5,1.6,"NaN",10.0]]}')


def test_dir_lists_the_lazy_names_and_not_the_typing_helpers() -> None:
    names = dir(fastfeed)
    for lazy in ("DXLinkDecoder", "PolygonDecoder", "EventBatch", "SymbolTable"):
        assert lazy in names
    assert "Any" not in names and "TYPE_CHECKING" not in names
    assert set(fastfeed.__all__) <= set(names)


def test_event_batch_is_generic_at_run_time_too() -> None:
    alias = fastfeed.EventBatch[Quote]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is fastfeed.EventBatch and alias.__args__ == (Quote,)


def test_to_numpy_without_numpy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    dec = fastfeed.DXLinkDecoder()
    dec.feed(FRAME)
    batch = dec.drain(Quote)
    monkeypatch.setitem(sys.modules, "numpy", None)   # `import numpy` now fails
    with pytest.raises(ImportError, match=r"pip install 'fastfeed\[numpy\]'") as info:
        batch.to_numpy()
    assert info.value.name == "numpy"


def _unbuilt_copy(dest: Path, checkout: bool) -> Path:
    """fastfeed's Python files without any compiled module, as a checkout or an install."""
    shutil.copytree(ROOT / "fastfeed", dest / "fastfeed",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    if checkout:
        (dest / "setup.py").write_text("")
        (dest / "src_cython").mkdir()
    return dest


def _import_decoder(where: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import fastfeed; fastfeed.DXLinkDecoder"], cwd=where, env=env,
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    return proc.stderr


def test_unbuilt_checkout_says_build_in_place_or_run_outside(tmp_path: Path) -> None:
    err = _import_decoder(_unbuilt_copy(tmp_path, checkout=True))
    assert "not built for this Python" in err and "dxlink" in err
    assert "bash tools/build.sh" in err and "pip install -e ." in err
    assert "outside the checkout" in err


def test_incomplete_install_says_reinstall(tmp_path: Path) -> None:
    err = _import_decoder(_unbuilt_copy(tmp_path, checkout=False))
    assert "not built for this Python" in err
    assert "pip install --force-reinstall" in err


def test_the_bench_extra_installs_what_every_bench_scenario_needs() -> None:
    """The README's first command installs only ``.[bench]``: the scenarios that record
    (``record-dxlink``) need the ``record`` extra's packages, and every decoder peer its own."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
                for r in reqs}

    bench = names(extras["bench"])
    assert names(extras["record"]) <= bench
    assert names(extras["numpy"]) <= bench
