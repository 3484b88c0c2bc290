/* fastfeed spill log: the side storage of one record ring for values that do not fit a record.
 *
 * A polygon record has fixed-size string slots (fixstr:N) and no slot at all for keys fastfeed
 * does not know.  Such values are not cut or dropped: the decoder appends them to the spill log
 * of the record's ring, and the record's ``spill`` member (offset 32) gives its range in the log
 * (u32 position, u32 length; 0 = nothing spilled).  All spill of one record is contiguous; it is
 * a sequence of pieces, each [u8 tag][u32 length, little endian][bytes]:
 *     FF_SPILL_STR   the whole text of a string field (its slot holds the piece's data offset
 *                    relative to the record's range and its length; alt bit 32 + bit is set)
 *     FF_SPILL_KEY   one member without a slot, as raw JSON text: "key":value (wire order)
 *     FF_SPILL_RAW   [u8 field bit] + the raw JSON text of a list longer than its inline slot
 *                    (conditions > 8 codes, books > 100 levels: the slot keeps the first ones,
 *                    the list is read whole from here; alt bit 32 + bit is set)
 *
 * Positions are byte counters modulo 2^32 (the log holds at most 2^30 bytes).  The log keeps the
 * spill of every record still held by its ring (a FIFO of (seq, position, length, symbol) per
 * spilled record: an entry is released when the ring has overwritten that record's slot, unless
 * the record is the ring's latest one for its symbol -- then its bytes move to the head of the
 * log, see ff_ring_spill_reclaim in ring.h).  A drained batch copies the range its records
 * use, so batches and event objects own their spill: it stays valid forever.
 *
 * Nothing here runs unless a value needs it: a ring whose log was never written (used == 0)
 * costs one test per drain.
 */
#ifndef FASTFEED_SPILL_H
#define FASTFEED_SPILL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { FF_SPILL_STR = 1, FF_SPILL_KEY = 2, FF_SPILL_RAW = 3 };
#define FF_SPILL_HDR 5u
#define FF_SPILL_MAX_CAP (1u << 30)

typedef struct ff_spill_rec {
    uint64_t seq;       /* ring sequence of the record */
    uint32_t pos, len;  /* its range in the log */
    uint32_t sid;       /* its symbol id (for the ring's latest table) */
} ff_spill_rec;

typedef struct ff_spill {
    uint8_t *buf;
    uint32_t cap;       /* power of two (0 = not allocated) */
    uint32_t head;      /* next write position */
    uint32_t tail;      /* oldest retained position */
    ff_spill_rec *q;    /* FIFO of spilled records, in position order */
    uint32_t q_cap, q_first, q_n;
    uint64_t used;      /* bytes ever written (0: the log was never needed) */
    uint64_t records;   /* records that spilled */
    uint64_t relocated; /* latest-per-symbol records whose bytes were moved to the head */
} ff_spill;

static inline void ff_spill_free(ff_spill *sp) {
    free(sp->buf);
    free(sp->q);
    memset(sp, 0, sizeof(*sp));
}

/* Bytes held (retained or being written). */
static inline uint32_t ff_spill_size(const ff_spill *sp) { return sp->head - sp->tail; }

/* Copy n bytes at log position pos into dst (the range must be retained). */
static inline void ff_spill_read(const ff_spill *sp, uint32_t pos, uint32_t n, void *dst) {
    uint32_t o = pos & (sp->cap - 1);
    uint32_t first = sp->cap - o;
    if (n == 0) return;
    if (first > n) first = n;
    memcpy(dst, sp->buf + o, first);
    if (n > first) memcpy((uint8_t *)dst + first, sp->buf, n - first);
}

/* Make room for n more bytes at the head (growing, positions kept). 0 or -1 (too large / OOM). */
static inline int ff_spill_reserve(ff_spill *sp, uint32_t n) {
    uint64_t need = (uint64_t)ff_spill_size(sp) + n;
    uint32_t ncap;
    uint8_t *nb;
    uint32_t p;
    if (need <= sp->cap) return 0;
    if (need > FF_SPILL_MAX_CAP) return -1;
    ncap = sp->cap ? sp->cap : 4096;
    while (ncap < need) ncap *= 2;
    nb = (uint8_t *)malloc(ncap);
    if (!nb) return -1;
    /* keep every retained byte at its position modulo the new capacity */
    for (p = sp->tail; p != sp->head;) {
        uint32_t o = p & (sp->cap - 1), no = p & (ncap - 1);
        uint32_t run = sp->cap - o;
        uint32_t left = sp->head - p;
        if (run > left) run = left;
        if (run > ncap - no) run = ncap - no;
        memcpy(nb + no, sp->buf + o, run);
        p += run;
    }
    free(sp->buf);
    sp->buf = nb;
    sp->cap = ncap;
    return 0;
}

/* Append n bytes (room reserved by the caller). */
static inline void ff_spill_write(ff_spill *sp, const void *src, uint32_t n) {
    uint32_t o = sp->head & (sp->cap - 1);
    uint32_t first = sp->cap - o;
    if (first > n) first = n;
    memcpy(sp->buf + o, src, first);
    if (n > first) memcpy(sp->buf, (const uint8_t *)src + first, n - first);
    sp->head += n;
    sp->used += n;
}

/* Append one piece (data = the prefix byte when prefix >= 0, then s[0:n]); returns the log
 * position of its data, or sets *fail. */
static inline uint32_t ff_spill_piece(ff_spill *sp, int tag, int prefix, const void *s, size_t n,
                                      int *fail) {
    uint8_t hdr[FF_SPILL_HDR + 1];
    uint32_t hn = FF_SPILL_HDR + (prefix >= 0);
    uint32_t n32 = (uint32_t)n + (prefix >= 0);
    if (n >= FF_SPILL_MAX_CAP || ff_spill_reserve(sp, hn + (uint32_t)n) != 0) {
        *fail = 1;
        return 0;
    }
    hdr[0] = (uint8_t)tag;
    memcpy(hdr + 1, &n32, 4);
    hdr[FF_SPILL_HDR] = (uint8_t)prefix;
    ff_spill_write(sp, hdr, hn);
    ff_spill_write(sp, s, (uint32_t)n);
    return sp->head - n32;
}

/* Record a spilled record in the FIFO. 0 or -1 (OOM). */
static inline int ff_spill_push(ff_spill *sp, uint64_t seq, uint32_t pos, uint32_t len, uint32_t sid) {
    ff_spill_rec *e;
    if (sp->q_n == sp->q_cap) {
        uint32_t ncap = sp->q_cap ? sp->q_cap * 2 : 64, i;
        ff_spill_rec *nq = (ff_spill_rec *)malloc((size_t)ncap * sizeof(ff_spill_rec));
        if (!nq) return -1;
        for (i = 0; i < sp->q_n; i++) nq[i] = sp->q[(sp->q_first + i) & (sp->q_cap - 1)];
        free(sp->q);
        sp->q = nq;
        sp->q_cap = ncap;
        sp->q_first = 0;
    }
    e = &sp->q[(sp->q_first + sp->q_n) & (sp->q_cap - 1)];
    e->seq = seq;
    e->pos = pos;
    e->len = len;
    e->sid = sid;
    sp->q_n++;
    sp->records++;
    return 0;
}

/* Range [*lo, *lo + *n) of the log used by the records rec[0 .. count) (stride size), relative to
 * nothing: *n = 0 when none spilled.  Used by drains to copy what a batch needs. */
static inline void ff_spill_range(const ff_spill *sp, const uint8_t *rec, uint64_t count,
                                  uint32_t size, uint32_t *lo, uint32_t *n) {
    uint32_t mn = 0xFFFFFFFFu, mx = 0;
    uint64_t i;
    for (i = 0; i < count; i++) {
        uint64_t ref;
        memcpy(&ref, rec + i * size + 32, 8);
        if (ref >> 32) {
            uint32_t a = (uint32_t)ref - sp->tail, b = a + (uint32_t)(ref >> 32);
            if (a < mn) mn = a;
            if (b > mx) mx = b;
        }
    }
    if (mn == 0xFFFFFFFFu) {
        *lo = 0;
        *n = 0;
    } else {
        *lo = sp->tail + mn;
        *n = mx - mn;
    }
}

#endif /* FASTFEED_SPILL_H */
