# cython: freethreading_compatible = False
"""DXLink (tastytrade / dxFeed) protocol core: sans-I/O session and COMPACT/FULL decoder.

Two public classes:

``DXLinkDecoder``
    Bytes in, records out. ``feed(message)`` takes ONE whole DXLink JSON message and writes every
    event of a ``FEED_DATA`` message straight into the per-type record rings (no Python object per
    event); ``drain(event_type)`` returns what was published since the last drain. Other messages
    (FEED_CONFIG, CHANNEL_OPENED, ERROR, ...) are parsed with orjson (they are rare) and become
    typed control events in ``self.control``; FEED_CONFIG ``eventFields`` updates the field table
    of its (channel, event type). Usable alone to replay recorded frames without a socket.

``DXLinkSession``
    The decoder plus the client state machine: SETUP -> AUTH -> CHANNEL_REQUEST -> FEED_SETUP ->
    FEED_SUBSCRIPTION, outgoing messages appended to ``self.outbox`` (bytes), keepalive
    bookkeeping with an explicit clock (``now`` in seconds, any monotonic clock the caller likes).

The FEED_DATA hot path (C, below, in the module's verbatim block)
------------------------------------------------------------------
One pass over the message: the envelope keys are scanned in place; when ``type`` is FEED_DATA
the ``data`` array is walked element by element. A ``"<Type>", [values...]`` pair (COMPACT) is
decoded with the field table of (channel, type): a C array of ``{kind, offset, enum}`` built in
Python when FEED_CONFIG arrives (authoritative, merged per type across repeated FEED_CONFIGs);
before any FEED_CONFIG the event class's ``FIELDS`` order is used. Server fields fastfeed has no
slot for are skipped (``kind = SKIP``). An object element is a FULL event (keys looked up by
name; servers send FULL intermittently even when COMPACT was requested). Each event starts as a
``memcpy`` of the class template (NaN doubles, zeros), so slots the server did not send stay
NaN / 0 / empty. Numbers go through ``numparse.h`` (Clinger fast path, bit-exact with
``float()``; integers exact in int64, never through a double). Symbols and other strings are
interned in the decoder's ``SymbolTable``.

Error contract (``core.pxd``): every complete valid ``[type, values]`` pair (or FULL object) is
published; a bad one is not (its claimed slots are reused); the first problem becomes
``fastfeed.ProtocolError`` naming the event type, the field and the byte offset, raised by
``feed()`` after publishing the good units. ``null`` in any slot means "no value" (the template
value stays). Messages larger than ``max_message_size`` (default 4 MiB) are refused outright.

Channel layout (decision)
-------------------------
``DXLinkSession`` opens **one FEED channel per event type**, with tastytrade's numbers (Candle 1,
Greeks 3, Profile 5, Quote 7, Summary 9, TheoPrice 11, TimeAndSale 13, Trade 15, Underlying 17;
TradeETH, which tastytrade does not use, 19). Reasons: (1) it is the layout the production
server has seen from every tastytrade client since 2023, so its FEED_CONFIG / aggregation
behaviour per channel is known to work; (2) the aggregation period is per channel, and a bot
wants Quotes conflated (0.1 s) while it must not conflate TimeAndSale or Candle snapshots;
(3) CHANNEL_CANCEL and ``reset`` then act on one event type without touching the others, and a
server-side problem on one channel (ERROR, unsolicited CHANNEL_CLOSED) does not stop the others.
The cost (a few more control messages at start-up) is paid once per connection. The decoder does
not depend on it: any channel carrying any mix of types decodes the same way.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from fastfeed._native.core cimport ProtocolCore
from fastfeed._native.cring cimport ff_ring
from fastfeed._native.symbols cimport SymbolTable

import orjson

from fastfeed._native.core import DEFAULT_RING_BYTES, ring_capacity_for
from fastfeed._records_meta import ENUMS, LAYOUTS
from fastfeed.errors import ProtocolError, SubscriptionError
import fastfeed.dxfeed as _dxfeed

cdef extern from *:
    """
    #include <stdint.h>
    #include <stdlib.h>
    #include <string.h>
    #include "fastfeed/compat.h"
    #include "fastfeed/numparse.h"
    #include "fastfeed/jsonscan.h"
    #include "fastfeed/ring.h"

    #define FF_DX_NTYPES 11      /* indexed by rtype 1..10 */
    #define FF_DX_MAXCH 64
    #define FF_DX_MAXENUM 8

    enum { DXK_SKIP = 0, DXK_SYMBOL, DXK_EVTYPE, DXK_F64, DXK_I64, DXK_I32, DXK_BOOL, DXK_ENUM,
           DXK_CHAR, DXK_STR };
    enum { DXE_OK = 0, DXE_SYNTAX, DXE_TYPE, DXE_INT, DXE_RANGE, DXE_COUNT, DXE_CHAR,
           DXE_NOTARRAY, DXE_NOEVTYPE, DXE_DATA, DXE_NOMEM, DXE_TRAILING, DXE_ELEMENT };

    typedef struct {
        const char *name;   /* wire name (for FULL lookup and error messages) */
        uint32_t off;       /* byte offset in the record */
        uint16_t namelen;
        uint8_t kind;       /* DXK_* */
        uint8_t enum_id;    /* index into ff_dx_enums for DXK_ENUM */
    } ff_dxfield;

    typedef struct {
        int64_t channel;
        ff_dxfield *f[FF_DX_NTYPES];
        int nf[FF_DX_NTYPES];
    } ff_dxchan;

    typedef struct {
        const char *names[FF_DX_MAXENUM];
        uint8_t lens[FF_DX_MAXENUM];
        int n;
    } ff_dxenum;

    static ff_dxenum ff_dx_enums[FF_DX_MAXENUM];

    typedef uint32_t (*ff_dx_intern_fn)(void *owner, const char *s, size_t n);

    /* Direct-mapped cache of interned strings of 1..16 bytes: the bytes (zero padded, as two
     * words), the length and the id.  Ids of a SymbolTable never change and are never reused,
     * so an entry stays valid for the decoder's lifetime; id 0 (refused) is never cached. */
    #define FF_DX_SYMC 256
    typedef struct {
        uint64_t k0, k1;
        uint32_t len, id;
    } ff_dxsym;

    #if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #  define FF_DX_SWAR 1
    #else
    #  define FF_DX_SWAR 0
    #endif

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
        uint64_t overflow_rec[64];   /* where an event goes when its ring refuses it */
        ff_dxsym symc[FF_DX_SYMC];   /* symbol cache in front of the SymbolTable (see ff_dx_sym) */
        int64_t ts_recv;
        uint16_t seq;                /* wire order across rings: stamped into ff_header.flags */
        const char *base;
        uint64_t n_overflowed;
        uint64_t n_skipped;
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

    static const double ff_dx_pow10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

    #if FF_DX_SWAR
    /* x holds 8 decimal digit values (0..9), the first (most significant) in the low byte:
     * their value as one number.  Pairs, then quads, then the eight; no lane ever carries
     * (99, 9999, 99999999 fit their 8-, 16-, 32-bit lanes). */
    static FF_ALWAYS_INLINE uint64_t ff_dx_swar8(uint64_t x)
    {
        x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFULL;
        x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFULL;
        return (x * 10000 + (x >> 32)) & 0xFFFFFFFFULL;
    }
    #endif

    /* Append the run of decimal digits at q to *w (w = w * 10^k + run) and add its length k to
     * *nd; returns the first byte after the run.  Eight bytes at a time while eight are
     * readable: a run of k < 8 digits is converted in the same step by shifting the other
     * bytes out.  *w is only meaningful while the total stays <= 19 digits (callers check). */
    static FF_ALWAYS_INLINE const char *
    ff_dx_digits(const char *q, const char *end, uint64_t *w, int *nd)
    {
        uint64_t v = *w;
        int n = *nd;
    #if FF_DX_SWAR
        while (end - q >= 8) {
            uint64_t c, x, bad;
            memcpy(&c, q, 8);
            x = c ^ 0x3030303030303030ULL;   /* digit bytes -> 0..9 */
            /* high bit of each byte that is not a digit (>= 10 after the xor); carry-free */
            bad = (((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
            if (bad == 0) {
                v = v * 100000000ULL + ff_dx_swar8(x);
                n += 8;
                q += 8;
                continue;
            }
            {
                int k = __builtin_ctzll(bad) >> 3;   /* leading digit bytes, 0..7 */
                if (k) {
                    v = v * ff__pow10_u64[k] + ff_dx_swar8(x << (8 * (8 - k)));
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

    /* "-?(0|[1-9][0-9]{0,18})" in int64 range, not followed by '.', 'e' or 'E': the int64
     * ff_parse_int64 would return.  Anything else (integral float spellings, out of range,
     * malformed) returns NULL and goes through ff_parse_int64. */
    static FF_ALWAYS_INLINE const char *
    ff_dx_fast_int(const char *p, const char *end, int64_t *out)
    {
        const char *q = p, *ds;
        uint64_t v = 0;
        int nd = 0, neg = 0;
        if (*q == '-') { neg = 1; q++; }
        ds = q;
        q = ff_dx_digits(q, end, &v, &nd);   /* 19 digits cannot wrap a uint64 */
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
    ff_dx_fast_double(const char *p, const char *end, double *out)
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
            if (FF_UNLIKELY(q - ds >= 8)) { q = ff_dx_digits(q, end, &w, &nf); break; }
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
            q = ff_dx_digits(q, end, &w, &nf);
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
            if (q10 < 0) d /= ff_dx_pow10[-q10];
            else d *= ff_dx_pow10[q10];
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

    #if FF_DX_SWAR
    /* High bit of every byte of v that ends or interrupts a plain JSON string: '"', a
     * backslash, or a control byte (< 0x20).  Exact for the lowest flagged byte (borrows only
     * reach bytes above a true match), which is the only one callers use. */
    static FF_ALWAYS_INLINE uint64_t ff_dx_str_stop(uint64_t v)
    {
        const uint64_t ones = 0x0101010101010101ULL;
        uint64_t a = v ^ (ones * 0x22u), b = v ^ (ones * 0x5Cu);
        return (((a - ones) & ~a) | ((b - ones) & ~b) | ((v - ones * 0x20u) & ~v)) &
               0x8080808080808080ULL;
    }
    #endif

    static FF_ALWAYS_INLINE uint32_t ff_dx_sym(ff_dxctx *c, const char *s, size_t n, const char *end);

    /* A string of 1..16 bytes without escapes at p ('"'), when 16 (17) bytes after the quote
     * are readable: found, keyed and looked up in the symbol cache with the same two 8-byte loads.
     * Returns past the closing quote with *id set (the id ff_dx_sym gives), or NULL (longer,
     * empty, escaped or malformed strings, or too close to the end: the caller's slow path). */
    static FF_ALWAYS_INLINE const char *
    ff_dx_fast_sym(ff_dxctx *c, const char *p, const char *end, uint32_t *id)
    {
    #if FF_DX_SWAR
        const char *s = p + 1;
        uint64_t k0, k1, m;
        size_t n;
        ff_dxsym *e;
        if (end - s < 16) return NULL;
        memcpy(&k0, s, 8);
        memcpy(&k1, s + 8, 8);
        m = ff_dx_str_stop(k0);
        if (m) {
            n = (size_t)(__builtin_ctzll(m) >> 3);
            if (n == 0 || s[n] != '"') return NULL;
            k0 &= ~0ULL >> (64 - 8 * n);
            k1 = 0;
        } else {
            m = ff_dx_str_stop(k1);
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
    #if FF_DX_SWAR
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
                if (end - q >= 4 && memcmp(q, "NaN\\"", 4) == 0) {
                    bits = 0x7FF8000000000000ULL; memcpy(slot, &bits, 8); return q + 4;
                }
                if (end - q >= 9 && memcmp(q, "Infinity\\"", 9) == 0) {
                    bits = 0x7FF0000000000000ULL; memcpy(slot, &bits, 8); return q + 9;
                }
                if (end - q >= 10 && memcmp(q, "-Infinity\\"", 10) == 0) {
                    bits = 0xFFF0000000000000ULL; memcpy(slot, &bits, 8); return q + 10;
                }
                *err = DXE_TYPE;
                return NULL;
            }
            r = ff_dx_fast_double(p, end, &d);
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
                const ff_dxenum *e = &ff_dx_enums[f->enum_id];
                uint8_t code = 0;
                q = ff_scan_string(p, end, &s, &n, &esc);
                if (q == NULL) { *err = DXE_SYNTAX; return NULL; }
                for (k = 0; k < e->n; k++) {
                    if (e->lens[k] == n && memcmp(e->names[k], s, n) == 0) { code = (uint8_t)(k + 1); break; }
                }
                *(uint8_t *)slot = code;   /* unknown name: 0 (absent) */
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
        memcpy(rec, c->tmpl[rt], c->rec_size[rt]);
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

    /* COMPACT values array of type rt at p ('[' expected). Returns past ']' or NULL (error
     * recorded; nothing committed). */
    static const char *
    ff_dx_compact(ff_dxctx *c, int rt, int64_t chan, const char *p, const char *end)
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
                if (FF_LIKELY((unsigned)(ch - '0') < 10u || ch == '-')) {
                    q = ff_dx_fast_double(p, end, &d);
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
                    q = ff_dx_fast_int(p, end, &v);
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
                    q = ff_dx_fast_int(p, end, &v);
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
            if (ch == ' ' || ch == '\\n' || ch == '\\r' || ch == '\\t') {
                p = ff_skip_ws(p, end);
                if (FF_UNLIKELY(p >= end)) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
                goto retry;
            }
            q = ff_dx_value_slow(c, f, p, end, rec, &err);
            if (FF_UNLIKELY(q == NULL)) { ff_dx_fail(c, err, rt, f->name, p, nf); return NULL; }
        done:
            p = q;
            if (++fi == nf) {
                fi = 0;
                if (FF_LIKELY(rec != ovf)) written++;
                else c->n_overflowed++;
            }
            if (FF_UNLIKELY(p >= end)) { ff_dx_fail(c, DXE_SYNTAX, rt, NULL, p, 0); return NULL; }
            ch = *p;
            if (FF_LIKELY(ch == ',')) { p++; continue; }
            if (ch == ']') break;
            if (ch == ' ' || ch == '\\n' || ch == '\\r' || ch == '\\t') {
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
                if (!q) { ff_dx_fail(c, err, rt, f->name, p, 0); return NULL; }
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
    """
    enum:
        FF_DX_NTYPES
        FF_DX_MAXCH
        FF_DX_MAXENUM
    enum:
        DXK_SKIP
        DXK_SYMBOL
        DXK_EVTYPE
        DXK_F64
        DXK_I64
        DXK_I32
        DXK_BOOL
        DXK_ENUM
        DXK_CHAR
        DXK_STR
    enum:
        DXE_OK
        DXE_SYNTAX
        DXE_TYPE
        DXE_INT
        DXE_RANGE
        DXE_COUNT
        DXE_CHAR
        DXE_NOTARRAY
        DXE_NOEVTYPE
        DXE_DATA
        DXE_NOMEM
        DXE_TRAILING
        DXE_ELEMENT
    ctypedef struct ff_dxfield:
        const char *name
        uint32_t off
        uint16_t namelen
        uint8_t kind
        uint8_t enum_id
    ctypedef struct ff_dxchan:
        int64_t channel
        ff_dxfield *f[FF_DX_NTYPES]
        int nf[FF_DX_NTYPES]
    ctypedef struct ff_dxenum:
        const char *names[FF_DX_MAXENUM]
        uint8_t lens[FF_DX_MAXENUM]
        int n
    ff_dxenum ff_dx_enums[FF_DX_MAXENUM]
    ctypedef uint32_t (*ff_dx_intern_fn)(void *owner, const char *s, size_t n) noexcept
    ctypedef struct ff_dxctx:
        ff_ring *ring[FF_DX_NTYPES]
        const char *tmpl[FF_DX_NTYPES]
        uint32_t rec_size[FF_DX_NTYPES]
        const char *tname[FF_DX_NTYPES]
        uint32_t tlen[FF_DX_NTYPES]
        const ff_dxfield *def_f[FF_DX_NTYPES]
        int def_n[FF_DX_NTYPES]
        const ff_dxfield *full_f[FF_DX_NTYPES]
        int full_n[FF_DX_NTYPES]
        uint64_t committed[FF_DX_NTYPES]
        ff_dxchan chans[FF_DX_MAXCH]
        int nchans
        ff_dx_intern_fn intern
        void *owner
        char *scratch
        size_t scratch_cap
        int64_t ts_recv
        uint64_t n_overflowed
        uint64_t n_skipped
        int err
        int err_rtype
        const char *err_field
        int64_t err_off
        int err_nf
    int64_t ff_dx_message(ff_dxctx *c, const char *buf, size_t size) nogil


# --------------------------------------------------------------------------------------------
# Static tables (built once at import from the generated record metadata)
# --------------------------------------------------------------------------------------------

DX_TYPES = ("Quote", "Trade", "TradeETH", "Greeks", "Summary", "Profile", "Candle",
            "TimeAndSale", "TheoPrice", "Underlying")

_KIND_CODES = {"f64": DXK_F64, "i64": DXK_I64, "i32": DXK_I32, "bool": DXK_BOOL,
               "char": DXK_CHAR, "str": DXK_STR}
_ENUM_IDS = {name: i for i, name in enumerate(ENUMS)}

# Everything the C tables point into (field and enum names) stays alive here.
cdef dict _NAME_BYTES = {}


cdef const char *_cname(str name, uint16_t *n) except NULL:
    b = _NAME_BYTES.get(name)
    if b is None:
        b = name.encode("utf-8")
        _NAME_BYTES[name] = b
    n[0] = <uint16_t>len(<bytes>b)
    return <const char *>(<bytes>b)


def _field_spec(str layout, str name):
    """(kind code, offset, enum id) of wire field ``name`` of ``layout``; SKIP when unknown."""
    if name == "eventSymbol":
        return DXK_SYMBOL, 4, 0
    if name == "eventType":
        return DXK_EVTYPE, 0, 0
    for f in LAYOUTS[layout]["fields"]:
        if f["wire"] == name or name in f["aliases"]:
            kind = f["kind"]
            if kind.startswith("enum:"):
                return DXK_ENUM, f["offset"], _ENUM_IDS[kind[5:]]
            return _KIND_CODES[kind], f["offset"], 0
    return DXK_SKIP, 0, 0


cdef ff_dxfield *_build_table(str layout, names, int *nout) except NULL:
    cdef Py_ssize_t n = len(names), i
    cdef ff_dxfield *t = <ff_dxfield *>malloc(max(n, 1) * sizeof(ff_dxfield))
    cdef uint16_t ln
    if t == NULL:
        raise MemoryError()
    for i in range(n):
        name = names[i]
        kind, off, eid = _field_spec(layout, name)
        t[i].name = _cname(name, &ln)
        t[i].namelen = ln
        t[i].kind = kind
        t[i].off = off
        t[i].enum_id = eid
    nout[0] = <int>n
    return t


cdef ff_dxfield *_DEF_F[FF_DX_NTYPES]
cdef int _DEF_N[FF_DX_NTYPES]
cdef ff_dxfield *_FULL_F[FF_DX_NTYPES]
cdef int _FULL_N[FF_DX_NTYPES]
cdef dict _RTYPE_OF = {}          # wire type -> rtype
cdef dict _CLASS_OF = {}          # wire type -> event class


cdef _init_tables():
    cdef int rt, k
    cdef uint16_t ln
    memset(_DEF_F, 0, sizeof(_DEF_F))
    memset(_FULL_F, 0, sizeof(_FULL_F))
    for wire in DX_TYPES:
        lay = LAYOUTS[wire]
        rt = lay["rtypes"][wire]
        _RTYPE_OF[wire] = rt
        cls = _dxfeed.EVENT_CLASSES[wire]
        _CLASS_OF[wire] = cls
        _DEF_F[rt] = _build_table(wire, list(cls.FIELDS), &_DEF_N[rt])
        full = ["eventType", "eventSymbol"]
        for f in lay["fields"]:
            full.append(f["wire"])
            full.extend(f["aliases"])
        _FULL_F[rt] = _build_table(wire, full, &_FULL_N[rt])
    for name, values in ENUMS.items():
        eid = _ENUM_IDS[name]
        if eid >= FF_DX_MAXENUM or len(values) > FF_DX_MAXENUM:
            raise RuntimeError("dxlink: enum table too small")
        ff_dx_enums[eid].n = len(values)
        for k in range(len(values)):
            ff_dx_enums[eid].names[k] = _cname(values[k], &ln)
            ff_dx_enums[eid].lens[k] = <uint8_t>ln


_init_tables()

_REASONS = {
    DXE_SYNTAX: "malformed JSON",
    DXE_TYPE: "wrong value type",
    DXE_INT: "integer expected",
    DXE_RANGE: "integer out of range",
    DXE_COUNT: "value array length is not a multiple of the field count",
    DXE_CHAR: "char field is not a single character",
    DXE_NOTARRAY: "event values are not an array",
    DXE_NOEVTYPE: "FULL event without eventType",
    DXE_DATA: "FEED_DATA data is not an array",
    DXE_NOMEM: "out of memory",
    DXE_TRAILING: "trailing characters after the message",
    DXE_ELEMENT: "FEED_DATA element is neither an event type name nor an event object",
}


cdef uint32_t _intern_cb(void *owner, const char *s, size_t n) noexcept:
    return (<SymbolTable>owner).intern(s, <Py_ssize_t>n)


# --------------------------------------------------------------------------------------------
# Control events (rare: small Python objects)
# --------------------------------------------------------------------------------------------

class ControlEvent:
    """Base of the DXLink control events appended to ``decoder.control``."""

    __slots__ = ("channel",)

    def _fields(self):
        out = []
        for cls in type(self).__mro__:
            out.extend(getattr(cls, "__slots__", ()))
        return out

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, k) == getattr(other, k) for k in self._fields())

    __hash__ = None


class SetupReceived(ControlEvent):
    """The server's SETUP: its version and keepalive timeouts (seconds)."""

    __slots__ = ("version", "keepalive_timeout", "accept_keepalive_timeout")

    def __init__(self, version, keepalive_timeout, accept_keepalive_timeout, channel=0):
        self.channel = channel
        self.version = version
        self.keepalive_timeout = keepalive_timeout
        self.accept_keepalive_timeout = accept_keepalive_timeout


class AuthState(ControlEvent):
    """AUTH_STATE: ``state`` is "AUTHORIZED" or "UNAUTHORIZED"; ``rejected`` is True when an
    UNAUTHORIZED answers a token this session sent (the streamer raises AuthenticationError)."""

    __slots__ = ("state", "user_id", "rejected")

    def __init__(self, state, user_id=None, rejected=False, channel=0):
        self.channel = channel
        self.state = state
        self.user_id = user_id
        self.rejected = rejected


class ChannelOpened(ControlEvent):
    __slots__ = ("service", "parameters")

    def __init__(self, channel, service=None, parameters=None):
        self.channel = channel
        self.service = service
        self.parameters = parameters


class ChannelClosed(ControlEvent):
    __slots__ = ()

    def __init__(self, channel):
        self.channel = channel


class FeedConfig(ControlEvent):
    """FEED_CONFIG: ``event_fields`` as sent (None when absent)."""

    __slots__ = ("aggregation_period", "data_format", "event_fields")

    def __init__(self, channel, aggregation_period=None, data_format=None, event_fields=None):
        self.channel = channel
        self.aggregation_period = aggregation_period
        self.data_format = data_format
        self.event_fields = event_fields


class ErrorReceived(ControlEvent):
    """ERROR from the server (connection-level when ``channel`` is 0)."""

    __slots__ = ("error", "message")

    def __init__(self, channel, error=None, message=None):
        self.channel = channel
        self.error = error
        self.message = message


class KeepaliveReceived(ControlEvent):
    __slots__ = ()

    def __init__(self, channel=0):
        self.channel = channel


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024


cdef class DXLinkDecoder(ProtocolCore):
    """Sans-I/O DXLink decoder: ``feed(message) -> int`` and ``drain(event_type) -> EventBatch``.

    ``policy``: ring overflow policy ("drop_oldest" or "backpressure"); ``ring_bytes``: about
    how many bytes each of the 10 rings holds; ``max_message_size``: larger messages are refused
    with ProtocolError.
    """

    cdef ff_dxctx ctx
    cdef readonly Py_ssize_t max_message_size
    cdef dict _chan_fields              # channel -> {wire type: [field names]} (from FEED_CONFIG)
    cdef list _keep                     # objects the C context points into

    def __cinit__(self, *args, policy="drop_oldest", ring_bytes=DEFAULT_RING_BYTES,
                  max_message_size=DEFAULT_MAX_MESSAGE_SIZE, **kwargs):
        cdef int rt, pol
        cdef uint16_t ln
        memset(&self.ctx, 0, sizeof(ff_dxctx))
        self.feed_name = "dxlink"
        self.max_message_size = max_message_size
        self._chan_fields = {}
        self._keep = []
        if policy in ("drop_oldest", 0):
            pol = 0
        elif policy in ("backpressure", 1):
            pol = 1
        else:
            raise ValueError(f"unknown overflow policy {policy!r}")
        for wire in DX_TYPES:
            rt = _RTYPE_OF[wire]
            self._add_ring(wire, wire, rt, ring_capacity_for(wire, ring_bytes), pol)
            self.ctx.ring[rt] = self.rptr[rt]
            tmpl = (<object>_CLASS_OF[wire])._DEFAULTS
            self._keep.append(tmpl)
            self.ctx.tmpl[rt] = <const char *>(<bytes>tmpl)
            self.ctx.rec_size[rt] = <uint32_t>LAYOUTS[wire]["size"]
            if len(<bytes>tmpl) != self.ctx.rec_size[rt] or self.ctx.rec_size[rt] > 512:
                raise RuntimeError(f"dxlink: bad template for {wire}")
            self.ctx.tname[rt] = _cname(wire, &ln)
            self.ctx.tlen[rt] = ln
            self.ctx.def_f[rt] = _DEF_F[rt]
            self.ctx.def_n[rt] = _DEF_N[rt]
            self.ctx.full_f[rt] = _FULL_F[rt]
            self.ctx.full_n[rt] = _FULL_N[rt]
        self.ctx.intern = _intern_cb
        self.ctx.owner = <void *>self.symbols

    def __init__(self, *, policy="drop_oldest", ring_bytes=DEFAULT_RING_BYTES,
                 max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        pass

    def __dealloc__(self):
        cdef int i, rt
        for i in range(self.ctx.nchans):
            for rt in range(FF_DX_NTYPES):
                free(self.ctx.chans[i].f[rt])
        free(self.ctx.scratch)

    # ---- hot path ---------------------------------------------------------------------------

    cdef Py_ssize_t feed_ptr(self, const char *data, Py_ssize_t size) noexcept:
        cdef int64_t n
        self.n_messages += 1
        self.n_bytes += <uint64_t>size
        if size > self.max_message_size:
            self.n_errors += 1
            self._fail_too_large(size)
            return -1
        self.ctx.ts_recv = self.ts_recv
        n = ff_dx_message(&self.ctx, data, <size_t>size)
        if n >= 0:
            self.n_events += <uint64_t>n
            if self.ctx.n_overflowed:
                self.n_overflowed += self.ctx.n_overflowed
                self.ctx.n_overflowed = 0
            if self.ctx.n_skipped:
                self.n_skipped += self.ctx.n_skipped
                self.ctx.n_skipped = 0
            if self.ctx.err:
                self.n_errors += 1
                self._set_error()
            return <Py_ssize_t>n
        return self._control_ptr(data, size)

    cdef Py_ssize_t _control_ptr(self, const char *data, Py_ssize_t size) noexcept:
        try:
            raw = PyBytes_FromStringAndSize(data, size)
            self._on_message(raw)
            return 0
        except ProtocolError as e:
            self.n_errors += 1
            self.error = e
            return -1
        except BaseException as e:
            self.n_errors += 1
            self.error = ProtocolError("dxlink", f"cannot handle message: {type(e).__name__}: {e}")
            return -1

    cdef void _fail_too_large(self, Py_ssize_t size) noexcept:
        try:
            self.error = ProtocolError(
                "dxlink", f"message too large ({size} bytes > max_message_size {self.max_message_size})")
        except BaseException:
            pass

    cdef void _set_error(self) noexcept:
        cdef int rt = self.ctx.err_rtype
        try:
            reason = _REASONS.get(self.ctx.err, "malformed message")
            if self.ctx.err == DXE_COUNT:
                reason = f"{reason} ({self.ctx.err_nf})"
            event_type = DX_TYPES[rt - 1] if 0 < rt < FF_DX_NTYPES else None
            field = None
            if self.ctx.err_field != NULL:
                field = (<bytes>self.ctx.err_field).decode("utf-8", "replace")
            self.error = ProtocolError("dxlink", reason, event_type=event_type, field=field,
                                       offset=self.ctx.err_off if self.ctx.err_off >= 0 else None)
        except BaseException:
            pass

    # ---- control path (rare; Python) --------------------------------------------------------

    def _on_message(self, raw):
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ProtocolError("dxlink", f"message is not valid JSON ({e.msg if hasattr(e, 'msg') else e})",
                                offset=getattr(e, "pos", None)) from None
        if not isinstance(msg, dict):
            raise ProtocolError("dxlink", "message is not a JSON object")
        typ = msg.get("type")
        if not isinstance(typ, str):
            raise ProtocolError("dxlink", "message has no string 'type'")
        ch = msg.get("channel", 0)
        if not isinstance(ch, int) or isinstance(ch, bool):
            raise ProtocolError("dxlink", f"{typ}: 'channel' is not an integer", field="channel")
        self._dispatch(typ, ch, msg)

    def _dispatch(self, str typ, ch, dict msg):
        """Turn one parsed control message into control events (overridden by the session)."""
        if typ == "FEED_CONFIG":
            ev = msg.get("eventFields")
            if ev is not None:
                self._apply_event_fields(ch, ev)
            self.control.append(FeedConfig(ch, msg.get("aggregationPeriod"),
                                           msg.get("dataFormat"), ev))
        elif typ == "KEEPALIVE":
            self.control.append(KeepaliveReceived(ch))
        elif typ == "AUTH_STATE":
            self.control.append(AuthState(msg.get("state"), msg.get("userId"), False, ch))
        elif typ == "SETUP":
            self.control.append(SetupReceived(msg.get("version"), msg.get("keepaliveTimeout"),
                                              msg.get("acceptKeepaliveTimeout"), ch))
        elif typ == "CHANNEL_OPENED":
            self.control.append(ChannelOpened(ch, msg.get("service"), msg.get("parameters")))
        elif typ == "CHANNEL_CLOSED":
            self._forget_channel(ch)
            self.control.append(ChannelClosed(ch))
        elif typ == "ERROR":
            self.control.append(ErrorReceived(ch, msg.get("error"), msg.get("message")))
        # anything else (unknown types, client-side messages, escaped FEED_DATA) is ignored

    def event_fields(self, channel, event_type):
        """The COMPACT field order used for ``event_type`` on ``channel`` (FEED_CONFIG's, or
        the class's FIELDS before any FEED_CONFIG)."""
        wire = self._wire_name(event_type)
        got = self._chan_fields.get(channel, {}).get(wire)
        if got is not None:
            return tuple(got)
        return tuple(_CLASS_OF[wire].FIELDS)

    cdef int _chan_index(self, int64_t ch) except -1:
        cdef int i
        for i in range(self.ctx.nchans):
            if self.ctx.chans[i].channel == ch:
                return i
        if self.ctx.nchans >= FF_DX_MAXCH:
            raise ProtocolError("dxlink", f"too many channels with FEED_CONFIG (max {FF_DX_MAXCH})")
        i = self.ctx.nchans
        memset(&self.ctx.chans[i], 0, sizeof(ff_dxchan))
        self.ctx.chans[i].channel = ch
        self.ctx.nchans += 1
        return i

    def _apply_event_fields(self, ch, ev):
        cdef int i, rt, nf
        cdef ff_dxfield *t
        if not isinstance(ev, dict):
            raise ProtocolError("dxlink", "FEED_CONFIG eventFields is not an object",
                                field="eventFields")
        for wire, names in ev.items():
            if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
                raise ProtocolError("dxlink", "FEED_CONFIG eventFields entry is not a list of names",
                                    event_type=wire, field="eventFields")
        for wire, names in ev.items():
            if wire not in _RTYPE_OF or not names:
                continue          # unknown event type / empty list (= server defaults): keep
            rt = _RTYPE_OF[wire]
            i = self._chan_index(ch)
            t = _build_table(wire, names, &nf)
            free(self.ctx.chans[i].f[rt])
            self.ctx.chans[i].f[rt] = t
            self.ctx.chans[i].nf[rt] = nf
            self._chan_fields.setdefault(ch, {})[wire] = list(names)

    def _forget_channel(self, ch):
        """Drop the FEED_CONFIG field tables of ``ch`` (after CHANNEL_CLOSED / reconnect)."""
        cdef int i, rt
        self._chan_fields.pop(ch, None)
        for i in range(self.ctx.nchans):
            if self.ctx.chans[i].channel == ch:
                for rt in range(FF_DX_NTYPES):
                    free(self.ctx.chans[i].f[rt])
                self.ctx.nchans -= 1
                if i != self.ctx.nchans:
                    self.ctx.chans[i] = self.ctx.chans[self.ctx.nchans]
                memset(&self.ctx.chans[self.ctx.nchans], 0, sizeof(ff_dxchan))
                return

    def reset_channels(self):
        """Forget every channel's FEED_CONFIG (a new connection starts from the class FIELDS)."""
        cdef int i, rt
        self._chan_fields.clear()
        for i in range(self.ctx.nchans):
            for rt in range(FF_DX_NTYPES):
                free(self.ctx.chans[i].f[rt])
        memset(self.ctx.chans, 0, sizeof(self.ctx.chans))
        self.ctx.nchans = 0

    def enum_name(self, str enum, int code):
        """Name of enum ``code`` (e.g. ``enum_name("Direction", 6) == "UP"``); None for 0."""
        return enum_name(enum, code)


def enum_name(str enum, int code):
    """Name of code ``code`` of enum ``enum`` (0 = absent -> None)."""
    names = ENUMS[enum]
    if 0 < code <= len(names):
        return names[code - 1]
    return None


def enum_code(str enum, str name):
    """Code of ``name`` in enum ``enum`` (0 when unknown)."""
    names = ENUMS[enum]
    try:
        return names.index(name) + 1
    except ValueError:
        return 0


# --------------------------------------------------------------------------------------------
# Session: typed Python in fastfeed/dxlink/session.py (issue #12). The names it used to have
# here still resolve (lazily: the session module imports this one).

_SESSION_NAMES = frozenset({
    "DXLinkSession", "CHANNELS", "MAX_SUBSCRIPTION_BYTES", "INITIAL", "SETUP_SENT",
    "UNAUTHORIZED", "AUTHORIZED", "CH_CLOSED", "CH_REQUESTED", "CH_OPENED", "CH_CANCELLING"})


def __getattr__(name):
    if name in _SESSION_NAMES:
        from fastfeed.dxlink import session
        return getattr(session, name)
    raise AttributeError(f"module 'fastfeed._native.dxlink' has no attribute {name!r}")
