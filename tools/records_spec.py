"""The one specification of every fastfeed record.

``tools/gen_records.py`` turns this file into the C header (``records.h``), the Cython
declarations (``records.pxd``) and the Python metadata (``fastfeed/_records_meta.py``) that event
classes, buffer formats, numpy dtypes and the decoders' field tables are built from.
Edit this file, run ``python tools/gen_records.py``, commit all four.

Field kinds (storage):
  f64      double (NaN/+-Inf kept)           i64   int64          i32  int32
  bool     uint8 0/1                          enum  uint8 code (0 = absent, k = names[k-1])
  char     uint32 code point (0 = empty)      str   uint32 id in the decoder's string table (0 = null)
  fixstr:N inline char[N] (NUL padded); a longer value (or one holding a NUL) is kept whole in the
           ring's spill log: the slot then holds (u32 offset, u32 length) into the record's spill
           range and the field's alt bit 32 + bit is set (polygon records only)
  i32arr:N inline int32[N] + uint8 count + uint8 dropped
  levels:N inline N x (double price, double size) + uint8 alt flags per level + uint16 count + uint16 dropped

The event symbol is never a field: it is the interned ``symbol_id`` of the common header.
"""

from __future__ import annotations

ENUMS: dict[str, list[str]] = {
    "Direction": ["UNDEFINED", "DOWN", "ZERO_DOWN", "ZERO", "ZERO_UP", "UP"],
    "PriceType": ["REGULAR", "INDICATIVE", "PRELIMINARY", "FINAL"],
    "ShortSaleRestriction": ["UNDEFINED", "ACTIVE", "INACTIVE"],
    "TradingStatus": ["UNDEFINED", "HALTED", "ACTIVE"],
    "Side": ["UNDEFINED", "BUY", "SELL"],
    "TimeAndSaleType": ["NEW", "CORRECTION", "CANCEL"],
    # dxFeed's Order family (dxLink spec: string fields; values from dxFeed's event model).
    # A name not listed here is still kept: the decoder adds it at run time (see dxlink.pyx).
    "OrderAction": ["UNDEFINED", "NEW", "REPLACE", "MODIFY", "DELETE", "PARTIAL", "EXECUTE",
                    "TRADE", "BUST"],
    "Scope": ["COMPOSITE", "REGIONAL", "AGGREGATE", "ORDER"],
    "IcebergType": ["UNDEFINED", "NATIVE", "SYNTHETIC"],
}

# ---------------------------------------------------------------------------------------------
# dxFeed events (DXLink). Field order = tastytrade 13.2.3's acceptEventFields order (its decode
# order), which is also the order fastfeed requests. (wire name, kind[, aliases])
# ---------------------------------------------------------------------------------------------
_INDEXED_HEAD = [
    ("eventTime", "i64"),
    ("eventFlags", "i32"),
    ("index", "i64"),
    ("time", "i64"),
]

_TRADE = [
    ("eventTime", "i64"),
    ("time", "i64"),
    ("timeNanoPart", "i32"),
    ("sequence", "i32"),
    ("exchangeCode", "char"),
    ("dayId", "i32"),
    ("tickDirection", "enum:Direction"),
    ("extendedTradingHours", "bool"),
    ("price", "f64"),
    ("change", "f64"),
    ("size", "f64"),
    ("dayVolume", "f64"),
    ("dayTurnover", "f64"),
]

# Order, SpreadOrder and AnalyticOrder share these (dxLink AsyncAPI OrderEvent schema, in its
# order); tastytrade does not request them, so this is also the order fastfeed requests.
_ORDER_BASE = _INDEXED_HEAD + [
    ("timeNanoPart", "i32"),
    ("sequence", "i32"),
    ("source", "str"),
    ("action", "enum:OrderAction"),
    ("actionTime", "i64"),
    ("orderId", "i64"),
    ("auxOrderId", "i64"),
    ("price", "f64"),
    ("size", "f64"),
    ("executedSize", "f64"),
    ("count", "i64"),
    ("exchangeCode", "char"),
    ("orderSide", "enum:Side"),
    ("scope", "enum:Scope"),
    ("tradeId", "i64"),
    ("tradePrice", "f64"),
    ("tradeSize", "f64"),
]

DXFEED: dict[str, list[tuple]] = {
    "Quote": [
        ("eventTime", "i64"),
        ("sequence", "i32"),
        ("timeNanoPart", "i32"),
        ("bidTime", "i64"),
        ("bidExchangeCode", "char"),
        ("askTime", "i64"),
        ("askExchangeCode", "char"),
        ("bidPrice", "f64"),
        ("askPrice", "f64"),
        ("bidSize", "f64"),
        ("askSize", "f64"),
    ],
    "Trade": _TRADE,
    "TradeETH": _TRADE,
    "Greeks": _INDEXED_HEAD
    + [
        ("sequence", "i32"),
        ("price", "f64"),
        ("volatility", "f64"),
        ("delta", "f64"),
        ("gamma", "f64"),
        ("theta", "f64"),
        ("rho", "f64"),
        ("vega", "f64"),
    ],
    "Summary": [
        ("eventTime", "i64"),
        ("dayId", "i32"),
        ("dayClosePriceType", "enum:PriceType"),
        ("prevDayId", "i32"),
        ("prevDayClosePriceType", "enum:PriceType"),
        # dxFeed "long" in the spec, double in the C API: kept as double so "NaN" survives.
        ("openInterest", "f64"),
        ("dayOpenPrice", "f64"),
        ("dayHighPrice", "f64"),
        ("dayLowPrice", "f64"),
        ("dayClosePrice", "f64"),
        ("prevDayClosePrice", "f64"),
        ("prevDayVolume", "f64"),
    ],
    "Profile": [
        ("eventTime", "i64"),
        ("description", "str"),
        ("shortSaleRestriction", "enum:ShortSaleRestriction"),
        ("tradingStatus", "enum:TradingStatus"),
        ("haltStartTime", "i64"),
        ("haltEndTime", "i64"),
        ("exDividendDayId", "i32"),
        ("statusReason", "str"),
        ("high52WeekPrice", "f64"),
        ("low52WeekPrice", "f64"),
        ("beta", "f64"),
        ("shares", "f64"),
        ("highLimitPrice", "f64"),
        ("lowLimitPrice", "f64"),
        ("earningsPerShare", "f64"),
        ("exDividendAmount", "f64"),
        ("dividendFrequency", "f64"),
        ("freeFloat", "f64"),
    ],
    "Candle": _INDEXED_HEAD
    + [
        ("sequence", "i32"),
        ("count", "f64"),
        ("volume", "f64"),
        ("vwap", "f64", ["VWAP"]),
        ("bidVolume", "f64"),
        ("askVolume", "f64"),
        ("impVolatility", "f64"),
        ("openInterest", "f64"),
        ("open", "f64"),
        ("high", "f64"),
        ("low", "f64"),
        ("close", "f64"),
    ],
    "TimeAndSale": _INDEXED_HEAD
    + [
        ("timeNanoPart", "i32"),
        ("sequence", "i32"),
        ("exchangeCode", "char"),
        ("price", "f64"),
        ("size", "f64"),
        ("bidPrice", "f64"),
        ("askPrice", "f64"),
        ("tradeThroughExempt", "char"),
        ("aggressorSide", "enum:Side"),
        ("spreadLeg", "bool"),
        ("extendedTradingHours", "bool"),
        ("validTick", "bool"),
        ("type", "enum:TimeAndSaleType"),
        ("buyer", "str"),
        ("seller", "str"),
        ("exchangeSaleConditions", "str"),
    ],
    "TheoPrice": _INDEXED_HEAD
    + [
        ("sequence", "i32"),
        ("price", "f64"),
        ("underlyingPrice", "f64"),
        ("delta", "f64"),
        ("gamma", "f64"),
        ("dividend", "f64"),
        ("interest", "f64"),
    ],
    "Underlying": _INDEXED_HEAD
    + [
        ("sequence", "i32"),
        ("volatility", "f64"),
        ("frontVolatility", "f64"),
        ("backVolatility", "f64"),
        ("callVolume", "f64"),
        ("putVolume", "f64"),
        ("optionVolume", "f64"),
        ("putCallRatio", "f64"),
    ],
    # dxFeed types beyond tastytrade's nine (dxLink AsyncAPI schemas, in the spec's order).
    "Order": _ORDER_BASE + [("marketMaker", "str")],
    "SpreadOrder": _ORDER_BASE + [("spreadSymbol", "str")],
    "AnalyticOrder": _ORDER_BASE
    + [
        ("marketMaker", "str"),
        ("icebergPeakSize", "f64"),
        ("icebergHiddenSize", "f64"),
        ("icebergExecutedSize", "f64"),
        ("icebergType", "enum:IcebergType"),
    ],
    "OptionSale": _INDEXED_HEAD
    + [
        ("timeNanoPart", "i32"),
        ("sequence", "i32"),
        ("exchangeCode", "char"),
        ("price", "f64"),
        ("size", "f64"),
        ("bidPrice", "f64"),
        ("askPrice", "f64"),
        ("exchangeSaleConditions", "str"),
        ("tradeThroughExempt", "char"),
        ("aggressorSide", "enum:Side"),
        ("spreadLeg", "bool"),
        ("extendedTradingHours", "bool"),
        ("validTick", "bool"),
        ("type", "enum:TimeAndSaleType"),
        ("underlyingPrice", "f64"),
        ("volatility", "f64"),
        ("delta", "f64"),
        ("optionSymbol", "str"),
    ],
    "Series": _INDEXED_HEAD
    + [
        ("sequence", "i32"),
        ("expiration", "i32"),
        ("volatility", "f64"),
        ("callVolume", "f64"),
        ("putVolume", "f64"),
        ("putCallRatio", "f64"),
        ("forwardPrice", "f64"),
        ("dividend", "f64"),
        ("interest", "f64"),
    ],
}

# DXLink's DOM service (CHANNEL_REQUEST service "DOM"): one record per DOM_SNAPSHOT, the
# channel's symbol in the header, the snapshot's ``time`` and its price levels ({price, size}
# objects on the wire; levels beyond the slot are counted in ``*_dropped``).
DXDOM: dict[str, list[tuple]] = {
    "DomSnapshot": [
        ("time", "i64"),
        ("bids", "levels:100"),
        ("asks", "levels:100"),
    ],
}

# ---------------------------------------------------------------------------------------------
# polygon.io / Massive events. One layout per key family (names follow Massive's models); several
# wire ``ev`` codes may share a layout (A and AM, CA/CAS/XA/XAS). (wire key, kind, attribute name).
# Massive's futures markets reuse the T / Q / A layouts (futures Q adds bt/at, futures A adds n and
# an integer or string dv).
# ``symbol_key`` is the wire key whose value is interned into the header's symbol_id.
# "i64|str" = int64 slot whose ``alt`` bit means the wire value was a decimal string ("x":"44").
# "fixstr|int" = string slot whose ``alt`` bit means the wire value was a JSON integer.
# For f64 slots ``alt`` means "the wire had an integer"; for i64 slots "the wire had a float".
# ---------------------------------------------------------------------------------------------
POLYGON: dict[str, dict] = {
    "EquityTrade": {
        "ev": ["T"],
        "symbol_key": ("sym", "symbol"),
        "fields": [
            ("x", "i64", "exchange"),
            ("i", "fixstr:32", "id"),
            ("z", "i64", "tape"),
            ("p", "f64", "price"),
            ("s", "f64", "size"),
            ("ds", "fixstr:32", "fractional_shares"),
            ("c", "i32arr:8", "conditions"),
            ("t", "i64", "timestamp"),
            ("q", "i64", "sequence_number"),
            ("trfi", "i64", "trf_id"),
            ("trft", "i64", "trf_timestamp"),
            # live frames (not in Massive's spec): participant timestamp
            ("pt", "i64", "participant_timestamp"),
        ],
    },
    "EquityQuote": {
        "ev": ["Q"],
        "symbol_key": ("sym", "symbol"),
        "fields": [
            ("bx", "i64", "bid_exchange_id"),
            ("bp", "f64", "bid_price"),
            ("bs", "f64", "bid_size"),
            ("ax", "i64", "ask_exchange_id"),
            ("ap", "f64", "ask_price"),
            ("as", "f64", "ask_size"),
            ("c", "i64", "condition"),
            ("i", "i32arr:8", "indicators"),
            ("t", "i64", "timestamp"),
            ("q", "i64", "sequence_number"),
            ("z", "i64", "tape"),
            ("trfi", "i64", "trf_id"),
            ("trft", "i64", "trf_timestamp"),
            ("pt", "i64", "participant_timestamp"),
            # futures quotes (Massive's FuturesQuote): bid / ask timestamps
            ("bt", "i64", "bid_timestamp"),
            ("at", "i64", "ask_timestamp"),
        ],
    },
    "EquityAgg": {
        "ev": ["A", "AM"],
        "symbol_key": ("sym", "symbol"),
        "fields": [
            ("v", "f64", "volume"),
            ("av", "f64", "accumulated_volume"),
            ("op", "f64", "official_open_price"),
            ("vw", "f64", "vwap"),
            ("o", "f64", "open"),
            ("c", "f64", "close"),
            ("h", "f64", "high"),
            ("l", "f64", "low"),
            ("a", "f64", "aggregate_vwap"),
            ("z", "f64", "average_size"),
            ("s", "i64", "start_timestamp"),
            ("e", "i64", "end_timestamp"),
            ("otc", "bool", "otc"),
            # stocks: decimal string (fractional volume); futures: integer (total value)
            ("dv", "fixstr:32|int", "fractional_volume"),
            ("dav", "fixstr:32", "fractional_accumulated_volume"),
            # futures aggregates (Massive's FuturesAgg): number of transactions
            ("n", "i64", "transactions"),
        ],
    },
    "LimitUpLimitDown": {
        "ev": ["LULD"],
        "symbol_key": ("T", "symbol"),
        "fields": [
            ("h", "f64", "high_price"),
            ("l", "f64", "low_price"),
            ("i", "i32arr:8", "indicators"),
            ("z", "i64", "tape"),
            ("t", "i64", "timestamp"),
            ("q", "i64", "sequence_number"),
        ],
    },
    "Imbalance": {
        "ev": ["NOI"],
        "symbol_key": ("T", "symbol"),
        "fields": [
            ("t", "i64", "timestamp"),
            ("at", "i64", "auction_time"),
            ("a", "fixstr:8", "auction_type"),
            ("i", "i64", "symbol_sequence"),
            ("x", "i64", "exchange_id"),
            ("o", "f64", "imbalance_quantity"),
            ("p", "f64", "paired_quantity"),
            ("b", "f64", "book_clearing_price"),
        ],
    },
    "ForexQuote": {
        "ev": ["C"],
        "symbol_key": ("p", "pair"),
        "fields": [
            ("x", "i64|str", "exchange_id"),
            ("a", "f64", "ask_price"),
            ("b", "f64", "bid_price"),
            ("t", "i64", "timestamp"),
        ],
    },
    "CurrencyAgg": {
        "ev": ["CA", "CAS", "XA", "XAS"],
        "symbol_key": ("pair", "pair"),
        "fields": [
            ("o", "f64", "open"),
            ("c", "f64", "close"),
            ("h", "f64", "high"),
            ("l", "f64", "low"),
            ("v", "f64", "volume"),
            ("vw", "f64", "vwap"),
            ("z", "f64", "avg_trade_size"),
            ("s", "i64", "start_timestamp"),
            ("e", "i64", "end_timestamp"),
        ],
    },
    "CryptoTrade": {
        "ev": ["XT"],
        "symbol_key": ("pair", "pair"),
        "fields": [
            ("p", "f64", "price"),
            ("t", "i64", "timestamp"),
            ("s", "f64", "size"),
            ("c", "i32arr:8", "conditions"),
            ("i", "fixstr:32|int", "id"),
            ("x", "i64", "exchange"),
            ("r", "i64", "received_timestamp"),
        ],
    },
    "CryptoQuote": {
        "ev": ["XQ"],
        "symbol_key": ("pair", "pair"),
        "fields": [
            ("bp", "f64", "bid_price"),
            ("bs", "f64", "bid_size"),
            ("ap", "f64", "ask_price"),
            ("as", "f64", "ask_size"),
            ("t", "i64", "timestamp"),
            ("x", "i64", "exchange_id"),
            ("r", "i64", "received_timestamp"),
        ],
    },
    "Level2Book": {
        "ev": ["XL2"],
        "symbol_key": ("pair", "pair"),
        "fields": [
            ("b", "levels:100", "bid_prices"),
            ("a", "levels:100", "ask_prices"),
            ("t", "i64", "timestamp"),
            ("x", "i64", "exchange_id"),
            ("r", "i64", "received_timestamp"),
        ],
    },
    "IndexValue": {
        "ev": ["V"],
        "symbol_key": ("T", "ticker"),
        "fields": [
            ("val", "f64", "value"),
            ("t", "i64", "timestamp"),
        ],
    },
    "FairMarketValue": {
        "ev": ["FMV"],
        "symbol_key": ("sym", "ticker"),
        "fields": [
            ("fmv", "f64", "fmv"),
            ("t", "i64", "timestamp"),
        ],
    },
    "LaunchpadValue": {
        "ev": ["LV"],
        "symbol_key": ("sym", "symbol"),
        "fields": [
            ("val", "f64", "value"),
            ("t", "i64", "timestamp"),
        ],
    },
}
