# Declarations of the plain-C ring and symbol table (src_cython/include/fastfeed/{ring,symtab}.h).
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "fastfeed/spill.h" nogil:
    ctypedef struct ff_spill:
        uint32_t tail
        uint32_t head
        uint64_t used
        uint64_t records
        uint64_t relocated
    void ff_spill_read(const ff_spill *sp, uint32_t pos, uint32_t n, void *dst)
    void ff_spill_range(const ff_spill *sp, const unsigned char *rec, uint64_t count, uint32_t size,
                        uint32_t *lo, uint32_t *n)

cdef extern from "fastfeed/ring.h" nogil:
    enum:
        FF_DROP_OLDEST
        FF_BACKPRESSURE
    ctypedef struct ff_consumer:
        uint64_t cursor
        uint64_t gaps
        int active
        int weak
    ctypedef struct ff_cap_chunk:
        uint32_t tag
        uint32_t n
    ctypedef struct ff_rec_sink:
        unsigned char *buf
        uint64_t limit
        uint64_t len
        uint64_t records
        uint64_t dropped
        int sealed
        const void *last
        uint64_t last_chunk
        uint32_t refs
        int orphan
    ctypedef struct ff_ring:
        unsigned char *buf
        uint32_t rec_size
        int policy
        uint64_t capacity
        uint64_t mask
        uint64_t max_capacity
        uint64_t head
        uint64_t base
        uint64_t floor
        uint64_t claimed
        uint64_t grown
        uint64_t rebased
        uint32_t held
        uint64_t overflowed
        ff_consumer *consumers
        uint32_t n_consumers
        unsigned char *latest
        uint32_t latest_cap
        ff_spill spill
        ff_rec_sink *sink
        uint32_t sink_tag
        uint64_t sink_n
    int ff_ring_init(ff_ring *r, uint32_t rec_size, uint64_t capacity, int policy, uint64_t max_capacity)
    void ff_ring_free(ff_ring *r)
    void *ff_ring_slot(ff_ring *r, uint64_t k)
    void ff_ring_publish(ff_ring *r, uint64_t n)
    void ff_ring_abandon(ff_ring *r)
    int ff_ring_add_consumer(ff_ring *r, int from_oldest)
    void ff_ring_remove_consumer(ff_ring *r, int idx)
    void ff_ring_set_weak(ff_ring *r, int idx, int weak)
    uint64_t ff_ring_available(ff_ring *r, int idx)
    uint64_t ff_ring_read(ff_ring *r, int idx, void *dst, uint64_t max)
    const void *ff_ring_last(const ff_ring *r)
    int ff_ring_pressure(const ff_ring *r)
    uint64_t ff_ring_min_cursor(const ff_ring *r)
    void ff_ring_enable_latest(ff_ring *r)
    const void *ff_ring_latest(const ff_ring *r, uint32_t sid)
    int ff_ring_sink_take(ff_ring *r, uint64_t *n, uint32_t *lo, uint32_t *spill_n)
    ff_rec_sink *ff_rec_sink_new()
    void ff_rec_sink_orphan(ff_rec_sink *k)
    int ff_ring_sink_attach(ff_ring *r, ff_rec_sink *k, uint32_t tag)
    void ff_ring_sink_detach(ff_ring *r, const ff_rec_sink *k)
    int ff_ring_spill_put(ff_ring *r, unsigned char *rec, const unsigned char *src, uint32_t len,
                          uint64_t seq)

cdef extern from "fastfeed/symtab.h" nogil:
    ctypedef struct ff_symtab:
        uint32_t count
        uint32_t max_count
        uint64_t refused
    int ff_symtab_init(ff_symtab *t, uint32_t max_count)
    void ff_symtab_free(ff_symtab *t)
    uint32_t ff_symtab_intern(ff_symtab *t, const char *s, size_t n, int *is_new)
    uint32_t ff_symtab_find(const ff_symtab *t, const char *s, size_t n)
