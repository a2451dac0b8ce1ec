// io/image.c — PNG/JPEG decoding into RGB, bilinear resize + normalisation, PNG encoding.
//
// libpng and libjpeg report errors by longjmp from their error callbacks; every decoder here
// catches them with setjmp and turns them into a message, so bad input never aborts the
// process. Variables changed after setjmp and read after a longjmp are volatile.
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "io.h"

const float IMAGE_MEAN_IMAGENET[3] = {0.485f, 0.456f, 0.406f};
const float IMAGE_STD_IMAGENET[3] = {0.229f, 0.224f, 0.225f};

void image_free(ImageU8 *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

// width·height within the limit (0 = none) and small enough for a size_t buffer of RGB bytes.
static int pixels_allowed(size_t width, size_t height, size_t max_pixels) {
    if (width == 0 || height == 0) return 0;
    if (width > SIZE_MAX / 3 / height) return 0;
    return max_pixels == 0 || width * height <= max_pixels;
}

// ---------------------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------------------

typedef struct {
    jmp_buf jmp;
    char msg[200];
    const uint8_t *data; // reading: the input
    size_t len, pos;
    uint8_t *out; // writing: the growing output
    size_t out_len, out_cap;
} PngIo;

static void png_on_error(png_structp png, png_const_charp msg) {
    PngIo *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof(io->msg), "%s", msg);
    longjmp(io->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png; // ancillary problems (bad CRC in tEXt, unknown sRGB profile): not our concern
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
    PngIo *io = png_get_io_ptr(png);
    if (n > io->len - io->pos) png_error(png, "unexpected end of data (truncated PNG)");
    memcpy(dst, io->data + io->pos, n);
    io->pos += n;
}

static int png_decode(ImageU8 *out, const uint8_t *bytes, size_t n, size_t max_pixels,
                      const char *what, char *err, size_t errlen) {
    // IHDR is the first chunk: check the size before libpng reads on to the image data, so a
    // bomb is reported as such even when its data is cut short.
    if (n >= 24 && !memcmp(bytes + 12, "IHDR", 4)) {
        uint32_t w = ((uint32_t)bytes[16] << 24) | ((uint32_t)bytes[17] << 16) |
                     ((uint32_t)bytes[18] << 8) | bytes[19];
        uint32_t h = ((uint32_t)bytes[20] << 24) | ((uint32_t)bytes[21] << 16) |
                     ((uint32_t)bytes[22] << 8) | bytes[23];
        if (w > 0 && h > 0 && !pixels_allowed(w, h, max_pixels)) {
            snprintf(err, errlen, "%s: PNG of %ux%u pixels is over the limit of %zu pixels", what,
                     (unsigned)w, (unsigned)h, max_pixels);
            return -1;
        }
    }
    PngIo io = {.data = bytes, .len = n, .pos = 0};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        snprintf(err, errlen, "%s: out of memory creating the PNG decoder", what);
        return -1;
    }
    uint8_t *volatile pixels = NULL;
    if (setjmp(io.jmp)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        snprintf(err, errlen, "%s: PNG decoding failed: %s", what, io.msg);
        return -1;
    }
    png_set_read_fn(png, &io, png_read_mem);
    png_read_info(png, info);
    png_uint_32 width, height;
    int bit_depth, colour_type, interlace;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &colour_type, &interlace, NULL, NULL);
    if (!pixels_allowed(width, height, max_pixels)) {
        png_destroy_read_struct(&png, &info, NULL);
        snprintf(err, errlen, "%s: PNG of %ux%u pixels is over the limit of %zu pixels", what,
                 (unsigned)width, (unsigned)height, max_pixels);
        return -1;
    }
    // Everything to 8-bit RGB; alpha and tRNS ignored.
    if (colour_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (colour_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    // Palette expansion also turns tRNS into alpha: strip that too.
    if ((colour_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    if (colour_type == PNG_COLOR_TYPE_GRAY || colour_type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t stride = (size_t)width * 3;
    if (png_get_rowbytes(png, info) != stride)
        png_error(png, "unexpected row size after conversion to RGB");
    pixels = malloc(stride * height);
    if (!pixels) png_error(png, "out of memory for the pixels");
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < height; y++)
            png_read_row(png, pixels + y * stride, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)width;
    out->height = (int)height;
    out->rgb = pixels;
    return 0;
}

static void png_write_mem(png_structp png, png_bytep src, png_size_t n) {
    PngIo *io = png_get_io_ptr(png);
    if (n > io->out_cap - io->out_len) {
        size_t cap = io->out_cap ? io->out_cap : 4096;
        while (n > cap - io->out_len) {
            if (cap > SIZE_MAX / 2) png_error(png, "PNG output too large");
            cap *= 2;
        }
        uint8_t *grown = realloc(io->out, cap);
        if (!grown) png_error(png, "out of memory for the PNG output");
        io->out = grown;
        io->out_cap = cap;
    }
    memcpy(io->out + io->out_len, src, n);
    io->out_len += n;
}

static void png_flush_mem(png_structp png) {
    (void)png;
}

int png_encode(uint8_t **out, size_t *out_len, const uint8_t *rgb, int width, int height, char *err,
               size_t errlen) {
    *out = NULL;
    *out_len = 0;
    if (width <= 0 || height <= 0 || width > 1000000 || height > 1000000) {
        snprintf(err, errlen, "png_encode: bad image size %dx%d", width, height);
        return -1;
    }
    PngIo io = {0};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        snprintf(err, errlen, "png_encode: out of memory creating the PNG encoder");
        return -1;
    }
    if (setjmp(io.jmp)) {
        png_destroy_write_struct(&png, &info);
        free(io.out);
        snprintf(err, errlen, "png_encode: %s", io.msg);
        return -1;
    }
    // Start with room for a typical compressed size to avoid most reallocations.
    io.out_cap = (size_t)width * (size_t)height + 1024;
    io.out = malloc(io.out_cap);
    if (!io.out) png_error(png, "out of memory for the PNG output");
    png_set_write_fn(png, &io, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    // Speed over size (see io.h): filtering and big deflate state cost more than they save
    // on the small, flat images this writes (synth); unfiltered rows also decode fastest.
    png_set_compression_level(png, 2);
    png_set_compression_mem_level(png, 5);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_write_info(png, info);
    size_t stride = (size_t)width * 3;
    for (int y = 0; y < height; y++)
        png_write_row(png, rgb + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = io.out;
    *out_len = io.out_len;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// JPEG
// ---------------------------------------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr base; // first: libjpeg passes a pointer to it
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX + 64];
} JpegErr;

static void jpeg_on_error(j_common_ptr cinfo) {
    JpegErr *e = (JpegErr *)cinfo->err;
    e->base.format_message(cinfo, e->msg);
    longjmp(e->jmp, 1);
}

// Warnings that mean the pixels are wrong (truncated or corrupt entropy-coded data) are
// errors; the others (extraneous bytes between markers, unknown JFIF revision, ...) are not.
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return; // trace messages
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC ||
        code == JWRN_HUFF_BAD_CODE || code == JWRN_ARITH_BAD_CODE || code == JWRN_NOT_SEQUENTIAL ||
        code == JWRN_BOGUS_PROGRESSION)
        jpeg_on_error(cinfo);
    cinfo->err->num_warnings++;
}

static int jpeg_decode(ImageU8 *out, const uint8_t *bytes, size_t n, size_t max_pixels,
                       const char *what, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    JpegErr jerr;
    uint8_t *volatile pixels = NULL;
    cinfo.err = jpeg_std_error(&jerr.base);
    jerr.base.error_exit = jpeg_on_error;
    jerr.base.emit_message = jpeg_on_message;
    if (setjmp(jerr.jmp)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        snprintf(err, errlen, "%s: JPEG decoding failed: %s", what, jerr.msg);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    if (!pixels_allowed(cinfo.image_width, cinfo.image_height, max_pixels)) {
        snprintf(err, errlen, "%s: JPEG of %ux%u pixels is over the limit of %zu pixels", what,
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(err, errlen, "%s: CMYK JPEG is not supported (convert it to RGB)", what);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = JCS_RGB; // greyscale is expanded by libjpeg-turbo
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        snprintf(err, errlen, "%s: JPEG decoder gave %d components instead of 3", what,
                 cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    pixels = malloc(stride * cinfo.output_height);
    if (!pixels) {
        snprintf(err, errlen, "%s: out of memory for %ux%u pixels", what,
                 (unsigned)cinfo.output_width, (unsigned)cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[4];
        int k = 0;
        for (; k < 4 && cinfo.output_scanline + k < cinfo.output_height; k++)
            rows[k] = pixels + (cinfo.output_scanline + k) * stride;
        jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)k);
    }
    // Reading to EOI would only find trailing problems in data we do not use; stop here.
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    out->rgb = pixels;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

int image_decode(ImageU8 *out, const uint8_t *bytes, size_t n, size_t max_pixels, const char *what,
                 char *err, size_t errlen) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!what) what = "image";
    if (!bytes || n == 0) {
        snprintf(err, errlen, "%s: empty image (0 bytes)", what);
        return -1;
    }
    if (n >= 8 && !memcmp(bytes, png_sig, 8))
        return png_decode(out, bytes, n, max_pixels, what, err, errlen);
    if (n >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
        if (n > (size_t)(unsigned long)-1) {
            snprintf(err, errlen, "%s: JPEG too large (%zu bytes)", what, n);
            return -1;
        }
        return jpeg_decode(out, bytes, n, max_pixels, what, err, errlen);
    }
    char head[40] = "";
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(head + strlen(head), sizeof(head) - strlen(head), "%s%02x", i ? " " : "",
                 bytes[i]);
    snprintf(err, errlen, "%s: not a PNG or JPEG image (%zu bytes starting %s)", what, n, head);
    return -1;
}

// Bilinear source taps along one axis, align_corners=False (PyTorch's convention): output o
// samples src = max(0, (o + 0.5)·scale − 0.5), scale = in/out, between i0 = floor(src) and
// i1 = min(i0 + 1, in − 1) with weight w1 = src − i0 on i1.
static void bilinear_taps(int *i0, int *i1, float *w1, int in, int out) {
    float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        float src = ((float)o + 0.5f) * scale - 0.5f;
        if (src < 0) src = 0;
        int a = (int)src;
        if (a > in - 1) a = in - 1;
        i0[o] = a;
        i1[o] = a + (a < in - 1);
        w1[o] = src - (float)a;
    }
}

#define RESIZE_STACK_MAX 1024

void image_to_tensor(float *out, const ImageU8 *img, int size, const float mean[3],
                     const float std[3]) {
    const int w = img->width, h = img->height;
    const size_t plane = (size_t)size * size;
    // out = v · gain[c] + bias[c] with v in 0..255
    float gain[3], bias[3];
    for (int c = 0; c < 3; c++) {
        gain[c] = 1.0f / (255.0f * std[c]);
        bias[c] = -mean[c] / std[c];
    }
    float *o0 = out, *o1 = out + plane, *o2 = out + 2 * plane;
    if (w == size && h == size) { // no resampling: normalise only
        const uint8_t *p = img->rgb;
        for (size_t i = 0; i < plane; i++, p += 3) {
            o0[i] = p[0] * gain[0] + bias[0];
            o1[i] = p[1] * gain[1] + bias[1];
            o2[i] = p[2] * gain[2] + bias[2];
        }
        return;
    }
    int xs0_stack[RESIZE_STACK_MAX], xs1_stack[RESIZE_STACK_MAX], ys0_stack[RESIZE_STACK_MAX],
        ys1_stack[RESIZE_STACK_MAX];
    float xw_stack[RESIZE_STACK_MAX], yw_stack[RESIZE_STACK_MAX];
    int *xs0 = xs0_stack, *xs1 = xs1_stack, *ys0 = ys0_stack, *ys1 = ys1_stack;
    float *xw = xw_stack, *yw = yw_stack;
    void *heap = NULL;
    if (size > RESIZE_STACK_MAX) { // beyond any model size; one allocation for the taps
        heap = malloc((size_t)size * (4 * sizeof(int) + 2 * sizeof(float)));
        if (!heap) {
            fprintf(stderr, "%s:%d: out of memory for resize taps\n", __FILE__, __LINE__);
            abort();
        }
        xs0 = heap, xs1 = xs0 + size, ys0 = xs1 + size, ys1 = ys0 + size;
        xw = (float *)(ys1 + size), yw = xw + size;
    }
    bilinear_taps(xs0, xs1, xw, w, size);
    bilinear_taps(ys0, ys1, yw, h, size);
    for (int x = 0; x < size; x++) { // byte offsets of the taps
        xs0[x] *= 3;
        xs1[x] *= 3;
    }
    const size_t stride = (size_t)w * 3;
    for (int y = 0; y < size; y++) {
        const uint8_t *r0 = img->rgb + (size_t)ys0[y] * stride;
        const uint8_t *r1 = img->rgb + (size_t)ys1[y] * stride;
        const float b = yw[y], a = 1.0f - b;
        float *d0 = o0 + (size_t)y * size, *d1 = o1 + (size_t)y * size, *d2 = o2 + (size_t)y * size;
        for (int x = 0; x < size; x++) {
            const uint8_t *p00 = r0 + xs0[x], *p01 = r0 + xs1[x];
            const uint8_t *p10 = r1 + xs0[x], *p11 = r1 + xs1[x];
            const float q = xw[x], p = 1.0f - q;
            float v0 = a * (p * p00[0] + q * p01[0]) + b * (p * p10[0] + q * p11[0]);
            float v1 = a * (p * p00[1] + q * p01[1]) + b * (p * p10[1] + q * p11[1]);
            float v2 = a * (p * p00[2] + q * p01[2]) + b * (p * p10[2] + q * p11[2]);
            d0[x] = v0 * gain[0] + bias[0];
            d1[x] = v1 * gain[1] + bias[1];
            d2[x] = v2 * gain[2] + bias[2];
        }
    }
    free(heap);
}
