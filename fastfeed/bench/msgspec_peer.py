"""msgspec decoding into typed ``Struct`` s: the strongest Python decoder baseline (issue #13).

* **polygon**: ``msgspec.json.Decoder(list[Trade | Quote])`` (or ``list[XL2]``) into ``gc=False``
  Structs tagged on ``"ev"``. Every key of the frames is a declared, typed field (the optional
  keys default to ``None``), so msgspec converts every value, as fastfeed's records hold every
  value; book levels are ``tuple[float, float]``.
* **DXLink** (COMPACT ``FEED_DATA``: one flat array of values per event type): a typed envelope,
  then the flat values cut into rows and converted into ``array_like`` Structs, one per event,
  with ``strict=False`` so that the ``"NaN"`` strings of double fields become floats as in
  fastfeed. Enum fields are ``str`` (the cheaper choice for msgspec).

Nothing reads the Structs' fields afterwards, as the fastfeed decode rows read no field from
Python: both sides turn the bytes into typed values. ``tests/unit/test_bench_msgspec.py`` checks
that the Structs hold the same values as fastfeed's records for the bench's frames.
"""

from __future__ import annotations

from collections.abc import Callable
from types import GenericAlias
from typing import Any

from fastfeed.bench.payloads import DX_FIELDS

__all__ = ["available", "dxlink_decoder", "polygon_decoder"]


def available() -> bool:
    try:
        import msgspec  # noqa: F401
    except ImportError:
        return False
    return True


def _types() -> dict[str, Any]:
    """The Struct types (built on first use: msgspec is an optional dependency)."""
    global _TYPES
    if _TYPES:
        return _TYPES
    from msgspec import Struct, field

    # ---- polygon stocks and crypto (tagged on "ev")
    class PgTrade(Struct, tag_field="ev", tag="T", gc=False, omit_defaults=True):
        sym: str
        x: int
        p: float
        s: int
        t: int
        q: int
        z: int
        i: str | None = None
        c: list[int] | None = None
        trfi: int | None = None
        trft: int | None = None

    class PgQuote(Struct, tag_field="ev", tag="Q", gc=False, omit_defaults=True):
        sym: str
        bx: int
        bp: float
        bs: int
        ax: int
        ap: float
        as_: int = field(name="as")
        t: int
        q: int
        z: int
        c: int | None = None
        i: list[int] | None = None

    class PgXL2(Struct, tag_field="ev", tag="XL2", gc=False, omit_defaults=True):
        pair: str
        t: int
        r: int
        x: int
        b: list[tuple[float, float]]
        a: list[tuple[float, float]]

    # ---- DXLink COMPACT rows (tastytrade 13.2.3's field order = the bench frames' order)
    class DxQuote(Struct, array_like=True, gc=False):
        eventSymbol: str
        eventTime: int
        sequence: int
        timeNanoPart: int
        bidTime: int
        bidExchangeCode: str
        askTime: int
        askExchangeCode: str
        bidPrice: float
        askPrice: float
        bidSize: float
        askSize: float

    class DxTrade(Struct, array_like=True, gc=False):
        eventSymbol: str
        eventTime: int
        time: int
        timeNanoPart: int
        sequence: int
        exchangeCode: str
        dayId: int
        tickDirection: str
        extendedTradingHours: bool
        price: float
        change: float
        size: float
        dayVolume: float
        dayTurnover: float

    class DxGreeks(Struct, array_like=True, gc=False):
        eventSymbol: str
        eventTime: int
        eventFlags: int
        index: int
        time: int
        sequence: int
        price: float
        volatility: float
        delta: float
        gamma: float
        theta: float
        rho: float
        vega: float

    class DxTimeAndSale(Struct, array_like=True, gc=False):
        eventSymbol: str
        eventTime: int
        eventFlags: int
        index: int
        time: int
        timeNanoPart: int
        sequence: int
        exchangeCode: str
        price: float
        size: float
        bidPrice: float
        askPrice: float
        tradeThroughExempt: str
        aggressorSide: str
        spreadLeg: bool
        extendedTradingHours: bool
        validTick: bool
        type: str
        buyer: str | None
        seller: str | None
        exchangeSaleConditions: str | None

    class FeedData(Struct, gc=False):
        type: str
        channel: int
        data: list[str | list[Any]]

    rows = {"Quote": DxQuote, "Trade": DxTrade, "Greeks": DxGreeks,
            "TimeAndSale": DxTimeAndSale}
    for name, cls in rows.items():  # the Structs follow the frames' field order exactly
        assert cls.__struct_fields__ == DX_FIELDS[name], name
    _TYPES = {"T": PgTrade, "Q": PgQuote, "XL2": PgXL2, "FeedData": FeedData, "rows": rows}
    return _TYPES


_TYPES: dict[str, Any] = {}


def polygon_decoder(cluster: str) -> Callable[[bytes], list[Any]]:
    """``decode(frame) -> list of Structs`` for a polygon cluster (stocks: T/Q, crypto: XL2)."""
    import msgspec

    t = _types()
    item = t["XL2"] if cluster == "crypto" else t["T"] | t["Q"]
    return msgspec.json.Decoder(GenericAlias(list, (item,))).decode


def dxlink_decoder() -> Callable[[bytes], list[Any]]:
    """``decode(frame) -> list of row Structs`` for COMPACT FEED_DATA frames."""
    import msgspec

    t = _types()
    envelope = msgspec.json.Decoder(t["FeedData"]).decode
    convert = msgspec.convert
    layouts = {name: (GenericAlias(list, (cls,)), len(DX_FIELDS[name]))
               for name, cls in t["rows"].items()}

    def decode(frame: bytes) -> list[Any]:
        data = envelope(frame).data
        out: list[Any] = []
        for k in range(0, len(data), 2):
            typ, width = layouts[data[k]]
            vals = data[k + 1]
            out += convert([vals[i:i + width] for i in range(0, len(vals), width)], typ,
                           strict=False)
        return out

    return decode


def measure(feed: str, cluster: str, frames: list[bytes], events_per_pass: int,
            duration: float) -> Any:
    """The ``msgspec-typed`` bench row: decode every frame into Structs, count the events."""
    from fastfeed.bench.peers import DecodeLoop, Unavailable

    if not available():
        raise Unavailable("msgspec not installed (pip install 'fastfeed[bench]')")
    decode = dxlink_decoder() if feed == "dxlink" else polygon_decoder(cluster)

    def one_pass() -> int:
        n = 0
        for f in frames:
            n += len(decode(f))
        return n

    return DecodeLoop(frames, events_per_pass, sum(map(len, frames))).run(one_pass, duration)
