/* seq: per-sequence decode state. Attention blocks keep K and V for every
 * consumed position (f32 or f16, per lfm_model_opts.kv_type), grown on
 * demand up to n_ctx so idle sequences stay small; conv blocks keep the last
 * K-1 `u` vectors, constant in context length. */
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

static size_t kv_row(const lfm_model *m, int attn_index) {
    for (int l = 0; l < m->hp.n_layer; l++)
        if (m->layers[l].attn_index == attn_index)
            return (size_t)m->layers[l].n_head_kv * (size_t)m->hp.head_dim;
    return 0;
}

static size_t conv_floats(const lfm_model *m) {
    int km1 = m->hp.conv_l_cache > 0 ? m->hp.conv_l_cache - 1 : 0;
    return (size_t)m->n_conv * (size_t)km1 * (size_t)m->hp.n_embd;
}

uint64_t lfm_seq_state_bytes(const lfm_model *m, int n_ctx) {
    if (n_ctx <= 0 || n_ctx > m->hp.n_ctx_train) n_ctx = m->hp.n_ctx_train;
    uint64_t elt = m->opts.kv_type == LFM_KV_F16 ? 2 : 4;
    uint64_t b = sizeof(lfm_seq) + conv_floats(m) * sizeof(float);
    for (int a = 0; a < m->n_attn; a++)
        b += 2 * (uint64_t)n_ctx * kv_row(m, a) * elt;
    return b;
}

lfm_seq *lfm_seq_new(lfm_model *m, int n_ctx) {
    if (!m) return NULL;
    if (n_ctx <= 0 || n_ctx > m->hp.n_ctx_train) n_ctx = m->hp.n_ctx_train;
    lfm_seq *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->m = m;
    s->n_ctx = n_ctx;
    s->kv_elt = m->opts.kv_type == LFM_KV_F16 ? 2 : 4;
    size_t cf = conv_floats(m);
    s->k = calloc((size_t)m->n_attn + 1, sizeof *s->k);
    s->v = calloc((size_t)m->n_attn + 1, sizeof *s->v);
    s->conv = calloc(cf + 1, sizeof *s->conv);
    if (!s->k || !s->v || !s->conv) {
        lfm_seq_free(s);
        return NULL;
    }
    return s;
}

void lfm_seq_free(lfm_seq *s) {
    if (!s) return;
    for (int a = 0; s->k && a < s->m->n_attn; a++)
        free(s->k[a]);
    for (int a = 0; s->v && a < s->m->n_attn; a++)
        free(s->v[a]);
    free(s->k);
    free(s->v);
    free(s->conv);
    free(s);
}

/* Forgets the tokens; keeps the KV allocation for the next request. */
void lfm_seq_reset(lfm_seq *s) {
    if (!s) return;
    s->pos = 0;
    memset(s->conv, 0, conv_floats(s->m) * sizeof *s->conv);
}

int lfm_seq_pos(const lfm_seq *s) {
    return s->pos;
}
int lfm_seq_n_ctx(const lfm_seq *s) {
    return s->n_ctx;
}

int lfm_seq_reserve(lfm_seq *s, int need) {
    if (need <= s->kv_cap || s->m->n_attn == 0) return 0;
    if (need > s->n_ctx) return LFM_ECTX;
    /* Double (from 64) so a long decode reallocates O(log n) times. */
    int cap = s->kv_cap ? s->kv_cap : 64;
    while (cap < need)
        cap = cap > s->n_ctx / 2 ? s->n_ctx : cap * 2;
    if (cap > s->n_ctx) cap = s->n_ctx;
    for (int a = 0; a < s->m->n_attn; a++) {
        size_t bytes = (size_t)cap * kv_row(s->m, a) * s->kv_elt;
        void *k = realloc(s->k[a], bytes);
        if (!k) return LFM_ENOMEM; /* buffers already grown stay valid; kv_cap unchanged */
        s->k[a] = k;
        void *v = realloc(s->v[a], bytes);
        if (!v) return LFM_ENOMEM;
        s->v[a] = v;
    }
    s->kv_cap = cap;
    return 0;
}
