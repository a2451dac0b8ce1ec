// tijepa explain: where in the image a caption "looks". The target crosser's last block lets each
// image patch (query) attend over the caption's tokens; for a token t, the column A[:, t] of that
// attention, normalised over the patches, says which patches take most from t. The heat map is
// that column for --token N, or the mean of the normalised columns over the caption's word tokens
// ([CLS] and [SEP] left out) by default. Output: the image resized to S·F pixels square (S the
// model's image size, F = --scale, default the smallest integer with S·F ≥ 256, e.g. 8 for 32 px
// and 2 for 224 px), blended with the heat map h (bilinearly upsampled from the patch grid,
// min–max scaled to [0, 1], blue = least, red = most) with weight 0.25 + 0.5·h, so the image stays
// visible where attention is low; written as an RGB PNG.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"

static void usage(FILE *to) {
    fprintf(to, "usage: tijepa explain --ckpt PATH --image FILE --text \"...\" --out map.png "
                "[--token N] [--scale F]\n"
                "                      [--vocab vocab.txt]\n"
                "  Writes the image with a heat map of the cross-attention from the caption's "
                "tokens over the\n"
                "  patches: token N (0 = [CLS]; the tokens are listed on stdout) or, by default, "
                "the mean over\n"
                "  the word tokens. The PNG is S·F pixels square, S the model's image size, F "
                "default ceil(256/S).\n");
}

static float clamp01(float v) {
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

// Blue → cyan → yellow → red ramp ("jet") for t in [0, 1].
static void heat_colour(float rgb[3], float t) {
    rgb[0] = clamp01(1.5f - fabsf(4.0f * t - 3.0f));
    rgb[1] = clamp01(1.5f - fabsf(4.0f * t - 2.0f));
    rgb[2] = clamp01(1.5f - fabsf(4.0f * t - 1.0f));
}

// Bilinear sample (align_corners = False) of heat [g, g] at output pixel (oy, ox) of W × W.
static float upsample(const float *heat, int g, int W, int oy, int ox) {
    float sy = ((float)oy + 0.5f) * g / W - 0.5f, sx = ((float)ox + 0.5f) * g / W - 0.5f;
    sy = sy < 0 ? 0 : sy;
    sx = sx < 0 ? 0 : sx;
    int y0 = (int)sy, x0 = (int)sx;
    int y1 = y0 + 1 < g ? y0 + 1 : g - 1, x1 = x0 + 1 < g ? x0 + 1 : g - 1;
    float fy = sy - y0, fx = sx - x0;
    float top = heat[y0 * g + x0] * (1 - fx) + heat[y0 * g + x1] * fx;
    float bot = heat[y1 * g + x0] * (1 - fx) + heat[y1 * g + x1] * fx;
    return top * (1 - fy) + bot * fy;
}

int cmd_explain(int argc, char **argv) {
    const char *ckpt = NULL, *image = NULL, *text = NULL, *out = NULL, *vocab = NULL;
    long token = -1, scale = 0;
    const EvalOption opts[] = {
        {.flag = "--ckpt", .str = &ckpt},
        {.flag = "--image", .str = &image},
        {.flag = "--text", .str = &text},
        {.flag = "--out", .str = &out},
        {.flag = "--vocab", .str = &vocab},
        {.flag = "--token", .num = &token, .lo = 0, .hi = 1 << 20},
        {.flag = "--scale", .num = &scale, .lo = 1, .hi = 64},
    };
    int rc_args = eval_parse_options("explain", argc, argv, opts,
                                     (int)(sizeof(opts) / sizeof(opts[0])), usage);
    if (rc_args != EVAL_ARGS_PARSED) return rc_args;
    if (!ckpt || !image || !text || !out) {
        fprintf(stderr, "tijepa explain: --ckpt, --image, --text and --out are required\n");
        usage(stderr);
        return TJ_EXIT_USAGE;
    }
    char err[4096];
    EvalModel em;
    if (eval_model_open(&em, ckpt, vocab, 1, err, sizeof(err))) {
        fprintf(stderr, "tijepa explain: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    const ModelShape *sh = &em.rs.model.shape;
    int S = sh->image_size, L = sh->txt_len, g = S / sh->patch, P = g * g;
    int F = scale > 0 ? (int)scale : (256 + S - 1) / S;
    if (F < 1) F = 1;
    int W = S * F;
    int rc = TJ_EXIT_ERROR;
    ImageU8 img = {0, 0, NULL};
    float *x = malloc((size_t)3 * S * S * sizeof(float));
    float *s_img = malloc((size_t)P * sh->img_dim * sizeof(float));
    float *u = malloc((size_t)L * sh->txt_dim * sizeof(float));
    float *map = malloc((size_t)P * L * sizeof(float));
    float *heat = calloc((size_t)P, sizeof(float));
    float *base = malloc((size_t)3 * W * W * sizeof(float));
    uint8_t *rgb = malloc((size_t)3 * W * W);
    int32_t *ids = malloc((size_t)L * sizeof(int32_t));
    uint8_t *valid = malloc((size_t)L), *png = NULL;
    size_t png_len = 0;
    if (!x || !s_img || !u || !map || !heat || !base || !rgb || !ids || !valid) {
        fprintf(stderr, "tijepa explain: out of memory\n");
        goto done;
    }
    int n_valid;
    if (eval_image_file(x, &img, image, S, err, sizeof(err)) ||
        (n_valid = tokenizer_encode(em.tok, text, ids, valid, L, NULL, err, sizeof(err))) < 0) {
        fprintf(stderr, "tijepa explain: %s\n", err);
        goto done;
    }
    if (token >= 0 && (token >= L || !valid[token])) {
        fprintf(stderr, "tijepa explain: --token %ld: the caption has %d tokens (0..%d)\n", token,
                n_valid, n_valid - 1);
        rc = TJ_EXIT_USAGE;
        goto done;
    }
    model_image_features(em.m, s_img, x, 1);
    model_text_features(em.m, u, ids, valid, 1);
    model_attention_map(em.m, map, s_img, u, valid);

    // Tokens to explain: the chosen one, else the word tokens (all valid ones if there are none).
    int first = 1, last = n_valid - 2;
    if (token >= 0)
        first = last = (int)token;
    else if (last < first)
        first = 0, last = n_valid - 1;
    for (int t = first; t <= last; t++) {
        double col = 0;
        for (int p = 0; p < P; p++)
            col += map[(size_t)p * L + t];
        for (int p = 0; p < P; p++)
            heat[p] += (float)(col > 0 ? map[(size_t)p * L + t] / col : 1.0 / P);
    }
    float lo = heat[0], hi = heat[0];
    for (int p = 1; p < P; p++) {
        lo = heat[p] < lo ? heat[p] : lo;
        hi = heat[p] > hi ? heat[p] : hi;
    }
    int peak = 0;
    for (int p = 0; p < P; p++) {
        if (heat[p] > heat[peak]) peak = p;
        heat[p] = hi > lo ? (heat[p] - lo) / (hi - lo) : 0.0f;
    }
    const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    image_to_tensor(base, &img, W, zero, one); // plain [0, 1] RGB at the output size
    for (int y = 0; y < W; y++)
        for (int xo = 0; xo < W; xo++) {
            float c[3], h = upsample(heat, g, W, y, xo), a = 0.25f + 0.5f * h;
            heat_colour(c, h);
            for (int ch = 0; ch < 3; ch++) {
                float v = (1.0f - a) * base[((size_t)ch * W + y) * W + xo] + a * c[ch];
                rgb[((size_t)y * W + xo) * 3 + ch] = (uint8_t)lrintf(255.0f * clamp01(v));
            }
        }
    if (png_encode(&png, &png_len, rgb, W, W, err, sizeof(err))) {
        fprintf(stderr, "tijepa explain: %s\n", err);
        goto done;
    }
    FILE *f = fopen(out, "wb");
    if (!f || fwrite(png, 1, png_len, f) != png_len || fclose(f)) {
        fprintf(stderr, "tijepa explain: cannot write %s\n", out);
        goto done;
    }
    printf("tokens:");
    for (int t = 0; t < n_valid; t++)
        printf(" %d:%s", t, tokenizer_token(em.tok, ids[t]));
    printf("\n");
    if (token >= 0)
        printf("heat map of token %ld (%s)", token, tokenizer_token(em.tok, ids[token]));
    else
        printf("heat map of the mean over tokens %d..%d", first, last);
    printf(", strongest at patch row %d col %d of %d×%d; %d×%d px → %s\n", peak / g, peak % g, g, g,
           W, W, out);
    rc = TJ_EXIT_OK;
done:
    image_free(&img);
    free(png);
    free(x);
    free(s_img);
    free(u);
    free(map);
    free(heat);
    free(base);
    free(rgb);
    free(ids);
    free(valid);
    eval_model_close(&em);
    return rc;
}
