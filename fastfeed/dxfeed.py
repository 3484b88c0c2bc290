"""dxFeed event classes (``Quote``, ``Trade``, ``Greeks`` ...): the public path.

The classes are generated into :mod:`fastfeed.dxlink.events` (beside the DXLink session and
streamer) by ``tools/gen_records.py``; this module re-exports the same objects
(``fastfeed.dxfeed.Quote is fastfeed.dxlink.events.Quote``), so either import works.
"""

from __future__ import annotations

from fastfeed.dxlink import events
from fastfeed.dxlink.events import *  # noqa: F403 - this module's names are the events module's

__all__: list[str] = []
__all__ += events.__all__
