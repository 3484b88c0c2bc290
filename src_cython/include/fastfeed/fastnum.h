/* fastfeed/fastnum.h -- the decoders' fast number paths (JSON text -> int64 / double).
 *
 * Header-only, C11, no Python.h.  Each function either returns exactly what numparse.h's
 * general parser (ff_parse_int64 / ff_parse_double) returns for the same text, or NULL: the
 * caller then takes the general parser, which decides every case and reports errors.  So the
 * results equal Python's int(text) / float(text) bit for bit either way.
 */
#ifndef FASTFEED_FASTNUM_H
#define FASTFEED_FASTNUM_H

#include <stdint.h>
#include <string.h>

#include "fastfeed/compat.h"
#include "fastfeed/numparse.h"
#include "fastfeed/swar.h"

/* "-?(0|[1-9][0-9]{0,18})" in int64 range, not followed by '.', 'e' or 'E': the int64
 * ff_parse_int64 would return.  Anything else (integral float spellings, out of range,
 * malformed) returns NULL and goes through ff_parse_int64. */
static FF_ALWAYS_INLINE const char *
ff_fast_int(const char *p, const char *end, int64_t *out)
{
    const char *q = p, *ds;
    uint64_t v = 0;
    int nd = 0, neg = 0;
    if (*q == '-') { neg = 1; q++; }
    ds = q;
    q = ff_swar_digits(q, end, &v, &nd);   /* 19 digits cannot wrap a uint64 */
    if (nd == 0 || nd > 19 || (nd > 1 && *ds == '0')) return NULL;
    if (q < end && (*q == '.' || (*q | 0x20) == 'e')) return NULL;
    if (FF_UNLIKELY(v > (uint64_t)INT64_MAX)) {
        if (!(neg && v == (uint64_t)INT64_MAX + 1u)) return NULL;
        *out = INT64_MIN;
        return q;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return q;
}

/* JSON numbers with at most 19 digits (leading zeros of the fraction included) and an
 * optional exponent of at most 4 digits: w * 10^q10 exactly, converted by Clinger's fast
 * path or by Eisel-Lemire (numparse.h), so the result equals float(text) bit for bit.
 * Anything else (more digits, undecided products, malformed) returns NULL and goes through
 * ff_parse_double, which decides every case and reports errors. */
static FF_ALWAYS_INLINE const char *
ff_fast_double(const char *p, const char *end, double *out)
{
    const char *q = p, *ds;
    uint64_t w = 0;
    int nd = 0, nf = 0, neg = 0;
    int64_t q10;
    double d;
    if (*q == '-') { neg = 1; q++; }
    ds = q;
    /* Prices: the integer part is short; a byte loop beats a SWAR step there (the
     * fraction, often 8+ digits, takes the SWAR path). */
    while (q < end && (unsigned)(*q - '0') < 10u) {
        w = w * 10 + (uint64_t)(*q - '0');
        q++;
        if (FF_UNLIKELY(q - ds >= 8)) { q = ff_swar_digits(q, end, &w, &nf); break; }
    }
    nd = (int)(q - ds);
    nf = 0;
    if (nd == 0 || (nd > 1 && *ds == '0')) return NULL;
    if (q < end && *q == '.') {
        const char *fs = ++q;
        int nz = 0;
        if (w == 0) {   /* "0.000ddd": leading zeros count as exponent, not as digits */
            while (q < end && *q == '0') q++;
            nz = (int)(q - fs);
        }
        q = ff_swar_digits(q, end, &w, &nf);
        if (nf + nz == 0) return NULL;
        q10 = -(int64_t)(nf + nz);
    } else {
        q10 = 0;
    }
    if (nd + nf > 19) return NULL;
    if (q < end && (*q | 0x20) == 'e') {
        int xneg = 0, xn = 0;
        int64_t x = 0;
        q++;
        if (q < end && (*q == '-' || *q == '+')) { xneg = (*q == '-'); q++; }
        while (q < end && (unsigned)(*q - '0') < 10u && xn < 5) {
            x = x * 10 + (*q - '0');
            q++;
            xn++;
        }
        if (xn == 0 || xn == 5) return NULL;
        q10 += xneg ? -x : x;
    }
    if (w == 0) {
        *out = neg ? -0.0 : 0.0;
        return q;
    }
#if FF_NUM_FAST_PATH
    if (w <= (1ULL << 53) && q10 >= -22 && q10 <= 22) {
        d = (double)w;
        if (q10 < 0) d /= ff__pow10_tab[-q10];
        else d *= ff__pow10_tab[q10];
        *out = neg ? -d : d;
        return q;
    }
#endif
    if (q10 >= FF_POW5_QMIN && q10 <= FF_POW5_QMAX && ff__eisel_lemire(w, q10, &d)) {
        *out = neg ? -d : d;
        return q;
    }
    return NULL;
}

#if FF_SWAR
/* Shared by the decoders' short-number lanes (little-endian words, 8 or 16 readable bytes). */

/* SWAR digits: the number of leading ASCII digits of the 8 bytes in w (0..8). */
static FF_ALWAYS_INLINE unsigned ff_ndigits8(uint64_t w)
{
    /* a byte below '0' gets its high bit from the subtraction, one above '9' from the
     * addition (or from the subtraction when >= 0xBA); digit bytes get neither.  Borrows and
     * carries only disturb bytes above the first non-digit, which the ctz ignores. */
    uint64_t t = ((w - 0x3030303030303030ULL) | (w + 0x4646464646464646ULL)) &
                 0x8080808080808080ULL;
    return t ? (unsigned)__builtin_ctzll(t) >> 3 : 8u;
}

/* Value of the first n (1..8) digit bytes of w (first digit in the lowest byte). */
static FF_ALWAYS_INLINE uint64_t ff_digits_value(uint64_t w, unsigned n)
{
    w <<= 8 * (8 - n); /* low bytes become 0 = leading zeros */
    w = (w & 0x0F0F0F0F0F0F0F0FULL) * 2561 >> 8;
    w = (w & 0x00FF00FF00FF00FFULL) * 6553601 >> 16;
    return (w & 0x0000FFFF0000FFFFULL) * 42949672960001ULL >> 32;
}

/* d{1,7}(.d{1,7})? with at most 15 digits and no exponent at v: the digit value w and 10^nf
 * are exact doubles and one IEEE division is correctly rounded (Clinger), i.e. the value
 * float(text) gives -- the arithmetic of polygon_scan.h's ff_pg_number_f.  *isint = 1 for the integer spelling.
 * Needs 16 readable bytes. */
static FF_ALWAYS_INLINE const char *ff_f64_short(const char *v, double *out, int *isint)
{
    uint64_t w, x;
    unsigned n;
    if (!FF_NUM_FAST_PATH)
        return NULL;
    memcpy(&w, v, 8);
    {
        /* d+.d+ within these 8 bytes: one exact per-byte digit mask (no borrows between
         * bytes), the two digit runs joined into one word, one SWAR conversion */
        uint64_t y = w ^ 0x3030303030303030ULL;
        uint64_t t = (((y & 0x7F7F7F7F7F7F7F7FULL) + 0x7676767676767676ULL) | y) &
                     0x8080808080808080ULL;
        unsigned a = (unsigned)__builtin_ctzll(t | (1ULL << 63)) >> 3;
        uint64_t t2 = t & (t - 1);
        unsigned m = (unsigned)__builtin_ctzll(t2 | (1ULL << 63)) >> 3;
        if (FF_LIKELY(t2 != 0 && a >= 1 && (uint8_t)(w >> (8 * a)) == '.' && m > a + 1 &&
                      ((uint8_t)w != '0' || a == 1))) {
            uint8_t c2 = (uint8_t)(w >> (8 * m));
            if (FF_LIKELY(c2 != 'e' && c2 != 'E')) {
                unsigned nf = m - a - 1;
                uint64_t lo = w & ((1ULL << (8 * a)) - 1);
                uint64_t hi = (w >> (8 * (a + 1))) & ((1ULL << (8 * nf)) - 1);
                x = ff_digits_value(lo | (hi << (8 * a)), m - 1);
                *out = (double)x / ff__pow10_tab[nf];
                *isint = 0;
                return v + m;
            }
        }
    }
    n = ff_ndigits8(w);
    if (FF_LIKELY(n >= 1 && n < 8 && ((uint8_t)w != '0' || n == 1))) {
        uint8_t c = (uint8_t)(w >> (8 * n));
        x = ff_digits_value(w, n);
        if (c == '.') {
            uint64_t w2;
            unsigned nf;
            memcpy(&w2, v + n + 1, 8);
            nf = ff_ndigits8(w2);
            if (FF_LIKELY(nf >= 1 && nf < 8 && n + nf <= 15)) {
                uint8_t c2 = (uint8_t)(w2 >> (8 * nf));
                if (FF_LIKELY(c2 != 'e' && c2 != 'E')) {
                    x = x * ff__pow10_u64[nf] + ff_digits_value(w2, nf);
                    *out = (double)x / ff__pow10_tab[nf];
                    *isint = 0;
                    return v + n + 1 + nf;
                }
            }
        } else if (FF_LIKELY(c != 'e' && c != 'E')) {
            *out = (double)(int64_t)x;
            *isint = 1;
            return v + n;
        }
    }
    return NULL;
}

#endif

#endif /* FASTFEED_FASTNUM_H */
