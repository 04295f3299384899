/* chat_internal: one request in flight, shared by the files that run it
 * (api_chat.c: intake, plan runner, engine target, client-facing output;
 * chat_cloud.c: the cloud target; api_responses.c: the Responses and
 * legacy completions output shapes). Not for other modules. */
#ifndef TG_CHAT_INTERNAL_H
#define TG_CHAT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "gateway/api/api_routes.h"
#include "gateway/api/openai_api.h"
#include "gateway/api/openai_responses.h"
#include "gateway/api/sse.h"
#include "gateway/api/toolstream.h"
#include "router/cascade.h"
#include "router/cloud.h"
#include "router/dispatch.h"
#include "router/engine_target.h"

#define TG_CHAT_ROUTE "/v1/chat/completions"

/* Which API asked: the targets and the plan are the same, the output shape
 * differs (api_responses.c writes the other two). */
typedef enum { TG_CHAT_CHAT = 0, TG_CHAT_RESPONSES, TG_CHAT_COMPLETIONS } tg_chat_mode;

struct tg_chat {
    tg_api *api;
    tg_http_exchange *ex;
    const tg_http_request *req; /* freed with the exchange (by the answer) */
    char req_id[64];            /* its request id, kept past that */
    tg_oai_request oai;
    rt_plan plan;
    rt_engine_run *run; /* the engine target's run, until it ends */

    char id[48];
    int64_t created;
    bool stream;
    bool include_usage;
    bool logprobs;
    bool tools; /* tools were offered: output may be a tool call */
    bool got_text;
    int n_prompt;

    tg_buf text;      /* non-streaming: the whole output */
    tg_buf lp;        /* logprobs: content entries not yet sent, comma-separated */
    bool lp_any;      /* lp holds at least one entry */
    tg_toolstream ts; /* streaming with tools: what may be a tool call */

    /* ---- LFM2.5 thinking: <think>...</think> goes to reasoning_content ---- */
    bool think;             /* the engine's output starts with reasoning */
    bool exclude_reasoning; /* include_reasoning: false */
    lfm_think th;           /* the splitter */
    tg_buf reasoning;       /* non-streaming: the whole reasoning */

    /* ---- the plan runner ---- */
    size_t attempt;              /* index of the running target in plan.targets */
    bool started;                /* response head sent (stream begun) */
    bool token_out;              /* a token reached the client (stream) / the answer exists */
    bool tool_out;               /* a tool-call delta went out or is held: no continuation */
    tg_buf sent;                 /* text the client already has (prompt of a continuation) */
    int n_sent_chunks;           /* content chunks sent (about one token each) */
    int n_cloud_chunks;          /* of those, sent before a mid-stream failover */
    char model_out[RT_NAME_MAX]; /* the "model" the client sees */
    char route[RT_NAME_MAX];     /* target that produced the first token */
    uint64_t t0_ns;              /* request accepted */
    uint64_t fault_ns;           /* first failure of this request (0 = none) */
    char failover[256];          /* x-tidegate-failover before the head, "" = none */
    char hop_from[RT_NAME_MAX];  /* the target of the pending failover hop */
    rt_fail_cause last_cause;
    int last_retry_after;
    /* a failover after the first token: reported in the final chunk */
    bool mid_failover;
    bool continuing; /* the engine continues from `sent` */
    char mid_from[RT_NAME_MAX];
    rt_fail_cause mid_cause;
    double mid_ms;

    /* ---- the cascade (plan.cascade on the first engine attempt) ---- */
    bool cascading;     /* judging the engine's first tokens; streamed text held */
    bool escalated;     /* the cascade handed the request to the cloud */
    rt_cascade_acc cas; /* their logprobs and entropies so far */
    tg_buf held;        /* streamed text held back while judging */
    bool lp_client;     /* the client asked for logprobs (the run may get more) */
    int lp_top_client;
    uint64_t engine_t0_ns; /* engine job submitted (tokens/s average) */

    /* ---- cloud target (chat_cloud.c) ---- */
    rt_cloud_call *call;
    rt_upstream *up;
    tg_sse_parser sse;
    bool sse_on;
    bool cloud_done_marker; /* [DONE] seen */
    char cloud_finish[24];
    bool cloud_usage;
    tg_oai_usage usage;
    tg_buf body; /* non-streamed answer */

    /* ---- the journal (api_journal.c) ---- */
    char rid[48];            /* the request id, the journal's key */
    bool journaled;          /* ACCEPTED is durable: the end must be journaled too */
    bool gone;               /* the client left while ACCEPTED (or COMPLETED) was on its way */
    bool finishing;          /* a stream's COMPLETED is on its way to disk */
    char scope[65];          /* the API key's hash ("" without keys) */
    char idem[256];          /* Idempotency-Key, "" = none */
    char body_sha[65];       /* SHA-256 of the body */
    struct tg_toolacc *tacc; /* streamed tool calls, merged for the stored result */
    bool recovered;          /* re-run after a restart: no client (ex NULL) */
    tg_http_request own_req; /* ... and its request (req points here) */
    tg_oai_usage fin_usage;  /* a finishing stream's usage */
    bool fin_has_usage;
    char fin_reason[24];
    /* ---- resumable streams (chat_resume.c) ---- */
    uint64_t ev_n;             /* number of the last SSE event (its id) */
    bool durable;              /* events are CHUNK records, sent once durable, to subscribers */
    struct tg_cres_flow *flow; /* bytes of events still on their way to disk */

    bool linked;
    tg_chat *prev, *next;

    /* ---- deferral (chat_defer.c): a cloud-only request waiting for the cloud ---- */
    int hint;                  /* x-tidegate-hint (-1, 0, 1): a re-plan has no headers */
    bool hint_known;           /* hint was read (header, or ACCEPTED after a restart) */
    bool deferred;             /* in the deferred queue */
    bool defer_recorded;       /* DEFERRED is journaled for this wait */
    bool defer_pending;        /* DEFERRED on its way to disk */
    bool defer_head;           /* a stream's head went out while it waited */
    uint64_t defer_t0_ms;      /* loop time its first wait began (the max wait) */
    uint64_t defer_ka_ms;      /* loop time the next keep-alive is due */
    uint64_t defer_created_us; /* ACCEPTED's time (the retention cap) */
    tg_chat *dprev, *dnext;

    /* ---- the API that asked (api_responses.c) ---- */
    tg_chat_mode mode;
    bool parallel;   /* parallel_tool_calls: false keeps the first call only */
    char *chat_body; /* the request in chat form when it came in another
                        shape (parsed again per target); NULL = req->body */
    size_t chat_body_len;
    char *raw_prompt;    /* TG_CHAT_COMPLETIONS: the prompt, no template */
    tg_resp_req rx;      /* TG_CHAT_RESPONSES: echo, store, history */
    char msg_id[48];     /* TG_CHAT_RESPONSES: the message item's id */
    int seq;             /* TG_CHAT_RESPONSES: event sequence number */
    bool msg_started;    /* TG_CHAT_RESPONSES: message item announced */
    char rs_id[48];      /* TG_CHAT_RESPONSES: the reasoning item's id, "" = none */
    bool rs_open;        /* TG_CHAT_RESPONSES stream: reasoning item announced, not done */
    json_object *rcalls; /* TG_CHAT_RESPONSES: tool calls so far (chat form, merged) */
};

/* api_chat.c, for chat_output.c, chat_defer.c and the cloud target */
void tg_chat_unlink(tg_chat *c); /* off the live list (api->chats) */
double tg_chat_ms_since(uint64_t t_ns);
rt_router *tg_chat_router(tg_chat *c);             /* NULL before the router is up */
const rt_target *tg_chat_target(const tg_chat *c); /* the running one, or NULL */
/* A router event about this request (admin state, metrics observers). */
void tg_chat_event(tg_chat *c, rt_event_kind kind, const char *target, const char *from,
                   const char *to, rt_fail_cause cause, bool mid, double ms, int status);

/* chat_output.c: an error event on the open stream (no [DONE]) / that,
 * then the end of the exchange (journaled FAILED; frees c). */
void tg_chat_stream_error(tg_chat *c, const char *type, const char *code, const char *msg);
void tg_chat_end_with_error(tg_chat *c, const char *code, const char *msg);
/* Journals COMPLETED (payload, or the body itself when NULL) and sends the
 * body (200) once that is durable; takes the body. */
void tg_chat_respond_durable(tg_chat *c, tg_buf *body, const char *payload, size_t len);

/* The target at plan.targets[attempt] failed before any token reached the
 * client: account it and run the next one (or answer the error). */
void tg_chat_attempt_failed(tg_chat *c, rt_fail_cause cause, int retry_after);
/* A failure after the first token: continue on the engine or end with an
 * error event, as the target's midstream rule and the state allow. */
void tg_chat_midstream_failed(tg_chat *c, rt_fail_cause cause);
/* Streams text / a tool_calls delta to the client (starts the response on
 * the first one). */
void tg_chat_emit_text(tg_chat *c, const char *s, size_t n);
void tg_chat_emit_tool_calls(tg_chat *c, const char *json);
/* Streams a reasoning_content delta (thinking models). */
void tg_chat_emit_reasoning(tg_chat *c, const char *s, size_t n);
/* Ends the stream (final chunk, usage, [DONE]) / answers once. */
void tg_chat_finish_stream(tg_chat *c, const char *finish_reason, const tg_oai_usage *u);
void tg_chat_answer_once(tg_chat *c, const char *content, size_t len, const char *tool_calls_json,
                         const char *finish_reason, const tg_oai_usage *u);
void tg_chat_free(tg_chat *c);
/* The client went away (arg: the chat): stop what runs, journal CANCELLED
 * (unless the result is on its way to disk), free. */
void tg_chat_on_abort(void *arg);

/* A new request record for ex (calloc'd, toolstream ready). */
tg_chat *tg_chat_new(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
/* Ends the exchange with an error before a response started; frees c. */
void tg_chat_fail(tg_chat *c, int status, const char *type, const char *code, const char *param,
                  const char *msg);
/* c->oai is parsed: plan, then run the targets (answers or fails). */
void tg_chat_run(tg_chat *c);
/* (Re)parses the request (chat_body or the client's body) into c->oai. */
int tg_chat_parse(tg_chat *c, tg_oai_error *e);

/* api_responses.c: the Responses and completions output. */
void tg_resp_stream_start(tg_chat *c);
void tg_resp_stream_text(tg_chat *c, const char *s, size_t n);
/* A reasoning delta (thinking models): the reasoning item, output 0, opens
 * on the first one and closes when the message or the end comes. */
void tg_resp_stream_reasoning(tg_chat *c, const char *s, size_t n);
void tg_resp_tool_calls(tg_chat *c, const char *json); /* chat-form calls or deltas */
void tg_resp_finish(tg_chat *c, const char *text, size_t len, const char *finish_reason,
                    const tg_oai_usage *u);
void tg_resp_stream_error(tg_chat *c, const char *code, const char *msg);
void tg_cmpl_stream_text(tg_chat *c, const char *s, size_t n);
void tg_cmpl_finish(tg_chat *c, const char *text, size_t len, const char *finish_reason,
                    const tg_oai_usage *u);

/* chat_cloud.c */
void tg_chat_run_cloud(tg_chat *c, rt_upstream *u);
void tg_chat_cloud_cancel(tg_chat *c);

#endif
