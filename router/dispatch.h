/* dispatch: the one step between the OpenAI API and the targets that answer.
 *
 * rt_dispatch_plan() turns a request's `model`, the connectivity mode and
 * the configured upstreams (later also its features and the device health:
 * the routing policy, issue #8) into an rt_plan: an ordered list of targets
 * to try, each with its first-token budget and what a failure after the
 * first token does, plus a one-line reason. The plan is the seam: a policy
 * only has to fill it; the API layer runs it (api/chat_run.c: next target
 * on a failure before the first token, continue or error event after) and
 * never decides a target itself.
 *
 * tidegate/auto with a policy (ctx->policy and req->features set): the
 * policy's decision (router/policy.h) becomes the plan: edge -> the engine,
 * cloud -> every upstream in config order, cloud:<name> -> that upstream;
 * each with the rule's time to first token and mid-stream behaviour, the
 * target repeated retry_budget more times; targets the mode forbids are
 * dropped. The reason is the decision's ("rule=<name>; score=..."). A
 * rule's `defer` and `on_client_gone` ride on the plan (rt_plan.defer).
 *
 * The fixed rules without a policy:
 *   tidegate/edge, the embedded model's id   -> engine
 *   tidegate/cloud                           -> every upstream in config
 *                                               order, then the engine
 *                                               (unless the first upstream
 *                                               says fallback: none)
 *   an upstream's model (or name)            -> that upstream, then the
 *                                               engine (unless fallback: none)
 *   tidegate/auto (or no model)              -> the engine first, then the
 *                                               upstreams as fallback; the
 *                                               upstreams first when the
 *                                               engine's breaker is open
 * The mode filters: offline / edge-only (or auto while the link is offline)
 * drop the cloud targets, cloud-only drops the engine; an empty plan is 503.
 * Breakers are not looked at here: the runner skips an open one at once
 * (cause breaker_open), so the skip shows in x-tidegate-failover.
 *
 * No I/O, no allocation: a plan is a value the caller owns. */
#ifndef RT_DISPATCH_H
#define RT_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "router/policy.h"
#include "router/request.h"
#include "router/router.h"

#define RT_MODEL_AUTO  "tidegate/auto"
#define RT_MODEL_EDGE  "tidegate/edge"
#define RT_MODEL_CLOUD "tidegate/cloud"

#define RT_PLAN_MAX_TARGETS (RT_MAX_UPSTREAMS + 2)
#define RT_NAME_MAX         128

typedef enum {
    RT_TARGET_ENGINE = 0, /* the embedded LFM2 engine */
    RT_TARGET_CLOUD,      /* a cloud upstream (router->ups[upstream]) */
} rt_target_kind;

typedef struct {
    rt_target_kind kind;
    char name[RT_NAME_MAX]; /* "engine" or "cloud:<upstream>" (route header, access log) */
    int upstream;           /* RT_TARGET_CLOUD: index in router->ups; -1 for the engine */
    /* Time to first byte before moving on to the next target; 0 = the
     * target's own (the upstream's first_byte_timeout_ms; none for the engine). */
    int timeout_ms;
    /* A failure after the first token: continue on the engine from the text
     * already sent, or end with an error event. Continuing is refused anyway
     * when a tool call was half emitted. */
    rt_midstream midstream;
} rt_target;

typedef struct {
    /* Failure: err.status != 0 and no targets; err is what to send back
     * (OpenAI error JSON). */
    tg_oai_error err;

    rt_target targets[RT_PLAN_MAX_TARGETS];
    size_t n_targets;
    /* The model name responses carry: the embedded model's id for the
     * engine, whatever the client asked for otherwise. */
    char response_model[RT_NAME_MAX];
    char reason[192]; /* one line, for logs and the x-tidegate-reason header */
    /* A routing policy's decision (tidegate/auto with a policy): the score
     * for x-tidegate-score, the rule, and the cascade the runner applies to
     * the first engine target when a cloud target follows. */
    bool scored;
    double score;
    char rule[RT_POLICY_NAME_MAX];
    rt_cascade cascade;
    /* The rule's `defer` (cloud-only): set on an empty plan too (then
     * rt_dispatch_plan still fails with err 503 cloud_unavailable, and the
     * caller may defer the request instead of answering that), and on a
     * plan with targets (when they all fail before the first token, the
     * runner may defer instead of failing). */
    rt_defer defer;
    rt_pgone on_client_gone; /* the rule's; AUTO without a policy decision */
} rt_plan;

/* What dispatch knows about the world. Filled once at startup; later issues
 * add policy and health. */
typedef struct {
    const char *engine_model_id; /* the embedded model's id, NULL = no engine */
    bool engine_ready;           /* model loaded and scheduler running */
    bool cloud_configured;       /* router has at least one upstream */
    rt_router *router;           /* upstreams, breakers, mode; NULL = edge only */
    const rt_policy *policy;     /* tidegate/auto's policy; NULL = the fixed rules above */
    const rt_health *health;     /* last health snapshot for the policy; NULL = all unknown */
} rt_dispatch_ctx;

/* What dispatch looks at in a request. */
typedef struct {
    const char *model; /* NULL or "" = tidegate/auto */
    bool has_tools;
    int prompt_tokens;           /* -1 when not yet known */
    int max_tokens;              /* 0 when not given */
    const rt_features *features; /* for the policy; NULL = no policy decision */
} rt_request_info;

/* Fills *plan. Returns 0 when the plan has at least one target, -1 when it
 * is a failure (plan->err set). */
int rt_dispatch_plan(const rt_dispatch_ctx *ctx, const rt_request_info *req, rt_plan *plan);

/* The model ids GET /v1/models lists, in order; returns how many were written
 * (at most cap). owners[i] says who serves it. */
size_t rt_dispatch_models(const rt_dispatch_ctx *ctx, const char **ids, const char **owners,
                          size_t cap);

const char *rt_target_kind_name(rt_target_kind k);

#endif
