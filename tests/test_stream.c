// The streaming pipeline: sample mode gives the same global batches on 1, 2 and 4 ranks, a
// restored cursor continues exactly (also on another number of ranks), shard mode ends epochs at
// the same step on every rank, batch contents equal a direct decode, bad input is counted and
// warned about, and hopeless streams fail with a clear error instead of hanging.
#include "shards_fixtures.h"

#define S 16 // image size
#define L 24 // max text length
#define MAXG 16

static char *g_dir; // synth dataset: 9 shards × 20 samples
static Tokenizer *g_tok;

typedef struct {
    int64_t epoch, bie, step;
    char keys[MAXG][32];
    float img[MAXG][3 * S * S];
    int32_t tok[MAXG][L];
    uint8_t valid[MAXG][L];
    int32_t labels[MAXG];
    int64_t gidx[MAXG];
} Rec;

static int setup(void **state) {
    (void)state;
    g_dir = fx_tmpdir("stream");
    SynthOptions o;
    synth_options_default(&o);
    o.out_dir = g_dir, o.n_train = 180, o.n_val = 0, o.per_shard = 20, o.image_size = 20;
    o.seed = 11;
    char err[512];
    if (synth_write(&o, err, sizeof(err))) fail_msg("%s", err);
    g_tok = tokenizer_load(fx_path("%s/vocab.txt", g_dir), err, sizeof(err));
    if (!g_tok) fail_msg("%s", err);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(g_tok);
    fx_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static StreamOptions base_opts(const char *spec, int G) {
    StreamOptions o;
    stream_options_default(&o);
    o.spec = spec, o.seed = 5, o.image_size = S, o.max_text_len = L, o.tokenizer = g_tok;
    o.global_batch = G, o.shuffle_buffer = 16, o.prefetch = 2;
    return o;
}

static Stream *open_or_fail(const StreamOptions *o, const StreamCursor *c) {
    char err[1024];
    Stream *s = stream_open(o, c, err, sizeof(err));
    if (!s) fail_msg("stream_open: %s", err);
    return s;
}

static void copy_local(Rec *r, const Batch *b, int offset) {
    for (int j = 0; j < b->n; j++) {
        int p = offset + j;
        snprintf(r->keys[p], 32, "%s", b->keys[j]);
        memcpy(r->img[p], b->images + (size_t)j * 3 * S * S, sizeof(r->img[p]));
        memcpy(r->tok[p], b->tokens + (size_t)j * L, sizeof(r->tok[p]));
        memcpy(r->valid[p], b->valid + (size_t)j * L, sizeof(r->valid[p]));
        r->labels[p] = b->labels[j];
        r->gidx[p] = b->global_index[j];
    }
}

// Runs W ranks of one stream in-process for `steps` global batches and concatenates the local
// batches of each step into global records.
static Rec *run_global(StreamOptions o, int W, int steps, const StreamCursor *resume,
                       StreamCursor *end) {
    Rec *recs = calloc((size_t)steps, sizeof(Rec));
    Stream *s[8] = {0};
    o.world = W;
    for (int r = 0; r < W; r++) {
        o.rank = r;
        s[r] = open_or_fail(&o, resume);
    }
    char err[1024];
    for (int t = 0; t < steps; t++)
        for (int r = 0; r < W; r++) {
            const Batch *b;
            double wait = -1;
            if (stream_next(s[r], &b, &wait, err, sizeof(err))) fail_msg("stream_next: %s", err);
            assert_true(wait >= 0);
            assert_int_equal(b->n, o.global_batch / W);
            if (r == 0) {
                recs[t].epoch = b->epoch, recs[t].bie = b->batch_in_epoch, recs[t].step = b->step;
            } else {
                assert_int_equal(b->epoch, recs[t].epoch);
                assert_int_equal(b->batch_in_epoch, recs[t].bie);
                assert_int_equal(b->step, recs[t].step);
            }
            copy_local(&recs[t], b, r * b->n);
        }
    if (end) stream_cursor(s[0], end);
    for (int r = 1; r < W; r++) {
        StreamCursor a, b;
        stream_cursor(s[0], &a), stream_cursor(s[r], &b);
        assert_memory_equal(&a, &b, sizeof(a)); // the cursor is the same on every rank
    }
    for (int r = 0; r < W; r++)
        stream_close(s[r]);
    return recs;
}

static void assert_recs_equal(const Rec *a, const Rec *b, int steps, int G) {
    for (int t = 0; t < steps; t++) {
        assert_int_equal(a[t].epoch, b[t].epoch);
        assert_int_equal(a[t].bie, b[t].bie);
        assert_int_equal(a[t].step, b[t].step);
        for (int j = 0; j < G; j++) {
            assert_string_equal(a[t].keys[j], b[t].keys[j]);
            assert_int_equal(a[t].labels[j], b[t].labels[j]);
            assert_int_equal(a[t].gidx[j], b[t].gidx[j]);
            assert_memory_equal(a[t].img[j], b[t].img[j], sizeof(a[t].img[j]));
            assert_memory_equal(a[t].tok[j], b[t].tok[j], sizeof(a[t].tok[j]));
            assert_memory_equal(a[t].valid[j], b[t].valid[j], sizeof(a[t].valid[j]));
        }
    }
}

// `sample` mode: 1, 2 and 4 ranks give the same global batches, across epoch boundaries.
static void test_sample_mode_rank_invariance(void **state) {
    (void)state;
    enum { G = 8, STEPS = 50 }; // 180 samples → 22 batches per epoch (4 dropped)
    StreamOptions o = base_opts(g_dir, G);
    Rec *one = run_global(o, 1, STEPS, NULL, NULL);
    for (int t = 0; t < STEPS; t++) {
        assert_int_equal(one[t].step, t);
        assert_int_equal(one[t].epoch, t / 22);
        assert_int_equal(one[t].bie, t % 22);
        for (int j = 0; j < G; j++)
            assert_int_equal(one[t].gidx[j], j);
    }
    // within an epoch no sample repeats; epochs come in different orders
    for (int t = 0; t < 22 * G; t++)
        for (int u = 0; u < t; u++)
            assert_string_not_equal(one[t / G].keys[t % G], one[u / G].keys[u % G]);
    assert_string_not_equal(one[0].keys[0], one[22].keys[0]);
    int Ws[] = {2, 4};
    for (int k = 0; k < 2; k++) {
        Rec *many = run_global(o, Ws[k], STEPS, NULL, NULL);
        assert_recs_equal(one, many, STEPS, G);
        free(many);
    }
    free(one);
}

// Restoring the cursor continues exactly, at any point (epoch boundaries included), with the
// same or another number of ranks (sample mode).
static void test_resume_exact(void **state) {
    (void)state;
    enum { G = 8, STEPS = 48 };
    StreamOptions o = base_opts(g_dir, G);
    Rec *full = run_global(o, 1, STEPS, NULL, NULL);
    int cuts[] = {0, 1, 7, 21, 22, 23, 40};
    int worlds[] = {1, 2, 4, 1, 2, 4, 2};
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        StreamCursor c;
        Rec *head = run_global(o, worlds[(k + 1) % 7], cuts[k], NULL, &c);
        assert_int_equal(c.step, cuts[k]);
        int64_t words[STREAM_CURSOR_WORDS];
        stream_cursor_pack(words, &c);
        StreamCursor back;
        char err[256];
        assert_int_equal(stream_cursor_unpack(&back, words, err, sizeof(err)), 0);
        Rec *tail = run_global(o, worlds[k], STEPS - cuts[k], &back, NULL);
        assert_recs_equal(full + cuts[k], tail, STEPS - cuts[k], G);
        free(head);
        free(tail);
    }
    free(full);
}

// Prefetch depth and the synchronous path give identical batches; seeds matter.
static void test_prefetch_and_seed(void **state) {
    (void)state;
    enum { G = 4, STEPS = 60 };
    StreamOptions o = base_opts(g_dir, G);
    o.prefetch = 0;
    Rec *a = run_global(o, 2, STEPS, NULL, NULL);
    o.prefetch = 5;
    Rec *b = run_global(o, 2, STEPS, NULL, NULL);
    assert_recs_equal(a, b, STEPS, G);
    o.seed = 6;
    Rec *c = run_global(o, 2, 1, NULL, NULL);
    int same = 0;
    for (int j = 0; j < G; j++)
        same += !strcmp(a[0].keys[j], c[0].keys[j]);
    assert_true(same < G);
    // shuffle buffer 0: file order within the epoch's shard order
    o.shuffle_buffer = 0;
    Rec *d = run_global(o, 1, 3, NULL, NULL);
    int first = atoi(d[0].keys[0] + 6);
    for (int t = 0; t < 3 * G; t++)
        assert_int_equal(atoi(d[t / G].keys[t % G] + 6), first + t);
    free(a), free(b), free(c), free(d);
}

// Batch contents: images, tokens, mask and labels equal a direct decode of the sample.
static void test_batch_contents(void **state) {
    (void)state;
    StreamOptions o = base_opts(g_dir, 6);
    o.world = 3, o.rank = 1;
    Stream *s = open_or_fail(&o, NULL);
    const Batch *b;
    char err[512];
    assert_int_equal(stream_next(s, &b, NULL, err, sizeof(err)), 0);
    for (int j = 0; j < b->n; j++) {
        assert_int_equal(b->global_index[j], 2 + j);
        int index = atoi(b->keys[j] + 6);
        SynthSample ss;
        synth_sample(&ss, 11, 0, index);
        assert_string_equal(ss.key, b->keys[j]);
        assert_int_equal(b->labels[j], ss.label);
        // decode the stored PNG directly
        TarReader *tr =
            tar_reader_open(fx_path("%s/train-%06d.tar", g_dir, index / 20), err, sizeof(err));
        TarSample t;
        while (tar_reader_next(tr, &t, err, sizeof(err)) == 1 && strcmp(t.key, b->keys[j])) {
        }
        assert_string_equal(t.key, b->keys[j]);
        assert_string_equal(t.caption, ss.caption);
        ImageU8 img;
        assert_int_equal(image_decode(&img, t.image, t.image_len, 1 << 20, "x", err, sizeof(err)),
                         0);
        float want[3 * S * S];
        image_to_tensor(want, &img, S, IMAGE_MEAN_IMAGENET, IMAGE_STD_IMAGENET);
        assert_memory_equal(want, b->images + (size_t)j * 3 * S * S, sizeof(want));
        int32_t ids[L];
        uint8_t valid[L];
        int n = tokenizer_encode(g_tok, t.caption, ids, valid, L, NULL, err, sizeof(err));
        assert_true(n > 2);
        assert_memory_equal(ids, b->tokens + (size_t)j * L, sizeof(ids));
        assert_memory_equal(valid, b->valid + (size_t)j * L, sizeof(valid));
        image_free(&img);
        tar_reader_close(tr);
    }
    assert_int_equal(b->counters.batches, 1);
    assert_int_equal(b->counters.samples_decoded, 2);
    assert_true(b->counters.tokens > 0);
    assert_int_equal(b->counters.unk_tokens, 0);
    stream_close(s);
}

// `shard` mode, 9 equal shards over 3 ranks: each rank reads only its 3 shards, every one of
// their samples exactly once per epoch (60 / b = 30 steps), all ranks change epoch together.
static void test_shard_mode(void **state) {
    (void)state;
    enum { G = 6, STEPS = 75 };
    StreamOptions o = base_opts(g_dir, G);
    o.split = SPLIT_SHARD;
    Rec *r = run_global(o, 3, STEPS, NULL, NULL); // asserts equal epoch/step on every rank
    for (int t = 0; t < STEPS; t++) {
        assert_int_equal(r[t].epoch, t / 30);
        assert_int_equal(r[t].bie, t % 30);
    }
    for (int e = 0; e < 2; e++) {
        int seen[180] = {0}, owner[9];
        for (int i = 0; i < 9; i++)
            owner[i] = -1;
        for (int t = e * 30; t < e * 30 + 30; t++)
            for (int j = 0; j < G; j++) {
                int idx = atoi(r[t].keys[j] + 6), rank = j / 2;
                seen[idx]++;
                if (owner[idx / 20] < 0) owner[idx / 20] = rank;
                assert_int_equal(owner[idx / 20], rank); // a shard belongs to one rank
            }
        for (int i = 0; i < 180; i++)
            assert_int_equal(seen[i], 1);
    }
    // resume in shard mode: same world continues exactly; another world is refused
    StreamCursor c;
    free(run_global(o, 3, 35, NULL, &c));
    Rec *tail = run_global(o, 3, STEPS - 35, &c, NULL);
    assert_recs_equal(r + 35, tail, STEPS - 35, G);
    free(tail);
    o.world = 2, o.rank = 0;
    char err[512];
    assert_null(stream_open(&o, &c, err, sizeof(err)));
    assert_non_null(strstr(err, "number of ranks"));
    free(r);
}

// `shard` mode with unequal shares: 9 shards over 2 ranks (100 vs 80 samples) → 40 steps per
// epoch for both; the larger rank's extra samples are dropped.
static void test_shard_mode_unequal(void **state) {
    (void)state;
    enum { G = 4, STEPS = 90 };
    StreamOptions o = base_opts(g_dir, G);
    o.split = SPLIT_SHARD;
    o.prefetch = 1;
    Rec *r = run_global(o, 2, STEPS, NULL, NULL);
    for (int t = 0; t < STEPS; t++) {
        assert_int_equal(r[t].epoch, t / 40);
        assert_int_equal(r[t].bie, t % 40);
    }
    free(r);
    // more ranks than shards: refused at open
    o.world = 10, o.global_batch = 10;
    char err[512];
    assert_null(stream_open(&o, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "at least as many shards as ranks"));
}

// ---- bad input ----

static uint8_t *g_png;
static size_t g_png_len;

static void add_good(FxMember *m, int *n, const char *key, const char *caption) {
    char *a = strdup(fx_path("%s.png", key)), *b = strdup(fx_path("%s.txt", key));
    m[(*n)++] = (FxMember){a, g_png, g_png_len};
    m[(*n)++] = (FxMember){b, caption, 0};
}

static void free_names(FxMember *m, int n, int from) {
    for (int i = from; i < n; i++)
        free((void *)m[i].name);
}

// A PNG whose header is fine but whose pixel data is garbage.
static uint8_t *corrupt_png(size_t *n) {
    uint8_t *p = fx_png(8, 8, 99, n);
    for (size_t i = 41; i < *n - 12; i++)
        p[i] ^= 0xA5;
    return p;
}

// A PNG header claiming 100000 × 100000 pixels.
static uint8_t *huge_png(size_t *n) {
    uint8_t *p = fx_png(8, 8, 98, n);
    const uint8_t big[8] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0};
    memcpy(p + 16, big, 8);
    return p;
}

// Builds DIR with: shard0 (goods then one sample per cheap problem, plus a corrupt PNG),
// shard1 (goods, truncated), shard2.tar.gz (goods, corrupt gzip), shard3 (empty).
static void make_bad_dataset(const char *dir, int with_damage) {
    size_t cn, hn;
    uint8_t *bad = corrupt_png(&cn), *huge = huge_png(&hn);
    FxMember m[64];
    int n = 0;
    for (int i = 0; i < 10; i++)
        add_good(m, &n, fx_path("good%02d", i), "a red circle");
    int named = n;
    m[n++] = (FxMember){"corrupt.png", bad, cn};
    m[n++] = (FxMember){"corrupt.txt", "a blue square", 0};
    m[n++] = (FxMember){"notimg.png", "this is text, not a picture", 0};
    m[n++] = (FxMember){"notimg.txt", "a caption", 0};
    m[n++] = (FxMember){"badhdr.png", g_png, 12}; // PNG signature, header cut off
    m[n++] = (FxMember){"badhdr.txt", "a caption", 0};
    m[n++] = (FxMember){"huge.png", huge, hn};
    m[n++] = (FxMember){"huge.txt", "a caption", 0};
    m[n++] = (FxMember){"nocap.png", g_png, g_png_len};
    m[n++] = (FxMember){"emptycap.png", g_png, g_png_len};
    m[n++] = (FxMember){"emptycap.txt", " \n", 0};
    m[n++] = (FxMember){"badutf.png", g_png, g_png_len};
    m[n++] = (FxMember){"badutf.txt", "caf\xe9 au lait", 0};
    m[n++] = (FxMember){"badcls.png", g_png, g_png_len};
    m[n++] = (FxMember){"badcls.txt", "a caption", 0};
    m[n++] = (FxMember){"badcls.cls", "seven", 0};
    m[n++] = (FxMember){"dots.png", g_png, g_png_len};
    m[n++] = (FxMember){"dots.b.txt", "a caption under extension b.txt", 0};
    m[n++] = (FxMember){"onlytext.txt", "a caption without image", 0};
    fx_tar(fx_path("%s/shard0.tar", dir), m, n);
    free_names(m, named, 0);
    if (with_damage) {
        n = 0;
        for (int i = 0; i < 20; i++)
            add_good(m, &n, fx_path("trunc%02d", i), "a green star");
        fx_tar(fx_path("%s/shard1.tar", dir), m, n);
        fx_truncate(fx_path("%s/shard1.tar", dir), 0.5);
        free_names(m, n, 0);
        n = 0;
        for (int i = 0; i < 20; i++)
            add_good(m, &n, fx_path("gz%02d", i), "a white cross");
        fx_tar(fx_path("%s/shard2.tar.gz", dir), m, n);
        free_names(m, n, 0);
        size_t zn;
        uint8_t *z = fx_read_file(fx_path("%s/shard2.tar.gz", dir), &zn);
        for (size_t i = zn / 2; i < zn / 2 + 32; i++)
            z[i] ^= 0x3C;
        fx_write_file(fx_path("%s/shard2.tar.gz", dir), z, zn);
        free(z);
        fx_tar(fx_path("%s/shard3.tar", dir), NULL, 0);
    }
    free(bad);
    free(huge);
}

static void test_bad_input_stream(void **state) {
    (void)state;
    g_png = fx_png(8, 8, 7, &g_png_len);
    char *dir = fx_tmpdir("bad");
    make_bad_dataset(dir, 1);
    const char *caps[] = {"a red circle", "a blue square", "a green star", "a white cross"};
    fx_vocab(fx_path("%s/vocab.txt", dir), caps, 4);
    char err[1024];
    Tokenizer *tok = tokenizer_load(fx_path("%s/vocab.txt", dir), err, sizeof(err));
    char *logpath = strdup(fx_path("%s/warnings.log", dir));
    FILE *log = fopen(logpath, "w");
    StreamOptions o = base_opts(dir, 2);
    o.tokenizer = tok, o.log = log, o.max_pixels = 1 << 20, o.shuffle_buffer = 4;
    Stream *s = open_or_fail(&o, NULL);
    const Batch *b = NULL;
    int corrupt_seen = 0;
    for (int t = 0; t < 60; t++) {
        if (stream_next(s, &b, NULL, err, sizeof(err))) fail_msg("%s", err);
        for (int j = 0; j < b->n; j++) {
            const char *k = b->keys[j];
            assert_true(!strncmp(k, "good", 4) || !strncmp(k, "trunc", 5) || !strncmp(k, "gz", 2));
            corrupt_seen += !strcmp(k, "corrupt");
        }
    }
    assert_int_equal(corrupt_seen, 0); // replaced by its batch neighbour every time
    const StreamCounters *c = &b->counters;
    for (int p = SAMPLE_NO_IMAGE; p < SAMPLE_PROBLEM_COUNT; p++)
        if (c->skipped[p] < 1) fail_msg("no %s counted", sample_problem_name((SampleProblem)p));
    assert_true(c->skipped[SAMPLE_NO_CAPTION] >= 2); // nocap, and dots (b.txt is no caption)
    assert_true(c->substituted >= 1);
    assert_true(c->shards_damaged >= 2);
    assert_true(c->shards_empty >= 1);
    assert_true(c->members_ignored >= 1);
    assert_true(stream_counters_skipped(c) >= 9);
    stream_close(s);
    fclose(log);
    char *text = fx_slurp(logpath);
    const char *expect[] = {
        "'notimg' in",   "'badhdr' in",     "'huge' in",       "'nocap' in",
        "'emptycap' in", "'badutf' in",     "'badcls' in",     "'dots' in",
        "'onlytext' in", "'corrupt' in",    "shard1.tar",      "shard2.tar.gz",
        "shard0.tar",    "not valid UTF-8", "above the limit", "failed to decode"};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        if (!strstr(text, expect[i])) fail_msg("warnings lack \"%s\":\n%s", expect[i], text);
    free(text);

    // rate limit: one line per kind, then one "suppressed" line
    log = fopen(logpath, "w");
    o.warn_limit = 1;
    o.log = log;
    s = open_or_fail(&o, NULL);
    for (int t = 0; t < 40; t++)
        assert_int_equal(stream_next(s, &b, NULL, err, sizeof(err)), 0);
    stream_close(s);
    fclose(log);
    text = fx_slurp(logpath);
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert_non_null(strstr(text, "further 'no_caption' warnings suppressed"));
    assert_true(lines <= 2 * (SAMPLE_PROBLEM_COUNT + 1));
    free(text);
    free(logpath);
    tokenizer_free(tok);
    fx_rmtree(dir);
    free(dir);
    free(g_png);
}

// A decode failure is substituted the same way on any number of ranks.
static void test_decode_failure_rank_invariant(void **state) {
    (void)state;
    g_png = fx_png(8, 8, 7, &g_png_len);
    char *dir = fx_tmpdir("bad");
    make_bad_dataset(dir, 0);
    const char *caps[] = {"a red circle", "a blue square"};
    fx_vocab(fx_path("%s/vocab.txt", dir), caps, 2);
    char err[1024];
    Tokenizer *tok = tokenizer_load(fx_path("%s/vocab.txt", dir), err, sizeof(err));
    StreamOptions o = base_opts(fx_path("%s/shard0.tar", dir), 4);
    o.tokenizer = tok, o.warn_limit = 0;
    Rec *one = run_global(o, 1, 20, NULL, NULL);
    Rec *four = run_global(o, 4, 20, NULL, NULL);
    assert_recs_equal(one, four, 20, 4);
    free(one), free(four);
    tokenizer_free(tok);
    fx_rmtree(dir);
    free(dir);
    free(g_png);
}

// No usable sample at all, or fewer than one global batch: a clear error, never a hang.
static void test_no_usable_samples(void **state) {
    (void)state;
    g_png = fx_png(8, 8, 7, &g_png_len);
    char *dir = fx_tmpdir("none");
    FxMember m[] = {{"a.png", g_png, g_png_len}, {"b.png", g_png, g_png_len}, {"c.txt", "x", 0}};
    fx_tar(fx_path("%s/only-bad.tar", dir), m, 3);
    FxMember few[] = {{"a.png", g_png, g_png_len}, {"a.txt", "a red circle", 0}};
    fx_tar(fx_path("%s/few.tar", dir), few, 2);
    for (int prefetch = 0; prefetch <= 2; prefetch += 2) {
        const char *specs[] = {fx_path("%s/only-bad.tar", dir), fx_path("%s/few.tar", dir)};
        for (int k = 0; k < 2; k++) {
            StreamOptions o = base_opts(specs[k], 2);
            o.prefetch = prefetch, o.warn_limit = 0;
            Stream *s = open_or_fail(&o, NULL);
            const Batch *b;
            char err[1024] = "";
            assert_int_not_equal(stream_next(s, &b, NULL, err, sizeof(err)), 0);
            assert_non_null(strstr(err, "no complete global batch"));
            assert_non_null(strstr(err, k ? "1 usable samples" : "0 usable samples"));
            assert_int_not_equal(stream_next(s, &b, NULL, err, sizeof(err)), 0); // stays failed
            stream_close(s);
        }
    }
    fx_rmtree(dir);
    free(dir);
    free(g_png);
}

// Errors found at open: missing shard of a pattern, batch not divisible, bad cursors.
static void test_open_errors(void **state) {
    (void)state;
    char err[1024];
    StreamOptions o = base_opts(fx_path("%s/train-{000000..000009}.tar", g_dir), 8);
    assert_null(stream_open(&o, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "train-000009.tar"));
    assert_non_null(strstr(err, "does not exist"));
    o = base_opts(fx_path("%s/train-{000000..000008}.tar", g_dir), 6);
    o.world = 4;
    assert_null(stream_open(&o, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "multiple of the number of ranks"));
    o.world = 2;
    Stream *s = open_or_fail(&o, NULL);
    StreamCursor c;
    stream_cursor(s, &c);
    assert_int_equal(c.epoch, 0);
    assert_int_equal(c.step, 0);
    assert_int_equal(stream_num_shards(s), 9);
    stream_close(s);
    int64_t words[STREAM_CURSOR_WORDS];
    stream_cursor_pack(words, &c);
    words[0] ^= 1;
    assert_int_not_equal(stream_cursor_unpack(&c, words, err, sizeof(err)), 0);
    words[0] ^= 1;
    assert_int_equal(stream_cursor_unpack(&c, words, err, sizeof(err)), 0);
    o.global_batch = 8;
    assert_null(stream_open(&o, &c, err, sizeof(err)));
    assert_non_null(strstr(err, "global batch"));
    o.global_batch = 6, o.seed = 99;
    assert_null(stream_open(&o, &c, err, sizeof(err)));
    assert_non_null(strstr(err, "seed"));
    stream_close(NULL);
    SplitMode m;
    assert_int_equal(split_mode_parse("shard", &m), 0);
    assert_int_equal(m, SPLIT_SHARD);
    assert_int_equal(split_mode_parse("sample", &m), 0);
    assert_int_equal(m, SPLIT_SAMPLE);
    assert_int_not_equal(split_mode_parse("rank", &m), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_mode_rank_invariance),
        cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_prefetch_and_seed),
        cmocka_unit_test(test_batch_contents),
        cmocka_unit_test(test_shard_mode),
        cmocka_unit_test(test_shard_mode_unequal),
        cmocka_unit_test(test_bad_input_stream),
        cmocka_unit_test(test_decode_failure_rank_invariant),
        cmocka_unit_test(test_no_usable_samples),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
