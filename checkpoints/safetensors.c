// safetensors: read (F32, F16, BF16 converted to float32) and write (F32). The header is parsed
// with cJSON and validated completely on open, so every later read stays inside the file.
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_internal.h"

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
#define ST_MAX_HEADER (100u << 20)

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) { // inf or nan (payload kept)
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign; // signed zero
        } else {         // subnormal: value = mantissa * 2^-24, renormalised for float32
            int shift = 0;
            while (!(mantissa & 0x400u)) {
                mantissa <<= 1;
                shift++;
            }
            mantissa &= 0x3ffu;
            bits = sign | ((uint32_t)(127 - 15 + 1 - shift) << 23) | (mantissa << 13);
        }
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static int host_is_little_endian(void) {
    const uint16_t probe = 1;
    uint8_t first;
    memcpy(&first, &probe, 1);
    return first == 1;
}

static int dtype_size(const char *dtype) {
    static const struct {
        const char *name;
        int size;
    } table[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
                 {"U16", 2},  {"F16", 2}, {"BF16", 2}, {"I32", 4},     {"U32", 4},     {"F32", 4},
                 {"F64", 8},  {"I64", 8}, {"U64", 8},  {"C64", 8},     {"F8_E8M0", 1}};
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (!strcmp(dtype, table[i].name)) return table[i].size;
    return 0;
}

// Exact non-negative integer below 2^53 (JSON numbers arrive as doubles).
static int json_uint(const cJSON *item, uint64_t *value) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return 0;
    *value = (uint64_t)v;
    return 1;
}

void st_close(StFile *f) {
    if (f->fd >= 0) close(f->fd);
    for (int i = 0; i < f->n_entries; i++)
        free(f->entries[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->entries);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    memset(f, 0, sizeof(*f));
    f->fd = -1;
}

static int read_exact(int fd, void *buf, size_t len, uint64_t offset) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

static int by_begin(const void *a, const void *b) {
    const StEntry *x = *(const StEntry *const *)a, *y = *(const StEntry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end ? 1 : 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const StEntry *const *)a)->name, (*(const StEntry *const *)b)->name);
}

// Parses one "name": {"dtype", "shape", "data_offsets"} entry into e.
static int parse_entry(const cJSON *item, StEntry *e, const char *path, uint64_t data_size,
                       char *err, size_t err_len) {
    const char *name = item->string;
    if (!cJSON_IsObject(item)) {
        ckpt_errf(err, err_len, "safetensors %s: entry '%s' is not a JSON object", path, name);
        return -1;
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets)) {
        ckpt_errf(err, err_len,
                  "safetensors %s: tensor '%s' needs \"dtype\" (string), \"shape\" and "
                  "\"data_offsets\" (arrays)",
                  path, name);
        return -1;
    }
    int size = dtype_size(dtype->valuestring);
    if (!size || strlen(dtype->valuestring) >= sizeof(e->dtype)) {
        ckpt_errf(err, err_len, "safetensors %s: tensor '%s' has unknown dtype '%.32s'", path, name,
                  dtype->valuestring);
        return -1;
    }
    snprintf(e->dtype, sizeof(e->dtype), "%s", dtype->valuestring);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS) {
        ckpt_errf(err, err_len, "safetensors %s: tensor '%s' has %d dimensions (at most %d)", path,
                  name, ndim, ST_MAX_DIMS);
        return -1;
    }
    e->ndim = ndim;
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        uint64_t dim;
        if (!json_uint(cJSON_GetArrayItem(shape, d), &dim) || dim > (1ull << 40)) {
            ckpt_errf(err, err_len, "safetensors %s: tensor '%s' has an invalid shape entry %d",
                      path, name, d);
            return -1;
        }
        e->shape[d] = (int64_t)dim;
        numel = dim && numel > UINT64_MAX / dim / 8 ? UINT64_MAX / 8 : numel * dim;
    }
    uint64_t begin, end;
    if (cJSON_GetArraySize(offsets) != 2 || !json_uint(cJSON_GetArrayItem(offsets, 0), &begin) ||
        !json_uint(cJSON_GetArrayItem(offsets, 1), &end) || end < begin) {
        ckpt_errf(err, err_len,
                  "safetensors %s: tensor '%s' needs data_offsets [begin, end] with begin <= end",
                  path, name);
        return -1;
    }
    if (end > data_size) {
        ckpt_errf(err, err_len,
                  "safetensors %s: tensor '%s' data_offsets [%llu, %llu] run past the %llu-byte "
                  "data section (truncated file?)",
                  path, name, (unsigned long long)begin, (unsigned long long)end,
                  (unsigned long long)data_size);
        return -1;
    }
    if (end - begin != numel * (uint64_t)size) {
        ckpt_errf(err, err_len,
                  "safetensors %s: tensor '%s' spans %llu bytes but its %s shape needs %llu", path,
                  name, (unsigned long long)(end - begin), e->dtype,
                  (unsigned long long)(numel * (uint64_t)size));
        return -1;
    }
    e->begin = begin;
    e->end = end;
    e->name = strdup(name);
    if (!e->name) {
        ckpt_errf(err, err_len, "safetensors %s: out of memory", path);
        return -1;
    }
    return 0;
}

// The data section must be exactly covered: sorted by offset, each tensor starts where the
// previous ended, the last ends at the end of the file; names are unique.
static int check_layout(StFile *f, char *err, size_t err_len) {
    if (f->n_entries == 0) {
        if (f->data_size != 0) {
            ckpt_errf(err, err_len, "safetensors %s: %llu data bytes but no tensor", f->path,
                      (unsigned long long)f->data_size);
            return -1;
        }
        return 0;
    }
    StEntry **order = malloc((size_t)f->n_entries * sizeof(*order));
    if (!order) {
        ckpt_errf(err, err_len, "safetensors %s: out of memory", f->path);
        return -1;
    }
    for (int i = 0; i < f->n_entries; i++)
        order[i] = &f->entries[i];
    int rc = 0;
    qsort(order, (size_t)f->n_entries, sizeof(*order), by_name);
    for (int i = 1; i < f->n_entries && rc == 0; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name)) {
            ckpt_errf(err, err_len, "safetensors %s: tensor '%s' appears twice", f->path,
                      order[i]->name);
            rc = -1;
        }
    qsort(order, (size_t)f->n_entries, sizeof(*order), by_begin);
    uint64_t expected = 0;
    for (int i = 0; i < f->n_entries && rc == 0; i++) {
        if (order[i]->begin < expected) {
            ckpt_errf(err, err_len, "safetensors %s: tensors '%s' and '%s' overlap", f->path,
                      order[i - 1]->name, order[i]->name);
            rc = -1;
        } else if (order[i]->begin > expected) {
            ckpt_errf(err, err_len,
                      "safetensors %s: gap in the data section before tensor '%s' (bytes %llu to "
                      "%llu belong to no tensor)",
                      f->path, order[i]->name, (unsigned long long)expected,
                      (unsigned long long)order[i]->begin);
            rc = -1;
        }
        expected = order[i]->end;
    }
    if (rc == 0 && expected != f->data_size) {
        ckpt_errf(err, err_len,
                  "safetensors %s: the tensors cover %llu of %llu data bytes (trailing bytes)",
                  f->path, (unsigned long long)expected, (unsigned long long)f->data_size);
        rc = -1;
    }
    free(order);
    return rc;
}

static int parse_metadata(StFile *f, const cJSON *meta, char *err, size_t err_len) {
    if (!cJSON_IsObject(meta)) {
        ckpt_errf(err, err_len, "safetensors %s: __metadata__ is not a JSON object", f->path);
        return -1;
    }
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) {
        ckpt_errf(err, err_len, "safetensors %s: out of memory", f->path);
        return -1;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item)) {
            ckpt_errf(err, err_len, "safetensors %s: __metadata__ value '%s' is not a string",
                      f->path, item->string);
            return -1;
        }
        f->meta_keys[f->n_meta] = strdup(item->string);
        f->meta_values[f->n_meta] = strdup(item->valuestring);
        if (!f->meta_keys[f->n_meta] || !f->meta_values[f->n_meta]) {
            ckpt_errf(err, err_len, "safetensors %s: out of memory", f->path);
            f->n_meta++;
            return -1;
        }
        f->n_meta++;
    }
    return 0;
}

int st_open(StFile *f, const char *path, char *err, size_t err_len) {
    char local_err[CKPT_ERR_LEN];
    if (!err) {
        err = local_err;
        err_len = sizeof(local_err);
    }
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    char *header = NULL;
    cJSON *root = NULL;
    if (!(f->path = strdup(path))) {
        ckpt_errf(err, err_len, "safetensors %s: out of memory", path);
        goto fail;
    }
    f->fd = open(path, O_RDONLY);
    struct stat st;
    if (f->fd < 0 || fstat(f->fd, &st) != 0) {
        ckpt_errf(err, err_len, "cannot open safetensors file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ckpt_errf(err, err_len, "safetensors %s is not a regular file", path);
        goto fail;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    uint8_t len_bytes[8];
    if (file_size < 8 || read_exact(f->fd, len_bytes, 8, 0) < 0) {
        ckpt_errf(err, err_len,
                  "safetensors %s is truncated: %llu bytes, not even the 8-byte header length",
                  path, (unsigned long long)file_size);
        goto fail;
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = (header_len << 8) | len_bytes[i];
    if (header_len > file_size - 8) {
        ckpt_errf(err, err_len,
                  "safetensors %s: header length %llu runs past the end of the %llu-byte file "
                  "(truncated, or not a safetensors file)",
                  path, (unsigned long long)header_len, (unsigned long long)file_size);
        goto fail;
    }
    if (header_len > ST_MAX_HEADER || header_len < 2) {
        ckpt_errf(err, err_len, "safetensors %s: implausible header length %llu", path,
                  (unsigned long long)header_len);
        goto fail;
    }
    if (!(header = malloc(header_len)) || read_exact(f->fd, header, header_len, 8) < 0) {
        ckpt_errf(err, err_len, "safetensors %s: cannot read the %llu-byte header", path,
                  (unsigned long long)header_len);
        goto fail;
    }
    f->data_start = 8 + header_len;
    f->data_size = file_size - f->data_start;
    const char *parse_end = NULL;
    root = cJSON_ParseWithLengthOpts(header, header_len, &parse_end, 0);
    if (!root) {
        long at = parse_end ? (long)(parse_end - header) : -1;
        ckpt_errf(err, err_len,
                  "safetensors %s: the header is not valid JSON (error near byte %ld)", path, at);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        ckpt_errf(err, err_len, "safetensors %s: the header is JSON but not an object", path);
        goto fail;
    }
    // Anything after the JSON object may only be the space padding.
    for (const char *p = parse_end; p && p < header + header_len; p++)
        if (*p != ' ' && *p != '\0' && *p != '\n' && *p != '\t' && *p != '\r') {
            ckpt_errf(err, err_len, "safetensors %s: unexpected bytes after the JSON header", path);
            goto fail;
        }
    int n_items = cJSON_GetArraySize(root);
    f->entries = calloc((size_t)n_items + 1, sizeof(StEntry));
    if (!f->entries) {
        ckpt_errf(err, err_len, "safetensors %s: out of memory", path);
        goto fail;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) {
            if (f->meta_keys) {
                ckpt_errf(err, err_len, "safetensors %s: __metadata__ appears twice", path);
                goto fail;
            }
            if (parse_metadata(f, item, err, err_len) < 0) goto fail;
            continue;
        }
        if (parse_entry(item, &f->entries[f->n_entries], path, f->data_size, err, err_len) < 0)
            goto fail;
        f->n_entries++;
    }
    if (check_layout(f, err, err_len) < 0) goto fail;
    cJSON_Delete(root);
    free(header);
    return 0;
fail:
    cJSON_Delete(root);
    free(header);
    st_close(f);
    return -1;
}

const StEntry *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n_entries; i++)
        if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
    return NULL;
}

const char *st_get_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

static void shape_text(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used +=
            (size_t)snprintf(out + used, cap - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < cap) snprintf(out + used, cap - used, "]");
}

int st_read_f32(const StFile *f, const char *name, int ndim, const int64_t *shape, float *out,
                char *err, size_t err_len) {
    char local_err[CKPT_ERR_LEN];
    if (!err) {
        err = local_err;
        err_len = sizeof(local_err);
    }
    const StEntry *e = st_find(f, name);
    if (!e) {
        ckpt_errf(err, err_len, "safetensors %s has no tensor '%s'", f->path, name);
        return -1;
    }
    if (shape) {
        int same = ndim == e->ndim;
        for (int d = 0; same && d < ndim; d++)
            same = shape[d] == e->shape[d];
        if (!same) {
            char want[160], got[160];
            shape_text(want, sizeof(want), ndim, shape);
            shape_text(got, sizeof(got), e->ndim, e->shape);
            ckpt_errf(err, err_len, "safetensors %s: tensor '%s' has shape %s but %s is expected",
                      f->path, name, got, want);
            return -1;
        }
    }
    int is_f32 = !strcmp(e->dtype, "F32"), is_f16 = !strcmp(e->dtype, "F16"),
        is_bf16 = !strcmp(e->dtype, "BF16");
    if (!is_f32 && !is_f16 && !is_bf16) {
        ckpt_errf(err, err_len,
                  "safetensors %s: tensor '%s' has dtype %s; only F32, F16 and BF16 can be read",
                  f->path, name, e->dtype);
        return -1;
    }
    uint64_t bytes = e->end - e->begin;
    if (read_exact(f->fd, out, bytes, f->data_start + e->begin) < 0) {
        ckpt_errf(err, err_len, "safetensors %s: cannot read tensor '%s' (file changed?)", f->path,
                  name);
        return -1;
    }
    if (is_f32) {
        if (!host_is_little_endian()) {
            uint8_t *p = (uint8_t *)out;
            for (uint64_t i = 0; i < bytes; i += 4) {
                uint8_t a = p[i], b = p[i + 1];
                p[i] = p[i + 3];
                p[i + 1] = p[i + 2];
                p[i + 2] = b;
                p[i + 3] = a;
            }
        }
        return 0;
    }
    // The 2-byte values sit in the first half of out; widening from the last element backwards
    // never overwrites a value not yet converted.
    const uint8_t *raw = (const uint8_t *)out;
    for (uint64_t i = bytes / 2; i-- > 0;) {
        uint16_t h = (uint16_t)(raw[2 * i] | (raw[2 * i + 1] << 8));
        out[i] = is_f16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
    }
    return 0;
}

static int write_all(FILE *fp, const void *data, size_t len) {
    return fwrite(data, 1, len, fp) == len ? 0 : -1;
}

int st_write_f32(const char *path, const StTensorF32 *tensors, int n, const char *const *meta_kv,
                 int n_meta, char *err, size_t err_len) {
    char local_err[CKPT_ERR_LEN];
    if (!err) {
        err = local_err;
        err_len = sizeof(local_err);
    }
    cJSON *root = cJSON_CreateObject();
    char *json = NULL;
    FILE *fp = NULL;
    char tmp[4096];
    int rc = -1, created = 0;
    if (!root) goto oom;
    if (n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        if (!meta) goto oom;
        for (int i = 0; i < n_meta; i++)
            if (!cJSON_AddStringToObject(meta, meta_kv[2 * i], meta_kv[2 * i + 1])) goto oom;
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const StTensorF32 *t = &tensors[i];
        if (!t->name || !t->name[0] || !strcmp(t->name, "__metadata__") || t->ndim < 0 ||
            t->ndim > ST_MAX_DIMS || !t->data) {
            ckpt_errf(err, err_len, "safetensors %s: invalid tensor #%d '%s'", path, i,
                      t->name ? t->name : "(null)");
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(tensors[j].name, t->name)) {
                ckpt_errf(err, err_len, "safetensors %s: tensor name '%s' given twice", path,
                          t->name);
                goto done;
            }
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) {
                ckpt_errf(err, err_len, "safetensors %s: tensor '%s' has a negative dimension",
                          path, t->name);
                goto done;
            }
            numel *= (uint64_t)t->shape[d];
        }
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        cJSON *shape = entry ? cJSON_AddArrayToObject(entry, "shape") : NULL;
        cJSON *offsets = entry ? cJSON_AddArrayToObject(entry, "data_offsets") : NULL;
        if (!entry || !shape || !offsets || !cJSON_AddStringToObject(entry, "dtype", "F32"))
            goto oom;
        for (int d = 0; d < t->ndim; d++)
            if (!cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]))) goto oom;
        if (!cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset)) ||
            !cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + 4 * numel))))
            goto oom;
        offset += 4 * numel;
    }
    if (!(json = cJSON_PrintUnformatted(root))) goto oom;
    size_t json_len = strlen(json);
    size_t padded = (json_len + 7) & ~(size_t)7; // data then starts 8-byte aligned
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        ckpt_errf(err, err_len, "safetensors path too long: %s", path);
        goto done;
    }
    if (!(fp = fopen(tmp, "wb"))) {
        ckpt_errf(err, err_len, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    created = 1;
    uint8_t len_bytes[8];
    for (int i = 0; i < 8; i++)
        len_bytes[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int bad = write_all(fp, len_bytes, 8) || write_all(fp, json, json_len);
    for (size_t i = json_len; i < padded && !bad; i++)
        bad = fputc(' ', fp) == EOF;
    int little = host_is_little_endian();
    for (int i = 0; i < n && !bad; i++) {
        const StTensorF32 *t = &tensors[i];
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= (uint64_t)t->shape[d];
        if (little) {
            bad = write_all(fp, t->data, numel * sizeof(float));
        } else {
            for (uint64_t k = 0; k < numel && !bad; k++) {
                uint32_t bits;
                memcpy(&bits, &t->data[k], 4);
                uint8_t b[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                                (uint8_t)(bits >> 24)};
                bad = write_all(fp, b, 4);
            }
        }
    }
    if (bad || fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        ckpt_errf(err, err_len, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    int closed = fclose(fp);
    fp = NULL;
    if (closed != 0 || rename(tmp, path) != 0) {
        ckpt_errf(err, err_len, "cannot write %s: %s", path, strerror(errno));
        goto done;
    }
    created = 0;
    rc = 0;
    goto done;
oom:
    ckpt_errf(err, err_len, "safetensors %s: out of memory building the header", path);
done:
    if (fp) fclose(fp);
    if (created) unlink(tmp);
    free(json);
    cJSON_Delete(root);
    return rc;
}
