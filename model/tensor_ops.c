// Small tensor operations of the network: residual add, mean pooling over tokens, and the row
// gather / scatter-add that selects context and target token subsets. The scatter-add is split
// over the batch (each sample owns its rows) and adds rows in index order, so duplicate indices
// accumulate correctly and the bits do not depend on the thread count.
#include "model.h"

#define OPS_PARALLEL_MIN 32768L

// out[n] = a[n] + b[n]; out may alias a.
void add_forward(float *out, const float *a, const float *b, size_t n) {
    long count = (long)n;
#pragma omp parallel for schedule(static) if (count > OPS_PARALLEL_MIN)
    for (long i = 0; i < count; i++)
        out[i] = a[i] + b[i];
}

// out[B,D] = mean_n inp[B,N,D], tokens summed in order.
void meanpool_forward(float *out, const float *inp, int B, int N, int D) {
    float inv = N > 0 ? 1.0f / (float)N : 0.0f;
#pragma omp parallel for schedule(static) if ((long)B * N * D > OPS_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        float *dst = out + (size_t)b * D;
        for (int d = 0; d < D; d++)
            dst[d] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *src = inp + ((size_t)b * N + n) * D;
            for (int d = 0; d < D; d++)
                dst[d] += src[d];
        }
        for (int d = 0; d < D; d++)
            dst[d] *= inv;
    }
}

// dinp[B,N,D] += dout[B,D] / N.
void meanpool_backward(float *dinp, const float *dout, int B, int N, int D) {
    if (!dinp || N <= 0) return;
    float inv = 1.0f / (float)N;
    long rows = (long)B * N;
#pragma omp parallel for schedule(static) if (rows * D > OPS_PARALLEL_MIN)
    for (long r = 0; r < rows; r++) {
        const float *g = dout + (size_t)(r / N) * D;
        float *dst = dinp + (size_t)r * D;
        for (int d = 0; d < D; d++)
            dst[d] += g[d] * inv;
    }
}

// out[B,n,D] = inp[B, idx[j], D] for j < n.
void gather_rows(float *out, const float *inp, const int *idx, int B, int N, int n, int D) {
    long rows = (long)B * n;
#pragma omp parallel for schedule(static) if (rows * D > OPS_PARALLEL_MIN)
    for (long r = 0; r < rows; r++) {
        const float *src = inp + ((size_t)(r / n) * N + idx[r % n]) * D;
        float *dst = out + (size_t)r * D;
        for (int d = 0; d < D; d++)
            dst[d] = src[d];
    }
}

// dinp[B, idx[j], :] += dout[B, j, :]; one sample per iteration, indices in order.
void scatter_add_rows(float *dinp, const float *dout, const int *idx, int B, int N, int n, int D) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if ((long)B * n * D > OPS_PARALLEL_MIN)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++) {
            const float *src = dout + ((size_t)b * n + j) * D;
            float *dst = dinp + ((size_t)b * N + idx[j]) * D;
            for (int d = 0; d < D; d++)
                dst[d] += src[d];
        }
}
