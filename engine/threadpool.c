/* threadpool: workers sleep on a condition variable between jobs. A job is
 * published by bumping `gen`; each worker runs its index once per gen and the
 * last one to finish wakes the caller. Condition variables (not spinning)
 * because the machine is usually shared. */
#include "engine/threadpool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    tp_pool *pool;
    int index;
} tp_worker_arg;

struct tp_pool {
    int n;               /* total participants, caller included */
    pthread_t *threads;  /* n - 1 */
    tp_worker_arg *args; /* n - 1 */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers: new gen or stop */
    pthread_cond_t done; /* caller: pending reached 0 */
    unsigned long gen;
    int pending;
    int stop;
    tp_fn fn;
    void *ctx;
};

static void *tp_worker(void *arg) {
    tp_worker_arg *a = arg;
    tp_pool *p = a->pool;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        tp_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, a->index, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

tp_pool *tp_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    tp_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads == 1) return p;
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    p->args = calloc((size_t)n_threads - 1, sizeof *p->args);
    if (!p->threads || !p->args) {
        p->n = 1;
        tp_free(p);
        return NULL;
    }
    for (int i = 0; i < n_threads - 1; i++) {
        p->args[i].pool = p;
        p->args[i].index = i + 1;
        if (pthread_create(&p->threads[i], NULL, tp_worker, &p->args[i]) != 0) {
            p->n = i + 1; /* join only the ones that started */
            tp_free(p);
            return NULL;
        }
    }
    return p;
}

void tp_free(tp_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n - 1; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->args);
    free(p);
}

int tp_size(const tp_pool *p) {
    return p ? p->n : 1;
}

void tp_run(tp_pool *p, tp_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
