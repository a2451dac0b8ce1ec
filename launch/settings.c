// The run configuration: INI keys of DESIGN.md §5 → RunSettings, with defaults, validation, and
// the resolved values written back so config.ini records exactly what ran.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

typedef struct {
    TjConfig *cfg;
    char *err;
    size_t errlen;
    int failed;
} Resolver;

static void put_int(Resolver *r, const char *sec, const char *key, long v) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%ld", v);
    config_set(r->cfg, sec, key, buf);
}

static void put_double(Resolver *r, const char *sec, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.9g", v);
    config_set(r->cfg, sec, key, buf);
}

static int get_int(Resolver *r, const char *sec, const char *key, long def) {
    long v = def;
    if (!r->failed && config_get_int(r->cfg, sec, key, def, &v, r->err, r->errlen)) r->failed = 1;
    put_int(r, sec, key, v);
    return (int)v;
}

static double get_double(Resolver *r, const char *sec, const char *key, double def) {
    double v = def;
    if (!r->failed && config_get_double(r->cfg, sec, key, def, &v, r->err, r->errlen))
        r->failed = 1;
    put_double(r, sec, key, v);
    return v;
}

static void get_str(Resolver *r, char *out, size_t cap, const char *sec, const char *key,
                    const char *def) {
    const char *v = config_get(r->cfg, sec, key);
    if (!v) v = def;
    if (strlen(v) >= cap && !r->failed) {
        snprintf(r->err, r->errlen, "%s.%s is too long (%zu characters, at most %zu)", sec, key,
                 strlen(v), cap - 1);
        r->failed = 1;
    }
    snprintf(out, cap, "%s", v);
    config_set(r->cfg, sec, key, out);
}

// "a,b" → two floats.
static void get_pair(Resolver *r, float out[2], const char *sec, const char *key, float d0,
                     float d1) {
    const char *v = config_get(r->cfg, sec, key);
    float a = d0, b = d1;
    if (v) {
        char tail;
        if (sscanf(v, " %f , %f %c", &a, &b, &tail) != 2 || a > b) {
            if (!r->failed)
                snprintf(r->err, r->errlen, "%s.%s = '%s': expected two numbers 'low,high'", sec,
                         key, v);
            r->failed = 1;
        }
    }
    out[0] = a;
    out[1] = b;
    char buf[64];
    snprintf(buf, sizeof(buf), "%.9g,%.9g", a, b);
    config_set(r->cfg, sec, key, buf);
}

static void fail(Resolver *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Resolver *r, const char *fmt, ...) {
    if (r->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    r->failed = 1;
}

int run_settings_resolve(RunSettings *rs, TjConfig *cfg, char *err, size_t errlen) {
    Resolver r = {cfg, err, errlen, 0};
    memset(rs, 0, sizeof(*rs));

    get_str(&r, rs->name, sizeof(rs->name), "run", "name", "tijepa");
    char default_dir[1200];
    snprintf(default_dir, sizeof(default_dir), "runs/%s", rs->name);
    get_str(&r, rs->dir, sizeof(rs->dir), "run", "dir", default_dir);
    rs->seed = (uint64_t)get_int(&r, "run", "seed", 0);

    get_str(&r, rs->train, sizeof(rs->train), "data", "train", "");
    get_str(&r, rs->val, sizeof(rs->val), "data", "val", "");
    get_str(&r, rs->vocab, sizeof(rs->vocab), "data", "vocab", "");
    char split[32];
    get_str(&r, split, sizeof(split), "data", "split", "sample");
    if (split_mode_parse(split, &rs->split))
        fail(&r, "data.split = '%s': expected sample or shard", split);
    rs->shuffle_buffer = get_int(&r, "data", "shuffle_buffer", 1000);
    rs->prefetch = get_int(&r, "data", "prefetch", 2);
    if (!r.failed && config_get_bool(cfg, "data", "features", 0, &rs->features, err, errlen))
        r.failed = 1;
    config_set(cfg, "data", "features", rs->features ? "true" : "false");

    // model: a preset, then explicit shape keys override it
    get_str(&r, rs->preset, sizeof(rs->preset), "model", "preset", "tiny");
    ModelShape *s = &rs->model.shape;
    if (model_preset(s, rs->preset))
        fail(&r, "model.preset = '%s': expected tiny, small, base or paper", rs->preset);
    char mode[32];
    get_str(&r, mode, sizeof(mode), "model", "mode", "paper");
    if (!strcmp(mode, "paper"))
        rs->model.mode = MODE_PAPER;
    else if (!strcmp(mode, "scratch"))
        rs->model.mode = MODE_SCRATCH;
    else if (!strcmp(mode, "ijepa")) // image-only I-JEPA pre-training of the ViT
        rs->model.mode = MODE_IJEPA;
    else
        fail(&r, "model.mode = '%s': expected paper, scratch or ijepa", mode);
    // pretrained encoders (launch/pretrained.c)
    char text_encoder[32];
    get_str(&r, text_encoder, sizeof(text_encoder), "model", "text_encoder", "pretln");
    if (text_encoder_parse(text_encoder, &rs->model.text_encoder))
        fail(&r, "model.text_encoder = '%s': expected pretln or bert", text_encoder);
    if (rs->model.text_encoder == TEXT_ENCODER_BERT && rs->model.mode != MODE_PAPER)
        fail(&r, "model.text_encoder = bert is frozen (pretrained weights, forward only): it "
                 "needs model.mode = paper");
    if (rs->features && rs->model.mode != MODE_PAPER)
        fail(&r,
             "data.features = true streams the frozen encoders' outputs (tijepa encode), but "
             "model.mode = %s trains the image encoder, so its features change every step: use "
             "model.mode = paper, or pixel shards",
             mode);
    get_str(&r, rs->image_weights, sizeof(rs->image_weights), "model", "image_weights", "");
    get_str(&r, rs->text_weights, sizeof(rs->text_weights), "model", "text_weights", "");
    if (rs->text_weights[0] && rs->model.text_encoder != TEXT_ENCODER_BERT)
        fail(&r, "model.text_weights needs model.text_encoder = bert (pretrained text encoders "
                 "are BERT-family models)");
    // data.image_size and data.max_text_len are the model's image size and text length
    s->image_size =
        get_int(&r, "model", "image_size", get_int(&r, "data", "image_size", s->image_size));
    put_int(&r, "data", "image_size", s->image_size);
    s->txt_len = get_int(&r, "model", "txt_len", get_int(&r, "data", "max_text_len", s->txt_len));
    put_int(&r, "data", "max_text_len", s->txt_len);
    s->patch = get_int(&r, "model", "patch", s->patch);
    s->img_dim = get_int(&r, "model", "img_dim", s->img_dim);
    s->img_depth = get_int(&r, "model", "img_depth", s->img_depth);
    s->img_heads = get_int(&r, "model", "img_heads", s->img_heads);
    s->txt_dim = get_int(&r, "model", "txt_dim", s->txt_dim);
    s->txt_depth = get_int(&r, "model", "txt_depth", s->txt_depth);
    s->txt_heads = get_int(&r, "model", "txt_heads", s->txt_heads);
    s->vocab = get_int(&r, "model", "vocab", s->vocab);
    s->cross_dim = get_int(&r, "model", "cross_dim", s->cross_dim);
    s->cross_depth = get_int(&r, "model", "cross_depth", s->cross_depth);
    s->cross_heads = get_int(&r, "model", "cross_heads", s->cross_heads);
    s->pred_dim = get_int(&r, "model", "pred_dim", s->pred_dim);
    s->pred_depth = get_int(&r, "model", "pred_depth", s->pred_depth);
    s->pred_heads = get_int(&r, "model", "pred_heads", s->pred_heads);
    if (!r.failed && model_shape_check(s, err, errlen)) r.failed = 1;

    MaskConfig *mc = &rs->mask;
    mask_config_default(mc);
    mc->targets = get_int(&r, "mask", "targets", mc->targets);
    get_pair(&r, mc->target_scale, "mask", "target_scale", mc->target_scale[0],
             mc->target_scale[1]);
    get_pair(&r, mc->target_aspect, "mask", "target_aspect", mc->target_aspect[0],
             mc->target_aspect[1]);
    get_pair(&r, mc->context_scale, "mask", "context_scale", mc->context_scale[0],
             mc->context_scale[1]);
    mc->min_keep = get_int(&r, "mask", "min_keep", mc->min_keep);
    if (mc->targets < 1) fail(&r, "mask.targets must be ≥ 1 (got %d)", mc->targets);

    int ijepa = rs->model.mode == MODE_IJEPA; // no captions: no negatives, no text evaluation
    rs->model.nce_weight = (float)get_double(&r, "loss", "nce_weight", ijepa ? 0.0 : 1.0);
    if (ijepa && rs->model.nce_weight > 0)
        fail(&r, "model.mode = ijepa pre-trains the image encoder alone (no captions, no "
                 "negatives): loss.nce_weight must be 0");
    rs->model.negatives = get_int(&r, "loss", "negatives", 8);
    rs->model.temperature = (float)get_double(&r, "loss", "temperature", 0.01);
    char negative_target[32];
    get_str(&r, negative_target, sizeof(negative_target), "loss", "negative_target", "own");
    if (!strcmp(negative_target, "own"))
        rs->model.negative_target = NEG_TARGET_OWN;
    else if (!strcmp(negative_target, "positive"))
        rs->model.negative_target = NEG_TARGET_POSITIVE;
    else
        fail(&r, "loss.negative_target = '%s': expected own or positive", negative_target);
    char target_text[32];
    get_str(&r, target_text, sizeof(target_text), "loss", "target_text", "caption");
    if (!strcmp(target_text, "caption"))
        rs->model.target_text = TARGET_TEXT_CAPTION;
    else if (!strcmp(target_text, "none"))
        rs->model.target_text = TARGET_TEXT_NONE;
    else
        fail(&r, "loss.target_text = '%s': expected caption or none", target_text);

    rs->steps = get_int(&r, "train", "steps", 1000);
    rs->global_batch = get_int(&r, "train", "global_batch", s->batch);
    rs->log_every = get_int(&r, "train", "log_every", 10);
    rs->eval_every = get_int(&r, "train", "eval_every", 0);
    if (ijepa && rs->eval_every > 0)
        fail(&r, "train.eval_every: model.mode = ijepa has no text path, so there is no retrieval "
                 "or probe to run: set it to 0 and evaluate the encoder through a paper-mode run "
                 "that freezes it (model.image_weights = its checkpoint)");
    rs->ckpt_every = get_int(&r, "train", "ckpt_every", 0);
    rs->keep_last = get_int(&r, "train", "keep_last", 3);
    rs->threads = get_int(&r, "train", "threads", 1);
    rs->check_every = get_int(&r, "train", "check_every", 100);
    rs->max_bad_steps = get_int(&r, "train", "max_bad_steps", 5);
    rs->stop_after = get_int(&r, "train", "stop_after", 0);
    if (rs->steps < 1) fail(&r, "train.steps must be ≥ 1 (got %d)", rs->steps);
    if (rs->global_batch < 1) fail(&r, "train.global_batch must be ≥ 1 (got %d)", rs->global_batch);
    if (rs->log_every < 1) rs->log_every = 1;

    OptimConfig *oc = &rs->optim;
    optim_config_default(oc);
    oc->lr = (float)get_double(&r, "optim", "lr", 1e-3);
    oc->start_lr = (float)get_double(&r, "optim", "start_lr", 2e-4);
    oc->final_lr = (float)get_double(&r, "optim", "final_lr", 1e-6);
    oc->warmup_steps = get_int(&r, "optim", "warmup_steps", rs->steps / 10);
    oc->weight_decay = (float)get_double(&r, "optim", "weight_decay", 0.04);
    oc->final_weight_decay = (float)get_double(&r, "optim", "final_weight_decay", 0.4);
    oc->ema_start = (float)get_double(&r, "optim", "ema_start", 0.996);
    oc->ema_end = (float)get_double(&r, "optim", "ema_end", 1.0);
    oc->clip_grad = (float)get_double(&r, "optim", "clip_grad", 0.0);
    oc->total_steps = rs->steps;

    rs->bucket_mb = get_double(&r, "mpi", "bucket_mb", 25.0);
    rs->eval_pairs = get_int(&r, "eval", "pairs", 256);
    get_str(&r, rs->probe_train, sizeof(rs->probe_train), "eval", "probe_train", "");
    get_str(&r, rs->probe_test, sizeof(rs->probe_test), "eval", "probe_test", "");
    return r.failed ? -1 : 0;
}

int run_config_load(TjConfig *cfg, const char *path, const char *const *overrides, int n_overrides,
                    char *err, size_t errlen) {
    if (path && config_load_file(cfg, path, err, errlen)) return -1;
    for (int i = 0; i < n_overrides; i++)
        if (config_set_override(cfg, overrides[i], err, errlen)) return -1;
    return 0;
}
