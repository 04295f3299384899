#include "gateway/journal/tg_jchunk.h"

#include <string.h>

static const char k_head[] = "{\"n\":";
static const char k_data[] = ",\"data\":";

void tg_jchunk_encode(tg_buf *out, uint64_t n, const char *data, size_t len) {
    tg_buf_printf(out, "%s%llu%s", k_head, (unsigned long long)n, k_data);
    tg_buf_append(out, data, len);
    tg_buf_putc(out, '}');
}

int tg_jchunk_parse_n(const char *s, size_t len, uint64_t *n) {
    if (len == 0 || len > 19) return -1;
    if (len > 1 && s[0] == '0') return -1; /* one spelling per number */
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits cannot wrap a u64 */
    }
    if (v > TG_JCHUNK_N_MAX) return -1;
    *n = v;
    return 0;
}

int tg_jchunk_decode(const uint8_t *p, size_t plen, uint64_t *n, const char **data, size_t *len) {
    const char *s = (const char *)p;
    size_t hl = sizeof k_head - 1, dl = sizeof k_data - 1;
    if (plen < hl + 1 + dl + 1 + 1 || memcmp(s, k_head, hl) != 0 || s[plen - 1] != '}') return -1;
    size_t i = hl, start = i;
    while (i < plen && s[i] >= '0' && s[i] <= '9')
        i++;
    uint64_t v;
    if (tg_jchunk_parse_n(s + start, i - start, &v) != 0 || v == 0) return -1;
    if (plen - i < dl + 2 || memcmp(s + i, k_data, dl) != 0) return -1;
    i += dl;
    *n = v;
    *data = s + i;
    *len = plen - 1 - i;
    return 0;
}
