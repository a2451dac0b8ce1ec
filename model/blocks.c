// Transformer blocks: pre-LN self-attention (encoders, predictor) and the crosser's cross block.
#include <string.h>

#include "blocks.h"

float *arena_take(Arena *a, size_t n) {
    // Keep every tensor 64-byte aligned (16 floats) for vector loads.
    size_t start = (a->used + 15) & ~(size_t)15;
    a->used = start + n;
    return a->base ? a->base + start : NULL;
}

void self_block_acts_take(SelfBlockActs *a, Arena *ar, int B, int n, int D, int heads) {
    size_t N = (size_t)B * n;
    a->ln1 = arena_take(ar, N * D);
    a->ln1_mean = arena_take(ar, N);
    a->ln1_rstd = arena_take(ar, N);
    a->qkv = arena_take(ar, N * 3 * D);
    a->probs = arena_take(ar, (size_t)B * heads * n * n);
    a->att = arena_take(ar, N * D);
    a->mid = arena_take(ar, N * D);
    a->ln2 = arena_take(ar, N * D);
    a->ln2_mean = arena_take(ar, N);
    a->ln2_rstd = arena_take(ar, N);
    a->fc1 = arena_take(ar, N * 4 * D);
    a->gelu = arena_take(ar, N * 4 * D);
}

void cross_block_acts_take(CrossBlockActs *a, Arena *ar, int B, int n, int L, int D, int heads) {
    size_t N = (size_t)B * n, Nt = (size_t)B * L;
    a->lnz = arena_take(ar, N * D);
    a->lnz_mean = arena_take(ar, N);
    a->lnz_rstd = arena_take(ar, N);
    a->lnt = arena_take(ar, Nt * D);
    a->lnt_mean = arena_take(ar, Nt);
    a->lnt_rstd = arena_take(ar, Nt);
    a->q = arena_take(ar, N * D);
    a->kv = arena_take(ar, Nt * 2 * D);
    a->probs = arena_take(ar, (size_t)B * heads * n * L);
    a->att = arena_take(ar, N * D);
    a->mid = arena_take(ar, N * D);
    a->ln2 = arena_take(ar, N * D);
    a->ln2_mean = arena_take(ar, N);
    a->ln2_rstd = arena_take(ar, N);
    a->fc1 = arena_take(ar, N * 4 * D);
    a->gelu = arena_take(ar, N * 4 * D);
}

void block_scratch_take(BlockScratch *s, Arena *ar, size_t nd, size_t ntd, size_t probs) {
    s->dln = arena_take(ar, nd);
    s->dqkv = arena_take(ar, nd + 2 * (nd > ntd ? nd : ntd));
    s->datt = arena_take(ar, nd);
    s->dfc1 = arena_take(ar, nd * 4);
    s->dgelu = arena_take(ar, nd * 4);
    s->dprobs = arena_take(ar, probs);
    s->dlnt = arena_take(ar, ntd);
}

// The key bias adds q·b_k to every logit of a query row, which softmax ignores: its gradient is
// exactly zero. Computed, it is rounding noise that Adam would turn into lr-sized steps (and
// into differences between rank counts), so the exact value is stored instead. Each block's key
// bias receives this single contribution per step, so overwriting the accumulator is safe.
static void zero_key_bias_grad(float *dkey_bias, int D) {
    if (dkey_bias) memset(dkey_bias, 0, (size_t)D * sizeof(float));
}

// The MLP half shared by both blocks: out = mid + fc2(gelu(fc1(LN2(mid)))).
static void mlp_forward(float *out, float *ln2, float *ln2_mean, float *ln2_rstd, float *fc1,
                        float *gelu, const float *mid, const float *n2w, const float *n2b,
                        const float *fc1w, const float *fc1b, const float *fc2w, const float *fc2b,
                        int N, int D) {
    layernorm_forward(ln2, ln2_mean, ln2_rstd, mid, n2w, n2b, N, D);
    linear_forward(fc1, ln2, fc1w, fc1b, N, D, 4 * D);
    gelu_forward(gelu, fc1, (size_t)N * 4 * D);
    linear_forward(out, gelu, fc2w, fc2b, N, 4 * D, D);
    add_forward(out, out, mid, (size_t)N * D);
}

// dx: ∂L/∂out in, ∂L/∂mid out (in place).
static void mlp_backward(float *dx, BlockScratch *s, float *g_n2w, float *g_n2b, float *g_fc1w,
                         float *g_fc1b, float *g_fc2w, float *g_fc2b, const float *mid,
                         const float *ln2, const float *ln2_mean, const float *ln2_rstd,
                         const float *fc1, const float *gelu, const float *n2w, const float *fc1w,
                         const float *fc2w, int N, int D) {
    size_t nh = (size_t)N * 4 * D;
    linear_backward_set(s->dgelu, g_fc2w, g_fc2b, dx, gelu, fc2w, N, 4 * D, D);
    gelu_backward_set(s->dfc1, s->dgelu, fc1, nh);
    linear_backward_set(s->dln, g_fc1w, g_fc1b, s->dfc1, ln2, fc1w, N, D, 4 * D);
    layernorm_backward(dx, g_n2w, g_n2b, s->dln, mid, n2w, ln2_mean, ln2_rstd, N, D);
}

void self_block_forward(float *x_out, SelfBlockActs *a, const SelfBlockW *w, const float *x_in,
                        const uint8_t *valid, int B, int n, int D, int heads) {
    int N = B * n;
    layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x_in, w->norm1_w, w->norm1_b, N, D);
    linear_forward(a->qkv, a->ln1, w->qkv_w, w->qkv_b, N, D, 3 * D);
    attention_forward(a->att, a->probs, a->qkv, a->qkv + D, a->qkv + 2 * D, valid, B, n, n, D,
                      heads, 3 * D, 3 * D);
    linear_forward(a->mid, a->att, w->proj_w, w->proj_b, N, D, D);
    add_forward(a->mid, a->mid, x_in, (size_t)N * D);
    mlp_forward(x_out, a->ln2, a->ln2_mean, a->ln2_rstd, a->fc1, a->gelu, a->mid, w->norm2_w,
                w->norm2_b, w->fc1_w, w->fc1_b, w->fc2_w, w->fc2_b, N, D);
}

void self_block_backward(float *dx, const SelfBlockW *g, BlockScratch *s, const SelfBlockActs *a,
                         const SelfBlockW *w, const float *x_in, int B, int n, int D, int heads) {
    int N = B * n;
    mlp_backward(dx, s, g->norm2_w, g->norm2_b, g->fc1_w, g->fc1_b, g->fc2_w, g->fc2_b, a->mid,
                 a->ln2, a->ln2_mean, a->ln2_rstd, a->fc1, a->gelu, w->norm2_w, w->fc1_w, w->fc2_w,
                 N, D);
    linear_backward_set(s->datt, g->proj_w, g->proj_b, dx, a->att, w->proj_w, N, D, D);
    attention_backward_set(s->dqkv, s->dqkv + D, s->dqkv + 2 * D, s->dprobs, s->datt, a->qkv,
                           a->qkv + D, a->qkv + 2 * D, a->probs, B, n, n, D, heads, 3 * D, 3 * D);
    linear_backward_set(s->dln, g->qkv_w, g->qkv_b, s->dqkv, a->ln1, w->qkv_w, N, D, 3 * D);
    zero_key_bias_grad(g->qkv_b ? g->qkv_b + D : NULL, D);
    layernorm_backward(dx, g->norm1_w, g->norm1_b, s->dln, x_in, w->norm1_w, a->ln1_mean,
                       a->ln1_rstd, N, D);
}

void cross_block_forward(float *z_out, CrossBlockActs *a, const CrossBlockW *w, const float *z_in,
                         const float *t, const uint8_t *valid, int B, int n, int L, int H,
                         int heads) {
    int N = B * n, Nt = B * L;
    layernorm_forward(a->lnz, a->lnz_mean, a->lnz_rstd, z_in, w->norm1_w, w->norm1_b, N, H);
    layernorm_forward(a->lnt, a->lnt_mean, a->lnt_rstd, t, w->norm1_w, w->norm1_b, Nt, H);
    linear_forward(a->q, a->lnz, w->q_w, w->q_b, N, H, H);
    linear_forward(a->kv, a->lnt, w->kv_w, w->kv_b, Nt, H, 2 * H);
    attention_forward(a->att, a->probs, a->q, a->kv, a->kv + H, valid, B, n, L, H, heads, H, 2 * H);
    linear_forward(a->mid, a->att, w->proj_w, w->proj_b, N, H, H);
    add_forward(a->mid, a->mid, z_in, (size_t)N * H);
    mlp_forward(z_out, a->ln2, a->ln2_mean, a->ln2_rstd, a->fc1, a->gelu, a->mid, w->norm2_w,
                w->norm2_b, w->fc1_w, w->fc1_b, w->fc2_w, w->fc2_b, N, H);
}

void cross_block_backward(float *dz, float *dt, const CrossBlockW *g, BlockScratch *s,
                          const CrossBlockActs *a, const CrossBlockW *w, const float *z_in,
                          const float *t, int B, int n, int L, int H, int heads) {
    int N = B * n, Nt = B * L;
    mlp_backward(dz, s, g->norm2_w, g->norm2_b, g->fc1_w, g->fc1_b, g->fc2_w, g->fc2_b, a->mid,
                 a->ln2, a->ln2_mean, a->ln2_rstd, a->fc1, a->gelu, w->norm2_w, w->fc1_w, w->fc2_w,
                 N, H);
    linear_backward_set(s->datt, g->proj_w, g->proj_b, dz, a->att, w->proj_w, N, H, H);
    // dq and dkv share the dqkv workspace:
    // dq [N,H] first, then dkv [Nt,2H].
    float *dq = s->dqkv, *dkv = s->dqkv + (size_t)N * H;
    attention_backward_set(dq, dkv, dkv + H, s->dprobs, s->datt, a->q, a->kv, a->kv + H, a->probs,
                           B, n, L, H, heads, H, 2 * H);
    linear_backward_set(s->dln, g->q_w, g->q_b, dq, a->lnz, w->q_w, N, H, H);
    layernorm_backward(dz, g->norm1_w, g->norm1_b, s->dln, z_in, w->norm1_w, a->lnz_mean,
                       a->lnz_rstd, N, H);
    linear_backward_set(s->dlnt, g->kv_w, g->kv_b, dkv, a->lnt, w->kv_w, Nt, H, 2 * H);
    zero_key_bias_grad(g->kv_b, H);
    layernorm_backward(dt, g->norm1_w, g->norm1_b, s->dlnt, t, w->norm1_w, a->lnt_mean, a->lnt_rstd,
                       Nt, H);
}
