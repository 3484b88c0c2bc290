/* fastfeed/numparse.h -- JSON number parsing, bit-exact with Python's float() / int().
 *
 * Header-only, C11, no Python.h; every function is `static` (the hot ones `static inline`), so
 * a Cython module uses it with `cdef extern from "fastfeed/numparse.h"` and links nothing.
 *
 * Grammar (RFC 8259):  '-'? ( '0' | [1-9][0-9]* ) ( '.' [0-9]+ )? ( [eE] [+-]? [0-9]+ )?
 * ('E' is already JSON; Java's Double.toString output such as "1.3743299E7" is accepted.)
 * Rejected: leading '+', leading zeros ("01", "-01"), "1.", ".5", "1e", "-", NaN/Infinity
 * (those arrive as JSON strings and are the caller's business).
 *
 * How a double is produced
 * ------------------------
 * 1. One pass accumulates up to 19 significant decimal digits into a uint64 mantissa w and a
 *    decimal exponent e (value = w * 10^e when no nonzero digit was dropped).
 * 2. Clinger's fast path: if w < 2^53 and |e| <= 22, both w and 10^|e| are exact doubles, so a
 *    single IEEE multiply or divide gives the correctly rounded result.  Extension: for
 *    22 < e <= 22+15, w*10^(e-22) is tried in integer arithmetic; if still < 2^53 it is exact.
 *    This needs FLT_EVAL_METHOD == 0 (SSE2 / any 64-bit target); otherwise the fast path is
 *    compiled out and everything goes through step 3.
 * 3. Fallback (rare: > 19 significant digits, w >= 2^53, |e| > 22, big integers): the digits
 *    are rewritten into a canonical ASCII form "DDDDeN" -- digits only, no decimal point, no
 *    sign, leading/trailing zeros removed -- in a bounded buffer (stack, heap beyond 256
 *    bytes) and handed to strtod().  Because the canonical form has no radix character, the
 *    result does not depend on the C locale (a "," LC_NUMERIC cannot break it), and strtod_l
 *    / newlocale are not needed.  Values whose decimal exponent is far outside the double
 *    range are resolved without strtod (inf or 0).  glibc's strtod (and every libc fastfeed
 *    targets) is correctly rounded in round-to-nearest, as is CPython's float(), so the two
 *    agree bit for bit, including overflow to inf ("1e400") and underflow to 0 or subnormals.
 *
 * Integers never go through a double: an integer literal of up to 19 digits is accumulated
 * exactly and range-checked against int64 (INT64_MIN included).
 */
#ifndef FASTFEED_NUMPARSE_H
#define FASTFEED_NUMPARSE_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastfeed/compat.h"

enum { FF_NUM_ERR = 0, FF_NUM_INT = 1, FF_NUM_FLOAT = 2, FF_NUM_BIGINT = 3 };

/* kind: one of FF_NUM_*.
 * i:    INT: the value.  FLOAT: the value if it is integral and fits int64, else 0.
 *       BIGINT: 0 (undefined by contract).
 * d:    always the correctly rounded double, equal to Python's float(text) bit for bit
 *       (so "-0" gives i == 0 and d == -0.0). */
typedef struct {
    int kind;
    int64_t i;
    double d;
} ff_num;

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#  define FF_NUM_FAST_PATH 1
#else
#  define FF_NUM_FAST_PATH 0
#endif

#define FF__IS_DIGIT(c) ((unsigned)((unsigned char)(c) - '0') < 10u)
/* Explicit exponents are saturated here; anything this large is inf or 0 anyway. */
#define FF__EXP_SAT 100000000

static const double ff__pow10_tab[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static const uint64_t ff__pow10_u64[20] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

/* floor(2^63 / 10^e): w * 10^e <= 2^63 iff w <= this (no division on the hot path). */
#define FF__T63 9223372036854775808ULL
static const uint64_t ff__two63_div_pow10[19] = {
    FF__T63 / 1ULL, FF__T63 / 10ULL, FF__T63 / 100ULL, FF__T63 / 1000ULL, FF__T63 / 10000ULL,
    FF__T63 / 100000ULL, FF__T63 / 1000000ULL, FF__T63 / 10000000ULL, FF__T63 / 100000000ULL,
    FF__T63 / 1000000000ULL, FF__T63 / 10000000000ULL, FF__T63 / 100000000000ULL,
    FF__T63 / 1000000000000ULL, FF__T63 / 10000000000000ULL, FF__T63 / 100000000000000ULL,
    FF__T63 / 1000000000000000ULL, FF__T63 / 10000000000000000ULL,
    FF__T63 / 100000000000000000ULL, FF__T63 / 1000000000000000000ULL,
};
#undef FF__T63

/* Slow path: correctly rounded double of the digits in [ib,ie) ++ [fb,fe) times 10^(exp10 -
 * (fe-fb)), sign applied by the caller.  Returns 0 on allocation failure, 1 on success. */
static FF_NOINLINE FF_COLD int
ff__slow_double(const char *ib, const char *ie, const char *fb, const char *fe,
                int64_t exp10, double *out)
{
    char stackbuf[256];
    char *buf = stackbuf;
    size_t ndig, cap;
    const char *p;
    int64_t e;
    size_t n = 0;

    /* Skip leading zeros (in the integer part and, if it is all zeros, the fraction). */
    while (ib < ie && *ib == '0')
        ib++;
    e = exp10 - (int64_t)(fe - fb);
    if (ib == ie)
        while (fb < fe && *fb == '0')
            fb++;
    /* Trailing zeros: drop from the fraction end first, then the integer end. */
    while (fe > fb && fe[-1] == '0') {
        fe--;
        e++;
    }
    if (fe == fb) {
        while (ie > ib && ie[-1] == '0') {
            ie--;
            e++;
        }
    }
    ndig = (size_t)(ie - ib) + (size_t)(fe - fb);
    if (ndig == 0) {
        *out = 0.0;
        return 1;
    }
    /* value = 0.D1D2...Dn * 10^(e + ndig); it lies in [10^(e+ndig-1), 10^(e+ndig)). */
    if (e + (int64_t)ndig > 310) { /* >= 1e309 > DBL_MAX */
        *out = HUGE_VAL;
        return 1;
    }
    if (e + (int64_t)ndig < -325) { /* < 1e-325 < half the smallest subnormal (2.47e-324) */
        *out = 0.0;
        return 1;
    }
    cap = ndig + 32;
    if (cap > sizeof stackbuf) {
        buf = (char *)malloc(cap);
        if (buf == NULL)
            return 0;
    }
    for (p = ib; p < ie; p++)
        buf[n++] = *p;
    for (p = fb; p < fe; p++)
        buf[n++] = *p;
    buf[n++] = 'e';
    {
        /* e is bounded by the checks above: |e| <= ndig + 325 + FF__EXP_SAT-ish. */
        char tmp[24];
        size_t k = 0;
        uint64_t ue;
        if (e < 0) {
            buf[n++] = '-';
            ue = (uint64_t)(-e);
        } else {
            ue = (uint64_t)e;
        }
        do {
            tmp[k++] = (char)('0' + (int)(ue % 10));
            ue /= 10;
        } while (ue);
        while (k)
            buf[n++] = tmp[--k];
    }
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    if (buf != stackbuf)
        free(buf);
    return 1;
}

/* Core scanner.  *integral is set to 1 when the exact decimal value is an integer that fits
 * int64 (then out->i holds it), else 0. */
static inline const char *
ff__parse_number(const char *p, const char *end, ff_num *out, int *integral)
{
    const char *ib, *ie, *fb = NULL, *fe = NULL;
    uint64_t w = 0;
    int nsig = 0;          /* significant digits accumulated into w (<= 19) */
    int64_t drop_int = 0;  /* integer-part digits dropped after 19 significant ones */
    int64_t frac_used = 0; /* fraction digits that went into w (or were leading zeros) */
    int inexact = 0;       /* a dropped digit was nonzero */
    int neg = 0, has_frac = 0, has_exp = 0;
    int64_t xe = 0, e;

    out->kind = FF_NUM_ERR;
    out->i = 0;
    out->d = 0.0;
    *integral = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (FF_UNLIKELY(p >= end))
        return NULL;
    ib = p;
    if (*p == '0') {
        p++;
        if (p < end && FF__IS_DIGIT(*p))
            return NULL; /* leading zero */
    } else if (FF__IS_DIGIT(*p)) {
        /* First up to 19 digits can't overflow uint64. */
        do {
            unsigned dgt = (unsigned)(*p - '0');
            if (FF_LIKELY(nsig < 19)) {
                w = w * 10 + dgt;
                nsig++;
            } else {
                drop_int++;
                inexact |= (dgt != 0);
            }
            p++;
        } while (p < end && FF__IS_DIGIT(*p));
    } else {
        return NULL;
    }
    ie = p;

    if (p < end && *p == '.') {
        p++;
        fb = p;
        if (FF_UNLIKELY(p >= end || !FF__IS_DIGIT(*p)))
            return NULL;
        do {
            unsigned dgt = (unsigned)(*p - '0');
            if (nsig < 19) {
                if (w != 0 || dgt != 0) {
                    w = w * 10 + dgt;
                    nsig++;
                }
                frac_used++;
            } else {
                inexact |= (dgt != 0);
            }
            p++;
        } while (p < end && FF__IS_DIGIT(*p));
        fe = p;
        has_frac = 1;
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        int xneg = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            xneg = (*p == '-');
            p++;
        }
        if (FF_UNLIKELY(p >= end || !FF__IS_DIGIT(*p)))
            return NULL;
        do {
            if (xe < FF__EXP_SAT)
                xe = xe * 10 + (*p - '0');
            p++;
        } while (p < end && FF__IS_DIGIT(*p));
        if (xneg)
            xe = -xe;
        has_exp = 1;
    }

    if (!has_frac && !has_exp) {
        /* Integer literal. */
        if (FF_LIKELY(drop_int == 0)) {
            if (w <= (uint64_t)INT64_MAX) {
                out->kind = FF_NUM_INT;
                out->i = neg ? -(int64_t)w : (int64_t)w;
                out->d = (double)out->i;
                if (neg && w == 0)
                    out->d = -0.0;
                *integral = 1;
                return p;
            }
            if (neg && w == (uint64_t)INT64_MAX + 1u) {
                out->kind = FF_NUM_INT;
                out->i = INT64_MIN;
                out->d = -9223372036854775808.0;
                *integral = 1;
                return p;
            }
        }
        out->kind = FF_NUM_BIGINT;
        if (!ff__slow_double(ib, ie, ie, ie, 0, &out->d))
            return NULL;
        if (neg)
            out->d = -out->d;
        return p;
    }

    /* Float literal: value = w * 10^e (exactly, unless `inexact`). */
    out->kind = FF_NUM_FLOAT;
    e = xe + drop_int - frac_used;
    if (w == 0) {
        /* Only zeros were seen (a dropped digit can only follow a nonzero one). */
        out->d = neg ? -0.0 : 0.0;
        out->i = 0;
        *integral = 1;
        return p;
    }
#if FF_NUM_FAST_PATH
    if (FF_LIKELY(!inexact && w <= (1ULL << 53))) {
        double d = (double)w;
        int ok = 1;
        if (e >= 0 && e <= 22) {
            d *= ff__pow10_tab[e];
        } else if (e < 0 && e >= -22) {
            d /= ff__pow10_tab[-e];
        } else if (e > 22 && e <= 22 + 15 && w <= (1ULL << 53) / ff__pow10_u64[e - 22]) {
            d = (double)(w * ff__pow10_u64[e - 22]) * 1e22;
        } else {
            ok = 0;
        }
        if (ok) {
            out->d = neg ? -d : d;
            goto integer_check;
        }
    }
#endif
    if (!ff__slow_double(ib, ie, fb ? fb : ie, fe ? fe : ie, xe, &out->d))
        return NULL;
    if (neg)
        out->d = -out->d;

integer_check:
    /* Integral and in int64?  Cheap necessary condition on the double first (no libm call):
     * an exact integer in [-2^63, 2^63) rounds to an integral double in [-2^63, 2^63], and
     * (+2^63 itself is integral but cannot be converted to int64_t, hence tested apart). */
    if (!inexact && (out->d == 9223372036854775808.0 ||
                     (out->d >= -9223372036854775808.0 && out->d < 9223372036854775808.0 &&
                      (double)(int64_t)out->d == out->d))) {
        while (e < 0 && w % 10 == 0) {
            w /= 10;
            e++;
        }
        if (e >= 0 && e <= 18 && w <= ff__two63_div_pow10[e]) { /* w * 10^e <= 2^63 */
            uint64_t v = w * ff__pow10_u64[e];
            if (v <= (uint64_t)INT64_MAX) {
                out->i = neg ? -(int64_t)v : (int64_t)v;
                *integral = 1;
            } else if (neg && v == (uint64_t)INT64_MAX + 1u) {
                out->i = INT64_MIN;
                *integral = 1;
            }
        }
    }
    return p;
}

/* Parse a JSON number at p (p < end).  Returns the pointer just past it, or NULL on
 * malformed input (out->kind is then FF_NUM_ERR).  See ff_num for the result.  A digit
 * right after a leading '0' is malformed; any other trailing byte is left to the caller. */
static inline const char *
ff_parse_number(const char *p, const char *end, ff_num *out)
{
    int integral;
    const char *r = ff__parse_number(p, end, out, &integral);
    if (FF_UNLIKELY(r == NULL))
        out->kind = FF_NUM_ERR;
    return r;
}

/* Parse an int64.  Integral float spellings ("100.0", "1.0E2", "-0.0") give that integer.
 * Returns NULL on malformed, non-integral or out-of-range input. */
static inline const char *
ff_parse_int64(const char *p, const char *end, int64_t *out)
{
    /* Fast path: plain integer of up to 18 digits (cannot overflow). */
    const char *q = p;
    int neg = 0;
    if (q < end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q < end && FF__IS_DIGIT(*q) && *q != '0') {
        const char *lim = (end - q > 18) ? q + 18 : end;
        int64_t v = 0;
        do {
            v = v * 10 + (*q - '0');
            q++;
        } while (q < lim && FF__IS_DIGIT(*q));
        if (q >= end || (!FF__IS_DIGIT(*q) && *q != '.' && *q != 'e' && *q != 'E')) {
            *out = neg ? -v : v;
            return q;
        }
    }
    {
        ff_num n;
        int integral;
        const char *r = ff__parse_number(p, end, &n, &integral);
        if (r == NULL || !integral)
            return NULL;
        *out = n.i;
        return r;
    }
}

/* Parse a double (any JSON number, integers included), equal to Python's float(text). */
static inline const char *
ff_parse_double(const char *p, const char *end, double *out)
{
    ff_num n;
    int integral;
    const char *r = ff__parse_number(p, end, &n, &integral);
    if (r != NULL)
        *out = n.d;
    return r;
}

#endif /* FASTFEED_NUMPARSE_H */
