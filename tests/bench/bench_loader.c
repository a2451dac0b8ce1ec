// Loader benchmark: decoded samples per second of the streaming pipeline (tar read, shuffle,
// PNG decode, resize + normalise, tokenise) on synth shards, pinned to ONE core (the prefetch
// thread and the consuming thread share it). Sizes: 32 px (tiny preset) and 64 px (small).
// Targets of the data issue: ≥ 5,000 samples/s at 32 px, ≥ 2,000 at 64 px.
// Usage: bench_loader [SECONDS_PER_CASE]   (default 3)
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    double samples_per_s;
    long batches;
} Result;

static int run_case(const char *dir, int size, double seconds, Result *res) {
    char err[1024], spec[1100], vocab[1100];
    snprintf(spec, sizeof(spec), "%s/s%d", dir, size);
    snprintf(vocab, sizeof(vocab), "%s/s%d/vocab.txt", dir, size);
    SynthOptions so;
    synth_options_default(&so);
    so.out_dir = spec, so.n_train = 4000, so.n_val = 0, so.per_shard = 500, so.image_size = size;
    if (synth_write(&so, err, sizeof(err))) {
        fprintf(stderr, "bench_loader: %s\n", err);
        return -1;
    }
    Tokenizer *tok = tokenizer_load(vocab, err, sizeof(err));
    if (!tok) {
        fprintf(stderr, "bench_loader: %s\n", err);
        return -1;
    }
    StreamOptions o;
    stream_options_default(&o);
    o.spec = spec, o.tokenizer = tok, o.image_size = size, o.max_text_len = 32;
    o.global_batch = 64, o.shuffle_buffer = 1000, o.prefetch = 2;
    Stream *s = stream_open(&o, NULL, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "bench_loader: %s\n", err);
        tokenizer_free(tok);
        return -1;
    }
    const Batch *b;
    for (int i = 0; i < 5; i++) // warm-up: fill the shuffle buffer and the prefetch queue
        if (stream_next(s, &b, NULL, err, sizeof(err))) goto fail;
    double t0 = now_s();
    long n = 0;
    float checksum = 0;
    while (now_s() - t0 < seconds) {
        if (stream_next(s, &b, NULL, err, sizeof(err))) goto fail;
        checksum += b->images[0] + (float)b->tokens[1]; // the consumer reads the batch
        n++;
    }
    double dt = now_s() - t0;
    res->batches = n;
    res->samples_per_s = n * (double)o.global_batch / dt;
    if (checksum == 12345.678f) printf(" "); // keeps the reads
    stream_close(s);
    tokenizer_free(tok);
    return 0;
fail:
    fprintf(stderr, "bench_loader: %s\n", err);
    stream_close(s);
    tokenizer_free(tok);
    return -1;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    if (!(seconds > 0)) seconds = 3.0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    int pinned = sched_setaffinity(0, sizeof(one), &one) == 0; // threads made later inherit it
    char dir[] = "/tmp/tijepa-bench-loader-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_loader: mkdtemp");
        return 1;
    }
    printf("bench_loader: synth shards (4000 samples, 500 per shard), global batch 64, shuffle "
           "buffer 1000, prefetch 2, %s\n",
           pinned ? "pinned to one core" : "NOT pinned (sched_setaffinity failed)");
    printf("%-8s %14s %10s %12s %8s\n", "size", "samples/s", "batches", "us/sample", "target");
    int sizes[] = {32, 64}, targets[] = {5000, 2000}, rc = 0;
    for (int i = 0; i < 2; i++) {
        Result r;
        if (run_case(dir, sizes[i], seconds, &r)) {
            rc = 1;
            break;
        }
        printf("%-8s %14.0f %10ld %12.1f %8d %s\n", sizes[i] == 32 ? "32 px" : "64 px",
               r.samples_per_s, r.batches, 1e6 / r.samples_per_s, targets[i],
               r.samples_per_s >= targets[i] ? "met" : "MISSED");
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "bench_loader: could not remove %s\n", dir);
    return rc;
}
