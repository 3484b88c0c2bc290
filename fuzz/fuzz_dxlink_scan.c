/* Fuzz target: fastfeed/dxlink_scan.h (the DXLink FEED_DATA decoder) without Python.
 *
 * Memory safety on exactly-sized inputs (ASan/UBSan), plus invariants: ff_dx_message returns
 * -2 (not FEED_DATA) or the number of events published, and exactly that many records appear
 * in the rings, each stamped with its ring's rtype and a symbol id the string table gave out;
 * an error code is one of DXE_*; the decoder keeps working (a known-good message decodes right
 * after).  The input is fed twice: once with the default field orders, once on a channel with
 * a FEED_CONFIG-style order (eventType first, an unknown field, reordered doubles).
 *
 *   libFuzzer (clang):  CC=clang cmake -S . -B build/fuzz -DFASTFEED_FUZZ=ON && cmake --build build/fuzz
 *   standalone (gcc):   built by default as fuzz_dxlink_scan_standalone (fuzz/standalone_main.c)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dx_harness.h"

static dxh H;
static int inited;

static const char GOOD[] =
    "{\"type\":\"FEED_DATA\",\"channel\":7,\"data\":[\"Quote\",[\"SPY\",0,0,0,0,\"Q\",0,\"Q\",1.5,2.5,3.0,4.0]]}";

const char *const ff_fuzz_seeds[] = {
    GOOD,
    "{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[\"Trade\",[\"A\",1,2,3,4,\"\\u0000\",5,\"UP\",true,1.5,\"NaN\",100,1.3743299E7,4.8E-12]]}",
    "{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[{\"eventType\":\"Profile\",\"eventSymbol\":\"X\",\"description\":null,\"tradingStatus\":\"HALTED\"}]}",
    "{\"type\":\"FEED_DATA\",\"channel\":3,\"data\":[\"Trade\",[\"Trade\",\"SPY\",559.36,1.3743299E7,100.0,{\"x\":1},\"Trade\",\"B\",\"NaN\",\"bad\",1,[]]]}",
    "{\"type\":\"FEED_DATA\",\"channel\":3,\"data\":[\"Greeks\",[\".S\",0,0,7235129486797176832,0,0,1,2,3,4,5,6,7],\"Candle\",[\"S{=5m}\",0,0,1,2,0,1,2,3,4,5,6,7,8,9,10,11]]}",
    "{\"type\":\"FEED_DATA\",\"channel\":9,\"data\":[\"Order\",[\"AAPL\",1,2,3,4,5,6,\"NTV\",\"NEWER\",7,8,9,1.5,100.0,0.0,3,\"Q\",\"BUY\",\"ORDER\",0,\"NaN\",\"NaN\",\"MM\"]]}",
    "{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[\"Summary\",[\"SPY\",1,20454,\"foo\",20453,\"bar\",12345,1.0,2.0,0.5,1.5,1.25,1.0E9]]}",
    "{\"type\":\"FEED_DATA\",\"channel\":1,\"data\":[\"Configuration\",[\"X\",0,1,{\"a\":[1,2]}],\"Message\",[\"M\",0,{}]]}",
    "{\"type\":\"FEED_CONFIG\",\"channel\":7,\"dataFormat\":\"COMPACT\"}",
};
const size_t ff_fuzz_nseeds = sizeof ff_fuzz_seeds / sizeof ff_fuzz_seeds[0];

static void check_one(const uint8_t *data, size_t size)
{
    uint64_t before[FF_DX_NTYPES], total = 0;
    int rt;
    int64_t n;
    for (rt = 1; rt <= FF_RT_DX_MAX; rt++) before[rt] = H.rings[rt].head;
    H.c.err = 0;
    n = ff_dx_message(&H.c, (const char *)data, size);
    if (n < -2 || n == -1) abort();
    if (H.c.err < 0 || H.c.err > DXE_ENUM) abort();
    for (rt = 1; rt <= FF_RT_DX_MAX; rt++) {
        uint64_t s;
        for (s = before[rt]; s < H.rings[rt].head; s++) {
            const ff_header *hd = (const ff_header *)dxh_rec(&H, rt, s);
            if (hd == NULL || hd->rtype != rt || hd->symbol_id > H.nstr) abort();
        }
        total += H.rings[rt].head - before[rt];
    }
    if (n == -2 ? total != 0 : total != (uint64_t)n) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cfg[] = {"eventType", "eventSymbol", "nope", "askPrice", "bidPrice", "bidSize"};
    uint8_t *copy;
    if (!inited || H.nstr > DXH_MAXSTR - 64) {
        if (inited) dxh_free(&H);
        if (dxh_init(&H, 256) != 0 || dxh_config(&H, 3, FF_RT_QUOTE, cfg, 6) != 0) abort();
        inited = 1;
    }
    /* both builds of the decoder (compat.h's runtime dispatch): by the input's length */
    ff_dx_select((size & 1) && ff_cpu_v3());
    /* exactly-sized heap copy so ASan sees any read past the end */
    copy = (uint8_t *)malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    check_one(copy, size);
    free(copy);
    H.c.err = 0;
    if (ff_dx_message(&H.c, GOOD, sizeof GOOD - 1) != 1 || H.c.err != 0) abort();
    return 0;
}
