// launch/ — the tijepa program: one function per subcommand (each in its own cmd_*.c), the
// training loop that ties model/, io/, mpi/ and checkpoints/ together, SLURM scripts, configs.
// Exit codes of every subcommand: 0 done, 1 error, 2 bad usage (TJ_EXIT_*).
#ifndef TIJEPA_LAUNCH_H
#define TIJEPA_LAUNCH_H

#define TJ_EXIT_OK 0
#define TJ_EXIT_ERROR 1
#define TJ_EXIT_USAGE 2
#define TJ_EXIT_REQUEUE 3 // stopped by a signal after saving a checkpoint: requeue and resume

// ---------------------------------------------------------------------------------------------
// Run settings: the INI config (DESIGN.md §5) resolved into typed values.

#include <stdint.h>
#include <stddef.h>

#include "io.h"
#include "model.h"
#include "checkpoint.h"

typedef struct {
    // [run]
    char name[128], dir[1024];
    uint64_t seed;
    // [data]
    char train[2048], val[2048], vocab[1024];
    SplitMode split;
    int shuffle_buffer, prefetch;
    int features; // data.features: stream feature shards (tijepa encode) instead of pixels
    // [model], [mask], [loss], [optim]
    ModelConfig model; // local_batch filled in by the trainer
    char preset[32];
    char image_weights[1024], text_weights[1024]; // pretrained encoders ("" none)
    MaskConfig mask;
    OptimConfig optim;
    // [train]
    int steps, global_batch, log_every, eval_every, ckpt_every, keep_last, threads;
    int check_every, max_bad_steps;
    int stop_after; // end this invocation after this many steps, with a checkpoint (0: off)
    // [mpi]
    double bucket_mb;
    // [eval]
    int eval_pairs;
    char probe_train[2048], probe_test[2048];
} RunSettings;

// Fills *rs from cfg (absent keys take their defaults) and writes the resolved values back
// into cfg, so that config_to_ini(cfg) is the complete configuration of the run.
int run_settings_resolve(RunSettings *rs, TjConfig *cfg, char *err, size_t errlen);
// Loads --config FILE and applies each --set, in order.
int run_config_load(TjConfig *cfg, const char *path, const char *const *overrides, int n_overrides,
                    char *err, size_t errlen);

// Adds the model's tensors to a checkpoint content (borrowed pointers): /params, /ema and, with
// with_optim, /optim/m and /optim/v. The same content serves ckpt_save and ckpt_load.
int model_ckpt_content(CkptContent *c, Model *m, int with_optim, char *err, size_t errlen);

// ---------------------------------------------------------------------------------------------
// Pretrained encoders (launch/pretrained.c; docs/encoders.md). Each loader fills the model's
// encoder tensors in place (and their EMA copies, where the model keeps one), after checking
// every shape against the config; on error the model may be partly filled. note (may be NULL)
// receives one line on what was loaded and what the file held that was not used.

// Image encoder from a ViT: a safetensors file with timm / I-JEPA names (patch_embed.proj.*,
// blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.*; optional prefix module.,
// encoder. or module.encoder.; a pos_embed must be the fixed 2-D sin-cos table; a cls_token is
// refused), or a tijepa checkpoint (HDF5; its /params img.* tensors).
int pretrained_load_image(Model *m, const char *path, char *note, size_t notelen, char *err,
                          size_t errlen);
// Text encoder (model.text_encoder = bert) from a safetensors file with Hugging Face BERT names
// (embeddings.*, encoder.layer.N.*; optional prefix bert. or 0.auto_model.). The shape settings
// must equal the file's: width, depth and vocabulary from the tensors, heads (and LayerNorm eps,
// activation, position type) from the file's metadata (launch/convert-hf-text writes it) or a
// config.json beside the file, when either exists.
int pretrained_load_text(Model *m, const char *path, char *note, size_t notelen, char *err,
                         size_t errlen);
// Applies rs->image_weights and rs->text_weights (each when set) and prints one line per loaded
// file to log (may be NULL). Call after model_init_weights and before parameters are broadcast.
int pretrained_apply(Model *m, const RunSettings *rs, FILE *log, char *err, size_t errlen);

// ---------------------------------------------------------------------------------------------
// Feature shards (launch/features.c; io.h "Feature shards"; docs/encoders.md). `tijepa encode`
// writes DIR/features.ini beside the shards: the fingerprint of the frozen encoders that made
// them and the feature shapes; a run with data.features = true checks it before training.

// FNV-1a 64 over the bytes of every txt.* and img.* parameter (the frozen encoders), in buffer
// order: equal for two models exactly when their encoders hold the same bits.
uint64_t features_fingerprint(Model *m);
// Writes dir/features.ini (fingerprint, shapes, text encoder, source spec, weights, counts).
int features_write_info(const char *dir, Model *m, const char *source, const char *weights,
                        long samples, int shards, char *err, size_t errlen);
// The check before training on the feature shards of spec: features.ini beside its first shard
// must carry this model's fingerprint and shapes. 0 when it does, 1 when there is no
// features.ini (a warning goes to log, may be NULL), −1 on a mismatch (message in err).
int features_check(Model *m, const char *spec, FILE *log, char *err, size_t errlen);

int cmd_encode(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_shard(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_ckpt(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_explain(int argc, char **argv);

#endif // TIJEPA_LAUNCH_H
