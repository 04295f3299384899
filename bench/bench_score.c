/* bench_score: cost of the complexity score (features + logistic) for an
 * 8 KB prompt, as a share of the budget of 50 microseconds. Times
 * are this thread's CPU time, best of 5 trials.
 * Usage: bench_score [iterations]   (default 20000; < 2 s) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/policy.h"
#include "router/score.h"

/* CPU time of this thread: the machine is shared (load well above the core
 * count), and time spent descheduled is not the score's cost. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char k_para[] =
    "Please analyze the following quarterly report and compare the segments. Revenue grew 18% "
    "year over year, driven by the enterprise tier; churn rose slightly to 3.1%. We must keep "
    "operating margin above 10% without cutting the research budget. ```int x = f(y);``` "
    "Why did marketplace margins fall? Consider pricing, take rate and headcount growth.\n\n";

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    if (iters < 1) iters = 1;
    char *text = malloc(8193);
    size_t n = 0;
    while (n + sizeof k_para - 1 <= 8192) {
        memcpy(text + n, k_para, sizeof k_para - 1);
        n += sizeof k_para - 1;
    }
    while (n < 8192)
        text[n++] = 'x';
    text[n] = 0;
    rt_msg m = {"user", text, n};
    rt_score_input in = {.msgs = &m, .n_msgs = 1, .prompt_tokens = -1};
    rt_score_weights w;
    rt_score_weights_default(&w);
    rt_features f;
    volatile double sink = 0;
    rt_features_extract(&in, &f); /* warm the keyword table */
    double best = 1e9;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = now();
        for (long i = 0; i < iters / 5 + 1; i++) {
            rt_features_extract(&in, &f);
            sink += rt_score_eval(&w, &f, NULL);
        }
        double us = (now() - t0) * 1e6 / (double)(iters / 5 + 1);
        if (us < best) best = us;
    }
    printf("score of an %zu-byte prompt: %.2f us CPU (budget 50 us: %.0f%% of it)\n", n, best,
           best / 50.0 * 100.0);
    free(text);
    return sink == 42 ? 1 : 0;
}
