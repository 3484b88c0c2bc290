"""ProtocolCore: the base of the sans-I/O protocol cores (bytes in -> records, control, bytes out)."""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memset

from fastfeed._native.cring cimport ff_ring_pressure
from fastfeed._native.records cimport FF_RT_MAX
from fastfeed._native.ring cimport Consumer, RecordRing
from fastfeed._native.symbols cimport SymbolTable

from fastfeed._records_meta import LAYOUTS

cdef extern from "fastfeed/ring.h":
    pass

cdef extern from "fastfeed/clock.h" nogil:
    int64_t ff_now_ns()     # CLOCK_REALTIME in ns: the clock of every record's ts_recv


# Ring sizing: every ring gets about this many bytes (rounded to a power-of-two record count).
DEFAULT_RING_BYTES = 8 * 1024 * 1024


def ring_capacity_for(str layout, Py_ssize_t ring_bytes=DEFAULT_RING_BYTES):
    size = LAYOUTS[layout]["size"]
    cap = 1
    while cap * 2 * size <= ring_bytes and cap < (1 << 20):
        cap *= 2
    return max(cap, 64)


def now_ns():
    """CLOCK_REALTIME in ns (the clock ts_recv uses)."""
    return ff_now_ns()


cdef class ProtocolCore:

    def __cinit__(self, *args, **kwargs):
        memset(self.rptr, 0, sizeof(self.rptr))
        self.symbols = SymbolTable()
        self.rings = {}
        self._rings_by_rtype = [None] * FF_RT_MAX
        self.outbox = []
        self.control = []
        self.error = None
        self.feed_name = "?"
        self.ts_recv = 0
        self.binary = False
        self._default_consumers = {}

    cdef RecordRing _add_ring(self, str layout, str wire_type, int rtype, uint64_t capacity, int policy):
        if capacity == 0:
            capacity = ring_capacity_for(layout)
        cdef RecordRing ring = RecordRing(layout, wire_type, rtype, self.symbols, capacity,
                                          "backpressure" if policy else "drop_oldest")
        self.rings[wire_type] = ring
        self._rings_by_rtype[rtype] = ring
        self.rptr[rtype] = &ring.r
        return ring

    cdef Py_ssize_t feed_ptr(self, const char *data, Py_ssize_t size) noexcept:
        return 0

    cpdef bint under_pressure(self):
        cdef int i
        for i in range(FF_RT_MAX):
            if self.rptr[i] != NULL and ff_ring_pressure(self.rptr[i]):
                return True
        return False

    @cython.always_allow_keywords(False)   # METH_O: no argument parsing per message
    def feed(self, message, /):
        """Decode one whole message (bytes, bytearray, memoryview or str).

        Returns the number of events written. Raises ``fastfeed.ProtocolError`` when anything in
        the message was malformed: the complete units decoded before/around the fault are still
        published (``err.events_written``), no half-written event is ever visible, and the next
        ``feed()`` works.
        """
        return self._feed(message)

    cdef object _feed(self, object message):
        """feed()'s body, for subclasses whose feed() takes more arguments (a C call)."""
        cdef Py_buffer view
        cdef Py_ssize_t n, size
        cdef const char *data
        cdef bytes encoded
        cdef bint release = False
        if type(message) is bytes:    # the usual case: no buffer request
            data = PyBytes_AS_STRING(message)
            size = PyBytes_GET_SIZE(message)
        elif isinstance(message, str):
            encoded = (<str>message).encode("utf-8", "surrogatepass")
            data = PyBytes_AS_STRING(encoded)
            size = PyBytes_GET_SIZE(encoded)
        else:
            PyObject_GetBuffer(message, &view, PyBUF_SIMPLE)
            release = True
            data = <const char *>view.buf
            size = view.len
        if self.ts_recv == 0:
            self.ts_recv = ff_now_ns()
            n = self.feed_ptr(data, size)
            self.ts_recv = 0
        else:
            n = self.feed_ptr(data, size)
        if release:
            PyBuffer_Release(&view)
        if n < 0 or self.error is not None:
            err = self.error
            self.error = None
            if err is None:
                from fastfeed.errors import ProtocolError
                err = ProtocolError(self.feed_name, "malformed message")
            err.events_written = max(n, 0)
            raise err
        return n

    def ring(self, event_type):
        """The RecordRing of ``event_type`` (an event class or its wire name)."""
        key = self._wire_name(event_type)
        try:
            return self.rings[key]
        except KeyError:
            raise KeyError(f"{self.feed_name} has no event type {event_type!r}") from None

    def _wire_name(self, event_type):
        if isinstance(event_type, str):
            return event_type
        name = getattr(event_type, "WIRE_TYPE", None) or getattr(event_type, "__name__", None)
        return name

    def drain(self, event_type, Py_ssize_t max_records=-1):
        """Everything published for ``event_type`` since the last drain, as an EventBatch."""
        # a wire name as is (every _wire_name returns a str unchanged): no method call per drain
        key = event_type if type(event_type) is str else self._wire_name(event_type)
        cons = self._default_consumers.get(key)
        if cons is None:
            cons = self.ring(key).consumer(from_oldest=True)
            self._default_consumers[key] = cons
        return (<Consumer>cons).drain(max_records)

    def data_to_send(self):
        """Outgoing messages queued by the core (and clears the queue)."""
        out = self.outbox
        self.outbox = []
        return out

    def events_received(self):
        """Control events decoded since the last call (and clears the queue)."""
        out = self.control
        self.control = []
        return out

    @property
    def stats(self):
        return {
            "messages": self.n_messages,
            "events": self.n_events,
            "bytes": self.n_bytes,
            "errors": self.n_errors,
            "skipped": self.n_skipped,
            "overflowed": self.n_overflowed,
            # the decoder's symbol table (symtab.h): its size and its cap
            "symbols": len(self.symbols),
            "max_symbols": self.symbols.max_count,
        }
