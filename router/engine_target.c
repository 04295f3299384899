/* engine_target: a routed request through the embedded engine. See
 * engine_target.h for the contract. */
#include "router/engine_target.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_engine_run {
    rt_engine *eng;
    tg_oai_request req;
    rt_engine_cbs cbs;
    void *user;
    bool detached;

    /* Prompt preparation (template + tokenizer) on the thread pool. */
    uv_work_t work;
    bool preparing;
    int32_t *ids;
    size_t n_ids;
    size_t n_prefix; /* of n_ids: a continuation's answer so far */
    int prep_rc;
    bool prep_render_failed;
    char prep_err[256];

    tg_bridge_job *job;
};

static void run_free(rt_engine_run *run) {
    tg_oai_request_free(&run->req);
    free(run->ids);
    free(run);
}

/* Reports a failure before start and frees the run. */
static void run_fail(rt_engine_run *run, int status, const char *type, const char *code,
                     const char *param, const char *msg) {
    tg_oai_error e;
    tg_oai_error_set(&e, status, type, code, param, "%s", msg);
    run->cbs.on_error(run->user, &e);
    run_free(run);
}

/* -------------------------------------------------------- engine events -- */

static void on_text(void *user, const lfm_event *ev) {
    rt_engine_run *run = user;
    run->cbs.on_text(run->user, ev);
}

static void on_token(void *user, const lfm_event *ev) {
    rt_engine_run *run = user;
    if (run->cbs.on_token) run->cbs.on_token(run->user, ev);
}

static void on_done(void *user, const lfm_event *ev) {
    rt_engine_run *run = user;
    run->job = NULL; /* the bridge frees it after this returns */
    run->cbs.on_done(run->user, ev);
    run_free(run);
}

/* ------------------------------------------------------------- prompt -- */

/* Worker thread: render the chat template and tokenize. Touches only the
 * run's request (not used by the loop meanwhile) and the read-only
 * tokenizer. */
static void prep_work(uv_work_t *w) {
    rt_engine_run *run = w->data;
    rt_engine *eng = run->eng;
    if (run->req.raw_prompt) { /* legacy completions: the prompt as is, no template */
        run->prep_rc = lfm_tokenize(eng->tok, run->req.raw_prompt, strlen(run->req.raw_prompt),
                                    true, false, &run->ids, &run->n_ids);
        return;
    }
    lfm_chat_msg *msgs = rt_engine_chat_msgs(&run->req);
    /* Message text is tokenized as plain text: a literal "<|im_end|>" in
     * content must not become a control token (role/turn injection). */
    int rc = lfm_chat_tokenize(eng->tok, eng->tmpl, msgs, run->req.n_msgs, run->req.tools_json,
                               true, &run->ids, &run->n_ids, run->prep_err, sizeof run->prep_err);
    free(msgs);
    const char *prefix = run->req.assistant_prefix;
    if (rc == LFM_OK && rt_engine_opens_think(eng) && !(prefix && *prefix)) {
        /* The template's generation prompt ends inside <think> (not for a
         * continuation: that resumes the answer itself). */
        int32_t *open = NULL, *ids;
        size_t n_open = 0;
        if (lfm_tokenize(eng->tok, "<think>", 7, false, true, &open, &n_open) == 0 &&
            (ids = realloc(run->ids, (run->n_ids + n_open) * sizeof *ids)) != NULL) {
            memcpy(ids + run->n_ids, open, n_open * sizeof *ids);
            run->ids = ids;
            run->n_ids += n_open;
        } else {
            rc = LFM_ENOMEM;
        }
        free(open);
    }
    if (rc == LFM_OK && prefix && *prefix) {
        /* A continuation: the answer so far, as plain text (never control
         * tokens), after the generation prompt. */
        int32_t *more = NULL;
        size_t n_more = 0;
        rc = lfm_tokenize(eng->tok, prefix, strlen(prefix), false, false, &more, &n_more);
        if (rc == LFM_OK) {
            int32_t *all = realloc(run->ids, (run->n_ids + n_more) * sizeof *all);
            if (!all) abort();
            memcpy(all + run->n_ids, more, n_more * sizeof *more);
            run->ids = all;
            run->n_ids += n_more;
            run->n_prefix = n_more;
        }
        free(more);
    }
    run->prep_rc = rc;
    /* LFM_EINVAL: the messages could not be rendered (err says why). */
    if (rc == LFM_EINVAL) run->prep_render_failed = true;
}

/* Loop thread: the prompt is ready; check it and submit. */
static void prep_done(uv_work_t *w, int status) {
    rt_engine_run *run = w->data;
    rt_engine *eng = run->eng;
    run->preparing = false;
    eng->n_preparing--;
    if (run->detached) {
        run_free(run);
        /* Shutdown may be waiting for the last worker to leave the model. */
        if (eng->n_preparing == 0 && eng->on_prep_idle) eng->on_prep_idle(eng->on_prep_idle_arg);
        return;
    }
    if (status != 0 || !eng->bridge) {
        run_fail(run, 503, "server_error", "engine_unavailable", NULL,
                 "the engine is not available");
        return;
    }
    if (run->prep_render_failed) {
        run_fail(run, 400, "invalid_request_error", "invalid_messages", "messages",
                 run->prep_err[0] ? run->prep_err
                                  : "messages could not be rendered with the chat template");
        return;
    }
    if (run->prep_rc != LFM_OK) {
        run_fail(run, 500, "server_error", NULL, NULL, "tokenization failed");
        return;
    }
    /* At least one generated token must fit after the prompt. */
    if (run->n_ids >= (size_t)eng->n_ctx) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "This model's maximum context length is %d tokens. However, your messages "
                 "resulted in %zu tokens.",
                 eng->n_ctx, run->n_ids);
        run_fail(run, 400, "invalid_request_error", "context_length_exceeded", "messages", msg);
        return;
    }
    /* The prompt the client sent: a continuation's answer so far is part
     * of the completion, not of the prompt (usage). */
    int n_prompt = (int)(run->n_ids - run->n_prefix);

    lfm_job_params jp = {0};
    jp.prompt = run->ids;
    jp.n_prompt = run->n_ids;
    jp.max_tokens = run->req.has_max_tokens ? run->req.max_tokens : 0;
    rt_engine_sampling_for(&run->req, eng->model, &jp.sampling);
    jp.stop = (const char *const *)run->req.stop;
    jp.n_stop = run->req.n_stop;
    jp.logprobs = run->req.logprobs;
    jp.top_logprobs = run->req.top_logprobs;
    jp.constraint = run->req.constraint;
    tg_bridge_cbs cbs = {on_text, on_done, on_token};
    int rc = tg_bridge_submit(eng->bridge, &jp, &cbs, run, &run->job);
    if (rc == LFM_OK) run->req.constraint = NULL; /* the job owns it now */
    free(run->ids);                               /* copied by submit */
    run->ids = NULL;
    if (rc == LFM_EFULL) {
        run_fail(run, 429, "requests", "rate_limit_exceeded", NULL,
                 "The engine queue is full; retry shortly");
        return;
    }
    if (rc == LFM_ECTX) {
        run_fail(run, 400, "invalid_request_error", "context_length_exceeded", "messages",
                 "the prompt does not fit the model's context");
        return;
    }
    if (rc != LFM_OK) {
        run_fail(run, 500, "server_error", NULL, NULL, lfm_strerror(rc));
        return;
    }
    run->cbs.on_start(run->user, n_prompt);
}

int rt_engine_run_start(rt_engine *eng, tg_oai_request *req, const rt_engine_cbs *cbs, void *user,
                        rt_engine_run **out, tg_oai_error *err) {
    rt_engine_run *run = calloc(1, sizeof *run);
    if (!run) abort();
    run->eng = eng;
    run->req = *req;
    memset(req, 0, sizeof *req);
    run->cbs = *cbs;
    run->user = user;
    *out = NULL;
    /* logit_bias ids can only be checked once the model is known. */
    if (eng->model &&
        rt_engine_check_bias(&run->req, lfm_model_hparams(eng->model)->n_vocab, err) < 0) {
        run_free(run);
        return -1;
    }
    run->work.data = run;
    run->preparing = true;
    eng->n_preparing++;
    if (uv_queue_work(eng->loop, &run->work, prep_work, prep_done) != 0) {
        eng->n_preparing--;
        tg_oai_error_set(err, 500, "server_error", NULL, NULL,
                         "could not queue prompt preparation");
        run_free(run);
        return -1;
    }
    *out = run;
    return 0;
}

void rt_engine_detach(rt_engine_run *run) {
    if (!run) return;
    if (run->preparing) { /* the worker still uses run: prep_done frees it */
        run->detached = true;
        return;
    }
    /* Submitted: the bridge cancels the job at its next token and frees it
     * on DONE without calling back, so the run can go now. */
    if (run->job) tg_bridge_detach(run->job);
    run->job = NULL;
    run_free(run);
}

/* ------------------------------------------------ OpenAI -> LFM2 mapping -- */

int rt_engine_check_bias(const tg_oai_request *r, int n_vocab, tg_oai_error *err) {
    for (size_t i = 0; i < r->n_bias; i++)
        if (r->bias_tokens[i] >= n_vocab) {
            tg_oai_error_set(err, 400, "invalid_request_error", "invalid_value", "logit_bias",
                             "logit_bias token %d is outside the vocabulary (size %d)",
                             (int)r->bias_tokens[i], n_vocab);
            return -1;
        }
    return 0;
}

void rt_engine_sampling(const tg_oai_request *r, lfm_sampler_params *p) {
    rt_engine_sampling_for(r, NULL, p);
}

bool rt_engine_opens_think(const rt_engine *eng) {
    return eng->model && lfm_chat_template_opens_think(lfm_model_chat_template(eng->model));
}

void rt_engine_sampling_for(const tg_oai_request *r, const lfm_model *m, lfm_sampler_params *p) {
    lfm_sampler_defaults_for(m, p);
    if (r->has_temperature) p->temperature = (float)r->temperature;
    if (r->has_top_p) p->top_p = (float)r->top_p;
    if (r->has_seed) p->seed = (uint64_t)r->seed;
    if (r->has_frequency_penalty) p->frequency_penalty = (float)r->frequency_penalty;
    if (r->has_presence_penalty) p->presence_penalty = (float)r->presence_penalty;
    if (r->n_bias) {
        p->bias_tokens = r->bias_tokens;
        p->bias_values = r->bias_values;
        p->n_bias = r->n_bias;
    }
}

lfm_chat_msg *rt_engine_chat_msgs(const tg_oai_request *r) {
    lfm_chat_msg *m = calloc(r->n_msgs ? r->n_msgs : 1, sizeof *m);
    if (!m) abort();
    for (size_t i = 0; i < r->n_msgs; i++) {
        m[i].role = r->msgs[i].role;
        m[i].content = r->msgs[i].content;
        m[i].tool_calls_json = r->msgs[i].tool_calls_json;
    }
    return m;
}
