"""Lazy instances of a foreign (pydantic) model class over fastfeed event objects.

Used by ``fastfeed._sdk_events`` to hand out the tastytrade SDK's own event classes without
converting anything per event: an instance is created with no field values (its ``_ff`` slot
holds the fastfeed event); each field is converted the first time it is read
(:class:`LazyField`, a non-data descriptor that stores the converted value in the instance's
``__dict__``, so later reads are plain attribute reads). Whatever needs every field -- pydantic
reads ``__dict__`` by name for ``model_dump``, ``==``, ``repr``, ``copy``, pickling, ``vars()``
-- goes through the model class's ``__dict__`` property, which completes the dict first (the
Python side, ``fastfeed._sdk_events``).
"""

from cpython.object cimport PyObject_GenericSetAttr, PyTypeObject
from cpython.ref cimport PyObject
from libc.math cimport isfinite, floor

from fastfeed._native.events cimport make_event
from fastfeed._native.ring cimport EventBatch

from decimal import Decimal as _Decimal

cdef enum Kind:
    K_KEEP = 0      # the fastfeed value as it is
    K_DECIMAL = 1   # float/int -> Decimal (shortest repr, as pydantic does); NaN/Inf -> default
    K_INT = 2       # integral float -> int; NaN/Inf -> default; a fractional float is kept

#: conversion kinds of :class:`LazyField`
KEEP = K_KEEP
DECIMAL = K_DECIMAL
INT = K_INT

cdef object Decimal = _Decimal
cdef tuple _EMPTY = ()
cdef str _FF = "_ff"
cdef object _NO_DEFAULT = object()
NO_DEFAULT = _NO_DEFAULT


cdef inline object _new(type cls):
    return (<PyTypeObject *>object).tp_new(cls, <PyObject *>_EMPTY, NULL)


cdef class LazyField:
    """Non-data descriptor: convert the fastfeed event's ``source`` attribute on first read.

    ``default``: what a NaN/Inf becomes (``NO_DEFAULT``: DECIMAL keeps ``Decimal('NaN')`` /
    ``Decimal('Infinity')``, INT gives None).
    """
    cdef readonly str name
    cdef readonly str source
    cdef readonly int kind
    cdef readonly object default

    def __init__(self, str name, str source, int kind, object default=_NO_DEFAULT):
        self.name = name
        self.source = source
        self.kind = kind
        self.default = default

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        v = self.convert(getattr(getattr(obj, _FF), self.source))
        PyObject_GenericSetAttr(obj, self.name, v)
        return v

    cpdef object convert(self, object v):
        """The model's value for the fastfeed value ``v``."""
        cdef double d
        if self.kind == K_KEEP or v is None:
            return v
        if type(v) is float:
            d = v
            if not isfinite(d):
                if self.default is not _NO_DEFAULT:
                    return self.default
                return Decimal(v) if self.kind == K_DECIMAL else None
            if self.kind == K_DECIMAL:
                return Decimal(repr(v))
            if floor(d) == d:
                return int(v)
            return v
        if self.kind == K_DECIMAL and type(v) is int:
            return Decimal(v)
        return v


cdef class LazyBatch:
    """Iterate an EventBatch as instances of ``model_cls`` (each holding its fastfeed event)."""
    cdef EventBatch batch
    cdef type model_cls
    cdef type ff_cls
    cdef Py_ssize_t k

    def __init__(self, EventBatch batch, model_cls):
        if not isinstance(model_cls, type):
            raise TypeError("model_cls must be a class")
        self.batch = batch
        self.model_cls = <type>model_cls
        self.ff_cls = batch.event_class
        self.k = 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef EventBatch b = self.batch
        cdef Py_ssize_t k = self.k
        if k >= b._n:
            raise StopIteration
        self.k = k + 1
        ev = make_event(self.ff_cls, b._buf + k * b._rec_size, b._rec_size, b.symbols)
        o = _new(self.model_cls)
        PyObject_GenericSetAttr(o, _FF, ev)
        return o

    def __len__(self):
        return self.batch._n - self.k


cpdef object wrap(object model_cls, object event):
    """A lazy ``model_cls`` instance over the fastfeed ``event``."""
    if not isinstance(model_cls, type):
        raise TypeError("model_cls must be a class")
    o = _new(<type>model_cls)
    PyObject_GenericSetAttr(o, _FF, event)
    return o
