// launch/evaluate.h — evaluation of a model on held-out shards (DESIGN.md §1 "Evaluation", §5):
// retrieval by energy over N×N pairs and the MVSA linear probe, the report (JSON + table), the
// in-training hook, and what `tijepa eval/score/search/explain` share (opening a checkpoint for
// inference, reading decoded samples in file order).
#ifndef TIJEPA_EVALUATE_H
#define TIJEPA_EVALUATE_H

#include <stdio.h>

#include "launch.h"

// ---------------------------------------------------------------------------------------------
// A checkpoint opened for inference: the model rebuilt from the checkpoint's "config" attribute,
// /params and /ema loaded, the tokenizer from data.vocab of that config (or an explicit path).
typedef struct {
    TjConfig *cfg;
    RunSettings rs; // the resolved config of the run that wrote the checkpoint
    Model *m;
    Tokenizer *tok;
    long step;
    char path[2048]; // the checkpoint file opened
} EvalModel;

// ckpt_path: a checkpoint file, or a directory (a run directory or its ckpt/ folder) whose newest
// complete checkpoint is taken. batch: samples per model call (chunk of the feature and energy
// passes).
int eval_model_open(EvalModel *em, const char *ckpt_path, const char *vocab_path, int batch,
                    char *err, size_t errlen);
void eval_model_close(EvalModel *em);

// Command-line helpers shared by eval/score/search/explain: an integer option in [lo, hi] (message
// naming the command and option on stderr), and a whole file read into memory (*out malloc'd).
int eval_arg_int(const char *cmd, const char *opt, const char *value, long lo, long hi, long *out);

// One "--flag value" option: a string (*str = value), an integer in [lo, hi] (*num), or a
// repeatable one handed to take(ctx, value, err) (0 = taken, else err says why).
typedef struct {
    const char *flag;
    const char **str;
    long *num;
    long lo, hi;
    int (*take)(void *ctx, char *value, char *err, size_t errlen); // may edit value in place
    void *ctx;
} EvalOption;
enum { EVAL_ARGS_PARSED = -1 };
// Parses argv[1..] as "--flag value" pairs of opts[n]; --help/-h prints usage. Returns
// EVAL_ARGS_PARSED, or the exit code the command returns (TJ_EXIT_OK after --help,
// TJ_EXIT_USAGE with a message naming `tijepa CMD` for a missing value, an unknown flag or a bad
// value).
int eval_parse_options(const char *cmd, int argc, char **argv, const EvalOption *opts, int n,
                       void (*usage)(FILE *));
int eval_read_file(uint8_t **out, size_t *len, const char *path, char *err, size_t errlen);
// An image file (PNG or JPEG) as the model sees it: tensor [3, S, S] (bilinear, ImageNet
// normalisation, as the stream). keep (may be NULL) receives the decoded image (image_free it).
int eval_image_file(float *tensor, ImageU8 *keep, const char *path, int image_size, char *err,
                    size_t errlen);

// ---------------------------------------------------------------------------------------------
// Decoded samples of a shard spec in file order (shards in spec order, members in tar order):
// the same cheap checks as the training stream (sample_check), then image_decode +
// image_to_tensor (bilinear to S, ImageNet normalisation, as the stream) + tokenizer_encode.
// Unusable samples are skipped, counted and warned about (at most 5 lines); a damaged shard is
// warned about and its rest skipped.
typedef struct {
    int n, cap;
    int image_size, max_text_len; // S, L
    float *images;                // [cap, 3, S, S]
    int32_t *tokens;              // [cap, L]
    uint8_t *valid;               // [cap, L]
    int32_t *labels;              // [cap], −1 without .cls
    char **keys;                  // [cap], malloc'd
} EvalSamples;
void eval_samples_init(EvalSamples *s, int image_size, int max_text_len);
void eval_samples_clear(EvalSamples *s); // n = 0, buffers kept
void eval_samples_free(EvalSamples *s);

typedef struct EvalReader EvalReader;
typedef struct {
    long read, used, skipped, decode_failed, shards_damaged;
} EvalReaderStats;
// log: warnings (NULL = stderr).
EvalReader *eval_reader_open(const char *spec, const Tokenizer *tok, int image_size,
                             int max_text_len, FILE *log, char *err, size_t errlen);
// Appends up to max usable samples to s (labelled_only: samples without .cls are skipped and
// counted). Returns the number appended, 0 at the end of the spec, −1 on error.
int eval_reader_read(EvalReader *r, EvalSamples *s, int max, int labelled_only, char *err,
                     size_t errlen);
void eval_reader_stats(const EvalReader *r, EvalReaderStats *out);
void eval_reader_close(EvalReader *r);

// The fixed evaluation masks: one MaskSet from (seed ^ RNG_STREAM_EVAL, step 0), identical for
// every checkpoint of a run. ms must be allocated for the grid.
void eval_masks(MaskSet *ms, const MaskConfig *mc, int grid, uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Evaluation

#define EVAL_MAX_PROBES 8
#define EVAL_MAX_CLASSES 256 // probe labels must lie in [0, 256)
#define EVAL_NAME_MAX 64
typedef struct {
    char name[EVAL_NAME_MAX];
    const char *train, *test; // shard specs with .cls labels
} ProbeTask;

typedef struct {
    const char *data; // retrieval shards; NULL or "" skips retrieval
    int pairs;        // N: the first N usable samples of data (default 256)
    uint64_t seed;    // evaluation mask seed (the run's seed)
    MaskConfig mask;  // the run's mask settings
    int n_probes;
    ProbeTask probes[EVAL_MAX_PROBES];
    ProbeConfig probe; // the probe trainer (defaults: the MVSA protocol)
    FILE *log;         // warnings; NULL = stderr
} EvalOptions;
void eval_options_default(EvalOptions *o);

typedef struct {
    char name[EVAL_NAME_MAX];
    int classes, n_train, n_train_balanced, n_test;
    double accuracy, weighted_f1, macro_f1, majority_share; // share of the test's largest class
    double per_class_f1[EVAL_MAX_CLASSES];                  // [classes]
    int64_t support[EVAL_MAX_CLASSES];                      // test samples per class
} ProbeResult;

typedef struct {
    long step;
    int has_retrieval;
    int pairs; // N actually used (fewer than asked when the spec holds fewer usable samples)
    RetrievalScores t2i, i2t;
    double chance_r1, chance_r5, chance_r10, chance_median_rank;
    double energy_pos, energy_neg; // mean energy of matching (diagonal) / other pairs
    int n_probes;
    ProbeResult probes[EVAL_MAX_PROBES];
    double seconds;
} EvalReport;

// Runs the evaluation of o on the model: features once per image and caption, energies of all
// N×N pairs with the fixed masks, probe features, probes trained and tested. Non-zero on error.
int evaluate_model(EvalReport *rep, Model *m, const Tokenizer *tok, const EvalOptions *o, long step,
                   char *err, size_t errlen);
// The report as JSON (DESIGN.md §5), written to a temporary name and renamed.
int eval_report_write_json(const EvalReport *rep, const char *path, char *err, size_t errlen);
// A readable table with the chance levels beside the recalls.
void eval_report_print(const EvalReport *rep, FILE *out);

// "NAME:TRAIN:TEST" → task (TRAIN and TEST split at the first single ':' after NAME; a "::"
// inside a spec stays part of it). Pointers point into arg. Non-zero when malformed.
int probe_task_parse(ProbeTask *t, char *arg, char *err, size_t errlen);

// The in-training hook (rank 0, every train.eval_every steps and at the end): evaluates on
// data.val (eval.pairs pairs) and on eval.probe_train/eval.probe_test (probe "probe"), writes
// RUN_DIR/eval/step-NNNNNNNN.json and prints one line. Returns 0 (also when there is nothing to
// evaluate: data.val and the probe unset, said once), non-zero with a message in err.
int train_evaluate(Model *m, const Tokenizer *tok, const RunSettings *rs, long step, char *err,
                   size_t errlen);

#endif // TIJEPA_EVALUATE_H
