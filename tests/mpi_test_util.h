// CMocka inside MPI programs: every rank runs the same group of tests. A failed assertion
// leaves its test early, and that rank would then call different collectives than the others
// (a hang or garbage), so a failure aborts the whole job, naming the rank and the test, and
// mpirun exits non-zero. CMocka prints a failure's message only after the teardown, so the
// abort happens in the next test's setup (or after the group), once the message is out. Use
// MPI_TEST(name) { ... } to define tests and MT_TEST(name) in the test table; include this header
// from one .c file only.
#ifndef TIJEPA_MPI_TEST_UTIL_H
#define TIJEPA_MPI_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "dist.h"

static Dist *mt_dist;
static const char *mt_current;
static int mt_finished;
static const char *mt_failed; // the test that failed on this rank, if any

#define MPI_TEST(name)                                                                             \
    static void name##_body(void);                                                                 \
    static void name(void **state) {                                                               \
        (void)state;                                                                               \
        mt_current = #name;                                                                        \
        mt_finished = 0;                                                                           \
        name##_body();                                                                             \
        mt_finished = 1;                                                                           \
    }                                                                                              \
    static void name##_body(void)

static void mt_abort_if_failed(void) {
    if (mt_failed)
        dist_abort(mt_dist, "test %s failed on this rank (CMocka says why above)", mt_failed);
}

static int mt_setup(void **state) {
    (void)state;
    mt_abort_if_failed();
    return 0;
}

static int mt_teardown(void **state) {
    (void)state;
    if (!mt_finished) mt_failed = mt_current;
    return 0;
}

#define MT_TEST(name) cmocka_unit_test_setup_teardown(name, mt_setup, mt_teardown)

// Runs the group on every rank; only rank 0 keeps CMocka's progress lines on stdout (failures
// go to stderr on every rank). Returns the exit status.
static int mt_run(const char *group, const struct CMUnitTest *tests, size_t n_tests) {
    if (mt_dist->rank != 0 && !freopen("/dev/null", "w", stdout))
        dist_abort(mt_dist, "cannot redirect stdout to /dev/null");
    int failed = _cmocka_run_group_tests(group, tests, n_tests, NULL, NULL);
    fflush(stdout);
    mt_abort_if_failed();
    if (failed) dist_abort(mt_dist, "%d test(s) of %s failed", failed, group);
    return 0;
}

#define MT_RUN(tests) mt_run(__FILE__, tests, sizeof(tests) / sizeof((tests)[0]))

#endif // TIJEPA_MPI_TEST_UTIL_H
