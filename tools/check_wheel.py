"""Check a built wheel against the source tree: platform tag, every compiled module, the stubs,
py.typed, and no test-only module.

    python tools/check_wheel.py dist/fastfeed-*.whl [--manylinux]
"""

from __future__ import annotations

import argparse
import ast
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _test_only() -> set[str]:
    """setup.py's TEST_ONLY (read, not imported: importing setup.py would run setup())."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "TEST_ONLY" for t in node.targets):
            call = node.value
            assert isinstance(call, ast.Call)
            return set(ast.literal_eval(call.args[0]))
    raise SystemExit("setup.py defines no TEST_ONLY")


def check(wheel: Path, manylinux: bool) -> list[str]:
    problems: list[str] = []
    tags = wheel.name[:-4].split("-")[-3:]          # python, abi, platform
    if tags[1] == "none" or tags[2] == "any":
        problems.append(f"not a platform wheel: {wheel.name}")
    if manylinux and not tags[2].startswith("manylinux"):
        problems.append(f"not a manylinux wheel: {wheel.name}")
    names = zipfile.ZipFile(wheel).namelist()
    compiled = {n.split(".")[0].replace("/", ".") for n in names if n.endswith((".so", ".pyd"))}
    src = ROOT / "src_cython"
    modules = {".".join(p.relative_to(src).with_suffix("").parts)
               for p in (src / "fastfeed").rglob("*.pyx")}
    test_only = _test_only()
    for mod in sorted(modules - test_only):
        if mod not in compiled:
            problems.append(f"compiled module missing: {mod}")
        stub = mod.replace(".", "/") + ".pyi"
        if stub not in names:
            problems.append(f"stub missing: {stub}")
    problems += [f"test-only module shipped: {mod}" for mod in sorted(test_only & compiled)]
    if "fastfeed/py.typed" not in names:
        problems.append("fastfeed/py.typed missing")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--manylinux", action="store_true", help="require a manylinux platform tag")
    args = ap.parse_args()
    problems = check(args.wheel, args.manylinux)
    for p in problems:
        print(f"wheel check: {p}", file=sys.stderr)
    if not problems:
        print(f"wheel check: {args.wheel.name} OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
