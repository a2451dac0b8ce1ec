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

// An ordered set of (section, key, value) strings. Lines: `[section]`, `key = value`, blank
// lines, comments: a line starting with '#' or ';', or the rest of a line from a '#' or ';'
// that follows a blank ("lr = 1e-3  # peak"). Section names: letters, digits, '_', '-', '.';
// keys: letters, digits, '_', '-'. Values are trimmed; a value in double quotes keeps blanks,
// '#' and ';' and understands \\ \" \n \t \r. Keys are unique per section; a later value
// replaces an earlier one (keeping its position). Values are kept as text; typed getters
// convert and report errors naming section.key, the value and where it was set.
typedef struct TjConfig TjConfig;

// Out of memory inside config functions aborts (configs are small).
TjConfig *config_new(void);
void config_free(TjConfig *cfg);
// Reads an INI file and merges it into cfg; errors name the file and line, and leave cfg as it
// was.
int config_load_file(TjConfig *cfg, const char *path, char *err, size_t errlen);
// The same for INI text held in memory (e.g. the config stored in a checkpoint); `name` is
// used in messages in place of a file name.
int config_load_string(TjConfig *cfg, const char *text, const char *name, char *err, size_t errlen);
// Applies one override "section.key=value" (as given to --set): the section is everything
// before the last '.' that precedes '='; the value is taken literally, blanks trimmed.
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
// The whole config as INI text (sections in first-seen order, keys in insertion order, values
// quoted when needed), malloc'd; caller frees. Loading it gives the same entries.
char *config_to_ini(const TjConfig *cfg);

// ---------------------------------------------------------------------------------------------
// 2. Images
// ---------------------------------------------------------------------------------------------

// A decoded image: 8-bit RGB, interleaved, [height, width, 3].
typedef struct {
    int width, height;
    uint8_t *rgb;
} ImageU8;

// Decodes PNG or JPEG bytes (detected by signature, not by name) into RGB (out->rgb malloc'd).
// PNG: grey, grey+alpha, palette (tRNS ignored), RGB, RGBA, 1-16 bits, interlaced; 16-bit
// samples keep their high byte (as PIL does); alpha is simply dropped. JPEG: YCbCr/RGB and
// greyscale; CMYK/YCCK are refused. Truncated or corrupt data (bad CRC in a critical chunk,
// JPEG "premature end" or corrupt-data warnings) is an error, never a partly grey image.
// Images with width·height > max_pixels are refused from the header, before any pixel
// memory is allocated (decompression bombs); max_pixels 0 means no limit. `what` names the
// input in messages. On error *out is zeroed.
int image_decode(ImageU8 *out, const uint8_t *bytes, size_t n, size_t max_pixels, const char *what,
                 char *err, size_t errlen);
void image_free(ImageU8 *img);
// Resizes to size×size and normalises per channel: out [3, size, size] = (v/255 − mean[c]) /
// std[c]. Bilinear with align_corners=False, no antialias (= torch.nn.functional.interpolate
// (mode="bilinear", align_corners=False, antialias=False) on the float image): output pixel o
// samples source coordinate max(0, (o + 0.5)·in/size − 0.5) and interpolates its two neighbours,
// the upper one clamped to the last pixel. The aspect ratio is not kept (no crop).
void image_to_tensor(float *out, const ImageU8 *img, int size, const float mean[3],
                     const float std[3]);
// ImageNet statistics, the default normalisation.
extern const float IMAGE_MEAN_IMAGENET[3], IMAGE_STD_IMAGENET[3];
// Encodes RGB [height, width, 3] as an 8-bit RGB PNG into a malloc'd buffer (*out; caller
// frees). Speed over size: zlib level 2, memLevel 5, no row filter — several times faster to
// encode and up to 2× faster to decode than libpng's defaults on 32-64 px images; flat
// synthetic images still compress well (photos would compress less well than with filters).
int png_encode(uint8_t **out, size_t *out_len, const uint8_t *rgb, int width, int height, char *err,
               size_t errlen);

// ---------------------------------------------------------------------------------------------
// 3. Text
// ---------------------------------------------------------------------------------------------

// BERT uncased WordPiece tokenizer, as Google's BERT tokenization.py: clean (drop NUL, U+FFFD
// and control/format characters, i.e. categories C* except tab/newline/CR), split on white
// space, CJK ideographs as single tokens, lower-case (Python str.lower(), final sigma too),
// strip accents (NFD, drop Mn marks), split off each punctuation character (Unicode P* and the
// ASCII symbols), then greedy longest-match-first WordPiece with "##" continuations (a word of
// more than 100 characters, or one that cannot be covered, is one [UNK]); [CLS] … [SEP] then
// [PAD]. Special tokens written in the text ("[CLS]") are ordinary text. Unicode tables come
// from io/gen_unicode_tables.py. Text is NUL-terminated (an embedded NUL ends it).
typedef struct Tokenizer Tokenizer;

// Reads a BERT vocab.txt: one token per line, id = line number (0-based), "\r\n" accepted; a
// repeated token keeps its last id. Missing [CLS]/[SEP]/[PAD]/[UNK] or invalid UTF-8: error
// naming the file.
Tokenizer *tokenizer_load(const char *vocab_path, char *err, size_t errlen);
void tokenizer_free(Tokenizer *tok);
int tokenizer_vocab_size(const Tokenizer *tok);
int tokenizer_pad_id(const Tokenizer *tok);
int tokenizer_unk_id(const Tokenizer *tok);
int tokenizer_cls_id(const Tokenizer *tok);
int tokenizer_sep_id(const Tokenizer *tok);
// The token text of an id (NUL-terminated, owned by tok), NULL when out of range.
const char *tokenizer_token(const Tokenizer *tok, int id);
// Encodes text into ids[max_len] and valid[max_len] (1 for real tokens incl. [CLS]/[SEP], 0 for
// [PAD]; valid may be NULL), truncating to max_len (keeping [CLS] first and [SEP] last).
// Returns the number of valid tokens (≥ 2), or −1 when text is not valid UTF-8 or max_len < 2
// (message in err). *n_unk (may be NULL) receives the number of [UNK] tokens in ids.
// Allocates nothing; safe to call from several threads on one Tokenizer.
int tokenizer_encode(const Tokenizer *tok, const char *text, int32_t *ids, uint8_t *valid,
                     int max_len, int *n_unk, char *err, size_t errlen);
// Builds a WordPiece vocabulary of at most `size` entries from captions and writes vocab.txt:
// [PAD] [UNK] [CLS] [SEP] [MASK] (so [PAD] is id 0), then every character seen, then the same
// characters as "##" continuations (both most frequent first), then whole words (split as the
// tokenizer splits them) by descending frequency; ties in byte order, so the output is
// deterministic. Any caption added then tokenizes without [UNK] when size keeps every
// character (5 + 2·distinct_chars entries). Captions that are not valid UTF-8 are skipped
// and counted (vocab_builder_stats).
typedef struct VocabBuilder VocabBuilder;
VocabBuilder *vocab_builder_new(void);
void vocab_builder_add(VocabBuilder *vb, const char *caption);
int vocab_builder_write(VocabBuilder *vb, const char *path, int size, char *err, size_t errlen);
void vocab_builder_free(VocabBuilder *vb);
typedef struct {
    long captions;       // captions added
    long invalid_utf8;   // of which skipped: not valid UTF-8
    long long_words;     // words over 100 characters (always [UNK]), not counted
    long distinct_chars; // characters seen
    long distinct_words; // distinct words of two or more characters
} VocabBuilderStats;
void vocab_builder_stats(const VocabBuilder *vb, VocabBuilderStats *out);

// ---------------------------------------------------------------------------------------------
// 4. Shards and streaming
// ---------------------------------------------------------------------------------------------
// Shards follow the WebDataset convention (see docs/data.md): a tar (optionally gzip) file whose
// members are grouped into samples by key = directory prefix + file name up to its FIRST dot;
// the rest of the name, lower-cased, is the extension ("a.b.TXT" → key "a", extension "b.txt").
// Only adjacent members group; a repeated extension starts a new sample with the same key (as
// webdataset does). Extensions used: png/jpg/jpeg (image), txt (caption), json (metadata, kept
// as text), cls (integer label), and in feature shards img.f32, txt.f32, valid.u8 (see "Feature
// shards"); other extensions are ignored and counted; members that are not
// regular files, names without an extension, and members whose file name or key starts and
// ends with "__" (webdataset metadata) are skipped.

// Why a sample cannot be used. The first group is found by cheap checks that every rank runs on
// every sample (signatures, header sizes, UTF-8, labels) so that all ranks agree on the stream;
// SAMPLE_DECODE_FAILED is found only by the rank that decodes the sample (see the pipeline).
typedef enum {
    SAMPLE_OK = 0,
    SAMPLE_NO_IMAGE,      // no .png/.jpg/.jpeg member
    SAMPLE_NOT_IMAGE,     // image member whose bytes are neither PNG nor JPEG
    SAMPLE_BAD_HEADER,    // PNG/JPEG signature but the header (size) cannot be read
    SAMPLE_TOO_LARGE,     // width·height above the pixel limit
    SAMPLE_NO_CAPTION,    // no .txt member
    SAMPLE_BAD_UTF8,      // .txt not valid UTF-8 (or holds a NUL byte)
    SAMPLE_EMPTY_CAPTION, // .txt empty or only white space
    SAMPLE_BAD_LABEL,     // .cls not a decimal integer in [0, 2^31)
    SAMPLE_DECODE_FAILED, // image data failed to decode (or tokenise) in the pipeline
    SAMPLE_PROBLEM_COUNT
} SampleProblem;
// Short snake_case name of a problem ("bad_utf8"), for logs and JSON.
const char *sample_problem_name(SampleProblem p);

// One sample as read from a shard. Pointers belong to the reader and stay valid until the next
// tar_reader_next or tar_reader_close. Text members are also NUL-terminated (len excludes it).
typedef struct {
    const char *shard;    // path (or name) of the shard
    const char *key;      // sample key
    const uint8_t *image; // first image member, NULL when none
    size_t image_len;
    const char *image_ext; // "png", "jpg" or "jpeg" (lower-cased), NULL when no image
    const char *caption;   // .txt bytes, NULL when none
    size_t caption_len;
    const char *json; // .json text, NULL when none
    size_t json_len;
    const char *cls; // .cls text, NULL when none
    size_t cls_len;
    int n_members; // members grouped into this sample (ignored ones included)
    int n_ignored; // members with an unused extension (or a second image)
    // Feature members (feature shards written by `tijepa encode`; see "Feature shards" below),
    // raw bytes, NULL when absent.
    const uint8_t *feat_img, *feat_txt, *feat_valid;
    size_t feat_img_len, feat_txt_len, feat_valid_len;
} TarSample;

// A .cls label: a decimal integer in [0, 2^31) with optional white space and a leading '+'.
// 1 and *out set when valid, 0 otherwise.
int label_parse(const char *text, size_t n, int *out);

// Reads the sizes from a PNG (IHDR) or JPEG (SOFn) header without decoding pixels.
// Returns SAMPLE_OK, SAMPLE_NOT_IMAGE or SAMPLE_BAD_HEADER.
SampleProblem image_probe_header(const uint8_t *bytes, size_t n, int *width, int *height);
// The cheap checks of one sample, in the order of SampleProblem. *label receives the .cls value
// or −1; *width/*height the image size (may be NULL). On a problem, a short cause goes to why.
SampleProblem sample_check(const TarSample *s, size_t max_pixels, int *label, int *width,
                           int *height, char *why, size_t whylen);
// 1 when bytes[0..n) is valid UTF-8 with no NUL byte (overlongs, surrogates, > U+10FFFF refused).
int utf8_valid(const char *bytes, size_t n);

// Streaming reader of one shard: plain tar or gzip-compressed tar, detected from the first
// bytes. Gzip is inflated with zlib, which checks each member's CRC-32 and length, so corrupt
// data is an error, never a quiet early end; a tar that ends without its end-of-archive blocks
// (cut at a member boundary) counts as damaged as well.
typedef struct TarReader TarReader;
// NULL (message in err) when the file cannot be opened or is neither tar nor gzip.
TarReader *tar_reader_open(const char *path, char *err, size_t errlen);
// Reads a shard held in memory (not copied: data must outlive the reader). name is for messages.
TarReader *tar_reader_open_memory(const void *data, size_t n, const char *name, char *err,
                                  size_t errlen);
// Next sample: 1 = sample in *s, 0 = end of shard, −1 = the shard is damaged from here on
// (truncated tar, corrupt gzip, not a tar; message names the shard): the sample being grouped
// is dropped and later calls return −1 again. A member larger than TAR_MEMBER_MAX is not kept:
// an image member then has image == NULL and image_len = its size (sample_check: too large),
// other members count as ignored.
#define TAR_MEMBER_MAX ((size_t)256 << 20)
int tar_reader_next(TarReader *r, TarSample *s, char *err, size_t errlen);
// Members skipped because of their name ("__*__", no extension) or type (directories, links).
int64_t tar_reader_skipped_members(const TarReader *r);
void tar_reader_close(TarReader *r);

// A sample to write: members written in sorted extension order (cls, image, json, txt), as
// webdataset's TarWriter does. NULL/zero fields are left out; has_label writes "<label>" as .cls.
typedef struct {
    const char *key;
    const uint8_t *image;
    size_t image_len;
    const char *image_ext; // "png", "jpg" or "jpeg"
    const char *caption;   // NUL-terminated
    int has_label;
    int label;
    const char *json; // NUL-terminated
} TarSampleOut;

// Deterministic tar writer (libarchive, POSIX pax-restricted = ustar unless a name needs pax):
// mtime 0, uid/gid 0, no user/group names, mode 0644, members in the order written. A path
// ending in ".gz" or ".tgz" is gzip-compressed (no timestamp in the gzip header).
typedef struct TarWriter TarWriter;
TarWriter *tar_writer_open(const char *path, char *err, size_t errlen);
int tar_writer_add(TarWriter *w, const char *name, const void *data, size_t n, char *err,
                   size_t errlen);
int tar_writer_add_sample(TarWriter *w, const TarSampleOut *s, char *err, size_t errlen);
// Finishes and frees the writer (also on error); returns non-zero when the file is incomplete.
int tar_writer_close(TarWriter *w, char *err, size_t errlen);

// Writes samples into consecutive shards of at most per_shard samples named by a printf
// pattern with exactly one integer conversion ("out/train-%06d.tar"; flags '0' and a width
// only), numbered from 0. Shards are created when their first sample arrives.
typedef struct ShardWriter ShardWriter;
// 0 when the pattern is valid, else a message.
int shard_pattern_check(const char *pattern, char *err, size_t errlen);
ShardWriter *shard_writer_open(const char *pattern, int64_t per_shard, char *err, size_t errlen);
int shard_writer_add(ShardWriter *w, const TarSampleOut *s, char *err, size_t errlen);
// Closes the last shard, frees the writer; *n_shards (may be NULL) gets the number written.
int shard_writer_close(ShardWriter *w, int *n_shards, char *err, size_t errlen);

// Shard specs. A spec is one or more parts separated by "::"; each part is
//   - a brace pattern: "train-{000000..000127}.tar" (ranges, zero-padded to the wider bound when
//     either bound has a leading zero; also "{a,b,c}"; several braces expand left to right);
//     every expanded path must exist (clear error naming the first missing one);
//   - a glob ("data/*.tar"), which must match at least one file;
//   - a directory: its *.tar, *.tar.gz and *.tgz files (not recursive), sorted by name;
//   - a shard file (ends in .tar/.tar.gz/.tgz, or starts with a tar or gzip signature);
//   - any other file: a list of shard paths, one per line, '#' comments and blank lines ignored,
//     relative paths taken from the list's folder, each of which must exist.
// The result is in spec order (duplicates kept) and is never empty on success.
typedef struct {
    int n;
    char **paths;
} ShardList;
int shard_spec_expand(ShardList *out, const char *spec, char *err, size_t errlen);
void shard_list_free(ShardList *list);

// ---- Feature shards ----
//
// `tijepa encode` runs the frozen encoders of a paper-mode model once over pixel shards and writes
// feature shards: one output shard per input shard, holding the same usable samples in the same
// order, each with the members
//   KEY.img.f32    s = the frozen image encoder's full-image tokens, float32 little-endian [P, De]
//   KEY.txt.f32    u = the frozen text encoder's output, float32 little-endian [L, Dt]
//   KEY.valid.u8   the caption's key-padding mask [L], bytes 0 or 1
// and the source's KEY.txt, KEY.cls and KEY.json kept as they were. There is no shape header: the
// reader knows P, De, L and Dt from the training config and checks every member's exact byte
// size against them (and that features are finite and the mask is 0/1), so features made with
// another model cannot be read silently. docs/encoders.md, "Feature shards".
#define FEATURE_EXT_IMG "img.f32"
#define FEATURE_EXT_TXT "txt.f32"
#define FEATURE_EXT_VALID "valid.u8"
typedef struct {
    int img_tokens, img_dim; // P = (image_size / patch)², De = model.img_dim
    int txt_len, txt_dim;    // L = model.txt_len, Dt = model.txt_dim
} FeatureShape;
// The cheap checks of a feature sample: the three members present with exactly P·De·4, L·Dt·4 and
// L bytes, features finite, mask bytes 0 or 1, .cls (when present) a label. 0 when usable (*label
// the .cls value or −1), −1 with a cause naming the member, both sizes and the config keys in why.
int feature_sample_check(const TarSample *s, const FeatureShape *fs, int *label, char *why,
                         size_t whylen);
// float32 ↔ little-endian bytes (a copy on little-endian hosts, a byte swap elsewhere).
void f32_to_le(uint8_t *dst, const float *src, size_t n);
void f32_from_le(float *dst, const uint8_t *src, size_t n);

// ---- The streaming pipeline ----
//
// Each epoch e: the shard list is permuted by an RNG seeded by (seed, e); samples pass the cheap
// checks above (failures counted and skipped, one warning line each, rate-limited) and go
// through a shuffle buffer of `shuffle_buffer` raw (undecoded) samples seeded by (seed, e):
// once full, each new sample replaces a uniformly chosen one, which is emitted; at the end of
// the epoch the rest is emitted in random order (samples never cross epochs). Consecutive
// emitted samples form global batches of G = global_batch; the last incomplete one of an epoch is
// dropped; epochs go on forever.
//
// split = sample: every rank reads every shard in the same order and runs the same shuffle, so
//   all ranks see the same global batches whatever the number of ranks; rank r decodes only
//   positions [r·b, (r+1)·b) of each global batch, b = G / world (the raw bytes of the others
//   are read, never decoded).
// split = shard: after the epoch's permutation, shard i goes to rank i mod world; each rank
//   shuffles its own samples (RNG seeded by (seed, e, rank)) and forms local batches of b. The
//   number of steps of epoch e is min over ranks of floor(usable samples of the rank's shards / b),
//   which every rank computes alone from a table of usable samples per shard built by one pass
//   over all shards at open (no communication, no rank waits); a rank's extra samples are dropped.
//
// Decoding = image_decode + image_to_tensor (bilinear resize to image_size, normalised with
// mean/std) + tokenizer_encode. A sample whose decode fails after passing the cheap checks is
// replaced by the next sample of its group (the global batch in sample mode, the local batch in
// shard mode; positions p+1, p+2, ... wrapping around) that decodes — the rank holds that
// group's raw bytes, so the result still does not depend on the number of ranks. The failure is
// counted (SAMPLE_DECODE_FAILED, `substituted`) and warned; a group in which nothing decodes is
// an error. A shard that turns out damaged mid-stream (truncated, corrupt gzip) is warned about
// and the rest of it skipped; an epoch that yields no complete global batch is an error, never a
// hang. In sample mode, problems every rank sees alike are printed by rank 0 only.
//
// Cost: a rank holds shuffle_buffer + G raw samples (+ prefetch + 1 decoded batches); in sample
// mode each rank reads and gunzips every shard (cheap next to decoding, which it does for 1/world
// of the samples); shard mode reads each shard on one rank only, plus the counting pass at open.
typedef enum { SPLIT_SAMPLE = 0, SPLIT_SHARD = 1 } SplitMode;
// "sample" / "shard" → mode; non-zero on anything else.
int split_mode_parse(const char *text, SplitMode *out);

typedef struct {
    const char *spec; // shard spec (see shard_spec_expand)
    uint64_t seed;
    int image_size;             // S: output images are [3, S, S]
    int max_text_len;           // L: tokens per caption, [CLS] and [SEP] included
    const Tokenizer *tokenizer; // required; not owned
    SplitMode split;
    int rank, world;
    int global_batch;      // G, divisible by world
    int shuffle_buffer;    // raw samples held for shuffling; 0 or 1 = file order
    int prefetch;          // batches decoded ahead by a thread; 0 = decode in stream_next
    size_t max_pixels;     // images with more pixels are skipped (decompression bombs)
    float mean[3], std[3]; // normalisation: (v/255 − mean[c]) / std[c]
    int warn_limit;        // warning lines per problem kind; 0 = silent
    FILE *log;             // warnings; NULL = stderr
    // Feature shards instead of pixels (training with data.features = true): samples are checked
    // with feature_sample_check against feature_shape instead of sample_check, and a batch holds
    // img_features, txt_features and valid instead of images and tokens (no decoding, no
    // tokenizer needed). Everything else — shard order, shuffle, batches, split modes, cursor —
    // is the pixel stream's, so feature shards from `tijepa encode` give the same batches as
    // their pixel shards on the same seed.
    int features;
    FeatureShape feature_shape;
} StreamOptions;
// Defaults: seed 0, image_size 32, max_text_len 32, split sample, rank 0, world 1, global_batch
// 16, shuffle_buffer 1000, prefetch 2, max_pixels 1<<26, ImageNet mean/std, warn_limit 10.
void stream_options_default(StreamOptions *o);

// Counts kept by a stream, for logging. Reading counts (everything but the decode group) run
// ahead of training by the prefetch depth; each batch carries the counts at its completion.
typedef struct {
    int64_t shards_opened;                 // shard passes started (a shard counts once per epoch)
    int64_t shards_damaged;                // truncated / corrupt: rest of the shard skipped
    int64_t shards_empty;                  // no sample at all
    int64_t samples_read;                  // samples grouped from members
    int64_t samples_usable;                // passed the cheap checks
    int64_t skipped[SAMPLE_PROBLEM_COUNT]; // by cause ([SAMPLE_OK] unused)
    int64_t members_ignored;               // unused extensions, second images
    int64_t members_skipped;               // "__*__", no extension, not regular files
    int64_t samples_decoded;               // decoded by this rank
    int64_t substituted;  // positions filled by a substitute after a decode failure
    int64_t tokens;       // valid tokens produced by this rank ([CLS]/[SEP] included)
    int64_t unk_tokens;   // of which [UNK]
    int64_t batches;      // batches delivered
    int64_t bad_features; // feature stream: samples failing feature_sample_check (skipped)
} StreamCounters;
// Total of skipped[] and bad_features (the samples the stream left out).
int64_t stream_counters_skipped(const StreamCounters *c);

// Position in the stream: identical on every rank. Restoring it yields exactly the batches an
// uninterrupted stream would have yielded next (the stream fast-forwards through the epoch,
// reading but not decoding). In sample mode it may be restored with another number of ranks
// (elastic resume); in shard mode the world size must match. It corresponds to the (epoch,
// shard, sample) position of the design: the shard and sample follow from (seed, epoch,
// batch_in_epoch) by replaying the epoch.
typedef struct {
    int64_t epoch;          // current epoch
    int64_t batch_in_epoch; // global batches already delivered in that epoch
    int64_t step;           // global batches delivered since the start
    // Checked when restoring (a mismatch is a clear error): they define the sample order.
    int64_t split, global_batch, world, seed, num_shards, shuffle_buffer;
} StreamCursor;
#define STREAM_CURSOR_WORDS 10
// As int64 words (a version tag first), for checkpoints.
void stream_cursor_pack(int64_t out[STREAM_CURSOR_WORDS], const StreamCursor *c);
int stream_cursor_unpack(StreamCursor *c, const int64_t in[STREAM_CURSOR_WORDS], char *err,
                         size_t errlen);

// A batch as handed to the trainer: preallocated by the stream and reused (no per-step
// allocation); valid until the next stream_next or stream_close.
typedef struct {
    int n;                   // b = global_batch / world
    int image_size;          // S
    int max_text_len;        // L
    float *images;           // [n, 3, S, S], normalised
    int32_t *tokens;         // [n, L]
    uint8_t *valid;          // [n, L], 1 for real tokens, 0 for [PAD]
    int32_t *labels;         // [n], −1 when the sample has no .cls
    int64_t *global_index;   // [n], position in the global batch: rank·n + j
    const char **keys;       // [n], sample keys
    int64_t epoch;           // epoch of the batch
    int64_t batch_in_epoch;  // index of the (global) batch within its epoch
    int64_t step;            // index of the (global) batch since the start (0-based)
    StreamCounters counters; // at the completion of this batch
    // Feature streams only (StreamOptions.features; then images and tokens are NULL):
    float *img_features; // [n, P, De]
    float *txt_features; // [n, L, Dt]
} Batch;

typedef struct Stream Stream;
// Expands the spec (missing shards are errors here, before training starts), checks options,
// builds the shard-size table in shard mode, restores `resume` when not NULL (fast-forward) and
// starts the prefetch thread.
Stream *stream_open(const StreamOptions *o, const StreamCursor *resume, char *err, size_t errlen);
// The next batch. *wait_ms (may be NULL) receives the time spent waiting for it (data_wait_ms).
// Non-zero on error (message in err); the stream then only returns that error.
int stream_next(Stream *s, const Batch **batch, double *wait_ms, char *err, size_t errlen);
// The cursor after the last batch returned by stream_next (or the restored one).
void stream_cursor(const Stream *s, StreamCursor *out);
int stream_num_shards(const Stream *s);
// Stops the prefetch thread, joins it and frees everything. NULL is fine.
void stream_close(Stream *s);

// ---- The embedded synthetic dataset (`tijepa synth`) ----
//
// Images of 1–3 objects placed in distinct cells of a 3×3 layout; each object has one of
// SYNTH_SHAPES shapes, SYNTH_COLOURS colours and two sizes, on a grey background. Captions name
// the objects with varied wording and, for 2–3 objects, a spatial relation ("a red circle above
// a small blue square"). The label (.cls) is the colour index of the largest object (the first
// on ties). Everything follows from (seed, split, index), so shards are bit-identical for the
// same arguments and any sample can be regenerated alone.
enum { SYNTH_SHAPES = 6, SYNTH_COLOURS = 8, SYNTH_MAX_OBJECTS = 3 };
extern const char *const SYNTH_SHAPE_NAMES[SYNTH_SHAPES];
extern const char *const SYNTH_COLOUR_NAMES[SYNTH_COLOURS];
extern const uint8_t SYNTH_COLOUR_RGB[SYNTH_COLOURS][3];
typedef struct {
    int shape, colour, large, row, col; // row, col in 0..2
} SynthObject;
typedef struct {
    int n_objects;
    SynthObject objects[SYNTH_MAX_OBJECTS];
    int label; // colour of the largest object
    char caption[256];
    char key[32]; // "train-0000123" / "val-0000123"
} SynthSample;
// split: 0 train, 1 val.
void synth_sample(SynthSample *out, uint64_t seed, int split, int64_t index);
// How samples are drawn. The default (synth_style_default) is what `tijepa synth` writes.
typedef struct {
    int size;            // pixels per side
    int antialias;       // 4×4 supersampling
    int flat_background; // 1: grey 120 behind every image; 0: a grey in [100, 140) per caption
    int noise;           // i.i.d. uniform per-pixel noise in [-noise, noise] (0: none)
} SynthStyle;
void synth_style_default(SynthStyle *st, int size);
// Draws the sample into rgb [size, size, 3].
void synth_draw(uint8_t *rgb, const SynthSample *s, const SynthStyle *st);
// The .json attributes of a sample (malloc'd; caller frees).
char *synth_json(const SynthSample *s);

typedef struct {
    const char *out_dir;
    int64_t n_train, n_val;
    int64_t per_shard;
    int image_size;
    uint64_t seed;
    int antialias;
    int flat_background, noise; // see SynthStyle
    int vocab_size;             // entries of DIR/vocab.txt
    FILE *log;                  // progress; NULL = quiet
} SynthOptions;
// Defaults: 10000 train, 1000 val, 1000 per shard, 32 px, seed 0, antialias on, vocab 1000.
void synth_options_default(SynthOptions *o);
// Writes DIR/train-000000.tar ..., DIR/val-000000.tar ... and DIR/vocab.txt (built from the
// captions of both splits with the vocabulary builder).
int synth_write(const SynthOptions *o, char *err, size_t errlen);

// ---- Importers (`tijepa shard --from`) ----
//
//   dir:  a directory of images (png/jpg/jpeg, sorted by name, not recursive) with same-named
//         .txt captions (optional same-named .cls labels); key = file stem with '.' → '_';
//   tsv:  a .tsv file, lines "path<TAB>caption[<TAB>label]", paths relative to the tsv's folder;
//         key = the line's number in the file (8 digits); the source path goes into .json;
//   coco: a COCO captions_*.json with an image folder (images_dir, default: the json's folder);
//         one sample per caption, in annotation order; key = "<image_id>_<annotation_id>";
//   mvsa: an MVSA-Single or -Multiple folder (data/N.jpg, data/N.txt, labelResultAll.txt with
//         one "text,image" pair per annotator). Multiple: each modality's label is the majority of
//         the three annotators (no majority → post dropped). Then: positive vs negative → dropped;
//         one neutral → the other label; equal → that label. Classes: negative 0, neutral 1,
//         positive 2. Texts that are not UTF-8 are read as Latin-1. Key = post ID.
// Image bytes are stored as they are (not re-encoded) after a header check; unreadable images,
// missing captions and bad labels are skipped with a warning and counted.
typedef enum { IMPORT_AUTO = 0, IMPORT_DIR, IMPORT_TSV, IMPORT_COCO, IMPORT_MVSA } ImportKind;
typedef struct {
    const char *from;        // directory, .tsv, .json or MVSA folder
    const char *out_pattern; // see shard_writer_open
    const char *images_dir;  // coco only
    int64_t per_shard;
    ImportKind kind; // AUTO: MVSA folder (has labelResultAll.txt), dir, .tsv, .json
    size_t max_pixels;
    FILE *log; // warnings; NULL = stderr
} ImportOptions;
typedef struct {
    int64_t written, skipped, shards;
    int64_t labels[3]; // MVSA class counts (negative, neutral, positive)
    int64_t mvsa_conflicts, mvsa_no_majority;
} ImportResult;
void import_options_default(ImportOptions *o);
int import_shards(const ImportOptions *o, ImportResult *res, char *err, size_t errlen);
// MVSA label words → class (0 negative, 1 neutral, 2 positive), −1 when unknown.
int mvsa_class(const char *word);
// The text/image rule above: the class, or −1 when the post is dropped.
int mvsa_resolve(int text_class, int image_class);
// Majority of three classes (≥ 2 equal), or −1.
int mvsa_majority(int a, int b, int c);

// ---- Dataset statistics (`tijepa data stats`) ----
enum { DATA_STATS_LEN_BINS = 8 }; // caption length bins: ≤4, ≤8, ≤16, ≤32, ≤64, ≤128, ≤256, more
typedef struct {
    int64_t shards, shards_damaged, shards_empty;
    int64_t samples_read, samples_usable;
    int64_t problems[SAMPLE_PROBLEM_COUNT]; // by cause, decode failures included
    int64_t members_ignored;
    int tokenized;                         // 1 when a vocabulary was given (lengths in tokens)
    int64_t len_hist[DATA_STATS_LEN_BINS]; // caption lengths: tokens (no [CLS]/[SEP]) or words
    int64_t len_min, len_max;
    double len_mean;
    int64_t tokens, unk_tokens;
    int64_t n_labels;                     // distinct labels
    int64_t *label_values, *label_counts; // [n_labels], sorted by value
    int64_t unlabelled;
    int64_t duplicate_captions; // samples whose caption appeared before
    int64_t distinct_captions;
    int64_t duplicate_images; // samples whose decoded pixels appeared before
    int64_t width_min, width_max, height_min, height_max;
    char top_caption[5][128]; // most repeated captions and their counts
    int64_t top_caption_count[5];
} DataStats;
// One pass over every sample of the spec (full decode). tok may be NULL.
int data_stats_compute(DataStats *st, const char *spec, const Tokenizer *tok, size_t max_pixels,
                       FILE *log, char *err, size_t errlen);
void data_stats_print(const DataStats *st, FILE *out);
int data_stats_write_json(const DataStats *st, const char *path, char *err, size_t errlen);
void data_stats_free(DataStats *st);
// FNV-1a 64-bit hash (duplicate detection; pixel hashes of `tijepa data dump`).
uint64_t data_fnv1a64(const void *data, size_t n);

#endif // TIJEPA_IO_H
