// The TI-JEPA network: its buffers, tensor table and the activation plan (allocated once).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network.h"

// ---------------------------------------------------------------------------------------------
// construction

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "tijepa: %s:%d: out of memory (%zu × %zu bytes)\n", __FILE__, __LINE__, n,
                size);
        exit(1);
    }
    return p;
}

static void alloc_views(ModelW *w, const ModelShape *s) {
    w->txt.blocks = xcalloc((size_t)s->txt_depth, sizeof(SelfBlockW));
    w->img.blocks = xcalloc((size_t)s->img_depth, sizeof(SelfBlockW));
    w->ctx.blocks = xcalloc((size_t)s->cross_depth, sizeof(CrossBlockW));
    w->pred.blocks = xcalloc((size_t)s->pred_depth, sizeof(SelfBlockW));
}

static void free_views(ModelW *w) {
    free(w->txt.blocks);
    free(w->img.blocks);
    free(w->ctx.blocks);
    free(w->pred.blocks);
}

static size_t max_sz(size_t a, size_t b) {
    return a > b ? a : b;
}

// Lays out every activation in the arena (a counting pass first, then the real one).
// The predictor's activations for n samples of up to P tokens, predicting out_dim-wide tokens
// (H for TI-JEPA, De for I-JEPA). Called after block_scratch_take: its blocks share the
// scratch's attention output buffer.
static void plan_predictor(Acts *a, Arena *ar, const ModelShape *s, size_t n, size_t P,
                           size_t out_dim) {
    size_t Dp = s->pred_dim;
    a->pe = arena_take(ar, n * P * Dp);
    for (int i = 0; i <= s->pred_depth; i++)
        a->pred_x[i] = arena_take(ar, n * P * Dp);
    for (int i = 0; i < s->pred_depth; i++)
        self_block_acts_take(&a->pred_acts[i], ar, (int)n, (int)P, (int)Dp, s->pred_heads,
                             a->scratch.att);
    a->pxt = arena_take(ar, n * P * Dp);
    a->pln = arena_take(ar, n * P * Dp);
    a->pln_mean = arena_take(ar, n * P);
    a->pln_rstd = arena_take(ar, n * P);
    a->pred = arena_take(ar, n * P * out_dim);
    a->tail_idx = (int *)arena_take(ar, P);
}

static void plan_acts(Model *m, Arena *ar) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    size_t B = (size_t)m->Bmax, Bv = (size_t)m->Bv, P = (size_t)m->P, L = (size_t)s->txt_len;
    size_t Dt = s->txt_dim, De = s->img_dim, H = s->cross_dim, Dp = s->pred_dim;
    size_t pp3 = 3 * (size_t)s->patch * s->patch;
    int train_enc = trains_encoders(m);

    // one backward workspace for the largest block that runs a backward (first: its attention
    // output buffer is shared by the forwards of those blocks)
    size_t nd = max_sz(Bv * P * H, Bv * P * Dp), ntd = Bv * L * H;
    size_t head_nn = max_sz(P * L, P * P);
    if (train_enc) {
        nd = max_sz(nd, max_sz(B * P * De, B * L * Dt));
        head_nn = max_sz(head_nn, L * L);
    }
    block_scratch_take(&a->scratch, ar, nd, ntd, head_nn);

    // text encoder (the frozen bert encoder, paper mode only, runs in txt_x[0] with the one
    // reused block of txt_acts[0], like the frozen pre-LN encoder)
    int tx = train_enc ? s->txt_depth + 1 : 1;
    for (int i = 0; i < tx; i++)
        a->txt_x[i] = arena_take(ar, B * L * Dt);
    for (int i = 0; i < (train_enc ? s->txt_depth : 1); i++)
        self_block_acts_take(&a->txt_acts[i], ar, (int)B, (int)L, (int)Dt, s->txt_heads,
                             train_enc ? a->scratch.att : NULL);
    a->u = arena_take(ar, B * L * Dt);
    a->u_mean = arena_take(ar, B * L);
    a->u_rstd = arena_take(ar, B * L);

    // image encoder
    a->patches = arena_take(ar, B * P * pp3);
    a->img_full = arena_take(ar, B * P * De);
    a->s_full = arena_take(ar, B * P * De);
    self_block_acts_take(&a->img_infer, ar, (int)B, (int)P, (int)De, s->img_heads, NULL);
    a->s_ctx = arena_take(ar, B * P * De);
    if (train_enc) {
        a->patches_c = arena_take(ar, B * P * pp3);
        for (int i = 0; i <= s->img_depth; i++)
            a->img_x[i] = arena_take(ar, B * P * De);
        for (int i = 0; i < s->img_depth; i++)
            self_block_acts_take(&a->img_acts[i], ar, (int)B, (int)P, (int)De, s->img_heads,
                                 a->scratch.att);
        a->s_mean = arena_take(ar, B * P);
        a->s_rstd = arena_take(ar, B * P);
        a->ds = arena_take(ar, B * P * De);
        a->dimg = arena_take(ar, B * P * De);
        a->du = arena_take(ar, B * L * Dt);
        a->dtxt = arena_take(ar, B * L * Dt);
    }

    // context crosser
    a->zc0 = arena_take(ar, B * P * H);
    a->zc = arena_take(ar, B * P * H);
    a->zc_mean = arena_take(ar, B * P);
    a->zc_rstd = arena_take(ar, B * P);
    a->u_virt = arena_take(ar, Bv * L * Dt);
    a->valid_virt = (uint8_t *)arena_take(ar, (Bv * L + 3) / 4);
    a->t_virt = arena_take(ar, Bv * L * H);
    for (int i = 0; i <= s->cross_depth; i++)
        a->ctx_z[i] = arena_take(ar, Bv * P * H);
    for (int i = 0; i < s->cross_depth; i++)
        cross_block_acts_take(&a->ctx_acts[i], ar, (int)Bv, (int)P, (int)L, (int)H, s->cross_heads,
                              a->scratch.att);

    // target crosser
    a->tz0 = arena_take(ar, B * P * H);
    a->tz = arena_take(ar, B * P * H);
    a->t_tgt = arena_take(ar, B * L * H);
    cross_block_acts_take(&a->tgt_infer, ar, (int)B, (int)P, (int)L, (int)H, s->cross_heads, NULL);
    a->tgt_ln = arena_take(ar, B * P * H);
    a->target = arena_take(ar, B * P * H);
    a->valid_none = (uint8_t *)arena_take(ar, (Bv * L + 3) / 4); // the arena starts zeroed
    if (negatives_own_target(m)) {
        a->u_slot = arena_take(ar, B * L * Dt);
        a->valid_slot = (uint8_t *)arena_take(ar, (B * L + 3) / 4);
        a->target_virt = arena_take(ar, Bv * P * H);
    }

    // predictor
    plan_predictor(a, ar, s, Bv, P, H);

    // losses and backward
    a->energy = arena_take(ar, Bv);
    a->denergy = arena_take(ar, Bv);
    a->nce_loss = arena_take(ar, B);
    a->nce_probs = arena_take(ar, Bv);
    a->dnce = arena_take(ar, B);
    a->dpred = arena_take(ar, Bv * P * H);
    a->dpln = arena_take(ar, Bv * P * Dp);
    a->dpx = arena_take(ar, Bv * P * Dp);
    a->dpe = arena_take(ar, Bv * P * Dp);
    a->dz = arena_take(ar, Bv * P * H);
    a->dt = arena_take(ar, Bv * L * H);
    a->du_virt = arena_take(ar, Bv * L * Dt);
    a->dzc = arena_take(ar, B * P * H);
    a->dzc0 = arena_take(ar, B * P * H);
}

// ijepa mode: the online image encoder on the context patches (with saved activations), its EMA
// copy on the full image, the target LayerNorm and the predictor from and to De.
static void plan_acts_ijepa(Model *m, Arena *ar) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    size_t B = (size_t)m->Bmax, P = (size_t)m->P, De = s->img_dim, Dp = s->pred_dim;
    size_t pp3 = 3 * (size_t)s->patch * s->patch;
    block_scratch_take(&a->scratch, ar, max_sz(B * P * Dp, B * P * De), 0, P * P);
    a->patches = arena_take(ar, B * P * pp3);
    a->patches_c = arena_take(ar, B * P * pp3);
    for (int i = 0; i <= s->img_depth; i++)
        a->img_x[i] = arena_take(ar, B * P * De);
    for (int i = 0; i < s->img_depth; i++)
        self_block_acts_take(&a->img_acts[i], ar, (int)B, (int)P, (int)De, s->img_heads,
                             a->scratch.att);
    a->s_mean = arena_take(ar, B * P);
    a->s_rstd = arena_take(ar, B * P);
    a->s_ctx = arena_take(ar, B * P * De);
    a->img_full = arena_take(ar, B * P * De);
    a->s_full = arena_take(ar, B * P * De);
    self_block_acts_take(&a->img_infer, ar, (int)B, (int)P, (int)De, s->img_heads, NULL);
    a->tgt_ln = arena_take(ar, B * P * De);
    a->target = arena_take(ar, B * P * De);
    plan_predictor(a, ar, s, B, P, De);
    a->energy = arena_take(ar, B);
    a->denergy = arena_take(ar, B);
    a->dpred = arena_take(ar, B * P * De);
    a->dpln = arena_take(ar, B * P * Dp);
    a->dpx = arena_take(ar, B * P * Dp);
    a->dpe = arena_take(ar, B * P * Dp);
    a->ds = arena_take(ar, B * P * De);
    a->dimg = arena_take(ar, B * P * De);
}

Model *model_new(const ModelConfig *cfg, char *err, size_t errlen) {
    if (model_shape_check(&cfg->shape, err, errlen)) return NULL;
    if (cfg->local_batch < 1) {
        snprintf(err, errlen, "the local batch must be ≥ 1 (got %d)", cfg->local_batch);
        return NULL;
    }
    if (cfg->nce_weight < 0 || cfg->negatives < 0 || !(cfg->temperature > 0)) {
        snprintf(err, errlen,
                 "loss.nce_weight and loss.negatives must be ≥ 0, loss.temperature > 0");
        return NULL;
    }
    if (cfg->text_encoder != TEXT_ENCODER_PRETLN && cfg->text_encoder != TEXT_ENCODER_BERT) {
        snprintf(err, errlen, "unknown text encoder kind %d", (int)cfg->text_encoder);
        return NULL;
    }
    if (cfg->mode != MODE_PAPER && cfg->mode != MODE_SCRATCH && cfg->mode != MODE_IJEPA) {
        snprintf(err, errlen, "unknown model mode %d", (int)cfg->mode);
        return NULL;
    }
    if (cfg->mode == MODE_IJEPA && cfg->nce_weight > 0 && cfg->negatives > 0) {
        snprintf(err, errlen,
                 "model.mode = ijepa pre-trains the image encoder alone: it has no captions and "
                 "no negatives, so loss.nce_weight must be 0");
        return NULL;
    }
    // The bert encoder has a forward pass only (it loads pretrained, frozen weights).
    if (cfg->text_encoder == TEXT_ENCODER_BERT && cfg->mode == MODE_SCRATCH) {
        snprintf(err, errlen,
                 "model.text_encoder = bert is a frozen pretrained encoder, but model.mode = "
                 "scratch trains the text encoder: use model.mode = paper, or "
                 "model.text_encoder = pretln to train one from scratch");
        return NULL;
    }
    Model *m = xcalloc(1, sizeof(Model));
    m->cfg = *cfg;
    const ModelShape *s = &m->cfg.shape;
    m->grid = s->image_size / s->patch;
    m->P = m->grid * m->grid;
    m->K1 = (cfg->nce_weight > 0 && cfg->negatives > 0) ? 1 + cfg->negatives : 1;
    m->Bmax = cfg->local_batch;
    m->Bv = m->Bmax * m->K1;
    m->pred_io = cfg->mode == MODE_IJEPA ? s->img_dim : s->cross_dim;

    m->ranges.txt_blocks = xcalloc((size_t)s->txt_depth, sizeof(TensorRange));
    m->ranges.img_blocks = xcalloc((size_t)s->img_depth, sizeof(TensorRange));
    m->ranges.ctx_blocks = xcalloc((size_t)s->cross_depth, sizeof(TensorRange));
    m->ranges.pred_blocks = xcalloc((size_t)s->pred_depth, sizeof(TensorRange));
    TextEncoderKind txt_kind = cfg->text_encoder;
    m->n_tensors = layout_build(NULL, NULL, s, txt_kind, cfg->mode, NULL);
    m->tensors = xcalloc((size_t)m->n_tensors, sizeof(TensorInfo));
    layout_build(m->tensors, &m->ranges, s, txt_kind, cfg->mode, &m->n_params);

    // Trainable and EMA ranges follow from the group order txt, img, ctx, pred (ijepa: img, pred;
    // its empty ctx range starts at pred, so the EMA range is img alone).
    int first_ctx = m->ranges.ctx_in.first, first_img = m->ranges.img_embed.first;
    int first_pred = m->ranges.pred_in.first;
    m->first_trainable = trains_encoders(m) ? 0 : first_ctx;
    m->train_off = m->tensors[m->first_trainable].offset;
    m->train_cnt = m->n_params - m->train_off;
    m->ema_off = m->tensors[trains_encoders(m) ? first_img : first_ctx].offset;
    m->ema_cnt = m->tensors[first_pred].offset - m->ema_off;

    m->params = xcalloc(m->n_params, sizeof(float));
    m->ema = xcalloc(m->ema_cnt, sizeof(float));
    m->grads = xcalloc(m->train_cnt, sizeof(float));
    m->adam_m = xcalloc(m->train_cnt, sizeof(float));
    m->adam_v = xcalloc(m->train_cnt, sizeof(float));
    alloc_views(&m->w, s);
    alloc_views(&m->g, s);
    alloc_views(&m->e, s);
    layout_views(&m->w, s, txt_kind, cfg->mode, m->params, 0, m->n_params);
    layout_views(&m->g, s, txt_kind, cfg->mode, m->grads, m->train_off, m->n_params);
    layout_views(&m->e, s, txt_kind, cfg->mode, m->ema, m->ema_off, m->ema_off + m->ema_cnt);

    m->img_pos = xcalloc((size_t)m->P * s->img_dim, sizeof(float));
    m->pred_pos = xcalloc((size_t)m->P * s->pred_dim, sizeof(float));
    sincos_pos_embed_2d(m->img_pos, m->grid, s->img_dim);
    sincos_pos_embed_2d(m->pred_pos, m->grid, s->pred_dim);

    Acts *a = &m->a;
    a->txt_x = xcalloc((size_t)s->txt_depth + 1, sizeof(float *));
    a->txt_acts = xcalloc((size_t)s->txt_depth + 1, sizeof(SelfBlockActs));
    a->img_x = xcalloc((size_t)s->img_depth + 1, sizeof(float *));
    a->img_acts = xcalloc((size_t)s->img_depth + 1, sizeof(SelfBlockActs));
    a->ctx_z = xcalloc((size_t)s->cross_depth + 1, sizeof(float *));
    a->ctx_acts = xcalloc((size_t)s->cross_depth, sizeof(CrossBlockActs));
    a->pred_x = xcalloc((size_t)s->pred_depth + 1, sizeof(float *));
    a->pred_acts = xcalloc((size_t)s->pred_depth, sizeof(SelfBlockActs));
    void (*plan)(Model *, Arena *) = is_ijepa(m) ? plan_acts_ijepa : plan_acts;
    Arena count = {0};
    plan(m, &count);
    m->arena = xcalloc(count.used + 16, sizeof(float));
    Arena real = {.base = m->arena};
    plan(m, &real);
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    free(m->ranges.txt_blocks);
    free(m->ranges.img_blocks);
    free(m->ranges.ctx_blocks);
    free(m->ranges.pred_blocks);
    free(m->tensors);
    free(m->params);
    free(m->ema);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free_views(&m->w);
    free_views(&m->g);
    free_views(&m->e);
    free(m->img_pos);
    free(m->pred_pos);
    Acts *a = &m->a;
    free(a->txt_x);
    free(a->txt_acts);
    free(a->img_x);
    free(a->img_acts);
    free(a->ctx_z);
    free(a->ctx_acts);
    free(a->pred_x);
    free(a->pred_acts);
    free(m->arena);
    free(m);
}

const ModelConfig *model_config(const Model *m) {
    return &m->cfg;
}
const TensorInfo *model_tensors(const Model *m, int *n) {
    if (n) *n = m->n_tensors;
    return m->tensors;
}
int model_tensor_index(const Model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}
size_t model_num_params(const Model *m) {
    return m->n_params;
}
float *model_params(Model *m) {
    return m->params;
}
float *model_ema(Model *m) {
    return m->ema;
}
float *model_grads(Model *m) {
    return m->grads;
}
float *model_adam_m(Model *m) {
    return m->adam_m;
}
float *model_adam_v(Model *m) {
    return m->adam_v;
}
size_t model_trainable_offset(const Model *m) {
    return m->train_off;
}
size_t model_trainable_count(const Model *m) {
    return m->train_cnt;
}
size_t model_ema_offset(const Model *m) {
    return m->ema_off;
}
size_t model_ema_count(const Model *m) {
    return m->ema_cnt;
}
int model_first_trainable_tensor(const Model *m) {
    return m->first_trainable;
}
