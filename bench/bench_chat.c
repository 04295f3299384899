/* bench_chat: time to first token of each turn of a multi-turn chat, with
 * and without the scheduler's prefix cache, in one run.
 *
 *   bench_chat [MODEL.gguf] [--threads N] [--turns 5] [--system 512]
 *              [--user 64] [--reply 32] [--rounds 1]
 *
 * A chat at token level: turn 1's prompt is a --system-token system prompt
 * plus a --user-token message; turn k resends turn k-1's prompt and reply
 * and adds a new message (what OpenAI-style clients do). Each reply is
 * --reply tokens, seeded sampling. Rounds alternate cache off / on and the
 * best TTFT of each turn is kept (a shared machine is noisy). The replies
 * must be the same token for token with and without the cache; the bench
 * fails otherwise. Without MODEL it uses bench_engine's synthetic 350M Q4_0
 * (/tmp/tidegate-bench-350m-q4_0-<uid>.gguf, made when missing). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/lfm_sched.h"
#include "tools/synth/synth.h"

#define MAX_TURNS 16

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t *tok; /* generated tokens (cap) */
    int n_tok, cap;
    bool done;
    double ttft_ms;
    int n_cached;
} sink;

static void on_ev(void *user, const lfm_event *ev) {
    sink *k = user;
    pthread_mutex_lock(&k->mu);
    if (ev->type == LFM_EV_TOKEN && k->n_tok < k->cap) k->tok[k->n_tok++] = ev->token;
    if (ev->type == LFM_EV_DONE) {
        k->done = true;
        k->ttft_ms = ev->ttft_ms;
        k->n_cached = ev->n_cached;
        pthread_cond_signal(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
}

typedef struct {
    int turns, system, user, reply;
} chat_shape;

typedef struct {
    double ttft_ms[MAX_TURNS];
    int n_prompt[MAX_TURNS], n_cached[MAX_TURNS];
    int32_t *replies; /* turns * reply */
    int n_reply[MAX_TURNS];
} chat_result;

static void fill_tokens(int32_t *t, int n, uint32_t seed, int n_vocab) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        t[i] = (int32_t)(1 + (seed >> 8) % (uint32_t)(n_vocab - 1));
    }
}

static int run_chat(lfm_model *m, const chat_shape *sh, size_t cache_bytes, chat_result *r) {
    int n_vocab = lfm_model_hparams(m)->n_vocab;
    int total = sh->system + sh->turns * (sh->user + sh->reply) + 1;
    lfm_sched_opts o;
    lfm_sched_opts_default(&o);
    o.max_active = 1;
    o.n_ctx = total + 8;
    o.prefix_cache_bytes = cache_bytes;
    lfm_sched *s = NULL;
    char err[256];
    if (lfm_sched_new(m, &o, &s, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "sched: %s\n", err);
        return -1;
    }
    int32_t *hist = malloc((size_t)total * sizeof *hist);
    int n = 0, rc = 0;
    fill_tokens(hist, sh->system, 7, n_vocab);
    n = sh->system;
    for (int t = 0; t < sh->turns && rc == 0; t++) {
        fill_tokens(hist + n, sh->user, 100 + (uint32_t)t, n_vocab);
        n += sh->user;
        sink k = {.tok = r->replies + (size_t)t * (size_t)sh->reply, .cap = sh->reply};
        pthread_mutex_init(&k.mu, NULL);
        pthread_cond_init(&k.cv, NULL);
        lfm_job_params p;
        memset(&p, 0, sizeof p);
        p.prompt = hist;
        p.n_prompt = (size_t)n;
        p.max_tokens = sh->reply;
        lfm_sampler_defaults(&p.sampling);
        p.sampling.temperature = 1.0f;
        p.sampling.min_p = 0;
        p.sampling.seed = 42 + (uint64_t)t;
        p.logprobs = true; /* TOKEN events: the ids to compare */
        p.cb = on_ev;
        p.user = &k;
        if (lfm_sched_submit(s, &p, NULL) != LFM_OK) {
            fprintf(stderr, "submit failed\n");
            rc = -1;
        } else {
            pthread_mutex_lock(&k.mu);
            while (!k.done)
                pthread_cond_wait(&k.cv, &k.mu);
            pthread_mutex_unlock(&k.mu);
            r->ttft_ms[t] = k.ttft_ms;
            r->n_prompt[t] = n;
            r->n_cached[t] = k.n_cached;
            r->n_reply[t] = k.n_tok;
            memcpy(hist + n, k.tok, (size_t)k.n_tok * sizeof *hist);
            n += k.n_tok;
        }
        pthread_mutex_destroy(&k.mu);
        pthread_cond_destroy(&k.cv);
    }
    lfm_sched_free(s);
    free(hist);
    return rc;
}

static int synth_350m(const char *path) {
    synth_opts so;
    synth_opts_default(&so);
    char err[256];
    if (synth_preset("350m", &so) != 0) return -1;
    snprintf(so.type, sizeof so.type, "q4_0");
    fprintf(stderr, "synthesizing %s ...\n", path);
    if (synth_write(&so, path, err, sizeof err) != 0) {
        fprintf(stderr, "synth: %s\n", err);
        return -1;
    }
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_chat [MODEL.gguf] [--threads N] [--turns T] [--system N] "
                    "[--user N] [--reply N] [--rounds R]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int n_threads = 0, rounds = 1;
    chat_shape sh = {5, 512, 64, 32};
    for (int i = 1; i < argc; i++) {
        int *dst = !strcmp(argv[i], "--threads")  ? &n_threads
                   : !strcmp(argv[i], "--turns")  ? &sh.turns
                   : !strcmp(argv[i], "--system") ? &sh.system
                   : !strcmp(argv[i], "--user")   ? &sh.user
                   : !strcmp(argv[i], "--reply")  ? &sh.reply
                   : !strcmp(argv[i], "--rounds") ? &rounds
                                                  : NULL;
        if (dst && i + 1 < argc)
            *dst = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            return usage();
    }
    if (sh.turns < 1 || sh.turns > MAX_TURNS || sh.system < 0 || sh.user < 1 || sh.reply < 1 ||
        rounds < 1)
        return usage();
    char synth_path[256];
    if (!path) {
        snprintf(synth_path, sizeof synth_path, "/tmp/tidegate-bench-350m-q4_0-%d.gguf",
                 (int)getuid());
        if (access(synth_path, R_OK) != 0 && synth_350m(synth_path)) return 1;
        path = synth_path;
    }
    lfm_model_opts mo;
    lfm_model_opts_default(&mo);
    mo.n_threads = n_threads;
    mo.kv_type = LFM_KV_F16;
    lfm_model *m = NULL;
    char err[512];
    if (lfm_model_load(path, &mo, &m, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "bench_chat: %s\n", err);
        return 1;
    }
    printf("model: %s, threads %d; chat: %d turns, system %d, user %d, reply %d tokens\n", path,
           lfm_model_threads(m), sh.turns, sh.system, sh.user, sh.reply);
    chat_result best[2], cur;
    size_t rbytes = (size_t)sh.turns * (size_t)sh.reply * sizeof(int32_t);
    int32_t *ref = malloc(rbytes);
    cur.replies = malloc(rbytes);
    for (int c = 0; c < 2; c++)
        for (int t = 0; t < sh.turns; t++)
            best[c].ttft_ms[t] = 1e300;
    int rc = 0;
    for (int round = 0; round < rounds && rc == 0; round++) {
        for (int c = 0; c < 2 && rc == 0; c++) {
            memset(cur.replies, 0, rbytes);
            if (run_chat(m, &sh, c ? (size_t)512 << 20 : 0, &cur) != 0) {
                rc = 1;
                break;
            }
            if (round == 0 && c == 0)
                memcpy(ref, cur.replies, rbytes);
            else if (memcmp(ref, cur.replies, rbytes) != 0) {
                fprintf(stderr, "bench_chat: replies differ (cache %s, round %d)\n",
                        c ? "on" : "off", round + 1);
                rc = 1;
            }
            for (int t = 0; t < sh.turns; t++) {
                if (cur.ttft_ms[t] < best[c].ttft_ms[t]) best[c].ttft_ms[t] = cur.ttft_ms[t];
                best[c].n_prompt[t] = cur.n_prompt[t];
                best[c].n_cached[t] = cur.n_cached[t];
            }
            fprintf(stderr, "round %d cache %s: turn %d TTFT %.0f ms\n", round + 1,
                    c ? "on" : "off", sh.turns, cur.ttft_ms[sh.turns - 1]);
        }
    }
    if (rc == 0) {
        printf("turn  prompt  cached  TTFT off (ms)  TTFT on (ms)  speedup\n");
        for (int t = 0; t < sh.turns; t++)
            printf("%4d  %6d  %6d  %13.1f  %12.1f  %6.1fx\n", t + 1, best[1].n_prompt[t],
                   best[1].n_cached[t], best[0].ttft_ms[t], best[1].ttft_ms[t],
                   best[0].ttft_ms[t] / best[1].ttft_ms[t]);
        printf("replies identical with and without the cache: yes\n");
    }
    free(ref);
    free(cur.replies);
    lfm_model_free(m);
    return rc;
}
