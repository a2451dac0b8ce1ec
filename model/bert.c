// The post-LN BERT text encoder for pretrained BERT-family weights (BERT, MiniLM, bge, e5, ...):
// inference only, built from the shared kernels. The order of operations follows the original
// BERT: residual add, then LayerNorm (eps 1e-12), and no final norm after the last block.
#include <string.h>

#include "bert.h"

int text_encoder_parse(const char *name, TextEncoderKind *kind) {
    if (!strcmp(name, "pretln"))
        *kind = TEXT_ENCODER_PRETLN;
    else if (!strcmp(name, "bert"))
        *kind = TEXT_ENCODER_BERT;
    else
        return -1;
    return 0;
}

const char *text_encoder_name(TextEncoderKind kind) {
    return kind == TEXT_ENCODER_BERT ? "bert" : "pretln";
}

// x [N, D] += row [D] (the token-type embedding of type 0, shared by every token).
static void add_row(float *x, const float *row, int N, int D) {
    for (int n = 0; n < N; n++) {
        float *dst = x + (size_t)n * D;
        for (int d = 0; d < D; d++)
            dst[d] += row[d];
    }
}

// One post-LN block: x_out [B·L, D] from x [B·L, D] (x_out may alias x).
static void bert_block_forward(float *x_out, SelfBlockActs *a, const SelfBlockW *w, float *x,
                               const uint8_t *valid, int B, int L, int D, int heads) {
    int N = B * L;
    size_t nd = (size_t)N * D;
    linear_forward(a->qkv, x, w->qkv_w, w->qkv_b, N, D, 3 * D);
    attention_forward(a->att, a->probs, a->qkv, a->qkv + D, a->qkv + 2 * D, valid, B, L, L, D,
                      heads, 3 * D, 3 * D);
    linear_forward(a->mid, a->att, w->proj_w, w->proj_b, N, D, D);
    add_forward(a->mid, a->mid, x, nd);
    layernorm_forward_eps(x, NULL, NULL, a->mid, w->norm1_w, w->norm1_b, N, D, BERT_LAYERNORM_EPS);
    linear_forward(a->fc1, x, w->fc1_w, w->fc1_b, N, D, 4 * D);
    gelu_forward(a->gelu, a->fc1, nd * 4);
    linear_forward(a->mid, a->gelu, w->fc2_w, w->fc2_b, N, 4 * D, D);
    add_forward(a->mid, a->mid, x, nd);
    layernorm_forward_eps(x_out, NULL, NULL, a->mid, w->norm2_w, w->norm2_b, N, D,
                          BERT_LAYERNORM_EPS);
}

void bert_text_forward(float *out, float *x, SelfBlockActs *a, const TextW *w, const int32_t *ids,
                       const uint8_t *valid, int B, int L, int D, int heads, int depth) {
    int N = B * L;
    embedding_forward(x, ids, w->tok_embed, w->pos_embed, B, L, D);
    add_row(x, w->type_embed, N, D);
    layernorm_forward_eps(depth ? x : out, NULL, NULL, x, w->emb_norm_w, w->emb_norm_b, N, D,
                          BERT_LAYERNORM_EPS);
    for (int i = 0; i < depth; i++)
        bert_block_forward(i == depth - 1 ? out : x, a, &w->blocks[i], x, valid, B, L, D, heads);
}
