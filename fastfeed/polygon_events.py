"""polygon.io / Massive event classes (``EquityTrade``, ``EquityQuote`` ...): the public path.

The classes are generated into :mod:`fastfeed.polygon.events` (beside the polygon session and
client) by ``tools/gen_records.py``; this module re-exports the same objects
(``fastfeed.polygon_events.EquityTrade is fastfeed.polygon.events.EquityTrade``).
"""

from __future__ import annotations

from fastfeed.polygon import events
from fastfeed.polygon.events import *  # noqa: F403 - this module's names are the events module's

__all__: list[str] = []
__all__ += events.__all__
