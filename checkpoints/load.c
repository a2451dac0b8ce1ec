// ckpt_load, ckpt_describe and ckpt_find_latest: read a checkpoint back with every check that
// turns a wrong, damaged or foreign file into a clear error instead of wrong numbers.
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt_internal.h"

static void shape_text(char *out, size_t cap, int ndim, const hsize_t *dims) {
    size_t used = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(out + used, cap - used, "%s%llu", d ? ", " : "",
                                 (unsigned long long)dims[d]);
    if (used < cap) snprintf(out + used, cap - used, "]");
}

// 1 when every component of the group path exists, 0 when one does not, -1 on an HDF5 error.
static int group_exists(hid_t file, const char *group) {
    char prefix[1024];
    size_t len = strlen(group);
    if (len >= sizeof(prefix)) return -1;
    for (size_t i = 0; i <= len; i++) {
        if (group[i] != '/' && group[i] != '\0') continue;
        memcpy(prefix, group, i);
        prefix[i] = '\0';
        htri_t exists = H5Lexists(file, prefix, H5P_DEFAULT);
        if (exists <= 0) return exists < 0 ? -1 : 0;
    }
    return 1;
}

// Opens group/name as a float32 dataset whose shape equals t's; -1 with err otherwise.
static hid_t open_tensor(hid_t file, const char *path, const CkptTensor *t, char *err,
                         size_t err_len) {
    int g = group_exists(file, t->group);
    if (g <= 0) {
        if (g < 0)
            ckpt_h5_fail(err, err_len, "checkpoint %s: cannot look up group /%s", path, t->group);
        else
            ckpt_errf(err, err_len, "checkpoint %s has no group /%s (needed for tensor %s)", path,
                      t->group, t->name);
        return -1;
    }
    hid_t group = H5Gopen2(file, t->group, H5P_DEFAULT);
    if (group < 0) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot open group /%s", path, t->group);
        return -1;
    }
    htri_t exists = H5Lexists(group, t->name, H5P_DEFAULT);
    hid_t dset = -1;
    if (!H5OK(exists) || exists == 0) {
        if (exists < 0)
            ckpt_h5_fail(err, err_len, "checkpoint %s: cannot look up tensor %s/%s", path, t->group,
                         t->name);
        else
            ckpt_errf(err, err_len, "checkpoint %s has no tensor %s/%s (the model expects it)",
                      path, t->group, t->name);
        H5Gclose(group);
        return -1;
    }
    dset = H5Dopen2(group, t->name, H5P_DEFAULT);
    H5OK(dset);
    H5Gclose(group);
    if (dset < 0) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot open tensor %s/%s", path, t->group,
                     t->name);
        return -1;
    }
    hid_t type = H5Dget_type(dset);
    hid_t space = H5OK(type) ? H5Dget_space(dset) : -1;
    int ok = 0;
    if (type < 0 || space < 0) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot read the type and shape of %s/%s", path,
                     t->group, t->name);
    } else if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != sizeof(float)) {
        ckpt_errf(err, err_len, "checkpoint %s: tensor %s/%s is not float32", path, t->group,
                  t->name);
    } else {
        hsize_t found[H5S_MAX_RANK], expected[CKPT_MAX_DIMS];
        int ndim = H5Sget_simple_extent_ndims(space);
        for (int d = 0; d < t->ndim; d++)
            expected[d] = (hsize_t)t->shape[d];
        ok = ndim == t->ndim && H5Sget_simple_extent_dims(space, found, NULL) == ndim;
        for (int d = 0; ok && d < ndim; d++)
            ok = found[d] == expected[d];
        if (!ok) {
            char want[128], got[128] = "(unreadable)";
            shape_text(want, sizeof(want), t->ndim, expected);
            if (ndim >= 0 && ndim <= H5S_MAX_RANK &&
                H5Sget_simple_extent_dims(space, found, NULL) == ndim)
                shape_text(got, sizeof(got), ndim, found);
            ckpt_errf(err, err_len,
                      "checkpoint %s: tensor %s/%s has shape %s but the model expects %s", path,
                      t->group, t->name, got, want);
        }
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (!ok) {
        H5Dclose(dset);
        return -1;
    }
    return dset;
}

int ckpt_read_tensor(hid_t file, const char *path, const CkptTensor *t, float *dst, char *err,
                     size_t err_len) {
    hid_t dset = open_tensor(file, path, t, err, err_len);
    if (dset < 0) return -1;
    // HDF5 verifies each chunk's Fletcher-32 checksum while reading it.
    herr_t read = H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst);
    if (!H5OK(read))
        ckpt_h5_fail(err, err_len, "checkpoint %s: tensor %s/%s is damaged", path, t->group,
                     t->name);
    H5Dclose(dset);
    return read < 0 ? -1 : 0;
}

typedef struct {
    const char *path;
    const char *group;
    const CkptContent *c;
    char *err;
    size_t err_len;
} ExtraWalk;

static herr_t reject_unlisted(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)group;
    (void)info;
    ExtraWalk *w = data;
    // A subgroup (e.g. "optim" holding "m" and "v") is a group of its own, checked when loaded.
    H5O_info_t oinfo;
    if (H5Oget_info_by_name(group, name, &oinfo, H5P_DEFAULT) < 0) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot inspect %s/%s", w->path, w->group,
                     name);
        return -1;
    }
    if (oinfo.type != H5O_TYPE_DATASET || ckpt_find_tensor(w->c, w->group, name)) return 0;
    ckpt_errf(w->err, w->err_len,
              "checkpoint %s has tensor %s/%s that the model does not have (model changed?)",
              w->path, w->group, name);
    return -1;
}

static int check_no_extra(hid_t file, const char *path, const CkptContent *c, char *err,
                          size_t err_len) {
    for (int i = 0; i < c->n_tensors; i++) {
        const char *g = c->tensors[i].group;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(c->tensors[j].group, g);
        if (seen) continue;
        hid_t group = H5Gopen2(file, g, H5P_DEFAULT);
        if (group < 0) {
            ckpt_h5_fail(err, err_len, "checkpoint %s: cannot open group /%s", path, g);
            return -1;
        }
        ExtraWalk w = {path, g, c, err, err_len};
        err[0] = '\0';
        herr_t rc = H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, NULL, reject_unlisted, &w);
        H5OK(rc);
        H5Gclose(group);
        if (rc < 0) {
            if (!err[0]) ckpt_h5_fail(err, err_len, "checkpoint %s: cannot list /%s", path, g);
            return -1;
        }
    }
    return 0;
}

int ckpt_load(const char *path, CkptContent *c, int flags, char *err, size_t err_len) {
    char local_err[CKPT_ERR_LEN];
    if (!err) {
        err = local_err;
        err_len = sizeof(local_err);
    }
    for (int i = 0; i < c->n_tensors; i++)
        if (!c->tensors[i].data) {
            ckpt_errf(err, err_len, "cannot load tensor %s/%s from %s: no destination buffer",
                      c->tensors[i].group, c->tensors[i].name, path);
            return -1;
        }
    ckpt_quiet_begin();
    int rc = -1;
    hid_t file = ckpt_open_checked(path, err, err_len);
    if (file < 0) goto done;
    for (int i = 0; i < c->n_tensors; i++)
        if (ckpt_read_tensor(file, path, &c->tensors[i], c->tensors[i].data, err, err_len) < 0)
            goto done;
    if (!(flags & CKPT_LOAD_ALLOW_EXTRA) && check_no_extra(file, path, c, err, err_len) < 0)
        goto done;
    if (ckpt_read_attributes(file, path, c, err, err_len) < 0 ||
        ckpt_read_blobs(file, path, c, err, err_len) < 0)
        goto done;
    rc = 0;
done:
    if (file >= 0) H5Fclose(file);
    return rc;
}

typedef struct {
    const char *path;
    CkptContent *c;
    char prefix[1024]; // group path being listed ("" at the root)
    char *err;
    size_t err_len;
} DescribeWalk;

static herr_t describe_link(hid_t loc, const char *name, const H5L_info_t *info, void *data);

// Lists a group's links in creation order when the group tracks it (ours do), else by name.
static herr_t iterate_group(hid_t group, DescribeWalk *w) {
    H5_index_t index = H5_INDEX_NAME;
    hid_t gcpl = H5Gget_create_plist(group);
    unsigned order_flags = 0;
    if (gcpl >= 0 && H5Pget_link_creation_order(gcpl, &order_flags) >= 0 &&
        (order_flags & H5P_CRT_ORDER_INDEXED))
        index = H5_INDEX_CRT_ORDER;
    if (gcpl >= 0) H5Pclose(gcpl);
    herr_t rc = H5Literate(group, index, H5_ITER_INC, NULL, describe_link, w);
    H5OK(rc);
    return rc;
}

static herr_t describe_link(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    DescribeWalk *w = data;
    if (!w->prefix[0] && !strcmp(name, CKPT_STATE_GROUP)) return 0; // blobs, read separately
    H5O_info_t oinfo;
    if (H5Oget_info_by_name(loc, name, &oinfo, H5P_DEFAULT) < 0) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot inspect /%s%s%s", w->path,
                     w->prefix, w->prefix[0] ? "/" : "", name);
        return -1;
    }
    if (oinfo.type == H5O_TYPE_GROUP) {
        size_t old_len = strlen(w->prefix);
        int n = snprintf(w->prefix + old_len, sizeof(w->prefix) - old_len, "%s%s",
                         old_len ? "/" : "", name);
        if (n < 0 || (size_t)n >= sizeof(w->prefix) - old_len) {
            ckpt_errf(w->err, w->err_len, "checkpoint %s: group path too long under /%s", w->path,
                      w->prefix);
            return -1;
        }
        hid_t group = H5Gopen2(loc, name, H5P_DEFAULT);
        herr_t rc = -1;
        if (group < 0)
            ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot open group /%s", w->path,
                         w->prefix);
        else
            rc = iterate_group(group, w);
        if (rc < 0 && !w->err[0])
            ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot list group /%s", w->path,
                         w->prefix);
        if (group >= 0) H5Gclose(group);
        w->prefix[old_len] = '\0';
        return rc;
    }
    if (oinfo.type != H5O_TYPE_DATASET) return 0;
    if (!w->prefix[0]) {
        ckpt_errf(w->err, w->err_len,
                  "checkpoint %s: dataset /%s is outside any tensor group (not a tijepa layout)",
                  w->path, name);
        return -1;
    }
    hid_t dset = H5Dopen2(loc, name, H5P_DEFAULT);
    if (dset < 0) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot open tensor %s/%s", w->path,
                     w->prefix, name);
        return -1;
    }
    hid_t type = H5Dget_type(dset);
    hid_t space = H5OK(type) ? H5Dget_space(dset) : -1;
    herr_t rc = -1;
    hsize_t dims[H5S_MAX_RANK];
    int ndim = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (type < 0 || space < 0 || ndim < 0) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot read the shape of %s/%s", w->path,
                     w->prefix, name);
    } else if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != sizeof(float) || ndim < 1 ||
               ndim > CKPT_MAX_DIMS || H5Sget_simple_extent_dims(space, dims, NULL) != ndim) {
        ckpt_errf(w->err, w->err_len,
                  "checkpoint %s: %s/%s is not a float32 tensor of 1 to %d dimensions", w->path,
                  w->prefix, name, CKPT_MAX_DIMS);
    } else {
        int64_t shape[CKPT_MAX_DIMS];
        for (int d = 0; d < ndim; d++)
            shape[d] = (int64_t)dims[d];
        if (ckpt_add_tensor(w->c, w->prefix, name, ndim, shape, NULL, w->err, w->err_len) == 0)
            rc = 0;
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Dclose(dset);
    return rc;
}

int ckpt_describe(const char *path, CkptContent *out, char *err, size_t err_len) {
    char local_err[CKPT_ERR_LEN];
    if (!err) {
        err = local_err;
        err_len = sizeof(local_err);
    }
    ckpt_quiet_begin();
    int rc = -1;
    hid_t file = ckpt_open_checked(path, err, err_len);
    if (file >= 0) {
        DescribeWalk w = {.path = path, .c = out, .err = err, .err_len = err_len};
        err[0] = '\0';
        hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
        herr_t listed = H5OK(root) ? iterate_group(root, &w) : -1;
        if (root >= 0) H5Gclose(root);
        if (listed < 0) {
            if (!err[0]) ckpt_h5_fail(err, err_len, "checkpoint %s: cannot list its groups", path);
        } else if (ckpt_read_attributes(file, path, out, err, err_len) == 0 &&
                   ckpt_read_blobs(file, path, out, err, err_len) == 0) {
            rc = 0;
        }
        H5Fclose(file);
    }
    return rc;
}

int ckpt_is_complete(const char *path) {
    char err[CKPT_ERR_LEN];
    ckpt_quiet_begin();
    hid_t file = ckpt_open_checked(path, err, sizeof(err));
    if (file >= 0) H5Fclose(file);
    return file >= 0;
}

typedef struct {
    int64_t step;
    char name[256];
} StepName;

static int by_step_desc(const void *a, const void *b) {
    int64_t x = ((const StepName *)a)->step, y = ((const StepName *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

// Tries `latest` first: it names the file the last successful save published.
static int latest_pointer(const char *dir, char *out, size_t cap) {
    char path[4096], name[512];
    snprintf(path, sizeof(path), "%s/latest", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(name, 1, sizeof(name) - 1, f);
    fclose(f);
    name[n] = '\0';
    while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == '\r' || name[n - 1] == ' '))
        name[--n] = '\0';
    int64_t step;
    if (!ckpt_parse_step_name(name, &step)) return 0;
    int len = snprintf(out, cap, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= cap) return 0;
    return ckpt_is_complete(out);
}

int ckpt_find_latest(const char *dir, char *out, size_t cap, char *err, size_t err_len) {
    char local_err[CKPT_ERR_LEN];
    if (!err) {
        err = local_err;
        err_len = sizeof(local_err);
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) return 1;
        ckpt_errf(err, err_len, "cannot read checkpoint directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        ckpt_errf(err, err_len, "checkpoint directory %s is not a directory", dir);
        return -1;
    }
    if (latest_pointer(dir, out, cap)) return 0;

    DIR *d = opendir(dir);
    if (!d) {
        ckpt_errf(err, err_len, "cannot read checkpoint directory %s: %s", dir, strerror(errno));
        return -1;
    }
    StepName *steps = NULL;
    int n = 0, capacity = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step;
        // Temporaries start with '.' and never parse as step names.
        if (!ckpt_parse_step_name(e->d_name, &step) || strlen(e->d_name) >= sizeof(steps->name))
            continue;
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            StepName *p = realloc(steps, (size_t)capacity * sizeof(*steps));
            if (!p) {
                free(steps);
                closedir(d);
                ckpt_errf(err, err_len, "out of memory listing %s", dir);
                return -1;
            }
            steps = p;
        }
        steps[n].step = step;
        snprintf(steps[n].name, sizeof(steps[n].name), "%s", e->d_name);
        n++;
    }
    closedir(d);
    if (steps) qsort(steps, (size_t)n, sizeof(*steps), by_step_desc);
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
        int len = snprintf(out, cap, "%s/%s", dir, steps[i].name);
        found = len > 0 && (size_t)len < cap && ckpt_is_complete(out);
    }
    free(steps);
    if (!found && cap) out[0] = '\0';
    return found ? 0 : 1;
}
