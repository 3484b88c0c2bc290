/* fastfeed/polygon_scan.h -- the hot loop of the polygon/Massive decoder (C, no Python.h).
 *
 * One call decodes one whole websocket message: a JSON array of event objects of mixed types.
 * Every event object is written in place into the ring of its record type (ff_ring_slot) and
 * becomes visible only when the whole object was valid (ff_ring_publish once per ring at the
 * end of the message).  Keys may come in any order (the object is scanned ahead for "ev" when
 * it is not the first key), missing keys leave their presence bit clear.  Nothing is cut or
 * dropped: a string longer than its slot, a list longer than its inline capacity and a key
 * without a slot (its raw JSON member) go to the spill log of the record's ring (spill.h,
 * ff_pg_spill; only on the general path, so events that need none pay nothing for it); a new
 * symbol while the symbol table is full skips its event (FF_PGE_SYMTAB_FULL).  The per-layout
 * key tables (packed key -> kind / offset / bit) are filled by the
 * Cython wrapper (polygon.pyx) from fastfeed._records_meta, so this file knows no layout.
 *
 * Error model (see the module docstring of polygon.pyx for the per-case decisions):
 *   - a bad event (wrong value type, missing "ev", not an object, bad string) is skipped and
 *     counted; the first such fault of the message is recorded in d->err_*;
 *   - an unknown "ev" is skipped and counted (n_unknown_ev), not an error;
 *   - a structural fault (not JSON, truncated, garbage between events) stops the message: the
 *     events before it are still published; the fault is recorded.
 * Every read is bounded by `end`; no NUL terminator is needed.
 */
#ifndef FASTFEED_POLYGON_SCAN_H
#define FASTFEED_POLYGON_SCAN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastfeed/compat.h"
#include "fastfeed/fastnum.h"
#include "fastfeed/jsonscan.h"
#include "fastfeed/numparse.h"
#include "fastfeed/records.h"
#include "fastfeed/ring.h"

#if defined(__SSE2__)
#  include <emmintrin.h>
#endif

/* field kinds */
enum {
    FF_PGK_NONE = 0,
    FF_PGK_F64 = 1,     /* double; alt = wire had an integer */
    FF_PGK_I64 = 2,     /* int64; alt = wire had an integral float */
    FF_PGK_I64S = 3,    /* int64 | decimal string; alt = wire had the string */
    FF_PGK_BOOL = 4,
    FF_PGK_FIXSTR = 5,  /* char[n], NUL padded */
    FF_PGK_FIXSTRI = 6, /* char[n] | integer; alt = wire had the integer */
    FF_PGK_I32ARR = 7,  /* int32[n] + u8 count + u8 dropped */
    FF_PGK_LEVELS = 8,  /* n x [double, double] + u8 alt flags per level + u16 count + u16 dropped */
    FF_PGK_SYMBOL = 9,  /* interned into the header's symbol_id, presence bit 0 */
    FF_PGK_EV = 10      /* the "ev" key itself (checked against the event's ev) */
};

/* error codes (first fault of a message) */
enum {
    FF_PGE_OK = 0,
    FF_PGE_EMPTY,        /* nothing but whitespace */
    FF_PGE_NOT_JSON,     /* malformed JSON at the top level */
    FF_PGE_NOT_ARRAY,    /* valid JSON but not an array */
    FF_PGE_MALFORMED,    /* malformed JSON inside the array: decoding stopped there */
    FF_PGE_TRUNCATED,    /* the message ended inside the array: decoding stopped there */
    FF_PGE_TRAILING,     /* bytes after the closing ']' */
    FF_PGE_NOT_OBJECT,   /* an array element that is not an object (skipped) */
    FF_PGE_NO_EV,        /* an event without "ev" (skipped) */
    FF_PGE_EV_TYPE,      /* "ev" is not a string, or two different "ev" values (skipped) */
    FF_PGE_WRONG_TYPE,   /* a known key with a value of the wrong type (event skipped) */
    FF_PGE_BAD_STRING,   /* invalid UTF-8 or escape in a string value (event skipped) */
    FF_PGE_STATUS,       /* a status object the wrapper could not handle */
    FF_PGE_TOO_LARGE,    /* message larger than max_message_size (set by the wrapper) */
    FF_PGE_SYMTAB_FULL,  /* a new symbol while the symbol table is at max_symbols (skipped) */
    FF_PGE_SPILL         /* spill storage exhausted (> 1 GiB per ring or out of memory; skipped) */
};

#define FF_PG_HASH_BITS 6
#define FF_PG_HASH_SIZE (1 << FF_PG_HASH_BITS)
#define FF_PG_MAX_LAYOUTS 16
#define FF_PG_SYMCACHE 512
#define FF_PG_SMALL 1024     /* messages up to this size are decoded from a padded copy */
#define FF_PG_PAD 64         /* zero bytes after the copy */

typedef struct ff_pg_field_s {
    uint32_t key;      /* packed wire key (<= 4 bytes, little-endian, zero padded); 0 = empty */
    uint8_t kind;
    uint8_t bit;
    uint16_t off;
    uint16_t n;        /* fixstr size / array capacity */
    uint16_t n_off;
    uint16_t drop_off;
    uint16_t alt_off;
    uint8_t adv;       /* bytes of '"key":' */
    uint64_t pat;      /* '"key":' as a little-endian word, masked by pmask */
    uint64_t pmask;
    uint64_t mask;     /* 1 << bit */
    const struct ff_pg_field_s *next;  /* the key that followed this one last time (or NULL) */
    const struct ff_pg_field_s *next2; /* the other key seen after this one before that (an
                                          optional key present or not: both kept) */
} ff_pg_field;

typedef struct {
    ff_pg_field tab[FF_PG_HASH_SIZE];
    uint32_t size;            /* record size */
    uint32_t init_off[3];     /* regions of the record initialised from tmpl per event */
    uint32_t init_len[3];
    const uint8_t *tmpl;      /* template record (owned by the wrapper) */
    int flat;                 /* no book levels: tmpl copied whole (inline) per event */
    const ff_pg_field *first; /* the first key after "ev" last time (or NULL) */
} ff_pg_layout;

typedef struct {
    uint32_t key;             /* packed ev code; 0 = empty */
    uint8_t layout;           /* index in layouts[] */
    uint16_t rtype;
} ff_pg_evslot;

typedef struct {
    uint64_t w;               /* symbol bytes, zero padded (n <= 8) */
    uint32_t n;               /* length + 1 (0 = empty slot) */
    uint32_t id;
} ff_pg_symslot;

typedef uint32_t (*ff_pg_intern_fn)(void *ctx, const char *s, size_t n);
typedef int (*ff_pg_status_fn)(void *ctx, const char *s, size_t n); /* 0 ok, -1 fault */

typedef struct ff_pg_dec {
    ff_pg_layout layouts[FF_PG_MAX_LAYOUTS];
    ff_pg_evslot evtab[FF_PG_HASH_SIZE];
    ff_ring **rings;                /* rtype -> ring (NULL = none), FF_RT_MAX entries */
    uint64_t k[FF_RT_MAX];          /* slots claimed in the message in hand, per rtype */
    uint16_t touched[FF_RT_MAX];
    int n_touched;
    ff_pg_symslot symcache[FF_PG_SYMCACHE];
    char small[FF_PG_SMALL + FF_PG_PAD];  /* padded copy of a small message */
    ff_pg_intern_fn intern;
    ff_pg_status_fn status;
    void *ctx;
    int64_t ts_recv;
    uint16_t seq;                   /* wire order across rings: stamped into ff_header.flags */
    /* counters (cumulative) */
    uint64_t n_events;              /* published */
    uint64_t n_skipped;             /* bad events + unknown ev */
    uint64_t n_unknown_ev;
    uint64_t n_unknown_keys;        /* keys skipped because no record slot exists for them */
    uint64_t n_status;
    uint64_t n_spilled_str;         /* fixstr values longer than their slot (or with a NUL byte),
                                       kept whole in the ring's spill log */
    uint64_t n_symtab_full;         /* events skipped: new symbol, symbol table full */
    uint64_t n_overflowed;          /* refused by a full back-pressure ring */
    uint64_t n_dropped_items;       /* array items / book levels beyond the inline capacity */
    /* first fault of the message in hand */
    int err;
    size_t err_off;
    const char *err_key;            /* points into the message (valid during the call) */
    size_t err_key_n;
    const char *err_ev;
    size_t err_ev_n;
    /* spill of the event in hand (spill.h): its ring, whether it spilled, where its range starts */
    int sp_on;                      /* set by the first piece, cleared when the event ends */
    uint32_t sp_start;
} ff_pg_dec;

static inline uint32_t ff_pg_pack(const char *s, size_t n)
{
    uint32_t k = 0;
    if (n == 0 || n > 4 || memchr(s, 0, n) != NULL)
        return 0;
    memcpy(&k, s, n);
    return k;
}

static inline uint32_t ff_pg_hash(uint32_t k)
{
    return (uint32_t)(k * 2654435761u) >> (32 - FF_PG_HASH_BITS);
}

static inline const ff_pg_field *ff_pg_lookup(const ff_pg_layout *L, uint32_t k)
{
    uint32_t h = ff_pg_hash(k);
    for (;;) {
        const ff_pg_field *f = &L->tab[h];
        if (f->key == k)
            return f;
        if (f->key == 0)
            return NULL;
        h = (h + 1) & (FF_PG_HASH_SIZE - 1);
    }
}

/* Insert (used at init; the table must keep at least one empty slot). */
static inline int ff_pg_add_field(ff_pg_layout *L, const ff_pg_field *f)
{
    uint32_t h = ff_pg_hash(f->key);
    int i;
    for (i = 0; i < FF_PG_HASH_SIZE - 1; i++) {
        if (L->tab[h].key == 0 || L->tab[h].key == f->key) {
            ff_pg_field *g = &L->tab[h];
            unsigned kn = f->key > 0xFFFFFF ? 4 : f->key > 0xFFFF ? 3 : f->key > 0xFF ? 2 : 1;
            *g = *f;
            g->next = NULL;
            g->next2 = NULL;
            g->mask = (uint64_t)1 << f->bit;
            g->adv = (uint8_t)(kn + 3);
            g->pat = 0x22u | ((uint64_t)f->key << 8) | ((uint64_t)0x3A22 << (8 * (kn + 1)));
            g->pmask = (1ULL << (8 * (kn + 3))) - 1;
            return 0;
        }
        h = (h + 1) & (FF_PG_HASH_SIZE - 1);
    }
    return -1;
}

static inline int ff_pg_add_ev(ff_pg_dec *d, uint32_t key, int layout, int rtype)
{
    uint32_t h = ff_pg_hash(key);
    int i;
    for (i = 0; i < FF_PG_HASH_SIZE - 1; i++) {
        if (d->evtab[h].key == 0 || d->evtab[h].key == key) {
            d->evtab[h].key = key;
            d->evtab[h].layout = (uint8_t)layout;
            d->evtab[h].rtype = (uint16_t)rtype;
            return 0;
        }
        h = (h + 1) & (FF_PG_HASH_SIZE - 1);
    }
    return -1;
}

/* A layout's key table as tools/gen_records.py emits it (fastfeed/polygon_fields.h): every
 * consumer of the decoder (polygon.pyx, the C tests, the fuzzers) loads its layouts from those
 * tables with ff_pg_load_layout, the one reader of them. */
typedef struct {
    const char *wire;            /* the wire key */
    uint8_t kind;                /* FF_PGK_* (FF_PGK_SYMBOL: the symbol key, FF_PGK_EV: "ev") */
    uint8_t bit;                 /* presence / alt bit */
    uint16_t off, n, n_off, drop_off, alt_off;   /* byte offsets; n: fixstr size or capacity */
} ff_pgfield_desc;

typedef struct {
    const char *name;            /* layout (event class) name */
    uint32_t size;               /* record size */
    const ff_pgfield_desc *fields;
    int nfields;
    const char *const *evs;      /* the wire ev codes of this layout */
    const uint16_t *rtypes;      /* their record types (FF_RT_PG_*) */
    int nev;
} ff_pglayout_desc;

/* Layout `li` of `d` from `ld`, with the template record `tmpl` (ld->size bytes, owned by the
 * caller), and its ev codes in d's ev table.  Per event the record is initialised from tmpl
 * but for its book-level arrays (at most two of them: up to three regions).  0, or -1 when a
 * key cannot be packed, a table is full or the layout does not fit. */
static int ff_pg_load_layout(ff_pg_dec *d, int li, const ff_pglayout_desc *ld,
                             const uint8_t *tmpl)
{
    ff_pg_layout *L;
    uint32_t holes[2][2];
    int nh = 0, j, e;
    uint32_t pos = 0;
    if (li < 0 || li >= FF_PG_MAX_LAYOUTS)
        return -1;
    L = &d->layouts[li];
    L->size = ld->size;
    L->tmpl = tmpl;
    for (j = 0; j < ld->nfields; j++) {
        const ff_pgfield_desc *fd = &ld->fields[j];
        ff_pg_field f;
        memset(&f, 0, sizeof f);
        f.key = ff_pg_pack(fd->wire, strlen(fd->wire));
        f.kind = fd->kind;
        f.bit = fd->bit;
        f.off = fd->off;
        f.n = fd->n;
        f.n_off = fd->n_off;
        f.drop_off = fd->drop_off;
        f.alt_off = fd->alt_off;
        if (f.key == 0 || ff_pg_add_field(L, &f) != 0)
            return -1;
        if (fd->kind == FF_PGK_LEVELS) {
            uint32_t lo = fd->off, hi = fd->off + 16u * fd->n;
            if (nh == 2 || hi > ld->size)
                return -1;
            holes[nh][0] = lo;
            holes[nh][1] = hi;
            nh++;
        }
    }
    if (nh == 2 && holes[1][0] < holes[0][0]) {      /* in offset order */
        uint32_t t0 = holes[0][0], t1 = holes[0][1];
        holes[0][0] = holes[1][0];
        holes[0][1] = holes[1][1];
        holes[1][0] = t0;
        holes[1][1] = t1;
    }
    memset(L->init_off, 0, sizeof L->init_off);
    memset(L->init_len, 0, sizeof L->init_len);
    for (j = 0, e = 0; j < nh; j++) {
        if (holes[j][0] < pos)
            return -1;                               /* overlapping arrays */
        if (holes[j][0] > pos) {
            L->init_off[e] = pos;
            L->init_len[e++] = holes[j][0] - pos;
        }
        pos = holes[j][1];
    }
    if (pos < ld->size) {
        L->init_off[e] = pos;
        L->init_len[e++] = ld->size - pos;
    }
    L->flat = nh == 0;
    for (e = 0; e < ld->nev; e++) {
        uint32_t key = ff_pg_pack(ld->evs[e], strlen(ld->evs[e]));
        if (key == 0 || ff_pg_add_ev(d, key, li, ld->rtypes[e]) != 0)
            return -1;
    }
    return 0;
}

static inline const ff_pg_evslot *ff_pg_find_ev(const ff_pg_dec *d, uint32_t key)
{
    uint32_t h = ff_pg_hash(key);
    for (;;) {
        const ff_pg_evslot *e = &d->evtab[h];
        if (e->key == key)
            return e;
        if (e->key == 0)
            return NULL;
        h = (h + 1) & (FF_PG_HASH_SIZE - 1);
    }
}

static inline void ff_pg_fault(ff_pg_dec *d, int code, const char *buf, const char *at,
                               const char *key, size_t key_n, const char *ev, size_t ev_n)
{
    if (d->err != FF_PGE_OK)
        return;
    d->err = code;
    d->err_off = (size_t)(at - buf);
    d->err_key = key;
    d->err_key_n = key_n;
    d->err_ev = ev;
    d->err_ev_n = ev_n;
}

/* ---------------------------------------------------------------------------------------- */
/* UTF-8 validation (strict, as orjson / Python's decoder: no overlongs, no surrogates).     */

static inline int ff_pg_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            unsigned char c1;
            if (i + 2 >= n)
                return 0;
            c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if (c == 0xE0 && c1 < 0xA0)
                return 0; /* overlong */
            if (c == 0xED && c1 >= 0xA0)
                return 0; /* surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            unsigned char c1;
            if (i + 3 >= n)
                return 0;
            c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && c1 < 0x90)
                return 0;
            if (c == 0xF4 && c1 >= 0x90)
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static inline int ff_pg_ascii(const char *s, size_t n)
{
    size_t i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        acc |= v;
    }
    for (; i < n; i++)
        acc |= (uint8_t)s[i];
    return (acc & 0x8080808080808080ULL) == 0;
}

/* A string value: scan it, unescape if needed into tmp (capacity tmpcap), validate UTF-8.
 * Returns the pointer past the closing quote or NULL (malformed).  *out and *outn give the
 * decoded text; *bad = 1 when the text is not valid UTF-8 / has a lone surrogate escape.
 * When the decoded text would not fit tmp, *big is set to a malloc'ed buffer (caller frees). */
static inline const char *ff_pg_string(const char *p, const char *end, const char **out,
                                       size_t *outn, int *bad, char *tmp, size_t tmpcap,
                                       char **big)
{
    const char *s;
    size_t n;
    int esc;
    p = ff_scan_string(p, end, &s, &n, &esc);
    if (FF_UNLIKELY(p == NULL))
        return NULL;
    *bad = 0;
    if (FF_UNLIKELY(esc)) {
        char *dst = tmp;
        ptrdiff_t m;
        if (n > tmpcap) {
            dst = (char *)malloc(n ? n : 1);
            if (!dst) {
                *bad = 1;
                *out = s;
                *outn = 0;
                return p;
            }
            *big = dst;
        }
        m = ff_unescape(s, n, dst, n);
        if (m < 0) {
            *bad = 1;
            *out = s;
            *outn = 0;
            return p;
        }
        s = dst;
        n = (size_t)m;
    }
    if (FF_UNLIKELY(!ff_pg_ascii(s, n)) && !ff_pg_utf8_ok((const unsigned char *)s, n))
        *bad = 1;
    *out = s;
    *outn = n;
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Numbers                                                                                  */

#define FF_PG_DIGIT(c) ((unsigned)((unsigned char)(c) - '0') < 10u)

/* The same for n = 1..4 digits in the low bytes of w: two multiplies instead of three. */
static FF_ALWAYS_INLINE uint64_t ff_pg_digits_value4(uint64_t w, unsigned n)
{
    uint32_t x = (uint32_t)w << (8 * (4 - n));
    x = (x & 0x0F0F0F0Fu) * 2561 >> 8;
    return ((x & 0x00FF00FFu) * 6553601 >> 16) & 0xFFFFu;
}

static const uint64_t ff_pg_pow10u[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                         100000000};

/* Up to 16 leading digits at q (needs 16 readable bytes).  Returns the digit count (0..16; 16
 * means "16 or more": the caller falls back) and *v their value. */
static FF_ALWAYS_INLINE unsigned ff_pg_digits16(const char *q, uint64_t *v)
{
    uint64_t w;
    unsigned n;
    memcpy(&w, q, 8);
    n = ff_ndigits8(w);
    if (FF_UNLIKELY(n == 0)) {
        *v = 0;
        return 0;
    }
    if (n < 8) {
        /* per field the digit count is steady (ids, sizes, conditions: short), so this
         * branch predicts well */
        *v = n <= 4 ? ff_pg_digits_value4(w, n) : ff_digits_value(w, n);
        return n;
    }
    {
        uint64_t w2, hi = ff_digits_value(w, 8);
        unsigned n2;
        memcpy(&w2, q + 8, 8);
        n2 = ff_ndigits8(w2);
        if (n2 == 0) {
            *v = hi;
            return 8;
        }
        *v = hi * ff_pg_pow10u[n2] + ff_digits_value(w2, n2);
        return 8 + n2;
    }
}

/* A plain non-negative integer of 1..15 digits at v: no leading zero, not followed by '.',
 * 'e' or 'E'.  Needs 16 readable bytes.  The fast path of ff_pg_number and of the lane. */
static FF_ALWAYS_INLINE const char *ff_pg_uint_fast(const char *v, uint64_t *out)
{
    unsigned n = ff_pg_digits16(v, out);
    if (FF_LIKELY(n >= 1 && n <= 15 && !(*v == '0' && n > 1))) {
        char c = v[n];
        if (FF_LIKELY(c != '.' && (c | 0x20) != 'e'))  /* neither '.' nor 'e' / 'E' */
            return v + n;
    }
    return NULL;
}

/* Parse a JSON number; plain integers of up to 15 digits take a SWAR path. */
static FF_ALWAYS_INLINE const char *ff_pg_number(const char *p, const char *end, ff_num *out)
{
    const char *q = p;
    int neg = *q == '-';
    q += neg;
    if (FF_LIKELY(end - q >= 16)) {
        uint64_t v;
        const char *r = ff_pg_uint_fast(q, &v);
        if (FF_LIKELY(r != NULL)) {
            out->kind = FF_NUM_INT;
            out->i = neg ? -(int64_t)v : (int64_t)v;
            out->d = (double)out->i;
            return r;
        }
    }
    return ff_parse_number(p, end, out);
}

#define FF_PG_2P53 9007199254740992LL

/* Fast path for the usual price/size spellings: -?digits(.digits)? with at most 19 digits and
 * no exponent.  When the digit value w < 2^53 and the fraction has <= 22 digits, w and 10^k are
 * exact doubles and one IEEE division is correctly rounded (Clinger), i.e. equal to float(text).
 * Anything else goes through ff_parse_number. */
static FF_ALWAYS_INLINE const char *ff_pg_number_f(const char *p, const char *end, ff_num *out)
{
    const char *q = p;
    int neg;
    uint64_t w, f;
    unsigned n, nf;
    if (!FF_NUM_FAST_PATH || FF_UNLIKELY(end - p < 34))
        return ff_parse_number(p, end, out);
    neg = *q == '-';
    q += neg;
    n = ff_pg_digits16(q, &w);
    if (FF_UNLIKELY(n == 0 || n > 15 || (*q == '0' && n > 1)))
        return ff_parse_number(p, end, out);
    q += n;
    if (*q == '.') {
        nf = ff_pg_digits16(q + 1, &f);
        if (FF_UNLIKELY(nf == 0 || n + nf > 15))
            return ff_parse_number(p, end, out);
        q += 1 + nf;
        if (FF_UNLIKELY(*q == 'e' || *q == 'E'))
            return ff_parse_number(p, end, out);
        w = w * ff__pow10_u64[nf] + f; /* < 10^15 < 2^53: exact; 10^nf exact too */
        {
            double d = (double)w / ff__pow10_tab[nf];
            out->kind = FF_NUM_FLOAT;
            out->d = neg ? -d : d;
            out->i = 0;
        }
        return q;
    }
    if (FF_UNLIKELY(*q == 'e' || *q == 'E'))
        return ff_parse_number(p, end, out);
    out->kind = FF_NUM_INT;
    out->i = neg ? -(int64_t)w : (int64_t)w;
    out->d = (double)out->i;
    return q;
}

/* ---------------------------------------------------------------------------------------- */
/* Values                                                                                   */

/* Result of a value parse: the pointer past the value, or NULL when the JSON is malformed.
 * *bad: 0 ok, FF_PGE_WRONG_TYPE or FF_PGE_BAD_STRING (the value was skipped). */

static inline const char *ff_pg_skip_bad(const char *v, const char *end, int *bad, int code)
{
    const char *p = ff_skip_value(v, end);
    if (p != NULL)
        *bad = code;
    return p;
}

static inline void ff_pg_setbit(char *rec, int bit, int on)
{
    uint64_t m = (uint64_t)1 << bit;
    uint64_t *alt = (uint64_t *)(rec + 24);
    *alt = on ? (*alt | m) : (*alt & ~m);
}

/* Append one piece of the event in hand to its ring's spill log; *off = the piece's data offset
 * in the event's spill range.  0, or -1 when the log cannot hold it. */
static FF_NOINLINE int ff_pg_spill(ff_pg_dec *d, const char *rec, int tag, int prefix,
                                   const char *s, size_t n, uint32_t *off)
{
    ff_ring *ring = d->rings[((const ff_header *)rec)->rtype];  /* the record's own ring */
    ff_spill *sp = &ring->spill;
    int fail = 0;
    uint32_t pos;
    if (!d->sp_on) {
        ff_ring_spill_reclaim(ring);
        d->sp_start = sp->head;
        d->sp_on = 1;
    }
    pos = ff_spill_piece(sp, tag, prefix, s, n, &fail);
    if (fail)
        return -1;
    *off = pos - d->sp_start;
    return 0;
}

/* A list longer than its inline slot (v .. q: its raw JSON text): kept whole in the spill log
 * (FF_SPILL_RAW, alt bit 32 + bit).  0 or a fault code. */
static inline int ff_pg_spill_list(ff_pg_dec *d, const ff_pg_field *f, char *rec, const char *v,
                                   const char *q)
{
    uint32_t off;
    if (ff_pg_spill(d, rec, FF_SPILL_RAW, f->bit, v, (size_t)(q - v), &off) != 0)
        return FF_PGE_SPILL;
    *(uint64_t *)(rec + 24) |= (uint64_t)1 << (32 + f->bit);
    return 0;
}

/* Store a string value in a fixstr slot: inline when it fits and has no NUL byte, else whole in
 * the spill log (the slot then holds offset and length; alt bit 32 + bit).  0 or a fault code. */
static inline int ff_pg_fixstr_set(ff_pg_dec *d, const ff_pg_field *f, char *rec, const char *s,
                                   size_t n, int may_nul)
{
    char *dst = rec + f->off;
    uint64_t sbit = (uint64_t)1 << (32 + f->bit);
    if (FF_UNLIKELY(n > f->n) || (FF_UNLIKELY(may_nul) && memchr(s, 0, n) != NULL)) {
        uint32_t ref[2];
        if (ff_pg_spill(d, rec, FF_SPILL_STR, -1, s, n, &ref[0]) != 0)
            return FF_PGE_SPILL;
        ref[1] = (uint32_t)n;
        memset(dst, 0, f->n);
        memcpy(dst, ref, 8);
        *(uint64_t *)(rec + 24) |= sbit;
        d->n_spilled_str++;
        return 0;
    }
    memcpy(dst, s, n);
    if (n < f->n)
        memset(dst + n, 0, f->n - n);
    *(uint64_t *)(rec + 24) &= ~sbit;
    return 0;
}

/* After a list item: skip white space, then ',' (another item follows: *more = 1, returns the
 * next item's start) or ']' (the list ends: *more = 0, returns the position after it); NULL when
 * the input is malformed or ends. Shared by every array parser (conditions, indicators, books). */
static FF_ALWAYS_INLINE const char *ff_pg_list_sep(const char *q, const char *end, int *more)
{
    q = ff_skip_ws(q, end);
    if (FF_UNLIKELY(q >= end))
        return NULL;
    if (*q == ',') {
        *more = 1;
        return ff_skip_ws(q + 1, end);
    }
    if (*q == ']') {
        *more = 0;
        return q + 1;
    }
    return NULL;
}

/* Symbol id of s[0..n) (n <= 8) whose bytes, zero padded, are the word w: the symbol cache,
 * else the wrapper's intern callback (whose id is then cached; 0 = failure, not cached). */
static FF_ALWAYS_INLINE uint32_t ff_pg_symcache(ff_pg_dec *d, uint64_t w, const char *s, size_t n)
{
    uint32_t h = (uint32_t)(((w ^ (w >> 29)) * 0x9E3779B97F4A7C15ULL) >> 40) ^ (uint32_t)n;
    ff_pg_symslot *c = &d->symcache[h & (FF_PG_SYMCACHE - 1)];
    uint32_t id;
    if (FF_LIKELY(c->w == w && c->n == (uint32_t)n + 1))
        return c->id;
    id = d->intern(d->ctx, s, n);
    if (id) {
        c->w = w;
        c->n = (uint32_t)n + 1;
        c->id = id;
    }
    return id;
}

static FF_ALWAYS_INLINE uint32_t ff_pg_intern(ff_pg_dec *d, const char *s, size_t n, const char *end)
{
    if (n <= 8) {
        uint64_t w = 0;
        if (FF_LIKELY(end - s >= 8)) {
            memcpy(&w, s, 8);
            w &= n == 8 ? ~0ULL : ((1ULL << (8 * n)) - 1);
        } else {
            memcpy(&w, s, n);
        }
        return ff_pg_symcache(d, w, s, n);
    }
    return d->intern(d->ctx, s, n);
}

/* A plain ASCII symbol of 0..7 bytes at v (at '"', 9 readable bytes): its id through the
 * symbol cache, from the same 8-byte load that finds the closing quote.  Returns past the
 * string, or NULL (the caller takes the general path). */
static FF_ALWAYS_INLINE const char *ff_pg_symbol_fast(ff_pg_dec *d, const char *v, uint32_t *id)
{
    uint64_t w, sp, m, sw;
    unsigned n;
    memcpy(&w, v + 1, 8);
    sp = ff__str_special(w);
    if (FF_UNLIKELY(sp == 0))
        return NULL;
    n = (unsigned)__builtin_ctzll(sp) >> 3;  /* the first special byte: exact */
    m = (1ULL << (8 * n)) - 1;
    sw = w & m;
    if (FF_UNLIKELY((uint8_t)(w >> (8 * n)) != '"' || (sw & 0x8080808080808080ULL)))
        return NULL;
    *id = ff_pg_symcache(d, sw, v + 1, n);
    return v + n + 2;
}

/* Book levels from q on (at a level, or at the list's ']' when cnt == 0), cnt levels already
 * stored from the list that starts at p (its '['): any spelling, white space anywhere, levels
 * beyond the inline capacity counted and the whole list kept in the spill log.  Stores the
 * count, the dropped count and the alt bit; returns past the list, or NULL (malformed), *bad
 * set for a wrong value type. */
static FF_NOINLINE const char *ff_pg_levels_rest(ff_pg_dec *d, const ff_pg_field *f, char *rec,
                                                 const char *p, const char *q, const char *end,
                                                 unsigned cnt, int *bad)
{
    double *lv = (double *)(rec + f->off);
    uint8_t *flags = (uint8_t *)(rec + f->alt_off);
    uint64_t dropped = 0;
    ff_num num;
    q = ff_skip_ws(q, end);
    if (cnt == 0 && q < end && *q == ']') {
        q++;
    } else {
        int more;
        for (;;) {
            double v[2];
            int isint[2];
            int j;
            if (FF_UNLIKELY(q >= end || *q != '['))
                return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
            q++;
            for (j = 0; j < 2; j++) {
                q = ff_skip_ws(q, end);
                if (FF_UNLIKELY(q >= end || (*q != '-' && !FF_PG_DIGIT(*q))))
                    return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
                q = ff_pg_number_f(q, end, &num);
                if (FF_UNLIKELY(q == NULL))
                    return NULL;
                if (num.kind == FF_NUM_FLOAT) {
                    v[j] = num.d;
                    isint[j] = 0;
                } else if (num.kind == FF_NUM_INT && num.i <= FF_PG_2P53 &&
                           num.i >= -FF_PG_2P53) {
                    v[j] = (double)num.i;
                    isint[j] = 1;
                } else {
                    return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
                }
                q = ff_skip_ws(q, end);
                if (FF_UNLIKELY(q >= end))
                    return NULL;
                if (j == 0 && *q != ',')
                    return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
                if (j == 1 && *q != ']')
                    return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
                q++;
            }
            if (cnt < f->n) {
                lv[2 * cnt] = v[0];
                lv[2 * cnt + 1] = v[1];
                flags[cnt] = (uint8_t)(isint[0] | (isint[1] << 1));
                cnt++;
            } else {
                dropped++;
            }
            q = ff_pg_list_sep(q, end, &more);
            if (FF_UNLIKELY(q == NULL))
                return NULL;
            if (more)
                continue;
            break;
        }
    }
    *(uint64_t *)(rec + 24) &= ~((uint64_t)1 << (32 + f->bit));
    if (dropped) {
        int b2 = ff_pg_spill_list(d, f, rec, p, q);
        if (b2)
            *bad = b2;
    }
    d->n_dropped_items += dropped;
    if (dropped > 65535)
        dropped = 65535;
    *(uint16_t *)(rec + f->n_off) = (uint16_t)cnt;
    *(uint16_t *)(rec + f->drop_off) = (uint16_t)dropped;
    return q;
}

/* The book-level lane: [[p,s],[p,s],...] located by its brackets and commas first (one bit
 * per byte over the 48 bytes from each level's '['), so that a level's two numbers are parsed
 * from known bounds, with no branch on the data but the checks.  Every byte between two of
 * these delimiters must belong to a number that ff_pg_lv_mant (or ff_pg_lv_num_slow) accepts,
 * so anything else -- white space, other values -- stops the lane at that level's start, and
 * ff_pg_levels_rest goes on from there. */

#if !defined(__SSE2__)
/* High bit of every byte of w equal to c (exact: no borrow between bytes). */
static FF_ALWAYS_INLINE uint64_t ff_pg_eq8(uint64_t w, uint8_t c)
{
    uint64_t x = w ^ (0x0101010101010101ULL * c);
    return ~(((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | x) & 0x8080808080808080ULL;
}
#endif

#define FF_PG_LV_WIN 48   /* bytes scanned per level: the longest level the lane takes */

/* Bit i set when byte i of p[0..FF_PG_LV_WIN) is '[', ']' or ',' (*delims), '.' (*dots). */
static FF_ALWAYS_INLINE void ff_pg_lv_masks(const char *p, uint64_t *delims, uint64_t *dots)
{
    uint64_t dm = 0, pm = 0;
    int i;
#if defined(__SSE2__)
    const __m128i lb = _mm_set1_epi8('['), rb = _mm_set1_epi8(']'), cm = _mm_set1_epi8(',');
    const __m128i dt = _mm_set1_epi8('.');
    for (i = 0; i < FF_PG_LV_WIN / 16; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
        __m128i e = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, lb), _mm_cmpeq_epi8(x, rb)),
                                 _mm_cmpeq_epi8(x, cm));
        dm |= (uint64_t)(uint16_t)_mm_movemask_epi8(e) << (16 * i);
        pm |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, dt)) << (16 * i);
    }
#else
    for (i = 0; i < FF_PG_LV_WIN / 8; i++) {
        uint64_t w, e, t;
        memcpy(&w, p + 8 * i, 8);
        e = ff_pg_eq8(w, '[') | ff_pg_eq8(w, ']') | ff_pg_eq8(w, ',');
        t = ff_pg_eq8(w, '.');
        /* the high bit of byte j -> bit j */
        dm |= (((e >> 7) * 0x0102040810204080ULL) >> 56) << (8 * i);
        pm |= (((t >> 7) * 0x0102040810204080ULL) >> 56) << (8 * i);
    }
#endif
    *delims = dm;
    *dots = pm;
}

/* A level number s[0..len) (len >= 0), *dots = the dot bits from s on: d{1,8}(.d{1,8})? with
 * at most 15 digits and no leading zero -- ff_f64_short's arithmetic (Clinger: the value
 * float(text) gives is *m / 10^*nf, one exact division, done by the caller; *nf == 0: an
 * integer, divided by 1).  1, or 0 for any other spelling. */
static FF_ALWAYS_INLINE int ff_pg_lv_mant(const char *s, unsigned len, uint64_t dots, uint64_t *m,
                                          unsigned *nf)
{
    uint64_t w, w2;
    unsigned a, f;
    if (!FF_NUM_FAST_PATH || FF_UNLIKELY(len - 1u >= 16u))
        return 0;
    memcpy(&w, s, 8);
    a = dots ? (unsigned)__builtin_ctzll(dots) : 64u;
    if (a >= len) {
        if (FF_UNLIKELY(len > 8 || ff_ndigits8(w) < len || ((uint8_t)w == '0' && len > 1)))
            return 0;
        *m = ff_digits_value(w, len);
        *nf = 0;
        return 1;
    }
    f = len - a - 1;
    if (FF_UNLIKELY(a == 0 || f == 0 || a > 8 || f > 8 || a + f > 15 ||
                    ff_ndigits8(w) < a || ((uint8_t)w == '0' && a > 1)))
        return 0;
    memcpy(&w2, s + a + 1, 8);
    if (FF_UNLIKELY(ff_ndigits8(w2) < f))
        return 0;
    *m = ff_digits_value(w, a) * ff__pow10_u64[f] + ff_digits_value(w2, f);
    *nf = f;
    return 1;
}

/* Any other level number (e.g. a sign or an exponent) that ends exactly at e: the general
 * number parser on the number's own bytes.  1, or 0 when the text is not one such number. */
static FF_NOINLINE int ff_pg_lv_num_slow(const char *s, const char *e, double *out, int *isint)
{
    ff_num num;
    if (s >= e || (*s != '-' && !FF_PG_DIGIT(*s)) || ff_parse_number(s, e, &num) != e)
        return 0;
    if (num.kind == FF_NUM_FLOAT) {
        *out = num.d;
        *isint = 0;
        return 1;
    }
    if (num.kind == FF_NUM_INT && num.i <= FF_PG_2P53 && num.i >= -FF_PG_2P53) {
        *out = (double)num.i;
        *isint = 1;
        return 1;
    }
    return 0;
}

/* The lane from v (at the list's '['; lim bounds the reads, see ff_pg_decode).  Returns past
 * the list's ']' with *done = 1, or the start of the first level it did not take (*done = 0);
 * *cnt = the levels stored (at most cap). */
static FF_ALWAYS_INLINE const char *ff_pg_levels_lane(const char *v, const char *lim, double *lv,
                                                      uint8_t *flags, unsigned cap,
                                                      unsigned *cnt, int *done)
{
    const char *q = v + 1;     /* the next level's '[' (or the list's ']') */
    unsigned k = 0;
    *done = 0;
    if (FF_UNLIKELY(q >= lim))
        goto stop;
    if (*q == ']') {
        *done = 1;
        q++;
        goto stop;
    }
    for (;;) {
        uint64_t dm, pm, m1, m2, m3, n0 = 0, n1 = 0;
        unsigned b1, b2, b3, e0 = 0, e1 = 0;
        int i0, i1, f0, f1;
        /* the level's delimiters: its '[' at bit 0, then ',' ']' and the separator */
        if (FF_UNLIKELY(k >= cap || lim - q < FF_PG_LV_WIN + 16))
            goto stop;
        ff_pg_lv_masks(q, &dm, &pm);
        m1 = dm & (dm - 1);
        m2 = m1 & (m1 - 1);
        m3 = m2 & (m2 - 1);
        if (FF_UNLIKELY(!(dm & 1) || m3 == 0 || *q != '['))
            goto stop;
        b1 = (unsigned)__builtin_ctzll(m1);
        b2 = (unsigned)__builtin_ctzll(m2);
        b3 = (unsigned)__builtin_ctzll(m3);
        if (FF_UNLIKELY(q[b1] != ',' || q[b2] != ']' || b3 != b2 + 1))
            goto stop;
        f0 = ff_pg_lv_mant(q + 1, b1 - 1, pm >> 1, &n0, &e0);
        f1 = ff_pg_lv_mant(q + b1 + 1, b2 - b1 - 1, pm >> (b1 + 1), &n1, &e1);
        if (FF_LIKELY(f0 & f1)) {
            /* both m < 2^53: exact conversions, then price and size in one division (two
             * IEEE divisions, each rounded as the scalar one) */
#if defined(__SSE2__)
            _mm_storeu_pd(&lv[2 * k], _mm_div_pd(_mm_set_pd((double)(int64_t)n1,
                                                            (double)(int64_t)n0),
                                                 _mm_set_pd(ff__pow10_tab[e1],
                                                            ff__pow10_tab[e0])));
#else
            lv[2 * k] = (double)(int64_t)n0 / ff__pow10_tab[e0];
            lv[2 * k + 1] = (double)(int64_t)n1 / ff__pow10_tab[e1];
#endif
            i0 = e0 == 0;
            i1 = e1 == 0;
        } else {
            if (f0) {
                lv[2 * k] = (double)(int64_t)n0 / ff__pow10_tab[e0];
                i0 = e0 == 0;
            } else if (FF_UNLIKELY(!ff_pg_lv_num_slow(q + 1, q + b1, &lv[2 * k], &i0))) {
                goto stop;
            }
            if (f1) {
                lv[2 * k + 1] = (double)(int64_t)n1 / ff__pow10_tab[e1];
                i1 = e1 == 0;
            } else if (FF_UNLIKELY(!ff_pg_lv_num_slow(q + b1 + 1, q + b2, &lv[2 * k + 1], &i1))) {
                goto stop;
            }
        }
        flags[k] = (uint8_t)(i0 | (i1 << 1));
        k++;
        if (FF_LIKELY(q[b3] == ',')) {
            q += b3 + 1;
            continue;
        }
        /* ']': the end of the list */
        q += b3 + 1;
        *done = 1;
        break;
    }
stop:
    *cnt = k;
    return q;
}

/* A book-levels value at p (at '['; lim >= end bounds the lane's reads): the lane, then the
 * general parser from the first level the lane did not take.  Same contract as ff_pg_value. */
static FF_ALWAYS_INLINE const char *ff_pg_levels_value(ff_pg_dec *d, const ff_pg_field *f,
                                                       char *rec, const char *p,
                                                       const char *end, const char *lim, int *bad)
{
    unsigned cnt;
    int done;
    const char *q;
    if (FF_UNLIKELY(*p != '['))
        return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
    q = ff_pg_levels_lane(p, lim, (double *)(rec + f->off), (uint8_t *)(rec + f->alt_off), f->n,
                          &cnt, &done);
    if (FF_LIKELY(done)) {
        *(uint16_t *)(rec + f->n_off) = (uint16_t)cnt;
        *(uint16_t *)(rec + f->drop_off) = 0;
        *(uint64_t *)(rec + 24) &= ~((uint64_t)1 << (32 + f->bit));
        return q;
    }
    return ff_pg_levels_rest(d, f, rec, p, q, end, cnt, bad);
}

/* ff_pg_levels_value built for the baseline and for x86-64-v3 (compat.h's runtime dispatch;
 * ff_pg_decode_body calls the one of its own build). */
static FF_NOINLINE const char *ff_pg_levels_value_base(ff_pg_dec *d, const ff_pg_field *f,
                                                       char *rec, const char *p,
                                                       const char *end, const char *lim, int *bad)
{
    return ff_pg_levels_value(d, f, rec, p, end, lim, bad);
}

FF_TARGET_V3
static FF_NOINLINE const char *ff_pg_levels_value_v3(ff_pg_dec *d, const ff_pg_field *f,
                                                     char *rec, const char *p,
                                                     const char *end, const char *lim, int *bad)
{
    return ff_pg_levels_value(d, f, rec, p, end, lim, bad);
}

static FF_NOINLINE const char *ff_pg_value(ff_pg_dec *d, const ff_pg_field *f, char *rec,
                                           const char *p, const char *end, int *bad)
{
    ff_num num;
    const char *q;
    char c = *p; /* caller guarantees p < end */
    switch (f->kind) {
    case FF_PGK_F64:
        if (FF_UNLIKELY(c != '-' && !FF_PG_DIGIT(c)))
            return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
        q = ff_pg_number_f(p, end, &num);
        if (FF_UNLIKELY(q == NULL))
            return NULL;
        if (num.kind == FF_NUM_FLOAT) {
            *(double *)(rec + f->off) = num.d;
            ff_pg_setbit(rec, f->bit, 0);
        } else if (num.kind == FF_NUM_INT && num.i <= FF_PG_2P53 && num.i >= -FF_PG_2P53) {
            *(double *)(rec + f->off) = (double)num.i;
            ff_pg_setbit(rec, f->bit, 1);
        } else {
            *bad = FF_PGE_WRONG_TYPE; /* integer not exactly representable as a double */
        }
        return q;
    case FF_PGK_I64S:
        if (c == '"') {
            const char *s;
            size_t n;
            int esc;
            q = ff_scan_string(p, end, &s, &n, &esc);
            if (FF_UNLIKELY(q == NULL))
                return NULL;
            /* canonical decimal only, so str(int) reproduces the wire text */
            {
                const char *e2 = s + n;
                const char *r;
                if (esc || n == 0 || n > 20 || (s[0] == '-' && (n == 1 || s[1] == '0')) ||
                    (s[0] == '0' && n > 1)) {
                    *bad = FF_PGE_WRONG_TYPE;
                    return q;
                }
                r = ff_pg_number(s, e2, &num);
                if (r != e2 || num.kind != FF_NUM_INT || (num.i == 0 && s[0] == '-')) {
                    *bad = FF_PGE_WRONG_TYPE;
                    return q;
                }
                *(int64_t *)(rec + f->off) = num.i;
                ff_pg_setbit(rec, f->bit, 1);
            }
            return q;
        }
        /* fall through -- a number */
    case FF_PGK_I64:
        if (FF_UNLIKELY(c != '-' && !FF_PG_DIGIT(c)))
            return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
        q = ff_pg_number(p, end, &num);
        if (FF_UNLIKELY(q == NULL))
            return NULL;
        if (FF_LIKELY(num.kind == FF_NUM_INT)) {
            *(int64_t *)(rec + f->off) = num.i;
            ff_pg_setbit(rec, f->bit, 0);
        } else if (num.kind == FF_NUM_FLOAT && f->kind == FF_PGK_I64 && num.d == floor(num.d) &&
                   num.d >= -9223372036854775808.0 && num.d < 9223372036854775808.0 &&
                   !(num.d == 0.0 && signbit(num.d))) {
            *(int64_t *)(rec + f->off) = (int64_t)num.d;
            ff_pg_setbit(rec, f->bit, 1);
        } else {
            *bad = FF_PGE_WRONG_TYPE;
        }
        return q;
    case FF_PGK_BOOL:
        if (c == 't' && (q = ff_match_lit(p, end, "true", 4)) != NULL) {
            *(uint8_t *)(rec + f->off) = 1;
            return q;
        }
        if (c == 'f' && (q = ff_match_lit(p, end, "false", 5)) != NULL) {
            *(uint8_t *)(rec + f->off) = 0;
            return q;
        }
        return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
    case FF_PGK_FIXSTRI:
        if (c == '-' || FF_PG_DIGIT(c)) {
            q = ff_pg_number(p, end, &num);
            if (FF_UNLIKELY(q == NULL))
                return NULL;
            /* any JSON integer (beyond int64 too: the digits are kept as text) */
            if ((num.kind != FF_NUM_INT && num.kind != FF_NUM_BIGINT) ||
                (num.kind == FF_NUM_INT && num.i == 0 && c == '-')) {
                *bad = FF_PGE_WRONG_TYPE;
                return q;
            }
            {
                int b2 = ff_pg_fixstr_set(d, f, rec, p, (size_t)(q - p), 0);
                if (b2)
                    *bad = b2;
            }
            ff_pg_setbit(rec, f->bit, 1);
            return q;
        }
        /* fall through -- a string */
    case FF_PGK_FIXSTR:
    case FF_PGK_SYMBOL: {
        const char *s;
        size_t n;
        int sbad;
        char tmp[256];
        char *big = NULL;
        if (FF_UNLIKELY(c != '"'))
            return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
        q = ff_pg_string(p, end, &s, &n, &sbad, tmp, sizeof tmp, &big);
        if (FF_UNLIKELY(q == NULL))
            return NULL;
        if (FF_UNLIKELY(sbad)) {
            *bad = FF_PGE_BAD_STRING;
        } else if (f->kind == FF_PGK_SYMBOL) {
            uint32_t id = ff_pg_intern(d, s, n, s + n);
            ((ff_header *)rec)->symbol_id = id;
            if (FF_UNLIKELY(id == 0)) {
                *bad = FF_PGE_SYMTAB_FULL;
                d->n_symtab_full++;
            }
        } else {
            /* only unescaped text (in tmp / big) can contain a NUL byte */
            int unescaped = big != NULL || (s >= tmp && s < tmp + sizeof tmp);
            int b2 = ff_pg_fixstr_set(d, f, rec, s, n, unescaped);
            if (b2)
                *bad = b2;
            ff_pg_setbit(rec, f->bit, 0);
        }
        free(big);
        return q;
    }
    case FF_PGK_I32ARR: {
        int32_t *arr = (int32_t *)(rec + f->off);
        unsigned cnt = 0, dropped = 0;
        if (FF_UNLIKELY(c != '['))
            return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
        q = ff_skip_ws(p + 1, end);
        if (q < end && *q == ']') {
            q++;
        } else {
            int more;
            for (;;) {
                if (FF_UNLIKELY(q >= end || (*q != '-' && !FF_PG_DIGIT(*q))))
                    return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
                q = ff_pg_number(q, end, &num);
                if (FF_UNLIKELY(q == NULL))
                    return NULL;
                if (num.kind != FF_NUM_INT || num.i < INT32_MIN || num.i > INT32_MAX)
                    return ff_pg_skip_bad(p, end, bad, FF_PGE_WRONG_TYPE);
                if (cnt < f->n)
                    arr[cnt++] = (int32_t)num.i;
                else
                    dropped++;
                q = ff_pg_list_sep(q, end, &more);
                if (FF_UNLIKELY(q == NULL))
                    return NULL;
                if (more)
                    continue;
                break;
            }
        }
        *(uint64_t *)(rec + 24) &= ~((uint64_t)1 << (32 + f->bit));
        if (dropped) {
            int b2 = ff_pg_spill_list(d, f, rec, p, q);
            if (b2)
                *bad = b2;
            d->n_dropped_items += dropped;
            if (dropped > 255)
                dropped = 255;
        }
        *(uint8_t *)(rec + f->n_off) = (uint8_t)cnt;
        *(uint8_t *)(rec + f->drop_off) = (uint8_t)dropped;
        return q;
    }
    case FF_PGK_LEVELS:
        return ff_pg_levels_value_base(d, f, rec, p, end, end, bad);
    default:
        return ff_skip_value(p, end);
    }
}

/* A short plain ASCII string at p (at '"'): the closing quote within the next 16 bytes, no
 * backslash, control or non-ASCII byte before it.  Returns past the quote and sets *s,*n, or
 * NULL: the caller takes the general path. */
static FF_ALWAYS_INLINE const char *ff_pg_short_str(const char *p, const char *end,
                                                    const char **s, size_t *n)
{
    uint64_t w, sp, hi;
    unsigned i, base = 0;
    if (FF_UNLIKELY(end - p < 17))
        return NULL;
    memcpy(&w, p + 1, 8);
    sp = ff__str_special(w);
    if (!sp) {
        if (w & 0x8080808080808080ULL)
            return NULL;
        memcpy(&w, p + 9, 8);
        sp = ff__str_special(w);
        if (!sp)
            return NULL;
        base = 8;
    }
    i = (unsigned)__builtin_ctzll(sp) >> 3;
    hi = w & 0x8080808080808080ULL;
    if ((uint8_t)(w >> (8 * i)) != '"' || (i && (hi & ((1ULL << (8 * i)) - 1))))
        return NULL;
    *s = p + 1;
    *n = base + i;
    return p + 2 + base + i;
}

/* Fast scanners shared by the key loop's fast lane and ff_pg_value_fast.  Each accepts only
 * the common spellings and returns NULL for anything else (the caller takes the general path,
 * which gives the same result for these spellings). */

/* "digits" (canonical, 1..15 digits) at v (at '"'): the id spelling of trades.  Needs 17
 * readable bytes. */
static FF_ALWAYS_INLINE const char *ff_pg_uint_str_fast(const char *v, uint64_t *out)
{
    unsigned n = ff_pg_digits16(v + 1, out);
    if (n >= 1 && n <= 15 && v[1 + n] == '"' && !(v[1] == '0' && n > 1))
        return v + n + 2;
    return NULL;
}

/* [d{1,7}(,d{1,7})*] with no whitespace and no more items than cap.  Returns past ']' with
 * *cnt items stored, or NULL. */
static FF_ALWAYS_INLINE const char *ff_pg_i32arr_fast(const char *v, const char *end,
                                                      int32_t *arr, unsigned cap,
                                                      unsigned *cnt)
{
    const char *q = v + 1;
    unsigned k = 0;
    while (FF_LIKELY(end - q >= 16 && k < cap)) {
        uint64_t w;
        unsigned n;
        uint8_t c;
        memcpy(&w, q, 8);
        n = ff_ndigits8(w);
        if (FF_UNLIKELY(n < 1 || n > 7 || ((uint8_t)w == '0' && n > 1)))
            return NULL;
        c = (uint8_t)(w >> (8 * n));
        arr[k++] = (int32_t)ff_digits_value(w, n);
        q += n + 1;
        if (c == ',')
            continue;
        if (FF_LIKELY(c == ']')) {
            *cnt = k;
            return q;
        }
        return NULL;
    }
    return NULL;
}

/* The common cases (a plain number into an f64 / i64 slot) inline, the rest out of line. */
static FF_ALWAYS_INLINE const char *ff_pg_value_fast(ff_pg_dec *d, const ff_pg_field *f,
                                                     char *rec, const char *p, const char *end,
                                                     int *bad, uint64_t *alt)
{
    ff_num num;
    const char *q;
    /* the fast scanners need no separate first-byte check: a digit count >= 1 implies it */
    if (f->kind == FF_PGK_I64) {
        if (FF_LIKELY(end - p >= 16)) {
            uint64_t x;
            q = ff_pg_uint_fast(p, &x);
            if (FF_LIKELY(q != NULL)) {
                *(int64_t *)(rec + f->off) = (int64_t)x;
                *alt &= ~f->mask;
                return q;
            }
        }
        if (*p == '-' || FF_PG_DIGIT(*p)) {
            q = ff_pg_number(p, end, &num);
            if (FF_LIKELY(q != NULL && num.kind == FF_NUM_INT)) {
                *(int64_t *)(rec + f->off) = num.i;
                *alt &= ~f->mask;
                return q;
            }
        }
    } else if (f->kind == FF_PGK_F64) {
        if (FF_LIKELY(end - p >= 16)) {
            double x;
            int isint;
            q = ff_f64_short(p, &x, &isint);
            if (FF_LIKELY(q != NULL)) {
                *(double *)(rec + f->off) = x;
                *alt = isint ? (*alt | f->mask) : (*alt & ~f->mask);
                return q;
            }
        }
        if (*p == '-' || FF_PG_DIGIT(*p)) {
            q = ff_pg_number_f(p, end, &num);
            if (FF_LIKELY(q != NULL && num.kind == FF_NUM_FLOAT)) {
                *(double *)(rec + f->off) = num.d;
                *alt &= ~f->mask;
                return q;
            }
            if (q != NULL && num.kind == FF_NUM_INT && num.i <= FF_PG_2P53 && num.i >= -FF_PG_2P53) {
                *(double *)(rec + f->off) = (double)num.i;
                *alt |= f->mask;
                return q;
            }
        }
    } else if (f->kind == FF_PGK_I64S && *p == '"') {
        if (FF_LIKELY(end - p >= 17)) {
            uint64_t x;
            q = ff_pg_uint_str_fast(p, &x);
            if (FF_LIKELY(q != NULL)) {
                *(int64_t *)(rec + f->off) = (int64_t)x;
                *alt |= f->mask;
                return q;
            }
        }
    } else if (f->kind == FF_PGK_I32ARR && *p == '[') {
        /* anything but the plain short list (re)starts on the general path */
        unsigned cnt;
        q = ff_pg_i32arr_fast(p, end, (int32_t *)(rec + f->off), f->n, &cnt);
        if (FF_LIKELY(q != NULL)) {
            *(uint8_t *)(rec + f->n_off) = (uint8_t)cnt;
            *(uint8_t *)(rec + f->drop_off) = 0;
            *alt &= ~(f->mask << 32);
            return q;
        }
    } else if ((f->kind == FF_PGK_SYMBOL || f->kind == FF_PGK_FIXSTR) && *p == '"') {
        const char *sv;
        size_t n;
        int esc = 0;
        q = ff_pg_short_str(p, end, &sv, &n);
        if (q == NULL) {
            q = ff_scan_string(p, end, &sv, &n, &esc);
            esc = esc || (q != NULL && !ff_pg_ascii(sv, n));
        }
        if (FF_LIKELY(q != NULL && !esc)) {
            if (f->kind == FF_PGK_SYMBOL) {
                uint32_t id = ff_pg_intern(d, sv, n, end);
                ((ff_header *)rec)->symbol_id = id;
                if (FF_UNLIKELY(id == 0)) {
                    *bad = FF_PGE_SYMTAB_FULL;
                    d->n_symtab_full++;
                }
                return q;
            }
            if (FF_LIKELY(n <= f->n)) {
                char *dst = rec + f->off;
                if (f->n == 32) {
                    memset(dst, 0, 32);
                    memcpy(dst, sv, n);
                } else {
                    memcpy(dst, sv, n);
                    memset(dst + n, 0, f->n - n);
                }
                *alt &= ~(f->mask | (f->mask << 32));
                return q;
            }
        }
    }
    /* the general path keeps the alt bits in the record */
    *(uint64_t *)(rec + 24) = *alt;
    q = ff_pg_value(d, f, rec, p, end, bad);
    *alt = *(uint64_t *)(rec + 24);
    return q;
}

/* ---------------------------------------------------------------------------------------- */
/* Objects                                                                                  */

/* Key at p (at '"').  Returns the pointer past the ':' and its value's leading whitespace,
 * or NULL.  *key = packed key (0 when longer than 4 bytes / unknown), *ks,*kn = raw key. */
/* General path of a key or an ev value: the string at p (at '"'), unescaped when needed, as a
 * packed code (0 when longer than 4 bytes or invalid); *status = 1 when it reads "status".
 * Returns past the string (*s,*n = its raw content) or NULL when malformed. */
static inline const char *ff_pg_string_code(const char *p, const char *end, const char **s,
                                            size_t *n, uint32_t *code, int *status)
{
    int esc;
    *code = 0;
    *status = 0;
    p = ff_scan_string(p, end, s, n, &esc);
    if (FF_UNLIKELY(p == NULL))
        return NULL;
    if (FF_UNLIKELY(esc)) {
        char tmp[16];
        ptrdiff_t m = *n <= 96 ? ff_unescape(*s, *n, tmp, sizeof tmp) : -1;
        if (m == 6 && memcmp(tmp, "status", 6) == 0)
            *status = 1;
        else if (m > 0)
            *code = ff_pg_pack(tmp, (size_t)m);
    } else if (*n == 6 && memcmp(*s, "status", 6) == 0) {
        *status = 1;
    } else {
        *code = ff_pg_pack(*s, *n);
    }
    return p;
}

static FF_ALWAYS_INLINE const char *ff_pg_key(const char *p, const char *end, uint32_t *key,
                                              const char **ks, size_t *kn)
{
    const char *s;
    size_t n;
    int status;  /* a key "status" packs to 0 like any key longer than 4 bytes */
    /* fast path: short plain key "x": -- the first special byte (quote, backslash, control)
     * of the 8 bytes after the opening quote is the closing quote at index 1..4 */
    if (FF_LIKELY(end - p >= 9)) {
        uint64_t w, sp;
        memcpy(&w, p + 1, 8);
        sp = ff__str_special(w);
        if (FF_LIKELY(sp != 0)) {
            unsigned i = (unsigned)__builtin_ctzll(sp) >> 3;
            if (FF_LIKELY(i >= 1 && i <= 4 && (uint8_t)(w >> (8 * i)) == '"')) {
                *key = (uint32_t)(w & ((i == 4) ? 0xFFFFFFFFULL : ((1ULL << (8 * i)) - 1)));
                *ks = p + 1;
                *kn = i;
                p += i + 2;
                goto colon;
            }
        }
    }

    p = ff_pg_string_code(p, end, &s, &n, key, &status);
    if (FF_UNLIKELY(p == NULL))
        return NULL;
    *ks = s;
    *kn = n;
colon:
    if (FF_LIKELY(p < end && *p == ':'))
        p++;
    else {
        p = ff_skip_ws(p, end);
        if (FF_UNLIKELY(p >= end || *p != ':'))
            return NULL;
        p++;
    }
    if (FF_UNLIKELY(p < end && (unsigned char)*p <= ' '))
        p = ff_skip_ws(p, end);
    if (FF_UNLIKELY(p >= end))
        return NULL;
    return p;
}

#define FF_PG_KEY_EV ((uint32_t)('e' | ('v' << 8)))

/* The ev value at p (a string).  Returns past it or NULL; *code = packed ev (0 = unknown /
 * too long), *status = 1 for "status", *isstr = 0 when the value is not a string. */
static inline const char *ff_pg_ev_value(const char *p, const char *end, uint32_t *code,
                                         int *status, int *isstr, const char **es, size_t *en)
{
    const char *s;
    size_t n;
    *status = 0;
    *code = 0;
    if (*p != '"') {
        *isstr = 0;
        *es = p;
        *en = 0;
        return ff_skip_value(p, end);
    }
    *isstr = 1;
    {
        const char *q = ff_pg_short_str(p, end, &s, &n);
        if (FF_LIKELY(q != NULL && n >= 1 && n <= 4)) {
            uint32_t k;
            memcpy(&k, s, 4); /* ff_pg_short_str guarantees 16 readable bytes */
            *es = s;
            *en = n;
            *code = n == 4 ? k : (k & ((1u << (8 * n)) - 1));
            return q;
        }
    }
    p = ff_pg_string_code(p, end, &s, &n, code, status);
    if (FF_UNLIKELY(p == NULL))
        return NULL;
    *es = s;
    *en = n;
    return p;
}

/* Scan an object (p just past '{') for its "ev" key without decoding anything else.
 * Returns 1 found (ev value parsed into the out params), 0 not found (object valid),
 * -1 malformed. */
static inline int ff_pg_find_ev_ahead(const char *p, const char *end, uint32_t *code,
                                      int *status, int *isstr, const char **es, size_t *en)
{
    int found = 0;
    p = ff_skip_ws(p, end);
    if (p < end && *p == '}')
        return 0;
    for (;;) {
        uint32_t key;
        const char *ks;
        size_t kn;
        if (FF_UNLIKELY(p >= end || *p != '"'))
            return -1;
        p = ff_pg_key(p, end, &key, &ks, &kn);
        if (FF_UNLIKELY(p == NULL))
            return -1;
        if (key == FF_PG_KEY_EV && !found) {
            p = ff_pg_ev_value(p, end, code, status, isstr, es, en);
            found = 1;
            if (p == NULL)
                return -1;
            return 1; /* the main pass validates the rest */
        }
        p = ff_skip_value(p, end);
        if (FF_UNLIKELY(p == NULL))
            return -1;
        p = ff_skip_ws(p, end);
        if (FF_UNLIKELY(p >= end))
            return -1;
        if (*p == ',') {
            p = ff_skip_ws(p + 1, end);
            continue;
        }
        if (*p == '}')
            return found;
        return -1;
    }
}

/* Whether a message the decoder had to stop in was cut short (FF_PGE_TRUNCATED) rather than
 * malformed: it ends inside the top-level array -- inside a string, or with a '[' / '{' not
 * closed (brackets counted outside strings; a closing bracket that does not match its opening
 * one, or one that closes the top-level array, means malformed).  Only on the fault path.  (It
 * used to test for a last byte other than ']', which called a message cut right after an
 * inner list, e.g. '..."c":[1,2]', malformed.) */
static FF_NOINLINE int ff_pg_looks_truncated(const char *buf, const char *end)
{
    const char *p;
    uint64_t kinds = 0;   /* bit i: the bracket open at depth i + 1 is '{' (depths <= 64) */
    long depth = 0;
    int instr = 0;
    for (p = buf; p < end; p++) {
        char c = *p;
        if (instr) {
            if (c == '\\') {
                if (++p >= end)
                    return 1;
            } else if (c == '"') {
                instr = 0;
            }
        } else if (c == '"') {
            instr = 1;
        } else if (c == '[' || c == '{') {
            if (depth < 64)
                kinds = (kinds & ~((uint64_t)1 << depth)) | ((uint64_t)(c == '{') << depth);
            depth++;
        } else if (c == ']' || c == '}') {
            depth--;
            if (depth <= 0 || (depth < 64 && (int)((kinds >> depth) & 1) != (c == '}')))
                return 0;
        }
    }
    return instr || depth > 0;
}

/* dst[0..n) = src[0..n) and FF_PG_PAD zero bytes after them, for n <= FF_PG_SMALL: inline
 * word copies (the last one overlapping the one before), no libc call -- a one-event message
 * is ~120 bytes, where memcpy's dispatch and start-up cost as much as the copy. */
static FF_ALWAYS_INLINE void ff_pg_copy_small(char *dst, const char *src, size_t n)
{
    size_t o;
    if (FF_LIKELY(n >= 32)) {
        for (o = 0; o + 32 <= n; o += 32)
            memcpy(dst + o, src + o, 32);
        if (o < n)
            memcpy(dst + n - 32, src + n - 32, 32);
    } else if (n >= 16) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else {
        for (o = 0; o < n; o++)
            dst[o] = src[o];
    }
    memset(dst + n, 0, FF_PG_PAD);
}

static inline void ff_pg_init_record(const ff_pg_layout *L, char *rec, uint16_t rtype,
                                     int64_t ts_recv)
{
    int j;
    if (FF_LIKELY(L->flat)) {
        ff_rec_copy((uint8_t *)rec, L->tmpl, L->size);
    } else {
        for (j = 0; j < 3 && L->init_len[j]; j++)
            memcpy(rec + L->init_off[j], L->tmpl + L->init_off[j], L->init_len[j]);
    }
    ((ff_header *)rec)->rtype = rtype;
    ((ff_header *)rec)->ts_recv = ts_recv;
}

/* ff_pg_decode's body (v3: built for x86-64-v3, a constant in each of the two builds below). */
static FF_ALWAYS_INLINE ptrdiff_t ff_pg_decode_body(ff_pg_dec *d, const char *buf, size_t size,
                                                   const int v3)
{
    const char *p, *end, *lim, *lane_end;
    ptrdiff_t published = 0;
    int t;
    int stop = 0;

    /* A small message (one or a few events per frame) is decoded from a copy followed by
     * zero bytes, so that the fast lane's scanners can read past its last byte: a zero byte
     * is never part of a key pattern, a number, a short string or a list, so nothing past the
     * end is ever accepted -- lim (end + the padding) only bounds the reads.  Offsets in
     * faults are the same (relative to the message start); the pointers d->err_key/err_ev
     * point into the copy, valid until the next call like pointers into the message. */
    if (size <= FF_PG_SMALL) {
        ff_pg_copy_small(d->small, buf, size);
        buf = d->small;
        lim = buf + size + FF_PG_PAD;
    } else {
        lim = buf + size;
    }
    p = buf;
    end = buf + size;
    lane_end = lim - 32;  /* the key lane runs while p <= lane_end (lim - buf >= 64 here) */

    d->err = FF_PGE_OK;
    d->n_touched = 0;
    d->sp_on = 0;   /* no event in hand (a malformed one may have left it set) */
    p = ff_skip_ws(p, end);
    if (FF_UNLIKELY(p >= end)) {
        ff_pg_fault(d, FF_PGE_EMPTY, buf, p, NULL, 0, NULL, 0);
        return -1;
    }
    if (FF_UNLIKELY(*p != '[')) {
        const char *q = ff_skip_value(p, end);
        if (q != NULL && ff_skip_ws(q, end) == end)
            ff_pg_fault(d, FF_PGE_NOT_ARRAY, buf, p, NULL, 0, NULL, 0);
        else
            ff_pg_fault(d, FF_PGE_NOT_JSON, buf, p, NULL, 0, NULL, 0);
        return -1;
    }
    p = ff_skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        p++;
        goto after_array;
    }

    for (;;) {
        const char *obj;
        uint32_t code = 0;
        int status = 0, isstr = 1, found;
        const char *es = NULL;
        size_t en = 0;
        const char *body;           /* where the main pass starts */
        const ff_pg_evslot *evs;
        uint64_t pres;              /* presence bits of the event in hand */
        uint64_t altv;              /* its alt bits (kept in a register, stored once) */
        ff_pg_layout *L;
        ff_ring *ring;
        char *rec;
        int bad = 0;
        const char *bad_at = NULL, *bad_key = NULL;
        size_t bad_kn = 0;

        if (FF_UNLIKELY(p >= end)) {
            ff_pg_fault(d, FF_PGE_TRUNCATED, buf, p, NULL, 0, NULL, 0);
            stop = 1;
            break;
        }
        obj = p;
        if (FF_UNLIKELY(*p != '{')) {
            const char *q = ff_skip_value(p, end);
            if (q == NULL) {
                ff_pg_fault(d, ff_pg_looks_truncated(buf, end) ? FF_PGE_TRUNCATED :
                            FF_PGE_MALFORMED, buf, p, NULL, 0, NULL, 0);
                stop = 1;
                break;
            }
            ff_pg_fault(d, FF_PGE_NOT_OBJECT, buf, p, NULL, 0, NULL, 0);
            d->n_skipped++;
            p = q;
            goto next;
        }
        /* fast path: {"ev":"<known code>", -- a code from the table has no backslash,
         * quote or control byte, so the first quote after it closes the string */
        if (FF_LIKELY(lim - p >= 16)) {
            uint64_t w, x, hq;
            memcpy(&w, p + 1, 8);
            if (FF_LIKELY((w & 0xFFFFFFFFFFFFULL) == 0x223A22766522ULL)) { /* "ev":" */
                unsigned i;
                memcpy(&w, p + 7, 8);
                x = w ^ 0x2222222222222222ULL;
                hq = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
                i = (unsigned)__builtin_ctzll(hq | (1ULL << 63)) >> 3;
                if (FF_LIKELY(i >= 1 && i <= 4 && p[8 + i] == ',')) {
                    code = (uint32_t)(w & ((1ULL << (8 * i)) - 1));
                    evs = ff_pg_find_ev(d, code);
                    if (FF_LIKELY(evs != NULL)) {
                        es = p + 7;
                        en = i;
                        body = p + 9 + i;  /* <= p + 13 < lim */
                        if (FF_UNLIKELY((unsigned char)*body <= ' '))
                            body = ff_skip_ws(body, end);
                        goto have_ev;
                    }
                }
            }
        }
        /* locate ev: usually the first key */
        p = ff_skip_ws(p + 1, end);
        if (FF_LIKELY(end - p >= 5 && memcmp(p, "\"ev\"", 4) == 0)) {
            const char *q = ff_skip_ws(p + 4, end);
            if (FF_UNLIKELY(q >= end || *q != ':'))
                goto malformed;
            q = ff_skip_ws(q + 1, end);
            if (FF_UNLIKELY(q >= end))
                goto malformed;
            q = ff_pg_ev_value(q, end, &code, &status, &isstr, &es, &en);
            if (FF_UNLIKELY(q == NULL))
                goto malformed;
            found = 1;
            body = q;  /* continue after the ev pair */
            q = ff_skip_ws(q, end);
            if (FF_UNLIKELY(q >= end))
                goto malformed;
            if (*q == ',')
                body = ff_skip_ws(q + 1, end);
            else if (*q == '}')
                body = q;
            else
                goto malformed;
        } else {
            found = ff_pg_find_ev_ahead(p, end, &code, &status, &isstr, &es, &en);
            if (FF_UNLIKELY(found < 0))
                goto malformed;
            body = p;
        }
        if (FF_UNLIKELY(!found || !isstr || status)) {
            const char *q = ff_skip_value(obj, end);
            if (FF_UNLIKELY(q == NULL))
                goto malformed;
            if (!found) {
                ff_pg_fault(d, FF_PGE_NO_EV, buf, obj, NULL, 0, NULL, 0);
                d->n_skipped++;
            } else if (!isstr) {
                ff_pg_fault(d, FF_PGE_EV_TYPE, buf, obj, "ev", 2, NULL, 0);
                d->n_skipped++;
            } else {
                d->n_status++;
                if (d->status(d->ctx, obj, (size_t)(q - obj)) != 0)
                    ff_pg_fault(d, FF_PGE_STATUS, buf, obj, NULL, 0, es, en);
            }
            p = q;
            goto next;
        }
        evs = code ? ff_pg_find_ev(d, code) : NULL;
    have_ev:
        ring = evs ? d->rings[evs->rtype] : NULL;
        if (FF_UNLIKELY(ring == NULL)) {
            const char *q = ff_skip_value(obj, end);
            if (FF_UNLIKELY(q == NULL))
                goto malformed;
            d->n_unknown_ev++;
            d->n_skipped++;
            p = q;
            goto next;
        }
        L = &d->layouts[evs->layout];
        rec = (char *)ff_ring_slot(ring, d->k[evs->rtype]);
        if (d->k[evs->rtype] == 0) {
            int seen = 0;
            for (t = 0; t < d->n_touched; t++)
                if (d->touched[t] == evs->rtype)
                    seen = 1;
            if (!seen)
                d->touched[d->n_touched++] = evs->rtype;
        }
        if (FF_UNLIKELY(rec == NULL)) {
            const char *q = ff_skip_value(obj, end);
            if (FF_UNLIKELY(q == NULL))
                goto malformed;
            d->n_overflowed++;
            p = q;
            goto next;
        }
        ff_pg_init_record(L, rec, evs->rtype, d->ts_recv);
        ((ff_header *)rec)->flags = d->seq++;   /* wire order (mod 2^16) across event types */

        /* main pass over the keys */
        p = body;
        pres = 0;
        altv = *(uint64_t *)(rec + 24);
        if (p < end && *p == '}') {
            p++;
        } else {
            ff_pg_field *prevf = NULL;       /* the known key decoded last in this object */
            const ff_pg_field *pf = L->first; /* the key expected next (or NULL) */
            for (;;) {
                uint32_t key;
                const char *ks;
                size_t kn;
                const ff_pg_field *f;
                /* Fast lane: while the keys come in an order seen before (after each key:
                 * the key that followed it last time, or the other one before that), each is
                 * one masked 8-byte compare of '"key":' and a constant advance, and its value
                 * one of the fast scanners, with no bounds check but the one per key (every
                 * scanner reads at most 24 bytes past the key; lim: see the padded copy).
                 * Anything else -- another key, an unusual value or separator -- falls to the
                 * general code below at the same position, which decodes it and learns the
                 * new order. */
                while (pf != NULL && FF_LIKELY(p <= lane_end)) {
                    uint64_t w;
                    const char *v, *q;
                    memcpy(&w, p, 8);
                    if ((w & pf->pmask) != pf->pat) {
                        /* the other key seen after the previous one (an optional key that
                         * comes and goes): checked the same way, nothing relearned */
                        const ff_pg_field *p2 = prevf != NULL ? prevf->next2 : NULL;
                        if (p2 == NULL || (w & p2->pmask) != p2->pat)
                            break;
                        pf = p2;
                    }
                    v = p + pf->adv;
                    if (pf->kind == FF_PGK_I64) {
                        uint64_t x;
                        q = ff_pg_uint_fast(v, &x);
                        if (FF_UNLIKELY(q == NULL))
                            break;
                        *(int64_t *)(rec + pf->off) = (int64_t)x;
                        altv &= ~pf->mask;
                    } else if (pf->kind == FF_PGK_F64) {
                        double x;
                        int isint;
                        q = ff_f64_short(v, &x, &isint);
                        if (FF_UNLIKELY(q == NULL))
                            break;
                        *(double *)(rec + pf->off) = x;
                        altv = isint ? (altv | pf->mask) : (altv & ~pf->mask);
                    } else if (pf->kind == FF_PGK_SYMBOL) {
                        uint32_t id;
                        if (*v != '"' || (q = ff_pg_symbol_fast(d, v, &id)) == NULL || id == 0)
                            break;
                        ((ff_header *)rec)->symbol_id = id;
                    } else if (pf->kind == FF_PGK_FIXSTR) {
                        const char *sv;
                        size_t n;
                        char *dst = rec + pf->off;
                        if (*v != '"' || (q = ff_pg_short_str(v, lim, &sv, &n)) == NULL ||
                            n > pf->n)
                            break;
                        if (pf->n == 32) {
                            /* n <= 15 and 16 bytes from sv are readable (ff_pg_short_str):
                             * two word stores with the bytes past n cleared, no call */
                            uint64_t a0, a1;
                            memcpy(&a0, sv, 8);
                            memcpy(&a1, sv + 8, 8);
                            if (n < 8) {
                                a0 &= (1ULL << (8 * n)) - 1;
                                a1 = 0;
                            } else {
                                a1 &= (1ULL << (8 * (n - 8))) - 1;
                            }
                            memcpy(dst, &a0, 8);
                            memcpy(dst + 8, &a1, 8);
                            memset(dst + 16, 0, 16);
                        } else {
                            memcpy(dst, sv, n);
                            memset(dst + n, 0, pf->n - n);
                        }
                        altv &= ~(pf->mask | (pf->mask << 32));
                    } else if (pf->kind == FF_PGK_I64S) {
                        uint64_t x;
                        if (*v != '"' || (q = ff_pg_uint_str_fast(v, &x)) == NULL)
                            break;
                        *(int64_t *)(rec + pf->off) = (int64_t)x;
                        altv |= pf->mask;
                    } else if (pf->kind == FF_PGK_I32ARR) {
                        unsigned cnt;
                        if (*v != '[' || (q = ff_pg_i32arr_fast(v, lim, (int32_t *)(rec + pf->off),
                                                                pf->n, &cnt)) == NULL)
                            break;
                        *(uint8_t *)(rec + pf->n_off) = (uint8_t)cnt;
                        *(uint8_t *)(rec + pf->drop_off) = 0;
                        altv &= ~(pf->mask << 32);
                    } else if (pf->kind == FF_PGK_LEVELS) {
                        /* a whole list per key: the lane, then the general code for what
                         * it did not take (the alt bits go through the record) */
                        int b = 0;
                        if (*v != '[')
                            break;
                        *(uint64_t *)(rec + 24) = altv;
                        q = v3 ? ff_pg_levels_value_v3(d, pf, rec, v, end, lim, &b)
                               : ff_pg_levels_value_base(d, pf, rec, v, end, lim, &b);
                        altv = *(uint64_t *)(rec + 24);
                        if (FF_UNLIKELY(q == NULL)) {
                            p = NULL;
                            goto malformed;
                        }
                        /* a list is the only lane value that can run to the end of the
                         * message (the others stay within 24 bytes of the key): nothing after
                         * it to read -- without the padded copy, *q would be past the end --
                         * and the object is not closed */
                        if (FF_UNLIKELY(q >= end)) {
                            p = q;
                            goto malformed;
                        }
                        if (FF_UNLIKELY(b != 0) && !bad) {
                            bad = b;
                            bad_at = v;
                            bad_key = p + 1;
                            bad_kn = (size_t)pf->adv - 3;
                        }
                    } else {
                        break;
                    }
                    pres |= pf->mask;
                    prevf = (ff_pg_field *)pf;
                    pf = pf->next;
                    if (FF_LIKELY(*q == ',')) {
                        p = q + 1;
                        continue;
                    }
                    if (FF_LIKELY(*q == '}')) {
                        p = q + 1;
                        goto object_done;
                    }
                    p = q;
                    goto separator;
                }
                /* the lane leaves p after a ',' (or at a key it could not take): white
                 * space may come first */
                if (FF_UNLIKELY(p < end && (unsigned char)*p <= ' '))
                    p = ff_skip_ws(p, end);
                if (FF_UNLIKELY(p >= end || *p != '"'))
                    goto malformed;
                /* fast path: a known short plain key followed directly by ':' -- the first
                 * quote of the 8 bytes after the opening one closes it.  A table key has no
                 * NUL / backslash / control byte, so a hit on the raw bytes (whose top byte
                 * is non-zero) is the key itself; anything else takes the general path. */
                if (FF_LIKELY(end - p >= 9)) {
                    uint64_t w, x, hq;
                    memcpy(&w, p + 1, 8);
                    x = w ^ 0x2222222222222222ULL;
                    hq = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
                    {
                        /* sh = 8 * index of the first quote (56 when there is none) */
                        unsigned sh = ((unsigned)__builtin_ctzll(hq | (1ULL << 63)) - 7) & ~7u;
                        if (FF_LIKELY(sh - 8 <= 24 && (uint16_t)(w >> sh) == 0x3A22 &&
                                      (uint8_t)(w >> (sh - 8)) != 0)) {
                            key = (uint32_t)(w & ((1ULL << sh) - 1));
                            f = ff_pg_lookup(L, key);
                            if (FF_LIKELY(f != NULL)) {
                                ks = p + 1;
                                kn = sh >> 3;
                                p += (sh >> 3) + 3; /* <= p + 7 < end */
                                if (FF_UNLIKELY((unsigned char)*p <= ' ')) {
                                    p = ff_skip_ws(p, end);
                                    if (FF_UNLIKELY(p >= end))
                                        goto malformed;
                                }
                                goto learn;
                            }
                        }
                    }
                }
                p = ff_pg_key(p, end, &key, &ks, &kn);
                if (FF_UNLIKELY(p == NULL))
                    goto malformed;
                f = key ? ff_pg_lookup(L, key) : NULL;
            learn:
                if (f != NULL) {
                    if (prevf == NULL) {
                        L->first = f;
                    } else if (prevf->next != f) {
                        prevf->next2 = prevf->next;
                        prevf->next = f;
                    }
                    prevf = (ff_pg_field *)f;
                    pf = f->next;
                } else {
                    pf = NULL;  /* after an unknown key: no prediction, prevf kept */
                }
                if (f == NULL) {
                    /* a key fastfeed has no slot for: kept with its raw JSON text (the member
                     * from the key's opening quote to the end of its value) in the spill log */
                    const char *q = ff_skip_value(p, end);
                    uint32_t off;
                    d->n_unknown_keys++;
                    if (q != NULL && ff_pg_spill(d, rec, FF_SPILL_KEY, -1, ks - 1,
                                                 (size_t)(q - (ks - 1)), &off) != 0 && !bad) {
                        bad = FF_PGE_SPILL;
                        bad_at = p;
                        bad_key = ks;
                        bad_kn = kn;
                    }
                    p = q;
                } else if (FF_UNLIKELY(f->kind == FF_PGK_EV)) {
                    uint32_t code2;
                    int st2, is2;
                    const char *es2;
                    size_t en2;
                    const char *v = p;
                    p = ff_pg_ev_value(p, end, &code2, &st2, &is2, &es2, &en2);
                    if (p != NULL && (!is2 || st2 || code2 != code) && !bad) {
                        bad = FF_PGE_EV_TYPE;
                        bad_at = v;
                        bad_key = ks;
                        bad_kn = kn;
                    }
                } else {
                    int b = 0;
                    const char *v = p;
                    p = ff_pg_value_fast(d, f, rec, p, end, &b, &altv);
                    if (FF_LIKELY(b == 0)) {
                        pres |= f->mask;
                    } else if (!bad) {
                        bad = b;
                        bad_at = v;
                        bad_key = ks;
                        bad_kn = kn;
                    }
                }
                if (FF_UNLIKELY(p == NULL))
                    goto malformed;
                if (FF_LIKELY(p < end && *p == ',')) {
                    p++;
                    if (FF_UNLIKELY(p < end && *p != '"'))
                        p = ff_skip_ws(p, end);
                    continue;
                }
            separator:
                p = ff_skip_ws(p, end);
                if (FF_UNLIKELY(p >= end))
                    goto malformed;
                if (*p == ',') {
                    p = ff_skip_ws(p + 1, end);
                    continue;
                }
                if (*p == '}') {
                    p++;
                    break;
                }
                goto malformed;
            }
        }
    object_done:
        *(uint64_t *)(rec + 16) |= pres;
        *(uint64_t *)(rec + 24) = altv;
        if (FF_LIKELY(!(bad | d->sp_on))) {
            /* the usual event: valid, nothing spilled (one test for both) */
            d->k[evs->rtype]++;
            published++;
            goto next;
        }
        if (d->sp_on) {
            /* the event's spill range; its FIFO entry keeps it while the ring holds the record */
            uint32_t len = ring->spill.head - d->sp_start;
            d->sp_on = 0;
            *(uint64_t *)(rec + 32) = ((uint64_t)len << 32) | d->sp_start;
            if (!bad && ff_spill_push(&ring->spill, ring->head + d->k[evs->rtype], d->sp_start,
                                      len, ((ff_header *)rec)->symbol_id) != 0) {
                bad = FF_PGE_SPILL;
                bad_at = obj;
            }
        }
        if (!bad) {
            d->k[evs->rtype]++;
            published++;
        } else {
            ff_pg_fault(d, bad, buf, bad_at, bad_key, bad_kn, es, en);
            d->n_skipped++;
        }
    next:
        /* the usual separator between events: ',{' right after the '}' (both bytes inside
         * the message), without the white-space skips */
        if (FF_LIKELY(end - p >= 2 && p[0] == ',' && p[1] == '{')) {
            p++;
            continue;
        }
        p = ff_skip_ws(p, end);
        if (FF_UNLIKELY(p >= end)) {
            ff_pg_fault(d, FF_PGE_TRUNCATED, buf, p, NULL, 0, NULL, 0);
            stop = 1;
            break;
        }
        if (FF_LIKELY(*p == ',')) {
            p = ff_skip_ws(p + 1, end);
            continue;
        }
        if (*p == ']') {
            p++;
            break;
        }
        ff_pg_fault(d, FF_PGE_MALFORMED, buf, p, NULL, 0, NULL, 0);
        stop = 1;
        break;
    malformed:
        /* the event in hand is abandoned; decide truncated vs malformed */
        ff_pg_fault(d, ff_pg_looks_truncated(buf, end) ? FF_PGE_TRUNCATED : FF_PGE_MALFORMED,
                    buf, p ? p : obj, NULL, 0, es, en);
        d->n_skipped++;
        stop = 1;
        break;
    }

after_array:
    if (!stop) {
        p = ff_skip_ws(p, end);
        if (FF_UNLIKELY(p < end))
            ff_pg_fault(d, FF_PGE_TRAILING, buf, p, NULL, 0, NULL, 0);
    }
    for (t = 0; t < d->n_touched; t++) {
        int rt = d->touched[t];
        ff_ring_publish(d->rings[rt], d->k[rt]);
        d->k[rt] = 0;
    }
    d->n_touched = 0;
    d->n_events += (uint64_t)published;
    return published;
}

/* The decoder built for the baseline and for x86-64-v3 (compat.h's runtime dispatch). */
static FF_NOINLINE ptrdiff_t ff_pg_decode_base(ff_pg_dec *d, const char *buf, size_t size)
{
    return ff_pg_decode_body(d, buf, size, 0);
}

FF_TARGET_V3
static FF_NOINLINE ptrdiff_t ff_pg_decode_v3(ff_pg_dec *d, const char *buf, size_t size)
{
    return ff_pg_decode_body(d, buf, size, 1);
}

/* The build ff_pg_decode runs (one per module; ff_pg_select sets it at module init). */
static ptrdiff_t (*ff_pg_decode_impl)(ff_pg_dec *, const char *, size_t) = ff_pg_decode_base;

/* Selects the x86-64-v3 build (v3 != 0; only when ff_cpu_v3() says the CPU has it) or the
 * baseline one.  Returns 1 when the v3 build is in use. */
static inline int ff_pg_select(int v3)
{
    ff_pg_decode_impl = v3 && FF_HAVE_V3 ? ff_pg_decode_v3 : ff_pg_decode_base;
    return ff_pg_decode_impl == ff_pg_decode_v3;
}

/* Decode one message.  Returns the number of events published, or -1 when nothing could be
 * decoded at all (not JSON / not an array / empty).  d->err holds the first fault. */
static inline ptrdiff_t ff_pg_decode(ff_pg_dec *d, const char *buf, size_t size)
{
    return ff_pg_decode_impl(d, buf, size);
}

#endif /* FASTFEED_POLYGON_SCAN_H */
