"""tastytrade's account streamer (orders, fills, balances, positions, alerts): this folder.

* events -- :mod:`fastfeed.account.events` (:class:`PlacedOrder`, :class:`AccountBalance` ...,
  ``InvalidAlert``; public path ``fastfeed.alerts``);
* session -- :class:`fastfeed.account.session.AccountSession` (typed Python, sans-I/O): the
  handshake, request ids and acks, the desired subscriptions and their replay, heartbeat timing,
  the meaning of every server message;
* streamer -- :class:`fastfeed.account.streamer.AlertStreamer` (the connection manager and the
  consumer API; also ``fastfeed.tastytrade.AlertStreamer``);
* simulator -- :class:`fastfeed.account.sim.AccountStreamerServer` (also
  ``fastfeed.sim.AccountStreamerServer``).

The names below are imported on first use (the simulator and the events need no streamer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastfeed._lazy import lazy_names

if TYPE_CHECKING:
    from fastfeed.account.session import AccountSession
    from fastfeed.account.streamer import AlertStreamer

__all__ = ["AccountSession", "AlertStreamer"]

_LAZY = {"AccountSession": "fastfeed.account.session",
         "AlertStreamer": "fastfeed.account.streamer"}

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
