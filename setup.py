"""Build script for fastfeed's compiled modules (the pip path).

Every ``src_cython/fastfeed/**/*.pyx`` becomes the extension module of the same dotted
name (``src_cython/fastfeed/_native/ring.pyx`` -> ``fastfeed._native.ring``).

Build modes are selected with environment variables (PEP 517 front-ends do not pass argv):

* ``FASTFEED_DEBUG=1``     -O0 -g, Cython bounds/wraparound/initialized checks on
* ``FASTFEED_COVERAGE=1``  Cython line tracing (for ``Cython.Coverage``)
* ``FASTFEED_ANNOTATE=1``  write Cython HTML annotation next to the generated C (build/cython)
* ``FASTFEED_SANITIZE=1``  AddressSanitizer + UndefinedBehaviorSanitizer

Test-only extensions (:data:`TEST_ONLY`: C hooks the unit tests call) are built only by in-place
builds (``pip install -e .``, ``python setup.py build_ext --inplace`` / ``tools/build.sh``), never
into a wheel (``pip install .``, ``python -m build``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent.resolve()
SRC = ROOT / "src_cython"
INCLUDE = SRC / "include"
#: extension modules only the tests import (C hooks); left out of wheels
TEST_ONLY = frozenset({"fastfeed._native._testcore", "fastfeed._native._cscan"})


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _flag("FASTFEED_DEBUG")
COVERAGE = _flag("FASTFEED_COVERAGE")
ANNOTATE = _flag("FASTFEED_ANNOTATE")
SANITIZE = _flag("FASTFEED_SANITIZE")

directives: dict[str, object] = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "binding": False,
}
macros: list[tuple[str, str | None]] = []
cflags = ["-O0", "-g3"] if DEBUG else ["-O3"]
# -ffp-contract=off: no fused a*b+c in any build (the x86-64-v3 decoders may use FMA, which
# would round once and change the decoded doubles; see fastfeed/compat.h)
cflags += ["-std=c11", "-ffp-contract=off", "-Wno-unused-function", "-Wno-unreachable-code"]
ldflags: list[str] = []
if DEBUG:
    macros.append(("FASTFEED_DEBUG", "1"))
if COVERAGE:
    directives["linetrace"] = True
    macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
if SANITIZE:
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    cflags += san
    ldflags += san


def _sources() -> tuple[list[Path], list[str]]:
    """Every .pyx and C header; stop the build when they are missing (an incomplete sdist
    would otherwise give a pure-Python wheel that fails at the first decoder call)."""
    pyx = sorted((SRC / "fastfeed").rglob("*.pyx"))
    headers = sorted(str(p) for p in INCLUDE.rglob("*.h"))
    if not pyx or not headers:
        raise SystemExit(
            f"fastfeed: no Cython sources or C headers under {SRC} "
            f"({len(pyx)} .pyx, {len(headers)} .h): this source tree or sdist is incomplete, "
            "and fastfeed cannot be built without its compiled modules. Build from a git "
            "checkout or from a complete sdist (one made with `python -m build --sdist`)."
        )
    return pyx, headers


def _extensions() -> list[Extension]:
    exts = []
    sources, headers = _sources()
    for pyx in sources:
        rel = pyx.relative_to(SRC).with_suffix("")
        name = ".".join(rel.parts)
        exts.append(
            Extension(
                name,
                [str(pyx.relative_to(ROOT))],
                include_dirs=[str(INCLUDE)],
                define_macros=macros,
                extra_compile_args=cflags,
                extra_link_args=ldflags,
                depends=headers,
            )
        )
    return exts


class BuildExt(build_ext):
    """Build the test-only extensions for in-place (development) builds only."""

    def run(self) -> None:
        if not (self.inplace or self.editable_mode):
            self.extensions = [e for e in self.extensions if e.name not in TEST_ONLY]
        super().run()


class BuildPy(build_py):
    """Ship the cimport surface (.pxd) and the public C headers inside the wheel."""

    def run(self) -> None:
        super().run()
        pkg_dir = Path(self.build_lib) / "fastfeed"
        for pxd in (SRC / "fastfeed").rglob("*.pxd"):
            dest = pkg_dir.parent / pxd.relative_to(SRC)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(pxd, dest)
        for header in INCLUDE.rglob("*.h"):
            dest = pkg_dir / "include" / header.relative_to(INCLUDE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(header, dest)


setup(
    ext_modules=cythonize(
        _extensions(),
        include_path=[str(SRC)],
        build_dir="build/cython",
        compiler_directives=directives,
        annotate=ANNOTATE,
        nthreads=int(os.environ.get("FASTFEED_BUILD_JOBS", "0") or 0),
        quiet=True,
    ),
    cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
)
