// tokenize_cli VOCAB MAX_LEN: for each line of stdin, the hex of a UTF-8 (or not) text, prints
// "ERR" when tokenizer_encode refuses it, else "<n_unk>|<id> <id> ..." (the valid ids).
// Used by tests/reference/wordpiece_ref.py to compare with an independent Python tokenizer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tokenize_cli VOCAB MAX_LEN < hex-lines\n");
        return 2;
    }
    char err[512];
    Tokenizer *tok = tokenizer_load(argv[1], err, sizeof(err));
    if (!tok) {
        fprintf(stderr, "tokenize_cli: %s\n", err);
        return 1;
    }
    int max_len = atoi(argv[2]);
    if (max_len < 2) {
        fprintf(stderr, "tokenize_cli: MAX_LEN must be at least 2\n");
        tokenizer_free(tok);
        return 2;
    }
    int32_t *ids = malloc((size_t)max_len * sizeof(int32_t));
    uint8_t *valid = malloc((size_t)max_len);
    char *line = NULL, *text = NULL;
    size_t cap = 0, text_cap = 0;
    ssize_t len;
    int rc = 0;
    while (ids && valid && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len % 2) {
            fprintf(stderr, "tokenize_cli: odd hex line\n");
            rc = 1;
            break;
        }
        if ((size_t)len / 2 + 1 > text_cap) {
            text_cap = (size_t)len / 2 + 1;
            char *grown = realloc(text, text_cap);
            if (!grown) {
                rc = 1;
                break;
            }
            text = grown;
        }
        for (ssize_t i = 0; i < len / 2; i++) {
            int hi = hex_value(line[2 * i]), lo = hex_value(line[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "tokenize_cli: bad hex digit\n");
                rc = 1;
                break;
            }
            text[i] = (char)(hi * 16 + lo);
        }
        if (rc) break;
        text[len / 2] = '\0';
        int n_unk = -1;
        int n = tokenizer_encode(tok, text, ids, valid, max_len, &n_unk, err, sizeof(err));
        if (n < 0) {
            printf("ERR\n");
            continue;
        }
        printf("%d|", n_unk);
        for (int i = 0; i < n; i++)
            printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        for (int i = 0; i < max_len; i++) { // the padding contract, checked here too
            if (valid[i] != (i < n) || (i >= n && ids[i] != tokenizer_pad_id(tok))) {
                fprintf(stderr, "tokenize_cli: bad padding at %d\n", i);
                rc = 1;
            }
        }
    }
    if (!ids || !valid) {
        fprintf(stderr, "tokenize_cli: out of memory\n");
        rc = 1;
    }
    free(line);
    free(text);
    free(ids);
    free(valid);
    tokenizer_free(tok);
    return rc;
}
