"""What a user wants subscribed: the set a session replays after every reconnect (layer 3).

Plain data, no I/O: :class:`DesiredSubscriptions` is owned by a session (the DXLink session
replays it on every AUTHORIZED) or by a streamer that has no session of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DesiredSubscriptions"]


@dataclass
class DesiredSubscriptions:
    """What the user wants, replayed after every reconnect.

    ``items[event_type]`` maps a symbol to its parameters (e.g. DXLink Candle ``fromTime``,
    ``None`` when there are none). ``options[event_type]`` holds per-type settings such as the
    aggregation period. Insertion order is kept (replay order = subscription order).
    """

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, event_type: str, symbols: Iterable[str], params: Any = None) -> list[str]:
        """Add symbols; returns the ones that were new or changed."""
        d = self.items.setdefault(event_type, {})
        changed = []
        for s in symbols:
            if s not in d or d[s] != params:
                changed.append(s)
            d[s] = params
        return changed

    def remove(self, event_type: str, symbols: Iterable[str]) -> list[str]:
        d = self.items.get(event_type)
        if not d:
            return []
        gone = [s for s in symbols if d.pop(s, _MISSING) is not _MISSING]
        if not d:
            self.items.pop(event_type, None)
        return gone

    def clear(self, event_type: str) -> list[str]:
        return list(self.items.pop(event_type, {}))

    def symbols(self, event_type: str) -> dict[str, Any]:
        return self.items.get(event_type, {})

    def __len__(self) -> int:
        return sum(len(d) for d in self.items.values())


_MISSING = object()
