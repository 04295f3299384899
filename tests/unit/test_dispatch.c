/* Unit tests for router/dispatch: model name -> plan. */
/* tg-test-links: tgrouter */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "router/dispatch.h"

static const rt_dispatch_ctx k_ready = {"lfm2-tiny-q4_0", true, false, NULL, NULL, NULL};

static void plan_for(const rt_dispatch_ctx *ctx, const char *model, rt_plan *p, int want_rc) {
    rt_request_info r = {.model = model, .prompt_tokens = -1};
    assert_int_equal(rt_dispatch_plan(ctx, &r, p), want_rc);
}

static void test_auto_and_omitted_go_to_engine(void **st) {
    (void)st;
    const char *names[] = {NULL, "", "tidegate/auto"};
    for (size_t i = 0; i < 3; i++) {
        rt_plan p;
        plan_for(&k_ready, names[i], &p, 0);
        assert_int_equal(p.err.status, 0);
        assert_int_equal(p.n_targets, 1);
        assert_int_equal(p.targets[0].kind, RT_TARGET_ENGINE);
        assert_string_equal(p.targets[0].name, "engine");
        assert_string_equal(p.response_model, "lfm2-tiny-q4_0");
        assert_non_null(strstr(p.reason, "auto"));
    }
}

static void test_edge_and_model_id_go_to_engine(void **st) {
    (void)st;
    rt_plan p;
    plan_for(&k_ready, "tidegate/edge", &p, 0);
    assert_int_equal(p.targets[0].kind, RT_TARGET_ENGINE);
    assert_string_equal(p.response_model, "lfm2-tiny-q4_0");
    plan_for(&k_ready, "lfm2-tiny-q4_0", &p, 0);
    assert_int_equal(p.targets[0].kind, RT_TARGET_ENGINE);
    assert_string_equal(p.reason, "embedded model requested");
}

static void test_cloud_without_upstream_is_503(void **st) {
    (void)st;
    rt_plan p;
    plan_for(&k_ready, "tidegate/cloud", &p, -1);
    assert_int_equal(p.err.status, 503);
    assert_int_equal(p.n_targets, 0);
    assert_string_equal(p.err.code, "cloud_unavailable");
    assert_string_equal(p.err.message, "no cloud upstream configured");
}

static void test_unknown_model_is_404(void **st) {
    (void)st;
    rt_plan p;
    plan_for(&k_ready, "gpt-4o", &p, -1);
    assert_int_equal(p.err.status, 404);
    assert_string_equal(p.err.type, "invalid_request_error");
    assert_string_equal(p.err.code, "model_not_found");
    assert_string_equal(p.err.param, "model");
    assert_non_null(strstr(p.err.message, "'gpt-4o'"));
    /* Case matters, as with OpenAI. */
    plan_for(&k_ready, "Tidegate/Auto", &p, -1);
    assert_int_equal(p.err.status, 404);
}

static void test_long_model_name_is_bounded(void **st) {
    (void)st;
    char name[4096];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = 0;
    rt_plan p;
    plan_for(&k_ready, name, &p, -1);
    assert_int_equal(p.err.status, 404);
    assert_true(strlen(p.err.message) < sizeof p.err.message);
    assert_true(strlen(p.err.message) < 120);
}

static void test_engine_not_ready_is_503(void **st) {
    (void)st;
    rt_dispatch_ctx down = {"lfm2-tiny-q4_0", false, false, NULL, NULL, NULL};
    rt_plan p;
    plan_for(&down, "tidegate/auto", &p, -1);
    assert_int_equal(p.err.status, 503);
    assert_string_equal(p.err.code, "engine_unavailable");
    rt_dispatch_ctx none = {NULL, false, false, NULL, NULL, NULL};
    plan_for(&none, "tidegate/edge", &p, -1);
    assert_int_equal(p.err.status, 503);
    /* With no engine, its id is unknown, so an arbitrary name is a 404. */
    plan_for(&none, "lfm2-tiny-q4_0", &p, -1);
    assert_int_equal(p.err.status, 404);
}

static void test_models_list(void **st) {
    (void)st;
    const char *ids[8], *owners[8];
    size_t n = rt_dispatch_models(&k_ready, ids, owners, 8);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], "lfm2-tiny-q4_0");
    assert_string_equal(ids[1], "tidegate/auto");
    assert_string_equal(ids[2], "tidegate/edge");
    assert_string_equal(owners[0], "tidegate-edge");
    /* Capacity is respected. */
    assert_int_equal(rt_dispatch_models(&k_ready, ids, NULL, 2), 2);
    assert_string_equal(rt_target_kind_name(RT_TARGET_CLOUD), "cloud");
}

/* ---- with cloud upstreams: a real router from a real config ---- */

static uv_loop_t g_loop;
static rt_router g_router;

static void router_up(const char *yaml) {
    tg_config cfg;
    char err[512];
    tg_config_defaults(&cfg);
    assert_int_equal(tg_config_load_mem(yaml, strlen(yaml), "t.yaml", &cfg, err, sizeof err), 0);
    assert_int_equal(tg_config_finalize(&cfg, err, sizeof err), 0);
    assert_int_equal(uv_loop_init(&g_loop), 0);
    setenv("TG_TEST_KEY", "sk-test", 1);
    assert_int_equal(rt_router_init(&g_router, &g_loop, &cfg, err, sizeof err), 0);
    tg_config_free(&cfg);
}

static void router_down(void) {
    rt_router_close(&g_router);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&g_loop), 0);
}

static const char *k_two = "cloud:\n"
                           "  - {name: a, base_url: \"https://127.0.0.1:1/v1\", model: ma,\n"
                           "     api_key_env: TG_TEST_KEY, first_byte_timeout_ms: 700}\n"
                           "  - {name: b, base_url: \"https://127.0.0.1:2/v1\", model: mb,\n"
                           "     fallback: none, midstream: error}\n";

static void test_cloud_plans(void **st) {
    (void)st;
    router_up(k_two);
    rt_dispatch_ctx ctx = {"edge-m", true, true, &g_router, NULL, NULL};
    rt_plan p;
    plan_for(&ctx, "tidegate/cloud", &p, 0);
    assert_int_equal(p.n_targets, 3);
    assert_string_equal(p.targets[0].name, "cloud:a");
    assert_int_equal(p.targets[0].upstream, 0);
    assert_int_equal(p.targets[0].timeout_ms, 700);
    assert_string_equal(p.targets[1].name, "cloud:b");
    assert_int_equal(p.targets[1].midstream, RT_MIDSTREAM_ERROR);
    assert_string_equal(p.targets[2].name, "engine");
    assert_string_equal(p.response_model, "ma");
    /* A cloud model's own name: that upstream, then the edge ... */
    plan_for(&ctx, "ma", &p, 0);
    assert_int_equal(p.n_targets, 2);
    assert_string_equal(p.targets[0].name, "cloud:a");
    assert_string_equal(p.targets[1].name, "engine");
    /* ... unless it says fallback: none. */
    plan_for(&ctx, "mb", &p, 0);
    assert_int_equal(p.n_targets, 1);
    assert_string_equal(p.targets[0].name, "cloud:b");
    /* auto: edge first, the cloud as fallback. */
    plan_for(&ctx, "tidegate/auto", &p, 0);
    assert_int_equal(p.n_targets, 3);
    assert_string_equal(p.targets[0].name, "engine");
    assert_string_equal(p.targets[1].name, "cloud:a");
    /* ... and the cloud first while the engine's breaker is open. */
    rt_breaker_force(&g_router.engine_breaker, RT_BREAKER_OPEN, 0);
    plan_for(&ctx, "tidegate/auto", &p, 0);
    assert_string_equal(p.targets[0].name, "cloud:a");
    assert_string_equal(p.targets[2].name, "engine");
    rt_breaker_force(&g_router.engine_breaker, RT_BREAKER_CLOSED, 0);

    const char *ids[16], *owners[16];
    size_t n = rt_dispatch_models(&ctx, ids, owners, 16);
    assert_int_equal(n, 6);
    assert_string_equal(ids[3], "tidegate/cloud");
    assert_string_equal(ids[4], "ma");
    assert_string_equal(owners[4], "cloud:a");
    assert_string_equal(ids[5], "mb");
    router_down();
}

/* An engine queue that sheds load (429) is busy, not broken: however many
 * requests it sheds, its breaker stays closed; real faults still open it. */
static void test_engine_shedding_keeps_breaker_closed(void **st) {
    (void)st;
    router_up("routing:\n  breaker:\n    failures: 3\n    cooldown_ms: 60000\n");
    rt_breaker *b = &g_router.engine_breaker;
    for (int i = 0; i < 50; i++) {
        assert_true(rt_router_allow(&g_router, NULL));
        rt_router_outcome(&g_router, NULL, RT_FAIL_ENGINE_BUSY, 0);
    }
    assert_int_equal(b->state, RT_BREAKER_CLOSED);
    assert_int_equal(b->n_failure, 0);
    assert_int_equal(b->consecutive, 0);
    assert_true(rt_breaker_failure_rate(b) == 0);
    /* Shedding between faults does not reset the count of consecutive faults ... */
    rt_router_outcome(&g_router, NULL, RT_FAIL_ENGINE, 0);
    rt_router_outcome(&g_router, NULL, RT_FAIL_ENGINE_BUSY, 0);
    rt_router_outcome(&g_router, NULL, RT_FAIL_ENGINE, 0);
    assert_int_equal(b->state, RT_BREAKER_CLOSED);
    rt_router_outcome(&g_router, NULL, RT_FAIL_ENGINE, 0);
    assert_int_equal(b->state, RT_BREAKER_OPEN);
    assert_int_equal(b->n_failure, 3);
    /* ... and a half-open trial that is shed is handed back, not failed. */
    rt_breaker_force(b, RT_BREAKER_HALF_OPEN, 0);
    assert_true(rt_router_allow(&g_router, NULL));
    assert_false(rt_router_allow(&g_router, NULL)); /* one trial at a time */
    rt_router_outcome(&g_router, NULL, RT_FAIL_ENGINE_BUSY, 0);
    assert_int_equal(b->state, RT_BREAKER_HALF_OPEN);
    assert_true(rt_router_allow(&g_router, NULL)); /* the trial is free again */
    rt_router_outcome(&g_router, NULL, RT_FAIL_NONE, 5);
    assert_int_equal(b->state, RT_BREAKER_CLOSED);
    assert_string_equal(rt_fail_cause_name(RT_FAIL_ENGINE_BUSY), "engine_busy");
    router_down();
}

static void test_modes_filter_plans(void **st) {
    (void)st;
    router_up(k_two);
    rt_dispatch_ctx ctx = {"edge-m", true, true, &g_router, NULL, NULL};
    rt_plan p;
    rt_router_set_mode(&g_router, RT_CONN_OFFLINE);
    plan_for(&ctx, "tidegate/cloud", &p, 0);
    assert_int_equal(p.n_targets, 1);
    assert_string_equal(p.targets[0].name, "engine");
    assert_non_null(strstr(p.reason, "offline"));
    plan_for(&ctx, "mb", &p, -1); /* fallback none and no network: 503 */
    assert_int_equal(p.err.status, 503);
    assert_string_equal(p.err.code, "cloud_unavailable");
    plan_for(&ctx, "tidegate/auto", &p, 0);
    assert_int_equal(p.n_targets, 1);

    rt_router_set_mode(&g_router, RT_CONN_CLOUD_ONLY);
    plan_for(&ctx, "tidegate/cloud", &p, 0);
    assert_int_equal(p.n_targets, 2);
    assert_string_equal(p.targets[1].name, "cloud:b");
    plan_for(&ctx, "tidegate/edge", &p, -1);
    assert_int_equal(p.err.status, 503);
    assert_string_equal(p.err.code, "edge_unavailable");

    /* auto, with the link derived offline, behaves as offline. */
    rt_router_set_mode(&g_router, RT_CONN_AUTO);
    for (int i = 0; i < 3; i++)
        rt_conn_observe(&g_router.conn, false, true, 10);
    assert_int_equal(g_router.conn.link, RT_LINK_OFFLINE);
    plan_for(&ctx, "ma", &p, 0);
    assert_int_equal(p.n_targets, 1);
    assert_string_equal(p.targets[0].name, "engine");
    router_down();
}

/* tidegate/auto with a policy: the decision becomes the plan. */
static void test_policy_plans(void **st) {
    (void)st;
    router_up(k_two);
    const char *y = "rules:\n"
                    "  - name: hot\n"
                    "    when: {health: {thermal_max_c: {gte: 80}}}\n"
                    "    target: cloud:b\n"
                    "    fallbacks: [edge]\n"
                    "    timeouts_ms: {cloud:b: 1234}\n"
                    "    retry_budget: 1\n"
                    "    mid_stream: continue\n"
                    "  - name: off\n"
                    "    when: {mode: offline}\n"
                    "    target: cloud\n"
                    "  - name: default\n"
                    "    target: edge\n"
                    "    fallbacks: [cloud]\n"
                    "    cascade: {tokens: 4, min_mean_logprob: -1}\n";
    char err[1024];
    rt_policy *pol = rt_policy_load_mem(y, strlen(y), "p.yaml", err, sizeof err);
    assert_non_null(pol);
    rt_health h;
    rt_health_init(&h);
    rt_dispatch_ctx ctx = {"edge-m", true, true, &g_router, pol, &h};
    rt_features f;
    memset(&f, 0, sizeof f);
    rt_request_info r = {.model = "tidegate/auto", .prompt_tokens = -1, .features = &f};
    rt_plan p;
    assert_int_equal(rt_dispatch_plan(&ctx, &r, &p), 0);
    assert_true(p.scored);
    assert_string_equal(p.rule, "default");
    assert_int_equal(p.n_targets, 3); /* engine, cloud:a, cloud:b */
    assert_string_equal(p.targets[0].name, "engine");
    assert_string_equal(p.targets[2].name, "cloud:b");
    assert_true(p.cascade.enabled);
    assert_string_equal(p.response_model, "edge-m");
    assert_non_null(strstr(p.reason, "rule=default; score="));
    rt_health_set(&h, RT_H_THERMAL_MAX_C, 90);
    assert_int_equal(rt_dispatch_plan(&ctx, &r, &p), 0);
    assert_string_equal(p.rule, "hot");
    assert_int_equal(p.n_targets, 4); /* cloud:b twice (retry), engine twice */
    assert_string_equal(p.targets[0].name, "cloud:b");
    assert_string_equal(p.targets[1].name, "cloud:b");
    assert_int_equal(p.targets[0].timeout_ms, 1234);
    assert_int_equal(p.targets[0].midstream, RT_MIDSTREAM_CONTINUE); /* rule beats upstream */
    assert_string_equal(p.targets[2].name, "engine");
    assert_false(p.cascade.enabled);
    assert_string_equal(p.response_model, "mb");
    /* Forced offline: the policy sees mode offline; its cloud target is
     * dropped by the mode: nothing left is a 503 naming the rule. */
    rt_health_init(&h);
    rt_router_set_mode(&g_router, RT_CONN_OFFLINE);
    assert_int_equal(rt_dispatch_plan(&ctx, &r, &p), -1);
    assert_int_equal(p.err.status, 503);
    assert_non_null(strstr(p.err.message, "rule 'off'"));
    /* Without features (not an auto request path) the fixed rules apply. */
    rt_router_set_mode(&g_router, RT_CONN_AUTO);
    r.features = NULL;
    assert_int_equal(rt_dispatch_plan(&ctx, &r, &p), 0);
    assert_false(p.scored);
    rt_policy_free(pol);
    router_down();
}

/* A cloud-only rule with defer: offline, the plan is empty (the 503 the
 * caller would send) but carries the defer, so the API can wait instead;
 * online, the cloud targets carry it too (a failed run waits as well). */
static void test_policy_defer_plans(void **st) {
    (void)st;
    router_up(k_two);
    const char *y = "rules:\n"
                    "  - name: private\n"
                    "    when: {features: {explicit_hint: {eq: 1}}}\n"
                    "    target: cloud\n"
                    "    defer: {max_wait_s: 2.5, keepalive_s: 0.5}\n"
                    "    on_client_gone: finish\n"
                    "  - name: default\n"
                    "    target: edge\n";
    char err[1024];
    rt_policy *pol = rt_policy_load_mem(y, strlen(y), "p.yaml", err, sizeof err);
    assert_non_null(pol);
    rt_dispatch_ctx ctx = {"edge-m", true, true, &g_router, pol, NULL};
    rt_features f;
    memset(&f, 0, sizeof f);
    f.raw[RT_F_EXPLICIT_HINT] = 1;
    rt_request_info r = {.model = "tidegate/auto", .prompt_tokens = -1, .features = &f};
    rt_plan p;
    assert_int_equal(rt_dispatch_plan(&ctx, &r, &p), 0);
    assert_string_equal(p.rule, "private");
    assert_int_equal(p.n_targets, 2); /* cloud:a, cloud:b; no edge */
    assert_true(p.defer.enabled);
    assert_int_equal(p.defer.max_wait_ms, 2500);
    assert_int_equal(p.defer.keepalive_ms, 500);
    assert_int_equal(p.on_client_gone, RT_PGONE_FINISH);
    assert_non_null(strstr(p.reason, "(defer)"));
    /* Never on the edge, not even to finish a stream the cloud broke. */
    assert_int_equal(p.targets[0].midstream, RT_MIDSTREAM_ERROR);
    assert_int_equal(p.targets[1].midstream, RT_MIDSTREAM_ERROR);
    const rt_conn_mode off[] = {RT_CONN_OFFLINE, RT_CONN_EDGE_ONLY};
    for (int i = 0; i < 2; i++) {
        rt_router_set_mode(&g_router, off[i]);
        assert_int_equal(rt_dispatch_plan(&ctx, &r, &p), -1);
        assert_int_equal(p.n_targets, 0);
        assert_int_equal(p.err.status, 503);
        assert_string_equal(p.err.code, "cloud_unavailable");
        assert_true(p.defer.enabled);
        assert_int_equal(p.defer.max_wait_ms, 2500);
    }
    /* Another rule: no defer, and the client-gone default. */
    rt_router_set_mode(&g_router, RT_CONN_AUTO);
    f.raw[RT_F_EXPLICIT_HINT] = 0;
    assert_int_equal(rt_dispatch_plan(&ctx, &r, &p), 0);
    assert_false(p.defer.enabled);
    assert_int_equal(p.on_client_gone, RT_PGONE_AUTO);
    rt_policy_free(pol);
    router_down();
}

static void test_missing_key_env_is_an_error(void **st) {
    (void)st;
    const char *y = "cloud:\n  - {name: a, base_url: \"https://x/v1\", model: m, api_key_env: "
                    "TG_TEST_UNSET_KEY}\n";
    tg_config cfg;
    char err[512];
    tg_config_defaults(&cfg);
    assert_int_equal(tg_config_load_mem(y, strlen(y), "t.yaml", &cfg, err, sizeof err), 0);
    unsetenv("TG_TEST_UNSET_KEY");
    uv_loop_t loop;
    uv_loop_init(&loop);
    rt_router r;
    assert_int_equal(rt_router_init(&r, &loop, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "TG_TEST_UNSET_KEY"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    tg_config_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_and_omitted_go_to_engine),
        cmocka_unit_test(test_edge_and_model_id_go_to_engine),
        cmocka_unit_test(test_cloud_without_upstream_is_503),
        cmocka_unit_test(test_unknown_model_is_404),
        cmocka_unit_test(test_long_model_name_is_bounded),
        cmocka_unit_test(test_engine_not_ready_is_503),
        cmocka_unit_test(test_models_list),
        cmocka_unit_test(test_cloud_plans),
        cmocka_unit_test(test_engine_shedding_keeps_breaker_closed),
        cmocka_unit_test(test_modes_filter_plans),
        cmocka_unit_test(test_policy_plans),
        cmocka_unit_test(test_policy_defer_plans),
        cmocka_unit_test(test_missing_key_env_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
