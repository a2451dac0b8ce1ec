// tijepa encode: runs the frozen encoders of a paper-mode model once over pixel shards and writes
// feature shards (io.h "Feature shards", docs/encoders.md), so that training with
// data.features = true streams s and u instead of pixels and skips both encoders.
//
// Input shard i becomes output shard PATTERN % i with the same usable samples in the same order,
// so a feature run reads the same batches as the pixel run on the same seed. Under mpirun the
// ranks share the input shards (shard i on rank i mod world); no communication is needed.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist.h"
#include "evaluate.h"
#include "launch.h"

static void usage(FILE *to) {
    fprintf(
        to,
        "usage: tijepa encode (--ckpt PATH | --config FILE [--set section.key=value ...])\n"
        "                     [--data SPEC] --out PATTERN [--per-shard N] [--batch N]\n"
        "                     [--threads N] [--vocab FILE]\n"
        "  Runs the frozen image and text encoders of a paper-mode model (from a checkpoint,\n"
        "  or from a config: run.seed, model.image_weights, model.text_weights) once over the\n"
        "  shards of SPEC (default: data.train) and writes feature shards (.img.f32, .txt.f32,\n"
        "  .valid.u8, plus .txt/.cls/.json kept) for training with data.features = true.\n"
        "  PATTERN has one integer conversion, e.g. feat/train-%%06d.tar: input shard i is\n"
        "  written to PATTERN %% i with the same samples in the same order (the batches of a\n"
        "  feature run then equal the pixel run's). --per-shard N re-shards instead, N samples\n"
        "  per output shard, in input order (one rank only; the batches then differ).\n"
        "  --batch: samples per encoder call (default 32). Under mpirun the ranks share the\n"
        "  input shards. Writes features.ini (the encoders' fingerprint, checked by training)\n"
        "  and vocab.txt beside the output shards.\n");
}

// A growable text buffer, reused from sample to sample.
typedef struct {
    char *p;
    size_t len, cap;
    int set;
} Text;

static void text_set(Dist *d, Text *t, const char *src, size_t n) {
    t->set = src != NULL;
    if (!src) return;
    if (n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) dist_abort(d, "encode: out of memory");
        t->p = p, t->cap = cap;
    }
    memcpy(t->p, src, n);
    t->p[n] = 0;
    t->len = n;
}

typedef struct {
    Dist *d;
    Model *m;
    const Tokenizer *tok;
    ModelShape shape;
    int batch, P, S, L;
    size_t max_pixels;
    float mean[3], std[3];
    // the chunk of decoded samples waiting for the encoders
    int n;
    float *images, *img_feat, *txt_feat;
    int32_t *tokens;
    uint8_t *valid, *bytes;
    Text *key, *caption, *cls, *json;
    // output
    const char *pattern;
    long per_shard, in_out; // re-sharding: samples per output shard, written to the current one
    int out_index, out_shards;
    TarWriter *w;
    char out_path[2200];
    // counts (summed over ranks at the end)
    long read, written, skipped, decode_failed, damaged;
    int warnings;
} Encoder;

static void warnf(Encoder *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(Encoder *e, const char *fmt, ...) {
    if (e->warnings++ >= 10) return;
    char msg[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char rank[32] = "";
    if (e->d->world > 1) snprintf(rank, sizeof(rank), "[rank %d]", e->d->rank);
    fprintf(stderr, "tijepa encode%s: %s%s\n", rank, msg,
            e->warnings == 10 ? " (further warnings suppressed, still counted)" : "");
}

static int mkdirs(const char *path) {
    char buf[2200];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

// The folder part of path ("." when none).
static void dir_of(char *out, size_t cap, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

static void open_output(Encoder *e, int index) {
    char err[1024], dir[2200];
    snprintf(e->out_path, sizeof(e->out_path), e->pattern, index);
    dir_of(dir, sizeof(dir), e->out_path);
    if (mkdirs(dir)) dist_abort(e->d, "encode: cannot create %s: %s", dir, strerror(errno));
    e->w = tar_writer_open(e->out_path, err, sizeof(err));
    if (!e->w) dist_abort(e->d, "encode: %s", err);
    e->out_shards++;
}

static void close_output(Encoder *e) {
    char err[1024];
    if (!e->w) return;
    if (tar_writer_close(e->w, err, sizeof(err))) dist_abort(e->d, "encode: %s", err);
    e->w = NULL;
}

static void add_member(Encoder *e, const char *key, const char *ext, const void *data, size_t n) {
    char name[1200], err[1024];
    snprintf(name, sizeof(name), "%s.%s", key, ext);
    if (tar_writer_add(e->w, name, data, n, err, sizeof(err)))
        dist_abort(e->d, "encode: %s: %s", e->out_path, err);
}

// Encodes the waiting chunk and writes its samples (members in sorted extension order, as
// webdataset's writer does).
static void flush(Encoder *e) {
    if (e->n == 0) return;
    int n = e->n;
    size_t img = (size_t)e->P * e->shape.img_dim, txt = (size_t)e->L * e->shape.txt_dim;
    model_image_features(e->m, e->img_feat, e->images, n);
    model_text_features(e->m, e->txt_feat, e->tokens, e->valid, n);
    for (int j = 0; j < n; j++) {
        if (e->per_shard > 0 && !e->w) open_output(e, e->out_index);
        const char *key = e->key[j].p;
        if (e->cls[j].set) add_member(e, key, "cls", e->cls[j].p, e->cls[j].len);
        f32_to_le(e->bytes, e->img_feat + j * img, img);
        add_member(e, key, FEATURE_EXT_IMG, e->bytes, img * 4);
        if (e->json[j].set) add_member(e, key, "json", e->json[j].p, e->json[j].len);
        add_member(e, key, "txt", e->caption[j].p, e->caption[j].len);
        f32_to_le(e->bytes, e->txt_feat + j * txt, txt);
        add_member(e, key, FEATURE_EXT_TXT, e->bytes, txt * 4);
        add_member(e, key, FEATURE_EXT_VALID, e->valid + (size_t)j * e->L, (size_t)e->L);
        e->written++;
        if (e->per_shard > 0 && ++e->in_out == e->per_shard) {
            close_output(e);
            e->out_index++;
            e->in_out = 0;
        }
    }
    e->n = 0;
}

// One sample as the training stream sees it: the same cheap checks, decode and tokenisation.
static void take_sample(Encoder *e, const TarSample *t) {
    char why[256], err[1024], what[1500];
    e->read++;
    int label;
    SampleProblem p = sample_check(t, e->max_pixels, &label, NULL, NULL, why, sizeof(why));
    if (p != SAMPLE_OK) { // the stream skips it too: the usable samples stay the same
        e->skipped++;
        warnf(e, "skipping sample '%s' in %s: %s", t->key, t->shard, why);
        return;
    }
    int j = e->n;
    snprintf(what, sizeof(what), "%s:%s", t->shard, t->key);
    ImageU8 img = {0};
    int bad = image_decode(&img, t->image, t->image_len, e->max_pixels, what, err, sizeof(err));
    if (!bad) {
        image_to_tensor(e->images + (size_t)j * 3 * e->S * e->S, &img, e->S, e->mean, e->std);
        bad = tokenizer_encode(e->tok, t->caption, e->tokens + (size_t)j * e->L,
                               e->valid + (size_t)j * e->L, e->L, NULL, err, sizeof(err)) < 0;
    }
    image_free(&img);
    if (bad) {
        e->decode_failed++;
        warnf(e,
              "sample '%s' in %s failed to decode (%s): left out of the feature shard (the pixel "
              "stream puts a neighbour of its batch in its place, so the two runs differ from that "
              "batch on)",
              t->key, t->shard, err);
        return;
    }
    text_set(e->d, &e->key[j], t->key, strlen(t->key));
    text_set(e->d, &e->caption[j], t->caption, t->caption_len);
    text_set(e->d, &e->cls[j], t->cls, t->cls_len);
    text_set(e->d, &e->json[j], t->json, t->json_len);
    if (++e->n == e->batch) flush(e);
}

static void encode_shard(Encoder *e, const char *path) {
    char err[1024];
    TarReader *r = tar_reader_open(path, err, sizeof(err));
    if (!r) { // the stream skips an unreadable shard: an empty output keeps the shard count
        e->damaged++;
        warnf(e, "%s (shard skipped: its output is empty)", err);
        return;
    }
    TarSample t;
    int rc;
    while ((rc = tar_reader_next(r, &t, err, sizeof(err))) == 1)
        take_sample(e, &t);
    if (rc < 0) {
        e->damaged++;
        warnf(e, "%s (rest of the shard skipped, as the training stream does)", err);
    }
    tar_reader_close(r);
}

static void alloc_encoder(Encoder *e) {
    size_t B = (size_t)e->batch;
    size_t img = (size_t)e->P * e->shape.img_dim, txt = (size_t)e->L * e->shape.txt_dim;
    e->images = malloc(B * 3 * e->S * e->S * sizeof(float));
    e->img_feat = malloc(B * img * sizeof(float));
    e->txt_feat = malloc(B * txt * sizeof(float));
    e->tokens = malloc(B * e->L * sizeof(int32_t));
    e->valid = malloc(B * e->L);
    e->bytes = malloc((img > txt ? img : txt) * 4);
    e->key = calloc(B, sizeof(Text));
    e->caption = calloc(B, sizeof(Text));
    e->cls = calloc(B, sizeof(Text));
    e->json = calloc(B, sizeof(Text));
    if (!e->images || !e->img_feat || !e->txt_feat || !e->tokens || !e->valid || !e->bytes ||
        !e->key || !e->caption || !e->cls || !e->json)
        dist_abort(e->d, "encode: out of memory for a chunk of %d samples", e->batch);
}

static void free_encoder(Encoder *e) {
    for (int j = 0; e->key && j < e->batch; j++)
        free(e->key[j].p), free(e->caption[j].p), free(e->cls[j].p), free(e->json[j].p);
    free(e->images), free(e->img_feat), free(e->txt_feat), free(e->tokens), free(e->valid);
    free(e->bytes), free(e->key), free(e->caption), free(e->cls), free(e->json);
}

// The vocabulary the pixel run tokenises with, written beside the feature shards so that the
// trainer's rule (vocab.txt beside the first training shard) finds it.
static void write_vocab(Encoder *e, const char *dir) {
    char path[2300];
    snprintf(path, sizeof(path), "%s/vocab.txt", dir);
    FILE *f = fopen(path, "r");
    if (f) { // present: keep it
        fclose(f);
        return;
    }
    f = fopen(path, "w");
    if (!f) dist_abort(e->d, "encode: cannot write %s: %s", path, strerror(errno));
    int n = tokenizer_vocab_size(e->tok), bad = 0;
    for (int i = 0; i < n && !bad; i++)
        bad = fprintf(f, "%s\n", tokenizer_token(e->tok, i)) < 0;
    if (fclose(f) || bad) dist_abort(e->d, "encode: cannot write %s", path);
}

int cmd_encode(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return TJ_EXIT_OK;
        }
    const char *ckpt = NULL, *config = NULL, *data = NULL, *out = NULL, *vocab = NULL;
    long per_shard = 0, batch = 32, threads = 0;
    const char **sets = calloc((size_t)argc, sizeof(char *));
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = v != NULL;
        if (ok && !strcmp(a, "--ckpt"))
            ckpt = v;
        else if (ok && !strcmp(a, "--config"))
            config = v;
        else if (ok && !strcmp(a, "--set"))
            sets[n_sets++] = v;
        else if (ok && !strcmp(a, "--data"))
            data = v;
        else if (ok && !strcmp(a, "--out"))
            out = v;
        else if (ok && !strcmp(a, "--vocab"))
            vocab = v;
        else if (ok && !strcmp(a, "--per-shard")) {
            if (eval_arg_int("encode", a, v, 1, 1L << 40, &per_shard)) return TJ_EXIT_USAGE;
        } else if (ok && !strcmp(a, "--batch")) {
            if (eval_arg_int("encode", a, v, 1, 4096, &batch)) return TJ_EXIT_USAGE;
        } else if (ok && !strcmp(a, "--threads")) {
            if (eval_arg_int("encode", a, v, 1, 1024, &threads)) return TJ_EXIT_USAGE;
        } else {
            fprintf(stderr, "tijepa encode: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            free(sets);
            return TJ_EXIT_USAGE;
        }
        i++;
    }
    char err[2048];
    if (!out || (!ckpt == !config) || (ckpt && n_sets)) {
        fprintf(stderr, "tijepa encode: give --out and exactly one of --ckpt and --config "
                        "(--set goes with --config)\n");
        usage(stderr);
        free(sets);
        return TJ_EXIT_USAGE;
    }
    if (shard_pattern_check(out, err, sizeof(err))) {
        fprintf(stderr, "tijepa encode: --out: %s\n", err);
        free(sets);
        return TJ_EXIT_USAGE;
    }

    Encoder e;
    memset(&e, 0, sizeof(e));
    e.d = dist_init(&argc, &argv);
    if (per_shard > 0 && e.d->world > 1)
        dist_abort(e.d, "encode: --per-shard re-shards in input order and runs on one rank; "
                        "without it the ranks share the input shards");
    EvalModel em;
    memset(&em, 0, sizeof(em));
    TjConfig *cfg = NULL;
    RunSettings rs;
    Tokenizer *own_tok = NULL;
    char weights[2300];
    if (ckpt) {
        if (eval_model_open(&em, ckpt, vocab, (int)batch, err, sizeof(err)))
            dist_abort(e.d, "encode: %s", err);
        rs = em.rs;
        e.m = em.m;
        e.tok = em.tok;
        snprintf(weights, sizeof(weights), "checkpoint %s (step %ld)", em.path, em.step);
    } else {
        cfg = config_new();
        if (run_config_load(cfg, config, sets, n_sets, err, sizeof(err)) ||
            run_settings_resolve(&rs, cfg, err, sizeof(err)))
            dist_abort(e.d, "encode: config: %s", err);
    }
    free(sets);
    if (rs.model.mode != MODE_PAPER)
        dist_abort(e.d,
                   "encode: the model is in %s mode, which trains the image encoder, so its "
                   "features change every step and cannot be cached: feature shards are for "
                   "model.mode = paper (frozen encoders)",
                   rs.model.mode == MODE_SCRATCH ? "scratch" : "a non-paper");
    if (!data) data = rs.train;
    if (!data[0]) dist_abort(e.d, "encode: no --data and the config names no data.train");
    ShardList shards;
    if (shard_spec_expand(&shards, data, err, sizeof(err))) dist_abort(e.d, "encode: %s", err);
    // Before model_new: the thread pools are set up once, as in training.
    model_set_threads(threads > 0 ? (int)threads : rs.threads);
    if (!ckpt) { // the frozen encoders exactly as `tijepa train` initialises them
        ModelConfig mc = rs.model;
        mc.local_batch = (int)batch;
        mc.nce_weight = 0, mc.negatives = 0;
        e.m = model_new(&mc, err, sizeof(err));
        if (!e.m) dist_abort(e.d, "encode: model: %s", err);
        model_init_weights(e.m, rs.seed);
        if (pretrained_apply(e.m, &rs, e.d->rank == 0 ? stdout : NULL, err, sizeof(err)))
            dist_abort(e.d, "encode: %s", err);
        char path[2200];
        if (vocab)
            snprintf(path, sizeof(path), "%s", vocab);
        else if (rs.vocab[0])
            snprintf(path, sizeof(path), "%s", rs.vocab);
        else { // vocab.txt beside the first input shard (the trainer's rule)
            char dir[2100];
            dir_of(dir, sizeof(dir), shards.paths[0]);
            snprintf(path, sizeof(path), "%s/vocab.txt", dir);
        }
        own_tok = tokenizer_load(path, err, sizeof(err));
        if (!own_tok) dist_abort(e.d, "encode: %s (give --vocab or data.vocab)", err);
        if (tokenizer_vocab_size(own_tok) > rs.model.shape.vocab)
            dist_abort(e.d, "encode: %s has %d tokens but model.vocab is %d", path,
                       tokenizer_vocab_size(own_tok), rs.model.shape.vocab);
        e.tok = own_tok;
        snprintf(weights, sizeof(weights), "config %s: run.seed %llu%s%s%s%s", config,
                 (unsigned long long)rs.seed, rs.image_weights[0] ? ", image " : "",
                 rs.image_weights, rs.text_weights[0] ? ", text " : "", rs.text_weights);
    }

    e.shape = rs.model.shape;
    e.batch = (int)batch;
    e.S = e.shape.image_size, e.L = e.shape.txt_len;
    e.P = (e.S / e.shape.patch) * (e.S / e.shape.patch);
    StreamOptions so; // the training stream's limits and normalisation
    stream_options_default(&so);
    e.max_pixels = so.max_pixels;
    memcpy(e.mean, so.mean, sizeof(e.mean));
    memcpy(e.std, so.std, sizeof(e.std));
    e.pattern = out;
    e.per_shard = per_shard;
    alloc_encoder(&e);

    double t0 = dist_time();
    for (int i = 0; i < shards.n; i++) {
        if (per_shard == 0) {
            if (i % e.d->world != e.d->rank) continue;
            open_output(&e, i);
        }
        encode_shard(&e, shards.paths[i]);
        if (per_shard == 0) {
            flush(&e);
            close_output(&e);
            if (e.d->world == 1 || e.d->rank == 0)
                printf("encode: %s -> %s\n", shards.paths[i], e.out_path);
        }
    }
    flush(&e);
    close_output(&e);
    double seconds = dist_time() - t0;

    double counts[7] = {(double)e.read,    (double)e.written,       (double)e.skipped,
                        (double)e.damaged, (double)e.decode_failed, (double)e.out_shards,
                        (double)e.warnings};
    dist_sum_doubles(e.d, counts, 7);
    dist_max_doubles(e.d, &seconds, 1);
    if (e.d->rank == 0) {
        char first[2200], dir[2200];
        snprintf(first, sizeof(first), out, 0);
        dir_of(dir, sizeof(dir), first);
        if (features_write_info(dir, e.m, data, weights, (long)counts[1], (int)counts[5], err,
                                sizeof(err)))
            dist_abort(e.d, "encode: %s", err);
        write_vocab(&e, dir);
        printf("tijepa encode: %.0f samples from %d shard(s) into %.0f feature shard(s) in %s "
               "(%.0f read, %.0f skipped, %.0f failed to decode, %.0f damaged shard(s)); "
               "%.1f s, %.1f samples/s on %d rank(s)\n",
               counts[1], shards.n, counts[5], dir, counts[0], counts[2], counts[4], counts[3],
               seconds, counts[1] / (seconds > 0 ? seconds : 1), e.d->world);
        fflush(stdout);
    }
    free_encoder(&e);
    shard_list_free(&shards);
    if (ckpt) {
        eval_model_close(&em);
    } else {
        model_free(e.m);
        tokenizer_free(own_tok);
        config_free(cfg);
    }
    dist_finalize(e.d);
    return TJ_EXIT_OK;
}
