// model/ — what this folder offers: the TI-JEPA network in plain C11 on OpenBLAS.
//
//   1. kernels: forward/backward pairs on row-major float tensors;
//   2. the network: presets, one contiguous parameter buffer with named views,
//      encoders, crossers, predictor, energy and losses, forward + backward;
//   3. masks, optimiser (AdamW), schedules, EMA, initialisation, RNG;
//   4. evaluation metrics that are pure computation.
//
// Conventions: tensors are row-major float32; shapes are given in the comment above each
// function as [dims]. Every *_backward ACCUMULATES (+=) into its gradient outputs, so residual
// branches and shared inputs need no extra buffers; callers zero gradients once per step.
// A gradient pointer that is NULL is skipped (e.g. no dinp for a frozen input).
#ifndef TIJEPA_MODEL_H
#define TIJEPA_MODEL_H

#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------------------------------------
// 1. Kernels
// ---------------------------------------------------------------------------------------------

// out[N,O] = inp[N,I] · weight[O,I]ᵀ + bias[O]   (bias may be NULL). PyTorch nn.Linear layout.
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int in_dim, int out_dim);
// dinp[N,I] += dout·weight; dweight[O,I] += doutᵀ·inp; dbias[O] += Σ_rows dout.
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int in_dim, int out_dim);

// LayerNorm over the last dim, eps = 1e-6. out[N,D]; mean[N], rstd[N] saved for backward (may be
// NULL when no backward follows). weight/bias [D] may both be NULL: no affine (the target LN).
#define LAYERNORM_EPS 1e-6f
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int D);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int D);

// GELU, exact erf form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (PyTorch nn.GELU(), timm, BERT).
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

// out[n] = a[n] + b[n] (out may alias a). The backward of a residual add is "pass dout to both".
void add_forward(float *out, const float *a, const float *b, size_t n);

// Multi-head scaled dot-product attention with key-padding mask. Heads split the width D into
// `heads` slices of D/heads. q rows are read with row stride q_stride (floats), k and v rows
// with kv_stride, so fused projections ([.., 3D] qkv or [.., 2D] kv) need no copies:
//   q: [B,Nq,·] (row i of batch b at q + (b·Nq + i)·q_stride), k, v: [B,Nk,·] likewise.
// key_valid [B,Nk] (1 attend, 0 padded) or NULL for none. A query whose keys are all padded
// gets output 0. out [B,Nq,D] contiguous. probs [B,heads,Nq,Nk] receives the softmax (saved for
// backward; required, used as workspace at inference too). Scale 1/sqrt(D/heads).
void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       const uint8_t *key_valid, int B, int Nq, int Nk, int D, int heads,
                       int q_stride, int kv_stride);
// dq, dk, dv use the same strides as q, k, v (so they may point into one fused dqkv buffer).
// scratch: [B,heads,Nq,Nk] floats of workspace.
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *q, const float *k, const float *v, const float *probs,
                        int B, int Nq, int Nk, int D, int heads, int q_stride, int kv_stride);

// Patch extraction for a p×p stride-p convolution written as a linear layer:
// img [B,C,H,W] → out [B, (H/p)·(W/p), C·p·p], patches in row-major grid order, each patch's
// values in (c, i, j) order — the flattening of a Conv2d weight [D,C,p,p].
void patchify(float *out, const float *img, int B, int C, int H, int W, int p);

// Token embedding (+ learned positions): out[B,L,D] = wte[ids[b,l]] + wpe[l] (wpe may be NULL).
void embedding_forward(float *out, const int32_t *ids, const float *wte, const float *wpe, int B,
                       int L, int D);
void embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids, int B,
                        int L, int D);

// Fixed 2-D sin-cos positions as in I-JEPA / MAE: out [grid·grid, D], D % 4 == 0. For patch
// (r, c): the first D/2 values encode the column c, the last D/2 the row r; each half is
// [sin(pos·ω_i) for i < D/4] then [cos(pos·ω_i) for i < D/4], ω_i = 10000^(−i/(D/4)).
void sincos_pos_embed_2d(float *out, int grid, int D);

// Mean over tokens: out[B,D] = mean_n inp[B,N,D].
void meanpool_forward(float *out, const float *inp, int B, int N, int D);
void meanpool_backward(float *dinp, const float *dout, int B, int N, int D);

// Row gather / scatter for token subsets: out[B,n,D] = inp[B, idx[j], D] for j < n (idx shared
// by the batch, idx[j] < N); the backward scatters: dinp[B, idx[j], :] += dout[B, j, :].
void gather_rows(float *out, const float *inp, const int *idx, int B, int N, int n, int D);
void scatter_add_rows(float *dinp, const float *dout, const int *idx, int B, int N, int n, int D);

// Energy: energy[B] = mean over T·H of smooth_l1(pred − target), β = 1
// (0.5·d² for |d| < 1, |d| − 0.5 otherwise). pred, target [B,T,H].
void energy_forward(float *energy, const float *pred, const float *target, int B, int T, int H);
// dpred[B,T,H] += denergy[b] · ∂energy[b]/∂pred (target carries no gradient).
void energy_backward(float *dpred, const float *denergy, const float *pred, const float *target,
                     int B, int T, int H);

// InfoNCE over energies, column 0 the positive: loss[B] = −log softmax(−energy[b,:]/τ)_0.
// energy [B,K1] (K1 = 1 + negatives), probs [B,K1] saved softmax.
void nce_forward(float *loss, float *probs, const float *energy, float tau, int B, int K1);
// denergy[B,K1] += dloss[b] · (δ_k0 − probs[b,k]) / τ.
void nce_backward(float *denergy, const float *dloss, const float *probs, float tau, int B, int K1);

#endif // TIJEPA_MODEL_H
