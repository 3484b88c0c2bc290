"""listen() / get_event() / SDK-class listen() against listen_batches, in process.

A real ``DXLinkStreamer`` whose decoder is fed DXLink 100-Quote frames directly (no socket, no
simulator): a producer task feeds ``--per-wake`` frames and wakes the streamer's consumers, as
the transport does once per socket read; one consumer takes everything. CPU time per event
(``time.process_time``) of the whole process, so the figures hold on a shared machine; modes
are interleaved round by round and reported as median [min-max] with their ratio to
``listen_batches`` taken inside each round.

    python bench/bench_listen.py [--rounds 7] [--frames 3000] [--per-wake 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastfeed.bench import peers
from fastfeed.bench.payloads import DX_CHANNELS, dxlink_feed_config, dxlink_frames
from fastfeed.dxfeed import Quote
from fastfeed.tastytrade import DXLinkStreamer


def _streamer() -> DXLinkStreamer:
    st = DXLinkStreamer(peers.FakeTastytradeSession("ws://127.0.0.1:9"))
    st._core.feed(dxlink_feed_config("Quote", DX_CHANNELS["Quote"]))
    return st


async def _run(mode: str, frames: list[bytes], n_frames: int, per_wake: int) -> float:
    st = _streamer()
    core = st._core
    total = n_frames * 100
    done = asyncio.get_running_loop().create_future()

    async def batches() -> None:
        n = 0
        async for b in st.listen_batches(Quote):
            n += len(b)
            if n >= total:
                break
        done.set_result(n)

    async def listen(cls: Any = Quote) -> None:
        n = 0
        async for _ in st.listen(cls):
            n += 1
            if n >= total:
                break
        done.set_result(n)

    async def get_event() -> None:
        get = st.get_event
        for _ in range(total):
            await get(Quote)
        done.set_result(total)

    async def sdk() -> None:
        import tastytrade.dxfeed as td

        await listen(td.Quote)

    consumers: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "listen_batches": batches, "listen": listen, "get_event": get_event, "listen_sdk": sdk}
    task = asyncio.ensure_future(consumers[mode]())
    await asyncio.sleep(0)                  # the consumer's cursor exists before any data
    if mode == "get_event":
        assert st.get_event_nowait(Quote) is None   # creates the shared cursor
    t0 = time.process_time()
    for i in range(0, n_frames, per_wake):
        for j in range(i, min(i + per_wake, n_frames)):
            core.feed(frames[j % len(frames)])
        st._on_wake_data()
        await asyncio.sleep(0)
    await done
    cpu = time.process_time() - t0
    await task
    return total / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--per-wake", type=int, default=2)
    a = ap.parse_args()
    try:
        import uvloop
        run: Callable[[Any], Any] = uvloop.run
    except ImportError:
        run = asyncio.run
    frames = [f for _, f in dxlink_frames("quote100")]
    modes = ["listen_batches", "listen", "get_event", "listen_sdk"]
    rates: dict[str, list[float]] = {m: [] for m in modes}
    ratios: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(a.rounds):
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        got = {m: run(_run(m, frames, a.frames, a.per_wake)) for m in order}
        for m in modes:
            rates[m].append(got[m])
            ratios[m].append(got[m] / got["listen_batches"])
    print(f"DXLink 100-Quote frames, in process, {a.frames} frames x {a.rounds} rounds, "
          f"{a.per_wake} frames per wake-up; events per CPU-second, median [min-max]")
    for m in modes:
        v, q = rates[m], ratios[m]
        print(f"  {m:15s} {statistics.median(v) / 1e6:6.2f} M [{min(v) / 1e6:.2f}-{max(v) / 1e6:.2f}]"
              f"   {statistics.median(q):.2f} [{min(q):.2f}-{max(q):.2f}] of listen_batches")


if __name__ == "__main__":
    main()
