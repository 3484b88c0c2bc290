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

#endif /* FASTFEED_FASTNUM_H */
