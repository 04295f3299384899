/* metrics: a small Prometheus registry rendered as text exposition 0.0.4.
 *
 * Single-threaded by design: counters and histograms are updated and
 * rendered on the loop thread only, so no atomics. Values owned by other
 * threads (engine queue depth, active sequences) are exposed as callback
 * gauges, read at render time by a function the owner supplies (which must
 * itself be safe to call from the loop thread, e.g. read an atomic).
 *
 *   tg_metrics *reg = tg_metrics_new();
 *   tg_metric *req = tg_metrics_counter(reg, "tidegate_http_requests_total",
 *                                       "HTTP requests by route and status", "route,status");
 *   tg_metrics_add(req, 1, "/v1/chat/completions", "200");
 *   tg_buf out = TG_BUF_INIT; tg_metrics_render(reg, &out);
 *
 * Families render in registration order, series in first-use order, so the
 * output is deterministic. Label values are escaped (\\, \", \n). */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include <stddef.h>

#include "common/tg_buf.h"

typedef struct tg_metrics tg_metrics;
typedef struct tg_metric tg_metric; /* one family: name + help + type + label names */

#define TG_METRICS_MAX_LABELS 4
#define TG_METRICS_MAX_SERIES 512 /* per family; further label sets are dropped */

tg_metrics *tg_metrics_new(void);
void tg_metrics_free(tg_metrics *reg);

/* Registration. `labels` is a comma-separated list of label names ("route,status")
 * or NULL/"" for none. Names must be valid Prometheus names; a bad name or a
 * duplicate family name returns NULL (a programming error, logged). The
 * returned handle lives as long as the registry. */
tg_metric *tg_metrics_counter(tg_metrics *reg, const char *name, const char *help,
                              const char *labels);
tg_metric *tg_metrics_gauge(tg_metrics *reg, const char *name, const char *help,
                            const char *labels);
/* Upper bounds strictly increasing, finite; +Inf is implicit. n <= 32. */
tg_metric *tg_metrics_histogram(tg_metrics *reg, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t n);
/* A gauge whose value is fn(user) at render time. No labels. */
tg_metric *tg_metrics_gauge_fn(tg_metrics *reg, const char *name, const char *help,
                               double (*fn)(void *user), void *user);
/* The same for a counter another thread owns (fn must never decrease). */
tg_metric *tg_metrics_counter_fn(tg_metrics *reg, const char *name, const char *help,
                                 double (*fn)(void *user), void *user);

/* Updates. Label values follow as const char * arguments, exactly as many as
 * the family has label names (NULL values render as ""). NULL metric = no-op,
 * so callers need not check registration results. */
void tg_metrics_add(tg_metric *m, double v, ...);     /* counter: v >= 0 */
void tg_metrics_set(tg_metric *m, double v, ...);     /* gauge */
void tg_metrics_observe(tg_metric *m, double v, ...); /* histogram */
/* Array forms of the above. */
void tg_metrics_addv(tg_metric *m, double v, const char *const *label_values);
void tg_metrics_setv(tg_metric *m, double v, const char *const *label_values);
void tg_metrics_observev(tg_metric *m, double v, const char *const *label_values);

/* Appends the whole registry in text format 0.0.4
 * (Content-Type: text/plain; version=0.0.4; charset=utf-8). */
void tg_metrics_render(tg_metrics *reg, tg_buf *out);
#define TG_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* --- the gateway's standard families ------------------------------------- */

/* Default buckets (seconds). */
extern const double tg_metrics_duration_buckets[];
extern const size_t tg_metrics_duration_buckets_n;
extern const double tg_metrics_ttft_buckets[];
extern const size_t tg_metrics_ttft_buckets_n;

typedef struct {
    tg_metric *http_requests;    /* tidegate_http_requests_total{route,status} */
    tg_metric *request_duration; /* tidegate_request_duration_seconds{route} */
    tg_metric *ttft;             /* tidegate_ttft_seconds */
    tg_metric *tokens;           /* tidegate_tokens_total{direction="in|out"} */
} tg_metrics_std;

/* Registers the families above in reg. Gauges are registered by their owners
 * with tg_metrics_gauge_fn: tidegate_engine_queue_depth,
 * tidegate_engine_active_sequences, tidegate_http_active_connections. */
void tg_metrics_std_init(tg_metrics_std *s, tg_metrics *reg);
/* One finished HTTP request: counts it and observes its duration. `route` is
 * the matched route pattern, never the raw path (bounded cardinality). */
void tg_metrics_std_request(tg_metrics_std *s, const char *route, int status, double seconds);
void tg_metrics_std_tokens(tg_metrics_std *s, long in, long out);

#endif
