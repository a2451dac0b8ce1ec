// tijepa_eval_cli: the evaluation subcommands (eval, score, search, explain) behind one small
// dispatcher, for the evaluation tests while launch/main.c may not list them yet (the tests use
// `tijepa` itself when it knows `eval`), plus `train-eval CKPT RUN_DIR STEP`, which calls the
// in-training hook train_evaluate() on a checkpoint's model exactly as the trainer does.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"

static int train_eval(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: tijepa_eval_cli train-eval CKPT RUN_DIR STEP\n");
        return TJ_EXIT_USAGE;
    }
    char err[4096];
    EvalModel em;
    if (eval_model_open(&em, argv[2], NULL, 8, err, sizeof(err))) {
        fprintf(stderr, "train-eval: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    snprintf(em.rs.dir, sizeof(em.rs.dir), "%s", argv[3]);
    int rc = train_evaluate(em.m, em.tok, &em.rs, atol(argv[4]), err, sizeof(err));
    if (rc) fprintf(stderr, "train-eval: %s\n", err);
    eval_model_close(&em);
    return rc ? TJ_EXIT_ERROR : TJ_EXIT_OK;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {
        {"eval", cmd_eval}, {"score", cmd_score}, {"search", cmd_search}, {"explain", cmd_explain}};
    if (argc >= 2 && !strcmp(argv[1], "train-eval")) return train_eval(argc, argv);
    for (size_t i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "usage: tijepa_eval_cli eval|score|search|explain|train-eval ARGS\n");
    return TJ_EXIT_USAGE;
}
