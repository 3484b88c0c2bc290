"""The recorder: raw capture and columnar records of a live streamer, written off the hot path
by a writer *process* (:mod:`fastfeed.record._writer`): compressing, building Arrow columns and
writing never hold the feed process's GIL, so the event loop never waits for them.

Feed side (:class:`Recorder`, on the event loop): the data goes through a shared-memory arena
of ``max_buffer_bytes`` cut into slots. The transport appends every message to a capture slot
in C (no Python call per message); the recorder hands the slot over when the transport reports
it half full (once per socket read at most) or on a timer, and swaps a free one in. The
columns are captured the same way, by the rings themselves (a :class:`RecordSink`, fastfeed/
ring.h "Capture"): each publish appends its records, still in L1, to a columns slot (chunks of
records of one type); the recorder hands the slot over once it holds ``flush_events`` records or
is half full (checked once per socket read with news), or on the timer. No ring cursor: the
rings keep restarting at their first slot (``ff_ring_rebase``), so nothing is read back cold.
A message on a Unix socket tells the writer which slot holds what; it gives the slot back once
written.

Never blocking: when no slot is free (the writer or the disk cannot keep up), the capture
buffers fill and the messages and records that do not fit are not captured; both are counted
(``stats``: ``dropped_messages``, ``dropped_records``) and logged at most every 10 s, and the
feed goes on. Write errors (disk full, file size limit) are counted
the same way by the writer; the segment is closed and the next write starts a new one.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import mmap
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Self

from fastfeed._native.ring import RecordSink
from fastfeed._version import __version__
from fastfeed.record._raw import COMPRESS_MODES, redact
from fastfeed.record._writer import FrameReader, pack

__all__ = ["META_FILE", "Recorder"]

log = logging.getLogger("fastfeed.record")

META_FILE = "meta.json"
_LOG_INTERVAL = 10.0
_CHILD = ("import sys; from fastfeed.record._writer import serve; "
          "sys.exit(serve(int(sys.argv[1]), int(sys.argv[2])))")
_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _realtime_ns() -> int:
    return time.time_ns()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _map(fd: int, size: int) -> mmap.mmap:
    """Map the arena with its pages allocated now (Linux ``MAP_POPULATE``), not on first touch
    by the feed's event loop (a page fault per 4 KiB written otherwise)."""
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    return mmap.mmap(fd, size, flags=flags)


def _arena_fd(size: int) -> int:
    """An anonymous shared-memory file of ``size`` bytes (nothing left behind by a crash)."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        fd = int(memfd("fastfeed-record", 0))
    else:                                   # not Linux: an unlinked temporary file
        fd, name = tempfile.mkstemp(prefix="fastfeed-record-")
        os.unlink(name)
    os.ftruncate(fd, size)
    return fd


class Recorder:
    """Records a streamer (see the module docstring); made by ``streamer.record(path, ...)``.

    ``Recorder(streamer, path, raw=True, columns=True, roll_bytes=256 MiB,
    roll_seconds=3600, max_buffer_bytes=64 MiB, flush_interval=0.2, flush_events=16384,
    batch_rows=65536, batch_seconds=1.0, level=1, raw_compress="roll", parquet=True, nice=0)``.
    ``max_buffer_bytes`` bounds the data waiting for the writer (raw bytes + record bytes);
    ``nice`` > 0 lowers the writer process's scheduling priority, so that on a machine short of
    cores the feed gets the CPU first (if the writer then falls behind, what does not fit
    ``max_buffer_bytes`` is counted as dropped); ``level`` is the zstd level of the raw capture
    (on DXLink Quote frames that do not repeat, on a busy 2-core VM: 1, about 500 MB/s and 4x;
    3: 350 MB/s, the same ratio; -5: 700 MB/s, 2.4x; -10: 860 MB/s, 1.9x).
    ``raw_compress``: ``"roll"`` writes the raw capture uncompressed into the open segment
    (``O_DIRECT`` where it can: ~12 ns of the writer's CPU per Quote) and compresses each closed
    segment in the background at the lowest priority (the writer keeps up with the socket; the
    disk holds up to ``roll_bytes`` uncompressed per segment not yet compressed); ``"inline"``
    compresses each block as it is written (a writer that cannot keep up loses messages,
    counted). ``discard=True`` makes the writer drop what it is handed (the bench's measure of
    what the hand-over alone costs the feed). ``stats`` counts what was written and what was
    lost (never silently).
    Records a websocket streamer (made by its ``record()``: raw and columns) or any other
    streamer over a decoder core, e.g. a hub consumer: ``Recorder(fastfeed.hub.connect(url),
    path, raw=False)`` records the columns of what it receives (close it with ``aclose()``).
    """

    _SLOT_MAX = 4 << 20     # bytes per arena slot at most

    def __init__(self, streamer: Any, path: str | os.PathLike[str], *, raw: bool = True,
                 columns: bool = True, roll_bytes: int = 256 * 1024 * 1024,
                 roll_seconds: float | None = 3600.0, max_buffer_bytes: int = 64 * 1024 * 1024,
                 flush_interval: float = 0.2, flush_events: int = 16384,
                 batch_rows: int = 65536, batch_seconds: float = 1.0, level: int = 1,
                 raw_compress: str = "roll", parquet: bool = True, nice: int = 0, discard: bool = False) -> None:
        if not raw and not columns:
            raise ValueError("record at least one of raw, columns")
        if raw_compress not in COMPRESS_MODES:
            raise ValueError(f"raw_compress must be one of {COMPRESS_MODES}, "
                             f"not {raw_compress!r}")
        need = (["numpy", "pyarrow"] if columns else []) + (["zstandard"] if raw else [])
        missing = [m for m in need if not _installed(m)]
        if missing:
            raise ImportError(f"recording needs numpy, pyarrow and zstandard (missing: "
                              f"{', '.join(missing)}): pip install 'fastfeed[record]'")
        if raw and hasattr(streamer, "hub_name"):
            raise ValueError(f"{type(streamer).__name__} has no websocket to capture (a hub "
                             "consumer): record it with raw=False")
        self.streamer = streamer
        self.path = os.fspath(path)
        self.raw = raw
        self.columns = columns
        self.flush_interval = float(flush_interval)
        self.flush_events = int(flush_events)
        core = streamer._core
        self._core = core
        self.header: dict[str, Any] = {
            "format": "fastfeed-recording", "version": 1, "fastfeed": __version__,
            "feed": str(core.feed_name), "streamer": type(streamer).__name__,
            "cluster": getattr(streamer, "_cluster", None), "created_ns": _realtime_ns(),
            "types": {w: r.layout for w, r in core.rings.items()},
        }
        # the arena: slots of up to 4 MiB (a raw slot is handed over half full, so a socket
        # read always fits after the threshold); at least 4 slots
        total = max(int(max_buffer_bytes), 4 * 65536)
        self._slot = min(self._SLOT_MAX, max(65536, (total // 4) & ~4095))
        self._nslots = total // self._slot
        self._flush_bytes = self._slot // 2   # a slot (raw or columns) is handed over half full
        self._free: list[int] = list(range(self._nslots - 1, -1, -1))
        self._fd = _arena_fd(self._nslots * self._slot)
        self._mm = _map(self._fd, self._nslots * self._slot)
        self._arena = memoryview(self._mm)
        self._views = [self._arena[i * self._slot:(i + 1) * self._slot]
                       for i in range(self._nslots)]
        self._slot_of = {id(v): i for i, v in enumerate(self._views)}
        self._conn = 0
        self._sink: RecordSink | None = None     # the columns capture (None: raw only)
        self._tags: list[tuple[str, str, int]] = []   # by sink tag: wire, layout, record size
        self._cols_slot: int | None = None           # the slot the sink captures into
        self._sym_sent = 0
        self._timer: asyncio.TimerHandle | None = None
        self._listeners: list[Any] = []
        self._cap_drops: dict[int, int] = {}     # id(listener) -> capture drops counted
        self._closed = False
        self._stopping = False
        self._last_log = 0.0
        self._out = bytearray()
        self._reader = FrameReader()
        self._synced = 0
        self._sync_seq = 0
        self._dead = False
        self._ready = False
        self._child_stats: dict[str, Any] = {}
        self._reported = {"dropped_messages": 0, "dropped_records": 0, "errors": 0}
        self.writer_pid = 0
        # counters (feed side)
        self.n_raw_messages = 0       # messages handed to the writer
        self.n_records = 0            # records handed to the writer
        self.n_dropped_messages = 0   # not handed over: capture buffer full
        self.n_dropped_records = 0    # not handed over: spilled values lost meanwhile
        self.n_dropped_bytes = 0
        os.makedirs(self.path, exist_ok=True)
        with open(os.path.join(self.path, META_FILE), "w") as f:
            json.dump(self.header, f)
        self._sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        pp = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = _PKG_PARENT + (os.pathsep + pp if pp else "")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(self._fd), str(child.fileno())],
                pass_fds=(self._fd, child.fileno()), env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL)
        finally:
            child.close()
        self.writer_pid = self._proc.pid
        self._sock.setblocking(False)
        self._send(("config", {
            "path": self.path, "header": self.header, "raw": raw, "columns": columns,
            "roll_bytes": int(roll_bytes), "roll_seconds": roll_seconds,
            "batch_rows": int(batch_rows), "batch_seconds": float(batch_seconds),
            "level": int(level), "raw_compress": raw_compress, "parquet": bool(parquet), "nice": int(nice),
            "slot_bytes": self._slot, "arena_bytes": self._nslots * self._slot,
            "discard": bool(discard)}))
        # the columns slot is handed over when the streamer wakes its consumers (every
        # streamer calls ``_on_wake_data`` when records arrived)
        self._own_hook = "_on_wake_data" in getattr(streamer, "__dict__", {})
        self._hooked: Any = streamer._on_wake_data

        def wake() -> None:
            self.on_wake()
            self._hooked()

        self._wake = wake
        streamer._on_wake_data = wake
        if columns:
            self._sink = RecordSink()
            for wire, ring in core.rings.items():
                self._sink.attach(ring)
                self._tags.append((wire, ring.layout, ring.record_size))
            self._hand_cols()           # the first slot
        self._schedule()

    # -------------------------------------------------------------- hooks (loop thread)

    def attach(self, listener: Any) -> None:
        """A new connection's listener (called before it receives anything)."""
        if self._closed or self._stopping:
            return
        self._schedule()
        if not self.raw:
            return
        self._conn += 1
        slot = self._take_slot()
        if slot is None:
            self._warn("no free buffer for the raw capture of a new connection")
            return
        listener.start_capture(self._views[slot], self._flush_bytes, self._take_raw_all,
                               redact)
        note = {"event": "open", "conn": self._conn}
        listener.capture_note(json.dumps(note).encode())
        self._listeners.append(listener)

    def detach(self, listener: Any) -> None:
        """The connection of ``listener`` ended: write what it captured and a close note."""
        if listener not in self._listeners:
            return
        self._listeners.remove(listener)
        note = {"event": "close", "conn": self._conn, "code": listener.close_code,
                "reason": listener.close_reason}
        listener.capture_note(json.dumps(note).encode())
        self._take_raw(listener, stop=True)

    def on_wake(self) -> None:
        """Once per socket read with news: hand the columns slot over once it holds
        ``flush_events`` records or half its bytes."""
        sink = self._sink
        if sink is not None and (sink.nbytes >= self._flush_bytes
                                 or sink.records >= self.flush_events):
            self._hand_cols()

    # -------------------------------------------------------------- loop side

    def _schedule(self) -> None:
        if self._timer is not None or self._closed or self._stopping:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(self.flush_interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.flush()
        self._schedule()

    def flush(self) -> None:
        """Hand everything captured so far to the writer (loop thread)."""
        self._poll()
        self._take_raw_all()
        self._hand_cols()

    def _take_raw_all(self) -> None:
        for listener in self._listeners:
            self._take_raw(listener, stop=False)

    def _take_slot(self) -> int | None:
        """A free slot, the one freed last first: the fewer slots in use, the more of the
        arena stays in the caches (copying into a cold slot costs the loop ~4x more)."""
        self._poll()
        if not self._free or self._dead:
            return None
        return self._free.pop()

    def _take_raw(self, listener: Any, stop: bool) -> None:
        """Swap a free slot into the listener (no copy) and hand the full one over."""
        dropped = int(listener.n_capture_dropped)
        self._note_capture_drops(listener, dropped)
        if stop:
            buf, n, count = listener.stop_capture()
        elif listener.capture_len:
            slot = self._take_slot()
            if slot is None:      # the capture goes on in the same slot until it is full
                return
            buf, n, count = listener.swap_capture(self._views[slot])
        else:
            return
        if buf is None:
            return
        old = self._slot_of[id(buf)]
        if n:
            self.n_raw_messages += count
            self._send(("raw", old, n, count))
        else:
            self._free.append(old)

    def _note_capture_drops(self, listener: Any, dropped: int) -> None:
        prev = self._cap_drops.get(id(listener), 0)
        if dropped > prev:
            self._cap_drops[id(listener)] = dropped
            self.n_dropped_messages += dropped - prev
            self._warn(f"writer not keeping up: {dropped - prev} messages not recorded")

    def _hand_cols(self, stop: bool = False) -> None:
        """Swap a free slot into the columns sink (no copy) and hand the full one over (with
        ``stop``: end the capture and hand over what it holds)."""
        sink = self._sink
        if sink is None:
            return
        slot = None
        if stop:
            _, nbytes, records, parts = sink.close()
        else:
            if self._cols_slot is not None and not sink.records:
                return
            slot = self._take_slot()
            if slot is None:     # the capture goes on in the same slot until it is full
                return
            _, nbytes, records, parts = sink.swap(self._views[slot])
        old, self._cols_slot = self._cols_slot, slot
        if old is None:
            return
        pieces = []
        lost = 0
        for tag, (n, spill, base, gone) in enumerate(parts):
            if gone:         # its spill may be overwritten: counted, not written
                lost += n
            elif n:
                pieces.append((tag, *self._tags[tag][:2], n, spill, base))
        if lost:
            self.n_dropped_records += lost
            self._warn(f"{lost} records not recorded: their spilled values were overwritten "
                       "while no buffer was free")
        if not pieces:
            self._free.append(old)
            return
        symbols = self._core.symbols
        n_sym = len(symbols)
        if n_sym > self._sym_sent:
            names = [symbols[i] for i in range(self._sym_sent + 1, n_sym + 1)]
            self._sym_sent = n_sym
            self._send(("syms", names))     # never dropped: later batches need them
        self.n_records += records - lost
        self._send(("cols", old, nbytes, pieces, [t[2] for t in self._tags]))

    # -------------------------------------------------------------- the writer's socket

    def _send(self, msg: Any) -> None:
        if self._dead:
            return
        self._out += pack(msg)
        self._flush_out()

    def _flush_out(self) -> None:
        while self._out:
            try:
                sent = self._sock.send(self._out)
            except BlockingIOError:
                return
            except OSError as exc:
                self._writer_died(exc)
                return
            del self._out[:sent]

    def _poll(self) -> None:
        """Take the writer's answers (freed slots, its counters) without blocking."""
        if self._out:
            self._flush_out()
        while not self._dead:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                self._writer_died(exc)
                return
            if not data:
                self._writer_died(None)
                return
            for msg in self._reader.feed(data):
                self._on_message(msg)

    def _on_message(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "free":
            self._free.append(msg[1])
            self._child_stats = msg[2]
        elif kind == "ready":
            self._ready = True
            self._child_stats = msg[2]
        elif kind == "synced":
            self._synced = max(self._synced, msg[1])
            self._child_stats = msg[2]
        elif kind == "closed":
            self._child_stats = msg[1]
            self._dead = True
        st = self._child_stats
        new = {k: int(st.get(k, 0)) - v for k, v in self._reported.items()}
        if any(v > 0 for v in new.values()):
            self._reported = {k: int(st.get(k, 0)) for k in self._reported}
            self._warn(f"{new['dropped_messages']} messages, {new['dropped_records']} records "
                       f"not recorded ({st.get('last_error')})")

    def _writer_died(self, exc: BaseException | None) -> None:
        if self._dead:
            return
        self._dead = True
        if not self._stopping:
            self._count_error_once(f"the writer process ended ({exc or 'closed'}); "
                                   "what follows is not recorded")

    def _count_error_once(self, what: str) -> None:
        self._last_log = 0.0
        self._warn(what)

    def _wait(self, done: Any, timeout: float) -> bool:
        """Block (this thread) until ``done()`` or ``timeout`` s, sending what is queued for
        the writer and reading its answers (both at once: neither side can block the other)."""
        deadline = time.monotonic() + timeout
        while not done() and not self._dead:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, writable, _ = select.select(
                [self._sock], [self._sock] if self._out else [], [], min(left, 1.0))
            if writable:
                self._flush_out()
            if readable:
                self._poll()
        return bool(done())

    def _warn(self, msg: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= _LOG_INTERVAL:
            self._last_log = now
            log.warning("recorder %s: %s (totals: %s)", self.path, msg, self.stats)

    # -------------------------------------------------------------- public

    @property
    def stats(self) -> dict[str, int]:
        """What was handed to the writer, written, and lost (never silently)."""
        if not self._closed:
            self._poll()
        st = self._child_stats
        out = {"raw_messages": self.n_raw_messages, "raw_written": int(st.get("raw_written", 0)),
               "records": self.n_records,
               "records_written": int(st.get("records_written", 0)),
               "dropped_messages": self.n_dropped_messages + int(st.get("dropped_messages", 0)),
               "dropped_records": self.n_dropped_records
               + (self._sink.dropped if self._sink is not None else 0)
               + int(st.get("dropped_records", 0)),
               "dropped_bytes": self.n_dropped_bytes + int(st.get("dropped_bytes", 0)),
               "errors": int(st.get("errors", 0)),
               "queued_bytes": (self._nslots - len(self._free)) * self._slot,
               "writer_cpu_ns": int(st.get("writer_cpu_ns", 0))}
        if self.raw:
            out["raw_bytes"] = int(st.get("raw_bytes", 0))
            out["raw_file_bytes"] = int(st.get("raw_file_bytes", 0))
        return out

    def sync(self, timeout: float = 30.0) -> bool:
        """Flush and wait until the writer has written everything handed over (blocking);
        False if it did not answer within ``timeout`` seconds."""
        self.flush()
        self._sync_seq += 1
        seq = self._sync_seq
        self._send(("sync", seq))
        return self._wait(lambda: self._synced >= seq, timeout)

    def _stop(self) -> None:
        """Loop side of closing: hand everything over, end the captures, tell the writer."""
        if self._stopping:
            return
        self.flush()
        self._hand_cols(stop=True)
        for listener in list(self._listeners):
            self.detach(listener)
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.streamer.__dict__.get("_on_wake_data") is self._wake:    # unhook
            if self._own_hook:
                self.streamer._on_wake_data = self._hooked
            else:
                del self.streamer._on_wake_data
        self._send(("stop",))

    def _finish(self, timeout: float) -> None:
        """Wait (blocking) for the writer to close its segments, then release everything."""
        if self._closed:
            return
        self._wait(lambda: self._dead, timeout)
        try:
            self._proc.wait(max(1.0, timeout / 10))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            self._count_error_once("the writer process did not finish in time: killed")
        self._closed = True
        self._sock.close()
        os.close(self._fd)          # the mapping stays until the views are gone
        try:
            for v in self._views:
                v.release()
            self._arena.release()
            self._mm.close()
        except BufferError:         # a slot still held (a capture never stopped): the
            pass                    # garbage collector unmaps it once released
        if getattr(self.streamer, "_recorder", None) is self:
            self.streamer._recorder = None

    def close(self, timeout: float = 60.0) -> None:
        """Write everything, close (and compact) the segments, stop the writer. Idempotent."""
        self._stop()
        self._finish(timeout)

    async def aclose(self, timeout: float = 60.0) -> None:
        """``close()`` without blocking the event loop while the writer finishes."""
        self._stop()
        if not self._closed:
            await asyncio.get_running_loop().run_in_executor(None, self._finish, timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
