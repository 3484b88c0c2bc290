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

#include "fastfeed/clock.h"   /* ff_now_ns, ff_mono_ns (kept available through compat.h) */

#endif /* FASTFEED_COMPAT_H */
