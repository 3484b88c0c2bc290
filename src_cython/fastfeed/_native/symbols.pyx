# cython: freethreading_compatible = False
"""Interned strings (symbols and other low-cardinality strings) for records."""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint32_t

from fastfeed._native.cring cimport ff_symtab_free, ff_symtab_init, ff_symtab_intern, ff_symtab_find


cdef class SymbolTable:
    """Bidirectional map between strings and small integer ids (0 means None).

    A record stores ``symbol_id``; ``table[symbol_id]`` gives the ``str``. The Python string is
    created once, when a value is first seen, never per event.
    """

    def __cinit__(self, uint32_t max_count=1 << 22):
        if ff_symtab_init(&self._t, max_count) != 0:
            raise MemoryError()
        self._strings = [None]
        self._ids = {}

    def __dealloc__(self):
        ff_symtab_free(&self._t)

    cdef uint32_t intern(self, const char *s, Py_ssize_t n) noexcept:
        cdef int is_new = 0
        cdef uint32_t sid = ff_symtab_intern(&self._t, s, <size_t>n, &is_new)
        if is_new:
            try:
                text = PyUnicode_DecodeUTF8(s, n, "replace")
                self._strings.append(text)
                self._ids[text] = sid
            except BaseException:
                return 0
        return sid

    cpdef uint32_t intern_str(self, str s) except? 0:
        cdef bytes b = s.encode("utf-8", "surrogatepass")
        cdef uint32_t sid = self.intern(b, len(b))
        if sid and self._strings[sid] != s:   # decode of surrogates replaced: keep the original
            self._strings[sid] = s
            self._ids[s] = sid
        return sid

    def id_of(self, str s):
        """Id of ``s`` or 0 when it was never interned."""
        return self._ids.get(s, 0)

    def __getitem__(self, uint32_t sid):
        return self.get(sid)

    def __len__(self):
        return len(self._strings) - 1

    def __contains__(self, str s):
        return s in self._ids

    @property
    def max_count(self):
        """The most strings the table holds (interning more is refused and counted)."""
        return self._t.max_count

    @property
    def refused(self):
        """Strings not interned because the table reached its maximum size."""
        return self._t.refused

    def strings(self):
        """All interned strings, in id order (id 1 first)."""
        return self._strings[1:]
