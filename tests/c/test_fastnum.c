/* CTest: fastfeed/fastnum.h and swar.h -- the fast number paths agree with the general parser
 * (numparse.h) and with strtod / strtoll whenever they answer, on hand-picked and on random
 * spellings (short and long digit runs, fractions, exponents, leading zeros, junk after). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"
#include "fastfeed/fastnum.h"

static uint64_t rng = 0x243F6A8885A308D3ULL;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static void check_double(const char *s)
{
    const char *end = s + strlen(s);
    double fast = 0.0, slow = 0.0;  /* (a parser that returns NULL leaves them unset) */
    const char *rf = ff_fast_double(s, end, &fast);
    const char *rs = ff_parse_double(s, end, &slow);
    if (rf == NULL) return;                       /* declined: the caller takes the general path */
    CHECK(rs == rf, "%s: fast and general paths end at different bytes", s);
    CHECK(memcmp(&fast, &slow, 8) == 0, "%s: fast %.17g != general %.17g", s, fast, slow);
    {
        char buf[128];
        size_t n = (size_t)(rf - s);
        double ref;
        if (n >= sizeof buf) return;
        memcpy(buf, s, n);
        buf[n] = 0;
        ref = strtod(buf, NULL);
        CHECK(memcmp(&fast, &ref, 8) == 0, "%s: fast %.17g != strtod %.17g", s, fast, ref);
    }
}

static void check_int(const char *s)
{
    const char *end = s + strlen(s);
    int64_t fast, slow = 0;
    const char *rf = ff_fast_int(s, end, &fast);
    if (rf == NULL) return;
    CHECK(ff_parse_int64(s, end, &slow) == rf && slow == fast, "%s: fast int disagrees", s);
    errno = 0;
    CHECK(strtoll(s, NULL, 10) == fast && errno == 0, "%s: fast int != strtoll", s);
}

static void random_number(char *out, size_t cap)
{
    size_t n = 0, k, digits;
    if (next() % 4 == 0) out[n++] = '-';
    digits = 1 + next() % 22;
    for (k = 0; k < digits && n < cap - 40; k++) out[n++] = (char)('0' + next() % 10);
    if (next() % 2) {
        out[n++] = '.';
        if (next() % 3 == 0) for (k = next() % 6; k > 0; k--) out[n++] = '0';
        digits = next() % 20;
        for (k = 0; k < digits && n < cap - 20; k++) out[n++] = (char)('0' + next() % 10);
    }
    if (next() % 3 == 0) {
        out[n++] = (next() % 2) ? 'E' : 'e';
        if (next() % 2) out[n++] = (next() % 2) ? '-' : '+';
        digits = next() % 5;
        for (k = 0; k < digits; k++) out[n++] = (char)('0' + next() % 10);
    }
    if (next() % 2) out[n++] = (char)",]} x.e"[next() % 7];
    out[n] = 0;
}

int main(void)
{
    static const char *const fixed[] = {
        "0", "-0", "0.0", "-0.0", "100.0", "1.3743299E7", "4.81989763184255E-12", "233.41", "0.1",
        "0.000001234", "9007199254740993", "123456789012345678", "1234567890123456789", "12345678901234567890",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e22", "1e23", "1e-22",
        "00", "01", "1.", ".5", "-", "1e", "1e+", "5e-324", "1.7976931348623157e308", "12345678,",
        "1234567.12345678]", "7235129486797176832,", "1.5e9999"};
    size_t i;
    char buf[96];
    for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        check_double(fixed[i]);
        check_int(fixed[i]);
    }
    for (i = 0; i < 1000000 && !failures; i++) {
        random_number(buf, sizeof buf);
        check_double(buf);
        check_int(buf);
    }
    FF_TEST_DONE("test_fastnum");
}
