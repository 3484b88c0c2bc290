/* tests/c/ff_test.h -- the few lines every CTest program shares: FAIL / CHECK record a failure
 * with file:line and keep going; FF_TEST_DONE(name) prints the verdict and sets the exit code. */
#ifndef FF_TEST_H
#define FF_TEST_H

#include <stdio.h>

static int failures = 0;

#define FAIL(...)                                                                          \
    do {                                                                                   \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fputc('\n', stderr);                                                               \
        failures++;                                                                        \
    } while (0)

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond))                                                                       \
            FAIL(__VA_ARGS__);                                                             \
    } while (0)

/* Run run_all(0) on the baseline build of a decoder and run_all(1) on its x86-64-v3 build when
 * the CPU has it (compat.h's runtime dispatch: ff_cpu_v3()). */
#define FF_TEST_BOTH_BUILDS(run_all, name)                                                 \
    do {                                                                                   \
        run_all(0);                                                                        \
        if (ff_cpu_v3())                                                                   \
            run_all(1);                                                                    \
        else                                                                               \
            printf("%s: no x86-64-v3 build or CPU: baseline only\n", name);               \
    } while (0)

#define FF_TEST_DONE(name)                                                                 \
    do {                                                                                   \
        if (failures) {                                                                    \
            fprintf(stderr, "%s: %d failure(s)\n", name, failures);                       \
            return 1;                                                                      \
        }                                                                                  \
        printf("%s: ok\n", name);                                                          \
        return 0;                                                                          \
    } while (0)

#endif /* FF_TEST_H */
