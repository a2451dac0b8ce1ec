// io/tokenizer.c — BERT's uncased BasicTokenizer and the WordPiece tokenizer over a vocab.txt.
//
// The text path, character by character: validate UTF-8 (whole text, up front) → drop control
// characters → split on whitespace → CJK ideographs alone → lower-case + strip accents (one
// table lookup, see gen_unicode_tables.py) → punctuation alone → WordPiece per word.
// Nothing is allocated per call: words live in a fixed buffer on the stack (a word longer than
// 100 characters becomes [UNK] anyway, so longer ones are only counted).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "text_internal.h"

// ---------------------------------------------------------------------------------------------
// UTF-8 and character classes
// ---------------------------------------------------------------------------------------------

long utf8_first_invalid(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return (long)i;
        }
        if (n - i < len) return (long)i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += len;
    }
    return -1;
}

// Decodes one code point of already validated UTF-8 and advances *p.
static inline uint32_t utf8_next(const uint8_t **p) {
    const uint8_t *s = *p;
    uint32_t c = s[0];
    if (c < 0x80) {
        *p = s + 1;
        return c;
    }
    if (c < 0xE0) {
        *p = s + 2;
        return ((c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c < 0xF0) {
        *p = s + 3;
        return ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *p = s + 4;
    return ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

static inline int utf8_put(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static inline uint32_t uni_flags(uint32_t cp) {
    if (cp < 128) return uni_ascii_flags[cp];
    int lo = 0, hi = uni_ranges_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_ranges[mid].lo)
            hi = mid - 1;
        else if (cp > uni_ranges[mid].hi)
            lo = mid + 1;
        else
            return uni_ranges[mid].flags;
    }
    return 0;
}

// Lower-cased, accent-stripped form of one character (0 to UNI_FOLD_MAX code points).
static int uni_fold_char(uint32_t cp, uint32_t out[UNI_FOLD_MAX]) {
    if (cp < 128) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    if (cp >= 0xAC00 && cp <= 0xD7A3) { // Hangul syllable: NFD into conjoining jamo
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        if (s % 28 == 0) return 2;
        out[2] = 0x11A7 + s % 28;
        return 3;
    }
    int lo = 0, hi = uni_fold_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_fold[mid].cp) {
            hi = mid - 1;
        } else if (cp > uni_fold[mid].cp) {
            lo = mid + 1;
        } else {
            for (int k = 0; k < uni_fold[mid].len; k++)
                out[k] = uni_fold_pool[uni_fold[mid].offset + k];
            return uni_fold[mid].len;
        }
    }
    out[0] = cp;
    return 1;
}

// ---------------------------------------------------------------------------------------------
// BasicTokenizer
// ---------------------------------------------------------------------------------------------

typedef struct {
    char bytes[BASIC_WORD_MAX_BYTES];
    int nbytes, nchars; // nchars stops counting at BASIC_WORD_MAX_CHARS + 1
    BasicWordFn emit;
    void *ctx;
    int stop;
} WordBuf;

static void word_flush(WordBuf *w) {
    if (w->nchars > 0 && !w->stop) {
        if (w->nchars > BASIC_WORD_MAX_CHARS)
            w->stop = w->emit(w->ctx, NULL, 0, w->nchars);
        else
            w->stop = w->emit(w->ctx, w->bytes, w->nbytes, w->nchars);
    }
    w->nbytes = w->nchars = 0;
}

static inline void word_push(WordBuf *w, uint32_t cp) {
    if (w->nchars < BASIC_WORD_MAX_CHARS) {
        w->nbytes += utf8_put(w->bytes + w->nbytes, cp);
        w->nchars++;
    } else {
        w->nchars = BASIC_WORD_MAX_CHARS + 1;
    }
}

// Appends folded characters to the current word; punctuation becomes a word of its own.
static inline void word_push_folded(WordBuf *w, const uint32_t *m, int nm) {
    for (int k = 0; k < nm; k++) {
        if (uni_flags(m[k]) & UNI_PUNCT) {
            word_flush(w);
            word_push(w, m[k]);
            word_flush(w);
        } else {
            word_push(w, m[k]);
        }
    }
}

// Python's str.lower() turns Σ into final ς when a cased character precedes it and none
// follows (case-ignorable characters skipped, within the whitespace-delimited token).
static int sigma_is_final(int prev_cased, const uint8_t *p, const uint8_t *end) {
    if (!prev_cased) return 0;
    while (p < end) {
        uint32_t f = uni_flags(utf8_next(&p));
        if (f & UNI_DROP) continue;
        if (f & (UNI_WS | UNI_CJK)) return 1;
        if (f & UNI_CASE_IGN) continue;
        return !(f & UNI_CASED);
    }
    return 1;
}

int basic_tokenize(const char *text, BasicWordFn emit, void *ctx, char *err, size_t errlen) {
    if (!text) {
        snprintf(err, errlen, "text is NULL");
        return -1;
    }
    size_t n = strlen(text);
    long bad = utf8_first_invalid(text, n);
    if (bad >= 0) {
        snprintf(err, errlen, "text is not valid UTF-8 (byte 0x%02x at offset %ld)",
                 (unsigned)(uint8_t)text[bad], bad);
        return -1;
    }
    WordBuf w = {.nbytes = 0, .nchars = 0, .emit = emit, .ctx = ctx, .stop = 0};
    const uint8_t *p = (const uint8_t *)text, *end = p + n;
    int prev_cased = 0; // final-sigma context: last non-ignorable character was cased
    uint32_t m[UNI_FOLD_MAX];
    while (p < end && !w.stop) {
        uint32_t cp = *p;
        if (cp < 128) { // ASCII fast path
            p++;
            uint32_t f = uni_ascii_flags[cp];
            if (f & UNI_DROP) continue;
            if (f & UNI_WS) {
                word_flush(&w);
                prev_cased = 0;
            } else if (f & UNI_PUNCT) {
                word_flush(&w);
                word_push(&w, cp);
                word_flush(&w);
                if (!(f & UNI_CASE_IGN)) prev_cased = 0;
            } else {
                word_push(&w, (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp);
                if (!(f & UNI_CASE_IGN)) prev_cased = (f & UNI_CASED) != 0;
            }
            continue;
        }
        cp = utf8_next(&p);
        uint32_t f = uni_flags(cp);
        if (f & UNI_DROP) continue;
        if (f & UNI_WS) {
            word_flush(&w);
            prev_cased = 0;
            continue;
        }
        if (f & UNI_CJK) { // a whitespace token of its own
            word_flush(&w);
            word_push_folded(&w, m, uni_fold_char(cp, m));
            word_flush(&w);
            prev_cased = 0;
            continue;
        }
        int nm;
        if (cp == 0x3A3) {
            m[0] = sigma_is_final(prev_cased, p, end) ? 0x3C2 : 0x3C3;
            nm = 1;
        } else {
            nm = uni_fold_char(cp, m);
        }
        if (!(f & UNI_CASE_IGN)) prev_cased = (f & UNI_CASED) != 0;
        word_push_folded(&w, m, nm);
    }
    word_flush(&w);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary: a hash table from token bytes to id
// ---------------------------------------------------------------------------------------------

struct Tokenizer {
    char *pool;        // the vocab file's bytes, each token NUL-terminated in place
    uint32_t *tok_off; // [n_tokens] offset of each token in pool
    uint32_t *tok_len; // [n_tokens] byte length
    int n_tokens;
    int32_t *slots;      // [n_slots] token id or -1; open addressing, linear probing
    uint64_t *slot_hash; // [n_slots]
    uint64_t slot_mask;
    int max_word_bytes, max_cont_bytes; // longest token, longest "##" piece without the "##"
    int cls, sep, pad, unk;
};

#define FNV_BASIS 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static inline uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * FNV_PRIME;
    return h;
}

// Finds the id of (cont ? "##" : "") + s[0..n), or -1.
static int vocab_find(const Tokenizer *tok, const char *s, int n, int cont) {
    uint64_t h = fnv1a(cont ? fnv1a(FNV_BASIS, "##", 2) : FNV_BASIS, s, (size_t)n);
    uint32_t want_len = (uint32_t)n + (cont ? 2 : 0);
    for (uint64_t i = h & tok->slot_mask;; i = (i + 1) & tok->slot_mask) {
        int32_t id = tok->slots[i];
        if (id < 0) return -1;
        if (tok->slot_hash[i] != h || tok->tok_len[id] != want_len) continue;
        const char *t = tok->pool + tok->tok_off[id];
        if (cont && (t[0] != '#' || t[1] != '#')) continue;
        if (!memcmp(t + (cont ? 2 : 0), s, (size_t)n)) return id;
    }
}

// Inserts token id; a repeated token keeps the later id (as a Python dict built line by line).
static void vocab_insert(Tokenizer *tok, int id) {
    const char *t = tok->pool + tok->tok_off[id];
    uint64_t h = fnv1a(FNV_BASIS, t, tok->tok_len[id]);
    for (uint64_t i = h & tok->slot_mask;; i = (i + 1) & tok->slot_mask) {
        int32_t other = tok->slots[i];
        if (other < 0) {
            tok->slots[i] = id;
            tok->slot_hash[i] = h;
            return;
        }
        if (tok->slot_hash[i] == h && tok->tok_len[other] == tok->tok_len[id] &&
            !memcmp(tok->pool + tok->tok_off[other], t, tok->tok_len[id])) {
            tok->slots[i] = id;
            return;
        }
    }
}

static char *read_whole_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *grown = realloc(buf, 2 * cap + 1);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory reading the file", path);
        fclose(f);
        return NULL;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

void tokenizer_free(Tokenizer *tok) {
    if (!tok) return;
    free(tok->pool);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->slots);
    free(tok->slot_hash);
    free(tok);
}

Tokenizer *tokenizer_load(const char *vocab_path, char *err, size_t errlen) {
    Tokenizer *tok = calloc(1, sizeof(*tok));
    if (!tok) {
        snprintf(err, errlen, "%s: out of memory", vocab_path);
        return NULL;
    }
    size_t len;
    tok->pool = read_whole_file(vocab_path, &len, err, errlen);
    if (!tok->pool) goto fail;
    if (len >= UINT32_MAX) {
        snprintf(err, errlen, "%s: file too large for a vocabulary (%zu bytes)", vocab_path, len);
        goto fail;
    }
    // One token per line; a final newline does not start another token.
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += tok->pool[i] == '\n';
    if (len > 0 && tok->pool[len - 1] != '\n') lines++;
    if (lines == 0) {
        snprintf(err, errlen, "%s: empty vocabulary", vocab_path);
        goto fail;
    }
    if (lines > INT32_MAX / 4) {
        snprintf(err, errlen, "%s: too many lines (%zu)", vocab_path, lines);
        goto fail;
    }
    tok->n_tokens = (int)lines;
    size_t n_slots = 16;
    while (n_slots < 2 * lines)
        n_slots *= 2;
    tok->tok_off = malloc(lines * sizeof(uint32_t));
    tok->tok_len = malloc(lines * sizeof(uint32_t));
    tok->slots = malloc(n_slots * sizeof(int32_t));
    tok->slot_hash = malloc(n_slots * sizeof(uint64_t));
    if (!tok->tok_off || !tok->tok_len || !tok->slots || !tok->slot_hash) {
        snprintf(err, errlen, "%s: out of memory for %zu tokens", vocab_path, lines);
        goto fail;
    }
    memset(tok->slots, 0xff, n_slots * sizeof(int32_t));
    tok->slot_mask = n_slots - 1;
    size_t pos = 0;
    for (int id = 0; id < tok->n_tokens; id++) {
        size_t e = pos;
        while (e < len && tok->pool[e] != '\n')
            e++;
        size_t tl = e;
        if (tl > pos && tok->pool[tl - 1] == '\r') tl--;
        tok->pool[tl] = '\0';
        long bad = utf8_first_invalid(tok->pool + pos, tl - pos);
        if (bad >= 0) {
            snprintf(err, errlen, "%s:%d: token is not valid UTF-8 (byte offset %ld)", vocab_path,
                     id + 1, bad);
            goto fail;
        }
        if (memchr(tok->pool + pos, '\0', tl - pos)) {
            snprintf(err, errlen, "%s:%d: token contains a NUL byte", vocab_path, id + 1);
            goto fail;
        }
        tok->tok_off[id] = (uint32_t)pos;
        tok->tok_len[id] = (uint32_t)(tl - pos);
        if (tl > pos) vocab_insert(tok, id); // an empty line holds an id but matches nothing
        int tlen = (int)(tl - pos);
        if (tlen >= 2 && tok->pool[pos] == '#' && tok->pool[pos + 1] == '#') {
            if (tlen - 2 > tok->max_cont_bytes) tok->max_cont_bytes = tlen - 2;
        }
        if (tlen > tok->max_word_bytes) tok->max_word_bytes = tlen;
        pos = e + 1;
    }
    const char *names[4] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]"};
    int *ids[4] = {&tok->cls, &tok->sep, &tok->pad, &tok->unk};
    char missing[64] = "";
    for (int k = 0; k < 4; k++) {
        *ids[k] = vocab_find(tok, names[k], (int)strlen(names[k]), 0);
        if (*ids[k] < 0) {
            strcat(missing, " ");
            strcat(missing, names[k]);
        }
    }
    if (missing[0]) {
        snprintf(err, errlen, "%s: not a BERT vocab.txt: missing special token(s)%s", vocab_path,
                 missing);
        goto fail;
    }
    return tok;
fail:
    tokenizer_free(tok);
    return NULL;
}

int tokenizer_vocab_size(const Tokenizer *tok) {
    return tok->n_tokens;
}
int tokenizer_pad_id(const Tokenizer *tok) {
    return tok->pad;
}
int tokenizer_unk_id(const Tokenizer *tok) {
    return tok->unk;
}
int tokenizer_cls_id(const Tokenizer *tok) {
    return tok->cls;
}
int tokenizer_sep_id(const Tokenizer *tok) {
    return tok->sep;
}

const char *tokenizer_token(const Tokenizer *tok, int id) {
    if (id < 0 || id >= tok->n_tokens) return NULL;
    return tok->pool + tok->tok_off[id];
}

// ---------------------------------------------------------------------------------------------
// WordPiece
// ---------------------------------------------------------------------------------------------

typedef struct {
    const Tokenizer *tok;
    int32_t *ids; // output, capacity cap
    int cap, n, n_unk;
} Encoding;

static int encoding_push(Encoding *e, int32_t id) {
    if (e->n >= e->cap) return 1;
    e->ids[e->n++] = id;
    e->n_unk += id == e->tok->unk;
    return e->n >= e->cap;
}

// Greedy longest-match-first: the longest vocab entry that starts the word, then the longest
// "##" entry that continues it, and so on; if some position has no match the word is [UNK].
static int wordpiece_word(void *ctx, const char *word, int nbytes, int nchars) {
    Encoding *e = ctx;
    const Tokenizer *tok = e->tok;
    if (!word) return encoding_push(e, tok->unk);
    int off[BASIC_WORD_MAX_CHARS + 1], k = 0;
    for (int i = 0; i < nbytes; i++)
        if (((uint8_t)word[i] & 0xC0) != 0x80) off[k++] = i;
    off[k] = nbytes;
    int32_t pieces[BASIC_WORD_MAX_CHARS];
    int np = 0, start = 0;
    while (start < nchars) {
        int cont = start > 0, found = -1, end = nchars;
        int limit = cont ? tok->max_cont_bytes : tok->max_word_bytes;
        for (; end > start; end--) {
            int len = off[end] - off[start];
            if (len > limit) continue;
            found = vocab_find(tok, word + off[start], len, cont);
            if (found >= 0) break;
        }
        if (found < 0) return encoding_push(e, tok->unk);
        pieces[np++] = found;
        start = end;
    }
    for (int i = 0; i < np; i++)
        if (encoding_push(e, pieces[i])) return 1;
    return 0;
}

int tokenizer_encode(const Tokenizer *tok, const char *text, int32_t *ids, uint8_t *valid,
                     int max_len, int *n_unk, char *err, size_t errlen) {
    if (max_len < 2) {
        snprintf(err, errlen, "tokenizer: max_len %d leaves no room for [CLS] and [SEP]", max_len);
        return -1;
    }
    Encoding e = {.tok = tok, .ids = ids + 1, .cap = max_len - 2, .n = 0, .n_unk = 0};
    if (basic_tokenize(text, wordpiece_word, &e, err, errlen)) return -1;
    ids[0] = tok->cls;
    ids[e.n + 1] = tok->sep;
    int n = e.n + 2;
    for (int i = n; i < max_len; i++)
        ids[i] = tok->pad;
    if (valid)
        for (int i = 0; i < max_len; i++)
            valid[i] = i < n;
    if (n_unk) *n_unk = e.n_unk;
    return n;
}
