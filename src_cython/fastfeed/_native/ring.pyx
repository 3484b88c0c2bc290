"""Bounded record rings with fan-out cursors, the EventBatch they drain into, and the
per-event consumers over them: ``EventStream`` (``listen()``'s async iterator) and
``EventCursor`` (``get_event()``'s shared cursor)."""

cimport cython
from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_REFCNT
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from fastfeed._native.cring cimport (
    FF_BACKPRESSURE, FF_DROP_OLDEST, ff_ring_add_consumer, ff_ring_available,
    ff_ring_enable_latest, ff_ring_free, ff_ring_init, ff_ring_latest, ff_ring_min_cursor,
    ff_ring_pressure, ff_ring_publish, ff_ring_read, ff_ring_remove_consumer, ff_ring_set_weak,
    ff_rec_sink_new, ff_rec_sink_orphan, ff_ring_sink_attach, ff_ring_sink_detach,
    ff_ring_sink_take, ff_ring_slot, ff_ring_spill_put, ff_spill, ff_spill_range, ff_spill_read,
    ff_cap_chunk,
)
from fastfeed._native.events cimport _Event, make_event, new_event, set_event, view_event
from fastfeed._native.symbols cimport SymbolTable

from types import GenericAlias
from weakref import ref as weakref_ref

from fastfeed._records_meta import LAYOUTS

cdef extern from *:
    """
    #define FF_WANT_LAYOUT_TABLE 1
    #include "fastfeed/records.h"
    """
    ctypedef struct ff_member_desc:
        const char *record
        const char *member
        uint32_t offset
        uint32_t size
    const ff_member_desc FF_LAYOUT_TABLE[]
    const size_t FF_LAYOUT_TABLE_LEN

DROP_OLDEST = FF_DROP_OLDEST
BACKPRESSURE = FF_BACKPRESSURE

cdef char _EMPTY[8]


cdef bytes _spill_copy(const ff_spill *sp, uint32_t lo, uint32_t n):
    cdef bytes b = PyBytes_FromStringAndSize(NULL, n)
    ff_spill_read(sp, lo, n, PyBytes_AS_STRING(b))
    return b


cdef inline int _attach_spill(EventBatch batch, const ff_spill *sp) except -1:
    """Give ``batch`` a copy of the spill-log range its records use (spill.h); free when the
    ring's log was never written."""
    cdef uint32_t lo, n
    if sp.used == 0 or batch._n == 0:
        return 0
    ff_spill_range(sp, <const unsigned char *>batch._buf, <uint64_t>batch._n,
                   <uint32_t>batch._rec_size, &lo, &n)
    if n:
        batch._spill = _spill_copy(sp, lo, n)
        batch._spill_base = lo
    return 0

cdef EventBatch _batch_of(RecordRing ring):
    """An empty batch of ``ring``'s record type."""
    cdef EventBatch batch = EventBatch.__new__(EventBatch)
    if ring.event_class is None:
        ring.event_class = event_class_for(ring.layout)
    batch.event_class = ring.event_class
    batch.symbols = ring.symbols
    batch._format = ring._format
    batch._rec_size = ring.r.rec_size
    return batch


_class_registry = {}   # layout name -> event class (filled by fastfeed.dxfeed / fastfeed.polygon_events)


def register_event_class(str layout, cls):
    """Called by the modules that define event classes (one class per record layout)."""
    _class_registry[layout] = cls


def event_class_for(str layout):
    cls = _class_registry.get(layout)
    if cls is None:
        import importlib
        feed = LAYOUTS[layout]["feed"]
        importlib.import_module("fastfeed.dxfeed" if feed == "dxfeed" else "fastfeed.polygon_events")
        cls = _class_registry.get(layout)
    return cls


cdef class RecordRing:
    """A bounded ring of fixed-size records of one type, with any number of consumers.

    ``policy`` is ``"drop_oldest"`` (each consumer counts what it lost in ``gaps``) or
    ``"backpressure"`` (never overwrites unread records; ``pressure`` tells the transport to
    pause reading). Capacity is rounded up to a power of two.
    """

    def __cinit__(self, str layout, str wire_type, int rtype, SymbolTable symbols,
                  uint64_t capacity=65536, policy="drop_oldest", uint64_t max_capacity=0):
        meta = LAYOUTS[layout]
        cdef int pol
        if policy in ("drop_oldest", FF_DROP_OLDEST):
            pol = FF_DROP_OLDEST
        elif policy in ("backpressure", FF_BACKPRESSURE):
            pol = FF_BACKPRESSURE
        else:
            raise ValueError(f"unknown overflow policy {policy!r}")
        if max_capacity == 0:
            max_capacity = capacity * 64 if pol == FF_BACKPRESSURE else capacity
        if ff_ring_init(&self.r, <uint32_t>meta["size"], capacity, pol, max_capacity) != 0:
            raise MemoryError()
        self.layout = layout
        self.wire_type = wire_type
        self.rtype = rtype
        self.symbols = symbols
        self._format = meta["format"].encode()
        self.event_class = None
        self._waiters = None

    def __dealloc__(self):
        ff_ring_free(&self.r)

    def consumer(self, bint from_oldest=False, bint weak=False):
        """A new cursor; it sees every record published from now on (or from the oldest kept).

        A ``weak`` cursor never holds back a back-pressure ring (it may lose records instead,
        counted in its ``gaps``); make it strong later with ``consumer.weak = False``.
        """
        return Consumer(self, from_oldest, weak)

    @property
    def capacity(self):
        return self.r.capacity

    @property
    def record_size(self):
        return self.r.rec_size

    @property
    def policy(self):
        return "backpressure" if self.r.policy == FF_BACKPRESSURE else "drop_oldest"

    @property
    def published(self):
        """Records published since the ring was made."""
        return self.r.head

    @property
    def grown(self):
        return self.r.grown

    @property
    def rebased(self):
        """Times the ring restarted writing at its first slot because every consumer had
        read everything (a drained ring stays in warm memory; see fastfeed/ring.h)."""
        return self.r.rebased

    @property
    def overflowed(self):
        return self.r.overflowed

    @property
    def pressure(self):
        """True when a back-pressure ring's slowest consumer has over half the ring unread."""
        return bool(ff_ring_pressure(&self.r))

    @property
    def backlog(self):
        """Unread records of the slowest consumer."""
        return self.r.head - ff_ring_min_cursor(&self.r)

    @property
    def format(self):
        """PEP 3118 struct format of one record."""
        return self._format.decode()

    def enable_latest(self):
        """Keep the last record of every symbol (for ``latest()``)."""
        ff_ring_enable_latest(&self.r)

    def latest(self, uint32_t symbol_id):
        """The last event published for ``symbol_id`` (needs ``enable_latest()``), or None."""
        cdef const char *rec = <const char *>ff_ring_latest(&self.r, symbol_id)
        if rec == NULL:
            return None
        if self.event_class is None:
            self.event_class = event_class_for(self.layout)
        cdef bytes spill = None
        cdef uint64_t ref = 0
        if self.r.spill.used and self.r.rec_size >= 40:
            ref = (<const uint64_t *>(rec + 32))[0]
            if ref >> 32:
                spill = _spill_copy(&self.r.spill, <uint32_t>ref, <uint32_t>(ref >> 32))
        return make_event(self.event_class, rec, self.r.rec_size, self.symbols, spill, <uint32_t>ref)

    def push(self, records, spill=None, uint32_t spill_base=0):
        """Publish records given as a bytes-like of whole records (tests, replay tools).

        ``spill``: the spill-log bytes the records' ``spill`` members refer to (spill.h; as an
        ``EventBatch`` holds them: position ``spill_base`` is ``spill[0]``). Each record that
        spilled gets its bytes appended to this ring's log, so its values read back whole."""
        cdef const unsigned char[::1] view = memoryview(records).cast("B")
        cdef const unsigned char[::1] sp
        cdef Py_ssize_t size = self.r.rec_size
        if view.shape[0] % size:
            raise ValueError("length is not a multiple of the record size")
        cdef Py_ssize_t n = view.shape[0] // size
        cdef Py_ssize_t i
        cdef unsigned char *dst
        cdef bint has_spill = spill is not None and size >= 40
        cdef uint64_t ref
        cdef uint32_t ln, rel
        if has_spill:
            sp = memoryview(spill).cast("B")
        for i in range(n):
            dst = <unsigned char *>ff_ring_slot(&self.r, <uint64_t>i)
            if dst == NULL:
                ff_ring_publish(&self.r, <uint64_t>i)
                raise BufferError("back-pressure ring is full at its maximum capacity")
            memcpy(dst, &view[i * size], size)
            if has_spill:
                memcpy(&ref, dst + 32, 8)
                ln = <uint32_t>(ref >> 32)
                if ln:
                    rel = <uint32_t>ref - spill_base
                    if <uint64_t>rel + ln > <uint64_t>sp.shape[0]:
                        ff_ring_publish(&self.r, <uint64_t>i)
                        raise ValueError("a record's spill range is outside the spill given")
                    if ff_ring_spill_put(&self.r, dst, &sp[rel], ln, self.r.head + <uint64_t>i):
                        ff_ring_publish(&self.r, <uint64_t>i)
                        raise MemoryError("the ring's spill log cannot hold the record's values")
        ff_ring_publish(&self.r, <uint64_t>n)
        return n

    def select(self, records, const unsigned char[::1] allowed):
        """The records whose symbol id has its bit set in ``allowed`` (a bitmap indexed by
        symbol id, LSB first; ids beyond it are left out) as ``bytes``; ``None`` when every
        record is kept (no copy). The hub's consumers keep only their own symbols with it."""
        cdef const unsigned char[::1] view = memoryview(records).cast("B")
        cdef Py_ssize_t size = self.r.rec_size
        if view.shape[0] % size:
            raise ValueError("length is not a multiple of the record size")
        cdef Py_ssize_t n = view.shape[0] // size
        cdef uint64_t nbits = <uint64_t>allowed.shape[0] * 8
        cdef Py_ssize_t i, k = 0
        cdef uint32_t sid
        for i in range(n):
            memcpy(&sid, &view[i * size + 4], 4)
            if sid < nbits and allowed[sid >> 3] & (1 << (sid & 7)):
                k += 1
        if k == n:
            return None
        cdef bytes out = PyBytes_FromStringAndSize(NULL, k * size)
        cdef char *dst = PyBytes_AS_STRING(out)
        for i in range(n):
            memcpy(&sid, &view[i * size + 4], 4)
            if sid < nbits and allowed[sid >> 3] & (1 << (sid & 7)):
                memcpy(dst, &view[i * size], size)
                dst += size
        return out

    def batch_over(self, records, owner=None, uint64_t gaps=0, bytes spill=None,
                   uint32_t spill_base=0):
        """An EventBatch of this ring's type reading ``records`` (a bytes-like of whole records,
        e.g. a hub's shared-memory sample) in place: no copy. It keeps ``records`` and
        ``owner`` (what keeps that memory valid, e.g. the sample) referenced while it lives --
        buffer exports (numpy) included -- or until :meth:`EventBatch.detach`. ``spill``: the
        spill-log bytes the records' ``spill`` members refer to, position ``spill_base`` first
        (as an ``EventBatch`` holds them; see :meth:`push`)."""
        cdef const unsigned char[::1] view = memoryview(records).cast("B")
        cdef Py_ssize_t size = self.r.rec_size
        if view.shape[0] % size:
            raise ValueError("length is not a multiple of the record size")
        cdef EventBatch batch = _batch_of(self)
        batch._n = view.shape[0] // size
        if batch._n:
            batch._buf = <char *>&view[0]
            batch._borrowed = True
            batch._owner = (records, owner)
            if spill:
                batch._spill = spill
                batch._spill_base = spill_base
        batch.gaps = gaps
        return batch

    def __repr__(self):
        return (f"RecordRing({self.wire_type!r}, capacity={self.r.capacity}, policy={self.policy!r}, "
                f"published={self.r.head})")


@cython.no_gc_clear   # __dealloc__ releases the buffer export held in _view: the garbage
                      # collector must not drop _obj (the exporter) before it
cdef class RecordSink:
    """Captures the records that rings publish, as they are published (fastfeed/ring.h,
    "Capture"), into a writable buffer the owner swaps (``fastfeed.record``: no cursor, no copy
    of cold records later). The buffer holds chunks ``[u32 tag, u32 n][n records]``, tag the
    ring's (``attach``); read them with :func:`capture_chunks`. When a publish does not fit,
    the sink keeps what fits and takes nothing more until the next ``swap``: the records not
    taken are counted in ``dropped``. The sink's C state is shared with its rings (ring.h:
    ``refs``), so the sink and its rings may be freed in any order (a garbage-collected
    cycle): a ring whose sink is gone stops capturing at its next publish."""

    def __cinit__(self):
        self.k = ff_rec_sink_new()
        if self.k == NULL:
            raise MemoryError()
        self._obj = None
        self._rings = []

    def __dealloc__(self):
        if self._obj is not None:
            PyBuffer_Release(&self._view)
            self._obj = None
        if self.k != NULL:
            ff_rec_sink_orphan(self.k)      # the rings let go at their next publish / free
            self.k = NULL

    def attach(self, RecordRing ring):
        """Capture every record ``ring`` publishes from now on; returns its tag."""
        cdef uint32_t tag = <uint32_t>len(self._rings)
        if ff_ring_sink_attach(&ring.r, self.k, tag) != 0:
            raise RuntimeError("this ring is already captured")
        self._rings.append(ring)
        return tag

    cdef int _hold(self, object buffer) except -1:
        PyObject_GetBuffer(buffer, &self._view, PyBUF_SIMPLE | PyBUF_WRITABLE)
        self._obj = buffer
        self.k.buf = <unsigned char *>self._view.buf
        self.k.limit = <uint64_t>self._view.len
        return 0

    cdef object _release(self):
        obj = self._obj
        out = (obj, self.k.len, self.k.records)
        if obj is not None:
            PyBuffer_Release(&self._view)
            self._obj = None
        self.k.buf = NULL
        self.k.limit = self.k.len = self.k.records = 0
        self.k.sealed = 0
        self.k.last = NULL
        return out

    def swap(self, new_buffer=None):
        """Go on capturing into ``new_buffer`` (``None``: none, every record is dropped and
        counted). Returns ``(old buffer, bytes used, records, parts)`` -- no copy; ``parts[tag]``
        is ``(records, spill, spill_base, lost)``: the spill-log bytes its records refer to
        (``None``: none spilled; position ``spill_base`` is ``spill[0]``), and ``lost`` True when
        those may be gone (the buffer stayed full while the ring went round): its records must
        then be counted as not captured."""
        cdef RecordRing ring
        cdef uint64_t n
        cdef uint32_t lo, sn
        cdef int rc
        parts = []
        for ring in self._rings:
            rc = ff_ring_sink_take(&ring.r, &n, &lo, &sn)
            spill = _spill_copy(&ring.r.spill, lo, sn) if sn and rc == 0 else None
            parts.append((n, spill, lo if spill is not None else 0, rc != 0))
        out = self._release()
        if new_buffer is not None:
            self._hold(new_buffer)
        return out + (parts,)

    def close(self):
        """Stop capturing (the rings are detached); returns what ``swap`` returns."""
        cdef RecordRing ring
        out = self.swap(None)
        for ring in self._rings:
            ff_ring_sink_detach(&ring.r, self.k)
        self._rings = []
        return out

    @property
    def nbytes(self):
        """Bytes used in the current buffer."""
        return self.k.len

    @property
    def records(self):
        """Records in the current buffer."""
        return self.k.records

    @property
    def dropped(self):
        """Records not captured (no buffer, or it was full), in total."""
        return self.k.dropped


def capture_chunks(buffer, Py_ssize_t nbytes, sizes):
    """The chunks of a :class:`RecordSink` buffer's first ``nbytes``, by tag: ``{tag: (first
    offset, records, chunks)}``. ``sizes[tag]``: the tag's record size."""
    cdef const unsigned char[::1] view = memoryview(buffer).cast("B")
    cdef Py_ssize_t off = 0, size
    cdef ff_cap_chunk h
    cdef dict out = {}
    if nbytes > view.shape[0]:
        raise ValueError("nbytes beyond the buffer")
    while off + <Py_ssize_t>sizeof(h) <= nbytes:
        memcpy(&h, &view[off], sizeof(h))
        size = sizes[h.tag]
        off += sizeof(h)
        if off + <Py_ssize_t>h.n * size > nbytes:
            raise ValueError("a chunk runs past nbytes")
        e = out.get(h.tag)
        out[h.tag] = (off, h.n, 1) if e is None else (e[0], e[1] + h.n, e[2] + 1)
        off += <Py_ssize_t>h.n * size
    return out


def capture_join(buffer, Py_ssize_t nbytes, uint32_t tag, sizes):
    """The records of ``tag`` in a :class:`RecordSink` buffer's first ``nbytes``, all chunks
    joined (``bytes``)."""
    cdef const unsigned char[::1] view = memoryview(buffer).cast("B")
    cdef Py_ssize_t off = 0, size, total = 0, pos = 0
    cdef ff_cap_chunk h
    if nbytes > view.shape[0]:
        raise ValueError("nbytes beyond the buffer")
    while off + <Py_ssize_t>sizeof(h) <= nbytes:
        memcpy(&h, &view[off], sizeof(h))
        size = sizes[h.tag]
        off += sizeof(h) + <Py_ssize_t>h.n * size
        if off > nbytes:
            raise ValueError("a chunk runs past nbytes")
        if h.tag == tag:
            total += <Py_ssize_t>h.n * size
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char *dst = PyBytes_AS_STRING(out)
    off = 0
    while off + <Py_ssize_t>sizeof(h) <= nbytes:
        memcpy(&h, &view[off], sizeof(h))
        size = sizes[h.tag]
        off += sizeof(h)
        if h.tag == tag:
            memcpy(dst + pos, &view[off], <Py_ssize_t>h.n * size)
            pos += <Py_ssize_t>h.n * size
        off += <Py_ssize_t>h.n * size
    return out


cdef class Consumer:
    """One reader of a ring: its own cursor, its own gap counter; sees every record."""

    def __cinit__(self, RecordRing ring, bint from_oldest=False, bint weak=False):
        self.ring = ring
        self._idx = ff_ring_add_consumer(&ring.r, from_oldest)
        if self._idx < 0:
            raise MemoryError()
        ff_ring_set_weak(&ring.r, self._idx, weak)
        self._gaps_reported = 0

    @property
    def weak(self):
        """True when this cursor does not hold back a back-pressure ring."""
        return self._idx >= 0 and self.ring.r.consumers[self._idx].weak != 0

    @weak.setter
    def weak(self, bint value):
        if self._idx >= 0:
            ff_ring_set_weak(&self.ring.r, self._idx, value)

    def __dealloc__(self):
        if self.ring is not None and self._idx >= 0:
            ff_ring_remove_consumer(&self.ring.r, self._idx)

    def close(self):
        """Detach from the ring (a back-pressure ring stops waiting for this consumer)."""
        if self._idx >= 0:
            ff_ring_remove_consumer(&self.ring.r, self._idx)
            self._idx = -1

    @property
    def closed(self):
        return self._idx < 0

    @property
    def available(self):
        """Records ready to drain."""
        if self._idx < 0:
            return 0
        return ff_ring_available(&self.ring.r, self._idx)

    @property
    def gaps(self):
        """Records this consumer lost to drop-oldest overflow, in total."""
        if self._idx < 0:
            return self._gaps_reported
        ff_ring_available(&self.ring.r, self._idx)
        return self.ring.r.consumers[self._idx].gaps

    cdef EventBatch _empty_batch(self):
        """An empty batch of this ring's record type."""
        return _batch_of(self.ring)

    cdef uint64_t _new_gaps(self):
        """Records lost since the last report (call after ff_ring_available / catch-up)."""
        cdef uint64_t gaps = self.ring.r.consumers[self._idx].gaps
        cdef uint64_t new = gaps - self._gaps_reported
        self._gaps_reported = gaps
        return new

    cpdef EventBatch drain(self, Py_ssize_t max_records=-1):
        """Move up to ``max_records`` (all when negative) into a new EventBatch."""
        cdef RecordRing ring = self.ring
        cdef EventBatch batch = self._empty_batch()
        if self._idx < 0:
            return batch
        cdef uint64_t avail = ff_ring_available(&ring.r, self._idx)
        batch.gaps = self._new_gaps()
        if max_records >= 0 and avail > <uint64_t>max_records:
            avail = <uint64_t>max_records
        if avail == 0:
            return batch
        batch._buf = <char *>malloc(avail * ring.r.rec_size)
        if batch._buf == NULL:
            raise MemoryError()
        batch._n = <Py_ssize_t>ff_ring_read(&ring.r, self._idx, batch._buf, avail)
        _attach_spill(batch, &ring.r.spill)
        return batch

    def drain_into(self, buffer):
        """Move as many records as fit into the writable bytes-like ``buffer`` (no allocation:
        the recorder reuses its buffers). Returns ``(n, gaps, spill, spill_base)``: records
        copied, records lost to drop-oldest overflow since the last report, and (as an
        ``EventBatch`` holds them) a copy of the spill-log range the records use (``None``
        when none spilled; log position ``spill_base`` is ``spill[0]``)."""
        cdef RecordRing ring = self.ring
        cdef Py_buffer view
        cdef uint64_t avail, room, got
        cdef uint32_t lo = 0, sn = 0
        if self._idx < 0:
            return 0, 0, None, 0
        avail = ff_ring_available(&ring.r, self._idx)
        gaps = self._new_gaps()
        if avail == 0:
            return 0, gaps, None, 0
        PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)
        try:
            room = <uint64_t>view.len // ring.r.rec_size
            if avail > room:
                avail = room
            got = ff_ring_read(&ring.r, self._idx, <char *>view.buf, avail) if avail else 0
            if got and ring.r.spill.used and ring.r.rec_size >= 40:
                ff_spill_range(&ring.r.spill, <const unsigned char *>view.buf, got,
                               ring.r.rec_size, &lo, &sn)
        finally:
            PyBuffer_Release(&view)
        if sn:
            return got, gaps, _spill_copy(&ring.r.spill, lo, sn), lo
        return got, gaps, None, 0

    def call_with_batch(self, handler):
        """Drain the available records up to the end of the ring's buffer (all of them unless
        they wrap around it: call again while ``available``) and call ``handler(batch)``.

        Returns ``(n, gaps, result, exc)``: the records handed over, the records lost before
        them (drop-oldest), the handler's return value and the ``Exception`` it raised (or
        None; other exceptions propagate). With no records the handler is not called.

        No copy: the batch borrows the ring's memory for the duration of the call (the
        producer runs on this thread between socket reads, so it cannot write meanwhile) and
        copies it out before anything could outlive the call -- a buffer export (memoryview,
        numpy), a reference the handler kept (stored, captured by a coroutine or a traceback).
        So the handler sees an ordinary EventBatch, valid for as long as it is referenced.
        """
        cdef RecordRing ring = self.ring
        cdef EventBatch batch
        cdef uint64_t avail, start, gaps, got
        if self._idx < 0:
            return 0, 0, None, None
        avail = ff_ring_available(&ring.r, self._idx)
        if avail == 0:
            return 0, self._new_gaps(), None, None
        start = (ring.r.consumers[self._idx].cursor - ring.r.base) & ring.r.mask
        if start + avail > ring.r.capacity:
            avail = ring.r.capacity - start    # up to the end of the buffer; the rest next call
        batch = self._empty_batch()
        gaps = self._new_gaps()
        batch.gaps = gaps
        batch._buf = <char *>ring.r.buf + start * ring.r.rec_size
        batch._n = <Py_ssize_t>avail
        batch._borrowed = True
        _attach_spill(batch, &ring.r.spill)
        ring.r.consumers[self._idx].cursor += avail
        got = <uint64_t>batch._n
        ring.r.held += 1                       # no rebase (ring.h) under the borrowed batch
        try:
            result = handler(batch)
        except Exception as exc:
            batch._own()                       # the traceback holds the handler's frame
            return got, gaps, None, exc
        except BaseException:
            batch._own()
            raise
        finally:
            ring.r.held -= 1
        if Py_REFCNT(batch) > 1:               # kept by the handler: give it its own memory
            batch._own()
        return got, gaps, result, None


cdef class EventBatch:
    """A run of records of one type, in arrival order.

    ``len(batch)``, ``batch[i]`` / iteration (event objects, made on access), and the buffer
    protocol (``memoryview(batch)``, ``numpy.asarray(batch)``; one item per record with the
    record's struct format) with no copy. The batch owns its memory: it stays valid forever.
    """

    def __cinit__(self):
        self._buf = NULL
        self._n = 0
        self._rec_size = 0
        self.gaps = 0
        self._exports = 0
        self._borrowed = False
        self._spill = None
        self._spill_base = 0

    def __dealloc__(self):
        if not self._borrowed:
            free(self._buf)

    @classmethod
    def __class_getitem__(cls, item):
        """``EventBatch[Quote]`` (the stubs make the class generic) at run time too."""
        return GenericAlias(cls, item)

    cdef int _own(self) except -1:
        """Copy borrowed records into memory of the batch's own (see call_with_batch). Done
        before an event object is made: events read the batch's memory, which must not move
        (nor be overwritten by the ring) while they live."""
        cdef char *p
        if not self._borrowed:
            return 0
        p = NULL
        if self._n > 0:
            p = <char *>malloc(self._n * self._rec_size)
            if p == NULL:
                raise MemoryError()
            memcpy(p, self._buf, self._n * self._rec_size)
        self._buf = p
        self._borrowed = False
        self._owner = None
        return 0

    def detach(self):
        """Give a batch that reads memory in place (a hub's shared-memory sample) its own copy
        and let that memory go. ``False`` (nothing done) while a buffer export -- a memoryview,
        a numpy array -- still reads it."""
        if not self._borrowed:
            return True
        if self._exports:
            return False
        self._own()
        return True

    @property
    def borrowed(self):
        """True while the batch reads memory it does not own in place: a ring's (inside a batch
        handler that has not kept it; see Consumer.call_with_batch) or a hub's shared-memory
        sample (RecordRing.batch_over; released when the batch is gone or detached)."""
        return self._borrowed

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        cdef Py_ssize_t k = i
        if k < 0:
            k += self._n
        if k < 0 or k >= self._n:
            raise IndexError("EventBatch index out of range")
        self._own()
        return batch_event(self, k)

    def __iter__(self):
        self._own()
        cdef _BatchIter it = _BatchIter.__new__(_BatchIter)
        it.batch = self
        return it

    def __bool__(self):
        return self._n > 0

    @property
    def record_size(self):
        return self._rec_size

    @property
    def format(self):
        return self._format.decode()

    def symbol_of(self, Py_ssize_t i):
        """Symbol string of record ``i`` without building the event object."""
        if i < 0:
            i += self._n
        if i < 0 or i >= self._n:
            raise IndexError("EventBatch index out of range")
        cdef uint32_t sid = (<uint32_t *>(self._buf + i * self._rec_size + 4))[0]
        return self.symbols.get(sid)

    def to_numpy(self):
        """A numpy structured array viewing the records (no copy; needs numpy: the
        ``fastfeed[numpy]`` extra; without it, an ImportError says so)."""
        from fastfeed.records import dtype_for, require_numpy
        np = require_numpy()
        return np.frombuffer(self, dtype=dtype_for(self.event_class.LAYOUT), count=self._n)

    def tobytes(self):
        if self._n == 0:
            return b""
        return (<char *>self._buf)[:self._n * self._rec_size]

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("EventBatch is read-only")
        if self._owner is None:
            self._own()   # an export may outlive a borrowed batch's call: own the memory first
        self._shape[0] = self._n
        self._strides[0] = self._rec_size
        buffer.buf = <void *>(self._buf if self._buf != NULL else _EMPTY)
        buffer.obj = self
        buffer.len = self._n * self._rec_size
        buffer.readonly = 1
        buffer.itemsize = self._rec_size
        buffer.format = PyBytes_AS_STRING(self._format) if (flags & PyBUF_FORMAT) else NULL
        buffer.ndim = 1
        buffer.shape = self._shape
        buffer.strides = self._strides
        buffer.suboffsets = NULL
        buffer.internal = NULL
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *buffer):
        self._exports -= 1

    def __repr__(self):
        name = self.event_class.__name__ if self.event_class is not None else "?"
        return f"EventBatch({name}, {self._n} events, gaps={self.gaps})"


cdef _Event batch_event(EventBatch b, Py_ssize_t k):
    """Event ``k`` of ``b`` (an owned batch), reading its record in the batch's memory."""
    return view_event(b.event_class, b, b._buf + k * b._rec_size, b._rec_size, b.symbols,
                      b._spill, b._spill_base)


# --- per-event consumers -----------------------------------------------------------------------
#
# They (and batch iteration) hand out events that read their record in the batch drained from
# the ring (one copy of the records per drain, none per event). Event objects are recycled: each
# consumer keeps the last POOL events it made, and an event that nobody else refers to any more
# (its reference count is 1: only the pool's) is pointed at the next record instead of
# allocating a new one. Only events without __dict__ and weak references (the generated
# classes) are pooled, so nobody can tell a recycled object from a new one; an event still
# referred to anywhere is never touched.

DEF POOL = 4   # a power of two; more than the events a simple loop keeps (the loop variable)


cdef extern from "Python.h":
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    ctypedef PySendResult (*sendfunc)(PyObject *iter, PyObject *value, PyObject **result)
    ctypedef PyObject *(*iternextfunc)(PyObject *)
    ctypedef struct PyAsyncMethods:
        sendfunc am_send
    PyObject *PyExc_StopIteration
    ctypedef struct _TypeSlots "PyTypeObject":
        PyAsyncMethods *tp_as_async
        iternextfunc tp_iternext
        Py_ssize_t tp_dictoffset
        Py_ssize_t tp_weaklistoffset
    # the public struct of a StopIteration instance (cpython/pyerrors.h, 3.11-3.13)
    ctypedef struct PyStopIterationObject:
        PyObject *dict
        PyObject *args
        PyObject *notes
        PyObject *traceback
        PyObject *context
        PyObject *cause
        PyObject *value
    PyObject *PyObject_CallOneArg(PyObject *callable, PyObject *arg)
    void PyErr_Restore(PyObject *type, PyObject *value, PyObject *traceback)
    void Py_XDECREF(PyObject *o)
    void Py_INCREF_PTR "Py_INCREF"(PyObject *o)
    Py_ssize_t Py_REFCNT_PTR "Py_REFCNT"(PyObject *o)
    bint PyTuple_CheckExact(PyObject *o)
    Py_ssize_t PyTuple_GET_SIZE(PyObject *o)
    PyObject *PyTuple_GET_ITEM(PyObject *o, Py_ssize_t i)
    void PyTuple_SET_ITEM(PyObject *o, Py_ssize_t i, PyObject *v)


cdef class _Ready:
    """An awaitable that is already complete: ``await r`` gives ``r.value`` at once (what
    ``EventStream.__anext__`` and ``get_event()`` return while events are buffered: no
    coroutine, no suspension). It has the coroutine methods (``send``, ``throw``, ``close``),
    so ``asyncio.create_task`` / ``ensure_future`` take it as they take a coroutine."""

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        v = self.value
        self.value = None
        self.cursor = self.back = None
        raise StopIteration(v)

    def send(self, arg):
        v = self.value
        self.value = None
        self.cursor = self.back = None
        raise StopIteration(v)

    def throw(self, typ, val=None, tb=None):
        self._give_back()         # e.g. a task cancelled before it ran: the event is not lost
        if val is None:
            raise typ
        raise val

    def close(self):
        self._give_back()

    cdef void _give_back(self):
        # a get_event() awaitable that will never be awaited (closed, thrown into, or garbage)
        # returns its event to the front of its cursor: an event received is never lost
        if self.value is not None and self.cursor is not None:
            (<EventCursor>self.cursor)._give_back_event(self.back)
        self.value = None
        self.cursor = self.back = None

    def __dealloc__(self):
        self._give_back()


cdef PySendResult _ready_send(PyObject *obj, PyObject *arg, PyObject **result) noexcept:
    # am_send (PEP 590's PyIter_Send, used by await on Python 3.10-3.11): the value without a
    # StopIteration. tp_iternext (__next__ above) is the general path.
    cdef _Ready r = <_Ready>obj
    cdef object v = r.value
    r.value = None
    r.cursor = r.back = None
    Py_INCREF(v)
    result[0] = <PyObject *>v
    return PYGEN_RETURN


cdef inline void _swap(PyObject **slot, PyObject *v) noexcept:
    cdef PyObject *old = slot[0]
    Py_INCREF_PTR(v)
    slot[0] = v
    Py_XDECREF(old)


cdef PyObject *_ready_iternext(PyObject *obj) noexcept:
    # tp_iternext, what `await` uses on Python 3.12+ (their SEND opcode calls tp_iternext, never
    # am_send, for an awaitable that is not a coroutine): the value as a StopIteration's. The
    # exception object is the awaitable's own, reused while nothing else refers to it (the
    # interpreter takes the value out and lets go of it): no exception, args tuple and GC
    # bookkeeping per event. A StopIteration that anything saw beyond that (caught and kept,
    # given a traceback, a context, notes or attributes) is never reused: a new one is made.
    cdef _Ready r = <_Ready>obj
    cdef PyObject *v = <PyObject *>r.value
    cdef PyObject *stop = <PyObject *>r._stop
    cdef PyStopIterationObject *s = <PyStopIterationObject *>stop
    cdef PyObject *old
    Py_INCREF_PTR(v)                  # r.value's reference goes, ours stays until the end
    r.value = None
    r.cursor = r.back = None
    if (r._stop is not None and Py_REFCNT_PTR(stop) == 1 and s.traceback == NULL and
            s.context == NULL and s.cause == NULL and s.dict == NULL and s.notes == NULL and
            s.args != NULL and PyTuple_CheckExact(s.args) and Py_REFCNT_PTR(s.args) == 1 and
            PyTuple_GET_SIZE(s.args) == 1):
        _swap(&s.value, v)
        old = PyTuple_GET_ITEM(s.args, 0)
        Py_INCREF_PTR(v)
        PyTuple_SET_ITEM(s.args, 0, v)
        Py_XDECREF(old)
    else:
        stop = PyObject_CallOneArg(PyExc_StopIteration, v)   # StopIteration(v): a tuple stays one
        if stop == NULL:
            Py_XDECREF(v)
            return NULL
        r._stop = <object>stop        # the attribute's reference ...
        Py_XDECREF(stop)              # ... replaces the call's
    Py_XDECREF(v)
    Py_INCREF_PTR(stop)               # PyErr_Restore steals these two references
    Py_INCREF_PTR(PyExc_StopIteration)
    PyErr_Restore(PyExc_StopIteration, stop, NULL)
    return NULL


if (<_TypeSlots *>_Ready).tp_as_async != NULL:
    (<_TypeSlots *>_Ready).tp_as_async.am_send = _ready_send
(<_TypeSlots *>_Ready).tp_iternext = _ready_iternext


cdef class ReadySlot:
    """Hands out already-completed awaitables (``await slot.give(v)`` is ``v`` at once, no
    coroutine), reusing one awaitable while the last one handed out was awaited: what a
    Python async iterator's ``__anext__`` returns while it has items queued
    (``fastfeed._fanout.FilteredStream``)."""
    cdef _Ready _ready

    def give(self, value):
        """A completed awaitable of ``value`` (not ``None``)."""
        cdef _Ready r = self._ready
        if r is None or r.value is not None:     # the last one was not awaited (yet)
            r = _Ready.__new__(_Ready)
            self._ready = r
        r.value = value
        return r


cdef class _EventMaker:
    """Base of EventStream / EventCursor: the current batch and the recycled event objects."""

    def __cinit__(self, *args, **kwargs):
        self._pool = [None] * POOL
        self._pool_i = 0
        self.pos = 0

    cdef object _take(self):
        """The next event of the current batch (``pos < len(batch)``), a recycled object
        where one is free."""
        cdef EventBatch b = self.batch
        cdef Py_ssize_t k = self.pos
        cdef Py_ssize_t i = self._pool_i
        cdef object ev = self._pool[i]
        self.pos = k + 1
        self._pool_i = (i + 1) & (POOL - 1)
        if ev is not None and Py_REFCNT(ev) == 2 and type(ev) is b.event_class:
            # 2: the pool's reference and `ev`'s
            set_event(<_Event>ev, b, b._buf + k * b._rec_size, b._rec_size, b.symbols,
                      b._spill, b._spill_base)
            return ev
        ev = batch_event(b, k)
        if (<_TypeSlots *>b.event_class).tp_dictoffset == 0 and \
                (<_TypeSlots *>b.event_class).tp_weaklistoffset == 0:
            self._pool[i] = ev
        return ev

    cdef object _item(self):
        """What the consumer hands out for the next record (overridden: SDK-faithful events)."""
        return self._take()


cdef class _BatchIter(_EventMaker):
    """Iterator over an EventBatch's events (a plain iterator, not a generator)."""

    def __iter__(self):
        return self

    def __next__(self):
        if self.pos >= self.batch._n:
            raise StopIteration
        return self._take()

    def __length_hint__(self):
        return self.batch._n - self.pos


cdef class EventStream(_EventMaker):
    """``listen()``'s async iterator: every event of one ring from its own cursor, in order.

    ``__anext__`` returns an already-completed awaitable while the batch drained last has
    events left, and a coroutine that waits for the next socket read otherwise. ``owner`` is
    the streamer: ``owner._check_usable()`` (first iteration), ``owner._note_batch(batch)``
    (each drain), ``owner._check_end(wire_type)`` (raise its error / True when closed) and
    ``await owner._wait()`` (the next wake-up). Ends (``StopAsyncIteration``) when the streamer
    closes or after ``aclose()``; an error ends it too, once raised.
    """

    def __init__(self, owner, Consumer consumer):
        self.owner = owner
        self.consumer = consumer
        self.wire_type = str(consumer.ring.wire_type)
        self._ready = _Ready.__new__(_Ready)
        self._started = False
        self._done = False

    def __aiter__(self):
        return self

    def __anext__(self):
        cdef EventBatch b = self.batch
        cdef _Ready r
        if b is not None and self.pos < b._n:
            r = self._ready
            if r.value is not None:          # an earlier __anext__ was never awaited
                r = _Ready.__new__(_Ready)
            r.value = self._item()
            return r
        return self._refill()

    async def _refill(self):
        owner = self.owner
        try:
            if not self._started:
                self._started = True
                if not self._done:
                    owner._check_usable()
            while True:
                if self._done:
                    raise StopAsyncIteration
                batch = self.consumer.drain()
                if batch:
                    owner._note_batch(batch)
                    self.batch = batch
                    self.pos = 0
                    return self._item()
                if owner._check_end(self.wire_type):
                    raise StopAsyncIteration
                await owner._wait()
        except BaseException:
            self._finish()
            raise

    cdef _finish(self):
        self._done = True
        self.batch = None
        if self.consumer is not None:
            self.consumer.close()

    def aclose(self):
        """End the iteration and detach from the ring (events already handed out stay valid)."""
        self._finish()
        r = _Ready.__new__(_Ready)
        return r

    @property
    def closed(self):
        """True once the iteration has ended (closed streamer, error, ``aclose()``)."""
        return self._done

    def __repr__(self):
        return f"<EventStream {self.wire_type} closed={self._done}>"


cdef object _wrap_fn = None

cdef object _lazy_wrap():
    """``fastfeed._native.lazymodel.wrap`` (imported on first use: lazymodel cimports this
    module)."""
    global _wrap_fn
    if _wrap_fn is None:
        from fastfeed._native.lazymodel import wrap
        _wrap_fn = wrap
    return _wrap_fn


cdef class StreamerLife:
    """A streamer's ``_closing`` and ``_closed`` flags, in C (see :class:`LifeFlag`)."""


cdef str _LIFE_ATTR = "_ff_life"


cdef StreamerLife _life_of(object obj):
    life = getattr(obj, _LIFE_ATTR, None)
    return life if isinstance(life, StreamerLife) else None


cdef class LifeFlag:
    """A class attribute standing for the instance attribute ``_closing`` or ``_closed``
    (``LifeFlag("closing")``): reads and writes, from anywhere, go to the instance's
    :class:`StreamerLife` (made on the first write), which ``get_event()`` reads without an
    attribute lookup per call. Behaves as the plain attribute did: ``AttributeError`` before the
    first write."""
    cdef bint _closed_flag
    cdef str _name

    def __init__(self, str which):
        if which not in ("closing", "closed"):
            raise ValueError("LifeFlag('closing') or LifeFlag('closed')")
        self._closed_flag = which == "closed"
        self._name = "_" + which

    def __set_name__(self, owner, name):
        if name != self._name:
            raise TypeError(f"LifeFlag({self._name[1:]!r}) must be the attribute {self._name}")

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        cdef StreamerLife life = _life_of(obj)
        if life is None or not (life.assigned >> self._closed_flag) & 1:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self._name!r}")
        return life.closed if self._closed_flag else life.closing

    def __set__(self, obj, value):
        cdef StreamerLife life = _life_of(obj)
        if life is None:
            life = StreamerLife.__new__(StreamerLife)
            object.__setattr__(obj, _LIFE_ATTR, life)
        if self._closed_flag:
            life.closed = bool(value)
        else:
            life.closing = bool(value)
        life.assigned |= 1 << self._closed_flag


cdef class EventCursor(_EventMaker):
    """``get_event()``'s shared cursor of one type (a weak ring cursor until first used)."""

    def __init__(self, owner, Consumer consumer):
        self.owner = owner
        self.consumer = consumer
        self.life = _life_of(owner)

    cpdef object ready(self, object model=None):
        """An already-completed awaitable of the next event of the batch drained last
        (wrapped in ``model``: ``lazymodel.wrap``), or ``None`` when that batch is used up
        (the ring is not read)."""
        cdef EventBatch b = self.batch
        cdef _Ready r
        if self._ready is not None and self._ready.value is not None:
            self._reclaim()
        r = self._ready
        if self._returned:
            raw = self._returned.pop()
        elif b is None or self.pos >= b._n:
            return None
        else:
            raw = self._item()
        ev = raw if model is None else _lazy_wrap()(model, raw)
        if r is None or r.value is not None:     # the last one was not awaited (yet)
            r = _Ready.__new__(_Ready)
            self._ready = r
        r.value = ev
        r.cursor = self
        r.back = raw
        return r

    cdef void _reclaim(self):
        # the last awaitable handed out, dropped unawaited (nothing but the cursor refers to it)
        cdef _Ready r = self._ready
        if r is not None and r.value is not None and Py_REFCNT(r) == 2:  # self._ready and r
            r._give_back()

    def _give_back_event(self, ev):
        """Put ``ev`` (handed out by an awaitable never awaited) back in front of the others."""
        if self._returned is None:
            self._returned = []
        self._returned.append(ev)          # a stack: the last given back is the earliest

    def next(self):
        """The next event, or ``None`` when nothing is waiting."""
        cdef EventBatch b = self.batch
        if self._ready is not None and self._ready.value is not None:
            self._reclaim()
        if self._returned:
            return self._returned.pop()
        if b is None or self.pos >= b._n:
            if self.consumer.weak:
                self.consumer.weak = False
            b = self.consumer.drain()
            if not b:
                self.batch = None
                return None
            self.owner._note_batch(b)
            self.batch = b
            self.pos = 0
        return self._item()


cdef object _get_event(object streamer, EventCursor sh, object model, object event_class):
    # what streamer_get_event and event_getter's function do once the cursor is known (the
    # closed state is read in the owner's StreamerLife when its class has LifeFlag attributes,
    # with getattr otherwise: taking its __dict__ once would be cheaper per call, but makes
    # every other attribute access on the streamer slower on 3.11)
    cdef StreamerLife life = sh.life
    if (not (life.closed or life.closing) if life is not None else
            not (streamer._closed or streamer._closing)):
        ready = sh.ready(model)
        if ready is not None:
            return ready
    return streamer._get_event(sh, model, event_class)


cdef tuple _cursor_entry(object streamer, dict cursors, object event_class):
    entry = cursors.get(event_class)
    if entry is None:
        entry = streamer._cursor(event_class)
    if not isinstance((<tuple?>entry)[0], EventCursor):
        raise TypeError("a streamer's _cursors maps a class to (EventCursor, model)")
    return <tuple>entry


@cython.binding(True)   # a method when set as a class attribute
def streamer_get_event(self, event_class):
    """``Streamer.get_event(event_class)``: wait for the next event of the shared per-type
    cursor (``await streamer.get_event(cls)``).

    While the batch the cursor drained last has events left, the awaitable returned is already
    complete (no coroutine per event; ``asyncio.create_task`` and ``wait_for`` take it as they
    take a coroutine) and the event is taken from the cursor by this call; an awaitable dropped,
    closed or cancelled before it was awaited gives its event back to the front of the cursor
    (so no event is lost; with several such awaitables outstanding at once, the order in which
    they give back decides the order of those events). Otherwise it is the
    coroutine ``self._get_event(...)``, which runs the misuse checks (``StreamerClosedError``,
    ``EventLoopError``), reads the ring and waits for the next event when awaited.
    ``self._cursors`` maps the class asked for to ``(EventCursor, model or None)``.
    """
    cdef tuple entry = _cursor_entry(self, self._cursors, event_class)
    return _get_event(self, <EventCursor>entry[0], entry[1], event_class)


def event_getter(streamer):
    """``streamer_get_event`` bound to ``streamer`` once, as a function of its own (what a
    streamer keeps as its ``get_event``): no bound method per call, ``streamer._cursors`` held,
    the cursor of the class asked for last kept. It refers to the streamer weakly (through
    its cursors' ``owner`` once it has one): it adds no reference cycle, so a streamer that
    never used ``get_event`` is still freed (its rings with it) as soon as it is dropped."""
    cdef dict cursors = streamer._cursors
    cdef object ref = weakref_ref(streamer)
    cdef object last_class = None     # the class asked for last, and its entry in _cursors
    cdef tuple last_entry = None      # (entries are made once and never replaced)

    @cython.binding(True)
    def get_event(event_class):
        nonlocal last_class, last_entry
        cdef EventCursor sh
        if event_class is not last_class or last_entry is None:
            owner = ref()
            if owner is None:
                raise ReferenceError("the streamer of this get_event is gone")
            last_entry = _cursor_entry(owner, cursors, event_class)
            last_class = event_class
        sh = <EventCursor>last_entry[0]
        return _get_event(sh.owner, sh, last_entry[1], event_class)

    get_event.__doc__ = streamer_get_event.__doc__
    get_event.__qualname__ = f"{type(streamer).__qualname__}.get_event"
    return get_event


def c_layout_table():
    """[(record, member, offset, size)] as the C compiler laid the structs out ("<size>" rows
    give sizeof). The layout tests compare it with the metadata, the .pxd and numpy dtypes."""
    cdef size_t i
    return [(FF_LAYOUT_TABLE[i].record.decode(), FF_LAYOUT_TABLE[i].member.decode(),
             FF_LAYOUT_TABLE[i].offset, FF_LAYOUT_TABLE[i].size) for i in range(FF_LAYOUT_TABLE_LEN)]


def bench_push_drain(RecordRing ring, Consumer consumer, bytes record, Py_ssize_t n, Py_ssize_t per_message=100):
    """Benchmark hook: publish ``n`` copies of ``record`` in messages of ``per_message`` records
    (claim, memcpy, publish; what a decoder does) and drain them with ``consumer`` after every
    message into EventBatches. Returns the number drained. All loops in C."""
    cdef Py_ssize_t done = 0, k, m, got = 0
    cdef Py_ssize_t size = ring.r.rec_size
    cdef const char *src = record
    cdef void *dst
    cdef EventBatch b
    if len(record) != size:
        raise ValueError("record size mismatch")
    while done < n:
        m = min(per_message, n - done)
        for k in range(m):
            dst = ff_ring_slot(&ring.r, <uint64_t>k)
            memcpy(dst, src, size)
        ff_ring_publish(&ring.r, <uint64_t>m)
        done += m
        b = consumer.drain(-1)
        got += b._n
    return got
