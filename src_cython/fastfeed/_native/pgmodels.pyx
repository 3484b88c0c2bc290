# cython: freethreading_compatible = False
"""polygon records -> one list of model objects in wire order (``fastfeed.massive``).

Massive's ``WebSocketClient`` hands its processor one list per message with an object per
event, in the order of the wire, across event types. fastfeed's decoder puts each ``ev`` code in
its own ring, so one socket read arrives as one EventBatch per type; :func:`build_models` walks
them in the wire order computed by ``pgdict.merge_order`` and makes each object with
``events.make_event`` (a lazy event object: a copy of the record, fields read on access) of the
class the caller chose for that batch. One C loop, no Python call per event.

The objects are taken out of the cyclic garbage collector's tracking: such an object refers only
to its record (``bytes``) and the decoder's SymbolTable, neither of which can refer back to it,
so it can never be part of a cycle -- and a handler that keeps thousands of them does not make
every collection walk them. (Only for classes without an instance ``__dict__``, whose instances
could otherwise be given references to anything.)
"""

from cpython.list cimport PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void *op)

from fastfeed._native.events cimport make_event
from fastfeed._native.ring cimport EventBatch

DEF MAX_MERGE = 64


def build_models(list batches, list classes, bytes order=None):
    """The events of ``batches`` as objects of ``classes[b]`` (an ``_Event`` subclass; ``None``
    leaves that batch's events out), in ``order`` (``pgdict.merge_order(batches)``: the index
    of the batch of each event in turn) or, without ``order``, batch after batch."""
    cdef Py_ssize_t nb = PyList_GET_SIZE(batches)
    if nb > MAX_MERGE or PyList_GET_SIZE(classes) != nb:
        raise ValueError("batches and classes must have the same length (<= 64)")
    cdef Py_ssize_t pos[MAX_MERGE]
    cdef Py_ssize_t total = 0, kept = 0, j, b, k
    cdef EventBatch eb
    for b in range(nb):
        pos[b] = 0
        eb = <EventBatch?>batches[b]
        total += eb._n
        if classes[b] is not None:
            kept += eb._n
    out = PyList_New(kept)
    cdef const unsigned char *o = NULL
    if order is not None:
        if PyBytes_GET_SIZE(order) != total:
            raise ValueError("order does not match the batches")
        o = <const unsigned char *>PyBytes_AS_STRING(order)
    cdef bint untrack[MAX_MERGE]
    for b in range(nb):
        cls = classes[b]
        untrack[b] = isinstance(cls, type) and (<PyTypeObject *>cls).tp_dictoffset == 0
    k = 0
    if o != NULL:
        for j in range(total):
            b = o[j]
            if b >= nb:
                raise ValueError("order names a batch that does not exist")
            eb = <EventBatch>batches[b]
            if pos[b] >= eb._n:
                raise ValueError("order does not match the batches")
            cls = classes[b]
            if cls is not None:
                item = make_event(cls, eb._buf + pos[b] * eb._rec_size, eb._rec_size, eb.symbols)
                if untrack[b]:
                    PyObject_GC_UnTrack(<PyObject *>item)
                Py_INCREF(item)
                PyList_SET_ITEM(out, k, item)
                k += 1
            pos[b] += 1
    else:
        for b in range(nb):
            cls = classes[b]
            if cls is None:
                continue
            eb = <EventBatch>batches[b]
            for j in range(eb._n):
                item = make_event(cls, eb._buf + j * eb._rec_size, eb._rec_size, eb.symbols)
                if untrack[b]:
                    PyObject_GC_UnTrack(<PyObject *>item)
                Py_INCREF(item)
                PyList_SET_ITEM(out, k, item)
                k += 1
    return out
