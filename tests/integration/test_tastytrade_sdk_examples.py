"""tastytrade 13.2.3's own documented examples (the ``Example usage::`` blocks of its
``DXLinkStreamer`` and ``AlertStreamer`` docstrings), run with only the streamer import changed
to fastfeed's, against fastfeed's simulators. The events printed are the SDK's classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import textwrap
from typing import Any, ClassVar

import pytest

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

tt_streamer = pytest.importorskip("tastytrade.streamer")

from fastfeed.sim import DXLinkServer
from fastfeed.sim.account import AccountStreamerServer

ACCOUNT = "5WT00000"


def _example(cls: type) -> str:
    """The ``Example usage::`` block of ``cls``'s docstring, dedented."""
    doc = inspect.getdoc(cls) or ""
    block = doc.split("Example usage::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip()


async def _run(code: str, session: Any) -> str:
    """Run ``code`` (an example: top-level awaits) with ``session`` defined; its stdout."""
    src = "async def __example__(session):\n" + textwrap.indent(code, "    ")
    ns: dict[str, Any] = {}
    exec(compile(src, "<tastytrade example>", "exec"), ns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        await asyncio.wait_for(ns["__example__"](session), 20)
    return out.getvalue()


async def test_dxlink_streamer_docstring_example() -> None:
    code = _example(tt_streamer.DXLinkStreamer)
    assert "from tastytrade import DXLinkStreamer" in code
    code = code.replace("from tastytrade import DXLinkStreamer",
                        "from fastfeed.tastytrade import DXLinkStreamer")
    async with DXLinkServer(rate=500, seed=3, token="qt", edge_rate=0.0) as srv:
        class Session:   # tastytrade 13.x's session shape (quote token fetched over REST)
            client_kwargs: ClassVar[dict[str, Any]] = {}
            is_test = False

            async def _get(self, path: str, **kwargs: Any) -> dict[str, Any]:
                assert path == "/api-quote-tokens"
                return {"token": "qt", "dxlink-url": srv.url, "level": "api"}

        printed = await _run(code, Session())
    # the SDK's own Quote repr: Decimal prices, as the SDK prints it
    assert printed.startswith(("event_symbol='SPY'", "Quote(")), printed
    assert "bid_price=Decimal('" in printed and "ask_size=Decimal('" in printed


async def test_alert_streamer_docstring_example(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastfeed.account import streamer as _alerts

    code = _example(tt_streamer.AlertStreamer)
    assert "from tastytrade import Account, AlertStreamer" in code
    code = code.replace("from tastytrade import Account, AlertStreamer",
                        "from tastytrade import Account\n"
                        "from fastfeed.tastytrade import AlertStreamer")
    # the example loops forever over orders: stop after the script's three
    lines = code.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip() == "print(order)")
    pad = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
    lines[i + 1:i + 1] = [f"{pad}__seen__.append(order)", f"{pad}if len(__seen__) == 3:",
                          f"{pad}    break"]
    code = "__seen__ = []\n" + "\n".join(lines)
    async with AccountStreamerServer() as srv:
        # the example takes the host from the session (production here): point it at the sim
        monkeypatch.setattr(_alerts, "STREAMER_URL", srv.url)

        class Session:
            is_test = False
            client_kwargs: ClassVar[dict[str, Any]] = {}
            session_token = "sim-token"

            async def refresh(self, force: bool = False) -> None:
                pass

            async def _get(self, path: str, **kwargs: Any) -> dict[str, Any]:
                assert path == "/customers/me/accounts"
                return {"items": [{"account": {
                    "account-number": ACCOUNT, "opened-at": "2024-01-02T10:00:00Z",
                    "nickname": "Individual", "account-type-name": "Individual",
                    "is-closed": False, "day-trader-status": False, "is-firm-error": False,
                    "is-firm-proprietary": False, "is-futures-approved": False,
                    "margin-or-cash": "Margin", "is-foreign": False,
                    "created-at": "2024-01-02T10:00:00Z"}}]}

        printed = await _run(code, Session())
    assert printed.count("\n") >= 3 and ACCOUNT in printed, printed
