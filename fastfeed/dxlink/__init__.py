"""DXLink (dxFeed / tastytrade market data), organised by layer.

* decoder -- ``fastfeed.DXLinkDecoder`` (C, ``fastfeed._native.dxlink``): FEED_DATA frames
  straight into records in rings, with no Python call per frame or event;
* session -- :class:`fastfeed.dxlink.session.DXLinkSession` (typed Python, sans-I/O): the
  handshake, channels, chunked subscriptions and keepalive timing, on top of the decoder;
* streamer -- :class:`fastfeed.dxlink.streamer.DXLinkStreamer` (the connection manager and
  consumer API; also ``fastfeed.tastytrade.DXLinkStreamer``);
* simulator -- ``fastfeed.sim.DXLinkServer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastfeed.dxlink.session import CHANNELS, DXLinkSession

if TYPE_CHECKING:
    from fastfeed.dxlink.streamer import DXLinkStreamer

__all__ = ["CHANNELS", "DXLinkSession", "DXLinkStreamer"]


def __getattr__(name: str) -> Any:
    # the streamer pulls in the connection manager: imported on first use
    if name == "DXLinkStreamer":
        from fastfeed.dxlink.streamer import DXLinkStreamer
        return DXLinkStreamer
    raise AttributeError(f"module 'fastfeed.dxlink' has no attribute {name!r}")
