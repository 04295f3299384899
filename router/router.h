/* router: the state dispatch decides from and the targets it reaches.
 *
 * One rt_router per gateway, on the loop thread. It owns the cloud client
 * (router/cloud.h), each configured upstream with its circuit breaker and
 * recent statistics, the engine's breaker, the connectivity mode
 * (router/connectivity.h) and its probe timer, and the observers that want
 * to hear about each request's life (the journal, metrics).
 *
 * Whoever runs a plan reports every attempt's outcome through
 * rt_router_outcome (breakers, mode and statistics follow from it) and the
 * request-life events through rt_router_emit (observers see them). */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/tg_buf.h"
#include "config/config.h"
#include "router/breaker.h"
#include "router/cloud.h"
#include "router/connectivity.h"

#define RT_MAX_UPSTREAMS TG_CONFIG_MAX_UPSTREAMS

typedef enum {
    RT_MIDSTREAM_CONTINUE = 0, /* continue on the engine from the text already sent */
    RT_MIDSTREAM_ERROR,        /* end the stream with an OpenAI-style error event */
} rt_midstream;

typedef struct rt_router rt_router;

typedef struct {
    rt_router *owner;
    char name[64];
    char route[80]; /* "cloud:<name>": x-tidegate-route, access log, metrics label */
    char *model;
    char *api_key; /* from the environment at startup; never logged, never in config */
    char *headers[TG_CONFIG_MAX_UP_HEADERS];
    rt_cloud_target target; /* points into the strings above */
    bool fallback_edge;
    rt_midstream midstream;
    rt_breaker breaker;
    /* statistics for /admin/state */
    uint64_t n_ok, n_fail;
    double rtt_ms; /* moving average of time to first byte */
    rt_fail_cause last_cause;
    rt_cloud_call *probe;
} rt_upstream;

/* Request-life events, for observers (journal, metrics, logs). Strings are
 * valid during the call only. */
typedef enum {
    RT_EV_DISPATCHED = 0, /* a plan is about to run (target = first target) */
    RT_EV_FAILOVER,       /* from -> to, cause; midstream says after the first token */
    RT_EV_COMPLETED,      /* answered (target = who produced the answer's end) */
    RT_EV_FAILED,         /* ended with an error (status, cause) */
    RT_EV_BREAKER,        /* target's breaker moved: from -> to are state names */
    RT_EV_MODE,           /* connectivity: from -> to are state names */
} rt_event_kind;

typedef struct {
    rt_event_kind kind;
    const char *request_id; /* NULL for BREAKER/MODE */
    const char *target;     /* "engine", "cloud:<name>" */
    const char *from, *to;
    rt_fail_cause cause;
    bool midstream;
    double ms; /* FAILOVER: fault to next target started; COMPLETED/FAILED: total */
    int status;
} rt_event;

typedef void (*rt_observer_fn)(void *user, const rt_event *ev);
#define RT_MAX_OBSERVERS 8

struct rt_router {
    uv_loop_t *loop;
    rt_cloud *cloud;
    rt_upstream ups[RT_MAX_UPSTREAMS];
    int n_ups;
    rt_breaker engine_breaker;
    rt_conn conn;
    rt_midstream midstream; /* routing.midstream */
    uint32_t probe_interval_ms;
    uv_timer_t probe_timer;
    bool probe_timer_on;
    struct {
        rt_observer_fn fn;
        void *user;
    } obs[RT_MAX_OBSERVERS];
    int n_obs;
};

/* Builds the router from cfg (upstreams, breakers, mode). API keys are read
 * from the variables the config names; a named variable that is unset or
 * empty is an error. Returns 0, or -1 with err. Starts the probe timer when
 * there are upstreams. */
int rt_router_init(rt_router *r, uv_loop_t *loop, const tg_config *cfg, char *err, size_t errlen);
/* Stops timers and calls; the loop must run afterwards to close handles. */
void rt_router_close(rt_router *r);

/* The upstream whose model or name is id, or NULL. */
rt_upstream *rt_router_find(rt_router *r, const char *id);
rt_upstream *rt_router_by_route(rt_router *r, const char *route);

static inline uint64_t rt_now_ms(const rt_router *r) {
    return uv_now(r->loop);
}

/* May this target take a request now (its breaker)? u NULL = the engine. A
 * true answer must be followed by rt_router_outcome or rt_router_release. */
bool rt_router_allow(rt_router *r, rt_upstream *u);
/* An attempt's outcome: cause RT_FAIL_NONE = success. first_byte_ms feeds
 * the RTT average (cloud successes). RT_FAIL_ENGINE_BUSY (load shedding)
 * counts neither way: the breaker only hands a half-open trial back. */
void rt_router_outcome(rt_router *r, rt_upstream *u, rt_fail_cause cause, double first_byte_ms);
/* The attempt ended without an outcome (client gone). */
void rt_router_release(rt_router *r, rt_upstream *u);

int rt_router_observe(rt_router *r, rt_observer_fn fn, void *user);
void rt_router_emit(rt_router *r, const rt_event *ev);

/* Forces a mode (or back to auto). */
void rt_router_set_mode(rt_router *r, rt_conn_mode m);

/* GET /admin/state body: {"mode","state","engine":{breaker},"upstreams":[...]} */
void rt_router_state_json(const rt_router *r, tg_buf *out);

#endif
