/* openai_api: the OpenAI chat-completions wire format, both directions.
 *
 * Parsing turns an untrusted JSON body into one tg_oai_request with every
 * field checked (type, range, size); a failure fills a tg_oai_error naming
 * the offending field in `param`, ready to be sent as OpenAI error JSON.
 * Unknown fields are ignored. Sampling fields remember whether they were
 * given, so the engine can fill LFM2's defaults and a cloud upstream can get
 * the caller's values untouched.
 *
 * The builders write response, chunk, model-list and error JSON into a
 * tg_buf; they never fail (tg_buf aborts on OOM). */
#ifndef TG_OPENAI_API_H
#define TG_OPENAI_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common/tg_buf.h"
#include "engine/lfm.h"
#include "engine/lfm_sched.h"

/* Limits on what one request may carry (beyond the HTTP body limit). */
#define TG_OAI_MAX_MESSAGES 4096
#define TG_OAI_MAX_STOP     16
#define TG_OAI_MAX_STOP_LEN 256
#define TG_OAI_MAX_TOOLS    128
#define TG_OAI_JSON_DEPTH   64
#define TG_OAI_MAX_BIAS     1024 /* logit_bias entries */

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

typedef struct {
    char *model; /* NULL when omitted */
    tg_oai_msg *msgs;
    size_t n_msgs;

    bool stream;
    bool include_usage; /* stream_options.include_usage */

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
     * checked where the model is known, see tg_oai_check_bias) and values
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

    /* The parsed body, kept so a cloud upstream can forward it untouched.
     * Owned (one reference). */
    json_object *raw;
} tg_oai_request;

/* Parses and validates a chat-completions body. Returns 0, or -1 with *err
 * filled (status 400). *out must be freed with tg_oai_request_free either way. */
int tg_oai_parse_request(const char *body, size_t len, tg_oai_request *out, tg_oai_error *err);
void tg_oai_request_free(tg_oai_request *r);

/* Fills an error; printf-style message. */
void tg_oai_error_set(tg_oai_error *e, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Starts from LFM2's defaults (lfm_sampler_defaults) and applies what the
 * caller gave. The bias arrays point into r (the engine copies them). */
void tg_oai_sampling(const tg_oai_request *r, lfm_sampler_params *p);

/* Checks logit_bias token ids against the model's vocabulary. Returns 0, or
 * -1 with *err filled (400, param "logit_bias"). */
int tg_oai_check_bias(const tg_oai_request *r, int n_vocab, tg_oai_error *err);

/* Converts the messages to the engine's chat form. The array is malloc'd; the
 * strings point into r. */
lfm_chat_msg *tg_oai_chat_msgs(const tg_oai_request *r);

/* ------------------------------------------------------------- builders -- */

/* {"error":{"message","type","param","code"}} */
void tg_oai_error_json(tg_buf *out, const tg_oai_error *e);

typedef struct {
    int prompt_tokens;
    int completion_tokens;
} tg_oai_usage;

/* "stop" | "length" | "tool_calls" | NULL (canceled/error has no OpenAI name;
 * callers map those to an error). */
const char *tg_oai_finish_reason(int lfm_finish, bool has_tool_calls);

/* Writes "chatcmpl-" + 24 random hex characters (out holds >= 40 bytes). */
void tg_oai_new_id(const char *prefix, char *out, size_t cap);

/* The tool_calls array: [{"id","type":"function","function":{"name","arguments"}}].
 * ids are generated ("call_<hex>"). When `index` is true each entry gets an
 * "index" field (the streaming delta form). */
void tg_oai_tool_calls_json(tg_buf *out, const lfm_tool_call *calls, size_t n, bool index);

/* One entry of a choice's logprobs.content array (no separating comma):
 * {"token","logprob","bytes","top_logprobs":[{"token","logprob","bytes"}]}
 * from an LFM_EV_TOKEN event. */
void tg_oai_logprob_entry(tg_buf *out, const lfm_tokenizer *t, const lfm_event *ev);

/* A full non-streaming chat.completion. logprobs_content is a ready JSON
 * array for choices[0].logprobs.content, or NULL for "logprobs":null. content may be NULL (JSON
 * null); tool_calls_json is a ready JSON array or NULL. */
void tg_oai_completion_json(tg_buf *out, const char *id, int64_t created, const char *model,
                            const char *content, size_t content_len, const char *tool_calls_json,
                            const char *finish_reason, const tg_oai_usage *usage,
                            const char *logprobs_content);

/* One chat.completion.chunk. Any of role / content / tool_calls_json may be
 * NULL (left out of the delta); finish_reason NULL gives JSON null. When
 * usage_only is set the chunk has "choices":[] and the usage object. */
typedef struct {
    const char *role;
    const char *content;
    size_t content_len;
    const char *tool_calls_json;
    const char *finish_reason;
    const tg_oai_usage *usage; /* with usage_only */
    bool usage_only;
    const char *logprobs_content; /* JSON array, or NULL for "logprobs":null */
} tg_oai_chunk;
void tg_oai_chunk_json(tg_buf *out, const char *id, int64_t created, const char *model,
                       const tg_oai_chunk *c);

/* {"object":"list","data":[{"id","object":"model","created","owned_by"}...]} */
void tg_oai_models_json(tg_buf *out, const char *const *ids, const char *const *owners, size_t n,
                        int64_t created);

#endif
