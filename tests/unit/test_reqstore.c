/* Unit tests for gateway/api/reqstore: tool-call deltas merged into the
 * stored result, a stored result replayed as SSE, and the GET object built
 * from a request's records (including hostile payloads). */
/* tg-test-links: tggateway */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/api/reqstore.h"
#include "gateway/journal/tg_jrec.h"

static const char *S(tg_buf *b) {
    tg_buf_putc(b, 0);
    b->len--;
    return b->data;
}

static void toolacc_merges_pieces(void **st) {
    (void)st;
    tg_toolacc *a = tg_toolacc_new();
    const char *d1 = "[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
                     "{\"name\":\"get_weather\",\"arguments\":\"\"}}]";
    const char *d2 = "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]";
    const char *d3 =
        "[{\"index\":0,\"function\":{\"arguments\":\"\\\"Oslo\\\"}\"}},"
        "{\"index\":1,\"id\":\"call_2\",\"function\":{\"name\":\"t\",\"arguments\":\"{}\"}}]";
    assert_int_equal(tg_toolacc_add(a, d1, strlen(d1)), 1);
    assert_int_equal(tg_toolacc_add(a, d2, strlen(d2)), 1);
    assert_int_equal(tg_toolacc_add(a, "not json", 8), 1); /* ignored */
    assert_int_equal(tg_toolacc_add(a, d3, strlen(d3)), 2);
    tg_buf out = TG_BUF_INIT;
    assert_true(tg_toolacc_json(a, &out));
    assert_string_equal(S(&out),
                        "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                        "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
                        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"t\","
                        "\"arguments\":\"{}\"}}]");
    tg_buf_free(&out);
    tg_toolacc_free(a);
    /* No call, out-of-range indexes: nothing. */
    a = tg_toolacc_new();
    const char *bad = "[{\"index\":-1},{\"index\":100000}]";
    assert_int_equal(tg_toolacc_add(a, bad, strlen(bad)), 0);
    assert_false(tg_toolacc_json(a, &out));
    assert_int_equal(out.len, 0);
    tg_toolacc_free(a);
}

static const char k_result[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\","
    "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
    "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}],"
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}";

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void replay_has_every_part(void **st) {
    (void)st;
    tg_buf out = TG_BUF_INIT;
    assert_int_equal(tg_replay_sse(k_result, strlen(k_result), true, &out), 0);
    const char *s = S(&out);
    assert_int_equal(count(s, "data: "), 6); /* role, content, tools, final, usage, DONE */
    assert_non_null(strstr(s, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}"));
    assert_non_null(strstr(s, "\"delta\":{\"content\":\"Hello\"}"));
    assert_non_null(strstr(s, "\"index\":0,\"id\":\"c1\""));
    assert_non_null(strstr(s, "\"finish_reason\":\"tool_calls\""));
    assert_non_null(strstr(s, "\"completion_tokens\":4"));
    assert_non_null(strstr(s, "\"id\":\"chatcmpl-1\""));
    assert_true(out.len > 14 && !strcmp(s + out.len - 14, "data: [DONE]\n\n"));
    tg_buf_clear(&out);
    assert_int_equal(tg_replay_sse(k_result, strlen(k_result), false, &out), 0);
    assert_int_equal(count(S(&out), "data: "), 5);
    tg_buf_clear(&out);
    /* Not a chat.completion: nothing. */
    assert_int_equal(tg_replay_sse("{\"object\":\"x\"}", 14, false, &out), -1);
    assert_int_equal(tg_replay_sse("[1,2]", 5, false, &out), -1);
    assert_int_equal(tg_replay_sse(k_result, 10, false, &out), -1); /* cut */
    assert_int_equal(out.len, 0);
    tg_buf_free(&out);
}

static void add(tg_reqview *v, int type, uint64_t ts, const char *p) {
    tg_reqview_add(v, type, ts, (const uint8_t *)p, strlen(p));
}

static void view_follows_the_records(void **st) {
    (void)st;
    tg_reqview v;
    tg_reqview_init(&v);
    tg_buf out = TG_BUF_INIT;
    /* Before ACCEPTED everything is an orphan. */
    add(&v, TG_JREC_COMPLETED, 1, k_result);
    assert_false(v.accepted);
    add(&v, TG_JREC_ACCEPTED, 5000000,
        "{\"scope\":\"abc\",\"idem\":null,\"body_sha\":\"00\",\"stream\":true,"
        "\"include_usage\":true,\"body\":{}}");
    assert_true(v.accepted);
    assert_string_equal(v.scope, "abc");
    assert_true(v.stream && v.include_usage);
    assert_string_equal(tg_reqview_status(&v), "accepted");
    add(&v, TG_JREC_DISPATCHED, 5100000, "{\"target\":\"cloud:a\"}");
    assert_string_equal(tg_reqview_status(&v), "running");
    add(&v, TG_JREC_FAILOVER, 6000000,
        "{\"from\":\"cloud:a\",\"to\":\"engine\",\"reason\":\"timeout\",\"midstream\":false}");
    assert_string_equal(tg_reqview_status(&v), "running");
    add(&v, TG_JREC_CHUNK, 6100000, "ignored");
    add(&v, TG_JREC_COMPLETED, 7000000, k_result);
    add(&v, TG_JREC_FAILED, 8000000, "{\"status\":500,\"error\":{\"message\":\"x\"}}");
    assert_string_equal(tg_reqview_status(&v), "completed");
    tg_reqview_json(&v, "req_1", &out);
    char want[2048];
    snprintf(want, sizeof want,
             "{\"id\":\"req_1\",\"object\":\"tidegate.request\",\"status\":\"completed\","
             "\"created\":5,\"route\":\"engine\",\"failovers\":[{\"from\":\"cloud:a\",\"to\":"
             "\"engine\",\"reason\":\"timeout\",\"midstream\":false,\"at\":6}],\"result\":%s,"
             "\"error\":null}",
             k_result);
    assert_string_equal(S(&out), want);
    tg_buf_free(&out);
    tg_reqview_free(&v);
}

static void view_of_a_failure(void **st) {
    (void)st;
    tg_reqview v;
    tg_reqview_init(&v);
    add(&v, TG_JREC_ACCEPTED, 1000000, "{\"scope\":\"\"}");
    add(&v, TG_JREC_FAILED, 2000000,
        "{\"status\":503,\"error\":{\"message\":\"no target\",\"type\":\"server_error\","
        "\"param\":null,\"code\":\"upstream_unavailable\"}}");
    assert_string_equal(tg_reqview_status(&v), "failed");
    assert_int_equal(v.error_status, 503);
    tg_buf out = TG_BUF_INIT;
    tg_reqview_json(&v, "r", &out);
    assert_string_equal(S(&out),
                        "{\"id\":\"r\",\"object\":\"tidegate.request\",\"status\":\"failed\","
                        "\"created\":1,\"route\":null,\"failovers\":[],\"result\":null,\"error\":"
                        "{\"message\":\"no target\",\"type\":\"server_error\",\"param\":null,"
                        "\"code\":\"upstream_unavailable\"}}");
    tg_buf_free(&out);
    tg_reqview_free(&v);
    /* Garbage payloads: still one well-formed object, nothing invented. */
    tg_reqview_init(&v);
    add(&v, TG_JREC_ACCEPTED, 0, "\x01\xff{");
    add(&v, TG_JREC_FAILOVER, 0, "[]");
    add(&v, TG_JREC_COMPLETED, 0, "{\"a\":1} trailing");
    assert_string_equal(tg_reqview_status(&v), "completed");
    tg_reqview_json(&v, "r", &out);
    assert_string_equal(S(&out), "{\"id\":\"r\",\"object\":\"tidegate.request\",\"status\":"
                                 "\"completed\",\"created\":0,\"route\":null,\"failovers\":"
                                 "[{\"from\":null,\"to\":null,\"reason\":null,\"midstream\":false,"
                                 "\"at\":0}],\"result\":null,\"error\":null}");
    tg_buf_free(&out);
    tg_reqview_free(&v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(toolacc_merges_pieces),
        cmocka_unit_test(replay_has_every_part),
        cmocka_unit_test(view_follows_the_records),
        cmocka_unit_test(view_of_a_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
