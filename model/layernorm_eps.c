// LayerNorm forward with an explicit eps (biased variance as in PyTorch), for encoders whose
// pretrained weights expect another eps than LAYERNORM_EPS (BERT: 1e-12).
#include <math.h>

#include "model.h"

#define LN_EPS_PARALLEL_MIN 32768L

// out[N,D] = (inp − mean)·rstd·weight + bias, rstd = 1/sqrt(var + eps); mean[N], rstd[N] saved
// when not NULL. A row's statistics are complete before it is written, so out may alias inp.
void layernorm_forward_eps(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int D, float eps) {
#pragma omp parallel for schedule(static) if ((long)N * D > LN_EPS_PARALLEL_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * D;
        float *y = out + (size_t)n * D;
        float sum = 0.0f;
        for (int d = 0; d < D; d++)
            sum += x[d];
        float m = sum / (float)D, var = 0.0f;
        for (int d = 0; d < D; d++) {
            float c = x[d] - m;
            var += c * c;
        }
        float s = 1.0f / sqrtf(var / (float)D + eps);
        for (int d = 0; d < D; d++) {
            float v = (x[d] - m) * s;
            if (weight) v *= weight[d];
            if (bias) v += bias[d];
            y[d] = v;
        }
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
}
