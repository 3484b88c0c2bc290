/* CTest: record layouts (records.h, generated from tools/records_spec.py).
 *
 * Including records.h already runs the generator's _Static_assert size/offset checks at
 * compile time; this test walks the generated layout table (FF_LAYOUT_TABLE) and checks the
 * contracts of CONTRIBUTING.md: 8-byte aligned sizes, the 16-byte ff_header prefix, polygon's
 * present/alt words, natural alignment and no implicit padding anywhere. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"

#define FF_WANT_LAYOUT_TABLE 1
#include "fastfeed/records.h"

static const ff_member_desc *find(const char *rec, const char *mem)
{
    for (size_t i = 0; i < FF_LAYOUT_TABLE_LEN; i++)
        if (strcmp(FF_LAYOUT_TABLE[i].record, rec) == 0 &&
            strcmp(FF_LAYOUT_TABLE[i].member, mem) == 0)
            return &FF_LAYOUT_TABLE[i];
    return NULL;
}

static void expect_member(const char *rec, const char *mem, size_t off, size_t size)
{
    const ff_member_desc *d = find(rec, mem);
    if (!d)
        FAIL("%s.%s missing from FF_LAYOUT_TABLE", rec, mem);
    else if (d->offset != off || d->size != size)
        FAIL("%s.%s: table says offset %u size %u, compiler says %zu/%zu", rec, mem, d->offset,
             d->size, off, size);
}

#define EXPECT(rec, ctype, mem)                                                            \
    expect_member(rec, #mem, offsetof(ctype, mem), sizeof(((ctype *)0)->mem))

static int cmp_off(const void *a, const void *b)
{
    const ff_member_desc *x = *(const ff_member_desc *const *)a;
    const ff_member_desc *y = *(const ff_member_desc *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

int main(void)
{
    size_t i = 0, nrec = 0;

    if (FF_LAYOUT_TABLE_LEN == 0)
        FAIL("empty layout table");

    /* Walk the table record by record (rows of one record are contiguous, "<size>" last). */
    while (i < FF_LAYOUT_TABLE_LEN) {
        const char *rec = FF_LAYOUT_TABLE[i].record;
        const ff_member_desc *rows[256];
        size_t n = 0, size = 0, covered;
        int have_size = 0, polygon = 0;
        for (; i < FF_LAYOUT_TABLE_LEN && strcmp(FF_LAYOUT_TABLE[i].record, rec) == 0; i++) {
            const ff_member_desc *d = &FF_LAYOUT_TABLE[i];
            if (strcmp(d->member, "<size>") == 0) {
                size = d->size;
                have_size = 1;
            } else if (n < 256) {
                rows[n++] = d;
                if (strcmp(d->member, "present") == 0)
                    polygon = 1;
            }
        }
        nrec++;
        if (!have_size) {
            FAIL("%s: no <size> row", rec);
            continue;
        }
        if (size % 8 != 0)
            FAIL("%s: size %zu is not a multiple of 8", rec, size);
        /* header prefix */
        if (n < 4 || strcmp(rows[0]->member, "rtype") || rows[0]->offset != 0 ||
            rows[0]->size != 2 || strcmp(rows[1]->member, "flags") || rows[1]->offset != 2 ||
            rows[1]->size != 2 || strcmp(rows[2]->member, "symbol_id") ||
            rows[2]->offset != 4 || rows[2]->size != 4 || strcmp(rows[3]->member, "ts_recv") ||
            rows[3]->offset != 8 || rows[3]->size != 8)
            FAIL("%s: does not start with the 16-byte ff_header", rec);
        if (polygon) {
            const ff_member_desc *p = find(rec, "present"), *a = find(rec, "alt");
            if (!p || p->offset != 16 || p->size != 8 || !a || a->offset != 24 || a->size != 8)
                FAIL("%s: polygon record without present@16/alt@24 (u64)", rec);
        }
        /* natural alignment + no implicit padding: sorted members tile [0, size) exactly */
        qsort(rows, n, sizeof rows[0], cmp_off);
        covered = 0;
        for (size_t k = 0; k < n; k++) {
            const ff_member_desc *d = rows[k];
            /* scalars (1/2/4/8 bytes) must sit at their natural alignment; arrays (char[N],
             * int32[N]) carry no element type in the table -- the compiler places them, and
             * the tiling check below catches any padding it would have to add */
            size_t align = (d->size == 1 || d->size == 2 || d->size == 4 || d->size == 8) ? d->size : 1;
            if (d->offset % align)
                FAIL("%s.%s: offset %u not %zu-aligned", rec, d->member, d->offset, align);
            if (d->offset != covered)
                FAIL("%s.%s: offset %u, expected %zu (%s)", rec, d->member, d->offset, covered,
                     d->offset > covered ? "implicit padding" : "overlap");
            covered = (size_t)d->offset + d->size;
        }
        if (covered != size)
            FAIL("%s: members end at %zu but size is %zu (tail padding)", rec, covered, size);
    }
    if (nrec < 10)
        FAIL("only %zu records in the table", nrec);

    /* A few direct offsetof checks against the table (names and structs stay in sync). */
    EXPECT("Quote", ff_dx_quote, rtype);
    EXPECT("Quote", ff_dx_quote, symbol_id);
    EXPECT("Quote", ff_dx_quote, ts_recv);
    EXPECT("Quote", ff_dx_quote, bid_price);
    EXPECT("Quote", ff_dx_quote, ask_price);
    EXPECT("Quote", ff_dx_quote, bid_size);
    EXPECT("Quote", ff_dx_quote, event_time);
    EXPECT("Trade", ff_dx_trade, price);
    EXPECT("Trade", ff_dx_trade, time);
    EXPECT("LaunchpadValue", ff_pg_launchpad_value, present);
    EXPECT("LaunchpadValue", ff_pg_launchpad_value, alt);
    EXPECT("LaunchpadValue", ff_pg_launchpad_value, value);
    EXPECT("Level2Book", ff_pg_level_2_book, bid_prices);
    if (sizeof(ff_header) != 16 || offsetof(ff_header, ts_recv) != 8)
        FAIL("ff_header");
    if (_Alignof(ff_dx_quote) != 8 || _Alignof(ff_pg_launchpad_value) != 8)
        FAIL("records must be 8-byte aligned");

    /* The record type tags are distinct and below FF_RT_MAX. */
    {
        const int tags[] = {FF_RT_QUOTE, FF_RT_TRADE, FF_RT_TRADEETH, FF_RT_GREEKS, FF_RT_SUMMARY,
                            FF_RT_PROFILE, FF_RT_CANDLE, FF_RT_TIMEANDSALE, FF_RT_THEOPRICE,
                            FF_RT_UNDERLYING, FF_RT_PG_T, FF_RT_PG_Q, FF_RT_PG_LV};
        for (size_t a = 0; a < sizeof tags / sizeof tags[0]; a++) {
            if (tags[a] <= 0 || tags[a] >= FF_RT_MAX)
                FAIL("tag %d out of range", tags[a]);
            for (size_t b = 0; b < a; b++)
                if (tags[a] == tags[b])
                    FAIL("duplicate tag %d", tags[a]);
        }
    }

    if (failures) {
        fprintf(stderr, "test_records: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_records: ok (%zu records, %zu table rows)\n", nrec, (size_t)FF_LAYOUT_TABLE_LEN);
    return 0;
}
