// tijepa: dispatches to one subcommand (see launch/launch.h).
#include <stdio.h>
#include <string.h>

#include "launch.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} Command;

static const Command commands[] = {
    {"train", cmd_train, "pre-train on shards (alone or under mpirun / srun)"},
    {"eval", cmd_eval, "evaluate a checkpoint: retrieval by energy, linear probe"},
    {"score", cmd_score, "the energy of one image-text pair"},
    {"search", cmd_search, "the images of a shard set that best fit a text"},
    {"explain", cmd_explain, "a heat map of where a text attends in an image"},
    {"encode", cmd_encode, "run the frozen encoders once over shards: feature shards"},
    {"synth", cmd_synth, "write the embedded synthetic dataset"},
    {"shard", cmd_shard, "build shards from a folder, captions.tsv, COCO or MVSA"},
    {"vocab", cmd_vocab, "build a WordPiece vocab.txt from captions"},
    {"data", cmd_data, "dataset statistics (data stats --data SPEC)"},
    {"ckpt", cmd_ckpt, "inspect or export a checkpoint"},
};

static void usage(FILE *to) {
    fprintf(to,
            "tijepa %s — TI-JEPA pre-training on CPU clusters\n\nusage: tijepa COMMAND [ARGS]\n\n",
            TIJEPA_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(to, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(to, "\n'tijepa COMMAND --help' shows the options of one command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return TJ_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return TJ_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tijepa %s\n", TIJEPA_VERSION);
        return TJ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].run && !strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tijepa: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return TJ_EXIT_USAGE;
}
