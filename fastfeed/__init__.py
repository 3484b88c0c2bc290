"""fastfeed: a Cython-accelerated market-data feed engine.

DXLink (tastytrade / dxFeed) and polygon.io (Massive) websocket frames are decoded straight into
fixed-layout C records held in ring buffers; Python sees batches, and event objects only when it
asks for them. Drop-in streamers: ``fastfeed.tastytrade`` and ``fastfeed.polygon``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastfeed._connection import ConnectionState
from fastfeed._lazy import lazy_names
from fastfeed._loop import run
from fastfeed._version import __version__
from fastfeed.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionFailedError,
    EventLoopError,
    FastFeedError,
    FastFeedWarning,
    MaxConnectionsError,
    ProtocolError,
    ReconnectionExhausted,
    RingOverflowWarning,
    StreamerClosedError,
    StreamerError,
    SubscriptionError,
)

if TYPE_CHECKING:
    from fastfeed._native.dxlink import DXLinkDecoder
    from fastfeed._native.polygon import PolygonDecoder
    from fastfeed._native.ring import Consumer, EventBatch, RecordRing
    from fastfeed._native.symbols import SymbolTable

__all__ = [
    "__version__",
    "run",
    "ConnectionState",
    "DXLinkDecoder",
    "PolygonDecoder",
    "EventBatch",
    "RecordRing",
    "Consumer",
    "SymbolTable",
    "FastFeedError",
    "ProtocolError",
    "AuthenticationError",
    "SubscriptionError",
    "StreamerError",
    "StreamerClosedError",
    "ConnectionFailedError",
    "ConfigurationError",
    "EventLoopError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "ReconnectionExhausted",
    "MaxConnectionsError",
    "FastFeedWarning",
    "RingOverflowWarning",
]

_LAZY = {
    "DXLinkDecoder": "fastfeed._native.dxlink",
    "PolygonDecoder": "fastfeed._native.polygon",
    "EventBatch": "fastfeed._native.ring",
    "RecordRing": "fastfeed._native.ring",
    "Consumer": "fastfeed._native.ring",
    "SymbolTable": "fastfeed._native.symbols",
}

# compiled modules are imported on first use so `import fastfeed` stays cheap; dir() lists the
# lazy names too, not the typing helpers this module imports for itself
__getattr__, __dir__ = lazy_names(globals(), _LAZY, hidden=("TYPE_CHECKING", "annotations",
                                                            "lazy_names"))
