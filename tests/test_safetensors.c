// checkpoints/safetensors.c: F32 round trip, F16/BF16 decoding against hand-computed values (and
// an independent formula over all 65536 codes), and every malformed-file case as a clear error.
#define _GNU_SOURCE
#include <math.h>
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

#include "tmpdir_fixture.h"

#include "checkpoint.h"

TMPDIR_FIXTURE("st")

// Writes a safetensors file by hand: length (or declared_len when >= 0), header, data.
static void write_raw(const char *path, const char *header, int64_t declared_len, const void *data,
                      size_t data_len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t n = declared_len >= 0 ? (uint64_t)declared_len : strlen(header);
    uint8_t len_bytes[8];
    for (int i = 0; i < 8; i++)
        len_bytes[i] = (uint8_t)(n >> (8 * i));
    assert_int_equal(fwrite(len_bytes, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, strlen(header), f), strlen(header));
    if (data_len) assert_int_equal(fwrite(data, 1, data_len, f), data_len);
    assert_int_equal(fclose(f), 0);
}

static void expect_open_error(const char *name, const char *header, int64_t declared_len,
                              size_t data_len, const char *must_contain) {
    char path[128], err[CKPT_ERR_LEN] = "";
    path_of(path, sizeof(path), name);
    uint8_t zeros[256] = {0};
    assert_true(data_len <= sizeof(zeros));
    write_raw(path, header, declared_len, zeros, data_len);
    StFile f;
    int rc = st_open(&f, path, err, sizeof(err));
    if (rc == 0) {
        st_close(&f);
        fail_msg("%s: st_open succeeded, expected '%s'", name, must_contain);
    }
    if (!strstr(err, path) || !strstr(err, must_contain))
        fail_msg("%s: expected '%s' and the path in: %s", name, must_contain, err);
}

static void test_round_trip(void **state) {
    (void)state;
    float scalar = 3.5f, vec[3] = {1.0f, -2.0f, 0.25f}, mat[6], five[4], empty[1] = {0};
    for (int i = 0; i < 6; i++)
        mat[i] = (float)i / 7.0f;
    uint32_t specials[4] = {0x7fc01234u, 0xff800000u, 0x80000000u, 0x00000003u};
    memcpy(five, specials, sizeof(five));
    StTensorF32 tensors[] = {
        {"scalar", 0, {0}, &scalar}, {"blocks.0.attn.q.weight", 2, {2, 3}, mat},
        {"vec", 1, {3}, vec},        {"five.d", 5, {1, 2, 1, 2, 1}, five},
        {"empty", 2, {0, 4}, empty},
    };
    const char *meta[] = {"format", "pt", "note", "caf\xc3\xa9 \"quoted\"\n"};
    char path[128], err[CKPT_ERR_LEN];
    path_of(path, sizeof(path), "rt.safetensors");
    if (st_write_f32(path, tensors, 5, meta, 2, err, sizeof(err)) != 0) fail_msg("%s", err);

    // Header length makes the data 8-byte aligned, padding is spaces.
    FILE *fp = fopen(path, "rb");
    uint8_t len_bytes[8];
    assert_int_equal(fread(len_bytes, 1, 8, fp), 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len_bytes[i];
    assert_int_equal(n % 8, 0);
    char *header = calloc(n + 1, 1);
    assert_int_equal(fread(header, 1, n, fp), n);
    fclose(fp);
    assert_int_equal(header[0], '{');
    assert_non_null(strstr(header, "\"dtype\":\"F32\""));
    free(header);

    StFile f;
    if (st_open(&f, path, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(f.n_entries, 5);
    assert_string_equal(f.entries[0].name, "scalar"); // header order kept
    assert_string_equal(st_get_meta(&f, "format"), "pt");
    assert_string_equal(st_get_meta(&f, "note"), "caf\xc3\xa9 \"quoted\"\n");
    assert_null(st_get_meta(&f, "missing"));
    for (int i = 0; i < 5; i++) {
        float out[8] = {0};
        if (st_read_f32(&f, tensors[i].name, tensors[i].ndim, tensors[i].shape, out, err,
                        sizeof(err)) != 0)
            fail_msg("%s", err);
        const StEntry *e = st_find(&f, tensors[i].name);
        assert_non_null(e);
        assert_string_equal(e->dtype, "F32");
        assert_memory_equal(out, tensors[i].data, e->end - e->begin);
    }
    // shape == NULL skips the check.
    float out[6];
    assert_int_equal(st_read_f32(&f, "blocks.0.attn.q.weight", 0, NULL, out, err, sizeof(err)), 0);
    assert_memory_equal(out, mat, sizeof(mat));
    st_close(&f);

    // Writing refuses duplicate names and leaves no file behind.
    StTensorF32 dup[] = {{"a", 1, {3}, vec}, {"a", 1, {3}, vec}};
    path_of(path, sizeof(path), "dup.safetensors");
    assert_int_equal(st_write_f32(path, dup, 2, NULL, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "given twice"));
    assert_int_equal(access(path, F_OK), -1);
    StTensorF32 reserved[] = {{"__metadata__", 1, {3}, vec}};
    assert_int_equal(st_write_f32(path, reserved, 1, NULL, 0, err, sizeof(err)), -1);
    // An unwritable destination.
    assert_int_equal(
        st_write_f32("/nonexistent-dir/x.safetensors", tensors, 1, NULL, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file or directory"));
}

// Independent reference: the IEEE half-precision value from its fields with ldexp.
static float f16_reference(uint16_t h) {
    int sign = h >> 15, exponent = (h >> 10) & 31, mantissa = h & 1023;
    double v;
    if (exponent == 31)
        v = mantissa ? NAN : INFINITY;
    else if (exponent == 0)
        v = ldexp(mantissa, -24);
    else
        v = ldexp(1024 + mantissa, exponent - 25);
    return (float)(sign ? -v : v);
}

static void test_f16_bf16(void **state) {
    (void)state;
    // Values worked out by hand from the bit fields.
    const struct {
        uint16_t bits;
        float value;
    } f16[] = {
        {0x3c00, 1.0f},
        {0xc000, -2.0f},
        {0x3555, 0.333251953125f},         // (1 + 341/1024) * 2^-2
        {0x7bff, 65504.0f},                // largest finite
        {0x0400, 6.103515625e-05f},        // smallest normal 2^-14
        {0x0001, 5.9604644775390625e-08f}, // smallest subnormal 2^-24
        {0x03ff, 6.097555160522461e-05f},  // largest subnormal 1023 * 2^-24
        {0x8001, -5.9604644775390625e-08f},
        {0x0000, 0.0f},
        {0x7c00, INFINITY},
        {0xfc00, -INFINITY},
        {0x4248, 3.140625f},
    };
    for (size_t i = 0; i < sizeof(f16) / sizeof(f16[0]); i++)
        assert_true(st_f16_to_f32(f16[i].bits) == f16[i].value);
    assert_true(signbit(st_f16_to_f32(0x8000)) && st_f16_to_f32(0x8000) == 0.0f);
    assert_true(isnan(st_f16_to_f32(0x7e00)) && isnan(st_f16_to_f32(0xfc01)));
    for (uint32_t h = 0; h < 65536; h++) {
        float got = st_f16_to_f32((uint16_t)h), want = f16_reference((uint16_t)h);
        if (isnan(want)) {
            assert_true(isnan(got));
        } else if (got != want || signbit(got) != signbit(want)) {
            fail_msg("f16 0x%04x: got %a want %a", h, got, want);
        }
    }
    const struct {
        uint16_t bits;
        float value;
    } bf16[] = {
        {0x3f80, 1.0f},
        {0xc000, -2.0f},
        {0x4049, 3.140625f},
        {0x7f7f, 3.3895313892515355e38f},
        {0x0001, 9.183549615799121e-41f}, // subnormal 2^-133
        {0x7f80, INFINITY},
        {0xff80, -INFINITY},
        {0x3e80, 0.25f},
    };
    for (size_t i = 0; i < sizeof(bf16) / sizeof(bf16[0]); i++)
        assert_true(st_bf16_to_f32(bf16[i].bits) == bf16[i].value);
    assert_true(isnan(st_bf16_to_f32(0x7fc0)));
    assert_true(signbit(st_bf16_to_f32(0x8000)));

    // The same codes through a file, as F16 and BF16 tensors next to an F32 one.
    uint8_t data[2 * 12 + 2 * 8 + 4];
    for (int i = 0; i < 12; i++) {
        data[2 * i] = (uint8_t)(f16[i].bits & 0xff);
        data[2 * i + 1] = (uint8_t)(f16[i].bits >> 8);
    }
    for (int i = 0; i < 8; i++) {
        data[24 + 2 * i] = (uint8_t)(bf16[i].bits & 0xff);
        data[24 + 2 * i + 1] = (uint8_t)(bf16[i].bits >> 8);
    }
    float one = 1.5f;
    memcpy(data + 40, &one, 4);
    const char *header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[0,24]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[24,40]},"
                         "\"f\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]}}  ";
    char path[128], err[CKPT_ERR_LEN];
    path_of(path, sizeof(path), "half.safetensors");
    write_raw(path, header, -1, data, sizeof(data));
    StFile f;
    if (st_open(&f, path, err, sizeof(err)) != 0) fail_msg("%s", err);
    float out[12];
    int64_t shape_h[2] = {3, 4}, shape_b[1] = {8};
    assert_int_equal(st_read_f32(&f, "h", 2, shape_h, out, err, sizeof(err)), 0);
    for (int i = 0; i < 12; i++)
        assert_true(out[i] == f16[i].value);
    assert_int_equal(st_read_f32(&f, "b", 1, shape_b, out, err, sizeof(err)), 0);
    for (int i = 0; i < 8; i++)
        assert_true(out[i] == bf16[i].value);
    assert_int_equal(st_read_f32(&f, "f", 0, NULL, out, err, sizeof(err)), 0);
    assert_true(out[0] == 1.5f);
    st_close(&f);
}

static void test_errors(void **state) {
    (void)state;
    char path[128], err[CKPT_ERR_LEN];
    path_of(path, sizeof(path), "absent.safetensors");
    StFile f;
    assert_int_equal(st_open(&f, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));

    assert_int_equal(st_open(&f, dir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));

    // Too short for the length field.
    path_of(path, sizeof(path), "short.safetensors");
    FILE *fp = fopen(path, "wb");
    fwrite("\x10\0\0", 1, 3, fp);
    fclose(fp);
    assert_int_equal(st_open(&f, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated"));

    const char *ok_entry = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    char header[512];
    expect_open_error("len.safetensors", "{}", 4096, 0, "runs past the end");
    expect_open_error("json.safetensors", "{\"a\": {\"dtype\": ", -1, 0, "not valid JSON");
    expect_open_error("array.safetensors", "[1, 2]  ", -1, 0, "not an object");
    snprintf(header, sizeof(header), "{%s} x", ok_entry);
    expect_open_error("trail.safetensors", header, -1, 8, "unexpected bytes after");
    expect_open_error("range.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", -1,
                      16, "run past the 16-byte data section");
    snprintf(header, sizeof(header),
             "{%s,\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", ok_entry);
    expect_open_error("overlap.safetensors", header, -1, 12, "overlap");
    snprintf(header, sizeof(header),
             "{%s,\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", ok_entry);
    expect_open_error("gap.safetensors", header, -1, 20, "gap in the data section");
    snprintf(header, sizeof(header), "{%s}", ok_entry);
    expect_open_error("tail.safetensors", header, -1, 12, "cover 8 of 12 data bytes");
    expect_open_error("size.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8,
                      "spans 8 bytes but its F32 shape needs 12");
    expect_open_error("dtype.safetensors",
                      "{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                      "unknown dtype 'Q9'");
    expect_open_error("neg.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8,
                      "invalid shape");
    expect_open_error("back.safetensors",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", -1, 8,
                      "begin <= end");
    expect_open_error("fields.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", -1, 8,
                      "needs \"dtype\"");
    snprintf(header, sizeof(header), "{%s,%s}", ok_entry, ok_entry);
    expect_open_error("twice.safetensors", header, -1, 8, "appears twice");
    snprintf(header, sizeof(header), "{\"__metadata__\":{\"k\":1},%s}", ok_entry);
    expect_open_error("meta.safetensors", header, -1, 8, "is not a string");

    // Valid header; reading asks for the wrong things.
    path_of(path, sizeof(path), "read.safetensors");
    uint8_t data[32] = {0};
    write_raw(path,
              "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
              "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[24,32]}}",
              -1, data, sizeof(data));
    if (st_open(&f, path, err, sizeof(err)) != 0) fail_msg("%s", err);
    float out[8];
    int64_t wrong[2] = {3, 2}, two[1] = {2};
    assert_int_equal(st_read_f32(&f, "w", 2, wrong, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tensor 'w' has shape [2, 3] but [3, 2] is expected"));
    assert_int_equal(st_read_f32(&f, "w", 1, two, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "[2, 3] but [2]"));
    assert_int_equal(st_read_f32(&f, "zzz", 1, two, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "has no tensor 'zzz'"));
    assert_int_equal(st_read_f32(&f, "i", 1, two, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "dtype I32; only F32, F16 and BF16"));
    assert_non_null(strstr(err, path));
    st_close(&f);

    // A real file cut in half.
    float values[64];
    for (int i = 0; i < 64; i++)
        values[i] = (float)i;
    StTensorF32 t[] = {{"x", 2, {8, 8}, values}};
    path_of(path, sizeof(path), "cut.safetensors");
    if (st_write_f32(path, t, 1, NULL, 0, err, sizeof(err)) != 0) fail_msg("%s", err);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    assert_int_equal(st_open(&f, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated file?"));
    assert_int_equal(truncate(path, 20), 0);
    assert_int_equal(st_open(&f, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "runs past the end"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_f16_bf16),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
