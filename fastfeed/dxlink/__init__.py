"""DXLink (dxFeed / tastytrade market data), organised by layer.

* decoder -- ``fastfeed.DXLinkDecoder`` (C, ``fastfeed._native.dxlink``): FEED_DATA frames
  straight into records in rings, with no Python call per frame or event;
* session -- :class:`fastfeed.dxlink.session.DXLinkSession` (typed Python, sans-I/O): the
  handshake, channels, chunked subscriptions and keepalive timing, on top of the decoder;
* streamer -- ``fastfeed.tastytrade.DXLinkStreamer`` (the connection manager and consumer API);
* simulator -- ``fastfeed.sim.DXLinkServer``.
"""

from __future__ import annotations

from fastfeed.dxlink.session import CHANNELS, DXLinkSession

__all__ = ["CHANNELS", "DXLinkSession"]
