"""Deterministic frame generators shared by ``python -m fastfeed.bench``, ``bench/`` and tests.

Every generator is a pure function of its arguments (a seeded ``random.Random``), so two
processes that call it with the same arguments get byte-identical frames: the simulator process
sends exactly the frames the in-process decode measurements parse.

DXLink frames are COMPACT ``FEED_DATA`` messages in tastytrade 13.2.3's field order (the order
its ``DXLinkStreamer`` puts in ``acceptEventFields``), with doubles written the way dxFeed's Java
server writes them (``100.0``, ``1.3743299E7``, ``4.81989763184255E-12``) and ``"NaN"`` sizes on
index symbols. Prices are always finite so that tastytrade, which drops events whose required
price is NaN, keeps every event and the counts compare.

polygon frames are JSON arrays of event objects with the stocks cluster's key layout (optional
keys sometimes present, sometimes omitted) or the crypto ``XL2`` book layout.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "DXLINK_KINDS",
    "DX_CHANNELS",
    "DX_FIELDS",
    "POLYGON_KINDS",
    "FrameSet",
    "dx_double",
    "dxlink_events",
    "dxlink_feed_config",
    "dxlink_frame",
    "dxlink_frames",
    "dxlink_latency_frame",
    "frame_set",
    "polygon_frames",
    "polygon_latency_frame",
]

#: Field order per event type: tastytrade 13.2.3's ``acceptEventFields`` (= its decode order).
DX_FIELDS: dict[str, tuple[str, ...]] = {
    "Quote": (
        "eventSymbol", "eventTime", "sequence", "timeNanoPart", "bidTime", "bidExchangeCode",
        "askTime", "askExchangeCode", "bidPrice", "askPrice", "bidSize", "askSize",
    ),
    "Trade": (
        "eventSymbol", "eventTime", "time", "timeNanoPart", "sequence", "exchangeCode", "dayId",
        "tickDirection", "extendedTradingHours", "price", "change", "size", "dayVolume",
        "dayTurnover",
    ),
    "Greeks": (
        "eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence", "price",
        "volatility", "delta", "gamma", "theta", "rho", "vega",
    ),
    "TimeAndSale": (
        "eventSymbol", "eventTime", "eventFlags", "index", "time", "timeNanoPart", "sequence",
        "exchangeCode", "price", "size", "bidPrice", "askPrice", "tradeThroughExempt",
        "aggressorSide", "spreadLeg", "extendedTradingHours", "validTick", "type", "buyer",
        "seller", "exchangeSaleConditions",
    ),
}

#: The channel tastytrade 13.2.3 opens for each type (``i * 2 + 1`` over its MAP_EVENTS order).
DX_CHANNELS: dict[str, int] = {"Greeks": 3, "Quote": 7, "TimeAndSale": 13, "Trade": 15}

#: frame kind -> (event types in rotation, events per frame)
DXLINK_KINDS: dict[str, tuple[tuple[str, ...], int]] = {
    "quote100": (("Quote",), 100),
    "quote1": (("Quote",), 1),
    "greeks100": (("Greeks",), 100),
    "mixed": (("Quote", "Trade", "Greeks"), 100),
    "tns100": (("TimeAndSale",), 100),
}

#: frame kind -> (cluster, events per frame)
POLYGON_KINDS: dict[str, tuple[str, int]] = {
    "stocks100": ("stocks", 100),
    "stocks1": ("stocks", 1),
    "cryptol2": ("crypto", 10),
}

_STOCKS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "SPY", "QQQ", "IWM", "AMD", "NFLX",
    "JPM", "BAC", "XOM", "KO", "PEP", "INTC", "ORCL", "CRM", "AVGO", "COST", "WMT", "DIS",
)
_INDEXES = ("SPX", "VIX", "NDX")
_OPTIONS = (
    ".SPXW260320C6000", ".SPXW260320P5800", ".SPY260116C600", ".AAPL260116C250",
    ".QQQ260220P480", ".NVDA260320C150", ".TSLA260116P300", ".IWM260320C230",
)
_PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD", "ADA-USD")
_BASE_MS = 1767312000000


def dx_double(value: float) -> str:
    """Format a finite double the way dxFeed's Java server does (``Double.toString``)."""
    if value == 0.0:
        return "0.0"
    text = repr(float(value))
    if 1e-3 <= abs(value) < 1e7:  # plain notation; repr never uses an exponent here
        return text if "." in text else text + ".0"
    sign, digits, exp = Decimal(text).normalize().as_tuple()
    assert isinstance(exp, int)
    mant = str(digits[0]) + "." + ("".join(map(str, digits[1:])) or "0")
    return ("-" if sign else "") + mant + "E" + str(len(digits) - 1 + exp)


def dxlink_events(event_type: str, count: int, seed: int = 0) -> list[object]:
    """``count`` events of ``event_type`` flattened in COMPACT order (values, not text)."""
    rng = random.Random(f"dx-{event_type}-{seed}")
    out: list[object] = []
    for k in range(count):
        t = _BASE_MS + seed * 1000 + k
        if event_type == "Quote":
            idx = rng.random() < 0.05
            sym = rng.choice(_INDEXES) if idx else rng.choice(_STOCKS)
            bid = rng.randint(1000, 600000) / 100.0
            ask = bid + rng.randint(1, 20) / 100.0
            if idx:
                out += [sym, 0, 0, 0, 0, "", 0, "", dx_double(bid), dx_double(round(ask, 2)),
                        "NaN", "NaN"]
            else:
                out += [sym, 0, 0, 0, t - rng.randint(0, 5), rng.choice("QPZKN"),
                        t - rng.randint(0, 5), rng.choice("QPZKN"), dx_double(bid),
                        dx_double(round(ask, 2)), dx_double(float(rng.randint(1, 50) * 100)),
                        dx_double(float(rng.randint(1, 50) * 100))]
        elif event_type == "Trade":
            sym = rng.choice(_STOCKS)
            price = rng.randint(1000, 600000) / 100.0
            out += [sym, 0, t, 0, rng.randint(0, 4000), rng.choice("QPZKN"), 20454,
                    rng.choice(("UP", "DOWN", "ZERO_UP", "ZERO_DOWN")), rng.random() < 0.1,
                    dx_double(price), dx_double(round(rng.uniform(-5, 5), 2)),
                    dx_double(float(rng.randint(1, 500))),
                    dx_double(float(rng.randint(10_000_000, 90_000_000))),
                    dx_double(float(rng.randint(10**9, 9 * 10**9)) * 1.0)]
        elif event_type == "Greeks":
            sym = rng.choice(_OPTIONS)
            out += [sym, 0, 0, 7235129486797176832 + seed * 1000 + k, t, 0,
                    dx_double(rng.randint(10, 50000) / 100.0),
                    dx_double(round(rng.uniform(0.05, 1.2), 12)),
                    dx_double(round(rng.uniform(-1, 1), 12)),
                    dx_double(rng.uniform(1e-12, 1e-2)),
                    dx_double(round(rng.uniform(-5, 0), 12)),
                    dx_double(round(rng.uniform(0, 3), 12)),
                    dx_double(round(rng.uniform(0, 12), 12))]
        elif event_type == "TimeAndSale":  # the simulator's shape (fastfeed.sim.generators)
            sym = rng.choice(_STOCKS)
            price = rng.randint(1000, 600000) / 100.0
            half = max(0.01, round(price * 0.0003, 2))
            out += [sym, 0, 0, (t // 1000) << 32 | k, t, rng.randint(0, 999_999),
                    rng.randint(1, 4000), rng.choice("QPZKN"), dx_double(price),
                    dx_double(float(rng.randint(1, 500))), dx_double(round(price - half, 2)),
                    dx_double(round(price + half, 2)), rng.choice(("", "X")),
                    rng.choice(("BUY", "SELL", "UNDEFINED")), rng.random() < 0.02,
                    rng.random() < 0.05, rng.random() < 0.97,
                    rng.choice(("CORRECTION", "CANCEL")) if rng.random() < 0.05 else "NEW",
                    None, None, rng.choice((None, "", "@", "@ TI", "F"))]
        else:
            raise ValueError(f"unknown DXLink event type {event_type!r}")
    return out


def _json_value(v: object) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        # numbers were pre-formatted as text by dx_double; strings are symbols/codes/NaN
        if v and (v[0].isdigit() or (v[0] == "-" and len(v) > 1 and v[1].isdigit())):
            return v
        return '"' + v + '"'
    raise TypeError(type(v))


def dxlink_frame(event_type: str, count: int, channel: int | None = None, seed: int = 0) -> bytes:
    """One COMPACT FEED_DATA message with ``count`` events of one type."""
    ch = DX_CHANNELS[event_type] if channel is None else channel
    vals = ",".join(_json_value(v) for v in dxlink_events(event_type, count, seed))
    return (f'{{"type":"FEED_DATA","channel":{ch},"data":["{event_type}",[{vals}]]}}').encode()


def dxlink_frames(kind: str, n_distinct: int = 32,
                  channels: dict[str, int] | None = None) -> list[tuple[str, bytes]]:
    """``n_distinct`` frames of ``kind`` as ``(event_type, frame)``; types rotate for "mixed"."""
    types, per = DXLINK_KINDS[kind]
    chans = dict(DX_CHANNELS, **(channels or {}))
    out = []
    for i in range(n_distinct):
        et = types[i % len(types)]
        out.append((et, dxlink_frame(et, per, chans[et], seed=i)))
    return out


def dxlink_feed_config(event_type: str, channel: int) -> bytes:
    fields = ",".join(f'"{f}"' for f in DX_FIELDS[event_type])
    return (f'{{"type":"FEED_CONFIG","channel":{channel},"dataFormat":"COMPACT",'
            f'"aggregationPeriod":0.1,"eventFields":{{"{event_type}":[{fields}]}}}}').encode()


def _stock_event(rng: random.Random, k: int, seed: int) -> str:
    sym = rng.choice(_STOCKS)
    t = _BASE_MS + seed * 1000 + k
    q = 50_000_000 + seed * 1000 + k
    if rng.random() < 0.6:
        bp = rng.randint(1000, 60000) / 100.0
        ap = round(bp + rng.randint(1, 20) / 100.0, 2)
        parts = [f'"ev":"Q","sym":"{sym}","bx":{rng.randint(1, 21)},"bp":{bp!r}',
                 f'"bs":{rng.randint(1, 40)},"ax":{rng.randint(1, 21)},"ap":{ap!r}',
                 f'"as":{rng.randint(1, 40)}']
        if rng.random() < 0.7:
            parts.append('"c":1')
        if rng.random() < 0.2:
            parts.append(f'"i":[{rng.choice((604, 607, 621))}]')
        parts.append(f'"t":{t},"q":{q},"z":{rng.randint(1, 3)}')
    else:
        p = rng.randint(1000, 60000) / 100.0
        parts = [f'"ev":"T","sym":"{sym}","i":"{rng.randint(1, 10**14)}"',
                 f'"x":{rng.randint(1, 21)},"p":{p!r},"s":{rng.randint(1, 30) * 10}']
        if rng.random() < 0.7:
            conds = ",".join(str(c) for c in rng.sample((12, 14, 37, 41), rng.randint(1, 2)))
            parts.append(f'"c":[{conds}]')
        parts.append(f'"t":{t},"q":{q},"z":{rng.randint(1, 3)}')
        if rng.random() < 0.15:
            parts.append(f'"trfi":202,"trft":{t - 20}')
    return "{" + ",".join(parts) + "}"


def _l2_event(rng: random.Random, k: int, seed: int, levels: int) -> str:
    pair = rng.choice(_PAIRS)
    mid = rng.uniform(0.1, 70000)
    tick = max(round(mid * 1e-5, 6), 1e-6)
    bids = ",".join(f"[{round(mid - (j + 1) * tick, 6)!r},{round(rng.uniform(0.001, 5), 5)!r}]"
                    for j in range(levels))
    asks = ",".join(f"[{round(mid + (j + 1) * tick, 6)!r},{round(rng.uniform(0.001, 5), 5)!r}]"
                    for j in range(levels))
    t = _BASE_MS + seed * 1000 + k
    return (f'{{"ev":"XL2","pair":"{pair}","t":{t},"r":{t + 9},"x":1,'
            f'"b":[{bids}],"a":[{asks}]}}')


def polygon_frames(kind: str, n_distinct: int = 32) -> list[bytes]:
    """``n_distinct`` distinct frames of ``kind`` (see :data:`POLYGON_KINDS`)."""
    cluster, per = POLYGON_KINDS[kind]
    out = []
    for i in range(n_distinct):
        rng = random.Random(f"pg-{kind}-{i}")
        if cluster == "stocks":
            evs = [_stock_event(rng, k, i) for k in range(per)]
        else:
            evs = [_l2_event(rng, k, i, levels=25) for k in range(per)]
        out.append(("[" + ",".join(evs) + "]").encode())
    return out


def polygon_latency_frame(stamp_ns: int, seq: int) -> bytes:
    """A one-quote stocks frame whose ``t`` carries the sender's ``time.monotonic_ns()``.

    ``t`` is an int64 on the wire for every client, so any decoder returns it exactly and the
    consumer computes ``time.monotonic_ns() - t`` (``CLOCK_MONOTONIC`` is system-wide on Linux).
    """
    return (f'[{{"ev":"Q","sym":"AAPL","bx":19,"bp":214.28,"bs":2,"ax":12,"ap":214.3,"as":1,'
            f'"c":1,"t":{stamp_ns},"q":{seq},"z":3}}]').encode()


def dxlink_latency_frame(stamp_ns: int, seq: int, channel: int = DX_CHANNELS["Quote"]) -> bytes:
    """A one-Quote COMPACT FEED_DATA frame whose ``eventTime`` is the sender's
    ``time.monotonic_ns()``, fields in tastytrade's order (:data:`DX_FIELDS`).

    ``eventTime`` is an integer (long) on the wire, so every client reads the stamp back exactly
    and the consumer computes ``time.monotonic_ns() - event_time``.
    """
    return (f'{{"type":"FEED_DATA","channel":{channel},"data":["Quote",["AAPL",{stamp_ns},'
            f'{seq},0,{_BASE_MS},"Q",{_BASE_MS},"P",214.28,214.3,200.0,100.0]]}}').encode()


@dataclass
class FrameSet:
    """Frames of one kind plus what a client needs to count them."""

    feed: str  # "dxlink" | "polygon"
    kind: str
    frames: list[bytes]
    events_per_frame: list[int]
    event_types: list[str] = field(default_factory=list)  # per frame (DXLink) / cluster (polygon)

    @property
    def total_bytes(self) -> int:
        return sum(len(f) for f in self.frames)

    @property
    def total_events(self) -> int:
        return sum(self.events_per_frame)


def frame_set(feed: str, kind: str, n_distinct: int = 32,
              channels: dict[str, int] | None = None) -> FrameSet:
    """All frames of one scenario, ready to send or to decode."""
    if feed == "dxlink":
        pairs = dxlink_frames(kind, n_distinct, channels)
        per = DXLINK_KINDS[kind][1]
        return FrameSet("dxlink", kind, [f for _, f in pairs], [per] * len(pairs),
                        [t for t, _ in pairs])
    if feed == "polygon":
        frames = polygon_frames(kind, n_distinct)
        cluster, per = POLYGON_KINDS[kind]
        return FrameSet("polygon", kind, frames, [per] * len(frames), [cluster] * len(frames))
    raise ValueError(f"unknown feed {feed!r}")
