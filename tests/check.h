// check.h: a tiny assertion helper for the C tests. A failed CHECK prints the
// file:line and the message, counts the failure, and the test exits 1 at the end.
#ifndef TMS_TEST_CHECK_H
#define TMS_TEST_CHECK_H
#include <stdio.h>

static int check_failures = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
            check_failures++;                                             \
        }                                                                 \
    } while (0)

static inline int check_finish(const char *name) {
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}
#endif
