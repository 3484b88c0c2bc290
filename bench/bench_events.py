"""Layer 1 (consumer side): lazy event objects and numpy views made from drained records."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import per_event  # type: ignore[import-not-found]

ring_mod = pytest.importorskip("fastfeed._native.ring", reason="fastfeed is not built")
symbols_mod = pytest.importorskip("fastfeed._native.symbols", reason="fastfeed is not built")
meta = pytest.importorskip("fastfeed._records_meta")

LAYOUTS = ["Quote", "Trade", "Greeks", "EquityTrade", "EquityQuote"]


def _batch(layout: str, n: int = 100) -> Any:
    info = meta.LAYOUTS[layout]
    wire, rtype = next(iter(info["rtypes"].items()))
    syms = symbols_mod.SymbolTable()
    sid = syms.id_of("AAPL") if hasattr(syms, "id_of") else 0
    ring = ring_mod.RecordRing(layout, wire, rtype, syms, 1 << 12)
    cons = ring.consumer()
    rec = (rtype.to_bytes(2, "little") + b"\0\0" + int(sid).to_bytes(4, "little")
           + bytes(info["size"] - 8))
    ring.push(rec * n)
    return cons.drain()


@pytest.mark.layer("events")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_event_objects(benchmark: Any, layout: str) -> None:
    try:
        batch = _batch(layout)
        list(batch)
    except Exception as exc:  # noqa: BLE001 - the bench reports, never crashes
        pytest.skip(f"event objects for {layout} unavailable: {exc}")
    per_event(benchmark, len(batch))
    assert benchmark(lambda: len(list(batch))) == len(batch)


@pytest.mark.layer("events")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_event_objects_read_symbol(benchmark: Any, layout: str) -> None:
    try:
        batch = _batch(layout)
        attr = meta.LAYOUTS[layout]["symbol"]["attr"]
        [getattr(e, attr) for e in batch]
    except Exception as exc:  # noqa: BLE001 - the bench reports, never crashes
        pytest.skip(f"event objects for {layout} unavailable: {exc}")
    per_event(benchmark, len(batch))
    benchmark(lambda: [getattr(e, attr) for e in batch])


@pytest.mark.layer("events")
@pytest.mark.parametrize("layout", ["Quote", "EquityQuote"])
def test_numpy_view(benchmark: Any, layout: str) -> None:
    pytest.importorskip("numpy")
    try:
        batch = _batch(layout, 1000)
        batch.to_numpy()
    except Exception as exc:  # noqa: BLE001 - the bench reports, never crashes
        pytest.skip(f"numpy view for {layout} unavailable: {exc}")
    per_event(benchmark, len(batch))
    benchmark(batch.to_numpy)
