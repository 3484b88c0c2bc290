"""A consumer process of the hub's polygon and account feeds, through the drop-ins pointed at a
hub (run as ``python tests/integration/_hub_feed_consumer.py MODE URL ARGS N [QUEUE]``).

MODE ``polygon``: ``fastfeed.polygon.AsyncStreamClient(hub=URL)``, ARGS channels
(``T.AAPL,Q.MSFT``), one ``{"e": dict}`` line per event (the handler's dict). MODE
``massive``: ``fastfeed.massive.WebSocketClient(hub=URL)``, ARGS channels, one ``{"e": [ev,
sym, sequence or timestamp]}`` line per model. MODE ``account``:
``fastfeed.tastytrade.AlertStreamer(hub=URL)``, ARGS account numbers, one ``{"e": message}``
line per ``Order`` notification (QUEUE: its ``queue_size``; the notifications are read only
after a ``read`` line when QUEUE is given).

Protocol (as ``_hub_consumer.py``): ``{"connected": true}``, waits for ``go``, subscribes,
``{"subscribed": true}``, the events until N, ``{"done": stats}``, then answers ``stats`` lines
with ``{"stats": stats}`` until another line (or EOF), and closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import fastfeed.hub  # noqa: F401 - the hub extra is installed


def out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def line() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


async def finish(stats: Any) -> None:
    out({"done": stats()})
    while await line() == "stats":
        out({"stats": stats()})


_METHODS = {"T": "subscribe_stock_trades", "Q": "subscribe_stock_quotes"}


async def polygon(url: str, channels: list[str], n: int) -> None:
    from fastfeed.polygon import AsyncStreamClient

    got: list[Any] = []
    async with AsyncStreamClient("not-sent", "stocks", hub=url) as client:
        await client.login()   # connects (to the hub)
        statuses: list[Any] = []   # (the default status handler prints: not on this stdout)
        await client.change_handler("status", statuses.append)
        out({"connected": True})
        await line()
        by_ev: dict[str, list[str]] = {}
        for c in channels:
            ev, _, sym = c.partition(".")
            by_ev.setdefault(ev, []).append(sym)
        for ev, syms in by_ev.items():
            await getattr(client, _METHODS[ev])(syms, got.append)
        out({"subscribed": True})
        while len(got) < n:
            await client.handle_messages()
            while got and n:
                out({"e": got.pop(0)})
                n -= 1
        await finish(lambda: client.stats)


async def massive(url: str, channels: list[str], n: int) -> None:
    from fastfeed.massive import WebSocketClient

    client = WebSocketClient(market="stocks", hub=url)
    out({"connected": True})
    await line()
    client.subscribe(*channels)
    left = n
    done = asyncio.Event()

    async def processor(msgs: list[Any]) -> None:
        nonlocal left
        for m in msgs:
            if left > 0:
                out({"e": [m.event_type, m.symbol, getattr(m, "sequence_number", None)
                           or getattr(m, "timestamp", None)]})
                left -= 1
        if left <= 0:
            done.set()

    task = asyncio.get_running_loop().create_task(client.connect(processor))
    out({"subscribed": True})
    await done.wait()
    stream = client.websocket
    await finish(lambda: stream.stats)
    await client.close()
    await task


async def account(url: str, accounts: list[str], n: int, queue: int | None) -> None:
    from fastfeed.tastytrade import AlertStreamer

    kw = {} if queue is None else {"queue_size": queue}
    async with AlertStreamer(None, hub=url, **kw) as st:
        out({"connected": True})
        await line()
        it = st.listen("Order")
        await st.subscribe_accounts(accounts)
        out({"subscribed": True})
        if queue is not None:
            while await line() == "stats":
                out({"stats": st.stats})
        got = 0
        if n:
            async for msg in it:
                out({"e": msg})
                got += 1
                if got >= n:
                    break
        await finish(lambda: st.stats)


def main() -> None:
    mode, url, args, n = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
    if mode == "polygon":
        asyncio.run(polygon(url, args, n))
    elif mode == "massive":
        asyncio.run(massive(url, args, n))
    else:
        asyncio.run(account(url, args, n, int(sys.argv[5]) if len(sys.argv) > 5 else None))


if __name__ == "__main__":
    main()
