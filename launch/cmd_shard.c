// tijepa shard: builds WebDataset shards from a folder of captioned images, a captions TSV, a COCO
// captions JSON or an MVSA-Single/-Multiple folder.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "launch.h"

static void shard_usage(FILE *to) {
    fprintf(
        to,
        "usage: tijepa shard --from DIR|captions.tsv|captions.json|MVSA-DIR --out PATTERN\n"
        "                    [--per-shard N] [--images DIR] [--kind dir|tsv|coco|mvsa]\n"
        "                    [--max-pixels N]\n\n"
        "  --from     a folder of images with same-named .txt captions (and optional .cls);\n"
        "             a TSV of path<TAB>caption[<TAB>label] (paths relative to the TSV);\n"
        "             a COCO captions_*.json (images in --images, default: the JSON's folder);\n"
        "             an MVSA-Single or MVSA-Multiple folder (data/, labelResultAll.txt):\n"
        "             classes negative=0 neutral=1 positive=2 (see docs/data.md)\n"
        "  --out      shard names with one integer conversion, e.g. out/train-%%06d.tar\n"
        "             (.tar.gz for gzip)\n"
        "  --per-shard samples per shard (default 1000)\n");
}

int cmd_shard(int argc, char **argv) {
    ImportOptions o;
    import_options_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            shard_usage(stdout);
            return TJ_EXIT_OK;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tijepa shard: %s needs a value\n\n", a);
            shard_usage(stderr);
            return TJ_EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--from")) {
            o.from = v;
        } else if (!strcmp(a, "--out")) {
            o.out_pattern = v;
        } else if (!strcmp(a, "--images")) {
            o.images_dir = v;
        } else if (!strcmp(a, "--per-shard") || !strcmp(a, "--max-pixels")) {
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || *end || end == v || n < 1) {
                fprintf(stderr, "tijepa shard: %s expects a positive integer, got '%s'\n", a, v);
                return TJ_EXIT_USAGE;
            }
            if (a[2] == 'p')
                o.per_shard = n;
            else
                o.max_pixels = (size_t)n;
        } else if (!strcmp(a, "--kind")) {
            if (!strcmp(v, "dir"))
                o.kind = IMPORT_DIR;
            else if (!strcmp(v, "tsv"))
                o.kind = IMPORT_TSV;
            else if (!strcmp(v, "coco"))
                o.kind = IMPORT_COCO;
            else if (!strcmp(v, "mvsa"))
                o.kind = IMPORT_MVSA;
            else {
                fprintf(stderr, "tijepa shard: --kind must be dir, tsv, coco or mvsa\n");
                return TJ_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "tijepa shard: unknown option '%s'\n\n", a);
            shard_usage(stderr);
            return TJ_EXIT_USAGE;
        }
    }
    char err[1024];
    if (!o.from || !o.out_pattern) {
        fprintf(stderr, "tijepa shard: --from and --out are required\n\n");
        shard_usage(stderr);
        return TJ_EXIT_USAGE;
    }
    if (shard_pattern_check(o.out_pattern, err, sizeof(err))) {
        fprintf(stderr, "tijepa shard: %s\n", err);
        return TJ_EXIT_USAGE;
    }
    ImportResult r;
    if (import_shards(&o, &r, err, sizeof(err))) {
        fprintf(stderr, "tijepa shard: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    printf("shard: %lld samples in %lld shards (%s), %lld skipped\n", (long long)r.written,
           (long long)r.shards, o.out_pattern, (long long)r.skipped);
    if (r.labels[0] + r.labels[1] + r.labels[2] > 0)
        printf("shard: MVSA classes negative %lld, neutral %lld, positive %lld; dropped: %lld "
               "positive-vs-negative, %lld without annotator majority\n",
               (long long)r.labels[0], (long long)r.labels[1], (long long)r.labels[2],
               (long long)r.mvsa_conflicts, (long long)r.mvsa_no_majority);
    return TJ_EXIT_OK;
}
