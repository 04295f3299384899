/* Unit tests for router/policy: loading (errors with file:line:col),
 * evaluation, the writer, the shipped policies and the held-out agreement of
 * the shipped hybrid.yaml. */
/* tg-test-links: tgrouter */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/policy.h"
#include "router/reqfeat.h"
#include "router/score_fit.h"

#define POLICIES TG_FIXTURES "/../../policies"
#define DATA     TG_FIXTURES "/../data/routing"

static rt_policy *load(const char *y, char *err, size_t cap) {
    return rt_policy_load_mem(y, strlen(y), "p.yaml", err, cap);
}

static void expect_err(const char *y, const char *want) {
    char err[4096];
    rt_policy *p = load(y, err, sizeof err);
    if (p || !strstr(err, want)) fprintf(stderr, "want '%s'\ngot  '%s'\n", want, err);
    assert_null(p);
    assert_non_null(strstr(err, want));
}

static const char k_good[] =
    "version: 1\n"
    "score:\n"
    "  bias: -1\n"
    "  weights: {code: 4}\n"
    "rules:\n"
    "  - name: off\n"
    "    when: {mode: offline}\n"
    "    target: edge\n"
    "  - name: hot\n"
    "    reason: too hot\n"
    "    when:\n"
    "      any:\n"
    "        - health: {thermal_max_c: {gte: 80}}\n"
    "        - health: {battery_pct: {lt: 20}, ac_online: false}\n"
    "    target: cloud:main\n"
    "    fallbacks: [edge]\n"
    "    timeouts_ms: {cloud:main: 5000}\n"
    "    retry_budget: 2\n"
    "    mid_stream: error\n"
    "  - name: big\n"
    "    when: {features: {prompt_tokens: {gt: 1000}}, score: {lt: 0.99}}\n"
    "    target: cloud\n"
    "  - name: complex\n"
    "    when: {score: {gte: 0.5}}\n"
    "    target: cloud\n"
    "    fallbacks: [edge]\n"
    "  - name: default\n"
    "    target: edge\n"
    "    fallbacks: [cloud]\n"
    "    cascade: {tokens: 8, min_mean_logprob: -1.5}\n";

static void feats(const char *text, int tokens, rt_features *f) {
    rt_msg m = {"user", text, strlen(text)};
    rt_score_input in = {.msgs = &m, .n_msgs = 1, .prompt_tokens = tokens};
    rt_features_extract(&in, f);
}

static void test_decide_walks_rules_in_order(void **st) {
    (void)st;
    char err[4096];
    rt_policy *p = load(k_good, err, sizeof err);
    if (!p) fprintf(stderr, "%s\n", err);
    assert_non_null(p);
    assert_int_equal(rt_policy_rule_count(p), 5);
    rt_health h;
    rt_health_init(&h);
    rt_features simple, code, big;
    feats("hello", -1, &simple);
    feats("```\nint x; int y; return x;\n```", -1, &code);
    feats("hello", 5000, &big);
    rt_decision d;
    rt_policy_decide(p, &simple, &h, RT_PMODE_OFFLINE, &d);
    assert_string_equal(d.rule, "off");
    assert_int_equal(d.n_targets, 1);
    rt_policy_decide(p, &simple, &h, RT_PMODE_ONLINE, &d);
    assert_string_equal(d.rule, "default");
    assert_true(d.cascade.enabled);
    assert_int_equal(d.cascade.tokens, 8);
    assert_true(d.cascade.has_logprob && !d.cascade.has_entropy);
    rt_policy_decide(p, &code, &h, RT_PMODE_ONLINE, &d);
    assert_string_equal(d.rule, "complex");
    assert_true(d.score >= 0.5);
    assert_string_equal(d.targets[0].name, "cloud");
    rt_policy_decide(p, &big, &h, RT_PMODE_ONLINE, &d);
    assert_string_equal(d.rule, "big");
    /* Health: unknown values never match; battery needs both conditions. */
    rt_health_set(&h, RT_H_BATTERY_PCT, 10);
    rt_policy_decide(p, &simple, &h, RT_PMODE_ONLINE, &d);
    assert_string_equal(d.rule, "default");
    rt_health_set(&h, RT_H_AC_ONLINE, 0);
    rt_policy_decide(p, &simple, &h, RT_PMODE_ONLINE, &d);
    assert_string_equal(d.rule, "hot");
    assert_string_equal(d.targets[0].name, "cloud:main");
    assert_int_equal(d.targets[0].timeout_ms, 5000);
    assert_int_equal(d.retry_budget, 2);
    assert_int_equal(d.mid_stream, RT_PMID_ERROR);
    char reason[200];
    rt_decision_reason(&d, reason, sizeof reason);
    assert_non_null(strstr(reason, "rule=hot; score="));
    assert_non_null(strstr(reason, "-> cloud:main; too hot"));
    rt_health_set(&h, RT_H_AC_ONLINE, 1);
    rt_health_set(&h, RT_H_THERMAL_MAX_C, 80);
    rt_policy_decide(p, &simple, &h, RT_PMODE_ONLINE, &d);
    assert_string_equal(d.rule, "hot");
    rt_policy_free(p);
}

static void test_errors_have_locations(void **st) {
    (void)st;
    expect_err("version: 1\nrulez: []\n", "p.yaml:2:1: rulez: unknown key");
    expect_err("rules:\n  - name: a\n    target: moon\n",
               "p.yaml:3:13: rules[0].target: unknown target 'moon'");
    expect_err("rules:\n  - name: a\n    when: {score: {gte: 0.5}}\n    target: edge\n",
               "the last rule must have no `when`");
    expect_err("rules:\n  - name: a\n    target: edge\n    colour: red\n",
               "p.yaml:4:5: rules[0].colour: unknown key");
    expect_err("rules:\n  - name: a\n    when: {health: {battery: {lt: 3}}}\n    target: edge\n"
               "  - {name: b, target: edge}\n",
               "p.yaml:3:21: rules[0].when.health.battery: unknown health value");
    expect_err("rules:\n  - {name: a, target: edge, cascade: {tokens: 4, min_mean_logprob: -1}}\n",
               "a cascade starts on the edge: target edge with a cloud fallback");
    expect_err("rules:\n  - {name: a, target: edge, retry_budget: x}\n",
               "rules[0].retry_budget: expected a number, got 'x'");
    expect_err("score: {weights: {vibes: 1}}\nrules: [{name: a, target: edge}]\n",
               "p.yaml:1:19: score.weights.vibes: unknown feature 'vibes'");
    expect_err("rules: [{name: a, target: edge}, {name: a, target: edge}]\n",
               "rule name 'a' used twice");
    expect_err("rules: [{name: a, target: edge, fallbacks: [edge]}]\n", "listed twice");
    expect_err("rules: [{name: a, target: edge}]\nrules: []\n", "duplicate key");
    expect_err("rules: [{name: a, target: edge]\n", "p.yaml:1:");
    expect_err("rules: [{name: a, target: edge}]\n---\nx: 1\n", "more than one YAML document");
    expect_err("version: 2\nrules: [{name: a, target: edge}]\n", "unsupported version 2");
    expect_err("", "empty policy");
    /* Depth: any inside any inside ... */
    expect_err("rules:\n  - name: a\n    when: {any: [{any: [{any: [{any: [{any: [{score: {lt: "
               "1}}]}]}]}]}]}\n    target: edge\n  - {name: b, target: edge}\n",
               "nested too deep");
}

static void test_shipped_policies_load(void **st) {
    (void)st;
    const char *names[] = {"hybrid", "cascade", "edge-first", "cloud-first", "offline-only"};
    for (size_t i = 0; i < 5; i++) {
        char path[512], err[4096];
        snprintf(path, sizeof path, "%s/%s.yaml", POLICIES, names[i]);
        rt_policy *p = rt_policy_load_file(path, err, sizeof err);
        if (!p) fprintf(stderr, "%s\n", err);
        assert_non_null(p);
        rt_policy_free(p);
    }
    rt_policy *b = rt_policy_builtin_hybrid();
    assert_non_null(b);
    rt_policy_free(b);
}

static void test_writer_round_trips(void **st) {
    (void)st;
    char err[4096];
    rt_policy *p = load(k_good, err, sizeof err);
    assert_non_null(p);
    tg_buf y = TG_BUF_INIT;
    rt_policy_write_yaml(p, rt_policy_weights(p), "a comment\nsecond line", &y);
    rt_policy *q = rt_policy_load_mem(y.data, y.len, "w.yaml", err, sizeof err);
    if (!q) fprintf(stderr, "%s\n---\n%s\n", err, y.data);
    assert_non_null(q);
    /* Same decisions on a grid of inputs. */
    const char *texts[] = {"hi", "```\nint x;\n```", "Prove it rigorously."};
    for (int t = 0; t < 3; t++)
        for (int mode = 0; mode < RT_PMODE_COUNT; mode++)
            for (int hot = 0; hot < 2; hot++) {
                rt_features f;
                feats(texts[t], t == 0 && hot ? 2000 : -1, &f);
                rt_health h;
                rt_health_init(&h);
                if (hot) rt_health_set(&h, RT_H_THERMAL_MAX_C, 90);
                rt_decision a, b;
                rt_policy_decide(p, &f, &h, (rt_pmode)mode, &a);
                rt_policy_decide(q, &f, &h, (rt_pmode)mode, &b);
                assert_string_equal(a.rule, b.rule);
                assert_true(a.score == b.score);
                assert_int_equal(a.n_targets, b.n_targets);
                assert_int_equal(a.targets[0].timeout_ms, b.targets[0].timeout_ms);
                assert_int_equal(a.cascade.tokens, b.cascade.tokens);
            }
    tg_buf_free(&y);
    rt_policy_free(p);
    rt_policy_free(q);
}

/* defer and on_client_gone: parsed, decided, written back; misuse is an
 * error with its location. */
static void test_defer_and_client_gone(void **st) {
    (void)st;
    char err[4096];
    const char *y = "rules:\n"
                    "  - name: private\n"
                    "    when: {features: {explicit_hint: {eq: 1}}}\n"
                    "    target: cloud:main\n"
                    "    fallbacks: [cloud]\n"
                    "    defer: {max_wait_s: 30, keepalive_s: 2}\n"
                    "  - name: quick\n"
                    "    when: {features: {explicit_hint: {eq: -1}}}\n"
                    "    target: cloud\n"
                    "    defer: {}\n"
                    "    on_client_gone: cancel\n"
                    "  - name: default\n"
                    "    target: edge\n"
                    "    on_client_gone: finish\n";
    rt_policy *p = load(y, err, sizeof err);
    if (!p) fprintf(stderr, "%s\n", err);
    assert_non_null(p);
    rt_features f;
    feats("hi", -1, &f);
    rt_decision d;
    f.raw[RT_F_EXPLICIT_HINT] = 1;
    rt_policy_decide(p, &f, NULL, RT_PMODE_OFFLINE, &d);
    assert_string_equal(d.rule, "private");
    assert_true(d.defer.enabled);
    assert_int_equal(d.defer.max_wait_ms, 30000);
    assert_int_equal(d.defer.keepalive_ms, 2000);
    assert_int_equal(d.on_client_gone, RT_PGONE_AUTO);
    f.raw[RT_F_EXPLICIT_HINT] = -1;
    rt_policy_decide(p, &f, NULL, RT_PMODE_ONLINE, &d);
    assert_true(d.defer.enabled); /* `defer: {}`: the defaults */
    assert_int_equal(d.defer.max_wait_ms, RT_DEFER_MAX_WAIT_MS);
    assert_int_equal(d.defer.keepalive_ms, RT_DEFER_KEEPALIVE_MS);
    assert_int_equal(d.on_client_gone, RT_PGONE_CANCEL);
    f.raw[RT_F_EXPLICIT_HINT] = 0;
    rt_policy_decide(p, &f, NULL, RT_PMODE_ONLINE, &d);
    assert_false(d.defer.enabled);
    assert_int_equal(d.on_client_gone, RT_PGONE_FINISH);
    /* The writer keeps both. */
    tg_buf w = TG_BUF_INIT;
    rt_policy_write_yaml(p, rt_policy_weights(p), NULL, &w);
    rt_policy *q = rt_policy_load_mem(w.data, w.len, "w.yaml", err, sizeof err);
    if (!q) fprintf(stderr, "%s\n---\n%s\n", err, w.data);
    assert_non_null(q);
    f.raw[RT_F_EXPLICIT_HINT] = 1;
    rt_policy_decide(q, &f, NULL, RT_PMODE_OFFLINE, &d);
    assert_int_equal(d.defer.max_wait_ms, 30000);
    f.raw[RT_F_EXPLICIT_HINT] = -1;
    rt_policy_decide(q, &f, NULL, RT_PMODE_OFFLINE, &d);
    assert_int_equal(d.on_client_gone, RT_PGONE_CANCEL);
    tg_buf_free(&w);
    rt_policy_free(q);
    rt_policy_free(p);

    expect_err("rules:\n  - name: a\n    target: cloud\n    fallbacks: [edge]\n"
               "    defer: {max_wait_s: 5}\n",
               "p.yaml:5:12: rules[0].defer: defer is for cloud-only rules");
    expect_err("rules:\n  - name: a\n    target: edge\n    defer: {}\n", "cloud-only");
    expect_err("rules:\n  - name: a\n    target: cloud\n    defer: {max_wait_s: 0}\n",
               "p.yaml:4:25: rules[0].defer.max_wait_s: expected seconds in 0.1..86400");
    expect_err("rules:\n  - name: a\n    target: cloud\n    defer: {keepalive_s: 301}\n",
               "rules[0].defer.keepalive_s: expected seconds in 0.1..300");
    expect_err("rules:\n  - name: a\n    target: cloud\n    defer: {wait: 3}\n",
               "p.yaml:4:13: rules[0].defer.wait: unknown key");
    expect_err("rules:\n  - name: a\n    target: cloud\n    defer: yes\n",
               "rules[0].defer: expected a mapping");
    expect_err("rules:\n  - name: a\n    target: cloud\n    on_client_gone: later\n",
               "p.yaml:4:21: rules[0].on_client_gone: expected cancel or finish");
}

/* The acceptance figure: the shipped weights on the held-out prompts. */
static void test_hybrid_heldout_agreement(void **st) {
    (void)st;
    char err[4096];
    rt_policy *p = rt_policy_load_file(POLICIES "/hybrid.yaml", err, sizeof err);
    assert_non_null(p);
    FILE *f = fopen(DATA "/heldout.jsonl", "r");
    assert_non_null(f);
    static char line[1 << 16];
    size_t n = 0, agree = 0, edge = 0;
    while (fgets(line, sizeof line, f)) {
        json_object *o = json_tokener_parse(line);
        assert_non_null(o);
        json_object *lab;
        assert_true(json_object_object_get_ex(o, "label", &lab));
        int cloud = !strcmp(json_object_get_string(lab), "cloud");
        rt_features ft;
        rt_reqfeat_extract(o, 0, &ft);
        rt_health h;
        rt_health_init(&h);
        rt_decision d;
        rt_policy_decide(p, &ft, &h, RT_PMODE_ONLINE, &d);
        int routed_cloud = d.targets[0].route == RT_ROUTE_CLOUD;
        agree += routed_cloud == cloud;
        edge += !routed_cloud;
        n++;
        json_object_put(o);
    }
    fclose(f);
    assert_true(n >= 90);
    double a = (double)agree / (double)n;
    fprintf(stderr, "held-out: n=%zu agreement=%.3f edge_share=%.3f\n", n, a,
            (double)edge / (double)n);
    assert_true(a >= 0.9);
    rt_policy_free(p);
}

static void test_fit_separates_a_toy_set(void **st) {
    (void)st;
    rt_features X[40];
    int y[40];
    memset(X, 0, sizeof X);
    for (int i = 0; i < 40; i++) {
        y[i] = i % 2;
        X[i].x[RT_F_CODE] = y[i] ? 1.0 + 0.01 * i : 0.01 * i;
        X[i].x[RT_F_GREETING] = 0.3; /* constant: no information */
    }
    rt_score_weights w;
    assert_int_equal(rt_score_fit(X, y, 40, 0.1, &w), 0);
    assert_true(w.w[RT_F_CODE] > 1.0);
    rt_fit_report r;
    rt_score_judge(&w, X, y, 40, 0.5, &r);
    assert_true(r.agreement == 1.0);
    assert_true(r.edge_share == 0.5);
    assert_int_equal(rt_score_cv(X, y, 40, 5, 0.1, 0.5, &r), 0);
    assert_true(r.agreement == 1.0);
    assert_int_equal(r.n, 40);
    assert_int_equal(rt_score_fit(X, y, 0, 0.1, &w), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_walks_rules_in_order),
        cmocka_unit_test(test_errors_have_locations),
        cmocka_unit_test(test_shipped_policies_load),
        cmocka_unit_test(test_writer_round_trips),
        cmocka_unit_test(test_defer_and_client_gone),
        cmocka_unit_test(test_hybrid_heldout_agreement),
        cmocka_unit_test(test_fit_separates_a_toy_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
