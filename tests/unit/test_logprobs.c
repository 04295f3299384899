/* Unit tests for engine/logprobs.c and the scheduler's LFM_EV_TOKEN events:
 * lfm_logprobs against hand-computed values (ordering, ties, k bounds), and
 * every token event of a scheduled job against log softmax of the logits a
 * separate lfm_eval computes for the same history, with penalties and a
 * logit bias steering the draw (logprobs stay those of the raw logits). */
/* tg-test-links: lfm */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine/lfm_sched.h"

#define F32_MODEL TG_FIXTURES "/models/lfm2-tiny-f32.gguf"
#define MAX_TOK   24

static void test_logprobs_values(void **st) {
    (void)st;
    float lg[5] = {1.0f, 3.0f, 3.0f, -INFINITY, 0.0f};
    double z = exp(1.0) + 2 * exp(3.0) + 1.0;
    float lp = 0;
    int32_t ids[4];
    float lps[4];
    assert_int_equal(lfm_logprobs(lg, 5, 0, 4, &lp, ids, lps), 4);
    assert_float_equal(lp, 1.0 - log(z), 1e-6);
    /* Best first, ties by lower id, -inf last. */
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 0);
    assert_int_equal(ids[3], 4);
    assert_float_equal(lps[0], 3.0 - log(z), 1e-6);
    assert_float_equal(lps[3], 0.0 - log(z), 1e-6);
    assert_int_equal(lfm_logprobs(lg, 5, 3, 0, &lp, NULL, NULL), 0);
    assert_true(isinf(lp) && lp < 0);
    /* k above the vocabulary: clipped; bad arguments refused. */
    int32_t ids2[20];
    float lps2[20];
    assert_int_equal(lfm_logprobs(lg, 5, 1, 20, &lp, ids2, lps2), 5);
    assert_int_equal(lfm_logprobs(lg, 5, 5, 1, &lp, ids, lps), LFM_EINVAL);
    assert_int_equal(lfm_logprobs(lg, 5, 0, 21, &lp, ids2, lps2), LFM_EINVAL);
    assert_int_equal(lfm_logprobs(lg, 5, 0, 1, &lp, NULL, NULL), LFM_EINVAL);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_tok;
    int32_t tok[MAX_TOK];
    float lp[MAX_TOK];
    int n_top[MAX_TOK];
    int32_t top_ids[MAX_TOK][LFM_MAX_TOP_LOGPROBS];
    float top_lps[MAX_TOK][LFM_MAX_TOP_LOGPROBS];
    int text_before_token; /* TEXT events seen before any TOKEN */
    bool done;
} lp_sink;

static void on_event(void *user, const lfm_event *ev) {
    lp_sink *k = user;
    pthread_mutex_lock(&k->mu);
    if (ev->type == LFM_EV_TOKEN && k->n_tok < MAX_TOK) {
        int i = k->n_tok++;
        k->tok[i] = ev->token;
        k->lp[i] = ev->logprob;
        k->n_top[i] = ev->n_top;
        memcpy(k->top_ids[i], ev->top_ids, (size_t)ev->n_top * sizeof(int32_t));
        memcpy(k->top_lps[i], ev->top_logprobs, (size_t)ev->n_top * sizeof(float));
    } else if (ev->type == LFM_EV_TEXT && k->n_tok == 0) {
        k->text_before_token++;
    } else if (ev->type == LFM_EV_DONE) {
        k->done = true;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
}

/* Log softmax in double of raw logits, for comparison. */
static double ref_logprob(const float *lg, int nv, int32_t t) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < nv; i++)
        if (lg[i] > mx) mx = lg[i];
    for (int i = 0; i < nv; i++)
        s += exp((double)lg[i] - mx);
    return (double)lg[t] - mx - log(s);
}

static void run_and_check(int top, float temperature, bool steer) {
    lfm_model *m = NULL;
    char err[256];
    assert_int_equal(lfm_model_load(F32_MODEL, NULL, &m, err, sizeof err), LFM_OK);
    int nv = lfm_model_hparams(m)->n_vocab;
    lfm_sched *s = NULL;
    assert_int_equal(lfm_sched_new(m, NULL, &s, err, sizeof err), LFM_OK);
    static const int32_t prompt[] = {1, 300, 301, 302, 303, 304, 305, 306, 307, 308};
    const size_t np = sizeof prompt / sizeof prompt[0];
    lp_sink k;
    memset(&k, 0, sizeof k);
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    lfm_job_params p = {0};
    p.prompt = prompt;
    p.n_prompt = np;
    p.max_tokens = 16;
    lfm_sampler_defaults(&p.sampling);
    p.sampling.temperature = temperature;
    p.sampling.seed = 7;
    int32_t bias_tok[1] = {400};
    float bias_val[1] = {100.0f};
    if (steer) { /* penalties and a bias change the draw, not the logprobs */
        p.sampling.frequency_penalty = 1.5f;
        p.sampling.repeat_penalty = 1.3f;
        p.sampling.bias_tokens = bias_tok;
        p.sampling.bias_values = bias_val;
        p.sampling.n_bias = 1;
    }
    p.logprobs = true;
    p.top_logprobs = top;
    p.cb = on_event;
    p.user = &k;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_OK);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 300;
    pthread_mutex_lock(&k.mu);
    while (!k.done)
        if (pthread_cond_timedwait(&k.cv, &k.mu, &dl) == ETIMEDOUT) break;
    pthread_mutex_unlock(&k.mu);
    assert_true(k.done);
    assert_true(k.n_tok > 0);
    assert_int_equal(k.text_before_token, 0);

    /* Replay the same history through lfm_eval, one step at a time. */
    lfm_seq *seq = lfm_seq_new(m, 256);
    float *lg = malloc((size_t)nv * sizeof *lg);
    int32_t hist[64];
    memcpy(hist, prompt, sizeof prompt);
    size_t nh = np;
    lfm_seq *seqs[16];
    for (size_t i = 0; i < 16; i++)
        seqs[i] = seq;
    assert_int_equal(lfm_eval(m, (int)np, hist, seqs, NULL, lg, err, sizeof err), LFM_OK);
    for (int t = 0; t < k.n_tok; t++) {
        if (steer) assert_int_equal(k.tok[t], 400); /* +100 forces it */
        assert_float_equal(k.lp[t], ref_logprob(lg, nv, k.tok[t]), 2e-4);
        assert_int_equal(k.n_top[t], top);
        for (int j = 0; j < top; j++) {
            assert_float_equal(k.top_lps[t][j], ref_logprob(lg, nv, k.top_ids[t][j]), 2e-4);
            if (j) assert_true(k.top_lps[t][j] <= k.top_lps[t][j - 1]);
        }
        if (top > 0 && temperature == 0 && !steer) {
            assert_int_equal(k.tok[t], k.top_ids[t][0]); /* greedy = argmax */
            assert_float_equal(k.lp[t], k.top_lps[t][0], 1e-6);
        }
        hist[nh++] = k.tok[t];
        if (t + 1 < k.n_tok)
            assert_int_equal(lfm_eval(m, 1, &hist[nh - 1], seqs, NULL, lg, err, sizeof err),
                             LFM_OK);
    }
    free(lg);
    lfm_seq_free(seq);
    lfm_sched_free(s);
    lfm_model_free(m);
    pthread_mutex_destroy(&k.mu);
    pthread_cond_destroy(&k.cv);
}

static void test_sched_greedy_top5(void **st) {
    (void)st;
    run_and_check(5, 0.0f, false);
}

static void test_sched_sampled_top20(void **st) {
    (void)st;
    run_and_check(20, 1.0f, false);
}

static void test_sched_steered_top0(void **st) {
    (void)st;
    run_and_check(0, 0.7f, true);
}

static void test_submit_rejects_bad_top(void **st) {
    (void)st;
    lfm_model *m = NULL;
    char err[256];
    assert_int_equal(lfm_model_load(F32_MODEL, NULL, &m, err, sizeof err), LFM_OK);
    lfm_sched *s = NULL;
    assert_int_equal(lfm_sched_new(m, NULL, &s, err, sizeof err), LFM_OK);
    static const int32_t prompt[] = {1, 300};
    lp_sink k;
    memset(&k, 0, sizeof k);
    lfm_job_params p = {0};
    p.prompt = prompt;
    p.n_prompt = 2;
    lfm_sampler_defaults(&p.sampling);
    p.cb = on_event;
    p.user = &k;
    p.logprobs = true;
    p.top_logprobs = 21;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_EINVAL);
    p.top_logprobs = -1;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_EINVAL);
    lfm_sched_free(s);
    lfm_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logprobs_values),        cmocka_unit_test(test_sched_greedy_top5),
        cmocka_unit_test(test_sched_sampled_top20),    cmocka_unit_test(test_sched_steered_top0),
        cmocka_unit_test(test_submit_rejects_bad_top),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
