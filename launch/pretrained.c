// Pretrained encoders: a ViT (timm / I-JEPA tensor names in safetensors, or a tijepa checkpoint)
// into the image encoder img.*, and a BERT-family model (Hugging Face names in safetensors) into
// the post-LN bert text encoder txt.*. Every tensor's shape is checked against the config before
// it is read; the first mismatch, a missing tensor or an unsupported feature stops the load with
// a message naming the file, the tensor and both shapes (docs/encoders.md).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

#define NAME_MAX_LEN 256

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// Appends to a note line (silently truncated: it is informative only).
static void note_add(char *note, size_t notelen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note_add(char *note, size_t notelen, const char *fmt, ...) {
    if (!note || !notelen) return;
    size_t used = strlen(note);
    if (used + 1 >= notelen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + used, notelen - used, fmt, ap);
    va_end(ap);
}

static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

// ---------------------------------------------------------------------------------------------
// model side: a tensor by name, and its EMA copy kept equal

typedef struct {
    const TensorInfo *info;
    float *data;
    int64_t shape[4];
} ModelTensor;

static int model_tensor(Model *m, const char *name, ModelTensor *out, char *err, size_t errlen) {
    int i = model_tensor_index(m, name);
    if (i < 0) {
        errf(err, errlen, "%s:%d: the model has no tensor %s", __FILE__, __LINE__, name);
        return -1;
    }
    int n;
    out->info = &model_tensors(m, &n)[i];
    out->data = model_params(m) + out->info->offset;
    for (int d = 0; d < 4; d++)
        out->shape[d] = out->info->shape[d];
    return 0;
}

// Pretrained weights replace the initial ones; an EMA copy of a loaded tensor must follow.
static void sync_ema(Model *m, const TensorInfo *t) {
    size_t lo = model_ema_offset(m), hi = lo + model_ema_count(m);
    if (t->offset >= lo && t->offset + t->numel <= hi)
        memcpy(model_ema(m) + (t->offset - lo), model_params(m) + t->offset,
               t->numel * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// file side: a safetensors file whose names carry an optional prefix

typedef struct {
    StFile f;
    const char *path;
    const char *prefix;
    uint8_t *used; // per header entry: read (or checked) by the loader
} Source;

static const StEntry *source_find(Source *src, const char *name) {
    char full[NAME_MAX_LEN];
    snprintf(full, sizeof(full), "%s%s", src->prefix, name);
    return st_find(&src->f, full);
}

static void source_mark(Source *src, const StEntry *e) {
    src->used[e - src->f.entries] = 1;
}

// Reads file tensor `name` (without prefix) of exactly (ndim, shape) into out. hint names the
// settings that determine the expected shape.
static int source_read(Source *src, const char *name, int ndim, const int64_t *shape, float *out,
                       const char *hint, char *err, size_t errlen) {
    char full[NAME_MAX_LEN];
    snprintf(full, sizeof(full), "%s%s", src->prefix, name);
    const StEntry *e = st_find(&src->f, full);
    if (!e) {
        errf(err, errlen, "%s: tensor '%s' is missing (the model needs it)", src->path, full);
        return -1;
    }
    int same = e->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = e->shape[d] == shape[d];
    if (!same) {
        char got[160], want[160];
        shape_text(got, sizeof(got), e->ndim, e->shape);
        shape_text(want, sizeof(want), ndim, shape);
        errf(err, errlen, "%s: tensor '%s' has shape %s but the model expects %s (%s)", src->path,
             full, got, want, hint);
        return -1;
    }
    if (st_read_f32(&src->f, full, ndim, shape, out, err, errlen)) return -1;
    source_mark(src, e);
    return 0;
}

// Model tensor model_name ← file tensor file_name (same shape).
static int load_tensor(Model *m, Source *src, const char *model_name, const char *file_name,
                       const char *hint, char *err, size_t errlen) {
    ModelTensor t;
    if (model_tensor(m, model_name, &t, err, errlen) ||
        source_read(src, file_name, t.info->ndim, t.shape, t.data, hint, err, errlen))
        return -1;
    sync_ema(m, t.info);
    return 0;
}

// The first prefix under which `probe` exists, or NULL.
static const char *detect_prefix(Source *src, const char *const *prefixes, int n,
                                 const char *probe) {
    for (int i = 0; i < n; i++) {
        src->prefix = prefixes[i];
        if (source_find(src, probe)) return prefixes[i];
    }
    src->prefix = "";
    return NULL;
}

// 1 + the largest N of the tensors named PREFIX + head + "N." (0 when there is none).
static int count_layers(const Source *src, const char *head) {
    char start[NAME_MAX_LEN];
    snprintf(start, sizeof(start), "%s%s", src->prefix, head);
    size_t k = strlen(start);
    int n = 0;
    for (int i = 0; i < src->f.n_entries; i++) {
        const char *name = src->f.entries[i].name;
        if (strncmp(name, start, k)) continue;
        char *end;
        long v = strtol(name + k, &end, 10);
        if (end != name + k && *end == '.' && v >= 0 && v < 100000 && v + 1 > n) n = (int)v + 1;
    }
    return n;
}

// The note's tail: how many tensors of the file were not used, with the first few names.
static void note_unused(const Source *src, char *note, size_t notelen) {
    int unused = 0;
    for (int i = 0; i < src->f.n_entries; i++)
        unused += !src->used[i];
    if (!unused) return;
    note_add(note, notelen, "; ignored %d tensor%s of the file (", unused, unused > 1 ? "s" : "");
    int shown = 0;
    for (int i = 0; i < src->f.n_entries && shown < 3; i++)
        if (!src->used[i])
            note_add(note, notelen, "%s%s", shown++ ? ", " : "", src->f.entries[i].name);
    note_add(note, notelen, "%s)", unused > shown ? ", ..." : "");
}

static int source_open(Source *src, const char *path, char *err, size_t errlen) {
    memset(src, 0, sizeof(*src));
    src->path = path;
    src->prefix = "";
    if (st_open(&src->f, path, err, errlen)) return -1;
    src->used = calloc((size_t)src->f.n_entries + 1, 1);
    if (!src->used) {
        st_close(&src->f);
        errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    return 0;
}

static void source_close(Source *src) {
    st_close(&src->f);
    free(src->used);
}

// ---------------------------------------------------------------------------------------------
// image encoder: timm / I-JEPA ViT

static const char *const vit_prefixes[] = {"", "module.", "encoder.", "module.encoder."};
static const char *const block_tensors[] = {"norm1.weight",  "norm1.bias",       "attn.qkv.weight",
                                            "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
                                            "norm2.weight",  "norm2.bias",       "mlp.fc1.weight",
                                            "mlp.fc1.bias",  "mlp.fc2.weight",   "mlp.fc2.bias"};
#define N_BLOCK_TENSORS (int)(sizeof(block_tensors) / sizeof(block_tensors[0]))

// An optional pos_embed must be the fixed sin-cos table the model adds itself.
static int check_pos_embed(Source *src, const ModelShape *s, char *note, size_t notelen, char *err,
                           size_t errlen) {
    const StEntry *e = source_find(src, "pos_embed");
    if (!e) return 0;
    int grid = s->image_size / s->patch, P = grid * grid, D = s->img_dim;
    int64_t shape3[3] = {1, P, D};
    int ndim = e->ndim == 2 ? 2 : 3;
    const int64_t *shape = ndim == 2 ? shape3 + 1 : shape3;
    char hint[160];
    snprintf(hint, sizeof(hint),
             "a %d×%d patch grid (model.image_size=%d / model.patch=%d) of width model.img_dim=%d",
             grid, grid, s->image_size, s->patch, D);
    float *file_pos = malloc((size_t)P * D * sizeof(float));
    float *table = malloc((size_t)P * D * sizeof(float));
    int rc = -1;
    if (!file_pos || !table) {
        errf(err, errlen, "%s: out of memory", src->path);
    } else if (!source_read(src, "pos_embed", ndim, shape, file_pos, hint, err, errlen)) {
        sincos_pos_embed_2d(table, grid, D);
        double worst = 0;
        for (size_t i = 0; i < (size_t)P * D; i++) {
            double diff = fabs((double)file_pos[i] - table[i]);
            if (!(diff <= worst)) worst = diff; // NaN counts as the worst
        }
        if (!(worst <= 1e-5)) {
            errf(err, errlen,
                 "%s: tensor '%spos_embed' is not the fixed 2-D sin-cos table of tijepa's ViT "
                 "(max difference %.3g): learned position embeddings are not supported",
                 src->path, src->prefix, worst);
        } else {
            note_add(note, notelen,
                     "; its pos_embed equals the fixed sin-cos table (max diff %.1g)", worst);
            rc = 0;
        }
    }
    free(file_pos);
    free(table);
    return rc;
}

static int load_vit_safetensors(Model *m, const char *path, char *note, size_t notelen, char *err,
                                size_t errlen) {
    const ModelShape *s = &model_config(m)->shape;
    Source src;
    if (source_open(&src, path, err, errlen)) return -1;
    int rc = -1;
    char hint[160], name[NAME_MAX_LEN], model_name[NAME_MAX_LEN];
    if (!detect_prefix(&src, vit_prefixes, 4, "patch_embed.proj.weight")) {
        errf(err, errlen,
             "%s: no ViT patch embedding 'patch_embed.proj.weight' (also looked under the "
             "prefixes module., encoder. and module.encoder.): not a timm / I-JEPA ViT "
             "(an I-JEPA .pth.tar needs launch/convert-ijepa first)",
             path);
        goto done;
    }
    const StEntry *cls = source_find(&src, "cls_token");
    if (cls) {
        errf(err, errlen,
             "%s: the ViT has a class token '%scls_token'; tijepa's image encoder has none (as "
             "I-JEPA's): ViTs with a class token are not supported",
             path, src.prefix);
        goto done;
    }
    const char *heads = st_get_meta(&src.f, "num_heads");
    if (heads && atoi(heads) != s->img_heads) {
        errf(err, errlen,
             "%s: the ViT has %s attention heads (metadata num_heads) but "
             "model.img_heads = %d",
             path, heads, s->img_heads);
        goto done;
    }
    int depth = count_layers(&src, "blocks.");
    if (depth != s->img_depth) {
        errf(err, errlen, "%s: the ViT has %d blocks but model.img_depth = %d", path, depth,
             s->img_depth);
        goto done;
    }
    snprintf(hint, sizeof(hint), "model.img_dim=%d, model.patch=%d, 3 channels", s->img_dim,
             s->patch);
    if (load_tensor(m, &src, "img.patch_embed.weight", "patch_embed.proj.weight", hint, err,
                    errlen) ||
        load_tensor(m, &src, "img.patch_embed.bias", "patch_embed.proj.bias", hint, err, errlen))
        goto done;
    snprintf(hint, sizeof(hint), "model.img_dim=%d, MLP width 4×", s->img_dim);
    for (int b = 0; b < s->img_depth; b++)
        for (int k = 0; k < N_BLOCK_TENSORS; k++) {
            snprintf(name, sizeof(name), "blocks.%d.%s", b, block_tensors[k]);
            snprintf(model_name, sizeof(model_name), "img.blocks.%d.%s", b, block_tensors[k]);
            if (load_tensor(m, &src, model_name, name, hint, err, errlen)) goto done;
        }
    if (load_tensor(m, &src, "img.norm.weight", "norm.weight", hint, err, errlen) ||
        load_tensor(m, &src, "img.norm.bias", "norm.bias", hint, err, errlen))
        goto done;
    note_add(note, notelen, "ViT from %s (prefix '%s', %d blocks, width %d)", path, src.prefix,
             depth, s->img_dim);
    if (check_pos_embed(&src, s, note, notelen, err, errlen)) goto done;
    note_unused(&src, note, notelen);
    rc = 0;
done:
    source_close(&src);
    return rc;
}

// A tijepa checkpoint as the image encoder: its /params img.* tensors (the online encoder of a
// scratch run, the frozen one of a paper run), or for an ijepa checkpoint its /ema img.* tensors
// (the target encoder, which I-JEPA evaluates and releases).
static int load_vit_checkpoint(Model *m, const char *path, char *note, size_t notelen, char *err,
                               size_t errlen) {
    const ModelShape *s = &model_config(m)->shape;
    CkptContent desc, c;
    ckpt_content_init(&desc);
    ckpt_content_init(&c);
    int rc = -1;
    if (ckpt_describe(path, &desc, err, errlen)) goto done;
    // The checkpoint's own config tells the heads, which no tensor shape reveals, and the mode.
    const char *group = "params";
    const char *ini = ckpt_get_str(&desc, "config");
    if (ini) {
        TjConfig *cfg = config_new();
        RunSettings rs;
        char cerr[512];
        int known = !config_load_string(cfg, ini, path, cerr, sizeof(cerr)) &&
                    !run_settings_resolve(&rs, cfg, cerr, sizeof(cerr));
        config_free(cfg);
        if (known && rs.model.shape.img_heads != s->img_heads) {
            errf(err, errlen,
                 "checkpoint %s: its image encoder has model.img_heads = %d but "
                 "this run has model.img_heads = %d",
                 path, rs.model.shape.img_heads, s->img_heads);
            goto done;
        }
        if (known && rs.model.mode == MODE_IJEPA) group = "ema";
    }
    if (!ckpt_find_tensor(&desc, group, "img.patch_embed.weight")) {
        errf(err, errlen, "checkpoint %s has no image encoder (/%s/img.*)", path, group);
        goto done;
    }
    int depth = 0;
    for (int i = 0; i < desc.n_tensors; i++) {
        const CkptTensor *t = &desc.tensors[i];
        int b;
        if (!strcmp(t->group, group) && sscanf(t->name, "img.blocks.%d.", &b) == 1 && b + 1 > depth)
            depth = b + 1;
    }
    if (depth != s->img_depth) {
        errf(err, errlen, "checkpoint %s: its image encoder has %d blocks but model.img_depth = %d",
             path, depth, s->img_depth);
        goto done;
    }
    int n;
    const TensorInfo *ti = model_tensors(m, &n);
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(ti[i].name, "img.", 4)) continue;
        int64_t shape[4];
        for (int d = 0; d < ti[i].ndim; d++)
            shape[d] = ti[i].shape[d];
        if (ckpt_add_tensor(&c, group, ti[i].name, ti[i].ndim, shape,
                            model_params(m) + ti[i].offset, err, errlen))
            goto done;
        loaded++;
    }
    if (ckpt_load(path, &c, CKPT_LOAD_ALLOW_EXTRA, err, errlen)) goto done;
    for (int i = 0; i < n; i++)
        if (!strncmp(ti[i].name, "img.", 4)) sync_ema(m, &ti[i]);
    int64_t step = 0;
    ckpt_get_int(&desc, "step", &step);
    note_add(note, notelen, "ViT from tijepa checkpoint %s (step %lld, %d tensors /%s/img.*%s)",
             path, (long long)step, loaded, group,
             strcmp(group, "ema") ? "" : ": the EMA target encoder of an ijepa run");
    rc = 0;
done:
    ckpt_content_free(&desc);
    ckpt_content_free(&c);
    return rc;
}

// HDF5 files start with this signature (a tijepa checkpoint); anything else is read as
// safetensors.
static int is_hdf5(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8];
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t got = fread(head, 1, sizeof(head), fp);
    fclose(fp);
    return got == sizeof(head) && !memcmp(head, sig, sizeof(sig));
}

int pretrained_load_image(Model *m, const char *path, char *note, size_t notelen, char *err,
                          size_t errlen) {
    if (note && notelen) note[0] = 0;
    if (is_hdf5(path)) return load_vit_checkpoint(m, path, note, notelen, err, errlen);
    return load_vit_safetensors(m, path, note, notelen, err, errlen);
}

// ---------------------------------------------------------------------------------------------
// text encoder: Hugging Face BERT

// What a BERT config says (from the file's metadata or a config.json beside it).
typedef struct {
    const char *from; // "metadata", the config.json path, or NULL: unknown
    char config_path[1100];
    int heads;         // 0: unknown
    double eps;        // < 0: unknown
    char act[32];      // "" unknown
    char pos_type[32]; // "" unknown
    char model_type[32];
} BertConfig;

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

static void bert_config_from_meta(BertConfig *bc, const StFile *f) {
    const char *heads = st_get_meta(f, "num_attention_heads");
    if (!heads) return;
    bc->from = "metadata";
    bc->heads = atoi(heads);
    const char *eps = st_get_meta(f, "layer_norm_eps");
    bc->eps = eps ? strtod(eps, NULL) : -1;
    copy_str(bc->act, sizeof(bc->act), st_get_meta(f, "hidden_act"));
    copy_str(bc->pos_type, sizeof(bc->pos_type), st_get_meta(f, "position_embedding_type"));
    copy_str(bc->model_type, sizeof(bc->model_type), st_get_meta(f, "model_type"));
}

// config.json beside the weights (a Hugging Face model directory). Absent: nothing known.
static int bert_config_from_json(BertConfig *bc, const char *weights_path, char *err,
                                 size_t errlen) {
    const char *slash = strrchr(weights_path, '/');
    int dir_len = slash ? (int)(slash - weights_path) + 1 : 0;
    snprintf(bc->config_path, sizeof(bc->config_path), "%.*sconfig.json", dir_len, weights_path);
    FILE *fp = fopen(bc->config_path, "rb");
    if (!fp) return 0;
    char *text = calloc(1 << 20, 1);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, fp) : 0;
    fclose(fp);
    cJSON *root = text ? cJSON_ParseWithLength(text, n) : NULL;
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        errf(err, errlen,
             "%s: %s beside it is not a JSON object (a Hugging Face config.json was expected)",
             weights_path, bc->config_path);
        return -1;
    }
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(root, "num_attention_heads");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    bc->from = bc->config_path;
    bc->heads = cJSON_IsNumber(heads) ? heads->valueint : 0;
    bc->eps = cJSON_IsNumber(eps) ? eps->valuedouble : -1;
    copy_str(bc->act, sizeof(bc->act), cJSON_IsString(act) ? act->valuestring : NULL);
    copy_str(bc->pos_type, sizeof(bc->pos_type), cJSON_IsString(pos) ? pos->valuestring : NULL);
    copy_str(bc->model_type, sizeof(bc->model_type),
             cJSON_IsString(type) ? type->valuestring : NULL);
    cJSON_Delete(root);
    return 0;
}

// The architecture facts that tensor shapes cannot show.
static int bert_config_check(const BertConfig *bc, const ModelShape *s, const char *path, char *err,
                             size_t errlen) {
    if (!bc->from) return 0;
    if (bc->model_type[0] && strcmp(bc->model_type, "bert")) {
        errf(err, errlen,
             "%s (%s): model_type '%s' is not a BERT; tijepa's bert encoder covers BERT-family "
             "models (model_type bert: BERT, MiniLM, bge, e5); models with rotary positions or "
             "GLU MLPs such as gte-base-en-v1.5 are not supported",
             path, bc->from, bc->model_type);
        return -1;
    }
    if (bc->heads && bc->heads != s->txt_heads) {
        errf(err, errlen, "%s (%s): num_attention_heads = %d but model.txt_heads = %d", path,
             bc->from, bc->heads, s->txt_heads);
        return -1;
    }
    if (bc->eps >= 0 && fabs(bc->eps - 1e-12) > 1e-15) {
        errf(err, errlen,
             "%s (%s): layer_norm_eps = %g but tijepa's bert encoder uses BERT's 1e-12", path,
             bc->from, bc->eps);
        return -1;
    }
    if (bc->act[0] && strcmp(bc->act, "gelu")) {
        errf(err, errlen,
             "%s (%s): hidden_act = '%s'; tijepa's bert encoder has the exact (erf) GELU only "
             "('gelu')",
             path, bc->from, bc->act);
        return -1;
    }
    if (bc->pos_type[0] && strcmp(bc->pos_type, "absolute")) {
        errf(err, errlen,
             "%s (%s): position_embedding_type = '%s'; only 'absolute' (learned) positions are "
             "supported",
             path, bc->from, bc->pos_type);
        return -1;
    }
    return 0;
}

static const char *const bert_prefixes[] = {"", "bert.", "0.auto_model."};

// A LayerNorm's weight and bias, under the current names or the old gamma/beta.
static int load_layernorm(Model *m, Source *src, const char *model_prefix, const char *file_prefix,
                          const char *hint, char *err, size_t errlen) {
    char mw[NAME_MAX_LEN], mb[NAME_MAX_LEN], fw[NAME_MAX_LEN], fb[NAME_MAX_LEN];
    snprintf(mw, sizeof(mw), "%s.weight", model_prefix);
    snprintf(mb, sizeof(mb), "%s.bias", model_prefix);
    snprintf(fw, sizeof(fw), "%s.weight", file_prefix);
    snprintf(fb, sizeof(fb), "%s.bias", file_prefix);
    if (!source_find(src, fw)) {
        char gw[NAME_MAX_LEN];
        snprintf(gw, sizeof(gw), "%s.gamma", file_prefix);
        if (source_find(src, gw)) {
            snprintf(fw, sizeof(fw), "%s.gamma", file_prefix);
            snprintf(fb, sizeof(fb), "%s.beta", file_prefix);
        }
    }
    return load_tensor(m, src, mw, fw, hint, err, errlen) ||
                   load_tensor(m, src, mb, fb, hint, err, errlen)
               ? -1
               : 0;
}

// q, k and v of one layer into the fused attn.qkv (rows q, then k, then v).
static int load_qkv(Model *m, Source *src, int layer, const char *hint, char *err, size_t errlen) {
    static const char *const parts[3] = {"query", "key", "value"};
    char name[NAME_MAX_LEN];
    ModelTensor w, b;
    snprintf(name, sizeof(name), "txt.blocks.%d.attn.qkv.weight", layer);
    if (model_tensor(m, name, &w, err, errlen)) return -1;
    snprintf(name, sizeof(name), "txt.blocks.%d.attn.qkv.bias", layer);
    if (model_tensor(m, name, &b, err, errlen)) return -1;
    int64_t D = w.shape[1], wshape[2] = {D, D}, bshape[1] = {D};
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof(name), "encoder.layer.%d.attention.self.%s.weight", layer, parts[k]);
        if (source_read(src, name, 2, wshape, w.data + (size_t)k * D * D, hint, err, errlen))
            return -1;
        snprintf(name, sizeof(name), "encoder.layer.%d.attention.self.%s.bias", layer, parts[k]);
        if (source_read(src, name, 1, bshape, b.data + (size_t)k * D, hint, err, errlen)) return -1;
    }
    sync_ema(m, w.info);
    sync_ema(m, b.info);
    return 0;
}

// Position embeddings: the first txt_len rows of the file's table. Token types: row 0 (and 1)
// of the file's; a model with a single token type gets a zero row 1 (never used).
static int load_bert_tables(Model *m, Source *src, const char *hint, char *err, size_t errlen) {
    const ModelShape *s = &model_config(m)->shape;
    const char *tables[2] = {"embeddings.position_embeddings.weight",
                             "embeddings.token_type_embeddings.weight"};
    const char *targets[2] = {"txt.position_embeddings", "txt.token_type_embeddings"};
    for (int k = 0; k < 2; k++) {
        const StEntry *e = source_find(src, tables[k]);
        ModelTensor t;
        if (model_tensor(m, targets[k], &t, err, errlen)) return -1;
        int64_t rows = t.shape[0];
        if (!e) {
            errf(err, errlen, "%s: tensor '%s%s' is missing (the model needs it)", src->path,
                 src->prefix, tables[k]);
            return -1;
        }
        int64_t have = e->ndim == 2 ? e->shape[0] : 0;
        if (e->ndim != 2 || e->shape[1] != s->txt_dim || have < 1 || (k == 0 && have < rows)) {
            char got[160];
            shape_text(got, sizeof(got), e->ndim, e->shape);
            errf(err, errlen,
                 "%s: tensor '%s%s' has shape %s but the model expects [%s%lld, %d] (%s)",
                 src->path, src->prefix, tables[k], got, k == 0 ? "≥ " : "1 or ",
                 (long long)(k == 0 ? rows : 2), s->txt_dim,
                 k == 0 ? "one row per position: model.txt_len must not exceed the file's "
                          "max_position_embeddings"
                        : hint);
            return -1;
        }
        float *all = malloc((size_t)have * s->txt_dim * sizeof(float));
        if (!all) {
            errf(err, errlen, "%s: out of memory", src->path);
            return -1;
        }
        int64_t shape[2] = {have, s->txt_dim};
        if (source_read(src, tables[k], 2, shape, all, hint, err, errlen)) {
            free(all);
            return -1;
        }
        int64_t copy = have < rows ? have : rows;
        memset(t.data, 0, t.info->numel * sizeof(float));
        memcpy(t.data, all, (size_t)copy * s->txt_dim * sizeof(float));
        free(all);
        sync_ema(m, t.info);
    }
    return 0;
}

int pretrained_load_text(Model *m, const char *path, char *note, size_t notelen, char *err,
                         size_t errlen) {
    if (note && notelen) note[0] = 0;
    const ModelConfig *cfg = model_config(m);
    const ModelShape *s = &cfg->shape;
    if (cfg->text_encoder != TEXT_ENCODER_BERT) {
        errf(err, errlen, "%s: pretrained text weights need model.text_encoder = bert", path);
        return -1;
    }
    Source src;
    if (source_open(&src, path, err, errlen)) return -1;
    int rc = -1;
    BertConfig bc = {.eps = -1};
    char hint[200], name[NAME_MAX_LEN], model_name[NAME_MAX_LEN], file_name[NAME_MAX_LEN];
    if (!detect_prefix(&src, bert_prefixes, 3, "embeddings.word_embeddings.weight")) {
        errf(err, errlen,
             "%s: no BERT word embeddings 'embeddings.word_embeddings.weight' (also looked under "
             "the prefixes bert. and 0.auto_model.): not a Hugging Face BERT-family model",
             path);
        goto done;
    }
    bert_config_from_meta(&bc, &src.f);
    if (!bc.from && bert_config_from_json(&bc, path, err, errlen)) goto done;
    if (bert_config_check(&bc, s, path, err, errlen)) goto done;
    int depth = count_layers(&src, "encoder.layer.");
    if (depth != s->txt_depth) {
        errf(err, errlen, "%s: the BERT has %d layers but model.txt_depth = %d", path, depth,
             s->txt_depth);
        goto done;
    }
    snprintf(hint, sizeof(hint),
             "model.vocab=%d, model.txt_dim=%d: set them to the file's vocab_size and "
             "hidden_size",
             s->vocab, s->txt_dim);
    if (load_tensor(m, &src, "txt.word_embeddings", "embeddings.word_embeddings.weight", hint, err,
                    errlen))
        goto done;
    snprintf(hint, sizeof(hint), "model.txt_dim=%d, intermediate size 4×", s->txt_dim);
    if (load_bert_tables(m, &src, hint, err, errlen) ||
        load_layernorm(m, &src, "txt.emb_norm", "embeddings.LayerNorm", hint, err, errlen))
        goto done;
    for (int l = 0; l < depth; l++) {
        static const char *const map[4][2] = {
            {"attn.proj", "attention.output.dense"},
            {"mlp.fc1", "intermediate.dense"},
            {"mlp.fc2", "output.dense"},
            {NULL, NULL},
        };
        if (load_qkv(m, &src, l, hint, err, errlen)) goto done;
        for (int k = 0; map[k][0]; k++)
            for (int wb = 0; wb < 2; wb++) {
                const char *suffix = wb ? "bias" : "weight";
                snprintf(model_name, sizeof(model_name), "txt.blocks.%d.%s.%s", l, map[k][0],
                         suffix);
                snprintf(file_name, sizeof(file_name), "encoder.layer.%d.%s.%s", l, map[k][1],
                         suffix);
                if (load_tensor(m, &src, model_name, file_name, hint, err, errlen)) goto done;
            }
        snprintf(model_name, sizeof(model_name), "txt.blocks.%d.norm1", l);
        snprintf(name, sizeof(name), "encoder.layer.%d.attention.output.LayerNorm", l);
        if (load_layernorm(m, &src, model_name, name, hint, err, errlen)) goto done;
        snprintf(model_name, sizeof(model_name), "txt.blocks.%d.norm2", l);
        snprintf(name, sizeof(name), "encoder.layer.%d.output.LayerNorm", l);
        if (load_layernorm(m, &src, model_name, name, hint, err, errlen)) goto done;
    }
    note_add(note, notelen, "BERT from %s (prefix '%s', %d layers, width %d, vocab %d", path,
             src.prefix, depth, s->txt_dim, s->vocab);
    if (bc.from)
        note_add(note, notelen, ", %d heads checked against %s)", bc.heads, bc.from);
    else
        note_add(note, notelen, "; no metadata or config.json: model.txt_heads = %d unchecked)",
                 s->txt_heads);
    note_unused(&src, note, notelen);
    rc = 0;
done:
    source_close(&src);
    return rc;
}

int pretrained_apply(Model *m, const RunSettings *rs, FILE *log, char *err, size_t errlen) {
    char note[1024], inner[CKPT_ERR_LEN];
    if (rs->image_weights[0]) {
        if (pretrained_load_image(m, rs->image_weights, note, sizeof(note), inner, sizeof(inner))) {
            errf(err, errlen, "model.image_weights: %s", inner);
            return -1;
        }
        if (log) fprintf(log, "model.image_weights: %s\n", note);
    }
    if (rs->text_weights[0]) {
        if (pretrained_load_text(m, rs->text_weights, note, sizeof(note), inner, sizeof(inner))) {
            errf(err, errlen, "model.text_weights: %s", inner);
            return -1;
        }
        if (log) fprintf(log, "model.text_weights: %s\n", note);
    }
    return 0;
}
