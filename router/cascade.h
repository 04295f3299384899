/* cascade: the confidence judgement of a cascade rule (after FrugalGPT):
 * the edge answers first; over its first N tokens we accumulate the sampled
 * token's log-probability and the entropy of each step's distribution, and
 * escalate to the cloud when the mean log-probability is below the rule's
 * min_mean_logprob or the mean entropy above its max_mean_entropy.
 *
 * Entropy comes from the engine's top-k alternatives (LFM_EV_TOKEN carries
 * up to 20): -sum p log p over them, plus the remaining probability mass
 * as one bucket. That is a lower bound of the true entropy, tight when the
 * top 20 hold most of the mass (confident steps), loose on flat ones, which
 * are flagged anyway. With no alternatives only the log-probability counts.
 * Pure arithmetic; no allocation. */
#ifndef RT_CASCADE_H
#define RT_CASCADE_H

#include <stdbool.h>

#include "router/policy.h"

typedef struct {
    int n;          /* tokens judged */
    double sum_lp;  /* sum of sampled-token log-probabilities */
    double sum_ent; /* sum of per-step entropies (nats) */
    int n_ent;      /* steps that had alternatives */
} rt_cascade_acc;

typedef enum {
    RT_CASCADE_PENDING = 0, /* fewer than N tokens and not finished */
    RT_CASCADE_KEEP,        /* confident: the edge's answer stands */
    RT_CASCADE_ESCALATE,    /* unsure: hand the request to the cloud */
} rt_cascade_verdict;

/* Adds one step: the sampled token's logprob and the top alternatives'
 * logprobs (n_top may be 0). */
void rt_cascade_add(rt_cascade_acc *a, float logprob, const float *top_lps, int n_top);

/* The verdict after the tokens so far; `finished` = the edge's answer ended
 * before N tokens (judged on what there is; an empty answer is kept). */
rt_cascade_verdict rt_cascade_judge(const rt_cascade *c, const rt_cascade_acc *a, bool finished);

double rt_cascade_mean_logprob(const rt_cascade_acc *a);
double rt_cascade_mean_entropy(const rt_cascade_acc *a); /* 0 when no alternatives */

#endif
