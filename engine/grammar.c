/* grammar: the vocabulary index and the JSON matcher (contract in
 * lfm_grammar.h).
 *
 * Matcher state: up to G_MAX_ALT stacks of frames (more than one only where
 * anyOf branches or enum values share a prefix). Frames are immutable and
 * linked to their parent, allocated from arenas: advancing by a byte makes
 * at most a frame or two and shares the rest, so the mask walk can branch
 * the state at every trie node cheaply. The committed state lives in its
 * own arena; each accept deep-copies the new stacks into a fresh one.
 *
 * Mask: a depth-first walk of the token byte trie, feeding each edge's byte
 * to every stack and pruning where all refuse. When every stack is inside a
 * free string (the common long case) the string-safe tokens are allowed
 * wholesale and only the small "exit" trie (each other token from its first
 * quote/backslash/control byte on) is walked. */
#include <stdlib.h>
#include <string.h>

#include "engine/grammar_impl.h"

#define G_MAX_ALT 8
#define G_BLOCK   4096

/* ------------------------------------------------------------ vocab -- */

typedef struct {
    int32_t child, sibling; /* first child, next sibling (-1 = none) */
    int32_t tok_first;      /* tokens ending here: toks[tok_first .. +n_tok) */
    int32_t n_tok;
    uint8_t byte;
} tnode;

typedef struct {
    tnode *n;
    int len, cap;
    int32_t *toks;
    int n_toks;
} trie;

struct lfm_vocab_index {
    const lfm_tokenizer *tok;
    int n_vocab, words;
    uint32_t *safe; /* string-safe tokens */
    uint8_t *ctrl;  /* 1 = control token (never matches bytes) */
    int32_t *eog;
    int n_eog;
    uint32_t *off; /* token bytes: blob[off[i] .. off[i+1]) */
    char *blob;
    trie all, exit;
};

static int trie_node(trie *t, uint8_t byte) {
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->n = realloc(t->n, (size_t)t->cap * sizeof *t->n);
        if (!t->n) abort();
    }
    t->n[t->len] = (tnode){-1, -1, 0, 0, byte};
    return t->len++;
}

/* Inserts bytes; records token id at the end node (ids gathered later). */
static int trie_insert(trie *t, const uint8_t *b, size_t n) {
    int cur = 0;
    for (size_t i = 0; i < n; i++) {
        int c = t->n[cur].child, prev = -1;
        while (c >= 0 && t->n[c].byte < b[i]) {
            prev = c;
            c = t->n[c].sibling;
        }
        if (c < 0 || t->n[c].byte != b[i]) {
            int nn = trie_node(t, b[i]);
            t->n[nn].sibling = c;
            if (prev < 0)
                t->n[cur].child = nn;
            else
                t->n[prev].sibling = nn;
            c = nn;
        }
        cur = c;
    }
    return cur;
}

/* Two passes over (node, id) pairs: count per node, then place. */
static void trie_place(trie *t, const int32_t *end_node, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        t->n[end_node[i]].n_tok++;
    int acc = 0;
    for (int i = 0; i < t->len; i++) {
        t->n[i].tok_first = acc;
        acc += t->n[i].n_tok;
        t->n[i].n_tok = 0;
    }
    t->toks = malloc((size_t)(acc ? acc : 1) * sizeof *t->toks);
    if (!t->toks) abort();
    t->n_toks = acc;
    for (int i = 0; i < n; i++) {
        tnode *nd = &t->n[end_node[i]];
        t->toks[nd->tok_first + nd->n_tok++] = ids[i];
    }
}

static bool special_byte(uint8_t c) {
    return c < 0x20 || c == '"' || c == '\\';
}

lfm_vocab_index *lfm_vocab_index_new(const lfm_tokenizer *t) {
    int nv = lfm_vocab_size(t);
    if (nv <= 0) return NULL;
    lfm_vocab_index *vi = calloc(1, sizeof *vi);
    if (!vi) abort();
    vi->tok = t;
    vi->n_vocab = nv;
    vi->words = (nv + 31) / 32;
    vi->safe = calloc((size_t)vi->words, sizeof *vi->safe);
    vi->ctrl = calloc((size_t)nv, 1);
    vi->eog = malloc((size_t)nv * sizeof *vi->eog);
    vi->off = malloc(((size_t)nv + 1) * sizeof *vi->off);
    int32_t *end_all = malloc((size_t)nv * sizeof *end_all),
            *ids_all = malloc((size_t)nv * sizeof *ids_all);
    int32_t *end_ex = malloc((size_t)nv * sizeof *end_ex),
            *ids_ex = malloc((size_t)nv * sizeof *ids_ex);
    if (!vi->safe || !vi->ctrl || !vi->eog || !vi->off || !end_all || !ids_all || !end_ex ||
        !ids_ex)
        abort();
    tg_buf blob = TG_BUF_INIT;
    trie_node(&vi->all, 0);
    trie_node(&vi->exit, 0);
    int n_all = 0, n_ex = 0;
    char buf[1024];
    for (int i = 0; i < nv; i++) {
        vi->off[i] = (uint32_t)blob.len;
        if (lfm_token_is_eog(t, i)) vi->eog[vi->n_eog++] = i;
        if (lfm_token_is_control(t, i) || lfm_token_is_eog(t, i)) {
            vi->ctrl[i] = 1;
            continue;
        }
        size_t n = lfm_token_bytes(t, i, buf, sizeof buf);
        if (n > sizeof buf || n == 0) continue; /* never matches */
        tg_buf_append(&blob, buf, n);
        const uint8_t *b = (const uint8_t *)buf;
        end_all[n_all] = trie_insert(&vi->all, b, n);
        ids_all[n_all++] = i;
        size_t k = 0;
        while (k < n && !special_byte(b[k]))
            k++;
        if (k == n) {
            vi->safe[i >> 5] |= 1u << (i & 31);
        } else {
            end_ex[n_ex] = trie_insert(&vi->exit, b + k, n - k);
            ids_ex[n_ex++] = i;
        }
    }
    vi->off[nv] = (uint32_t)blob.len;
    vi->blob = tg_buf_steal(&blob);
    if (!vi->blob) {
        vi->blob = malloc(1);
        if (!vi->blob) abort();
    }
    trie_place(&vi->all, end_all, ids_all, n_all);
    trie_place(&vi->exit, end_ex, ids_ex, n_ex);
    free(end_all);
    free(ids_all);
    free(end_ex);
    free(ids_ex);
    return vi;
}

void lfm_vocab_index_free(lfm_vocab_index *vi) {
    if (!vi) return;
    free(vi->safe);
    free(vi->ctrl);
    free(vi->eog);
    free(vi->off);
    free(vi->blob);
    free(vi->all.n);
    free(vi->all.toks);
    free(vi->exit.n);
    free(vi->exit.toks);
    free(vi);
}

int lfm_vocab_index_size(const lfm_vocab_index *vi) {
    return vi ? vi->n_vocab : 0;
}

/* ----------------------------------------------------------- frames -- */

typedef enum { FK_END, FK_VALUE, FK_OBJ, FK_ARR, FK_STR, FK_NUM, FK_LIT } fkind;
/* FK_OBJ phases */
enum { P_OPEN, P_NEEDKEY, P_KEY, P_KEYSTR, P_COLON, P_VAL, P_AFTER };
/* FK_ARR phases: P_OPEN, P_VAL, P_AFTER, P_NEEDVAL */
enum { P_NEEDVAL = 10 };
/* FK_STR phases */
enum { S_NORM, S_ESC, S_U };
/* FK_NUM phases */
enum { N_SIGN, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

typedef struct gframe gframe;
struct gframe {
    const gframe *up;
    int32_t node;
    uint8_t kind, phase, ws, depth;
    int32_t a, b; /* OBJ: a next prop, b key pos / chosen prop; ARR: a count; NUM/LIT/STR: a pos */
    uint64_t m;   /* OBJ key / LIT candidates */
};

typedef struct block {
    struct block *next;
    int used;
    gframe f[G_BLOCK];
} block;

typedef struct {
    block *head, *cur;
} arena;

static gframe *arena_new(arena *a) {
    if (!a->cur || a->cur->used == G_BLOCK) {
        block *nb = a->cur && a->cur->next ? a->cur->next : NULL;
        if (!nb) {
            nb = malloc(sizeof *nb);
            if (!nb) abort();
            nb->next = NULL;
            if (a->cur)
                a->cur->next = nb;
            else
                a->head = nb;
        }
        nb->used = 0;
        a->cur = nb;
    }
    return &a->cur->f[a->cur->used++];
}

static void arena_reset(arena *a) {
    a->cur = a->head;
    if (a->cur) a->cur->used = 0;
}

static void arena_free(arena *a) {
    for (block *b = a->head; b;) {
        block *n = b->next;
        free(b);
        b = n;
    }
    a->head = a->cur = NULL;
}

typedef struct {
    int n;
    const gframe *s[G_MAX_ALT];
} galts;

enum { PH_PREFIX, PH_JSON, PH_SUFFIX, PH_DONE };

struct lfm_constraint {
    const lfm_schema *sc;
    const lfm_vocab_index *vi;
    int32_t prefix, suffix;
    int phase;
    bool owns_schema;
    gframe end; /* the sentinel under every stack */
    galts cur;
    arena committed, spare, scratch;
    arena *work;     /* where feed allocates */
    galts lvl[1100]; /* per trie depth during the mask walk */
    uint32_t *bits;
    int n_set;
};

static void put(galts *o, const gframe *f) {
    for (int i = 0; i < o->n; i++)
        if (o->s[i] == f) return;
    if (o->n < G_MAX_ALT) o->s[o->n++] = f;
}

static gframe *dup(lfm_constraint *c, const gframe *f) {
    gframe *n = arena_new(c->work);
    *n = *f;
    return n;
}

static gframe *push(lfm_constraint *c, const gframe *up, fkind k, int32_t node, uint8_t depth) {
    gframe *n = arena_new(c->work);
    *n = (gframe){.up = up, .node = node, .kind = (uint8_t)k, .depth = depth};
    return n;
}

static bool is_ws(uint8_t ch) {
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
}

/* Bounded whitespace: the same frame with one more space, or refused. */
static void feed_ws(lfm_constraint *c, const gframe *f, galts *o) {
    if (f->ws >= LFM_GRAMMAR_MAX_WS) return;
    gframe *n = dup(c, f);
    n->ws++;
    put(o, n);
}

/* The parent of a value that just completed, advanced past it. */
static const gframe *complete(lfm_constraint *c, const gframe *up) {
    if (up->kind == FK_END) return up;
    gframe *n = dup(c, up);
    n->ws = 0;
    if (up->kind == FK_OBJ) {
        if (up->phase == P_KEYSTR) {
            n->phase = P_COLON;
        } else {
            n->phase = P_AFTER;
            n->a = up->b + 1;
        }
    } else { /* FK_ARR */
        n->phase = P_AFTER;
        n->a = up->a + 1;
    }
    return n;
}

/* Object key candidates from prop index `next`: any prop at or after it
 * with no required prop skipped on the way. */
static uint64_t key_cands(const lfm_schema *s, const gnode *nd, int next) {
    uint64_t m = 0;
    for (int i = next; i < nd->b; i++) {
        m |= 1ull << i;
        if (s->props[nd->a + i].required) break;
    }
    return m;
}

static bool required_left(const lfm_schema *s, const gnode *nd, int next) {
    for (int i = next; i < nd->b; i++)
        if (s->props[nd->a + i].required) return true;
    return false;
}

static void feed(lfm_constraint *c, const gframe *f, uint8_t ch, galts *o);

/* After literal byte `pos` matched: split into finished and continuing. */
static void lit_step(lfm_constraint *c, const gframe *up, int32_t node, uint8_t depth, int pos,
                     uint64_t m, galts *o) {
    const lfm_schema *s = c->sc;
    const gnode *nd = &s->nodes[node];
    uint64_t done = 0, more = 0;
    for (int i = 0; i < nd->b; i++) {
        if (!(m >> i & 1)) continue;
        if ((int)s->lits[nd->a + i].len == pos)
            done |= 1ull << i;
        else
            more |= 1ull << i;
    }
    if (done) put(o, complete(c, up));
    if (more) {
        gframe *n = push(c, up, FK_LIT, node, depth);
        n->a = pos;
        n->m = more;
        put(o, n);
    }
}

/* A value for `node` starts with byte ch (not whitespace). */
static void start_value(lfm_constraint *c, const gframe *up, int32_t node, uint8_t depth,
                        uint8_t ch, int guard, galts *o) {
    const lfm_schema *s = c->sc;
    const gnode *nd = &s->nodes[node];
    if (guard > 16) return; /* anyOf/$ref cycle without progress */
    switch ((gn_kind)nd->kind) {
    case GN_ANYOF:
        for (int i = 0; i < nd->b; i++)
            start_value(c, up, s->kids[nd->a + i], depth, ch, guard + 1, o);
        return;
    case GN_ANY:
        if (ch == '{')
            start_value(c, up, GN_IDX_ANYOBJ, depth, ch, guard + 1, o);
        else if (ch == '[')
            start_value(c, up, GN_IDX_ANYARR, depth, ch, guard + 1, o);
        else if (ch == '"' || ch == '-' || (ch >= '0' && ch <= '9')) {
            gnode tmp_kind = {.kind = ch == '"' ? GN_STRING : GN_NUMBER};
            (void)tmp_kind;
            if (ch == '"') {
                put(o, push(c, up, FK_STR, node, depth));
            } else {
                gframe *n = push(c, up, FK_NUM, node, depth);
                n->phase = ch == '-' ? N_SIGN : ch == '0' ? N_ZERO : N_INT;
                n->a = ch >= '1' && ch <= '9';
                put(o, n);
            }
        } else
            start_value(c, up, GN_IDX_TFN, depth, ch, guard + 1, o);
        return;
    case GN_OBJECT:
    case GN_ANYOBJ:
        if (ch == '{' && depth < LFM_GRAMMAR_MAX_DEPTH)
            put(o, push(c, up, FK_OBJ, node, depth + 1));
        return;
    case GN_ARRAY:
        if (ch == '[' && depth < LFM_GRAMMAR_MAX_DEPTH)
            put(o, push(c, up, FK_ARR, node, depth + 1));
        return;
    case GN_STRING:
        if (ch == '"') put(o, push(c, up, FK_STR, node, depth));
        return;
    case GN_NUMBER:
    case GN_INTEGER:
        if (ch == '-' || (ch >= '0' && ch <= '9')) {
            gframe *n = push(c, up, FK_NUM, node, depth);
            n->phase = ch == '-' ? N_SIGN : ch == '0' ? N_ZERO : N_INT;
            n->a = ch >= '1' && ch <= '9';
            put(o, n);
        }
        return;
    case GN_LITERALS: {
        uint64_t m = 0;
        for (int i = 0; i < nd->b; i++)
            if (s->lits[nd->a + i].len > 0 && (uint8_t)s->lits[nd->a + i].text[0] == ch)
                m |= 1ull << i;
        if (m) lit_step(c, up, node, depth, 1, m, o);
        return;
    }
    case GN_UNSET: return;
    }
}

static bool num_terminal(const gframe *f) {
    return f->phase == N_ZERO || f->phase == N_INT || f->phase == N_FRAC || f->phase == N_EXP;
}

static void feed_num(lfm_constraint *c, const gframe *f, uint8_t ch, galts *o) {
    bool integer = c->sc->nodes[f->node].kind == GN_INTEGER;
    bool digit = ch >= '0' && ch <= '9';
    int next = -1, a = 0;
    switch (f->phase) {
    case N_SIGN:
        if (ch == '0') next = N_ZERO;
        if (ch >= '1' && ch <= '9') next = N_INT, a = 1;
        break;
    case N_ZERO:
    case N_INT:
        if (f->phase == N_INT && digit && f->a < LFM_GRAMMAR_MAX_DIGITS) next = N_INT, a = f->a + 1;
        if (!integer && ch == '.') next = N_DOT;
        if (!integer && (ch == 'e' || ch == 'E')) next = N_E;
        break;
    case N_DOT:
        if (digit) next = N_FRAC, a = 1;
        break;
    case N_FRAC:
        if (digit && f->a < LFM_GRAMMAR_MAX_DIGITS) next = N_FRAC, a = f->a + 1;
        if (ch == 'e' || ch == 'E') next = N_E;
        break;
    case N_E:
        if (ch == '+' || ch == '-') next = N_ESIGN;
        if (digit) next = N_EXP, a = 1;
        break;
    case N_ESIGN:
        if (digit) next = N_EXP, a = 1;
        break;
    case N_EXP:
        if (digit && f->a < 3) next = N_EXP, a = f->a + 1;
        break;
    }
    if (next >= 0) {
        gframe *n = dup(c, f);
        n->phase = (uint8_t)next;
        n->a = a;
        put(o, n);
        return;
    }
    /* A byte that cannot continue the number ends it, if it may end here;
     * the byte then belongs to the parent. */
    if (num_terminal(f) && !digit) {
        const gframe *p = complete(c, f->up);
        if (p->kind != FK_END) feed(c, p, ch, o);
    }
}

static void feed_obj(lfm_constraint *c, const gframe *f, uint8_t ch, galts *o) {
    const lfm_schema *s = c->sc;
    const gnode *nd = &s->nodes[f->node];
    bool any = nd->kind == GN_ANYOBJ;
    switch (f->phase) {
    case P_OPEN:
    case P_NEEDKEY:
        if (is_ws(ch)) return feed_ws(c, f, o);
        if (ch == '"') {
            gframe *n = dup(c, f);
            n->ws = 0;
            if (any) {
                n->phase = P_KEYSTR;
                put(o, push(c, n, FK_STR, GN_IDX_ANY, f->depth));
                return;
            }
            uint64_t m = key_cands(s, nd, f->a);
            if (!m) return;
            n->phase = P_KEY;
            n->b = 0;
            n->m = m;
            put(o, n);
            return;
        }
        if (ch == '}' && f->phase == P_OPEN && (any || !required_left(s, nd, f->a)))
            put(o, complete(c, f->up));
        return;
    case P_KEY: {
        int pos = f->b;
        if (ch == '"') {
            for (int i = 0; i < nd->b; i++)
                if ((f->m >> i & 1) && (int)s->props[nd->a + i].len == pos) {
                    gframe *n = dup(c, f);
                    n->phase = P_COLON;
                    n->b = i;
                    n->ws = 0;
                    put(o, n);
                    return;
                }
        }
        uint64_t m = 0;
        for (int i = 0; i < nd->b; i++)
            if ((f->m >> i & 1) && (int)s->props[nd->a + i].len > pos &&
                (uint8_t)s->props[nd->a + i].name[pos] == ch)
                m |= 1ull << i;
        if (!m) return;
        gframe *n = dup(c, f);
        n->b = pos + 1;
        n->m = m;
        put(o, n);
        return;
    }
    case P_COLON:
        if (is_ws(ch)) return feed_ws(c, f, o);
        if (ch == ':') {
            gframe *n = dup(c, f);
            n->phase = P_VAL;
            n->ws = 0;
            int32_t vn = any ? GN_IDX_ANY : s->props[nd->a + f->b].node;
            put(o, push(c, n, FK_VALUE, vn, f->depth));
        }
        return;
    case P_AFTER:
        if (is_ws(ch)) return feed_ws(c, f, o);
        if (ch == ',' && (any || key_cands(s, nd, f->a))) {
            gframe *n = dup(c, f);
            n->phase = P_NEEDKEY;
            n->ws = 0;
            put(o, n);
        } else if (ch == '}' && (any || !required_left(s, nd, f->a))) {
            put(o, complete(c, f->up));
        }
        return;
    }
}

static void feed_arr(lfm_constraint *c, const gframe *f, uint8_t ch, galts *o) {
    const gnode *nd = &c->sc->nodes[f->node];
    if (is_ws(ch)) return feed_ws(c, f, o);
    if (f->phase == P_AFTER) {
        if (ch == ',' && (nd->d < 0 || f->a < nd->d)) {
            gframe *n = dup(c, f);
            n->phase = P_NEEDVAL;
            n->ws = 0;
            put(o, n);
        } else if (ch == ']' && f->a >= nd->c) {
            put(o, complete(c, f->up));
        }
        return;
    }
    /* P_OPEN or P_NEEDVAL */
    if (ch == ']' && f->phase == P_OPEN) {
        if (nd->c <= 0) put(o, complete(c, f->up));
        return;
    }
    if (nd->d == 0) return;
    gframe *n = dup(c, f);
    n->phase = P_VAL;
    n->ws = 0;
    start_value(c, n, nd->a, f->depth, ch, 0, o);
}

static void feed(lfm_constraint *c, const gframe *f, uint8_t ch, galts *o) {
    switch ((fkind)f->kind) {
    case FK_END: return;
    case FK_VALUE:
        if (is_ws(ch)) return feed_ws(c, f, o);
        start_value(c, f->up, f->node, f->depth, ch, 0, o);
        return;
    case FK_STR:
        if (f->phase == S_NORM) {
            if (ch == '"') {
                put(o, complete(c, f->up));
            } else if (ch == '\\') {
                gframe *n = dup(c, f);
                n->phase = S_ESC;
                put(o, n);
            } else if (ch >= 0x20) {
                put(o, f); /* unchanged: shared */
            }
        } else if (f->phase == S_ESC) {
            if (ch && strchr("\"\\/bfnrt", ch)) {
                gframe *n = dup(c, f);
                n->phase = S_NORM;
                put(o, n);
            } else if (ch == 'u') {
                gframe *n = dup(c, f);
                n->phase = S_U;
                n->a = 0;
                put(o, n);
            }
        } else if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                   (ch >= 'A' && ch <= 'F')) {
            gframe *n = dup(c, f);
            n->a = f->a + 1;
            if (n->a == 4) n->phase = S_NORM;
            put(o, n);
        }
        return;
    case FK_NUM: feed_num(c, f, ch, o); return;
    case FK_LIT: {
        const lfm_schema *s = c->sc;
        const gnode *nd = &s->nodes[f->node];
        uint64_t m = 0;
        for (int i = 0; i < nd->b; i++)
            if ((f->m >> i & 1) && (int)s->lits[nd->a + i].len > f->a &&
                (uint8_t)s->lits[nd->a + i].text[f->a] == ch)
                m |= 1ull << i;
        if (m) lit_step(c, f->up, f->node, f->depth, f->a + 1, m, o);
        return;
    }
    case FK_OBJ: feed_obj(c, f, ch, o); return;
    case FK_ARR: feed_arr(c, f, ch, o); return;
    }
}

static void feed_all(lfm_constraint *c, const galts *in, uint8_t ch, galts *o) {
    o->n = 0;
    for (int i = 0; i < in->n; i++)
        feed(c, in->s[i], ch, o);
}

static bool alts_can_end(const galts *g) {
    for (int i = 0; i < g->n; i++) {
        const gframe *f = g->s[i];
        if (f->kind == FK_END) return true;
        if (f->kind == FK_NUM && num_terminal(f) && f->up->kind == FK_END) return true;
    }
    return false;
}

/* ----------------------------------------------------------- public -- */

lfm_constraint *lfm_constraint_new(const lfm_schema *s, const lfm_vocab_index *vi,
                                   int32_t prefix_token, int32_t suffix_token) {
    if (!s || !vi) return NULL;
    lfm_constraint *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->sc = s;
    c->vi = vi;
    c->prefix = prefix_token;
    c->suffix = suffix_token;
    c->phase = prefix_token >= 0 ? PH_PREFIX : PH_JSON;
    c->end.kind = FK_END;
    c->work = &c->committed;
    c->cur.n = 1;
    c->cur.s[0] = push(c, &c->end, FK_VALUE, s->root, 0);
    return c;
}

void lfm_constraint_free(lfm_constraint *c) {
    if (!c) return;
    arena_free(&c->committed);
    arena_free(&c->spare);
    arena_free(&c->scratch);
    if (c->owns_schema) lfm_schema_free((lfm_schema *)c->sc);
    free(c);
}

void lfm_constraint_own_schema(lfm_constraint *c) {
    if (c) c->owns_schema = true;
}

static void set_bit(lfm_constraint *c, int32_t id) {
    if (!(c->bits[id >> 5] >> (id & 31) & 1)) {
        c->bits[id >> 5] |= 1u << (id & 31);
        c->n_set++;
    }
}

static void walk(lfm_constraint *c, const trie *t, int node, int depth) {
    const galts *in = &c->lvl[depth];
    galts *out = &c->lvl[depth + 1];
    for (int ch = t->n[node].child; ch >= 0; ch = t->n[ch].sibling) {
        feed_all(c, in, t->n[ch].byte, out);
        if (!out->n) continue;
        const tnode *nd = &t->n[ch];
        for (int k = 0; k < nd->n_tok; k++)
            set_bit(c, t->toks[nd->tok_first + k]);
        if (nd->child >= 0 && depth + 2 < (int)(sizeof c->lvl / sizeof c->lvl[0]))
            walk(c, t, ch, depth + 1);
    }
}

static bool all_in_string(const galts *g) {
    for (int i = 0; i < g->n; i++)
        if (g->s[i]->kind != FK_STR || g->s[i]->phase != S_NORM) return false;
    return g->n > 0;
}

int lfm_constraint_mask(lfm_constraint *c, uint32_t *bits) {
    const lfm_vocab_index *vi = c->vi;
    memset(bits, 0, (size_t)vi->words * sizeof *bits);
    c->bits = bits;
    c->n_set = 0;
    switch (c->phase) {
    case PH_PREFIX: set_bit(c, c->prefix); return c->n_set;
    case PH_SUFFIX: set_bit(c, c->suffix); return c->n_set;
    case PH_DONE:
        for (int i = 0; i < vi->n_eog; i++)
            set_bit(c, vi->eog[i]);
        return c->n_set;
    }
    arena_reset(&c->scratch);
    c->work = &c->scratch;
    c->lvl[0] = c->cur;
    if (all_in_string(&c->cur)) {
        for (int w = 0; w < vi->words; w++) {
            bits[w] = vi->safe[w];
            c->n_set += __builtin_popcount(vi->safe[w]);
        }
        walk(c, &vi->exit, 0, 0);
    } else {
        walk(c, &vi->all, 0, 0);
    }
    if (alts_can_end(&c->cur)) {
        if (c->suffix >= 0)
            set_bit(c, c->suffix);
        else
            for (int i = 0; i < vi->n_eog; i++)
                set_bit(c, vi->eog[i]);
    }
    return c->n_set;
}

/* Deep-copies the stacks of g into arena a (shared parents are copied per
 * stack: stacks are shallow, LFM_GRAMMAR_MAX_DEPTH containers at most). */
static void commit(lfm_constraint *c, const galts *g) {
    arena_reset(&c->spare);
    galts n = {0};
    for (int i = 0; i < g->n; i++) {
        const gframe *chain[4 * LFM_GRAMMAR_MAX_DEPTH + 8];
        int d = 0;
        for (const gframe *f = g->s[i];
             f && f->kind != FK_END && d < (int)(sizeof chain / sizeof *chain); f = f->up)
            chain[d++] = f;
        const gframe *up = &c->end;
        for (int k = d - 1; k >= 0; k--) {
            gframe *nf = arena_new(&c->spare);
            *nf = *chain[k];
            nf->up = up;
            up = nf;
        }
        n.s[n.n++] = up;
    }
    arena tmp = c->committed;
    c->committed = c->spare;
    c->spare = tmp;
    c->cur = n;
}

bool lfm_constraint_accept(lfm_constraint *c, int32_t token) {
    const lfm_vocab_index *vi = c->vi;
    if (token < 0 || token >= vi->n_vocab) return false;
    switch (c->phase) {
    case PH_PREFIX:
        if (token != c->prefix) return false;
        c->phase = PH_JSON;
        return true;
    case PH_SUFFIX:
        if (token != c->suffix) return false;
        c->phase = PH_DONE;
        return true;
    case PH_DONE: return lfm_token_is_eog(vi->tok, token);
    }
    if (vi->ctrl[token]) {
        if (!alts_can_end(&c->cur)) return false;
        if (c->suffix >= 0 && token == c->suffix) {
            c->phase = PH_DONE;
            return true;
        }
        if (c->suffix < 0 && lfm_token_is_eog(vi->tok, token)) {
            c->phase = PH_DONE;
            return true;
        }
        return false;
    }
    uint32_t b0 = vi->off[token], b1 = vi->off[token + 1];
    if (b1 == b0) return false;
    arena_reset(&c->scratch);
    c->work = &c->scratch;
    galts a = c->cur, b;
    for (uint32_t i = b0; i < b1; i++) {
        feed_all(c, &a, (uint8_t)vi->blob[i], &b);
        if (!b.n) return false;
        a = b;
    }
    commit(c, &a);
    /* A complete value with nothing left to add: only the end remains. */
    bool only_end = true;
    for (int i = 0; i < c->cur.n; i++)
        if (c->cur.s[i]->kind != FK_END) only_end = false;
    if (only_end) c->phase = c->suffix >= 0 ? PH_SUFFIX : PH_DONE;
    return true;
}

bool lfm_constraint_done(const lfm_constraint *c) {
    return c->phase == PH_DONE;
}

bool lfm_constraint_can_end(const lfm_constraint *c) {
    if (c->phase == PH_DONE || c->phase == PH_SUFFIX) return true;
    return c->phase == PH_JSON && alts_can_end(&c->cur);
}
