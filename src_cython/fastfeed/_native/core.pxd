from libc.stdint cimport int64_t, uint64_t
from fastfeed._native.cring cimport ff_ring
from fastfeed._native.records cimport FF_RT_MAX
from fastfeed._native.ring cimport RecordRing
from fastfeed._native.symbols cimport SymbolTable

cdef class ProtocolCore:
    """Base of the sans-I/O protocol cores (DXLink, polygon, ...).

    Subclasses implement ``feed_ptr``: decode ONE whole message from ``data[0:size]``, write
    records in place into ``self.rptr[rtype]`` rings (ff_ring_slot / ff_ring_publish) stamped
    with ``self.ts_recv``, append outgoing messages (bytes) to ``self.outbox`` and control events
    to ``self.control``; return the number of events published. When part of the message is
    malformed, store the first ``fastfeed.ProtocolError`` in ``self.error`` (Python ``feed()``
    raises it; the transport counts and logs it) and still publish every complete, valid unit
    (DXLink: a whole ``[type, values]`` pair; polygon: one event object). A half-written event is
    never published. Return -1 only when nothing could be decoded at all. No Python object and no
    Python call per event on the success path.
    """
    cdef public int64_t ts_recv          # ns; the transport sets it once per socket read; 0 = stamp now
    cdef public bint binary              # the transport sets it per message: a BINARY (not TEXT) one
    cdef readonly SymbolTable symbols
    cdef readonly dict rings             # wire type (str) -> RecordRing
    cdef ff_ring *rptr[FF_RT_MAX]        # rtype -> ring (NULL when the core has no ring for it)
    cdef list _rings_by_rtype           # rtype -> RecordRing or None
    cdef public list outbox              # bytes to send, in order
    cdef public list control             # control events, in order
    cdef public object error             # last ProtocolError (set when feed_ptr returns -1)
    cdef readonly str feed_name          # "dxlink", "polygon", ... (for error messages)
    # counters (read from Python through .stats)
    cdef public uint64_t n_messages
    cdef public uint64_t n_events
    cdef public uint64_t n_bytes
    cdef public uint64_t n_errors        # malformed messages (skipped)
    cdef public uint64_t n_skipped       # events skipped (counted, e.g. unknown type, wrong value)
    cdef public uint64_t n_overflowed    # events refused by a full back-pressure ring at max size
    cdef dict _default_consumers         # wire type -> Consumer used by drain()

    cdef RecordRing _add_ring(self, str layout, str wire_type, int rtype, uint64_t capacity, int policy)
    cdef Py_ssize_t feed_ptr(self, const char *data, Py_ssize_t size) noexcept
    cdef object _feed(self, object message)
    cpdef bint under_pressure(self)
