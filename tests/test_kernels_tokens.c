// Kernel tests, token plumbing: patch extraction against a hand-made image, the 2-D sin-cos
// table against values worked out by hand, token + position embedding, mean pooling and the
// row gather / scatter-add (with a repeated index), each backward against finite differences.
#include "kernel_test_util.h"
#include "model.h"

// ---- patchify ---------------------------------------------------------------------------------

// img[c][y][x] = 100·c + 10·y + x, C = 2, 4×4, p = 2: four patches in row-major grid order,
// each listing channel 0's 2×2 pixels row by row, then channel 1's.
static void test_patchify_hand_made(void **state) {
    (void)state;
    float img[2 * 4 * 4], out[4 * 8];
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                img[(c * 4 + y) * 4 + x] = (float)(100 * c + 10 * y + x);
    patchify(out, img, 1, 2, 4, 4, 2);
    const float expect[4 * 8] = {
        0,  1,  10, 11, 100, 101, 110, 111, // patch (0,0)
        2,  3,  12, 13, 102, 103, 112, 113, // patch (0,1)
        20, 21, 30, 31, 120, 121, 130, 131, // patch (1,0)
        22, 23, 32, 33, 122, 123, 132, 133, // patch (1,1)
    };
    assert_memory_equal(out, expect, sizeof expect);
}

// Two samples, one channel, a 2×6 image and p = 2 (non-square grid 1×3).
static void test_patchify_batch(void **state) {
    (void)state;
    float img[2 * 2 * 6], out[2 * 3 * 4];
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 6; x++)
                img[(b * 2 + y) * 6 + x] = (float)(1000 * b + 10 * y + x);
    patchify(out, img, 2, 1, 2, 6, 2);
    const float expect[2 * 3 * 4] = {
        0,    1,    10,   11,   2,    3,    12,   13,   4,    5,    14,   15,
        1000, 1001, 1010, 1011, 1002, 1003, 1012, 1013, 1004, 1005, 1014, 1015,
    };
    assert_memory_equal(out, expect, sizeof expect);
}

// ---- sin-cos positions ------------------------------------------------------------------------

// grid 2, D 8: D/4 = 2 frequencies ω = (1, 10000^(−1/2) = 0.01). Patch (r, c) →
// [sin(c), sin(0.01c), cos(c), cos(0.01c), sin(r), sin(0.01r), cos(r), cos(0.01r)].
static void test_sincos_hand_values(void **state) {
    (void)state;
    const float s1 = 0.84147098f, s01 = 0.0099998333f, c1 = 0.54030231f, c01 = 0.99995000f;
    const float expect[4][8] = {
        {0, 0, 1, 1, 0, 0, 1, 1},             // (r 0, c 0)
        {s1, s01, c1, c01, 0, 0, 1, 1},       // (r 0, c 1)
        {0, 0, 1, 1, s1, s01, c1, c01},       // (r 1, c 0)
        {s1, s01, c1, c01, s1, s01, c1, c01}, // (r 1, c 1)
    };
    float out[4 * 8];
    sincos_pos_embed_2d(out, 2, 8);
    for (int p = 0; p < 4; p++)
        for (int d = 0; d < 8; d++)
            assert_float_equal(out[p * 8 + d], expect[p][d], 1e-7);
}

// A larger table keeps the structure: column code first, row code second.
static void test_sincos_structure(void **state) {
    (void)state;
    int grid = 3, D = 16;
    float out[9 * 16];
    sincos_pos_embed_2d(out, grid, D);
    for (int r = 0; r < grid; r++)
        for (int c = 0; c < grid; c++)
            for (int i = 0; i < D / 4; i++) {
                double omega = pow(10000.0, -(double)i / (D / 4));
                const float *row = out + (r * grid + c) * D;
                assert_float_equal(row[i], sin(c * omega), 1e-7);
                assert_float_equal(row[D / 4 + i], cos(c * omega), 1e-7);
                assert_float_equal(row[D / 2 + i], sin(r * omega), 1e-7);
                assert_float_equal(row[3 * D / 4 + i], cos(r * omega), 1e-7);
            }
}

// ---- embedding ----------------------------------------------------------------------------

typedef struct {
    int32_t *ids;
    float *wte, *wpe, *out, *w;
    int B, L, D;
} embedding_case;

static double embedding_loss(void *ctx) {
    embedding_case *c = ctx;
    embedding_forward(c->out, c->ids, c->wte, c->wpe, c->B, c->L, c->D);
    return gradcheck_dot(c->w, c->out, (size_t)c->B * c->L * c->D);
}

static void check_embedding(int with_positions) {
    enum { V = 11, B = 2, L = 5, D = 13 };
    printf("embedding V=%d B=%d L=%d D=%d positions=%d\n", V, B, L, D, with_positions);
    int32_t ids[B * L] = {3, 7, 3, 0, 10, 7, 7, 1, 3, 2}; // repeated ids accumulate
    gradcheck_rng rng = test_rng(71);
    embedding_case c = {ids,
                        test_floats(V * D),
                        with_positions ? test_floats(L * D) : NULL,
                        test_floats(B * L * D),
                        test_floats(B * L * D),
                        B,
                        L,
                        D};
    gradcheck_fill(&rng, c.wte, V * D, -1.0f, 1.0f);
    if (c.wpe) gradcheck_fill(&rng, c.wpe, L * D, -1.0f, 1.0f);
    gradcheck_fill(&rng, c.w, B * L * D, -1.0f, 1.0f);
    embedding_loss(&c);
    for (int t = 0; t < B * L; t++)
        for (int d = 0; d < D; d++) {
            float expect = c.wte[ids[t] * D + d] + (c.wpe ? c.wpe[(t % L) * D + d] : 0.0f);
            assert_true(c.out[t * D + d] == expect);
        }
    float *dwte = test_prefilled(V * D), *dwpe = test_prefilled(L * D);
    embedding_backward(dwte, c.wpe ? dwpe : NULL, c.w, ids, B, L, D);
    expect_gradient("dwte", embedding_loss, &c, c.wte, V * D, dwte, FD_STEP_LINEAR);
    if (c.wpe) expect_gradient("dwpe", embedding_loss, &c, c.wpe, L * D, dwpe, FD_STEP_LINEAR);
    free(dwte), free(dwpe), free(c.wte), free(c.wpe), free(c.out), free(c.w);
}

static void test_embedding(void **state) {
    (void)state;
    check_embedding(1);
    check_embedding(0);
}

// ---- mean pooling ---------------------------------------------------------------------------

typedef struct {
    float *inp, *out, *w;
    int B, N, D;
} meanpool_case;

static double meanpool_loss(void *ctx) {
    meanpool_case *c = ctx;
    meanpool_forward(c->out, c->inp, c->B, c->N, c->D);
    return gradcheck_dot(c->w, c->out, (size_t)c->B * c->D);
}

static void test_meanpool(void **state) {
    (void)state;
    enum { B = 3, N = 7, D = 13 };
    printf("meanpool B=%d N=%d D=%d\n", B, N, D);
    gradcheck_rng rng = test_rng(81);
    meanpool_case c = {test_floats(B * N * D), test_floats(B * D), test_floats(B * D), B, N, D};
    gradcheck_fill(&rng, c.inp, B * N * D, -1.0f, 1.0f);
    gradcheck_fill(&rng, c.w, B * D, -1.0f, 1.0f);
    double ref[B * D];
    meanpool_loss(&c);
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            ref[b * D + d] = 0.0;
            for (int n = 0; n < N; n++)
                ref[b * D + d] += c.inp[(b * N + n) * D + d] / (double)N;
        }
    expect_forward("out", c.out, ref, B * D);
    float *dinp = test_prefilled(B * N * D);
    meanpool_backward(dinp, c.w, B, N, D);
    expect_gradient("dinp", meanpool_loss, &c, c.inp, B * N * D, dinp, FD_STEP_LINEAR);
    free(dinp), free(c.inp), free(c.out), free(c.w);
}

// ---- gather / scatter -----------------------------------------------------------------------

typedef struct {
    float *inp, *out, *w;
    const int *idx;
    int B, N, n, D;
} gather_case;

static double gather_loss(void *ctx) {
    gather_case *c = ctx;
    gather_rows(c->out, c->inp, c->idx, c->B, c->N, c->n, c->D);
    return gradcheck_dot(c->w, c->out, (size_t)c->B * c->n * c->D);
}

// Unsorted indices with a repeat (row 4 twice, rows 1, 3, 5 never): the scatter-add is the
// gather's backward and must add both copies into row 4 and leave the unused rows alone.
static void test_gather_scatter(void **state) {
    (void)state;
    enum { B = 2, N = 6, n = 4, D = 5 };
    static const int idx[n] = {4, 0, 2, 4};
    printf("gather/scatter B=%d N=%d n=%d D=%d\n", B, N, n, D);
    gradcheck_rng rng = test_rng(91);
    gather_case c = {
        test_floats(B * N * D), test_floats(B * n * D), test_floats(B * n * D), idx, B, N, n, D};
    gradcheck_fill(&rng, c.inp, B * N * D, -1.0f, 1.0f);
    gradcheck_fill(&rng, c.w, B * n * D, -1.0f, 1.0f);
    gather_loss(&c);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++)
            assert_memory_equal(c.out + (b * n + j) * D, c.inp + (b * N + idx[j]) * D,
                                D * sizeof(float));
    float *dinp = test_prefilled(B * N * D);
    scatter_add_rows(dinp, c.w, idx, B, N, n, D);
    expect_gradient("dinp", gather_loss, &c, c.inp, B * N * D, dinp, FD_STEP_LINEAR);
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            assert_true(dinp[(b * N + 1) * D + d] == GRAD_PREFILL);
            assert_float_equal(dinp[(b * N + 4) * D + d] - GRAD_PREFILL,
                               c.w[(b * n + 0) * D + d] + c.w[(b * n + 3) * D + d], 1e-6);
        }
    free(dinp), free(c.inp), free(c.out), free(c.w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patchify_hand_made), cmocka_unit_test(test_patchify_batch),
        cmocka_unit_test(test_sincos_hand_values), cmocka_unit_test(test_sincos_structure),
        cmocka_unit_test(test_embedding),          cmocka_unit_test(test_meanpool),
        cmocka_unit_test(test_gather_scatter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
