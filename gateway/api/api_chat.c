/* api_chat: POST /v1/chat/completions.
 *
 * The way through: parse and validate the body (openai_api), ask dispatch
 * for a plan (an ordered list of targets), then run it: each target in turn
 * until one produces the answer. A failure before the first token reached
 * the client moves to the next target at once (an open breaker is skipped
 * without trying); the response head is only sent with the first token, so
 * the client never sees a failed attempt, only the x-tidegate-failover
 * header that explains it. A cloud failure after the first token continues
 * on the engine from the text already sent (one stream, one [DONE]), unless
 * a tool call was half emitted or the target's rule says error: then the
 * stream ends with an OpenAI-style error event.
 *
 * The engine target: render the LFM2 chat template and tokenize (thread
 * pool), submit to the scheduler through the bridge (full queue -> next
 * target, or 429), relay text events; a response_format or a forced tool
 * call is compiled into a constraint on the sampled tokens for each engine
 * run (api_constrain.c). The cloud target is chat_cloud.c; what the client
 * sees is written by chat_output.c (and, for /v1/responses and
 * /v1/completions, which enter through api_responses.c with the request in
 * chat form, in their shapes by api_responses.c).
 * A client that goes away cancels whatever runs (engine job or upstream
 * request).
 *
 * With tools, engine text that may be a tool call is held back: plain text
 * streams as it comes, anything that could start <|tool_call_start|> waits;
 * once the marker appears the rest is parsed at the end into tool_calls.
 *
 * LFM2.5 (a thinking model): the engine output's leading <think>...</think>
 * is split off as it arrives (lfm_think) and sent as reasoning_content
 * deltas (streaming) or the message's reasoning_content; content carries
 * only the answer. `include_reasoning: false` drops the reasoning. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tg_log.h"
#include "common/tg_str.h"
#include "gateway/api/api_constrain.h"
#include "gateway/api/api_journal.h"
#include "gateway/journal/tg_jcheck.h"
#include "gateway/api/auth.h"
#include "gateway/api/chat_defer.h"
#include "gateway/api/chat_internal.h"
#include "gateway/api/chat_resume.h"
#include "gateway/api/reqstore.h"
#include "router/reqfeat.h"

/* ------------------------------------------------------------ lifetime -- */

static void chat_link(tg_api *api, tg_chat *c) {
    if (c->linked) return;
    c->next = api->chats;
    if (api->chats) api->chats->prev = c;
    api->chats = c;
    api->n_chats++;
    c->linked = true;
}

void tg_chat_unlink(tg_chat *c) {
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

void tg_chat_free(tg_chat *c) {
    tg_defer_remove(c);
    tg_cres_free(c);
    tg_buf_free(&c->held);
    tg_chat_unlink(c);
    tg_chat_cloud_cancel(c);
    tg_oai_request_free(&c->oai);
    tg_buf_free(&c->text);
    tg_buf_free(&c->lp);
    tg_buf_free(&c->sent);
    tg_buf_free(&c->body);
    tg_toolstream_free(&c->ts);
    lfm_think_free(&c->th);
    tg_buf_free(&c->reasoning);
    tg_resp_req_free(&c->rx);
    free(c->chat_body);
    free(c->raw_prompt);
    json_object_put(c->rcalls);
    tg_toolacc_free(c->tacc);
    free(c);
}

double tg_chat_ms_since(uint64_t t_ns) {
    return (double)(uv_hrtime() - t_ns) / 1e6;
}

rt_router *tg_chat_router(tg_chat *c) {
    return c->api->router_on ? &c->api->router : NULL;
}

const rt_target *tg_chat_target(const tg_chat *c) {
    return c->attempt < c->plan.n_targets ? &c->plan.targets[c->attempt] : NULL;
}

void tg_chat_event(tg_chat *c, rt_event_kind kind, const char *target, const char *from,
                   const char *to, rt_fail_cause cause, bool mid, double ms, int status) {
    rt_router *r = tg_chat_router(c);
    if (!r) return;
    /* The copy: the end events come after the answer, which frees req. */
    rt_event ev = {kind, c->req_id[0] ? c->req_id : NULL, target, from, to, cause, mid, ms, status};
    rt_router_emit(r, &ev);
}

/* Ends the exchange with an error before any response was started. */
void tg_chat_fail(tg_chat *c, int status, const char *type, const char *code, const char *param,
                  const char *msg) {
    if (c->defer_head && c->ex) { /* its stream is open: an error event ends it */
        tg_defer_end(c, TG_JREC_FAILED, status, type, code, msg);
        return;
    }
    if (c->failover[0]) tg_http_add_header(c->ex, "x-tidegate-failover", c->failover);
    tg_chat_event(c, RT_EV_FAILED, tg_chat_target(c) ? tg_chat_target(c)->name : "-", NULL, NULL,
                  c->last_cause, false, tg_chat_ms_since(c->t0_ns), status);
    if (c->journaled) tg_apij_end(c->api, c->rid, TG_JREC_FAILED, status, type, code, msg);
    /* 429 and 503 say "come back later": no answer was produced, so the
     * Idempotency-Key is released and the client's retry runs afresh
     * instead of being handed this refusal forever (the refused id stays
     * in the journal, FAILED). */
    if (c->idem[0] && tg_jcheck_status_retryable(status))
        tg_apij_idem_drop(c->api, c->scope, c->idem);
    tg_api_error(c->api, c->ex, status, type, code, param, "%s", msg);
    tg_chat_free(c);
}

/* ---------------------------------------------------------- the runner -- */

static void run_next(tg_chat *c);

/* Notes a failover hop from the current target; `to` is filled when the
 * next target starts (run_next). */
static void note_failure(tg_chat *c, rt_fail_cause cause) {
    const rt_target *t = tg_chat_target(c);
    if (!c->fault_ns) c->fault_ns = uv_hrtime();
    c->last_cause = cause;
    tg_metrics_add(c->api->rtm.failovers, 1, rt_fail_cause_name(cause), "before_first_token");
    size_t n = strlen(c->failover);
    snprintf(c->failover + n, sizeof c->failover - n, "%s%s->", n ? ", " : "", t ? t->name : "-");
    snprintf(c->hop_from, sizeof c->hop_from, "%s", t ? t->name : "-");
    tg_log_info("failover", "request_id=%s from=%s cause=%s", c->req->request_id, t ? t->name : "-",
                rt_fail_cause_name(cause));
}

/* Completes the pending hop with its destination and cause. */
static void note_next(tg_chat *c, const char *to, rt_fail_cause cause) {
    size_t n = strlen(c->failover);
    if (n < 2 || strcmp(c->failover + n - 2, "->") != 0) return;
    snprintf(c->failover + n, sizeof c->failover - n, "%s; cause=%s", to,
             rt_fail_cause_name(cause));
    tg_chat_event(c, RT_EV_FAILOVER, to, c->hop_from, to, cause, false,
                  tg_chat_ms_since(c->fault_ns), 0);
}

void tg_chat_attempt_failed(tg_chat *c, rt_fail_cause cause, int retry_after) {
    const rt_target *t = tg_chat_target(c);
    rt_router *r = tg_chat_router(c);
    if (r && t)
        rt_router_outcome(r, t->kind == RT_TARGET_CLOUD ? &r->ups[t->upstream] : NULL, cause, 0);
    c->last_retry_after = retry_after;
    note_failure(c, cause);
    tg_buf_clear(&c->text);
    c->attempt++;
    run_next(c);
}

static void engine_run(tg_chat *c);

void tg_chat_midstream_failed(tg_chat *c, rt_fail_cause cause) {
    const rt_target *t = tg_chat_target(c);
    rt_router *r = tg_chat_router(c);
    if (r && t)
        rt_router_outcome(r, t->kind == RT_TARGET_CLOUD ? &r->ups[t->upstream] : NULL, cause, 0);
    c->last_cause = cause;
    tg_metrics_add(c->api->rtm.failovers, 1, rt_fail_cause_name(cause), "midstream");
    tg_log_info("midstream_failure", "request_id=%s from=%s cause=%s sent_bytes=%zu",
                c->req->request_id, t ? t->name : "-", rt_fail_cause_name(cause), c->sent.len);
    bool can = t && t->kind == RT_TARGET_CLOUD && t->midstream == RT_MIDSTREAM_CONTINUE &&
               !c->tool_out && c->api->engine.bridge && c->api->dispatch.engine_ready &&
               (!r || (rt_conn_edge_allowed(&r->conn) && rt_router_allow(r, NULL)));
    if (!can) {
        char msg[200];
        snprintf(msg, sizeof msg, "the upstream %s failed mid-stream (%s)%s", t ? t->name : "-",
                 rt_fail_cause_name(cause),
                 c->tool_out ? "; a tool call was half emitted, so it cannot be continued" : "");
        tg_chat_end_with_error(c, "upstream_failed", msg);
        return;
    }
    c->fault_ns = uv_hrtime();
    c->mid_failover = true;
    c->continuing = true;
    c->n_cloud_chunks = c->n_sent_chunks;
    c->mid_cause = cause;
    c->mid_ms = 0;
    snprintf(c->mid_from, sizeof c->mid_from, "%s", t->name);
    snprintf(c->route, sizeof c->route, "%s->engine", t->name);
    tg_http_set_route(c->ex, c->route);
    tg_chat_event(c, RT_EV_FAILOVER, "engine", t->name, "engine", cause, true, 0, 0);
    /* The engine runs as one more target beyond the plan. */
    c->attempt = c->plan.n_targets;
    engine_run(c);
}

static void all_failed(tg_chat *c) {
    if (tg_defer_wanted(c)) { /* cloud-only: wait for the cloud instead */
        tg_defer_request(c);
        return;
    }
    if (c->last_cause == RT_FAIL_ENGINE_BUSY) {
        tg_http_add_header(c->ex, "Retry-After", "1");
        tg_chat_fail(c, 429, "requests", "rate_limit_exceeded", NULL,
                     "The engine queue is full; retry shortly");
        return;
    }
    if (c->last_cause == RT_FAIL_429) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", c->last_retry_after > 0 ? c->last_retry_after : 1);
        tg_http_add_header(c->ex, "Retry-After", ra);
        tg_chat_fail(c, 429, "requests", "rate_limit_exceeded", NULL,
                     "the upstream is rate limited and no fallback could answer");
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "no target could answer (last failure: %s)",
             rt_fail_cause_name(c->last_cause));
    tg_chat_fail(c, 503, "server_error", "upstream_unavailable", NULL, msg);
}

static void run_next(tg_chat *c) {
    rt_router *r = tg_chat_router(c);
    for (; c->attempt < c->plan.n_targets; c->attempt++) {
        const rt_target *t = &c->plan.targets[c->attempt];
        rt_upstream *u = t->kind == RT_TARGET_CLOUD && r ? &r->ups[t->upstream] : NULL;
        if (t->kind == RT_TARGET_CLOUD && !u) continue;
        if (r && !(u ? rt_conn_cloud_allowed(&r->conn) : rt_conn_edge_allowed(&r->conn))) {
            /* The mode changed since the plan was made: the target it
             * forbids now is skipped (FAILOVER, cause "mode"). */
            note_next(c, t->name, c->last_cause);
            note_failure(c, RT_FAIL_MODE);
            continue;
        }
        if (r && !rt_router_allow(r, u)) {
            /* Open breaker: skipped at once, no time spent. */
            note_next(c, t->name, c->last_cause);
            note_failure(c, RT_FAIL_BREAKER_OPEN);
            continue;
        }
        note_next(c, t->name, c->last_cause);
        if (t->kind == RT_TARGET_ENGINE)
            engine_run(c);
        else
            tg_chat_run_cloud(c, u);
        return;
    }
    /* The failover string ends in "->" after the last failure: cut it. */
    size_t n = strlen(c->failover);
    if (n >= 2 && !strcmp(c->failover + n - 2, "->")) {
        char *comma = strrchr(c->failover, ',');
        if (comma)
            *comma = 0;
        else
            c->failover[0] = 0;
    }
    all_failed(c);
}

/* -------------------------------------------------------- engine events -- */

/* A sampled token with its logprobs (requests with logprobs only). The EOG
 * token that ends the answer is not part of the content: left out, as
 * OpenAI does. */
/* Streamed answer text on its way to the client (tool calls held back). */
static void answer_text(tg_chat *c, const char *text, size_t len) {
    if (c->tools) {
        tg_buf now = TG_BUF_INIT;
        tg_toolstream_push(&c->ts, text, len, &now);
        if (now.len) tg_chat_emit_text(c, now.data, now.len);
        tg_buf_free(&now);
        if (c->ts.capturing) c->tool_out = true;
        return;
    }
    tg_chat_emit_text(c, text, len);
}

/* Thinking models: the splitter decides what is reasoning and what is the
 * answer; final = the output has ended (whatever was held is decided). */
static void split_think(tg_chat *c, const char *text, size_t len, bool final) {
    tg_buf r = TG_BUF_INIT, a = TG_BUF_INIT;
    tg_buf *rp = c->exclude_reasoning ? NULL : &r;
    if (final)
        lfm_think_flush(&c->th, rp, &a);
    else
        lfm_think_push(&c->th, text, len, rp, &a);
    if (!c->stream) {
        tg_buf_append(&c->reasoning, r.data, r.len);
        tg_buf_append(&c->text, a.data, a.len);
    } else {
        tg_chat_emit_reasoning(c, r.data, r.len);
        if (a.len) answer_text(c, a.data, a.len);
    }
    tg_buf_free(&r);
    tg_buf_free(&a);
}

/* Engine text released to the client (after any cascade hold). */
static void engine_text(tg_chat *c, const char *text, size_t len) {
    if (c->think)
        split_think(c, text, len, false);
    else
        answer_text(c, text, len);
}

/* The cascade gives up on the edge: the engine's answer is dropped unseen
 * and the request moves to the first cloud target of the plan. */
static void cascade_escalate(tg_chat *c) {
    c->cascading = false;
    c->escalated = true;
    if (c->run) rt_engine_detach(c->run);
    c->run = NULL;
    rt_router *r = tg_chat_router(c);
    if (r) rt_router_release(r, NULL); /* the engine worked: not a breaker failure */
    double lp = rt_cascade_mean_logprob(&c->cas), ent = rt_cascade_mean_entropy(&c->cas);
    size_t n = strlen(c->plan.reason);
    snprintf(c->plan.reason + n, sizeof c->plan.reason - n,
             "; cascade escalated: mean logprob %.2f, entropy %.2f over %d tokens", lp, ent,
             c->cas.n);
    tg_buf_clear(&c->held);
    tg_buf_clear(&c->text);
    tg_buf_clear(&c->reasoning);
    tg_buf_clear(&c->lp);
    c->lp_any = false;
    c->got_text = false;
    tg_routing_escalated(&c->api->routing, c->plan.rule);
    tg_log_info("cascade_escalated",
                "request_id=%s rule=%s tokens=%d mean_logprob=%.3f mean_entropy=%.3f",
                c->req->request_id, c->plan.rule, c->cas.n, lp, ent);
    note_failure(c, RT_FAIL_LOW_CONFIDENCE);
    size_t i = c->attempt + 1;
    while (i < c->plan.n_targets && c->plan.targets[i].kind != RT_TARGET_CLOUD)
        i++;
    c->attempt = i;
    run_next(c);
}

/* Judges the first tokens; on "keep" the held text goes out. Returns true
 * when the request escalated (the engine's events no longer matter). */
static bool cascade_check(tg_chat *c, bool finished) {
    rt_cascade_verdict v = rt_cascade_judge(&c->plan.cascade, &c->cas, finished);
    if (v == RT_CASCADE_PENDING) return false;
    if (v == RT_CASCADE_ESCALATE) {
        cascade_escalate(c);
        return true;
    }
    c->cascading = false;
    tg_log_debug("cascade_kept", "request_id=%s rule=%s tokens=%d mean_logprob=%.3f",
                 c->req->request_id, c->plan.rule, c->cas.n, rt_cascade_mean_logprob(&c->cas));
    if (c->stream && c->held.len) {
        tg_buf h = c->held;
        c->held = (tg_buf)TG_BUF_INIT;
        engine_text(c, h.data, h.len);
        tg_buf_free(&h);
    }
    return false;
}

static void on_token(void *user, const lfm_event *ev) {
    tg_chat *c = user;
    if (ev->eog) return;
    if (c->lp_client) {
        /* A cascade may have asked the engine for more alternatives than
         * the client did: the client gets its own count. */
        lfm_event e = *ev;
        if (e.n_top > c->lp_top_client) e.n_top = c->lp_top_client;
        if (c->lp_any) tg_buf_putc(&c->lp, ',');
        tg_oai_logprob_entry(&c->lp, c->api->engine.tok, &e);
        c->lp_any = true;
    }
    if (c->cascading) {
        rt_cascade_add(&c->cas, ev->logprob, ev->top_logprobs, ev->n_top);
        cascade_check(c, false);
    }
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
        if (c->think)
            split_think(c, ev->text, ev->len, false);
        else
            tg_buf_append(&c->text, ev->text, ev->len);
        return;
    }
    if (c->cascading) { /* held until the cascade decides */
        tg_buf_append(&c->held, ev->text, ev->len);
        return;
    }
    engine_text(c, ev->text, ev->len);
}

/* The usage the client sees. A continuation's engine prompt holds the answer
 * so far: the prompt is the conversation (on_start's count) and the
 * completion is what the cloud streamed (one token a chunk, its usage never
 * came) plus what the engine generated. */
static tg_oai_usage engine_usage(const tg_chat *c, const lfm_event *ev) {
    if (!c->continuing) return (tg_oai_usage){ev->n_prompt, ev->n_generated, ev->n_cached};
    return (tg_oai_usage){c->n_prompt, c->n_cloud_chunks + ev->n_generated, 0};
}

static void engine_finish_stream(tg_chat *c, const lfm_event *ev) {
    tg_oai_usage usage = engine_usage(c, ev);
    bool has_calls = false;
    size_t held_len;
    const char *held = tg_toolstream_held(&c->ts, &held_len);
    if (c->tools && held_len) {
        tg_buf content = TG_BUF_INIT, calls = TG_BUF_INIT;
        has_calls =
            tg_toolstream_parse_calls(held, held_len, &content, &calls, true, c->parallel) > 0;
        if (content.len) tg_chat_emit_text(c, content.data, content.len);
        if (has_calls) tg_chat_emit_tool_calls(c, calls.data);
        tg_buf_free(&content);
        tg_buf_free(&calls);
    }
    tg_chat_finish_stream(c, tg_oai_finish_reason(ev->finish, has_calls), &usage);
}

static void engine_finish_once(tg_chat *c, const lfm_event *ev) {
    tg_oai_usage usage = engine_usage(c, ev);
    tg_buf content = TG_BUF_INIT, calls = TG_BUF_INIT;
    bool has_calls = false;
    if (c->tools && c->text.len)
        has_calls = tg_toolstream_parse_calls(c->text.data, c->text.len, &content, &calls, false,
                                              c->parallel) > 0;
    else
        tg_buf_append(&content, c->text.data ? c->text.data : "", c->text.len);
    const char *text = content.data ? content.data : "";
    tg_chat_answer_once(c, has_calls && content.len == 0 ? NULL : text, content.len,
                        has_calls ? calls.data : NULL, tg_oai_finish_reason(ev->finish, has_calls),
                        &usage);
    tg_buf_free(&content);
    tg_buf_free(&calls);
}

static void on_done(void *user, const lfm_event *ev) {
    tg_chat *c = user;
    c->run = NULL; /* the target frees it after this returns */
    tg_oai_usage used = engine_usage(c, ev);
    tg_http_set_tokens(c->ex, used.prompt_tokens, used.completion_tokens);
    rt_router *r = tg_chat_router(c);
    if (ev->finish == LFM_FINISH_CANCELED) {
        /* Shutdown: not the engine's fault. */
        if (r) rt_router_release(r, NULL);
        if (c->stream && c->started) {
            tg_chat_end_with_error(c, "canceled",
                                   ev->error ? ev->error : "generation was canceled");
            return;
        }
        tg_chat_fail(c, 503, "server_error", "canceled", NULL,
                     "generation was canceled (server shutting down)");
        return;
    }
    if (ev->finish == LFM_FINISH_ERROR) {
        const char *msg = ev->error ? ev->error : "engine error";
        if (!c->token_out) {
            tg_log_warn("engine_failed", "request_id=%s error=\"%s\"", c->req->request_id, msg);
            tg_chat_attempt_failed(c, RT_FAIL_ENGINE, 0);
            return;
        }
        if (r) rt_router_outcome(r, NULL, RT_FAIL_ENGINE, 0);
        c->last_cause = RT_FAIL_ENGINE;
        tg_chat_end_with_error(c, "engine_error", msg);
        return;
    }
    if (c->cascading && cascade_check(c, true)) return; /* a short answer judged: escalated */
    if (r) rt_router_outcome(r, NULL, RT_FAIL_NONE, ev->ttft_ms);
    if (c->api->routing_on)
        tg_routing_engine_done(&c->api->routing, ev->ttft_ms, ev->n_generated,
                               (double)(uv_hrtime() - c->engine_t0_ns) / 1e6);
    if (c->think) split_think(c, NULL, 0, true); /* what the splitter held back */
    if (c->stream)
        engine_finish_stream(c, ev);
    else
        engine_finish_once(c, ev);
}

/* ------------------------------------------------------- engine target -- */

/* The request for a target: c->oai until the engine target takes it, then
 * parsed again from the body (it parsed before, so it parses again). */
int tg_chat_parse(tg_chat *c, tg_oai_error *e) {
    tg_oai_request_free(&c->oai);
    const char *b = c->chat_body ? c->chat_body : c->req->body;
    size_t n = c->chat_body ? c->chat_body_len : c->req->body_len;
    if (tg_oai_parse_request(b, n, &c->oai, e) < 0) return -1;
    if (c->raw_prompt) c->oai.raw_prompt = tg_xstrdup(c->raw_prompt);
    return 0;
}

static void ensure_request(tg_chat *c) {
    if (c->oai.raw) return;
    tg_oai_error e;
    if (tg_chat_parse(c, &e) < 0)
        tg_log_error("reparse_failed", "request_id=%s", c->req->request_id);
}

/* The engine could not start the job: a client error is answered as such;
 * a full queue or an unavailable engine moves on to the next target. */
static void on_engine_error(void *user, const tg_oai_error *e) {
    tg_chat *c = user;
    c->run = NULL; /* the target frees it after this returns */
    rt_router *r = tg_chat_router(c);
    bool engine_fault = e->status == 429 || e->status >= 500;
    if (c->started) {
        if (r) rt_router_release(r, NULL);
        tg_chat_end_with_error(c, e->code[0] ? e->code : "engine_error", e->message);
        return;
    }
    if (engine_fault) {
        /* 429: the queue is full (load shedding), which is no fault of the engine. */
        tg_chat_attempt_failed(c, e->status == 429 ? RT_FAIL_ENGINE_BUSY : RT_FAIL_ENGINE,
                               e->status == 429 ? 1 : 0);
        return;
    }
    if (r) rt_router_release(r, NULL);
    tg_chat_fail(c, e->status, e->type, e->code, e->param, e->message);
}

static void on_engine_start(void *user, int n_prompt) {
    tg_chat *c = user;
    c->n_prompt = n_prompt;
}

/* Hands the request to the router's engine target; a continuation carries
 * the text already streamed as the start of the answer. */
static void engine_run(tg_chat *c) {
    tg_api *api = c->api;
    if (!api->engine.bridge || !api->dispatch.engine_ready) {
        if (c->started) {
            tg_chat_end_with_error(c, "engine_unavailable", "the engine is not available");
            return;
        }
        tg_chat_attempt_failed(c, RT_FAIL_ENGINE, 0);
        return;
    }
    static const rt_engine_cbs cbs = {on_engine_error, on_engine_start, on_text, on_done, on_token};
    ensure_request(c);
    if (c->continuing && c->sent.len) {
        free(c->oai.assistant_prefix);
        c->oai.assistant_prefix = malloc(c->sent.len + 1);
        if (!c->oai.assistant_prefix) abort();
        memcpy(c->oai.assistant_prefix, c->sent.data, c->sent.len);
        c->oai.assistant_prefix[c->sent.len] = 0;
        /* The budget left: what the cloud already streamed counts. */
        if (c->oai.has_max_tokens)
            c->oai.max_tokens =
                c->oai.max_tokens > c->n_sent_chunks ? c->oai.max_tokens - c->n_sent_chunks : 1;
    }
    c->got_text = false;
    /* A thinking model reasons first, except in a continuation (it resumes
     * the answer already streamed). */
    lfm_think_free(&c->th);
    c->think = api->engine.model && lfm_model_is_lfm25(api->engine.model) && !c->continuing &&
               c->mode != TG_CHAT_COMPLETIONS; /* a raw prompt: the text as it comes */
    lfm_think_init(&c->th, c->think && rt_engine_opens_think(&api->engine));
    /* The cascade judges the first engine attempt of its plan (not a
     * continuation, not a later fallback) from the tokens' logprobs and
     * the top alternatives (entropy); the client still gets only the
     * logprobs it asked for (on_token). */
    c->cascading = c->plan.cascade.enabled && c->attempt == 0 && !c->continuing;
    if (c->cascading) {
        memset(&c->cas, 0, sizeof c->cas);
        c->oai.logprobs = true;
        c->oai.top_logprobs = LFM_MAX_TOP_LOGPROBS;
    }
    c->engine_t0_ns = uv_hrtime();
    tg_oai_error e;
    /* Structured output / forced tool calls: compiled for each engine run
     * (the run takes it). Not on a continuation: the constraint would
     * start over in the middle of the streamed text. */
    const char *fp =
        c->mode == TG_CHAT_RESPONSES ? "text.format.schema" : "response_format.json_schema.schema";
    if (!c->continuing && tg_api_constraint(api, &c->oai, fp, &c->oai.constraint, &e) < 0) {
        if (c->started) {
            tg_chat_end_with_error(c, e.code[0] ? e.code : "invalid_request", e.message);
            return;
        }
        rt_router *r = tg_chat_router(c);
        if (r) rt_router_release(r, NULL);
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    if (rt_engine_run_start(&api->engine, &c->oai, &cbs, c, &c->run, &e) < 0) {
        c->run = NULL;
        if (c->started) {
            tg_chat_end_with_error(c, e.code[0] ? e.code : "engine_error", e.message);
            return;
        }
        rt_router *r = tg_chat_router(c);
        if (r) rt_router_release(r, NULL);
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
    }
}

/* ------------------------------------------------------------ aborting -- */

/* The client went away: stop whatever runs (engine at its next token, the
 * upstream request at once) and free. */
void tg_chat_on_abort(void *arg) {
    tg_chat *c = arg;
    if (c->finishing) { /* the result is on its way to disk: it stands */
        c->gone = true;
        tg_http_stream_end(c->ex);
        c->ex = NULL;
        return;
    }
    if (tg_chat_let_client_go(c)) return; /* runs on with no client; a retry attaches */
    if (c->journaled)
        tg_apij_end(c->api, c->rid, TG_JREC_CANCELLED, 499, "cancelled", "client_gone",
                    "the client went away before the answer was complete");
    rt_router *r = tg_chat_router(c);
    const rt_target *t = tg_chat_target(c);
    if (r && t) rt_router_release(r, t->kind == RT_TARGET_CLOUD ? &r->ups[t->upstream] : NULL);
    rt_engine_detach(c->run);
    c->run = NULL;
    tg_chat_cloud_cancel(c);
    if (c->started)
        tg_http_stream_end(c->ex);
    else
        tg_http_respond(c->ex, 499, "text/plain", "", 0); /* frees only; nothing is sent */
    tg_chat_free(c);
}

/* --------------------------------------------------------------- intake -- */

static void dispatch(tg_chat *c) {
    if (c->plan.n_targets == 0) { /* a deferred plan (tg_defer_wanted) */
        tg_defer_request(c);
        return;
    }
    if (c->journaled) {
        tg_buf d = TG_BUF_INIT;
        const char *to = c->continuing ? "engine" : c->plan.targets[0].name;
        tg_buf_puts(&d, "{\"target\":");
        tg_buf_json_str(&d, to, strlen(to));
        tg_buf_puts(&d, c->recovered ? ",\"recovered\":true}" : "}");
        tg_apij_note(c->api, c->rid, TG_JREC_DISPATCHED, d.data, d.len);
        tg_buf_free(&d);
    }
    if (c->plan.scored)
        tg_routing_count(&c->api->routing, c->plan.rule, c->plan.targets[0].name, c->plan.score,
                         true);
    tg_chat_event(c, RT_EV_DISPATCHED, c->plan.targets[0].name, NULL, NULL, RT_FAIL_NONE, false, 0,
                  0);
    chat_link(c->api, c);
    tg_http_set_on_abort(c->ex, tg_chat_on_abort, c);
    /* A stream recovered mid-way goes on on the engine (tg_cres_restore). */
    c->attempt = c->continuing ? c->plan.n_targets : 0;
    c->continuing ? engine_run(c) : run_next(c);
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
    if (c->gone) {
        if (status == 0)
            tg_apij_end(c->api, c->rid, TG_JREC_CANCELLED, 499, "cancelled", "client_gone",
                        "the client went away before the request ran");
        if (c->idem[0] && status != 0) tg_apij_idem_drop(c->api, c->scope, c->idem);
        tg_chat_free(c);
        return;
    }
    if (status != 0) {
        if (c->idem[0]) tg_apij_idem_drop(c->api, c->scope, c->idem);
        tg_chat_fail(c, 503, "server_error", "journal_unavailable", NULL,
                     "the request could not be journaled; nothing was run");
        return;
    }
    c->journaled = true;
    dispatch(c);
}

/* Idempotency-Key: a known key with the same body is answered with that
 * request's result (now, or when it ends); with another body, 422. A new
 * key is claimed for this request before it is journaled. Returns true
 * when c was answered (and freed). */
static bool idempotency(tg_chat *c) {
    tg_api *api = c->api;
    const tg_http_request *req = c->req;
    tg_apij_scope(api, req, c->scope);
    if (tg_auth_sha256_hex(req->body, req->body_len, c->body_sha) != 0) c->body_sha[0] = 0;
    snprintf(c->rid, sizeof c->rid, "%s", req->request_id ? req->request_id : "");
    const char *key = tg_http_request_header(req, "idempotency-key");
    if (!key) return false;
    if (!tg_jidem_key_valid(key, strlen(key))) {
        tg_chat_fail(c, 400, NULL, "invalid_idempotency_key", NULL,
                     "Idempotency-Key must be 1..255 printable ASCII characters");
        return true;
    }
    const char *found = NULL;
    switch (tg_apij_idem_claim(api, c->scope, key, c->body_sha, c->rid, &found)) {
    case TG_APIJ_IDEM_NEW: snprintf(c->idem, sizeof c->idem, "%s", key); return false;
    case TG_APIJ_IDEM_DIFF:
        tg_chat_fail(c, 422, NULL, "idempotency_key_reused", NULL,
                     "this Idempotency-Key was used with a different request body");
        return true;
    case TG_APIJ_IDEM_SAME: break;
    }
    tg_log_info("idempotent_retry", "request_id=%s original=%s", req->request_id, found);
    /* A streamed one resumes after Last-Event-ID (chat_resume.c). */
    if (!c->oai.stream || tg_cres_resume(api, c->ex, req, found) != 0)
        tg_apij_serve_result(api, c->ex, found, c->oai.stream, c->oai.include_usage);
    c->ex = NULL;
    tg_chat_free(c);
    return true;
}

tg_chat *tg_chat_new(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_chat *c = calloc(1, sizeof *c);
    if (!c) abort();
    tg_toolstream_init(&c->ts);
    lfm_think_init(&c->th, false);
    c->api = api;
    c->ex = ex;
    c->req = req;
    snprintf(c->req_id, sizeof c->req_id, "%s", req && req->request_id ? req->request_id : "");
    c->t0_ns = uv_hrtime();
    snprintf(c->rid, sizeof c->rid, "%s", c->req_id);
    return c;
}

void tg_api_chat(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_chat *c = tg_chat_new(api, ex, req);
    if (api->draining) {
        tg_chat_fail(c, 503, "server_error", "draining", NULL, "the server is shutting down");
        return;
    }
    tg_oai_error e;
    if (tg_chat_parse(c, &e) < 0) {
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    if (api->journal && idempotency(c)) return;
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
    /* tidegate/auto: the policy decides from the request's features and
     * the last health snapshot (the policy in force now: a reload later
     * does not change this request's plan). */
    rt_features feats;
    const char *m = c->oai.model;
    /* Without a cloud upstream or a named policy the edge is the only
     * answer: the fixed rule says so without a score. */
    bool policy = api->routing_on && (api->routing.path || api->router.n_ups > 0);
    if (policy && (!m || !*m || !strcmp(m, RT_MODEL_AUTO))) {
        rt_reqfeat_extract(c->oai.raw, tg_chat_hint(c), &feats);
        info.features = &feats;
        api->dispatch.policy = api->routing.policy;
        api->dispatch.health = &api->routing.health;
    }
    /* A cloud-only rule with no cloud now: the request waits (dispatch()
     * defers it once ACCEPTED is durable). */
    if (rt_dispatch_plan(&api->dispatch, &info, &c->plan) < 0 && !tg_defer_wanted(c)) {
        const tg_oai_error *pe = &c->plan.err;
        tg_chat_fail(c, pe->status, pe->type, pe->code, pe->param, pe->message);
        return;
    }
    c->lp_client = c->oai.logprobs;
    c->lp_top_client = c->oai.top_logprobs;
    tg_oai_new_id(c->mode == TG_CHAT_RESPONSES     ? "resp_"
                  : c->mode == TG_CHAT_COMPLETIONS ? "cmpl-"
                                                   : "chatcmpl-",
                  c->id, sizeof c->id);
    if (c->mode == TG_CHAT_RESPONSES) tg_oai_new_id("msg_", c->msg_id, sizeof c->msg_id);
    c->parallel = c->oai.parallel_tool_calls;
    c->created = (int64_t)time(NULL);
    c->stream = c->oai.stream;
    /* Kept here: the request moves into the engine target when it runs. */
    c->include_usage = c->oai.include_usage;
    c->exclude_reasoning = c->oai.exclude_reasoning;
    c->logprobs = c->oai.logprobs;
    c->tools = c->oai.tools_json != NULL;
    snprintf(c->model_out, sizeof c->model_out, "%s", c->plan.response_model);
    tg_log_debug("chat_plan", "request_id=%s target=%s n_targets=%zu reason=\"%s\"",
                 req->request_id, c->plan.targets[0].name, c->plan.n_targets, c->plan.reason);
    /* The journal covers chat completions and Responses (keyed by the
     * response id: a stored response is read back from it); legacy
     * completions are not journaled. A request re-run after a restart is
     * journaled already. */
    if (!api->journal || c->mode == TG_CHAT_COMPLETIONS || c->journaled) {
        if (c->recovered && tg_cres_restore(c)) return;
        dispatch(c);
        return;
    }
    /* Nothing is dispatched (or promised) before ACCEPTED is durable. */
    snprintf(c->rid, sizeof c->rid, "%s",
             c->mode == TG_CHAT_CHAT && req->request_id ? req->request_id : c->id);
    tg_http_set_on_abort(c->ex, on_abort_waiting, c);
    tg_apij_meta meta = {.scope = c->scope,
                         .idem = c->idem[0] ? c->idem : NULL,
                         .body_sha = c->body_sha,
                         .stream = c->stream,
                         .include_usage = c->include_usage,
                         .hint = tg_chat_hint(c)};
    if (tg_apij_accept(api, c->rid, &meta, req->body, req->body_len, on_accepted, c) != 0) {
        if (c->idem[0]) tg_apij_idem_drop(api, c->scope, c->idem);
        tg_chat_fail(c, 503, "server_error", "journal_unavailable", NULL,
                     "the request could not be journaled; nothing was run");
    }
}

void tg_api_chat_end_all(tg_api *api, const char *why) {
    while (api->chats) {
        tg_chat *c = api->chats;
        tg_chat_unlink(c);
        if (c->finishing) { /* its result is on its way to disk; the callback frees it */
            c->gone = true;
            if (!c->durable) tg_http_stream_end(c->ex); /* else its subscriber's */
            c->ex = NULL;
            continue;
        }
        rt_engine_detach(c->run);
        c->run = NULL;
        tg_chat_cloud_cancel(c);
        if (c->journaled)
            tg_apij_end(api, c->rid, TG_JREC_FAILED, 503, "server_error", "server_shutting_down",
                        why);
        if (c->durable) {
            tg_cres_shutdown(c, "server_shutting_down", why);
        } else if (c->started) {
            tg_chat_stream_error(c, "server_error", "server_shutting_down", why);
            tg_http_stream_end(c->ex);
        } else {
            tg_api_error(api, c->ex, 503, "server_error", "server_shutting_down", NULL, "%s", why);
        }
        tg_chat_free(c);
    }
}
