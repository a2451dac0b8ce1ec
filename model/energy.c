// The TI-JEPA energy (mean smooth-L1 distance, β = 1, between predicted and target tokens) and
// the InfoNCE term over energies (column 0 the positive). Sums run in double in a fixed order,
// one sample per iteration, so results are deterministic and accurate for long rows.
#include <math.h>

#include "model.h"

#define ENERGY_PARALLEL_MIN 32768L

// smooth_l1(d) = 0.5·d² for |d| < 1, |d| − 0.5 otherwise.
static double smooth_l1(float d) {
    double a = fabs((double)d);
    return a < 1.0 ? 0.5 * a * a : a - 0.5;
}

// energy[B] = mean over T·H of smooth_l1(pred − target); pred, target [B,T,H].
void energy_forward(float *energy, const float *pred, const float *target, int B, int T, int H) {
    size_t len = (size_t)T * H;
#pragma omp parallel for schedule(static) if ((long)B * (long)len > ENERGY_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        const float *p = pred + (size_t)b * len, *t = target + (size_t)b * len;
        double sum = 0.0;
        for (size_t i = 0; i < len; i++)
            sum += smooth_l1(p[i] - t[i]);
        energy[b] = len ? (float)(sum / (double)len) : 0.0f;
    }
}

// dpred[B,T,H] += denergy[b] · clamp(pred − target, −1, 1) / (T·H).
void energy_backward(float *dpred, const float *denergy, const float *pred, const float *target,
                     int B, int T, int H) {
    size_t len = (size_t)T * H;
    if (!dpred || len == 0) return;
#pragma omp parallel for schedule(static) if ((long)B * (long)len > ENERGY_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        float g = denergy[b] / (float)len;
        size_t off = (size_t)b * len;
        for (size_t i = 0; i < len; i++) {
            float d = pred[off + i] - target[off + i];
            float clipped = d < -1.0f ? -1.0f : (d > 1.0f ? 1.0f : d);
            dpred[off + i] += g * clipped;
        }
    }
}

// loss[b] = −log softmax(−energy[b,:]/τ)_0 by log-sum-exp with max subtraction; probs [B,K1].
void nce_forward(float *loss, float *probs, const float *energy, float tau, int B, int K1) {
    for (int b = 0; b < B; b++) {
        const float *e = energy + (size_t)b * K1;
        double max = -e[0] / (double)tau;
        for (int k = 1; k < K1; k++)
            max = fmax(max, -e[k] / (double)tau);
        double sum = 0.0;
        for (int k = 0; k < K1; k++)
            sum += exp(-e[k] / (double)tau - max);
        double lse = max + log(sum);
        loss[b] = (float)(lse + e[0] / (double)tau);
        if (probs)
            for (int k = 0; k < K1; k++)
                probs[(size_t)b * K1 + k] = (float)exp(-e[k] / (double)tau - lse);
    }
}

// denergy[B,K1] += dloss[b] · (δ_k0 − probs[b,k]) / τ.
void nce_backward(float *denergy, const float *dloss, const float *probs, float tau, int B,
                  int K1) {
    if (!denergy) return;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K1; k++) {
            float delta = k == 0 ? 1.0f : 0.0f;
            denergy[(size_t)b * K1 + k] += dloss[b] * (delta - probs[(size_t)b * K1 + k]) / tau;
        }
}
