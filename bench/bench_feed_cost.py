"""Where a one-event polygon frame's time goes in the ``polygon-stocks1`` decode row (issue #13).

The row calls ``PolygonDecoder.feed(frame)`` once per frame from the bench's Python loop and
drains every 32 frames (``ff_decode_pass`` in ``fastfeed/bench/scenarios.py``: the
loop used below, with parts swapped out). Each component is the difference of two
loops, best of 7 runs, CPU time (``time.process_time``):

* the bench loop with a C call (``len``) in place of ``feed`` and no drain;
* ``feed(b"[]")`` with ``ts_recv`` set (no clock read): the fixed cost of a call;
* the same with ``ts_recv == 0``: the receive clock (``clock.h``'s ``ff_now_ns``: the
  calibrated TSC clock where the kernel keeps time with the TSC, else ``clock_gettime``);
* the bench's frames with ``ts_recv`` set: one event's decode, publish and drain share;
* msgspec's row (``fastfeed/bench/msgspec_peer.py``'s decode_pass) on the same frames, and what
  3x of it allows per frame.

    taskset -c 1 python bench/bench_feed_cost.py [--reps 6000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastfeed import PolygonDecoder
from fastfeed.bench.msgspec_peer import decode_pass, polygon_decoder
from fastfeed.bench.payloads import frame_set
from fastfeed.bench.scenarios import ff_decode_chunks, ff_decode_pass


def _ff_pass(feed: Callable[[bytes], Any], drain: Callable[[str], Any],
             chunks: list[list[bytes]]) -> int:
    """The bench's own decode loop (1-event frames: a drain every 32 frames)."""
    return ff_decode_pass(feed, drain, ("T", "Q"), chunks)


def _best(fn: Callable[[], object], frames: int, reps: int) -> float:
    """ns per frame, best of 7."""
    best = float("inf")
    for _ in range(7):
        t0 = time.process_time()
        for _ in range(reps):
            fn()
        best = min(best, (time.process_time() - t0) / (reps * frames) * 1e9)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=6000, help="passes over the 32 frames per run")
    reps = ap.parse_args().reps
    frames = frame_set("polygon", "stocks1").frames
    chunks = ff_decode_chunks(frames, len(frames))
    empty = ff_decode_chunks([b"[]"] * len(frames), len(frames))
    k = len(frames)
    dec = PolygonDecoder(cluster="stocks")

    def nodrain(t: str) -> Sequence[Any]:
        return ()

    harness = _best(lambda: _ff_pass(len, nodrain, chunks), k, reps)
    dec.ts_recv = 1
    call = _best(lambda: _ff_pass(dec.feed, nodrain, empty), k, reps)
    one_noclock = _best(lambda: _ff_pass(dec.feed, dec.drain, chunks), k, reps)
    dec.ts_recv = 0
    call_clock = _best(lambda: _ff_pass(dec.feed, nodrain, empty), k, reps)
    one = _best(lambda: _ff_pass(dec.feed, dec.drain, chunks), k, reps)
    decode = polygon_decoder("stocks")
    ms = _best(lambda: decode_pass(decode, frames), k, reps)
    print(f"bench loop + a C call (len)              {harness:6.1f} ns/frame")
    print(f"feed(b'[]') fixed cost, ts_recv set      {call - harness:6.1f}")
    print(f"receive clock (ff_now_ns)                {call_clock - call:6.1f}")
    print(f"one event (decode, publish, drain share) {one_noclock - call:6.1f}")
    print(f"whole frame, as the bench row            {one:6.1f}  ({1e3 / one:.2f} M ev/s)")
    print(f"msgspec typed, its bench row             {ms:6.1f}  (3x allows {ms / 3:.1f})")
    print(f"ratio {ms / one:.2f}x (without the clock read: {ms / one_noclock:.2f}x)")


if __name__ == "__main__":
    main()
