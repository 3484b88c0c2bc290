"""Handlers see polygon events in wire order across event types (T, Q, T ... as framed)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from fastfeed.polygon import AsyncStreamClient
from fastfeed.sim import PolygonServer


def wire_events(srv: PolygonServer, types: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rec in srv.sent:
        msg = orjson.loads(rec.data)
        out += [e for e in msg if isinstance(e, dict) and e.get("ev") in types]
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("deliver", ["dict", "event"])
async def test_handlers_get_trades_and_quotes_in_wire_order(deliver: str) -> None:
    async with PolygonServer(rate=20_000, events_per_frame=25, seed=11, quirks=False) as srv:
        client = AsyncStreamClient("key", "stocks", host=srv.client_host)
        got: list[dict[str, Any]] = []

        def handler(msg: Any) -> None:
            got.append(msg if isinstance(msg, dict) else msg.to_dict())

        await client.change_handler("Q", handler, deliver=deliver)  # type: ignore[arg-type]
        await client.subscribe_stock_trades(None, handler, deliver=deliver)  # type: ignore[arg-type]
        await client.subscribe_stock_quotes(None, handler, deliver=deliver)  # type: ignore[arg-type]
        while len(got) < 3000:
            await asyncio.wait_for(client.handle_messages(), 5)
        srv.inject("stall")
        await asyncio.sleep(0.2)
        while client.stats["events"] > len(got):
            await asyncio.wait_for(client.handle_messages(), 5)
        await client.close_stream()
    expected = wire_events(srv, {"T", "Q"})
    assert {e["ev"] for e in got} == {"T", "Q"}
    assert got == expected[: len(got)]            # same events, same order, same values
    assert len(got) == len(expected)


@pytest.mark.timeout(60)
async def test_unknown_wire_keys_are_counted_not_silently_lost() -> None:
    async with PolygonServer(rate=20_000, events_per_frame=25, seed=12, quirks=True) as srv:
        client = AsyncStreamClient("key", "stocks", host=srv.client_host)
        got: list[dict[str, Any]] = []
        await client.change_handler("Q", got.append)
        await client.subscribe_stock_trades(None, got.append)
        await client.subscribe_stock_quotes(None, got.append)
        while len(got) < 5000:
            await asyncio.wait_for(client.handle_messages(), 5)
        await client.close_stream()
    sent_unknown = sum(1 for e in wire_events(srv, {"T", "Q"}) for k in e
                       if k not in ("ev", "sym", "x", "i", "z", "p", "s", "ds", "c", "t", "q", "trfi",
                                    "trft", "bx", "bp", "bs", "ax", "ap", "as"))
    assert sent_unknown > 0
    assert client.stats["unknown_keys"] > 0
