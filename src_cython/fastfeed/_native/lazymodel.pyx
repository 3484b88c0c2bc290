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

cdef extern from "Python.h":
    object PyObject_GenericGetDict(object o, void *context)
    int PyObject_GenericSetDict(object o, object value, void *context) except -1
from cpython.ref cimport PyObject
from libc.math cimport isfinite, floor

from fastfeed._native.ring cimport EventBatch, EventStream, batch_event

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


#: finite non-zero double -> its Decimal (Decimals are immutable: shared safely). Prices and
#: sizes repeat a lot in market data; the conversion (repr + Decimal) costs ~10x a lookup.
cdef dict _DECIMALS = {}
cdef Py_ssize_t DECIMAL_CACHE_MAX = 1 << 16


cdef object _decimal_of(object v, double d):
    r = _DECIMALS.get(v)
    if r is not None:
        return r
    r = Decimal(repr(v))
    if d != 0.0:   # -0.0 == 0.0: never share the two zeros
        if len(_DECIMALS) >= DECIMAL_CACHE_MAX:
            _DECIMALS.clear()
        _DECIMALS[v] = r
    return r


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
                return _decimal_of(v, d)
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
        batch._own()   # its events read the batch's memory
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
        o = _new(self.model_cls)
        PyObject_GenericSetAttr(o, _FF, batch_event(b, k))
        return o

    def __len__(self):
        return self.batch._n - self.k


cdef class LazyStream(EventStream):
    """``listen()`` of an SDK class: an EventStream whose items are lazy ``model_cls`` instances
    (each holding its fastfeed event, recycled once the instance is gone)."""
    cdef type model_cls

    def __init__(self, owner, consumer, model_cls):
        if not isinstance(model_cls, type):
            raise TypeError("model_cls must be a class")
        EventStream.__init__(self, owner, consumer)
        self.model_cls = <type>model_cls

    cdef object _item(self):
        o = _new(self.model_cls)
        PyObject_GenericSetAttr(o, _FF, self._take())
        return o


cpdef object wrap(object model_cls, object event):
    """A lazy ``model_cls`` instance over the fastfeed ``event``."""
    if not isinstance(model_cls, type):
        raise TypeError("model_cls must be a class")
    o = _new(<type>model_cls)
    PyObject_GenericSetAttr(o, _FF, event)
    return o



cdef dict _complete(obj, object ev, tuple fields, dict have):
    cdef dict out = {}
    cdef LazyField f
    for f in fields:
        v = have.get(f.name, _NO_DEFAULT)
        if v is _NO_DEFAULT:
            v = f.convert(getattr(ev, f.source))
        out[f.name] = v
    return out


cdef class LazyDict:
    """The model class's ``__dict__`` (a data descriptor): the instance dict, completed first --
    every field of ``fields`` (LazyFields, in the model's field order) converted."""
    cdef readonly tuple fields

    def __init__(self, tuple fields):
        for f in fields:
            if not isinstance(f, LazyField):
                raise TypeError("fields must be LazyField objects")
        self.fields = fields

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        d = PyObject_GenericGetDict(obj, NULL)
        ev = getattr(obj, _FF, None)
        if ev is None:
            return d
        values = _complete(obj, ev, self.fields, d)
        PyObject_GenericSetDict(obj, values, NULL)
        PyObject_GenericSetAttr(obj, _FF, None)
        return values

    def __set__(self, obj, value):
        if not isinstance(value, dict):
            raise TypeError("__dict__ must be a dict")
        PyObject_GenericSetDict(obj, value, NULL)
        PyObject_GenericSetAttr(obj, _FF, None)
