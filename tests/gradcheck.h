// gradcheck.h — finite-difference gradient checks for float kernels, evaluated in double.
//
// Usage: write a loss function that runs the float forward on the current inputs and returns a
// scalar in double (typically L = Σ w·out with fixed random weights w, see gradcheck_dot); run
// the backward with dout = w to get the analytic gradient of one input; then
//     gradcheck_result r = gradcheck(loss, ctx, input, n, analytic, 1e-2f);
// perturbs each float input element by ±step and ±2·step (in place, restored afterwards) and
// compares the analytic gradient with the Richardson-extrapolated central difference
// (4·D(h) − D(2h))/3, D(h) = (L(x+h) − L(x−h)) / ((double)x₊ − (double)x₋) with x± the float
// values actually stored, so rounding of the step does not bias it. Its truncation error is
// O(h⁴), which allows steps of ~1e-2 where float32 rounding of the outputs (an absolute noise of
// about ulp(out)·sqrt(outputs touched)/(2h)) would swamp a plain central difference at 1e-3.
// The loss is evaluated once more at the end, so ctx holds the outputs of the original inputs.
//
// Errors: max_abs_err = max |a − n|; norm_rel_err = ‖a − n‖₂ / ‖n‖₂; max_rel_err =
// max |a − n| / max(|a|, |n|, floor) with floor = GRADCHECK_REL_FLOOR · max |n|. The floor keeps
// entries that are nearly zero by cancellation from dividing the (absolute) finite-difference
// noise by ~0: entries below 5% of the tensor's largest gradient are measured against that 5%
// (define GRADCHECK_REL_FLOOR before including to change it). Header-only, no dependencies.
#ifndef TIJEPA_GRADCHECK_H
#define TIJEPA_GRADCHECK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef GRADCHECK_REL_FLOOR
#define GRADCHECK_REL_FLOOR 5e-2
#endif

typedef double (*gradcheck_loss_fn)(void *ctx);

typedef struct {
    double max_abs_err;  // max_i |analytic_i − numeric_i|
    double max_rel_err;  // see the header comment
    double norm_rel_err; // ‖analytic − numeric‖₂ / ‖numeric‖₂
    double max_abs_ref;  // max_i |numeric_i|
    size_t worst;        // index with the largest relative error
    double worst_analytic, worst_numeric;
} gradcheck_result;

// Central difference (L(x+h) − L(x−h)) / (x₊ − x₋) at x[i], with the float values x± actually
// stored (x[i] restored afterwards).
static inline double gradcheck_central(gradcheck_loss_fn loss, void *ctx, float *x, size_t i,
                                       float step) {
    float saved = x[i];
    float plus = saved + step, minus = saved - step;
    x[i] = plus;
    double lp = loss(ctx);
    x[i] = minus;
    double lm = loss(ctx);
    x[i] = saved;
    return (lp - lm) / ((double)plus - (double)minus);
}

// Richardson-extrapolated central difference: (4·D(h) − D(2h)) / 3 cancels the h² term of the
// truncation error, so a step large enough to drown float32 rounding noise stays accurate.
static inline double gradcheck_numeric(gradcheck_loss_fn loss, void *ctx, float *x, size_t i,
                                       float step) {
    double d1 = gradcheck_central(loss, ctx, x, i, step);
    double d2 = gradcheck_central(loss, ctx, x, i, 2.0f * step);
    return (4.0 * d1 - d2) / 3.0;
}

// Compares analytic[n] with the numerical gradient of loss over x[n].
static inline gradcheck_result gradcheck(gradcheck_loss_fn loss, void *ctx, float *x, size_t n,
                                         const float *analytic, float step) {
    gradcheck_result r = {0};
    double *numeric = (double *)malloc(n * sizeof *numeric);
    if (!numeric) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        r.max_rel_err = r.max_abs_err = INFINITY;
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        numeric[i] = gradcheck_numeric(loss, ctx, x, i, step);
        if (fabs(numeric[i]) > r.max_abs_ref) r.max_abs_ref = fabs(numeric[i]);
    }
    loss(ctx); // leave the outputs of the unperturbed inputs behind
    double floor = GRADCHECK_REL_FLOOR * r.max_abs_ref, err2 = 0.0, ref2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = analytic[i], num = numeric[i], err = fabs(a - num);
        err2 += err * err;
        ref2 += num * num;
        double denom = fmax(fmax(fabs(a), fabs(num)), floor);
        double rel = denom > 0.0 ? err / denom : (err > 0.0 ? INFINITY : 0.0);
        if (!(err <= r.max_abs_err)) r.max_abs_err = err;
        if (!(rel <= r.max_rel_err)) {
            r.max_rel_err = rel;
            r.worst = i;
            r.worst_analytic = a;
            r.worst_numeric = num;
        }
    }
    r.norm_rel_err = ref2 > 0.0 ? sqrt(err2 / ref2) : sqrt(err2);
    free(numeric);
    return r;
}

static inline void gradcheck_print(const char *name, gradcheck_result r) {
    printf("  %-16s max_rel_err %.2e  norm_rel_err %.2e  max_abs_err %.2e  |grad|max %.2e  worst "
           "[%zu] %.6e vs %.6e\n",
           name, r.max_rel_err, r.norm_rel_err, r.max_abs_err, r.max_abs_ref, r.worst,
           r.worst_analytic, r.worst_numeric);
}

// Σ w·out in double.
static inline double gradcheck_dot(const float *w, const float *out, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)w[i] * (double)out[i];
    return s;
}

// Deterministic xorshift64* stream for test data.
typedef struct {
    uint64_t state;
} gradcheck_rng;

static inline double gradcheck_uniform(gradcheck_rng *rng) {
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

// x[n] uniform in [lo, hi).
static inline void gradcheck_fill(gradcheck_rng *rng, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)gradcheck_uniform(rng);
}

#endif // TIJEPA_GRADCHECK_H
