/* Unit tests for gateway/engine_bridge with the real scheduler and the tiny
 * fixture model: events arrive on the loop thread in order, counts match,
 * detach stops callbacks, cancel ends a job, a full queue says LFM_EFULL. */
/* tg-test-links: tggateway */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/engine_bridge.h"

#define MODEL TG_FIXTURES "/models/lfm2-tiny-q4_0.gguf"

typedef struct {
    pthread_t loop_thread;
    int n_text, n_done, last_generated;
    bool wrong_thread, text_after_done;
    lfm_finish finish;
    int n_prompt, n_generated;
    size_t bytes;
    tg_bridge_job *job;
    bool detach_on_first_text;
} owner;

static void on_text(void *u, const lfm_event *ev) {
    owner *o = u;
    if (!pthread_equal(pthread_self(), o->loop_thread)) o->wrong_thread = true;
    if (o->n_done) o->text_after_done = true;
    o->n_text++;
    o->bytes += ev->len;
    o->last_generated = ev->n_generated;
    if (o->detach_on_first_text) tg_bridge_detach(o->job);
}

static void on_done(void *u, const lfm_event *ev) {
    owner *o = u;
    if (!pthread_equal(pthread_self(), o->loop_thread)) o->wrong_thread = true;
    o->n_done++;
    o->finish = ev->finish;
    o->n_prompt = ev->n_prompt;
    o->n_generated = ev->n_generated;
}

typedef struct {
    lfm_model *m;
    lfm_sched *s;
    tg_bridge *b;
    uv_loop_t loop;
    int32_t prompt[8];
} fx;

static int setup(void **st) {
    fx *f = calloc(1, sizeof *f);
    lfm_model_opts mo;
    lfm_model_opts_default(&mo);
    mo.n_threads = 1;
    char err[256];
    if (lfm_model_load(MODEL, &mo, &f->m, err, sizeof err) != LFM_OK) return -1;
    lfm_sched_opts so;
    lfm_sched_opts_default(&so);
    so.max_active = 2;
    so.queue_cap = 2;
    so.n_ctx = 256;
    if (lfm_sched_new(f->m, &so, &f->s, err, sizeof err) != LFM_OK) return -1;
    uv_loop_init(&f->loop);
    if (tg_bridge_new(&f->loop, f->s, &f->b) != LFM_OK) return -1;
    for (int i = 0; i < 8; i++)
        f->prompt[i] = 20 + i * 3;
    *st = f;
    return 0;
}

static int teardown(void **st) {
    fx *f = *st;
    lfm_sched_free(f->s);
    tg_bridge_close(f->b);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    lfm_model_free(f->m);
    free(f);
    return 0;
}

static int submit(fx *f, owner *o, int max_tokens, uint64_t seed) {
    lfm_job_params p = {0};
    p.prompt = f->prompt;
    p.n_prompt = 8;
    p.max_tokens = max_tokens;
    lfm_sampler_defaults(&p.sampling);
    p.sampling.seed = seed;
    o->loop_thread = pthread_self();
    tg_bridge_cbs cbs = {.on_text = on_text, .on_done = on_done};
    return tg_bridge_submit(f->b, &p, &cbs, o, &o->job);
}

/* Runs the loop until every owner got DONE (or a few seconds pass). */
static void run_until_done(fx *f, owner **os, int n) {
    for (int iter = 0; iter < 100000; iter++) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += os[i]->n_done > 0;
        if (done == n && tg_bridge_live_jobs(f->b) == 0) return;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    fail_msg("jobs did not finish");
}

static void test_events_in_order_on_loop(void **st) {
    fx *f = *st;
    /* static: a failed assert leaves jobs that teardown still delivers */
    static owner a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    assert_int_equal(submit(f, &a, 12, 1), LFM_OK);
    assert_int_equal(submit(f, &b, 7, 2), LFM_OK);
    assert_int_equal(tg_bridge_live_jobs(f->b), 2);
    owner *os[] = {&a, &b};
    run_until_done(f, os, 2);
    for (int i = 0; i < 2; i++) {
        owner *o = os[i];
        assert_false(o->wrong_thread);
        assert_false(o->text_after_done);
        assert_int_equal(o->n_done, 1);
        assert_int_equal(o->n_prompt, 8);
        assert_true(o->n_text >= 1);
        assert_true(o->bytes > 0);
        assert_true(o->last_generated <= o->n_generated);
    }
    /* Either max_tokens or an end-of-generation token ended them. */
    assert_true(a.finish == LFM_FINISH_LENGTH ? a.n_generated == 12 : a.finish == LFM_FINISH_STOP);
    assert_true(b.finish == LFM_FINISH_LENGTH ? b.n_generated == 7 : b.finish == LFM_FINISH_STOP);
    assert_int_equal(tg_bridge_live_jobs(f->b), 0);
}

static void test_queue_full(void **st) {
    fx *f = *st;
    /* max_active 2 + queue_cap 2: of five quick submissions at most four fit
     * (jobs long enough to still be there when the fifth arrives). */
    static owner o[5];
    memset(o, 0, sizeof o);
    int rcs[5], n_full = 0;
    for (int i = 0; i < 5; i++) {
        rcs[i] = submit(f, &o[i], 200, (uint64_t)i);
        n_full += rcs[i] == LFM_EFULL;
    }
    assert_true(n_full >= 1);
    owner *live[5];
    int n = 0;
    for (int i = 0; i < 5; i++) {
        if (rcs[i] == LFM_OK) {
            live[n++] = &o[i];
            tg_bridge_cancel(o[i].job);
        } else {
            assert_int_equal(rcs[i], LFM_EFULL);
        }
    }
    run_until_done(f, live, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(live[i]->n_done, 1);
        /* Canceled at the next token (or finished first). */
        assert_true(live[i]->n_generated < 200);
    }
    /* A refused submit never calls back. */
    for (int i = 0; i < 5; i++)
        if (rcs[i] == LFM_EFULL) assert_int_equal(o[i].n_done + o[i].n_text, 0);
}

static void test_detach_stops_callbacks(void **st) {
    fx *f = *st;
    static owner a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    a.detach_on_first_text = true;
    assert_int_equal(submit(f, &a, 200, 3), LFM_OK);
    assert_int_equal(submit(f, &b, 5, 4), LFM_OK);
    owner *os[] = {&b};
    run_until_done(f, os, 1);
    /* Wait for the detached job to be freed too (its DONE arrives unseen). */
    for (int i = 0; i < 100000 && tg_bridge_live_jobs(f->b); i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(tg_bridge_live_jobs(f->b), 0);
    assert_int_equal(a.n_text, 1);
    assert_int_equal(a.n_done, 0);
    assert_int_equal(b.n_done, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_in_order_on_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detach_stops_callbacks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
