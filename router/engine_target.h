/* engine_target: the embedded LFM2 engine as a routing target.
 *
 * A run takes a tg_oai_request from the router's caller and owns it from
 * then on. On the loop thread it checks logit_bias against the vocabulary;
 * on libuv's thread pool it renders the chat template and tokenizes (a
 * large prompt must not stall the loop); back on the loop it checks the
 * context and submits to the scheduler through the bridge. Then it reports,
 * always on the loop thread:
 *
 *   on_error   the run failed before starting (status 400/429/500/503 in
 *              the error); the run is freed after it returns
 *   on_start   the job is queued: the response may begin; n_prompt counts
 *              the conversation's tokens (a continuation's answer so far,
 *              tokenized after it, is not counted: it is completion)
 *   on_text    generated text (complete UTF-8, stop strings removed)
 *   on_token   a sampled token with its logprobs (requests with logprobs;
 *              may be NULL)
 *   on_done    the job ended (finish reason and counts); the run is freed
 *              after it returns
 *
 * rt_engine_detach() is for an owner that goes away first (client gone,
 * shutdown): no callback reaches it afterwards, generation stops at the
 * next token and the run frees itself when the engine lets go of it.
 *
 * The OpenAI -> LFM2 mapping (sampling parameters, messages, logit_bias
 * bounds) lives here too: it is what the engine target means by a request. */
#ifndef RT_ENGINE_TARGET_H
#define RT_ENGINE_TARGET_H

#include <stddef.h>

#include <uv.h>

#include "engine/lfm.h"
#include "engine/lfm_sched.h"
#include "router/engine_bridge.h"
#include "router/request.h"

/* The engine target's state: model, tokenizer, template family, scheduler
 * and its bridge (filled by process wiring once the model is loaded), and
 * the prompts being prepared on the thread pool. */
typedef struct {
    uv_loop_t *loop;
    lfm_model *model;
    const lfm_tokenizer *tok;
    lfm_template_kind tmpl;
    lfm_sched *sched;
    tg_bridge *bridge;
    int n_ctx;

    /* Prompts being prepared read the model, so the engine is freed only
     * once this is 0: on_prep_idle tells when a detached run's preparation
     * returns and none is left. */
    size_t n_preparing;
    void (*on_prep_idle)(void *arg);
    void *on_prep_idle_arg;
} rt_engine;

typedef struct rt_engine_run rt_engine_run;

typedef struct {
    void (*on_error)(void *user, const tg_oai_error *e);
    void (*on_start)(void *user, int n_prompt);
    void (*on_text)(void *user, const lfm_event *ev);
    void (*on_done)(void *user, const lfm_event *ev);
    void (*on_token)(void *user, const lfm_event *ev);
} rt_engine_cbs;

/* Starts a run. *req is moved into the run (zeroed in the caller) whatever
 * the outcome. Returns 0 with *out set, or -1 with *err filled (logit_bias
 * outside the vocabulary, the thread pool refused): then no callback runs. */
int rt_engine_run_start(rt_engine *eng, tg_oai_request *req, const rt_engine_cbs *cbs, void *user,
                        rt_engine_run **out, tg_oai_error *err);

/* The owner goes away: no more callbacks; see above. */
void rt_engine_detach(rt_engine_run *run);

/* ------------------------------------------------ OpenAI -> LFM2 mapping -- */

/* Starts from LFM2's defaults (lfm_sampler_defaults) and applies what the
 * caller gave. The bias arrays point into r (the engine copies them). */
void rt_engine_sampling(const tg_oai_request *r, lfm_sampler_params *p);
/* Same from the model's own defaults (lfm_sampler_defaults_for: LFM2.5's
 * model card values for an LFM2.5 model); m NULL = LFM2's. */
void rt_engine_sampling_for(const tg_oai_request *r, const lfm_model *m, lfm_sampler_params *p);
/* The model's template opens <think> in its generation prompt: the prompt
 * gets it too and the output starts inside the reasoning. */
bool rt_engine_opens_think(const rt_engine *eng);

/* Checks logit_bias token ids against the model's vocabulary. Returns 0, or
 * -1 with *err filled (400, param "logit_bias"). */
int rt_engine_check_bias(const tg_oai_request *r, int n_vocab, tg_oai_error *err);

/* Converts the messages to the engine's chat form. The array is malloc'd; the
 * strings point into r. */
lfm_chat_msg *rt_engine_chat_msgs(const tg_oai_request *r);

#endif
