"""fastfeed's own typed account-streamer notifications (used when the tastytrade package is not
installed, or asked for directly): ``listen(PlacedOrder)`` etc. on
:class:`fastfeed.tastytrade.AlertStreamer`. Same field names as tastytrade's models.

The classes are defined in :mod:`fastfeed.account.events` (beside the account session and
streamer); this is their public path (the same objects)."""

from fastfeed.account.events import (
    AccountBalance,
    AlertData,
    CurrentPosition,
    ExternalTransaction,
    FillInfo,
    InvalidAlert,
    Leg,
    OrderChain,
    PlacedComplexOrder,
    PlacedOrder,
    QuoteAlert,
    TradingStatus,
    UnderlyingYearGainSummary,
    Watchlist,
)

__all__ = [
    "AccountBalance",
    "AlertData",
    "CurrentPosition",
    "ExternalTransaction",
    "FillInfo",
    "InvalidAlert",
    "Leg",
    "OrderChain",
    "PlacedComplexOrder",
    "PlacedOrder",
    "QuoteAlert",
    "TradingStatus",
    "UnderlyingYearGainSummary",
    "Watchlist",
]
