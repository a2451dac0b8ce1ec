// A job in which rank 1 fails while the other ranks wait in a collective. The abort tests run it
// under mpirun and check that the whole job ends, non-zero and quickly, with a message naming
// the rank. Usage: mpi_abort_prog abort|mpi-error|crash|exit|layout
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist.h"

static float grad[1 << 16];

int main(int argc, char **argv) {
    Dist *d = dist_init(&argc, &argv);
    if (argc != 2) dist_abort(d, "usage: mpi_abort_prog abort|mpi-error|crash|exit|layout");
    const char *mode = argv[1];
    if (d->world < 2) dist_abort(d, "needs at least 2 ranks");
    size_t offsets[2] = {0, 1 << 15}, sizes[2] = {1 << 15, 1 << 15};

    if (!strcmp(mode, "layout")) {
        // Rank 1 asks for another bucket size: buckets_new must refuse on every rank.
        size_t bucket_bytes = d->rank == 1 ? 4096 : 0;
        buckets_new(d, grad, 1 << 16, bucket_bytes, offsets, sizes, 2);
        fprintf(stderr, "rank %d: buckets_new accepted different layouts\n", d->rank);
        dist_finalize(d);
        return 0;
    }

    GradBuckets *b = buckets_new(d, grad, 1 << 16, 0, offsets, sizes, 2);
    if (!b) dist_abort(d, "buckets_new failed");
    if (d->rank == 1) {
        struct timespec pause = {0, 300 * 1000 * 1000}; // let the others reach the collective
        nanosleep(&pause, NULL);
        if (!strcmp(mode, "abort")) dist_abort(d, "deliberate failure in the abort test");
        if (!strcmp(mode, "mpi-error")) {
            float x = 0.0f; // destination rank 99 does not exist: MPI_ERR_RANK
            DIST_CHECK(MPI_Send(&x, 1, MPI_FLOAT, 99, 0, MPI_COMM_WORLD));
        }
        if (!strcmp(mode, "crash")) raise(SIGSEGV);
        if (!strcmp(mode, "exit")) _exit(3);
        dist_abort(d, "unknown mode '%s'", mode);
    }
    // The others: a gradient allreduce that rank 1 never joins, then a barrier.
    buckets_mark_ready(b, 1);
    buckets_mark_ready(b, 0);
    buckets_wait_all(b);
    dist_barrier(d);
    fprintf(stderr, "rank %d: the collective returned without rank 1\n", d->rank);
    buckets_free(b);
    dist_finalize(d);
    return 0;
}
