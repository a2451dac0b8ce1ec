// One training step: text encoder, then the context path (crosser + predictor, with negatives
// as extra virtual samples), the EMA target path, energies, losses, and the whole backward.
// The exact contract is tests/reference/MODEL.md.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "network.h"

static void announce(const Model *m, TensorRange r, GradReadyFn on_ready, void *ctx) {
    if (!on_ready) return;
    for (int i = r.first; i < r.end; i++)
        if (i >= m->first_trainable) on_ready(ctx, i);
}

// x[B·n, D] += pos[idx[j]] for token j of every sample (idx NULL: token j uses row j).
static void add_positions(float *x, const float *pos, const int *idx, int B, int n, int D) {
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++) {
            float *row = x + ((size_t)b * n + j) * D;
            const float *p = pos + (size_t)(idx ? idx[j] : j) * D;
            for (int d = 0; d < D; d++)
                row[d] += p[d];
        }
}

// ---------------------------------------------------------------------------------------------
// encoders

const float *model_encode_text(Model *m, const ModelBatch *batch) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    int B = batch->n, L = s->txt_len, D = s->txt_dim;
    if (B > m->Bmax) {
        fprintf(stderr, "tijepa: %s:%d: batch of %d exceeds the planned %d\n", __FILE__, __LINE__,
                B, m->Bmax);
        exit(1);
    }
    if (is_ijepa(m)) { // no text encoder: captions are not used
        m->n_text = B;
        return NULL;
    }
    const TextW *w = &m->w.txt;
    if (m->cfg.text_encoder == TEXT_ENCODER_BERT) { // frozen post-LN BERT (model/bert.c)
        bert_text_forward(a->u, a->txt_x[0], &a->txt_acts[0], w, batch->tokens, batch->valid, B, L,
                          D, s->txt_heads, s->txt_depth);
        m->n_text = B;
        return a->u;
    }
    embedding_forward(a->txt_x[0], batch->tokens, w->tok_embed, w->pos_embed, B, L, D);
    float *x = a->txt_x[0];
    for (int i = 0; i < s->txt_depth; i++) {
        if (trains_encoders(m)) {
            self_block_forward(a->txt_x[i + 1], &a->txt_acts[i], &w->blocks[i], a->txt_x[i],
                               batch->valid, B, L, D, s->txt_heads);
            x = a->txt_x[i + 1];
        } else { // frozen: no saved activations, run in place
            self_block_forward(x, &a->txt_acts[0], &w->blocks[i], x, batch->valid, B, L, D,
                               s->txt_heads);
        }
    }
    layernorm_forward(a->u, a->u_mean, a->u_rstd, x, w->norm_w, w->norm_b, B * L, D);
    m->n_text = B;
    return a->u;
}

const float *model_encode_text_features(Model *m, const float *u, int n) {
    const ModelShape *s = &m->cfg.shape;
    if (n > m->Bmax || trains_encoders(m)) {
        fprintf(stderr,
                "tijepa: %s:%d: precomputed text features need paper mode and n ≤ %d (got %d)\n",
                __FILE__, __LINE__, m->Bmax, n);
        exit(1);
    }
    memcpy(m->a.u, u, (size_t)n * s->txt_len * s->txt_dim * sizeof(float));
    m->n_text = n;
    return m->a.u;
}

// Frozen or EMA image encoder on all patches (no saved activations): out [B·P, De].
void image_encode_full(Model *m, float *out, const ImageW *w, int B) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    int P = m->P, De = s->img_dim, pp3 = 3 * s->patch * s->patch;
    linear_forward(a->img_full, a->patches, w->patch_w, w->patch_b, B * P, pp3, De);
    add_positions(a->img_full, m->img_pos, NULL, B, P, De);
    for (int i = 0; i < s->img_depth; i++)
        self_block_forward(a->img_full, &a->img_infer, &w->blocks[i], a->img_full, NULL, B, P, De,
                           s->img_heads);
    layernorm_forward(out, NULL, NULL, a->img_full, w->norm_w, w->norm_b, B * P, De);
}

// The online image encoder on the context patches only (scratch and ijepa mode): s_ctx [B·nC, De].
void image_encode_context(Model *m, const MaskSet *ms, int B) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    const ImageW *w = &m->w.img;
    int P = m->P, n = ms->n_context, De = s->img_dim, pp3 = 3 * s->patch * s->patch;
    gather_rows(a->patches_c, a->patches, ms->context, B, P, n, pp3);
    linear_forward(a->img_x[0], a->patches_c, w->patch_w, w->patch_b, B * n, pp3, De);
    add_positions(a->img_x[0], m->img_pos, ms->context, B, n, De);
    for (int i = 0; i < s->img_depth; i++)
        self_block_forward(a->img_x[i + 1], &a->img_acts[i], &w->blocks[i], a->img_x[i], NULL, B, n,
                           De, s->img_heads);
    layernorm_forward(a->s_ctx, a->s_mean, a->s_rstd, a->img_x[s->img_depth], w->norm_w, w->norm_b,
                      B * n, De);
}

// ---------------------------------------------------------------------------------------------
// context path: crosser X and predictor g on Bv = B·K1 virtual samples

// Virtual sample v = i·K1 + k sees image i with caption k (k = 0 its own, k ≥ 1 negatives).
static void build_virtual_text(Model *m, const ModelBatch *batch, const NegativePool *pool, int B,
                               const float **u_out, const uint8_t **valid_out) {
    Acts *a = &m->a;
    int K1 = m->K1, L = m->cfg.shape.txt_len, Dt = m->cfg.shape.txt_dim;
    if (K1 == 1) {
        *u_out = a->u;
        *valid_out = batch->valid;
        return;
    }
    size_t row = (size_t)L * Dt;
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K1; k++) {
            size_t v = (size_t)i * K1 + k;
            const float *src = k == 0
                                   ? a->u + i * row
                                   : pool->u + (size_t)pool->negatives[i * (K1 - 1) + k - 1] * row;
            const uint8_t *vsrc =
                k == 0 ? batch->valid + (size_t)i * L
                       : pool->valid + (size_t)pool->negatives[i * (K1 - 1) + k - 1] * L;
            memcpy(a->u_virt + v * row, src, row * sizeof(float));
            memcpy(a->valid_virt + v * L, vsrc, (size_t)L);
        }
    *u_out = a->u_virt;
    *valid_out = a->valid_virt;
}

void context_forward(Model *m, const float *u_virt, const uint8_t *valid_virt, const MaskSet *ms,
                     int B) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    const CrosserW *cw = &m->w.ctx;
    int K1 = m->K1, Bv = B * K1, nC = ms->n_context, L = s->txt_len;
    int De = s->img_dim, Dt = s->txt_dim, H = s->cross_dim;

    linear_forward(a->zc0, a->s_ctx, cw->img_proj_w, cw->img_proj_b, B * nC, De, H);
    layernorm_forward(a->zc, a->zc_mean, a->zc_rstd, a->zc0, cw->img_norm_w, cw->img_norm_b, B * nC,
                      H);
    size_t zrow = (size_t)nC * H;
    for (int v = 0; v < Bv; v++)
        memcpy(a->ctx_z[0] + v * zrow, a->zc + (size_t)(v / K1) * zrow, zrow * sizeof(float));
    const float *t = u_virt;
    if (cw->txt_proj_w) {
        linear_forward(a->t_virt, u_virt, cw->txt_proj_w, cw->txt_proj_b, Bv * L, Dt, H);
        t = a->t_virt;
    }
    for (int i = 0; i < s->cross_depth; i++)
        cross_block_forward(a->ctx_z[i + 1], &a->ctx_acts[i], &cw->blocks[i], a->ctx_z[i], t,
                            valid_virt, Bv, nC, L, H, s->cross_heads);
    predictor_forward(m, a->ctx_z[s->cross_depth], ms, Bv);
}

void predictor_forward(Model *m, const float *zin, const MaskSet *ms, int Bv) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    const PredictorW *pw = &m->w.pred;
    int nC = ms->n_context, nT = ms->n_target, Dio = m->pred_io, Dp = s->pred_dim;

    // predictor input: embedded context tokens + positions, then mask tokens + positions
    int n = nC + nT;
    linear_forward(a->pe, zin, pw->embed_w, pw->embed_b, Bv * nC, Dio, Dp);
    for (int v = 0; v < Bv; v++) {
        float *x = a->pred_x[0] + (size_t)v * n * Dp;
        for (int j = 0; j < nC; j++) {
            const float *e = a->pe + ((size_t)v * nC + j) * Dp,
                        *p = m->pred_pos + (size_t)ms->context[j] * Dp;
            for (int d = 0; d < Dp; d++)
                x[(size_t)j * Dp + d] = e[d] + p[d];
        }
        for (int j = 0; j < nT; j++) {
            const float *p = m->pred_pos + (size_t)ms->target[j] * Dp;
            for (int d = 0; d < Dp; d++)
                x[(size_t)(nC + j) * Dp + d] = pw->mask_token[d] + p[d];
        }
    }
    for (int i = 0; i < s->pred_depth; i++)
        self_block_forward(a->pred_x[i + 1], &a->pred_acts[i], &pw->blocks[i], a->pred_x[i], NULL,
                           Bv, n, Dp, s->pred_heads);
    for (int j = 0; j < nT; j++)
        a->tail_idx[j] = nC + j;
    gather_rows(a->pxt, a->pred_x[s->pred_depth], a->tail_idx, Bv, n, nT, Dp);
    layernorm_forward(a->pln, a->pln_mean, a->pln_rstd, a->pxt, pw->norm_w, pw->norm_b, Bv * nT,
                      Dp);
    linear_forward(a->pred, a->pln, pw->proj_w, pw->proj_b, Bv * nT, Dp, Dio);
}

// ---------------------------------------------------------------------------------------------
// target path: the EMA crosser on the full image, no gradient

// The EMA crosser's image projection and norm of the full image: a->tz0 [B·P, H]. It does not
// depend on the caption, so the negatives' targets reuse it.
static void target_project(Model *m, const float *s_full, int B) {
    const ModelShape *s = &m->cfg.shape;
    const CrosserW *ew = &m->e.ctx;
    float *tz0 = m->a.tz0;
    linear_forward(tz0, s_full, ew->img_proj_w, ew->img_proj_b, B * m->P, s->img_dim, s->cross_dim);
    layernorm_forward(tz0, NULL, NULL, tz0, ew->img_norm_w, ew->img_norm_b, B * m->P, s->cross_dim);
}

// From a->tz0: the EMA crosser's blocks with caption u (a->tz [B·P, H]), the parameter-free LN
// and the target rows a->target [B·nT, H].
static void target_blocks(Model *m, const float *u, const uint8_t *valid, const MaskSet *ms,
                          int B) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    const CrosserW *ew = &m->e.ctx;
    int P = m->P, L = s->txt_len, Dt = s->txt_dim, H = s->cross_dim;
    const float *t = u;
    if (ew->txt_proj_w) {
        linear_forward(a->t_tgt, u, ew->txt_proj_w, ew->txt_proj_b, B * L, Dt, H);
        t = a->t_tgt;
    }
    for (int i = 0; i < s->cross_depth; i++) // depth ≥ 1; the first block reads tz0, kept intact
        cross_block_forward(a->tz, &a->tgt_infer, &ew->blocks[i], i ? a->tz : a->tz0, t, valid, B,
                            P, L, H, s->cross_heads);
    layernorm_forward(a->tgt_ln, NULL, NULL, a->tz, NULL, NULL, B * P, H);
    gather_rows(a->target, a->tgt_ln, ms->target, B, P, ms->n_target, H);
}

void target_forward(Model *m, const float *s_full, const float *u, const uint8_t *valid,
                    const MaskSet *ms, int B) {
    target_project(m, s_full, B);
    target_blocks(m, u, valid, ms, B);
}

// Targets of the negatives with their own captions (NEG_TARGET_OWN): the EMA crosser's blocks run
// once per caption slot k on the B images, from the image projection target_forward left in
// a->tz0, into target_virt [Bv·nT, H] (row v = i·K1 + k).
static void negative_targets_forward(Model *m, const float *u_virt, const uint8_t *valid_virt,
                                     const MaskSet *ms, int B) {
    Acts *a = &m->a;
    int K1 = m->K1, L = m->cfg.shape.txt_len, Dt = m->cfg.shape.txt_dim;
    size_t trow = (size_t)ms->n_target * m->cfg.shape.cross_dim, urow = (size_t)L * Dt;
    for (int i = 0; i < B; i++) // slot 0: the positive target, already computed
        memcpy(a->target_virt + (size_t)i * K1 * trow, a->target + i * trow, trow * sizeof(float));
    for (int k = 1; k < K1; k++) {
        for (int i = 0; i < B; i++) {
            size_t v = (size_t)i * K1 + k;
            memcpy(a->u_slot + i * urow, u_virt + v * urow, urow * sizeof(float));
            memcpy(a->valid_slot + (size_t)i * L, valid_virt + v * L, (size_t)L);
        }
        target_blocks(m, a->u_slot, a->valid_slot, ms, B);
        for (int i = 0; i < B; i++)
            memcpy(a->target_virt + ((size_t)i * K1 + k) * trow, a->target + i * trow,
                   trow * sizeof(float));
    }
}

// The target of virtual sample v: [nT, H].
static const float *virtual_target(const Model *m, int v, size_t trow) {
    if (negatives_own_target(m)) return m->a.target_virt + (size_t)v * trow;
    return m->a.target + (size_t)(v / m->K1) * trow;
}

// ---------------------------------------------------------------------------------------------
// losses

void losses_forward(Model *m, ModelLoss *out, const MaskSet *ms, int B) {
    Acts *a = &m->a;
    int K1 = m->K1, nT = ms->n_target, H = m->pred_io;
    size_t trow = (size_t)nT * H;
    for (int v = 0; v < B * K1; v++)
        energy_forward(&a->energy[v], a->pred + v * trow, virtual_target(m, v, trow), 1, nT, H);
    double pos = 0, neg = 0;
    for (int i = 0; i < B; i++) {
        pos += a->energy[i * K1];
        for (int k = 1; k < K1; k++)
            neg += a->energy[i * K1 + k];
    }
    out->jepa = pos / B;
    out->energy_pos = pos / B;
    out->energy_neg = K1 > 1 ? neg / ((double)B * (K1 - 1)) : 0.0;
    out->nce = 0.0;
    float lambda = m->cfg.nce_weight;
    for (int v = 0; v < B * K1; v++)
        a->denergy[v] = (v % K1 == 0) ? 1.0f / B : 0.0f;
    if (K1 > 1) {
        nce_forward(a->nce_loss, a->nce_probs, a->energy, m->cfg.temperature, B, K1);
        double sum = 0;
        for (int i = 0; i < B; i++) {
            sum += a->nce_loss[i];
            a->dnce[i] = lambda / B;
        }
        out->nce = sum / B;
        nce_backward(a->denergy, a->dnce, a->nce_probs, m->cfg.temperature, B, K1);
    }
    out->loss = out->jepa + lambda * out->nce;

    // collapse signal: per-dimension std of the positive predictions, averaged over dimensions
    double std_sum = 0;
    int rows = B * nT;
    for (int d = 0; d < H; d++) {
        double s1 = 0, s2 = 0;
        for (int i = 0; i < B; i++)
            for (int j = 0; j < nT; j++) {
                double x = a->pred[((size_t)i * K1 * nT + j) * H + d];
                s1 += x;
                s2 += x * x;
            }
        double mean = s1 / rows, var = s2 / rows - mean * mean;
        std_sum += sqrt(var > 0 ? var : 0);
    }
    out->pred_std = std_sum / H;
}

// ---------------------------------------------------------------------------------------------
// backward

void predictor_backward(Model *m, float *dzin, const float *zin, const MaskSet *ms, int Bv,
                        GradReadyFn on_ready, void *ctx) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    const PredictorW *pw = &m->w.pred, *pg = &m->g.pred;
    int nC = ms->n_context, nT = ms->n_target, n = nC + nT, H = m->pred_io, Dp = s->pred_dim;
    size_t trow = (size_t)nT * H;

    memset(a->dpred, 0, (size_t)Bv * trow * sizeof(float));
    for (int v = 0; v < Bv; v++)
        energy_backward(a->dpred + v * trow, &a->denergy[v], a->pred + v * trow,
                        virtual_target(m, v, trow), 1, nT, H);

    // predictor head
    memset(a->dpln, 0, (size_t)Bv * nT * Dp * sizeof(float));
    linear_backward(a->dpln, pg->proj_w, pg->proj_b, a->dpred, a->pln, pw->proj_w, Bv * nT, Dp, H);
    float *dxt = a->dpe; // reuse: [Bv·nT, Dp]
    memset(dxt, 0, (size_t)Bv * nT * Dp * sizeof(float));
    layernorm_backward(dxt, pg->norm_w, pg->norm_b, a->dpln, a->pxt, pw->norm_w, a->pln_mean,
                       a->pln_rstd, Bv * nT, Dp);
    announce(m, m->ranges.pred_out, on_ready, ctx);
    memset(a->dpx, 0, (size_t)Bv * n * Dp * sizeof(float));
    scatter_add_rows(a->dpx, dxt, a->tail_idx, Bv, n, nT, Dp);

    // predictor blocks
    for (int i = s->pred_depth - 1; i >= 0; i--) {
        self_block_backward(a->dpx, &pg->blocks[i], &a->scratch, &a->pred_acts[i], &pw->blocks[i],
                            a->pred_x[i], Bv, n, Dp, s->pred_heads);
        announce(m, m->ranges.pred_blocks[i], on_ready, ctx);
    }

    // predictor input: mask token and embedding of its input (crosser output or image tokens)
    for (int v = 0; v < Bv; v++)
        for (int j = 0; j < nT; j++) {
            const float *dr = a->dpx + ((size_t)v * n + nC + j) * Dp;
            for (int d = 0; d < Dp; d++)
                pg->mask_token[d] += dr[d];
        }
    for (int v = 0; v < Bv; v++)
        memcpy(a->dpe + (size_t)v * nC * Dp, a->dpx + (size_t)v * n * Dp,
               (size_t)nC * Dp * sizeof(float));
    memset(dzin, 0, (size_t)Bv * nC * H * sizeof(float));
    linear_backward(dzin, pg->embed_w, pg->embed_b, a->dpe, zin, pw->embed_w, Bv * nC, H, Dp);
    announce(m, m->ranges.pred_in, on_ready, ctx);
}

static void context_backward(Model *m, const float *u_virt, const uint8_t *valid_virt,
                             const MaskSet *ms, int B, GradReadyFn on_ready, void *ctx) {
    (void)valid_virt;
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    const CrosserW *cw = &m->w.ctx, *cg = &m->g.ctx;
    int K1 = m->K1, Bv = B * K1, nC = ms->n_context;
    int L = s->txt_len, De = s->img_dim, Dt = s->txt_dim, H = s->cross_dim;

    predictor_backward(m, a->dz, a->ctx_z[s->cross_depth], ms, Bv, on_ready, ctx);

    // crosser blocks; dt collects the text gradient of every block
    const float *t = cw->txt_proj_w ? a->t_virt : u_virt;
    memset(a->dt, 0, (size_t)Bv * L * H * sizeof(float));
    for (int i = s->cross_depth - 1; i >= 0; i--) {
        cross_block_backward(a->dz, a->dt, &cg->blocks[i], &a->scratch, &a->ctx_acts[i],
                             &cw->blocks[i], a->ctx_z[i], t, Bv, nC, L, H, s->cross_heads);
        announce(m, m->ranges.ctx_blocks[i], on_ready, ctx);
    }

    // text projection (the text gradient reaches the encoder only in scratch mode)
    const float *du_virt = a->dt;
    if (cw->txt_proj_w) {
        float *dinp = NULL;
        if (trains_encoders(m)) {
            memset(a->du_virt, 0, (size_t)Bv * L * Dt * sizeof(float));
            dinp = a->du_virt;
        }
        linear_backward(dinp, cg->txt_proj_w, cg->txt_proj_b, a->dt, u_virt, cw->txt_proj_w, Bv * L,
                        Dt, H);
        du_virt = a->du_virt;
    }
    announce(m, m->ranges.ctx_txt_proj, on_ready, ctx);
    if (trains_encoders(m)) { // positives only: negatives never carry gradient into the text
        size_t row = (size_t)L * Dt;
        for (int i = 0; i < B; i++)
            memcpy(a->du + i * row, du_virt + (size_t)i * K1 * row, row * sizeof(float));
    }

    // image side: sum the K1 replicas, then img_norm and img_proj
    size_t zrow = (size_t)nC * H;
    for (int i = 0; i < B; i++) {
        float *dst = a->dzc + i * zrow;
        memcpy(dst, a->dz + (size_t)i * K1 * zrow, zrow * sizeof(float));
        for (int k = 1; k < K1; k++) {
            const float *src = a->dz + ((size_t)i * K1 + k) * zrow;
            for (size_t e = 0; e < zrow; e++)
                dst[e] += src[e];
        }
    }
    memset(a->dzc0, 0, (size_t)B * zrow * sizeof(float));
    layernorm_backward(a->dzc0, cg->img_norm_w, cg->img_norm_b, a->dzc, a->zc0, cw->img_norm_w,
                       a->zc_mean, a->zc_rstd, B * nC, H);
    float *ds = NULL;
    if (trains_encoders(m)) {
        ds = a->ds;
        memset(ds, 0, (size_t)B * nC * De * sizeof(float));
    }
    linear_backward(ds, cg->img_proj_w, cg->img_proj_b, a->dzc0, a->s_ctx, cw->img_proj_w, B * nC,
                    De, H);
    announce(m, m->ranges.ctx_in, on_ready, ctx);
}

void image_encode_context_backward(Model *m, const MaskSet *ms, int B, GradReadyFn on_ready,
                                   void *ctx) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    int nC = ms->n_context, De = s->img_dim, pp3 = 3 * s->patch * s->patch;
    const ImageW *iw = &m->w.img, *ig = &m->g.img;
    memset(a->dimg, 0, (size_t)B * nC * De * sizeof(float));
    layernorm_backward(a->dimg, ig->norm_w, ig->norm_b, a->ds, a->img_x[s->img_depth], iw->norm_w,
                       a->s_mean, a->s_rstd, B * nC, De);
    announce(m, m->ranges.img_norm, on_ready, ctx);
    for (int i = s->img_depth - 1; i >= 0; i--) {
        self_block_backward(a->dimg, &ig->blocks[i], &a->scratch, &a->img_acts[i], &iw->blocks[i],
                            a->img_x[i], B, nC, De, s->img_heads);
        announce(m, m->ranges.img_blocks[i], on_ready, ctx);
    }
    linear_backward(NULL, ig->patch_w, ig->patch_b, a->dimg, a->patches_c, iw->patch_w, B * nC, pp3,
                    De);
    announce(m, m->ranges.img_embed, on_ready, ctx);
}

static void encoders_backward(Model *m, const ModelBatch *batch, const MaskSet *ms, int B,
                              GradReadyFn on_ready, void *ctx) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    int L = s->txt_len, Dt = s->txt_dim;

    // image encoder (online, context patches)
    image_encode_context_backward(m, ms, B, on_ready, ctx);

    // text encoder
    const TextW *tw = &m->w.txt, *tg = &m->g.txt;
    memset(a->dtxt, 0, (size_t)B * L * Dt * sizeof(float));
    layernorm_backward(a->dtxt, tg->norm_w, tg->norm_b, a->du, a->txt_x[s->txt_depth], tw->norm_w,
                       a->u_mean, a->u_rstd, B * L, Dt);
    announce(m, m->ranges.txt_norm, on_ready, ctx);
    for (int i = s->txt_depth - 1; i >= 0; i--) {
        self_block_backward(a->dtxt, &tg->blocks[i], &a->scratch, &a->txt_acts[i], &tw->blocks[i],
                            a->txt_x[i], B, L, Dt, s->txt_heads);
        announce(m, m->ranges.txt_blocks[i], on_ready, ctx);
    }
    embedding_backward(tg->tok_embed, tg->pos_embed, a->dtxt, batch->tokens, B, L, Dt);
    announce(m, m->ranges.txt_embed, on_ready, ctx);
}

// ---------------------------------------------------------------------------------------------

void model_forward_backward(Model *m, ModelLoss *out, const ModelBatch *batch, const MaskSet *ms,
                            const NegativePool *pool, GradReadyFn on_ready, void *ready_ctx) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    int B = batch->n;
    if (m->n_text != B) {
        fprintf(stderr, "tijepa: %s:%d: model_encode_text must run on this batch first\n", __FILE__,
                __LINE__);
        exit(1);
    }
    if (m->K1 > 1 && (!pool || !pool->negatives)) {
        fprintf(stderr, "tijepa: %s:%d: negatives are on (loss.nce_weight > 0) but no pool given\n",
                __FILE__, __LINE__);
        exit(1);
    }
    memset(m->grads, 0, m->train_cnt * sizeof(float));
    if (is_ijepa(m)) {
        ijepa_forward_backward(m, out, batch, ms, on_ready, ready_ctx);
        return;
    }

    // image features: context tokens for X, full-image tokens for the target X̃
    if (batch->img_features) { // precomputed by the frozen encoder (feature shards)
        if (trains_encoders(m)) {
            fprintf(stderr, "tijepa: %s:%d: precomputed image features need paper mode\n", __FILE__,
                    __LINE__);
            exit(1);
        }
        memcpy(a->s_full, batch->img_features, (size_t)B * m->P * s->img_dim * sizeof(float));
        gather_rows(a->s_ctx, a->s_full, ms->context, B, m->P, ms->n_context, s->img_dim);
    } else if (trains_encoders(m)) {
        patchify(a->patches, batch->images, B, 3, s->image_size, s->image_size, s->patch);
        image_encode_context(m, ms, B);
        image_encode_full(m, a->s_full, &m->e.img, B);
    } else {
        patchify(a->patches, batch->images, B, 3, s->image_size, s->image_size, s->patch);
        image_encode_full(m, a->s_full, &m->w.img, B);
        gather_rows(a->s_ctx, a->s_full, ms->context, B, m->P, ms->n_context, s->img_dim);
    }

    const float *u_virt;
    const uint8_t *valid_virt;
    build_virtual_text(m, batch, pool, B, &u_virt, &valid_virt);
    context_forward(m, u_virt, valid_virt, ms, B);
    target_forward(m, a->s_full, a->u, target_valid(m, batch->valid), ms, B);
    if (negatives_own_target(m)) negative_targets_forward(m, u_virt, valid_virt, ms, B);
    losses_forward(m, out, ms, B);

    context_backward(m, u_virt, valid_virt, ms, B, on_ready, ready_ctx);
    if (trains_encoders(m)) encoders_backward(m, batch, ms, B, on_ready, ready_ctx);
}

void negatives_sample(int *neg, int n, int K, int first_local, int global_n, uint64_t seed,
                      uint64_t step) {
    for (int j = 0; j < n; j++) {
        int g = first_local + j;
        Rng rng;
        rng_init(&rng, seed, RNG_STREAM_NEGATIVES, step, (uint64_t)g);
        for (int k = 0; k < K; k++) {
            // uniform over the other samples of the global batch (with replacement)
            int r = global_n > 1 ? (int)(rng_next(&rng) % (uint64_t)(global_n - 1)) : 0;
            neg[j * K + k] = global_n > 1 ? (r < g ? r : r + 1) : g;
        }
    }
}
