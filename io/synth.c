// The embedded synthetic dataset: coloured shapes on a 3×3 layout with captions that describe
// them. Every sample follows from (seed, split, index) alone, so shards are bit-identical for the
// same arguments and any sample can be regenerated on its own.
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io.h"
#include "rng_internal.h"

const char *const SYNTH_SHAPE_NAMES[SYNTH_SHAPES] = {"circle",  "square", "triangle",
                                                     "diamond", "cross",  "star"};
const char *const SYNTH_COLOUR_NAMES[SYNTH_COLOURS] = {"red",    "green",  "blue",  "yellow",
                                                       "purple", "orange", "white", "black"};
const uint8_t SYNTH_COLOUR_RGB[SYNTH_COLOURS][3] = {
    {220, 40, 40},  {40, 170, 60},  {40, 80, 220},   {240, 215, 40},
    {145, 60, 200}, {250, 135, 30}, {245, 245, 245}, {20, 20, 20},
};
enum { SHAPE_CIRCLE, SHAPE_SQUARE, SHAPE_TRIANGLE, SHAPE_DIAMOND, SHAPE_CROSS, SHAPE_STAR };

// ---- deterministic randomness ----

static uint32_t rnd(IoRng *r, uint32_t n) { // uniform enough for n ≪ 2^32
    return (uint32_t)((io_rng_next(r) >> 32) * (uint64_t)n >> 32);
}

static IoRng sample_rng(uint64_t seed, int split, int64_t index) {
    IoRng r = {io_mix64(seed ^ 0x5EEDC0FFEE123457ULL)};
    r.s = io_mix64(r.s ^ ((uint64_t)split * 0xD1B54A32D192ED03ULL));
    r.s = io_mix64(r.s ^ ((uint64_t)index * 0x8CB92BA72F3D8DD7ULL));
    return r;
}

// ---- captions ----

static const char *const POSITION[3][3] = {
    {"top left", "top", "top right"},
    {"left", "center", "right"},
    {"bottom left", "bottom", "bottom right"},
};

typedef struct {
    char *p;
    size_t left;
} Out;

static void put(Out *o, const char *s) {
    size_t n = strlen(s);
    if (n >= o->left) n = o->left ? o->left - 1 : 0;
    memcpy(o->p, s, n);
    o->p += n, o->left -= n;
    if (o->left) *o->p = 0;
}

// "a small red circle" / "an orange square" / "a large green triangle"
static void put_object(Out *o, IoRng *r, const SynthObject *ob) {
    static const char *const LARGE[] = {"large", "big"}, *const SMALL[] = {"small", "little"};
    const char *size = NULL;
    if (rnd(r, 2)) size = ob->large ? LARGE[rnd(r, 2)] : SMALL[rnd(r, 2)];
    const char *first = size ? size : SYNTH_COLOUR_NAMES[ob->colour];
    put(o, strchr("aeiou", first[0]) ? "an " : "a ");
    if (size) put(o, size), put(o, " ");
    put(o, SYNTH_COLOUR_NAMES[ob->colour]);
    put(o, " ");
    put(o, SYNTH_SHAPE_NAMES[ob->shape]);
}

// "in the top left" / "at the top" / "in the bottom right corner"
static void put_position(Out *o, IoRng *r, const SynthObject *ob) {
    const char *name = POSITION[ob->row][ob->col];
    int corner = ob->row != 1 && ob->col != 1;
    if (ob->row == 1 && ob->col == 1) {
        put(o, rnd(r, 2) ? "in the center" : "in the middle");
    } else if (ob->row == 1) {
        put(o, "on the "), put(o, name);
    } else if (ob->col == 1) {
        put(o, "at the "), put(o, name);
    } else {
        put(o, "in the "), put(o, name);
        if (corner && rnd(r, 2)) put(o, " corner");
    }
}

// The relation of a to b: "above", "to the left of", ...
static void put_relation(Out *o, IoRng *r, const SynthObject *a, const SynthObject *b) {
    static const char *const ABOVE[] = {"above", "over"}, *const BELOW[] = {"below", "under"};
    static const char *const LEFT[] = {"to the left of", "left of"};
    static const char *const RIGHT[] = {"to the right of", "right of"};
    int vertical = a->row != b->row && (a->col == b->col || rnd(r, 2));
    if (vertical)
        put(o, a->row < b->row ? ABOVE[rnd(r, 2)] : BELOW[rnd(r, 2)]);
    else
        put(o, a->col < b->col ? LEFT[rnd(r, 2)] : RIGHT[rnd(r, 2)]);
}

static void make_caption(SynthSample *s, IoRng *r) {
    Out o = {s->caption, sizeof(s->caption)};
    s->caption[0] = 0;
    const SynthObject *A = &s->objects[0], *B = &s->objects[1], *C = &s->objects[2];
    if (s->n_objects == 1) {
        switch (rnd(r, 4)) {
        case 0:
            put_object(&o, r, A), put(&o, " "), put_position(&o, r, A);
            break;
        case 1:
            put(&o, "there is "), put_object(&o, r, A), put(&o, " "), put_position(&o, r, A);
            break;
        case 2:
            put_position(&o, r, A), put(&o, " there is "), put_object(&o, r, A);
            break;
        default:
            put(&o, "a picture of "), put_object(&o, r, A);
            break;
        }
    } else if (s->n_objects == 2) {
        switch (rnd(r, 4)) {
        case 0:
            put_object(&o, r, A), put(&o, " "), put_relation(&o, r, A, B), put(&o, " "),
                put_object(&o, r, B);
            break;
        case 1:
            put(&o, "there is "), put_object(&o, r, B), put(&o, " "), put_relation(&o, r, B, A),
                put(&o, " "), put_object(&o, r, A);
            break;
        case 2:
            put_object(&o, r, A), put(&o, " "), put_position(&o, r, A), put(&o, " and "),
                put_object(&o, r, B), put(&o, " "), put_position(&o, r, B);
            break;
        default:
            put_object(&o, r, A), put(&o, " and "), put_object(&o, r, B);
            break;
        }
    } else {
        switch (rnd(r, 3)) {
        case 0:
            put_object(&o, r, A), put(&o, " "), put_relation(&o, r, A, B), put(&o, " "),
                put_object(&o, r, B), put(&o, ", and "), put_object(&o, r, C), put(&o, " "),
                put_position(&o, r, C);
            break;
        case 1:
            put(&o, "three shapes: "), put_object(&o, r, A), put(&o, ", "), put_object(&o, r, B),
                put(&o, " and "), put_object(&o, r, C);
            break;
        default:
            put_object(&o, r, A), put(&o, " "), put_position(&o, r, A), put(&o, ", "),
                put_object(&o, r, B), put(&o, " "), put_position(&o, r, B), put(&o, " and "),
                put_object(&o, r, C), put(&o, " "), put_position(&o, r, C);
            break;
        }
    }
}

void synth_sample(SynthSample *s, uint64_t seed, int split, int64_t index) {
    memset(s, 0, sizeof(*s));
    IoRng r = sample_rng(seed, split, index);
    s->n_objects = 1 + (int)rnd(&r, SYNTH_MAX_OBJECTS);
    int cells[9];
    for (int i = 0; i < 9; i++)
        cells[i] = i;
    for (int i = 0; i < s->n_objects; i++) { // distinct cells: partial Fisher-Yates
        int j = i + (int)rnd(&r, (uint32_t)(9 - i));
        int t = cells[i];
        cells[i] = cells[j], cells[j] = t;
        SynthObject *ob = &s->objects[i];
        ob->row = cells[i] / 3, ob->col = cells[i] % 3;
        ob->shape = (int)rnd(&r, SYNTH_SHAPES);
        ob->colour = (int)rnd(&r, SYNTH_COLOURS);
        ob->large = (int)rnd(&r, 2);
    }
    int largest = 0; // the first large object, or the first object when all are small
    for (int i = 0; i < s->n_objects; i++)
        if (s->objects[i].large) {
            largest = i;
            break;
        }
    s->label = s->objects[largest].colour;
    make_caption(s, &r);
    snprintf(s->key, sizeof(s->key), "%s-%07lld", split ? "val" : "train", (long long)index);
}

// ---- drawing ----

// Inside test in units of the object's radius (u right, v down).
static int inside(int shape, float u, float v) {
    float au = fabsf(u), av = fabsf(v);
    switch (shape) {
    case SHAPE_CIRCLE:
        return u * u + v * v <= 1.0f;
    case SHAPE_SQUARE:
        return au <= 0.82f && av <= 0.82f;
    case SHAPE_TRIANGLE:
        return v <= 0.8f && v >= -0.95f && au <= 0.55f * (v + 0.95f);
    case SHAPE_DIAMOND:
        return au + av <= 1.0f;
    case SHAPE_CROSS:
        return (au <= 0.3f && av <= 0.95f) || (av <= 0.3f && au <= 0.95f);
    default: { // five-pointed star: point in polygon (even-odd) over its 10 vertices
        // vertices at −90° + k·36°, radius 1 (outer) or 0.42 (inner)
        static const float px[10] = {0.000000f, 0.246870f,  0.951057f,  0.399444f,  0.587785f,
                                     0.000000f, -0.587785f, -0.399444f, -0.951057f, -0.246870f};
        static const float py[10] = {-1.000000f, -0.339787f, -0.309017f, 0.129787f,  0.809017f,
                                     0.420000f,  0.809017f,  0.129787f,  -0.309017f, -0.339787f};
        int in = 0;
        for (int i = 0, j = 9; i < 10; j = i++)
            if ((py[i] > v) != (py[j] > v) &&
                u < (px[j] - px[i]) * (v - py[i]) / (py[j] - py[i]) + px[i])
                in = !in;
        return in;
    }
    }
}

void synth_style_default(SynthStyle *st, int size) {
    memset(st, 0, sizeof(*st));
    st->size = size;
    st->antialias = 1;
}

// FNV-1a of text, continuing from h.
static uint64_t fnv1a(uint64_t h, const char *text) {
    for (const char *c = text; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    return h;
}

// Adds i.i.d. uniform noise in [-amp, amp] to every byte, keyed by the sample's key and caption.
static void add_noise(uint8_t *rgb, const SynthSample *s, int size, int amp) {
    IoRng r = {io_mix64(fnv1a(fnv1a(0x6E015E5EEDULL, s->key), s->caption))};
    for (size_t i = 0; i < (size_t)size * size * 3; i++) {
        int v = rgb[i] + (int)rnd(&r, (uint32_t)(2 * amp + 1)) - amp;
        rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

void synth_draw(uint8_t *rgb, const SynthSample *s, const SynthStyle *st) {
    // Background: a mid grey that varies a little with the caption (deterministic), or a fixed
    // one: that shade is an image-wide feature which says nothing about the caption.
    uint64_t h = fnv1a(1469598103934665603ULL, s->caption);
    const int size = st->size;
    int bg = st->flat_background ? 120 : 100 + (int)(h % 40);
    const int ss = st->antialias ? 4 : 1;
    const float cell = size / 3.0f;
    float cx[SYNTH_MAX_OBJECTS], cy[SYNTH_MAX_OBJECTS], radius[SYNTH_MAX_OBJECTS];
    for (int i = 0; i < s->n_objects; i++) {
        const SynthObject *ob = &s->objects[i];
        radius[i] = cell * (ob->large ? 0.46f : 0.28f);
        cx[i] = (ob->col + 0.5f) * cell, cy[i] = (ob->row + 0.5f) * cell;
    }
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            // Only objects whose bounding box meets this pixel can cover part of it.
            int near[SYNTH_MAX_OBJECTS], n_near = 0;
            for (int i = 0; i < s->n_objects; i++)
                if (x + 1 >= cx[i] - radius[i] && x <= cx[i] + radius[i] &&
                    y + 1 >= cy[i] - radius[i] && y <= cy[i] + radius[i])
                    near[n_near++] = i;
            uint8_t *px = rgb + ((size_t)y * size + x) * 3;
            if (n_near == 0) {
                px[0] = px[1] = px[2] = (uint8_t)bg;
                continue;
            }
            float acc[3] = {0, 0, 0};
            for (int sy = 0; sy < ss; sy++)
                for (int sx = 0; sx < ss; sx++) {
                    float fx = x + (sx + 0.5f) / ss, fy = y + (sy + 0.5f) / ss;
                    int col = -1;
                    for (int k = 0; k < n_near; k++) {
                        int i = near[k];
                        if (inside(s->objects[i].shape, (fx - cx[i]) / radius[i],
                                   (fy - cy[i]) / radius[i]))
                            col = s->objects[i].colour;
                    }
                    for (int c = 0; c < 3; c++)
                        acc[c] += col < 0 ? bg : SYNTH_COLOUR_RGB[col][c];
                }
            for (int c = 0; c < 3; c++)
                px[c] = (uint8_t)(acc[c] / (ss * ss) + 0.5f);
        }
    if (st->noise > 0) add_noise(rgb, s, size, st->noise);
}

char *synth_json(const SynthSample *s) {
    cJSON *root = cJSON_CreateObject(), *objs = cJSON_AddArrayToObject(root, "objects");
    for (int i = 0; i < s->n_objects; i++) {
        const SynthObject *ob = &s->objects[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "shape", SYNTH_SHAPE_NAMES[ob->shape]);
        cJSON_AddStringToObject(o, "colour", SYNTH_COLOUR_NAMES[ob->colour]);
        cJSON_AddStringToObject(o, "size", ob->large ? "large" : "small");
        cJSON_AddNumberToObject(o, "row", ob->row);
        cJSON_AddNumberToObject(o, "col", ob->col);
        cJSON_AddItemToArray(objs, o);
    }
    cJSON_AddNumberToObject(root, "label", s->label);
    cJSON_AddStringToObject(root, "label_name", SYNTH_COLOUR_NAMES[s->label]);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

// ---- writing the dataset ----

void synth_options_default(SynthOptions *o) {
    memset(o, 0, sizeof(*o));
    o->n_train = 10000;
    o->n_val = 1000;
    o->per_shard = 1000;
    o->image_size = 32;
    o->antialias = 1;
    o->vocab_size = 1000;
}

static int errorf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int make_dir(const char *path, char *err, size_t errlen) {
    char *p = strdup(path);
    if (!p) return errorf(err, errlen, "out of memory");
    for (char *c = p + 1;; c++) { // mkdir -p
        if (*c != '/' && *c) continue;
        char keep = *c;
        *c = 0;
        if (mkdir(p, 0755) && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory '%s': %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *c = keep;
        if (!keep) break;
    }
    free(p);
    return 0;
}

static int write_split(const SynthOptions *o, int split, int64_t n, VocabBuilder *vb, char *err,
                       size_t errlen) {
    if (n <= 0) return 0;
    const char *name = split ? "val" : "train";
    size_t plen = strlen(o->out_dir) + 32;
    char *pattern = malloc(plen);
    uint8_t *rgb = malloc((size_t)o->image_size * o->image_size * 3);
    if (!pattern || !rgb) {
        free(pattern), free(rgb);
        return errorf(err, errlen, "out of memory");
    }
    snprintf(pattern, plen, "%s/%s-%%06d.tar", o->out_dir, name);
    ShardWriter *w = shard_writer_open(pattern, o->per_shard, err, errlen);
    int rc = w ? 0 : -1;
    SynthStyle style = {o->image_size, o->antialias, o->flat_background, o->noise};
    for (int64_t i = 0; i < n && !rc; i++) {
        SynthSample s;
        synth_sample(&s, o->seed, split, i);
        synth_draw(rgb, &s, &style);
        uint8_t *png = NULL;
        size_t png_len = 0;
        char *json = NULL;
        if (png_encode(&png, &png_len, rgb, o->image_size, o->image_size, err, errlen)) {
            rc = -1;
        } else if (!(json = synth_json(&s))) {
            rc = errorf(err, errlen, "out of memory");
        } else {
            TarSampleOut out = {.key = s.key,
                                .image = png,
                                .image_len = png_len,
                                .image_ext = "png",
                                .caption = s.caption,
                                .has_label = 1,
                                .label = s.label,
                                .json = json};
            rc = shard_writer_add(w, &out, err, errlen);
            vocab_builder_add(vb, s.caption);
        }
        free(png);
        cJSON_free(json);
    }
    int shards = 0;
    char cerr[512];
    if (shard_writer_close(w, &shards, cerr, sizeof(cerr)) && !rc) {
        snprintf(err, errlen, "%s", cerr);
        rc = -1;
    }
    if (!rc && o->log)
        fprintf(o->log, "synth: %lld %s samples in %d shards (%s/%s-*.tar)\n", (long long)n, name,
                shards, o->out_dir, name);
    free(pattern);
    free(rgb);
    return rc;
}

int synth_write(const SynthOptions *o, char *err, size_t errlen) {
    if (!o->out_dir || !o->out_dir[0]) return errorf(err, errlen, "synth: no output folder");
    if (o->image_size < 3 || o->image_size > 4096)
        return errorf(err, errlen, "synth: image size %d outside [3, 4096]", o->image_size);
    if (o->noise < 0 || o->noise > 127)
        return errorf(err, errlen, "synth: noise amplitude %d outside [0, 127]", o->noise);
    if (o->n_train < 0 || o->n_val < 0 || o->per_shard < 1)
        return errorf(err, errlen, "synth: sample counts must be ≥ 0 and per-shard ≥ 1");
    if (make_dir(o->out_dir, err, errlen)) return -1;
    VocabBuilder *vb = vocab_builder_new();
    if (!vb) return errorf(err, errlen, "out of memory");
    int rc = write_split(o, 0, o->n_train, vb, err, errlen);
    if (!rc) rc = write_split(o, 1, o->n_val, vb, err, errlen);
    if (!rc) {
        size_t n = strlen(o->out_dir) + 16;
        char *path = malloc(n);
        if (!path) {
            rc = errorf(err, errlen, "out of memory");
        } else {
            snprintf(path, n, "%s/vocab.txt", o->out_dir);
            rc = vocab_builder_write(vb, path, o->vocab_size, err, errlen);
            if (!rc && o->log) fprintf(o->log, "synth: vocabulary in %s\n", path);
            free(path);
        }
    }
    vocab_builder_free(vb);
    return rc;
}
