/* bench_journal: durable appends per second with group commit, and the
 * latency the journal adds to a request (append -> durable callback on the
 * loop), on the disk holding DIR (default: $TMPDIR or /tmp).
 *
 *   bench_journal [--dir DIR] [--seconds S] [--body BYTES] [--rate R] [--key]
 *                 [--trace FILE]
 *
 * Three runs, each on a fresh journal, with ACCEPTED-sized records:
 *   1. fdatasync alone: one small write + fdatasync, back to back (the disk's
 *      floor for one durable write; what a journal without group commit pays
 *      per request), appending to a file and overwriting durable zeros;
 *   2. saturation: 4096 appends always in flight; durable appends/s;
 *   3. paced: R appends/s (default 20000) offered in 1 ms ticks; p50/p99/max
 *      of the added latency. Targets: >= 20000/s, p99 <= 2 ms.
 *      --trace FILE writes each paced append's submit time and latency (to
 *      find when stalls happen and line them up with strace -ttt). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "gateway/journal/tg_jfile.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    tg_journal *j;
    char *body;
    size_t body_len;
    uint64_t next_id, done, failed;
    double t_end;
    bool stopping;
    double *lat;   /* per append, seconds */
    double *t_sub; /* per append: submit time (for --trace) */
    bool tracing;
    size_t n_lat, cap_lat;
    int in_flight, target_in_flight;
    double rate;
    uv_timer_t tick;
    double t_start, offered;
} bench;

typedef struct {
    bench *b;
    double t0;
} op;

static void submit(bench *b);

static void on_durable(void *user, int status) {
    op *o = user;
    bench *b = o->b;
    double t = now_s();
    if (status) b->failed++;
    b->done++;
    b->in_flight--;
    if (b->n_lat == b->cap_lat) {
        b->cap_lat = b->cap_lat ? 2 * b->cap_lat : 1 << 16;
        b->lat = realloc(b->lat, b->cap_lat * sizeof *b->lat);
        if (b->tracing) b->t_sub = realloc(b->t_sub, b->cap_lat * sizeof *b->t_sub);
    }
    if (b->tracing) b->t_sub[b->n_lat] = o->t0;
    b->lat[b->n_lat++] = t - o->t0;
    free(o);
    if (b->target_in_flight && t < b->t_end) submit(b);
}

static void submit(bench *b) {
    op *o = malloc(sizeof *o);
    o->b = b;
    o->t0 = now_s();
    char id[40];
    snprintf(id, sizeof id, "req_%032llx", (unsigned long long)b->next_id++);
    b->in_flight++;
    if (tg_journal_append(b->j, TG_JREC_ACCEPTED, id, b->body, b->body_len, on_durable, o) != 0) {
        b->in_flight--;
        b->failed++;
        free(o);
    }
}

static void on_tick(uv_timer_t *t) {
    bench *b = t->data;
    double now = now_s();
    if (now >= b->t_end) {
        uv_timer_stop(t);
        return;
    }
    /* Offer what the rate owes since the start (catches up after a slow tick). */
    double owed = (now - b->t_start) * b->rate - b->offered;
    for (; owed >= 1; owed--, b->offered++)
        submit(b);
}

static int cmp_d(const void *a, const void *c) {
    double x = *(const double *)a, y = *(const double *)c;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)(p * (double)(n - 1));
    return v[k];
}

/* Median ms of one small write + fdatasync, back to back: appending to the
 * file, or overwriting a region of durable zeros written first. */
static double sync_floor(const char *path, const char *body, double seconds, bool zeros) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (zeros) {
        static char z[1 << 20];
        for (int i = 0; i < 4; i++)
            if (write(fd, z, sizeof z) != (ssize_t)sizeof z) break;
        if (fdatasync(fd) != 0) perror("fdatasync");
    }
    enum { MAX_N = (4 << 20) / 64 };
    double *lat = malloc(MAX_N * sizeof *lat), t0 = now_s();
    int n = 0;
    while ((now_s() - t0 < seconds || n < 10) && n < MAX_N) {
        double t = now_s();
        if (pwrite(fd, body, 64, (off_t)n * 64) != 64 || fdatasync(fd) != 0) break;
        lat[n++] = now_s() - t;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_d);
    double ms = n ? lat[n / 2] * 1e3 : 0;
    free(lat);
    close(fd);
    unlink(path);
    return ms;
}

static tg_journal *open_fresh(const char *base, const char *name, uv_loop_t *loop,
                              const tg_jcrypt *key, char *path, size_t pn) {
    snprintf(path, pn, "%s/%s", base, name);
    char err[512];
    tg_jfile_opts o = {.dir = path, .loop = loop, .key = key};
    tg_journal *j = tg_jfile_open(&o, NULL, err, sizeof err);
    if (!j) fprintf(stderr, "bench_journal: %s\n", err);
    return j;
}

static void rm_journal(const char *path) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "bench_journal: could not remove %s\n", path);
}

int main(int argc, char **argv) {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    double seconds = 5, rate = 20000;
    size_t body_bytes = 1024;
    bool use_key = false;
    const char *trace = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--body") && i + 1 < argc)
            body_bytes = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--trace") && i + 1 < argc)
            trace = argv[++i];
        else if (!strcmp(argv[i], "--key"))
            use_key = true;
        else {
            fprintf(stderr, "usage: bench_journal [--dir DIR] [--seconds S] [--body BYTES] "
                            "[--rate R] [--key] [--trace FILE]\n");
            return 2;
        }
    }
    char base[600];
    snprintf(base, sizeof base, "%s/tg-bench-journal-%d", dir, (int)getpid());
    tg_jcrypt *key = NULL;
    if (use_key) {
        uint8_t k[32];
        for (int i = 0; i < 32; i++)
            k[i] = (uint8_t)(i * 13);
        key = tg_jcrypt_from_bytes(k);
    }
    char *body = malloc(body_bytes + 64);
    int n =
        snprintf(body, body_bytes + 64, "{\"scope\":\"bench\",\"idem\":null,\"body\":{\"x\":\"");
    while ((size_t)n < body_bytes - 3)
        body[n] = (char)('a' + n % 26), n++;
    memcpy(body + n, "\"}}", 4);
    size_t body_len = (size_t)n + 3;

    /* 1. fdatasync floor */
    char path[800];
    snprintf(path, sizeof path, "%s.sync", base);
    double sync_ms = sync_floor(path, body, seconds / 4, false);
    double zero_ms = sync_floor(path, body, seconds / 4, true);
    printf("disk: %s\nfdatasync alone: %.3f ms per durable write at p50 (%.0f/s one at a "
           "time); over durable zeros (what tg_jzero gives the journal): %.3f ms\n",
           dir, sync_ms, 1e3 / sync_ms, zero_ms);

    /* 2. saturation */
    uv_loop_t loop;
    uv_loop_init(&loop);
    bench b = {0};
    b.body = body;
    b.body_len = body_len;
    b.j = open_fresh(base, "sat", &loop, key, path, sizeof path);
    if (!b.j) return 1;
    b.target_in_flight = 4096;
    b.t_start = now_s();
    b.t_end = b.t_start + seconds;
    for (int i = 0; i < b.target_in_flight; i++)
        submit(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    double el = now_s() - b.t_start;
    qsort(b.lat, b.n_lat, sizeof *b.lat, cmp_d);
    printf("saturation (4096 in flight, %zu-byte records%s): %.0f durable appends/s, "
           "latency p50 %.2f ms p99 %.2f ms, %llu failed\n",
           body_len, key ? ", sealed" : "", (double)b.done / el, pct(b.lat, b.n_lat, 0.5) * 1e3,
           pct(b.lat, b.n_lat, 0.99) * 1e3, (unsigned long long)b.failed);
    double sat = (double)b.done / el;
    tg_journal_close(b.j);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Removed at the end, not now: deleting a gigabyte frees (and, on a
     * filesystem mounted with discard, trims) it while the paced run
     * measures, which stalled its fdatasyncs for up to 270 ms. */
    char sat_path[800];
    snprintf(sat_path, sizeof sat_path, "%s", path);

    /* 3. paced at the target rate */
    free(b.lat);
    memset(&b, 0, sizeof b);
    b.body = body;
    b.body_len = body_len;
    b.rate = rate;
    b.tracing = trace != NULL;
    b.j = open_fresh(base, "paced", &loop, key, path, sizeof path);
    if (!b.j) return 1;
    uv_timer_init(&loop, &b.tick);
    b.tick.data = &b;
    b.t_start = now_s();
    b.t_end = b.t_start + seconds;
    uv_timer_start(&b.tick, on_tick, 1, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    el = now_s() - b.t_start;
    if (trace) {
        /* One line per append: submit time since the start (s), added latency (ms). */
        FILE *tf = fopen(trace, "w");
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        if (tf)
            fprintf(tf, "# start %.6f (realtime)\n",
                    (double)rt.tv_sec + (double)rt.tv_nsec * 1e-9 - (now_s() - b.t_start));
        for (size_t i = 0; tf && i < b.n_lat; i++)
            fprintf(tf, "%.6f %.3f\n", b.t_sub[i] - b.t_start, b.lat[i] * 1e3);
        if (tf) fclose(tf);
        free(b.t_sub);
    }
    qsort(b.lat, b.n_lat, sizeof *b.lat, cmp_d);
    double p50 = pct(b.lat, b.n_lat, 0.5) * 1e3, p99 = pct(b.lat, b.n_lat, 0.99) * 1e3;
    printf("paced at %.0f/s: %.0f durable appends/s, added latency p50 %.3f ms p99 %.3f ms "
           "max %.3f ms, %llu failed\n",
           rate, (double)b.done / el, p50, p99, b.n_lat ? b.lat[b.n_lat - 1] * 1e3 : 0,
           (unsigned long long)b.failed);
    printf("group commit vs one fdatasync per request: %.1fx the throughput\n",
           sat / (1e3 / sync_ms));
    printf("targets: >= 20000/s %s (%.0f/s); p99 <= 2 ms %s (%.3f ms)\n",
           sat >= 20000 ? "met" : "NOT met", sat, p99 <= 2 ? "met" : "NOT met", p99);
    tg_journal_close(b.j);
    uv_close((uv_handle_t *)&b.tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rm_journal(path);
    rm_journal(sat_path);
    rmdir(base);
    free(b.lat);
    free(body);
    tg_jcrypt_free(key);
    return 0;
}
