// ijepa mode: image-only I-JEPA pre-training of the ViT (Assran et al. 2023), the stage before a
// TI-JEPA paper-mode run that freezes the encoder it produced. One step:
//   s_C = img(x)[C]                 online encoder on the context patches (gradients)
//   z   = LN_noaffine(img_ema(x))   EMA encoder on the full image, no gradient at all
//   ẑ   = pred(s_C, C, T)           the predictor from and to the image width De
//   E_i = mean over T×De of smooth_l1(ẑ_i − z_i[T]),  loss = mean_i E_i
// The contract is tests/reference/MODEL.md, "ijepa mode".
#include <stdio.h>
#include <stdlib.h>

#include "network.h"

void ijepa_forward_backward(Model *m, ModelLoss *out, const ModelBatch *batch, const MaskSet *ms,
                            GradReadyFn on_ready, void *ready_ctx) {
    const ModelShape *s = &m->cfg.shape;
    Acts *a = &m->a;
    int B = batch->n, P = m->P, De = s->img_dim;
    if (!batch->images || batch->img_features) {
        fprintf(stderr, "tijepa: %s:%d: ijepa mode trains the image encoder on pixels\n", __FILE__,
                __LINE__);
        exit(1);
    }
    patchify(a->patches, batch->images, B, 3, s->image_size, s->image_size, s->patch);
    image_encode_context(m, ms, B);
    image_encode_full(m, a->s_full, &m->e.img, B);
    layernorm_forward(a->tgt_ln, NULL, NULL, a->s_full, NULL, NULL, B * P, De);
    gather_rows(a->target, a->tgt_ln, ms->target, B, P, ms->n_target, De);

    predictor_forward(m, a->s_ctx, ms, B);
    losses_forward(m, out, ms, B); // K1 = 1: the JEPA term alone, denergy = 1/B

    predictor_backward(m, a->ds, a->s_ctx, ms, B, on_ready, ready_ctx);
    image_encode_context_backward(m, ms, B, on_ready, ready_ctx);
}
