"""Shared machinery of the local feed simulators (layer 6).

Every simulator is a picows websocket server bound to 127.0.0.1 (port 0 = pick a free port).
A simulator owns one :class:`SimConnection` (a picows ``WSListener``) per client connection.
This module knows nothing about DXLink or polygon: it provides

* start / stop / ``async with`` / ``url``;
* frame recording with ``time.monotonic_ns()`` stamps (both directions, payload bytes);
* fault injection common to every feed (close with a code after N data frames, TCP drop,
  stall, protocol error frame, malformed frames, oversize frames, HTTP 502 on the first K
  upgrades, close 1009 for oversize client messages), settable at construction and at run time;
* two data senders: a *paced* one (events/s, scheduled on the loop's clock, catching up in small
  bursts so the average rate is exact even when the loop timer is coarse) and a *flat-out* one
  (a pool of pre-encoded frames written as ~256 KiB chunks straight to the underlying TCP
  transport, honouring ``pause_writing`` / ``resume_writing``).

Subclasses implement the protocol: :meth:`SimConnection.on_message` for client messages and
:meth:`SimConnection.build_data_frame` for market data.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import picows
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

__all__ = [
    "Record",
    "SimServer",
    "SimConnection",
    "ws_text_frame",
    "LOOPBACK_HOSTS",
    "SpawnedSim",
    "spawn",
]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
S2C = "S->C"
C2S = "C->S"

#: paced sender: when frames are due at least this often (s), it waits for each one with a
#: precise ``time.sleep`` instead of the loop's timer (about 1 ms steps under uvloop), and
#: sends one frame at a time instead of catching up in bursts
PRECISE_GAP = 0.0015
_timer_slack_set = False


def _fine_timer_slack() -> None:
    """Ask Linux for 1 ns timer slack on this thread (default 50 µs), once, best effort."""
    global _timer_slack_set
    if _timer_slack_set:
        return
    _timer_slack_set = True
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(29, 1)  # PR_SET_TIMERSLACK
    except Exception:  # noqa: BLE001 - precision is a nicety, never an error
        pass


class Record(NamedTuple):
    """One recorded websocket message: local monotonic time, connection id, direction, payload."""

    ts_ns: int
    conn: int
    direction: str  # "S->C" or "C->S"
    data: bytes


def ws_text_frame(payload: bytes) -> bytes:
    """Encode an unmasked (server → client) websocket TEXT frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def _close_code(code: int) -> Any:
    try:
        return WSCloseCode(code)
    except ValueError:
        return code  # picows' cpdef enum accepts any int from Cython


class _Knobs:
    """Fault-injection and sending knobs shared by all simulators (read live by connections)."""

    # data sending
    rate: float | None = 100.0  # events/s per connection; None = flat-out
    events_per_frame: int = 1
    stamp_send_time: bool = False
    max_burst_frames: int = 1000  # paced sender: most frames sent in one catch-up burst
    pool_frames: int = 64  # flat-out: distinct pre-encoded frames
    chunk_bytes: int = 256 * 1024  # flat-out: bytes per write
    high_water: int = 4 * 1024 * 1024  # flat-out: transport write-buffer high-water mark
    # faults (per connection, counted in data frames sent on that connection)
    close_after_frames: int | None = None
    close_code: int = 1012
    close_reason: str = "Reconnection is required"
    drop_after_frames: int | None = None
    stall_after_frames: int | None = None
    error_after_frames: int | None = None
    malformed_every: int | None = None
    oversize_frame_bytes: int | None = None
    reject_upgrade_status: int = 502
    reject_first: int = 0
    max_client_message: int | None = None
    answer_pings: bool = True


class SimServer(_Knobs):
    """Base class of the simulators. Use ``async with Server(...) as srv`` or start()/stop().

    Common constructor options (all keyword-only; every knob is also a writable attribute that
    live connections read on each use, see :meth:`set`):

    host, port
        Bind address (loopback only) and port (0 = any free port).
    seed
        Seed of the deterministic generators (each connection derives its own RNG from it).
    rate
        Market-data events per second per connection; ``None`` = flat-out.
    events_per_frame
        Events in each data frame.
    stamp_send_time
        Put the sender's ``time.monotonic_ns()`` into a timestamp field of quotes (paced mode).
    record, record_limit
        Record every frame both ways (payload bytes with ``monotonic_ns`` stamps) up to
        ``record_limit`` records (later ones are counted in ``records_dropped``).
    close_after_frames, close_code, close_reason
        Send a close frame with ``close_code`` after N data frames on a connection.
    drop_after_frames
        Abort the TCP connection (no close frame) after N data frames.
    stall_after_frames
        Stop sending anything (data, keepalives, replies) after N data frames; socket stays open.
    error_after_frames
        Send the protocol's error message after N data frames.
    malformed_every
        Every N-th data frame is malformed (protocol-specific: bad value count, bad JSON …).
    oversize_frame_bytes
        Data frames are filled with events until they are larger than N bytes.
    reject_first, reject_upgrade_status
        Answer the first K websocket upgrades with this HTTP status (default 502).
    max_client_message
        Close with 1009 when a client message is larger than N bytes.
    answer_pings
        Answer websocket PINGs with PONGs (picows auto-pong).
    """

    kind: str = "sim"
    default_path: str = "/"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        record: bool = True,
        record_limit: int = 1_000_000,
        **knobs: Any,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"simulators bind to loopback only, not {host!r}")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.seed = seed
        self.record = record
        self.record_limit = record_limit
        self.transcript: list[Record] = []
        self.records_dropped = 0
        self.connections_total = 0
        self.upgrades_total = 0
        self.upgrades_rejected = 0
        self.live: dict[int, SimConnection] = {}
        self.closed_connections: list[SimConnection] = []
        self.frames_sent = 0
        self.events_sent = 0
        self.bytes_sent = 0
        self._server: asyncio.AbstractServer | None = None
        self._conn_ids = itertools.count(1)
        self.set(**knobs)

    # ------------------------------------------------------------------ configuration

    def set(self, **knobs: Any) -> None:
        """Change knobs; live connections see the new values on their next use."""
        for k, v in knobs.items():
            known = hasattr(_Knobs, k) or hasattr(type(self), k)
            if not known or callable(getattr(type(self), k)) or isinstance(
                    getattr(type(self), k), property):
                raise TypeError(f"{type(self).__name__}: unknown option {k!r}")
            setattr(self, k, v)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> SimServer:
        if self._server is not None:
            return self
        self._server = await picows.ws_create_server(
            self._listener_factory,
            self.host,
            self.port,
            enable_auto_pong=self.answer_pings,
            max_frame_size=64 * 1024 * 1024,
            websocket_handshake_timeout=5,
            reuse_address=True,
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        return self

    async def stop(self, close_code: int = 1001) -> None:
        """Stop listening, close every live connection, cancel every task."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self.live.values()):
            conn.close(close_code, "server stopping")
        for conn in list(self.live.values()):
            conn.abort()
        try:
            await asyncio.wait_for(server.wait_closed(), 2.0)
        except (TimeoutError, OSError):
            pass
        await asyncio.sleep(0)

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def host_port(self) -> str:
        """``"127.0.0.1:PORT"`` (what e.g. massive's ``feed=`` expects)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.default_path}"

    @property
    def connections(self) -> int:
        """Number of live connections."""
        return len(self.live)

    @property
    def connection_list(self) -> list[SimConnection]:
        """Live connections, oldest first."""
        return list(self.live.values())

    def connection(self, conn_id: int | None = None) -> SimConnection:
        """A live connection by id; the newest one when ``conn_id`` is None."""
        if conn_id is None:
            if not self.live:
                raise LookupError("no live connection")
            return next(reversed(self.live.values()))
        return self.live[conn_id]

    async def wait_connections(self, n: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` connections are live."""
        deadline = time.monotonic() + timeout
        while len(self.live) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.live)} of {n} connections")
            await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ faults at run time

    def inject(self, kind: str, conn: int | None = None, **kw: Any) -> int:
        """Apply a fault now to every live connection (or to connection ``conn``).

        Kinds common to all simulators: ``close`` (code=1012, reason=…), ``drop`` (TCP abort),
        ``stall`` / ``unstall``, ``error`` (protocol error message; message=…), ``malformed``
        (the next data frame), ``oversize`` (one data frame of at least bytes=N), ``pause`` /
        ``resume`` (data only). With ``after_frames=N`` the fault is applied after N more data
        frames instead of now. Subclasses add their own kinds. Returns the number of
        connections affected.
        """
        targets = [self.live[conn]] if conn is not None else list(self.live.values())
        for c in targets:
            c.inject(kind, **kw)
        return len(targets)

    # ------------------------------------------------------------------ recording

    def _rec(self, conn: int, direction: str, data: bytes) -> None:
        if not self.record:
            return
        if len(self.transcript) >= self.record_limit:
            self.records_dropped += 1
            return
        self.transcript.append(Record(time.monotonic_ns(), conn, direction, data))

    def _rec_many(self, conn: int, payloads: list[bytes]) -> None:
        if not self.record:
            return
        room = self.record_limit - len(self.transcript)
        if room < len(payloads):
            self.records_dropped += len(payloads) - max(room, 0)
            payloads = payloads[: max(room, 0)]
        ts = time.monotonic_ns()
        self.transcript.extend([Record(ts, conn, S2C, p) for p in payloads])

    @property
    def sent(self) -> list[Record]:
        """Every recorded server → client message."""
        return [r for r in self.transcript if r.direction == S2C]

    @property
    def received(self) -> list[Record]:
        """Every recorded client → server message."""
        return [r for r in self.transcript if r.direction == C2S]

    def sent_to(self, conn: int) -> list[bytes]:
        return [r.data for r in self.transcript if r.direction == S2C and r.conn == conn]

    def received_from(self, conn: int) -> list[bytes]:
        return [r.data for r in self.transcript if r.direction == C2S and r.conn == conn]

    def clear_transcript(self) -> None:
        self.transcript.clear()
        self.records_dropped = 0

    # ------------------------------------------------------------------ subclass hooks

    def make_connection(self, request: WSUpgradeRequest, conn_id: int) -> SimConnection | None:
        """Return a listener for this upgrade request, or None for HTTP 404."""
        raise NotImplementedError

    def _listener_factory(self, request: WSUpgradeRequest) -> Any:
        self.upgrades_total += 1
        if self.upgrades_rejected < self.reject_first:
            self.upgrades_rejected += 1
            status = self.reject_upgrade_status
            body = f"{status} simulated rejection\n".encode()
            resp = WSUpgradeResponse.create_error_response(status, body)
            return WSUpgradeResponseWithListener(resp, None)
        return self.make_connection(request, next(self._conn_ids))


class SimConnection(WSListener):
    """One client connection. Subclasses implement the protocol hooks."""

    def __init__(self, server: SimServer, conn_id: int, path: str) -> None:
        super().__init__()
        self.server = server
        self.id = conn_id
        self.path = path
        self.rng = random.Random(f"{server.seed}:{server.kind}:{conn_id}")
        self.transport: WSTransport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connected_ns = 0
        self.closed = False  # close frame sent or TCP aborted
        self.disconnected = False
        self.stalled = False
        self.data_paused = False
        self.write_paused = False
        self.close_code_sent: int | None = None
        self.close_code_received: int | None = None
        self.frames_sent = 0  # data frames
        self.events_sent = 0
        self.messages_received = 0
        self.last_recv = 0.0
        self.last_send = 0.0
        self._pending: dict[str, Any] = {}  # one-shot injected faults
        self._relative: list[tuple[int, str, dict[str, Any]]] = []  # (at_frame, kind, kw)
        self._fragments: list[bytes] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._pump: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._resume: asyncio.Event | None = None
        self._pool_version = 0  # bump to make the flat-out sender rebuild its pool

    # ------------------------------------------------------------------ picows callbacks

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.connected_ns = time.monotonic_ns()
        self.last_recv = self.last_send = self.loop.time()
        self._wake = asyncio.Event()
        self._resume = asyncio.Event()
        self._resume.set()
        self.server.live[self.id] = self
        self.server.connections_total += 1
        try:
            transport.underlying_transport.set_write_buffer_limits(high=self.server.high_water)
        except (AttributeError, NotImplementedError, ValueError):
            pass  # a transport without write-buffer limits: its defaults apply
        self.on_open()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected = True
        self.closed = True
        self.server.live.pop(self.id, None)
        self.server.closed_connections.append(self)
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        if self._pump is not None:
            self._pump.cancel()
        if self._wake is not None:
            self._wake.set()
        if self._resume is not None:
            self._resume.set()
        self.on_close()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self._resume is not None:
            self._resume.clear()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._resume is not None:
            self._resume.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        if mt == WSMsgType.CLOSE:
            try:
                self.close_code_received = int(frame.get_close_code().value)
            except (AttributeError, TypeError, ValueError):  # no or non-standard close code
                self.close_code_received = None
            if not self.closed:
                self.closed = True
                transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        if mt == WSMsgType.PING or mt == WSMsgType.PONG:
            return
        if self.loop is not None:
            self.last_recv = self.loop.time()
        if mt == WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            data = b"".join(self._fragments)
            self._fragments.clear()
        elif not frame.fin:
            self._fragments = [frame.get_payload_as_bytes()]
            return
        else:
            data = frame.get_payload_as_bytes()
        self.messages_received += 1
        self.server._rec(self.id, C2S, data)
        limit = self.server.max_client_message
        if limit is not None and len(data) > limit:
            self.close(1009, "Message too big")
            return
        if self.stalled or self.closed:
            return
        self.on_message(data)

    # ------------------------------------------------------------------ protocol hooks

    def on_open(self) -> None:
        """Called once the websocket is up."""

    def on_close(self) -> None:
        """Called once the connection is gone."""

    def on_message(self, data: bytes) -> None:
        """Called for every complete client message (bytes)."""

    def has_data(self) -> bool:
        """True when the client is subscribed to something (the data pump runs)."""
        return False

    def build_data_frame(self, n_events: int, min_bytes: int = 0) -> tuple[bytes, int] | None:
        """Return (payload, events) for one data frame, or None when nothing is subscribed."""
        return None

    def frames_allowed(self) -> int | None:
        """Data frames this connection may still send (None = unlimited). The flat-out sender
        never writes past it (a chunk is split frame by frame near the limit)."""
        return None

    def _exhausted(self) -> bool:
        allowed = self.frames_allowed()
        return allowed is not None and allowed <= 0

    def malform(self, payload: bytes) -> bytes:
        """Turn a data frame into a malformed one."""
        return payload[: max(1, len(payload) // 2)]

    def error_message(self, message: str, **kw: Any) -> bytes | None:
        """The protocol's error message (None = protocol has none)."""
        return None

    def inject_extra(self, kind: str, kw: dict[str, Any]) -> bool:
        """Subclass-specific injected faults; return True when handled."""
        return False

    # ------------------------------------------------------------------ sending

    def send(self, payload: bytes) -> bool:
        """Send one control/text message (not counted as data). False when not sent."""
        if self.closed or self.stalled or self.transport is None:
            return False
        self.transport.send(WSMsgType.TEXT, payload)
        self.server._rec(self.id, S2C, payload)
        self.server.bytes_sent += len(payload)
        if self.loop is not None:
            self.last_send = self.loop.time()
        return True

    def send_data(self, payload: bytes, events: int) -> bool:
        """Send one data frame, count it, and fire frame-count faults."""
        if not self.send(payload):
            return False
        self._count_data(1, events)
        return True

    def _count_data(self, frames: int, events: int) -> None:
        self.frames_sent += frames
        self.events_sent += events
        srv = self.server
        srv.frames_sent += frames
        srv.events_sent += events
        self._check_triggers()

    def _check_triggers(self) -> None:
        n = self.frames_sent
        srv = self.server
        if self._relative:
            due = [r for r in self._relative if r[0] <= n]
            if due:
                self._relative = [r for r in self._relative if r[0] > n]
                for _, kind, kw in due:
                    self.inject(kind, **kw)
        if srv.error_after_frames is not None and n == srv.error_after_frames:
            self.inject("error")
        if srv.stall_after_frames is not None and n >= srv.stall_after_frames and not self.stalled:
            self.inject("stall")
        if srv.close_after_frames is not None and n >= srv.close_after_frames:
            self.close(srv.close_code, srv.close_reason)
        if srv.drop_after_frames is not None and n >= srv.drop_after_frames:
            self.abort()

    def _next_trigger_distance(self) -> int:
        """Data frames that may be sent before some frame-count fault must be evaluated."""
        srv = self.server
        n = self.frames_sent
        best = 1 << 62
        for v in (srv.close_after_frames, srv.drop_after_frames, srv.stall_after_frames,
                  srv.error_after_frames):
            if v is not None and v > n:
                best = min(best, v - n)
        for at, _, _ in self._relative:
            best = min(best, max(at - n, 1))
        if srv.malformed_every:
            m = srv.malformed_every
            best = min(best, m - (n % m))
        if self._pending:
            best = 1
        allowed = self.frames_allowed()
        if allowed is not None:
            best = min(best, max(allowed, 0))
        return best

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame with ``code`` and disconnect (idempotent)."""
        if self.closed or self.transport is None:
            return
        self.closed = True
        self.close_code_sent = code
        try:
            self.transport.send_close(_close_code(code), reason.encode() if reason else None)
            self.transport.disconnect()
        except (OSError, RuntimeError):
            pass  # the connection is already gone

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        if self.transport is None or self.disconnected:
            return
        self.closed = True
        try:
            self.transport.underlying_transport.abort()
        except (AttributeError, OSError, RuntimeError):
            self.transport.disconnect(graceful=False)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        assert self.loop is not None
        h = self.loop.call_later(delay, fn, *args)
        self._timers.append(h)
        if len(self._timers) > 64:
            self._timers = [t for t in self._timers if not t.cancelled()]
        return h

    def write_buffer_size(self) -> int:
        if self.transport is None:
            return 0
        try:
            return int(self.transport.underlying_transport.get_write_buffer_size())
        except (AttributeError, OSError, RuntimeError):
            return 0

    # ------------------------------------------------------------------ faults

    def inject(self, kind: str, **kw: Any) -> None:
        after = kw.pop("after_frames", None)
        if after is not None:
            self._relative.append((self.frames_sent + int(after), kind, kw))
            return
        if kind == "close":
            self.close(int(kw.get("code", self.server.close_code)),
                       str(kw.get("reason", self.server.close_reason)))
        elif kind == "drop":
            self.abort()
        elif kind == "stall":
            self.stalled = True
        elif kind == "unstall":
            self.stalled = False
            if self._wake is not None:
                self._wake.set()
        elif kind == "pause":
            self.data_paused = True
        elif kind == "resume":
            self.data_paused = False
            if self._wake is not None:
                self._wake.set()
        elif kind == "error":
            text = str(kw.pop("message", "simulated error"))
            msg = self.error_message(text, **kw)
            if msg is not None:
                self.send(msg)
        elif kind in ("malformed", "oversize"):
            self._pending[kind] = kw
        elif not self.inject_extra(kind, kw):
            raise ValueError(f"unknown fault {kind!r}")

    # ------------------------------------------------------------------ data pump

    def ensure_pump(self) -> None:
        """Start the data sender if the client is subscribed and it is not running yet."""
        self._pool_version += 1
        if self._wake is not None:
            self._wake.set()
        if self._pump is None and not self.closed and self.loop is not None:
            self._pump = self.loop.create_task(self._run_pump())

    def _next_frame(self, n_events: int) -> tuple[bytes, int] | None:
        srv = self.server
        min_bytes = srv.oversize_frame_bytes or 0
        over = self._pending.pop("oversize", None)
        if over is not None:
            min_bytes = max(min_bytes, int(over.get("bytes", 65 * 1024)))
        built = self.build_data_frame(n_events, min_bytes)
        if built is None:
            return None
        payload, events = built
        k = self.frames_sent + 1
        if self._pending.pop("malformed", None) is not None or (
            srv.malformed_every and k % srv.malformed_every == 0
        ):
            payload = self.malform(payload)
        return payload, events

    async def _idle(self) -> None:
        """Wait while stalled, paused or unsubscribed."""
        assert self._wake is not None
        while not self.closed and (self.stalled or self.data_paused or not self.has_data()
                                   or self._exhausted()):
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.25)
            except TimeoutError:
                pass

    async def _run_pump(self) -> None:
        try:
            while not self.closed:
                await self._idle()
                if self.closed:
                    return
                if self.server.rate is None:
                    await self._flat_out()
                else:
                    await self._paced()
        except asyncio.CancelledError:
            pass
        except (ConnectionError, RuntimeError, OSError):
            self.abort()

    async def _paced(self) -> None:
        """Send frames on a schedule of ``rate`` events/s (by events actually sent).

        The loop timer is coarse (about 1 ms), so at low rates the sender catches up in small
        bursts: the average rate is exact, single frames may be early by up to one timer tick.
        When frames are due at least every :data:`PRECISE_GAP` seconds, see :meth:`_paced_precise`.
        """
        assert self.loop is not None
        loop = self.loop
        srv = self.server
        rate = srv.rate
        epf = max(1, int(srv.events_per_frame))
        if rate is not None and rate > 0 and epf / rate <= PRECISE_GAP:
            await self._paced_precise(rate, epf)
            return
        next_t = loop.time()
        while not self.closed:
            if srv.rate is None or srv.rate != rate or max(1, int(srv.events_per_frame)) != epf:
                return  # mode changed: let _run_pump pick again
            if self.stalled or self.data_paused or not self.has_data():
                return
            if self._exhausted():
                return
            assert rate is not None
            if rate <= 0:
                await asyncio.sleep(0.05)
                next_t = loop.time()
                continue
            now = loop.time()
            if now < next_t:
                await asyncio.sleep(next_t - now)
                continue
            if now - next_t > 1.0:
                next_t = now - 1.0  # hopelessly behind: do not catch up more than 1 s
            burst = 0
            while next_t <= now and burst < srv.max_burst_frames:
                if self.closed or self.stalled or self.data_paused:
                    break
                allowed = self.frames_allowed()
                if allowed is not None and allowed <= 0:
                    break
                f = self._next_frame(epf)
                if f is None:
                    break
                self.send_data(f[0], f[1])
                self.after_data_sent()
                next_t += max(1, f[1]) / rate
                burst += 1
            await asyncio.sleep(0)

    async def _paced_precise(self, rate: float, epf: int) -> None:
        """The paced sender for sub-millisecond frame gaps: one frame at a time, on time.

        The wait before each frame is a ``time.sleep`` with 1 ns timer slack (the loop is
        blocked for at most :data:`PRECISE_GAP`; it runs between frames through
        ``asyncio.sleep(0)``), timed on ``time.monotonic()`` (uvloop's ``loop.time()`` moves in
        1 ms steps). A late frame is sent at once and the next ones follow back to back until
        the schedule is met, so the average rate stays exact.
        """
        srv = self.server
        _fine_timer_slack()
        clock = time.monotonic
        next_t = clock()
        while not self.closed:
            if srv.rate != rate or max(1, int(srv.events_per_frame)) != epf:
                return  # mode changed: let _run_pump pick again
            if self.stalled or self.data_paused or not self.has_data() or self._exhausted():
                return
            wait = next_t - clock()
            if wait > PRECISE_GAP:  # after a pause: the loop's timer for the coarse part
                await asyncio.sleep(wait - PRECISE_GAP)
                continue
            if wait > 0:
                time.sleep(wait)  # noqa: ASYNC251 - deliberate: the loop timer is too coarse
            elif wait < -1.0:
                next_t -= wait + 1.0  # hopelessly behind: do not catch up more than 1 s
            allowed = self.frames_allowed()
            if allowed is not None and allowed <= 0:
                return
            f = self._next_frame(epf)
            if f is None:
                await asyncio.sleep(0)
                return
            self.send_data(f[0], f[1])
            self.after_data_sent()
            next_t += max(1, f[1]) / rate
            await asyncio.sleep(0)

    def after_data_sent(self) -> None:
        """Hook after each paced data frame (e.g. slow-consumer checks)."""

    def on_write_stalled(self, seconds: float) -> None:
        """Hook: the flat-out sender has been paused by back-pressure for ``seconds``."""

    async def _flat_out(self) -> None:
        assert self.transport is not None and self._resume is not None
        srv = self.server
        tr = self.transport.underlying_transport
        version = -1
        pool: list[tuple[bytes, int]] = []
        wire: list[bytes] = []
        chunk = b""
        chunk_frames = 0
        chunk_events = 0
        chunk_payloads: list[bytes] = []
        pos = 0
        epf = max(1, int(srv.events_per_frame))
        while not self.closed:
            if srv.rate is not None or self.stalled or self.data_paused or not self.has_data():
                return
            if self.write_paused:
                t0 = time.monotonic()
                while self.write_paused and not self.closed:
                    try:
                        await asyncio.wait_for(self._resume.wait(), 0.1)
                    except TimeoutError:
                        self.on_write_stalled(time.monotonic() - t0)
                continue
            if version != self._pool_version or epf != max(1, int(srv.events_per_frame)):
                version = self._pool_version
                epf = max(1, int(srv.events_per_frame))
                pool = []
                for _ in range(max(1, srv.pool_frames)):
                    f = self.build_data_frame(epf, srv.oversize_frame_bytes or 0)
                    if f is None:
                        break
                    pool.append(f)
                if not pool:
                    return
                wire = [ws_text_frame(p) for p, _ in pool]
                pool_bytes = sum(len(w) for w in wire)
                reps = max(1, -(-srv.chunk_bytes // pool_bytes))
                chunk = b"".join(wire) * reps
                chunk_frames = len(pool) * reps
                chunk_events = sum(e for _, e in pool) * reps
                chunk_payloads = [p for p, _ in pool] * reps
                pos = 0
                await asyncio.sleep(0)
                continue
            limit = self._next_trigger_distance()
            if limit <= 0:
                return  # frames_allowed() exhausted
            if pos == 0 and limit >= chunk_frames:
                tr.write(chunk)
                srv.bytes_sent += len(chunk)
                srv._rec_many(self.id, chunk_payloads)
                self._count_data(chunk_frames, chunk_events)
            else:
                # near a fault: go frame by frame through the normal path
                n = min(limit, len(pool) - pos)  # never past the pool's wrap point
                for _ in range(n):
                    if self.closed or self.stalled:
                        break
                    payload, ev = pool[pos]
                    pos = (pos + 1) % len(pool)
                    k = self.frames_sent + 1
                    if self._pending.pop("malformed", None) is not None or (
                        srv.malformed_every and k % srv.malformed_every == 0
                    ):
                        payload = self.malform(payload)
                    over = self._pending.pop("oversize", None)
                    if over is not None:
                        big = self.build_data_frame(epf, int(over.get("bytes", 65 * 1024)))
                        if big is not None:
                            payload, ev = big
                    self.send_data(payload, ev)
            if self.loop is not None:
                self.last_send = self.loop.time()
            await asyncio.sleep(0)


def cli_rate(text: str) -> float | None:
    """``--rate`` of the simulators' command lines: a number, or 'max' (flat-out: ``None``)."""
    if text.lower() in ("max", "none", "null", "flat", "flat-out", "inf"):
        return None
    return float(text)


def add_common_cli_args(p: Any) -> None:
    """The fault-injection and run options every simulator's command line takes (an
    ``argparse.ArgumentParser``): the options left out reach the constructor as its defaults."""
    sup = argparse.SUPPRESS
    for flag in ("--close-after-frames", "--close-code", "--drop-after-frames",
                 "--stall-after-frames", "--malformed-every", "--reject-first"):
        p.add_argument(flag, type=int, default=sup)
    p.add_argument("--set", dest="opts", action="append", default=[], metavar="KEY=VALUE",
                   help="any constructor option (JSON value)")
    p.add_argument("--no-uvloop", action="store_true")


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (value as JSON when possible, else a string)."""
    import json

    out: dict[str, Any] = {}
    for p in pairs:
        key, sep, val = p.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {p!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(val)
        except ValueError:
            out[key.strip().replace("-", "_")] = val
    return out


# ---------------------------------------------------------------------------------------------
# running a simulator in a separate process


class SpawnedSim:
    """A simulator running in a child process (``python -m fastfeed.sim KIND ...``).

    Use as a context manager (the child is always terminated on exit, also on exceptions and
    KeyboardInterrupt) or call :meth:`start` / :meth:`stop`. ``url`` is read from the child's
    first stdout line.
    """

    def __init__(self, kind: str, options: dict[str, Any] | None = None, *,
                 startup_timeout: float = 15.0, quiet: bool = True,
                 python: str | None = None) -> None:
        self.kind = kind
        self.options = dict(options or {})
        self.startup_timeout = startup_timeout
        self.quiet = quiet
        self.python = python or sys.executable
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def port(self) -> int:
        return int(self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    @property
    def host_port(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0]

    def argv(self) -> list[str]:
        opts = dict(self.options)
        port = int(opts.pop("port", 0))
        args = [self.python, "-m", "fastfeed.sim", self.kind, "--port", str(port)]
        for k, v in opts.items():
            args += ["--set", f"{k}={json.dumps(v)}"]
        return args

    def start(self) -> SpawnedSim:
        if self.proc is not None:
            return self
        env = dict(os.environ)
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"]
                                        if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            self.argv(), stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if self.quiet else None, stdin=subprocess.DEVNULL,
            env=env)
        try:
            self.url = self._read_url()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_url(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.startup_timeout
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"simulator {self.kind!r} did not print its URL")
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if not r:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"simulator exited with code {self.proc.returncode}")
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"simulator exited (code {self.proc.wait(5)})")
            buf += chunk
            for line in buf.split(b"\n")[:-1]:
                text = line.decode(errors="replace").strip()
                if text.startswith(("ws://", "wss://")):
                    return text

    def stop(self, timeout: float = 5.0) -> int | None:
        """Terminate the child (SIGTERM, then SIGKILL after ``timeout``); return its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        return proc.returncode

    def __enter__(self) -> SpawnedSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


def spawn(kind: str, **options: Any) -> SpawnedSim:
    """Start simulator ``kind`` ("dxlink", "polygon", "account") in a child process.

    ``options`` are the server's constructor options (JSON-serialisable), e.g.
    ``spawn("dxlink", rate=None, events_per_frame=100, record=False)``. Returns a started
    :class:`SpawnedSim`; use it in a ``with`` block so the child is always stopped.
    """
    return SpawnedSim(kind, options).start()


def run_until_signal(server: SimServer, use_uvloop: bool,
                     summary: Callable[[SimServer], str]) -> int:
    """CLI runner: start ``server``, print its URL (the first stdout line), serve until SIGINT
    or SIGTERM, stop it and print ``summary(server)`` to stderr. Returns the exit code."""

    async def serve() -> None:
        import signal

        await server.start()
        print(server.url, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await stop.wait()
        finally:
            await server.stop()
            print(summary(server), file=sys.stderr, flush=True)

    runner: Any = asyncio.run
    if use_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    try:
        runner(serve())
    except KeyboardInterrupt:
        pass
    return 0
