// Kernel tests, dense part: linear, LayerNorm, GELU, residual add, energy and InfoNCE.
// Forwards are compared with naive double-precision loops; backwards with central finite
// differences in double of L = Σ w·out (fixed random w), on odd shapes; every gradient buffer
// starts non-zero to prove accumulation; NULL gradient outputs are shown to be skipped.
#include "kernel_test_util.h"
#include "model.h"

// ---- linear -------------------------------------------------------------------------------

typedef struct {
    float *inp, *weight, *bias, *out, *w;
    int N, I, O;
} linear_case;

static double linear_loss(void *ctx) {
    linear_case *c = ctx;
    linear_forward(c->out, c->inp, c->weight, c->bias, c->N, c->I, c->O);
    return gradcheck_dot(c->w, c->out, (size_t)c->N * c->O);
}

static void linear_reference(double *ref, const linear_case *c) {
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++) {
            double s = c->bias ? c->bias[o] : 0.0;
            for (int i = 0; i < c->I; i++)
                s += (double)c->inp[n * c->I + i] * c->weight[o * c->I + i];
            ref[n * c->O + o] = s;
        }
}

static void check_linear(int N, int I, int O, int with_bias, uint64_t seed) {
    printf("linear N=%d I=%d O=%d bias=%d\n", N, I, O, with_bias);
    gradcheck_rng rng = test_rng(seed);
    linear_case c = {test_floats((size_t)N * I),
                     test_floats((size_t)O * I),
                     with_bias ? test_floats(O) : NULL,
                     test_floats((size_t)N * O),
                     test_floats((size_t)N * O),
                     N,
                     I,
                     O};
    gradcheck_fill(&rng, c.inp, (size_t)N * I, -1.0f, 1.0f);
    gradcheck_fill(&rng, c.weight, (size_t)O * I, -1.0f, 1.0f);
    if (c.bias) gradcheck_fill(&rng, c.bias, O, -1.0f, 1.0f);
    gradcheck_fill(&rng, c.w, (size_t)N * O, -1.0f, 1.0f);

    double *ref = test_doubles((size_t)N * O);
    linear_loss(&c);
    linear_reference(ref, &c);
    expect_forward("out", c.out, ref, (size_t)N * O);

    float *dinp = test_prefilled((size_t)N * I), *dweight = test_prefilled((size_t)O * I);
    float *dbias = test_prefilled(O);
    linear_backward(dinp, dweight, c.bias ? dbias : NULL, c.w, c.inp, c.weight, N, I, O);
    expect_gradient("dinp", linear_loss, &c, c.inp, (size_t)N * I, dinp, FD_STEP_LINEAR);
    expect_gradient("dweight", linear_loss, &c, c.weight, (size_t)O * I, dweight, FD_STEP_LINEAR);
    if (c.bias) expect_gradient("dbias", linear_loss, &c, c.bias, O, dbias, FD_STEP_LINEAR);

    // NULL outputs are skipped, and each output does not depend on which others are requested.
    float *only = test_prefilled((size_t)O * I);
    linear_backward(NULL, only, NULL, c.w, c.inp, c.weight, N, I, O);
    assert_memory_equal(only, dweight, (size_t)O * I * sizeof(float));
    float *only_bias = test_prefilled(O);
    linear_backward(NULL, NULL, only_bias, c.w, c.inp, c.weight, N, I, O);
    if (c.bias) assert_memory_equal(only_bias, dbias, (size_t)O * sizeof(float));

    free(ref), free(dinp), free(dweight), free(dbias), free(only), free(only_bias);
    free(c.inp), free(c.weight), free(c.bias), free(c.out), free(c.w);
}

static void test_linear(void **state) {
    (void)state;
    check_linear(7, 13, 5, 1, 11);
    check_linear(1, 3, 1, 1, 12);
    check_linear(4, 5, 70, 1, 13); // > one bias column block
    check_linear(5, 9, 6, 0, 14);
}

// ---- layernorm ------------------------------------------------------------------------------

typedef struct {
    float *inp, *weight, *bias, *out, *mean, *rstd, *w;
    int N, D;
} layernorm_case;

static double layernorm_loss(void *ctx) {
    layernorm_case *c = ctx;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->weight, c->bias, c->N, c->D);
    return gradcheck_dot(c->w, c->out, (size_t)c->N * c->D);
}

static void layernorm_reference(double *ref, const layernorm_case *c) {
    for (int n = 0; n < c->N; n++) {
        const float *x = c->inp + (size_t)n * c->D;
        double mean = 0.0, var = 0.0;
        for (int d = 0; d < c->D; d++)
            mean += x[d];
        mean /= c->D;
        for (int d = 0; d < c->D; d++)
            var += (x[d] - mean) * (x[d] - mean);
        var /= c->D;
        for (int d = 0; d < c->D; d++) {
            double y = (x[d] - mean) / sqrt(var + 1e-6);
            if (c->weight) y *= c->weight[d];
            if (c->bias) y += c->bias[d];
            ref[(size_t)n * c->D + d] = y;
        }
    }
}

// LayerNorm bends on the scale of each row's standard deviation: the smallest one bounds the step.
static float smallest_row_std(const float *x, int N, int D) {
    double smallest = INFINITY;
    for (int n = 0; n < N; n++) {
        double mean = 0.0, var = 0.0;
        for (int d = 0; d < D; d++)
            mean += x[(size_t)n * D + d] / D;
        for (int d = 0; d < D; d++)
            var += pow(x[(size_t)n * D + d] - mean, 2) / D;
        smallest = fmin(smallest, sqrt(var));
    }
    return (float)smallest;
}

static void check_layernorm(int N, int D, int affine, uint64_t seed) {
    printf("layernorm N=%d D=%d affine=%d\n", N, D, affine);
    gradcheck_rng rng = test_rng(seed);
    size_t n = (size_t)N * D;
    layernorm_case c = {test_floats(n),
                        affine ? test_floats(D) : NULL,
                        affine ? test_floats(D) : NULL,
                        test_floats(n),
                        test_floats(N),
                        test_floats(N),
                        test_floats(n),
                        N,
                        D};
    gradcheck_fill(&rng, c.inp, n, -1.5f, 2.5f);
    if (affine) {
        gradcheck_fill(&rng, c.weight, D, 0.5f, 1.5f);
        gradcheck_fill(&rng, c.bias, D, -0.5f, 0.5f);
    }
    gradcheck_fill(&rng, c.w, n, -1.0f, 1.0f);

    double *ref = test_doubles(n);
    layernorm_loss(&c);
    layernorm_reference(ref, &c);
    expect_forward("out", c.out, ref, n);

    float *dinp = test_prefilled(n), *dweight = test_prefilled(D), *dbias = test_prefilled(D);
    layernorm_backward(dinp, affine ? dweight : NULL, affine ? dbias : NULL, c.w, c.inp, c.weight,
                       c.mean, c.rstd, N, D);
    float step = FD_STEP_NORM * fminf(1.0f, smallest_row_std(c.inp, N, D));
    expect_gradient("dinp", layernorm_loss, &c, c.inp, n, dinp, step);
    if (affine) {
        expect_gradient("dweight", layernorm_loss, &c, c.weight, D, dweight, FD_STEP_LINEAR);
        expect_gradient("dbias", layernorm_loss, &c, c.bias, D, dbias, FD_STEP_LINEAR);
        float *only = test_prefilled(D);
        layernorm_backward(NULL, NULL, only, c.w, c.inp, c.weight, c.mean, c.rstd, N, D);
        assert_memory_equal(only, dbias, D * sizeof(float));
        free(only);
    }
    // The forward without mean/rstd (inference) gives the same output.
    float *out2 = test_floats(n);
    layernorm_forward(out2, NULL, NULL, c.inp, c.weight, c.bias, N, D);
    assert_memory_equal(out2, c.out, n * sizeof(float));

    free(out2), free(ref), free(dinp), free(dweight), free(dbias);
    free(c.inp), free(c.weight), free(c.bias), free(c.out), free(c.mean), free(c.rstd), free(c.w);
}

static void test_layernorm(void **state) {
    (void)state;
    check_layernorm(7, 13, 1, 21);
    check_layernorm(3, 96, 1, 22);
    check_layernorm(5, 13, 0, 23);
    check_layernorm(2, 5, 1, 24);
}

// ---- gelu and add -------------------------------------------------------------------------

typedef struct {
    float *inp, *out, *w;
    size_t n;
} gelu_case;

static double gelu_loss(void *ctx) {
    gelu_case *c = ctx;
    gelu_forward(c->out, c->inp, c->n);
    return gradcheck_dot(c->w, c->out, c->n);
}

static void test_gelu(void **state) {
    (void)state;
    printf("gelu n=37\n");
    gradcheck_rng rng = test_rng(31);
    gelu_case c = {test_floats(37), test_floats(37), test_floats(37), 37};
    gradcheck_fill(&rng, c.inp, c.n, -4.0f, 4.0f);
    gradcheck_fill(&rng, c.w, c.n, -1.0f, 1.0f);
    double ref[37];
    gelu_loss(&c);
    for (size_t i = 0; i < c.n; i++)
        ref[i] = 0.5 * c.inp[i] * (1.0 + erf(c.inp[i] / sqrt(2.0)));
    expect_forward("out", c.out, ref, c.n);
    float *dinp = test_prefilled(c.n);
    gelu_backward(dinp, c.w, c.inp, c.n);
    expect_gradient("dinp", gelu_loss, &c, c.inp, c.n, dinp, FD_STEP_SMOOTH);
    // PyTorch values: F.gelu(torch.tensor([-1., 0.5, 2.])) = [-0.158655, 0.345731, 1.954500]
    float x[3] = {-1.0f, 0.5f, 2.0f}, y[3];
    gelu_forward(y, x, 3);
    assert_float_equal(y[0], -0.1586553f, 1e-6);
    assert_float_equal(y[1], 0.3457312f, 1e-6);
    assert_float_equal(y[2], 1.9544997f, 1e-6);
    free(dinp), free(c.inp), free(c.out), free(c.w);
}

static void test_add(void **state) {
    (void)state;
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -2, 10, 0, -5}, out[5];
    add_forward(out, a, b, 5);
    float expect[5] = {1.5f, 0, 13, 4, 0};
    assert_memory_equal(out, expect, sizeof expect);
    add_forward(a, a, b, 5); // in place
    assert_memory_equal(a, expect, sizeof expect);
}

// ---- energy and nce ---------------------------------------------------------------------

typedef struct {
    float *pred, *target, *energy, *w;
    int B, T, H;
} energy_case;

static double energy_loss(void *ctx) {
    energy_case *c = ctx;
    energy_forward(c->energy, c->pred, c->target, c->B, c->T, c->H);
    return gradcheck_dot(c->w, c->energy, c->B);
}

static void test_energy(void **state) {
    (void)state;
    int B = 3, T = 5, H = 7;
    size_t n = (size_t)B * T * H;
    printf("energy B=%d T=%d H=%d\n", B, T, H);
    gradcheck_rng rng = test_rng(41);
    energy_case c = {test_floats(n), test_floats(n), test_floats(B), test_floats(B), B, T, H};
    gradcheck_fill(&rng, c.target, n, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) { // differences on both sides of the kink |d| = 1, never near
        float d;
        do
            d = (float)(6.0 * gradcheck_uniform(&rng) - 3.0);
        while (fabsf(fabsf(d) - 1.0f) < 0.5f);
        c.pred[i] = c.target[i] + d;
    }
    gradcheck_fill(&rng, c.w, B, 0.5f, 2.0f);
    double ref[3];
    energy_loss(&c);
    for (int b = 0; b < B; b++) {
        double s = 0.0;
        for (int i = 0; i < T * H; i++) {
            double d = fabs((double)c.pred[b * T * H + i] - c.target[b * T * H + i]);
            s += d < 1.0 ? 0.5 * d * d : d - 0.5;
        }
        ref[b] = s / (T * H);
    }
    expect_forward("energy", c.energy, ref, B);
    float *dpred = test_prefilled(n);
    energy_backward(dpred, c.w, c.pred, c.target, B, T, H);
    expect_gradient("dpred", energy_loss, &c, c.pred, n, dpred,
                    0.2f); // exact quadratic / linear pieces; 2h < 0.5
    free(dpred), free(c.pred), free(c.target), free(c.energy), free(c.w);
}

typedef struct {
    float *energy, *loss, *probs, *w;
    float tau;
    int B, K1;
} nce_case;

static double nce_loss(void *ctx) {
    nce_case *c = ctx;
    nce_forward(c->loss, c->probs, c->energy, c->tau, c->B, c->K1);
    return gradcheck_dot(c->w, c->loss, c->B);
}

static void check_nce(int B, int K1, float tau, uint64_t seed) {
    printf("nce B=%d K1=%d tau=%g\n", B, K1, tau);
    gradcheck_rng rng = test_rng(seed);
    size_t n = (size_t)B * K1;
    nce_case c = {test_floats(n), test_floats(B), test_floats(n), test_floats(B), tau, B, K1};
    gradcheck_fill(&rng, c.energy, n, 0.0f, 4.0f * tau);
    gradcheck_fill(&rng, c.w, B, 0.5f, 2.0f);
    double ref[8];
    nce_loss(&c);
    for (int b = 0; b < B; b++) {
        double sum = 0.0;
        for (int k = 0; k < K1; k++)
            sum += exp(-(double)c.energy[b * K1 + k] / tau);
        ref[b] = (double)c.energy[b * K1] / tau + log(sum);
        double p_sum = 0.0;
        for (int k = 0; k < K1; k++)
            p_sum += c.probs[b * K1 + k];
        assert_float_equal(p_sum, 1.0, 1e-6);
    }
    expect_forward("loss", c.loss, ref, B);
    float *denergy = test_prefilled(n);
    nce_backward(denergy, c.w, c.probs, tau, B, K1);
    expect_gradient("denergy", nce_loss, &c, c.energy, n, denergy, 4e-2f * tau);
    free(denergy), free(c.energy), free(c.loss), free(c.probs), free(c.w);
}

static void test_nce(void **state) {
    (void)state;
    check_nce(4, 5, 0.5f, 51);
    check_nce(3, 2, 1.0f, 52);
    check_nce(2, 7, 0.07f, 53);
    // Energies far apart relative to τ: the log-sum-exp must not overflow or underflow.
    float e[3] = {0.0f, 100.0f, 200.0f}, loss, probs[3];
    nce_forward(&loss, probs, e, 0.01f, 1, 3);
    assert_true(isfinite(loss));
    assert_float_equal(loss, 0.0f, 1e-6);
    e[0] = 300.0f;
    nce_forward(&loss, probs, e, 0.01f, 1, 3);
    assert_float_equal(loss, 20000.0f, 1e-2); // (300 − 100)/τ
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear), cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),   cmocka_unit_test(test_add),
        cmocka_unit_test(test_energy), cmocka_unit_test(test_nce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
