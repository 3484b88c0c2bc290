"""Layer 3: the picows transport adapter (no protocol logic) -- the only picows listener.

``FeedListener`` is a ``cdef`` subclass of picows' ``WSListener``. For every complete websocket
message it calls ``core.feed_ptr(payload_ptr, payload_size)`` directly on picows' read buffer
(no copy, no Python call); fragmented messages are reassembled in a reusable C buffer first.
Bytes the core queued in ``core.outbox`` are sent right after the message that produced them.
Python is woken (``on_wake()``) at most once per socket read -- on the frame that has
``last_in_buffer`` set -- and only when events or control messages were produced.

Protocols whose every message is handled in Python (the tastytrade account streamer, the
``AsyncWebsocketStreamInterface`` connections of ``fastfeed.compat``) use the same listener
with a :class:`MessageCore`: each whole message lands in ``core.control`` as ``bytes`` (or
``str`` for TEXT with ``decode_text``) and Python drains the list once per socket read, so
reassembly, close echo, the size limit, pause/resume and liveness work the same for every
protocol.

CLOSE frames are answered (echo the code, then disconnect; picows does not do it itself), PINGs
are answered by picows (``enable_auto_pong``), messages above ``max_message_size`` close the
connection with 1009 (counted in ``n_oversize``, whether picows saw an oversize frame or the
reassembly an oversize message; ``close_code`` is 1009 and ``close_received`` false). A
malformed message is counted (``n_errors``), handed to ``on_error`` and skipped; it never raises
out of ``on_ws_frame``. The exception picows keeps for a disconnect it initiated (e.g. an
oversize frame) is retrieved here, so asyncio never logs "Future exception was never retrieved".

Capture (``start_capture``, used by ``fastfeed.record``): every whole message received (as fed
to the core, stamped with the read's ``ts_recv``) and every message sent is appended to a
buffer the caller provides, with a 16-byte header (``CAPTURE_HEADER``); no Python call per
message. Python swaps in a fresh buffer (``swap_capture``, no copy) on a timer, or from
``on_capture()``, which the listener calls at the end of a socket read once the buffer holds
``flush_bytes``. A message that does not fit the buffer is not captured, only counted
(``n_capture_dropped``): the feed goes on.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.list cimport PyList_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

from picows.picows cimport WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport
from fastfeed._native.core cimport ProtocolCore

cdef extern from "fastfeed/clock.h" nogil:
    int64_t ff_now_ns()     # CLOCK_REALTIME: ts_recv, capture stamps
    int64_t ff_mono_ns()    # CLOCK_MONOTONIC: liveness

cdef packed struct ff_cap_hdr:
    int64_t ts_ns          # CLOCK_REALTIME ns (receive time of the read / send time)
    uint32_t length        # payload bytes that follow
    uint8_t kind           # CAPTURE_RECV / CAPTURE_SENT / CAPTURE_NOTE
    uint8_t flags          # CAPTURE_BINARY for a BINARY message
    uint16_t reserved

import logging

_log = logging.getLogger("fastfeed.transport")

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

#: capture record header: <q ts_ns, I length, B kind, B flags, H reserved> (16 bytes)
CAPTURE_HEADER = "<qIBBH"
CAPTURE_RECV = 0
CAPTURE_SENT = 1
CAPTURE_NOTE = 2
CAPTURE_BINARY = 1


def monotonic_ns():
    """The clock of ``FeedListener.last_recv_ns`` (CLOCK_MONOTONIC, same as time.monotonic_ns)."""
    return ff_mono_ns()


def _retrieve_exception(fut):
    """Done callback of picows' ``disconnected_future``: mark its exception as retrieved."""
    if not fut.cancelled():
        fut.exception()


cdef class MessageCore(ProtocolCore):
    """Hands every whole message to Python: ``control`` gets it, in arrival order.

    ``MessageCore(decode_text=False, feed_name="messages")``. With ``decode_text`` a TEXT
    message arrives as ``str`` (invalid UTF-8 is a malformed message: counted, reported, skipped)
    and a BINARY one as ``bytes``, as a ``websockets`` connection gives them; without it every
    message is ``bytes``. No rings: ``FeedListener`` wakes Python once per socket read that
    produced messages, and the owner drains ``control`` (``events_received()``).
    """

    def __init__(self, bint decode_text=False, str feed_name="messages"):
        self.decode_text = decode_text
        self.feed_name = feed_name

    cdef Py_ssize_t feed_ptr(self, const char *data, Py_ssize_t size) noexcept:
        self.n_messages += 1
        self.n_bytes += <uint64_t>size
        try:
            if self.decode_text and not self.binary:
                msg = PyUnicode_DecodeUTF8(data, size, NULL)
            else:
                msg = PyBytes_FromStringAndSize(data, size)
            self.control.append(msg)
        except UnicodeDecodeError:
            self._malformed("invalid UTF-8 in a text message")
            return -1
        except Exception as exc:  # MemoryError
            self._malformed(f"message dropped: {type(exc).__name__}")
            return -1
        return 0

    cdef void _malformed(self, str reason) noexcept:
        self.n_errors += 1
        try:
            from fastfeed.errors import ProtocolError
            self.error = ProtocolError(self.feed_name, reason)
        except Exception:
            pass


cdef class FeedListener(WSListener):
    """Feeds a ``ProtocolCore`` from a picows connection.

    ``FeedListener(core, on_wake=None, on_disconnect=None, on_error=None,
    max_message_size=64 MiB)``. Callbacks are plain callables run on the event loop thread:
    ``on_wake()`` once per socket read that produced events or control messages,
    ``on_disconnect(listener)`` once when the connection ends, ``on_error(exc)`` for each
    malformed message (already counted and skipped).
    """

    def __cinit__(self, ProtocolCore core, on_wake=None, on_disconnect=None, on_error=None,
                  Py_ssize_t max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        self.core = core
        self.on_wake = on_wake
        self.on_disconnect = on_disconnect
        self.on_error = on_error
        self.max_message_size = max_message_size
        self._frag = NULL
        self._frag_len = 0
        self._frag_cap = 0
        self._frag_type = 0
        self._new_read = True
        self._pending_events = 0
        self._pending_control = False
        self.last_recv_ns = ff_mono_ns()
        self.close_code = None
        self.close_reason = ""
        self.close_received = False

    def __dealloc__(self):
        free(self._frag)
        if self._cap_obj is not None:
            PyBuffer_Release(&self._cap_view)

    # ------------------------------------------------------------------ picows callbacks

    cpdef on_ws_connected(self, WSTransport transport):
        self.transport = transport
        self.connected = True
        self.last_recv_ns = ff_mono_ns()
        fut = transport.disconnected_future
        if fut is not None:
            fut.add_done_callback(_retrieve_exception)
        self.flush()

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.connected = False
        self._frag_type = 0
        self._frag_len = 0
        hs = transport.close_handshake
        if self.close_code is None and hs is not None:
            if hs.recv is not None and (hs.sent is None or hs.recv_then_sent):
                self.close_code = int(hs.recv.code)
                self.close_reason = hs.recv.reason
                self.close_received = True
            elif hs.sent is not None:      # picows closed it (a frame over max_frame_size ...)
                self.close_code = int(hs.sent.code)
                self.close_reason = hs.sent.reason
                if self.close_code == 1009:
                    self.n_oversize += 1
        if self._pending_events or self._pending_control:
            self._pending_events = 0
            self._pending_control = False
            if self.on_wake is not None:
                self.on_wake()
        if self.on_disconnect is not None:
            self.on_disconnect(self)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef WSMsgType mt = frame.msg_type
        if self._new_read:
            self._new_read = False
            self.n_reads += 1
            self.core.ts_recv = ff_now_ns()
            self.last_recv_ns = ff_mono_ns()
        self.n_frames += 1
        if mt == WSMsgType.TEXT or mt == WSMsgType.BINARY:
            if self._frag_type != 0:
                self._protocol_close(WSCloseCode.PROTOCOL_ERROR, "new message inside a fragmented one")
            elif frame.payload_size > self.max_message_size:
                # picows flags the frame (close 1009) but still delivers it: never decode it
                self._oversize()
            elif frame.fin:
                self.core.binary = mt == WSMsgType.BINARY
                self._feed(frame.payload_ptr, frame.payload_size)
            else:
                self._frag_type = <int>mt
                self._frag_len = 0
                self.n_fragments += 1
                self._append_fragment(frame.payload_ptr, frame.payload_size)
        elif mt == WSMsgType.CONTINUATION:
            if self._frag_type == 0:
                self._protocol_close(WSCloseCode.PROTOCOL_ERROR, "continuation without a start")
            elif self._append_fragment(frame.payload_ptr, frame.payload_size) == 0 and frame.fin:
                self.core.binary = self._frag_type == <int>WSMsgType.BINARY
                self._frag_type = 0
                self._feed(self._frag, self._frag_len)
                self._frag_len = 0
        elif mt == WSMsgType.CLOSE:
            self.close_received = True
            self.close_code = int(frame.get_close_code())
            try:
                self.close_reason = frame.get_close_reason()
            except Exception:
                self.close_reason = ""
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif mt == WSMsgType.PING:      # only when auto pong is off
            transport.send_pong(frame.get_payload_as_bytes())
        if frame.last_in_buffer:
            self._end_of_read()

    # ------------------------------------------------------------------ internals

    cdef void _feed(self, const char *data, Py_ssize_t size) noexcept:
        cdef ProtocolCore core = self.core
        if self.capture_limit:
            self._capture(CAPTURE_RECV, core.ts_recv, data, size)
        cdef Py_ssize_t n = core.feed_ptr(data, size)
        if n > 0:
            self._pending_events += <uint64_t>n
        if n < 0 or core.error is not None:
            self.n_errors += 1
            err = core.error
            core.error = None
            if self.on_error is not None:
                try:
                    self.on_error(err)
                except Exception:
                    _log.exception("on_error callback failed")
        if PyList_GET_SIZE(core.control) != 0:
            self._pending_control = True
        if PyList_GET_SIZE(core.outbox) != 0:
            try:
                self.flush()
            except Exception:
                _log.exception("sending queued messages failed")

    cdef int _append_fragment(self, const char *data, Py_ssize_t size) except -1:
        cdef Py_ssize_t need = self._frag_len + size
        cdef Py_ssize_t cap
        cdef char *p
        if need > self.max_message_size:
            self._frag_type = 0
            self._frag_len = 0
            self._oversize()
            return 1
        if need > self._frag_cap:
            cap = self._frag_cap if self._frag_cap else 65536
            while cap < need:
                cap *= 2
            p = <char *>realloc(self._frag, cap)
            if p == NULL:
                raise MemoryError()
            self._frag = p
            self._frag_cap = cap
        if size:
            memcpy(self._frag + self._frag_len, data, size)
        self._frag_len = need
        return 0

    cdef void _capture(self, int kind, int64_t ts, const char *data, Py_ssize_t size) noexcept:
        cdef Py_ssize_t need = self._cap_len + <Py_ssize_t>sizeof(ff_cap_hdr) + size
        cdef ff_cap_hdr *h
        if need > self.capture_limit or size > 0xFFFFFFFF:
            self.n_capture_dropped += 1
            self.n_capture_dropped_bytes += <uint64_t>size
            return
        h = <ff_cap_hdr *>(self._cap + self._cap_len)
        h.ts_ns = ts
        h.length = <uint32_t>size
        h.kind = <uint8_t>kind
        h.flags = CAPTURE_BINARY if (kind == CAPTURE_RECV and self.core.binary) else 0
        h.reserved = 0
        if size:
            memcpy(self._cap + self._cap_len + sizeof(ff_cap_hdr), data, size)
        self._cap_len = need
        self.n_captured += 1

    cdef int _end_of_read(self) except -1:
        self._new_read = True
        if self._cap_len >= self.capture_flush_bytes and self.capture_limit \
                and self.on_capture is not None:
            try:
                self.on_capture()
            except Exception:
                _log.exception("on_capture callback failed")
        if self._pending_events or self._pending_control:
            self._pending_events = 0
            self._pending_control = False
            self.n_wakes += 1
            if not self.paused and self.core.under_pressure():
                self.pause()
            if self.on_wake is not None:
                self.on_wake()
        return 0

    cdef void _oversize(self) noexcept:
        """A message over max_message_size: counted once, the connection closed with 1009."""
        if self.close_code is None:
            self.n_oversize += 1
            try:
                self._protocol_close(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
            except Exception:
                _log.exception("closing an oversize connection failed")

    def _protocol_close(self, int code, str reason):
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        if self.transport is not None:
            if not self.transport.is_close_frame_sent:
                self.transport.send_close(<WSCloseCode>code, reason.encode())
            self.transport.disconnect()

    # ------------------------------------------------------------------ Python API

    cpdef Py_ssize_t flush(self) except -1:
        """Send every message queued in ``core.outbox`` (TEXT frames); returns how many."""
        cdef list out = self.core.outbox
        cdef Py_ssize_t n = PyList_GET_SIZE(out)
        if n == 0 or self.transport is None or not self.connected:
            return 0
        self.core.outbox = []
        for msg in out:
            if self.capture_limit:
                self._capture_sent(msg)
            self.transport.send(WSMsgType.TEXT, msg)
        self.n_sent += <uint64_t>n
        return n

    def send(self, message):
        """Send one TEXT message (bytes or str) now."""
        if self.transport is None or not self.connected:
            return False
        if self.capture_limit:
            self._capture_sent(message)
        self.transport.send(WSMsgType.TEXT, message)
        self.n_sent += 1
        return True

    def close(self, int code=1000, str reason=""):
        """Send CLOSE (once) and disconnect."""
        if self.transport is None:
            return
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        if not self.transport.is_disconnected:
            self.transport.send_close(<WSCloseCode>code, reason.encode())
            self.transport.disconnect()

    def abort(self):
        """Drop the TCP connection without a CLOSE frame (liveness failure)."""
        if self.transport is not None and not self.transport.is_disconnected:
            if self.close_code is None:
                self.close_code = 1006
                self.close_reason = "aborted"
            self.transport.disconnect(False)

    def pause(self):
        """Stop reading the socket (back-pressure)."""
        if not self.paused and self.transport is not None:
            self.paused = True
            try:
                self.transport.underlying_transport.pause_reading()
            except Exception:
                pass

    def resume(self):
        """Resume reading after ``pause()`` (the silence clock restarts now)."""
        if self.paused:
            self.paused = False
            self.last_recv_ns = ff_mono_ns()
            if self.transport is not None:
                try:
                    self.transport.underlying_transport.resume_reading()
                except Exception:
                    pass

    def maybe_resume(self):
        """Resume reading if paused and no back-pressure ring is under pressure any more."""
        if self.paused and not self.core.under_pressure():
            self.resume()
            return True
        return False

    # ------------------------------------------------------------------ capture

    def _capture_sent(self, message):
        cdef bytes b = message.encode("utf-8", "surrogatepass") if isinstance(message, str) \
            else bytes(message)
        if self.capture_sent_filter is not None:
            b = self.capture_sent_filter(b)
        self._capture(CAPTURE_SENT, ff_now_ns(), b, len(b))

    def start_capture(self, buffer, Py_ssize_t flush_bytes=1 << 20, on_capture=None,
                      sent_filter=None):
        """Append every whole message (both directions) to the writable bytes-like ``buffer``
        (what does not fit is counted in ``n_capture_dropped``); ``on_capture()`` runs at the
        end of a read once ``flush_bytes`` are held -- it should ``swap_capture`` a fresh
        buffer in; ``sent_filter(bytes) -> bytes`` rewrites each sent message before it is
        captured (the recorder removes credentials)."""
        self._hold(buffer)
        self.capture_flush_bytes = flush_bytes
        self.on_capture = on_capture
        self.capture_sent_filter = sent_filter

    def _hold(self, buffer):
        if self._cap_obj is not None:
            raise RuntimeError("already capturing")
        PyObject_GetBuffer(buffer, &self._cap_view, PyBUF_SIMPLE | PyBUF_WRITABLE)
        self._cap_obj = buffer
        self._cap = <char *>self._cap_view.buf
        self._cap_len = 0
        self.capture_limit = self._cap_view.len

    def _release(self):
        cdef Py_ssize_t n = self._cap_len
        obj = self._cap_obj
        if obj is not None:
            PyBuffer_Release(&self._cap_view)
            self._cap_obj = None
        self._cap = NULL
        self._cap_len = 0
        self.capture_limit = 0
        count = self.n_captured - self._cap_taken
        self._cap_taken = self.n_captured
        return obj, n, count

    def swap_capture(self, new_buffer):
        """Go on capturing into ``new_buffer``; returns ``(old buffer, bytes in it, messages)``
        -- no copy (the recorder hands the old buffer to its writer process)."""
        if self._cap_obj is None:
            raise RuntimeError("not capturing")
        out = self._release()
        self._hold(new_buffer)
        return out

    def stop_capture(self):
        """Stop capturing; returns ``(buffer, bytes in it, messages)`` (buffer None if not
        capturing)."""
        self.on_capture = None
        self.capture_sent_filter = None
        return self._release()

    def capture_note(self, bytes payload, int64_t ts_ns=0):
        """Append a CAPTURE_NOTE record (connection open/close markers) in stream order."""
        if not self.capture_limit:
            return False
        self._capture(CAPTURE_NOTE, ts_ns if ts_ns else ff_now_ns(), payload,
                      len(payload))
        return True

    @property
    def capture_len(self):
        """Bytes captured into the current buffer."""
        return self._cap_len

    @property
    def idle_ns(self):
        """Nanoseconds since the last socket read; 0 while reading is paused (back-pressure:
        the silence is ours, not the server's)."""
        if self.paused:
            return 0
        return ff_mono_ns() - self.last_recv_ns

    @property
    def stats(self):
        return {"frames": self.n_frames, "reads": self.n_reads, "wakes": self.n_wakes,
                "errors": self.n_errors, "fragmented_messages": self.n_fragments,
                "sent": self.n_sent, "oversize": self.n_oversize}
