/* tg-test-links: lfm */
/* Sampler: greedy, seeds, top-k, min-p, top-p, repetition penalty (exact
 * numbers), OpenAI frequency/presence penalties and logit bias, and the
 * sampled distribution against softmax. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/lfm.h"
#include "engine/lfm_sched.h"

#define Q4_MODEL TG_FIXTURES "/models/lfm2-tiny-q4_0.gguf"

#define NV 1000

static void fill_logits(float *l, unsigned seed) {
    srand(seed);
    for (int i = 0; i < NV; i++)
        l[i] = (float)(rand() % 10000) / 1000.0f - 5.0f;
}

static lfm_sampler_params params(float temp, int top_k, float top_p, float min_p, float pen,
                                 uint64_t seed) {
    lfm_sampler_params p;
    lfm_sampler_defaults(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = pen;
    p.repeat_last_n = 64;
    p.seed = seed;
    return p;
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static void test_defaults(void **state) {
    (void)state;
    lfm_sampler_params a, b;
    lfm_sampler_defaults(&a);
    lfm_sampler_defaults(&b);
    assert_float_equal(a.temperature, 0.3f, 1e-7);
    assert_float_equal(a.min_p, 0.15f, 1e-7);
    assert_float_equal(a.repeat_penalty, 1.05f, 1e-7);
    assert_float_equal(a.top_p, 1.0f, 0);
    assert_int_equal(a.top_k, 0);
    assert_true(a.repeat_last_n > 0);
    assert_true(a.seed != b.seed); /* from the clock */
    assert_null(lfm_sampler_new(&a, 0));
    assert_null(lfm_sampler_new(NULL, 10));
    assert_float_equal(a.frequency_penalty, 0.0f, 0);
    assert_float_equal(a.presence_penalty, 0.0f, 0);
    assert_null(a.bias_tokens);
    assert_null(a.bias_values);
    assert_int_equal(a.n_bias, 0);
}

/* Greedy pick over two logits {3, 2} after the generated history gen (the
 * prompt being n_prompt leading entries of hist). */
static int32_t pick_pen(float fp, float pp, const int32_t *hist, size_t n_hist, size_t n_prompt,
                        float *l0_out) {
    lfm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    p.frequency_penalty = fp;
    p.presence_penalty = pp;
    lfm_sampler *s = lfm_sampler_new(&p, 2);
    assert_non_null(s);
    lfm_sampler_set_prompt_len(s, n_prompt);
    float l[2] = {3.0f, 2.0f};
    int32_t t = lfm_sampler_sample(s, l, hist, n_hist);
    if (l0_out) *l0_out = l[0];
    lfm_sampler_free(s);
    return t;
}

static void test_frequency_presence(void **state) {
    (void)state;
    /* Prompt {1, 0, 0, 0}, generated {0, 0, 1}: count(0) = 2, count(1) = 1. */
    int32_t h[] = {1, 0, 0, 0, 0, 0, 1};
    float l0;
    /* Exact logits: 3 - 0.25*2 - 0.5 = 2; 2 - 0.25*1 - 0.5 = 1.25. */
    {
        lfm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
        p.frequency_penalty = 0.25f;
        p.presence_penalty = 0.5f;
        lfm_sampler *s = lfm_sampler_new(&p, 3);
        lfm_sampler_set_prompt_len(s, 4);
        float l[3] = {3.0f, 2.0f, 1.0f};
        assert_int_equal(lfm_sampler_sample(s, l, h, 7), 0);
        assert_float_equal(l[0], 2.0f, 0);
        assert_float_equal(l[1], 1.25f, 0);
        assert_float_equal(l[2], 1.0f, 0); /* never generated: untouched */
        /* Counts do not leak into the next call: same input, same output. */
        float m[3] = {3.0f, 2.0f, 1.0f};
        lfm_sampler_sample(s, m, h, 7);
        assert_float_equal(m[0], 2.0f, 0);
        assert_float_equal(m[1], 1.25f, 0);
        lfm_sampler_free(s);
    }
    /* Frequency only, history {0, 0} generated after a 1-token prompt of 1
     * (token 1 in the prompt must not count). Logit 0 = 3 - 2 fp against
     * logit 1 = 2: the pick flips when fp > 0.5 (a tie keeps the lower id). */
    int32_t g[] = {1, 0, 0};
    assert_int_equal(pick_pen(0.4375f, 0.0f, g, 3, 1, &l0), 0);
    assert_float_equal(l0, 2.125f, 0);
    assert_int_equal(pick_pen(0.5f, 0.0f, g, 3, 1, &l0), 0);
    assert_float_equal(l0, 2.0f, 0);
    assert_int_equal(pick_pen(0.5625f, 0.0f, g, 3, 1, &l0), 1);
    assert_float_equal(l0, 1.875f, 0);
    /* Presence only: 3 - pp, counted once however often 0 was generated. */
    assert_int_equal(pick_pen(0.0f, 1.0f, g, 3, 1, &l0), 0);
    assert_float_equal(l0, 2.0f, 0);
    assert_int_equal(pick_pen(0.0f, 1.0625f, g, 3, 1, &l0), 1);
    assert_float_equal(l0, 1.9375f, 0);
    /* Prompt tokens never count: all of g as prompt leaves logits alone. */
    assert_int_equal(pick_pen(2.0f, 2.0f, g, 3, 3, &l0), 0);
    assert_float_equal(l0, 3.0f, 0);
    /* Negative penalties raise the logit: 3 + 2*0.5 + 1 = 5. */
    assert_int_equal(pick_pen(-0.5f, -1.0f, g, 3, 1, &l0), 0);
    assert_float_equal(l0, 5.0f, 0);
    /* Without a prompt length the whole history counts (1 generated once):
     * logit 1 = 2 - 2 = 0, logit 0 = 3 - 2*2 = -1 -> pick 1. */
    {
        lfm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
        p.frequency_penalty = 2.0f;
        lfm_sampler *s = lfm_sampler_new(&p, 2);
        float l[2] = {3.0f, 2.0f};
        assert_int_equal(lfm_sampler_sample(s, l, g, 3), 1);
        assert_float_equal(l[0], -1.0f, 0);
        assert_float_equal(l[1], 0.0f, 0);
        lfm_sampler_free(s);
    }
    /* Non-finite penalties are refused. */
    lfm_sampler_params bad = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    bad.frequency_penalty = NAN;
    assert_null(lfm_sampler_new(&bad, 2));
}

static void test_logit_bias(void **state) {
    (void)state;
    static float l[NV], c[NV];
    fill_logits(l, 77);
    int am = argmax(l, NV);
    int lo = 0;
    for (int i = 1; i < NV; i++)
        if (l[i] < l[lo]) lo = i;
    /* The runner-up, which greedy must pick once the argmax is banned. */
    memcpy(c, l, sizeof l);
    c[am] = -INFINITY;
    int second = argmax(c, NV);

    /* Bias arrays on the heap, freed (and scribbled over first) right after
     * lfm_sampler_new: the sampler must work from its own copies. */
    int32_t *toks = malloc(2 * sizeof *toks);
    float *vals = malloc(2 * sizeof *vals);
    toks[0] = am;
    vals[0] = -100.0f;
    toks[1] = 5; /* a +0.5 nudge elsewhere, exact */
    vals[1] = 0.5f;
    lfm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    p.bias_tokens = toks;
    p.bias_values = vals;
    p.n_bias = 2;
    lfm_sampler *s = lfm_sampler_new(&p, NV);
    assert_non_null(s);
    toks[0] = toks[1] = 0;
    vals[0] = vals[1] = 0.0f;
    free(toks);
    free(vals);
    memcpy(c, l, sizeof l);
    int32_t t = lfm_sampler_sample(s, c, NULL, 0);
    assert_int_not_equal(t, am);
    assert_int_equal(t, second == 5 || l[5] + 0.5f <= l[second] ? second : 5);
    assert_float_equal(c[am], l[am] - 100.0f, 0);
    assert_float_equal(c[5], l[5] + 0.5f, 0);
    lfm_sampler_free(s);

    /* +100 forces the worst token, greedy and sampled (T = 1, no filters). */
    int32_t ft = lo;
    float fv = 100.0f;
    for (int k = 0; k < 2; k++) {
        p = params(k ? 1.0f : 0.0f, 0, 1.0f, 0.0f, 1.0f, 9);
        p.bias_tokens = &ft;
        p.bias_values = &fv;
        p.n_bias = 1;
        s = lfm_sampler_new(&p, NV);
        for (int r = 0; r < 500; r++) {
            memcpy(c, l, sizeof l);
            assert_int_equal(lfm_sampler_sample(s, c, NULL, 0), lo);
        }
        lfm_sampler_free(s);
    }
    /* -100 on the argmax when sampling at T = 1: never drawn (e^-90). */
    int32_t bt = am;
    float bv = -100.0f;
    p = params(1.0f, 0, 1.0f, 0.0f, 1.0f, 11);
    p.bias_tokens = &bt;
    p.bias_values = &bv;
    p.n_bias = 1;
    s = lfm_sampler_new(&p, NV);
    for (int r = 0; r < 2000; r++) {
        memcpy(c, l, sizeof l);
        assert_int_not_equal(lfm_sampler_sample(s, c, NULL, 0), am);
    }
    lfm_sampler_free(s);

    /* Invalid lists are refused: id out of range, negative, NULL arrays, NaN. */
    int32_t badt = NV;
    p.bias_tokens = &badt;
    assert_null(lfm_sampler_new(&p, NV));
    badt = -1;
    assert_null(lfm_sampler_new(&p, NV));
    p.bias_tokens = NULL;
    assert_null(lfm_sampler_new(&p, NV));
    badt = 3;
    p.bias_tokens = &badt;
    bv = NAN;
    assert_null(lfm_sampler_new(&p, NV));
}

static void test_greedy_and_topk1(void **state) {
    (void)state;
    float l[NV], c[NV];
    for (unsigned s = 1; s <= 20; s++) {
        fill_logits(l, s);
        int want = argmax(l, NV);
        lfm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 1.0f, s);
        lfm_sampler *g = lfm_sampler_new(&p, NV);
        memcpy(c, l, sizeof l);
        assert_int_equal(lfm_sampler_sample(g, c, NULL, 0), want);
        lfm_sampler_free(g);
        /* top_k = 1 at a high temperature is greedy too. */
        p = params(5.0f, 1, 1.0f, 0.0f, 1.0f, s);
        g = lfm_sampler_new(&p, NV);
        for (int r = 0; r < 5; r++) {
            memcpy(c, l, sizeof l);
            assert_int_equal(lfm_sampler_sample(g, c, NULL, 0), want);
        }
        lfm_sampler_free(g);
    }
    /* NaN logits are skipped. */
    float n3[3] = {NAN, 1.0f, 2.0f};
    lfm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    lfm_sampler *g = lfm_sampler_new(&p, 3);
    assert_int_equal(lfm_sampler_sample(g, n3, NULL, 0), 2);
    lfm_sampler_free(g);
}

static void test_seed_determinism(void **state) {
    (void)state;
    float l[NV], c[NV];
    fill_logits(l, 99);
    int32_t seq[3][64];
    uint64_t seeds[3] = {42, 42, 43};
    for (int k = 0; k < 3; k++) {
        lfm_sampler_params p = params(1.5f, 0, 1.0f, 0.0f, 1.0f, seeds[k]);
        lfm_sampler *s = lfm_sampler_new(&p, NV);
        for (int i = 0; i < 64; i++) {
            memcpy(c, l, sizeof l);
            seq[k][i] = lfm_sampler_sample(s, c, NULL, 0);
            assert_true(seq[k][i] >= 0 && seq[k][i] < NV);
        }
        lfm_sampler_free(s);
    }
    assert_memory_equal(seq[0], seq[1], sizeof seq[0]);
    assert_memory_not_equal(seq[0], seq[2], sizeof seq[0]);
}

/* Logits [ln 4, ln 2, ln 1, ln 1] at T=1: p = [.5, .25, .125, .125]. */
static void counts(const lfm_sampler_params *p, const float *base, int n, int draws, int *cnt) {
    lfm_sampler *s = lfm_sampler_new(p, n);
    float c[8];
    memset(cnt, 0, (size_t)n * sizeof *cnt);
    for (int i = 0; i < draws; i++) {
        memcpy(c, base, (size_t)n * sizeof *c);
        int32_t t = lfm_sampler_sample(s, c, NULL, 0);
        assert_true(t >= 0 && t < n);
        cnt[t]++;
    }
    lfm_sampler_free(s);
}

static void test_distribution_minp_topp(void **state) {
    (void)state;
    const float base[4] = {logf(4), logf(2), 0, 0};
    int cnt[4];
    const int N = 40000;
    lfm_sampler_params p = params(1.0f, 0, 1.0f, 0.0f, 1.0f, 7);
    counts(&p, base, 4, N, cnt);
    const double want[4] = {0.5, 0.25, 0.125, 0.125};
    for (int i = 0; i < 4; i++)
        assert_true(fabs(cnt[i] / (double)N - want[i]) < 0.012);
    /* min_p 0.3: keeps p >= 0.15 -> tokens 0, 1 renormalized to 2/3, 1/3. */
    p = params(1.0f, 0, 1.0f, 0.3f, 1.0f, 8);
    counts(&p, base, 4, N, cnt);
    assert_int_equal(cnt[2] + cnt[3], 0);
    assert_true(fabs(cnt[0] / (double)N - 2.0 / 3) < 0.012);
    /* min_p 0.49 keeps p >= 0.245: tokens 0 and 1; 0.51 only token 0. */
    p = params(1.0f, 0, 1.0f, 0.51f, 1.0f, 9);
    counts(&p, base, 4, 2000, cnt);
    assert_int_equal(cnt[0], 2000);
    p = params(1.0f, 0, 1.0f, 0.49f, 1.0f, 9);
    counts(&p, base, 4, 2000, cnt);
    assert_int_equal(cnt[2] + cnt[3], 0);
    assert_true(cnt[1] > 0);
    /* top_p 0.7: smallest prefix reaching 0.7 is {0, 1} (0.75). */
    p = params(1.0f, 0, 0.7f, 0.0f, 1.0f, 10);
    counts(&p, base, 4, N, cnt);
    assert_int_equal(cnt[2] + cnt[3], 0);
    assert_true(fabs(cnt[0] / (double)N - 2.0 / 3) < 0.012);
    /* top_p 0.5 keeps only token 0. */
    p = params(1.0f, 0, 0.5f, 0.0f, 1.0f, 11);
    counts(&p, base, 4, 2000, cnt);
    assert_int_equal(cnt[0], 2000);
    p = params(1.0f, 0, 0.0f, 0.0f, 1.0f, 11);
    counts(&p, base, 4, 2000, cnt);
    assert_int_equal(cnt[0], 2000);
    /* top_k 2 at T=1: tokens 0, 1 as 2/3, 1/3. */
    p = params(1.0f, 2, 1.0f, 0.0f, 1.0f, 12);
    counts(&p, base, 4, N, cnt);
    assert_int_equal(cnt[2] + cnt[3], 0);
    assert_true(fabs(cnt[1] / (double)N - 1.0 / 3) < 0.012);
    /* Temperature 0.5 squares the odds: p ∝ [16, 4, 1, 1] / 22. */
    p = params(0.5f, 0, 1.0f, 0.0f, 1.0f, 13);
    counts(&p, base, 4, N, cnt);
    assert_true(fabs(cnt[0] / (double)N - 16.0 / 22) < 0.012);
    assert_true(fabs(cnt[2] / (double)N - 1.0 / 22) < 0.006);
}

static void test_repetition_penalty(void **state) {
    (void)state;
    /* Exact numbers: positive logits divided, negative multiplied, each
     * distinct token once, only within the last repeat_last_n entries. */
    float l[5] = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
    int32_t hist[] = {3, 0, 1, 0, 1, 0};
    lfm_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 2.0f, 1);
    p.repeat_last_n = 5; /* window: 0, 1, 0, 1, 0 -- token 3 is outside */
    lfm_sampler *s = lfm_sampler_new(&p, 5);
    assert_int_equal(lfm_sampler_sample(s, l, hist, 6), 3);
    assert_float_equal(l[0], 1.0f, 0);
    assert_float_equal(l[1], -2.0f, 0);
    assert_float_equal(l[2], 0.5f, 0);
    assert_float_equal(l[3], 3.0f, 0);
    lfm_sampler_free(s);
    /* The penalty changes the greedy pick: 2.0 -> 1.0 < 1.5. */
    float m[3] = {2.0f, 1.5f, 0.0f};
    int32_t h2[] = {0, 99, -5}; /* out-of-range ids are ignored */
    s = lfm_sampler_new(&p, 3);
    assert_int_equal(lfm_sampler_sample(s, m, h2, 3), 1);
    lfm_sampler_free(s);
    /* Sampled: logits [1, 0], token 0 penalized by 2 -> p0 = e^.5 / (e^.5 + 1). */
    p = params(1.0f, 0, 1.0f, 0.0f, 2.0f, 5);
    s = lfm_sampler_new(&p, 2);
    int c0 = 0;
    const int N = 40000;
    int32_t h3[] = {0};
    for (int i = 0; i < N; i++) {
        float x[2] = {1.0f, 0.0f};
        c0 += lfm_sampler_sample(s, x, h3, 1) == 0;
    }
    double want = exp(0.5) / (exp(0.5) + 1.0);
    assert_true(fabs(c0 / (double)N - want) < 0.012);
    lfm_sampler_free(s);
}

static const float *g_sort_base;
static int cmp_desc(const void *a, const void *b) {
    float x = g_sort_base[*(const int *)a], y = g_sort_base[*(const int *)b];
    return x > y ? -1 : x < y ? 1 : 0;
}

/* Large vocabulary: the top-k selection and top-p sort keep exactly the
 * expected sets (reference computed here by plain sorting). */
static void test_large_sets(void **state) {
    (void)state;
    static float l[NV], c[NV];
    static int order[NV];
    fill_logits(l, 1234);
    for (int i = 0; i < NV; i++)
        order[i] = i;
    g_sort_base = l;
    qsort(order, NV, sizeof *order, cmp_desc);
    static unsigned char in_k[NV], in_p[NV], seen[NV];
    for (int i = 0; i < 50; i++)
        in_k[order[i]] = 1;
    /* top_p 0.6 at T=1 over all logits. */
    double z = 0, cum = 0;
    for (int i = 0; i < NV; i++)
        z += exp((double)l[i] - l[order[0]]);
    int np = 0;
    while (cum < 0.6 * z)
        cum += exp((double)l[order[np++]] - l[order[0]]);
    for (int i = 0; i < np; i++)
        in_p[order[i]] = 1;
    assert_true(np > 50);
    lfm_sampler_params p = params(50.0f, 50, 1.0f, 0.0f, 1.0f, 3);
    lfm_sampler *s = lfm_sampler_new(&p, NV);
    int distinct = 0;
    for (int r = 0; r < 3000; r++) {
        memcpy(c, l, sizeof l);
        int32_t t = lfm_sampler_sample(s, c, NULL, 0);
        assert_true(in_k[t]);
        if (!seen[t]++) distinct++;
    }
    assert_int_equal(distinct, 50);
    lfm_sampler_free(s);
    memset(seen, 0, sizeof seen);
    p = params(1.0f, 0, 0.6f, 0.0f, 1.0f, 4);
    s = lfm_sampler_new(&p, NV);
    distinct = 0;
    for (int r = 0; r < 6000; r++) {
        memcpy(c, l, sizeof l);
        int32_t t = lfm_sampler_sample(s, c, NULL, 0);
        assert_true(in_p[t]);
        if (!seen[t]++) distinct++;
    }
    assert_true(distinct > np / 2);
    lfm_sampler_free(s);
}

/* ------------------------------------------- through the scheduler -- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_buf text;
    bool done;
    int n_generated;
} job_sink;

static void on_job(void *user, const lfm_event *ev) {
    job_sink *k = user;
    pthread_mutex_lock(&k->mu);
    if (ev->type == LFM_EV_TEXT)
        tg_buf_append(&k->text, ev->text, ev->len);
    else {
        k->done = true;
        k->n_generated = ev->n_generated;
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* Runs one greedy job and returns its text (malloc'd, NUL-terminated). The
 * bias arrays are heap copies of tok/val freed right after submit, so the
 * scheduler must hold its own copies (ASan reports a use after free
 * otherwise). */
static char *run_job(lfm_sched *s, const int32_t *prompt, size_t n, int max_tokens, float fp,
                     float pp, const int32_t *tok, const float *val, size_t n_bias) {
    job_sink k = {.text = TG_BUF_INIT};
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    lfm_job_params p;
    memset(&p, 0, sizeof p);
    p.prompt = prompt;
    p.n_prompt = n;
    p.max_tokens = max_tokens;
    p.sampling = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
    p.sampling.frequency_penalty = fp;
    p.sampling.presence_penalty = pp;
    int32_t *bt = NULL;
    float *bv = NULL;
    if (n_bias) {
        bt = malloc(n_bias * sizeof *bt);
        bv = malloc(n_bias * sizeof *bv);
        memcpy(bt, tok, n_bias * sizeof *bt);
        memcpy(bv, val, n_bias * sizeof *bv);
        p.sampling.bias_tokens = bt;
        p.sampling.bias_values = bv;
        p.sampling.n_bias = n_bias;
    }
    p.cb = on_job;
    p.user = &k;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_OK);
    free(bt);
    free(bv);
    pthread_mutex_lock(&k.mu);
    while (!k.done)
        pthread_cond_wait(&k.cv, &k.mu);
    pthread_mutex_unlock(&k.mu);
    assert_int_equal(k.n_generated, max_tokens);
    tg_buf_putc(&k.text, 0);
    char *out = k.text.data;
    pthread_mutex_destroy(&k.mu);
    pthread_cond_destroy(&k.cv);
    return out;
}

static void test_sched_penalties_and_bias(void **state) {
    (void)state;
    lfm_model_opts o;
    lfm_model_opts_default(&o);
    o.n_threads = 1;
    lfm_model *m = NULL;
    char err[256];
    assert_int_equal(lfm_model_load(Q4_MODEL, &o, &m, err, sizeof err), LFM_OK);
    const lfm_tokenizer *tk = lfm_model_tokenizer(m);
    lfm_sched_opts so;
    lfm_sched_opts_default(&so);
    so.max_active = 1;
    so.n_ctx = 256;
    lfm_sched *s = NULL;
    assert_int_equal(lfm_sched_new(m, &so, &s, err, sizeof err), LFM_OK);

    int32_t *ids = NULL;
    size_t n = 0;
    const char *txt = "The tide comes in and goes out.";
    assert_int_equal(lfm_tokenize(tk, txt, strlen(txt), true, false, &ids, &n), LFM_OK);
    assert_true(n > 3);
    /* The unpenalized greedy first token, as text. */
    char *a = run_job(s, ids, n, 1, 0, 0, NULL, NULL, 0);
    assert_true(a[0] != 0);
    /* Negative penalties boost each counted token by 100: were the prompt
     * counted, one of its tokens would win the first pick. Only generated
     * tokens count, so the first pick is unchanged... */
    char *b = run_job(s, ids, n, 1, -50.0f, -50.0f, NULL, NULL, 0);
    assert_string_equal(b, a);
    /* ...and the second pick repeats the first (+100 over logits of a few
     * units), so the penalties do reach the sampler. */
    char *c = run_job(s, ids, n, 2, -50.0f, -50.0f, NULL, NULL, 0);
    char *aa = malloc(2 * strlen(a) + 1);
    sprintf(aa, "%s%s", a, a);
    assert_string_equal(c, aa);

    /* +100 forces "Z" every step; the caller's arrays are freed at submit. */
    int32_t *z = NULL;
    size_t nz = 0;
    assert_int_equal(lfm_tokenize(tk, "Z", 1, false, false, &z, &nz), LFM_OK);
    assert_int_equal(nz, 1);
    int32_t bt[2] = {z[0], 3};
    float bv[2] = {100.0f, -100.0f};
    char *f = run_job(s, ids, n, 3, 0, 0, bt, bv, 2);
    assert_string_equal(f, "ZZZ");
    /* A bias id outside the vocabulary is refused at submit. */
    {
        lfm_job_params p;
        memset(&p, 0, sizeof p);
        p.prompt = ids;
        p.n_prompt = n;
        p.max_tokens = 1;
        p.sampling = params(0.0f, 0, 1.0f, 0.0f, 1.0f, 1);
        int32_t badt = lfm_vocab_size(tk);
        float badv = 1.0f;
        p.sampling.bias_tokens = &badt;
        p.sampling.bias_values = &badv;
        p.sampling.n_bias = 1;
        p.cb = on_job;
        p.user = NULL;
        assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_EINVAL);
        p.sampling.bias_tokens = NULL;
        assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_EINVAL);
    }
    free(a);
    free(b);
    free(c);
    free(aa);
    free(f);
    free(z);
    free(ids);
    lfm_sched_free(s);
    lfm_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_greedy_and_topk1),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_distribution_minp_topp),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_large_sets),
        cmocka_unit_test(test_frequency_presence),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_sched_penalties_and_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
