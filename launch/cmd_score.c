// tijepa score: the energy of one (image, caption) pair under a checkpoint, with the fixed
// evaluation masks (the same masks as `tijepa eval`, so scores are comparable across runs of
// the command and across checkpoints of one run). Lower energy = the caption fits the image better.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"

static void usage(FILE *to) {
    fprintf(to, "usage: tijepa score --ckpt PATH --image FILE --text \"...\" [--vocab vocab.txt] "
                "[--seed S]\n"
                "  Prints 'energy E' for the pair (lower = better match), with the evaluation "
                "masks of\n"
                "  seed S (default: run.seed of the checkpoint's run).\n");
}

int cmd_score(int argc, char **argv) {
    const char *ckpt = NULL, *image = NULL, *text = NULL, *vocab = NULL;
    long seed = -1;
    const EvalOption opts[] = {
        {.flag = "--ckpt", .str = &ckpt},
        {.flag = "--image", .str = &image},
        {.flag = "--text", .str = &text},
        {.flag = "--vocab", .str = &vocab},
        {.flag = "--seed", .num = &seed, .lo = 0, .hi = 0x7fffffffL},
    };
    int rc_args =
        eval_parse_options("score", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), usage);
    if (rc_args != EVAL_ARGS_PARSED) return rc_args;
    if (!ckpt || !image || !text) {
        fprintf(stderr, "tijepa score: --ckpt, --image and --text are required\n");
        usage(stderr);
        return TJ_EXIT_USAGE;
    }
    char err[4096];
    EvalModel em;
    if (eval_model_open(&em, ckpt, vocab, 1, err, sizeof(err))) {
        fprintf(stderr, "tijepa score: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    const ModelShape *sh = &em.rs.model.shape;
    int S = sh->image_size, L = sh->txt_len, grid = S / sh->patch;
    float *x = malloc((size_t)3 * S * S * sizeof(float));
    float *s_img = malloc((size_t)grid * grid * sh->img_dim * sizeof(float));
    float *u = malloc((size_t)L * sh->txt_dim * sizeof(float));
    int32_t *ids = malloc((size_t)L * sizeof(int32_t));
    uint8_t *valid = malloc((size_t)L);
    MaskSet ms;
    int rc = TJ_EXIT_ERROR;
    if (!x || !s_img || !u || !ids || !valid || maskset_alloc(&ms, grid)) {
        fprintf(stderr, "tijepa score: out of memory\n");
    } else {
        if (eval_image_file(x, NULL, image, S, err, sizeof(err)) ||
            tokenizer_encode(em.tok, text, ids, valid, L, NULL, err, sizeof(err)) < 0) {
            fprintf(stderr, "tijepa score: %s\n", err);
        } else {
            model_image_features(em.m, s_img, x, 1);
            model_text_features(em.m, u, ids, valid, 1);
            eval_masks(&ms, &em.rs.mask, grid, seed >= 0 ? (uint64_t)seed : em.rs.seed);
            int zero = 0;
            float e;
            model_pair_energies(em.m, &e, s_img, u, valid, &zero, &zero, 1, &ms);
            printf("energy %.6f\n", e);
            rc = TJ_EXIT_OK;
        }
        maskset_free(&ms);
    }
    free(x);
    free(s_img);
    free(u);
    free(ids);
    free(valid);
    eval_model_close(&em);
    return rc;
}
