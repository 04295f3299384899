/* pcache: the scheduler's prefix cache (contract in pcache.h).
 *
 * Entries sit on one doubly linked list, most recently used first. Lookup
 * and insert scan it: entries are few (a budget of 128 MiB holds about ten
 * 1k-token chats of the 350M model), and a scan costs a memcmp of the
 * prompt per entry, nothing next to evaluating one token. */
#include "engine/pcache.h"

#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

typedef struct pc_entry pc_entry;
struct pc_entry {
    pc_entry *prev, *next; /* LRU list, head = most recent */
    int32_t *tok;          /* (n) tokens the state consumed */
    int n;
    unsigned char *kv; /* per attention block: K rows [0, n) then V rows [0, n) */
    int n_ck, ck_cap;
    int *ck_pos;     /* (n_ck) positions with a conv state copy, each <= n */
    float **ck_conv; /* (n_ck) conv state at ck_pos[i], conv_bytes each */
    size_t bytes;    /* what this entry counts against the budget */
};

struct pc_cache {
    lfm_model *m;
    size_t max_bytes, bytes;
    size_t conv_bytes;   /* one sequence's conv state */
    size_t *row_bytes;   /* [n_attn] one position's K (or V) row */
    size_t pos_kv_bytes; /* K + V of one position over all attention blocks */
    pc_entry *head, *tail;
    pc_stats st;
};

pc_cache *pc_new(lfm_model *m, size_t max_bytes) {
    if (!m || max_bytes == 0) return NULL;
    pc_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->row_bytes = calloc((size_t)m->n_attn + 1, sizeof *c->row_bytes);
    if (!c->row_bytes) {
        free(c);
        return NULL;
    }
    c->m = m;
    c->max_bytes = max_bytes;
    size_t elt = m->opts.kv_type == LFM_KV_F16 ? 2 : 4;
    for (int l = 0; l < m->hp.n_layer; l++) {
        const lfm_layer *L = &m->layers[l];
        if (L->attn_index < 0) continue;
        c->row_bytes[L->attn_index] = (size_t)L->n_head_kv * (size_t)m->hp.head_dim * elt;
        c->pos_kv_bytes += 2 * c->row_bytes[L->attn_index];
    }
    int km1 = m->hp.conv_l_cache > 0 ? m->hp.conv_l_cache - 1 : 0;
    c->conv_bytes = (size_t)m->n_conv * (size_t)km1 * (size_t)m->hp.n_embd * sizeof(float);
    return c;
}

/* ------------------------------------------------------- entries -- */

static size_t ck_bytes(const pc_cache *c) {
    return c->conv_bytes + sizeof(int) + sizeof(float *);
}

static void entry_free(pc_entry *e) {
    if (!e) return;
    for (int i = 0; i < e->n_ck; i++)
        free(e->ck_conv[i]);
    free(e->ck_pos);
    free(e->ck_conv);
    free(e->tok);
    free(e->kv);
    free(e);
}

static void unlink_entry(pc_cache *c, pc_entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
    c->bytes -= e->bytes;
    c->st.entries--;
}

static void push_front(pc_cache *c, pc_entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
    c->bytes += e->bytes;
    c->st.entries++;
}

static bool has_ck(const pc_entry *e, int pos) {
    for (int i = 0; i < e->n_ck; i++)
        if (e->ck_pos[i] == pos) return true;
    return false;
}

/* Adds a checkpoint (taking conv) unless pos is already there (then conv is
 * freed). Past PC_MAX_CKPT the smallest position goes: later turns of a chat
 * are what the next request most likely extends. */
static void add_ck(pc_cache *c, pc_entry *e, int pos, float *conv) {
    if (has_ck(e, pos)) {
        free(conv);
        return;
    }
    if (e->n_ck == PC_MAX_CKPT) {
        int lo = 0;
        for (int i = 1; i < e->n_ck; i++)
            if (e->ck_pos[i] < e->ck_pos[lo]) lo = i;
        if (e->ck_pos[lo] > pos) {
            free(conv);
            return;
        }
        free(e->ck_conv[lo]);
        e->ck_pos[lo] = pos;
        e->ck_conv[lo] = conv;
        return;
    }
    if (e->n_ck == e->ck_cap) {
        int cap = e->ck_cap ? e->ck_cap * 2 : 4;
        int *p = realloc(e->ck_pos, (size_t)cap * sizeof *p);
        if (p) e->ck_pos = p;
        float **v = p ? realloc(e->ck_conv, (size_t)cap * sizeof *v) : NULL;
        if (!v) {
            free(conv);
            return;
        }
        e->ck_conv = v;
        e->ck_cap = cap;
    }
    e->ck_pos[e->n_ck] = pos;
    e->ck_conv[e->n_ck] = conv;
    e->n_ck++;
    e->bytes += ck_bytes(c);
}

static float *conv_copy(const pc_cache *c, const lfm_seq *seq) {
    float *v = malloc(c->conv_bytes ? c->conv_bytes : 1);
    if (v && c->conv_bytes) memcpy(v, seq->conv, c->conv_bytes);
    return v;
}

static void evict_to_fit(pc_cache *c) {
    while (c->bytes > c->max_bytes && c->tail) {
        pc_entry *e = c->tail;
        unlink_entry(c, e);
        entry_free(e);
        c->st.evictions++;
    }
}

/* -------------------------------------------------------- public -- */

void pc_free(pc_cache *c) {
    if (!c) return;
    while (c->head) {
        pc_entry *e = c->head;
        c->head = e->next;
        entry_free(e);
    }
    free(c->row_bytes);
    free(c);
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

int pc_restore(pc_cache *c, const int32_t *prompt, int n_prompt, lfm_seq *seq) {
    if (!c) return 0;
    c->st.lookups++;
    if (n_prompt < 2 || seq->pos != 0) return 0;
    pc_entry *best = NULL;
    int best_pos = 0, best_ck = -1;
    for (pc_entry *e = c->head; e; e = e->next) {
        int limit = common_prefix(e->tok, e->n, prompt, n_prompt);
        if (limit > n_prompt - 1) limit = n_prompt - 1; /* one token left for logits */
        for (int i = 0; i < e->n_ck; i++) {
            if (e->ck_pos[i] > best_pos && e->ck_pos[i] <= limit) {
                best = e;
                best_pos = e->ck_pos[i];
                best_ck = i;
            }
        }
    }
    if (!best || lfm_seq_reserve(seq, best_pos) != 0) return 0;
    size_t off = 0;
    for (int a = 0; a < c->m->n_attn; a++) {
        size_t rb = c->row_bytes[a], span = (size_t)best->n * rb;
        memcpy(seq->k[a], best->kv + off, (size_t)best_pos * rb);
        memcpy(seq->v[a], best->kv + off + span, (size_t)best_pos * rb);
        off += 2 * span;
    }
    if (c->conv_bytes) memcpy(seq->conv, best->ck_conv[best_ck], c->conv_bytes);
    seq->pos = best_pos;
    unlink_entry(c, best);
    push_front(c, best);
    c->st.hits++;
    c->st.tokens_reused += (uint64_t)best_pos;
    return best_pos;
}

void pc_mark(pc_cache *c, pc_marks *mk, const lfm_seq *seq) {
    if (!c || seq->pos <= 0) return;
    if (mk->n > 0 && mk->pos[mk->n - 1] == seq->pos) return;
    float *v = conv_copy(c, seq);
    if (!v) return;
    if (mk->n == PC_MAX_MARKS) {
        free(mk->conv[mk->n - 1]);
        mk->n--;
    }
    mk->pos[mk->n] = seq->pos;
    mk->conv[mk->n] = v;
    mk->n++;
}

void pc_marks_free(pc_marks *mk) {
    for (int i = 0; i < mk->n; i++)
        free(mk->conv[i]);
    mk->n = 0;
}

/* Moves every mark at or below n into e. */
static void take_marks(pc_cache *c, pc_entry *e, pc_marks *mk, int n) {
    for (int i = 0; i < mk->n; i++) {
        if (mk->pos[i] <= n)
            add_ck(c, e, mk->pos[i], mk->conv[i]);
        else
            free(mk->conv[i]);
    }
    mk->n = 0;
}

void pc_insert(pc_cache *c, const int32_t *tokens, int n, const lfm_seq *seq, pc_marks *mk) {
    if (!c || n <= 0 || seq->pos != n) {
        pc_marks_free(mk);
        return;
    }
    /* Already covered: an entry extends these tokens. Only the checkpoints
     * are new. */
    for (pc_entry *e = c->head; e; e = e->next) {
        if (e->n < n || memcmp(e->tok, tokens, (size_t)n * sizeof *tokens) != 0) continue;
        unlink_entry(c, e);
        take_marks(c, e, mk, n);
        float *v = conv_copy(c, seq);
        if (v) add_ck(c, e, n, v);
        push_front(c, e);
        evict_to_fit(c);
        return;
    }
    size_t base = sizeof(pc_entry) + (size_t)n * (sizeof(int32_t) + c->pos_kv_bytes);
    if (base + ck_bytes(c) > c->max_bytes) {
        pc_marks_free(mk);
        return;
    }
    pc_entry *e = calloc(1, sizeof *e);
    float *v = e ? conv_copy(c, seq) : NULL;
    if (e) {
        e->tok = malloc((size_t)n * sizeof *e->tok);
        e->kv = malloc((size_t)n * c->pos_kv_bytes + 1);
    }
    if (!e || !v || !e->tok || !e->kv) {
        free(v);
        entry_free(e);
        pc_marks_free(mk);
        return;
    }
    e->n = n;
    e->bytes = base;
    memcpy(e->tok, tokens, (size_t)n * sizeof *tokens);
    size_t off = 0;
    for (int a = 0; a < c->m->n_attn; a++) {
        size_t span = (size_t)n * c->row_bytes[a];
        memcpy(e->kv + off, seq->k[a], span);
        memcpy(e->kv + off + span, seq->v[a], span);
        off += 2 * span;
    }
    add_ck(c, e, n, v);
    take_marks(c, e, mk, n);
    /* Entries this one extends (earlier turns of the same chat) hand over
     * their checkpoints and go. */
    for (pc_entry *o = c->head, *next; o; o = next) {
        next = o->next;
        if (o->n > n || memcmp(o->tok, tokens, (size_t)o->n * sizeof *tokens) != 0) continue;
        unlink_entry(c, o);
        for (int i = 0; i < o->n_ck; i++) {
            add_ck(c, e, o->ck_pos[i], o->ck_conv[i]);
            o->ck_conv[i] = NULL;
        }
        entry_free(o);
    }
    push_front(c, e);
    evict_to_fit(c);
}

void pc_get_stats(const pc_cache *c, pc_stats *st) {
    if (!c) {
        memset(st, 0, sizeof *st);
        return;
    }
    *st = c->st;
    st->bytes = c->bytes;
}
