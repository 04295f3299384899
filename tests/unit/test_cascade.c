/* Unit tests for router/cascade: the confidence verdict. */
/* tg-test-links: tgrouter */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "router/cascade.h"

static rt_cascade cfg(int n, bool lp, double min_lp, bool ent, double max_ent) {
    rt_cascade c = {true, n, lp, min_lp, ent, max_ent};
    return c;
}

static void test_confident_steps_are_kept(void **st) {
    (void)st;
    rt_cascade c = cfg(4, true, -1.0, true, 1.0);
    rt_cascade_acc a = {0};
    float top[3] = {logf(0.97f), logf(0.02f), logf(0.01f)};
    for (int i = 0; i < 3; i++) {
        rt_cascade_add(&a, top[0], top, 3);
        assert_int_equal(rt_cascade_judge(&c, &a, false), RT_CASCADE_PENDING);
    }
    rt_cascade_add(&a, top[0], top, 3);
    assert_int_equal(rt_cascade_judge(&c, &a, false), RT_CASCADE_KEEP);
    assert_true(fabs(rt_cascade_mean_logprob(&a) - log(0.97)) < 1e-6);
    /* -(0.97 ln 0.97 + 0.02 ln 0.02 + 0.01 ln 0.01), no remainder */
    double h = -(0.97 * log(0.97) + 0.02 * log(0.02) + 0.01 * log(0.01));
    assert_true(fabs(rt_cascade_mean_entropy(&a) - h) < 1e-5);
}

static void test_flat_steps_escalate(void **st) {
    (void)st;
    /* A uniform distribution over 65536 tokens: logprob -11.09 each, top 20
     * hold almost nothing, so the remainder bucket dominates the entropy. */
    float lp = -logf(65536.0f), top[20];
    for (int i = 0; i < 20; i++)
        top[i] = lp;
    rt_cascade_acc a = {0};
    for (int i = 0; i < 8; i++)
        rt_cascade_add(&a, lp, top, 20);
    rt_cascade only_lp = cfg(8, true, -2.0, false, 0);
    rt_cascade only_ent = cfg(8, false, 0, true, 0.001);
    assert_int_equal(rt_cascade_judge(&only_lp, &a, false), RT_CASCADE_ESCALATE);
    assert_int_equal(rt_cascade_judge(&only_ent, &a, false), RT_CASCADE_ESCALATE);
    assert_true(rt_cascade_mean_entropy(&a) > 0.0);
    /* Entropy alone cannot fire without alternatives. */
    rt_cascade_acc b = {0};
    rt_cascade_add(&b, lp, NULL, 0);
    assert_int_equal(rt_cascade_judge(&only_ent, &b, true), RT_CASCADE_KEEP);
    assert_int_equal(rt_cascade_judge(&only_lp, &b, true), RT_CASCADE_ESCALATE);
}

static void test_short_answers_and_disabled(void **st) {
    (void)st;
    rt_cascade c = cfg(16, true, -1.0, false, 0);
    rt_cascade_acc a = {0};
    assert_int_equal(rt_cascade_judge(&c, &a, true), RT_CASCADE_KEEP); /* empty answer */
    rt_cascade_add(&a, -0.1f, NULL, 0);
    assert_int_equal(rt_cascade_judge(&c, &a, false), RT_CASCADE_PENDING);
    assert_int_equal(rt_cascade_judge(&c, &a, true), RT_CASCADE_KEEP);
    rt_cascade_add(&a, -INFINITY, NULL, 0); /* counted as -100 */
    assert_int_equal(rt_cascade_judge(&c, &a, true), RT_CASCADE_ESCALATE);
    rt_cascade off = {0};
    assert_int_equal(rt_cascade_judge(&off, &a, false), RT_CASCADE_KEEP);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confident_steps_are_kept),
        cmocka_unit_test(test_flat_steps_escalate),
        cmocka_unit_test(test_short_answers_and_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
