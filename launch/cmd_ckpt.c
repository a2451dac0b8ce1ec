// tijepa ckpt: inspect a checkpoint (summary + full checksum pass) or export its weights as
// safetensors. PATH may be a checkpoint file, a checkpoint directory or a run directory; the
// directories resolve to their newest complete checkpoint.
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "launch.h"

static void ckpt_usage(FILE *to) {
    fprintf(to, "usage: tijepa ckpt inspect PATH\n"
                "       tijepa ckpt export PATH --format safetensors --out FILE "
                "[--group params|ema]\n\n"
                "PATH is a checkpoint file (step-NNNNNNNN.h5), a checkpoint directory or a run\n"
                "directory (its newest complete checkpoint is used).\n"
                "inspect  prints step, versions, config, tensors with shapes, parameter counts,\n"
                "         file size, and verifies every checksum (exit 1 if one fails)\n"
                "export   writes one tensor group (default params; ema for the EMA weights) as\n"
                "         an F32 safetensors file\n");
}

// Resolves PATH to a checkpoint file into out; 0 ok, -1 error (printed).
static int resolve_checkpoint(const char *path, char *out, size_t cap) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(out, cap, "%s", path); // ckpt_* report a missing or foreign file themselves
        return 0;
    }
    char err[CKPT_ERR_LEN], sub[4096];
    int rc = ckpt_find_latest(path, out, cap, err, sizeof(err));
    if (rc == 1) {
        snprintf(sub, sizeof(sub), "%s/ckpt", path); // a run directory
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            rc = ckpt_find_latest(sub, out, cap, err, sizeof(err));
    }
    if (rc < 0) {
        fprintf(stderr, "tijepa ckpt: %s\n", err);
        return -1;
    }
    if (rc == 1) {
        fprintf(stderr, "tijepa ckpt: no complete checkpoint in %s\n", path);
        return -1;
    }
    return 0;
}

static int ckpt_inspect_cmd(int argc, char **argv) {
    if (argc != 2) {
        ckpt_usage(stderr);
        return TJ_EXIT_USAGE;
    }
    char path[4096], err[CKPT_ERR_LEN];
    if (resolve_checkpoint(argv[1], path, sizeof(path)) < 0) return TJ_EXIT_ERROR;
    if (ckpt_inspect(path, stdout, err, sizeof(err)) != 0) {
        fflush(stdout);
        fprintf(stderr, "tijepa ckpt inspect: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    return TJ_EXIT_OK;
}

static int ckpt_export_cmd(int argc, char **argv) {
    const char *input = NULL, *format = NULL, *out = NULL, *group = "params";
    for (int i = 1; i < argc; i++) {
        const char **value = !strcmp(argv[i], "--format")  ? &format
                             : !strcmp(argv[i], "--out")   ? &out
                             : !strcmp(argv[i], "--group") ? &group
                                                           : NULL;
        if (value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tijepa ckpt export: %s needs a value\n", argv[i]);
                return TJ_EXIT_USAGE;
            }
            *value = argv[++i];
        } else if (argv[i][0] == '-' || input) {
            fprintf(stderr, "tijepa ckpt export: unexpected argument '%s'\n\n", argv[i]);
            ckpt_usage(stderr);
            return TJ_EXIT_USAGE;
        } else {
            input = argv[i];
        }
    }
    if (!input || !out) {
        fprintf(stderr, "tijepa ckpt export: needs PATH and --out FILE\n\n");
        ckpt_usage(stderr);
        return TJ_EXIT_USAGE;
    }
    if (format && strcmp(format, "safetensors") != 0) {
        fprintf(stderr, "tijepa ckpt export: unsupported --format '%s' (supported: safetensors)\n",
                format);
        return TJ_EXIT_USAGE;
    }
    char path[4096], err[CKPT_ERR_LEN];
    if (resolve_checkpoint(input, path, sizeof(path)) < 0) return TJ_EXIT_ERROR;
    if (ckpt_export_safetensors(path, group, out, err, sizeof(err)) != 0) {
        fprintf(stderr, "tijepa ckpt export: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    printf("wrote %s (group %s of %s)\n", out, group, path);
    return TJ_EXIT_OK;
}

int cmd_ckpt(int argc, char **argv) {
    if (argc < 2) {
        ckpt_usage(stderr);
        return TJ_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        ckpt_usage(stdout);
        return TJ_EXIT_OK;
    }
    if (!strcmp(argv[1], "inspect")) return ckpt_inspect_cmd(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return ckpt_export_cmd(argc - 1, argv + 1);
    fprintf(stderr, "tijepa ckpt: unknown action '%s'\n\n", argv[1]);
    ckpt_usage(stderr);
    return TJ_EXIT_USAGE;
}
