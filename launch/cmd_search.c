// tijepa search: the K images of a shard spec whose energy with a caption is lowest (text→image
// search), with the fixed evaluation masks. The caption is encoded once; images stream through
// in chunks, so the spec may be larger than memory.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"

static void usage(FILE *to) {
    fprintf(to, "usage: tijepa search --ckpt PATH --data SPEC --text \"...\" [--top K] "
                "[--vocab vocab.txt] [--seed S]\n"
                "  Prints the K images of lowest energy with the caption (default K = 10): one "
                "line each,\n"
                "  'RANK ENERGY KEY', best first; lines starting with '#' are comments.\n");
}

typedef struct {
    float energy;
    long order; // position in the spec: ties keep file order
    char *key;
} Hit;

// Inserts (e, order, key) into the sorted top list of at most k entries.
static void top_insert(Hit *top, int *n, int k, float e, long order, const char *key) {
    int pos = *n;
    while (pos > 0 &&
           (e < top[pos - 1].energy || (e == top[pos - 1].energy && order < top[pos - 1].order)))
        pos--;
    if (pos >= k) return;
    if (*n == k)
        free(top[k - 1].key);
    else
        (*n)++;
    memmove(top + pos + 1, top + pos, (size_t)(*n - 1 - pos) * sizeof(Hit));
    top[pos].energy = e;
    top[pos].order = order;
    top[pos].key = strdup(key);
    if (!top[pos].key) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
}

int cmd_search(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *text = NULL, *vocab = NULL;
    long top_k = 10, seed = -1;
    const EvalOption opts[] = {
        {.flag = "--ckpt", .str = &ckpt},
        {.flag = "--data", .str = &data},
        {.flag = "--text", .str = &text},
        {.flag = "--vocab", .str = &vocab},
        {.flag = "--top", .num = &top_k, .lo = 1, .hi = 100000},
        {.flag = "--seed", .num = &seed, .lo = 0, .hi = 0x7fffffffL},
    };
    int rc_args = eval_parse_options("search", argc, argv, opts,
                                     (int)(sizeof(opts) / sizeof(opts[0])), usage);
    if (rc_args != EVAL_ARGS_PARSED) return rc_args;
    if (!ckpt || !data || !text) {
        fprintf(stderr, "tijepa search: --ckpt, --data and --text are required\n");
        usage(stderr);
        return TJ_EXIT_USAGE;
    }
    char err[4096];
    enum { CHUNK = 64 };
    EvalModel em;
    if (eval_model_open(&em, ckpt, vocab, CHUNK, err, sizeof(err))) {
        fprintf(stderr, "tijepa search: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    const ModelShape *sh = &em.rs.model.shape;
    int S = sh->image_size, L = sh->txt_len, grid = S / sh->patch;
    size_t P = (size_t)grid * grid;
    int rc = TJ_EXIT_ERROR;
    float *s_img = malloc((size_t)CHUNK * P * sh->img_dim * sizeof(float));
    float *u = malloc((size_t)L * sh->txt_dim * sizeof(float));
    int32_t *ids = malloc((size_t)L * sizeof(int32_t));
    uint8_t *valid = malloc((size_t)L);
    Hit *top = calloc((size_t)top_k, sizeof(Hit));
    int img_idx[CHUNK], txt_idx[CHUNK] = {0};
    float energy[CHUNK];
    for (int i = 0; i < CHUNK; i++)
        img_idx[i] = i;
    int n_top = 0;
    long searched = 0;
    MaskSet ms;
    EvalSamples smp;
    eval_samples_init(&smp, S, L);
    EvalReader *r = NULL;
    if (!s_img || !u || !ids || !valid || !top || maskset_alloc(&ms, grid)) {
        fprintf(stderr, "tijepa search: out of memory\n");
        goto done;
    }
    eval_masks(&ms, &em.rs.mask, grid, seed >= 0 ? (uint64_t)seed : em.rs.seed);
    if (tokenizer_encode(em.tok, text, ids, valid, L, NULL, err, sizeof(err)) < 0 ||
        !(r = eval_reader_open(data, em.tok, S, L, NULL, err, sizeof(err)))) {
        fprintf(stderr, "tijepa search: %s\n", err);
        goto done_masks;
    }
    model_text_features(em.m, u, ids, valid, 1);
    for (;;) {
        eval_samples_clear(&smp);
        int got = eval_reader_read(r, &smp, CHUNK, 0, err, sizeof(err));
        if (got < 0) {
            fprintf(stderr, "tijepa search: %s\n", err);
            goto done_masks;
        }
        if (got == 0) break;
        model_image_features(em.m, s_img, smp.images, got);
        model_pair_energies(em.m, energy, s_img, u, valid, img_idx, txt_idx, got, &ms);
        for (int i = 0; i < got; i++)
            top_insert(top, &n_top, (int)top_k, energy[i], searched + i, smp.keys[i]);
        searched += got;
    }
    if (searched == 0) {
        fprintf(stderr, "tijepa search: %s: no usable sample\n", data);
        goto done_masks;
    }
    printf("# \"%s\": %ld images of %s searched; %d lowest energies (lower = better match)\n", text,
           searched, data, n_top);
    printf("# rank energy key\n");
    for (int i = 0; i < n_top; i++)
        printf("%d %.6f %s\n", i + 1, top[i].energy, top[i].key);
    rc = TJ_EXIT_OK;
done_masks:
    maskset_free(&ms);
done:
    eval_reader_close(r);
    eval_samples_free(&smp);
    for (int i = 0; i < n_top; i++)
        free(top[i].key);
    free(top);
    free(s_img);
    free(u);
    free(ids);
    free(valid);
    eval_model_close(&em);
    return rc;
}
