/* CTest: fastfeed/jsonscan.h -- strings, escapes, skip_value, truncation safety. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_test.h"
#include "fastfeed/compat.h"
#include "fastfeed/jsonscan.h"

/* Exact-size heap copy: under ASan any read at or past `end` is reported. */
static char *dup_exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

/* skip_value over `text`; returns consumed length or -1. */
static long skip_len(const char *text, size_t n)
{
    char *b = dup_exact(text, n);
    const char *r = ff_skip_value(b, b + n);
    long out = r ? (long)(r - b) : -1;
    free(b);
    return out;
}

static void check_skip(const char *text, long want)
{
    long got = skip_len(text, strlen(text));
    if (got != want)
        FAIL("skip_value(%s) = %ld, want %ld", text, got, want);
}

static void check_unescape(const char *raw, const char *want, ptrdiff_t want_len)
{
    size_t n = strlen(raw);
    char *b = dup_exact(raw, n);
    char out[256];
    ptrdiff_t got = ff_unescape(b, n, out, sizeof out);
    if (got != want_len || (got >= 0 && memcmp(out, want, (size_t)got) != 0))
        FAIL("unescape(%s) = %td, want %td", raw, got, want_len);
    if (got > 0) {
        /* exact capacity works, one byte less fails */
        if (ff_unescape(b, n, out, (size_t)got) != got)
            FAIL("unescape(%s) with exact cap", raw);
        if (ff_unescape(b, n, out, (size_t)got - 1) != -1)
            FAIL("unescape(%s) with short cap should fail", raw);
    }
    free(b);
}

static void check_scan(const char *text, const char *content, int esc, long used)
{
    size_t n = strlen(text), cn = 0;
    char *b = dup_exact(text, n);
    const char *s = NULL;
    int e = -1;
    const char *r = ff_scan_string(b, b + n, &s, &cn, &e);
    if (used < 0) {
        if (r)
            FAIL("scan_string(%s) accepted", text);
    } else if (!r || r - b != used || cn != strlen(content) || memcmp(s, content, cn) != 0 ||
               e != esc) {
        FAIL("scan_string(%s): r=%ld n=%zu esc=%d", text, r ? (long)(r - b) : -1L, cn, e);
    }
    free(b);
}

int main(void)
{
    /* ws / literals */
    {
        const char *t = " \t\r\n x";
        if (ff_skip_ws(t, t + strlen(t)) != t + 5)
            FAIL("skip_ws");
        if (ff_skip_ws(t, t + 2) != t + 2)
            FAIL("skip_ws bounded");
        if (ff_match_lit("true", (const char *)"true" + 4, "true", 4) == NULL)
            FAIL("match_lit true");
        if (ff_match_lit("tru", (const char *)"tru" + 3, "true", 4) != NULL)
            FAIL("match_lit truncated");
    }

    /* scan_string */
    check_scan("\"\"", "", 0, 2);
    check_scan("\"abc\"x", "abc", 0, 5);
    check_scan("\"a long string without escapes, longer than 8 bytes\"",
               "a long string without escapes, longer than 8 bytes", 0, 52);
    check_scan("\"tab\\there\"", "tab\\there", 1, 11);
    check_scan("\"q\\\"q\"", "q\\\"q", 1, 6);
    check_scan("\"\\\\\"", "\\\\", 1, 4);
    check_scan("\"\\u00e9\\uD83D\\uDE00 01234567\"", "\\u00e9\\uD83D\\uDE00 01234567", 1, 29);
    check_scan("\"caf\xc3\xa9 \xe2\x82\xac\"", "caf\xc3\xa9 \xe2\x82\xac", 0, 11);
    check_scan("\"abc", NULL, 0, -1);
    check_scan("\"abcdefghijklmnop", NULL, 0, -1);
    check_scan("\"abc\\", NULL, 0, -1);
    check_scan("\"abc\\\"", NULL, 0, -1);
    check_scan("\"a\nb\"", NULL, 0, -1);
    check_scan("\"0123456789\x01\"", NULL, 0, -1);
    check_scan("\"\\x\"", NULL, 0, -1);
    check_scan("\"\\u12G4\"", NULL, 0, -1);
    check_scan("\"\\u12\"", NULL, 0, -1);
    check_scan("x", NULL, 0, -1);

    /* unescape */
    check_unescape("plain", "plain", 5);
    check_unescape("", "", 0);
    check_unescape("a\\nb\\tc\\\"d\\\\e\\/f\\bg\\fh\\ri", "a\nb\tc\"d\\e/f\bg\fh\ri", 17);
    check_unescape("\\u0041\\u00e9\\u20AC", "A\xc3\xa9\xe2\x82\xac", 6);
    check_unescape("\\uD83D\\uDE00", "\xf0\x9f\x98\x80", 4);
    check_unescape("\\ud83d\\ude00x", "\xf0\x9f\x98\x80x", 5);
    check_unescape("\\u0000", "\0", 1);
    check_unescape("\\uD83D", "", -1);        /* lone high surrogate */
    check_unescape("\\uD83Dx", "", -1);
    check_unescape("\\uD83D\\u0041", "", -1); /* high + non-low */
    check_unescape("\\uDE00", "", -1);        /* lone low surrogate */
    check_unescape("\\x", "", -1);
    check_unescape("\\", "", -1);
    check_unescape("\\u00", "", -1);

    /* skip_value */
    check_skip("0", 1);
    check_skip("-1.5e+3,", 7);
    check_skip("  true ", 6);
    check_skip("false", 5);
    check_skip("null]", 4);
    check_skip("\"s\"", 3);
    check_skip("[]", 2);
    check_skip("{}", 2);
    check_skip("[ ]", 3);
    check_skip("{ }", 3);
    check_skip("[1, \"a\", {\"k\": [true, false, null]}, -0.5e-3]", 45);
    check_skip("{\"a\":1,\"b\":{\"c\":[1,2,{\"d\":\"\\u00e9\"}]}} tail", 38);
    check_skip("[1,]", -1);
    check_skip("[1 2]", -1);
    check_skip("{\"a\" 1}", -1);
    check_skip("{\"a\":}", -1);
    check_skip("{1:2}", -1);
    check_skip("{\"a\":1,}", -1);
    check_skip("[01]", -1);
    check_skip("[1.]", -1);
    check_skip("tru", -1);
    check_skip("nul", -1);
    check_skip("[", -1);
    check_skip("{", -1);
    check_skip("", -1);
    check_skip("   ", -1);
    check_skip("]", -1);
    check_skip("[}", -1);
    check_skip("{]", -1);
    check_skip("NaN", -1);

    /* depth limit: 64 nested arrays ok, 65 rejected */
    {
        char buf[400];
        for (int d = 63; d <= 66; d++) {
            size_t k = 0;
            for (int i = 0; i < d; i++)
                buf[k++] = '[';
            for (int i = 0; i < d; i++)
                buf[k++] = ']';
            long got = skip_len(buf, k);
            long want = d <= FF_JSON_MAX_DEPTH ? (long)k : -1;
            if (got != want)
                FAIL("depth %d: %ld", d, got);
        }
        /* mixed objects/arrays at the limit */
        {
            size_t k = 0;
            for (int i = 0; i < 64; i++) {
                if (i & 1) {
                    memcpy(buf + k, "{\"k\":", 5);
                    k += 5;
                } else {
                    buf[k++] = '[';
                }
            }
            buf[k++] = '1';
            for (int i = 63; i >= 0; i--)
                buf[k++] = (i & 1) ? '}' : ']';
            if (skip_len(buf, k) != (long)k)
                FAIL("mixed depth 64");
        }
    }

    /* every prefix of valid documents: never crashes, never reads past end (ASan), and only
     * a prefix that is itself a complete value may succeed. */
    {
        const char *docs[] = {
            ("{\"ev\":\"Q\",\"sym\":\"MSFT\",\"bx\":4,\"bp\":114.125,\"bs\":100,\"ap\":114.128,"
             "\"c\":[0,12],\"t\":1536036818784,\"z\":3}"),
            "[\"FEED_DATA\",[\"Quote\",[\"SPY\",0,1.3743299E7,\"NaN\",\"Infinity\"]]]",
            "{\"a\":\"\\u00e9\\uD83D\\uDE00\\\"\\\\\",\"b\":[true,false,null,-0,1e-5,[[]],{}]}",
            "-12345.678E-9",
        };
        for (size_t di = 0; di < sizeof docs / sizeof docs[0]; di++) {
            size_t n = strlen(docs[di]);
            if (skip_len(docs[di], n) != (long)n)
                FAIL("doc %zu not fully skipped", di);
            for (size_t k = 0; k < n; k++) {
                long got = skip_len(docs[di], k);
                if (got > (long)k)
                    FAIL("doc %zu prefix %zu: consumed %ld", di, k, got);
                if (docs[di][0] == '{' || docs[di][0] == '[') {
                    if (got != -1)
                        FAIL("doc %zu prefix %zu accepted", di, k);
                }
                {
                    char *b = dup_exact(docs[di], k);
                    const char *s;
                    size_t sn;
                    int esc;
                    char out[512];
                    if (k && b[0] == '"')
                        (void)ff_scan_string(b, b + k, &s, &sn, &esc);
                    (void)ff_unescape(b, k, out, sizeof out);
                    free(b);
                }
            }
        }
    }

    /* clocks */
    {
        int64_t a = ff_mono_ns(), b = ff_mono_ns(), w = ff_now_ns();
        if (b < a)
            FAIL("ff_mono_ns went backwards");
        if (w < 1600000000LL * 1000000000LL)
            FAIL("ff_now_ns too small: %lld", (long long)w);
    }

    FF_TEST_DONE("test_jsonscan");
}
