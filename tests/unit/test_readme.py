"""Every Python block of the README runs as written (so the README stays true), with numpy and,
in a fresh interpreter, without it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _block_after(heading: str) -> str:
    section = README.read_text().split(heading, 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, f"no python block after {heading!r}"
    return m.group(1)


def _run(code: str) -> dict[str, object]:
    scope: dict[str, object] = {"__name__": "__main__"}
    exec(compile(code, "README.md", "exec"), scope)
    return scope


def test_readme_has_one_runnable_snippet_per_streamer() -> None:
    code = "\n".join(BLOCKS)
    for name in ("DXLinkStreamer(", "AlertStreamer(", "AsyncStreamClient(", "DXLinkDecoder(",
                 "PolygonDecoder(", "srv.session()", "srv.client_host"):
        assert name in code, name
    assert not re.search(r"^\s*\.\.\.", code, re.M)   # no `...` placeholder: every block runs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    _run(BLOCKS[index])
    assert capsys.readouterr().out      # every block shows something


def test_readme_replay_example_decodes_what_it_says() -> None:
    scope = _run(_block_after("### Replay without a socket"))
    batch = scope["batch"]
    assert len(batch) == 1 and batch[0].event_symbol == "SPY"  # type: ignore[arg-type,index]
    numpy_block = next(b for b in BLOCKS if "to_numpy()" in b)
    quotes = _run(numpy_block)["quotes"]
    assert quotes["bid_price"][0] == 1.5 and quotes["ask_price"][0] == 1.6  # type: ignore[index]


# Runs every block in a fresh interpreter where `import numpy` fails: the blocks that need numpy
# must fail with the ImportError naming the extra, every other block must run.
_WITHOUT_NUMPY = r'''
import re, sys

class NoNumpy:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoNumpy())
# as if numpy were not installed at all: libraries that probe for it on disk (flatbuffers, under
# iceoryx2) must not find it either
import importlib.machinery
_path_find_spec = importlib.machinery.PathFinder.find_spec
importlib.machinery.PathFinder.find_spec = classmethod(
    lambda cls, name, path=None, target=None: None if name == "numpy" or name.startswith("numpy.")
    else _path_find_spec(name, path, target))
blocks = re.findall(r"```python\n(.*?)```", open(sys.argv[1]).read(), re.S)
for i, code in enumerate(blocks):
    try:
        exec(compile(code, f"README block {i}", "exec"), {"__name__": "__main__"})
    except ImportError as exc:
        # only the numpy block and the recording block (its extra includes numpy) may need it
        if "streamer.record(" in code:
            assert "pip install 'fastfeed[record]'" in str(exc), str(exc)
            print(f"block {i}: ImportError naming the record extra")
            continue
        assert "to_numpy()" in code, f"block {i} needs numpy: {exc}"
        assert "pip install 'fastfeed[numpy]'" in str(exc), str(exc)
        print(f"block {i}: ImportError naming the extra")
    else:
        assert "to_numpy()" not in code, f"block {i} ran without numpy"
        print(f"block {i}: ran")
assert "numpy" not in sys.modules
'''


@pytest.mark.timeout(120)
def test_readme_blocks_without_numpy() -> None:
    proc = subprocess.run([sys.executable, "-c", _WITHOUT_NUMPY, str(README)], cwd=ROOT,
                          capture_output=True, text=True, timeout=110, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("block ")]
    assert len(lines) == len(BLOCKS)
    assert sum("ImportError naming the extra" in ln for ln in lines) == 1


def test_readme_names_the_numpy_extra_and_the_durations() -> None:
    text = README.read_text()
    assert "fastfeed[numpy]" in text
    head = text.split("## ", 1)[0]
    assert len(re.findall(r"about \d+ minutes", head)) == 2


def test_readme_opens_with_the_two_commands() -> None:
    lines = [ln for ln in README.read_text().splitlines() if ln.startswith("python3 -m venv")]
    assert len(lines) == 2
    assert lines[0].endswith("python -m fastfeed.bench")
    assert lines[1].endswith("python -m pytest")
