/* api_admin: the admin endpoints and the router's wiring.
 *
 *   GET  /admin/state  mode, link state, the engine's and each upstream's
 *                      breaker, recent RTT and success rate (JSON)
 *   POST /admin/mode   {"mode": "offline" | "edge-only" | "cloud-only" | "auto"}
 *                      forces a mode, or returns to automatic; answers the state
 *   POST /admin/reload re-reads the routing policy file: 200 and the state, or
 *                      422 with the file's errors (the old policy stays)
 *
 * The state also carries the number of deferred requests waiting for the
 * cloud (`deferred`; gauge tidegate_deferred_requests), the routing policy
 * (source, rules, reloads, the last reload error) and the device health
 * snapshot (gateway/routing.h).
 *
 * Router events become metrics here (an observer like any other):
 * tidegate_breaker_transitions_total{target,to}, tidegate_mode_changes_total
 * and the tidegate_mode gauge (0 online, 1 degraded, 2 offline, 3 edge-only,
 * 4 cloud-only). Request counters (decisions, failovers, failover time) are
 * counted where they happen, in api_chat.c. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common/tg_log.h"
#include "gateway/api/api_routes.h"
#include "gateway/api/chat_defer.h"

static void admin_state(tg_api *api, tg_http_exchange *ex) {
    tg_buf b = TG_BUF_INIT;
    rt_router_state_json(&api->router, &b);
    if (b.len && b.data[b.len - 1] == '}') { /* cloud-only requests waiting (chat_defer.c) */
        b.len--;
        tg_buf_printf(&b, ",\"deferred\":%zu}", tg_defer_count(api));
    }
    if (api->routing_on && b.len && b.data[b.len - 1] == '}') {
        b.len--; /* reopen the object: policy and health join it */
        tg_buf_putc(&b, ',');
        tg_routing_state_members(&api->routing, &b);
        tg_buf_putc(&b, '}');
    }
    tg_http_respond(ex, 200, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

static void admin_mode(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    json_tokener *tk = json_tokener_new_ex(8);
    json_object *root = json_tokener_parse_ex(tk, req->body ? req->body : "", (int)req->body_len);
    bool ok = root && json_tokener_get_error(tk) == json_tokener_success;
    json_tokener_free(tk);
    json_object *m = NULL;
    rt_conn_mode mode;
    if (!ok || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "mode", &m) || !json_object_is_type(m, json_type_string) ||
        rt_conn_mode_parse(json_object_get_string(m), &mode) != 0) {
        json_object_put(root);
        tg_api_error(api, ex, 400, "invalid_request_error", "invalid_mode", "mode",
                     "body must be {\"mode\": \"offline\" | \"edge-only\" | \"cloud-only\" | "
                     "\"auto\"}");
        return;
    }
    json_object_put(root);
    rt_router_set_mode(&api->router, mode);
    admin_state(api, ex);
}

static void admin_reload(tg_api *api, tg_http_exchange *ex) {
    char err[2048];
    int rc = tg_routing_reload(&api->routing, "admin", err, sizeof err);
    if (rc == 0) return admin_state(api, ex);
    if (rc == 1) {
        tg_api_error(api, ex, 409, "invalid_request_error", "no_policy_file", NULL, "%s", err);
        return;
    }
    tg_api_error(api, ex, 422, "invalid_request_error", "invalid_policy", NULL,
                 "policy not reloaded, the previous one stays: %.1500s", err);
}

void tg_api_admin(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    bool get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
    if (!strcmp(req->path, "/admin/state") && api->router_on) {
        if (get) return admin_state(api, ex);
        tg_http_add_header(ex, "Allow", "GET");
    } else if (!strcmp(req->path, "/admin/reload") && api->routing_on) {
        if (post) return admin_reload(api, ex);
        tg_http_add_header(ex, "Allow", "POST");
    } else if (!strcmp(req->path, "/admin/mode") && api->router_on) {
        if (post) return admin_mode(api, ex, req);
        tg_http_add_header(ex, "Allow", "POST");
    } else {
        tg_api_error(api, ex, 404, "invalid_request_error", "not_found", NULL,
                     "admin endpoint %.64s does not exist in this build", req->path);
        return;
    }
    tg_api_error(api, ex, 405, "invalid_request_error", "method_not_allowed", NULL,
                 "Method %.16s is not allowed on %.64s", req->method, req->path);
}

/* ---------------------------------------------------------------- metrics -- */

static double mode_value(void *u) {
    const rt_conn *c = &((tg_api *)u)->router.conn;
    switch (c->mode) {
    case RT_CONN_AUTO: return (double)c->link;
    case RT_CONN_OFFLINE: return 2;
    case RT_CONN_EDGE_ONLY: return 3;
    case RT_CONN_CLOUD_ONLY: return 4;
    }
    return -1;
}

static double deferred_value(void *u) {
    return (double)tg_defer_count(u);
}

static void on_router_event(void *user, const rt_event *ev) {
    tg_api *api = user;
    if (ev->kind == RT_EV_BREAKER) tg_metrics_add(api->rtm.breaker, 1, ev->target, ev->to);
    if (ev->kind == RT_EV_MODE) tg_metrics_add(api->rtm.mode_changes, 1, ev->to);
}

/* Health inputs the routing sampler pulls at each tick. */
static void engine_queue(void *u, int *waiting, int *running) {
    tg_api *api = u;
    *waiting = api->engine.sched ? lfm_sched_queue_depth(api->engine.sched) : 0;
    *running = api->engine.sched ? lfm_sched_active(api->engine.sched) : 0;
}

/* The best upstream's RTT and success rate (unknown until it has traffic). */
static void cloud_sample(void *u, rt_health *h) {
    tg_api *api = u;
    double rtt = -1, ok = -1;
    for (int i = 0; i < api->router.n_ups; i++) {
        const rt_upstream *up = &api->router.ups[i];
        uint64_t n = up->n_ok + up->n_fail;
        if (up->rtt_ms > 0 && (rtt < 0 || up->rtt_ms < rtt)) rtt = up->rtt_ms;
        if (n && (double)up->n_ok / (double)n > ok) ok = (double)up->n_ok / (double)n;
    }
    if (rtt >= 0)
        rt_health_set(h, RT_H_CLOUD_RTT_MS, rtt);
    else
        rt_health_unset(h, RT_H_CLOUD_RTT_MS);
    if (ok >= 0)
        rt_health_set(h, RT_H_CLOUD_SUCCESS, ok);
    else
        rt_health_unset(h, RT_H_CLOUD_SUCCESS);
}

static int routing_start(tg_api *api, char *err, size_t errlen) {
    const tg_config *cfg = api->cfg;
    if (tg_routing_init(&api->routing, api->loop, cfg->routing.policy, api->router.n_ups > 0, err,
                        errlen) != 0)
        return -1;
    api->routing_on = true;
    tg_routing *r = &api->routing;
    r->engine_queue = engine_queue;
    r->queue_user = api;
    r->queue_cap = cfg->engine.queue_capacity;
    r->cloud_sample = cloud_sample;
    r->cloud_user = api;
    tg_routing_register_metrics(r, api->metrics);
    tg_routing_start(r, cfg->routing.health_root, cfg->routing.health_interval_ms);
    return 0;
}

int tg_api_router_start(tg_api *api, char *err, size_t errlen) {
    static const double k_fail_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,    1,     2.5,  5,     10};
    static const double k_ttfb_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,   1,    2.5,   5,    10};
    if (rt_router_init(&api->router, api->loop, api->cfg, err, errlen) != 0) return -1;
    api->router_on = true;
    api->dispatch.router = &api->router;
    api->dispatch.cloud_configured = api->router.n_ups > 0;
    tg_metrics *m = api->metrics;
    api->rtm.decisions =
        tg_metrics_counter(m, "tidegate_route_decisions_total",
                           "Chat completions by the target that produced the first token", "route");
    api->rtm.failovers = tg_metrics_counter(m, "tidegate_failovers_total",
                                            "Target failures that moved a request on, by cause "
                                            "and phase (before_first_token, midstream)",
                                            "cause,phase");
    api->rtm.failover_seconds = tg_metrics_histogram(
        m, "tidegate_failover_seconds", "Time from a target's failure to the first fallback token",
        "phase", k_fail_bounds, sizeof k_fail_bounds / sizeof k_fail_bounds[0]);
    api->rtm.breaker = tg_metrics_counter(m, "tidegate_breaker_transitions_total",
                                          "Circuit breaker state changes", "target,to");
    api->rtm.mode_changes = tg_metrics_counter(m, "tidegate_mode_changes_total",
                                               "Connectivity mode/link changes", "to");
    api->rtm.cloud_ttfb = tg_metrics_histogram(
        m, "tidegate_cloud_first_byte_seconds", "Upstream time to first byte (successful calls)",
        "route", k_ttfb_bounds, sizeof k_ttfb_bounds / sizeof k_ttfb_bounds[0]);
    api->rtm.relay_pauses = tg_metrics_counter(
        m, "tidegate_cloud_relay_pauses_total",
        "Cloud streams paused because the client's unsent output was over the bound", NULL);
    tg_metrics_gauge_fn(m, "tidegate_mode",
                        "Connectivity: 0 online, 1 degraded, 2 offline, 3 edge-only, 4 cloud-only",
                        mode_value, api);
    tg_metrics_gauge_fn(m, "tidegate_deferred_requests",
                        "Cloud-only requests waiting for the cloud (journaled DEFERRED)",
                        deferred_value, api);
    rt_router_observe(&api->router, on_router_event, api);
    if (routing_start(api, err, errlen) != 0) return -1;
    for (int i = 0; i < api->router.n_ups; i++) {
        const rt_upstream *u = &api->router.ups[i];
        /* The key's presence, never its value. */
        tg_log_info("cloud_upstream", "name=%s model=%s base_url=%s key=%s first_byte_ms=%u",
                    u->name, u->model, u->target.base_url, u->api_key ? "set" : "none",
                    u->target.first_byte_timeout_ms);
    }
    return 0;
}

void tg_api_router_stop(tg_api *api) {
    if (api->routing_on) tg_routing_close(&api->routing);
    api->routing_on = false;
    if (!api->router_on) return;
    rt_router_close(&api->router);
    api->router_on = false;
}
