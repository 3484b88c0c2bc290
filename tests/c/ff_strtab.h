/* tests/c/ff_strtab.h -- the string table of the C test and fuzz harnesses (dx_harness.h,
 * pg_harness.h): what the decoders' intern callback does in the Python wrappers, kept simple. */
#ifndef FF_STRTAB_H
#define FF_STRTAB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The id (1-based) of s[0..n) in strs/lens/nstr, added as a NUL-terminated copy when new; 0 when
 * the table already holds `cap` strings or memory runs out (the caller's refusal). */
static uint32_t ff_strtab_intern(char **strs, size_t *lens, uint32_t *nstr, uint32_t cap,
                                 const char *s, size_t n)
{
    uint32_t k;
    for (k = 0; k < *nstr; k++)
        if (lens[k] == n && memcmp(strs[k], s, n) == 0) return k + 1;
    if (*nstr >= cap) return 0;
    strs[*nstr] = (char *)malloc(n + 1);
    if (!strs[*nstr]) return 0;
    memcpy(strs[*nstr], s, n);
    strs[*nstr][n] = 0;
    lens[*nstr] = n;
    return ++*nstr;
}

#endif /* FF_STRTAB_H */
