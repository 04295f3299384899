#include "gateway/journal/tg_jindex.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_id(const char *id, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a: ids are random already */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)id[i]) * 1099511628211ull;
    return h;
}

void tg_jindex_init(tg_jindex *x) {
    x->n_slots = 1024;
    x->count = 0;
    x->slots = calloc(x->n_slots, sizeof *x->slots);
    if (!x->slots) abort();
}

void tg_jindex_free(tg_jindex *x) {
    for (size_t i = 0; i < x->n_slots; i++)
        for (tg_jentry *e = x->slots[i], *nx; e; e = nx) {
            nx = e->next;
            free(e->locs);
            free(e);
        }
    free(x->slots);
    memset(x, 0, sizeof *x);
}

tg_jentry *tg_jindex_find(const tg_jindex *x, const char *id, size_t id_len) {
    if (id_len == 0 || id_len > TG_JREC_ID_MAX) return NULL;
    for (tg_jentry *e = x->slots[hash_id(id, id_len) & (x->n_slots - 1)]; e; e = e->next)
        if (!strncmp(e->id, id, id_len) && e->id[id_len] == 0) return e;
    return NULL;
}

static void grow(tg_jindex *x) {
    size_t n = x->n_slots * 2;
    tg_jentry **s = calloc(n, sizeof *s);
    if (!s) abort();
    for (size_t i = 0; i < x->n_slots; i++)
        for (tg_jentry *e = x->slots[i], *nx; e; e = nx) {
            nx = e->next;
            size_t k = hash_id(e->id, strlen(e->id)) & (n - 1);
            e->next = s[k];
            s[k] = e;
        }
    free(x->slots);
    x->slots = s;
    x->n_slots = n;
}

int tg_jindex_add(tg_jindex *x, int type, const char *id, size_t id_len, uint64_t ts_us,
                  uint64_t seg, uint64_t off, uint32_t size) {
    tg_jentry *e = tg_jindex_find(x, id, id_len);
    if (!e) {
        if (type != TG_JREC_ACCEPTED) return -1;
        if (x->count >= x->n_slots) grow(x);
        e = calloc(1, sizeof *e);
        if (!e) abort();
        memcpy(e->id, id, id_len);
        e->created_us = ts_us;
        e->first_seg = seg;
        size_t k = hash_id(id, id_len) & (x->n_slots - 1);
        e->next = x->slots[k];
        x->slots[k] = e;
        x->count++;
    }
    if (e->n_locs == e->cap_locs) {
        e->cap_locs = e->cap_locs ? e->cap_locs * 2 : 4;
        e->locs = realloc(e->locs, e->cap_locs * sizeof *e->locs);
        if (!e->locs) abort();
    }
    e->locs[e->n_locs++] = (tg_jloc){seg, off, size};
    if (type != TG_JREC_CHUNK) e->state = (uint8_t)type;
    if (tg_jrec_is_terminal(type)) {
        if (e->n_terminal < 255) e->n_terminal++;
        if (e->n_terminal == 1) e->terminal_us = ts_us;
    }
    e->updated_us = ts_us;
    e->last_seg = seg;
    return 0;
}

uint64_t tg_jindex_compact_cut(const tg_jindex *x, uint64_t older_than_us, uint64_t first_seg,
                               uint64_t active_seg) {
    if (active_seg <= first_seg) return 0;
    uint64_t cut = active_seg - 1;
    /* Lower the cut below every request that must stay, and below every
     * request that would be split by it (its later records would become
     * orphans); repeat until nothing moves it. */
    for (int changed = 1; changed && cut >= first_seg;) {
        changed = 0;
        for (size_t i = 0; i < x->n_slots; i++)
            for (const tg_jentry *e = x->slots[i]; e; e = e->next) {
                if (e->first_seg > cut) continue;
                int keep = !e->n_terminal || e->terminal_us >= older_than_us;
                if (keep || e->last_seg > cut) {
                    cut = e->first_seg - 1;
                    changed = 1;
                }
            }
    }
    return cut >= first_seg ? cut : 0;
}

void tg_jindex_drop_through(tg_jindex *x, uint64_t cut) {
    for (size_t i = 0; i < x->n_slots; i++)
        for (tg_jentry **pp = &x->slots[i]; *pp;) {
            tg_jentry *e = *pp;
            if (e->last_seg <= cut) {
                *pp = e->next;
                free(e->locs);
                free(e);
                x->count--;
            } else {
                pp = &e->next;
            }
        }
}
