// Transformer blocks: pre-LN self-attention (encoders, predictor) and the crosser's cross block.
#include <omp.h>
#include <string.h>

#include "blocks.h"

float *arena_take(Arena *a, size_t n) {
    // Keep every tensor 64-byte aligned (16 floats) for vector loads.
    size_t start = (a->used + 15) & ~(size_t)15;
    a->used = start + n;
    return a->base ? a->base + start : NULL;
}

// Rows per block of the fused LayerNorm + linear and MLP forwards (their workspace).
#define BLOCK_WORK_ROWS 128

// Workspace of the fused forwards: per thread slot, BLOCK_WORK_ROWS rows of LN (D) + GELU (4D),
// or `extra` floats if more (a self block's n×n attention probabilities of one head).
static size_t work_slot(int D, size_t extra) {
    size_t rows = (size_t)BLOCK_WORK_ROWS * 5 * D;
    return rows > extra ? rows : extra;
}

static float *work_take(Arena *ar, int D, size_t extra, int *threads) {
    *threads = omp_get_max_threads();
    return arena_take(ar, (size_t)*threads * work_slot(D, extra));
}

void self_block_acts_take(SelfBlockActs *a, Arena *ar, int B, int n, int D, int heads,
                          float *shared_att) {
    size_t N = (size_t)B * n;
    a->ln1_mean = arena_take(ar, N);
    a->ln1_rstd = arena_take(ar, N);
    a->qkv = arena_take(ar, N * 3 * D);
    a->probs = arena_take(ar, (size_t)B * heads * n * n);
    a->att = shared_att ? shared_att : arena_take(ar, N * D);
    a->mid = arena_take(ar, N * D);
    a->ln2_mean = arena_take(ar, N);
    a->ln2_rstd = arena_take(ar, N);
    a->fc1 = arena_take(ar, N * 4 * D);
    a->gelu = arena_take(ar, N * 4 * D); // untouched by the blocks: costs no resident memory
    a->work = work_take(ar, D, (size_t)n * n, &a->work_threads);
    a->valid_buf = (uint8_t *)arena_take(ar, (N + 3) / 4);
    a->valid = NULL;
}

void cross_block_acts_take(CrossBlockActs *a, Arena *ar, int B, int n, int L, int D, int heads,
                           float *shared_att) {
    size_t N = (size_t)B * n, Nt = (size_t)B * L;
    a->lnz_mean = arena_take(ar, N);
    a->lnz_rstd = arena_take(ar, N);
    a->lnt_mean = arena_take(ar, Nt);
    a->lnt_rstd = arena_take(ar, Nt);
    a->q = arena_take(ar, N * D);
    a->kv = arena_take(ar, Nt * 2 * D);
    a->probs = shared_att ? NULL : arena_take(ar, (size_t)B * heads * n * L);
    a->att = shared_att ? shared_att : arena_take(ar, N * D);
    a->mid = arena_take(ar, N * D);
    a->ln2_mean = arena_take(ar, N);
    a->ln2_rstd = arena_take(ar, N);
    a->fc1 = arena_take(ar, N * 4 * D);
    a->work = work_take(ar, D, (size_t)n * L, &a->work_threads);
    a->valid_buf = shared_att ? (uint8_t *)arena_take(ar, (Nt + 3) / 4) : NULL;
    a->valid = NULL;
}

void block_scratch_take(BlockScratch *s, Arena *ar, size_t nd, size_t ntd, size_t head_nn) {
    s->dln = arena_take(ar, nd);
    s->dqkv = arena_take(ar, nd + 2 * (nd > ntd ? nd : ntd));
    s->datt = arena_take(ar, nd);
    s->dfc1 = arena_take(ar, nd * 4);
    s->dlnt = arena_take(ar, ntd);
    s->ln = arena_take(ar, nd > ntd ? nd : ntd);
    s->att = arena_take(ar, nd);
    s->head_ws_slots = omp_get_max_threads();
    s->head_ws = arena_take(ar, (size_t)s->head_ws_slots * 2 * head_nn);
}

// Threads for a row-block loop over `blocks` blocks: at most the workspace slots planned.
static int work_team(int blocks, int planned) {
    int t = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (t > planned) t = planned;
    if (t > blocks) t = blocks;
    return t < 1 ? 1 : t;
}

// out[N,O] = LN(x)[N,D]·weightᵀ + bias, the LayerNorm output made per row block in the
// workspace and never stored whole; mean/rstd [N] saved for the backward.
static void ln_linear_forward(float *out, float *mean, float *rstd, const float *x,
                              const float *ln_w, const float *ln_b, const float *weight,
                              const float *bias, int N, int D, int O, float *work, size_t slot,
                              int planned) {
    int blocks = (N + BLOCK_WORK_ROWS - 1) / BLOCK_WORK_ROWS;
#pragma omp parallel for schedule(dynamic, 1) num_threads(work_team(blocks, planned))
    for (int blk = 0; blk < blocks; blk++) {
        int r0 = blk * BLOCK_WORK_ROWS, rows = N - r0 < BLOCK_WORK_ROWS ? N - r0 : BLOCK_WORK_ROWS;
        float *ln = work + (size_t)omp_get_thread_num() * slot;
        layernorm_forward(ln, mean + r0, rstd + r0, x + (size_t)r0 * D, ln_w, ln_b, rows, D);
        linear_forward(out + (size_t)r0 * O, ln, weight, bias, rows, D, O);
    }
}

// The key bias adds q·b_k to every logit of a query row, which softmax ignores: its gradient is
// exactly zero. Computed, it is rounding noise that Adam would turn into lr-sized steps (and
// into differences between rank counts), so the exact value is stored instead. Each block's key
// bias receives this single contribution per step, so overwriting the accumulator is safe.
static void zero_key_bias_grad(float *dkey_bias, int D) {
    if (dkey_bias) memset(dkey_bias, 0, (size_t)D * sizeof(float));
}

// The MLP half shared by both blocks: out = mid + fc2(gelu(fc1(LN2(mid)))), per row block:
// LN2 and GELU outputs live only in the workspace (the backward recomputes them), fc1 is kept.
// out may alias nothing that is read here but mid.
static void mlp_forward(float *out, float *ln2_mean, float *ln2_rstd, float *fc1, const float *mid,
                        const float *n2w, const float *n2b, const float *fc1w, const float *fc1b,
                        const float *fc2w, const float *fc2b, int N, int D, float *work,
                        size_t slot, int planned) {
    int blocks = (N + BLOCK_WORK_ROWS - 1) / BLOCK_WORK_ROWS;
#pragma omp parallel for schedule(dynamic, 1) num_threads(work_team(blocks, planned))
    for (int blk = 0; blk < blocks; blk++) {
        int r0 = blk * BLOCK_WORK_ROWS, rows = N - r0 < BLOCK_WORK_ROWS ? N - r0 : BLOCK_WORK_ROWS;
        float *ln = work + (size_t)omp_get_thread_num() * slot;
        float *act = ln + (size_t)BLOCK_WORK_ROWS * D;
        float *h = fc1 + (size_t)r0 * 4 * D, *o = out + (size_t)r0 * D;
        const float *m = mid + (size_t)r0 * D;
        layernorm_forward(ln, ln2_mean + r0, ln2_rstd + r0, m, n2w, n2b, rows, D);
        linear_forward(h, ln, fc1w, fc1b, rows, D, 4 * D);
        gelu_forward(act, h, (size_t)rows * 4 * D);
        linear_forward(o, act, fc2w, fc2b, rows, 4 * D, D);
        add_forward(o, o, m, (size_t)rows * D);
    }
}

// dx: ∂L/∂out in, ∂L/∂mid out (in place). GELU and LN2 outputs are recomputed (same kernels on
// the same rows: the same bits as in the forward).
static void mlp_backward(float *dx, BlockScratch *s, float *g_n2w, float *g_n2b, float *g_fc1w,
                         float *g_fc1b, float *g_fc2w, float *g_fc2b, const float *mid,
                         const float *ln2_mean, const float *ln2_rstd, const float *fc1,
                         const float *n2w, const float *n2b, const float *fc1w, const float *fc2w,
                         int N, int D) {
    size_t nh = (size_t)N * 4 * D;
    // One [N,4D] buffer: the activation for fc2's weight gradient, then overwritten by
    // ∂L/∂gelu = dx·fc2w, then turned in place into ∂L/∂fc1.
    gelu_forward(s->dfc1, fc1, nh);
    linear_backward(NULL, g_fc2w, g_fc2b, dx, s->dfc1, fc2w, N, 4 * D, D);
    linear_backward_set(s->dfc1, NULL, NULL, dx, NULL, fc2w, N, 4 * D, D);
    gelu_backward_set(s->dfc1, s->dfc1, fc1, nh);
    layernorm_forward(s->ln, NULL, NULL, mid, n2w, n2b, N, D);
    linear_backward_set(s->dln, g_fc1w, g_fc1b, s->dfc1, s->ln, fc1w, N, D, 4 * D);
    layernorm_backward(dx, g_n2w, g_n2b, s->dln, mid, n2w, ln2_mean, ln2_rstd, N, D);
}

void self_block_forward(float *x_out, SelfBlockActs *a, const SelfBlockW *w, const float *x_in,
                        const uint8_t *valid, int B, int n, int D, int heads) {
    int N = B * n;
    size_t slot = work_slot(D, (size_t)n * n);
    a->valid = NULL; // kept for the backward's recomputation of the probabilities
    if (valid) {
        memcpy(a->valid_buf, valid, (size_t)N);
        a->valid = a->valid_buf;
    }
    ln_linear_forward(a->qkv, a->ln1_mean, a->ln1_rstd, x_in, w->norm1_w, w->norm1_b, w->qkv_w,
                      w->qkv_b, N, D, 3 * D, a->work, slot, a->work_threads);
    attention_forward_nosave(a->att, a->work, a->work_threads, a->qkv, a->qkv + D, a->qkv + 2 * D,
                             valid, B, n, n, D, heads, 3 * D, 3 * D);
    linear_forward(a->mid, a->att, w->proj_w, w->proj_b, N, D, D);
    add_forward(a->mid, a->mid, x_in, (size_t)N * D);
    mlp_forward(x_out, a->ln2_mean, a->ln2_rstd, a->fc1, a->mid, w->norm2_w, w->norm2_b, w->fc1_w,
                w->fc1_b, w->fc2_w, w->fc2_b, N, D, a->work, slot, a->work_threads);
}

void self_block_backward(float *dx, const SelfBlockW *g, BlockScratch *s, const SelfBlockActs *a,
                         const SelfBlockW *w, const float *x_in, int B, int n, int D, int heads) {
    int N = B * n;
    mlp_backward(dx, s, g->norm2_w, g->norm2_b, g->fc1_w, g->fc1_b, g->fc2_w, g->fc2_b, a->mid,
                 a->ln2_mean, a->ln2_rstd, a->fc1, w->norm2_w, w->norm2_b, w->fc1_w, w->fc2_w, N,
                 D);
    // The attention output is recomputed with the probabilities (s->att), then serves the
    // projection's weight gradient.
    linear_backward_set(s->datt, NULL, NULL, dx, NULL, w->proj_w, N, D, D);
    attention_backward_recompute(s->dqkv, s->dqkv + D, s->dqkv + 2 * D, s->att, s->head_ws,
                                 s->head_ws_slots, s->datt, a->qkv, a->qkv + D, a->qkv + 2 * D,
                                 a->valid, B, n, n, D, heads, 3 * D, 3 * D);
    linear_backward(NULL, g->proj_w, g->proj_b, dx, s->att, w->proj_w, N, D, D);
    layernorm_forward(s->ln, NULL, NULL, x_in, w->norm1_w, w->norm1_b, N, D); // LN1, recomputed
    linear_backward_set(s->dln, g->qkv_w, g->qkv_b, s->dqkv, s->ln, w->qkv_w, N, D, 3 * D);
    zero_key_bias_grad(g->qkv_b ? g->qkv_b + D : NULL, D);
    layernorm_backward(dx, g->norm1_w, g->norm1_b, s->dln, x_in, w->norm1_w, a->ln1_mean,
                       a->ln1_rstd, N, D);
}

void cross_block_forward(float *z_out, CrossBlockActs *a, const CrossBlockW *w, const float *z_in,
                         const float *t, const uint8_t *valid, int B, int n, int L, int H,
                         int heads) {
    int N = B * n, Nt = B * L;
    size_t slot = work_slot(H, 0);
    ln_linear_forward(a->q, a->lnz_mean, a->lnz_rstd, z_in, w->norm1_w, w->norm1_b, w->q_w, w->q_b,
                      N, H, H, a->work, slot, a->work_threads);
    ln_linear_forward(a->kv, a->lnt_mean, a->lnt_rstd, t, w->norm1_w, w->norm1_b, w->kv_w, w->kv_b,
                      Nt, H, 2 * H, a->work, slot, a->work_threads);
    if (a->probs) { // inference: the maps stay for `tijepa explain`
        attention_forward(a->att, a->probs, a->q, a->kv, a->kv + H, valid, B, n, L, H, heads, H,
                          2 * H);
    } else { // a backward follows and recomputes them: keep the key mask only
        a->valid = NULL;
        if (valid) {
            memcpy(a->valid_buf, valid, (size_t)Nt);
            a->valid = a->valid_buf;
        }
        attention_forward_nosave(a->att, a->work, a->work_threads, a->q, a->kv, a->kv + H, valid, B,
                                 n, L, H, heads, H, 2 * H);
    }
    linear_forward(a->mid, a->att, w->proj_w, w->proj_b, N, H, H);
    add_forward(a->mid, a->mid, z_in, (size_t)N * H);
    mlp_forward(z_out, a->ln2_mean, a->ln2_rstd, a->fc1, a->mid, w->norm2_w, w->norm2_b, w->fc1_w,
                w->fc1_b, w->fc2_w, w->fc2_b, N, H, a->work, slot, a->work_threads);
}

void cross_block_backward(float *dz, float *dt, const CrossBlockW *g, BlockScratch *s,
                          const CrossBlockActs *a, const CrossBlockW *w, const float *z_in,
                          const float *t, int B, int n, int L, int H, int heads) {
    int N = B * n, Nt = B * L;
    mlp_backward(dz, s, g->norm2_w, g->norm2_b, g->fc1_w, g->fc1_b, g->fc2_w, g->fc2_b, a->mid,
                 a->ln2_mean, a->ln2_rstd, a->fc1, w->norm2_w, w->norm2_b, w->fc1_w, w->fc2_w, N,
                 H);
    // dq and dkv share the dqkv workspace: dq [N,H] first, then dkv [Nt,2H]. The probabilities
    // and the attention output (s->att, for the projection's weight gradient) are recomputed.
    float *dq = s->dqkv, *dkv = s->dqkv + (size_t)N * H;
    linear_backward_set(s->datt, NULL, NULL, dz, NULL, w->proj_w, N, H, H);
    attention_backward_recompute(dq, dkv, dkv + H, s->att, s->head_ws, s->head_ws_slots, s->datt,
                                 a->q, a->kv, a->kv + H, a->valid, B, n, L, H, heads, H, 2 * H);
    linear_backward(NULL, g->proj_w, g->proj_b, dz, s->att, w->proj_w, N, H, H);
    layernorm_forward(s->ln, NULL, NULL, z_in, w->norm1_w, w->norm1_b, N, H); // LN1(z), recomputed
    linear_backward_set(s->dln, g->q_w, g->q_b, dq, s->ln, w->q_w, N, H, H);
    layernorm_backward(dz, g->norm1_w, g->norm1_b, s->dln, z_in, w->norm1_w, a->lnz_mean,
                       a->lnz_rstd, N, H);
    layernorm_forward(s->ln, NULL, NULL, t, w->norm1_w, w->norm1_b, Nt, H); // LN1(t), recomputed
    linear_backward_set(s->dlnt, g->kv_w, g->kv_b, dkv, s->ln, w->kv_w, Nt, H, 2 * H);
    zero_key_bias_grad(g->kv_b, H);
    layernorm_backward(dt, g->norm1_w, g->norm1_b, s->dlnt, t, w->norm1_w, a->lnt_mean, a->lnt_rstd,
                       Nt, H);
}
