"""Raw capture files: every websocket message of both directions, zstd-compressed blocks.

A segment (``raw-000001.ffraw``) is::

    b"FFRAW01\\n"  <u32 n> <n bytes: JSON header {"feed", "fastfeed", "segment", "created_ns", ...}>
    block*   where block = b"FFB1" <u32 compressed size> <u32 raw size> <u32 records>
                           <one zstd frame of `raw size` bytes>

and the decompressed bytes of a block are capture records, each a 16-byte header
``<q ts_ns, I length, B kind, B flags, H 0>`` (``fastfeed._native.transport.CAPTURE_HEADER``)
followed by ``length`` payload bytes. ``kind`` 0 = received, 1 = sent by the client, 2 = a note
(JSON: ``{"event": "open", "conn": n, "url": ...}`` / ``{"event": "close", "conn": n,
"code": ..., "reason": ...}``); ``flags`` bit 0 = a BINARY message. ``ts_ns`` is the
CLOCK_REALTIME receive time of the socket read (or the send time).

Every block is written whole and flushed: a killed writer leaves a file readable up to its last
complete block (a torn last block is ignored, and counted by the reader: its sizes do not
match). The zstd frames carry no content checksum (its xxhash cost the writer ~20 % of its CPU
per message); frames written with one (earlier builds) read the same.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
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
    "encode_records",
    "iter_messages",
    "raw_segments",
    "read_segment",
]

RAW_MAGIC = b"FFRAW01\n"
_BLOCK = struct.Struct("<4sIII")
_BLOCK_MAGIC = b"FFB1"
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
    """Writes capture records into rolled segments under ``directory`` (the writer process only)."""

    def __init__(self, directory: str, header: dict[str, Any], *, roll_bytes: int,
                 roll_seconds: float | None, level: int = 3) -> None:
        import zstandard

        self.directory = directory
        self.header = header
        self.roll_bytes = roll_bytes
        self.roll_seconds = roll_seconds
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=False,
                                              write_content_size=True)
        self._f: IO[bytes] | None = None
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
        f = open(path, "wb")  # noqa: SIM115 - open until the segment rolls
        head = json.dumps({**self.header, "segment": self._seg}).encode()
        f.write(RAW_MAGIC + struct.pack("<I", len(head)) + head)
        f.flush()
        self._f = f
        self._seg_bytes = 0
        self._seg_start = now
        return f

    def write(self, data: bytes | memoryview, count: int, now: float) -> None:
        if not data:
            return
        f = self._f
        if f is None or self._seg_bytes >= self.roll_bytes or (
                self.roll_seconds is not None and now - self._seg_start >= self.roll_seconds):
            self.close()
            f = self._open(now)
        comp = self._cctx.compress(data)
        f.write(_BLOCK.pack(_BLOCK_MAGIC, len(comp), len(data), count) + comp)
        f.flush()
        self._seg_bytes += len(comp) + _BLOCK.size
        self.bytes_in += len(data)
        self.bytes_out += len(comp) + _BLOCK.size
        self.records += count

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def raw_segments(directory: str) -> list[str]:
    """The raw segment files of a recording directory, in order."""
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.startswith("raw-") and n.endswith(".ffraw"))


def read_segment(path: str) -> tuple[dict[str, Any], Iterator[bytes], list[int]]:
    """(header, iterator of decompressed blocks, [torn blocks]) of one segment.

    The torn counter (one element list) is incremented when the last block is incomplete
    or corrupt (a killed writer); everything before it is returned.
    """
    import zstandard

    f = open(path, "rb")  # noqa: SIM115 - closed by the block iterator
    magic = f.read(len(RAW_MAGIC))
    if magic != RAW_MAGIC:
        f.close()
        from fastfeed.errors import FastFeedError
        raise FastFeedError(f"{path}: not a fastfeed raw capture")
    (n,) = struct.unpack("<I", f.read(4))
    header: dict[str, Any] = json.loads(f.read(n))
    torn = [0]

    def blocks() -> Iterator[bytes]:
        dctx = zstandard.ZstdDecompressor()
        with f:
            while True:
                head = f.read(_BLOCK.size)
                if not head:
                    return
                if len(head) < _BLOCK.size:
                    torn[0] += 1
                    return
                magic_b, clen, rlen, _count = _BLOCK.unpack(head)
                comp = f.read(clen)
                if magic_b != _BLOCK_MAGIC or len(comp) < clen:
                    torn[0] += 1
                    return
                try:
                    data = dctx.decompress(comp, max_output_size=rlen)
                except zstandard.ZstdError:
                    torn[0] += 1
                    return
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
