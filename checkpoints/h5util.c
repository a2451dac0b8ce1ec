// HDF5 plumbing shared by save, load and inspect: quiet error handling, turning the HDF5 error
// stack into one message, opening a file as a checked tijepa checkpoint, reading attributes.
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt_internal.h"

typedef struct {
    char text[512];
    int found;
} InnermostError;

// The innermost message of the most recent failed HDF5 call in this thread, captured right after
// the call (the next HDF5 call, even a successful H5Tclose, clears the stack).
static _Thread_local InnermostError last_error;

// Walking upward starts at the innermost entry: where HDF5 first saw the problem.
static herr_t keep_innermost(unsigned n, const H5E_error2_t *e, void *data) {
    InnermostError *out = data;
    if (n == 0 && e) {
        const char *desc = e->desc && e->desc[0] ? e->desc : NULL;
        char minor[256] = "";
        if (!desc && H5Eget_msg(e->min_num, NULL, minor, sizeof(minor)) > 0) desc = minor;
        if (desc) {
            // File-driver messages carry "..., errno = 28, error message = 'No space left ...',"
            // which is the useful part; keep the lead phrase and that text.
            const char *tag = strstr(desc, "error message = '");
            const char *colon = strchr(desc, ':');
            if (tag && colon && colon < tag) {
                const char *msg = tag + strlen("error message = '");
                const char *msg_end = strchr(msg, '\'');
                int msg_len = msg_end ? (int)(msg_end - msg) : (int)strlen(msg);
                snprintf(out->text, sizeof(out->text), "%.*s: %.*s", (int)(colon - desc), desc,
                         msg_len, msg);
            } else {
                snprintf(out->text, sizeof(out->text), "%s", desc);
            }
            out->found = 1;
        }
    }
    return 0;
}

// Remembers the innermost message of the HDF5 error stack of the call that just failed.
static void capture_error(void) {
    last_error.found = 0;
    last_error.text[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &last_error);
}

int ckpt_h5_ok(int ok) {
    if (!ok) capture_error();
    return ok;
}

// A NULL automatic handler silences HDF5. It stays off after the call: with any handler
// installed at exit (even HDF5's default printer), HDF5 1.10 reports "infinite loop closing
// library" once it has failed on some corrupt files, which would confuse users of a clean error.
void ckpt_quiet_begin(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    last_error.found = 0;
}

void ckpt_errf(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

void ckpt_h5_fail(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    size_t used = strlen(err);
    if (!last_error.found) capture_error();
    snprintf(err + used, err_len - used, ": %s",
             last_error.found ? last_error.text : "HDF5 call failed without a message");
    last_error.found = 0;
}

int ckpt_parse_step_name(const char *name, int64_t *step) {
    if (strncmp(name, "step-", 5) != 0) return 0;
    const char *p = name + 5;
    int digits = 0;
    int64_t value = 0;
    while (*p >= '0' && *p <= '9') {
        if (value > (INT64_MAX - 9) / 10) return 0;
        value = value * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits < 8 || strcmp(p, ".h5") != 0) return 0;
    *step = value;
    return 1;
}

// Reads a string attribute (fixed or variable length) into a malloc'ed string.
static int read_str_attr(hid_t attr, char **out) {
    hid_t type = H5Aget_type(attr);
    if (type < 0) return -1;
    int rc = -1;
    htri_t is_var = H5Tis_variable_str(type);
    if (is_var > 0) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        char *value = NULL;
        if (H5OK(mem) && H5OK(H5Tset_size(mem, H5T_VARIABLE)) &&
            H5OK(H5Tset_cset(mem, H5Tget_cset(type))) && H5OK(H5Aread(attr, mem, &value))) {
            *out = strdup(value ? value : "");
            rc = *out ? 0 : -1;
            H5free_memory(value);
        }
        if (mem >= 0) H5Tclose(mem);
    } else if (is_var == 0) {
        size_t size = H5Tget_size(type);
        hid_t mem = H5Tcopy(H5T_C_S1);
        char *value = calloc(size + 1, 1);
        if (value && H5OK(mem) && size > 0 && H5OK(H5Tset_size(mem, size)) &&
            H5OK(H5Tset_strpad(mem, H5T_STR_NULLPAD)) &&
            H5OK(H5Tset_cset(mem, H5Tget_cset(type))) && H5OK(H5Aread(attr, mem, value))) {
            *out = value;
            value = NULL;
            rc = 0;
        }
        free(value);
        if (mem >= 0) H5Tclose(mem);
    }
    H5Tclose(type);
    return rc;
}

// Reads a scalar integer attribute; returns 1 if read, 0 if it is not a scalar integer, -1 on
// an HDF5 failure.
static int read_int_attr(hid_t attr, int64_t *value) {
    hid_t type = H5Aget_type(attr);
    hid_t space = H5Aget_space(attr);
    int rc = -1;
    if (type >= 0 && space >= 0) {
        if (H5Tget_class(type) != H5T_INTEGER || H5Sget_simple_extent_npoints(space) != 1)
            rc = 0;
        else
            rc = H5OK(H5Aread(attr, H5T_NATIVE_INT64, value)) ? 1 : -1;
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return rc;
}

typedef struct {
    const char *path;
    CkptContent *c;
    char *err;
    size_t err_len;
} AttrWalk;

static herr_t copy_attribute(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    AttrWalk *w = data;
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    if (attr < 0) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot open attribute '%s'", w->path,
                     name);
        return -1;
    }
    hid_t type = H5Aget_type(attr);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (type >= 0) H5Tclose(type);
    int rc = 0;
    if (cls == H5T_STRING) {
        char *value = NULL;
        if (read_str_attr(attr, &value) < 0) {
            ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot read attribute '%s'", w->path,
                         name);
            rc = -1;
        } else {
            rc = ckpt_set_str(w->c, name, value, w->err, w->err_len);
        }
        free(value);
    } else if (cls == H5T_INTEGER) {
        int64_t value = 0;
        int got = read_int_attr(attr, &value);
        if (got < 0) {
            ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot read attribute '%s'", w->path,
                         name);
            rc = -1;
        } else if (got == 1) {
            rc = ckpt_set_int(w->c, name, value, w->err, w->err_len);
        }
    }
    H5Aclose(attr);
    return rc < 0 ? -1 : 0;
}

int ckpt_read_attributes(hid_t file, const char *path, CkptContent *c, char *err, size_t err_len) {
    AttrWalk w = {path, c, err, err_len};
    err[0] = '\0';
    if (H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attribute, &w) < 0) {
        if (!err[0]) ckpt_h5_fail(err, err_len, "checkpoint %s: cannot list attributes", path);
        return -1;
    }
    return 0;
}

typedef struct {
    const char *path;
    CkptContent *c;
    char *err;
    size_t err_len;
} BlobWalk;

static herr_t read_blob(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    BlobWalk *w = data;
    hid_t dset = H5Dopen2(group, name, H5P_DEFAULT);
    if (dset < 0) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot open blob state/%s", w->path, name);
        return -1;
    }
    hid_t type = H5Dget_type(dset);
    hid_t space = H5OK(type) ? H5Dget_space(dset) : -1;
    int64_t *values = NULL;
    int rc = -1;
    hsize_t dims[2] = {0, 0};
    if (type < 0 || space < 0) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot read blob state/%s", w->path, name);
    } else if (H5Tget_class(type) != H5T_INTEGER || H5Sget_simple_extent_ndims(space) != 2 ||
               H5Sget_simple_extent_dims(space, dims, NULL) < 0 || dims[0] < 1 || dims[1] < 1) {
        ckpt_errf(w->err, w->err_len,
                  "checkpoint %s: blob state/%s is not a 2-D integer array with rows and columns",
                  w->path, name);
    } else if (!(values = malloc(dims[0] * dims[1] * sizeof(int64_t)))) {
        ckpt_errf(w->err, w->err_len, "checkpoint %s: out of memory reading blob state/%s", w->path,
                  name);
    } else if (!H5OK(H5Dread(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values))) {
        ckpt_h5_fail(w->err, w->err_len, "checkpoint %s: cannot read blob state/%s", w->path, name);
    } else if (ckpt_add_blob(w->c, name, (int64_t)dims[0], (int64_t)dims[1], values, w->err,
                             w->err_len) == 0) {
        ((CkptBlob *)ckpt_get_blob(w->c, name))->owned = 1;
        values = NULL;
        rc = 0;
    }
    free(values);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Dclose(dset);
    return rc < 0 ? -1 : 0;
}

int ckpt_read_blobs(hid_t file, const char *path, CkptContent *c, char *err, size_t err_len) {
    htri_t has_state = H5Lexists(file, CKPT_STATE_GROUP, H5P_DEFAULT);
    if (has_state < 0) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot look up /%s", path, CKPT_STATE_GROUP);
        return -1;
    }
    if (has_state == 0) return 0;
    hid_t group = H5Gopen2(file, CKPT_STATE_GROUP, H5P_DEFAULT);
    if (group < 0) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot open /%s", path, CKPT_STATE_GROUP);
        return -1;
    }
    BlobWalk w = {path, c, err, err_len};
    err[0] = '\0';
    herr_t rc = H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, NULL, read_blob, &w);
    if (rc < 0 && !err[0]) ckpt_h5_fail(err, err_len, "checkpoint %s: cannot list /state", path);
    H5Gclose(group);
    return rc < 0 ? -1 : 0;
}

// Opens attribute key of obj; returns it, or -1 with err saying it is missing or unreadable.
static hid_t open_required_attr(hid_t obj, const char *path, const char *key, char *err,
                                size_t err_len) {
    htri_t exists = H5Aexists(obj, key);
    if (exists < 0) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot look up attribute '%s'", path, key);
        return -1;
    }
    if (exists == 0) {
        ckpt_errf(err, err_len,
                  "checkpoint %s is incomplete: the required attribute '%s' is missing", path, key);
        return -1;
    }
    hid_t attr = H5Aopen(obj, key, H5P_DEFAULT);
    if (attr < 0)
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot open attribute '%s'", path, key);
    return attr;
}

// Checks format, format_version, step and program_version on an open file.
static int check_required(hid_t file, const char *path, char *err, size_t err_len) {
    htri_t has_format = H5Aexists(file, "format");
    if (has_format < 0) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: cannot read the root attributes", path);
        return -1;
    }
    if (has_format == 0) {
        ckpt_errf(err, err_len,
                  "%s is an HDF5 file but not a tijepa checkpoint (no 'format' attribute)", path);
        return -1;
    }
    hid_t attr = open_required_attr(file, path, "format", err, err_len);
    if (attr < 0) return -1;
    char *format = NULL;
    int rc = read_str_attr(attr, &format);
    H5Aclose(attr);
    if (rc < 0 || strcmp(format, CKPT_FORMAT_NAME) != 0) {
        if (rc < 0)
            ckpt_h5_fail(err, err_len, "checkpoint %s: cannot read attribute 'format'", path);
        else
            ckpt_errf(err, err_len, "%s is not a tijepa checkpoint (format is '%.100s', not '%s')",
                      path, format, CKPT_FORMAT_NAME);
        free(format);
        return -1;
    }
    free(format);

    int64_t version = 0, step = 0;
    if ((attr = open_required_attr(file, path, "format_version", err, err_len)) < 0) return -1;
    rc = read_int_attr(attr, &version);
    H5Aclose(attr);
    if (rc != 1) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: attribute 'format_version' is not an integer",
                     path);
        return -1;
    }
    if (version > CKPT_FORMAT_VERSION) {
        ckpt_errf(err, err_len,
                  "checkpoint %s has format version %lld, newer than version %d that this "
                  "tijepa reads: use a newer tijepa",
                  path, (long long)version, CKPT_FORMAT_VERSION);
        return -1;
    }
    if (version < 1) {
        ckpt_errf(err, err_len, "checkpoint %s has an unknown format version %lld", path,
                  (long long)version);
        return -1;
    }
    if ((attr = open_required_attr(file, path, "step", err, err_len)) < 0) return -1;
    rc = read_int_attr(attr, &step);
    H5Aclose(attr);
    if (rc != 1) {
        ckpt_h5_fail(err, err_len, "checkpoint %s: attribute 'step' is not an integer", path);
        return -1;
    }
    if ((attr = open_required_attr(file, path, "program_version", err, err_len)) < 0) return -1;
    H5Aclose(attr);
    return 0;
}

hid_t ckpt_open_checked(const char *path, char *err, size_t err_len) {
    struct stat st;
    if (stat(path, &st) != 0) {
        ckpt_errf(err, err_len, "cannot open checkpoint %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        ckpt_errf(err, err_len, "checkpoint %s is not a regular file", path);
        return -1;
    }
    htri_t is_hdf5 = H5Fis_hdf5(path);
    if (is_hdf5 <= 0) {
        ckpt_errf(err, err_len,
                  "%s is not an HDF5 file (no HDF5 signature found in its %lld bytes)", path,
                  (long long)st.st_size);
        return -1;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        ckpt_h5_fail(err, err_len, "%s:%d: cannot create HDF5 file access properties", __FILE__,
                     __LINE__);
        if (fapl >= 0) H5Pclose(fapl);
        return -1;
    }
#if H5_VERSION_GE(1, 10, 7)
    // Checkpoints are published by rename, so HDF5's file locks add nothing, and they fail on
    // some cluster file systems.
    H5Pset_file_locking(fapl, 0, 1);
#endif
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5OK(file);
    H5Pclose(fapl);
    if (file < 0) {
        ckpt_h5_fail(err, err_len, "cannot open checkpoint %s (damaged or truncated HDF5 file)",
                     path);
        return -1;
    }
    if (check_required(file, path, err, err_len) < 0) {
        H5Fclose(file);
        return -1;
    }
    return file;
}
