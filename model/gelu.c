// GELU in its exact erf form, x·Φ(x), as PyTorch nn.GELU() (approximate='none'), timm and BERT.
// Element-wise, so large arrays are split across OpenMP threads with no ordering concerns.
#include <math.h>

#include "model.h"

#define GELU_PARALLEL_MIN 16384
#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

// out[n] = 0.5·x·(1 + erf(x/√2))
void gelu_forward(float *out, const float *inp, size_t n) {
    long count = (long)n;
#pragma omp parallel for schedule(static) if (count > GELU_PARALLEL_MIN)
    for (long i = 0; i < count; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * INV_SQRT2));
    }
}

// dinp[n] += dout · (Φ(x) + x·φ(x))
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    if (!dinp) return;
    long count = (long)n;
#pragma omp parallel for schedule(static) if (count > GELU_PARALLEL_MIN)
    for (long i = 0; i < count; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}
