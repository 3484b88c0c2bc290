"""The idle strategy: after data the loop is kept polling for ``idle_spin_us``, then parks;
an idle streamer schedules no spin callbacks; ``busy_poll=True`` never parks."""

from __future__ import annotations

import asyncio

import pytest

import fastfeed._connection as conn
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
async def test_spin_window_after_data_then_park_and_idle_costs_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the window is spun whole here even when the test machine deschedules the spinner
    monkeypatch.setattr(conn, "SPIN_PREEMPTIONS", 10**9)
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


@pytest.mark.timeout(30)
async def test_spinning_backs_off_while_the_thread_keeps_losing_its_cpu() -> None:
    async with DXLinkServer(rate=0, seed=6) as srv:
        st = DXLinkStreamer(srv.session(), idle_spin_us=50_000.0)
        t0 = 1000.0
        lo, hi = conn.SPIN_BACKOFF_MIN_S, conn.SPIN_BACKOFF_MAX_S
        # one descheduled loop turn is tolerated ...
        assert not st._spin_lost_cpu(t0)
        # ... a second within SPIN_PREEMPT_WINDOW_S backs off for SPIN_BACKOFF_MIN_S
        assert st._spin_lost_cpu(t0 + 0.1)
        assert st.n_spin_backoffs == 1
        assert st._spin_resume_at == t0 + 0.1 + lo
        # losing the CPU again soon after backs off twice as long, up to SPIN_BACKOFF_MAX_S
        t1 = t0 + 0.1 + lo + 0.5
        assert not st._spin_lost_cpu(t1) and st._spin_lost_cpu(t1 + 0.01)
        assert st._spin_resume_at == t1 + 0.01 + 2 * lo
        t = t1 + 0.01
        for _ in range(10):
            t += st._spin_backoff + 0.5
            st._spin_lost_cpu(t)
            st._spin_lost_cpu(t + 0.01)
        assert st._spin_backoff == hi
        # long after the last back-off, the next one is short again
        t += 10 * hi
        st._spin_lost_cpu(t)
        assert st._spin_lost_cpu(t + 0.01) and st._spin_backoff == lo
        # preemptions further apart than the window never back off
        st2 = DXLinkStreamer(srv.session())
        assert not any(st2._spin_lost_cpu(t0 + 2 * conn.SPIN_PREEMPT_WINDOW_S * k)
                       for k in range(5))
        # while backing off, data does not start a spin
        st._spin_resume_at = float("inf")
        async with st:
            await st.subscribe(Quote, ["SPY"])     # handshake + subscription replies: data
            assert st._data_wakes > 0
            assert st._spin is None and st.n_spin_callbacks == 0
