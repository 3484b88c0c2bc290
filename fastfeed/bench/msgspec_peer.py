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

``python -m fastfeed.bench.msgspec_peer [--rounds N] [--duration S] [SCENARIO ...]`` measures the
decode rows side by side in one process: each round times fastfeed's decoder (the ``ff-decoder``
row) then msgspec on the same frames, and the ratio of the two is taken within the round; it
prints the medians with min-max over the rounds and the load average before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from types import GenericAlias
from typing import Any

from fastfeed.bench.payloads import DX_FIELDS

__all__ = ["available", "decode_pass", "dxlink_decoder", "main", "polygon_decoder", "side_by_side"]


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


def decode_pass(decode: Callable[[bytes], list[Any]], frames: list[bytes]) -> int:
    """One pass of the ``msgspec-typed`` rows: decode every frame, count the Structs. A plain
    loop: msgspec's cheapest (``sum(map(len, map(decode, frames)))``, the C-level iteration
    fastfeed's pass uses, measured 2-4 % slower for msgspec on one-event frames, the same on
    100-event frames; bench/README.md, issue #13 session 7)."""
    n = 0
    for f in frames:
        n += len(decode(f))
    return n


def measure(feed: str, cluster: str, frames: list[bytes], events_per_pass: int,
            duration: float) -> Any:
    """The ``msgspec-typed`` bench row: decode every frame into Structs, count the events."""
    from fastfeed.bench.peers import DecodeLoop, Unavailable

    if not available():
        raise Unavailable("msgspec not installed (pip install 'fastfeed[bench]')")
    decode = dxlink_decoder() if feed == "dxlink" else polygon_decoder(cluster)

    def one_pass() -> int:
        return decode_pass(decode, frames)

    return DecodeLoop(frames, events_per_pass, sum(map(len, frames))).run(one_pass, duration)


#: the decode scenarios with a msgspec target (scenario -> (feed, frame kind))
SCENARIOS = {
    "dxlink-quote100": ("dxlink", "quote100"),
    "dxlink-tns100": ("dxlink", "tns100"),
    "polygon-stocks100": ("polygon", "stocks100"),
    "polygon-stocks1": ("polygon", "stocks1"),
    "polygon-cryptol2": ("polygon", "cryptol2"),
}


def side_by_side(scenarios: list[str], rounds: int, duration: float) -> dict[str, list[tuple[float, float]]]:
    """Per scenario, one ``(fastfeed ev/CPU-s, msgspec ev/CPU-s)`` pair per round; the rounds
    interleave the scenarios and, within each, fastfeed and msgspec."""
    from fastfeed.bench.payloads import POLYGON_KINDS, frame_set
    from fastfeed.bench.scenarios import measure_ff_decoder

    sets = {name: frame_set(*SCENARIOS[name]) for name in scenarios}
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in scenarios}
    for _ in range(rounds):
        for name in scenarios:
            feed, kind = SCENARIOS[name]
            fs = sets[name]
            cluster = POLYGON_KINDS[kind][0] if feed == "polygon" else ""
            a = measure_ff_decoder(feed, kind, fs.frames, fs.event_types, fs.total_events,
                                   duration)
            b = measure(feed, cluster, fs.frames, fs.total_events, duration)
            out[name].append((a.events / a.cpu_s, b.events / b.cpu_s))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os
    import statistics

    ap = argparse.ArgumentParser(prog="python -m fastfeed.bench.msgspec_peer",
                                 description=side_by_side.__doc__)
    ap.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(SCENARIOS)}")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=float, default=0.5, help="seconds per measurement")
    args = ap.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]!r} (one of {', '.join(SCENARIOS)})")
    if not available():
        print("msgspec is not installed (pip install 'fastfeed[bench]')")
        return 1
    names = args.scenarios or list(SCENARIOS)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    res = side_by_side(names, args.rounds, args.duration)
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 = both cores of a 2-core machine busy)")
    print(f"{'scenario':20} {'fastfeed ev/CPU-s':>26} {'msgspec ev/CPU-s':>17} {'ratio median [min-max]':>24}")
    for name, pairs in res.items():
        ff = [a for a, _ in pairs]
        ms = [b for _, b in pairs]
        ratio = [a / b for a, b in pairs]
        print(f"{name:20} {statistics.median(ff) / 1e6:7.2f} M [{min(ff) / 1e6:.2f}-{max(ff) / 1e6:.2f}]"
              f" {statistics.median(ms) / 1e6:11.2f} M"
              f" {statistics.median(ratio):8.2f}x [{min(ratio):.2f}-{max(ratio):.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
