/* cascade: mean logprob / entropy over the first N tokens. See cascade.h. */
#include "router/cascade.h"

#include <math.h>

void rt_cascade_add(rt_cascade_acc *a, float logprob, const float *top_lps, int n_top) {
    a->n++;
    a->sum_lp += isfinite(logprob) ? logprob : -100.0;
    if (n_top <= 0 || !top_lps) return;
    double h = 0, mass = 0;
    for (int i = 0; i < n_top; i++) {
        if (!isfinite(top_lps[i])) continue;
        double p = exp(top_lps[i]);
        mass += p;
        h -= p * top_lps[i];
    }
    double rest = 1.0 - mass;
    if (rest > 1e-12) h -= rest * log(rest);
    a->sum_ent += h;
    a->n_ent++;
}

double rt_cascade_mean_logprob(const rt_cascade_acc *a) {
    return a->n ? a->sum_lp / a->n : 0.0;
}

double rt_cascade_mean_entropy(const rt_cascade_acc *a) {
    return a->n_ent ? a->sum_ent / a->n_ent : 0.0;
}

rt_cascade_verdict rt_cascade_judge(const rt_cascade *c, const rt_cascade_acc *a, bool finished) {
    if (!c->enabled) return RT_CASCADE_KEEP;
    if (a->n < c->tokens && !finished) return RT_CASCADE_PENDING;
    if (a->n == 0) return RT_CASCADE_KEEP;
    if (c->has_logprob && rt_cascade_mean_logprob(a) < c->min_mean_logprob)
        return RT_CASCADE_ESCALATE;
    if (c->has_entropy && a->n_ent && rt_cascade_mean_entropy(a) > c->max_mean_entropy)
        return RT_CASCADE_ESCALATE;
    return RT_CASCADE_KEEP;
}
