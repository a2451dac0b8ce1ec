// Evaluation-side computations on a trained model: encoder features (each image and caption
// encoded once), energies of arbitrary (image, caption) pairs in chunks, pooled features for the
// linear probe, and cross-attention maps for explanations.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network.h"

// The functions that need the text path and the crossers stop here in ijepa mode.
static void require_text_path(const Model *m, const char *what) {
    if (!is_ijepa(m)) return;
    fprintf(stderr,
            "tijepa: %s:%d: %s needs the text path, which a model.mode = ijepa model does not "
            "have\n",
            __FILE__, __LINE__, what);
    exit(1);
}

// The image encoder of the target path: frozen in paper mode, the EMA copy in scratch and ijepa
// mode.
static const ImageW *target_image_encoder(const Model *m) {
    return trains_encoders(m) ? &m->e.img : &m->w.img;
}

void model_image_features(Model *m, float *out, const float *images, int n) {
    const ModelShape *s = &m->cfg.shape;
    size_t per_img = (size_t)3 * s->image_size * s->image_size, per_out = (size_t)m->P * s->img_dim;
    for (int start = 0; start < n; start += m->Bmax) {
        int B = n - start < m->Bmax ? n - start : m->Bmax;
        patchify(m->a.patches, images + start * per_img, B, 3, s->image_size, s->image_size,
                 s->patch);
        image_encode_full(m, out + start * per_out, target_image_encoder(m), B);
    }
}

void model_text_features(Model *m, float *out, const int32_t *tokens, const uint8_t *valid, int n) {
    require_text_path(m, "model_text_features");
    const ModelShape *s = &m->cfg.shape;
    size_t L = (size_t)s->txt_len, row = L * s->txt_dim;
    for (int start = 0; start < n; start += m->Bmax) {
        int B = n - start < m->Bmax ? n - start : m->Bmax;
        ModelBatch b = {.n = B, .tokens = tokens + start * L, .valid = valid + start * L};
        const float *u = model_encode_text(m, &b);
        memcpy(out + start * row, u, B * row * sizeof(float));
    }
}

// Loads pairs [start, start + B) into the step's buffers: full-image tokens, context tokens,
// caption features and masks.
static void load_pairs(Model *m, const float *s_img, const float *u, const uint8_t *valid,
                       const int *img_idx, const int *txt_idx, int B, const MaskSet *ms) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    size_t srow = (size_t)m->P * s->img_dim, L = (size_t)s->txt_len, urow = L * s->txt_dim;
    for (int p = 0; p < B; p++) {
        memcpy(a->s_full + p * srow, s_img + (size_t)img_idx[p] * srow, srow * sizeof(float));
        memcpy(a->u_virt + p * urow, u + (size_t)txt_idx[p] * urow, urow * sizeof(float));
        memcpy(a->valid_virt + p * L, valid + (size_t)txt_idx[p] * L, L);
    }
    if (ms) gather_rows(a->s_ctx, a->s_full, ms->context, B, m->P, ms->n_context, s->img_dim);
}

// The targets of B loaded pairs when the target crosser reads no text: an image's target is then
// the same for every caption, so it is computed once per run of equal img_idx (a row of the
// retrieval matrix is one run) and copied to the run's pairs.
static void caption_free_targets(Model *m, const int *img_idx, int B, const MaskSet *ms) {
    Acts *a = &m->a;
    size_t srow = (size_t)m->P * m->cfg.shape.img_dim, trow = (size_t)ms->n_target * m->pred_io;
    int run_of[B], runs = 0;
    for (int p = 0; p < B; p++) {
        if (p == 0 || img_idx[p] != img_idx[p - 1]) { // a new run: its image to slot `runs`
            if (p != runs)
                memcpy(a->s_full + runs * srow, a->s_full + p * srow, srow * sizeof(float));
            runs++;
        }
        run_of[p] = runs - 1;
    }
    target_forward(m, a->s_full, a->u_virt, a->valid_none, ms, runs);
    for (int p = B - 1; p >= 0; p--) // run_of[p] ≤ p: copying downwards never reads a written row
        if (run_of[p] != p)
            memcpy(a->target + p * trow, a->target + run_of[p] * trow, trow * sizeof(float));
}

void model_pair_energies(Model *m, float *energy, const float *s_img, const float *u,
                         const uint8_t *valid, const int *img_idx, const int *txt_idx, int n_pairs,
                         const MaskSet *ms) {
    require_text_path(m, "model_pair_energies");
    int K1 = m->K1;
    m->K1 = 1; // one caption per image here: the buffers planned for K1 ≥ 1 are large enough
    ModelLoss loss;
    for (int start = 0; start < n_pairs; start += m->Bmax) {
        int B = n_pairs - start < m->Bmax ? n_pairs - start : m->Bmax;
        load_pairs(m, s_img, u, valid, img_idx + start, txt_idx + start, B, ms);
        context_forward(m, m->a.u_virt, m->a.valid_virt, ms, B);
        if (m->cfg.target_text == TARGET_TEXT_NONE)
            caption_free_targets(m, img_idx + start, B, ms);
        else
            target_forward(m, m->a.s_full, m->a.u_virt, m->a.valid_virt, ms, B);
        losses_forward(m, &loss, ms, B);
        memcpy(energy + start, m->a.energy, (size_t)B * sizeof(float));
    }
    m->K1 = K1;
}

void model_probe_features(Model *m, float *out, const float *s_img, const float *u,
                          const uint8_t *valid, int n) {
    require_text_path(m, "model_probe_features");
    int H = m->cfg.shape.cross_dim, P = m->P;
    int idx_buf[256];
    MaskSet none = {0, 0, idx_buf, idx_buf};
    for (int start = 0; start < n; start += m->Bmax) {
        int B = n - start < m->Bmax ? n - start : m->Bmax;
        int pairs[B];
        for (int p = 0; p < B; p++)
            pairs[p] = start + p;
        load_pairs(m, s_img, u, valid, pairs, pairs, B, NULL);
        target_forward(m, m->a.s_full, m->a.u_virt, m->a.valid_virt, &none, B);
        meanpool_forward(out + (size_t)start * H, m->a.tz, B, P, H);
    }
}

void model_attention_map(Model *m, float *map, const float *s_img, const float *u,
                         const uint8_t *valid) {
    require_text_path(m, "model_attention_map");
    const ModelShape *s = &m->cfg.shape;
    int P = m->P, L = s->txt_len, heads = s->cross_heads, zero = 0;
    int idx_buf[1];
    MaskSet none = {0, 0, idx_buf, idx_buf};
    load_pairs(m, s_img, u, valid, &zero, &zero, 1, NULL);
    target_forward(m, m->a.s_full, m->a.u_virt, m->a.valid_virt, &none, 1);
    // probs [1, heads, P, L] of the last crosser block: mean over heads
    const float *probs = m->a.tgt_infer.probs;
    for (int i = 0; i < P * L; i++) {
        float acc = 0;
        for (int h = 0; h < heads; h++)
            acc += probs[(size_t)h * P * L + i];
        map[i] = acc / heads;
    }
}
