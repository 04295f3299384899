/* sampler.c: next-token sampling.
 *
 * Order: repetition penalty (llama.cpp style: over the distinct tokens of
 * the last repeat_last_n history entries, positive logits are divided by the
 * penalty and negative ones multiplied; applied in place, also before greedy
 * picking) -> OpenAI frequency/presence penalties (over generated tokens
 * only, i.e. history past n_prompt) -> logit bias (last, so a -100/+100 bias
 * bans/forces whatever the penalties did) -> greedy argmax when temperature
 * <= 0 -> top-k -> temperature -> min-p (kept: p >= min_p * p_max, done in
 * logit space so nothing has to be sorted first) -> softmax -> top-p
 * (smallest prefix of the sorted distribution reaching top_p) -> a draw from
 * a per-sampler xoshiro256** stream seeded through splitmix64 (same seed,
 * same logits -> same tokens). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/lfm.h"

struct lfm_sampler {
    lfm_sampler_params p;
    int n_vocab;
    uint64_t rng[4];
    uint32_t *stamp; /* per token: call number that last penalized it */
    uint32_t call;
    int32_t *idx;      /* candidate ids */
    float *val;        /* candidate logits, then probabilities */
    uint32_t *cnt;     /* per token: generated count (zero between calls) */
    size_t n_prompt;   /* leading history entries not counted by freq/presence */
    int32_t *bias_tok; /* own copies of p.bias_tokens / p.bias_values */
    float *bias_val;
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double uniform01(uint64_t s[4]) {
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

void lfm_sampler_defaults(lfm_sampler_params *p) {
    if (!p) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)p;
    p->temperature = 0.3f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.15f;
    p->repeat_penalty = 1.05f;
    p->repeat_last_n = 64;
    p->seed = splitmix64(&x);
    p->frequency_penalty = 0.0f;
    p->presence_penalty = 0.0f;
    p->bias_tokens = NULL;
    p->bias_values = NULL;
    p->n_bias = 0;
}

void lfm_sampler_defaults_for(const lfm_model *m, lfm_sampler_params *p) {
    lfm_sampler_defaults(p);
    if (!p || !m || !lfm_model_is_lfm25(m)) return;
    /* LFM2.5-1.2B-Instruct model card: temperature 0.1, top_k 50, top_p 0.1,
     * repetition penalty 1.05 (no min_p). */
    p->temperature = 0.1f;
    p->top_k = 50;
    p->top_p = 0.1f;
    p->min_p = 0.0f;
    p->repeat_penalty = 1.05f;
}

bool lfm_sampler_params_valid(const lfm_sampler_params *p, int n_vocab) {
    if (!p || n_vocab <= 0) return false;
    if (p->n_bias && (!p->bias_tokens || !p->bias_values)) return false;
    for (size_t i = 0; i < p->n_bias; i++)
        if (p->bias_tokens[i] < 0 || p->bias_tokens[i] >= n_vocab || !isfinite(p->bias_values[i]))
            return false;
    return isfinite(p->frequency_penalty) && isfinite(p->presence_penalty);
}

lfm_sampler *lfm_sampler_new(const lfm_sampler_params *p, int n_vocab) {
    if (!lfm_sampler_params_valid(p, n_vocab)) return NULL;
    lfm_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->stamp = calloc((size_t)n_vocab, sizeof *s->stamp);
    s->idx = malloc((size_t)n_vocab * sizeof *s->idx);
    s->val = malloc((size_t)n_vocab * sizeof *s->val);
    s->cnt = calloc((size_t)n_vocab, sizeof *s->cnt);
    if (p->n_bias) {
        s->bias_tok = malloc(p->n_bias * sizeof *s->bias_tok);
        s->bias_val = malloc(p->n_bias * sizeof *s->bias_val);
    }
    if (!s->stamp || !s->idx || !s->val || !s->cnt ||
        (p->n_bias && (!s->bias_tok || !s->bias_val))) {
        lfm_sampler_free(s);
        return NULL;
    }
    if (p->n_bias) {
        memcpy(s->bias_tok, p->bias_tokens, p->n_bias * sizeof *s->bias_tok);
        memcpy(s->bias_val, p->bias_values, p->n_bias * sizeof *s->bias_val);
    }
    /* The caller's arrays may go away: only the copies are used from here. */
    s->p.bias_tokens = s->bias_tok;
    s->p.bias_values = s->bias_val;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    return s;
}

void lfm_sampler_free(lfm_sampler *s) {
    if (!s) return;
    free(s->stamp);
    free(s->idx);
    free(s->val);
    free(s->cnt);
    free(s->bias_tok);
    free(s->bias_val);
    free(s);
}

void lfm_sampler_set_prompt_len(lfm_sampler *s, size_t n_prompt) {
    if (s) s->n_prompt = n_prompt;
}

static void apply_penalty(lfm_sampler *s, float *logits, const int32_t *hist, size_t n_hist) {
    float pen = s->p.repeat_penalty;
    if (pen == 1.0f || !(pen > 0.0f) || !hist || n_hist == 0 || s->p.repeat_last_n == 0) return;
    size_t win = s->p.repeat_last_n < 0 ? n_hist : (size_t)s->p.repeat_last_n;
    if (win > n_hist) win = n_hist;
    if (++s->call == 0) { /* stamp wrap-around: start over */
        memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp);
        s->call = 1;
    }
    for (size_t i = n_hist - win; i < n_hist; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= s->n_vocab || s->stamp[t] == s->call) continue;
        s->stamp[t] = s->call;
        logits[t] = logits[t] > 0.0f ? logits[t] / pen : logits[t] * pen;
    }
}

/* OpenAI frequency/presence penalties over history[n_prompt..n_hist). Two
 * passes: count, then apply once per distinct token while zeroing its
 * count, so cnt is all zero again between calls. */
static void apply_openai_penalties(lfm_sampler *s, float *logits, const int32_t *hist,
                                   size_t n_hist) {
    float fp = s->p.frequency_penalty, pp = s->p.presence_penalty;
    if ((fp == 0.0f && pp == 0.0f) || !hist || n_hist <= s->n_prompt) return;
    for (size_t i = s->n_prompt; i < n_hist; i++) {
        int32_t t = hist[i];
        if (t >= 0 && t < s->n_vocab && s->cnt[t] < UINT32_MAX) s->cnt[t]++;
    }
    for (size_t i = s->n_prompt; i < n_hist; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= s->n_vocab || s->cnt[t] == 0) continue;
        logits[t] -= fp * (float)s->cnt[t] + pp;
        s->cnt[t] = 0;
    }
}

static void apply_bias(const lfm_sampler *s, float *logits) {
    for (size_t i = 0; i < s->p.n_bias; i++)
        logits[s->bias_tok[i]] += s->bias_val[i];
}

/* Total order for candidates: higher logit first, lower id on ties. */
static bool before(float va, int32_t ia, float vb, int32_t ib) {
    return va > vb || (va == vb && ia < ib);
}

static void swap(lfm_sampler *s, size_t a, size_t b) {
    int32_t ti = s->idx[a];
    float tv = s->val[a];
    s->idx[a] = s->idx[b];
    s->val[a] = s->val[b];
    s->idx[b] = ti;
    s->val[b] = tv;
}

/* Moves the k best candidates of [0, n) to the front (any order). */
static void select_top(lfm_sampler *s, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the k-th boundary lies in [lo, hi) */
    uint64_t piv_state = 0x1234567ULL;
    while (hi - lo > 1) {
        size_t pi = lo + (size_t)(splitmix64(&piv_state) % (hi - lo));
        swap(s, pi, hi - 1);
        float pv = s->val[hi - 1];
        int32_t pid = s->idx[hi - 1];
        size_t st = lo;
        for (size_t i = lo; i < hi - 1; i++)
            if (before(s->val[i], s->idx[i], pv, pid)) swap(s, i, st++);
        swap(s, st, hi - 1);
        if (st == k || st + 1 == k) return;
        if (st > k)
            hi = st;
        else
            lo = st + 1;
    }
}

/* Sorts [0, n) best first (insertion sort for small n, else a heap sort). */
static void sort_desc(lfm_sampler *s, size_t n) {
    if (n <= 32) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && before(s->val[j], s->idx[j], s->val[j - 1], s->idx[j - 1]);
                 j--)
                swap(s, j, j - 1);
        return;
    }
    /* Heap sort with the "worst" candidate on top, so the array ends best first. */
    for (size_t start = n / 2; start-- > 0;) {
        size_t r = start;
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= n) break;
            if (c + 1 < n && before(s->val[c], s->idx[c], s->val[c + 1], s->idx[c + 1])) c++;
            if (!before(s->val[r], s->idx[r], s->val[c], s->idx[c])) break;
            swap(s, r, c);
            r = c;
        }
    }
    for (size_t end = n; end-- > 1;) {
        swap(s, 0, end);
        size_t r = 0;
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= end) break;
            if (c + 1 < end && before(s->val[c], s->idx[c], s->val[c + 1], s->idx[c + 1])) c++;
            if (!before(s->val[r], s->idx[r], s->val[c], s->idx[c])) break;
            swap(s, r, c);
            r = c;
        }
    }
}

int32_t lfm_sampler_sample(lfm_sampler *s, float *logits, const int32_t *history,
                           size_t n_history) {
    if (!s || !logits) return -1;
    apply_penalty(s, logits, history, n_history);
    apply_openai_penalties(s, logits, history, n_history);
    apply_bias(s, logits);
    int nv = s->n_vocab;
    int32_t best = -1;
    for (int32_t i = 0; i < nv; i++)
        if (!isnan(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    if (best < 0) return 0; /* all NaN: nothing sensible to pick */
    if (!(s->p.temperature > 0.0f) || logits[best] == INFINITY) return best;

    size_t n = 0;
    for (int32_t i = 0; i < nv; i++) {
        if (isnan(logits[i]) || logits[i] == -INFINITY) continue;
        s->idx[n] = i;
        s->val[n] = logits[i];
        n++;
    }
    if (s->p.top_k > 0 && (size_t)s->p.top_k < n) {
        select_top(s, n, (size_t)s->p.top_k);
        n = (size_t)s->p.top_k;
    }
    float inv_t = 1.0f / s->p.temperature, maxv = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        s->val[i] *= inv_t;
        if (s->val[i] > maxv) maxv = s->val[i];
    }
    if (s->p.min_p > 0.0f) { /* p_i >= min_p * p_max  <=>  l_i >= l_max + ln(min_p) */
        float thr = maxv + logf(s->p.min_p);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (s->val[i] >= thr || s->val[i] == maxv) {
                s->idx[m] = s->idx[i];
                s->val[m] = s->val[i];
                m++;
            }
        n = m;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float e = expf(s->val[i] - maxv);
        s->val[i] = e;
        sum += e;
    }
    if (s->p.top_p < 1.0f) { /* top_p <= 0 keeps just the best token */
        /* Only the head of the distribution matters: select the best k
         * (linear time), sort those, and widen k until they reach top_p. */
        double target = (double)s->p.top_p * sum;
        for (size_t k = 64;; k *= 4) {
            if (k >= n) {
                k = n;
                sort_desc(s, n);
            } else {
                select_top(s, n, k);
                sort_desc(s, k);
            }
            double cum = 0.0;
            size_t m = 0;
            while (m < k) {
                cum += s->val[m++];
                if (cum >= target) break;
            }
            if (cum >= target || k == n) {
                n = m;
                sum = cum;
                break;
            }
        }
    }
    double r = uniform01(s->rng) * sum, acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += s->val[i];
        if (r < acc) return s->idx[i];
    }
    return n ? s->idx[n - 1] : best;
}
