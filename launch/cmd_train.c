// tijepa train: data-parallel pre-training over MPI (alone it is one rank).
// Each rank: stream its part of every global batch → text encoder → negative pool (allgather) →
// forward + backward with bucketed gradient allreduces started as gradients become final →
// AdamW + EMA → metrics; rank 0 writes metrics, progress and checkpoints.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "checkpoint.h"
#include "dist.h"
#include "evaluate.h"
#include "launch.h"

static volatile sig_atomic_t stop_requested = 0;
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *to) {
    fprintf(to, "usage: tijepa train --config FILE [--set section.key=value ...] "
                "[--resume auto|PATH]\n"
                "  Pre-trains TI-JEPA; run alone or under mpirun/srun for several ranks.\n");
}

typedef struct {
    Dist *d;
    RunSettings rs;
    TjConfig *cfg;
    Model *m;
    Tokenizer *tok;
    Stream *stream;
    GradBuckets *buckets;
    MaskSet masks;
    int local_batch, first_trainable;
    float *pool_u;
    uint8_t *pool_valid;
    int *negatives;
    FILE *metrics;
    long start_step;
    int bad_in_row;
    long bad_total;
} Trainer;

static void on_grad_ready(void *ctx, int tensor) {
    Trainer *t = ctx;
    buckets_mark_ready(t->buckets, tensor - t->first_trainable);
    buckets_progress(t->buckets);
}

static int mkdirs(const char *path) {
    char buf[1200];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

// The vocabulary: data.vocab, else vocab.txt next to the first training shard.
static Tokenizer *load_tokenizer(Trainer *t) {
    char err[1024], path[2100];
    if (t->rs.vocab[0]) {
        snprintf(path, sizeof(path), "%s", t->rs.vocab);
    } else {
        ShardList list;
        if (shard_spec_expand(&list, t->rs.train, err, sizeof(err)))
            dist_abort(t->d, "data.train: %s", err);
        snprintf(path, sizeof(path), "%s", list.paths[0]);
        char *slash = strrchr(path, '/');
        snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
                 "vocab.txt");
        shard_list_free(&list);
    }
    Tokenizer *tok = tokenizer_load(path, err, sizeof(err));
    if (!tok)
        dist_abort(t->d, "data.vocab: %s (set data.vocab or build one with tijepa vocab)", err);
    if (tokenizer_vocab_size(tok) > t->rs.model.shape.vocab)
        dist_abort(t->d, "%s has %d tokens but model.vocab is %d: raise model.vocab", path,
                   tokenizer_vocab_size(tok), t->rs.model.shape.vocab);
    return tok;
}

// SLURM job and node list, when the run is a SLURM job (provenance for a checkpoint).
static int set_provenance(CkptContent *c, char *err, size_t errlen) {
    const char *vars[][2] = {{"SLURM_JOB_ID", "slurm_job_id"},
                             {"SLURM_JOB_NODELIST", "slurm_nodelist"},
                             {"SLURM_RESTART_COUNT", "slurm_restart_count"}};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i][0]);
        if (v && ckpt_set_str(c, vars[i][1], v, err, errlen)) return -1;
    }
    return 0;
}

// Checkpoint of the current state at `step` (the number of updates done), by rank 0.
static void save_checkpoint(Trainer *t, long step) {
    char err[CKPT_ERR_LEN];
    StreamCursor cur;
    stream_cursor(t->stream, &cur);
    int64_t words[STREAM_CURSOR_WORDS];
    stream_cursor_pack(words, &cur);
    int64_t *all = NULL;
    if (t->d->rank == 0) all = calloc((size_t)t->d->world * STREAM_CURSOR_WORDS, sizeof(int64_t));
    dist_gather_bytes(t->d, all, (size_t)t->d->world * sizeof(words), NULL, words, sizeof(words),
                      0);
    int failed = 0;
    if (t->d->rank == 0) {
        CkptContent c;
        ckpt_content_init(&c);
        char *ini = config_to_ini(t->cfg);
        int64_t rng_state[2] = {(int64_t)t->rs.seed, step}; // counter-based: (seed, step) is all
        char dir[1200];
        snprintf(dir, sizeof(dir), "%s/ckpt", t->rs.dir);
        if (model_ckpt_content(&c, t->m, 1, err, sizeof(err)) ||
            ckpt_set_str(&c, "config", ini, err, sizeof(err)) ||
            ckpt_set_str(&c, "preset", t->rs.preset, err, sizeof(err)) ||
            ckpt_set_int(&c, "world_size", t->d->world, err, sizeof(err)) ||
            ckpt_set_int(&c, "split", t->rs.split, err, sizeof(err)) ||
            ckpt_set_int(&c, "bad_steps", t->bad_total, err, sizeof(err)) ||
            ckpt_add_blob(&c, "data_cursor", t->d->world, STREAM_CURSOR_WORDS, all, err,
                          sizeof(err)) ||
            ckpt_add_blob(&c, "rng", 1, 2, rng_state, err, sizeof(err)) ||
            set_provenance(&c, err, sizeof(err)) ||
            ckpt_save(dir, step, &c, t->rs.keep_last, err, sizeof(err))) {
            fprintf(stderr, "tijepa: checkpoint at step %ld failed: %s\n", step, err);
            failed = 1;
        }
        free(ini);
        ckpt_content_free(&c);
        free(all);
    }
    if (dist_any(t->d, failed)) dist_abort(t->d, "stopping: the checkpoint could not be written");
}

// Restores model, optimiser, step and data cursor from a checkpoint (every rank reads it).
static void resume_from(Trainer *t, const char *spec, StreamCursor *cursor, int *have_cursor) {
    char err[CKPT_ERR_LEN], path[2048];
    if (!strcmp(spec, "auto")) {
        char dir[1200];
        snprintf(dir, sizeof(dir), "%s/ckpt", t->rs.dir);
        int r = ckpt_find_latest(dir, path, sizeof(path), err, sizeof(err));
        if (r < 0) dist_abort(t->d, "--resume auto: %s", err);
        if (r == 1) {
            if (t->d->rank == 0) printf("resume: no checkpoint in %s, starting fresh\n", dir);
            return;
        }
    } else {
        snprintf(path, sizeof(path), "%s", spec);
    }
    CkptContent c;
    ckpt_content_init(&c);
    if (model_ckpt_content(&c, t->m, 1, err, sizeof(err)) ||
        ckpt_load(path, &c, 0, err, sizeof(err)))
        dist_abort(t->d, "resume from %s: %s", path, err);
    int64_t step = 0, split = -1, world = 0;
    ckpt_get_int(&c, "step", &step);
    ckpt_get_int(&c, "split", &split);
    ckpt_get_int(&c, "world_size", &world);
    if (split != t->rs.split)
        dist_abort(t->d, "resume from %s: written with data.split=%s, now %s", path,
                   split == SPLIT_SHARD ? "shard" : "sample",
                   t->rs.split == SPLIT_SHARD ? "shard" : "sample");
    if (t->rs.split == SPLIT_SHARD && world != t->d->world)
        dist_abort(t->d,
                   "resume from %s: written by %ld ranks, now %d; data.split=shard cannot "
                   "change the number of ranks (use data.split=sample for elastic resume)",
                   path, (long)world, t->d->world);
    const CkptBlob *cb = ckpt_get_blob(&c, "data_cursor");
    if (!cb || cb->cols != STREAM_CURSOR_WORDS)
        dist_abort(t->d, "resume from %s: the data cursor is missing or malformed", path);
    if (stream_cursor_unpack(cursor, cb->data, err, sizeof(err)))
        dist_abort(t->d, "resume from %s: data cursor: %s", path, err);
    *have_cursor = 1;
    int64_t bad = 0;
    ckpt_get_int(&c, "bad_steps", &bad);
    t->bad_total = bad;
    t->start_step = step;
    ckpt_content_free(&c);
    if (t->d->rank == 0) printf("resume: %s (step %ld)\n", path, (long)step);
}

// Per-step figures reduced across ranks (means), in the order of the JSON fields.
typedef struct {
    double loss, jepa, nce, energy_pos, energy_neg, pred_std;
    double data_wait_ms, comm_exposed_ms, buckets_overlapped, skipped_samples;
} StepMetrics;
#define STEP_METRICS_N (int)(sizeof(StepMetrics) / sizeof(double))

// Window averages of the timing fields, next to the last step's losses.
typedef struct {
    double data_wait_ms, comm_exposed_ms;
    long steps;
    double start;
} Window;

static void write_metrics(Trainer *t, long step, const StepMetrics *v, const Window *w, double lr,
                          double wd, double ema, double gnorm, double sps, int n_buckets,
                          double elapsed) {
    if (!t->metrics) return;
    double step_ms = t->rs.global_batch / (sps > 0 ? sps : 1) * 1e3;
    fprintf(t->metrics,
            "{\"step\": %ld, \"loss\": %.7g, \"jepa\": %.7g, \"nce\": %.7g, "
            "\"energy_pos\": %.7g, \"energy_neg\": %.7g, \"energy_gap\": %.7g, "
            "\"pred_std\": %.7g, \"lr\": %.7g, \"wd\": %.7g, \"ema\": %.7g, "
            "\"grad_norm\": %.7g, \"samples_per_s\": %.2f, \"step_ms\": %.3f, "
            "\"comm_exposed_ms\": %.3f, \"data_wait_ms\": %.3f, \"buckets\": %d, "
            "\"buckets_started_in_backward\": %.0f, \"skipped_samples\": %.0f, "
            "\"bad_steps\": %ld, \"time\": %.3f}\n",
            step, v->loss, v->jepa, v->nce, v->energy_pos, v->energy_neg,
            v->energy_neg - v->energy_pos, v->pred_std, lr, wd, ema, gnorm, sps, step_ms,
            w->comm_exposed_ms / w->steps, w->data_wait_ms / w->steps, n_buckets,
            v->buckets_overlapped, v->skipped_samples, t->bad_total, elapsed);
    fflush(t->metrics);
}

// metrics.jsonl for a run that starts at start_step: a resumed run keeps the lines of the steps
// up to its checkpoint and drops later ones (written after that checkpoint by a run that was
// killed without saving), so every step appears once.
static FILE *open_metrics(const char *path, long start_step) {
    if (start_step <= 0) return fopen(path, "w");
    char tmp[1400], line[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    if (!out) {
        if (in) fclose(in);
        return NULL;
    }
    while (in && fgets(line, sizeof(line), in)) {
        long step;
        if (sscanf(line, "{\"step\": %ld", &step) == 1 && step <= start_step) fputs(line, out);
    }
    if (in) fclose(in);
    if (fclose(out) || rename(tmp, path)) return NULL;
    return fopen(path, "a");
}

static void setup(Trainer *t, int argc, char **argv, const char **resume) {
    char err[2048];
    const char *config_path = NULL;
    const char **sets = calloc((size_t)argc, sizeof(char *));
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config_path = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc)
            sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc)
            *resume = argv[++i];
        else {
            if (t->d->rank == 0) {
                fprintf(stderr, "tijepa train: unknown argument '%s'\n", argv[i]);
                usage(stderr);
            }
            dist_finalize(t->d);
            exit(TJ_EXIT_USAGE);
        }
    }
    t->cfg = config_new();
    if (run_config_load(t->cfg, config_path, sets, n_sets, err, sizeof(err)) ||
        run_settings_resolve(&t->rs, t->cfg, err, sizeof(err)))
        dist_abort(t->d, "config: %s", err);
    free(sets);
    RunSettings *rs = &t->rs;
    if (!rs->train[0]) dist_abort(t->d, "config: data.train is not set");
    if (rs->global_batch % t->d->world)
        dist_abort(t->d, "train.global_batch=%d is not divisible by the %d ranks", rs->global_batch,
                   t->d->world);
    t->local_batch = rs->global_batch / t->d->world;
    model_set_threads(rs->threads);

    // provenance
    const char *job = getenv("SLURM_JOB_ID"), *nodes = getenv("SLURM_JOB_NODELIST");
    config_set(t->cfg, "provenance", "world_size", "");
    char buf[64];
    snprintf(buf, sizeof(buf), "%d", t->d->world);
    config_set(t->cfg, "provenance", "world_size", buf);
    config_set(t->cfg, "provenance", "version", TIJEPA_VERSION);
    if (job) config_set(t->cfg, "provenance", "slurm_job_id", job);
    if (nodes) config_set(t->cfg, "provenance", "slurm_nodelist", nodes);
    const char *restarts = getenv("SLURM_RESTART_COUNT");
    if (restarts) config_set(t->cfg, "provenance", "slurm_restart_count", restarts);
    config_set(t->cfg, "provenance", "rank0_host", t->d->hostname);

    rs->model.local_batch = t->local_batch;
    t->m = model_new(&rs->model, err, sizeof(err));
    if (!t->m) dist_abort(t->d, "model: %s", err);
    model_init_weights(t->m, rs->seed);
    // pretrained encoders (model.image_weights / model.text_weights): rank 0 reads, the broadcast
    // below gives every rank the same tensors; a resumed run overwrites them from its checkpoint
    if (!*resume && t->d->rank == 0 && pretrained_apply(t->m, rs, stdout, err, sizeof(err)))
        dist_abort(t->d, "%s", err);
    t->first_trainable = model_first_trainable_tensor(t->m);
    // Every rank initialises identically from the seed; the broadcast makes it a guarantee.
    dist_bcast_floats(t->d, model_params(t->m), model_num_params(t->m), 0);
    dist_bcast_floats(t->d, model_ema(t->m), model_ema_count(t->m), 0);

    int n_tensors;
    const TensorInfo *ti = model_tensors(t->m, &n_tensors);
    int n_train = n_tensors - t->first_trainable;
    size_t *offs = calloc((size_t)n_train, sizeof(size_t)),
           *sizes = calloc((size_t)n_train, sizeof(size_t));
    for (int i = 0; i < n_train; i++) {
        offs[i] = ti[t->first_trainable + i].offset - model_trainable_offset(t->m);
        sizes[i] = ti[t->first_trainable + i].numel;
    }
    t->buckets = buckets_new(t->d, model_grads(t->m), model_trainable_count(t->m),
                             (size_t)(rs->bucket_mb * 1048576.0), offs, sizes, n_train);
    free(offs);
    free(sizes);
    if (!t->buckets) dist_abort(t->d, "gradient buckets could not be built");

    maskset_alloc(&t->masks, rs->model.shape.image_size / rs->model.shape.patch);
    const ModelShape *s = &rs->model.shape;
    size_t row = (size_t)s->txt_len * s->txt_dim;
    t->pool_u = calloc((size_t)rs->global_batch * row, sizeof(float));
    t->pool_valid = calloc((size_t)rs->global_batch * s->txt_len, 1);
    t->negatives = calloc((size_t)t->local_batch * (rs->model.negatives + 1), sizeof(int));
    t->tok = load_tokenizer(t);
}

static void open_stream(Trainer *t, const StreamCursor *resume) {
    char err[2048];
    StreamOptions so;
    stream_options_default(&so);
    so.spec = t->rs.train;
    so.seed = t->rs.seed;
    so.image_size = t->rs.model.shape.image_size;
    so.max_text_len = t->rs.model.shape.txt_len;
    so.tokenizer = t->tok;
    so.split = t->rs.split;
    so.rank = t->d->rank;
    so.world = t->d->world;
    so.global_batch = t->rs.global_batch;
    so.shuffle_buffer = t->rs.shuffle_buffer;
    so.prefetch = t->rs.prefetch;
    so.warn_limit = t->d->rank == 0 ? 10 : 0;
    if (t->rs.features) { // feature shards (tijepa encode): s and u instead of pixels
        const ModelShape *s = &t->rs.model.shape;
        int grid = s->image_size / s->patch;
        so.features = 1;
        so.feature_shape = (FeatureShape){grid * grid, s->img_dim, s->txt_len, s->txt_dim};
        if (t->d->rank == 0 && features_check(t->m, t->rs.train, stderr, err, sizeof(err)) < 0)
            dist_abort(t->d, "data.features: %s", err);
    }
    t->stream = stream_open(&so, resume, err, sizeof(err));
    if (!t->stream) dist_abort(t->d, "data: %s", err);
}

int cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return TJ_EXIT_OK;
        }
    // Handlers first: a SLURM signal during start-up must still end in a clean requeue.
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    Trainer t;
    memset(&t, 0, sizeof(t));
    t.d = dist_init(&argc, &argv);
    const char *resume = NULL;
    setup(&t, argc, argv, &resume);
    RunSettings *rs = &t.rs;
    StreamCursor cursor;
    int have_cursor = 0;
    if (resume) resume_from(&t, resume, &cursor, &have_cursor);
    open_stream(&t, have_cursor ? &cursor : NULL);

    if (t.d->rank == 0) {
        char path[1300];
        if (mkdirs(rs->dir))
            dist_abort(t.d, "cannot create run directory %s: %s", rs->dir, strerror(errno));
        snprintf(path, sizeof(path), "%s/config.ini", rs->dir);
        char *ini = config_to_ini(t.cfg);
        FILE *f = fopen(path, "w");
        if (!f || fputs(ini, f) < 0 || fclose(f))
            dist_abort(t.d, "cannot write %s: %s", path, strerror(errno));
        free(ini);
        snprintf(path, sizeof(path), "%s/metrics.jsonl", rs->dir);
        t.metrics = open_metrics(path, t.start_step);
        if (!t.metrics) dist_abort(t.d, "cannot write %s: %s", path, strerror(errno));
        printf("tijepa train: %s, preset %s (%s mode), %zu parameters (%zu trainable), %d rank(s) "
               "× %d thread(s), global batch %d, %d steps\n",
               rs->name, rs->preset,
               rs->model.mode == MODE_PAPER     ? "paper"
               : rs->model.mode == MODE_SCRATCH ? "scratch"
                                                : "ijepa",
               model_num_params(t.m), model_trainable_count(t.m), t.d->world, rs->threads,
               rs->global_batch, rs->steps);
        fflush(stdout);
    }

    const ModelShape *s = &rs->model.shape;
    int K = t.m ? (rs->model.nce_weight > 0 ? rs->model.negatives : 0) : 0;
    size_t row = (size_t)s->txt_len * s->txt_dim;
    double t0 = dist_time();
    Window win = {0, 0, 0, t0};
    int exit_code = TJ_EXIT_OK;
    char err[2048];
    for (long step = t.start_step; step < rs->steps; step++) {
        const Batch *b;
        double wait_ms = 0;
        if (stream_next(t.stream, &b, &wait_ms, err, sizeof(err))) dist_abort(t.d, "data: %s", err);
        ModelBatch mb = {.n = b->n,
                         .images = b->images,
                         .tokens = b->tokens,
                         .valid = b->valid,
                         .img_features = b->img_features};
        mask_sample(&t.masks, &rs->mask, s->image_size / s->patch, rs->seed, (uint64_t)step);
        const float *u = b->txt_features ? model_encode_text_features(t.m, b->txt_features, b->n)
                                         : model_encode_text(t.m, &mb);
        NegativePool pool, *pp = NULL;
        if (K > 0) {
            dist_allgatherv_rows(t.d, t.pool_u, t.pool_valid, (size_t)rs->global_batch, u, b->valid,
                                 (size_t)b->n, row, (size_t)s->txt_len, NULL);
            int first = t.d->rank * t.local_batch;
            negatives_sample(t.negatives, b->n, K, first, rs->global_batch, rs->seed,
                             (uint64_t)step);
            pool = (NegativePool){t.pool_u, t.pool_valid, rs->global_batch, first, t.negatives};
            pp = &pool;
        }
        buckets_reset(t.buckets);
        ModelLoss loss;
        model_forward_backward(t.m, &loss, &mb, &t.masks, pp, on_grad_ready, &t);
        buckets_wait_all(t.buckets);
        BucketStats bs;
        buckets_stats(t.buckets, &bs);

        // metrics: means over ranks (every rank holds the same number of samples)
        StepMetrics v = {loss.loss,
                         loss.jepa,
                         loss.nce,
                         loss.energy_pos,
                         loss.energy_neg,
                         loss.pred_std,
                         wait_ms,
                         bs.exposed_s * 1e3,
                         bs.started_before_wait,
                         (double)stream_counters_skipped(&b->counters)};
        dist_mean_doubles(t.d, (double *)&v, STEP_METRICS_N);
        double gnorm = grad_norm(t.m); // identical on every rank after the allreduce
        int finite = isfinite(v.loss) && isfinite(gnorm);
        if (finite) {
            optim_step(t.m, &rs->optim, step);
            t.bad_in_row = 0;
        } else {
            t.bad_total++;
            if (++t.bad_in_row > rs->max_bad_steps)
                dist_abort(t.d,
                           "step %ld: %d non-finite steps in a row (loss %g, grad norm %g); "
                           "lower optim.lr or set optim.clip_grad",
                           step, t.bad_in_row, v.loss, gnorm);
            if (t.d->rank == 0)
                fprintf(stderr, "tijepa: step %ld: non-finite loss or gradient, update skipped\n",
                        step);
        }
        win.data_wait_ms += v.data_wait_ms;
        win.comm_exposed_ms += v.comm_exposed_ms;
        win.steps++;
        long done = step + 1;
        if (rs->check_every > 0 && done % rs->check_every == 0 &&
            dist_check_replicas(t.d, model_params(t.m), model_num_params(t.m), done))
            dist_abort(t.d, "step %ld: the model replicas diverged across ranks", done);
        if (done % rs->log_every == 0 || done == rs->steps) {
            double now = dist_time();
            double sps = win.steps * rs->global_batch / (now - win.start);
            if (t.d->rank == 0) {
                write_metrics(&t, done, &v, &win, schedule_lr(&rs->optim, step),
                              schedule_wd(&rs->optim, step), schedule_ema(&rs->optim, step), gnorm,
                              sps, bs.n_buckets, now - t0);
                double eta = (rs->steps - done) * rs->global_batch / (sps > 0 ? sps : 1);
                printf("step %6ld/%d  loss %.4f  jepa %.4f  nce %.4f  gap %+.4f  %.1f samples/s  "
                       "ETA %02d:%02d:%02d\n",
                       done, rs->steps, v.loss, v.jepa, v.nce, v.energy_neg - v.energy_pos, sps,
                       (int)(eta / 3600), (int)(eta / 60) % 60, (int)eta % 60);
                fflush(stdout);
            }
            win = (Window){0, 0, 0, now};
        }
        int stop = dist_any(t.d, stop_requested);
        int pause = rs->stop_after > 0 && done == rs->stop_after;
        if ((rs->ckpt_every > 0 && done % rs->ckpt_every == 0) || done == rs->steps || stop ||
            pause)
            save_checkpoint(&t, done);
        // evaluation by rank 0 every train.eval_every steps and at the end (0: never)
        if (rs->eval_every > 0 && (done % rs->eval_every == 0 || done == rs->steps)) {
            int failed = 0;
            if (t.d->rank == 0 && train_evaluate(t.m, t.tok, rs, done, err, sizeof(err))) {
                fprintf(stderr, "tijepa: evaluation at step %ld failed: %s\n", done, err);
                failed = 1;
            }
            if (dist_any(t.d, failed)) dist_abort(t.d, "stopping: evaluation failed");
        }
        if (pause && !stop && done < rs->steps) {
            if (t.d->rank == 0)
                printf("tijepa train: paused at step %ld (train.stop_after); resume with --resume "
                       "auto\n",
                       done);
            break;
        }
        if (stop && done < rs->steps) {
            if (t.d->rank == 0)
                printf("tijepa train: stopped by a signal at step %ld after saving a checkpoint; "
                       "resume with --resume auto\n",
                       done);
            exit_code = TJ_EXIT_REQUEUE;
            break;
        }
    }
    if (t.metrics) fclose(t.metrics);
    stream_close(t.stream);
    buckets_free(t.buckets);
    maskset_free(&t.masks);
    free(t.pool_u);
    free(t.pool_valid);
    free(t.negatives);
    tokenizer_free(t.tok);
    model_free(t.m);
    config_free(t.cfg);
    dist_finalize(t.d);
    return exit_code;
}
