"""Deterministic, seeded generators of realistic market-data events, and their wire encoders.

DXLink (dxFeed) side
    :data:`DX_FIELDS` — the field catalogue (name → kind) per event type, in the server's own
    order; :class:`DXLinkGenerator` — per-symbol random walks producing event dicts whose values
    are already *wire values* (``float`` for finite doubles, the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"`` otherwise, ``int`` for int/long, ``str``/``None`` for strings,
    one-character strings (or ``""`` / ``"\\u0000"``) for chars, ``bool``, upper-case enum
    strings); :func:`encode_compact` / :func:`encode_full` write FEED_DATA messages with Java's
    double formatting (``100.0``, ``1.3743299E7``, ``4.8E-12``), so ``json.loads`` of a frame
    gives back exactly the generated values.

polygon side
    :class:`PolygonGenerator` — every event of every cluster (polygon-protocol.md §4) with random
    omission of optional keys, integral floats written as integers, unknown extra keys, shuffled
    key order, ``ds``/``dv``/``dav`` strings, the forex ``"x":"44"`` string form, XL2 books up to
    100 levels, and escaped strings; :meth:`PolygonGenerator.encode` writes a frame (a JSON array).
"""

from __future__ import annotations

import json
import math
import random
import re
from decimal import Decimal
from typing import Any

import orjson

__all__ = [
    "DX_FIELDS",
    "DX_EVENT_TYPES",
    "TT_FIELDS",
    "FIELD_ALIASES",
    "java_double",
    "encode_value",
    "encode_compact",
    "encode_full",
    "DXLinkGenerator",
    "PolygonGenerator",
    "POLYGON_CHANNELS",
    "POLYGON_TICKERS",
    "cluster_of_path",
    "EF_TX_PENDING",
    "EF_REMOVE_EVENT",
    "EF_SNAPSHOT_BEGIN",
    "EF_SNAPSHOT_END",
    "EF_SNAPSHOT_SNIP",
    "EF_SNAPSHOT_MODE",
]

EF_TX_PENDING = 0x01
EF_REMOVE_EVENT = 0x02
EF_SNAPSHOT_BEGIN = 0x04
EF_SNAPSHOT_END = 0x08
EF_SNAPSHOT_SNIP = 0x10
EF_SNAPSHOT_MODE = 0x40

# --------------------------------------------------------------------------------------------
# DXLink catalogue. Kinds: S string, L long, I int, D double, C char, B bool, E:<enum> enum.

_Q = [("eventType", "S"), ("eventSymbol", "S"), ("eventTime", "L"), ("sequence", "I"),
      ("timeNanoPart", "I"), ("bidTime", "L"), ("bidExchangeCode", "C"), ("bidPrice", "D"),
      ("bidSize", "D"), ("askTime", "L"), ("askExchangeCode", "C"), ("askPrice", "D"),
      ("askSize", "D")]
_TRADE = [("eventType", "S"), ("eventSymbol", "S"), ("eventTime", "L"), ("time", "L"),
          ("timeNanoPart", "I"), ("sequence", "I"), ("exchangeCode", "C"), ("dayId", "I"),
          ("tickDirection", "E:Direction"), ("extendedTradingHours", "B"), ("price", "D"),
          ("change", "D"), ("size", "D"), ("dayVolume", "D"), ("dayTurnover", "D"),
          ("tradeId", "L")]
_IDX = [("eventType", "S"), ("eventSymbol", "S"), ("eventTime", "L"), ("eventFlags", "I"),
        ("index", "L"), ("time", "L")]

DX_FIELDS: dict[str, dict[str, str]] = {
    "Quote": dict(_Q),
    "Trade": dict(_TRADE),
    "TradeETH": dict(_TRADE),
    "Greeks": dict([*_IDX, ("sequence", "I"), ("price", "D"), ("volatility", "D"),
                           ("delta", "D"), ("gamma", "D"), ("theta", "D"), ("rho", "D"),
                           ("vega", "D")]),
    "Summary": {"eventType": "S", "eventSymbol": "S", "eventTime": "L",
                     "dayId": "I", "dayOpenPrice": "D", "dayHighPrice": "D",
                     "dayLowPrice": "D", "dayClosePrice": "D",
                     "dayClosePriceType": "E:PriceType", "prevDayId": "I",
                     "prevDayClosePrice": "D", "prevDayClosePriceType": "E:PriceType",
                     "prevDayVolume": "D", "openInterest": "L"},
    "Profile": {"eventType": "S", "eventSymbol": "S", "eventTime": "L",
                     "description": "S", "shortSaleRestriction": "E:ShortSaleRestriction",
                     "tradingStatus": "E:TradingStatus", "statusReason": "S",
                     "haltStartTime": "L", "haltEndTime": "L", "highLimitPrice": "D",
                     "lowLimitPrice": "D", "high52WeekPrice": "D", "low52WeekPrice": "D",
                     "beta": "D", "earningsPerShare": "D", "dividendFrequency": "D",
                     "exDividendAmount": "D", "exDividendDayId": "I", "shares": "D",
                     "freeFloat": "D"},
    "Candle": dict([*_IDX, ("sequence", "I"), ("count", "L"), ("open", "D"), ("high", "D"),
                           ("low", "D"), ("close", "D"), ("volume", "D"), ("vwap", "D"),
                           ("bidVolume", "D"), ("askVolume", "D"), ("impVolatility", "D"),
                           ("openInterest", "D")]),
    "TimeAndSale": dict([*_IDX, ("timeNanoPart", "I"), ("sequence", "I"),
                                ("exchangeCode", "C"), ("price", "D"), ("size", "D"),
                                ("bidPrice", "D"), ("askPrice", "D"),
                                ("exchangeSaleConditions", "S"), ("tradeThroughExempt", "C"),
                                ("aggressorSide", "E:Side"), ("spreadLeg", "B"),
                                ("extendedTradingHours", "B"), ("validTick", "B"),
                                ("type", "E:TimeAndSaleType"), ("buyer", "S"),
                                ("seller", "S")]),
    "TheoPrice": dict([*_IDX, ("sequence", "I"), ("price", "D"), ("underlyingPrice", "D"),
                              ("delta", "D"), ("gamma", "D"), ("dividend", "D"),
                              ("interest", "D")]),
    "Underlying": dict([*_IDX, ("sequence", "I"), ("volatility", "D"), ("frontVolatility", "D"),
                               ("backVolatility", "D"), ("callVolume", "D"), ("putVolume", "D"),
                               ("optionVolume", "D"), ("putCallRatio", "D")]),
}
DX_EVENT_TYPES: tuple[str, ...] = tuple(DX_FIELDS)

#: Field names a server also accepts for a catalogue field (requested name → catalogue name).
FIELD_ALIASES: dict[str, dict[str, str]] = {"Candle": {"VWAP": "vwap"}}

#: tastytrade 13.2.3's requested (= decode) order per event type.
TT_FIELDS: dict[str, list[str]] = {
    "Quote": ["eventSymbol", "eventTime", "sequence", "timeNanoPart", "bidTime",
              "bidExchangeCode", "askTime", "askExchangeCode", "bidPrice", "askPrice", "bidSize",
              "askSize"],
    "Trade": ["eventSymbol", "eventTime", "time", "timeNanoPart", "sequence", "exchangeCode",
              "dayId", "tickDirection", "extendedTradingHours", "price", "change", "size",
              "dayVolume", "dayTurnover"],
    "Greeks": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence", "price",
               "volatility", "delta", "gamma", "theta", "rho", "vega"],
    "Summary": ["eventSymbol", "eventTime", "dayId", "dayClosePriceType", "prevDayId",
                "prevDayClosePriceType", "openInterest", "dayOpenPrice", "dayHighPrice",
                "dayLowPrice", "dayClosePrice", "prevDayClosePrice", "prevDayVolume"],
    "Profile": ["eventSymbol", "eventTime", "description", "shortSaleRestriction",
                "tradingStatus", "haltStartTime", "haltEndTime", "exDividendDayId",
                "statusReason", "high52WeekPrice", "low52WeekPrice", "beta", "shares",
                "highLimitPrice", "lowLimitPrice", "earningsPerShare", "exDividendAmount",
                "dividendFrequency", "freeFloat"],
    "Candle": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence", "count",
               "volume", "vwap", "bidVolume", "askVolume", "impVolatility", "openInterest",
               "open", "high", "low", "close"],
    "TimeAndSale": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "timeNanoPart",
                    "sequence", "exchangeCode", "price", "size", "bidPrice", "askPrice",
                    "tradeThroughExempt", "aggressorSide", "spreadLeg", "extendedTradingHours",
                    "validTick", "type", "buyer", "seller", "exchangeSaleConditions"],
    "TheoPrice": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence",
                  "price", "underlyingPrice", "delta", "gamma", "dividend", "interest"],
    "Underlying": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence",
                   "volatility", "frontVolatility", "backVolatility", "callVolume", "putVolume",
                   "optionVolume", "putCallRatio"],
}
TT_FIELDS["TradeETH"] = list(TT_FIELDS["Trade"])


def resolve_fields(etype: str, requested: list[str] | None) -> list[str]:
    """Requested field names that the server knows, in the requested order (unknown dropped);
    the server's default list when ``requested`` is empty or None."""
    cat = DX_FIELDS.get(etype)
    if cat is None:
        return []
    if not requested:
        return list(cat)
    aliases = FIELD_ALIASES.get(etype, {})
    return [f for f in requested if f in cat or f in aliases]


# --------------------------------------------------------------------------------------------
# value encoding

_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\x7f-\U0010ffff]').search


def java_double(x: float) -> str:
    """JSON text of a double the way dxFeed's Java server writes it.

    Non-finite values become the JSON strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
    1e-3 ≤ |x| < 1e7 use plain notation with at least one fractional digit (``100.0``);
    everything else uses ``d.dddE±n`` (``1.3743299E7``, ``4.8E-12``). Digits are the shortest
    round-trip digits, so ``float(text) == x``.
    """
    if x != x:
        return '"NaN"'
    if x == math.inf:
        return '"Infinity"'
    if x == -math.inf:
        return '"-Infinity"'
    a = abs(x)
    if a == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-3 <= a < 1e7:
        return repr(x)  # repr only switches to exponent form below 1e-4 or at 1e16
    _sign, digits, exp = Decimal(repr(a)).as_tuple()
    ds = list(digits)
    while len(ds) > 1 and ds[-1] == 0:
        ds.pop()
        exp = int(exp) + 1
    e10 = len(ds) - 1 + int(exp)
    mant = str(ds[0]) + "." + ("".join(map(str, ds[1:])) or "0")
    return ("-" if x < 0 else "") + mant + "E" + str(e10)


def encode_value(v: Any) -> str:
    """JSON text of one DXLink wire value."""
    t = type(v)
    if t is float:
        return java_double(v)
    if t is int:
        return str(v)
    if t is str:
        if _NEEDS_ESCAPE(v) is None:
            return '"' + str(v) + '"'
        return str(json.dumps(v))
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    return json.dumps(v)


def encode_compact(channel: int, groups: list[tuple[str, list[list[Any]]]]) -> bytes:
    """A COMPACT FEED_DATA message; ``groups`` = [(eventType, [row values, ...]), ...]."""
    parts = []
    for etype, rows in groups:
        flat = ",".join([",".join([encode_value(v) for v in row]) for row in rows])
        parts.append('"' + etype + '",[' + flat + "]")
    return ('{"type":"FEED_DATA","channel":' + str(channel) + ',"data":[' + ",".join(parts)
            + "]}").encode()


def encode_full(channel: int, events: list[dict[str, Any]]) -> bytes:
    """A FULL FEED_DATA message (one object per event; ``None`` strings omitted)."""
    objs = []
    for ev in events:
        items = [f'"{k}":{encode_value(v)}' for k, v in ev.items() if v is not None]
        objs.append("{" + ",".join(items) + "}")
    return ('{"type":"FEED_DATA","channel":' + str(channel) + ',"data":[' + ",".join(objs)
            + "]}").encode()


# --------------------------------------------------------------------------------------------
# DXLink generator

_INDEXES = {"SPX", "VIX", "NDX", "RUT", "DJX", "XSP", "$SPX", "$VIX"}
_EXCH = "QNKZPVXJY"
_DIRS = ("UNDEFINED", "DOWN", "ZERO_DOWN", "ZERO", "ZERO_UP", "UP")
_PRICE_TYPES = ("REGULAR", "INDICATIVE", "PRELIMINARY", "FINAL")
_SSR = ("UNDEFINED", "ACTIVE", "INACTIVE")
_TSTAT = ("UNDEFINED", "HALTED", "ACTIVE")
_SIDES = ("UNDEFINED", "BUY", "SELL")
_TNS_TYPES = ("NEW", "CORRECTION", "CANCEL")
_DESCRIPTIONS = ('Apple Inc. - Common Stock', 'S&P 500 "SPDR" Trust\\ETF',
                 'Caf\u00e9 Holdings \u2014 Class A', 'Line\nBreak\tCorp', 'Plain Corp')
_PERIOD_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
              "mo": 2_592_000_000, "t": 1000}
_NONFINITE = ("NaN", "Infinity", "-Infinity")


def candle_period_ms(symbol: str) -> int:
    """Period of a candle symbol such as ``SPY{=5m,tho=true}`` in ms (default 1 day)."""
    m = re.search(r"\{=(\d*)([a-z]+)", symbol)
    if not m:
        return 86_400_000
    n = int(m.group(1) or 1)
    return n * _PERIOD_MS.get(m.group(2), 60_000)


_PERIOD_CACHE: dict[str, int] = {}


def _candle_period(symbol: str) -> int:
    p = _PERIOD_CACHE.get(symbol)
    if p is None:
        if len(_PERIOD_CACHE) > 10_000:
            _PERIOD_CACHE.clear()
        p = _PERIOD_CACHE[symbol] = candle_period_ms(symbol)
    return p


class _Sym:
    __slots__ = ("price", "seq", "kind", "volume", "turnover", "last", "day_open", "high", "low",
                 "idx_seq")

    def __init__(self, symbol: str, rng: random.Random) -> None:
        base = symbol.split("{")[0]
        if base.startswith("."):
            self.kind = "option"
            self.price = round(rng.uniform(0.05, 60.0), 2)
        elif base in _INDEXES:
            self.kind = "index"
            self.price = round(rng.uniform(1000, 6000), 2)
        elif "/USD" in base or base.endswith(":CXTALP"):
            self.kind = "crypto"
            self.price = round(rng.uniform(100, 70000), 2)
        elif base.startswith("/"):
            self.kind = "future"
            self.price = round(rng.uniform(50, 6000), 2)
        else:
            self.kind = "equity"
            self.price = round(rng.uniform(10, 900), 2)
        self.seq = 0
        self.idx_seq = 0
        self.volume = float(rng.randint(10_000, 30_000_000))
        self.turnover = self.volume * self.price
        self.last = self.price
        self.day_open = self.price
        self.high = self.price
        self.low = self.price


class DXLinkGenerator:
    """Seeded generator of dxFeed events with realistic values and every §6 edge encoding.

    ``edge_rate`` is the probability that an event carries one edge-case encoding (a non-finite
    double, an empty or NUL char, a null string). Times come from a virtual clock starting at
    ``start_ms`` so the output depends on the seed only.
    """

    def __init__(self, seed: int | str = 0, *, edge_rate: float = 0.05,
                 start_ms: int = 1767312000000) -> None:
        self.rng = random.Random(f"dx:{seed}")
        self.edge_rate = edge_rate
        self.now_ms = start_ms
        self._syms: dict[str, _Sym] = {}

    def _sym(self, symbol: str) -> _Sym:
        s = self._syms.get(symbol)
        if s is None:
            s = self._syms[symbol] = _Sym(symbol, self.rng)
        return s

    def _tick(self, st: _Sym) -> float:
        r = self.rng
        self.now_ms += r.randint(0, 40)
        st.seq = (st.seq + 1) & 0x3FFFFF
        step = st.price * r.gauss(0, 0.0005)
        p = max(0.01, st.price + step)
        st.price = round(p, 2)
        st.high = max(st.high, st.price)
        st.low = min(st.low, st.price)
        return st.price

    def _index(self, t_ms: int, st: _Sym) -> int:
        # dxFeed-style index: seconds << 32 | millis << 22 | sequence  (≈ 7.2e18, > 2**53)
        st.idx_seq = (st.idx_seq + 1) & 0x3FFFFF
        return ((t_ms // 1000) << 32) | ((t_ms % 1000) << 22) | st.idx_seq

    def _size(self, st: _Sym) -> float:
        r = self.rng
        if st.kind == "index":
            return "NaN"  # type: ignore[return-value]
        if st.kind == "crypto":
            return round(r.uniform(0.0001, 5.0), 6)
        return float(r.choice((1, 2, 3, 5, 10, 100, 200, 300, 500, 1000, 2500)))

    def event(self, etype: str, symbol: str, *, flags: int = 0,
              time_ms: int | None = None) -> dict[str, Any]:
        """One event of ``etype`` for ``symbol`` as a dict of every catalogue field."""
        st = self._sym(symbol)
        r = self.rng
        p = self._tick(st)
        t = self.now_ms if time_ms is None else time_ms
        ev: dict[str, Any]
        if etype == "Quote":
            half = max(0.01, round(p * r.uniform(0.00005, 0.0008), 2))
            idx = st.kind == "index"
            ev = {"eventType": "Quote", "eventSymbol": symbol, "eventTime": 0,
                  "sequence": 0, "timeNanoPart": 0,
                  "bidTime": t - r.randint(0, 50) if r.random() < 0.7 else 0,
                  "bidExchangeCode": "" if idx else r.choice(_EXCH),
                  "bidPrice": round(p - half, 2), "bidSize": self._size(st),
                  "askTime": t - r.randint(0, 50) if r.random() < 0.7 else 0,
                  "askExchangeCode": "" if idx else r.choice(_EXCH),
                  "askPrice": round(p + half, 2), "askSize": self._size(st)}
        elif etype in ("Trade", "TradeETH"):
            size = self._size(st)
            st.volume += size if isinstance(size, float) else 0.0
            st.turnover += (size if isinstance(size, float) else 0.0) * p
            ev = {"eventType": etype, "eventSymbol": symbol, "eventTime": 0, "time": t,
                  "timeNanoPart": r.randint(0, 999_999), "sequence": st.seq,
                  "exchangeCode": r.choice(_EXCH), "dayId": t // 86_400_000,
                  "tickDirection": r.choice(_DIRS),
                  "extendedTradingHours": etype == "TradeETH" or r.random() < 0.05,
                  "price": p, "change": round(p - st.day_open, 2), "size": size,
                  "dayVolume": st.volume, "dayTurnover": round(st.turnover, 2),
                  "tradeId": r.randint(1, 1 << 62)}
        elif etype == "Greeks":
            vol = round(r.uniform(0.08, 1.5), 6)
            ev = {"eventType": "Greeks", "eventSymbol": symbol, "eventTime": 0,
                  "eventFlags": flags, "index": self._index(t, st), "time": t,
                  "sequence": 0, "price": p, "volatility": vol,
                  "delta": round(r.uniform(-1, 1), 6), "gamma": round(r.uniform(0, 0.05), 8),
                  "theta": round(r.uniform(-5, 0), 6), "rho": r.choice(
                      (round(r.uniform(-2, 2), 6), 4.81989763184255e-12)),
                  "vega": round(r.uniform(0, 12), 6)}
        elif etype == "Summary":
            day = t // 86_400_000
            ev = {"eventType": "Summary", "eventSymbol": symbol, "eventTime": 0, "dayId": day,
                  "dayOpenPrice": st.day_open, "dayHighPrice": st.high, "dayLowPrice": st.low,
                  "dayClosePrice": "NaN" if r.random() < 0.5 else p,
                  "dayClosePriceType": r.choice(_PRICE_TYPES), "prevDayId": day - 1,
                  "prevDayClosePrice": round(st.day_open * r.uniform(0.98, 1.02), 2),
                  "prevDayClosePriceType": "FINAL",
                  "prevDayVolume": float(r.randint(100_000, 90_000_000)),
                  "openInterest": r.randint(0, 500_000) if st.kind == "option" else 0}
        elif etype == "Profile":
            halted = r.random() < 0.05
            ev = {"eventType": "Profile", "eventSymbol": symbol, "eventTime": 0,
                  "description": r.choice(_DESCRIPTIONS),
                  "shortSaleRestriction": r.choice(_SSR),
                  "tradingStatus": "HALTED" if halted else r.choice(("ACTIVE", "UNDEFINED")),
                  "statusReason": "LULD pause" if halted else None,
                  "haltStartTime": t - 60_000 if halted else 0, "haltEndTime": 0,
                  "highLimitPrice": round(p * 1.1, 2), "lowLimitPrice": round(p * 0.9, 2),
                  "high52WeekPrice": round(p * 1.4, 2), "low52WeekPrice": round(p * 0.6, 2),
                  "beta": round(r.uniform(0.3, 2.5), 4),
                  "earningsPerShare": round(r.uniform(-2, 12), 2),
                  "dividendFrequency": float(r.choice((0, 1, 2, 4, 12))),
                  "exDividendAmount": round(r.uniform(0, 2), 2),
                  "exDividendDayId": t // 86_400_000 - r.randint(1, 90),
                  "shares": float(r.randint(10_000_000, 16_000_000_000)),
                  "freeFloat": float(r.randint(0, 15_000_000_000))}
        elif etype == "Candle":
            if time_ms is None:
                t -= t % _candle_period(symbol)  # live update of the current candle
            o = round(p * r.uniform(0.995, 1.005), 2)
            c = p
            h = round(max(o, c) * r.uniform(1.0, 1.003), 2)
            lo = round(min(o, c) * r.uniform(0.997, 1.0), 2)
            vol = float(r.randint(100, 5_000_000))
            ev = {"eventType": "Candle", "eventSymbol": symbol, "eventTime": 0,
                  "eventFlags": flags, "index": (t // 1000) << 32, "time": t, "sequence": 0,
                  "count": r.randint(1, 20_000), "open": o, "high": h, "low": lo, "close": c,
                  "volume": vol, "vwap": round((o + c + h + lo) / 4, 4),
                  "bidVolume": round(vol * 0.45), "askVolume": round(vol * 0.55),
                  "impVolatility": "NaN" if st.kind == "equity" else round(r.uniform(0.1, 1), 4),
                  "openInterest": "NaN" if st.kind != "option" else float(r.randint(0, 90000))}
            ev["bidVolume"] = float(ev["bidVolume"])
            ev["askVolume"] = float(ev["askVolume"])
        elif etype == "TimeAndSale":
            half = max(0.01, round(p * 0.0003, 2))
            ev = {"eventType": "TimeAndSale", "eventSymbol": symbol, "eventTime": 0,
                  "eventFlags": flags, "index": self._index(t, st), "time": t,
                  "timeNanoPart": r.randint(0, 999_999), "sequence": st.seq,
                  "exchangeCode": r.choice(_EXCH), "price": p, "size": self._size(st),
                  "bidPrice": round(p - half, 2), "askPrice": round(p + half, 2),
                  "exchangeSaleConditions": r.choice((None, "", "@", "@ TI", "F")),
                  "tradeThroughExempt": r.choice(("", "X", "\u0000")),
                  "aggressorSide": r.choice(_SIDES), "spreadLeg": r.random() < 0.02,
                  "extendedTradingHours": r.random() < 0.05, "validTick": r.random() < 0.97,
                  "type": r.choice(_TNS_TYPES) if r.random() < 0.05 else "NEW",
                  "buyer": None, "seller": None}
        elif etype == "TheoPrice":
            ev = {"eventType": "TheoPrice", "eventSymbol": symbol, "eventTime": 0,
                  "eventFlags": flags, "index": self._index(t, st), "time": t, "sequence": 0,
                  "price": p, "underlyingPrice": round(p * r.uniform(5, 50), 2),
                  "delta": round(r.uniform(-1, 1), 6), "gamma": round(r.uniform(0, 0.05), 8),
                  "dividend": 0.0, "interest": round(r.uniform(0, 0.06), 6)}
        elif etype == "Underlying":
            cv = float(r.randint(0, 2_000_000))
            pv = float(r.randint(0, 2_000_000))
            ev = {"eventType": "Underlying", "eventSymbol": symbol, "eventTime": 0,
                  "eventFlags": flags, "index": self._index(t, st), "time": t, "sequence": 0,
                  "volatility": round(r.uniform(0.1, 0.9), 6),
                  "frontVolatility": round(r.uniform(0.1, 0.9), 6),
                  "backVolatility": round(r.uniform(0.1, 0.9), 6), "callVolume": cv,
                  "putVolume": pv, "optionVolume": cv + pv,
                  "putCallRatio": round(pv / cv, 6) if cv else "Infinity"}
        else:
            raise KeyError(f"unknown event type {etype!r}")
        if r.random() < self.edge_rate:
            self._edge(etype, ev)
        return ev

    def _edge(self, etype: str, ev: dict[str, Any]) -> None:
        """Put one §6 edge-case encoding into ``ev`` (keeps eventSymbol intact)."""
        cat = DX_FIELDS[etype]
        r = self.rng
        kind = r.random()
        if kind < 0.6:
            names = [n for n, k in cat.items() if k == "D"]
            ev[r.choice(names)] = r.choice(_NONFINITE)
        elif kind < 0.8:
            names = [n for n, k in cat.items() if k == "C"]
            if names:
                ev[r.choice(names)] = r.choice(("", "\u0000"))
        else:
            names = [n for n, k in cat.items() if k == "S" and n not in ("eventType",
                                                                         "eventSymbol")]
            if names:
                ev[r.choice(names)] = None

    def empty_event(self, etype: str, symbol: str, flags: int, time_ms: int = 0) -> dict[str, Any]:
        """An event with no values (NaN doubles, 0 ints, null strings), e.g. REMOVE_EVENT."""
        ev: dict[str, Any] = {}
        for name, kind in DX_FIELDS[etype].items():
            if name == "eventType":
                ev[name] = etype
            elif name == "eventSymbol":
                ev[name] = symbol
            elif kind == "D":
                ev[name] = "NaN"
            elif kind in ("L", "I"):
                ev[name] = 0
            elif kind == "C":
                ev[name] = ""
            elif kind == "B":
                ev[name] = False
            elif kind.startswith("E:"):
                ev[name] = "UNDEFINED" if kind != "E:TimeAndSaleType" else "NEW"
            else:
                ev[name] = None
        ev["eventFlags"] = flags
        ev["time"] = time_ms
        return ev

    def candle_snapshot(self, symbol: str, from_time: int, *, max_events: int = 10,
                        now_ms: int | None = None) -> list[dict[str, Any]]:
        """A HISTORY snapshot, newest first: SNAPSHOT_BEGIN on the first event, SNAPSHOT_END on
        the last; an empty snapshot is one REMOVE_EVENT event."""
        period = candle_period_ms(symbol)
        now = self.now_ms if now_ms is None else now_ms
        newest = now - now % period
        n = 0 if from_time > newest else min(max_events, (newest - from_time) // period + 1)
        if n <= 0:
            return [self.empty_event("Candle", symbol,
                                     EF_SNAPSHOT_BEGIN | EF_SNAPSHOT_END | EF_REMOVE_EVENT)]
        out = []
        for i in range(n):
            t = newest - i * period
            flags = (EF_SNAPSHOT_BEGIN if i == 0 else 0) | (EF_SNAPSHOT_END if i == n - 1 else 0)
            ev = self.event("Candle", symbol, flags=flags, time_ms=t)
            ev["index"] = (t // 1000) << 32
            out.append(ev)
        return out


# --------------------------------------------------------------------------------------------
# polygon

POLYGON_CHANNELS: dict[str, tuple[str, ...]] = {
    "stocks": ("T", "Q", "A", "AM", "LULD", "NOI", "FMV", "LV"),
    "options": ("T", "Q", "A", "AM", "FMV", "LV"),
    "forex": ("C", "CA", "CAS", "FMV", "AM", "LV"),
    "crypto": ("XT", "XQ", "XA", "XAS", "XL2", "FMV", "AM", "LV"),
    "indices": ("A", "AM", "V"),
    "futures": ("T", "Q", "A", "AM"),
}
for _fx in ("cme", "cbot", "nymex", "comex"):
    POLYGON_CHANNELS[f"futures/{_fx}"] = POLYGON_CHANNELS["futures"]

POLYGON_TICKERS: dict[str, tuple[str, ...]] = {
    "stocks": ("AAPL", "MSFT", "NVDA", "SPY", "TSLA", "BRK.A", "AMD", "QQQ"),
    "options": ("O:SPY251219C00650000", "O:AAPL250117C00220000", "O:TSLA260116P00200000"),
    "forex": ("EUR/USD", "USD/JPY", "GBP/USD", "USD/CNH"),
    "crypto": ("BTC-USD", "ETH-USD", "SOL-USD"),
    "indices": ("I:SPX", "I:NDX", "I:VIX"),
    "futures": ("ESZ5", "NQZ5", "CLF6"),
}


def cluster_of_path(path: str) -> str | None:
    """``/stocks`` → ``stocks``, ``/futures/cme`` → ``futures/cme``; None if unknown."""
    c = path.split("?", 1)[0].strip("/")
    return c if c in POLYGON_CHANNELS else None


def _base_cluster(cluster: str) -> str:
    return "futures" if cluster.startswith("futures") else cluster


class PolygonGenerator:
    """Seeded generator of polygon/Massive events for one cluster.

    Quirk probabilities: ``omit_rate`` (optional keys left out), ``int_float_rate`` (integral
    prices written as integers), ``extra_key_rate`` (unknown extra key), ``shuffle_rate`` (key
    order shuffled), ``string_rate`` (``ds``/``dv``/``dav`` strings, forex ``x`` as a string),
    ``escape_rate`` (a frame with escaped strings: ``\\/`` in slashes, escapes in extra keys).
    """

    def __init__(self, seed: int | str = 0, cluster: str = "stocks", *,
                 omit_rate: float = 0.3, int_float_rate: float = 0.05,
                 extra_key_rate: float = 0.02, shuffle_rate: float = 0.2,
                 string_rate: float = 0.05, escape_rate: float = 0.02,
                 start_ms: int = 1767312000000) -> None:
        self.rng = random.Random(f"pg:{seed}:{cluster}")
        self.cluster = cluster
        self.base = _base_cluster(cluster)
        self.omit_rate = omit_rate
        self.int_float_rate = int_float_rate
        self.extra_key_rate = extra_key_rate
        self.shuffle_rate = shuffle_rate
        self.string_rate = string_rate
        self.escape_rate = escape_rate
        self.now_ms = start_ms
        self._price: dict[str, float] = {}
        self._seq: dict[str, int] = {}
        self._av: dict[str, int] = {}

    def _p(self, ticker: str) -> float:
        r = self.rng
        p = self._price.get(ticker)
        if p is None:
            if self.base == "forex":
                p = r.uniform(0.6, 160.0)
            elif self.base == "crypto":
                p = r.uniform(1.0, 70000.0)
            elif self.base == "options":
                p = r.uniform(0.05, 40.0)
            elif self.base == "indices":
                p = r.uniform(15.0, 20000.0)
            else:
                p = r.uniform(5.0, 900.0)
        p = max(0.0001, p * (1.0 + r.gauss(0, 0.0004)))
        self._price[ticker] = p
        return p

    def _px(self, x: float, nd: int = 2) -> float | int:
        v = round(x, nd)
        if self.rng.random() < self.int_float_rate:
            return round(x)  # integral price written without a fraction ("p":131)
        if v == int(v) and self.rng.random() < 0.5:
            return int(v)
        return v

    def _q(self, ticker: str) -> int:
        q = self._seq.get(ticker, self.rng.randint(1_000, 50_000_000)) + self.rng.randint(1, 9)
        self._seq[ticker] = q
        return q

    def _t(self) -> int:
        self.now_ms += self.rng.randint(0, 5)
        return self.now_ms

    def event(self, ev: str, ticker: str, *, stamp_ns: int | None = None) -> dict[str, Any]:
        """One event dict (before encoding quirks other than omissions and int floats)."""
        r = self.rng
        b = self.base
        p = self._p(ticker)
        t = self._t()
        opt = r.random() >= self.omit_rate  # include optional keys this time?
        d: dict[str, Any]
        if (ev in ("A", "AM") and b in ("stocks", "options", "forex", "crypto")) or (
                ev in ("A", "AM") and b == "futures"):
            if b == "futures":
                d = {"ev": ev, "sym": ticker, "v": r.randint(1, 5000), "o": self._px(p),
                     "c": self._px(p), "h": self._px(p * 1.001), "l": self._px(p * 0.999),
                     "n": r.randint(1, 300), "s": t - 1000 if ev == "A" else t - 60000, "e": t}
                if opt:
                    d["dv"] = f"{r.uniform(1, 5000):.4f}"
                return d
            sym = ticker if b in ("stocks", "options") else (
                "C:" + ticker.replace("/", "-") if b == "forex" else "X:" + ticker)
            v = r.randint(1, 500_000)
            av = self._av.get(ticker, r.randint(1000, 40_000_000)) + v
            self._av[ticker] = av
            d = {"ev": ev, "sym": sym, "v": v, "av": av, "op": self._px(p * 0.99, 4),
                 "vw": round(p, 4), "o": self._px(p * 1.0005), "c": self._px(p),
                 "h": self._px(p * 1.002), "l": self._px(p * 0.998), "a": round(p * 0.995, 4),
                 "z": r.randint(1, 900), "s": t - (1000 if ev == "A" else 60000), "e": t}
            if b == "stocks" and r.random() < 0.05:
                d["otc"] = True
            if b == "stocks" and r.random() < self.string_rate:
                d["dv"] = f"{v}.{r.randint(0, 999999):06d}"
                d["dav"] = f"{av}.{r.randint(0, 999999):06d}"
            return d
        if b == "indices":
            if ev == "V":
                return {"ev": "V", "val": self._px(p), "T": ticker, "t": t}
            return {"ev": ev, "sym": ticker, "op": self._px(p * 0.99), "o": self._px(p),
                    "c": self._px(p), "h": self._px(p * 1.001), "l": self._px(p * 0.999),
                    "s": t - (1000 if ev == "A" else 60000), "e": t}
        if ev == "T":
            if b == "futures":
                return {"ev": "T", "sym": ticker, "p": self._px(p), "s": r.randint(1, 50),
                        "t": t, "q": self._q(ticker)}
            d = {"ev": "T", "sym": ticker, "x": r.randint(1, 21) if b == "stocks" else 65 + r.randint(0, 10),
                 "p": self._px(p), "s": r.choice((1, 5, 10, 100, 200, 300, 1000)),
                 "t": t, "q": self._q(ticker)}
            if b == "stocks":
                d["i"] = str(r.randint(1, 10**14))
                d["z"] = r.randint(1, 3)
                if opt:
                    d["c"] = r.sample((12, 14, 37, 41, 53), r.randint(1, 3))
                if r.random() < 0.15:
                    d["trfi"] = 202
                    d["trft"] = t - r.randint(1, 40)
                if r.random() < self.string_rate:
                    d["ds"] = f"{r.randint(0, 99)}.{r.randint(1, 99999)}"
            elif opt:
                d["c"] = [r.choice((209, 219, 227, 232))]
            return d
        if ev == "Q":
            if b == "futures":
                return {"ev": "Q", "sym": ticker, "bp": self._px(p * 0.9999),
                        "bs": r.randint(1, 90), "bt": t - 1, "ap": self._px(p * 1.0001),
                        "as": r.randint(1, 90), "at": t - 1, "t": stamp_ns or t}
            d = {"ev": "Q", "sym": ticker, "bx": r.randint(1, 21), "ax": r.randint(1, 21),
                 "bp": self._px(p * 0.9998), "ap": self._px(p * 1.0002),
                 "bs": r.randint(1, 50), "as": r.randint(1, 50), "t": stamp_ns or t,
                 "q": self._q(ticker)}
            if b == "stocks":
                d["z"] = r.randint(1, 3)
                if opt:
                    d["c"] = 1
                if opt and r.random() < 0.3:
                    d["i"] = [r.choice((604, 607, 610))]
            return d
        if ev == "LULD":
            return {"ev": "LULD", "T": ticker, "h": self._px(p * 1.05), "l": self._px(p * 0.95),
                    "i": [r.choice((17, 21, 22))], "z": r.randint(1, 3), "t": t * 1000 + r.randint(0, 999),
                    "q": self._q(ticker)}
        if ev == "NOI":
            return {"ev": "NOI", "T": ticker, "t": t * 1_000_000 + r.randint(0, 999_999),
                    "at": r.choice((930, 1600)), "a": r.choice("OMHCPR"),
                    "i": r.randint(1, 99999), "x": r.randint(1, 21),
                    "o": r.randint(0, 500_000), "p": r.randint(0, 2_000_000),
                    "b": self._px(p)}
        if ev == "FMV":
            sym = {"options": ticker, "forex": "C:" + ticker.replace("/", ""),
                   "crypto": "X:" + ticker}.get(b, ticker)
            return {"ev": "FMV", "fmv": round(p, 4), "sym": sym,
                    "t": t * 1_000_000 + r.randint(0, 999_999)}
        if ev == "LV":
            sym = {"forex": "C:" + ticker.replace("/", "-"), "crypto": "X:" + ticker}.get(b, ticker)
            return {"ev": "LV", "val": round(p, 4), "sym": sym,
                    "t": t * 1_000_000 + r.randint(0, 999_999)}
        if ev == "C":
            x: int | str = r.choice((44, 48, 1))
            if r.random() < self.string_rate:
                x = str(x)
            return {"ev": "C", "p": ticker, "x": x, "a": round(p * 1.00002, 5),
                    "b": round(p * 0.99998, 5), "t": stamp_ns or t}
        if ev in ("CA", "CAS"):
            d = {"ev": ev, "pair": ticker, "o": round(p, 5), "c": round(p * 1.00001, 5),
                 "h": round(p * 1.0001, 5), "l": round(p * 0.9999, 5), "v": r.randint(1, 400),
                 "s": t - (60000 if ev == "CA" else 1000)}
            if opt:
                d["e"] = t
            return d
        if ev == "XT":
            d = {"ev": "XT", "pair": ticker, "p": self._px(p), "t": t,
                 "s": round(r.uniform(0.00001, 3.0), 8), "x": r.randint(1, 10),
                 "r": t + r.randint(1, 20)}
            d["i"] = str(r.randint(1, 10**9)) if r.random() < 0.5 else r.randint(1, 10**9)
            if opt:
                d["c"] = [r.choice((1, 2))]
            return d
        if ev == "XQ":
            return {"ev": "XQ", "pair": ticker, "bp": self._px(p * 0.9999),
                    "bs": round(r.uniform(0.001, 5), 6), "ap": self._px(p * 1.0001),
                    "as": round(r.uniform(0.001, 5), 6), "t": stamp_ns or t,
                    "x": r.randint(1, 10), "r": t + r.randint(1, 20)}
        if ev in ("XA", "XAS"):
            return {"ev": ev, "pair": ticker, "v": round(r.uniform(0.01, 5000), 6),
                    "vw": round(p, 4), "z": r.randint(1, 50), "o": self._px(p),
                    "c": self._px(p * 1.0003), "h": self._px(p * 1.001),
                    "l": self._px(p * 0.999), "s": t - (60000 if ev == "XA" else 1000), "e": t}
        if ev == "XL2":
            depth_b = r.randint(1, 100) if r.random() < 0.2 else r.randint(1, 10)
            depth_a = r.randint(1, 100) if r.random() < 0.2 else r.randint(1, 10)
            bids = [[round(p * (1 - 0.0001 * (i + 1)), 2), round(r.uniform(0.001, 4), 6)]
                    for i in range(depth_b)]
            asks = [[round(p * (1 + 0.0001 * (i + 1)), 2), round(r.uniform(0.001, 4), 6)]
                    for i in range(depth_a)]
            return {"ev": "XL2", "pair": ticker, "t": t, "r": t + r.randint(1, 20),
                    "x": r.randint(1, 10), "b": bids, "a": asks}
        raise KeyError(f"unknown event {ev!r} for cluster {self.cluster!r}")

    def quirk(self, d: dict[str, Any]) -> dict[str, Any]:
        """Apply key-order shuffling and unknown extra keys."""
        r = self.rng
        if r.random() < self.extra_key_rate:
            d["zz_future"] = r.choice((1, "x", [1, 2], {"k": "v"}, 'esc "q" \\ \u00e9\t', None))
        if r.random() < self.shuffle_rate:
            items = list(d.items())
            r.shuffle(items)
            d = dict(items)
        return d

    def encode(self, events: list[dict[str, Any]]) -> bytes:
        """One frame (JSON array); occasionally with ``\\/`` escapes."""
        out = orjson.dumps(events)
        if self.rng.random() < self.escape_rate and b"/" in out:
            out = out.replace(b"/", b"\\/")
        return out
