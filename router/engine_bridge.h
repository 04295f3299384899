/* engine_bridge: carries lfm_sched events from the scheduler thread to the
 * libuv loop.
 *
 * The scheduler calls back on its own thread; the bridge copies each event
 * (text included) into a mutex-protected queue and wakes the loop with one
 * uv_async_send. On the loop, the queued events are delivered to the job's
 * owner through tg_bridge_cbs, in order, so every owner callback runs on
 * the loop thread and may touch HTTP exchanges directly.
 *
 * Job lifetime: a tg_bridge_job lives from a successful submit until its
 * DONE event has been delivered on the loop (the bridge frees it right
 * after on_done returns). tg_bridge_detach() lets an owner that goes away
 * first (client disconnect) drop its callbacks: the engine job is canceled
 * at its next token and the bridge frees the job when DONE arrives, so no
 * callback ever reaches freed owner state. */
#ifndef TG_ENGINE_BRIDGE_H
#define TG_ENGINE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "engine/lfm_sched.h"

typedef struct tg_bridge tg_bridge;
typedef struct tg_bridge_job tg_bridge_job;

typedef struct {
    /* LFM_EV_TEXT: ev->text/ev->len valid during the call. */
    void (*on_text)(void *user, const lfm_event *ev);
    /* LFM_EV_DONE: the job is freed when this returns. */
    void (*on_done)(void *user, const lfm_event *ev);
    /* LFM_EV_TOKEN (jobs submitted with logprobs): top arrays valid during
     * the call. May be NULL. */
    void (*on_token)(void *user, const lfm_event *ev);
} tg_bridge_cbs;

/* The bridge does not own sched; the caller frees the scheduler (which
 * delivers DONE for every job) before tg_bridge_close. */
int tg_bridge_new(uv_loop_t *loop, lfm_sched *sched, tg_bridge **out);

/* Submits a job; p->cb and p->user are replaced by the bridge's own.
 * Returns LFM_OK, LFM_EFULL (queue full: answer 429), LFM_ECTX or another
 * LFM_E* code; on failure no callback will ever run. */
int tg_bridge_submit(tg_bridge *b, const lfm_job_params *p, const tg_bridge_cbs *cbs, void *user,
                     tg_bridge_job **out);

/* Cancels generation at the next token; callbacks continue (on_done with
 * LFM_FINISH_CANCELED, or whatever the job reached first). */
void tg_bridge_cancel(tg_bridge_job *j);
/* Cancels and forgets the owner: no further callbacks for this job. */
void tg_bridge_detach(tg_bridge_job *j);
/* Cancels every live job (shutdown deadline). */
void tg_bridge_cancel_all(tg_bridge *b);

/* Jobs submitted and not yet done (loop's view). */
size_t tg_bridge_live_jobs(const tg_bridge *b);

/* Delivers whatever is queued, now (used after the scheduler is freed). */
void tg_bridge_drain(tg_bridge *b);
/* Drains, closes the async handle and frees the bridge once libuv is done
 * with it (the loop must run once more). Jobs still live are freed. */
void tg_bridge_close(tg_bridge *b);

#endif
