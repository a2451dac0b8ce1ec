// Streaming WebDataset sample reader on libarchive: plain or gzip tar, members grouped into
// samples by key. One member of look-ahead: the header that ends a sample is kept pending and
// its data is read at the next call (libarchive leaves the data of the current entry unread).
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io.h"

#define MAX_TRACKED_EXTS                                                                           \
    64 // extensions remembered per sample for the "repeat starts a new sample" rule
#define MAX_EXT_LEN 32

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

// The byte source under libarchive: a file or a memory block, gunzipped here with zlib when it
// starts with the gzip magic. Doing gzip ourselves lets a corrupt stream fail loudly: zlib checks
// every member's CRC-32 and length, and data after the last member is an error. The source also
// remembers how many zero bytes ended the data, so that a tar cut at a member boundary (no
// end-of-archive blocks) is reported as truncated instead of ending quietly.
#define SRC_CHUNK (1 << 16)
typedef struct {
    FILE *file;
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    int gzip, gz_member_done, z_ready;
    z_stream z;
    uint8_t *in, *out;
    size_t in_len, in_pos; // undelivered raw bytes in `in` (plain) / compressed input (gzip)
    uint64_t total, trailing_zeros;
    char msg[256];
} Source;

struct TarReader {
    struct archive *a;
    Source src;
    char *name;
    int state; // 0 reading, 1 end of shard, 2 damaged
    char damage[512];
    // The member whose header was read but whose data was not (it starts the next sample).
    int have_pending;
    Buf pend_key;
    char pend_ext[MAX_EXT_LEN + 1];
    int64_t pend_size;
    // The sample being grouped.
    Buf key, image, caption, json, cls;
    Buf feat[3]; // feature members (FEATURE_EXT_*): img.f32, txt.f32, valid.u8
    char image_ext[8];
    int has_image, image_oversize, has_caption, has_json, has_cls, has_feat[3];
    char exts[MAX_TRACKED_EXTS][MAX_EXT_LEN + 1];
    int n_exts, n_members, n_ignored;
    int64_t skipped_members;
};

static size_t raw_read(Source *s, uint8_t *dst, size_t n) {
    if (s->file) return fread(dst, 1, n, s->file);
    size_t k = s->mem_len - s->mem_pos < n ? s->mem_len - s->mem_pos : n;
    memcpy(dst, s->mem + s->mem_pos, k);
    s->mem_pos += k;
    return k;
}

static void note_delivered(Source *s, const uint8_t *p, size_t n) {
    size_t z = 0;
    while (z < n && p[n - 1 - z] == 0)
        z++;
    s->trailing_zeros = z == n ? s->trailing_zeros + n : z;
    s->total += n;
}

static la_ssize_t src_fail(struct archive *a, Source *s, const char *msg) {
    snprintf(s->msg, sizeof(s->msg), "%s", msg);
    archive_set_error(a, EIO, "%s", s->msg);
    return -1;
}

static la_ssize_t gz_read(struct archive *a, Source *s, const void **buf) {
    s->z.next_out = s->out;
    s->z.avail_out = SRC_CHUNK;
    while (s->z.avail_out == SRC_CHUNK) {
        if (s->z.avail_in == 0) {
            size_t n = raw_read(s, s->in, SRC_CHUNK);
            if (s->file && ferror(s->file)) return src_fail(a, s, "read error");
            if (n == 0) {
                if (s->gz_member_done) break;
                return src_fail(a, s, "gzip data ends early (truncated file)");
            }
            s->z.next_in = s->in;
            s->z.avail_in = (uInt)n;
        }
        if (s->gz_member_done) { // more bytes after a gzip member: another member must follow
            while (s->z.avail_in && s->z.next_in[0] == 0) // zero padding (allowed, as by gzip)
                s->z.next_in++, s->z.avail_in--;
            if (s->z.avail_in == 0) continue;
            if (s->z.avail_in < 2) {
                memmove(s->in, s->z.next_in, s->z.avail_in);
                size_t n = raw_read(s, s->in + s->z.avail_in, SRC_CHUNK - s->z.avail_in);
                s->z.next_in = s->in;
                s->z.avail_in += (uInt)n;
            }
            if (s->z.avail_in < 2 || s->z.next_in[0] != 0x1f || s->z.next_in[1] != 0x8b)
                return src_fail(a, s, "unexpected data after the gzip stream");
            if (inflateReset(&s->z) != Z_OK) return src_fail(a, s, "zlib reset failed");
            s->gz_member_done = 0;
        }
        int rc = inflate(&s->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            s->gz_member_done = 1;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            char msg[200];
            snprintf(msg, sizeof(msg), "corrupt gzip data (%s)",
                     s->z.msg ? s->z.msg : "zlib error");
            return src_fail(a, s, msg);
        }
    }
    size_t n = SRC_CHUNK - s->z.avail_out;
    note_delivered(s, s->out, n);
    *buf = s->out;
    return (la_ssize_t)n;
}

static la_ssize_t src_read(struct archive *a, void *ud, const void **buf) {
    Source *s = ud;
    if (s->gzip) return gz_read(a, s, buf);
    if (s->in_pos == s->in_len) {
        s->in_len = raw_read(s, s->in, SRC_CHUNK);
        s->in_pos = 0;
        if (s->file && ferror(s->file)) return src_fail(a, s, "read error");
    }
    size_t n = s->in_len - s->in_pos;
    *buf = s->in + s->in_pos;
    note_delivered(s, s->in + s->in_pos, n);
    s->in_pos = s->in_len;
    return (la_ssize_t)n;
}

// Reads the first chunk and decides between plain and gzip.
static int src_start(Source *s) {
    if (!(s->in = malloc(SRC_CHUNK)) || !(s->out = malloc(SRC_CHUNK))) return -1;
    s->in_len = raw_read(s, s->in, SRC_CHUNK);
    s->in_pos = 0;
    if (s->in_len >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
        s->gzip = 1;
        memset(&s->z, 0, sizeof(s->z));
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) return -1;
        s->z_ready = 1;
        s->z.next_in = s->in;
        s->z.avail_in = (uInt)s->in_len;
    }
    return 0;
}

static void src_end(Source *s) {
    if (s->z_ready) inflateEnd(&s->z);
    if (s->file) fclose(s->file);
    free(s->in);
    free(s->out);
}

static int buf_reserve(Buf *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_set(Buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n + 1)) return -1;
    memcpy(b->data, s, n);
    b->data[n] = 0;
    b->len = n;
    return 0;
}

// Opens the reader over r->src (already holding its file or memory block).
static TarReader *reader_start(TarReader *r, char *err, size_t errlen) {
    if (!(r->a = archive_read_new()) || src_start(&r->src)) {
        snprintf(err, errlen, "%s: out of memory", r->name);
        tar_reader_close(r);
        return NULL;
    }
    archive_read_support_format_tar(r->a);
    archive_read_support_format_empty(r->a);
    if (archive_read_open(r->a, &r->src, NULL, src_read, NULL) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: cannot open shard: %s", r->name, archive_error_string(r->a));
        tar_reader_close(r);
        return NULL;
    }
    return r;
}

static TarReader *reader_new(const char *name, char *err, size_t errlen) {
    TarReader *r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(name))) {
        snprintf(err, errlen, "%s: out of memory", name);
        free(r);
        return NULL;
    }
    return r;
}

TarReader *tar_reader_open(const char *path, char *err, size_t errlen) {
    TarReader *r = reader_new(path, err, errlen);
    if (!r) return NULL;
    if (!(r->src.file = fopen(path, "rb"))) {
        snprintf(err, errlen, "%s: cannot open shard: %s", path, strerror(errno));
        tar_reader_close(r);
        return NULL;
    }
    return reader_start(r, err, errlen);
}

TarReader *tar_reader_open_memory(const void *data, size_t n, const char *name, char *err,
                                  size_t errlen) {
    TarReader *r = reader_new(name, err, errlen);
    if (!r) return NULL;
    r->src.mem = data;
    r->src.mem_len = n;
    return reader_start(r, err, errlen);
}

void tar_reader_close(TarReader *r) {
    if (!r) return;
    if (r->a) archive_read_free(r->a);
    src_end(&r->src);
    Buf *bufs[] = {&r->pend_key, &r->key,     &r->image,   &r->caption, &r->json,
                   &r->cls,      &r->feat[0], &r->feat[1], &r->feat[2]};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        free(bufs[i]->data);
    free(r->name);
    free(r);
}

int64_t tar_reader_skipped_members(const TarReader *r) {
    return r->skipped_members;
}

static int damaged(TarReader *r, const char *what, char *err, size_t errlen) {
    const char *why = archive_error_string(r->a);
    snprintf(r->damage, sizeof(r->damage), "%s: damaged shard (%s): %s", r->name, what,
             why ? why : "unknown libarchive error");
    r->state = 2;
    snprintf(err, errlen, "%s", r->damage);
    return -1;
}

// Splits a member path into key (directory + file name up to its first dot) and the lower-cased
// extension after that dot. 0 when the name has no key or no extension (member skipped).
static int split_name(const char *path, const char **key_end, char *ext) {
    const char *file = strrchr(path, '/');
    file = file ? file + 1 : path;
    const char *dot = strchr(file, '.');
    if (!dot || dot == file || dot[1] == 0) return 0;
    size_t n = strlen(dot + 1);
    if (n > MAX_EXT_LEN) n = MAX_EXT_LEN; // long extensions are never used ones: cut for the set
    for (size_t i = 0; i < n; i++) {
        char c = dot[1 + i];
        ext[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    ext[n] = 0;
    *key_end = dot;
    return 1;
}

// "__name__" files (webdataset metadata) and keys whose file part is "__name__".
static int is_meta(const char *path, const char *key_end) {
    const char *file = strrchr(path, '/');
    file = file ? file + 1 : path;
    size_t n = strlen(file), k = (size_t)(key_end - file);
    if (n >= 4 && !strncmp(file, "__", 2) && !strcmp(file + n - 2, "__")) return 1;
    return k >= 4 && !strncmp(file, "__", 2) && !strncmp(key_end - 2, "__", 2);
}

static void reset_sample(TarReader *r) {
    r->has_image = r->image_oversize = r->has_caption = r->has_json = r->has_cls = 0;
    r->has_feat[0] = r->has_feat[1] = r->has_feat[2] = 0;
    r->n_exts = r->n_members = r->n_ignored = 0;
    r->image_ext[0] = 0;
}

static int ext_seen(const TarReader *r, const char *ext) {
    for (int i = 0; i < r->n_exts; i++)
        if (!strcmp(r->exts[i], ext)) return 1;
    return 0;
}

// Reads the current entry's data into b (NUL-terminated), growing as bytes arrive so that a
// header claiming a huge size cannot make us allocate it up front.
static int read_member(TarReader *r, Buf *b) {
    b->len = 0;
    for (;;) {
        if (buf_reserve(b, b->len + 65536 + 1)) return -2;
        la_ssize_t got = archive_read_data(r->a, b->data + b->len, b->cap - b->len - 1);
        if (got < 0) return -1;
        if (got == 0) break;
        b->len += (size_t)got;
    }
    b->data[b->len] = 0;
    return 0;
}

// Consumes the pending member into the sample being grouped.
static int take_pending(TarReader *r, char *err, size_t errlen) {
    const char *ext = r->pend_ext;
    if (r->n_exts < MAX_TRACKED_EXTS) snprintf(r->exts[r->n_exts++], MAX_EXT_LEN + 1, "%s", ext);
    r->n_members++;
    Buf *target = NULL;
    int kept = 0; // an oversized first image is kept as "present, bytes not read"
    int is_image = !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg");
    if (is_image && !r->has_image) {
        r->has_image = 1;
        memcpy(r->image_ext, ext, strlen(ext) + 1); // "png", "jpg" or "jpeg"
        if ((uint64_t)r->pend_size > TAR_MEMBER_MAX) {
            r->image_oversize = 1;
            r->image.len = (size_t)r->pend_size;
            kept = 1;
        } else {
            target = &r->image;
        }
    } else if (!strcmp(ext, "txt") && !r->has_caption) {
        target = &r->caption, r->has_caption = 1;
    } else if (!strcmp(ext, "json") && !r->has_json) {
        target = &r->json, r->has_json = 1;
    } else if (!strcmp(ext, "cls") && !r->has_cls) {
        target = &r->cls, r->has_cls = 1;
    } else {
        static const char *const feat_ext[3] = {FEATURE_EXT_IMG, FEATURE_EXT_TXT,
                                                FEATURE_EXT_VALID};
        for (int k = 0; k < 3 && !target; k++)
            if (!strcmp(ext, feat_ext[k]) && !r->has_feat[k])
                target = &r->feat[k], r->has_feat[k] = 1;
    }
    if (target && (uint64_t)r->pend_size > TAR_MEMBER_MAX) {
        // an oversized text or feature member: ignored like an unknown extension
        if (target == &r->caption) r->has_caption = 0;
        if (target == &r->json) r->has_json = 0;
        if (target == &r->cls) r->has_cls = 0;
        for (int k = 0; k < 3; k++)
            if (target == &r->feat[k]) r->has_feat[k] = 0;
        target = NULL;
    }
    if (!target) {
        r->n_ignored += !kept;
        if (archive_read_data_skip(r->a) != ARCHIVE_OK) return damaged(r, "data", err, errlen);
        return 0;
    }
    int rc = read_member(r, target);
    if (rc == -2) {
        snprintf(err, errlen, "%s: out of memory reading key '%s'", r->name, r->key.data);
        r->state = 2;
        snprintf(r->damage, sizeof(r->damage), "%s", err);
        return -1;
    }
    if (rc) return damaged(r, "member data", err, errlen);
    return 0;
}

static void fill_sample(TarReader *r, TarSample *s) {
    memset(s, 0, sizeof(*s));
    s->shard = r->name;
    s->key = r->key.data;
    if (r->has_image) {
        s->image_ext = r->image_ext;
        s->image = r->image_oversize ? NULL : (const uint8_t *)r->image.data;
        s->image_len = r->image.len;
    }
    if (r->has_caption) s->caption = r->caption.data, s->caption_len = r->caption.len;
    if (r->has_json) s->json = r->json.data, s->json_len = r->json.len;
    if (r->has_cls) s->cls = r->cls.data, s->cls_len = r->cls.len;
    if (r->has_feat[0])
        s->feat_img = (const uint8_t *)r->feat[0].data, s->feat_img_len = r->feat[0].len;
    if (r->has_feat[1])
        s->feat_txt = (const uint8_t *)r->feat[1].data, s->feat_txt_len = r->feat[1].len;
    if (r->has_feat[2])
        s->feat_valid = (const uint8_t *)r->feat[2].data, s->feat_valid_len = r->feat[2].len;
    s->n_members = r->n_members;
    s->n_ignored = r->n_ignored;
}

int tar_reader_next(TarReader *r, TarSample *s, char *err, size_t errlen) {
    if (r->state == 1) return 0;
    if (r->state == 2) {
        snprintf(err, errlen, "%s", r->damage);
        return -1;
    }
    reset_sample(r);
    int started = 0;
    for (;;) {
        if (!r->have_pending) {
            struct archive_entry *e;
            int rc = archive_read_next_header(r->a, &e);
            if (rc == ARCHIVE_EOF) {
                if (r->src.total > 0 && r->src.trailing_zeros < 512) {
                    r->state = 2;
                    snprintf(r->damage, sizeof(r->damage),
                             "%s: damaged shard: ends without the end-of-archive blocks "
                             "(truncated file?)",
                             r->name);
                    snprintf(err, errlen, "%s", r->damage);
                    return -1;
                }
                r->state = 1;
                if (!started) return 0;
                fill_sample(r, s);
                return 1;
            }
            if (rc < ARCHIVE_WARN) return damaged(r, "header", err, errlen);
            const char *path = archive_entry_pathname(e);
            if (!path) path = archive_entry_pathname_utf8(e);
            const char *key_end;
            char ext[MAX_EXT_LEN + 1];
            if (archive_entry_filetype(e) != AE_IFREG || !path ||
                !split_name(path, &key_end, ext) || is_meta(path, key_end)) {
                r->skipped_members++;
                continue; // libarchive skips the unread data at the next header
            }
            if (buf_set(&r->pend_key, path, (size_t)(key_end - path))) {
                snprintf(err, errlen, "%s: out of memory", r->name);
                return -1;
            }
            memcpy(r->pend_ext, ext, sizeof(ext));
            r->pend_size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
            r->have_pending = 1;
        }
        if (started && (strcmp(r->pend_key.data, r->key.data) || ext_seen(r, r->pend_ext))) {
            fill_sample(r, s);
            return 1;
        }
        if (!started) {
            if (buf_set(&r->key, r->pend_key.data, r->pend_key.len)) {
                snprintf(err, errlen, "%s: out of memory", r->name);
                return -1;
            }
            started = 1;
        }
        r->have_pending = 0;
        if (take_pending(r, err, errlen)) return -1;
    }
}
