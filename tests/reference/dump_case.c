// Writes one reference case for check_model.py: a tiny-preset model with random weights, one
// batch of random inputs, the masks and negatives of each step, the C side's losses, the step-0
// gradients, and the parameters after n AdamW + EMA steps (format: tests/reference/MODEL.md and
// check_model.py).
// usage: tj_dump_case OUT.h5 [--mode paper|scratch|ijepa] [--nce W] [--negatives K] [--batch B]
//                           [--steps N] [--txt-dim D] [--clip C] [--seed S]
//                           [--negative-target own|positive] [--target-text caption|none]
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define H5_OK(x)                                                                                   \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
            fprintf(stderr, "%s:%d: HDF5 call failed: %s\n", __FILE__, __LINE__, #x);              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void write_array(hid_t file, const char *path, hid_t type, const void *data, int ndim,
                        const int *shape) {
    hsize_t dims[4];
    for (int i = 0; i < ndim; i++)
        dims[i] = (hsize_t)shape[i];
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5_OK(H5Pset_create_intermediate_group(lcpl, 1));
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(file, path, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5_OK(ds);
    H5_OK(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(ds);
    H5Sclose(space);
    H5Pclose(lcpl);
}

static void write_scalar(hid_t file, const char *path, double v) {
    write_array(file, path, H5T_NATIVE_DOUBLE, &v, 0, NULL);
}

static void attr_long(hid_t file, const char *name, long v) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, H5T_NATIVE_LONG, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_OK(H5Awrite(a, H5T_NATIVE_LONG, &v));
    H5Aclose(a);
    H5Sclose(space);
}

static void attr_double(hid_t file, const char *name, double v) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_OK(H5Awrite(a, H5T_NATIVE_DOUBLE, &v));
    H5Aclose(a);
    H5Sclose(space);
}

static void attr_string(hid_t file, const char *name, const char *v) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(v));
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_OK(H5Awrite(a, type, v));
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
}

// Writes every tensor of [first, n) that lies in buf (mirroring params[lo, lo + count)).
static void write_tensors(hid_t file, const char *group, const Model *m, const float *buf,
                          size_t lo, size_t count) {
    int n;
    const TensorInfo *t = model_tensors(m, &n);
    char path[256];
    for (int i = 0; i < n; i++) {
        if (t[i].offset < lo || t[i].offset + t[i].numel > lo + count) continue;
        snprintf(path, sizeof(path), "%s/%s", group, t[i].name);
        write_array(file, path, H5T_NATIVE_FLOAT, buf + (t[i].offset - lo), t[i].ndim, t[i].shape);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s OUT.h5 [--mode paper|scratch|ijepa] [--nce W] [--negatives K] "
                "[--batch B] [--steps N] [--txt-dim D] [--clip C] [--seed S] [--negative-target "
                "own|positive]\n",
                argv[0]);
        return 2;
    }
    const char *out = argv[1], *mode = "paper", *negative_target = "own", *target_text = "caption";
    float nce = 0.0f, clip = 0.0f;
    int K = 3, B = 4, steps = 5, txt_dim = 0;
    unsigned long seed = 7;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--mode"))
            mode = v;
        else if (!strcmp(k, "--nce"))
            nce = strtof(v, NULL);
        else if (!strcmp(k, "--negatives"))
            K = atoi(v);
        else if (!strcmp(k, "--batch"))
            B = atoi(v);
        else if (!strcmp(k, "--steps"))
            steps = atoi(v);
        else if (!strcmp(k, "--txt-dim"))
            txt_dim = atoi(v);
        else if (!strcmp(k, "--clip"))
            clip = strtof(v, NULL);
        else if (!strcmp(k, "--target-text"))
            target_text = v;
        else if (!strcmp(k, "--negative-target"))
            negative_target = v;
        else if (!strcmp(k, "--seed"))
            seed = strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], k);
            return 2;
        }
    }

    ModelConfig cfg = {0};
    model_preset(&cfg.shape, "tiny");
    if (txt_dim) cfg.shape.txt_dim = txt_dim;
    cfg.mode = !strcmp(mode, "scratch") ? MODE_SCRATCH
               : !strcmp(mode, "ijepa") ? MODE_IJEPA
                                        : MODE_PAPER;
    cfg.local_batch = B;
    cfg.nce_weight = nce;
    cfg.negatives = nce > 0 ? K : 0;
    cfg.temperature = 0.5f;
    cfg.target_text = !strcmp(target_text, "none") ? TARGET_TEXT_NONE : TARGET_TEXT_CAPTION;
    cfg.negative_target =
        !strcmp(negative_target, "positive") ? NEG_TARGET_POSITIVE : NEG_TARGET_OWN;
    char err[256];
    Model *m = model_new(&cfg, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    model_init_weights(m, seed);
    // Perturb every tensor a little so that norms and biases are not trivially 1 and 0: the
    // check must see each gradient path.
    {
        int n;
        const TensorInfo *t = model_tensors(m, &n);
        float *p = model_params(m);
        for (int i = 0; i < n; i++) {
            Rng r;
            rng_init(&r, seed, 99, (uint64_t)i, 0);
            for (size_t j = 0; j < t[i].numel; j++)
                p[t[i].offset + j] += 0.05f * rng_normal(&r);
        }
        // the EMA copies start slightly different from the online tensors
        float *e = model_ema(m);
        memcpy(e, p + model_ema_offset(m), model_ema_count(m) * sizeof(float));
        Rng r;
        rng_init(&r, seed, 98, 0, 0);
        for (size_t j = 0; j < model_ema_count(m); j++)
            e[j] += 0.01f * rng_normal(&r);
    }

    const ModelShape *s = &cfg.shape;
    int S = s->image_size, L = s->txt_len, grid = S / s->patch;
    float *images = malloc(sizeof(float) * B * 3 * S * S);
    int32_t *tokens = malloc(sizeof(int32_t) * B * L);
    uint8_t *valid = malloc((size_t)B * L);
    Rng r;
    rng_init(&r, seed, 97, 0, 0);
    for (long i = 0; i < (long)B * 3 * S * S; i++)
        images[i] = rng_normal(&r);
    for (int b = 0; b < B; b++) {
        int len = 2 + (int)(rng_next(&r) % (uint64_t)(L - 1)); // 2..L valid tokens
        for (int l = 0; l < L; l++) {
            valid[b * L + l] = l < len;
            tokens[b * L + l] = l < len ? 5 + (int)(rng_next(&r) % (uint64_t)(s->vocab - 5)) : 0;
        }
    }

    OptimConfig oc;
    optim_config_default(&oc);
    oc.lr = 1e-3f;
    oc.start_lr = 2e-4f;
    oc.final_lr = 1e-5f;
    oc.warmup_steps = 2;
    oc.total_steps = steps + 2;
    oc.ema_start = 0.9f; // far from 1 so the EMA update is visible in 5 steps
    oc.ema_end = 0.99f;
    oc.clip_grad = clip;

    hid_t file = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5_OK(file);
    attr_string(file, "mode", mode);
    attr_string(file, "negative_target", negative_target);
    attr_string(file, "target_text", target_text);
    long ints[] = {s->image_size,
                   s->patch,
                   s->img_dim,
                   s->img_depth,
                   s->img_heads,
                   s->txt_dim,
                   s->txt_depth,
                   s->txt_heads,
                   s->txt_len,
                   s->vocab,
                   s->cross_dim,
                   s->cross_depth,
                   s->cross_heads,
                   s->pred_dim,
                   s->pred_depth,
                   s->pred_heads,
                   B,
                   cfg.negatives,
                   oc.warmup_steps,
                   oc.total_steps,
                   steps};
    const char *int_names[] = {
        "image_size",   "patch",       "img_dim",    "img_depth",  "img_heads", "txt_dim",
        "txt_depth",    "txt_heads",   "txt_len",    "vocab",      "cross_dim", "cross_depth",
        "cross_heads",  "pred_dim",    "pred_depth", "pred_heads", "batch",     "negatives",
        "warmup_steps", "total_steps", "n_steps"};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        attr_long(file, int_names[i], ints[i]);
    attr_double(file, "nce_weight", cfg.nce_weight);
    attr_double(file, "temperature", cfg.temperature);
    attr_double(file, "lr", oc.lr);
    attr_double(file, "start_lr", oc.start_lr);
    attr_double(file, "final_lr", oc.final_lr);
    attr_double(file, "weight_decay", oc.weight_decay);
    attr_double(file, "final_weight_decay", oc.final_weight_decay);
    attr_double(file, "ema_start", oc.ema_start);
    attr_double(file, "ema_end", oc.ema_end);
    attr_double(file, "clip_grad", oc.clip_grad);

    write_tensors(file, "/init/params", m, model_params(m), 0, model_num_params(m));
    write_tensors(file, "/init/ema", m, model_ema(m), model_ema_offset(m), model_ema_count(m));
    int img_shape[4] = {B, 3, S, S}, tok_shape[2] = {B, L};
    write_array(file, "/inputs/images", H5T_NATIVE_FLOAT, images, 4, img_shape);
    write_array(file, "/inputs/tokens", H5T_NATIVE_INT32, tokens, 2, tok_shape);
    write_array(file, "/inputs/valid", H5T_NATIVE_UINT8, valid, 2, tok_shape);

    MaskSet ms;
    maskset_alloc(&ms, grid);
    MaskConfig mc;
    mask_config_default(&mc);
    int *neg = malloc(sizeof(int) * (size_t)B * (K > 0 ? K : 1));
    ModelBatch batch = {.n = B, .images = images, .tokens = tokens, .valid = valid};
    char path[128];
    for (int t = 0; t < steps; t++) {
        mask_sample(&ms, &mc, grid, seed, (uint64_t)t);
        const float *u = model_encode_text(m, &batch);
        NegativePool pool = {u, valid, B, 0, neg}, *pp = NULL;
        if (cfg.negatives > 0) {
            negatives_sample(neg, B, K, 0, B, seed, (uint64_t)t);
            pp = &pool;
            int nshape[2] = {B, K};
            snprintf(path, sizeof(path), "/steps/%d/negatives", t);
            write_array(file, path, H5T_NATIVE_INT32, neg, 2, nshape);
        }
        ModelLoss loss;
        model_forward_backward(m, &loss, &batch, &ms, pp, NULL, NULL);
        snprintf(path, sizeof(path), "/steps/%d/context", t);
        write_array(file, path, H5T_NATIVE_INT32, ms.context, 1, &ms.n_context);
        snprintf(path, sizeof(path), "/steps/%d/target", t);
        write_array(file, path, H5T_NATIVE_INT32, ms.target, 1, &ms.n_target);
        snprintf(path, sizeof(path), "/steps/%d/loss", t);
        write_scalar(file, path, loss.loss);
        snprintf(path, sizeof(path), "/steps/%d/jepa", t);
        write_scalar(file, path, loss.jepa);
        snprintf(path, sizeof(path), "/steps/%d/nce", t);
        write_scalar(file, path, loss.nce);
        if (t == 0)
            write_tensors(file, "/grads", m, model_grads(m), model_trainable_offset(m),
                          model_trainable_count(m));
        optim_step(m, &oc, t);
    }
    write_tensors(file, "/final/params", m, model_params(m), 0, model_num_params(m));
    write_tensors(file, "/final/ema", m, model_ema(m), model_ema_offset(m), model_ema_count(m));
    H5_OK(H5Fclose(file));
    printf("wrote %s (%s, nce %.2f, K %d, batch %d, %d steps)\n", out, mode, nce, cfg.negatives, B,
           steps);
    maskset_free(&ms);
    free(neg);
    free(images);
    free(tokens);
    free(valid);
    model_free(m);
    return 0;
}
