// Pretrained encoders (launch/pretrained.c, model/bert.c): a ViT and a BERT written with their
// usual tensor names load back exactly (with prefixes, old gamma/beta names, a tijepa checkpoint
// as the image encoder, EMA copies kept equal), and every bad input is a clear error naming the
// file, the tensor and both shapes: wrong shapes, missing tensors, unsupported dtypes, truncated
// files, a class token, learned positions, depth/heads/architecture mismatches; bert refuses
// scratch mode, and the config keys are validated.
#define _GNU_SOURCE
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

#include "launch.h"

TMPDIR_FIXTURE("pre")

// image 16/4 (P = 16), ViT 8/2/1, text 8/2/2/6/20, crosser and predictor minimal.
static ModelConfig config(TextEncoderKind txt, ModelMode mode) {
    ModelConfig c;
    memset(&c, 0, sizeof(c));
    c.shape = (ModelShape){.image_size = 16,
                           .patch = 4,
                           .img_dim = 8,
                           .img_depth = 2,
                           .img_heads = 1,
                           .txt_dim = 8,
                           .txt_depth = 2,
                           .txt_heads = 2,
                           .txt_len = 6,
                           .vocab = 20,
                           .cross_dim = 8,
                           .cross_depth = 1,
                           .cross_heads = 1,
                           .pred_dim = 8,
                           .pred_depth = 1,
                           .pred_heads = 1,
                           .batch = 2};
    c.mode = mode;
    c.text_encoder = txt;
    c.local_batch = 2;
    c.temperature = 1;
    return c;
}

static Model *make(ModelConfig c, uint64_t seed) {
    char err[512];
    Model *m = model_new(&c, err, sizeof(err));
    if (!m) fail_msg("model_new: %s", err);
    model_init_weights(m, seed);
    return m;
}

static float *tensor(Model *m, const char *name) {
    int i = model_tensor_index(m, name), n;
    if (i < 0) fail_msg("no tensor %s", name);
    return model_params(m) + model_tensors(m, &n)[i].offset;
}

// Every tensor whose name starts with prefix is identical in a and b.
static void assert_same_tensors(Model *a, Model *b, const char *prefix) {
    int n, count = 0;
    const TensorInfo *t = model_tensors(a, &n);
    for (int i = 0; i < n; i++) {
        if (strncmp(t[i].name, prefix, strlen(prefix))) continue;
        if (memcmp(model_params(a) + t[i].offset, tensor(b, t[i].name), t[i].numel * 4))
            fail_msg("tensor %s differs after loading", t[i].name);
        count++;
    }
    assert_true(count > 0);
}

// ---------------------------------------------------------------------------------------------
// a safetensors file under construction: borrowed data, names copied

#define MAX_T 160
typedef struct {
    StTensorF32 t[MAX_T];
    char names[MAX_T][160];
    int n;
    const char *meta[16];
    int n_meta;
} Builder;

static void add(Builder *b, const char *name, int ndim, const int64_t *shape, const float *data) {
    assert_true(b->n < MAX_T);
    snprintf(b->names[b->n], sizeof(b->names[0]), "%s", name);
    StTensorF32 *t = &b->t[b->n];
    memset(t, 0, sizeof(*t));
    t->name = b->names[b->n];
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->data = data;
    b->n++;
}

static void add_model(Builder *b, Model *m, const char *file_name, const char *model_name) {
    int n;
    const TensorInfo *ti = &model_tensors(m, &n)[model_tensor_index(m, model_name)];
    int64_t shape[4];
    for (int d = 0; d < ti->ndim; d++)
        shape[d] = ti->shape[d];
    add(b, file_name, ti->ndim, shape, model_params(m) + ti->offset);
}

static StTensorF32 *find(Builder *b, const char *name) {
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->t[i].name, name)) return &b->t[i];
    fail_msg("builder has no %s", name);
    return NULL;
}

static void drop(Builder *b, const char *name) {
    StTensorF32 *t = find(b, name);
    int i = (int)(t - b->t);
    for (int j = i; j + 1 < b->n; j++) {
        b->t[j] = b->t[j + 1];
        memcpy(b->names[j], b->names[j + 1], sizeof(b->names[0]));
        b->t[j].name = b->names[j];
    }
    b->n--;
}

static void save(Builder *b, const char *path) {
    char err[CKPT_ERR_LEN];
    if (st_write_f32(path, b->t, b->n, b->meta, b->n_meta / 2, err, sizeof(err)))
        fail_msg("st_write_f32: %s", err);
}

// timm / I-JEPA names of m's image encoder under prefix; with_pos adds the sin-cos pos_embed.
static float pos_table[16 * 64];
static void vit_file(Builder *b, Model *m, const char *prefix, int with_pos) {
    memset(b, 0, sizeof(*b));
    char f[128], mn[128];
    static const char *const parts[] = {"norm1.weight",  "norm1.bias",       "attn.qkv.weight",
                                        "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
                                        "norm2.weight",  "norm2.bias",       "mlp.fc1.weight",
                                        "mlp.fc1.bias",  "mlp.fc2.weight",   "mlp.fc2.bias"};
    const ModelShape *s = &model_config(m)->shape;
    snprintf(f, sizeof(f), "%spatch_embed.proj.weight", prefix);
    add_model(b, m, f, "img.patch_embed.weight");
    snprintf(f, sizeof(f), "%spatch_embed.proj.bias", prefix);
    add_model(b, m, f, "img.patch_embed.bias");
    if (with_pos) {
        int grid = s->image_size / s->patch;
        sincos_pos_embed_2d(pos_table, grid, s->img_dim);
        int64_t shape[3] = {1, grid * grid, s->img_dim};
        snprintf(f, sizeof(f), "%spos_embed", prefix);
        add(b, f, 3, shape, pos_table);
    }
    for (int i = 0; i < s->img_depth; i++)
        for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
            snprintf(f, sizeof(f), "%sblocks.%d.%s", prefix, i, parts[k]);
            snprintf(mn, sizeof(mn), "img.blocks.%d.%s", i, parts[k]);
            add_model(b, m, f, mn);
        }
    snprintf(f, sizeof(f), "%snorm.weight", prefix);
    add_model(b, m, f, "img.norm.weight");
    snprintf(f, sizeof(f), "%snorm.bias", prefix);
    add_model(b, m, f, "img.norm.bias");
}

// Hugging Face BERT names of m's bert text encoder; the position table gets extra rows.
static float bert_positions[64 * 8];
static void bert_file(Builder *b, Model *m, const char *prefix, int gamma_beta) {
    memset(b, 0, sizeof(*b));
    const ModelShape *s = &model_config(m)->shape;
    int64_t D = s->txt_dim, L = s->txt_len;
    const char *w = gamma_beta ? "gamma" : "weight", *bb = gamma_beta ? "beta" : "bias";
    char f[160], mn[128];
#define F(...) (snprintf(f, sizeof(f), __VA_ARGS__), f)
    add_model(b, m, F("%sembeddings.word_embeddings.weight", prefix), "txt.word_embeddings");
    memcpy(bert_positions, tensor(m, "txt.position_embeddings"), (size_t)(L * D) * 4);
    for (int64_t i = L * D; i < 2 * L * D; i++)
        bert_positions[i] = 0.5f;
    int64_t pshape[2] = {2 * L, D};
    add(b, F("%sembeddings.position_embeddings.weight", prefix), 2, pshape, bert_positions);
    add_model(b, m, F("%sembeddings.token_type_embeddings.weight", prefix),
              "txt.token_type_embeddings");
    add_model(b, m, F("%sembeddings.LayerNorm.%s", prefix, w), "txt.emb_norm.weight");
    add_model(b, m, F("%sembeddings.LayerNorm.%s", prefix, bb), "txt.emb_norm.bias");
    const char *qkv[3] = {"query", "key", "value"};
    int64_t wshape[2] = {D, D}, bshape[1] = {D};
    for (int l = 0; l < s->txt_depth; l++) {
        snprintf(mn, sizeof(mn), "txt.blocks.%d.attn.qkv.weight", l);
        const float *qw = tensor(m, mn);
        snprintf(mn, sizeof(mn), "txt.blocks.%d.attn.qkv.bias", l);
        const float *qb = tensor(m, mn);
        for (int k = 0; k < 3; k++) {
            add(b, F("%sencoder.layer.%d.attention.self.%s.weight", prefix, l, qkv[k]), 2, wshape,
                qw + k * D * D);
            add(b, F("%sencoder.layer.%d.attention.self.%s.bias", prefix, l, qkv[k]), 1, bshape,
                qb + k * D);
        }
        static const char *const map[][2] = {{"attn.proj.weight", "attention.output.dense.weight"},
                                             {"attn.proj.bias", "attention.output.dense.bias"},
                                             {"norm1.weight", "attention.output.LayerNorm.W"},
                                             {"norm1.bias", "attention.output.LayerNorm.B"},
                                             {"mlp.fc1.weight", "intermediate.dense.weight"},
                                             {"mlp.fc1.bias", "intermediate.dense.bias"},
                                             {"mlp.fc2.weight", "output.dense.weight"},
                                             {"mlp.fc2.bias", "output.dense.bias"},
                                             {"norm2.weight", "output.LayerNorm.W"},
                                             {"norm2.bias", "output.LayerNorm.B"}};
        for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
            char file_part[96];
            snprintf(file_part, sizeof(file_part), "%s", map[k][1]);
            size_t n = strlen(file_part);
            if (file_part[n - 1] == 'W' || file_part[n - 1] == 'B')
                snprintf(file_part + n - 1, sizeof(file_part) - n + 1, "%s",
                         file_part[n - 1] == 'W' ? w : bb);
            snprintf(mn, sizeof(mn), "txt.blocks.%d.%s", l, map[k][0]);
            add_model(b, m, F("%sencoder.layer.%d.%s", prefix, l, file_part), mn);
        }
    }
#undef F
}

// Loads path into m, expecting failure with every needle in the message.
static void expect_error(int text, Model *m, const char *path, ...) {
    char err[CKPT_ERR_LEN] = "", note[512];
    int rc = text ? pretrained_load_text(m, path, note, sizeof(note), err, sizeof(err))
                  : pretrained_load_image(m, path, note, sizeof(note), err, sizeof(err));
    if (rc == 0) fail_msg("loading %s succeeded, an error was expected", path);
    if (getenv("TIJEPA_TEST_VERBOSE")) printf("    %s\n", err);
    va_list ap;
    va_start(ap, path);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(err, needle)) fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    va_end(ap);
    if (!strstr(err, path)) fail_msg("error \"%s\" does not name the file", err);
}

static void load_ok(int text, Model *m, const char *path, char *note, size_t notelen) {
    char err[CKPT_ERR_LEN];
    int rc = text ? pretrained_load_text(m, path, note, notelen, err, sizeof(err))
                  : pretrained_load_image(m, path, note, notelen, err, sizeof(err));
    if (rc) fail_msg("loading %s: %s", path, err);
}

// ---------------------------------------------------------------------------------------------
// image encoder

static void test_vit_round_trip(void **state) {
    (void)state;
    Model *a = make(config(TEXT_ENCODER_PRETLN, MODE_PAPER), 1);
    // scratch mode keeps an EMA copy of the image encoder: it must follow the loaded weights
    Model *b = make(config(TEXT_ENCODER_PRETLN, MODE_SCRATCH), 2);
    const char *prefixes[] = {"", "module.", "encoder.", "module.encoder."};
    for (int p = 0; p < 4; p++) {
        Builder bl;
        vit_file(&bl, a, prefixes[p], p % 2);
        int64_t hshape[2] = {3, 8};
        char name[64];
        snprintf(name, sizeof(name), "%shead.weight", prefixes[p]);
        add(&bl, name, 2, hshape, pos_table); // a classifier head: ignored
        char path[128], note[1024];
        snprintf(name, sizeof(name), "vit%d.safetensors", p);
        path_of(path, sizeof(path), name);
        save(&bl, path);
        model_init_weights(b, 2);
        load_ok(0, b, path, note, sizeof(note));
        assert_same_tensors(a, b, "img.");
        assert_non_null(strstr(note, "ignored 1 tensor"));
        if (p % 2) assert_non_null(strstr(note, "sin-cos"));
    }
    int n;
    const TensorInfo *t = model_tensors(b, &n);
    for (int i = 0; i < n; i++)
        if (!strncmp(t[i].name, "img.", 4))
            assert_memory_equal(model_ema(b) + (t[i].offset - model_ema_offset(b)),
                                model_params(b) + t[i].offset, t[i].numel * 4);
    model_free(a);
    model_free(b);
}

static void test_vit_errors(void **state) {
    (void)state;
    Model *a = make(config(TEXT_ENCODER_PRETLN, MODE_PAPER), 1);
    Model *b = make(config(TEXT_ENCODER_PRETLN, MODE_PAPER), 2);
    char path[128];
    Builder bl;
    static float junk[64 * 64];

    // a wider ViT: the first tensor names the mismatch, both shapes and the setting
    ModelConfig wide_cfg = config(TEXT_ENCODER_PRETLN, MODE_PAPER);
    wide_cfg.shape.img_dim = 12;
    wide_cfg.shape.img_heads = 3;
    Model *wide = make(wide_cfg, 3);
    vit_file(&bl, wide, "", 0);
    path_of(path, sizeof(path), "wide.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "'patch_embed.proj.weight'", "[12, 3, 4, 4]", "[8, 3, 4, 4]",
                 "model.img_dim=8", NULL);
    model_free(wide);

    // one wrong tensor deep inside
    vit_file(&bl, a, "module.", 0);
    find(&bl, "module.blocks.1.mlp.fc1.weight")->shape[0] = 36;
    find(&bl, "module.blocks.1.mlp.fc1.weight")->data = junk;
    path_of(path, sizeof(path), "shape.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "'module.blocks.1.mlp.fc1.weight'", "[36, 8]", "[32, 8]", NULL);

    vit_file(&bl, a, "", 0);
    drop(&bl, "blocks.1.attn.proj.bias");
    path_of(path, sizeof(path), "missing.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "'blocks.1.attn.proj.bias' is missing", NULL);

    vit_file(&bl, a, "", 0);
    drop(&bl, "norm.weight");
    path_of(path, sizeof(path), "missing_norm.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "'norm.weight' is missing", NULL);

    ModelConfig deep_cfg = config(TEXT_ENCODER_PRETLN, MODE_PAPER);
    deep_cfg.shape.img_depth = 3;
    Model *deep = make(deep_cfg, 4);
    vit_file(&bl, deep, "", 0);
    path_of(path, sizeof(path), "deep.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "has 3 blocks but model.img_depth = 2", NULL);
    model_free(deep);

    vit_file(&bl, a, "encoder.", 1);
    int64_t cls_shape[3] = {1, 1, 8};
    add(&bl, "encoder.cls_token", 3, cls_shape, junk);
    path_of(path, sizeof(path), "cls.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "'encoder.cls_token'", "not supported", NULL);

    vit_file(&bl, a, "", 1);
    for (int i = 0; i < 64 * 64; i++)
        junk[i] = 0.01f * (float)(i % 17);
    find(&bl, "pos_embed")->data = junk;
    path_of(path, sizeof(path), "learned_pos.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "'pos_embed' is not the fixed 2-D sin-cos table",
                 "learned position embeddings are not supported", NULL);

    vit_file(&bl, a, "", 0);
    const char *meta[2] = {"num_heads", "4"};
    memcpy(bl.meta, meta, sizeof(meta));
    bl.n_meta = 2;
    path_of(path, sizeof(path), "heads.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "4 attention heads", "model.img_heads = 1", NULL);

    int64_t one[1] = {4};
    memset(&bl, 0, sizeof(bl));
    add(&bl, "classifier.weight", 1, one, junk);
    path_of(path, sizeof(path), "not_vit.safetensors");
    save(&bl, path);
    expect_error(0, b, path, "no ViT patch embedding", "convert-ijepa", NULL);

    path_of(path, sizeof(path), "does_not_exist.safetensors");
    expect_error(0, b, path, "does_not_exist", NULL);
    model_free(a);
    model_free(b);
}

// F32 → I32 in the header (same element size, so the file stays well-formed): unsupported.
static void retype(const char *path, const char *tensor_name) {
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = 0;
    char quoted[160];
    snprintf(quoted, sizeof(quoted), "\"%s\"", tensor_name);
    char *at = strstr(buf + 8, quoted);
    assert_non_null(at);
    char *dt = strstr(at, "\"F32\"");
    assert_non_null(dt);
    dt[1] = 'I';
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void test_dtype_and_truncation(void **state) {
    (void)state;
    Model *a = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 1);
    Model *b = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 2);
    char path[128];
    Builder bl;
    vit_file(&bl, a, "", 0);
    path_of(path, sizeof(path), "i32.safetensors");
    save(&bl, path);
    retype(path, "blocks.0.attn.qkv.weight");
    expect_error(0, b, path, "'blocks.0.attn.qkv.weight'", "dtype I32", "only F32, F16 and BF16",
                 NULL);

    bert_file(&bl, a, "", 0);
    path_of(path, sizeof(path), "bert_i32.safetensors");
    save(&bl, path);
    retype(path, "encoder.layer.1.attention.self.key.weight");
    expect_error(1, b, path, "encoder.layer.1.attention.self.key.weight", "dtype I32", NULL);

    for (int text = 0; text < 2; text++) {
        if (text)
            bert_file(&bl, a, "", 0);
        else
            vit_file(&bl, a, "", 0);
        path_of(path, sizeof(path), text ? "bert_cut.safetensors" : "vit_cut.safetensors");
        save(&bl, path);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        long size = ftell(fp);
        fclose(fp);
        assert_int_equal(truncate(path, size - 100), 0);
        expect_error(text, b, path, "safetensors", NULL);
        assert_int_equal(truncate(path, 20), 0);
        expect_error(text, b, path, "safetensors", NULL);
    }
    model_free(a);
    model_free(b);
}

static void test_vit_from_checkpoint(void **state) {
    (void)state;
    Model *a = make(config(TEXT_ENCODER_PRETLN, MODE_SCRATCH), 1);
    Model *b = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 2);
    char err[CKPT_ERR_LEN], ckdir[128], path[200], note[1024];
    path_of(ckdir, sizeof(ckdir), "ckpt");
    CkptContent c;
    ckpt_content_init(&c);
    if (model_ckpt_content(&c, a, 1, err, sizeof(err)) ||
        ckpt_set_str(&c, "config",
                     "[model]\nimage_size = 16\npatch = 4\nimg_dim = 8\nimg_depth = 2\n"
                     "img_heads = 1\n",
                     err, sizeof(err)) ||
        ckpt_save(ckdir, 7, &c, 0, err, sizeof(err)))
        fail_msg("%s", err);
    ckpt_content_free(&c);
    snprintf(path, sizeof(path), "%s/step-00000007.h5", ckdir);
    load_ok(0, b, path, note, sizeof(note));
    assert_same_tensors(a, b, "img.");
    assert_non_null(strstr(note, "step 7"));

    // the same checkpoint into a model with other heads, then another depth
    ModelConfig heads_cfg = config(TEXT_ENCODER_PRETLN, MODE_PAPER);
    heads_cfg.shape.img_heads = 2;
    Model *h = make(heads_cfg, 3);
    expect_error(0, h, path, "model.img_heads = 1 but this run has model.img_heads = 2", NULL);
    model_free(h);
    ModelConfig deep_cfg = config(TEXT_ENCODER_PRETLN, MODE_PAPER);
    deep_cfg.shape.img_depth = 3;
    Model *d = make(deep_cfg, 3);
    expect_error(0, d, path, "2 blocks but model.img_depth = 3", NULL);
    model_free(d);
    ModelConfig wide_cfg = config(TEXT_ENCODER_PRETLN, MODE_PAPER);
    wide_cfg.shape.img_dim = 12;
    Model *w = make(wide_cfg, 3);
    expect_error(0, w, path, "img.patch_embed.weight", "[8, 3, 4, 4]", "[12, 3, 4, 4]", NULL);
    model_free(w);
    model_free(a);
    model_free(b);
}

// ---------------------------------------------------------------------------------------------
// text encoder

static void test_bert_round_trip(void **state) {
    (void)state;
    Model *a = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 1);
    Model *b = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 2);
    const char *prefixes[] = {"", "bert.", "0.auto_model."};
    for (int p = 0; p < 3; p++) {
        Builder bl;
        bert_file(&bl, a, prefixes[p], p == 2);
        const char *meta[4] = {"num_attention_heads", "2", "layer_norm_eps", "1e-12"};
        memcpy(bl.meta, meta, sizeof(meta));
        bl.n_meta = p == 1 ? 4 : 0;
        char path[128], name[64], note[1024];
        snprintf(name, sizeof(name), "bert%d.safetensors", p);
        path_of(path, sizeof(path), name);
        save(&bl, path);
        model_init_weights(b, 2);
        load_ok(1, b, path, note, sizeof(note));
        assert_same_tensors(a, b, "txt.");
        assert_non_null(strstr(note, p == 1 ? "2 heads checked" : "unchecked"));
    }
    // the encoder runs on the loaded weights: the same features in both models
    int32_t ids[12] = {2, 7, 9, 3, 0, 0, 2, 5, 5, 5, 5, 3};
    uint8_t valid[12] = {1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1};
    float ua[2 * 6 * 8], ub[2 * 6 * 8];
    model_text_features(a, ua, ids, valid, 2);
    model_text_features(b, ub, ids, valid, 2);
    assert_memory_equal(ua, ub, sizeof(ua));
    model_free(a);
    model_free(b);
}

static void test_bert_errors(void **state) {
    (void)state;
    Model *a = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 1);
    char path[128], err[CKPT_ERR_LEN];
    Builder bl;
    bert_file(&bl, a, "bert.", 0);
    path_of(path, sizeof(path), "good_bert.safetensors");
    save(&bl, path);

    ModelConfig c = config(TEXT_ENCODER_BERT, MODE_PAPER);
    c.shape.vocab = 30;
    Model *m = make(c, 2);
    expect_error(1, m, path, "'bert.embeddings.word_embeddings.weight'", "[20, 8]", "[30, 8]",
                 "model.vocab=30", NULL);
    model_free(m);

    c = config(TEXT_ENCODER_BERT, MODE_PAPER);
    c.shape.txt_depth = 3;
    m = make(c, 2);
    expect_error(1, m, path, "has 2 layers but model.txt_depth = 3", NULL);
    model_free(m);

    c = config(TEXT_ENCODER_BERT, MODE_PAPER);
    c.shape.txt_len = 13; // the file has 12 positions
    m = make(c, 2);
    expect_error(1, m, path, "position_embeddings.weight", "[12, 8]", "max_position_embeddings",
                 NULL);
    model_free(m);

    Model *pre = make(config(TEXT_ENCODER_PRETLN, MODE_PAPER), 2);
    expect_error(1, pre, path, "model.text_encoder = bert", NULL);
    model_free(pre);

    Model *b = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 2);
    bert_file(&bl, a, "", 1);
    drop(&bl, "encoder.layer.1.output.LayerNorm.beta");
    path_of(path, sizeof(path), "missing_bert.safetensors");
    save(&bl, path);
    expect_error(1, b, path, "'encoder.layer.1.output.LayerNorm.beta' is missing", NULL);

    bert_file(&bl, a, "", 0);
    const char *meta[2] = {"num_attention_heads", "4"};
    memcpy(bl.meta, meta, sizeof(meta));
    bl.n_meta = 2;
    path_of(path, sizeof(path), "heads_bert.safetensors");
    save(&bl, path);
    expect_error(1, b, path, "num_attention_heads = 4 but model.txt_heads = 2", NULL);

    // no metadata: config.json beside the file decides
    char sub[100], cfg_path[200], hf_path[200];
    snprintf(sub, sizeof(sub), "%s/hf", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(hf_path, sizeof(hf_path), "%s/model.safetensors", sub);
    bert_file(&bl, a, "", 0);
    save(&bl, hf_path);
    snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", sub);
    const char *configs[][2] = {
        {"{\"model_type\": \"new\", \"num_attention_heads\": 2}", "model_type 'new' is not a BERT"},
        {"{\"model_type\": \"bert\", \"num_attention_heads\": 2, \"layer_norm_eps\": 1e-05}",
         "layer_norm_eps = 1e-05"},
        {"{\"model_type\": \"bert\", \"num_attention_heads\": 2, \"hidden_act\": \"gelu_new\"}",
         "hidden_act = 'gelu_new'"},
        {"{\"model_type\": \"bert\", \"num_attention_heads\": 2, "
         "\"position_embedding_type\": \"relative_key\"}",
         "only 'absolute'"},
        {"{\"model_type\": \"bert\", \"num_attention_heads\": 1}", "num_attention_heads = 1"},
        {"[1, 2", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        FILE *fp = fopen(cfg_path, "w");
        assert_non_null(fp);
        fputs(configs[i][0], fp);
        fclose(fp);
        expect_error(1, b, hf_path, configs[i][1], NULL);
    }
    FILE *fp = fopen(cfg_path, "w");
    fputs("{\"model_type\": \"bert\", \"num_attention_heads\": 2, \"layer_norm_eps\": 1e-12, "
          "\"hidden_act\": \"gelu\", \"position_embedding_type\": \"absolute\"}",
          fp);
    fclose(fp);
    char note[1024];
    load_ok(1, b, hf_path, note, sizeof(note));
    assert_non_null(strstr(note, "config.json"));

    // pretrained_apply names the config key
    RunSettings rs;
    memset(&rs, 0, sizeof(rs));
    snprintf(rs.text_weights, sizeof(rs.text_weights), "%s/nothing.safetensors", dir);
    assert_int_equal(pretrained_apply(b, &rs, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "model.text_weights: "));
    assert_non_null(strstr(err, "nothing.safetensors"));
    model_free(a);
    model_free(b);
}

// ---------------------------------------------------------------------------------------------
// the model and the config keys

static void test_bert_refuses_scratch(void **state) {
    (void)state;
    ModelConfig c = config(TEXT_ENCODER_BERT, MODE_SCRATCH);
    char err[512] = "";
    assert_null(model_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "text_encoder = bert"));
    assert_non_null(strstr(err, "scratch"));
    // bert's tensors in the table, no final norm
    Model *m = make(config(TEXT_ENCODER_BERT, MODE_PAPER), 1);
    assert_true(model_tensor_index(m, "txt.word_embeddings") >= 0);
    assert_true(model_tensor_index(m, "txt.token_type_embeddings") >= 0);
    assert_true(model_tensor_index(m, "txt.emb_norm.weight") >= 0);
    assert_true(model_tensor_index(m, "txt.blocks.1.attn.qkv.weight") >= 0);
    assert_int_equal(model_tensor_index(m, "txt.norm.weight"), -1);
    assert_int_equal(model_tensor_index(m, "txt.tok_embed"), -1);
    model_free(m);
}

static int resolve(const char *const *sets, int n, char *err, size_t errlen) {
    TjConfig *cfg = config_new();
    RunSettings rs;
    int rc = run_config_load(cfg, NULL, sets, n, err, errlen) ||
             run_settings_resolve(&rs, cfg, err, errlen);
    config_free(cfg);
    return rc;
}

static void test_settings_keys(void **state) {
    (void)state;
    char err[1024];
    const char *ok[] = {"model.text_encoder=bert", "model.text_weights=x.safetensors",
                        "model.image_weights=y.safetensors"};
    assert_int_equal(resolve(ok, 3, err, sizeof(err)), 0);
    const char *bad_kind[] = {"model.text_encoder=gte"};
    assert_int_not_equal(resolve(bad_kind, 1, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "expected pretln or bert"));
    const char *scratch[] = {"model.text_encoder=bert", "model.mode=scratch"};
    assert_int_not_equal(resolve(scratch, 2, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "model.mode = paper"));
    const char *no_bert[] = {"model.text_weights=x.safetensors"};
    assert_int_not_equal(resolve(no_bert, 1, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "model.text_weights needs model.text_encoder = bert"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vit_round_trip),       cmocka_unit_test(test_vit_errors),
        cmocka_unit_test(test_dtype_and_truncation), cmocka_unit_test(test_vit_from_checkpoint),
        cmocka_unit_test(test_bert_round_trip),      cmocka_unit_test(test_bert_errors),
        cmocka_unit_test(test_bert_refuses_scratch), cmocka_unit_test(test_settings_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
