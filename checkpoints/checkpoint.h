// checkpoints/ — what this folder offers: HDF5 checkpoints (atomic save with retention and a
// `latest` pointer, load with shape and Fletcher-32 checks, find-latest for --resume auto,
// inspection, export) and safetensors read/write. Depends on HDF5 (serial C API) and cJSON only;
// it knows nothing about the model: launch/ describes what to store as a CkptContent.
//
// File layout (format version 1), readable by h5py and h5dump:
//   /<group>/<tensor name>   float32 dataset per tensor, chunked, Fletcher-32; groups come from
//                            the content ("params", "ema", "optim/m", "optim/v"); tensor names
//                            keep their dots: f["params"]["ctx.blocks.0.attn.q.weight"]
//   /state/<blob name>       int64 [rows, cols] dataset per blob (e.g. one row per rank)
//   root attributes          format = "tijepa-checkpoint", format_version = 1, step,
//                            program_version, plus the content's string and integer attributes
// Every call that can fail returns 0 on success and -1 on error with a message in err (at most
// err_len bytes, CKPT_ERR_LEN is enough) naming the file and the cause; err may be NULL. These
// calls switch HDF5's automatic error printing off (for the process) and fold HDF5's innermost
// message into err instead.
#ifndef TIJEPA_CHECKPOINT_H
#define TIJEPA_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CKPT_FORMAT_VERSION 1
#define CKPT_MAX_DIMS 4
#define CKPT_ERR_LEN 1024
#define CKPT_STATE_GROUP "state" // reserved for blobs; not usable as a tensor group

// ----------------------------------------------------------------------------------------------
// What a checkpoint holds. Names and strings are copied; tensor and blob data are borrowed.

typedef struct {
    char *group; // "params", "ema", "optim/m" ('/' nests groups)
    char *name;  // "ctx.blocks.0.attn.q.weight" (no '/')
    int ndim;    // 1..CKPT_MAX_DIMS
    int64_t shape[CKPT_MAX_DIMS];
    float *data; // borrowed: save reads it, load fills it; NULL after ckpt_describe
} CkptTensor;

typedef struct {
    char *key;
    char *value;
} CkptStrAttr;

typedef struct {
    char *key;
    int64_t value;
} CkptIntAttr;

typedef struct {
    char *name;         // "rng", "data_cursor"
    int64_t rows, cols; // e.g. one row per rank
    int64_t *data;      // rows*cols values, row-major
    int owned;          // 1 when read from a file (freed by ckpt_content_free), 0 when borrowed
} CkptBlob;

typedef struct {
    CkptTensor *tensors;
    int n_tensors, cap_tensors;
    CkptStrAttr *strs;
    int n_strs, cap_strs;
    CkptIntAttr *ints;
    int n_ints, cap_ints;
    CkptBlob *blobs;
    int n_blobs, cap_blobs;
} CkptContent;

void ckpt_content_init(CkptContent *c);
void ckpt_content_free(CkptContent *c); // frees copies and owned blobs, never borrowed data
// Appends a tensor; rejects bad names, ndim outside 1..4, dims < 1 and duplicates (group, name).
int ckpt_add_tensor(CkptContent *c, const char *group, const char *name, int ndim,
                    const int64_t *shape, float *data, char *err, size_t err_len);
// Sets (or replaces) an attribute. The keys format, format_version, step and program_version are
// written by ckpt_save itself and are read back by ckpt_load like any other.
int ckpt_set_str(CkptContent *c, const char *key, const char *value, char *err, size_t err_len);
int ckpt_set_int(CkptContent *c, const char *key, int64_t value, char *err, size_t err_len);
// Appends (or replaces) a blob of rows*cols int64 values, borrowed.
int ckpt_add_blob(CkptContent *c, const char *name, int64_t rows, int64_t cols, int64_t *data,
                  char *err, size_t err_len);

const CkptTensor *ckpt_find_tensor(const CkptContent *c, const char *group, const char *name);
const char *ckpt_get_str(const CkptContent *c, const char *key);         // NULL when absent
int ckpt_get_int(const CkptContent *c, const char *key, int64_t *value); // 0 found, -1 absent
const CkptBlob *ckpt_get_blob(const CkptContent *c, const char *name);   // NULL when absent
int64_t ckpt_tensor_numel(const CkptTensor *t);

// ----------------------------------------------------------------------------------------------
// Save, load, find.

// DIR/step-NNNNNNNN.h5 (8 digits, more when the step needs them) into out.
int ckpt_step_path(char *out, size_t cap, const char *dir, int64_t step);

// Writes DIR/step-NNNNNNNN.h5 through a temporary name in DIR (flush, close, fsync, rename,
// fsync DIR), then points DIR/latest at it (temp + rename), then removes the oldest step files
// beyond keep_last (keep_last <= 0 keeps all; the file just written is never removed). Creates
// DIR if needed and removes stale temporaries left in DIR by a killed writer (one writer per DIR).
// On failure the previous checkpoints and `latest` are untouched and the temporary is removed.
int ckpt_save(const char *dir, int64_t step, const CkptContent *content, int keep_last, char *err,
              size_t err_len);

#define CKPT_LOAD_ALLOW_EXTRA 1 // file tensors in a loaded group that content does not list are OK

// Reads PATH: checks it is a complete tijepa checkpoint of a known format version, fills every
// tensor of content (its shape must match; Fletcher-32 is verified on read), then copies every
// root attribute and every blob of the file into content (blobs owned). Without
// CKPT_LOAD_ALLOW_EXTRA, a file tensor in one of the loaded groups that content does not list is
// an error (the model changed).
int ckpt_load(const char *path, CkptContent *content, int flags, char *err, size_t err_len);

// Lists PATH's content without reading tensor data: every tensor (group, name, shape; data NULL),
// attribute and blob (read, owned). out must be freshly initialised.
int ckpt_describe(const char *path, CkptContent *out, char *err, size_t err_len);

// Cheap check used by find_latest: an HDF5 file with the required attributes (no data read).
int ckpt_is_complete(const char *path);

// Newest complete checkpoint of DIR for --resume auto: DIR/latest when it names a complete
// checkpoint, otherwise the highest-step complete step-*.h5 (temporaries are ignored).
// Returns 0 with the path in out, 1 when there is none (or DIR does not exist), -1 on error.
int ckpt_find_latest(const char *dir, char *out, size_t cap, char *err, size_t err_len);

// ----------------------------------------------------------------------------------------------
// Inspection and export.

// Prints step, format and program version, file size, attributes, config text, every group's
// tensors with shapes and parameter counts, blobs, and the checksum status after reading every
// dataset. Returns 0 when everything read back verified, -1 otherwise (err says what failed).
int ckpt_inspect(const char *path, FILE *out, char *err, size_t err_len);

// Writes one group of a checkpoint ("params" or "ema") as an F32 safetensors file whose
// __metadata__ records the source file, group, step, program version and config.
int ckpt_export_safetensors(const char *ckpt_path, const char *group, const char *out_path,
                            char *err, size_t err_len);

// ----------------------------------------------------------------------------------------------
// safetensors: 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}} padded
// with spaces to a multiple of 8, then the raw little-endian data, fully covered by the tensors.

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    char dtype[16]; // "F32", "F16", "BF16", ... as in the file
    int ndim;       // 0 for a scalar
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; // byte offsets into the data section
} StEntry;

typedef struct {
    char *path;
    int fd;
    uint64_t data_start; // 8 + N
    uint64_t data_size;
    StEntry *entries; // in header order
    int n_entries;
    char **meta_keys, **meta_values;
    int n_meta;
} StFile;

// Opens PATH and validates the whole header (length, JSON, dtypes, shapes against offsets,
// offsets in range, no overlap, no gap, no duplicate). Data is read later, on demand.
int st_open(StFile *f, const char *path, char *err, size_t err_len);
void st_close(StFile *f);
const StEntry *st_find(const StFile *f, const char *name);
const char *st_get_meta(const StFile *f, const char *key); // NULL when absent
// Reads tensor NAME as float32 into out (converting F16 and BF16), after checking that its shape
// is (ndim, shape); shape == NULL skips the check (out must then hold the entry's element count).
int st_read_f32(const StFile *f, const char *name, int ndim, const int64_t *shape, float *out,
                char *err, size_t err_len);

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data;
} StTensorF32;

// Writes tensors as F32 in the given order, with meta_kv = {key0, value0, key1, value1, ...}
// (n_meta pairs) as __metadata__; written to a temporary name and renamed.
int st_write_f32(const char *path, const StTensorF32 *tensors, int n, const char *const *meta_kv,
                 int n_meta, char *err, size_t err_len);

float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif // TIJEPA_CHECKPOINT_H
