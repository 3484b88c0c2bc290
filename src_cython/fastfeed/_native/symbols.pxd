from libc.stdint cimport uint32_t
from fastfeed._native.cring cimport ff_symtab

cdef class SymbolTable:
    """Interned strings: id (uint32, 0 = None) <-> str. Owned by a decoder/streamer."""
    cdef ff_symtab _t
    cdef list _strings          # id -> str (index 0 is None)
    cdef dict _ids              # str -> id (for lookups from Python)

    # Hot path: intern raw UTF-8 bytes; creates the Python str only the first time a value is seen.
    # Returns 0 when the table is full (counted in `refused`) or on error (a Python error is set only
    # for MemoryError / invalid UTF-8; callers treat 0 as "null").
    cdef uint32_t intern(self, const char *s, Py_ssize_t n) noexcept
    cdef inline object get(self, uint32_t sid):
        if sid < <uint32_t>len(self._strings):
            return self._strings[sid]
        return None
    cpdef uint32_t intern_str(self, str s) except? 0
