# cython: language_level=3
"""Test hook: exposes the plain-C helpers (numparse.h, jsonscan.h) to Python.

Only for tests and debugging (property tests against ``float()``, ``int()`` and ``json``);
not part of the public API and not on any hot path.

Every function copies its argument so that it ends exactly at a page boundary followed by an
inaccessible (PROT_NONE) guard page: a C helper that reads at or past ``end`` crashes the
process with SIGSEGV instead of silently reading neighbouring memory.  ``set_guard(False)``
switches to plain exact-size ``malloc`` buffers (for ASan builds, where ASan's redzones do
the same job more precisely).
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from posix.mman cimport mmap, munmap, mprotect, PROT_NONE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FAILED
from posix.unistd cimport sysconf, _SC_PAGESIZE

cdef extern from "fastfeed/numparse.h" nogil:
    enum:
        FF_NUM_ERR
        FF_NUM_INT
        FF_NUM_FLOAT
        FF_NUM_BIGINT
    ctypedef struct ff_num:
        int kind
        int64_t i
        double d
    const char *ff_parse_number(const char *p, const char *end, ff_num *out)
    const char *ff_parse_int64(const char *p, const char *end, int64_t *out)
    const char *ff_parse_double(const char *p, const char *end, double *out)

cdef extern from "fastfeed/jsonscan.h" nogil:
    int FF_JSON_MAX_DEPTH
    const char *ff_skip_ws(const char *p, const char *end)
    const char *ff_scan_string(const char *p, const char *end, const char **s, size_t *n,
                               int *esc)
    Py_ssize_t ff_unescape(const char *s, size_t n, char *dst, size_t cap)
    const char *ff_skip_value(const char *p, const char *end)
    const char *ff_skip_number(const char *p, const char *end)

cdef extern from "fastfeed/compat.h" nogil:
    int64_t ff_now_ns()
    int64_t ff_mono_ns()

KIND_ERR = FF_NUM_ERR
KIND_INT = FF_NUM_INT
KIND_FLOAT = FF_NUM_FLOAT
KIND_BIGINT = FF_NUM_BIGINT
MAX_DEPTH = FF_JSON_MAX_DEPTH


cdef bint _guard = True
cdef size_t _page = <size_t>sysconf(_SC_PAGESIZE)


def set_guard(bint on):
    """Enable (default) or disable the guard-page buffers; returns the previous setting."""
    global _guard
    cdef bint old = _guard
    _guard = on
    return old


cdef char *_copy(bytes data, Py_ssize_t *n) except NULL:
    """Copy ``data`` into a buffer whose last byte is the last accessible byte."""
    n[0] = PyBytes_GET_SIZE(data)
    cdef size_t len_ = <size_t>n[0]
    cdef size_t pages, total
    cdef char *base
    cdef char *buf
    if not _guard:
        buf = <char *>malloc(len_ if len_ > 0 else 1)
        if buf == NULL:
            raise MemoryError()
        memcpy(buf, PyBytes_AS_STRING(data), len_)
        return buf
    pages = (len_ + _page - 1) // _page
    if pages == 0:
        pages = 1
    total = (pages + 1) * _page
    base = <char *>mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if <void *>base == MAP_FAILED:
        raise MemoryError()
    if mprotect(base + pages * _page, _page, PROT_NONE) != 0:
        munmap(base, total)
        raise OSError("mprotect failed")
    buf = base + pages * _page - len_
    memcpy(buf, PyBytes_AS_STRING(data), len_)
    return buf


cdef void _release(char *buf, Py_ssize_t n) noexcept:
    cdef size_t len_ = <size_t>n
    cdef size_t pages
    cdef char *end
    if not _guard:
        free(buf)
        return
    pages = (len_ + _page - 1) // _page
    if pages == 0:
        pages = 1
    end = buf + len_                      # == base + pages * page
    munmap(end - pages * _page, (pages + 1) * _page)


def parse_number(bytes text, bint whole=True):
    """Return ``(kind, value)``; ``(0, None)`` if malformed.

    kind 1 (INT) -> int, 2 (FLOAT) -> float, 3 (BIGINT) -> float.  With ``whole`` (default)
    the number must span all of ``text``; otherwise trailing bytes are allowed.
    """
    cdef Py_ssize_t n
    cdef ff_num num
    cdef char *buf = _copy(text, &n)
    cdef const char *r = ff_parse_number(buf, buf + n, &num)
    cdef Py_ssize_t used = r - buf if r != NULL else -1
    _release(buf, n)
    if used < 0 or (whole and used != n):
        return (FF_NUM_ERR, None)
    if num.kind == FF_NUM_INT:
        return (num.kind, num.i)
    return (num.kind, num.d)


def parse_number_full(bytes text):
    """Return ``(kind, i, d, consumed)``, or ``None`` if ff_parse_number returned NULL."""
    cdef Py_ssize_t n
    cdef ff_num num
    cdef char *buf = _copy(text, &n)
    cdef const char *r = ff_parse_number(buf, buf + n, &num)
    cdef Py_ssize_t used = r - buf if r != NULL else -1
    _release(buf, n)
    if used < 0:
        return None
    return (num.kind, num.i, num.d, used)


def parse_int64(bytes text):
    """The int64 value of the whole of ``text`` (integral floats accepted), else ``None``."""
    cdef Py_ssize_t n
    cdef int64_t v = 0
    cdef char *buf = _copy(text, &n)
    cdef const char *r = ff_parse_int64(buf, buf + n, &v)
    cdef bint ok = r != NULL and r - buf == n
    _release(buf, n)
    return v if ok else None


def parse_double(bytes text):
    """The double value of the whole of ``text``, else ``None``."""
    cdef Py_ssize_t n
    cdef double d = 0.0
    cdef char *buf = _copy(text, &n)
    cdef const char *r = ff_parse_double(buf, buf + n, &d)
    cdef bint ok = r != NULL and r - buf == n
    _release(buf, n)
    return d if ok else None


def scan_string(bytes text):
    """``(raw_content: bytes, has_escapes: bool, consumed: int)`` for a string at the start of
    ``text`` (which must begin with ``"``), or ``None`` if invalid/unterminated."""
    cdef Py_ssize_t n
    cdef const char *s = NULL
    cdef size_t sn = 0
    cdef int esc = 0
    cdef char *buf = _copy(text, &n)
    cdef const char *r = ff_scan_string(buf, buf + n, &s, &sn, &esc)
    if r == NULL:
        _release(buf, n)
        return None
    try:
        return (s[:sn], bool(esc), r - buf)
    finally:
        _release(buf, n)


def unescape(bytes raw, cap=None):
    """Decode the escapes of raw string content; ``str`` or ``None`` on error.

    ``cap`` (default ``len(raw)``) is the output capacity handed to ff_unescape; the output
    buffer is guarded like the input, so a write past ``cap`` crashes.
    """
    cdef Py_ssize_t n, c
    cdef Py_ssize_t got
    cdef char *buf = _copy(raw, &n)
    cdef char *dst
    try:
        dst = _copy(bytes(len(raw) if cap is None else cap), &c)
    except BaseException:
        _release(buf, n)
        raise
    got = ff_unescape(buf, <size_t>n, dst, <size_t>c)
    try:
        if got < 0:
            return None
        return PyUnicode_DecodeUTF8(dst, got, "strict")
    finally:
        _release(buf, n)
        _release(dst, c)


def skip_value(bytes text):
    """Bytes consumed by ff_skip_value (leading whitespace included), or -1."""
    cdef Py_ssize_t n
    cdef char *buf = _copy(text, &n)
    cdef const char *r = ff_skip_value(buf, buf + n)
    cdef Py_ssize_t used = r - buf if r != NULL else -1
    _release(buf, n)
    return used


def skip_ws(bytes text):
    cdef Py_ssize_t n
    cdef char *buf = _copy(text, &n)
    cdef Py_ssize_t used = ff_skip_ws(buf, buf + n) - buf
    _release(buf, n)
    return used


def now_ns():
    return ff_now_ns()


def mono_ns():
    return ff_mono_ns()
