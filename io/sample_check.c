// Cheap checks of one sample: image signatures and header sizes, UTF-8 captions, integer labels.
// Every rank runs them on every sample (they never decode pixels), so all ranks agree on which
// samples the stream keeps.
#include <stdio.h>
#include <string.h>

#include "io.h"

static const char *const problem_names[SAMPLE_PROBLEM_COUNT] = {
    "ok",         "no_image", "not_image",     "bad_image_header", "image_too_large",
    "no_caption", "bad_utf8", "empty_caption", "bad_label",        "decode_failed",
};

const char *sample_problem_name(SampleProblem p) {
    if ((int)p < 0 || p >= SAMPLE_PROBLEM_COUNT) return "unknown";
    return problem_names[p];
}

static uint32_t read_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static SampleProblem probe_png(const uint8_t *b, size_t n, int *width, int *height) {
    // signature (8), IHDR length (4) = 13, "IHDR", width (4), height (4)
    if (n < 24 || read_be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4)) return SAMPLE_BAD_HEADER;
    uint32_t w = read_be32(b + 16), h = read_be32(b + 20);
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu) return SAMPLE_BAD_HEADER;
    *width = (int)w;
    *height = (int)h;
    return SAMPLE_OK;
}

// Walks the JPEG marker segments up to the first start-of-frame (SOF0..SOF15 except DHT, JPG
// and DAC), which holds the height and width.
static SampleProblem probe_jpeg(const uint8_t *b, size_t n, int *width, int *height) {
    size_t pos = 2;
    while (pos < n) {
        if (b[pos] != 0xFF) return SAMPLE_BAD_HEADER;
        while (pos < n && b[pos] == 0xFF)
            pos++; // fill bytes
        if (pos >= n) break;
        uint8_t m = b[pos++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // markers without a segment
        if (m == 0xD9 || m == 0xDA) return SAMPLE_BAD_HEADER; // end / scan before a frame
        if (pos + 2 > n) break;
        size_t len = ((size_t)b[pos] << 8) | b[pos + 1];
        if (len < 2) return SAMPLE_BAD_HEADER;
        int is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (is_sof) {
            if (len < 7 || pos + 7 > n) break;
            int h = (b[pos + 3] << 8) | b[pos + 4];
            int w = (b[pos + 5] << 8) | b[pos + 6];
            if (w == 0 || h == 0) return SAMPLE_BAD_HEADER;
            *width = w;
            *height = h;
            return SAMPLE_OK;
        }
        pos += len;
    }
    return SAMPLE_BAD_HEADER;
}

SampleProblem image_probe_header(const uint8_t *bytes, size_t n, int *width, int *height) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    int w = 0, h = 0;
    SampleProblem p;
    if (n >= 8 && !memcmp(bytes, png_sig, 8))
        p = probe_png(bytes, n, &w, &h);
    else if (n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        p = probe_jpeg(bytes, n, &w, &h);
    else
        p = SAMPLE_NOT_IMAGE;
    if (width) *width = w;
    if (height) *height = h;
    return p;
}

int utf8_valid(const char *text, size_t n) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        int extra;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            extra = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (i + (size_t)extra >= n) return 0; // sequence cut short
        for (int k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += (size_t)extra + 1;
    }
    return 1;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int label_parse(const char *s, size_t n, int *out) {
    size_t i = 0;
    while (i < n && is_space(s[i]))
        i++;
    if (i < n && s[i] == '+') i++;
    size_t start = i;
    long long v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (s[i] - '0');
        if (v > 0x7fffffffLL) return 0;
        i++;
    }
    if (i == start) return 0;
    while (i < n && is_space(s[i]))
        i++;
    if (i != n) return 0;
    *out = (int)v;
    return 1;
}

SampleProblem sample_check(const TarSample *s, size_t max_pixels, int *label, int *width,
                           int *height, char *why, size_t whylen) {
    int w = 0, h = 0, lab = -1;
    SampleProblem p = SAMPLE_OK;
    if (why && whylen) why[0] = 0;
    if (!s->image_ext) {
        p = SAMPLE_NO_IMAGE;
        if (why) snprintf(why, whylen, "no .png/.jpg/.jpeg member");
    } else if (!s->image) {
        p = SAMPLE_TOO_LARGE;
        if (why) snprintf(why, whylen, ".%s member of %zu bytes", s->image_ext, s->image_len);
    } else {
        p = image_probe_header(s->image, s->image_len, &w, &h);
        if (p == SAMPLE_NOT_IMAGE) {
            if (why) snprintf(why, whylen, ".%s member is neither PNG nor JPEG", s->image_ext);
        } else if (p == SAMPLE_BAD_HEADER) {
            if (why) snprintf(why, whylen, ".%s header unreadable", s->image_ext);
        } else if ((double)w * (double)h > (double)max_pixels) {
            p = SAMPLE_TOO_LARGE;
            if (why)
                snprintf(why, whylen, "%dx%d image above the limit of %zu pixels", w, h,
                         max_pixels);
        }
    }
    if (p == SAMPLE_OK) {
        if (!s->caption) {
            p = SAMPLE_NO_CAPTION;
            if (why) snprintf(why, whylen, "no .txt caption");
        } else if (!utf8_valid(s->caption, s->caption_len)) {
            p = SAMPLE_BAD_UTF8;
            if (why) snprintf(why, whylen, "caption is not valid UTF-8");
        } else {
            size_t k = 0;
            while (k < s->caption_len && is_space(s->caption[k]))
                k++;
            if (k == s->caption_len) {
                p = SAMPLE_EMPTY_CAPTION;
                if (why) snprintf(why, whylen, "caption is empty");
            }
        }
    }
    if (p == SAMPLE_OK && s->cls && !label_parse(s->cls, s->cls_len, &lab)) {
        p = SAMPLE_BAD_LABEL;
        if (why) snprintf(why, whylen, ".cls is not an integer label in [0, 2^31)");
    }
    if (label) *label = p == SAMPLE_OK ? lab : -1;
    if (width) *width = w;
    if (height) *height = h;
    return p;
}
