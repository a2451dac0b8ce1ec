// The streaming pipeline: shard order and shuffle per (seed, epoch), batch forming for the
// `sample` and `shard` split modes, decoding of this rank's positions, substitution after decode
// failures, the cursor (restored by fast-forward) and the prefetch thread with its batch queue.
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io.h"
#include "rng_internal.h"

#define CURSOR_VERSION 0x544a435552000001LL // "TJCUR" + format 1

// ---- small helpers ----

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_set(Buf *b, const void *p, size_t n) {
    if (n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < n + 1)
            cap *= 2;
        char *q = realloc(b->data, cap);
        if (!q) return -1;
        b->data = q, b->cap = cap;
    }
    memcpy(b->data, p, n);
    b->data[n] = 0;
    b->len = n;
    return 0;
}

static IoRng rng_for(uint64_t seed, int64_t epoch, uint64_t purpose, int64_t rank) {
    IoRng r = {io_mix64(seed + 0x9E3779B97F4A7C15ULL)};
    r.s = io_mix64(r.s ^ ((uint64_t)epoch * 0xD1B54A32D192ED03ULL));
    r.s = io_mix64(r.s ^ (purpose * 0x8CB92BA72F3D8DD7ULL));
    r.s = io_mix64(r.s ^ ((uint64_t)rank * 0xABC98388FB8FAC03ULL));
    return r;
}

// Uniform in [0, n), n ≥ 1, without modulo bias.
static uint64_t rng_below(IoRng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t x = io_rng_next(r);
        if (x < limit) return x % n;
    }
}

static int errorf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// ---- the stream ----

enum { PURPOSE_SHARDS = 1, PURPOSE_SAMPLES = 2 };
enum { WARN_DAMAGED = SAMPLE_PROBLEM_COUNT, WARN_FEATURES, WARN_KINDS };

// A sample as held in the shuffle buffer and the batch group: raw bytes, not decoded. In a
// feature stream, image holds the .img.f32 bytes, caption the .txt.f32 bytes and valid the mask.
typedef struct {
    Buf key, image, caption, valid;
    int label;
    int shard; // index in the shard list
} RawSample;

typedef struct {
    Batch b;
    Buf keys; // the key strings of b.keys, NUL-separated
} BatchSlot;

struct Stream {
    StreamOptions o;
    char *spec;
    ShardList shards;
    int b, group_size; // local batch; samples decoded as one group (G or b)
    int64_t *usable;   // shard mode: usable samples per shard
    // Sample pool: shuffle buffer + group + one in flight, allocated once, buffers reused.
    RawSample *pool;
    RawSample **free_list, **shuf, **group;
    int n_free, n_shuf, shuf_cap;
    uint8_t *status; // per group position: 0 untried, 2 failed to decode
    int *chosen;     // per batch position: the group position decoded into it
    // Producer position.
    int64_t epoch, batch_in_epoch, step, epoch_steps; // epoch_steps: shard mode limit, else −1
    int epoch_ready;
    int *order;
    int n_order, order_pos;
    TarReader *tr;
    int tr_shard, tr_samples;
    IoRng rng;
    StreamCounters counters;
    int warned[WARN_KINDS];
    // Prefetch queue.
    BatchSlot *slots;
    int n_slots, held;
    int *ready, ready_head, ready_count;
    int *free_slots, n_free_slots;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop;
    int failed;
    char error[1024];
    StreamCursor cursor; // after the last batch handed out
};

void stream_options_default(StreamOptions *o) {
    memset(o, 0, sizeof(*o));
    o->image_size = 32;
    o->max_text_len = 32;
    o->split = SPLIT_SAMPLE;
    o->world = 1;
    o->global_batch = 16;
    o->shuffle_buffer = 1000;
    o->prefetch = 2;
    o->max_pixels = (size_t)1 << 26;
    memcpy(o->mean, IMAGE_MEAN_IMAGENET, sizeof(o->mean));
    memcpy(o->std, IMAGE_STD_IMAGENET, sizeof(o->std));
    o->warn_limit = 10;
}

int split_mode_parse(const char *text, SplitMode *out) {
    if (!strcmp(text, "sample")) {
        *out = SPLIT_SAMPLE;
        return 0;
    }
    if (!strcmp(text, "shard")) {
        *out = SPLIT_SHARD;
        return 0;
    }
    return -1;
}

int64_t stream_counters_skipped(const StreamCounters *c) {
    int64_t n = c->bad_features;
    for (int i = 1; i < SAMPLE_PROBLEM_COUNT; i++)
        n += c->skipped[i];
    return n;
}

// One warning line, at most warn_limit per kind. `everyone` marks problems every rank sees the
// same way in sample mode: only rank 0 prints those.
static void warn(Stream *s, int kind, int everyone, const char *fmt, ...) {
    if (s->o.warn_limit <= 0) return;
    if (everyone && s->o.split == SPLIT_SAMPLE && s->o.rank != 0) return;
    if (s->warned[kind] > s->o.warn_limit) return;
    FILE *f = s->o.log ? s->o.log : stderr;
    char rank[32] = "";
    if (s->o.world > 1) snprintf(rank, sizeof(rank), "[rank %d]", s->o.rank);
    if (s->warned[kind]++ == s->o.warn_limit) {
        fprintf(f, "tijepa: data%s: further '%s' warnings suppressed (still counted)\n", rank,
                kind == WARN_DAMAGED    ? "damaged_shard"
                : kind == WARN_FEATURES ? "bad_features"
                                        : sample_problem_name((SampleProblem)kind));
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(f, "tijepa: data%s: %s\n", rank, msg);
}

static void set_error(Stream *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
}

static void release(Stream *s, RawSample *r) {
    s->free_list[s->n_free++] = r;
}

// ---- reading: shards of the epoch → usable raw samples ----

static void close_shard(Stream *s) {
    if (!s->tr) return;
    if (s->tr_samples == 0) s->counters.shards_empty++;
    s->counters.members_skipped += tar_reader_skipped_members(s->tr);
    tar_reader_close(s->tr);
    s->tr = NULL;
}

// Next sample that passes the cheap checks, copied into a pool sample. 1 = got one, 0 = the
// epoch's shards are exhausted, −1 = error (out of memory).
static int read_usable(Stream *s, RawSample **out) {
    char err[1024], why[256];
    for (;;) {
        if (atomic_load(&s->stop)) return 0;
        if (!s->tr) {
            if (s->order_pos == s->n_order) return 0;
            s->tr_shard = s->order[s->order_pos++];
            s->tr_samples = 0;
            s->counters.shards_opened++;
            s->tr = tar_reader_open(s->shards.paths[s->tr_shard], err, sizeof(err));
            if (!s->tr) {
                s->counters.shards_damaged++;
                warn(s, WARN_DAMAGED, 1, "%s (shard skipped)", err);
                continue;
            }
        }
        TarSample t;
        int rc = tar_reader_next(s->tr, &t, err, sizeof(err));
        if (rc == 0) {
            close_shard(s);
            continue;
        }
        if (rc < 0) {
            s->counters.shards_damaged++;
            warn(s, WARN_DAMAGED, 1, "%s (rest of the shard skipped)", err);
            close_shard(s);
            continue;
        }
        s->tr_samples++;
        s->counters.samples_read++;
        s->counters.members_ignored += t.n_ignored;
        int label;
        if (s->o.features) {
            if (feature_sample_check(&t, &s->o.feature_shape, &label, why, sizeof(why))) {
                s->counters.bad_features++;
                warn(s, WARN_FEATURES, 1, "skipping sample '%s' in %s: %s", t.key, t.shard, why);
                continue;
            }
        } else {
            SampleProblem p =
                sample_check(&t, s->o.max_pixels, &label, NULL, NULL, why, sizeof(why));
            if (p != SAMPLE_OK) {
                s->counters.skipped[p]++;
                warn(s, p, 1, "skipping sample '%s' in %s: %s", t.key, t.shard, why);
                continue;
            }
        }
        s->counters.samples_usable++;
        RawSample *r = s->free_list[--s->n_free];
        int oom = buf_set(&r->key, t.key, strlen(t.key));
        if (s->o.features)
            oom = oom || buf_set(&r->image, t.feat_img, t.feat_img_len) ||
                  buf_set(&r->caption, t.feat_txt, t.feat_txt_len) ||
                  buf_set(&r->valid, t.feat_valid, t.feat_valid_len);
        else
            oom = oom || buf_set(&r->image, t.image, t.image_len) ||
                  buf_set(&r->caption, t.caption, t.caption_len);
        if (oom) {
            release(s, r);
            set_error(s, "out of memory holding sample '%s' of %s", t.key, t.shard);
            return -1;
        }
        r->label = label;
        r->shard = s->tr_shard;
        *out = r;
        return 1;
    }
}

// Next sample of the epoch through the shuffle buffer: fill it to capacity, emit a uniformly
// chosen one. 1 = got one, 0 = epoch exhausted, −1 = error.
static int next_sample(Stream *s, RawSample **out) {
    while (s->n_shuf < s->shuf_cap) {
        RawSample *r;
        int rc = read_usable(s, &r);
        if (rc < 0) return -1;
        if (rc == 0) break;
        s->shuf[s->n_shuf++] = r;
    }
    if (s->n_shuf == 0) return 0;
    uint64_t k = rng_below(&s->rng, (uint64_t)s->n_shuf);
    *out = s->shuf[k];
    s->shuf[k] = s->shuf[--s->n_shuf];
    return 1;
}

// Sets up epoch s->epoch: shard order, this rank's shards, shuffle RNG, and in shard mode the
// number of steps (min over ranks of their usable samples / b, computed from the table).
static int start_epoch(Stream *s) {
    close_shard(s);
    while (s->n_shuf)
        release(s, s->shuf[--s->n_shuf]);
    int n = s->shards.n, W = s->o.world;
    IoRng r = rng_for(s->o.seed, s->epoch, PURPOSE_SHARDS, 0);
    int *perm = s->order; // the permutation is built in place, then filtered in shard mode
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    s->order_pos = 0;
    s->batch_in_epoch = 0;
    s->epoch_steps = -1;
    if (s->o.split == SPLIT_SAMPLE) {
        s->n_order = n;
        s->rng = rng_for(s->o.seed, s->epoch, PURPOSE_SAMPLES, 0);
    } else {
        int64_t min_count = -1;
        int min_rank = 0;
        for (int rank = 0; rank < W; rank++) {
            int64_t c = 0;
            for (int i = rank; i < n; i += W)
                c += s->usable[perm[i]];
            if (min_count < 0 || c < min_count) min_count = c, min_rank = rank;
        }
        s->epoch_steps = min_count / s->b;
        if (s->epoch_steps == 0) {
            set_error(s,
                      "epoch %lld (shard split over %d ranks): the shards dealt to rank %d hold "
                      "%lld usable samples, fewer than the local batch of %d; use more or larger "
                      "shards, a smaller batch, or data.split = sample",
                      (long long)s->epoch, W, min_rank, (long long)min_count, s->b);
            return -1;
        }
        int k = 0;
        for (int i = s->o.rank; i < n; i += W)
            perm[k++] = perm[i];
        s->n_order = k;
        s->rng = rng_for(s->o.seed, s->epoch, PURPOSE_SAMPLES, s->o.rank);
    }
    s->epoch_ready = 1;
    return 0;
}

// Fills s->group with the next group of samples (G in sample mode, b in shard mode), moving to
// the next epoch when the current one cannot fill a complete group.
static int next_group(Stream *s) {
    for (;;) {
        if (!s->epoch_ready && start_epoch(s)) return -1;
        int done = s->o.split == SPLIT_SHARD && s->batch_in_epoch >= s->epoch_steps;
        int got = 0;
        while (!done && got < s->group_size) {
            int rc = next_sample(s, &s->group[got]);
            if (rc < 0) {
                for (int i = 0; i < got; i++)
                    release(s, s->group[i]);
                return -1;
            }
            if (rc == 0) break;
            got++;
        }
        if (atomic_load(&s->stop)) {
            for (int i = 0; i < got; i++)
                release(s, s->group[i]);
            set_error(s, "stream stopped");
            return -1;
        }
        if (!done && got == s->group_size) return 0;
        // End of the epoch: the incomplete group is dropped.
        for (int i = 0; i < got; i++)
            release(s, s->group[i]);
        if (s->o.split == SPLIT_SHARD && !done) {
            set_error(s,
                      "epoch %lld: this rank's shards yielded fewer samples than when the "
                      "stream was opened (were shards changed or removed?)",
                      (long long)s->epoch);
            return -1;
        }
        if (s->batch_in_epoch == 0) {
            const StreamCounters *c = &s->counters;
            set_error(s,
                      "epoch %lld yields no complete global batch of %d: %lld usable samples of "
                      "%lld read from %d shards (%lld skipped, %lld damaged shards); see the "
                      "warnings above",
                      (long long)s->epoch, s->o.global_batch, (long long)c->samples_usable,
                      (long long)c->samples_read, s->shards.n,
                      (long long)stream_counters_skipped(c), (long long)c->shards_damaged);
            return -1;
        }
        s->epoch++;
        s->epoch_ready = 0;
    }
}

// A feature sample (checked when read): its bytes into batch position j.
static void load_features(Stream *s, const RawSample *r, Batch *b, int j) {
    const FeatureShape *fs = &s->o.feature_shape;
    size_t img = (size_t)fs->img_tokens * fs->img_dim, txt = (size_t)fs->txt_len * fs->txt_dim;
    f32_from_le(b->img_features + j * img, (const uint8_t *)r->image.data, img);
    f32_from_le(b->txt_features + j * txt, (const uint8_t *)r->caption.data, txt);
    memcpy(b->valid + (size_t)j * fs->txt_len, r->valid.data, (size_t)fs->txt_len);
    for (int l = 0; l < fs->txt_len; l++)
        s->counters.tokens += r->valid.data[l];
    b->labels[j] = r->label;
}

static int try_decode(Stream *s, const RawSample *r, Batch *b, int j) {
    if (s->o.features) { // nothing can fail: the sizes were checked when the sample was read
        load_features(s, r, b, j);
        return 0;
    }
    char err[512], what[512];
    snprintf(what, sizeof(what), "%s:%s", s->shards.paths[r->shard], r->key.data);
    ImageU8 img = {0};
    if (image_decode(&img, (const uint8_t *)r->image.data, r->image.len, s->o.max_pixels, what, err,
                     sizeof(err))) {
        image_free(&img);
        warn(s, SAMPLE_DECODE_FAILED, 0, "sample '%s' in %s failed to decode: %s", r->key.data,
             s->shards.paths[r->shard], err);
        return -1;
    }
    const int S = s->o.image_size, L = s->o.max_text_len;
    image_to_tensor(b->images + (size_t)j * 3 * S * S, &img, S, s->o.mean, s->o.std);
    image_free(&img);
    int n_unk = 0;
    int n = tokenizer_encode(s->o.tokenizer, r->caption.data, b->tokens + (size_t)j * L,
                             b->valid + (size_t)j * L, L, &n_unk, err, sizeof(err));
    if (n < 0) {
        warn(s, SAMPLE_DECODE_FAILED, 0, "sample '%s' in %s failed to tokenise: %s", r->key.data,
             s->shards.paths[r->shard], err);
        return -1;
    }
    s->counters.tokens += n;
    s->counters.unk_tokens += n_unk;
    b->labels[j] = r->label;
    return 0;
}

// Produces the next batch into slot (decode = 0: only advances the position, for fast-forward).
static int produce(Stream *s, BatchSlot *slot, int decode) {
    if (next_group(s)) return -1;
    int first = s->o.split == SPLIT_SAMPLE ? s->o.rank * s->b : 0;
    int rc = 0;
    if (decode) {
        Batch *b = &slot->b;
        memset(s->status, 0, (size_t)s->group_size);
        size_t key_bytes = 0;
        int *chosen = s->chosen;
        for (int j = 0; j < s->b && !rc; j++) {
            int p = first + j, q = p, ok = 0;
            for (int t = 0; t < s->group_size && !ok; t++, q = (q + 1) % s->group_size) {
                if (s->status[q] == 2) continue;
                if (try_decode(s, s->group[q], b, j) == 0) {
                    ok = 1;
                    break;
                }
                s->status[q] = 2;
                s->counters.skipped[SAMPLE_DECODE_FAILED]++;
            }
            if (!ok) {
                set_error(s,
                          "no sample of a whole batch group could be decoded (epoch %lld, "
                          "batch %lld); see the warnings above",
                          (long long)s->epoch, (long long)s->batch_in_epoch);
                rc = -1;
                break;
            }
            if (q != p) s->counters.substituted++;
            s->counters.samples_decoded++;
            chosen[j] = q;
            b->global_index[j] = (int64_t)s->o.rank * s->b + j;
            key_bytes += s->group[q]->key.len + 1;
        }
        if (!rc) { // keys: one buffer, grown only when longer keys arrive
            if (key_bytes > slot->keys.cap) {
                char *p = realloc(slot->keys.data, key_bytes);
                if (!p) {
                    set_error(s, "out of memory");
                    rc = -1;
                } else {
                    slot->keys.data = p, slot->keys.cap = key_bytes;
                }
            }
            size_t at = 0;
            for (int j = 0; j < s->b && !rc; j++) {
                const Buf *k = &s->group[chosen[j]]->key;
                memcpy(slot->keys.data + at, k->data, k->len + 1);
                b->keys[j] = slot->keys.data + at;
                at += k->len + 1;
            }
        }
        b->epoch = s->epoch;
        b->batch_in_epoch = s->batch_in_epoch;
        b->step = s->step;
    }
    for (int i = 0; i < s->group_size; i++)
        release(s, s->group[i]);
    if (rc) return -1;
    s->batch_in_epoch++;
    s->step++;
    if (decode) {
        s->counters.batches++;
        slot->b.counters = s->counters;
    }
    return 0;
}

// ---- prefetch thread ----

static void *producer_main(void *arg) {
    Stream *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->n_free_slots && !atomic_load(&s->stop))
            pthread_cond_wait(&s->cv, &s->mu);
        if (atomic_load(&s->stop)) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        int slot = s->free_slots[--s->n_free_slots];
        pthread_mutex_unlock(&s->mu);
        int rc = produce(s, &s->slots[slot], 1);
        pthread_mutex_lock(&s->mu);
        if (rc) {
            s->failed = 1;
            s->free_slots[s->n_free_slots++] = slot;
        } else {
            s->ready[(s->ready_head + s->ready_count++) % s->n_slots] = slot;
        }
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (rc) return NULL;
    }
}

// ---- cursor ----

void stream_cursor_pack(int64_t out[STREAM_CURSOR_WORDS], const StreamCursor *c) {
    int64_t w[STREAM_CURSOR_WORDS] = {CURSOR_VERSION, c->epoch,         c->batch_in_epoch, c->step,
                                      c->split,       c->global_batch,  c->world,          c->seed,
                                      c->num_shards,  c->shuffle_buffer};
    memcpy(out, w, sizeof(w));
}

int stream_cursor_unpack(StreamCursor *c, const int64_t in[STREAM_CURSOR_WORDS], char *err,
                         size_t errlen) {
    if (in[0] != CURSOR_VERSION) {
        snprintf(err, errlen, "data cursor: unknown format tag %#llx", (unsigned long long)in[0]);
        return -1;
    }
    c->epoch = in[1], c->batch_in_epoch = in[2], c->step = in[3], c->split = in[4];
    c->global_batch = in[5], c->world = in[6], c->seed = in[7], c->num_shards = in[8];
    c->shuffle_buffer = in[9];
    if (c->epoch < 0 || c->batch_in_epoch < 0 || c->step < 0) {
        snprintf(err, errlen, "data cursor: negative position");
        return -1;
    }
    return 0;
}

void stream_cursor(const Stream *s, StreamCursor *out) {
    *out = s->cursor;
}

int stream_num_shards(const Stream *s) {
    return s->shards.n;
}

static int check_resume(const Stream *s, const StreamCursor *c, char *err, size_t errlen) {
    const StreamOptions *o = &s->o;
    const char *what = NULL;
    long long had = 0, now = 0;
    if (c->split != o->split)
        what = "split mode", had = c->split, now = o->split;
    else if (c->global_batch != o->global_batch)
        what = "global batch", had = c->global_batch, now = o->global_batch;
    else if (c->seed != (int64_t)o->seed)
        what = "seed", had = c->seed, now = (long long)o->seed;
    else if (c->num_shards != s->shards.n)
        what = "number of shards", had = c->num_shards, now = s->shards.n;
    else if (c->shuffle_buffer != o->shuffle_buffer)
        what = "shuffle buffer", had = c->shuffle_buffer, now = o->shuffle_buffer;
    else if (o->split == SPLIT_SHARD && c->world != o->world)
        what = "number of ranks (shard split; use data.split = sample for elastic resume)",
        had = c->world, now = o->world;
    if (what) {
        snprintf(err, errlen, "cannot resume the data stream: the %s was %lld, is now %lld", what,
                 had, now);
        return -1;
    }
    return 0;
}

// ---- open / next / close ----

static int check_options(const StreamOptions *o, char *err, size_t errlen) {
    const FeatureShape *fs = &o->feature_shape;
    if (o->features && (fs->img_tokens < 1 || fs->img_dim < 1 || fs->txt_len < 1 ||
                        fs->txt_dim < 1 || fs->txt_len != o->max_text_len))
        return errorf(err, errlen,
                      "data stream: feature shape P=%d De=%d L=%d Dt=%d must be positive with L "
                      "= max_text_len (%d)",
                      fs->img_tokens, fs->img_dim, fs->txt_len, fs->txt_dim, o->max_text_len);
    if (!o->tokenizer && !o->features) return errorf(err, errlen, "data stream: no tokenizer");
    if (o->image_size < 1 || o->max_text_len < 2)
        return errorf(err, errlen, "data stream: image_size must be ≥ 1 and max_text_len ≥ 2");
    if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
        return errorf(err, errlen, "data stream: rank %d outside a world of %d", o->rank, o->world);
    if (o->global_batch < 1 || o->global_batch % o->world)
        return errorf(err, errlen,
                      "global batch %d must be a positive multiple of the number of ranks %d",
                      o->global_batch, o->world);
    if (o->shuffle_buffer < 0 || o->shuffle_buffer > (1 << 24))
        return errorf(err, errlen, "data stream: shuffle_buffer %d out of range [0, 2^24]",
                      o->shuffle_buffer);
    if (o->prefetch < 0 || o->prefetch > 1024)
        return errorf(err, errlen, "data stream: prefetch %d out of range [0, 1024]", o->prefetch);
    if (o->split != SPLIT_SAMPLE && o->split != SPLIT_SHARD)
        return errorf(err, errlen, "data stream: unknown split mode %d", (int)o->split);
    for (int c = 0; c < 3; c++)
        if (!(o->std[c] > 0)) return errorf(err, errlen, "data stream: std[%d] must be > 0", c);
    return 0;
}

// Shard mode: usable samples per shard, from one reading pass (the same cheap checks as the
// stream, silent; the stream warns when it meets the problems).
static int count_usable(Stream *s, char *err, size_t errlen) {
    for (int i = 0; i < s->shards.n; i++) {
        char e[512];
        TarReader *tr = tar_reader_open(s->shards.paths[i], e, sizeof(e));
        int64_t n = 0;
        if (tr) {
            TarSample t;
            while (tar_reader_next(tr, &t, e, sizeof(e)) == 1)
                if (s->o.features
                        ? feature_sample_check(&t, &s->o.feature_shape, NULL, NULL, 0) == 0
                        : sample_check(&t, s->o.max_pixels, NULL, NULL, NULL, NULL, 0) == SAMPLE_OK)
                    n++;
            tar_reader_close(tr);
        }
        s->usable[i] = n;
        if (atomic_load(&s->stop)) return errorf(err, errlen, "data stream: stopped");
    }
    return 0;
}

static int alloc_slots(Stream *s) {
    const int n = s->b, S = s->o.image_size, L = s->o.max_text_len;
    s->n_slots = s->o.prefetch + 1;
    if (!(s->slots = calloc((size_t)s->n_slots, sizeof(*s->slots))) ||
        !(s->ready = calloc((size_t)s->n_slots, sizeof(int))) ||
        !(s->free_slots = calloc((size_t)s->n_slots, sizeof(int))))
        return -1;
    for (int i = 0; i < s->n_slots; i++) {
        Batch *b = &s->slots[i].b;
        b->n = n, b->image_size = S, b->max_text_len = L;
        const FeatureShape *fs = &s->o.feature_shape;
        if (s->o.features) {
            if (!(b->img_features =
                      malloc((size_t)n * fs->img_tokens * fs->img_dim * sizeof(float))) ||
                !(b->txt_features = malloc((size_t)n * fs->txt_len * fs->txt_dim * sizeof(float))))
                return -1;
        } else if (!(b->images = malloc((size_t)n * 3 * S * S * sizeof(float))) ||
                   !(b->tokens = malloc((size_t)n * L * sizeof(int32_t)))) {
            return -1;
        }
        if (!(b->valid = malloc((size_t)n * L)) ||
            !(b->labels = malloc((size_t)n * sizeof(int32_t))) ||
            !(b->global_index = malloc((size_t)n * sizeof(int64_t))) ||
            !(b->keys = calloc((size_t)n, sizeof(char *))))
            return -1;
        s->free_slots[s->n_free_slots++] = s->n_slots - 1 - i;
    }
    return 0;
}

Stream *stream_open(const StreamOptions *o, const StreamCursor *resume, char *err, size_t errlen) {
    if (check_options(o, err, errlen)) return NULL;
    Stream *s = calloc(1, sizeof(*s));
    if (!s) {
        errorf(err, errlen, "data stream: out of memory");
        return NULL;
    }
    s->o = *o;
    s->held = -1;
    atomic_init(&s->stop, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!(s->spec = strdup(o->spec ? o->spec : ""))) goto oom;
    s->o.spec = s->spec;
    if (shard_spec_expand(&s->shards, s->spec, err, errlen)) goto fail;
    s->b = o->global_batch / o->world;
    s->group_size = o->split == SPLIT_SAMPLE ? o->global_batch : s->b;
    if (o->split == SPLIT_SHARD && s->shards.n < o->world) {
        snprintf(err, errlen,
                 "shard split needs at least as many shards as ranks: %d shards for %d ranks "
                 "(use data.split = sample)",
                 s->shards.n, o->world);
        goto fail;
    }
    s->shuf_cap = o->shuffle_buffer > 1 ? o->shuffle_buffer : 1;
    int pool_n = s->shuf_cap + s->group_size + 1;
    if (!(s->pool = calloc((size_t)pool_n, sizeof(RawSample))) ||
        !(s->free_list = calloc((size_t)pool_n, sizeof(RawSample *))) ||
        !(s->shuf = calloc((size_t)s->shuf_cap, sizeof(RawSample *))) ||
        !(s->group = calloc((size_t)s->group_size, sizeof(RawSample *))) ||
        !(s->status = calloc((size_t)s->group_size, 1)) ||
        !(s->chosen = calloc((size_t)s->b, sizeof(int))) ||
        !(s->order = calloc((size_t)s->shards.n, sizeof(int))) ||
        !(s->usable = calloc((size_t)s->shards.n, sizeof(int64_t))) || alloc_slots(s))
        goto oom;
    for (int i = 0; i < pool_n; i++)
        s->free_list[s->n_free++] = &s->pool[i];
    if (o->split == SPLIT_SHARD && count_usable(s, err, errlen)) goto fail;

    StreamCursor c = {0};
    if (resume) {
        if (check_resume(s, resume, err, errlen)) goto fail;
        c = *resume;
    }
    c.split = o->split, c.global_batch = o->global_batch, c.world = o->world;
    c.seed = (int64_t)o->seed, c.num_shards = s->shards.n, c.shuffle_buffer = o->shuffle_buffer;
    s->epoch = c.epoch;
    if (start_epoch(s)) goto stream_error;
    for (int64_t k = 0; k < c.batch_in_epoch; k++) // fast-forward: read, never decode
        if (produce(s, NULL, 0)) goto stream_error;
    s->step = c.step;
    s->cursor = c;
    if (o->prefetch > 0) {
        if (pthread_create(&s->thread, NULL, producer_main, s)) {
            snprintf(err, errlen, "data stream: cannot start the prefetch thread");
            goto fail;
        }
        s->thread_started = 1;
    }
    return s;
stream_error:
    snprintf(err, errlen, "%s", s->error);
    goto fail;
oom:
    snprintf(err, errlen, "data stream: out of memory");
fail:
    stream_close(s);
    return NULL;
}

int stream_next(Stream *s, const Batch **batch, double *wait_ms, char *err, size_t errlen) {
    double t0 = now_ms();
    int slot;
    if (!s->thread_started) {
        if (s->failed || produce(s, &s->slots[0], 1)) {
            s->failed = 1;
            snprintf(err, errlen, "%s", s->error);
            return -1;
        }
        slot = 0;
    } else {
        pthread_mutex_lock(&s->mu);
        if (s->held >= 0) { // the previous batch goes back to the producer
            s->free_slots[s->n_free_slots++] = s->held;
            s->held = -1;
            pthread_cond_broadcast(&s->cv);
        }
        while (!s->ready_count && !s->failed)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->ready_count) {
            pthread_mutex_unlock(&s->mu);
            snprintf(err, errlen, "%s", s->error);
            return -1;
        }
        slot = s->ready[s->ready_head];
        s->ready_head = (s->ready_head + 1) % s->n_slots;
        s->ready_count--;
        s->held = slot;
        pthread_mutex_unlock(&s->mu);
    }
    const Batch *b = &s->slots[slot].b;
    s->cursor.epoch = b->epoch;
    s->cursor.batch_in_epoch = b->batch_in_epoch + 1;
    s->cursor.step = b->step + 1;
    *batch = b;
    if (wait_ms) *wait_ms = now_ms() - t0;
    return 0;
}

void stream_close(Stream *s) {
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        atomic_store(&s->stop, 1);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    close_shard(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    if (s->pool) {
        int pool_n = s->shuf_cap + s->group_size + 1;
        for (int i = 0; i < pool_n; i++) {
            free(s->pool[i].key.data);
            free(s->pool[i].image.data);
            free(s->pool[i].caption.data);
            free(s->pool[i].valid.data);
        }
    }
    if (s->slots)
        for (int i = 0; i < s->n_slots; i++) {
            Batch *b = &s->slots[i].b;
            free(b->images), free(b->tokens), free(b->valid), free(b->labels);
            free(b->img_features), free(b->txt_features);
            free(b->global_index), free((void *)b->keys), free(s->slots[i].keys.data);
        }
    free(s->slots), free(s->ready), free(s->free_slots);
    free(s->pool), free(s->free_list), free(s->shuf), free(s->group), free(s->status),
        free(s->chosen);
    free(s->order), free(s->usable);
    shard_list_free(&s->shards);
    free(s->spec);
    free(s);
}
