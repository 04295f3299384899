#include <stdio.h>
#include <string.h>

#include "gateway/cli.h"

/* 'serve' arrives with the gateway issue; until then it says so and fails. */
int cmd_serve(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tidegate serve ...\n(not available in this build: arrives with the gateway issue)\n");
        return 0;
    }
    fprintf(stderr, "tidegate serve: not available in this build (arrives with the gateway issue)\n");
    return 1;
}
