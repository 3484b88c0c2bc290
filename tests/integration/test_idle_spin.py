"""The idle strategy: after data the loop is kept polling for ``idle_spin_us``, then parks;
an idle streamer schedules no spin callbacks; ``busy_poll=True`` never parks."""

from __future__ import annotations

import asyncio

import pytest

from fastfeed._connection import DEFAULT_IDLE_SPIN_US
from fastfeed.dxfeed import Quote
from fastfeed.sim import DXLinkServer
from fastfeed.tastytrade import DXLinkStreamer


async def _until(cond: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        # the counters move in loop callbacks: check once per loop turn
        while not cond():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0)
    await asyncio.wait_for(poll(), timeout)


@pytest.mark.timeout(30)
async def test_spin_window_after_data_then_park_and_idle_costs_nothing() -> None:
    window_us = 50_000.0
    async with DXLinkServer(rate=0, seed=3) as srv:     # rate=0: an idle feed
        st = DXLinkStreamer(srv.session(), idle_spin_us=window_us)
        assert st.idle_spin_us == window_us
        clock = asyncio.get_running_loop().time
        async with st:
            # the handshake was data: the loop spins, then parks once the window has passed
            await _until(lambda: st.n_spin_parks >= 1)
            assert st._spin is None
            parked_at = clock()
            # idle: no data, so no spin callback is scheduled while the loop sleeps
            spins = st.n_spin_callbacks
            await asyncio.sleep(0.2)        # an observation window, not a speed assertion
            assert st.n_spin_callbacks == spins and st._spin is None
            assert st.n_spin_parks == 1
            # data arrives (a subscription's reply): the loop is kept awake for the window
            wakes = st._data_wakes
            await st.subscribe(Quote, ["SPY"])
            await _until(lambda: st._data_wakes > wakes)
            woke_at = clock()
            assert st._spin is not None
            await _until(lambda: st.n_spin_parks >= 2)
            parked_again = clock()
            assert parked_again > parked_at
            # it polled (many loop turns) and did not park before the window had passed
            assert st.n_spin_callbacks > spins + 1
            assert parked_again - woke_at >= window_us * 1e-6 * 0.999
        assert st._spin is None


@pytest.mark.timeout(30)
async def test_no_spin_and_default() -> None:
    async with DXLinkServer(rate=2000, events_per_frame=1, seed=4) as srv:
        assert DXLinkStreamer(srv.session()).idle_spin_us == DEFAULT_IDLE_SPIN_US > 0
        with pytest.raises(ValueError, match="idle_spin_us"):
            DXLinkStreamer(srv.session(), idle_spin_us=-1)
        st = DXLinkStreamer(srv.session(), idle_spin_us=0)     # park at once, never spin
        async with st:
            await st.subscribe(Quote, ["SPY"])
            for _ in range(5):
                await asyncio.wait_for(st.get_event(Quote), 5)
            assert st.n_spin_callbacks == 0 and st._spin is None


@pytest.mark.timeout(30)
async def test_busy_poll_never_parks() -> None:
    async with DXLinkServer(rate=0, seed=5) as srv:
        st = DXLinkStreamer(srv.session(), busy_poll=True, idle_spin_us=1.0)
        async with st:
            spins = st.n_spin_callbacks
            await _until(lambda: st.n_spin_callbacks > spins + 1000)
            assert st.n_spin_parks == 0 and st._spin is not None
        assert st._spin is None
