// Importers for `tijepa shard --from`: a folder of images with same-named captions, a captions
// TSV, COCO captions JSON, and MVSA-Single / MVSA-Multiple. Image bytes are stored unchanged
// (after a header check), so shards hold exactly the user's files.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

#define WARN_LINES 20 // warning lines per import; the rest are counted

typedef struct {
    const ImportOptions *o;
    ImportResult *res;
    ShardWriter *w;
    int warned;
    char err[1024];
} Importer;

static int errorf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

// A skipped item: counted, and warned about while under the line limit.
static void skip(Importer *im, const char *fmt, ...) {
    im->res->skipped++;
    FILE *f = im->o->log ? im->o->log : stderr;
    if (im->warned > WARN_LINES) return;
    if (im->warned++ == WARN_LINES) {
        fprintf(f, "tijepa shard: further skipped items are counted, not shown\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "tijepa shard: skipping ");
    vfprintf(f, fmt, ap);
    fprintf(f, "\n");
    va_end(ap);
}

static char *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) break;
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        char *p = realloc(buf, 2 * cap + 1);
        if (!p) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = p, cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    if (buf) buf[len] = 0;
    *n = len;
    return buf;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) return NULL;
    if (name[0] == '/' || !dir[0])
        snprintf(p, n, "%s", name);
    else
        snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

// Folder part of a path ("." when none), malloc'd.
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 2);
    if (!d) return NULL;
    memcpy(d, path, n ? n : 1);
    d[n ? n : 1] = 0;
    return d;
}

// Trims white space at both ends in place; returns the start.
static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

// Latin-1 → UTF-8 (every byte is a code point below 256), malloc'd.
static char *latin1_to_utf8(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            *p++ = (char)c;
        } else {
            *p++ = (char)(0xC0 | (c >> 6));
            *p++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *p = 0;
    return out;
}

// Keys may not hold dots (the first dot ends a key) or slashes.
static void make_key(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s", name);
    for (char *c = out; *c; c++)
        if (*c == '.' || *c == '/' || isspace((unsigned char)*c)) *c = '_';
}

// Reads an image file and checks its header. NULL (item skipped) on any problem.
static uint8_t *load_image(Importer *im, const char *path, size_t *n, const char **ext) {
    size_t len = 0;
    char *data = read_whole(path, &len);
    if (!data) {
        skip(im, "%s: cannot read the image (%s)", path, strerror(errno));
        return NULL;
    }
    int w, h;
    SampleProblem p = image_probe_header((const uint8_t *)data, len, &w, &h);
    if (p == SAMPLE_OK && (double)w * h > (double)im->o->max_pixels) p = SAMPLE_TOO_LARGE;
    if (p != SAMPLE_OK) {
        skip(im, "%s: %s", path, sample_problem_name(p));
        free(data);
        return NULL;
    }
    *ext = data[0] == (char)0x89 ? "png" : "jpg";
    *n = len;
    return (uint8_t *)data;
}

// Writes one sample; caption is checked (UTF-8, not empty) here.
static int emit(Importer *im, const char *key, const uint8_t *img, size_t img_len, const char *ext,
                const char *caption, int label, const char *json) {
    if (!utf8_valid(caption, strlen(caption))) {
        skip(im, "'%s': caption is not valid UTF-8", key);
        return 0;
    }
    if (!caption[0]) {
        skip(im, "'%s': empty caption", key);
        return 0;
    }
    TarSampleOut s = {.key = key,
                      .image = img,
                      .image_len = img_len,
                      .image_ext = ext,
                      .caption = caption,
                      .has_label = label >= 0,
                      .label = label,
                      .json = json};
    if (shard_writer_add(im->w, &s, im->err, sizeof(im->err))) return -1;
    im->res->written++;
    return 0;
}

static int parse_label_text(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end || v < 0 || v > 0x7fffffffL) return -1;
    *out = (int)v;
    return 0;
}

// ---- (a) folder of images with same-named .txt captions ----

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static int import_dir(Importer *im) {
    const char *dir = im->o->from;
    DIR *d = opendir(dir);
    if (!d) return errorf(im->err, sizeof(im->err), "cannot read folder '%s'", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with_ci(e->d_name, ".png") && !ends_with_ci(e->d_name, ".jpg") &&
            !ends_with_ci(e->d_name, ".jpeg"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(names, cap * sizeof(*p));
            if (!p) break;
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof(char *), cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *stem = strdup(names[i]);
        *strrchr(stem, '.') = 0;
        size_t sl = strlen(stem) + 8;
        char *txt_name = malloc(sl), *cls_name = malloc(sl);
        snprintf(txt_name, sl, "%s.txt", stem);
        snprintf(cls_name, sl, "%s.cls", stem);
        char *img_path = join_path(dir, names[i]), *txt_path = join_path(dir, txt_name);
        char *cls_path = join_path(dir, cls_name);
        size_t len, img_len;
        char *caption = read_whole(txt_path, &len), *cls = NULL;
        int label = -1;
        char key[512];
        make_key(key, sizeof(key), stem);
        if (!caption) {
            skip(im, "%s: no caption file %s", img_path, txt_path);
        } else if ((cls = read_whole(cls_path, &len)) && parse_label_text(cls, &label)) {
            skip(im, "%s: label is not an integer", cls_path);
        } else {
            const char *ext;
            uint8_t *img = load_image(im, img_path, &img_len, &ext);
            if (img) {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "source", names[i]);
                char *json = cJSON_PrintUnformatted(j);
                rc = emit(im, key, img, img_len, ext, trim(caption), label, json);
                cJSON_free(json);
                cJSON_Delete(j);
                free(img);
            }
        }
        free(caption), free(cls), free(stem), free(txt_name), free(cls_name);
        free(img_path), free(txt_path), free(cls_path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

// ---- (b) captions.tsv: path<TAB>caption[<TAB>label] ----

static int import_tsv(Importer *im) {
    const char *path = im->o->from;
    FILE *f = fopen(path, "r");
    if (!f) return errorf(im->err, sizeof(im->err), "cannot read '%s': %s", path, strerror(errno));
    char *dir = dir_of(path), *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n) continue;
        char *tab1 = strchr(line, '\t');
        if (!tab1) {
            skip(im, "%s:%ld: expected path<TAB>caption[<TAB>label]", path, lineno);
            continue;
        }
        *tab1 = 0;
        char *caption = tab1 + 1, *tab2 = strchr(caption, '\t'), *label_text = NULL;
        if (tab2) *tab2 = 0, label_text = tab2 + 1;
        if (lineno == 1 && (!strcasecmp(trim(line), "path") || !strcasecmp(line, "image") ||
                            !strcasecmp(line, "filepath")))
            continue; // a header row
        int label = -1;
        if (label_text && *trim(label_text) && parse_label_text(label_text, &label)) {
            skip(im, "%s:%ld: label '%s' is not an integer", path, lineno, label_text);
            continue;
        }
        char *img_path = join_path(dir, trim(line));
        size_t img_len;
        const char *ext;
        uint8_t *img = load_image(im, img_path, &img_len, &ext);
        if (img) {
            char key[32];
            snprintf(key, sizeof(key), "%08ld", lineno);
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "source", line);
            char *json = cJSON_PrintUnformatted(j);
            rc = emit(im, key, img, img_len, ext, trim(caption), label, json);
            cJSON_free(json);
            cJSON_Delete(j);
            free(img);
        }
        free(img_path);
    }
    free(line);
    free(dir);
    fclose(f);
    return rc;
}

// ---- (c) COCO captions_*.json ----

typedef struct {
    double id;
    const char *file;
} CocoImage;

static int cmp_coco(const void *a, const void *b) {
    double x = ((const CocoImage *)a)->id, y = ((const CocoImage *)b)->id;
    return (x > y) - (x < y);
}

static int import_coco(Importer *im) {
    const char *path = im->o->from;
    size_t len;
    char *text = read_whole(path, &len);
    if (!text) return errorf(im->err, sizeof(im->err), "cannot read '%s'", path);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *images = root ? cJSON_GetObjectItemCaseSensitive(root, "images") : NULL;
    cJSON *anns = root ? cJSON_GetObjectItemCaseSensitive(root, "annotations") : NULL;
    if (!cJSON_IsArray(images) || !cJSON_IsArray(anns)) {
        cJSON_Delete(root);
        return errorf(im->err, sizeof(im->err),
                      "%s: not a COCO captions file (needs \"images\" and \"annotations\" arrays)",
                      path);
    }
    int n_img = cJSON_GetArraySize(images), k = 0;
    CocoImage *table = calloc((size_t)n_img + 1, sizeof(*table));
    cJSON *it;
    cJSON_ArrayForEach(it, images) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        cJSON *file = cJSON_GetObjectItemCaseSensitive(it, "file_name");
        if (cJSON_IsNumber(id) && cJSON_IsString(file))
            table[k++] = (CocoImage){id->valuedouble, file->valuestring};
    }
    qsort(table, (size_t)k, sizeof(*table), cmp_coco);
    char *dir = im->o->images_dir ? strdup(im->o->images_dir) : dir_of(path);
    int rc = 0;
    cJSON_ArrayForEach(it, anns) {
        if (rc) break;
        cJSON *iid = cJSON_GetObjectItemCaseSensitive(it, "image_id");
        cJSON *aid = cJSON_GetObjectItemCaseSensitive(it, "id");
        cJSON *cap = cJSON_GetObjectItemCaseSensitive(it, "caption");
        if (!cJSON_IsNumber(iid) || !cJSON_IsString(cap)) {
            skip(im, "%s: an annotation without image_id or caption", path);
            continue;
        }
        CocoImage want = {iid->valuedouble, NULL};
        CocoImage *hit = bsearch(&want, table, (size_t)k, sizeof(*table), cmp_coco);
        if (!hit) {
            skip(im, "%s: annotation of unknown image id %.0f", path, iid->valuedouble);
            continue;
        }
        char key[64];
        snprintf(key, sizeof(key), "%.0f_%.0f", iid->valuedouble,
                 cJSON_IsNumber(aid) ? aid->valuedouble : -1.0);
        char *img_path = join_path(dir, hit->file);
        size_t img_len;
        const char *ext;
        uint8_t *img = load_image(im, img_path, &img_len, &ext);
        if (img) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "image_id", iid->valuedouble);
            if (cJSON_IsNumber(aid)) cJSON_AddNumberToObject(j, "id", aid->valuedouble);
            cJSON_AddStringToObject(j, "file_name", hit->file);
            char *json = cJSON_PrintUnformatted(j);
            char *caption = strdup(cap->valuestring);
            rc = emit(im, key, img, img_len, ext, trim(caption), -1, json);
            free(caption);
            cJSON_free(json);
            cJSON_Delete(j);
            free(img);
        }
        free(img_path);
    }
    free(dir);
    free(table);
    cJSON_Delete(root);
    return rc;
}

// ---- (d) MVSA-Single / MVSA-Multiple ----

int mvsa_class(const char *word) {
    char w[32];
    size_t n = 0;
    while (*word && isspace((unsigned char)*word))
        word++;
    while (word[n] && !isspace((unsigned char)word[n]) && n < sizeof(w) - 1) {
        w[n] = (char)tolower((unsigned char)word[n]);
        n++;
    }
    w[n] = 0;
    if (!strcmp(w, "negative")) return 0;
    if (!strcmp(w, "neutral")) return 1;
    if (!strcmp(w, "positive")) return 2;
    return -1;
}

int mvsa_resolve(int text_class, int image_class) {
    if (text_class < 0 || image_class < 0) return -1;
    if (text_class == image_class) return text_class;
    if (text_class == 1) return image_class; // one neutral: the other decides
    if (image_class == 1) return text_class;
    return -1; // positive vs negative: contradictory, dropped
}

int mvsa_majority(int a, int b, int c) {
    if (a >= 0 && (a == b || a == c)) return a;
    if (b >= 0 && b == c) return b;
    return -1;
}

// "positive,neutral" → text and image classes.
static int mvsa_pair(char *field, int *text, int *image) {
    char *comma = strchr(field, ',');
    if (!comma) return -1;
    *comma = 0;
    *text = mvsa_class(field);
    *image = mvsa_class(comma + 1);
    return *text < 0 || *image < 0 ? -1 : 0;
}

static int import_mvsa(Importer *im) {
    const char *root = im->o->from;
    char *label_path = join_path(root, "labelResultAll.txt"), *data = join_path(root, "data");
    FILE *f = fopen(label_path, "r");
    int rc = 0;
    if (!f) {
        rc = errorf(im->err, sizeof(im->err), "cannot read '%s'", label_path);
        free(label_path), free(data);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    const char *names[3] = {"negative", "neutral", "positive"};
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *fields[5];
        int nf = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, "\t\r\n", &save); t && nf < 5;
             t = strtok_r(NULL, "\t\r\n", &save))
            fields[nf++] = trim(t);
        if (nf == 0) continue;
        if (lineno == 1 && !strcasecmp(fields[0], "ID")) continue; // header
        if (nf != 2 && nf != 4) {
            skip(im, "%s:%ld: expected ID and 1 or 3 text,image label pairs", label_path, lineno);
            continue;
        }
        int t[3], i[3], bad = 0;
        for (int a = 0; a < nf - 1; a++)
            bad |= mvsa_pair(fields[1 + a], &t[a], &i[a]);
        if (bad) {
            skip(im, "%s:%ld: unknown label word", label_path, lineno);
            continue;
        }
        int text_class = t[0], image_class = i[0];
        if (nf == 4) { // MVSA-Multiple: majority vote of the three annotators per modality
            text_class = mvsa_majority(t[0], t[1], t[2]);
            image_class = mvsa_majority(i[0], i[1], i[2]);
            if (text_class < 0 || image_class < 0) {
                im->res->mvsa_no_majority++;
                skip(im, "post %s: annotators have no majority", fields[0]);
                continue;
            }
        }
        int label = mvsa_resolve(text_class, image_class);
        if (label < 0) {
            im->res->mvsa_conflicts++;
            skip(im, "post %s: text %s vs image %s", fields[0], names[text_class],
                 names[image_class]);
            continue;
        }
        char key[256], name[300];
        make_key(key, sizeof(key), fields[0]);
        snprintf(name, sizeof(name), "%s.txt", fields[0]);
        char *txt_path = join_path(data, name);
        size_t len, img_len;
        char *text = read_whole(txt_path, &len);
        snprintf(name, sizeof(name), "%s.jpg", fields[0]);
        char *img_path = join_path(data, name);
        if (!text) {
            skip(im, "post %s: no text file %s", fields[0], txt_path);
        } else {
            if (strlen(text) != len || !utf8_valid(text, len)) { // old posts: Latin-1 bytes
                for (size_t k = 0; k < len; k++)
                    if (!text[k]) text[k] = ' ';
                char *u = latin1_to_utf8(text);
                free(text);
                text = u;
            }
            const char *ext;
            uint8_t *img = text ? load_image(im, img_path, &img_len, &ext) : NULL;
            if (img) {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "dataset", nf == 4 ? "MVSA-Multiple" : "MVSA-Single");
                cJSON_AddStringToObject(j, "text_label", names[text_class]);
                cJSON_AddStringToObject(j, "image_label", names[image_class]);
                cJSON_AddStringToObject(j, "label_name", names[label]);
                char *json = cJSON_PrintUnformatted(j);
                int64_t before = im->res->written;
                rc = emit(im, key, img, img_len, ext, trim(text), label, json);
                if (im->res->written > before) im->res->labels[label]++;
                cJSON_free(json);
                cJSON_Delete(j);
                free(img);
            }
        }
        free(text), free(txt_path), free(img_path);
    }
    free(line);
    fclose(f);
    free(label_path), free(data);
    return rc;
}

// ---- entry ----

void import_options_default(ImportOptions *o) {
    memset(o, 0, sizeof(*o));
    o->per_shard = 1000;
    o->max_pixels = (size_t)1 << 26;
}

static ImportKind detect(const char *from) {
    struct stat st;
    if (stat(from, &st)) return IMPORT_AUTO;
    if (S_ISDIR(st.st_mode)) {
        char *p = join_path(from, "labelResultAll.txt");
        int mvsa = p && !access(p, R_OK);
        free(p);
        return mvsa ? IMPORT_MVSA : IMPORT_DIR;
    }
    if (ends_with_ci(from, ".tsv")) return IMPORT_TSV;
    if (ends_with_ci(from, ".json")) return IMPORT_COCO;
    return IMPORT_AUTO;
}

int import_shards(const ImportOptions *o, ImportResult *res, char *err, size_t errlen) {
    memset(res, 0, sizeof(*res));
    if (!o->from || !o->out_pattern)
        return errorf(err, errlen, "import: --from and --out are required");
    ImportKind kind = o->kind != IMPORT_AUTO ? o->kind : detect(o->from);
    if (kind == IMPORT_AUTO)
        return errorf(err, errlen,
                      "'%s' is not a folder, a .tsv or a COCO .json file (or does not exist)",
                      o->from);
    Importer im = {.o = o, .res = res};
    if (!(im.w = shard_writer_open(o->out_pattern, o->per_shard, err, errlen))) return -1;
    int rc;
    switch (kind) {
    case IMPORT_DIR:
        rc = import_dir(&im);
        break;
    case IMPORT_TSV:
        rc = import_tsv(&im);
        break;
    case IMPORT_COCO:
        rc = import_coco(&im);
        break;
    default:
        rc = import_mvsa(&im);
        break;
    }
    int shards = 0;
    char cerr[512];
    if (shard_writer_close(im.w, &shards, cerr, sizeof(cerr)) && !rc)
        rc = errorf(im.err, sizeof(im.err), "%s", cerr);
    res->shards = shards;
    if (rc) return errorf(err, errlen, "%s", im.err);
    if (res->written == 0)
        return errorf(err, errlen, "import of '%s' produced no sample (%lld skipped)", o->from,
                      (long long)res->skipped);
    return 0;
}
