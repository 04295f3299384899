/* api_chat_impl: the engine-side request shared by chat completions,
 * the Responses API and legacy completions (api_chat.c runs it; the other
 * APIs' output shapes live in api_responses.c). Private to gateway/api. */
#ifndef TG_API_CHAT_IMPL_H
#define TG_API_CHAT_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "gateway/api/api_routes.h"
#include "gateway/api/openai_api.h"
#include "gateway/api/openai_responses.h"
#include "gateway/api/toolstream.h"

typedef enum { TG_CHAT_CHAT = 0, TG_CHAT_RESPONSES, TG_CHAT_COMPLETIONS } tg_chat_mode;

struct tg_chat {
    tg_api *api;
    tg_http_exchange *ex;
    const tg_http_request *req;
    tg_oai_request oai; /* until handed to the target */
    rt_plan plan;
    rt_engine_run *run; /* the engine target's run, until it ends */

    char id[48];
    int64_t created;
    bool stream;
    bool include_usage;
    bool logprobs;
    bool tools;   /* tools were offered: output may be a tool call */
    bool started; /* the target took the job: the response has begun */
    bool got_text;
    int n_prompt;

    tg_buf text;      /* non-streaming: the whole output */
    tg_buf lp;        /* logprobs: content entries not yet sent, comma-separated */
    bool lp_any;      /* lp holds at least one entry */
    tg_toolstream ts; /* streaming with tools: what may be a tool call */

    char rid[48];   /* the request id, the journal's key */
    bool journaled; /* ACCEPTED is durable: the end must be journaled too */
    bool jwait;     /* waiting for ACCEPTED to be durable */
    bool gone;      /* the client left during that wait */

    bool linked;
    tg_chat *prev, *next;

    bool parallel; /* parallel_tool_calls (the request goes to the target) */
    /* Which API asked: the output differs, the engine path is the same. */
    tg_chat_mode mode;
    tg_resp_req rx;   /* TG_CHAT_RESPONSES: echo, store, history */
    char msg_id[48];  /* TG_CHAT_RESPONSES: the message item's id */
    int seq;          /* TG_CHAT_RESPONSES: event sequence number */
    bool msg_started; /* TG_CHAT_RESPONSES: message item announced */
    tg_buf streamed;  /* TG_CHAT_RESPONSES: text sent so far */
};

/* A new request record for ex (calloc'd, toolstream ready). */
tg_chat *tg_chat_new(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
/* Ends the exchange with an error before a response started; frees c. */
void tg_chat_fail(tg_chat *c, int status, const char *type, const char *code, const char *param,
                  const char *msg);
/* c->oai is parsed: plan, then run the target (answers or fails). */
void tg_chat_run(tg_chat *c);
/* Parses tool calls out of text (see api_chat.c). */
size_t tg_chat_parse_calls(const char *text, size_t len, tg_buf *content, lfm_tool_call **calls_out,
                           bool parallel);

/* api_responses.c: the Responses and completions output. */
void tg_resp_stream_start(tg_chat *c);
void tg_resp_stream_text(tg_chat *c, const char *s, size_t n);
void tg_resp_finish(tg_chat *c, const lfm_event *ev); /* streamed or not */
void tg_resp_stream_error(tg_chat *c, const char *code, const char *msg);
void tg_cmpl_stream_text(tg_chat *c, const char *s, size_t n);
void tg_cmpl_finish(tg_chat *c, const lfm_event *ev);

#endif
