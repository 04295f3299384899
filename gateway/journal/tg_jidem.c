#include "gateway/journal/tg_jidem.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/journal/tg_crc32c.h"

void tg_jidem_init(tg_jidem *t) {
    t->n_slots = 256;
    t->count = 0;
    t->slots = calloc(t->n_slots, sizeof *t->slots);
    if (!t->slots) abort();
}

void tg_jidem_free(tg_jidem *t) {
    for (size_t i = 0; i < t->n_slots; i++) {
        tg_jidem_entry *e = t->slots[i];
        while (e) {
            tg_jidem_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(t->slots);
    t->slots = NULL;
    t->n_slots = t->count = 0;
}

int tg_jidem_key_valid(const char *key, size_t len) {
    if (!key || len == 0 || len > TG_JIDEM_KEY_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e) return 0;
    return 1;
}

static size_t slot_of(const tg_jidem *t, const char *scope, const char *key) {
    uint32_t h = tg_crc32c(0, scope, strlen(scope));
    h = tg_crc32c(h, "\n", 1);
    h = tg_crc32c(h, key, strlen(key));
    return h & (t->n_slots - 1);
}

tg_jidem_entry *tg_jidem_get(const tg_jidem *t, const char *scope, const char *key) {
    for (tg_jidem_entry *e = t->slots[slot_of(t, scope, key)]; e; e = e->next)
        if (!strcmp(e->scope, scope) && !strcmp(e->key, key)) return e;
    return NULL;
}

static void grow(tg_jidem *t) {
    size_t old_n = t->n_slots;
    tg_jidem_entry **old = t->slots;
    t->n_slots = old_n * 2;
    t->slots = calloc(t->n_slots, sizeof *t->slots);
    if (!t->slots) abort();
    for (size_t i = 0; i < old_n; i++) {
        tg_jidem_entry *e = old[i];
        while (e) {
            tg_jidem_entry *n = e->next;
            size_t s = slot_of(t, e->scope, e->key);
            e->next = t->slots[s];
            t->slots[s] = e;
            e = n;
        }
    }
    free(old);
}

int tg_jidem_put(tg_jidem *t, const char *scope, const char *key, const char *id,
                 const char *body_sha, uint64_t created_us) {
    if (strlen(scope) > TG_JIDEM_SCOPE_MAX || strlen(key) > TG_JIDEM_KEY_MAX ||
        strlen(id) >= sizeof(((tg_jidem_entry *)0)->id) || strlen(body_sha) > 64)
        return -1;
    if (tg_jidem_get(t, scope, key)) return -1;
    if (t->count >= t->n_slots) grow(t);
    tg_jidem_entry *e = calloc(1, sizeof *e);
    if (!e) abort();
    strcpy(e->scope, scope);
    strcpy(e->key, key);
    strcpy(e->id, id);
    strcpy(e->body_sha, body_sha);
    e->created_us = created_us;
    size_t s = slot_of(t, scope, key);
    e->next = t->slots[s];
    t->slots[s] = e;
    t->count++;
    return 0;
}

void tg_jidem_del(tg_jidem *t, const char *scope, const char *key) {
    tg_jidem_entry **pp = &t->slots[slot_of(t, scope, key)];
    for (; *pp; pp = &(*pp)->next) {
        tg_jidem_entry *e = *pp;
        if (!strcmp(e->scope, scope) && !strcmp(e->key, key)) {
            *pp = e->next;
            free(e);
            t->count--;
            return;
        }
    }
}

size_t tg_jidem_expire(tg_jidem *t, uint64_t older_than_us,
                       int (*keep)(void *user, const tg_jidem_entry *e), void *user) {
    size_t gone = 0;
    for (size_t i = 0; i < t->n_slots; i++) {
        tg_jidem_entry **pp = &t->slots[i];
        while (*pp) {
            tg_jidem_entry *e = *pp;
            if (e->created_us < older_than_us && !(keep && keep(user, e))) {
                *pp = e->next;
                free(e);
                t->count--;
                gone++;
            } else {
                pp = &e->next;
            }
        }
    }
    return gone;
}
