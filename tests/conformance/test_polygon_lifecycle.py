"""polygon AsyncStreamClient against independent scripted polygon servers (issue #12).

T events are numbered (``q`` = n); "exactly once, in order" compares what the handlers got with
what the server sent. Bounded in time, synchronised on events.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest
from ffservers import (
    PolygonScript,
    ScriptedServer,
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
    ReconnectionExhausted,
    StreamerClosedError,
)
from fastfeed.polygon import AsyncStreamClient

pytestmark = pytest.mark.timeout(60)


def host_of(srv: ScriptedServer) -> str:
    return srv.url.rsplit("/", 1)[0]


def client(host: str, key: str = "KEY", **kw: Any) -> tuple[AsyncStreamClient, list[str]]:
    states: list[str] = []
    kw.setdefault("open_timeout", 2.0)
    c = AsyncStreamClient(key, "stocks", host=host,
                          on_state_change=lambda old, new: states.append(new.value), **kw)
    return c, states


async def run_until(c: AsyncStreamClient, cond: Any, timeout: float = 20, **hm: Any) -> None:
    """handle_messages (with ``hm``) until ``cond()``."""
    async def run() -> None:
        while not cond():
            if hm.get("reconnect"):
                task = asyncio.ensure_future(c.handle_messages(**hm))
                while not cond() and not task.done():   # re-checked after each dispatch
                    await asyncio.wait({task}, timeout=0.02)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                return
            await c.handle_messages()
    await asyncio.wait_for(run(), timeout)


# --------------------------------------------------------------------- never ready / upgrade


async def test_polygon_server_never_answers_auth_first_connect_raises() -> None:
    script = PolygonScript()
    script.answer_auth = lambda idx: False
    async with script.make() as srv:
        c, states = client(host_of(srv), open_timeout=0.6)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ConnectionFailedError) as ei:
            await c.subscribe_stock_trades(["AAPL"], lambda m: None)
        assert srv.connections == 1          # one attempt, no retry before raising
        assert loop.time() - t0 < 0.6 + 3.0   # within open_timeout (slack: a busy box)
        assert "not ready" in str(ei.value) and "KEY" not in str(ei.value)
        await c.close_stream()
    assert "ready" not in states and states[-1] == "closed"
    assert c.stats["failed_attempts"] >= 1 and c.stats["reconnects"] == 0


@pytest.mark.parametrize("status", [502, 429])
async def test_polygon_upgrade_retryable_status_on_first_connect_is_retried(status: int) -> None:
    script = PolygonScript(total=30)
    got: list[int] = []
    async with script.make(statuses=[status]) as srv:
        c, states = client(host_of(srv))
        await c.subscribe_stock_trades(["AAPL"], lambda m: got.append(m["q"]))
        await run_until(c, lambda: len(script.sent) >= 30 and len(got) >= len(script.sent))
        await c.close_stream()
    assert got == script.sent == list(range(1, 31))
    assert c.stats["failed_attempts"] == 1 and srv.upgrades == 2
    assert states[:3] == ["connecting", "backing_off", "connecting"]


@pytest.mark.parametrize("status,error", [(401, AuthenticationError), (403, AuthenticationError),
                                          (404, ConfigurationError)])
async def test_polygon_upgrade_refused_raises_typed_error(status: int, error: type) -> None:
    script = PolygonScript()
    async with script.make(statuses=[status] * 3) as srv:
        c, _ = client(host_of(srv))
        with pytest.raises(error) as ei:
            await c.subscribe_stock_trades(["AAPL"], lambda m: None)
        assert str(status) in str(ei.value) and ei.value.status == status
        assert srv.upgrades == 1
        if status == 404:
            assert srv.url in str(ei.value)             # names the URL (a wrong host=)
        assert type(ei.value.__cause__).__module__.startswith("picows")
        await c.close_stream()


async def test_polygon_unreachable_url_first_connect_raises_within_open_timeout() -> None:
    host = unreachable_url(path="")
    c, _ = client(host, open_timeout=0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(ConnectionFailedError) as ei:
        await c.subscribe_stock_trades(["AAPL"], lambda m: None)
    assert loop.time() - t0 < 0.5 + 3.0   # refused at once (slack: a busy box)
    assert host in str(ei.value) and isinstance(ei.value.__cause__, OSError)
    await c.close_stream()


async def test_polygon_never_ready_after_a_drop_counts_against_the_attempt_limit() -> None:
    script = PolygonScript(total=10**9)
    got: list[int] = []
    async with script.make() as srv:
        c, states = client(host_of(srv), open_timeout=0.3)
        await c.subscribe_stock_trades(["AAPL"], lambda m: got.append(m["q"]))
        await run_until(c, lambda: len(got) >= 5)
        script.answer_auth = lambda idx: idx == 0
        script.faults[len(script.sent) + 1] = lambda ws: ws.close(1011, "drop")
        with pytest.raises(ReconnectionExhausted):
            await asyncio.wait_for(c.handle_messages(reconnect=True, max_reconnection_attempts=2,
                                                     reconnection_delay=0.05), 20)
        await c.close_stream()
        assert srv.connections == 3
    assert got == script.sent[:len(got)]
    assert c.stats["failed_attempts"] == 2 and c.stats["reconnects"] == 0
    assert states.count("ready") == 1


# --------------------------------------------------------------------- statuses / drops / size


async def test_polygon_status_error_midstream_is_reported_and_the_stream_goes_on() -> None:
    script = PolygonScript(total=100)

    async def error(ws: ServerConnection) -> None:
        await ws.send(json.dumps([{"ev": "status", "status": "error",
                                   "message": "invalid channel: ZZ.AAPL"}]))

    script.faults[40] = error
    got: list[int] = []
    async with script.make() as srv:
        c, _ = client(host_of(srv))
        await c.subscribe_stock_trades(["AAPL"], lambda m: got.append(m["q"]))
        await c.change_handler("status", lambda m: None)
        await run_until(c, lambda: len(script.sent) >= 100 and len(got) >= len(script.sent))
        assert c.stats["server_errors"] == 1 and c.error is None
        assert c.server_errors[0].message == "invalid channel: ZZ.AAPL"
        await c.close_stream()
    assert got == script.sent == list(range(1, 101))


async def test_polygon_drop_right_after_auth_backs_off_then_recovers() -> None:
    script = PolygonScript(total=60)
    script.drop_after_auth = lambda idx: 1 <= idx <= 3
    got: list[int] = []
    async with script.make() as srv:
        c, states = client(host_of(srv))
        await c.subscribe_stock_trades(["AAPL"], lambda m: got.append(m["q"]))
        await run_until(c, lambda: len(got) >= 3)
        script.faults[len(script.sent) + 1] = lambda ws: ws.close(1011, "drop")
        await run_until(c, lambda: len(script.sent) >= 60 and len(got) >= len(script.sent),
                        reconnect=True, reconnection_delay=0.05)
        assert srv.connections == 5
        await c.close_stream()
    assert got == script.sent == list(range(1, 61))
    after = states[states.index("ready") + 1:]
    assert after.count("connecting") == 4 and after.count("backing_off") == 4


async def test_polygon_oversize_frame_is_counted_and_the_connection_replaced(
        loop_errors: list[dict[str, Any]]) -> None:
    script = PolygonScript(total=80)

    async def oversize(ws: ServerConnection) -> None:
        await ws.send(json.dumps([{"ev": "status", "status": "x", "message": "y" * 100_000}]))
        await ws.wait_closed()

    script.faults[30] = oversize
    got: list[int] = []
    async with script.make() as srv:
        c, states = client(host_of(srv), max_message_size=32 * 1024)
        await c.subscribe_stock_trades(["AAPL"], lambda m: got.append(m["q"]))
        await run_until(c, lambda: len(script.sent) >= 80 and len(got) >= len(script.sent),
                        reconnect=True, reconnection_delay=0.05)
        assert c.stats["oversize_frames"] == 1 and srv.connections == 2
        await c.close_stream()
    assert got == script.sent == list(range(1, 81))
    assert states.count("backing_off") == 1
    gc.collect()
    await asyncio.sleep(0)
    assert not [e for e in loop_errors if "never retrieved" in str(e.get("message"))]


# --------------------------------------------------------------------- order, misuse, cleanup


async def test_polygon_stream_filter_and_add_handler_get_wire_order() -> None:
    script = PolygonScript(total=100)
    script.interleave_quotes = True
    async with script.make() as srv:
        c, _ = client(host_of(srv))
        stream = c.stream_filter([{"ev": "T"}, {"ev": "Q"}])
        handled: list[tuple[str, int]] = []
        c.add_handler(lambda m: handled.append((m["ev"], m["q"])))
        await c.subscribe_stock_trades(["AAPL"], lambda m: None)
        await c.subscribe_stock_quotes(["AAPL"], lambda m: None)
        seen: list[tuple[str, int]] = []

        async def take() -> None:
            async for m in stream:
                seen.append((m["ev"], m["q"]))
                if len(script.sent) >= 100 and len(seen) >= len(script.wire):
                    return
        await asyncio.wait_for(take(), 20)
        await c.close_stream()
    assert any(ev == "Q" for ev, _ in seen)
    assert seen == script.wire                   # T, Q, T of each frame as sent
    assert handled == script.wire


async def test_polygon_misuse_after_close_and_nothing_left() -> None:
    script = PolygonScript(total=10**9)
    async with script.make() as srv:
        before = asyncio.all_tasks()
        fds = open_fds()
        c, states = client(host_of(srv), ssl_context=None)
        got: list[int] = []
        await c.subscribe_stock_trades(["AAPL"], lambda m: got.append(m["q"]))
        stream = c.stream_filter()
        await asyncio.wait_for(stream.__anext__(), 5)
        await c.close_stream()
        assert c.state is ConnectionState.CLOSED and c._listener is None
        with pytest.raises(StreamerClosedError):
            await c.subscribe_stock_quotes(["AAPL"])
        with pytest.raises(StreamerClosedError):
            await c.send({"action": "subscribe", "params": "T.MSFT"})
        with pytest.raises(StreamerClosedError):
            c.stream_filter()
        assert_no_tasks_left(before)
        await assert_fds_back_to(fds)                  # the socket is closed
    assert states[-1] == "closed"


async def test_polygon_and_dxlink_take_an_ssl_context() -> None:
    import ssl

    from ffservers import Session

    from fastfeed.tastytrade import DXLinkStreamer

    ctx = ssl.create_default_context()
    c, _ = client("wss://example.invalid", ssl_context=ctx)
    assert (await c._endpoint()).ssl_context is ctx
    st = DXLinkStreamer(Session("wss://example.invalid/realtime"), ssl_context=ctx)
    assert (await st._endpoint()).ssl_context is ctx


async def test_polygon_flood_of_malformed_frames_is_counted_and_the_log_summarised(
        caplog: pytest.LogCaptureFixture) -> None:
    """A server sending hundreds of malformed frames: each is counted and skipped, the stream
    goes on, and the log gets the first few one by one and then a summary, not a line each."""
    script = PolygonScript(total=60)
    bad = 500

    async def flood(ws: ServerConnection) -> None:
        for i in range(bad):
            await ws.send('[{"ev":"T","sym":"AAPL","p":' + str(i))   # cut mid-value
    script.faults[20] = flood
    got: list[int] = []
    caplog.set_level("WARNING", logger="fastfeed")
    async with script.make() as srv:
        c, _ = client(host_of(srv))
        await c.subscribe_stock_trades(["AAPL"], lambda m: got.append(m["q"]))
        await run_until(c, lambda: len(script.sent) >= 60 and len(got) >= len(script.sent))
        assert c.stats["parse_errors"] == bad and c.error is None
        await c.close_stream()
    assert got == script.sent == list(range(1, 61))
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    one_by_one = [m for m in lines if m.startswith("malformed message skipped")]
    assert len(one_by_one) == 10                 # PROTOCOL_ERRORS_LOGGED
    assert len(lines) <= 10 + 1 + 1              # + "summarised" notice + at most one summary
