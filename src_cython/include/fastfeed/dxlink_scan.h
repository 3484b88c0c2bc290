/* fastfeed/dxlink_scan.h -- the DXLink FEED_DATA decoder (bytes -> records in rings).
 *
 * Header-only, C11, no Python.h; compiled into the `dxlink` Cython module and, by CMake, into
 * the C tests and the fuzz target.  One pass over one whole DXLink message: the envelope keys
 * are scanned in place; when `type` is FEED_DATA the `data` array is walked element by element.
 * A `"<Type>", [values...]` pair (COMPACT) is decoded with the field table of (channel, type);
 * an object element is a FULL event (keys looked up by name).  Each event starts as a copy of
 * its type's template (NaN doubles, zeros), so slots the server did not send keep the template
 * value.  Numbers: fastnum.h, then numparse.h (bit-exact with Python's float()/int()).  Strings
 * are interned through the owner's callback, with a direct-mapped cache in front.
 *
 * The owner (dxlink.pyx, or a C test) fills an ff_dxctx: rings, templates, record sizes, type
 * names, default and FULL field tables, the intern callback; then calls ff_dx_message() once
 * per message.  It returns -2 for a message that is not FEED_DATA (the owner parses those),
 * else the number of events published; c->err != 0 when something was malformed (the first
 * problem: code, record type, field, byte offset).
 */
#ifndef FASTFEED_DXLINK_SCAN_H
#define FASTFEED_DXLINK_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastfeed/compat.h"
#include "fastfeed/numparse.h"
#include "fastfeed/jsonscan.h"
#include "fastfeed/ring.h"
#include "fastfeed/swar.h"
#include "fastfeed/fastnum.h"

#include "fastfeed/dxlink_fields.h"   /* generated: DXK_*, ff_dxfield, FF_DX_TYPES, enums */

#define FF_DX_NTYPES (FF_RT_DX_MAX + 1)   /* indexed by rtype 1..FF_RT_DX_MAX */
#define FF_DX_MAXCH 64
#define FF_DX_MAXCODES 255                /* enum codes fit a uint8 slot; 0 = absent */
#define FF_DX_MAXREC 512                  /* largest record (checked by the owner) */

enum { DXE_OK = 0, DXE_SYNTAX, DXE_TYPE, DXE_INT, DXE_RANGE, DXE_COUNT, DXE_CHAR,
       DXE_NOTARRAY, DXE_NOEVTYPE, DXE_DATA, DXE_NOMEM, DXE_TRAILING, DXE_ELEMENT, DXE_ENUM };

typedef struct {
    int64_t channel;
    ff_dxfield *f[FF_DX_NTYPES];
    int nf[FF_DX_NTYPES];
} ff_dxchan;

/* The names of one enum: the spec's (codes 1..FF_DX_ENUM_COUNT[id]), then names the decoder
 * met that the spec does not list, added through the owner's enum_add callback so that the
 * raw text stays recoverable from the code (never lost, never None). */
typedef struct {
    const char *names[FF_DX_MAXCODES];
    uint32_t lens[FF_DX_MAXCODES];
    int n;
} ff_dxenum;

/* Fill t[FF_DX_NENUMS] with the spec's names. */
static inline void ff_dx_enums_init(ff_dxenum *t)
{
    int e, k;
    for (e = 0; e < FF_DX_NENUMS; e++) {
        t[e].n = FF_DX_ENUM_COUNT[e];
        for (k = 0; k < t[e].n; k++) {
            t[e].names[k] = FF_DX_ENUM_NAMES[e][k];
            t[e].lens[k] = (uint32_t)strlen(FF_DX_ENUM_NAMES[e][k]);
        }
    }
}

/* Owner callback for an enum name not in the table: store it (t[enum_id].names[n], lens[n],
 * n += 1, the bytes kept alive by the owner) and return its code (n after the add), or 0 when
 * it cannot (table full / out of memory): the event is then dropped with DXE_ENUM. */
typedef int (*ff_dx_enum_fn)(void *owner, int enum_id, const char *s, size_t n);

typedef uint32_t (*ff_dx_intern_fn)(void *owner, const char *s, size_t n);

/* Direct-mapped cache of interned strings of 1..16 bytes: the bytes (zero padded, as two
 * words), the length and the id.  Ids of a SymbolTable never change and are never reused,
 * so an entry stays valid for the decoder's lifetime; id 0 (refused) is never cached. */
#define FF_DX_SYMC 256
typedef struct {
    uint64_t k0, k1;
    uint32_t len, id;
} ff_dxsym;



typedef struct {
    ff_ring *ring[FF_DX_NTYPES];
    const char *tmpl[FF_DX_NTYPES];
    uint32_t rec_size[FF_DX_NTYPES];
    const char *tname[FF_DX_NTYPES];
    uint32_t tlen[FF_DX_NTYPES];
    const ff_dxfield *def_f[FF_DX_NTYPES];
    int def_n[FF_DX_NTYPES];
    const ff_dxfield *full_f[FF_DX_NTYPES];
    int full_n[FF_DX_NTYPES];
    uint64_t committed[FF_DX_NTYPES];
    ff_dxchan chans[FF_DX_MAXCH];
    int nchans;
    ff_dx_intern_fn intern;
    void *owner;
    char *scratch;
    size_t scratch_cap;
    ff_dxenum *enums;            /* FF_DX_NENUMS tables (shared by every decoder of a process) */
    ff_dx_enum_fn enum_add;
    uint64_t overflow_rec[FF_DX_MAXREC / 8];   /* where an event goes when its ring refuses it */
    ff_dxsym symc[FF_DX_SYMC];   /* symbol cache in front of the SymbolTable (see ff_dx_sym) */
    int64_t ts_recv;
    uint16_t seq;                /* wire order across rings: stamped into ff_header.flags */
    const char *base;
    uint64_t n_overflowed;
    uint64_t n_skipped;          /* events of types fastfeed does not decode (counted, skipped) */
    uint64_t n_bad_events;       /* events dropped for a bad value (the first one is c->err) */
    uint64_t n_unknown_enums;    /* enum values not in the spec (kept: see ff_dxenum) */
    int err;
    int err_rtype;
    const char *err_field;
    int64_t err_off;
    int err_nf;
} ff_dxctx;

static FF_NOINLINE FF_COLD void
ff_dx_fail(ff_dxctx *c, int err, int rt, const char *field, const char *at, int nf)
{
    if (c->err) return;
    c->err = err;
    c->err_rtype = rt;
    c->err_field = field;
    c->err_off = at ? (int64_t)(at - c->base) : -1;
    c->err_nf = nf;
}

static FF_NOINLINE int ff_dx_grow_scratch(ff_dxctx *c, size_t n)
{
    size_t cap = c->scratch_cap ? c->scratch_cap : 256;
    while (cap < n) cap *= 2;
    char *s = (char *)realloc(c->scratch, cap);
    if (!s) return -1;
    c->scratch = s;
    c->scratch_cap = cap;
    return 0;
}

/* Exactly one code point of UTF-8 in [s, s+n) -> *cp; n == 0 -> 0. -1 otherwise. */
static inline int ff_dx_one_cp(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t v;
    unsigned c0;
    if (n == 0) { *cp = 0; return 0; }
    c0 = s[0];
    if (c0 < 0x80) { len = 1; v = c0; }
    else if ((c0 & 0xE0) == 0xC0) { len = 2; v = c0 & 0x1F; }
    else if ((c0 & 0xF0) == 0xE0) { len = 3; v = c0 & 0x0F; }
    else if ((c0 & 0xF8) == 0xF0) { len = 4; v = c0 & 0x07; }
    else return -1;
    if (n != len) return -1;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return 0;
}

static inline int ff_dx_is_null(const char *p, const char *end)
{
    return (end - p) >= 4 && memcmp(p, "null", 4) == 0;
}



static FF_ALWAYS_INLINE uint32_t ff_dx_sym(ff_dxctx *c, const char *s, size_t n, const char *end);

/* A string of 1..16 bytes without escapes at p ('"'), when 16 (17) bytes after the quote
 * are readable: found, keyed and looked up in the symbol cache with the same two 8-byte loads.
 * Returns past the closing quote with *id set (the id ff_dx_sym gives), or NULL (longer,
 * empty, escaped or malformed strings, or too close to the end: the caller's slow path). */
static FF_ALWAYS_INLINE const char *
ff_dx_fast_sym(ff_dxctx *c, const char *p, const char *end, uint32_t *id)
{
#if FF_SWAR
    const char *s = p + 1;
    uint64_t k0, k1, m;
    size_t n;
    ff_dxsym *e;
    if (end - s < 16) return NULL;
    memcpy(&k0, s, 8);
    memcpy(&k1, s + 8, 8);
    m = ff_swar_str_stop(k0);
    if (m) {
        n = (size_t)(__builtin_ctzll(m) >> 3);
        if (n == 0 || s[n] != '"') return NULL;
        k0 &= ~0ULL >> (64 - 8 * n);
        k1 = 0;
    } else {
        m = ff_swar_str_stop(k1);
        if (m) {
            n = 8 + (size_t)(__builtin_ctzll(m) >> 3);
            if (s[n] != '"') return NULL;
            k1 = n == 8 ? 0 : k1 & (~0ULL >> (128 - 8 * n));
        } else {
            if (end - s < 17 || s[16] != '"') return NULL;
            n = 16;   /* e.g. ".SPXW260320C6000" */
        }
    }
    e = &c->symc[((k0 ^ (k1 * 0x9E3779B97F4A7C15ULL) ^ n) * 0xD6E8FEB86659FD93ULL) >> 56];
    if (FF_LIKELY(e->id != 0 && e->k0 == k0 && e->k1 == k1 && e->len == n)) {
        *id = e->id;
        return s + n + 1;
    }
    *id = ff_dx_sym(c, s, n, end);
    return s + n + 1;
#else
    (void)c; (void)p; (void)end; (void)id;
    return NULL;
#endif
}

/* Intern s[0:n) through the symbol cache (1..16 bytes) or straight into the table. */
static FF_ALWAYS_INLINE uint32_t ff_dx_sym(ff_dxctx *c, const char *s, size_t n, const char *end)
{
#if FF_SWAR
    if (n - 1 < 16) {
        uint64_t k0 = 0, k1 = 0;
        ff_dxsym *e;
        uint32_t id;
        if (end - s >= 16) {
            memcpy(&k0, s, 8);
            memcpy(&k1, s + 8, 8);
            if (n < 8) { k0 &= ~0ULL >> (64 - 8 * n); k1 = 0; }
            else if (n == 8) k1 = 0;
            else k1 &= ~0ULL >> (128 - 8 * n);
        } else {
            memcpy(&k0, s, n < 8 ? n : 8);
            if (n > 8) memcpy(&k1, s + 8, n - 8);
        }
        e = &c->symc[((k0 ^ (k1 * 0x9E3779B97F4A7C15ULL) ^ n) * 0xD6E8FEB86659FD93ULL) >> 56];
        if (FF_LIKELY(e->id != 0 && e->k0 == k0 && e->k1 == k1 && e->len == n)) return e->id;
        id = c->intern(c->owner, s, n);
        if (id != 0) { e->k0 = k0; e->k1 = k1; e->len = (uint32_t)n; e->id = id; }
        return id;
    }
#endif
    (void)end;
    return c->intern(c->owner, s, n);
}

/* Decode one value of kind f->kind at p (p < end) into rec. Returns the pointer past the
 * value or NULL with *err set. */
static FF_ALWAYS_INLINE const char *
ff_dx_value(ff_dxctx *c, const ff_dxfield *f, const char *p, const char *end, char *rec, int *err)
{
    char ch = *p;
    char *slot = rec + f->off;
    switch (f->kind) {
    case DXK_F64: {
        double d;
        const char *r;
        if (ch == '"') {
            const char *q = p + 1;
            uint64_t bits;
            if (end - q >= 4 && memcmp(q, "NaN\"", 4) == 0) {
                bits = 0x7FF8000000000000ULL; memcpy(slot, &bits, 8); return q + 4;
            }
            if (end - q >= 9 && memcmp(q, "Infinity\"", 9) == 0) {
                bits = 0x7FF0000000000000ULL; memcpy(slot, &bits, 8); return q + 9;
            }
            if (end - q >= 10 && memcmp(q, "-Infinity\"", 10) == 0) {
                bits = 0xFFF0000000000000ULL; memcpy(slot, &bits, 8); return q + 10;
            }
            *err = DXE_TYPE;
            return NULL;
        }
        r = ff_fast_double(p, end, &d);
        if (FF_LIKELY(r != NULL)) { memcpy(slot, &d, 8); return r; }
        r = ff_parse_double(p, end, &d);
        if (FF_LIKELY(r != NULL)) { memcpy(slot, &d, 8); return r; }
        if (ff_dx_is_null(p, end)) return p + 4;
        *err = (ch == '-' || (ch >= '0' && ch <= '9')) ? DXE_SYNTAX : DXE_TYPE;
        return NULL;
    }
    case DXK_I64:
    case DXK_I32: {
        int64_t v;
        const char *r;
        if (ch == '-' || (ch >= '0' && ch <= '9')) {
            r = ff_parse_int64(p, end, &v);
            if (FF_UNLIKELY(r == NULL)) {
                *err = ff_skip_number(p, end) ? DXE_INT : DXE_SYNTAX;
                return NULL;
            }
            if (f->kind == DXK_I32) {
                int32_t w;
                if (FF_UNLIKELY(v < INT32_MIN || v > INT32_MAX)) { *err = DXE_RANGE; return NULL; }
                w = (int32_t)v;
                memcpy(slot, &w, 4);
            } else {
                memcpy(slot, &v, 8);
            }
            return r;
        }
        if (ff_dx_is_null(p, end)) return p + 4;
        *err = DXE_TYPE;
        return NULL;
    }
    case DXK_SYMBOL:
    case DXK_STR: {
        const char *s, *q;
        size_t n;
        int esc;
        uint32_t id;
        if (FF_LIKELY(ch == '"')) {
            q = ff_scan_string(p, end, &s, &n, &esc);
            if (FF_UNLIKELY(q == NULL)) { *err = DXE_SYNTAX; return NULL; }
            if (FF_UNLIKELY(esc)) {
                ptrdiff_t m;
                if (n > c->scratch_cap && ff_dx_grow_scratch(c, n) != 0) { *err = DXE_NOMEM; return NULL; }
                m = ff_unescape(s, n, c->scratch, c->scratch_cap);
                if (m < 0) { *err = DXE_SYNTAX; return NULL; }
                id = c->intern(c->owner, c->scratch, (size_t)m);
            } else {
                id = ff_dx_sym(c, s, n, end);
            }
            memcpy(slot, &id, 4);
            return q;
        }
        if (ff_dx_is_null(p, end)) { id = 0; memcpy(slot, &id, 4); return p + 4; }
        *err = DXE_TYPE;
        return NULL;
    }
    case DXK_CHAR: {
        const char *s, *q;
        size_t n;
        int esc;
        uint32_t cp;
        if (ch == '"') {
            q = ff_scan_string(p, end, &s, &n, &esc);
            if (q == NULL) { *err = DXE_SYNTAX; return NULL; }
            if (esc) {
                char buf[16];
                ptrdiff_t m;
                if (n > sizeof(buf)) { *err = DXE_CHAR; return NULL; }
                m = ff_unescape(s, n, buf, sizeof(buf));
                if (m < 0) { *err = DXE_SYNTAX; return NULL; }
                if (ff_dx_one_cp((const unsigned char *)buf, (size_t)m, &cp) != 0) { *err = DXE_CHAR; return NULL; }
            } else if (ff_dx_one_cp((const unsigned char *)s, n, &cp) != 0) {
                *err = DXE_CHAR;
                return NULL;
            }
            memcpy(slot, &cp, 4);
            return q;
        }
        if (ff_dx_is_null(p, end)) return p + 4;
        *err = DXE_TYPE;
        return NULL;
    }
    case DXK_BOOL:
        if (ch == 't' && (end - p) >= 4 && memcmp(p, "true", 4) == 0) { *(uint8_t *)slot = 1; return p + 4; }
        if (ch == 'f' && (end - p) >= 5 && memcmp(p, "false", 5) == 0) { *(uint8_t *)slot = 0; return p + 5; }
        if (ff_dx_is_null(p, end)) return p + 4;
        *err = DXE_TYPE;
        return NULL;
    case DXK_ENUM: {
        const char *s, *q;
        size_t n;
        int esc, k;
        if (ch == '"') {
            const ff_dxenum *e = &c->enums[f->enum_id];
            q = ff_scan_string(p, end, &s, &n, &esc);
            if (q == NULL) { *err = DXE_SYNTAX; return NULL; }
            if (FF_UNLIKELY(esc)) {
                ptrdiff_t m;
                if (n > c->scratch_cap && ff_dx_grow_scratch(c, n) != 0) { *err = DXE_NOMEM; return NULL; }
                m = ff_unescape(s, n, c->scratch, c->scratch_cap);
                if (m < 0) { *err = DXE_SYNTAX; return NULL; }
                s = c->scratch;
                n = (size_t)m;
            }
            for (k = 0; k < e->n; k++) {
                if (e->lens[k] == n && memcmp(e->names[k], s, n) == 0) break;
            }
            if (FF_UNLIKELY(k >= FF_DX_ENUM_COUNT[f->enum_id])) {
                /* not a spec name: kept under a code of its own, and counted */
                if (k == e->n) {
                    int code = c->enum_add ? c->enum_add(c->owner, f->enum_id, s, n) : 0;
                    if (code <= 0 || code > FF_DX_MAXCODES) { *err = DXE_ENUM; return NULL; }
                    k = code - 1;
                }
                c->n_unknown_enums++;
            }
            *(uint8_t *)slot = (uint8_t)(k + 1);
            return q;
        }
        if (ff_dx_is_null(p, end)) return p + 4;
        *err = DXE_TYPE;
        return NULL;
    }
    case DXK_EVTYPE:
        if (ch == '"') {
            const char *s;
            size_t n;
            int esc;
            const char *q = ff_scan_string(p, end, &s, &n, &esc);
            if (q == NULL) *err = DXE_SYNTAX;
            return q;
        }
        if (ff_dx_is_null(p, end)) return p + 4;
        *err = DXE_TYPE;
        return NULL;
    default: {
        const char *q = ff_skip_value(p, end);
        if (q == NULL) *err = DXE_SYNTAX;
        return q;
    }
    }
}

static FF_NOINLINE const char *
ff_dx_value_slow(ff_dxctx *c, const ff_dxfield *f, const char *p, const char *end, char *rec, int *err)
{
    return ff_dx_value(c, f, p, end, rec, err);
}

static inline char *ff_dx_claim(ff_dxctx *c, int rt, uint64_t k)
{
    char *rec = (char *)ff_ring_slot(c->ring[rt], c->committed[rt] + k);
    if (FF_UNLIKELY(rec == NULL)) rec = (char *)c->overflow_rec;
    ff_rec_copy((uint8_t *)rec, (const uint8_t *)c->tmpl[rt], c->rec_size[rt]);
    ((uint16_t *)rec)[0] = (uint16_t)rt;
    ((uint16_t *)rec)[1] = c->seq++;   /* wire order (mod 2^16) across event types */
    memcpy(rec + 8, &c->ts_recv, 8);
    return rec;
}

static inline int ff_dx_type_of(const ff_dxctx *c, const char *s, size_t n)
{
    int rt;
    for (rt = 1; rt < FF_DX_NTYPES; rt++) {
        if (c->tlen[rt] == n && c->ring[rt] != NULL && memcmp(c->tname[rt], s, n) == 0) return rt;
    }
    return 0;
}

static inline const ff_dxfield *ff_dx_table(const ff_dxctx *c, int64_t ch, int rt, int *nf)
{
    int i;
    for (i = 0; i < c->nchans; i++) {
        if (c->chans[i].channel == ch) {
            if (c->chans[i].f[rt] != NULL) { *nf = c->chans[i].nf[rt]; return c->chans[i].f[rt]; }
            break;
        }
    }
    *nf = c->def_n[rt];
    return c->def_f[rt];
}

/* Skip `left` values from p (the first one at p, the others each after a ','), for an event
 * dropped for a bad value; counts it.  Returns past the last one, or NULL (the pair is broken:
 * error recorded) when they are not there. */
static FF_NOINLINE FF_COLD const char *
ff_dx_skip_event(ff_dxctx *c, int rt, const char *p, const char *end, int left)
{
    for (;;) {
        p = ff_skip_value(p, end);
        if (p == NULL) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, end, 0); return NULL; }
        if (--left == 0) break;
        p = ff_skip_ws(p, end);
        if (p >= end) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        if (*p == ']') { ff_dx_fail(c, DXE_COUNT, rt, NULL, p, 0); return NULL; }
        if (*p != ',') { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        p = ff_skip_ws(p + 1, end);
    }
    c->n_bad_events++;
    return p;
}

/* COMPACT values array of type rt at p ('[' expected). Returns past ']' with every good event
 * committed (an event with a bad value is dropped, counted in n_bad_events and reported in
 * c->err), or NULL when the array itself is broken (malformed JSON, a length that is not a
 * multiple of the field count): then nothing of the pair is committed. */
static FF_ALWAYS_INLINE const char *
ff_dx_compact_body(ff_dxctx *c, int rt, int64_t chan, const char *p, const char *end)
{
    int nf, fi = 0, err = 0;
    const ff_dxfield *fields = ff_dx_table(c, chan, rt, &nf);
    uint64_t written = 0;
    char *rec = NULL;
    char *ovf = (char *)c->overflow_rec;
    if (p >= end || *p != '[') {
        ff_dx_fail(c, p >= end ? DXE_SYNTAX : DXE_NOTARRAY, rt, NULL, p, 0);
        return NULL;
    }
    p = ff_skip_ws(p + 1, end);
    if (p < end && *p == ']') return p + 1;
    for (;;) {
        const char *q;
        const ff_dxfield *f;
        char *slot;
        char ch;
        if (FF_UNLIKELY(p >= end)) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        if (fi == 0) rec = ff_dx_claim(c, rt, written);
        f = &fields[fi];
        slot = rec + f->off;
    retry:
        ch = *p;
        /* Fast paths for the common spellings of the common kinds; anything else (leading
         * whitespace, other spellings, every error) goes to `slow`, i.e. ff_dx_value, so
         * results and errors are the same. */
        switch (f->kind) {
        case DXK_F64: {
            double d;
#if FF_SWAR
            /* the usual price / size spellings (d{1,7}(.d{1,7})?): one or two word steps */
            if (FF_LIKELY(end - p >= 16)) {
                int isint;
                q = ff_f64_short(p, &d, &isint);
                if (FF_LIKELY(q != NULL)) { memcpy(slot, &d, 8); goto done; }
            }
#endif
            if (FF_LIKELY((unsigned)(ch - '0') < 10u || ch == '-')) {
                q = ff_fast_double(p, end, &d);
                if (FF_LIKELY(q != NULL)) { memcpy(slot, &d, 8); goto done; }
            }
            goto slow;
        }
        case DXK_I64: {
            int64_t v;
            if (ch == '0' && end - p >= 2 && (p[1] == ',' || p[1] == ']')) {
                memset(slot, 0, 8);
                q = p + 1;
                goto done;
            }
            if (FF_LIKELY((unsigned)(ch - '0') < 10u || ch == '-')) {
                q = ff_fast_int(p, end, &v);
                if (FF_LIKELY(q != NULL)) { memcpy(slot, &v, 8); goto done; }
            }
            goto slow;
        }
        case DXK_I32: {
            int64_t v;
            if (ch == '0' && end - p >= 2 && (p[1] == ',' || p[1] == ']')) {
                memset(slot, 0, 4);
                q = p + 1;
                goto done;
            }
            if (FF_LIKELY((unsigned)(ch - '0') < 10u || ch == '-')) {
                q = ff_fast_int(p, end, &v);
                if (FF_LIKELY(q != NULL && v >= INT32_MIN && v <= INT32_MAX)) {
                    int32_t v32 = (int32_t)v;
                    memcpy(slot, &v32, 4);
                    goto done;
                }
            }
            goto slow;
        }
        case DXK_SYMBOL:
        case DXK_STR: {
            uint32_t id;
            if (FF_LIKELY(ch == '"')) {
                q = ff_dx_fast_sym(c, p, end, &id);
                if (FF_LIKELY(q != NULL)) { memcpy(slot, &id, 4); goto done; }
            }
            goto slow;
        }
        case DXK_CHAR: {
            /* one printable ASCII character: "X" */
            unsigned char c1;
            if (FF_LIKELY(ch == '"' && end - p >= 3 && p[2] == '"')) {
                c1 = (unsigned char)p[1];
                if (FF_LIKELY(c1 >= 0x20 && c1 < 0x80 && c1 != '"' && c1 != 0x5C)) {
                    uint32_t cp = c1;
                    memcpy(slot, &cp, 4);
                    q = p + 3;
                    goto done;
                }
            }
            goto slow;
        }
        default:
            goto slow;
        }
    slow:
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
            p = ff_skip_ws(p, end);
            if (FF_UNLIKELY(p >= end)) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
            goto retry;
        }
        q = ff_dx_value_slow(c, f, p, end, rec, &err);
        if (FF_UNLIKELY(q == NULL)) {
            /* A bad value costs its own event only: reported (the first problem of the
             * message becomes c->err), skipped with the event's other values, the event not
             * committed (its slot is reused); the pair's other events are published. */
            ff_dx_fail(c, err, rt, f->name, p, nf);
            p = ff_dx_skip_event(c, rt, p, end, nf - fi);
            if (p == NULL) return NULL;
            fi = 0;
            goto next;
        }
    done:
        p = q;
        if (++fi == nf) {
            fi = 0;
            if (FF_LIKELY(rec != ovf)) written++;
            else c->n_overflowed++;
        }
    next:
        if (FF_UNLIKELY(p >= end)) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        ch = *p;
        if (FF_LIKELY(ch == ',')) { p++; continue; }
        if (ch == ']') break;
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
            p = ff_skip_ws(p, end);
            if (FF_UNLIKELY(p >= end)) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
            if (*p == ',') { p++; continue; }
            if (*p == ']') break;
        }
        ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0);
        return NULL;
    }
    if (FF_UNLIKELY(fi != 0)) { ff_dx_fail(c, DXE_COUNT, rt, NULL, p, nf); return NULL; }
    c->committed[rt] += written;
    return p + 1;
}

/* ff_dx_compact built for the baseline and for x86-64-v3 (compat.h's runtime dispatch); the
 * module picks one at init with ff_dx_select. */
static FF_NOINLINE const char *
ff_dx_compact_base(ff_dxctx *c, int rt, int64_t chan, const char *p, const char *end)
{
    return ff_dx_compact_body(c, rt, chan, p, end);
}

FF_TARGET_V3
static FF_NOINLINE const char *
ff_dx_compact_v3(ff_dxctx *c, int rt, int64_t chan, const char *p, const char *end)
{
    return ff_dx_compact_body(c, rt, chan, p, end);
}

static const char *(*ff_dx_compact)(ff_dxctx *, int, int64_t, const char *, const char *) =
    ff_dx_compact_base;

/* Selects the x86-64-v3 build of ff_dx_compact (v3 != 0; only when ff_cpu_v3() says the CPU
 * has it) or the baseline one.  Returns 1 when the v3 build is in use. */
static inline int ff_dx_select(int v3)
{
    ff_dx_compact = v3 && FF_HAVE_V3 ? ff_dx_compact_v3 : ff_dx_compact_base;
    return ff_dx_compact == ff_dx_compact_v3;
}

/* Find "eventType" of the object at p ('{'). 1 found (*rt set, 0 = unknown type), 0 absent,
 * -1 malformed. */
static int ff_dx_obj_type(const ff_dxctx *c, const char *p, const char *end, int *rt)
{
    p = ff_skip_ws(p + 1, end);
    if (p < end && *p == '}') return 0;
    for (;;) {
        const char *k, *s;
        size_t kn, n;
        int esc;
        p = ff_scan_string(p, end, &k, &kn, &esc);
        if (!p) return -1;
        p = ff_skip_ws(p, end);
        if (p >= end || *p != ':') return -1;
        p = ff_skip_ws(p + 1, end);
        if (p >= end) return -1;
        if (kn == 9 && memcmp(k, "eventType", 9) == 0 && *p == '"') {
            if (!ff_scan_string(p, end, &s, &n, &esc)) return -1;
            *rt = ff_dx_type_of(c, s, n);
            return 1;
        }
        p = ff_skip_value(p, end);
        if (!p) return -1;
        p = ff_skip_ws(p, end);
        if (p >= end) return -1;
        if (*p == '}') return 0;
        if (*p != ',') return -1;
        p = ff_skip_ws(p + 1, end);
    }
}

/* One FULL event object at p ('{'). Returns past '}' or NULL (error recorded). */
static const char *ff_dx_full(ff_dxctx *c, const char *p, const char *end)
{
    int rt = 0, r, err = 0, i, nf;
    const ff_dxfield *fields;
    char *rec;
    const char *q;
    r = ff_dx_obj_type(c, p, end, &rt);
    if (r < 0) { ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0); return NULL; }
    if (r == 0) { ff_dx_fail(c, DXE_NOEVTYPE, 0, "eventType", p, 0); return NULL; }
    if (rt == 0) {
        q = ff_skip_value(p, end);
        if (!q) ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0);
        else c->n_skipped++;
        return q;
    }
    fields = c->full_f[rt];
    nf = c->full_n[rt];
    rec = ff_dx_claim(c, rt, 0);
    p = ff_skip_ws(p + 1, end);
    if (p < end && *p == '}') goto done;
    for (;;) {
        const char *k;
        size_t kn;
        int esc;
        const ff_dxfield *f = NULL;
        p = ff_scan_string(p, end, &k, &kn, &esc);
        if (!p) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        p = ff_skip_ws(p, end);
        if (p >= end || *p != ':') { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        p = ff_skip_ws(p + 1, end);
        if (p >= end) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        for (i = 0; i < nf; i++) {
            if (fields[i].namelen == kn && memcmp(fields[i].name, k, kn) == 0) { f = &fields[i]; break; }
        }
        if (f != NULL) {
            q = ff_dx_value(c, f, p, end, rec, &err);
            if (!q) { ff_dx_fail(c, err, rt, f->name, p, 0); c->n_bad_events++; return NULL; }
        } else {
            q = ff_skip_value(p, end);
            if (!q) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        }
        p = ff_skip_ws(q, end);
        if (p >= end) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        if (*p == '}') break;
        if (*p != ',') { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
        p = ff_skip_ws(p + 1, end);
    }
done:
    if (rec != (char *)c->overflow_rec) c->committed[rt] += 1;
    else c->n_overflowed++;
    return p + 1;
}

/* The data array at p. Returns past ']' or NULL when the rest cannot be parsed. */
static const char *ff_dx_data(ff_dxctx *c, int64_t chan, const char *p, const char *end)
{
    if (p >= end || *p != '[') {
        const char *q;
        ff_dx_fail(c, p >= end ? DXE_SYNTAX : DXE_DATA, 0, NULL, p, 0);
        q = ff_skip_value(p, end);
        return q;
    }
    p = ff_skip_ws(p + 1, end);
    if (p < end && *p == ']') return p + 1;
    for (;;) {
        const char *q, *start;
        if (p >= end) { ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0); return NULL; }
        if (*p == '"') {
            const char *s;
            size_t n;
            int esc, rt;
            p = ff_scan_string(p, end, &s, &n, &esc);
            if (!p) { ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0); return NULL; }
            rt = ff_dx_type_of(c, s, n);
            p = ff_skip_ws(p, end);
            if (p >= end || *p != ',') {
                ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0);
                return NULL;
            }
            p = ff_skip_ws(p + 1, end);
            start = p;
            if (rt == 0) {
                q = ff_skip_value(p, end);
                if (!q) { ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0); return NULL; }
                c->n_skipped++;
            } else {
                q = ff_dx_compact(c, rt, chan, p, end);
                if (!q) {
                    q = ff_skip_value(start, end);
                    if (!q) return NULL;
                }
            }
        } else if (*p == '{') {
            start = p;
            q = ff_dx_full(c, p, end);
            if (!q) {
                q = ff_skip_value(start, end);
                if (!q) return NULL;
            }
        } else {
            ff_dx_fail(c, DXE_ELEMENT, 0, NULL, p, 0);
            q = ff_skip_value(p, end);
            if (!q) return NULL;
        }
        p = ff_skip_ws(q, end);
        if (p >= end) { ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0); return NULL; }
        if (*p == ',') { p = ff_skip_ws(p + 1, end); continue; }
        if (*p == ']') return p + 1;
        ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0);
        return NULL;
    }
}

/* Publish what this message committed; abandon the rest. Returns the number published. */
static int64_t ff_dx_publish(ff_dxctx *c)
{
    int64_t total = 0;
    int rt;
    for (rt = 1; rt < FF_DX_NTYPES; rt++) {
        if (c->ring[rt] == NULL) continue;
        if (c->committed[rt]) {
            ff_ring_publish(c->ring[rt], c->committed[rt]);
            total += (int64_t)c->committed[rt];
            c->committed[rt] = 0;
        } else {
            ff_ring_abandon(c->ring[rt]);
        }
    }
    return total;
}

/* One whole message. Returns -2 when it is not a FEED_DATA message (the caller parses it),
 * else the number of events published (c->err set when something was malformed). */
static int64_t ff_dx_message(ff_dxctx *c, const char *buf, size_t size)
{
    const char *end = buf + size, *p, *data = NULL;
    int is_data = 0, have_chan = 0, done_data = 0;
    int64_t chan = 0;
    c->base = buf;
    c->err = 0;
    p = ff_skip_ws(buf, end);
    if (p >= end || *p != '{') return -2;
    p = ff_skip_ws(p + 1, end);
    if (p < end && *p == '}') return -2;
    for (;;) {
        const char *k, *q;
        size_t kn;
        int esc;
        q = ff_scan_string(p, end, &k, &kn, &esc);
        if (!q) goto bad;
        p = ff_skip_ws(q, end);
        if (p >= end || *p != ':') goto bad;
        p = ff_skip_ws(p + 1, end);
        if (p >= end) goto bad;
        if (kn == 4 && memcmp(k, "type", 4) == 0) {
            const char *s;
            size_t n;
            if (*p != '"') return -2;
            q = ff_scan_string(p, end, &s, &n, &esc);
            if (!q) goto bad;
            if (n == 9 && memcmp(s, "FEED_DATA", 9) == 0) is_data = 1;
            else return -2;
        } else if (kn == 7 && memcmp(k, "channel", 7) == 0) {
            q = ff_parse_int64(p, end, &chan);
            if (!q) {
                chan = -1;
                q = ff_skip_value(p, end);
                if (!q) goto bad;
            }
            have_chan = 1;
        } else if (kn == 4 && memcmp(k, "data", 4) == 0) {
            if (is_data && have_chan && !done_data) {
                q = ff_dx_data(c, chan, p, end);
                done_data = 1;
                if (!q) goto out;
            } else {
                data = p;
                q = ff_skip_value(p, end);
                if (!q) goto bad;
            }
        } else {
            q = ff_skip_value(p, end);
            if (!q) goto bad;
        }
        p = ff_skip_ws(q, end);
        if (p >= end) goto bad;
        if (*p == ',') { p = ff_skip_ws(p + 1, end); continue; }
        if (*p == '}') break;
        goto bad;
    }
    if (!is_data) return -2;
    p = ff_skip_ws(p + 1, end);
    if (p != end) ff_dx_fail(c, DXE_TRAILING, 0, NULL, p, 0);
    if (!done_data && data != NULL) ff_dx_data(c, chan, data, end);
    goto out;
bad:
    if (!is_data) return -2;      /* let the Python path report it */
    ff_dx_fail(c, DXE_SYNTAX, 0, NULL, p, 0);
out:
    return ff_dx_publish(c);
}

#endif /* FASTFEED_DXLINK_SCAN_H */
