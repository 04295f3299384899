/* threadpool: a job is published by bumping `gen`; each worker runs its index
 * once per gen and the last one to finish tells the caller. Between jobs
 * workers and the caller spin for a short while (TP_SPIN_NS) before sleeping
 * on a condition variable: a decode step is ~100 back-to-back matmuls a few
 * tens of microseconds apart, and a condition-variable wake per matmul costs
 * about as much as the matmul itself. The spin is bounded so an idle engine
 * on a shared machine sleeps. */
#include "engine/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define tp_relax() _mm_pause()
#elif defined(__aarch64__)
#define tp_relax() __asm__ __volatile__("yield")
#else
#define tp_relax() ((void)0)
#endif

#define TP_SPIN_NS  200000L /* 0.2 ms */
#define TP_YIELD_NS 10000L  /* pure spin this long, then yield between checks */

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
    _Atomic unsigned long gen;
    _Atomic int pending;
    _Atomic int stop;
    int sleepers;     /* workers in cond_wait (under mu) */
    int caller_sleep; /* caller in cond_wait (under mu) */
    tp_fn fn;
    void *ctx;
};

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Between checks of a spin: a pause, and past TP_YIELD_NS a sched_yield
 * every 64 checks. On a loaded machine the thread we wait for may be
 * runnable but descheduled (profiles showed half of decode time spinning);
 * yielding lets it run on this core. Alone on the machine, the yield
 * returns at once. Returns 0 once the spin budget is spent. */
static int spin_step(int i, long t0) {
    tp_relax();
    if ((i & 63) != 0) return 1;
    long dt = now_ns() - t0;
    if (dt > TP_SPIN_NS) return 0;
    if (dt > TP_YIELD_NS) sched_yield();
    return 1;
}

/* Spins until *v != old (returns 1) or the spin budget is spent (0). */
static int spin_until_change(_Atomic unsigned long *v, unsigned long old, _Atomic int *stop) {
    long t0 = now_ns();
    for (int i = 1;; i++) {
        if (atomic_load_explicit(v, memory_order_acquire) != old ||
            atomic_load_explicit(stop, memory_order_relaxed))
            return 1;
        if (!spin_step(i, t0)) return 0;
    }
}

static void *tp_worker(void *arg) {
    tp_worker_arg *a = arg;
    tp_pool *p = a->pool;
    unsigned long seen = 0;
    for (;;) {
        if (!spin_until_change(&p->gen, seen, &p->stop)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!atomic_load(&p->stop) && atomic_load(&p->gen) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        p->fn(p->ctx, a->index, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_sleep) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
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
    atomic_store(&p->stop, 1);
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
    /* Workers read fn/ctx only after seeing the new gen (release/acquire). */
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    long t0 = now_ns();
    for (int i = 1; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        if (!spin_step(i, t0)) {
            pthread_mutex_lock(&p->mu);
            p->caller_sleep = 1;
            while (atomic_load(&p->pending) > 0)
                pthread_cond_wait(&p->done, &p->mu);
            p->caller_sleep = 0;
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
}
