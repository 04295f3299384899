/* bpe.c: text -> token ids.
 *
 * 1. Special tokens are split out by exact text. Like the reference
 *    implementation, longer special tokens take priority: each one (longest
 *    first) is searched in the text fragments the earlier ones left over.
 * 2. Each remaining fragment is cut into valid UTF-8 runs; bytes that are not
 *    valid UTF-8 become their own byte tokens (never an error).
 * 3. Runs are pre-tokenized with the LFM2 regex (PCRE2, UTF + UCP).
 * 4. Each piece is mapped through the GPT-2 byte table; a piece that is a
 *    vocabulary entry is one token, otherwise merges apply by rank (lowest
 *    first, leftmost on ties) with a 4-ary heap over adjacent pairs. */
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

typedef struct {
    int32_t *v;
    size_t n, cap;
    bool oom;
} ivec;

static void ivec_push(ivec *o, int32_t id) {
    if (o->oom) return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int32_t *p = realloc(o->v, cap * sizeof *p);
        if (!p) {
            o->oom = true;
            return;
        }
        o->v = p;
        o->cap = cap;
    }
    o->v[o->n++] = id;
}

typedef struct {
    uint32_t start, len; /* bytes of the mapped piece; len 0 = merged away */
    int32_t prev, next;
} sym;

/* A candidate merge of symbol `left` with its right neighbour. key orders
 * the heap: rank in the high half, left position in the low half (lowest
 * rank first, leftmost on ties). size = len(left) + len(right) when pushed:
 * if either side changed since, the sum differs and the entry is stale. */
typedef struct {
    uint64_t key;
    uint32_t size;
} bigram;

typedef struct {
    char *m;
    size_t m_cap;
    sym *syms;
    size_t syms_cap;
    bigram *heap; /* 4-ary min-heap: children of i are 4i+1 .. 4i+4 */
    size_t heap_n, heap_cap;
    bool oom;
} scratch;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static void heap_push(scratch *sc, bigram b) {
    if (!grow((void **)&sc->heap, &sc->heap_cap, sc->heap_n + 1, sizeof *sc->heap)) {
        sc->oom = true;
        return;
    }
    size_t i = sc->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (b.key >= sc->heap[p].key) break;
        sc->heap[i] = sc->heap[p];
        i = p;
    }
    sc->heap[i] = b;
}

static bigram heap_pop(scratch *sc) {
    bigram top = sc->heap[0], last = sc->heap[--sc->heap_n];
    size_t i = 0, n = sc->heap_n;
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n) break;
        size_t best = c, end = c + 4 < n ? c + 4 : n;
        for (size_t k = c + 1; k < end; k++)
            if (sc->heap[k].key < sc->heap[best].key) best = k;
        if (sc->heap[best].key >= last.key) break;
        sc->heap[i] = sc->heap[best];
        i = best;
    }
    if (n) sc->heap[i] = last;
    return top;
}

static void try_pair(const lfm_tokenizer *t, scratch *sc, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const sym *a = &sc->syms[l], *b = &sc->syms[r];
    if (a->len + b->len > t->max_merge_len) return; /* no merge that long */
    uint32_t rank = tok_merge_rank(t, sc->m + a->start, a->len + b->len, a->len);
    if (rank == UINT32_MAX) return;
    heap_push(sc, (bigram){((uint64_t)rank << 32) | (uint32_t)l, a->len + b->len});
}

/* Emits the ids of a symbol that is not a vocabulary entry: one per mapped
 * character (each stands for one byte). */
static void emit_chars(const lfm_tokenizer *t, const char *s, size_t n, ivec *out) {
    size_t j = 0;
    while (j < n) {
        uint32_t cp;
        int r = tok_utf8_next((const unsigned char *)s + j, n - j, &cp);
        size_t step = r > 0 ? (size_t)r : 1;
        int32_t id = tok_lookup(t, s + j, step);
        if (id >= 0) ivec_push(out, id);
        j += step;
    }
}

/* Symbol offsets are 32-bit: absurdly long pieces (hundreds of MB of one
 * letter class) are encoded in slices of this many bytes. */
#define BPE_MAX_PIECE ((size_t)1 << 28)

static void bpe_piece(const lfm_tokenizer *t, const char *p, size_t n, scratch *sc, ivec *out) {
    if (n == 0) return;
    if (n > BPE_MAX_PIECE) {
        for (size_t o = 0; o < n && !sc->oom; o += BPE_MAX_PIECE)
            bpe_piece(t, p + o, n - o < BPE_MAX_PIECE ? n - o : BPE_MAX_PIECE, sc, out);
        return;
    }
    if (!grow((void **)&sc->m, &sc->m_cap, 2 * n, 1)) {
        sc->oom = true;
        return;
    }
    size_t mlen = 0;
    for (size_t i = 0; i < n; i++)
        mlen += (size_t)tok_byte_enc((uint8_t)p[i], sc->m + mlen);
    int32_t id = tok_lookup(t, sc->m, mlen);
    if (id >= 0) {
        ivec_push(out, id);
        return;
    }
    if (!grow((void **)&sc->syms, &sc->syms_cap, n, sizeof *sc->syms)) {
        sc->oom = true;
        return;
    }
    /* One symbol per mapped character (= per input byte). */
    int32_t ns = 0;
    for (size_t j = 0; j < mlen;) {
        uint32_t len = ((unsigned char)sc->m[j] < 0x80) ? 1 : 2;
        sc->syms[ns] = (sym){(uint32_t)j, len, ns - 1, ns + 1};
        ns++;
        j += len;
    }
    sc->syms[ns - 1].next = -1;
    sc->heap_n = 0;
    for (int32_t i = 0; i + 1 < ns; i++)
        try_pair(t, sc, i, i + 1);
    while (sc->heap_n > 0 && !sc->oom) {
        bigram b = heap_pop(sc);
        int32_t li = (int32_t)(uint32_t)b.key, ri = sc->syms[li].next;
        if (ri < 0) continue;
        sym *l = &sc->syms[li], *r = &sc->syms[ri];
        /* Stale entry: one side changed since it was pushed. */
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.size) continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sc->syms[r->next].prev = li;
        try_pair(t, sc, l->prev, li);
        try_pair(t, sc, li, l->next);
    }
    for (int32_t i = 0; i >= 0; i = sc->syms[i].next) {
        const sym *s = &sc->syms[i];
        id = tok_lookup(t, sc->m + s->start, s->len);
        if (id >= 0)
            ivec_push(out, id);
        else
            emit_chars(t, sc->m + s->start, s->len, out);
    }
}

/* Pre-tokenizes one valid UTF-8 run and BPE-encodes each piece. */
static void encode_run(const lfm_tokenizer *t, const char *s, size_t n, pcre2_match_data *md,
                       pcre2_match_context *mc, scratch *sc, ivec *out) {
    size_t pos = 0;
    while (pos < n && !sc->oom && !out->oom) {
        int rc = md ? pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, mc) : -1;
        if (rc < 0) { /* cannot happen for valid UTF-8: every character matches */
            bpe_piece(t, s + pos, n - pos, sc, out);
            return;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (a > pos) bpe_piece(t, s + pos, a - pos, sc, out); /* unmatched gap */
        if (b <= a) {                                         /* empty match: take one character */
            uint32_t cp;
            int r = tok_utf8_next((const unsigned char *)s + a, n - a, &cp);
            b = a + (r > 0 ? (size_t)r : 1);
        }
        bpe_piece(t, s + a, b - a, sc, out);
        pos = b;
    }
}

static void encode_raw(const lfm_tokenizer *t, const char *s, size_t n, pcre2_match_data *md,
                       pcre2_match_context *mc, scratch *sc, ivec *out) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int r = 1;
        while (j < n) {
            uint32_t cp;
            r = tok_utf8_next((const unsigned char *)s + j, n - j, &cp);
            if (r <= 0) break;
            j += (size_t)r;
        }
        if (j > i) encode_run(t, s + i, j - i, md, mc, sc, out);
        if (j >= n) break;
        size_t bad = r < 0 ? (size_t)-r : n - j; /* ill-formed or truncated */
        for (size_t k = 0; k < bad; k++) {
            int32_t id = t->byte_tok[(unsigned char)s[j + k]];
            if (id >= 0) ivec_push(out, id);
        }
        i = j + bad;
    }
}

typedef struct {
    size_t off, len;
    int32_t id; /* -1: raw text */
} frag;

/* Marks (in found[], by specials index) every special token occurring in s. */
static void find_specials(const lfm_tokenizer *t, const char *s, size_t n, uint8_t *found) {
    uint8_t first[256] = {0};
    for (int32_t c = t->trie[0].child; c >= 0; c = t->trie[c].sibling)
        first[t->trie[c].byte] = 1;
    for (size_t p = 0; p < n; p++) {
        if (!first[(unsigned char)s[p]]) continue;
        int32_t node = 0;
        for (size_t j = p; j < n; j++) {
            int32_t c = t->trie[node].child;
            while (c >= 0 && t->trie[c].byte != (unsigned char)s[j])
                c = t->trie[c].sibling;
            if (c < 0) break;
            if (t->trie[c].token >= 0) found[t->trie[c].token] = 1;
            node = c;
        }
    }
}

static bool special_allowed(const lfm_tokenizer *t, int32_t id, bool parse_special) {
    return parse_special || t->types[id] == TOK_T_USER;
}

/* Splits [0, n) into raw and special fragments. Returns NULL on OOM. */
static frag *partition(const lfm_tokenizer *t, const char *s, size_t n, bool parse_special,
                       size_t *n_frags) {
    frag *fr = malloc(sizeof *fr);
    if (!fr) return NULL;
    fr[0] = (frag){0, n, -1};
    size_t nf = 1;
    uint8_t *found = t->n_specials ? calloc(t->n_specials, 1) : NULL;
    if (t->n_specials && !found) {
        free(fr);
        return NULL;
    }
    if (found) find_specials(t, s, n, found);
    for (size_t k = 0; k < t->n_specials; k++) {
        int32_t id = t->specials[k];
        if (!found[k] || !special_allowed(t, id, parse_special)) continue;
        const char *needle = t->text_pool + t->text_off[id];
        size_t nl = t->text_len[id];
        /* Count occurrences to size the new fragment list. */
        size_t extra = 0;
        for (size_t f = 0; f < nf; f++) {
            if (fr[f].id >= 0) continue;
            const char *p = s + fr[f].off, *end = p + fr[f].len;
            const char *q;
            while ((q = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
                extra += 2;
                p = q + nl;
            }
        }
        if (!extra) continue;
        frag *nfr = malloc((nf + extra) * sizeof *nfr);
        if (!nfr) {
            free(fr);
            free(found);
            return NULL;
        }
        size_t m = 0;
        for (size_t f = 0; f < nf; f++) {
            if (fr[f].id >= 0) {
                nfr[m++] = fr[f];
                continue;
            }
            const char *p = s + fr[f].off, *end = p + fr[f].len;
            const char *q;
            while ((q = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
                if (q > p) nfr[m++] = (frag){(size_t)(p - s), (size_t)(q - p), -1};
                nfr[m++] = (frag){(size_t)(q - s), nl, id};
                p = q + nl;
            }
            if (p < end) nfr[m++] = (frag){(size_t)(p - s), (size_t)(end - p), -1};
        }
        free(fr);
        fr = nfr;
        nf = m;
    }
    free(found);
    *n_frags = nf;
    return fr;
}

int lfm_tokenize(const lfm_tokenizer *t, const char *text, size_t len, bool add_bos,
                 bool parse_special, int32_t **out, size_t *n_out) {
    if (!t || !out || !n_out || (!text && len)) return LFM_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (!text) text = "";
    ivec o = {0};
    bool want_bos = add_bos && t->add_bos && t->bos >= 0;
    if (want_bos) ivec_push(&o, t->bos);
    size_t nf = 0;
    frag *fr = len ? partition(t, text, len, parse_special, &nf) : NULL;
    if (len && !fr) {
        free(o.v);
        return LFM_ENOMEM;
    }
    scratch sc = {0};
    pcre2_match_data *md = NULL;
    pcre2_match_context *mc = NULL;
    pcre2_jit_stack *js = NULL;
    if (len) {
        md = pcre2_match_data_create_from_pattern(t->re, NULL);
        mc = pcre2_match_context_create(NULL);
        js = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        if (mc && js) pcre2_jit_stack_assign(mc, NULL, js);
        if (!md) sc.oom = true;
    }
    for (size_t f = 0; f < nf && !sc.oom && !o.oom; f++) {
        if (fr[f].id >= 0)
            ivec_push(&o, fr[f].id);
        else
            encode_raw(t, text + fr[f].off, fr[f].len, md, mc, &sc, &o);
    }
    free(fr);
    free(sc.m);
    free(sc.syms);
    free(sc.heap);
    if (md) pcre2_match_data_free(md);
    if (mc) pcre2_match_context_free(mc);
    if (js) pcre2_jit_stack_free(js);
    if (sc.oom || o.oom) {
        free(o.v);
        return LFM_ENOMEM;
    }
    /* Exactly one BOS, also when the text itself starts with the BOS token. */
    if (want_bos && o.n >= 2 && o.v[1] == t->bos) {
        memmove(o.v, o.v + 1, (o.n - 1) * sizeof *o.v);
        o.n--;
    }
    if (!o.v) {
        o.v = malloc(sizeof *o.v);
        if (!o.v) return LFM_ENOMEM;
    }
    *out = o.v;
    *n_out = o.n;
    return 0;
}
