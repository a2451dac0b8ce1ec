// tijepa vocab: builds a WordPiece vocab.txt from the captions of a dataset (shards) and/or a
// text file with one caption per line.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "launch.h"

static void vocab_usage(FILE *to) {
    fprintf(to,
            "usage: tijepa vocab (--data SPEC | --captions FILE)... --out vocab.txt [--size N]\n"
            "\n"
            "Builds a BERT-style vocab.txt: [PAD] [UNK] [CLS] [SEP] [MASK], every character seen\n"
            "and its ## form, then whole words by frequency, at most N entries (default 8192).\n"
            "  --data SPEC      shards (brace pattern, glob, directory or list file): their .txt\n"
            "  --captions FILE  a text file, one caption per line\n"
            "  --out FILE       where to write the vocabulary\n"
            "  --size N         maximum number of entries\n");
}

// Adds every line of path. Returns 0 or -1 (message printed).
static int add_caption_file(VocabBuilder *vb, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tijepa vocab: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, with_nul = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if ((size_t)len != strlen(line)) with_nul++; // the caption ends at the NUL byte
        vocab_builder_add(vb, line);
    }
    int bad = ferror(f);
    free(line);
    fclose(f);
    if (bad) {
        fprintf(stderr, "tijepa vocab: %s: read error after line %ld\n", path, lineno);
        return -1;
    }
    if (with_nul)
        fprintf(stderr, "tijepa vocab: warning: %s: %ld line(s) hold a NUL byte (cut there)\n",
                path, with_nul);
    return 0;
}

// Adds the captions of every sample of every shard of spec. A damaged shard is warned about and
// the rest of it skipped (its earlier samples count). Returns 0 or -1 (message printed).
static int add_shard_captions(VocabBuilder *vb, const char *spec, long *samples, long *no_caption,
                              long *damaged) {
    char err[512];
    ShardList shards;
    if (shard_spec_expand(&shards, spec, err, sizeof(err))) {
        fprintf(stderr, "tijepa vocab: %s\n", err);
        return -1;
    }
    for (int i = 0; i < shards.n; i++) {
        TarReader *r = tar_reader_open(shards.paths[i], err, sizeof(err));
        if (!r) {
            fprintf(stderr, "tijepa vocab: %s\n", err);
            shard_list_free(&shards);
            return -1;
        }
        TarSample s;
        int rc;
        while ((rc = tar_reader_next(r, &s, err, sizeof(err))) == 1) {
            (*samples)++;
            if (!s.caption) {
                (*no_caption)++;
                continue;
            }
            vocab_builder_add(vb, s.caption);
        }
        if (rc < 0) {
            fprintf(stderr, "tijepa vocab: warning: %s (rest of the shard skipped)\n", err);
            (*damaged)++;
        }
        tar_reader_close(r);
    }
    shard_list_free(&shards);
    return 0;
}

int cmd_vocab(int argc, char **argv) {
    const char *out = NULL;
    long size = 8192;
    // Sources in command-line order: even index = kind (0 data, 1 captions), odd = argument.
    const char **sources = calloc((size_t)argc + 1, sizeof(char *));
    int *kinds = calloc((size_t)argc + 1, sizeof(int));
    int n_sources = 0;
    if (!sources || !kinds) {
        fprintf(stderr, "tijepa vocab: out of memory\n");
        free(sources);
        free(kinds);
        return TJ_EXIT_ERROR;
    }
    int rc = TJ_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            vocab_usage(stdout);
            goto done;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tijepa vocab: %s needs a value\n\n", a);
            rc = TJ_EXIT_USAGE;
            break;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--data") || !strcmp(a, "--captions")) {
            kinds[n_sources] = !strcmp(a, "--captions");
            sources[n_sources++] = v;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--size")) {
            char *end;
            errno = 0;
            size = strtol(v, &end, 10);
            if (end == v || *end || errno || size < 5 || size > 100000000) {
                fprintf(stderr, "tijepa vocab: --size '%s': expected an integer in [5, 1e8]\n\n",
                        v);
                rc = TJ_EXIT_USAGE;
                break;
            }
        } else {
            fprintf(stderr, "tijepa vocab: unknown option '%s'\n\n", a);
            rc = TJ_EXIT_USAGE;
            break;
        }
    }
    if (rc == TJ_EXIT_OK && (!out || n_sources == 0)) {
        fprintf(stderr, "tijepa vocab: %s\n\n",
                !out ? "--out is required" : "give --data SPEC or --captions FILE");
        rc = TJ_EXIT_USAGE;
    }
    if (rc != TJ_EXIT_OK) {
        vocab_usage(stderr);
        goto done;
    }

    VocabBuilder *vb = vocab_builder_new();
    if (!vb) {
        fprintf(stderr, "tijepa vocab: out of memory\n");
        rc = TJ_EXIT_ERROR;
        goto done;
    }
    long samples = 0, no_caption = 0, damaged = 0;
    for (int k = 0; k < n_sources && rc == TJ_EXIT_OK; k++) {
        int bad = kinds[k] ? add_caption_file(vb, sources[k])
                           : add_shard_captions(vb, sources[k], &samples, &no_caption, &damaged);
        if (bad) rc = TJ_EXIT_ERROR;
    }
    if (rc == TJ_EXIT_OK) {
        char err[512];
        if (vocab_builder_write(vb, out, (int)size, err, sizeof(err))) {
            fprintf(stderr, "tijepa vocab: %s\n", err);
            rc = TJ_EXIT_ERROR;
        } else {
            VocabBuilderStats st;
            vocab_builder_stats(vb, &st);
            long needed = 5 + 2 * st.distinct_chars + st.distinct_words;
            long written = needed < size ? needed : size;
            if (samples)
                printf("vocab: %ld samples read (%ld without caption), %ld damaged shard(s)\n",
                       samples, no_caption, damaged);
            printf("vocab: %ld captions (%ld skipped: invalid UTF-8), %ld characters, %ld distinct "
                   "words, %ld words over 100 characters\n",
                   st.captions, st.invalid_utf8, st.distinct_chars, st.distinct_words,
                   st.long_words);
            printf("vocab: wrote %ld entries to %s", written, out);
            if (needed > size && 5 + 2 * st.distinct_chars > size)
                printf(" (size too small for every character: [UNK] will occur)\n");
            else if (needed > size)
                printf(" (%ld least frequent words left out)\n", needed - size);
            else
                printf(" (every word fits)\n");
        }
    }
    vocab_builder_free(vb);
done:
    free(sources);
    free(kinds);
    return rc;
}
