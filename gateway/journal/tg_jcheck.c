#include "gateway/journal/tg_jcheck.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/tg_buf.h"
#include "gateway/journal/tg_jchunk.h"
#include "gateway/journal/tg_jindex.h"

typedef struct {
    char *key; /* scope "\n" idempotency key */
    char id[TG_JREC_ID_MAX + 1];
} idem_use;

typedef struct {
    tg_jindex idx;
    tg_jcheck_result *res;
    FILE *out;
    int max_print, printed;
    idem_use *idem;
    size_t n_idem, cap_idem;
    char **released; /* ids that ended FAILED with 429/503: they let go of their key */
    size_t n_rel, cap_rel;
    bool compacted; /* records without ACCEPTED are remnants */
} ctx;

static void violation(ctx *c, const tg_jrec *r, const char *what) {
    c->res->violations++;
    if (c->out && c->printed < c->max_print) {
        fprintf(c->out, "violation: %.*s: %s (%s record)\n", (int)r->id_len, r->id, what,
                tg_jrec_type_name(r->type));
        c->printed++;
    }
}

/* ACCEPTED must hold the request: {"body": {...}, "scope": "...", "idem": ...}. */
static void check_accepted(ctx *c, const tg_jrec *r) {
    json_tokener *t = json_tokener_new();
    json_object *o = json_tokener_parse_ex(t, (const char *)r->payload, (int)r->payload_len);
    bool complete = json_tokener_get_error(t) == json_tokener_success &&
                    json_tokener_get_parse_end(t) == r->payload_len;
    json_tokener_free(t);
    json_object *body = NULL, *idem = NULL, *scope = NULL;
    if (!o || !complete || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "body", &body) ||
        !json_object_is_type(body, json_type_object)) {
        violation(c, r, "ACCEPTED does not hold the request body");
        json_object_put(o);
        return;
    }
    if (json_object_object_get_ex(o, "idem", &idem) &&
        json_object_is_type(idem, json_type_string)) {
        json_object_object_get_ex(o, "scope", &scope);
        tg_buf k = TG_BUF_INIT;
        tg_buf_puts(&k, scope && json_object_is_type(scope, json_type_string)
                            ? json_object_get_string(scope)
                            : "");
        tg_buf_putc(&k, '\n');
        tg_buf_puts(&k, json_object_get_string(idem));
        if (c->n_idem == c->cap_idem) {
            c->cap_idem = c->cap_idem ? c->cap_idem * 2 : 64;
            c->idem = realloc(c->idem, c->cap_idem * sizeof *c->idem);
            if (!c->idem) abort();
        }
        idem_use *u = &c->idem[c->n_idem++];
        u->key = tg_buf_steal(&k);
        memcpy(u->id, r->id, r->id_len);
        u->id[r->id_len] = 0;
    }
    json_object_put(o);
}

bool tg_jcheck_status_retryable(int status) {
    return status == 429 || status == 503;
}

bool tg_jcheck_is_refusal(const tg_jrec *r) {
    if (r->type != TG_JREC_FAILED) return false;
    json_tokener *t = json_tokener_new();
    json_object *o =
        t ? json_tokener_parse_ex(t, (const char *)r->payload, (int)r->payload_len) : NULL;
    if (t) json_tokener_free(t);
    json_object *st;
    bool yes = o && json_object_object_get_ex(o, "status", &st) &&
               json_object_is_type(st, json_type_int) &&
               tg_jcheck_status_retryable(json_object_get_int(st));
    json_object_put(o);
    return yes;
}

/* A refused request let go of its Idempotency-Key, so a later request may
 * hold it. */
static void check_failed(ctx *c, const tg_jrec *r) {
    if (!tg_jcheck_is_refusal(r)) return;
    if (c->n_rel == c->cap_rel) {
        c->cap_rel = c->cap_rel ? c->cap_rel * 2 : 64;
        c->released = realloc(c->released, c->cap_rel * sizeof *c->released);
        if (!c->released) abort();
    }
    char *id = malloc(r->id_len + 1);
    if (!id) abort();
    memcpy(id, r->id, r->id_len);
    id[r->id_len] = 0;
    c->released[c->n_rel++] = id;
}

/* A request's CHUNK records are its streamed events 1, 2, 3, ... in order:
 * a gap or a repeat would make a resumed stream skip or repeat an event. */
static void check_chunk(ctx *c, const tg_jrec *r) {
    c->res->chunks++;
    uint64_t n;
    const char *data;
    size_t len;
    if (tg_jchunk_decode(r->payload, r->payload_len, &n, &data, &len) != 0) {
        violation(c, r, "CHUNK payload is not {\"n\":N,\"data\":...}");
        return;
    }
    tg_jentry *e = tg_jindex_find(&c->idx, r->id, r->id_len);
    if (!e) return;
    if (n != e->chunk_n + 1) {
        char what[96];
        snprintf(what, sizeof what, "CHUNK %llu after CHUNK %llu (%s)", (unsigned long long)n,
                 (unsigned long long)e->chunk_n, n <= e->chunk_n ? "repeated" : "gap");
        violation(c, r, what);
    }
    if (n > e->chunk_n) e->chunk_n = n;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool released(const ctx *c, const char *id) {
    return c->n_rel && bsearch(&id, c->released, c->n_rel, sizeof *c->released, cmp_str);
}

static int on_rec(void *user, const tg_jrec *r) {
    ctx *c = user;
    c->res->records++;
    tg_jentry *e = tg_jindex_find(&c->idx, r->id, r->id_len);
    if (r->type == TG_JREC_ACCEPTED && e) {
        violation(c, r, "accepted twice");
        return 0;
    }
    if (e && e->n_terminal) {
        violation(c, r,
                  tg_jrec_is_terminal(r->type) ? "second terminal state"
                                               : "record after the terminal state");
        return 0;
    }
    if (tg_jindex_add(&c->idx, r->type, r->id, r->id_len, r->ts_us, 0, 0, 0) != 0) {
        if (c->compacted)
            c->res->remnants++;
        else
            violation(c, r, "record without ACCEPTED");
        return 0;
    }
    if (r->type == TG_JREC_ACCEPTED) check_accepted(c, r);
    if (r->type == TG_JREC_FAILED) check_failed(c, r);
    if (r->type == TG_JREC_CHUNK) check_chunk(c, r);
    return 0;
}

static int cmp_idem(const void *a, const void *b) {
    return strcmp(((const idem_use *)a)->key, ((const idem_use *)b)->key);
}

int tg_jcheck_run(tg_journal *j, bool strict, FILE *out, int max_print, tg_jcheck_result *res) {
    return tg_jcheck_run_compacted(j, strict, false, out, max_print, res);
}

int tg_jcheck_run_compacted(tg_journal *j, bool strict, bool compacted, FILE *out, int max_print,
                            tg_jcheck_result *res) {
    memset(res, 0, sizeof *res);
    ctx c = {.res = res, .out = out, .max_print = max_print, .compacted = compacted};
    tg_jindex_init(&c.idx);
    int rc = tg_journal_scan(j, on_rec, &c);
    tg_jindex_settle(&c.idx);
    for (size_t i = 0; i < c.idx.n_slots; i++)
        for (const tg_jentry *e = c.idx.slots[i]; e; e = e->next) {
            res->requests++;
            switch (e->state) {
            case TG_JREC_ACCEPTED: res->accepted++; break;
            case TG_JREC_DISPATCHED:
            case TG_JREC_FAILOVER: res->running++; break;
            case TG_JREC_DEFERRED: res->deferred++; break;
            case TG_JREC_COMPLETED: res->completed++; break;
            case TG_JREC_FAILED: res->failed++; break;
            case TG_JREC_CANCELLED: res->cancelled++; break;
            default: break;
            }
            if (strict && !e->n_terminal) {
                tg_jrec r = {.type = e->state, .id = e->id, .id_len = strlen(e->id)};
                violation(&c, &r, "not terminal");
            }
        }
    if (c.n_idem) qsort(c.idem, c.n_idem, sizeof *c.idem, cmp_idem);
    if (c.n_rel) qsort(c.released, c.n_rel, sizeof *c.released, cmp_str);
    /* One key, at most one request that kept it: every other use of the key
     * must have been refused with 429/503 (and so released it). */
    for (size_t i = 0; i < c.n_idem;) {
        size_t k = i, kept = 0;
        for (; k < c.n_idem && !strcmp(c.idem[k].key, c.idem[i].key); k++) {
            if (released(&c, c.idem[k].id)) continue;
            if (kept++) {
                tg_jrec r = {
                    .type = TG_JREC_ACCEPTED, .id = c.idem[k].id, .id_len = strlen(c.idem[k].id)};
                violation(&c, &r, "idempotency key already named another request");
            }
        }
        i = k;
    }
    for (size_t i = 0; i < c.n_idem; i++)
        free(c.idem[i].key);
    free(c.idem);
    for (size_t i = 0; i < c.n_rel; i++)
        free(c.released[i]);
    free(c.released);
    tg_jindex_free(&c.idx);
    return rc;
}
