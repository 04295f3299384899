/* chat_output: what the client of a request sees, whatever target answers:
 * the response head (sent with the first token, with the x-tidegate-route,
 * -reason, -score and -failover headers), streamed chunks with their
 * logprobs, the final chunk (with the mid-stream failover note), usage and
 * [DONE], or the answer in one piece (sent once COMPLETED is durable when
 * the request is journaled), and the error event that ends a stream that
 * cannot go on. The Responses and completions shapes are api_responses.c;
 * the plan runner and the engine target are api_chat.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api/api_journal.h"
#include "gateway/api/chat_internal.h"
#include "gateway/api/chat_resume.h"
#include "gateway/api/reqstore.h"

/* ------------------------------------------------------------ the head -- */

/* The first token is here (or the answer, when not streamed): from now on
 * the target that produced it is the route, and a later failure is a
 * mid-stream one. */
static void first_token(tg_chat *c) {
    const rt_target *t = tg_chat_target(c);
    if (c->token_out) {
        if (c->continuing && c->mid_ms == 0) {
            c->mid_ms = tg_chat_ms_since(c->fault_ns);
            tg_metrics_observe(c->api->rtm.failover_seconds, c->mid_ms / 1000.0, "midstream");
        }
        return;
    }
    c->token_out = true;
    snprintf(c->route, sizeof c->route, "%s", t ? t->name : "-");
    if (t && t->kind == RT_TARGET_CLOUD && c->up)
        snprintf(c->model_out, sizeof c->model_out, "%s", c->up->model);
    else if (c->api->dispatch.engine_model_id)
        snprintf(c->model_out, sizeof c->model_out, "%s", c->api->dispatch.engine_model_id);
    tg_metrics_add(c->api->rtm.decisions, 1, c->route);
    if (c->fault_ns) {
        double ms = tg_chat_ms_since(c->fault_ns);
        size_t n = strlen(c->failover);
        snprintf(c->failover + n, sizeof c->failover - n, "; ms=%.0f", ms);
        tg_metrics_observe(c->api->rtm.failover_seconds, ms / 1000.0, "before_first_token");
    }
}

/* Every event carries its number (chat_resume.c: journaled ones are sent
 * once durable). */
static void send_raw_chunk(tg_chat *c, tg_buf *j) {
    tg_cres_event(c, j->data, j->len);
}

/* The logprobs entries gathered since the last chunk as a JSON array, or
 * NULL when the request did not ask for logprobs. Clears the gathered
 * entries; *arr is the caller's to free. (The engine's tokens add
 * entries in on_token, a cloud upstream's in chat_cloud.c.) */
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
    tg_buf j = TG_BUF_INIT, lp = TG_BUF_INIT;
    tg_oai_chunk kk = *k;
    /* Streamed logprobs ride on the next content or finish chunk after
     * their tokens (text can be held back across tokens). */
    if (!k->usage_only && !k->role && (k->content_len || k->finish_reason || k->tool_calls_json))
        kk.logprobs_content = take_logprobs(c, &lp);
    tg_oai_chunk_json(&j, c->id, c->created, c->model_out, &kk);
    tg_buf_free(&lp);
    send_raw_chunk(c, &j);
    tg_buf_free(&j);
}

static void add_route_headers(tg_chat *c) {
    const char *route =
        c->route[0] ? c->route : (tg_chat_target(c) ? tg_chat_target(c)->name : "-");
    tg_http_set_route(c->ex, route);
    tg_http_add_header(c->ex, "x-tidegate-route", route);
    tg_http_add_header(c->ex, "x-tidegate-reason", c->plan.reason);
    if (c->plan.scored) {
        char sc[16];
        snprintf(sc, sizeof sc, "%.3f", c->plan.score);
        tg_http_add_header(c->ex, "x-tidegate-score", sc);
    }
    if (c->failover[0]) tg_http_add_header(c->ex, "x-tidegate-failover", c->failover);
    if (c->journaled) tg_http_add_header(c->ex, "x-tidegate-request-id", c->rid);
}

static void start_stream(tg_chat *c) {
    if (c->started) return;
    c->started = true;
    if (!c->defer_head) { /* a deferred stream's head went out while it waited */
        add_route_headers(c);
        tg_http_add_header(c->ex, "Cache-Control", "no-cache");
        tg_http_add_header(c->ex, "X-Accel-Buffering", "no");
        tg_http_stream_begin(c->ex, 200, "text/event-stream; charset=utf-8");
    } else {
        tg_http_set_route(c->ex, c->route);
    }
    tg_cres_adopt(c);
    if (c->mode == TG_CHAT_RESPONSES) {
        tg_resp_stream_start(c);
    } else if (c->mode == TG_CHAT_CHAT) {
        tg_oai_chunk first = {.role = "assistant", .content = "", .content_len = 0};
        send_chunk(c, &first);
    }
}

void tg_chat_emit_text(tg_chat *c, const char *s, size_t n) {
    if (n == 0) return;
    c->n_sent_chunks++;
    first_token(c);
    start_stream(c);
    tg_buf_append(&c->sent, s, n);
    if (c->mode == TG_CHAT_RESPONSES) {
        tg_resp_stream_text(c, s, n);
        return;
    }
    if (c->mode == TG_CHAT_COMPLETIONS) {
        tg_cmpl_stream_text(c, s, n);
        return;
    }
    tg_oai_chunk k = {.content = s, .content_len = n};
    send_chunk(c, &k);
}

void tg_chat_emit_reasoning(tg_chat *c, const char *s, size_t n) {
    /* Completions have no place for it: kept out of the text all the same. */
    if (n == 0 || c->mode == TG_CHAT_COMPLETIONS) return;
    first_token(c);
    start_stream(c);
    if (c->mode == TG_CHAT_RESPONSES) {
        tg_resp_stream_reasoning(c, s, n);
        return;
    }
    tg_oai_chunk k = {.reasoning_content = s, .reasoning_len = n};
    send_chunk(c, &k);
}

void tg_chat_emit_tool_calls(tg_chat *c, const char *json) {
    first_token(c);
    start_stream(c);
    c->tool_out = true;
    if (c->mode != TG_CHAT_CHAT) { /* sent with the final events */
        tg_resp_tool_calls(c, json);
        return;
    }
    if (c->journaled) { /* merged into the stored result */
        if (!c->tacc) c->tacc = tg_toolacc_new();
        tg_toolacc_add(c->tacc, json, strlen(json));
    }
    tg_oai_chunk k = {.tool_calls_json = json};
    send_chunk(c, &k);
}

void tg_chat_stream_error(tg_chat *c, const char *type, const char *code, const char *msg) {
    if (c->mode == TG_CHAT_RESPONSES) {
        tg_resp_stream_error(c, code, msg);
        return;
    }
    /* A journaled stream's error event comes from its FAILED record. */
    if (c->durable) return;
    tg_oai_error e;
    tg_oai_error_set(&e, 500, type, code, NULL, "%s", msg);
    tg_buf j = TG_BUF_INIT, ev = TG_BUF_INIT;
    tg_oai_error_json(&j, &e);
    if (c->mode == TG_CHAT_CHAT) tg_cres_end_id(c, &ev);
    tg_sse_data(&ev, j.data, j.len);
    (void)tg_http_stream_write(c->ex, ev.data, ev.len);
    tg_buf_free(&j);
    tg_buf_free(&ev);
}

/* The final chunk, with a `tidegate` field when the stream changed target
 * on the way: {"failover":{"from","to","cause","ms","midstream":true}}. */
static void send_final_chunk(tg_chat *c, const char *finish_reason) {
    tg_buf j = TG_BUF_INIT, lp = TG_BUF_INIT;
    tg_oai_chunk fin = {.finish_reason = finish_reason, .logprobs_content = take_logprobs(c, &lp)};
    tg_oai_chunk_json(&j, c->id, c->created, c->model_out, &fin);
    tg_buf_free(&lp);
    if (c->mid_failover && j.len && j.data[j.len - 1] == '}') {
        j.len--; /* reopen the object */
        tg_buf_printf(
            &j,
            ",\"tidegate\":{\"failover\":{\"from\":\"%s\",\"to\":\"engine\",\"cause\":\"%s\","
            "\"ms\":%.0f,\"midstream\":true}}}",
            c->mid_from, rt_fail_cause_name(c->mid_cause), c->mid_ms);
    }
    send_raw_chunk(c, &j);
    tg_buf_free(&j);
}

static void end_event(tg_chat *c, bool ok, int status) {
    tg_chat_event(c, ok ? RT_EV_COMPLETED : RT_EV_FAILED, c->route[0] ? c->route : "-", NULL, NULL,
                  ok ? RT_FAIL_NONE : c->last_cause, c->mid_failover, tg_chat_ms_since(c->t0_ns),
                  status);
}

/* The final chunk and the usage chunk. */
static void send_tail_chunks(tg_chat *c) {
    send_final_chunk(c, c->fin_reason);
    if (c->include_usage && c->fin_has_usage) {
        tg_oai_chunk k = {.usage_only = true, .usage = &c->fin_usage};
        send_chunk(c, &k);
    }
}

/* The end of a stream not journaled: final chunk, usage, [DONE]; frees c. */
static void stream_tail(tg_chat *c) {
    send_tail_chunks(c);
    tg_buf d = TG_BUF_INIT;
    tg_cres_end_id(c, &d);
    tg_sse_done(&d);
    (void)tg_http_stream_write(c->ex, d.data, d.len);
    tg_buf_free(&d);
    tg_http_stream_end(c->ex);
    end_event(c, true, 200);
    tg_chat_free(c);
}

/* The stream's COMPLETED is durable (or failed): only now does the client
 * get [DONE], so a client that saw [DONE] finds the same result by id. */
static void on_stream_result_durable(void *user, int status) {
    tg_chat *c = user;
    c->finishing = false;
    if (c->durable) { /* its clients get [DONE] (or the error) from the journal */
        end_event(c, status == 0, 200);
        tg_chat_free(c);
        return;
    }
    if (c->gone) { /* the client left meanwhile: nothing to send */
        end_event(c, true, 499);
        tg_chat_free(c);
        return;
    }
    if (status != 0) {
        tg_chat_stream_error(c, "server_error", "journal_unavailable",
                             "the result could not be journaled");
        tg_http_stream_end(c->ex);
        end_event(c, false, 200);
        tg_chat_free(c);
        return;
    }
    stream_tail(c);
}

void tg_chat_finish_stream(tg_chat *c, const char *finish_reason, const tg_oai_usage *u) {
    first_token(c);
    start_stream(c);
    if (c->mode != TG_CHAT_CHAT) {
        if (c->mode == TG_CHAT_RESPONSES)
            tg_resp_finish(c, c->sent.data, c->sent.len, finish_reason, u);
        else
            tg_cmpl_finish(c, NULL, 0, finish_reason, u);
        tg_http_stream_end(c->ex);
        end_event(c, true, 200);
        tg_chat_free(c);
        return;
    }
    snprintf(c->fin_reason, sizeof c->fin_reason, "%s", finish_reason);
    c->fin_has_usage = u != NULL;
    if (u) c->fin_usage = *u;
    if (!c->journaled) {
        stream_tail(c);
        return;
    }
    /* A durable stream's last events are journaled before its result, so
     * they are durable when it is. */
    if (c->durable) send_tail_chunks(c);
    /* The stored result is the chat.completion a non-streamed call would
     * have got: the text sent, the tool calls merged, the usage. */
    tg_buf r = TG_BUF_INIT, calls = TG_BUF_INIT;
    bool has_calls = c->tacc && tg_toolacc_json(c->tacc, &calls);
    tg_oai_completion_json(&r, c->id, c->created, c->model_out,
                           has_calls && c->sent.len == 0 ? NULL
                                                         : (c->sent.data ? c->sent.data : ""),
                           c->sent.len, has_calls ? calls.data : NULL, finish_reason, u, NULL);
    tg_buf_free(&calls);
    c->finishing = true;
    if (tg_apij_finish(c->api, c->rid, TG_JREC_COMPLETED, r.data, r.len, on_stream_result_durable,
                       c) != 0)
        on_stream_result_durable(c, -EIO);
    tg_buf_free(&r);
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

void tg_chat_respond_durable(tg_chat *c, tg_buf *body, const char *payload, size_t len) {
    pending_result *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->api = c->api;
    p->ex = c->ex;
    p->body = *body;
    *body = (tg_buf)TG_BUF_INIT;
    tg_http_set_on_abort(p->ex, on_result_abort, p);
    if (!payload) {
        payload = p->body.data;
        len = p->body.len;
    }
    if (tg_apij_finish(c->api, c->rid, TG_JREC_COMPLETED, payload, len, on_result_durable, p) != 0)
        on_result_durable(p, -1);
}

void tg_chat_answer_once(tg_chat *c, const char *content, size_t len, const char *tool_calls_json,
                         const char *finish_reason, const tg_oai_usage *u) {
    first_token(c);
    add_route_headers(c);
    if (c->mode != TG_CHAT_CHAT) {
        if (c->mode == TG_CHAT_RESPONSES) {
            if (tool_calls_json) tg_resp_tool_calls(c, tool_calls_json);
            tg_resp_finish(c, content, len, finish_reason, u);
        } else {
            tg_cmpl_finish(c, content, len, finish_reason, u);
        }
        end_event(c, true, 200);
        tg_chat_free(c);
        return;
    }
    tg_buf body = TG_BUF_INIT, lp = TG_BUF_INIT;
    tg_oai_completion_json_r(&body, c->id, c->created, c->model_out, content, len,
                             c->reasoning.len ? c->reasoning.data : NULL, c->reasoning.len,
                             tool_calls_json, finish_reason, u, take_logprobs(c, &lp));
    tg_buf_free(&lp);
    if (c->journaled)
        tg_chat_respond_durable(c, &body, NULL, 0);
    else
        tg_http_respond(c->ex, 200, "application/json", body.data, body.len);
    tg_buf_free(&body);
    end_event(c, true, 200);
    tg_chat_free(c);
}

/* A stream that cannot go on: the error event, and no [DONE]. */
void tg_chat_end_with_error(tg_chat *c, const char *code, const char *msg) {
    if (c->journaled) tg_apij_end(c->api, c->rid, TG_JREC_FAILED, 500, "server_error", code, msg);
    tg_chat_stream_error(c, "server_error", code, msg);
    if (!c->durable) tg_http_stream_end(c->ex); /* else its subscriber ends it */
    end_event(c, false, 200);
    tg_chat_free(c);
}
