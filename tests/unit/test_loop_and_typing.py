"""uvloop without side effects (fastfeed.run) and the typed DXLinkStreamer API (mypy)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def test_importing_fastfeed_changes_no_event_loop_policy() -> None:
    code = textwrap.dedent("""
        import asyncio
        before = type(asyncio.get_event_loop_policy())
        import fastfeed, fastfeed.tastytrade, fastfeed.polygon, fastfeed.streamer, fastfeed.alerts
        from fastfeed.tastytrade import DXLinkStreamer
        DXLinkStreamer(object())
        assert type(asyncio.get_event_loop_policy()) is before, asyncio.get_event_loop_policy()

        async def main():
            return type(asyncio.get_running_loop()).__module__

        print(asyncio.run(main()), fastfeed.run(main()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    plain, fast = out.stdout.split()
    assert plain.startswith("asyncio") and fast.startswith("uvloop")


def test_dxlink_streamer_api_is_typed_by_its_argument(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "use_dxlink.py"
    snippet.write_text(textwrap.dedent("""
        from typing import assert_type
        from fastfeed.dxfeed import Greeks, Quote
        from fastfeed.tastytrade import DXLinkStreamer

        async def main(st: DXLinkStreamer) -> None:
            async for q in st.listen(Quote):
                assert_type(q, Quote)
                assert_type(q.bid_price, float)
            assert_type(await st.get_event(Greeks), Greeks)
            assert_type(st.get_event_nowait(Quote), Quote | None)
            assert_type(st.latest(Quote, "SPY"), Quote | None)
    """))
    stdout, stderr, status = api.run(["--strict", "--no-incremental", "--cache-dir=/dev/null",
                                      "--config-file", str(ROOT / "pyproject.toml"),
                                      str(snippet)])
    assert status == 0, stdout + stderr
