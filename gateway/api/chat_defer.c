/* chat_defer: cloud-only requests waiting for the cloud. See chat_defer.h. */
#include "gateway/api/chat_defer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/tg_log.h"
#include "gateway/api/api_journal.h"
#include "gateway/api/chat_internal.h"
#include "router/reqfeat.h"

/* The queue's clock: keep-alives, the max wait and the wake-up check run
 * at this granularity (the smallest keepalive_s a policy may ask for). */
#define TICK_MS 100

typedef struct tg_defer {
    tg_api *api;
    uv_timer_t timer;
    bool timer_on;
    tg_chat *head, *tail; /* arrival order (t0_ns) */
    size_t n;
    uint64_t policy_reloads; /* the routing policy's reload count last seen */
} tg_defer;

static uint64_t wall_us(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000ull + (uint64_t)tv.tv_usec;
}

static void on_tick(uv_timer_t *t);

static tg_defer *queue(tg_api *api) {
    if (!api->defer) {
        tg_defer *d = calloc(1, sizeof *d);
        if (!d) abort();
        d->api = api;
        uv_timer_init(api->loop, &d->timer);
        d->timer.data = d;
        /* Waiting requests never keep the loop (and a shutdown) alive. */
        uv_unref((uv_handle_t *)&d->timer);
        d->policy_reloads = api->routing_on ? api->routing.n_reloads : 0;
        api->defer = d;
    }
    return api->defer;
}

static void enqueue(tg_defer *d, tg_chat *c) {
    tg_chat *after = d->tail;
    while (after && after->t0_ns > c->t0_ns)
        after = after->dprev;
    c->dprev = after;
    c->dnext = after ? after->dnext : d->head;
    if (c->dnext)
        c->dnext->dprev = c;
    else
        d->tail = c;
    if (after)
        after->dnext = c;
    else
        d->head = c;
    c->deferred = true;
    d->n++;
    if (!d->timer_on) {
        uv_timer_start(&d->timer, on_tick, TICK_MS, TICK_MS);
        d->timer_on = true;
    }
}

static void dequeue(tg_defer *d, tg_chat *c) {
    if (!c->deferred) return;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        d->head = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    else
        d->tail = c->dprev;
    c->dprev = c->dnext = NULL;
    c->deferred = false;
    d->n--;
}

void tg_defer_remove(tg_chat *c) {
    if (c->deferred && c->api->defer) dequeue(c->api->defer, c);
}

size_t tg_defer_count(const tg_api *api) {
    return api->defer ? api->defer->n : 0;
}

bool tg_defer_wanted(const tg_chat *c) {
    return c->plan.defer.enabled && c->api->journal && c->mode == TG_CHAT_CHAT && !c->token_out &&
           !c->started;
}

bool tg_chat_finish_when_gone(const tg_chat *c) {
    if (!c->journaled || !c->api->journal || c->mode != TG_CHAT_CHAT) return false;
    switch (c->plan.on_client_gone) {
    case RT_PGONE_CANCEL: return false;
    case RT_PGONE_FINISH: return true;
    case RT_PGONE_AUTO: break;
    }
    return c->idem[0] != 0;
}

int tg_chat_hint(tg_chat *c) {
    if (!c->hint_known)
        c->hint = c->recovered ? tg_apij_hint(c->api, c->rid)
                               : rt_reqfeat_hint(tg_http_request_header(c->req, "x-tidegate-hint"));
    c->hint_known = true;
    return c->hint;
}

/* ------------------------------------------------------------ the client -- */

bool tg_chat_let_client_go(tg_chat *c) {
    if (!tg_chat_finish_when_gone(c)) return false;
    tg_log_info("client_gone_finishing", "request_id=%s", c->rid);
    tg_chat_own_request(c); /* the exchange, and the request in it, end now */
    if (c->started)
        tg_http_stream_end(c->ex);
    else
        tg_http_respond(c->ex, 499, "text/plain", "", 0); /* frees only; nothing is sent */
    c->ex = NULL;
    return true;
}

/* An OpenAI-style error event that also names the request id. */
static void error_event(tg_chat *c, const char *type, const char *code, const char *msg) {
    tg_buf j = TG_BUF_INIT, ev = TG_BUF_INIT;
    tg_buf_puts(&j, "{\"error\":{\"message\":");
    tg_buf_json_str(&j, msg, strlen(msg));
    tg_buf_puts(&j, ",\"type\":");
    tg_buf_json_str(&j, type, strlen(type));
    tg_buf_puts(&j, ",\"param\":null,\"code\":");
    tg_buf_json_str(&j, code, strlen(code));
    tg_buf_puts(&j, ",\"request_id\":");
    tg_buf_json_str(&j, c->rid, strlen(c->rid));
    tg_buf_puts(&j, "}}");
    tg_sse_data(&ev, j.data, j.len);
    (void)tg_http_stream_write(c->ex, ev.data, ev.len);
    tg_buf_free(&j);
    tg_buf_free(&ev);
}

void tg_defer_end(tg_chat *c, int type, int status, const char *err_type, const char *code,
                  const char *msg) {
    tg_api *api = c->api;
    if (!err_type) err_type = status >= 500 ? "server_error" : "invalid_request_error";
    if (type) tg_apij_end(api, c->rid, type, status, err_type, code, msg);
    if (c->ex) {
        tg_http_set_on_abort(c->ex, NULL, NULL);
        if (c->defer_head) {
            error_event(c, err_type, code, msg);
            tg_http_stream_end(c->ex);
        } else {
            tg_api_error(api, c->ex, status, err_type, code, NULL, "%s", msg);
        }
        c->ex = NULL;
    }
    tg_chat_event(c, RT_EV_FAILED, "-", NULL, NULL, c->last_cause, false,
                  tg_chat_ms_since(c->t0_ns), status);
    tg_chat_free(c);
}

/* A waiting stream lets its client go (max wait, shutdown): the error
 * event names the id; the request keeps waiting with no client. */
static void let_go(tg_chat *c, const char *code, const char *msg) {
    tg_http_set_on_abort(c->ex, NULL, NULL);
    error_event(c, "server_error", code, msg);
    tg_http_stream_end(c->ex);
    c->ex = NULL;
    tg_log_info("deferred_client_released", "request_id=%s code=%s", c->rid, code);
}

static void cancel_gone(tg_chat *c) {
    tg_log_info("deferred_cancelled", "request_id=%s", c->rid);
    tg_defer_end(c, TG_JREC_CANCELLED, 499, "cancelled", "client_gone",
                 "the client went away while the request waited for the cloud");
}

static void on_defer_abort(void *arg) {
    tg_chat *c = arg;
    if (c->defer_head)
        tg_http_stream_end(c->ex);
    else
        tg_http_respond(c->ex, 499, "text/plain", "", 0); /* frees only; nothing is sent */
    c->ex = NULL;
    if (tg_chat_finish_when_gone(c)) {
        tg_log_info("deferred_client_gone", "request_id=%s keeps=waiting", c->rid);
        return;
    }
    if (c->defer_pending) { /* DEFERRED is on its way: on_deferred cancels */
        c->gone = true;
        return;
    }
    cancel_gone(c);
}

/* The stream's head with the id, and a comment saying what it waits for;
 * the answer's chunks follow on the same stream (start_stream knows). */
static void open_stream(tg_chat *c) {
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/requests/%s", c->rid);
    tg_http_set_route(c->ex, "deferred");
    tg_http_add_header(c->ex, "x-tidegate-request-id", c->rid);
    tg_http_add_header(c->ex, "Location", loc);
    tg_http_add_header(c->ex, "x-tidegate-reason", c->plan.reason);
    tg_http_add_header(c->ex, "x-tidegate-deferred", "true");
    tg_http_add_header(c->ex, "Cache-Control", "no-cache");
    tg_http_add_header(c->ex, "X-Accel-Buffering", "no");
    tg_http_stream_begin(c->ex, 200, "text/event-stream; charset=utf-8");
    c->defer_head = true;
    char note[128];
    snprintf(note, sizeof note, "deferred: request %s waits for the cloud", c->rid);
    tg_buf b = TG_BUF_INIT;
    tg_sse_comment(&b, note);
    (void)tg_http_stream_write(c->ex, b.data, b.len);
    tg_buf_free(&b);
}

/* ------------------------------------------------------------ the wait -- */

static void on_deferred(void *user, int status) {
    tg_chat *c = user;
    tg_api *api = c->api;
    c->defer_pending = false;
    if (status != 0) {
        tg_log_error("journal_append_failed", "request_id=%s type=DEFERRED error=%d", c->rid,
                     status);
        /* Nothing says it waits: it cannot. */
        tg_defer_end(c, TG_JREC_FAILED, 503, "server_error", "journal_unavailable",
                     "the request could not be deferred: the journal failed");
        return;
    }
    c->defer_recorded = true;
    if (c->gone) {
        cancel_gone(c);
        return;
    }
    uint64_t now = uv_now(api->loop);
    if (!c->defer_t0_ms) c->defer_t0_ms = now;
    c->defer_ka_ms = now + (uint64_t)c->plan.defer.keepalive_ms;
    tg_journal_info info;
    if (!c->defer_created_us)
        c->defer_created_us =
            api->journal && tg_journal_info_get(api->journal, c->rid, &info) == 0 && info.created_us
                ? info.created_us
                : wall_us();
    tg_log_info("request_deferred", "request_id=%s rule=%s stream=%d client=%s reason=\"%s\"",
                c->rid, c->plan.rule, c->stream, c->ex ? "yes" : "no", c->plan.reason);
    if (c->ex && !c->stream) {
        tg_http_set_on_abort(c->ex, NULL, NULL);
        tg_http_set_route(c->ex, "deferred");
        tg_http_add_header(c->ex, "x-tidegate-reason", c->plan.reason);
        tg_apij_respond_deferred(api, c->ex, c->rid);
        c->ex = NULL;
    } else if (c->ex && !c->defer_head) {
        open_stream(c);
    }
    enqueue(queue(api), c);
}

void tg_chat_own_request(tg_chat *c) {
    if (c->req == &c->own_req) return;
    if (!c->chat_body) {
        c->chat_body = malloc(c->req->body_len + 1);
        if (!c->chat_body) abort();
        memcpy(c->chat_body, c->req->body, c->req->body_len);
        c->chat_body[c->req->body_len] = 0;
        c->chat_body_len = c->req->body_len;
    }
    c->own_req.method = "POST";
    c->own_req.path = TG_CHAT_ROUTE;
    c->own_req.body = c->chat_body;
    c->own_req.body_len = c->chat_body_len;
    c->own_req.request_id = c->rid;
    c->req = &c->own_req;
}

void tg_defer_request(tg_chat *c) {
    tg_api *api = c->api;
    tg_chat_unlink(c); /* the live list is for requests that run */
    tg_chat_own_request(c);
    if (c->ex) tg_http_set_on_abort(c->ex, on_defer_abort, c);
    /* A wake-up whose re-plan is still empty waits on under the DEFERRED
     * already journaled; a wait after a dispatch (its targets all failed)
     * is a new one. */
    if (c->defer_recorded && c->plan.n_targets == 0) {
        enqueue(queue(api), c);
        return;
    }
    tg_buf p = TG_BUF_INIT;
    tg_buf_puts(&p, "{\"reason\":");
    tg_buf_json_str(&p, c->plan.reason, strlen(c->plan.reason));
    tg_buf_puts(&p, ",\"rule\":");
    tg_buf_json_str(&p, c->plan.rule, strlen(c->plan.rule));
    const char *cause = rt_fail_cause_name(c->last_cause);
    tg_buf_puts(&p, ",\"cause\":");
    tg_buf_json_str(&p, cause, strlen(cause));
    tg_buf_printf(&p, ",\"max_wait_s\":%.3f}", c->plan.defer.max_wait_ms / 1000.0);
    c->defer_recorded = false;
    c->defer_pending = true;
    int rc =
        tg_journal_append(api->journal, TG_JREC_DEFERRED, c->rid, p.data, p.len, on_deferred, c);
    tg_buf_free(&p);
    if (rc != 0) on_deferred(c, rc);
}

/* Can a cloud target take work now? The mode allows the cloud and some
 * upstream's breaker is closed, past its cool-down, or has its half-open
 * trial free. */
static bool cloud_ready(tg_api *api) {
    if (!api->router_on) return false;
    rt_router *r = &api->router;
    if (r->n_ups == 0 || !rt_conn_cloud_allowed(&r->conn)) return false;
    uint64_t now = rt_now_ms(r);
    for (int i = 0; i < r->n_ups; i++) {
        const rt_breaker *b = &r->ups[i].breaker;
        switch (b->state) {
        case RT_BREAKER_CLOSED: return true;
        case RT_BREAKER_HALF_OPEN:
            if (!b->trial_out) return true;
            break;
        case RT_BREAKER_OPEN:
            if (now - b->opened_at_ms >= b->conf.cooldown_ms) return true;
            break;
        }
    }
    return false;
}

/* Re-plans and runs a waiting request (the policy in force now). */
static void run_again(tg_chat *c) {
    tg_log_info("deferred_dispatch", "request_id=%s waited_ms=%llu", c->rid,
                (unsigned long long)(uv_now(c->api->loop) - c->defer_t0_ms));
    c->attempt = 0;
    c->failover[0] = 0;
    c->hop_from[0] = 0;
    c->fault_ns = 0;
    c->last_cause = RT_FAIL_NONE;
    c->last_retry_after = 0;
    c->escalated = false;
    c->cascading = false;
    c->got_text = false;
    tg_buf_clear(&c->text);
    tg_buf_clear(&c->reasoning);
    tg_buf_clear(&c->held);
    tg_oai_error e;
    if (tg_chat_parse(c, &e) < 0) { /* it parsed when it came: the body is what it was */
        tg_defer_end(c, TG_JREC_FAILED, e.status, e.type, e.code, e.message);
        return;
    }
    tg_chat_run(c);
}

/* Oldest first, while the cloud can take work (a half-open breaker takes
 * one trial: the others wait for its outcome); all of them after a policy
 * reload (the new rule may send them elsewhere; still deferred, they wait
 * on under the same DEFERRED). */
static void wake(tg_defer *d) {
    tg_api *api = d->api;
    bool reloaded = api->routing_on && api->routing.n_reloads != d->policy_reloads;
    if (api->routing_on) d->policy_reloads = api->routing.n_reloads;
    tg_chat *c = d->head;
    d->head = d->tail = NULL;
    d->n = 0;
    while (c) {
        tg_chat *next = c->dnext;
        c->dprev = c->dnext = NULL;
        c->deferred = false;
        if (reloaded || cloud_ready(api))
            run_again(c);
        else
            enqueue(d, c);
        c = next;
    }
}

static void on_tick(uv_timer_t *t) {
    tg_defer *d = t->data;
    tg_api *api = d->api;
    uint64_t now = uv_now(api->loop), wall = wall_us();
    uint64_t keep_us = (uint64_t)api->cfg->journal.retention_s * 1000000ull;
    char msg[256];
    for (tg_chat *c = d->head, *next; c; c = next) {
        next = c->dnext;
        if (keep_us && wall > c->defer_created_us + keep_us) {
            snprintf(msg, sizeof msg,
                     "request %s waited for the cloud past the journal's retention (%llu s)",
                     c->rid, (unsigned long long)(keep_us / 1000000ull));
            tg_defer_end(c, TG_JREC_FAILED, 504, "server_error", "deferred_expired", msg);
            continue;
        }
        if (!c->ex || !c->defer_head) continue;
        if (api->draining) {
            snprintf(msg, sizeof msg,
                     "the gateway is shutting down; request %s stays deferred and runs after "
                     "the restart: GET /v1/requests/%s",
                     c->rid, c->rid);
            let_go(c, "server_shutting_down", msg);
        } else if (now - c->defer_t0_ms >= (uint64_t)c->plan.defer.max_wait_ms) {
            snprintf(msg, sizeof msg,
                     "no cloud target answered within %.1f s; request %s stays deferred: "
                     "GET /v1/requests/%s for its result",
                     c->plan.defer.max_wait_ms / 1000.0, c->rid, c->rid);
            let_go(c, "deferred_timeout", msg);
        } else if (now >= c->defer_ka_ms) {
            static const char ka[] = ": keep-alive\n\n";
            (void)tg_http_stream_write(c->ex, ka, sizeof ka - 1);
            c->defer_ka_ms = now + (uint64_t)c->plan.defer.keepalive_ms;
        }
    }
    if (!api->draining) wake(d);
    if (!d->head && d->timer_on) {
        uv_timer_stop(&d->timer);
        d->timer_on = false;
    }
}

static void on_closed(uv_handle_t *h) {
    free(h->data);
}

void tg_defer_close(tg_api *api) {
    tg_defer *d = api->defer;
    if (!d) return;
    while (d->head) {
        tg_chat *c = d->head;
        dequeue(d, c);
        if (c->ex) {
            tg_http_set_on_abort(c->ex, NULL, NULL);
            tg_http_stream_end(c->ex);
            c->ex = NULL;
        }
        tg_chat_free(c); /* its journal stays DEFERRED: the next start re-plans it */
    }
    api->defer = NULL;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_closed);
}
