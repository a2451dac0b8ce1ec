// Feature shards (io.h "Feature shards"): the cheap checks of a feature sample, float32
// little-endian conversion, and the feature stream: the same batches as the pixel stream over the
// same samples (shuffle, epochs, both split modes, ranks), values read back exactly, bad members
// counted and skipped with a warning.
#include "shards_fixtures.h"

#include <math.h>

enum { P = 4, DE = 3, L = 5, DT = 2, SHARDS = 3, PER_SHARD = 9 };
static const FeatureShape SHAPE = {P, DE, L, DT};

// Feature values of sample number k: a function of (k, position), so a batch can be checked.
static float img_value(int k, int i) {
    return (float)k + 0.001f * (float)i;
}
static float txt_value(int k, int i) {
    return -(float)k - 0.01f * (float)i;
}
static uint8_t valid_value(int k, int l) {
    return l < 2 + k % (L - 1);
}

typedef struct {
    uint8_t img[P * DE * 4], txt[L * DT * 4], valid[L];
} FeatBytes;

static void feat_bytes(FeatBytes *f, int k) {
    float img[P * DE], txt[L * DT];
    for (int i = 0; i < P * DE; i++)
        img[i] = img_value(k, i);
    for (int i = 0; i < L * DT; i++)
        txt[i] = txt_value(k, i);
    f32_to_le(f->img, img, P * DE);
    f32_to_le(f->txt, txt, L * DT);
    for (int l = 0; l < L; l++)
        f->valid[l] = valid_value(k, l);
}

static void test_le_bytes(void **state) {
    (void)state;
    float x[3] = {1.0f, -2.5f, 0.0f}, y[3];
    uint8_t b[12];
    f32_to_le(b, x, 3);
    const uint8_t one[4] = {0x00, 0x00, 0x80, 0x3f}; // 1.0f, little-endian
    assert_memory_equal(b, one, 4);
    f32_from_le(y, b, 3);
    assert_memory_equal(x, y, sizeof(x));
}

static void test_feature_check(void **state) {
    (void)state;
    FeatBytes f;
    feat_bytes(&f, 3);
    TarSample s;
    memset(&s, 0, sizeof(s));
    s.key = "k", s.shard = "shard.tar";
    s.feat_img = f.img, s.feat_img_len = sizeof(f.img);
    s.feat_txt = f.txt, s.feat_txt_len = sizeof(f.txt);
    s.feat_valid = f.valid, s.feat_valid_len = sizeof(f.valid);
    s.cls = " 7\n", s.cls_len = 3;
    char why[512];
    int label = 0;
    assert_int_equal(feature_sample_check(&s, &SHAPE, &label, why, sizeof(why)), 0);
    assert_int_equal(label, 7);

    TarSample bad = s;
    bad.feat_txt = NULL;
    assert_int_equal(feature_sample_check(&bad, &SHAPE, &label, why, sizeof(why)), -1);
    assert_int_equal(label, -1);
    assert_non_null(strstr(why, "no .txt.f32 member"));

    bad = s;
    bad.feat_img_len -= 4;
    assert_int_equal(feature_sample_check(&bad, &SHAPE, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, ".img.f32 has 44 bytes but this model expects 48"));
    assert_non_null(strstr(why, "model.img_dim"));

    FeatureShape other = SHAPE;
    other.txt_dim = 3; // features of another model: every sample has the wrong size
    assert_int_equal(feature_sample_check(&s, &other, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, ".txt.f32 has 40 bytes but this model expects 60"));

    FeatBytes g = f;
    float nan = NAN, inf = -INFINITY;
    memcpy(g.img + 4 * 5, &nan, 4);
    bad = s;
    bad.feat_img = g.img;
    assert_int_equal(feature_sample_check(&bad, &SHAPE, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, ".img.f32 value 5 is not finite"));
    g = f;
    memcpy(g.txt + 4 * 9, &inf, 4);
    bad = s;
    bad.feat_txt = g.txt;
    assert_int_equal(feature_sample_check(&bad, &SHAPE, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, ".txt.f32 value 9 is not finite"));
    float big = 3.0e38f; // the largest exponents below infinity are fine
    g = f;
    memcpy(g.txt, &big, 4);
    bad = s;
    bad.feat_txt = g.txt;
    assert_int_equal(feature_sample_check(&bad, &SHAPE, NULL, why, sizeof(why)), 0);

    g = f;
    g.valid[2] = 2;
    bad = s;
    bad.feat_valid = g.valid;
    assert_int_equal(feature_sample_check(&bad, &SHAPE, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, ".valid.u8 byte 2 is 2"));

    bad = s;
    bad.cls = "x", bad.cls_len = 1;
    assert_int_equal(feature_sample_check(&bad, &SHAPE, NULL, why, sizeof(why)), -1);
    assert_non_null(strstr(why, ".cls"));
}

// Pixel shards px-N.tar and feature shards ft-N.tar over the same samples: sample k = shard·9 + j,
// key "s<k>", label k % 5. Pixel sample 4 has no caption: the stream skips it, and `tijepa encode`
// leaves it out of the feature shard, so both streams hold the same usable samples.
// bad_feature_key ≥ 0 gives that sample's .img.f32 a wrong size (a feature-only problem).
static void write_shards(const char *dir, int bad_feature_key) {
    size_t png_len;
    uint8_t *png = fx_png(6, 6, 1, &png_len);
    for (int sh = 0; sh < SHARDS; sh++) {
        FxMember px[PER_SHARD * 3], ft[PER_SHARD * 5];
        char names[PER_SHARD * 8][32], labels[PER_SHARD][8];
        FeatBytes fb[PER_SHARD];
        int np = 0, nf = 0, nn = 0;
        for (int j = 0; j < PER_SHARD; j++) {
            int k = sh * PER_SHARD + j;
            snprintf(labels[j], sizeof(labels[j]), "%d", k % 5);
            snprintf(names[nn], 32, "s%02d.cls", k);
            px[np++] = (FxMember){names[nn++], labels[j], 0};
            snprintf(names[nn], 32, "s%02d.png", k);
            px[np++] = (FxMember){names[nn++], png, png_len};
            if (k == 4) continue; // no caption: unusable in both
            snprintf(names[nn], 32, "s%02d.txt", k);
            px[np++] = (FxMember){names[nn++], "a red circle", 0};
            feat_bytes(&fb[j], k);
            ft[nf++] = (FxMember){names[nn - 3], labels[j], 0}; // .cls
            snprintf(names[nn], 32, "s%02d.img.f32", k);
            ft[nf++] = (FxMember){names[nn++], fb[j].img,
                                  sizeof(fb[j].img) - (k == bad_feature_key ? 4 : 0)};
            ft[nf++] = (FxMember){names[nn - 2], "a red circle", 0}; // .txt kept
            snprintf(names[nn], 32, "s%02d.txt.f32", k);
            ft[nf++] = (FxMember){names[nn++], fb[j].txt, sizeof(fb[j].txt)};
            snprintf(names[nn], 32, "s%02d.valid.u8", k);
            ft[nf++] = (FxMember){names[nn++], fb[j].valid, sizeof(fb[j].valid)};
        }
        fx_tar(fx_path("%s/px-%d.tar", dir, sh), px, np);
        fx_tar(fx_path("%s/ft-%d.tar", dir, sh), ft, nf);
    }
    free(png);
    const char *caps[] = {"a red circle"};
    fx_vocab(fx_path("%s/vocab.txt", dir), caps, 1);
}

static Stream *open_stream(const char *dir, const char *prefix, int features, SplitMode split,
                           int rank, int world, const Tokenizer *tok, FILE *log) {
    StreamOptions o;
    stream_options_default(&o);
    char spec[512];
    snprintf(spec, sizeof(spec), "%s/%s-{0..2}.tar", dir, prefix);
    o.spec = spec;
    o.seed = 11;
    o.image_size = 4;
    o.max_text_len = L;
    o.tokenizer = features ? NULL : tok; // a feature stream needs none
    o.split = split;
    o.rank = rank, o.world = world;
    o.global_batch = split == SPLIT_SAMPLE ? 4 : 2 * world;
    o.shuffle_buffer = 5;
    o.prefetch = rank % 2; // with and without the prefetch thread
    o.features = features;
    o.feature_shape = SHAPE;
    o.log = log;
    o.warn_limit = log ? 10 : 0;
    char err[1024];
    Stream *s = stream_open(&o, NULL, err, sizeof(err));
    if (!s) fail_msg("%s", err);
    return s;
}

static int key_number(const char *key) {
    return atoi(key + 1);
}

// Every feature batch equals the pixel batch of the same step (keys, labels, valid masks from
// the tokenizer for the pixel side are not compared: the features carry their own).
static void compare_streams(const char *dir, SplitMode split, int rank, int world,
                            const Tokenizer *tok) {
    Stream *px = open_stream(dir, "px", 0, split, rank, world, tok, NULL);
    Stream *ft = open_stream(dir, "ft", 1, split, rank, world, tok, NULL);
    char err[1024];
    for (int step = 0; step < 25; step++) { // several epochs (26 usable samples)
        const Batch *a, *b;
        if (stream_next(px, &a, NULL, err, sizeof(err))) fail_msg("%s", err);
        if (stream_next(ft, &b, NULL, err, sizeof(err))) fail_msg("%s", err);
        assert_int_equal(a->n, b->n);
        assert_int_equal(a->epoch, b->epoch);
        assert_null(b->images);
        assert_null(b->tokens);
        for (int j = 0; j < b->n; j++) {
            assert_string_equal(a->keys[j], b->keys[j]);
            assert_int_equal(a->labels[j], b->labels[j]);
            int k = key_number(b->keys[j]);
            for (int i = 0; i < P * DE; i++)
                assert_true(b->img_features[(size_t)j * P * DE + i] == img_value(k, i));
            for (int i = 0; i < L * DT; i++)
                assert_true(b->txt_features[(size_t)j * L * DT + i] == txt_value(k, i));
            for (int l = 0; l < L; l++)
                assert_int_equal(b->valid[j * L + l], valid_value(k, l));
        }
    }
    StreamCursor ca, cb;
    stream_cursor(px, &ca);
    stream_cursor(ft, &cb);
    assert_memory_equal(&ca, &cb, sizeof(ca));
    stream_close(px);
    stream_close(ft);
}

static void test_feature_stream_equals_pixel_stream(void **state) {
    (void)state;
    char *dir = fx_tmpdir("features");
    write_shards(dir, -1);
    char err[512];
    Tokenizer *tok = tokenizer_load(fx_path("%s/vocab.txt", dir), err, sizeof(err));
    if (!tok) fail_msg("%s", err);
    compare_streams(dir, SPLIT_SAMPLE, 0, 1, tok);
    compare_streams(dir, SPLIT_SAMPLE, 1, 2, tok);
    compare_streams(dir, SPLIT_SHARD, 0, 3, tok);
    compare_streams(dir, SPLIT_SHARD, 1, 3, tok);
    tokenizer_free(tok);
    fx_rmtree(dir);
    free(dir);
}

static void test_feature_stream_bad_member(void **state) {
    (void)state;
    char *dir = fx_tmpdir("features-bad");
    write_shards(dir, 13);
    const char *logpath = fx_path("%s/log.txt", dir);
    FILE *log = fopen(logpath, "w");
    assert_non_null(log);
    Stream *ft = open_stream(dir, "ft", 1, SPLIT_SAMPLE, 0, 1, NULL, log);
    const Batch *b;
    char err[1024];
    for (int step = 0; step < 12; step++) {
        if (stream_next(ft, &b, NULL, err, sizeof(err))) fail_msg("%s", err);
        for (int j = 0; j < b->n; j++)
            assert_string_not_equal(b->keys[j], "s13");
    }
    assert_true(b->counters.bad_features >= 1); // once per epoch read so far
    assert_int_equal(stream_counters_skipped(&b->counters), b->counters.bad_features);
    stream_close(ft);
    fclose(log);
    char *text = fx_slurp(logpath);
    if (!strstr(text, "skipping sample 's13'") || !strstr(text, ".img.f32 has 44 bytes"))
        fail_msg("warning missing: %s", text);
    free(text);

    // features of another shape: every sample is refused, and the stream stops with an error
    StreamOptions o;
    stream_options_default(&o);
    char spec[512];
    snprintf(spec, sizeof(spec), "%s/ft-{0..2}.tar", dir);
    o.spec = spec, o.max_text_len = L, o.features = 1, o.feature_shape = SHAPE;
    o.feature_shape.img_dim = 4, o.warn_limit = 0, o.global_batch = 4;
    Stream *s = stream_open(&o, NULL, err, sizeof(err));
    if (s) {
        assert_int_not_equal(stream_next(s, &b, NULL, err, sizeof(err)), 0);
        stream_close(s);
    }
    assert_non_null(strstr(err, "no complete global batch"));
    // an inconsistent feature shape is refused at open
    o.feature_shape.txt_len = L + 1;
    assert_null(stream_open(&o, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "feature shape"));
    fx_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_le_bytes),
        cmocka_unit_test(test_feature_check),
        cmocka_unit_test(test_feature_stream_equals_pixel_stream),
        cmocka_unit_test(test_feature_stream_bad_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
