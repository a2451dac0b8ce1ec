// tijepa synth: writes the embedded synthetic dataset (coloured shapes with captions) as shards.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "launch.h"

static void synth_usage(FILE *to) {
    fprintf(to,
            "usage: tijepa synth --out DIR [--train N] [--val N] [--seed S] [--image-size PX]\n"
            "                    [--per-shard N] [--vocab-size N] [--no-antialias]\n"
            "                    [--flat-background] [--noise A]\n\n"
            "Writes DIR/train-000000.tar ..., DIR/val-000000.tar ... (PNG + txt + cls + json)\n"
            "and DIR/vocab.txt. Defaults: --train 10000 --val 1000 --seed 0 --image-size 32\n"
            "(the tiny preset; 64 for small) --per-shard 1000 --vocab-size 1000.\n"
            "--flat-background: grey 120 behind every image (default: a grey per caption).\n"
            "--noise A: add i.i.d. uniform noise in [-A, A] to every pixel value (default 0).\n");
}

// Parses a whole decimal integer in [lo, hi]; 0 on success.
static int parse_count(const char *flag, const char *text, long long lo, long long hi,
                       long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "tijepa synth: %s expects an integer in [%lld, %lld], got '%s'\n", flag, lo,
                hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_synth(int argc, char **argv) {
    SynthOptions o;
    synth_options_default(&o);
    o.log = stdout;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            synth_usage(stdout);
            return TJ_EXIT_OK;
        }
        if (!strcmp(a, "--no-antialias")) {
            o.antialias = 0;
            continue;
        }
        if (!strcmp(a, "--flat-background")) {
            o.flat_background = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tijepa synth: %s needs a value\n\n", a);
            synth_usage(stderr);
            return TJ_EXIT_USAGE;
        }
        const char *v = argv[++i];
        long long n = 0;
        int bad = 0;
        if (!strcmp(a, "--out"))
            o.out_dir = v;
        else if (!strcmp(a, "--train"))
            bad = parse_count(a, v, 0, 1LL << 40, &n), o.n_train = n;
        else if (!strcmp(a, "--val"))
            bad = parse_count(a, v, 0, 1LL << 40, &n), o.n_val = n;
        else if (!strcmp(a, "--per-shard"))
            bad = parse_count(a, v, 1, 1LL << 40, &n), o.per_shard = n;
        else if (!strcmp(a, "--image-size"))
            bad = parse_count(a, v, 3, 4096, &n), o.image_size = (int)n;
        else if (!strcmp(a, "--noise"))
            bad = parse_count(a, v, 0, 127, &n), o.noise = (int)n;
        else if (!strcmp(a, "--vocab-size"))
            bad = parse_count(a, v, 16, 1 << 24, &n), o.vocab_size = (int)n;
        else if (!strcmp(a, "--seed"))
            bad = parse_count(a, v, 0, 1LL << 62, &n), o.seed = (uint64_t)n;
        else {
            fprintf(stderr, "tijepa synth: unknown option '%s'\n\n", a);
            synth_usage(stderr);
            return TJ_EXIT_USAGE;
        }
        if (bad) return TJ_EXIT_USAGE;
    }
    if (!o.out_dir) {
        fprintf(stderr, "tijepa synth: --out DIR is required\n\n");
        synth_usage(stderr);
        return TJ_EXIT_USAGE;
    }
    char err[1024];
    if (synth_write(&o, err, sizeof(err))) {
        fprintf(stderr, "tijepa synth: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    return TJ_EXIT_OK;
}
