"""fastfeed.sim — local DXLink, polygon and account-streamer simulators (picows servers on 127.0.0.1).

    async with fastfeed.sim.DXLinkServer(rate=1000) as srv:
        ...  # DXLinkStreamer(srv.session()); srv.url, srv.token ("sim-token")

    async with fastfeed.sim.AccountStreamerServer() as srv:
        ...  # AlertStreamer(srv.session(), url=srv.url)

    async with fastfeed.sim.PolygonServer(cluster="stocks", api_key="k") as srv:
        ...  # AsyncStreamClient("k", "stocks", host=srv.client_host); srv.url == ws://…/stocks

    with fastfeed.sim.spawn("dxlink", rate=None) as proc:   # separate process
        ...  # proc.url

Also ``python -m fastfeed.sim {dxlink,polygon,account} --port N ...``.

Each simulator lives beside its feed (:mod:`fastfeed.dxlink.sim`, :mod:`fastfeed.polygon.sim`,
:mod:`fastfeed.account.sim`); this package is their shared core (``_base``: the server and
connection machinery, fault injection, ``spawn``; ``generators``; ``sessions``: the Session
stand-ins ``srv.session()`` returns) and re-exports them. ``fastfeed.sim.dxlink``,
``fastfeed.sim.polygon`` and ``fastfeed.sim.account`` are the old paths (the same objects).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastfeed._lazy import lazy_names

from ._base import Record, SimConnection, SimServer, SpawnedSim, spawn, ws_text_frame
from .generators import DXLinkGenerator, PolygonGenerator
from .sessions import AccountSession, DXLinkSession

if TYPE_CHECKING:
    from fastfeed.account.sim import AccountStreamerServer
    from fastfeed.dxlink.sim import DXLinkServer
    from fastfeed.polygon.sim import PolygonServer

__all__ = [
    "AccountStreamerServer",
    "DXLinkServer",
    "PolygonServer",
    "DXLinkSession",
    "AccountSession",
    "SimServer",
    "SimConnection",
    "Record",
    "DXLinkGenerator",
    "PolygonGenerator",
    "SpawnedSim",
    "spawn",
    "ws_text_frame",
]

# the feed simulators import this package's core: they are imported on first use
_LAZY = {"AccountStreamerServer": "fastfeed.account.sim", "DXLinkServer": "fastfeed.dxlink.sim",
         "PolygonServer": "fastfeed.polygon.sim"}

# the old submodules (fastfeed.sim.dxlink, ...) as attributes, as before
__getattr__, __dir__ = lazy_names(globals(), _LAZY, submodules=("dxlink", "polygon", "account"))
