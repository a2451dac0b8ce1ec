// io/ private: the Unicode tables (generated into unicode_tables.c by gen_unicode_tables.py)
// and BERT's BasicTokenizer, shared by the WordPiece tokenizer and the vocabulary builder.
// Not part of the public interface (io.h).
#ifndef TIJEPA_TEXT_INTERNAL_H
#define TIJEPA_TEXT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

// Character classes (flags of uni_ranges).
enum {
    UNI_WS = 1,        // whitespace: splits words
    UNI_DROP = 2,      // removed by cleaning (control, format, unassigned, NUL, U+FFFD)
    UNI_PUNCT = 4,     // punctuation: a word of its own
    UNI_CJK = 8,       // CJK ideograph: a word of its own
    UNI_CASED = 16,    // cased and not case-ignorable (final-sigma context)
    UNI_CASE_IGN = 32, // case-ignorable (skipped by the final-sigma context)
};

typedef struct {
    uint32_t lo, hi;
    uint32_t flags;
} UniRange;

// One character's lower-cased, accent-stripped form: uni_fold_pool[offset .. offset+len).
typedef struct {
    uint32_t cp;
    uint16_t offset;
    uint8_t len;
} UniFold;

#define UNI_FOLD_MAX 4 // longest fold output, in code points

extern const char UNI_VERSION[];
extern const uint8_t uni_ascii_flags[128];
extern const UniRange uni_ranges[];
extern const int uni_ranges_count;
extern const UniFold uni_fold[];
extern const int uni_fold_count;
extern const uint32_t uni_fold_pool[];

// WordPiece gives [UNK] for words longer than this many characters (after folding).
#define BASIC_WORD_MAX_CHARS 100
#define BASIC_WORD_MAX_BYTES (BASIC_WORD_MAX_CHARS * 4)

// Receives one word: its folded UTF-8 bytes (not NUL-terminated) and character count.
// A word longer than BASIC_WORD_MAX_CHARS arrives as word == NULL, nbytes == 0.
// Returning non-zero stops the tokenization early.
typedef int (*BasicWordFn)(void *ctx, const char *word, int nbytes, int nchars);

// BERT uncased BasicTokenizer: drops control characters, NUL and U+FFFD; splits on
// whitespace; makes each CJK ideograph a word; lower-cases (with Greek final sigma, as
// Python's str.lower()); strips accents (NFD, then drops Mn marks); makes each punctuation
// character a word. Calls emit for each word in order. Returns 0, or -1 when text is not
// valid UTF-8 (message with the byte offset in err; emit is not called at all then).
int basic_tokenize(const char *text, BasicWordFn emit, void *ctx, char *err, size_t errlen);

// Checks that s[0..n) is valid UTF-8 (no overlongs, surrogates or code points above
// U+10FFFF). Returns the offset of the first bad byte, or -1 when valid.
long utf8_first_invalid(const char *s, size_t n);

#endif // TIJEPA_TEXT_INTERNAL_H
