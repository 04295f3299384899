/* bench_engine: engine speed on one model, in one run (build Release).
 *
 *   bench_engine [MODEL.gguf] [--threads N] [--kernels scalar|auto]
 *
 * Without MODEL it synthesizes a random-weight LFM2-350M in Q4_0 into /tmp
 * (the shapes and quant mix of the published file; random weights run at the
 * same speed). Measures:
 *   - prefill tokens/s: one batch of prompt tokens through lfm_eval;
 *   - decode tokens/s: one sequence, one token per lfm_eval;
 *   - decode throughput through the scheduler with 1, 4 and 8 concurrent jobs;
 *   - memory bandwidth of this machine (multi-threaded streaming read), and
 *     the fraction of it that decoding uses: weights read per step x steps/s.
 * Phases are time-boxed so the whole run stays under about a minute. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/lfm.h"
#include "engine/lfm_sched.h"
#include "tools/synth/synth.h"

#define PHASE_SECONDS 6.0

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------- memory bandwidth -- */

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_part;

static void *bw_read(void *arg) {
    bw_part *b = arg;
    /* Four independent accumulators so the loop is load-bound, not add-bound. */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= b->n; i += 4) {
        s0 += b->p[i];
        s1 += b->p[i + 1];
        s2 += b->p[i + 2];
        s3 += b->p[i + 3];
    }
    b->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* Best-of-N streaming read bandwidth (bytes/s) with n_threads readers over a
 * buffer much larger than the caches. */
static double measure_bandwidth(int n_threads) {
    size_t bytes = (size_t)256 << 20;
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = i * 2654435761u; /* touch every page */
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        bw_part parts[64];
        size_t per = n / (size_t)n_threads;
        double t0 = now_s();
        for (int t = 0; t < n_threads; t++) {
            parts[t] = (bw_part){buf + (size_t)t * per, per, 0};
            pthread_create(&th[t], NULL, bw_read, &parts[t]);
        }
        for (int t = 0; t < n_threads; t++) {
            pthread_join(th[t], NULL);
            sink += parts[t].sum;
        }
        double dt = now_s() - t0;
        double bw = (double)(per * (size_t)n_threads * sizeof(uint64_t)) / dt;
        if (bw > best) best = bw;
    }
    (void)sink;
    free(buf);
    return best;
}

/* ----------------------------------------------------- direct eval -- */

static double bench_prefill(lfm_model *m, int n_tok, int n_vocab) {
    lfm_seq *s = lfm_seq_new(m, n_tok + 8);
    int32_t *toks = malloc((size_t)n_tok * sizeof *toks);
    lfm_seq **seqs = malloc((size_t)n_tok * sizeof *seqs);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    double best = 0;
    if (s && toks && seqs && logits) {
        for (int i = 0; i < n_tok; i++) {
            toks[i] = 14 + (int32_t)((i * 7919u) % (unsigned)(n_vocab - 14));
            seqs[i] = s;
        }
        char err[256];
        double t_start = now_s();
        for (int rep = 0; rep < 3 && now_s() - t_start < PHASE_SECONDS; rep++) {
            lfm_seq_reset(s);
            double t0 = now_s();
            if (lfm_eval(m, n_tok, toks, seqs, NULL, logits, err, sizeof err) != LFM_OK) {
                fprintf(stderr, "prefill: %s\n", err);
                break;
            }
            double r = n_tok / (now_s() - t0);
            if (r > best) best = r;
        }
    }
    free(toks);
    free(seqs);
    free(logits);
    if (s) lfm_seq_free(s);
    return best;
}

static double bench_decode(lfm_model *m, int max_tok, int n_vocab) {
    lfm_seq *s = lfm_seq_new(m, max_tok + 8);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    double rate = 0;
    if (s && logits) {
        char err[256];
        int32_t t = 1;
        /* One warm-up token (first touch of the weights). */
        lfm_eval(m, 1, &t, &s, NULL, logits, err, sizeof err);
        int n = 0;
        double t0 = now_s();
        while (n < max_tok && now_s() - t0 < PHASE_SECONDS) {
            t = 14 + (int32_t)((n * 31u) % (unsigned)(n_vocab - 14));
            if (lfm_eval(m, 1, &t, &s, NULL, logits, err, sizeof err) != LFM_OK) {
                fprintf(stderr, "decode: %s\n", err);
                break;
            }
            n++;
        }
        double dt = now_s() - t0;
        if (n > 0) rate = n / dt;
    }
    free(logits);
    if (s) lfm_seq_free(s);
    return rate;
}

/* ------------------------------------------------------ scheduler -- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, total_gen;
    double max_ttft_s; /* the last job's time to first token */
    double t_last_done;
} sched_bench;

static void on_ev(void *user, const lfm_event *ev) {
    sched_bench *b = user;
    pthread_mutex_lock(&b->mu);
    double t = now_s();
    if (ev->type == LFM_EV_DONE) {
        if (ev->ttft_ms / 1e3 > b->max_ttft_s) b->max_ttft_s = ev->ttft_ms / 1e3;
        b->done++;
        b->total_gen += ev->n_generated;
        b->t_last_done = t;
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
}

/* Aggregate decode tokens/s with n_jobs concurrent jobs of max_tok tokens.
 * Counted from the moment every job is decoding (prefill excluded). */
static double bench_sched(lfm_model *m, int n_jobs, int max_tok) {
    lfm_sched_opts o;
    lfm_sched_opts_default(&o);
    o.max_active = n_jobs;
    o.queue_cap = n_jobs;
    o.n_ctx = 256;
    lfm_sched *s = NULL;
    char err[256];
    if (lfm_sched_new(m, &o, &s, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "sched: %s\n", err);
        return 0;
    }
    sched_bench b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    int32_t prompt[8] = {1, 20, 21, 22, 23, 24, 25, 26};
    double t_submit = now_s();
    for (int i = 0; i < n_jobs; i++) {
        lfm_job_params p;
        memset(&p, 0, sizeof p);
        prompt[7] = 30 + i;
        p.prompt = prompt;
        p.n_prompt = 8;
        p.max_tokens = max_tok;
        lfm_sampler_defaults(&p.sampling);
        p.sampling.temperature = 1.0f; /* random text: EOG is rare but possible */
        p.sampling.min_p = 0;
        p.sampling.seed = 100 + (uint64_t)i;
        p.cb = on_ev;
        p.user = &b;
        if (lfm_sched_submit(s, &p, NULL) != LFM_OK) fprintf(stderr, "submit failed\n");
    }
    pthread_mutex_lock(&b.mu);
    while (b.done < n_jobs)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    lfm_sched_free(s);
    /* Tokens after each job's first (those were decode steps). */
    double dt = b.t_last_done - (t_submit + b.max_ttft_s);
    int decoded = b.total_gen - n_jobs;
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return dt > 0 && decoded > 0 ? decoded / dt : 0;
}

/* ------------------------------------------------------------ main -- */

/* Random-weight LFM2-350M with the Q4_0 mix, written to path. */
static int synth_350m(const char *path) {
    synth_opts so;
    synth_opts_default(&so);
    char err[256];
    if (synth_preset("350m", &so) != 0) {
        fprintf(stderr, "synth: no 350m preset\n");
        return -1;
    }
    snprintf(so.type, sizeof so.type, "q4_0");
    fprintf(stderr, "synthesizing %s ...\n", path);
    if (synth_write(&so, path, err, sizeof err) != 0) {
        fprintf(stderr, "synth: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int n_threads = 0;
    lfm_kernels kernels = LFM_KERNELS_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernels") && i + 1 < argc)
            kernels = !strcmp(argv[++i], "scalar") ? LFM_KERNELS_SCALAR : LFM_KERNELS_AUTO;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_engine [MODEL.gguf] [--threads N] "
                            "[--kernels scalar|auto]\n");
            return 2;
        }
    }
    char synth_path[256];
    bool synthesized = false;
    if (!path) {
        snprintf(synth_path, sizeof synth_path, "/tmp/tidegate-bench-350m-q4_0-%d.gguf",
                 (int)getuid());
        if (access(synth_path, R_OK) != 0) {
            if (synth_350m(synth_path)) return 1;
            synthesized = true;
        }
        path = synth_path;
    }

    lfm_model_opts mo;
    lfm_model_opts_default(&mo);
    mo.n_threads = n_threads;
    mo.kernels = kernels;
    lfm_model *m = NULL;
    char err[512];
    double t0 = now_s();
    int rc = lfm_model_load(path, &mo, &m, err, sizeof err);
    if (rc != LFM_OK && path == synth_path && !synthesized) {
        /* A cached file from an older writer: make a fresh one. */
        if (synth_350m(synth_path)) return 1;
        t0 = now_s();
        rc = lfm_model_load(path, &mo, &m, err, sizeof err);
    }
    if (rc != LFM_OK) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    double t_load = now_s() - t0;
    const lfm_hparams *hp = lfm_model_hparams(m);
    uint64_t wbytes = lfm_model_weight_bytes(m);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int bw_threads = n_threads > 0 ? n_threads : (int)(ncpu > 0 ? ncpu : 1);

    printf("model: %s (%s, %d layers, E=%d, vocab %d), weights %.1f MiB, load %.2f s\n", path,
           hp->name, hp->n_layer, hp->n_embd, hp->n_vocab, (double)wbytes / (1 << 20), t_load);
    printf("threads: %s%d, kernels: %s\n", n_threads ? "" : "auto=", bw_threads,
           kernels == LFM_KERNELS_SCALAR ? "scalar" : "auto");
    fflush(stdout);

    double bw = measure_bandwidth(bw_threads);
    printf("memory bandwidth (read, %d threads): %.2f GB/s\n", bw_threads, bw / 1e9);
    fflush(stdout);

    double pf = bench_prefill(m, 128, hp->n_vocab);
    printf("prefill (128 tokens, one batch): %.1f tok/s\n", pf);
    fflush(stdout);
    double dec = bench_decode(m, 64, hp->n_vocab);
    printf("decode (1 sequence, direct): %.2f tok/s\n", dec);
    if (bw > 0)
        printf("  weights read per token %.1f MiB -> %.2f GB/s = %.0f%% of memory bandwidth\n",
               (double)wbytes / (1 << 20), (double)wbytes * dec / 1e9,
               100.0 * (double)wbytes * dec / bw);
    fflush(stdout);

    /* Scheduler: size each phase from the single-sequence rate so it takes
     * a few seconds at most (batching should make it faster, not slower). */
    static const int widths[] = {1, 4, 8};
    for (int i = 0; i < 3; i++) {
        int n = widths[i];
        int per_job = (int)(dec * PHASE_SECONDS / n);
        if (per_job < 4) per_job = 4;
        if (per_job > 64) per_job = 64;
        double r = bench_sched(m, n, per_job);
        double steps = r / n; /* every step reads the weights once for all rows */
        printf("scheduler decode, %d concurrent (%d tok each): %.2f tok/s total "
               "(%.2f tok/s per sequence, %.0f%% of bandwidth)\n",
               n, per_job, r, r / n, bw > 0 ? 100.0 * (double)wbytes * steps / bw : 0.0);
        fflush(stdout);
    }
    lfm_model_free(m);
    return 0;
}
