// Shard specs → list of shard paths: brace patterns, globs, directories, shard files, list files.
// Every shard named must exist now, so a typo fails before training starts, not hours later.
#include <dirent.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io.h"

#define MAX_SHARDS 1000000 // a brace range larger than this is surely a mistake

typedef struct {
    int n, cap;
    char **paths;
} List;

static int list_add(List *l, const char *path) {
    if (l->n >= MAX_SHARDS) return -1;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->paths, (size_t)cap * sizeof(*p));
        if (!p) return -1;
        l->paths = p, l->cap = cap;
    }
    if (!(l->paths[l->n] = strdup(path))) return -1;
    l->n++;
    return 0;
}

static void list_free(List *l) {
    for (int i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof(*l));
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int is_shard_name(const char *s) {
    return ends_with(s, ".tar") || ends_with(s, ".tar.gz") || ends_with(s, ".tgz");
}

static int is_regular(const char *path) {
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

static int has_glob_chars(const char *s) {
    return strpbrk(s, "*?[") != NULL;
}

// ---- brace expansion ----

// Parses a decimal integer that fills s[0..n) exactly.
static int parse_int(const char *s, size_t n, long long *out, int *padded) {
    size_t i = 0;
    int neg = 0;
    if (n && s[0] == '-') neg = 1, i = 1;
    if (i == n || n - i > 15) return 0;
    long long v = 0;
    for (size_t k = i; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return 0;
        v = v * 10 + (s[k] - '0');
    }
    *padded = (n - i > 1 && s[i] == '0');
    *out = neg ? -v : v;
    return 1;
}

static int expand_braces(List *out, const char *pat, const char *spec, char *err, size_t errlen) {
    const char *open = strchr(pat, '{');
    if (!open) {
        if (!list_add(out, pat)) return 0;
        snprintf(err, errlen, "shard spec '%s' expands to too many shards", spec);
        return -1;
    }
    const char *close = strchr(open, '}');
    const char *nested = strchr(open + 1, '{');
    if (!close || (nested && nested < close)) {
        snprintf(err, errlen, "shard spec '%s': unbalanced or nested braces", spec);
        return -1;
    }
    size_t pre = (size_t)(open - pat), inner = (size_t)(close - open - 1);
    const char *in = open + 1, *rest = close + 1;
    size_t cap = strlen(pat) + 64;
    char *buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < inner; i++)
        if (in[i] == '.' && in[i + 1] == '.') {
            dots = in + i;
            break;
        }
    long long lo, hi;
    int pad_lo, pad_hi;
    if (dots && parse_int(in, (size_t)(dots - in), &lo, &pad_lo) &&
        parse_int(dots + 2, inner - (size_t)(dots - in) - 2, &hi, &pad_hi)) {
        int width = 0;
        if (pad_lo || pad_hi) {
            int wl = (int)(dots - in), wh = (int)(inner - (size_t)(dots - in) - 2);
            width = wl > wh ? wl : wh;
        }
        long long count = (hi >= lo ? hi - lo : lo - hi) + 1;
        if (count > MAX_SHARDS) {
            snprintf(err, errlen, "shard spec '%s': range of %lld shards is too large", spec,
                     count);
            free(buf);
            return -1;
        }
        long long step = hi >= lo ? 1 : -1;
        for (long long v = lo;; v += step) {
            snprintf(buf, cap, "%.*s%0*lld%s", (int)pre, pat, width, v, rest);
            if ((rc = expand_braces(out, buf, spec, err, errlen))) break;
            if (v == hi) break;
        }
    } else if (memchr(in, ',', inner)) {
        const char *a = in, *end = in + inner;
        while (a <= end) {
            const char *comma = memchr(a, ',', (size_t)(end - a));
            const char *b = comma ? comma : end;
            snprintf(buf, cap, "%.*s%.*s%s", (int)pre, pat, (int)(b - a), a, rest);
            if ((rc = expand_braces(out, buf, spec, err, errlen))) break;
            a = b + 1;
        }
    } else {
        snprintf(err, errlen, "shard spec '%s': braces must hold a range {A..B} or a list {a,b}",
                 spec);
        rc = -1;
    }
    free(buf);
    return rc;
}

// ---- directories, globs, list files ----

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_directory(List *out, const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "shard directory '%s' cannot be read", dir);
        return -1;
    }
    List found = {0};
    struct dirent *e;
    int rc = 0;
    size_t dn = strlen(dir);
    while ((e = readdir(d))) {
        if (!is_shard_name(e->d_name)) continue;
        size_t n = dn + strlen(e->d_name) + 2;
        char *path = malloc(n);
        if (!path) {
            rc = -1;
            break;
        }
        snprintf(path, n, "%s%s%s", dir, (dn && dir[dn - 1] == '/') ? "" : "/", e->d_name);
        if (is_regular(path) && list_add(&found, path)) rc = -1;
        free(path);
        if (rc) break;
    }
    closedir(d);
    if (rc) {
        snprintf(err, errlen, "out of memory listing '%s'", dir);
    } else if (found.n == 0) {
        snprintf(err, errlen, "shard directory '%s' holds no *.tar, *.tar.gz or *.tgz file", dir);
        rc = -1;
    } else {
        qsort(found.paths, (size_t)found.n, sizeof(char *), cmp_str);
        for (int i = 0; i < found.n && !rc; i++)
            if (list_add(out, found.paths[i])) {
                snprintf(err, errlen, "too many shards");
                rc = -1;
            }
    }
    list_free(&found);
    return rc;
}

static int add_glob(List *out, const char *pat, char *err, size_t errlen) {
    glob_t g;
    int rc = glob(pat, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) {
        snprintf(err, errlen, "shard glob '%s' matches no file", pat);
        return -1;
    }
    if (rc) {
        snprintf(err, errlen, "shard glob '%s' failed", pat);
        return -1;
    }
    rc = 0;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) // glob(3) sorts its matches
        if (is_regular(g.gl_pathv[i]) && list_add(out, g.gl_pathv[i])) {
            snprintf(err, errlen, "too many shards");
            rc = -1;
        }
    globfree(&g);
    return rc;
}

// A shard file by name, or by its first bytes: gzip magic or a ustar header.
static int looks_like_shard(const char *path) {
    if (is_shard_name(path)) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char h[265];
    size_t n = fread(h, 1, sizeof(h), f);
    fclose(f);
    if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) return 1;
    if (n >= 262 && !memcmp(h + 257, "ustar", 5)) return 1;
    size_t zeros = 0; // an empty tar: nothing but end-of-archive blocks
    while (zeros < n && h[zeros] == 0)
        zeros++;
    return n == sizeof(h) && zeros == n;
}

static int add_list_file(List *out, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "shard list '%s' cannot be read", path);
        return -1;
    }
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    char *line = NULL, *full = NULL;
    size_t cap = 0;
    int rc = 0, lineno = 0, added = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = 0;
        if (!n || s[0] == '#') continue;
        free(full);
        size_t fn = dir_len + n + 1;
        if (!(full = malloc(fn))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        if (s[0] == '/')
            snprintf(full, fn, "%s", s);
        else
            snprintf(full, fn, "%.*s%s", (int)dir_len, path, s);
        if (!is_regular(full)) {
            snprintf(err, errlen, "%s:%d: shard '%s' does not exist", path, lineno, full);
            rc = -1;
            break;
        }
        if (list_add(out, full)) {
            snprintf(err, errlen, "too many shards");
            rc = -1;
            break;
        }
        added++;
    }
    free(line);
    free(full);
    fclose(f);
    if (!rc && !added) {
        snprintf(err, errlen, "shard list '%s' names no shard", path);
        rc = -1;
    }
    return rc;
}

static int expand_part(List *out, const char *part, char *err, size_t errlen) {
    if (strchr(part, '{') || strchr(part, '}')) {
        List exp = {0};
        int rc = expand_braces(&exp, part, part, err, errlen);
        for (int i = 0; i < exp.n && !rc; i++) {
            if (has_glob_chars(exp.paths[i])) {
                rc = add_glob(out, exp.paths[i], err, errlen);
            } else if (!is_regular(exp.paths[i])) {
                snprintf(err, errlen, "shard spec '%s': shard '%s' does not exist", part,
                         exp.paths[i]);
                rc = -1;
            } else if (list_add(out, exp.paths[i])) {
                snprintf(err, errlen, "too many shards");
                rc = -1;
            }
        }
        list_free(&exp);
        return rc;
    }
    struct stat st;
    if (!stat(part, &st)) {
        if (S_ISDIR(st.st_mode)) return add_directory(out, part, err, errlen);
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "shard spec '%s' is neither a file nor a directory", part);
            return -1;
        }
        if (looks_like_shard(part)) {
            if (!list_add(out, part)) return 0;
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return add_list_file(out, part, err, errlen);
    }
    if (has_glob_chars(part)) return add_glob(out, part, err, errlen);
    snprintf(err, errlen, "shard spec '%s': no such file or directory", part);
    return -1;
}

int shard_spec_expand(ShardList *out, const char *spec, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (!spec || !spec[0]) {
        snprintf(err, errlen, "empty shard spec");
        return -1;
    }
    List all = {0};
    char *copy = strdup(spec);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    char *part = copy;
    for (;;) {
        char *sep = strstr(part, "::");
        if (sep) *sep = 0;
        if (part[0] && (rc = expand_part(&all, part, err, errlen))) break;
        if (!sep) break;
        part = sep + 2;
    }
    free(copy);
    if (!rc && all.n == 0) {
        snprintf(err, errlen, "shard spec '%s' names no shard", spec);
        rc = -1;
    }
    if (rc) {
        list_free(&all);
        return rc;
    }
    out->n = all.n;
    out->paths = all.paths;
    return 0;
}

void shard_list_free(ShardList *list) {
    if (!list) return;
    for (int i = 0; i < list->n; i++)
        free(list->paths[i]);
    free(list->paths);
    list->paths = NULL;
    list->n = 0;
}
