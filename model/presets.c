// The four presets of DESIGN.md §1 (benchmarks rely on these exact shapes) and shape checks.
#include <stdio.h>
#include <string.h>

#include "model.h"

typedef struct {
    const char *name;
    ModelShape shape;
} Preset;

static const Preset presets[] = {
    // image/patch, img D/depth/heads, txt D/depth/heads/len/vocab, cross, pred, batch
    {"tiny", {32, 4, 96, 4, 4, 96, 2, 4, 16, 1024, 96, 2, 4, 48, 2, 1, 32}},
    {"small", {64, 8, 192, 6, 3, 192, 4, 3, 32, 8192, 192, 4, 4, 96, 4, 2, 32}},
    {"base", {96, 8, 384, 8, 6, 384, 6, 6, 32, 8192, 384, 4, 8, 192, 6, 4, 32}},
    {"paper", {224, 14, 1280, 32, 16, 768, 12, 12, 77, 30522, 768, 4, 8, 384, 12, 12, 26}},
};

int model_preset(ModelShape *shape, const char *name) {
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        if (!strcmp(presets[i].name, name)) {
            *shape = presets[i].shape;
            return 0;
        }
    }
    return -1;
}

static int check_width(const char *what, int dim, int heads, char *err, size_t errlen) {
    if (dim <= 0 || heads <= 0 || dim % heads) {
        snprintf(err, errlen, "model.%s_dim=%d must be a positive multiple of model.%s_heads=%d",
                 what, dim, what, heads);
        return -1;
    }
    return 0;
}

int model_shape_check(const ModelShape *s, char *err, size_t errlen) {
    if (s->patch <= 0 || s->image_size <= 0 || s->image_size % s->patch) {
        snprintf(err, errlen, "model.image_size=%d must be a positive multiple of model.patch=%d",
                 s->image_size, s->patch);
        return -1;
    }
    if (check_width("img", s->img_dim, s->img_heads, err, errlen) ||
        check_width("txt", s->txt_dim, s->txt_heads, err, errlen) ||
        check_width("cross", s->cross_dim, s->cross_heads, err, errlen) ||
        check_width("pred", s->pred_dim, s->pred_heads, err, errlen))
        return -1;
    // The fixed 2-D sin-cos positions split each width in four.
    if (s->img_dim % 4 || s->pred_dim % 4) {
        snprintf(err, errlen, "model.img_dim=%d and model.pred_dim=%d must be multiples of 4",
                 s->img_dim, s->pred_dim);
        return -1;
    }
    if (s->img_depth < 0 || s->txt_depth < 0 || s->cross_depth < 1 || s->pred_depth < 1) {
        snprintf(err, errlen, "model depths must be ≥ 0 (encoders) and ≥ 1 (crosser, predictor)");
        return -1;
    }
    if (s->txt_len < 2 || s->vocab < 5) {
        snprintf(err, errlen, "model.txt_len=%d must be ≥ 2 and model.vocab=%d ≥ 5", s->txt_len,
                 s->vocab);
        return -1;
    }
    int grid = s->image_size / s->patch;
    if (grid < 2) {
        snprintf(err, errlen, "the patch grid (%d×%d) is too small for masking", grid, grid);
        return -1;
    }
    return 0;
}
