// Private to checkpoints/: error helpers around HDF5 and the pieces shared by save, load,
// inspect and export. Nothing outside this folder includes it.
#ifndef TIJEPA_CKPT_INTERNAL_H
#define TIJEPA_CKPT_INTERNAL_H

#include <hdf5.h>

#include "checkpoint.h"

#define CKPT_FORMAT_NAME "tijepa-checkpoint"

// HDF5 prints its error stack on every failure by default; the public calls switch that off
// (for the process: see h5util.c) and report errors themselves.
void ckpt_quiet_begin(void);

// True when an HDF5 call succeeded (H5OK(call): call >= 0). On failure it keeps HDF5's innermost
// message for ckpt_h5_fail before cleanup calls clear the error stack.
int ckpt_h5_ok(int ok);
#define H5OK(call) ckpt_h5_ok((call) >= 0)

// err = formatted context. ckpt_h5_fail also appends ": " and the innermost message of the HDF5
// error stack (the function where HDF5 first detected the problem), with errno text when present:
// the one H5OK kept, else the current stack.
void ckpt_errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ckpt_h5_fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Parses "step-NNNNNNNN.h5" (at least 8 digits, nothing else); returns 1 and sets *step if it is.
int ckpt_parse_step_name(const char *name, int64_t *step);

// Opens PATH read-only after checking it exists, is an HDF5 file, and carries the required
// attributes with a known format version. Returns the file id or -1 with err set.
hid_t ckpt_open_checked(const char *path, char *err, size_t err_len);

// Reads tensor t (shape checked against t, Fletcher-32 verified) from an open file into dst.
int ckpt_read_tensor(hid_t file, const char *path, const CkptTensor *t, float *dst, char *err,
                     size_t err_len);

// Copies every root attribute (string or integer) of file into c.
int ckpt_read_attributes(hid_t file, const char *path, CkptContent *c, char *err, size_t err_len);
// Reads every /state dataset of file into c as owned blobs.
int ckpt_read_blobs(hid_t file, const char *path, CkptContent *c, char *err, size_t err_len);

#endif // TIJEPA_CKPT_INTERNAL_H
