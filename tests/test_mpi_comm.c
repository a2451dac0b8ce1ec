// Setup, broadcast, negative-pool allgather, reductions, replica checksum and blob gathering,
// alone (singleton) or under mpirun -n N.
#include <stdlib.h>
#include <string.h>

#include "mpi_test_util.h"

MPI_TEST(test_setup_fields) {
    Dist *d = mt_dist;
    assert_true(d->world >= 1);
    assert_true(d->rank >= 0 && d->rank < d->world);
    const char *env_size = getenv("OMPI_COMM_WORLD_SIZE");
    assert_int_equal(d->world, env_size ? atoi(env_size) : 1);
    // The tests run on one machine: the node communicator is the whole job.
    assert_int_equal(d->local_size, d->world);
    assert_int_equal(d->local_rank, d->rank);
    assert_true(strlen(d->hostname) > 0);
    assert_true(d->max_count > 0);
    dist_barrier(d);
}

// Chunked (max_count 5 for 23 floats) and unchunked, from rank 0 and from the last rank.
MPI_TEST(test_bcast) {
    Dist *d = mt_dist;
    size_t saved = d->max_count;
    size_t limits[] = {5, saved};
    for (int l = 0; l < 2; l++) {
        d->max_count = limits[l];
        for (int root = 0; root<d->world; root += d->world> 1 ? d->world - 1 : 1) {
            float buf[23];
            unsigned char bytes[17];
            for (int i = 0; i < 23; i++)
                buf[i] = d->rank == root ? 0.5f * (float)i - 3.0f : -1.0f;
            for (int i = 0; i < 17; i++)
                bytes[i] = d->rank == root ? (unsigned char)(i * 11) : 0;
            dist_bcast_floats(d, buf, 23, root);
            dist_bcast_bytes(d, bytes, 17, root);
            for (int i = 0; i < 23; i++)
                assert_true(buf[i] == 0.5f * (float)i - 3.0f);
            for (int i = 0; i < 17; i++)
                assert_int_equal(bytes[i], (unsigned char)(i * 11));
            dist_bcast_floats(d, buf, 0, root);
        }
    }
    d->max_count = saved;
}

// Rank r sends r + 1 floats 1000·r + j: the pool is every rank's floats in rank order.
MPI_TEST(test_allgatherv_floats_rank_order) {
    Dist *d = mt_dist;
    float send[8], recv[64];
    size_t mine = (size_t)d->rank + 1;
    for (size_t j = 0; j < mine; j++)
        send[j] = 1000.0f * (float)d->rank + (float)j;
    size_t total = dist_allgatherv_floats(d, recv, 64, send, mine);
    assert_int_equal(total, (size_t)d->world * (size_t)(d->world + 1) / 2);
    size_t pos = 0;
    for (int r = 0; r < d->world; r++)
        for (int j = 0; j <= r; j++)
            assert_true(recv[pos++] == 1000.0f * (float)r + (float)j);
}

// Rows of 3 floats with 2 mask bytes each; rank r holds (r % 2) + 1 rows; one rank holds none.
MPI_TEST(test_allgatherv_rows_with_mask) {
    Dist *d = mt_dist;
    enum { ROW = 3, MASK = 2, CAP = 32 };
    float send[2 * ROW], recv[CAP * ROW];
    uint8_t send_mask[2 * MASK], recv_mask[CAP * MASK];
    size_t first[8];
    size_t rows_of[8];
    for (int r = 0; r < d->world; r++)
        rows_of[r] = (d->world > 2 && r == 1) ? 0 : (size_t)(r % 2) + 1;
    size_t mine = rows_of[d->rank];
    for (size_t i = 0; i < mine; i++) {
        for (int c = 0; c < ROW; c++)
            send[i * ROW + c] = (float)(100 * d->rank + 10 * (int)i + c);
        for (int c = 0; c < MASK; c++)
            send_mask[i * MASK + c] = (uint8_t)(d->rank * 16 + (int)i * 2 + c);
    }
    size_t total =
        dist_allgatherv_rows(d, recv, recv_mask, CAP, send, send_mask, mine, ROW, MASK, first);
    size_t row = 0;
    for (int r = 0; r < d->world; r++) {
        assert_int_equal(first[r], row);
        for (size_t i = 0; i < rows_of[r]; i++, row++) {
            for (int c = 0; c < ROW; c++)
                assert_true(recv[row * ROW + c] == (float)(100 * r + 10 * (int)i + c));
            for (int c = 0; c < MASK; c++)
                assert_int_equal(recv_mask[row * MASK + c], (uint8_t)(r * 16 + (int)i * 2 + c));
        }
    }
    assert_int_equal(total, row);
    // Without masks.
    total = dist_allgatherv_rows(d, recv, NULL, CAP, send, NULL, mine, ROW, 0, NULL);
    assert_int_equal(total, row);
}

MPI_TEST(test_reductions) {
    Dist *d = mt_dist;
    double w = d->world, r = d->rank;
    double sum[3] = {r, 1.0, r * r}, mean[2] = {r, 2.0}, max[2] = {r, -r}, min[2] = {r, -r};
    dist_sum_doubles(d, sum, 3);
    dist_mean_doubles(d, mean, 2);
    dist_max_doubles(d, max, 2);
    dist_min_doubles(d, min, 2);
    assert_true(sum[0] == w * (w - 1) / 2 && sum[1] == w);
    assert_true(sum[2] == (w - 1) * w * (2 * w - 1) / 6);
    assert_true(mean[0] == (w - 1) / 2 && mean[1] == 2.0);
    assert_true(max[0] == w - 1 && max[1] == 0.0);
    assert_true(min[0] == 0.0 && min[1] == -(w - 1));
    assert_int_equal(dist_any(d, d->rank == d->world - 1), 1);
    assert_int_equal(dist_any(d, 0), 0);
    assert_int_equal(dist_all(d, 7), 1);
    assert_int_equal(dist_all(d, d->rank != 0), 0);
}

// Local: one flipped bit anywhere, a sign of zero, a different length: another hash.
MPI_TEST(test_hash_sensitivity) {
    enum { N = 101 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)i * 0.25f - 7.0f;
    uint64_t h = dist_hash_floats(x, N);
    assert_true(h == dist_hash_floats(x, N));
    unsigned char *bytes = (unsigned char *)x;
    for (size_t byte = 0; byte < sizeof x; byte += 37)
        for (int bit = 0; bit < 8; bit += 3) {
            bytes[byte] ^= (unsigned char)(1u << bit);
            assert_true(dist_hash_floats(x, N) != h);
            bytes[byte] ^= (unsigned char)(1u << bit);
        }
    for (size_t byte = sizeof x - 8; byte < sizeof x; byte++) { // the last word and the odd tail
        bytes[byte] ^= 0x80;
        assert_true(dist_hash_floats(x, N) != h);
        bytes[byte] ^= 0x80;
    }
    assert_true(dist_hash_floats(x, N) == h);
    assert_true(dist_hash_floats(x, N - 1) != h);
    // Swapping two values changes it too (positions count).
    float tmp = x[3];
    x[3] = x[60];
    x[60] = tmp;
    assert_true(dist_hash_floats(x, N) != h);
    float zeros[2] = {0.0f, 0.0f}, neg[2] = {0.0f, -0.0f};
    assert_true(dist_hash_floats(zeros, 2) != dist_hash_floats(neg, 2));
}

// Identical replicas pass; then the last rank flips the lowest bit of its last parameter and
// every rank sees the mismatch (rank 0 prints which ranks differ).
MPI_TEST(test_check_replicas) {
    Dist *d = mt_dist;
    enum { N = 1001 };
    static float params[N];
    for (int i = 0; i < N; i++)
        params[i] = 1.0f / (float)(i + 1);
    assert_int_equal(dist_check_replicas(d, params, N, 10), 0);
    if (d->world > 1 && d->rank == d->world - 1) {
        uint32_t u;
        memcpy(&u, &params[N - 1], 4);
        u ^= 1u;
        memcpy(&params[N - 1], &u, 4);
    }
    assert_int_equal(dist_check_replicas(d, params, N, 20), d->world > 1 ? 1 : 0);
    // Two ranks of four diverged in the same way, rank 0 untouched: 2 differ.
    if (d->world >= 4) {
        for (int i = 0; i < N; i++)
            params[i] = 1.0f / (float)(i + 1);
        if (d->rank >= 2) params[5] += 1.0f;
        assert_int_equal(dist_check_replicas(d, params, N, 30), 2);
    }
}

// Rank r sends r + 2 bytes of value r + 1, to rank 0 and to the last rank.
MPI_TEST(test_gather_bytes) {
    Dist *d = mt_dist;
    unsigned char send[16], recv[256];
    size_t sizes[16];
    size_t mine = (size_t)d->rank + 2;
    memset(send, d->rank + 1, mine);
    for (int root = 0; root<d->world; root += d->world> 1 ? d->world - 1 : 1) {
        memset(recv, 0, sizeof recv);
        size_t total = dist_gather_bytes(d, recv, sizeof recv, sizes, send, mine, root);
        if (d->rank != root) {
            assert_int_equal(total, 0);
            continue;
        }
        size_t pos = 0;
        for (int r = 0; r < d->world; r++) {
            assert_int_equal(sizes[r], (size_t)r + 2);
            for (size_t i = 0; i < sizes[r]; i++)
                assert_int_equal(recv[pos++], r + 1);
        }
        assert_int_equal(total, pos);
    }
}

int main(int argc, char **argv) {
    mt_dist = dist_init(&argc, &argv);
    if (mt_dist->world > 8) dist_abort(mt_dist, "this test supports at most 8 ranks");
    const struct CMUnitTest tests[] = {
        MT_TEST(test_setup_fields),
        MT_TEST(test_bcast),
        MT_TEST(test_allgatherv_floats_rank_order),
        MT_TEST(test_allgatherv_rows_with_mask),
        MT_TEST(test_reductions),
        MT_TEST(test_hash_sensitivity),
        MT_TEST(test_check_replicas),
        MT_TEST(test_gather_bytes),
    };
    int rc = MT_RUN(tests);
    dist_finalize(mt_dist);
    return rc;
}
