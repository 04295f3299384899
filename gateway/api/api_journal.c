#include "gateway/api/api_journal.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/tg_buf.h"
#include "common/tg_log.h"
#include "gateway/api/auth.h"
#include "gateway/api/chat_resume.h"
#include "gateway/api/reqstore.h"
#include "gateway/journal/tg_jcheck.h"
#include "gateway/journal/tg_jfile.h"
#include "router/router.h"

/* An exchange waiting for a request's terminal record. */
typedef struct waiter {
    struct waiter *prev, *next;
    tg_api *api;
    tg_http_exchange *ex;
    char id[TG_JREC_ID_MAX + 1];
    bool stream, include_usage;
} waiter;

typedef struct tg_apij {
    tg_jcrypt *key;
    tg_jidem idem;
    uint64_t retention_us;
    size_t puts; /* idempotency keys added since the last expiry pass */
    waiter *waiters;
    char **leftovers; /* ids an earlier run left unfinished */
    size_t n_left, cap_left;
} tg_apij;

static uint64_t now_us(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000ull + (uint64_t)tv.tv_usec;
}

void tg_apij_scope(const tg_api *api, const tg_http_request *req, char out[65]) {
    out[0] = 0;
    if (!api->cfg || api->cfg->auth.n_api_keys == 0 || !req || !req->bearer) return;
    if (tg_auth_sha256_hex(req->bearer, strlen(req->bearer), out) != 0) out[0] = 0;
}

/* ------------------------------------------------------------ records -- */

int tg_apij_accept(tg_api *api, const char *id, const tg_apij_meta *m, const char *body, size_t len,
                   tg_journal_done_cb cb, void *user) {
    tg_buf p = TG_BUF_INIT;
    tg_buf_puts(&p, "{\"scope\":");
    tg_buf_json_str(&p, m->scope ? m->scope : "", m->scope ? strlen(m->scope) : 0);
    tg_buf_puts(&p, ",\"idem\":");
    if (m->idem)
        tg_buf_json_str(&p, m->idem, strlen(m->idem));
    else
        tg_buf_puts(&p, "null");
    tg_buf_puts(&p, ",\"body_sha\":");
    tg_buf_json_str(&p, m->body_sha ? m->body_sha : "", m->body_sha ? strlen(m->body_sha) : 0);
    tg_buf_printf(&p, ",\"stream\":%s,\"include_usage\":%s,", m->stream ? "true" : "false",
                  m->include_usage ? "true" : "false");
    if (m->hint) tg_buf_printf(&p, "\"hint\":%d,", m->hint < 0 ? -1 : 1);
    tg_buf_puts(&p, "\"body\":");
    /* The body already parsed as a JSON object (tg_oai_parse_request). */
    tg_buf_append(&p, body, len);
    tg_buf_putc(&p, '}');
    int rc = tg_journal_append(api->journal, TG_JREC_ACCEPTED, id, p.data, p.len, cb, user);
    tg_buf_free(&p);
    return rc;
}

void tg_apij_note(tg_api *api, const char *id, int type, const char *payload, size_t len) {
    if (!api->journal) return;
    int rc = tg_journal_append(api->journal, type, id, payload, len, NULL, NULL);
    if (rc)
        tg_log_error("journal_append_failed", "request_id=%s type=%s error=%d", id,
                     tg_jrec_type_name(type), rc);
}

static void wake(tg_api *api, const char *id, int status);

typedef struct {
    tg_api *api;
    char id[TG_JREC_ID_MAX + 1];
    tg_journal_done_cb cb;
    void *user;
} finish_ctx;

static void on_finished(void *user, int status) {
    finish_ctx *f = user;
    if (status)
        tg_log_error("journal_append_failed", "request_id=%s terminal=yes error=%d", f->id, status);
    if (f->cb) f->cb(f->user, status);
    wake(f->api, f->id, status);
    free(f);
}

int tg_apij_finish(tg_api *api, const char *id, int type, const char *payload, size_t len,
                   tg_journal_done_cb cb, void *user) {
    if (!api->journal) return -1;
    finish_ctx *f = calloc(1, sizeof *f);
    if (!f) abort();
    f->api = api;
    snprintf(f->id, sizeof f->id, "%s", id);
    f->cb = cb;
    f->user = user;
    int rc = tg_journal_append(api->journal, type, id, payload, len, on_finished, f);
    if (rc) {
        tg_log_error("journal_append_failed", "request_id=%s type=%s error=%d", id,
                     tg_jrec_type_name(type), rc);
        free(f);
        wake(api, id, rc);
    }
    return rc;
}

void tg_apij_end(tg_api *api, const char *id, int type, int status, const char *err_type,
                 const char *code, const char *msg) {
    if (!api->journal) return;
    tg_buf p = TG_BUF_INIT;
    tg_buf_printf(&p, "{\"status\":%d,\"error\":{\"message\":", status);
    tg_buf_json_str(&p, msg ? msg : "", msg ? strlen(msg) : 0);
    tg_buf_puts(&p, ",\"type\":");
    const char *t = err_type ? err_type : status >= 500 ? "server_error" : "invalid_request_error";
    tg_buf_json_str(&p, t, strlen(t));
    tg_buf_puts(&p, ",\"param\":null,\"code\":");
    if (code && *code)
        tg_buf_json_str(&p, code, strlen(code));
    else
        tg_buf_puts(&p, "null");
    tg_buf_puts(&p, "}}");
    tg_apij_finish(api, id, type, p.data, p.len, NULL, NULL);
    tg_buf_free(&p);
}

/* FAILOVER records come from the router's observe hook: the plan runner
 * emits RT_EV_FAILOVER for every hop, before and after the first token. */
static void on_router_event(void *user, const rt_event *ev) {
    tg_api *api = user;
    if (ev->kind != RT_EV_FAILOVER || !ev->request_id || !api->journal) return;
    tg_journal_info info;
    if (tg_journal_info_get(api->journal, ev->request_id, &info) != 0 || info.terminal) return;
    tg_buf p = TG_BUF_INIT;
    const char *from = ev->from ? ev->from : "-", *to = ev->to ? ev->to : "-";
    const char *why = rt_fail_cause_name(ev->cause);
    tg_buf_puts(&p, "{\"from\":");
    tg_buf_json_str(&p, from, strlen(from));
    tg_buf_puts(&p, ",\"to\":");
    tg_buf_json_str(&p, to, strlen(to));
    tg_buf_puts(&p, ",\"reason\":");
    tg_buf_json_str(&p, why, strlen(why));
    tg_buf_printf(&p, ",\"midstream\":%s}", ev->midstream ? "true" : "false");
    tg_apij_note(api, ev->request_id, TG_JREC_FAILOVER, p.data, p.len);
    tg_buf_free(&p);
}

/* -------------------------------------------------------- idempotency -- */

static int keep_running(void *user, const tg_jidem_entry *e) {
    tg_api *api = user;
    tg_journal_info info;
    return tg_journal_info_get(api->journal, e->id, &info) == 0 && !info.terminal;
}

tg_apij_idem tg_apij_idem_claim(tg_api *api, const char *scope, const char *key,
                                const char *body_sha, const char *id, const char **found_id) {
    tg_apij *x = api->jx;
    uint64_t now = now_us();
    tg_jidem_entry *e = tg_jidem_get(&x->idem, scope, key);
    if (e && e->created_us + x->retention_us < now && !keep_running(api, e)) {
        tg_jidem_del(&x->idem, scope, key); /* past its retention: the key is free again */
        e = NULL;
    }
    if (e) {
        *found_id = e->id;
        return strcmp(e->body_sha, body_sha) ? TG_APIJ_IDEM_DIFF : TG_APIJ_IDEM_SAME;
    }
    if (++x->puts >= 1024) {
        x->puts = 0;
        tg_jidem_expire(&x->idem, now - x->retention_us, keep_running, api);
    }
    tg_jidem_put(&x->idem, scope, key, id, body_sha, now);
    *found_id = NULL;
    return TG_APIJ_IDEM_NEW;
}

void tg_apij_idem_drop(tg_api *api, const char *scope, const char *key) {
    if (api->jx) tg_jidem_del(&api->jx->idem, scope, key);
}

/* The request's FAILED record, if any, is a 429/503 refusal. */
static int refusal_rec(void *user, const tg_jrec *r) {
    if (tg_jcheck_is_refusal(r)) *(bool *)user = true;
    return 0;
}

static bool failed_retryable(tg_api *api, const char *id) {
    bool yes = false;
    tg_journal_read(api->journal, id, refusal_rec, &yes);
    return yes;
}

/* ------------------------------------------------------------ results -- */

static int view_rec(void *user, const tg_jrec *r) {
    tg_reqview_add(user, r->type, r->ts_us, r->payload, r->payload_len);
    return 0;
}

static int load_view(tg_api *api, const char *id, tg_reqview *v) {
    tg_reqview_init(v);
    if (!api->journal) return -ENOENT;
    int rc = tg_journal_read(api->journal, id, view_rec, v);
    if (rc == 0 && !v->accepted) rc = -ENOENT;
    return rc;
}

static void respond_error_json(tg_http_exchange *ex, int status, const tg_buf *err) {
    tg_buf b = TG_BUF_INIT;
    tg_buf_puts(&b, "{\"error\":");
    tg_buf_append(&b, err->data, err->len);
    tg_buf_putc(&b, '}');
    tg_http_respond(ex, status, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

/* Answers from a terminal view. */
static void answer_view(tg_api *api, tg_http_exchange *ex, const char *id, const tg_reqview *v,
                        bool stream, bool include_usage) {
    tg_http_add_header(ex, "x-tidegate-request-id", id);
    tg_http_add_header(ex, "idempotent-replayed", "true");
    if (v->state == TG_JREC_COMPLETED && v->result.len) {
        if (!stream) {
            tg_http_respond(ex, 200, "application/json", v->result.data, v->result.len);
            return;
        }
        tg_buf sse = TG_BUF_INIT;
        if (tg_replay_sse(v->result.data, v->result.len, include_usage, &sse) == 0) {
            tg_http_add_header(ex, "Cache-Control", "no-cache");
            tg_http_stream_begin(ex, 200, "text/event-stream; charset=utf-8");
            (void)tg_http_stream_write(ex, sse.data, sse.len);
            tg_http_stream_end(ex);
            tg_buf_free(&sse);
            return;
        }
        tg_buf_free(&sse);
    }
    if ((v->state == TG_JREC_FAILED || v->state == TG_JREC_CANCELLED) && v->error.len) {
        int st = v->error_status >= 400 && v->error_status <= 599 ? v->error_status
                 : v->state == TG_JREC_CANCELLED                  ? 409
                                                                  : 500;
        respond_error_json(ex, st, &v->error);
        return;
    }
    tg_api_error(api, ex, 500, "server_error", "result_unreadable", NULL,
                 "request %s ended but its stored result cannot be read", id);
}

static void waiter_unlink(waiter *w) {
    tg_apij *x = w->api->jx;
    if (w->prev)
        w->prev->next = w->next;
    else
        x->waiters = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void on_waiter_abort(void *arg) {
    waiter *w = arg;
    waiter_unlink(w);
    tg_http_respond(w->ex, 499, "text/plain", "", 0); /* frees only; nothing is sent */
    free(w);
}

void tg_apij_serve_result(tg_api *api, tg_http_exchange *ex, const char *id, bool stream,
                          bool include_usage) {
    tg_reqview v;
    int rc = load_view(api, id, &v);
    if (rc == 0 && tg_jrec_is_terminal(v.state)) {
        answer_view(api, ex, id, &v, stream, include_usage);
        tg_reqview_free(&v);
        return;
    }
    bool deferred = rc == 0 && v.state == TG_JREC_DEFERRED;
    tg_reqview_free(&v);
    if (deferred && !stream) {
        tg_http_add_header(ex, "idempotent-replayed", "true");
        tg_apij_respond_deferred(api, ex, id);
        return;
    }
    /* Running (or its ACCEPTED is still on its way to disk): wait for its
     * terminal record. */
    waiter *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->api = api;
    w->ex = ex;
    snprintf(w->id, sizeof w->id, "%s", id);
    w->stream = stream;
    w->include_usage = include_usage;
    w->next = api->jx->waiters;
    if (w->next) w->next->prev = w;
    api->jx->waiters = w;
    tg_http_set_on_abort(ex, on_waiter_abort, w);
}

static void wake(tg_api *api, const char *id, int status) {
    if (!api->jx) return;
    tg_cres_wake(api, id, status); /* resumed streams end */
    waiter *w = api->jx->waiters;
    while (w) {
        waiter *n = w->next;
        if (!strcmp(w->id, id)) {
            waiter_unlink(w);
            tg_http_set_on_abort(w->ex, NULL, NULL);
            tg_reqview v;
            int rc = status ? status : load_view(api, id, &v);
            if (!status && rc == 0 && tg_jrec_is_terminal(v.state))
                answer_view(api, w->ex, id, &v, w->stream, w->include_usage);
            else
                tg_api_error(api, w->ex, 503, "server_error", "journal_unavailable", NULL,
                             "request %s could not be journaled", id);
            if (!status) tg_reqview_free(&v);
            free(w);
        }
        w = n;
    }
}

/* -------------------------------------------------------- GET request -- */

static bool id_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

void tg_api_requests(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    static const char prefix[] = "/v1/requests/";
    const char *id = req->path + sizeof prefix - 1;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        tg_http_add_header(ex, "Allow", "GET, HEAD");
        tg_api_error(api, ex, 405, NULL, "method_not_allowed", NULL, "use GET");
        return;
    }
    if (!api->journal) {
        tg_api_error(api, ex, 404, NULL, "journal_off", NULL,
                     "the request journal is off (journal.enabled: false)");
        return;
    }
    char scope[65];
    tg_apij_scope(api, req, scope);
    tg_reqview v;
    int rc = id_ok(id) ? load_view(api, id, &v) : (tg_reqview_init(&v), -ENOENT);
    /* Another API key's request is as unknown as one that never was. */
    if (rc == 0 && strcmp(v.scope, scope) != 0) rc = -ENOENT;
    if (rc != 0) {
        tg_reqview_free(&v);
        if (rc == -ENOENT)
            tg_api_error(api, ex, 404, NULL, "request_not_found", "id", "no request with that id");
        else
            tg_api_error(api, ex, 503, "server_error", "journal_unavailable", NULL,
                         "the journal could not be read");
        return;
    }
    /* Accept: text/event-stream: the stream itself, after Last-Event-ID
     * (a request that was not streamed: its result as a stream). */
    const char *acc = tg_http_request_header(req, "accept");
    if (acc && strstr(acc, "text/event-stream")) {
        bool usage = v.include_usage;
        tg_reqview_free(&v);
        if (tg_cres_resume(api, ex, req, id) != 0) tg_apij_serve_result(api, ex, id, true, usage);
        return;
    }
    tg_buf b = TG_BUF_INIT;
    tg_reqview_json(&v, id, &b);
    tg_reqview_free(&v);
    tg_http_add_header(ex, "Cache-Control", "no-store");
    tg_http_respond(ex, 200, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

int tg_apij_view_json(tg_api *api, const char *id, tg_buf *out) {
    tg_reqview v;
    int rc = load_view(api, id, &v);
    if (rc == 0) tg_reqview_json(&v, id, out);
    tg_reqview_free(&v);
    return rc;
}

void tg_apij_respond_deferred(tg_api *api, tg_http_exchange *ex, const char *id) {
    tg_buf b = TG_BUF_INIT;
    if (tg_apij_view_json(api, id, &b) != 0) {
        tg_buf_free(&b);
        tg_api_error(api, ex, 503, "server_error", "journal_unavailable", NULL,
                     "request %s is deferred but the journal could not be read", id);
        return;
    }
    char loc[TG_JREC_ID_MAX + 16];
    snprintf(loc, sizeof loc, "/v1/requests/%s", id);
    tg_http_add_header(ex, "Location", loc);
    tg_http_add_header(ex, "x-tidegate-request-id", id);
    tg_http_add_header(ex, "Cache-Control", "no-store");
    tg_http_respond(ex, 202, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

static int hint_rec(void *user, const tg_jrec *r) {
    if (r->type != TG_JREC_ACCEPTED) return 0;
    json_tokener *tk = json_tokener_new();
    json_object *o =
        tk ? json_tokener_parse_ex(tk, (const char *)r->payload, (int)r->payload_len) : NULL;
    json_object *h;
    if (o && json_object_object_get_ex(o, "hint", &h) && json_object_is_type(h, json_type_int)) {
        int64_t v = json_object_get_int64(h);
        *(int *)user = v < 0 ? -1 : v > 0 ? 1 : 0;
    }
    json_object_put(o);
    if (tk) json_tokener_free(tk);
    return 1; /* one ACCEPTED per id */
}

int tg_apij_hint(tg_api *api, const char *id) {
    int hint = 0;
    if (api->journal) tg_journal_read(api->journal, id, hint_rec, &hint);
    return hint;
}

/* --------------------------------------------------------------- open -- */

typedef struct {
    tg_api *api;
    uint64_t since_us; /* idempotency keys younger than this are kept */
} open_scan;

static void add_leftover(tg_apij *x, const char *id) {
    if (x->n_left == x->cap_left) {
        x->cap_left = x->cap_left ? x->cap_left * 2 : 16;
        x->leftovers = realloc(x->leftovers, x->cap_left * sizeof *x->leftovers);
        if (!x->leftovers) abort();
    }
    x->leftovers[x->n_left] = strdup(id);
    if (!x->leftovers[x->n_left]) abort();
    x->n_left++;
}

/* Rebuilds the idempotency table and finds what was left unfinished. */
static int on_open_rec(void *user, const tg_jrec *r) {
    open_scan *s = user;
    tg_api *api = s->api;
    if (r->type != TG_JREC_ACCEPTED) return 0;
    char id[TG_JREC_ID_MAX + 1];
    memcpy(id, r->id, r->id_len);
    id[r->id_len] = 0;
    tg_journal_info info;
    if (tg_journal_info_get(api->journal, id, &info) != 0) return 0;
    if (!info.terminal) add_leftover(api->jx, id);
    if (r->ts_us < s->since_us && info.terminal) return 0;
    /* A request refused with 429/503 released its key when it ended. */
    if (info.terminal && info.state == TG_JREC_FAILED && failed_retryable(api, id)) return 0;
    /* Only the head of the payload is needed; json-c parses the whole of
     * it (bounded by TG_JREC_MAX). */
    json_tokener *tk = json_tokener_new();
    json_object *o =
        tk ? json_tokener_parse_ex(tk, (const char *)r->payload, (int)r->payload_len) : NULL;
    json_object *scope, *idem, *sha;
    if (o && json_object_object_get_ex(o, "idem", &idem) &&
        json_object_is_type(idem, json_type_string) &&
        json_object_object_get_ex(o, "scope", &scope) &&
        json_object_is_type(scope, json_type_string) &&
        json_object_object_get_ex(o, "body_sha", &sha) &&
        json_object_is_type(sha, json_type_string))
        tg_jidem_put(&api->jx->idem, json_object_get_string(scope), json_object_get_string(idem),
                     id, json_object_get_string(sha), r->ts_us);
    json_object_put(o);
    if (tk) json_tokener_free(tk);
    return 0;
}

/* $XDG_STATE_HOME/tidegate, else ~/.local/state/tidegate. */
static int default_dir(char *out, size_t n) {
    const char *x = getenv("XDG_STATE_HOME");
    if (x && x[0] == '/') return snprintf(out, n, "%s/tidegate", x) < (int)n ? 0 : -1;
    const char *h = getenv("HOME");
    if (h && h[0] == '/') return snprintf(out, n, "%s/.local/state/tidegate", h) < (int)n ? 0 : -1;
    return -1;
}

int tg_apij_open(tg_api *api) {
    const tg_config_journal *jc = &api->cfg->journal;
    if (!jc->enabled) {
        tg_log_warn("journal_off", "reason=\"journal.enabled is false: requests are not durable\"");
        return 0;
    }
    char dir[4096];
    if (jc->dir)
        snprintf(dir, sizeof dir, "%s", jc->dir);
    else if (default_dir(dir, sizeof dir) != 0) {
        tg_log_error("startup_failed", "reason=\"journal: no directory (set journal.dir, "
                                       "XDG_STATE_HOME or HOME)\"");
        return -1;
    }
    tg_apij *x = calloc(1, sizeof *x);
    if (!x) abort();
    char err[512];
    const char *env_name = jc->key_env ? jc->key_env : TG_JCRYPT_ENV;
    const char *env_val = getenv(env_name);
    if (jc->key_env && !jc->key_file && (!env_val || !*env_val)) {
        tg_log_error("startup_failed", "reason=\"journal.key_env names %s, which is unset\"",
                     env_name);
        free(x);
        return -1;
    }
    if (tg_jcrypt_load(jc->key_file, env_val, &x->key, err, sizeof err) != 0) {
        tg_log_error("startup_failed", "reason=\"%s\"", err);
        free(x);
        return -1;
    }
    tg_jfile_opts o = {.dir = dir,
                       .key = x->key,
                       .loop = api->loop,
                       .segment_bytes = jc->segment_bytes,
                       .retention_s = (uint64_t)jc->retention_s,
                       .no_sync = !jc->fsync};
    tg_jfile_report rep;
    api->journal = tg_jfile_open(&o, &rep, err, sizeof err);
    if (!api->journal) {
        tg_log_error("startup_failed", "reason=\"%s\"", err);
        tg_jcrypt_free(x->key);
        free(x);
        return -1;
    }
    api->jx = x;
    tg_jidem_init(&x->idem);
    x->retention_us = (uint64_t)jc->retention_s * 1000000ull;
    open_scan s = {api, now_us() - x->retention_us};
    tg_journal_scan(api->journal, on_open_rec, &s);
    if (api->router_on) rt_router_observe(&api->router, on_router_event, api);
    tg_cres_metrics(api);
    tg_log_info("journal_open",
                "dir=%s records=%llu requests=%llu unfinished=%zu idempotency_keys=%zu "
                "torn_bytes=%llu encrypted=%s fsync=%s",
                dir, (unsigned long long)rep.records, (unsigned long long)rep.requests, x->n_left,
                x->idem.count, (unsigned long long)rep.torn_bytes, x->key ? "yes" : "no",
                jc->fsync ? "yes" : "no");
    return 0;
}

/* What recovery needs of an unfinished request's records. */
typedef struct {
    char *body; /* the ACCEPTED body, re-encoded */
    int reruns; /* DISPATCHED records of earlier re-runs */
} leftover_recs;

static int leftover_rec(void *user, const tg_jrec *r) {
    leftover_recs *l = user;
    if (r->type != TG_JREC_ACCEPTED && r->type != TG_JREC_DISPATCHED) return 0;
    json_tokener *tk = json_tokener_new();
    if (!tk) return 0;
    json_object *o = json_tokener_parse_ex(tk, (const char *)r->payload, (int)r->payload_len);
    json_object *v;
    if (r->type == TG_JREC_ACCEPTED && !l->body && o && json_object_object_get_ex(o, "body", &v) &&
        json_object_is_type(v, json_type_object))
        l->body = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    if (r->type == TG_JREC_DISPATCHED && o && json_object_object_get_ex(o, "recovered", &v) &&
        json_object_get_boolean(v))
        l->reruns++;
    json_object_put(o);
    json_tokener_free(tk);
    return 0;
}

/* A request is re-run at most this many times: one that keeps a gateway
 * from coming up (or keeps dying with it) ends FAILED instead. */
#define MAX_RERUNS 2

void tg_apij_recover(tg_api *api) {
    tg_apij *x = api->jx;
    if (!x) return;
    size_t rerun = 0, failed = 0;
    for (size_t i = 0; i < x->n_left; i++) {
        const char *id = x->leftovers[i];
        leftover_recs l = {NULL, 0};
        tg_journal_read(api->journal, id, leftover_rec, &l);
        /* Chat requests (ids from the HTTP layer, req_...) are re-run;
         * a Responses request (resp_...) keeps its own store and is not. */
        bool chat = !strncmp(id, "req_", 4);
        if (chat && l.body && l.reruns < MAX_RERUNS) {
            /* Re-dispatched by the policy in force now; the result is
             * journaled, for GET and for a retry with its key. */
            tg_log_info("journal_rerun", "request_id=%s attempt=%d", id, l.reruns + 1);
            tg_api_chat_recover(api, id, l.body, strlen(l.body));
            rerun++;
        } else {
            tg_apij_end(api, id, TG_JREC_FAILED, 503, "server_error", "gateway_restarted",
                        !chat    ? "the gateway stopped before this response finished"
                        : l.body ? "the gateway stopped while this request ran, more than once"
                                 : "the gateway stopped before this request finished; its body "
                                   "could not be read back");
            failed++;
        }
        free(l.body);
        free(x->leftovers[i]);
    }
    if (x->n_left) tg_log_info("journal_recovered", "rerun=%zu failed=%zu", rerun, failed);
    free(x->leftovers);
    x->leftovers = NULL;
    x->n_left = x->cap_left = 0;
}

void tg_apij_close(tg_api *api) {
    tg_apij *x = api->jx;
    tg_journal_close(api->journal);
    api->journal = NULL;
    tg_cres_close(api);
    if (!x) return;
    /* Waiters still here: their exchanges are gone with the servers. */
    while (x->waiters) {
        waiter *w = x->waiters;
        x->waiters = w->next;
        free(w);
    }
    for (size_t i = 0; i < x->n_left; i++)
        free(x->leftovers[i]);
    free(x->leftovers);
    tg_jidem_free(&x->idem);
    tg_jcrypt_free(x->key);
    free(x);
    api->jx = NULL;
}
