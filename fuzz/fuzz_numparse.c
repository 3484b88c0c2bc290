/* libFuzzer target: ff_parse_number / ff_parse_int64 / ff_parse_double.
 *
 * Checks, besides memory safety (the input buffer is exactly `size` bytes, so ASan reports any
 * read past `end`): the consumed span never exceeds the input; for every accepted number the
 * double equals strtod() of the same span (C locale, correctly rounded like Python's float())
 * and an INT equals strtoll(); ff_parse_double agrees with ff_parse_number.
 *
 *   CC=clang cmake -S . -B build/fuzz -DFASTFEED_FUZZ=ON && cmake --build build/fuzz
 *   build/fuzz/fuzz_numparse -max_len=64 fuzz/corpus/numparse   (corpus dir optional)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastfeed/numparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    ff_num n;
    const char *r = ff_parse_number(p, end, &n);
    if (r == NULL) {
        double d;
        int64_t v;
        if (n.kind != FF_NUM_ERR)
            abort();
        if (ff_parse_double(p, end, &d) != NULL || ff_parse_int64(p, end, &v) != NULL)
            abort();
        return 0;
    }
    if (r <= p || r > end || n.kind == FF_NUM_ERR)
        abort();
    {
        size_t len = (size_t)(r - p);
        char *z = (char *)malloc(len + 1);
        double ref, d2;
        memcpy(z, p, len);
        z[len] = '\0';
        ref = strtod(z, NULL);
        if (memcmp(&ref, &n.d, sizeof ref) != 0) {
            fprintf(stderr, "mismatch on '%s': %.17g vs strtod %.17g\n", z, n.d, ref);
            abort();
        }
        if (n.kind == FF_NUM_INT) {
            long long ll;
            errno = 0;
            ll = strtoll(z, NULL, 10);
            if (errno != 0 || ll != n.i)
                abort();
        }
        if (ff_parse_double(p, end, &d2) != r || memcmp(&d2, &n.d, sizeof d2) != 0)
            abort();
        {
            int64_t v;
            const char *ri = ff_parse_int64(p, end, &v);
            if (n.kind == FF_NUM_INT && (ri != r || v != n.i))
                abort();
            if (n.kind == FF_NUM_BIGINT && ri != NULL)
                abort();
            if (ri != NULL && ri != r)
                abort();
            if (ri != NULL && n.kind == FF_NUM_FLOAT && (double)v != n.d && !(v == 0 && n.d == 0))
                abort();
        }
        free(z);
    }
    return 0;
}
