"""The tastytrade account-streamer simulator's old path: re-exports :mod:`fastfeed.account.sim` (the same objects).

The simulator lives beside its feed, in ``fastfeed/account/sim.py``; the machinery every
simulator shares stays in :mod:`fastfeed.sim` (``_base``, ``generators``, ``sessions``).
"""

from __future__ import annotations

from fastfeed.account import sim
from fastfeed.account.sim import *  # noqa: F403 - this module's names are the simulator's

__all__: list[str] = []
__all__ += sim.__all__

main = sim.main

if __name__ == "__main__":  # python -m fastfeed.sim.account (python -m fastfeed.sim account)
    raise SystemExit(main())
