/* request: a chat request as the router receives it, and the OpenAI error
 * every layer above the engine answers with.
 *
 * The OpenAI API (gateway/api/openai_api.c) parses a body into a
 * tg_oai_request and hands it to the router; dispatch plans on it and the
 * targets run it (the engine target maps it to an LFM2 job, a cloud target
 * forwards `raw`). The types keep their OpenAI names: they are the OpenAI
 * wire shape, and the router is where that shape is consumed.
 *
 * Sampling fields remember whether they were given, so the engine can fill
 * LFM2's defaults and a cloud upstream can get the caller's values
 * untouched. */
#ifndef RT_REQUEST_H
#define RT_REQUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "engine/lfm.h"
#include "engine/lfm_grammar.h"

typedef struct {
    int status;     /* HTTP status: 400, 404, 413, 429, 500, 503 ... */
    char type[40];  /* "invalid_request_error", "server_error", ... */
    char code[48];  /* "" for null, else e.g. "context_length_exceeded" */
    char param[64]; /* "" for null, else the field, e.g. "messages[2].content" */
    char message[256];
} tg_oai_error;

typedef struct {
    lfm_role role;
    char *content;         /* text (parts joined), NULL when absent/null */
    char *tool_calls_json; /* assistant: normalized tool_calls array JSON, or NULL */
    char *tool_call_id;    /* tool: id it answers, or NULL */
} tg_oai_msg;

typedef enum {
    TG_OAI_TOOL_CHOICE_AUTO = 0,
    TG_OAI_TOOL_CHOICE_NONE,
    TG_OAI_TOOL_CHOICE_REQUIRED,
    TG_OAI_TOOL_CHOICE_NAMED,
} tg_oai_tool_choice;

enum { TG_OAI_RF_TEXT = 0, TG_OAI_RF_JSON_OBJECT = 1, TG_OAI_RF_JSON_SCHEMA = 2 };

typedef struct {
    char *model; /* NULL when omitted */
    tg_oai_msg *msgs;
    size_t n_msgs;

    bool stream;
    bool include_usage;     /* stream_options.include_usage */
    bool exclude_reasoning; /* include_reasoning: false (thinking models) */

    bool has_max_tokens;
    int max_tokens;
    bool has_temperature;
    double temperature;
    bool has_top_p;
    double top_p;
    bool has_seed;
    int64_t seed;
    bool has_frequency_penalty;
    double frequency_penalty; /* -2..2 */
    bool has_presence_penalty;
    double presence_penalty; /* -2..2 */
    /* logit_bias: token ids (decimal keys, >= 0; the vocabulary bound is
     * checked where the model is known, see rt_engine_check_bias) and values
     * in -100..100. has_logit_bias with n_bias 0 for an empty object. */
    bool has_logit_bias;
    int32_t *bias_tokens;
    float *bias_values;
    size_t n_bias;

    char **stop; /* stop strings, n_stop of them */
    size_t n_stop;

    char *tools_json; /* the `tools` array as JSON (tool_choice applied), or NULL */
    size_t n_tools;
    tg_oai_tool_choice tool_choice;
    char *tool_choice_name; /* TG_OAI_TOOL_CHOICE_NAMED */

    char *user; /* `user` field, NULL when absent */

    bool logprobs;    /* `logprobs`: report the sampled tokens' logprobs */
    int top_logprobs; /* 0..20, needs logprobs */

    /* response_format: text (0), json_object, json_schema (schema JSON text
     * in rf_schema, NULL = any value). */
    int rf_kind;
    char *rf_schema;
    /* parallel_tool_calls (default true): false allows at most one call. */
    bool parallel_tool_calls;
    /* Legacy completions: the prompt, tokenized as is (no chat template;
     * msgs then hold a placeholder). NULL for chat. */
    char *raw_prompt;
    /* The output constraint the API built (structured output, forced tool
     * calls), or NULL; owned until the engine takes it at submit. */
    lfm_constraint *constraint;

    /* The parsed body, kept so a cloud upstream can forward it untouched.
     * Owned (one reference). */
    json_object *raw;

    /* A continuation (mid-stream failover from a cloud upstream): the start
     * of the assistant's answer the client already has. The engine target
     * tokenizes it as plain text after the generation prompt and generates
     * on from there. NULL normally. Owned. */
    char *assistant_prefix;
} tg_oai_request;

/* Frees everything r owns and zeroes it (safe on a zeroed request). */
void tg_oai_request_free(tg_oai_request *r);

/* Fills an error; printf-style message. type NULL -> "invalid_request_error";
 * code/param NULL -> "" (JSON null). */
void tg_oai_error_set(tg_oai_error *e, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void tg_oai_error_vset(tg_oai_error *e, int status, const char *type, const char *code,
                       const char *param, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

#endif
