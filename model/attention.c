// Multi-head scaled dot-product attention with a key-padding mask, on OpenBLAS.
// Each (batch, head) pair is a handful of sgemms that read its slice of q, k and v in place
// through the row strides (so fused qkv / kv projections need no copies), plus a row-wise masked
// softmax. The (batch, head) pairs are independent: with enough of them, they are spread over
// OpenMP threads, each sgemm single-threaded (OpenBLAS stays pinned to one thread, linear.c);
// otherwise they run in order with OpenMP over the softmax rows. Every output element is written by
// exactly one (batch, head), so the result does not depend on the thread count.
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "blocks.h"
#include "model.h"
#include "vecmath.h"

#define SOFTMAX_PARALLEL_MIN 16384L
// Below this many multiply-adds per sgemm pass, a thread team costs more than it saves.
#define HEADS_PARALLEL_MIN 65536L

typedef struct {
    float *out, *probs;            // forward outputs
    float *dq, *dk, *dv, *scratch; // backward outputs and workspace
    const float *q, *k, *v, *dout, *probs_in;
    const uint8_t *key_valid;
    int B, Nq, Nk, D, heads, head_dim, q_stride, kv_stride;
    float scale;
    float beta; // backward: 1 accumulates into dq/dk/dv, 0 overwrites them
    // Forward without saved probabilities (probs NULL): thread t uses ws + t·ws_slot floats,
    // at most ws_slots threads.
    float *ws;
    size_t ws_slot;
    int ws_slots;
} attention_args;

// Work on one (batch b, head h); parallel_rows allows OpenMP over query rows inside.
typedef void (*head_fn)(const attention_args *a, int b, int h, int parallel_rows);

static size_t q_offset(const attention_args *a, int b, int h) {
    return (size_t)b * a->Nq * a->q_stride + (size_t)h * a->head_dim;
}
static size_t kv_offset(const attention_args *a, int b, int h) {
    return (size_t)b * a->Nk * a->kv_stride + (size_t)h * a->head_dim;
}
static size_t out_offset(const attention_args *a, int b, int h) {
    return (size_t)b * a->Nq * a->D + (size_t)h * a->head_dim;
}
static size_t probs_offset(const attention_args *a, int b, int h) {
    return ((size_t)b * a->heads + h) * a->Nq * a->Nk;
}

// Runs fn over every (b, h): over OpenMP threads when the work is large enough, each pair's
// sgemms single-threaded.
static void for_each_head(head_fn fn, const attention_args *a) {
    int items = a->B * a->heads;
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (a->ws && threads > a->ws_slots) threads = a->ws_slots;
    long work = (long)items * a->Nq * a->Nk * a->head_dim;
    blas_single_thread(); // as in linear.c: OpenMP threads only, never OpenBLAS's pool too
    if (threads > 1 && items >= threads && work >= HEADS_PARALLEL_MIN) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int it = 0; it < items; it++)
            fn(a, it / a->heads, it % a->heads, 0);
    } else {
        for (int it = 0; it < items; it++)
            fn(a, it / a->heads, it % a->heads, threads > 1);
    }
}

// One row of logits → probabilities over the valid keys (valid may be NULL = all valid).
// Masked keys get probability 0; a row with no valid key becomes all zeros. Vectorised: the max
// and the sum are SIMD reductions, exp is vecmath.h's (its arguments are ≤ 0 here).
static inline void masked_softmax_row(float *p, const uint8_t *valid, int Nk) {
    float max = -INFINITY;
    int any = 0;
#pragma omp simd reduction(max : max) reduction(| : any)
    for (int j = 0; j < Nk; j++) {
        int ok = !valid || valid[j];
        float v = ok ? p[j] : -INFINITY;
        max = v > max ? v : max;
        any |= ok;
    }
    if (!any) {
        for (int j = 0; j < Nk; j++)
            p[j] = 0.0f;
        return;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < Nk; j++) {
        float e = (!valid || valid[j]) ? vec_exp(p[j] - max) : 0.0f;
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < Nk; j++)
        p[j] *= inv;
}

static void masked_softmax_rows(float *p, const uint8_t *valid, int Nq, int Nk, int parallel) {
#pragma omp parallel for schedule(static) if (parallel && (long)Nq * Nk > SOFTMAX_PARALLEL_MIN)
    for (int i = 0; i < Nq; i++)
        masked_softmax_row(p + (size_t)i * Nk, valid, Nk);
}

// P = softmax(scale·Q·Kᵀ) [Nq,Nk] of one (b, h) into p.
static void probs_of_head(float *p, const attention_args *a, int b, int h, int parallel_rows) {
    const float *q = a->q + q_offset(a, b, h);
    const float *k = a->k + kv_offset(a, b, h);
    const uint8_t *valid = a->key_valid ? a->key_valid + (size_t)b * a->Nk : NULL;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->Nq, a->Nk, a->head_dim, a->scale, q,
                a->q_stride, k, a->kv_stride, 0.0f, p, a->Nk);
    masked_softmax_rows(p, valid, a->Nq, a->Nk, parallel_rows);
}

// P = softmax(scale·Q·Kᵀ) [Nq,Nk]; O = P·V written into out's head slice. P goes to probs, or
// to this thread's workspace slot when probs is not kept.
static void forward_head(const attention_args *a, int b, int h, int parallel_rows) {
    const float *v = a->v + kv_offset(a, b, h);
    float *p = a->probs ? a->probs + probs_offset(a, b, h)
                        : a->ws + (size_t)omp_get_thread_num() * a->ws_slot;
    probs_of_head(p, a, b, h, parallel_rows);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->Nq, a->head_dim, a->Nk, 1.0f, p,
                a->Nk, v, a->kv_stride, 0.0f, a->out + out_offset(a, b, h), a->D);
}

static attention_args make_args(const float *q, const float *k, const float *v, int B, int Nq,
                                int Nk, int D, int heads, int q_stride, int kv_stride) {
    attention_args a = {0};
    a.q = q;
    a.k = k;
    a.v = v;
    a.B = B;
    a.Nq = Nq;
    a.Nk = Nk;
    a.D = D;
    a.heads = heads;
    a.head_dim = D / heads;
    a.q_stride = q_stride;
    a.kv_stride = kv_stride;
    a.scale = 1.0f / sqrtf((float)a.head_dim);
    a.beta = 1.0f;
    return a;
}

// out [B,Nq,D], probs [B,heads,Nq,Nk]; q/k/v rows at the given strides; key_valid [B,Nk] or NULL.
void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       const uint8_t *key_valid, int B, int Nq, int Nk, int D, int heads,
                       int q_stride, int kv_stride) {
    if (B <= 0 || Nq <= 0 || heads <= 0) return;
    if (Nk <= 0) { // no keys at all: every query is fully masked
        for (size_t i = 0; i < (size_t)B * Nq * D; i++)
            out[i] = 0.0f;
        return;
    }
    attention_args a = make_args(q, k, v, B, Nq, Nk, D, heads, q_stride, kv_stride);
    a.out = out;
    a.probs = probs;
    a.key_valid = key_valid;
    for_each_head(forward_head, &a);
}

// attention_forward without keeping the probabilities: ws holds ws_slots slots of Nq·Nk floats.
void attention_forward_nosave(float *out, float *ws, int ws_slots, const float *q, const float *k,
                              const float *v, const uint8_t *key_valid, int B, int Nq, int Nk,
                              int D, int heads, int q_stride, int kv_stride) {
    if (B <= 0 || Nq <= 0 || heads <= 0) return;
    if (Nk <= 0) {
        for (size_t i = 0; i < (size_t)B * Nq * D; i++)
            out[i] = 0.0f;
        return;
    }
    attention_args a = make_args(q, k, v, B, Nq, Nk, D, heads, q_stride, kv_stride);
    a.out = out;
    a.key_valid = key_valid;
    a.ws = ws;
    a.ws_slot = (size_t)Nq * Nk;
    a.ws_slots = ws_slots < 1 ? 1 : ws_slots;
    for_each_head(forward_head, &a);
}

// dS = P∘(dP − rowsum(dP∘P)) in place over dP, row by row.
static void softmax_backward_rows(float *ds, const float *p, int Nq, int Nk, int parallel) {
#pragma omp parallel for schedule(static) if (parallel && (long)Nq * Nk > SOFTMAX_PARALLEL_MIN)
    for (int i = 0; i < Nq; i++) {
        float *row = ds + (size_t)i * Nk;
        const float *prow = p + (size_t)i * Nk;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < Nk; j++)
            dot += row[j] * prow[j];
#pragma omp simd
        for (int j = 0; j < Nk; j++)
            row[j] = prow[j] * (row[j] - dot);
    }
}

// dV += Pᵀ·dO; dP = dO·Vᵀ into ds; dS = softmax backward; dQ += scale·dS·K; dK += scale·dSᵀ·Q
// (= instead of += when beta is 0), for one (b, h) whose probabilities are p [Nq,Nk].
static void backward_of_head(const attention_args *a, int b, int h, const float *p, float *ds,
                             int parallel_rows) {
    size_t qo = q_offset(a, b, h), kvo = kv_offset(a, b, h);
    const float *dout = a->dout + out_offset(a, b, h);
    int Nq = a->Nq, Nk = a->Nk, hd = a->head_dim;
    if (a->dv)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Nk, hd, Nq, 1.0f, p, Nk, dout, a->D,
                    a->beta, a->dv + kvo, a->kv_stride);
    if (!a->dq && !a->dk) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Nq, Nk, hd, 1.0f, dout, a->D, a->v + kvo,
                a->kv_stride, 0.0f, ds, Nk);
    softmax_backward_rows(ds, p, Nq, Nk, parallel_rows);
    if (a->dq)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Nq, hd, Nk, a->scale, ds, Nk,
                    a->k + kvo, a->kv_stride, a->beta, a->dq + qo, a->q_stride);
    if (a->dk)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Nk, hd, Nq, a->scale, ds, Nk,
                    a->q + qo, a->q_stride, a->beta, a->dk + kvo, a->kv_stride);
}

static void backward_head(const attention_args *a, int b, int h, int parallel_rows) {
    backward_of_head(a, b, h, a->probs_in + probs_offset(a, b, h),
                     a->scratch + probs_offset(a, b, h), parallel_rows);
}

// The probabilities recomputed into this thread's workspace slot (P, then room for dS), the
// output P·V rewritten when out is set, then the backward: nothing of the forward is kept.
static void recompute_backward_head(const attention_args *a, int b, int h, int parallel_rows) {
    float *p = a->ws + (size_t)omp_get_thread_num() * a->ws_slot;
    float *ds = p + (size_t)a->Nq * a->Nk;
    probs_of_head(p, a, b, h, parallel_rows);
    if (a->out)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->Nq, a->head_dim, a->Nk, 1.0f, p,
                    a->Nk, a->v + kv_offset(a, b, h), a->kv_stride, 0.0f,
                    a->out + out_offset(a, b, h), a->D);
    backward_of_head(a, b, h, p, ds, parallel_rows);
}

// dq/dk/dv accumulate at the strides of q/k/v (NULL = skipped); scratch [B,heads,Nq,Nk].
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *q, const float *k, const float *v, const float *probs, int B,
                        int Nq, int Nk, int D, int heads, int q_stride, int kv_stride) {
    if (B <= 0 || Nq <= 0 || Nk <= 0 || heads <= 0) return; // no keys: nothing to add
    attention_args a = make_args(q, k, v, B, Nq, Nk, D, heads, q_stride, kv_stride);
    a.dq = dq;
    a.dk = dk;
    a.dv = dv;
    a.scratch = scratch;
    a.dout = dout;
    a.probs_in = probs;
    for_each_head(backward_head, &a);
}

// The backward that keeps nothing from the forward: each (batch, head) recomputes its
// probabilities (the forward's bits) in thread t's slot ws + t·2·Nq·Nk (at most ws_slots
// threads), and, when out is not NULL, rewrites its slice of the forward's output out [B,Nq,D]
// (for the output projection's weight gradient). dq/dk/dv overwritten, NULL skipped.
void attention_backward_recompute(float *dq, float *dk, float *dv, float *out, float *ws,
                                  int ws_slots, const float *dout, const float *q, const float *k,
                                  const float *v, const uint8_t *key_valid, int B, int Nq, int Nk,
                                  int D, int heads, int q_stride, int kv_stride) {
    if (B <= 0 || Nq <= 0 || heads <= 0) return;
    if (Nk <= 0) { // no keys: the output and dq are zero (and there are no key rows)
        for (size_t r = 0; r < (size_t)B * Nq; r++)
            for (int d = 0; d < D; d++) {
                if (dq) dq[r * q_stride + d] = 0.0f;
                if (out) out[r * D + d] = 0.0f;
            }
        return;
    }
    attention_args a = make_args(q, k, v, B, Nq, Nk, D, heads, q_stride, kv_stride);
    a.dq = dq;
    a.dk = dk;
    a.dv = dv;
    a.beta = 0.0f;
    a.out = out;
    a.dout = dout;
    a.key_valid = key_valid;
    a.ws = ws;
    a.ws_slot = 2 * (size_t)Nq * Nk;
    a.ws_slots = ws_slots < 1 ? 1 : ws_slots;
    for_each_head(recompute_backward_head, &a);
}
