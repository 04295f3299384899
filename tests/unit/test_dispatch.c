/* Unit tests for router/dispatch: model name -> plan. */
/* tg-test-links: tgrouter */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router/dispatch.h"

static const rt_dispatch_ctx k_ready = {"lfm2-tiny-q4_0", true, false};

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
    rt_dispatch_ctx down = {"lfm2-tiny-q4_0", false, false};
    rt_plan p;
    plan_for(&down, "tidegate/auto", &p, -1);
    assert_int_equal(p.err.status, 503);
    assert_string_equal(p.err.code, "engine_unavailable");
    rt_dispatch_ctx none = {NULL, false, false};
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
    rt_dispatch_ctx cloud = {"m", true, true};
    n = rt_dispatch_models(&cloud, ids, owners, 8);
    assert_int_equal(n, 4);
    assert_string_equal(ids[3], "tidegate/cloud");
    assert_string_equal(rt_target_kind_name(RT_TARGET_CLOUD), "cloud");
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
