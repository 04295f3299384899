/* routing: the gateway's side of the routing decision.
 *
 * Owns the current policy and replaces it whole on a hot reload: a change
 * to the policy file (libuv fs events on its directory, so an editor's
 * write-and-rename is seen; debounced), SIGHUP, or POST /admin/reload. The
 * new file is parsed and validated completely before the swap; an invalid
 * file keeps the old policy and the error is logged and kept for
 * /admin/state. Decisions are values copied into each request's plan, so a
 * swap never touches a request in flight.
 *
 * Also samples device health on a libuv timer (never on a request's path):
 * procfs/sysfs under a configurable root, the engine's queue depth, and the
 * moving averages the chat path feeds in (time to first token, decode
 * tokens/s). And the routing metrics: decisions by rule and route, the
 * score histogram, cascade escalations, reloads.
 *
 * Loop thread only. */
#ifndef TG_ROUTING_H
#define TG_ROUTING_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/tg_buf.h"
#include "gateway/metrics.h"
#include "router/health.h"
#include "router/policy.h"

typedef struct tg_routing {
    uv_loop_t *loop;
    rt_policy *policy;  /* current; never NULL after init */
    char *path;         /* the policy file, NULL = built in */
    char *dir, *base;   /* path split, for the directory watch */
    uint64_t file_hash; /* of the bytes last loaded (skip no-op reloads) */
    char last_error[2048];
    uint64_t n_reloads, n_reload_errors;
    int64_t loaded_at; /* unix seconds */

    uv_fs_event_t watch;
    uv_timer_t debounce;
    uv_signal_t sighup;
    uv_timer_t health_timer;
    bool watching, handles_on;

    rt_health_sampler sampler;
    rt_health health;
    /* Engine queue from the owner (NULL = unknown): jobs waiting and
     * running; queue_cap = waiting jobs the queue holds (a full queue means
     * the next request gets 429: engine_queue_frac 1). */
    void (*engine_queue)(void *user, int *waiting, int *running);
    int queue_cap;
    void *queue_user;
    /* Cloud health from the owner at each sample (NULL = none). */
    void (*cloud_sample)(void *user, rt_health *h);
    void *cloud_user;

    tg_metric *m_decisions, *m_score, *m_escalations, *m_reloads;
} tg_routing;

/* Loads the policy: `path`, or the built-in hybrid.yaml when a cloud
 * upstream is configured, or the built-in edge-only policy. Returns 0, or
 * -1 with err (the file's errors, `file:line:col: path: message` lines). */
int tg_routing_init(tg_routing *r, uv_loop_t *loop, const char *path, bool cloud, char *err,
                    size_t errlen);
/* Starts the file watch, SIGHUP and the health timer (health root "" or
 * NULL = "/"; interval 0 = 1000 ms). */
void tg_routing_start(tg_routing *r, const char *health_root, unsigned interval_ms);
void tg_routing_register_metrics(tg_routing *r, tg_metrics *reg);
/* Re-reads the file now. 0 = swapped (or unchanged), -1 = kept the old one
 * (err filled, also kept for /admin/state), 1 = nothing to reload (built-in). */
int tg_routing_reload(tg_routing *r, const char *why, char *err, size_t errlen);

/* A request's decision (metrics). */
void tg_routing_count(tg_routing *r, const char *rule, const char *route, double score,
                      bool scored);
void tg_routing_escalated(tg_routing *r, const char *rule);
/* A finished engine answer: feeds the TTFT and tokens/s averages. */
void tg_routing_engine_done(tg_routing *r, double ttft_ms, int n_generated, double total_ms);

/* {"policy":{"source","rules":[...],"loaded_at","reloads","reload_errors",
 *  "last_error"},"health":{...}} members, without the outer braces. */
void tg_routing_state_members(const tg_routing *r, tg_buf *out);

/* Closes handles (run the loop afterwards) and frees the policy. */
void tg_routing_close(tg_routing *r);

#endif
