/* tg_jcrypt: optional encryption at rest for journal payloads (AES-256-GCM
 * through OpenSSL). Each sealed payload is nonce(12) | ciphertext | tag(16),
 * with a fresh random nonce per record, and authenticates caller-supplied
 * associated data (the record header and request id) so a record cannot be
 * moved to another id undetected. Thread-safe: a key is read-only after
 * load. */
#ifndef TG_JCRYPT_H
#define TG_JCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"

#define TG_JCRYPT_OVERHEAD 28 /* nonce 12 + tag 16 */
#define TG_JCRYPT_ENV      "TIDEGATE_JOURNAL_KEY"

typedef struct tg_jcrypt tg_jcrypt;

/* Loads a key: from key_file when given (32 raw bytes or 64 hex digits,
 * surrounding whitespace ignored; refused if group/other can read it), else
 * from env_value when non-NULL and non-empty (64 hex digits). Returns 0 and
 * *out = NULL when neither is given (no encryption), 0 and a key, or -1
 * with a message in err. */
int tg_jcrypt_load(const char *key_file, const char *env_value, tg_jcrypt **out, char *err,
                   size_t errsz);
/* Builds a key from 32 bytes (tests). */
tg_jcrypt *tg_jcrypt_from_bytes(const uint8_t key[32]);
void tg_jcrypt_free(tg_jcrypt *c);
/* 32-bit fingerprint of the key (a hash of it, not the key), written into
 * segment headers so a wrong key is refused instead of read as corruption. */
uint32_t tg_jcrypt_fingerprint(const tg_jcrypt *c);

/* Appends nonce | ciphertext | tag of pt to out. Returns 0 or -1. */
int tg_jcrypt_seal(const tg_jcrypt *c, const void *aad, size_t aad_len, const void *pt, size_t n,
                   tg_buf *out);
/* Appends the plaintext of a sealed payload to out; -1 if it does not
 * authenticate (wrong key, tampering, truncation). */
int tg_jcrypt_open(const tg_jcrypt *c, const void *aad, size_t aad_len, const uint8_t *in, size_t n,
                   tg_buf *out);

#endif
