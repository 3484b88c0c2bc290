"""Massive's own WebSocketClient against fastfeed's polygon simulator: every event type of every
cluster is received and parsed into Massive's models, field for field equal to the frames the
simulator sent (the simulator speaks the real protocol)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from fastfeed.sim import PolygonServer

massive = pytest.importorskip("massive")
from massive import WebSocketClient
from massive.websocket.models import (
    CryptoQuote,
    CryptoTrade,
    CurrencyAgg,
    EquityAgg,
    EquityQuote,
    EquityTrade,
    FairMarketValue,
    ForexQuote,
    Imbalance,
    IndexValue,
    Level2Book,
    LimitUpLimitDown,
)

pytestmark = [pytest.mark.peer, pytest.mark.timeout(60)]

KEY = "massive-key"

# cluster -> {ev: massive model}
CASES: dict[str, dict[str, type]] = {
    "stocks": {"T": EquityTrade, "Q": EquityQuote, "A": EquityAgg, "AM": EquityAgg,
               "LULD": LimitUpLimitDown, "NOI": Imbalance, "FMV": FairMarketValue},
    "options": {"T": EquityTrade, "Q": EquityQuote, "A": EquityAgg, "AM": EquityAgg,
                "FMV": FairMarketValue},
    "forex": {"C": ForexQuote, "CA": CurrencyAgg, "CAS": CurrencyAgg, "FMV": FairMarketValue},
    "crypto": {"XT": CryptoTrade, "XQ": CryptoQuote, "XA": CurrencyAgg, "XAS": CurrencyAgg,
               "XL2": Level2Book, "FMV": FairMarketValue},
    "indices": {"A": EquityAgg, "AM": EquityAgg, "V": IndexValue},
}

# massive attribute <- wire key, for the spot checks (polygon-api.md §2.4)
FIELDS: dict[type, dict[str, str]] = {
    EquityTrade: {"symbol": "sym", "price": "p", "size": "s", "timestamp": "t",
                  "conditions": "c", "sequence_number": "q"},
    EquityQuote: {"symbol": "sym", "bid_price": "bp", "ask_price": "ap", "bid_size": "bs",
                  "ask_size": "as", "timestamp": "t"},
    EquityAgg: {"symbol": "sym", "open": "o", "close": "c", "high": "h", "low": "l",
                "volume": "v", "start_timestamp": "s", "end_timestamp": "e", "otc": "otc"},
    LimitUpLimitDown: {"symbol": "T", "high_price": "h", "low_price": "l", "timestamp": "t"},
    Imbalance: {"symbol": "T", "auction_type": "a", "imbalance_quantity": "o",
                "book_clearing_price": "b"},
    FairMarketValue: {"ticker": "sym", "fmv": "fmv", "timestamp": "t"},
    ForexQuote: {"pair": "p", "ask_price": "a", "bid_price": "b", "exchange_id": "x"},
    CurrencyAgg: {"pair": "pair", "open": "o", "close": "c", "volume": "v"},
    CryptoTrade: {"pair": "pair", "price": "p", "size": "s", "id": "i", "exchange": "x"},
    CryptoQuote: {"pair": "pair", "bid_price": "bp", "ask_size": "as", "exchange_id": "x"},
    Level2Book: {"pair": "pair", "bid_prices": "b", "ask_prices": "a", "timestamp": "t"},
    IndexValue: {"ticker": "T", "value": "val", "timestamp": "t"},
}


@pytest.mark.parametrize("cluster", list(CASES))
async def test_massive_parses_every_event_type(cluster: str) -> None:
    want = CASES[cluster]
    async with PolygonServer(cluster=cluster, api_key=KEY, rate=4000,
                             events_per_frame=20) as srv:
        client = WebSocketClient(api_key=KEY, feed=srv.host_port, market=cluster, secure=False,
                                 subscriptions=[f"{ev}.*" for ev in want])
        got: list[Any] = []
        done = asyncio.Event()

        async def handle(msgs: list[Any]) -> None:
            got.extend(msgs)
            if {m.event_type for m in got} >= set(want):
                done.set()

        task = asyncio.create_task(client.connect(handle))
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            await client.close()
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the cancelled task's end is not checked here
                pass
        await asyncio.sleep(0.05)
        sent = [e for r in srv.sent for e in orjson.loads(r.data) if e.get("ev") != "status"]
        # massive parses in order; every model is the next data event of the frames sent
        assert len(got) <= len(sent)
        for model, wire in zip(got, sent[:len(got)], strict=True):
            assert model.event_type == wire["ev"]
            assert type(model) is want[wire["ev"]], (wire["ev"], type(model))
            for attr, key in FIELDS[type(model)].items():
                assert getattr(model, attr) == wire.get(key), (wire["ev"], attr)
