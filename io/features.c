// Feature shards (written by `tijepa encode`, read by the stream with StreamOptions.features):
// the cheap checks of a feature sample and float32 little-endian conversion.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io.h"

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

void f32_to_le(uint8_t *dst, const float *src, size_t n) {
    if (host_is_little_endian()) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, &src[i], 4);
        for (int k = 0; k < 4; k++)
            dst[4 * i + k] = (uint8_t)(v >> (8 * k));
    }
}

void f32_from_le(float *dst, const uint8_t *src, size_t n) {
    if (host_is_little_endian()) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++)
            v |= (uint32_t)src[4 * i + k] << (8 * k);
        memcpy(&dst[i], &v, 4);
    }
}

// Index of the first non-finite float32 in bytes [4n] (little-endian), or −1. Checks the
// exponent bits, so it needs no conversion and works on unaligned bytes.
static long first_non_finite(const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = bytes + 4 * i;
        if ((b[3] & 0x7f) == 0x7f && (b[2] & 0x80)) return (long)i;
    }
    return -1;
}

int feature_sample_check(const TarSample *s, const FeatureShape *fs, int *label, char *why,
                         size_t whylen) {
    size_t img_bytes = (size_t)fs->img_tokens * fs->img_dim * 4;
    size_t txt_bytes = (size_t)fs->txt_len * fs->txt_dim * 4, valid_bytes = (size_t)fs->txt_len;
    struct {
        const char *ext;
        const uint8_t *data;
        size_t len, want;
        const char *shape;
    } m[3] = {
        {FEATURE_EXT_IMG, s->feat_img, s->feat_img_len, img_bytes,
         "P = (model.image_size / model.patch)² × model.img_dim × 4 bytes"},
        {FEATURE_EXT_TXT, s->feat_txt, s->feat_txt_len, txt_bytes,
         "model.txt_len × model.txt_dim × 4 bytes"},
        {FEATURE_EXT_VALID, s->feat_valid, s->feat_valid_len, valid_bytes, "model.txt_len bytes"}};
    int lab = -1;
    if (label) *label = -1;
    if (why && whylen) why[0] = 0;
    for (int k = 0; k < 3; k++) {
        if (!m[k].data) {
            if (why) snprintf(why, whylen, "no .%s member (not a feature shard?)", m[k].ext);
            return -1;
        }
        if (m[k].len != m[k].want) {
            if (why)
                snprintf(why, whylen,
                         ".%s has %zu bytes but this model expects %zu (%s): features made with "
                         "another model?",
                         m[k].ext, m[k].len, m[k].want, m[k].shape);
            return -1;
        }
    }
    for (int k = 0; k < 2; k++) {
        long bad = first_non_finite(m[k].data, m[k].len / 4);
        if (bad >= 0) {
            if (why) snprintf(why, whylen, ".%s value %ld is not finite", m[k].ext, bad);
            return -1;
        }
    }
    for (size_t i = 0; i < valid_bytes; i++)
        if (s->feat_valid[i] > 1) {
            if (why)
                snprintf(why, whylen, ".%s byte %zu is %d, not 0 or 1", FEATURE_EXT_VALID, i,
                         s->feat_valid[i]);
            return -1;
        }
    if (s->cls && !label_parse(s->cls, s->cls_len, &lab)) {
        if (why) snprintf(why, whylen, ".cls is not an integer label in [0, 2^31)");
        return -1;
    }
    if (label) *label = lab;
    return 0;
}
