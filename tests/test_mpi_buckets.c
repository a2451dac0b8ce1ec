// Gradient buckets on 1..4 ranks: layout, start order, averaged values, identical bits.
// Run alone (singleton) or under mpirun -n N; every rank runs every test.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_test_util.h"

#define MAX_TENSORS 48
#define MAX_FLOATS (MAX_TENSORS * 70000)

static float grad[MAX_FLOATS], expect[MAX_FLOATS], reference[MAX_FLOATS];
static unsigned char covered[MAX_FLOATS];

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n) {
    return (size_t)(rng_next(s) % n);
}

typedef struct {
    int n_tensors;
    size_t n; // floats in the buffer, including gaps and a tail
    size_t offsets[MAX_TENSORS], sizes[MAX_TENSORS];
    size_t bucket_bytes;
} Table;

// A random tensor table, the same on every rank for a given seed: empty, small, medium and large
// tensors (some above the bucket size), some gaps between them, a head and a tail not covered.
static void make_table(Table *t, uint64_t seed) {
    uint64_t s = seed;
    t->n_tensors = 1 + (int)rng_below(&s, MAX_TENSORS);
    static const size_t bucket_choices[] = {64, 1000, 40000, 100000, 25u << 20};
    t->bucket_bytes = bucket_choices[rng_below(&s, 5)];
    size_t off = rng_below(&s, 3);
    for (int i = 0; i < t->n_tensors; i++) {
        size_t kind = rng_below(&s, 10), sz;
        if (kind == 0)
            sz = 0;
        else if (kind < 5)
            sz = 1 + rng_below(&s, 100);
        else if (kind < 9)
            sz = 100 + rng_below(&s, 5000);
        else
            sz = 20000 + rng_below(&s, 40000);
        if (rng_below(&s, 4) == 0) off += rng_below(&s, 4); // a gap
        t->offsets[i] = off;
        t->sizes[i] = sz;
        off += sz;
    }
    t->n = off + rng_below(&s, 3);
    assert_true(t->n <= MAX_FLOATS);
}

// Rank r's gradient. exact: small integers, so every sum is exact and the mean is the correctly
// rounded quotient; otherwise pseudo-random values in [-1, 1).
static float grad_value(size_t i, int rank, int step, int exact) {
    if (exact) return (float)((i * 7 + (size_t)step * 3) % 29) + 4.0f * (float)rank;
    uint64_t s = (uint64_t)i * 1000003u + (uint64_t)rank * 7919u + (uint64_t)step * 104729u;
    return (float)((double)(rng_next(&s) >> 11) / 4503599627370496.0 - 1.0);
}

static void fill_grad(size_t n, int step, int exact) {
    int world = mt_dist->world;
    for (size_t i = 0; i < n; i++) {
        grad[i] = grad_value(i, mt_dist->rank, step, exact);
        double sum = 0.0;
        for (int r = 0; r < world; r++)
            sum += (double)grad_value(i, r, step, exact);
        expect[i] = (float)(sum / world);
    }
}

static void mark_coverage(const GradBuckets *b, size_t n) {
    BucketStats st;
    buckets_stats(b, &st);
    memset(covered, 0, n);
    for (int k = 0; k < st.n_buckets; k++)
        memset(covered + st.offset[k], 1, st.count[k]);
}

// Marks every tensor, in an order that depends on the rank, calling progress now and then.
static void mark_all(GradBuckets *b, const Table *t, uint64_t seed) {
    int order[MAX_TENSORS];
    for (int i = 0; i < t->n_tensors; i++)
        order[i] = t->n_tensors - 1 - i; // backward order
    int style = mt_dist->rank % 4;
    if (style == 1)
        for (int i = 0; i < t->n_tensors; i++)
            order[i] = i; // forward: last bucket ready first
    if (style >= 2) {
        uint64_t s = seed * 31 + (uint64_t)mt_dist->rank;
        for (int i = t->n_tensors - 1; i > 0; i--) {
            int j = (int)rng_below(&s, (size_t)i + 1), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
    }
    uint64_t s = seed + 17 * (uint64_t)mt_dist->rank;
    for (int i = 0; i < t->n_tensors; i++) {
        buckets_mark_ready(b, order[i]);
        if (rng_below(&s, 3) == 0) buckets_progress(b);
    }
}

// Every bucket started in bucket order, before or in buckets_wait_all, and completed after.
static void check_stats(const GradBuckets *b, int all_marked) {
    BucketStats st;
    buckets_stats(b, &st);
    for (int k = 0; k < st.n_buckets; k++) {
        assert_true(st.start_s[k] >= 0.0);
        assert_true(st.done_s[k] >= st.start_s[k]);
        if (k > 0) assert_true(st.start_s[k] >= st.start_s[k - 1]);
    }
    if (all_marked) assert_int_equal(st.started_before_wait, st.n_buckets);
    assert_true(st.done_before_wait <= st.started_before_wait);
    assert_true(st.exposed_s >= 0.0 && st.scale_s >= 0.0 && st.scale_s <= st.exposed_s + 1e-9);
}

// Covered floats: the mean (exactly, or within float rounding of a 4-term sum) and the same bits
// as on rank 0. Uncovered floats (gaps between buckets, head, tail): untouched.
static void check_result(size_t n, int step, int exact) {
    for (size_t i = 0; i < n; i++) {
        if (!covered[i]) {
            assert_true(grad[i] == grad_value(i, mt_dist->rank, step, exact));
        } else if (exact) {
            assert_memory_equal(&grad[i], &expect[i], sizeof(float));
        } else if (fabsf(grad[i] - expect[i]) > 2e-6f) {
            fail_msg("float %zu: averaged %.9g, expected %.9g", i, grad[i], expect[i]);
        }
    }
    memcpy(reference, grad, n * sizeof(float));
    dist_bcast_floats(mt_dist, reference, n, 0);
    for (size_t i = 0; i < n; i++)
        if (covered[i] && memcmp(&grad[i], &reference[i], sizeof(float)))
            fail_msg("float %zu differs from rank 0: %.9g vs %.9g", i, grad[i], reference[i]);
}

// Sizes {10,10,10,50,10}, buckets of 25 floats: from the last tensor, [4] [3] [1,2] [0].
MPI_TEST(test_layout_known_example) {
    size_t offsets[] = {0, 10, 20, 30, 80}, sizes[] = {10, 10, 10, 50, 10};
    GradBuckets *b = buckets_new(mt_dist, grad, 90, 25 * sizeof(float), offsets, sizes, 5);
    assert_non_null(b);
    BucketStats st;
    buckets_stats(b, &st);
    assert_int_equal(st.n_buckets, 4);
    int lo[] = {4, 3, 1, 0}, hi[] = {4, 3, 2, 0};
    size_t off[] = {80, 30, 10, 0}, cnt[] = {10, 50, 20, 10};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(st.tensor_lo[k], lo[k]);
        assert_int_equal(st.tensor_hi[k], hi[k]);
        assert_int_equal(st.offset[k], off[k]);
        assert_int_equal(st.count[k], cnt[k]);
    }
    buckets_free(b);
}

// Random tables: buckets walk the tensors from the last to the first without holes, spans are
// the tensors' extent, and a bucket exceeds the size limit only when it holds one tensor.
MPI_TEST(test_layout_random_tables) {
    for (uint64_t seed = 1; seed <= 40; seed++) {
        Table t;
        make_table(&t, seed);
        GradBuckets *b =
            buckets_new(mt_dist, grad, t.n, t.bucket_bytes, t.offsets, t.sizes, t.n_tensors);
        assert_non_null(b);
        BucketStats st;
        buckets_stats(b, &st);
        assert_true(st.n_buckets >= 1);
        assert_int_equal(st.tensor_hi[0], t.n_tensors - 1);
        assert_int_equal(st.tensor_lo[st.n_buckets - 1], 0);
        for (int k = 0; k < st.n_buckets; k++) {
            int lo = st.tensor_lo[k], hi = st.tensor_hi[k];
            assert_true(lo <= hi);
            if (k > 0) assert_int_equal(hi, st.tensor_lo[k - 1] - 1);
            assert_int_equal(st.offset[k], t.offsets[lo]);
            assert_int_equal(st.offset[k] + st.count[k], t.offsets[hi] + t.sizes[hi]);
            // Above the size only as one tensor (with, perhaps, empty tensors beside it).
            int nonempty = 0;
            for (int i = lo; i <= hi; i++)
                nonempty += t.sizes[i] > 0;
            if (nonempty > 1) assert_true(st.count[k] * sizeof(float) <= t.bucket_bytes);
            // Greedy: the next tensor down would not have fitted.
            if (k + 1 < st.n_buckets && st.count[k] > 0)
                assert_true((st.offset[k] + st.count[k] - t.offsets[lo - 1]) * sizeof(float) >
                            t.bucket_bytes);
        }
        buckets_free(b);
    }
}

// A tensor above d->max_count floats is split into buckets of at most max_count, each started
// only when the whole tensor is ready; the average stays right across the pieces.
MPI_TEST(test_split_large_tensor) {
    size_t saved = mt_dist->max_count;
    mt_dist->max_count = 7;
    size_t offsets[] = {0, 3, 23}, sizes[] = {3, 20, 5};
    GradBuckets *b = buckets_new(mt_dist, grad, 28, 1000, offsets, sizes, 3);
    assert_non_null(b);
    BucketStats st;
    buckets_stats(b, &st);
    assert_int_equal(st.n_buckets, 5);
    size_t off[] = {23, 17, 10, 3, 0}, cnt[] = {5, 6, 7, 7, 3};
    int lo[] = {2, 1, 1, 1, 0};
    for (int k = 0; k < 5; k++) {
        assert_int_equal(st.offset[k], off[k]);
        assert_int_equal(st.count[k], cnt[k]);
        assert_int_equal(st.tensor_lo[k], lo[k]);
        assert_int_equal(st.tensor_hi[k], lo[k]);
    }
    fill_grad(28, 5, 1);
    buckets_mark_ready(b, 1);
    assert_true(st.start_s[1] < 0.0); // bucket 0 (tensor 2) has not started: 1..3 wait
    buckets_mark_ready(b, 2);
    for (int k = 0; k < 4; k++)
        assert_true(st.start_s[k] >= 0.0);
    assert_true(st.start_s[4] < 0.0);
    buckets_mark_ready(b, 0);
    buckets_wait_all(b);
    mark_coverage(b, 28);
    check_result(28, 5, 1);
    check_stats(b, 1);
    buckets_free(b);
    mt_dist->max_count = saved;
}

// A complete bucket behind an incomplete one waits; it starts right after the one before it.
MPI_TEST(test_start_in_bucket_order) {
    size_t offsets[] = {0, 100, 200, 300}, sizes[] = {100, 100, 100, 100};
    GradBuckets *b = buckets_new(mt_dist, grad, 400, 100 * sizeof(float), offsets, sizes, 4);
    assert_non_null(b);
    BucketStats st;
    buckets_stats(b, &st);
    assert_int_equal(st.n_buckets, 4); // bucket k holds tensor 3 - k
    fill_grad(400, 1, 1);
    buckets_mark_ready(b, 1); // bucket 2
    buckets_mark_ready(b, 2); // bucket 1
    for (int k = 0; k < 4; k++)
        assert_true(st.start_s[k] < 0.0);
    buckets_progress(b);
    buckets_mark_ready(b, 3); // bucket 0: starts, and 1 and 2 right behind it
    assert_true(st.start_s[0] >= 0.0 && st.start_s[1] >= st.start_s[0]);
    assert_true(st.start_s[2] >= st.start_s[1]);
    assert_true(st.start_s[3] < 0.0);
    buckets_mark_ready(b, 0);
    assert_true(st.start_s[3] >= st.start_s[2]);
    buckets_wait_all(b);
    mark_coverage(b, 400);
    check_result(400, 1, 1);
    check_stats(b, 1);
    buckets_free(b);
}

// Random tables, ranks marking in different orders (backward, forward, shuffled), several steps
// on the same buckets: exact means, identical bits everywhere, untouched gaps.
static void run_random_tables(int exact, uint64_t first_seed, uint64_t n_seeds) {
    for (uint64_t seed = first_seed; seed < first_seed + n_seeds; seed++) {
        Table t;
        make_table(&t, seed);
        GradBuckets *b =
            buckets_new(mt_dist, grad, t.n, t.bucket_bytes, t.offsets, t.sizes, t.n_tensors);
        assert_non_null(b);
        mark_coverage(b, t.n);
        for (int i = 0; i < t.n_tensors; i++)
            for (size_t j = 0; j < t.sizes[i]; j++)
                assert_true(covered[t.offsets[i] + j]);
        for (int step = 0; step < 3; step++) {
            buckets_reset(b);
            fill_grad(t.n, step, exact);
            mark_all(b, &t, seed * 10 + (uint64_t)step);
            buckets_wait_all(b);
            check_result(t.n, step, exact);
            check_stats(b, 1);
        }
        buckets_free(b);
    }
}

MPI_TEST(test_average_exact_values) {
    run_random_tables(1, 100, 8);
}

MPI_TEST(test_average_random_values) {
    run_random_tables(0, 200, 8);
}

// Nothing marked: buckets_wait_all starts every bucket itself, still in order.
MPI_TEST(test_wait_without_marks) {
    Table t;
    make_table(&t, 300);
    GradBuckets *b =
        buckets_new(mt_dist, grad, t.n, t.bucket_bytes, t.offsets, t.sizes, t.n_tensors);
    assert_non_null(b);
    fill_grad(t.n, 2, 1);
    buckets_wait_all(b);
    BucketStats st;
    buckets_stats(b, &st);
    assert_int_equal(st.started_before_wait, 0);
    assert_int_equal(st.done_before_wait, 0);
    mark_coverage(b, t.n);
    check_result(t.n, 2, 1);
    check_stats(b, 0);
    buckets_free(b);
}

MPI_TEST(test_invalid_tables) {
    size_t overlap_off[] = {0, 5}, overlap_sz[] = {10, 10};
    assert_null(buckets_new(mt_dist, grad, 100, 1000, overlap_off, overlap_sz, 2));
    size_t beyond_off[] = {0, 95}, beyond_sz[] = {10, 10};
    assert_null(buckets_new(mt_dist, grad, 100, 1000, beyond_off, beyond_sz, 2));
    size_t down_off[] = {50, 0}, down_sz[] = {10, 10};
    assert_null(buckets_new(mt_dist, grad, 100, 1000, down_off, down_sz, 2));
    size_t huge_off[] = {0}, huge_sz[] = {SIZE_MAX};
    assert_null(buckets_new(mt_dist, grad, 100, 1000, huge_off, huge_sz, 1));
}

// No tensors: no buckets, and a step still works. Bucket size 0: the 25 MB default.
MPI_TEST(test_edge_tables) {
    GradBuckets *b = buckets_new(mt_dist, grad, 10, 1000, NULL, NULL, 0);
    assert_non_null(b);
    BucketStats st;
    buckets_stats(b, &st);
    assert_int_equal(st.n_buckets, 0);
    assert_int_equal(buckets_progress(b), 0);
    buckets_wait_all(b);
    buckets_free(b);
    size_t offsets[] = {0, 10, 20, 30, 80}, sizes[] = {10, 10, 10, 50, 10};
    b = buckets_new(mt_dist, grad, 90, 0, offsets, sizes, 5);
    assert_non_null(b);
    buckets_stats(b, &st);
    assert_int_equal(st.n_buckets, 1);
    assert_int_equal(st.count[0], 90);
    buckets_free(b);
}

int main(int argc, char **argv) {
    mt_dist = dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        MT_TEST(test_layout_known_example), MT_TEST(test_layout_random_tables),
        MT_TEST(test_split_large_tensor),   MT_TEST(test_start_in_bucket_order),
        MT_TEST(test_average_exact_values), MT_TEST(test_average_random_values),
        MT_TEST(test_wait_without_marks),   MT_TEST(test_invalid_tables),
        MT_TEST(test_edge_tables),
    };
    int rc = MT_RUN(tests);
    dist_finalize(mt_dist);
    return rc;
}
