from cpython.buffer cimport Py_buffer
from libc.stdint cimport int64_t, uint64_t
from picows.picows cimport WSFrame, WSListener, WSTransport
from fastfeed._native.core cimport ProtocolCore

cdef class MessageCore(ProtocolCore):
    """The core of protocols decoded in Python: every whole message goes to ``control``."""
    cdef readonly bint decode_text       # TEXT messages as str (else every message as bytes)
    cdef void _malformed(self, str reason) noexcept

cdef class FeedListener(WSListener):
    """picows listener that feeds whole websocket messages to a ProtocolCore in place."""
    cdef readonly ProtocolCore core
    cdef readonly WSTransport transport
    cdef public object on_wake           # callable() -> None: once per socket read with news
    cdef public object on_disconnect     # callable(listener) -> None
    cdef public object on_error          # callable(ProtocolError) -> None (malformed message)
    # fragment reassembly
    cdef char *_frag
    cdef Py_ssize_t _frag_len
    cdef Py_ssize_t _frag_cap
    cdef int _frag_type                  # 0 = no fragmented message in progress
    cdef public Py_ssize_t max_message_size
    # per-read bookkeeping
    cdef bint _new_read
    cdef uint64_t _pending_events
    cdef bint _pending_control
    cdef readonly int64_t last_recv_ns   # CLOCK_MONOTONIC ns of the last socket read
    cdef readonly bint paused
    cdef readonly bint connected
    # counters
    cdef readonly uint64_t n_frames
    cdef readonly uint64_t n_reads
    cdef readonly uint64_t n_wakes
    cdef readonly uint64_t n_errors
    cdef readonly uint64_t n_fragments
    cdef readonly uint64_t n_sent
    cdef readonly uint64_t n_oversize    # messages over max_message_size (the connection is closed)
    # close info
    cdef readonly object close_code      # int or None (received from the peer, or sent by us)
    cdef readonly str close_reason
    cdef readonly bint close_received
    # capture (fastfeed.record): whole messages of both directions appended to a C buffer
    cdef Py_buffer _cap_view             # the caller's buffer being filled (held while capturing)
    cdef object _cap_obj
    cdef char *_cap
    cdef Py_ssize_t _cap_len
    cdef readonly Py_ssize_t capture_limit     # 0 = not capturing; else the buffer's size
    cdef readonly Py_ssize_t capture_flush_bytes
    cdef public object on_capture        # callable() -> None: the buffer passed flush_bytes
    cdef public object capture_sent_filter  # callable(bytes) -> bytes for sent messages (redaction)
    cdef readonly uint64_t n_captured          # messages appended
    cdef uint64_t _cap_taken
    cdef readonly uint64_t n_capture_dropped   # messages not captured (buffer full)
    cdef readonly uint64_t n_capture_dropped_bytes

    cdef void _feed(self, const char *data, Py_ssize_t size) noexcept
    cdef int _append_fragment(self, const char *data, Py_ssize_t size) except -1
    cdef void _oversize(self) noexcept
    cdef void _capture(self, int kind, int64_t ts, const char *data, Py_ssize_t size) noexcept
    cdef int _end_of_read(self) except -1
    cpdef Py_ssize_t flush(self) except -1
