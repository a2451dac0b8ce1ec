// Dataset statistics for `tijepa data stats`: one pass over every sample (full decode) counting
// problems by cause, caption lengths, [UNK] share, labels, duplicate captions and images — the
// data-bias report to read before training.
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#define CAPTION_TEXT_KEPT 80 // bytes of each distinct caption kept for the "most repeated" list
#define MAX_TOKENS 1024

static int errorf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

uint64_t data_fnv1a64(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

// Open-addressing set of 64-bit hashes with counts (and, for captions, a text prefix).
typedef struct {
    uint64_t *keys; // 0 = empty (hash 0 is remapped to 1)
    int64_t *counts;
    char (*text)[CAPTION_TEXT_KEPT];
    size_t n, cap;
} HashCount;

static int hc_grow(HashCount *h, int with_text) {
    size_t cap = h->cap ? h->cap * 2 : 1024;
    HashCount g = {calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(int64_t)),
                   with_text ? calloc(cap, CAPTION_TEXT_KEPT) : NULL, h->n, cap};
    if (!g.keys || !g.counts || (with_text && !g.text)) {
        free(g.keys), free(g.counts), free(g.text);
        return -1;
    }
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->keys[i]) continue;
        size_t j = h->keys[i] & (cap - 1);
        while (g.keys[j])
            j = (j + 1) & (cap - 1);
        g.keys[j] = h->keys[i], g.counts[j] = h->counts[i];
        if (with_text) memcpy(g.text[j], h->text[i], CAPTION_TEXT_KEPT);
    }
    free(h->keys), free(h->counts), free(h->text);
    *h = g;
    return 0;
}

// Adds one occurrence; returns the count before it (0 = first time), −1 on out of memory.
static int64_t hc_add(HashCount *h, uint64_t key, const char *text) {
    if (!key) key = 1;
    if ((h->n + 1) * 2 > h->cap && hc_grow(h, text != NULL)) return -1;
    size_t j = key & (h->cap - 1);
    while (h->keys[j] && h->keys[j] != key)
        j = (j + 1) & (h->cap - 1);
    if (!h->keys[j]) {
        h->keys[j] = key, h->n++;
        if (text) snprintf(h->text[j], CAPTION_TEXT_KEPT, "%s", text);
    }
    return h->counts[j]++;
}

static void hc_free(HashCount *h) {
    free(h->keys), free(h->counts), free(h->text);
}

static int bin_of(int64_t len) {
    int b = 0;
    for (int64_t edge = 4; b < DATA_STATS_LEN_BINS - 1 && len > edge; edge *= 2)
        b++;
    return b;
}

static int64_t count_words(const char *s) {
    int64_t n = 0;
    int in = 0;
    for (; *s; s++) {
        int space = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
        if (!space && !in) n++;
        in = !space;
    }
    return n;
}

static int add_label(DataStats *st, int64_t value) {
    int64_t lo = 0, hi = st->n_labels;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (st->label_values[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < st->n_labels && st->label_values[lo] == value) {
        st->label_counts[lo]++;
        return 0;
    }
    int64_t *v = realloc(st->label_values, (size_t)(st->n_labels + 1) * sizeof(int64_t));
    if (!v) return -1;
    st->label_values = v;
    int64_t *c = realloc(st->label_counts, (size_t)(st->n_labels + 1) * sizeof(int64_t));
    if (!c) return -1;
    st->label_counts = c;
    memmove(v + lo + 1, v + lo, (size_t)(st->n_labels - lo) * sizeof(int64_t));
    memmove(c + lo + 1, c + lo, (size_t)(st->n_labels - lo) * sizeof(int64_t));
    v[lo] = value, c[lo] = 1;
    st->n_labels++;
    return 0;
}

int data_stats_compute(DataStats *st, const char *spec, const Tokenizer *tok, size_t max_pixels,
                       FILE *log, char *err, size_t errlen) {
    memset(st, 0, sizeof(*st));
    ShardList shards;
    if (shard_spec_expand(&shards, spec, err, errlen)) return -1;
    HashCount captions = {0}, images = {0};
    int32_t *ids = malloc(MAX_TOKENS * sizeof(int32_t));
    int rc = ids ? 0 : errorf(err, errlen, "out of memory");
    double len_sum = 0;
    st->tokenized = tok != NULL;
    st->len_min = -1;
    st->width_min = st->height_min = -1;
    int warned = 0;
    for (int si = 0; si < shards.n && !rc; si++) {
        char e[1024], why[256];
        st->shards++;
        TarReader *tr = tar_reader_open(shards.paths[si], e, sizeof(e));
        if (!tr) {
            st->shards_damaged++;
            if (log) fprintf(log, "tijepa data: %s\n", e);
            continue;
        }
        TarSample t;
        int r, in_shard = 0;
        while (!rc && (r = tar_reader_next(tr, &t, e, sizeof(e))) == 1) {
            in_shard++;
            st->samples_read++;
            st->members_ignored += t.n_ignored;
            int label, w, h;
            SampleProblem p = sample_check(&t, max_pixels, &label, &w, &h, why, sizeof(why));
            ImageU8 img = {0};
            if (p == SAMPLE_OK &&
                image_decode(&img, t.image, t.image_len, max_pixels, t.key, why, sizeof(why))) {
                p = SAMPLE_DECODE_FAILED;
                image_free(&img);
            }
            if (p != SAMPLE_OK) {
                st->problems[p]++;
                if (log && warned++ < 20)
                    fprintf(log, "tijepa data: sample '%s' in %s: %s: %s\n", t.key, t.shard,
                            sample_problem_name(p), why);
                continue;
            }
            st->samples_usable++;
            if (st->width_min < 0 || w < st->width_min) st->width_min = w;
            if (st->height_min < 0 || h < st->height_min) st->height_min = h;
            if (w > st->width_max) st->width_max = w;
            if (h > st->height_max) st->height_max = h;
            uint64_t ph = data_fnv1a64(img.rgb, (size_t)img.width * img.height * 3);
            ph ^= data_fnv1a64(&img.width, sizeof(int)) * 31 + (uint64_t)img.height;
            image_free(&img);
            int64_t seen = hc_add(&images, ph, NULL);
            int64_t cseen = hc_add(&captions, data_fnv1a64(t.caption, t.caption_len), t.caption);
            if (seen < 0 || cseen < 0) {
                rc = errorf(err, errlen, "out of memory");
                break;
            }
            st->duplicate_images += seen > 0;
            st->duplicate_captions += cseen > 0;
            int64_t len;
            if (tok) {
                int n_unk = 0;
                int n =
                    tokenizer_encode(tok, t.caption, ids, NULL, MAX_TOKENS, &n_unk, e, sizeof(e));
                len = n > 2 ? n - 2 : 0; // without [CLS] and [SEP]
                st->tokens += len;
                st->unk_tokens += n_unk;
            } else {
                len = count_words(t.caption);
            }
            st->len_hist[bin_of(len)]++;
            if (st->len_min < 0 || len < st->len_min) st->len_min = len;
            if (len > st->len_max) st->len_max = len;
            len_sum += (double)len;
            if (label < 0)
                st->unlabelled++;
            else if (add_label(st, label))
                rc = errorf(err, errlen, "out of memory");
        }
        if (!rc && r < 0) {
            st->shards_damaged++;
            if (log) fprintf(log, "tijepa data: %s\n", e);
        }
        if (in_shard == 0 && r == 0) st->shards_empty++;
        tar_reader_close(tr);
    }
    if (!rc) {
        st->len_mean = st->samples_usable ? len_sum / (double)st->samples_usable : 0;
        if (st->len_min < 0) st->len_min = 0;
        if (st->width_min < 0) st->width_min = st->height_min = 0;
        st->distinct_captions = (int64_t)captions.n;
        for (int k = 0; k < 5; k++) { // the most repeated captions (count ≥ 2)
            int64_t best = 1;
            size_t at = 0;
            for (size_t i = 0; i < captions.cap; i++)
                if (captions.keys[i] && captions.counts[i] > best)
                    best = captions.counts[i], at = i;
            if (best < 2) break;
            snprintf(st->top_caption[k], sizeof(st->top_caption[k]), "%s", captions.text[at]);
            st->top_caption_count[k] = best;
            captions.counts[at] = -captions.counts[at]; // exclude from the next rounds
        }
    }
    hc_free(&captions);
    hc_free(&images);
    free(ids);
    shard_list_free(&shards);
    return rc;
}

void data_stats_free(DataStats *st) {
    free(st->label_values);
    free(st->label_counts);
    st->label_values = st->label_counts = NULL;
    st->n_labels = 0;
}

static const char *const BIN_NAMES[DATA_STATS_LEN_BINS] = {"1-4",   "5-8",    "9-16",    "17-32",
                                                           "33-64", "65-128", "129-256", ">256"};

static double pct(int64_t a, int64_t b) {
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

void data_stats_print(const DataStats *st, FILE *out) {
    int64_t skipped = 0;
    for (int p = 1; p < SAMPLE_PROBLEM_COUNT; p++)
        skipped += st->problems[p];
    fprintf(out, "shards              %lld (%lld damaged, %lld empty)\n", (long long)st->shards,
            (long long)st->shards_damaged, (long long)st->shards_empty);
    fprintf(out, "samples read        %lld\n", (long long)st->samples_read);
    fprintf(out, "usable              %lld (%.1f%%)\n", (long long)st->samples_usable,
            pct(st->samples_usable, st->samples_read));
    fprintf(out, "skipped             %lld\n", (long long)skipped);
    for (int p = 1; p < SAMPLE_PROBLEM_COUNT; p++)
        if (st->problems[p])
            fprintf(out, "  %-17s %lld\n", sample_problem_name((SampleProblem)p),
                    (long long)st->problems[p]);
    fprintf(out, "members ignored     %lld (unused extensions)\n", (long long)st->members_ignored);
    fprintf(out, "image sizes         %lldx%lld .. %lldx%lld\n", (long long)st->width_min,
            (long long)st->height_min, (long long)st->width_max, (long long)st->height_max);
    const char *unit = st->tokenized ? "tokens" : "words";
    fprintf(out, "caption length      %s: min %lld, mean %.1f, max %lld\n", unit,
            (long long)st->len_min, st->len_mean, (long long)st->len_max);
    int64_t peak = 1;
    for (int b = 0; b < DATA_STATS_LEN_BINS; b++)
        if (st->len_hist[b] > peak) peak = st->len_hist[b];
    for (int b = 0; b < DATA_STATS_LEN_BINS; b++) {
        if (!st->len_hist[b]) continue;
        int bar = (int)(40 * st->len_hist[b] / peak);
        fprintf(out, "  %-8s %8lld  %.*s\n", BIN_NAMES[b], (long long)st->len_hist[b],
                bar > 0 ? bar : 1, "########################################");
    }
    if (st->tokenized)
        fprintf(out, "[UNK] share         %.2f%% of %lld tokens\n", pct(st->unk_tokens, st->tokens),
                (long long)st->tokens);
    else
        fprintf(out, "[UNK] share         (give --vocab to count)\n");
    fprintf(out, "labels              %lld classes, %lld unlabelled\n", (long long)st->n_labels,
            (long long)st->unlabelled);
    for (int64_t i = 0; i < st->n_labels && i < 50; i++)
        fprintf(out, "  %-8lld %8lld  (%.1f%%)\n", (long long)st->label_values[i],
                (long long)st->label_counts[i], pct(st->label_counts[i], st->samples_usable));
    if (st->n_labels > 50) fprintf(out, "  ... %lld more\n", (long long)(st->n_labels - 50));
    fprintf(out, "duplicate captions  %lld samples repeat an earlier caption (%lld distinct)\n",
            (long long)st->duplicate_captions, (long long)st->distinct_captions);
    for (int k = 0; k < 5 && st->top_caption_count[k]; k++)
        fprintf(out, "  x%-6lld \"%s\"\n", (long long)st->top_caption_count[k], st->top_caption[k]);
    fprintf(out, "duplicate images    %lld samples repeat an earlier image (same pixels)\n",
            (long long)st->duplicate_images);
}

int data_stats_write_json(const DataStats *st, const char *path, char *err, size_t errlen) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "shards", (double)st->shards);
    cJSON_AddNumberToObject(r, "shards_damaged", (double)st->shards_damaged);
    cJSON_AddNumberToObject(r, "shards_empty", (double)st->shards_empty);
    cJSON_AddNumberToObject(r, "samples_read", (double)st->samples_read);
    cJSON_AddNumberToObject(r, "samples_usable", (double)st->samples_usable);
    cJSON *p = cJSON_AddObjectToObject(r, "problems");
    for (int k = 1; k < SAMPLE_PROBLEM_COUNT; k++)
        cJSON_AddNumberToObject(p, sample_problem_name((SampleProblem)k), (double)st->problems[k]);
    cJSON_AddNumberToObject(r, "members_ignored", (double)st->members_ignored);
    cJSON *len = cJSON_AddObjectToObject(r, "caption_length");
    cJSON_AddStringToObject(len, "unit", st->tokenized ? "tokens" : "words");
    cJSON_AddNumberToObject(len, "min", (double)st->len_min);
    cJSON_AddNumberToObject(len, "mean", st->len_mean);
    cJSON_AddNumberToObject(len, "max", (double)st->len_max);
    cJSON *hist = cJSON_AddObjectToObject(len, "histogram");
    for (int b = 0; b < DATA_STATS_LEN_BINS; b++)
        cJSON_AddNumberToObject(hist, BIN_NAMES[b], (double)st->len_hist[b]);
    if (st->tokenized) {
        cJSON_AddNumberToObject(r, "tokens", (double)st->tokens);
        cJSON_AddNumberToObject(r, "unk_tokens", (double)st->unk_tokens);
        cJSON_AddNumberToObject(r, "unk_share",
                                st->tokens ? (double)st->unk_tokens / st->tokens : 0);
    }
    cJSON *labels = cJSON_AddObjectToObject(r, "labels");
    for (int64_t i = 0; i < st->n_labels; i++) {
        char k[32];
        snprintf(k, sizeof(k), "%lld", (long long)st->label_values[i]);
        cJSON_AddNumberToObject(labels, k, (double)st->label_counts[i]);
    }
    cJSON_AddNumberToObject(r, "unlabelled", (double)st->unlabelled);
    cJSON_AddNumberToObject(r, "duplicate_captions", (double)st->duplicate_captions);
    cJSON_AddNumberToObject(r, "distinct_captions", (double)st->distinct_captions);
    cJSON_AddNumberToObject(r, "duplicate_images", (double)st->duplicate_images);
    cJSON *top = cJSON_AddArrayToObject(r, "most_repeated_captions");
    for (int k = 0; k < 5 && st->top_caption_count[k]; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "caption", st->top_caption[k]);
        cJSON_AddNumberToObject(o, "count", (double)st->top_caption_count[k]);
        cJSON_AddItemToArray(top, o);
    }
    cJSON *size = cJSON_AddObjectToObject(r, "image_size");
    cJSON_AddNumberToObject(size, "width_min", (double)st->width_min);
    cJSON_AddNumberToObject(size, "width_max", (double)st->width_max);
    cJSON_AddNumberToObject(size, "height_min", (double)st->height_min);
    cJSON_AddNumberToObject(size, "height_max", (double)st->height_max);
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    FILE *f = text ? fopen(path, "w") : NULL;
    int rc = 0;
    if (!f || fprintf(f, "%s\n", text) < 0) rc = -1;
    if (f && fclose(f)) rc = -1;
    cJSON_free(text);
    if (rc) return errorf(err, errlen, "cannot write '%s'", path);
    return 0;
}
