/* fastfeed symbol table: interns byte strings (symbols, low-cardinality strings) to uint32 ids.
 * Ids start at 1; 0 means "null / not interned". Open addressing, power-of-two table, keys stored
 * in one growing arena. Bounded by max_count: past it, ff_symtab_intern returns 0 and counts. */
#ifndef FASTFEED_SYMTAB_H
#define FASTFEED_SYMTAB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ff_symtab {
    uint32_t *table;      /* slot -> id (0 = empty) */
    uint32_t table_mask;
    uint32_t count;       /* ids in use (last id) */
    uint32_t max_count;
    uint32_t cap_ids;
    uint32_t *key_off;    /* id -> arena offset (index 0 unused) */
    uint32_t *key_len;
    uint32_t *key_hash;
    char *arena;
    size_t arena_len, arena_cap;
    uint64_t refused;     /* interns refused because the table was full */
} ff_symtab;

static inline uint32_t ff_hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h ? h : 1u;
}

static inline int ff_symtab_init(ff_symtab *t, uint32_t max_count) {
    memset(t, 0, sizeof(*t));
    t->max_count = max_count ? max_count : (1u << 22);
    t->table_mask = 1023;
    t->table = (uint32_t *)calloc(1024, sizeof(uint32_t));
    t->cap_ids = 256;
    t->key_off = (uint32_t *)malloc(t->cap_ids * sizeof(uint32_t));
    t->key_len = (uint32_t *)malloc(t->cap_ids * sizeof(uint32_t));
    t->key_hash = (uint32_t *)malloc(t->cap_ids * sizeof(uint32_t));
    t->arena_cap = 4096;
    t->arena = (char *)malloc(t->arena_cap);
    if (!t->table || !t->key_off || !t->key_len || !t->key_hash || !t->arena) return -1;
    return 0;
}

static inline void ff_symtab_free(ff_symtab *t) {
    free(t->table); free(t->key_off); free(t->key_len); free(t->key_hash); free(t->arena);
    memset(t, 0, sizeof(*t));
}

static inline uint32_t ff_symtab_find_h(const ff_symtab *t, const char *s, size_t n, uint32_t h) {
    uint32_t i = h & t->table_mask;
    for (;;) {
        uint32_t id = t->table[i];
        if (id == 0) return 0;
        if (t->key_hash[id] == h && t->key_len[id] == n && memcmp(t->arena + t->key_off[id], s, n) == 0)
            return id;
        i = (i + 1) & t->table_mask;
    }
}

static inline uint32_t ff_symtab_find(const ff_symtab *t, const char *s, size_t n) {
    return ff_symtab_find_h(t, s, n, ff_hash_bytes(s, n));
}

static inline int ff_symtab_rehash(ff_symtab *t) {
    uint32_t nsize = (t->table_mask + 1) * 2;
    uint32_t *nt = (uint32_t *)calloc(nsize, sizeof(uint32_t));
    if (!nt) return -1;
    for (uint32_t id = 1; id <= t->count; id++) {
        uint32_t i = t->key_hash[id] & (nsize - 1);
        while (nt[i]) i = (i + 1) & (nsize - 1);
        nt[i] = id;
    }
    free(t->table);
    t->table = nt;
    t->table_mask = nsize - 1;
    return 0;
}

/* Intern s[0:n]; returns its id (>= 1) and sets *is_new, or 0 when full / out of memory. */
static inline uint32_t ff_symtab_intern(ff_symtab *t, const char *s, size_t n, int *is_new) {
    uint32_t h = ff_hash_bytes(s, n);
    uint32_t id = ff_symtab_find_h(t, s, n, h);
    *is_new = 0;
    if (id) return id;
    if (t->count >= t->max_count || n > 0xFFFFFFu) { t->refused++; return 0; }
    if ((t->count + 1) * 2 > t->table_mask + 1 && ff_symtab_rehash(t) != 0) return 0;
    if (t->count + 1 >= t->cap_ids) {
        uint32_t ncap = t->cap_ids * 2;
        uint32_t *a = (uint32_t *)realloc(t->key_off, ncap * sizeof(uint32_t));
        if (!a) return 0;
        t->key_off = a;
        a = (uint32_t *)realloc(t->key_len, ncap * sizeof(uint32_t));
        if (!a) return 0;
        t->key_len = a;
        a = (uint32_t *)realloc(t->key_hash, ncap * sizeof(uint32_t));
        if (!a) return 0;
        t->key_hash = a;
        t->cap_ids = ncap;
    }
    if (t->arena_len + n > t->arena_cap) {
        size_t ncap = t->arena_cap * 2;
        while (ncap < t->arena_len + n) ncap *= 2;
        char *na = (char *)realloc(t->arena, ncap);
        if (!na) return 0;
        t->arena = na;
        t->arena_cap = ncap;
    }
    id = ++t->count;
    memcpy(t->arena + t->arena_len, s, n);
    t->key_off[id] = (uint32_t)t->arena_len;
    t->key_len[id] = (uint32_t)n;
    t->key_hash[id] = h;
    t->arena_len += n;
    uint32_t i = h & t->table_mask;
    while (t->table[i]) i = (i + 1) & t->table_mask;
    t->table[i] = id;
    *is_new = 1;
    return id;
}

#endif /* FASTFEED_SYMTAB_H */
