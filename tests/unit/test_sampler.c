/* tg-test-links: lfm */
/* Sampler: greedy, seeds, top-k, min-p, top-p, repetition penalty (exact
 * numbers) and the sampled distribution against softmax. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/lfm.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),           cmocka_unit_test(test_greedy_and_topk1),
        cmocka_unit_test(test_seed_determinism),   cmocka_unit_test(test_distribution_minp_topp),
        cmocka_unit_test(test_repetition_penalty), cmocka_unit_test(test_large_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
