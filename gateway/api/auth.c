/* auth: bearer keys checked against configured SHA-256 hashes. */
#include "gateway/api/auth.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

static int sha256(const void *data, size_t len, unsigned char out[32]) {
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != 32) return -1;
    return 0;
}

int tg_auth_sha256_hex(const void *data, size_t len, char out[65]) {
    static const char hx[] = "0123456789abcdef";
    unsigned char d[32];
    if (sha256(data ? data : "", len, d) != 0) return -1;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = 0;
    return 0;
}

static int is_space(char c) {
    return c == ' ' || c == '\t';
}

int tg_auth_parse_bearer(const char *value, size_t len, const char **tok, size_t *toklen) {
    if (!value) return -1;
    size_t i = 0;
    while (i < len && is_space(value[i]))
        i++;
    if (len - i < 7 || strncasecmp(value + i, "bearer", 6) != 0 || !is_space(value[i + 6]))
        return -1;
    i += 6;
    while (i < len && is_space(value[i]))
        i++;
    size_t end = len;
    while (end > i && is_space(value[end - 1]))
        end--;
    if (end == i) return -1;
    /* A token is one word (RFC 6750 b64token); inner spaces mean garbage. */
    for (size_t k = i; k < end; k++)
        if (is_space(value[k]) || (unsigned char)value[k] < 0x21 || value[k] == 0x7f) return -1;
    *tok = value + i;
    *toklen = end - i;
    return 0;
}

/* Compares against every hash without an early exit: the time taken depends
 * only on the number of configured keys. */
static int matches_any(const tg_config_sha256 *keys, int n, const char *token, size_t toklen) {
    if (!token) return 0;
    unsigned char d[32];
    if (sha256(token, toklen, d) != 0) return 0;
    int found = 0;
    for (int i = 0; i < n; i++)
        found |= CRYPTO_memcmp(d, keys[i].b, 32) == 0;
    OPENSSL_cleanse(d, sizeof d);
    return found;
}

tg_auth_result tg_auth_check_bearer(const tg_config *cfg, const char *token, size_t toklen) {
    if (cfg->auth.n_api_keys <= 0) return TG_AUTH_ALLOW;
    return matches_any(cfg->auth.api_keys, cfg->auth.n_api_keys, token, toklen) ? TG_AUTH_ALLOW
                                                                                : TG_AUTH_NEED_KEY;
}

tg_auth_result tg_auth_admin_allowed(const tg_config *cfg, const char *token, size_t toklen,
                                     int peer_is_loopback) {
    if (cfg->auth.admin_loopback_only && !peer_is_loopback) return TG_AUTH_FORBIDDEN;
    if (cfg->auth.n_admin_keys <= 0) return peer_is_loopback ? TG_AUTH_ALLOW : TG_AUTH_FORBIDDEN;
    return matches_any(cfg->auth.admin_keys, cfg->auth.n_admin_keys, token, toklen)
               ? TG_AUTH_ALLOW
               : TG_AUTH_NEED_KEY;
}

int tg_auth_addr_is_loopback(const struct sockaddr *sa) {
    if (!sa) return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *a = in6->sin6_addr.s6_addr;
        static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, lo, 16) == 0) return 1;
        return memcmp(a, mapped, 12) == 0 && a[12] == 127;
    }
    return 0;
}
