// Helper for the Python cross-checks (tests/check_checkpoint_h5py.py, check_safetensors_pypi.py):
//   ckpt_fixture write-ckpt DIR          save a checkpoint (step 42) and list its tensors
//   ckpt_fixture write-st FILE           write an F32 safetensors file and list its tensors
//   ckpt_fixture export CKPT GROUP FILE  ckpt_export_safetensors
//   ckpt_fixture check-st FILE           read a file written by Python (F32, F16 or BF16) and
//                                        check every value
// Listed tensors are lines "T group name seed d0,d1,..."; element i of a tensor with seed k is
// value(k, i) below, which is exact in float16 and bfloat16 too.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

static float value(int k, int64_t i) {
    return (float)((i * 37 + k * 11) % 101 - 50) / 16.0f;
}

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
} Spec;

static const Spec specs[] = {
    {"ctx.blocks.0.attn.q.weight", 2, {6, 5}},
    {"ctx.blocks.0.attn.q.bias", 1, {5}},
    {"patch_embed.proj.weight", 4, {4, 3, 2, 2}},
    {"pos.table", 3, {2, 3, 4}},
    {"pred.mask_token", 1, {7}},
};
#define N_SPECS (int)(sizeof(specs) / sizeof(specs[0]))
static const char *groups[] = {"params", "ema", "optim/m", "optim/v"};

static int64_t numel(const Spec *s) {
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= s->shape[d];
    return n;
}

static float *filled(int k, int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) exit(1);
    for (int64_t i = 0; i < n; i++)
        p[i] = value(k, i);
    return p;
}

static void list_tensor(const char *group, const char *name, int k, int ndim,
                        const int64_t *shape) {
    printf("T %s %s %d ", group, name, k);
    for (int d = 0; d < ndim; d++)
        printf("%s%lld", d ? "," : "", (long long)shape[d]);
    printf("\n");
}

static int write_ckpt(const char *dir) {
    CkptContent c;
    ckpt_content_init(&c);
    char err[CKPT_ERR_LEN];
    float *buffers[4 * N_SPECS];
    int k = 0;
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < N_SPECS; i++, k++) {
            buffers[k] = filled(k, numel(&specs[i]));
            if (ckpt_add_tensor(&c, groups[g], specs[i].name, specs[i].ndim, specs[i].shape,
                                buffers[k], err, sizeof(err)) != 0)
                goto fail;
            list_tensor(groups[g], specs[i].name, k, specs[i].ndim, specs[i].shape);
        }
    int64_t rng[2 * 4] = {1, 2, 3, 4, 5, 6, 7, (int64_t)1 << 62};
    if (ckpt_set_str(&c, "config", "[model]\npreset = tiny\n", err, sizeof(err)) ||
        ckpt_set_int(&c, "world_size", 2, err, sizeof(err)) ||
        ckpt_add_blob(&c, "rng", 2, 4, rng, err, sizeof(err)) ||
        ckpt_save(dir, 42, &c, 0, err, sizeof(err)))
        goto fail;
    for (int i = 0; i < k; i++)
        free(buffers[i]);
    ckpt_content_free(&c);
    return 0;
fail:
    fprintf(stderr, "ckpt_fixture: %s\n", err);
    return 1;
}

static int write_st(const char *path) {
    StTensorF32 t[N_SPECS];
    float *buffers[N_SPECS];
    for (int i = 0; i < N_SPECS; i++) {
        buffers[i] = filled(100 + i, numel(&specs[i]));
        t[i].name = specs[i].name;
        t[i].ndim = specs[i].ndim;
        for (int d = 0; d < specs[i].ndim; d++)
            t[i].shape[d] = specs[i].shape[d];
        t[i].data = buffers[i];
        list_tensor("-", specs[i].name, 100 + i, specs[i].ndim, specs[i].shape);
    }
    const char *meta[] = {"written_by", "tijepa"};
    char err[CKPT_ERR_LEN];
    int rc = st_write_f32(path, t, N_SPECS, meta, 1, err, sizeof(err));
    if (rc) fprintf(stderr, "ckpt_fixture: %s\n", err);
    for (int i = 0; i < N_SPECS; i++)
        free(buffers[i]);
    return rc ? 1 : 0;
}

// Python writes tensors "a" [3, 4] (seed 1), "b" [5] (seed 2), "c.d" [2, 2, 2] (seed 3) and,
// for F16, "special" = [65504, 2^-24, -0, inf, -inf, nan, float16(1/3)].
static int check_st(const char *path) {
    char err[CKPT_ERR_LEN];
    StFile f;
    if (st_open(&f, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "ckpt_fixture: %s\n", err);
        return 1;
    }
    const struct {
        const char *name;
        int seed, ndim;
        int64_t shape[3];
    } want[] = {{"a", 1, 2, {3, 4}}, {"b", 2, 1, {5}}, {"c.d", 3, 3, {2, 2, 2}}};
    int bad = 0;
    float out[64];
    for (int t = 0; t < 3; t++) {
        if (st_read_f32(&f, want[t].name, want[t].ndim, want[t].shape, out, err, sizeof(err))) {
            fprintf(stderr, "ckpt_fixture: %s\n", err);
            bad = 1;
            continue;
        }
        int64_t n = 1;
        for (int d = 0; d < want[t].ndim; d++)
            n *= want[t].shape[d];
        for (int64_t i = 0; i < n; i++)
            if (out[i] != value(want[t].seed, i)) {
                fprintf(stderr, "ckpt_fixture: %s: %s[%lld] = %g, expected %g\n", path,
                        want[t].name, (long long)i, out[i], value(want[t].seed, i));
                bad = 1;
            }
        printf("%s: %s %s ok\n", path, want[t].name, st_find(&f, want[t].name)->dtype);
    }
    const StEntry *special = st_find(&f, "special");
    if (special) {
        int64_t shape[1] = {7};
        float expected[7] = {65504.0f, 5.9604644775390625e-08f, -0.0f, INFINITY, -INFINITY,
                             NAN,      0.333251953125f};
        if (st_read_f32(&f, "special", 1, shape, out, err, sizeof(err))) {
            fprintf(stderr, "ckpt_fixture: %s\n", err);
            bad = 1;
        } else {
            for (int i = 0; i < 7; i++) {
                int same = isnan(expected[i])
                               ? isnan(out[i])
                               : out[i] == expected[i] && signbit(out[i]) == signbit(expected[i]);
                if (!same) {
                    fprintf(stderr, "ckpt_fixture: %s: special[%d] = %g, expected %g\n", path, i,
                            out[i], expected[i]);
                    bad = 1;
                }
            }
            printf("%s: special %s ok\n", path, special->dtype);
        }
    }
    const char *meta = st_get_meta(&f, "written_by");
    if (!meta || strcmp(meta, "python")) {
        fprintf(stderr, "ckpt_fixture: %s: __metadata__ written_by missing\n", path);
        bad = 1;
    }
    st_close(&f);
    return bad;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "write-ckpt")) return write_ckpt(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "write-st")) return write_st(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "check-st")) return check_st(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "export")) {
        char err[CKPT_ERR_LEN];
        if (ckpt_export_safetensors(argv[2], argv[3], argv[4], err, sizeof(err)) == 0) return 0;
        fprintf(stderr, "ckpt_fixture: %s\n", err);
        return 1;
    }
    fprintf(stderr, "usage: ckpt_fixture write-ckpt DIR | write-st FILE | check-st FILE | "
                    "export CKPT GROUP FILE\n");
    return 2;
}
