/* fastfeed/clock.h -- the one clock implementation of fastfeed (C core and Cython modules).
 *
 * Header-only, C11, no Python.h.  ff_now_ns() is wall-clock time (CLOCK_REALTIME) in ns since
 * the Unix epoch: the `ts_recv` of every record.  ff_mono_ns() is CLOCK_MONOTONIC in ns (the
 * clock of time.monotonic_ns()): intervals, liveness, latency.  On POSIX they need
 * clock_gettime(), which a strict -std=c11 build only declares with a feature-test macro: CMake
 * defines _GNU_SOURCE for every target (the same macro Python's pyconfig.h defines, so both
 * build paths see the same libc).
 *
 * ff_now_ns() on x86-64 Linux: a calibrated TSC clock, computed the way the vDSO computes
 * CLOCK_REALTIME itself, ns = anchor_ns + ((tsc - anchor_tsc) * mult >> 32), with an unordered
 * `rdtsc` (7.5-8 ns on the bench VM) instead of the vDSO's call (17-18 ns there):
 *   - used only where the kernel's own clocksource is "tsc" and the CPU has an invariant TSC
 *     (CPUID 0x80000007 EDX[8]: the kernel's constant_tsc + nonstop_tsc), checked once at the
 *     first call; FASTFEED_CLOCK=realtime in the environment (read at that first call) forces
 *     the plain clock_gettime(CLOCK_REALTIME) everywhere, as does any other platform;
 *   - the anchor (tsc, ns) is a clock_gettime(CLOCK_REALTIME) reading bracketed by two ordered
 *     TSC reads no more than FF_TSC_WINDOW_NS apart (taken at their midpoint), re-taken once
 *     FF_TSC_ANCHOR_NS of TSC have passed since it, or when the TSC reads below it;
 *   - mult (ns per tick, 32.32 fixed point) is measured against CLOCK_MONOTONIC (read with
 *     the anchor, bracketed the same way) over the longest baseline seen, 1 ms to 2 s: the
 *     wall clock's rate, NTP's slewing included, without its steps -- a VM's time agent or
 *     NTP stepping CLOCK_REALTIME (seen on the bench VM: +500 us every 100 ms) must not bend
 *     the rate; a rate that moves by more than FF_TSC_STEP_PPM starts a new baseline;
 *   - the anchor is shared by the threads of a module through a seqlock (readers never wait:
 *     a reader that meets a re-anchor in progress reads clock_gettime instead).
 * Error bound, while CLOCK_REALTIME itself is not stepped: |ff_now_ns() - CLOCK_REALTIME| <=
 * FF_TSC_MAX_ERR_NS (1 us): the anchor's half window (125 ns) + the rate's error over one
 * anchor (<= 500 ppm of 1 ms once the baseline is past its first ms; ~0.1 ppm in steady
 * state) + 1 ns of rounding; measured by tests/c/test_clock.c against bracketing
 * clock_gettime reads over many re-anchors: typically tens of ns.  A step of CLOCK_REALTIME
 * (settimeofday, an NTP step, a VM agent's correction) shows in ff_now_ns() at the next
 * re-anchor, within 1 ms: until then readings differ from CLOCK_REALTIME by the step.
 * Within one anchor the readings of a thread never decrease; at a re-anchor a reading may be
 * up to the bound below the previous one (CLOCK_REALTIME makes no promise of monotony either).
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

static inline int64_t ff_realtime_ns(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    /* 100 ns ticks since 1601-01-01 -> ns since 1970-01-01 */
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (int64_t)(t - 116444736000000000ULL) * 100;
}

static inline int64_t ff_now_ns(void) { return ff_realtime_ns(); }

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

/* The exact reading: CLOCK_REALTIME through the vDSO (the anchor of the TSC clock below). */
static inline int64_t ff_realtime_ns(void)
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

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(FASTFEED_NO_TSC_CLOCK)
#  define FF_CLOCK_TSC 1
#  include <cpuid.h>
#  include <stdatomic.h>
#  include <stdio.h>
#  include <stdlib.h>
#  include <string.h>
#  include <x86intrin.h>

#  define FF_TSC_ANCHOR_NS 1000000LL        /* re-anchor after 1 ms of TSC */
#  define FF_TSC_WINDOW_NS 250LL            /* an anchor's two TSC reads at most this far apart */
#  define FF_TSC_STEP_PPM 500LL             /* a rate moving by more: a step of the wall clock */
#  define FF_TSC_MIN_BASE_NS 1000000LL      /* the rate is measured over >= 1 ms ... */
#  define FF_TSC_MAX_BASE_NS 2000000000LL   /* ... and <= 2 s of CLOCK_REALTIME */
#  define FF_TSC_MAX_ERR_NS 1000LL          /* the bound above (125 + 500 + 1 ns, rounded up) */

typedef struct {
    _Atomic uint64_t seq;   /* even: anchor consistent; odd: a re-anchor is being written */
    _Atomic uint64_t a_tsc; /* the anchor */
    _Atomic int64_t a_ns;
    _Atomic uint64_t mult;  /* ns per tick << 32; 0 until the first baseline */
    _Atomic uint64_t limit; /* ticks of FF_TSC_ANCHOR_NS; 0 (every call slow) until calibrated */
    _Atomic int mode;       /* 0: undecided; 1: TSC; -1: clock_gettime */
    /* the writer's (under an odd seq): the rate's baseline */
    uint64_t c_tsc;
    int64_t c_ns;           /* CLOCK_MONOTONIC at c_tsc; 0: none yet */
    int64_t mult_base;      /* the baseline (ns) mult was measured over; 0: accept the next */
} ff_tsc_clock_t;

/* One per module (each translation unit including this header): no shared symbol. */
static ff_tsc_clock_t ff_tsc_clock __attribute__((unused));

static inline uint64_t ff_tsc_ordered(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

/* Decide once whether the TSC may stand in for CLOCK_REALTIME here. */
static __attribute__((cold, noinline, unused)) int ff_tsc_decide(void)
{
    int mode = -1;
    const char *env = getenv("FASTFEED_CLOCK");
    unsigned a, b, c, d;
    if ((env == NULL || strcmp(env, "realtime") != 0) &&
        __get_cpuid(0x80000007u, &a, &b, &c, &d) && (d & (1u << 8))) {
        FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
        if (f) {
            char buf[32] = {0};
            if (fgets(buf, sizeof buf, f) && strcmp(buf, "tsc\n") == 0)
                mode = 1;
            fclose(f);
        }
    }
    atomic_store_explicit(&ff_tsc_clock.mode, mode, memory_order_relaxed);
    return mode;
}

/* The slow path: decide, calibrate, re-anchor (one thread at a time), or clock_gettime. */
static __attribute__((cold, noinline, unused)) int64_t ff_now_ns_slow(void)
{
    ff_tsc_clock_t *k = &ff_tsc_clock;
    int mode = atomic_load_explicit(&k->mode, memory_order_relaxed);
    if (mode == 0)
        mode = ff_tsc_decide();
    if (mode < 0)
        return ff_realtime_ns();
    uint64_t s = atomic_load_explicit(&k->seq, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong_explicit(&k->seq, &s, s + 1,
                                                            memory_order_acquire,
                                                            memory_order_relaxed))
        return ff_realtime_ns(); /* another thread is re-anchoring */
    atomic_thread_fence(memory_order_release); /* seq odd before any field below */
    uint64_t t0 = ff_tsc_ordered();
    int64_t ns = ff_realtime_ns();
    uint64_t t1 = ff_tsc_ordered();
    int64_t mono = ff_mono_ns();
    uint64_t t2 = ff_tsc_ordered();
    uint64_t tsc = t0 + (t1 - t0) / 2;  /* the anchor: CLOCK_REALTIME's reading */
    uint64_t tsm = t1 + (t2 - t1) / 2;  /* the rate's sample: CLOCK_MONOTONIC's reading */
    uint64_t m = atomic_load_explicit(&k->mult, memory_order_relaxed);
    /* the window in ticks: from the rate once known, else assuming a TSC of <= 10 GHz */
    uint64_t window = m ? ((uint64_t)FF_TSC_WINDOW_NS << 32) / m : (uint64_t)FF_TSC_WINDOW_NS * 10;
    if (t1 - t0 <= window && t2 - t1 <= window) {
        int64_t base = mono - k->c_ns;
        int back = base < 0 || tsm <= k->c_tsc;
        if (k->c_ns == 0 || back || base > FF_TSC_MAX_BASE_NS) {
            k->c_tsc = tsm; /* no baseline yet, the TSC went back, or too old */
            k->c_ns = mono;
            if (back)
                k->mult_base = 0;
        } else if (base >= FF_TSC_MIN_BASE_NS) {
            uint64_t nm = ((uint64_t)base << 32) / (tsm - k->c_tsc);
            uint64_t dev = nm > m ? nm - m : m - nm;
            if (m && k->mult_base && dev * 1000000u > m * (uint64_t)FF_TSC_STEP_PPM) {
                k->c_tsc = tsm; /* the rate jumped (a migrated VM?): a new baseline */
                k->c_ns = mono;
                k->mult_base = 0;
            } else if (nm && base > k->mult_base) {
                m = nm;
                k->mult_base = base;
                atomic_store_explicit(&k->mult, m, memory_order_relaxed);
                atomic_store_explicit(&k->limit, ((uint64_t)FF_TSC_ANCHOR_NS << 32) / m,
                                      memory_order_relaxed);
            }
            if (base >= FF_TSC_MAX_BASE_NS / 2) {
                k->c_tsc = tsm; /* the next rate from a fresh baseline of >= 0.5 s */
                k->c_ns = mono;
                k->mult_base = FF_TSC_MAX_BASE_NS / 4;
            }
        }
        atomic_store_explicit(&k->a_tsc, tsc, memory_order_relaxed);
        atomic_store_explicit(&k->a_ns, ns, memory_order_relaxed);
    }
    atomic_store_explicit(&k->seq, s + 2, memory_order_release);
    return ns;
}

static inline int64_t ff_now_ns(void)
{
    ff_tsc_clock_t *k = &ff_tsc_clock;
    uint64_t s = atomic_load_explicit(&k->seq, memory_order_acquire);
    uint64_t at = atomic_load_explicit(&k->a_tsc, memory_order_relaxed);
    int64_t an = atomic_load_explicit(&k->a_ns, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&k->mult, memory_order_relaxed);
    uint64_t lim = atomic_load_explicit(&k->limit, memory_order_relaxed);
    if (__builtin_expect(lim != 0, 1)) { /* 0: not calibrated, or not the TSC clock here */
        uint64_t d = __rdtsc() - at;     /* a TSC below the anchor wraps: >= lim */
        atomic_thread_fence(memory_order_acquire);
        if (__builtin_expect(d < lim && !(s & 1) &&
                             atomic_load_explicit(&k->seq, memory_order_relaxed) == s, 1))
            return an + (int64_t)((d * m) >> 32);
    }
    return ff_now_ns_slow();
}

#else /* no TSC clock: CLOCK_REALTIME as read */

static inline int64_t ff_now_ns(void) { return ff_realtime_ns(); }

#endif /* FF_CLOCK_TSC */

#endif /* POSIX */

#endif /* FASTFEED_CLOCK_H */
