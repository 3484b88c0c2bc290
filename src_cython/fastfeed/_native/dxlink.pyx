# cython: freethreading_compatible = False
"""DXLink (tastytrade / dxFeed) protocol core: sans-I/O session and COMPACT/FULL decoder.

Two public classes:

``DXLinkDecoder``
    Bytes in, records out. ``feed(message)`` takes ONE whole DXLink JSON message and writes every
    event of a ``FEED_DATA`` message straight into the per-type record rings (no Python object per
    event); ``drain(event_type)`` returns what was published since the last drain. Other messages
    (FEED_CONFIG, CHANNEL_OPENED, ERROR, ...) are parsed with orjson (they are rare) and become
    typed control events in ``self.control``; FEED_CONFIG ``eventFields`` updates the field table
    of its (channel, event type). Usable alone to replay recorded frames without a socket.

``DXLinkSession``
    The decoder plus the client state machine: SETUP -> AUTH -> CHANNEL_REQUEST -> FEED_SETUP ->
    FEED_SUBSCRIPTION, outgoing messages appended to ``self.outbox`` (bytes), keepalive
    bookkeeping with an explicit clock (``now`` in seconds, any monotonic clock the caller likes).

The FEED_DATA hot path (C: ``src_cython/include/fastfeed/dxlink_scan.h``)
------------------------------------------------------------------------
One pass over the message: the envelope keys are scanned in place; when ``type`` is FEED_DATA
the ``data`` array is walked element by element. A ``"<Type>", [values...]`` pair (COMPACT) is
decoded with the field table of (channel, type): a C array of ``{kind, offset, enum}`` entries
of the generated ``dxlink_fields.h``, in the order FEED_CONFIG announced (authoritative, merged
per type across repeated FEED_CONFIGs) or, when a FEED_CONFIG has no ``eventFields``, the
order the client's FEED_SETUP requested (``feed(message, sent=True)``); before any FEED_CONFIG
the event class's ``FIELDS`` order is used. Server fields fastfeed has no slot for are skipped
(``kind = SKIP``). An object element is a FULL event (keys looked up by name; servers send FULL
intermittently even when COMPACT was requested). Each event starts as a copy of the class
template (NaN doubles, zeros), so slots the server did not send stay NaN / 0 / empty. Numbers
go through ``fastnum.h`` / ``numparse.h`` (bit-exact with ``float()``; integers exact in int64,
never through a double). Symbols and other strings are interned in the decoder's
``SymbolTable``. Enum strings the spec does not list are kept under codes of their own
(``fastfeed._native.events.ENUM_NAMES``; counted in ``stats["unknown_enums"]``). Event types
fastfeed has no record for (Configuration, Message, new ones) are skipped and counted in
``stats["skipped"]``. DOM_SNAPSHOT (the DOM service) becomes a ``DomSnapshot`` record.

Error contract (``core.pxd``): every valid event is published. A bad value costs only its own
event (counted in ``stats["bad_events"]``); a ``[type, values]`` pair whose array cannot be
split into events (malformed JSON, a length that is not a multiple of the field count) is
dropped whole. The first problem becomes ``fastfeed.ProtocolError`` naming the event type, the
field and the byte offset, raised by ``feed()`` after publishing the good events. ``null`` in
any slot means "no value" (the template value stays). Messages larger than
``max_message_size`` (default 4 MiB) are refused outright.

Channel layout (decision)
-------------------------
``DXLinkSession`` opens **one FEED channel per event type**, with tastytrade's numbers (Candle 1,
Greeks 3, Profile 5, Quote 7, Summary 9, TheoPrice 11, TimeAndSale 13, Trade 15, Underlying 17;
TradeETH, which tastytrade does not use, 19). Reasons: (1) it is the layout the production
server has seen from every tastytrade client since 2023, so its FEED_CONFIG / aggregation
behaviour per channel is known to work; (2) the aggregation period is per channel, and a bot
wants Quotes conflated (0.1 s) while it must not conflate TimeAndSale or Candle snapshots;
(3) CHANNEL_CANCEL and ``reset`` then act on one event type without touching the others, and a
server-side problem on one channel (ERROR, unsolicited CHANNEL_CLOSED) does not stop the others.
The cost (a few more control messages at start-up) is paid once per connection. The decoder does
not depend on it: any channel carrying any mix of types decodes the same way.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memset

from fastfeed._native.core cimport ProtocolCore
from fastfeed._native.cring cimport ff_ring
from fastfeed._native.symbols cimport SymbolTable

import math
import struct

import orjson

from fastfeed._native.core import DEFAULT_RING_BYTES, now_ns, ring_capacity_for
from fastfeed._records_meta import ENUMS, LAYOUTS
from fastfeed._native.events import ENUM_NAMES, enum_code_add
from fastfeed.errors import ProtocolError, SubscriptionError
import fastfeed.dxfeed as _dxfeed

cdef extern from "fastfeed/compat.h":
    int ff_cpu_v3()

cdef extern from "fastfeed/dxlink_scan.h":
    int ff_dx_select(int v3)

#: the build of the COMPACT row decoder this process runs, chosen once at import (compat.h's
#: runtime dispatch): "x86-64-v3" on a CPU that has it, else "baseline" (FASTFEED_CPU=baseline
#: forces it)
CPU_PATH = "x86-64-v3" if ff_dx_select(ff_cpu_v3()) else "baseline"

cdef extern from "fastfeed/dxlink_scan.h":
    enum:
        FF_DX_NTYPES
        FF_DX_MAXCH
        FF_DX_MAXCODES
        FF_DX_MAXREC
        FF_DX_NENUMS
        FF_RT_DX_MAX
    enum:
        DXK_SKIP
        DXK_SYMBOL
        DXK_EVTYPE
        DXK_F64
        DXK_I64
        DXK_I32
        DXK_BOOL
        DXK_ENUM
        DXK_CHAR
        DXK_STR
    enum:
        DXE_OK
        DXE_SYNTAX
        DXE_TYPE
        DXE_INT
        DXE_RANGE
        DXE_COUNT
        DXE_CHAR
        DXE_NOTARRAY
        DXE_NOEVTYPE
        DXE_DATA
        DXE_NOMEM
        DXE_TRAILING
        DXE_ELEMENT
        DXE_ENUM
    ctypedef struct ff_dxfield:
        const char *name
        uint32_t off
        uint16_t namelen
        uint8_t kind
        uint8_t enum_id
    ctypedef struct ff_dxtype:
        const char *name
        uint32_t rec_size
        const ff_dxfield *def_f
        int def_n
        const ff_dxfield *names
        int names_n
    const ff_dxtype FF_DX_TYPES[]
    const int FF_DX_ENUM_COUNT[]
    ctypedef struct ff_dxchan:
        int64_t channel
        ff_dxfield *f[FF_DX_NTYPES]
        int nf[FF_DX_NTYPES]
    ctypedef struct ff_dxenum:
        const char *names[FF_DX_MAXCODES]
        uint32_t lens[FF_DX_MAXCODES]
        int n
    void ff_dx_enums_init(ff_dxenum *t)
    ctypedef uint32_t (*ff_dx_intern_fn)(void *owner, const char *s, size_t n) noexcept
    ctypedef int (*ff_dx_enum_fn)(void *owner, int enum_id, const char *s, size_t n) noexcept
    ctypedef struct ff_dxctx:
        ff_ring *ring[FF_DX_NTYPES]
        const char *tmpl[FF_DX_NTYPES]
        uint32_t rec_size[FF_DX_NTYPES]
        const char *tname[FF_DX_NTYPES]
        uint32_t tlen[FF_DX_NTYPES]
        const ff_dxfield *def_f[FF_DX_NTYPES]
        int def_n[FF_DX_NTYPES]
        const ff_dxfield *full_f[FF_DX_NTYPES]
        int full_n[FF_DX_NTYPES]
        uint64_t committed[FF_DX_NTYPES]
        ff_dxchan chans[FF_DX_MAXCH]
        int nchans
        ff_dx_intern_fn intern
        void *owner
        char *scratch
        size_t scratch_cap
        ff_dxenum *enums
        ff_dx_enum_fn enum_add
        int64_t ts_recv
        uint64_t n_overflowed
        uint64_t n_skipped
        uint64_t n_bad_events
        uint64_t n_unknown_enums
        int err
        int err_rtype
        const char *err_field
        int64_t err_off
        int err_nf
    int64_t ff_dx_message(ff_dxctx *c, const char *buf, size_t size) nogil


# --------------------------------------------------------------------------------------------
# Static tables: the generated C tables (fastfeed/dxlink_fields.h) and the enum names
# --------------------------------------------------------------------------------------------

#: wire event types the decoder publishes, in rtype order
DX_TYPES = tuple((<bytes>FF_DX_TYPES[rt].name).decode() for rt in range(1, FF_RT_DX_MAX + 1))

cdef dict _RTYPE_OF = {wire: rt for rt, wire in enumerate(DX_TYPES, start=1)}   # wire -> rtype
cdef dict _CLASS_OF = {wire: _dxfeed.EVENT_CLASSES[wire] for wire in DX_TYPES}  # wire -> class
cdef tuple _ENUM_ORDER = tuple(ENUMS)             # enum id -> enum name

# Every dxFeed enum's names, shared by all decoders of the process (codes are process-wide):
# the spec's, then names met on the wire that the spec does not list (see _enum_add_cb).
cdef ff_dxenum _ENUMS[FF_DX_NENUMS]
ff_dx_enums_init(_ENUMS)
cdef list _ENUM_KEEP = []                         # bytes the added names point into


cdef ff_dxfield *_build_table(int rt, names, int *nout) except NULL:
    """A COMPACT field table for the wire names ``names`` of type ``rt`` (FEED_CONFIG order):
    each name's entry of the generated table, SKIP for names fastfeed has no slot for."""
    cdef Py_ssize_t n = len(names), i
    cdef int j
    cdef const ff_dxtype *t = &FF_DX_TYPES[rt]
    cdef ff_dxfield *out = <ff_dxfield *>malloc(max(n, 1) * sizeof(ff_dxfield))
    cdef bytes b
    if out == NULL:
        raise MemoryError()
    for i in range(n):
        b = (<str>names[i]).encode("utf-8")
        memset(&out[i], 0, sizeof(ff_dxfield))
        out[i].kind = DXK_SKIP
        for j in range(t.names_n):
            if t.names[j].namelen == len(b) and memcmp(t.names[j].name, <const char *>b, len(b)) == 0:
                out[i] = t.names[j]
                break
        else:
            out[i].name = b"?"     # static: SKIP fields never report their name
            out[i].namelen = 1
    nout[0] = <int>n
    return out


def _names_of(int rt, bint full):
    """The wire names of the generated default (``full=False``) or name (``full=True``) table."""
    cdef const ff_dxtype *t = &FF_DX_TYPES[rt]
    cdef int j, n = t.names_n if full else t.def_n
    cdef const ff_dxfield *f = t.names if full else t.def_f
    return tuple(f[j].name[:f[j].namelen].decode() for j in range(n))


_DOM = "DomSnapshot"                              # the DOM service's record
_DOM_CLASS = _dxfeed.DOM_CLASSES[_DOM]
_DOM_RTYPE = LAYOUTS[_DOM]["rtypes"][_DOM]


def _dom_number(v, str side):
    """A DOM level's price or size: a JSON number (int kept as int: to_dict gives it back) or
    one of dxLink's JSONDouble strings."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if v is None or v == "NaN":
        return math.nan
    if v == "Infinity":
        return math.inf
    if v == "-Infinity":
        return -math.inf
    raise ProtocolError("dxlink", f"DOM_SNAPSHOT {side} level has a non-number price/size", field=side)


_REASONS = {
    DXE_SYNTAX: "malformed JSON",
    DXE_TYPE: "wrong value type",
    DXE_INT: "integer expected",
    DXE_RANGE: "integer out of range",
    DXE_COUNT: "value array length is not a multiple of the field count",
    DXE_CHAR: "char field is not a single character",
    DXE_NOTARRAY: "event values are not an array",
    DXE_NOEVTYPE: "FULL event without eventType",
    DXE_DATA: "FEED_DATA data is not an array",
    DXE_NOMEM: "out of memory",
    DXE_TRAILING: "trailing characters after the message",
    DXE_ELEMENT: "FEED_DATA element is neither an event type name nor an event object",
    DXE_ENUM: f"too many distinct names for an enum field (max {FF_DX_MAXCODES})",
}


cdef int _enum_add_cb(void *owner, int enum_id, const char *s, size_t n) noexcept:
    """A name the spec does not list for enum ``enum_id``: give it the next code (the same one
    the event classes use, see events.enum_code) and remember its bytes. 0 when it cannot."""
    cdef ff_dxenum *e = &_ENUMS[enum_id]
    cdef int code
    cdef bytes b
    try:
        name = s[:n].decode("utf-8", "surrogateescape")
        code = enum_code_add(_ENUM_ORDER[enum_id], name)
        if code <= 0 or code > FF_DX_MAXCODES:
            return 0
        names = ENUM_NAMES[_ENUM_ORDER[enum_id]]
        while e.n < code:          # names another path added first (event constructors)
            b = names[e.n].encode("utf-8", "surrogateescape")
            _ENUM_KEEP.append(b)
            e.names[e.n] = <const char *>b
            e.lens[e.n] = <uint32_t>len(b)
            e.n += 1
        return code
    except BaseException:
        return 0


cdef uint32_t _intern_cb(void *owner, const char *s, size_t n) noexcept:
    return (<SymbolTable>owner).intern(s, <Py_ssize_t>n)


# --------------------------------------------------------------------------------------------
# Control events (rare: small Python objects)
# --------------------------------------------------------------------------------------------

class ControlEvent:
    """Base of the DXLink control events appended to ``decoder.control``."""

    __slots__ = ("channel",)

    def _fields(self):
        out = []
        for cls in type(self).__mro__:
            out.extend(getattr(cls, "__slots__", ()))
        return out

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, k) == getattr(other, k) for k in self._fields())

    __hash__ = None


class SetupReceived(ControlEvent):
    """The server's SETUP: its version and keepalive timeouts (seconds)."""

    __slots__ = ("version", "keepalive_timeout", "accept_keepalive_timeout")

    def __init__(self, version, keepalive_timeout, accept_keepalive_timeout, channel=0):
        self.channel = channel
        self.version = version
        self.keepalive_timeout = keepalive_timeout
        self.accept_keepalive_timeout = accept_keepalive_timeout


class AuthState(ControlEvent):
    """AUTH_STATE: ``state`` is "AUTHORIZED" or "UNAUTHORIZED"; ``rejected`` is True when an
    UNAUTHORIZED answers a token this session sent (the streamer raises AuthenticationError)."""

    __slots__ = ("state", "user_id", "rejected")

    def __init__(self, state, user_id=None, rejected=False, channel=0):
        self.channel = channel
        self.state = state
        self.user_id = user_id
        self.rejected = rejected


class ChannelOpened(ControlEvent):
    __slots__ = ("service", "parameters")

    def __init__(self, channel, service=None, parameters=None):
        self.channel = channel
        self.service = service
        self.parameters = parameters


class ChannelClosed(ControlEvent):
    __slots__ = ()

    def __init__(self, channel):
        self.channel = channel


class FeedConfig(ControlEvent):
    """FEED_CONFIG: ``event_fields`` as sent (None when absent)."""

    __slots__ = ("aggregation_period", "data_format", "event_fields")

    def __init__(self, channel, aggregation_period=None, data_format=None, event_fields=None):
        self.channel = channel
        self.aggregation_period = aggregation_period
        self.data_format = data_format
        self.event_fields = event_fields


class ErrorReceived(ControlEvent):
    """ERROR from the server (connection-level when ``channel`` is 0)."""

    __slots__ = ("error", "message")

    def __init__(self, channel, error=None, message=None):
        self.channel = channel
        self.error = error
        self.message = message


class DomConfig(ControlEvent):
    """DOM_CONFIG: the DOM service's settings for a channel, as sent (None when absent)."""

    __slots__ = ("aggregation_period", "depth_limit", "data_format", "order_fields")

    def __init__(self, channel, aggregation_period=None, depth_limit=None, data_format=None,
                 order_fields=None):
        self.channel = channel
        self.aggregation_period = aggregation_period
        self.depth_limit = depth_limit
        self.data_format = data_format
        self.order_fields = order_fields


class KeepaliveReceived(ControlEvent):
    __slots__ = ()

    def __init__(self, channel=0):
        self.channel = channel


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024


cdef class DXLinkDecoder(ProtocolCore):
    """Sans-I/O DXLink decoder: ``feed(message) -> int`` and ``drain(event_type) -> EventBatch``.

    ``policy``: ring overflow policy ("drop_oldest" or "backpressure"); ``ring_bytes``: about
    how many bytes each ring (one per event type) holds; ``max_message_size``: larger messages
    are refused with ProtocolError.

    ``feed(message, sent=True)`` takes a message the client sent (a two-way capture): the
    decoder learns each channel's ``acceptEventFields`` from FEED_SETUP, so a FEED_CONFIG
    without ``eventFields`` (what tastytrade's server sends) means "as requested".
    """

    cdef ff_dxctx ctx
    cdef readonly Py_ssize_t max_message_size
    cdef dict _chan_fields              # channel -> {wire type: [field names]} (in force)
    cdef dict _requested                # channel -> {wire type: [field names]} (client FEED_SETUP)
    cdef dict _dom_symbol               # DOM channel -> symbol (CHANNEL_REQUEST / CHANNEL_OPENED)
    cdef list _keep                     # objects the C context points into
    cdef public uint64_t n_bad_events   # events dropped for a bad value (each also reported)
    cdef public uint64_t n_unknown_enums  # enum values the spec does not list (kept)
    cdef public uint64_t n_sent         # client messages fed with sent=True

    def __cinit__(self, *args, policy="drop_oldest", ring_bytes=DEFAULT_RING_BYTES,
                  max_message_size=DEFAULT_MAX_MESSAGE_SIZE, **kwargs):
        cdef int rt, pol
        memset(&self.ctx, 0, sizeof(ff_dxctx))
        self.feed_name = "dxlink"
        self.max_message_size = max_message_size
        self._chan_fields = {}
        self._requested = {}
        self._dom_symbol = {}
        self._keep = []
        if policy in ("drop_oldest", 0):
            pol = 0
        elif policy in ("backpressure", 1):
            pol = 1
        else:
            raise ValueError(f"unknown overflow policy {policy!r}")
        for wire in DX_TYPES:
            rt = _RTYPE_OF[wire]
            self._add_ring(wire, wire, rt, ring_capacity_for(wire, ring_bytes), pol)
            self.ctx.ring[rt] = self.rptr[rt]
            tmpl = (<object>_CLASS_OF[wire])._DEFAULTS
            self._keep.append(tmpl)
            self.ctx.tmpl[rt] = <const char *>(<bytes>tmpl)
            self.ctx.rec_size[rt] = FF_DX_TYPES[rt].rec_size
            if len(<bytes>tmpl) != self.ctx.rec_size[rt] or self.ctx.rec_size[rt] > FF_DX_MAXREC:
                raise RuntimeError(f"dxlink: bad template for {wire}")
            self.ctx.tname[rt] = FF_DX_TYPES[rt].name
            self.ctx.tlen[rt] = <uint32_t>len(<str>wire)
            self.ctx.def_f[rt] = FF_DX_TYPES[rt].def_f
            self.ctx.def_n[rt] = FF_DX_TYPES[rt].def_n
            self.ctx.full_f[rt] = FF_DX_TYPES[rt].names
            self.ctx.full_n[rt] = FF_DX_TYPES[rt].names_n
        self._add_ring(_DOM, _DOM, _DOM_RTYPE, ring_capacity_for(_DOM, ring_bytes), pol)
        self.ctx.intern = _intern_cb
        self.ctx.owner = <void *>self.symbols
        self.ctx.enums = _ENUMS
        self.ctx.enum_add = _enum_add_cb

    def __init__(self, *, policy="drop_oldest", ring_bytes=DEFAULT_RING_BYTES,
                 max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        pass

    def __dealloc__(self):
        cdef int i, rt
        for i in range(self.ctx.nchans):
            for rt in range(FF_DX_NTYPES):
                free(self.ctx.chans[i].f[rt])
        free(self.ctx.scratch)

    # ---- hot path ---------------------------------------------------------------------------

    cdef Py_ssize_t feed_ptr(self, const char *data, Py_ssize_t size) noexcept:
        cdef int64_t n
        self.n_messages += 1
        self.n_bytes += <uint64_t>size
        if size > self.max_message_size:
            self.n_errors += 1
            self._fail_too_large(size)
            return -1
        self.ctx.ts_recv = self.ts_recv
        n = ff_dx_message(&self.ctx, data, <size_t>size)
        if n >= 0:
            self.n_events += <uint64_t>n
            if self.ctx.n_overflowed:
                self.n_overflowed += self.ctx.n_overflowed
                self.ctx.n_overflowed = 0
            if self.ctx.n_skipped:
                self.n_skipped += self.ctx.n_skipped
                self.ctx.n_skipped = 0
            if self.ctx.n_bad_events:
                self.n_bad_events += self.ctx.n_bad_events
                self.ctx.n_bad_events = 0
            if self.ctx.n_unknown_enums:
                self.n_unknown_enums += self.ctx.n_unknown_enums
                self.ctx.n_unknown_enums = 0
            if self.ctx.err:
                self.n_errors += 1
                self._set_error()
            return <Py_ssize_t>n
        return self._control_ptr(data, size)

    cdef Py_ssize_t _control_ptr(self, const char *data, Py_ssize_t size) noexcept:
        cdef uint64_t before = self.n_events
        try:
            raw = PyBytes_FromStringAndSize(data, size)
            self._on_message(raw)
            return <Py_ssize_t>(self.n_events - before)     # DOM_SNAPSHOT records
        except ProtocolError as e:
            self.n_errors += 1
            self.error = e
            return -1
        except BaseException as e:
            self.n_errors += 1
            self.error = ProtocolError("dxlink", f"cannot handle message: {type(e).__name__}: {e}")
            return -1

    cdef void _fail_too_large(self, Py_ssize_t size) noexcept:
        try:
            self.error = ProtocolError(
                "dxlink", f"message too large ({size} bytes > max_message_size {self.max_message_size})")
        except BaseException:
            pass

    cdef void _set_error(self) noexcept:
        cdef int rt = self.ctx.err_rtype
        try:
            reason = _REASONS.get(self.ctx.err, "malformed message")
            if self.ctx.err == DXE_COUNT:
                reason = f"{reason} ({self.ctx.err_nf})"
            event_type = DX_TYPES[rt - 1] if 0 < rt < FF_DX_NTYPES else None
            field = None
            if self.ctx.err_field != NULL:
                field = (<bytes>self.ctx.err_field).decode("utf-8", "replace")
            self.error = ProtocolError("dxlink", reason, event_type=event_type, field=field,
                                       offset=self.ctx.err_off if self.ctx.err_off >= 0 else None)
        except BaseException:
            pass

    # ---- control path (rare; Python) --------------------------------------------------------

    def feed(self, message, *, bint sent=False):
        """Decode one whole message (see ProtocolCore.feed). ``sent=True``: a message the client
        sent (replaying a two-way capture); nothing is published, the decoder only learns what
        the client asked for (FEED_SETUP ``acceptEventFields``). Returns the events written."""
        if not sent:
            return self._feed(message)
        self.n_sent += 1
        try:
            self._on_sent(bytes(message.encode("utf-8", "surrogatepass") if isinstance(message, str)
                                else message))
        except ProtocolError:
            self.n_errors += 1
            raise
        return 0

    def _parse(self, raw):
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ProtocolError("dxlink", f"message is not valid JSON ({e.msg if hasattr(e, 'msg') else e})",
                                offset=getattr(e, "pos", None)) from None
        if not isinstance(msg, dict):
            raise ProtocolError("dxlink", "message is not a JSON object")
        typ = msg.get("type")
        if not isinstance(typ, str):
            raise ProtocolError("dxlink", "message has no string 'type'")
        ch = msg.get("channel", 0)
        if not isinstance(ch, int) or isinstance(ch, bool):
            raise ProtocolError("dxlink", f"{typ}: 'channel' is not an integer", field="channel")
        return typ, ch, msg

    def _on_message(self, raw):
        typ, ch, msg = self._parse(raw)
        self._dispatch(typ, ch, msg)

    def _on_sent(self, raw):
        """A client message: FEED_SETUP's ``acceptEventFields`` are what a later FEED_CONFIG
        without ``eventFields`` (for those types) confirms. Other client messages change
        nothing the decoder keeps."""
        typ, ch, msg = self._parse(raw)
        if typ == "CHANNEL_REQUEST":
            self._note_dom_channel(ch, msg)
            return
        if typ != "FEED_SETUP":
            return
        ev = msg.get("acceptEventFields")
        if ev is None:
            return
        self._check_event_fields(ev, "acceptEventFields")
        req = self._requested.setdefault(ch, {})
        for wire, names in ev.items():
            if names:
                req[wire] = list(names)
            else:
                req.pop(wire, None)   # empty list = the server's defaults: nothing known

    def _check_event_fields(self, ev, str key):
        if not isinstance(ev, dict):
            raise ProtocolError("dxlink", f"{key} is not an object", field=key)
        for wire, names in ev.items():
            if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
                raise ProtocolError("dxlink", f"{key} entry is not a list of names",
                                    event_type=wire, field=key)

    def _dispatch(self, str typ, ch, dict msg):
        """Turn one parsed control message into control events (overridden by the session)."""
        if typ == "FEED_CONFIG":
            ev = msg.get("eventFields")
            if ev is not None:
                self._apply_event_fields(ch, ev)
            req = self._requested.pop(ch, None)
            if req:
                # types the server did not list are served as the client requested them
                self._apply_event_fields(ch, {w: n for w, n in req.items()
                                              if ev is None or w not in ev})
            self.control.append(FeedConfig(ch, msg.get("aggregationPeriod"),
                                           msg.get("dataFormat"), ev))
        elif typ == "KEEPALIVE":
            self.control.append(KeepaliveReceived(ch))
        elif typ == "AUTH_STATE":
            self.control.append(AuthState(msg.get("state"), msg.get("userId"), False, ch))
        elif typ == "SETUP":
            self.control.append(SetupReceived(msg.get("version"), msg.get("keepaliveTimeout"),
                                              msg.get("acceptKeepaliveTimeout"), ch))
        elif typ == "CHANNEL_OPENED":
            self._note_dom_channel(ch, msg)
            self.control.append(ChannelOpened(ch, msg.get("service"), msg.get("parameters")))
        elif typ == "CHANNEL_CLOSED":
            self._forget_channel(ch)
            self.control.append(ChannelClosed(ch))
        elif typ == "DOM_SNAPSHOT":
            self._dom_snapshot(ch, msg)
        elif typ == "DOM_CONFIG":
            self.control.append(DomConfig(ch, msg.get("aggregationPeriod"), msg.get("depthLimit"),
                                          msg.get("dataFormat"), msg.get("orderFields")))
        elif typ == "ERROR":
            self.control.append(ErrorReceived(ch, msg.get("error"), msg.get("message")))
        # anything else (unknown types, client-side messages, escaped FEED_DATA) is ignored

    def _note_dom_channel(self, ch, dict msg):
        """A DOM channel's symbol, from the client's CHANNEL_REQUEST or the server's echo."""
        params = msg.get("parameters")
        if msg.get("service") == "DOM" and isinstance(params, dict) and isinstance(params.get("symbol"), str):
            self._dom_symbol[ch] = params["symbol"]

    def _dom_snapshot(self, ch, dict msg):
        """DOM_SNAPSHOT -> one DomSnapshot record (rare: a Python path). Order fields other
        than price and size are counted in ``stats["skipped"]``."""
        t = msg.get("time", 0)
        if t is None:
            t = 0
        if not isinstance(t, int) or isinstance(t, bool) or not -2**63 <= t < 2**63:
            raise ProtocolError("dxlink", "DOM_SNAPSHOT time is not an integer", field="time")
        sides = {}
        for side in ("bids", "asks"):
            levels = msg.get(side)
            if levels is None:
                levels = []
            if not isinstance(levels, list):
                raise ProtocolError("dxlink", f"DOM_SNAPSHOT {side} is not an array", field=side)
            out = []
            for lv in levels:
                if not isinstance(lv, dict):
                    raise ProtocolError("dxlink", f"DOM_SNAPSHOT {side} level is not an object", field=side)
                out.append([_dom_number(lv.get("price"), side), _dom_number(lv.get("size"), side)])
                self.n_skipped += sum(1 for k in lv if k not in ("price", "size"))
            sides[side] = out
        rec = bytearray(_DOM_CLASS(time=t, bids=sides["bids"], asks=sides["asks"]).record)
        sym = self._dom_symbol.get(ch)
        struct.pack_into("<Iq", rec, 4, self.symbols.intern_str(sym) if sym is not None else 0,
                         self.ts_recv or now_ns())
        try:
            self.rings[_DOM].push(rec)
        except BufferError:                 # a back-pressure ring at its maximum size
            self.n_overflowed += 1
            return
        self.n_events += 1

    def event_fields(self, channel, event_type):
        """The COMPACT field order used for ``event_type`` on ``channel`` (FEED_CONFIG's, or
        the class's FIELDS before any FEED_CONFIG)."""
        wire = self._wire_name(event_type)
        got = self._chan_fields.get(channel, {}).get(wire)
        if got is not None:
            return tuple(got)
        return tuple(_CLASS_OF[wire].FIELDS)

    cdef int _chan_index(self, int64_t ch) except -1:
        cdef int i
        for i in range(self.ctx.nchans):
            if self.ctx.chans[i].channel == ch:
                return i
        if self.ctx.nchans >= FF_DX_MAXCH:
            raise ProtocolError("dxlink", f"too many channels with FEED_CONFIG (max {FF_DX_MAXCH})")
        i = self.ctx.nchans
        memset(&self.ctx.chans[i], 0, sizeof(ff_dxchan))
        self.ctx.chans[i].channel = ch
        self.ctx.nchans += 1
        return i

    def _apply_event_fields(self, ch, ev):
        cdef int i, rt, nf
        cdef ff_dxfield *t
        self._check_event_fields(ev, "eventFields")
        for wire, names in ev.items():
            if wire not in _RTYPE_OF or not names:
                continue          # unknown event type / empty list (= server defaults): keep
            rt = _RTYPE_OF[wire]
            i = self._chan_index(ch)
            t = _build_table(rt, names, &nf)
            free(self.ctx.chans[i].f[rt])
            self.ctx.chans[i].f[rt] = t
            self.ctx.chans[i].nf[rt] = nf
            self._chan_fields.setdefault(ch, {})[wire] = list(names)

    def _forget_channel(self, ch):
        """Drop the FEED_CONFIG field tables of ``ch`` (after CHANNEL_CLOSED / reconnect)."""
        cdef int i, rt
        self._chan_fields.pop(ch, None)
        self._requested.pop(ch, None)
        self._dom_symbol.pop(ch, None)
        for i in range(self.ctx.nchans):
            if self.ctx.chans[i].channel == ch:
                for rt in range(FF_DX_NTYPES):
                    free(self.ctx.chans[i].f[rt])
                self.ctx.nchans -= 1
                if i != self.ctx.nchans:
                    self.ctx.chans[i] = self.ctx.chans[self.ctx.nchans]
                memset(&self.ctx.chans[self.ctx.nchans], 0, sizeof(ff_dxchan))
                return

    def reset_channels(self):
        """Forget every channel's FEED_CONFIG (a new connection starts from the class FIELDS)."""
        cdef int i, rt
        self._chan_fields.clear()
        self._requested.clear()
        self._dom_symbol.clear()
        for i in range(self.ctx.nchans):
            for rt in range(FF_DX_NTYPES):
                free(self.ctx.chans[i].f[rt])
        memset(self.ctx.chans, 0, sizeof(self.ctx.chans))
        self.ctx.nchans = 0

    def enum_name(self, str enum, int code):
        """Name of enum ``code`` (e.g. ``enum_name("Direction", 6) == "UP"``); None for 0."""
        return enum_name(enum, code)

    @property
    def stats(self):
        """ProtocolCore's counters plus ``bad_events`` (events dropped for a bad value, each
        reported), ``unknown_enums`` (enum values the spec does not list, kept under codes of
        their own) and ``sent`` (client messages fed with ``sent=True``)."""
        d = ProtocolCore.stats.__get__(self)
        d["bad_events"] = self.n_bad_events
        d["unknown_enums"] = self.n_unknown_enums
        d["sent"] = self.n_sent
        return d


def enum_name(str enum, int code):
    """Name of code ``code`` of enum ``enum`` (0 = absent -> None); codes above the spec's
    names are names met on the wire that the spec does not list."""
    names = ENUM_NAMES[enum]
    if 0 < code <= len(names):
        return names[code - 1]
    return None


def enum_code(str enum, str name):
    """Code of ``name`` in enum ``enum`` (0 when never seen)."""
    names = ENUM_NAMES[enum]
    try:
        return names.index(name) + 1
    except ValueError:
        return 0


# --------------------------------------------------------------------------------------------
# Session: typed Python in fastfeed/dxlink/session.py (issue #12). The names it used to have
# here still resolve (lazily: the session module imports this one).

_SESSION_NAMES = frozenset({
    "DXLinkSession", "CHANNELS", "MAX_SUBSCRIPTION_BYTES", "INITIAL", "SETUP_SENT",
    "UNAUTHORIZED", "AUTHORIZED", "CH_CLOSED", "CH_REQUESTED", "CH_OPENED", "CH_CANCELLING"})


def __getattr__(name):
    if name in _SESSION_NAMES:
        from fastfeed.dxlink import session
        return getattr(session, name)
    raise AttributeError(f"module 'fastfeed._native.dxlink' has no attribute {name!r}")
