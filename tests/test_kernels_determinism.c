// Kernel tests, determinism: the same inputs give the same bits whatever the number of OpenMP
// and OpenBLAS threads (1, 2, 3), for the kernels whose reductions could depend on scheduling:
// linear (sgemm + bias column sums), attention (per-head parallel and OpenBLAS-threaded paths),
// LayerNorm (weight/bias column sums) and the embedding scatter-add (repeated token ids).
// Shapes are large enough that OpenMP regions and OpenBLAS threading actually engage.
#include <cblas.h>
#include <omp.h>

#include "kernel_test_util.h"
#include "model.h"

static const int thread_counts[] = {1, 2, 3};
#define RUNS ((int)(sizeof thread_counts / sizeof thread_counts[0]))

static void set_threads(int n) {
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

// Asserts runs[1..] equal runs[0] bit for bit.
static void expect_same_bits(const char *name, float *const runs[RUNS], size_t n) {
    for (int r = 1; r < RUNS; r++) {
        if (memcmp(runs[0], runs[r], n * sizeof(float)) != 0)
            printf("  %s differs between %d and %d threads\n", name, thread_counts[0],
                   thread_counts[r]);
        assert_memory_equal(runs[0], runs[r], n * sizeof(float));
    }
    printf("  %-22s identical for 1, 2 and 3 threads (%zu values)\n", name, n);
}

static float *random_floats(gradcheck_rng *rng, size_t n) {
    float *x = test_floats(n);
    gradcheck_fill(rng, x, n, -1.0f, 1.0f);
    return x;
}

static void free_runs(float *runs[RUNS]) {
    for (int r = 0; r < RUNS; r++)
        free(runs[r]);
}

static void test_linear_deterministic(void **state) {
    (void)state;
    enum { N = 256, IN = 96, OUT = 384 }; // (cblas.h brings complex.h's IN)
    gradcheck_rng rng = test_rng(101);
    float *inp = random_floats(&rng, N * IN), *weight = random_floats(&rng, OUT * IN);
    float *bias = random_floats(&rng, OUT), *dout = random_floats(&rng, N * OUT);
    float *out[RUNS], *dinp[RUNS], *dweight[RUNS], *dbias[RUNS];
    for (int r = 0; r < RUNS; r++) {
        set_threads(thread_counts[r]);
        out[r] = test_floats(N * OUT);
        dinp[r] = test_prefilled(N * IN), dweight[r] = test_prefilled(OUT * IN);
        dbias[r] = test_prefilled(OUT);
        linear_forward(out[r], inp, weight, bias, N, IN, OUT);
        linear_backward(dinp[r], dweight[r], dbias[r], dout, inp, weight, N, IN, OUT);
    }
    set_threads(2);
    expect_same_bits("linear out", out, N * OUT);
    expect_same_bits("linear dinp", dinp, N * IN);
    expect_same_bits("linear dweight", dweight, OUT * IN);
    expect_same_bits("linear dbias", dbias, OUT);
    free_runs(out), free_runs(dinp), free_runs(dweight), free_runs(dbias);
    free(inp), free(weight), free(bias), free(dout);
}

// Self-attention on a fused qkv buffer with a padding mask.
static void check_attention_deterministic(int B, int N, int D, int heads) {
    printf("attention B=%d N=%d D=%d heads=%d\n", B, N, D, heads);
    gradcheck_rng rng = test_rng(102);
    size_t qkv_len = (size_t)B * N * 3 * D, out_len = (size_t)B * N * D;
    size_t probs_len = (size_t)B * heads * N * N;
    float *qkv = random_floats(&rng, qkv_len), *dout = random_floats(&rng, out_len);
    uint8_t *valid = test_alloc((size_t)B * N);
    for (int i = 0; i < B * N; i++)
        valid[i] = (i % N) < N - 3 * (i / N); // pad 3·b keys
    float *scratch = test_floats(probs_len);
    float *out[RUNS], *probs[RUNS], *dqkv[RUNS];
    for (int r = 0; r < RUNS; r++) {
        set_threads(thread_counts[r]);
        out[r] = test_floats(out_len), probs[r] = test_floats(probs_len);
        dqkv[r] = test_prefilled(qkv_len);
        attention_forward(out[r], probs[r], qkv, qkv + D, qkv + 2 * D, valid, B, N, N, D, heads,
                          3 * D, 3 * D);
        attention_backward(dqkv[r], dqkv[r] + D, dqkv[r] + 2 * D, scratch, dout, qkv, qkv + D,
                           qkv + 2 * D, probs[r], B, N, N, D, heads, 3 * D, 3 * D);
    }
    set_threads(2);
    expect_same_bits("attention out", out, out_len);
    expect_same_bits("attention probs", probs, probs_len);
    expect_same_bits("attention dqkv", dqkv, qkv_len);
    free_runs(out), free_runs(probs), free_runs(dqkv);
    free(qkv), free(dout), free(valid), free(scratch);
}

static void test_attention_deterministic(void **state) {
    (void)state;
    check_attention_deterministic(2, 40, 64, 4);  // (batch, head) pairs spread over threads
    check_attention_deterministic(1, 160, 64, 1); // one pair: OpenBLAS threads each sgemm
}

static void test_layernorm_deterministic(void **state) {
    (void)state;
    enum { N = 256, D = 192 };
    gradcheck_rng rng = test_rng(103);
    float *inp = random_floats(&rng, N * D), *weight = random_floats(&rng, D);
    float *bias = random_floats(&rng, D), *dout = random_floats(&rng, N * D);
    float *mean = test_floats(N), *rstd = test_floats(N);
    float *out[RUNS], *dinp[RUNS], *dweight[RUNS], *dbias[RUNS];
    for (int r = 0; r < RUNS; r++) {
        set_threads(thread_counts[r]);
        out[r] = test_floats(N * D), dinp[r] = test_prefilled(N * D);
        dweight[r] = test_prefilled(D), dbias[r] = test_prefilled(D);
        layernorm_forward(out[r], mean, rstd, inp, weight, bias, N, D);
        layernorm_backward(dinp[r], dweight[r], dbias[r], dout, inp, weight, mean, rstd, N, D);
    }
    set_threads(2);
    expect_same_bits("layernorm out", out, N * D);
    expect_same_bits("layernorm dinp", dinp, N * D);
    expect_same_bits("layernorm dweight", dweight, D);
    expect_same_bits("layernorm dbias", dbias, D);
    free_runs(out), free_runs(dinp), free_runs(dweight), free_runs(dbias);
    free(inp), free(weight), free(bias), free(dout), free(mean), free(rstd);
}

static void test_embedding_deterministic(void **state) {
    (void)state;
    enum { V = 50, B = 8, L = 32, D = 192 };
    gradcheck_rng rng = test_rng(104);
    int32_t ids[B * L];
    for (int i = 0; i < B * L; i++)
        ids[i] = (int32_t)(gradcheck_uniform(&rng) * V); // many repeats
    float *dout = random_floats(&rng, B * L * D);
    float *dwte[RUNS], *dwpe[RUNS];
    for (int r = 0; r < RUNS; r++) {
        set_threads(thread_counts[r]);
        dwte[r] = test_prefilled(V * D), dwpe[r] = test_prefilled(L * D);
        embedding_backward(dwte[r], dwpe[r], dout, ids, B, L, D);
    }
    set_threads(2);
    expect_same_bits("embedding dwte", dwte, V * D);
    expect_same_bits("embedding dwpe", dwpe, L * D);
    free_runs(dwte), free_runs(dwpe), free(dout);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_deterministic),
        cmocka_unit_test(test_attention_deterministic),
        cmocka_unit_test(test_layernorm_deterministic),
        cmocka_unit_test(test_embedding_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
