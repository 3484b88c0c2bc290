/* tests/c/dx_harness.h -- a DXLink decoder context without Python, for the C tests and the
 * fuzz target: one ring per event type, the generated field tables (dxlink_fields.h), NaN
 * templates, a small string table behind the intern callback, and the enum tables with an
 * enum_add callback that keeps names the spec does not list (as dxlink.pyx does). */
#ifndef FF_DX_HARNESS_H
#define FF_DX_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ff_strtab.h"
#include "fastfeed/dxlink_scan.h"

#define DXH_MAXSTR 4096

typedef struct {
    ff_dxctx c;
    ff_ring rings[FF_DX_NTYPES];
    uint8_t tmpl[FF_DX_NTYPES][FF_DX_MAXREC];
    ff_dxenum enums[FF_DX_NENUMS];
    char *added[FF_DX_NENUMS][FF_DX_MAXCODES];   /* enum names this harness allocated */
    char *strs[DXH_MAXSTR];                       /* id k -> strs[k - 1] (NUL-terminated copy) */
    size_t lens[DXH_MAXSTR];
    uint32_t nstr;
} dxh;

static uint32_t dxh_intern(void *owner, const char *s, size_t n)
{
    dxh *h = (dxh *)owner;   /* past DXH_MAXSTR: refused, the slot reads as null */
    return ff_strtab_intern(h->strs, h->lens, &h->nstr, DXH_MAXSTR, s, n);
}

static int dxh_enum_add(void *owner, int id, const char *s, size_t n)
{
    dxh *h = (dxh *)owner;
    ff_dxenum *e = &h->enums[id];
    char *copy;
    if (e->n >= FF_DX_MAXCODES) return 0;
    copy = (char *)malloc(n + 1);
    if (!copy) return 0;
    memcpy(copy, s, n);
    copy[n] = 0;
    h->added[id][e->n] = copy;
    e->names[e->n] = copy;
    e->lens[e->n] = (uint32_t)n;
    return ++e->n;
}

/* Returns 0, or -1 when a ring cannot be allocated. */
static int dxh_init(dxh *h, uint64_t capacity)
{
    int rt, j;
    memset(h, 0, sizeof *h);
    ff_dx_enums_init(h->enums);
    for (rt = 1; rt <= FF_RT_DX_MAX; rt++) {
        const ff_dxtype *t = &FF_DX_TYPES[rt];
        if (t->rec_size > FF_DX_MAXREC || ff_ring_init(&h->rings[rt], t->rec_size, capacity, 0, capacity))
            return -1;
        for (j = 0; j < t->names_n; j++) {
            if (t->names[j].kind == DXK_F64) {
                double nan = __builtin_nan("");
                memcpy(h->tmpl[rt] + t->names[j].off, &nan, 8);
            }
        }
        h->c.ring[rt] = &h->rings[rt];
        h->c.tmpl[rt] = (const char *)h->tmpl[rt];
        h->c.rec_size[rt] = t->rec_size;
        h->c.tname[rt] = t->name;
        h->c.tlen[rt] = (uint32_t)strlen(t->name);
        h->c.def_f[rt] = t->def_f;
        h->c.def_n[rt] = t->def_n;
        h->c.full_f[rt] = t->names;
        h->c.full_n[rt] = t->names_n;
    }
    h->c.intern = dxh_intern;
    h->c.enum_add = dxh_enum_add;
    h->c.owner = h;
    h->c.enums = h->enums;
    return 0;
}

static void dxh_free(dxh *h)
{
    int rt, i, k;
    uint32_t s;
    for (rt = 1; rt <= FF_RT_DX_MAX; rt++) ff_ring_free(&h->rings[rt]);
    for (i = 0; i < h->c.nchans; i++)
        for (rt = 0; rt < FF_DX_NTYPES; rt++) free(h->c.chans[i].f[rt]);
    for (i = 0; i < FF_DX_NENUMS; i++)
        for (k = 0; k < FF_DX_MAXCODES; k++) free(h->added[i][k]);
    for (s = 0; s < h->nstr; s++) free(h->strs[s]);
    free(h->c.scratch);
}

/* Record seq of type rt's ring (seq < head), or NULL. */
static const uint8_t *dxh_rec(const dxh *h, int rt, uint64_t seq)
{
    const ff_ring *r = &h->rings[rt];
    if (seq >= r->head || seq + r->capacity < r->head) return NULL;
    return r->buf + (size_t)(seq & r->mask) * r->rec_size;
}

/* A COMPACT field table for the wire names names[0..n) of type rt (as a FEED_CONFIG would),
 * installed for channel ch.  Returns 0 or -1. */
static int dxh_config(dxh *h, int64_t ch, int rt, const char *const *names, int n)
{
    const ff_dxtype *t = &FF_DX_TYPES[rt];
    ff_dxfield *f = (ff_dxfield *)calloc((size_t)(n ? n : 1), sizeof *f);
    int i, j, ci = -1;
    if (!f) return -1;
    for (i = 0; i < n; i++) {
        f[i].kind = DXK_SKIP;
        f[i].name = "?";
        f[i].namelen = 1;
        for (j = 0; j < t->names_n; j++)
            if (strlen(names[i]) == t->names[j].namelen &&
                memcmp(names[i], t->names[j].name, t->names[j].namelen) == 0) {
                f[i] = t->names[j];
                break;
            }
    }
    for (i = 0; i < h->c.nchans; i++)
        if (h->c.chans[i].channel == ch) ci = i;
    if (ci < 0) {
        if (h->c.nchans >= FF_DX_MAXCH) { free(f); return -1; }
        ci = h->c.nchans++;
        memset(&h->c.chans[ci], 0, sizeof h->c.chans[ci]);
        h->c.chans[ci].channel = ch;
    }
    free(h->c.chans[ci].f[rt]);
    h->c.chans[ci].f[rt] = f;
    h->c.chans[ci].nf[rt] = n;
    return 0;
}

#endif /* FF_DX_HARNESS_H */
