/* openai_api: the OpenAI chat-completions wire format, both directions.
 *
 * Parsing turns an untrusted JSON body into one tg_oai_request (the
 * router's input, router/request.h) with every
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
#include "router/request.h"

/* Limits on what one request may carry (beyond the HTTP body limit). */
#define TG_OAI_MAX_MESSAGES 4096
#define TG_OAI_MAX_STOP     16
#define TG_OAI_MAX_STOP_LEN 256
#define TG_OAI_MAX_TOOLS    128
#define TG_OAI_JSON_DEPTH   64
#define TG_OAI_MAX_BIAS     1024 /* logit_bias entries */

/* Parses a structured-output format object: chat's response_format
 * ({"type", "json_schema": {"name", "schema", "strict"}}) when nested is
 * true, the Responses API's text.format ({"type", "name", "schema",
 * "strict"}) when false. Sets rf_kind / rf_schema. param names the field
 * in errors. */
int tg_oai_parse_format(json_object *v, bool nested, const char *param, tg_oai_request *r,
                        tg_oai_error *e);

/* Parses and validates a chat-completions body. Returns 0, or -1 with *err
 * filled (status 400). *out must be freed with tg_oai_request_free either way. */
int tg_oai_parse_request(const char *body, size_t len, tg_oai_request *out, tg_oai_error *err);

/* ------------------------------------------------------------- builders -- */

/* {"error":{"message","type","param","code"}} */
void tg_oai_error_json(tg_buf *out, const tg_oai_error *e);

/* The HTTP server's error formatter (tg_http_opts.error_body): the answers
 * the server makes itself in the same OpenAI error JSON, type
 * "invalid_request_error" for 4xx and "server_error" for 5xx, param null. */
const char *tg_oai_http_error(tg_buf *out, int status, const char *code, const char *message);

typedef struct {
    int prompt_tokens;
    int completion_tokens;
    int cached_tokens; /* of prompt_tokens, restored from the engine's prefix cache */
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
/* Same with the message's reasoning_content (thinking models; NULL = left
 * out of the message). */
void tg_oai_completion_json_r(tg_buf *out, const char *id, int64_t created, const char *model,
                              const char *content, size_t content_len, const char *reasoning,
                              size_t reasoning_len, const char *tool_calls_json,
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
    const char *logprobs_content;  /* JSON array, or NULL for "logprobs":null */
    const char *reasoning_content; /* thinking models' reasoning delta, or NULL */
    size_t reasoning_len;
} tg_oai_chunk;
void tg_oai_chunk_json(tg_buf *out, const char *id, int64_t created, const char *model,
                       const tg_oai_chunk *c);

/* {"object":"list","data":[{"id","object":"model","created","owned_by"}...]} */
void tg_oai_models_json(tg_buf *out, const char *const *ids, const char *const *owners, size_t n,
                        int64_t created);

#endif
