/* Unit tests for gateway/toolstream: what streams now and what is held,
 * for every way of splitting the text into pieces. */
/* tg-test-links: tggateway */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/api/toolstream.h"

/* Feeds text split at cut points a and b (three pieces); checks the
 * streamed part and what is held at the end. */
static void run3(const char *text, size_t a, size_t b, const char *want_out, const char *want_held,
                 bool want_capturing) {
    size_t n = strlen(text);
    tg_toolstream t;
    tg_toolstream_init(&t);
    tg_buf out = TG_BUF_INIT;
    tg_toolstream_push(&t, text, a, &out);
    tg_toolstream_push(&t, text + a, b - a, &out);
    tg_toolstream_push(&t, text + b, n - b, &out);
    size_t hl;
    const char *held = tg_toolstream_held(&t, &hl);
    if (out.len != strlen(want_out) || memcmp(out.data ? out.data : "", want_out, out.len))
        fail_msg("split %zu/%zu of '%s': streamed '%.*s', want '%s'", a, b, text, (int)out.len,
                 out.data ? out.data : "", want_out);
    if (hl != strlen(want_held) || memcmp(held, want_held, hl))
        fail_msg("split %zu/%zu of '%s': held '%.*s', want '%s'", a, b, text, (int)hl, held,
                 want_held);
    assert_int_equal(t.capturing, want_capturing);
    tg_buf_free(&out);
    tg_toolstream_free(&t);
}

static void every_split(const char *text, const char *want_out, const char *want_held, bool cap) {
    size_t n = strlen(text);
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++)
            run3(text, a, b, want_out, want_held, cap);
}

static void test_plain_text_streams(void **st) {
    (void)st;
    every_split("Hello, world.", "Hello, world.", "", false);
    /* '<' that never becomes the marker goes out once it cannot. */
    every_split("a <b> <|im", "a <b> <|im", "", false);
}

static void test_call_is_held(void **st) {
    (void)st;
    every_split("<|tool_call_start|>[f(x=1)]<|tool_call_end|>", "",
                "<|tool_call_start|>[f(x=1)]<|tool_call_end|>", true);
    every_split("Let me check. <|tool_call_start|>[f()]<|tool_call_end|> ok", "Let me check. ",
                "<|tool_call_start|>[f()]<|tool_call_end|> ok", true);
}

static void test_partial_marker_is_held(void **st) {
    (void)st;
    /* At the end of the stream a partial marker is still held (the caller
     * sends it as content when no call follows). */
    every_split("text <|tool_call", "text ", "<|tool_call", false);
    every_split("x<", "x", "<", false);
    /* A marker split exactly at every point still captures. */
    every_split("<|tool_call_start|>", "", "<|tool_call_start|>", true);
}

static void test_marker_twice_and_empty(void **st) {
    (void)st;
    tg_toolstream t;
    tg_toolstream_init(&t);
    tg_buf out = TG_BUF_INIT;
    tg_toolstream_push(&t, "", 0, &out);
    tg_toolstream_push(&t, NULL, 0, &out);
    size_t hl;
    tg_toolstream_held(&t, &hl);
    assert_int_equal(hl, 0);
    assert_int_equal(out.len, 0);
    tg_toolstream_free(&t);
    every_split(
        "<|tool_call_start|>[a()]<|tool_call_end|><|tool_call_start|>[b()]<|tool_call_end|>", "",
        "<|tool_call_start|>[a()]<|tool_call_end|><|tool_call_start|>[b()]<|tool_call_end|>", true);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_streams),
        cmocka_unit_test(test_call_is_held),
        cmocka_unit_test(test_partial_marker_is_held),
        cmocka_unit_test(test_marker_twice_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
