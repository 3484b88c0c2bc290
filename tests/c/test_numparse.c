/* CTest: fastfeed/numparse.h against compiler-rounded literals (gcc/clang round decimal
 * literals correctly, as CPython's float() does). */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"

/* Count which path numparse.h takes (clinger / eisel_lemire / el_undecided / slow). */
static unsigned long long stat_clinger, stat_eisel_lemire, stat_el_undecided, stat_slow;
#define FF_NUM_STAT(path) (stat_##path++)
#include "fastfeed/numparse.h"

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* Parse `text` (exact length, in a heap copy so ASan catches any read past the end). */
static const char *parse(const char *text, ff_num *n, size_t *consumed)
{
    size_t len = strlen(text);
    char *buf = malloc(len ? len : 1);
    const char *r;
    memcpy(buf, text, len);
    r = ff_parse_number(buf, buf + len, n);
    *consumed = r ? (size_t)(r - buf) : 0;
    free(buf);
    return r;
}

static void check_float(int line, const char *text, double want, int want_int, int64_t want_i)
{
    ff_num n;
    size_t used;
    if (!parse(text, &n, &used)) {
        fprintf(stderr, "line %d: ", line);
        FAIL("%s: rejected", text);
        return;
    }
    if (used != strlen(text))
        FAIL("%s: consumed %zu", text, used);
    if (n.kind != FF_NUM_FLOAT)
        FAIL("%s: kind %d, want FLOAT", text, n.kind);
    if (bits(n.d) != bits(want))
        FAIL("%s (line %d): got %.17g (%016llx) want %.17g (%016llx)", text, line, n.d,
             (unsigned long long)bits(n.d), want, (unsigned long long)bits(want));
    if (want_int && n.i != want_i)
        FAIL("%s: i = %lld want %lld", text, (long long)n.i, (long long)want_i);
    if (!want_int && n.i != 0)
        FAIL("%s: i = %lld want 0 (not integral)", text, (long long)n.i);
    {
        int64_t v = 12345;
        const char *r = ff_parse_int64(text, text + strlen(text), &v);
        if (want_int && (!r || v != want_i))
            FAIL("%s: ff_parse_int64 -> %s %lld", text, r ? "ok" : "NULL", (long long)v);
        if (!want_int && r)
            FAIL("%s: ff_parse_int64 accepted a non-integral/out-of-range value", text);
    }
}

static void check_int(const char *text, int64_t want)
{
    ff_num n;
    size_t used;
    int64_t v = 0;
    double d = 0;
    if (!parse(text, &n, &used)) {
        FAIL("%s: rejected", text);
        return;
    }
    if (n.kind != FF_NUM_INT || n.i != want || used != strlen(text))
        FAIL("%s: kind %d i %lld used %zu", text, n.kind, (long long)n.i, used);
    if (bits(n.d) != bits((double)want) && !(want == 0 && text[0] == '-'))
        FAIL("%s: d = %.17g", text, n.d);
    if (!ff_parse_int64(text, text + strlen(text), &v) || v != want)
        FAIL("%s: ff_parse_int64 -> %lld", text, (long long)v);
    if (!ff_parse_double(text, text + strlen(text), &d) || d != (double)want)
        FAIL("%s: ff_parse_double -> %.17g", text, d);
}

static void check_bigint(const char *text, double want)
{
    ff_num n;
    size_t used;
    int64_t v;
    if (!parse(text, &n, &used) || n.kind != FF_NUM_BIGINT || used != strlen(text)) {
        FAIL("%s: want BIGINT, got kind %d", text, n.kind);
        return;
    }
    if (bits(n.d) != bits(want))
        FAIL("%s: d = %.17g want %.17g", text, n.d, want);
    if (ff_parse_int64(text, text + strlen(text), &v))
        FAIL("%s: ff_parse_int64 accepted out-of-range", text);
}

static void check_bad(const char *text)
{
    ff_num n;
    size_t used;
    const char *r = parse(text, &n, &used);
    /* "Malformed" for a scanner primitive: NULL, or it stops before the end (the caller then
     * sees a bad delimiter).  The hard cases (leading zero, dangling '.', 'e', '-') are NULL. */
    if (r && used == strlen(text))
        FAIL("%s: accepted (kind %d)", text, n.kind);
}

static void check_null(const char *text)
{
    ff_num n;
    size_t used;
    if (parse(text, &n, &used) != NULL)
        FAIL("%s: want NULL, consumed %zu", text, used);
    else if (n.kind != FF_NUM_ERR)
        FAIL("%s: kind %d after NULL", text, n.kind);
}

#define F(text, want) check_float(__LINE__, text, want, 0, 0)
#define FI(text, want, i) check_float(__LINE__, text, want, 1, i)

int main(void)
{
    /* integers */
    check_int("0", 0);
    check_int("-0", 0);
    check_int("7", 7);
    check_int("-42", -42);
    check_int("1234567890", 1234567890);
    check_int("9007199254740993", 9007199254740993LL); /* 2^53+1: exact as int */
    check_int("7235129486797176832", 7235129486797176832LL);
    check_int("999999999999999999", 999999999999999999LL);
    check_int("1000000000000000000", 1000000000000000000LL);
    check_int("9223372036854775807", INT64_MAX);
    check_int("-9223372036854775807", -INT64_MAX);
    check_int("-9223372036854775808", INT64_MIN);
    {
        ff_num n;
        size_t used;
        parse("-0", &n, &used);
        if (!signbit(n.d))
            FAIL("-0: d should be -0.0 (float('-0'))");
        parse("9007199254740993", &n, &used);
        if (n.d != 9007199254740992.0)
            FAIL("2^53+1: d = %.17g", n.d);
    }
    check_bigint("9223372036854775808", 9223372036854775808.0);
    check_bigint("-9223372036854775809", -9223372036854775809.0);
    check_bigint("18446744073709551615", 18446744073709551615.0);
    check_bigint("18446744073709551616", 18446744073709551616.0);
    check_bigint("99999999999999999999", 99999999999999999999.0);
    check_bigint("123456789012345678901234567890", 123456789012345678901234567890.0);
    check_bigint("-123456789012345678901234567890", -123456789012345678901234567890.0);

    /* floats: fast path */
    FI("100.0", 100.0, 100);
    FI("1.0E2", 100.0, 100);
    FI("1.0e2", 100.0, 100);
    FI("-0.0", -0.0, 0);
    FI("0.0", 0.0, 0);
    FI("0e0", 0.0, 0);
    FI("0E-999999999999999999999", 0.0, 0);
    FI("1.3743299E7", 1.3743299E7, 13743299);
    FI("-2.5E1", -25.0, -25);
    F("4.81989763184255E-12", 4.81989763184255E-12);
    F("1.5", 1.5);
    F("-1.5", -1.5);
    F("0.1", 0.1);
    F("0.3", 0.3);
    F("123.456", 123.456);
    F("0.000123", 0.000123);
    F("1e-22", 1e-22);
    F("8.5e-23", 8.5e-23);
    F("1e22", 1e22); /* integral but > int64: i must be 0 */
    F("1e19", 1e19);
    FI("9.007199254740993e15", 9007199254740993.0, 9007199254740993LL);
    FI("1e18", 1e18, 1000000000000000000LL);
    FI("9.223372036854775807e18", 9223372036854775807.0, INT64_MAX);
    FI("-9.223372036854775808E18", -9223372036854775808.0, INT64_MIN);
    F("1e23", 1e23);   /* classic fallback case */
    F("1e30", 1e30);   /* extended fast path */
    F("12e35", 12e35);
    FI("9007199254740993.0", 9007199254740993.0, 9007199254740993LL);
    F("9007199254740993e-3", 9007199254740993e-3);
    F("0.1000000000000000055511151231257827", 0.1000000000000000055511151231257827);
    F("2.2250738585072011e-308", 2.2250738585072011e-308);
    F("2.2250738585072014e-308", 2.2250738585072014e-308);
    F("4.9406564584124654e-324", 4.9406564584124654e-324);
    F("2.4703282292062328e-324", 4.9406564584124654e-324); /* just above half: rounds up */
    F("2.4703282292062327e-324", 0.0);                     /* just below half: 0 */
    F("1.7976931348623157e308", 1.7976931348623157e308);
    F("1.7976931348623158e308", 1.7976931348623157e308);
    F("1.7976931348623159e308", HUGE_VAL);
    F("1e400", HUGE_VAL);
    F("-1e400", -HUGE_VAL);
    F("1e-400", 0.0);
    F("-1e-400", -0.0);
    F("1e99999999999999999999999", HUGE_VAL);
    F("3.14159265358979323846264338327950288419716939937510", 3.14159265358979323846);
    F("0.30000000000000004", 0.30000000000000004);
    /* 1 + 2^-53 is exactly halfway between 1 and its successor: ties-to-even gives 1. */
    F("1.00000000000000011102230246251565404236316680908203125", 1.0);
    F("1.00000000000000011102230246251565404236316680908203126", 1.0000000000000002);
    F("1.00000000000000011102230246251565404236316680908203124", 1.0);
    F("123456789012345678901234567890.5", 123456789012345678901234567890.5);
    F("12345678901234567890e-2", 123456789012345678.90);
    /* Integral with >19 digits but all trailing zeros: exact. */
    FI("1000000000000000000000000e-7", 1e17, 100000000000000000LL);
    FI("1.0000000000000000000000000E3", 1000.0, 1000);
    F("1.0000000000000000000000001E3", 1000.0000000000000000000001);

    /* malformed */
    check_null("");
    check_null("-");
    check_null("01");
    check_null("-01");
    check_null("00");
    check_null("1.");
    check_null("1.e5");
    check_null(".5");
    check_null("1e");
    check_null("1e+");
    check_null("1E-");
    check_null("+1");
    check_null("-a");
    check_null("a");
    check_null("NaN");
    check_null("Infinity");
    check_null("-Infinity");
    check_bad("1.5.3");
    check_bad("1x");
    check_bad("0x10");

    /* stops at the delimiter */
    {
        const char *t = "123,456]";
        ff_num n;
        const char *r = ff_parse_number(t, t + strlen(t), &n);
        if (r != t + 3 || n.i != 123)
            FAIL("123, : stop");
        r = ff_parse_number(t, t + 2, &n); /* end inside the number */
        if (r != t + 2 || n.i != 12)
            FAIL("bounded by end: got %lld", (long long)n.i);
    }

    /* the fallback must not depend on LC_NUMERIC */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
        F("1e23", 1e23);
        F("0.1000000000000000055511151231257827", 0.1000000000000000055511151231257827);
        setlocale(LC_NUMERIC, "C");
    }

    /* ff_parse_int64 rejects */
    {
        const char *bad[] = {"1.5", "1e-1", "1e19", "9223372036854775808", "-9223372036854775809",
                             "1e400", "1e-400", "", "-", "abc", "01"};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            int64_t v;
            const char *r = ff_parse_int64(bad[k], bad[k] + strlen(bad[k]), &v);
            if (r && r == bad[k] + strlen(bad[k]))
                FAIL("ff_parse_int64(%s) accepted", bad[k]);
        }
    }

    /* Exhaustive-ish cross-check with strtod in the C locale on generated inputs. */
    {
        unsigned long long seed = 0x9E3779B97F4A7C15ULL;
        char buf[64];
        for (int it = 0; it < 200000; it++) {
            int len, nd, k = 0;
            ff_num n;
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            nd = 1 + (int)(seed % 20);
            if (seed & (1ULL << 40)) buf[k++] = '-';
            buf[k++] = (char)('1' + (seed >> 8) % 9);
            for (int j = 1; j < nd; j++) {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                if (j == nd / 2 && (seed & 4)) buf[k++] = '.';
                buf[k++] = (char)('0' + seed % 10);
            }
            if (buf[k - 1] == '.') buf[k++] = '5';
            len = k + snprintf(buf + k, sizeof buf - (size_t)k, "e%d", (int)((seed >> 20) % 700) - 350);
            if (!ff_parse_number(buf, buf + len, &n)) {
                FAIL("%s rejected", buf);
                continue;
            }
            if (bits(n.d) != bits(strtod(buf, NULL)))
                FAIL("%s: %.17g vs strtod %.17g", buf, n.d, strtod(buf, NULL));
        }
    }

    /* Eisel-Lemire: edge cases (compiler literals are correctly rounded). */
    {
        unsigned long long el0 = stat_eisel_lemire, slow0 = stat_slow;
        F("0.009238296068280027", 0.009238296068280027);   /* 16 digits > 2^53 */
        F("9.238296068280027E-3", 9.238296068280027E-3);
        F("1.2345678901234567E-5", 1.2345678901234567E-5);  /* 17 digits */
        F("12345678901234567e-300", 12345678901234567e-300);
        F("9999999999999999999e-342", 9999999999999999999e-342); /* 19 digits, table bottom */
        F("1e-342", 0.0);
        F("9999999999999999999e-343", 0.0);                  /* 1e-324 < half min subnormal */
        F("3e-324", 4.9406564584124654e-324);
        F("2.5e-324", 4.9406564584124654e-324);
        F("7.4e-324", 4.9406564584124654e-324);
        F("7.5e-324", 9.8813129168249309e-324);
        F("2.2250738585072011e-308", 2.2250738585072011e-308); /* largest subnormal region */
        F("2.2250738585072012e-308", 2.2250738585072012e-308);
        F("2.225073858507201136e-308", 2.225073858507201136e-308);
        F("4.4501477170144023e-308", 4.4501477170144023e-308);
        F("1.7976931348623157e308", 1.7976931348623157e308);
        F("1.7976931348623158e308", 1.7976931348623157e308);
        F("1.7976931348623159e308", HUGE_VAL);
        F("9999999999999999999e289", 9999999999999999999e289);
        F("9999999999999999999e290", HUGE_VAL);
        F("17976931348623157e292", 1.7976931348623157e308);
        F("1e308", 1e308);
        F("8.98846567431158e307", 8.98846567431158e307);
        F("1e23", 1e23);
        FI("9007199254740993e3", 9007199254740993e3, 9007199254740993000LL);
        F("123456789012345678e-10", 123456789012345678e-10);
        F("1844674407370955161.5", 1844674407370955161.5);
        /* exact ties (<= 19 digits): round half to even */
        FI("9007199254740995.0", 9007199254740996.0, 9007199254740995LL);
        FI("9007199254740993e0", 9007199254740992.0, 9007199254740993LL);
        FI("18014398509481986.0", 18014398509481984.0, 18014398509481986LL);
        FI("18014398509481990E0", 18014398509481992.0, 18014398509481990LL);
        F("4503599627370496.5", 4503599627370496.0);     /* 2^52 + 1/2 */
        F("4503599627370497.5", 4503599627370498.0);     /* 2^52 + 3/2 */
        F("45035996273704975e-1", 4503599627370498.0);
        F("2251799813685248.25", 2251799813685248.0);    /* 2^51 + 1/4 */
        F("2251799813685248.75", 2251799813685249.0);    /* 2^51 + 3/4 */
        F("1125899906842624.125", 1125899906842624.0);   /* 2^50 + 1/8, q = -3 */
        F("1125899906842624.375", 1125899906842624.5);
        F("562949953421312.0625", 562949953421312.0);    /* 2^49 + 1/16, q = -4 */
        F("562949953421312.1875", 562949953421312.25);
        F("4503599627370496.4999999", 4503599627370496.0);
        F("4503599627370496.5000001", 4503599627370497.0);
        /* exact values spelled with negative exponents and trailing zeros */
        FI("85071585855778390e-1", 8507158585577839.0, 8507158585577839LL);
        FI("9007199254740993000e-3", 9007199254740992.0, 9007199254740993LL);
        FI("8.507158585577839E15", 8507158585577839.0, 8507158585577839LL);
        /* big integers (<= 19 digits + zeros) */
        check_bigint("9999999999999999999", 9999999999999999999.0);
        check_bigint("18446744073709551615", 18446744073709551615.0);
        check_bigint("10000000000000000000000", 1e22);
        check_bigint("9223372036854775809000", 9223372036854775809000.0);
        if (stat_eisel_lemire - el0 < 40)
            FAIL("Eisel-Lemire decided only %llu of the edge cases", stat_eisel_lemire - el0);
        (void)slow0;
    }

    /* Eisel-Lemire against strtod: 1-19 digit mantissas, every exponent of the table and a
     * little beyond, and integer mantissas scaled into the subnormal range. */
    {
        unsigned long long seed = 0x2545F4914F6CDD1DULL, el0 = stat_eisel_lemire;
        unsigned long long und0 = stat_el_undecided, slow0 = stat_slow;
        char buf[64];
        long cases = 0;
        for (int it = 0; it < 400000; it++) {
            uint64_t w;
            int q, nd, len;
            ff_num n;
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            nd = (it & 3) == 0 ? 17 : (it & 3) == 1 ? 19 : 1 + (int)(seed % 19);
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            w = ff__pow10_u64[nd - 1] + seed % (nd == 19 ? 9000000000000000000ULL
                                                       : 9 * ff__pow10_u64[nd - 1]);
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            if ((it & 7) == 5)
                q = -342 - nd + (int)(seed % 40); /* subnormals and the table bottom */
            else if ((it & 7) == 6)
                q = 290 + (int)(seed % 20);       /* near overflow */
            else
                q = (int)(seed % 651) - 342;
            len = snprintf(buf, sizeof buf, "%s%llue%d", (seed >> 40) & 1 ? "-" : "",
                           (unsigned long long)w, q);
            if (!ff_parse_number(buf, buf + len, &n)) {
                FAIL("%s rejected", buf);
                continue;
            }
            cases++;
            if (bits(n.d) != bits(strtod(buf, NULL)))
                FAIL("%s: %.17g vs strtod %.17g", buf, n.d, strtod(buf, NULL));
        }
        /* nearly everything in range must be decided without strtod */
        if (stat_eisel_lemire - el0 + (stat_clinger) < (unsigned long long)cases * 9 / 10)
            FAIL("Eisel-Lemire decided %llu of %ld (undecided %llu, slow %llu)",
                 stat_eisel_lemire - el0, cases, stat_el_undecided - und0, stat_slow - slow0);
        printf("eisel-lemire: %llu decided, %llu undecided, %llu slow of %ld\n",
               stat_eisel_lemire - el0, stat_el_undecided - und0, stat_slow - slow0, cases);
    }

    FF_TEST_DONE("test_numparse");
}
