"""Lazy event objects over fixed-layout records.

An event object holds a private copy of one record (a ``bytes`` of the record size) and the
SymbolTable its ids refer to. Attributes are C-level descriptors (``Field``) that read the record
at a fixed offset; the same descriptor serves both spellings (``bid_price`` and ``bidPrice``).
Event classes themselves are generated (``fastfeed/dxfeed.py``, ``fastfeed/polygon_events.py``).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.math cimport isnan
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

cdef extern from "<string.h>" nogil:
    size_t strnlen(const char *s, size_t maxlen)

from fastfeed._native.symbols cimport SymbolTable

import json

from fastfeed._records_meta import ENUMS, LAYOUTS

cdef enum FieldKind:
    K_F64 = 1
    K_I64 = 2
    K_I32 = 3
    K_BOOL = 4
    K_ENUM = 5
    K_CHAR = 6
    K_STR = 7
    K_FIXSTR = 8
    K_I32ARR = 9
    K_LEVELS = 10
    K_SYMBOL = 11
    K_TSRECV = 12
    K_EVTYPE = 13

cdef enum AltMeaning:
    ALT_NONE = 0
    ALT_OTHER_NUMBER = 1   # f64 slot got an int / i64 slot got an integral float
    ALT_STRING = 2         # i64 slot got a decimal string ("x": "44")
    ALT_INT = 3            # fixstr slot got a JSON integer

#: Every dxFeed enum's names: code k is names[k-1]. The spec's names first, then names met on
#: the wire (or given to a constructor) that the spec does not list, appended by
#: ``enum_code_add`` so that an unknown enum string is kept, never lost. Codes fit a uint8.
ENUM_NAMES: dict = {name: list(values) for name, values in ENUMS.items()}
MAX_ENUM_CODES = 255


def enum_code_add(str enum, str name):
    """The code of ``name`` in ``enum``, adding it when new; 0 when the enum is full."""
    names = ENUM_NAMES[enum]
    try:
        return names.index(name) + 1
    except ValueError:
        if len(names) >= MAX_ENUM_CODES:
            return 0
        names.append(name)
        return len(names)


cdef SymbolTable _default_symbols = SymbolTable()
_RTYPE_TO_WIRE = {}
for _name, _lay in LAYOUTS.items():
    for _wire, _rt in _lay["rtypes"].items():
        _RTYPE_TO_WIRE[_rt] = _wire


class _NaNKey:
    """Stands for NaN in equality keys, so an event equals its copy even when it holds NaN."""
    __slots__ = ()
    def __eq__(self, other):
        return isinstance(other, _NaNKey)
    def __hash__(self):
        return 0x7FF8
    def __repr__(self):
        return "nan"

_NAN = _NaNKey()


cdef inline bint _bit(const char *p, Py_ssize_t off, int bit) noexcept:
    return ((<const uint64_t *>(p + off))[0] >> bit) & 1


# --- spill (fastfeed/spill.h): values kept beside the record ------------------------------------

DEF SPILL_KEY = 2
DEF SPILL_RAW = 3
DEF SPILL_HDR = 5


cdef inline Py_ssize_t _spill_index(const char *rec, uint32_t off, uint32_t n, bytes spill,
                                    uint32_t base) except -1:
    cdef uint32_t pos = (<const uint32_t *>(rec + 32))[0]
    cdef uint32_t i = <uint32_t>(pos + off - base)
    if spill is None or <Py_ssize_t>i + <Py_ssize_t>n > len(spill):
        raise RuntimeError("spilled value not held by this event (record copied without its spill)")
    return i


cdef str spill_text(const char *rec, const char *slot, bytes spill, uint32_t base):
    cdef uint32_t off, n
    memcpy(&off, slot, 4)        # a string slot has no alignment: never load it as uint32_t
    memcpy(&n, slot + 4, 4)
    cdef Py_ssize_t i = _spill_index(rec, off, n, spill, base)
    return PyBytes_AS_STRING(spill)[i:i + n].decode("utf-8", "surrogatepass")


cdef object spill_list(const char *rec, int bit, bytes spill, uint32_t base):
    cdef uint64_t ref = (<const uint64_t *>(rec + 32))[0]
    cdef uint32_t total = <uint32_t>(ref >> 32)
    cdef uint32_t k = 0, n
    cdef Py_ssize_t i = _spill_index(rec, 0, total, spill, base)
    cdef const char *b = PyBytes_AS_STRING(spill) + i
    while k + SPILL_HDR <= total:
        memcpy(&n, b + k + 1, 4)
        if <uint8_t>b[k] == SPILL_RAW and n >= 1 and <uint8_t>b[k + SPILL_HDR] == bit:
            return json.loads(b[k + SPILL_HDR + 1:k + SPILL_HDR + n])
        k += SPILL_HDR + n
    raise RuntimeError("spilled list not found in the record's spill range")


cdef object spill_extras(const char *rec, bytes spill, uint32_t base):
    cdef uint64_t ref = (<const uint64_t *>(rec + 32))[0]
    cdef uint32_t total = <uint32_t>(ref >> 32)
    cdef uint32_t k = 0, n
    cdef Py_ssize_t i
    cdef const char *b
    if total == 0:
        return None
    i = _spill_index(rec, 0, total, spill, base)
    b = PyBytes_AS_STRING(spill) + i
    members = []
    while k + SPILL_HDR <= total:
        memcpy(&n, b + k + 1, 4)
        if <uint8_t>b[k] == SPILL_KEY:
            members.append(b[k + SPILL_HDR:k + SPILL_HDR + n])
        k += SPILL_HDR + n
    if not members:
        return None
    text = b"{" + b",".join(members) + b"}"
    try:
        return json.loads(text)
    except ValueError:    # not UTF-8 (a skipped value is not validated): as json.loads of text
        return json.loads(text.decode("utf-8", "replace"))


cdef class Field:
    """Descriptor reading one field of an event's record (C switch on the field kind)."""
    cdef readonly str name          # wire name
    cdef readonly str attr          # snake_case attribute name
    cdef Py_ssize_t off
    cdef int kind
    cdef int alt_meaning
    cdef int bit                    # polygon presence/alt bit (-1 for dxFeed fields)
    cdef Py_ssize_t n               # fixstr size / array capacity
    cdef Py_ssize_t n_off, drop_off, alt_off
    cdef list names                 # enum names (the live ENUM_NAMES list)
    cdef str enum_name              # enum of a K_ENUM field

    def __init__(self, dict f, int bit=-1, str kind_override=None):
        # the generated metadata's kind parts (tools/gen_records.py kind_parts)
        base = kind_override or f["base"]
        alt = f.get("alt") or ""
        self.name = f.get("wire", "")
        self.attr = f.get("attr", "")
        self.off = f.get("offset", 0)
        self.bit = bit
        self.n = 0
        self.names = []
        self.alt_meaning = ALT_NONE
        if base == "f64":
            self.kind = K_F64
            self.alt_meaning = ALT_OTHER_NUMBER
        elif base == "i64":
            self.kind = K_I64
            self.alt_meaning = ALT_STRING if alt == "str" else ALT_OTHER_NUMBER
        elif base == "i32":
            self.kind = K_I32
        elif base == "bool":
            self.kind = K_BOOL
        elif base == "enum":
            self.kind = K_ENUM
            self.enum_name = f["enum"]
            self.names = ENUM_NAMES[f["enum"]]
        elif base == "char":
            self.kind = K_CHAR
        elif base == "str":
            self.kind = K_STR
        elif base == "fixstr":
            self.kind = K_FIXSTR
            self.n = f["n"]
            self.alt_meaning = ALT_INT if alt == "int" else ALT_NONE
        elif base == "i32arr":
            self.kind = K_I32ARR
            self.n = f["n"]
            self.n_off = f["n_offset"]
            self.drop_off = f["dropped_offset"]
        elif base == "levels":
            self.kind = K_LEVELS
            self.n = f["n"]
            self.n_off = f["n_offset"]
            self.drop_off = f["dropped_offset"]
            self.alt_off = f["alt_offset"]
        elif base == "symbol":
            self.kind = K_SYMBOL
            self.off = 4
        elif base == "ts_recv":
            self.kind = K_TSRECV
            self.off = 8
        elif base == "evtype":
            self.kind = K_EVTYPE
            self.off = 0
        else:
            raise ValueError(f"unknown field kind {base!r}")

    @property
    def kind_name(self):
        return ("", "f64", "i64", "i32", "bool", "enum", "char", "str", "fixstr", "i32arr",
                "levels", "symbol", "ts_recv", "evtype")[self.kind]

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        return self.read(<_Event>obj)

    def __set__(self, obj, value):
        raise AttributeError(f"events are immutable: cannot set {self.attr!r}")

    cdef inline bint present(self, const char *p) noexcept:
        return self.bit < 0 or _bit(p, 16, self.bit)

    cdef inline bint alt(self, const char *p) noexcept:
        return self.bit >= 0 and _bit(p, 24, self.bit)

    cdef object read(self, _Event ev):
        cdef const char *p = ev._p
        cdef double d
        cdef int64_t v
        cdef uint32_t u
        cdef Py_ssize_t k, cnt
        if self.bit >= 0 and not _bit(p, 16, self.bit):
            return None
        if self.kind == K_F64:
            d = (<const double *>(p + self.off))[0]
            if self.alt(p):
                return int(d)
            return d
        elif self.kind == K_I64:
            v = (<const int64_t *>(p + self.off))[0]
            if self.alt(p):
                if self.alt_meaning == ALT_STRING:
                    return str(v)
                return float(v)
            return v
        elif self.kind == K_I32:
            return (<const int32_t *>(p + self.off))[0]
        elif self.kind == K_BOOL:
            return (<const uint8_t *>(p + self.off))[0] != 0
        elif self.kind == K_ENUM:
            k = (<const uint8_t *>(p + self.off))[0]
            if 0 < k <= len(self.names):
                return self.names[k - 1]
            return None
        elif self.kind == K_CHAR:
            u = (<const uint32_t *>(p + self.off))[0]
            return chr(u) if u else ""
        elif self.kind == K_STR or self.kind == K_SYMBOL:
            u = (<const uint32_t *>(p + self.off))[0]
            return ev._symtab.get(u)
        elif self.kind == K_FIXSTR:
            if self.bit >= 0 and _bit(p, 24, 32 + self.bit):
                s = spill_text(p, p + self.off, ev._spill, ev._spill_base)
                return int(s) if self.alt(p) else s
            cnt = strnlen(p + self.off, self.n)
            s = (p + self.off)[:cnt].decode("utf-8", "replace")
            if self.alt(p):
                return int(s)
            return s
        elif (self.kind == K_I32ARR or self.kind == K_LEVELS) and self.bit >= 0 and \
                _bit(p, 24, 32 + self.bit):
            return spill_list(p, self.bit, ev._spill, ev._spill_base)
        elif self.kind == K_I32ARR:
            cnt = (<const uint8_t *>(p + self.n_off))[0]
            return [(<const int32_t *>(p + self.off))[k] for k in range(min(cnt, self.n))]
        elif self.kind == K_LEVELS:
            cnt = (<const uint16_t *>(p + self.n_off))[0]
            out = []
            for k in range(min(cnt, self.n)):
                price = (<const double *>(p + self.off))[2 * k]
                size = (<const double *>(p + self.off))[2 * k + 1]
                flags = (<const uint8_t *>(p + self.alt_off))[k]
                out.append([int(price) if flags & 1 else price, int(size) if flags & 2 else size])
            return out
        elif self.kind == K_TSRECV:
            return (<const int64_t *>(p + 8))[0]
        elif self.kind == K_EVTYPE:
            return _RTYPE_TO_WIRE.get((<const uint16_t *>p)[0])
        return None

    cdef int write(self, char *p, object value, SymbolTable symtab, bytearray spill=None) except -1:
        """Store ``value`` (Python) in the record at ``p`` (used by the constructor); a string
        longer than its slot goes whole into ``spill`` (the record's spill range, spill.h)."""
        cdef uint32_t ref[2]
        cdef Py_ssize_t k, cnt
        cdef bytes b
        if value is None:
            return 0
        if self.bit >= 0:
            (<uint64_t *>(p + 16))[0] |= (<uint64_t>1) << self.bit
        if self.kind == K_F64:
            if self.bit >= 0 and isinstance(value, int) and not isinstance(value, bool):
                (<uint64_t *>(p + 24))[0] |= (<uint64_t>1) << self.bit
            (<double *>(p + self.off))[0] = float(value)
        elif self.kind == K_I64:
            if self.bit >= 0 and isinstance(value, float) and self.alt_meaning == ALT_OTHER_NUMBER:
                (<uint64_t *>(p + 24))[0] |= (<uint64_t>1) << self.bit
            elif self.bit >= 0 and isinstance(value, str) and self.alt_meaning == ALT_STRING:
                (<uint64_t *>(p + 24))[0] |= (<uint64_t>1) << self.bit
            (<int64_t *>(p + self.off))[0] = int(value)
        elif self.kind == K_I32:
            (<int32_t *>(p + self.off))[0] = int(value)
        elif self.kind == K_BOOL:
            (<uint8_t *>(p + self.off))[0] = 1 if value else 0
        elif self.kind == K_ENUM:
            k = enum_code_add(self.enum_name, value)
            if k == 0:
                raise ValueError(f"{self.attr}: too many distinct names for this enum")
            (<uint8_t *>(p + self.off))[0] = k
        elif self.kind == K_CHAR:
            (<uint32_t *>(p + self.off))[0] = ord(value) if value else 0
        elif self.kind == K_STR or self.kind == K_SYMBOL:
            (<uint32_t *>(p + self.off))[0] = symtab.intern_str(value)
        elif self.kind == K_FIXSTR:
            if self.bit >= 0 and isinstance(value, int) and self.alt_meaning == ALT_INT:
                (<uint64_t *>(p + 24))[0] |= (<uint64_t>1) << self.bit
            b = str(value).encode("utf-8", "surrogatepass")
            memset(p + self.off, 0, self.n)
            if (len(b) > self.n or b"\0" in b) and spill is not None and self.bit >= 0:
                spill += bytes((1,)) + len(b).to_bytes(4, "little")
                ref[0] = len(spill)
                ref[1] = len(b)
                spill += b
                memcpy(p + self.off, ref, 8)
                (<uint64_t *>(p + 24))[0] |= (<uint64_t>1) << (32 + self.bit)
            else:
                memcpy(p + self.off, <const char *>b, min(len(b), self.n))
        elif self.kind == K_I32ARR:
            cnt = len(value)
            for k in range(min(cnt, self.n)):
                (<int32_t *>(p + self.off))[k] = value[k]
            (<uint8_t *>(p + self.n_off))[0] = min(cnt, self.n)
            (<uint8_t *>(p + self.drop_off))[0] = min(255, max(0, cnt - self.n))
        elif self.kind == K_LEVELS:
            cnt = len(value)
            for k in range(min(cnt, self.n)):
                price, size = value[k]
                (<double *>(p + self.off))[2 * k] = price
                (<double *>(p + self.off))[2 * k + 1] = size
                (<uint8_t *>(p + self.alt_off))[k] = (1 if isinstance(price, int) else 0) | (2 if isinstance(size, int) else 0)
            (<uint16_t *>(p + self.n_off))[0] = min(cnt, self.n)
            (<uint16_t *>(p + self.drop_off))[0] = min(65535, max(0, cnt - self.n))
        elif self.kind == K_TSRECV:
            (<int64_t *>(p + 8))[0] = int(value)
        if ((self.kind == K_I32ARR or self.kind == K_LEVELS) and len(value) > self.n and
                spill is not None and self.bit >= 0):
            # the whole list, beside the record (spill.h FF_SPILL_RAW)
            b = json.dumps([list(x) for x in value] if self.kind == K_LEVELS else list(value),
                           separators=(",", ":")).encode()
            spill += bytes((SPILL_RAW,)) + (len(b) + 1).to_bytes(4, "little") + bytes((self.bit,))
            spill += b
            (<uint64_t *>(p + 24))[0] |= (<uint64_t>1) << (32 + self.bit)
        return 0

    def __repr__(self):
        return f"<field {self.attr} ({self.kind_name} at {self.off})>"


cdef _Event make_event(type cls, const char *rec, Py_ssize_t size, SymbolTable symtab,
                       bytes spill=None, uint32_t spill_base=0):
    cdef _Event ev = _Event.__new__(cls)
    ev._raw = PyBytes_FromStringAndSize(rec, size)
    ev._p = PyBytes_AS_STRING(ev._raw)
    ev._symtab = symtab
    if spill is not None and size >= 40 and (<const uint64_t *>(rec + 32))[0] >> 32:
        ev._spill = spill
        ev._spill_base = spill_base
    return ev


def _rebuild(cls, raw, strings, spill=None, spill_base=0):
    cdef SymbolTable st = SymbolTable()
    for s in strings:
        st.intern_str(s)
    cdef _Event ev = _Event.__new__(cls)
    ev._raw = bytes(raw)
    ev._p = PyBytes_AS_STRING(ev._raw)
    ev._symtab = st
    ev._spill = spill
    ev._spill_base = spill_base
    return ev


cdef class _Event:
    """Base of every fastfeed event: an immutable view of one record."""

    # class attributes set by the generated subclasses
    LAYOUT = None       # layout name in fastfeed._records_meta.LAYOUTS
    _ORDER = ()         # Field descriptors in wire order (symbol first)
    _SIZE = 0
    _RTYPE = 0
    _DEFAULTS = b""     # record template (NaN doubles, zeros) for constructed events

    def __init__(self, **kwargs):
        cls = type(self)
        cdef bytearray rec = bytearray(cls._DEFAULTS)
        cdef char *p = rec
        cdef Field f
        (<uint16_t *>p)[0] = kwargs.pop("_rtype", cls._RTYPE)
        lookup = cls._BY_NAME
        cdef bytearray spill = bytearray()
        for key, value in kwargs.items():
            f = lookup.get(key)
            if f is None:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {key!r}")
            f.write(p, value, _default_symbols, spill)
        if spill:
            (<uint64_t *>(p + 32))[0] = (<uint64_t>len(spill)) << 32
            self._spill = bytes(spill)
            self._spill_base = 0
        self._raw = bytes(rec)
        self._p = PyBytes_AS_STRING(self._raw)
        self._symtab = _default_symbols

    @property
    def ts_recv(self):
        """Local receive time of the frame that carried this event, ns since the epoch."""
        return (<const int64_t *>(self._p + 8))[0]

    @property
    def record(self):
        """The raw record bytes (``LAYOUT``'s C struct)."""
        return self._raw

    def _items(self):
        cdef Field f
        for f in type(self)._ORDER:
            if f.bit >= 0 and not _bit(self._p, 16, f.bit):
                continue
            yield f, f.read(self)

    @property
    def extra(self):
        """The keys the wire had that fastfeed has no slot for, with the values ``json.loads``
        gives, in wire order (``{}`` when there were none; polygon events only)."""
        if self._spill is None:
            return {}
        d = spill_extras(self._p, self._spill, self._spill_base)
        return {} if d is None else d

    def to_dict(self):
        """The event as a dict keyed by wire names (polygon: exactly the keys the wire had: the
        record's slots, then the keys without a slot in wire order)."""
        d = {f.name: v for f, v in self._items()}
        if self._spill is not None:
            x = spill_extras(self._p, self._spill, self._spill_base)
            if x is not None:
                d.update(x)
        return d

    def _key(self):
        out = []
        for f, v in self._items():
            if isinstance(v, float) and isnan(<double>v):
                v = _NAN
            elif isinstance(v, list):
                v = repr(v)
            out.append((f.name, v))
        if self._spill is not None:
            out.append(("", repr(self.extra)))
        return tuple(out)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        if ((<_Event>other)._raw == self._raw and (<_Event>other)._symtab is self._symtab and
                (<_Event>other)._spill is self._spill):
            return True
        return self._key() == (<_Event>other)._key()

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        cls = type(self)
        parts = [f"{k}={v!r}" for k, v in ((cls._REPR_NAME(f), v) for f, v in self._items())]
        return f"{cls.__name__}({', '.join(parts)})"

    def __reduce__(self):
        return (_rebuild, (type(self), self._raw, self._symtab.strings(), self._spill,
                           self._spill_base))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def build_class_fields(cls, str layout):
    """Attach descriptors and metadata for ``layout`` to the (generated) event class ``cls``."""
    lay = LAYOUTS[layout]
    order = []
    by_name = {}
    sym = lay["symbol"]
    if lay["feed"] == "polygon":
        ev = Field({"wire": "ev", "attr": "event_type"}, -1, "evtype")
        order.append(ev)
        by_name["event_type"] = ev
        by_name["ev"] = ev
        setattr(cls, "event_type", ev)
    symf = Field({"wire": sym["wire"], "attr": sym["attr"]}, sym.get("bit", -1), "symbol")
    order.append(symf)
    for nm in {sym["attr"], sym["wire"]}:
        by_name[nm] = symf
        if nm.isidentifier() and nm not in ("as",):
            setattr(cls, nm, symf)
    for fmeta in lay["fields"]:
        f = Field(fmeta, fmeta.get("bit", -1))
        order.append(f)
        names = {fmeta["attr"], fmeta["camel"]} | set(fmeta.get("aliases", []))
        if lay["feed"] == "dxfeed":
            names.add(fmeta["wire"])
        for nm in names:
            by_name[nm] = f
            setattr(cls, nm, f)
        if lay["feed"] == "polygon":
            by_name[fmeta["wire"]] = f
    # template record: NaN doubles (values the wire did not carry; polygon records also say so
    # in their presence bits, but a numpy view of a batch shows NaN, not a made-up 0.0), zeros
    # elsewhere
    tmpl = bytearray(lay["size"])
    import struct
    for fmeta in lay["fields"]:
        if fmeta["base"] == "f64":
            struct.pack_into("<d", tmpl, fmeta["offset"], float("nan"))
    cls.LAYOUT = layout
    cls._ORDER = tuple(order)
    cls._BY_NAME = by_name
    cls._SIZE = lay["size"]
    cls._RTYPE = next(iter(lay["rtypes"].values()))
    cls._DEFAULTS = bytes(tmpl)
    if lay["feed"] == "dxfeed":
        cls._REPR_NAME = staticmethod(lambda f: f.name)
    else:
        cls._REPR_NAME = staticmethod(lambda f: f.attr)
    return cls


def default_record(str layout):
    """The template record of ``layout`` (what a decoder starts every event from)."""
    from fastfeed._native.ring import event_class_for
    return event_class_for(layout)._DEFAULTS
