/* fastfeed/dictfill.h -- set the values of a dict that was just copied from a template.
 *
 * The polygon dict path (pgdict.pyx) hands handlers one plain dict per event: a PyDict_Copy of a
 * per-layout template (the keys already laid out, values None) whose values are then replaced.
 * PyDict_SetItem per key costs a hash-table probe and the dict's bookkeeping (~14 ns a key on
 * CPython 3.11, ~160 of the ~300 ns of a 12-key dict); the copy's entries are already in the
 * template's order, so the value can be written into its entry directly.
 *
 * That needs the layout of a dict's keys object, which is CPython's internal struct: it is the
 * same in 3.11, 3.12 and 3.13 (default, GIL builds), the only ones enabled here; elsewhere
 * ff_dictfill_entries() returns NULL and the caller uses PyDict_SetItem. Every use is checked
 * at run time too: the table must be a combined table of str keys that nothing else shares
 * (PyDict_Copy's own, reference count 1) with the template's number of entries, and each
 * entry's key must be the very key object expected (ff_dictfill_put returns 0 otherwise and
 * the caller falls back to PyDict_SetItem), so a copy laid out any other way is never written
 * into. The dict is brand new and nobody else has seen it: no watcher, no cached lookup, no
 * iterator can observe the write.
 */
#ifndef FASTFEED_DICTFILL_H
#define FASTFEED_DICTFILL_H

#include <Python.h>
#include <stdint.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && \
    !defined(Py_GIL_DISABLED) && !defined(PYPY_VERSION) && !defined(Py_LIMITED_API)
#  define FF_DICTFILL 1
#else
#  define FF_DICTFILL 0
#endif

typedef struct {
    PyObject *me_key;
    PyObject *me_value;
} ff_dict_uentry;   /* PyDictUnicodeEntry */

#if FF_DICTFILL
typedef struct {    /* struct _dictkeysobject, Include/internal/pycore_dict.h, 3.11-3.13 */
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size;
    uint8_t dk_log2_index_bytes;
    uint8_t dk_kind;
    uint32_t dk_version;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
} ff_dictkeys;
#  define FF_DICT_KEYS_UNICODE 1
#endif

/* The entries of `d` if it is an exact dict with a combined table of str keys of its own holding
 * exactly `n` entries, none deleted; NULL otherwise (or where the layout is not known). */
static inline ff_dict_uentry *ff_dictfill_entries(PyObject *d, Py_ssize_t n)
{
#if FF_DICTFILL
    PyDictObject *mp = (PyDictObject *)d;
    ff_dictkeys *k;
    if (!PyDict_CheckExact(d) || mp->ma_values != NULL || mp->ma_used != n)
        return NULL;
    k = (ff_dictkeys *)mp->ma_keys;
    if (k->dk_kind != FF_DICT_KEYS_UNICODE || k->dk_refcnt != 1 || k->dk_nentries != n ||
        k->dk_log2_index_bytes > 40)
        return NULL;
    return (ff_dict_uentry *)(k->dk_indices + ((size_t)1 << k->dk_log2_index_bytes));
#else
    (void)d; (void)n;
    return NULL;
#endif
}

/* Entry `j` of `en` (from ff_dictfill_entries(d, n), j < n) takes `v` as its value when its key
 * is `key` (a new reference to v is stored, the old value released): 1. Otherwise nothing is
 * changed: 0 (set it with PyDict_SetItem). */
static inline int ff_dictfill_put(PyObject *d, ff_dict_uentry *en, Py_ssize_t j, PyObject *key,
                                  PyObject *v)
{
    PyObject *old;
    if (en == NULL || en[j].me_key != key)
        return 0;
    Py_INCREF(v);
    old = en[j].me_value;
    en[j].me_value = v;
    Py_XDECREF(old);
    /* what PyDict_SetItem does: a dict holding a container is tracked by the cyclic GC (the
     * type's flag tested inline: PyObject_IS_GC is a call; tracking one more dict is harmless) */
    if (PyType_HasFeature(Py_TYPE(v), Py_TPFLAGS_HAVE_GC) && !PyObject_GC_IsTracked(d))
        PyObject_GC_Track(d);
    return 1;
}

#endif /* FASTFEED_DICTFILL_H */
