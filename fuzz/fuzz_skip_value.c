/* libFuzzer target: ff_skip_value, ff_scan_string, ff_unescape, ff_skip_ws.
 *
 * Memory safety on exactly-sized inputs (ASan), plus invariants: results stay inside the
 * input; ff_unescape never writes more than `cap` (the output buffer is exactly `cap` bytes)
 * and never produces more bytes than it read; a skipped value can be skipped again from a
 * copy with trailing garbage and gives the same length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastfeed/jsonscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *r = ff_skip_value(p, end);
    const char *w = ff_skip_ws(p, end);
    if (w < p || w > end)
        abort();
    if (r != NULL) {
        if (r <= p || r > end)
            abort();
        /* the same prefix followed by junk skips identically */
        {
            size_t len = (size_t)(r - p);
            char *b = (char *)malloc(len + 1);
            memcpy(b, p, len);
            b[len] = ',';
            if (ff_skip_value(b, b + len + 1) != b + len)
                abort();
            free(b);
        }
    }
    if (size && *p == '"') {
        const char *s;
        size_t n;
        int esc;
        const char *e = ff_scan_string(p, end, &s, &n, &esc);
        if (e != NULL) {
            if (e > end || s != p + 1 || s + n + 1 != e)
                abort();
            if (!esc && memchr(s, '\\', n))
                abort();
        }
    }
    /* unescape the raw bytes with a tight, exactly sized output buffer */
    {
        size_t cap = size / 2;
        char *dst = (char *)malloc(cap ? cap : 1);
        ptrdiff_t got = ff_unescape(p, size, dst, cap);
        if (got > (ptrdiff_t)cap || got > (ptrdiff_t)size)
            abort();
        free(dst);
    }
    return 0;
}
