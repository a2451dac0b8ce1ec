// mpi/ — what this folder offers: data-parallel plumbing over MPI, on plain float buffers and
// offsets (it knows nothing of the model or the data pipeline).
//
//   1. setup: dist_init / dist_finalize, per-node ranks, dist_abort and DIST_CHECK, so that an
//      error on any rank ends the whole job with a message naming rank, host and cause;
//   2. parameter broadcast from one rank (any count: large buffers are sent in chunks);
//   3. gradient buckets: MPI_Iallreduce on contiguous spans of the gradient buffer, started
//      during the backward as soon as a bucket's tensors are final, in the same order on every
//      rank, averaged in buckets_wait_all; per-bucket timestamps and exposed communication time;
//   4. the negative pool: allgather of per-rank rows (and an optional byte mask) in rank order;
//   5. reductions of small double vectors for logging, agreement on stop flags;
//   6. a cross-rank checksum of the parameters that detects diverged replicas;
//   7. gathering (and broadcasting) small per-rank byte blobs, e.g. RNG states for checkpoints.
//
// Every function here is collective over MPI_COMM_WORLD unless its comment says "local": all
// ranks must call it, in the same order. MPI errors never return to the caller: the world
// communicator uses MPI_ERRORS_RETURN and every call goes through DIST_CHECK, which aborts the
// whole job with file:line and the MPI error string. Only the thread that called dist_init
// may call MPI (MPI_THREAD_FUNNELED); OpenMP and loader threads must not.
#ifndef TIJEPA_DIST_H
#define TIJEPA_DIST_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

// ---------------------------------------------------------------------------------------------
// 1. Setup and errors
// ---------------------------------------------------------------------------------------------

#define DIST_HOSTNAME_MAX (MPI_MAX_PROCESSOR_NAME + 1)

typedef struct Dist {
    int rank, world;            // in MPI_COMM_WORLD
    int local_rank, local_size; // among the ranks on this node (MPI_COMM_TYPE_SHARED split)
    char hostname[DIST_HOSTNAME_MAX];
    // Largest element count passed to a single MPI call; larger transfers are split into chunks
    // (MPI counts are int). Default 2^30. Tests lower it to exercise the chunking.
    size_t max_count;
    MPI_Comm local_comm; // the per-node communicator
    // Scratch of `world` entries each, allocated once here so collectives never allocate.
    int *counts, *displs;
    uint64_t *u64;
} Dist;

// Initialises MPI (MPI_THREAD_FUNNELED) or adopts an MPI that is already initialised. Works
// under mpirun/srun and alone (singleton: rank 0 of 1). Sets MPI_ERRORS_RETURN on
// MPI_COMM_WORLD. Aborts with a message if anything fails. Returns the process's Dist.
Dist *dist_init(int *argc, char ***argv);
// Frees the Dist and calls MPI_Finalize. Collective.
void dist_finalize(Dist *d);

// Local. Prints "tijepa: rank R (host): <cause>" to stderr and calls MPI_Abort(MPI_COMM_WORLD,
// 1), which ends every rank of the job, including those waiting in a collective. d may be NULL
// (then the Dist from dist_init is used, or rank -1 before it). Never returns.
void dist_abort(const Dist *d, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

// Checks the return code of an MPI call; on failure aborts the job naming file:line, the call
// and the MPI error string. Usable with any MPI function: DIST_CHECK(MPI_Barrier(comm));
#define DIST_CHECK(call) dist_check_mpi((call), #call, __FILE__, __LINE__)
void dist_check_mpi(int rc, const char *call, const char *file, int line);

// Seconds on the MPI clock (MPI_Wtime). Local.
double dist_time(void);
void dist_barrier(Dist *d);

// ---------------------------------------------------------------------------------------------
// 2. Broadcast (initial parameters from rank 0; any count, chunked by d->max_count)
// ---------------------------------------------------------------------------------------------

// buf[n]: on root the source, on the other ranks overwritten with root's values.
void dist_bcast_floats(Dist *d, float *buf, size_t n, int root);
void dist_bcast_bytes(Dist *d, void *buf, size_t n, int root);

// ---------------------------------------------------------------------------------------------
// 3. Gradient buckets (DDP-style overlap of the gradient allreduce with the backward)
// ---------------------------------------------------------------------------------------------
//
// The gradient buffer holds n_tensors tensors at increasing offsets (tensor t at
// grad[offsets[t] .. offsets[t] + sizes[t]), no overlaps; gaps between tensors are allowed and
// are averaged with the bucket that spans them). Buckets are formed in REVERSE tensor order,
// because the backward finishes the last tensors first: bucket 0 holds the last tensors. A
// bucket is the contiguous span of consecutive tensors whose total stays within bucket_bytes; a
// tensor larger than bucket_bytes is a bucket of its own (and one above d->max_count floats is
// split into several buckets).
//
// Per step:   buckets_reset(b);
//             backward: after each layer, buckets_mark_ready(b, t) for every tensor t whose
//                       gradient is final, then buckets_progress(b);
//             buckets_wait_all(b);   // grad now holds the mean over ranks, same bits everywhere
//
// When all tensors of a bucket are ready, its MPI_Iallreduce(MPI_IN_PLACE, MPI_SUM) starts at
// once, but only after every lower-numbered bucket has started: buckets start in bucket order on
// every rank (MPI needs collectives in the same order), whatever order the tensors were marked.
// Open MPI advances non-blocking collectives only inside MPI calls, so call buckets_progress
// between layers. Nothing is allocated after buckets_new.

#define DIST_BUCKET_BYTES_DEFAULT ((size_t)25 << 20)

typedef struct GradBuckets GradBuckets;

// Collective: every rank must pass the same table and bucket_bytes (checked: a mismatch aborts).
// bucket_bytes 0 means DIST_BUCKET_BYTES_DEFAULT. Returns NULL, after a message on stderr, if
// the tensor table is invalid (overlapping, decreasing, outside [0, n)).
GradBuckets *buckets_new(Dist *d, float *grad, size_t n, size_t bucket_bytes,
                         const size_t *tensor_offsets, const size_t *tensor_sizes, int n_tensors);
void buckets_free(GradBuckets *b);

// Starts a new step: all tensors not ready, no bucket started, clock at 0. Local.
void buckets_reset(GradBuckets *b);
// Tensor t's gradient is final for this step. Starts the allreduce of every bucket that became
// complete, in bucket order. Marking a tensor twice, or after buckets_wait_all, aborts.
void buckets_mark_ready(GradBuckets *b, int tensor);
// Lets MPI advance the allreduces in flight (MPI_Testsome) and records completions. Returns the
// number of started buckets still in flight.
int buckets_progress(GradBuckets *b);
// Starts the buckets not yet started (in order), waits for all, divides by the world size.
void buckets_wait_all(GradBuckets *b);
// Seconds since the last buckets_reset (the clock of the stats below). Local.
double buckets_clock(const GradBuckets *b);

typedef struct BucketStats {
    int n_buckets;
    // Layout (fixed): bucket i covers grad[offset[i] .. offset[i] + count[i]) and the tensors
    // tensor_lo[i] .. tensor_hi[i] (inclusive; a split tensor appears in several buckets).
    const size_t *offset, *count;
    const int *tensor_lo, *tensor_hi;
    // This step, in seconds since buckets_reset: when MPI_Iallreduce was called, and when a
    // progress or wait call first saw it complete.
    const double *start_s, *done_s;
    int started_before_wait; // buckets started before buckets_wait_all was entered
    int done_before_wait;    // buckets seen complete before buckets_wait_all was entered
    double wait_begin_s;     // when buckets_wait_all was entered
    double exposed_s;        // time inside buckets_wait_all: communication not hidden by compute
    double scale_s;          // of which spent dividing by the world size
} BucketStats;
// Local. The pointers stay valid until buckets_free.
void buckets_stats(const GradBuckets *b, BucketStats *out);

// ---------------------------------------------------------------------------------------------
// 4. Negative pool: rows of every rank, in rank order (= global sample order when rank r holds
//    global batch positions [r·b, (r+1)·b))
// ---------------------------------------------------------------------------------------------

// recv[capacity] receives rank 0's `count` floats, then rank 1's, ...; counts may differ per
// rank. Returns the total count. Aborts if it exceeds recv_capacity (or INT_MAX).
size_t dist_allgatherv_floats(Dist *d, float *recv, size_t recv_capacity, const float *send,
                              size_t count);
// The same for rows of row_floats floats with a byte mask of row_mask_bytes per row alongside
// (e.g. a per-sample valid flag or the text padding mask): recv [capacity_rows, row_floats],
// recv_mask [capacity_rows, row_mask_bytes]. Masks may be NULL (with row_mask_bytes 0). If
// rank_first_row is not NULL it receives [world] the first global row of each rank.
// Returns the total number of rows.
size_t dist_allgatherv_rows(Dist *d, float *recv, uint8_t *recv_mask, size_t recv_capacity_rows,
                            const float *send, const uint8_t *send_mask, size_t n_rows,
                            size_t row_floats, size_t row_mask_bytes, size_t *rank_first_row);

// ---------------------------------------------------------------------------------------------
// 5. Reductions for logging, agreement on flags
// ---------------------------------------------------------------------------------------------

// In place over v[n]: after the call every rank holds the sum / mean / max / min over ranks.
void dist_sum_doubles(Dist *d, double *v, int n);
void dist_mean_doubles(Dist *d, double *v, int n);
void dist_max_doubles(Dist *d, double *v, int n);
void dist_min_doubles(Dist *d, double *v, int n);
// 1 on every rank if flag is non-zero on any rank (e.g. a stop request), else 0.
int dist_any(Dist *d, int flag);
// 1 on every rank if flag is non-zero on every rank, else 0.
int dist_all(Dist *d, int flag);

// ---------------------------------------------------------------------------------------------
// 6. Replica checksum
// ---------------------------------------------------------------------------------------------

// Local. 64-bit hash of the raw bits of x[n] (each 8-byte word mixed with its position, summed):
// any changed bit changes it; -0.0 and 0.0, or NaNs with different payloads, hash differently.
uint64_t dist_hash_floats(const float *x, size_t n);
// Hashes params[n] on every rank and compares them. Returns 0 when every rank holds the same
// bits; otherwise the number of ranks that differ from rank 0 (the same value on every rank, so
// all ranks can stop together), after rank 0 printed which ranks differ at this step.
int dist_check_replicas(Dist *d, const float *params, size_t n, long step);

// ---------------------------------------------------------------------------------------------
// 7. Small per-rank blobs (RNG states, data cursors) to and from one rank
// ---------------------------------------------------------------------------------------------

// Gathers each rank's send[size] (sizes may differ) to root in rank order: on root, recv
// [recv_capacity] receives the blobs back to back and sizes[world] their sizes (both ignored
// elsewhere, may be NULL there). Returns the total bytes on root, 0 elsewhere. Aborts if the
// total exceeds recv_capacity on root.
size_t dist_gather_bytes(Dist *d, void *recv, size_t recv_capacity, size_t *sizes, const void *send,
                         size_t size, int root);

#endif // TIJEPA_DIST_H
