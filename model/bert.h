// Internal to model/: the post-LN BERT text encoder (model.text_encoder = bert), forward only.
#ifndef TIJEPA_MODEL_BERT_H
#define TIJEPA_MODEL_BERT_H

#include "blocks.h"

// out [B·L, D] = last hidden states of BERT on ids [B, L] with the key-padding mask valid [B, L]:
//   x = LN_emb(word[ids] + position[l] + token_type[0])                 (eps 1e-12)
//   per block: x = LN1(x + proj(Attn(q x, k x, v x, valid)));  x = LN2(x + fc2(gelu(fc1 x)))
// x [B·L, D] is a work buffer; a supplies qkv, probs, att, mid, fc1 and gelu for B·L tokens.
// Padded positions are computed too (as Hugging Face does); nothing reads them downstream.
void bert_text_forward(float *out, float *x, SelfBlockActs *a, const TextW *w, const int32_t *ids,
                       const uint8_t *valid, int B, int L, int D, int heads, int depth);

#endif // TIJEPA_MODEL_BERT_H
