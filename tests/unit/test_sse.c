/* Unit tests for gateway/sse: framing and the incremental parser. */
/* tg-test-links: tggateway */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/api/sse.h"

/* Collected events: "event|id|data" joined with 0x1e between events. */
typedef struct {
    tg_buf log;
    int n;
    int stop_after; /* 0 = never */
} sink;

static int collect(void *user, const tg_sse_msg *m) {
    sink *s = user;
    if (s->n) tg_buf_putc(&s->log, '\x1e');
    tg_buf_printf(&s->log, "%s|%s|", m->event, m->id);
    tg_buf_append(&s->log, m->data, m->data_len);
    assert_int_equal(m->data[m->data_len], 0);
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

static char *parse_all(const char *in, size_t len, size_t step, int *n) {
    tg_sse_parser p;
    tg_sse_parser_init(&p, 0);
    sink s = {TG_BUF_INIT, 0, 0};
    for (size_t i = 0; i < len; i += step) {
        size_t k = len - i < step ? len - i : step;
        assert_int_equal(tg_sse_parser_feed(&p, in + i, k, collect, &s), 0);
    }
    tg_sse_parser_free(&p);
    *n = s.n;
    char *r = tg_buf_steal(&s.log);
    return r ? r : strdup("");
}

static void test_frame_simple(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT;
    tg_sse_data(&b, "{\"a\":1}", 7);
    assert_string_equal(b.data, "data: {\"a\":1}\n\n");
    tg_buf_clear(&b);
    tg_sse_done(&b);
    assert_string_equal(b.data, "data: [DONE]\n\n");
    tg_buf_clear(&b);
    tg_sse_comment(&b, "keep\nalive");
    assert_string_equal(b.data, ": keepalive\n\n");
    tg_buf_clear(&b);
    tg_sse_event(&b, "error", "x", 1);
    assert_string_equal(b.data, "event: error\ndata: x\n\n");
    /* An event's id goes before its data; the parser reports it. */
    tg_buf_clear(&b);
    tg_sse_id(&b, 18446744073709551615ull);
    tg_sse_data(&b, "x", 1);
    assert_string_equal(b.data, "id: 18446744073709551615\ndata: x\n\n");
    int n;
    char *got = parse_all(b.data, b.len, 3, &n);
    assert_int_equal(n, 1);
    assert_string_equal(got, "message|18446744073709551615|x");
    free(got);
    tg_buf_free(&b);
}

static void test_frame_splits_lines(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT;
    tg_sse_data(&b, "a\nb\r\nc\rd", 8);
    assert_string_equal(b.data, "data: a\ndata: b\ndata: c\ndata: d\n\n");
    tg_buf_clear(&b);
    tg_sse_data(&b, "", 0);
    assert_string_equal(b.data, "data: \n\n");
    tg_buf_clear(&b);
    tg_sse_data(&b, "end\n", 4);
    assert_string_equal(b.data, "data: end\ndata: \n\n");
    tg_buf_free(&b);
}

static void test_parse_basic_fields(void **st) {
    (void)st;
    const char *in = ": comment\n"
                     "data: one\n\n"
                     "event: ping\nid: 42\ndata:two\ndata:  three\n\n"
                     "retry: 10\nunknown: x\n\n" /* no data: no event */
                     "data\n\n"                  /* empty data is an event */
                     "data: after-id\n\n";
    int n;
    char *r = parse_all(in, strlen(in), strlen(in), &n);
    assert_int_equal(n, 4);
    assert_string_equal(
        r, "message||one\x1eping|42|two\n three\x1emessage|42|\x1emessage|42|after-id");
    free(r);
}

/* Found by fuzz_sse: an event name holding a NUL read as an empty name. */
static void test_parse_event_with_nul_ignored(void **st) {
    (void)st;
    static const char in[] = "event: up\ndata: a\n\nevent:\0x\ndata: b\n\n";
    int n;
    char *r = parse_all(in, sizeof in - 1, 3, &n);
    assert_int_equal(n, 2);
    assert_string_equal(r, "up||a\x1emessage||b");
    free(r);
}

static void test_parse_line_endings_and_splits(void **st) {
    (void)st;
    const char *in = "data: a\r\ndata: b\r\r"
                     "data: c\rdata: d\n\n"
                     "data: [DONE]\r\n\r\n";
    const char *want = "message||a\nb\x1emessage||c\nd\x1emessage||[DONE]";
    /* Every split size must give the same events (CRLF split across feeds). */
    for (size_t step = 1; step <= strlen(in); step++) {
        int n;
        char *r = parse_all(in, strlen(in), step, &n);
        assert_int_equal(n, 3);
        assert_string_equal(r, want);
        free(r);
    }
}

static void test_parse_bom(void **st) {
    (void)st;
    const char *in = "\xEF\xBB\xBF"
                     "data: x\n\n";
    for (size_t step = 1; step <= 4; step++) {
        int n;
        char *r = parse_all(in, strlen(in), step, &n);
        assert_int_equal(n, 1);
        assert_string_equal(r, "message||x");
        free(r);
    }
    /* A partial BOM is ordinary text: the line is field "\xEF\xBB" -> ignored. */
    int n;
    char *r = parse_all("\xEF\xBB\ndata: y\n\n", 12, 1, &n);
    assert_int_equal(n, 1);
    assert_string_equal(r, "message||y");
    free(r);
}

static void test_parse_limit(void **st) {
    (void)st;
    tg_sse_parser p;
    tg_sse_parser_init(&p, 64);
    sink s = {TG_BUF_INIT, 0, 0};
    char big[100];
    memset(big, 'x', sizeof big);
    assert_int_equal(tg_sse_parser_feed(&p, "data: ", 6, collect, &s), 0);
    assert_int_equal(tg_sse_parser_feed(&p, big, sizeof big, collect, &s), -1);
    tg_sse_parser_free(&p);
    /* Many small data lines also count against the limit. */
    tg_sse_parser_init(&p, 64);
    int rc = 0;
    for (int i = 0; i < 40 && rc == 0; i++)
        rc = tg_sse_parser_feed(&p, "data: abc\n", 10, collect, &s);
    assert_int_equal(rc, -1);
    assert_int_equal(s.n, 0);
    tg_sse_parser_free(&p);
    tg_buf_free(&s.log);
}

static void test_parse_callback_stops(void **st) {
    (void)st;
    tg_sse_parser p;
    tg_sse_parser_init(&p, 0);
    sink s = {TG_BUF_INIT, 0, 1};
    const char *in = "data: 1\n\ndata: 2\n\n";
    assert_int_equal(tg_sse_parser_feed(&p, in, strlen(in), collect, &s), 7);
    assert_int_equal(s.n, 1);
    tg_sse_parser_free(&p);
    tg_buf_free(&s.log);
}

/* Framing then parsing gives back the payload, whatever it holds. */
static void test_roundtrip_random(void **st) {
    (void)st;
    uint32_t x = 12345;
    for (int iter = 0; iter < 300; iter++) {
        char payload[64];
        size_t len = (size_t)(iter % 60);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            static const char alphabet[] = "ab \n\r:{}\"\\\x01\xc3\xa9";
            payload[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        tg_buf f = TG_BUF_INIT;
        tg_sse_data(&f, payload, len);
        int n;
        char *r = parse_all(f.data, f.len, 1 + (size_t)iter % 7, &n);
        assert_int_equal(n, 1);
        /* Line ends are normalized to LF (CRLF counts as one). */
        tg_buf want = TG_BUF_INIT;
        tg_buf_puts(&want, "message||");
        for (size_t i = 0; i < len; i++) {
            if (payload[i] == '\r') {
                tg_buf_putc(&want, '\n');
                if (i + 1 < len && payload[i + 1] == '\n') i++;
            } else {
                tg_buf_putc(&want, payload[i]);
            }
        }
        assert_int_equal(strlen(r), want.len);
        assert_memory_equal(r, want.data, want.len);
        free(r);
        tg_buf_free(&want);
        tg_buf_free(&f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_simple),
        cmocka_unit_test(test_frame_splits_lines),
        cmocka_unit_test(test_parse_basic_fields),
        cmocka_unit_test(test_parse_event_with_nul_ignored),
        cmocka_unit_test(test_parse_line_endings_and_splits),
        cmocka_unit_test(test_parse_bom),
        cmocka_unit_test(test_parse_limit),
        cmocka_unit_test(test_parse_callback_stops),
        cmocka_unit_test(test_roundtrip_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
