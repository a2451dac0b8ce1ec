// Checkpoint save/load speed: the real tensor table of a preset (params + EMA + Adam m, v, as
// tijepa train saves it), or a synthetic buffer of a given size, saved with ckpt_save (HDF5,
// Fletcher-32, fsync, rename, latest) and loaded back with every checksum verified.
// Compare the save rate with the disk's: dd if=/dev/zero of=X bs=1M count=1000 conv=fdatasync
//
// usage: bench_ckpt [--preset base] [--mode scratch|paper] [--mb N] [--dir DIR] [--repeats R]
//                   [--keep]  (keep the last checkpoint for inspection)
//   --mb N  a synthetic content of N MB in 384x1536 tensors over 4 groups, instead of a preset
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "launch.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static int64_t content_bytes(const CkptContent *c) {
    int64_t n = 0;
    for (int i = 0; i < c->n_tensors; i++)
        n += ckpt_tensor_numel(&c->tensors[i]);
    return n * (int64_t)sizeof(float);
}

// A synthetic content of about mb MB: 384x1536 tensors spread over the four groups.
static float *synthetic_content(CkptContent *c, double mb) {
    const int64_t rows = 384, cols = 1536, per = rows * cols;
    int64_t n_tensors = (int64_t)(mb * 1e6 / (double)(per * 4)) + 1;
    float *buf = malloc((size_t)(n_tensors * per) * sizeof(float));
    if (!buf) return NULL;
    for (int64_t i = 0; i < n_tensors * per; i++)
        buf[i] = (float)(i % 1000) * 0.001f;
    const char *groups[] = {"params", "ema", "optim/m", "optim/v"};
    char err[CKPT_ERR_LEN], name[64];
    for (int64_t t = 0; t < n_tensors; t++) {
        int64_t shape[2] = {rows, cols};
        snprintf(name, sizeof(name), "blocks.%lld.mlp.fc1.weight", (long long)(t / 4));
        if (ckpt_add_tensor(c, groups[t % 4], name, 2, shape, buf + t * per, err, sizeof(err))) {
            fprintf(stderr, "bench_ckpt: %s\n", err);
            exit(1);
        }
    }
    return buf;
}

int main(int argc, char **argv) {
    const char *preset = "base", *mode = "scratch", *dir = "/tmp/tijepa-bench-ckpt";
    double mb = 0;
    int repeats = 3, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--keep")) {
            keep = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_ckpt: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--preset"))
            preset = argv[++i];
        else if (!strcmp(argv[i], "--mode"))
            mode = argv[++i];
        else if (!strcmp(argv[i], "--mb"))
            mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[++i];
        else if (!strcmp(argv[i], "--repeats"))
            repeats = atoi(argv[++i]);
        else {
            fprintf(stderr, "bench_ckpt: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char err[CKPT_ERR_LEN];
    CkptContent c;
    ckpt_content_init(&c);
    Model *m = NULL;
    float *synthetic = NULL;
    char what[128];
    if (mb > 0) {
        synthetic = synthetic_content(&c, mb);
        if (!synthetic) {
            fprintf(stderr, "bench_ckpt: out of memory for %.0f MB\n", mb);
            return 1;
        }
        snprintf(what, sizeof(what), "synthetic %.0f MB", mb);
    } else {
        ModelConfig cfg = {0};
        if (model_preset(&cfg.shape, preset)) {
            fprintf(stderr, "bench_ckpt: unknown preset %s\n", preset);
            return 2;
        }
        cfg.mode = !strcmp(mode, "paper") ? MODE_PAPER : MODE_SCRATCH;
        cfg.local_batch = 1;
        cfg.temperature = 0.05f;
        m = model_new(&cfg, err, sizeof(err));
        if (!m) {
            fprintf(stderr, "bench_ckpt: %s\n", err);
            return 1;
        }
        model_init_weights(m, 0);
        if (model_ckpt_content(&c, m, 1, err, sizeof(err))) {
            fprintf(stderr, "bench_ckpt: %s\n", err);
            return 1;
        }
        snprintf(what, sizeof(what), "%s/%s: %zu params, %zu EMA, %zu x2 Adam", preset, mode,
                 model_num_params(m), model_ema_count(m), model_trainable_count(m));
    }
    ckpt_set_str(&c, "config", "[bench]\n", err, sizeof(err));
    double mbytes = (double)content_bytes(&c) / 1e6;
    printf("content          %s\n", what);
    printf("tensors          %d, %.1f MB of float32\n", c.n_tensors, mbytes);

    double best_save = 1e30, sum_save = 0, best_load = 1e30, save_cpu = 0;
    char path[4096];
    struct stat st = {0};
    for (int r = 0; r < repeats; r++) {
        double t0 = now(), c0 = cpu_seconds();
        if (ckpt_save(dir, r + 1, &c, 1, err, sizeof(err))) {
            fprintf(stderr, "bench_ckpt: %s\n", err);
            return 1;
        }
        double dt = now() - t0;
        save_cpu += cpu_seconds() - c0;
        sum_save += dt;
        if (dt < best_save) best_save = dt;
        ckpt_step_path(path, sizeof(path), dir, r + 1);
        stat(path, &st);
        t0 = now();
        if (ckpt_load(path, &c, 0, err, sizeof(err))) {
            fprintf(stderr, "bench_ckpt: %s\n", err);
            return 1;
        }
        dt = now() - t0;
        if (dt < best_load) best_load = dt;
    }
    printf("file size        %.1f MB\n", (double)st.st_size / 1e6);
    printf("save (fsync'd)   best %.3f s, mean %.3f s over %d -> %.0f MB/s\n", best_save,
           sum_save / repeats, repeats, mbytes / best_save);
    printf("save CPU time    %.3f s per save (copies, Fletcher-32, write calls)\n",
           save_cpu / repeats);
    printf("load (verified)  best %.3f s -> %.0f MB/s (page cache warm)\n", best_load,
           mbytes / best_load);
    if (keep) {
        printf("kept             %s\n", path);
    } else {
        unlink(path);
        char latest[4200];
        snprintf(latest, sizeof(latest), "%s/latest", dir);
        unlink(latest);
        rmdir(dir);
    }
    ckpt_content_free(&c);
    free(synthetic);
    if (m) model_free(m);
    return 0;
}
