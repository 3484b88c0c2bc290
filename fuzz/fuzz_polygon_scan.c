/* Fuzz target: fastfeed/polygon_scan.h (the polygon/Massive decoder) without Python
 * (tests/c/pg_harness.h: every layout of every cluster, as polygon.pyx sets them up).
 *
 * The input is decoded from an exactly sized heap copy (the decoder needs no padding: it reads
 * at most `size` bytes, and copies messages of up to FF_PG_SMALL bytes into its own padded
 * buffer), so ASan sees any read past the end.  Invariants: ff_pg_decode returns -1 only for
 * EMPTY / NOT_JSON / NOT_ARRAY with nothing published, else the number of events published,
 * which is exactly what appeared in the rings and in n_events; the error code is an FF_PGE_*,
 * its offset and key / ev pointers inside the message; counters never go down; every published
 * record has its ring's rtype, a symbol id the table gave out, list counts within capacity,
 * integral doubles where the alt bit says "integer", and every string field -- inline or in the
 * spill log -- in bounds and valid UTF-8.  A small input is decoded a second time behind white
 * space that makes it larger than FF_PG_SMALL (the in-place path, no padded copy): same result,
 * same records.  A known-good message decodes right after.
 *
 *   libFuzzer (clang):  CC=clang cmake -S . -B build/fuzz -DFASTFEED_FUZZ=ON && cmake --build build/fuzz
 *   standalone (gcc):   built by default as fuzz_polygon_scan_standalone (fuzz/standalone_main.c)
 * A broken invariant prints its line; FF_FUZZ_DEBUG=1 also prints each small input before its
 * two passes are compared (the last one printed is the culprit).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_harness.h"

/* an invariant broke: say which, then abort (the fuzzer keeps the input) */
#define BROKEN() (fprintf(stderr, "fuzz_polygon_scan: invariant at line %d\n", __LINE__), abort())

static pgh H;
static int inited;

static const char GOOD[] = "[{\"ev\":\"Q\",\"sym\":\"MSFT\",\"bp\":114.125,\"ap\":114.128,\"t\":1536036818784}]";

const char *const ff_fuzz_seeds[] = {
    GOOD,
    "[{\"ev\":\"T\",\"sym\":\"MSFT\",\"x\":4,\"i\":\"12345\",\"z\":3,\"p\":114.125,\"s\":100,\"c\":[0,12],"
    "\"t\":1536036818784,\"q\":3681328,\"ds\":\"0.5\",\"trfi\":202,\"trft\":1536036818785,\"pt\":1}]",
    "[{\"ev\":\"Q\",\"sym\":\"MSFT\",\"bx\":4,\"bp\":114.125,\"bs\":100,\"ax\":7,\"ap\":114.128,\"as\":160,"
    "\"c\":0,\"i\":[604],\"t\":1536036818784,\"q\":50385480,\"z\":3},{\"ev\":\"Q\",\"sym\":\"MSFT\",\"bp\":1e3}]",
    "[{\"ev\":\"AM\",\"sym\":\"GTE\",\"v\":4110,\"av\":9470157,\"op\":0.4372,\"vw\":0.4488,\"o\":0.4488,"
    "\"c\":0.4486,\"h\":0.4489,\"l\":0.4486,\"a\":0.4352,\"z\":685,\"s\":1610144640000,\"e\":1610144700000,"
    "\"otc\":true,\"dv\":\"4110.5\",\"dav\":\"9470157.25\",\"n\":3}]",
    "[{\"ev\":\"XL2\",\"pair\":\"BTC-USD\",\"t\":1610462411115,\"x\":1,\"r\":1610462411128,"
    "\"b\":[[33712.7,0.0294],[33712.6,2],[33710,1.5E-3]],\"a\":[ [ 33714.36 , 0.09 ] ,[1,-0.0]]}]",
    "[{\"ev\":\"XT\",\"pair\":\"BTC-USD\",\"p\":33021.9,\"t\":1610462007425,\"s\":0.01544,\"c\":[2],"
    "\"i\":14272084,\"x\":1,\"r\":1610462007576},{\"ev\":\"XQ\",\"pair\":\"BTC-USD\",\"bp\":33052.79,"
    "\"bs\":0.48,\"ap\":33073.19,\"as\":0.601,\"t\":1610462411115,\"x\":1,\"r\":1610462411128}]",
    "[{\"ev\":\"LULD\",\"T\":\"MSFT\",\"h\":218.96,\"l\":198.11,\"i\":[21],\"z\":3,\"t\":1601316752683746,\"q\":1},"
    "{\"ev\":\"NOI\",\"T\":\"NTEST.Q\",\"t\":1601318039223013127,\"at\":930,\"a\":\"M\",\"i\":44,\"x\":10,"
    "\"o\":480,\"p\":440,\"b\":25.03}]",
    "[{\"ev\":\"C\",\"p\":\"USD/CNH\",\"x\":\"44\",\"a\":6.83366,\"b\":6.83363,\"t\":1536036818784},"
    "{\"ev\":\"CA\",\"pair\":\"USD/EUR\",\"o\":0.8687,\"c\":0.86889,\"h\":0.86889,\"l\":0.8686,\"v\":20,\"s\":1}]",
    "[{\"ev\":\"V\",\"val\":6012.88,\"T\":\"I:SPX\",\"t\":1},{\"ev\":\"FMV\",\"fmv\":189.22,\"sym\":\"AAPL\",\"t\":2},"
    "{\"ev\":\"LV\",\"val\":1,\"sym\":\"X:BTC-USD\",\"t\":3},{\"ev\":\"A\",\"sym\":\"ESZ5\",\"v\":1200,\"dv\":\"1200\"}]",
    "[{\"ev\":\"status\",\"status\":\"connected\",\"message\":\"Connected Successfully\"}]",
    "[{\"sym\":\"O:SPY251219C00650000\",\"ev\":\"T\",\"i\":\"0123456789012345678901234567890123456789\","
    "\"foo\":{\"a\":[1,2]},\"ds\":\"a\\u0000b\\ud83d\\ude00\",\"c\":[1,2,3,4,5,6,7,8,9,10]},{\"ev\":\"ZZ\"}]",
    " [ {\"p\":\"1\",\"ev\":\"T\"}, [1], {\"ev\":5}, {\"ev\":\"T\",\"t\":99999999999999999999,\"s\":9007199254740993} ] x",
};
const size_t ff_fuzz_nseeds = sizeof ff_fuzz_seeds / sizeof ff_fuzz_seeds[0];

#define KEEP 8   /* records compared between the two passes, per run */

typedef struct {
    ptrdiff_t n;
    int err;
    size_t err_off;
    int nkept;
    int rt[KEEP];
    uint8_t rec[KEEP][sizeof(ff_pg_level_2_book)];
} pass_t;

static pass_t P1, P2;

static int in(const char *p, size_t n, const char *lo, size_t size)
{
    return p >= lo && n <= size && (size_t)(p - lo) <= size - n;
}

static void check_record(int rt, const uint8_t *rec)
{
    const ff_header *hd = (const ff_header *)rec;
    int li = pgh_layout_of(rt), j;
    const ff_pglayout_desc *ld;
    uint64_t present, alt;
    char text[8192];
    if (li < 0 || hd->rtype != rt || hd->symbol_id > H.nstr) BROKEN();
    ld = &FF_PG_LAYOUT_DESCS[li];
    memcpy(&present, rec + 16, 8);
    memcpy(&alt, rec + 24, 8);
    if ((present & 1) && hd->symbol_id == 0) BROKEN();
    for (j = 0; j < ld->nfields; j++) {
        const ff_pgfield_desc *fd = &ld->fields[j];
        if (!((present >> fd->bit) & 1))
            continue;
        switch (fd->kind) {
        case FF_PGK_F64: {
            double v;
            memcpy(&v, rec + fd->off, 8);
            if (((alt >> fd->bit) & 1) && (v != floor(v) || fabs(v) > 9007199254740992.0)) BROKEN();
            break;
        }
        case FF_PGK_I32ARR:
            if (rec[fd->n_off] > fd->n) BROKEN();
            break;
        case FF_PGK_LEVELS: {
            uint16_t cnt;
            memcpy(&cnt, rec + fd->n_off, 2);
            if (cnt > fd->n) BROKEN();
            break;
        }
        case FF_PGK_FIXSTR:
        case FF_PGK_FIXSTRI: {
            long m = pgh_fixstr(&H, rt, rec, fd, text, sizeof text);
            if (m < 0) BROKEN();                       /* a spill reference out of bounds */
            if ((size_t)m < sizeof text && !ff_pg_utf8_ok((const unsigned char *)text, (size_t)m)) BROKEN();
            break;
        }
        default:
            break;
        }
    }
}

/* Decode data[0..size) (an exactly sized heap buffer) and check every invariant. */
static void run(const char *data, size_t size, pass_t *out)
{
    uint64_t before[FF_RT_MAX], total = 0;
    uint64_t ev0 = H.d.n_events, sk0 = H.d.n_skipped, u0 = H.d.n_unknown_ev, k0 = H.d.n_unknown_keys;
    uint64_t st0 = H.d.n_status, sp0 = H.d.n_spilled_str, f0 = H.d.n_symtab_full, dr0 = H.d.n_dropped_items;
    int rt;
    ptrdiff_t n;
    for (rt = 0; rt < FF_RT_MAX; rt++) before[rt] = H.rings[rt] ? H.rings[rt]->head : 0;
    n = ff_pg_decode(&H.d, data, size);
    if (n < -1) BROKEN();
    if (H.d.err < FF_PGE_OK || H.d.err > FF_PGE_SPILL || H.d.err == FF_PGE_TOO_LARGE) BROKEN();
    if (n == -1 && H.d.err != FF_PGE_EMPTY && H.d.err != FF_PGE_NOT_JSON && H.d.err != FF_PGE_NOT_ARRAY) BROKEN();
    if (H.d.err != FF_PGE_OK) {
        const char *base = size <= FF_PG_SMALL ? H.d.small : data;   /* where the decoder read */
        if (H.d.err_off > size) BROKEN();
        /* the key: in the message, or the decoder's own "ev" (a non-string ev value) */
        if (H.d.err_key && !in(H.d.err_key, H.d.err_key_n, base, size) &&
            !(H.d.err == FF_PGE_EV_TYPE && H.d.err_key_n == 2 && memcmp(H.d.err_key, "ev", 2) == 0))
            BROKEN();
        if (H.d.err_ev && !in(H.d.err_ev, H.d.err_ev_n, base, size)) BROKEN();
    }
    if (H.d.n_skipped < sk0 || H.d.n_unknown_ev < u0 || H.d.n_unknown_keys < k0 || H.d.n_status < st0 ||
        H.d.n_spilled_str < sp0 || H.d.n_symtab_full < f0 || H.d.n_dropped_items < dr0 ||
        H.d.n_skipped - sk0 < H.d.n_unknown_ev - u0)
        BROKEN();
    out->n = n;
    out->err = H.d.err;
    out->err_off = H.d.err_off;
    out->nkept = 0;
    for (rt = 0; rt < FF_RT_MAX; rt++) {
        uint64_t s;
        if (!H.rings[rt]) continue;
        if (H.rings[rt]->claimed != 0) BROKEN();
        for (s = before[rt]; s < H.rings[rt]->head; s++) {
            const uint8_t *rec = pgh_rec(&H, rt, s);
            if (rec == NULL) continue;                  /* overwritten in the same message */
            check_record(rt, rec);
            if (out->nkept < KEEP) {
                out->rt[out->nkept] = rt;
                memcpy(out->rec[out->nkept], rec, H.rings[rt]->rec_size);
                out->nkept++;
            }
        }
        total += H.rings[rt]->head - before[rt];
    }
    if (n == -1 ? total != 0 : total != (uint64_t)n) BROKEN();
    if (H.d.n_events - ev0 != total) BROKEN();
}

/* Book levels past the count are not initialised per event (polygon.pyx: the level arrays are
 * left out of the per-event template copy): cleared before comparing. */
static void clear_unused_levels(int rt, uint8_t *rec)
{
    const ff_pglayout_desc *ld = &FF_PG_LAYOUT_DESCS[pgh_layout_of(rt)];
    int j;
    for (j = 0; j < ld->nfields; j++) {
        const ff_pgfield_desc *fd = &ld->fields[j];
        uint16_t cnt;
        if (fd->kind != FF_PGK_LEVELS) continue;
        memcpy(&cnt, rec + fd->n_off, 2);
        if (cnt > fd->n) BROKEN();
        memset(rec + fd->off + 16u * cnt, 0, 16u * (fd->n - cnt));
        memset(rec + fd->alt_off + cnt, 0, fd->n - cnt);
    }
}

/* The two passes' records agree but for the wire-order stamp and the spill log position. */
static void compare(size_t pad)
{
    int i;
    if (P1.n != P2.n || P1.err != P2.err || P1.nkept != P2.nkept) BROKEN();
    /* the same fault at the same place (a structural fault that ends the message may be
     * reported at the event's start or where the scan stopped, by path: both in bounds) */
    if (P1.err != FF_PGE_OK && P1.err != FF_PGE_EMPTY && P1.err != FF_PGE_MALFORMED &&
        P1.err != FF_PGE_TRUNCATED && P2.err_off != P1.err_off + pad) {
        fprintf(stderr, "err %d at %zu (small) vs %zu - %zu (in place)\n", P1.err, P1.err_off, P2.err_off, pad);
        BROKEN();
    }
    for (i = 0; i < P1.nkept; i++) {
        uint32_t size = H.rings[P1.rt[i]]->rec_size;
        if (P1.rt[i] != P2.rt[i]) BROKEN();
        memset(P1.rec[i] + 2, 0, 2);   /* flags: the wire order counter */
        memset(P2.rec[i] + 2, 0, 2);
        memset(P1.rec[i] + 32, 0, 4);  /* spill: the range's position in the log */
        memset(P2.rec[i] + 32, 0, 4);
        clear_unused_levels(P1.rt[i], P1.rec[i]);
        clear_unused_levels(P2.rt[i], P2.rec[i]);
        if (memcmp(P1.rec[i], P2.rec[i], size) != 0) {
            uint32_t o = 0;
            while (P1.rec[i][o] == P2.rec[i][o]) o++;
            fprintf(stderr, "rt %d differs at byte %u\n", P1.rt[i], o);
            BROKEN();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy;
    if (!inited || H.nstr > PGH_MAXSTR - 256) {
        if (inited) pgh_free(&H);
        if (pgh_init(&H, 64) != 0) BROKEN();
        inited = 1;
    }
    /* both builds of the decoder (compat.h's runtime dispatch): by the input's length */
    ff_pg_select((size & 1) && ff_cpu_v3());
    copy = (char *)malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    run(copy, size, &P1);
    free(copy);
    if (size <= FF_PG_SMALL) {
        /* the same bytes after white space: larger than FF_PG_SMALL, decoded in place */
        size_t pad = FF_PG_SMALL + 1 - size;
        char *big = (char *)malloc(pad + size);
        if (!big) return 0;
        memset(big, ' ', pad);
        memcpy(big + pad, data, size);
        run(big, pad + size, &P2);
        free(big);
        if (P1.err != FF_PGE_EMPTY) {
            if (getenv("FF_FUZZ_DEBUG")) fwrite(data, 1, size, stderr), fputc('\n', stderr);
            compare(pad);
        }
    }
    if (ff_pg_decode(&H.d, GOOD, sizeof GOOD - 1) != 1 || H.d.err != FF_PGE_OK) BROKEN();
    return 0;
}
