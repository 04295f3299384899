/* score_fit: logistic regression by IRLS. See score_fit.h. */
#include "router/score_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D (RT_F_COUNT + 1) /* bias first, then the features */

/* Solves A x = b for symmetric positive definite A (D x D) in place by
 * Cholesky; returns -1 if A is not positive definite. */
static int chol_solve(double A[D][D], double *b) {
    for (int j = 0; j < D; j++) {
        double s = A[j][j];
        for (int k = 0; k < j; k++)
            s -= A[j][k] * A[j][k];
        if (s <= 1e-12) return -1;
        A[j][j] = sqrt(s);
        for (int i = j + 1; i < D; i++) {
            double t = A[i][j];
            for (int k = 0; k < j; k++)
                t -= A[i][k] * A[j][k];
            A[i][j] = t / A[j][j];
        }
    }
    for (int i = 0; i < D; i++) { /* L y = b */
        double t = b[i];
        for (int k = 0; k < i; k++)
            t -= A[i][k] * b[k];
        b[i] = t / A[i][i];
    }
    for (int i = D - 1; i >= 0; i--) { /* L^T x = y */
        double t = b[i];
        for (int k = i + 1; k < D; k++)
            t -= A[k][i] * b[k];
        b[i] = t / A[i][i];
    }
    return 0;
}

static void row(const rt_features *f, double *x) {
    x[0] = 1.0;
    for (int i = 0; i < RT_F_COUNT; i++)
        x[i + 1] = f->x[i];
}

int rt_score_fit(const rt_features *X, const int *y, size_t n, double l2, rt_score_weights *out) {
    if (n == 0) return -1;
    double beta[D] = {0};
    for (int it = 0; it < 100; it++) {
        double H[D][D], g[D];
        memset(H, 0, sizeof H);
        memset(g, 0, sizeof g);
        for (size_t s = 0; s < n; s++) {
            double x[D], z = 0;
            row(&X[s], x);
            for (int i = 0; i < D; i++)
                z += beta[i] * x[i];
            double p = 1.0 / (1.0 + exp(-z)), wgt = p * (1 - p);
            for (int i = 0; i < D; i++) {
                g[i] += (p - (double)y[s]) * x[i];
                for (int j = 0; j <= i; j++)
                    H[i][j] += wgt * x[i] * x[j];
            }
        }
        for (int i = 1; i < D; i++) {
            g[i] += l2 * beta[i];
            H[i][i] += l2;
        }
        H[0][0] += 1e-6;
        for (int i = 0; i < D; i++)
            for (int j = i + 1; j < D; j++)
                H[i][j] = H[j][i];
        if (chol_solve(H, g) < 0) break;
        double step = 0;
        for (int i = 0; i < D; i++) {
            beta[i] -= g[i];
            step += fabs(g[i]);
        }
        if (step < 1e-9) break;
    }
    out->bias = beta[0];
    for (int i = 0; i < RT_F_COUNT; i++)
        out->w[i] = beta[i + 1];
    return 0;
}

void rt_score_judge(const rt_score_weights *w, const rt_features *X, const int *y, size_t n,
                    double threshold, rt_fit_report *out) {
    memset(out, 0, sizeof *out);
    size_t agree = 0, edge = 0, ledge = 0;
    for (size_t i = 0; i < n; i++) {
        int cloud = rt_score_eval(w, &X[i], NULL) >= threshold;
        agree += cloud == y[i];
        edge += !cloud;
        ledge += !y[i];
        out->edge_as_cloud += cloud && !y[i];
        out->cloud_as_edge += !cloud && y[i];
    }
    out->n = n;
    if (n) {
        out->agreement = (double)agree / (double)n;
        out->edge_share = (double)edge / (double)n;
        out->label_edge_share = (double)ledge / (double)n;
    }
}

int rt_score_cv(const rt_features *X, const int *y, size_t n, int k, double l2, double threshold,
                rt_fit_report *out) {
    memset(out, 0, sizeof *out);
    if (k < 2 || n < (size_t)k) return -1;
    rt_features *tx = malloc(n * sizeof *tx);
    rt_features *vx = malloc(n * sizeof *vx);
    int *ty = malloc(n * sizeof *ty), *vy = malloc(n * sizeof *vy);
    if (!tx || !vx || !ty || !vy) abort();
    size_t agree = 0, edge = 0, ledge = 0, total = 0;
    for (int fold = 0; fold < k; fold++) {
        size_t nt = 0, nv = 0;
        for (size_t i = 0; i < n; i++) {
            if ((int)(i % (size_t)k) == fold)
                vx[nv] = X[i], vy[nv++] = y[i];
            else
                tx[nt] = X[i], ty[nt++] = y[i];
        }
        rt_score_weights w;
        rt_score_fit(tx, ty, nt, l2, &w);
        rt_fit_report r;
        rt_score_judge(&w, vx, vy, nv, threshold, &r);
        agree += (size_t)llround(r.agreement * (double)nv);
        edge += (size_t)llround(r.edge_share * (double)nv);
        ledge += (size_t)llround(r.label_edge_share * (double)nv);
        out->edge_as_cloud += r.edge_as_cloud;
        out->cloud_as_edge += r.cloud_as_edge;
        total += nv;
    }
    out->n = total;
    out->agreement = (double)agree / (double)total;
    out->edge_share = (double)edge / (double)total;
    out->label_edge_share = (double)ledge / (double)total;
    free(tx), free(vx), free(ty), free(vy);
    return 0;
}
