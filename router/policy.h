/* policy: the routing policy (policies/NAME.yaml) and its evaluation.
 *
 * A policy is an ordered list of rules; the first rule whose conditions all
 * hold decides. Conditions look at the complexity score, the request's
 * features (raw values), the device health and the connectivity mode; the
 * last rule has no conditions (the default). A rule's action is a target
 * (edge, cloud or cloud:<upstream>), ordered fallbacks, per-target time to
 * first token, a retry budget, the mid-stream behaviour when a target fails
 * after the first token (continue on the next target, or error), and an
 * optional cascade (answer on the edge, escalate to the cloud when the
 * edge's confidence over its first N tokens is low), an optional `defer`
 * (a cloud-only rule: no cloud target now -> wait for the cloud) and what
 * a client that goes away does to its request (`on_client_gone`).
 * policies/README.md is the language reference.
 *
 * rt_policy_load*() parses and validates a whole file (libyaml document API)
 * and returns a new immutable policy or NULL with every error as one line
 * `file:line:col: path: message`. Hot reload swaps whole policies; a
 * decision is a value, so in-flight requests keep theirs.
 *
 * rt_policy_decide() is pure (no I/O, no allocation): request features +
 * health + mode -> rt_decision. Thread-safe on a shared policy. */
#ifndef RT_POLICY_H
#define RT_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/tg_buf.h"
#include "router/health.h"
#include "router/score.h"

#define RT_POLICY_MAX_BYTES   (256u << 10)
#define RT_POLICY_MAX_RULES   64
#define RT_POLICY_MAX_CONDS   32 /* per rule, nested `any` included */
#define RT_POLICY_MAX_DEPTH   4  /* `any` nesting */
#define RT_POLICY_MAX_TARGETS 4  /* target + fallbacks */
#define RT_POLICY_NAME_MAX    64

typedef enum { RT_PMODE_ONLINE = 0, RT_PMODE_DEGRADED, RT_PMODE_OFFLINE, RT_PMODE_COUNT } rt_pmode;
typedef enum { RT_ROUTE_EDGE = 0, RT_ROUTE_CLOUD } rt_route;
typedef enum { RT_PMID_CONTINUE = 0, RT_PMID_ERROR } rt_pmid;

typedef struct {
    rt_route route;
    char name[RT_POLICY_NAME_MAX]; /* "edge", "cloud", "cloud:<upstream>" */
    int timeout_ms;                /* time to first token; 0 = the default */
} rt_policy_target;

typedef struct {
    bool enabled;
    int tokens;       /* N: tokens judged (and held back on streams) */
    bool has_logprob; /* escalate when mean logprob < min_mean_logprob */
    double min_mean_logprob;
    bool has_entropy; /* escalate when mean entropy > max_mean_entropy */
    double max_mean_entropy;
} rt_cascade;

/* A cloud-only rule's answer to "no cloud target can answer now" (offline,
 * forced edge-only, every cloud breaker open): instead of failing, the
 * request is journaled DEFERRED and runs when the cloud is back. */
typedef struct {
    bool enabled;
    int max_wait_ms;  /* a streaming client waits this long, then an error event */
    int keepalive_ms; /* SSE comment keep-alive interval while it waits */
} rt_defer;

/* What a request does when its client goes away before the answer. AUTO:
 * finish when it carries an Idempotency-Key (the retry attaches to it),
 * cancel otherwise. */
typedef enum { RT_PGONE_AUTO = 0, RT_PGONE_CANCEL, RT_PGONE_FINISH } rt_pgone;

#define RT_DEFER_MAX_WAIT_MS  60000 /* defaults when the rule does not say */
#define RT_DEFER_KEEPALIVE_MS 5000

typedef struct rt_policy rt_policy;

typedef struct {
    char rule[RT_POLICY_NAME_MAX]; /* the rule that fired */
    int rule_index;
    double score;
    double contrib[RT_F_COUNT];
    rt_policy_target targets[RT_POLICY_MAX_TARGETS];
    size_t n_targets;
    int retry_budget;
    rt_pmid mid_stream;
    rt_cascade cascade;
    rt_defer defer;          /* cloud-only: wait for the cloud instead of failing */
    rt_pgone on_client_gone; /* cancel or finish when the client leaves */
    char note[96];           /* the rule's `reason` text, or "" */
} rt_decision;

/* Loading. err gets '\n'-joined lines (no trailing newline). */
rt_policy *rt_policy_load_file(const char *path, char *err, size_t errlen);
rt_policy *rt_policy_load_mem(const char *data, size_t len, const char *name, char *err,
                              size_t errlen);
void rt_policy_free(rt_policy *p);

/* The policy used when none is configured and no cloud upstream exists:
 * edge only, default weights. */
rt_policy *rt_policy_builtin_edge(void);
/* policies/hybrid.yaml as compiled in: the default with a cloud upstream. */
rt_policy *rt_policy_builtin_hybrid(void);

const char *rt_policy_source(const rt_policy *p); /* file name it came from */
const rt_score_weights *rt_policy_weights(const rt_policy *p);
size_t rt_policy_rule_count(const rt_policy *p);
const char *rt_policy_rule_name(const rt_policy *p, size_t i);

void rt_policy_decide(const rt_policy *p, const rt_features *f, const rt_health *h, rt_pmode mode,
                      rt_decision *out);

/* "rule=<name>; score=0.731 -> cloud; <note>" (ASCII, for headers/logs). */
void rt_decision_reason(const rt_decision *d, char *out, size_t cap);

/* Writes a policy: the given weights and the rules of `base` (or of the
 * shipped hybrid shape when base is NULL), as YAML text. */
void rt_policy_write_yaml(const rt_policy *base, const rt_score_weights *w, const char *comment,
                          tg_buf *out);

const char *rt_pmode_name(rt_pmode m);
int rt_pmode_by_name(const char *s); /* -1 when unknown */
const char *rt_route_name(rt_route r);

#endif
