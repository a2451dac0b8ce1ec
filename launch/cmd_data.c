// tijepa data: `stats` (the data report: problems, caption lengths, [UNK] share, labels,
// duplicates) and `dump` (every sample as one JSON line, for inspection and cross-checks).
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "launch.h"

static void data_usage(FILE *to) {
    fprintf(
        to,
        "usage: tijepa data stats --data SPEC [--vocab vocab.txt] [--json FILE] [--max-pixels N]\n"
        "       tijepa data dump  --data SPEC [--out FILE.jsonl] [--max-pixels N]\n\n"
        "stats: samples, shards, problems by cause, caption lengths (tokens with --vocab,\n"
        "       else words), [UNK] share, label balance, duplicate captions and images.\n"
        "dump:  one JSON object per sample in shard order: shard, key, problem, caption,\n"
        "       label, json, image {ext, width, height, rgb_fnv1a64 of the decoded pixels}.\n");
}

// One JSON line per sample (problems included), in shard order.
static int dump(const char *spec, size_t max_pixels, FILE *out) {
    ShardList shards;
    char err[1024];
    if (shard_spec_expand(&shards, spec, err, sizeof(err))) {
        fprintf(stderr, "tijepa data: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    for (int i = 0; i < shards.n; i++) {
        TarReader *tr = tar_reader_open(shards.paths[i], err, sizeof(err));
        if (!tr) {
            fprintf(stderr, "tijepa data: %s\n", err);
            continue;
        }
        TarSample t;
        int r;
        while ((r = tar_reader_next(tr, &t, err, sizeof(err))) == 1) {
            char why[256];
            int label, w, h;
            SampleProblem p = sample_check(&t, max_pixels, &label, &w, &h, why, sizeof(why));
            ImageU8 img = {0};
            if (p == SAMPLE_OK &&
                image_decode(&img, t.image, t.image_len, max_pixels, t.key, why, sizeof(why)))
                p = SAMPLE_DECODE_FAILED;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "shard", t.shard);
            cJSON_AddStringToObject(o, "key", t.key);
            cJSON_AddStringToObject(o, "problem", sample_problem_name(p));
            if (t.caption && utf8_valid(t.caption, t.caption_len))
                cJSON_AddStringToObject(o, "caption", t.caption);
            if (p == SAMPLE_OK && label >= 0) cJSON_AddNumberToObject(o, "label", label);
            if (t.json && utf8_valid(t.json, t.json_len))
                cJSON_AddStringToObject(o, "json", t.json);
            if (p == SAMPLE_OK) {
                cJSON *im = cJSON_AddObjectToObject(o, "image");
                char hex[17];
                snprintf(
                    hex, sizeof(hex), "%016llx",
                    (unsigned long long)data_fnv1a64(img.rgb, (size_t)img.width * img.height * 3));
                cJSON_AddStringToObject(im, "ext", t.image_ext);
                cJSON_AddNumberToObject(im, "width", img.width);
                cJSON_AddNumberToObject(im, "height", img.height);
                cJSON_AddStringToObject(im, "rgb_fnv1a64", hex);
            }
            image_free(&img);
            char *line = cJSON_PrintUnformatted(o);
            fprintf(out, "%s\n", line);
            cJSON_free(line);
            cJSON_Delete(o);
        }
        if (r < 0) fprintf(stderr, "tijepa data: %s\n", err);
        tar_reader_close(tr);
    }
    shard_list_free(&shards);
    return TJ_EXIT_OK;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        data_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TJ_EXIT_USAGE : TJ_EXIT_OK;
    }
    const char *action = argv[1];
    if (strcmp(action, "stats") && strcmp(action, "dump")) {
        fprintf(stderr, "tijepa data: unknown action '%s'\n\n", action);
        data_usage(stderr);
        return TJ_EXIT_USAGE;
    }
    const char *spec = NULL, *vocab = NULL, *json = NULL, *out_path = NULL;
    size_t max_pixels = (size_t)1 << 26;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            data_usage(stdout);
            return TJ_EXIT_OK;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tijepa data: %s needs a value\n", a);
            return TJ_EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--data"))
            spec = v;
        else if (!strcmp(a, "--vocab"))
            vocab = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--out"))
            out_path = v;
        else if (!strcmp(a, "--max-pixels")) {
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || *end || end == v || n < 1) {
                fprintf(stderr, "tijepa data: --max-pixels expects a positive integer\n");
                return TJ_EXIT_USAGE;
            }
            max_pixels = (size_t)n;
        } else {
            fprintf(stderr, "tijepa data: unknown option '%s'\n\n", a);
            data_usage(stderr);
            return TJ_EXIT_USAGE;
        }
    }
    if (!spec) {
        fprintf(stderr, "tijepa data: --data SPEC is required\n");
        return TJ_EXIT_USAGE;
    }
    if (!strcmp(action, "dump")) {
        FILE *out = out_path ? fopen(out_path, "w") : stdout;
        if (!out) {
            fprintf(stderr, "tijepa data: cannot write '%s': %s\n", out_path, strerror(errno));
            return TJ_EXIT_ERROR;
        }
        int rc = dump(spec, max_pixels, out);
        if (out != stdout && fclose(out)) rc = TJ_EXIT_ERROR;
        return rc;
    }
    char err[1024];
    Tokenizer *tok = NULL;
    if (vocab && !(tok = tokenizer_load(vocab, err, sizeof(err)))) {
        fprintf(stderr, "tijepa data: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    DataStats st;
    int rc = data_stats_compute(&st, spec, tok, max_pixels, stderr, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tijepa data: %s\n", err);
    } else {
        printf("data stats: %s\n", spec);
        data_stats_print(&st, stdout);
        if (json && data_stats_write_json(&st, json, err, sizeof(err))) {
            fprintf(stderr, "tijepa data: %s\n", err);
            rc = -1;
        }
        if (st.samples_usable == 0) {
            fprintf(stderr, "tijepa data: no usable sample in '%s'\n", spec);
            rc = -1;
        }
    }
    data_stats_free(&st);
    tokenizer_free(tok);
    return rc ? TJ_EXIT_ERROR : TJ_EXIT_OK;
}
