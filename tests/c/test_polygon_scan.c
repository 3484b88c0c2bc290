/* CTest: fastfeed/polygon_scan.h, the polygon/Massive decoder, without Python (tests/c/pg_harness.h):
 * real message shapes of every cluster (stocks T/Q/A/AM/LULD/NOI, options, forex, crypto
 * XT/XQ/XL2, indices, futures, FMV/LV), status objects, keys without a slot and long strings kept
 * in the spill log, lists past their inline capacity, keys in any order, the symbol-table cap,
 * malformed input (every prefix of a message, wrong value types, oversize numbers, bad UTF-8),
 * counters, and numbers bit-exact with strtod / strtoll in small (padded-copy) and large messages. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"
#include "pg_harness.h"

static pgh H;

static ptrdiff_t feed_n(const char *msg, size_t n)
{
    /* an exactly sized heap copy: ASan sees any read past the message */
    char *b = (char *)malloc(n ? n : 1);
    ptrdiff_t r;
    memcpy(b, msg, n);
    r = ff_pg_decode(&H.d, b, n);
    free(b);
    return r;
}

static ptrdiff_t feed(const char *msg) { return feed_n(msg, strlen(msg)); }

static int same_bits(double a, double b) { return memcmp(&a, &b, 8) == 0; }
static double num(const char *s) { return strtod(s, NULL); }
static uint64_t head(int rt) { return H.rings[rt]->head; }
#define REC(type, rt, seq) ((const type *)pgh_rec(&H, rt, seq))
#define PRESENT(r, bit) (((r)->present >> (bit)) & 1)
#define ALT(r, bit) (((r)->alt >> (bit)) & 1)

static const char *sym(uint32_t id) { const char *s = pgh_sym(&H, id); return s ? s : "(none)"; }

/* The text of fixstr `wire` of a record of ring rt. */
static const char *fixstr(int rt, const void *rec, const char *wire)
{
    static char out[512];
    int li = pgh_layout_of(rt);
    const ff_pgfield_desc *fd = li >= 0 ? pgh_field(li, wire) : NULL;
    if (!fd || pgh_fixstr(&H, rt, (const uint8_t *)rec, fd, out, sizeof out) < 0) return "(bad)";
    return out;
}

static void test_stocks(void)
{
    uint64_t t0 = head(FF_RT_PG_T), q0 = head(FF_RT_PG_Q), a0 = head(FF_RT_PG_A), am0 = head(FF_RT_PG_AM);
    uint64_t ev0 = H.d.n_events;
    ptrdiff_t n = feed(
        "[{\"ev\":\"T\",\"sym\":\"MSFT\",\"x\":4,\"i\":\"12345\",\"z\":3,\"p\":114.125,\"s\":100,"
        "\"c\":[0,12],\"t\":1536036818784,\"q\":3681328},"
        "{\"ev\":\"Q\",\"sym\":\"MSFT\",\"bx\":4,\"bp\":114.125,\"bs\":100,\"ax\":7,\"ap\":114.128,\"as\":160,"
        "\"c\":0,\"i\":[604],\"t\":1536036818784,\"q\":50385480,\"z\":3},"
        "{\"ev\":\"A\",\"sym\":\"SPCE\",\"v\":200,\"av\":8642007,\"op\":25.66,\"vw\":25.3981,\"o\":25.39,"
        "\"c\":25.39,\"h\":25.39,\"l\":25.39,\"a\":25.3714,\"z\":50,\"s\":1610144868000,\"e\":1610144869000},"
        "{\"ev\":\"AM\",\"sym\":\"GTE\",\"v\":4110,\"av\":9470157,\"op\":0.4372,\"vw\":0.4488,\"o\":0.4488,"
        "\"c\":0.4486,\"h\":0.4489,\"l\":0.4486,\"a\":0.4352,\"z\":685,\"s\":1610144640000,\"e\":1610144700000,"
        "\"otc\":true,\"dv\":\"4110.5\",\"dav\":\"9470157.25\"}]");
    const ff_pg_equity_trade *t = REC(ff_pg_equity_trade, FF_RT_PG_T, t0);
    const ff_pg_equity_quote *q = REC(ff_pg_equity_quote, FF_RT_PG_Q, q0);
    const ff_pg_equity_agg *a = REC(ff_pg_equity_agg, FF_RT_PG_A, a0);
    const ff_pg_equity_agg *am = REC(ff_pg_equity_agg, FF_RT_PG_AM, am0);
    CHECK(n == 4 && H.d.err == FF_PGE_OK, "stocks: n=%td err=%d", n, H.d.err);
    CHECK(H.d.n_events == ev0 + 4, "n_events counts published events");
    if (!t || !q || !a || !am) { FAIL("stocks: not published"); return; }
    CHECK(t->rtype == FF_RT_PG_T && strcmp(sym(t->symbol_id), "MSFT") == 0, "T header");
    CHECK(t->exchange == 4 && t->tape == 3 && t->timestamp == 1536036818784LL && t->sequence_number == 3681328,
          "T ints");
    CHECK(same_bits(t->price, num("114.125")) && !ALT(t, 4), "T price (a float)");
    CHECK(same_bits(t->size, 100.0) && ALT(t, 5), "T size: an integer in an f64 slot, alt bit set");
    CHECK(t->conditions_n == 2 && t->conditions[0] == 0 && t->conditions[1] == 12 && t->conditions_dropped == 0,
          "T conditions");
    CHECK(strcmp(fixstr(FF_RT_PG_T, t, "i"), "12345") == 0, "T id");
    CHECK(PRESENT(t, 0) && PRESENT(t, 1) && !PRESENT(t, 6) && !PRESENT(t, 10), "T presence: ds, trfi absent");
    CHECK(q->bid_exchange_id == 4 && q->ask_exchange_id == 7 && same_bits(q->ask_price, num("114.128")) &&
          same_bits(q->ask_size, 160.0) && q->condition == 0 && q->indicators_n == 1 && q->indicators[0] == 604 &&
          q->sequence_number == 50385480, "Q values");
    CHECK(strcmp(sym(a->symbol_id), "SPCE") == 0 && same_bits(a->vwap, num("25.3981")) &&
          same_bits(a->aggregate_vwap, num("25.3714")) && a->end_timestamp == 1610144869000LL && a->otc == 0,
          "A values");
    CHECK(am->rtype == FF_RT_PG_AM && am->otc == 1 && same_bits(am->official_open_price, num("0.4372")),
          "AM: its own ring, otc");
    CHECK(strcmp(fixstr(FF_RT_PG_AM, am, "dv"), "4110.5") == 0 &&
          strcmp(fixstr(FF_RT_PG_AM, am, "dav"), "9470157.25") == 0, "AM fractional volumes as text");
    CHECK((uint16_t)(q->flags - t->flags) == 1 && (uint16_t)(am->flags - a->flags) == 1, "wire order in flags");
}

static void test_luld_noi_forex(void)
{
    uint64_t l0 = head(FF_RT_PG_LULD), n0 = head(FF_RT_PG_NOI), c0 = head(FF_RT_PG_C), ca0 = head(FF_RT_PG_CA);
    ptrdiff_t n = feed(
        "[{\"ev\":\"LULD\",\"T\":\"MSFT\",\"h\":218.96,\"l\":198.11,\"i\":[21],\"z\":3,\"t\":1601316752683746,\"q\":290317},"
        "{\"ev\":\"NOI\",\"T\":\"NTEST.Q\",\"t\":1601318039223013127,\"at\":930,\"a\":\"M\",\"i\":44,\"x\":10,"
        "\"o\":480,\"p\":440,\"b\":25.03},"
        "{\"ev\":\"C\",\"p\":\"USD/CNH\",\"x\":\"44\",\"a\":6.83366,\"b\":6.83363,\"t\":1536036818784},"
        "{\"ev\":\"C\",\"p\":\"EUR/USD\",\"x\":48,\"a\":1.1,\"b\":1,\"t\":1536036818785},"
        "{\"ev\":\"CA\",\"pair\":\"USD/EUR\",\"o\":0.8687,\"c\":0.86889,\"h\":0.86889,\"l\":0.8686,\"v\":20,"
        "\"s\":1539145740000}]");
    const ff_pg_limit_up_limit_down *l = REC(ff_pg_limit_up_limit_down, FF_RT_PG_LULD, l0);
    const ff_pg_imbalance *im = REC(ff_pg_imbalance, FF_RT_PG_NOI, n0);
    const ff_pg_forex_quote *c = REC(ff_pg_forex_quote, FF_RT_PG_C, c0);
    const ff_pg_forex_quote *c2 = REC(ff_pg_forex_quote, FF_RT_PG_C, c0 + 1);
    const ff_pg_currency_agg *ca = REC(ff_pg_currency_agg, FF_RT_PG_CA, ca0);
    CHECK(n == 5 && H.d.err == FF_PGE_OK, "luld/noi/forex: n=%td err=%d", n, H.d.err);
    if (!l || !im || !c || !c2 || !ca) { FAIL("not published"); return; }
    CHECK(strcmp(sym(l->symbol_id), "MSFT") == 0 && same_bits(l->high_price, num("218.96")) &&
          l->timestamp == 1601316752683746LL && l->indicators_n == 1 && l->indicators[0] == 21, "LULD");
    CHECK(strcmp(sym(im->symbol_id), "NTEST.Q") == 0 && im->timestamp == 1601318039223013127LL &&
          im->auction_time == 930 && strcmp(fixstr(FF_RT_PG_NOI, im, "a"), "M") == 0 &&
          same_bits(im->imbalance_quantity, 480.0) && same_bits(im->book_clearing_price, num("25.03")), "NOI");
    CHECK(strcmp(sym(c->symbol_id), "USD/CNH") == 0 && c->exchange_id == 44 && ALT(c, 1), "C: x as a string");
    CHECK(c2->exchange_id == 48 && !ALT(c2, 1) && same_bits(c2->bid_price, 1.0) && ALT(c2, 3), "C: x as an int");
    CHECK(strcmp(sym(ca->symbol_id), "USD/EUR") == 0 && same_bits(ca->close, num("0.86889")) && !PRESENT(ca, 9),
          "CA: e absent");
}

static void test_crypto(void)
{
    uint64_t x0 = head(FF_RT_PG_XT), q0 = head(FF_RT_PG_XQ), b0 = head(FF_RT_PG_XL2);
    ptrdiff_t n = feed(
        "[{\"ev\":\"XT\",\"pair\":\"BTC-USD\",\"p\":33021.9,\"t\":1610462007425,\"s\":0.01544,\"c\":[2],"
        "\"i\":14272084,\"x\":1,\"r\":1610462007576},"
        "{\"ev\":\"XT\",\"pair\":\"ETH-USD\",\"p\":1e3,\"t\":1,\"s\":2,\"c\":[],\"i\":\"a-14272085\",\"x\":1,\"r\":2},"
        "{\"ev\":\"XQ\",\"pair\":\"BTC-USD\",\"bp\":33052.79,\"bs\":0.48,\"ap\":33073.19,\"as\":0.601,"
        "\"t\":1610462411115,\"x\":1,\"r\":1610462411128},"
        "{\"ev\":\"XL2\",\"pair\":\"BTC-USD\",\"t\":1610462411115,\"x\":1,\"r\":1610462411128,"
        "\"b\":[[33712.7,0.0294],[33712.6,2],[33710,1.5E-3]],\"a\":[ [ 33714.36 , 0.09 ] , [33714.37,-0.0]]}]");
    const ff_pg_crypto_trade *t = REC(ff_pg_crypto_trade, FF_RT_PG_XT, x0);
    const ff_pg_crypto_trade *t2 = REC(ff_pg_crypto_trade, FF_RT_PG_XT, x0 + 1);
    const ff_pg_crypto_quote *q = REC(ff_pg_crypto_quote, FF_RT_PG_XQ, q0);
    const ff_pg_level_2_book *b = REC(ff_pg_level_2_book, FF_RT_PG_XL2, b0);
    CHECK(n == 4 && H.d.err == FF_PGE_OK, "crypto: n=%td err=%d", n, H.d.err);
    if (!t || !t2 || !q || !b) { FAIL("crypto: not published"); return; }
    CHECK(same_bits(t->price, num("33021.9")) && same_bits(t->size, num("0.01544")) &&
          t->conditions_n == 1 && t->conditions[0] == 2 && t->received_timestamp == 1610462007576LL, "XT values");
    CHECK(strcmp(fixstr(FF_RT_PG_XT, t, "i"), "14272084") == 0 && ALT(t, 5), "XT i: an integer kept as text");
    CHECK(strcmp(fixstr(FF_RT_PG_XT, t2, "i"), "a-14272085") == 0 && !ALT(t2, 5), "XT i: a string");
    CHECK(same_bits(t2->price, 1000.0) && !ALT(t2, 1) && t2->conditions_n == 0 && PRESENT(t2, 4), "XT 1e3, []");
    CHECK(same_bits(q->bid_price, num("33052.79")) && same_bits(q->ask_size, num("0.601")), "XQ");
    CHECK(b->bid_prices_n == 3 && b->ask_prices_n == 2 && b->bid_prices_dropped == 0, "XL2 counts");
    CHECK(same_bits(b->bid_prices[0][0], num("33712.7")) && same_bits(b->bid_prices[0][1], num("0.0294")) &&
          same_bits(b->bid_prices[1][1], 2.0) && b->bid_prices_alt[1] == 2 &&
          same_bits(b->bid_prices[2][0], 33710.0) && b->bid_prices_alt[2] == 1 &&
          same_bits(b->bid_prices[2][1], num("1.5E-3")), "XL2 bids (lane, ints, exponent)");
    CHECK(same_bits(b->ask_prices[0][0], num("33714.36")) && same_bits(b->ask_prices[1][1], -0.0),
          "XL2 asks with white space, -0.0 keeps its sign");
}

static void test_options_indices_futures(void)
{
    uint64_t t0 = head(FF_RT_PG_T), q0 = head(FF_RT_PG_Q), a0 = head(FF_RT_PG_A), v0 = head(FF_RT_PG_V);
    uint64_t f0 = head(FF_RT_PG_FMV), lv0 = head(FF_RT_PG_LV);
    ptrdiff_t n = feed(
        "[{\"ev\":\"T\",\"sym\":\"O:SPY251219C00650000\",\"x\":65,\"p\":7.25,\"s\":2,\"c\":[227],\"t\":1765900000000,\"q\":1},"
        "{\"ev\":\"A\",\"sym\":\"I:SPX\",\"op\":6012.5,\"o\":6012.62,\"c\":6013.01,\"h\":6013.2,\"l\":6012.5,"
        "\"s\":1765900000000,\"e\":1765900001000},"
        "{\"ev\":\"V\",\"val\":6012.88,\"T\":\"I:SPX\",\"t\":1765900000123},"
        "{\"ev\":\"T\",\"sym\":\"ESZ5\",\"p\":6012.25,\"s\":3,\"t\":1765900000456,\"q\":77},"
        "{\"ev\":\"Q\",\"sym\":\"ESZ5\",\"bp\":6012.25,\"bs\":12,\"bt\":1765900000400,\"ap\":6012.5,\"as\":9,"
        "\"at\":1765900000401,\"t\":1765900000402},"
        "{\"ev\":\"A\",\"sym\":\"ESZ5\",\"v\":1200,\"dv\":\"1200\",\"o\":6010,\"c\":6012.25,\"h\":6013,\"l\":6009.75,"
        "\"n\":311,\"s\":1765900000000,\"e\":1765900001000},"
        "{\"ev\":\"FMV\",\"fmv\":189.22,\"sym\":\"AAPL\",\"t\":1765900000000000000},"
        "{\"ev\":\"LV\",\"val\":3988.5,\"sym\":\"X:BTC-USD\",\"t\":1765900000000000001}]");
    const ff_pg_equity_trade *ot = REC(ff_pg_equity_trade, FF_RT_PG_T, t0);
    const ff_pg_equity_trade *ft = REC(ff_pg_equity_trade, FF_RT_PG_T, t0 + 1);
    const ff_pg_equity_quote *fq = REC(ff_pg_equity_quote, FF_RT_PG_Q, q0);
    const ff_pg_equity_agg *ia = REC(ff_pg_equity_agg, FF_RT_PG_A, a0);
    const ff_pg_equity_agg *fa = REC(ff_pg_equity_agg, FF_RT_PG_A, a0 + 1);
    const ff_pg_index_value *v = REC(ff_pg_index_value, FF_RT_PG_V, v0);
    const ff_pg_fair_market_value *f = REC(ff_pg_fair_market_value, FF_RT_PG_FMV, f0);
    const ff_pg_launchpad_value *lv = REC(ff_pg_launchpad_value, FF_RT_PG_LV, lv0);
    CHECK(n == 8 && H.d.err == FF_PGE_OK, "options/indices/futures: n=%td err=%d", n, H.d.err);
    if (!ot || !ft || !fq || !ia || !fa || !v || !f || !lv) { FAIL("not published"); return; }
    CHECK(strcmp(sym(ot->symbol_id), "O:SPY251219C00650000") == 0 && ot->exchange == 65 &&
          same_bits(ot->price, num("7.25")) && !PRESENT(ot, 2) && !PRESENT(ot, 3), "options T: no i, no z");
    CHECK(strcmp(sym(ia->symbol_id), "I:SPX") == 0 && same_bits(ia->close, num("6013.01")) && !PRESENT(ia, 1),
          "indices A: no volume");
    CHECK(strcmp(sym(v->symbol_id), "I:SPX") == 0 && same_bits(v->value, num("6012.88")), "V");
    CHECK(strcmp(sym(ft->symbol_id), "ESZ5") == 0 && same_bits(ft->price, num("6012.25")) && ft->sequence_number == 77,
          "futures T");
    CHECK(fq->bid_timestamp == 1765900000400LL && fq->ask_timestamp == 1765900000401LL &&
          same_bits(fq->ask_price, num("6012.5")), "futures Q: bt / at");
    CHECK(fa->transactions == 311 && strcmp(fixstr(FF_RT_PG_A, fa, "dv"), "1200") == 0 &&
          same_bits(fa->low, num("6009.75")), "futures A: n, dv");
    CHECK(same_bits(f->fmv, num("189.22")) && f->timestamp == 1765900000000000000LL, "FMV");
    CHECK(strcmp(sym(lv->symbol_id), "X:BTC-USD") == 0 && lv->timestamp == 1765900000000000001LL, "LV");
}

static void test_status(void)
{
    uint64_t st0 = H.d.n_status, calls0 = H.n_status_calls, ev0 = H.d.n_events;
    ptrdiff_t n = feed("[{\"ev\":\"status\",\"status\":\"connected\",\"message\":\"Connected Successfully\"}]");
    CHECK(n == 0 && H.d.err == FF_PGE_OK && H.d.n_status == st0 + 1 && H.n_status_calls == calls0 + 1,
          "status: n=%td err=%d", n, H.d.err);
    CHECK(strcmp(H.status_last, "{\"ev\":\"status\",\"status\":\"connected\",\"message\":\"Connected Successfully\"}") == 0,
          "the status object is handed over whole: %s", H.status_last);
    n = feed("[{\"status\":\"success\",\"ev\":\"status\",\"message\":\"subscribed to: T.AAPL\"},"
             "{\"ev\":\"T\",\"sym\":\"AAPL\",\"p\":1.5,\"s\":1,\"t\":1,\"q\":1}]");
    CHECK(n == 1 && H.d.n_status == st0 + 2 && H.d.n_events == ev0 + 1, "status (ev not first) + event");
    H.status_fail = 1;
    n = feed("[{\"ev\":\"status\",\"status\":\"auth_failed\"}]");
    H.status_fail = 0;
    CHECK(n == 0 && H.d.err == FF_PGE_STATUS, "a status the callback refuses: FF_PGE_STATUS");
}

/* The spill range of rec (of ring rt): its first piece's tag and text. */
static int first_piece(int rt, const void *rec, char *out, size_t cap, uint32_t *len)
{
    const ff_spill *log = &H.rings[rt]->spill;
    uint64_t sp;
    uint8_t hdr[FF_SPILL_HDR];
    memcpy(&sp, (const uint8_t *)rec + 32, 8);
    if (!(sp >> 32)) return 0;
    ff_spill_read(log, (uint32_t)sp, FF_SPILL_HDR, hdr);
    memcpy(len, hdr + 1, 4);
    if (*len >= cap || *len + FF_SPILL_HDR > (uint32_t)(sp >> 32)) return -1;
    ff_spill_read(log, (uint32_t)sp + FF_SPILL_HDR, *len, out);
    out[*len] = 0;
    return hdr[0];
}

static void test_spill(void)
{
    uint64_t t0 = head(FF_RT_PG_T), x0 = head(FF_RT_PG_XL2), uk0 = H.d.n_unknown_keys, sp0 = H.d.n_spilled_str;
    uint64_t dr0 = H.d.n_dropped_items;
    char out[4096], msg[8192];
    uint32_t len;
    int tag, i;
    size_t o;
    ptrdiff_t n = feed(
        "[{\"ev\":\"T\",\"sym\":\"AAPL\",\"i\":\"0123456789012345678901234567890123456789\",\"p\":1,"
        "\"foo\":{\"a\":[1,2]},\"ds\":\"a\\u0000b\",\"c\":[1,2,3,4,5,6,7,8,9,10],\"t\":5}]");
    const ff_pg_equity_trade *t = REC(ff_pg_equity_trade, FF_RT_PG_T, t0);
    CHECK(n == 1 && H.d.err == FF_PGE_OK, "spill: n=%td err=%d", n, H.d.err);
    if (!t) { FAIL("not published"); return; }
    CHECK(strcmp(fixstr(FF_RT_PG_T, t, "i"), "0123456789012345678901234567890123456789") == 0,
          "a 40-byte id kept whole");
    {
        int li = pgh_layout_of(FF_RT_PG_T);
        long m = pgh_fixstr(&H, FF_RT_PG_T, (const uint8_t *)t, pgh_field(li, "ds"), out, sizeof out);
        CHECK(m == 3 && memcmp(out, "a\0b", 3) == 0, "a string with a NUL byte kept whole (%ld)", m);
    }
    CHECK(H.d.n_spilled_str == sp0 + 2 && H.d.n_unknown_keys == uk0 + 1, "counted");
    tag = first_piece(FF_RT_PG_T, t, out, sizeof out, &len);
    CHECK(tag == FF_SPILL_STR && strcmp(out, "0123456789012345678901234567890123456789") == 0,
          "first piece: the id (%d)", tag);
    CHECK(t->conditions_n == 8 && t->conditions_dropped == 2 && t->conditions[7] == 8 &&
          H.d.n_dropped_items == dr0 + 2 && ((t->alt >> (32 + 7)) & 1), "conditions past 8: kept in the log");
    /* the unknown key's member, raw */
    {
        const ff_spill *log = &H.rings[FF_RT_PG_T]->spill;
        uint64_t sp;
        uint32_t pos, end, plen;
        int found = 0;
        memcpy(&sp, (const uint8_t *)t + 32, 8);
        for (pos = (uint32_t)sp, end = pos + (uint32_t)(sp >> 32); pos != end; pos += FF_SPILL_HDR + plen) {
            uint8_t hdr[FF_SPILL_HDR];
            ff_spill_read(log, pos, FF_SPILL_HDR, hdr);
            memcpy(&plen, hdr + 1, 4);
            if (plen >= sizeof out || (uint32_t)(end - pos) < FF_SPILL_HDR + plen) { FAIL("piece out of range"); break; }
            ff_spill_read(log, pos + FF_SPILL_HDR, plen, out);
            out[plen] = 0;
            if (hdr[0] == FF_SPILL_KEY) found += strcmp(out, "\"foo\":{\"a\":[1,2]}") == 0;
            if (hdr[0] == FF_SPILL_RAW) found += out[0] == 7 && strcmp(out + 1, "[1,2,3,4,5,6,7,8,9,10]") == 0;
        }
        CHECK(found == 2, "the unknown member and the long list in the log (%d)", found);
    }
    /* a book of 101 bid levels: 100 inline, the whole list in the log */
    o = (size_t)snprintf(msg, sizeof msg, "[{\"ev\":\"XL2\",\"pair\":\"X\",\"b\":[");
    for (i = 0; i < 101; i++) o += (size_t)snprintf(msg + o, sizeof msg - o, "%s[%d.5,%d]", i ? "," : "", 100 + i, i);
    snprintf(msg + o, sizeof msg - o, "],\"a\":[]}]");
    n = feed(msg);
    {
        const ff_pg_level_2_book *b = REC(ff_pg_level_2_book, FF_RT_PG_XL2, x0);
        CHECK(n == 1 && b && b->bid_prices_n == 100 && b->bid_prices_dropped == 1 && b->ask_prices_n == 0 &&
              same_bits(b->bid_prices[99][0], 199.5) && b->bid_prices_alt[99] == 2, "XL2 past 100 levels");
        tag = b ? first_piece(FF_RT_PG_XL2, b, out, sizeof out, &len) : 0;
        CHECK(tag == FF_SPILL_RAW && out[0] == 1 && strncmp(out + 1, "[[100.5,0],", 11) == 0, "XL2 list in the log");
    }
}

static void test_keys_any_order_and_space(void)
{
    uint64_t q0 = head(FF_RT_PG_Q);
    ptrdiff_t n = feed(" \n[ { \"bp\" : 1.25 , \"sym\":\"AAPL\" ,\"ev\" : \"Q\", \"ap\":\t2.5 } ,\r\n"
                       "{\"sym\":\"AAPL\",\"bp\":3,\"ev\":\"Q\"} ] \n");
    const ff_pg_equity_quote *q = REC(ff_pg_equity_quote, FF_RT_PG_Q, q0);
    const ff_pg_equity_quote *q2 = REC(ff_pg_equity_quote, FF_RT_PG_Q, q0 + 1);
    CHECK(n == 2 && H.d.err == FF_PGE_OK, "any order: n=%td err=%d", n, H.d.err);
    CHECK(q && q2 && same_bits(q->bid_price, 1.25) && same_bits(q->ask_price, 2.5) && same_bits(q2->bid_price, 3.0) &&
          isnan(q2->ask_price) && !PRESENT(q2, 5), "values, a missing key stays NaN / absent");
    CHECK(feed("[]") == 0 && H.d.err == FF_PGE_OK, "empty array");
}

static void test_bad_events(void)
{
    struct { const char *ev; int err; } cases[] = {
        {"{\"ev\":\"T\",\"sym\":\"A\",\"p\":\"1.5\"}", FF_PGE_WRONG_TYPE},             /* string price */
        {"{\"ev\":\"T\",\"sym\":\"A\",\"s\":9007199254740993}", FF_PGE_WRONG_TYPE},    /* > 2^53 in f64 */
        {"{\"ev\":\"T\",\"sym\":\"A\",\"t\":99999999999999999999}", FF_PGE_WRONG_TYPE}, /* > int64 */
        {"{\"ev\":\"T\",\"sym\":\"A\",\"t\":1.5}", FF_PGE_WRONG_TYPE},                  /* non-integral */
        {"{\"ev\":\"T\",\"sym\":\"A\",\"t\":-0.0}", FF_PGE_WRONG_TYPE},                 /* -0.0 in an int */
        {"{\"ev\":\"T\",\"sym\":\"A\",\"c\":[1,2.5]}", FF_PGE_WRONG_TYPE},              /* float in int[] */
        {"{\"ev\":\"T\",\"sym\":\"A\",\"c\":[4294967296]}", FF_PGE_WRONG_TYPE},         /* > int32 */
        {"{\"ev\":\"C\",\"p\":\"A\",\"x\":\"044\"}", FF_PGE_WRONG_TYPE},                /* non-canonical */
        {"{\"ev\":\"AM\",\"sym\":\"A\",\"otc\":1}", FF_PGE_WRONG_TYPE},
        {"{\"ev\":\"XL2\",\"pair\":\"A\",\"b\":[[1,2,3]]}", FF_PGE_WRONG_TYPE},
        {"{\"ev\":\"XL2\",\"pair\":\"A\",\"b\":[[1,\"2\"]]}", FF_PGE_WRONG_TYPE},
        {"{\"ev\":\"T\",\"sym\":\"A\",\"i\":\"\\ud800\"}", FF_PGE_BAD_STRING},          /* lone surrogate */
        {"{\"ev\":\"T\",\"sym\":\"\xc3\x28\"}", FF_PGE_BAD_STRING},                     /* bad UTF-8 */
        {"{\"ev\":\"T\",\"sym\":\"A\",\"ev\":\"Q\"}", FF_PGE_EV_TYPE},                  /* two ev */
        {"{\"ev\":5,\"sym\":\"A\"}", FF_PGE_EV_TYPE},
        {"{\"sym\":\"A\",\"p\":1}", FF_PGE_NO_EV},
        {"[1,2]", FF_PGE_NOT_OBJECT},
    };
    size_t i;
    char msg[512];
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t t0 = head(FF_RT_PG_T), sk0 = H.d.n_skipped;
        const ff_pg_equity_trade *t;
        ptrdiff_t n;
        snprintf(msg, sizeof msg, "[%s,{\"ev\":\"T\",\"sym\":\"OK\",\"p\":2.5,\"t\":%zu}]", cases[i].ev, i);
        n = feed(msg);
        t = REC(ff_pg_equity_trade, FF_RT_PG_T, head(FF_RT_PG_T) - 1);
        CHECK(n == 1 && H.d.err == cases[i].err && H.d.n_skipped == sk0 + 1, "case %zu (%s): n=%td err=%d", i,
              cases[i].ev, n, H.d.err);
        CHECK(head(FF_RT_PG_T) == t0 + 1 && t && strcmp(sym(t->symbol_id), "OK") == 0 && t->timestamp == (int64_t)i,
              "case %zu: the good event is published", i);
    }
    {
        uint64_t u0 = H.d.n_unknown_ev, sk0 = H.d.n_skipped;
        ptrdiff_t n = feed("[{\"ev\":\"ZZ9\",\"x\":{}},{\"ev\":\"LONGEV\"}]");
        CHECK(n == 0 && H.d.err == FF_PGE_OK && H.d.n_unknown_ev == u0 + 2 && H.d.n_skipped == sk0 + 2,
              "unknown ev: skipped and counted, not an error");
    }
}

static void test_structural(void)
{
    static const char GOOD[] = "[{\"ev\":\"Q\",\"sym\":\"MSFT\",\"bx\":4,\"bp\":114.125,\"bs\":100,\"ax\":7,"
                               "\"ap\":114.128,\"as\":160,\"c\":0,\"i\":[604],\"t\":1536036818784,\"q\":50385480,\"z\":3},"
                               "{\"ev\":\"XL2\",\"pair\":\"B\",\"b\":[[1.5,2]],\"a\":[[3,4.25]],\"t\":1}]";
    size_t k;
    CHECK(feed("") == -1 && H.d.err == FF_PGE_EMPTY, "empty");
    CHECK(feed(" \n") == -1 && H.d.err == FF_PGE_EMPTY, "white space");
    CHECK(feed("{\"ev\":\"T\"}") == -1 && H.d.err == FF_PGE_NOT_ARRAY, "an object");
    CHECK(feed("nope") == -1 && H.d.err == FF_PGE_NOT_JSON, "not JSON");
    CHECK(feed("[{\"ev\":\"T\",\"sym\":\"A\"}] x") == 1 && H.d.err == FF_PGE_TRAILING, "trailing bytes");
    CHECK(feed("[{\"ev\":\"T\",\"sym\":\"A\"} {\"ev\":\"T\"}]") == 1 && H.d.err == FF_PGE_MALFORMED,
          "garbage between events");
    CHECK(feed("[{\"ev\":\"T\",\"sym\":\"A\",\"p\":1 2}]") == 0 && H.d.err == FF_PGE_MALFORMED, "malformed object");
    /* every prefix: events before the cut are published, the cut is reported as truncated */
    for (k = 0; k < sizeof GOOD - 1; k++) {
        uint64_t q0 = head(FF_RT_PG_Q), b0 = head(FF_RT_PG_XL2);
        ptrdiff_t n = feed_n(GOOD, k);
        if (k == 0) {
            CHECK(n == -1 && H.d.err == FF_PGE_EMPTY, "prefix 0");
            continue;
        }
        /* a cut right after an inner list ('..."i":[604]') is truncated too (regression) */
        CHECK(n >= 0 && n <= 2 && H.d.err == FF_PGE_TRUNCATED &&
              head(FF_RT_PG_Q) - q0 + head(FF_RT_PG_XL2) - b0 == (uint64_t)n,
              "prefix %zu: n=%td err=%d", k, n, H.d.err);
    }
    CHECK(feed("[{\"ev\":\"T\",\"sym\":\"A\",\"c\":[1}]") == 0 && H.d.err == FF_PGE_MALFORMED,
          "a mismatched bracket is malformed, not truncated");
    CHECK(feed("[{\"ev\":\"T\",\"sym\":\"A\",\"c\":[1]]") == 0 && H.d.err == FF_PGE_MALFORMED,
          "an array closed by ']' is malformed, not truncated");
    CHECK(feed("[{\"ev\":\"T\",\"sym\":\"A\",\"i\":\"a\\") == 0 && H.d.err == FF_PGE_TRUNCATED,
          "a cut after a backslash in a string is truncated");
    CHECK(feed(GOOD) == 2 && H.d.err == FF_PGE_OK, "whole");
}

/* Regression (found by fuzz_polygon_scan): a message larger than FF_PG_SMALL (decoded in place,
 * no padding) that ends right after a book list taken by the key lane read one byte past its end
 * (the separator after the list).  The message is exactly sized on the heap: ASan sees it. */
static void test_lane_list_at_message_end(void)
{
    char msg[4096];
    size_t o;
    int i;
    uint64_t b0 = head(FF_RT_PG_XL2);
    /* teach the lane the key order pair, a, b */
    CHECK(feed("[{\"ev\":\"XL2\",\"pair\":\"A\",\"a\":[[1,2]],\"b\":[[1,2]]}]") == 1, "order learned");
    o = (size_t)snprintf(msg, sizeof msg, "[{\"ev\":\"XL2\",\"pair\":\"A\",\"a\":[[1,2]],\"b\":[");
    for (i = 0; i < 90; i++) o += (size_t)snprintf(msg + o, sizeof msg - o, "%s[%d.25,%d]", i ? "," : "", 1000 + i, i);
    o += (size_t)snprintf(msg + o, sizeof msg - o, "]");
    CHECK(o > FF_PG_SMALL, "a large message");
    CHECK(feed_n(msg, o) == 0 && H.d.err == FF_PGE_TRUNCATED && head(FF_RT_PG_XL2) == b0 + 1,
          "cut after the list: truncated, err=%d", H.d.err);
    msg[o++] = '}';
    CHECK(feed_n(msg, o) == 1 && H.d.err == FF_PGE_TRUNCATED, "cut after the object: published, truncated");
    msg[o++] = ']';
    CHECK(feed_n(msg, o) == 1 && H.d.err == FF_PGE_OK, "whole: decoded");
}

static void test_symtab_full(void)
{
    uint64_t f0 = H.d.n_symtab_full, t0 = head(FF_RT_PG_T);
    ptrdiff_t n;
    H.max_symbols = H.nstr;
    n = feed("[{\"ev\":\"T\",\"sym\":\"NEWSYM1\",\"p\":1},{\"ev\":\"T\",\"sym\":\"A-VERY-LONG-NEW-SYMBOL\",\"p\":1},"
             "{\"ev\":\"T\",\"sym\":\"MSFT\",\"p\":1}]");
    H.max_symbols = 0;
    CHECK(n == 1 && H.d.err == FF_PGE_SYMTAB_FULL && H.d.n_symtab_full == f0 + 2 && head(FF_RT_PG_T) == t0 + 1,
          "symbol table full: n=%td err=%d", n, H.d.err);
    CHECK(feed("[{\"ev\":\"T\",\"sym\":\"NEWSYM1\",\"p\":1}]") == 1, "room again: the symbol is interned");
}

/* Each number as a Q bid price (f64) in a small message and in a large one (> FF_PG_SMALL bytes:
 * decoded in place, no padded copy), bit-exact with strtod; integers as t (i64) with strtoll. */
static void test_numbers_bit_exact(void)
{
    static const char *const nums[] = {
        "0.1", "1e23", "2.2250738585072011e-308", "4.9e-324", "1.7976931348623157e308", "123456789012345678.0",
        "0.000001234", "9007199254740992", "-1.5E-7", "3.141592653589793238462643383279", "1e-400", "5e-324",
        "100.0", "1.3743299E7", "4.81989763184255E-12", "114.128", "33021.9", "0", "-0", "-0.0", "1E+2",
        "999999999999999.9", "0.30000000000000004", "1e400", "-1e400", "17976931348623157e292",
        "2.4703282292062327e-324", "2.4703282292062328e-324", "7.2057594037927933e16", "123.456e-2"};
    static const char *const ints[] = {"0", "1", "-1", "1536036818784", "9223372036854775807",
                                       "-9223372036854775808", "1601318039223013127", "12345678901234567"};
    char msg[4096], pad[2048];
    size_t i, k;
    int big, isint;
    double want;
    memset(pad, 0, sizeof pad);
    for (k = 0; k < 24; k++)
        strcat(pad, "{\"ev\":\"XQ\",\"pair\":\"P\",\"bp\":1.5,\"bs\":2,\"ap\":3.25,\"t\":1},");
    for (big = 0; big < 2; big++) {
        for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
            uint64_t q0 = head(FF_RT_PG_Q);
            const ff_pg_equity_quote *q;
            ptrdiff_t n;
            snprintf(msg, sizeof msg, "[%s{\"ev\":\"Q\",\"sym\":\"N\",\"bp\":%s,\"ap\":%s}]", big ? pad : "", nums[i], nums[i]);
            CHECK((strlen(msg) > FF_PG_SMALL) == big, "message size");
            n = feed(msg);
            q = REC(ff_pg_equity_quote, FF_RT_PG_Q, q0);
            CHECK(n == (big ? 25 : 1) && H.d.err == FF_PGE_OK, "%s (big=%d): decoded, err=%d", nums[i], big, H.d.err);
            /* an integer spelling is an int (json.loads: -0 is 0): its double, alt bit set */
            isint = strpbrk(nums[i], ".eE") == NULL;
            want = isint ? (double)strtoll(nums[i], NULL, 10) : strtod(nums[i], NULL);
            CHECK(q && same_bits(q->bid_price, want) && same_bits(q->ask_price, want) &&
                  ALT(q, 2) == (uint64_t)isint, "%s (big=%d): bit-exact with strtod", nums[i], big);
        }
        for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
            uint64_t t0 = head(FF_RT_PG_T);
            const ff_pg_equity_trade *t;
            snprintf(msg, sizeof msg, "[%s{\"ev\":\"T\",\"sym\":\"N\",\"t\":%s,\"q\":%s}]", big ? pad : "", ints[i], ints[i]);
            CHECK(feed(msg) == (big ? 25 : 1) && H.d.err == FF_PGE_OK, "%s: decoded", ints[i]);
            t = REC(ff_pg_equity_trade, FF_RT_PG_T, t0);
            CHECK(t && t->timestamp == strtoll(ints[i], NULL, 10) && t->sequence_number == t->timestamp,
                  "%s (big=%d): exact", ints[i], big);
        }
    }
}

/* Every test on one build of the decoder (compat.h's runtime dispatch), on a fresh harness. */
static void run_all(int v3)
{
    CHECK(ff_pg_select(v3) == v3, "ff_pg_select(%d)", v3);
    if (pgh_init(&H, 1024) != 0) { FAIL("init"); return; }
    test_stocks();
    test_luld_noi_forex();
    test_crypto();
    test_options_indices_futures();
    test_status();
    test_spill();
    test_keys_any_order_and_space();
    test_bad_events();
    test_structural();
    test_lane_list_at_message_end();
    test_symtab_full();
    test_numbers_bit_exact();
    pgh_free(&H);
}

int main(void)
{
    FF_TEST_BOTH_BUILDS(run_all, "test_polygon_scan");
    FF_TEST_DONE("test_polygon_scan");
}
