// AdamW with decoupled weight decay (none on 1-D tensors), I-JEPA schedules, gradient clipping,
// and the EMA update of the target crosser (and, in scratch mode, the target image encoder).
#include <math.h>
#include <omp.h>

#include "network.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void optim_config_default(OptimConfig *oc) {
    oc->lr = 1e-3f;
    oc->start_lr = 2e-4f;
    oc->final_lr = 1e-6f;
    oc->warmup_steps = 0;
    oc->total_steps = 1;
    oc->weight_decay = 0.04f;
    oc->final_weight_decay = 0.4f;
    oc->ema_start = 0.996f;
    oc->ema_end = 1.0f;
    oc->clip_grad = 0.0f;
    oc->beta1 = 0.9f;
    oc->beta2 = 0.999f;
    oc->eps = 1e-8f;
}

static double clamp01(double x) {
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

float schedule_lr(const OptimConfig *oc, long t) {
    double u = (double)t + 1, W = oc->warmup_steps, T = oc->total_steps;
    if (u < W) return (float)(oc->start_lr + (u / W) * (oc->lr - oc->start_lr));
    double span = T - W > 1 ? T - W : 1;
    double progress = clamp01((u - W) / span);
    return (float)(oc->final_lr + (oc->lr - oc->final_lr) * 0.5 * (1.0 + cos(M_PI * progress)));
}

float schedule_wd(const OptimConfig *oc, long t) {
    double progress = clamp01(((double)t + 1) / (oc->total_steps > 0 ? oc->total_steps : 1));
    return (float)(oc->final_weight_decay + (oc->weight_decay - oc->final_weight_decay) * 0.5 *
                                                (1.0 + cos(M_PI * progress)));
}

float schedule_ema(const OptimConfig *oc, long t) {
    double T = oc->total_steps > 0 ? oc->total_steps : 1;
    return (float)(oc->ema_start + (double)t * (oc->ema_end - oc->ema_start) / T);
}

double grad_norm(const Model *m) {
    // Fixed-order double accumulation: the same bits for any thread count.
    double total = 0;
    for (int ti = m->first_trainable; ti < m->n_tensors; ti++) {
        const TensorInfo *t = &m->tensors[ti];
        const float *g = m->grads + (t->offset - m->train_off);
        double s = 0;
        for (size_t i = 0; i < t->numel; i++)
            s += (double)g[i] * g[i];
        total += s;
    }
    return sqrt(total);
}

double optim_step(Model *m, const OptimConfig *oc, long t) {
    double norm = grad_norm(m);
    float gscale = 1.0f;
    if (oc->clip_grad > 0 && norm > oc->clip_grad) gscale = (float)(oc->clip_grad / (norm + 1e-6));
    float lr = schedule_lr(oc, t), wd = schedule_wd(oc, t);
    float b1 = oc->beta1, b2 = oc->beta2, eps = oc->eps;
    float bc1 = 1.0f - powf(b1, (float)(t + 1)), bc2 = 1.0f - powf(b2, (float)(t + 1));
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    for (int ti = m->first_trainable; ti < m->n_tensors; ti++) {
        const TensorInfo *tn = &m->tensors[ti];
        size_t off = tn->offset - m->train_off;
        float *p = m->params + tn->offset, *g = m->grads + off;
        float *mm = m->adam_m + off, *vv = m->adam_v + off;
        float decay = tn->decay ? 1.0f - lr * wd : 1.0f;
        long n = (long)tn->numel;
#pragma omp parallel for schedule(static) if (n > 32768)
        for (long i = 0; i < n; i++) {
            float gi = g[i] * gscale;
            mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
            vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
            p[i] = p[i] * decay - step_size * mm[i] / (sqrtf(vv[i]) / bc2_sqrt + eps);
        }
    }
    // EMA: k = m·k + (1 − m)·q over the EMA range.
    float mom = schedule_ema(oc, t);
    float *k = m->ema;
    const float *q = m->params + m->ema_off;
    long n = (long)m->ema_cnt;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (long i = 0; i < n; i++)
        k[i] = mom * k[i] + (1.0f - mom) * q[i];
    return norm;
}
