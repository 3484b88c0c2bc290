"""Private test-only ProtocolCore: counts messages and bytes, records what it was fed.

Not part of the public API. ``CountingCore(keep=True, reply_to=b"ping", fail_on=b"bad")``:
every message counts as one "event" (nothing is written to any ring); a message equal to
``reply_to`` queues ``b"pong"`` in the outbox; a message starting with ``fail_on`` sets
``error`` and returns -1; a message starting with ``b"ctl"`` appends it to ``control``.
"""

from fastfeed._native.core cimport ProtocolCore


cdef class CountingCore(ProtocolCore):
    cdef public list messages
    cdef public bint keep
    cdef public bytes reply_to
    cdef public bytes fail_on
    cdef public list ts_seen

    def __init__(self, keep=True, reply_to=b"ping", fail_on=b"bad"):
        self.feed_name = "test"
        self.messages = []
        self.ts_seen = []
        self.keep = keep
        self.reply_to = reply_to
        self.fail_on = fail_on

    cdef Py_ssize_t feed_ptr(self, const char *data, Py_ssize_t size) noexcept:
        self.n_messages += 1
        self.n_bytes += <unsigned long long>size
        if not self.keep:
            self.n_events += 1
            return 1
        msg = data[:size]
        self.messages.append(msg)
        self.ts_seen.append(self.ts_recv)
        if self.fail_on and msg.startswith(self.fail_on):
            from fastfeed.errors import ProtocolError
            self.error = ProtocolError("test", "bad message")
            self.n_errors += 1
            return -1
        if msg == self.reply_to:
            self.outbox.append(b"pong")
        if msg.startswith(b"ctl"):
            self.control.append(msg)
            return 0
        self.n_events += 1
        return 1
