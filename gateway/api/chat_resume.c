#include "gateway/api/chat_resume.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_log.h"
#include "gateway/api/api_journal.h"
#include "gateway/api/chat_defer.h"
#include "gateway/api/chat_internal.h"
#include "gateway/journal/tg_jchunk.h"

/* A client of a journaled stream. */
typedef struct tg_cres_sub {
    struct tg_cres_sub *prev, *next;
    tg_api *api;
    tg_http_exchange *ex;
    char id[TG_JREC_ID_MAX + 1];
    uint64_t last; /* the number of the last event it has */
} sub;

static sub *sub_new(tg_api *api, tg_http_exchange *ex, const char *id, uint64_t last);

/* ------------------------------------------------------------ writing -- */

static void put_event(tg_buf *out, uint64_t n, const char *data, size_t len) {
    tg_sse_id(out, n);
    tg_sse_data(out, data, len);
}

/* The error event of a FAILED / CANCELLED payload {"status","error":{...}}
 * (hostile input: anything else is a generic error). */
static void put_error(tg_buf *out, const uint8_t *payload, size_t len) {
    json_tokener *t = json_tokener_new();
    json_object *o = t ? json_tokener_parse_ex(t, (const char *)payload, (int)len) : NULL;
    if (t) json_tokener_free(t);
    json_object *e;
    tg_buf d = TG_BUF_INIT;
    if (o && json_object_object_get_ex(o, "error", &e) &&
        json_object_is_type(e, json_type_object)) {
        tg_buf_puts(&d, "{\"error\":");
        tg_buf_puts(&d, json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
        tg_buf_putc(&d, '}');
    } else {
        tg_buf_puts(&d, "{\"error\":{\"message\":\"the request ended without a result\","
                        "\"type\":\"server_error\",\"param\":null,\"code\":\"request_failed\"}}");
    }
    json_object_put(o);
    tg_sse_data(out, d.data, d.len);
    tg_buf_free(&d);
}

static void sub_end(sub *u) {
    if (u->prev)
        u->prev->next = u->next;
    else
        u->api->resumers = u->next;
    if (u->next) u->next->prev = u->prev;
    tg_http_set_on_abort(u->ex, NULL, NULL);
    tg_http_stream_end(u->ex);
    free(u);
}

/* ------------------------------------------------------------- replay -- */

typedef struct {
    sub *u;
    tg_buf out;
    uint64_t max_n; /* the highest event number journaled */
    int term;       /* terminal record type, 0 = running */
    tg_buf term_payload;
} replay_ctx;

static int replay_rec(void *user, const tg_jrec *r) {
    replay_ctx *x = user;
    if (r->type == TG_JREC_CHUNK) {
        uint64_t n;
        const char *data;
        size_t len;
        if (tg_jchunk_decode(r->payload, r->payload_len, &n, &data, &len) != 0) return 0;
        if (n > x->max_n) x->max_n = n;
        if (n != x->u->last + 1) return 0; /* seen already (or, never, a gap) */
        put_event(&x->out, n, data, len);
        x->u->last = n;
    } else if (tg_jrec_is_terminal(r->type)) {
        x->term = r->type;
        tg_buf_clear(&x->term_payload);
        tg_buf_append(&x->term_payload, r->payload, r->payload_len);
    }
    return 0;
}

/* Sends u what the journal has after u->last; with the terminal record
 * there, the end event too, and u is freed. Returns true when u ended. */
static bool replay(sub *u) {
    replay_ctx x = {.u = u, .out = TG_BUF_INIT, .term_payload = TG_BUF_INIT};
    int rc = tg_journal_read(u->api->journal, u->id, replay_rec, &x);
    bool ended = false;
    if (rc == 0 && x.term) {
        uint64_t n = x.max_n + 1;
        if (n > u->last) {
            tg_sse_id(&x.out, n);
            if (x.term == TG_JREC_COMPLETED)
                tg_sse_done(&x.out);
            else
                put_error(&x.out, (const uint8_t *)x.term_payload.data, x.term_payload.len);
        }
        ended = true;
    } else if (rc != 0) {
        tg_buf_puts(&x.out, "data: {\"error\":{\"message\":\"the journal could not be read\","
                            "\"type\":\"server_error\",\"param\":null,"
                            "\"code\":\"journal_unavailable\"}}\n\n");
        ended = true;
    }
    if (x.out.len) (void)tg_http_stream_write(u->ex, x.out.data, x.out.len);
    tg_buf_free(&x.out);
    tg_buf_free(&x.term_payload);
    if (ended) sub_end(u);
    return ended;
}

/* ------------------------------------------------------- subscribers -- */

/* A client went away. When it is the one that started the run, the run
 * goes on if the request has an Idempotency-Key (the client can come back
 * with it; the rest is journaled for that, or for a GET) or its rule says
 * on_client_gone: finish; else it is cancelled, as any other request whose
 * client leaves (chat_defer.c: tg_chat_finish_when_gone). */
static void on_sub_abort(void *arg) {
    sub *u = arg;
    tg_chat *own = NULL;
    for (tg_chat *c = u->api->chats; c && !own; c = c->next)
        if (c->ex == u->ex) own = c;
    if (own) tg_chat_own_request(own); /* its request was in the exchange that ends now */
    uint64_t last = u->last;
    sub_end(u);
    if (!own) return;
    own->ex = NULL;                       /* ended with u */
    if (!tg_chat_finish_when_gone(own)) { /* the rule's on_client_gone, or: has a key */
        tg_chat_on_abort(own);
        return;
    }
    tg_log_info("stream_detached", "request_id=%s last_event=%llu", own->rid,
                (unsigned long long)last);
}

static sub *sub_new(tg_api *api, tg_http_exchange *ex, const char *id, uint64_t last) {
    sub *u = calloc(1, sizeof *u);
    if (!u) abort();
    u->api = api;
    u->ex = ex;
    snprintf(u->id, sizeof u->id, "%s", id);
    u->last = last;
    u->next = api->resumers;
    if (u->next) u->next->prev = u;
    api->resumers = u;
    tg_http_set_on_abort(ex, on_sub_abort, u);
    return u;
}

/* An event is durable: the subscribers of its request that are up to it
 * get it (one that is behind catches up from the journal). */
/* A request's events in the journal's queue: shared by the request and its
 * pending events, since either may go first. */
struct tg_cres_flow {
    int refs;
    size_t bytes;
};

static void flow_unref(struct tg_cres_flow *f) {
    if (f && --f->refs == 0) free(f);
}

size_t tg_cres_unsent(const tg_chat *c) {
    return c->flow ? c->flow->bytes : 0;
}

void tg_cres_free(tg_chat *c) {
    flow_unref(c->flow);
    c->flow = NULL;
}

typedef struct {
    tg_api *api;
    char id[TG_JREC_ID_MAX + 1];
    uint64_t n;
    tg_buf data;
    uint64_t t0_ns; /* appended */
    struct tg_cres_flow *flow;
} pending_event;

static void journal_failed(tg_api *api, const char *id) {
    static const char k_err[] =
        "data: {\"error\":{\"message\":\"the stream could not be journaled\","
        "\"type\":\"server_error\",\"param\":null,\"code\":\"journal_unavailable\"}}\n\n";
    for (sub *u = api->resumers, *nx; u; u = nx) {
        nx = u->next;
        if (strcmp(u->id, id) != 0) continue;
        (void)tg_http_stream_write(u->ex, k_err, sizeof k_err - 1);
        sub_end(u);
    }
}

static void on_event_durable(void *user, int status) {
    pending_event *p = user;
    tg_metrics_observe(p->api->event_durable, (double)(uv_hrtime() - p->t0_ns) / 1e9);
    if (status != 0) {
        journal_failed(p->api, p->id);
    } else {
        for (sub *u = p->api->resumers, *nx; u; u = nx) {
            nx = u->next;
            if (strcmp(u->id, p->id) != 0 || p->n <= u->last) continue;
            if (p->n == u->last + 1) {
                tg_buf ev = TG_BUF_INIT;
                put_event(&ev, p->n, p->data.data, p->data.len);
                (void)tg_http_stream_write(u->ex, ev.data, ev.len);
                tg_buf_free(&ev);
                u->last = p->n;
            } else {
                replay(u);
            }
        }
    }
    if (p->flow) p->flow->bytes -= p->data.len;
    flow_unref(p->flow);
    tg_buf_free(&p->data);
    free(p);
}

/* ------------------------------------------------------ the request -- */

void tg_cres_adopt(tg_chat *c) {
    if (!c->journaled || c->mode != TG_CHAT_CHAT || !c->api->journal || c->durable) return;
    c->durable = true;
    if (c->ex) sub_new(c->api, c->ex, c->rid, c->ev_n);
}

void tg_cres_event(tg_chat *c, const char *data, size_t len) {
    uint64_t n = ++c->ev_n;
    if (!c->durable) {
        tg_buf ev = TG_BUF_INIT;
        put_event(&ev, n, data, len);
        /* -1 means the client is gone; on_abort cleans up. */
        (void)tg_http_stream_write(c->ex, ev.data, ev.len);
        tg_buf_free(&ev);
        return;
    }
    pending_event *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->api = c->api;
    snprintf(p->id, sizeof p->id, "%s", c->rid);
    p->n = n;
    p->t0_ns = uv_hrtime();
    tg_buf_append(&p->data, data, len);
    if (!c->flow) {
        c->flow = calloc(1, sizeof *c->flow);
        if (!c->flow) abort();
        c->flow->refs = 1;
    }
    p->flow = c->flow;
    p->flow->refs++;
    p->flow->bytes += len;
    tg_buf rec = TG_BUF_INIT;
    tg_jchunk_encode(&rec, n, data, len);
    int rc = tg_journal_append(c->api->journal, TG_JREC_CHUNK, c->rid, rec.data, rec.len,
                               on_event_durable, p);
    tg_buf_free(&rec);
    if (rc != 0) {
        tg_log_error("journal_append_failed", "request_id=%s type=CHUNK n=%llu error=%d", c->rid,
                     (unsigned long long)n, rc);
        on_event_durable(p, rc);
    }
}

void tg_cres_end_id(tg_chat *c, tg_buf *out) {
    tg_sse_id(out, c->ev_n + 1);
}

void tg_cres_shutdown(tg_chat *c, const char *code, const char *msg) {
    tg_oai_error e;
    tg_oai_error_set(&e, 503, "server_error", code, NULL, "%s", msg);
    tg_buf j = TG_BUF_INIT, ev = TG_BUF_INIT;
    tg_oai_error_json(&j, &e);
    tg_sse_data(&ev, j.data, j.len); /* no id: events still on their way to disk come first */
    for (sub *u = c->api->resumers, *nx; u; u = nx) {
        nx = u->next;
        if (strcmp(u->id, c->rid) != 0 || replay(u)) continue;
        (void)tg_http_stream_write(u->ex, ev.data, ev.len);
        sub_end(u);
    }
    tg_buf_free(&j);
    tg_buf_free(&ev);
}

/* ----------------------------------------------------------- recovery -- */

void tg_cres_prefix_init(tg_cres_prefix *p) {
    memset(p, 0, sizeof *p);
    p->text = (tg_buf)TG_BUF_INIT;
}

void tg_cres_prefix_free(tg_cres_prefix *p) {
    tg_buf_free(&p->text);
}

static int json_int(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int(v)
               : 0;
}

/* One chat.completion.chunk of the interrupted run. */
static void prefix_chunk(tg_cres_prefix *p, json_object *o) {
    json_object *v, *ch, *d, *f;
    if (!p->head && json_object_object_get_ex(o, "id", &v) &&
        json_object_is_type(v, json_type_string)) {
        p->head = true;
        snprintf(p->id, sizeof p->id, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "created", &v) && json_object_is_type(v, json_type_int))
            p->created = json_object_get_int64(v);
        if (json_object_object_get_ex(o, "model", &v) && json_object_is_type(v, json_type_string))
            snprintf(p->model, sizeof p->model, "%s", json_object_get_string(v));
    }
    if (json_object_object_get_ex(o, "usage", &v) && json_object_is_type(v, json_type_object)) {
        p->has_usage = true;
        p->usage.prompt_tokens = json_int(v, "prompt_tokens");
        p->usage.completion_tokens = json_int(v, "completion_tokens");
    }
    if (!json_object_object_get_ex(o, "choices", &ch) ||
        !json_object_is_type(ch, json_type_array) || json_object_array_length(ch) < 1)
        return;
    json_object *c0 = json_object_array_get_idx(ch, 0);
    if (!json_object_is_type(c0, json_type_object)) return;
    if (json_object_object_get_ex(c0, "finish_reason", &f) &&
        json_object_is_type(f, json_type_string)) {
        p->finished = true;
        snprintf(p->finish, sizeof p->finish, "%s", json_object_get_string(f));
    }
    if (!json_object_object_get_ex(c0, "delta", &d) || !json_object_is_type(d, json_type_object))
        return;
    if (json_object_object_get_ex(d, "tool_calls", &v)) p->tools = true;
    if (json_object_object_get_ex(d, "content", &v) && json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) > 0) {
        tg_buf_append(&p->text, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        p->n_content++;
    }
}

bool tg_cres_prefix_add(tg_cres_prefix *p, const uint8_t *payload, size_t len) {
    uint64_t n;
    const char *data;
    size_t dlen;
    if (p->bad || tg_jchunk_decode(payload, len, &n, &data, &dlen) != 0 || n != p->max_n + 1 ||
        dlen > INT32_MAX) {
        p->bad = true;
        return false;
    }
    p->max_n = n;
    json_tokener *t = json_tokener_new();
    json_object *o = t ? json_tokener_parse_ex(t, data, (int)dlen) : NULL;
    bool whole = t && json_tokener_get_error(t) == json_tokener_success &&
                 json_tokener_get_parse_end(t) == dlen;
    if (t) json_tokener_free(t);
    if (o && whole && json_object_is_type(o, json_type_object))
        prefix_chunk(p, o);
    else
        p->bad = true;
    json_object_put(o);
    return !p->bad;
}

static int restore_rec(void *user, const tg_jrec *r) {
    if (r->type != TG_JREC_CHUNK) return 0;
    return tg_cres_prefix_add(user, r->payload, r->payload_len) ? 0 : 1;
}

bool tg_cres_restore(tg_chat *c) {
    if (!c->stream || c->mode != TG_CHAT_CHAT || !c->api->journal) return false;
    tg_cres_prefix x;
    tg_cres_prefix_init(&x);
    tg_journal_read(c->api->journal, c->rid, restore_rec, &x);
    if (x.max_n == 0 && !x.bad) { /* nothing streamed: an ordinary re-run */
        tg_cres_prefix_free(&x);
        return false;
    }
    /* From here on the stream goes on where it stopped: no new head, no
     * role chunk, the next event numbered after the last durable one, the
     * same chatcmpl id, created and model. */
    c->ev_n = x.max_n;
    c->durable = true;
    c->started = true;
    c->token_out = true;
    snprintf(c->route, sizeof c->route, "engine");
    if (x.head) {
        snprintf(c->id, sizeof c->id, "%s", x.id);
        c->created = x.created;
        snprintf(c->model_out, sizeof c->model_out, "%s", x.model);
    }
    tg_buf_clear(&c->sent);
    tg_buf_append(&c->sent, x.text.data, x.text.len);
    tg_log_info("stream_restored", "request_id=%s events=%llu content_chunks=%d finished=%s",
                c->rid, (unsigned long long)x.max_n, x.n_content, x.finished ? "yes" : "no");
    bool settled = true;
    if (x.bad || x.tools) {
        tg_chat_end_with_error(c, "stream_not_resumable",
                               x.bad ? "the streamed events of this request cannot be read back"
                                     : "the gateway restarted after a tool call was streamed; "
                                       "it cannot be continued");
    } else if (x.finished) {
        /* The final chunk went out before the crash: only the result was
         * missing. It is the text streamed. */
        tg_buf r = TG_BUF_INIT;
        tg_oai_completion_json(&r, c->id, c->created, c->model_out,
                               c->sent.data ? c->sent.data : "", c->sent.len, NULL, x.finish,
                               x.has_usage ? &x.usage : NULL, NULL);
        tg_apij_finish(c->api, c->rid, TG_JREC_COMPLETED, r.data, r.len, NULL, NULL);
        tg_buf_free(&r);
        tg_chat_free(c);
    } else {
        /* Continue on the engine from the text so far, as a mid-stream
         * failover does (api_chat.c engine_run). mid_ms is set so the first
         * token is not counted as a failover's. */
        c->continuing = true;
        c->n_sent_chunks = c->n_cloud_chunks = x.n_content;
        c->mid_ms = -1;
        settled = false;
    }
    tg_cres_prefix_free(&x);
    return settled;
}

/* A journaled request an earlier run left unfinished, run again with no
 * client (a NULL exchange: every answer goes to the journal only). Its
 * request lives in the chat: the body (chat_body) and the id. */
void tg_api_chat_recover(tg_api *api, const char *id, const char *body, size_t len) {
    tg_chat *c = tg_chat_new(api, NULL, NULL);
    snprintf(c->rid, sizeof c->rid, "%s", id);
    snprintf(c->req_id, sizeof c->req_id, "%s", id);
    c->chat_body = malloc(len + 1);
    if (!c->chat_body) abort();
    memcpy(c->chat_body, body, len);
    c->chat_body[len] = 0;
    c->chat_body_len = len;
    c->own_req.method = "POST";
    c->own_req.path = TG_CHAT_ROUTE;
    c->own_req.body = c->chat_body;
    c->own_req.body_len = len;
    c->own_req.request_id = c->rid;
    c->req = &c->own_req;
    c->journaled = true;
    c->recovered = true;
    tg_oai_error e;
    if (tg_chat_parse(c, &e) < 0) {
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    tg_chat_run(c);
}

/* ----------------------------------------------------------- resuming -- */

typedef struct {
    bool accepted, stream;
    uint64_t chunks;
    bool terminal;
} probe_ctx;

static int probe_rec(void *user, const tg_jrec *r) {
    probe_ctx *p = user;
    if (r->type == TG_JREC_ACCEPTED) {
        p->accepted = true;
        json_tokener *t = json_tokener_new();
        json_object *o =
            t ? json_tokener_parse_ex(t, (const char *)r->payload, (int)r->payload_len) : NULL;
        if (t) json_tokener_free(t);
        json_object *v;
        p->stream = o && json_object_object_get_ex(o, "stream", &v) &&
                    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
        json_object_put(o);
    } else if (r->type == TG_JREC_CHUNK) {
        p->chunks++;
    } else if (tg_jrec_is_terminal(r->type)) {
        p->terminal = true;
    }
    return 0;
}

int tg_cres_resume(tg_api *api, tg_http_exchange *ex, const tg_http_request *req, const char *id) {
    if (!api->journal) return -1;
    uint64_t last = 0;
    const char *h = tg_http_request_header(req, "last-event-id");
    if (h && tg_jchunk_parse_n(h, strlen(h), &last) != 0) {
        tg_api_error(api, ex, 400, NULL, "invalid_last_event_id", NULL,
                     "Last-Event-ID must be the id of an event of this stream (a number)");
        return 0;
    }
    probe_ctx p = {0};
    if (tg_journal_read(api->journal, id, probe_rec, &p) != 0 || !p.accepted || !p.stream)
        return -1;
    /* Ended before streams were journaled event by event: the caller
     * replays its stored result. */
    if (p.terminal && p.chunks == 0) return -1;
    tg_log_info("stream_resume", "request_id=%s last_event=%llu live=%s", id,
                (unsigned long long)last, p.terminal ? "no" : "yes");
    tg_http_add_header(ex, "x-tidegate-request-id", id);
    tg_http_add_header(ex, "Cache-Control", "no-cache");
    tg_http_add_header(ex, "X-Accel-Buffering", "no");
    tg_http_stream_begin(ex, 200, "text/event-stream; charset=utf-8");
    replay(sub_new(api, ex, id, last));
    return 0;
}

void tg_cres_wake(tg_api *api, const char *id, int status) {
    if (status != 0) {
        journal_failed(api, id);
        return;
    }
    for (sub *u = api->resumers, *nx; u; u = nx) {
        nx = u->next; /* replay frees only u */
        if (!strcmp(u->id, id)) replay(u);
    }
}

void tg_cres_metrics(tg_api *api) {
    static const double k_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005,
                                      0.01,   0.025,   0.05,   0.1,   0.25};
    api->event_durable = tg_metrics_histogram(
        api->metrics, "tidegate_stream_event_durable_seconds",
        "Time a streamed event waited for its journal record to be durable before it was sent",
        NULL, k_bounds, sizeof k_bounds / sizeof k_bounds[0]);
}

void tg_cres_close(tg_api *api) {
    while (api->resumers) {
        sub *u = api->resumers;
        api->resumers = u->next;
        free(u);
    }
}
