"""The README's self-contained examples run as written (so the README stays true)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    section = text.split(heading, 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, f"no python block after {heading!r}"
    return m.group(1)


def test_readme_replay_example_runs() -> None:
    code = _block_after("### Replay without a socket")
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    batch = scope["batch"]
    assert len(batch) == 1 and batch[0].event_symbol == "SPY"  # type: ignore[index,attr-defined]
    assert scope["quotes"]["bid_price"][0] == 1.5  # type: ignore[index]


def test_readme_opens_with_the_two_commands() -> None:
    lines = [ln for ln in README.read_text().splitlines() if ln.startswith("python3 -m venv")]
    assert len(lines) == 2
    assert lines[0].endswith("python -m fastfeed.bench")
    assert lines[1].endswith("python -m pytest")
