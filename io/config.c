// io/config.c — INI configs: parsing, --set overrides, typed getters, writing back.
//
// Entries keep where they came from ("file:line", "--set" or "default") so that an error about
// a bad value can say where to fix it.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io.h"

typedef struct {
    char *section, *key, *value, *origin;
} ConfigEntry;

struct TjConfig {
    ConfigEntry *entries; // in insertion order; to_ini groups them by section
    int n, cap;
    char **sections; // first-seen order (includes sections without keys)
    int n_sections, cap_sections;
};

// Configs are tiny: running out of memory here is not a recoverable condition.
static void *config_oom(void *p) {
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    return p;
}

static char *dup_str(const char *s) {
    return config_oom(strdup(s));
}

static char *dup_range(const char *s, size_t n) {
    char *d = config_oom(malloc(n + 1));
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

TjConfig *config_new(void) {
    return config_oom(calloc(1, sizeof(TjConfig)));
}

void config_free(TjConfig *cfg) {
    if (!cfg) return;
    for (int i = 0; i < cfg->n; i++) {
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
        free(cfg->entries[i].origin);
    }
    for (int i = 0; i < cfg->n_sections; i++)
        free(cfg->sections[i]);
    free(cfg->entries);
    free(cfg->sections);
    free(cfg);
}

static void add_section(TjConfig *cfg, const char *section) {
    for (int i = 0; i < cfg->n_sections; i++)
        if (!strcmp(cfg->sections[i], section)) return;
    if (cfg->n_sections == cfg->cap_sections) {
        cfg->cap_sections = cfg->cap_sections ? 2 * cfg->cap_sections : 16;
        cfg->sections =
            config_oom(realloc(cfg->sections, (size_t)cfg->cap_sections * sizeof(char *)));
    }
    cfg->sections[cfg->n_sections++] = dup_str(section);
}

static ConfigEntry *find_entry(const TjConfig *cfg, const char *section, const char *key) {
    for (int i = 0; i < cfg->n; i++)
        if (!strcmp(cfg->entries[i].section, section) && !strcmp(cfg->entries[i].key, key))
            return &cfg->entries[i];
    return NULL;
}

static void set_with_origin(TjConfig *cfg, const char *section, const char *key, const char *value,
                            const char *origin) {
    add_section(cfg, section);
    ConfigEntry *e = find_entry(cfg, section, key);
    if (e) {
        free(e->value);
        free(e->origin);
    } else {
        if (cfg->n == cfg->cap) {
            cfg->cap = cfg->cap ? 2 * cfg->cap : 32;
            cfg->entries =
                config_oom(realloc(cfg->entries, (size_t)cfg->cap * sizeof(ConfigEntry)));
        }
        e = &cfg->entries[cfg->n++];
        e->section = dup_str(section);
        e->key = dup_str(key);
    }
    e->value = dup_str(value);
    e->origin = dup_str(origin);
}

void config_set(TjConfig *cfg, const char *section, const char *key, const char *value) {
    set_with_origin(cfg, section, key, value, "set by the program");
}

const char *config_get(const TjConfig *cfg, const char *section, const char *key) {
    const ConfigEntry *e = find_entry(cfg, section, key);
    return e ? e->value : NULL;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

static int is_blank(int c) {
    return c == ' ' || c == '\t';
}

static int valid_name(const char *s, size_t n, int allow_dot) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || c == '-' || (allow_dot && c == '.'))) return 0;
    }
    return 1;
}

// A comment starts at '#' or ';' that begins the text or follows a blank.
static int starts_comment(const char *s, const char *start) {
    return (*s == '#' || *s == ';') && (s == start || is_blank(s[-1]));
}

// Parses the value text after '=' (s is NUL-terminated, no newline). Returns a malloc'd value,
// or NULL with a message in why.
static char *parse_value(const char *s, const char **why) {
    while (is_blank(*s))
        s++;
    if (*s != '"') {
        const char *e = s;
        while (*e && !starts_comment(e, s))
            e++;
        while (e > s && is_blank(e[-1]))
            e--;
        return dup_range(s, (size_t)(e - s));
    }
    size_t n = strlen(s);
    char *out = config_oom(malloc(n + 1)), *o = out;
    const char *p = s + 1;
    for (;; p++) {
        if (*p == '\0') {
            *why = "unterminated quoted value";
            free(out);
            return NULL;
        }
        if (*p == '"') break;
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case '\\':
            *o++ = '\\';
            break;
        case '"':
            *o++ = '"';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'r':
            *o++ = '\r';
            break;
        default:
            *why = "unknown escape in quoted value (use \\\\ \\\" \\n \\t \\r)";
            free(out);
            return NULL;
        }
    }
    *o = '\0';
    p++;
    while (is_blank(*p))
        p++;
    if (*p && *p != '#' && *p != ';') {
        *why = "text after the closing quote";
        free(out);
        return NULL;
    }
    return out;
}

// Parses INI text into cfg. `name` is used in messages ("file:line: ...").
static int parse_ini(TjConfig *cfg, FILE *f, const char *name, char *err, size_t errlen) {
    char *line = NULL, *section = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    char origin[512];
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if ((size_t)len != strlen(line)) {
            snprintf(err, errlen, "%s:%d: NUL byte in line", name, lineno);
            rc = -1;
            break;
        }
        char *s = line;
        if (lineno == 1 && !strncmp(s, "\xEF\xBB\xBF", 3)) s += 3; // UTF-8 byte order mark
        while (is_blank(*s))
            s++;
        if (*s == '\0' || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close) {
                snprintf(err, errlen, "%s:%d: section header without ']': %s", name, lineno, s);
                rc = -1;
                break;
            }
            char *a = s + 1, *b = close;
            while (is_blank(*a))
                a++;
            while (b > a && is_blank(b[-1]))
                b--;
            if (!valid_name(a, (size_t)(b - a), 1)) {
                snprintf(err, errlen,
                         "%s:%d: bad section name '%.*s' (letters, digits, '_', '-', '.')", name,
                         lineno, (int)(close - s - 1), s + 1);
                rc = -1;
                break;
            }
            char *t = close + 1;
            while (is_blank(*t))
                t++;
            if (*t && *t != '#' && *t != ';') {
                snprintf(err, errlen, "%s:%d: text after section header: %s", name, lineno, t);
                rc = -1;
                break;
            }
            free(section);
            section = dup_range(a, (size_t)(b - a));
            add_section(cfg, section);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen,
                     "%s:%d: expected '[section]', 'key = value' or a comment, got: %s", name,
                     lineno, s);
            rc = -1;
            break;
        }
        char *kend = eq;
        while (kend > s && is_blank(kend[-1]))
            kend--;
        if (!valid_name(s, (size_t)(kend - s), 0)) {
            snprintf(err, errlen, "%s:%d: bad key '%.*s' (letters, digits, '_', '-')", name, lineno,
                     (int)(eq - s), s);
            rc = -1;
            break;
        }
        if (!section) {
            snprintf(err, errlen, "%s:%d: key '%.*s' outside any [section]", name, lineno,
                     (int)(kend - s), s);
            rc = -1;
            break;
        }
        const char *why = NULL;
        char *value = parse_value(eq + 1, &why);
        if (!value) {
            snprintf(err, errlen, "%s:%d: %s", name, lineno, why);
            rc = -1;
            break;
        }
        *kend = '\0';
        snprintf(origin, sizeof(origin), "%s:%d", name, lineno);
        set_with_origin(cfg, section, s, value, origin);
        free(value);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", name, strerror(errno));
        rc = -1;
    }
    free(line);
    free(section);
    return rc;
}

// Copies every entry (and section) of src into dst, keeping origins.
static void config_merge(TjConfig *dst, const TjConfig *src) {
    for (int i = 0; i < src->n_sections; i++)
        add_section(dst, src->sections[i]);
    for (int i = 0; i < src->n; i++)
        set_with_origin(dst, src->entries[i].section, src->entries[i].key, src->entries[i].value,
                        src->entries[i].origin);
}

int config_load_file(TjConfig *cfg, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open config: %s", path, strerror(errno));
        return -1;
    }
    // Parse into a scratch config so that a syntax error leaves cfg untouched.
    TjConfig *tmp = config_new();
    int rc = parse_ini(tmp, f, path, err, errlen);
    fclose(f);
    if (rc == 0) config_merge(cfg, tmp);
    config_free(tmp);
    return rc;
}

int config_load_string(TjConfig *cfg, const char *text, const char *name, char *err,
                       size_t errlen) {
    if (!text[0]) return 0; // fmemopen refuses a zero-length buffer
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read config text: %s", name, strerror(errno));
        return -1;
    }
    TjConfig *tmp = config_new();
    int rc = parse_ini(tmp, f, name, err, errlen);
    fclose(f);
    if (rc == 0) config_merge(cfg, tmp);
    config_free(tmp);
    return rc;
}

int config_set_override(TjConfig *cfg, const char *assignment, char *err, size_t errlen) {
    const char *eq = strchr(assignment, '=');
    const char *dot = NULL;
    for (const char *p = assignment; eq && p < eq; p++)
        if (*p == '.') dot = p;
    if (!eq || !dot) {
        snprintf(err, errlen, "--set '%s': expected section.key=value", assignment);
        return -1;
    }
    const char *a = assignment, *ke = eq;
    while (is_blank(*a))
        a++;
    while (ke > dot + 1 && is_blank(ke[-1]))
        ke--;
    if (!valid_name(a, (size_t)(dot - a), 1) || !valid_name(dot + 1, (size_t)(ke - dot - 1), 0)) {
        snprintf(err, errlen,
                 "--set '%s': bad section or key name (letters, digits, '_', '-'; section may "
                 "contain '.')",
                 assignment);
        return -1;
    }
    const char *v = eq + 1, *ve = eq + strlen(eq);
    while (is_blank(*v))
        v++;
    while (ve > v && is_blank(ve[-1]))
        ve--;
    char *section = dup_range(a, (size_t)(dot - a));
    char *key = dup_range(dot + 1, (size_t)(ke - dot - 1));
    char *value = dup_range(v, (size_t)(ve - v));
    set_with_origin(cfg, section, key, value, "--set");
    free(section);
    free(key);
    free(value);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Typed getters
// ---------------------------------------------------------------------------------------------

static void bad_value(const ConfigEntry *e, const char *expected, char *err, size_t errlen) {
    snprintf(err, errlen, "config: %s.%s = '%s' (%s): expected %s", e->section, e->key, e->value,
             e->origin, expected);
}

int config_get_int(const TjConfig *cfg, const char *section, const char *key, long def, long *out,
                   char *err, size_t errlen) {
    const ConfigEntry *e = find_entry(cfg, section, key);
    if (!e) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(e->value, &end, 10);
    if (end == e->value || *end != '\0' || isspace((unsigned char)e->value[0])) {
        bad_value(e, "an integer", err, errlen);
        return -1;
    }
    if (errno == ERANGE) {
        bad_value(e, "an integer in the range of a long", err, errlen);
        return -1;
    }
    *out = v;
    return 0;
}

int config_get_double(const TjConfig *cfg, const char *section, const char *key, double def,
                      double *out, char *err, size_t errlen) {
    const ConfigEntry *e = find_entry(cfg, section, key);
    if (!e) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(e->value, &end);
    if (end == e->value || *end != '\0' || isspace((unsigned char)e->value[0])) {
        bad_value(e, "a number", err, errlen);
        return -1;
    }
    if (!isfinite(v) || (errno == ERANGE && fabs(v) > 1.0)) {
        bad_value(e, "a finite number", err, errlen);
        return -1;
    }
    *out = v;
    return 0;
}

int config_get_bool(const TjConfig *cfg, const char *section, const char *key, int def, int *out,
                    char *err, size_t errlen) {
    const ConfigEntry *e = find_entry(cfg, section, key);
    if (!e) {
        *out = def;
        return 0;
    }
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(e->value, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(e->value, no[i])) {
            *out = 0;
            return 0;
        }
    }
    bad_value(e, "a boolean (true/false, yes/no, on/off, 1/0)", err, errlen);
    return -1;
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

// Values that would not read back as themselves unquoted.
static int needs_quotes(const char *v) {
    if (!*v) return 0;
    if (is_blank(v[0]) || is_blank(v[strlen(v) - 1]) || v[0] == '"') return 1;
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || starts_comment(p, v)) return 1;
    }
    return 0;
}

typedef struct {
    char *buf;
    size_t len, cap;
} StrBuf;

static void sb_put(StrBuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? 2 * b->cap : 1024;
        b->buf = config_oom(realloc(b->buf, b->cap));
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_puts(StrBuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

char *config_to_ini(const TjConfig *cfg) {
    StrBuf b = {0};
    sb_puts(&b, "");
    for (int s = 0; s < cfg->n_sections; s++) {
        if (s) sb_puts(&b, "\n");
        sb_puts(&b, "[");
        sb_puts(&b, cfg->sections[s]);
        sb_puts(&b, "]\n");
        for (int i = 0; i < cfg->n; i++) {
            const ConfigEntry *e = &cfg->entries[i];
            if (strcmp(e->section, cfg->sections[s])) continue;
            sb_puts(&b, e->key);
            sb_puts(&b, " =");
            if (e->value[0]) sb_puts(&b, " ");
            if (!needs_quotes(e->value)) {
                sb_puts(&b, e->value);
            } else {
                sb_puts(&b, "\"");
                for (const char *p = e->value; *p; p++) {
                    char esc[8];
                    switch (*p) {
                    case '\\':
                        sb_puts(&b, "\\\\");
                        break;
                    case '"':
                        sb_puts(&b, "\\\"");
                        break;
                    case '\n':
                        sb_puts(&b, "\\n");
                        break;
                    case '\t':
                        sb_puts(&b, "\\t");
                        break;
                    case '\r':
                        sb_puts(&b, "\\r");
                        break;
                    default:
                        esc[0] = *p;
                        sb_put(&b, esc, 1);
                    }
                }
                sb_puts(&b, "\"");
            }
            sb_puts(&b, "\n");
        }
    }
    return b.buf;
}
