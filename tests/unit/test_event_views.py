"""Event objects that read their record in the batch's memory, recycled event objects, and the
Cython consumers behind ``listen()`` (EventStream) and ``get_event()`` (EventCursor)."""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
import sys
from typing import Any

import pytest

from fastfeed._native.ring import EventBatch, EventCursor, EventStream, RecordRing
from fastfeed._native.symbols import SymbolTable
from fastfeed.dxfeed import Quote

TIMEOUT = 5.0


def make_ring(capacity: int = 8, policy: str = "drop_oldest") -> RecordRing:
    return RecordRing("Quote", "Quote", 1, SymbolTable(), capacity, policy)


def quote(seq: int) -> bytes:
    return Quote(sequence=seq, bid_price=seq + 0.5).record


def push(ring: RecordRing, first: int, n: int) -> None:
    ring.push(b"".join(quote(first + i) for i in range(n)))


class Owner:
    """What EventStream / EventCursor need of a streamer, observable by the tests."""

    def __init__(self) -> None:
        self.batches: list[EventBatch[Any]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.closed = False
        self.error: BaseException | None = None
        self.usable_error: BaseException | None = None
        self.parked = asyncio.Event()

    def _check_usable(self) -> None:
        if self.usable_error is not None:
            raise self.usable_error

    def _note_batch(self, batch: EventBatch[Any]) -> None:
        self.batches.append(batch)

    def _check_end(self, wire_type: str) -> bool:
        if self.error is not None:
            raise self.error
        return self.closed

    async def _wait(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        self.parked.set()
        await fut

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)


async def until_waiting(owner: Owner) -> None:
    """Until the iterator parked on the owner (bounded)."""
    await asyncio.wait_for(owner.parked.wait(), TIMEOUT)
    owner.parked.clear()


# ------------------------------------------------------------------ events read the batch


def test_event_stays_valid_after_the_ring_overwrote_its_slot() -> None:
    ring = make_ring(8)
    cons = ring.consumer()
    push(ring, 0, 8)
    kept = list(cons.drain())
    push(ring, 100, 8)                       # every slot of the ring written again
    assert cons.drain().tobytes() != b""
    assert [e.sequence for e in kept] == list(range(8))
    assert [e.bid_price for e in kept] == [i + 0.5 for i in range(8)]


def test_event_kept_from_a_borrowed_batch_is_copied_out_before_the_ring_moves_on() -> None:
    ring = make_ring(8)
    cons = ring.consumer()
    push(ring, 0, 4)
    kept: list[Any] = []

    def handler(batch: EventBatch[Any]) -> None:
        assert batch.borrowed                # reads the ring in place ...
        kept.append(batch[1])                # ... until an event is made from it
        assert not batch.borrowed
        kept.extend(batch)

    cons.call_with_batch(handler)
    push(ring, 50, 8)                        # overwrites the slots the batch was lent
    assert [e.sequence for e in kept] == [1, 0, 1, 2, 3]


def test_an_event_keeps_its_batch_alive_and_reads_the_same_record() -> None:
    ring = make_ring(8)
    cons = ring.consumer()
    push(ring, 7, 3)
    ev = cons.drain()[2]
    gc.collect()                             # the batch is referenced by the event only
    assert ev.sequence == 9 and ev.record == quote(9)
    assert ev == Quote(sequence=9, bid_price=9.5)
    assert pickle.loads(pickle.dumps(ev)) == ev
    assert copy.copy(ev) is ev and copy.deepcopy(ev) is ev
    assert repr(ev) == repr(Quote(sequence=9, bid_price=9.5))


# ------------------------------------------------------------------ recycled event objects


def test_iteration_recycles_event_objects_nobody_keeps() -> None:
    ring = make_ring(1024)
    cons = ring.consumer()
    push(ring, 0, 500)
    ids = set()
    total = 0
    for ev in cons.drain():
        ids.add(id(ev))
        total += ev.sequence
    assert total == sum(range(500))
    assert len(ids) <= 5                     # a handful of objects served 500 events


def test_recycling_never_touches_an_event_still_referred_to() -> None:
    ring = make_ring(1024)
    cons = ring.consumer()
    push(ring, 0, 300)
    kept = [ev for i, ev in enumerate(cons.drain()) if i % 3 == 0]
    assert [e.sequence for e in kept] == list(range(0, 300, 3))
    assert len({id(e) for e in kept}) == len(kept)
    everything = list(cons.drain()) + list(ring.consumer(from_oldest=True).drain())
    assert [e.sequence for e in everything] == list(range(300))
    assert [e.sequence for e in kept] == list(range(0, 300, 3))


# ------------------------------------------------------------------ EventStream (listen())


async def test_stream_gives_every_event_in_order_without_suspending_while_buffered() -> None:
    ring = make_ring(64)
    owner = Owner()
    it = EventStream(owner, ring.consumer())
    push(ring, 0, 10)
    first = await asyncio.wait_for(it.__anext__(), TIMEOUT)
    assert first.sequence == 0 and len(owner.batches) == 1
    nxt = it.__anext__()
    assert not asyncio.iscoroutine(nxt) or not hasattr(nxt, "cr_frame")   # no coroutine frame
    got = [await nxt] + [await it.__anext__() for _ in range(8)]
    assert [e.sequence for e in got] == list(range(1, 10))
    assert len(owner.batches) == 1           # one drain served the 10 events


async def test_stream_waits_for_data_and_ends_when_closed() -> None:
    ring = make_ring(64)
    owner = Owner()
    seen: list[int] = []

    async def consume() -> None:
        async for ev in EventStream(owner, ring.consumer()):
            seen.append(ev.sequence)

    task = asyncio.ensure_future(consume())
    await until_waiting(owner)
    push(ring, 0, 3)
    owner.wake()
    await until_waiting(owner)
    assert seen == [0, 1, 2]
    owner.closed = True
    owner.wake()
    await asyncio.wait_for(task, TIMEOUT)    # StopAsyncIteration ended the loop


async def test_stream_error_is_raised_once_then_iteration_has_ended() -> None:
    ring = make_ring(64)
    owner = Owner()
    cons = ring.consumer()
    it = EventStream(owner, cons)
    push(ring, 0, 2)
    assert (await it.__anext__()).sequence == 0
    owner.error = RuntimeError("feed failed")
    assert (await it.__anext__()).sequence == 1   # what was received comes first
    with pytest.raises(RuntimeError, match="feed failed"):
        await it.__anext__()
    assert it.closed and cons.closed
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()


async def test_stream_misuse_check_runs_on_the_first_iteration() -> None:
    ring = make_ring(64)
    owner = Owner()
    owner.usable_error = RuntimeError("another event loop")
    it = EventStream(owner, ring.consumer())
    push(ring, 0, 1)
    with pytest.raises(RuntimeError, match="another event loop"):
        await it.__anext__()
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()


async def test_stream_cancelled_while_waiting_detaches_from_the_ring() -> None:
    ring = make_ring(8, "backpressure")
    owner = Owner()
    cons = ring.consumer()
    it = EventStream(owner, cons)
    task = asyncio.ensure_future(it.__anext__())
    await until_waiting(owner)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert it.closed and cons.closed         # a back-pressure ring no longer waits for it
    push(ring, 0, 8)
    push(ring, 8, 8)


async def test_stream_aclose_ends_iteration_and_keeps_events_handed_out() -> None:
    ring = make_ring(64)
    owner = Owner()
    cons = ring.consumer()
    it = EventStream(owner, cons)
    push(ring, 0, 5)
    ev = await it.__anext__()
    await it.aclose()
    assert cons.closed
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()
    push(ring, 5, 64)
    assert ev.sequence == 0


async def test_stream_reports_drop_oldest_gaps_with_the_batch() -> None:
    ring = make_ring(8)
    owner = Owner()
    it = EventStream(owner, ring.consumer())
    push(ring, 0, 20)                        # 12 lost before the consumer read anything
    got = [(await it.__anext__()).sequence for _ in range(8)]
    assert got == list(range(12, 20))
    assert [b.gaps for b in owner.batches] == [12]


async def test_events_of_a_stream_are_not_aliased_by_recycling() -> None:
    ring = make_ring(256)
    owner = Owner()
    it = EventStream(owner, ring.consumer())
    push(ring, 0, 100)
    kept = []
    async for ev in it:
        if ev.sequence % 7 == 0:
            kept.append(ev)
        if ev.sequence == 99:
            break
    assert [e.sequence for e in kept] == list(range(0, 100, 7))
    assert [e.bid_price for e in kept] == [i + 0.5 for i in range(0, 100, 7)]


async def test_awaiting_buffered_events_reuses_one_stopiteration() -> None:
    """``await`` takes a completed awaitable's value from a StopIteration on Python 3.12+ (and
    on 3.11 while a tracer is set; else through am_send, without one): the awaitable reuses
    one exception object instead of making one (and its args tuple) per event. Seen through
    the tracer's ``exception`` events; each event also keeps a new object of the same size, so
    that a freed exception's memory (and id) is never handed to the next one."""
    ring = make_ring(256)
    it = EventStream(Owner(), ring.consumer())
    cur = EventCursor(Owner(), ring.consumer())
    push(ring, 0, 100)
    await it.__anext__()
    assert cur.next() is not None
    seen: list[int] = []
    pad: list[BaseException] = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if event == "exception" and arg[0] is StopIteration:
            seen.append(id(arg[1]))          # no reference kept: it stays reusable
        return tracer

    old = sys.gettrace()
    here = sys._getframe()
    sys.settrace(tracer)
    here.f_trace = tracer
    try:
        got = []
        for _ in range(40):
            got.append((await it.__anext__()).sequence)
            pad.append(StopIteration())
        for _ in range(40):
            got.append((await cur.ready()).sequence)   # type: ignore[misc]
            pad.append(StopIteration())
    finally:
        sys.settrace(old)
        here.f_trace = None
    assert got == list(range(1, 41)) * 2
    assert len(seen) == 80
    assert len(set(seen)) == 2               # one per awaitable: EventStream's, EventCursor's


async def test_a_stopiteration_seen_by_python_code_is_never_reused() -> None:
    ring = make_ring(64)
    it = EventStream(Owner(), ring.consumer())
    push(ring, 0, 6)
    await it.__anext__()
    r = it.__anext__()
    with pytest.raises(StopIteration) as info:
        next(r)                              # the general iterator path, from Python
    kept = info.value
    assert kept.value.sequence == 1 and kept.args == (kept.value,)
    got = [(await it.__anext__()).sequence for _ in range(4)]
    assert got == [2, 3, 4, 5]
    assert kept.value.sequence == 1 and kept.args[0] is kept.value   # untouched


# ------------------------------------------------------------------ EventCursor (get_event())


async def test_cursor_ready_is_a_completed_awaitable_that_create_task_accepts() -> None:
    ring = make_ring(64)
    owner = Owner()
    cur = EventCursor(owner, ring.consumer(weak=True))
    assert cur.ready() is None and cur.next() is None
    push(ring, 0, 3)
    assert cur.next().sequence == 0          # drains the ring (makes the cursor strong)
    assert not cur.consumer.weak
    r = cur.ready()
    assert r is not None
    assert (await r).sequence == 1
    task = asyncio.create_task(cur.ready())  # type: ignore[arg-type]
    assert (await asyncio.wait_for(task, TIMEOUT)).sequence == 2
    assert cur.ready() is None               # that batch is used up; the ring is not read
    push(ring, 3, 1)
    assert cur.ready() is None and cur.next().sequence == 3


async def test_cursor_ready_not_awaited_yet_is_not_overwritten() -> None:
    ring = make_ring(64)
    cur = EventCursor(Owner(), ring.consumer())
    push(ring, 0, 4)
    assert cur.next().sequence == 0
    a, b, c = cur.ready(), cur.ready(), cur.ready()
    assert [(await x).sequence for x in (c, a, b)] == [3, 1, 2]


async def test_cursor_event_of_an_awaitable_never_awaited_is_not_lost() -> None:
    """get_event() takes its event when called (a completed awaitable): one dropped, closed or
    cancelled before it was awaited gives its event back to the front of the cursor."""
    ring = make_ring(64)
    cur = EventCursor(Owner(), ring.consumer())
    push(ring, 0, 6)
    assert cur.next().sequence == 0
    cur.ready()                                     # dropped at once: the cursor keeps it
    assert (await cur.ready()).sequence == 1        # ... and hands it out next
    r = cur.ready()
    del r                                           # garbage
    gc.collect()
    assert cur.next().sequence == 2                 # get_event_nowait() sees it too
    r = cur.ready()
    r.close()                                       # what a never-started coroutine gets
    assert (await cur.ready()).sequence == 3
    task = asyncio.ensure_future(cur.ready())       # type: ignore[arg-type]
    task.cancel()                                   # cancelled before it ran: thrown into
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(await cur.ready()).sequence for _ in range(2)] == [4, 5]
    assert cur.ready() is None


# ------------------------------------------------------------------ Massive's model objects


def test_massive_model_objects_read_spilled_strings_and_unknown_keys() -> None:
    from fastfeed import PolygonDecoder
    from fastfeed._native.pgmodels import build_models
    from fastfeed.polygon_events import EquityTrade

    dec = PolygonDecoder(cluster="stocks")
    long_id = "7" * 80                       # longer than the record's slot: spilled
    dec.feed(b'[{"ev":"T","sym":"AAPL","i":"' + long_id.encode() +
             b'","x":4,"p":1.5,"s":3,"t":1,"q":2,"z":3,"zz":9}]')
    batch = dec.drain("T")
    (model,) = build_models([batch], [EquityTrade])
    assert model.id == long_id and model.extra == {"zz": 9}
    assert model.record == batch[0].record and model == batch[0]


# ------------------------------------------------------------------ Streamer.get_event


async def test_streamer_get_event_is_its_own_function_and_stops_at_close() -> None:
    """A streamer's ``get_event`` is a function of its own (no bound method, no attribute
    lookup per call) that behaves as the class's: buffered events at once, then, once the
    streamer is closing, ``StreamerClosedError`` even with events left."""
    from fastfeed.bench import peers
    from fastfeed.bench.payloads import DX_CHANNELS, dxlink_feed_config, dxlink_frames
    from fastfeed.errors import StreamerClosedError
    from fastfeed.tastytrade import DXLinkStreamer

    st = DXLinkStreamer(peers.FakeTastytradeSession("ws://127.0.0.1:9"))
    other = DXLinkStreamer(peers.FakeTastytradeSession("ws://127.0.0.1:9"))
    assert st.get_event is st.get_event and st.get_event is not other.get_event
    st._core.feed(dxlink_feed_config("Quote", DX_CHANNELS["Quote"]))
    assert st.get_event_nowait(Quote) is None          # the shared cursor exists from here
    st._core.feed(dxlink_frames("quote100")[0][1])
    first = await st.get_event(Quote)
    second = await DXLinkStreamer.get_event(st, Quote)  # the class's, looked up per call
    assert (first.event_symbol, second.event_symbol) != (None, None)
    assert await st.get_event("Quote") is not None      # another key, the same cursor
    await st.close()
    with pytest.raises(StreamerClosedError):
        await st.get_event(Quote)


@pytest.mark.parametrize("flag", ["_closing", "_closed"])
async def test_get_event_sees_the_closed_state_however_it_is_set(flag: str) -> None:
    """get_event() reads the closed state in C (``LifeFlag``): set directly as a plain attribute
    (as the hub's and replay's streamers do), by either flag, it stops buffered events at once,
    for this streamer only; everything else reads and writes the flags as plain bools."""
    from fastfeed._native.ring import LifeFlag
    from fastfeed.bench import peers
    from fastfeed.bench.payloads import DX_CHANNELS, dxlink_feed_config, dxlink_frames
    from fastfeed.errors import StreamerClosedError
    from fastfeed.tastytrade import DXLinkStreamer

    st, other = (DXLinkStreamer(peers.FakeTastytradeSession("ws://127.0.0.1:9")) for _ in "ab")
    assert isinstance(getattr(DXLinkStreamer, flag), LifeFlag)
    for s in (st, other):
        s._core.feed(dxlink_feed_config("Quote", DX_CHANNELS["Quote"]))
        assert s.get_event_nowait(Quote) is None
        s._core.feed(dxlink_frames("quote100")[0][1])
        assert (await s.get_event(Quote)).event_symbol is not None     # buffered: 99 left
    assert (st._closing, st._closed) == (False, False)
    setattr(st, flag, True)
    assert getattr(st, flag) is True and getattr(other, flag) is False
    with pytest.raises(StreamerClosedError):
        await st.get_event(Quote)
    assert (await other.get_event(Quote)).event_symbol is not None
    setattr(st, flag, 0)                                 # a falsy value reads back False
    assert getattr(st, flag) is False
    await st.close()
    await other.close()
    assert (st._closing, st._closed) == (True, True)


def test_life_flags_behave_as_plain_attributes() -> None:
    from fastfeed._native.ring import LifeFlag

    class Owner:
        _closing = LifeFlag("closing")
        _closed = LifeFlag("closed")

    o = Owner()
    with pytest.raises(AttributeError):
        _ = o._closed                                    # never set: as a plain attribute
    o._closing = True
    assert o._closing is True
    with pytest.raises(AttributeError):
        _ = o._closed
    o._closed = False
    assert (o._closing, o._closed) == (True, False)
    assert isinstance(Owner._closing, LifeFlag)
    with pytest.raises((TypeError, RuntimeError)):     # 3.11 wraps __set_name__'s error
        type("Bad", (), {"_closed_x": LifeFlag("closed")})
    with pytest.raises(ValueError):
        LifeFlag("open")


def test_a_streamer_get_event_makes_no_reference_cycle() -> None:
    """A streamer's own get_event refers to it weakly: dropped, it is freed at once (its rings
    with it), without waiting for the cyclic garbage collector."""
    import weakref

    from fastfeed.bench import peers
    from fastfeed.tastytrade import DXLinkStreamer

    gc.disable()
    try:
        st = DXLinkStreamer(peers.FakeTastytradeSession("ws://127.0.0.1:9"))
        get = st.get_event
        ref = weakref.ref(st)
        del st
        assert ref() is None
        with pytest.raises(ReferenceError):
            get(Quote)
    finally:
        gc.enable()


async def test_a_subclass_override_of_get_event_is_what_callers_get() -> None:
    """The streamer's own get_event function is set only when the class has the stock one: a
    subclass that overrides get_event (e.g. to log or convert) is never bypassed."""
    from fastfeed.bench import peers
    from fastfeed.bench.payloads import DX_CHANNELS, dxlink_feed_config, dxlink_frames
    from fastfeed.tastytrade import DXLinkStreamer

    class Logged(DXLinkStreamer):
        seen: list[Any]

        async def get_event(self, event_class: Any) -> Any:
            ev = await super().get_event(event_class)
            self.seen.append(ev)
            return ev

    st = Logged(peers.FakeTastytradeSession("ws://127.0.0.1:9"))
    st.seen = []
    st._core.feed(dxlink_feed_config("Quote", DX_CHANNELS["Quote"]))
    assert st.get_event_nowait(Quote) is None
    st._core.feed(dxlink_frames("quote100")[0][1])
    ev = await st.get_event(Quote)
    assert st.seen == [ev]
    await st.close()
