/* score_fit: fits the complexity score's weights to labelled prompts
 * (`tidegate policy calibrate`). L2-regularized logistic regression by
 * Newton's method (IRLS) over the RT_F_COUNT features plus a bias; k-fold
 * cross-validation reports how often score >= threshold agrees with the
 * label. Deterministic: folds are i mod k, no randomness. Offline tool code:
 * allocates, never on the request path. */
#ifndef RT_SCORE_FIT_H
#define RT_SCORE_FIT_H

#include <stddef.h>

#include "router/score.h"

typedef struct {
    size_t n;                /* examples judged */
    double agreement;        /* share where (score >= threshold) == (label is cloud) */
    double edge_share;       /* share the score sends to the edge */
    double label_edge_share; /* share labelled edge */
    size_t edge_as_cloud;    /* labelled edge, scored cloud */
    size_t cloud_as_edge;    /* labelled cloud, scored edge */
} rt_fit_report;

/* y[i] = 1 for cloud, 0 for edge. l2: penalty on the weights (not the
 * bias). Returns 0, or -1 when n == 0. */
int rt_score_fit(const rt_features *X, const int *y, size_t n, double l2, rt_score_weights *out);

void rt_score_judge(const rt_score_weights *w, const rt_features *X, const int *y, size_t n,
                    double threshold, rt_fit_report *out);

/* k-fold cross-validated agreement (example i is in fold i % k). */
int rt_score_cv(const rt_features *X, const int *y, size_t n, int k, double l2, double threshold,
                rt_fit_report *out);

#endif
