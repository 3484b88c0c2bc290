"""The floor of the polygon dict handlers: what building exactly the dicts they deliver costs
in C, by strategy, against fastfeed's own path and the ``polygon`` package's, in one process.

Builds ``bench/dict_floor.pyx`` (Cython and a C compiler, as for fastfeed itself) into a
temporary directory, then per round, interleaved: fastfeed's decode + drain, its dict path
(``to_dicts``; ``dispatch_dicts`` with a handler), ``orjson.loads`` / ``json.loads`` of the same
frames, the ``polygon`` package's receive path (``handle_messages`` on a fake socket, the bench's
``polygon-pkg`` row), and the C strategies over the same 3 200 events (values made fresh each
time, the dict dropped after): ``values`` (the value objects alone), ``copy`` (``PyDict_Copy``
of a per-key-set template alone), ``copy+set`` (the copy, then ``PyDict_SetItem`` per value),
``new+set`` (``PyDict_New``), ``presized+set`` (``_PyDict_NewPresized``), ``copy+poke`` (the
copy, values written into its entries: fastfeed/dictfill.h, what fastfeed does now). Prints ns
per event (process CPU time), median [min-max].

    python bench/bench_dict_floor.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from fastfeed import PolygonDecoder
from fastfeed._native.pgdict import dispatch_dicts, to_dicts
from fastfeed.bench import payloads

HERE = Path(__file__).resolve().parent
STRATEGIES = ["values", "copy", "copy+set", "new+set", "presized+set", "copy+poke"]


def _build(tmp: Path) -> Any:
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    ext = Extension("dict_floor", [str(HERE / "dict_floor.pyx")],
                    include_dirs=[str(HERE.parent / "src_cython" / "include")])
    dist = Distribution({"ext_modules": cythonize([ext], build_dir=str(tmp), quiet=True)})
    cmd = build_ext(dist)
    cmd.build_lib = cmd.build_temp = str(tmp)
    cmd.ensure_finalized()
    cmd.run()
    (path,) = tmp.glob("dict_floor*.so")
    spec = importlib.util.spec_from_file_location("dict_floor", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _polygon_pkg(texts: list[str], handler: Callable[[Any], None]) -> Callable[[], None] | None:
    from fastfeed.bench.peers import Unavailable, polygon_pkg_runner

    try:
        return polygon_pkg_runner(texts, "stocks", handler)
    except Unavailable:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    frames = payloads.polygon_frames("stocks100")
    texts = [f.decode() for f in frames]
    dicts = [d for f in frames for d in orjson.loads(f)]
    n = len(dicts)
    with tempfile.TemporaryDirectory() as tmp:
        floor = _build(Path(tmp))
    floor.setup(dicts)
    for which in ("copy+set", "copy+poke"):
        assert floor.built(which) == dicts, which
    dec = PolygonDecoder(cluster="stocks")
    feed, drain = dec.feed, dec.drain
    got: list[dict[str, Any]] = []
    for f in frames:
        feed(f)
        got += to_dicts(drain("T")) + to_dicts(drain("Q"))
    assert sorted(map(repr, map(sorted, map(dict.items, got)))) == \
        sorted(map(repr, map(sorted, map(dict.items, dicts))))

    count = [0]

    def handler(d: dict[str, Any]) -> None:
        count[0] += 1

    def ff_decode() -> None:
        for f in frames:
            feed(f)
            drain("T")
            drain("Q")

    def ff_to_dicts() -> None:
        for f in frames:
            feed(f)
            to_dicts(drain("T"))
            to_dicts(drain("Q"))

    def ff_dispatch() -> None:
        for f in frames:
            feed(f)
            dispatch_dicts(drain("T"), 0, handler)
            dispatch_dicts(drain("Q"), 0, handler)

    def orj() -> None:
        for t in texts:
            orjson.loads(t)

    def js() -> None:
        for t in texts:
            json.loads(t)

    py: dict[str, Callable[[], None]] = {
        "fastfeed decode + drain": ff_decode, "fastfeed + to_dicts": ff_to_dicts,
        "fastfeed + dispatch_dicts, handler": ff_dispatch, "orjson.loads": orj,
        "json.loads": js}
    pg = _polygon_pkg(texts, handler)
    if pg is not None:
        py["polygon package, handler"] = pg
    res: dict[str, list[float]] = {k: [] for k in [*py, *STRATEGIES]}
    for _ in range(a.rounds):
        for k, fn in py.items():
            t0 = time.process_time_ns()
            for _ in range(30):
                fn()
            res[k].append((time.process_time_ns() - t0) / (30 * n))
        for k in STRATEGIES:
            res[k].append(floor.run(k, 300))
    print(f"polygon 100 T/Q frames, {n} events, Python {sys.version.split()[0]}, "
          f"entries written directly: {floor.poke_active()}; ns per event (CPU), "
          f"median [min-max] of {a.rounds} rounds")
    for k, v in res.items():
        print(f"  {k:36s} {statistics.median(v):7.1f} [{min(v):.1f}-{max(v):.1f}]")


if __name__ == "__main__":
    main()
