"""tastytrade 13.2.3's own DXLinkStreamer and fastfeed's, same simulator seed, event by event.

fastfeed's ``listen(tastytrade.dxfeed.X)`` gives SDK-faithful events (``fastfeed._sdk_events``):
their ``model_dump()`` must equal the SDK's for every event the SDK delivers, for every event
type both support. The only events fastfeed has in addition are those the SDK drops (a
required field NaN / null, a fractional value in an ``int`` field); the one value difference
is a ``"\\u0000"`` char, which fastfeed reads as ``""``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from fastfeed.sim import DXLinkServer

pytestmark = [pytest.mark.peer, pytest.mark.timeout(120)]

SYMBOLS = ["SPY", "SPX", "BTC/USD:CXTALP"]
N = 60
TYPES = ["Quote", "Trade", "Greeks", "Summary", "Profile", "Candle", "TimeAndSale", "TheoPrice",
         "Underlying"]
CANDLE_START = datetime(2026, 1, 2, tzinfo=UTC)


def _server(seed: int) -> DXLinkServer:
    return DXLinkServer(rate=2000, events_per_frame=4, seed=seed, token="qt", edge_rate=0.2)


async def _subscribe(st: Any, cls: Any) -> None:
    if cls.__name__ == "Candle":
        await st.subscribe_candle(["SPY", "AAPL"], "1m", CANDLE_START)
    else:
        await st.subscribe(cls, SYMBOLS)


async def _tastytrade_events(etype: str, seed: int) -> list[Any]:
    import tastytrade.dxfeed as td
    from tastytrade import DXLinkStreamer

    cls = getattr(td, etype)
    async with _server(seed) as srv:
        class Session:
            client_kwargs: ClassVar[dict[str, Any]] = {}
            is_test = False
            proxy = None

            async def _get(self, path: str) -> dict[str, Any]:
                return {"token": "qt", "dxlink-url": srv.url, "level": "api"}

        async with DXLinkStreamer(Session()) as st:  # type: ignore[arg-type]
            await _subscribe(st, cls)
            return [await asyncio.wait_for(st.get_event(cls), 10) for _ in range(N)]


async def _fastfeed_events(etype: str, seed: int, n: int) -> list[Any]:
    import tastytrade.dxfeed as td

    from fastfeed.tastytrade import DXLinkStreamer

    cls = getattr(td, etype)     # the SDK's own class: SDK-faithful events
    async with _server(seed) as srv:
        class Session:
            dxlink_url = srv.url
            streamer_token = "qt"
            proxy = None

        async with DXLinkStreamer(Session()) as st:
            it = st.listen(cls)
            await _subscribe(st, cls)
            out = []
            async for ev in it:
                out.append(ev)
                if len(out) >= n:
                    break
            return out


def _nul_free(d: dict[str, Any]) -> dict[str, Any]:
    return {k: ("" if v == "\x00" else v) for k, v in d.items()}


def _sdk_would_drop(ev: Any) -> bool:
    """A required field without a value, or a fractional value in an int field."""
    for name, info in type(ev).model_fields.items():
        v = getattr(ev, name)
        if isinstance(v, float):
            return True          # the SDK's int field got a fractional value
        if info.annotation is type(None):
            continue             # TimeAndSale buyer / seller: always None
        if info.is_required() and (v is None or (isinstance(v, Decimal) and not v.is_finite())):
            return True
    return False


@pytest.mark.parametrize("etype", TYPES)
async def test_same_events_as_tastytrade_13_2_3(etype: str) -> None:
    td = pytest.importorskip("tastytrade.dxfeed")
    seed = 42
    tt = await _tastytrade_events(etype, seed)
    ff = await _fastfeed_events(etype, seed, N * 8)
    sdk_cls = getattr(td, etype)
    matched = extra = 0
    for ev in ff:
        if matched == len(tt):
            break
        assert isinstance(ev, sdk_cls)
        if _sdk_would_drop(ev):      # the only reason for the SDK not to have an event
            extra += 1
            continue
        want = tt[matched]
        assert _nul_free(ev.model_dump()) == _nul_free(want.model_dump()), (
            f"fastfeed {ev!r} vs tastytrade {want!r}")
        for name in sdk_cls.model_fields:
            a, b = getattr(ev, name), getattr(want, name)
            assert type(a) is type(b) or (b == "\x00" and a == ""), (name, a, b)
        matched += 1
    assert matched == len(tt), (etype, matched, extra)


async def test_fast_float_events_stay_the_default() -> None:
    td = pytest.importorskip("tastytrade.dxfeed")
    from fastfeed import dxfeed
    from fastfeed.tastytrade import DXLinkStreamer

    async with _server(5) as srv:
        class Session:
            dxlink_url = srv.url
            streamer_token = "qt"
            proxy = None

        async with DXLinkStreamer(Session()) as st:
            assert st.session is not None and st.session.dxlink_url == srv.url
            fast, sdk = st.listen(dxfeed.Quote), st.listen(td.Quote)
            await st.subscribe(dxfeed.Quote, ["SPY"])
            a = await asyncio.wait_for(fast.__anext__(), 10)
            b = await asyncio.wait_for(sdk.__anext__(), 10)
            assert type(a) is dxfeed.Quote and isinstance(a.bid_price, float)
            assert isinstance(b, td.Quote) and isinstance(b.bid_price, Decimal)
            c = await asyncio.wait_for(st.get_event(td.Quote), 10)
            assert isinstance(c, td.Quote)
            assert isinstance(await asyncio.wait_for(st.get_event(dxfeed.Quote), 10),
                              dxfeed.Quote)
            latest = st.latest(td.Quote, "SPY")
            assert isinstance(latest, td.Quote) and latest.event_symbol == "SPY"
            await fast.aclose()
            await sdk.aclose()

        async with DXLinkStreamer(Session(), events="sdk") as st:
            it = st.listen(dxfeed.Quote)
            await st.subscribe("Quote", ["SPY"])
            ev = await asyncio.wait_for(it.__anext__(), 10)
            assert isinstance(ev, td.Quote) and isinstance(ev.bid_price, Decimal)
            await it.aclose()

        async with DXLinkStreamer(Session(), events="fast") as st:
            it = st.listen(td.Quote)
            await st.subscribe(td.Quote, ["SPY"])
            ev = await asyncio.wait_for(it.__anext__(), 10)
            assert type(ev) is dxfeed.Quote
            await it.aclose()

    with pytest.raises(ValueError):
        DXLinkStreamer(Session(), events="decimal")  # type: ignore[arg-type]
