"""FeedListener (transport.pyx) over real loopback against a tiny picows server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastfeed._native._testcore import CountingCore
from picows import WSListener, WSMsgType, WSTransport, ws_connect, ws_create_server

from fastfeed._native.transport import FeedListener, MessageCore, monotonic_ns

pytestmark = pytest.mark.timeout(20)


class Script(WSListener):  # type: ignore[misc]
    """Server side: runs ``script(transport)`` on connect, records what the client sent."""

    def __init__(self, script: Any, got: list[tuple[int, bytes]]) -> None:
        self.script = script
        self.got = got

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.script(transport)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        self.got.append((int(frame.msg_type), frame.get_payload_as_bytes()))
        if frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()


async def _run(script: Any, core: CountingCore, wait: float = 0.3, **kw: Any) -> tuple[FeedListener, list[tuple[int, bytes]], list[int]]:
    got: list[tuple[int, bytes]] = []
    server = await ws_create_server(lambda req: Script(script, got), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    wakes: list[int] = []
    disc: list[Any] = []
    try:
        transport, listener = await ws_connect(
            lambda: FeedListener(core, on_wake=lambda: wakes.append(core.n_messages),
                                 on_disconnect=disc.append, **kw),
            f"ws://127.0.0.1:{port}/")
        try:
            await asyncio.wait_for(transport.wait_disconnected(), wait)
        except TimeoutError:
            transport.disconnect()
            await transport.wait_disconnected()
    finally:
        server.close()
    assert disc == [listener]
    return listener, got, wakes


async def test_whole_messages_one_wake_per_read() -> None:
    core = CountingCore()

    def script(t: WSTransport) -> None:
        for i in range(100):
            t.send(WSMsgType.TEXT, b"m%d" % i)
        # everything above was written in one go: few socket reads, one wake per read

    listener, _, wakes = await _run(script, core)
    assert core.messages == [b"m%d" % i for i in range(100)]
    assert listener.n_frames == 100
    assert 1 <= len(wakes) == listener.n_wakes <= listener.n_reads
    assert wakes[-1] == 100
    assert all(ts > 1_600_000_000 * 10**9 for ts in core.ts_seen)  # CLOCK_REALTIME ns
    assert listener.idle_ns >= 0 and listener.last_recv_ns <= monotonic_ns()


async def test_fragments_reassembled() -> None:
    core = CountingCore()

    def script(t: WSTransport) -> None:
        t.send(WSMsgType.TEXT, b"hel", fin=False)
        t.send(WSMsgType.CONTINUATION, b"lo ", fin=False)
        t.send(WSMsgType.CONTINUATION, b"world", fin=True)
        t.send(WSMsgType.TEXT, b"after")
        t.send(WSMsgType.BINARY, b"x" * 70000, fin=False)
        t.send(WSMsgType.CONTINUATION, b"y" * 70000, fin=True)

    listener, _, _ = await _run(script, core)
    assert core.messages == [b"hello world", b"after", b"x" * 70000 + b"y" * 70000]
    assert listener.n_fragments == 2


async def test_fragment_too_big_closes_1009() -> None:
    core = CountingCore()

    def script(t: WSTransport) -> None:
        t.send(WSMsgType.TEXT, b"a" * 600, fin=False)
        t.send(WSMsgType.CONTINUATION, b"a" * 600, fin=True)

    listener, got, _ = await _run(script, core, max_message_size=1000)
    assert core.messages == []
    assert listener.close_code == 1009
    assert any(op == WSMsgType.CLOSE and p[:2] == (1009).to_bytes(2, "big") for op, p in got)


async def test_outbox_flushed_and_errors_counted() -> None:
    core = CountingCore()

    def script(t: WSTransport) -> None:
        t.send(WSMsgType.TEXT, b"ping")
        t.send(WSMsgType.TEXT, b"bad frame")
        t.send(WSMsgType.TEXT, b"ctl:auth")
        t.send(WSMsgType.TEXT, b"ok")

    errors: list[Exception] = []
    listener, got, wakes = await _run(script, core, on_error=errors.append)
    assert (int(WSMsgType.TEXT), b"pong") in got
    assert listener.n_errors == 1 and len(errors) == 1 and core.error is None
    assert core.messages[-1] == b"ok"       # the connection survived the bad message
    assert core.control == [b"ctl:auth"]
    assert wakes


async def test_close_echoed_and_recorded() -> None:
    core = CountingCore()

    def script(t: WSTransport) -> None:
        t.send(WSMsgType.TEXT, b"m")
        t.send(WSMsgType.PING, b"hb")
        t.send_close(1012, b"Reconnection is required")

    listener, got, _ = await _run(script, core, wait=5)
    assert listener.close_code == 1012 and listener.close_received
    assert listener.close_reason == "Reconnection is required"
    assert (int(WSMsgType.PONG), b"hb") in got
    closes = [p for op, p in got if op == WSMsgType.CLOSE]
    assert closes and closes[0][:2] == (1012).to_bytes(2, "big")
    assert not listener.connected


async def test_send_and_local_close() -> None:
    core = CountingCore()
    got: list[tuple[int, bytes]] = []
    server = await ws_create_server(lambda req: Script(lambda t: None, got), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        core.outbox.append(b"queued-before-connect")
        transport, listener = await ws_connect(lambda: FeedListener(core), f"ws://127.0.0.1:{port}/")
        assert listener.send(b"direct")
        listener.close(1000, "bye")
        await asyncio.wait_for(transport.wait_disconnected(), 5)
        await asyncio.sleep(0.05)
    finally:
        server.close()
    assert [p for op, p in got if op == WSMsgType.TEXT] == [b"queued-before-connect", b"direct"]
    assert listener.close_code == 1000 and not listener.close_received
    assert not listener.send(b"late")


# ---------------------------------------------------------------- MessageCore (Python-decoded protocols)


async def test_message_core_hands_whole_messages_to_python() -> None:
    core = MessageCore(decode_text=True)

    def script(t: WSTransport) -> None:
        t.send(WSMsgType.TEXT, "é text".encode())
        t.send(WSMsgType.BINARY, b"\xff\x00")
        t.send(WSMsgType.BINARY, b"bi", fin=False)
        t.send(WSMsgType.CONTINUATION, b"nary", fin=True)
        t.send(WSMsgType.TEXT, b"\xff not utf-8")      # malformed: counted, skipped
        t.send(WSMsgType.TEXT, b"last")

    errors: list[Exception] = []
    drained: list[list[Any]] = []
    got: list[tuple[int, bytes]] = []
    server = await ws_create_server(lambda req: Script(script, got), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        def wake() -> None:
            drained.append(core.events_received())

        transport, listener = await ws_connect(
            lambda: FeedListener(core, on_wake=wake, on_error=errors.append),
            f"ws://127.0.0.1:{port}/")
        try:
            await asyncio.wait_for(transport.wait_disconnected(), 0.3)
        except TimeoutError:
            transport.disconnect()
            await transport.wait_disconnected()
    finally:
        server.close()
    msgs = [m for batch in drained for m in batch]
    assert msgs == ["é text", b"\xff\x00", b"binary", "last"]
    assert len(drained) == listener.n_wakes <= listener.n_reads   # one drain per socket read
    assert listener.n_errors == 1 and len(errors) == 1 and "UTF-8" in str(errors[0])
    assert core.n_messages == 5


async def test_message_core_bytes_mode() -> None:
    core = MessageCore()

    def script(t: WSTransport) -> None:
        t.send(WSMsgType.TEXT, b'{"a":1}')

    _, _, _ = await _run(script, core)
    assert core.control == [b'{"a":1}']


async def test_oversize_frame_never_decoded() -> None:
    core = CountingCore()

    def script(t: WSTransport) -> None:
        t.send(WSMsgType.TEXT, b"ok")
        t.send(WSMsgType.TEXT, b"z" * 5000)          # over max_message_size, one frame

    listener, got, _ = await _run(script, core, wait=5, max_message_size=1000)
    assert core.messages == [b"ok"]
    assert listener.n_oversize == 1
    assert listener.close_code == 1009 and not listener.close_received
    assert any(op == WSMsgType.CLOSE and p[:2] == (1009).to_bytes(2, "big") for op, p in got)


async def test_idle_clock_stops_while_paused() -> None:
    core = CountingCore()
    got: list[tuple[int, bytes]] = []
    server = await ws_create_server(lambda req: Script(lambda t: None, got), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        transport, listener = await ws_connect(lambda: FeedListener(core), f"ws://127.0.0.1:{port}/")
        listener.pause()
        assert listener.paused and listener.idle_ns == 0    # our silence, not the server's
        before = monotonic_ns()
        listener.resume()
        assert not listener.paused and listener.last_recv_ns >= before
        listener.close()
        await asyncio.wait_for(transport.wait_disconnected(), 5)
    finally:
        server.close()
