"""Drop-in for Massive's websocket client (``massive`` 2.9.1, formerly ``polygon-api-client``).

::

    from fastfeed.massive import WebSocketClient          # was: from massive import ...
    from fastfeed.massive.websocket.models import WebSocketMessage, Feed, Market

    client = WebSocketClient(api_key=KEY, feed=Feed.RealTime, market=Market.Stocks)
    client.subscribe("T.*", "Q.AAPL")

    def handle_msg(msgs: list[WebSocketMessage]) -> None:
        for m in msgs:
            print(m.symbol, m.price)

    client.run(handle_msg)        # or: await client.connect(async_handler)

Same constructor, methods, enums (``Feed`` with the ``*.massive.com`` hosts, ``Market`` with the
futures markets) and models (``EquityTrade``, ``EquityQuote``, ``EquityAgg``, ``CurrencyAgg``,
``CryptoTrade``, ``CryptoQuote``, ``ForexQuote``, ``Level2Book``, ``IndexValue``,
``LimitUpLimitDown``, ``Imbalance``, ``FairMarketValue``, ``LaunchpadValue``, ``FuturesTrade``,
``FuturesQuote``, ``FuturesAgg``): every attribute has the value and type Massive's would have.
Underneath it is fastfeed's polygon stack (picows, the C decoder, records in rings); a model
object is a lazy view of one record, made without parsing or a dict.

Differences: ``processor`` gets one list per socket read (several frames read together arrive
as one list, in wire order); model objects are read-only; ``custom_json`` and ``ca_certs`` are
accepted and unused (fastfeed decodes in C; TLS is verified with the system's default
context); the ``connect(**kwargs)`` honoured are ``ping_interval``, ``ping_timeout`` and
``max_size``; ``max_connections`` raises :class:`fastfeed.MaxConnectionsError`; failed
connection attempts count towards ``max_reconnects``.
"""

from __future__ import annotations

from fastfeed.massive._client import WebSocketClient
from fastfeed.massive._models import (
    MARKET_EVENT_MAP,
    CryptoQuote,
    CryptoTrade,
    CurrencyAgg,
    EquityAgg,
    EquityQuote,
    EquityTrade,
    EventType,
    FairMarketValue,
    Feed,
    ForexQuote,
    FuturesAgg,
    FuturesQuote,
    FuturesTrade,
    Imbalance,
    IndexValue,
    LaunchpadValue,
    Level2Book,
    LimitUpLimitDown,
    Market,
    WebSocketMessage,
    parse,
    parse_single,
)
from fastfeed.massive.exceptions import AuthError, BadResponse

__all__ = [
    "MARKET_EVENT_MAP",
    "AuthError",
    "BadResponse",
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
    "WebSocketClient",
    "WebSocketMessage",
    "parse",
    "parse_single",
]
