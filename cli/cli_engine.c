#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_engine(int argc, char **argv) {
    static const char *usage = "tidegate engine tokenize|logits [options]";
    if (argc < 2) return cli_usage_error("engine", usage, "missing verb");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: %s\n\n  tokenize  print token ids of a file's bytes as a JSON array\n"
               "  logits    write next-token logits rows as float32\n",
               usage);
        return 0;
    }
    if (!strcmp(argv[1], "tokenize")) return cmd_engine_tokenize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "logits")) return cmd_engine_logits(argc - 1, argv + 1);
    return cli_usage_error("engine", usage, "unknown verb '%s'", argv[1]);
}
