#include <stdio.h>
#include <string.h>

#include "gateway/cli.h"

/* 'config' arrives with the gateway issue; until then it says so and fails. */
int cmd_config(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tidegate config ...\n(not available in this build: arrives with the gateway issue)\n");
        return 0;
    }
    fprintf(stderr, "tidegate config: not available in this build (arrives with the gateway issue)\n");
    return 1;
}
