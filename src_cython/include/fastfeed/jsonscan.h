/* fastfeed/jsonscan.h -- primitives for hand-written JSON scanners.
 *
 * Header-only, C11, no Python.h, everything `static inline`.  Every function takes the end of
 * the buffer and never reads at or past it; none needs a NUL terminator.  A function that
 * fails returns NULL (or -1) and leaves the input untouched.
 *
 * Strings: ff_scan_string validates the JSON escape syntax (\" \\ \/ \b \f \n \r \t \uXXXX)
 * and rejects raw control characters (< 0x20), but passes other bytes through without UTF-8
 * validation; callers that build Python str objects decode with PyUnicode_DecodeUTF8, which
 * validates.  ff_unescape additionally requires \u surrogates to be properly paired (a lone
 * surrogate cannot be encoded as UTF-8; it is an error here, unlike Python's json module).
 */
#ifndef FASTFEED_JSONSCAN_H
#define FASTFEED_JSONSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastfeed/compat.h"

#ifndef FF_JSON_MAX_DEPTH
#  define FF_JSON_MAX_DEPTH 64 /* nesting limit of ff_skip_value (at most 64) */
#endif
#if FF_JSON_MAX_DEPTH > 64 || FF_JSON_MAX_DEPTH < 1
#  error "FF_JSON_MAX_DEPTH must be in 1..64"
#endif

/* Skip JSON whitespace (space, tab, LF, CR).  Returns the first other byte, or end. */
static inline const char *
ff_skip_ws(const char *p, const char *end)
{
    while (p < end) {
        char c = *p;
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            break;
        p++;
    }
    return p;
}

/* If [p,end) starts with lit[0..n), return p+n, else NULL.  For true / false / null. */
static inline const char *
ff_match_lit(const char *p, const char *end, const char *lit, size_t n)
{
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

static inline int
ff__hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* fold to lower case */
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Four hex digits at p (caller checked there are 4 bytes) -> 0..0xFFFF, or -1. */
static inline int32_t
ff__hex4(const char *p)
{
    int a = ff__hexval((unsigned char)p[0]), b = ff__hexval((unsigned char)p[1]);
    int c = ff__hexval((unsigned char)p[2]), d = ff__hexval((unsigned char)p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (int32_t)((a << 12) | (b << 8) | (c << 4) | d);
}

/* SWAR: nonzero iff some byte of v is '"', '\\' or < 0x20.  The classic "has zero byte" test
 * is exact as a boolean (false positives only occur above a true hit), which is all we use. */
#define FF__ONES  0x0101010101010101ULL
#define FF__HIGHS 0x8080808080808080ULL
static inline uint64_t
ff__str_special(uint64_t v)
{
    uint64_t q = v ^ (FF__ONES * 0x22u); /* '"'  -> 0 */
    uint64_t b = v ^ (FF__ONES * 0x5Cu); /* '\\' -> 0 */
    uint64_t hq = (q - FF__ONES) & ~q;
    uint64_t hb = (b - FF__ONES) & ~b;
    uint64_t hc = (v - FF__ONES * 0x20u) & ~v; /* bytes < 0x20 */
    return (hq | hb | hc) & FF__HIGHS;
}

/* String at p (must point at '"').  Sets *s,*n to the raw content between the quotes and
 * *esc = 1 if it contains a backslash (else 0).  Returns the pointer past the closing quote,
 * or NULL if unterminated, on a raw control character or on an invalid escape. */
static inline const char *
ff_scan_string(const char *p, const char *end, const char **s, size_t *n, int *esc)
{
    const char *q;
    int has_esc = 0;
    if (FF_UNLIKELY(p >= end || *p != '"'))
        return NULL;
    q = ++p;
    for (;;) {
        while (end - q >= 8) {
            uint64_t v;
            memcpy(&v, q, 8);
            if (ff__str_special(v))
                break;
            q += 8;
        }
        /* Byte loop: at most 8 bytes before a special byte (or the tail). */
        for (;;) {
            unsigned char c;
            if (FF_UNLIKELY(q >= end))
                return NULL; /* unterminated */
            c = (unsigned char)*q;
            if (c == '"') {
                *s = p;
                *n = (size_t)(q - p);
                *esc = has_esc;
                return q + 1;
            }
            if (c == '\\') {
                has_esc = 1;
                if (FF_UNLIKELY(end - q < 2))
                    return NULL;
                switch (q[1]) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                    q += 2;
                    break;
                case 'u':
                    if (FF_UNLIKELY(end - q < 6 || ff__hex4(q + 2) < 0))
                        return NULL;
                    q += 6;
                    break;
                default:
                    return NULL;
                }
                break; /* back to the SWAR loop */
            }
            if (FF_UNLIKELY(c < 0x20))
                return NULL;
            q++;
            if (((uintptr_t)(q - p) & 7u) == 0)
                break; /* resume word-at-a-time scanning */
        }
    }
}

static inline size_t
ff__put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the JSON escapes of raw string content [s, s+n) into dst (capacity cap) as UTF-8.
 * Returns the decoded length, or -1 on an invalid escape, a lone surrogate or if cap is too
 * small.  The output is never longer than the input, so cap >= n always suffices.
 * Bytes other than escapes are copied unchanged. */
static inline ptrdiff_t
ff_unescape(const char *s, size_t n, char *dst, size_t cap)
{
    const char *p = s, *end = s + n;
    size_t o = 0;
    while (p < end) {
        const char *bs = (const char *)memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        if (run) {
            if (FF_UNLIKELY(run > cap - o))
                return -1;
            memcpy(dst + o, p, run);
            o += run;
            p += run;
        }
        if (!bs)
            break;
        /* p == bs, at a backslash */
        if (FF_UNLIKELY(end - p < 2))
            return -1;
        {
            char c = p[1];
            char simple = 0;
            switch (c) {
            case '"': simple = '"'; break;
            case '\\': simple = '\\'; break;
            case '/': simple = '/'; break;
            case 'b': simple = '\b'; break;
            case 'f': simple = '\f'; break;
            case 'n': simple = '\n'; break;
            case 'r': simple = '\r'; break;
            case 't': simple = '\t'; break;
            case 'u': break;
            default: return -1;
            }
            if (simple) {
                if (FF_UNLIKELY(o >= cap))
                    return -1;
                dst[o++] = simple;
                p += 2;
                continue;
            }
        }
        {
            int32_t u;
            uint32_t cp;
            size_t need;
            if (FF_UNLIKELY(end - p < 6 || (u = ff__hex4(p + 2)) < 0))
                return -1;
            p += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                int32_t lo;
                if (FF_UNLIKELY(end - p < 6 || p[0] != '\\' || p[1] != 'u'))
                    return -1;
                lo = ff__hex4(p + 2);
                if (FF_UNLIKELY(lo < 0xDC00 || lo > 0xDFFF))
                    return -1;
                p += 6;
                cp = 0x10000u + (((uint32_t)u - 0xD800u) << 10) + ((uint32_t)lo - 0xDC00u);
            } else if (FF_UNLIKELY(u >= 0xDC00 && u <= 0xDFFF)) {
                return -1;
            } else {
                cp = (uint32_t)u;
            }
            need = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            if (FF_UNLIKELY(need > cap - o))
                return -1;
            o += ff__put_utf8(dst + o, cp);
        }
    }
    return (ptrdiff_t)o;
}

/* Validate and skip a JSON number (no value computed).  NULL if malformed. */
static inline const char *
ff_skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (FF_UNLIKELY(p >= end))
        return NULL;
    if (*p == '0') {
        p++;
        if (p < end && (unsigned)(*p - '0') < 10u)
            return NULL; /* leading zero */
    } else if ((unsigned)(*p - '0') < 10u) {
        do
            p++;
        while (p < end && (unsigned)(*p - '0') < 10u);
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (FF_UNLIKELY(p >= end || (unsigned)(*p - '0') >= 10u))
            return NULL;
        do
            p++;
        while (p < end && (unsigned)(*p - '0') < 10u);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (FF_UNLIKELY(p >= end || (unsigned)(*p - '0') >= 10u))
            return NULL;
        do
            p++;
        while (p < end && (unsigned)(*p - '0') < 10u);
    }
    return p;
}

/* Skip one JSON value (object / array / string / number / true / false / null) after optional
 * leading whitespace.  Containers may nest FF_JSON_MAX_DEPTH (64) deep.  Returns the pointer
 * just past the value (trailing whitespace is not consumed), or NULL if malformed, truncated
 * or too deep.  Iterative: a 64-bit stack records object (1) / array (0) per level. */
static inline const char *
ff_skip_value(const char *p, const char *end)
{
    uint64_t kinds = 0;
    int depth = 0;
    const char *s;
    size_t n;
    int esc;

value:
    p = ff_skip_ws(p, end);
    if (FF_UNLIKELY(p >= end))
        return NULL;
    switch (*p) {
    case '{':
        if (FF_UNLIKELY(depth >= FF_JSON_MAX_DEPTH))
            return NULL;
        depth++;
        kinds = (kinds << 1) | 1u;
        p = ff_skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            p++;
            depth--;
            kinds >>= 1;
            goto after;
        }
        goto key;
    case '[':
        if (FF_UNLIKELY(depth >= FF_JSON_MAX_DEPTH))
            return NULL;
        depth++;
        kinds <<= 1;
        p = ff_skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            depth--;
            kinds >>= 1;
            goto after;
        }
        goto value;
    case '"':
        p = ff_scan_string(p, end, &s, &n, &esc);
        break;
    case 't':
        p = ff_match_lit(p, end, "true", 4);
        break;
    case 'f':
        p = ff_match_lit(p, end, "false", 5);
        break;
    case 'n':
        p = ff_match_lit(p, end, "null", 4);
        break;
    default:
        p = ff_skip_number(p, end);
        break;
    }
    if (FF_UNLIKELY(p == NULL))
        return NULL;

after:
    if (depth == 0)
        return p;
    p = ff_skip_ws(p, end);
    if (FF_UNLIKELY(p >= end))
        return NULL;
    if (*p == ',') {
        p++;
        if (kinds & 1u)
            goto key;
        goto value;
    }
    if (*p == ((kinds & 1u) ? '}' : ']')) {
        p++;
        depth--;
        kinds >>= 1;
        goto after;
    }
    return NULL;

key:
    p = ff_skip_ws(p, end);
    if (FF_UNLIKELY(p >= end || *p != '"'))
        return NULL;
    p = ff_scan_string(p, end, &s, &n, &esc);
    if (FF_UNLIKELY(p == NULL))
        return NULL;
    p = ff_skip_ws(p, end);
    if (FF_UNLIKELY(p >= end || *p != ':'))
        return NULL;
    p++;
    goto value;
}

#endif /* FASTFEED_JSONSCAN_H */
