/* Unit tests for engine/sched.c on the real tiny LFM2 fixtures: greedy output
 * against the reference continuation (incl. a chunked long prefill), seeded
 * sampling alone vs batched, cancel, queue full, context limits, max_tokens,
 * stop strings end to end, and shutdown with jobs in flight. */
/* tg-test-links: lfm */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/lfm_sched.h"
#include "tools/synth/synth.h"

#define F32_MODEL TG_FIXTURES "/models/lfm2-tiny-f32.gguf"
#define Q4_MODEL  TG_FIXTURES "/models/lfm2-tiny-q4_0.gguf"
#define REF_DIR   TG_FIXTURES "/reference/tiny-f32/"

/* ------------------------------------------------------- event sink -- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_buf text;
    int n_text_events;
    int n_done;
    int events_after_done;
    int last_n_generated;
    bool monotonic;   /* n_generated never decreased across events */
    bool split_utf8;  /* a TEXT chunk was not complete UTF-8 */
    lfm_sched *sched; /* when set: record how many jobs ran alongside */
    int max_active;
    lfm_event ev_done; /* copy of the DONE event (error pointer not kept) */
    uint64_t job_id;
} sink;

static void sink_init(sink *k) {
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    k->monotonic = true;
}

static void sink_free(sink *k) {
    tg_buf_free(&k->text);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
}

/* True when (s, n) is whole UTF-8 characters (structure only). */
static bool utf8_whole(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return false;
        for (size_t k = 1; k < len; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

static void on_event(void *user, const lfm_event *ev) {
    sink *k = user;
    int active = k->sched ? lfm_sched_active(k->sched) : 0;
    pthread_mutex_lock(&k->mu);
    if (active > k->max_active) k->max_active = active;
    if (k->n_done) k->events_after_done++;
    if (ev->n_generated < k->last_n_generated) k->monotonic = false;
    k->last_n_generated = ev->n_generated;
    if (ev->type == LFM_EV_TEXT) {
        k->n_text_events++;
        if (!utf8_whole(ev->text, ev->len)) k->split_utf8 = true;
        tg_buf_append(&k->text, ev->text, ev->len);
    } else {
        k->n_done++;
        k->ev_done = *ev;
        k->ev_done.text = NULL;
        k->ev_done.error = NULL;
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* Waits until the sink saw DONE (or at least min_gen tokens when min_gen > 0). */
static bool sink_wait(sink *k, int min_gen) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 300; /* generous: valgrind runs are slow */
    pthread_mutex_lock(&k->mu);
    int rc = 0;
    while (rc != ETIMEDOUT && !k->n_done && !(min_gen > 0 && k->last_n_generated >= min_gen))
        rc = pthread_cond_timedwait(&k->cv, &k->mu, &dl);
    bool ok = k->n_done || (min_gen > 0 && k->last_n_generated >= min_gen);
    pthread_mutex_unlock(&k->mu);
    return ok;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------- fixtures -- */

typedef struct {
    int32_t prompt[1024];
    size_t n_prompt;
    int32_t cont[64];
    size_t n_cont;
} ref_case;

/* Reads a JSON int array under "key" (the fixture files are our own,
 * pretty-printed, flat: a tiny scanner is enough). */
static size_t read_ints(const char *json, const char *key, int32_t *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    p = strchr(p, '[');
    assert_non_null(p);
    p++;
    size_t n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == ',')
            p++;
        if (*p == ']') break;
        char *end;
        long v = strtol(p, &end, 10);
        assert_true(end != p);
        assert_true(n < cap);
        out[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

static void load_case(const char *name, ref_case *c) {
    char path[512];
    snprintf(path, sizeof path, REF_DIR "%s.json", name);
    tg_buf b = TG_BUF_INIT;
    assert_int_equal(tg_buf_read_file(&b, path), 0);
    c->n_prompt = read_ints(b.data, "prompt_tokens", c->prompt, 1024);
    c->n_cont = read_ints(b.data, "continuation", c->cont, 64);
    tg_buf_free(&b);
}

/* The text a token sequence stands for, through the streaming detokenizer. */
static void detok_all(const lfm_model *m, const int32_t *toks, size_t n, tg_buf *out) {
    const lfm_tokenizer *t = lfm_model_tokenizer((lfm_model *)m);
    assert_non_null(t);
    lfm_detok d;
    lfm_detok_init(&d);
    for (size_t i = 0; i < n; i++)
        lfm_detok_push(&d, t, toks[i], out);
    lfm_detok_flush(&d, out);
    if (!out->data) tg_buf_puts(out, "");
}

typedef struct {
    lfm_model *f32;
    lfm_model *q4;
    lfm_model *script; /* scripted: greedily continues any prompt with k_script */
    char script_path[64];
} models;

/* Multi-byte characters, a newline and a control token in the middle. */
static const char k_script[] = "Hello, w\xC3\xB6rld! The answer is 42.\nUser: <|tool_call_start|>"
                               " more \xE6\x97\xA5\xE6\x9C\xAC end";

static int setup(void **state) {
    static models ms;
    lfm_model_opts o;
    lfm_model_opts_default(&o);
    o.n_threads = 2;
    char err[256];
    if (lfm_model_load(F32_MODEL, &o, &ms.f32, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "load: %s\n", err);
        return -1;
    }
    if (lfm_model_load(Q4_MODEL, &o, &ms.q4, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "load: %s\n", err);
        return -1;
    }
    /* Scripted model, written by the engine's synth API into a temp file. */
    snprintf(ms.script_path, sizeof ms.script_path, "/tmp/tg-test-sched-XXXXXX");
    int fd = mkstemp(ms.script_path);
    if (fd < 0) return -1;
    close(fd);
    synth_opts so;
    synth_opts_default(&so);
    so.script = k_script;
    so.script_len = strlen(k_script);
    if (synth_write(&so, ms.script_path, err, sizeof err) != 0 ||
        lfm_model_load(ms.script_path, &o, &ms.script, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "scripted model: %s\n", err);
        unlink(ms.script_path);
        return -1;
    }
    *state = &ms;
    return 0;
}

static int teardown(void **state) {
    models *ms = *state;
    lfm_model_free(ms->f32);
    lfm_model_free(ms->q4);
    lfm_model_free(ms->script);
    unlink(ms->script_path);
    return 0;
}

static lfm_sched *new_sched(lfm_model *m, int max_active, int queue_cap, int n_ctx) {
    lfm_sched_opts o;
    lfm_sched_opts_default(&o);
    o.max_active = max_active;
    o.queue_cap = queue_cap;
    o.n_ctx = n_ctx;
    lfm_sched *s = NULL;
    char err[256];
    int rc = lfm_sched_new(m, &o, &s, err, sizeof err);
    if (rc) fprintf(stderr, "sched_new: %s\n", err);
    assert_int_equal(rc, LFM_OK);
    return s;
}

static void greedy_params(lfm_job_params *p, const int32_t *prompt, size_t n, int max_tokens,
                          sink *k) {
    memset(p, 0, sizeof *p);
    p->prompt = prompt;
    p->n_prompt = n;
    p->max_tokens = max_tokens;
    lfm_sampler_defaults(&p->sampling);
    p->sampling.temperature = 0;
    p->sampling.repeat_penalty = 1;
    p->sampling.min_p = 0;
    p->sampling.seed = 1;
    p->cb = on_event;
    p->user = k;
}

/* ------------------------------------------------------------- tests -- */

/* Greedy through the scheduler reproduces the reference continuation (the
 * text of those tokens, their exact count and finish LENGTH). */
static void check_greedy_case(lfm_model *m, const char *name) {
    ref_case c;
    load_case(name, &c);
    tg_buf want = TG_BUF_INIT;
    detok_all(m, c.cont, c.n_cont, &want);

    lfm_sched *s = new_sched(m, 2, 4, 0);
    sink k;
    sink_init(&k);
    lfm_job_params p;
    greedy_params(&p, c.prompt, c.n_prompt, (int)c.n_cont, &k);
    uint64_t id = 0;
    assert_int_equal(lfm_sched_submit(s, &p, &id), LFM_OK);
    assert_true(id > 0);
    assert_true(sink_wait(&k, 0));
    assert_int_equal(k.n_done, 1);
    assert_int_equal(k.ev_done.finish, LFM_FINISH_LENGTH);
    assert_int_equal(k.ev_done.n_generated, (int)c.n_cont);
    assert_int_equal(k.ev_done.n_prompt, (int)c.n_prompt);
    assert_int_equal(k.ev_done.job_id, id);
    assert_true(k.ev_done.ttft_ms > 0);
    assert_true(k.monotonic);
    assert_true(k.text.data != NULL);
    assert_string_equal(k.text.data, want.data);
    lfm_sched_free(s);
    assert_int_equal(k.events_after_done, 0);
    sink_free(&k);
    tg_buf_free(&want);
}

static void test_greedy_hello(void **state) {
    models *ms = *state;
    check_greedy_case(ms->f32, "hello");
}

/* 853 prompt tokens: prefilled in bounded chunks over several steps. */
static void test_greedy_long_chunked_prefill(void **state) {
    models *ms = *state;
    check_greedy_case(ms->f32, "long");
}

/* Same seeded request alone and among 3 other concurrent jobs: same text. */
static void run_sampled(lfm_model *m, const int32_t *prompt, size_t n, uint64_t seed, int n_others,
                        tg_buf *out) {
    static const int32_t other_prompt[] = {1,   300, 301, 302, 303, 304, 305, 306,
                                           307, 308, 309, 310, 311, 312, 313, 314};
    lfm_sched *s = new_sched(m, 4, 8, 0);
    sink k[4];
    lfm_job_params p[4];
    for (int i = 0; i <= n_others; i++) {
        sink_init(&k[i]);
        memset(&p[i], 0, sizeof p[i]);
        lfm_sampler_defaults(&p[i].sampling);
        p[i].sampling.temperature = 3.0f; /* random-model logits are peaky */
        p[i].sampling.top_k = 50;
        p[i].sampling.top_p = 0.95f;
        p[i].sampling.min_p = 0;
        p[i].sampling.repeat_penalty = 1.1f;
        p[i].sampling.repeat_last_n = 16;
        p[i].cb = on_event;
        p[i].user = &k[i];
    }
    /* The job under test; others get different prompts, lengths and seeds
     * and are submitted around it so its batch mates change during its life. */
    p[0].prompt = prompt;
    p[0].n_prompt = n;
    p[0].max_tokens = 24;
    p[0].sampling.seed = seed;
    for (int i = 1; i <= n_others; i++) {
        p[i].prompt = other_prompt;
        p[i].n_prompt = (size_t)(3 + 3 * i);
        p[i].max_tokens = 6 + 9 * i;
        p[i].sampling.seed = seed + 1000 * (uint64_t)i;
    }
    k[0].sched = s;
    if (n_others) assert_int_equal(lfm_sched_submit(s, &p[1], NULL), LFM_OK);
    assert_int_equal(lfm_sched_submit(s, &p[0], NULL), LFM_OK);
    for (int i = 2; i <= n_others; i++)
        assert_int_equal(lfm_sched_submit(s, &p[i], NULL), LFM_OK);
    for (int i = 0; i <= n_others; i++) {
        assert_true(sink_wait(&k[i], 0));
        assert_int_equal(k[i].n_done, 1);
        /* Sampling may hit an EOG token before max_tokens. */
        if (k[i].ev_done.finish == LFM_FINISH_LENGTH)
            assert_int_equal(k[i].ev_done.n_generated, p[i].max_tokens);
        else
            assert_int_equal(k[i].ev_done.finish, LFM_FINISH_STOP);
        assert_true(k[i].ev_done.n_generated <= p[i].max_tokens);
    }
    /* Batched really means batched: others were running beside job 0. */
    if (n_others) assert_true(k[0].max_active >= 3);
    /* The record compared between runs: finish, count and text. */
    tg_buf_printf(out, "%d/%d:", (int)k[0].ev_done.finish, k[0].ev_done.n_generated);
    if (k[0].text.len) tg_buf_append(out, k[0].text.data, k[0].text.len);
    lfm_sched_free(s);
    for (int i = 0; i <= n_others; i++)
        sink_free(&k[i]);
}

static void test_seeded_alone_vs_batched(void **state) {
    models *ms = *state;
    ref_case c;
    load_case("hello", &c);
    lfm_model *mods[2] = {ms->f32, ms->q4};
    for (int mi = 0; mi < 2; mi++) {
        tg_buf alone = TG_BUF_INIT, batched = TG_BUF_INIT, other_seed = TG_BUF_INIT;
        run_sampled(mods[mi], c.prompt, c.n_prompt, 42, 0, &alone);
        run_sampled(mods[mi], c.prompt, c.n_prompt, 42, 3, &batched);
        run_sampled(mods[mi], c.prompt, c.n_prompt, 7, 0, &other_seed);
        assert_true(alone.len > 6);
        assert_string_equal(alone.data, batched.data);
        /* The sampling is really random: another seed gives other text. */
        assert_string_not_equal(alone.data, other_seed.data);
        tg_buf_free(&alone);
        tg_buf_free(&batched);
        tg_buf_free(&other_seed);
    }
}

static void test_max_tokens_exact(void **state) {
    models *ms = *state;
    ref_case c;
    load_case("hello", &c);
    lfm_sched *s = new_sched(ms->f32, 1, 1, 0);
    sink k;
    sink_init(&k);
    lfm_job_params p;
    greedy_params(&p, c.prompt, c.n_prompt, 5, &k);
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_OK);
    assert_true(sink_wait(&k, 0));
    assert_int_equal(k.ev_done.finish, LFM_FINISH_LENGTH);
    assert_int_equal(k.ev_done.n_generated, 5);
    tg_buf want = TG_BUF_INIT;
    detok_all(ms->f32, c.cont, 5, &want);
    assert_string_equal(k.text.data ? k.text.data : "", want.data);
    lfm_sched_free(s);
    sink_free(&k);
    tg_buf_free(&want);
}

/* The prompt must leave room for one token; a prompt of n_ctx-1 tokens gets
 * exactly one generated token and finish LENGTH. */
static void test_context_limits(void **state) {
    models *ms = *state;
    ref_case c;
    load_case("long", &c);
    lfm_sched *s = new_sched(ms->f32, 2, 2, 16);
    assert_int_equal(lfm_sched_n_ctx(s), 16);
    sink k;
    sink_init(&k);
    lfm_job_params p;
    greedy_params(&p, c.prompt, 16, 0, &k);
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_ECTX);
    p.n_prompt = 400;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_ECTX);
    p.n_prompt = 15;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_OK);
    assert_true(sink_wait(&k, 0));
    assert_int_equal(k.ev_done.finish, LFM_FINISH_LENGTH);
    assert_int_equal(k.ev_done.n_generated, 1);

    /* Hostile input: empty prompt, out-of-vocabulary token. */
    p.n_prompt = 0;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_EINVAL);
    int32_t bad[2] = {1, 1 << 30};
    p.prompt = bad;
    p.n_prompt = 2;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_EINVAL);
    lfm_sched_free(s);
    sink_free(&k);
}

/* A running job canceled stops and gets exactly one DONE(CANCELED); so does
 * a job canceled while still queued. */
static void test_cancel(void **state) {
    models *ms = *state;
    ref_case c;
    load_case("hello", &c);
    lfm_sched *s = new_sched(ms->f32, 1, 4, 0);
    sink ka, kb;
    sink_init(&ka);
    sink_init(&kb);
    lfm_job_params pa, pb;
    greedy_params(&pa, c.prompt, c.n_prompt, 0, &ka); /* until context end */
    greedy_params(&pb, c.prompt, c.n_prompt, 0, &kb);
    uint64_t ida = 0, idb = 0;
    assert_int_equal(lfm_sched_submit(s, &pa, &ida), LFM_OK);
    assert_true(sink_wait(&ka, 3));
    assert_int_equal(lfm_sched_submit(s, &pb, &idb), LFM_OK);
    assert_true(ida != idb);
    assert_int_equal(lfm_sched_queue_depth(s), 1); /* one slot, A holds it */
    assert_int_equal(lfm_sched_active(s), 1);

    lfm_sched_cancel(s, idb); /* queued */
    assert_true(sink_wait(&kb, 0));
    assert_int_equal(kb.ev_done.finish, LFM_FINISH_CANCELED);
    assert_int_equal(kb.ev_done.n_generated, 0);
    assert_int_equal(kb.n_text_events, 0);
    assert_int_equal(ka.n_done, 0); /* A still running */

    /* Cancel while holding the sink lock: the scheduler cannot report (and so
     * cannot finish) another token until we let go, so `seen` is exact up to
     * the token in flight and tokens that produced no text yet. */
    pthread_mutex_lock(&ka.mu);
    int seen = ka.last_n_generated;
    lfm_sched_cancel(s, ida);
    pthread_mutex_unlock(&ka.mu);
    assert_true(sink_wait(&ka, 0));
    assert_int_equal(ka.ev_done.finish, LFM_FINISH_CANCELED);
    assert_true(ka.ev_done.n_generated >= 3);
    assert_true(ka.ev_done.n_generated <= seen + 3);
    lfm_sched_cancel(s, ida);  /* already gone: no-op */
    lfm_sched_cancel(s, 9999); /* unknown: no-op */
    sleep_ms(50);
    assert_int_equal(lfm_sched_active(s), 0);
    lfm_sched_free(s);
    assert_int_equal(ka.n_done, 1);
    assert_int_equal(kb.n_done, 1);
    assert_int_equal(ka.events_after_done, 0);
    assert_int_equal(kb.events_after_done, 0);
    sink_free(&ka);
    sink_free(&kb);
}

static void test_queue_full(void **state) {
    models *ms = *state;
    ref_case c;
    load_case("hello", &c);
    lfm_sched *s = new_sched(ms->f32, 1, 1, 0);
    sink k[3];
    lfm_job_params p[3];
    uint64_t id[3] = {0};
    for (int i = 0; i < 3; i++) {
        sink_init(&k[i]);
        greedy_params(&p[i], c.prompt, c.n_prompt, 0, &k[i]);
    }
    assert_int_equal(lfm_sched_submit(s, &p[0], &id[0]), LFM_OK);
    assert_true(sink_wait(&k[0], 1)); /* admitted: the queue is empty again */
    assert_int_equal(lfm_sched_submit(s, &p[1], &id[1]), LFM_OK);
    assert_int_equal(lfm_sched_submit(s, &p[2], &id[2]), LFM_EFULL);
    assert_int_equal(id[2], 0);
    assert_int_equal(lfm_sched_queue_depth(s), 1);
    /* A queued job canceled frees its queue place at once: the very next
     * submit fits, without waiting for a scheduler step (issue 13). */
    lfm_sched_cancel(s, id[1]);
    assert_int_equal(lfm_sched_queue_depth(s), 0);
    sink k3;
    lfm_job_params p3;
    uint64_t id3 = 0;
    sink_init(&k3);
    greedy_params(&p3, c.prompt, c.n_prompt, 0, &k3);
    assert_int_equal(lfm_sched_submit(s, &p3, &id3), LFM_OK);
    lfm_sched_cancel(s, id[0]);
    lfm_sched_cancel(s, id3);
    assert_true(sink_wait(&k[0], 0));
    assert_true(sink_wait(&k[1], 0));
    assert_true(sink_wait(&k3, 0));
    lfm_sched_free(s);
    assert_int_equal(k[0].n_done, 1);
    assert_int_equal(k[1].n_done, 1);
    assert_int_equal(k3.n_done, 1);
    assert_int_equal(k[2].n_done, 0); /* rejected: no events at all */
    assert_int_equal(k[2].n_text_events, 0);
    for (int i = 0; i < 3; i++)
        sink_free(&k[i]);
    sink_free(&k3);
}

/* Stop string cut out of the greedy text: the output is exactly what comes
 * before its first occurrence, even when it spans tokens. */
static void test_stop_strings_end_to_end(void **state) {
    models *ms = *state;
    ref_case c;
    load_case("hello", &c);
    tg_buf full = TG_BUF_INIT;
    detok_all(ms->f32, c.cont, c.n_cont, &full);
    assert_true(full.len >= 12);
    /* A 6-byte window from the middle (moved to whole UTF-8 characters). */
    size_t a = full.len / 3, e;
    while (a > 0 && ((unsigned char)full.data[a] & 0xC0) == 0x80)
        a--;
    e = a + 6;
    while (e < full.len && ((unsigned char)full.data[e] & 0xC0) == 0x80)
        e++;
    char stop[64];
    snprintf(stop, sizeof stop, "%.*s", (int)(e - a), full.data + a);
    const char *first = strstr(full.data, stop);
    assert_non_null(first);
    size_t want_len = (size_t)(first - full.data);

    lfm_sched *s = new_sched(ms->f32, 2, 2, 0);
    sink k;
    sink_init(&k);
    lfm_job_params p;
    greedy_params(&p, c.prompt, c.n_prompt, (int)c.n_cont, &k);
    const char *stops[] = {"never-appears-zzz", stop};
    p.stop = stops;
    p.n_stop = 2;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_OK);
    assert_true(sink_wait(&k, 0));
    assert_int_equal(k.ev_done.finish, LFM_FINISH_STOP);
    assert_true(k.ev_done.n_generated < (int)c.n_cont);
    assert_int_equal(k.text.len, want_len);
    if (want_len) assert_memory_equal(k.text.data, full.data, want_len);
    lfm_sched_free(s);
    sink_free(&k);
    tg_buf_free(&full);
}

/* Freeing the scheduler with running and queued jobs: one DONE(CANCELED) each. */
static void test_free_with_jobs(void **state) {
    models *ms = *state;
    ref_case c;
    load_case("hello", &c);
    lfm_sched *s = new_sched(ms->q4, 2, 8, 0);
    sink k[5];
    lfm_job_params p[5];
    for (int i = 0; i < 5; i++) {
        sink_init(&k[i]);
        greedy_params(&p[i], c.prompt, c.n_prompt, 0, &k[i]);
        assert_int_equal(lfm_sched_submit(s, &p[i], NULL), LFM_OK);
    }
    assert_true(sink_wait(&k[0], 2));
    lfm_sched_free(s);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(k[i].n_done, 1);
        assert_int_equal(k[i].ev_done.finish, LFM_FINISH_CANCELED);
        assert_int_equal(k[i].events_after_done, 0);
        sink_free(&k[i]);
    }
}

/* While a long prompt is prefilled (853 tokens, in chunks over 4 steps) a
 * job that is already decoding keeps getting a token every step. Without
 * chunking it would get one or two tokens while the prompt is evaluated. */
typedef struct {
    sink base;
    sink *other;
    int other_gen_at_done; /* other's n_generated when this job finished */
} watch_sink;

static void on_watch_event(void *user, const lfm_event *ev) {
    watch_sink *w = user;
    if (ev->type == LFM_EV_DONE) {
        pthread_mutex_lock(&w->other->mu);
        w->other_gen_at_done = w->other->last_n_generated;
        pthread_mutex_unlock(&w->other->mu);
    }
    on_event(&w->base, ev);
}

static void test_prefill_does_not_stall_decode(void **state) {
    models *ms = *state;
    ref_case hello, lng;
    load_case("hello", &hello);
    load_case("long", &lng);
    lfm_sched *s = new_sched(ms->f32, 2, 2, 0);
    sink ka;
    sink_init(&ka);
    watch_sink kb;
    sink_init(&kb.base);
    kb.other = &ka;
    lfm_job_params pa, pb;
    greedy_params(&pa, hello.prompt, hello.n_prompt, 0, &ka);
    greedy_params(&pb, lng.prompt, lng.n_prompt, 1, &kb.base);
    pb.cb = on_watch_event;
    pb.user = &kb;
    uint64_t ida = 0;
    assert_int_equal(lfm_sched_submit(s, &pa, &ida), LFM_OK);
    assert_true(sink_wait(&ka, 3));
    pthread_mutex_lock(&ka.mu);
    int before = ka.last_n_generated;
    assert_int_equal(lfm_sched_submit(s, &pb, NULL), LFM_OK);
    pthread_mutex_unlock(&ka.mu);
    assert_true(sink_wait(&kb.base, 0));
    assert_int_equal(kb.base.ev_done.finish, LFM_FINISH_LENGTH);
    assert_int_equal(kb.base.ev_done.n_generated, 1);
    assert_true(kb.other_gen_at_done - before >= 3);
    lfm_sched_cancel(s, ida);
    assert_true(sink_wait(&ka, 0));
    lfm_sched_free(s);
    sink_free(&ka);
    sink_free(&kb.base);
}

/* Runs the scripted model with the given stops; returns the finish reason
 * and appends the text. */
static lfm_finish run_script(lfm_model *m, const char *const *stops, size_t n_stops, bool greedy,
                             tg_buf *out, int *n_gen) {
    static const int32_t prompt[] = {1, 20, 21};
    lfm_sched *s = new_sched(m, 2, 2, 0);
    sink k;
    sink_init(&k);
    lfm_job_params p;
    greedy_params(&p, prompt, 3, 0, &k);
    if (!greedy) lfm_sampler_defaults(&p.sampling); /* LFM2 defaults, clock seed */
    p.stop = stops;
    p.n_stop = n_stops;
    assert_int_equal(lfm_sched_submit(s, &p, NULL), LFM_OK);
    assert_true(sink_wait(&k, 0));
    lfm_sched_free(s);
    assert_int_equal(k.n_done, 1);
    assert_false(k.split_utf8);
    if (k.text.len) tg_buf_append(out, k.text.data, k.text.len);
    if (!out->data) tg_buf_puts(out, "");
    lfm_finish f = k.ev_done.finish;
    if (n_gen) *n_gen = k.ev_done.n_generated;
    sink_free(&k);
    return f;
}

/* The scripted model's text ends with <|im_end|>: finish STOP on the EOG
 * token, which is counted but not shown. Sampled with LFM2 defaults too. */
static void test_script_eog(void **state) {
    models *ms = *state;
    for (int greedy = 1; greedy >= 0; greedy--) {
        tg_buf out = TG_BUF_INIT;
        int n_gen = 0;
        assert_int_equal(run_script(ms->script, NULL, 0, greedy, &out, &n_gen), LFM_FINISH_STOP);
        assert_string_equal(out.data, k_script);
        assert_true(n_gen >= 2);
        tg_buf_free(&out);
    }
}

/* Stop strings cut exactly, across token boundaries and inside multi-byte
 * text; the earliest match of several wins. */
static void test_script_stop_strings(void **state) {
    models *ms = *state;
    static const struct {
        const char *stop[2];
        size_t n;
        size_t want_len; /* bytes of k_script before the cut; SIZE_MAX = no stop */
    } cases[] = {
        {{"\nUser:"}, 1, 32},
        {{"\xC3\xB6"}, 1, 8},         /* the o-umlaut */
        {{"\xE6\x9C\xAC end"}, 1, 0}, /* filled in below: before the 2nd CJK char */
        {{"42.\nUs"}, 1, 29},
        {{"Hel"}, 1, 0}, /* at the very start: nothing emitted */
        {{"zzz", "answer"}, 2, 19},
        {{"<|tool_call_start|>"}, 1, 39},
        {{"nope", "not there"}, 2, (size_t)-1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t want = cases[i].want_len;
        if (i == 2) want = (size_t)(strstr(k_script, "\xE6\x9C\xAC") - k_script);
        tg_buf out = TG_BUF_INIT;
        lfm_finish f = run_script(ms->script, cases[i].stop, cases[i].n, true, &out, NULL);
        assert_int_equal(f, LFM_FINISH_STOP);
        if (want == (size_t)-1) {
            assert_string_equal(out.data, k_script);
        } else {
            assert_int_equal(out.len, want);
            assert_memory_equal(out.data, k_script, want);
        }
        tg_buf_free(&out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_hello),
        cmocka_unit_test(test_greedy_long_chunked_prefill),
        cmocka_unit_test(test_seeded_alone_vs_batched),
        cmocka_unit_test(test_max_tokens_exact),
        cmocka_unit_test(test_context_limits),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_stop_strings_end_to_end),
        cmocka_unit_test(test_free_with_jobs),
        cmocka_unit_test(test_prefill_does_not_stall_decode),
        cmocka_unit_test(test_script_eog),
        cmocka_unit_test(test_script_stop_strings),
    };
    /* TG_TEST_FILTER=test_cancel runs one test (e.g. under valgrind). */
    if (getenv("TG_TEST_FILTER")) cmocka_set_test_filter(getenv("TG_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
