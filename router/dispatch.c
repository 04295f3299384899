/* dispatch: model name -> plan. See dispatch.h for the contract. */
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

static void add_target(rt_plan *p, rt_target_kind kind, const char *name, int timeout_ms) {
    if (p->n_targets >= RT_PLAN_MAX_TARGETS) return;
    rt_target *t = &p->targets[p->n_targets++];
    t->kind = kind;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->timeout_ms = timeout_ms;
}

/* The engine as the only target, after checking it can take work. */
static int plan_engine(const rt_dispatch_ctx *ctx, rt_plan *p, const char *why) {
    if (!ctx->engine_model_id || !ctx->engine_ready)
        return fail(p, 503, "server_error", "engine_unavailable", NULL,
                    "the embedded engine is not ready");
    add_target(p, RT_TARGET_ENGINE, "engine", 0);
    snprintf(p->response_model, sizeof p->response_model, "%s", ctx->engine_model_id);
    snprintf(p->reason, sizeof p->reason, "%s", why);
    return 0;
}

int rt_dispatch_plan(const rt_dispatch_ctx *ctx, const rt_request_info *req, rt_plan *plan) {
    memset(plan, 0, sizeof *plan);
    const char *m = req && req->model && req->model[0] ? req->model : RT_MODEL_AUTO;

    if (!strcmp(m, RT_MODEL_AUTO))
        /* The routing policy decides here later; with no cloud the edge is
         * the only possible answer. */
        return plan_engine(ctx, plan, "auto: engine (no cloud upstream configured)");
    if (!strcmp(m, RT_MODEL_EDGE)) return plan_engine(ctx, plan, "edge requested");
    if (ctx->engine_model_id && !strcmp(m, ctx->engine_model_id))
        return plan_engine(ctx, plan, "embedded model requested");
    if (!strcmp(m, RT_MODEL_CLOUD)) {
        if (!ctx->cloud_configured)
            return fail(plan, 503, "server_error", "cloud_unavailable", "model",
                        "no cloud upstream configured");
        /* Unreachable until the cloud issue adds upstreams. */
        return fail(plan, 503, "server_error", "cloud_unavailable", "model",
                    "cloud upstreams are not implemented in this build");
    }
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
    if (ctx->cloud_configured) PUT(RT_MODEL_CLOUD, "tidegate");
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
