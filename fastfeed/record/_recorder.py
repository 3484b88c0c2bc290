"""The recorder: raw capture and columnar records of a live streamer, written off the hot path.

Loop side (:class:`Recorder`): the transport appends every message to its C capture buffer
(no Python call per message); the recorder takes that buffer when the transport reports it full
(once per socket read at most) and on a timer, and drains one *weak* ring cursor per event type
(never holds the feed back) every ``flush_events`` events and on the timer. Each piece goes to
one writer thread through a queue bounded in bytes (``max_buffer_bytes``): when the disk cannot
keep up, the piece that does not fit is not queued; it is counted (``stats``) and logged at
most every 10 s, and the feed goes on. Write errors (disk full, file size limit) are counted the
same way; the segment is closed and the next write starts a new one.

Writer thread: raw blocks are compressed with zstd and appended to ``raw/raw-NNNNNN.ffraw``;
records of each type are gathered into batches of up to ``batch_rows`` rows (or what arrived in
``batch_seconds``) and appended to ``columns/<type>/seg-NNNNNN.arrows`` (Arrow IPC stream,
flushed per batch). Segments roll at ``roll_bytes`` or ``roll_seconds``; a closed columns
segment is compacted to ``.parquet`` (zstd) and its ``.arrows`` removed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import signal
import threading
import time
from typing import Any, Self

from fastfeed._version import __version__
from fastfeed.record._raw import RawWriter, redact

__all__ = ["META_FILE", "Recorder"]

log = logging.getLogger("fastfeed.record")

META_FILE = "meta.json"
_LOG_INTERVAL = 10.0


def _realtime_ns() -> int:
    return time.time_ns()


class _ColumnFile:
    """One event type's Arrow IPC segment (writer thread)."""

    def __init__(self, directory: str, wire: str, spec: Any, parquet: bool) -> None:
        self.directory = os.path.join(directory, wire)
        self.wire = wire
        self.spec = spec
        self.parquet = parquet
        from fastfeed.record._columns import ColumnBuffers

        self.buffers = ColumnBuffers(spec)
        self.pending: list[tuple[Any, int, Any, int]] = []
        self.pending_rows = 0
        self.first_pending = 0.0
        self._writer: Any = None
        self._sink: Any = None
        self._path = ""
        self.seg = 0
        self.seg_bytes = 0
        self.seg_start = 0.0
        os.makedirs(self.directory, exist_ok=True)
        self.seg = len([n for n in os.listdir(self.directory) if n.startswith("seg-")])

    def open(self, now: float) -> None:
        import pyarrow as pa

        self.seg += 1
        self._path = os.path.join(self.directory, f"seg-{self.seg:06d}.arrows")
        self._sink = pa.OSFile(self._path, "wb")
        opts = pa.ipc.IpcWriteOptions(emit_dictionary_deltas=True)
        schema = self.spec.schema.with_metadata({**self.spec.schema.metadata,
                                                 b"fastfeed.wire_type": self.wire.encode()})
        self._writer = pa.ipc.new_stream(self._sink, schema, options=opts)
        self.seg_bytes = 0
        self.seg_start = now

    def write(self, batch: Any, now: float, roll_bytes: int, roll_seconds: float | None) -> None:
        if self._writer is None or self.seg_bytes >= roll_bytes or (
                roll_seconds is not None and now - self.seg_start >= roll_seconds):
            self.close()
            self.open(now)
        before = self._sink.tell()
        try:
            self._writer.write_batch(batch)
            self._sink.flush()
        except BaseException:
            self._abandon()
            raise
        self.seg_bytes += self._sink.tell() - before

    def _abandon(self) -> None:
        """After a write error: drop the writer (the file keeps its complete batches)."""
        for obj in (self._writer, self._sink):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - already failing: the error is counted
                pass
        self._writer = None
        self._sink = None

    def close(self) -> None:
        if self._writer is None:
            return
        path = self._path
        try:
            self._writer.close()
            self._sink.close()
        finally:
            self._writer = None
            self._sink = None
        if self.parquet:
            compact(path)


def compact(arrows_path: str) -> str | None:
    """Convert one closed ``.arrows`` segment to ``.parquet`` (zstd); removes the ``.arrows``.

    Returns the Parquet path (None when the segment held no complete batch)."""
    import pyarrow.parquet as pq

    from fastfeed.record._read import read_arrows

    table = read_arrows(arrows_path)
    out = arrows_path[: -len(".arrows")] + ".parquet"
    if table is None or table.num_rows == 0:
        os.remove(arrows_path)
        return None
    tmp = out + ".tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out)
    os.remove(arrows_path)
    return out


class _Writer(threading.Thread):
    """The writer thread (see the module docstring)."""

    def __init__(self, rec: Recorder) -> None:
        super().__init__(name="fastfeed-recorder", daemon=True)
        self.rec = rec
        self.q: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.names: list[str] = [""]
        self._dict: Any = None
        self._dict_len = -1
        self.raw: RawWriter | None = None
        self.cols: dict[str, _ColumnFile] = {}
        self.cpu_ns = 0          # CPU time of the writer thread so far

    # -------------------------------------------------------------- thread side

    def run(self) -> None:
        rec = self.rec
        if rec.nice:
            try:   # Linux: per-thread niceness (the loop thread keeps its priority)
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), rec.nice)
            except (OSError, AttributeError):
                pass
        if rec.raw:
            self.raw = RawWriter(os.path.join(rec.path, "raw"), rec.header,
                                 roll_bytes=rec.roll_bytes, roll_seconds=rec.roll_seconds,
                                 level=rec.level)
        while True:
            try:
                item = self.q.get(timeout=rec.batch_seconds)
            except queue.Empty:
                self._flush_columns(time.monotonic(), force=False)
                continue
            kind = item[0]
            if kind == "stop":
                self._flush_columns(time.monotonic(), force=True)
                self._close_all()
                item[1].set()
                return
            if kind == "sync":
                self._flush_columns(time.monotonic(), force=True)
                item[1].set()
                continue
            size = item[-1]
            try:
                self._process(item)
            except Exception as exc:  # noqa: BLE001 - counted and logged; the writer goes on
                rec._write_failed(item, exc)
            finally:
                rec._dequeued(size)
                self.cpu_ns = time.thread_time_ns()

    def _process(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        now = time.monotonic()
        if kind == "raw":
            _, buf, n, count, _size = item
            assert self.raw is not None
            try:
                self.raw.write(memoryview(buf)[:n], count, now)
            except BaseException:
                self.raw.close()      # the next write starts a new segment
                raise
            finally:
                self.rec._raw_pool.put(buf)
            self.rec.n_raw_written += count
        elif kind == "syms":
            _, names, _size = item
            self.names.extend(names)
        elif kind == "cols":
            _, wire, layout, arr, n, spill, base, _size = item
            cf = self.cols.get(wire)
            if cf is None:
                from fastfeed.record._columns import spec_for

                cf = self.cols[wire] = _ColumnFile(os.path.join(self.rec.path, "columns"),
                                                   wire, spec_for(layout), self.rec.parquet)
            if not cf.pending:
                cf.first_pending = now
            cf.pending.append((arr, n, spill, base))
            cf.pending_rows += n
            if cf.pending_rows >= self.rec.batch_rows:
                self._write_pending(cf, now)
            else:
                self._flush_columns(now, force=False)

    def _dictionary(self) -> Any:
        import pyarrow as pa

        if self._dict_len != len(self.names):
            self._dict = pa.array(self.names, type=pa.string())
            self._dict_len = len(self.names)
        return self._dict

    def _write_pending(self, cf: _ColumnFile, now: float) -> None:
        pieces, rows = cf.pending, cf.pending_rows
        cf.pending, cf.pending_rows = [], 0
        try:
            n = cf.buffers.fill(pieces)
            for arr, _n, _s, _b in pieces:
                self.rec._recycle(cf.wire, arr)
            batch = cf.buffers.batch(n, self._dictionary(), cf.wire)
            cf.write(batch, now, self.rec.roll_bytes, self.rec.roll_seconds)
            del batch
        except Exception as exc:  # noqa: BLE001 - counted and logged; the writer goes on
            self.rec._count_lost("records", rows, exc)
            return
        self.rec.n_records_written += rows

    def _flush_columns(self, now: float, force: bool) -> None:
        for cf in self.cols.values():
            if cf.pending and (force or now - cf.first_pending >= self.rec.batch_seconds):
                self._write_pending(cf, now)

    def _close_all(self) -> None:
        if self.raw is not None:
            self.raw.close()
        for cf in self.cols.values():
            try:
                cf.close()
            except Exception as exc:  # noqa: BLE001 - counted and logged
                self.rec._count_error("closing columns segment", exc)


class Recorder:
    """Records a streamer (see the module docstring); made by ``streamer.record(path, ...)``.

    ``max_buffer_bytes`` bounds the data waiting for the writer (raw bytes + record bytes).

    ``Recorder(streamer, path, raw=True, columns=True, roll_bytes=256 MiB,
    roll_seconds=3600, max_buffer_bytes=64 MiB, flush_interval=0.2, flush_events=16384,
    batch_rows=65536, batch_seconds=1.0, level=1, parquet=True, nice=0)``; ``nice`` > 0 lowers
    the writer thread's scheduling priority (Linux) so that, on a busy machine, the feed gets
    the CPU first (if the writer then falls behind, what does not fit ``max_buffer_bytes`` is
    counted as dropped); ``level`` is the zstd level
    of the raw capture (1: about 1.4 GB/s and 16x on DXLink Quote frames here; 3: 0.85 GB/s,
    the same ratio).
    ``stats`` counts what was written and what was lost (never silently).
    """

    def __init__(self, streamer: Any, path: str | os.PathLike[str], *, raw: bool = True,
                 columns: bool = True, roll_bytes: int = 256 * 1024 * 1024,
                 roll_seconds: float | None = 3600.0, max_buffer_bytes: int = 64 * 1024 * 1024,
                 flush_interval: float = 0.2, flush_events: int = 16384,
                 batch_rows: int = 65536, batch_seconds: float = 1.0, level: int = 1,
                 parquet: bool = True, nice: int = 0) -> None:
        if not raw and not columns:
            raise ValueError("record at least one of raw, columns")
        # import now (fail now, and never stall the writer's first batch on an import)
        try:
            if columns:
                import numpy  # noqa: F401
                import pyarrow.ipc
                import pyarrow.parquet  # noqa: F401

                import fastfeed.record._columns  # noqa: F401
            if raw:
                import zstandard  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                f"recording needs numpy, pyarrow and zstandard ({exc}): "
                "pip install 'fastfeed[record]'") from exc
        self.streamer = streamer
        self.path = os.fspath(path)
        self.raw = raw
        self.columns = columns
        self.roll_bytes = int(roll_bytes)
        self.roll_seconds = roll_seconds
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.flush_interval = float(flush_interval)
        self.flush_events = int(flush_events)
        self.batch_rows = int(batch_rows)
        self.batch_seconds = float(batch_seconds)
        self.level = int(level)
        self.parquet = parquet
        self.nice = int(nice)
        core = streamer._core
        self._core = core
        self.header: dict[str, Any] = {
            "format": "fastfeed-recording", "version": 1, "fastfeed": __version__,
            "feed": str(core.feed_name), "streamer": type(streamer).__name__,
            "cluster": getattr(streamer, "_cluster", None), "created_ns": _realtime_ns(),
            "types": {w: r.layout for w, r in core.rings.items()},
        }
        self._lock = threading.Lock()
        self._queued = 0
        self._conn = 0
        self._consumers: dict[str, Any] = {}
        self._sym_sent = 0
        self._last_events = 0
        self._timer: asyncio.TimerHandle | None = None
        self._listeners: list[Any] = []
        self._cap_drops: dict[int, int] = {}     # id(listener) -> capture drops counted
        # reused buffers (loop thread takes, writer thread gives back): no page faults per take
        self._raw_flush = min(1 << 20, self.max_buffer_bytes // 4)   # swap at this fill
        self._raw_chunk = max(4 << 20, 4 * self._raw_flush)     # + one socket read of room
        self._raw_pool: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._col_chunk = 16384
        self._col_pools: dict[str, queue.SimpleQueue[Any]] = {}
        self._closed = False
        self._last_log = 0.0
        # counters
        self.n_raw_messages = 0       # messages handed to the writer
        self.n_raw_written = 0
        self.n_records = 0            # records handed to the writer
        self.n_records_written = 0
        self.n_dropped_messages = 0   # not written: capture buffer full, queue full, disk error
        self.n_dropped_records = 0
        self.n_dropped_bytes = 0
        self.n_errors = 0
        os.makedirs(self.path, exist_ok=True)
        with open(os.path.join(self.path, META_FILE), "w") as f:
            json.dump(self.header, f)
        _ignore_sigxfsz()
        self._writer = _Writer(self)
        self._writer.start()
        if columns:
            for wire, ring in core.rings.items():
                self._consumers[wire] = ring.consumer(weak=True)
            self._last_events = int(core.n_events)
        self._schedule()

    # -------------------------------------------------------------- hooks (loop thread)

    def attach(self, listener: Any) -> None:
        """A new connection's listener (called before it receives anything)."""
        if self._closed:
            return
        self._schedule()
        if not self.raw:
            return
        self._conn += 1
        listener.start_capture(self._raw_buffer(), self._raw_flush, self._take_raw_all, redact)
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
        """Once per socket read with news: drain the columns every ``flush_events`` events."""
        if self._consumers and int(self._core.n_events) - self._last_events >= self.flush_events:
            self._drain_columns()

    # -------------------------------------------------------------- loop side

    def _schedule(self) -> None:
        if self._timer is not None or self._closed:
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
        """Hand everything captured so far to the writer thread (loop thread)."""
        self._take_raw_all()
        if self._consumers:
            self._drain_columns()

    def _take_raw_all(self) -> None:
        for listener in self._listeners:
            self._take_raw(listener, stop=False)

    def _raw_buffer(self) -> bytearray:
        try:
            return self._raw_pool.get_nowait()
        except queue.Empty:
            return bytearray(self._raw_chunk)

    def _take_raw(self, listener: Any, stop: bool) -> None:
        """Swap a fresh buffer into the listener (no copy) and queue the full one."""
        dropped = int(listener.n_capture_dropped)
        if stop:
            buf, n, count = listener.stop_capture()
        elif listener.capture_len:
            buf, n, count = listener.swap_capture(self._raw_buffer())
        else:
            return
        self._note_capture_drops(listener, dropped)
        if buf is None:
            return
        if n:
            self.n_raw_messages += count
            self._put(("raw", buf, n, count, n), count, "messages")
        else:
            self._raw_pool.put(buf)

    def _note_capture_drops(self, listener: Any, dropped: int) -> None:
        prev = self._cap_drops.get(id(listener), 0)
        if dropped > prev:
            self._cap_drops[id(listener)] = dropped
            self.n_dropped_messages += dropped - prev
            self._warn(f"capture buffer full: {dropped - prev} messages not recorded")

    def _drain_columns(self) -> None:
        core = self._core
        self._last_events = int(core.n_events)
        symbols = core.symbols
        n_sym = len(symbols)
        if n_sym > self._sym_sent:
            names = [symbols[i] for i in range(self._sym_sent + 1, n_sym + 1)]
            self._sym_sent = n_sym
            self._writer.q.put(("syms", names, 0))    # never dropped: later batches need them
        for wire, cons in self._consumers.items():
            while cons.available:
                arr = self._buffer_for(wire, cons.ring.layout)
                n, gaps, spill, base = cons.drain_into(arr)
                if gaps:
                    self.n_dropped_records += gaps
                    self._warn(f"{wire}: the recorder fell a ring behind; {gaps} records lost")
                if not n:
                    self._recycle(wire, arr)
                    break
                self.n_records += n
                size = n * arr.itemsize + (len(spill) if spill is not None else 0)
                self._put(("cols", wire, cons.ring.layout, arr, n, spill, base, size), n,
                          "records")

    def _buffer_for(self, wire: str, layout: str) -> Any:
        """A records buffer of ``wire`` from its pool (reused: no page faults per drain)."""
        pool = self._col_pools.get(wire)
        if pool is None:
            pool = self._col_pools[wire] = queue.SimpleQueue()
        try:
            return pool.get_nowait()
        except queue.Empty:
            import numpy as np

            from fastfeed.records import dtype_for

            return np.empty(self._col_chunk, dtype=dtype_for(layout))

    def _recycle(self, wire: str, arr: Any) -> None:
        self._col_pools[wire].put(arr)

    def _put(self, item: tuple[Any, ...], count: int, what: str) -> None:
        size = int(item[-1])
        with self._lock:
            if self._queued + size > self.max_buffer_bytes:
                full = True
            else:
                full = False
                self._queued += size
        if full:
            if item[0] == "raw":
                self._raw_pool.put(item[1])
            else:
                self._recycle(item[1], item[3])
            self.n_dropped_bytes += size
            if what == "messages":
                self.n_dropped_messages += count
            else:
                self.n_dropped_records += count
            self._warn(f"disk not keeping up: {count} {what} not recorded")
            return
        self._writer.q.put(item)

    # -------------------------------------------------------------- writer-thread callbacks

    def _dequeued(self, size: int) -> None:
        with self._lock:
            self._queued -= size

    def _write_failed(self, item: tuple[Any, ...], exc: BaseException) -> None:
        if item[0] == "raw":
            self._count_lost("messages", int(item[3]), exc, nbytes=int(item[2]))
        else:
            self._count_error("writing", exc)

    def _count_lost(self, what: str, n: int, exc: BaseException, nbytes: int = 0) -> None:
        if what == "messages":
            self.n_dropped_messages += n
        else:
            self.n_dropped_records += n
        self.n_dropped_bytes += nbytes
        self._count_error(f"{n} {what} not recorded", exc)

    def _count_error(self, what: str, exc: BaseException) -> None:
        self.n_errors += 1
        self._warn(f"{what}: {type(exc).__name__}: {exc}")

    def _warn(self, msg: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= _LOG_INTERVAL:
            self._last_log = now
            log.warning("recorder %s: %s (totals: %s)", self.path, msg, self.stats)

    # -------------------------------------------------------------- public

    @property
    def stats(self) -> dict[str, int]:
        """What was handed to the writer, written, and lost (never silently)."""
        out = {"raw_messages": self.n_raw_messages, "raw_written": self.n_raw_written,
               "records": self.n_records, "records_written": self.n_records_written,
               "dropped_messages": self.n_dropped_messages,
               "dropped_records": self.n_dropped_records,
               "dropped_bytes": self.n_dropped_bytes, "errors": self.n_errors,
               "queued_bytes": self._queued, "writer_cpu_ns": self._writer.cpu_ns}
        raw = self._writer.raw
        if raw is not None:
            out["raw_bytes"] = raw.bytes_in
            out["raw_file_bytes"] = raw.bytes_out
        return out

    def sync(self, timeout: float = 30.0) -> None:
        """Flush and wait until the writer thread has written everything queued (blocking)."""
        self.flush()
        ev = threading.Event()
        self._writer.q.put(("sync", ev))
        ev.wait(timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Write everything, close (and compact) the segments, stop the thread. Idempotent."""
        if self._closed:
            return
        self.flush()
        for listener in list(self._listeners):
            self.detach(listener)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for cons in self._consumers.values():
            cons.close()
        ev = threading.Event()
        self._writer.q.put(("stop", ev))
        ev.wait(timeout)
        if getattr(self.streamer, "_recorder", None) is self:
            self.streamer._recorder = None

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop while the writer finishes."""
        if self._closed:
            return
        self.flush()
        for listener in list(self._listeners):
            self.detach(listener)
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _ignore_sigxfsz() -> None:
    """A write past RLIMIT_FSIZE raises EFBIG (counted) instead of killing the process."""
    sig = getattr(signal, "SIGXFSZ", None)
    if sig is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
