#include <stdio.h>
#include <string.h>

#include "gateway/cli.h"

/* 'inspect' arrives with the engine issue; until then it says so and fails. */
int cmd_inspect(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tidegate inspect ...\n(not available in this build: arrives with the engine issue)\n");
        return 0;
    }
    fprintf(stderr, "tidegate inspect: not available in this build (arrives with the engine issue)\n");
    return 1;
}
