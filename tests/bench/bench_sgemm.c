// OpenBLAS sgemm rate at the shapes of a preset's linear layers, the denominator of model FLOP
// utilisation (MFU). For each part that runs a backward (context crosser on B·K1·|C| tokens,
// predictor on B·K1·(|C|+|T|) tokens) the forward (NT), input-gradient (NN) and weight-gradient
// (TN) GEMMs of qkv/q, proj, fc1 and fc2 are timed; for the frozen image encoder (B·P tokens,
// paper mode) the forwards only. The rate is Σ depth·FLOPs / Σ depth·time: what the linear
// layers of one step would reach if every sgemm ran alone. Mask sizes are the mean over the
// first 10 steps of mask_sample. Not a test: it prints figures.
// usage: bench_sgemm [--preset tiny] [--threads N] [--nce W] [--negatives K] [--min-time S]
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    double flops, seconds;
} Tally;

static float *buffer(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_sgemm: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return p;
}

// Seconds per call of C[M,N] (+)= op(A)·op(B) in one layout, repeated for at least min_time.
static double time_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                        double min_time) {
    float *a = buffer((size_t)M * K), *b = buffer((size_t)K * N), *c = buffer((size_t)M * N);
    int lda = ta == CblasNoTrans ? K : M, ldb = tb == CblasNoTrans ? N : K;
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a, lda, b, ldb, 1.0f, c, N); // warm-up
    int reps = 0;
    double t0 = now(), dt;
    do {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a, lda, b, ldb, 1.0f, c, N);
        reps++;
        dt = now() - t0;
    } while (dt < min_time);
    free(a);
    free(b);
    free(c);
    return dt / reps;
}

// One linear layer [tokens, in] → [tokens, out], `depth` times per step.
static void linear_layer(Tally *t, int tokens, int in, int out, int depth, int backward,
                         double min_time) {
    double f = 2.0 * tokens * in * out;
    t->flops += depth * f;
    t->seconds += depth * time_gemm(CblasNoTrans, CblasTrans, tokens, out, in, min_time);
    if (!backward) return;
    t->flops += 2 * depth * f;
    t->seconds += depth * time_gemm(CblasNoTrans, CblasNoTrans, tokens, in, out, min_time);
    t->seconds += depth * time_gemm(CblasTrans, CblasNoTrans, out, in, tokens, min_time);
}

// The four linears of a block of width D with `fused` = 3 (qkv) or 1 (cross q).
static void block_layers(Tally *t, int tokens, int D, int fused, int depth, int backward,
                         double min_time) {
    linear_layer(t, tokens, D, fused * D, depth, backward, min_time);
    linear_layer(t, tokens, D, D, depth, backward, min_time);
    linear_layer(t, tokens, D, 4 * D, depth, backward, min_time);
    linear_layer(t, tokens, 4 * D, D, depth, backward, min_time);
}

int main(int argc, char **argv) {
    const char *preset = "tiny";
    int threads = 1, K = 4;
    float nce = 1.0f;
    double min_time = 0.05;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset"))
            preset = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--nce"))
            nce = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--negatives"))
            K = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--min-time"))
            min_time = strtod(argv[i + 1], NULL);
        else {
            fprintf(stderr, "bench_sgemm: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    ModelShape s;
    if (model_preset(&s, preset)) {
        fprintf(stderr, "bench_sgemm: unknown preset %s\n", preset);
        return 2;
    }
    model_set_threads(threads);
    int grid = s.image_size / s.patch, P = grid * grid, K1 = nce > 0 && K > 0 ? 1 + K : 1;
    MaskSet ms;
    MaskConfig mc;
    mask_config_default(&mc);
    if (maskset_alloc(&ms, grid)) {
        fprintf(stderr, "bench_sgemm: out of memory\n");
        return 1;
    }
    int sum_c = 0, sum_t = 0;
    for (int t = 0; t < 10; t++) {
        mask_sample(&ms, &mc, grid, 0, (uint64_t)t);
        sum_c += ms.n_context;
        sum_t += ms.n_target;
    }
    maskset_free(&ms);
    int nC = (sum_c + 5) / 10, nT = (sum_t + 5) / 10, B = s.batch, Bv = B * K1;

    Tally all = {0, 0}, img = {0, 0}, ctx = {0, 0}, pred = {0, 0};
    block_layers(&img, B * P, s.img_dim, 3, s.img_depth, 0, min_time);
    block_layers(&ctx, Bv * nC, s.cross_dim, 1, s.cross_depth, 1, min_time);
    block_layers(&pred, Bv * (nC + nT), s.pred_dim, 3, s.pred_depth, 1, min_time);
    Tally parts[3] = {img, ctx, pred};
    for (int i = 0; i < 3; i++) {
        all.flops += parts[i].flops;
        all.seconds += parts[i].seconds;
    }
    double rate = all.flops / all.seconds / 1e9;
    printf("bench_sgemm: preset %s, threads %d, |C| %d, |T| %d, K1 %d: image encoder %.1f, "
           "crosser %.1f, predictor %.1f, all linears %.1f GFLOP/s\n",
           preset, threads, nC, nT, K1, img.flops / img.seconds / 1e9,
           ctx.flops / ctx.seconds / 1e9, pred.flops / pred.seconds / 1e9, rate);
    printf("RESULT {\"preset\": \"%s\", \"threads\": %d, \"n_context\": %d, \"n_target\": %d, "
           "\"k1\": %d, \"img_gflops\": %.3f, \"ctx_gflops\": %.3f, \"pred_gflops\": %.3f, "
           "\"sgemm_gflops\": %.3f, \"blas\": \"%s\"}\n",
           preset, threads, nC, nT, K1, img.flops / img.seconds / 1e9,
           ctx.flops / ctx.seconds / 1e9, pred.flops / pred.seconds / 1e9, rate,
           openblas_get_corename());
    return 0;
}
