// Internal to model/: named views of the parameter buffer and the tensor table builder.
// (model.h is the folder's public header; this one is shared by its .c files only.)
#ifndef TIJEPA_MODEL_LAYOUT_H
#define TIJEPA_MODEL_LAYOUT_H

#include "model.h"

// Pointers into one buffer (params, grads or EMA); a tensor outside that buffer's range is NULL.
typedef struct {
    float *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} SelfBlockW;

typedef struct {
    float *norm1_w, *norm1_b, *q_w, *q_b, *kv_w, *kv_b, *proj_w, *proj_b;
    float *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} CrossBlockW;

// Text encoder. pretln: tok_embed, pos_embed, pre-LN blocks, final norm. bert (model/bert.c):
// tok_embed = word embeddings, pos_embed = position embeddings, type_embed [2, Dt] and the
// embedding LayerNorm emb_norm; blocks are post-LN (norm1 after attention, norm2 after the MLP);
// no final norm (norm_w, norm_b NULL).
typedef struct {
    float *tok_embed, *pos_embed;
    SelfBlockW *blocks;
    float *norm_w, *norm_b;
    float *type_embed, *emb_norm_w, *emb_norm_b; // bert only
} TextW;

typedef struct {
    float *patch_w, *patch_b;
    SelfBlockW *blocks;
    float *norm_w, *norm_b;
} ImageW;

typedef struct {
    float *img_proj_w, *img_proj_b, *img_norm_w, *img_norm_b;
    float *txt_proj_w, *txt_proj_b; // NULL when txt_dim == cross_dim (identity)
    CrossBlockW *blocks;
} CrosserW;

typedef struct {
    float *embed_w, *embed_b, *mask_token;
    SelfBlockW *blocks;
    float *norm_w, *norm_b, *proj_w, *proj_b;
} PredictorW;

typedef struct {
    TextW txt;
    ImageW img;
    CrosserW ctx;
    PredictorW pred;
} ModelW;

// Tensor index ranges [first, end) used to announce finished gradients during backward.
typedef struct {
    int first, end;
} TensorRange;

typedef struct {
    TensorRange txt_embed, txt_norm, *txt_blocks;
    TensorRange img_embed, img_norm, *img_blocks;
    TensorRange ctx_in, ctx_txt_proj, *ctx_blocks;
    TensorRange pred_in, pred_out, *pred_blocks;
} ModelRanges;

// Builds the tensor table (infos may be NULL to count only) and returns the tensor count;
// *total receives the parameter count. MODE_IJEPA declares only the img and pred groups (the
// predictor's embed/proj then map De, not H); its other ranges are empty.
int layout_build(TensorInfo *infos, ModelRanges *ranges, const ModelShape *s,
                 TextEncoderKind text_encoder, ModelMode mode, size_t *total);
// Points every view of *w into base, which holds params[lo, hi); others become NULL.
// The block arrays of *w must be allocated by the caller (depths of the shape).
void layout_views(ModelW *w, const ModelShape *s, TextEncoderKind text_encoder, ModelMode mode,
                  float *base, size_t lo, size_t hi);

#endif // TIJEPA_MODEL_LAYOUT_H
