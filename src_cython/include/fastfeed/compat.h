/* fastfeed/compat.h -- portability helpers shared by the C core and the Cython modules.
 *
 * Header-only, C11, no Python.h.  Everything is `static inline` so a Cython module can
 * `cdef extern from "fastfeed/compat.h"` without linking anything.
 *
 * Clocks: ff_now_ns() is wall-clock time (CLOCK_REALTIME) in ns since the Unix epoch, used for
 * the `ts_recv` field of every record; ff_mono_ns() is CLOCK_MONOTONIC in ns, used for
 * intervals (liveness, latency).  On POSIX they need clock_gettime(), which a strict -std=c11
 * build only declares with a feature-test macro: CMake defines _GNU_SOURCE for every target
 * (the same macro Python's pyconfig.h defines, so both build paths see the same libc).
 */
#ifndef FASTFEED_COMPAT_H
#define FASTFEED_COMPAT_H

#include <stdint.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#  define FF_LIKELY(x)   __builtin_expect(!!(x), 1)
#  define FF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define FF_NOINLINE    __attribute__((noinline))
#  define FF_ALWAYS_INLINE inline __attribute__((always_inline))
#  define FF_COLD        __attribute__((cold))
#else
#  define FF_LIKELY(x)   (x)
#  define FF_UNLIKELY(x) (x)
#  define FF_NOINLINE
#  define FF_ALWAYS_INLINE inline
#  define FF_COLD
#endif

/* A hot decoder built twice, for x86-64-v3 (AVX2, BMI1/2: shlx/shrx, bzhi, andn) and the
 * baseline, the loader picking one at start-up (GCC ifunc; Linux on x86-64 only). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(FASTFEED_NO_CLONES) && !defined(__SANITIZE_ADDRESS__)
#  define FF_TARGET_CLONES_V3 __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#  define FF_TARGET_CLONES_V3
#endif

/* Short aliases, spelled token for token as Cython spells its own (it defines them
 * unconditionally in every generated module), so including this header before or after
 * Cython's preamble is not a macro redefinition. */
#ifndef likely
#  if defined(__GNUC__) || defined(__clang__)
#    define likely(x)   __builtin_expect(!!(x), 1)
#  else
#    define likely(x)   (x)
#  endif
#endif
#ifndef unlikely
#  if defined(__GNUC__) || defined(__clang__)
#    define unlikely(x) __builtin_expect(!!(x), 0)
#  else
#    define unlikely(x) (x)
#  endif
#endif

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

#endif /* FASTFEED_COMPAT_H */
