// Single-process training-step throughput: samples/s, achieved GFLOP/s (analytic FLOPs) and
// peak RSS for a preset and mode on random inputs. Not a test: it prints figures.
// usage: bench_step [--preset tiny] [--mode paper|scratch] [--threads N] [--steps N]
//                   [--warmup N] [--batch B] [--nce W] [--negatives K] [--masks-out FILE]
// The last line, "RESULT {json}", is for tests/bench/bench_vs_torch.py. --masks-out writes the
// context and target index lists of every step (warm-up first), one JSON object per line, so
// that the PyTorch benchmark can run exactly the same work.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// User + system CPU seconds of this process (all threads).
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

// Minor page faults so far (first touches of fresh memory: the kernel clears each page).
static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; // kilobytes on Linux
}

static void write_list(FILE *f, const char *key, const int *idx, int n) {
    fprintf(f, "\"%s\": [", key);
    for (int i = 0; i < n; i++)
        fprintf(f, i ? ", %d" : "%d", idx[i]);
    fprintf(f, "]");
}

int main(int argc, char **argv) {
    const char *preset = "tiny", *mode = "paper", *masks_out = NULL;
    int threads = 1, steps = 20, warmup = 2, batch = 0, K = 4;
    float nce = 1.0f;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset"))
            preset = argv[i + 1];
        else if (!strcmp(argv[i], "--mode"))
            mode = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--nce"))
            nce = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--negatives"))
            K = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--masks-out"))
            masks_out = argv[i + 1];
        else {
            fprintf(stderr, "bench_step: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || warmup < 0) {
        fprintf(stderr, "bench_step: --steps must be ≥ 1 and --warmup ≥ 0\n");
        return 2;
    }
    ModelConfig cfg = {0};
    if (model_preset(&cfg.shape, preset)) {
        fprintf(stderr, "bench_step: unknown preset %s\n", preset);
        return 2;
    }
    cfg.mode = !strcmp(mode, "scratch") ? MODE_SCRATCH : MODE_PAPER;
    cfg.local_batch = batch ? batch : cfg.shape.batch;
    cfg.nce_weight = nce;
    cfg.negatives = nce > 0 ? K : 0;
    cfg.temperature = 0.05f;
    model_set_threads(threads);
    FILE *mf = NULL;
    if (masks_out && !(mf = fopen(masks_out, "w"))) {
        perror(masks_out);
        return 1;
    }
    char err[256];
    Model *m = model_new(&cfg, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "bench_step: %s\n", err);
        return 1;
    }
    model_init_weights(m, 0);
    int B = cfg.local_batch, S = cfg.shape.image_size, L = cfg.shape.txt_len,
        grid = S / cfg.shape.patch;
    float *img = malloc(sizeof(float) * (size_t)B * 3 * S * S);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)B * L);
    uint8_t *valid = malloc((size_t)B * L);
    int *neg = malloc(sizeof(int) * (size_t)B * (K + 1));
    if (!img || !tok || !valid || !neg) {
        fprintf(stderr, "bench_step: out of memory\n");
        return 1;
    }
    Rng r;
    rng_init(&r, 1, 0, 0, 0);
    for (size_t i = 0; i < (size_t)B * 3 * S * S; i++)
        img[i] = rng_normal(&r);
    for (int i = 0; i < B * L; i++) {
        valid[i] = (i % L) < L / 2;
        tok[i] = valid[i] ? 5 + (int)(rng_next(&r) % (uint64_t)(cfg.shape.vocab - 5)) : 0;
    }
    MaskSet ms;
    maskset_alloc(&ms, grid);
    MaskConfig mc;
    mask_config_default(&mc);
    OptimConfig oc;
    optim_config_default(&oc);
    oc.total_steps = steps + warmup;
    ModelBatch mb = {.n = B, .images = img, .tokens = tok, .valid = valid};
    double flops = 0, t_start = now(), cpu_start = cpu_seconds();
    long faults_start = minor_faults();
    for (int t = 0; t < steps + warmup; t++) {
        if (t == warmup) {
            t_start = now();
            cpu_start = cpu_seconds();
            faults_start = minor_faults();
        }
        mask_sample(&ms, &mc, grid, 0, (uint64_t)t);
        if (mf) {
            fprintf(mf, "{\"step\": %d, ", t);
            write_list(mf, "context", ms.context, ms.n_context);
            fprintf(mf, ", ");
            write_list(mf, "target", ms.target, ms.n_target);
            fprintf(mf, "}\n");
        }
        const float *u = model_encode_text(m, &mb);
        NegativePool pool = {u, valid, B, 0, neg};
        negatives_sample(neg, B, cfg.negatives, 0, B, 0, (uint64_t)t);
        ModelLoss loss;
        model_forward_backward(m, &loss, &mb, &ms, cfg.negatives ? &pool : NULL, NULL, NULL);
        optim_step(m, &oc, t);
        if (t >= warmup) {
            StepFlops f = model_step_flops(m, B, ms.n_context, ms.n_target);
            flops += f.forward + f.backward;
        }
    }
    double dt = now() - t_start, cpu = cpu_seconds() - cpu_start;
    double faults = (double)(minor_faults() - faults_start) / steps;
    if (mf && fclose(mf)) {
        perror(masks_out);
        return 1;
    }
    long rss = peak_rss_kb();
    printf("bench_step: preset %s, mode %s, batch %d, negatives %d, threads %d: %.2f samples/s, "
           "%.3f s/step, %.2f GFLOP/step, %.2f GFLOP/s, CPU %.3f s/step, peak RSS %.1f MiB, "
           "%.0f page faults/step\n",
           preset, mode, B, cfg.negatives, threads, steps * B / dt, dt / steps, flops / steps / 1e9,
           flops / dt / 1e9, cpu / steps, rss / 1024.0, faults);
    printf("RESULT {\"preset\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"negatives\": %d, "
           "\"nce_weight\": %g, \"threads\": %d, \"steps\": %d, \"warmup\": %d, "
           "\"wall_s\": %.6f, \"cpu_s\": %.6f, \"samples_per_s\": %.4f, "
           "\"flops_per_step\": %.6e, \"gflops_per_s\": %.4f, \"peak_rss_mib\": %.2f, "
           "\"minor_faults_per_step\": %.1f}\n",
           preset, mode, B, cfg.negatives, nce, threads, steps, warmup, dt, cpu, steps * B / dt,
           flops / steps, flops / dt / 1e9, rss / 1024.0, faults);
    maskset_free(&ms);
    free(img);
    free(tok);
    free(valid);
    free(neg);
    model_free(m);
    return 0;
}
