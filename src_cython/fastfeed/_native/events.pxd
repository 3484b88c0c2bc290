from fastfeed._native.symbols cimport SymbolTable

cdef class _Event:
    """Base of every event object: a private copy of one record + the table its ids refer to."""
    cdef bytes _raw
    cdef const char *_p
    cdef SymbolTable _symtab

# Make an event of class `cls` (a subclass of _Event) from one record (copied).
cdef _Event make_event(type cls, const char *rec, Py_ssize_t size, SymbolTable symtab)
