/* score: the request's complexity score, explainable term by term.
 *
 * rt_features_extract() reads a request once (one pass over its text, no
 * engine call, no allocation) and fills a fixed vector of named features:
 * each has a raw value (a count, bytes, tokens: what policy conditions
 * compare against) and a normalized value x (roughly 0..1, log-scaled where
 * the raw value is a count). rt_score_eval() maps x through a logistic model
 *
 *     score = 1 / (1 + exp(-(bias + sum_i w_i * x_i)))
 *
 * and reports each term w_i * x_i, so every decision can say which features
 * pushed it toward the cloud (positive) or the edge (negative). Weights live
 * in the routing policy (policies/NAME.yaml, fitted by `tidegate policy
 * calibrate`); rt_score_weights_default() holds the fit shipped in
 * policies/hybrid.yaml.
 *
 * Text markers come from a fixed keyword table (code, math, reasoning,
 * constraints, build/plan verbs, simple-task verbs, greetings, explicit
 * hints) in a few languages; words are matched whole, ASCII case folded.
 * Cost: linear in the text, a hash probe per word (bench/bench_score.c).
 * Thread-safe: the keyword table is built once (pthread_once). */
#ifndef RT_SCORE_H
#define RT_SCORE_H

#include <stdbool.h>
#include <stddef.h>

/* Text bytes scanned per request (all messages together); beyond this the
 * rest only counts toward prompt_tokens and long_doc. Keeps the worst case
 * near 0.4 ms of loop time for a 1 MiB body. */
#define RT_SCORE_SCAN_MAX (128u << 10)

typedef enum {
    RT_F_PROMPT_TOKENS = 0, /* estimated prompt tokens (raw), log2(1+t)/12 */
    RT_F_TURNS,             /* user+assistant messages */
    RT_F_MAX_TOKENS,        /* requested max tokens (0 = not given) */
    RT_F_TOOLS,             /* tool definitions */
    RT_F_JSON_SCHEMA,       /* response_format json_schema/json_object: 0/1 */
    RT_F_CODE,              /* code markers: keywords, fences, braces */
    RT_F_MATH,              /* math markers: prove, integral, LaTeX, operators */
    RT_F_REASONING,         /* multi-step reasoning: analyze, compare, why */
    RT_F_CONSTRAINTS,       /* must, at least, without, exactly ... */
    RT_F_BUILD,             /* implement, design, build, architect ... */
    RT_F_PLANNING,          /* plan, schedule, itinerary, tools, steps ... */
    RT_F_SIMPLE_TASK,       /* translate, summarize, classify, extract ... */
    RT_F_GREETING,          /* hi, thanks, hello ... */
    RT_F_HINT_COMPLEX,      /* "in detail", "thorough", "comprehensive" */
    RT_F_HINT_SIMPLE,       /* "briefly", "one word", "short" */
    RT_F_EXPLICIT_HINT,     /* caller's hint: -1 edge, +1 cloud, 0 none */
    RT_F_NON_LATIN,         /* share of non-ASCII code points in the text */
    RT_F_LONG_DOC,          /* bytes of the longest paragraph or block */
    RT_F_QUESTIONS,         /* '?' count */
    RT_F_LIST_ITEMS,        /* lines starting "- ", "* ", "1." ... */
    RT_F_COUNT
} rt_feature_id;

typedef struct {
    const char *role; /* "system", "user", "assistant", "tool"; NULL = user */
    const char *text; /* may be NULL */
    size_t len;
} rt_msg;

typedef struct {
    const rt_msg *msgs;
    size_t n_msgs;
    int max_tokens;    /* 0 = not given */
    int n_tools;       /* tool definitions offered */
    bool json_schema;  /* structured output requested */
    int hint;          /* -1 edge, +1 cloud, 0 none (x-tidegate-hint) */
    int prompt_tokens; /* exact count when known, -1 = estimate from text */
} rt_score_input;

typedef struct {
    double raw[RT_F_COUNT]; /* what conditions compare: counts, bytes, tokens */
    double x[RT_F_COUNT];   /* the model's inputs */
} rt_features;

typedef struct {
    double bias;
    double w[RT_F_COUNT];
} rt_score_weights;

void rt_features_extract(const rt_score_input *in, rt_features *out);

/* Returns the score in [0,1]; contrib (RT_F_COUNT entries, may be NULL)
 * gets w_i * x_i. */
double rt_score_eval(const rt_score_weights *w, const rt_features *f, double *contrib);

/* The weights of the shipped hybrid.yaml (used when a policy gives none). */
void rt_score_weights_default(rt_score_weights *w);

const char *rt_feature_name(int id);
/* -1 when unknown. */
int rt_feature_by_name(const char *name);

#endif
