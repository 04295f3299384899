/* api_routes: the gateway's HTTP surface. One table maps (method, path) to
 * a handler and an access rule; everything not in it answers 404 or 405 in
 * the OpenAI error JSON shape.
 *
 *   POST /v1/chat/completions   api_chat.c (parse -> dispatch plan -> target)
 *   GET  /v1/requests/{id}      a journaled request's state and result (api_journal.c)
 *   GET  /v1/models             models dispatch can serve
 *   GET  /healthz               process alive
 *   GET  /readyz                engine loaded and not draining (else 503)
 *   GET  /metrics               Prometheus text (admin key or loopback)
 *   GET  /admin/state           mode, breakers, upstream RTT/success (api_admin.c)
 *   POST /admin/mode            {"mode": "offline|edge-only|cloud-only|auto"}
 *
 * All state the handlers share lives in one tg_api, owned by gateway.c and
 * touched only on the loop thread. */
#ifndef TG_API_ROUTES_H
#define TG_API_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "engine/lfm_grammar.h"
#include "gateway/http/http_server.h"
#include "gateway/metrics.h"
#include "gateway/routing.h"
#include "router/dispatch.h"
#include "router/engine_target.h"

typedef struct tg_chat tg_chat; /* one in-flight chat completion (api_chat.c) */

typedef struct tg_api {
    uv_loop_t *loop;
    const tg_config *cfg;
    tg_http_server *server;       /* set once listening */
    tg_http_server *admin_server; /* the admin listener (admin.listen) */

    /* The router: dispatch and the engine target (model, tokenizer,
     * scheduler, bridge, prompts in preparation). */
    rt_dispatch_ctx dispatch;
    rt_engine engine;
    lfm_vocab_index *vindex;          /* structured outputs: built at start */
    struct tg_resp_store *resp_store; /* stored Responses (lazily made) */
    /* Upstreams, breakers, connectivity mode (router/router.h); router_on
     * once initialized (api_admin.c: tg_api_router_start). */
    rt_router router;
    bool router_on;
    /* The routing policy (hot reload), device health, routing metrics
     * (gateway/routing.h); started with the router. */
    tg_routing routing;
    bool routing_on;
    struct {
        tg_metric *decisions;        /* {route}: who produced the first token */
        tg_metric *failovers;        /* {cause,phase} */
        tg_metric *failover_seconds; /* {phase}: fault to first fallback token */
        tg_metric *breaker;          /* {target,to}: breaker transitions */
        tg_metric *mode_changes;     /* {to} */
        tg_metric *cloud_ttfb;       /* {route}: upstream time to first byte */
        tg_metric *relay_pauses;     /* a slow client paused a cloud stream */
    } rtm;

    tg_metrics *metrics;
    tg_metrics_std std;

    bool draining;      /* SIGTERM seen: /readyz 503, new chats 503 */
    int64_t started_at; /* unix seconds, the models' "created" */

    tg_chat *chats;               /* live chat completions (for shutdown) */
    struct tg_journal *journal;   /* request journal (api_journal.c), or NULL: off */
    struct tg_apij *jx;           /* its idempotency keys, waiters, recovery (api_journal.c) */
    struct tg_cres_sub *resumers; /* clients of journaled streams (chat_resume.c) */
    tg_metric *event_durable;     /* ... and how long their events waited for disk */
    struct tg_defer *defer;       /* deferred cloud-only requests (chat_defer.c), or NULL */
    size_t n_chats;
} tg_api;

/* tg_http_opts.listener values: which listener a request came in on. */
enum { TG_API_LISTENER_PUBLIC = 0, TG_API_LISTENER_ADMIN = 1 };

/* The servers' on_head hook (user = the tg_api): the route's access rule,
 * applied once the head is read, so a request without the right key gets
 * 401/403 before its body is read or 100 Continue is sent. */
int tg_api_on_head(void *user, const tg_http_request *req, tg_http_reject *rej);
/* The servers' error_headers hook (user = the tg_api): the CORS headers on
 * the errors the server answers itself (a head-time 401/403, 408, 413...),
 * as on every other answer to an allowed Origin. */
void tg_api_error_headers(void *user, const tg_http_request *req, tg_http_exchange *ex);

/* The tg_http_handler for the server; user is the tg_api. */
void tg_api_handle(tg_http_exchange *ex, const tg_http_request *req, void *user);

/* The server's on_response hook (tg_http_opts.on_response, user = the
 * tg_api): counts every finished exchange in tidegate_http_requests_total
 * and the duration histogram, server-made answers under route "-", and the
 * tokens of requests whose client left before the end. */
void tg_api_on_response(void *user, const tg_http_done *d);

/* Registers the gauges that read api state (queue depth, connections). */
void tg_api_register_metrics(tg_api *api);

/* ---- shared by the route files ---- */

/* Ends ex with an OpenAI error (counted by tg_api_on_response, like every
 * response). type NULL -> "server_error" for 5xx, else
 * "invalid_request_error"; code/param NULL or "" ->
 * JSON null. */
void tg_api_error(tg_api *api, tg_http_exchange *ex, int status, const char *type, const char *code,
                  const char *param, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* api_admin.c: /admin/state, /admin/mode; router start/stop and its metrics. */
void tg_api_admin(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
int tg_api_router_start(tg_api *api, char *err, size_t errlen);
void tg_api_router_stop(tg_api *api);

/* api_chat.c */
void tg_api_chat(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
/* Re-runs a journaled chat request (ACCEPTED durable, no terminal record)
 * with no client, by the current policy; its end is journaled. A stream
 * continues from its durable events (chat_resume.c). */
void tg_api_chat_recover(tg_api *api, const char *id, const char *body, size_t len);
/* Shutdown deadline: end every live chat (streams get an error event). */
void tg_api_chat_end_all(tg_api *api, const char *why);
/* api_responses.c: POST /v1/responses, GET/DELETE /v1/responses/{id},
 * POST /v1/completions; the stored responses are freed at shutdown. */
void tg_api_responses(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
void tg_api_response_by_id(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
void tg_api_completions(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);
void tg_api_free_resp_store(tg_api *api);

#endif
