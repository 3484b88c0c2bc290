# cython: language_level=3, boundscheck=False, wraparound=False
"""The cost of building the polygon handlers' dicts in C, by strategy (bench/bench_dict_floor.py
builds this file and runs it): exactly the dicts json.loads gives for the bench's frames, their
values made fresh from C numbers each time (floats, ints, the trade id's str, condition lists;
``ev`` and the symbol shared, as fastfeed shares them), the dict dropped after (its dealloc
counted, as a handler drops it)."""
from cpython.object cimport PyObject
from libc.stdlib cimport malloc
from libc.string cimport memcpy
import time

cdef extern from "Python.h":
    PyObject *PyDict_New()
    PyObject *PyDict_Copy(PyObject *)
    PyObject *_PyDict_NewPresized(Py_ssize_t)
    int PyDict_SetItem(PyObject *, PyObject *, PyObject *)
    PyObject *PyFloat_FromDouble(double)
    PyObject *PyLong_FromLongLong(long long)
    PyObject *PyList_New(Py_ssize_t)
    void PyList_SET_ITEM(PyObject *, Py_ssize_t, PyObject *)
    PyObject *PyUnicode_FromStringAndSize(const char *, Py_ssize_t)
    void Py_DECREF_P "Py_DECREF"(PyObject *)
    void Py_INCREF_P "Py_INCREF"(PyObject *)

cdef extern from "fastfeed/dictfill.h":
    ctypedef struct ff_dict_uentry:
        pass
    ff_dict_uentry *ff_dictfill_entries(PyObject *d, Py_ssize_t n)
    int ff_dictfill_put(PyObject *d, ff_dict_uentry *en, Py_ssize_t j, PyObject *key, PyObject *v)

# value kinds
DEF V_SHARED = 0   # an object shared (ev, sym): incref
DEF V_F64 = 1
DEF V_I64 = 2
DEF V_STR = 3      # trade id: made from its digits
DEF V_LIST = 4     # list of small ints

cdef struct Ev:
    int n
    PyObject *keys[16]
    int kind[16]
    double f[16]
    long long i[16]
    PyObject *shared[16]
    char s[16][24]
    int slen[16]
    PyObject *tmpl    # template dict (values None except ev)

cdef Ev *EVS = NULL
cdef int NEV = 0
cdef list _keep = []

def setup(list dicts):
    """dicts: the json.loads output of the frames (what must be delivered)."""
    global EVS, NEV
    import sys
    NEV = len(dicts)
    EVS = <Ev *>malloc(sizeof(Ev) * NEV)
    tmpls = {}
    cdef int e, j
    for e, d in enumerate(dicts):
        EVS[e].n = len(d)
        for j, (k, v) in enumerate(d.items()):
            k = sys.intern(k)
            _keep.append(k)
            EVS[e].keys[j] = <PyObject *>k
            if k in ("ev", "sym"):
                v = sys.intern(v); _keep.append(v)
                EVS[e].kind[j] = V_SHARED; EVS[e].shared[j] = <PyObject *>v
            elif type(v) is float:
                EVS[e].kind[j] = V_F64; EVS[e].f[j] = v
            elif type(v) is int:
                EVS[e].kind[j] = V_I64; EVS[e].i[j] = v
            elif type(v) is str:
                EVS[e].kind[j] = V_STR; b = v.encode(); EVS[e].slen[j] = len(b)
                memcpy(EVS[e].s[j], <char *>b, len(b))
            elif type(v) is list:
                EVS[e].kind[j] = V_LIST; EVS[e].slen[j] = len(v)
                for q, x in enumerate(v):
                    (<long long *>EVS[e].s[j])[q] = x
            else:
                raise TypeError(v)
        sig = tuple(sys.intern(k) for k in d)   # the very key objects the entries hold
        t = tmpls.get(sig)
        if t is None:
            t = {k: None for k in sig}
            t["ev"] = sys.intern(d["ev"])
            tmpls[sig] = t
            _keep.append(t)
        EVS[e].tmpl = <PyObject *>t

cdef inline PyObject *mkval(Ev *ev, int j):
    cdef int k = ev.kind[j]
    cdef PyObject *v
    cdef int q
    if k == V_SHARED:
        Py_INCREF_P(ev.shared[j]); return ev.shared[j]
    if k == V_F64:
        return PyFloat_FromDouble(ev.f[j])
    if k == V_I64:
        return PyLong_FromLongLong(ev.i[j])
    if k == V_STR:
        return PyUnicode_FromStringAndSize(ev.s[j], ev.slen[j])
    v = PyList_New(ev.slen[j])
    for q in range(ev.slen[j]):
        PyList_SET_ITEM(v, q, PyLong_FromLongLong((<long long *>ev.s[j])[q]))
    return v

cdef void values_only(Ev *ev):
    cdef int j
    for j in range(ev.n):
        Py_DECREF_P(mkval(ev, j))

cdef void copy_only(Ev *ev):
    Py_DECREF_P(PyDict_Copy(ev.tmpl))

cdef void copy_set(Ev *ev):
    cdef PyObject *d = PyDict_Copy(ev.tmpl)
    cdef PyObject *v
    cdef int j
    for j in range(1, ev.n):   # ev already in the template
        v = mkval(ev, j)
        PyDict_SetItem(d, ev.keys[j], v)
        Py_DECREF_P(v)
    Py_DECREF_P(d)

cdef void new_set(Ev *ev):
    cdef PyObject *d = PyDict_New()
    cdef PyObject *v
    cdef int j
    for j in range(ev.n):
        v = mkval(ev, j)
        PyDict_SetItem(d, ev.keys[j], v)
        Py_DECREF_P(v)
    Py_DECREF_P(d)

cdef void presized_set(Ev *ev):
    cdef PyObject *d = _PyDict_NewPresized(ev.n)
    cdef PyObject *v
    cdef int j
    for j in range(ev.n):
        v = mkval(ev, j)
        PyDict_SetItem(d, ev.keys[j], v)
        Py_DECREF_P(v)
    Py_DECREF_P(d)

cdef void copy_poke(Ev *ev):
    # PyDict_Copy of the template, values written into its entries (what pgdict does)
    cdef PyObject *d = PyDict_Copy(ev.tmpl)
    cdef ff_dict_uentry *en = ff_dictfill_entries(d, ev.n)
    cdef PyObject *v
    cdef int j
    for j in range(1, ev.n):
        v = mkval(ev, j)
        if not ff_dictfill_put(d, en, j, ev.keys[j], v):
            PyDict_SetItem(d, ev.keys[j], v)
        Py_DECREF_P(v)
    Py_DECREF_P(d)

cdef void empty_loop(Ev *ev):
    pass

ctypedef void (*fn_t)(Ev *)

def poke_active():
    """Whether the entries of a template copy are written directly (else PyDict_SetItem)."""
    cdef PyObject *d = PyDict_Copy(EVS[0].tmpl)
    active = ff_dictfill_entries(d, EVS[0].n) != NULL
    Py_DECREF_P(d)
    return active

def run(str which, int reps):
    """ns per event of strategy `which` over all events, `reps` passes."""
    cdef fn_t f
    if which == "values": f = values_only
    elif which == "copy": f = copy_only
    elif which == "copy+set": f = copy_set
    elif which == "new+set": f = new_set
    elif which == "presized+set": f = presized_set
    elif which == "copy+poke": f = copy_poke
    elif which == "empty": f = empty_loop
    else: raise ValueError(which)
    cdef int r, e
    t0 = time.process_time_ns()
    for r in range(reps):
        for e in range(NEV):
            f(&EVS[e])
    t1 = time.process_time_ns()
    return (t1 - t0) / (reps * NEV)

def built(str which):
    """The dicts strategy ``which`` builds (to check them against json.loads)."""
    out = []
    cdef int e, j
    cdef PyObject *d
    cdef PyObject *v
    cdef ff_dict_uentry *en
    for e in range(NEV):
        if which == "copy+poke":
            d = PyDict_Copy(EVS[e].tmpl)
            en = ff_dictfill_entries(d, EVS[e].n)
        else:
            d = PyDict_Copy(EVS[e].tmpl)
            en = NULL
        for j in range(1, EVS[e].n):
            v = mkval(&EVS[e], j)
            if not ff_dictfill_put(d, en, j, EVS[e].keys[j], v):
                PyDict_SetItem(d, EVS[e].keys[j], v)
            Py_DECREF_P(v)
        out.append(<object>d)
        Py_DECREF_P(d)
    return out
