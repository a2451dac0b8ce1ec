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
                        const float *inp, const float *weight, const float *mean, const float *rstd,
                        int N, int D);

// LayerNorm with an explicit eps (the BERT text encoder uses BERT_LAYERNORM_EPS), forward only,
// otherwise as layernorm_forward. out may alias inp (each row's statistics are taken first).
#define BERT_LAYERNORM_EPS 1e-12f
void layernorm_forward_eps(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int D, float eps);

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
                        const float *q, const float *k, const float *v, const float *probs, int B,
                        int Nq, int Nk, int D, int heads, int q_stride, int kv_stride);

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

// ---------------------------------------------------------------------------------------------
// 2. Random numbers (counter-based: every stream is keyed by integers, never by rank)
// ---------------------------------------------------------------------------------------------

typedef struct {
    uint64_t state;
} Rng;

// A generator keyed by (seed, stream, a, b): the same key gives the same sequence anywhere.
void rng_init(Rng *rng, uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
uint64_t rng_next(Rng *rng);
float rng_uniform(Rng *rng); // [0, 1)
float rng_normal(Rng *rng);  // N(0, 1), Box–Muller
enum { RNG_STREAM_INIT = 1, RNG_STREAM_MASKS = 2, RNG_STREAM_NEGATIVES = 3, RNG_STREAM_EVAL = 4 };

// ---------------------------------------------------------------------------------------------
// 3. Shapes, presets and the parameter table
// ---------------------------------------------------------------------------------------------

// paper: frozen encoders, trains crossers + predictor. scratch: also trains both encoders (EMA
// image encoder on the target path). ijepa: image-only I-JEPA pre-training of the ViT (stage 1 of
// docs/encoders.md): context encoder img.* on the context patches, its EMA copy on the full
// image, predictor pred.* from and to the image width, loss = mean smooth-L1 between predictions
// and LN_noaffine(EMA tokens) at T; no text encoder, no crossers, no negatives
// (tests/reference/MODEL.md, "ijepa mode").
typedef enum { MODE_PAPER = 0, MODE_SCRATCH = 1, MODE_IJEPA = 2 } ModelMode;

typedef struct {
    int image_size, patch; // grid = image_size / patch, P = grid²
    int img_dim, img_depth, img_heads;
    int txt_dim, txt_depth, txt_heads, txt_len, vocab;
    int cross_dim, cross_depth, cross_heads;
    int pred_dim, pred_depth, pred_heads;
    int batch; // the preset's global batch
} ModelShape;

// Fills *shape from a preset name (tiny, small, base, paper); returns 0, or −1 if unknown.
int model_preset(ModelShape *shape, const char *name);
// Checks divisibility and ranges; writes a message naming the offending key.
int model_shape_check(const ModelShape *shape, char *err, size_t errlen);

// Tensor groups, in buffer order. Trainable range: paper mode CTX..PRED, scratch TXT..PRED,
// ijepa IMG..PRED (it has no TXT and no CTX tensors). EMA range: paper CTX, scratch IMG..CTX,
// ijepa IMG — all contiguous by construction of this order.
typedef enum { GROUP_TXT = 0, GROUP_IMG = 1, GROUP_CTX = 2, GROUP_PRED = 3 } TensorGroup;

#define TENSOR_NAME_MAX 64
typedef struct {
    char name[TENSOR_NAME_MAX]; // e.g. "ctx.blocks.0.attn.q.weight"
    size_t offset, numel;       // in floats, within the parameter buffer
    int ndim, shape[4];
    int decay; // weight decay applies (tensors with ≥ 2 dims)
    TensorGroup group;
} TensorInfo;

// ---------------------------------------------------------------------------------------------
// 4. The network
// ---------------------------------------------------------------------------------------------

// The text encoder (model.text_encoder): `pretln` is tijepa's own pre-LN encoder (trainable in
// scratch mode); `bert` is a post-LN BERT (word + position + token-type embeddings, LayerNorm
// eps 1e-12, post-LN blocks, no final norm) for pretrained BERT-family weights, inference only,
// so it is allowed in paper mode only (model/bert.c, docs/encoders.md).
typedef enum { TEXT_ENCODER_PRETLN = 0, TEXT_ENCODER_BERT = 1 } TextEncoderKind;
// "pretln" / "bert" → *kind; −1 for any other name.
int text_encoder_parse(const char *name, TextEncoderKind *kind);
const char *text_encoder_name(TextEncoderKind kind);

typedef struct {
    ModelShape shape;
    ModelMode mode;
    TextEncoderKind text_encoder; // 0 (zero-initialised configs): pretln
    int local_batch;              // samples this process computes per step
    float nce_weight;             // λ; 0 reproduces the authors' objective
    int negatives;                // K negatives per sample (used when λ > 0)
    float temperature;            // τ
    // Which caption a negative's target path sees. OWN (default): its own, so the contrastive term
    // trains E(x, t) exactly as retrieval evaluates it. POSITIVE: the positive caption's target
    // (DESIGN.md §1 as written), which lets the model compare the two captions and ignore the
    // image: retrieval by energy then stays at chance (README, "Negatives").
    int negative_target;
    // What the target crosser X̃ reads besides the image. CAPTION (default): the caption, as the
    // authors' objective. NONE: no text (every key masked), so the target holds image content
    // only and E(x, t) measures how well the caption and the context predict the masked image —
    // the energy that retrieval by energy can rank by (README, "Negatives").
    int target_text;
} ModelConfig;

enum { NEG_TARGET_OWN = 0, NEG_TARGET_POSITIVE = 1 };
enum { TARGET_TEXT_CAPTION = 0, TARGET_TEXT_NONE = 1 };

typedef struct Model Model;

Model *model_new(const ModelConfig *cfg, char *err, size_t errlen);
void model_free(Model *m);
const ModelConfig *model_config(const Model *m);
const TensorInfo *model_tensors(const Model *m, int *n_tensors);
// Index of a tensor by name, or −1.
int model_tensor_index(const Model *m, const char *name);

// The buffers. params [n_params]; ema [ema_count] mirrors params[ema_offset ..]; grads, adam_m,
// adam_v [trainable_count] mirror params[trainable_offset ..].
size_t model_num_params(const Model *m);
float *model_params(Model *m);
float *model_ema(Model *m);
float *model_grads(Model *m);
float *model_adam_m(Model *m);
float *model_adam_v(Model *m);
size_t model_trainable_offset(const Model *m);
size_t model_trainable_count(const Model *m);
size_t model_ema_offset(const Model *m);
size_t model_ema_count(const Model *m);
// First tensor index of the trainable range and of the EMA range.
int model_first_trainable_tensor(const Model *m);

// Initialisation (DESIGN.md §1): the crosser Kaiming-normal with output projections scaled by
// 1/sqrt(2·layer); encoders and predictor truncated normal (std 0.02), likewise rescaled;
// zero biases, unit norms; EMA copies equal to the online tensors.
void model_init_weights(Model *m, uint64_t seed);

// Masks of one step (shared by the batch): sorted patch indices.
typedef struct {
    int n_context, n_target;
    int *context, *target; // [P] each, owned by the MaskSet
} MaskSet;

typedef struct {
    int targets;                             // number of target blocks (4)
    float target_scale[2], target_aspect[2]; // (0.15, 0.2), (0.75, 1.5)
    float context_scale[2];                  // (0.85, 1.0), aspect 1
    int min_keep;                            // at least this many context patches (4)
} MaskConfig;

void mask_config_default(MaskConfig *mc);
int maskset_alloc(MaskSet *ms, int grid);
void maskset_free(MaskSet *ms);
// Samples the step's masks from an RNG keyed by (seed, step); identical on every rank.
void mask_sample(MaskSet *ms, const MaskConfig *mc, int grid, uint64_t seed, uint64_t step);

// One step's inputs for this process's samples.
typedef struct {
    int n;                 // local samples (≤ local_batch)
    const float *images;   // [n, 3, S, S] normalised
    const int32_t *tokens; // [n, L]
    const uint8_t *valid;  // [n, L]
    // Precomputed full-image tokens s of the frozen image encoder [n, P, De] (paper mode: feature
    // shards, `tijepa encode`), or NULL. When set, images is not read: the step skips patchify
    // and the image encoder and uses these as model_image_features would have computed them.
    const float *img_features;
} ModelBatch;

typedef struct {
    double loss, jepa, nce;        // means over the local samples
    double energy_pos, energy_neg; // mean positive energy, mean negative energy (0 if none)
    double pred_std;               // mean over dims of the per-dim std of predictions (collapse)
} ModelLoss;

// Step, part 1: the text encoder on the local batch. Returns u [n, L, Dt] (owned by the model),
// the local contribution to the negative pool. In ijepa mode there is no text: returns NULL.
const float *model_encode_text(Model *m, const ModelBatch *batch);

// Step, part 1 from precomputed features (paper mode only: the text encoder is frozen): takes
// u [n, L, Dt] as model_text_features computed it, instead of running the text encoder. Returns
// the model's copy (as model_encode_text does). Exits with an internal error in scratch mode.
const float *model_encode_text_features(Model *m, const float *u, int n);

// The negative pool of one step: every sample's text features in global order.
typedef struct {
    const float *u;       // [global_n, L, Dt]
    const uint8_t *valid; // [global_n, L]
    int global_n;
    int first_local;      // global index of this process's sample 0
    const int *negatives; // [n, K] global indices of each local sample's negatives
} NegativePool;

// Step, part 2: the rest of the forward pass and the whole backward pass. Gradients of the
// trainable tensors are ZEROED and then written to model_grads() (mean over the local samples).
// pool may be NULL when λ = 0 or K = 0. on_ready(ctx, tensor_index) (may be NULL) is called as
// soon as a tensor's gradient is final, in backward order, so communication can start early.
typedef void (*GradReadyFn)(void *ctx, int tensor_index);
void model_forward_backward(Model *m, ModelLoss *out, const ModelBatch *batch, const MaskSet *masks,
                            const NegativePool *pool, GradReadyFn on_ready, void *ready_ctx);

// Negatives for local samples: neg[j·K + k] ∈ [0, global_n) ∖ {first_local + j}, drawn by an RNG
// keyed by (seed, step, global sample index), so the choice is independent of the rank count.
void negatives_sample(int *neg, int n, int K, int first_local, int global_n, uint64_t seed,
                      uint64_t step);

// ---------------------------------------------------------------------------------------------
// 5. Optimisation
// ---------------------------------------------------------------------------------------------

typedef struct {
    float lr, start_lr, final_lr;
    int warmup_steps, total_steps;
    float weight_decay, final_weight_decay;
    float ema_start, ema_end;
    float clip_grad; // 0: off
    float beta1, beta2, eps;
} OptimConfig;

void optim_config_default(OptimConfig *oc);
// Schedules at step t (0-based); see tests/reference/MODEL.md.
float schedule_lr(const OptimConfig *oc, long t);
float schedule_wd(const OptimConfig *oc, long t);
float schedule_ema(const OptimConfig *oc, long t);
// Global L2 norm of the gradients (double accumulation, fixed order).
double grad_norm(const Model *m);
// One AdamW step (t 0-based, so the bias correction uses t + 1) on the trainable tensors with
// the schedules at t, after optional clipping; then the EMA update. Returns the grad norm
// before clipping.
double optim_step(Model *m, const OptimConfig *oc, long t);

// ---------------------------------------------------------------------------------------------
// 6. Evaluation (the target path's encoders, energies of arbitrary pairs)
// ---------------------------------------------------------------------------------------------

// Image features of the target path (frozen encoder in paper mode, EMA encoder in scratch and
// ijepa mode) on full images: out [n, P, De], images [n, 3, S, S]. Any n (processed in chunks).
// The functions below it need the text path: in ijepa mode they stop with an internal error.
void model_image_features(Model *m, float *out, const float *images, int n);
// Caption features: out [n, L, Dt].
void model_text_features(Model *m, float *out, const int32_t *tokens, const uint8_t *valid, int n);
// energy[p] = E(image img_idx[p], caption txt_idx[p]) with the masks ms, from features computed
// once by the two functions above: s_img [n_img, P, De], u [n_txt, L, Dt], valid [n_txt, L].
void model_pair_energies(Model *m, float *energy, const float *s_img, const float *u,
                         const uint8_t *valid, const int *img_idx, const int *txt_idx, int n_pairs,
                         const MaskSet *ms);
// Probe features: mean over image tokens of the target crosser X̃(s, u) on the full image, for
// image i with caption i: out [n, H].
void model_probe_features(Model *m, float *out, const float *s_img, const float *u,
                          const uint8_t *valid, int n);
// Cross-attention of the target crosser's last block for one pair, mean over heads:
// map [P, L], row p = how patch p (the query) attends over the caption's tokens.
void model_attention_map(Model *m, float *map, const float *s_img, const float *u,
                         const uint8_t *valid);

// ---------------------------------------------------------------------------------------------
// 7. Cost

// Analytic FLOPs of one training step for n local samples with the given mask sizes:
// forward and backward, counting 2·M·N·K per GEMM (attention included, element-wise ignored).
typedef struct {
    double forward, backward;
} StepFlops;
StepFlops model_step_flops(const Model *m, int n, int n_context, int n_target);

// Threads for OpenBLAS and OpenMP (0: leave as is).
void model_set_threads(int threads);

// ---------------------------------------------------------------------------------------------
// 8. Evaluation metrics (pure computation)
// ---------------------------------------------------------------------------------------------

// Retrieval from a square energy matrix energy [N, N], energy[i·N + j] = E(image i, caption j),
// the matching pairs on the diagonal; LOWER energy = better match.
//   text→image (t2i): the query is caption j, the candidates are the images (column j);
//   image→text (i2t): the query is image i, the candidates are the captions (row i).
// Rank of the correct candidate = 1 + the number of OTHER candidates whose energy is ≤ its own:
// ties are broken pessimistically (a tie counts against the correct item, so a constant matrix
// gives every query rank N, never 1), and a NaN in a comparison also counts against it.
// ranks_t2i[j], ranks_i2t[i] ∈ [1, N] (either may be NULL).
void retrieval_ranks(int *ranks_t2i, int *ranks_i2t, const float *energy, int n);

// Recall@K = share of queries whose rank ≤ K; median rank as numpy.median (the mean of the two
// middle ranks when N is even); mean rank; ranks must lie in [1, N]. Chance levels for N
// candidates: R@K = min(K, N) / N, median rank (N + 1) / 2.
typedef struct {
    double r1, r5, r10;
    double median_rank, mean_rank;
} RetrievalScores;
void retrieval_scores_from_ranks(RetrievalScores *out, const int *ranks, int n);
// Both directions at once from the energy matrix (n ≥ 1).
void retrieval_scores(RetrievalScores *t2i, RetrievalScores *i2t, const float *energy, int n);
double retrieval_chance_recall(int k, int n);

// Classification metrics for labels in [0, classes).
// Accuracy: share of samples with pred == truth (0 when n < 1).
double metric_accuracy(const int *truth, const int *pred, int n);
// F1 as scikit-learn's f1_score with zero_division = 0: per class
// F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c), 0 when the class appears in neither truth nor pred;
// weighted F1 = Σ_c support_c · F1_c / n, support_c = occurrences of c in truth
// (average="weighted"); macro F1 (average="macro" over all `classes`) into *macro_f1.
// per_class_f1 [classes], support [classes] and macro_f1 may be NULL. Returns the weighted F1,
// or −1 when n < 1, classes < 1 or a label lies outside [0, classes).
double metric_f1(double *per_class_f1, int64_t *support, double *macro_f1, const int *truth,
                 const int *pred, int n, int classes);

// Linear probe (the authors' MVSA protocol): one Linear(dim, classes) on frozen features,
// softmax cross-entropy (mean over the batch), Adam (no weight decay), learning rate lr·decayᵉ in
// epoch e (StepLR, step 1), shuffled mini-batches (the last one may be smaller), PyTorch's
// default Linear initialisation U(±1/√dim) for weight and bias. With `balance`, before training
// every class is up-sampled to the majority count by drawing extra copies of its samples
// uniformly at random (with replacement), once. Every random choice comes from Rngs keyed by
// (seed, RNG_STREAM_EVAL, purpose, epoch), so the same inputs give the same probe bit for bit.
typedef struct {
    int epochs;              // 50
    int batch;               // 128
    float lr, lr_decay;      // 1e-3, ×0.9 per epoch
    float beta1, beta2, eps; // 0.9, 0.999, 1e-8
    int balance;             // 1: class-balanced up-sampling of the training set
    uint64_t seed;           // 0
} ProbeConfig;
void probe_config_default(ProbeConfig *pc);

typedef struct {
    int dim, classes;
    float *weight;     // [classes, dim]
    float *bias;       // [classes]
    int train_size;    // samples per epoch (after up-sampling)
    double final_loss; // mean training loss of the last epoch
} LinearProbe;
// Trains on x [n, dim] with labels y [n] in [0, classes). Non-zero (message in err) on bad
// arguments, labels out of range or non-finite features. Free with probe_free.
int probe_train(LinearProbe *p, const float *x, const int *y, int n, int dim, int classes,
                const ProbeConfig *pc, char *err, size_t errlen);
// pred[i] = argmax_c (W·x_i + b)_c (the lowest class on ties), x [n, dim].
void probe_predict(int *pred, const LinearProbe *p, const float *x, int n);
void probe_free(LinearProbe *p);

#endif // TIJEPA_MODEL_H
