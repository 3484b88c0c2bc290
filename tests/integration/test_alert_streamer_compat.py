"""tastytrade 13.2.3's own AlertStreamer and fastfeed's, against the same simulator script,
receive the same objects (tastytrade model instances, equal field by field); fastfeed's own
classes carry the same field values."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

tastytrade = pytest.importorskip("tastytrade")
from tastytrade import streamer as tt_streamer
from tastytrade.account import AccountBalance as TTBalance
from tastytrade.account import CurrentPosition as TTPosition
from tastytrade.account import TradingStatus as TTStatus
from tastytrade.order import PlacedComplexOrder as TTComplex
from tastytrade.order import PlacedOrder as TTOrder
from tastytrade.watchlists import Watchlist as TTWatchlist

import fastfeed.alerts as ff
from fastfeed.sim.account import AccountStreamerServer
from fastfeed.tastytrade import AlertStreamer

pytestmark = pytest.mark.timeout(30)
ACCOUNT = "5WT00000"

# (tastytrade class, fastfeed class, how many the default script sends)
EXPECTED = [
    (TTBalance, ff.AccountBalance, 2),
    (TTStatus, ff.TradingStatus, 1),
    (TTOrder, ff.PlacedOrder, 3),
    (TTPosition, ff.CurrentPosition, 1),
    (TTComplex, ff.PlacedComplexOrder, 1),
    (tt_streamer.ExternalTransaction, ff.ExternalTransaction, 1),
    (tt_streamer.UnderlyingYearGainSummary, ff.UnderlyingYearGainSummary, 1),
    (tt_streamer.QuoteAlert, ff.QuoteAlert, 1),
    (TTWatchlist, ff.Watchlist, 1),
]


class FakeSession:
    is_test = False
    proxy = None
    client_kwargs: ClassVar[dict[str, Any]] = {}

    def __init__(self, token: str = "sim-token") -> None:
        self.session_token = token

    async def refresh(self, force: bool = False) -> None:
        pass


class Acct:
    account_number = ACCOUNT


async def _collect(listen: Any, cls: Any, n: int) -> list[Any]:
    out = []
    it = listen(cls)
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(it), 5))
    await it.aclose()
    return out


async def _subscribe_all(st: Any) -> None:
    await st.subscribe_accounts([Acct()])
    await st.subscribe_quote_alerts()
    await st.subscribe_public_watchlists()


async def test_same_objects_as_tastytrade() -> None:
    # tastytrade's streamer against its own server instance (same deterministic script)
    async with AccountStreamerServer() as srv_tt:
        tt = tt_streamer.AlertStreamer(FakeSession())
        tt.base_url = srv_tt.url
        async with tt:
            await _subscribe_all(tt)
            got_tt = {c: await _collect(tt.listen, c, n) for c, _f, n in EXPECTED}
        tt_sent = [orjson_type(r.data) for r in srv_tt.sent]
        tt_requests = [r.data for r in srv_tt.received]

    async with AccountStreamerServer() as srv_ff:
        async with AlertStreamer(FakeSession(), url=srv_ff.url) as st:
            # fan-out: listeners for tastytrade's and fastfeed's classes of one type each see
            # every notification (both are listening before the notifications arrive)
            loop = asyncio.get_running_loop()
            t_tt = {c: loop.create_task(_collect(st.listen, c, n)) for c, _f, n in EXPECTED}
            t_ff = {f: loop.create_task(_collect(st.listen, f, n)) for _c, f, n in EXPECTED}
            await asyncio.sleep(0.01)
            await _subscribe_all(st)
            got_ff = {c: await t for c, t in t_tt.items()}
            own = {f: await t for f, t in t_ff.items()}
        ff_sent = [orjson_type(r.data) for r in srv_ff.sent]
        ff_requests = [r.data for r in srv_ff.received]

    assert [t for t in ff_sent if t] == [t for t in tt_sent if t]  # same script played
    for cls, fcls, n in EXPECTED:
        a, b = got_tt[cls], got_ff[cls]
        assert len(a) == len(b) == n
        for x, y in zip(a, b, strict=True):
            assert type(x) is type(y) is cls
            assert x == y  # pydantic equality: every field
            # fastfeed's own class: same field names, same values (enums compare as str)
        for x, y in zip(a, own[fcls], strict=True):
            assert isinstance(y, fcls)
            dumped = x.model_dump()
            for name, value in y.to_dict().items():
                assert name in dumped, f"{fcls.__name__}.{name} is not a tastytrade field"
                assert _plain(dumped[name]) == _plain(value), (fcls.__name__, name)
    # same request shapes (except the source string); request-ids increase from 1
    import orjson

    def shape(raw: bytes) -> tuple[Any, ...]:
        m = orjson.loads(raw)
        return (m["auth-token"], m["action"], m["request-id"], m.get("value"))

    assert [shape(r) for r in ff_requests] == [shape(r) for r in tt_requests]


def _plain(v: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(v, BaseModel):
        return _plain(v.model_dump())
    if isinstance(v, ff.AlertData):
        return _plain(v.to_dict())
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if k != "extra"}
    if isinstance(v, str):
        return str(v)  # StrEnum → str
    return v


def orjson_type(raw: bytes) -> str | None:
    import orjson

    try:
        m = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return m.get("type") if isinstance(m, dict) else None
