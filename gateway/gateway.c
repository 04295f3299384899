/* gateway: process wiring, signals and graceful shutdown. */
#include "gateway/gateway.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/tg_log.h"
#include "gateway/api/api_journal.h"
#include "gateway/api/api_routes.h"
#include "gateway/api/chat_defer.h"
#include "gateway/api/openai_api.h"

typedef struct {
    tg_api api;
    uv_signal_t sig_term, sig_int;
    uv_timer_t grace;
    bool server_closed;  /* both listeners are gone */
    int servers_closing; /* listeners still draining */
} gw;

static void on_handle_closed(uv_handle_t *h) {
    (void)h;
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void stop_engine(tg_api *api);

static void on_prep_idle(void *arg) {
    gw *g = arg;
    if (!g->server_closed) return;
    g->api.engine.on_prep_idle = NULL;
    stop_engine(&g->api);
}

/* Last step of shutdown: every exchange has ended and both servers (API
 * and admin) are gone. */
static void shutdown_finish(gw *g) {
    if (--g->servers_closing > 0) return;
    g->server_closed = true;
    uv_timer_stop(&g->grace);
    uv_close((uv_handle_t *)&g->grace, on_handle_closed);
    uv_close((uv_handle_t *)&g->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&g->sig_int, on_handle_closed);
    tg_api_router_stop(&g->api);
    /* Nothing is in flight any more: the engine can go (its async handle is
     * the last thing keeping the loop alive), once no prompt preparation
     * on the thread pool still reads the model. */
    if (g->api.engine.n_preparing == 0)
        stop_engine(&g->api);
    else
        g->api.engine.on_prep_idle = on_prep_idle;
    tg_log_info("shutdown_done", "status=ok");
}

static void on_server_closed(void *arg) {
    gw *g = arg;
    g->api.server = NULL;
    shutdown_finish(g);
}

static void on_admin_closed(void *arg) {
    gw *g = arg;
    g->api.admin_server = NULL;
    shutdown_finish(g);
}

static void end_inflight(gw *g, const char *why) {
    tg_log_info("shutdown_deadline", "chats=%zu", g->api.n_chats);
    tg_api_chat_end_all(&g->api, why);
    if (g->api.server) tg_http_server_abort_inflight(g->api.server);
    if (g->api.admin_server) tg_http_server_abort_inflight(g->api.admin_server);
}

static void on_grace(uv_timer_t *t) {
    gw *g = t->data;
    end_inflight(g, "server shutting down: generation ended at the shutdown deadline");
}

static void on_signal(uv_signal_t *h, int signum) {
    gw *g = h->data;
    if (g->api.draining) {
        /* Second signal: do not wait for the deadline. */
        if (!g->server_closed) end_inflight(g, "server shutting down now");
        return;
    }
    tg_log_info("shutdown_begin", "signal=%d inflight=%zu grace_ms=%u", signum, g->api.n_chats,
                (unsigned)g->api.cfg->server.shutdown_grace_ms);
    g->api.draining = true;
    g->servers_closing = g->api.admin_server ? 2 : 1;
    if (g->api.admin_server) tg_http_server_close(g->api.admin_server, on_admin_closed, g);
    tg_http_server_close(g->api.server, on_server_closed, g);
    if (g->server_closed) return; /* closed synchronously: nothing in flight */
    uint32_t grace = g->api.cfg->server.shutdown_grace_ms;
    uv_timer_start(&g->grace, on_grace, grace, 0);
}

/* Loads model and scheduler; fills api's engine fields. 0 or -1 (logged). */
static int start_engine(tg_api *api, const tg_config *cfg) {
    if (!cfg->engine.model) {
        tg_log_error("startup_failed",
                     "reason=\"no model: set engine.model, TIDEGATE_MODEL or -m\"");
        return -1;
    }
    char err[512] = "";
    lfm_model_opts mo;
    lfm_model_opts_default(&mo);
    mo.n_threads = cfg->engine.threads;
    mo.kv_type = cfg->engine.kv_type == TG_CONFIG_KV_F16 ? LFM_KV_F16 : LFM_KV_F32;
    mo.kernels =
        cfg->engine.kernels == TG_CONFIG_KERNELS_SCALAR ? LFM_KERNELS_SCALAR : LFM_KERNELS_AUTO;
    int rc = lfm_model_load(cfg->engine.model, &mo, &api->engine.model, err, sizeof err);
    if (rc != LFM_OK) {
        tg_log_error("startup_failed", "reason=\"model load failed: %s\"",
                     err[0] ? err : lfm_strerror(rc));
        return -1;
    }
    api->engine.tok = lfm_model_tokenizer(api->engine.model);
    if (!api->engine.tok) {
        tg_log_error("startup_failed", "reason=\"model has no tokenizer\"");
        return -1;
    }
    api->engine.tmpl = lfm_chat_template_kind(lfm_model_chat_template(api->engine.model));
    /* Structured outputs' token trie: built once here (~0.4 s for 65k
     * tokens) so no request stalls the loop building it. */
    api->vindex = lfm_vocab_index_new(api->engine.tok);
    lfm_sched_opts so;
    lfm_sched_opts_default(&so);
    so.max_active = cfg->engine.max_active;
    so.queue_cap = cfg->engine.queue_capacity;
    so.n_ctx = cfg->engine.context;
    so.prefix_cache_bytes = (size_t)cfg->engine.prefix_cache_mib << 20;
    rc = lfm_sched_new(api->engine.model, &so, &api->engine.sched, err, sizeof err);
    if (rc != LFM_OK) {
        tg_log_error("startup_failed", "reason=\"scheduler: %s\"", err[0] ? err : lfm_strerror(rc));
        return -1;
    }
    api->engine.n_ctx = lfm_sched_n_ctx(api->engine.sched);
    if (tg_bridge_new(api->loop, api->engine.sched, &api->engine.bridge) != LFM_OK) {
        tg_log_error("startup_failed", "reason=\"engine bridge\"");
        return -1;
    }
    api->dispatch.engine_model_id = cfg->engine.model_id;
    api->dispatch.engine_ready = true;
    tg_log_info("engine_ready", "model_id=%s n_ctx=%d max_active=%d queue_capacity=%d",
                cfg->engine.model_id ? cfg->engine.model_id : "?", api->engine.n_ctx, so.max_active,
                so.queue_cap);
    return 0;
}

/* Frees the engine side. The scheduler goes first: it joins its thread and
 * reports DONE for anything left, which the bridge then drains. */
static void stop_engine(tg_api *api) {
    if (api->engine.sched) lfm_sched_free(api->engine.sched);
    api->engine.sched = NULL;
    if (api->engine.bridge) tg_bridge_close(api->engine.bridge);
    api->engine.bridge = NULL;
    lfm_vocab_index_free(api->vindex); /* after the scheduler: jobs read it */
    api->vindex = NULL;
    if (api->engine.model) lfm_model_free(api->engine.model);
    api->engine.model = NULL;
}

static void opts_from_config(tg_http_opts *o, const tg_config *cfg) {
    tg_http_opts_defaults(o);
    o->error_body = tg_oai_http_error;
    const tg_config_server *s = &cfg->server;
    o->host = s->listen_host;
    o->port = s->listen_port;
    if (s->max_body_bytes) o->max_body_bytes = s->max_body_bytes;
    if (s->max_header_bytes) o->max_header_bytes = s->max_header_bytes;
    if (s->max_headers > 0) o->max_headers = (size_t)s->max_headers;
    if (s->max_connections > 0) o->max_connections = s->max_connections;
    if (s->header_timeout_ms) o->header_timeout_ms = s->header_timeout_ms;
    if (s->body_timeout_ms) o->body_timeout_ms = s->body_timeout_ms;
    if (s->idle_timeout_ms) o->idle_timeout_ms = s->idle_timeout_ms;
    if (s->write_timeout_ms) o->write_timeout_ms = s->write_timeout_ms;
    o->tls_cert_file = s->tls_cert;
    o->tls_key_file = s->tls_key;
    if (s->conn_buffer_limit_bytes) o->conn_buffer_limit = s->conn_buffer_limit_bytes;
    if (s->memory_budget_bytes) o->memory_budget = s->memory_budget_bytes;
}

int tg_gateway_run(const tg_config *cfg) {
    /* Writes to a closed socket must fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    static gw g; /* static: signal handles must outlive every callback */
    memset(&g, 0, sizeof g);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        tg_log_error("startup_failed", "reason=\"uv_loop_init\"");
        return 1;
    }
    tg_api *api = &g.api;
    api->loop = &loop;
    api->engine.loop = &loop;
    api->cfg = cfg;
    api->started_at = (int64_t)time(NULL);
    api->engine.on_prep_idle_arg = &g;
    api->metrics = tg_metrics_new();
    tg_metrics_std_init(&api->std, api->metrics);
    tg_api_register_metrics(api);

    int code = 1;
    char rerr[512] = "";
    if (tg_api_router_start(api, rerr, sizeof rerr) != 0) {
        tg_log_error("startup_failed", "reason=\"%s\"", rerr);
        goto out;
    }
    if (start_engine(api, cfg) < 0) goto out;
    if (tg_apij_open(api) < 0) goto out;

    tg_http_opts ho = {0};
    opts_from_config(&ho, cfg);
    ho.on_response = tg_api_on_response; /* every response is counted there */
    ho.on_response_user = api;
    ho.on_head = tg_api_on_head; /* access decided before any body byte */
    ho.on_head_user = api;
    ho.error_headers = tg_api_error_headers; /* CORS on the errors made before the handler */
    ho.listener = TG_API_LISTENER_PUBLIC;
    char err[512] = "";
    if (tg_http_server_start(&loop, &ho, tg_api_handle, api, &api->server, err, sizeof err) != 0) {
        tg_log_error("startup_failed", "reason=\"listen %s:%d: %s\"", ho.host, ho.port, err);
        goto out;
    }
    /* The admin listener: same handler and limits, its own address; the
     * route table decides what each listener serves. */
    tg_http_opts ao = ho;
    ao.host = cfg->admin.listen_host;
    ao.port = cfg->admin.listen_port < 0 ? 0 : cfg->admin.listen_port;
    ao.listener = TG_API_LISTENER_ADMIN;
    if (tg_http_server_start(&loop, &ao, tg_api_handle, api, &api->admin_server, err, sizeof err) !=
        0) {
        tg_log_error("startup_failed", "reason=\"admin.listen %s:%d: %s\"", ao.host, ao.port, err);
        tg_http_server_close(api->server, NULL, NULL);
        api->server = NULL;
        goto out;
    }
    uv_timer_init(&loop, &g.grace);
    g.grace.data = &g;
    uv_signal_init(&loop, &g.sig_term);
    uv_signal_init(&loop, &g.sig_int);
    g.sig_term.data = g.sig_int.data = &g;
    uv_signal_start(&g.sig_term, on_signal, SIGTERM);
    uv_signal_start(&g.sig_int, on_signal, SIGINT);
    tg_log_info("listening", "addr=%s port=%d tls=%s", ho.host, tg_http_server_port(api->server),
                ho.tls_cert_file ? "on" : "off");
    tg_log_info("admin_listening", "addr=%s port=%d", ao.host,
                tg_http_server_port(api->admin_server));
    tg_apij_recover(api); /* what an earlier run left unfinished */

    uv_run(&loop, UV_RUN_DEFAULT);
    code = 0;

out:
    tg_api_router_stop(api);
    stop_engine(api);
    tg_apij_close(api);           /* after the engine: its last callbacks may append */
    tg_defer_close(api);          /* waiting requests: their journal stays DEFERRED */
    uv_run(&loop, UV_RUN_NOWAIT); /* let the bridge's async handle close */
    if (uv_loop_close(&loop) != 0) {
        uv_walk(&loop, close_any, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    tg_api_free_resp_store(api);
    tg_metrics_free(api->metrics);
    return code;
}
