/* dispatch: the one step between the OpenAI API and the targets that answer.
 *
 * rt_dispatch_plan() turns a request's `model` (and, later, its features,
 * the device health and the connectivity mode) into an rt_plan: an ordered
 * list of targets to try, with a one-line reason. The API layer runs the
 * plan; it never decides a target itself. Today the plan holds the embedded
 * engine for tidegate/auto, tidegate/edge and the embedded model's id;
 * tidegate/cloud fails with 503 (no cloud upstream yet). Routing policy,
 * cloud failover and the journal plug in here later without the API layer
 * changing shape.
 *
 * No I/O, no allocation: a plan is a value the caller owns. */
#ifndef RT_DISPATCH_H
#define RT_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "router/request.h"

#define RT_MODEL_AUTO  "tidegate/auto"
#define RT_MODEL_EDGE  "tidegate/edge"
#define RT_MODEL_CLOUD "tidegate/cloud"

#define RT_PLAN_MAX_TARGETS 4
#define RT_NAME_MAX         128

typedef enum {
    RT_TARGET_ENGINE = 0, /* the embedded LFM2 engine */
    RT_TARGET_CLOUD,      /* a cloud upstream (not yet available) */
} rt_target_kind;

typedef struct {
    rt_target_kind kind;
    char name[RT_NAME_MAX]; /* "engine", later "cloud:<upstream>" (the access-log route) */
    int timeout_ms;         /* time to first token before moving on; 0 = none */
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
    char reason[128]; /* one line, for logs and (later) a response header */
} rt_plan;

/* What dispatch knows about the world. Filled once at startup; later issues
 * add cloud upstreams, policy, health, mode. */
typedef struct {
    const char *engine_model_id; /* the embedded model's id, NULL = no engine */
    bool engine_ready;           /* model loaded and scheduler running */
    bool cloud_configured;       /* always false until the cloud issue */
} rt_dispatch_ctx;

/* What dispatch looks at in a request. */
typedef struct {
    const char *model; /* NULL or "" = tidegate/auto */
    bool has_tools;
    int prompt_tokens; /* -1 when not yet known */
    int max_tokens;    /* 0 when not given */
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
