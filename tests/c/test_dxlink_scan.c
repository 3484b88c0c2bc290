/* CTest: fastfeed/dxlink_scan.h, the DXLink FEED_DATA decoder, without Python: COMPACT and
 * FULL events into records, FEED_CONFIG field orders, a bad value costing its event only, a
 * broken pair dropped whole, unknown enum names kept, unknown event types skipped and counted,
 * numbers bit-exact with strtod / strtoll. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"
#include "dx_harness.h"

static dxh H;

static int64_t feed(const char *msg)
{
    H.c.err = 0;
    return ff_dx_message(&H.c, msg, strlen(msg));
}

static const char *str_of(uint32_t id) { return id ? H.strs[id - 1] : NULL; }

static int same_bits(double a, double b) { return memcmp(&a, &b, 8) == 0; }

static void test_compact_quotes(void)
{
    uint64_t h0 = H.rings[FF_RT_QUOTE].head;
    int64_t n = feed("{\"type\":\"FEED_DATA\",\"channel\":7,\"data\":[\"Quote\",["
                     "\"AAPL\",1767312000123,5,7,1767312000120,\"Q\",1767312000121,\"C\",233.41,233.43,300.0,\"NaN\","
                     "\".SPXW260320C6000\",0,0,0,0,\"\",0,\"\\u0000\",5912.17,\"Infinity\",1.3743299E7,-0.0]]}");
    const ff_dx_quote *q0 = (const ff_dx_quote *)dxh_rec(&H, FF_RT_QUOTE, h0);
    const ff_dx_quote *q1 = (const ff_dx_quote *)dxh_rec(&H, FF_RT_QUOTE, h0 + 1);
    CHECK(n == 2 && H.c.err == 0, "quotes: n=%lld err=%d", (long long)n, H.c.err);
    if (!q0 || !q1) { FAIL("quotes not published"); return; }
    CHECK(q0->rtype == FF_RT_QUOTE, "rtype");
    CHECK(strcmp(str_of(q0->symbol_id), "AAPL") == 0, "symbol");
    CHECK(strcmp(str_of(q1->symbol_id), ".SPXW260320C6000") == 0, "16-byte symbol");
    CHECK(q0->event_time == 1767312000123LL && q0->sequence == 5 && q0->time_nano_part == 7, "ints");
    CHECK(q0->bid_exchange_code == 'Q' && q0->ask_exchange_code == 'C', "chars");
    CHECK(q1->bid_exchange_code == 0 && q1->ask_exchange_code == 0, "empty / NUL chars");
    CHECK(same_bits(q0->bid_price, strtod("233.41", NULL)), "bid_price");
    CHECK(isnan(q0->ask_size), "NaN");
    CHECK(isinf(q1->ask_price) && q1->ask_price > 0, "Infinity");
    CHECK(same_bits(q1->bid_size, 1.3743299E7), "exponent");
    CHECK(same_bits(q1->ask_size, -0.0), "-0.0 keeps its sign");
}

static void test_bad_value_costs_one_event(void)
{
    uint64_t h0 = H.rings[FF_RT_TRADE].head, bad0 = H.c.n_bad_events;
    int64_t n = feed("{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[\"Trade\",["
                     "\"A\",0,0,0,1,\"Q\",0,\"UP\",false,1.5,0,1,1,1,"
                     "\"B\",0,0,0,\"bad\",\"Q\",0,\"UP\",false,1.5,0,1,1,1,"
                     "\"C\",0,0,0,3,\"Q\",0,\"UP\",true,2.5,0,1,1,1]]}");
    const ff_dx_trade *t0 = (const ff_dx_trade *)dxh_rec(&H, FF_RT_TRADE, h0);
    const ff_dx_trade *t1 = (const ff_dx_trade *)dxh_rec(&H, FF_RT_TRADE, h0 + 1);
    CHECK(n == 2, "bad value: published %lld, want 2", (long long)n);
    CHECK(H.c.err == DXE_TYPE && H.c.err_rtype == FF_RT_TRADE && H.c.err_field &&
          strcmp(H.c.err_field, "sequence") == 0, "bad value: err=%d", H.c.err);
    CHECK(H.c.n_bad_events == bad0 + 1, "bad events counted");
    if (t0 && t1) {
        CHECK(strcmp(str_of(t0->symbol_id), "A") == 0 && strcmp(str_of(t1->symbol_id), "C") == 0,
              "the good events, in order");
        CHECK(t1->sequence == 3 && t1->extended_trading_hours == 1 && t1->price == 2.5, "values");
    } else {
        FAIL("trades not published");
    }
}

static void test_broken_pair_dropped_whole(void)
{
    uint64_t h0 = H.rings[FF_RT_QUOTE].head;
    int64_t n = feed("{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":["
                     "\"Quote\",[\"X\",0,0,0,0,\"Q\",0,\"Q\",1,2,3],"
                     "\"Quote\",[\"Y\",0,0,0,0,\"Q\",0,\"Q\",1,2,3,4]]}");
    const ff_dx_quote *q = (const ff_dx_quote *)dxh_rec(&H, FF_RT_QUOTE, h0);
    CHECK(n == 1 && H.c.err == DXE_COUNT, "count mismatch: n=%lld err=%d", (long long)n, H.c.err);
    CHECK(q && strcmp(str_of(q->symbol_id), "Y") == 0, "the other pair is published");
}

static void test_unknown_enum_kept(void)
{
    uint64_t h0 = H.rings[FF_RT_TRADE].head, u0 = H.c.n_unknown_enums;
    int64_t n = feed("{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[\"Trade\",["
                     "\"A\",0,0,0,1,\"Q\",0,\"foo\",false,1.5,0,1,1,1,"
                     "\"B\",0,0,0,1,\"Q\",0,\"foo\",false,1.5,0,1,1,1]]}");
    const ff_dx_trade *t0 = (const ff_dx_trade *)dxh_rec(&H, FF_RT_TRADE, h0);
    const ff_dx_trade *t1 = (const ff_dx_trade *)dxh_rec(&H, FF_RT_TRADE, h0 + 1);
    const ff_dxenum *e = &H.enums[FF_DX_ENUM_DIRECTION];
    CHECK(n == 2 && H.c.err == 0, "unknown enum: n=%lld err=%d", (long long)n, H.c.err);
    if (!t0 || !t1) { FAIL("not published"); return; }
    CHECK(t0->tick_direction == FF_DX_ENUM_COUNT[FF_DX_ENUM_DIRECTION] + 1, "a code of its own");
    CHECK(t1->tick_direction == t0->tick_direction, "the same code the second time");
    CHECK(e->lens[t0->tick_direction - 1] == 3 && memcmp(e->names[t0->tick_direction - 1], "foo", 3) == 0,
          "raw text recoverable");
    CHECK(H.c.n_unknown_enums == u0 + 2, "counted per value");
}

static void test_full_and_config(void)
{
    static const char *const fields[] = {"eventType", "eventSymbol", "price", "dayVolume", "size", "other"};
    uint64_t h0 = H.rings[FF_RT_TRADE].head, s0 = H.c.n_skipped;
    int64_t n;
    const ff_dx_trade *t;
    CHECK(dxh_config(&H, 3, FF_RT_TRADE, fields, 6) == 0, "config");
    n = feed("{\"type\":\"FEED_DATA\",\"channel\":3,\"data\":["
             "\"Trade\",[\"Trade\",\"SPY\",559.36,1.3743299E7,100.0,{\"x\":[1]}],"
             "\"Configuration\",[\"Configuration\",\"X\",0,1,{\"a\":1}],"
             "{\"eventType\":\"Trade\",\"eventSymbol\":\"IBM\",\"price\":188.02,\"unknownKey\":[1,{}]},"
             "{\"eventType\":\"Message\",\"eventSymbol\":\"M\",\"attachment\":{}}]}");
    CHECK(n == 2 && H.c.err == 0, "config+full: n=%lld err=%d", (long long)n, H.c.err);
    CHECK(H.c.n_skipped == s0 + 2, "Configuration and Message skipped and counted");
    t = (const ff_dx_trade *)dxh_rec(&H, FF_RT_TRADE, h0);
    if (t) {
        CHECK(strcmp(str_of(t->symbol_id), "SPY") == 0 && same_bits(t->price, 559.36) &&
              t->day_volume == 1.3743299E7 && t->size == 100.0 && isnan(t->change), "COMPACT by config");
    }
    t = (const ff_dx_trade *)dxh_rec(&H, FF_RT_TRADE, h0 + 1);
    if (t) {
        CHECK(strcmp(str_of(t->symbol_id), "IBM") == 0 && same_bits(t->price, 188.02) && isnan(t->size),
              "FULL");
    }
}

static void test_order_and_big_longs(void)
{
    uint64_t h0 = H.rings[FF_RT_ORDER].head, g0 = H.rings[FF_RT_GREEKS].head;
    int64_t n = feed("{\"type\":\"FEED_DATA\",\"channel\":9,\"data\":["
                     "\"Order\",[\"AAPL\",1,2,7235129486797176832,4,5,6,\"NTV\",\"NEW\",7,-9223372036854775808,"
                     "9223372036854775807,1.5,100.0,0.0,3,\"Q\",\"BUY\",\"ORDER\",0,\"NaN\",\"NaN\",\"MM\"],"
                     "\"Greeks\",[\".X\",0,0,7235129486797176833,0,0,1,2,3,4,5,6,7]]}");
    const ff_dx_order *o = (const ff_dx_order *)dxh_rec(&H, FF_RT_ORDER, h0);
    const ff_dx_greeks *g = (const ff_dx_greeks *)dxh_rec(&H, FF_RT_GREEKS, g0);
    CHECK(n == 2 && H.c.err == 0, "order: n=%lld err=%d", (long long)n, H.c.err);
    if (o) {
        CHECK(o->index == 7235129486797176832LL && o->order_id == INT64_MIN && o->aux_order_id == INT64_MAX,
              "int64 exact");
        CHECK(strcmp(str_of(o->source), "NTV") == 0 && strcmp(str_of(o->market_maker), "MM") == 0, "strings");
        CHECK(o->action == 2 && o->order_side == 2 && o->scope == 4 && o->count == 3, "enums");
    }
    CHECK(g && g->index == 7235129486797176833LL, "Greeks index exact");
}

static void test_not_feed_data(void)
{
    CHECK(feed("{\"type\":\"FEED_CONFIG\",\"channel\":1}") == -2, "control message -> -2");
    CHECK(feed("[1,2]") == -2, "not an object -> -2");
    CHECK(feed("{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[\"Quote\",[\"A\"") >= 0 && H.c.err == DXE_SYNTAX,
          "truncated FEED_DATA: reported");
}

static void test_numbers_bit_exact(void)
{
    static const char *const nums[] = {
        "0.1", "1e23", "2.2250738585072011e-308", "4.9e-324", "1.7976931348623157e308", "123456789012345678",
        "0.000001234", "9007199254740993", "-1.5E-7", "3.141592653589793238462643383279", "1e-400", "5e-324",
        "100.0", "1.3743299E7", "4.81989763184255E-12"};
    size_t i;
    char msg[512];
    for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        uint64_t h0 = H.rings[FF_RT_QUOTE].head;
        const ff_dx_quote *q;
        snprintf(msg, sizeof msg, "{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[\"Quote\",[\"N\",0,0,0,0,\"Q\",0,"
                 "\"Q\",%s,1,1,1]]}", nums[i]);
        CHECK(feed(msg) == 1 && H.c.err == 0, "%s: decoded", nums[i]);
        q = (const ff_dx_quote *)dxh_rec(&H, FF_RT_QUOTE, h0);
        CHECK(q && same_bits(q->bid_price, strtod(nums[i], NULL)), "%s: bit-exact with strtod", nums[i]);
    }
}

/* Every test on one build of the decoder (compat.h's runtime dispatch), on a fresh harness. */
static void run_all(int v3)
{
    CHECK(ff_dx_select(v3) == v3, "ff_dx_select(%d)", v3);
    if (dxh_init(&H, 1024) != 0) { FAIL("init"); return; }
    test_compact_quotes();
    test_bad_value_costs_one_event();
    test_broken_pair_dropped_whole();
    test_unknown_enum_kept();
    test_full_and_config();
    test_order_and_big_longs();
    test_not_feed_data();
    test_numbers_bit_exact();
    dxh_free(&H);
}

int main(void)
{
    FF_TEST_BOTH_BUILDS(run_all, "test_dxlink_scan");
    FF_TEST_DONE("test_dxlink_scan");
}
