/* tests/c/pg_harness.h -- a polygon decoder (fastfeed/polygon_scan.h) without Python, for the
 * C tests and the fuzz target: the key tables of every layout from the generated
 * polygon_fields.h (set up the way polygon.pyx's _build_tables does: every ev code of every
 * cluster has a ring), NaN-double templates, a string table behind the intern callback (with a
 * cap, for the symbol-table-full path), and a status callback that keeps the last status object.
 * Helpers read a record's spilled strings back and check every reference stays in bounds. */
#ifndef FF_PG_HARNESS_H
#define FF_PG_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ff_strtab.h"
#include "fastfeed/polygon_fields.h"
#include "fastfeed/spill.h"

#define PGH_MAXSTR 4096

typedef struct {
    ff_pg_dec d;
    ff_ring ring_store[FF_RT_MAX];
    ff_ring *rings[FF_RT_MAX];
    uint8_t *tmpl[FF_PG_NLAYOUTS];
    char *strs[PGH_MAXSTR];      /* symbol id k -> strs[k - 1] (NUL-terminated copy) */
    size_t lens[PGH_MAXSTR];
    uint32_t nstr;
    uint32_t max_symbols;        /* intern refuses new symbols past it (0 = PGH_MAXSTR) */
    uint64_t n_status_calls;
    char status_last[256];       /* the last status object (cut to fit: test messages are short) */
    int status_fail;             /* the status callback reports a fault when set */
} pgh;

static uint32_t pgh_intern(void *owner, const char *s, size_t n)
{
    pgh *h = (pgh *)owner;   /* past the cap: refused, the event is skipped (FF_PGE_SYMTAB_FULL) */
    return ff_strtab_intern(h->strs, h->lens, &h->nstr, h->max_symbols ? h->max_symbols : PGH_MAXSTR,
                            s, n);
}

static int pgh_status(void *owner, const char *s, size_t n)
{
    pgh *h = (pgh *)owner;
    size_t m = n < sizeof h->status_last - 1 ? n : sizeof h->status_last - 1;
    memcpy(h->status_last, s, m);
    h->status_last[m] = 0;
    h->n_status_calls++;
    return h->status_fail ? -1 : 0;
}

/* Every polygon layout (loaded as polygon.pyx loads them: ff_pg_load_layout), every ev code a
 * ring of `capacity` records (drop-oldest).  0 or -1. */
static int pgh_init(pgh *h, uint64_t capacity)
{
    int li, j, e;
    memset(h, 0, sizeof *h);
    for (li = 0; li < FF_PG_NLAYOUTS; li++) {
        const ff_pglayout_desc *ld = &FF_PG_LAYOUT_DESCS[li];
        /* the template: zero, the doubles NaN (what events.default_record gives) */
        h->tmpl[li] = (uint8_t *)calloc(1, ld->size);
        if (!h->tmpl[li]) return -1;
        for (j = 0; j < ld->nfields; j++) {
            if (ld->fields[j].kind == FF_PGK_F64) {
                double nan = __builtin_nan("");
                memcpy(h->tmpl[li] + ld->fields[j].off, &nan, 8);
            }
        }
        if (ff_pg_load_layout(&h->d, li, ld, h->tmpl[li]) != 0) return -1;
        for (e = 0; e < ld->nev; e++) {
            int rt = ld->rtypes[e];
            if (ff_ring_init(&h->ring_store[rt], ld->size, capacity, 0, capacity) != 0)
                return -1;
            h->rings[rt] = &h->ring_store[rt];
        }
    }
    h->d.rings = h->rings;
    h->d.intern = pgh_intern;
    h->d.status = pgh_status;
    h->d.ctx = h;
    return 0;
}

static void pgh_free(pgh *h)
{
    int i;
    uint32_t s;
    for (i = 0; i < FF_RT_MAX; i++)
        if (h->rings[i]) ff_ring_free(h->rings[i]);
    for (i = 0; i < FF_PG_NLAYOUTS; i++) free(h->tmpl[i]);
    for (s = 0; s < h->nstr; s++) free(h->strs[s]);
}

/* Record seq of ring rt (seq < head, not yet overwritten), or NULL. */
static const uint8_t *pgh_rec(const pgh *h, int rt, uint64_t seq)
{
    const ff_ring *r = h->rings[rt];
    if (r == NULL || seq >= r->head || seq + r->capacity < r->head) return NULL;
    return r->buf + ff_ring_off(r, seq);
}

static inline const char *pgh_sym(const pgh *h, uint32_t id) { return id && id <= h->nstr ? h->strs[id - 1] : NULL; }

/* The layout of rtype rt (index in FF_PG_LAYOUT_DESCS), or -1. */
static int pgh_layout_of(int rt)
{
    int li, e;
    for (li = 0; li < FF_PG_NLAYOUTS; li++)
        for (e = 0; e < FF_PG_LAYOUT_DESCS[li].nev; e++)
            if (FF_PG_LAYOUT_DESCS[li].rtypes[e] == rt) return li;
    return -1;
}

/* The text of the fixstr field fd of record rec (of ring rt) into out (cap bytes, NUL added):
 * inline, or read back from the ring's spill log.  Returns its length, or -1 when a spill
 * reference points outside the record's spill range or that range outside the live log. */
static long pgh_fixstr(const pgh *h, int rt, const uint8_t *rec, const ff_pgfield_desc *fd,
                       char *out, size_t cap)
{
    uint64_t alt, sp;
    memcpy(&alt, rec + 24, 8);
    memcpy(&sp, rec + 32, 8);
    if (alt & ((uint64_t)1 << (32 + fd->bit))) {
        const ff_spill *log = &h->rings[rt]->spill;
        uint32_t ref[2], start = (uint32_t)sp, len = (uint32_t)(sp >> 32);
        memcpy(ref, rec + fd->off, 8);
        if (len == 0 || (uint32_t)(start - log->tail) > log->head - log->tail ||
            (uint32_t)(start - log->tail) + len > log->head - log->tail)
            return -1;                                  /* the range is not in the live log */
        if (ref[0] < FF_SPILL_HDR || ref[0] > len || ref[1] > len - ref[0])
            return -1;                                  /* the piece is not in the range */
        if (ref[1] >= cap) return (long)ref[1];
        ff_spill_read(log, start + ref[0], ref[1], out);
        out[ref[1]] = 0;
        return (long)ref[1];
    }
    {
        size_t n = strnlen((const char *)rec + fd->off, fd->n);
        if (n >= cap) n = cap - 1;
        memcpy(out, rec + fd->off, n);
        out[n] = 0;
        return (long)n;
    }
}

/* The field desc of wire key `wire` in layout li, or NULL. */
static inline const ff_pgfield_desc *pgh_field(int li, const char *wire)
{
    int j;
    for (j = 0; j < FF_PG_LAYOUT_DESCS[li].nfields; j++)
        if (strcmp(FF_PG_LAYOUT_DESCS[li].fields[j].wire, wire) == 0) return &FF_PG_LAYOUT_DESCS[li].fields[j];
    return NULL;
}

#endif /* FF_PG_HARNESS_H */
