/* fastfeed ring: a bounded ring of fixed-size records with fan-out to any number of consumers.
 *
 * Single producer (the event-loop thread, inside the protocol core), consumers on the same thread.
 * Sequence numbers are monotonic uint64; slot = seq & mask.
 *
 * Producer protocol (one message):
 *     void *rec = ff_ring_slot(r, k);   // k = 0, 1, 2 ... : slot for seq head + k (not yet visible)
 *     ... write the record in place ...
 *     ff_ring_publish(r, n);            // make the first n claimed slots visible (or never, on error)
 *
 * Overflow policies:
 *   FF_DROP_OLDEST   the producer always writes; before it overwrites seq s - capacity it raises the
 *                    monotonic `floor`; a consumer whose cursor is below the floor jumps to it and
 *                    the difference is added to its own `gaps` counter (never silent).
 *   FF_BACKPRESSURE  the producer never overwrites an unread record: when the slowest consumer is a
 *                    full ring behind, the ring doubles (up to max_capacity) so the message in hand
 *                    is never lost, and ff_ring_pressure() tells the transport to pause reading
 *                    (it is above the high-water mark well before that).
 *
 * Slots: seq s lives in slot (s - base) & mask.  base starts at 0 and moves only in
 * ff_ring_rebase: when a message is about to be written and every active consumer has read
 * everything (and no borrowed batch points into the buffer), the next record goes to slot 0
 * again (base = head, floor = head), so a ring that is drained regularly keeps writing into the
 * same warm cache lines instead of sweeping its whole buffer.  Sequence numbers, cursors and
 * gaps do not change (nobody had anything unread: no gap); what the rebase gives up is the
 * history of already-read records for a consumer added later with from_oldest, which starts at
 * the oldest record still addressable (the rebase point).  A ring without active consumers
 * never rebases (its records wait for a from_oldest consumer).
 *
 * Capture (ff_rec_sink, fastfeed.record): rings may share one sink; every publish appends the
 * records it makes visible to the sink's buffer while they are still in L1, as a chunk
 * [ff_cap_chunk: the ring's tag, n][n records] (consecutive publishes of one ring grow one
 * chunk).  No cursor: the ring keeps rebasing.  When a publish does not fit, what fits is kept
 * and the sink is sealed: nothing more is taken until the owner swaps in a new buffer, and the
 * records not taken are counted (dropped) -- so each ring's records in one buffer are
 * consecutive sequences [sink_first, sink_first + sink_n), and the spill-log range they use
 * (sink_lo, sink_hi: positions only grow in publish order) is still held by the ring as long
 * as sink_first + capacity > head (ff_ring_sink_take).
 */
#ifndef FASTFEED_RING_H
#define FASTFEED_RING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastfeed/spill.h"

enum { FF_DROP_OLDEST = 0, FF_BACKPRESSURE = 1 };

typedef struct ff_consumer {
    uint64_t cursor;   /* next seq this consumer reads */
    uint64_t gaps;     /* records this consumer lost to drop-oldest overflow */
    int active;
    int weak;          /* ignored by back-pressure (a cursor nobody may ever read); it can lose
                          records like a drop-oldest consumer, counted in gaps */
} ff_consumer;

/* Capture sink (see "Capture" above). */
typedef struct ff_cap_chunk {
    uint32_t tag;           /* the ring's sink_tag */
    uint32_t n;             /* records that follow */
} ff_cap_chunk;

typedef struct ff_rec_sink {
    uint8_t *buf;           /* NULL: every record is dropped (counted) */
    uint64_t limit;         /* bytes of buf */
    uint64_t len;           /* bytes used */
    uint64_t records;       /* records in buf */
    uint64_t dropped;       /* records not taken: buf full (total, never reset) */
    int sealed;             /* a publish did not fit: nothing more until the next buffer */
    const void *last;       /* ring of the open chunk (NULL: none) */
    uint64_t last_chunk;    /* offset of the open chunk's header */
    uint32_t refs;          /* the owner + every ring attached (ff_rec_sink_release) */
    int orphan;             /* the owner is gone: a ring meeting it detaches itself */
} ff_rec_sink;

typedef struct ff_ring {
    uint8_t *buf;
    uint32_t rec_size;
    int policy;
    uint64_t capacity;      /* power of two (grows for back-pressure rings) */
    uint64_t nominal;       /* capacity asked for: the back-pressure threshold is measured on it */
    uint64_t mask;
    uint64_t max_capacity;  /* back-pressure growth limit (power of two >= capacity) */
    uint64_t head;          /* next seq to publish; records [.., head) are visible */
    uint64_t base;          /* seq stored in slot 0 (see "Slots" above); base <= floor */
    uint64_t floor;         /* records below floor may have been overwritten (monotonic) */
    uint64_t claimed;       /* slots claimed past head for the message in hand */
    uint64_t grown;         /* times the ring doubled (back-pressure) */
    uint64_t overflowed;    /* records dropped at the producer (back-pressure ring at max_capacity) */
    ff_consumer *consumers;
    uint32_t n_consumers;   /* slots used in consumers[] (some may be inactive) */
    uint32_t cap_consumers;
    uint8_t *latest;        /* optional: last record per symbol_id (enabled by ff_ring_enable_latest) */
    uint32_t latest_cap;    /* entries in latest[] */
    int latest_on;
    uint64_t bp_limit;      /* back-pressure: seqs below it are known writable (slowest cursor +
                               capacity when last computed; cursors only move forward, so it
                               stays safe until a consumer is added / made strong) */
    uint64_t rebased;       /* times the ring restarted at slot 0 (ff_ring_rebase) */
    uint32_t held;          /* borrowed batches pointing into buf (no rebase meanwhile) */
    ff_spill spill;         /* side storage of values that do not fit a record (spill.h; written
                               by the polygon decoder, copied out by drains) */
    ff_rec_sink *sink;      /* capture (NULL: none); see "Capture" above */
    uint32_t sink_tag;
    int sink_spilled;       /* a record captured into the sink's buffer has spill */
    uint64_t sink_first;    /* sequence of the first record in the sink's buffer */
    uint64_t sink_n;        /* records of this ring in the sink's buffer */
    uint32_t sink_lo, sink_hi;  /* spill-log range they use (when sink_spilled) */
} ff_ring;

/* Copy one record inline (fixed-size chunks the compiler turns into vector moves): records are
 * a few hundred bytes at most, and a libc call per record costs more than the copy. */
static inline void ff_rec_copy(uint8_t *dst, const uint8_t *src, uint32_t size) {
    uint32_t o = 0;
    if (size >= 32) {
        /* 64 bytes per iteration, then at most one 32-byte block, then the last 32 bytes of
         * the record again (overlapping what was copied: one store instead of a word loop) */
        for (; o + 64 <= size; o += 64) {
            memcpy(dst + o, src + o, 32);
            memcpy(dst + o + 32, src + o + 32, 32);
        }
        if (o + 32 <= size) {
            memcpy(dst + o, src + o, 32);
            o += 32;
        }
        if (o < size) memcpy(dst + size - 32, src + size - 32, 32);
        return;
    }
    for (; o + 8 <= size; o += 8) memcpy(dst + o, src + o, 8);
    if (o < size) memcpy(dst + o, src + o, size - o);
}

static inline uint64_t ff_pow2_ceil(uint64_t v) {
    uint64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

/* Byte offset in buf of the slot of seq s. */
static inline size_t ff_ring_off(const ff_ring *r, uint64_t s) {
    return (size_t)((s - r->base) & r->mask) * r->rec_size;
}

/* Returns 0 on success, -1 on allocation failure. */
static inline int ff_ring_init(ff_ring *r, uint32_t rec_size, uint64_t capacity, int policy,
                               uint64_t max_capacity) {
    memset(r, 0, sizeof(*r));
    if (rec_size == 0 || capacity == 0) return -1;
    capacity = ff_pow2_ceil(capacity);
    if (max_capacity < capacity) max_capacity = capacity;
    max_capacity = ff_pow2_ceil(max_capacity);
    r->buf = (uint8_t *)calloc((size_t)capacity, rec_size);
    if (!r->buf) return -1;
    r->rec_size = rec_size;
    r->policy = policy;
    r->capacity = capacity;
    r->nominal = capacity;
    r->mask = capacity - 1;
    r->max_capacity = max_capacity;
    return 0;
}

/* A sink is shared by its owner and the rings attached to it, which may die in any order (the
 * garbage collector frees a cycle in no particular order): each holds a reference, the last
 * one frees it, and a ring whose sink lost its owner detaches itself at its next publish. */
static inline ff_rec_sink *ff_rec_sink_new(void) {
    ff_rec_sink *k = (ff_rec_sink *)calloc(1, sizeof(ff_rec_sink));
    if (k) k->refs = 1;
    return k;
}

static inline void ff_rec_sink_release(ff_rec_sink *k) {
    if (k && --k->refs == 0) free(k);
}

/* The owner is gone: nothing is captured any more, the rings let go at their next publish. */
static inline void ff_rec_sink_orphan(ff_rec_sink *k) {
    k->buf = NULL;
    k->limit = 0;
    k->orphan = 1;
    ff_rec_sink_release(k);
}

/* Attach r to k (tag: r's chunks); -1 when r is captured by another live sink. */
static inline int ff_ring_sink_attach(ff_ring *r, ff_rec_sink *k, uint32_t tag) {
    if (r->sink) {
        if (!r->sink->orphan) return -1;
        ff_rec_sink_release(r->sink);
    }
    k->refs++;
    r->sink = k;
    r->sink_tag = tag;
    r->sink_n = 0;
    r->sink_spilled = 0;
    return 0;
}

static inline void ff_ring_sink_detach(ff_ring *r, const ff_rec_sink *k) {
    if (r->sink == k) {
        ff_rec_sink_release(r->sink);
        r->sink = NULL;
        r->sink_n = 0;
        r->sink_spilled = 0;
    }
}

static inline void ff_ring_free(ff_ring *r) {
    if (r->sink) {
        ff_rec_sink_release(r->sink);
        r->sink = NULL;
    }
    ff_spill_free(&r->spill);
    free(r->latest);
    r->latest = NULL;
    free(r->buf);
    free(r->consumers);
    r->buf = NULL;
    r->consumers = NULL;
    r->n_consumers = r->cap_consumers = 0;
}

/* Slowest active consumer's cursor (head when there is none). */
static inline uint64_t ff_ring_min_cursor(const ff_ring *r) {
    uint64_t m = r->head;
    for (uint32_t i = 0; i < r->n_consumers; i++) {
        const ff_consumer *c = &r->consumers[i];
        if (c->active && !c->weak) {
            uint64_t cur = c->cursor < r->floor ? r->floor : c->cursor;
            if (cur < m) m = cur;
        }
    }
    return m;
}

/* Double the ring, keeping every record in [lo, hi) at its sequence position. */
static inline int ff_ring_grow(ff_ring *r, uint64_t lo, uint64_t hi) {
    uint64_t ncap = r->capacity * 2;
    uint8_t *nbuf = (uint8_t *)calloc((size_t)ncap, r->rec_size);
    if (!nbuf) return -1;
    uint64_t nmask = ncap - 1;
    for (uint64_t s = lo; s < hi; s++) {
        memcpy(nbuf + ((s - r->base) & nmask) * r->rec_size, r->buf + ff_ring_off(r, s),
               r->rec_size);
    }
    free(r->buf);
    r->buf = nbuf;
    r->capacity = ncap;
    r->mask = nmask;
    r->grown++;
    r->bp_limit = 0;
    return 0;
}

/* Restart at slot 0 when every active consumer has read everything and no borrowed batch
 * points into the buffer (see "Slots" above).  Called with no slot claimed. */
static inline void ff_ring_rebase(ff_ring *r) {
    uint32_t i, active = 0;
    if (r->held || r->claimed) return;
    for (i = 0; i < r->n_consumers; i++) {
        const ff_consumer *c = &r->consumers[i];
        if (c->active) {
            if (c->cursor != r->head) return;
            active++;
        }
    }
    if (!active) return;
    r->base = r->head;
    if (r->floor < r->head) r->floor = r->head;
    r->rebased++;
}

/* Slot for seq head + k (k counts from 0 within the message in hand). NULL only when a
 * back-pressure ring is at max_capacity and its slowest consumer is a full ring behind, or on
 * allocation failure: the caller counts the record as overflowed. */
static inline void *ff_ring_slot(ff_ring *r, uint64_t k) {
    uint64_t s;
    if (k == 0 && r->claimed == 0 && r->head != r->base) ff_ring_rebase(r);
    s = r->head + k;
    if (k + 1 > r->claimed) r->claimed = k + 1;
    if (r->policy == FF_BACKPRESSURE && s >= r->bp_limit) {
        /* slot s holds seq s - capacity: still unread by someone iff s >= min_cursor + capacity */
        uint64_t minc = ff_ring_min_cursor(r);
        r->bp_limit = minc + r->capacity;
        while (s >= minc + r->capacity) {
            if (r->capacity >= r->max_capacity || ff_ring_grow(r, minc, r->head + r->claimed) != 0) {
                r->overflowed++;
                return NULL;
            }
        }
    }
    if (s >= r->capacity && s + 1 - r->capacity > r->floor) r->floor = s + 1 - r->capacity;
    return r->buf + ff_ring_off(r, s);
}

/* Make the first n claimed slots visible. n may be less than the claimed count (the rest is
 * abandoned, e.g. a malformed tail); abandoned slots are simply reused by the next message. */
static inline void ff_ring_track_latest(ff_ring *r, uint64_t n) {
    for (uint64_t s = r->head; s < r->head + n; s++) {
        const uint8_t *rec = r->buf + ff_ring_off(r, s);
        uint32_t sid;
        memcpy(&sid, rec + 4, sizeof(sid)); /* ff_header.symbol_id */
        if (sid >= r->latest_cap) {
            uint32_t ncap = r->latest_cap ? r->latest_cap : 64;
            while (ncap <= sid) ncap *= 2;
            uint8_t *nl = (uint8_t *)realloc(r->latest, (size_t)ncap * r->rec_size);
            if (!nl) continue;
            memset(nl + (size_t)r->latest_cap * r->rec_size, 0, (size_t)(ncap - r->latest_cap) * r->rec_size);
            r->latest = nl;
            r->latest_cap = ncap;
        }
        ff_rec_copy(r->latest + (size_t)sid * r->rec_size, rec, r->rec_size);
    }
}

/* Append the n records about to be published to the ring's sink (see "Capture" above). */
static inline void ff_ring_capture(ff_ring *r, uint64_t n) {
    ff_rec_sink *k = r->sink;
    uint64_t need = n * r->rec_size, take = n, start, first, i;
    int cont = k->last == (const void *)r;   /* this ring's chunk is the last one: grow it */
    uint8_t *dst;
    if (k->orphan) {
        r->sink = NULL;
        r->sink_n = 0;
        r->sink_spilled = 0;
        ff_rec_sink_release(k);
        return;
    }
    if (k->sealed) {
        k->dropped += n;
        return;
    }
    if (!cont) need += sizeof(ff_cap_chunk);
    if (k->len + need > k->limit) {
        uint64_t room = k->limit - k->len;
        if (!cont) room = room > sizeof(ff_cap_chunk) ? room - sizeof(ff_cap_chunk) : 0;
        take = room / r->rec_size;
        k->sealed = 1;
        k->dropped += n - take;
        if (!take) return;
    }
    if (!cont) {
        ff_cap_chunk h;
        h.tag = r->sink_tag;
        h.n = 0;
        k->last = r;
        k->last_chunk = k->len;
        memcpy(k->buf + k->len, &h, sizeof(h));
        k->len += sizeof(h);
    }
    if (r->sink_n == 0) r->sink_first = r->head;
    dst = k->buf + k->len;
    start = (r->head - r->base) & r->mask;
    first = r->capacity - start;
    if (first > take) first = take;
    memcpy(dst, r->buf + start * r->rec_size, (size_t)(first * r->rec_size));
    if (take > first)
        memcpy(dst + first * r->rec_size, r->buf, (size_t)((take - first) * r->rec_size));
    if (r->spill.used && r->rec_size >= 40) {
        for (i = 0; i < take; i++) {
            uint64_t ref;
            memcpy(&ref, dst + i * r->rec_size + 32, 8);
            if (ref >> 32) {
                if (!r->sink_spilled) r->sink_lo = (uint32_t)ref;
                r->sink_spilled = 1;
                r->sink_hi = (uint32_t)ref + (uint32_t)(ref >> 32);
            }
        }
    }
    {
        uint32_t cn;
        memcpy(&cn, k->buf + k->last_chunk + 4, 4);
        cn += (uint32_t)take;
        memcpy(k->buf + k->last_chunk + 4, &cn, 4);
    }
    k->len += take * r->rec_size;
    k->records += take;
    r->sink_n += take;
}

/* The ring's part of its sink's buffer, for the owner about to hand the buffer over: *n
 * records, the spill-log range [*lo, *lo + *spill_n) they use (*spill_n = 0: none), and 0 --
 * or -1 when that range may no longer be held (the buffer stayed sealed while the ring went a
 * full capacity further: its records here must be counted as lost).  Resets the ring's part. */
static inline int ff_ring_sink_take(ff_ring *r, uint64_t *n, uint32_t *lo, uint32_t *spill_n) {
    int ok = 1;
    *n = r->sink_n;
    *lo = *spill_n = 0;
    if (r->sink_spilled) {
        ok = r->sink_first + r->capacity > r->head;
        *lo = r->sink_lo;
        *spill_n = r->sink_hi - r->sink_lo;
    }
    r->sink_n = 0;
    r->sink_spilled = 0;
    return ok ? 0 : -1;
}

static inline void ff_ring_publish(ff_ring *r, uint64_t n) {
    if (r->latest_on && n) ff_ring_track_latest(r, n);
    if (r->sink && n) ff_ring_capture(r, n);
    r->head += n;
    r->claimed = 0;
}

static inline void ff_ring_enable_latest(ff_ring *r) { r->latest_on = 1; }

/* Last record published for symbol_id (rtype != 0), or NULL. Requires ff_ring_enable_latest. */
static inline const void *ff_ring_latest(const ff_ring *r, uint32_t sid) {
    if (!r->latest_on || sid >= r->latest_cap) return NULL;
    const uint8_t *rec = r->latest + (size_t)sid * r->rec_size;
    uint16_t rtype;
    memcpy(&rtype, rec, sizeof(rtype));
    return rtype ? rec : NULL;
}

/* Release the spill of records the ring has overwritten (spill.h).  A released record that is
 * still the ring's latest one for its symbol keeps its bytes: they move to the head of the log
 * and the latest copy is pointed at them. */
static inline void ff_ring_spill_reclaim(ff_ring *r)
{
    ff_spill *sp = &r->spill;
    while (sp->q_n) {
        ff_spill_rec ce = sp->q[sp->q_first];
        if (ce.seq + r->capacity > r->head)
            break;
        sp->q_first = (sp->q_first + 1) & (sp->q_cap - 1);
        sp->q_n--;
        if (r->latest_on && ce.sid < r->latest_cap) {
            uint8_t *lrec = r->latest + (size_t)ce.sid * r->rec_size;
            uint64_t ref;
            uint16_t rt;
            memcpy(&rt, lrec, 2);
            memcpy(&ref, lrec + 32, 8);
            /* the source stays retained: tail <= ce.pos until the loop sets it below */
            if (rt && ref == (((uint64_t)ce.len << 32) | ce.pos) &&
                ff_spill_reserve(sp, ce.len) == 0) {
                uint32_t np = sp->head, p = ce.pos, left = ce.len;
                while (left) {
                    uint32_t o = p & (sp->cap - 1);
                    uint32_t run = sp->cap - o;
                    if (run > left)
                        run = left;
                    ff_spill_write(sp, sp->buf + o, run);
                    p += run;
                    left -= run;
                }
                sp->used -= ce.len;
                ref = ((uint64_t)ce.len << 32) | np;
                memcpy(lrec + 32, &ref, 8);
                if (ff_spill_push(sp, r->head, np, ce.len, ce.sid) == 0) {
                    sp->records--;
                    sp->relocated++;
                }
            }
        }
        sp->tail = sp->q_n ? sp->q[sp->q_first].pos : sp->head;
    }
    if (!sp->q_n)
        sp->tail = sp->head;
}

/* Give the record rec (a claimed slot, to be published as sequence seq) its spill: the len
 * bytes at src are appended to the ring's log and its spill member pointed at them (replay of a
 * recording; the decoders write the log piece by piece).  0, or -1 when the log cannot hold it. */
static inline int ff_ring_spill_put(ff_ring *r, uint8_t *rec, const uint8_t *src, uint32_t len,
                                    uint64_t seq) {
    ff_spill *sp = &r->spill;
    uint64_t ref;
    uint32_t pos, sid;
    ff_ring_spill_reclaim(r);
    if (ff_spill_reserve(sp, len) != 0) return -1;
    pos = sp->head;
    ff_spill_write(sp, src, len);
    ref = ((uint64_t)len << 32) | pos;
    memcpy(rec + 32, &ref, 8);
    memcpy(&sid, rec + 4, sizeof(sid)); /* ff_header.symbol_id */
    return ff_spill_push(sp, seq, pos, len, sid);
}

static inline void ff_ring_abandon(ff_ring *r) { r->claimed = 0; }

/* Register a consumer; it starts at head (new records only) or at the oldest intact record.
 * Returns its index or -1. */
static inline int ff_ring_add_consumer(ff_ring *r, int from_oldest) {
    uint32_t idx = r->n_consumers;
    for (uint32_t i = 0; i < r->n_consumers; i++) {
        if (!r->consumers[i].active) { idx = i; break; }
    }
    if (idx == r->n_consumers) {
        if (r->n_consumers == r->cap_consumers) {
            uint32_t ncap = r->cap_consumers ? r->cap_consumers * 2 : 4;
            ff_consumer *nc = (ff_consumer *)realloc(r->consumers, ncap * sizeof(ff_consumer));
            if (!nc) return -1;
            r->consumers = nc;
            r->cap_consumers = ncap;
        }
        r->n_consumers++;
    }
    ff_consumer *c = &r->consumers[idx];
    uint64_t oldest = r->head > r->capacity ? r->head - r->capacity : 0;
    if (oldest < r->floor) oldest = r->floor;
    c->cursor = from_oldest ? oldest : r->head;
    c->gaps = 0;
    c->active = 1;
    c->weak = 0;
    r->bp_limit = 0;  /* the new cursor may be the slowest */
    return (int)idx;
}

/* A weak consumer does not hold back a back-pressure ring (see ff_consumer.weak). */
static inline void ff_ring_set_weak(ff_ring *r, int idx, int weak) {
    if (idx >= 0 && (uint32_t)idx < r->n_consumers) r->consumers[idx].weak = weak ? 1 : 0;
    r->bp_limit = 0;
}

static inline void ff_ring_remove_consumer(ff_ring *r, int idx) {
    if (idx >= 0 && (uint32_t)idx < r->n_consumers) r->consumers[idx].active = 0;
}

/* Apply drop-oldest loss to a consumer (jump to the floor, count the gap). */
static inline void ff_ring_catch_up(ff_ring *r, ff_consumer *c) {
    if (c->cursor < r->floor) {
        c->gaps += r->floor - c->cursor;
        c->cursor = r->floor;
    }
}

static inline uint64_t ff_ring_available(ff_ring *r, int idx) {
    ff_consumer *c = &r->consumers[idx];
    ff_ring_catch_up(r, c);
    return r->head - c->cursor;
}

/* Copy up to max records for consumer idx into dst (contiguous, oldest first), advance its cursor.
 * Returns the number copied. At most two memcpy calls (the ring may wrap). */
static inline uint64_t ff_ring_read(ff_ring *r, int idx, void *dst, uint64_t max) {
    ff_consumer *c = &r->consumers[idx];
    ff_ring_catch_up(r, c);
    uint64_t n = r->head - c->cursor;
    if (n > max) n = max;
    if (n == 0) return 0;
    uint64_t start = (c->cursor - r->base) & r->mask;
    uint64_t first = r->capacity - start;
    if (first > n) first = n;
    memcpy(dst, r->buf + start * r->rec_size, (size_t)(first * r->rec_size));
    if (n > first) {
        memcpy((uint8_t *)dst + first * r->rec_size, r->buf, (size_t)((n - first) * r->rec_size));
    }
    c->cursor += n;
    return n;
}

/* Pointer to the most recently published record, or NULL. */
static inline const void *ff_ring_last(const ff_ring *r) {
    if (r->head == 0 || r->head <= r->floor) return NULL;
    return r->buf + ff_ring_off(r, r->head - 1);
}

/* Back-pressure: 1 when the slowest consumer has more than half the nominal ring unread
 * (measured on the capacity asked for, not the grown one: growth only absorbs the read in hand). */
static inline int ff_ring_pressure(const ff_ring *r) {
    if (r->policy != FF_BACKPRESSURE) return 0;
    return (r->head - ff_ring_min_cursor(r)) * 2 > r->nominal;
}

#endif /* FASTFEED_RING_H */
