/* policy: evaluation, reasons and the YAML writer. The loader is in
 * policy_yaml.c. See policy.h. */
#include "router/policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/policy_impl.h"

static const char *const k_modes[RT_PMODE_COUNT] = {"online", "degraded", "offline"};
static const char *const k_ops[] = {"lt", "lte", "gt", "gte", "eq", "ne"};
static const char *const k_opsym[] = {"<", "<=", ">", ">=", "=", "!="};

const char *rt_pmode_name(rt_pmode m) {
    return (int)m >= 0 && m < RT_PMODE_COUNT ? k_modes[m] : "unknown";
}

int rt_pmode_by_name(const char *s) {
    for (int i = 0; s && i < RT_PMODE_COUNT; i++)
        if (!strcmp(k_modes[i], s)) return i;
    return -1;
}

const char *rt_route_name(rt_route r) {
    return r == RT_ROUTE_CLOUD ? "cloud" : "edge";
}
const char *rt_op_name(rt_op op) {
    return op <= RT_OP_NE ? k_ops[op] : "?";
}

void rt_policy_free(rt_policy *p) {
    free(p);
}
const char *rt_policy_source(const rt_policy *p) {
    return p->source;
}
const rt_score_weights *rt_policy_weights(const rt_policy *p) {
    return &p->w;
}
size_t rt_policy_rule_count(const rt_policy *p) {
    return p->n_rules;
}
const char *rt_policy_rule_name(const rt_policy *p, size_t i) {
    return i < p->n_rules ? p->rules[i].name : NULL;
}

rt_policy *rt_policy_builtin_edge(void) {
    rt_policy *p = calloc(1, sizeof *p);
    if (!p) abort();
    snprintf(p->source, sizeof p->source, "(built-in)");
    snprintf(p->description, sizeof p->description, "no policy configured: the edge answers");
    rt_score_weights_default(&p->w);
    rt_rule *r = &p->rules[p->n_rules++];
    snprintf(r->name, sizeof r->name, "default");
    r->head = -1;
    r->targets[0] = (rt_policy_target){RT_ROUTE_EDGE, "edge", 0};
    r->n_targets = 1;
    return p;
}

/* ----------------------------------------------------------- evaluate -- */

static bool cmp(double a, rt_op op, double b) {
    switch (op) {
    case RT_OP_LT: return a < b;
    case RT_OP_LTE: return a <= b;
    case RT_OP_GT: return a > b;
    case RT_OP_GTE: return a >= b;
    case RT_OP_EQ: return a == b;
    case RT_OP_NE: return a != b;
    }
    return false;
}

typedef struct {
    double score;
    const rt_features *f;
    const rt_health *h;
    rt_pmode mode;
} eval_ctx;

static bool eval_list(const rt_rule *r, int i, const eval_ctx *c);

static bool eval_one(const rt_rule *r, const rt_cond *k, const eval_ctx *c) {
    switch ((rt_cond_kind)k->kind) {
    case RT_C_SCORE: return cmp(c->score, k->op, k->value);
    case RT_C_FEATURE: return cmp(c->f->raw[k->id], k->op, k->value);
    case RT_C_HEALTH: return c->h && c->h->known[k->id] && cmp(c->h->v[k->id], k->op, k->value);
    case RT_C_MODE: return (k->mode_mask >> c->mode) & 1u;
    case RT_C_ALL: return eval_list(r, k->child, c);
    case RT_C_ANY:
        for (int i = k->child; i >= 0; i = r->conds[i].next)
            if (eval_one(r, &r->conds[i], c)) return true;
        return false;
    }
    return false;
}

static bool eval_list(const rt_rule *r, int i, const eval_ctx *c) {
    for (; i >= 0; i = r->conds[i].next)
        if (!eval_one(r, &r->conds[i], c)) return false;
    return true;
}

void rt_policy_decide(const rt_policy *p, const rt_features *f, const rt_health *h, rt_pmode mode,
                      rt_decision *out) {
    memset(out, 0, sizeof *out);
    out->score = rt_score_eval(&p->w, f, out->contrib);
    eval_ctx c = {out->score, f, h, mode};
    const rt_rule *hit = NULL;
    size_t i;
    for (i = 0; i < p->n_rules && !hit; i++)
        if (eval_list(&p->rules[i], p->rules[i].head, &c)) hit = &p->rules[i];
    if (!hit) { /* the loader requires a default rule; be safe anyway */
        snprintf(out->rule, sizeof out->rule, "none");
        out->rule_index = -1;
        out->targets[0] = (rt_policy_target){RT_ROUTE_EDGE, "edge", 0};
        out->n_targets = 1;
        return;
    }
    snprintf(out->rule, sizeof out->rule, "%s", hit->name);
    out->rule_index = (int)(i - 1);
    memcpy(out->targets, hit->targets, sizeof out->targets);
    out->n_targets = hit->n_targets;
    out->retry_budget = hit->retry_budget;
    out->mid_stream = hit->mid_stream;
    out->cascade = hit->cascade;
    out->defer = hit->defer;
    out->on_client_gone = hit->on_client_gone;
    snprintf(out->note, sizeof out->note, "%s", hit->note);
}

void rt_decision_reason(const rt_decision *d, char *out, size_t cap) {
    int n = snprintf(out, cap, "rule=%s; score=%.3f -> %s", d->rule, d->score,
                     d->n_targets ? d->targets[0].name : "none");
    if (n < 0 || (size_t)n >= cap) return;
    if (d->cascade.enabled) {
        int m = snprintf(out + n, cap - (size_t)n, " (cascade)");
        if (m > 0) n += m;
    }
    if ((size_t)n >= cap) return;
    if (d->defer.enabled) {
        int m = snprintf(out + n, cap - (size_t)n, " (defer)");
        if (m > 0) n += m;
    }
    if ((size_t)n >= cap) return;
    if (d->note[0]) {
        snprintf(out + n, cap - (size_t)n, "; %s", d->note);
        return;
    }
    /* Otherwise name the strongest pull: the biggest contribution. */
    int best = -1;
    for (int i = 0; i < RT_F_COUNT; i++)
        if (d->contrib[i] != 0 && (best < 0 || fabs(d->contrib[i]) > fabs(d->contrib[best])))
            best = i;
    if (best >= 0)
        snprintf(out + n, cap - (size_t)n, "; top %s %+.2f", rt_feature_name(best),
                 d->contrib[best]);
}

/* -------------------------------------------------------------- write -- */

static void put_conds(tg_buf *o, const rt_rule *r, int i, int indent);

static void put_cond(tg_buf *o, const rt_rule *r, const rt_cond *k, int indent) {
    switch ((rt_cond_kind)k->kind) {
    case RT_C_SCORE:
        tg_buf_printf(o, "%*sscore: {%s: %.6g}\n", indent, "", k_ops[k->op], k->value);
        break;
    case RT_C_FEATURE:
        tg_buf_printf(o, "%*sfeatures: {%s: {%s: %.6g}}\n", indent, "", rt_feature_name(k->id),
                      k_ops[k->op], k->value);
        break;
    case RT_C_HEALTH:
        tg_buf_printf(o, "%*shealth: {%s: {%s: %.6g}}\n", indent, "", rt_health_name(k->id),
                      k_ops[k->op], k->value);
        break;
    case RT_C_MODE: {
        tg_buf_printf(o, "%*smode: [", indent, "");
        int first = 1;
        for (int m = 0; m < RT_PMODE_COUNT; m++)
            if ((k->mode_mask >> m) & 1u) {
                tg_buf_printf(o, "%s%s", first ? "" : ", ", k_modes[m]);
                first = 0;
            }
        tg_buf_puts(o, "]\n");
        break;
    }
    case RT_C_ANY:
        tg_buf_printf(o, "%*sany:\n", indent, "");
        for (int j = k->child; j >= 0; j = r->conds[j].next) {
            tg_buf_printf(o, "%*s- all:\n", indent + 2, "");
            put_conds(o, r, r->conds[j].child, indent + 6);
        }
        break;
    case RT_C_ALL:
        tg_buf_printf(o, "%*sall:\n", indent, "");
        put_conds(o, r, k->child, indent + 2);
        break;
    }
}

static void put_conds(tg_buf *o, const rt_rule *r, int i, int indent) {
    /* Each condition under `all:` as its own list item keeps repeated keys
     * (score: gte and score: lt) legal YAML. */
    for (; i >= 0; i = r->conds[i].next) {
        if (r->conds[i].kind == RT_C_ALL) { /* an AND inside an AND: same list */
            put_conds(o, r, r->conds[i].child, indent);
            continue;
        }
        tg_buf_printf(o, "%*s- ", indent, "");
        tg_buf t = TG_BUF_INIT;
        put_cond(&t, r, &r->conds[i], indent + 2);
        /* Drop the first line's indentation: it follows "- ". */
        const char *s = t.data ? t.data : "";
        while (*s == ' ')
            s++;
        tg_buf_puts(o, s);
        tg_buf_free(&t);
    }
}

void rt_policy_write_yaml(const rt_policy *base, const rt_score_weights *w, const char *comment,
                          tg_buf *o) {
    if (comment) {
        for (const char *s = comment; *s;) {
            const char *e = strchr(s, '\n');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            tg_buf_printf(o, "# %.*s\n", (int)n, s);
            s += n + (e ? 1 : 0);
        }
    }
    tg_buf_puts(o, "version: 1\n");
    if (base && base->description[0]) {
        tg_buf_puts(o, "description: ");
        tg_buf_json_str(o, base->description, strlen(base->description));
        tg_buf_putc(o, '\n');
    }
    tg_buf_printf(o, "score:\n  bias: %.4f\n  weights:\n", w->bias);
    for (int i = 0; i < RT_F_COUNT; i++)
        tg_buf_printf(o, "    %s: %.4f\n", rt_feature_name(i), w->w[i]);
    if (!base) return;
    tg_buf_puts(o, "rules:\n");
    for (size_t i = 0; i < base->n_rules; i++) {
        const rt_rule *r = &base->rules[i];
        tg_buf_printf(o, "  - name: %s\n", r->name);
        if (r->note[0]) {
            tg_buf_puts(o, "    reason: ");
            tg_buf_json_str(o, r->note, strlen(r->note));
            tg_buf_putc(o, '\n');
        }
        if (r->head >= 0) {
            tg_buf_puts(o, "    when:\n      all:\n");
            put_conds(o, r, r->head, 8);
        }
        tg_buf_printf(o, "    target: %s\n", r->targets[0].name);
        if (r->n_targets > 1) {
            tg_buf_puts(o, "    fallbacks: [");
            for (size_t t = 1; t < r->n_targets; t++)
                tg_buf_printf(o, "%s%s", t > 1 ? ", " : "", r->targets[t].name);
            tg_buf_puts(o, "]\n");
        }
        int any_to = 0;
        for (size_t t = 0; t < r->n_targets; t++)
            any_to |= r->targets[t].timeout_ms != 0;
        if (any_to) {
            tg_buf_puts(o, "    timeouts_ms: {");
            int first = 1;
            for (size_t t = 0; t < r->n_targets; t++) {
                if (!r->targets[t].timeout_ms) continue;
                tg_buf_printf(o, "%s%s: %d", first ? "" : ", ", r->targets[t].name,
                              r->targets[t].timeout_ms);
                first = 0;
            }
            tg_buf_puts(o, "}\n");
        }
        if (r->retry_budget) tg_buf_printf(o, "    retry_budget: %d\n", r->retry_budget);
        if (r->n_targets > 1)
            tg_buf_printf(o, "    mid_stream: %s\n",
                          r->mid_stream == RT_PMID_ERROR ? "error" : "continue");
        if (r->cascade.enabled) {
            tg_buf_printf(o, "    cascade:\n      tokens: %d\n", r->cascade.tokens);
            if (r->cascade.has_logprob)
                tg_buf_printf(o, "      min_mean_logprob: %.6g\n", r->cascade.min_mean_logprob);
            if (r->cascade.has_entropy)
                tg_buf_printf(o, "      max_mean_entropy: %.6g\n", r->cascade.max_mean_entropy);
        }
        if (r->defer.enabled)
            tg_buf_printf(o, "    defer: {max_wait_s: %.6g, keepalive_s: %.6g}\n",
                          r->defer.max_wait_ms / 1000.0, r->defer.keepalive_ms / 1000.0);
        if (r->on_client_gone != RT_PGONE_AUTO)
            tg_buf_printf(o, "    on_client_gone: %s\n",
                          r->on_client_gone == RT_PGONE_CANCEL ? "cancel" : "finish");
    }
}

/* Unused symbol guard for the op symbol table (kept for explain output). */
const char *rt_op_symbol(rt_op op);
const char *rt_op_symbol(rt_op op) {
    return op <= RT_OP_NE ? k_opsym[op] : "?";
}
