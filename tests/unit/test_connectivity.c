/* Unit tests for router/connectivity: derived link state with hysteresis,
 * forced modes. */
/* tg-test-links: tgrouter */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router/connectivity.h"

static void test_hysteresis(void **st) {
    (void)st;
    rt_conn c = {0};
    rt_conn_init(&c, RT_CONN_AUTO, 3, 2);
    assert_int_equal(c.link, RT_LINK_ONLINE);
    /* One lost packet: degraded, never offline. */
    rt_conn_observe(&c, false, true, 1);
    assert_int_equal(c.link, RT_LINK_DEGRADED);
    assert_true(rt_conn_cloud_allowed(&c));
    rt_conn_observe(&c, true, false, 2);
    rt_conn_observe(&c, false, true, 3);
    rt_conn_observe(&c, false, true, 4);
    assert_int_equal(c.link, RT_LINK_DEGRADED); /* 2 in a row < 3 */
    rt_conn_observe(&c, false, true, 5);
    assert_int_equal(c.link, RT_LINK_OFFLINE);
    assert_false(rt_conn_cloud_allowed(&c));
    assert_true(rt_conn_wants_probe(&c, 6, 100000));
    /* One success is not enough to come back. */
    rt_conn_observe(&c, true, false, 6);
    assert_int_equal(c.link, RT_LINK_OFFLINE);
    rt_conn_observe(&c, true, false, 7);
    assert_int_equal(c.link, RT_LINK_ONLINE);
    assert_string_equal(rt_conn_state_name(&c), "online");
}

static void test_http_errors_are_not_network(void **st) {
    (void)st;
    rt_conn c = {0};
    rt_conn_init(&c, RT_CONN_AUTO, 2, 1);
    for (int i = 0; i < 10; i++)
        rt_conn_observe(&c, false, false, (uint64_t)i); /* e.g. 503s */
    assert_int_equal(c.link, RT_LINK_ONLINE);
}

static void test_forced_modes(void **st) {
    (void)st;
    rt_conn c = {0};
    rt_conn_init(&c, RT_CONN_AUTO, 3, 2);
    rt_conn_mode m;
    assert_int_equal(rt_conn_mode_parse("edge-only", &m), 0);
    rt_conn_set_mode(&c, m, 1);
    assert_false(rt_conn_cloud_allowed(&c));
    assert_true(rt_conn_edge_allowed(&c));
    assert_false(rt_conn_wants_probe(&c, 1000, 0));
    assert_string_equal(rt_conn_state_name(&c), "edge-only");
    assert_int_equal(rt_conn_mode_parse("cloud-only", &m), 0);
    rt_conn_set_mode(&c, m, 2);
    assert_true(rt_conn_cloud_allowed(&c));
    assert_false(rt_conn_edge_allowed(&c));
    assert_int_equal(rt_conn_mode_parse("offline", &m), 0);
    rt_conn_set_mode(&c, m, 3);
    assert_false(rt_conn_cloud_allowed(&c));
    assert_int_equal(rt_conn_mode_parse("sideways", &m), -1);
    assert_int_equal(rt_conn_mode_parse(NULL, &m), -1);
    /* Idle online link: probed after idle_ms without traffic. */
    rt_conn_set_mode(&c, RT_CONN_AUTO, 4);
    rt_conn_observe(&c, true, false, 100);
    assert_false(rt_conn_wants_probe(&c, 150, 100));
    assert_true(rt_conn_wants_probe(&c, 200, 100));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_http_errors_are_not_network),
        cmocka_unit_test(test_forced_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
