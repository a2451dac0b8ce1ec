// tijepa eval: evaluates one checkpoint alone (one process): retrieval by energy on held-out
// pairs and linear probes, a readable table on stdout and the JSON report of DESIGN.md §5.
#include <stdio.h>
#include <string.h>

#include "evaluate.h"

static void usage(FILE *to) {
    fprintf(
        to,
        "usage: tijepa eval --ckpt PATH [--data SPEC] [--pairs N]\n"
        "                   [--probe-train SPEC --probe-test SPEC] [--probe NAME:TRAIN:TEST ...]\n"
        "                   [--out report.json] [--vocab vocab.txt] [--seed S] [--threads N]\n"
        "  Evaluates a checkpoint (a .h5 file, or a run / ckpt directory: its newest one).\n"
        "  --data     held-out shards for retrieval by energy (default: data.val of the run)\n"
        "  --pairs    N: the first N usable samples, N×N energies (default: eval.pairs, 256)\n"
        "  --probe-train/--probe-test  linear probe (MVSA protocol) named \"probe\"; labels "
        "from .cls\n"
        "  --probe    NAME:TRAIN:TEST, repeatable (e.g. mvsa-single:... and "
        "mvsa-multiple:...)\n"
        "             (default when no probe is given: eval.probe_train/probe_test of the run)\n"
        "  --seed     evaluation mask seed (default: run.seed, the masks used in training)\n"
        "  --threads  OpenBLAS/OpenMP threads (default: train.threads of the run)\n"
        "  --vocab    vocabulary (default: data.vocab of the run)\n");
}

// --probe NAME:TRAIN:TEST, repeatable.
static int add_probe(void *ctx, char *value, char *err, size_t errlen) {
    EvalOptions *o = ctx;
    if (o->n_probes == EVAL_MAX_PROBES) {
        snprintf(err, errlen, "at most %d probes", EVAL_MAX_PROBES);
        return -1;
    }
    if (probe_task_parse(&o->probes[o->n_probes], value, err, errlen)) return -1;
    o->n_probes++;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *out = NULL, *vocab = NULL;
    const char *probe_train = NULL, *probe_test = NULL;
    long pairs = -1, seed = -1, threads = 0;
    EvalOptions o;
    eval_options_default(&o);
    char err[4096];
    const EvalOption opts[] = {
        {.flag = "--ckpt", .str = &ckpt},
        {.flag = "--data", .str = &data},
        {.flag = "--out", .str = &out},
        {.flag = "--vocab", .str = &vocab},
        {.flag = "--probe-train", .str = &probe_train},
        {.flag = "--probe-test", .str = &probe_test},
        {.flag = "--pairs", .num = &pairs, .lo = 2, .hi = 16384},
        {.flag = "--seed", .num = &seed, .lo = 0, .hi = 0x7fffffffL},
        {.flag = "--threads", .num = &threads, .lo = 1, .hi = 1024},
        {.flag = "--probe", .take = add_probe, .ctx = &o},
    };
    int rc_args =
        eval_parse_options("eval", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), usage);
    if (rc_args != EVAL_ARGS_PARSED) return rc_args;
    if (!ckpt) {
        fprintf(stderr, "tijepa eval: --ckpt is required\n");
        usage(stderr);
        return TJ_EXIT_USAGE;
    }
    if (!probe_train != !probe_test) {
        fprintf(stderr, "tijepa eval: --probe-train and --probe-test go together\n");
        return TJ_EXIT_USAGE;
    }
    if (probe_train) {
        if (o.n_probes == EVAL_MAX_PROBES) {
            fprintf(stderr, "tijepa eval: at most %d probes\n", EVAL_MAX_PROBES);
            return TJ_EXIT_USAGE;
        }
        ProbeTask *t = &o.probes[o.n_probes++];
        snprintf(t->name, sizeof(t->name), "probe");
        t->train = probe_train;
        t->test = probe_test;
    }
    for (int a = 0; a < o.n_probes; a++)
        for (int b = 0; b < a; b++)
            if (!strcmp(o.probes[a].name, o.probes[b].name)) {
                fprintf(stderr, "tijepa eval: two probes are named '%s'\n", o.probes[a].name);
                return TJ_EXIT_USAGE;
            }
    EvalModel em;
    if (eval_model_open(&em, ckpt, vocab, 64, err, sizeof(err))) {
        fprintf(stderr, "tijepa eval: %s\n", err);
        return TJ_EXIT_ERROR;
    }
    if (threads > 0) model_set_threads((int)threads);
    const RunSettings *rs = &em.rs;
    o.data = data ? data : rs->val;
    o.pairs = pairs > 0 ? (int)pairs : rs->eval_pairs;
    o.seed = seed >= 0 ? (uint64_t)seed : rs->seed;
    o.mask = rs->mask;
    if (o.n_probes == 0 && rs->probe_train[0] && rs->probe_test[0]) {
        snprintf(o.probes[0].name, sizeof(o.probes[0].name), "probe");
        o.probes[0].train = rs->probe_train;
        o.probes[0].test = rs->probe_test;
        o.n_probes = 1;
    }
    if (!o.data[0] && o.n_probes == 0) {
        fprintf(stderr, "tijepa eval: nothing to evaluate: give --data SPEC and/or a probe "
                        "(the run's config sets neither data.val nor eval.probe_*)\n");
        eval_model_close(&em);
        return TJ_EXIT_USAGE;
    }
    printf("tijepa eval: %s (step %ld, preset %s, %s mode)\n", em.path, em.step, rs->preset,
           rs->model.mode == MODE_PAPER ? "paper" : "scratch");
    fflush(stdout);
    EvalReport rep;
    int rc = TJ_EXIT_OK;
    if (evaluate_model(&rep, em.m, em.tok, &o, em.step, err, sizeof(err))) {
        fprintf(stderr, "tijepa eval: %s\n", err);
        rc = TJ_EXIT_ERROR;
    } else {
        eval_report_print(&rep, stdout);
        if (out) {
            if (eval_report_write_json(&rep, out, err, sizeof(err))) {
                fprintf(stderr, "tijepa eval: %s\n", err);
                rc = TJ_EXIT_ERROR;
            } else {
                printf("report: %s\n", out);
            }
        }
    }
    eval_model_close(&em);
    return rc;
}
