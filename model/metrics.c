// Evaluation metrics that are pure computation: retrieval ranks and recalls from an energy
// matrix, accuracy and F1, and the linear probe of the MVSA protocol (see model.h section 8).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

// ---------------------------------------------------------------------------------------------
// Retrieval

// 1 when candidate energy e beats-or-ties the correct one c (counts against c); NaN on either
// side also counts against it, so a broken model never looks good.
static int against(float e, float c) {
    return !(e > c);
}

void retrieval_ranks(int *ranks_t2i, int *ranks_i2t, const float *energy, int n) {
    for (int q = 0; q < n; q++) {
        if (ranks_t2i) { // caption q against every image: column q
            float c = energy[(size_t)q * n + q];
            int r = 1;
            for (int i = 0; i < n; i++)
                if (i != q) r += against(energy[(size_t)i * n + q], c);
            ranks_t2i[q] = r;
        }
        if (ranks_i2t) { // image q against every caption: row q
            const float *row = energy + (size_t)q * n;
            int r = 1;
            for (int j = 0; j < n; j++)
                if (j != q) r += against(row[j], row[q]);
            ranks_i2t[q] = r;
        }
    }
}

void retrieval_scores_from_ranks(RetrievalScores *out, const int *ranks, int n) {
    memset(out, 0, sizeof(*out));
    if (n < 1) return;
    // Ranks lie in [1, n]: a histogram gives the order statistics without sorting a copy.
    long *count = calloc((size_t)n + 2, sizeof(long));
    if (!count) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    long hit1 = 0, hit5 = 0, hit10 = 0;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        int r = ranks[i] < 1 ? 1 : ranks[i] > n ? n : ranks[i];
        count[r]++;
        hit1 += r <= 1;
        hit5 += r <= 5;
        hit10 += r <= 10;
        sum += r;
    }
    // k-th smallest rank (0-based k) from the histogram
    long lo_k = (n - 1) / 2, hi_k = n / 2, seen = 0;
    int lo = 0, hi = 0;
    for (int r = 1; r <= n; r++) {
        if (!lo && seen + count[r] > lo_k) lo = r;
        if (!hi && seen + count[r] > hi_k) hi = r;
        seen += count[r];
    }
    free(count);
    out->r1 = (double)hit1 / n;
    out->r5 = (double)hit5 / n;
    out->r10 = (double)hit10 / n;
    out->median_rank = 0.5 * (lo + hi);
    out->mean_rank = sum / n;
}

void retrieval_scores(RetrievalScores *t2i, RetrievalScores *i2t, const float *energy, int n) {
    int *rt = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    int *ri = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    if (!rt || !ri) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    retrieval_ranks(rt, ri, energy, n);
    retrieval_scores_from_ranks(t2i, rt, n);
    retrieval_scores_from_ranks(i2t, ri, n);
    free(rt);
    free(ri);
}

double retrieval_chance_recall(int k, int n) {
    if (n < 1) return 0;
    return (double)(k < n ? k : n) / n;
}

// ---------------------------------------------------------------------------------------------
// Classification

double metric_accuracy(const int *truth, const int *pred, int n) {
    if (n < 1) return 0;
    long ok = 0;
    for (int i = 0; i < n; i++)
        ok += truth[i] == pred[i];
    return (double)ok / n;
}

double metric_f1(double *per_class_f1, int64_t *support, double *macro_f1, const int *truth,
                 const int *pred, int n, int classes) {
    if (n < 1 || classes < 1) return -1;
    for (int i = 0; i < n; i++)
        if (truth[i] < 0 || truth[i] >= classes || pred[i] < 0 || pred[i] >= classes) return -1;
    int64_t *tp = calloc((size_t)classes * 3, sizeof(int64_t));
    if (!tp) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    int64_t *fp = tp + classes, *fn = tp + 2 * classes;
    for (int i = 0; i < n; i++) {
        if (truth[i] == pred[i]) {
            tp[truth[i]]++;
        } else {
            fp[pred[i]]++;
            fn[truth[i]]++;
        }
    }
    double weighted = 0, macro = 0;
    for (int c = 0; c < classes; c++) {
        int64_t denom = 2 * tp[c] + fp[c] + fn[c];
        double f1 = denom > 0 ? 2.0 * (double)tp[c] / (double)denom : 0.0;
        int64_t sup = tp[c] + fn[c];
        weighted += (double)sup * f1;
        macro += f1;
        if (per_class_f1) per_class_f1[c] = f1;
        if (support) support[c] = sup;
    }
    free(tp);
    if (macro_f1) *macro_f1 = macro / classes;
    return weighted / n;
}

// ---------------------------------------------------------------------------------------------
// Linear probe

void probe_config_default(ProbeConfig *pc) {
    pc->epochs = 50;
    pc->batch = 128;
    pc->lr = 1e-3f;
    pc->lr_decay = 0.9f;
    pc->beta1 = 0.9f;
    pc->beta2 = 0.999f;
    pc->eps = 1e-8f;
    pc->balance = 1;
    pc->seed = 0;
}

// Purposes of the probe's random streams (the `a` key of rng_init under RNG_STREAM_EVAL).
enum { PROBE_RNG_INIT = 101, PROBE_RNG_BALANCE = 102, PROBE_RNG_SHUFFLE = 103 };

static int rng_below(Rng *rng, int n) {
    return (int)(rng_next(rng) % (uint64_t)n); // n ≪ 2^64: the bias is negligible
}

// The training list: every index once, plus (balance) random extra copies of each minority
// class's samples up to the majority count. Returns its length (*out malloc'd), −1 when out of
// memory.
static int balanced_indices(int **out, const int *y, int n, int classes, int balance,
                            uint64_t seed) {
    int *count = calloc((size_t)classes, sizeof(int));
    if (!count) return -1;
    int majority = 0;
    for (int i = 0; i < n; i++)
        count[y[i]]++;
    for (int c = 0; c < classes; c++)
        majority = count[c] > majority ? count[c] : majority;
    long total = n;
    if (balance)
        for (int c = 0; c < classes; c++)
            if (count[c] > 0) total += majority - count[c];
    int *idx = total <= 0x7fffffff ? malloc((size_t)total * sizeof(int)) : NULL;
    int *members = malloc((size_t)n * sizeof(int));
    if (!idx || !members) {
        free(idx);
        free(members);
        free(count);
        return -1;
    }
    for (int i = 0; i < n; i++)
        idx[i] = i;
    long k = n;
    for (int c = 0; balance && c < classes; c++) {
        if (count[c] == 0 || count[c] == majority) continue;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (y[i] == c) members[m++] = i;
        Rng rng;
        rng_init(&rng, seed, RNG_STREAM_EVAL, PROBE_RNG_BALANCE, (uint64_t)c);
        for (int e = m; e < majority; e++)
            idx[k++] = members[rng_below(&rng, m)];
    }
    free(members);
    free(count);
    *out = idx;
    return (int)total;
}

int probe_train(LinearProbe *p, const float *x, const int *y, int n, int dim, int classes,
                const ProbeConfig *pc, char *err, size_t errlen) {
    memset(p, 0, sizeof(*p));
    if (n < 1 || dim < 1 || classes < 2 || pc->epochs < 1 || pc->batch < 1 || !(pc->lr > 0)) {
        snprintf(err, errlen,
                 "linear probe: needs ≥ 1 sample, dim ≥ 1, ≥ 2 classes, epochs, batch and lr > 0 "
                 "(got n=%d dim=%d classes=%d epochs=%d batch=%d lr=%g)",
                 n, dim, classes, pc->epochs, pc->batch, pc->lr);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= classes) {
            snprintf(err, errlen, "linear probe: label %d of sample %d is outside [0, %d)", y[i], i,
                     classes);
            return -1;
        }
    for (size_t i = 0; i < (size_t)n * dim; i++)
        if (!isfinite(x[i])) {
            snprintf(err, errlen, "linear probe: feature %zu of sample %zu is not finite", i % dim,
                     i / dim);
            return -1;
        }
    int *order = NULL;
    int total = balanced_indices(&order, y, n, classes, pc->balance, pc->seed);
    size_t W = (size_t)classes * dim, B = (size_t)pc->batch;
    // one allocation for parameters, gradients, Adam moments and the batch buffers
    size_t np = W + classes; // weight then bias, as one vector for Adam
    float *buf = calloc(4 * np + B * dim + 2 * B * classes, sizeof(float));
    if (total < 0 || !buf) {
        free(order);
        free(buf);
        snprintf(err, errlen, "linear probe: out of memory (%d samples, dim %d)", n, dim);
        return -1;
    }
    p->dim = dim;
    p->classes = classes;
    p->train_size = total;
    p->weight = buf;
    p->bias = buf + W;
    // parameters, gradients, first and second moments [np] each, then the batch buffers
    float *params = buf, *grad = buf + np, *m1 = buf + 2 * np, *m2 = buf + 3 * np;
    float *xb = buf + 4 * np, *logits = xb + B * dim, *dlogits = logits + B * classes;
    Rng rng;
    rng_init(&rng, pc->seed, RNG_STREAM_EVAL, PROBE_RNG_INIT, 0);
    float bound = 1.0f / sqrtf((float)dim);
    for (size_t i = 0; i < np; i++)
        params[i] = (2.0f * rng_uniform(&rng) - 1.0f) * bound;

    long t = 0;
    float lr = pc->lr;
    for (int epoch = 0; epoch < pc->epochs; epoch++) {
        rng_init(&rng, pc->seed, RNG_STREAM_EVAL, PROBE_RNG_SHUFFLE, (uint64_t)epoch);
        for (int i = total - 1; i > 0; i--) { // Fisher–Yates
            int j = rng_below(&rng, i + 1), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        double loss_sum = 0;
        for (int s = 0; s < total; s += pc->batch) {
            int nb = total - s < pc->batch ? total - s : pc->batch;
            for (int r = 0; r < nb; r++)
                memcpy(xb + (size_t)r * dim, x + (size_t)order[s + r] * dim, dim * sizeof(float));
            linear_forward(logits, xb, p->weight, p->bias, nb, dim, classes);
            // softmax cross-entropy; dlogits = (softmax − onehot) / nb
            for (int r = 0; r < nb; r++) {
                const float *l = logits + (size_t)r * classes;
                float *d = dlogits + (size_t)r * classes;
                float mx = l[0];
                for (int c = 1; c < classes; c++)
                    mx = l[c] > mx ? l[c] : mx;
                double z = 0;
                for (int c = 0; c < classes; c++)
                    z += exp((double)(l[c] - mx));
                int label = y[order[s + r]];
                loss_sum += log(z) - (double)(l[label] - mx);
                for (int c = 0; c < classes; c++)
                    d[c] = (float)(exp((double)(l[c] - mx)) / z) / nb;
                d[label] -= 1.0f / nb;
            }
            memset(grad, 0, np * sizeof(float));
            linear_backward(NULL, grad, grad + W, dlogits, xb, p->weight, nb, dim, classes);
            t++;
            float c1 = 1.0f - powf(pc->beta1, (float)t), c2 = 1.0f - powf(pc->beta2, (float)t);
            for (size_t i = 0; i < np; i++) {
                float g = grad[i];
                m1[i] = pc->beta1 * m1[i] + (1.0f - pc->beta1) * g;
                m2[i] = pc->beta2 * m2[i] + (1.0f - pc->beta2) * g * g;
                params[i] -= lr * (m1[i] / c1) / (sqrtf(m2[i] / c2) + pc->eps);
            }
        }
        p->final_loss = loss_sum / total;
        lr *= pc->lr_decay;
    }
    free(order);
    return 0;
}

void probe_predict(int *pred, const LinearProbe *p, const float *x, int n) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * p->dim;
        int best = 0;
        float best_v = 0;
        for (int c = 0; c < p->classes; c++) {
            const float *w = p->weight + (size_t)c * p->dim;
            float v = p->bias[c];
            for (int k = 0; k < p->dim; k++)
                v += w[k] * xi[k];
            if (c == 0 || v > best_v) {
                best = c;
                best_v = v;
            }
        }
        pred[i] = best;
    }
}

void probe_free(LinearProbe *p) {
    free(p->weight); // bias, gradients and moments live in the same allocation
    memset(p, 0, sizeof(*p));
}
