/* ff_core.c -- the translation unit behind the `fastfeed_core` static library (CMake path).
 *
 * The C helpers are header-only (`static inline`), so the Cython modules built by setup.py
 * need no library.  This file compiles every public header once with -Wall -Wextra (catching
 * header breakage in the C build), and exports out-of-line wrappers with external linkage for
 * C consumers that prefer linking over inlining: the CTest programs, the libFuzzer targets and
 * IDE tooling.  The wrappers have exactly the semantics of the inline functions.
 */
#include <stddef.h>
#include <stdint.h>

#include "fastfeed/compat.h"
#include "fastfeed/clock.h"
#include "fastfeed/dxlink_scan.h"   /* + swar.h, fastnum.h, dxlink_fields.h, ring.h, records.h */
#include "fastfeed/jsonscan.h"
#include "fastfeed/numparse.h"

_Static_assert(sizeof(double) == 8, "fastfeed needs IEEE-754 binary64 doubles");
_Static_assert(DBL_MANT_DIG == 53, "fastfeed needs IEEE-754 binary64 doubles");
_Static_assert(sizeof(int64_t) == 8, "int64_t");

/* External-linkage entry points (declared here; C users declare them or include the headers). */
const char *ff_core_version(void);
const char *ff_core_parse_number(const char *p, const char *end, ff_num *out);
const char *ff_core_parse_int64(const char *p, const char *end, int64_t *out);
const char *ff_core_parse_double(const char *p, const char *end, double *out);
const char *ff_core_scan_string(const char *p, const char *end, const char **s, size_t *n,
                                int *esc);
ptrdiff_t ff_core_unescape(const char *s, size_t n, char *dst, size_t cap);
const char *ff_core_skip_value(const char *p, const char *end);

#ifndef FASTFEED_VERSION
#  define FASTFEED_VERSION "unknown"
#endif

const char *ff_core_version(void) { return FASTFEED_VERSION; }

const char *ff_core_parse_number(const char *p, const char *end, ff_num *out)
{
    return ff_parse_number(p, end, out);
}

const char *ff_core_parse_int64(const char *p, const char *end, int64_t *out)
{
    return ff_parse_int64(p, end, out);
}

const char *ff_core_parse_double(const char *p, const char *end, double *out)
{
    return ff_parse_double(p, end, out);
}

const char *ff_core_scan_string(const char *p, const char *end, const char **s, size_t *n,
                                int *esc)
{
    return ff_scan_string(p, end, s, n, esc);
}

ptrdiff_t ff_core_unescape(const char *s, size_t n, char *dst, size_t cap)
{
    return ff_unescape(s, n, dst, cap);
}

const char *ff_core_skip_value(const char *p, const char *end)
{
    return ff_skip_value(p, end);
}

int64_t ff_core_dx_message(ff_dxctx *c, const char *buf, size_t size);

int64_t ff_core_dx_message(ff_dxctx *c, const char *buf, size_t size)
{
    return ff_dx_message(c, buf, size);
}
