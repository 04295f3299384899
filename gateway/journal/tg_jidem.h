/* tg_jidem: the idempotency-key table. (scope, key) -> the request id that
 * key started, the SHA-256 of its body and when. Scope is the hash of the
 * API key that made it ("" without API keys), so one client's keys never
 * meet another's. Rebuilt from the journal's ACCEPTED records at start;
 * entries past the retention are dropped (tg_jidem_expire). Not
 * thread-safe (the loop thread owns it). */
#ifndef TG_JIDEM_H
#define TG_JIDEM_H

#include <stddef.h>
#include <stdint.h>

#define TG_JIDEM_KEY_MAX   255 /* Idempotency-Key bytes */
#define TG_JIDEM_SCOPE_MAX 64

typedef struct tg_jidem_entry {
    struct tg_jidem_entry *next;
    char scope[TG_JIDEM_SCOPE_MAX + 1];
    char key[TG_JIDEM_KEY_MAX + 1];
    char id[256];
    char body_sha[65];
    uint64_t created_us;
} tg_jidem_entry;

typedef struct {
    tg_jidem_entry **slots;
    size_t n_slots, count;
} tg_jidem;

void tg_jidem_init(tg_jidem *t);
void tg_jidem_free(tg_jidem *t);
/* 1 if key is a usable Idempotency-Key: 1..TG_JIDEM_KEY_MAX printable
 * ASCII characters (0x21..0x7e), else 0. */
int tg_jidem_key_valid(const char *key, size_t len);
tg_jidem_entry *tg_jidem_get(const tg_jidem *t, const char *scope, const char *key);
/* Adds an entry; -1 if (scope, key) is already there or a field is too
 * long (nothing changed). */
int tg_jidem_put(tg_jidem *t, const char *scope, const char *key, const char *id,
                 const char *body_sha, uint64_t created_us);
void tg_jidem_del(tg_jidem *t, const char *scope, const char *key);
/* Drops entries created before older_than_us for which keep (if given)
 * says 0. Returns how many went. */
size_t tg_jidem_expire(tg_jidem *t, uint64_t older_than_us,
                       int (*keep)(void *user, const tg_jidem_entry *e), void *user);

#endif
