from libc.stdint cimport int64_t, uint32_t, uint64_t
from cpython.buffer cimport Py_buffer
from fastfeed._native.cring cimport ff_rec_sink, ff_ring
from fastfeed._native.events cimport _Event
from fastfeed._native.symbols cimport SymbolTable

cdef class RecordRing:
    """One bounded ring of one record type (see ring.h). The producer side is C-only."""
    cdef ff_ring r
    cdef readonly str layout        # layout name, e.g. "Quote", "EquityTrade"
    cdef readonly str wire_type     # wire name, e.g. "Quote", "T", "AM"
    cdef readonly int rtype
    cdef readonly object event_class
    cdef readonly SymbolTable symbols
    cdef bytes _format
    cdef object _waiters            # callables notified by the owner after publishing (Python side)


cdef class RecordSink:
    """Captures what rings publish into a buffer swapped from Python (ring.h, "Capture")."""
    cdef ff_rec_sink *k            # shared with the rings attached (ring.h: refs)
    cdef Py_buffer _view
    cdef object _obj               # the buffer held (None: none)
    cdef list _rings               # RecordRing attached, index = tag
    cdef int _hold(self, object buffer) except -1
    cdef object _release(self)


cdef class EventBatch:
    """Records drained from a ring for one consumer: owns its memory, zero-copy to numpy."""
    cdef char *_buf
    cdef Py_ssize_t _n
    cdef Py_ssize_t _rec_size
    cdef readonly object event_class
    cdef readonly SymbolTable symbols
    cdef readonly uint64_t gaps     # records this consumer lost (drop-oldest) before this batch
    cdef bytes _format
    cdef Py_ssize_t _shape[1]
    cdef Py_ssize_t _strides[1]
    cdef int _exports
    cdef bint _borrowed             # _buf is not the batch's own memory (a ring's, a hub sample's)
    cdef object _owner              # keeps borrowed memory valid (RecordRing.batch_over), or None
    cdef object __weakref__
    cdef readonly bytes _spill      # the spill-log bytes its records refer to (None: none spilled)
    cdef readonly uint32_t _spill_base       # spill-log position of _spill[0]
    cdef int _own(self) except -1

cdef class Consumer:
    cdef readonly RecordRing ring
    cdef int _idx
    cdef uint64_t _gaps_reported
    cdef EventBatch _empty_batch(self)
    cdef uint64_t _new_gaps(self)
    cpdef EventBatch drain(self, Py_ssize_t max_records=*)

cdef _Event batch_event(EventBatch b, Py_ssize_t k)

cdef class _Ready:
    cdef object value
    cdef object cursor      # get_event(): the EventCursor the event goes back to if not awaited
    cdef object back        # ... and the event as the cursor handed it out (before any model)
    cdef object _stop       # the StopIteration that tp_iternext reuses (None until first used)
    cdef void _give_back(self)

cdef class _EventMaker:
    cdef readonly Consumer consumer
    cdef object owner
    cdef EventBatch batch
    cdef Py_ssize_t pos
    cdef list _pool
    cdef Py_ssize_t _pool_i
    cdef object _take(self)
    cdef object _item(self)

cdef class EventStream(_EventMaker):
    cdef str wire_type
    cdef _Ready _ready
    cdef bint _started
    cdef bint _done
    cdef _finish(self)

cdef class StreamerLife:
    cdef bint closing
    cdef bint closed
    cdef unsigned char assigned   # bit 0: closing was set, bit 1: closed was

cdef class EventCursor(_EventMaker):
    cdef StreamerLife life  # the owner's, when its class keeps _closing/_closed in one (else None)
    cdef _Ready _ready
    cdef list _returned     # events of get_event() awaitables dropped or cancelled unawaited
    cdef void _reclaim(self)
    cpdef object ready(self, object model=*)
