/* Unit tests for engine/pcache.c: a restored prefix is the exact state a
 * fresh prefill makes (KV rows and conv state byte for byte), restore points
 * are only where conv state was copied and always leave a token to
 * evaluate, chat turns merge into one entry, the byte budget holds with
 * least-recently-used eviction; and through the scheduler, a 5-turn chat
 * gives the same tokens and logprobs (bitwise) with and without the cache,
 * greedy and seeded, while turns 2..5 evaluate only their new tokens. */
/* tg-test-links: lfm */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine/lfm_sched.h"
#include "engine/model.h"
#include "engine/pcache.h"

#define Q4_MODEL  TG_FIXTURES "/models/lfm2-tiny-q4_0.gguf"
#define F32_MODEL TG_FIXTURES "/models/lfm2-tiny-f32.gguf"

typedef struct {
    lfm_model *q4;  /* f16 KV */
    lfm_model *f32; /* f32 KV */
} models;

static int setup(void **state) {
    static models ms;
    lfm_model_opts o;
    lfm_model_opts_default(&o);
    o.n_threads = 2;
    char err[256];
    o.kv_type = LFM_KV_F16;
    if (lfm_model_load(Q4_MODEL, &o, &ms.q4, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "load: %s\n", err);
        return -1;
    }
    o.kv_type = LFM_KV_F32;
    if (lfm_model_load(F32_MODEL, &o, &ms.f32, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "load: %s\n", err);
        return -1;
    }
    *state = &ms;
    return 0;
}

static int teardown(void **state) {
    models *ms = *state;
    lfm_model_free(ms->q4);
    lfm_model_free(ms->f32);
    return 0;
}

/* Deterministic token ids inside the vocabulary. */
static void fill_tokens(int32_t *t, int n, uint32_t seed, int n_vocab) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        t[i] = (int32_t)(1 + (seed >> 8) % (uint32_t)(n_vocab - 1));
    }
}

/* Feeds t[0, n) into s in chunks of `chunk` tokens, marking after each. */
static void feed(lfm_model *m, lfm_seq *s, const int32_t *t, int n, int chunk, pc_cache *c,
                 pc_marks *mk) {
    lfm_seq *seqs[256];
    for (int i = 0; i < 256; i++)
        seqs[i] = s;
    const lfm_hparams *hp = lfm_model_hparams(m);
    float *logits = malloc((size_t)hp->n_vocab * sizeof *logits);
    assert_non_null(logits);
    for (int i = 0; i < n; i += chunk) {
        int k = n - i < chunk ? n - i : chunk;
        char err[128];
        assert_int_equal(lfm_eval(m, k, t + i, seqs, NULL, logits, err, sizeof err), LFM_OK);
        if (mk) pc_mark(c, mk, s);
    }
    free(logits);
}

static size_t conv_bytes(const lfm_model *m) {
    return (size_t)m->n_conv * (size_t)(m->hp.conv_l_cache - 1) * (size_t)m->hp.n_embd *
           sizeof(float);
}

static size_t row_bytes(const lfm_model *m, int a) {
    for (int l = 0; l < m->hp.n_layer; l++)
        if (m->layers[l].attn_index == a)
            return (size_t)m->layers[l].n_head_kv * (size_t)m->hp.head_dim *
                   (m->opts.kv_type == LFM_KV_F16 ? 2 : 4);
    return 0;
}

/* Byte-for-byte state equality at a's position. */
static void assert_same_state(const lfm_model *m, const lfm_seq *a, const lfm_seq *b) {
    assert_int_equal(a->pos, b->pos);
    assert_memory_equal(a->conv, b->conv, conv_bytes(m));
    for (int i = 0; i < m->n_attn; i++) {
        assert_memory_equal(a->k[i], b->k[i], (size_t)a->pos * row_bytes(m, i));
        assert_memory_equal(a->v[i], b->v[i], (size_t)a->pos * row_bytes(m, i));
    }
}

static void check_restore_exact(lfm_model *m) {
    int nv = lfm_model_hparams(m)->n_vocab;
    int32_t t[200];
    fill_tokens(t, 200, 5, nv);
    pc_cache *c = pc_new(m, 64u << 20);
    assert_non_null(c);
    pc_marks mk = {0};
    lfm_seq *a = lfm_seq_new(m, 512), *b = lfm_seq_new(m, 512), *r = lfm_seq_new(m, 512);
    /* a: 120 tokens in chunks of 50 -> checkpoints 50, 100, 120. */
    feed(m, a, t, 120, 50, c, &mk);
    assert_int_equal(mk.n, 3);
    pc_insert(c, t, 120, a, &mk);
    assert_int_equal(mk.n, 0);

    /* Same 120 tokens as prompt: 120 would leave nothing to evaluate, so
     * the restore point is 100. */
    assert_int_equal(pc_restore(c, t, 120, r), 100);
    feed(m, b, t, 100, 100, NULL, NULL);
    assert_same_state(m, r, b);
    /* A longer prompt: the whole 120. Then evaluation continues exactly. */
    lfm_seq_reset(r);
    lfm_seq_reset(b);
    assert_int_equal(pc_restore(c, t, 200, r), 120);
    feed(m, r, t + 120, 80, 80, NULL, NULL);
    feed(m, b, t, 200, 200, NULL, NULL);
    assert_same_state(m, r, b);
    /* Diverging at 75: the checkpoint at 50 is the best below it. */
    int32_t u[200];
    memcpy(u, t, sizeof u);
    u[75] = u[75] == 1 ? 2 : 1;
    lfm_seq_reset(r);
    assert_int_equal(pc_restore(c, u, 200, r), 50);
    /* Nothing shared, or a prompt of 1 token: no restore. */
    lfm_seq_reset(r);
    u[0] = u[0] == 1 ? 2 : 1;
    assert_int_equal(pc_restore(c, u, 200, r), 0);
    assert_int_equal(r->pos, 0);
    assert_int_equal(pc_restore(c, t, 1, r), 0);
    pc_stats st;
    pc_get_stats(c, &st);
    assert_int_equal(st.lookups, 5);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.tokens_reused, 100 + 120 + 50);
    lfm_seq_free(a);
    lfm_seq_free(b);
    lfm_seq_free(r);
    pc_free(c);
}

static void test_restore_exact_f16_kv(void **state) {
    check_restore_exact(((models *)*state)->q4);
}

static void test_restore_exact_f32_kv(void **state) {
    check_restore_exact(((models *)*state)->f32);
}

/* Turn 2 extends turn 1: one entry keeping both turns' checkpoints. An entry
 * a new state only shortens keeps its tokens and gains the checkpoint. */
static void test_merge(void **state) {
    lfm_model *m = ((models *)*state)->q4;
    int32_t t[100];
    fill_tokens(t, 100, 9, lfm_model_hparams(m)->n_vocab);
    pc_cache *c = pc_new(m, 64u << 20);
    pc_marks mk = {0};
    lfm_seq *a = lfm_seq_new(m, 256), *r = lfm_seq_new(m, 256);
    feed(m, a, t, 40, 40, NULL, NULL);
    pc_insert(c, t, 40, a, &mk);
    feed(m, a, t + 40, 30, 30, NULL, NULL);
    pc_insert(c, t, 70, a, &mk);
    pc_stats st;
    pc_get_stats(c, &st);
    assert_int_equal(st.entries, 1);
    /* Both restore points are still there. */
    assert_int_equal(pc_restore(c, t, 60, r), 40);
    lfm_seq_reset(r);
    assert_int_equal(pc_restore(c, t, 100, r), 70);
    /* r (restored to 70) evaluates 5 more, then stores 75... */
    feed(m, r, t + 70, 5, 5, NULL, NULL);
    pc_insert(c, t, 75, r, &mk);
    /* ...and a shorter state already covered adds a checkpoint only. */
    lfm_seq_reset(r);
    feed(m, r, t, 20, 20, NULL, NULL);
    pc_insert(c, t, 20, r, &mk);
    pc_get_stats(c, &st);
    assert_int_equal(st.entries, 1);
    lfm_seq_reset(r);
    assert_int_equal(pc_restore(c, t, 30, r), 20);
    lfm_seq_free(a);
    lfm_seq_free(r);
    pc_free(c);
}

/* The budget holds: inserting more than fits evicts least recently used
 * entries first; a restore counts as a use; too big is never kept. */
static void test_budget_lru(void **state) {
    lfm_model *m = ((models *)*state)->q4;
    int nv = lfm_model_hparams(m)->n_vocab;
    /* Size of one 64-token entry with one checkpoint, measured. */
    pc_cache *probe = pc_new(m, 1u << 30);
    int32_t t[4][64];
    for (int i = 0; i < 4; i++)
        fill_tokens(t[i], 64, 100 + (uint32_t)i, nv);
    lfm_seq *s[4];
    pc_marks mk = {0};
    for (int i = 0; i < 4; i++) {
        s[i] = lfm_seq_new(m, 128);
        feed(m, s[i], t[i], 64, 64, NULL, NULL);
    }
    pc_insert(probe, t[0], 64, s[0], &mk);
    pc_stats st;
    pc_get_stats(probe, &st);
    size_t one = st.bytes;
    assert_true(one > 64 * 4);
    pc_free(probe);

    pc_cache *c = pc_new(m, 3 * one); /* room for three */
    lfm_seq *r = lfm_seq_new(m, 128);
    for (int i = 0; i < 3; i++)
        pc_insert(c, t[i], 64, s[i], &mk);
    /* Use entry 0, so entry 1 is the least recent. */
    int32_t p[65];
    memcpy(p, t[0], sizeof t[0]);
    p[64] = 1;
    assert_int_equal(pc_restore(c, p, 65, r), 64);
    pc_insert(c, t[3], 64, s[3], &mk);
    pc_get_stats(c, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= 3 * one);
    for (int i = 0; i < 4; i++) {
        memcpy(p, t[i], sizeof t[i]);
        lfm_seq_reset(r);
        assert_int_equal(pc_restore(c, p, 65, r), i == 1 ? 0 : 64);
    }
    pc_free(c);
    /* Smaller than one entry: nothing is kept, the marks are freed. */
    c = pc_new(m, one / 2);
    lfm_seq_reset(r);
    feed(m, r, t[0], 64, 32, c, &mk);
    assert_int_equal(mk.n, 2);
    pc_insert(c, t[0], 64, r, &mk);
    assert_int_equal(mk.n, 0);
    pc_get_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    pc_free(c);
    assert_null(pc_new(m, 0));
    for (int i = 0; i < 4; i++)
        lfm_seq_free(s[i]);
    lfm_seq_free(r);
}

/* ------------------------------------------------- through lfm_sched -- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t tok[256];
    float lp[256];
    int n_tok;
    bool done;
    lfm_event ev_done;
} sink;

static void on_event(void *user, const lfm_event *ev) {
    sink *k = user;
    pthread_mutex_lock(&k->mu);
    if (ev->type == LFM_EV_TOKEN && k->n_tok < 256) {
        k->tok[k->n_tok] = ev->token;
        k->lp[k->n_tok] = ev->logprob;
        k->n_tok++;
    } else if (ev->type == LFM_EV_DONE) {
        k->done = true;
        k->ev_done = *ev;
        k->ev_done.text = NULL;
        k->ev_done.error = NULL;
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static void sink_wait(sink *k) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 300;
    pthread_mutex_lock(&k->mu);
    int rc = 0;
    while (!k->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&k->cv, &k->mu, &dl);
    pthread_mutex_unlock(&k->mu);
    assert_true(k->done);
}

#define TURNS 5

typedef struct {
    int32_t tok[TURNS][64];
    float lp[TURNS][64];
    int n_gen[TURNS], n_prompt[TURNS], n_cached[TURNS];
} chat_run;

/* A 5-turn chat at token level: turn k's prompt is turn k-1's prompt, its
 * generated tokens and new "user" tokens (multi-turn clients resend the
 * history). temperature 0 = greedy, else seeded sampling. */
static void run_chat(lfm_model *m, size_t cache_bytes, float temperature, chat_run *out) {
    lfm_sched_opts o;
    lfm_sched_opts_default(&o);
    o.max_active = 2;
    o.n_ctx = 1024;
    o.prefix_cache_bytes = cache_bytes;
    lfm_sched *s = NULL;
    char err[256];
    assert_int_equal(lfm_sched_new(m, &o, &s, err, sizeof err), LFM_OK);
    int nv = lfm_model_hparams(m)->n_vocab;
    int32_t hist[1024];
    int n = 0;
    memset(out, 0, sizeof *out);
    for (int turn = 0; turn < TURNS; turn++) {
        int user = turn == 0 ? 300 : 40; /* the first turn: a long system prompt */
        fill_tokens(hist + n, user, 77 + (uint32_t)turn, nv);
        n += user;
        sink k = {0};
        pthread_mutex_init(&k.mu, NULL);
        pthread_cond_init(&k.cv, NULL);
        lfm_job_params p;
        memset(&p, 0, sizeof p);
        p.prompt = hist;
        p.n_prompt = (size_t)n;
        p.max_tokens = 12;
        lfm_sampler_defaults(&p.sampling);
        p.sampling.temperature = temperature;
        p.sampling.min_p = 0;
        p.sampling.top_k = 40;
        p.sampling.repeat_penalty = 1.05f;
        p.sampling.seed = 1234 + (uint64_t)turn;
        p.logprobs = true;
        p.cb = on_event;
        p.user = &k;
        assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_OK);
        sink_wait(&k);
        out->n_prompt[turn] = n;
        out->n_gen[turn] = k.n_tok;
        out->n_cached[turn] = k.ev_done.n_cached;
        memcpy(out->tok[turn], k.tok, (size_t)k.n_tok * sizeof *k.tok);
        memcpy(out->lp[turn], k.lp, (size_t)k.n_tok * sizeof *k.lp);
        memcpy(hist + n, k.tok, (size_t)k.n_tok * sizeof *k.tok);
        n += k.n_tok;
        pthread_mutex_destroy(&k.mu);
        pthread_cond_destroy(&k.cv);
    }
    lfm_cache_stats st;
    lfm_sched_cache_stats(s, &st);
    lfm_sched_free(s);
    if (cache_bytes) assert_true(st.lookups >= TURNS - 1);
}

static void check_chat(lfm_model *m, float temperature) {
    chat_run *with = malloc(sizeof *with), *without = malloc(sizeof *without);
    run_chat(m, 0, temperature, without);
    run_chat(m, 64u << 20, temperature, with);
    for (int t = 0; t < TURNS; t++) {
        assert_int_equal(with->n_gen[t], without->n_gen[t]);
        assert_true(with->n_gen[t] > 0);
        assert_memory_equal(with->tok[t], without->tok[t], (size_t)with->n_gen[t] * 4);
        assert_memory_equal(with->lp[t], without->lp[t], (size_t)with->n_gen[t] * 4);
        assert_int_equal(without->n_cached[t], 0);
        if (t == 0) {
            assert_int_equal(with->n_cached[t], 0);
        } else {
            /* Everything the previous job fed: its prompt and generated
             * tokens but the last (sampled, never evaluated). */
            int prev = with->n_prompt[t - 1] + with->n_gen[t - 1] - 1;
            assert_int_equal(with->n_cached[t], prev);
        }
    }
    free(with);
    free(without);
}

static void test_chat_greedy_same_tokens(void **state) {
    check_chat(((models *)*state)->q4, 0.0f);
}

static void test_chat_sampled_same_tokens(void **state) {
    check_chat(((models *)*state)->q4, 1.5f);
    check_chat(((models *)*state)->f32, 1.5f);
}

/* What makes reuse work behind the API: the rendered prompt of turn k is a
 * prefix of turn k+1's (the history is resent verbatim), so turn k's
 * prefill end is always a restore point for turn k+1. */
static void test_chat_prompts_extend(void **state) {
    lfm_model *m = ((models *)*state)->q4;
    const lfm_tokenizer *tk = lfm_model_tokenizer(m);
    assert_non_null(tk);
    lfm_chat_msg msgs[] = {
        {LFM_ROLE_SYSTEM, "You are terse.", NULL},
        {LFM_ROLE_USER, "What is 2+2?", NULL},
        {LFM_ROLE_ASSISTANT, "4, as always.", NULL},
        {LFM_ROLE_USER, "And 3+3? \u00e9t\u00e9", NULL},
    };
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    char err[128];
    assert_int_equal(
        lfm_chat_tokenize(tk, LFM_TEMPLATE_LFM2, msgs, 2, NULL, true, &a, &na, err, sizeof err),
        LFM_OK);
    assert_int_equal(
        lfm_chat_tokenize(tk, LFM_TEMPLATE_LFM2, msgs, 4, NULL, true, &b, &nb, err, sizeof err),
        LFM_OK);
    assert_true(nb > na + 4);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_exact_f16_kv),
        cmocka_unit_test(test_restore_exact_f32_kv),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_budget_lru),
        cmocka_unit_test(test_chat_greedy_same_tokens),
        cmocka_unit_test(test_chat_sampled_same_tokens),
        cmocka_unit_test(test_chat_prompts_extend),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
