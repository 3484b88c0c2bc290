/* fastfeed/compat.h -- portability helpers shared by the C core and the Cython modules.
 *
 * Header-only, C11, no Python.h.  Everything is `static inline` so a Cython module can
 * `cdef extern from "fastfeed/compat.h"` without linking anything.
 *
 * The clocks live in fastfeed/clock.h (included here, so ff_now_ns / ff_mono_ns stay available).
 */
#ifndef FASTFEED_COMPAT_H
#define FASTFEED_COMPAT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Runtime CPU dispatch.  A hot decoder is built twice, for the baseline and for x86-64-v3
 * (AVX2, BMI1/2: shlx/shrx, bzhi, andn, LZCNT, MOVBE, FMA), from one always-inline body; the
 * module picks one at import through a function pointer (ff_cpu_v3(): the CPU has every v3
 * feature and FASTFEED_CPU is not "baseline").  GCC on x86-64 only; elsewhere the baseline
 * alone (FF_HAVE_V3 0).  Floating-point contraction is off in every build (setup.py and CMake
 * pass -ffp-contract=off): an FMA would round a*b+c once and change the
 * decoded doubles, which must equal float() of the text bit for bit (GCC's default in ISO C
 * mode, -std=c11, but not under -std=gnu11). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FASTFEED_NO_CLONES)
#  define FF_HAVE_V3 1
#  define FF_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#else
#  define FF_HAVE_V3 0
#  define FF_TARGET_V3
#endif

/* 1 if the x86-64-v3 builds may run: the CPU (and the OS, for the AVX state) supports all of
 * AVX2, BMI1, BMI2, LZCNT, MOVBE and FMA, and the environment variable FASTFEED_CPU is not
 * "baseline" (which forces the baseline builds, e.g. to test them on a v3 machine). */
static inline int ff_cpu_v3(void)
{
#if FF_HAVE_V3
    const char *force = getenv("FASTFEED_CPU");
    if (force && strcmp(force, "baseline") == 0)
        return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("lzcnt") &&
           __builtin_cpu_supports("movbe") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

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

#include "fastfeed/clock.h"   /* ff_now_ns, ff_mono_ns (kept available through compat.h) */

#endif /* FASTFEED_COMPAT_H */
