// checkpoints/: save/load round trip, retention, latest pointer, find_latest, and every failure
// (missing, truncated, corrupted, foreign, wrong version, wrong shape, failed write) as a clean
// error that names the file, never a crash or silently wrong data.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "checkpoint.h"

// ---------------------------------------------------------------------------------------------
// Helpers

static char base_dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup_dir(void **state) {
    (void)state;
    snprintf(base_dir, sizeof(base_dir), "/tmp/tijepa-test-ckpt-XXXXXX");
    assert_non_null(mkdtemp(base_dir));
    chmod(base_dir, 0755); // the read-only test runs a child as an unprivileged user
    return 0;
}

static int teardown_dir(void **state) {
    (void)state;
    chmod(base_dir, 0755);
    nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

__attribute__((format(printf, 3, 4))) static void path_in(char *out, size_t cap, const char *fmt,
                                                          ...) {
    char rel[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof(rel), fmt, ap);
    va_end(ap);
    snprintf(out, cap, "%s/%s", base_dir, rel);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

// ---------------------------------------------------------------------------------------------
// A content with several groups, 1-D..4-D tensors, dotted names, attributes and blobs.

#define N_SPECS 5
static const struct {
    const char *name;
    int ndim;
    int64_t shape[4];
} specs[N_SPECS] = {
    {"ctx.blocks.0.attn.q.weight", 2, {6, 5}},
    {"ctx.blocks.0.attn.q.bias", 1, {5}},
    {"patch_embed.proj.weight", 4, {4, 3, 2, 2}},
    {"pos.table", 3, {2, 3, 4}},
    {"norm.weight", 1, {7}},
};
static const char *groups[] = {"params", "ema", "optim/m", "optim/v"};
#define N_GROUPS 4
#define N_RANKS 3

static int64_t spec_numel(int i) {
    int64_t n = 1;
    for (int d = 0; d < specs[i].ndim; d++)
        n *= specs[i].shape[d];
    return n;
}

static int64_t total_numel(void) {
    int64_t n = 0;
    for (int i = 0; i < N_SPECS; i++)
        n += spec_numel(i);
    return n * N_GROUPS;
}

typedef struct {
    float *values;
    int64_t rng[N_RANKS * 4];
    int64_t cursor[N_RANKS * 3];
    CkptContent c;
} Model;

static uint32_t next_random(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static const char *config_text = "[run]\nname = test run \xc3\xa9t\xc3\xa9\nseed = 7\n"
                                 "[model]\npreset = tiny\n";

// Fills a model with values derived from seed (random bit patterns, including NaN payloads,
// infinities, -0 and subnormals, so that "bit-exact" means bit-exact) and, when with_data,
// registers the buffers in m->c.
static void model_init(Model *m, uint32_t seed, int fill) {
    memset(m, 0, sizeof(*m));
    m->values = calloc((size_t)total_numel(), sizeof(float));
    assert_non_null(m->values);
    uint32_t s = seed * 2654435761u + 1;
    if (fill) {
        for (int64_t i = 0; i < total_numel(); i++) {
            uint32_t bits = next_random(&s);
            memcpy(&m->values[i], &bits, 4);
        }
        uint32_t special[] = {0x7fc00001u, 0x7f800000u, 0xff800000u, 0x80000000u, 0x00000001u};
        memcpy(m->values, special, sizeof(special));
        for (int i = 0; i < N_RANKS * 4; i++)
            m->rng[i] = (int64_t)next_random(&s) << 31 ^ next_random(&s);
        for (int i = 0; i < N_RANKS * 3; i++)
            m->cursor[i] = i * 1000 + seed;
    }
    ckpt_content_init(&m->c);
    char err[CKPT_ERR_LEN];
    float *p = m->values;
    for (int g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < N_SPECS; i++) {
            assert_int_equal(ckpt_add_tensor(&m->c, groups[g], specs[i].name, specs[i].ndim,
                                             specs[i].shape, p, err, sizeof(err)),
                             0);
            p += spec_numel(i);
        }
}

static void model_add_metadata(Model *m, int64_t world_size) {
    char err[CKPT_ERR_LEN];
    assert_int_equal(ckpt_set_str(&m->c, "config", config_text, err, sizeof(err)), 0);
    assert_int_equal(ckpt_set_str(&m->c, "slurm_job_id", "4242", err, sizeof(err)), 0);
    assert_int_equal(ckpt_set_str(&m->c, "empty", "", err, sizeof(err)), 0);
    assert_int_equal(ckpt_set_int(&m->c, "world_size", world_size, err, sizeof(err)), 0);
    assert_int_equal(ckpt_add_blob(&m->c, "rng", N_RANKS, 4, m->rng, err, sizeof(err)), 0);
    assert_int_equal(ckpt_add_blob(&m->c, "data_cursor", N_RANKS, 3, m->cursor, err, sizeof(err)),
                     0);
}

static void model_free(Model *m) {
    ckpt_content_free(&m->c);
    free(m->values);
}

static void save_model(const char *dir, int64_t step, uint32_t seed, int keep_last) {
    Model m;
    model_init(&m, seed, 1);
    model_add_metadata(&m, N_RANKS);
    char err[CKPT_ERR_LEN];
    int rc = ckpt_save(dir, step, &m.c, keep_last, err, sizeof(err));
    if (rc != 0) fail_msg("ckpt_save: %s", err);
    model_free(&m);
}

// Loads path into a fresh model; returns ckpt_load's result and, on success, whether every
// tensor, attribute and blob equals what seed produced (1 equal, 0 different).
static int load_and_compare(const char *path, uint32_t seed, int *equal, char *err,
                            size_t err_len) {
    Model want, got;
    model_init(&want, seed, 1);
    model_init(&got, seed, 0);
    memset(got.values, 0xAB, (size_t)total_numel() * sizeof(float));
    int rc = ckpt_load(path, &got.c, 0, err, err_len);
    ssize_t still_open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (still_open != 0)
        fail_msg("%zd HDF5 objects left open after loading %s (%s)", still_open, path,
                 rc ? err : "ok");
    *equal = 0;
    if (rc == 0) {
        int64_t v = 0, world = 0;
        const CkptBlob *rng = ckpt_get_blob(&got.c, "rng");
        const CkptBlob *cursor = ckpt_get_blob(&got.c, "data_cursor");
        const char *config = ckpt_get_str(&got.c, "config");
        *equal = !memcmp(want.values, got.values, (size_t)total_numel() * sizeof(float)) &&
                 ckpt_get_int(&got.c, "format_version", &v) == 0 && v == CKPT_FORMAT_VERSION &&
                 ckpt_get_int(&got.c, "world_size", &world) == 0 && world == N_RANKS && rng &&
                 rng->rows == N_RANKS && rng->cols == 4 &&
                 !memcmp(rng->data, want.rng, sizeof(want.rng)) && cursor &&
                 cursor->rows == N_RANKS && cursor->cols == 3 &&
                 !memcmp(cursor->data, want.cursor, sizeof(want.cursor)) && config &&
                 !strcmp(config, config_text) && ckpt_get_str(&got.c, "slurm_job_id") &&
                 !strcmp(ckpt_get_str(&got.c, "slurm_job_id"), "4242") &&
                 ckpt_get_str(&got.c, "empty") && !strcmp(ckpt_get_str(&got.c, "empty"), "");
    }
    model_free(&want);
    model_free(&got);
    return rc;
}

static void assert_loads_equal(const char *path, uint32_t seed) {
    char err[CKPT_ERR_LEN];
    int equal = 0;
    int rc = load_and_compare(path, seed, &equal, err, sizeof(err));
    if (rc != 0) fail_msg("ckpt_load(%s): %s", path, err);
    assert_true(equal);
}

static void assert_load_fails(const char *path, const char *must_contain) {
    char err[CKPT_ERR_LEN] = "";
    int equal = 0;
    int rc = load_and_compare(path, 1, &equal, err, sizeof(err));
    if (rc == 0)
        fail_msg("ckpt_load(%s) succeeded, expected an error with '%s'", path, must_contain);
    if (!strstr(err, path)) fail_msg("error does not name the file %s: %s", path, err);
    if (must_contain && !strstr(err, must_contain))
        fail_msg("error lacks '%s': %s", must_contain, err);
}

static void latest_name(const char *dir, char *out, size_t cap) {
    char path[700];
    snprintf(path, sizeof(path), "%s/latest", dir);
    size_t len = 0;
    char *text = read_file(path, &len);
    assert_non_null(text);
    snprintf(out, cap, "%s", text);
    free(text);
}

// ---------------------------------------------------------------------------------------------
// Tests

static void test_round_trip(void **state) {
    (void)state;
    char dir[600], path[700];
    path_in(dir, sizeof(dir), "rt/ckpt");
    save_model(dir, 7, 11, 0);
    path_in(path, sizeof(path), "rt/ckpt/step-00000007.h5");
    assert_true(file_exists(path));
    assert_loads_equal(path, 11);
    char name[64];
    latest_name(dir, name, sizeof(name));
    assert_string_equal(name, "step-00000007.h5\n");

    char err[CKPT_ERR_LEN];
    CkptContent d;
    ckpt_content_init(&d);
    assert_int_equal(ckpt_describe(path, &d, err, sizeof(err)), 0);
    assert_int_equal(d.n_tensors, N_SPECS * N_GROUPS);
    // Creation order is kept: the first tensor of params is the first one written.
    assert_string_equal(d.tensors[0].group, "params");
    assert_string_equal(d.tensors[0].name, specs[0].name);
    const CkptTensor *t = ckpt_find_tensor(&d, "optim/v", "patch_embed.proj.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->shape[3], 2);
    assert_null(t->data);
    int64_t step = 0;
    assert_int_equal(ckpt_get_int(&d, "step", &step), 0);
    assert_int_equal(step, 7);
    assert_string_equal(ckpt_get_str(&d, "program_version"), TIJEPA_VERSION);
    assert_string_equal(ckpt_get_str(&d, "format"), "tijepa-checkpoint");
    ckpt_content_free(&d);

    // A large config string (beyond HDF5's 64 KiB compact attribute limit) round-trips too.
    Model m;
    model_init(&m, 3, 1);
    model_add_metadata(&m, N_RANKS);
    size_t big_len = 200000;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    big[big_len] = '\0';
    assert_int_equal(ckpt_set_str(&m.c, "config", big, err, sizeof(err)), 0);
    path_in(dir, sizeof(dir), "rt/big");
    if (ckpt_save(dir, 1, &m.c, 0, err, sizeof(err)) != 0) fail_msg("%s", err);
    model_free(&m);
    path_in(path, sizeof(path), "rt/big/step-00000001.h5");
    Model back;
    model_init(&back, 3, 0);
    if (ckpt_load(path, &back.c, 0, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_string_equal(ckpt_get_str(&back.c, "config"), big);
    model_free(&back);
    free(big);
}

// The same content gives the same bytes (no timestamps, no uninitialised chunk padding), so runs
// can be compared file against file. q.weight below spans two chunks, the second one partial.
static void test_deterministic_bytes(void **state) {
    (void)state;
    int64_t shape[2] = {2731, 384};
    float *big = malloc((size_t)(shape[0] * shape[1]) * sizeof(float));
    assert_non_null(big);
    for (int64_t i = 0; i < shape[0] * shape[1]; i++)
        big[i] = (float)(i % 977) * 0.5f;
    char *files[2];
    size_t lens[2];
    for (int k = 0; k < 2; k++) {
        if (k == 1) sleep(1); // HDF5 object timestamps have a resolution of one second
        Model m;
        model_init(&m, 21, 1);
        model_add_metadata(&m, N_RANKS);
        char err[CKPT_ERR_LEN], dir[600], path[700];
        assert_int_equal(
            ckpt_add_tensor(&m.c, "params", "big.weight", 2, shape, big, err, sizeof(err)), 0);
        path_in(dir, sizeof(dir), "det%d", k);
        if (ckpt_save(dir, 3, &m.c, 0, err, sizeof(err)) != 0) fail_msg("%s", err);
        path_in(path, sizeof(path), "det%d/step-00000003.h5", k);
        files[k] = read_file(path, &lens[k]);
        model_free(&m);
    }
    assert_int_equal(lens[0], lens[1]);
    assert_memory_equal(files[0], files[1], lens[0]);
    // Equal-sized chunks: the file is barely larger than its data.
    assert_true(lens[0] < (size_t)(shape[0] * shape[1]) * sizeof(float) + 200000);
    free(files[0]);
    free(files[1]);
    free(big);
}

static void test_step_names(void **state) {
    (void)state;
    char path[128];
    assert_int_equal(ckpt_step_path(path, sizeof(path), "d", 1000), 0);
    assert_string_equal(path, "d/step-00001000.h5");
    assert_int_equal(ckpt_step_path(path, sizeof(path), "d", 123456789), 0);
    assert_string_equal(path, "d/step-123456789.h5");
    assert_int_equal(ckpt_step_path(path, 8, "d", 1), -1);
}

static void test_content_validation(void **state) {
    (void)state;
    CkptContent c;
    ckpt_content_init(&c);
    char err[CKPT_ERR_LEN];
    float x[4] = {0};
    int64_t shape[5] = {2, 2, 1, 1, 1};
    assert_int_equal(ckpt_add_tensor(&c, "params", "a.b", 2, shape, x, err, sizeof(err)), 0);
    assert_int_equal(ckpt_add_tensor(&c, "params", "a.b", 2, shape, x, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(ckpt_add_tensor(&c, "params", "a/b", 2, shape, x, err, sizeof(err)), -1);
    assert_int_equal(ckpt_add_tensor(&c, "params", "", 2, shape, x, err, sizeof(err)), -1);
    assert_int_equal(ckpt_add_tensor(&c, "state", "x", 2, shape, x, err, sizeof(err)), -1);
    assert_int_equal(ckpt_add_tensor(&c, "/params", "x", 2, shape, x, err, sizeof(err)), -1);
    assert_int_equal(ckpt_add_tensor(&c, "params", "x", 5, shape, x, err, sizeof(err)), -1);
    assert_int_equal(ckpt_add_tensor(&c, "params", "x", 0, shape, x, err, sizeof(err)), -1);
    int64_t zero[1] = {0};
    assert_int_equal(ckpt_add_tensor(&c, "params", "x", 1, zero, x, err, sizeof(err)), -1);
    assert_int_equal(ckpt_add_tensor(&c, "optim/m", "a.b", 2, shape, x, err, sizeof(err)), 0);
    assert_int_equal(ckpt_set_int(&c, "k", 1, err, sizeof(err)), 0);
    assert_int_equal(ckpt_set_int(&c, "k", 2, err, sizeof(err)), 0);
    int64_t v = 0;
    assert_int_equal(ckpt_get_int(&c, "k", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(c.n_ints, 1);
    assert_int_equal(ckpt_get_int(&c, "missing", &v), -1);
    int64_t blob[2] = {1, 2};
    assert_int_equal(ckpt_add_blob(&c, "b", 0, 2, blob, err, sizeof(err)), -1);
    assert_int_equal(ckpt_add_blob(&c, "b", 1, 2, blob, err, sizeof(err)), 0);
    ckpt_content_free(&c);
}

static void test_retention_and_latest(void **state) {
    (void)state;
    char dir[600], path[700], name[64];
    path_in(dir, sizeof(dir), "ret");
    for (int step = 1; step <= 5; step++)
        save_model(dir, step * 10, (uint32_t)step, 2);
    for (int step = 1; step <= 5; step++) {
        path_in(path, sizeof(path), "ret/step-%08d.h5", step * 10);
        assert_int_equal(file_exists(path), step >= 4);
    }
    latest_name(dir, name, sizeof(name));
    assert_string_equal(name, "step-00000050.h5\n");
    assert_int_equal(count_entries(dir, "."), 2); // only "." and "..": no temporaries left

    // Saving an older step (a run resumed from an earlier checkpoint) never deletes the file
    // just written, even when it is the oldest.
    save_model(dir, 45, 9, 2);
    path_in(path, sizeof(path), "ret/step-00000045.h5");
    assert_true(file_exists(path));
    path_in(path, sizeof(path), "ret/step-00000050.h5");
    assert_true(file_exists(path));
    path_in(path, sizeof(path), "ret/step-00000040.h5");
    assert_false(file_exists(path));
    latest_name(dir, name, sizeof(name));
    assert_string_equal(name, "step-00000045.h5\n");

    // keep_last <= 0 keeps everything.
    path_in(dir, sizeof(dir), "keepall");
    for (int step = 1; step <= 4; step++)
        save_model(dir, step, (uint32_t)step, 0);
    assert_int_equal(count_entries(dir, "step-"), 4);
    // A stale temporary from a killed writer is removed by the next save.
    path_in(path, sizeof(path), "keepall/.step-00000009.h5.tmp-999999");
    write_file(path, "partial", 7);
    save_model(dir, 5, 5, 0);
    assert_false(file_exists(path));
    assert_int_equal(count_entries(dir, "step-"), 5);
}

static void test_find_latest(void **state) {
    (void)state;
    char dir[600], path[700], found[1024], err[CKPT_ERR_LEN];
    path_in(dir, sizeof(dir), "find");
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 1);
    for (int step = 1; step <= 3; step++)
        save_model(dir, step * 100, (uint32_t)step, 0);
    path_in(path, sizeof(path), "find/step-00000300.h5");
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 0);
    assert_string_equal(found, path);

    // A temporary with a higher step (a valid HDF5 file even) is ignored.
    char tmp[700];
    size_t len;
    char *bytes = read_file(path, &len);
    path_in(tmp, sizeof(tmp), "find/.step-00000900.h5.tmp-12345");
    write_file(tmp, bytes, len);
    // So are a truncated higher step file and a non-HDF5 one.
    path_in(tmp, sizeof(tmp), "find/step-00000800.h5");
    write_file(tmp, bytes, len / 2);
    path_in(tmp, sizeof(tmp), "find/step-00000700.h5");
    write_file(tmp, "not hdf5\n", 9);
    free(bytes);

    // `latest` is valid and points at 300.
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 0);
    assert_string_equal(found, path);

    // Garbage `latest`: the scan picks the newest complete step file.
    path_in(tmp, sizeof(tmp), "find/latest");
    write_file(tmp, "\x01\x02garbage", 9);
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 0);
    assert_string_equal(found, path);
    // Dangling `latest`.
    write_file(tmp, "step-00005000.h5\n", 17);
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 0);
    assert_string_equal(found, path);
    // `latest` pointing at the truncated file.
    write_file(tmp, "step-00000800.h5\n", 17);
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 0);
    assert_string_equal(found, path);
    // `latest` pointing at an older complete checkpoint is honoured (it is what was published).
    write_file(tmp, "step-00000200.h5\n", 17);
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 0);
    path_in(path, sizeof(path), "find/step-00000200.h5");
    assert_string_equal(found, path);
    // No `latest` at all.
    unlink(tmp);
    path_in(path, sizeof(path), "find/step-00000300.h5");
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 0);
    assert_string_equal(found, path);
    // A directory with only broken files has no checkpoint.
    path_in(dir, sizeof(dir), "find-broken");
    mkdir(dir, 0755);
    path_in(tmp, sizeof(tmp), "find-broken/step-00000001.h5");
    write_file(tmp, "nope", 4);
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 1);
    // A missing directory is "none yet", a file in its place an error.
    path_in(dir, sizeof(dir), "find-missing");
    assert_int_equal(ckpt_find_latest(dir, found, sizeof(found), err, sizeof(err)), 1);
    assert_int_equal(ckpt_find_latest(tmp, found, sizeof(found), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a directory"));
}

static void test_missing_and_truncated(void **state) {
    (void)state;
    char dir[600], path[700], cut[700];
    path_in(path, sizeof(path), "missing/step-00000001.h5");
    assert_load_fails(path, "No such file");

    path_in(dir, sizeof(dir), "trunc");
    save_model(dir, 1, 1, 0);
    path_in(path, sizeof(path), "trunc/step-00000001.h5");
    size_t len;
    char *bytes = read_file(path, &len);
    path_in(cut, sizeof(cut), "trunc/half.h5");
    write_file(cut, bytes, len / 2);
    assert_load_fails(cut, "truncated");
    write_file(cut, bytes, len - 1);
    assert_load_fails(cut, NULL);
    write_file(cut, bytes, 0);
    assert_load_fails(cut, "not an HDF5 file");
    free(bytes);
    assert_int_equal(ckpt_is_complete(cut), 0);
    assert_int_equal(ckpt_is_complete(path), 1);
}

static void test_wrong_format(void **state) {
    (void)state;
    char path[700];
    path_in(path, sizeof(path), "text.h5");
    write_file(path, "[run]\nname = x\n", 15);
    assert_load_fails(path, "not an HDF5 file");

    // An HDF5 file made by someone else.
    path_in(path, sizeof(path), "foreign.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t dims[1] = {4};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t d =
        H5Dcreate2(f, "weights", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
    assert_load_fails(path, "not a tijepa checkpoint");
    // A directory is not a checkpoint either.
    path_in(path, sizeof(path), "adir.h5");
    mkdir(path, 0755);
    assert_load_fails(path, "not a regular file");
}

// Rewrites one root attribute of an existing checkpoint.
static void set_attr(const char *path, const char *key, int64_t value, int remove_it) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    if (remove_it) {
        assert_true(H5Adelete(f, key) >= 0);
    } else {
        hid_t a = H5Aopen(f, key, H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0);
        H5Aclose(a);
    }
    H5Fclose(f);
}

static void test_wrong_version(void **state) {
    (void)state;
    char dir[600], path[700], copy[700];
    path_in(dir, sizeof(dir), "ver");
    save_model(dir, 3, 3, 0);
    path_in(path, sizeof(path), "ver/step-00000003.h5");
    size_t len;
    char *bytes = read_file(path, &len);
    path_in(copy, sizeof(copy), "ver/newer.h5");
    write_file(copy, bytes, len);
    set_attr(copy, "format_version", CKPT_FORMAT_VERSION + 1, 0);
    assert_load_fails(copy, "newer than version");
    write_file(copy, bytes, len);
    set_attr(copy, "format_version", 0, 0);
    assert_load_fails(copy, "unknown format version 0");
    write_file(copy, bytes, len);
    set_attr(copy, "step", 0, 1);
    assert_load_fails(copy, "'step' is missing");
    assert_int_equal(ckpt_is_complete(copy), 0);
    free(bytes);
}

static void test_shape_and_names(void **state) {
    (void)state;
    char dir[600], path[700], err[CKPT_ERR_LEN];
    path_in(dir, sizeof(dir), "shape");
    save_model(dir, 5, 5, 0);
    path_in(path, sizeof(path), "shape/step-00000005.h5");

    // The model's q.weight is [5, 6] but the file has [6, 5].
    float buf[64];
    CkptContent c;
    ckpt_content_init(&c);
    int64_t wrong[2] = {5, 6};
    assert_int_equal(ckpt_add_tensor(&c, "params", "ctx.blocks.0.attn.q.weight", 2, wrong, buf, err,
                                     sizeof(err)),
                     0);
    assert_int_equal(ckpt_load(path, &c, CKPT_LOAD_ALLOW_EXTRA, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "params/ctx.blocks.0.attn.q.weight"));
    assert_non_null(strstr(err, "has shape [6, 5] but the model expects [5, 6]"));
    assert_non_null(strstr(err, path));
    ckpt_content_free(&c);

    // Wrong rank.
    ckpt_content_init(&c);
    int64_t flat[1] = {30};
    assert_int_equal(
        ckpt_add_tensor(&c, "params", "ctx.blocks.0.attn.q.weight", 1, flat, buf, err, sizeof(err)),
        0);
    assert_int_equal(ckpt_load(path, &c, CKPT_LOAD_ALLOW_EXTRA, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "has shape [6, 5] but the model expects [30]"));
    ckpt_content_free(&c);

    // A tensor the file does not have, and a group it does not have.
    ckpt_content_init(&c);
    assert_int_equal(ckpt_add_tensor(&c, "params", "extra.weight", 1, flat, buf, err, sizeof(err)),
                     0);
    assert_int_equal(ckpt_load(path, &c, CKPT_LOAD_ALLOW_EXTRA, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no tensor params/extra.weight"));
    ckpt_content_free(&c);
    ckpt_content_init(&c);
    assert_int_equal(ckpt_add_tensor(&c, "optim/w", "x", 1, flat, buf, err, sizeof(err)), 0);
    assert_int_equal(ckpt_load(path, &c, CKPT_LOAD_ALLOW_EXTRA, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no group /optim/w"));
    ckpt_content_free(&c);

    // A model with fewer tensors than the file: strict load refuses, ALLOW_EXTRA accepts.
    ckpt_content_init(&c);
    int64_t bias[1] = {5};
    assert_int_equal(
        ckpt_add_tensor(&c, "params", "ctx.blocks.0.attn.q.bias", 1, bias, buf, err, sizeof(err)),
        0);
    assert_int_equal(ckpt_load(path, &c, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "that the model does not have"));
    assert_int_equal(ckpt_load(path, &c, CKPT_LOAD_ALLOW_EXTRA, err, sizeof(err)), 0);
    ckpt_content_free(&c);

    // No destination buffer.
    ckpt_content_init(&c);
    assert_int_equal(
        ckpt_add_tensor(&c, "params", "ctx.blocks.0.attn.q.bias", 1, bias, NULL, err, sizeof(err)),
        0);
    assert_int_equal(ckpt_load(path, &c, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no destination buffer"));
    assert_int_equal(ckpt_save(dir, 6, &c, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no data"));
    ckpt_content_free(&c);
}

// Byte ranges of every chunk of every dataset in the file (where the raw data is).
typedef struct {
    haddr_t offset;
    hsize_t size;
} Range;

static int collect_chunks(const char *path, Range *ranges, int max) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    int n = 0;
    for (int g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < N_SPECS; i++) {
            char name[256];
            snprintf(name, sizeof(name), "%s/%s", groups[g], specs[i].name);
            hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
            assert_true(d >= 0);
            hid_t space = H5Dget_space(d);
            hsize_t n_chunks = 0;
            assert_true(H5Dget_num_chunks(d, space, &n_chunks) >= 0);
            for (hsize_t k = 0; k < n_chunks && n < max; k++) {
                hsize_t coords[4];
                unsigned mask;
                assert_true(H5Dget_chunk_info(d, space, k, coords, &mask, &ranges[n].offset,
                                              &ranges[n].size) >= 0);
                n++;
            }
            H5Sclose(space);
            H5Dclose(d);
        }
    H5Fclose(f);
    return n;
}

static void test_flipped_bytes(void **state) {
    (void)state;
    char dir[600], path[700], copy[700], err[CKPT_ERR_LEN];
    path_in(dir, sizeof(dir), "flip");
    save_model(dir, 2, 2, 0);
    path_in(path, sizeof(path), "flip/step-00000002.h5");
    path_in(copy, sizeof(copy), "flip/copy.h5");
    size_t len;
    unsigned char *bytes = (unsigned char *)read_file(path, &len);
    Range chunks[64];
    int n_chunks = collect_chunks(path, chunks, 64);
    assert_int_equal(n_chunks, N_SPECS * N_GROUPS);

    // A flip inside any tensor's data is reported as a checksum error naming that tensor.
    for (int k = 0; k < n_chunks; k++) {
        size_t pos = (size_t)chunks[k].offset + (size_t)(chunks[k].size / 3);
        bytes[pos] ^= 0x10;
        write_file(copy, bytes, len);
        bytes[pos] ^= 0x10;
        int equal = 0;
        assert_int_equal(load_and_compare(copy, 2, &equal, err, sizeof(err)), -1);
        if (!strstr(err, "Fletcher32") || !strstr(err, copy) || !strstr(err, "is damaged"))
            fail_msg("chunk %d: unexpected message: %s", k, err);
    }

    // A flip anywhere (metadata, attributes, indexes, data) either loads identical content or
    // fails cleanly: never wrong data, never a crash.
    // The copy is patched in place: rewriting whole files would make ext4 flush each one.
    write_file(copy, bytes, len);
    int fd = open(copy, O_RDWR);
    assert_true(fd >= 0);
    int ok = 0, failed = 0, checksum_errors = 0;
    for (size_t pos = 0; pos < len; pos++) {
        int in_data = 0;
        for (int k = 0; k < n_chunks && !in_data; k++)
            in_data = pos >= chunks[k].offset && pos < chunks[k].offset + chunks[k].size;
        // Data chunks are covered above; sample them sparsely here to keep the test fast.
        if (in_data && pos % 13) continue;
        unsigned char flipped = bytes[pos] ^ 0x04;
        assert_int_equal(pwrite(fd, &flipped, 1, (off_t)pos), 1);
        int equal = 0;
        err[0] = '\0';
        int rc = load_and_compare(copy, 2, &equal, err, sizeof(err));
        assert_int_equal(pwrite(fd, &bytes[pos], 1, (off_t)pos), 1);
        if (rc == 0 && !equal) fail_msg("flip at byte %zu of %zu loaded different data", pos, len);
        if (rc != 0 && !strstr(err, copy))
            fail_msg("flip at byte %zu: error does not name the file: %s", pos, err);
        ok += rc == 0;
        failed += rc != 0;
        checksum_errors += rc != 0 && in_data && strstr(err, "Fletcher32") != NULL;
    }
    close(fd);
    print_message("flip scan over %zu bytes: %d loaded identical, %d clean errors (%d Fletcher-32 "
                  "in data)\n",
                  len, ok, failed, checksum_errors);
    assert_true(checksum_errors > 0);
    free(bytes);

    // ckpt_inspect reports the damaged tensor and fails.
    bytes = (unsigned char *)read_file(path, &len);
    bytes[chunks[3].offset + 1] ^= 0xff;
    write_file(copy, bytes, len);
    free(bytes);
    FILE *out = tmpfile();
    assert_int_equal(ckpt_inspect(copy, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "params/pos.table"));
    rewind(out);
    char report[65536];
    size_t n = fread(report, 1, sizeof(report) - 1, out);
    report[n] = '\0';
    fclose(out);
    assert_non_null(strstr(report, "checksums        FAILED"));
}

// Runs fn in a child process; returns its exit status and its error text.
typedef int (*ChildFn)(const char *dir, char *err, size_t err_len);

static int run_in_child(ChildFn fn, const char *dir, char *err, size_t err_len) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        char child_err[CKPT_ERR_LEN] = "";
        int rc = fn(dir, child_err, sizeof(child_err));
        ssize_t ignored = write(fds[1], child_err, strlen(child_err));
        (void)ignored;
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < err_len && (n = read(fds[0], err + got, err_len - 1 - got)) > 0)
        got += (size_t)n;
    err[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int save_as_unprivileged(const char *dir, char *err, size_t err_len) {
    // root ignores permission bits: drop to "nobody" to see what a normal user sees.
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
        snprintf(err, err_len, "cannot drop privileges");
        return 2;
    }
    Model m;
    model_init(&m, 77, 1);
    model_add_metadata(&m, N_RANKS);
    int rc = ckpt_save(dir, 2, &m.c, 1, err, err_len);
    model_free(&m);
    return rc;
}

static int save_with_size_limit(const char *dir, char *err, size_t err_len) {
    signal(SIGXFSZ, SIG_IGN); // writes past the limit then fail with EFBIG instead of killing us
    struct rlimit limit = {6000, 6000};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) {
        snprintf(err, err_len, "setrlimit failed");
        return 2;
    }
    Model m;
    model_init(&m, 78, 1);
    model_add_metadata(&m, N_RANKS);
    int rc = ckpt_save(dir, 2, &m.c, 1, err, err_len);
    model_free(&m);
    return rc;
}

static void test_failed_write_readonly(void **state) {
    (void)state;
    char dir[600], path[700], err[CKPT_ERR_LEN], name[64];
    path_in(dir, sizeof(dir), "ro");
    save_model(dir, 1, 1, 1);
    path_in(path, sizeof(path), "ro/step-00000001.h5");
    assert_int_equal(chmod(dir, 0555), 0);
    int rc = run_in_child(save_as_unprivileged, dir, err, sizeof(err));
    assert_int_equal(chmod(dir, 0755), 0);
    if (rc == 2) {
        print_message("running as root without the right to drop privileges: %s\n", err);
        skip();
    }
    assert_int_equal(rc, 1);
    print_message("read-only directory: %s\n", err);
    assert_non_null(strstr(err, "Permission denied"));
    assert_non_null(strstr(err, "/ro/.step-00000002.h5.tmp-"));
    assert_loads_equal(path, 1);
    latest_name(dir, name, sizeof(name));
    assert_string_equal(name, "step-00000001.h5\n");
    assert_int_equal(count_entries(dir, "."), 2);
    assert_int_equal(count_entries(dir, "step-"), 1);
}

static void test_failed_write_fsize(void **state) {
    (void)state;
    char dir[600], path[700], err[CKPT_ERR_LEN], name[64];
    // A file size limit (like a full disk) hit in the middle of the HDF5 write.
    path_in(dir, sizeof(dir), "fsize");
    save_model(dir, 1, 1, 1);
    path_in(path, sizeof(path), "fsize/step-00000001.h5");
    assert_int_equal(run_in_child(save_with_size_limit, dir, err, sizeof(err)), 1);
    print_message("file size limit: %s\n", err);
    assert_non_null(strstr(err, "File too large"));
    assert_non_null(strstr(err, "/fsize/.step-00000002.h5.tmp-"));
    assert_loads_equal(path, 1);
    latest_name(dir, name, sizeof(name));
    assert_string_equal(name, "step-00000001.h5\n");
    assert_int_equal(count_entries(dir, "."), 2);
    assert_int_equal(count_entries(dir, "step-"), 1);

    // A checkpoint directory that cannot be created.
    path_in(path, sizeof(path), "plainfile");
    write_file(path, "x", 1);
    path_in(dir, sizeof(dir), "plainfile/ckpt");
    Model m;
    model_init(&m, 1, 1);
    assert_int_equal(ckpt_save(dir, 1, &m.c, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "plainfile"));
    model_free(&m);
}

static void test_inspect_and_export(void **state) {
    (void)state;
    char dir[600], path[700], st_path[700], err[CKPT_ERR_LEN];
    path_in(dir, sizeof(dir), "insp");
    save_model(dir, 12, 12, 0);
    path_in(path, sizeof(path), "insp/step-00000012.h5");
    FILE *out = tmpfile();
    if (ckpt_inspect(path, out, err, sizeof(err)) != 0) fail_msg("%s", err);
    rewind(out);
    char report[65536];
    size_t n = fread(report, 1, sizeof(report) - 1, out);
    report[n] = '\0';
    fclose(out);
    int64_t per_group = total_numel() / N_GROUPS;
    char line[128];
    snprintf(line, sizeof(line), "group /optim/m: %d tensors, %lld parameters", N_SPECS,
             (long long)per_group);
    const char *expect[] = {"step             12",
                            "format version   1",
                            "program version  " TIJEPA_VERSION,
                            "world_size       3",
                            "slurm_job_id     4242",
                            "group /params: 5 tensors",
                            line,
                            "patch_embed.proj.weight",
                            "[4, 3, 2, 2]",
                            "rng",
                            "[3, 4] int64",
                            "  seed = 7",
                            "checksums        OK (22 datasets",
                            "file size"};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        if (!strstr(report, expect[i])) fail_msg("inspect lacks '%s':\n%s", expect[i], report);

    // Export params and ema, read back with the safetensors reader.
    for (int g = 0; g < 2; g++) {
        path_in(st_path, sizeof(st_path), "insp/%s.safetensors", groups[g]);
        if (ckpt_export_safetensors(path, groups[g], st_path, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        StFile f;
        if (st_open(&f, st_path, err, sizeof(err)) != 0) fail_msg("%s", err);
        assert_int_equal(f.n_entries, N_SPECS);
        assert_string_equal(st_get_meta(&f, "tijepa_group"), groups[g]);
        assert_string_equal(st_get_meta(&f, "tijepa_step"), "12");
        assert_string_equal(st_get_meta(&f, "tijepa_config"), config_text);
        Model want;
        model_init(&want, 12, 1);
        const float *src = want.values + (size_t)g * (size_t)per_group;
        for (int i = 0; i < N_SPECS; i++) {
            float buf[64];
            if (st_read_f32(&f, specs[i].name, specs[i].ndim, specs[i].shape, buf, err,
                            sizeof(err)) != 0)
                fail_msg("%s", err);
            assert_memory_equal(buf, src, (size_t)spec_numel(i) * sizeof(float));
            src += spec_numel(i);
        }
        model_free(&want);
        st_close(&f);
    }
    path_in(st_path, sizeof(st_path), "insp/none.safetensors");
    assert_int_equal(ckpt_export_safetensors(path, "nope", st_path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no tensor group 'nope' (it has: params, ema, optim/m, optim/v)"));
    assert_false(file_exists(st_path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_deterministic_bytes),
        cmocka_unit_test(test_step_names),
        cmocka_unit_test(test_content_validation),
        cmocka_unit_test(test_retention_and_latest),
        cmocka_unit_test(test_find_latest),
        cmocka_unit_test(test_missing_and_truncated),
        cmocka_unit_test(test_wrong_format),
        cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_shape_and_names),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_failed_write_readonly),
        cmocka_unit_test(test_failed_write_fsize),
        cmocka_unit_test(test_inspect_and_export),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
