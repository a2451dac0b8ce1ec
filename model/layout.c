// The parameter table: every tensor's name, shape and offset in the one contiguous buffer, and
// named views into any buffer that mirrors a part of it (grads, Adam moments, EMA).
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"

typedef struct {
    TensorInfo *infos; // NULL: count only
    int n;
    size_t total;
    float *base; // view pass: base holds params[lo, hi)
    size_t lo, hi;
    TensorGroup group;
} Walker;

// Declares the next tensor; returns its view pointer (NULL outside the view range).
static float *decl(Walker *wk, int ndim, int d0, int d1, int d2, int d3, const char *fmt, ...) {
    int shape[4] = {d0, d1, d2, d3};
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    size_t offset = wk->total;
    if (wk->infos) {
        TensorInfo *t = &wk->infos[wk->n];
        memset(t, 0, sizeof(*t));
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof(t->name), fmt, ap);
        va_end(ap);
        t->offset = offset;
        t->numel = numel;
        t->ndim = ndim;
        memcpy(t->shape, shape, sizeof(shape));
        t->decay = ndim >= 2;
        t->group = wk->group;
    }
    wk->n++;
    wk->total += numel;
    if (wk->base && offset >= wk->lo && offset + numel <= wk->hi)
        return wk->base + (offset - wk->lo);
    return NULL;
}

#define V1(a) 1, (a), 0, 0, 0
#define V2(a, b) 2, (a), (b), 0, 0

static TensorRange range_from(const Walker *wk, int first) {
    TensorRange r = {first, wk->n};
    return r;
}

static void self_block(Walker *wk, SelfBlockW *w, TensorRange *r, const char *prefix, int i,
                       int D) {
    int first = wk->n;
    SelfBlockW v;
    v.norm1_w = decl(wk, V1(D), "%s.blocks.%d.norm1.weight", prefix, i);
    v.norm1_b = decl(wk, V1(D), "%s.blocks.%d.norm1.bias", prefix, i);
    v.qkv_w = decl(wk, V2(3 * D, D), "%s.blocks.%d.attn.qkv.weight", prefix, i);
    v.qkv_b = decl(wk, V1(3 * D), "%s.blocks.%d.attn.qkv.bias", prefix, i);
    v.proj_w = decl(wk, V2(D, D), "%s.blocks.%d.attn.proj.weight", prefix, i);
    v.proj_b = decl(wk, V1(D), "%s.blocks.%d.attn.proj.bias", prefix, i);
    v.norm2_w = decl(wk, V1(D), "%s.blocks.%d.norm2.weight", prefix, i);
    v.norm2_b = decl(wk, V1(D), "%s.blocks.%d.norm2.bias", prefix, i);
    v.fc1_w = decl(wk, V2(4 * D, D), "%s.blocks.%d.mlp.fc1.weight", prefix, i);
    v.fc1_b = decl(wk, V1(4 * D), "%s.blocks.%d.mlp.fc1.bias", prefix, i);
    v.fc2_w = decl(wk, V2(D, 4 * D), "%s.blocks.%d.mlp.fc2.weight", prefix, i);
    v.fc2_b = decl(wk, V1(D), "%s.blocks.%d.mlp.fc2.bias", prefix, i);
    if (w) *w = v;
    if (r) *r = range_from(wk, first);
}

static void cross_block(Walker *wk, CrossBlockW *w, TensorRange *r, int i, int H) {
    int first = wk->n;
    CrossBlockW v;
    v.norm1_w = decl(wk, V1(H), "ctx.blocks.%d.norm1.weight", i);
    v.norm1_b = decl(wk, V1(H), "ctx.blocks.%d.norm1.bias", i);
    v.q_w = decl(wk, V2(H, H), "ctx.blocks.%d.attn.q.weight", i);
    v.q_b = decl(wk, V1(H), "ctx.blocks.%d.attn.q.bias", i);
    v.kv_w = decl(wk, V2(2 * H, H), "ctx.blocks.%d.attn.kv.weight", i);
    v.kv_b = decl(wk, V1(2 * H), "ctx.blocks.%d.attn.kv.bias", i);
    v.proj_w = decl(wk, V2(H, H), "ctx.blocks.%d.attn.proj.weight", i);
    v.proj_b = decl(wk, V1(H), "ctx.blocks.%d.attn.proj.bias", i);
    v.norm2_w = decl(wk, V1(H), "ctx.blocks.%d.norm2.weight", i);
    v.norm2_b = decl(wk, V1(H), "ctx.blocks.%d.norm2.bias", i);
    v.fc1_w = decl(wk, V2(4 * H, H), "ctx.blocks.%d.mlp.fc1.weight", i);
    v.fc1_b = decl(wk, V1(4 * H), "ctx.blocks.%d.mlp.fc1.bias", i);
    v.fc2_w = decl(wk, V2(H, 4 * H), "ctx.blocks.%d.mlp.fc2.weight", i);
    v.fc2_b = decl(wk, V1(H), "ctx.blocks.%d.mlp.fc2.bias", i);
    if (w) *w = v;
    if (r) *r = range_from(wk, first);
}

// The post-LN BERT text encoder (model/bert.c): the tensors of a Hugging Face BERT under tijepa
// names (launch/pretrained.c maps them); q, k and v are fused into attn.qkv as in the pre-LN
// blocks, and the blocks' norm1/norm2 are the post-attention and post-MLP LayerNorms.
static void walk_text_bert(Walker *wk, TextW *v, SelfBlockW *blocks, ModelRanges *r,
                           const ModelShape *s) {
    int first = wk->n, Dt = s->txt_dim;
    v->tok_embed = decl(wk, V2(s->vocab, Dt), "txt.word_embeddings");
    v->pos_embed = decl(wk, V2(s->txt_len, Dt), "txt.position_embeddings");
    v->type_embed = decl(wk, V2(2, Dt), "txt.token_type_embeddings");
    v->emb_norm_w = decl(wk, V1(Dt), "txt.emb_norm.weight");
    v->emb_norm_b = decl(wk, V1(Dt), "txt.emb_norm.bias");
    if (r) r->txt_embed = range_from(wk, first);
    for (int i = 0; i < s->txt_depth; i++)
        self_block(wk, blocks ? &blocks[i] : NULL, r ? &r->txt_blocks[i] : NULL, "txt", i, Dt);
    if (r) r->txt_norm = range_from(wk, wk->n); // empty: no final norm
}

// The context crosser ctx.* (its EMA copy is the target crosser).
static void walk_crosser(Walker *wk, CrosserW *v, CrossBlockW *blocks, ModelRanges *r,
                         const ModelShape *s) {
    int Dt = s->txt_dim, De = s->img_dim, H = s->cross_dim;
    int first = wk->n;
    v->img_proj_w = decl(wk, V2(H, De), "ctx.img_proj.weight");
    v->img_proj_b = decl(wk, V1(H), "ctx.img_proj.bias");
    v->img_norm_w = decl(wk, V1(H), "ctx.img_norm.weight");
    v->img_norm_b = decl(wk, V1(H), "ctx.img_norm.bias");
    if (r) r->ctx_in = range_from(wk, first);
    first = wk->n;
    if (Dt != H) {
        v->txt_proj_w = decl(wk, V2(H, Dt), "ctx.txt_proj.weight");
        v->txt_proj_b = decl(wk, V1(H), "ctx.txt_proj.bias");
    }
    if (r) r->ctx_txt_proj = range_from(wk, first);
    for (int i = 0; i < s->cross_depth; i++)
        cross_block(wk, blocks ? &blocks[i] : NULL, r ? &r->ctx_blocks[i] : NULL, i, H);
}

// An empty range at the walker's position (a group that ijepa mode leaves out).
static void empty_ranges(Walker *wk, TensorRange *a, TensorRange *b, TensorRange *blocks,
                         int depth) {
    TensorRange none = {wk->n, wk->n};
    *a = none;
    if (b) *b = none;
    for (int i = 0; i < depth; i++)
        blocks[i] = none;
}

// One walk over the whole model, in buffer order: txt, img, ctx, pred (see TensorGroup). In
// ijepa mode only img and pred exist, and the predictor maps the image width De (not the crosser
// width H) to its own width and back.
static void walk(Walker *wk, ModelW *w, ModelRanges *r, const ModelShape *s,
                 TextEncoderKind text_encoder, ModelMode mode) {
    ModelW v;
    memset(&v, 0, sizeof(v));
    if (w) {
        v.txt.blocks = w->txt.blocks;
        v.img.blocks = w->img.blocks;
        v.ctx.blocks = w->ctx.blocks;
        v.pred.blocks = w->pred.blocks;
    }
    int first, ijepa = mode == MODE_IJEPA;
    int Dt = s->txt_dim, De = s->img_dim, H = s->cross_dim, Dp = s->pred_dim, p = s->patch;
    int Dio = ijepa ? De : H; // predictor input and output width

    wk->group = GROUP_TXT;
    if (ijepa) {
        if (r) empty_ranges(wk, &r->txt_embed, &r->txt_norm, r->txt_blocks, s->txt_depth);
    } else if (text_encoder == TEXT_ENCODER_BERT) {
        walk_text_bert(wk, &v.txt, w ? v.txt.blocks : NULL, r, s);
    } else {
        first = wk->n;
        v.txt.tok_embed = decl(wk, V2(s->vocab, Dt), "txt.tok_embed");
        v.txt.pos_embed = decl(wk, V2(s->txt_len, Dt), "txt.pos_embed");
        if (r) r->txt_embed = range_from(wk, first);
        for (int i = 0; i < s->txt_depth; i++)
            self_block(wk, w ? &v.txt.blocks[i] : NULL, r ? &r->txt_blocks[i] : NULL, "txt", i, Dt);
        first = wk->n;
        v.txt.norm_w = decl(wk, V1(Dt), "txt.norm.weight");
        v.txt.norm_b = decl(wk, V1(Dt), "txt.norm.bias");
        if (r) r->txt_norm = range_from(wk, first);
    }

    wk->group = GROUP_IMG;
    first = wk->n;
    v.img.patch_w = decl(wk, 4, De, 3, p, p, "img.patch_embed.weight");
    v.img.patch_b = decl(wk, V1(De), "img.patch_embed.bias");
    if (r) r->img_embed = range_from(wk, first);
    for (int i = 0; i < s->img_depth; i++)
        self_block(wk, w ? &v.img.blocks[i] : NULL, r ? &r->img_blocks[i] : NULL, "img", i, De);
    first = wk->n;
    v.img.norm_w = decl(wk, V1(De), "img.norm.weight");
    v.img.norm_b = decl(wk, V1(De), "img.norm.bias");
    if (r) r->img_norm = range_from(wk, first);

    wk->group = GROUP_CTX;
    if (ijepa) {
        if (r) empty_ranges(wk, &r->ctx_in, &r->ctx_txt_proj, r->ctx_blocks, s->cross_depth);
    } else {
        walk_crosser(wk, &v.ctx, w ? v.ctx.blocks : NULL, r, s);
    }

    wk->group = GROUP_PRED;
    first = wk->n;
    v.pred.embed_w = decl(wk, V2(Dp, Dio), "pred.embed.weight");
    v.pred.embed_b = decl(wk, V1(Dp), "pred.embed.bias");
    v.pred.mask_token = decl(wk, V1(Dp), "pred.mask_token");
    if (r) r->pred_in = range_from(wk, first);
    for (int i = 0; i < s->pred_depth; i++)
        self_block(wk, w ? &v.pred.blocks[i] : NULL, r ? &r->pred_blocks[i] : NULL, "pred", i, Dp);
    first = wk->n;
    v.pred.norm_w = decl(wk, V1(Dp), "pred.norm.weight");
    v.pred.norm_b = decl(wk, V1(Dp), "pred.norm.bias");
    v.pred.proj_w = decl(wk, V2(Dio, Dp), "pred.proj.weight");
    v.pred.proj_b = decl(wk, V1(Dio), "pred.proj.bias");
    if (r) r->pred_out = range_from(wk, first);
    if (w) *w = v;
}

int layout_build(TensorInfo *infos, ModelRanges *ranges, const ModelShape *s,
                 TextEncoderKind text_encoder, ModelMode mode, size_t *total) {
    Walker wk = {.infos = infos};
    walk(&wk, NULL, ranges, s, text_encoder, mode);
    if (total) *total = wk.total;
    return wk.n;
}

void layout_views(ModelW *w, const ModelShape *s, TextEncoderKind text_encoder, ModelMode mode,
                  float *base, size_t lo, size_t hi) {
    Walker wk = {.base = base, .lo = lo, .hi = hi};
    walk(&wk, w, NULL, s, text_encoder, mode);
}
