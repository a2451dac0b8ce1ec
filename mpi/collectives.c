// Broadcasts, the negative-pool allgather, reductions for logging, blob gathering.
#include <limits.h>

#include "dist.h"

// Largest element count for one MPI call: d->max_count, never above INT_MAX (MPI counts are int).
static size_t chunk_limit(const Dist *d) {
    size_t limit = d->max_count;
    if (limit == 0 || limit > (size_t)INT_MAX) limit = (size_t)INT_MAX;
    return limit;
}

static void check_root(const Dist *d, int root, const char *func) {
    if (root < 0 || root >= d->world)
        dist_abort(d, "%s:%d: %s: root %d outside the %d ranks", __FILE__, __LINE__, func, root,
                   d->world);
}

// Every rank must pass the same n; a mismatch would corrupt memory, so it is checked first.
static void check_same_count(Dist *d, size_t n, int root, const char *func) {
    uint64_t root_n = n;
    DIST_CHECK(MPI_Bcast(&root_n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD));
    if (root_n != n)
        dist_abort(d, "%s:%d: %s: this rank has %zu elements but root %d has %llu", __FILE__,
                   __LINE__, func, n, root, (unsigned long long)root_n);
}

static void bcast_chunked(Dist *d, char *buf, size_t n, size_t elem_size, MPI_Datatype type,
                          int root) {
    size_t limit = chunk_limit(d);
    for (size_t off = 0; off < n; off += limit) {
        size_t count = n - off < limit ? n - off : limit;
        DIST_CHECK(MPI_Bcast(buf + off * elem_size, (int)count, type, root, MPI_COMM_WORLD));
    }
}

void dist_bcast_floats(Dist *d, float *buf, size_t n, int root) {
    check_root(d, root, "dist_bcast_floats");
    check_same_count(d, n, root, "dist_bcast_floats");
    bcast_chunked(d, (char *)buf, n, sizeof(float), MPI_FLOAT, root);
}

void dist_bcast_bytes(Dist *d, void *buf, size_t n, int root) {
    check_root(d, root, "dist_bcast_bytes");
    check_same_count(d, n, root, "dist_bcast_bytes");
    bcast_chunked(d, (char *)buf, n, 1, MPI_BYTE, root);
}

// Fills d->counts / d->displs with rows[r] · per_row for every rank (in d->u64).
static void fill_counts(Dist *d, size_t per_row) {
    size_t displ = 0;
    for (int r = 0; r < d->world; r++) {
        d->counts[r] = (int)(d->u64[r] * per_row);
        d->displs[r] = (int)displ;
        displ += d->u64[r] * per_row;
    }
}

size_t dist_allgatherv_rows(Dist *d, float *recv, uint8_t *recv_mask, size_t recv_capacity_rows,
                            const float *send, const uint8_t *send_mask, size_t n_rows,
                            size_t row_floats, size_t row_mask_bytes, size_t *rank_first_row) {
    uint64_t mine = n_rows;
    DIST_CHECK(MPI_Allgather(&mine, 1, MPI_UINT64_T, d->u64, 1, MPI_UINT64_T, MPI_COMM_WORLD));
    size_t total = 0;
    for (int r = 0; r < d->world; r++) {
        if (rank_first_row) rank_first_row[r] = total;
        total += d->u64[r];
    }
    if (total > recv_capacity_rows)
        dist_abort(
            d, "%s:%d: negative pool: the ranks send %zu rows in all, the receive buffer holds %zu",
            __FILE__, __LINE__, total, recv_capacity_rows);
    size_t widest = row_floats > row_mask_bytes ? row_floats : row_mask_bytes;
    if (widest && total > (size_t)INT_MAX / widest)
        dist_abort(d, "%s:%d: negative pool: %zu rows of %zu elements exceed the MPI count limit",
                   __FILE__, __LINE__, total, widest);
    if (row_floats) {
        fill_counts(d, row_floats);
        DIST_CHECK(MPI_Allgatherv(send, (int)(n_rows * row_floats), MPI_FLOAT, recv, d->counts,
                                  d->displs, MPI_FLOAT, MPI_COMM_WORLD));
    }
    // Whether masks travel must be the same decision on every rank: it depends on the arguments,
    // which the caller passes alike everywhere (row_mask_bytes 0 means no mask).
    if (row_mask_bytes) {
        if (!send_mask || !recv_mask)
            dist_abort(d, "%s:%d: negative pool: row_mask_bytes %zu but a mask buffer is NULL",
                       __FILE__, __LINE__, row_mask_bytes);
        fill_counts(d, row_mask_bytes);
        DIST_CHECK(MPI_Allgatherv(send_mask, (int)(n_rows * row_mask_bytes), MPI_BYTE, recv_mask,
                                  d->counts, d->displs, MPI_BYTE, MPI_COMM_WORLD));
    }
    return total;
}

size_t dist_allgatherv_floats(Dist *d, float *recv, size_t recv_capacity, const float *send,
                              size_t count) {
    return dist_allgatherv_rows(d, recv, NULL, recv_capacity, send, NULL, count, 1, 0, NULL);
}

static void allreduce_doubles(double *v, int n, MPI_Op op) {
    DIST_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, op, MPI_COMM_WORLD));
}

void dist_sum_doubles(Dist *d, double *v, int n) {
    (void)d;
    allreduce_doubles(v, n, MPI_SUM);
}

void dist_mean_doubles(Dist *d, double *v, int n) {
    allreduce_doubles(v, n, MPI_SUM);
    for (int i = 0; i < n; i++)
        v[i] /= d->world;
}

void dist_max_doubles(Dist *d, double *v, int n) {
    (void)d;
    allreduce_doubles(v, n, MPI_MAX);
}

void dist_min_doubles(Dist *d, double *v, int n) {
    (void)d;
    allreduce_doubles(v, n, MPI_MIN);
}

int dist_any(Dist *d, int flag) {
    (void)d;
    int v = flag != 0;
    DIST_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD));
    return v;
}

int dist_all(Dist *d, int flag) {
    (void)d;
    int v = flag != 0;
    DIST_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD));
    return v;
}

size_t dist_gather_bytes(Dist *d, void *recv, size_t recv_capacity, size_t *sizes, const void *send,
                         size_t size, int root) {
    check_root(d, root, "dist_gather_bytes");
    if (size > (size_t)INT_MAX)
        dist_abort(d, "%s:%d: dist_gather_bytes: a blob of %zu bytes exceeds the MPI count limit",
                   __FILE__, __LINE__, size);
    uint64_t mine = size;
    DIST_CHECK(MPI_Gather(&mine, 1, MPI_UINT64_T, d->u64, 1, MPI_UINT64_T, root, MPI_COMM_WORLD));
    size_t total = 0;
    if (d->rank == root) {
        for (int r = 0; r < d->world; r++) {
            if (sizes) sizes[r] = d->u64[r];
            total += d->u64[r];
        }
        if (total > recv_capacity)
            dist_abort(
                d,
                "%s:%d: dist_gather_bytes: the ranks send %zu bytes, the receive buffer holds %zu",
                __FILE__, __LINE__, total, recv_capacity);
        if (total > (size_t)INT_MAX)
            dist_abort(d, "%s:%d: dist_gather_bytes: %zu bytes in all exceed the MPI count limit",
                       __FILE__, __LINE__, total);
        fill_counts(d, 1);
    }
    DIST_CHECK(MPI_Gatherv(send, (int)size, MPI_BYTE, recv, d->counts, d->displs, MPI_BYTE, root,
                           MPI_COMM_WORLD));
    return d->rank == root ? total : 0;
}
