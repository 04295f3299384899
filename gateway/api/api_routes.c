/* api_routes: the route table, access rules and the small routes. The chat
 * route lives in api_chat.c. */
#include "gateway/api/api_routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gateway/api/api_journal.h"
#include "gateway/api/auth.h"
#include "gateway/api/openai_api.h"

/* The access rule also decides the listener a route is served on:
 *   ACCESS_OPEN   both listeners, no key (probes)
 *   ACCESS_API    the API listener only (server.listen), API key when set
 *   ACCESS_ADMIN  the admin listener only (admin.listen), admin key when
 *                 set. The API port answers 404 for these whatever the
 *                 peer, so a reverse proxy in front of the API (whose every
 *                 client looks like loopback) can never reach them.
 * A new admin endpoint only needs ACCESS_ADMIN in the table below. */
typedef enum { ACCESS_OPEN, ACCESS_API, ACCESS_ADMIN } access_rule;

typedef void (*route_fn)(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);

typedef struct {
    const char *path;
    bool prefix; /* path is a prefix ("/admin/") */
    const char *method;
    route_fn fn;
    access_rule access;
} route;

static void route_models(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
static void route_model_by_id(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
static void route_healthz(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
static void route_readyz(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
static void route_metrics(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
static void route_admin(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);

/* Where a request enters: the first entry whose path matches (on the
 * listener the request came in on) decides. HEAD is answered wherever GET
 * is (the server sends the head without the body). */
static const route k_routes[] = {
    {"/v1/chat/completions", false, "POST", tg_api_chat, ACCESS_API},
    {"/v1/models", false, "GET", route_models, ACCESS_API},
    {"/v1/models/", true, "GET", route_model_by_id, ACCESS_API},
    {"/v1/responses", false, "POST", tg_api_responses, ACCESS_API},
    {"/v1/responses/", true, "GET", tg_api_response_by_id, ACCESS_API},
    {"/v1/responses/", true, "DELETE", tg_api_response_by_id, ACCESS_API},
    {"/v1/completions", false, "POST", tg_api_completions, ACCESS_API},
    {"/v1/requests/", true, "GET", tg_api_requests, ACCESS_API},
    {"/healthz", false, "GET", route_healthz, ACCESS_OPEN},
    {"/readyz", false, "GET", route_readyz, ACCESS_OPEN},
    {"/metrics", false, "GET", route_metrics, ACCESS_ADMIN},
    {"/admin/", true, NULL, route_admin, ACCESS_ADMIN}, /* any method */
};
#define N_ROUTES (sizeof k_routes / sizeof k_routes[0])

/* ------------------------------------------------------------ counting -- */

/* Every response is counted once, by tg_api_on_response, which the HTTP
 * server calls when an exchange ends (also for the answers it makes by
 * itself). The helpers below only answer. */

static const route *find_route(const tg_http_request *req, bool *path_known);

/* The metrics label of a request the handler saw: the matched route
 * pattern, "other" for unknown paths and methods (bounded cardinality, never
 * the raw path). */
static const char *route_label(const tg_http_request *req) {
    bool known = false;
    const route *r = find_route(req, &known);
    if (!r) return "other";
    if (!r->prefix) return r->path;
    return !strcmp(r->path, "/admin/") ? "/admin/*" : r->path;
}

void tg_api_on_response(void *user, const tg_http_done *d) {
    tg_api *api = user;
    /* "-": the server answered before any route was involved (limits,
     * malformed requests, connection limit). A client that left before the
     * end is a 499 whatever head had gone out (nginx's "client closed
     * request"). */
    const char *label = d->handled ? route_label(d->req) : "-";
    int status = d->aborted ? 499 : d->status;
    tg_metrics_std_request(&api->std, label, status, d->ms / 1000.0);
    /* Tokens as the handler last reported them (tg_http_set_tokens), so a
     * request cut short by the client or by shutdown counts what it used. */
    if (d->tokens_in || d->tokens_out)
        tg_metrics_std_tokens(&api->std, d->tokens_in, d->tokens_out);
}

void tg_api_error(tg_api *api, tg_http_exchange *ex, int status, const char *type, const char *code,
                  const char *param, const char *fmt, ...) {
    (void)api;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Every 503 and 429 tells the client when to come back. */
    if (status == 503 || status == 429) tg_http_add_header(ex, "Retry-After", "1");
    tg_oai_error e;
    tg_oai_error_set(&e, status,
                     type            ? type
                     : status >= 500 ? "server_error"
                                     : NULL,
                     code, param, "%s", msg);
    tg_buf b = TG_BUF_INIT;
    tg_oai_error_json(&b, &e);
    tg_http_respond(ex, status, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

/* --------------------------------------------------------------- routes -- */

static void route_models(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    const char *ids[RT_MAX_UPSTREAMS + 4], *owners[RT_MAX_UPSTREAMS + 4];
    size_t n = rt_dispatch_models(&api->dispatch, ids, owners, RT_MAX_UPSTREAMS + 4);
    tg_buf b = TG_BUF_INIT;
    tg_oai_models_json(&b, ids, owners, n, api->started_at);
    tg_http_respond(ex, 200, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

/* %XX-decodes src into dst (cap bytes); SDKs encode "tidegate/auto". */
static void pct_decode(const char *src, char *dst, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; src[i] && o + 1 < cap; i++) {
        unsigned v;
        if (src[i] == '%' && src[i + 1] && src[i + 2] && sscanf(src + i + 1, "%2x", &v) == 1 &&
            v > 0) {
            dst[o++] = (char)v;
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = 0;
}

static void route_model_by_id(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    char want[256];
    pct_decode(req->path + strlen("/v1/models/"), want, sizeof want);
    const char *ids[8], *owners[8];
    size_t n = rt_dispatch_models(&api->dispatch, ids, owners, 8);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], want) != 0) continue;
        tg_buf b = TG_BUF_INIT;
        tg_buf_puts(&b, "{\"id\":");
        tg_buf_json_str(&b, ids[i], strlen(ids[i]));
        tg_buf_printf(
            &b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":", (long long)api->started_at);
        const char *o = owners[i] ? owners[i] : "tidegate";
        tg_buf_json_str(&b, o, strlen(o));
        tg_buf_putc(&b, '}');
        tg_http_respond(ex, 200, "application/json", b.data, b.len);
        tg_buf_free(&b);
        return;
    }
    tg_api_error(api, ex, 404, "invalid_request_error", "model_not_found", "model",
                 "The model '%.100s' does not exist", want);
}

static void route_healthz(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    static const char body[] = "{\"status\":\"ok\"}";
    tg_http_respond(ex, 200, "application/json", body, sizeof body - 1);
}

static void route_readyz(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    if (api->draining) {
        tg_api_error(api, ex, 503, "server_error", "draining", NULL, "the server is shutting down");
        return;
    }
    if (!api->dispatch.engine_ready) {
        tg_api_error(api, ex, 503, "server_error", "engine_unavailable", NULL,
                     "the engine is not loaded");
        return;
    }
    tg_buf b = TG_BUF_INIT;
    tg_buf_puts(&b, "{\"status\":\"ready\",\"model\":");
    const char *id = api->dispatch.engine_model_id ? api->dispatch.engine_model_id : "";
    tg_buf_json_str(&b, id, strlen(id));
    tg_buf_printf(&b, ",\"queue_depth\":%d,\"active\":%d}",
                  api->engine.sched ? lfm_sched_queue_depth(api->engine.sched) : 0,
                  api->engine.sched ? lfm_sched_active(api->engine.sched) : 0);
    tg_http_respond(ex, 200, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

static void route_metrics(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_buf b = TG_BUF_INIT;
    /* This scrape is counted once it has been sent: the next one sees it. */
    tg_metrics_render(api->metrics, &b);
    tg_http_respond(ex, 200, TG_METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
    tg_buf_free(&b);
}

static void route_admin(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    /* Access is already enforced; api_admin.c answers. */
    tg_api_admin(api, ex, req);
}

/* -------------------------------------------------------------- gauges -- */

static double g_queue_depth(void *u) {
    tg_api *api = u;
    return api->engine.sched ? lfm_sched_queue_depth(api->engine.sched) : 0;
}
static double g_active_seqs(void *u) {
    tg_api *api = u;
    return api->engine.sched ? lfm_sched_active(api->engine.sched) : 0;
}
static double g_connections(void *u) {
    tg_api *api = u;
    /* Both listeners: the API and the admin one. */
    size_t n = api->server ? tg_http_server_active_connections(api->server) : 0;
    if (api->admin_server) n += tg_http_server_active_connections(api->admin_server);
    return (double)n;
}
static double g_buffered(void *u) {
    tg_api *api = u;
    return api->server ? (double)tg_http_server_memory_used(api->server) : 0;
}
static double g_inflight(void *u) {
    tg_api *api = u;
    return (double)api->n_chats;
}

/* Prefix cache counters as of the scheduler's last step (0 without an
 * engine or with the cache off). One lock per series per scrape. */
static lfm_cache_stats cache_stats(void *u) {
    tg_api *api = u;
    lfm_cache_stats st = {0};
    if (api->engine.sched) lfm_sched_cache_stats(api->engine.sched, &st);
    return st;
}
static double g_pc_lookups(void *u) {
    return (double)cache_stats(u).lookups;
}
static double g_pc_hits(void *u) {
    return (double)cache_stats(u).hits;
}
static double g_pc_tokens(void *u) {
    return (double)cache_stats(u).tokens_reused;
}
static double g_pc_evictions(void *u) {
    return (double)cache_stats(u).evictions;
}
static double g_pc_entries(void *u) {
    return (double)cache_stats(u).entries;
}
static double g_pc_bytes(void *u) {
    return (double)cache_stats(u).bytes;
}

void tg_api_register_metrics(tg_api *api) {
    tg_metrics_gauge_fn(api->metrics, "tidegate_engine_queue_depth",
                        "Engine jobs waiting for a sequence slot", g_queue_depth, api);
    tg_metrics_gauge_fn(api->metrics, "tidegate_engine_active_sequences",
                        "Engine sequences being decoded", g_active_seqs, api);
    tg_metrics_counter_fn(api->metrics, "tidegate_engine_prefix_cache_lookups_total",
                          "Engine jobs started (each looks its prompt up in the prefix cache)",
                          g_pc_lookups, api);
    tg_metrics_counter_fn(api->metrics, "tidegate_engine_prefix_cache_hits_total",
                          "Engine jobs that restored a cached prompt prefix", g_pc_hits, api);
    tg_metrics_counter_fn(api->metrics, "tidegate_engine_prefix_cache_tokens_restored_total",
                          "Prompt tokens restored from the prefix cache instead of evaluated",
                          g_pc_tokens, api);
    tg_metrics_counter_fn(api->metrics, "tidegate_engine_prefix_cache_evictions_total",
                          "Prefix cache entries evicted to stay within engine.prefix_cache_mib",
                          g_pc_evictions, api);
    tg_metrics_gauge_fn(api->metrics, "tidegate_engine_prefix_cache_entries",
                        "Sequences held in the prefix cache", g_pc_entries, api);
    tg_metrics_gauge_fn(api->metrics, "tidegate_engine_prefix_cache_bytes",
                        "Bytes held by the prefix cache", g_pc_bytes, api);
    tg_metrics_gauge_fn(api->metrics, "tidegate_http_active_connections",
                        "Open client connections (API and admin listeners)", g_connections, api);
    tg_metrics_gauge_fn(api->metrics, "tidegate_chat_inflight", "Chat completions in progress",
                        g_inflight, api);
    tg_metrics_gauge_fn(api->metrics, "tidegate_http_buffered_bytes",
                        "Request bodies, unparsed input and unsent output held for API clients "
                        "(checked against server.memory_budget_bytes)",
                        g_buffered, api);
}

/* ------------------------------------------------------------- dispatch -- */

static bool check_access(tg_api *api, tg_http_exchange *ex, const tg_http_request *req,
                         const route *r) {
    const char *tok = req->bearer;
    size_t toklen = tok ? strlen(tok) : 0;
    tg_auth_result res = TG_AUTH_ALLOW;
    if (r->access == ACCESS_API)
        res = tg_auth_check_bearer(api->cfg, tok, toklen);
    else if (r->access == ACCESS_ADMIN)
        res = tg_auth_admin_allowed(api->cfg, tok, toklen, req->peer_is_loopback);
    if (res == TG_AUTH_ALLOW) return true;
    if (res == TG_AUTH_NEED_KEY) {
        tg_http_add_header(ex, "WWW-Authenticate", "Bearer");
        tg_api_error(api, ex, 401, "invalid_request_error", "invalid_api_key", NULL,
                     tok ? "Incorrect API key provided"
                         : "You didn't provide an API key: use Authorization: Bearer <key>");
    } else {
        tg_api_error(api, ex, 403, "invalid_request_error", "forbidden", NULL,
                     "this endpoint is only available to admin clients");
    }
    return false;
}

/* The first route whose path matches and whose method fits, or NULL;
 * path_known tells a wrong method (405) from an unknown path (404). */
static bool served_here(const route *r, const tg_http_request *req) {
    if (r->access == ACCESS_OPEN) return true;
    return (r->access == ACCESS_ADMIN) == (req->listener == TG_API_LISTENER_ADMIN);
}

static bool method_fits(const route *r, const char *method) {
    if (!r->method || !strcmp(method, r->method)) return true;
    return !strcmp(method, "HEAD") && !strcmp(r->method, "GET");
}

static const route *find_route(const tg_http_request *req, bool *path_known) {
    *path_known = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const route *r = &k_routes[i];
        if (!served_here(r, req)) continue;
        bool hit =
            r->prefix ? !strncmp(req->path, r->path, strlen(r->path)) : !strcmp(req->path, r->path);
        if (!hit) continue;
        *path_known = true;
        if (method_fits(r, req->method)) return r;
    }
    return NULL;
}

/* ---------------------------------------------------------------- CORS -- */

/* True when origin is in the configured comma list (or the list is "*"). */
static bool cors_allowed(const char *list, const char *origin) {
    size_t ol = strlen(origin);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t n = (size_t)(e - p);
        while (n && p[n - 1] == ' ')
            n--;
        if ((n == 1 && *p == '*') || (n == ol && n && !strncmp(p, origin, n))) return true;
        p = e;
    }
    return false;
}

/* Adds the CORS headers every answer to an allowed Origin carries; false
 * (and nothing added) when CORS is off (server.cors_origins unset) or the
 * Origin is not allowed. */
static bool cors_headers(const tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    const char *list = api->cfg ? api->cfg->server.cors_origins : NULL;
    const char *origin = tg_http_request_header(req, "origin");
    if (!list || !origin || !cors_allowed(list, origin)) return false;
    tg_http_add_header(ex, "Access-Control-Allow-Origin", origin);
    tg_http_add_header(ex, "Vary", "Origin");
    tg_http_add_header(ex, "Access-Control-Expose-Headers",
                       "x-request-id, x-tidegate-route, x-tidegate-reason, retry-after");
    return true;
}

void tg_api_error_headers(void *user, const tg_http_request *req, tg_http_exchange *ex) {
    cors_headers(user, ex, req);
}

/* Adds CORS headers for an allowed Origin; answers a preflight (OPTIONS
 * with Access-Control-Request-Method) itself, without auth, and returns
 * true then. */
static bool cors(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    if (!cors_headers(api, ex, req)) return false;
    if (strcmp(req->method, "OPTIONS") != 0 ||
        !tg_http_request_header(req, "access-control-request-method"))
        return false;
    tg_http_add_header(ex, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    const char *rh = tg_http_request_header(req, "access-control-request-headers");
    tg_http_add_header(ex, "Access-Control-Allow-Headers",
                       rh ? rh : "authorization, content-type, x-request-id");
    tg_http_add_header(ex, "Access-Control-Max-Age", "600");
    tg_http_respond(ex, 204, "text/plain", "", 0);
    return true;
}

int tg_api_on_head(void *user, const tg_http_request *req, tg_http_reject *rej) {
    tg_api *api = user;
    bool known = false;
    const route *r = find_route(req, &known);
    if (!r) return 0; /* 404/405 from the handler; the body limit still holds */
    const char *tok = req->bearer;
    size_t toklen = tok ? strlen(tok) : 0;
    tg_auth_result res = TG_AUTH_ALLOW;
    if (r->access == ACCESS_API)
        res = tg_auth_check_bearer(api->cfg, tok, toklen);
    else if (r->access == ACCESS_ADMIN)
        res = tg_auth_admin_allowed(api->cfg, tok, toklen, req->peer_is_loopback);
    if (res == TG_AUTH_ALLOW) return 0;
    if (res == TG_AUTH_NEED_KEY) {
        *rej = (tg_http_reject){401, "invalid_api_key",
                                tok ? "Incorrect API key provided"
                                    : "You didn't provide an API key: use Authorization: Bearer "
                                      "<key>",
                                "Bearer"};
    } else {
        *rej = (tg_http_reject){403, "forbidden",
                                "this endpoint is only available to admin clients", NULL};
    }
    return rej->status;
}

void tg_api_handle(tg_http_exchange *ex, const tg_http_request *req, void *user) {
    tg_api *api = user;
    if (cors(api, ex, req)) return;
    bool path_known = false;
    const route *match = find_route(req, &path_known);
    if (!match) {
        if (path_known) {
            /* Allow lists every method the path takes. */
            char allow[64] = "";
            for (size_t i = 0; i < N_ROUTES; i++)
                if (!k_routes[i].prefix && !strcmp(req->path, k_routes[i].path) &&
                    k_routes[i].method && served_here(&k_routes[i], req)) {
                    if (allow[0]) strncat(allow, ", ", sizeof allow - strlen(allow) - 1);
                    strncat(allow, k_routes[i].method, sizeof allow - strlen(allow) - 1);
                    if (!strcmp(k_routes[i].method, "GET"))
                        strncat(allow, ", HEAD", sizeof allow - strlen(allow) - 1);
                }
            tg_http_add_header(ex, "Allow", allow);
            tg_api_error(api, ex, 405, "invalid_request_error", "method_not_allowed", NULL,
                         "Method %.16s is not allowed on %.64s", req->method, req->path);
        } else {
            tg_api_error(api, ex, 404, "invalid_request_error", "not_found", NULL,
                         "Unknown request URL: %.16s %.128s", req->method, req->path);
        }
        return;
    }
    if (!check_access(api, ex, req, match)) return;
    match->fn(api, ex, req);
}
