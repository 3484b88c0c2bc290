"""Without the ``hub`` extra (no iceoryx2, no nats-py) every drop-in still works: the hub is
imported only when a drop-in is given ``hub=`` (the bench's default install has no hub extra)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CODE = textwrap.dedent("""
    import sys
    sys.modules["iceoryx2"] = None      # as if not installed: importing it raises ImportError
    sys.modules["nats"] = None
    import asyncio

    from fastfeed.massive import WebSocketClient
    from fastfeed.polygon import AsyncStreamClient
    from fastfeed.sim import AccountSession, DXLinkSession
    from fastfeed.tastytrade import AlertStreamer, DXLinkStreamer

    async def main():
        session = DXLinkSession("ws://127.0.0.1:9/realtime", "t")
        objs = [DXLinkStreamer(session), AsyncStreamClient("KEY", "stocks"),
                AlertStreamer(AccountSession("t")), WebSocketClient(api_key="KEY")]
        assert [type(o).__name__ for o in objs] == [
            "DXLinkStreamer", "AsyncStreamClient", "AlertStreamer", "WebSocketClient"]
        assert not any(m.startswith("fastfeed.hub") for m in sys.modules), \\
            [m for m in sys.modules if m.startswith("fastfeed.hub")]
        try:
            DXLinkStreamer(session, hub="ipc://x")
        except ImportError as exc:      # asked for: the error names the extra
            assert "fastfeed[hub]" in str(exc), exc
        else:
            raise AssertionError("hub= without the hub extra did not raise")
        print("OK")

    asyncio.run(main())
""")


def test_drop_ins_work_without_the_hub_extra() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=False,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr
