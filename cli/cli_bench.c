/* cli_bench: `tidegate bench engine` -- engine speed on one model file, every
 * figure measured in the same run (ratios against this machine's bandwidth,
 * never absolute targets). Progress on stderr; --json prints one JSON object
 * as the last stdout line (keys listed in usage below). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/lfm.h"

static const char *const USAGE =
    "usage: tidegate bench engine -m MODEL [-t THREADS] [--pp N] [--tg N] [--kv f16|f32] "
    "[--json]\n"
    "  -t       compute threads (default: physical cores)\n"
    "  --pp     prompt tokens for prefill / TTFT (default 512)\n"
    "  --tg     decode tokens (default 128)\n"
    "  --kv     KV cache element type (default f16)\n"
    "  --json   last stdout line: {model, type, threads, file_bytes, bytes_per_token (weight\n"
    "           bytes one decode step reads, measured), active_bytes (the same from the\n"
    "           shapes: a mixture of experts counts only its chosen experts), load_ms,\n"
    "           prefill_tps, decode_tps, ttft_ms, peak_rss_mib, bandwidth_gbs,\n"
    "           bandwidth_before_gbs, bandwidth_after_gbs, roofline_fraction,\n"
    "           batch_decode_tps {1,2,4,8}, mem_profile {256,1024,4096,16384: rss_mib,\n"
    "           cache_bytes_per_seq}}\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- read bandwidth: n threads stream disjoint parts of a 256 MiB buffer --- */

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_part;

static void *bw_read(void *arg) {
    bw_part *b = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* independent sums: load-bound */
    for (size_t i = 0; i + 4 <= b->n; i += 4) {
        s0 += b->p[i];
        s1 += b->p[i + 1];
        s2 += b->p[i + 2];
        s3 += b->p[i + 3];
    }
    b->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* Best of 4 passes, GB/s; the buffer is freed again (RSS stays the model's). */
static double bandwidth_gbs(int n_threads) {
    size_t bytes = (size_t)256 << 20, n = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 16) n_threads = 16;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < 4; rep++) {
        pthread_t th[16];
        bw_part parts[16];
        size_t per = n / (size_t)n_threads;
        double t0 = now_s();
        for (int t = 0; t < n_threads; t++) {
            parts[t] = (bw_part){buf + (size_t)t * per, per, 0};
            if (pthread_create(&th[t], NULL, bw_read, &parts[t]) != 0)
                bw_read(&parts[t]), th[t] = 0;
        }
        for (int t = 0; t < n_threads; t++) {
            if (th[t]) pthread_join(th[t], NULL);
            sink += parts[t].sum;
        }
        double bw = (double)(per * (size_t)n_threads * 8) / (now_s() - t0) / 1e9;
        if (bw > best) best = bw;
    }
    (void)sink;
    free(buf);
    return best;
}

/* The bandwidth buffer is touched in a child process so it never counts in
 * this process's peak RSS (the figure the RSS target is about). */
static double bandwidth_forked(int n_threads) {
    int fd[2];
    if (pipe(fd) != 0) return 0;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return 0;
    }
    if (pid == 0) {
        close(fd[0]);
        double v = bandwidth_gbs(n_threads);
        ssize_t w = write(fd[1], &v, sizeof v);
        _exit(w == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fd[1]);
    double v = 0;
    if (read(fd[0], &v, sizeof v) != (ssize_t)sizeof v) v = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return v;
}

static double rss_mib(int peak) {
    if (peak) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_maxrss / 1024.0;
    }
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * 4096.0 / (1024.0 * 1024.0);
}

/* ---- measurements --------------------------------------------------------- */

static int32_t tok_at(int i, int n_vocab) {
    return 14 + (int32_t)(((unsigned)i * 7919u) % (unsigned)(n_vocab - 14));
}

/* Prefill of n_tok tokens in one lfm_eval, best of reps: tokens/s and the
 * time to the first token's logits (ms). */
static int bench_prefill(lfm_model *m, int n_tok, int n_vocab, int reps, double *tps,
                         double *ttft_ms) {
    lfm_seq *s = lfm_seq_new(m, n_tok + 8);
    int32_t *toks = malloc((size_t)n_tok * sizeof *toks);
    lfm_seq **seqs = malloc((size_t)n_tok * sizeof *seqs);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    int rc = -1;
    *tps = 0, *ttft_ms = 0;
    if (s && toks && seqs && logits) {
        for (int i = 0; i < n_tok; i++)
            toks[i] = tok_at(i, n_vocab), seqs[i] = s;
        char err[256];
        rc = 0;
        for (int rep = 0; rep < reps && rc == 0; rep++) {
            lfm_seq_reset(s);
            double t0 = now_s();
            if (lfm_eval(m, n_tok, toks, seqs, NULL, logits, err, sizeof err) != LFM_OK) {
                fprintf(stderr, "bench: prefill: %s\n", err);
                rc = -1;
                break;
            }
            double dt = now_s() - t0;
            if (n_tok / dt > *tps) *tps = n_tok / dt, *ttft_ms = dt * 1e3;
        }
    }
    free(toks), free(seqs), free(logits);
    lfm_seq_free(s);
    return rc;
}

/* n_seq sequences decoding together, one row each per lfm_eval step (what
 * the scheduler does), n_steps steps after a warm-up: total tokens/s.
 * *reads (may be NULL): weight bytes the kernels were handed per step,
 * averaged over the timed steps. */
static double bench_decode(lfm_model *m, int n_seq, int n_steps, int n_vocab, double *reads) {
    lfm_seq *seqs[8] = {0};
    int32_t toks[8];
    uint8_t want[8];
    float *logits = malloc((size_t)n_vocab * (size_t)n_seq * sizeof *logits);
    double rate = 0;
    int ok = logits != NULL;
    for (int i = 0; i < n_seq && ok; i++)
        ok = (seqs[i] = lfm_seq_new(m, n_steps + 16)) != NULL;
    if (ok) {
        char err[256];
        for (int i = 0; i < n_seq; i++)
            toks[i] = tok_at(i, n_vocab), want[i] = 1;
        if (lfm_eval(m, n_seq, toks, seqs, want, logits, err, sizeof err) != LFM_OK) {
            fprintf(stderr, "bench: decode: %s\n", err);
        } else {
            uint64_t r0 = lfm_model_weight_reads(m);
            double t0 = now_s();
            int step = 0;
            for (; step < n_steps; step++) {
                for (int i = 0; i < n_seq; i++)
                    toks[i] = tok_at(step * 8 + i + 1, n_vocab);
                if (lfm_eval(m, n_seq, toks, seqs, want, logits, err, sizeof err) != LFM_OK) {
                    fprintf(stderr, "bench: decode: %s\n", err);
                    break;
                }
            }
            double dt = now_s() - t0;
            if (step > 0) rate = (double)step * n_seq / dt;
            if (step > 0 && reads) *reads = (double)(lfm_model_weight_reads(m) - r0) / (double)step;
        }
    }
    for (int i = 0; i < n_seq; i++)
        lfm_seq_free(seqs[i]);
    free(logits);
    return rate;
}

static const char *weight_type(const char *path) {
    /* The file's dominant weight type from its name, as the published files
     * spell it (the JSON's "type"); "?" when the name does not say. */
    static const char *const names[] = {"Q4_K_M", "Q5_K_M", "Q4_0", "Q8_0",
                                        "Q6_K",   "BF16",   "F16",  "F32"};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        for (const char *p = base; *p; p++)
            if (strncasecmp(p, names[i], n) == 0) return names[i];
    }
    return "?";
}

static int bench_engine(int argc, char **argv) {
    const char *path = NULL, *kv = "f16";
    long threads = 0, pp = 512, tg = 128;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has)
            path = argv[++i];
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has) {
            if (cli_parse_int(argv[++i], 1, 256, &threads) != 0)
                return cli_usage_error("bench engine", USAGE, "-t: expected 1..256");
        } else if (!strcmp(a, "--pp") && has) {
            if (cli_parse_int(argv[++i], 1, 16384, &pp) != 0)
                return cli_usage_error("bench engine", USAGE, "--pp: expected 1..16384");
        } else if (!strcmp(a, "--tg") && has) {
            if (cli_parse_int(argv[++i], 1, 16384, &tg) != 0)
                return cli_usage_error("bench engine", USAGE, "--tg: expected 1..16384");
        } else if (!strcmp(a, "--kv") && has) {
            kv = argv[++i];
            if (strcmp(kv, "f16") && strcmp(kv, "f32"))
                return cli_usage_error("bench engine", USAGE, "--kv: expected f16 or f32");
        } else if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else
            return cli_usage_error("bench engine", USAGE, "unknown or incomplete flag %s", a);
    }
    if (!path) return cli_usage_error("bench engine", USAGE, "-m MODEL is required");
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "tidegate bench engine: cannot stat %s\n", path);
        return 1;
    }

    lfm_model_opts o;
    lfm_model_opts_default(&o);
    o.n_threads = (int)threads; /* 0: physical cores */
    o.kv_type = strcmp(kv, "f32") ? LFM_KV_F16 : LFM_KV_F32;
    char err[512];
    lfm_model *m = NULL;
    double t0 = now_s();
    if (lfm_model_load(path, &o, &m, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "tidegate bench engine: %s\n", err);
        return 1;
    }
    double load_ms = (now_s() - t0) * 1e3;
    const lfm_hparams *hp = lfm_model_hparams(m);
    int n_vocab = hp->n_vocab;
    uint64_t wbytes = lfm_model_weight_bytes(m);
    const int nt = lfm_model_threads(m);
    fprintf(stderr, "bench: %s loaded in %.1f ms (%.1f MiB of weights), %d threads\n", path,
            load_ms, (double)wbytes / 1048576.0, nt);
    fprintf(stderr, "bench: read bandwidth (before) ...\n");
    double bw0 = bandwidth_forked(nt);

    double pf = 0, ttft = 0;
    fprintf(stderr, "bench: prefill %ld tokens ...\n", pp);
    bench_prefill(m, (int)pp, n_vocab, 2, &pf, &ttft);
    fprintf(stderr, "bench: decode %ld tokens ...\n", tg);
    double bpt = 0; /* measured: what one decode step's kernels read */
    double dec = bench_decode(m, 1, (int)tg, n_vocab, &bpt);
    static const int batch[4] = {1, 2, 4, 8};
    double bdec[4];
    bdec[0] = dec;
    for (int b = 1; b < 4; b++) {
        int steps = (int)(tg / batch[b] > 16 ? tg / batch[b] : 16);
        fprintf(stderr, "bench: batched decode, %d sequences x %d steps ...\n", batch[b], steps);
        bdec[b] = bench_decode(m, batch[b], steps, n_vocab, NULL);
    }
    fprintf(stderr, "bench: read bandwidth (after) ...\n");
    double bw1 = bandwidth_forked(nt);
    double bw = bw0 > bw1 ? bw0 : bw1;
    /* bytes_per_token is measured (the weight bytes the kernels were handed
     * per decode step): a dense model reads every matrix, a mixture of
     * experts only its chosen experts, so the roofline divides by what a
     * token really reads, not by the file. active_bytes is the same figure
     * computed from the shapes; the two differ only by the norms. */
    double active = (double)lfm_model_active_bytes(m);
    if (bpt <= 0) bpt = active;
    double roof = bw > 0 ? dec * bpt / (bw * 1e9) : 0;
    double peak = rss_mib(1);
    static const int ctxs[4] = {256, 1024, 4096, 16384};
    double now_rss = rss_mib(0);

    printf("model            %s\n", path);
    printf("threads          %d (kv %s)\n", nt, kv);
    printf("load             %.1f ms\n", load_ms);
    printf("prefill          %.1f tok/s (%ld tokens; TTFT %.1f ms)\n", pf, pp, ttft);
    printf("decode           %.1f tok/s (%.0f%% of %.1f GB/s read bandwidth)\n", dec, roof * 100,
           bw);
    printf("bytes per token  %.1f MiB read by the kernels (active weights %.1f MiB, file %.1f "
           "MiB)\n",
           bpt / 1048576.0, active / 1048576.0, (double)wbytes / 1048576.0);
    printf("batched decode   1: %.1f  2: %.1f  4: %.1f  8: %.1f tok/s total\n", bdec[0], bdec[1],
           bdec[2], bdec[3]);
    printf("peak RSS         %.1f MiB (file %.1f MiB)\n", peak, (double)st.st_size / 1048576.0);
    for (int c = 0; c < 4; c++)
        printf("context %-6d   %.2f MiB cache per sequence\n", ctxs[c],
               (double)lfm_seq_state_bytes(m, ctxs[c]) / 1048576.0);
    if (json) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        printf("{\"model\":\"");
        for (const char *p = base; *p; p++)
            if (*p == '"' || *p == '\\')
                printf("\\%c", *p);
            else if ((unsigned char)*p >= 0x20)
                putchar(*p);
        printf("\",\"type\":\"%s\",\"threads\":%d,\"kv\":\"%s\",\"file_bytes\":%lld,"
               "\"bytes_per_token\":%.0f,\"active_bytes\":%.0f,\"load_ms\":%.2f,\"prefill_tps\":%."
               "2f,\"pp\":%ld,"
               "\"decode_tps\":%.2f,\"tg\":%ld,\"ttft_ms\":%.2f,\"peak_rss_mib\":%.2f,"
               "\"bandwidth_gbs\":%.3f,\"bandwidth_before_gbs\":%.3f,"
               "\"bandwidth_after_gbs\":%.3f,\"roofline_fraction\":%.4f,"
               "\"batch_decode_tps\":{\"1\":%.2f,\"2\":%.2f,\"4\":%.2f,\"8\":%.2f},"
               "\"mem_profile\":{",
               weight_type(path), nt, kv, (long long)st.st_size, bpt, active, load_ms, pf, pp, dec,
               tg, ttft, peak, bw, bw0, bw1, roof, bdec[0], bdec[1], bdec[2], bdec[3]);
        for (int c = 0; c < 4; c++) {
            uint64_t cb = lfm_seq_state_bytes(m, ctxs[c]);
            /* RSS with one such sequence: what is resident now plus its
             * cache once full (caches grow as tokens arrive). */
            /* n_ctx: the context actually sized (capped at the model's). */
            int nc = ctxs[c] < hp->n_ctx_train ? ctxs[c] : hp->n_ctx_train;
            printf("%s\"%d\":{\"n_ctx\":%d,\"rss_mib\":%.2f,\"cache_bytes_per_seq\":%llu}",
                   c ? "," : "", ctxs[c], nc, now_rss + (double)cb / 1048576.0,
                   (unsigned long long)cb);
        }
        printf("}}\n");
    }
    lfm_model_free(m);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "engine")) return bench_engine(argc - 1, argv + 1);
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(USAGE, stdout);
        return 0;
    }
    return cli_usage_error("bench", USAGE, "expected a benchmark name (engine)");
}
