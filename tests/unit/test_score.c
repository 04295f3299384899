/* Unit tests for router/score: features and the logistic score. */
/* tg-test-links: tgrouter */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/score.h"

static void extract1(const char *text, rt_features *f) {
    rt_msg m = {"user", text, strlen(text)};
    rt_score_input in = {.msgs = &m, .n_msgs = 1, .prompt_tokens = -1};
    rt_features_extract(&in, f);
}

static void test_names_round_trip(void **st) {
    (void)st;
    for (int i = 0; i < RT_F_COUNT; i++)
        assert_int_equal(rt_feature_by_name(rt_feature_name(i)), i);
    assert_int_equal(rt_feature_by_name("nope"), -1);
    assert_int_equal(rt_feature_by_name(NULL), -1);
    assert_string_equal(rt_feature_name(RT_F_COUNT), "unknown");
}

static void test_keywords_whole_words_case_folded(void **st) {
    (void)st;
    rt_features f;
    extract1("Hello! Please TRANSLATE this. Thanks", &f);
    assert_int_equal((int)f.raw[RT_F_GREETING], 2); /* hello, thanks */
    assert_int_equal((int)f.raw[RT_F_SIMPLE_TASK], 1);
    assert_int_equal((int)f.raw[RT_F_MATH], 0);
    /* "proven" is not "prove"; "Prove" counts three (a strong marker). */
    extract1("proven track record", &f);
    assert_int_equal((int)f.raw[RT_F_MATH], 0);
    extract1("Prove it.", &f);
    assert_int_equal((int)f.raw[RT_F_MATH], 3);
}

static void test_structure_markers(void **st) {
    (void)st;
    rt_features f;
    extract1(
        "Fix this:\n```c\nint main(void) { return 0; }\n```\n- one\n- two\n3. three\nwhy? how?",
        &f);
    /* fences 2 x 2 + braces/semicolon (3)/4 + keywords int, void, return */
    assert_true(f.raw[RT_F_CODE] >= 7.0);
    assert_int_equal((int)f.raw[RT_F_LIST_ITEMS], 3);
    assert_int_equal((int)f.raw[RT_F_QUESTIONS], 2);
    assert_int_equal((int)f.raw[RT_F_TURNS], 1);
}

static void test_tokens_script_and_blocks(void **st) {
    (void)st;
    rt_features f;
    char buf[4096];
    memset(buf, 'a', 4000);
    buf[4000] = 0;
    extract1(buf, &f);
    assert_int_equal((int)f.raw[RT_F_PROMPT_TOKENS], 1000); /* 4 bytes a token */
    assert_int_equal((int)f.raw[RT_F_LONG_DOC], 4000);
    assert_true(f.raw[RT_F_NON_LATIN] == 0);
    extract1("para one\n\npara two is longer", &f);
    assert_int_equal((int)f.raw[RT_F_LONG_DOC], 18);
    extract1("请把这句话翻译成英文", &f); /* 10 CJK characters, a translate marker */
    assert_true(f.raw[RT_F_NON_LATIN] > 0.99);
    assert_int_equal((int)f.raw[RT_F_SIMPLE_TASK], 1);
    extract1("Résumé café", &f); /* accented Latin is not a foreign script */
    assert_true(f.raw[RT_F_NON_LATIN] == 0);
}

static void test_scan_is_bounded_but_counts_everything(void **st) {
    (void)st;
    size_t n = 200000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'b', n);
    big[n] = 0;
    memcpy(big + n - 6, " prove", 6); /* past the scan budget: not seen */
    rt_features f;
    extract1(big, &f);
    assert_int_equal((int)f.raw[RT_F_PROMPT_TOKENS], 50000);
    assert_true(f.raw[RT_F_LONG_DOC] >= (double)(n - RT_SCORE_SCAN_MAX));
    assert_int_equal((int)f.raw[RT_F_MATH], 0);
    free(big);
}

static void test_request_fields(void **st) {
    (void)st;
    rt_msg m[3] = {{"system", "be brief", 8}, {"user", "hi", 2}, {"assistant", NULL, 0}};
    rt_score_input in = {.msgs = m,
                         .n_msgs = 3,
                         .max_tokens = 1023,
                         .n_tools = 3,
                         .json_schema = true,
                         .hint = 1,
                         .prompt_tokens = 77};
    rt_features f;
    rt_features_extract(&in, &f);
    assert_int_equal((int)f.raw[RT_F_PROMPT_TOKENS], 77);
    assert_int_equal((int)f.raw[RT_F_TURNS], 2);
    assert_int_equal((int)f.raw[RT_F_MAX_TOKENS], 1023);
    assert_true(fabs(f.x[RT_F_MAX_TOKENS] - 10.0 / 14.0) < 1e-9);
    assert_int_equal((int)f.raw[RT_F_TOOLS], 3);
    assert_true(fabs(f.x[RT_F_TOOLS] - 0.5) < 1e-9);
    assert_int_equal((int)f.raw[RT_F_JSON_SCHEMA], 1);
    assert_int_equal((int)f.raw[RT_F_EXPLICIT_HINT], 1);
    in.hint = -5;
    rt_features_extract(&in, &f);
    assert_int_equal((int)f.raw[RT_F_EXPLICIT_HINT], -1);
}

static void test_eval_is_logistic_with_contributions(void **st) {
    (void)st;
    rt_features f;
    memset(&f, 0, sizeof f);
    f.x[RT_F_CODE] = 0.5;
    f.x[RT_F_GREETING] = 1.0;
    rt_score_weights w;
    memset(&w, 0, sizeof w);
    w.bias = -1;
    w.w[RT_F_CODE] = 4;
    w.w[RT_F_GREETING] = -0.5;
    double c[RT_F_COUNT];
    double s = rt_score_eval(&w, &f, c);
    assert_true(fabs(c[RT_F_CODE] - 2.0) < 1e-12);
    assert_true(fabs(c[RT_F_GREETING] + 0.5) < 1e-12);
    assert_true(fabs(s - 1.0 / (1.0 + exp(-0.5))) < 1e-12);
    w.bias = 1e6; /* clamped, never NaN */
    assert_true(rt_score_eval(&w, &f, NULL) <= 1.0);
    w.bias = -1e6;
    assert_true(rt_score_eval(&w, &f, NULL) >= 0.0);
}

static void test_default_weights_order_simple_below_complex(void **st) {
    (void)st;
    rt_score_weights w;
    rt_score_weights_default(&w);
    rt_features a, b;
    extract1("hi, thanks!", &a);
    extract1("Prove rigorously that every bounded monotone sequence converges, and derive the "
             "limit of the sequence x_{n+1} = sqrt(2 + x_n).",
             &b);
    assert_true(rt_score_eval(&w, &a, NULL) < 0.5);
    assert_true(rt_score_eval(&w, &b, NULL) > 0.5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_keywords_whole_words_case_folded),
        cmocka_unit_test(test_structure_markers),
        cmocka_unit_test(test_tokens_script_and_blocks),
        cmocka_unit_test(test_scan_is_bounded_but_counts_everything),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_eval_is_logistic_with_contributions),
        cmocka_unit_test(test_default_weights_order_simple_below_complex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
