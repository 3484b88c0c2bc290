"""The hub's wire format (layer 7): an envelope in front of unchanged C records.

Every message the hub publishes on a feed's stream is one **envelope** (64 bytes,
little-endian) followed by its body:

=========  ======  ===================================================================
offset     type    field
=========  ======  ===================================================================
0          u32     magic ``b"FFHB"``
4          u16     wire-format version (:data:`VERSION`)
6          u8      kind: :data:`KIND_DATA` (records), :data:`KIND_SYMBOLS` (id -> symbol),
                   :data:`KIND_ERROR` (the upstream stream failed for good; body: UTF-8 text),
                   :data:`KIND_STATUS` (a status the upstream sent, polygon; body: the
                   status frame ``[{"ev":"status","status":...,"message":...}]``),
                   :data:`KIND_RAW` (a frame the upstream received, as received: polygon,
                   only while a consumer asked for frames; body: its UTF-8 text)
7          u8      feed code (:data:`FEEDS`)
8          u16     rtype of the records (data) / 0
10         u16     record size in bytes (data) / 0
12         u32     record count (data) / number of mappings (symbols)
16         u64     publisher id: random, new at every hub start
24         u64     message sequence number in this feed's stream (1, 2, ...)
32         u64     first record sequence number of this rtype (data) / first symbol id
40         u64     the hub's own gap count (records its cursors lost, cumulative)
48         i64     send time, ``time.time_ns()`` of the hub (the clock of ``ts_recv``)
56         u32     hash of the record layouts (:func:`layout_hash`)
60         u32     spill bytes after the records (data; 0: none, see below)
=========  ======  ===================================================================

Data bodies are ``count`` records exactly as the rings hold them (``records.h``), then, when
some of them keep values beside the record (polygon: unknown keys, strings longer than their
slot, long lists; ``spill.h``), the spill section: ``u32`` spill-log position of its first byte,
then the spill bytes the records' ``spill`` members refer to, as an ``EventBatch`` holds them
(the envelope's last field is the section's size, position included). Symbol
bodies are ``count`` entries ``u32 id, u16 length, UTF-8 bytes``. Symbol ids are the hub's
own; a consumer maps them onto its own table (:class:`SymbolMap`).

Consumers check every envelope (:func:`unpack_envelope`: magic, version, layout hash) and
follow the sequence numbers with :class:`StreamTracker`, which counts lost messages, lost
records and publisher restarts.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from fastfeed.errors import ProtocolError

__all__ = [
    "ENVELOPE",
    "ENVELOPE_SIZE",
    "FEEDS",
    "FEED_NAMES",
    "KIND_DATA",
    "KIND_RAW",
    "KIND_STATUS",
    "KIND_SYMBOLS",
    "MAGIC",
    "VERSION",
    "Envelope",
    "StreamTracker",
    "SymbolMap",
    "layout_hash",
    "pack_envelope",
    "pack_spill",
    "pack_symbols",
    "spill_ref",
    "unpack_envelope",
    "unpack_spill",
    "unpack_symbols",
]

MAGIC = 0x42484646  # b"FFHB" little-endian
VERSION = 1
ENVELOPE = struct.Struct("<IHBBHHIQQQQqII")
ENVELOPE_SIZE = ENVELOPE.size
assert ENVELOPE_SIZE == 64

KIND_DATA = 0
KIND_SYMBOLS = 1
KIND_ERROR = 2
KIND_STATUS = 3
KIND_RAW = 4

#: feed name -> code (the envelope's feed byte)
FEEDS: dict[str, int] = {
    "dxlink": 1, "account": 2,
    "stocks": 10, "options": 11, "forex": 12, "crypto": 13, "indices": 14, "futures": 15,
}
FEED_NAMES: dict[int, str] = {v: k for k, v in FEEDS.items()}

_SYM_ENTRY = struct.Struct("<IH")
_layout_hash: int | None = None


def layout_hash() -> int:
    """CRC-32 of the C record layouts as compiled (every struct, member, offset and size).

    A consumer built from other record specs gets another hash and refuses the stream.
    """
    global _layout_hash
    if _layout_hash is None:
        from fastfeed._native.ring import c_layout_table

        _layout_hash = zlib.crc32(repr(c_layout_table()).encode())
    return _layout_hash


class Envelope(NamedTuple):
    kind: int
    feed: int
    rtype: int
    record_size: int
    n: int
    publisher: int
    seq: int
    first: int
    hub_gaps: int
    ts_send: int
    #: size of the spill section after the records (0: none)
    spill: int = 0


def pack_envelope(buf: bytearray | memoryview, kind: int, feed: int, rtype: int,
                  record_size: int, count: int, publisher: int, seq: int, first: int,
                  hub_gaps: int, ts_send: int) -> None:
    """Write an envelope at the start of ``buf``."""
    ENVELOPE.pack_into(buf, 0, MAGIC, VERSION, kind, feed, rtype, record_size, count,
                       publisher, seq, first, hub_gaps, ts_send, layout_hash(), 0)


def unpack_envelope(buf: bytes | bytearray | memoryview) -> Envelope:
    """Read and check an envelope; :class:`~fastfeed.errors.ProtocolError` if it is not one
    this build can read (bad magic, other version, other record layouts, truncated body)."""
    if len(buf) < ENVELOPE_SIZE:
        raise ProtocolError("hub", f"hub message of {len(buf)} bytes is shorter than an envelope")
    (magic, version, kind, feed, rtype, rsize, count, publisher, seq, first, gaps, ts,
     lhash, spill) = ENVELOPE.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ProtocolError("hub", "not a fastfeed hub message (bad magic)")
    if version != VERSION:
        raise ProtocolError("hub", f"hub wire format version {version}, this build reads {VERSION}")
    if lhash != layout_hash():
        raise ProtocolError("hub", "the hub's record layouts differ from this build's "
                            f"(hash {lhash:#x} != {layout_hash():#x}): upgrade one side")
    if kind == KIND_DATA and len(buf) < ENVELOPE_SIZE + rsize * count + spill:
        raise ProtocolError("hub", f"hub data message truncated ({len(buf)} bytes for {count} "
                            f"records of {rsize} and {spill} spill bytes)")
    if kind == KIND_DATA and spill and spill < _SPILL_BASE.size:
        raise ProtocolError("hub", f"hub data message with a spill section of {spill} bytes")
    return Envelope(kind, feed, rtype, rsize, count, publisher, seq, first, gaps, ts, spill)


_SPILL_BASE = struct.Struct("<I")


def pack_spill(spill: bytes | None, base: int) -> bytes:
    """The spill section of a data message (``b""`` when nothing spilled)."""
    if not spill:
        return b""
    return _SPILL_BASE.pack(base) + spill


_SPILL_REF = struct.Struct("<II")
#: offset of a record's ``spill`` member (u32 log position, u32 length; spill.h)
SPILL_OFFSET = 32


def spill_ref(records: bytes | bytearray | memoryview, i: int, record_size: int,
              base: int) -> tuple[int, int]:
    """``(start, end)`` of record ``i``'s spill in its batch's spill bytes (log position
    ``base`` first); ``(0, 0)`` when it spilled nothing."""
    pos, n = _SPILL_REF.unpack_from(records, i * record_size + SPILL_OFFSET)
    if not n:
        return 0, 0
    start = (pos - base) & 0xFFFFFFFF
    return start, start + n


def unpack_spill(section: bytes | bytearray | memoryview) -> tuple[bytes, int]:
    """Inverse of :func:`pack_spill`: ``(spill bytes, spill-log position of the first)``."""
    (base,) = _SPILL_BASE.unpack_from(section, 0)
    return bytes(section[_SPILL_BASE.size:]), base


def pack_symbols(items: list[tuple[int, str]]) -> bytes:
    """Body of a symbols message: ``(id, symbol)`` pairs."""
    out = bytearray()
    for sid, sym in items:
        b = sym.encode("utf-8", "surrogatepass")
        out += _SYM_ENTRY.pack(sid, len(b))
        out += b
    return bytes(out)


def unpack_symbols(body: bytes | bytearray | memoryview, count: int) -> list[tuple[int, str]]:
    """Inverse of :func:`pack_symbols`; ProtocolError on a truncated body."""
    out = []
    pos = 0
    mv = memoryview(body)
    for _ in range(count):
        if pos + _SYM_ENTRY.size > len(mv):
            raise ProtocolError("hub", "hub symbols message truncated")
        sid, n = _SYM_ENTRY.unpack_from(mv, pos)
        pos += _SYM_ENTRY.size
        if pos + n > len(mv):
            raise ProtocolError("hub", "hub symbols message truncated")
        out.append((sid, bytes(mv[pos:pos + n]).decode("utf-8", "surrogatepass")))
        pos += n
    return out


@dataclass
class StreamTracker:
    """Follows one feed's stream on the consumer side; counts what was lost.

    ``observe(env)`` returns ``"ok"``, ``"gap"`` (messages were lost: the symbol table may be
    incomplete, ask for a snapshot) or ``"restart"`` (a new publisher id: the hub restarted;
    its symbol ids and sequences start again).
    """

    publisher: int = 0
    next_seq: int = 0
    next_rec: dict[int, int] = field(default_factory=dict)
    #: messages lost between the hub and this consumer
    lost_messages: int = 0
    #: records lost between the hub and this consumer (from the per-rtype record sequences)
    gaps: int = 0
    #: records the hub's own cursors lost (its last reported cumulative count)
    hub_gaps: int = 0
    #: publisher restarts seen
    restarts: int = 0

    def start(self, publisher: int, next_seq: int, next_rec: dict[int, int]) -> None:
        """Begin at a snapshot's position (nothing before it counts as lost)."""
        self.publisher = publisher
        self.next_seq = next_seq
        self.next_rec = dict(next_rec)

    def observe(self, env: Envelope) -> str:
        status = "ok"
        if env.publisher != self.publisher:
            if self.publisher:
                self.restarts += 1
                status = "restart"
            self.publisher = env.publisher
            self.next_seq = 0
            self.next_rec = {}
        if self.next_seq and env.seq > self.next_seq:
            self.lost_messages += env.seq - self.next_seq
            if status == "ok":
                status = "gap"
        if env.seq >= self.next_seq:
            self.next_seq = env.seq + 1
        if env.kind == KIND_DATA:
            expect = self.next_rec.get(env.rtype)
            if expect is not None and env.first > expect:
                self.gaps += env.first - expect
            self.next_rec[env.rtype] = env.first + env.n
            self.hub_gaps = env.hub_gaps
        return status


class SymbolMap:
    """The hub's symbol ids -> this consumer's table's ids (a list indexed by hub id).

    ``identity`` stays True while every hub id equals the local id (the usual case: the
    consumer's table replicates the hub's), so records need no rewriting.
    """

    def __init__(self) -> None:
        self.to_local: list[int] = [0]
        self.identity = True

    def add(self, hub_id: int, local_id: int) -> None:
        t = self.to_local
        if hub_id >= len(t):
            t.extend([0] * (hub_id + 1 - len(t)))
        t[hub_id] = local_id
        if hub_id != local_id:
            self.identity = False

    def known(self, hub_id: int) -> bool:
        return hub_id < len(self.to_local) and self.to_local[hub_id] != 0

    def remap(self, records: memoryview, record_size: int, count: int) -> None:
        """Rewrite the symbol id (bytes 4..8) of ``count`` records in place (slow path)."""
        ids = records.cast("B").cast("I")
        step = record_size // 4
        t = self.to_local
        n = len(t)
        for i in range(1, count * step, step):
            h = ids[i]
            ids[i] = t[h] if h < n else 0
