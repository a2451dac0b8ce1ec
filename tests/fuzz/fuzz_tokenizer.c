// libFuzzer target: the tokenizer on arbitrary bytes.
// Input: byte 0 picks max_len (2..65) and whether to run the vocabulary-builder property; the
// rest is the text (NUL-terminated copy; an embedded NUL ends it, as for any C string).
// Checked on every input:
//   - −1 exactly when the text is not valid UTF-8 (independent validator below);
//   - [CLS] first, [SEP] last, [PAD] after, the valid mask, ids in range, the [UNK] count;
//   - truncation: the ids for max_len are the first ones of the ids for a longer max_len;
//   - (1 input in 4) a vocabulary built from the text tokenizes it without [UNK].
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static Tokenizer *tok;
static char scratch_dir[256];

static const char *VOCAB =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"
    "a\nb\nc\nd\ne\nf\ng\nh\ni\nl\nm\nn\no\nr\ns\nt\nu\n##a\n##b\n##c\n##d\n##e\n##n\n##s\n##t\n"
    "the\ncat\nred\ncircle\n##ing\n##ed\nplay\n.\n,\n!\n'\n#\n##\n###\né\nσ\n##ς\n我\n##我\n"
    "한\n##ᄒ\nᄒ\n##ᅡ\n##ᆫ\n\xF0\x9F\x98\x80\n";

// Unicode Table 3-7 (well-formed UTF-8 byte sequences), written independently of tokenizer.c.
static int utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b <= 0x7F) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b == 0xE0) {
            need = 2, lo = 0xA0;
        } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
            need = 2;
        } else if (b == 0xED) {
            need = 2, hi = 0x9F;
        } else if (b == 0xF0) {
            need = 3, lo = 0x90;
        } else if (b >= 0xF1 && b <= 0xF3) {
            need = 3;
        } else if (b == 0xF4) {
            need = 3, hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i - 1 < need) return 0; // truncated sequence
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(scratch_dir, sizeof(scratch_dir), "%s/tijepa_fuzz_tok_%d", base, (int)getpid());
    char path[300], err[512];
    snprintf(path, sizeof(path), "%s.vocab", scratch_dir);
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(VOCAB, f);
    CHECK(fclose(f) == 0);
    tok = tokenizer_load(path, err, sizeof(err));
    if (!tok) fprintf(stderr, "%s\n", err);
    CHECK(tok);
    unlink(path);
    return 0;
}

static void check_encoding(const Tokenizer *t, const char *text, int max_len, int32_t *ids,
                           int *n_out) {
    uint8_t valid[80];
    char err[512] = "";
    int n_unk = -7;
    int n = tokenizer_encode(t, text, ids, valid, max_len, &n_unk, err, sizeof(err));
    int ok = utf8_ok((const uint8_t *)text, strlen(text));
    *n_out = n;
    if (!ok) {
        CHECK(n == -1);
        CHECK(strstr(err, "UTF-8"));
        return;
    }
    CHECK(n >= 2 && n <= max_len);
    CHECK(ids[0] == tokenizer_cls_id(t));
    CHECK(ids[n - 1] == tokenizer_sep_id(t));
    int unk = 0;
    for (int i = 0; i < max_len; i++) {
        CHECK(valid[i] == (i < n));
        CHECK(ids[i] >= 0 && ids[i] < tokenizer_vocab_size(t));
        if (i >= n) CHECK(ids[i] == tokenizer_pad_id(t));
        if (i > 0 && i < n - 1) {
            CHECK(ids[i] != tokenizer_cls_id(t) && ids[i] != tokenizer_sep_id(t));
            CHECK(ids[i] != tokenizer_pad_id(t));
        }
        unk += i < n && ids[i] == tokenizer_unk_id(t);
    }
    CHECK(unk == n_unk);
}

// A vocabulary built from the text must cover it: no [UNK] (unless a word is over 100 chars).
static void check_builder(const char *text) {
    VocabBuilder *vb = vocab_builder_new();
    CHECK(vb);
    vocab_builder_add(vb, text);
    VocabBuilderStats st;
    vocab_builder_stats(vb, &st);
    char path[300], err[512];
    snprintf(path, sizeof(path), "%s.built", scratch_dir);
    CHECK(vocab_builder_write(vb, path, 1 << 20, err, sizeof(err)) == 0);
    vocab_builder_free(vb);
    Tokenizer *built = tokenizer_load(path, err, sizeof(err));
    unlink(path);
    if (!built) fprintf(stderr, "%s\n", err);
    CHECK(built);
    int32_t ids[80];
    uint8_t valid[80];
    int n_unk = -1;
    int n = tokenizer_encode(built, text, ids, valid, 80, &n_unk, err, sizeof(err));
    if (st.invalid_utf8) {
        CHECK(n == -1);
    } else {
        CHECK(n >= 2);
        if (st.long_words == 0) CHECK(n_unk == 0);
    }
    tokenizer_free(built);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int max_len = 2 + data[0] % 64;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    int32_t ids[80], full[80];
    int n, n_full;
    check_encoding(tok, text, max_len, ids, &n);
    check_encoding(tok, text, 78, full, &n_full);
    if (n > 0) { // the shorter encoding is a prefix of the longer one, then [SEP]
        CHECK(n_full >= n);
        for (int i = 0; i < n - 1; i++)
            CHECK(ids[i] == full[i]);
        if (n < max_len) CHECK(n == n_full);
    }
    if ((data[0] & 0xC0) == 0xC0) check_builder(text);
    free(text);
    return 0;
}
