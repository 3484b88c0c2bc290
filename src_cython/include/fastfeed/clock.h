/* fastfeed/clock.h -- the one clock implementation of fastfeed (C core and Cython modules).
 *
 * Header-only, C11, no Python.h.  ff_now_ns() is wall-clock time (CLOCK_REALTIME) in ns since
 * the Unix epoch: the `ts_recv` of every record.  ff_mono_ns() is CLOCK_MONOTONIC in ns (the
 * clock of time.monotonic_ns()): intervals, liveness, latency.  On POSIX they need
 * clock_gettime(), which a strict -std=c11 build only declares with a feature-test macro: CMake
 * defines _GNU_SOURCE for every target (the same macro Python's pyconfig.h defines, so both
 * build paths see the same libc).
 */
#ifndef FASTFEED_CLOCK_H
#define FASTFEED_CLOCK_H

#include <stdint.h>
#include <time.h>

#if defined(_WIN32)
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <windows.h>

static inline int64_t ff_now_ns(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    /* 100 ns ticks since 1601-01-01 -> ns since 1970-01-01 */
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (int64_t)(t - 116444736000000000ULL) * 100;
}

static inline int64_t ff_mono_ns(void)
{
    static LARGE_INTEGER freq; /* benign race: every thread writes the same value */
    LARGE_INTEGER c;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    return (int64_t)((c.QuadPart / freq.QuadPart) * 1000000000LL
                     + (c.QuadPart % freq.QuadPart) * 1000000000LL / freq.QuadPart);
}

#else /* POSIX */

static inline int64_t ff_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + (int64_t)ts.tv_nsec;
}

static inline int64_t ff_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + (int64_t)ts.tv_nsec;
}

#endif

#endif /* FASTFEED_CLOCK_H */
