/* lfm_sched: serves concurrent generation jobs on one model.
 *
 * One scheduler thread owns the model's sequences. Jobs enter a bounded
 * queue (lfm_sched_submit never blocks: a full queue returns LFM_EFULL so
 * the gateway can answer 429). Each step the scheduler prefills newly
 * admitted jobs and decodes one token for every active job in a single
 * batched lfm_eval, samples per job with the job's own seeded sampler, and
 * reports events through the job's callback.
 *
 * Callbacks run on the scheduler thread: they must be short and thread-safe
 * (the gateway copies the event into a queue and wakes its loop with
 * uv_async_send). Text in events is complete UTF-8 and already has stop
 * strings removed; text that might be the start of a stop string is held
 * back until it is known not to be. */
#ifndef LFM_SCHED_H
#define LFM_SCHED_H

#include "engine/lfm.h"
#include "engine/lfm_grammar.h"

typedef enum {
    LFM_FINISH_NONE = 0,
    LFM_FINISH_STOP,     /* EOG token or stop string */
    LFM_FINISH_LENGTH,   /* max_tokens or context reached */
    LFM_FINISH_CANCELED, /* lfm_sched_cancel or scheduler shutdown */
    LFM_FINISH_ERROR,
} lfm_finish;

typedef enum {
    LFM_EV_TEXT, /* a chunk of generated text (text, len; n_generated so far) */
    LFM_EV_DONE, /* terminal: finish says why; counts are final */
    /* One sampled token with its logprobs; only for jobs that asked
     * (lfm_job_params.logprobs). Comes before the TEXT event the token's
     * text ends up in (text may be held back across tokens, so TOKEN and
     * TEXT events do not pair up one to one). Also sent for the EOG token
     * that ends a job (eog set); a token that completes a stop string is
     * reported although its text is not. */
    LFM_EV_TOKEN,
} lfm_event_type;

typedef struct {
    lfm_event_type type;
    uint64_t job_id;
    const char *text; /* LFM_EV_TEXT: valid only during the callback */
    size_t len;
    lfm_finish finish; /* LFM_EV_DONE */
    const char *error; /* LFM_EV_DONE with LFM_FINISH_ERROR */
    int n_prompt;      /* prompt tokens */
    int n_generated;   /* tokens generated so far */
    double ttft_ms;    /* time from submit to first token (DONE, TEXT) */
    int n_cached;      /* prompt tokens restored from the prefix cache, not evaluated */
    /* LFM_EV_TOKEN: the sampled token, its logprob and the n_top most likely
     * tokens of that step, best first (arrays valid only during the
     * callback). Logprobs are log softmax of the step's RAW logits: before
     * penalties, logit_bias, constraint mask and truncation (lfm_logprobs). */
    int32_t token;
    bool eog;
    float logprob;
    int n_top;
    const int32_t *top_ids;
    const float *top_logprobs;
} lfm_event;

typedef void (*lfm_event_cb)(void *user, const lfm_event *ev);

typedef struct {
    const int32_t *prompt; /* copied by submit */
    size_t n_prompt;
    int max_tokens; /* <= 0: until context end */
    lfm_sampler_params sampling;
    const char *const *stop; /* stop strings (copied), may be NULL */
    size_t n_stop;
    lfm_event_cb cb;
    void *user;
    /* Report LFM_EV_TOKEN events with logprobs and the top_logprobs
     * (0..LFM_MAX_TOP_LOGPROBS) best alternatives of every step. */
    bool logprobs;
    int top_logprobs;
    /* Constrained decoding (NULL = none): before every draw the tokens the
     * constraint refuses get -inf, and each sampled token advances it. On
     * LFM_OK the scheduler owns it (frees it with the job); on failure the
     * caller still does. A dead end (no token allowed) finishes the job with
     * LFM_FINISH_ERROR; max_tokens before the value is complete is
     * LFM_FINISH_LENGTH as usual. */
    lfm_constraint *constraint;
} lfm_job_params;

typedef struct {
    int max_active; /* sequences decoded together (batch width) */
    int queue_cap;  /* waiting jobs beyond max_active: submit returns LFM_EFULL once live
                       jobs (queued + running, minus running ones already canceled)
                       reach max_active + queue_cap */
    int n_ctx;      /* per-sequence context (0 = model's, capped at 8192) */
    /* Prefix cache budget in bytes (0 = off; default 128 MiB). A finished
     * job's state (KV rows, conv state at its prefill step ends and its end)
     * is kept, and a later prompt that starts with the same tokens (a chat
     * resending its history) restores it instead of evaluating them again.
     * Exact: the same tokens come out with and without it. */
    size_t prefix_cache_bytes;
} lfm_sched_opts;

typedef struct {
    uint64_t lookups, hits; /* jobs started; of them, restored from the cache */
    uint64_t tokens_reused; /* prompt tokens restored instead of evaluated */
    uint64_t entries, bytes, evictions;
} lfm_cache_stats;

typedef struct lfm_sched lfm_sched;

void lfm_sched_opts_default(lfm_sched_opts *o);
int lfm_sched_new(lfm_model *m, const lfm_sched_opts *o, lfm_sched **out, char *err, size_t errlen);
/* Stops the thread; jobs still queued or running get DONE with CANCELED. */
void lfm_sched_free(lfm_sched *s);
/* Returns LFM_OK and the job id, LFM_EFULL when the queue is full, LFM_ECTX
 * when the prompt cannot fit the context. */
int lfm_sched_submit(lfm_sched *s, const lfm_job_params *p, uint64_t *job_id);
/* Cancels at the next token; the job still gets exactly one DONE event. */
void lfm_sched_cancel(lfm_sched *s, uint64_t job_id);
int lfm_sched_queue_depth(lfm_sched *s); /* waiting, not yet running */
int lfm_sched_active(lfm_sched *s);      /* running */
int lfm_sched_n_ctx(const lfm_sched *s);
/* Prefix cache counters as of the scheduler's last step (all 0 when off). */
void lfm_sched_cache_stats(lfm_sched *s, lfm_cache_stats *out);

#endif
