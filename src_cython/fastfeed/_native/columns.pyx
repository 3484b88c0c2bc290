# cython: boundscheck=False, wraparound=False, cdivision=True
"""Fixed-layout records <-> one contiguous buffer per member (the columnar recorder and replay).

``gather(records, rec_size, members, outs)`` copies member ``k`` = ``(offset, size)`` of every
record into ``outs[k]``; ``scatter`` is the reverse. One pass over the records in blocks that stay
in cache, without the GIL (the recorder's writer thread runs it beside the event loop).
"""

from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer

DEF BLOCK = 256   # rows per pass: 256 records (22 KiB of Quotes) and their columns stay in L1
                  # (1024: scatter 2x slower)


cdef inline void _gather1(uint8_t *col, const uint8_t *base, Py_ssize_t i, Py_ssize_t end,
                          Py_ssize_t rec_size, Py_ssize_t off, Py_ssize_t size,
                          bint to_cols) noexcept nogil:
    """Rows [i, end) of one member; the size test is outside the row loop (constant-size
    memcpy compiles to one unaligned-safe load/store)."""
    cdef Py_ssize_t j
    cdef uint8_t *w
    cdef const uint8_t *r = base + i * rec_size + off
    cdef uint8_t *c = col + i * size
    if to_cols:
        if size == 8:
            for j in range(end - i):
                memcpy(c + j * 8, r + j * rec_size, 8)
        elif size == 4:
            for j in range(end - i):
                memcpy(c + j * 4, r + j * rec_size, 4)
        elif size == 2:
            for j in range(end - i):
                memcpy(c + j * 2, r + j * rec_size, 2)
        elif size == 1:
            for j in range(end - i):
                c[j] = r[j * rec_size]
        else:
            for j in range(end - i):
                memcpy(c + j * size, r + j * rec_size, size)
    else:                   # the same for scatter (a memcpy of a variable size is a call
        w = <uint8_t *>r    # per member and row: ~8x slower on a replay)
        if size == 8:
            for j in range(end - i):
                memcpy(w + j * rec_size, c + j * 8, 8)
        elif size == 4:
            for j in range(end - i):
                memcpy(w + j * rec_size, c + j * 4, 4)
        elif size == 2:
            for j in range(end - i):
                memcpy(w + j * rec_size, c + j * 2, 2)
        elif size == 1:
            for j in range(end - i):
                w[j * rec_size] = c[j]
        else:
            for j in range(end - i):
                memcpy(w + j * rec_size, c + j * size, size)


cdef int _run(object records, Py_ssize_t rec_size, list members, list cols, bint to_cols) except -1:
    cdef Py_ssize_t m = len(members)
    cdef Py_buffer rec
    cdef Py_buffer *bufs = <Py_buffer *>malloc(sizeof(Py_buffer) * (m if m else 1))
    cdef Py_ssize_t *offs = <Py_ssize_t *>malloc(sizeof(Py_ssize_t) * (2 * m + 1))
    cdef Py_ssize_t *sizes
    cdef Py_ssize_t n, i, k, end, off, size
    cdef uint8_t *base
    cdef int got = 0
    cdef bint have_rec = False
    if bufs == NULL or offs == NULL:
        free(bufs)
        free(offs)
        raise MemoryError()
    sizes = offs + m
    try:
        if len(cols) != m:
            raise ValueError("one buffer per member")
        PyObject_GetBuffer(records, &rec, PyBUF_SIMPLE | (0 if to_cols else PyBUF_WRITABLE))
        have_rec = True
        if rec_size <= 0 or rec.len % rec_size:
            raise ValueError("records: length is not a multiple of the record size")
        n = rec.len // rec_size
        for k in range(m):
            off, size = members[k]
            if off < 0 or size <= 0 or off + size > rec_size:
                raise ValueError(f"member {k} ({off}, {size}) outside the record")
            offs[k] = off
            sizes[k] = size
            PyObject_GetBuffer(cols[k], &bufs[k], PyBUF_SIMPLE | (PyBUF_WRITABLE if to_cols else 0))
            got += 1
            if bufs[k].len < n * size:
                raise ValueError(f"column {k} holds {bufs[k].len} bytes, needs {n * size}")
        base = <uint8_t *>rec.buf
        with nogil:
            i = 0
            while i < n:
                end = i + BLOCK if i + BLOCK < n else n
                for k in range(m):
                    _gather1(<uint8_t *>bufs[k].buf, base, i, end, rec_size, offs[k], sizes[k],
                             to_cols)
                i = end
    finally:
        for k in range(got):
            PyBuffer_Release(&bufs[k])
        if have_rec:
            PyBuffer_Release(&rec)
        free(bufs)
        free(offs)
    return 0


def gather(records, Py_ssize_t rec_size, list members, list outs):
    """``outs[k][i] = member k of record i`` for members ``[(offset, size)]`` (bytes-like)."""
    _run(records, rec_size, members, outs, True)


def scatter(records, Py_ssize_t rec_size, list members, list ins):
    """``member k of record i = ins[k][i]``: the reverse of ``gather`` (records writable)."""
    _run(records, rec_size, members, ins, False)
