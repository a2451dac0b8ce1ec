// Evaluation on held-out shards (see evaluate.h): samples read in file order, features computed
// once per image and caption, N×N energies with the fixed evaluation masks, recalls and median
// ranks in both directions, linear probes, the JSON report and the table, the training hook.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "evaluate.h"

enum { EVAL_WARN_LIMIT = 5, EVAL_MAX_PIXELS = 1 << 26 }; // the stream's default pixel limit

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory (%zu bytes)\n", __FILE__, __LINE__, n);
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "%s:%d: out of memory (%zu bytes)\n", __FILE__, __LINE__, n);
        abort();
    }
    return q;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint for inference

int eval_arg_int(const char *cmd, const char *opt, const char *value, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi) {
        fprintf(stderr, "tijepa %s: %s '%s': expected an integer in [%ld, %ld]\n", cmd, opt, value,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int eval_parse_options(const char *cmd, int argc, char **argv, const EvalOption *opts, int n,
                       void (*usage)(FILE *)) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return TJ_EXIT_OK;
        }
        if (!v) {
            fprintf(stderr, "tijepa %s: %s needs a value\n", cmd, a);
            usage(stderr);
            return TJ_EXIT_USAGE;
        }
        i++;
        const EvalOption *o = NULL;
        for (int k = 0; k < n && !o; k++)
            if (!strcmp(a, opts[k].flag)) o = &opts[k];
        if (!o) {
            fprintf(stderr, "tijepa %s: unknown argument '%s'\n", cmd, a);
            usage(stderr);
            return TJ_EXIT_USAGE;
        }
        char err[1024];
        if (o->str) {
            *o->str = v;
        } else if (o->num) {
            if (eval_arg_int(cmd, a, v, o->lo, o->hi, o->num)) return TJ_EXIT_USAGE;
        } else if (o->take(o->ctx, argv[i], err, sizeof(err))) {
            fprintf(stderr, "tijepa %s: %s\n", cmd, err);
            return TJ_EXIT_USAGE;
        }
    }
    return EVAL_ARGS_PARSED;
}

int eval_read_file(uint8_t **out, size_t *len, const char *path, char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = xmalloc(cap);
    for (;;) {
        if (n == cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "cannot read %s", path);
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

int eval_image_file(float *tensor, ImageU8 *keep, const char *path, int image_size, char *err,
                    size_t errlen) {
    uint8_t *bytes;
    size_t n;
    if (eval_read_file(&bytes, &n, path, err, errlen)) return -1;
    ImageU8 img;
    int rc = image_decode(&img, bytes, n, EVAL_MAX_PIXELS, path, err, errlen);
    free(bytes);
    if (rc) return -1;
    image_to_tensor(tensor, &img, image_size, IMAGE_MEAN_IMAGENET, IMAGE_STD_IMAGENET);
    if (keep)
        *keep = img;
    else
        image_free(&img);
    return 0;
}

int eval_model_open(EvalModel *em, const char *ckpt_path, const char *vocab_path, int batch,
                    char *err, size_t errlen) {
    memset(em, 0, sizeof(*em));
    char cerr[CKPT_ERR_LEN];
    struct stat st;
    if (stat(ckpt_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char sub[2100];
        int r = ckpt_find_latest(ckpt_path, em->path, sizeof(em->path), cerr, sizeof(cerr));
        if (r == 1) {
            snprintf(sub, sizeof(sub), "%s/ckpt", ckpt_path);
            r = ckpt_find_latest(sub, em->path, sizeof(em->path), cerr, sizeof(cerr));
        }
        if (r) {
            if (r == 1)
                snprintf(err, errlen, "%s: no complete checkpoint found", ckpt_path);
            else
                snprintf(err, errlen, "%s", cerr);
            return -1;
        }
    } else {
        snprintf(em->path, sizeof(em->path), "%s", ckpt_path);
    }
    ckpt_path = em->path;
    CkptContent d;
    ckpt_content_init(&d);
    if (ckpt_describe(ckpt_path, &d, cerr, sizeof(cerr))) {
        snprintf(err, errlen, "%s", cerr);
        ckpt_content_free(&d);
        return -1;
    }
    const char *ini = ckpt_get_str(&d, "config");
    if (!ini) {
        snprintf(err, errlen, "%s: no \"config\" attribute (not written by tijepa train?)",
                 ckpt_path);
        ckpt_content_free(&d);
        return -1;
    }
    em->cfg = config_new();
    char cfg_err[1024];
    int bad = config_load_string(em->cfg, ini, ckpt_path, cfg_err, sizeof(cfg_err)) ||
              run_settings_resolve(&em->rs, em->cfg, cfg_err, sizeof(cfg_err));
    ckpt_content_free(&d);
    if (bad) {
        snprintf(err, errlen, "%s: its config: %s", ckpt_path, cfg_err);
        eval_model_close(em);
        return -1;
    }
    if (em->rs.model.mode == MODE_IJEPA) {
        snprintf(err, errlen,
                 "%s is an image-encoder checkpoint (model.mode = ijepa): it has no text path to "
                 "evaluate or score; name it as model.image_weights of a paper-mode run and "
                 "evaluate that run",
                 ckpt_path);
        eval_model_close(em);
        return -1;
    }
    // The run's thread count (train.threads): OpenBLAS's default of every core oversubscribes
    // shared nodes badly. `tijepa eval --threads N` overrides it afterwards.
    if (em->rs.threads > 0) model_set_threads(em->rs.threads);
    // Inference only: no negatives, so no buffers are planned for them.
    ModelConfig mc = em->rs.model;
    mc.local_batch = batch;
    mc.nce_weight = 0;
    mc.negatives = 0;
    em->m = model_new(&mc, cfg_err, sizeof(cfg_err));
    if (!em->m) {
        snprintf(err, errlen, "%s: model: %s", ckpt_path, cfg_err);
        eval_model_close(em);
        return -1;
    }
    CkptContent c;
    ckpt_content_init(&c);
    if (model_ckpt_content(&c, em->m, 0, cerr, sizeof(cerr)) ||
        ckpt_load(ckpt_path, &c, 0, cerr, sizeof(cerr))) {
        snprintf(err, errlen, "%s", cerr);
        ckpt_content_free(&c);
        eval_model_close(em);
        return -1;
    }
    int64_t step = 0;
    ckpt_get_int(&c, "step", &step);
    em->step = (long)step;
    ckpt_content_free(&c);

    // The vocabulary: the explicit one, else data.vocab, else vocab.txt beside the first shard
    // of data.train (the trainer's rule).
    char path[2100];
    if (vocab_path && *vocab_path) {
        snprintf(path, sizeof(path), "%s", vocab_path);
    } else if (em->rs.vocab[0]) {
        snprintf(path, sizeof(path), "%s", em->rs.vocab);
    } else {
        ShardList list;
        if (!em->rs.train[0] || shard_spec_expand(&list, em->rs.train, cfg_err, sizeof(cfg_err))) {
            snprintf(err, errlen,
                     "%s: the run's config names no data.vocab and its data.train cannot be "
                     "found from here: give --vocab vocab.txt",
                     ckpt_path);
            eval_model_close(em);
            return -1;
        }
        snprintf(path, sizeof(path), "%s", list.paths[0]);
        char *slash = strrchr(path, '/');
        char *base = slash ? slash + 1 : path;
        snprintf(base, sizeof(path) - (size_t)(base - path), "vocab.txt");
        shard_list_free(&list);
    }
    em->tok = tokenizer_load(path, cfg_err, sizeof(cfg_err));
    if (!em->tok) {
        snprintf(err, errlen, "%s (the vocabulary of %s; give --vocab vocab.txt if it moved)",
                 cfg_err, ckpt_path);
        eval_model_close(em);
        return -1;
    }
    if (tokenizer_vocab_size(em->tok) > em->rs.model.shape.vocab) {
        snprintf(err, errlen, "%s has %d tokens but the model of %s has a vocabulary of %d", path,
                 tokenizer_vocab_size(em->tok), ckpt_path, em->rs.model.shape.vocab);
        eval_model_close(em);
        return -1;
    }
    return 0;
}

void eval_model_close(EvalModel *em) {
    tokenizer_free(em->tok);
    model_free(em->m);
    if (em->cfg) config_free(em->cfg);
    memset(em, 0, sizeof(*em));
}

// ---------------------------------------------------------------------------------------------
// Samples in file order

void eval_samples_init(EvalSamples *s, int image_size, int max_text_len) {
    memset(s, 0, sizeof(*s));
    s->image_size = image_size;
    s->max_text_len = max_text_len;
}

static void eval_samples_reserve(EvalSamples *s, int cap) {
    if (cap <= s->cap) return;
    size_t S = (size_t)s->image_size, L = (size_t)s->max_text_len;
    s->images = xrealloc(s->images, (size_t)cap * 3 * S * S * sizeof(float));
    s->tokens = xrealloc(s->tokens, (size_t)cap * L * sizeof(int32_t));
    s->valid = xrealloc(s->valid, (size_t)cap * L);
    s->labels = xrealloc(s->labels, (size_t)cap * sizeof(int32_t));
    s->keys = xrealloc(s->keys, (size_t)cap * sizeof(char *));
    for (int i = s->cap; i < cap; i++)
        s->keys[i] = NULL;
    s->cap = cap;
}

void eval_samples_clear(EvalSamples *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->keys[i]);
        s->keys[i] = NULL;
    }
    s->n = 0;
}

void eval_samples_free(EvalSamples *s) {
    eval_samples_clear(s);
    free(s->images);
    free(s->tokens);
    free(s->valid);
    free(s->labels);
    free(s->keys);
    memset(s, 0, sizeof(*s));
}

struct EvalReader {
    ShardList list;
    int shard; // index of the next shard to open
    TarReader *tr;
    const char *shard_path;
    const Tokenizer *tok;
    int S, L;
    FILE *log;
    int warnings;
    EvalReaderStats stats;
};

static void reader_warn(EvalReader *r, const char *fmt, const char *a, const char *b,
                        const char *c) {
    if (r->warnings < EVAL_WARN_LIMIT)
        fprintf(r->log, fmt, a, b, c);
    else if (r->warnings == EVAL_WARN_LIMIT)
        fprintf(r->log, "tijepa: further warnings about skipped samples are not shown\n");
    r->warnings++;
}

EvalReader *eval_reader_open(const char *spec, const Tokenizer *tok, int image_size,
                             int max_text_len, FILE *log, char *err, size_t errlen) {
    EvalReader *r = calloc(1, sizeof(EvalReader));
    if (!r) {
        snprintf(err, errlen, "%s:%d: out of memory", __FILE__, __LINE__);
        return NULL;
    }
    if (shard_spec_expand(&r->list, spec, err, errlen)) {
        free(r);
        return NULL;
    }
    r->tok = tok;
    r->S = image_size;
    r->L = max_text_len;
    r->log = log ? log : stderr;
    return r;
}

// Decodes one checked sample into slot i of s. 0 on success, −1 (cause in why) otherwise.
static int decode_into(EvalReader *r, EvalSamples *s, int i, const TarSample *ts, char *why,
                       size_t whylen) {
    ImageU8 img;
    char what[600];
    snprintf(what, sizeof(what), "%s: sample %s", ts->shard, ts->key);
    if (image_decode(&img, ts->image, ts->image_len, EVAL_MAX_PIXELS, what, why, whylen)) return -1;
    size_t S = (size_t)r->S, L = (size_t)r->L;
    image_to_tensor(s->images + (size_t)i * 3 * S * S, &img, r->S, IMAGE_MEAN_IMAGENET,
                    IMAGE_STD_IMAGENET);
    image_free(&img);
    if (tokenizer_encode(r->tok, ts->caption, s->tokens + (size_t)i * L, s->valid + (size_t)i * L,
                         r->L, NULL, why, whylen) < 0)
        return -1;
    return 0;
}

int eval_reader_read(EvalReader *r, EvalSamples *s, int max, int labelled_only, char *err,
                     size_t errlen) {
    int added = 0;
    while (added < max) {
        if (!r->tr) {
            if (r->shard >= r->list.n) break;
            r->shard_path = r->list.paths[r->shard++];
            r->tr = tar_reader_open(r->shard_path, err, errlen);
            if (!r->tr) return -1;
        }
        TarSample ts;
        char why[1024];
        int got = tar_reader_next(r->tr, &ts, why, sizeof(why));
        if (got <= 0) {
            if (got < 0) {
                r->stats.shards_damaged++;
                fprintf(r->log, "tijepa: warning: %s; the rest of the shard is skipped\n", why);
            }
            tar_reader_close(r->tr);
            r->tr = NULL;
            continue;
        }
        r->stats.read++;
        int label = -1;
        SampleProblem pb = sample_check(&ts, EVAL_MAX_PIXELS, &label, NULL, NULL, why, sizeof(why));
        if (pb != SAMPLE_OK) {
            r->stats.skipped++;
            reader_warn(r, "tijepa: warning: %s: sample %s skipped: %s\n", ts.shard, ts.key, why);
            continue;
        }
        if (labelled_only && label < 0) {
            r->stats.skipped++;
            reader_warn(r, "tijepa: warning: %s: sample %s skipped: %s\n", ts.shard, ts.key,
                        "no .cls label");
            continue;
        }
        if (s->n == s->cap) eval_samples_reserve(s, s->cap ? 2 * s->cap : 64);
        if (decode_into(r, s, s->n, &ts, why, sizeof(why))) {
            r->stats.skipped++;
            r->stats.decode_failed++;
            reader_warn(r, "tijepa: warning: %s: sample %s skipped: %s\n", ts.shard, ts.key, why);
            continue;
        }
        s->labels[s->n] = label;
        s->keys[s->n] = strdup(ts.key);
        if (!s->keys[s->n]) {
            snprintf(err, errlen, "%s:%d: out of memory", __FILE__, __LINE__);
            return -1;
        }
        s->n++;
        added++;
        r->stats.used++;
    }
    return added;
}

void eval_reader_stats(const EvalReader *r, EvalReaderStats *out) {
    *out = r->stats;
}

void eval_reader_close(EvalReader *r) {
    if (!r) return;
    tar_reader_close(r->tr);
    shard_list_free(&r->list);
    free(r);
}

void eval_masks(MaskSet *ms, const MaskConfig *mc, int grid, uint64_t seed) {
    mask_sample(ms, mc, grid, seed ^ RNG_STREAM_EVAL, 0);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

void eval_options_default(EvalOptions *o) {
    memset(o, 0, sizeof(*o));
    o->pairs = 256;
    mask_config_default(&o->mask);
    probe_config_default(&o->probe);
}

// Retrieval on the first o->pairs usable samples of o->data.
static int eval_retrieval(EvalReport *rep, Model *m, const Tokenizer *tok, const EvalOptions *o,
                          char *err, size_t errlen) {
    const ModelShape *sh = &model_config(m)->shape;
    int S = sh->image_size, L = sh->txt_len, grid = sh->image_size / sh->patch;
    size_t P = (size_t)grid * grid;
    EvalSamples s;
    eval_samples_init(&s, S, L);
    EvalReader *r = eval_reader_open(o->data, tok, S, L, o->log, err, errlen);
    if (!r) return -1;
    int rc = 0;
    while (s.n < o->pairs) {
        int got = eval_reader_read(r, &s, o->pairs - s.n, 0, err, errlen);
        if (got < 0) rc = -1;
        if (got <= 0) break;
    }
    eval_reader_close(r);
    int n = s.n;
    if (!rc && n < 2) {
        snprintf(err, errlen, "%s: %d usable sample(s); retrieval needs at least 2", o->data, n);
        rc = -1;
    }
    if (rc) {
        eval_samples_free(&s);
        return -1;
    }
    if (n < o->pairs)
        fprintf(o->log ? o->log : stderr,
                "tijepa: note: %s holds %d usable samples; retrieval uses %d pairs, not %d\n",
                o->data, n, n, o->pairs);

    float *s_img = xmalloc((size_t)n * P * sh->img_dim * sizeof(float));
    float *u = xmalloc((size_t)n * L * sh->txt_dim * sizeof(float));
    float *energy = xmalloc((size_t)n * n * sizeof(float));
    int *img_idx = xmalloc((size_t)n * sizeof(int)), *txt_idx = xmalloc((size_t)n * sizeof(int));
    model_image_features(m, s_img, s.images, n);
    model_text_features(m, u, s.tokens, s.valid, n);
    MaskSet ms;
    if (maskset_alloc(&ms, grid)) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    eval_masks(&ms, &o->mask, grid, o->seed);
    // Row i: image i with every caption; the pair function reuses the features computed above.
    for (int j = 0; j < n; j++)
        txt_idx[j] = j;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++)
            img_idx[j] = i;
        model_pair_energies(m, energy + (size_t)i * n, s_img, u, s.valid, img_idx, txt_idx, n, &ms);
    }
    retrieval_scores(&rep->t2i, &rep->i2t, energy, n);
    double pos = 0, neg = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (i == j)
                pos += energy[(size_t)i * n + j];
            else
                neg += energy[(size_t)i * n + j];
        }
    rep->has_retrieval = 1;
    rep->pairs = n;
    rep->energy_pos = pos / n;
    rep->energy_neg = neg / ((double)n * (n - 1));
    rep->chance_r1 = retrieval_chance_recall(1, n);
    rep->chance_r5 = retrieval_chance_recall(5, n);
    rep->chance_r10 = retrieval_chance_recall(10, n);
    rep->chance_median_rank = 0.5 * (n + 1);
    maskset_free(&ms);
    free(s_img);
    free(u);
    free(energy);
    free(img_idx);
    free(txt_idx);
    eval_samples_free(&s);
    return 0;
}

// Probe features (mean over image tokens of the target crosser on the full image with its own
// caption) and labels of every labelled usable sample of spec, in chunks of the model's batch.
static int probe_features_of(float **feat, int **labels, int *count, Model *m, const Tokenizer *tok,
                             const char *spec, FILE *log, char *err, size_t errlen) {
    const ModelShape *sh = &model_config(m)->shape;
    int S = sh->image_size, L = sh->txt_len, H = sh->cross_dim;
    size_t P = (size_t)(S / sh->patch) * (S / sh->patch);
    int chunk = 64;
    EvalReader *r = eval_reader_open(spec, tok, S, L, log, err, errlen);
    if (!r) return -1;
    EvalSamples s;
    eval_samples_init(&s, S, L);
    float *s_img = xmalloc((size_t)chunk * P * sh->img_dim * sizeof(float));
    float *u = xmalloc((size_t)chunk * L * sh->txt_dim * sizeof(float));
    float *f = NULL;
    int *y = NULL, n = 0, rc = 0;
    for (;;) {
        eval_samples_clear(&s);
        int got = eval_reader_read(r, &s, chunk, 1, err, errlen);
        if (got < 0) rc = -1;
        if (got <= 0) break;
        f = xrealloc(f, (size_t)(n + got) * H * sizeof(float));
        y = xrealloc(y, (size_t)(n + got) * sizeof(int));
        model_image_features(m, s_img, s.images, got);
        model_text_features(m, u, s.tokens, s.valid, got);
        model_probe_features(m, f + (size_t)n * H, s_img, u, s.valid, got);
        for (int i = 0; i < got; i++)
            y[n + i] = s.labels[i];
        n += got;
    }
    EvalReaderStats st;
    eval_reader_stats(r, &st);
    eval_reader_close(r);
    eval_samples_free(&s);
    free(s_img);
    free(u);
    if (!rc && n == 0) {
        snprintf(err, errlen, "%s: no usable labelled sample (%ld read, %ld skipped)", spec,
                 st.read, st.skipped);
        rc = -1;
    }
    if (rc) {
        free(f);
        free(y);
        return -1;
    }
    *feat = f;
    *labels = y;
    *count = n;
    return 0;
}

static int eval_probe(ProbeResult *res, Model *m, const Tokenizer *tok, const ProbeTask *task,
                      const EvalOptions *o, char *err, size_t errlen) {
    memset(res, 0, sizeof(*res));
    snprintf(res->name, sizeof(res->name), "%s", task->name);
    int H = model_config(m)->shape.cross_dim;
    float *xtr = NULL, *xte = NULL;
    int *ytr = NULL, *yte = NULL, ntr = 0, nte = 0;
    char sub[1024];
    if (probe_features_of(&xtr, &ytr, &ntr, m, tok, task->train, o->log, sub, sizeof(sub)) ||
        probe_features_of(&xte, &yte, &nte, m, tok, task->test, o->log, sub, sizeof(sub))) {
        snprintf(err, errlen, "probe %s: %s", task->name, sub);
        free(xtr);
        free(ytr);
        return -1;
    }
    int classes = 2;
    for (int i = 0; i < ntr; i++)
        classes = ytr[i] + 1 > classes ? ytr[i] + 1 : classes;
    for (int i = 0; i < nte; i++)
        classes = yte[i] + 1 > classes ? yte[i] + 1 : classes;
    int rc = 0;
    LinearProbe lp;
    memset(&lp, 0, sizeof(lp));
    if (classes > EVAL_MAX_CLASSES) {
        snprintf(err, errlen, "probe %s: label %d: labels must lie in [0, %d)", task->name,
                 classes - 1, EVAL_MAX_CLASSES);
        rc = -1;
    } else if (probe_train(&lp, xtr, ytr, ntr, H, classes, &o->probe, sub, sizeof(sub))) {
        snprintf(err, errlen, "probe %s (%s): %s", task->name, task->train, sub);
        rc = -1;
    } else {
        int *pred = xmalloc((size_t)nte * sizeof(int));
        probe_predict(pred, &lp, xte, nte);
        res->classes = classes;
        res->n_train = ntr;
        res->n_train_balanced = lp.train_size;
        res->n_test = nte;
        res->accuracy = metric_accuracy(yte, pred, nte);
        res->weighted_f1 =
            metric_f1(res->per_class_f1, res->support, &res->macro_f1, yte, pred, nte, classes);
        int64_t most = 0;
        for (int c = 0; c < classes; c++)
            most = res->support[c] > most ? res->support[c] : most;
        res->majority_share = (double)most / nte;
        free(pred);
    }
    probe_free(&lp);
    free(xtr);
    free(ytr);
    free(xte);
    free(yte);
    return rc;
}

int evaluate_model(EvalReport *rep, Model *m, const Tokenizer *tok, const EvalOptions *o, long step,
                   char *err, size_t errlen) {
    double t0 = now_seconds();
    memset(rep, 0, sizeof(*rep));
    rep->step = step;
    if (o->pairs < 2) {
        snprintf(err, errlen, "retrieval needs at least 2 pairs (got %d)", o->pairs);
        return -1;
    }
    if (o->data && *o->data && eval_retrieval(rep, m, tok, o, err, errlen)) return -1;
    for (int k = 0; k < o->n_probes && k < EVAL_MAX_PROBES; k++) {
        if (eval_probe(&rep->probes[k], m, tok, &o->probes[k], o, err, errlen)) return -1;
        rep->n_probes = k + 1;
    }
    rep->seconds = now_seconds() - t0;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Report

static cJSON *scores_json(const RetrievalScores *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "r1", s->r1);
    cJSON_AddNumberToObject(o, "r5", s->r5);
    cJSON_AddNumberToObject(o, "r10", s->r10);
    cJSON_AddNumberToObject(o, "median_rank", s->median_rank);
    cJSON_AddNumberToObject(o, "mean_rank", s->mean_rank);
    return o;
}

int eval_report_write_json(const EvalReport *rep, const char *path, char *err, size_t errlen) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "step", (double)rep->step);
    if (rep->has_retrieval) {
        cJSON *r = cJSON_AddObjectToObject(root, "retrieval");
        cJSON_AddNumberToObject(r, "pairs", rep->pairs);
        cJSON_AddNumberToObject(r, "chance_r1", rep->chance_r1);
        cJSON_AddNumberToObject(r, "chance_r5", rep->chance_r5);
        cJSON_AddNumberToObject(r, "chance_r10", rep->chance_r10);
        cJSON_AddNumberToObject(r, "chance_median_rank", rep->chance_median_rank);
        cJSON_AddItemToObject(r, "t2i", scores_json(&rep->t2i));
        cJSON_AddItemToObject(r, "i2t", scores_json(&rep->i2t));
        cJSON_AddNumberToObject(r, "energy_pos", rep->energy_pos);
        cJSON_AddNumberToObject(r, "energy_neg", rep->energy_neg);
    }
    cJSON *probes = cJSON_AddObjectToObject(root, "probe");
    for (int k = 0; k < rep->n_probes; k++) {
        const ProbeResult *p = &rep->probes[k];
        cJSON *o = cJSON_AddObjectToObject(probes, p->name);
        cJSON_AddNumberToObject(o, "accuracy", p->accuracy);
        cJSON_AddNumberToObject(o, "weighted_f1", p->weighted_f1);
        cJSON_AddNumberToObject(o, "macro_f1", p->macro_f1);
        cJSON_AddNumberToObject(o, "classes", p->classes);
        cJSON_AddNumberToObject(o, "train", p->n_train);
        cJSON_AddNumberToObject(o, "train_balanced", p->n_train_balanced);
        cJSON_AddNumberToObject(o, "test", p->n_test);
        cJSON_AddNumberToObject(o, "majority_share", p->majority_share);
        double f1[EVAL_MAX_CLASSES], sup[EVAL_MAX_CLASSES];
        for (int c = 0; c < p->classes; c++) {
            f1[c] = p->per_class_f1[c];
            sup[c] = (double)p->support[c];
        }
        cJSON_AddItemToObject(o, "per_class_f1", cJSON_CreateDoubleArray(f1, p->classes));
        cJSON_AddItemToObject(o, "support", cJSON_CreateDoubleArray(sup, p->classes));
    }
    cJSON_AddNumberToObject(root, "seconds", rep->seconds);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory while formatting the report", path);
        return -1;
    }
    char tmp[2100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f)) ok = 0;
    free(text);
    if (!ok || rename(tmp, path)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

void eval_report_print(const EvalReport *rep, FILE *out) {
    fprintf(out, "evaluation at step %ld (%.1f s)\n", rep->step, rep->seconds);
    if (rep->has_retrieval) {
        fprintf(out, "retrieval by energy, %d pairs (chance in brackets)\n", rep->pairs);
        fprintf(out, "  %-12s %-16s %-16s %-16s %s\n", "", "R@1", "R@5", "R@10", "median rank");
        const RetrievalScores *s[2] = {&rep->t2i, &rep->i2t};
        const char *name[2] = {"text→image", "image→text"};
        for (int d = 0; d < 2; d++)
            fprintf(out, "  %-14s %.4f (%.4f)  %.4f (%.4f)  %.4f (%.4f)  %.1f (%.1f)\n", name[d],
                    s[d]->r1, rep->chance_r1, s[d]->r5, rep->chance_r5, s[d]->r10, rep->chance_r10,
                    s[d]->median_rank, rep->chance_median_rank);
        fprintf(out, "  mean energy: matching pairs %.5f, other pairs %.5f (gap %+.5f)\n",
                rep->energy_pos, rep->energy_neg, rep->energy_neg - rep->energy_pos);
    }
    for (int k = 0; k < rep->n_probes; k++) {
        const ProbeResult *p = &rep->probes[k];
        fprintf(out,
                "linear probe %s: accuracy %.4f, weighted F1 %.4f, macro F1 %.4f (%d classes, "
                "%d train → %d balanced, %d test; majority class %.4f)\n",
                p->name, p->accuracy, p->weighted_f1, p->macro_f1, p->classes, p->n_train,
                p->n_train_balanced, p->n_test, p->majority_share);
        fprintf(out, "  per-class F1:");
        for (int c = 0; c < p->classes; c++)
            fprintf(out, " %d:%.3f(n=%ld)", c, p->per_class_f1[c], (long)p->support[c]);
        fprintf(out, "\n");
    }
}

int probe_task_parse(ProbeTask *t, char *arg, char *err, size_t errlen) {
    memset(t, 0, sizeof(*t));
    char *colon = strchr(arg, ':');
    if (!colon || colon == arg || colon[1] == ':') {
        snprintf(err, errlen, "--probe '%s': expected NAME:TRAIN_SPEC:TEST_SPEC", arg);
        return -1;
    }
    if ((size_t)(colon - arg) >= sizeof(t->name)) {
        snprintf(err, errlen, "--probe '%s': the name is longer than %zu characters", arg,
                 sizeof(t->name) - 1);
        return -1;
    }
    memcpy(t->name, arg, (size_t)(colon - arg));
    char *train = colon + 1, *sep = NULL;
    for (char *p = train; *p; p++) {
        if (p[0] != ':') continue;
        if (p[1] == ':') { // a "::" belongs to the spec
            p++;
            continue;
        }
        sep = p;
        break;
    }
    if (!sep || sep == train || !sep[1]) {
        snprintf(err, errlen, "--probe '%s': expected NAME:TRAIN_SPEC:TEST_SPEC", arg);
        return -1;
    }
    *sep = 0;
    t->train = train;
    t->test = sep + 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The training hook

static int mkdir_p(const char *path) {
    char buf[1300];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

int train_evaluate(Model *m, const Tokenizer *tok, const RunSettings *rs, long step, char *err,
                   size_t errlen) {
    static int said_nothing = 0;
    EvalOptions o;
    eval_options_default(&o);
    o.data = rs->val;
    o.pairs = rs->eval_pairs;
    o.seed = rs->seed;
    o.mask = rs->mask;
    if (!rs->probe_train[0] != !rs->probe_test[0]) {
        snprintf(err, errlen, "eval.probe_train and eval.probe_test must be set together");
        return -1;
    }
    if (rs->probe_train[0]) {
        snprintf(o.probes[0].name, sizeof(o.probes[0].name), "probe");
        o.probes[0].train = rs->probe_train;
        o.probes[0].test = rs->probe_test;
        o.n_probes = 1;
    }
    if (!rs->val[0] && !o.n_probes) {
        if (!said_nothing)
            printf("eval: nothing to evaluate (set data.val and/or eval.probe_train + "
                   "eval.probe_test)\n");
        said_nothing = 1;
        return 0;
    }
    EvalReport rep;
    if (evaluate_model(&rep, m, tok, &o, step, err, errlen)) return -1;
    char dir[1300], path[1400];
    snprintf(dir, sizeof(dir), "%s/eval", rs->dir);
    if (mkdir_p(dir)) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/step-%08ld.json", dir, step);
    if (eval_report_write_json(&rep, path, err, errlen)) return -1;
    printf("eval   %6ld/%d", step, rs->steps);
    if (rep.has_retrieval)
        printf("  t2i R@1 %.3f R@5 %.3f (chance %.3f %.3f)  i2t R@1 %.3f  median rank %.1f/%.1f "
               "of %d  gap %+.4f",
               rep.t2i.r1, rep.t2i.r5, rep.chance_r1, rep.chance_r5, rep.i2t.r1,
               rep.t2i.median_rank, rep.i2t.median_rank, rep.pairs,
               rep.energy_neg - rep.energy_pos);
    for (int k = 0; k < rep.n_probes; k++)
        printf("  %s acc %.3f wF1 %.3f", rep.probes[k].name, rep.probes[k].accuracy,
               rep.probes[k].weighted_f1);
    printf("  (%.1f s) → %s\n", rep.seconds, path);
    fflush(stdout);
    return 0;
}
