/* Unit tests for router/breaker: closed -> open -> half-open -> closed. */
/* tg-test-links: tgrouter */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router/breaker.h"

static const rt_breaker_conf k_conf = {3, 50, 10, 6, 1000};

static int g_hook_calls;
static rt_breaker_state g_last_to;
static void hook(void *user, const rt_breaker *b, rt_breaker_state from, rt_breaker_state to) {
    (void)user;
    (void)b;
    assert_int_not_equal(from, to);
    g_hook_calls++;
    g_last_to = to;
}

static void test_consecutive_failures_open(void **st) {
    (void)st;
    rt_breaker b = {0};
    b.hook = hook;
    g_hook_calls = 0;
    rt_breaker_init(&b, &k_conf);
    assert_true(rt_breaker_allow(&b, 0));
    rt_breaker_failure(&b, 0);
    rt_breaker_failure(&b, 0);
    rt_breaker_success(&b, 0); /* a success breaks the streak */
    rt_breaker_failure(&b, 0);
    rt_breaker_failure(&b, 0);
    assert_int_equal(b.state, RT_BREAKER_CLOSED);
    rt_breaker_failure(&b, 100);
    assert_int_equal(b.state, RT_BREAKER_OPEN);
    assert_int_equal(g_hook_calls, 1);
    assert_int_equal(g_last_to, RT_BREAKER_OPEN);
    /* Open: refused at once until the cooldown has passed. */
    assert_false(rt_breaker_allow(&b, 100));
    assert_false(rt_breaker_allow(&b, 1099));
    assert_int_equal(b.n_rejected, 2);
}

static void test_half_open_one_trial(void **st) {
    (void)st;
    rt_breaker b = {0};
    rt_breaker_init(&b, &k_conf);
    for (int i = 0; i < 3; i++)
        rt_breaker_failure(&b, 0);
    assert_int_equal(b.state, RT_BREAKER_OPEN);
    assert_true(rt_breaker_allow(&b, 1000)); /* the trial */
    assert_int_equal(b.state, RT_BREAKER_HALF_OPEN);
    assert_false(rt_breaker_allow(&b, 1001)); /* only one at a time */
    rt_breaker_failure(&b, 1500);             /* trial fails: open again */
    assert_int_equal(b.state, RT_BREAKER_OPEN);
    assert_false(rt_breaker_allow(&b, 2000)); /* cooldown counts from 1500 */
    assert_true(rt_breaker_allow(&b, 2500));
    rt_breaker_release(&b); /* client left: the trial is handed back */
    assert_true(rt_breaker_allow(&b, 2501));
    rt_breaker_success(&b, 2600);
    assert_int_equal(b.state, RT_BREAKER_CLOSED);
    assert_int_equal(b.consecutive, 0);
    assert_true(rt_breaker_allow(&b, 2601));
    assert_int_equal(b.n_transitions[RT_BREAKER_OPEN], 2);
    assert_int_equal(b.n_transitions[RT_BREAKER_HALF_OPEN], 2);
    assert_int_equal(b.n_transitions[RT_BREAKER_CLOSED], 1);
}

static void test_failure_rate_opens(void **st) {
    (void)st;
    rt_breaker b = {0};
    rt_breaker_init(&b, &k_conf);
    /* Alternating: never 3 in a row, but half of the outcomes fail. */
    for (int i = 0; i < 2; i++) {
        rt_breaker_success(&b, 0);
        rt_breaker_failure(&b, 0);
        assert_int_equal(b.state, RT_BREAKER_CLOSED); /* under min_requests */
    }
    rt_breaker_success(&b, 0);
    rt_breaker_failure(&b, 0); /* 6 outcomes, 3 failed: 50% */
    assert_int_equal(b.state, RT_BREAKER_OPEN);
}

static void test_window_forgets(void **st) {
    (void)st;
    rt_breaker b = {0};
    rt_breaker_conf c = {100, 50, 4, 4, 1000};
    rt_breaker_init(&b, &c);
    rt_breaker_failure(&b, 0);
    for (int i = 0; i < 4; i++)
        rt_breaker_success(&b, 0);
    assert_true(rt_breaker_failure_rate(&b) == 0.0);
    rt_breaker_failure(&b, 0);
    assert_true(rt_breaker_failure_rate(&b) == 0.25);
    assert_string_equal(rt_breaker_state_name(RT_BREAKER_HALF_OPEN), "half_open");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consecutive_failures_open),
        cmocka_unit_test(test_half_open_one_trial),
        cmocka_unit_test(test_failure_rate_opens),
        cmocka_unit_test(test_window_forgets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
