/* CTest: fastfeed/ring.h -- wrap-around, fan-out, drop-oldest gap counts, back-pressure,
 * abandoned (unpublished) messages, latest-per-symbol, capture.  Behaviour is checked against the
 * semantics documented at the top of ring.h and in CONTRIBUTING.md ("Rings"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"
#include "fastfeed/records.h"
#include "fastfeed/ring.h"

typedef struct {
    ff_header h;
    int64_t seq;
} rec_t;
_Static_assert(sizeof(rec_t) == 24, "test record");

/* Publish one message of n records numbered next, next+1, ...; returns records written. */
static uint64_t produce(ff_ring *r, int64_t *next, uint64_t n, uint32_t sym)
{
    uint64_t k;
    for (k = 0; k < n; k++) {
        rec_t *rec = (rec_t *)ff_ring_slot(r, k);
        if (!rec)
            break;
        memset(rec, 0, sizeof *rec);
        rec->h.rtype = 1;
        rec->h.symbol_id = sym;
        rec->seq = (*next)++;
    }
    ff_ring_publish(r, k);
    return k;
}

/* Read everything for consumer c; check the values are consecutive from *expect. */
static uint64_t drain(ff_ring *r, int c, int64_t *expect, int line)
{
    rec_t buf[64];
    uint64_t total = 0, got;
    while ((got = ff_ring_read(r, c, buf, 64)) > 0) {
        for (uint64_t i = 0; i < got; i++) {
            if (buf[i].seq != *expect) {
                fprintf(stderr, "(line %d) ", line);
                FAIL("consumer %d: got seq %lld want %lld", c, (long long)buf[i].seq,
                     (long long)*expect);
                *expect = buf[i].seq;
            }
            (*expect)++;
        }
        total += got;
    }
    return total;
}

static void test_wraparound(void)
{
    ff_ring r;
    int64_t next = 0, expect = 0;
    CHECK(ff_ring_init(&r, sizeof(rec_t), 5, FF_DROP_OLDEST, 0) == 0, "init");
    CHECK(r.capacity == 8, "capacity rounds up to a power of two: %llu",
          (unsigned long long)r.capacity);
    int c = ff_ring_add_consumer(&r, 0);
    CHECK(c >= 0, "add consumer");
    /* many laps, odd message sizes, reads in between: the cursor crosses the end many times */
    for (int lap = 0; lap < 200; lap++) {
        produce(&r, &next, (uint64_t)(lap % 5) + 1, 7);
        uint64_t got = drain(&r, c, &expect, __LINE__);
        CHECK(got == (uint64_t)(lap % 5) + 1, "lap %d read %llu", lap, (unsigned long long)got);
    }
    CHECK(r.consumers[c].gaps == 0, "no gaps when keeping up");
    CHECK(expect == next, "all read");
    /* a read that wraps in the middle: 6 records starting at slot 6 of 8 */
    {
        rec_t buf[8];
        int64_t first = next;
        while (r.head % 8 != 6)
            produce(&r, &next, 1, 1), drain(&r, c, &expect, __LINE__);
        first = next;
        produce(&r, &next, 6, 1);
        CHECK(ff_ring_read(&r, c, buf, 8) == 6, "wrapped read count");
        for (int i = 0; i < 6; i++)
            CHECK(buf[i].seq == first + i, "wrapped read order at %d", i);
        expect = next;
    }
    {
        const rec_t *last = (const rec_t *)ff_ring_last(&r);
        CHECK(last && last->seq == next - 1, "ff_ring_last");
    }
    ff_ring_free(&r);
}

static void test_fanout(void)
{
    ff_ring r;
    int64_t next = 0, e[3] = {0, 0, 0};
    int c[3];
    CHECK(ff_ring_init(&r, sizeof(rec_t), 16, FF_DROP_OLDEST, 0) == 0, "init");
    for (int i = 0; i < 3; i++)
        c[i] = ff_ring_add_consumer(&r, 0);
    CHECK(c[0] != c[1] && c[1] != c[2] && c[0] != c[2], "distinct consumer ids");
    int idle = ff_ring_add_consumer(&r, 0);   /* never reads: no rebase, the history is kept */
    /* every consumer sees every event, whatever the others do */
    for (int round = 0; round < 50; round++) {
        produce(&r, &next, 3, 1);
        drain(&r, c[0], &e[0], __LINE__);           /* reads every round */
        if (round % 2)
            drain(&r, c[1], &e[1], __LINE__);       /* every other round */
        if (round % 4 == 3)
            drain(&r, c[2], &e[2], __LINE__);       /* every fourth round (12 <= 16 pending) */
    }
    drain(&r, c[1], &e[1], __LINE__);
    drain(&r, c[2], &e[2], __LINE__);
    for (int i = 0; i < 3; i++) {
        CHECK(e[i] == next, "consumer %d saw %lld of %lld", i, (long long)e[i], (long long)next);
        CHECK(r.consumers[c[i]].gaps == 0, "consumer %d gaps", i);
    }
    /* a consumer added later starts at head (new events only) ... */
    {
        int late = ff_ring_add_consumer(&r, 0);
        int64_t el = next;
        CHECK(ff_ring_available(&r, late) == 0, "late consumer starts at head");
        produce(&r, &next, 2, 1);
        CHECK(drain(&r, late, &el, __LINE__) == 2, "late consumer sees new events");
        /* ... or at the oldest intact record */
        int old = ff_ring_add_consumer(&r, 1);
        CHECK(ff_ring_available(&r, old) == 16, "from_oldest sees a full ring: %llu",
              (unsigned long long)ff_ring_available(&r, old));
        /* removing a consumer frees its slot for reuse, the others are unaffected */
        ff_ring_remove_consumer(&r, late);
        int again = ff_ring_add_consumer(&r, 0);
        CHECK(again == late, "slot reused (%d vs %d)", again, late);
        drain(&r, c[0], &e[0], __LINE__);
        CHECK(e[0] == next, "consumer 0 unaffected");
        CHECK(r.rebased == 0, "no rebase while a consumer has unread records");
        ff_ring_remove_consumer(&r, idle);
    }
    ff_ring_free(&r);
}

/* Rebase (ring.h "Slots"): random publishes, reads, consumers added (at head or from the
 * oldest record) and removed, against a model that restarts at slot 0 exactly when every
 * active consumer has read everything.  Every read must give the model's records and gaps;
 * after a rebase the next record must sit in slot 0. */
static uint64_t rnd_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static void test_rebase_model(void)
{
    enum { NC = 4 };
    for (int policy = 0; policy < 2; policy++) {
        for (int run = 0; run < 300; run++) {
            ff_ring r;
            uint64_t cap = 4u << rnd(3);
            int64_t next = 0;
            uint64_t floor = 0, rebases = 0;
            int idx[NC];
            uint64_t cur[NC], gaps[NC];
            int live[NC] = {0, 0, 0, 0};
            int weak[NC] = {0, 0, 0, 0};
            CHECK(ff_ring_init(&r, sizeof(rec_t), cap, policy, 0) == 0, "init");
            for (int step = 0; step < 60; step++) {
                int op = (int)rnd(6), i = (int)rnd(NC), any = 0, all = 1;
                uint64_t head = (uint64_t)next;
                for (int j = 0; j < NC; j++)
                    if (live[j]) {
                        any = 1;
                        if (cur[j] != head)
                            all = 0;
                    }
                if (op <= 1) { /* publish 1..(cap + 3) records */
                    uint64_t n = 1 + rnd((uint32_t)cap + 3), got;
                    int reb = any && all && head != floor;
                    if (policy == FF_BACKPRESSURE) {
                        /* no growth (the model keeps one capacity): at most a ring, and room
                         * for every strong cursor */
                        if (n > cap)
                            n = cap;
                        for (int j = 0; j < NC; j++)
                            if (live[j] && !weak[j] && head + n > cur[j] + cap)
                                n = cur[j] + cap - head;
                    }
                    if (n == 0)
                        continue;
                    got = produce(&r, &next, n, 1);
                    CHECK(got == n, "publish refused (%llu of %llu)", (unsigned long long)got,
                          (unsigned long long)n);
                    if (reb) {
                        floor = head;
                        rebases++;
                        CHECK(ff_ring_off(&r, head) == 0, "rebased record not in slot 0");
                    }
                    if ((uint64_t)next > r.capacity && (uint64_t)next - r.capacity > floor)
                        floor = (uint64_t)next - r.capacity;
                    CHECK(r.rebased == rebases, "rebases %llu, model %llu",
                          (unsigned long long)r.rebased, (unsigned long long)rebases);
                } else if (op == 2 && !live[i]) { /* add a consumer */
                    int oldest = (int)rnd(2);
                    uint64_t o = head > r.capacity ? head - r.capacity : 0;
                    idx[i] = ff_ring_add_consumer(&r, oldest);
                    live[i] = 1;
                    weak[i] = policy == FF_BACKPRESSURE && rnd(3) == 0;
                    ff_ring_set_weak(&r, idx[i], weak[i]);
                    cur[i] = oldest ? (o > floor ? o : floor) : head;
                    gaps[i] = 0;
                } else if (op == 3 && live[i] && rnd(3) == 0) { /* remove it */
                    ff_ring_remove_consumer(&r, idx[i]);
                    live[i] = 0;
                } else if (live[i]) { /* read up to 1..cap records */
                    rec_t buf[64];
                    uint64_t max = 1 + rnd((uint32_t)cap), got, want;
                    if (cur[i] < floor) {
                        gaps[i] += floor - cur[i];
                        cur[i] = floor;
                    }
                    want = head - cur[i] < max ? head - cur[i] : max;
                    got = ff_ring_read(&r, idx[i], buf, max);
                    CHECK(got == want, "read %llu, model %llu", (unsigned long long)got,
                          (unsigned long long)want);
                    for (uint64_t k = 0; k < got && k < want; k++)
                        CHECK(buf[k].seq == (int64_t)(cur[i] + k), "seq %lld, model %llu",
                              (long long)buf[k].seq, (unsigned long long)(cur[i] + k));
                    cur[i] += want;
                    CHECK(r.consumers[idx[i]].gaps == gaps[i], "gaps %llu, model %llu",
                          (unsigned long long)r.consumers[idx[i]].gaps,
                          (unsigned long long)gaps[i]);
                }
            }
            ff_ring_free(&r);
        }
    }
}

static void test_drop_oldest(void)
{
    ff_ring r;
    int64_t next = 0, fast_e = 0;
    rec_t buf[16];
    CHECK(ff_ring_init(&r, sizeof(rec_t), 8, FF_DROP_OLDEST, 0) == 0, "init");
    int slow = ff_ring_add_consumer(&r, 0), fast = ff_ring_add_consumer(&r, 0);
    for (int i = 0; i < 20; i++) {
        CHECK(produce(&r, &next, 1, 1) == 1, "drop-oldest never refuses");
        drain(&r, fast, &fast_e, __LINE__);
    }
    CHECK(ff_ring_pressure(&r) == 0, "drop-oldest never signals back-pressure");
    /* slow consumer: 20 published into 8 slots -> 12 lost, counted, never silent */
    CHECK(ff_ring_available(&r, slow) == 8, "available after overflow: %llu",
          (unsigned long long)ff_ring_available(&r, slow));
    CHECK(r.consumers[slow].gaps == 12, "gap count %llu", (unsigned long long)r.consumers[slow].gaps);
    CHECK(ff_ring_read(&r, slow, buf, 16) == 8, "read the survivors");
    CHECK(buf[0].seq == 12 && buf[7].seq == 19, "survivors are the newest: %lld..%lld",
          (long long)buf[0].seq, (long long)buf[7].seq);
    CHECK(r.consumers[fast].gaps == 0, "the fast consumer lost nothing");
    /* a second overflow adds to the same counter */
    produce(&r, &next, 10, 1);
    CHECK(ff_ring_read(&r, slow, buf, 16) == 8, "second overflow read");
    CHECK(r.consumers[slow].gaps == 14, "gap count accumulates: %llu",
          (unsigned long long)r.consumers[slow].gaps);
    CHECK(buf[0].seq == 22 && buf[7].seq == 29, "second survivors %lld..%lld",
          (long long)buf[0].seq, (long long)buf[7].seq);
    /* one message larger than the ring: the consumer sees its last 8 records */
    produce(&r, &next, 11, 1);
    CHECK(ff_ring_read(&r, slow, buf, 16) == 8, "oversized message");
    CHECK(buf[7].seq == next - 1 && buf[0].seq == next - 8, "oversized message tail");
    CHECK(r.consumers[slow].gaps == 17, "gaps after oversized message: %llu",
          (unsigned long long)r.consumers[slow].gaps);
    ff_ring_free(&r);
}

static void test_backpressure(void)
{
    ff_ring r;
    int64_t next = 0, expect = 0;
    CHECK(ff_ring_init(&r, sizeof(rec_t), 8, FF_BACKPRESSURE, 32) == 0, "init");
    int c = ff_ring_add_consumer(&r, 0);
    CHECK(ff_ring_pressure(&r) == 0, "no pressure when empty");
    /* fill past half: pressure asserted (transport pauses), nothing lost */
    produce(&r, &next, 5, 1);
    CHECK(ff_ring_pressure(&r) == 1, "pressure above half full");
    /* keep producing without reading: the ring grows instead of overwriting */
    for (int i = 0; i < 27; i++)
        CHECK(produce(&r, &next, 1, 1) == 1, "record %d refused before max_capacity", 5 + i);
    CHECK(r.capacity == 32, "grew to max_capacity: %llu", (unsigned long long)r.capacity);
    CHECK(r.grown == 2, "grew twice: %llu", (unsigned long long)r.grown);
    CHECK(r.overflowed == 0, "nothing overflowed yet");
    /* at max_capacity with the consumer a full ring behind: refused and counted */
    CHECK(produce(&r, &next, 1, 1) == 0, "full back-pressure ring refuses");
    CHECK(r.overflowed == 1, "overflow counted: %llu", (unsigned long long)r.overflowed);
    /* the consumer lost nothing: it reads every record in order */
    CHECK(drain(&r, c, &expect, __LINE__) == 32, "all 32 kept");
    CHECK(r.consumers[c].gaps == 0, "back-pressure never gaps");
    CHECK(ff_ring_pressure(&r) == 0, "pressure released after reading");
    CHECK(produce(&r, &next, 3, 1) == 3, "accepts again after reading");
    drain(&r, c, &expect, __LINE__);
    CHECK(expect == next, "in order after overflow");
    /* no consumers: nothing to protect, the ring never refuses */
    ff_ring_remove_consumer(&r, c);
    for (int i = 0; i < 100; i++)
        CHECK(produce(&r, &next, 1, 1) == 1, "no-consumer ring refused");
    ff_ring_free(&r);
}

static void test_abandon_and_latest(void)
{
    ff_ring r;
    int64_t next = 0, expect = 0;
    CHECK(ff_ring_init(&r, sizeof(rec_t), 8, FF_DROP_OLDEST, 0) == 0, "init");
    ff_ring_enable_latest(&r);
    int c = ff_ring_add_consumer(&r, 0);
    /* a malformed message: slots claimed, never published -> invisible */
    for (uint64_t k = 0; k < 3; k++) {
        rec_t *rec = (rec_t *)ff_ring_slot(&r, k);
        rec->seq = 1000 + (int64_t)k;
    }
    ff_ring_abandon(&r);
    CHECK(ff_ring_available(&r, c) == 0, "abandoned records are invisible");
    /* partial publish: 3 claimed, first 2 published */
    for (uint64_t k = 0; k < 3; k++) {
        rec_t *rec = (rec_t *)ff_ring_slot(&r, k);
        memset(rec, 0, sizeof *rec);
        rec->h.rtype = 1;
        rec->h.symbol_id = (uint32_t)(5 + k);
        rec->seq = next + (int64_t)k;
    }
    ff_ring_publish(&r, 2);
    next += 2;
    CHECK(drain(&r, c, &expect, __LINE__) == 2, "partial publish shows n records");
    /* latest per symbol */
    produce(&r, &next, 1, 5);
    produce(&r, &next, 1, 200);
    {
        const rec_t *l5 = (const rec_t *)ff_ring_latest(&r, 5);
        const rec_t *l6 = (const rec_t *)ff_ring_latest(&r, 6);
        const rec_t *l7 = (const rec_t *)ff_ring_latest(&r, 7);
        const rec_t *l200 = (const rec_t *)ff_ring_latest(&r, 200);
        CHECK(l5 && l5->seq == next - 2, "latest(5)");
        CHECK(l6 && l6->seq == 1, "latest(6)");
        CHECK(l7 == NULL, "latest(7): its record was never published");
        CHECK(l200 && l200->seq == next - 1, "latest(200) after growth of the table");
        CHECK(ff_ring_latest(&r, 100000) == NULL, "latest(unknown)");
    }
    ff_ring_free(&r);
}

/* ff_rec_copy: every size from 1 to 300 bytes copies exactly size bytes (the overlapping
 * tail block included) and writes nothing before or after the record. */
static void test_rec_copy(void)
{
    uint8_t src[400], dst[400];
    for (uint32_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7 + 1);
    for (uint32_t size = 1; size <= 300; size++) {
        memset(dst, 0xEE, sizeof dst);
        ff_rec_copy(dst + 16, src + 3, size);
        CHECK(memcmp(dst + 16, src + 3, size) == 0, "rec_copy(%u): bytes differ", size);
        for (uint32_t i = 0; i < 16; i++)
            CHECK(dst[i] == 0xEE, "rec_copy(%u) wrote before the record", size);
        for (uint32_t i = 16 + size; i < sizeof dst; i++)
            CHECK(dst[i] == 0xEE, "rec_copy(%u) wrote past the record (byte %u)", size, i - 16);
    }
}

/* Capture (ring.h "Capture"): two rings share a sink; publishes land as chunks in order,
 * consecutive ones of a ring in one chunk, a wrapping publish whole; a publish that does not fit
 * keeps what fits and seals the sink; the ring keeps rebasing (no cursor of the sink). */
static void test_capture(void)
{
    ff_ring a, b;
    ff_rec_sink k;
    uint8_t buf[8 + 10 * sizeof(rec_t) + 8 + 8 * sizeof(rec_t) + 16];   /* 16: < a record */
    int64_t na = 0, nb = 1000, seq = 0;
    ff_cap_chunk h;
    uint64_t off = 0, n, i;
    uint32_t lo, sn;
    int ca;
    CHECK(ff_ring_init(&a, sizeof(rec_t), 8, FF_DROP_OLDEST, 0) == 0, "init a");
    CHECK(ff_ring_init(&b, sizeof(rec_t), 8, FF_DROP_OLDEST, 0) == 0, "init b");
    memset(&k, 0, sizeof k);
    k.buf = buf;
    k.limit = sizeof buf;
    a.sink = b.sink = &k;
    a.sink_tag = 0;
    b.sink_tag = 1;
    ca = ff_ring_add_consumer(&a, 0);
    produce(&a, &na, 6, 1);
    drain(&a, ca, &seq, __LINE__);
    produce(&a, &na, 4, 1);            /* rebased to slot 0: one chunk of 10 with the first */
    drain(&a, ca, &seq, __LINE__);
    produce(&b, &nb, 6, 2);            /* no consumer: no rebase, seqs 6..7 then 0..3 wrap */
    produce(&b, &nb, 6, 2);            /* 2 of 6 fit: the chunk of b grows, then sealed */
    produce(&a, &na, 1, 1);            /* sealed: counted */
    CHECK(a.rebased >= 1, "ring a rebased under the capture");
    CHECK(k.sealed && k.dropped == 4 + 1, "dropped %llu", (unsigned long long)k.dropped);
    CHECK(k.records == 10 + 8, "records %llu", (unsigned long long)k.records);
    CHECK(k.len == 8 + 10 * sizeof(rec_t) + 8 + 8 * sizeof(rec_t), "len %llu",
          (unsigned long long)k.len);
    memcpy(&h, buf, sizeof h);
    CHECK(h.tag == 0 && h.n == 10, "chunk 0: tag %u n %u", h.tag, h.n);
    for (i = 0; i < 10; i++) {
        rec_t r;
        memcpy(&r, buf + 8 + i * sizeof(rec_t), sizeof r);
        CHECK(r.seq == (int64_t)i, "a's record %llu: %lld", (unsigned long long)i, (long long)r.seq);
    }
    off = 8 + 10 * sizeof(rec_t);
    memcpy(&h, buf + off, sizeof h);
    CHECK(h.tag == 1 && h.n == 8, "chunk 1: tag %u n %u", h.tag, h.n);
    for (i = 0; i < 8; i++) {
        rec_t r;
        memcpy(&r, buf + off + 8 + i * sizeof(rec_t), sizeof r);
        CHECK(r.seq == 1000 + (int64_t)i, "b's record %llu: %lld", (unsigned long long)i,
              (long long)r.seq);
    }
    CHECK(ff_ring_sink_take(&a, &n, &lo, &sn) == 0 && n == 10 && sn == 0, "a's part");
    CHECK(ff_ring_sink_take(&b, &n, &lo, &sn) == 0 && n == 8 && sn == 0, "b's part");
    a.sink = b.sink = NULL;
    ff_ring_free(&a);
    ff_ring_free(&b);
}

/* The sink's lifetime (ring.h: refs): the owner and the rings may go in any order.  Under
 * ASan/LSan a use after free or a leaked sink fails this test. */
static void test_capture_lifetime(void)
{
    ff_ring a, b, c;
    ff_rec_sink *k = ff_rec_sink_new(), *k2 = ff_rec_sink_new();
    uint8_t buf[1024];
    int64_t na = 0;
    CHECK(k != NULL && k2 != NULL && k->refs == 1, "new sinks");
    CHECK(ff_ring_init(&a, sizeof(rec_t), 8, FF_DROP_OLDEST, 0) == 0, "init a");
    CHECK(ff_ring_init(&b, sizeof(rec_t), 8, FF_DROP_OLDEST, 0) == 0, "init b");
    CHECK(ff_ring_init(&c, sizeof(rec_t), 8, FF_DROP_OLDEST, 0) == 0, "init c");
    k->buf = buf;
    k->limit = sizeof buf;
    CHECK(ff_ring_sink_attach(&a, k, 0) == 0 && ff_ring_sink_attach(&b, k, 1) == 0, "attach");
    CHECK(ff_ring_sink_attach(&a, k2, 0) == -1, "a live sink is not replaced");
    CHECK(k->refs == 3, "refs %u", k->refs);
    produce(&a, &na, 2, 1);
    CHECK(k->records == 2, "captured %llu", (unsigned long long)k->records);
    ff_ring_free(&b);                       /* a ring goes first: it lets go of the sink */
    CHECK(b.sink == NULL && k->refs == 2, "b released: refs %u", k->refs);
    ff_rec_sink_orphan(k);                  /* then the owner: a still points at it */
    CHECK(a.sink == k && k->refs == 1 && k->buf == NULL, "orphaned");
    produce(&a, &na, 3, 1);                 /* a's next publish detaches a; the sink is freed */
    CHECK(a.sink == NULL && a.head == 5, "a detached itself, published on");
    CHECK(ff_ring_sink_attach(&a, k2, 0) == 0, "a new sink attaches");
    ff_ring_sink_detach(&a, k2);
    CHECK(a.sink == NULL && k2->refs == 1, "detached: refs %u", k2->refs);
    CHECK(ff_ring_sink_attach(&c, k2, 0) == 0, "attach c");
    ff_rec_sink_orphan(k2);                 /* the owner first, c never publishes again */
    CHECK(k2->refs == 1, "c holds the last reference: %u", k2->refs);
    ff_ring_free(&c);                       /* c's reference is the last: freed here */
    ff_ring_free(&a);
}

int main(void)
{
    test_rec_copy();
    test_wraparound();
    test_fanout();
    test_drop_oldest();
    test_backpressure();
    test_abandon_and_latest();
    test_rebase_model();
    test_capture();
    test_capture_lifetime();
    FF_TEST_DONE("test_ring");
}
