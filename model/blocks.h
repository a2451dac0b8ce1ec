// Internal to model/: the transformer blocks shared by the encoders, crosser and predictor,
// with their saved activations and backward workspace.
#ifndef TIJEPA_MODEL_BLOCKS_H
#define TIJEPA_MODEL_BLOCKS_H

#include "layout.h"

// Kernel variants used by the blocks (model.h documents the accumulating originals).
// OpenBLAS is pinned to one thread: the kernels parallelise their GEMMs with OpenMP themselves.
void blas_single_thread(void);
// linear_backward with dinp OVERWRITTEN (dinp = dout·weight) instead of accumulated.
void linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int in_dim, int out_dim);
// gelu_backward with dinp OVERWRITTEN (dinp may be dout: element-wise, in place).
void gelu_backward_set(float *dinp, const float *dout, const float *inp, size_t n);
// attention_forward keeping no probabilities: thread t of at most ws_slots uses
// ws + t·Nq·Nk floats as its workspace.
void attention_forward_nosave(float *out, float *ws, int ws_slots, const float *q, const float *k,
                              const float *v, const uint8_t *key_valid, int B, int Nq, int Nk,
                              int D, int heads, int q_stride, int kv_stride);
// attention_backward with dq/dk/dv OVERWRITTEN (each written once) that keeps nothing from the
// forward: per (batch, head) the probabilities are recomputed (bit-identical) in thread t's slot ws
// + t·2·Nq·Nk (at most ws_slots threads) and, when out is not NULL, out [B,Nq,D] is rewritten with
// the forward's output (same bits).
void attention_backward_recompute(float *dq, float *dk, float *dv, float *out, float *ws,
                                  int ws_slots, const float *dout, const float *q, const float *k,
                                  const float *v, const uint8_t *key_valid, int B, int Nq, int Nk,
                                  int D, int heads, int q_stride, int kv_stride);

// Bump allocator over one malloc: a first pass with base == NULL only counts floats.
typedef struct {
    float *base;
    size_t used;
} Arena;
float *arena_take(Arena *a, size_t n);

// Activations of one pre-LN self-attention block for up to N = B·n tokens. The LayerNorm
// outputs, the GELU output and the attention probabilities are not kept: the forward makes
// them in `work` (work_threads slots, each BLOCK_WORK_ROWS × 5·D floats or n² if larger) and the
// backward recomputes them. A block that runs a backward also keeps no attention output: `att`
// is then the BlockScratch's, shared by every such block, and the backward rewrites it.
// `probs` and `gelu` are unused by the blocks (buffers for other inference code, e.g. bert.c;
// untouched, they cost no resident memory).
typedef struct {
    float *ln1_mean, *ln1_rstd, *qkv, *probs, *att, *mid;
    float *ln2_mean, *ln2_rstd, *fc1, *gelu;
    float *work;
    int work_threads;
    uint8_t *valid; // [B·n] copy of the key mask of the last forward (NULL when it had none)
    uint8_t *valid_buf;
} SelfBlockActs;

// Activations of one cross block: N = B·n queries, Nt = B·L text tokens (as above, no
// LayerNorm or GELU outputs kept). An inference block keeps its attention probabilities
// [B,heads,n,L] (the attention maps of `tijepa explain`) and output; a block that runs a
// backward keeps neither (probs NULL, att shared as above) but a copy of the key mask.
typedef struct {
    float *lnz_mean, *lnz_rstd, *lnt_mean, *lnt_rstd, *q, *kv, *probs, *att, *mid;
    float *ln2_mean, *ln2_rstd, *fc1;
    float *work;
    int work_threads;
    uint8_t *valid; // [B·L] copy of the key mask of the last forward (NULL when it had none)
    uint8_t *valid_buf;
} CrossBlockActs;

// Backward workspace, sized for the largest block of the model.
// `ln` receives the recomputed LayerNorm outputs, `att` the attention output (written by the
// forward of every block that runs a backward, rewritten by its backward), `head_ws` holds
// head_ws_slots thread slots of one (batch, head)'s recomputed probabilities and their gradient.
typedef struct {
    float *dln, *dqkv, *datt, *dfc1, *dlnt, *ln, *att, *head_ws;
    int head_ws_slots;
} BlockScratch;

// shared_att: NULL for an inference block (own attention output, and for a cross block its
// probabilities), else the BlockScratch's `att` for a block that runs a backward.
void self_block_acts_take(SelfBlockActs *a, Arena *arena, int B, int n, int D, int heads,
                          float *shared_att);
void cross_block_acts_take(CrossBlockActs *a, Arena *arena, int B, int n, int L, int D, int heads,
                           float *shared_att);
// Workspace for blocks of at most nd = N·D query-token floats, ntd = Nt·D text-token floats
// and head_nn = Nq·Nk attention logits per (batch, head).
void block_scratch_take(BlockScratch *s, Arena *arena, size_t nd, size_t ntd, size_t head_nn);

// x_out [B,n,D] = block(x_in [B,n,D]); valid [B,n] key mask or NULL. x_out may alias x_in when
// no backward follows (inference).
void self_block_forward(float *x_out, SelfBlockActs *a, const SelfBlockW *w, const float *x_in,
                        const uint8_t *valid, int B, int n, int D, int heads);
// dx [B,n,D]: on entry ∂L/∂x_out, on exit ∂L/∂x_in (the residual stream, in place). Weight
// gradients accumulate into *g (NULL members skipped).
void self_block_backward(float *dx, const SelfBlockW *g, BlockScratch *s, const SelfBlockActs *a,
                         const SelfBlockW *w, const float *x_in, int B, int n, int D, int heads);

// z_out [B,n,H] = block(z_in [B,n,H], t [B,L,H], valid [B,L]); the block's norm1 normalises
// both the queries and the text. z_out may alias z_in at inference.
void cross_block_forward(float *z_out, CrossBlockActs *a, const CrossBlockW *w, const float *z_in,
                         const float *t, const uint8_t *valid, int B, int n, int L, int H,
                         int heads);
// dz [B,n,H] in place as above; dt [B,L,H] += ∂L/∂t (may be NULL).
void cross_block_backward(float *dz, float *dt, const CrossBlockW *g, BlockScratch *s,
                          const CrossBlockActs *a, const CrossBlockW *w, const float *z_in,
                          const float *t, int B, int n, int L, int H, int heads);

#endif // TIJEPA_MODEL_BLOCKS_H
