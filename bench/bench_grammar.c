/* bench_grammar: cost of constrained decoding (build Release).
 *
 *   bench_grammar [MODEL.gguf] [--threads N]
 *
 * Without MODEL it uses (or synthesizes) the random-weight LFM2-350M Q4_0
 * that bench_engine caches in /tmp (65,536-token vocabulary). Measures:
 *   - the vocabulary index build time (once per model);
 *   - mask time per token: random walks through several schemas, choosing
 *     uniformly among the allowed tokens at each step (which keeps the
 *     matcher in every kind of state: keys, strings, numbers, enums,
 *     whitespace), timing only lfm_constraint_mask; average and p99;
 *   - decode tokens/s of one scheduler job with and without a schema
 *     (same seed and prompt, alternated twice), and the slowdown ratio. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/lfm.h"
#include "engine/lfm_grammar.h"
#include "engine/lfm_sched.h"
#include "tools/synth/synth.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const k_schemas[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":"
    "\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"ok\":{\"type\":"
    "\"boolean\"}},\"required\":[\"name\",\"age\",\"tags\",\"ok\"],\"additionalProperties\":false}",
    "{\"type\":\"object\",\"properties\":{\"unit\":{\"enum\":[\"celsius\",\"fahrenheit\"]},\"v\":{"
    "\"type\":\"number\"},\"n\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}},"
    "\"required\":[\"unit\",\"v\",\"n\"],\"additionalProperties\":false}",
    "{\"$defs\":{\"t\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{"
    "\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/t\"}}},\"required\":[\"v\",\"kids\"],"
    "\"additionalProperties\":false}},\"$ref\":\"#/$defs/t\"}",
};

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int n;
    double t_first, t_end;
} sink;

static void on_ev(void *u, const lfm_event *ev) {
    sink *k = u;
    pthread_mutex_lock(&k->mu);
    if (ev->type == LFM_EV_DONE) {
        k->done = true;
        k->n = ev->n_generated;
        k->t_end = now_s();
        pthread_cond_broadcast(&k->cv);
    } else if (k->t_first == 0) {
        k->t_first = now_s();
    }
    pthread_mutex_unlock(&k->mu);
}

/* Decode tok/s of one job (first token excluded: prefill). */
static double run_job(lfm_sched *s, lfm_constraint *c, int n_tok) {
    static const int32_t prompt[] = {1, 300, 301, 302, 303, 304, 305, 306};
    sink k = {0};
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    lfm_job_params p = {0};
    p.prompt = prompt;
    p.n_prompt = 8;
    p.max_tokens = n_tok;
    lfm_sampler_defaults(&p.sampling);
    p.sampling.seed = 42;
    p.sampling.temperature = 1.0f;
    p.cb = on_ev;
    p.user = &k;
    p.constraint = c;
    if (lfm_sched_submit(s, &p, NULL) != LFM_OK) return 0;
    pthread_mutex_lock(&k.mu);
    while (!k.done)
        pthread_cond_wait(&k.cv, &k.mu);
    pthread_mutex_unlock(&k.mu);
    return k.n > 1 ? (k.n - 1) / (k.t_end - k.t_first) : 0;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int n_threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_grammar [MODEL.gguf] [--threads N]\n");
            return 2;
        }
    }
    char synth_path[256];
    if (!path) {
        snprintf(synth_path, sizeof synth_path, "/tmp/tidegate-bench-350m-q4_0-%d.gguf",
                 (int)getuid());
        if (access(synth_path, R_OK) != 0) {
            synth_opts so;
            synth_opts_default(&so);
            char err[256];
            if (synth_preset("350m", &so) != 0) return 1;
            snprintf(so.type, sizeof so.type, "q4_0");
            fprintf(stderr, "synthesizing %s ...\n", synth_path);
            if (synth_write(&so, synth_path, err, sizeof err) != 0) {
                fprintf(stderr, "synth: %s\n", err);
                return 1;
            }
        }
        path = synth_path;
    }
    lfm_model_opts mo;
    lfm_model_opts_default(&mo);
    mo.n_threads = n_threads;
    lfm_model *m = NULL;
    char err[512];
    if (lfm_model_load(path, &mo, &m, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "bench_grammar: %s\n", err);
        return 1;
    }
    const lfm_tokenizer *t = lfm_model_tokenizer(m);
    int nv = lfm_vocab_size(t);
    double t0 = now_s();
    lfm_vocab_index *vi = lfm_vocab_index_new(t);
    printf("vocab %d tokens: index built in %.1f ms\n", nv, (now_s() - t0) * 1e3);

    /* ---- mask time per token ---- */
    uint32_t *bits = malloc(((size_t)nv + 31) / 32 * sizeof *bits);
    int32_t *allowed = malloc((size_t)nv * sizeof *allowed);
    enum { STEPS = 3000 };
    double *times = malloc(STEPS * sizeof *times);
    int n_times = 0;
    uint64_t rng = 12345;
    size_t si = 0;
    while (n_times < STEPS) {
        lfm_schema *s = NULL;
        const char *sj = k_schemas[si++ % (sizeof k_schemas / sizeof *k_schemas)];
        if (lfm_schema_compile(sj, strlen(sj), 0, &s, NULL, 0, err, sizeof err) != LFM_OK) {
            fprintf(stderr, "schema: %s\n", err);
            return 1;
        }
        lfm_constraint *c = lfm_constraint_new(s, vi, -1, -1);
        for (int step = 0; step < 200 && n_times < STEPS; step++) {
            double a = now_s();
            int n = lfm_constraint_mask(c, bits);
            times[n_times++] = now_s() - a;
            if (n <= 0 || lfm_constraint_done(c)) break;
            int k = 0;
            for (int i = 0; i < nv; i++)
                if ((bits[i >> 5] >> (i & 31) & 1) && !lfm_token_is_eog(t, i)) allowed[k++] = i;
            if (!k) break;
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            lfm_constraint_accept(c, allowed[(rng >> 33) % (uint64_t)k]);
        }
        lfm_constraint_free(c);
        lfm_schema_free(s);
    }
    double sum = 0;
    for (int i = 0; i < n_times; i++)
        sum += times[i];
    qsort(times, (size_t)n_times, sizeof *times, cmp_d);
    double avg_us = sum / n_times * 1e6;
    printf("mask time per token over %d steps: avg %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us "
           "(target avg <= 50 us: %s)\n",
           n_times, avg_us, times[n_times / 2] * 1e6, times[n_times * 99 / 100] * 1e6,
           times[n_times - 1] * 1e6, avg_us <= 50 ? "met" : "NOT met");
    fflush(stdout);

    /* ---- decode with and without a schema ---- */
    lfm_sched *sc = NULL;
    lfm_sched_opts so;
    lfm_sched_opts_default(&so);
    so.max_active = 1;
    if (lfm_sched_new(m, &so, &sc, err, sizeof err) != LFM_OK) return 1;
    double plain = 0, constrained = 0;
    const char *long_str = "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},"
                           "\"required\":[\"text\"],\"additionalProperties\":false}";
    for (int round = 0; round < 2; round++) {
        plain += run_job(sc, NULL, 40);
        lfm_schema *s = NULL;
        lfm_schema_compile(long_str, strlen(long_str), 0, &s, NULL, 0, NULL, 0);
        lfm_constraint *c = lfm_constraint_new(s, vi, -1, -1);
        lfm_constraint_own_schema(c);
        constrained += run_job(sc, c, 40);
    }
    plain /= 2;
    constrained /= 2;
    printf("decode, 1 job: %.2f tok/s plain, %.2f tok/s with a schema: %.1f%% slower (target <= "
           "5%%: %s)\n",
           plain, constrained, (1 - constrained / plain) * 100,
           constrained >= plain * 0.95 ? "met" : "NOT met");
    lfm_sched_free(sc);
    free(times);
    free(bits);
    free(allowed);
    lfm_vocab_index_free(vi);
    lfm_model_free(m);
    return 0;
}
