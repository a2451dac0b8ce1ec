// kernel_test_util.h — shared helpers of the kernel tests (CMocka): allocation, forward checks
// against double-precision references, and finite-difference gradient assertions.
#ifndef TIJEPA_KERNEL_TEST_UTIL_H
#define TIJEPA_KERNEL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"

// Finite-difference steps (gradcheck uses a Richardson-extrapolated central difference, whose
// truncation error is O(h⁴)). The loss sums float32 outputs, which adds an absolute noise of
// about ulp(out)·sqrt(outputs touched)/(2h); a plain central difference at h = 1e-3 measured
// gradient entries of ~1e-2 only to ~5e-3 relative here. So: kernels exactly linear in the
// perturbed input have no truncation error and take FD_STEP_LINEAR; LayerNorm's input (every
// output of the row moves, and the row statistics round coherently) takes FD_STEP_NORM times
// the smallest row spread; curved element-wise kernels take FD_STEP_SMOOTH; attention (q, k up
// to 2.5) FD_STEP_ATTENTION; InfoNCE scales with τ. With these, every check stayed below half
// the tolerance over 80 seeds (TIJEPA_TEST_SEED=0..79), the worst being 5.4e-4.
#define FD_STEP_LINEAR 1e-1f
#define FD_STEP_NORM 1e-1f
#define FD_STEP_SMOOTH 3e-2f
#define FD_STEP_ATTENTION 7e-2f
#define FD_REL_TOL 1e-3
#define FORWARD_REL_TOL 1e-5
// Forward errors are measured relative to max(|ref|, FORWARD_REL_FLOOR·max|ref|): float32 sums
// with cancellation (attention averages of v, LayerNorm outputs near 0) carry an absolute error
// of a few ulp of the tensor's scale, not of the tiny element.
#define FORWARD_REL_FLOOR 1e-1
// Seeds of the random test data; TIJEPA_TEST_SEED=n shifts them all (to stress the tolerances).
static inline gradcheck_rng test_rng(uint64_t seed) {
    const char *env = getenv("TIJEPA_TEST_SEED");
    gradcheck_rng rng = {seed * 0x9E3779B97F4A7C15ULL + (env ? strtoull(env, NULL, 10) : 0) + 1};
    return rng;
}

// Gradient buffers start at this value so that every test also proves the backward ACCUMULATES.
#define GRAD_PREFILL 0.25f

static inline void *test_alloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}
static inline float *test_floats(size_t n) {
    return (float *)test_alloc(n * sizeof(float));
}
static inline double *test_doubles(size_t n) {
    return (double *)test_alloc(n * sizeof(double));
}
static inline float *test_prefilled(size_t n) {
    float *g = test_floats(n);
    for (size_t i = 0; i < n; i++)
        g[i] = GRAD_PREFILL;
    return g;
}

// got[n] against the double reference: max |got − ref| / max(|ref|, FORWARD_REL_FLOOR·max|ref|).
static inline void expect_forward(const char *name, const float *got, const double *ref, size_t n) {
    double scale = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double denom = fmax(fabs(ref[i]), FORWARD_REL_FLOOR * scale);
        double err = fabs((double)got[i] - ref[i]);
        double rel = denom > 0.0 ? err / denom : err;
        if (!(rel <= worst)) worst = rel;
    }
    printf("  %-16s forward max_rel_err %.2e\n", name, worst);
    assert_true(worst <= FORWARD_REL_TOL);
}

// Checks an accumulated gradient (prefilled with GRAD_PREFILL) against finite differences.
static inline void expect_gradient(const char *name, gradcheck_loss_fn loss, void *ctx, float *x,
                                   size_t n, const float *accumulated, float step) {
    float *analytic = test_floats(n);
    for (size_t i = 0; i < n; i++)
        analytic[i] = accumulated[i] - GRAD_PREFILL;
    gradcheck_result r = gradcheck(loss, ctx, x, n, analytic, step);
    gradcheck_print(name, r);
    free(analytic);
    assert_true(r.max_rel_err <= FD_REL_TOL);
}

static inline void expect_all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        assert_true(isfinite(x[i]));
}

#endif // TIJEPA_KERNEL_TEST_UTIL_H
