// Overlap of the gradient allreduce with the backward, on a simulated backward: LAYERS layers of
// busy compute, run from the last layer to the first; after each layer its two tensors (weight,
// bias) are marked ready. Run with mpirun -n 2. Three modes, a few steps each:
//   fine:        buckets_progress after every layer and every ~1 ms inside a layer's compute
//                (as if called between the kernels of a layer);
//   per-layer:   buckets_progress after every layer;
//   none:        no MPI call during the backward, so Open MPI advances nothing until the wait.
// Checks (exit 1 otherwise): every bucket started before the backward ended, bucket 0 started
// before the last layer's compute began, and the gradients are the exact mean. Prints the
// timestamps and the exposed communication; it asserts orderings only, never durations.
// Usage: mpi_overlap_demo [layer_ms (default 8)] [bucket_kb (default 2048)]
#include <stdio.h>
#include <stdlib.h>

#include "dist.h"

#define LAYERS 16
#define WEIGHT_FLOATS (192 * 1024)
#define BIAS_FLOATS 256
#define LAYER_FLOATS (WEIGHT_FLOATS + BIAS_FLOATS)
#define STEPS 4 // step 0 warms up and is not counted in the figures
#define MAX_RANKS 8

static float grad[LAYERS * LAYER_FLOATS];
static float work[4096];

// Stands in for a layer's backward: writes its gradients (rank + layer + step, so that the
// mean is exact), then computes until layer_s seconds have passed, calling progress every
// progress_s seconds if that is > 0.
static void layer_backward(GradBuckets *b, int layer, int rank, int step, double layer_s,
                           double progress_s) {
    float *g = grad + (size_t)layer * LAYER_FLOATS;
    for (size_t i = 0; i < LAYER_FLOATS; i++)
        g[i] = (float)(rank + layer + step);
    double now = dist_time(), until = now + layer_s, next_progress = now + progress_s;
    while ((now = dist_time()) < until) {
        for (int i = 0; i < 4096; i++)
            work[i] = work[i] * 0.999f + 0.001f * (float)i;
        if (progress_s > 0 && now >= next_progress) {
            buckets_progress(b);
            next_progress = now + progress_s;
        }
    }
}

enum { MODE_FINE, MODE_PER_LAYER, MODE_NONE };
static const char *mode_names[] = {"fine", "per-layer", "none"};

typedef struct {
    double backward_s, exposed_s, tail_s; // tail: last completion seen after the backward
    int started_in_backward, done_in_backward, n_buckets;
} StepFigures;

static StepFigures run_step(Dist *d, GradBuckets *b, int step, int mode, double layer_s,
                            int verbose) {
    double layer_begin[LAYERS];
    buckets_reset(b);
    for (int layer = LAYERS - 1; layer >= 0; layer--) {
        layer_begin[layer] = buckets_clock(b);
        layer_backward(b, layer, d->rank, step, layer_s, mode == MODE_FINE ? 1e-3 : 0.0);
        buckets_mark_ready(b, 2 * layer + 1); // bias
        buckets_mark_ready(b, 2 * layer);     // weight
        if (mode != MODE_NONE) buckets_progress(b);
    }
    double backward_end = buckets_clock(b);
    buckets_wait_all(b);

    BucketStats st;
    buckets_stats(b, &st);
    StepFigures f = {backward_end, st.exposed_s, 0.0, 0, 0, st.n_buckets};
    for (int k = 0; k < st.n_buckets; k++) {
        f.started_in_backward += st.start_s[k] < backward_end;
        f.done_in_backward += st.done_s[k] < backward_end;
        if (st.done_s[k] - backward_end > f.tail_s) f.tail_s = st.done_s[k] - backward_end;
        if (st.start_s[k] >= backward_end)
            dist_abort(d, "bucket %d started at %.6f s, after the backward ended at %.6f s", k,
                       st.start_s[k], backward_end);
    }
    if (!(st.start_s[0] < layer_begin[0]))
        dist_abort(d, "bucket 0 started at %.6f s, not before the last layer began at %.6f s",
                   st.start_s[0], layer_begin[0]);
    float mean_rank = 0.5f * (float)(d->world - 1);
    for (int layer = 0; layer < LAYERS; layer++) {
        const float *g = grad + (size_t)layer * LAYER_FLOATS;
        float want = mean_rank + (float)(layer + step);
        if (g[0] != want || g[LAYER_FLOATS - 1] != want)
            dist_abort(d, "layer %d: averaged gradient %g, expected %g", layer, g[0], want);
    }
    if (verbose && d->rank == 0) {
        printf("  bucket  tensors  MB     start_ms  done_ms   (backward ended at %.1f ms, wait "
               "entered at %.1f ms)\n",
               1e3 * backward_end, 1e3 * st.wait_begin_s);
        for (int k = 0; k < st.n_buckets; k++)
            printf("  %6d  %3d..%-3d %5.2f  %8.1f  %8.1f%s\n", k, st.tensor_lo[k], st.tensor_hi[k],
                   st.count[k] * 4.0 / 1048576.0, 1e3 * st.start_s[k], 1e3 * st.done_s[k],
                   st.done_s[k] < backward_end ? "  (done during backward)" : "");
    }
    return f;
}

int main(int argc, char **argv) {
    Dist *d = dist_init(&argc, &argv);
    double layer_s = (argc > 1 ? atof(argv[1]) : 8.0) / 1e3;
    size_t bucket_bytes = (size_t)(argc > 2 ? atol(argv[2]) : 2048) * 1024;
    size_t offsets[2 * LAYERS], sizes[2 * LAYERS];
    for (int layer = 0; layer < LAYERS; layer++) {
        offsets[2 * layer] = (size_t)layer * LAYER_FLOATS;
        sizes[2 * layer] = WEIGHT_FLOATS;
        offsets[2 * layer + 1] = (size_t)layer * LAYER_FLOATS + WEIGHT_FLOATS;
        sizes[2 * layer + 1] = BIAS_FLOATS;
    }
    GradBuckets *b = buckets_new(d, grad, sizeof grad / sizeof grad[0], bucket_bytes, offsets,
                                 sizes, 2 * LAYERS);
    if (!b) dist_abort(d, "buckets_new failed");
    if (d->rank == 0)
        printf("overlap demo: %d ranks, %d layers x %.1f ms compute, %.1f MB of gradients, "
               "buckets of %.1f MB\n",
               d->world, LAYERS, 1e3 * layer_s, sizeof grad / 1048576.0, bucket_bytes / 1048576.0);
    if (d->world > MAX_RANKS) dist_abort(d, "the demo reports at most %d ranks", MAX_RANKS);
    for (int mode = MODE_FINE; mode <= MODE_NONE; mode++) {
        // Per rank, summed over the counted steps: backward, exposed, tail, buckets done in
        // backward, buckets; gathered by a sum over slots that only their rank fills.
        enum { FIGS = 5 };
        double figs[MAX_RANKS * FIGS] = {0};
        double *mine = figs + FIGS * d->rank;
        for (int step = 0; step < STEPS; step++) {
            if (d->rank == 0 && step == STEPS - 1)
                printf("progress %s, step %d, rank 0:\n", mode_names[mode], step);
            StepFigures f = run_step(d, b, step, mode, layer_s, step == STEPS - 1);
            if (step == 0) continue;
            mine[0] += f.backward_s;
            mine[1] += f.exposed_s;
            mine[2] += f.tail_s;
            mine[3] += f.done_in_backward;
            mine[4] += f.n_buckets;
        }
        dist_sum_doubles(d, figs, FIGS * d->world);
        for (int r = 0; r < d->world && d->rank == 0; r++) {
            const double *x = figs + FIGS * r;
            printf("progress %-9s rank %d, mean of %d steps: backward %6.1f ms, exposed %5.2f ms, "
                   "last completion %5.2f ms after the backward, buckets complete during the "
                   "backward %2.0f/%.0f\n",
                   mode_names[mode], r, STEPS - 1, 1e3 * x[0] / (STEPS - 1),
                   1e3 * x[1] / (STEPS - 1), 1e3 * x[2] / (STEPS - 1), x[3], x[4]);
        }
    }
    buckets_free(b);
    dist_finalize(d);
    return 0;
}
