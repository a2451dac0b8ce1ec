// io/vocab.c — builds a WordPiece vocab.txt from captions.
//
// Words come from the same BasicTokenizer the WordPiece tokenizer uses, so the vocabulary
// matches what the tokenizer will look up. Layout of the output (ids = line numbers):
//   [PAD] [UNK] [CLS] [SEP] [MASK]           (so [PAD] is id 0)
//   every character seen, most frequent first
//   the same characters as "##" continuations, same order
//   whole words of two or more characters, most frequent first
// Ties are broken by byte order, so the file depends only on the multiset of captions.
// With every character and its "##" form present, greedy longest-match can always fall back
// to single characters: no caption of the corpus tokenizes to [UNK] (except words longer than
// 100 characters, which WordPiece always maps to [UNK]) unless `size` cuts characters off.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "text_internal.h"

// A string → count hash map; strings live in one growing arena.
typedef struct {
    size_t off;
    uint32_t len;
    uint64_t hash;
    long count;
} CountEntry;

typedef struct {
    char *arena;
    size_t arena_len, arena_cap;
    CountEntry *entries;
    size_t n, cap;
    uint32_t *slots; // entry index + 1, 0 = empty
    size_t n_slots;
} Counter;

struct VocabBuilder {
    Counter words, chars;
    long captions, invalid_utf8, long_words;
    int out_of_memory;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

static int counter_grow_slots(Counter *c) {
    size_t n_slots = c->n_slots ? 2 * c->n_slots : 1024;
    uint32_t *slots = calloc(n_slots, sizeof(uint32_t));
    if (!slots) return -1;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = c->entries[i].hash & (n_slots - 1);
        while (slots[j])
            j = (j + 1) & (n_slots - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    free(c->slots);
    c->slots = slots;
    c->n_slots = n_slots;
    return 0;
}

static int counter_add(Counter *c, const char *s, size_t len) {
    if (2 * (c->n + 1) > c->n_slots && counter_grow_slots(c)) return -1;
    uint64_t h = hash_bytes(s, len);
    size_t j = h & (c->n_slots - 1);
    for (; c->slots[j]; j = (j + 1) & (c->n_slots - 1)) {
        CountEntry *e = &c->entries[c->slots[j] - 1];
        if (e->hash == h && e->len == len && !memcmp(c->arena + e->off, s, len)) {
            e->count++;
            return 0;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        CountEntry *grown = realloc(c->entries, cap * sizeof(CountEntry));
        if (!grown) return -1;
        c->entries = grown;
        c->cap = cap;
    }
    if (c->arena_len + len > c->arena_cap) {
        size_t cap = c->arena_cap ? 2 * c->arena_cap : 1 << 16;
        while (cap < c->arena_len + len)
            cap *= 2;
        char *grown = realloc(c->arena, cap);
        if (!grown) return -1;
        c->arena = grown;
        c->arena_cap = cap;
    }
    memcpy(c->arena + c->arena_len, s, len);
    c->entries[c->n] =
        (CountEntry){.off = c->arena_len, .len = (uint32_t)len, .hash = h, .count = 1};
    c->arena_len += len;
    c->slots[j] = (uint32_t)(++c->n);
    return 0;
}

static void counter_free(Counter *c) {
    free(c->arena);
    free(c->entries);
    free(c->slots);
}

VocabBuilder *vocab_builder_new(void) {
    return calloc(1, sizeof(VocabBuilder));
}

void vocab_builder_free(VocabBuilder *vb) {
    if (!vb) return;
    counter_free(&vb->words);
    counter_free(&vb->chars);
    free(vb);
}

static int count_word(void *ctx, const char *word, int nbytes, int nchars) {
    VocabBuilder *vb = ctx;
    if (!word) { // longer than WordPiece accepts: [UNK] whatever the vocabulary
        vb->long_words++;
        return 0;
    }
    if (nchars > 1 && counter_add(&vb->words, word, (size_t)nbytes)) vb->out_of_memory = 1;
    for (int i = 0; i < nbytes;) {
        int len = 1;
        while (i + len < nbytes && ((uint8_t)word[i + len] & 0xC0) == 0x80)
            len++;
        if (counter_add(&vb->chars, word + i, (size_t)len)) vb->out_of_memory = 1;
        i += len;
    }
    return vb->out_of_memory;
}

void vocab_builder_add(VocabBuilder *vb, const char *caption) {
    char err[128];
    vb->captions++;
    if (basic_tokenize(caption, count_word, vb, err, sizeof(err))) vb->invalid_utf8++;
}

void vocab_builder_stats(const VocabBuilder *vb, VocabBuilderStats *out) {
    out->captions = vb->captions;
    out->invalid_utf8 = vb->invalid_utf8;
    out->long_words = vb->long_words;
    out->distinct_chars = (long)vb->chars.n;
    out->distinct_words = (long)vb->words.n;
}

typedef struct {
    const char *s;
    uint32_t len;
    long count;
} Ranked;

static int ranked_cmp(const void *pa, const void *pb) {
    const Ranked *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

// Entries sorted by descending count, ties by byte order; malloc'd.
static Ranked *counter_ranked(const Counter *c) {
    Ranked *r = malloc((c->n ? c->n : 1) * sizeof(Ranked));
    if (!r) return NULL;
    for (size_t i = 0; i < c->n; i++)
        r[i] = (Ranked){c->arena + c->entries[i].off, c->entries[i].len, c->entries[i].count};
    qsort(r, c->n, sizeof(Ranked), ranked_cmp);
    return r;
}

int vocab_builder_write(VocabBuilder *vb, const char *path, int size, char *err, size_t errlen) {
    static const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    const int n_specials = 5;
    if (vb->out_of_memory) {
        snprintf(err, errlen, "%s: out of memory while counting words", path);
        return -1;
    }
    if (size < n_specials) {
        snprintf(err, errlen, "%s: vocabulary size %d is below the %d special tokens", path, size,
                 n_specials);
        return -1;
    }
    Ranked *chars = counter_ranked(&vb->chars), *words = counter_ranked(&vb->words);
    FILE *f = chars && words ? fopen(path, "w") : NULL;
    if (!f) {
        if (chars && words)
            snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        else
            snprintf(err, errlen, "%s: out of memory sorting words", path);
        free(chars);
        free(words);
        return -1;
    }
    int written = 0;
    for (int i = 0; i < n_specials && written < size; i++, written++)
        fprintf(f, "%s\n", specials[i]);
    for (size_t i = 0; i < vb->chars.n && written < size; i++, written++)
        fprintf(f, "%.*s\n", (int)chars[i].len, chars[i].s);
    for (size_t i = 0; i < vb->chars.n && written < size; i++, written++)
        fprintf(f, "##%.*s\n", (int)chars[i].len, chars[i].s);
    for (size_t i = 0; i < vb->words.n && written < size; i++, written++)
        fprintf(f, "%.*s\n", (int)words[i].len, words[i].s);
    free(chars);
    free(words);
    int bad = ferror(f);
    if (fclose(f) || bad) {
        snprintf(err, errlen, "%s: write error: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
