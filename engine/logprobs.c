/* logprobs: log-probabilities of one step's next-token distribution.
 *
 * What they are the log of: softmax over the RAW logits lfm_eval produced
 * for that step (temperature 1), i.e. before the repetition/frequency/
 * presence penalties, logit_bias, a decoding constraint's mask and any
 * truncation (top-k/top-p/min-p). That is the model's own confidence, which
 * is what a routing cascade wants, and it is reproducible from
 * `tidegate engine logits` alone (vLLM's default "raw logprobs" mode makes
 * the same choice). The sampled token may therefore have a logprob below
 * the top ones when penalties, a bias or a constraint steered the draw.
 *
 * Cost: one pass for the max, one for the sum of exponentials (in double),
 * and one keeping the k best in a small sorted array (k <= 20). */
#include <math.h>

#include "engine/lfm.h"

/* Total order: higher logit first, lower id on ties (same as the sampler). */
static int better(float va, int32_t ia, float vb, int32_t ib) {
    return va > vb || (va == vb && ia < ib);
}

int lfm_logprobs(const float *logits, int n_vocab, int32_t token, int k, float *token_lp,
                 int32_t *top_ids, float *top_lps) {
    if (!logits || n_vocab <= 0 || token < 0 || token >= n_vocab || k < 0 ||
        k > LFM_MAX_TOP_LOGPROBS || (k > 0 && (!top_ids || !top_lps)))
        return LFM_EINVAL;
    float mx = -INFINITY;
    for (int i = 0; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    if (!isfinite(mx)) { /* all -inf or NaN: nothing is a distribution */
        if (token_lp) *token_lp = -INFINITY;
        for (int i = 0; i < k; i++) {
            top_ids[i] = i < n_vocab ? i : 0;
            top_lps[i] = -INFINITY;
        }
        return k < n_vocab ? k : n_vocab;
    }
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++)
        if (logits[i] == logits[i]) sum += exp((double)logits[i] - (double)mx);
    double lse = (double)mx + log(sum);
    if (token_lp) *token_lp = (float)((double)logits[token] - lse);
    if (k > n_vocab) k = n_vocab;
    int n = 0; /* top_ids/top_lps[0..n) sorted best first, holding raw logits */
    for (int i = 0; i < n_vocab && k > 0; i++) {
        float v = logits[i];
        if (v != v) continue;
        if (n == k && !better(v, i, top_lps[n - 1], top_ids[n - 1])) continue;
        int p = n < k ? n++ : k - 1;
        while (p > 0 && better(v, i, top_lps[p - 1], top_ids[p - 1])) {
            top_lps[p] = top_lps[p - 1];
            top_ids[p] = top_ids[p - 1];
            p--;
        }
        top_lps[p] = v;
        top_ids[p] = i;
    }
    for (int i = 0; i < n; i++)
        top_lps[i] = (float)((double)top_lps[i] - lse);
    return n;
}
