/* Unit tests for gateway/api/openai_responses: the response object's output
 * items (a thinking model's reasoning item before the message) and the
 * bounded store (a deleted id stays deleted while its tombstone lasts). */
/* tg-test-links: tggateway */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "gateway/api/openai_responses.h"

static const char *jstr(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static json_object *jget(json_object *o, const char *k) {
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

static void test_reasoning_item_first(void **st) {
    (void)st;
    tg_resp_view v = {.id = "resp_1",
                      .msg_id = "msg_1",
                      .model = "m",
                      .status = "completed",
                      .text = "Hello!",
                      .text_len = 6,
                      .rs_id = "rs_1",
                      .reasoning = "Think \"this\"",
                      .reasoning_len = 12};
    json_object *o = tg_resp_object(&v), *out = jget(o, "output");
    assert_int_equal(json_object_array_length(out), 2);
    json_object *r = json_object_array_get_idx(out, 0), *m = json_object_array_get_idx(out, 1);
    assert_string_equal(jstr(r, "type"), "reasoning");
    assert_string_equal(jstr(r, "id"), "rs_1");
    assert_string_equal(jstr(r, "status"), "completed");
    assert_int_equal(json_object_array_length(jget(r, "summary")), 0);
    json_object *part = json_object_array_get_idx(jget(r, "content"), 0);
    assert_string_equal(jstr(part, "type"), "reasoning_text");
    assert_string_equal(jstr(part, "text"), "Think \"this\"");
    assert_string_equal(jstr(m, "type"), "message");
    json_object_put(o);

    /* In progress: the item has no content yet; no reasoning: one item. */
    json_object *ip = tg_resp_reasoning_item(&v, "in_progress");
    assert_int_equal(json_object_array_length(jget(ip, "content")), 0);
    json_object_put(ip);
    v.reasoning = NULL;
    o = tg_resp_object(&v);
    assert_int_equal(json_object_array_length(jget(o, "output")), 1);
    json_object_put(o);
}

static void test_store_delete_tombstone(void **st) {
    (void)st;
    tg_resp_store *s = tg_resp_store_new(3);
    tg_resp_store_put(s, "resp_a", "{\"a\":1}", "[]");
    tg_resp_store_put(s, "resp_b", "{\"b\":1}", NULL);
    assert_false(tg_resp_store_deleted(s, "resp_a"));
    assert_true(tg_resp_store_delete(s, "resp_a"));
    assert_null(tg_resp_store_response(s, "resp_a"));
    assert_true(tg_resp_store_deleted(s, "resp_a"));
    assert_false(tg_resp_store_delete(s, "resp_a"));
    assert_false(tg_resp_store_deleted(s, "resp_b"));
    assert_string_equal(tg_resp_store_messages(s, "resp_b"), "[]");
    /* The ring reuses the tombstone's slot in turn: then it is forgotten. */
    tg_resp_store_put(s, "resp_c", "{}", "[]");
    tg_resp_store_put(s, "resp_d", "{}", "[]");
    assert_false(tg_resp_store_deleted(s, "resp_a"));
    assert_string_equal(tg_resp_store_response(s, "resp_b"), "{\"b\":1}");
    assert_string_equal(tg_resp_store_response(s, "resp_d"), "{}");
    tg_resp_store_put(s, "resp_e", "{}", "[]"); /* the oldest, b, goes */
    assert_null(tg_resp_store_response(s, "resp_b"));
    tg_resp_store_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasoning_item_first),
        cmocka_unit_test(test_store_delete_tombstone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
