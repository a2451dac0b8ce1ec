// Fixtures for the shard tests: temporary folders, files, PNG/JPEG bytes, hand-made tar shards.
#ifndef TIJEPA_SHARDS_FIXTURES_H
#define TIJEPA_SHARDS_FIXTURES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jpeglib.h>

#include "io.h"

// A fresh folder under /tmp (removed by fx_rmtree).
static inline char *fx_tmpdir(const char *tag) {
    char *path = malloc(256);
    snprintf(path, 256, "/tmp/tijepa-%s-XXXXXX", tag);
    assert_non_null(mkdtemp(path));
    return path;
}

static inline void fx_rmtree(const char *path) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

// printf-style path into a static rotating buffer (8 slots).
static inline const char *fx_path(const char *fmt, ...) {
    static char bufs[8][1024];
    static int next = 0;
    char *b = bufs[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return b;
}

static inline void fx_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static inline uint8_t *fx_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)len + 1);
    assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return data;
}

// Deterministic RGB pixels [h, w, 3] from a seed.
static inline uint8_t *fx_pixels(int w, int h, uint32_t seed) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        rgb[i] = (uint8_t)(x >> 7);
    }
    return rgb;
}

static inline uint8_t *fx_png(int w, int h, uint32_t seed, size_t *n) {
    uint8_t *rgb = fx_pixels(w, h, seed), *png = NULL;
    char err[256];
    assert_int_equal(png_encode(&png, n, rgb, w, h, err, sizeof(err)), 0);
    free(rgb);
    return png;
}

static inline uint8_t *fx_jpeg(int w, int h, uint32_t seed, size_t *n) {
    uint8_t *rgb = fx_pixels(w, h, seed);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &out, &len);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
    c.input_components = 3, c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = rgb + (size_t)c.next_scanline * w * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(rgb);
    uint8_t *copy = malloc(len);
    memcpy(copy, out, len);
    free(out);
    *n = len;
    return copy;
}

// A shard from (name, bytes) members; data NULL = the name's text itself is the content.
typedef struct {
    const char *name;
    const void *data;
    size_t len; // 0 with data = strlen(data)
} FxMember;

static inline void fx_tar(const char *path, const FxMember *m, int n) {
    char err[512];
    TarWriter *w = tar_writer_open(path, err, sizeof(err));
    if (!w) fail_msg("%s", err);
    for (int i = 0; i < n; i++) {
        size_t len = m[i].len ? m[i].len : (m[i].data ? strlen(m[i].data) : 0);
        if (tar_writer_add(w, m[i].name, m[i].data ? m[i].data : "", len, err, sizeof(err)))
            fail_msg("%s", err);
    }
    if (tar_writer_close(w, err, sizeof(err))) fail_msg("%s", err);
}

static inline void fx_truncate(const char *path, double keep_fraction) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, (off_t)(st.st_size * keep_fraction)), 0);
}

// Writes a vocabulary built from the given captions.
static inline void fx_vocab(const char *path, const char *const *captions, int n) {
    char err[256];
    VocabBuilder *vb = vocab_builder_new();
    for (int i = 0; i < n; i++)
        vocab_builder_add(vb, captions[i]);
    if (vocab_builder_write(vb, path, 1000, err, sizeof(err))) fail_msg("%s", err);
    vocab_builder_free(vb);
}

// Reads a whole file into a NUL-terminated string.
static inline char *fx_slurp(const char *path) {
    size_t n;
    uint8_t *d = fx_read_file(path, &n);
    d[n] = 0;
    return (char *)d;
}

#endif // TIJEPA_SHARDS_FIXTURES_H
