/* metrics: Prometheus registry (counters, gauges, histograms, callback
 * gauges) and its text exposition. Loop thread only. */
#include "gateway/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_log.h"
#include "common/tg_str.h"

#define MAX_BUCKETS 32

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM, M_GAUGE_FN, M_COUNTER_FN } m_type;

typedef struct {
    char *values[TG_METRICS_MAX_LABELS];
    double value;      /* counter / gauge */
    double sum;        /* histogram */
    uint64_t count;    /* histogram */
    uint64_t *buckets; /* histogram: per-bucket (not cumulative) counts, nb + 1 (+Inf) */
} m_series;

struct tg_metric {
    tg_metric *next;
    m_type type;
    char *name;
    char *help;
    int nlabels;
    char *labels[TG_METRICS_MAX_LABELS];
    double bounds[MAX_BUCKETS];
    size_t nb;
    double (*fn)(void *user);
    void *user;
    m_series *series;
    size_t n, cap;
    int warned_full;
};

struct tg_metrics {
    tg_metric *head, *tail;
};

const double tg_metrics_duration_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                              1,     2.5,  5,     10,   30,  60,   120};
const size_t tg_metrics_duration_buckets_n =
    sizeof tg_metrics_duration_buckets / sizeof tg_metrics_duration_buckets[0];
const double tg_metrics_ttft_buckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const size_t tg_metrics_ttft_buckets_n =
    sizeof tg_metrics_ttft_buckets / sizeof tg_metrics_ttft_buckets[0];

tg_metrics *tg_metrics_new(void) {
    tg_metrics *r = calloc(1, sizeof *r);
    if (!r) abort();
    return r;
}

static void metric_free(tg_metric *m) {
    for (size_t i = 0; i < m->n; i++) {
        for (int k = 0; k < m->nlabels; k++)
            free(m->series[i].values[k]);
        free(m->series[i].buckets);
    }
    free(m->series);
    for (int k = 0; k < m->nlabels; k++)
        free(m->labels[k]);
    free(m->name);
    free(m->help);
    free(m);
}

void tg_metrics_free(tg_metrics *reg) {
    if (!reg) return;
    for (tg_metric *m = reg->head, *nx; m; m = nx) {
        nx = m->next;
        metric_free(m);
    }
    free(reg);
}

/* ---- registration ----------------------------------------------------------- */

static int valid_name(const char *s, int allow_colon) {
    if (!s || !*s) return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

static tg_metric *reg_add(tg_metrics *reg, m_type type, const char *name, const char *help,
                          const char *labels) {
    if (!reg || !valid_name(name, 1)) {
        tg_log_error("metrics_bad_name", "name=%s", name ? name : "(null)");
        return NULL;
    }
    for (tg_metric *m = reg->head; m; m = m->next)
        if (!strcmp(m->name, name)) {
            tg_log_error("metrics_duplicate", "name=%s", name);
            return NULL;
        }
    tg_metric *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->type = type;
    m->name = tg_xstrdup(name);
    m->help = tg_xstrdup(help ? help : "");
    /* Split "a,b" into label names, each validated. */
    const char *p = labels ? labels : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char tmp[64];
        int bad = m->nlabels == TG_METRICS_MAX_LABELS || len == 0 || len >= sizeof tmp;
        if (!bad) {
            memcpy(tmp, p, len);
            tmp[len] = 0;
            bad = !valid_name(tmp, 0) || !strncmp(tmp, "__", 2) ||
                  (type == M_HISTOGRAM && !strcmp(tmp, "le"));
        }
        if (bad) {
            tg_log_error("metrics_bad_labels", "name=%s labels=%s", name, labels);
            metric_free(m);
            return NULL;
        }
        m->labels[m->nlabels++] = tg_xstrdup(tmp);
        p = e ? e + 1 : p + len;
    }
    if (reg->tail)
        reg->tail->next = m;
    else
        reg->head = m;
    reg->tail = m;
    return m;
}

tg_metric *tg_metrics_counter(tg_metrics *reg, const char *name, const char *help,
                              const char *labels) {
    return reg_add(reg, M_COUNTER, name, help, labels);
}

tg_metric *tg_metrics_gauge(tg_metrics *reg, const char *name, const char *help,
                            const char *labels) {
    return reg_add(reg, M_GAUGE, name, help, labels);
}

tg_metric *tg_metrics_histogram(tg_metrics *reg, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t n) {
    if (n > MAX_BUCKETS || (n && !bounds)) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1])) {
            tg_log_error("metrics_bad_buckets", "name=%s", name ? name : "(null)");
            return NULL;
        }
    tg_metric *m = reg_add(reg, M_HISTOGRAM, name, help, labels);
    if (!m) return NULL;
    if (n) memcpy(m->bounds, bounds, n * sizeof *bounds);
    m->nb = n;
    return m;
}

tg_metric *tg_metrics_gauge_fn(tg_metrics *reg, const char *name, const char *help,
                               double (*fn)(void *user), void *user) {
    if (!fn) return NULL;
    tg_metric *m = reg_add(reg, M_GAUGE_FN, name, help, NULL);
    if (!m) return NULL;
    m->fn = fn;
    m->user = user;
    return m;
}

tg_metric *tg_metrics_counter_fn(tg_metrics *reg, const char *name, const char *help,
                                 double (*fn)(void *user), void *user) {
    if (!fn) return NULL;
    tg_metric *m = reg_add(reg, M_COUNTER_FN, name, help, NULL);
    if (!m) return NULL;
    m->fn = fn;
    m->user = user;
    return m;
}

/* ---- updates ------------------------------------------------------------------ */

static m_series *series_get(tg_metric *m, const char *const *vals) {
    for (size_t i = 0; i < m->n; i++) {
        int same = 1;
        for (int k = 0; k < m->nlabels && same; k++)
            same = !strcmp(m->series[i].values[k], vals[k] ? vals[k] : "");
        if (same) return &m->series[i];
    }
    if (m->n == TG_METRICS_MAX_SERIES) {
        if (!m->warned_full) tg_log_warn("metrics_series_full", "name=%s", m->name);
        m->warned_full = 1;
        return NULL;
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4;
        m_series *ns = realloc(m->series, nc * sizeof *ns);
        if (!ns) abort();
        m->series = ns;
        m->cap = nc;
    }
    m_series *s = &m->series[m->n++];
    memset(s, 0, sizeof *s);
    for (int k = 0; k < m->nlabels; k++)
        s->values[k] = tg_xstrdup(vals[k] ? vals[k] : "");
    if (m->type == M_HISTOGRAM) {
        s->buckets = calloc(m->nb + 1, sizeof *s->buckets);
        if (!s->buckets) abort();
    }
    return s;
}

void tg_metrics_addv(tg_metric *m, double v, const char *const *vals) {
    if (!m || m->type != M_COUNTER || !(v >= 0)) return; /* counters never go down (NaN too) */
    m_series *s = series_get(m, vals);
    if (s) s->value += v;
}

void tg_metrics_setv(tg_metric *m, double v, const char *const *vals) {
    if (!m || m->type != M_GAUGE) return;
    m_series *s = series_get(m, vals);
    if (s) s->value = v;
}

void tg_metrics_observev(tg_metric *m, double v, const char *const *vals) {
    if (!m || m->type != M_HISTOGRAM || isnan(v)) return;
    m_series *s = series_get(m, vals);
    if (!s) return;
    size_t b = 0;
    while (b < m->nb && v > m->bounds[b])
        b++;
    s->buckets[b]++;
    s->count++;
    s->sum += v;
}

#define COLLECT_VARGS(m, vals, ap)                                                                 \
    const char *vals[TG_METRICS_MAX_LABELS] = {0};                                                 \
    for (int k_ = 0; k_ < (m)->nlabels; k_++)                                                      \
    vals[k_] = va_arg(ap, const char *)

void tg_metrics_add(tg_metric *m, double v, ...) {
    if (!m) return;
    va_list ap;
    va_start(ap, v);
    COLLECT_VARGS(m, vals, ap);
    va_end(ap);
    tg_metrics_addv(m, v, vals);
}

void tg_metrics_set(tg_metric *m, double v, ...) {
    if (!m) return;
    va_list ap;
    va_start(ap, v);
    COLLECT_VARGS(m, vals, ap);
    va_end(ap);
    tg_metrics_setv(m, v, vals);
}

void tg_metrics_observe(tg_metric *m, double v, ...) {
    if (!m) return;
    va_list ap;
    va_start(ap, v);
    COLLECT_VARGS(m, vals, ap);
    va_end(ap);
    tg_metrics_observev(m, v, vals);
}

/* ---- rendering ---------------------------------------------------------------- */

/* Shortest %g form that reads back as the same double; Prometheus spells
 * infinities +Inf/-Inf and not-a-number NaN. */
static void fmt_num(double v, char out[40]) {
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static void put_escaped(tg_buf *b, const char *s, int quote) {
    for (; *s; s++) {
        if (*s == '\\')
            tg_buf_puts(b, "\\\\");
        else if (*s == '\n')
            tg_buf_puts(b, "\\n");
        else if (quote && *s == '"')
            tg_buf_puts(b, "\\\"");
        else
            tg_buf_putc(b, *s);
    }
}

/* `{a="x",b="y",le="0.5"}` or nothing when there are no labels at all. */
static void put_labels(tg_buf *b, const tg_metric *m, const m_series *s, const char *le) {
    if (m->nlabels == 0 && !le) return;
    tg_buf_putc(b, '{');
    for (int k = 0; k < m->nlabels; k++) {
        if (k) tg_buf_putc(b, ',');
        tg_buf_printf(b, "%s=\"", m->labels[k]);
        put_escaped(b, s->values[k], 1);
        tg_buf_putc(b, '"');
    }
    if (le) tg_buf_printf(b, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    tg_buf_putc(b, '}');
}

static void render_one(tg_buf *b, const tg_metric *m) {
    static const char *const types[] = {"counter", "gauge", "histogram", "gauge", "counter"};
    char num[40];
    tg_buf_printf(b, "# HELP %s ", m->name);
    put_escaped(b, m->help, 0);
    tg_buf_printf(b, "\n# TYPE %s %s\n", m->name, types[m->type]);
    if (m->type == M_GAUGE_FN || m->type == M_COUNTER_FN) {
        fmt_num(m->fn(m->user), num);
        tg_buf_printf(b, "%s %s\n", m->name, num);
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        const m_series *s = &m->series[i];
        if (m->type != M_HISTOGRAM) {
            tg_buf_puts(b, m->name);
            put_labels(b, m, s, NULL);
            fmt_num(s->value, num);
            tg_buf_printf(b, " %s\n", num);
            continue;
        }
        uint64_t cum = 0;
        for (size_t k = 0; k <= m->nb; k++) {
            char le[40];
            cum += s->buckets[k];
            if (k < m->nb)
                fmt_num(m->bounds[k], le);
            else
                strcpy(le, "+Inf");
            tg_buf_printf(b, "%s_bucket", m->name);
            put_labels(b, m, s, le);
            tg_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
        tg_buf_printf(b, "%s_sum", m->name);
        put_labels(b, m, s, NULL);
        fmt_num(s->sum, num);
        tg_buf_printf(b, " %s\n", num);
        tg_buf_printf(b, "%s_count", m->name);
        put_labels(b, m, s, NULL);
        tg_buf_printf(b, " %llu\n", (unsigned long long)s->count);
    }
}

void tg_metrics_render(tg_metrics *reg, tg_buf *out) {
    if (!reg) return;
    for (const tg_metric *m = reg->head; m; m = m->next)
        render_one(out, m);
}

/* ---- standard gateway families ---------------------------------------------- */

void tg_metrics_std_init(tg_metrics_std *s, tg_metrics *reg) {
    s->http_requests = tg_metrics_counter(reg, "tidegate_http_requests_total",
                                          "HTTP requests by route and status.", "route,status");
    s->request_duration = tg_metrics_histogram(
        reg, "tidegate_request_duration_seconds", "Time from request head to last byte sent.",
        "route", tg_metrics_duration_buckets, tg_metrics_duration_buckets_n);
    s->ttft = tg_metrics_histogram(reg, "tidegate_ttft_seconds",
                                   "Time from request accepted to first generated token.", NULL,
                                   tg_metrics_ttft_buckets, tg_metrics_ttft_buckets_n);
    s->tokens =
        tg_metrics_counter(reg, "tidegate_tokens_total",
                           "Tokens processed: prompt (in) and generated (out).", "direction");
}

void tg_metrics_std_request(tg_metrics_std *s, const char *route, int status, double seconds) {
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    tg_metrics_add(s->http_requests, 1, route, st);
    tg_metrics_observe(s->request_duration, seconds, route);
}

void tg_metrics_std_tokens(tg_metrics_std *s, long in, long out) {
    if (in > 0) tg_metrics_add(s->tokens, (double)in, "in");
    if (out > 0) tg_metrics_add(s->tokens, (double)out, "out");
}
