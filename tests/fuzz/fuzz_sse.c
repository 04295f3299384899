/* Fuzzes the SSE parser (a cloud upstream's stream is untrusted input): the
 * input is fed in pieces whose sizes come from the first byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api/sse.h"

static int on_msg(void *user, const tg_sse_msg *m) {
    size_t *total = user;
    if (m->data[m->data_len] != 0 || strlen(m->event) == 0) abort();
    *total += m->data_len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t step = 1 + data[0] % 17, total = 0;
    tg_sse_parser p;
    tg_sse_parser_init(&p, 4096);
    for (size_t i = 1; i < size; i += step) {
        size_t n = size - i < step ? size - i : step;
        if (tg_sse_parser_feed(&p, (const char *)data + i, n, on_msg, &total) != 0) break;
    }
    tg_sse_parser_free(&p);
    return 0;
}
