/* Unit tests for router/health: the procfs/sysfs sampler on a fake tree,
 * JSON both ways. */
/* tg-test-links: tgrouter */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "router/health.h"

static char g_root[256];

static void put(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s%s", g_root, rel);
    /* mkdir -p of the parent */
    for (char *p = path + strlen(g_root) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **st) {
    (void)st;
    snprintf(g_root, sizeof g_root, "/tmp/tg-health-XXXXXX");
    assert_non_null(mkdtemp(g_root));
    return 0;
}

static int teardown(void **st) {
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_fake_tree(void **st) {
    (void)st;
    put("/proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n"
                      "cpu1 50 0 50 400 0 0 0 0 0 0\nintr 1\n");
    put("/proc/loadavg", "3.00 2.00 1.00 1/100 123\n");
    put("/proc/meminfo", "MemTotal:        8000000 kB\nMemFree:  100 kB\n"
                         "MemAvailable:    2048000 kB\n");
    put("/sys/class/thermal/thermal_zone0/temp", "45000\n");
    put("/sys/class/thermal/thermal_zone1/temp", "91500\n");
    put("/sys/class/power_supply/BAT0/type", "Battery\n");
    put("/sys/class/power_supply/BAT0/capacity", "17\n");
    put("/sys/class/power_supply/AC/type", "Mains\n");
    put("/sys/class/power_supply/AC/online", "0\n");
    rt_health_sampler s;
    rt_health_sampler_init(&s, g_root);
    rt_health h;
    rt_health_init(&h);
    rt_health_sample_system(&s, &h);
    assert_false(h.known[RT_H_CPU_UTIL]);            /* needs two samples */
    assert_true(fabs(h.v[RT_H_LOAD1] - 1.5) < 1e-9); /* 3.0 over 2 CPUs */
    assert_true(fabs(h.v[RT_H_MEM_AVAILABLE_MB] - 2000) < 1e-9);
    assert_true(fabs(h.v[RT_H_MEM_AVAILABLE_FRAC] - 0.256) < 1e-9);
    assert_true(fabs(h.v[RT_H_THERMAL_MAX_C] - 91.5) < 1e-9);
    assert_true(h.known[RT_H_BATTERY_PCT] && h.v[RT_H_BATTERY_PCT] == 17);
    assert_true(h.known[RT_H_AC_ONLINE] && h.v[RT_H_AC_ONLINE] == 0);
    assert_false(h.known[RT_H_ENGINE_TOK_S]);
    assert_true(h.sampled_ms > 0);
    /* 900 more busy jiffies out of 1000: 90%. */
    put("/proc/stat", "cpu  550 0 550 900 0 0 0 0 0 0\ncpu0 1 0 0 0\ncpu1 1 0 0 0\n");
    rt_health_sample_system(&s, &h);
    assert_true(h.known[RT_H_CPU_UTIL]);
    assert_true(fabs(h.v[RT_H_CPU_UTIL] - 0.9) < 1e-9);
    /* Zones and supplies that vanish become unknown. */
    put("/sys/class/thermal/thermal_zone0/temp", "garbage\n");
    put("/sys/class/thermal/thermal_zone1/temp", "\n");
    put("/sys/class/power_supply/BAT0/type", "Other\n");
    put("/sys/class/power_supply/AC/online", "1\n");
    rt_health_sample_system(&s, &h);
    assert_false(h.known[RT_H_THERMAL_MAX_C]);
    assert_false(h.known[RT_H_BATTERY_PCT]);
    assert_true(h.v[RT_H_AC_ONLINE] == 1);
}

static void test_missing_root_is_all_unknown(void **st) {
    (void)st;
    rt_health_sampler s;
    rt_health_sampler_init(&s, "/nonexistent/tidegate");
    rt_health h;
    rt_health_init(&h);
    rt_health_set(&h, RT_H_ENGINE_TOK_S, 42); /* not the sampler's to clear */
    rt_health_sample_system(&s, &h);
    for (int i = 0; i < RT_H_COUNT; i++)
        if (i != RT_H_ENGINE_TOK_S) assert_false(h.known[i]);
    assert_true(h.known[RT_H_ENGINE_TOK_S]);
}

static void test_json_round_trip(void **st) {
    (void)st;
    rt_health h, g;
    rt_health_init(&h);
    rt_health_set(&h, RT_H_BATTERY_PCT, 12.5);
    rt_health_set(&h, RT_H_AC_ONLINE, 1);
    rt_health_set(&h, RT_H_CLOUD_RTT_MS, 80);
    tg_buf b = TG_BUF_INIT;
    rt_health_json(&h, &b);
    assert_non_null(strstr(b.data, "\"battery_pct\":12.5"));
    assert_non_null(strstr(b.data, "\"ac_online\":true"));
    assert_non_null(strstr(b.data, "\"cpu_util\":null"));
    char err[200];
    assert_int_equal(rt_health_parse_json(b.data, b.len, &g, err, sizeof err), 0);
    for (int i = 0; i < RT_H_COUNT; i++) {
        assert_int_equal(h.known[i], g.known[i]);
        assert_true(h.v[i] == g.v[i]);
    }
    /* Nested in a state document. */
    const char *state = "{\"policy\":{},\"health\":{\"thermal_max_c\":99}}";
    assert_int_equal(rt_health_parse_json(state, strlen(state), &g, err, sizeof err), 0);
    assert_true(g.known[RT_H_THERMAL_MAX_C] && g.v[RT_H_THERMAL_MAX_C] == 99);
    const char *bad1 = "{\"battery\":3}", *bad2 = "{\"cpu_util\":\"hot\"}", *bad3 = "[1";
    assert_int_equal(rt_health_parse_json(bad1, strlen(bad1), &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "battery: unknown health value"));
    assert_int_equal(rt_health_parse_json(bad2, strlen(bad2), &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "cpu_util: must be a number"));
    assert_int_equal(rt_health_parse_json(bad3, strlen(bad3), &g, err, sizeof err), -1);
    tg_buf_free(&b);
}

static void test_ema(void **st) {
    (void)st;
    rt_health h;
    rt_health_init(&h);
    rt_health_ema(&h, RT_H_ENGINE_TTFT_MS, 100, 0.5);
    assert_true(h.v[RT_H_ENGINE_TTFT_MS] == 100);
    rt_health_ema(&h, RT_H_ENGINE_TTFT_MS, 200, 0.5);
    assert_true(h.v[RT_H_ENGINE_TTFT_MS] == 150);
    rt_health_ema(&h, RT_H_ENGINE_TTFT_MS, NAN, 0.5);
    assert_true(h.v[RT_H_ENGINE_TTFT_MS] == 150);
    assert_int_equal(rt_health_by_name("engine_ttft_ms"), RT_H_ENGINE_TTFT_MS);
    assert_int_equal(rt_health_by_name("x"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fake_tree, setup, teardown),
        cmocka_unit_test(test_missing_root_is_all_unknown),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_ema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
