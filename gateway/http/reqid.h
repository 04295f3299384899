/* reqid: request ids.
 *
 * A request id is "req_" followed by 32 lowercase hex characters: 128 bits
 * from getrandom(2), so ids are unguessable and never collide in practice.
 * The gateway makes one for every request; a client's own X-Request-Id is
 * kept apart (sanitized) and never used as the id, so a client cannot pick
 * or collide with another request's id (the journal and
 * GET /v1/requests/{id} key on it). */
#ifndef TG_REQID_H
#define TG_REQID_H

#include <stdbool.h>
#include <stddef.h>

#define TG_REQID_LEN        36  /* strlen("req_") + 32 */
#define TG_REQID_CLIENT_MAX 128 /* longest client id kept */

/* Writes 2 * n_bytes lowercase hex characters of fresh randomness and a
 * NUL into out (2 * n_bytes + 1 bytes). Shared by every id the gateway
 * mints (request ids, chatcmpl-/call_ ids). */
void tg_random_hex(char *out, size_t n_bytes);

/* Writes a fresh id and its NUL into out (TG_REQID_LEN + 1 bytes). */
void tg_reqid_new(char out[TG_REQID_LEN + 1]);

/* True if s has exactly the shape of an id made by tg_reqid_new. */
bool tg_reqid_is_valid(const char *s);

/* Copies a client-supplied id into out (outsz bytes, NUL-terminated),
 * keeping only [A-Za-z0-9._:-] and at most TG_REQID_CLIENT_MAX characters.
 * Returns the length kept; 0 (and out = "") when nothing usable remains, or
 * when the input holds any other character: a mangled id would mislead more
 * than none. */
size_t tg_reqid_sanitize_client(const char *in, size_t n, char *out, size_t outsz);

#endif
