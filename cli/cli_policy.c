#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* 'policy' arrives with the routing issue; until then it says so and fails. */
int cmd_policy(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tidegate policy ...\n(not available in this build: arrives with the routing "
               "issue)\n");
        return 0;
    }
    fprintf(stderr,
            "tidegate policy: not available in this build (arrives with the routing issue)\n");
    return 1;
}
