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


# -- side by side with tastytrade's pydantic models (issue: >= 15x its Quote construction) -----

_TT_QUOTE_VALUES = ["SPY", 0, 0, 0, 1767312000123, "Q", 1767312000120, "Q", 576.88, 576.9, 300.0, 200.0]


def _quote_batch_like_tastytrade(n: int = 100) -> Any:
    """A drained batch of ``n`` Quote records holding the values tastytrade builds below."""
    from fastfeed.dxfeed import Quote

    syms = symbols_mod.SymbolTable()
    ring = ring_mod.RecordRing("Quote", "Quote", 1, syms, 1 << 12)
    cons = ring.consumer()
    names = Quote.FIELDS
    q = Quote(**dict(zip(names, _TT_QUOTE_VALUES, strict=True)))
    raw = bytearray(q.record)
    raw[4:8] = syms.intern_str("SPY").to_bytes(4, "little")
    ring.push(bytes(raw) * n)
    return cons.drain()


@pytest.mark.layer("events")
@pytest.mark.benchmark(group="quote-objects")
def test_quote_objects_fastfeed(benchmark: Any) -> None:
    batch = _quote_batch_like_tastytrade()
    per_event(benchmark, len(batch))
    out = benchmark(lambda: list(batch))
    assert out[0].bid_price == 576.88 and out[0].event_symbol == "SPY"


@pytest.mark.layer("events")
@pytest.mark.benchmark(group="quote-objects")
def test_quote_objects_tastytrade_pydantic(benchmark: Any) -> None:
    dxfeed = pytest.importorskip("tastytrade.dxfeed", reason="tastytrade is not installed")
    flat = _TT_QUOTE_VALUES * 100
    per_event(benchmark, 100)
    out = benchmark(lambda: dxfeed.Quote.from_stream(flat))
    assert len(out) == 100 and float(out[0].bid_price) == 576.88
