/* engine_bridge: scheduler-thread events -> mutex queue -> uv_async -> loop. */
#include "router/engine_bridge.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct tg_bridge_job {
    tg_bridge *b;
    uint64_t id;
    tg_bridge_cbs cbs;
    void *user;
    bool detached;
    tg_bridge_job *prev, *next; /* live list (loop thread only) */
};

/* One copied event. Top-logprob arrays, text and error live in the
 * flexible tail (arrays first: the tail is suitably aligned for them). */
typedef struct ev_node {
    struct ev_node *next;
    tg_bridge_job *job;
    lfm_event ev;
    _Alignas(8) char bytes[];
} ev_node;

struct tg_bridge {
    uv_loop_t *loop;
    lfm_sched *sched;
    uv_async_t async;
    pthread_mutex_t mu;
    ev_node *head, *tail; /* guarded by mu */
    tg_bridge_job *jobs;  /* loop thread only */
    size_t n_jobs;
};

/* Scheduler thread: copy and enqueue, nothing else (keeps decode steps short). */
static void on_sched_event(void *user, const lfm_event *ev) {
    tg_bridge_job *j = user;
    tg_bridge *b = j->b;
    size_t tl = (ev->type == LFM_EV_TEXT && ev->text) ? ev->len : 0;
    size_t el = ev->error ? strlen(ev->error) : 0;
    /* TOKEN: the top arrays are copied too (aligned ahead of the text). */
    size_t nt = ev->type == LFM_EV_TOKEN && ev->n_top > 0 ? (size_t)ev->n_top : 0;
    size_t al = nt * (sizeof(int32_t) + sizeof(float));
    ev_node *n = malloc(sizeof *n + al + tl + el + 2);
    if (!n) abort();
    n->next = NULL;
    n->job = j;
    n->ev = *ev;
    if (nt) {
        int32_t *ids = (int32_t *)(void *)n->bytes;
        float *lps = (float *)(void *)(n->bytes + nt * sizeof(int32_t));
        memcpy(ids, ev->top_ids, nt * sizeof *ids);
        memcpy(lps, ev->top_logprobs, nt * sizeof *lps);
        n->ev.top_ids = ids;
        n->ev.top_logprobs = lps;
    } else {
        n->ev.top_ids = NULL;
        n->ev.top_logprobs = NULL;
        n->ev.n_top = 0;
    }
    char *t = n->bytes + al;
    if (tl) memcpy(t, ev->text, tl);
    t[tl] = 0;
    n->ev.text = t;
    n->ev.len = tl;
    char *e = t + tl + 1;
    if (el) memcpy(e, ev->error, el);
    e[el] = 0;
    n->ev.error = ev->error ? e : NULL;
    pthread_mutex_lock(&b->mu);
    if (b->tail)
        b->tail->next = n;
    else
        b->head = n;
    b->tail = n;
    pthread_mutex_unlock(&b->mu);
    uv_async_send(&b->async); /* coalesces: one wakeup may carry many events */
}

static void job_unlink(tg_bridge *b, tg_bridge_job *j) {
    if (j->prev)
        j->prev->next = j->next;
    else
        b->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    b->n_jobs--;
}

void tg_bridge_drain(tg_bridge *b) {
    for (;;) {
        pthread_mutex_lock(&b->mu);
        ev_node *n = b->head;
        b->head = b->tail = NULL;
        pthread_mutex_unlock(&b->mu);
        if (!n) return;
        while (n) {
            ev_node *next = n->next;
            tg_bridge_job *j = n->job;
            if (n->ev.type == LFM_EV_TEXT) {
                if (!j->detached && j->cbs.on_text) j->cbs.on_text(j->user, &n->ev);
            } else if (n->ev.type == LFM_EV_TOKEN) {
                if (!j->detached && j->cbs.on_token) j->cbs.on_token(j->user, &n->ev);
            } else {
                if (!j->detached && j->cbs.on_done) j->cbs.on_done(j->user, &n->ev);
                job_unlink(b, j);
                free(j);
            }
            free(n);
            n = next;
        }
    }
}

static void on_async(uv_async_t *h) {
    tg_bridge_drain(h->data);
}

int tg_bridge_new(uv_loop_t *loop, lfm_sched *sched, tg_bridge **out) {
    tg_bridge *b = calloc(1, sizeof *b);
    if (!b) return LFM_ENOMEM;
    b->loop = loop;
    b->sched = sched;
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return LFM_ENOMEM;
    }
    if (uv_async_init(loop, &b->async, on_async) != 0) {
        pthread_mutex_destroy(&b->mu);
        free(b);
        return LFM_ENOMEM;
    }
    b->async.data = b;
    *out = b;
    return LFM_OK;
}

int tg_bridge_submit(tg_bridge *b, const lfm_job_params *p, const tg_bridge_cbs *cbs, void *user,
                     tg_bridge_job **out) {
    tg_bridge_job *j = calloc(1, sizeof *j);
    if (!j) return LFM_ENOMEM;
    j->b = b;
    j->cbs = *cbs;
    j->user = user;
    /* Linked before submit: the scheduler may finish the job before submit
     * returns, and its DONE (processed on this thread later) unlinks it. */
    j->next = b->jobs;
    if (b->jobs) b->jobs->prev = j;
    b->jobs = j;
    b->n_jobs++;
    lfm_job_params q = *p;
    q.cb = on_sched_event;
    q.user = j;
    int rc = lfm_sched_submit(b->sched, &q, &j->id);
    if (rc != LFM_OK) {
        job_unlink(b, j);
        free(j);
        return rc;
    }
    *out = j;
    return LFM_OK;
}

void tg_bridge_cancel(tg_bridge_job *j) {
    if (j && j->b->sched) lfm_sched_cancel(j->b->sched, j->id);
}

void tg_bridge_detach(tg_bridge_job *j) {
    if (!j) return;
    j->detached = true;
    tg_bridge_cancel(j);
}

void tg_bridge_cancel_all(tg_bridge *b) {
    for (tg_bridge_job *j = b->jobs; j; j = j->next)
        tg_bridge_cancel(j);
}

size_t tg_bridge_live_jobs(const tg_bridge *b) {
    return b->n_jobs;
}

static void on_closed(uv_handle_t *h) {
    tg_bridge *b = h->data;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void tg_bridge_close(tg_bridge *b) {
    if (!b) return;
    b->sched = NULL; /* the scheduler is gone: cancel becomes a no-op */
    tg_bridge_drain(b);
    while (b->jobs) { /* DONE never came (scheduler broke its contract) */
        tg_bridge_job *j = b->jobs;
        job_unlink(b, j);
        free(j);
    }
    uv_close((uv_handle_t *)&b->async, on_closed);
}
