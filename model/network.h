// Internal to model/: the Model structure shared by network.c, step.c, init.c, optim.c, flops.c.
#ifndef TIJEPA_MODEL_NETWORK_H
#define TIJEPA_MODEL_NETWORK_H

#include "blocks.h"

// Saved activations and workspace, planned once for the largest step (no allocation per step).
typedef struct {
    // text encoder: x[0] embeddings, x[i+1] output of block i; u = final norm
    float **txt_x, *u, *u_mean, *u_rstd;
    SelfBlockActs *txt_acts; // depth blocks (scratch mode) or one reused block (paper mode)
    // image encoder
    float *patches, *patches_c;          // [B·P, 3p²] all patches, [B·nC, 3p²] context patches
    float **img_x, *s, *s_mean, *s_rstd; // online: x[0] tokens, x[i+1] block outputs; s = norm
    SelfBlockActs *img_acts;
    float *img_full, *s_full; // frozen / EMA encoder on all patches (inference)
    SelfBlockActs img_infer;
    float *s_ctx; // [B·nC, De] context tokens (gathered in paper mode)
    // context crosser on B·K1 virtual samples
    float *zc0, *zc, *zc_mean, *zc_rstd; // [B·nC, H] img_proj, img_norm
    float *u_virt;                       // [Bv·L, Dt] (copy only when negatives are used)
    uint8_t *valid_virt;
    float *t_virt; // [Bv·L, H] txt_proj output (or u_virt)
    float **ctx_z; // z[0] replicated input, z[i+1] block outputs [Bv·nC, H]
    CrossBlockActs *ctx_acts;
    // target crosser (EMA, inference) on B samples
    float *tz0, *tz, *t_tgt, *tgt_ln, *target;
    // negatives with their own target (NEG_TARGET_OWN): one caption slot at a time, then [Bv·nT, H]
    float *u_slot, *target_virt;
    uint8_t *valid_slot;
    uint8_t *valid_none; // [Bv·L] zeros: the target crosser without text (TARGET_TEXT_NONE)
    CrossBlockActs tgt_infer;
    // predictor on Bv samples
    float *pe, **pred_x, *pxt, *pln, *pln_mean, *pln_rstd, *pred;
    SelfBlockActs *pred_acts;
    int *tail_idx;
    // losses
    float *energy, *denergy, *nce_loss, *nce_probs, *dnce;
    // backward
    float *dpred, *dpln, *dpx, *dpe, *dz, *dt, *du_virt, *dzc, *dzc0, *ds, *dimg, *du, *dtxt;
    BlockScratch scratch;
} Acts;

struct Model {
    ModelConfig cfg;
    int grid, P, K1, Bmax, Bv;
    int pred_io; // predictor input/output width: H (cross_dim), or De in ijepa mode
    TensorInfo *tensors;
    int n_tensors, first_trainable;
    ModelRanges ranges;
    size_t n_params, train_off, train_cnt, ema_off, ema_cnt;
    float *params, *ema, *grads, *adam_m, *adam_v;
    ModelW w, g, e; // views into params, grads, ema
    float *img_pos, *pred_pos;
    float *arena;
    Acts a;
    int n_text; // samples encoded by the last model_encode_text
};

// Pieces of the step (step.c), reused by evaluation (eval.c) and ijepa mode (ijepa.c).
// B ≤ the planned local batch.
void image_encode_full(Model *m, float *out, const ImageW *w, int B);
// The online image encoder on the context patches of a->patches: a->s_ctx [B·nC, De].
void image_encode_context(Model *m, const MaskSet *ms, int B);
// Its backward from a->ds [B·nC, De], announcing the img.* gradients.
void image_encode_context_backward(Model *m, const MaskSet *ms, int B, GradReadyFn on_ready,
                                   void *ctx);
// The predictor on Bv samples: zin [Bv·nC, pred_io] → a->pred [Bv·nT, pred_io].
void predictor_forward(Model *m, const float *zin, const MaskSet *ms, int Bv);
// From a->denergy [Bv] (energies against the targets of virtual_target) through the predictor:
// dzin [Bv·nC, pred_io] (overwritten), announcing the pred.* gradients.
void predictor_backward(Model *m, float *dzin, const float *zin, const MaskSet *ms, int Bv,
                        GradReadyFn on_ready, void *ctx);
// ijepa mode's whole step (ijepa.c).
void ijepa_forward_backward(Model *m, ModelLoss *out, const ModelBatch *batch, const MaskSet *ms,
                            GradReadyFn on_ready, void *ready_ctx);
void context_forward(Model *m, const float *u_virt, const uint8_t *valid_virt, const MaskSet *ms,
                     int B);
void target_forward(Model *m, const float *s_full, const float *u, const uint8_t *valid,
                    const MaskSet *ms, int B);
void losses_forward(Model *m, ModelLoss *out, const MaskSet *ms, int B);

// The key mask the target crosser uses for captions with mask `valid`.
static inline const uint8_t *target_valid(const Model *m, const uint8_t *valid) {
    return m->cfg.target_text == TARGET_TEXT_NONE ? m->a.valid_none : valid;
}
// Negatives need a target of their own (their caption in X̃).
static inline int negatives_own_target(const Model *m) {
    return m->K1 > 1 && m->cfg.negative_target == NEG_TARGET_OWN &&
           m->cfg.target_text == TARGET_TEXT_CAPTION;
}

// The online image encoder trains and an EMA copy feeds the target path (scratch and ijepa).
static inline int trains_encoders(const Model *m) {
    return m->cfg.mode == MODE_SCRATCH || m->cfg.mode == MODE_IJEPA;
}
static inline int is_ijepa(const Model *m) {
    return m->cfg.mode == MODE_IJEPA;
}

#endif // TIJEPA_MODEL_NETWORK_H
