/* CTest: fastfeed/spill.h -- pieces, growth that keeps positions, wrap-around of the byte ring,
 * positions modulo 2^32, the FIFO of spilled records and the range a drain copies. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"
#include "fastfeed/spill.h"

/* Read back the data of the piece whose data starts at pos (n bytes) and compare. */
static void check_bytes(const ff_spill *sp, uint32_t pos, const char *want, uint32_t n, int line)
{
    char buf[512];
    ff_spill_read(sp, pos, n, buf);
    if (memcmp(buf, want, n) != 0)
        FAIL("line %d: spill bytes differ", line);
}

int main(void)
{
    ff_spill sp;
    char text[300];
    uint32_t pos[64];
    int fail = 0, i;
    memset(&sp, 0, sizeof sp);
    for (i = 0; i < 300; i++)
        text[i] = (char)('a' + i % 26);

    /* first piece allocates; header then data; the tag and length are in the header */
    pos[0] = ff_spill_piece(&sp, FF_SPILL_STR, -1, text, 40, &fail);
    CHECK(!fail && sp.cap == 4096 && pos[0] == FF_SPILL_HDR, "first piece");
    CHECK(sp.buf[0] == FF_SPILL_STR && sp.used == 45, "header");
    check_bytes(&sp, pos[0], text, 40, __LINE__);
    /* a prefixed piece (FF_SPILL_RAW: field bit first) */
    pos[1] = ff_spill_piece(&sp, FF_SPILL_RAW, 7, text + 1, 10, &fail);
    {
        char b[11];
        ff_spill_read(&sp, pos[1], 11, b);
        CHECK(b[0] == 7 && memcmp(b + 1, text + 1, 10) == 0, "prefixed piece");
    }

    /* growth keeps every retained byte at its position */
    sp.tail = pos[0] - FF_SPILL_HDR;
    for (i = 2; i < 40; i++)
        pos[i] = ff_spill_piece(&sp, FF_SPILL_KEY, -1, text + i, 250, &fail);
    CHECK(!fail && sp.cap == 16384, "grown to %u", sp.cap);
    check_bytes(&sp, pos[0], text, 40, __LINE__);
    for (i = 2; i < 40; i++)
        check_bytes(&sp, pos[i], text + i, 250, __LINE__);

    /* wrap-around: release the oldest bytes, write past the end of the buffer, near 2^32 */
    ff_spill_free(&sp);
    sp.head = sp.tail = 0xFFFFFF00u;  /* positions wrap modulo 2^32 as well */
    for (i = 0; i < 64; i++) {
        pos[i] = ff_spill_piece(&sp, FF_SPILL_STR, -1, text + i, 100, &fail);
        CHECK(!fail, "piece %d", i);
        if (i >= 8)
            sp.tail = pos[i - 8] - FF_SPILL_HDR;  /* keep the last 8 pieces only */
    }
    CHECK(sp.cap == 4096, "bounded by what is retained: %u", sp.cap);
    for (i = 56; i < 64; i++)
        check_bytes(&sp, pos[i], text + i, 100, __LINE__);

    /* FIFO of spilled records: grows, keeps order */
    for (i = 0; i < 100; i++)
        CHECK(ff_spill_push(&sp, (uint64_t)i, (uint32_t)i * 10u, 10u, (uint32_t)i) == 0, "push");
    CHECK(sp.q_n == 100 && sp.q[sp.q_first].seq == 0 && sp.records == 100, "fifo");

    /* the range a drain copies: min/max over the records' spill references (offset 32) */
    {
        uint8_t recs[3][48];
        uint64_t ref;
        uint32_t lo, n;
        memset(recs, 0, sizeof recs);
        ref = ((uint64_t)105 << 32) | pos[60];
        memcpy(recs[0] + 32, &ref, 8);
        ref = ((uint64_t)105 << 32) | pos[58];
        memcpy(recs[2] + 32, &ref, 8);
        ff_spill_range(&sp, &recs[0][0], 3, 48, &lo, &n);
        CHECK(lo == pos[58] && n == pos[60] + 105 - pos[58], "range %u %u", lo, n);
        memset(recs, 0, sizeof recs);
        ff_spill_range(&sp, &recs[0][0], 3, 48, &lo, &n);
        CHECK(n == 0, "no spill, no range");
    }

    /* too large: refused, nothing written */
    {
        uint32_t head = sp.head;
        ff_spill_piece(&sp, FF_SPILL_STR, -1, text, (size_t)FF_SPILL_MAX_CAP, &fail);
        CHECK(fail && sp.head == head, "too large");
    }
    ff_spill_free(&sp);
    FF_TEST_DONE("test_spill");
}
