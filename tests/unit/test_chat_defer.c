/* Unit tests for gateway/api/chat_defer: who may wait and who runs on when
 * the client leaves; the queue with a real journal and loop (DEFERRED
 * records, arrival order, the retention cap, shutdown leaving requests
 * DEFERRED). The HTTP side (202, keep-alive streams, wake-up by mode and
 * breaker, restart) is tests/integration/test_defer.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/api/chat_defer.h"
#include "gateway/api/chat_internal.h"
#include "gateway/journal/tg_jfile.h"
#include "tests/support/journal_test_util.h"

static const char k_body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

typedef struct {
    uv_loop_t loop;
    tg_config cfg;
    tg_api api;
    /* The queue's timer is unref'd: in a gateway the listeners keep the loop
     * running, here this one does. */
    uv_timer_t alive;
    char *dir;
} fixture;

static void on_alive(uv_timer_t *t) {
    (void)t;
}

static void fx_open(fixture *f, int retention_s) {
    memset(f, 0, sizeof *f);
    uv_loop_init(&f->loop);
    tg_config_defaults(&f->cfg);
    f->cfg.journal.retention_s = retention_s;
    f->dir = jt_tmpdir();
    assert_non_null(f->dir);
    tg_jfile_opts o = {.dir = f->dir, .loop = &f->loop, .no_sync = true};
    tg_jfile_report rep;
    char err[256];
    f->api.journal = tg_jfile_open(&o, &rep, err, sizeof err);
    assert_non_null(f->api.journal);
    f->api.loop = &f->loop;
    f->api.cfg = &f->cfg;
    uv_timer_init(&f->loop, &f->alive);
    uv_timer_start(&f->alive, on_alive, 3600000, 3600000);
}

static void fx_close(fixture *f) {
    tg_defer_close(&f->api);
    tg_journal_close(f->api.journal);
    uv_close((uv_handle_t *)&f->alive, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the timers close */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    jt_rmdir(f->dir);
    free(f->dir);
}

/* Runs the loop (its timer is unref'd: NOWAIT turns) until cond or ~3 s. */
static void spin(fixture *f, bool (*cond)(fixture *)) {
    for (int i = 0; i < 300 && !cond(f); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_true(cond(f));
}

/* A journaled, client-less chat request whose plan says defer. */
static tg_chat *deferrable(fixture *f, const char *id, uint64_t t0) {
    tg_chat *c = tg_chat_new(&f->api, NULL, NULL);
    snprintf(c->rid, sizeof c->rid, "%s", id);
    snprintf(c->req_id, sizeof c->req_id, "%s", id);
    c->chat_body = strdup(k_body);
    c->chat_body_len = strlen(k_body);
    c->journaled = true;
    c->t0_ns = t0;
    c->plan.defer = (rt_defer){true, 60000, 5000};
    snprintf(c->plan.rule, sizeof c->plan.rule, "private");
    snprintf(c->plan.reason, sizeof c->plan.reason, "rule=private; none available");
    assert_int_equal(tg_journal_append_sync(f->api.journal, TG_JREC_ACCEPTED, id, "{}", 2), 0);
    return c;
}

static int state_of(fixture *f, const char *id) {
    tg_journal_info info;
    assert_int_equal(tg_journal_info_get(f->api.journal, id, &info), 0);
    return info.state;
}

static void test_who_waits_and_who_finishes(void **st) {
    (void)st;
    fixture f;
    fx_open(&f, 60);
    tg_chat *c = deferrable(&f, "req_a", 1);
    assert_true(tg_defer_wanted(c));
    c->mode = TG_CHAT_RESPONSES; /* only chat completions wait */
    assert_false(tg_defer_wanted(c));
    c->mode = TG_CHAT_CHAT;
    c->token_out = true; /* something of an answer went out: too late */
    assert_false(tg_defer_wanted(c));
    c->token_out = false;
    c->plan.defer.enabled = false;
    assert_false(tg_defer_wanted(c));

    /* Client gone: the rule decides; by default the Idempotency-Key does. */
    assert_false(tg_chat_finish_when_gone(c));
    snprintf(c->idem, sizeof c->idem, "k1");
    assert_true(tg_chat_finish_when_gone(c));
    c->plan.on_client_gone = RT_PGONE_CANCEL;
    assert_false(tg_chat_finish_when_gone(c));
    c->plan.on_client_gone = RT_PGONE_FINISH;
    c->idem[0] = 0;
    assert_true(tg_chat_finish_when_gone(c));
    c->journaled = false; /* nothing to finish into */
    assert_false(tg_chat_finish_when_gone(c));
    tg_chat_free(c);
    fx_close(&f);
}

static bool three_waiting(fixture *f) {
    return tg_defer_count(&f->api) == 3;
}

static bool none_waiting(fixture *f) {
    return tg_defer_count(&f->api) == 0;
}

static uint64_t now_us(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000ull + (uint64_t)tv.tv_usec;
}

/* Requests wait under DEFERRED; past the retention they end FAILED
 * deferred_expired, in arrival order (the queue's), whatever order they
 * were deferred in. */
static void test_queue_order_and_retention_cap(void **st) {
    (void)st;
    fixture f;
    fx_open(&f, 5);
    const char *ids[3] = {"req_late", "req_early", "req_mid"};
    uint64_t t0[3] = {300, 100, 200};
    tg_chat *cs[3];
    for (int i = 0; i < 3; i++) {
        cs[i] = deferrable(&f, ids[i], t0[i]);
        tg_defer_request(cs[i]);
    }
    spin(&f, three_waiting);
    for (int i = 0; i < 3; i++)
        assert_int_equal(state_of(&f, ids[i]), TG_JREC_DEFERRED);
    /* As if accepted long ago: the next tick finds them past the cap. */
    for (int i = 0; i < 3; i++)
        cs[i]->defer_created_us = now_us() - 10 * 1000000ull;
    spin(&f, none_waiting);
    /* Their FAILED records are durable once the loop has run their
     * callbacks; then the scan shows the order. */
    for (int i = 0; i < 50; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    jt_list l = {0};
    tg_journal_scan(f.api.journal, jt_collect, &l);
    const char *order[3] = {"req_early", "req_mid", "req_late"};
    int k = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (atoi(l.v[i]) != TG_JREC_FAILED) continue;
        assert_true(k < 3);
        char want[64];
        snprintf(want, sizeof want, "%d|%s|", TG_JREC_FAILED, order[k++]);
        assert_memory_equal(l.v[i], want, strlen(want));
        assert_non_null(strstr(l.v[i], "\"code\":\"deferred_expired\""));
        assert_non_null(strstr(l.v[i], "\"status\":504"));
    }
    assert_int_equal(k, 3);
    jt_list_free(&l);
    fx_close(&f);
}

static bool one_waiting(fixture *f) {
    return tg_defer_count(&f->api) == 1;
}

/* DEFERRED carries why; shutdown frees the waiting request and leaves it
 * DEFERRED (the next start re-plans it). */
static void test_deferred_record_and_shutdown(void **st) {
    (void)st;
    fixture f;
    fx_open(&f, 60);
    tg_chat *c = deferrable(&f, "req_x", 1);
    c->last_cause = RT_FAIL_BREAKER_OPEN;
    tg_defer_request(c);
    spin(&f, one_waiting);
    jt_list l = {0};
    tg_journal_read(f.api.journal, "req_x", jt_collect, &l);
    assert_int_equal(l.n, 2);
    assert_non_null(strstr(l.v[1], "\"rule\":\"private\""));
    assert_non_null(strstr(l.v[1], "\"cause\":\"breaker_open\""));
    assert_non_null(strstr(l.v[1], "\"max_wait_s\":60.000"));
    jt_list_free(&l);
    tg_defer_close(&f.api);
    assert_int_equal(tg_defer_count(&f.api), 0);
    assert_int_equal(state_of(&f, "req_x"), TG_JREC_DEFERRED);
    fx_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_who_waits_and_who_finishes),
        cmocka_unit_test(test_queue_order_and_retention_cap),
        cmocka_unit_test(test_deferred_record_and_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
