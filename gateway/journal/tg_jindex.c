#include "gateway/journal/tg_jindex.h"

#include <stdlib.h>
#include <string.h>

/* Old buckets moved per add while growing: the new table has twice the
 * slots, so the move ends long before it fills up. */
#define MIGRATE_STEP 16

static uint64_t hash_id(const char *id, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a: ids are random already */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)id[i]) * 1099511628211ull;
    return h;
}

void tg_jindex_init(tg_jindex *x) {
    memset(x, 0, sizeof *x);
    x->n_slots = 1024;
    x->slots = calloc(x->n_slots, sizeof *x->slots);
    if (!x->slots) abort();
}

static void entry_free(tg_jentry *e) {
    if (e->locs != e->inl) free(e->locs);
    free(e);
}

static void free_chains(tg_jentry **s, size_t from, size_t n) {
    for (size_t i = from; i < n; i++)
        for (tg_jentry *e = s[i], *nx; e; e = nx) {
            nx = e->next;
            entry_free(e);
        }
}

void tg_jindex_free(tg_jindex *x) {
    if (x->slots) free_chains(x->slots, 0, x->n_slots);
    if (x->old) free_chains(x->old, x->mig, x->n_old);
    free(x->slots);
    free(x->old);
    free(x->stats);
    memset(x, 0, sizeof *x);
}

static tg_jentry *chain_find(tg_jentry *e, uint64_t h, const char *id, size_t id_len) {
    for (; e; e = e->next)
        if (e->hash == h && !strncmp(e->id, id, id_len) && e->id[id_len] == 0) return e;
    return NULL;
}

tg_jentry *tg_jindex_find(const tg_jindex *x, const char *id, size_t id_len) {
    if (id_len == 0 || id_len > TG_JREC_ID_MAX) return NULL;
    uint64_t h = hash_id(id, id_len);
    tg_jentry *e = chain_find(x->slots[h & (x->n_slots - 1)], h, id, id_len);
    if (!e && x->old) {
        size_t k = h & (x->n_old - 1);
        if (k >= x->mig) e = chain_find(x->old[k], h, id, id_len);
    }
    return e;
}

/* Moves up to n buckets of the old table into the new one. */
static void migrate(tg_jindex *x, size_t n) {
    for (; x->old && n; n--) {
        for (tg_jentry *e = x->old[x->mig], *nx; e; e = nx) {
            nx = e->next;
            size_t k = e->hash & (x->n_slots - 1);
            e->next = x->slots[k];
            x->slots[k] = e;
        }
        x->old[x->mig] = NULL;
        if (++x->mig == x->n_old) {
            free(x->old);
            x->old = NULL;
            x->n_old = x->mig = 0;
        }
    }
}

void tg_jindex_settle(tg_jindex *x) {
    migrate(x, x->n_old);
}

static void grow(tg_jindex *x) {
    tg_jindex_settle(x); /* only after mass drops and re-adds; normally done */
    size_t n = x->n_slots * 2;
    tg_jentry **s = calloc(n, sizeof *s);
    if (!s) abort();
    x->old = x->slots;
    x->n_old = x->n_slots;
    x->mig = 0;
    x->slots = s;
    x->n_slots = n;
}

/* The stats of segment seg, created if missing (new entries nearly always
 * land in the last segment: checked first). */
static tg_jsegstat *stat_of(tg_jindex *x, uint64_t seg) {
    size_t lo = 0, hi = x->n_stats;
    if (hi && x->stats[hi - 1].seg == seg) return &x->stats[hi - 1];
    if (hi && x->stats[hi - 1].seg < seg) {
        lo = hi;
    } else {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (x->stats[mid].seg < seg)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < x->n_stats && x->stats[lo].seg == seg) return &x->stats[lo];
    }
    if (x->n_stats == x->cap_stats) {
        x->cap_stats = x->cap_stats ? x->cap_stats * 2 : 16;
        x->stats = realloc(x->stats, x->cap_stats * sizeof *x->stats);
        if (!x->stats) abort();
    }
    memmove(x->stats + lo + 1, x->stats + lo, (x->n_stats - lo) * sizeof *x->stats);
    x->n_stats++;
    x->stats[lo] = (tg_jsegstat){.seg = seg};
    return &x->stats[lo];
}

int tg_jindex_add(tg_jindex *x, int type, const char *id, size_t id_len, uint64_t ts_us,
                  uint64_t seg, uint64_t off, uint32_t size) {
    migrate(x, MIGRATE_STEP);
    tg_jentry *e = tg_jindex_find(x, id, id_len);
    if (!e) {
        if (type != TG_JREC_ACCEPTED) return -1;
        if (x->count >= x->n_slots) grow(x);
        e = calloc(1, sizeof *e);
        if (!e) abort();
        memcpy(e->id, id, id_len);
        e->hash = hash_id(id, id_len);
        e->locs = e->inl;
        e->cap_locs = TG_JINDEX_INLINE_LOCS;
        e->created_us = ts_us;
        e->first_seg = e->last_seg = seg;
        size_t k = e->hash & (x->n_slots - 1);
        e->next = x->slots[k];
        x->slots[k] = e;
        x->count++;
        stat_of(x, seg)->live++;
    }
    if (e->n_locs == e->cap_locs) {
        e->cap_locs *= 2;
        if (e->locs == e->inl) {
            e->locs = malloc(e->cap_locs * sizeof *e->locs);
            if (!e->locs) abort();
            memcpy(e->locs, e->inl, sizeof e->inl);
        } else {
            e->locs = realloc(e->locs, e->cap_locs * sizeof *e->locs);
            if (!e->locs) abort();
        }
    }
    e->locs[e->n_locs++] = (tg_jloc){seg, off, size};
    if (type != TG_JREC_CHUNK) e->state = (uint8_t)type;
    if (tg_jrec_is_terminal(type)) {
        if (e->n_terminal < 255) e->n_terminal++;
        if (e->n_terminal == 1) {
            e->terminal_us = ts_us;
            tg_jsegstat *s = stat_of(x, e->first_seg);
            s->live--;
            if (ts_us > s->max_term_us) s->max_term_us = ts_us;
        }
    }
    e->updated_us = ts_us;
    e->last_seg = seg;
    return 0;
}

uint64_t tg_jindex_compact_cut(const tg_jindex *x, uint64_t older_than_us, uint64_t first_seg,
                               uint64_t active_seg) {
    if (active_seg <= first_seg) return 0;
    uint64_t cut = active_seg - 1;
    /* Lower the cut below the first segment holding the start of a request
     * that must stay: live, or ended too recently. A request that ended
     * long enough ago may be split by the cut: its later records (in kept
     * segments) become remnants that recovery and `journal check` of a
     * compacted journal skip. Not splitting them would keep every segment
     * under steady traffic, where some request always crosses each
     * segment boundary, and the journal would grow until the disk is full. */
    for (size_t i = 0; i < x->n_stats && x->stats[i].seg <= cut; i++) {
        const tg_jsegstat *s = &x->stats[i];
        if (s->live || s->max_term_us >= older_than_us) {
            cut = s->seg - 1;
            break;
        }
    }
    return cut >= first_seg ? cut : 0;
}

void tg_jindex_drop_through(tg_jindex *x, uint64_t cut) {
    tg_jindex_settle(x);
    /* The stats of the segments that go, and every request that started
     * there (cut comes from compact_cut: each of them ended long enough ago;
     * one with records past the cut leaves remnants there). */
    size_t k = 0;
    while (k < x->n_stats && x->stats[k].seg <= cut)
        k++;
    memmove(x->stats, x->stats + k, (x->n_stats - k) * sizeof *x->stats);
    x->n_stats -= k;
    for (size_t i = 0; i < x->n_slots; i++)
        for (tg_jentry **pp = &x->slots[i]; *pp;) {
            tg_jentry *e = *pp;
            if (e->first_seg <= cut) {
                *pp = e->next;
                entry_free(e);
                x->count--;
            } else {
                pp = &e->next;
            }
        }
}
