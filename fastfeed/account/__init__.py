"""tastytrade's account streamer (orders, fills, balances, positions, alerts): this folder.

* simulator -- :class:`fastfeed.account.sim.AccountStreamerServer` (also
  ``fastfeed.sim.AccountStreamerServer``).
"""

from __future__ import annotations
