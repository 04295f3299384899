/* Unit tests for gateway/routing: hot reload (valid, invalid, unchanged,
 * by file watch), the state JSON, engine averages. Real files, a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "gateway/routing.h"

static char g_dir[128], g_path[256];

static void write_file(const char *text) {
    /* Write-and-rename, as editors do: the watch is on the directory. */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/.tmp.yaml", g_dir);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, g_path), 0);
}

static const char k_a[] = "rules:\n  - {name: first, target: edge}\n";
static const char k_b[] = "rules:\n  - {name: second, target: edge}\n";
static const char k_bad[] = "rules:\n  - {name: broken, target: moon}\n";

static int setup(void **st) {
    (void)st;
    snprintf(g_dir, sizeof g_dir, "/tmp/tg-routing-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/p.yaml", g_dir);
    write_file(k_a);
    return 0;
}

static int teardown(void **st) {
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void drain(uv_loop_t *loop) {
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_reload_valid_invalid_unchanged(void **st) {
    (void)st;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tg_routing r;
    char err[2048];
    assert_int_equal(tg_routing_init(&r, &loop, g_path, false, err, sizeof err), 0);
    assert_string_equal(rt_policy_rule_name(r.policy, 0), "first");
    assert_int_equal(tg_routing_reload(&r, "test", err, sizeof err), 0); /* unchanged */
    assert_int_equal(r.n_reloads, 0);
    write_file(k_bad);
    assert_int_equal(tg_routing_reload(&r, "test", err, sizeof err), -1);
    assert_non_null(strstr(err, "p.yaml:2:28: rules[0].target: unknown target 'moon'"));
    assert_string_equal(rt_policy_rule_name(r.policy, 0), "first"); /* old one kept */
    assert_int_equal(r.n_reload_errors, 1);
    tg_buf b = TG_BUF_INIT;
    tg_buf_putc(&b, '{');
    tg_routing_state_members(&r, &b);
    tg_buf_putc(&b, '}');
    json_object *o = json_tokener_parse(b.data);
    assert_non_null(o);
    json_object *pol, *le, *health;
    assert_true(json_object_object_get_ex(o, "policy", &pol));
    assert_true(json_object_object_get_ex(pol, "last_error", &le));
    assert_non_null(strstr(json_object_get_string(le), "unknown target 'moon'"));
    assert_true(json_object_object_get_ex(o, "health", &health));
    json_object_put(o);
    tg_buf_free(&b);
    write_file(k_b);
    assert_int_equal(tg_routing_reload(&r, "test", err, sizeof err), 0);
    assert_string_equal(rt_policy_rule_name(r.policy, 0), "second");
    assert_int_equal(r.n_reloads, 1);
    assert_string_equal(r.last_error, "");
    tg_routing_close(&r);
    drain(&loop);
}

/* The directory watch sees a write-and-rename and reloads after the
 * debounce. A polling timer stops the loop once it has. */
static tg_routing *g_r;
static uint64_t g_t0;
static void on_poll(uv_timer_t *t) {
    if (g_r->n_reloads > 0 || uv_now(t->loop) - g_t0 > 20000) uv_stop(t->loop);
}

static void test_file_watch_reloads(void **st) {
    (void)st;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tg_routing r;
    char err[2048];
    assert_int_equal(tg_routing_init(&r, &loop, g_path, false, err, sizeof err), 0);
    tg_routing_start(&r, "/nonexistent", 60000);
    assert_true(r.watching);
    g_r = &r;
    g_t0 = uv_now(&loop);
    uv_timer_t poll;
    uv_timer_init(&loop, &poll);
    uv_timer_start(&poll, on_poll, 5, 5);
    write_file(k_b);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.n_reloads, 1);
    assert_string_equal(rt_policy_rule_name(r.policy, 0), "second");
    uv_close((uv_handle_t *)&poll, NULL);
    tg_routing_close(&r);
    drain(&loop);
}

static void queue_fn(void *u, int *waiting, int *running) {
    (void)u;
    *waiting = 3;
    *running = 2;
}

static void test_builtin_and_health(void **st) {
    (void)st;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tg_routing r;
    char err[256];
    assert_int_equal(tg_routing_init(&r, &loop, NULL, true, err, sizeof err), 0);
    assert_non_null(strstr(rt_policy_source(r.policy), "hybrid.yaml"));
    assert_int_equal(tg_routing_reload(&r, "test", err, sizeof err), 1);
    r.engine_queue = queue_fn;
    r.queue_cap = 4;
    tg_routing_start(&r, "/nonexistent", 60000);
    assert_true(r.health.v[RT_H_ENGINE_QUEUE_DEPTH] == 5);
    assert_true(r.health.v[RT_H_ENGINE_QUEUE_FRAC] == 0.75);
    tg_routing_engine_done(&r, 100, 11, 1100); /* 10 tokens in 1 s after the first */
    assert_true(r.health.v[RT_H_ENGINE_TTFT_MS] == 100);
    assert_true(r.health.v[RT_H_ENGINE_TOK_S] == 10);
    tg_routing_close(&r);
    drain(&loop);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reload_valid_invalid_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_watch_reloads, setup, teardown),
        cmocka_unit_test(test_builtin_and_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
