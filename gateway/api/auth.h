/* auth: bearer-token checks for /v1 and /admin.
 *
 * The config holds only SHA-256 hashes of keys (tidegate config hash-key),
 * so a leaked config file does not leak keys. A presented token is hashed
 * and compared with every configured hash in constant time (CRYPTO_memcmp),
 * all hashes every time, so timing says nothing about which byte differed
 * or which key matched. */
#ifndef TG_AUTH_H
#define TG_AUTH_H

#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"

/* The value doubles as the HTTP status to answer with when not ALLOW. */
typedef enum {
    TG_AUTH_ALLOW = 0,
    TG_AUTH_NEED_KEY = 401,  /* missing or wrong key: 401 + WWW-Authenticate: Bearer */
    TG_AUTH_FORBIDDEN = 403, /* right or wrong key, but not from an allowed peer */
} tg_auth_result;

/* Extracts the token from an Authorization header value ("Bearer <tok>",
 * scheme case-insensitive, surrounding spaces trimmed). value need not be
 * NUL-terminated. Returns 0 with the token (tok, toklen) pointing into value, or -1 if
 * the value is not a non-empty Bearer credential. */
int tg_auth_parse_bearer(const char *value, size_t len, const char **tok, size_t *toklen);

/* /v1 access: ALLOW when no api keys are configured, or SHA-256(token)
 * equals one configured hash; NEED_KEY otherwise (token NULL = no header). */
tg_auth_result tg_auth_check_bearer(const tg_config *cfg, const char *token, size_t toklen);

/* /admin access:
 *  - admin_loopback_only (default) and peer not loopback -> FORBIDDEN;
 *  - admin keys configured -> the token must match one (else NEED_KEY);
 *  - no admin keys -> loopback peers only (FORBIDDEN otherwise), whatever
 *    admin_loopback_only says: an open admin port needs an explicit key. */
tg_auth_result tg_auth_admin_allowed(const tg_config *cfg, const char *token, size_t toklen,
                                     int peer_is_loopback);

/* 1 if the address is 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104; else 0. */
int tg_auth_addr_is_loopback(const struct sockaddr *sa);

/* SHA-256 of data as 64 lowercase hex digits + NUL. Returns 0 or -1. */
int tg_auth_sha256_hex(const void *data, size_t len, char out[65]);

#endif
