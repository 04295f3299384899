/* sched: the generation scheduler (contract in lfm_sched.h).
 *
 * Threads: submitters only touch the queue under `mu` (a short critical
 * section: no model work is done while holding it). The scheduler thread
 * owns every running job and the sequence pool; it takes `mu` once per step
 * to drop canceled queued jobs, admit waiting jobs into free slots and read
 * cancel flags, then works without the lock. Callbacks run on the scheduler
 * thread with no lock held, so a callback may submit or cancel (but not free
 * the scheduler).
 *
 * A step: every running job contributes its unfed tokens as rows of ONE
 * lfm_eval call. Decoding jobs feed the token sampled last step; jobs still
 * in prefill feed up to SCHED_PREFILL_CHUNK prompt tokens in total per step,
 * so a long prompt is spread over several steps instead of stalling everyone
 * else's decoding. Only a job's last history row asks for logits. Since the
 * engine guarantees a row's result does not depend on its batch mates, and
 * each job samples with its own seeded sampler over its own history, a job's
 * text is the same alone or batched.
 *
 * Prefix reuse (pcache.h): a starting job restores the longest cached
 * prefix of its prompt into its sequence and feeds only the rest; each
 * prefill step's end copies the conv state (a restore point), and a job
 * that ends (except by error) leaves its state in the cache.
 *
 * Token accounting: prompt + generated tokens never exceed n_ctx (a token is
 * only generated if it would fit in the context), the EOG token that ends a
 * job counts as generated but is not shown as text. */
#include "engine/lfm_sched.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/pcache.h"
#include "engine/stopstr.h"

#define SCHED_PREFILL_CHUNK 256
#define SCHED_MAX_ACTIVE    256
#define SCHED_CTX_CAP       8192

typedef struct sched_job sched_job;
struct sched_job {
    sched_job *next; /* queue link (under mu) */
    uint64_t id;
    bool cancel; /* set by lfm_sched_cancel (under mu) */

    int32_t *hist; /* prompt then generated tokens, capacity hist_cap */
    int hist_cap;
    int n_prompt;
    int n_hist; /* prompt + generated so far */
    int max_tokens;
    bool logprobs; /* report LFM_EV_TOKEN with top_logprobs alternatives */
    int top_logprobs;
    lfm_event_cb cb;
    void *user;
    double t_submit, t_first; /* ms, monotonic; t_first < 0 until the first token */

    /* Scheduler-thread state while running. */
    int slot;
    uint64_t admit_seq; /* admission order: prefill budget goes oldest first */
    bool fresh;         /* admitted this step, not yet initialized */
    bool cancel_seen;
    int n_fed;      /* history tokens already evaluated into the sequence */
    int n_cached;   /* of them, restored from the prefix cache */
    pc_marks marks; /* conv state at this job's prefill step ends */
    int n_generated;
    lfm_sampler *sampler;
    lfm_constraint *constraint; /* owned; NULL = unconstrained */
    lfm_detok detok;
    lfm_stop stop;
};

struct lfm_sched {
    lfm_model *m;
    const lfm_tokenizer *tok; /* may be NULL: tokens only, no text */
    int n_vocab, n_ctx, max_active, queue_cap;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    sched_job *q_head, *q_tail; /* waiting jobs, FIFO */
    int q_len;
    /* Canceled while waiting: already out of the queue (so its capacity is
     * free at once), their DONE still to be reported by the thread. */
    sched_job *canceled;
    /* Running jobs canceled but not yet stopped (their slot frees at the
     * next step). Capacity is counted in live jobs: queued + running - these
     * must stay under max_active + queue_cap. Counting the queue alone
     * refused clients that gave up and asked again: between a canceled
     * job's slot freeing and the next admission the queue still held its
     * successor (issue 13's spurious 429s). */
    int n_active_canceled;
    sched_job **active; /* [max_active] slots, NULL = free; writes under mu */
    int n_active;
    bool stopping;
    uint64_t next_id;
    uint64_t next_admit;
    pthread_t thread;

    /* Scheduler thread only. */
    lfm_seq **seqs; /* [max_active], one per slot */
    int row_cap;
    int *order; /* [max_active] slots of running jobs, oldest first */
    int32_t *b_tok;
    lfm_seq **b_seq;
    uint8_t *b_want;
    float *logits;  /* max_active * n_vocab */
    float *raw;     /* n_vocab: a logits row before the sampler edits it */
    uint32_t *mask; /* (n_vocab + 31) / 32 words: a constraint's allowed tokens */
    tg_buf piece;   /* detokenized text of one token */
    tg_buf text;    /* text cleared for release */
    char err[256];
    pc_cache *pc;            /* NULL = prefix cache off */
    lfm_cache_stats pc_seen; /* copy for lfm_sched_cache_stats (under mu) */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* ------------------------------------------------------------- jobs -- */

static void job_free(sched_job *j) {
    if (!j) return;
    free(j->hist);
    if (j->sampler) lfm_sampler_free(j->sampler);
    lfm_constraint_free(j->constraint);
    lfm_stop_free(&j->stop);
    pc_marks_free(&j->marks);
    free(j);
}

static void emit(const sched_job *j, lfm_event_type type, const char *text, size_t len,
                 lfm_finish finish, const char *error) {
    lfm_event ev = {
        .type = type,
        .job_id = j->id,
        .text = text,
        .len = len,
        .finish = finish,
        .error = error,
        .n_prompt = j->n_prompt,
        .n_generated = j->n_generated,
        .ttft_ms = j->t_first >= 0 ? j->t_first - j->t_submit : 0.0,
        .n_cached = j->n_cached,
    };
    j->cb(j->user, &ev);
}

/* Releases a running job's slot, reports DONE and frees the job. For a
 * normal end (STOP/LENGTH) held text is released first. */
static void job_finish(lfm_sched *s, sched_job *j, lfm_finish finish, const char *error) {
    if ((finish == LFM_FINISH_STOP || finish == LFM_FINISH_LENGTH) && s->tok) {
        tg_buf_clear(&s->piece);
        tg_buf_clear(&s->text);
        lfm_detok_flush(&j->detok, &s->piece);
        if (lfm_stop_push(&j->stop, s->piece.data, s->piece.len, &s->text))
            finish = LFM_FINISH_STOP;
        lfm_stop_flush(&j->stop, &s->text);
        if (s->text.len) emit(j, LFM_EV_TEXT, s->text.data, s->text.len, LFM_FINISH_NONE, NULL);
    }
    /* A started job's sequence holds exactly hist[0, n_fed) between steps
     * (an error may have left it half-written). */
    if (s->pc && !j->fresh && finish != LFM_FINISH_ERROR &&
        lfm_seq_pos(s->seqs[j->slot]) == j->n_fed)
        pc_insert(s->pc, j->hist, j->n_fed, s->seqs[j->slot], &j->marks);
    pthread_mutex_lock(&s->mu);
    s->active[j->slot] = NULL;
    s->n_active--;
    if (j->cancel) s->n_active_canceled--;
    pthread_mutex_unlock(&s->mu);
    emit(j, LFM_EV_DONE, NULL, 0, finish, error);
    job_free(j);
}

/* Gets a freshly admitted job ready to run (scheduler thread, no lock). */
static void job_start(lfm_sched *s, sched_job *j) {
    j->fresh = false;
    lfm_seq_reset(s->seqs[j->slot]);
    j->n_fed = j->n_cached = pc_restore(s->pc, j->hist, j->n_prompt, s->seqs[j->slot]);
    lfm_detok_init(&j->detok);
}

/* Handles the token just sampled for j. Returns true when j finished. */
static bool job_take_token(lfm_sched *s, sched_job *j, int32_t tok) {
    if (j->t_first < 0) j->t_first = now_ms();
    j->hist[j->n_hist++] = tok;
    j->n_generated++;
    if (s->tok && lfm_token_is_eog(s->tok, tok)) {
        job_finish(s, j, LFM_FINISH_STOP, NULL);
        return true;
    }
    if (s->tok) {
        tg_buf_clear(&s->piece);
        tg_buf_clear(&s->text);
        lfm_detok_push(&j->detok, s->tok, tok, &s->piece);
        bool stopped = lfm_stop_push(&j->stop, s->piece.data, s->piece.len, &s->text);
        if (s->text.len) emit(j, LFM_EV_TEXT, s->text.data, s->text.len, LFM_FINISH_NONE, NULL);
        if (stopped) {
            job_finish(s, j, LFM_FINISH_STOP, NULL);
            return true;
        }
    }
    if ((j->max_tokens > 0 && j->n_generated >= j->max_tokens) || j->n_hist >= j->hist_cap) {
        job_finish(s, j, LFM_FINISH_LENGTH, NULL);
        return true;
    }
    return false;
}

/* Reports the token just sampled with its logprobs, computed from the raw
 * logits row saved before sampling (see lfm_logprobs for why raw). */
static void emit_token(lfm_sched *s, const sched_job *j, int32_t tok) {
    int32_t ids[LFM_MAX_TOP_LOGPROBS];
    float lps[LFM_MAX_TOP_LOGPROBS];
    float lp = 0.0f;
    int n = lfm_logprobs(s->raw, s->n_vocab, tok, j->top_logprobs, &lp, ids, lps);
    lfm_event ev = {
        .type = LFM_EV_TOKEN,
        .job_id = j->id,
        .n_prompt = j->n_prompt,
        .n_generated = j->n_generated + 1,
        .ttft_ms = j->t_first >= 0 ? j->t_first - j->t_submit : 0.0,
        .token = tok,
        .eog = s->tok && lfm_token_is_eog(s->tok, tok),
        .logprob = lp,
        .n_top = n > 0 ? n : 0,
        .top_ids = ids,
        .top_logprobs = lps,
    };
    j->cb(j->user, &ev);
}

/* Sets every token j's constraint refuses to -inf. false: none allowed. */
static bool apply_constraint(lfm_sched *s, sched_job *j, float *lg) {
    if (lfm_constraint_mask(j->constraint, s->mask) <= 0) return false;
    int words = (s->n_vocab + 31) / 32;
    for (int w = 0; w < words; w++) {
        uint32_t m = s->mask[w];
        if (m == UINT32_MAX) continue;
        int base = w * 32, end = base + 32 < s->n_vocab ? base + 32 : s->n_vocab;
        for (int i = base; i < end; i++)
            if (!(m >> (i - base) & 1)) lg[i] = -INFINITY;
    }
    return true;
}

/* ------------------------------------------------------------- step -- */

/* Fills s->order with the slots of running jobs, oldest admission first
 * (insertion sort: at most max_active entries, nearly sorted already). */
static int running_in_order(lfm_sched *s) {
    int n = 0;
    for (int i = 0; i < s->max_active; i++) {
        if (!s->active[i]) continue;
        int k = n++;
        while (k > 0 && s->active[s->order[k - 1]]->admit_seq > s->active[i]->admit_seq) {
            s->order[k] = s->order[k - 1];
            k--;
        }
        s->order[k] = i;
    }
    return n;
}

/* One batched evaluation over every running job, then sampling. */
static void sched_step(lfm_sched *s) {
    int rows = 0, budget = SCHED_PREFILL_CHUNK;
    int take[SCHED_MAX_ACTIVE] = {0};
    int n_run = running_in_order(s);
    for (int o = 0; o < n_run; o++) {
        int i = s->order[o];
        sched_job *j = s->active[i];
        int pending = j->n_hist - j->n_fed;
        if (j->n_fed < j->n_prompt) { /* prefill: bounded per step */
            if (pending > budget) pending = budget;
            budget -= pending;
        }
        for (int k = 0; k < pending; k++) {
            int idx = j->n_fed + k;
            s->b_tok[rows] = j->hist[idx];
            s->b_seq[rows] = s->seqs[i];
            s->b_want[rows] = idx == j->n_hist - 1;
            rows++;
        }
        take[i] = pending;
    }
    if (rows == 0) return;
    s->err[0] = 0;
    int rc = lfm_eval(s->m, rows, s->b_tok, s->b_seq, s->b_want, s->logits, s->err, sizeof s->err);
    if (rc != LFM_OK) {
        if (!s->err[0]) snprintf(s->err, sizeof s->err, "%s", lfm_strerror(rc));
        for (int i = 0; i < s->max_active; i++)
            if (s->active[i] && take[i]) job_finish(s, s->active[i], LFM_FINISH_ERROR, s->err);
        return;
    }
    int k = 0; /* logits rows come in row order, i.e. in s->order */
    for (int o = 0; o < n_run; o++) {
        int i = s->order[o];
        sched_job *j = s->active[i];
        if (!take[i]) continue;
        bool prefill = j->n_fed < j->n_prompt;
        j->n_fed += take[i];
        if (prefill && s->pc) pc_mark(s->pc, &j->marks, s->seqs[i]);
        if (j->n_fed != j->n_hist) continue; /* still in prefill: no logits row */
        float *lg = s->logits + (size_t)k * (size_t)s->n_vocab;
        k++;
        /* The sampler edits its row in place (penalties, bias): keep the
         * raw row when logprobs are wanted. */
        if (j->logprobs) memcpy(s->raw, lg, (size_t)s->n_vocab * sizeof *lg);
        if (j->constraint && !apply_constraint(s, j, lg)) {
            job_finish(s, j, LFM_FINISH_ERROR, "the output constraint allows no token");
            continue;
        }
        int32_t tok = lfm_sampler_sample(j->sampler, lg, j->hist, (size_t)j->n_hist);
        if (tok < 0 || tok >= s->n_vocab) {
            job_finish(s, j, LFM_FINISH_ERROR, "sampler returned an invalid token");
            continue;
        }
        if (j->constraint && !lfm_constraint_accept(j->constraint, tok)) {
            job_finish(s, j, LFM_FINISH_ERROR, "sampled a token the constraint refuses");
            continue;
        }
        if (j->logprobs) {
            if (j->t_first < 0) j->t_first = now_ms();
            emit_token(s, j, tok);
        }
        job_take_token(s, j, tok);
    }
}

/* ----------------------------------------------------------- thread -- */

static void *sched_main(void *arg) {
    lfm_sched *s = arg;
    for (;;) {
        sched_job *dead;
        pthread_mutex_lock(&s->mu);
        pc_get_stats(s->pc, &s->pc_seen); /* the last step's counters */
        while (!s->stopping && s->q_len == 0 && s->n_active == 0 && !s->canceled)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        /* Canceled while waiting: lfm_sched_cancel already took them out
         * of the queue; reported below. */
        dead = s->canceled;
        s->canceled = NULL;
        /* Admit waiting jobs into free slots, oldest first. */
        for (int i = 0; i < s->max_active && s->q_head; i++) {
            if (s->active[i]) continue;
            sched_job *j = s->q_head;
            s->q_head = j->next;
            if (!s->q_head) s->q_tail = NULL;
            s->q_len--;
            j->next = NULL;
            j->slot = i;
            j->fresh = true;
            j->admit_seq = ++s->next_admit;
            s->active[i] = j;
            s->n_active++;
        }
        for (int i = 0; i < s->max_active; i++)
            if (s->active[i]) s->active[i]->cancel_seen = s->active[i]->cancel;
        pthread_mutex_unlock(&s->mu);

        while (dead) {
            sched_job *j = dead;
            dead = j->next;
            emit(j, LFM_EV_DONE, NULL, 0, LFM_FINISH_CANCELED, NULL);
            job_free(j);
        }
        for (int i = 0; i < s->max_active; i++) {
            sched_job *j = s->active[i];
            if (!j) continue;
            if (j->cancel_seen) {
                job_finish(s, j, LFM_FINISH_CANCELED, NULL);
                continue;
            }
            if (j->fresh) job_start(s, j);
        }
        sched_step(s);
    }

    /* Shutdown: every job still known gets its DONE. */
    for (int i = 0; i < s->max_active; i++)
        if (s->active[i]) job_finish(s, s->active[i], LFM_FINISH_CANCELED, NULL);
    pthread_mutex_lock(&s->mu);
    sched_job *rest = s->q_head;
    s->q_head = s->q_tail = NULL;
    s->q_len = 0;
    sched_job **tail = &rest;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s->canceled;
    s->canceled = NULL;
    pthread_mutex_unlock(&s->mu);
    while (rest) {
        sched_job *j = rest;
        rest = j->next;
        emit(j, LFM_EV_DONE, NULL, 0, LFM_FINISH_CANCELED, NULL);
        job_free(j);
    }
    return NULL;
}

/* --------------------------------------------------------------- API -- */

void lfm_sched_opts_default(lfm_sched_opts *o) {
    o->max_active = 4;
    o->queue_cap = 64;
    o->n_ctx = 0;
    o->prefix_cache_bytes = (size_t)128 << 20;
}

static void sched_destroy(lfm_sched *s) {
    if (s->seqs)
        for (int i = 0; i < s->max_active; i++)
            if (s->seqs[i]) lfm_seq_free(s->seqs[i]);
    free(s->seqs);
    free(s->active);
    free(s->order);
    free(s->b_tok);
    free(s->b_seq);
    free(s->b_want);
    free(s->logits);
    free(s->raw);
    free(s->mask);
    tg_buf_free(&s->piece);
    tg_buf_free(&s->text);
    pc_free(s->pc);
    free(s);
}

int lfm_sched_new(lfm_model *m, const lfm_sched_opts *o, lfm_sched **out, char *err,
                  size_t errlen) {
    *out = NULL;
    lfm_sched_opts d;
    if (!o) {
        lfm_sched_opts_default(&d);
        o = &d;
    }
    if (!m) {
        set_err(err, errlen, "scheduler: no model");
        return LFM_EINVAL;
    }
    if (o->max_active < 1 || o->max_active > SCHED_MAX_ACTIVE || o->queue_cap < 1 || o->n_ctx < 0) {
        if (err && errlen)
            snprintf(err, errlen,
                     "scheduler: bad options (max_active %d must be 1..%d, queue_cap %d >= 1, "
                     "n_ctx %d >= 0)",
                     o->max_active, SCHED_MAX_ACTIVE, o->queue_cap, o->n_ctx);
        return LFM_EINVAL;
    }
    const lfm_hparams *hp = lfm_model_hparams(m);
    int limit = hp->n_ctx_train > 0 ? hp->n_ctx_train : SCHED_CTX_CAP;
    int n_ctx = o->n_ctx ? o->n_ctx : (limit < SCHED_CTX_CAP ? limit : SCHED_CTX_CAP);
    if (n_ctx > limit) n_ctx = limit;
    if (n_ctx < 2 || hp->n_vocab < 1) {
        set_err(err, errlen, "scheduler: context or vocabulary too small");
        return LFM_EINVAL;
    }

    lfm_sched *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->m = m;
    s->tok = lfm_model_tokenizer(m);
    s->n_vocab = hp->n_vocab;
    s->n_ctx = n_ctx;
    s->max_active = o->max_active;
    s->queue_cap = o->queue_cap;
    s->row_cap = o->max_active + SCHED_PREFILL_CHUNK;
    s->active = calloc((size_t)s->max_active, sizeof *s->active);
    s->seqs = calloc((size_t)s->max_active, sizeof *s->seqs);
    s->order = calloc((size_t)s->max_active, sizeof *s->order);
    s->b_tok = calloc((size_t)s->row_cap, sizeof *s->b_tok);
    s->b_seq = calloc((size_t)s->row_cap, sizeof *s->b_seq);
    s->b_want = calloc((size_t)s->row_cap, sizeof *s->b_want);
    s->logits = malloc((size_t)s->max_active * (size_t)s->n_vocab * sizeof *s->logits);
    s->raw = malloc((size_t)s->n_vocab * sizeof *s->raw);
    s->mask = malloc(((size_t)s->n_vocab + 31) / 32 * sizeof *s->mask);
    if (!s->mask || !s->active || !s->seqs || !s->order || !s->b_tok || !s->b_seq || !s->b_want ||
        !s->logits || !s->raw) {
        sched_destroy(s);
        goto nomem;
    }
    for (int i = 0; i < s->max_active; i++) {
        s->seqs[i] = lfm_seq_new(m, n_ctx);
        if (!s->seqs[i]) {
            sched_destroy(s);
            goto nomem;
        }
    }
    if (o->prefix_cache_bytes && !(s->pc = pc_new(m, o->prefix_cache_bytes))) {
        sched_destroy(s);
        goto nomem;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        sched_destroy(s);
        set_err(err, errlen, "scheduler: cannot start thread");
        return LFM_ENOMEM;
    }
    *out = s;
    return LFM_OK;
nomem:
    set_err(err, errlen, "scheduler: out of memory");
    return LFM_ENOMEM;
}

void lfm_sched_free(lfm_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    sched_destroy(s);
}

int lfm_sched_submit(lfm_sched *s, const lfm_job_params *p, uint64_t *job_id) {
    if (job_id) *job_id = 0;
    if (!s || !p || !p->cb || !p->prompt || p->n_prompt == 0 || (p->n_stop && !p->stop) ||
        p->top_logprobs < 0 || p->top_logprobs > LFM_MAX_TOP_LOGPROBS)
        return LFM_EINVAL;
    if (p->n_prompt >= (size_t)s->n_ctx) return LFM_ECTX;
    for (size_t i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= s->n_vocab) return LFM_EINVAL;
    const lfm_sampler_params *sp = &p->sampling;
    if (!lfm_sampler_params_valid(sp, s->n_vocab)) return LFM_EINVAL;

    /* Everything is copied before taking the lock. */
    sched_job *j = calloc(1, sizeof *j);
    if (!j) return LFM_ENOMEM;
    j->n_prompt = (int)p->n_prompt;
    j->hist_cap = s->n_ctx;
    if (p->max_tokens > 0 && p->max_tokens < s->n_ctx - j->n_prompt)
        j->hist_cap = j->n_prompt + p->max_tokens;
    j->hist = malloc((size_t)j->hist_cap * sizeof *j->hist);
    if (!j->hist) {
        free(j);
        return LFM_ENOMEM;
    }
    memcpy(j->hist, p->prompt, p->n_prompt * sizeof *j->hist);
    j->n_hist = j->n_prompt;
    j->max_tokens = p->max_tokens;
    j->logprobs = p->logprobs;
    j->top_logprobs = p->logprobs ? p->top_logprobs : 0;
    /* The sampler copies the bias arrays (the submitter's memory may go
     * away) and keeps its own seeded state from here on. */
    j->sampler = lfm_sampler_new(sp, s->n_vocab);
    if (!j->sampler) {
        job_free(j);
        return LFM_ENOMEM;
    }
    /* Frequency/presence penalties count generated tokens only. */
    lfm_sampler_set_prompt_len(j->sampler, p->n_prompt);
    j->cb = p->cb;
    j->user = p->user;
    j->constraint = p->constraint; /* ours only once submit succeeds */
    j->t_first = -1;
    lfm_stop_init(&j->stop, p->stop, p->n_stop);

    pthread_mutex_lock(&s->mu);
    int rc = LFM_OK;
    if (s->stopping)
        rc = LFM_ECANCELED;
    else if (s->q_len + s->n_active - s->n_active_canceled >= s->queue_cap + s->max_active)
        rc = LFM_EFULL;
    if (rc == LFM_OK) {
        j->id = ++s->next_id;
        j->t_submit = now_ms();
        if (s->q_tail)
            s->q_tail->next = j;
        else
            s->q_head = j;
        s->q_tail = j;
        s->q_len++;
        if (job_id) *job_id = j->id;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != LFM_OK) {
        j->constraint = NULL; /* the caller keeps it on failure */
        job_free(j);
    }
    return rc;
}

void lfm_sched_cancel(lfm_sched *s, uint64_t job_id) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    bool found = false;
    /* A waiting job leaves the queue now, so the capacity it held is free
     * for the next submit (not one scheduler step later). */
    sched_job *prev = NULL;
    for (sched_job *j = s->q_head; j; prev = j, j = j->next) {
        if (j->id != job_id) continue;
        if (prev)
            prev->next = j->next;
        else
            s->q_head = j->next;
        if (s->q_tail == j) s->q_tail = prev;
        s->q_len--;
        j->cancel = found = true;
        j->next = s->canceled;
        s->canceled = j;
        break;
    }
    for (int i = 0; i < s->max_active && !found; i++) {
        sched_job *j = s->active[i];
        if (!j || j->id != job_id) continue;
        if (!j->cancel) s->n_active_canceled++;
        j->cancel = found = true;
    }
    if (found) pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int lfm_sched_queue_depth(lfm_sched *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->q_len;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int lfm_sched_active(lfm_sched *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->n_active;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int lfm_sched_n_ctx(const lfm_sched *s) {
    return s->n_ctx;
}

void lfm_sched_cache_stats(lfm_sched *s, lfm_cache_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->pc_seen;
    pthread_mutex_unlock(&s->mu);
}
