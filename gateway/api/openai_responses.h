/* openai_responses: the OpenAI Responses API wire format.
 *
 * Requests are translated to a chat-completions body (json-c) and then go
 * through the chat parser, so every field is validated once, in one place;
 * the translation is also what a cloud upstream that only speaks chat
 * completions needs. Responses-only fields (instructions, store,
 * previous_response_id, the Responses-shaped tools and text.format to echo
 * back) are kept in tg_resp_req.
 *
 * Builders write the response object and the streaming events
 * ("event: <type>\ndata: {...}\n\n", each with sequence_number). */
#ifndef TG_OPENAI_RESPONSES_H
#define TG_OPENAI_RESPONSES_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common/tg_buf.h"
#include "gateway/api/openai_api.h"

typedef struct tg_resp_store tg_resp_store;

typedef struct {
    bool store;         /* default true */
    char *previous_id;  /* previous_response_id, or NULL */
    char *history_json; /* chat messages of this turn's input (history
                           included, instructions left out) as JSON */
    json_object *echo;  /* fields echoed in the response object */
} tg_resp_req;

void tg_resp_req_free(tg_resp_req *x);

/* Responses body -> chat body. previous_response_id is looked up in st (may
 * be NULL). Returns 0 with *chat set (caller puts it), or -1 with *e set. */
int tg_resp_to_chat(json_object *body, tg_resp_store *st, json_object **chat, tg_resp_req *x,
                    tg_oai_error *e);

/* What one response holds, for the builders. */
typedef struct {
    const char *id, *msg_id, *model;
    int64_t created;
    const char *status;            /* completed | incomplete | failed | in_progress */
    const char *incomplete_reason; /* "max_output_tokens" or NULL */
    const char *error_code, *error_message;
    const char *text; /* NULL: no message item */
    size_t text_len;
    const char *rs_id;     /* the reasoning item (thinking models), output 0 */
    const char *reasoning; /* NULL: no reasoning item */
    size_t reasoning_len;
    const lfm_tool_call *calls;
    size_t n_calls;
    char (*call_ids)[48]; /* per call: "call_..." and "fc_..." ids */
    char (*item_ids)[48];
    const tg_oai_usage *usage; /* NULL: usage null */
    json_object *echo;
} tg_resp_view;

void tg_resp_object_json(tg_buf *out, const tg_resp_view *v);
/* One SSE event: event: type, data: obj with "type" and "sequence_number"
 * added. Takes ownership of obj. */
void tg_resp_event(tg_buf *out, const char *type, int *seq, json_object *obj);
/* The response object as json-c (for embedding in events). */
json_object *tg_resp_object(const tg_resp_view *v);
json_object *tg_resp_message_item(const tg_resp_view *v, const char *status);
/* {"type":"reasoning","summary":[],"content":[{"type":"reasoning_text",...}]}
 * (content empty while in_progress), as OpenAI shapes an open-weight
 * model's raw reasoning. */
json_object *tg_resp_reasoning_item(const tg_resp_view *v, const char *status);
json_object *tg_resp_call_item(const tg_resp_view *v, size_t i, const char *status, bool with_args);

/* ------------------------------------------------------------- store -- */

/* In memory, bounded (oldest evicted first); the journal may back it later. */
tg_resp_store *tg_resp_store_new(int cap);
void tg_resp_store_free(tg_resp_store *st);
/* Keeps response JSON and the conversation (chat messages JSON). Copies. */
void tg_resp_store_put(tg_resp_store *st, const char *id, const char *response_json,
                       const char *messages_json);
const char *tg_resp_store_response(tg_resp_store *st, const char *id);
const char *tg_resp_store_messages(tg_resp_store *st, const char *id);
bool tg_resp_store_delete(tg_resp_store *st, const char *id);
/* True when id was deleted and its tombstone is still in the ring. */
bool tg_resp_store_deleted(tg_resp_store *st, const char *id);

#endif
