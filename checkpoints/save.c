// ckpt_save: write a checkpoint under a temporary name, publish it by rename, point `latest` at
// it, then apply retention. A failure at any point leaves the published files as they were.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_internal.h"

// Chunks of about this size: large enough for few I/O calls, small enough that HDF5's per-chunk
// filter buffers stay modest. Fletcher-32 needs a chunked layout.
#define CHUNK_TARGET_BYTES (4u << 20)

int ckpt_step_path(char *out, size_t cap, const char *dir, int64_t step) {
    int n = snprintf(out, cap, "%s/step-%08lld.h5", dir, (long long)step);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

// mkdir -p, so that the first save of a run creates RUN/ckpt.
static int make_dirs(const char *dir, char *err, size_t err_len) {
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        ckpt_errf(err, err_len, "checkpoint directory name too long: %s", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                ckpt_errf(err, err_len, "cannot create checkpoint directory %s: %s", path,
                          strerror(errno));
                return -1;
            }
            *p = saved;
            if (saved == '\0') break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ckpt_errf(err, err_len, "checkpoint directory %s is not a directory", dir);
        return -1;
    }
    return 0;
}

// Chunk shape: whole trailing dimensions while they fit the target, then the next dimension cut
// into equal parts of at most the target, 1 for the leading ones. Equal parts matter: HDF5
// stores an edge chunk at full size, so a 4-row remainder would cost a whole chunk.
static void chunk_shape(int ndim, const hsize_t *dims, size_t elem_size, hsize_t *chunk) {
    size_t bytes = elem_size;
    int d = ndim - 1;
    for (; d >= 0 && bytes * dims[d] <= CHUNK_TARGET_BYTES; d--) {
        chunk[d] = dims[d];
        bytes *= dims[d];
    }
    if (d >= 0) {
        hsize_t fit = CHUNK_TARGET_BYTES / bytes;
        if (fit == 0) fit = 1;
        hsize_t parts = (dims[d] + fit - 1) / fit;
        chunk[d] = (dims[d] + parts - 1) / parts;
        for (d--; d >= 0; d--)
            chunk[d] = 1;
    }
}

// One chunked, Fletcher-32-checked dataset named name under loc, written from data. The same
// content always gives the same bytes: no object timestamps, and the padding of edge chunks is
// the fill value (zero) rather than whatever HDF5's chunk buffer held.
static int write_dataset(hid_t loc, const char *name, int ndim, const int64_t *shape,
                         hid_t file_type, hid_t mem_type, size_t elem_size, const void *data) {
    hsize_t dims[CKPT_MAX_DIMS], chunk[CKPT_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        dims[d] = (hsize_t)shape[d];
    chunk_shape(ndim, dims, elem_size, chunk);
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset = -1;
    int rc = -1;
    if (H5OK(space) && H5OK(dcpl) && H5OK(H5Pset_chunk(dcpl, ndim, chunk)) &&
        H5OK(H5Pset_fletcher32(dcpl)) && H5OK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC)) &&
        H5OK(H5Pset_obj_track_times(dcpl, 0)) &&
        H5OK(dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) &&
        H5OK(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data)))
        rc = 0;
    // Closing a dataset flushes its cached chunks, which can fail on a full disk too.
    if (dset >= 0 && !H5OK(H5Dclose(dset))) rc = -1;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return rc;
}

static int write_str_attr(hid_t obj, const char *key, const char *value) {
    size_t len = strlen(value);
    // Fixed-length strings live in the (checksummed) object header, unlike variable-length ones
    // whose bytes sit in the unchecked global heap.
    hid_t type = H5Tcopy(H5T_C_S1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = -1;
    int rc = -1;
    if (H5OK(type) && H5OK(space) && H5OK(H5Tset_size(type, len ? len : 1)) &&
        H5OK(H5Tset_strpad(type, H5T_STR_NULLPAD)) && H5OK(H5Tset_cset(type, H5T_CSET_UTF8)) &&
        H5OK(attr = H5Acreate2(obj, key, type, space, H5P_DEFAULT, H5P_DEFAULT)) &&
        H5OK(H5Awrite(attr, type, len ? value : "")))
        rc = 0;
    if (attr >= 0 && !H5OK(H5Aclose(attr))) rc = -1;
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    return rc;
}

static int write_int_attr(hid_t obj, const char *key, int64_t value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = -1;
    int rc = -1;
    if (H5OK(space) &&
        H5OK(attr = H5Acreate2(obj, key, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT)) &&
        H5OK(H5Awrite(attr, H5T_NATIVE_INT64, &value)))
        rc = 0;
    if (attr >= 0 && !H5OK(H5Aclose(attr))) rc = -1;
    if (space >= 0) H5Sclose(space);
    return rc;
}

static int is_reserved_key(const char *key) {
    return !strcmp(key, "format") || !strcmp(key, "format_version") || !strcmp(key, "step") ||
           !strcmp(key, "program_version");
}

// Opens group path under file, creating it (and its parents) on first use. Groups keep the
// creation order of their members so that inspection lists tensors in model order.
static hid_t open_or_create_group(hid_t file, const char *path) {
    htri_t exists = H5Lexists(file, path, H5P_DEFAULT);
    if (exists > 0) return H5Gopen2(file, path, H5P_DEFAULT);
    // Parents first, one component at a time, each with creation order tracked.
    const char *slash = strrchr(path, '/');
    if (slash) {
        char parent[1024];
        size_t len = (size_t)(slash - path);
        if (len >= sizeof(parent)) return -1;
        memcpy(parent, path, len);
        parent[len] = '\0';
        hid_t p = open_or_create_group(file, parent);
        if (p < 0) return -1;
        H5Gclose(p);
    }
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    hid_t group = -1;
    if (H5OK(gcpl) &&
        H5OK(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED)) &&
        H5OK(H5Pset_obj_track_times(gcpl, 0)))
        H5OK(group = H5Gcreate2(file, path, H5P_DEFAULT, gcpl, H5P_DEFAULT));
    if (gcpl >= 0) H5Pclose(gcpl);
    return group;
}

// Writes everything into a new HDF5 file at tmp; closes it in all cases.
static int write_file(const char *tmp, int64_t step, const CkptContent *c, char *err,
                      size_t err_len) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    hid_t file = -1;
    // The 1.10 file format checksums all metadata (superblock, object headers, chunk indexes),
    // so a flipped byte anywhere is detected, not only in tensor data.
    if (fapl < 0 || fcpl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0 ||
        H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
        H5Pset_obj_track_times(fcpl, 0) < 0) {
        ckpt_h5_fail(err, err_len, "%s:%d: cannot set up HDF5 properties", __FILE__, __LINE__);
        goto done;
    }
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 0, 1);
#endif
    if ((file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
        ckpt_h5_fail(err, err_len, "cannot create checkpoint file %s", tmp);
        goto done;
    }
    if (write_str_attr(file, "format", CKPT_FORMAT_NAME) < 0 ||
        write_int_attr(file, "format_version", CKPT_FORMAT_VERSION) < 0 ||
        write_int_attr(file, "step", step) < 0 ||
        write_str_attr(file, "program_version", TIJEPA_VERSION) < 0) {
        ckpt_h5_fail(err, err_len, "cannot write attributes to %s", tmp);
        goto fail;
    }
    for (int i = 0; i < c->n_strs; i++) {
        if (is_reserved_key(c->strs[i].key)) continue;
        if (write_str_attr(file, c->strs[i].key, c->strs[i].value) < 0) {
            ckpt_h5_fail(err, err_len, "cannot write attribute '%s' to %s", c->strs[i].key, tmp);
            goto fail;
        }
    }
    for (int i = 0; i < c->n_ints; i++) {
        if (is_reserved_key(c->ints[i].key)) continue;
        if (write_int_attr(file, c->ints[i].key, c->ints[i].value) < 0) {
            ckpt_h5_fail(err, err_len, "cannot write attribute '%s' to %s", c->ints[i].key, tmp);
            goto fail;
        }
    }
    for (int i = 0; i < c->n_tensors; i++) {
        const CkptTensor *t = &c->tensors[i];
        hid_t group = open_or_create_group(file, t->group);
        if (group < 0) {
            ckpt_h5_fail(err, err_len, "cannot create group /%s in %s", t->group, tmp);
            goto fail;
        }
        int rc = write_dataset(group, t->name, t->ndim, t->shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                               sizeof(float), t->data);
        if (rc < 0)
            ckpt_h5_fail(err, err_len, "cannot write tensor %s/%s to %s", t->group, t->name, tmp);
        H5Gclose(group);
        if (rc < 0) goto fail;
    }
    if (c->n_blobs > 0) {
        hid_t group = open_or_create_group(file, CKPT_STATE_GROUP);
        if (group < 0) {
            ckpt_h5_fail(err, err_len, "cannot create group /%s in %s", CKPT_STATE_GROUP, tmp);
            goto fail;
        }
        for (int i = 0; i < c->n_blobs; i++) {
            const CkptBlob *b = &c->blobs[i];
            int64_t shape[2] = {b->rows, b->cols};
            if (write_dataset(group, b->name, 2, shape, H5T_STD_I64LE, H5T_NATIVE_INT64,
                              sizeof(int64_t), b->data) < 0) {
                ckpt_h5_fail(err, err_len, "cannot write blob %s/%s to %s", CKPT_STATE_GROUP,
                             b->name, tmp);
                H5Gclose(group);
                goto fail;
            }
        }
        H5Gclose(group);
    }
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) {
        ckpt_h5_fail(err, err_len, "cannot flush checkpoint file %s", tmp);
        goto fail;
    }
    herr_t closed = H5Fclose(file);
    file = -1;
    if (closed < 0) {
        ckpt_h5_fail(err, err_len, "cannot close checkpoint file %s", tmp);
        goto done;
    }
    H5Pclose(fapl);
    H5Pclose(fcpl);
    return 0;
fail:
    H5Fclose(file);
done:
    if (fapl >= 0) H5Pclose(fapl);
    if (fcpl >= 0) H5Pclose(fcpl);
    return -1;
}

// Writes text to DIR/name through a temporary and a rename.
static int write_small_file_atomic(const char *dir, const char *name, const char *text, char *err,
                                   size_t err_len) {
    char tmp[4096], final_path[4096];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-%ld", dir, name, (long)getpid());
    snprintf(final_path, sizeof(final_path), "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        ckpt_errf(err, err_len, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    ssize_t wrote = write(fd, text, len);
    int saved = errno;
    if (wrote != (ssize_t)len || fsync(fd) != 0) {
        if (wrote == (ssize_t)len) saved = errno;
        close(fd);
        unlink(tmp);
        ckpt_errf(err, err_len, "cannot write %s: %s", tmp,
                  wrote >= 0 && wrote < (ssize_t)len && saved == 0 ? "short write"
                                                                   : strerror(saved));
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, final_path) != 0) {
        saved = errno;
        unlink(tmp);
        ckpt_errf(err, err_len, "cannot publish %s: %s", final_path, strerror(saved));
        return -1;
    }
    return 0;
}

typedef struct {
    int64_t step;
    char name[256];
} StepFile;

static int by_step_desc(const void *a, const void *b) {
    int64_t x = ((const StepFile *)a)->step, y = ((const StepFile *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

// Temporaries of another process in DIR are left over from a killed writer (one writer per
// directory): remove them so an interrupted run does not slowly fill the disk.
static void remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char own_suffix[64];
    snprintf(own_suffix, sizeof(own_suffix), ".tmp-%ld", (long)getpid());
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *tmp_tag = strstr(e->d_name, ".tmp-");
        int ours = tmp_tag && !strcmp(tmp_tag, own_suffix);
        if (!tmp_tag || ours) continue;
        if (strncmp(e->d_name, ".step-", 6) != 0 && strncmp(e->d_name, ".latest.", 8) != 0)
            continue;
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path)) unlink(path);
    }
    closedir(d);
}

// Deletes the oldest step files beyond keep_last; never the one named keep_name.
static void apply_retention(const char *dir, int keep_last, const char *keep_name) {
    DIR *d = opendir(dir);
    if (!d) return;
    StepFile *files = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step;
        if (!ckpt_parse_step_name(e->d_name, &step) || strlen(e->d_name) >= sizeof(files->name))
            continue;
        if (n == cap) {
            int new_cap = cap ? 2 * cap : 64;
            StepFile *p = realloc(files, (size_t)new_cap * sizeof(*files));
            if (!p) break;
            files = p;
            cap = new_cap;
        }
        files[n].step = step;
        snprintf(files[n].name, sizeof(files[n].name), "%s", e->d_name);
        n++;
    }
    closedir(d);
    if (files) qsort(files, (size_t)n, sizeof(*files), by_step_desc);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(files[i].name, keep_name)) continue; // counted below, always kept
        if (kept + 1 < keep_last) {
            kept++;
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        if (unlink(path) != 0 && errno != ENOENT)
            fprintf(stderr, "tijepa: warning: cannot remove old checkpoint %s: %s\n", path,
                    strerror(errno));
    }
    free(files);
}

int ckpt_save(const char *dir, int64_t step, const CkptContent *c, int keep_last, char *err,
              size_t err_len) {
    char local_err[CKPT_ERR_LEN];
    if (!err) {
        err = local_err;
        err_len = sizeof(local_err);
    }
    if (step < 0) {
        ckpt_errf(err, err_len, "cannot save a checkpoint for negative step %lld", (long long)step);
        return -1;
    }
    for (int i = 0; i < c->n_tensors; i++)
        if (!c->tensors[i].data) {
            ckpt_errf(err, err_len, "cannot save tensor %s/%s: no data", c->tensors[i].group,
                      c->tensors[i].name);
            return -1;
        }
    if (make_dirs(dir, err, err_len) < 0) return -1;
    remove_stale_temporaries(dir);

    char final_path[4096], tmp[4096], name[256];
    snprintf(name, sizeof(name), "step-%08lld.h5", (long long)step);
    if (ckpt_step_path(final_path, sizeof(final_path), dir, step) < 0 ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-%ld", dir, name, (long)getpid()) >=
            (int)sizeof(tmp)) {
        ckpt_errf(err, err_len, "checkpoint path too long in %s", dir);
        return -1;
    }
    // Creating the file ourselves first gives a plain errno message (permission, no space).
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        ckpt_errf(err, err_len, "cannot create checkpoint file %s: %s", tmp, strerror(errno));
        return -1;
    }
    close(fd);

    ckpt_quiet_begin();
    int rc = write_file(tmp, step, c, err, err_len);
    if (rc < 0) {
        unlink(tmp);
        return -1;
    }
    // The data must be on disk before the rename makes it visible, and the rename must be on
    // disk before `latest` points at it.
    if (fsync_path(tmp, O_RDONLY) != 0) {
        ckpt_errf(err, err_len, "cannot sync checkpoint file %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, final_path) != 0) {
        ckpt_errf(err, err_len, "cannot rename %s to %s: %s", tmp, final_path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0) {
        ckpt_errf(err, err_len, "cannot sync checkpoint directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char latest_text[300];
    snprintf(latest_text, sizeof(latest_text), "%s\n", name);
    if (write_small_file_atomic(dir, "latest", latest_text, err, err_len) < 0) return -1;
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0) {
        ckpt_errf(err, err_len, "cannot sync checkpoint directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (keep_last > 0) apply_retention(dir, keep_last, name);
    return 0;
}
