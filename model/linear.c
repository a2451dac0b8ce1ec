// Linear layer (PyTorch nn.Linear layout, weight [out_dim, in_dim]) on OpenBLAS.
// The forward is one sgemm reading the weight transposed through CblasTrans (no copy), with the
// bias pre-broadcast into the output so that sgemm adds onto it (beta = 1). The backward is two
// accumulating sgemms plus a bias column sum whose per-column order is fixed, so the result does
// not depend on the thread count.
#include <cblas.h>

#include "model.h"

// Columns handled together by one thread when summing dout over rows: each column's sum always
// runs over the rows in order 0..N-1, whatever the number of threads.
#define BIAS_COLUMN_BLOCK 64

// out[N,O] = bias[O] broadcast over rows.
static void broadcast_rows(float *out, const float *bias, int N, int out_dim) {
#pragma omp parallel for schedule(static) if ((long)N * out_dim > 65536)
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * out_dim;
        for (int o = 0; o < out_dim; o++)
            row[o] = bias[o];
    }
}

// out[N,O] = inp[N,I] · weight[O,I]ᵀ + bias[O]
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int in_dim, int out_dim) {
    if (N <= 0 || out_dim <= 0) return;
    float beta = 0.0f;
    if (bias) {
        broadcast_rows(out, bias, N, out_dim);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out_dim, in_dim, 1.0f, inp, in_dim,
                weight, in_dim, beta, out, out_dim);
}

// dbias[O] += Σ_n dout[n, O], columns split into fixed blocks, rows summed in order.
static void bias_column_sum(float *dbias, const float *dout, int N, int out_dim) {
    int blocks = (out_dim + BIAS_COLUMN_BLOCK - 1) / BIAS_COLUMN_BLOCK;
#pragma omp parallel for schedule(static) if ((long)N * out_dim > 65536)
    for (int blk = 0; blk < blocks; blk++) {
        int o0 = blk * BIAS_COLUMN_BLOCK;
        int width = out_dim - o0 < BIAS_COLUMN_BLOCK ? out_dim - o0 : BIAS_COLUMN_BLOCK;
        float acc[BIAS_COLUMN_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * out_dim + o0;
            for (int o = 0; o < width; o++)
                acc[o] += row[o];
        }
        for (int o = 0; o < width; o++)
            dbias[o0 + o] += acc[o];
    }
}

// dinp[N,I] += dout[N,O]·weight[O,I]; dweight[O,I] += doutᵀ·inp[N,I]; dbias[O] += Σ_rows dout.
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int in_dim, int out_dim) {
    if (N <= 0 || out_dim <= 0 || in_dim <= 0) return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in_dim, out_dim, 1.0f, dout,
                    out_dim, weight, in_dim, 1.0f, dinp, in_dim);
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, N, 1.0f, dout,
                    out_dim, inp, in_dim, 1.0f, dweight, in_dim);
    if (dbias) bias_column_sum(dbias, dout, N, out_dim);
}
