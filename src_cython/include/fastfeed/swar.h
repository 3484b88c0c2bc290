/* fastfeed/swar.h -- SWAR (8 bytes per step) scanning primitives shared by the decoders.
 *
 * Header-only, C11, no Python.h.  FF_SWAR is 1 on little-endian GCC/clang (the word tricks
 * below read bytes in memory order from the low end of a uint64_t); every user keeps a plain
 * byte loop for FF_SWAR == 0 and for the last < 8 readable bytes.
 */
#ifndef FASTFEED_SWAR_H
#define FASTFEED_SWAR_H

#include <stdint.h>
#include <string.h>

#include "fastfeed/compat.h"
#include "fastfeed/numparse.h"   /* ff__pow10_u64 */

#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#  define FF_SWAR 1
#else
#  define FF_SWAR 0
#endif

#if FF_SWAR
/* x holds 8 decimal digit values (0..9), the first (most significant) in the low byte:
 * their value as one number.  Pairs, then quads, then the eight; no lane ever carries
 * (99, 9999, 99999999 fit their 8-, 16-, 32-bit lanes). */
static FF_ALWAYS_INLINE uint64_t ff_swar8(uint64_t x)
{
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFULL;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFULL;
    return (x * 10000 + (x >> 32)) & 0xFFFFFFFFULL;
}

/* High bit of every byte of v that ends or interrupts a plain JSON string: '"', a
 * backslash, or a control byte (< 0x20).  Exact for the lowest flagged byte (borrows only
 * reach bytes above a true match), which is the only one callers use. */
static FF_ALWAYS_INLINE uint64_t ff_swar_str_stop(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t a = v ^ (ones * 0x22u), b = v ^ (ones * 0x5Cu);
    return (((a - ones) & ~a) | ((b - ones) & ~b) | ((v - ones * 0x20u) & ~v)) &
           0x8080808080808080ULL;
}
#endif

/* Append the run of decimal digits at q to *w (w = w * 10^k + run) and add its length k to
 * *nd; returns the first byte after the run.  Eight bytes at a time while eight are
 * readable: a run of k < 8 digits is converted in the same step by shifting the other
 * bytes out.  *w is only meaningful while the total stays <= 19 digits (callers check). */
static FF_ALWAYS_INLINE const char *
ff_swar_digits(const char *q, const char *end, uint64_t *w, int *nd)
{
    uint64_t v = *w;
    int n = *nd;
#if FF_SWAR
    while (end - q >= 8) {
        uint64_t c, x, bad;
        memcpy(&c, q, 8);
        x = c ^ 0x3030303030303030ULL;   /* digit bytes -> 0..9 */
        /* high bit of each byte that is not a digit (>= 10 after the xor); carry-free */
        bad = (((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
        if (bad == 0) {
            v = v * 100000000ULL + ff_swar8(x);
            n += 8;
            q += 8;
            continue;
        }
        {
            int k = __builtin_ctzll(bad) >> 3;   /* leading digit bytes, 0..7 */
            if (k) {
                v = v * ff__pow10_u64[k] + ff_swar8(x << (8 * (8 - k)));
                n += k;
                q += k;
            }
        }
        *w = v;
        *nd = n;
        return q;
    }
#endif
    while (q < end && (unsigned)(*q - '0') < 10u) {
        v = v * 10 + (uint64_t)(*q - '0');
        n++;
        q++;
    }
    *w = v;
    *nd = n;
    return q;
}

#endif /* FASTFEED_SWAR_H */
