// Communicator setup, job-wide abort, MPI error checks.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"

// The Dist of this process, so that DIST_CHECK and dist_abort(NULL, ...) can name the rank.
static Dist *g_dist;
// Whether dist_init called MPI_Init (then dist_finalize calls MPI_Finalize).
static int g_owns_mpi;

void dist_abort(const Dist *d, const char *fmt, ...) {
    if (!d) d = g_dist;
    char cause[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    // One fprintf call so that lines from different ranks do not interleave mid-line.
    if (d)
        fprintf(stderr, "tijepa: rank %d (%s): %s\n", d->rank, d->hostname, cause);
    else
        fprintf(stderr, "tijepa: rank -1 (before MPI setup): %s\n", cause);
    fflush(stderr);
    int initialised = 0, finalised = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalised);
    if (initialised && !finalised) MPI_Abort(MPI_COMM_WORLD, 1);
    // MPI_Abort does not return in Open MPI; this covers the case without MPI.
    _exit(1);
}

void dist_check_mpi(int rc, const char *call, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        len = snprintf(msg, sizeof msg, "code %d", rc);
    msg[len < (int)sizeof msg ? len : (int)sizeof msg - 1] = '\0';
    dist_abort(NULL, "MPI error at %s:%d in %s: %s", file, line, call, msg);
}

static void *dist_alloc(size_t bytes, const char *what) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p)
        dist_abort(NULL, "%s:%d: out of memory allocating %zu bytes for %s", __FILE__, __LINE__,
                   bytes, what);
    return p;
}

Dist *dist_init(int *argc, char ***argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            fprintf(stderr, "tijepa: MPI_Init_thread failed (code %d): cannot start MPI\n", rc);
            exit(1);
        }
        g_owns_mpi = 1;
        if (provided < MPI_THREAD_FUNNELED) {
            fprintf(stderr, "tijepa: MPI provides thread level %d, below MPI_THREAD_FUNNELED\n",
                    provided);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    // From here on MPI errors come back as return codes and DIST_CHECK turns them into aborts.
    int rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) {
        fprintf(stderr, "tijepa: MPI_Comm_set_errhandler failed (code %d)\n", rc);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    Dist *d = dist_alloc(sizeof *d, "the Dist");
    DIST_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    DIST_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &d->world));
    int name_len = 0;
    DIST_CHECK(MPI_Get_processor_name(d->hostname, &name_len));
    d->hostname[name_len] = '\0';
    g_dist = d;

    // The split inherits MPI_ERRORS_RETURN from the world communicator.
    DIST_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL,
                                   &d->local_comm));
    DIST_CHECK(MPI_Comm_rank(d->local_comm, &d->local_rank));
    DIST_CHECK(MPI_Comm_size(d->local_comm, &d->local_size));

    d->max_count = (size_t)1 << 30;
    d->counts = dist_alloc(sizeof(int) * (size_t)d->world, "per-rank counts");
    d->displs = dist_alloc(sizeof(int) * (size_t)d->world, "per-rank displacements");
    d->u64 = dist_alloc(sizeof(uint64_t) * (size_t)d->world, "per-rank values");
    return d;
}

void dist_finalize(Dist *d) {
    if (!d) return;
    DIST_CHECK(MPI_Comm_free(&d->local_comm));
    free(d->counts);
    free(d->displs);
    free(d->u64);
    if (g_owns_mpi) {
        DIST_CHECK(MPI_Finalize());
        g_owns_mpi = 0;
    }
    if (g_dist == d) g_dist = NULL;
    free(d);
}

double dist_time(void) {
    return MPI_Wtime();
}

void dist_barrier(Dist *d) {
    (void)d;
    DIST_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}
