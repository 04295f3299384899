/* chat_cloud: the cloud target of a chat completion.
 *
 * The client's request goes up with its fields intact (the parsed body is
 * kept for this), the model replaced by the upstream's, and, when
 * streamed, stream_options.include_usage set so the upstream reports usage
 * (relayed only if the client asked). The upstream's SSE is parsed
 * incrementally (tg_sse_parser, bounded) and each chunk relayed as our own
 * chunk (our id, the upstream's model): content deltas as content,
 * tool_calls deltas as they are, logprobs entries (when the client asked)
 * on the chunk that carries their text. A client slower than the upstream
 * pauses the upstream transfer (RELAY_HIGH below). A stream that ends without [DONE], an
 * event that is not chunk JSON, or an error event is a failure of the
 * upstream. The outcome goes to the plan runner in api_chat.c: before the
 * first token a failover, after it a mid-stream failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/tg_log.h"
#include "gateway/api/chat_internal.h"
#include "gateway/api/chat_resume.h"

#define MAX_SSE_EVENT (1u << 20) /* one upstream event */
/* Backpressure: over RELAY_HIGH bytes queued for the client (not yet taken
 * by its socket), the upstream transfer pauses; it resumes once the queue
 * is under RELAY_LOW. A slow client thus holds at most about RELAY_HIGH
 * plus one upstream read of the gateway's memory, and TCP flow control
 * slows the upstream instead. */
#define RELAY_HIGH (256u << 10)
#define RELAY_LOW  (64u << 10)
#define MAX_BODY   (16u << 20) /* a non-streamed answer */

void tg_chat_cloud_cancel(tg_chat *c) {
    if (c->call) rt_cloud_cancel(c->call);
    c->call = NULL;
    if (c->sse_on) tg_sse_parser_free(&c->sse);
    c->sse_on = false;
}

/* The upstream's body: the client's, with model (and usage reporting) set. */
static char *upstream_body(tg_chat *c, size_t *len) {
    if (!c->oai.raw) /* taken by an engine attempt: parse the body again */
        (void)tg_chat_parse(c, &(tg_oai_error){0});
    json_object *raw = c->oai.raw;
    json_object_object_add(raw, "model", json_object_new_string(c->up->model));
    if (c->stream) {
        json_object *so = NULL;
        if (!json_object_object_get_ex(raw, "stream_options", &so) ||
            !json_object_is_type(so, json_type_object)) {
            so = json_object_new_object();
            json_object_object_add(raw, "stream_options", so);
        }
        json_object_object_add(so, "include_usage", json_object_new_boolean(1));
    }
    size_t n = 0;
    const char *s = json_object_to_json_string_length(raw, JSON_C_TO_STRING_PLAIN, &n);
    char *out = malloc(n + 1);
    if (!out) abort();
    memcpy(out, s, n + 1);
    *len = n;
    return out;
}

static int get_int(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int(v) : 0;
}

static void read_usage(tg_chat *c, json_object *root) {
    json_object *u;
    if (!json_object_object_get_ex(root, "usage", &u) || !json_object_is_type(u, json_type_object))
        return;
    c->usage.prompt_tokens = get_int(u, "prompt_tokens");
    c->usage.completion_tokens = get_int(u, "completion_tokens");
    json_object *d; /* the upstream's own prompt cache, passed on */
    c->usage.cached_tokens = json_object_object_get_ex(u, "prompt_tokens_details", &d) &&
                                     json_object_is_type(d, json_type_object)
                                 ? get_int(d, "cached_tokens")
                                 : 0;
    c->cloud_usage = true;
}

/* The upstream's logprobs for a choice (its "logprobs":{"content":[...]})
 * join the entries the next chunk or the answer carries, as the engine's
 * do, when the client asked for logprobs. */
static void relay_logprobs(tg_chat *c, json_object *choice) {
    json_object *lp, *content;
    if (!c->logprobs || !json_object_object_get_ex(choice, "logprobs", &lp) ||
        !json_object_is_type(lp, json_type_object) ||
        !json_object_object_get_ex(lp, "content", &content) ||
        !json_object_is_type(content, json_type_array))
        return;
    size_t n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(content, i);
        if (!json_object_is_type(e, json_type_object)) continue;
        size_t len = 0;
        const char *s = json_object_to_json_string_length(e, JSON_C_TO_STRING_PLAIN, &len);
        if (c->lp_any) tg_buf_putc(&c->lp, ',');
        tg_buf_append(&c->lp, s, len);
        c->lp_any = true;
    }
}

/* One upstream SSE event. Nonzero stops the call (malformed). */
static int on_event(void *user, const tg_sse_msg *m) {
    tg_chat *c = user;
    if (m->data_len == 6 && !memcmp(m->data, "[DONE]", 6)) {
        c->cloud_done_marker = true;
        return 0;
    }
    json_tokener *tk = json_tokener_new_ex(64);
    json_object *root = json_tokener_parse_ex(tk, m->data, (int)m->data_len);
    bool complete = json_tokener_get_error(tk) == json_tokener_success;
    json_tokener_free(tk);
    if (!root || !complete || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return 1;
    }
    json_object *err, *choices;
    if (json_object_object_get_ex(root, "error", &err)) {
        json_object_put(root);
        return 1; /* an error event from the upstream mid-stream */
    }
    read_usage(c, root);
    if (json_object_object_get_ex(root, "choices", &choices) &&
        json_object_is_type(choices, json_type_array) && json_object_array_length(choices) > 0) {
        json_object *ch = json_object_array_get_idx(choices, 0), *delta, *v;
        if (json_object_is_type(ch, json_type_object)) relay_logprobs(c, ch);
        if (json_object_object_get_ex(ch, "delta", &delta) &&
            json_object_is_type(delta, json_type_object)) {
            if (json_object_object_get_ex(delta, "content", &v) &&
                json_object_is_type(v, json_type_string))
                tg_chat_emit_text(c, json_object_get_string(v),
                                  (size_t)json_object_get_string_len(v));
            if (json_object_object_get_ex(delta, "tool_calls", &v) &&
                json_object_is_type(v, json_type_array))
                tg_chat_emit_tool_calls(c,
                                        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        }
        if (json_object_object_get_ex(ch, "finish_reason", &v) &&
            json_object_is_type(v, json_type_string))
            snprintf(c->cloud_finish, sizeof c->cloud_finish, "%s", json_object_get_string(v));
    }
    json_object_put(root);
    return 0;
}

/* What the client has not been sent yet: the exchange's unsent output and,
 * on a journaled stream, the events still on their way to disk. */
static size_t relay_unsent(const tg_chat *c) {
    return tg_http_stream_pending(c->ex) + tg_cres_unsent(c);
}

static bool can_resume(void *user) {
    tg_chat *c = user;
    return relay_unsent(c) <= RELAY_LOW;
}

static int on_data(void *user, const char *buf, size_t len) {
    tg_chat *c = user;
    if (!c->stream) {
        if (c->body.len + len > MAX_BODY) return 1;
        tg_buf_append(&c->body, buf, len);
        return 0;
    }
    if (tg_sse_parser_feed(&c->sse, buf, len, on_event, c) != 0) return 1;
    if (c->call && relay_unsent(c) > RELAY_HIGH) {
        tg_metrics_add(c->api->rtm.relay_pauses, 1);
        rt_cloud_pause(c->call);
    }
    return 0;
}

/* A non-streamed answer: our completion from the upstream's. */
static int answer_from_body(tg_chat *c) {
    json_object *root = json_tokener_parse(c->body.data ? c->body.data : "");
    json_object *choices, *msg, *v;
    if (!root || !json_object_object_get_ex(root, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) < 1 ||
        !json_object_object_get_ex(json_object_array_get_idx(choices, 0), "message", &msg)) {
        json_object_put(root);
        return -1;
    }
    json_object *ch = json_object_array_get_idx(choices, 0);
    const char *content = NULL;
    size_t clen = 0;
    if (json_object_object_get_ex(msg, "content", &v) && json_object_is_type(v, json_type_string)) {
        content = json_object_get_string(v);
        clen = (size_t)json_object_get_string_len(v);
    }
    const char *calls = NULL;
    if (json_object_object_get_ex(msg, "tool_calls", &v) && json_object_is_type(v, json_type_array))
        calls = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    const char *finish = "stop";
    if (json_object_object_get_ex(ch, "finish_reason", &v) &&
        json_object_is_type(v, json_type_string))
        finish = json_object_get_string(v);
    read_usage(c, root);
    if (json_object_is_type(ch, json_type_object)) relay_logprobs(c, ch);
    tg_http_set_tokens(c->ex, c->usage.prompt_tokens, c->usage.completion_tokens);
    tg_chat_answer_once(c, content, clen, calls, finish, &c->usage);
    json_object_put(root);
    return 0;
}

static void on_cloud_done(void *user, const rt_cloud_result *r) {
    tg_chat *c = user;
    c->call = NULL;
    rt_fail_cause cause = r->cause;
    if (cause == RT_FAIL_NONE && c->stream && !c->cloud_done_marker)
        cause = RT_FAIL_RESET; /* the body ended without [DONE]: a cut stream */
    tg_log_debug("cloud_done", "request_id=%s target=%s cause=%s status=%d http=%s ms=%.1f",
                 c->req->request_id, c->up->route, rt_fail_cause_name(cause), r->http_status,
                 r->http_version, r->total_ms);
    if (cause != RT_FAIL_NONE) {
        tg_log_warn("cloud_failed", "request_id=%s target=%s cause=%s status=%d detail=\"%s\"",
                    c->req->request_id, c->up->route, rt_fail_cause_name(cause), r->http_status,
                    r->detail ? r->detail : "");
        if (c->sse_on) tg_sse_parser_free(&c->sse);
        c->sse_on = false;
        if (c->token_out && c->stream)
            tg_chat_midstream_failed(c, cause);
        else
            tg_chat_attempt_failed(c, cause, r->retry_after_s);
        return;
    }
    rt_router_outcome(&c->api->router, c->up, RT_FAIL_NONE, r->first_byte_ms);
    tg_metrics_observe(c->api->rtm.cloud_ttfb, r->first_byte_ms / 1000.0, c->up->route);
    if (c->stream) {
        tg_sse_parser_free(&c->sse);
        c->sse_on = false;
        tg_http_set_tokens(c->ex, c->usage.prompt_tokens, c->usage.completion_tokens);
        tg_chat_finish_stream(c, c->cloud_finish[0] ? c->cloud_finish : "stop",
                              c->cloud_usage ? &c->usage : NULL);
        return;
    }
    if (answer_from_body(c) != 0) tg_chat_attempt_failed(c, RT_FAIL_MALFORMED, -1);
}

void tg_chat_run_cloud(tg_chat *c, rt_upstream *u) {
    c->up = u;
    c->cloud_done_marker = false;
    c->cloud_finish[0] = 0;
    c->cloud_usage = false;
    tg_buf_clear(&c->body);
    if (c->stream) {
        tg_sse_parser_init(&c->sse, MAX_SSE_EVENT);
        c->sse_on = true;
    }
    size_t len;
    char *body = upstream_body(c, &len);
    rt_cloud_cbs cbs = {on_data, on_cloud_done, can_resume};
    int rc =
        rt_cloud_start(c->api->router.cloud, &u->target, body, len, c->stream, &cbs, c, &c->call);
    free(body);
    if (rc != 0) {
        c->call = NULL;
        if (c->sse_on) tg_sse_parser_free(&c->sse);
        c->sse_on = false;
        tg_chat_attempt_failed(c, RT_FAIL_REFUSED, -1);
    }
}
