from libc.stdint cimport uint32_t
from fastfeed._native.symbols cimport SymbolTable

cdef class _Event:
    """Base of every event object: one record, read in place, + the table its ids refer to."""
    cdef object _owner              # keeps the memory at _p alive: a bytes copy or an EventBatch
    cdef const char *_p
    cdef uint32_t _size             # record size
    cdef SymbolTable _symtab
    cdef bytes _spill               # spill bytes its record refers to (None: nothing spilled)
    cdef uint32_t _spill_base       # spill-log position of _spill[0]

# Make an event of class `cls` (a subclass of _Event) from one record (copied); `spill` holds the
# spill-log bytes from position `spill_base` on that the record refers to (see spill.h).
cdef _Event make_event(type cls, const char *rec, Py_ssize_t size, SymbolTable symtab,
                       bytes spill=*, uint32_t spill_base=*)
# The same without a copy: the event reads `rec` in place, which `owner` keeps alive (and
# unchanged) for as long as it is referenced.
cdef _Event view_event(type cls, object owner, const char *rec, Py_ssize_t size,
                       SymbolTable symtab, bytes spill=*, uint32_t spill_base=*)
# A blank instance of `cls` (not tracked by the cyclic GC when the class has no __dict__).
cdef _Event new_event(type cls)
# Point the event `ev` at another record (recycling an instance nobody else refers to).
cdef int set_event(_Event ev, object owner, const char *rec, Py_ssize_t size, SymbolTable symtab,
                   bytes spill, uint32_t spill_base) except -1

# A spilled string slot's text (the slot at `slot` holds offset and length in the record's range).
cdef str spill_text(const char *rec, const char *slot, bytes spill, uint32_t base)
# A list longer than its inline slot (field `bit`), read whole from the spill (json.loads).
cdef object spill_list(const char *rec, int bit, bytes spill, uint32_t base)
# The keys without a slot of a record, as a dict in wire order (None when there are none).
cdef object spill_extras(const char *rec, bytes spill, uint32_t base)
