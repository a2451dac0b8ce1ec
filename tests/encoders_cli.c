// encoders_cli: tijepa's pretrained-encoder path, driven by the Python cross-checks of
// tests/encoders.cmake. Results are written as safetensors (F32) for Python to compare.
//
//   encoders_cli text --weights W.safetensors --vocab vocab.txt --shape D,DEPTH,HEADS,LEN,VOCAB
//                     --captions HEXLINES --out OUT.safetensors
//       bert encoder (model.text_encoder = bert) from W; each line of HEXLINES is the hex of a
//       UTF-8 caption; writes ids [n,LEN], valid [n,LEN] and hidden [n,LEN,D].
//   encoders_cli image --weights W --image-size S --patch P --shape D,DEPTH,HEADS
//                      --images IN.safetensors --out OUT.safetensors
//       image encoder from W (safetensors or tijepa checkpoint); IN holds "images" [n,3,S,S];
//       writes features [n,P,D] (the frozen encoder's output, model_image_features).
//   encoders_cli config --config INI [--set section.key=value ...]
//       resolves the config, builds the model, applies model.image_weights/text_weights as the
//       trainer does, and prints what was loaded.
// Exit 0 on success, 1 on error (message on stderr).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

static int die(const char *fmt, const char *a) {
    fprintf(stderr, "encoders_cli: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 1;
}

static const char *arg(int argc, char **argv, const char *key) {
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], key)) return argv[i + 1];
    return NULL;
}

// A model whose other parts are as small as the shape checks allow.
static ModelConfig small_config(void) {
    ModelConfig c;
    memset(&c, 0, sizeof(c));
    ModelShape *s = &c.shape;
    *s = (ModelShape){.image_size = 8,
                      .patch = 4,
                      .img_dim = 8,
                      .img_depth = 0,
                      .img_heads = 1,
                      .txt_dim = 8,
                      .txt_depth = 0,
                      .txt_heads = 1,
                      .txt_len = 2,
                      .vocab = 5,
                      .cross_dim = 8,
                      .cross_depth = 1,
                      .cross_heads = 1,
                      .pred_dim = 8,
                      .pred_depth = 1,
                      .pred_heads = 1,
                      .batch = 8};
    c.mode = MODE_PAPER;
    c.local_batch = 8;
    c.temperature = 1;
    return c;
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Lines of hex → NUL-terminated strings (a NULL-terminated array).
static char **read_hex_lines(const char *path, int *n_out) {
    FILE *fp = fopen(path, "r");
    if (!fp) return NULL;
    char **lines = NULL, buf[1 << 16];
    int n = 0;
    while (fgets(buf, sizeof(buf), fp)) {
        size_t len = strcspn(buf, "\r\n");
        char *text = malloc(len / 2 + 1);
        char **grown = realloc(lines, (size_t)(n + 2) * sizeof(char *));
        if (!text || !grown) exit(1);
        lines = grown;
        for (size_t i = 0; i + 1 < len; i += 2)
            text[i / 2] = (char)(hex_value(buf[i]) * 16 + hex_value(buf[i + 1]));
        text[len / 2] = 0;
        lines[n++] = text;
        lines[n] = NULL;
    }
    fclose(fp);
    *n_out = n;
    return lines;
}

static int write_outputs(const char *path, const StTensorF32 *t, int n) {
    char err[CKPT_ERR_LEN];
    const char *meta[2] = {"written_by", "tijepa encoders_cli"};
    if (st_write_f32(path, t, n, meta, 1, err, sizeof(err))) return die("%s", err);
    return 0;
}

static int cmd_text(int argc, char **argv) {
    const char *weights = arg(argc, argv, "--weights"), *vocab = arg(argc, argv, "--vocab"),
               *shape = arg(argc, argv, "--shape"), *caps = arg(argc, argv, "--captions"),
               *out = arg(argc, argv, "--out");
    if (!weights || !vocab || !shape || !caps || !out) return die("%s", "text: missing option");
    ModelConfig c = small_config();
    ModelShape *s = &c.shape;
    if (sscanf(shape, "%d,%d,%d,%d,%d", &s->txt_dim, &s->txt_depth, &s->txt_heads, &s->txt_len,
               &s->vocab) != 5)
        return die("bad --shape %s", shape);
    c.text_encoder = TEXT_ENCODER_BERT;
    char err[CKPT_ERR_LEN], note[1024];
    Model *m = model_new(&c, err, sizeof(err));
    if (!m) return die("%s", err);
    model_init_weights(m, 1);
    if (pretrained_load_text(m, weights, note, sizeof(note), err, sizeof(err)))
        return die("%s", err);
    fprintf(stderr, "encoders_cli: %s\n", note);
    Tokenizer *tok = tokenizer_load(vocab, err, sizeof(err));
    if (!tok) return die("%s", err);
    int n = 0;
    char **lines = read_hex_lines(caps, &n);
    if (!lines || n < 1) return die("cannot read captions from %s", caps);
    int L = s->txt_len, D = s->txt_dim;
    int32_t *ids = calloc((size_t)n * L, sizeof(int32_t));
    uint8_t *valid = calloc((size_t)n * L, 1);
    float *fids = calloc((size_t)n * L, sizeof(float)), *fvalid = calloc((size_t)n * L, 4);
    float *hidden = calloc((size_t)n * L * D, sizeof(float));
    for (int i = 0; i < n; i++) {
        if (tokenizer_encode(tok, lines[i], ids + (size_t)i * L, valid + (size_t)i * L, L, NULL,
                             err, sizeof(err)) < 0)
            return die("%s", err);
    }
    for (size_t i = 0; i < (size_t)n * L; i++) {
        fids[i] = (float)ids[i];
        fvalid[i] = valid[i];
    }
    model_text_features(m, hidden, ids, valid, n);
    StTensorF32 t[3] = {
        {"ids", 2, {n, L}, fids}, {"valid", 2, {n, L}, fvalid}, {"hidden", 3, {n, L, D}, hidden}};
    int rc = write_outputs(out, t, 3);
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(ids);
    free(valid);
    free(fids);
    free(fvalid);
    free(hidden);
    tokenizer_free(tok);
    model_free(m);
    return rc;
}

static int cmd_image(int argc, char **argv) {
    const char *weights = arg(argc, argv, "--weights"), *shape = arg(argc, argv, "--shape"),
               *size = arg(argc, argv, "--image-size"), *patch = arg(argc, argv, "--patch"),
               *images = arg(argc, argv, "--images"), *out = arg(argc, argv, "--out");
    if (!weights || !shape || !size || !patch || !images || !out)
        return die("%s", "image: missing option");
    ModelConfig c = small_config();
    ModelShape *s = &c.shape;
    s->image_size = atoi(size);
    s->patch = atoi(patch);
    if (sscanf(shape, "%d,%d,%d", &s->img_dim, &s->img_depth, &s->img_heads) != 3)
        return die("bad --shape %s", shape);
    char err[CKPT_ERR_LEN], note[1024];
    Model *m = model_new(&c, err, sizeof(err));
    if (!m) return die("%s", err);
    model_init_weights(m, 1);
    if (pretrained_load_image(m, weights, note, sizeof(note), err, sizeof(err)))
        return die("%s", err);
    fprintf(stderr, "encoders_cli: %s\n", note);
    StFile f;
    if (st_open(&f, images, err, sizeof(err))) return die("%s", err);
    const StEntry *e = st_find(&f, "images");
    if (!e || e->ndim != 4) return die("%s has no 4-d tensor 'images'", images);
    int n = (int)e->shape[0], S = s->image_size, P = (S / s->patch) * (S / s->patch);
    int64_t ishape[4] = {n, 3, S, S};
    float *pix = calloc((size_t)n * 3 * S * S, sizeof(float));
    float *feat = calloc((size_t)n * P * s->img_dim, sizeof(float));
    if (st_read_f32(&f, "images", 4, ishape, pix, err, sizeof(err))) return die("%s", err);
    st_close(&f);
    model_image_features(m, feat, pix, n);
    StTensorF32 t[1] = {{"features", 3, {n, P, s->img_dim}, feat}};
    int rc = write_outputs(out, t, 1);
    free(pix);
    free(feat);
    model_free(m);
    return rc;
}

static int cmd_config(int argc, char **argv) {
    const char *path = arg(argc, argv, "--config");
    const char *sets[64];
    int n_sets = 0;
    for (int i = 2; i + 1 < argc && n_sets < 64; i++)
        if (!strcmp(argv[i], "--set")) sets[n_sets++] = argv[++i];
    char err[CKPT_ERR_LEN];
    TjConfig *cfg = config_new();
    RunSettings rs;
    if (run_config_load(cfg, path, sets, n_sets, err, sizeof(err)) ||
        run_settings_resolve(&rs, cfg, err, sizeof(err)))
        return die("config: %s", err);
    rs.model.local_batch = 1;
    Model *m = model_new(&rs.model, err, sizeof(err));
    if (!m) return die("model: %s", err);
    model_init_weights(m, rs.seed);
    if (pretrained_apply(m, &rs, stdout, err, sizeof(err))) return die("%s", err);
    printf("text_encoder = %s, %zu parameters\n", text_encoder_name(rs.model.text_encoder),
           model_num_params(m));
    model_free(m);
    config_free(cfg);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "text")) return cmd_text(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "image")) return cmd_image(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "config")) return cmd_config(argc, argv);
    fprintf(stderr, "usage: encoders_cli text|image|config ... (see the comment in the source)\n");
    return 2;
}
