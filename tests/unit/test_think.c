/* Unit tests for engine/think: LFM2.5 reasoning split from the answer, with
 * the text cut at every byte (markers split across pieces). */
/* tg-test-links: lfm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/tg_buf.h"
#include "engine/lfm.h"

typedef struct {
    const char *out;       /* generated text */
    bool start_inside;     /* generation prompt opened <think> */
    const char *reasoning; /* expected */
    const char *content;
} think_case;

static const think_case CASES[] = {
    {"<think>\nThe user says hi.\n</think>\n\nHello!", false, "The user says hi.", "Hello!"},
    {"<think>a</think>b", false, "a", "b"},
    {"  \n<think> x y \n</think>  z  ", false, "x y", "z  "},
    /* No reasoning: the text is all answer, leading whitespace too. */
    {"Hello <think>not reasoning</think>", false, "", "Hello <think>not reasoning</think>"},
    {"  plain", false, "", "  plain"},
    {"<thin", false, "", "<thin"},
    {"<think>", false, "", ""},
    /* Unclosed (max_tokens hit while thinking): all reasoning. */
    {"<think>\nstill thinking about </thi", false, "still thinking about </thi", ""},
    /* A second </think> or <think> after the first block is answer text. */
    {"<think>r</think>a</think><think>b", false, "r", "a</think><think>b"},
    /* Generation prompt ended with <think>: reasoning from the first byte. */
    {"\nsteps 1 < 2\n</think>\nanswer", true, "steps 1 < 2", "answer"},
    {"no close at all", true, "no close at all", ""},
    /* Whitespace inside reasoning is kept; only its ends are trimmed. */
    {"<think>a \n\n b\n</think>\n\nc\n\nd", false, "a \n\n b", "c\n\nd"},
    {"", false, "", ""},
    {"<think></think>", false, "", ""},
    {"<think></think>x", false, "", "x"},
    /* UTF-8 passes through unchanged. */
    {"<think>日本語 🚀</think>Ünï", false, "日本語 🚀", "Ünï"},
};

static void split_run(const think_case *c, size_t piece, tg_buf *r, tg_buf *a) {
    lfm_think t;
    lfm_think_init(&t, c->start_inside);
    size_t n = strlen(c->out);
    for (size_t i = 0; i < n; i += piece)
        lfm_think_push(&t, c->out + i, n - i < piece ? n - i : piece, r, a);
    lfm_think_flush(&t, r, a);
    lfm_think_free(&t);
}

static void check(const tg_buf *b, const char *want, const char *what, const think_case *c,
                  size_t piece) {
    size_t n = strlen(want);
    if (b->len != n || (n && memcmp(b->data, want, n)))
        fail_msg("%s of '%s' in %zu-byte pieces: got '%.*s', want '%s'", what, c->out, piece,
                 (int)b->len, b->data ? b->data : "", want);
}

static void test_cases_every_split(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const think_case *c = &CASES[i];
        size_t n = strlen(c->out);
        for (size_t piece = 1; piece <= n + 1; piece++) {
            tg_buf r = TG_BUF_INIT, a = TG_BUF_INIT;
            split_run(c, piece, &r, &a);
            check(&r, c->reasoning, "reasoning", c, piece);
            check(&a, c->content, "content", c, piece);
            tg_buf_free(&r);
            tg_buf_free(&a);
        }
    }
}

/* While streaming, nothing that may be a marker leaks into either side, and
 * answer text is released as soon as it is known to be answer. */
static void test_streaming_release(void **state) {
    (void)state;
    lfm_think t;
    lfm_think_init(&t, false);
    tg_buf r = TG_BUF_INIT, a = TG_BUF_INIT;
    lfm_think_push(&t, "<th", 3, &r, &a);
    assert_int_equal(r.len + a.len, 0);
    lfm_think_push(&t, "ink>ok, </th", 12, &r, &a);
    assert_true(lfm_think_in_reasoning(&t));
    assert_int_equal(r.len, 3); /* "ok," -- the space and "</th" wait */
    assert_memory_equal(r.data, "ok,", 3);
    lfm_think_push(&t, "ink>\n", 5, &r, &a);
    assert_false(lfm_think_in_reasoning(&t));
    assert_int_equal(a.len, 0);
    lfm_think_push(&t, "Hi", 2, &r, &a);
    assert_int_equal(a.len, 2);
    lfm_think_push(&t, " there", 6, NULL, &a); /* NULL: that side is dropped */
    assert_int_equal(a.len, 8);
    lfm_think_flush(&t, &r, &a);
    assert_int_equal(r.len, 3);
    lfm_think_free(&t);
    tg_buf_free(&r);
    tg_buf_free(&a);

    /* Dropping the reasoning (NULL) still yields the answer. */
    lfm_think_init(&t, false);
    tg_buf b = TG_BUF_INIT;
    lfm_think_push(&t, "<think>secret</think>answer", 27, NULL, &b);
    lfm_think_flush(&t, NULL, &b);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "answer", 6);
    lfm_think_free(&t);
    tg_buf_free(&b);
}

/* The generation prompt opens <think> only when the template says so. */
static void test_template_opens_think(void **state) {
    (void)state;
    assert_false(lfm_chat_template_opens_think(NULL));
    assert_false(lfm_chat_template_opens_think("{{- '<|im_start|>assistant\\n' -}}"));
    assert_true(lfm_chat_template_opens_think("{{- '<|im_start|>assistant\\n<think>' -}}"));
    assert_true(lfm_chat_template_opens_think("{{- '<|im_start|>assistant\n<think>' -}}"));
    /* A template that only strips past thinking does not open it. */
    assert_false(lfm_chat_template_opens_think("content.split('</think>')[-1] | trim"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_every_split),
        cmocka_unit_test(test_streaming_release),
        cmocka_unit_test(test_template_opens_think),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
