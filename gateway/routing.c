/* routing: policy holder with hot reload, health timer, routing metrics.
 * See routing.h. */
#include "gateway/routing.h"

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tg_log.h"
#include "common/tg_str.h"

#define DEBOUNCE_MS 100 /* an editor's save is several events */

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* Loads path into a new policy; 0 and *out, or -1 with err. *hash gets the
 * bytes' hash. */
static int load(const char *path, rt_policy **out, uint64_t *hash, char *err, size_t errlen) {
    tg_buf b = TG_BUF_INIT;
    if (tg_buf_read_file(&b, path) != 0) {
        snprintf(err, errlen, "%s: cannot read the policy file", path);
        tg_buf_free(&b);
        return -1;
    }
    *hash = hash_bytes(b.data ? b.data : "", b.len);
    *out = rt_policy_load_mem(b.data ? b.data : "", b.len, path, err, errlen);
    tg_buf_free(&b);
    return *out ? 0 : -1;
}

int tg_routing_init(tg_routing *r, uv_loop_t *loop, const char *path, bool cloud, char *err,
                    size_t errlen) {
    memset(r, 0, sizeof *r);
    r->loop = loop;
    rt_health_init(&r->health);
    rt_health_sampler_init(&r->sampler, NULL);
    r->loaded_at = (int64_t)time(NULL);
    if (path && *path) {
        if (load(path, &r->policy, &r->file_hash, err, errlen) < 0) return -1;
        r->path = tg_xstrdup(path);
        char *a = tg_xstrdup(path), *b = tg_xstrdup(path);
        r->dir = tg_xstrdup(dirname(a));
        r->base = tg_xstrdup(basename(b));
        free(a), free(b);
    } else {
        r->policy = cloud ? rt_policy_builtin_hybrid() : rt_policy_builtin_edge();
    }
    tg_log_info("policy_loaded", "source=\"%s\" rules=%zu", rt_policy_source(r->policy),
                rt_policy_rule_count(r->policy));
    return 0;
}

int tg_routing_reload(tg_routing *r, const char *why, char *err, size_t errlen) {
    if (!r->path) {
        snprintf(err, errlen, "no policy file configured (built-in policy)");
        return 1;
    }
    rt_policy *np = NULL;
    uint64_t h = 0;
    if (load(r->path, &np, &h, err, errlen) < 0) {
        r->n_reload_errors++;
        snprintf(r->last_error, sizeof r->last_error, "%s", err);
        /* One log line per error line keeps each `file:line:col` greppable. */
        tg_log_warn("policy_reload_failed", "trigger=%s kept=\"%s\" error=\"%.300s\"", why,
                    rt_policy_source(r->policy), err);
        tg_metrics_add(r->m_reloads, 1, "error");
        return -1;
    }
    if (h == r->file_hash) { /* same bytes: nothing to do */
        rt_policy_free(np);
        r->last_error[0] = 0;
        return 0;
    }
    rt_policy *old = r->policy;
    r->policy = np; /* the swap: later decisions use np; plans made already are values */
    r->file_hash = h;
    r->n_reloads++;
    r->last_error[0] = 0;
    r->loaded_at = (int64_t)time(NULL);
    rt_policy_free(old);
    tg_log_info("policy_reloaded", "trigger=%s source=\"%s\" rules=%zu", why, r->path,
                rt_policy_rule_count(r->policy));
    tg_metrics_add(r->m_reloads, 1, "ok");
    if (err && errlen) err[0] = 0;
    return 0;
}

static void on_debounce(uv_timer_t *t) {
    tg_routing *r = t->data;
    char err[2048];
    tg_routing_reload(r, "file", err, sizeof err);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
    tg_routing *r = h->data;
    (void)events;
    if (status < 0) return;
    if (filename && strcmp(filename, r->base) != 0) return; /* another file in the dir */
    uv_timer_start(&r->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void on_sighup(uv_signal_t *s, int signum) {
    (void)signum;
    tg_routing *r = s->data;
    char err[2048];
    if (tg_routing_reload(r, "sighup", err, sizeof err) == 1)
        tg_log_info("policy_reload_skipped", "trigger=sighup reason=\"%s\"", err);
}

static void sample(tg_routing *r) {
    rt_health_sample_system(&r->sampler, &r->health);
    if (r->engine_queue) {
        int waiting = 0, running = 0;
        r->engine_queue(r->queue_user, &waiting, &running);
        rt_health_set(&r->health, RT_H_ENGINE_QUEUE_DEPTH, waiting + running);
        if (r->queue_cap > 0)
            rt_health_set(&r->health, RT_H_ENGINE_QUEUE_FRAC,
                          waiting >= r->queue_cap ? 1.0 : (double)waiting / r->queue_cap);
    }
    if (r->cloud_sample) r->cloud_sample(r->cloud_user, &r->health);
}

static void on_health_timer(uv_timer_t *t) {
    sample(t->data);
}

void tg_routing_start(tg_routing *r, const char *health_root, unsigned interval_ms) {
    rt_health_sampler_init(&r->sampler, health_root && *health_root ? health_root : NULL);
    sample(r);
    uv_timer_init(r->loop, &r->health_timer);
    r->health_timer.data = r;
    unsigned iv = interval_ms ? interval_ms : 1000;
    uv_timer_start(&r->health_timer, on_health_timer, iv, iv);
    uv_unref((uv_handle_t *)&r->health_timer); /* never keeps the loop alive alone */
    uv_timer_init(r->loop, &r->debounce);
    r->debounce.data = r;
    uv_signal_init(r->loop, &r->sighup);
    r->sighup.data = r;
    uv_signal_start(&r->sighup, on_sighup, SIGHUP);
    uv_unref((uv_handle_t *)&r->sighup);
    r->handles_on = true;
    if (r->path) {
        uv_fs_event_init(r->loop, &r->watch);
        r->watch.data = r;
        if (uv_fs_event_start(&r->watch, on_fs_event, r->dir, 0) == 0) {
            r->watching = true;
            uv_unref((uv_handle_t *)&r->watch);
        } else {
            tg_log_warn("policy_watch_failed", "dir=\"%s\" (reload with SIGHUP or /admin/reload)",
                        r->dir);
        }
    }
}

static const double k_score_buckets[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

void tg_routing_register_metrics(tg_routing *r, tg_metrics *reg) {
    r->m_decisions =
        tg_metrics_counter(reg, "tidegate_routing_decisions_total",
                           "tidegate/auto decisions by policy rule and first route", "rule,route");
    r->m_score = tg_metrics_histogram(reg, "tidegate_routing_score",
                                      "complexity score of tidegate/auto requests", NULL,
                                      k_score_buckets, 9);
    r->m_escalations =
        tg_metrics_counter(reg, "tidegate_routing_cascade_escalations_total",
                           "cascade rules that escalated from the edge to the cloud", "rule");
    r->m_reloads = tg_metrics_counter(reg, "tidegate_routing_policy_reloads_total",
                                      "policy reload attempts by result", "result");
}

void tg_routing_count(tg_routing *r, const char *rule, const char *route, double score,
                      bool scored) {
    tg_metrics_add(r->m_decisions, 1, rule, route);
    if (scored) tg_metrics_observe(r->m_score, score);
}

void tg_routing_escalated(tg_routing *r, const char *rule) {
    tg_metrics_add(r->m_escalations, 1, rule);
}

void tg_routing_engine_done(tg_routing *r, double ttft_ms, int n_generated, double total_ms) {
    if (ttft_ms > 0) rt_health_ema(&r->health, RT_H_ENGINE_TTFT_MS, ttft_ms, 0.2);
    double decode_ms = total_ms - ttft_ms;
    if (n_generated > 1 && decode_ms > 0)
        rt_health_ema(&r->health, RT_H_ENGINE_TOK_S, (n_generated - 1) * 1000.0 / decode_ms, 0.2);
}

void tg_routing_state_members(const tg_routing *r, tg_buf *o) {
    const rt_policy *p = r->policy;
    tg_buf_puts(o, "\"policy\":{\"source\":");
    const char *src = rt_policy_source(p);
    tg_buf_json_str(o, src, strlen(src));
    tg_buf_printf(o, ",\"file\":%s", r->path ? "" : "null");
    if (r->path) tg_buf_json_str(o, r->path, strlen(r->path));
    tg_buf_puts(o, ",\"rules\":[");
    for (size_t i = 0; i < rt_policy_rule_count(p); i++) {
        const char *n = rt_policy_rule_name(p, i);
        if (i) tg_buf_putc(o, ',');
        tg_buf_json_str(o, n, strlen(n));
    }
    tg_buf_printf(o, "],\"loaded_at\":%lld,\"reloads\":%llu,\"reload_errors\":%llu,\"last_error\":",
                  (long long)r->loaded_at, (unsigned long long)r->n_reloads,
                  (unsigned long long)r->n_reload_errors);
    if (r->last_error[0])
        tg_buf_json_str(o, r->last_error, strlen(r->last_error));
    else
        tg_buf_puts(o, "null");
    tg_buf_puts(o, ",\"watching\":");
    tg_buf_puts(o, r->watching ? "true" : "false");
    tg_buf_puts(o, "},\"health\":");
    rt_health_json(&r->health, o);
}

static void close_cb(uv_handle_t *h) {
    (void)h;
}

void tg_routing_close(tg_routing *r) {
    if (r->handles_on) {
        uv_close((uv_handle_t *)&r->health_timer, close_cb);
        uv_close((uv_handle_t *)&r->debounce, close_cb);
        uv_close((uv_handle_t *)&r->sighup, close_cb);
        if (r->path) uv_close((uv_handle_t *)&r->watch, close_cb);
        r->handles_on = false;
    }
    rt_policy_free(r->policy);
    r->policy = NULL;
    free(r->path), free(r->dir), free(r->base);
    r->path = r->dir = r->base = NULL;
}
