/* tidegate: one binary, many subcommands. This file only dispatches; each
 * subcommand lives in cli/cli_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "common/tg_log.h"
#include "cli/cli.h"

/* The version comes from CMake's project(VERSION) and nowhere else. */
#ifndef TIDEGATE_VERSION
#error "TIDEGATE_VERSION is set by CMakeLists.txt from project(VERSION)"
#endif

static int cmd_version(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--help") && strcmp(argv[1], "-h")) {
        fprintf(stderr, "tidegate version: unexpected argument '%s'\nusage: tidegate version\n",
                argv[1]);
        return 2;
    }
    printf("tidegate %s\n", TIDEGATE_VERSION);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} k_cmds[] = {
    {"serve", cmd_serve, "run the OpenAI-compatible gateway (embedded engine + cloud)"},
    {"generate", cmd_generate, "generate text from a prompt with the embedded engine"},
    {"inspect", cmd_inspect, "print a GGUF model's metadata, tensors, types and sizes"},
    {"engine", cmd_engine, "engine verification verbs: tokenize, logits"},
    {"policy", cmd_policy, "check or explain a routing policy"},
    {"config", cmd_config, "check a gateway config file"},
    {"journal", cmd_journal, "check or dump a request journal"},
    {"bench", cmd_bench, "run engine and gateway benchmarks"},
    {"synth-model", cmd_synth_model, "write a random-weight or scripted LFM2 GGUF"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: tidegate <command> [options]   (tidegate <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        fprintf(f, "  %-12s %s\n", k_cmds[i].name, k_cmds[i].help);
}

int main(int argc, char **argv) {
    tg_log_init_from_env();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        if (!strcmp(argv[1], k_cmds[i].name)) return k_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tidegate: unknown command '%s'\n", argv[1]);
    fprintf(stderr, "usage: tidegate <command> [options]   (see tidegate --help)\n");
    return 2;
}
