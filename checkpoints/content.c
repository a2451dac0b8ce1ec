// CkptContent: the in-memory description of a checkpoint (tensor table, attributes, blobs).
#include <stdlib.h>
#include <string.h>

#include "ckpt_internal.h"

void ckpt_content_init(CkptContent *c) {
    memset(c, 0, sizeof(*c));
}

void ckpt_content_free(CkptContent *c) {
    for (int i = 0; i < c->n_tensors; i++) {
        free(c->tensors[i].group);
        free(c->tensors[i].name);
    }
    for (int i = 0; i < c->n_strs; i++) {
        free(c->strs[i].key);
        free(c->strs[i].value);
    }
    for (int i = 0; i < c->n_ints; i++)
        free(c->ints[i].key);
    for (int i = 0; i < c->n_blobs; i++) {
        free(c->blobs[i].name);
        if (c->blobs[i].owned) free(c->blobs[i].data);
    }
    free(c->tensors);
    free(c->strs);
    free(c->ints);
    free(c->blobs);
    memset(c, 0, sizeof(*c));
}

// Grows *items (of item_size bytes each) so that one more fits.
static int grow(void **items, int *cap, int n, size_t item_size) {
    if (n < *cap) return 0;
    int new_cap = *cap ? 2 * *cap : 16;
    void *p = realloc(*items, (size_t)new_cap * item_size);
    if (!p) return -1;
    *items = p;
    *cap = new_cap;
    return 0;
}

// HDF5 link names may hold any character but '/'; "." names the group itself.
static int valid_name(const char *s) {
    return s && s[0] && !strchr(s, '/') && strcmp(s, ".") != 0;
}

// A group path: one or more valid names joined by '/'.
static int valid_group(const char *s) {
    if (!s || !s[0] || s[0] == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//")) return 0;
    const char *first_end = strchr(s, '/');
    size_t first_len = first_end ? (size_t)(first_end - s) : strlen(s);
    if (first_len == strlen(CKPT_STATE_GROUP) && !strncmp(s, CKPT_STATE_GROUP, first_len)) return 0;
    for (const char *p = s; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 1 && p[0] == '.') return 0;
        p += len + (end ? 1 : 0);
    }
    return 1;
}

int ckpt_add_tensor(CkptContent *c, const char *group, const char *name, int ndim,
                    const int64_t *shape, float *data, char *err, size_t err_len) {
    if (!valid_group(group)) {
        ckpt_errf(err, err_len,
                  "invalid tensor group '%s' (non-empty names joined by '/', not '%s')",
                  group ? group : "(null)", CKPT_STATE_GROUP);
        return -1;
    }
    if (!valid_name(name)) {
        ckpt_errf(err, err_len, "invalid tensor name '%s' in group '%s' (empty, '.' or has '/')",
                  name ? name : "(null)", group);
        return -1;
    }
    if (ndim < 1 || ndim > CKPT_MAX_DIMS) {
        ckpt_errf(err, err_len, "tensor %s/%s has %d dimensions (1..%d supported)", group, name,
                  ndim, CKPT_MAX_DIMS);
        return -1;
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 1) {
            ckpt_errf(err, err_len, "tensor %s/%s has dimension %d of size %lld", group, name, d,
                      (long long)shape[d]);
            return -1;
        }
    if (ckpt_find_tensor(c, group, name)) {
        ckpt_errf(err, err_len, "tensor %s/%s is listed twice", group, name);
        return -1;
    }
    if (grow((void **)&c->tensors, &c->cap_tensors, c->n_tensors, sizeof(CkptTensor))) goto oom;
    CkptTensor *t = &c->tensors[c->n_tensors];
    memset(t, 0, sizeof(*t));
    t->group = strdup(group);
    t->name = strdup(name);
    if (!t->group || !t->name) {
        free(t->group);
        free(t->name);
        goto oom;
    }
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->data = data;
    c->n_tensors++;
    return 0;
oom:
    ckpt_errf(err, err_len, "out of memory adding tensor %s/%s", group, name);
    return -1;
}

int ckpt_set_str(CkptContent *c, const char *key, const char *value, char *err, size_t err_len) {
    if (!valid_name(key) || !value) {
        ckpt_errf(err, err_len, "invalid string attribute '%s'", key ? key : "(null)");
        return -1;
    }
    char *copy = strdup(value);
    if (!copy) goto oom;
    for (int i = 0; i < c->n_strs; i++)
        if (!strcmp(c->strs[i].key, key)) {
            free(c->strs[i].value);
            c->strs[i].value = copy;
            return 0;
        }
    char *key_copy = strdup(key);
    if (!key_copy || grow((void **)&c->strs, &c->cap_strs, c->n_strs, sizeof(CkptStrAttr))) {
        free(key_copy);
        free(copy);
        goto oom;
    }
    c->strs[c->n_strs++] = (CkptStrAttr){key_copy, copy};
    return 0;
oom:
    ckpt_errf(err, err_len, "out of memory setting attribute %s", key);
    return -1;
}

int ckpt_set_int(CkptContent *c, const char *key, int64_t value, char *err, size_t err_len) {
    if (!valid_name(key)) {
        ckpt_errf(err, err_len, "invalid integer attribute '%s'", key ? key : "(null)");
        return -1;
    }
    for (int i = 0; i < c->n_ints; i++)
        if (!strcmp(c->ints[i].key, key)) {
            c->ints[i].value = value;
            return 0;
        }
    char *key_copy = strdup(key);
    if (!key_copy || grow((void **)&c->ints, &c->cap_ints, c->n_ints, sizeof(CkptIntAttr))) {
        free(key_copy);
        ckpt_errf(err, err_len, "out of memory setting attribute %s", key);
        return -1;
    }
    c->ints[c->n_ints++] = (CkptIntAttr){key_copy, value};
    return 0;
}

int ckpt_add_blob(CkptContent *c, const char *name, int64_t rows, int64_t cols, int64_t *data,
                  char *err, size_t err_len) {
    if (!valid_name(name)) {
        ckpt_errf(err, err_len, "invalid blob name '%s'", name ? name : "(null)");
        return -1;
    }
    if (rows < 1 || cols < 1 || !data) {
        ckpt_errf(err, err_len, "blob %s: needs rows >= 1, cols >= 1 and data (got %lld x %lld)",
                  name, (long long)rows, (long long)cols);
        return -1;
    }
    CkptBlob *b = (CkptBlob *)ckpt_get_blob(c, name);
    if (!b) {
        char *name_copy = strdup(name);
        if (!name_copy || grow((void **)&c->blobs, &c->cap_blobs, c->n_blobs, sizeof(CkptBlob))) {
            free(name_copy);
            ckpt_errf(err, err_len, "out of memory adding blob %s", name);
            return -1;
        }
        b = &c->blobs[c->n_blobs++];
        memset(b, 0, sizeof(*b));
        b->name = name_copy;
    } else if (b->owned) {
        free(b->data);
    }
    b->rows = rows;
    b->cols = cols;
    b->data = data;
    b->owned = 0;
    return 0;
}

const CkptTensor *ckpt_find_tensor(const CkptContent *c, const char *group, const char *name) {
    for (int i = 0; i < c->n_tensors; i++)
        if (!strcmp(c->tensors[i].name, name) && !strcmp(c->tensors[i].group, group))
            return &c->tensors[i];
    return NULL;
}

const char *ckpt_get_str(const CkptContent *c, const char *key) {
    for (int i = 0; i < c->n_strs; i++)
        if (!strcmp(c->strs[i].key, key)) return c->strs[i].value;
    return NULL;
}

int ckpt_get_int(const CkptContent *c, const char *key, int64_t *value) {
    for (int i = 0; i < c->n_ints; i++)
        if (!strcmp(c->ints[i].key, key)) {
            *value = c->ints[i].value;
            return 0;
        }
    return -1;
}

const CkptBlob *ckpt_get_blob(const CkptContent *c, const char *name) {
    for (int i = 0; i < c->n_blobs; i++)
        if (!strcmp(c->blobs[i].name, name)) return &c->blobs[i];
    return NULL;
}

int64_t ckpt_tensor_numel(const CkptTensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}
