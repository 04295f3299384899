/* tg-test-links: tggateway */
/* Metrics registry: exact Prometheus text for a small registry, label
 * escaping, cumulative buckets, callback gauges and misuse rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/api/api_routes.h"
#include "gateway/metrics.h"

static double g_depth = 3;
static double read_depth(void *user) {
    return *(double *)user;
}

static void test_exact_text(void **st) {
    (void)st;
    tg_metrics *reg = tg_metrics_new();
    tg_metric *req = tg_metrics_counter(reg, "tidegate_http_requests_total",
                                        "HTTP requests by route and status.", "route,status");
    const double b[] = {0.1, 0.5, 1};
    tg_metric *dur = tg_metrics_histogram(reg, "tidegate_request_duration_seconds", "Request time.",
                                          "route", b, 3);
    tg_metric *q = tg_metrics_gauge_fn(reg, "tidegate_engine_queue_depth", "Waiting jobs.",
                                       read_depth, &g_depth);
    tg_metric *g = tg_metrics_gauge(reg, "tidegate_mode", "Mode.", NULL);
    assert_non_null(req);
    assert_non_null(dur);
    assert_non_null(q);
    assert_non_null(g);
    tg_metrics_add(req, 1, "/v1/chat/completions", "200");
    tg_metrics_add(req, 1, "/healthz", "200");
    tg_metrics_add(req, 2, "/v1/chat/completions", "200");
    tg_metrics_add(req, 1, "/v1/chat/completions", "429");
    tg_metrics_add(req, -1, "/healthz", "200"); /* counters never decrease: ignored */
    tg_metrics_observe(dur, 0.05, "/v1/chat/completions");
    tg_metrics_observe(dur, 0.1, "/v1/chat/completions"); /* le is inclusive */
    tg_metrics_observe(dur, 0.7, "/v1/chat/completions");
    tg_metrics_observe(dur, 3, "/v1/chat/completions");
    tg_metrics_set(g, -2.5);
    tg_buf out = TG_BUF_INIT;
    tg_metrics_render(reg, &out);
    const char *want =
        "# HELP tidegate_http_requests_total HTTP requests by route and status.\n"
        "# TYPE tidegate_http_requests_total counter\n"
        "tidegate_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 3\n"
        "tidegate_http_requests_total{route=\"/healthz\",status=\"200\"} 1\n"
        "tidegate_http_requests_total{route=\"/v1/chat/completions\",status=\"429\"} 1\n"
        "# HELP tidegate_request_duration_seconds Request time.\n"
        "# TYPE tidegate_request_duration_seconds histogram\n"
        "tidegate_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.1\"} 2\n"
        "tidegate_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.5\"} 2\n"
        "tidegate_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"1\"} 3\n"
        "tidegate_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"+Inf\"} 4\n"
        "tidegate_request_duration_seconds_sum{route=\"/v1/chat/completions\"} 3.85\n"
        "tidegate_request_duration_seconds_count{route=\"/v1/chat/completions\"} 4\n"
        "# HELP tidegate_engine_queue_depth Waiting jobs.\n"
        "# TYPE tidegate_engine_queue_depth gauge\n"
        "tidegate_engine_queue_depth 3\n"
        "# HELP tidegate_mode Mode.\n"
        "# TYPE tidegate_mode gauge\n"
        "tidegate_mode -2.5\n";
    assert_string_equal(out.data, want);
    /* Callback gauges are read at render time. */
    g_depth = 7;
    tg_buf_clear(&out);
    tg_metrics_render(reg, &out);
    assert_non_null(strstr(out.data, "\ntidegate_engine_queue_depth 7\n"));
    tg_buf_free(&out);
    tg_metrics_free(reg);
}

static void test_escaping(void **st) {
    (void)st;
    tg_metrics *reg = tg_metrics_new();
    tg_metric *c = tg_metrics_counter(reg, "x_total", "Help with \\ and\nnewline \"q\".", "v");
    tg_metrics_add(c, 1, "a\"b\\c\nd");
    tg_metrics_add(c, 0.5, (const char *)NULL);
    tg_buf out = TG_BUF_INIT;
    tg_metrics_render(reg, &out);
    assert_string_equal(out.data, "# HELP x_total Help with \\\\ and\\nnewline \"q\".\n"
                                  "# TYPE x_total counter\n"
                                  "x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"
                                  "x_total{v=\"\"} 0.5\n");
    tg_buf_free(&out);
    tg_metrics_free(reg);
}

static void test_unlabelled_histogram_and_std(void **st) {
    (void)st;
    tg_metrics *reg = tg_metrics_new();
    tg_metrics_std s;
    tg_metrics_std_init(&s, reg);
    assert_non_null(s.http_requests);
    assert_non_null(s.request_duration);
    assert_non_null(s.ttft);
    assert_non_null(s.tokens);
    tg_metrics_std_request(&s, "/v1/models", 200, 0.002);
    tg_metrics_std_tokens(&s, 12, 30);
    tg_metrics_std_tokens(&s, 3, 0);
    tg_metrics_observe(s.ttft, 0.3);
    tg_buf out = TG_BUF_INIT;
    tg_metrics_render(reg, &out);
    assert_non_null(
        strstr(out.data, "tidegate_http_requests_total{route=\"/v1/models\",status=\"200\"} 1\n"));
    assert_non_null(
        strstr(out.data,
               "tidegate_request_duration_seconds_bucket{route=\"/v1/models\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.data, "tidegate_ttft_seconds_bucket{le=\"0.25\"} 0\n"
                                     "tidegate_ttft_seconds_bucket{le=\"0.5\"} 1\n"));
    assert_non_null(strstr(out.data, "tidegate_ttft_seconds_bucket{le=\"+Inf\"} 1\n"
                                     "tidegate_ttft_seconds_sum 0.3\n"
                                     "tidegate_ttft_seconds_count 1\n"));
    assert_non_null(strstr(out.data, "tidegate_tokens_total{direction=\"in\"} 15\n"
                                     "tidegate_tokens_total{direction=\"out\"} 30\n"));
    tg_buf_free(&out);
    tg_metrics_free(reg);
}

/* A callback counter (engine-owned totals such as the prefix cache's)
 * renders as a counter with the value read at render time. */
static void test_counter_fn(void **st) {
    (void)st;
    tg_metrics *reg = tg_metrics_new();
    double hits = 7;
    assert_null(tg_metrics_counter_fn(reg, "x_total", "h", NULL, NULL));
    assert_non_null(tg_metrics_counter_fn(reg, "tidegate_engine_prefix_cache_hits_total",
                                          "Jobs restored.", read_depth, &hits));
    assert_null(tg_metrics_counter_fn(reg, "tidegate_engine_prefix_cache_hits_total", "dup",
                                      read_depth, &hits));
    hits = 12;
    tg_buf out = TG_BUF_INIT;
    tg_metrics_render(reg, &out);
    assert_string_equal(out.data, "# HELP tidegate_engine_prefix_cache_hits_total Jobs restored.\n"
                                  "# TYPE tidegate_engine_prefix_cache_hits_total counter\n"
                                  "tidegate_engine_prefix_cache_hits_total 12\n");
    tg_buf_free(&out);
    tg_metrics_free(reg);
}

static void test_misuse(void **st) {
    (void)st;
    tg_metrics *reg = tg_metrics_new();
    assert_non_null(tg_metrics_counter(reg, "a_total", "h", NULL));
    assert_null(tg_metrics_counter(reg, "a_total", "dup", NULL));
    assert_null(tg_metrics_counter(reg, "9bad", "h", NULL));
    assert_null(tg_metrics_counter(reg, "b", "h", "ok,bad-name"));
    assert_null(tg_metrics_counter(reg, "c", "h", "__reserved"));
    assert_null(tg_metrics_counter(reg, "d", "h", "a,b,c,d,e"));
    const double bad[] = {1, 1};
    assert_null(tg_metrics_histogram(reg, "h1", "h", NULL, bad, 2));
    const double ok[] = {1};
    assert_null(tg_metrics_histogram(reg, "h2", "h", "le", ok, 1));
    /* NULL handles are no-ops, so unchecked registrations cannot crash. */
    tg_metrics_add(NULL, 1);
    tg_metrics_observe(NULL, 1);
    tg_metrics_set(NULL, 1);
    /* Cardinality is bounded. */
    tg_metric *c = tg_metrics_counter(reg, "many_total", "h", "k");
    char v[16];
    for (int i = 0; i < TG_METRICS_MAX_SERIES + 10; i++) {
        snprintf(v, sizeof v, "%d", i);
        tg_metrics_add(c, 1, v);
    }
    tg_buf out = TG_BUF_INIT;
    tg_metrics_render(reg, &out);
    size_t lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    assert_int_equal(lines, 2 + 2 + TG_METRICS_MAX_SERIES); /* a_total has no series */
    tg_buf_free(&out);
    tg_metrics_free(reg);
}

/* The gateway's on_response hook, fed finished exchanges the way the HTTP
 * server reports them: route labels from the route table, "-" for answers
 * the server made itself, 499 for a client gone, tokens of abandoned
 * requests. Exact exposition lines. */
static void test_on_response_hook(void **st) {
    (void)st;
    tg_api api = {0};
    api.metrics = tg_metrics_new();
    tg_metrics_std_init(&api.std, api.metrics);
    tg_http_request chat = {.method = "POST", .path = "/v1/chat/completions", .body = ""};
    tg_http_request adm = {
        .method = "GET", .path = "/admin/state", .body = "", .listener = TG_API_LISTENER_ADMIN};
    tg_http_request wrong = {.method = "DELETE", .path = "/v1/models", .body = ""};
    tg_http_request unparsed = {.method = "-", .path = "-", .body = ""};
    /* 413 on the chat path, answered by the server: not a chat request */
    tg_http_done d = {.req = &chat, .status = 413, .ms = 2};
    tg_api_on_response(&api, &d);
    d = (tg_http_done){.req = &unparsed, .status = 431, .ms = 1};
    tg_api_on_response(&api, &d);
    d = (tg_http_done){.req = &unparsed, .status = 431, .ms = 1};
    tg_api_on_response(&api, &d);
    /* handled chats: one finished after 7 in / 3 out, one whose client left
     * mid-stream after 9 in / 5 out: both count what they used */
    d = (tg_http_done){
        .req = &chat, .status = 200, .handled = true, .tokens_in = 7, .tokens_out = 3, .ms = 30};
    tg_api_on_response(&api, &d);
    d = (tg_http_done){.req = &chat,
                       .status = 200,
                       .handled = true,
                       .aborted = true,
                       .abort_notified = true,
                       .tokens_in = 9,
                       .tokens_out = 5,
                       .ms = 40};
    tg_api_on_response(&api, &d);
    d = (tg_http_done){.req = &adm, .status = 404, .handled = true};
    tg_api_on_response(&api, &d);
    d = (tg_http_done){.req = &wrong, .status = 405, .handled = true};
    tg_api_on_response(&api, &d);
    tg_buf out = TG_BUF_INIT;
    tg_metrics_render(api.metrics, &out);
    const char *want_lines[] = {
        "tidegate_http_requests_total{route=\"-\",status=\"413\"} 1\n",
        "tidegate_http_requests_total{route=\"-\",status=\"431\"} 2\n",
        "tidegate_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1\n",
        "tidegate_http_requests_total{route=\"/v1/chat/completions\",status=\"499\"} 1\n",
        "tidegate_http_requests_total{route=\"/admin/*\",status=\"404\"} 1\n",
        "tidegate_http_requests_total{route=\"other\",status=\"405\"} 1\n",
        "tidegate_request_duration_seconds_count{route=\"-\"} 3\n",
        "tidegate_request_duration_seconds_sum{route=\"/v1/chat/completions\"} 0.07\n",
        "tidegate_tokens_total{direction=\"in\"} 16\n",
        "tidegate_tokens_total{direction=\"out\"} 8\n",
    };
    for (size_t i = 0; i < sizeof want_lines / sizeof want_lines[0]; i++) {
        if (!strstr(out.data, want_lines[i]))
            fail_msg("missing: %s\nin:\n%s", want_lines[i], out.data);
    }
    assert_null(strstr(out.data, "route=\"/v1/chat/completions\",status=\"413\""));
    tg_buf_free(&out);
    tg_metrics_free(api.metrics);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_text),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_unlabelled_histogram_and_std),
        cmocka_unit_test(test_counter_fn),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_on_response_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
