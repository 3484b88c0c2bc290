# cython: freethreading_compatible = False
"""polygon records -> plain ``dict`` per event, and handler dispatch loops (the compat dict path).

``fastfeed.polygon.AsyncStreamClient`` hands handlers one ``dict`` per event with exactly the
wire keys and values (what ``json.loads`` of the frame gives: the record's slots, then the keys
fastfeed has no slot for in wire order, read from the batch's spill copy like strings longer than
their slot). Building those dicts from records through ``event.to_dict()`` costs a Python generator
and a descriptor call per field; here one C loop per batch builds each dict directly from the
record: a copy of a per-layout template (interned keys already laid out) whose values are written
into its entries (fastfeed/dictfill.h; ``PyDict_SetItem`` where that layout is not known), symbol
strings shared from the SymbolTable.

The dispatch loops call a handler once per event and stop early -- returning where they
stopped -- when the handler returns something other than ``None`` (an awaitable the caller must
await before the next event, so async handlers run in order) or raises (the caller decides to
log or re-raise, then resumes).
"""

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.dict cimport PyDict_Copy, PyDict_SetItem
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

cdef extern from "<string.h>" nogil:
    size_t strnlen(const char *s, size_t maxlen)

cdef extern from "Python.h":
    object PyLong_FromDouble(double v)

cdef extern from "fastfeed/dictfill.h":
    ctypedef struct ff_dict_uentry:
        pass
    ff_dict_uentry *ff_dictfill_entries(PyObject *d, Py_ssize_t n)
    int ff_dictfill_put(PyObject *d, ff_dict_uentry *en, Py_ssize_t j, PyObject *key, PyObject *v)

from fastfeed._native.events cimport spill_extras, spill_list, spill_text
from fastfeed._native.ring cimport EventBatch, batch_event
from fastfeed._native.symbols cimport SymbolTable

from fastfeed._records_meta import LAYOUTS

DEF RT_MAX = 64
DEF TCACHE = 8     # presence masks remembered per record type without a dict lookup

cdef enum Kind:
    K_F64 = 1
    K_I64 = 2
    K_I64STR = 3
    K_BOOL = 4
    K_FIXSTR = 5
    K_FIXSTRINT = 6
    K_I32ARR = 7
    K_LEVELS = 8

cdef struct FSpec:
    int kind
    int bit
    Py_ssize_t off
    Py_ssize_t n
    Py_ssize_t n_off
    Py_ssize_t alt_off
    PyObject *key          # borrowed; the Plan keeps a reference in `_keys`


cdef class Plan:
    """How to turn one record type (rtype) into a dict."""
    cdef FSpec *specs
    cdef int nspec
    cdef int sym_bit
    cdef object sym_key
    cdef object ev_value
    cdef list _keys
    cdef readonly str layout
    # per presence mask (the record's `present` bits): a template dict with the keys the record
    # has, in wire order ("ev" already holding its value, the others None); a dict is a copy of
    # it (one allocation, keys laid out already) whose values are then replaced
    cdef dict _templates
    # the last TCACHE masks met and their templates (borrowed from `_templates`, which keeps
    # them until it is cleared, and `_ncached` with it): most events find theirs here without
    # a dict lookup (the masks of one type vary from event to event: optional keys)
    cdef uint64_t _cmask[TCACHE]
    cdef PyObject *_ctmpl[TCACHE]
    cdef int _ncached
    cdef int _cnext

    def __dealloc__(self):
        free(self.specs)


cdef str _KEY_EV = "ev"
cdef list _PLANS = [None] * RT_MAX


cdef Plan _make_plan(str layout, str ev, int rtype):
    lay = LAYOUTS[layout]
    cdef Plan p = Plan.__new__(Plan)
    fields = lay["fields"]
    p.layout = layout
    p.nspec = len(fields)
    p.specs = <FSpec *>malloc(sizeof(FSpec) * max(1, p.nspec))
    if p.specs == NULL:
        raise MemoryError()
    p._keys = []
    p.ev_value = ev
    p._templates = {}
    p._ncached = 0
    p._cnext = 0
    sym = lay["symbol"]
    p.sym_key = _intern(sym["wire"])
    p.sym_bit = sym.get("bit", -1)
    cdef int i
    for i, f in enumerate(fields):
        kind = f["kind"]
        base, _, alt = kind.partition("|")
        key = _intern(f["wire"])
        p._keys.append(key)
        p.specs[i].key = <PyObject *>key
        p.specs[i].bit = f.get("bit", -1)
        p.specs[i].off = f["offset"]
        p.specs[i].n = 0
        p.specs[i].n_off = 0
        p.specs[i].alt_off = 0
        if base == "f64":
            p.specs[i].kind = K_F64
        elif base == "i64":
            p.specs[i].kind = K_I64STR if alt == "str" else K_I64
        elif base == "bool":
            p.specs[i].kind = K_BOOL
        elif base.startswith("fixstr:"):
            p.specs[i].kind = K_FIXSTRINT if alt == "int" else K_FIXSTR
            p.specs[i].n = int(base[7:])
        elif base.startswith("i32arr:"):
            p.specs[i].kind = K_I32ARR
            p.specs[i].n = int(base[7:])
            p.specs[i].n_off = f["n_offset"]
        elif base.startswith("levels:"):
            p.specs[i].kind = K_LEVELS
            p.specs[i].n = int(base[7:])
            p.specs[i].n_off = f["n_offset"]
            p.specs[i].alt_off = f["alt_offset"]
        else:
            raise ValueError(f"pgdict: unsupported field kind {kind!r} in {layout}")
    return p


cdef dict _interned = {}

cdef object _intern(str s):
    v = _interned.get(s)
    if v is None:
        import sys
        v = sys.intern(s)
        _interned[s] = v
    return v


def _init_plans():
    for layout, lay in LAYOUTS.items():
        if lay["feed"] != "polygon":
            continue
        for ev, rtype in lay["rtypes"].items():
            if rtype >= RT_MAX:
                raise ValueError("pgdict: rtype out of range")
            _PLANS[rtype] = _make_plan(layout, _intern(ev), rtype)

_init_plans()


cdef inline bint _bit(const char *p, Py_ssize_t off, int bit) noexcept:
    return ((<const uint64_t *>(p + off))[0] >> bit) & 1


cdef object _levels(const char *p, FSpec *s):
    cdef Py_ssize_t cnt = (<const uint16_t *>(p + s.n_off))[0]
    cdef Py_ssize_t k
    cdef double price, size
    cdef uint8_t flags
    if cnt > s.n:
        cnt = s.n
    out = PyList_New(cnt)
    for k in range(cnt):
        price = (<const double *>(p + s.off))[2 * k]
        size = (<const double *>(p + s.off))[2 * k + 1]
        flags = (<const uint8_t *>(p + s.alt_off))[k]
        pair = [PyLong_FromDouble(price) if flags & 1 else PyFloat_FromDouble(price),
                PyLong_FromDouble(size) if flags & 2 else PyFloat_FromDouble(size)]
        Py_INCREF(pair)
        PyList_SET_ITEM(out, k, pair)
    return out


DEF TEMPLATES_MAX = 256   # distinct presence masks kept per record type


cdef dict _template(Plan plan, uint64_t present):
    """The template dict of ``plan``'s records with the presence bits ``present``."""
    cdef int i
    cdef FSpec *s
    for i in range(plan._ncached):
        if plan._cmask[i] == present:
            return <dict>plan._ctmpl[i]
    t = plan._templates.get(present)
    if t is None:
        t = {_KEY_EV: plan.ev_value}
        if plan.sym_bit < 0 or (present >> plan.sym_bit) & 1:
            t[plan.sym_key] = None
        for i in range(plan.nspec):
            s = &plan.specs[i]
            if s.bit < 0 or (present >> s.bit) & 1:
                t[<object>s.key] = None
        if len(plan._templates) >= TEMPLATES_MAX:
            plan._ncached = 0      # they borrow from _templates
            plan._cnext = 0
            plan._templates.clear()
        plan._templates[present] = t
    i = plan._cnext
    plan._cnext = (i + 1) % TCACHE
    if plan._ncached <= i:
        plan._ncached = i + 1
    plan._cmask[i] = present
    plan._ctmpl[i] = <PyObject *>t
    return t


cdef str _i64_str(int64_t iv):
    """``str(iv)`` without the int object in between (a trade id the wire gave as a string)."""
    cdef char buf[24]
    cdef int pos = 24
    cdef uint64_t u = (<uint64_t>0 - <uint64_t>iv) if iv < 0 else <uint64_t>iv
    while True:
        pos -= 1
        buf[pos] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if iv < 0:
        pos -= 1
        buf[pos] = 45   # '-'
    return PyUnicode_DecodeASCII(buf + pos, 24 - pos, NULL)


cdef inline int _put(dict d, ff_dict_uentry *en, Py_ssize_t j, object key, object v) except -1:
    """``d[key] = v`` where entry ``j`` of the fresh copy ``d`` holds ``key``: written into the
    entry when the copy's table allows it (fastfeed/dictfill.h), else ``PyDict_SetItem``."""
    if not ff_dictfill_put(<PyObject *>d, en, j, <PyObject *>key, <PyObject *>v):
        PyDict_SetItem(d, key, v)
    return 0


cdef dict _build(Plan plan, const char *p, SymbolTable symtab, bytes spill, uint32_t base):
    cdef uint64_t present = (<const uint64_t *>(p + 16))[0]
    cdef dict t = _template(plan, present)
    cdef dict d = PyDict_Copy(t)
    # the copy's entries are the template's, in its order: "ev", the symbol, the fields present
    cdef ff_dict_uentry *en = ff_dictfill_entries(<PyObject *>d, len(t))
    cdef Py_ssize_t j = 1
    cdef int i
    cdef FSpec *s
    cdef uint64_t alt = (<const uint64_t *>(p + 24))[0]
    cdef double dv
    cdef int64_t iv
    cdef Py_ssize_t cnt, k
    if plan.sym_bit < 0 or (present >> plan.sym_bit) & 1:
        _put(d, en, j, plan.sym_key, symtab.get((<const uint32_t *>(p + 4))[0]))
        j += 1
    for i in range(plan.nspec):
        s = &plan.specs[i]
        if s.bit >= 0 and not ((present >> s.bit) & 1):
            continue
        j += 1      # this field's entry is j - 1
        if s.kind == K_F64:
            dv = (<const double *>(p + s.off))[0]
            if s.bit >= 0 and (alt >> s.bit) & 1:
                v = PyLong_FromDouble(dv)
            else:
                v = PyFloat_FromDouble(dv)
        elif s.kind == K_I64:
            iv = (<const int64_t *>(p + s.off))[0]
            if s.bit >= 0 and (alt >> s.bit) & 1:
                v = PyFloat_FromDouble(<double>iv)
            else:
                v = PyLong_FromLongLong(iv)
        elif s.kind == K_I64STR:
            iv = (<const int64_t *>(p + s.off))[0]
            if s.bit >= 0 and (alt >> s.bit) & 1:
                v = _i64_str(iv)
            else:
                v = PyLong_FromLongLong(iv)
        elif s.kind == K_BOOL:
            v = (<const uint8_t *>(p + s.off))[0] != 0
        elif s.kind == K_FIXSTR or s.kind == K_FIXSTRINT:
            if (alt >> (32 + s.bit)) & 1:
                v = spill_text(p, p + s.off, spill, base)
            else:
                cnt = strnlen(p + s.off, s.n)
                v = PyUnicode_DecodeUTF8(p + s.off, cnt, "replace")
            if s.kind == K_FIXSTRINT and s.bit >= 0 and (alt >> s.bit) & 1:
                v = int(v)
        elif (s.kind == K_I32ARR or s.kind == K_LEVELS) and (alt >> (32 + s.bit)) & 1:
            v = spill_list(p, s.bit, spill, base)
        elif s.kind == K_I32ARR:
            cnt = (<const uint8_t *>(p + s.n_off))[0]
            if cnt > s.n:
                cnt = s.n
            v = PyList_New(cnt)
            for k in range(cnt):
                item = PyLong_FromLongLong((<const int32_t *>(p + s.off))[k])
                Py_INCREF(item)
                PyList_SET_ITEM(v, k, item)
        elif s.kind == K_LEVELS:
            v = _levels(p, s)
        else:
            continue
        _put(d, en, j - 1, <object>s.key, v)
    if (<const uint64_t *>(p + 32))[0] >> 32:
        x = spill_extras(p, spill, base)
        if x is not None:
            d.update(x)
    return d


cdef inline Plan _plan_of(const char *rec):
    cdef uint16_t rt = (<const uint16_t *>rec)[0]
    if rt >= RT_MAX:
        return None
    return <Plan>_PLANS[rt]


def record_to_dict(EventBatch batch, Py_ssize_t i):
    """The dict of record ``i`` of ``batch`` (a polygon EventBatch)."""
    if i < 0:
        i += batch._n
    if i < 0 or i >= batch._n:
        raise IndexError("EventBatch index out of range")
    cdef const char *rec = batch._buf + i * batch._rec_size
    cdef Plan plan = _plan_of(rec)
    if plan is None:
        raise ValueError("not a polygon record")
    return _build(plan, rec, batch.symbols, batch._spill, batch._spill_base)


def to_dicts(EventBatch batch):
    """Every record of ``batch`` as a list of wire-keyed dicts."""
    cdef Py_ssize_t k, n = batch._n
    cdef const char *rec
    cdef Plan plan
    out = PyList_New(n)
    for k in range(n):
        rec = batch._buf + k * batch._rec_size
        plan = _plan_of(rec)
        if plan is None:
            raise ValueError("not a polygon record")
        d = _build(plan, rec, batch.symbols, batch._spill, batch._spill_base)
        Py_INCREF(d)
        PyList_SET_ITEM(out, k, d)
    return out


def dispatch_dicts(EventBatch batch, Py_ssize_t start, handler):
    """Call ``handler(dict)`` for records ``start..``; see :func:`dispatch_events` for the result."""
    cdef Py_ssize_t k, n = batch._n
    cdef const char *rec
    cdef Plan plan
    cdef SymbolTable symtab = batch.symbols
    cdef Py_ssize_t size = batch._rec_size
    for k in range(start, n):
        rec = batch._buf + k * size
        plan = _plan_of(rec)
        if plan is None:
            continue
        d = _build(plan, rec, symtab, batch._spill, batch._spill_base)
        try:
            r = handler(d)
        except Exception as exc:
            return (k + 1, exc, True)
        if r is not None:
            return (k + 1, r, False)
    return (n, None, False)


def dispatch_events(EventBatch batch, Py_ssize_t start, handler):
    """Call ``handler(event)`` (fastfeed event objects) for records ``start..``.

    Returns ``(next_index, value, is_exception)``: ``next_index == len(batch)`` and ``value is
    None`` when every call returned ``None``; otherwise the loop stopped after the record at
    ``next_index - 1`` because its call returned ``value`` (not None) or raised ``value``.
    """
    cdef Py_ssize_t k, n = batch._n
    batch._own()   # the events read the batch's memory
    for k in range(start, n):
        ev = batch_event(batch, k)
        try:
            r = handler(ev)
        except Exception as exc:
            return (k + 1, exc, True)
        if r is not None:
            return (k + 1, r, False)
    return (n, None, False)


# ---------------------------------------------------------------------------------------------
# Wire order across event types. Each type has its own ring, so one socket read's T and Q
# events arrive here as separate batches; the polygon decoder stamps every record's header
# `flags` with a per-decoder 16-bit sequence and `ts_recv` with the read's time. Ordering by
# (ts_recv, seq as a serial number) restores the order of the wire: ts_recv orders reads, and
# within one read (far fewer than 32768 events) the 16-bit sequence never wraps ambiguously.

DEF MAX_MERGE = 64

cdef inline bint _before(const char *a, const char *b) noexcept:
    cdef int64_t ta = (<const int64_t *>(a + 8))[0]
    cdef int64_t tb = (<const int64_t *>(b + 8))[0]
    if ta != tb:
        return ta < tb
    return <int16_t>(<uint16_t>((<const uint16_t *>(a + 2))[0] - (<const uint16_t *>(b + 2))[0])) < 0


def merge_order(list batches):
    """Wire order of the events of ``batches`` (polygon EventBatches of different types): a
    ``bytes`` holding, for each event in turn, the index of the batch it comes from."""
    cdef Py_ssize_t nb = len(batches)
    if nb > MAX_MERGE:
        raise ValueError("too many batches to merge")
    cdef Py_ssize_t pos[MAX_MERGE]
    cdef Py_ssize_t cnt[MAX_MERGE]
    cdef Py_ssize_t size[MAX_MERGE]
    cdef const char *buf[MAX_MERGE]
    cdef Py_ssize_t total = 0, j, b, best
    cdef EventBatch eb
    for b in range(nb):
        eb = <EventBatch>batches[b]
        pos[b] = 0
        cnt[b] = eb._n
        size[b] = eb._rec_size
        buf[b] = eb._buf
        total += eb._n
    out = bytearray(total)
    cdef unsigned char *o = out
    for j in range(total):
        best = -1
        for b in range(nb):
            if pos[b] < cnt[b] and (best < 0 or _before(buf[b] + pos[b] * size[b],
                                                        buf[best] + pos[best] * size[best])):
                best = b
        o[j] = <unsigned char>best
        pos[best] += 1
    return bytes(out)


def dispatch_merged(list batches, list handlers, list as_dicts, bytes order, Py_ssize_t start):
    """Call ``handlers[b](item)`` for the events of ``batches`` in ``order`` (from
    :func:`merge_order`), from position ``start``; ``item`` is a dict when ``as_dicts[b]``, else
    an event object. A ``None`` handler skips its batch. Returns ``(next_position, value,
    is_exception, batch_index)`` with the same early-stop protocol as :func:`dispatch_events`."""
    cdef Py_ssize_t nb = len(batches)
    if nb > MAX_MERGE or len(handlers) != nb or len(as_dicts) != nb:
        raise ValueError("batches, handlers and as_dicts must have the same length (<= 64)")
    cdef Py_ssize_t pos[MAX_MERGE]
    cdef Py_ssize_t total = len(order), j, b
    cdef const unsigned char *o = <const unsigned char *>PyBytes_AS_STRING(order)
    cdef EventBatch eb
    cdef const char *rec
    cdef Plan plan
    for b in range(nb):
        pos[b] = 0
    for j in range(start):
        pos[o[j]] += 1
    for j in range(start, total):
        b = o[j]
        eb = <EventBatch>batches[b]
        rec = eb._buf + pos[b] * eb._rec_size
        pos[b] += 1
        handler = handlers[b]
        if handler is None:
            continue
        if as_dicts[b]:
            plan = _plan_of(rec)
            if plan is None:
                continue
            item = _build(plan, rec, eb.symbols, eb._spill, eb._spill_base)
        else:
            eb._own()   # the event reads the batch's memory
            item = batch_event(eb, pos[b] - 1)
        try:
            r = handler(item)
        except Exception as exc:
            return (j + 1, exc, True, b)
        if r is not None:
            return (j + 1, r, False, b)
    return (total, None, False, -1)
