"""fastfeed.sim — local DXLink and polygon feed simulators (picows servers on 127.0.0.1).

    async with fastfeed.sim.DXLinkServer(rate=1000) as srv:
        ...  # DXLinkStreamer(srv.session()); srv.url, srv.token ("sim-token")

    async with fastfeed.sim.AccountStreamerServer() as srv:
        ...  # AlertStreamer(srv.session(), url=srv.url)

    async with fastfeed.sim.PolygonServer(cluster="stocks", api_key="k") as srv:
        ...  # AsyncStreamClient("k", "stocks", host=srv.client_host); srv.url == ws://…/stocks

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
from .sessions import AccountSession, DXLinkSession

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
