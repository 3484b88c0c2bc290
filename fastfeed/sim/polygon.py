"""The polygon simulator's old path: re-exports :mod:`fastfeed.polygon.sim` (the same objects).

The simulator lives beside its feed, in ``fastfeed/polygon/sim.py``; the machinery every
simulator shares stays in :mod:`fastfeed.sim` (``_base``, ``generators``, ``sessions``).
"""

from __future__ import annotations

from fastfeed.polygon import sim
from fastfeed.polygon.sim import *  # noqa: F403 - this module's names are the simulator's

__all__: list[str] = []
__all__ += sim.__all__
