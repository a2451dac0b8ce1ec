// Linear layer (PyTorch nn.Linear layout, weight [out_dim, in_dim]) on OpenBLAS.
//
// Threads: the forward and input-gradient GEMMs are cut into blocks of a FIXED number of output
// rows that OpenMP threads share, the weight gradient into one band of dweight rows per thread;
// each piece is one single-threaded sgemm. OpenBLAS's own thread pool is never used (it is
// pinned to one thread, blas_single_thread): when both pools were active they spun against each
// other and 2 threads ran 5× slower than 1. No reduction is split, so the bits do not depend on
// the thread count.
//
// The forward runs sgemm with beta = 0 and adds the bias to each block while it is in cache
// (acc + bias: the same single rounding as sgemm adding onto a pre-broadcast bias). The
// backward is two sgemms (accumulating, or overwriting in the *_set variants of blocks.h) plus
// a bias column sum whose per-column order is fixed.
#include <cblas.h>
#include <omp.h>

#include "blocks.h"
#include "model.h"

// Output rows per block of the forward and input-gradient GEMMs, columns per block of the bias
// sum. Fixed, so results are the same for every thread count.
#define ROW_BLOCK 256
#define BIAS_COLUMN_BLOCK 64
// Below this many multiply-adds a GEMM runs on the calling thread alone. Above OpenBLAS's
// small-matrix limit (10⁶) even when halved, so a split never switches kernels.
#define PARALLEL_MIN_MACS (1L << 22)

void blas_single_thread(void) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

static int blocks_of(int n, int block) {
    return (n + block - 1) / block;
}

static int parallel_worth(int M, int N, int K) {
    return (double)M * N * K >= (double)PARALLEL_MIN_MACS && !omp_in_parallel();
}

// out[N,O] = inp[N,I] · weight[O,I]ᵀ + bias[O]
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int in_dim, int out_dim) {
    if (N <= 0 || out_dim <= 0) return;
    blas_single_thread();
    int nb = blocks_of(N, ROW_BLOCK);
#pragma omp parallel for schedule(dynamic, 1) if (nb > 1 && parallel_worth(N, out_dim, in_dim))
    for (int blk = 0; blk < nb; blk++) {
        int n0 = blk * ROW_BLOCK, rows = N - n0 < ROW_BLOCK ? N - n0 : ROW_BLOCK;
        float *o = out + (size_t)n0 * out_dim;
        if (in_dim > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out_dim, in_dim, 1.0f,
                        inp + (size_t)n0 * in_dim, in_dim, weight, in_dim, 0.0f, o, out_dim);
        else
            for (size_t i = 0; i < (size_t)rows * out_dim; i++)
                o[i] = 0.0f;
        if (bias)
            for (int r = 0; r < rows; r++) {
                float *row = o + (size_t)r * out_dim;
#pragma omp simd
                for (int c = 0; c < out_dim; c++)
                    row[c] += bias[c];
            }
    }
}

// dbias[O] += Σ_n dout[n, O], columns split into fixed blocks, rows summed in order.
static void bias_column_sum(float *dbias, const float *dout, int N, int out_dim) {
    int blocks = blocks_of(out_dim, BIAS_COLUMN_BLOCK);
#pragma omp parallel for schedule(static) if ((long)N * out_dim > 65536 && !omp_in_parallel())
    for (int blk = 0; blk < blocks; blk++) {
        int o0 = blk * BIAS_COLUMN_BLOCK;
        int width = out_dim - o0 < BIAS_COLUMN_BLOCK ? out_dim - o0 : BIAS_COLUMN_BLOCK;
        float acc[BIAS_COLUMN_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * out_dim + o0;
#pragma omp simd
            for (int o = 0; o < width; o++)
                acc[o] += row[o];
        }
        for (int o = 0; o < width; o++)
            dbias[o0 + o] += acc[o];
    }
}

// dinp[N,I] (+)= dout[N,O]·weight[O,I], beta 1 (accumulate) or 0 (overwrite).
static void input_grad(float *dinp, const float *dout, const float *weight, int N, int in_dim,
                       int out_dim, float beta) {
    int nb = blocks_of(N, ROW_BLOCK);
#pragma omp parallel for schedule(dynamic, 1) if (nb > 1 && parallel_worth(N, in_dim, out_dim))
    for (int blk = 0; blk < nb; blk++) {
        int n0 = blk * ROW_BLOCK, rows = N - n0 < ROW_BLOCK ? N - n0 : ROW_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in_dim, out_dim, 1.0f,
                    dout + (size_t)n0 * out_dim, out_dim, weight, in_dim, beta,
                    dinp + (size_t)n0 * in_dim, in_dim);
    }
}

// dweight[O,I] += doutᵀ·inp: one contiguous band of dweight rows per thread (16-row aligned),
// each a full reduction over N. Not fixed-size blocks as above: each band's sgemm packs the whole
// of inp [N,I] — for a base crosser layer 35 MB — so 64-row blocks re-read it from memory two
// dozen times (10% of a base step in packing). OpenBLAS's regular kernels sum every element over
// N in the same order whatever the band, so the bits still do not depend on the thread count.
static void weight_grad(float *dweight, const float *dout, const float *inp, int N, int in_dim,
                        int out_dim) {
    int parts = parallel_worth(out_dim, in_dim, N) ? omp_get_max_threads() : 1;
    int band = (out_dim + parts - 1) / parts;
    band = (band + 15) & ~15;
    parts = blocks_of(out_dim, band);
#pragma omp parallel for schedule(static, 1) if (parts > 1)
    for (int part = 0; part < parts; part++) {
        int o0 = part * band, rows = out_dim - o0 < band ? out_dim - o0 : band;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, in_dim, N, 1.0f, dout + o0,
                    out_dim, inp, in_dim, 1.0f, dweight + (size_t)o0 * in_dim, in_dim);
    }
}

static void backward(float *dinp, float dinp_beta, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int in_dim, int out_dim) {
    if (N <= 0 || out_dim <= 0 || in_dim <= 0) return;
    blas_single_thread();
    if (dinp) input_grad(dinp, dout, weight, N, in_dim, out_dim, dinp_beta);
    if (dweight) weight_grad(dweight, dout, inp, N, in_dim, out_dim);
    if (dbias) bias_column_sum(dbias, dout, N, out_dim);
}

// dinp[N,I] += dout·weight; dweight[O,I] += doutᵀ·inp; dbias[O] += Σ_rows dout.
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int in_dim, int out_dim) {
    backward(dinp, 1.0f, dweight, dbias, dout, inp, weight, N, in_dim, out_dim);
}

// As linear_backward, but dinp is overwritten (=) instead of accumulated: no memset needed.
void linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int in_dim, int out_dim) {
    backward(dinp, 0.0f, dweight, dbias, dout, inp, weight, N, in_dim, out_dim);
}
