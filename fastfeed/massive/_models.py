"""Massive's websocket models (``massive.websocket.models``, 2.9.1) over fastfeed's records.

Each class has Massive's name, its fields in its order (``dataclasses.fields`` works), its
``from_dict`` and its positional / keyword constructor. An object the client hands out points
at its C record in a ``bytes`` copy of its socket read's records, shared by the objects of that
read (``fastfeed._native.pgmodels``); every attribute is read from the record on access by a C
descriptor, so making the object costs no parsing and no dict. Values are what ``json.loads`` of the frame gives
(an integer stays an ``int``, ``1.0`` stays a ``float``, ``"x":"44"`` stays ``"44"``); a key the
frame did not carry reads ``None``, as in Massive. Equality and ``repr`` are a dataclass's
(every field, in order); like Massive's objects they are unhashable.

Differences from Massive's dataclasses: the objects are read-only (assigning an attribute
raises ``AttributeError``); values given to the constructor / ``from_dict`` must have the
wire's JSON types (a ``str`` price raises ``TypeError``); a model built without an
``event_type`` reads its class's first ``ev`` code (``"T"``), not ``None``.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar, NewType

from fastfeed._native.events import Field, _Event
from fastfeed._native.pgmodels import record_of
from fastfeed._records_meta import LAYOUTS
from fastfeed.polygon_events import EV_CLASSES

__all__ = [
    "MARKET_EVENT_MAP",
    "CryptoQuote",
    "CryptoTrade",
    "CurrencyAgg",
    "EquityAgg",
    "EquityQuote",
    "EquityTrade",
    "EventType",
    "FairMarketValue",
    "Feed",
    "ForexQuote",
    "FuturesAgg",
    "FuturesQuote",
    "FuturesTrade",
    "Imbalance",
    "IndexValue",
    "LaunchpadValue",
    "Level2Book",
    "LimitUpLimitDown",
    "Market",
    "WebSocketMessage",
    "parse",
    "parse_single",
]


class Feed(enum.Enum):
    """Websocket hosts (Massive's ``Feed``)."""

    Delayed = "delayed.massive.com"
    RealTime = "socket.massive.com"
    Nasdaq = "nasdaqfeed.massive.com"
    PolyFeed = "polyfeed.massive.com"
    PolyFeedPlus = "polyfeedplus.massive.com"
    StarterFeed = "starterfeed.massive.com"
    Launchpad = "launchpad.massive.com"
    Business = "business.massive.com"
    EdgxBusiness = "edgx-business.massive.com"
    IEXBusiness = "iex-business.massive.com"
    DelayedBusiness = "delayed-business.massive.com"
    DelayedEdgxBusiness = "delayed-edgx-business.massive.com"
    DelayedNasdaqLastSaleBusiness = "delayed-nasdaq-last-sale-business.massive.com"
    DelayedNasdaqBasic = "delayed-nasdaq-basic-business.massive.com"
    DelayedFullMarketBusiness = "delayed-fullmarket-business.massive.com"
    FullMarketBusiness = "fullmarket-business.massive.com"
    NasdaqLastSaleBusiness = "nasdaq-last-sale-business.massive.com"
    NasdaqBasicBusiness = "nasdaq-basic-business.massive.com"


class Market(enum.Enum):
    """Websocket paths (Massive's ``Market``), futures included."""

    Stocks = "stocks"
    Options = "options"
    Forex = "forex"
    Crypto = "crypto"
    Indices = "indices"
    Futures = "futures"
    FuturesCME = "futures/cme"
    FuturesCBOT = "futures/cbot"
    FuturesNYMEX = "futures/nymex"
    FuturesCOMEX = "futures/comex"


class EventType(enum.Enum):
    """Wire ``ev`` codes (Massive's ``EventType``; several names share a code)."""

    EquityAgg = "A"
    EquityAggMin = "AM"
    CryptoAgg = "XA"
    CryptoAggSec = "XAS"
    ForexAgg = "CA"
    ForexAggSec = "CAS"
    EquityTrade = "T"
    CryptoTrade = "XT"
    EquityQuote = "Q"
    ForexQuote = "C"
    CryptoQuote = "XQ"
    Imbalances = "NOI"
    LimitUpLimitDown = "LULD"
    CryptoL2 = "XL2"
    Value = "V"
    LaunchpadValue = "LV"
    LaunchpadAggMin = "AM"  # noqa: PIE796 - an alias, as in Massive
    BusinessFairMarketValue = "FMV"
    FuturesTrade = "T"  # noqa: PIE796 - an alias, as in Massive
    FuturesQuote = "Q"  # noqa: PIE796 - an alias, as in Massive
    FuturesAgg = "A"  # noqa: PIE796 - an alias, as in Massive
    FuturesAggMin = "AM"  # noqa: PIE796 - an alias, as in Massive


class _Model(_Event):
    """Base of the models: a record-backed, read-only dataclass look-alike."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, ...]] = ()
    _WIRE: ClassVar[dict[str, str]] = {}
    _RTYPES: ClassVar[dict[str, int]] = {}
    __hash__ = None  # type: ignore[assignment]  # a dataclass with eq and no frozen

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        values: dict[str, Any] = {}
        for name, value in zip(cls._FIELDS, args):
            values[name] = value
        for name, value in kwargs.items():
            if name in cls._FIELDS:  # Massive ignores unknown keywords
                values[name] = value
        ev = values.pop("event_type", None)
        if isinstance(ev, enum.Enum):
            ev = ev.value
        rtype = cls._RTYPES.get(ev) if isinstance(ev, str) else None
        if rtype is None:
            rtype = next(iter(cls._RTYPES.values()))
        super().__init__(_rtype=rtype, **{k: v for k, v in values.items() if v is not None})

    @property
    def record(self) -> bytes:
        """The raw record (``LAYOUT``'s C struct)."""
        return record_of(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), {n: getattr(self, n) for n in type(self)._FIELDS}))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """The model of one decoded wire event (as Massive's ``from_dict``)."""
        return cls(**{name: d.get(wire) for name, wire in cls._WIRE.items()})

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self)._FIELDS)
        return f"{type(self).__name__}({parts})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = type(self)._FIELDS
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __ne__(self, other: object) -> bool:
        r = self.__eq__(other)
        return r if r is NotImplemented else not r


def _restore(cls: Any, values: dict[str, Any]) -> Any:
    """Unpickle a model (its values written into a record of its own)."""
    return cls(**values)


def _record_model(layout: str, *wires: str) -> Any:
    """Class decorator: the class's annotated fields, in order, read the wire keys ``wires``
    of records of ``layout`` (``"ev"`` is the event type, the layout's symbol key the symbol)."""

    def bind(cls: Any) -> Any:
        lay = LAYOUTS[layout]
        names = [n for n in cls.__annotations__ if not n.startswith("_")]
        if len(names) != len(wires):
            raise TypeError(f"{cls.__name__}: {len(names)} fields, {len(wires)} wire keys")
        by_wire = {f["wire"]: f for f in lay["fields"]}
        sym = lay["symbol"]
        fields: list[Field] = []
        for attr, wire in zip(names, wires):
            if wire == "ev":
                f = Field({"wire": "ev", "attr": attr}, -1, "evtype")
            elif wire == sym["wire"]:
                f = Field({"wire": wire, "attr": attr}, sym.get("bit", -1), "symbol")
            else:
                fm = by_wire[wire]
                f = Field(dict(fm, attr=attr), fm.get("bit", -1))
            setattr(cls, attr, f)
            fields.append(f)
        cls.LAYOUT = layout
        cls._ORDER = tuple(fields)
        cls._BY_NAME = dict(zip(names, fields))
        cls._SIZE = lay["size"]
        cls._RTYPES = dict(lay["rtypes"])
        cls._RTYPE = next(iter(lay["rtypes"].values()))
        base: Any = EV_CLASSES[next(iter(lay["rtypes"]))]
        cls._DEFAULTS = base._DEFAULTS
        cls._REPR_NAME = staticmethod(lambda f: f.attr)
        cls._FIELDS = tuple(names)
        cls._WIRE = dict(zip(names, wires))
        # dataclasses.fields / asdict / replace / is_dataclass, from a twin with the same fields
        twin: Any = dataclasses.dataclass(type(cls.__name__, (), {
            "__annotations__": {n: cls.__annotations__[n] for n in names},
            **{n: None for n in names}}))
        for attr in ("__dataclass_fields__", "__dataclass_params__", "__match_args__"):
            setattr(cls, attr, getattr(twin, attr))
        return cls

    return bind


@_record_model("EquityAgg", "ev", "sym", "v", "av", "op", "vw", "o", "c", "h", "l", "a", "z",
               "s", "e", "otc", "dv", "dav")
class EquityAgg(_Model):
    """Aggregate of a stock, option contract or index (``A`` / ``AM``)."""

    __slots__ = ()
    event_type: str | EventType | None
    symbol: str | None
    volume: float | None
    accumulated_volume: float | None
    official_open_price: float | None
    vwap: float | None
    open: float | None
    close: float | None
    high: float | None
    low: float | None
    aggregate_vwap: float | None
    average_size: float | None
    start_timestamp: int | None
    end_timestamp: int | None
    otc: bool | None
    fractional_volume: str | None
    fractional_accumulated_volume: str | None


@_record_model("CurrencyAgg", "ev", "pair", "o", "c", "h", "l", "v", "vw", "s", "e", "z")
class CurrencyAgg(_Model):
    """Aggregate of a forex or crypto pair (``CA`` / ``CAS`` / ``XA`` / ``XAS``)."""

    __slots__ = ()
    event_type: str | EventType | None
    pair: str | None
    open: float | None
    close: float | None
    high: float | None
    low: float | None
    volume: float | None
    vwap: float | None
    start_timestamp: int | None
    end_timestamp: int | None
    avg_trade_size: float | None


@_record_model("EquityTrade", "ev", "sym", "x", "i", "z", "p", "s", "ds", "c", "t", "q",
               "trfi", "trft")
class EquityTrade(_Model):
    """Trade of a stock or option contract (``T``)."""

    __slots__ = ()
    event_type: str | EventType | None
    symbol: str | None
    exchange: int | None
    id: str | None
    tape: int | None
    price: float | None
    size: int | None
    fractional_shares: str | None
    conditions: list[int] | None
    timestamp: int | None
    sequence_number: int | None
    trf_id: int | None
    trf_timestamp: int | None


@_record_model("CryptoTrade", "ev", "pair", "x", "i", "p", "s", "c", "t", "r")
class CryptoTrade(_Model):
    """Trade of a crypto pair (``XT``)."""

    __slots__ = ()
    event_type: str | EventType | None
    pair: str | None
    exchange: int | None
    id: str | None
    price: float | None
    size: float | None
    conditions: list[int] | None
    timestamp: int | None
    received_timestamp: int | None


@_record_model("EquityQuote", "ev", "sym", "bx", "bp", "bs", "ax", "ap", "as", "c", "i", "t",
               "z", "q", "trfi", "trft")
class EquityQuote(_Model):
    """Quote of a stock or option contract (``Q``)."""

    __slots__ = ()
    event_type: str | EventType | None
    symbol: str | None
    bid_exchange_id: int | None
    bid_price: float | None
    bid_size: int | None
    ask_exchange_id: int | None
    ask_price: float | None
    ask_size: int | None
    condition: int | None
    indicators: list[int] | None
    timestamp: int | None
    tape: int | None
    sequence_number: int | None
    trf_id: int | None
    trf_timestamp: int | None


@_record_model("ForexQuote", "ev", "p", "x", "a", "b", "t")
class ForexQuote(_Model):
    """Quote of a forex pair (``C``)."""

    __slots__ = ()
    event_type: str | EventType | None
    pair: str | None
    exchange_id: int | None
    ask_price: float | None
    bid_price: float | None
    timestamp: int | None


@_record_model("CryptoQuote", "ev", "pair", "bp", "bs", "ap", "as", "t", "x", "r")
class CryptoQuote(_Model):
    """Quote of a crypto pair (``XQ``; annotations as Massive's)."""

    __slots__ = ()
    event_type: str | EventType | None
    pair: str | None
    bid_price: int | None
    bid_size: float | None
    ask_price: int | None
    ask_size: int | None
    timestamp: float | None
    exchange_id: int | None
    received_timestamp: int | None


@_record_model("Imbalance", "ev", "T", "t", "at", "a", "i", "x", "o", "p", "b")
class Imbalance(_Model):
    """Net order imbalance of a stock (``NOI``)."""

    __slots__ = ()
    event_type: str | EventType | None
    symbol: str | None
    time_stamp: int | None
    auction_time: int | None
    auction_type: str | None
    symbol_sequence: int | None
    exchange_id: int | None
    imbalance_quantity: int | None
    paired_quantity: int | None
    book_clearing_price: float | None


@_record_model("LimitUpLimitDown", "ev", "T", "h", "l", "i", "z", "t", "q")
class LimitUpLimitDown(_Model):
    """Limit up / limit down band of a stock (``LULD``)."""

    __slots__ = ()
    event_type: str | EventType | None
    symbol: str | None
    high_price: float | None
    low_price: float | None
    indicators: list[int] | None
    tape: int | None
    timestamp: int | None
    sequence_number: int | None


@_record_model("Level2Book", "ev", "pair", "b", "a", "t", "x", "r")
class Level2Book(_Model):
    """Level 2 book of a crypto pair (``XL2``; prices are lists of [price, size]; annotations
    as Massive's)."""

    __slots__ = ()
    event_type: str | EventType | None
    pair: str | None
    bid_prices: float | None
    ask_prices: float | None
    timestamp: int | None
    exchange_id: int | None
    received_timestamp: int | None


@_record_model("IndexValue", "ev", "val", "T", "t")
class IndexValue(_Model):
    """Value of an index (``V``; annotations as Massive's)."""

    __slots__ = ()
    event_type: str | EventType | None
    value: float | None
    ticker: str | None
    timestamp: str | None


@_record_model("LaunchpadValue", "ev", "val", "sym", "t")
class LaunchpadValue(_Model):
    """Launchpad value (``LV``)."""

    __slots__ = ()
    event_type: str | EventType | None
    value: float | None
    symbol: str | None
    timestamp: int | None


@_record_model("FairMarketValue", "ev", "fmv", "sym", "t")
class FairMarketValue(_Model):
    """Fair market value (``FMV``, business feeds)."""

    __slots__ = ()
    event_type: str | EventType | None
    fmv: float | None
    ticker: str | None
    timestamp: int | None


@_record_model("EquityTrade", "ev", "sym", "p", "s", "t", "q")
class FuturesTrade(_Model):
    """Trade of a futures contract (``T`` on a futures market)."""

    __slots__ = ()
    event_type: str | None
    symbol: str | None
    price: float | None
    size: int | None
    timestamp: int | None
    sequence_number: int | None


@_record_model("EquityQuote", "ev", "sym", "bp", "bs", "bt", "ap", "as", "at", "t")
class FuturesQuote(_Model):
    """Quote of a futures contract (``Q`` on a futures market)."""

    __slots__ = ()
    event_type: str | None
    symbol: str | None
    bid_price: float | None
    bid_size: int | None
    bid_timestamp: int | None
    ask_price: float | None
    ask_size: int | None
    ask_timestamp: int | None
    sip_timestamp: int | None


@_record_model("EquityAgg", "ev", "sym", "v", "dv", "o", "c", "h", "l", "n", "s", "e")
class FuturesAgg(_Model):
    """Aggregate of a futures contract (``A`` / ``AM`` on a futures market)."""

    __slots__ = ()
    event_type: str | None
    symbol: str | None
    volume: int | None
    total_value: int | None
    open: float | None
    close: float | None
    high: float | None
    low: float | None
    transactions: int | None
    start_timestamp: int | None
    end_timestamp: int | None


WebSocketMessage = NewType("WebSocketMessage", list[EquityAgg | CurrencyAgg | EquityTrade | CryptoTrade | EquityQuote | ForexQuote | CryptoQuote | Imbalance | LimitUpLimitDown | Level2Book | IndexValue | LaunchpadValue | FairMarketValue | FuturesTrade | FuturesQuote | FuturesAgg])

_FUTURES = {"A": FuturesAgg, "AM": FuturesAgg, "T": FuturesTrade, "Q": FuturesQuote}

#: market -> {ev: model class}: the events each market delivers (Massive's table)
MARKET_EVENT_MAP: dict[Market, dict[str, Any]] = {
    Market.Stocks: {"A": EquityAgg, "AM": EquityAgg, "T": EquityTrade, "Q": EquityQuote,
                    "LULD": LimitUpLimitDown, "FMV": FairMarketValue, "NOI": Imbalance,
                    "LV": LaunchpadValue},
    Market.Options: {"A": EquityAgg, "AM": EquityAgg, "T": EquityTrade, "Q": EquityQuote,
                     "FMV": FairMarketValue, "LV": LaunchpadValue},
    Market.Indices: {"A": EquityAgg, "AM": EquityAgg, "V": IndexValue},
    Market.Futures: _FUTURES,
    Market.FuturesCME: _FUTURES,
    Market.FuturesCBOT: _FUTURES,
    Market.FuturesNYMEX: _FUTURES,
    Market.FuturesCOMEX: _FUTURES,
    Market.Crypto: {"XA": CurrencyAgg, "XAS": CurrencyAgg, "XT": CryptoTrade,
                    "XQ": CryptoQuote, "XL2": Level2Book, "FMV": FairMarketValue,
                    "AM": EquityAgg, "LV": LaunchpadValue},
    Market.Forex: {"CA": CurrencyAgg, "CAS": CurrencyAgg, "C": ForexQuote,
                   "FMV": FairMarketValue, "AM": EquityAgg, "LV": LaunchpadValue},
}


def parse_single(data: dict[str, Any], logger: Any, market: Market) -> Any:
    """The model of one decoded event dict, or None (status, or ``ev`` unknown to ``market``)."""
    ev = data["ev"]
    cls = MARKET_EVENT_MAP.get(market, {}).get(ev)
    if cls is not None:
        return cls.from_dict(data)
    if ev != "status":
        logger.warning("Unknown event type '%s' for market %s", ev, market)
    return None


def parse(msg: list[dict[str, Any]], logger: Any, market: Market) -> list[Any]:
    """Models of decoded event dicts (statuses and unknown events left out)."""
    out = []
    for m in msg:
        parsed = parse_single(m, logger, market)
        if parsed is not None:
            out.append(parsed)
    return out
