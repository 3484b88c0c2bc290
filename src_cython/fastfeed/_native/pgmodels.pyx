# cython: freethreading_compatible = False
"""polygon records -> one list of model objects in wire order (``fastfeed.massive``).

Massive's ``WebSocketClient`` hands its processor one list per message with an object per
event, in the order of the wire, across event types. fastfeed's decoder puts each ``ev`` code in
its own ring, so one socket read arrives as one EventBatch per type; :func:`build_models` walks
them in the wire order computed by ``pgdict.merge_order`` and makes each object -- a lazy event
object (``events._Event``: fields read from the record on access by C descriptors) of the class
the caller chose for that batch. One C loop, no Python call per event.

The objects of one batch share one immutable ``bytes`` copy of the batch's records (each points
at its own record in it): one allocation and one copy per batch, not per event. A kept object
keeps its batch's records alive (about 200 bytes per event of the batch).

The objects are taken out of the cyclic garbage collector's tracking: such an object refers only
to that ``bytes`` and the decoder's SymbolTable, neither of which can refer back to it, so it can
never be part of a cycle -- and a handler that keeps thousands of them does not make every
collection walk them. (Only for classes without an instance ``__dict__``, whose instances could
otherwise be given references to anything.)
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF

from fastfeed._native.events cimport _Event, view_event
from fastfeed._native.ring cimport EventBatch

DEF MAX_MERGE = 64


cdef inline object _model(type cls, bytes shared, const char *p, EventBatch eb):
    # the batch's spill copy too: a string longer than its slot, an unknown key (spill.h)
    return view_event(cls, shared, p, eb._rec_size, eb.symbols, eb._spill, eb._spill_base)


def build_models(list batches, list classes, bytes order=None):
    """The events of ``batches`` as objects of ``classes[b]`` (an ``_Event`` subclass; ``None``
    leaves that batch's events out), in ``order`` (``pgdict.merge_order(batches)``: the index
    of the batch of each event in turn) or, without ``order``, batch after batch."""
    cdef Py_ssize_t nb = PyList_GET_SIZE(batches)
    if nb > MAX_MERGE or PyList_GET_SIZE(classes) != nb:
        raise ValueError("batches and classes must have the same length (<= 64)")
    cdef Py_ssize_t pos[MAX_MERGE]
    cdef Py_ssize_t cnt[MAX_MERGE]
    cdef Py_ssize_t size[MAX_MERGE]
    cdef const char *base[MAX_MERGE]
    cdef Py_ssize_t total = 0, kept = 0, j, b, k
    cdef EventBatch eb
    cdef type cls
    shared = [None] * nb
    for b in range(nb):
        eb = <EventBatch?>batches[b]
        pos[b] = 0
        cnt[b] = eb._n
        size[b] = eb._rec_size
        base[b] = NULL
        total += eb._n
        if classes[b] is not None:
            cls = <type?>classes[b]
            if not issubclass(cls, _Event):
                raise TypeError(f"{cls.__name__} is not an event class")
            kept += eb._n
            if eb._n:
                data = PyBytes_FromStringAndSize(eb._buf, eb._n * eb._rec_size)
                shared[b] = data
                base[b] = PyBytes_AS_STRING(data)
    cdef const unsigned char *o = NULL
    if order is not None:
        if PyBytes_GET_SIZE(order) != total:
            raise ValueError("order does not match the batches")
        o = <const unsigned char *>PyBytes_AS_STRING(order)
        for j in range(total):  # validate first: the loop below trusts it
            b = o[j]
            if b >= nb or pos[b] >= cnt[b]:
                raise ValueError("order does not match the batches")
            pos[b] += 1
        for b in range(nb):
            pos[b] = 0
    out = PyList_New(kept)
    k = 0
    if o != NULL:
        for j in range(total):
            b = o[j]
            if base[b] != NULL:
                item = _model(<type>classes[b], <bytes>shared[b], base[b] + pos[b] * size[b],
                              <EventBatch>batches[b])
                Py_INCREF(item)
                PyList_SET_ITEM(out, k, item)
                k += 1
            pos[b] += 1
    else:
        for b in range(nb):
            if base[b] == NULL:
                continue
            for j in range(cnt[b]):
                item = _model(<type>classes[b], <bytes>shared[b], base[b] + j * size[b],
                              <EventBatch>batches[b])
                Py_INCREF(item)
                PyList_SET_ITEM(out, k, item)
                k += 1
    return out


def record_of(_Event event):
    """The record of ``event`` (a copy of its ``LAYOUT``'s C struct)."""
    return PyBytes_FromStringAndSize(event._p, type(event)._SIZE)
