// io/ — what this folder offers: everything between bytes on disk and tensors.
//
//   1. configs: INI files with `--set section.key=value` overrides;
//   2. images: PNG/JPEG decoding (libpng, libjpeg-turbo), resize + normalise, PNG encoding;
//   3. text: the WordPiece tokenizer (BERT vocab.txt) and a vocabulary builder;
//   4. shards: WebDataset-style tar reading and writing (libarchive), shard specs,
//      the streaming pipeline with its cursor, the synthetic dataset, importers, statistics.
//
// Errors: functions that can fail return 0 on success and non-zero on failure, and write a
// message naming the file (and the shard and key, for samples) and the cause into err[errlen].
#ifndef TIJEPA_IO_H
#define TIJEPA_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// ---------------------------------------------------------------------------------------------
// 1. Configs
// ---------------------------------------------------------------------------------------------

// An ordered set of (section, key, value) strings. Lines: `[section]`, `key = value`,
// comments starting with '#' or ';', blank lines. Keys are unique per section; a later value
// replaces an earlier one. Values are kept as text; typed getters convert and report errors.
typedef struct TjConfig TjConfig;

TjConfig *config_new(void);
void config_free(TjConfig *cfg);
// Reads an INI file; errors name the file and line.
int config_load_file(TjConfig *cfg, const char *path, char *err, size_t errlen);
// Applies one override "section.key=value" (as given to --set).
int config_set_override(TjConfig *cfg, const char *assignment, char *err, size_t errlen);
void config_set(TjConfig *cfg, const char *section, const char *key, const char *value);
// The value, or NULL when absent.
const char *config_get(const TjConfig *cfg, const char *section, const char *key);
// Typed getters: absent → *out = default and return 0; present but malformed → error naming
// section.key and the value, return non-zero.
int config_get_int(const TjConfig *cfg, const char *section, const char *key, long def, long *out,
                   char *err, size_t errlen);
int config_get_double(const TjConfig *cfg, const char *section, const char *key, double def,
                      double *out, char *err, size_t errlen);
// Booleans: true/false/yes/no/on/off/1/0.
int config_get_bool(const TjConfig *cfg, const char *section, const char *key, int def, int *out,
                    char *err, size_t errlen);
// The whole config as INI text (sections in first-seen order), malloc'd; caller frees.
char *config_to_ini(const TjConfig *cfg);

// ---------------------------------------------------------------------------------------------
// 2. Images
// ---------------------------------------------------------------------------------------------

// A decoded image: 8-bit RGB, interleaved, [height, width, 3].
typedef struct {
    int width, height;
    uint8_t *rgb;
} ImageU8;

// Decodes PNG or JPEG bytes (detected by signature, not by name) into RGB. Grey, grey+alpha,
// palette, RGBA and 16-bit inputs become 8-bit RGB (alpha dropped, composited on black is NOT
// done: alpha is ignored). Images with width·height > max_pixels are refused before their
// pixel data is decoded (decompression bombs). `what` names the input in messages.
int image_decode(ImageU8 *out, const uint8_t *bytes, size_t n, size_t max_pixels,
                 const char *what, char *err, size_t errlen);
void image_free(ImageU8 *img);
// Resizes (bilinear, align-corners false, as PyTorch's interpolate with antialias off) to
// size×size and normalises per channel: out [3, size, size] = (v/255 − mean[c]) / std[c].
void image_to_tensor(float *out, const ImageU8 *img, int size, const float mean[3],
                     const float std[3]);
// ImageNet statistics, the default normalisation.
extern const float IMAGE_MEAN_IMAGENET[3], IMAGE_STD_IMAGENET[3];
// Encodes RGB [height, width, 3] as PNG into a malloc'd buffer.
int png_encode(uint8_t **out, size_t *out_len, const uint8_t *rgb, int width, int height,
               char *err, size_t errlen);

// ---------------------------------------------------------------------------------------------
// 3. Text
// ---------------------------------------------------------------------------------------------

// BERT WordPiece tokenizer: lower-casing, accent stripping (NFD, drop combining marks),
// whitespace and punctuation split (CJK characters as single tokens), greedy longest-match
// with "##" continuations (max 100 chars per word, else [UNK]), [CLS] … [SEP] then [PAD].
typedef struct Tokenizer Tokenizer;

Tokenizer *tokenizer_load(const char *vocab_path, char *err, size_t errlen);
void tokenizer_free(Tokenizer *tok);
int tokenizer_vocab_size(const Tokenizer *tok);
int tokenizer_pad_id(const Tokenizer *tok);
int tokenizer_unk_id(const Tokenizer *tok);
// Encodes text into ids[max_len] and valid[max_len] (1 for real tokens incl. [CLS]/[SEP], 0 for
// [PAD]), truncating to max_len (keeping [CLS] first and [SEP] last). Returns the number of
// valid tokens, or −1 when text is not valid UTF-8 (message in err). *n_unk (may be NULL)
// receives the number of [UNK] tokens produced.
int tokenizer_encode(const Tokenizer *tok, const char *text, int32_t *ids, uint8_t *valid,
                     int max_len, int *n_unk, char *err, size_t errlen);
// Builds a WordPiece vocabulary of at most `size` entries from captions (the special tokens,
// then single characters, then the most frequent words and "##" pieces) and writes vocab.txt.
typedef struct VocabBuilder VocabBuilder;
VocabBuilder *vocab_builder_new(void);
void vocab_builder_add(VocabBuilder *vb, const char *caption);
int vocab_builder_write(VocabBuilder *vb, const char *path, int size, char *err, size_t errlen);
void vocab_builder_free(VocabBuilder *vb);

// ---------------------------------------------------------------------------------------------
// 4. Shards and streaming
// ---------------------------------------------------------------------------------------------
// (tar reading/writing, shard specs, the pipeline, synth, importers, stats: see below)

#endif // TIJEPA_IO_H
