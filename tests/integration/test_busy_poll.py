"""busy_poll=True keeps the loop polling while the streamer is open, and stops on close()."""

from __future__ import annotations

import asyncio

import pytest

from fastfeed.dxfeed import Quote
from fastfeed.sim import DXLinkServer
from fastfeed.tastytrade import DXLinkStreamer


@pytest.mark.timeout(30)
async def test_busy_poll_spins_while_open_and_stops_on_close() -> None:
    async with DXLinkServer(rate=2000, events_per_frame=1, seed=2) as srv:
        default = DXLinkStreamer(srv.session())
        assert default.busy_poll is False
        st = DXLinkStreamer(srv.session(), busy_poll=True)
        async with st:
            assert st._spin is not None                  # a callback is always ready
            await st.subscribe(Quote, ["SPY"])
            q = await asyncio.wait_for(st.get_event(Quote), 5)
            assert q.event_symbol == "SPY"
        assert st._spin is None                          # cancelled: the loop may sleep again
