"""Layer 1: the record ring (claim, write, publish; drain into EventBatches)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import per_event  # type: ignore[import-not-found]

ring_mod = pytest.importorskip("fastfeed._native.ring", reason="fastfeed is not built")
symbols_mod = pytest.importorskip("fastfeed._native.symbols", reason="fastfeed is not built")
meta = pytest.importorskip("fastfeed._records_meta")

N = 100_000


def _ring(layout: str, capacity: int = 1 << 16, policy: str = "drop_oldest") -> Any:
    info = meta.LAYOUTS[layout]
    wire, rtype = next(iter(info["rtypes"].items()))
    return ring_mod.RecordRing(layout, wire, rtype, symbols_mod.SymbolTable(), capacity, policy)


def _record(layout: str) -> bytes:
    size = meta.LAYOUTS[layout]["size"]
    rtype = next(iter(meta.LAYOUTS[layout]["rtypes"].values()))
    return rtype.to_bytes(2, "little") + bytes(size - 2)


@pytest.mark.layer("ring")
@pytest.mark.parametrize("layout", ["Quote", "Greeks", "EquityTrade"])
@pytest.mark.parametrize("per_message", [1, 100])
def test_ring_publish_drain_c_loop(benchmark: Any, layout: str, per_message: int) -> None:
    hook = getattr(ring_mod, "bench_push_drain", None)
    if hook is None:
        pytest.skip("fastfeed._native.ring.bench_push_drain is not available")
    ring = _ring(layout)
    cons = ring.consumer()
    rec = _record(layout)
    per_event(benchmark, N)
    assert benchmark(hook, ring, cons, rec, N, per_message) == N


@pytest.mark.layer("ring")
@pytest.mark.parametrize("policy", ["drop_oldest", "backpressure"])
def test_ring_push_drain_python(benchmark: Any, policy: str) -> None:
    ring = _ring("Quote", policy=policy)
    cons = ring.consumer()
    block = _record("Quote") * 100

    def run() -> int:
        n = 0
        for _ in range(100):
            ring.push(block)
            n += len(cons.drain())
        return n

    per_event(benchmark, 10_000)
    assert benchmark(run) == 10_000
