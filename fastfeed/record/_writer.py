"""The recorder's writer process: compresses the raw capture, builds the Arrow columns, writes
and compacts the segments -- with its own interpreter, so nothing it does holds the feed
process's GIL (:func:`serve`, run in a child interpreter started by
:class:`fastfeed.record.Recorder`).

The feed process hands data over in a shared-memory arena (an anonymous ``memfd``) cut into
slots: a slot holds a raw capture buffer (the transport's capture records) or the records the
rings captured as they published them (``RecordSink``: chunks of one type's records). Messages on a Unix socket (``<u32 length><pickle>``) say which
slot holds what; the writer answers ``("free", slot, stats)`` once a slot's bytes are written
(raw) or gathered into its column buffers (records), so the feed process reuses it. When the
feed process goes away (closed socket: ``stop``, or a crash), the writer writes what it holds,
closes its segments and exits: a killed feed process loses only what was not handed over yet.

Raw: each slot becomes one block of ``raw/raw-NNNNNN.ffraw`` (:mod:`._raw`): written as it is,
straight from the arena with ``O_DIRECT`` where the file system takes it, and the closed segment
compressed to zstd by the background thread (``raw_compress="roll"``, the default), or
compressed as it is written (``"inline"``). Columns: records of each type are gathered into
batches of up to ``batch_rows`` rows (or what arrived in ``batch_seconds``) and appended to
``columns/<type>/seg-NNNNNN.arrows`` (Arrow IPC stream, flushed per batch). Segments roll at
``roll_bytes`` or ``roll_seconds``; a closed columns segment is compacted to ``.parquet`` (zstd)
by a second thread at the lowest priority (Linux), the one that compresses closed raw segments,
so the writer goes on meanwhile. Write errors (disk full, file size limit) are counted and
reported; the segment is closed and the next write starts a new one.
"""

from __future__ import annotations

import mmap
import os
import pickle
import queue
import signal
import socket
import struct
import threading
import time
from typing import Any

from fastfeed.record._raw import RawWriter, compress_segment

__all__ = ["FrameReader", "compact", "pack"]

_LEN = struct.Struct("<I")


def pack(msg: Any) -> bytes:
    """One message of the recorder's socket protocol."""
    body = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(body)) + body


class FrameReader:
    """Splits the bytes read from the socket into messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if len(buf) - pos - 4 < n:
                break
            out.append(pickle.loads(bytes(buf[pos + 4:pos + 4 + n])))   # our own child's bytes
            pos += 4 + n
        del buf[:pos]
        return out


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
    pq.write_table(table, tmp, compression="zstd", compression_level=1)   # 2x level 3's speed,
                                                                          # the same size here
    os.replace(tmp, out)
    os.remove(arrows_path)
    return out


class _ColumnFile:
    """One event type's Arrow IPC segment and its batch being gathered."""

    def __init__(self, directory: str, wire: str, layout: str, compactor: _Compactor | None,
                 ) -> None:
        from fastfeed.record._columns import ColumnBuffers, spec_for

        self.directory = os.path.join(directory, wire)
        self.wire = wire
        self.spec = spec_for(layout)
        self.compactor = compactor
        self.buffers = ColumnBuffers(self.spec)
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
        if self.compactor is not None:
            self.compactor.q.put(path)


class _Compactor(threading.Thread):
    """Compacts closed segments beside the writer: columns to Parquet, raw ones to zstd
    (pyarrow and zstandard release the GIL)."""

    def __init__(self, writer: _Writer) -> None:
        super().__init__(name="fastfeed-recorder-compact", daemon=True)
        self.writer = writer
        self.q: queue.Queue[str | None] = queue.Queue()
        self.level = int(writer.cfg.get("level", 1))
        self.tid = 0
        self.ended = False

    def run(self) -> None:
        tid = threading.get_native_id()
        try:    # Linux: while recording, this thread only gets the CPU nothing else wants
            if not self.ended:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                self.tid = tid
        except (OSError, AttributeError):
            pass
        if not self.tid:
            _nice19(tid)
        while True:
            path = self.q.get()
            if path is None:
                return
            try:
                if path.endswith(".ffraw"):
                    before, after = compress_segment(path, self.level)
                    with self.writer.lock:
                        self.writer.raw_saved += before - after
                else:
                    compact(path)
            except Exception as exc:  # noqa: BLE001 - counted; the segment stays readable
                self.writer.error(f"compacting {os.path.basename(path)}", exc)

    def finishing(self) -> None:
        """The recording ended: the lowest normal priority (nice 19) from now on, so that
        closing does not wait for an idle CPU on a busy machine."""
        self.ended = True
        if self.tid:
            try:
                os.sched_setscheduler(self.tid, os.SCHED_OTHER, os.sched_param(0))
            except (OSError, AttributeError):
                pass
            _nice19(self.tid)


def _nice19(tid: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
    except (OSError, AttributeError):
        pass


class _Writer:
    """The writer's state (see the module docstring)."""

    def __init__(self, cfg: dict[str, Any], arena: Any, sock: socket.socket) -> None:
        self.cfg = cfg
        self.arena = arena
        self.sock = sock
        self.slot_bytes = int(cfg["slot_bytes"])
        self.path = str(cfg["path"])
        self.discard = bool(cfg.get("discard"))
        self.names: list[str] = [""]
        self._dict: Any = None
        self._dict_len = -1
        self.raw: RawWriter | None = None
        self.cols: dict[str, _ColumnFile] = {}
        self.compactor: _Compactor | None = None
        self.lock = threading.Lock()
        self.raw_saved = 0          # bytes the compression of closed raw segments saved
        self._cpu_read = 0.0
        self.stats: dict[str, Any] = {
            "raw_written": 0, "records_written": 0, "dropped_messages": 0,
            "dropped_records": 0, "dropped_bytes": 0, "errors": 0, "raw_bytes": 0,
            "raw_file_bytes": 0, "writer_cpu_ns": 0, "last_error": ""}
        on_roll = cfg.get("raw_compress", "roll") == "roll"
        if (cfg["columns"] and cfg["parquet"]) or (cfg["raw"] and on_roll):
            self.compactor = _Compactor(self)
            self.compactor.start()
        if cfg["raw"]:
            self.raw = RawWriter(os.path.join(self.path, "raw"), cfg["header"],
                                 roll_bytes=int(cfg["roll_bytes"]),
                                 roll_seconds=cfg["roll_seconds"], level=int(cfg["level"]),
                                 compress="roll" if on_roll else "inline",
                                 on_closed=self.compactor.q.put if self.compactor else None,
                                 direct=True)

    # ------------------------------------------------------------------ reporting

    def error(self, what: str, exc: BaseException) -> None:
        with self.lock:
            self.stats["errors"] += 1
            self.stats["last_error"] = f"{what}: {type(exc).__name__}: {exc}"

    def lost(self, what: str, n: int, exc: BaseException, nbytes: int = 0) -> None:
        with self.lock:
            self.stats["dropped_" + what] += n
            self.stats["dropped_bytes"] += nbytes
        self.error(f"{n} {what} not recorded", exc)

    def send(self, msg: Any) -> None:
        try:
            self.sock.sendall(pack(msg))
        except OSError:
            pass       # the feed process is gone: we finish writing what we hold

    def report(self) -> dict[str, Any]:
        st = self.stats
        now = time.monotonic()
        if now - self._cpu_read >= 0.2:     # (a process-wide clock: not free with threads)
            self._cpu_read = now
            st["writer_cpu_ns"] = time.process_time_ns()
        if self.raw is not None:
            st["raw_bytes"] = self.raw.bytes_in
        with self.lock:
            if self.raw is not None:
                st["raw_file_bytes"] = self.raw.bytes_out - self.raw_saved
            return dict(st)

    # ------------------------------------------------------------------ work

    def handle(self, msg: tuple[Any, ...]) -> bool:
        """One message; False on ``stop``."""
        kind = msg[0]
        now = time.monotonic()
        if kind == "raw":
            _, slot, n, count = msg
            try:
                if not self.discard:
                    self._write_raw(slot, n, count, now)
            finally:
                self.send(("free", slot, self.report()))
        elif kind == "cols":
            _, slot, nbytes, pieces, sizes = msg
            try:
                if not self.discard:
                    self._write_cols(slot, nbytes, pieces, sizes, now)
            finally:
                self.send(("free", slot, self.report()))
        elif kind == "syms":
            self.names.extend(msg[1])
        elif kind == "sync":
            self.flush_columns(now, force=True)
            self._cpu_read = 0.0        # the CPU counter as of now
            self.send(("synced", msg[1], self.report()))
        elif kind == "stop":
            return False
        return True

    def _write_raw(self, slot: int, n: int, count: int, now: float) -> None:
        assert self.raw is not None
        start = slot * self.slot_bytes
        try:
            self.raw.write_slot(memoryview(self.arena)[start:start + self.slot_bytes], n,
                                count, now)
        except Exception as exc:  # noqa: BLE001 - counted and reported; the writer goes on
            self.lost("messages", count, exc, nbytes=n)
            try:
                self.raw.close()  # the next write starts a new segment
            except Exception as exc2:  # noqa: BLE001 - counted; its complete blocks stay
                self.error("closing a raw segment", exc2)
            return
        self.stats["raw_written"] += count

    def _write_cols(self, slot: int, nbytes: int, pieces: list[tuple[Any, ...]],
                    sizes: list[int], now: float) -> None:
        """A columns slot: chunks of records by tag (``RecordSink``); ``pieces``: ``(tag, wire,
        layout, records, spill, spill_base)`` of each tag in it."""
        from fastfeed._native.ring import capture_chunks, capture_join

        start = slot * self.slot_bytes
        with memoryview(self.arena)[start:start + nbytes] as view:
            chunks = capture_chunks(view, nbytes, sizes)
            for tag, wire, layout, n, spill, base in pieces:
                off, count, nchunks = chunks[tag]
                if count != n:
                    raise ValueError(f"{wire}: {count} records in the slot, {n} announced")
                if nchunks == 1:        # one run: read in place
                    self._gather(wire, layout, self.arena, start + off, n, spill, base, now)
                else:                   # interleaved with other types: joined first
                    self._gather(wire, layout, capture_join(view, nbytes, tag, sizes), 0, n,
                                 spill, base, now)

    def _gather(self, wire: str, layout: str, source: Any, offset: int, n: int, spill: Any,
                base: int, now: float) -> None:
        import numpy as np

        cf = self.cols.get(wire)
        if cf is None:
            cf = self.cols[wire] = _ColumnFile(os.path.join(self.path, "columns"), wire,
                                               layout,
                                               self.compactor if self.cfg["parquet"] else None)
        arr = np.frombuffer(source, dtype=cf.spec.dtype, count=n, offset=offset)
        if not cf.buffers.rows:
            cf.first_pending = now
        cf.buffers.append(arr, n, spill, base)
        del arr
        if cf.buffers.rows >= int(self.cfg["batch_rows"]):
            self._write_pending(cf, now)

    def _dictionary(self) -> Any:
        import pyarrow as pa

        if self._dict_len != len(self.names):
            self._dict = pa.array(self.names, type=pa.string())
            self._dict_len = len(self.names)
        return self._dict

    def _write_pending(self, cf: _ColumnFile, now: float) -> None:
        rows = cf.buffers.rows
        try:
            batch = cf.buffers.batch(rows, self._dictionary(), cf.wire)
            cf.write(batch, now, int(self.cfg["roll_bytes"]), self.cfg["roll_seconds"])
            del batch
        except Exception as exc:  # noqa: BLE001 - counted and reported; the writer goes on
            self.lost("records", rows, exc)
            return
        finally:
            cf.buffers.reset()
        self.stats["records_written"] += rows

    def flush_columns(self, now: float, force: bool) -> None:
        for cf in self.cols.values():
            if cf.buffers.rows and (
                    force or now - cf.first_pending >= float(self.cfg["batch_seconds"])):
                self._write_pending(cf, now)

    def pending(self) -> bool:
        return any(cf.buffers.rows for cf in self.cols.values())

    def close(self) -> None:
        self.flush_columns(time.monotonic(), force=True)
        if self.raw is not None:
            try:
                self.raw.close()
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.error("closing a raw segment", exc)
        for cf in self.cols.values():
            try:
                cf.close()
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.error("closing a columns segment", exc)
        if self.compactor is not None:
            self.compactor.finishing()
            self.compactor.q.put(None)
            self.compactor.join()


def _recv(sock: socket.socket, reader: FrameReader, timeout: float | None) -> list[Any] | None:
    """The next messages ([] on timeout, None at the end of the stream)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(1 << 16)
    except TimeoutError:
        return []
    except OSError:
        return None
    if not data:
        return None
    return reader.feed(data)


def _warm_up(layouts: set[str]) -> None:
    """Build and write one row of every layout in memory before saying ready: the imports
    done lazily on the way (pyarrow.compute alone takes ~1 s on a busy machine) must not
    happen while the first records wait in the arena."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet

    from fastfeed.record._columns import ColumnBuffers, spec_for

    dictionary = pa.array([""], type=pa.string())
    for layout in sorted(layouts):
        spec = spec_for(layout)
        bufs = ColumnBuffers(spec)
        bufs.append(np.zeros(1, dtype=spec.dtype), 1)
        batch = bufs.batch(1, dictionary, layout)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as w:
            w.write_batch(batch)


def serve(arena_fd: int, sock_fd: int) -> int:
    for name in ("SIGINT", "SIGTERM", "SIGXFSZ"):
        # the feed process decides when recording ends (Ctrl-C reaches the whole process
        # group); a write past RLIMIT_FSIZE raises EFBIG (counted) instead of killing us
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    sock = socket.socket(fileno=sock_fd)
    reader = FrameReader()
    msgs = _recv(sock, reader, None) or []
    while not msgs:
        more = _recv(sock, reader, None)
        if more is None:
            return 1
        msgs = more
    kind, cfg = msgs.pop(0)
    assert kind == "config"
    try:
        # Linux: a batch job -- woken by the feed's hand-over, it does not preempt the feed's
        # event loop on that CPU (a preemption per hand-over cost the loop ~1 ms each on a
        # busy 2-core machine); it still gets its fair share of the CPU
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (OSError, AttributeError):
        pass
    if cfg.get("nice"):
        try:
            os.nice(int(cfg["nice"]))
        except OSError:
            pass
    arena = mmap.mmap(arena_fd, int(cfg["arena_bytes"]),
                      flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
    if cfg["columns"]:
        _warm_up(set(cfg["header"]["types"].values()))
    writer = _Writer(cfg, arena, sock)
    writer.send(("ready", os.getpid(), writer.report()))
    batch_seconds = float(cfg["batch_seconds"])
    running = True
    while running:
        for msg in msgs:
            try:
                if not writer.handle(msg):
                    running = False
                    break
            except Exception as exc:  # noqa: BLE001 - counted and reported; the writer goes on
                writer.error(f"handling {msg[0]}", exc)
        if not running:
            break
        writer.flush_columns(time.monotonic(), force=False)
        got = _recv(sock, reader, batch_seconds if writer.pending() else None)
        if got is None:      # the feed process closed the socket or died: finish
            break
        msgs = got
    writer.close()
    writer._cpu_read = 0.0
    writer.send(("closed", writer.report()))
    sock.close()
    return 0
