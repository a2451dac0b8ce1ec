// The I-JEPA multi-block mask sampler: `targets` blocks (scale, aspect ratio) whose union is T,
// one context block (scale, aspect 1) minus T gives C. One set per step, shared by the batch,
// from an RNG keyed by (seed, step).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

void mask_config_default(MaskConfig *mc) {
    mc->targets = 4;
    mc->target_scale[0] = 0.15f;
    mc->target_scale[1] = 0.2f;
    mc->target_aspect[0] = 0.75f;
    mc->target_aspect[1] = 1.5f;
    mc->context_scale[0] = 0.85f;
    mc->context_scale[1] = 1.0f;
    mc->min_keep = 4;
}

int maskset_alloc(MaskSet *ms, int grid) {
    int P = grid * grid;
    ms->context = calloc((size_t)P, sizeof(int));
    ms->target = calloc((size_t)P, sizeof(int));
    ms->n_context = ms->n_target = 0;
    return ms->context && ms->target ? 0 : -1;
}

void maskset_free(MaskSet *ms) {
    free(ms->context);
    free(ms->target);
    ms->context = ms->target = NULL;
}

// Block size (h, w) for a scale and aspect ratio drawn from one uniform, as I-JEPA does.
static void block_size(int *h, int *w, Rng *rng, const float scale[2], const float aspect[2],
                       int grid) {
    float u = rng_uniform(rng);
    float s = scale[0] + u * (scale[1] - scale[0]);
    int keep = (int)(grid * grid * s);
    float ar = aspect[0] + u * (aspect[1] - aspect[0]);
    *h = (int)lroundf(sqrtf(keep * ar));
    *w = (int)lroundf(sqrtf(keep / ar));
    if (*h < 1) *h = 1;
    if (*w < 1) *w = 1;
    if (*h > grid) *h = grid;
    if (*w > grid) *w = grid;
}

static void paint_block(unsigned char *map, Rng *rng, int h, int w, int grid) {
    int top = (int)(rng_next(rng) % (uint64_t)(grid - h + 1));
    int left = (int)(rng_next(rng) % (uint64_t)(grid - w + 1));
    for (int r = top; r < top + h; r++)
        for (int c = left; c < left + w; c++)
            map[r * grid + c] = 1;
}

void mask_sample(MaskSet *ms, const MaskConfig *mc, int grid, uint64_t seed, uint64_t step) {
    int P = grid * grid;
    unsigned char target[P], context[P];
    const float square[2] = {1.0f, 1.0f};
    // Retry (with the next attempt's keyed RNG) until the context keeps min_keep patches.
    for (uint64_t attempt = 0;; attempt++) {
        Rng rng;
        rng_init(&rng, seed, RNG_STREAM_MASKS, step, attempt);
        int th, tw, ch, cw;
        block_size(&th, &tw, &rng, mc->target_scale, mc->target_aspect, grid);
        block_size(&ch, &cw, &rng, mc->context_scale, square, grid);
        memset(target, 0, sizeof(target));
        memset(context, 0, sizeof(context));
        for (int b = 0; b < mc->targets; b++)
            paint_block(target, &rng, th, tw, grid);
        paint_block(context, &rng, ch, cw, grid);
        int nc = 0, nt = 0;
        for (int i = 0; i < P; i++) {
            if (target[i])
                ms->target[nt++] = i;
            else if (context[i])
                ms->context[nc++] = i;
        }
        int need = mc->min_keep < P ? mc->min_keep : 1;
        if ((nc >= need && nt >= 1) || attempt >= 1000) {
            ms->n_context = nc;
            ms->n_target = nt;
            if (nc == 0) { // a degenerate configuration: keep one patch as context
                ms->context[0] = ms->target[--ms->n_target];
                ms->n_context = 1;
            }
            return;
        }
    }
}
