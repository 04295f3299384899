#include "gateway/http/reqid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* n random bytes. getrandom() only fails before the kernel's pool is
 * seeded (it blocks instead) or on EINTR; a process that cannot get
 * randomness must not hand out guessable ids, so it stops. */
static void random_bytes(uint8_t *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "tidegate: getrandom failed: %s\n", strerror(errno));
            abort();
        }
        got += (size_t)r;
    }
}

void tg_random_hex(char *out, size_t n_bytes) {
    static const char hex[] = "0123456789abcdef";
    uint8_t b[64];
    while (n_bytes) {
        size_t k = n_bytes < sizeof b ? n_bytes : sizeof b;
        random_bytes(b, k);
        for (size_t i = 0; i < k; i++) {
            *out++ = hex[b[i] >> 4];
            *out++ = hex[b[i] & 15];
        }
        n_bytes -= k;
    }
    *out = 0;
}

void tg_reqid_new(char out[TG_REQID_LEN + 1]) {
    memcpy(out, "req_", 4);
    tg_random_hex(out + 4, (TG_REQID_LEN - 4) / 2);
}

bool tg_reqid_is_valid(const char *s) {
    if (!s || strncmp(s, "req_", 4) != 0) return false;
    for (int i = 4; i < TG_REQID_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return s[TG_REQID_LEN] == 0;
}

static bool client_char_ok(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

size_t tg_reqid_sanitize_client(const char *in, size_t n, char *out, size_t outsz) {
    if (!out || outsz == 0) return 0;
    out[0] = 0;
    if (!in || n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!client_char_ok(in[i])) return 0;
    size_t k = n;
    if (k > TG_REQID_CLIENT_MAX) k = TG_REQID_CLIENT_MAX;
    if (k > outsz - 1) k = outsz - 1;
    memcpy(out, in, k);
    out[k] = 0;
    return k;
}
