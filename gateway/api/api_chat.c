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
 * is buffered and parsed at the end into tool_calls deltas. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "common/tg_log.h"
#include "gateway/api/api_chat_impl.h"
#include "gateway/api/api_constrain.h"
#include "gateway/api/api_journal.h"
#include "gateway/api/api_routes.h"
#include "gateway/api/openai_api.h"
#include "gateway/api/sse.h"
#include "gateway/api/toolstream.h"

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
    tg_resp_req_free(&c->rx);
    tg_buf_free(&c->streamed);
    free(c);
}

/* Ends the exchange with an error before any response was started. */
void tg_chat_fail(tg_chat *c, int status, const char *type, const char *code, const char *param,
                  const char *msg) {
    if (c->journaled) tg_apij_end(c->api, c->rid, TG_JREC_FAILED, code ? code : type, msg);
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

/* Streamed text in the shape of the API that asked. */
static void emit_text(tg_chat *c, const char *s, size_t n) {
    if (n == 0) return;
    if (c->mode == TG_CHAT_RESPONSES)
        tg_resp_stream_text(c, s, n);
    else if (c->mode == TG_CHAT_COMPLETIONS)
        tg_cmpl_stream_text(c, s, n);
    else
        send_content(c, s, n);
}

/* Streaming with tools: forward what cannot be part of a tool call. */
static void stream_tool_text(tg_chat *c, const char *s, size_t n) {
    tg_buf now = TG_BUF_INIT;
    tg_toolstream_push(&c->ts, s, n, &now);
    emit_text(c, now.data, now.len);
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

static void on_text(void *user, const lfm_event *ev) {
    tg_chat *c = user;
    if (!c->got_text) {
        c->got_text = true;
        tg_metrics_observe(c->api->std.ttft, ev->ttft_ms / 1000.0);
    }
    /* Kept current so an aborted or cut-off request still logs real counts. */
    tg_http_set_tokens(c->ex, c->n_prompt, ev->n_generated);
    if (!c->stream) {
        tg_buf_append(&c->text, ev->text, ev->len);
        return;
    }
    if (c->tools)
        stream_tool_text(c, ev->text, ev->len);
    else
        emit_text(c, ev->text, ev->len);
}

size_t tg_chat_parse_calls(const char *text, size_t len, tg_buf *content, lfm_tool_call **calls_out,
                           bool parallel) {
    lfm_tool_call *calls = NULL;
    size_t n = 0;
    int rc = lfm_parse_tool_calls(text, len, content, &calls, &n);
    if (rc <= 0 || n == 0) {
        if (rc < 0) tg_log_warn("tool_call_unparsed", "bytes=%zu", len);
        tg_buf_clear(content);
        tg_buf_append(content, text, len);
        lfm_tool_calls_free(calls, n);
        *calls_out = NULL;
        return 0;
    }
    /* parallel_tool_calls false: the first call only. */
    for (size_t i = 1; !parallel && i < n; i++) {
        free(calls[i].name);
        free(calls[i].arguments_json);
        calls[i].name = calls[i].arguments_json = NULL;
    }
    *calls_out = calls;
    return parallel ? n : 1;
}

/* Parses tool calls out of text; on success fills content and the calls
 * JSON (NULL when there are none). */
static size_t parse_calls(const char *text, size_t len, tg_buf *content, tg_buf *calls_json,
                          bool stream_form, bool parallel) {
    lfm_tool_call *calls = NULL;
    size_t n = 0;
    int rc = lfm_parse_tool_calls(text, len, content, &calls, &n);
    if (rc > 0 && !parallel && n > 1) {
        for (size_t i = 1; i < n; i++) {
            free(calls[i].name);
            free(calls[i].arguments_json);
        }
        n = 1;
    }
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
        if (c->journaled)
            tg_apij_end(c->api, c->rid, TG_JREC_FAILED,
                        ev->finish == LFM_FINISH_ERROR ? "engine_error" : "canceled", ev->error);
        send_stream_error(c, "server_error",
                          ev->finish == LFM_FINISH_ERROR ? "engine_error" : "canceled",
                          ev->error ? ev->error : "generation was canceled");
    } else {
        bool has_calls = false;
        size_t held_len;
        const char *held = tg_toolstream_held(&c->ts, &held_len);
        if (c->tools && held_len) {
            tg_buf content = TG_BUF_INIT, calls = TG_BUF_INIT;
            has_calls = parse_calls(held, held_len, &content, &calls, true, c->parallel) > 0;
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
        if (c->journaled) {
            /* The streamed text itself is not journaled yet (resumable streams). */
            tg_buf r = TG_BUF_INIT;
            tg_buf_printf(
                &r,
                "{\"object\":\"chat.completion.stream\",\"id\":\"%s\",\"finish_reason\":\"%s\"}",
                c->id, reason);
            tg_apij_note(c->api, c->rid, TG_JREC_COMPLETED, r.data, r.len);
            tg_buf_free(&r);
        }
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

/* A journaled result is sent only once COMPLETED is durable: a client that
 * got a 200 finds the same result in the journal, even after a crash. */
typedef struct {
    tg_api *api;
    tg_http_exchange *ex; /* NULL once the client left */
    tg_buf body;
} pending_result;

static void on_result_abort(void *arg) {
    pending_result *p = arg;
    tg_http_respond(p->ex, 499, "text/plain", "", 0); /* frees only; nothing is sent */
    p->ex = NULL;
}

static void on_result_durable(void *user, int status) {
    pending_result *p = user;
    if (p->ex) {
        tg_http_set_on_abort(p->ex, NULL, NULL);
        if (status == 0)
            tg_http_respond(p->ex, 200, "application/json", p->body.data, p->body.len);
        else
            tg_api_error(p->api, p->ex, 503, "server_error", "journal_unavailable", NULL,
                         "the result could not be journaled");
    }
    tg_buf_free(&p->body);
    free(p);
}

static void respond_when_durable(tg_chat *c, tg_buf *body) {
    pending_result *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->api = c->api;
    p->ex = c->ex;
    p->body = *body;
    *body = (tg_buf)TG_BUF_INIT;
    tg_http_set_on_abort(p->ex, on_result_abort, p);
    if (tg_journal_append(c->api->journal, TG_JREC_COMPLETED, c->rid, p->body.data, p->body.len,
                          on_result_durable, p) != 0)
        on_result_durable(p, -1);
}

static void finish_once(tg_chat *c, const lfm_event *ev) {
    if (c->journaled && (ev->finish == LFM_FINISH_ERROR || ev->finish == LFM_FINISH_CANCELED))
        tg_apij_end(c->api, c->rid, TG_JREC_FAILED,
                    ev->finish == LFM_FINISH_ERROR ? "engine_error" : "canceled", ev->error);
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
        has_calls =
            parse_calls(c->text.data, c->text.len, &content, &calls, false, c->parallel) > 0;
    else
        tg_buf_append(&content, c->text.data ? c->text.data : "", c->text.len);
    const char *text = content.data ? content.data : "";
    tg_buf lp = TG_BUF_INIT;
    tg_oai_completion_json(
        &body, c->id, c->created, c->plan.response_model,
        has_calls && content.len == 0 ? NULL : text, content.len, has_calls ? calls.data : NULL,
        tg_oai_finish_reason(ev->finish, has_calls), &usage, take_logprobs(c, &lp));
    tg_buf_free(&lp);
    if (c->journaled)
        respond_when_durable(c, &body);
    else
        tg_http_respond(c->ex, 200, "application/json", body.data, body.len);
    tg_buf_free(&content);
    tg_buf_free(&calls);
    tg_buf_free(&body);
}

static void on_done(void *user, const lfm_event *ev) {
    tg_chat *c = user;
    c->run = NULL; /* the target frees it after this returns */
    tg_http_set_tokens(c->ex, ev->n_prompt, ev->n_generated);
    if (c->mode == TG_CHAT_RESPONSES)
        tg_resp_finish(c, ev);
    else if (c->mode == TG_CHAT_COMPLETIONS)
        tg_cmpl_finish(c, ev);
    else if (c->stream)
        finish_stream(c, ev);
    else
        finish_once(c, ev);
    chat_free(c);
}

/* The client went away: stop the engine at its next token and free. */
static void on_abort(void *arg) {
    tg_chat *c = arg;
    if (c->journaled) tg_apij_end(c->api, c->rid, TG_JREC_CANCELLED, "client_gone", NULL);
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
    tg_chat_fail(c, e->status, e->type, e->code, e->param, e->message);
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
        if (c->mode == TG_CHAT_RESPONSES) {
            tg_resp_stream_start(c);
        } else if (c->mode == TG_CHAT_CHAT) {
            tg_oai_chunk first = {.role = "assistant", .content = "", .content_len = 0};
            send_chunk(c, &first);
        }
    }
}

/* Hands the request to the router's engine target. */
static void run_engine(tg_chat *c) {
    tg_api *api = c->api;
    static const rt_engine_cbs cbs = {on_error, on_start, on_text, on_done, on_token};
    tg_oai_error e;
    /* Structured output / forced tool calls: compiled before any work. */
    const char *fp =
        c->mode == TG_CHAT_RESPONSES ? "text.format.schema" : "response_format.json_schema.schema";
    if (tg_api_constraint(api, &c->oai, fp, &c->oai.constraint, &e) < 0) {
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    if (rt_engine_run_start(&api->engine, &c->oai, &cbs, c, &c->run, &e) < 0) {
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    chat_link(api, c);
    tg_http_set_on_abort(c->ex, on_abort, c);
}

static void dispatch(tg_chat *c) {
    if (c->journaled) {
        tg_buf d = TG_BUF_INIT;
        tg_buf_puts(&d, "{\"target\":");
        tg_buf_json_str(&d, c->plan.targets[0].name, strlen(c->plan.targets[0].name));
        tg_buf_putc(&d, '}');
        tg_apij_note(c->api, c->rid, TG_JREC_DISPATCHED, d.data, d.len);
        tg_buf_free(&d);
    }
    /* Only the engine exists today; the cloud target and failover to the
     * next target on an error before the first token arrive with routing. */
    switch (c->plan.targets[0].kind) {
    case RT_TARGET_ENGINE: run_engine(c); return;
    case RT_TARGET_CLOUD: break;
    }
    tg_chat_fail(c, 503, "server_error", "cloud_unavailable", "model",
                 "no cloud upstream configured");
}

/* The client left while ACCEPTED was on its way to disk: answer (nothing
 * is sent), keep c until the append calls back. */
static void on_abort_waiting(void *arg) {
    tg_chat *c = arg;
    c->gone = true;
    tg_http_respond(c->ex, 499, "text/plain", "", 0);
    c->ex = NULL;
}

static void on_accepted(void *user, int status) {
    tg_chat *c = user;
    c->jwait = false;
    if (c->gone) {
        if (status == 0) {
            c->journaled = true;
            tg_apij_end(c->api, c->rid, TG_JREC_CANCELLED, "client_gone", NULL);
        }
        chat_free(c);
        return;
    }
    if (status != 0) {
        tg_chat_fail(c, 503, "server_error", "journal_unavailable", NULL,
                     "the request could not be journaled; nothing was run");
        return;
    }
    c->journaled = true;
    dispatch(c);
}

tg_chat *tg_chat_new(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_chat *c = calloc(1, sizeof *c);
    if (!c) abort();
    tg_toolstream_init(&c->ts);
    c->api = api;
    c->ex = ex;
    c->req = req;
    return c;
}

void tg_api_chat(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_chat *c = tg_chat_new(api, ex, req);
    if (api->draining) {
        tg_chat_fail(c, 503, "server_error", "draining", NULL, "the server is shutting down");
        return;
    }
    tg_oai_error e;
    if (tg_oai_parse_request(req->body, req->body_len, &c->oai, &e) < 0) {
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    tg_chat_run(c);
}

void tg_chat_run(tg_chat *c) {
    tg_api *api = c->api;
    const tg_http_request *req = c->req;
    rt_request_info info = {
        .model = c->oai.model,
        .has_tools = c->oai.tools_json != NULL,
        .prompt_tokens = -1,
        .max_tokens = c->oai.has_max_tokens ? c->oai.max_tokens : 0,
    };
    if (rt_dispatch_plan(&api->dispatch, &info, &c->plan) < 0) {
        const tg_oai_error *pe = &c->plan.err;
        tg_chat_fail(c, pe->status, pe->type, pe->code, pe->param, pe->message);
        return;
    }
    tg_oai_new_id(c->mode == TG_CHAT_RESPONSES     ? "resp_"
                  : c->mode == TG_CHAT_COMPLETIONS ? "cmpl-"
                                                   : "chatcmpl-",
                  c->id, sizeof c->id);
    if (c->mode == TG_CHAT_RESPONSES) tg_oai_new_id("msg_", c->msg_id, sizeof c->msg_id);
    c->parallel = c->oai.parallel_tool_calls;
    c->created = (int64_t)time(NULL);
    c->stream = c->oai.stream;
    c->include_usage = c->oai.include_usage;
    c->logprobs = c->oai.logprobs;
    c->tools = c->oai.tools_json != NULL;
    tg_log_debug("chat_plan", "request_id=%s target=%s reason=\"%s\"", req->request_id,
                 c->plan.targets[0].name, c->plan.reason);
    /* The journal covers chat completions; Responses and completions are
     * not journaled yet. */
    if (!api->journal || c->mode != TG_CHAT_CHAT) {
        dispatch(c);
        return;
    }
    /* Nothing is dispatched (or promised) before ACCEPTED is durable. */
    snprintf(c->rid, sizeof c->rid, "%s", req->request_id ? req->request_id : c->id);
    c->jwait = true;
    tg_http_set_on_abort(c->ex, on_abort_waiting, c);
    if (tg_apij_accept(api, c->rid, "", req->body, req->body_len, on_accepted, c) != 0) {
        c->jwait = false;
        tg_chat_fail(c, 503, "server_error", "journal_unavailable", NULL,
                     "the request could not be journaled; nothing was run");
    }
}

void tg_api_chat_end_all(tg_api *api, const char *why) {
    while (api->chats) {
        tg_chat *c = api->chats;
        chat_unlink(c);
        rt_engine_detach(c->run);
        c->run = NULL;
        if (c->journaled) tg_apij_end(api, c->rid, TG_JREC_FAILED, "server_shutting_down", why);
        if (c->started && c->stream && c->mode == TG_CHAT_RESPONSES) {
            tg_resp_stream_error(c, "server_shutting_down", why);
            tg_http_stream_end(c->ex);
        } else if (c->started && c->stream) {
            send_stream_error(c, "server_error", "server_shutting_down", why);
            tg_http_stream_end(c->ex);
        } else {
            tg_api_error(api, c->ex, 503, "server_error", "server_shutting_down", NULL, "%s", why);
        }
        chat_free(c);
    }
}
