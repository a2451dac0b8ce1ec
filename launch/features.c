// Feature shards: the fingerprint of the frozen encoders that made them, written by `tijepa
// encode` to features.ini beside the shards and checked by a run with data.features = true, so
// that features made by other encoder weights are refused instead of silently trained on.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

#define FEATURES_INFO "features.ini"

uint64_t features_fingerprint(Model *m) {
    int n;
    const TensorInfo *t = model_tensors(m, &n);
    const float *p = model_params(m);
    // FNV-1a 64 continued over each encoder tensor in turn (offset basis, then prime 2^40+0x1b3)
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < n; i++) {
        if (t[i].group != GROUP_TXT && t[i].group != GROUP_IMG) continue;
        const unsigned char *b = (const unsigned char *)(p + t[i].offset);
        for (size_t k = 0; k < t[i].numel * sizeof(float); k++) {
            h ^= b[k];
            h *= 0x100000001b3ULL;
        }
    }
    return h;
}

static void shape_of(Model *m, long v[4]) {
    const ModelShape *s = &model_config(m)->shape;
    int grid = s->image_size / s->patch;
    v[0] = (long)grid * grid, v[1] = s->img_dim, v[2] = s->txt_len, v[3] = s->txt_dim;
}
static const char *const shape_keys[4] = {"img_tokens", "img_dim", "txt_len", "txt_dim"};

int features_write_info(const char *dir, Model *m, const char *source, const char *weights,
                        long samples, int shards, char *err, size_t errlen) {
    char path[2200], buf[64];
    snprintf(path, sizeof(path), "%s/%s", dir, FEATURES_INFO);
    TjConfig *c = config_new();
    snprintf(buf, sizeof(buf), "%016" PRIx64, features_fingerprint(m));
    config_set(c, "features", "fingerprint", buf);
    long v[4];
    shape_of(m, v);
    for (int k = 0; k < 4; k++) {
        snprintf(buf, sizeof(buf), "%ld", v[k]);
        config_set(c, "features", shape_keys[k], buf);
    }
    config_set(c, "features", "text_encoder", text_encoder_name(model_config(m)->text_encoder));
    config_set(c, "features", "source", source);
    config_set(c, "features", "weights", weights);
    snprintf(buf, sizeof(buf), "%ld", samples);
    config_set(c, "features", "samples", buf);
    snprintf(buf, sizeof(buf), "%d", shards);
    config_set(c, "features", "shards", buf);
    char *ini = config_to_ini(c);
    config_free(c);
    FILE *f = fopen(path, "w");
    int bad = !f || fputs(ini, f) < 0;
    if (f && fclose(f)) bad = 1;
    free(ini);
    if (bad) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int features_check(Model *m, const char *spec, FILE *log, char *err, size_t errlen) {
    ShardList list;
    char e[1024], path[2200];
    if (shard_spec_expand(&list, spec, e, sizeof(e))) {
        snprintf(err, errlen, "data.train: %s", e);
        return -1;
    }
    snprintf(path, sizeof(path), "%s", list.paths[0]);
    shard_list_free(&list);
    char *slash = strrchr(path, '/');
    char *base = slash ? slash + 1 : path;
    snprintf(base, sizeof(path) - (size_t)(base - path), "%s", FEATURES_INFO);
    FILE *probe = fopen(path, "r");
    if (!probe) {
        if (log)
            fprintf(log,
                    "tijepa: warning: no %s beside the feature shards: cannot check that they "
                    "were made by this run's frozen encoders (tijepa encode writes it)\n",
                    path);
        return 1;
    }
    fclose(probe);
    TjConfig *c = config_new();
    int rc = -1;
    if (config_load_file(c, path, e, sizeof(e))) {
        snprintf(err, errlen, "%s", e);
        goto done;
    }
    long v[4];
    shape_of(m, v);
    for (int k = 0; k < 4; k++) {
        long got;
        if (config_get_int(c, "features", shape_keys[k], -1, &got, e, sizeof(e))) {
            snprintf(err, errlen, "%s: %s", path, e);
            goto done;
        }
        if (got != v[k]) {
            snprintf(err, errlen,
                     "%s: the feature shards have %s = %ld but this model has %ld: they were "
                     "made with another model shape",
                     path, shape_keys[k], got, v[k]);
            goto done;
        }
    }
    const char *fp = config_get(c, "features", "fingerprint");
    char mine[32];
    snprintf(mine, sizeof(mine), "%016" PRIx64, features_fingerprint(m));
    if (!fp || strcmp(fp, mine)) {
        const char *w = config_get(c, "features", "weights");
        snprintf(err, errlen,
                 "%s: the feature shards were made by frozen encoders with fingerprint %s (%s), "
                 "but this run's encoders have %s: encode again with this run's config "
                 "(tijepa encode --config ...), or give this run the weights they were made with "
                 "(run.seed, model.image_weights, model.text_weights)",
                 path, fp ? fp : "(none)", w ? w : "weights unknown", mine);
        goto done;
    }
    rc = 0;
done:
    config_free(c);
    return rc;
}
