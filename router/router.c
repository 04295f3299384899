/* router: see router.h. */
#include "router/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_log.h"

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    char *p = strdup(s);
    if (!p) abort();
    return p;
}

static void on_breaker(void *user, const rt_breaker *b, rt_breaker_state from,
                       rt_breaker_state to) {
    rt_router *r = user;
    const char *target = "engine";
    for (int i = 0; i < r->n_ups; i++)
        if (&r->ups[i].breaker == b) target = r->ups[i].route;
    tg_log_info("breaker", "target=%s from=%s to=%s", target, rt_breaker_state_name(from),
                rt_breaker_state_name(to));
    rt_event ev = {.kind = RT_EV_BREAKER,
                   .target = target,
                   .from = rt_breaker_state_name(from),
                   .to = rt_breaker_state_name(to)};
    rt_router_emit(r, &ev);
}

static void on_link(void *user, const rt_conn *c, rt_link from, rt_link to) {
    rt_router *r = user;
    (void)c;
    tg_log_info("connectivity", "from=%s to=%s", rt_link_name(from), rt_link_name(to));
    rt_event ev = {.kind = RT_EV_MODE, .from = rt_link_name(from), .to = rt_link_name(to)};
    rt_router_emit(r, &ev);
}

/* ---------------------------------------------------------------- probes -- */

static void probe_done(void *user, const rt_cloud_result *res) {
    rt_upstream *u = user;
    rt_router *r = u->owner;
    u->probe = NULL;
    bool ok = res->cause == RT_FAIL_NONE;
    tg_log_debug("probe", "target=%s ok=%d cause=%s ms=%.1f", u->route, ok,
                 rt_fail_cause_name(res->cause), res->total_ms);
    /* Only the mode listens to probes: a breaker opens and closes on real
     * requests (its half-open trial is one). */
    rt_conn_observe(&r->conn, ok, !ok && rt_fail_is_network(res->cause), rt_now_ms(r));
}

static void on_probe_timer(uv_timer_t *t) {
    rt_router *r = t->data;
    if (!rt_conn_wants_probe(&r->conn, rt_now_ms(r), r->probe_interval_ms)) return;
    for (int i = 0; i < r->n_ups; i++) {
        rt_upstream *u = &r->ups[i];
        if (u->probe) continue;
        rt_cloud_cbs cbs = {NULL, probe_done, NULL};
        if (rt_cloud_probe(r->cloud, &u->target, &cbs, u, &u->probe) != 0) u->probe = NULL;
    }
}

/* ------------------------------------------------------------- lifetime -- */

int rt_router_init(rt_router *r, uv_loop_t *loop, const tg_config *cfg, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->loop = loop;
    const tg_config_routing *rc = &cfg->routing;
    rt_breaker_conf bc = {rc->breaker_failures, rc->breaker_failure_rate_pct, rc->breaker_window,
                          rc->breaker_min_requests, rc->breaker_cooldown_ms};
    r->engine_breaker.hook = on_breaker;
    r->engine_breaker.hook_user = r;
    rt_breaker_init(&r->engine_breaker, &bc);
    r->conn.hook = on_link;
    r->conn.hook_user = r;
    rt_conn_init(&r->conn, (rt_conn_mode)rc->mode, rc->offline_after, rc->online_after);
    r->midstream =
        rc->midstream == TG_CONFIG_MIDSTREAM_ERROR ? RT_MIDSTREAM_ERROR : RT_MIDSTREAM_CONTINUE;
    r->probe_interval_ms = rc->probe_interval_ms;
    for (int i = 0; i < cfg->n_cloud; i++) {
        const tg_config_upstream *cu = &cfg->cloud[i];
        rt_upstream *u = &r->ups[r->n_ups];
        memset(u, 0, sizeof *u);
        u->owner = r;
        snprintf(u->name, sizeof u->name, "%s", cu->name);
        snprintf(u->route, sizeof u->route, "cloud:%s", cu->name);
        if (cu->api_key_env) {
            const char *k = getenv(cu->api_key_env);
            if (!k || !*k) {
                /* Names the variable, never a value. */
                snprintf(err, errlen, "cloud upstream '%s': environment variable %s is not set",
                         cu->name, cu->api_key_env);
                rt_router_close(r);
                return -1;
            }
            u->api_key = dup_or_null(k);
        }
        u->model = dup_or_null(cu->model);
        for (int h = 0; h < cu->n_headers; h++)
            u->headers[h] = dup_or_null(cu->headers[h]);
        rt_cloud_target *t = &u->target;
        t->base_url = dup_or_null(cu->base_url);
        t->api_key = u->api_key;
        t->headers = (const char *const *)u->headers;
        t->n_headers = cu->n_headers;
        t->ca_file = dup_or_null(cu->ca_file ? cu->ca_file : rc->ca_file);
        t->connect_timeout_ms =
            cu->connect_timeout_ms ? cu->connect_timeout_ms : rc->connect_timeout_ms;
        t->first_byte_timeout_ms =
            cu->first_byte_timeout_ms ? cu->first_byte_timeout_ms : rc->first_byte_timeout_ms;
        t->idle_timeout_ms = cu->idle_timeout_ms ? cu->idle_timeout_ms : rc->idle_timeout_ms;
        t->total_timeout_ms = cu->total_timeout_ms ? cu->total_timeout_ms : rc->total_timeout_ms;
        u->fallback_edge = cu->fallback == TG_CONFIG_FALLBACK_EDGE;
        u->midstream = cu->midstream == TG_CONFIG_MIDSTREAM_DEFAULT ? r->midstream
                       : cu->midstream == TG_CONFIG_MIDSTREAM_ERROR ? RT_MIDSTREAM_ERROR
                                                                    : RT_MIDSTREAM_CONTINUE;
        u->breaker.hook = on_breaker;
        u->breaker.hook_user = r;
        rt_breaker_init(&u->breaker, &bc);
        r->n_ups++;
    }
    if (r->n_ups) {
        r->cloud = rt_cloud_new(loop);
        uv_timer_init(loop, &r->probe_timer);
        r->probe_timer.data = r;
        uv_timer_start(&r->probe_timer, on_probe_timer, r->probe_interval_ms, r->probe_interval_ms);
        /* Probes must not keep the loop alive at shutdown. */
        uv_unref((uv_handle_t *)&r->probe_timer);
        r->probe_timer_on = true;
    }
    return 0;
}

void rt_router_close(rt_router *r) {
    if (r->probe_timer_on) {
        uv_timer_stop(&r->probe_timer);
        uv_close((uv_handle_t *)&r->probe_timer, NULL);
        r->probe_timer_on = false;
    }
    for (int i = 0; i < r->n_ups; i++) {
        rt_upstream *u = &r->ups[i];
        if (u->probe) {
            rt_cloud_cancel(u->probe);
            u->probe = NULL;
        }
    }
    if (r->cloud) rt_cloud_free(r->cloud);
    r->cloud = NULL;
    for (int i = 0; i < RT_MAX_UPSTREAMS; i++) {
        rt_upstream *u = &r->ups[i];
        if (u->api_key) memset(u->api_key, 0, strlen(u->api_key));
        free(u->api_key);
        free(u->model);
        for (int h = 0; h < TG_CONFIG_MAX_UP_HEADERS; h++)
            free(u->headers[h]);
        free((char *)u->target.base_url);
        free((char *)u->target.ca_file);
        memset(u, 0, sizeof *u);
    }
    r->n_ups = 0;
}

/* ---------------------------------------------------------------- lookup -- */

rt_upstream *rt_router_find(rt_router *r, const char *id) {
    if (!id) return NULL;
    for (int i = 0; i < r->n_ups; i++)
        if (!strcmp(r->ups[i].model, id) || !strcmp(r->ups[i].name, id)) return &r->ups[i];
    return NULL;
}

rt_upstream *rt_router_by_route(rt_router *r, const char *route) {
    for (int i = 0; i < r->n_ups; i++)
        if (!strcmp(r->ups[i].route, route)) return &r->ups[i];
    return NULL;
}

/* -------------------------------------------------------------- outcomes -- */

bool rt_router_allow(rt_router *r, rt_upstream *u) {
    return rt_breaker_allow(u ? &u->breaker : &r->engine_breaker, rt_now_ms(r));
}

void rt_router_outcome(rt_router *r, rt_upstream *u, rt_fail_cause cause, double first_byte_ms) {
    uint64_t now = rt_now_ms(r);
    rt_breaker *b = u ? &u->breaker : &r->engine_breaker;
    if (cause == RT_FAIL_ENGINE_BUSY) {
        /* Load shedding says the engine is healthy and busy: counting it as a
         * failure would open the breaker and turn a short burst into a
         * cooldown of 503s. A half-open trial is handed back. */
        rt_breaker_release(b);
        return;
    }
    if (cause == RT_FAIL_NONE)
        rt_breaker_success(b, now);
    else
        rt_breaker_failure(b, now);
    if (!u) return;
    if (cause == RT_FAIL_NONE) {
        u->n_ok++;
        u->rtt_ms = u->rtt_ms == 0 ? first_byte_ms : 0.8 * u->rtt_ms + 0.2 * first_byte_ms;
    } else {
        u->n_fail++;
        u->last_cause = cause;
    }
    rt_conn_observe(&r->conn, cause == RT_FAIL_NONE, rt_fail_is_network(cause), now);
}

void rt_router_release(rt_router *r, rt_upstream *u) {
    rt_breaker_release(u ? &u->breaker : &r->engine_breaker);
}

int rt_router_observe(rt_router *r, rt_observer_fn fn, void *user) {
    if (r->n_obs >= RT_MAX_OBSERVERS) return -1;
    r->obs[r->n_obs].fn = fn;
    r->obs[r->n_obs].user = user;
    r->n_obs++;
    return 0;
}

void rt_router_emit(rt_router *r, const rt_event *ev) {
    for (int i = 0; i < r->n_obs; i++)
        r->obs[i].fn(r->obs[i].user, ev);
}

void rt_router_set_mode(rt_router *r, rt_conn_mode m) {
    rt_conn_mode old = r->conn.mode;
    rt_conn_set_mode(&r->conn, m, rt_now_ms(r));
    if (old == m) return;
    tg_log_info("mode", "from=%s to=%s", rt_conn_mode_name(old), rt_conn_mode_name(m));
    rt_event ev = {.kind = RT_EV_MODE, .from = rt_conn_mode_name(old), .to = rt_conn_mode_name(m)};
    rt_router_emit(r, &ev);
}

/* ----------------------------------------------------------------- state -- */

static void breaker_json(tg_buf *o, const rt_breaker *b) {
    tg_buf_printf(o,
                  "\"breaker\":\"%s\",\"consecutive_failures\":%d,\"recent_failure_rate\":%.3f,"
                  "\"successes\":%llu,\"failures\":%llu,\"rejected\":%llu",
                  rt_breaker_state_name(b->state), b->consecutive, rt_breaker_failure_rate(b),
                  (unsigned long long)b->n_success, (unsigned long long)b->n_failure,
                  (unsigned long long)b->n_rejected);
}

void rt_router_state_json(const rt_router *r, tg_buf *o) {
    tg_buf_printf(o, "{\"mode\":\"%s\",\"state\":\"%s\",\"link\":\"%s\",\"engine\":{",
                  rt_conn_mode_name(r->conn.mode), rt_conn_state_name(&r->conn),
                  rt_link_name(r->conn.link));
    breaker_json(o, &r->engine_breaker);
    tg_buf_puts(o, "},\"upstreams\":[");
    for (int i = 0; i < r->n_ups; i++) {
        const rt_upstream *u = &r->ups[i];
        uint64_t n = u->n_ok + u->n_fail;
        tg_buf_puts(o, i ? ",{\"name\":" : "{\"name\":");
        tg_buf_json_str(o, u->name, strlen(u->name));
        tg_buf_puts(o, ",\"route\":");
        tg_buf_json_str(o, u->route, strlen(u->route));
        tg_buf_puts(o, ",\"model\":");
        tg_buf_json_str(o, u->model, strlen(u->model));
        tg_buf_putc(o, ',');
        breaker_json(o, &u->breaker);
        tg_buf_printf(
            o, ",\"rtt_ms\":%.2f,\"success_rate\":%.3f,\"requests\":%llu,\"last_failure\":\"%s\"}",
            u->rtt_ms, n ? (double)u->n_ok / (double)n : 1.0, (unsigned long long)n,
            rt_fail_cause_name(u->last_cause));
    }
    tg_buf_puts(o, "]}");
}
