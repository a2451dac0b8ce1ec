// launch/ — the tijepa program: one function per subcommand (each in its own cmd_*.c), the
// training loop that ties model/, io/, mpi/ and checkpoints/ together, SLURM scripts, configs.
// Exit codes of every subcommand: 0 done, 1 error, 2 bad usage (TJ_EXIT_*).
#ifndef TIJEPA_LAUNCH_H
#define TIJEPA_LAUNCH_H

#define TJ_EXIT_OK 0
#define TJ_EXIT_ERROR 1
#define TJ_EXIT_USAGE 2
#define TJ_EXIT_REQUEUE 3 // stopped by a signal after saving a checkpoint: requeue and resume

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_shard(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_ckpt(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_encode(int argc, char **argv);

#endif // TIJEPA_LAUNCH_H
