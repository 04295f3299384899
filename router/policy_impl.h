/* policy_impl: the policy's in-memory shape, shared by the loader
 * (policy_yaml.c) and the evaluator/writer (policy.c). Private to router/. */
#ifndef RT_POLICY_IMPL_H
#define RT_POLICY_IMPL_H

#include <stdint.h>

#include "router/policy.h"

typedef enum { RT_OP_LT = 0, RT_OP_LTE, RT_OP_GT, RT_OP_GTE, RT_OP_EQ, RT_OP_NE } rt_op;

typedef enum {
    RT_C_SCORE = 0, /* score <op> value */
    RT_C_FEATURE,   /* features[id].raw <op> value */
    RT_C_HEALTH,    /* health[id] <op> value; false when unknown */
    RT_C_MODE,      /* mode in mode_mask */
    RT_C_ANY,       /* child: list of RT_C_ALL, true when one holds */
    RT_C_ALL,       /* child: list of conditions, true when all hold */
} rt_cond_kind;

typedef struct {
    uint8_t kind;
    uint8_t op;
    int16_t id;
    uint32_t mode_mask;
    double value;
    int child; /* first child index, -1 = none */
    int next;  /* next sibling index, -1 = end */
} rt_cond;

typedef struct {
    char name[RT_POLICY_NAME_MAX];
    char note[96];
    rt_cond conds[RT_POLICY_MAX_CONDS];
    int n_conds;
    int head; /* first top-level condition, -1 = always */
    rt_policy_target targets[RT_POLICY_MAX_TARGETS];
    size_t n_targets;
    int retry_budget;
    rt_pmid mid_stream;
    rt_cascade cascade;
    rt_defer defer;
    rt_pgone on_client_gone;
} rt_rule;

struct rt_policy {
    char source[256];
    char description[200];
    rt_score_weights w;
    rt_rule rules[RT_POLICY_MAX_RULES];
    size_t n_rules;
};

const char *rt_op_name(rt_op op); /* "lt", "gte", ... */

#endif
