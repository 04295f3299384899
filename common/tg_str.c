#include "common/tg_str.h"

#include <stdlib.h>
#include <string.h>

char *tg_xstrdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (!p) abort();
    memcpy(p, s, n);
    return p;
}
