"""Session stand-ins: what a tastytrade ``Session`` gives the streamers, pointed at a simulator.

``DXLinkServer.session()`` and ``AccountStreamerServer.session()`` return one ready to use::

    async with DXLinkServer() as srv:
        async with DXLinkStreamer(srv.session()) as streamer: ...

    async with AccountStreamerServer() as srv:
        async with AlertStreamer(srv.session(), url=srv.url) as streamer: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DXLinkSession", "AccountSession"]


@dataclass
class DXLinkSession:
    """The market-data session shape of tastytrade SDKs before 12 (``dxlink_url``,
    ``streamer_token``, ``proxy``), which ``DXLinkStreamer`` accepts besides today's Session."""

    dxlink_url: str
    streamer_token: str = field(repr=False)
    proxy: str | None = None


@dataclass
class AccountSession:
    """What ``AlertStreamer`` uses of a tastytrade Session: ``session_token`` (sent as
    ``Bearer`` on every message), ``is_test``, ``proxy`` and ``refresh()``."""

    session_token: str = field(repr=False)
    is_test: bool = False
    proxy: str | None = None

    async def refresh(self, force: bool = False) -> None:
        """The simulator's token never expires: nothing to refresh."""
