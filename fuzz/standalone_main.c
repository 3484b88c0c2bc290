/* A libFuzzer-compatible driver for machines without clang/libFuzzer (built with gcc, usually
 * with -fsanitize=address,undefined): runs every seed (the target's ff_fuzz_seeds, if it
 * defines them, and files/directories named on the command line), then random mutations of
 * them (byte flips, inserts, deletes, truncation, splices, interesting tokens) for -runs=N
 * inputs or -max_total_time=S seconds, whichever comes first; -seed=K fixes the PRNG.  Each
 * input is passed as an exactly-sized heap buffer.  Exit 0 when nothing aborted.
 *
 *   fuzz_dxlink_scan_standalone -runs=200000 -max_total_time=30 [corpus_dir_or_file ...]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const char *const ff_fuzz_seeds[] __attribute__((weak));
extern const size_t ff_fuzz_nseeds __attribute__((weak));

typedef struct { uint8_t *d; size_t n; } buf;
static buf *pool;
static size_t npool, cappool;
static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static void add(const uint8_t *d, size_t n)
{
    if (npool == cappool) {
        cappool = cappool ? 2 * cappool : 64;
        pool = (buf *)realloc(pool, cappool * sizeof *pool);
        if (!pool) abort();
    }
    pool[npool].d = (uint8_t *)malloc(n ? n : 1);
    if (!pool[npool].d) abort();
    memcpy(pool[npool].d, d, n);
    pool[npool].n = n;
    npool++;
}

static void run(const uint8_t *d, size_t n)
{
    uint8_t *b = (uint8_t *)malloc(n ? n : 1);
    if (!b) abort();
    memcpy(b, d, n);
    LLVMFuzzerTestOneInput(b, n);
    free(b);
}

static void load(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        struct dirent *e;
        char sub[4096];
        if (!dir) return;
        while ((e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            load(sub);
        }
        closedir(dir);
    } else {
        FILE *f = fopen(path, "rb");
        uint8_t *d;
        size_t n;
        if (!f) return;
        d = (uint8_t *)malloc((size_t)st.st_size + 1);
        n = d ? fread(d, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        if (d) { add(d, n); free(d); }
    }
}

static const char *const TOKENS[] = {"\"NaN\"", "null", "true", "{", "}", "[", "]", ",", ":", "\"",
                                     "\\u0000", "\\\"", "-", "1e309", "9223372036854775808",
                                     "\"FEED_DATA\"", "\"Quote\"", "\"eventType\"", "0.1", "\xff"};

static size_t mutate(uint8_t *out, size_t cap, const buf *a, const buf *b)
{
    size_t n = a->n < cap ? a->n : cap, k, i, m = 1 + next() % 4;
    memcpy(out, a->d, n);
    for (k = 0; k < m; k++) {
        size_t pos = n ? (size_t)(next() % (n + 1)) : 0;
        switch (next() % 6) {
        case 0: if (n) out[pos % n] ^= (uint8_t)(1u << (next() % 8)); break;
        case 1: if (n) out[pos % n] = (uint8_t)next(); break;
        case 2: if (n > 1) { size_t len = 1 + next() % (n - pos > 8 ? 8 : (n - pos ? n - pos : 1));
                             if (pos + len <= n) { memmove(out + pos, out + pos + len, n - pos - len); n -= len; } } break;
        case 3: n = pos; break;
        case 4: { const char *t = TOKENS[next() % (sizeof TOKENS / sizeof TOKENS[0])];
                  size_t tl = strlen(t);
                  if (n + tl <= cap) { memmove(out + pos + tl, out + pos, n - pos); memcpy(out + pos, t, tl); n += tl; } } break;
        default: if (b->n) { size_t from = (size_t)(next() % b->n), len = b->n - from;
                             if (pos + len > cap) len = cap - pos;
                             memcpy(out + pos, b->d + from, len); n = pos + len; } break;
        }
        (void)i;
    }
    return n;
}

int main(int argc, char **argv)
{
    long runs = 100000, secs = 60;
    int i;
    size_t s;
    time_t t0 = time(NULL);
    uint8_t *out;
    const size_t cap = 1 << 16;
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-runs=", 6) == 0) runs = atol(argv[i] + 6);
        else if (strncmp(argv[i], "-max_total_time=", 16) == 0) secs = atol(argv[i] + 16);
        else if (strncmp(argv[i], "-seed=", 6) == 0) rng = (uint64_t)atoll(argv[i] + 6) | 1;
        else if (argv[i][0] != '-') load(argv[i]);
    }
    if (&ff_fuzz_nseeds != NULL && ff_fuzz_seeds != NULL)
        for (s = 0; s < ff_fuzz_nseeds; s++) add((const uint8_t *)ff_fuzz_seeds[s], strlen(ff_fuzz_seeds[s]));
    if (npool == 0) add((const uint8_t *)"", 0);
    for (s = 0; s < npool; s++) run(pool[s].d, pool[s].n);
    out = (uint8_t *)malloc(cap);
    if (!out) abort();
    for (i = 0; i < runs; i++) {
        const buf *a = &pool[next() % npool], *b = &pool[next() % npool];
        size_t n = mutate(out, cap, a, b);
        run(out, n);
        if (n && n < 4096 && npool < 4096 && next() % 64 == 0) add(out, n);   /* keep some */
        if ((i & 1023) == 0 && time(NULL) - t0 >= secs) break;
    }
    printf("standalone fuzz: %d inputs (+%zu seeds), %lds, ok\n", i, npool, (long)(time(NULL) - t0));
    for (s = 0; s < npool; s++) free(pool[s].d);
    free(pool);
    free(out);
    return 0;
}
