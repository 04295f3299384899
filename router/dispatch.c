/* dispatch: model name + mode -> plan. See dispatch.h for the contract. */
#include "router/dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(rt_plan *p, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int fail(rt_plan *p, int status, const char *type, const char *code, const char *param,
                const char *fmt, ...) {
    p->n_targets = 0;
    va_list ap;
    va_start(ap, fmt);
    tg_oai_error_vset(&p->err, status, type, code, param, fmt, ap);
    va_end(ap);
    snprintf(p->reason, sizeof p->reason, "rejected: %s", p->err.code[0] ? p->err.code : "error");
    return -1;
}

static void add_engine(rt_plan *p) {
    if (p->n_targets >= RT_PLAN_MAX_TARGETS) return;
    rt_target *t = &p->targets[p->n_targets++];
    memset(t, 0, sizeof *t);
    t->kind = RT_TARGET_ENGINE;
    snprintf(t->name, sizeof t->name, "engine");
    t->upstream = -1;
}

static void add_cloud(rt_plan *p, const rt_router *r, int i) {
    if (p->n_targets >= RT_PLAN_MAX_TARGETS) return;
    const rt_upstream *u = &r->ups[i];
    rt_target *t = &p->targets[p->n_targets++];
    memset(t, 0, sizeof *t);
    t->kind = RT_TARGET_CLOUD;
    snprintf(t->name, sizeof t->name, "%s", u->route);
    t->upstream = i;
    t->timeout_ms = (int)u->target.first_byte_timeout_ms;
    t->midstream = u->midstream;
}

static bool edge_ok(const rt_dispatch_ctx *ctx) {
    return ctx->engine_model_id && ctx->engine_ready &&
           (!ctx->router || rt_conn_edge_allowed(&ctx->router->conn));
}

static bool cloud_ok(const rt_dispatch_ctx *ctx) {
    return ctx->router && ctx->router->n_ups > 0 && rt_conn_cloud_allowed(&ctx->router->conn);
}

static const char *mode_word(const rt_dispatch_ctx *ctx) {
    return ctx->router ? rt_conn_state_name(&ctx->router->conn) : "auto";
}

/* The engine as the only target, after checking it can take work. */
static int plan_engine(const rt_dispatch_ctx *ctx, rt_plan *p, const char *why) {
    if (!edge_ok(ctx)) {
        if (ctx->engine_model_id && ctx->engine_ready)
            return fail(p, 503, "server_error", "edge_unavailable", "model",
                        "the mode is %s: the edge takes no requests", mode_word(ctx));
        return fail(p, 503, "server_error", "engine_unavailable", NULL,
                    "the embedded engine is not ready");
    }
    add_engine(p);
    snprintf(p->response_model, sizeof p->response_model, "%s", ctx->engine_model_id);
    snprintf(p->reason, sizeof p->reason, "%s", why);
    return 0;
}

/* Cloud targets `first..` (all when all), then the edge unless told not. */
static int plan_cloud(const rt_dispatch_ctx *ctx, rt_plan *p, int only, const char *requested) {
    const rt_router *r = ctx->router;
    bool c_ok = cloud_ok(ctx), e_ok = edge_ok(ctx);
    int first = only >= 0 ? only : 0;
    bool fallback = r->ups[first].fallback_edge;
    if (c_ok) {
        if (only >= 0)
            add_cloud(p, r, only);
        else
            for (int i = 0; i < r->n_ups; i++)
                add_cloud(p, r, i);
    }
    if (fallback && e_ok) add_engine(p);
    if (p->n_targets == 0)
        return fail(p, 503, "server_error", "cloud_unavailable", "model",
                    "the mode is %s and %s has no edge fallback", mode_word(ctx), requested);
    snprintf(p->response_model, sizeof p->response_model, "%s",
             c_ok ? r->ups[first].model : ctx->engine_model_id);
    if (c_ok)
        snprintf(p->reason, sizeof p->reason, "%s requested%s", requested,
                 p->targets[p->n_targets - 1].kind == RT_TARGET_ENGINE ? "; edge as fallback" : "");
    else
        snprintf(p->reason, sizeof p->reason, "%s requested; mode %s: edge", requested,
                 mode_word(ctx));
    return 0;
}

static int plan_auto(const rt_dispatch_ctx *ctx, rt_plan *p) {
    const rt_router *r = ctx->router;
    bool c_ok = cloud_ok(ctx), e_ok = edge_ok(ctx);
    bool engine_open = r && r->engine_breaker.state == RT_BREAKER_OPEN;
    if (!c_ok) {
        if (!r || r->n_ups == 0)
            return plan_engine(ctx, p, "auto: engine (no cloud upstream configured)");
        char why[96];
        snprintf(why, sizeof why, "auto: engine (mode %s)", mode_word(ctx));
        return plan_engine(ctx, p, why);
    }
    if (e_ok && !engine_open) add_engine(p);
    for (int i = 0; i < r->n_ups; i++)
        add_cloud(p, r, i);
    if (e_ok && engine_open) add_engine(p);
    if (p->n_targets == 0)
        return fail(p, 503, "server_error", "engine_unavailable", NULL, "no target can answer");
    const rt_target *t0 = &p->targets[0];
    snprintf(p->response_model, sizeof p->response_model, "%s",
             t0->kind == RT_TARGET_ENGINE ? ctx->engine_model_id : r->ups[t0->upstream].model);
    snprintf(p->reason, sizeof p->reason, "%s",
             t0->kind == RT_TARGET_ENGINE ? "auto: edge first, cloud as fallback"
             : engine_open                ? "auto: engine breaker open, cloud first"
                                          : "auto: cloud (mode cloud-only)");
    return 0;
}

/* The connectivity the policy sees: forced offline/edge-only and a gateway
 * without upstreams are offline; cloud-only is online. */
static rt_pmode policy_mode(const rt_dispatch_ctx *ctx) {
    const rt_router *r = ctx->router;
    if (!r || r->n_ups == 0) return RT_PMODE_OFFLINE;
    switch (r->conn.mode) {
    case RT_CONN_OFFLINE:
    case RT_CONN_EDGE_ONLY: return RT_PMODE_OFFLINE;
    case RT_CONN_CLOUD_ONLY: return RT_PMODE_ONLINE;
    case RT_CONN_AUTO: break;
    }
    switch (r->conn.link) {
    case RT_LINK_ONLINE: return RT_PMODE_ONLINE;
    case RT_LINK_DEGRADED: return RT_PMODE_DEGRADED;
    case RT_LINK_OFFLINE: return RT_PMODE_OFFLINE;
    }
    return RT_PMODE_ONLINE;
}

static bool has_target(const rt_plan *p, rt_target_kind k, int upstream) {
    for (size_t i = 0; i < p->n_targets; i++)
        if (p->targets[i].kind == k && p->targets[i].upstream == upstream) return true;
    return false;
}

/* Adds one policy target (and its retries), with the rule's timeout and
 * mid-stream behaviour; `upstream` -1 = the engine. */
static void add_policy_target(rt_plan *p, const rt_dispatch_ctx *ctx, const rt_decision *d,
                              const rt_policy_target *pt, int upstream) {
    rt_target_kind k = upstream < 0 ? RT_TARGET_ENGINE : RT_TARGET_CLOUD;
    if (has_target(p, k, upstream)) return; /* listed twice through "cloud" + "cloud:x" */
    for (int n = 0; n <= d->retry_budget && p->n_targets < RT_PLAN_MAX_TARGETS; n++) {
        if (k == RT_TARGET_ENGINE)
            add_engine(p);
        else
            add_cloud(p, ctx->router, upstream);
        rt_target *t = &p->targets[p->n_targets - 1];
        if (pt->timeout_ms) t->timeout_ms = pt->timeout_ms;
        /* A cloud-only (defer) rule never continues on the edge either. */
        if (k == RT_TARGET_CLOUD)
            t->midstream = d->mid_stream == RT_PMID_ERROR || d->defer.enabled
                               ? RT_MIDSTREAM_ERROR
                               : RT_MIDSTREAM_CONTINUE;
    }
}

static bool has_cloud_after(const rt_plan *p) {
    for (size_t i = 1; i < p->n_targets; i++)
        if (p->targets[i].kind == RT_TARGET_CLOUD) return true;
    return false;
}

static int plan_policy(const rt_dispatch_ctx *ctx, const rt_request_info *req, rt_plan *p) {
    const rt_router *r = ctx->router;
    bool c_ok = cloud_ok(ctx), e_ok = edge_ok(ctx);
    rt_decision d;
    rt_policy_decide(ctx->policy, req->features, ctx->health, policy_mode(ctx), &d);
    for (size_t i = 0; i < d.n_targets; i++) {
        const rt_policy_target *pt = &d.targets[i];
        if (pt->route == RT_ROUTE_EDGE) {
            if (e_ok) add_policy_target(p, ctx, &d, pt, -1);
        } else if (c_ok) {
            const char *want = !strncmp(pt->name, "cloud:", 6) ? pt->name + 6 : NULL;
            for (int u = 0; u < r->n_ups; u++)
                if (!want || !strcmp(r->ups[u].name, want)) add_policy_target(p, ctx, &d, pt, u);
        }
    }
    p->scored = true;
    p->score = d.score;
    p->defer = d.defer;
    p->on_client_gone = d.on_client_gone;
    snprintf(p->rule, sizeof p->rule, "%s", d.rule);
    rt_decision_reason(&d, p->reason, sizeof p->reason);
    if (p->n_targets == 0) {
        char why[sizeof p->reason];
        snprintf(why, sizeof why, "%s", p->reason);
        int rc =
            fail(p, 503, "server_error",
                 d.targets[0].route == RT_ROUTE_EDGE ? "engine_unavailable" : "cloud_unavailable",
                 NULL, "no target of rule '%s' can answer (mode %s)", d.rule, mode_word(ctx));
        snprintf(p->reason, sizeof p->reason, "%s; none available", why);
        return rc;
    }
    /* The cascade needs the engine first and a cloud target after it. */
    if (d.cascade.enabled && p->targets[0].kind == RT_TARGET_ENGINE && has_cloud_after(p))
        p->cascade = d.cascade;
    const rt_target *t0 = &p->targets[0];
    snprintf(p->response_model, sizeof p->response_model, "%s",
             t0->kind == RT_TARGET_ENGINE ? ctx->engine_model_id : r->ups[t0->upstream].model);
    return 0;
}

int rt_dispatch_plan(const rt_dispatch_ctx *ctx, const rt_request_info *req, rt_plan *plan) {
    memset(plan, 0, sizeof *plan);
    const char *m = req && req->model && req->model[0] ? req->model : RT_MODEL_AUTO;
    const rt_router *r = ctx->router;

    if (!strcmp(m, RT_MODEL_AUTO))
        return ctx->policy && req && req->features ? plan_policy(ctx, req, plan)
                                                   : plan_auto(ctx, plan);
    if (!strcmp(m, RT_MODEL_EDGE)) return plan_engine(ctx, plan, "edge requested");
    if (ctx->engine_model_id && !strcmp(m, ctx->engine_model_id))
        return plan_engine(ctx, plan, "embedded model requested");
    if (!strcmp(m, RT_MODEL_CLOUD)) {
        if (!r || r->n_ups == 0)
            return fail(plan, 503, "server_error", "cloud_unavailable", "model",
                        "no cloud upstream configured");
        return plan_cloud(ctx, plan, -1, "cloud");
    }
    if (r)
        for (int i = 0; i < r->n_ups; i++)
            if (!strcmp(m, r->ups[i].model) || !strcmp(m, r->ups[i].name))
                return plan_cloud(ctx, plan, i, r->ups[i].route);
    /* Never echo more than a bounded slice of client text. */
    return fail(plan, 404, "invalid_request_error", "model_not_found", "model",
                "The model '%.64s' does not exist", m);
}

size_t rt_dispatch_models(const rt_dispatch_ctx *ctx, const char **ids, const char **owners,
                          size_t cap) {
    size_t n = 0;
#define PUT(id, owner)                                                                             \
    do {                                                                                           \
        if (n < cap) {                                                                             \
            ids[n] = (id);                                                                         \
            if (owners) owners[n] = (owner);                                                       \
            n++;                                                                                   \
        }                                                                                          \
    } while (0)
    if (ctx->engine_model_id) PUT(ctx->engine_model_id, "tidegate-edge");
    PUT(RT_MODEL_AUTO, "tidegate");
    if (ctx->engine_model_id) PUT(RT_MODEL_EDGE, "tidegate");
    const rt_router *r = ctx->router;
    if (r && r->n_ups) {
        PUT(RT_MODEL_CLOUD, "tidegate");
        for (int i = 0; i < r->n_ups; i++)
            PUT(r->ups[i].model, r->ups[i].route);
    }
#undef PUT
    return n;
}

const char *rt_target_kind_name(rt_target_kind k) {
    switch (k) {
    case RT_TARGET_ENGINE: return "engine";
    case RT_TARGET_CLOUD: return "cloud";
    }
    return "unknown";
}
