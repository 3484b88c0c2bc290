# cython: freethreading_compatible = False
"""polygon.io / Massive websocket protocol core (sans-I/O): decoder and session.

``PolygonDecoder(cluster="stocks")`` turns whole websocket messages (JSON arrays of event
objects, mixed types) into fixed-layout records, one ring per wire ``ev`` code
(``drain("T")``, ``drain("AM")``, ``drain(EquityTrade)``...). The hot loop is C
(``fastfeed/polygon_scan.h``): no Python object and no Python call per event (symbols are
interned through a small C cache; a Python string exists once per distinct symbol).

Every ev code of every cluster has a ring in every decoder: the record layouts are supersets
over the clusters (options ``T`` is a stocks ``T`` without ``i``/``z``; indices ``A`` is an
``A`` without volumes), so ``cluster`` only matters for the session's channel strings.
``drain(cls)`` for a layout shared by several ev codes (EquityAgg = ``A``/``AM``, CurrencyAgg =
``CA``/``CAS``/``XA``/``XAS``) drains the class's first ev code (``cls.EV_CODES[0]``); use the
wire code (``drain("AM")``) for the others.

Values. Keys in any order; a missing key leaves its presence bit clear, so ``to_dict()`` has
exactly the wire's keys: the record's slots in layout order, then the keys fastfeed has no slot
for, in wire order, with the values ``json.loads`` gives for their raw text (kept in the ring's
spill log, like strings longer than their slot; ``event.extra`` is that dict). Integers stay integers and floats floats
(the record's ``alt`` bit). Timestamps are stored as sent (ms, µs or ns). Escaped strings are
unescaped. A duplicated key: the last value wins (as in ``orjson``).

Bad input -- what happens, per case (the message's other good events are always published,
and the next message decodes normally; ``feed()`` raises the first ``ProtocolError`` of the
message *after* publishing, with ``err.events_written``):

============================================  =========================================  ======
case                                          what the decoder does                      raises
============================================  =========================================  ======
empty / whitespace only                       nothing decoded, ``n_errors`` += 1         yes
not JSON, or JSON but not an array            nothing decoded, ``n_errors`` += 1         yes
message larger than ``max_message_size``      nothing decoded, ``n_errors`` += 1         yes
truncated message / malformed JSON inside     events before the fault published, the     yes
  the array                                   rest of the message dropped (cannot resync)
bytes after the closing ``]``                 all events published                       yes
array element that is not an object           that element skipped (``n_skipped``)       yes
event without ``ev``, or non-string ``ev``,   that event skipped (``n_skipped``)         yes
  or two different ``ev`` values
unknown ``ev`` (new event types appear)       skipped, counted (``n_skipped`` and        no
                                              ``stats["unknown_ev"]``)
known key with a value of the wrong JSON      that event skipped (``n_skipped``)         yes
  type (string price, float in an int array,
  non-integral float in an int slot, integer
  too large for an exact double, -0.0 in an
  int slot, non-canonical decimal string)
invalid UTF-8 / lone surrogate in a string    that event skipped (``n_skipped``)         yes
  the decoder stores (symbol, ``i``, ``ds``…)
fixed-size string longer than its slot        kept whole in the ring's spill log         no
  (``i`` > 32 bytes) or containing NUL        (``stats["spilled_strings"]`` += 1)
key without a slot (``"foo": {...}``)         kept with its raw JSON value (spill log),  no
                                              in ``to_dict()`` / ``event.extra``, counted
                                              in ``stats["unknown_keys"]``
new symbol while the symbol table holds       that event skipped (``n_skipped`` and      yes:
  ``max_symbols``                             ``stats["symbols_refused"]``), logged once ``Symbol-``
                                                                                         ``TableFull``
more array items than inline capacity         the record holds the first N (numpy        no
  (``c``/``i`` > 8 codes, XL2 > 100 levels)   views), the whole list is kept in the
                                              spill log (events / dicts return it);
                                              counted per event (``*_dropped`` field)
                                              and in ``stats["dropped_items"]``
full back-pressure ring at max size           event counted in ``n_overflowed``          no
``status`` object                             typed control event in ``control``         no
============================================  =========================================  ======

``PolygonSession`` adds the connection sequence: ``connected`` → ``auth`` → ``auth_success``
→ (un)subscribe, typed status events, outgoing messages in ``outbox`` (the API key never
appears in a repr, log or exception).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from fastfeed._native.core cimport ProtocolCore
from fastfeed._native.cring cimport ff_ring
from fastfeed._native.records cimport FF_RT_MAX

import orjson

from fastfeed._native.core import ring_capacity_for, DEFAULT_RING_BYTES
from fastfeed.errors import ProtocolError, SymbolTableFull
from fastfeed._native.symbols cimport SymbolTable

import logging

_log = logging.getLogger("fastfeed.polygon")

cdef extern from "fastfeed/compat.h":
    int ff_cpu_v3()

cdef extern from "fastfeed/polygon_scan.h":
    int ff_pg_select(int v3)

#: the build of the decoder this process runs, chosen once at import (compat.h's runtime
#: dispatch): "x86-64-v3" (AVX2, BMI1/2, LZCNT, MOVBE, FMA) on a CPU that has it, else
#: "baseline"; FASTFEED_CPU=baseline in the environment forces the baseline
CPU_PATH = "x86-64-v3" if ff_pg_select(ff_cpu_v3()) else "baseline"

cdef extern from "fastfeed/polygon_scan.h":
    ctypedef uint32_t (*ff_pg_intern_fn)(void *ctx, const char *s, size_t n) noexcept
    ctypedef int (*ff_pg_status_fn)(void *ctx, const char *s, size_t n) noexcept

cdef extern from "fastfeed/polygon_scan.h" nogil:
    enum:
        FF_PGE_OK
        FF_PGE_EMPTY
        FF_PGE_NOT_JSON
        FF_PGE_NOT_ARRAY
        FF_PGE_MALFORMED
        FF_PGE_TRUNCATED
        FF_PGE_TRAILING
        FF_PGE_NOT_OBJECT
        FF_PGE_NO_EV
        FF_PGE_EV_TYPE
        FF_PGE_WRONG_TYPE
        FF_PGE_BAD_STRING
        FF_PGE_STATUS
        FF_PGE_TOO_LARGE
        FF_PGE_SYMTAB_FULL
        FF_PGE_SPILL

    ctypedef struct ff_pg_layout:
        uint32_t size
        uint32_t init_off[3]
        uint32_t init_len[3]
        const uint8_t *tmpl
        int flat

    ctypedef struct ff_pg_dec:
        ff_pg_layout layouts[16]
        ff_ring **rings
        ff_pg_intern_fn intern
        ff_pg_status_fn status
        void *ctx
        int64_t ts_recv
        uint64_t n_events
        uint64_t n_skipped
        uint64_t n_unknown_ev
        uint64_t n_unknown_keys
        uint64_t n_status
        uint64_t n_spilled_str
        uint64_t n_symtab_full
        uint64_t n_overflowed
        uint64_t n_dropped_items
        int err
        size_t err_off
        const char *err_key
        size_t err_key_n
        const char *err_ev
        size_t err_ev_n

    ptrdiff_t ff_pg_decode(ff_pg_dec *d, const char *buf, size_t size)

    ctypedef struct ff_pglayout_desc:
        const char *name
        uint32_t size
        const char *const *evs
        const uint16_t *rtypes
        int nev
    int ff_pg_load_layout(ff_pg_dec *d, int li, const ff_pglayout_desc *ld, const uint8_t *tmpl)

cdef extern from "fastfeed/polygon_fields.h" nogil:
    # the layouts' key tables, emitted by tools/gen_records.py (the one reader of the spec's
    # field kinds)
    const ff_pglayout_desc FF_PG_LAYOUT_DESCS[]
    enum:
        FF_PG_NLAYOUTS


__all__ = [
    "PolygonDecoder",
    "PolygonSession",
    "PolygonStatus",
    "Connected",
    "AuthSuccess",
    "AuthFailed",
    "AuthTimeout",
    "AuthRequired",
    "SubscriptionAck",
    "StatusError",
    "MaxConnections",
    "ForceDisconnect",
    "SlowConsumer",
    "UnknownStatus",
    "CLUSTERS",
    "CLUSTER_PREFIXES",
    "build_channels",
    "split_params",
]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_SYMBOLS = 1_000_000

_REASONS = {
    FF_PGE_EMPTY: "empty message",
    FF_PGE_NOT_JSON: "not JSON",
    FF_PGE_NOT_ARRAY: "message is not a JSON array",
    FF_PGE_MALFORMED: "malformed JSON (rest of the message dropped)",
    FF_PGE_TRUNCATED: "truncated message (rest of the message dropped)",
    FF_PGE_TRAILING: "data after the closing ']'",
    FF_PGE_NOT_OBJECT: "array element is not an object (skipped)",
    FF_PGE_NO_EV: "event without 'ev' (skipped)",
    FF_PGE_EV_TYPE: "'ev' is not a single string (event skipped)",
    FF_PGE_WRONG_TYPE: "wrong value type (event skipped)",
    FF_PGE_BAD_STRING: "invalid string: bad UTF-8 or escape (event skipped)",
    FF_PGE_STATUS: "bad status message",
    FF_PGE_TOO_LARGE: "message too large",
    FF_PGE_SYMTAB_FULL: "symbol table full (max_symbols): events of new symbols skipped",
    FF_PGE_SPILL: "spill storage exhausted (event skipped)",
}


# --------------------------------------------------------------------------------------------
# Status control events
# --------------------------------------------------------------------------------------------


class PolygonStatus:
    """A polygon ``{"ev":"status"}`` message. ``status`` and ``message`` as sent."""

    __slots__ = ("status", "message")
    STATUS = None

    def __init__(self, status, message=None):
        self.status = status
        self.message = message

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.status == other.status and self.message == other.message

    def __hash__(self):
        return hash((type(self).__name__, self.status, self.message))

    def __repr__(self):
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class Connected(PolygonStatus):
    """``connected``: the server is ready for ``auth``."""
    __slots__ = ()
    STATUS = "connected"


class AuthSuccess(PolygonStatus):
    """``auth_success``: the key was accepted; subscriptions may be sent."""
    __slots__ = ()
    STATUS = "auth_success"


class AuthFailed(PolygonStatus):
    """``auth_failed``: the key was rejected (fatal: do not reconnect)."""
    __slots__ = ()
    STATUS = "auth_failed"


class AuthTimeout(PolygonStatus):
    """``auth_timeout``: no ``auth`` arrived in time; the server closes."""
    __slots__ = ()
    STATUS = "auth_timeout"


class AuthRequired(PolygonStatus):
    """``auth_required``: a subscription arrived before ``auth``."""
    __slots__ = ()
    STATUS = "auth_required"


class SubscriptionAck(PolygonStatus):
    """``success``: one channel (un)subscribed (``"subscribed to: T.AAPL"``)."""
    __slots__ = ()
    STATUS = "success"

    @property
    def action(self):
        """``"subscribe"``, ``"unsubscribe"`` or None when the message has another form."""
        m = self.message or ""
        if m.startswith("subscribed to:"):
            return "subscribe"
        if m.startswith("unsubscribed to:") or m.startswith("unsubscribed from:"):
            return "unsubscribe"
        return None

    @property
    def channel(self):
        """The channel named in the message (``"T.AAPL"``), or None."""
        m = self.message or ""
        head, sep, tail = m.partition(":")
        return tail.strip() if sep else None


class StatusError(PolygonStatus):
    """``error``: e.g. a rejected subscription (free text); the connection stays up."""
    __slots__ = ()
    STATUS = "error"


class MaxConnections(PolygonStatus):
    """``max_connections``: over the account's connection cap; the server closes (1008)."""
    __slots__ = ()
    STATUS = "max_connections"


class ForceDisconnect(PolygonStatus):
    """``force_disconnect``: the server kicks this connection."""
    __slots__ = ()
    STATUS = "force_disconnect"


class SlowConsumer(PolygonStatus):
    """``slow_consumer``: the server's buffer for this client overflowed; it closes."""
    __slots__ = ()
    STATUS = "slow_consumer"


class UnknownStatus(PolygonStatus):
    """Any other ``status`` value."""
    __slots__ = ()


STATUS_CLASSES = {
    c.STATUS: c
    for c in (Connected, AuthSuccess, AuthFailed, AuthTimeout, AuthRequired, SubscriptionAck,
              StatusError, MaxConnections, ForceDisconnect, SlowConsumer)
}


def status_event(obj):
    """The typed control event of a decoded status object (a dict)."""
    status = obj.get("status")
    message = obj.get("message")
    cls = STATUS_CLASSES.get(status, UnknownStatus) if isinstance(status, str) else UnknownStatus
    return cls(status, message)


# --------------------------------------------------------------------------------------------
# Callbacks from the C loop (GIL held: feed() is called from Python)
# --------------------------------------------------------------------------------------------

cdef uint32_t _intern_cb(void *ctx, const char *s, size_t n) noexcept:
    return (<PolygonDecoder>ctx).symbols.intern(s, <Py_ssize_t>n)


cdef int _status_cb(void *ctx, const char *s, size_t n) noexcept:
    cdef PolygonDecoder self = <PolygonDecoder>ctx
    try:
        obj = orjson.loads(PyBytes_FromStringAndSize(s, <Py_ssize_t>n))
        self._on_status(status_event(obj))
        return 0
    except BaseException as exc:
        if self._status_exc is None:
            self._status_exc = exc
        return -1


cdef inline str _text(const char *s, size_t n, size_t limit=64):
    if s == NULL:
        return None
    if n > limit:
        n = limit
    return PyBytes_FromStringAndSize(s, <Py_ssize_t>n).decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------

CLUSTERS = ("stocks", "options", "forex", "crypto", "indices",
            "futures", "futures/cme", "futures/cbot", "futures/nymex", "futures/comex")

# subscription prefixes per cluster (polygon-protocol §3; FMV business host, LV/AM launchpad)
CLUSTER_PREFIXES = {
    "stocks": ("T", "Q", "A", "AM", "LULD", "NOI", "FMV", "LV"),
    "options": ("T", "Q", "A", "AM", "FMV", "LV"),
    "forex": ("C", "CA", "CAS", "FMV", "AM", "LV"),
    "crypto": ("XT", "XQ", "XA", "XAS", "XL2", "FMV", "AM", "LV"),
    "indices": ("A", "AM", "V"),
}
# Massive's futures markets (all of them, or one exchange): trades, quotes (with bid / ask
# timestamps ``bt``/``at``), aggregates (with ``n`` trades and ``dv`` total value, an integer)
for _c in CLUSTERS[5:]:
    CLUSTER_PREFIXES[_c] = ("T", "Q", "A", "AM")

# per-symbol prefix the polygon package adds for these clusters
_SYMBOL_PREFIX = {"options": "O:", "indices": "I:"}


cdef class PolygonDecoder(ProtocolCore):
    """Decoder of polygon/Massive websocket messages into records (see the module docstring).

    ``PolygonDecoder(cluster="stocks", *, ring_bytes=8 MiB, policy="drop_oldest",
    max_message_size=64 MiB, max_symbols=1_000_000)``. ``cluster`` is one of ``CLUSTERS``
    (``"futures"`` and ``"futures/cme"`` ... included); ``max_symbols`` caps the symbol table (its
    size is ``stats["symbols"]``): past it, events of new symbols are skipped, counted and
    reported as ``SymbolTableFull``. ``feed(message) -> int`` decodes one whole message (bytes,
    bytearray, memoryview or str); ``drain(event_type) -> EventBatch`` returns what was
    published for an event class or wire ``ev`` code since the last drain.
    """

    cdef ff_pg_dec *_d
    cdef readonly str cluster
    cdef public Py_ssize_t max_message_size
    cdef list _keep                  # template records (bytes) referenced by the C tables
    cdef object _status_exc
    cdef bint _full_logged
    cdef public list raw_frames      # when a list: every message fed is appended as a str

    def __cinit__(self, *args, **kwargs):
        self._d = <ff_pg_dec *>calloc(1, sizeof(ff_pg_dec))
        if self._d == NULL:
            raise MemoryError()
        self._keep = []
        self._status_exc = None

    def __dealloc__(self):
        free(self._d)
        self._d = NULL

    def __init__(self, str cluster="stocks", *, Py_ssize_t ring_bytes=DEFAULT_RING_BYTES,
                 str policy="drop_oldest", Py_ssize_t max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
                 Py_ssize_t max_symbols=DEFAULT_MAX_SYMBOLS):
        if cluster not in CLUSTERS:
            raise ValueError(f"unknown polygon cluster {cluster!r} (one of {', '.join(CLUSTERS)})")
        if policy not in ("drop_oldest", "backpressure"):
            raise ValueError(f"unknown overflow policy {policy!r}")
        if self.rings:
            raise RuntimeError("PolygonDecoder.__init__ called twice")
        if not 1 <= max_symbols <= 0xFFFFFFF0:
            raise ValueError("max_symbols must be between 1 and 2**32 - 16")
        self.symbols = SymbolTable(max_symbols)
        self.cluster = cluster
        self.feed_name = "polygon"
        self.max_message_size = max_message_size
        self._build_tables(ring_bytes, 1 if policy == "backpressure" else 0)
        self._d.rings = self.rptr
        self._d.intern = _intern_cb
        self._d.status = _status_cb
        self._d.ctx = <void *>self

    cdef _build_tables(self, Py_ssize_t ring_bytes, int policy):
        """Load every polygon layout's key table (``polygon_fields.h``, generated) with its
        template record (``events.default_record``) and give each ev code its ring."""
        from fastfeed._native.events import default_record
        cdef const ff_pglayout_desc *ld
        cdef bytes tmpl
        cdef int li, e
        for li in range(FF_PG_NLAYOUTS):
            ld = &FF_PG_LAYOUT_DESCS[li]
            name = ld.name.decode()
            tmpl = bytes(default_record(name))
            if len(tmpl) != ld.size:
                raise RuntimeError(f"template of {name} has the wrong size")
            self._keep.append(tmpl)
            if ff_pg_load_layout(self._d, li, ld, <const uint8_t *>PyBytes_AS_STRING(tmpl)) != 0:
                raise RuntimeError(f"{name}: its key table does not fit polygon_scan.h")
            for e in range(ld.nev):
                if ld.rtypes[e] >= FF_RT_MAX:
                    raise RuntimeError(f"{name}: record type {ld.rtypes[e]} out of range")
                self._add_ring(name, ld.evs[e].decode(), ld.rtypes[e],
                               ring_capacity_for(name, ring_bytes), policy)

    cdef Py_ssize_t feed_ptr(self, const char *data, Py_ssize_t size) noexcept:
        cdef ff_pg_dec *d = self._d
        cdef Py_ssize_t n
        self.n_messages += 1
        self.n_bytes += <uint64_t>size
        if self.raw_frames is not None:
            self.raw_frames.append(PyUnicode_DecodeUTF8(data, size, "surrogateescape"))
        if self.max_message_size > 0 and size > self.max_message_size:
            d.err = FF_PGE_TOO_LARGE
            d.err_off = 0
            d.err_key = NULL
            d.err_ev = NULL
            n = -1
        else:
            d.ts_recv = self.ts_recv
            n = ff_pg_decode(d, data, <size_t>size)
        self.n_events = d.n_events
        self.n_skipped = d.n_skipped
        self.n_overflowed = d.n_overflowed
        if d.err != FF_PGE_OK:
            self.n_errors += 1
            try:
                self._make_error(data, size)
            except BaseException as exc:
                self.error = exc
        self._status_exc = None
        return n

    cdef _make_error(self, const char *data, Py_ssize_t size):
        cdef ff_pg_dec *d = self._d
        if self.error is not None:
            return
        reason = _REASONS.get(d.err, "malformed message")
        if d.err == FF_PGE_STATUS and self._status_exc is not None:
            reason = f"{reason}: {type(self._status_exc).__name__}"
        if d.err == FF_PGE_SYMTAB_FULL and not self._full_logged:
            self._full_logged = True
            _log.warning("polygon: symbol table full (max_symbols=%d): events of new symbols are "
                         "skipped (stats['symbols_refused'])", self.symbols.max_count)
        err = (SymbolTableFull if d.err == FF_PGE_SYMTAB_FULL else ProtocolError)(
            "polygon",
            reason,
            event_type=_text(d.err_ev, d.err_ev_n),
            field=_text(d.err_key, d.err_key_n),
            offset=<Py_ssize_t>d.err_off if d.err != FF_PGE_TOO_LARGE else None,
        )
        if d.err == FF_PGE_STATUS and self._status_exc is not None:
            err.__cause__ = self._status_exc
        self.error = err

    def _on_status(self, event):
        """Called for every status message (the session overrides it)."""
        self.control.append(event)

    def _wire_name(self, event_type):
        if isinstance(event_type, str):
            return event_type
        codes = getattr(event_type, "EV_CODES", None)
        if codes:
            return codes[0]
        return getattr(event_type, "WIRE_TYPE", None) or getattr(event_type, "__name__", None)

    @property
    def stats(self):
        s = ProtocolCore.stats.__get__(self)
        s.update(
            unknown_ev=self._d.n_unknown_ev,
            unknown_keys=self._d.n_unknown_keys,
            status=self._d.n_status,
            spilled_strings=self._d.n_spilled_str,
            spill_bytes=self._spill_bytes(),
            dropped_items=self._d.n_dropped_items,
            symbols_refused=self._d.n_symtab_full,
        )
        return s

    cdef uint64_t _spill_bytes(self):
        """Bytes held by the rings' spill logs (long strings, keys without a slot)."""
        cdef uint64_t total = 0
        cdef int i
        for i in range(FF_RT_MAX):
            if self.rptr[i] != NULL:
                total += <uint32_t>(self.rptr[i].spill.head - self.rptr[i].spill.tail)
        return total

    def __repr__(self):
        return f"<{type(self).__name__} cluster={self.cluster!r} events={self._d.n_events}>"


# --------------------------------------------------------------------------------------------
# Session: auth / subscribe / status handling
# --------------------------------------------------------------------------------------------

def build_channels(str cluster, str prefix, symbols=None, bint force_uppercase=True):
    """Channel strings for ``prefix`` and ``symbols``, with the polygon package's rules.

    ``None``, ``[]``, ``"all"`` or ``"*"`` → ``["PREFIX.*"]``. A single string is one symbol.
    Symbols are upper-cased when ``force_uppercase``. On the options / indices clusters every
    symbol gets the ``O:`` / ``I:`` prefix when it lacks it and is upper-cased regardless
    (``*`` is left alone), as the ``polygon`` package does.
    """
    if cluster not in CLUSTERS:
        raise ValueError(f"unknown polygon cluster {cluster!r}")
    p = prefix[:len(prefix) - 1] if prefix.endswith(".") else prefix
    if not p or "," in p or "." in p:
        raise ValueError(f"bad channel prefix {prefix!r}")
    if p not in CLUSTER_PREFIXES[cluster]:
        raise ValueError(f"channel prefix {p!r} is not offered on the {cluster} cluster "
                         f"({', '.join(CLUSTER_PREFIXES[cluster])})")
    if symbols is None or (isinstance(symbols, str) and symbols in ("all", "*")):
        return [f"{p}.*"]
    if isinstance(symbols, str):
        symbols = [symbols]
    symbols = list(symbols)
    if not symbols:
        return [f"{p}.*"]
    out = []
    sp = _SYMBOL_PREFIX.get(cluster)
    for sym in symbols:
        if not isinstance(sym, str) or not sym or "," in sym:
            raise ValueError(f"bad symbol {sym!r}")
        if sp is not None:
            if sym != "*" and not sym.upper().startswith(sp):
                sym = sp + sym.upper()
            else:
                sym = sym.upper()
        elif force_uppercase:
            sym = sym.upper()
        out.append(f"{p}.{sym}")
    return out


def split_params(channels, Py_ssize_t max_bytes=4000):
    """Join channels with commas into ``params`` strings of at most ``max_bytes`` (UTF-8)."""
    out = []
    cur = []
    size = 0
    for ch in channels:
        n = len(ch.encode("utf-8"))
        if cur and size + 1 + n > max_bytes:
            out.append(",".join(cur))
            cur = []
            size = 0
        size += n + (1 if cur else 0)
        cur.append(ch)
    if cur:
        out.append(",".join(cur))
    return out


# PolygonSession: typed Python in fastfeed/polygon/session.py (issue #12); the name still
# resolves here (lazily: that module imports this one).


def __getattr__(name):
    if name == "PolygonSession":
        from fastfeed.polygon.session import PolygonSession
        return PolygonSession
    raise AttributeError(f"module 'fastfeed._native.polygon' has no attribute {name!r}")
