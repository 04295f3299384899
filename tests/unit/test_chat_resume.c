/* Unit tests for gateway/api/chat_resume: reading a stream's durable events
 * back (tg_cres_prefix, where a re-run after a crash starts) from CHUNK
 * payloads built the way the gateway builds them (tg_oai_chunk_json inside
 * tg_jchunk), and from hostile ones. The streaming, resume and crash paths
 * run against the real gateway in tests/integration/test_stream_resume.sh. */
/* tg-test-links: tggateway */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/api/chat_resume.h"
#include "gateway/journal/tg_jchunk.h"

/* Adds event n (a chat.completion.chunk of request chatcmpl-7) to p. */
static bool add(tg_cres_prefix *p, uint64_t n, const tg_oai_chunk *k) {
    tg_buf data = TG_BUF_INIT, rec = TG_BUF_INIT;
    tg_oai_chunk_json(&data, "chatcmpl-7", 1700000000, "lfm2-tiny", k);
    tg_jchunk_encode(&rec, n, data.data, data.len);
    bool ok = tg_cres_prefix_add(p, (const uint8_t *)rec.data, rec.len);
    tg_buf_free(&data);
    tg_buf_free(&rec);
    return ok;
}

static bool add_raw(tg_cres_prefix *p, const char *payload) {
    return tg_cres_prefix_add(p, (const uint8_t *)payload, strlen(payload));
}

static void reads_a_cut_stream(void **st) {
    (void)st;
    tg_cres_prefix p;
    tg_cres_prefix_init(&p);
    tg_oai_chunk role = {.role = "assistant", .content = "", .content_len = 0};
    assert_true(add(&p, 1, &role));
    static const char *const parts[] = {"Hello", ",", " wor", "ld"};
    for (size_t i = 0; i < 4; i++) {
        tg_oai_chunk k = {.content = parts[i], .content_len = strlen(parts[i])};
        assert_true(add(&p, i + 2, &k));
    }
    /* A reasoning delta is not content. */
    tg_oai_chunk r = {.reasoning_content = "hm", .reasoning_len = 2};
    assert_true(add(&p, 6, &r));
    assert_int_equal(p.max_n, 6);
    assert_int_equal(p.n_content, 4);
    assert_true(p.head);
    assert_string_equal(p.id, "chatcmpl-7");
    assert_int_equal(p.created, 1700000000);
    assert_string_equal(p.model, "lfm2-tiny");
    assert_int_equal(p.text.len, 12);
    assert_memory_equal(p.text.data, "Hello, world", 12);
    assert_false(p.finished);
    assert_false(p.tools);
    assert_false(p.has_usage);
    assert_false(p.bad);
    tg_cres_prefix_free(&p);
}

static void reads_the_end(void **st) {
    (void)st;
    tg_cres_prefix p;
    tg_cres_prefix_init(&p);
    tg_oai_chunk k = {.content = "ok", .content_len = 2};
    assert_true(add(&p, 1, &k));
    tg_oai_chunk fin = {.finish_reason = "length"};
    assert_true(add(&p, 2, &fin));
    tg_oai_usage u = {11, 2, 0};
    tg_oai_chunk use = {.usage_only = true, .usage = &u};
    assert_true(add(&p, 3, &use));
    assert_true(p.finished);
    assert_string_equal(p.finish, "length");
    assert_true(p.has_usage);
    assert_int_equal(p.usage.prompt_tokens, 11);
    assert_int_equal(p.usage.completion_tokens, 2);
    tg_cres_prefix_free(&p);
    /* A tool-call delta: the stream cannot be continued. */
    tg_cres_prefix_init(&p);
    tg_oai_chunk tc = {.tool_calls_json = "[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                                          "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]"};
    assert_true(add(&p, 1, &tc));
    assert_true(p.tools);
    tg_cres_prefix_free(&p);
}

static void numbering_must_follow(void **st) {
    (void)st;
    tg_cres_prefix p;
    tg_cres_prefix_init(&p);
    tg_oai_chunk k = {.content = "a", .content_len = 1};
    assert_true(add(&p, 1, &k));
    assert_false(add(&p, 3, &k)); /* a gap */
    assert_true(p.bad);
    assert_false(add(&p, 2, &k)); /* stays stopped */
    assert_int_equal(p.max_n, 1);
    assert_int_equal(p.text.len, 1);
    tg_cres_prefix_free(&p);
    tg_cres_prefix_init(&p);
    assert_true(add(&p, 1, &k));
    assert_false(add(&p, 1, &k)); /* a repeat */
    tg_cres_prefix_free(&p);
}

static void hostile_payloads(void **st) {
    (void)st;
    static const char *const bad[] = {
        "",
        "{\"n\":1,\"data\":nul}",
        "{\"n\":1,\"data\":{\"id\":1}",          /* payload not closed */
        "{\"n\":1,\"data\":{\"a\":1}x}",         /* data with trailing bytes */
        "{\"n\":1,\"data\":[1,2]}",              /* not an object */
        "{\"n\":1,\"data\":\"text\"}",           /* not an object */
        "{\"n\":2,\"data\":{}}",                 /* does not start at 1 */
        "{\"n\":1,\"data\":{\"a\":\"\\ud800\"}", /* cut */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_cres_prefix p;
        tg_cres_prefix_init(&p);
        if (add_raw(&p, bad[i])) fail_msg("accepted: %s", bad[i]);
        tg_cres_prefix_free(&p);
    }
    /* Objects of the wrong shape are read as far as they go, nothing more. */
    static const char *const odd[] = {
        "{\"n\":1,\"data\":{}}",
        "{\"n\":1,\"data\":{\"id\":7,\"choices\":{}}}",
        "{\"n\":1,\"data\":{\"choices\":[1]}}",
        "{\"n\":1,\"data\":{\"choices\":[{\"delta\":[],\"finish_reason\":3}]}}",
        "{\"n\":1,\"data\":{\"choices\":[{\"delta\":{\"content\":5}}],\"usage\":[]}}",
        "{\"n\":1,\"data\":{\"usage\":{\"prompt_tokens\":\"x\"}}}",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        tg_cres_prefix p;
        tg_cres_prefix_init(&p);
        if (!add_raw(&p, odd[i])) fail_msg("refused: %s", odd[i]);
        assert_int_equal(p.n_content, 0);
        assert_false(p.finished);
        assert_false(p.head);
        tg_cres_prefix_free(&p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_a_cut_stream),
        cmocka_unit_test(reads_the_end),
        cmocka_unit_test(numbering_must_follow),
        cmocka_unit_test(hostile_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
