"""RecordRing: wrap-around, fan-out, both overflow policies with exact gap counts."""

from __future__ import annotations

import ctypes
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfeed._native.ring import Consumer, EventBatch, RecordRing
from fastfeed._native.symbols import SymbolTable
from fastfeed.dxfeed import Quote


def make_ring(capacity: int = 8, policy: str = "drop_oldest", max_capacity: int = 0) -> RecordRing:
    return RecordRing("Quote", "Quote", 1, SymbolTable(), capacity, policy, max_capacity)


def quote(seq: int) -> bytes:
    return Quote(event_symbol="SPY", sequence=seq, bid_price=float(seq)).record


def seqs(batch: EventBatch) -> list[int]:
    return [e.sequence for e in batch]


def test_capacity_is_rounded_to_a_power_of_two() -> None:
    assert make_ring(5).capacity == 8
    assert make_ring(1000).capacity == 1024


def test_wrap_around_keeps_order_across_the_end_of_the_buffer() -> None:
    ring = make_ring(8)
    cons = ring.consumer()
    expected: list[int] = []
    n = 0
    for burst in (3, 5, 7, 2, 8, 1):
        ring.push(b"".join(quote(n + i) for i in range(burst)))
        expected += list(range(n, n + burst))
        n += burst
        got = cons.drain()
        assert seqs(got) == expected[-burst:]
        assert got.gaps == 0
    assert ring.published == n


def test_every_consumer_sees_every_event() -> None:
    ring = make_ring(64)
    consumers = [ring.consumer() for _ in range(4)]
    ring.push(b"".join(quote(i) for i in range(10)))
    batches = [c.drain() for c in consumers]
    assert all(seqs(b) == list(range(10)) for b in batches)
    # a consumer created later only sees what comes after it
    late = ring.consumer()
    ring.push(quote(10))
    assert seqs(late.drain()) == [10]
    assert all(seqs(c.drain()) == [10] for c in consumers)


def test_drop_oldest_counts_exact_gaps_per_consumer() -> None:
    ring = make_ring(8)
    fast, slow = ring.consumer(), ring.consumer()
    ring.push(b"".join(quote(i) for i in range(5)))
    assert seqs(fast.drain()) == [0, 1, 2, 3, 4]
    ring.push(b"".join(quote(i) for i in range(5, 20)))   # 20 published, ring holds 8
    b = slow.drain()
    assert seqs(b) == list(range(12, 20))
    assert b.gaps == 12 and slow.gaps == 12
    b = fast.drain()
    assert seqs(b) == list(range(12, 20))
    assert b.gaps == 7 and fast.gaps == 7
    # gaps are reported once per batch, totals accumulate
    ring.push(quote(20))
    assert slow.drain().gaps == 0 and slow.gaps == 12


def test_backpressure_never_overwrites_unread_records_and_signals_pressure() -> None:
    ring = make_ring(8, "backpressure", max_capacity=64)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(4)))
    assert not ring.pressure
    ring.push(quote(4))
    assert ring.pressure        # over half the nominal ring unread -> pause reading
    ring.push(b"".join(quote(i) for i in range(5, 30)))   # grows instead of losing events
    assert ring.grown >= 2 and ring.capacity >= 32
    b = cons.drain()
    assert seqs(b) == list(range(30)) and b.gaps == 0 and cons.gaps == 0
    assert not ring.pressure


def test_backpressure_at_max_capacity_refuses_instead_of_overwriting() -> None:
    ring = make_ring(8, "backpressure", max_capacity=8)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(8)))
    with pytest.raises(BufferError):
        ring.push(quote(8))
    assert ring.overflowed == 1
    assert seqs(cons.drain()) == list(range(8))


def test_closed_consumer_no_longer_holds_back_a_backpressure_ring() -> None:
    ring = make_ring(8, "backpressure", max_capacity=8)
    a, b = ring.consumer(), ring.consumer()
    ring.push(b"".join(quote(i) for i in range(8)))
    a.drain()
    b.close()
    ring.push(quote(8))           # only `a` matters now, and it is caught up
    assert seqs(a.drain()) == [8]
    assert b.closed and len(b.drain()) == 0


def test_latest_keeps_the_last_record_per_symbol() -> None:
    st_ = SymbolTable()
    ring = RecordRing("Quote", "Quote", 1, st_, 8)
    ring.enable_latest()
    spy, qqq = st_.intern_str("SPY"), st_.intern_str("QQQ")

    def rec(sid: int, seq: int) -> bytes:
        raw = bytearray(Quote(sequence=seq).record)
        struct.pack_into("<I", raw, 4, sid)
        return bytes(raw)

    ring.push(rec(spy, 1) + rec(qqq, 2) + rec(spy, 3))
    assert ring.latest(spy).sequence == 3
    assert ring.latest(spy).event_symbol == "SPY"
    assert ring.latest(qqq).sequence == 2
    assert ring.latest(st_.intern_str("IWM")) is None


def test_batch_owns_its_memory_after_the_ring_moves_on() -> None:
    ring = make_ring(8)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(8)))
    batch = cons.drain()
    view = memoryview(batch)
    ring.push(b"".join(quote(100 + i) for i in range(8)))   # overwrites every slot
    assert seqs(batch) == list(range(8))
    assert struct.unpack_from("<i", view, 16 + 8 * 7)[0] == 0   # first record, sequence field


def test_batch_indexing_slicing_and_errors() -> None:
    ring = make_ring(8)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(3)))
    b = cons.drain()
    assert b[-1].sequence == 2 and [e.sequence for e in b[0:2]] == [0, 1]
    with pytest.raises(IndexError):
        b[3]
    with pytest.raises((BufferError, TypeError)):
        ctypes.c_char.from_buffer(b)  # asks for a writable buffer
    empty = cons.drain()
    assert len(empty) == 0 and not empty and memoryview(empty).nbytes == 0


def test_push_rejects_partial_records() -> None:
    ring = make_ring(8)
    with pytest.raises(ValueError):
        ring.push(bytes(10))


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.sampled_from([4, 8, 16]),
    ops=st.lists(st.tuples(st.sampled_from(["push", "drain_a", "drain_b"]), st.integers(1, 40)), max_size=40),
)
def test_drop_oldest_model(capacity: int, ops: list[tuple[str, int]]) -> None:
    """Against a pure-Python model: delivered + gaps == published, order preserved, newest kept."""
    ring = make_ring(capacity)
    cons = {"drain_a": ring.consumer(), "drain_b": ring.consumer()}
    got: dict[str, list[int]] = {"drain_a": [], "drain_b": []}
    gaps = {"drain_a": 0, "drain_b": 0}
    n = 0
    for op, k in ops:
        if op == "push":
            ring.push(b"".join(quote(n + i) for i in range(k)))
            n += k
        else:
            b = cons[op].drain(k)
            got[op] += seqs(b)
            gaps[op] += b.gaps
    for name, c in cons.items():
        b = c.drain()
        got[name] += seqs(b)
        gaps[name] += b.gaps
        assert got[name] == sorted(got[name])
        assert len(got[name]) + gaps[name] == n
        if n:
            assert got[name][-1] == n - 1
        assert len(set(got[name])) == len(got[name])


def test_weak_consumer_does_not_hold_back_backpressure_and_counts_its_losses() -> None:
    ring = make_ring(8, "backpressure", max_capacity=8)
    strong, weak = ring.consumer(), ring.consumer(weak=True)
    assert weak.weak and not strong.weak
    for start in (0, 8, 16):
        ring.push(b"".join(quote(i) for i in range(start, start + 8)))
        assert seqs(strong.drain()) == list(range(start, start + 8))
    b = weak.drain()
    assert seqs(b) == list(range(16, 24)) and b.gaps == 16
    weak.weak = False            # promoted: from now on it holds the ring back too
    ring.push(b"".join(quote(i) for i in range(24, 32)))
    strong.drain()
    with pytest.raises(BufferError):
        ring.push(quote(32))
    assert seqs(weak.drain()) == list(range(24, 32))


def test_backpressure_threshold_stays_at_the_nominal_capacity_after_growth() -> None:
    ring = make_ring(8, "backpressure", max_capacity=1024)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(100)))     # grows to 128
    assert ring.capacity == 128
    cons.drain(90)
    assert ring.pressure            # 10 unread > half of the nominal 8, whatever the growth
    cons.drain(6)
    assert not ring.pressure


def test_backpressure_consumer_added_from_oldest_holds_the_ring_back_at_once() -> None:
    """The producer caches how far it may write; a consumer added later that starts at the
    oldest record must still never have its unread history overwritten."""
    ring = make_ring(8, "backpressure", max_capacity=8)
    a = ring.consumer()
    idle = ring.consumer(weak=True)       # reads nothing: the ring keeps its history (no rebase)
    ring.push(b"".join(quote(i) for i in range(8)))
    a.drain()
    ring.push(quote(8))                   # the writable limit is now computed from `a` alone
    assert ring.rebased == 0 and idle.available == 8
    late = ring.consumer(from_oldest=True)
    with pytest.raises(BufferError):      # the next slot holds seq 1, which `late` has not read
        ring.push(quote(9))
    b = late.drain()
    assert seqs(b) == list(range(1, 9)) and b.gaps == 0


# --- Consumer.call_with_batch: the batch handlers' zero-copy drain ---------------------------


def overwrite(ring: RecordRing, start: int) -> None:
    """Publish a whole ring's worth of new records: every slot is rewritten."""
    ring.push(b"".join(quote(i) for i in range(start, start + ring.capacity)))


def test_call_with_batch_reads_in_place_when_the_handler_keeps_nothing() -> None:
    ring = make_ring(16)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(5)))
    seen: list[tuple[bool, list[int]]] = []
    n, gaps, result, exc = cons.call_with_batch(lambda b: seen.append((b.borrowed, seqs(b))))
    assert (n, gaps, result, exc) == (5, 0, None, None)
    assert seen == [(True, [0, 1, 2, 3, 4])]
    assert cons.available == 0
    assert cons.call_with_batch(lambda b: seen.append((b.borrowed, []))) == (0, 0, None, None)
    assert len(seen) == 1   # nothing to hand over: the handler is not called


def test_call_with_batch_copies_a_batch_the_handler_keeps() -> None:
    ring = make_ring(16)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(5)))
    kept: list[EventBatch] = []
    cons.call_with_batch(kept.append)
    overwrite(ring, 100)
    assert not kept[0].borrowed and seqs(kept[0]) == [0, 1, 2, 3, 4]


def test_call_with_batch_copies_before_a_buffer_export() -> None:
    ring = make_ring(16)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(3)))
    views: list[memoryview] = []
    cons.call_with_batch(lambda b: views.append(memoryview(b)))
    want = b"".join(quote(i) for i in range(3))
    overwrite(ring, 100)
    assert views[0].tobytes() == want


def test_call_with_batch_returns_the_handler_exception_with_its_batch_intact() -> None:
    ring = make_ring(16)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(4)))

    def handler(b: EventBatch) -> None:
        raise ValueError(b)

    n, _gaps, _result, exc = cons.call_with_batch(handler)
    assert n == 4 and isinstance(exc, ValueError)
    overwrite(ring, 100)
    assert seqs(exc.args[0]) == [0, 1, 2, 3]


def test_call_with_batch_async_handler_reads_its_batch_after_the_ring_moved_on() -> None:
    import asyncio

    ring = make_ring(16)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(6)))
    got: list[list[int]] = []

    async def handler(b: EventBatch) -> None:
        await asyncio.sleep(0)
        got.append(seqs(b))

    _n, _gaps, coro, _exc = cons.call_with_batch(handler)
    overwrite(ring, 100)          # the producer ran before the coroutine did
    asyncio.run(coro)
    assert got == [[0, 1, 2, 3, 4, 5]]


def test_call_with_batch_across_the_end_of_the_buffer_and_with_gaps() -> None:
    ring = make_ring(8)
    cons = ring.consumer()
    _idle = ring.consumer()     # reads nothing: the ring never restarts at slot 0 (no rebase)
    ring.push(b"".join(quote(i) for i in range(6)))
    cons.drain()
    ring.push(b"".join(quote(i) for i in range(6, 12)))   # slots 6, 7, 0, 1, 2, 3
    seen: list[tuple[bool, list[int]]] = []

    def handler(b: EventBatch) -> None:
        seen.append((b.borrowed, seqs(b)))

    # up to the end of the buffer, then the rest: both in place
    assert cons.call_with_batch(handler) == (2, 0, None, None)
    assert cons.available == 4
    assert cons.call_with_batch(handler) == (4, 0, None, None)
    assert seen == [(True, [6, 7]), (True, [8, 9, 10, 11])]
    ring.push(b"".join(quote(i) for i in range(12, 30)))  # 18 > capacity: 10 lost
    n, gaps, _r, _e = cons.call_with_batch(handler)       # 22, 23 sit in the last two slots
    assert (n, gaps, seen[-1][1]) == (2, 10, [22, 23])
    n, gaps, _r, _e = cons.call_with_batch(handler)
    assert (n, gaps, seen[-1][1]) == (6, 0, list(range(24, 30)))


# --- rebase: a ring whose consumers have read everything restarts at its first slot ---------


def test_drained_ring_restarts_at_its_first_slot() -> None:
    """Everything read: the next message goes to slot 0 (so a whole ring's worth comes back
    as one in-place batch, not split at the end of the buffer), with no gap and no loss."""
    ring = make_ring(8)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(5)))
    assert seqs(cons.drain()) == list(range(5))
    ring.push(b"".join(quote(i) for i in range(5, 13)))   # 8 records: slots 0..7
    assert ring.rebased == 1 and ring.published == 13
    seen: list[list[int]] = []
    assert cons.call_with_batch(lambda b: seen.append(seqs(b))) == (8, 0, None, None)
    assert seen == [list(range(5, 13))]
    # a consumer added now from the oldest record starts at the rebase point
    assert seqs(ring.consumer(from_oldest=True).drain()) == list(range(5, 13))


def test_no_rebase_while_a_consumer_has_unread_records_or_nobody_reads() -> None:
    ring = make_ring(8)
    late = ring.consumer(from_oldest=True)
    ring.push(b"".join(quote(i) for i in range(3)))
    fast, slow = ring.consumer(), ring.consumer()
    assert seqs(late.drain()) == [0, 1, 2]
    ring.push(quote(3))                                   # all three are caught up
    assert ring.rebased == 1
    assert seqs(fast.drain()) == [3]
    assert seqs(late.drain()) == [3]
    ring.push(b"".join(quote(i) for i in range(4, 7)))   # `slow` has unread records
    assert ring.rebased == 1
    assert seqs(slow.drain()) == list(range(3, 7))
    nobody = make_ring(8)
    nobody.push(b"".join(quote(i) for i in range(3)))
    nobody.push(quote(3))                                 # no consumer: history kept
    assert nobody.rebased == 0
    assert seqs(nobody.consumer(from_oldest=True).drain()) == [0, 1, 2, 3]


def test_no_rebase_under_a_borrowed_batch() -> None:
    """A handler that makes the producer run while it holds a batch borrowed from the ring's
    slots: the new records must not land on them."""
    ring = make_ring(8)
    cons = ring.consumer()
    ring.push(b"".join(quote(i) for i in range(3)))       # slots 0..2
    inside: list[list[int]] = []

    def handler(b: EventBatch) -> None:
        ring.push(quote(100))                             # every consumer is caught up
        inside.append(seqs(b))

    assert cons.call_with_batch(handler)[0] == 3
    assert inside == [[0, 1, 2]] and ring.rebased == 0
    assert seqs(cons.drain()) == [100]


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.sampled_from([4, 8, 16]),
    ops=st.lists(st.tuples(st.sampled_from(["push", "drain", "batch", "add", "add_oldest",
                                            "close"]),
                           st.integers(0, 3), st.integers(1, 20)), max_size=50),
)
def test_rebase_model(capacity: int, ops: list[tuple[str, int, int]]) -> None:
    """Drop-oldest ring with consumers coming and going, against a model that restarts at the
    first slot exactly when every active consumer has read everything: every consumer gets
    exactly the records and gap counts of the model, in place or copied."""
    ring = make_ring(capacity)
    n = floor = 0
    cons: list[tuple[Consumer, list[int]]] = []           # consumer, [model cursor, gaps]
    rebases = 0
    for op, i, k in ops:
        live = [c for c in cons if not c[0].closed]
        if op == "push":
            if live and all(m[0] == n for _, m in live) and n != floor:
                floor = n
                rebases += 1
            ring.push(b"".join(quote(n + j) for j in range(k)))
            n += k
            floor = max(floor, n - capacity)
        elif op in ("add", "add_oldest"):
            c = ring.consumer(from_oldest=op == "add_oldest")
            cons.append((c, [max(n - capacity, floor, 0) if op == "add_oldest" else n, 0]))
        elif live:
            c, m = live[i % len(live)]
            if op == "close":
                c.close()
                continue
            if m[0] < floor:
                m[1] += floor - m[0]
                m[0] = floor
            if op == "drain":
                b = c.drain(k)
                want = list(range(m[0], min(n, m[0] + k)))
                assert (seqs(b), b.gaps) == (want, m[1])
            else:
                nb, gaps, got, _e = c.call_with_batch(seqs)
                want = list(range(m[0], m[0] + nb))
                assert (got or []) == want and gaps == m[1]
                assert (n > m[0]) == bool(want)
            m[0] += len(want)
            m[1] = 0
    assert ring.rebased == rebases and ring.published == n


def test_select_keeps_only_the_symbols_in_the_bitmap() -> None:
    ring = make_ring(16)
    recs = bytearray()
    for sid, seq in ((1, 10), (2, 11), (9, 12), (17, 13), (2, 14)):
        r = bytearray(quote(seq))
        struct.pack_into("<I", r, 4, sid)
        recs += r
    allowed = bytearray(2)
    allowed[0] |= 1 << 2          # id 2
    allowed[1] |= 1 << (9 - 8)    # id 9; id 17 is beyond the bitmap: left out
    kept = ring.select(recs, allowed)
    assert kept is not None
    assert seqs(ring.batch_over(kept)) == [11, 12, 14]
    assert ring.select(recs, b"") == b""
    everyone = bytes([0xFF] * 3)
    assert ring.select(recs, everyone) is None   # all kept: no copy made
    with pytest.raises(ValueError):
        ring.select(recs[:-1], allowed)


def test_batch_over_reads_in_place_keeps_its_owner_and_detaches() -> None:
    import numpy as np
    ring = make_ring(16)
    mem = bytearray(b"".join(quote(i) for i in range(5)))

    class Owner:
        released = False

    owner = Owner()
    batch = ring.batch_over(memoryview(mem), owner, 3)
    assert batch.borrowed and len(batch) == 5 and batch.gaps == 3
    arr = batch.to_numpy()   # a view of the borrowed memory, no copy
    assert np.shares_memory(arr, np.frombuffer(mem, dtype=np.uint8))
    assert batch.detach() is False   # the array still reads it
    assert batch.borrowed
    del arr
    import sys
    held = sys.getrefcount(owner)
    assert batch.detach() is True    # its own copy now; the owner is let go
    assert not batch.borrowed and sys.getrefcount(owner) == held - 1
    mem[:] = bytes(len(mem))
    assert seqs(batch) == [0, 1, 2, 3, 4]
    assert batch.detach() is True
    # event objects never read borrowed memory: iterating gives the batch its own copy first
    other = ring.batch_over(memoryview(bytearray(b"".join(quote(i) for i in range(3)))), owner)
    assert other.borrowed and seqs(other) == [0, 1, 2] and not other.borrowed
    assert len(ring.batch_over(b"")) == 0
    with pytest.raises(ValueError):
        ring.batch_over(mem[:-1])


def test_batch_over_reads_spilled_values() -> None:
    """A hub message carries the spill its polygon records refer to: the batch reads it."""
    import json

    import fastfeed

    long_id = "7" * 20 + "-trade-id-beyond-the-32-byte-slot-\u00e9"
    dec = fastfeed.PolygonDecoder()
    dec.feed(json.dumps([{"ev": "T", "sym": "AAPL", "i": long_id, "p": 1.5},
                         {"ev": "T", "sym": "AAPL", "i": "short", "p": 2}]).encode())
    batch = dec.drain("T")
    assert batch._spill is not None
    ring = dec.rings["T"]
    over = ring.batch_over(memoryview(batch.tobytes()), None, 0, batch._spill, batch._spill_base)
    assert [e.id for e in over] == [long_id, "short"]
    assert over.detach() and [e.id for e in over] == [long_id, "short"]
