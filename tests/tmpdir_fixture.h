// A scratch folder shared by the tests of one CMocka group: TMPDIR_FIXTURE(tag) defines `dir`
// (/tmp/tijepa-test-TAG-XXXXXX once made), the group setup/teardown that make and remove it, and
// path_of(out, cap, name) = dir/name.
#ifndef TIJEPA_TESTS_TMPDIR_FIXTURE_H
#define TIJEPA_TESTS_TMPDIR_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#define TMPDIR_FIXTURE(tag)                                                                        \
    static char dir[64];                                                                           \
    static int setup(void **state) {                                                               \
        (void)state;                                                                               \
        snprintf(dir, sizeof(dir), "/tmp/tijepa-test-" tag "-XXXXXX");                             \
        return mkdtemp(dir) ? 0 : -1;                                                              \
    }                                                                                              \
    static int teardown(void **state) {                                                            \
        (void)state;                                                                               \
        char cmd[128];                                                                             \
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);                                            \
        return system(cmd) == 0 ? 0 : -1;                                                          \
    }                                                                                              \
    static inline void path_of(char *out, size_t cap, const char *name) {                          \
        snprintf(out, cap, "%s/%s", dir, name);                                                    \
    }

#endif // TIJEPA_TESTS_TMPDIR_FIXTURE_H
