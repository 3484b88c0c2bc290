"""DXLinkStreamer against independent scripted DXLink servers: one per failure class (issue #12).

Every test is bounded in time and synchronises on server/client events, never on sleeps. Quote
events are numbered (``bid_price`` = n); "exactly once, in order" is checked by comparing what
the client got with what the server sent.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ffservers import (
    DXLinkScript,
    Session,
    assert_fds_back_to,
    assert_no_tasks_left,
    open_fds,
    unreachable_url,
)
from websockets.asyncio.server import ServerConnection

from fastfeed import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectionState,
    EventLoopError,
    ReconnectionExhausted,
    StreamerClosedError,
    SubscriptionError,
)
from fastfeed.dxfeed import Quote, Trade
from fastfeed.tastytrade import DXLinkStreamer

pytestmark = pytest.mark.timeout(60)


class Recorder:
    """Collects state changes and reconnect_fn calls."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self.reconnects = 0

    def on_state(self, old: ConnectionState, new: ConnectionState) -> None:
        self.states.append(new.value)

    async def on_reconnect(self, streamer: Any) -> None:
        self.reconnects += 1


async def collect(it: AsyncIterator[Quote], script: DXLinkScript, n: int,
                  timeout: float = 20) -> list[int]:
    """Quote numbers received (from ``it``, created before subscribing) until the server has
    sent ``n`` events and all arrived."""
    got: list[int] = []

    async def run() -> None:
        async for q in it:
            got.append(int(q.bid_price))
            if len(script.sent) >= n and len(got) >= len(script.sent):
                return

    await asyncio.wait_for(run(), timeout)
    return got


def streamer(url: str, rec: Recorder | None = None, **kw: Any) -> DXLinkStreamer:
    rec = rec or Recorder()
    kw.setdefault("open_timeout", 2.0)
    return DXLinkStreamer(Session(url), reconnect_fn=rec.on_reconnect,
                          on_state_change=rec.on_state, **kw)


# --------------------------------------------------------------------- never ready


async def test_dxlink_server_never_answers_setup_first_connect_raises() -> None:
    script = DXLinkScript()
    script.answer_setup = lambda idx: False
    rec = Recorder()
    async with script.make() as srv:
        st = streamer(srv.url, rec, open_timeout=0.6)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ConnectionFailedError) as ei:
            await st.start()
        assert srv.connections == 1          # one attempt, no retry before raising
        assert loop.time() - t0 < 0.6 + 3.0   # within open_timeout (slack: a busy box)
        assert "not ready" in str(ei.value) and "SECRET" not in str(ei.value)
        assert srv.url.split("?")[0] in str(ei.value)
    assert "ready" not in rec.states and rec.states[-1] == "closed"
    assert "handshaking" in rec.states
    s = st.stats
    assert s["failed_attempts"] >= 1 and s["reconnects"] == 0 and rec.reconnects == 0
    assert st.state is ConnectionState.CLOSED


async def test_dxlink_never_ready_after_a_drop_is_a_failed_attempt_with_a_limit() -> None:
    script = DXLinkScript(total=10**9)
    rec = Recorder()
    async with script.make() as srv:
        st = streamer(srv.url, rec, open_timeout=0.3, max_reconnect_attempts=3)
        await st.start()
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        await asyncio.wait_for(it.__anext__(), 5)
        script.answer_setup = lambda idx: idx == 0        # later connections never answer
        script.faults[len(script.sent) + 2] = lambda ws, ch: ws.close(1011, "drop")
        with pytest.raises(ReconnectionExhausted):
            async def drain() -> None:
                async for _ in it:
                    pass
            await asyncio.wait_for(drain(), 20)
        await st.close()
        assert srv.connections == 1 + 3
    s = st.stats
    assert s["failed_attempts"] == 3 and s["reconnects"] == 0 and rec.reconnects == 0
    assert rec.states.count("ready") == 1
    assert rec.states.count("handshaking") == 4 and rec.states.count("backing_off") >= 3


# --------------------------------------------------------------------- server messages


async def test_dxlink_error_invalid_message_midstream_stream_goes_on() -> None:
    script = DXLinkScript(total=150)

    async def error(ws: ServerConnection, ch: int) -> None:
        await ws.send(json.dumps({"type": "ERROR", "channel": 0, "error": "INVALID_MESSAGE",
                                  "message": "odd message"}))

    script.faults[50] = error
    async with script.make() as srv, streamer(srv.url) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        got = await collect(it, script, 150)
        assert got == script.sent == list(range(1, 151))
        assert st.stats["server_errors"] == 1 and st.stats["reconnects"] == 0
        err = st.server_errors[0]
        assert (err.error, err.message, err.channel) == ("INVALID_MESSAGE", "odd message", 0)
        assert st.error is None and st.state is ConnectionState.READY


async def test_dxlink_error_answering_a_subscribe_fails_that_subscribe_only() -> None:
    script = DXLinkScript(total=60)
    trade_channel = 15
    script.refuse_channel = lambda idx, ch: (
        {"type": "ERROR", "channel": ch, "error": "BAD_ACTION", "message": "no trades"}
        if ch == trade_channel else None)
    async with script.make() as srv, streamer(srv.url) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        with pytest.raises(SubscriptionError, match="BAD_ACTION"):
            await asyncio.wait_for(st.subscribe(Trade, ["SPY"]), 5)
        got = await collect(it, script, 60)
        assert got == script.sent
        assert st.stats["server_errors"] == 1
        assert st.server_errors[0].channel == trade_channel


async def test_dxlink_channel_refused_for_a_subscribe_fails_it_without_reopening() -> None:
    script = DXLinkScript(total=40)
    script.refuse_channel = lambda idx, ch: (
        {"type": "CHANNEL_CLOSED", "channel": ch} if ch == 15 else None)
    async with script.make() as srv, streamer(srv.url) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        with pytest.raises(SubscriptionError, match="closed by the server"):
            await asyncio.wait_for(st.subscribe(Trade, ["SPY"]), 5)
        got = await collect(it, script, 40)
        assert got == script.sent
        assert st.stats["channel_reopens"] == 0
        requests = [m for m in srv.received[0] if m["type"] == "CHANNEL_REQUEST"]
        assert [m["channel"] for m in requests] == [7, 15]   # Trade's not requested again


async def test_dxlink_error_unauthorized_when_ready_raises_authentication_error() -> None:
    script = DXLinkScript(total=10**9)

    async def unauthorized(ws: ServerConnection, ch: int) -> None:
        await ws.send(json.dumps({"type": "ERROR", "channel": 0, "error": "UNAUTHORIZED",
                                  "message": "token expired"}))

    script.faults[20] = unauthorized
    async with script.make() as srv, streamer(srv.url) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        got: list[int] = []
        with pytest.raises(AuthenticationError):
            async def run() -> None:
                async for q in it:
                    got.append(int(q.bid_price))
            await asyncio.wait_for(run(), 10)
        assert got == script.sent[:len(got)] and len(got) >= 20


async def test_dxlink_error_timeout_reconnects() -> None:
    script = DXLinkScript(total=120)

    async def timeout(ws: ServerConnection, ch: int) -> None:
        await ws.send(json.dumps({"type": "ERROR", "channel": 0, "error": "TIMEOUT",
                                  "message": "no keepalive"}))

    script.faults[40] = timeout
    rec = Recorder()
    async with script.make() as srv, streamer(srv.url, rec) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        got = await collect(it, script, 120)
        assert got == script.sent == list(range(1, 121))
        assert st.stats["reconnects"] == 1 and rec.reconnects == 1
        assert srv.connections == 2


async def test_dxlink_unsolicited_channel_closed_is_reopened_and_replayed() -> None:
    script = DXLinkScript(total=150)

    async def close_channel(ws: ServerConnection, ch: int) -> None:
        await ws.send(json.dumps({"type": "CHANNEL_CLOSED", "channel": ch}))

    script.faults[50] = close_channel
    async with script.make() as srv, streamer(srv.url) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        got = await collect(it, script, 150)
        assert got == script.sent == list(range(1, 151))
        assert st.stats["channel_reopens"] == 1 and st.stats["reconnects"] == 0
        requests = [m for m in srv.received[0] if m["type"] == "CHANNEL_REQUEST"]
        subs = [m for m in srv.received[0] if m["type"] == "FEED_SUBSCRIPTION"]
        assert len(requests) == 2 and len(subs) == 2    # reopened and replayed


async def test_dxlink_channel_that_keeps_closing_makes_listen_raise() -> None:
    script = DXLinkScript(total=10**9)
    quote_channel = 7
    opened = {"n": 0}

    def refuse(idx: int, ch: int) -> dict[str, Any] | None:
        if ch != quote_channel:
            return None
        opened["n"] += 1
        if opened["n"] == 1:
            return None
        return {"type": "CHANNEL_CLOSED", "channel": ch}

    async def close_channel(ws: ServerConnection, ch: int) -> None:
        await ws.send(json.dumps({"type": "CHANNEL_CLOSED", "channel": ch}))

    script.refuse_channel = refuse
    script.faults[10] = close_channel
    async with script.make() as srv, streamer(srv.url) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        got: list[int] = []
        with pytest.raises(SubscriptionError, match="not reopening"):
            async def run() -> None:
                async for q in it:
                    got.append(int(q.bid_price))
            await asyncio.wait_for(run(), 10)
        assert got == script.sent[:len(got)]
        assert st.stats["channel_reopens"] == st.max_channel_reopens
        assert st.error is None                           # the streamer itself goes on


# --------------------------------------------------------------------- HTTP upgrade


@pytest.mark.parametrize("status", [502, 429])
async def test_dxlink_upgrade_retryable_status_is_retried(status: int) -> None:
    script = DXLinkScript(total=30)
    rec = Recorder()
    async with script.make(statuses=[status, status]) as srv:
        async with streamer(srv.url, rec) as st:
            it = st.listen(Quote)
            await st.subscribe(Quote, ["SPY"])
            got = await collect(it, script, 30)
            assert got == script.sent
            assert st.stats["failed_attempts"] == 2 and st.stats["reconnects"] == 0
        assert srv.upgrades == 3
    assert rec.states[:3] == ["connecting", "backing_off", "connecting"]


@pytest.mark.parametrize("status,error", [(401, AuthenticationError), (403, AuthenticationError),
                                          (404, ConfigurationError)])
async def test_dxlink_upgrade_refused_raises_typed_error(status: int, error: type) -> None:
    script = DXLinkScript()
    async with script.make(statuses=[status] * 5) as srv:
        st = streamer(srv.url)
        with pytest.raises(error) as ei:
            await st.start()
        assert str(status) in str(ei.value) and "SECRET" not in str(ei.value)
        assert ei.value.status == status
        assert srv.upgrades == 1                            # not retried
        if status == 404:
            assert srv.url in str(ei.value)
        assert type(ei.value.__cause__).__module__.startswith("picows")


async def test_dxlink_unreachable_url_first_connect_raises_within_open_timeout() -> None:
    url = unreachable_url()
    st = streamer(url, open_timeout=0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(ConnectionFailedError) as ei:
        await st.start()
    assert loop.time() - t0 < 0.5 + 3.0   # refused at once (slack: a busy box)
    assert url.split("?")[0] in str(ei.value) and "SECRET" not in str(ei.value)
    assert isinstance(ei.value.__cause__, OSError)


# --------------------------------------------------------------------- unstable connections


async def test_dxlink_drop_right_after_authorized_backs_off() -> None:
    script = DXLinkScript(total=40)
    script.drop_after_auth = lambda idx: 1 <= idx <= 4     # connections 1..4 drop at once
    rec = Recorder()
    async with script.make() as srv, streamer(srv.url, rec) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        first = await asyncio.wait_for(it.__anext__(), 5)
        script.faults[len(script.sent) + 1] = lambda ws, ch: ws.close(1011, "drop")
        got = [int(first.bid_price)]
        async for q in it:
            got.append(int(q.bid_price))
            if len(script.sent) >= 40 and len(got) >= len(script.sent):
                break
        assert got == script.sent[got[0] - 1:]
        assert srv.connections == 6
    # every reconnection after a short-lived connection was preceded by a backoff delay
    after_first_ready = rec.states[rec.states.index("ready") + 1:]
    assert after_first_ready.count("connecting") == 5
    assert after_first_ready.count("backing_off") == 5


# --------------------------------------------------------------------- oversize frames


async def test_dxlink_oversize_frame_is_counted_and_the_connection_replaced(
        loop_errors: list[dict[str, Any]]) -> None:
    script = DXLinkScript(total=100)

    async def oversize(ws: ServerConnection, ch: int) -> None:
        await ws.send(json.dumps({"type": "FEED_DATA", "channel": ch,
                                  "data": ["Quote", ["x" * 200_000]]}))
        await ws.wait_closed()

    script.faults[30] = oversize
    rec = Recorder()
    async with script.make() as srv, streamer(srv.url, rec, max_message_size=64 * 1024) as st:
        it = st.listen(Quote)
        await st.subscribe(Quote, ["SPY"])
        got = await collect(it, script, 100)
        assert got == script.sent == list(range(1, 101))
        s = st.stats
        assert s["oversize_frames"] == 1 and s["reconnects"] == 1
        assert srv.connections == 2
    assert rec.states.count("backing_off") == 1
    gc.collect()
    await asyncio.sleep(0)
    assert not [c for c in loop_errors if "never retrieved" in str(c.get("message"))]


# --------------------------------------------------------------------- misuse and cleanup


async def test_dxlink_misuse_after_close_and_from_another_loop() -> None:
    script = DXLinkScript(total=10**9)
    async with script.make() as srv:
        before = asyncio.all_tasks()
        fds = open_fds()
        st = streamer(srv.url, ssl_context=None)
        await st.start()
        await st.subscribe(Quote, ["SPY"])
        await asyncio.wait_for(st.get_event(Quote), 5)
        stream = st.stream_filter()
        await asyncio.wait_for(stream.__anext__(), 5)

        errors: list[BaseException] = []

        def other_loop() -> None:
            async def use() -> None:
                await st.subscribe(Trade, ["SPY"])
            try:
                asyncio.run(use())
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        t = threading.Thread(target=other_loop)
        t.start()
        await asyncio.get_running_loop().run_in_executor(None, t.join, 10)
        assert len(errors) == 1 and isinstance(errors[0], EventLoopError)
        assert "another event loop" in str(errors[0])

        await st.close()
        assert st.state is ConnectionState.CLOSED and st._listener is None
        with pytest.raises(StreamerClosedError):
            await st.subscribe(Quote, ["AAPL"])
        with pytest.raises(StreamerClosedError):
            st.listen(Quote)
        with pytest.raises(StreamerClosedError):
            await st.send({"type": "KEEPALIVE", "channel": 0})
        with pytest.raises(StreamerClosedError):
            await st.get_event(Quote)
        assert_no_tasks_left(before)
        await assert_fds_back_to(fds)                  # the socket is closed


async def test_dxlink_fanout_is_in_wire_order_across_types() -> None:
    script = DXLinkScript(total=200)
    script.interleave_trades = True
    async with script.make() as srv, streamer(srv.url) as st:
        seen: list[tuple[str, int]] = []
        total: list[int] = []                      # known once the server has sent everything
        all_seen = asyncio.Event()

        def handler(ev: Any) -> None:
            seen.append((type(ev).__name__, int(
                ev.bid_price if isinstance(ev, Quote) else ev.price)))
            if total and len(seen) >= total[0]:
                all_seen.set()

        st.add_handler(handler)
        await st.subscribe(Trade, ["SPY"])
        await st.subscribe(Quote, ["SPY"])
        await srv.wait_for(lambda: len(script.sent) >= 200)
        total.append(len(script.sent) + len(script.sent_trades))
        if len(seen) >= total[0]:
            all_seen.set()
        # synchronise on the handler having seen everything (not on the streamer's wake-ups:
        # the fan-out pump may publish after this task's last wake-up)
        await asyncio.wait_for(all_seen.wait(), 30)
        assert st.stats["parse_errors"] == 0
    assert script.sent_trades and len(seen) == len(script.wire)
    assert seen == script.wire                     # Trade, Quote, Trade, Quote ... as sent
