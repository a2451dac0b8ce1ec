// Gradient buckets: MPI_Iallreduce on spans of the gradient buffer, started during the backward
// in the same bucket order on every rank, averaged when the step waits for them.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

struct GradBuckets {
    Dist *d;
    float *grad;
    size_t n;
    int n_tensors, n_buckets;
    // Layout, fixed at buckets_new. Bucket k covers grad[offset[k], offset[k] + count[k]) and
    // tensors tensor_lo[k]..tensor_hi[k]; tensor t belongs to buckets first_bucket[t] ..
    // first_bucket[t] + n_buckets_of[t] - 1 (more than one only when t was split).
    size_t *offset, *count;
    int *tensor_lo, *tensor_hi;
    int *first_bucket, *n_buckets_of;
    // Step state.
    unsigned char *tensor_ready, *bucket_done;
    int *pending; // per bucket: tensors not yet marked ready
    MPI_Request *req;
    int *indices; // scratch for MPI_Testsome / MPI_Waitsome
    double *start_s, *done_s;
    int next_start; // buckets [0, next_start) have started
    int first_open; // every bucket below it has been seen complete
    int waited;     // buckets_wait_all ran this step
    double t0;      // MPI_Wtime at buckets_reset
    double wait_begin_s, exposed_s, scale_s;
    int started_before_wait, done_before_wait;
};

// Appends one bucket (or, with fill 0, only counts it). Tensors t_lo..t_hi are its members.
static void emit_bucket(GradBuckets *b, int fill, size_t start, size_t end, int t_lo, int t_hi) {
    int k = b->n_buckets++;
    if (!fill) return;
    b->offset[k] = start;
    b->count[k] = end - start;
    b->tensor_lo[k] = t_lo;
    b->tensor_hi[k] = t_hi;
    for (int t = t_lo; t <= t_hi; t++) {
        // Walking tensors from the last, a tensor's buckets are consecutive: the first one
        // seen is its lowest bucket index.
        if (b->n_buckets_of[t] == 0) b->first_bucket[t] = k;
        b->n_buckets_of[t]++;
    }
}

// Greedy grouping from the last tensor down. limit: soft bucket size in floats; chunk: hard
// limit of one MPI call (a tensor above it is split; a span never exceeds it).
static void form_buckets(GradBuckets *b, int fill, const size_t *offsets, const size_t *sizes,
                         size_t limit, size_t chunk) {
    b->n_buckets = 0;
    int open = 0, t_lo = 0, t_hi = 0;
    size_t start = 0, end = 0;
    for (int t = b->n_tensors - 1; t >= 0; t--) {
        size_t off = offsets[t], sz = sizes[t];
        if (sz > chunk) {
            if (open) emit_bucket(b, fill, start, end, t_lo, t_hi);
            open = 0;
            size_t pieces = (sz + chunk - 1) / chunk;
            for (size_t p = pieces; p-- > 0;) {
                size_t piece_end = p + 1 == pieces ? off + sz : off + (p + 1) * chunk;
                emit_bucket(b, fill, off + p * chunk, piece_end, t, t);
            }
            continue;
        }
        if (open) {
            size_t span = end - off;
            // A bucket of only empty tensors takes the next tensor whatever its size.
            if ((span > limit && end > start) || span > chunk) {
                emit_bucket(b, fill, start, end, t_lo, t_hi);
                open = 0;
            }
        }
        if (!open) {
            open = 1;
            end = off + sz;
            t_hi = t;
        }
        start = off;
        t_lo = t;
    }
    if (open) emit_bucket(b, fill, start, end, t_lo, t_hi);
}

static void *zalloc(size_t count, size_t size) {
    return calloc(count ? count : 1, size);
}

void buckets_free(GradBuckets *b) {
    if (!b) return;
    free(b->offset);
    free(b->count);
    free(b->tensor_lo);
    free(b->tensor_hi);
    free(b->first_bucket);
    free(b->n_buckets_of);
    free(b->tensor_ready);
    free(b->bucket_done);
    free(b->pending);
    free(b->req);
    free(b->indices);
    free(b->start_s);
    free(b->done_s);
    free(b);
}

// FNV-1a over the layout, to check that every rank formed the same buckets.
static uint64_t layout_hash(const GradBuckets *b) {
    uint64_t h = 0xcbf29ce484222325ULL;
    uint64_t words[3] = {(uint64_t)b->n_buckets, 0, 0};
    for (int k = -1; k < b->n_buckets; k++) {
        if (k >= 0) {
            words[0] = (uint64_t)k;
            words[1] = b->offset[k];
            words[2] = b->count[k];
        }
        const unsigned char *p = (const unsigned char *)words;
        for (size_t i = 0; i < sizeof words; i++)
            h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

GradBuckets *buckets_new(Dist *d, float *grad, size_t n, size_t bucket_bytes,
                         const size_t *tensor_offsets, const size_t *tensor_sizes, int n_tensors) {
    if (n_tensors < 0 || (n_tensors > 0 && (!tensor_offsets || !tensor_sizes)) || (n && !grad)) {
        fprintf(stderr, "%s:%d: buckets_new: invalid arguments (n_tensors %d)\n", __FILE__,
                __LINE__, n_tensors);
        return NULL;
    }
    for (int t = 0; t < n_tensors; t++) {
        size_t off = tensor_offsets[t], sz = tensor_sizes[t];
        if (sz > n || off > n - sz) {
            fprintf(stderr,
                    "%s:%d: buckets_new: tensor %d (offset %zu, size %zu) ends beyond the %zu "
                    "gradients\n",
                    __FILE__, __LINE__, t, off, sz, n);
            return NULL;
        }
        if (t > 0 && tensor_offsets[t - 1] + tensor_sizes[t - 1] > off) {
            fprintf(stderr,
                    "%s:%d: buckets_new: tensor %d starts at %zu, before tensor %d ends (%zu): "
                    "tensors must be in buffer order without overlap\n",
                    __FILE__, __LINE__, t, off, t - 1, tensor_offsets[t - 1] + tensor_sizes[t - 1]);
            return NULL;
        }
    }
    if (bucket_bytes == 0) bucket_bytes = DIST_BUCKET_BYTES_DEFAULT;
    size_t chunk = d->max_count;
    if (chunk == 0 || chunk > (size_t)INT_MAX) chunk = (size_t)INT_MAX;
    size_t limit = bucket_bytes / sizeof(float);
    if (limit == 0) limit = 1;
    if (limit > chunk) limit = chunk;

    GradBuckets *b = zalloc(1, sizeof *b);
    if (!b) dist_abort(d, "%s:%d: out of memory for the gradient buckets", __FILE__, __LINE__);
    b->d = d;
    b->grad = grad;
    b->n = n;
    b->n_tensors = n_tensors;
    form_buckets(b, 0, tensor_offsets, tensor_sizes, limit, chunk);
    size_t nb = (size_t)b->n_buckets, nt = (size_t)n_tensors;
    b->offset = zalloc(nb, sizeof *b->offset);
    b->count = zalloc(nb, sizeof *b->count);
    b->tensor_lo = zalloc(nb, sizeof *b->tensor_lo);
    b->tensor_hi = zalloc(nb, sizeof *b->tensor_hi);
    b->first_bucket = zalloc(nt, sizeof *b->first_bucket);
    b->n_buckets_of = zalloc(nt, sizeof *b->n_buckets_of);
    b->tensor_ready = zalloc(nt, sizeof *b->tensor_ready);
    b->bucket_done = zalloc(nb, sizeof *b->bucket_done);
    b->pending = zalloc(nb, sizeof *b->pending);
    b->req = zalloc(nb, sizeof *b->req);
    b->indices = zalloc(nb, sizeof *b->indices);
    b->start_s = zalloc(nb, sizeof *b->start_s);
    b->done_s = zalloc(nb, sizeof *b->done_s);
    if (!b->offset || !b->count || !b->tensor_lo || !b->tensor_hi || !b->first_bucket ||
        !b->n_buckets_of || !b->tensor_ready || !b->bucket_done || !b->pending || !b->req ||
        !b->indices || !b->start_s || !b->done_s)
        dist_abort(d, "%s:%d: out of memory for %zu gradient buckets", __FILE__, __LINE__, nb);
    form_buckets(b, 1, tensor_offsets, tensor_sizes, limit, chunk);

    // Different layouts on different ranks would pair unrelated allreduces: check they agree.
    uint64_t h = layout_hash(b);
    uint64_t max_and_not_min[2] = {h, ~h};
    DIST_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, max_and_not_min, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD));
    if (max_and_not_min[0] != ~max_and_not_min[1])
        dist_abort(d,
                   "%s:%d: buckets_new: the ranks formed different gradient buckets (this rank: "
                   "%d buckets over %d tensors); every rank must pass the same tensor table and "
                   "bucket size",
                   __FILE__, __LINE__, b->n_buckets, n_tensors);
    for (int k = 0; k < b->n_buckets; k++)
        b->req[k] = MPI_REQUEST_NULL;
    buckets_reset(b);
    return b;
}

double buckets_clock(const GradBuckets *b) {
    return MPI_Wtime() - b->t0;
}

void buckets_reset(GradBuckets *b) {
    if (b->next_start > 0 && !b->waited)
        dist_abort(b->d,
                   "%s:%d: buckets_reset: %d buckets were started but buckets_wait_all was not "
                   "called",
                   __FILE__, __LINE__, b->next_start);
    memset(b->tensor_ready, 0, (size_t)b->n_tensors);
    memset(b->bucket_done, 0, (size_t)b->n_buckets);
    for (int k = 0; k < b->n_buckets; k++) {
        b->pending[k] = b->tensor_hi[k] - b->tensor_lo[k] + 1;
        b->start_s[k] = -1.0;
        b->done_s[k] = -1.0;
    }
    b->next_start = 0;
    b->first_open = 0;
    b->waited = 0;
    b->wait_begin_s = b->exposed_s = b->scale_s = 0.0;
    b->started_before_wait = b->done_before_wait = 0;
    b->t0 = MPI_Wtime();
}

static void start_bucket(GradBuckets *b, int k) {
    b->start_s[k] = buckets_clock(b);
    DIST_CHECK(MPI_Iallreduce(MPI_IN_PLACE, b->grad + b->offset[k], (int)b->count[k], MPI_FLOAT,
                              MPI_SUM, MPI_COMM_WORLD, &b->req[k]));
}

// Starts, in bucket order, every bucket whose tensors are all ready and whose predecessors
// have started. A complete bucket behind an incomplete one waits: the order is the contract.
static void start_ready_buckets(GradBuckets *b) {
    while (b->next_start < b->n_buckets && b->pending[b->next_start] == 0)
        start_bucket(b, b->next_start++);
}

void buckets_mark_ready(GradBuckets *b, int tensor) {
    if (tensor < 0 || tensor >= b->n_tensors)
        dist_abort(b->d, "%s:%d: buckets_mark_ready: tensor %d outside 0..%d", __FILE__, __LINE__,
                   tensor, b->n_tensors - 1);
    if (b->waited)
        dist_abort(b->d, "%s:%d: buckets_mark_ready: tensor %d marked after buckets_wait_all",
                   __FILE__, __LINE__, tensor);
    if (b->tensor_ready[tensor])
        dist_abort(b->d, "%s:%d: buckets_mark_ready: tensor %d marked twice in one step", __FILE__,
                   __LINE__, tensor);
    b->tensor_ready[tensor] = 1;
    for (int k = b->first_bucket[tensor]; k < b->first_bucket[tensor] + b->n_buckets_of[tensor];
         k++)
        b->pending[k]--;
    start_ready_buckets(b);
}

static void note_done(GradBuckets *b, int k) {
    b->bucket_done[k] = 1;
    b->done_s[k] = buckets_clock(b);
}

static void advance_first_open(GradBuckets *b) {
    while (b->first_open < b->next_start && b->bucket_done[b->first_open])
        b->first_open++;
}

int buckets_progress(GradBuckets *b) {
    int lo = b->first_open, hi = b->next_start;
    if (lo >= hi) return 0;
    int completed = 0;
    DIST_CHECK(MPI_Testsome(hi - lo, b->req + lo, &completed, b->indices, MPI_STATUSES_IGNORE));
    if (completed != MPI_UNDEFINED)
        for (int i = 0; i < completed; i++)
            note_done(b, lo + b->indices[i]);
    advance_first_open(b);
    int in_flight = 0;
    for (int k = b->first_open; k < b->next_start; k++)
        in_flight += !b->bucket_done[k];
    return in_flight;
}

// grad span of bucket k /= world. Division (not multiplication by 1/world) rounds exactly once,
// and every rank divides the same summed bits, so the result is bit-identical across ranks.
static void average_bucket(GradBuckets *b, int k) {
    if (b->d->world == 1) return;
    double t = MPI_Wtime();
    float w = (float)b->d->world;
    float *g = b->grad + b->offset[k];
    for (size_t i = 0; i < b->count[k]; i++)
        g[i] /= w;
    b->scale_s += MPI_Wtime() - t;
}

void buckets_wait_all(GradBuckets *b) {
    if (b->waited)
        dist_abort(b->d,
                   "%s:%d: buckets_wait_all called twice in one step (buckets_reset starts a step)",
                   __FILE__, __LINE__);
    b->waited = 1;
    b->wait_begin_s = buckets_clock(b);
    b->started_before_wait = b->next_start;
    for (int k = 0; k < b->n_buckets; k++)
        if (b->bucket_done[k]) {
            b->done_before_wait++;
            average_bucket(b, k);
        }
    // Tensors never marked (e.g. unused this step) still take part: every rank starts every
    // bucket, in order.
    while (b->next_start < b->n_buckets)
        start_bucket(b, b->next_start++);
    while (b->first_open < b->n_buckets) {
        int lo = b->first_open, completed = 0;
        DIST_CHECK(MPI_Waitsome(b->n_buckets - lo, b->req + lo, &completed, b->indices,
                                MPI_STATUSES_IGNORE));
        if (completed == MPI_UNDEFINED)
            dist_abort(b->d, "%s:%d: buckets_wait_all: no request left although bucket %d is open",
                       __FILE__, __LINE__, lo);
        for (int i = 0; i < completed; i++) {
            note_done(b, lo + b->indices[i]);
            average_bucket(b, lo + b->indices[i]);
        }
        advance_first_open(b);
    }
    b->exposed_s = buckets_clock(b) - b->wait_begin_s;
}

void buckets_stats(const GradBuckets *b, BucketStats *out) {
    out->n_buckets = b->n_buckets;
    out->offset = b->offset;
    out->count = b->count;
    out->tensor_lo = b->tensor_lo;
    out->tensor_hi = b->tensor_hi;
    out->start_s = b->start_s;
    out->done_s = b->done_s;
    out->started_before_wait = b->started_before_wait;
    out->done_before_wait = b->done_before_wait;
    out->wait_begin_s = b->wait_begin_s;
    out->exposed_s = b->exposed_s;
    out->scale_s = b->scale_s;
}
