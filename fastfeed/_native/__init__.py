"""fastfeed's compiled modules (Cython). Every public one has a ``.pyi`` stub beside it.

Importing this package checks that each of them is built for the running Python, so that a
missing build fails with an ``ImportError`` that says what to do instead of a bare
``No module named 'fastfeed._native.…'`` at some later import.
"""

from __future__ import annotations

import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path


def _missing_message(here: Path, missing: list[str]) -> str:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    what = (f"fastfeed's compiled modules ({', '.join(missing)}) are not built for this Python "
            f"({py}, {sys.executable}) in {here}")
    others = sorted({p.name.split(".")[1] for p in here.glob("*.so")} - {
        s.split(".")[1] for s in EXTENSION_SUFFIXES if s.count(".") > 1})
    if others:
        what += f" (there are builds for other Pythons: {', '.join(others)})"
    root = here.parents[1]
    if (root / "setup.py").is_file() and (root / "src_cython").is_dir():
        return (f"{what}. This is fastfeed's source checkout ({root}): build them in place "
                f"with `bash tools/build.sh` (or `pip install -e .`); or, to use a fastfeed "
                f"installed with `pip install .`, run Python from outside the checkout (the "
                f"checkout's fastfeed/ shadows the installed one).")
    return (f"{what}. This installation is incomplete (built from a source tree without "
            f"src_cython/?): reinstall it with `pip install --force-reinstall --no-cache-dir "
            f"fastfeed`, or build it in place from a checkout with `pip install -e .`.")


def _check_built() -> None:
    here = Path(__file__).resolve().parent
    missing = [stub.stem for stub in sorted(here.glob("*.pyi"))
               if not any((here / (stub.stem + sfx)).is_file() for sfx in EXTENSION_SUFFIXES)]
    if missing:
        raise ImportError(_missing_message(here, missing), name=__name__)


_check_built()
