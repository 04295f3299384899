/* tg-test-links: lfm */
/* Chat template rendering (exact strings), template kind detection, the
 * engine's JSON scanner, and tool-call parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/gguf.h"
#include "common/ljson.h"
#include "engine/lfm.h"
#include "engine/tokenizer.h"

static void render_ok(lfm_template_kind kind, const lfm_chat_msg *m, size_t n, const char *tools,
                      bool gen, const char *want) {
    tg_buf out = TG_BUF_INIT;
    char err[200] = "";
    int rc = lfm_chat_render(kind, m, n, tools, gen, &out, err, sizeof err);
    if (rc != 0) fail_msg("render failed: %s", err);
    if (strcmp(out.data, want) != 0) fail_msg("rendered:\n%s\nwant:\n%s", out.data, want);
    tg_buf_free(&out);
}

static void test_basic_turns(void **state) {
    (void)state;
    lfm_chat_msg m[] = {
        {LFM_ROLE_SYSTEM, "You are a helpful assistant.", NULL},
        {LFM_ROLE_USER, "What is C. elegans?", NULL},
    };
    render_ok(LFM_TEMPLATE_LFM2, m, 2, NULL, true,
              "<|startoftext|><|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
              "<|im_start|>user\nWhat is C. elegans?<|im_end|>\n<|im_start|>assistant\n");
    /* No system prompt, no tools: no system turn; no generation prompt. */
    render_ok(LFM_TEMPLATE_LFM2, m + 1, 1, NULL, false,
              "<|startoftext|><|im_start|>user\nWhat is C. elegans?<|im_end|>\n");
    /* Empty tools list is falsy (Jinja): still no system turn. */
    render_ok(LFM_TEMPLATE_LFM2, m + 1, 1, " [ ] ", false,
              "<|startoftext|><|im_start|>user\nWhat is C. elegans?<|im_end|>\n");
    /* Empty system prompt: no system turn either; NULL content renders empty. */
    lfm_chat_msg e[] = {{LFM_ROLE_SYSTEM, "", NULL}, {LFM_ROLE_USER, NULL, NULL}};
    render_ok(LFM_TEMPLATE_LFM2, e, 2, NULL, true,
              "<|startoftext|><|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n");
    /* Zero messages. */
    render_ok(LFM_TEMPLATE_LFM2, NULL, 0, NULL, true, "<|startoftext|><|im_start|>assistant\n");
    /* A later system message is an ordinary turn. */
    lfm_chat_msg s2[] = {{LFM_ROLE_USER, "a", NULL}, {LFM_ROLE_SYSTEM, "b", NULL}};
    render_ok(LFM_TEMPLATE_LFM2, s2, 2, NULL, false,
              "<|startoftext|><|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n");
}

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather in a city \\u00e9\\n\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"now\", \"parameters\": {}}}]";

static const char TOOLS_RENDERED[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
    "\"Weather in a city \xc3\xa9\\n\", \"parameters\": {\"type\": \"object\", \"properties\": "
    "{\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}, "
    "{\"type\": \"function\", \"function\": {\"name\": \"now\", \"parameters\": {}}}]";

static void test_tools_and_calls(void **state) {
    (void)state;
    lfm_chat_msg m[] = {
        {LFM_ROLE_SYSTEM, "Be brief.", NULL},
        {LFM_ROLE_USER, "Weather in Paris?", NULL},
        {LFM_ROLE_ASSISTANT, "Checking.",
         "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
         "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\", \\\"days\\\": 3, \\\"x\\\": [true, null, "
         "1.5], \\\"o\\\": {\\\"k\\\": false}}\"}},"
         "{\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]"},
        {LFM_ROLE_TOOL, "{\"temp\": 21}", NULL},
    };
    char want[4096];
    snprintf(want, sizeof want,
             "<|startoftext|><|im_start|>system\nBe brief.\nList of tools: <|tool_list_start|>%s"
             "<|tool_list_end|><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
             "<|im_start|>assistant\n<|tool_call_start|>[get_weather(city=\"Paris\", days=3, "
             "x=[true, null, 1.5], o={\"k\": false}), now()]<|tool_call_end|>Checking.<|im_end|>\n"
             "<|im_start|>tool\n<|tool_response_start|>{\"temp\": 21}<|tool_response_end|>"
             "<|im_end|>\n<|im_start|>assistant\n",
             TOOLS_RENDERED);
    render_ok(LFM_TEMPLATE_LFM2, m, 4, TOOLS, true, want);
    /* Tools without a system prompt; arguments given as an object. */
    lfm_chat_msg m2[] = {
        {LFM_ROLE_USER, "hi", NULL},
        {LFM_ROLE_ASSISTANT, NULL,
         "[{\"function\":{\"name\":\"f\",\"arguments\":{\"s\":\"a\\\"b\",\"n\":null,"
         "\"t\":true}}}]"},
        {LFM_ROLE_TOOL, "{\"r\": 1}", NULL},
    };
    snprintf(want, sizeof want,
             "<|startoftext|><|im_start|>system\nList of tools: [%s]<|im_end|>\n"
             "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
             "<|tool_call_start|>[f(s=\"a\"b\", n=null, t=True)]<|tool_call_end|><|im_end|>\n"
             "<|im_start|>tool\n{\"r\": 1}<|im_end|>\n",
             "\"raw tool text\"");
    /* A tool given as a JSON string is inserted verbatim (LFM2.5: no list tokens). */
    tg_buf out = TG_BUF_INIT;
    char err[200];
    assert_int_equal(lfm_chat_render(LFM_TEMPLATE_LFM25, m2, 3, "[\"\\\"raw tool text\\\"\"]",
                                     false, &out, err, sizeof err),
                     0);
    assert_string_equal(out.data, want);
    tg_buf_free(&out);
}

static void test_lfm25_think(void **state) {
    (void)state;
    lfm_chat_msg m[] = {
        {LFM_ROLE_USER, "2+2?", NULL},
        {LFM_ROLE_ASSISTANT, "<think>Simple.</think>\n\n Four. ", NULL},
        {LFM_ROLE_USER, "3+3?", NULL},
        {LFM_ROLE_ASSISTANT, "<think>Also simple.</think>Six.", NULL},
    };
    render_ok(LFM_TEMPLATE_LFM25, m, 4, NULL, false,
              "<|startoftext|><|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\nFour."
              "<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n"
              "<think>Also simple.</think>Six.<|im_end|>\n");
    /* The last assistant turn keeps its thinking even before a user turn. */
    render_ok(LFM_TEMPLATE_LFM25, m, 3, NULL, false,
              "<|startoftext|><|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
              "<think>Simple.</think>\n\n Four. <|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n");
    /* LFM2 keeps everything. */
    render_ok(LFM_TEMPLATE_LFM2, m, 2, NULL, false,
              "<|startoftext|><|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
              "<think>Simple.</think>\n\n Four. <|im_end|>\n");
}

static void test_render_errors(void **state) {
    (void)state;
    lfm_chat_msg m[] = {{LFM_ROLE_USER, "x", NULL}};
    tg_buf out = TG_BUF_INIT;
    tg_buf_puts(&out, "keep");
    char err[200] = "";
    assert_int_equal(
        lfm_chat_render(LFM_TEMPLATE_LFM2, m, 1, "{\"a\":1}", true, &out, err, sizeof err),
        LFM_EINVAL);
    assert_string_equal(out.data, "keep");
    assert_non_null(strstr(err, "tools"));
    assert_int_equal(lfm_chat_render(LFM_TEMPLATE_LFM2, m, 1, "[1,]", true, &out, err, sizeof err),
                     LFM_EINVAL);
    lfm_chat_msg bad[] = {{LFM_ROLE_ASSISTANT, "x",
                           "[{\"function\":{\"name\":\"f\","
                           "\"arguments\":\"{not json\"}}]"}};
    assert_int_equal(lfm_chat_render(LFM_TEMPLATE_LFM2, bad, 1, NULL, true, &out, err, sizeof err),
                     LFM_EINVAL);
    assert_non_null(strstr(err, "arguments"));
    lfm_chat_msg bad2[] = {{LFM_ROLE_ASSISTANT, "x", "[{\"function\":{\"arguments\":\"{}\"}}]"}};
    assert_int_equal(lfm_chat_render(LFM_TEMPLATE_LFM2, bad2, 1, NULL, true, &out, err, sizeof err),
                     LFM_EINVAL);
    lfm_chat_msg bad3[] = {{(lfm_role)42, "x", NULL}};
    assert_int_equal(lfm_chat_render(LFM_TEMPLATE_LFM2, bad3, 1, NULL, true, &out, err, sizeof err),
                     LFM_EINVAL);
    assert_string_equal(out.data, "keep");
    tg_buf_free(&out);
}

static void test_template_kind(void **state) {
    (void)state;
    assert_int_equal(lfm_chat_template_kind(NULL), LFM_TEMPLATE_LFM2);
    assert_int_equal(lfm_chat_template_kind("{{- bos_token -}}{%- for message in messages -%}"),
                     LFM_TEMPLATE_LFM2);
    assert_int_equal(lfm_chat_template_kind("\"List of tools: <|tool_list_start|>[\""),
                     LFM_TEMPLATE_LFM2);
    assert_int_equal(lfm_chat_template_kind("+ \"List of tools: [\" -%}"), LFM_TEMPLATE_LFM25);
    assert_int_equal(lfm_chat_template_kind("content.split('</think>')[-1]"), LFM_TEMPLATE_LFM25);
}

static void test_json_scanner(void **state) {
    (void)state;
    const char *src = " {\"a\" : [1, -2.5e+3, true, false, null], \"b\": \"\\ud83d\\ude80\\u00e9"
                      "\\t\\\"\\/\\u0001\", \"c\": {}} ";
    char err[128];
    ljson *v = ljson_parse(src, strlen(src), err, sizeof err);
    assert_non_null(v);
    tg_buf b = TG_BUF_INIT;
    ljson_write(&b, v, LJSON_COMPACT);
    assert_string_equal(b.data,
                        "{\"a\":[1,-2.5e+3,true,false,null],\"b\":\"\xf0\x9f\x9a\x80\xc3\xa9"
                        "\\t\\\"/\\u0001\",\"c\":{}}");
    tg_buf_clear(&b);
    ljson_write(&b, v, LJSON_PYTHON);
    assert_string_equal(b.data, "{\"a\": [1, -2.5e+3, true, false, null], \"b\": \"\xf0\x9f\x9a\x80"
                                "\xc3\xa9\\t\\\"/\\u0001\", \"c\": {}}");
    tg_buf_free(&b);
    assert_non_null(ljson_get(v, "c"));
    assert_null(ljson_get(v, "zz"));
    ljson_free(v);
    static const char *const bad[] = {"",      "[1,]",       "{\"a\"}", "01",    "1.", "\"\\x\"",
                                      "[1] 2", "\"a\nb\"",   "tru",     "{1:2}", "-",  "\"\\u12\"",
                                      "[",     "{\"a\":1,}", "nul",     "\"abc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = ljson_parse(bad[i], strlen(bad[i]), err, sizeof err);
        if (v) fail_msg("accepted bad JSON %s", bad[i]);
        assert_true(strlen(err) > 0);
    }
    /* Nesting limit. */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_null(ljson_parse(deep, 200, err, sizeof err));
    assert_non_null(strstr(err, "deep"));
    v = ljson_parse(deep + 50, 100, err, sizeof err);
    assert_non_null(v);
    ljson_free(v);
}

static void expect_calls(const char *text, int want_n, const char *const *names,
                         const char *const *args, const char *want_content) {
    tg_buf content = TG_BUF_INIT;
    lfm_tool_call *calls = NULL;
    size_t n = 0;
    int rc = lfm_parse_tool_calls(text, strlen(text), &content, &calls, &n);
    if (rc != want_n) fail_msg("parse %s: rc %d want %d", text, rc, want_n);
    if (want_n >= 0) {
        assert_int_equal(n, (size_t)want_n);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(calls[i].name, names[i]);
            assert_string_equal(calls[i].arguments_json, args[i]);
        }
    } else {
        assert_int_equal(n, 0);
        assert_null(calls);
    }
    assert_string_equal(content.data, want_content);
    lfm_tool_calls_free(calls, n);
    tg_buf_free(&content);
}

static void test_parse_tool_calls(void **state) {
    (void)state;
    const char *n1[] = {"get_weather", "other"};
    const char *a1[] = {"{\"city\":\"Paris\",\"days\":3}", "{\"x\":1.5,\"flag\":true}"};
    expect_calls("Sure. <|tool_call_start|>[get_weather(city=\"Paris\", days=3), other(x=1.5, "
                 "flag=True)]<|tool_call_end|> Done.",
                 2, n1, a1, "Sure.  Done.");
    const char *n2[] = {"f"};
    const char *a2[] = {"{\"s\":\"it's \\\"q\\\"\\n\xc3\xa9\",\"t\":\"x\",\"n\":null,\"neg\":-2,"
                        "\"l\":[1,\"a\",[false]],\"d\":{\"k\":0.5,\"j\":[]},\"tu\":[1,2],"
                        "\"e\":1e-3,\"z\":0.0}"};
    expect_calls("<|tool_call_start|>[f(s='it\\'s \"q\"\\n\\xe9', t=\"x\", n=None, neg=-2, "
                 "l=[1, 'a', [False],], d={'k': .5, \"j\": []}, tu=(1, 2), e=1e-3, z=0.)]"
                 "<|tool_call_end|>",
                 1, n2, a2, "");
    /* JSON list form, with arguments as an object or as a JSON string. */
    const char *n3[] = {"a", "b"};
    const char *a3[] = {"{\"x\":[1,2]}", "{}"};
    expect_calls("<|tool_call_start|>[{\"name\": \"a\", \"arguments\": {\"x\": [1, 2]}}, "
                 "{\"name\": \"b\", \"arguments\": \"{}\"}]<|tool_call_end|>",
                 2, n3, a3, "");
    const char *n5[] = {"get-data.v2"};
    const char *a5[] = {"{\"a\":1}"};
    expect_calls("<|tool_call_start|>get-data.v2(a=1)<|tool_call_end|>", 1, n5, a5, "");
    /* No calls at all; empty list; two blocks. */
    expect_calls("just text", 0, NULL, NULL, "just text");
    expect_calls("<|tool_call_start|>[]<|tool_call_end|>x", 0, NULL, NULL, "x");
    const char *n4[] = {"g", "h"};
    const char *a4[] = {"{}", "{\"q\":\"\"}"};
    expect_calls("A<|tool_call_start|>[g()]<|tool_call_end|>B<|tool_call_start|>[h(q='')]"
                 "<|tool_call_end|>C",
                 2, n4, a4, "ABC");
    /* Missing end marker but a complete call: accepted. */
    expect_calls("x<|tool_call_start|>[g()]", 1, n4, a4, "x");
    /* Malformed blocks: LFM_EINVAL, content is the whole text. */
    static const char *const bad[] = {
        "<|tool_call_start|>[f(x=)]<|tool_call_end|>",
        "<|tool_call_start|>[f(\"pos\")]<|tool_call_end|>",
        "<|tool_call_start|>[f(x=1]<|tool_call_end|>",
        "ok <|tool_call_start|>[f(x='unterminated)]<|tool_call_end|>",
        "<|tool_call_start|>[f(x=1) g()]<|tool_call_end|>",
        "<|tool_call_start|>[f(x=os.system)]<|tool_call_end|>",
        "<|tool_call_start|>[f(x=1)]<|tool_call_end|><|tool_call_start|>nope<|tool_call_end|>",
        "<|tool_call_start|>[{\"arguments\": {}}]<|tool_call_end|>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_calls(bad[i], LFM_EINVAL, NULL, NULL, bad[i]);
}

/* The rendered chat, tokenized with the single-BOS rule, gives exactly the
 * reference ids of the fixture "chat" case (whose text lacks the BOS). */
static void test_render_tokenize_fixture(void **state) {
    (void)state;
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/models/lfm2-tiny-f32.gguf", TG_FIXTURES);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, &f, err, sizeof err), 0);
    lfm_tokenizer *t = NULL;
    assert_int_equal(lfm_tokenizer_from_gguf(f, &t, err, sizeof err), 0);
    gguf_close(f);
    tg_buf ref = TG_BUF_INIT;
    snprintf(path, sizeof path, "%s/reference/tiny-f32/chat.json", TG_FIXTURES);
    assert_int_equal(tg_buf_read_file(&ref, path), 0);
    ljson *cj = ljson_parse(ref.data, ref.len, err, sizeof err);
    assert_non_null(cj);
    const ljson *want = ljson_get(cj, "prompt_tokens");
    assert_non_null(want);
    lfm_chat_msg m[] = {{LFM_ROLE_SYSTEM, "You are a helpful assistant.", NULL},
                        {LFM_ROLE_USER, "What is C. elegans?", NULL}};
    tg_buf out = TG_BUF_INIT;
    assert_int_equal(lfm_chat_render(LFM_TEMPLATE_LFM2, m, 2, NULL, true, &out, err, sizeof err),
                     0);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(lfm_tokenize(t, out.data, out.len, true, true, &ids, &n), 0);
    assert_int_equal(n, want->n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], atoi(want->items[i]->str));
    free(ids);
    tg_buf_free(&out);
    ljson_free(cj);
    tg_buf_free(&ref);
    lfm_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_turns),      cmocka_unit_test(test_tools_and_calls),
        cmocka_unit_test(test_lfm25_think),      cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_template_kind),    cmocka_unit_test(test_json_scanner),
        cmocka_unit_test(test_parse_tool_calls), cmocka_unit_test(test_render_tokenize_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
