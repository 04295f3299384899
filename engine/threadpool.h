/* threadpool: a tiny fixed pool of pthreads for data-parallel kernels.
 *
 * tp_run(pool, fn, ctx) calls fn(ctx, i, n) once for every i in [0, n),
 * n = tp_size(pool), worker i on its own thread (i = 0 on the caller), and
 * returns when all are done. Callers keep results independent of
 * scheduling: a matmul hands out chunks of output rows on demand, and each
 * row's value is computed the same way whichever thread takes it, so it
 * writes the same bytes with 1 or 8 threads. */
#ifndef LFM_THREADPOOL_H
#define LFM_THREADPOOL_H

typedef struct tp_pool tp_pool;
typedef void (*tp_fn)(void *ctx, int i, int n);

/* n_threads >= 1 counts the caller; n_threads - 1 threads are started.
 * Returns NULL when threads cannot be created. */
tp_pool *tp_new(int n_threads);
void tp_free(tp_pool *p);
int tp_size(const tp_pool *p);
/* Not reentrant: one tp_run at a time per pool. */
void tp_run(tp_pool *p, tp_fn fn, void *ctx);

#endif
