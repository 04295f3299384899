/* Unit tests for gateway/openai_api: request validation and the builders.
 * Builder output is parsed back with json-c and checked field by field. */
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

#include "gateway/api/openai_api.h"
#include "router/engine_target.h"

static int parse(const char *body, tg_oai_request *r, tg_oai_error *e) {
    memset(e, 0, sizeof *e);
    return tg_oai_parse_request(body, strlen(body), r, e);
}

/* Expects a 400 naming `param` (and `code` when given). */
static void expect_400(const char *body, const char *param, const char *code) {
    tg_oai_request r;
    tg_oai_error e;
    int rc = parse(body, &r, &e);
    if (rc != -1) fail_msg("accepted: %s", body);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.param, param);
    if (code) assert_string_equal(e.code, code);
    assert_true(strlen(e.message) > 0);
    tg_oai_request_free(&r);
}

static json_object *jparse(const char *s) {
    json_object *o = json_tokener_parse(s);
    if (!o) fail_msg("builder output is not JSON: %s", s);
    return o;
}

static const char *jstr(json_object *o, const char *path) {
    /* path: dotted keys, [n] for array indexes, e.g. "choices[0].message.role" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_object *cur = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        char *br = strchr(tok, '[');
        int idx = -1;
        if (br) {
            idx = atoi(br + 1);
            *br = 0;
        }
        if (*tok && !json_object_object_get_ex(cur, tok, &cur)) return NULL;
        if (idx >= 0) cur = json_object_array_get_idx(cur, (size_t)idx);
        if (!cur) return NULL;
    }
    return json_object_get_string(cur);
}

/* ------------------------------------------------------------- parsing -- */

static void test_minimal_request(void **st) {
    (void)st;
    tg_oai_request r;
    tg_oai_error e;
    assert_int_equal(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r, &e), 0);
    assert_null(r.model);
    assert_int_equal(r.n_msgs, 1);
    assert_int_equal(r.msgs[0].role, LFM_ROLE_USER);
    assert_string_equal(r.msgs[0].content, "hi");
    assert_false(r.stream);
    assert_false(r.has_max_tokens);
    assert_false(r.has_temperature);
    assert_false(r.has_top_p);
    assert_false(r.has_seed);
    assert_int_equal(r.n_stop, 0);
    assert_null(r.tools_json);
    assert_non_null(r.raw);
    tg_oai_request_free(&r);
}

static void test_full_request(void **st) {
    (void)st;
    const char *body =
        "{\"model\":\"tidegate/edge\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]},"
        "{\"role\":\"user\",\"content\":\"q\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"42\"}],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"max_tokens\":10,\"max_completion_tokens\":20,\"temperature\":0,\"top_p\":0.5,"
        "\"seed\":-7,\"stop\":[\"END\",\"\",\"x\"],\"n\":1,\"user\":\"u1\","
        "\"response_format\":{\"type\":\"text\"},\"logit_bias\":{\"1\":2},\"future_field\":[1,2]}";
    tg_oai_request r;
    tg_oai_error e;
    assert_int_equal(parse(body, &r, &e), 0);
    assert_string_equal(r.model, "tidegate/edge");
    assert_int_equal(r.n_msgs, 5);
    assert_int_equal(r.msgs[0].role, LFM_ROLE_SYSTEM);
    assert_int_equal(r.msgs[1].role, LFM_ROLE_SYSTEM);
    assert_string_equal(r.msgs[1].content, "a\nb");
    assert_int_equal(r.msgs[3].role, LFM_ROLE_ASSISTANT);
    assert_null(r.msgs[3].content);
    json_object *tc = jparse(r.msgs[3].tool_calls_json);
    assert_string_equal(jstr(tc, "[0].id"), "call_1");
    assert_string_equal(jstr(tc, "[0].function.name"), "f");
    /* Object arguments are normalized to a JSON string. */
    assert_string_equal(jstr(tc, "[0].function.arguments"), "{\"x\":1}");
    json_object_put(tc);
    assert_int_equal(r.msgs[4].role, LFM_ROLE_TOOL);
    assert_string_equal(r.msgs[4].tool_call_id, "call_1");
    assert_true(r.stream);
    assert_true(r.include_usage);
    assert_true(r.has_max_tokens);
    assert_int_equal(r.max_tokens, 20); /* max_completion_tokens wins */
    assert_true(r.has_temperature);
    assert_true(r.temperature == 0.0);
    assert_true(r.has_top_p);
    assert_true(r.top_p == 0.5);
    assert_true(r.has_seed);
    assert_int_equal(r.seed, -7);
    assert_int_equal(r.n_stop, 2); /* the empty stop string is dropped */
    assert_string_equal(r.stop[0], "END");
    assert_string_equal(r.stop[1], "x");
    assert_string_equal(r.user, "u1");

    lfm_chat_msg *m = rt_engine_chat_msgs(&r);
    assert_int_equal(m[2].role, LFM_ROLE_USER);
    assert_string_equal(m[2].content, "q");
    assert_ptr_equal(m[3].tool_calls_json, r.msgs[3].tool_calls_json);
    free(m);
    tg_oai_request_free(&r);
}

static void test_invalid_json(void **st) {
    (void)st;
    expect_400("", "", "invalid_json");
    expect_400("{", "", "invalid_json");
    expect_400("{\"messages\":[]} x", "", "invalid_json");
    expect_400("{\"a\":tru}", "", "invalid_json");
    expect_400("{\"a\":1,}", "", "invalid_json");
    expect_400("{'a':1}", "", "invalid_json");          /* single quotes */
    expect_400("{\"a\":NaN}", "", "invalid_json");      /* not a JSON number */
    expect_400("{\"a\":\"x\ty\"}", "", "invalid_json"); /* raw control character */
    /* Not UTF-8, overlong, surrogate, lone \\u escape: 400 naming the field. */
    expect_400("{\"a\":\"\xff\xfe\"}", "a", "invalid_utf8");
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":\"\xc0\xaf\"}]}",
               "messages[0].content", "invalid_utf8");
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":\"\xed\xa0\x80\"}]}",
               "messages[0].content", "invalid_utf8");
    expect_400("{\"user\":\"\\ud800\"}", "user", "invalid_utf8");
    /* Duplicate keys are refused, not last-wins. */
    expect_400("{\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"x\"}]}",
               "messages[0].role", "duplicate_key");
    expect_400("{\"model\":\"a\",\"m\\u006fdel\":\"b\"}", "model", "duplicate_key");
    /* Nesting beyond the depth limit is refused, not recursed into. */
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    tg_oai_request r;
    tg_oai_error e;
    assert_int_equal(tg_oai_parse_request(deep, sizeof deep, &r, &e), -1);
    assert_string_equal(e.code, "invalid_json");
    tg_oai_request_free(&r);
    /* Trailing whitespace is fine. */
    assert_int_equal(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\r\n ", &r, &e),
                     0);
    tg_oai_request_free(&r);
    /* An embedded NUL after a valid object is trailing data. */
    const char nul[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\0{}";
    assert_int_equal(tg_oai_parse_request(nul, sizeof nul - 1, &r, &e), -1);
    tg_oai_request_free(&r);
}

static void test_wrong_types_name_the_field(void **st) {
    (void)st;
#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
    expect_400("[1,2]", "body", "invalid_type");
    expect_400("{}", "messages", "missing_required_parameter");
    expect_400("{\"messages\":{}}", "messages", "invalid_type");
    expect_400("{\"messages\":[]}", "messages", "invalid_value");
    expect_400("{\"messages\":[1]}", "messages[0]", "invalid_type");
    expect_400("{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", NULL);
    expect_400("{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0].role",
               "invalid_value");
    expect_400(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\",\"content\":5}]}",
        "messages[1].content", "invalid_type");
    expect_400("{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content",
               "missing_required_parameter");
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
               "messages[0].content[0].type", "unsupported_value");
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":3}]}]}",
               "messages[0].content[0].text", "invalid_type");
    expect_400("{\"model\":5," MSG "}", "model", "invalid_type");
    expect_400("{" MSG ",\"temperature\":\"hot\"}", "temperature", "invalid_type");
    expect_400("{" MSG ",\"temperature\":2.5}", "temperature", "invalid_value");
    expect_400("{" MSG ",\"top_p\":-0.1}", "top_p", "invalid_value");
    expect_400("{" MSG ",\"max_tokens\":1.5}", "max_tokens", "invalid_type");
    expect_400("{" MSG ",\"max_tokens\":0}", "max_tokens", "invalid_value");
    expect_400("{" MSG ",\"max_completion_tokens\":\"9\"}", "max_completion_tokens",
               "invalid_type");
    expect_400("{" MSG ",\"seed\":1.25}", "seed", "invalid_type");
    expect_400("{" MSG ",\"stream\":\"yes\"}", "stream", "invalid_type");
    expect_400("{" MSG ",\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage",
               "invalid_type");
    expect_400("{" MSG ",\"stop\":5}", "stop", "invalid_type");
    expect_400("{" MSG ",\"stop\":[\"a\",7]}", "stop[1]", "invalid_type");
    expect_400("{" MSG ",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
               "\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
               "stop", "invalid_value");
    expect_400("{" MSG ",\"n\":2}", "n", "unsupported_value");
    expect_400("{" MSG ",\"user\":[]}", "user", "invalid_type");
    expect_400("{" MSG ",\"response_format\":\"json\"}", "response_format", "invalid_type");
    expect_400("{" MSG ",\"response_format\":{\"type\":\"json_schema\"}}",
               "response_format.json_schema", "missing_required_parameter");
    expect_400("{" MSG ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{"
               "\"schema\":[]}}}",
               "response_format.json_schema.schema", "invalid_type");
    expect_400("{" MSG ",\"parallel_tool_calls\":1}", "parallel_tool_calls", "invalid_type");
    expect_400("{" MSG ",\"response_format\":{\"type\":\"yaml\"}}", "response_format.type",
               "invalid_value");
    /* A NUL inside a string would be cut by the engine: refused. */
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}",
               "messages[0].content", "invalid_value");
    /* JSON null counts as absent for optional fields. */
    tg_oai_request r;
    tg_oai_error e;
    assert_int_equal(parse("{" MSG ",\"temperature\":null,\"stop\":null,\"model\":null}", &r, &e),
                     0);
    assert_false(r.has_temperature);
    tg_oai_request_free(&r);
}

static void test_tools(void **st) {
    (void)st;
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                        "\"description\":\"d\",\"parameters\":{\"type\":\"object\"}}},"
                        "{\"type\":\"function\",\"function\":{\"name\":\"other\"}}]";
    char body[1024];
    tg_oai_request r;
    tg_oai_error e;

    snprintf(body, sizeof body, "{" MSG ",%s}", tools);
    assert_int_equal(parse(body, &r, &e), 0);
    assert_int_equal(r.n_tools, 2);
    assert_int_equal(r.tool_choice, TG_OAI_TOOL_CHOICE_AUTO);
    json_object *t = jparse(r.tools_json);
    assert_int_equal(json_object_array_length(t), 2);
    assert_string_equal(jstr(t, "[0].function.name"), "get_weather");
    assert_string_equal(jstr(t, "[1].function.name"), "other");
    json_object_put(t);
    tg_oai_request_free(&r);

    /* "none": the model does not see the tools. */
    snprintf(body, sizeof body, "{" MSG ",%s,\"tool_choice\":\"none\"}", tools);
    assert_int_equal(parse(body, &r, &e), 0);
    assert_null(r.tools_json);
    tg_oai_request_free(&r);

    /* Named: only that function is offered. */
    snprintf(body, sizeof body,
             "{" MSG
             ",%s,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"other\"}}}",
             tools);
    assert_int_equal(parse(body, &r, &e), 0);
    assert_int_equal(r.tool_choice, TG_OAI_TOOL_CHOICE_NAMED);
    t = jparse(r.tools_json);
    assert_int_equal(json_object_array_length(t), 1);
    assert_string_equal(jstr(t, "[0].function.name"), "other");
    json_object_put(t);
    tg_oai_request_free(&r);

    snprintf(body, sizeof body,
             "{" MSG
             ",%s,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}}",
             tools);
    expect_400(body, "tool_choice", "invalid_value");
    snprintf(body, sizeof body, "{" MSG ",%s,\"tool_choice\":\"sometimes\"}", tools);
    expect_400(body, "tool_choice", "invalid_value");
    expect_400("{" MSG ",\"tool_choice\":\"required\"}", "tool_choice", "invalid_value");
    expect_400("{" MSG ",\"tools\":{}}", "tools", "invalid_type");
    expect_400("{" MSG ",\"tools\":[{\"type\":\"function\"}]}", "tools[0].function",
               "missing_required_parameter");
    expect_400("{" MSG ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":1}}]}",
               "tools[0].function.name", "invalid_type");
    expect_400("{" MSG ",\"tools\":[{\"type\":\"retrieval\",\"function\":{\"name\":\"a\"}}]}",
               "tools[0].type", "invalid_value");
    expect_400("{" MSG ",\"tools\":[{\"function\":{\"name\":\"a\",\"parameters\":[]}}]}",
               "tools[0].function.parameters", "invalid_type");
    expect_400("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{}}]}]}",
               "messages[0].tool_calls[0].function.name", "invalid_type");
    /* An empty tools array is the same as none. */
    assert_int_equal(parse("{" MSG ",\"tools\":[]}", &r, &e), 0);
    assert_null(r.tools_json);
    tg_oai_request_free(&r);
}

static void test_sampling_defaults_and_overrides(void **st) {
    (void)st;
    lfm_sampler_params def, p;
    lfm_sampler_defaults(&def);
    tg_oai_request r;
    tg_oai_error e;
    assert_int_equal(parse("{" MSG "}", &r, &e), 0);
    rt_engine_sampling(&r, &p);
    assert_true(p.temperature == def.temperature);
    assert_true(p.min_p == def.min_p);
    assert_true(p.top_p == def.top_p);
    assert_true(p.repeat_penalty == def.repeat_penalty);
    tg_oai_request_free(&r);

    assert_int_equal(parse("{" MSG ",\"temperature\":0.9,\"top_p\":0.25,\"seed\":99}", &r, &e), 0);
    rt_engine_sampling(&r, &p);
    assert_true(p.temperature > 0.899f && p.temperature < 0.901f);
    assert_true(p.top_p == 0.25f);
    assert_int_equal(p.seed, 99);
    assert_true(p.min_p == def.min_p); /* not an OpenAI field: LFM2 default stays */
    tg_oai_request_free(&r);
}

static void test_penalties_and_logit_bias(void **st) {
    (void)st;
    lfm_sampler_params p;
    tg_oai_request r;
    tg_oai_error e;
    /* Omitted: flags false, engine defaults (0 / no bias). */
    assert_int_equal(parse("{" MSG "}", &r, &e), 0);
    assert_false(r.has_frequency_penalty);
    assert_false(r.has_presence_penalty);
    assert_false(r.has_logit_bias);
    rt_engine_sampling(&r, &p);
    assert_true(p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f);
    assert_int_equal(p.n_bias, 0);
    assert_null(p.bias_tokens);
    tg_oai_request_free(&r);
    /* null counts as omitted. */
    assert_int_equal(parse("{" MSG ",\"frequency_penalty\":null,\"logit_bias\":null}", &r, &e), 0);
    assert_false(r.has_frequency_penalty);
    assert_false(r.has_logit_bias);
    tg_oai_request_free(&r);

    assert_int_equal(parse("{" MSG ",\"frequency_penalty\":-2,\"presence_penalty\":1.5,"
                           "\"logit_bias\":{\"0\":-100,\"42\":100,\"7\":0.25}}",
                           &r, &e),
                     0);
    assert_true(r.has_frequency_penalty && r.has_presence_penalty && r.has_logit_bias);
    rt_engine_sampling(&r, &p);
    assert_true(p.frequency_penalty == -2.0f);
    assert_true(p.presence_penalty == 1.5f);
    assert_int_equal(p.n_bias, 3);
    float got[64] = {0};
    int seen = 0;
    for (size_t i = 0; i < p.n_bias; i++) {
        assert_true(p.bias_tokens[i] >= 0 && p.bias_tokens[i] < 64);
        got[p.bias_tokens[i]] = p.bias_values[i];
        seen |= 1 << (p.bias_tokens[i] % 31);
    }
    assert_true(got[0] == -100.0f && got[42] == 100.0f && got[7] == 0.25f);
    assert_int_equal(seen, (1 << 0) | (1 << 11) | (1 << 7));
    /* Vocabulary bound: 42 needs a vocabulary of at least 43. */
    assert_int_equal(rt_engine_check_bias(&r, 43, &e), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(rt_engine_check_bias(&r, 42, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "logit_bias");
    assert_non_null(strstr(e.message, "42"));
    tg_oai_request_free(&r);
    /* Empty object: given, nothing to apply. */
    assert_int_equal(parse("{" MSG ",\"logit_bias\":{}}", &r, &e), 0);
    assert_true(r.has_logit_bias);
    assert_int_equal(r.n_bias, 0);
    rt_engine_sampling(&r, &p);
    assert_int_equal(p.n_bias, 0);
    tg_oai_request_free(&r);

    /* Errors: types, ranges, keys. */
    expect_400("{" MSG ",\"frequency_penalty\":\"1\"}", "frequency_penalty", "invalid_type");
    expect_400("{" MSG ",\"frequency_penalty\":2.01}", "frequency_penalty", "invalid_value");
    expect_400("{" MSG ",\"frequency_penalty\":-3}", "frequency_penalty", "invalid_value");
    expect_400("{" MSG ",\"presence_penalty\":true}", "presence_penalty", "invalid_type");
    expect_400("{" MSG ",\"presence_penalty\":-2.5}", "presence_penalty", "invalid_value");
    expect_400("{" MSG ",\"logit_bias\":[1]}", "logit_bias", "invalid_type");
    expect_400("{" MSG ",\"logit_bias\":\"x\"}", "logit_bias", "invalid_type");
    expect_400("{" MSG ",\"logit_bias\":{\"1\":\"5\"}}", "logit_bias", "invalid_type");
    expect_400("{" MSG ",\"logit_bias\":{\"1\":null}}", "logit_bias", "invalid_type");
    expect_400("{" MSG ",\"logit_bias\":{\"1\":100.5}}", "logit_bias", "invalid_value");
    expect_400("{" MSG ",\"logit_bias\":{\"1\":-101}}", "logit_bias", "invalid_value");
    const char *bad_keys[] = {"abc", "",   "-1",   "+1",         "1.5",        "1e3",
                              " 1",  "1 ", "0x10", "2147483648", "99999999999"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof *bad_keys; i++) {
        char body[256];
        snprintf(body, sizeof body, "{" MSG ",\"logit_bias\":{\"%s\":1}}", bad_keys[i]);
        expect_400(body, "logit_bias", "invalid_value");
    }
    /* 2147483647 is a valid key (the vocabulary check rejects it later). */
    assert_int_equal(parse("{" MSG ",\"logit_bias\":{\"2147483647\":1}}", &r, &e), 0);
    assert_int_equal(r.bias_tokens[0], 2147483647);
    assert_int_equal(rt_engine_check_bias(&r, 65536, &e), -1);
    tg_oai_request_free(&r);
    /* Entry limit: TG_OAI_MAX_BIAS passes, one more is refused. */
    for (int extra = 0; extra < 2; extra++) {
        tg_buf b = TG_BUF_INIT;
        tg_buf_puts(&b, "{" MSG ",\"logit_bias\":{");
        for (int i = 0; i < TG_OAI_MAX_BIAS + extra; i++)
            tg_buf_printf(&b, "%s\"%d\":-1", i ? "," : "", i);
        tg_buf_puts(&b, "}}");
        memset(&e, 0, sizeof e);
        int rc = tg_oai_parse_request(b.data, b.len, &r, &e);
        if (extra == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.n_bias, TG_OAI_MAX_BIAS);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(e.param, "logit_bias");
        }
        tg_oai_request_free(&r);
        tg_buf_free(&b);
    }
}

/* ------------------------------------------------------------ builders -- */

static void test_completion_json(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT;
    tg_oai_usage u = {7, 3, 0};
    tg_oai_completion_json(&b, "chatcmpl-abc", 1700000000, "lfm2-tiny", "he said \"hi\"\n", 13,
                           NULL, "stop", &u, NULL);
    json_object *o = jparse(b.data);
    assert_string_equal(jstr(o, "id"), "chatcmpl-abc");
    assert_string_equal(jstr(o, "object"), "chat.completion");
    assert_string_equal(jstr(o, "created"), "1700000000");
    assert_string_equal(jstr(o, "model"), "lfm2-tiny");
    assert_string_equal(jstr(o, "choices[0].index"), "0");
    assert_string_equal(jstr(o, "choices[0].message.role"), "assistant");
    assert_string_equal(jstr(o, "choices[0].message.content"), "he said \"hi\"\n");
    assert_string_equal(jstr(o, "choices[0].finish_reason"), "stop");
    assert_null(jstr(o, "choices[0].message.tool_calls"));
    assert_string_equal(jstr(o, "usage.prompt_tokens"), "7");
    assert_string_equal(jstr(o, "usage.completion_tokens"), "3");
    assert_string_equal(jstr(o, "usage.total_tokens"), "10");
    json_object_put(o);

    /* Tool calls: content null, finish_reason tool_calls. */
    lfm_tool_call calls[2] = {{"get_weather", "{\"city\":\"Oslo\"}"}, {"noop", NULL}};
    tg_buf tc = TG_BUF_INIT;
    tg_oai_tool_calls_json(&tc, calls, 2, false);
    tg_buf_clear(&b);
    tg_oai_completion_json(&b, "chatcmpl-x", 1, "m", NULL, 0, tc.data,
                           tg_oai_finish_reason(1, true), &u, NULL);
    o = jparse(b.data);
    json_object *content;
    assert_true(json_object_object_get_ex(
        json_object_object_get(json_object_array_get_idx(json_object_object_get(o, "choices"), 0),
                               "message"),
        "content", &content));
    assert_null(content);
    assert_string_equal(jstr(o, "choices[0].finish_reason"), "tool_calls");
    assert_string_equal(jstr(o, "choices[0].message.tool_calls[0].type"), "function");
    assert_string_equal(jstr(o, "choices[0].message.tool_calls[0].function.name"), "get_weather");
    assert_string_equal(jstr(o, "choices[0].message.tool_calls[0].function.arguments"),
                        "{\"city\":\"Oslo\"}");
    assert_string_equal(jstr(o, "choices[0].message.tool_calls[1].function.arguments"), "{}");
    assert_int_equal(strncmp(jstr(o, "choices[0].message.tool_calls[0].id"), "call_", 5), 0);
    assert_null(jstr(o, "choices[0].message.tool_calls[0].index"));
    assert_string_not_equal(jstr(o, "choices[0].message.tool_calls[0].id"),
                            jstr(o, "choices[0].message.tool_calls[1].id"));
    json_object_put(o);
    tg_buf_free(&tc);
    tg_buf_free(&b);
}

static void test_chunk_json(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT;
    tg_oai_chunk first = {.role = "assistant", .content = "", .content_len = 0};
    tg_oai_chunk_json(&b, "chatcmpl-1", 5, "m", &first);
    json_object *o = jparse(b.data);
    assert_string_equal(jstr(o, "object"), "chat.completion.chunk");
    assert_string_equal(jstr(o, "choices[0].delta.role"), "assistant");
    assert_string_equal(jstr(o, "choices[0].delta.content"), "");
    assert_null(jstr(o, "choices[0].finish_reason"));
    json_object_put(o);

    tg_buf_clear(&b);
    tg_oai_chunk mid = {.content = "\xc3\xa9\t", .content_len = 3};
    tg_oai_chunk_json(&b, "chatcmpl-1", 5, "m", &mid);
    assert_null(strchr(b.data, '\n')); /* one SSE line */
    o = jparse(b.data);
    assert_string_equal(jstr(o, "choices[0].delta.content"), "\xc3\xa9\t");
    assert_null(jstr(o, "choices[0].delta.role"));
    json_object_put(o);

    tg_buf_clear(&b);
    tg_oai_chunk fin = {.finish_reason = "length"};
    tg_oai_chunk_json(&b, "chatcmpl-1", 5, "m", &fin);
    o = jparse(b.data);
    assert_string_equal(jstr(o, "choices[0].finish_reason"), "length");
    json_object_put(o);

    tg_buf_clear(&b);
    tg_oai_usage u = {4, 6, 0};
    tg_oai_chunk us = {.usage_only = true, .usage = &u};
    tg_oai_chunk_json(&b, "chatcmpl-1", 5, "m", &us);
    o = jparse(b.data);
    assert_int_equal(json_object_array_length(json_object_object_get(o, "choices")), 0);
    assert_string_equal(jstr(o, "usage.total_tokens"), "10");
    json_object_put(o);

    tg_buf_clear(&b);
    lfm_tool_call call = {"f", "{\"a\":[1]}"};
    tg_buf tc = TG_BUF_INIT;
    tg_oai_tool_calls_json(&tc, &call, 1, true);
    tg_oai_chunk tk = {.tool_calls_json = tc.data};
    tg_oai_chunk_json(&b, "chatcmpl-1", 5, "m", &tk);
    o = jparse(b.data);
    assert_string_equal(jstr(o, "choices[0].delta.tool_calls[0].index"), "0");
    assert_string_equal(jstr(o, "choices[0].delta.tool_calls[0].function.arguments"),
                        "{\"a\":[1]}");
    json_object_put(o);
    tg_buf_free(&tc);
    tg_buf_free(&b);
}

static void test_error_and_models_json(void **st) {
    (void)st;
    tg_oai_error e;
    tg_oai_error_set(&e, 400, "invalid_request_error", "invalid_type", "messages[0]", "bad %s",
                     "\"x\"");
    tg_buf b = TG_BUF_INIT;
    tg_oai_error_json(&b, &e);
    json_object *o = jparse(b.data);
    assert_string_equal(jstr(o, "error.message"), "bad \"x\"");
    assert_string_equal(jstr(o, "error.type"), "invalid_request_error");
    assert_string_equal(jstr(o, "error.param"), "messages[0]");
    assert_string_equal(jstr(o, "error.code"), "invalid_type");
    json_object_put(o);
    tg_oai_error_set(&e, 500, "server_error", NULL, NULL, "boom");
    tg_buf_clear(&b);
    tg_oai_error_json(&b, &e);
    o = jparse(b.data);
    json_object *v;
    assert_true(json_object_object_get_ex(json_object_object_get(o, "error"), "param", &v));
    assert_null(v);
    assert_true(json_object_object_get_ex(json_object_object_get(o, "error"), "code", &v));
    assert_null(v);
    json_object_put(o);

    const char *ids[] = {"lfm2", "tidegate/auto"};
    tg_buf_clear(&b);
    tg_oai_models_json(&b, ids, NULL, 2, 42);
    o = jparse(b.data);
    assert_string_equal(jstr(o, "object"), "list");
    assert_string_equal(jstr(o, "data[1].id"), "tidegate/auto");
    assert_string_equal(jstr(o, "data[0].object"), "model");
    assert_string_equal(jstr(o, "data[0].created"), "42");
    assert_string_equal(jstr(o, "data[0].owned_by"), "tidegate");
    json_object_put(o);
    tg_buf_free(&b);

    assert_string_equal(tg_oai_finish_reason(1, false), "stop");
    assert_string_equal(tg_oai_finish_reason(2, false), "length");
    assert_null(tg_oai_finish_reason(3, false));
    char id[48], id2[48];
    tg_oai_new_id("chatcmpl-", id, sizeof id);
    tg_oai_new_id("chatcmpl-", id2, sizeof id2);
    assert_int_equal(strlen(id), 9 + 24);
    assert_string_not_equal(id, id2);
}

/* Random mutations of a valid body must never crash or leak. */
static void test_mutations_never_crash(void **st) {
    (void)st;
    const char *base =
        "{\"model\":\"tidegate/auto\",\"messages\":[{\"role\":\"user\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"stop\":[\"a\"],\"tools\":[{\"type\":"
        "\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"auto\"}";
    size_t n = strlen(base);
    char *buf = malloc(n + 1);
    uint32_t x = 7;
    int ok = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(buf, base, n + 1);
        for (int k = 0; k < 1 + i % 3; k++) {
            x = x * 1664525u + 1013904223u;
            buf[(x >> 8) % n] = "{}[]\",:0a\\ tnf-1e"[(x >> 20) % 17];
        }
        tg_oai_request r;
        tg_oai_error e;
        if (tg_oai_parse_request(buf, n, &r, &e) == 0)
            ok++;
        else
            assert_int_equal(e.status, 400);
        tg_oai_request_free(&r);
    }
    assert_true(ok > 0);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_request),
        cmocka_unit_test(test_full_request),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_wrong_types_name_the_field),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_sampling_defaults_and_overrides),
        cmocka_unit_test(test_penalties_and_logit_bias),
        cmocka_unit_test(test_completion_json),
        cmocka_unit_test(test_chunk_json),
        cmocka_unit_test(test_error_and_models_json),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
