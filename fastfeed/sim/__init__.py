"""fastfeed.sim — local DXLink and polygon feed simulators (picows servers on 127.0.0.1).

    async with fastfeed.sim.DXLinkServer(token="t", rate=1000) as srv:
        ...  # connect a client to srv.url

    async with fastfeed.sim.PolygonServer(cluster="stocks", api_key="k") as srv:
        ...  # srv.url == ws://127.0.0.1:PORT/stocks

    with fastfeed.sim.spawn("dxlink", rate=None) as proc:   # separate process
        ...  # proc.url

Also ``python -m fastfeed.sim {dxlink,polygon,account} --port N ...``.
"""

from __future__ import annotations

from ._base import Record, SimConnection, SimServer, SpawnedSim, spawn, ws_text_frame
from .account import AccountStreamerServer
from .dxlink import DXLinkServer
from .generators import DXLinkGenerator, PolygonGenerator
from .polygon import PolygonServer

__all__ = [
    "AccountStreamerServer",
    "DXLinkServer",
    "PolygonServer",
    "SimServer",
    "SimConnection",
    "Record",
    "DXLinkGenerator",
    "PolygonGenerator",
    "SpawnedSim",
    "spawn",
    "ws_text_frame",
]
