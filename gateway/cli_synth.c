#include <stdio.h>
#include <string.h>

#include "gateway/cli.h"

/* 'synth-model' arrives with the engine issue; until then it says so and fails. */
int cmd_synth_model(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tidegate synth-model ...\n(not available in this build: arrives with the engine issue)\n");
        return 0;
    }
    fprintf(stderr, "tidegate synth-model: not available in this build (arrives with the engine issue)\n");
    return 1;
}
