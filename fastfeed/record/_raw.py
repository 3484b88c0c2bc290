"""Raw capture files: every websocket message of both directions, zstd-compressed blocks.

A segment (``raw-000001.ffraw``) is::

    b"FFRAW01\\n"  <u32 n> <n bytes: JSON header {"feed", "fastfeed", "segment", "created_ns", ...}>
    block*   where block = b"FFB1" <u32 compressed size> <u32 raw size> <u32 records>
                           <one zstd frame of `raw size` bytes>
                 or block = b"FFB0" <u32 size> <u32 size> <u32 records> <`size` bytes as they are>
                 or block = b"FFBA" <u32 stored size> <u32 size> <u32 records> <stored bytes:
                           padding to 4096 from the block's start, `size` bytes as they are,
                           padding to a multiple of 4096>

and the (decompressed) bytes of a block are capture records, each a 16-byte header
``<q ts_ns, I length, B kind, B flags, H 0>`` (``fastfeed._native.transport.CAPTURE_HEADER``)
followed by ``length`` payload bytes. ``kind`` 0 = received, 1 = sent by the client, 2 = a note
(JSON: ``{"event": "open", "conn": n, "url": ...}`` / ``{"event": "close", "conn": n,
"code": ..., "reason": ...}``); ``flags`` bit 0 = a BINARY message. ``ts_ns`` is the
CLOCK_REALTIME receive time of the socket read (or the send time).

Two ways to write (``compress``): ``"inline"`` compresses every block as it is written;
``"roll"`` (the recorder's default) writes the blocks as they are (``FFB0``: a ``write`` of the
bytes, no compression on the writer's hot side) and compresses each segment once it is closed
(:func:`compress_segment`: every ``FFB0`` block becomes an ``FFB1`` block of a new file that
replaces the segment atomically, so a reader sees either the whole uncompressed segment or the
whole compressed one). Readers take every kind of block, in any mix. Where the file system
allows it (Linux ``O_DIRECT``), ``"roll"`` writes the open segment past the page cache, straight
from the caller's page-aligned buffer (``write_slot``: ``FFBA`` blocks, aligned to 4096 bytes,
the segment's JSON header padded with spaces): on a VM whose fresh page-cache pages cost a
fault in the host (this project's, with free page reporting), a buffered write of the capture
cost the writer as much CPU as compressing it (~400 MB/s), a direct one ~10 % of that.

Every block is written whole and flushed: a killed writer leaves a file readable up to its last
complete block (a torn last block is ignored, and counted by the reader: its sizes do not
match); a segment killed before its compression stays uncompressed and readable. The zstd frames
carry no content checksum (its xxhash cost the writer ~20 % of its CPU per message); frames
written with one (earlier builds) read the same.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

__all__ = [
    "BINARY",
    "NOTE",
    "RAW_MAGIC",
    "RECV",
    "SENT",
    "Message",
    "RawWriter",
    "compress_segment",
    "encode_records",
    "iter_messages",
    "raw_segments",
    "read_segment",
]

RAW_MAGIC = b"FFRAW01\n"
_BLOCK = struct.Struct("<4sIII")
_BLOCK_MAGIC = b"FFB1"          # zstd
_PLAIN_MAGIC = b"FFB0"          # as it is (the open segment of ``compress="roll"``)
_ALIGNED_MAGIC = b"FFBA"        # as it is, written with O_DIRECT (aligned to ``ALIGN``)
ALIGN = 4096
_PAD = ALIGN - 16               # from the end of an FFBA block's header to its data
COMPRESS_MODES = ("roll", "inline")
HEADER = struct.Struct("<qIBBH")
RECV, SENT, NOTE = 0, 1, 2
BINARY = 1


@dataclass(frozen=True)
class Message:
    """One captured message: ``kind`` RECV / SENT / NOTE, ``payload`` bytes."""

    ts_ns: int
    kind: int
    flags: int
    payload: bytes

    @property
    def note(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.payload)
        return out


_SECRET_KEYS = (b"token", b"apiKey", b"api_key", b"password", b"auth-token")
_SECRET = re.compile(rb'("(?:' + b"|".join(_SECRET_KEYS) + rb')"\s*:\s*)"(?:[^"\\]|\\.)*"')
_AUTH_PARAMS = re.compile(rb'("params"\s*:\s*)"(?:[^"\\]|\\.)*"')


def redact(message: bytes) -> bytes:
    """``message`` with credentials replaced by ``"***"``: DXLink ``AUTH`` ``token``, polygon
    ``{"action": "auth", "params": KEY}``, the account streamer's ``auth-token`` (a recording
    is shared more widely than a token)."""
    if any(b'"' + k + b'"' in message for k in _SECRET_KEYS):
        message = _SECRET.sub(rb'\1"***"', message)
    if b'"auth"' in message and b'"params"' in message:
        message = _AUTH_PARAMS.sub(rb'\1"***"', message)
    return message


def encode_records(items: list[tuple[int, int, int, bytes]]) -> bytes:
    """Capture records (the transport's format) for ``[(ts_ns, kind, flags, payload)]``."""
    parts = []
    for ts, kind, flags, payload in items:
        parts.append(HEADER.pack(ts, len(payload), kind, flags, 0))
        parts.append(payload)
    return b"".join(parts)


class RawWriter:
    """Writes capture records into rolled segments under ``directory`` (the writer process only).

    ``compress="inline"`` compresses each block as it is written; ``"roll"`` writes the blocks
    as they are and compresses a segment once it is closed: by ``on_closed(path)`` (the
    recorder's background thread) or, without it, here at once (:func:`compress_segment`).
    ``direct``: ``"roll"`` writes ``write_slot``'s blocks with ``O_DIRECT`` where it can."""

    def __init__(self, directory: str, header: dict[str, Any], *, roll_bytes: int,
                 roll_seconds: float | None, level: int = 3, compress: str = "inline",
                 on_closed: Callable[[str], None] | None = None, direct: bool = False,
                 ) -> None:
        import zstandard

        if compress not in COMPRESS_MODES:
            raise ValueError(f"compress must be one of {COMPRESS_MODES}, not {compress!r}")
        self.directory = directory
        self.header = header
        self.roll_bytes = roll_bytes
        self.roll_seconds = roll_seconds
        self.level = level
        self.inline = compress == "inline"
        self.on_closed = on_closed
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=False,
                                              write_content_size=True)
        self._f: IO[bytes] | None = None
        self._direct = -1
        self.direct = direct
        self._page = mmap.mmap(-1, ALIGN) if direct and not self.inline else None
        self._path = ""
        self._seg = 0
        self._seg_bytes = 0
        self._seg_start = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        self.records = 0
        os.makedirs(directory, exist_ok=True)
        self._seg = len(raw_segments(directory))

    def _open(self, now: float) -> IO[bytes]:
        self._seg += 1
        path = os.path.join(self.directory, f"raw-{self._seg:06d}.ffraw")
        self._path = path
        self._seg_bytes = 0
        self._seg_start = now
        self._direct = -1
        if not self.inline and self.direct:
            self._direct = _open_direct(path, _segment_head(self.header, self._seg, ALIGN))
        f = open(path, "ab" if self._direct >= 0 else "wb")  # noqa: SIM115 - until it rolls
        self._f = f
        if self._direct < 0:
            f.write(_segment_head(self.header, self._seg))
            f.flush()
        return f

    def _roll(self, now: float) -> IO[bytes]:
        f = self._f
        if f is None or self._seg_bytes >= self.roll_bytes or (
                self.roll_seconds is not None and now - self._seg_start >= self.roll_seconds):
            self.close()
            f = self._open(now)
        return f

    def write(self, data: bytes | memoryview, count: int, now: float) -> None:
        if not data:
            return
        f = self._roll(now)
        if self._direct >= 0:      # (the recorder calls write_slot) through an aligned copy
            staging = mmap.mmap(-1, -(-len(data) // ALIGN) * ALIGN)
            staging[:len(data)] = data
            with memoryview(staging) as view:
                self._write_aligned(view, len(data), count)
            staging.close()
            return
        if self.inline:
            comp = self._cctx.compress(data)
            f.write(_BLOCK.pack(_BLOCK_MAGIC, len(comp), len(data), count) + comp)
            size = len(comp) + _BLOCK.size
        else:                      # two writes from the caller's buffer: no copy, no zstd
            f.write(_BLOCK.pack(_PLAIN_MAGIC, len(data), len(data), count))
            f.write(data)
            size = len(data) + _BLOCK.size
        f.flush()
        self._count(len(data), size, count)

    def write_slot(self, slot: memoryview, n: int, count: int, now: float) -> None:
        """``write(slot[:n])`` for a page-aligned ``slot`` whose length is a multiple of
        ``ALIGN`` (the recorder's arena): with ``O_DIRECT``, one ``writev`` of a header page
        and ``slot[:n]`` rounded up (the bytes after ``n`` are padding)."""
        if not n:
            return
        self._roll(now)
        if self._direct < 0:
            self.write(slot[:n], count, now)
            return
        try:
            self._write_aligned(slot, n, count)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.direct = False     # a file system that opens with O_DIRECT but refuses its
            self.close()            # writes: buffered from now on (nothing was written)
            self.write(slot[:n], count, now)

    def _write_aligned(self, slot: memoryview, n: int, count: int) -> None:
        padded = -(-n // ALIGN) * ALIGN
        page = self._page
        assert page is not None             # (made with ``direct``, as ``_direct`` is)
        stored = ALIGN - _BLOCK.size + padded
        _BLOCK.pack_into(page, 0, _ALIGNED_MAGIC, stored, n, count)
        written = os.writev(self._direct, [page, slot[:padded]])
        if written != ALIGN + padded:
            raise OSError(f"short write of a raw block ({written} of {ALIGN + padded} bytes)")
        self._count(n, ALIGN + padded, count)

    def _count(self, n: int, size: int, count: int) -> None:
        self._seg_bytes += size
        self.bytes_in += n
        self.bytes_out += size
        self.records += count

    def close(self) -> None:
        """Close the open segment (a write error: the file keeps its complete blocks); with
        ``compress="roll"`` it is then compressed."""
        f = self._f
        if f is None:
            return
        self._f = None
        try:
            if self._direct >= 0:
                os.close(self._direct)
                self._direct = -1
            f.close()
        finally:
            if not self.inline:
                if self.on_closed is not None:
                    self.on_closed(self._path)
                else:
                    compress_segment(self._path, self.level)


def _open_direct(path: str, head: bytes) -> int:
    """A descriptor of the new segment ``path`` opened with ``O_DIRECT`` and its (padded)
    header written, or -1 where the file system or the platform does not take it."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return -1
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flag, 0o644)
    except OSError:
        return -1
    try:
        buf = mmap.mmap(-1, len(head))           # page-aligned, as O_DIRECT needs
        buf[:] = head
        os.write(fd, buf)
        buf.close()
    except OSError:
        os.close(fd)
        return -1
    return fd


def _segment_head(header: dict[str, Any], seg: int, align: int = 1) -> bytes:
    """Magic, length and JSON header of a segment, padded with spaces to a multiple of
    ``align`` bytes."""
    head = json.dumps({**header, "segment": seg}).encode()
    fixed = len(RAW_MAGIC) + 4
    head += b" " * (-(fixed + len(head)) % align)
    return RAW_MAGIC + struct.pack("<I", len(head)) + head


def compress_segment(path: str, level: int = 1) -> tuple[int, int]:
    """Compress the uncompressed blocks of the closed segment ``path`` (zstd ``level``): a new
    file replaces it atomically, holding its blocks up to the first torn one (a kill during the
    compression leaves a ``.tmp`` beside the segment, which stays as it was; readers ignore
    it). Returns (bytes before, bytes after); a segment with nothing to compress is left alone.
    """
    import zstandard

    before = os.path.getsize(path)
    with open(path, "rb") as f:
        _read_head(path, f)
        pos = f.tell()
        if not any(b[0] == _PLAIN_MAGIC for b in _raw_blocks(f, None)):
            return before, before
        f.seek(0)
        cctx = zstandard.ZstdCompressor(level=level, write_checksum=False,
                                        write_content_size=True)
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as out:
                out.write(f.read(pos))            # magic + header as they were
                for magic, rlen, count, data in _raw_blocks(f, None):
                    if magic == _PLAIN_MAGIC:
                        data = cctx.compress(data)
                    out.write(_BLOCK.pack(_BLOCK_MAGIC, len(data), rlen, count))
                    out.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
    return before, os.path.getsize(path)


def _read_head(path: str, f: IO[bytes]) -> dict[str, Any]:
    magic = f.read(len(RAW_MAGIC))
    if magic != RAW_MAGIC:
        f.close()
        from fastfeed.errors import FastFeedError
        raise FastFeedError(f"{path}: not a fastfeed raw capture")
    (n,) = struct.unpack("<I", f.read(4))
    header: dict[str, Any] = json.loads(f.read(n))
    return header


def _raw_blocks(f: IO[bytes], torn: list[int] | None,
                ) -> Iterator[tuple[bytes, int, int, bytes]]:
    """(magic, raw size, records, stored bytes) of each complete block from ``f``'s position;
    a torn or corrupt block ends it (counted in ``torn``)."""
    while True:
        head = f.read(_BLOCK.size)
        if not head:
            return
        if len(head) < _BLOCK.size:
            break
        magic, clen, rlen, count = _BLOCK.unpack(head)
        data = f.read(clen)
        if len(data) < clen or not (magic == _BLOCK_MAGIC or (
                magic == _PLAIN_MAGIC and clen == rlen)):
            if magic != _ALIGNED_MAGIC or len(data) < clen or clen < _PAD + rlen:
                break
            magic, data = _PLAIN_MAGIC, data[_PAD:_PAD + rlen]
        yield magic, rlen, count, data
    if torn is not None:
        torn[0] += 1


def raw_segments(directory: str) -> list[str]:
    """The raw segment files of a recording directory, in order."""
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.startswith("raw-") and n.endswith(".ffraw"))


def read_segment(path: str) -> tuple[dict[str, Any], Iterator[bytes], list[int]]:
    """(header, iterator of decompressed blocks, [torn blocks]) of one segment, compressed or
    not (the open segment of ``compress="roll"``, or one killed before its compression).

    The torn counter (one element list) is incremented when the last block is incomplete
    or corrupt (a killed writer); everything before it is returned.
    """
    import zstandard

    f = open(path, "rb")  # noqa: SIM115 - closed by the block iterator
    header = _read_head(path, f)
    torn = [0]

    def blocks() -> Iterator[bytes]:
        dctx = zstandard.ZstdDecompressor()
        with f:
            for magic, rlen, _count, stored in _raw_blocks(f, torn):
                if magic == _PLAIN_MAGIC:
                    yield stored
                    continue
                try:
                    data = dctx.decompress(stored, max_output_size=rlen)
                except zstandard.ZstdError:
                    data = b""
                if len(data) != rlen:
                    torn[0] += 1
                    return
                yield data

    return header, blocks(), torn


def iter_block(data: bytes) -> Iterator[tuple[int, int, int, memoryview]]:
    """(ts_ns, kind, flags, payload view) of each record of a decompressed block."""
    mv = memoryview(data)
    unpack = HEADER.unpack_from
    hs = HEADER.size
    pos, end = 0, len(data)
    while pos + hs <= end:
        ts, length, kind, flags, _r = unpack(data, pos)
        start = pos + hs
        pos = start + length
        yield ts, kind, flags, mv[start:pos]


def iter_messages(recording: str) -> Iterator[Message]:
    """Every captured message of a recording (its ``raw/`` segments), in order."""
    raw = os.path.join(recording, "raw")
    for path in raw_segments(raw if os.path.isdir(raw) else recording):
        _header, blocks, _torn = read_segment(path)
        for data in blocks:
            for ts, kind, flags, payload in iter_block(data):
                yield Message(ts, kind, flags, bytes(payload))
