// Deterministic WebDataset shard writing on libarchive, and a writer that rolls over to the next
// shard every per_shard samples. Files are written under a temporary name and renamed when
// complete, so an interrupted run never leaves a shard that looks finished.
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

struct TarWriter {
    struct archive *a;
    struct archive_entry *entry;
    char *path, *tmp_path;
    int failed;
};

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static void writer_free(TarWriter *w) {
    if (!w) return;
    if (w->a) archive_write_free(w->a);
    if (w->entry) archive_entry_free(w->entry);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

TarWriter *tar_writer_open(const char *path, char *err, size_t errlen) {
    TarWriter *w = calloc(1, sizeof(*w));
    size_t n = strlen(path) + 32;
    if (!w || !(w->path = strdup(path)) || !(w->tmp_path = malloc(n)) ||
        !(w->a = archive_write_new()) || !(w->entry = archive_entry_new())) {
        snprintf(err, errlen, "%s: out of memory", path);
        writer_free(w);
        return NULL;
    }
    snprintf(w->tmp_path, n, "%s.tmp%ld", path, (long)getpid());
    int gz = ends_with(path, ".gz") || ends_with(path, ".tgz");
    if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
        (gz && archive_write_add_filter_gzip(w->a) != ARCHIVE_OK) ||
        (gz && archive_write_set_options(w->a, "gzip:!timestamp") != ARCHIVE_OK) ||
        archive_write_open_filename(w->a, w->tmp_path) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: cannot create shard: %s", path, archive_error_string(w->a));
        writer_free(w);
        return NULL;
    }
    return w;
}

int tar_writer_add(TarWriter *w, const char *name, const void *data, size_t n, char *err,
                   size_t errlen) {
    archive_entry_clear(w->entry);
    archive_entry_set_pathname(w->entry, name);
    archive_entry_set_filetype(w->entry, AE_IFREG);
    archive_entry_set_perm(w->entry, 0644);
    archive_entry_set_size(w->entry, (la_int64_t)n);
    archive_entry_set_mtime(w->entry, 0, 0);
    archive_entry_set_uid(w->entry, 0);
    archive_entry_set_gid(w->entry, 0);
    if (archive_write_header(w->a, w->entry) != ARCHIVE_OK) goto fail;
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        la_ssize_t put = archive_write_data(w->a, p, left);
        if (put <= 0) goto fail;
        p += put;
        left -= (size_t)put;
    }
    if (archive_write_finish_entry(w->a) != ARCHIVE_OK) goto fail;
    return 0;
fail:
    w->failed = 1;
    snprintf(err, errlen, "%s: cannot write member '%s': %s", w->path, name,
             archive_error_string(w->a));
    return -1;
}

int tar_writer_add_sample(TarWriter *w, const TarSampleOut *s, char *err, size_t errlen) {
    // Members in sorted extension order, as webdataset's TarWriter writes them.
    const char *exts[4];
    const void *data[4];
    size_t lens[4];
    char label[16];
    int n = 0;
    if (s->has_label) {
        snprintf(label, sizeof(label), "%d", s->label);
        exts[n] = "cls", data[n] = label, lens[n++] = strlen(label);
    }
    if (s->image) exts[n] = s->image_ext, data[n] = s->image, lens[n++] = s->image_len;
    if (s->json) exts[n] = "json", data[n] = s->json, lens[n++] = strlen(s->json);
    if (s->caption) exts[n] = "txt", data[n] = s->caption, lens[n++] = strlen(s->caption);
    for (int i = 1; i < n; i++) // insertion sort: at most four members
        for (int j = i; j > 0 && strcmp(exts[j - 1], exts[j]) > 0; j--) {
            const char *te = exts[j];
            const void *td = data[j];
            size_t tl = lens[j];
            exts[j] = exts[j - 1], data[j] = data[j - 1], lens[j] = lens[j - 1];
            exts[j - 1] = te, data[j - 1] = td, lens[j - 1] = tl;
        }
    if (strchr(s->key, '.') || !s->key[0]) {
        snprintf(err, errlen, "%s: sample key '%s' is empty or holds a dot", w->path, s->key);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char name[4096];
        if (snprintf(name, sizeof(name), "%s.%s", s->key, exts[i]) >= (int)sizeof(name)) {
            snprintf(err, errlen, "%s: sample key too long", w->path);
            return -1;
        }
        if (tar_writer_add(w, name, data[i], lens[i], err, errlen)) return -1;
    }
    return 0;
}

int tar_writer_close(TarWriter *w, char *err, size_t errlen) {
    if (!w) return 0;
    int rc = w->failed ? -1 : 0;
    if (archive_write_close(w->a) != ARCHIVE_OK) {
        if (!rc)
            snprintf(err, errlen, "%s: cannot finish shard: %s", w->path,
                     archive_error_string(w->a));
        rc = -1;
    }
    if (!rc && rename(w->tmp_path, w->path)) {
        snprintf(err, errlen, "%s: cannot rename the finished shard into place", w->path);
        rc = -1;
    }
    if (rc) unlink(w->tmp_path);
    writer_free(w);
    return rc;
}

// ---- Rolling shard writer ----

struct ShardWriter {
    char *prefix, *suffix;
    int width, zero;
    int64_t per_shard, in_shard;
    int shard;
    TarWriter *cur;
};

// Parses "prefix%[0][width]dsuffix" ("%%" is a literal percent sign).
static int parse_pattern(const char *pat, size_t *conv_at, size_t *conv_len, int *zero,
                         int *width) {
    int found = 0;
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] != '%') continue;
        if (pat[i + 1] == '%') {
            i++;
            continue;
        }
        size_t j = i + 1;
        int z = 0, wd = 0;
        if (pat[j] == '0') z = 1, j++;
        while (pat[j] >= '0' && pat[j] <= '9' && wd < 100)
            wd = wd * 10 + (pat[j++] - '0');
        if (pat[j] != 'd' || wd > 20 || found) return -1;
        found = 1;
        *conv_at = i, *conv_len = j + 1 - i, *zero = z, *width = wd;
        i = j;
    }
    return found ? 0 : -1;
}

int shard_pattern_check(const char *pattern, char *err, size_t errlen) {
    size_t at, len;
    int zero, width;
    if (parse_pattern(pattern, &at, &len, &zero, &width)) {
        snprintf(err, errlen,
                 "shard pattern '%s' must hold exactly one integer conversion like %%06d "
                 "(e.g. out/train-%%06d.tar)",
                 pattern);
        return -1;
    }
    return 0;
}

// Copies s[0..n) replacing "%%" by "%".
static char *unescape(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        out[k++] = s[i];
        if (s[i] == '%' && i + 1 < n && s[i + 1] == '%') i++;
    }
    out[k] = 0;
    return out;
}

ShardWriter *shard_writer_open(const char *pattern, int64_t per_shard, char *err, size_t errlen) {
    size_t at, len;
    int zero, width;
    if (shard_pattern_check(pattern, err, errlen)) return NULL;
    parse_pattern(pattern, &at, &len, &zero, &width);
    if (per_shard < 1) {
        snprintf(err, errlen, "samples per shard must be at least 1 (got %lld)",
                 (long long)per_shard);
        return NULL;
    }
    ShardWriter *w = calloc(1, sizeof(*w));
    if (!w || !(w->prefix = unescape(pattern, at)) ||
        !(w->suffix = unescape(pattern + at + len, strlen(pattern + at + len)))) {
        snprintf(err, errlen, "out of memory");
        if (w) free(w->prefix);
        free(w);
        return NULL;
    }
    w->zero = zero, w->width = width, w->per_shard = per_shard;
    return w;
}

int shard_writer_add(ShardWriter *w, const TarSampleOut *s, char *err, size_t errlen) {
    if (w->cur && w->in_shard == w->per_shard) {
        TarWriter *done = w->cur;
        w->cur = NULL;
        w->shard++;
        if (tar_writer_close(done, err, errlen)) return -1;
    }
    if (!w->cur) {
        size_t n = strlen(w->prefix) + strlen(w->suffix) + 32;
        char *path = malloc(n);
        if (!path) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (w->zero)
            snprintf(path, n, "%s%0*d%s", w->prefix, w->width, w->shard, w->suffix);
        else
            snprintf(path, n, "%s%*d%s", w->prefix, w->width, w->shard, w->suffix);
        w->cur = tar_writer_open(path, err, errlen);
        free(path);
        if (!w->cur) return -1;
        w->in_shard = 0;
    }
    if (tar_writer_add_sample(w->cur, s, err, errlen)) return -1;
    w->in_shard++;
    return 0;
}

int shard_writer_close(ShardWriter *w, int *n_shards, char *err, size_t errlen) {
    if (!w) return 0;
    int rc = 0, n = w->shard;
    if (w->cur) {
        rc = tar_writer_close(w->cur, err, errlen);
        n++;
    }
    if (n_shards) *n_shards = n;
    free(w->prefix);
    free(w->suffix);
    free(w);
    return rc;
}
