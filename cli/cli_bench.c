#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* 'bench' arrives with the engine speed issue; until then it says so and fails. */
int cmd_bench(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tidegate bench ...\n(not available in this build: arrives with the engine "
               "speed issue)\n");
        return 0;
    }
    fprintf(stderr,
            "tidegate bench: not available in this build (arrives with the engine speed issue)\n");
    return 1;
}
