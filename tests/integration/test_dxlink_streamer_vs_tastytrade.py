"""tastytrade 13.2.3's own DXLinkStreamer and fastfeed's, same simulator seed, field by field.

Documented differences only: fastfeed keeps NaN/Inf (tastytrade drops events whose required
Decimal fields are NaN and turns NaN/Inf sizes into 0), and fastfeed values are floats where
tastytrade has Decimals.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from typing import Any

import pytest

from fastfeed.sim import DXLinkServer

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

SYMBOLS = ["SPY", "AAPL", "MSFT"]
N = 120


def _same(tt_value: Any, ff_value: Any) -> bool:
    if isinstance(tt_value, Decimal):
        if isinstance(ff_value, float) and (math.isnan(ff_value) or math.isinf(ff_value)):
            return tt_value == 0          # 13.x maps NaN/Inf of optional fields to the default
        return float(tt_value) == ff_value
    if isinstance(tt_value, bool):
        return bool(ff_value) == tt_value
    if isinstance(tt_value, int) and isinstance(ff_value, float):
        return float(tt_value) == ff_value
    if tt_value is None:
        return ff_value in (None, "") or (isinstance(ff_value, float) and math.isnan(ff_value))
    return bool(tt_value == ff_value)


async def _tastytrade_quotes(seed: int) -> list[Any]:
    from tastytrade import DXLinkStreamer
    from tastytrade.dxfeed import Quote

    async with DXLinkServer(rate=2000, events_per_frame=4, seed=seed, token="qt") as srv:
        class Session:
            client_kwargs: dict[str, Any] = {}
            is_test = False
            proxy = None

            async def _get(self, path: str) -> dict[str, Any]:
                return {"token": "qt", "dxlink-url": srv.url, "level": "api"}

        async with DXLinkStreamer(Session()) as st:  # type: ignore[arg-type]
            await st.subscribe(Quote, SYMBOLS)
            return [await asyncio.wait_for(st.get_event(Quote), 10) for _ in range(N)]


async def _fastfeed_quotes(seed: int, n: int) -> list[Any]:
    from tastytrade.dxfeed import Quote as TTQuote   # tastytrade's class is accepted

    from fastfeed.tastytrade import DXLinkStreamer

    async with DXLinkServer(rate=2000, events_per_frame=4, seed=seed, token="qt") as srv:
        class Session:
            dxlink_url = srv.url
            streamer_token = "qt"
            proxy = None

        async with DXLinkStreamer(Session()) as st:
            it = st.listen(TTQuote)
            await st.subscribe(TTQuote, SYMBOLS)
            out = []
            async for ev in it:
                out.append(ev)
                if len(out) >= n:
                    break
            return out


async def test_same_events_as_tastytrade_13_2_3() -> None:
    pytest.importorskip("tastytrade")
    seed = 42
    tt = await _tastytrade_quotes(seed)
    ff = await _fastfeed_quotes(seed, N * 2)
    fields = list(type(tt[0]).model_fields)
    matched = 0
    skipped_nan = 0
    j = 0
    for ev in ff:
        if matched == len(tt):
            break
        t = tt[matched]
        if all(_same(getattr(t, f), getattr(ev, f)) for f in fields):
            matched += 1
            continue
        # the only allowed reason for tastytrade not to have this event: a NaN/Inf it drops
        assert any(isinstance(getattr(ev, f), float) and not math.isfinite(getattr(ev, f))
                   for f in ("bid_price", "ask_price", "bid_size", "ask_size")), (
            f"event {j} differs: fastfeed {ev!r} vs tastytrade {t!r}")
        skipped_nan += 1
        j += 1
    assert matched == len(tt), (matched, skipped_nan)
