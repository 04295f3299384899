#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* 'journal' arrives with the journal issue; until then it says so and fails. */
int cmd_journal(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: tidegate journal ...\n(not available in this build: arrives with the "
               "journal issue)\n");
        return 0;
    }
    fprintf(stderr,
            "tidegate journal: not available in this build (arrives with the journal issue)\n");
    return 1;
}
