/* api_chat: POST /v1/chat/completions.
 *
 * The way through: parse and validate the body (openai_api), ask dispatch
 * for a plan, hand the request to the plan's target (the router's engine
 * target, router/engine_target.c: template, tokenizer, context check,
 * scheduler; a full queue -> 429), then either stream SSE chunks as text
 * events arrive or collect the text and answer once. A client that goes
 * away detaches the run, which cancels generation at the next token.
 *
 * With tools, text that may be a tool call is held back: the streaming path
 * forwards plain text as it comes but keeps anything that could be the
 * start of <|tool_call_start|>; once the marker appears everything after it
 * is buffered and parsed at the end into tool_calls deltas.
 *
 * LFM2.5 (a thinking model): the output's leading <think>...</think> is
 * split off as it streams (lfm_think) and sent as reasoning_content deltas
 * (streaming) or the message's reasoning_content; content carries only the
 * answer. `include_reasoning: false` drops the reasoning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "common/tg_log.h"
#include "gateway/api/api_routes.h"
#include "gateway/api/openai_api.h"
#include "gateway/api/sse.h"
#include "gateway/api/toolstream.h"

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

    tg_buf text;            /* non-streaming: the whole output */
    tg_buf lp;              /* logprobs: content entries not yet sent, comma-separated */
    bool lp_any;            /* lp holds at least one entry */
    tg_toolstream ts;       /* streaming with tools: what may be a tool call */
    bool think;             /* LFM2.5: <think>...</think> goes to reasoning_content */
    bool exclude_reasoning; /* include_reasoning: false */
    lfm_think th;
    tg_buf reasoning; /* non-streaming: the whole reasoning */

    bool linked;
    tg_chat *prev, *next;
};

/* ------------------------------------------------------------ lifetime -- */

static void chat_link(tg_api *api, tg_chat *c) {
    c->next = api->chats;
    if (api->chats) api->chats->prev = c;
    api->chats = c;
    api->n_chats++;
    c->linked = true;
}

static void chat_unlink(tg_chat *c) {
    if (!c->linked) return;
    tg_api *api = c->api;
    if (c->prev)
        c->prev->next = c->next;
    else
        api->chats = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    api->n_chats--;
    c->linked = false;
}

static void chat_free(tg_chat *c) {
    chat_unlink(c);
    tg_oai_request_free(&c->oai);
    tg_buf_free(&c->text);
    tg_buf_free(&c->lp);
    tg_toolstream_free(&c->ts);
    lfm_think_free(&c->th);
    tg_buf_free(&c->reasoning);
    free(c);
}

/* Ends the exchange with an error before any response was started. */
static void chat_fail(tg_chat *c, int status, const char *type, const char *code, const char *param,
                      const char *msg) {
    tg_api_error(c->api, c->ex, status, type, code, param, "%s", msg);
    chat_free(c);
}

/* ------------------------------------------------------------ streaming -- */

/* The logprobs entries gathered since the last chunk as a JSON array, or
 * NULL when the request did not ask for logprobs. Clears the gathered
 * entries; *arr is the caller's to free. */
static const char *take_logprobs(tg_chat *c, tg_buf *arr) {
    if (!c->logprobs) return NULL;
    tg_buf_putc(arr, '[');
    if (c->lp_any) tg_buf_append(arr, c->lp.data, c->lp.len);
    tg_buf_putc(arr, ']');
    tg_buf_clear(&c->lp);
    c->lp_any = false;
    return arr->data;
}

static void send_chunk(tg_chat *c, const tg_oai_chunk *k) {
    tg_buf j = TG_BUF_INIT, ev = TG_BUF_INIT, lp = TG_BUF_INIT;
    tg_oai_chunk kk = *k;
    /* Streamed logprobs ride on the next content or finish chunk after
     * their tokens (text can be held back across tokens). */
    if (!k->usage_only && !k->role && (k->content_len || k->finish_reason || k->tool_calls_json))
        kk.logprobs_content = take_logprobs(c, &lp);
    tg_oai_chunk_json(&j, c->id, c->created, c->plan.response_model, &kk);
    tg_buf_free(&lp);
    tg_sse_data(&ev, j.data, j.len);
    /* -1 means the client is gone; on_abort cleans up, nothing to do here. */
    (void)tg_http_stream_write(c->ex, ev.data, ev.len);
    tg_buf_free(&j);
    tg_buf_free(&ev);
}

static void send_content(tg_chat *c, const char *s, size_t n) {
    if (n == 0) return;
    tg_oai_chunk k = {.content = s, .content_len = n};
    send_chunk(c, &k);
}

/* Streaming with tools: forward what cannot be part of a tool call. */
static void stream_tool_text(tg_chat *c, const char *s, size_t n) {
    tg_buf now = TG_BUF_INIT;
    tg_toolstream_push(&c->ts, s, n, &now);
    send_content(c, now.data, now.len);
    tg_buf_free(&now);
}

/* -------------------------------------------------------- engine events -- */

/* A sampled token with its logprobs (requests with logprobs only). The EOG
 * token that ends the answer is not part of the content: left out, as
 * OpenAI does. */
static void on_token(void *user, const lfm_event *ev) {
    tg_chat *c = user;
    if (ev->eog) return;
    if (c->lp_any) tg_buf_putc(&c->lp, ',');
    tg_oai_logprob_entry(&c->lp, c->api->engine.tok, ev);
    c->lp_any = true;
}

/* Answer text (after any reasoning): collected, or streamed as content. */
static void take_answer(tg_chat *c, const char *s, size_t n) {
    if (n == 0) return;
    if (!c->stream) {
        tg_buf_append(&c->text, s, n);
        return;
    }
    if (c->tools)
        stream_tool_text(c, s, n);
    else
        send_content(c, s, n);
}

/* Thinking models: split the reasoning off (lfm_think) and send it as
 * reasoning_content; final = the output has ended. */
static void take_think(tg_chat *c, const char *s, size_t n, bool final) {
    tg_buf r = TG_BUF_INIT, a = TG_BUF_INIT;
    tg_buf *rp = c->exclude_reasoning ? NULL : &r;
    if (final)
        lfm_think_flush(&c->th, rp, &a);
    else
        lfm_think_push(&c->th, s, n, rp, &a);
    if (r.len && !c->stream) {
        tg_buf_append(&c->reasoning, r.data, r.len);
    } else if (r.len) {
        tg_oai_chunk k = {.reasoning_content = r.data, .reasoning_len = r.len};
        send_chunk(c, &k);
    }
    take_answer(c, a.data, a.len);
    tg_buf_free(&r);
    tg_buf_free(&a);
}

static void on_text(void *user, const lfm_event *ev) {
    tg_chat *c = user;
    if (!c->got_text) {
        c->got_text = true;
        tg_metrics_observe(c->api->std.ttft, ev->ttft_ms / 1000.0);
    }
    /* Kept current so an aborted or cut-off request still logs real counts. */
    tg_http_set_tokens(c->ex, c->n_prompt, ev->n_generated);
    if (c->think)
        take_think(c, ev->text, ev->len, false);
    else
        take_answer(c, ev->text, ev->len);
}

/* Parses tool calls out of text; on success fills content and the calls
 * JSON (NULL when there are none). */
static size_t parse_calls(const char *text, size_t len, tg_buf *content, tg_buf *calls_json,
                          bool stream_form) {
    lfm_tool_call *calls = NULL;
    size_t n = 0;
    int rc = lfm_parse_tool_calls(text, len, content, &calls, &n);
    if (rc <= 0 || n == 0) {
        /* No call, or a malformed one: the text goes back as plain content. */
        if (rc < 0) tg_log_warn("tool_call_unparsed", "bytes=%zu", len);
        tg_buf_clear(content);
        tg_buf_append(content, text, len);
        lfm_tool_calls_free(calls, n);
        return 0;
    }
    tg_oai_tool_calls_json(calls_json, calls, n, stream_form);
    lfm_tool_calls_free(calls, n);
    return n;
}

static void send_stream_error(tg_chat *c, const char *type, const char *code, const char *msg) {
    tg_oai_error e;
    tg_oai_error_set(&e, 500, type, code, NULL, "%s", msg);
    tg_buf j = TG_BUF_INIT, ev = TG_BUF_INIT;
    tg_oai_error_json(&j, &e);
    tg_sse_data(&ev, j.data, j.len);
    (void)tg_http_stream_write(c->ex, ev.data, ev.len);
    tg_buf_free(&j);
    tg_buf_free(&ev);
}

static void finish_stream(tg_chat *c, const lfm_event *ev) {
    tg_oai_usage usage = {ev->n_prompt, ev->n_generated};
    const char *reason = NULL;
    if (ev->finish == LFM_FINISH_ERROR || ev->finish == LFM_FINISH_CANCELED) {
        send_stream_error(c, "server_error",
                          ev->finish == LFM_FINISH_ERROR ? "engine_error" : "canceled",
                          ev->error ? ev->error : "generation was canceled");
    } else {
        bool has_calls = false;
        size_t held_len;
        const char *held = tg_toolstream_held(&c->ts, &held_len);
        if (c->tools && held_len) {
            tg_buf content = TG_BUF_INIT, calls = TG_BUF_INIT;
            has_calls = parse_calls(held, held_len, &content, &calls, true) > 0;
            send_content(c, content.data, content.len);
            if (has_calls) {
                tg_oai_chunk k = {.tool_calls_json = calls.data};
                send_chunk(c, &k);
            }
            tg_buf_free(&content);
            tg_buf_free(&calls);
        }
        reason = tg_oai_finish_reason(ev->finish, has_calls);
        tg_oai_chunk fin = {.finish_reason = reason};
        send_chunk(c, &fin);
        if (c->include_usage) {
            tg_oai_chunk u = {.usage_only = true, .usage = &usage};
            send_chunk(c, &u);
        }
        tg_buf d = TG_BUF_INIT;
        tg_sse_done(&d);
        (void)tg_http_stream_write(c->ex, d.data, d.len);
        tg_buf_free(&d);
    }
    tg_http_stream_end(c->ex);
}

static void finish_once(tg_chat *c, const lfm_event *ev) {
    if (ev->finish == LFM_FINISH_ERROR) {
        tg_api_error(c->api, c->ex, 500, "server_error", "engine_error", NULL, "%s",
                     ev->error ? ev->error : "engine error");
        return;
    }
    if (ev->finish == LFM_FINISH_CANCELED) {
        tg_api_error(c->api, c->ex, 503, "server_error", "canceled", NULL,
                     "generation was canceled (server shutting down)");
        return;
    }
    tg_oai_usage usage = {ev->n_prompt, ev->n_generated};
    tg_buf content = TG_BUF_INIT, calls = TG_BUF_INIT, body = TG_BUF_INIT;
    bool has_calls = false;
    if (c->tools && c->text.len)
        has_calls = parse_calls(c->text.data, c->text.len, &content, &calls, false) > 0;
    else
        tg_buf_append(&content, c->text.data ? c->text.data : "", c->text.len);
    const char *text = content.data ? content.data : "";
    tg_buf lp = TG_BUF_INIT;
    tg_oai_completion_json_r(&body, c->id, c->created, c->plan.response_model,
                             has_calls && content.len == 0 ? NULL : text, content.len,
                             c->reasoning.len ? c->reasoning.data : NULL, c->reasoning.len,
                             has_calls ? calls.data : NULL,
                             tg_oai_finish_reason(ev->finish, has_calls), &usage,
                             take_logprobs(c, &lp));
    tg_buf_free(&lp);
    tg_http_respond(c->ex, 200, "application/json", body.data, body.len);
    tg_buf_free(&content);
    tg_buf_free(&calls);
    tg_buf_free(&body);
}

static void on_done(void *user, const lfm_event *ev) {
    tg_chat *c = user;
    c->run = NULL; /* the target frees it after this returns */
    tg_http_set_tokens(c->ex, ev->n_prompt, ev->n_generated);
    if (c->think) take_think(c, NULL, 0, true); /* what was held back */
    if (c->stream)
        finish_stream(c, ev);
    else
        finish_once(c, ev);
    chat_free(c);
}

/* The client went away: stop the engine at its next token and free. */
static void on_abort(void *arg) {
    tg_chat *c = arg;
    rt_engine_detach(c->run);
    c->run = NULL;
    if (c->started && c->stream)
        tg_http_stream_end(c->ex);
    else
        tg_http_respond(c->ex, 499, "text/plain", "", 0); /* frees only; nothing is sent */
    chat_free(c);
}

/* ------------------------------------------------------------ targets -- */

/* The target failed before starting. */
static void on_error(void *user, const tg_oai_error *e) {
    tg_chat *c = user;
    c->run = NULL; /* the target frees it after this returns */
    if (e->status == 429) tg_http_add_header(c->ex, "Retry-After", "1");
    chat_fail(c, e->status, e->type, e->code, e->param, e->message);
}

/* The target took the job: the response begins. */
static void on_start(void *user, int n_prompt) {
    tg_chat *c = user;
    c->started = true;
    c->n_prompt = n_prompt;
    tg_http_set_route(c->ex, c->plan.targets[0].name);
    tg_http_add_header(c->ex, "x-tidegate-route", c->plan.targets[0].name);
    tg_http_add_header(c->ex, "x-tidegate-reason", c->plan.reason);
    if (c->stream) {
        tg_http_add_header(c->ex, "Cache-Control", "no-cache");
        tg_http_add_header(c->ex, "X-Accel-Buffering", "no");
        tg_http_stream_begin(c->ex, 200, "text/event-stream; charset=utf-8");
        tg_oai_chunk first = {.role = "assistant", .content = "", .content_len = 0};
        send_chunk(c, &first);
    }
}

/* Hands the request to the router's engine target. */
static void run_engine(tg_chat *c) {
    tg_api *api = c->api;
    static const rt_engine_cbs cbs = {on_error, on_start, on_text, on_done, on_token};
    tg_oai_error e;
    if (api->engine.model && lfm_model_is_lfm25(api->engine.model)) {
        c->think = true;
        lfm_think_init(&c->th, rt_engine_opens_think(&api->engine));
    }
    if (rt_engine_run_start(&api->engine, &c->oai, &cbs, c, &c->run, &e) < 0) {
        chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    chat_link(api, c);
    tg_http_set_on_abort(c->ex, on_abort, c);
}

void tg_api_chat(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_chat *c = calloc(1, sizeof *c);
    if (!c) abort();
    tg_toolstream_init(&c->ts);
    lfm_think_init(&c->th, false);
    c->api = api;
    c->ex = ex;
    c->req = req;
    if (api->draining) {
        chat_fail(c, 503, "server_error", "draining", NULL, "the server is shutting down");
        return;
    }
    tg_oai_error e;
    if (tg_oai_parse_request(req->body, req->body_len, &c->oai, &e) < 0) {
        chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    rt_request_info info = {
        .model = c->oai.model,
        .has_tools = c->oai.tools_json != NULL,
        .prompt_tokens = -1,
        .max_tokens = c->oai.has_max_tokens ? c->oai.max_tokens : 0,
    };
    if (rt_dispatch_plan(&api->dispatch, &info, &c->plan) < 0) {
        const tg_oai_error *pe = &c->plan.err;
        chat_fail(c, pe->status, pe->type, pe->code, pe->param, pe->message);
        return;
    }
    tg_oai_new_id("chatcmpl-", c->id, sizeof c->id);
    c->created = (int64_t)time(NULL);
    c->stream = c->oai.stream;
    c->include_usage = c->oai.include_usage;
    c->logprobs = c->oai.logprobs;
    c->exclude_reasoning = c->oai.exclude_reasoning;
    c->tools = c->oai.tools_json != NULL;
    tg_log_debug("chat_plan", "request_id=%s target=%s reason=\"%s\"", req->request_id,
                 c->plan.targets[0].name, c->plan.reason);
    /* Only the engine exists today; the cloud target and failover to the
     * next target on an error before the first token arrive with routing. */
    switch (c->plan.targets[0].kind) {
    case RT_TARGET_ENGINE: run_engine(c); return;
    case RT_TARGET_CLOUD: break;
    }
    chat_fail(c, 503, "server_error", "cloud_unavailable", "model", "no cloud upstream configured");
}

void tg_api_chat_end_all(tg_api *api, const char *why) {
    while (api->chats) {
        tg_chat *c = api->chats;
        chat_unlink(c);
        rt_engine_detach(c->run);
        c->run = NULL;
        if (c->started && c->stream) {
            send_stream_error(c, "server_error", "server_shutting_down", why);
            tg_http_stream_end(c->ex);
        } else {
            tg_api_error(api, c->ex, 503, "server_error", "server_shutting_down", NULL, "%s", why);
        }
        chat_free(c);
    }
}
