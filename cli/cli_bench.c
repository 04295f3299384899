#include "cli/cli.h"

/* 'bench' arrives with the engine speed issue; until then it says so and fails. */
int cmd_bench(int argc, char **argv) {
    return cli_reserved("bench", "the engine speed issue", argc, argv);
}
