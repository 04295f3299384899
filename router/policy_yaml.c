/* policy_yaml: loads a routing policy with libyaml's document API (every
 * node keeps its mark, so every error has a line and column), validates it
 * whole and builds an rt_policy. Unknown keys are errors; nesting, sizes and
 * counts are bounded. The language is documented in policies/README.md. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "router/policy_impl.h"

#define MAX_ERRORS 20

typedef struct {
    yaml_document_t *doc;
    const char *name;
    tg_buf errs;
    int n_errs;
    rt_policy *p;
} loader;

static void errf(loader *L, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void errf(loader *L, const yaml_node_t *n, const char *path, const char *fmt, ...) {
    if (L->n_errs >= MAX_ERRORS) return;
    if (L->n_errs) tg_buf_putc(&L->errs, '\n');
    tg_buf_printf(
        &L->errs, "%s:%lu:%lu: %s: ", L->name, n ? (unsigned long)n->start_mark.line + 1 : 1ul,
        n ? (unsigned long)n->start_mark.column + 1 : 1ul, path && *path ? path : "(root)");
    va_list ap;
    va_start(ap, fmt);
    tg_buf_vprintf(&L->errs, fmt, ap);
    va_end(ap);
    L->n_errs++;
}

static yaml_node_t *node(loader *L, int id) {
    return yaml_document_get_node(L->doc, id);
}

static const char *kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE    ? "a mapping"
           : n->type == YAML_SEQUENCE_NODE ? "a list"
                                           : "a scalar";
}

/* A scalar as a C string, NULL (with an error) if it is not one. */
static const char *scalar(loader *L, const yaml_node_t *n, const char *path) {
    if (n->type != YAML_SCALAR_NODE) {
        errf(L, n, path, "expected a single value, got %s", kind(n));
        return NULL;
    }
    if (memchr(n->data.scalar.value, 0, n->data.scalar.length)) {
        errf(L, n, path, "NUL byte in value");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

/* Keys shown in messages: printable ASCII only, bounded. */
static void shown(const char *s, char *out, size_t cap) {
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 1 < cap; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[j] = 0;
}

static bool get_number(loader *L, const yaml_node_t *n, const char *path, double *out) {
    const char *s = scalar(L, n, path);
    if (!s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        errf(L, n, path, "expected a number, got '%.40s'", s);
        return false;
    }
    *out = v;
    return true;
}

static bool get_int(loader *L, const yaml_node_t *n, const char *path, long lo, long hi, int *out) {
    double v;
    if (!get_number(L, n, path, &v)) return false;
    if (v != floor(v) || v < (double)lo || v > (double)hi) {
        errf(L, n, path, "expected an integer in %ld..%ld", lo, hi);
        return false;
    }
    *out = (int)v;
    return true;
}

static int get_bool(loader *L, const yaml_node_t *n, const char *path) {
    const char *s = scalar(L, n, path);
    if (!s) return -1;
    if (!strcmp(s, "true") || !strcmp(s, "yes")) return 1;
    if (!strcmp(s, "false") || !strcmp(s, "no")) return 0;
    errf(L, n, path, "expected true or false");
    return -1;
}

/* Iterates a mapping with unique scalar keys; calls fn for each pair. */
typedef void (*pair_fn)(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v,
                        const char *path, void *arg);

static bool each_pair(loader *L, yaml_node_t *map, const char *path, pair_fn fn, void *arg) {
    if (map->type != YAML_MAPPING_NODE) {
        errf(L, map, path, "expected a mapping, got %s", kind(map));
        return false;
    }
    yaml_node_pair_t *b = map->data.mapping.pairs.start, *t = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = b; p < t && L->n_errs < MAX_ERRORS; p++) {
        yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
        if (!k || !v) continue;
        const char *key = scalar(L, k, path);
        if (!key) continue;
        bool dup = false;
        for (yaml_node_pair_t *q = b; q < p && !dup; q++) {
            yaml_node_t *qk = node(L, q->key);
            dup = qk && qk->type == YAML_SCALAR_NODE &&
                  qk->data.scalar.length == k->data.scalar.length &&
                  !memcmp(qk->data.scalar.value, k->data.scalar.value, k->data.scalar.length);
        }
        char sk[48], sub[256];
        shown(key, sk, sizeof sk);
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", sk);
        if (dup) {
            errf(L, k, sub, "duplicate key");
            continue;
        }
        fn(L, key, k, v, sub, arg);
    }
    return true;
}

/* ------------------------------------------------------------- score -- */

static void on_weight(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                      void *arg) {
    int id = rt_feature_by_name(key);
    if (id < 0) {
        errf(L, k, path, "unknown feature '%.40s'", key);
        return;
    }
    double x;
    if (get_number(L, v, path, &x)) {
        if (fabs(x) > 1000)
            errf(L, v, path, "weight out of range (-1000..1000)");
        else
            L->p->w.w[id] = x;
    }
}

static void on_score(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                     void *arg) {
    if (!strcmp(key, "bias")) {
        double x;
        if (get_number(L, v, path, &x)) {
            if (fabs(x) > 1000)
                errf(L, v, path, "bias out of range (-1000..1000)");
            else
                L->p->w.bias = x;
        }
    } else if (!strcmp(key, "weights")) {
        each_pair(L, v, path, on_weight, NULL);
    } else
        errf(L, k, path, "unknown key (expected bias, weights)");
}

/* --------------------------------------------------------- conditions -- */

typedef struct {
    rt_rule *r;
    int *head; /* the list being built */
    int *tail;
    int depth;
} cond_build;

static int new_cond(loader *L, cond_build *b, const yaml_node_t *at, const char *path) {
    if (b->r->n_conds >= RT_POLICY_MAX_CONDS) {
        errf(L, at, path, "too many conditions in one rule (at most %d)", RT_POLICY_MAX_CONDS);
        return -1;
    }
    int i = b->r->n_conds++;
    rt_cond *c = &b->r->conds[i];
    memset(c, 0, sizeof *c);
    c->child = c->next = -1;
    if (*b->tail >= 0)
        b->r->conds[*b->tail].next = i;
    else
        *b->head = i;
    *b->tail = i;
    return i;
}

typedef struct {
    cond_build *b;
    uint8_t kind;
    int16_t id;
    bool allow_bool;
} cmp_arg;

static void on_cmp(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                   void *arg) {
    cmp_arg *a = arg;
    int op = -1;
    for (int i = 0; i <= RT_OP_NE; i++)
        if (!strcmp(key, rt_op_name((rt_op)i))) op = i;
    if (op < 0) {
        errf(L, k, path, "unknown comparison (expected lt, lte, gt, gte, eq, ne)");
        return;
    }
    double x;
    if (!get_number(L, v, path, &x)) return;
    int i = new_cond(L, a->b, k, path);
    if (i < 0) return;
    rt_cond *c = &a->b->r->conds[i];
    c->kind = a->kind, c->id = a->id, c->op = (uint8_t)op, c->value = x;
}

/* cmp := {lt|lte|gt|gte|eq|ne: number...} | true | false (health flags) */
static void parse_cmp(loader *L, cond_build *b, yaml_node_t *v, const char *path, uint8_t kind_,
                      int16_t id, bool allow_bool) {
    if (v->type == YAML_SCALAR_NODE && allow_bool) {
        int t = get_bool(L, v, path);
        if (t < 0) return;
        int i = new_cond(L, b, v, path);
        if (i < 0) return;
        rt_cond *c = &b->r->conds[i];
        c->kind = kind_, c->id = id, c->op = RT_OP_EQ, c->value = t;
        return;
    }
    if (v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.start == v->data.mapping.pairs.top) {
        errf(L, v, path, "expected a comparison such as {gte: 0.5}%s",
             allow_bool ? " or true/false" : "");
        return;
    }
    cmp_arg a = {b, kind_, id, allow_bool};
    each_pair(L, v, path, on_cmp, &a);
}

static void on_feature_cond(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v,
                            const char *path, void *arg) {
    int id = rt_feature_by_name(key);
    if (id < 0) {
        errf(L, k, path, "unknown feature '%.40s'", key);
        return;
    }
    parse_cmp(L, arg, v, path, RT_C_FEATURE, (int16_t)id, false);
}

static void on_health_cond(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v,
                           const char *path, void *arg) {
    int id = rt_health_by_name(key);
    if (id < 0) {
        errf(L, k, path, "unknown health value '%.40s'", key);
        return;
    }
    parse_cmp(L, arg, v, path, RT_C_HEALTH, (int16_t)id, id == RT_H_AC_ONLINE);
}

static void parse_when(loader *L, cond_build *b, yaml_node_t *v, const char *path);

static uint32_t mode_bit(loader *L, yaml_node_t *n, const char *path) {
    const char *s = scalar(L, n, path);
    if (!s) return 0;
    int m = rt_pmode_by_name(s);
    if (m < 0) {
        errf(L, n, path, "unknown mode '%.40s' (expected online, degraded, offline)", s);
        return 0;
    }
    return 1u << m;
}

/* A list of when-maps under one node of kind ANY (each item an ALL node)
 * or ALL (items' conditions chained). */
static void parse_group(loader *L, cond_build *b, yaml_node_t *v, const char *path, bool any) {
    if (v->type != YAML_SEQUENCE_NODE ||
        v->data.sequence.items.start == v->data.sequence.items.top) {
        errf(L, v, path, "expected a non-empty list of conditions");
        return;
    }
    if (b->depth >= RT_POLICY_MAX_DEPTH) {
        errf(L, v, path, "conditions nested too deep (at most %d levels)", RT_POLICY_MAX_DEPTH);
        return;
    }
    int gi = new_cond(L, b, v, path);
    if (gi < 0) return;
    b->r->conds[gi].kind = any ? RT_C_ANY : RT_C_ALL;
    int head = -1, tail = -1;
    int n = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         it < v->data.sequence.items.top && L->n_errs < MAX_ERRORS; it++, n++) {
        yaml_node_t *item = node(L, *it);
        if (!item) continue;
        char sub[256];
        snprintf(sub, sizeof sub, "%s[%d]", path, n);
        if (any) {
            /* Each alternative is an ALL node holding the item's conditions. */
            cond_build cb = {b->r, &head, &tail, b->depth + 1};
            int ai = new_cond(L, &cb, item, sub);
            if (ai < 0) return;
            b->r->conds[ai].kind = RT_C_ALL;
            int ah = -1, at = -1;
            cond_build inner = {b->r, &ah, &at, b->depth + 1};
            parse_when(L, &inner, item, sub);
            b->r->conds[ai].child = ah;
        } else {
            cond_build cb = {b->r, &head, &tail, b->depth + 1};
            parse_when(L, &cb, item, sub);
        }
    }
    b->r->conds[gi].child = head;
}

static void on_when(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                    void *arg) {
    cond_build *b = arg;
    if (!strcmp(key, "score")) {
        parse_cmp(L, b, v, path, RT_C_SCORE, 0, false);
    } else if (!strcmp(key, "features")) {
        each_pair(L, v, path, on_feature_cond, b);
    } else if (!strcmp(key, "health")) {
        each_pair(L, v, path, on_health_cond, b);
    } else if (!strcmp(key, "mode")) {
        uint32_t mask = 0;
        if (v->type == YAML_SEQUENCE_NODE) {
            int n = 0;
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++, n++) {
                yaml_node_t *item = node(L, *it);
                char sub[256];
                snprintf(sub, sizeof sub, "%s[%d]", path, n);
                if (item) mask |= mode_bit(L, item, sub);
            }
        } else {
            mask = mode_bit(L, v, path);
        }
        if (!mask) {
            if (v->type == YAML_SEQUENCE_NODE) errf(L, v, path, "expected at least one mode");
            return;
        }
        int i = new_cond(L, b, v, path);
        if (i < 0) return;
        b->r->conds[i].kind = RT_C_MODE;
        b->r->conds[i].mode_mask = mask;
    } else if (!strcmp(key, "any") || !strcmp(key, "all")) {
        parse_group(L, b, v, path, key[1] == 'n');
    } else {
        errf(L, k, path, "unknown condition (expected score, features, health, mode, any, all)");
    }
}

static void parse_when(loader *L, cond_build *b, yaml_node_t *v, const char *path) {
    if (v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.start == v->data.mapping.pairs.top) {
        errf(L, v, path, "expected a mapping of conditions");
        return;
    }
    each_pair(L, v, path, on_when, b);
}

/* -------------------------------------------------------------- rules -- */

static bool parse_target(loader *L, yaml_node_t *n, const char *path, rt_policy_target *t) {
    const char *s = scalar(L, n, path);
    if (!s) return false;
    memset(t, 0, sizeof *t);
    if (!strcmp(s, "edge")) {
        t->route = RT_ROUTE_EDGE;
    } else if (!strcmp(s, "cloud")) {
        t->route = RT_ROUTE_CLOUD;
    } else if (!strncmp(s, "cloud:", 6) && s[6]) {
        for (const char *c = s + 6; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.')) {
                errf(L, n, path, "upstream names use letters, digits, '-', '_', '.'");
                return false;
            }
        if (strlen(s) >= sizeof t->name) {
            errf(L, n, path, "target name too long");
            return false;
        }
        t->route = RT_ROUTE_CLOUD;
    } else {
        errf(L, n, path, "unknown target '%.40s' (expected edge, cloud or cloud:<upstream>)", s);
        return false;
    }
    snprintf(t->name, sizeof t->name, "%s", s);
    return true;
}

typedef struct {
    rt_rule *r;
    bool has_target, has_name;
    yaml_node_t *cascade_node, *timeouts_node, *mid_node, *defer_node;
    char cascade_path[256], timeouts_path[256], defer_path[256];
} rule_build;

static void on_timeout(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                       void *arg) {
    rule_build *rb = arg;
    int ms;
    if (!get_int(L, v, path, 0, 3600000, &ms)) return;
    for (size_t i = 0; i < rb->r->n_targets; i++)
        if (!strcmp(rb->r->targets[i].name, key)) {
            rb->r->targets[i].timeout_ms = ms;
            return;
        }
    errf(L, k, path, "not a target or fallback of this rule");
}

static void on_cascade(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                       void *arg) {
    rt_cascade *c = arg;
    if (!strcmp(key, "tokens")) {
        get_int(L, v, path, 1, 256, &c->tokens);
    } else if (!strcmp(key, "min_mean_logprob")) {
        if (get_number(L, v, path, &c->min_mean_logprob)) {
            if (c->min_mean_logprob > 0 || c->min_mean_logprob < -100)
                errf(L, v, path, "expected a log-probability in -100..0");
            else
                c->has_logprob = true;
        }
    } else if (!strcmp(key, "max_mean_entropy")) {
        if (get_number(L, v, path, &c->max_mean_entropy)) {
            if (c->max_mean_entropy < 0 || c->max_mean_entropy > 100)
                errf(L, v, path, "expected an entropy in 0..100 (nats)");
            else
                c->has_entropy = true;
        }
    } else
        errf(L, k, path, "unknown key (expected tokens, min_mean_logprob, max_mean_entropy)");
}

/* Seconds (fractions allowed, so tests can wait briefly) -> ms in lo..hi. */
static void get_secs_ms(loader *L, const yaml_node_t *v, const char *path, double lo, double hi,
                        int *out_ms) {
    double s;
    if (!get_number(L, v, path, &s)) return;
    if (s < lo || s > hi) {
        errf(L, v, path, "expected seconds in %g..%g", lo, hi);
        return;
    }
    *out_ms = (int)(s * 1000.0 + 0.5);
}

static void on_defer(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                     void *arg) {
    rt_defer *d = arg;
    if (!strcmp(key, "max_wait_s"))
        get_secs_ms(L, v, path, 0.1, 86400, &d->max_wait_ms);
    else if (!strcmp(key, "keepalive_s"))
        get_secs_ms(L, v, path, 0.1, 300, &d->keepalive_ms);
    else
        errf(L, k, path, "unknown key (expected max_wait_s, keepalive_s)");
}

static void on_rule(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                    void *arg) {
    rule_build *rb = arg;
    rt_rule *r = rb->r;
    if (!strcmp(key, "name")) {
        const char *s = scalar(L, v, path);
        if (!s) return;
        size_t n = strlen(s);
        bool ok = n > 0 && n < sizeof r->name;
        for (size_t i = 0; ok && i < n; i++)
            ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                 (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.';
        if (!ok) {
            errf(L, v, path, "rule names are 1..63 of letters, digits, '-', '_', '.'");
            return;
        }
        snprintf(r->name, sizeof r->name, "%s", s);
        rb->has_name = true;
    } else if (!strcmp(key, "reason")) {
        const char *s = scalar(L, v, path);
        if (!s) return;
        size_t n = strlen(s);
        bool ok = n < sizeof r->note;
        for (size_t i = 0; ok && i < n; i++)
            ok = s[i] >= 0x20 && s[i] < 0x7f && s[i] != ';';
        if (!ok) {
            errf(L, v, path, "reason is printable ASCII without ';', at most %zu characters",
                 sizeof r->note - 1);
            return;
        }
        snprintf(r->note, sizeof r->note, "%s", s);
    } else if (!strcmp(key, "when")) {
        int tail = -1;
        cond_build b = {r, &r->head, &tail, 0};
        parse_when(L, &b, v, path);
    } else if (!strcmp(key, "target")) {
        parse_target(L, v, path, &r->targets[0]);
        rb->has_target = true; /* given, even if wrong: one error is enough */
    } else if (!strcmp(key, "fallbacks")) {
        if (v->type != YAML_SEQUENCE_NODE) {
            errf(L, v, path, "expected a list of targets");
            return;
        }
        int n = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++, n++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s[%d]", path, n);
            yaml_node_t *item = node(L, *it);
            if (!item) continue;
            if (1 + n >= RT_POLICY_MAX_TARGETS) {
                errf(L, item, sub, "at most %d fallbacks", RT_POLICY_MAX_TARGETS - 1);
                return;
            }
            rt_policy_target t;
            if (!parse_target(L, item, sub, &t)) continue;
            r->targets[1 + n] = t;
        }
        r->n_targets = 1 + (size_t)n; /* targets[0] filled (or not) by `target` */
    } else if (!strcmp(key, "timeouts_ms")) {
        rb->timeouts_node = v; /* after target/fallbacks are known */
        snprintf(rb->timeouts_path, sizeof rb->timeouts_path, "%s", path);
    } else if (!strcmp(key, "retry_budget")) {
        get_int(L, v, path, 0, 10, &r->retry_budget);
    } else if (!strcmp(key, "mid_stream")) {
        const char *s = scalar(L, v, path);
        if (!s) return;
        if (!strcmp(s, "continue"))
            r->mid_stream = RT_PMID_CONTINUE;
        else if (!strcmp(s, "error"))
            r->mid_stream = RT_PMID_ERROR;
        else
            errf(L, v, path, "expected continue or error");
    } else if (!strcmp(key, "cascade")) {
        rb->cascade_node = v;
        snprintf(rb->cascade_path, sizeof rb->cascade_path, "%s", path);
    } else if (!strcmp(key, "defer")) {
        rb->defer_node = v; /* checked against the targets once they are known */
        snprintf(rb->defer_path, sizeof rb->defer_path, "%s", path);
    } else if (!strcmp(key, "on_client_gone")) {
        const char *s = scalar(L, v, path);
        if (!s) return;
        if (!strcmp(s, "cancel"))
            r->on_client_gone = RT_PGONE_CANCEL;
        else if (!strcmp(s, "finish"))
            r->on_client_gone = RT_PGONE_FINISH;
        else
            errf(L, v, path, "expected cancel or finish");
    } else {
        errf(L, k, path,
             "unknown key (expected name, reason, when, target, fallbacks, timeouts_ms, "
             "retry_budget, mid_stream, cascade, defer, on_client_gone)");
    }
}

static void parse_rule(loader *L, yaml_node_t *v, const char *path, size_t idx) {
    rt_policy *p = L->p;
    rt_rule *r = &p->rules[p->n_rules++];
    memset(r, 0, sizeof *r);
    r->head = -1;
    r->n_targets = 1;
    rule_build rb = {.r = r};
    if (!each_pair(L, v, path, on_rule, &rb)) return;
    if (!rb.has_name) errf(L, v, path, "rule needs a name");
    if (!rb.has_target) {
        errf(L, v, path, "rule needs a target");
        return;
    }
    for (size_t i = 0; i < r->n_targets; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(r->targets[i].name, r->targets[j].name))
                errf(L, v, path, "target '%s' listed twice", r->targets[i].name);
    if (rb.timeouts_node) each_pair(L, rb.timeouts_node, rb.timeouts_path, on_timeout, &rb);
    if (rb.cascade_node) {
        rt_cascade *c = &r->cascade;
        memset(c, 0, sizeof *c);
        c->tokens = 16;
        if (each_pair(L, rb.cascade_node, rb.cascade_path, on_cascade, c)) {
            c->enabled = true;
            if (!c->has_logprob && !c->has_entropy)
                errf(L, rb.cascade_node, rb.cascade_path,
                     "cascade needs min_mean_logprob or max_mean_entropy");
            bool cloud_after = false;
            for (size_t i = 1; i < r->n_targets; i++)
                cloud_after |= r->targets[i].route == RT_ROUTE_CLOUD;
            if (r->targets[0].route != RT_ROUTE_EDGE || !cloud_after)
                errf(L, rb.cascade_node, rb.cascade_path,
                     "a cascade starts on the edge: target edge with a cloud fallback");
        }
    }
    if (rb.defer_node) {
        rt_defer *d = &r->defer;
        d->max_wait_ms = RT_DEFER_MAX_WAIT_MS;
        d->keepalive_ms = RT_DEFER_KEEPALIVE_MS;
        /* `defer: {}` takes the defaults; a mapping's errors are its own. */
        if (each_pair(L, rb.defer_node, rb.defer_path, on_defer, d)) d->enabled = true;
        /* Deferring means "only the cloud may answer this": an edge target
         * would answer it offline instead, and a cascade starts there. */
        bool edge = false;
        for (size_t i = 0; i < r->n_targets; i++)
            edge |= r->targets[i].route == RT_ROUTE_EDGE;
        if (edge || r->cascade.enabled)
            errf(L, rb.defer_node, rb.defer_path,
                 "defer is for cloud-only rules: no edge target or fallback, no cascade");
    }
    for (size_t i = 0; i + 1 < p->n_rules; i++)
        if (rb.has_name && !strcmp(p->rules[i].name, r->name))
            errf(L, v, path, "rule name '%s' used twice", r->name);
    (void)idx;
}

/* --------------------------------------------------------------- root -- */

static void on_root(loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, const char *path,
                    void *arg) {
    bool *seen_rules = arg;
    if (!strcmp(key, "version")) {
        int ver;
        if (get_int(L, v, path, 0, 1000, &ver) && ver != 1)
            errf(L, v, path, "unsupported version %d (this build reads version 1)", ver);
    } else if (!strcmp(key, "description")) {
        const char *s = scalar(L, v, path);
        if (s) shown(s, L->p->description, sizeof L->p->description);
    } else if (!strcmp(key, "score")) {
        each_pair(L, v, path, on_score, NULL);
    } else if (!strcmp(key, "rules")) {
        *seen_rules = true;
        if (v->type != YAML_SEQUENCE_NODE) {
            errf(L, v, path, "expected a list of rules");
            return;
        }
        size_t n = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             it < v->data.sequence.items.top && L->n_errs < MAX_ERRORS; it++, n++) {
            char sub[256];
            snprintf(sub, sizeof sub, "rules[%zu]", n);
            yaml_node_t *item = node(L, *it);
            if (!item) continue;
            if (L->p->n_rules >= RT_POLICY_MAX_RULES) {
                errf(L, item, sub, "too many rules (at most %d)", RT_POLICY_MAX_RULES);
                return;
            }
            parse_rule(L, item, sub, n);
        }
        if (n == 0) {
            errf(L, v, path, "a policy needs at least one rule");
            return;
        }
        const rt_rule *last = &L->p->rules[L->p->n_rules - 1];
        if (last->head >= 0)
            errf(L, node(L, *(v->data.sequence.items.top - 1)), path,
                 "the last rule must have no `when` (the default)");
    } else {
        errf(L, k, path, "unknown key (expected version, description, score, rules)");
    }
}

static void syntax_err(loader *L, const yaml_parser_t *ps) {
    if (L->n_errs) tg_buf_putc(&L->errs, '\n');
    tg_buf_printf(
        &L->errs, "%s:%lu:%lu: yaml: %s", L->name, (unsigned long)ps->problem_mark.line + 1,
        (unsigned long)ps->problem_mark.column + 1, ps->problem ? ps->problem : "syntax error");
    if (ps->context)
        tg_buf_printf(&L->errs, " (%s started at %lu:%lu)", ps->context,
                      (unsigned long)ps->context_mark.line + 1,
                      (unsigned long)ps->context_mark.column + 1);
    L->n_errs++;
}

static rt_policy *finish(loader *L, char *err, size_t errlen) {
    if (L->n_errs) {
        if (L->n_errs >= MAX_ERRORS) tg_buf_puts(&L->errs, "\n(more errors not shown)");
        if (err && errlen) snprintf(err, errlen, "%s", L->errs.data ? L->errs.data : "error");
        tg_buf_free(&L->errs);
        free(L->p);
        return NULL;
    }
    tg_buf_free(&L->errs);
    if (err && errlen) err[0] = 0;
    return L->p;
}

rt_policy *rt_policy_load_mem(const char *data, size_t len, const char *name, char *err,
                              size_t errlen) {
    loader L = {.name = name ? name : "<policy>", .errs = TG_BUF_INIT};
    L.p = calloc(1, sizeof *L.p);
    if (!L.p) abort();
    snprintf(L.p->source, sizeof L.p->source, "%s", L.name);
    if (len > RT_POLICY_MAX_BYTES) {
        errf(&L, NULL, "(root)", "file larger than %u bytes", RT_POLICY_MAX_BYTES);
        return finish(&L, err, errlen);
    }
    yaml_parser_t ps;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&ps)) abort();
    yaml_parser_set_input_string(&ps, (const unsigned char *)data, len);
    if (!yaml_parser_load(&ps, &doc)) {
        syntax_err(&L, &ps);
        yaml_parser_delete(&ps);
        return finish(&L, err, errlen);
    }
    L.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    bool seen_rules = false;
    if (!root) {
        errf(&L, NULL, "(root)", "empty policy");
    } else if (root->type != YAML_MAPPING_NODE) {
        errf(&L, root, "(root)", "expected a mapping, got %s", kind(root));
    } else {
        each_pair(&L, root, "", on_root, &seen_rules);
        if (!seen_rules && !L.n_errs) errf(&L, root, "rules", "missing (a policy needs rules)");
        yaml_document_t doc2;
        if (!L.n_errs) {
            if (!yaml_parser_load(&ps, &doc2)) {
                syntax_err(&L, &ps);
            } else {
                yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
                if (r2) errf(&L, r2, "(root)", "more than one YAML document");
                yaml_document_delete(&doc2);
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&ps);
    return finish(&L, err, errlen);
}

rt_policy *rt_policy_load_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    char *buf = malloc(RT_POLICY_MAX_BYTES + 1);
    if (!buf) abort();
    size_t n = fread(buf, 1, RT_POLICY_MAX_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        return NULL;
    }
    rt_policy *p = rt_policy_load_mem(buf, n, path, err, errlen);
    free(buf);
    return p;
}
