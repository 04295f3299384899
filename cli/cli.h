/* cli: the `tidegate` subcommands. Each lives in cli/cli_<name>.c and
 * follows one contract: argv[0] is the subcommand name, `--help` prints its
 * usage to stdout and returns 0, a bad flag prints one usage line to stderr
 * and returns 2, failure returns 1. */
#ifndef TG_CLI_H
#define TG_CLI_H

int cmd_serve(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_engine(int argc, char **argv);
int cmd_engine_tokenize(int argc, char **argv);
int cmd_engine_logits(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_journal(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_synth_model(int argc, char **argv);

/* Helpers shared by subcommands. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))); /* prints, returns 2 */
/* Parses a non-negative int / float flag value; returns 0 or -1. */
int cli_parse_int(const char *s, long min, long max, long *out);
int cli_parse_double(const char *s, double *out);
/* A subcommand reserved for a later issue: `--help` names the issue and
 * returns 0; otherwise says it is not in this build and returns 1. */
int cli_reserved(const char *cmd, const char *issue, int argc, char **argv);

#endif
