// Image decoding (PNG in every colour type and depth, JPEG), bad input (truncated, corrupt,
// garbage, empty, over the pixel limit), the PNG encoder round trip, and the bilinear resize +
// normalisation against a naive double-precision reference.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "io.h"

static uint32_t rng_state = 12345;
static uint32_t rnd(void) { // xorshift32: deterministic test data
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

// ---------------------------------------------------------------------------------------------
// Test encoders (libpng / libjpeg directly, independent of the code under test)
// ---------------------------------------------------------------------------------------------

typedef struct {
    uint8_t *data;
    size_t len, cap;
} Buf;

static void buf_write(png_structp png, png_bytep src, png_size_t n) {
    Buf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        b->cap = 2 * (b->len + n);
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void buf_flush(png_structp png) {
    (void)png;
}

// Writes a PNG of the given type from packed rows (row_bytes each, as libpng expects them:
// 16-bit samples big-endian, sub-byte samples packed MSB first).
static Buf make_png(int width, int height, int colour_type, int bit_depth, int interlace,
                    const uint8_t *rows, size_t row_bytes, const png_color *palette, int n_palette,
                    const uint8_t *trns, int n_trns) {
    Buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing the test image");
    png_set_write_fn(png, &b, buf_write, buf_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, colour_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_palette);
    if (trns) png_set_tRNS(png, info, trns, n_trns, NULL);
    png_write_info(png, info);
    png_bytep *row_ptrs = malloc((size_t)height * sizeof(png_bytep));
    for (int y = 0; y < height; y++)
        row_ptrs[y] = (png_bytep)rows + (size_t)y * row_bytes;
    png_write_image(png, row_ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row_ptrs);
    return b;
}

static Buf make_jpeg(int width, int height, int components, J_COLOR_SPACE space,
                     const uint8_t *pixels, int quality) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    jpeg_mem_dest(&c, &out, &out_len);
    c.image_width = (JDIMENSION)width;
    c.image_height = (JDIMENSION)height;
    c.input_components = components;
    c.in_color_space = space;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)pixels + (size_t)c.next_scanline * width * components;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    Buf b = {.data = out, .len = out_len, .cap = out_len};
    return b;
}

static void decode_ok(ImageU8 *img, const Buf *b, const char *what) {
    char err[512];
    if (image_decode(img, b->data, b->len, 1 << 24, what, err, sizeof(err)))
        fail_msg("%s: %s", what, err);
}

// Decoding must fail with a message naming `what` and containing `cause` (if not NULL).
static void decode_fails(const uint8_t *data, size_t n, size_t max_pixels, const char *cause) {
    ImageU8 img = {.width = 7, .height = 7, .rgb = (uint8_t *)1};
    char err[512] = "";
    int rc = image_decode(&img, data, n, max_pixels, "sample-key.png", err, sizeof(err));
    if (rc == 0)
        fail_msg("decoding %zu bytes succeeded (expected: %s)", n, cause ? cause : "error");
    assert_null(img.rgb);
    assert_int_equal(img.width, 0);
    if (!strstr(err, "sample-key.png")) fail_msg("message does not name the input: %s", err);
    if (cause && !strstr(err, cause)) fail_msg("message '%s' lacks '%s'", err, cause);
}

// ---------------------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------------------

static void test_png_round_trip(void **state) {
    (void)state;
    const int sizes[][2] = {{1, 1},   {3, 2},   {2, 3},   {17, 5},
                            {32, 32}, {64, 48}, {255, 3}, {1, 300}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *rgb = malloc((size_t)w * h * 3);
        for (int i = 0; i < w * h * 3; i++)
            rgb[i] = (uint8_t)(s & 1 ? rnd() : (uint32_t)(i / 7) * 13);
        uint8_t *png;
        size_t len;
        char err[256];
        if (png_encode(&png, &len, rgb, w, h, err, sizeof(err))) fail_msg("%s", err);
        Buf b = {.data = png, .len = len};
        ImageU8 img;
        decode_ok(&img, &b, "round-trip");
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        assert_memory_equal(img.rgb, rgb, (size_t)w * h * 3);
        image_free(&img);
        assert_null(img.rgb);
        free(png);
        free(rgb);
    }
    uint8_t *png = (uint8_t *)1;
    size_t len = 1;
    char err[256];
    uint8_t px[3] = {0};
    assert_int_not_equal(png_encode(&png, &len, px, 0, 1, err, sizeof(err)), 0);
    assert_null(png);
    assert_non_null(strstr(err, "size"));
}

// Grey at 1, 2, 4, 8, 16 bits: samples scaled to 8 bits (16 bits: the high byte).
static void test_png_grey_depths(void **state) {
    (void)state;
    const int w = 13, h = 7;
    const int depths[] = {1, 2, 4, 8, 16};
    for (int d = 0; d < 5; d++) {
        int bits = depths[d];
        size_t row_bytes = ((size_t)w * bits + 7) / 8;
        uint8_t *rows = calloc(row_bytes * h, 1);
        int *value = malloc(sizeof(int) * w * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int v = (int)(rnd() % (1u << bits));
                value[y * w + x] = v;
                uint8_t *row = rows + y * row_bytes;
                if (bits == 16) {
                    row[2 * x] = (uint8_t)(v >> 8), row[2 * x + 1] = (uint8_t)v;
                } else if (bits == 8) {
                    row[x] = (uint8_t)v;
                } else {
                    int bitpos = x * bits;
                    row[bitpos / 8] |= (uint8_t)(v << (8 - bits - bitpos % 8));
                }
            }
        Buf b = make_png(w, h, PNG_COLOR_TYPE_GRAY, bits, 0, rows, row_bytes, NULL, 0, NULL, 0);
        ImageU8 img;
        decode_ok(&img, &b, "grey");
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        for (int i = 0; i < w * h; i++) {
            int v = value[i];
            int want = bits == 16 ? v >> 8 : v * 255 / ((1 << bits) - 1);
            for (int c = 0; c < 3; c++)
                if (img.rgb[3 * i + c] != want)
                    fail_msg("%d-bit grey pixel %d: %d, want %d", bits, i, img.rgb[3 * i + c],
                             want);
        }
        image_free(&img);
        free(b.data);
        free(rows);
        free(value);
    }
}

// Grey+alpha, RGBA, RGB-16 and grey+alpha-16: alpha is dropped, not composited.
static void test_png_alpha_and_16bit(void **state) {
    (void)state;
    const int w = 9, h = 6;
    struct {
        int type, bits, channels;
    } cases[] = {{PNG_COLOR_TYPE_GRAY_ALPHA, 8, 2},
                 {PNG_COLOR_TYPE_RGB_ALPHA, 8, 4},
                 {PNG_COLOR_TYPE_RGB, 16, 3},
                 {PNG_COLOR_TYPE_RGB_ALPHA, 16, 4},
                 {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 2}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int ch = cases[k].channels, bytes = cases[k].bits / 8;
        size_t row_bytes = (size_t)w * ch * bytes;
        uint8_t *rows = malloc(row_bytes * h);
        for (size_t i = 0; i < row_bytes * h; i++)
            rows[i] = (uint8_t)rnd();
        Buf b = make_png(w, h, cases[k].type, cases[k].bits, 0, rows, row_bytes, NULL, 0, NULL, 0);
        ImageU8 img;
        decode_ok(&img, &b, "alpha");
        for (int i = 0; i < w * h; i++) {
            const uint8_t *px = rows + (size_t)i * ch * bytes; // first byte = high byte
            for (int c = 0; c < 3; c++) {
                int src_channel = ch <= 2 ? 0 : c;
                int want = px[src_channel * bytes];
                if (img.rgb[3 * i + c] != want)
                    fail_msg("case %zu pixel %d channel %d: %d, want %d", k, i, c,
                             img.rgb[3 * i + c], want);
            }
        }
        image_free(&img);
        free(b.data);
        free(rows);
    }
}

// Palette at 8 and 4 bits with a tRNS chunk (ignored), and Adam7-interlaced RGB.
static void test_png_palette_and_interlaced(void **state) {
    (void)state;
    png_color palette[16];
    uint8_t trns[16];
    for (int i = 0; i < 16; i++) {
        palette[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 7), (png_byte)(i * i)};
        trns[i] = (uint8_t)(i * 17);
    }
    const int w = 11, h = 5;
    for (int bits = 4; bits <= 8; bits += 4) {
        size_t row_bytes = ((size_t)w * bits + 7) / 8;
        uint8_t *rows = calloc(row_bytes * h, 1);
        int idx[11 * 5];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int v = (int)(rnd() % 16);
                idx[y * w + x] = v;
                if (bits == 8)
                    rows[y * row_bytes + x] = (uint8_t)v;
                else
                    rows[y * row_bytes + x / 2] |= (uint8_t)(x % 2 ? v : v << 4);
            }
        Buf b =
            make_png(w, h, PNG_COLOR_TYPE_PALETTE, bits, 0, rows, row_bytes, palette, 16, trns, 16);
        ImageU8 img;
        decode_ok(&img, &b, "palette");
        for (int i = 0; i < w * h; i++) {
            assert_int_equal(img.rgb[3 * i + 0], palette[idx[i]].red);
            assert_int_equal(img.rgb[3 * i + 1], palette[idx[i]].green);
            assert_int_equal(img.rgb[3 * i + 2], palette[idx[i]].blue);
        }
        image_free(&img);
        free(b.data);
        free(rows);
    }
    const int iw = 29, ih = 19;
    uint8_t *rgb = malloc((size_t)iw * ih * 3);
    for (int i = 0; i < iw * ih * 3; i++)
        rgb[i] = (uint8_t)rnd();
    Buf b = make_png(iw, ih, PNG_COLOR_TYPE_RGB, 8, 1, rgb, (size_t)iw * 3, NULL, 0, NULL, 0);
    ImageU8 img;
    decode_ok(&img, &b, "interlaced");
    assert_int_equal(img.width, iw);
    assert_memory_equal(img.rgb, rgb, (size_t)iw * ih * 3);
    image_free(&img);
    free(b.data);
    free(rgb);
}

// ---------------------------------------------------------------------------------------------
// JPEG
// ---------------------------------------------------------------------------------------------

static uint8_t *smooth_image(int w, int h, int channels) {
    uint8_t *p = malloc((size_t)w * h * channels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                p[((size_t)y * w + x) * channels + c] =
                    (uint8_t)(40 + (x * 150) / w + (y * 50) / h + c * 10);
    return p;
}

static void test_jpeg_decode(void **state) {
    (void)state;
    const int w = 48, h = 40;
    uint8_t *rgb = smooth_image(w, h, 3);
    Buf b = make_jpeg(w, h, 3, JCS_RGB, rgb, 95);
    ImageU8 img;
    decode_ok(&img, &b, "rgb.jpg");
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    double sum = 0;
    int worst = 0;
    for (int i = 0; i < w * h * 3; i++) {
        int d = abs((int)img.rgb[i] - (int)rgb[i]);
        sum += d;
        if (d > worst) worst = d;
    }
    if (sum / (w * h * 3) > 2.0 || worst > 16)
        fail_msg("JPEG error too large: mean %.2f, max %d", sum / (w * h * 3), worst);
    image_free(&img);
    free(b.data);
    free(rgb);

    uint8_t *grey = smooth_image(w, h, 1);
    b = make_jpeg(w, h, 1, JCS_GRAYSCALE, grey, 95);
    decode_ok(&img, &b, "grey.jpg");
    for (int i = 0; i < w * h; i++) {
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 1]);
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 2]);
        assert_true(abs((int)img.rgb[3 * i] - (int)grey[i]) <= 8);
    }
    image_free(&img);
    free(b.data);
    free(grey);

    uint8_t *cmyk = smooth_image(16, 16, 4);
    b = make_jpeg(16, 16, 4, JCS_CMYK, cmyk, 90);
    decode_fails(b.data, b.len, 1 << 20, "CMYK");
    free(b.data);
    free(cmyk);
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

static void test_truncated_and_corrupt_png(void **state) {
    (void)state;
    const int w = 40, h = 30;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = (uint8_t)rnd();
    Buf b = make_png(w, h, PNG_COLOR_TYPE_RGB, 8, 0, rgb, (size_t)w * 3, NULL, 0, NULL, 0);
    // Every cut before the image data is complete fails cleanly (IEND is the last 12 bytes;
    // losing only IEND still leaves all pixels, which is accepted).
    for (size_t cut = 1; cut < b.len - 12; cut += (cut < 64 ? 1 : 37))
        decode_fails(b.data, cut, 1 << 20, NULL);
    decode_fails(b.data, b.len / 2, 1 << 20, "PNG");
    // A flipped byte in IHDR or in the image data: CRC error.
    for (size_t pos = 16; pos < b.len - 12; pos += 97) {
        uint8_t *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        copy[pos] ^= 0x5A;
        decode_fails(copy, b.len, 1 << 20, NULL);
        free(copy);
    }
    uint8_t *copy = malloc(b.len);
    memcpy(copy, b.data, b.len);
    copy[28] ^= 1; // IHDR interlace byte: only the CRC notices
    decode_fails(copy, b.len, 1 << 20, "CRC");
    free(copy);
    free(b.data);
    free(rgb);
}

static void test_truncated_and_corrupt_jpeg(void **state) {
    (void)state;
    const int w = 64, h = 48;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = (uint8_t)rnd();
    Buf b = make_jpeg(w, h, 3, JCS_RGB, rgb, 90);
    for (size_t cut = 3; cut < b.len - 2; cut += (cut < 700 ? 13 : 211))
        decode_fails(b.data, cut, 1 << 20, NULL);
    decode_fails(b.data, b.len * 3 / 4, 1 << 20, "Premature end");
    // Garbage in the entropy-coded data: an error or a decoded image, never a crash.
    for (size_t pos = b.len / 2; pos < b.len - 2; pos += 53) {
        uint8_t *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        copy[pos] = 0xFF, copy[pos + 1] = 0xD0 + (pos % 8); // stray restart marker
        ImageU8 img;
        char err[256];
        if (image_decode(&img, copy, b.len, 1 << 20, "x.jpg", err, sizeof(err)) == 0)
            image_free(&img);
        else
            assert_non_null(strstr(err, "x.jpg"));
        free(copy);
    }
    free(b.data);
    free(rgb);
}

static void test_garbage_and_empty(void **state) {
    (void)state;
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)rnd();
    junk[0] = 'G';
    decode_fails(junk, sizeof(junk), 1 << 20, "not a PNG or JPEG");
    decode_fails(junk, 0, 1 << 20, "empty");
    decode_fails(NULL, 0, 1 << 20, "empty");
    const char *html = "<html><body>404</body></html>";
    decode_fails((const uint8_t *)html, strlen(html), 1 << 20, "not a PNG or JPEG");
    // A valid signature followed by garbage.
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memcpy(junk, png_sig, 8);
    decode_fails(junk, sizeof(junk), 1 << 20, "PNG");
    decode_fails(junk, 8, 1 << 20, "PNG");
    junk[0] = 0xFF, junk[1] = 0xD8, junk[2] = 0xFF;
    decode_fails(junk, sizeof(junk), 1 << 20, "JPEG");
    decode_fails(junk, 3, 1 << 20, "JPEG");
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static void test_pixel_limit(void **state) {
    (void)state;
    const int w = 100, h = 100;
    uint8_t *rgb = calloc((size_t)w * h * 3, 1);
    uint8_t *png;
    size_t len;
    char err[256];
    assert_int_equal(png_encode(&png, &len, rgb, w, h, err, sizeof(err)), 0);
    decode_fails(png, len, 9999, "limit");
    ImageU8 img;
    assert_int_equal(image_decode(&img, png, len, 10000, "ok", err, sizeof(err)), 0);
    image_free(&img);
    assert_int_equal(image_decode(&img, png, len, 0, "no limit", err, sizeof(err)), 0);
    image_free(&img);
    // A header claiming 60000x60000 (a decompression bomb): refused from the header, so the
    // message is about the limit, not about the (missing) pixel data.
    uint8_t bomb[64];
    memcpy(bomb, png, 33); // signature + IHDR
    put_be32(bomb + 16, 60000);
    put_be32(bomb + 20, 60000);
    put_be32(bomb + 29, (uint32_t)crc32(crc32(0, NULL, 0), bomb + 12, 17));
    decode_fails(bomb, 33, (size_t)1 << 26, "60000x60000");
    decode_fails(bomb, 33, (size_t)1 << 26, "limit");
    free(png);

    Buf j = make_jpeg(w, h, 3, JCS_RGB, rgb, 80);
    decode_fails(j.data, j.len, 9999, "limit");
    // Patch the SOF0 frame size to 60000x60000.
    size_t sof = 2;
    while (sof + 9 < j.len && !(j.data[sof] == 0xFF && j.data[sof + 1] == 0xC0))
        sof++;
    assert_true(sof + 9 < j.len);
    j.data[sof + 5] = 60000 >> 8, j.data[sof + 6] = 60000 & 255;
    j.data[sof + 7] = 60000 >> 8, j.data[sof + 8] = 60000 & 255;
    decode_fails(j.data, j.len, (size_t)1 << 26, "60000x60000");
    free(j.data);
    free(rgb);
}

// ---------------------------------------------------------------------------------------------
// Resize + normalise
// ---------------------------------------------------------------------------------------------

// PyTorch's bilinear, align_corners=False, written naively in double precision.
static double ref_sample(const ImageU8 *img, int c, int oy, int ox, int size) {
    double sy = ((double)oy + 0.5) * img->height / size - 0.5;
    double sx = ((double)ox + 0.5) * img->width / size - 0.5;
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    int y0 = (int)sy, x0 = (int)sx;
    if (y0 > img->height - 1) y0 = img->height - 1;
    if (x0 > img->width - 1) x0 = img->width - 1;
    int y1 = y0 + 1 < img->height ? y0 + 1 : y0;
    int x1 = x0 + 1 < img->width ? x0 + 1 : x0;
    double ly = sy - y0, lx = sx - x0;
#define PX(y, x) ((double)img->rgb[((size_t)(y)*img->width + (x)) * 3 + c])
    return (1 - ly) * ((1 - lx) * PX(y0, x0) + lx * PX(y0, x1)) +
           ly * ((1 - lx) * PX(y1, x0) + lx * PX(y1, x1));
#undef PX
}

static void test_resize_against_reference(void **state) {
    (void)state;
    const int shapes[][3] = {
        // width, height, output size
        {1, 7, 5}, {7, 1, 4},    {1, 1, 3},    {1, 40, 32},  {5, 5, 5},  {10, 6, 4},
        {3, 4, 9}, {33, 17, 32}, {64, 64, 32}, {31, 97, 64}, {2, 2, 64}, {640, 480, 32},
    };
    const float mean[3] = {0.1f, 0.5f, 0.9f}, std[3] = {0.2f, 0.25f, 1.5f};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        ImageU8 img = {.width = shapes[s][0], .height = shapes[s][1]};
        int size = shapes[s][2];
        img.rgb = malloc((size_t)img.width * img.height * 3);
        for (int i = 0; i < img.width * img.height * 3; i++)
            img.rgb[i] = (uint8_t)rnd();
        float *out = malloc(sizeof(float) * 3 * size * size);
        image_to_tensor(out, &img, size, mean, std);
        double worst = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    double want = (ref_sample(&img, c, y, x, size) / 255.0 - mean[c]) / std[c];
                    double got = out[((size_t)c * size + y) * size + x];
                    double e = got > want ? got - want : want - got;
                    if (e > worst) worst = e;
                }
        if (worst > 2e-5)
            fail_msg("%dx%d -> %d: max abs error %g", img.width, img.height, size, worst);
        free(out);
        free(img.rgb);
    }
}

// Hand-computed values: a 2x1 image [0, 255] (all channels) widened to 4 and a 4x4 image halved.
static void test_resize_hand_checked(void **state) {
    (void)state;
    const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    uint8_t px[6] = {0, 0, 0, 255, 255, 255};
    ImageU8 img = {.width = 2, .height = 1, .rgb = px};
    float out[3 * 4 * 4];
    image_to_tensor(out, &img, 4, zero, one);
    // Columns sample x = max(0, -0.25) = 0, 0.25, 0.75, 1.25 → clamped to the last pixel.
    const float want[4] = {0.0f, 0.25f, 0.75f, 1.0f};
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                assert_float_equal(out[(c * 4 + y) * 4 + x], want[x], 1e-6);
    // Halving samples exactly between pixels: each output is the mean of a 2x2 block.
    uint8_t grid[4 * 4 * 3];
    for (int i = 0; i < 16; i++)
        grid[3 * i] = grid[3 * i + 1] = grid[3 * i + 2] = (uint8_t)(i * 16);
    ImageU8 g = {.width = 4, .height = 4, .rgb = grid};
    float half[3 * 2 * 2];
    image_to_tensor(half, &g, 2, zero, one);
    const float block[4] = {(0 + 16 + 64 + 80) / 4.0f, (32 + 48 + 96 + 112) / 4.0f,
                            (128 + 144 + 192 + 208) / 4.0f, (160 + 176 + 224 + 240) / 4.0f};
    for (int i = 0; i < 4; i++)
        assert_float_equal(half[i], block[i] / 255.0f, 1e-6);
    // Same size: normalisation only, with the ImageNet statistics.
    image_to_tensor(out, &img, 2, IMAGE_MEAN_IMAGENET, IMAGE_STD_IMAGENET);
    (void)out;
    ImageU8 sq = {.width = 2, .height = 2, .rgb = grid};
    float n[12];
    image_to_tensor(n, &sq, 2, IMAGE_MEAN_IMAGENET, IMAGE_STD_IMAGENET);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++)
            assert_float_equal(
                n[c * 4 + i],
                (grid[3 * i + c] / 255.0f - IMAGE_MEAN_IMAGENET[c]) / IMAGE_STD_IMAGENET[c], 1e-5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_round_trip),
        cmocka_unit_test(test_png_grey_depths),
        cmocka_unit_test(test_png_alpha_and_16bit),
        cmocka_unit_test(test_png_palette_and_interlaced),
        cmocka_unit_test(test_jpeg_decode),
        cmocka_unit_test(test_truncated_and_corrupt_png),
        cmocka_unit_test(test_truncated_and_corrupt_jpeg),
        cmocka_unit_test(test_garbage_and_empty),
        cmocka_unit_test(test_pixel_limit),
        cmocka_unit_test(test_resize_against_reference),
        cmocka_unit_test(test_resize_hand_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
