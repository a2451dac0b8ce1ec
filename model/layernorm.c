// LayerNorm over the last dimension (eps = LAYERNORM_EPS, or the caller's for the BERT encoder;
// biased variance as in PyTorch), with an optional affine weight/bias. Rows are independent, so the
// forward and the input gradient run one row per iteration; the weight/bias gradients are column
// sums over rows, done per column block with the rows in a fixed order so that the bits do not
// depend on the thread count.
#include <math.h>

#include "model.h"

#define LN_COLUMN_BLOCK 64
#define LN_PARALLEL_MIN 32768L

// Two-pass mean and reciprocal standard deviation of one row (vectorised sums).
static void row_stats(const float *x, int D, float eps, float *mean_out, float *rstd_out) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int d = 0; d < D; d++)
        sum += x[d];
    float mean = sum / (float)D;
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int d = 0; d < D; d++) {
        float c = x[d] - mean;
        var += c * c;
    }
    var /= (float)D;
    *mean_out = mean;
    *rstd_out = 1.0f / sqrtf(var + eps);
}

// out[N,D] = (inp − mean)·rstd·weight + bias, rstd = 1/sqrt(var + eps); mean[N], rstd[N] saved
// when not NULL. A row's statistics are complete before it is written, so out may alias inp.
void layernorm_forward_eps(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int D, float eps) {
#pragma omp parallel for schedule(static) if ((long)N * D > LN_PARALLEL_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * D;
        float *y = out + (size_t)n * D;
        float m, s;
        row_stats(x, D, eps, &m, &s);
        if (weight && bias) {
#pragma omp simd
            for (int d = 0; d < D; d++)
                y[d] = (x[d] - m) * s * weight[d] + bias[d];
        } else {
            for (int d = 0; d < D; d++) {
                float v = (x[d] - m) * s;
                if (weight) v *= weight[d];
                if (bias) v += bias[d];
                y[d] = v;
            }
        }
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int D) {
    layernorm_forward_eps(out, mean, rstd, inp, weight, bias, N, D, LAYERNORM_EPS);
}

// dinp[n] += rstd·(g − mean(g) − x̂·mean(g∘x̂)) with g = dout∘weight, x̂ the normalised input.
static void layernorm_backward_input(float *dinp, const float *dout, const float *inp,
                                     const float *weight, const float *mean, const float *rstd,
                                     int N, int D) {
#pragma omp parallel for schedule(static) if ((long)N * D > LN_PARALLEL_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * D;
        const float *dy = dout + (size_t)n * D;
        float m = mean[n], s = rstd[n];
        float g_mean = 0.0f, gx_mean = 0.0f;
#pragma omp simd reduction(+ : g_mean, gx_mean)
        for (int d = 0; d < D; d++) {
            float g = weight ? dy[d] * weight[d] : dy[d];
            g_mean += g;
            gx_mean += g * (x[d] - m) * s;
        }
        g_mean /= (float)D;
        gx_mean /= (float)D;
        float *dx = dinp + (size_t)n * D;
#pragma omp simd
        for (int d = 0; d < D; d++) {
            float g = weight ? dy[d] * weight[d] : dy[d];
            float xhat = (x[d] - m) * s;
            dx[d] += s * (g - g_mean - xhat * gx_mean);
        }
    }
}

// dweight[D] += Σ_n dout∘x̂, dbias[D] += Σ_n dout; per column block, rows in order.
static void layernorm_backward_affine(float *dweight, float *dbias, const float *dout,
                                      const float *inp, const float *mean, const float *rstd, int N,
                                      int D) {
    int blocks = (D + LN_COLUMN_BLOCK - 1) / LN_COLUMN_BLOCK;
#pragma omp parallel for schedule(static) if ((long)N * D > LN_PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int d0 = blk * LN_COLUMN_BLOCK;
        int width = D - d0 < LN_COLUMN_BLOCK ? D - d0 : LN_COLUMN_BLOCK;
        float acc_w[LN_COLUMN_BLOCK] = {0}, acc_b[LN_COLUMN_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * D + d0;
            const float *dy = dout + (size_t)n * D + d0;
            float m = mean[n], s = rstd[n];
            for (int d = 0; d < width; d++) {
                acc_w[d] += dy[d] * (x[d] - m) * s;
                acc_b[d] += dy[d];
            }
        }
        for (int d = 0; d < width; d++) {
            if (dweight) dweight[d0 + d] += acc_w[d];
            if (dbias) dbias[d0 + d] += acc_b[d];
        }
    }
}

// dinp[N,D], dweight[D], dbias[D] accumulate; mean/rstd [N] from the forward. weight may be NULL
// (no affine), in which case dweight/dbias should be NULL too.
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd,
                        int N, int D) {
    if (N <= 0 || D <= 0) return;
    if (dinp) layernorm_backward_input(dinp, dout, inp, weight, mean, rstd, N, D);
    if (dweight || dbias) layernorm_backward_affine(dweight, dbias, dout, inp, mean, rstd, N, D);
}
