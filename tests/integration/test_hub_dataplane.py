"""The hub's data plane, with real components (simulator, hub process, iceoryx2): zero-copy
batches and their loans, the consumer's own overflow setting (back-pressure loses nothing,
drop-oldest counts what it drops), the idle spin that parks and is woken by the hub."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
import test_hub
from test_hub import TIMEOUT, Proc, Rig, _env, _sent_quotes, _spawn

import fastfeed.hub
from fastfeed.dxfeed import Quote

pytestmark = pytest.mark.timeout(90)
rig = test_hub.rig   # the fixture: simulator + hub name + processes always killed


async def _hub(r: Rig, *args: str) -> Proc:
    p = await _spawn(["-m", "fastfeed.hub", "--name", r.name, *args], _env(r.tmp, r.srv.url))
    r.procs.append(p)
    assert await p.line() == f"ready ipc://{r.name}"
    return p


async def test_batches_read_shared_memory_in_place_and_give_it_back(rig: Rig) -> None:
    await _hub(rig, "--buffer", "64")
    async with fastfeed.hub.connect(f"ipc://{rig.name}", idle_spin_us=250) as st, \
            fastfeed.hub.connect(f"ipc://{rig.name}") as plain:
        await plain.subscribe(Quote, ["SPY"])
        batches = st.listen_batches(Quote)
        objs = st.listen(Quote)   # the ring copy of the same stream
        await st.subscribe(Quote, ["SPY", "AAPL"])
        loans = 32   # ShmSettings' default: samples one consumer may hold at once
        held: list[Any] = []
        while len(held) < loans + 8:   # more than the loan limit, all kept
            held.append(await asyncio.wait_for(batches.__anext__(), TIMEOUT))
        assert held[-1].borrowed   # reads its shared-memory sample
        stats = st.stats
        assert stats["detached_batches"] >= 8 and stats["loan_stalls"] == 0
        assert not held[0].borrowed   # the oldest were given their own copy, not lost
        n = sum(len(b) for b in held)
        expected = [(await asyncio.wait_for(objs.__anext__(), TIMEOUT)).record for _ in range(n)]
        assert [q.record for b in held for q in b] == expected
        # a numpy view of a batch reads shared memory: the batch cannot be detached under it
        arr = held[-1].to_numpy()
        assert held[-1].detach() is False
        assert bytes(arr.tobytes()) == b"".join(expected[-len(held[-1]):])
        del arr
        # batches that are let go give their samples back: no more copies are needed
        held.clear()
        detached = st.stats["detached_batches"]
        for _ in range(loans + 8):
            b = await asyncio.wait_for(batches.__anext__(), TIMEOUT)
            assert b.borrowed
        del b
        assert st.stats["detached_batches"] == detached
        # between frames (600 a second here) the spinning streamer parked and the hub woke it;
        # the default one never spins: the hub wakes it after every message
        assert st.stats["parks"] > 0
        assert plain.stats["parks"] == 0 and plain.stats["events"] > 0
        assert st.stats["gaps"] == 0 and st.stats["lost_messages"] == 0
        # numpy arrays of every loaned sample kept: reading stalls, counted (and logged), and
        # resumes when they are let go
        arrays = []
        nxt = asyncio.ensure_future(batches.__anext__())
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while st.stats["loan_stalls"] == 0:
            done, _ = await asyncio.wait({nxt}, timeout=0.02)
            if done:
                arrays.append(nxt.result().to_numpy())
                nxt = asyncio.ensure_future(batches.__anext__())
            assert asyncio.get_running_loop().time() < deadline   # (waiting batches are
            # copied out first: it takes at least `loans` arrays of shared-memory batches)
        assert all(len(a) for a in arrays)
        arrays.clear()
        assert (await asyncio.wait_for(nxt, TIMEOUT)).borrowed


async def test_backpressure_consumer_loses_nothing_drop_oldest_counts_its_drops(
        rig: Rig) -> None:
    rig.srv.set(rate=20000)
    await _hub(rig, "--overflow", "backpressure", "--buffer", "4")
    small = 64 * 88   # rings and iterators of 64 Quotes
    async with fastfeed.hub.connect(f"ipc://{rig.name}", overflow="backpressure",
                                    ring_bytes=small) as bp, \
            fastfeed.hub.connect(f"ipc://{rig.name}", ring_bytes=small) as dr:
        bp_it = bp.listen_batches(Quote)
        dr_it = dr.listen_batches(Quote)
        await dr.subscribe(Quote, ["SPY", "AAPL"])
        await bp.subscribe(Quote, ["SPY", "AAPL"])
        # neither iterates: back-pressure stops reading shared memory once its iterator is
        # full, the hub (a back-pressure service) then waits for it; drop-oldest keeps
        # reading and drops its iterator's oldest batches
        await rig.until(lambda: bp._held, "the back-pressure consumer to stop reading")
        dr_cursor = next(iter(dr._cursors.values()))[0]
        await rig.until(lambda: dr_cursor.pending_gaps > 0, "the drop-oldest consumer to drop")
        conn = next(iter(rig.srv.live))
        got: list[tuple[str, str]] = []
        async for batch in bp_it:
            got += [(q.eventSymbol, q.record[16:].hex()) for q in batch]
            if len(got) >= 1000:
                break
        expected = _sent_quotes(rig.srv, conn)
        start = expected.index(got[0])
        assert got == expected[start:start + len(got)]   # nothing lost, nothing reordered
        stats = bp.stats
        assert stats["gaps"] == 0 and stats["lost_messages"] == 0
        assert stats["transport_gaps"] == 0
        # an iterator that is left while full releases the hold
        await rig.until(lambda: bp._held, "the back-pressure consumer to stop reading again")
        await bp_it.aclose()   # type: ignore[attr-defined]
        before = bp.stats["events"]
        await rig.until(lambda: bp.stats["events"] > before + 100, "reading to resume")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = await asyncio.wait_for(dr_it.__anext__(), TIMEOUT)
        assert first.gaps > 0 and dr.stats["gaps"] >= first.gaps   # never silent
        assert any("lost" in str(w.message) for w in caught)
