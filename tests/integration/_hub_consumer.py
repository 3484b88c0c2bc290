"""A hub consumer process for the hub tests (run as ``python tests/integration/_hub_consumer.py
NAME|URL TYPE SYMBOLS N``).

Protocol: prints ``{"connected": ...}`` once connected, waits for a ``go`` line on stdin,
subscribes, prints ``{"subscribed": true}``, then one ``{"e": [symbol, hex]}`` line per event
(the record without its 16-byte header, whose ts_recv and symbol id are local) until N events,
then ``{"done": stats}``; then answers ``stats`` lines with ``{"stats": stats}`` until any
other line (or EOF) on stdin, and closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

import fastfeed.hub


def out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(name: str, etype: str, symbols: list[str], n: int) -> None:
    async with fastfeed.hub.connect(name if "://" in name else f"ipc://{name}") as st:
        out({"connected": True})
        await asyncio.to_thread(sys.stdin.readline)
        it = st.listen(etype)   # the cursor before the subscription: nothing is missed
        await st.subscribe(etype, symbols)
        out({"subscribed": True})
        got = 0
        if n:
            async for ev in it:
                out({"e": [ev.eventSymbol, ev.record[16:].hex()]})
                got += 1
                if got >= n:
                    break
        out({"done": st.stats})
        while (await asyncio.to_thread(sys.stdin.readline)).strip() == "stats":
            out({"stats": st.stats})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])))
