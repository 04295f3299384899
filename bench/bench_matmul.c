/* bench_matmul: weight-read throughput of lq_matmul for every weight type at
 * a real LFM2 shape (350M ffn_up: 4608 x 1024), single thread.
 *
 *   decode  (n_rows = 1):  memory-bound; reported as GB/s of weight bytes and
 *                          as a fraction of this machine's measured read
 *                          bandwidth (weights are cycled through >= 96 MB of
 *                          copies so they come from DRAM, not L3).
 *   prefill (n_rows = 64): compute-bound; GB/s of weight bytes and GFLOP/s.
 *
 * Each figure is the best of 5 short trials (the machine may be shared).
 * Usage: bench_matmul [seconds-per-case]   (default 0.25; whole run < 30 s) */
#include "engine/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_OUT   4608
#define N_IN    1024
#define WORKSET (96u << 20) /* bytes of weight copies, > L3 */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Read bandwidth: sum 64-bit words of a large buffer (vectorized by -O2). */
static double measure_read_bw(double secs) {
    size_t n = (size_t)256 << 20;
    uint64_t *buf = malloc(n);
    if (!buf) return 0;
    memset(buf, 1, n);
    volatile uint64_t sink = 0;
    double t0 = now(), t;
    size_t bytes = 0;
    do {
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < n / 8; i += 4)
            s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
        sink += s0 + s1 + s2 + s3;
        bytes += n;
        t = now() - t0;
    } while (t < secs);
    free(buf);
    (void)sink;
    return (double)bytes / t / 1e9;
}

static double measure_copy_bw(double secs) {
    size_t n = (size_t)128 << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) return free(a), free(b), 0;
    memset(a, 1, n), memset(b, 2, n);
    double t0 = now(), t;
    size_t bytes = 0;
    do {
        memcpy(b, a, n);
        bytes += 2 * n; /* read + write */
        t = now() - t0;
    } while (t < secs);
    free(a), free(b);
    return (double)bytes / t / 1e9;
}

typedef struct {
    double gbs, secs_per_call;
} result;

/* Best of 5 trials of secs/5 each: on a shared machine the best trial is the
 * closest to what the kernel can do. */
static result run(lq_type t, const uint8_t *copies, int ncopies, size_t wbytes, const float *x,
                  int n_rows, float *y, lq_kernels k, double secs) {
    result best = {0, 0};
    int calls = 0;
    for (int trial = 0; trial < 5; trial++) {
        int n = 0;
        double t0 = now(), el;
        do {
            const uint8_t *w = copies + (size_t)(calls++ % ncopies) * wbytes;
            lq_matmul(t, w, N_OUT, N_IN, x, n_rows, y, k);
            n++;
            el = now() - t0;
        } while (el < secs / 5);
        result r = {(double)wbytes * n / el / 1e9, el / n};
        if (r.gbs > best.gbs) best = r;
    }
    return best;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.25;
    if (secs <= 0) secs = 0.25;
    double rbw = measure_read_bw(0.5), cbw = measure_copy_bw(0.5);
    printf("kernels: auto=%s; memory: read %.2f GB/s, memcpy %.2f GB/s (read+write)\n",
           lq_kernels_active(), rbw, cbw);
    printf("shape %d x %d, single thread; decode = n_rows 1, prefill = n_rows 64\n", N_OUT, N_IN);
    printf("%-5s %9s | %-26s | %-26s | %s\n", "type", "MB", "decode GB/s scal/auto(%bw)",
           "prefill GB/s scal/auto", "speedup dec/pre, prefill GFLOP/s");

    static const lq_type types[] = {LQ_F32,  LQ_F16,  LQ_BF16, LQ_Q8_0,
                                    LQ_Q4_0, LQ_Q4_K, LQ_Q5_K, LQ_Q6_K};
    float *wf = malloc(sizeof(float) * N_IN), *x = malloc(sizeof(float) * 64 * N_IN);
    float *y = malloc(sizeof(float) * 64 * N_OUT);
    if (!wf || !x || !y) return 1;
    for (int i = 0; i < 64 * N_IN; i++)
        x[i] = frand();
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        lq_type t = types[ti];
        size_t rb = lq_row_bytes(t, N_IN), wbytes = rb * N_OUT;
        int ncopies = (int)((WORKSET + wbytes - 1) / wbytes);
        uint8_t *copies = malloc(wbytes * (size_t)ncopies);
        if (!copies) return 1;
        for (int o = 0; o < N_OUT; o++) {
            for (int i = 0; i < N_IN; i++)
                wf[i] = frand() * 0.05f;
            lq_quantize_row(t, wf, copies + (size_t)o * rb, N_IN);
        }
        for (int c = 1; c < ncopies; c++)
            memcpy(copies + (size_t)c * wbytes, copies, wbytes);
        result ds = run(t, copies, ncopies, wbytes, x, 1, y, LQ_KERNELS_SCALAR, secs);
        result da = run(t, copies, ncopies, wbytes, x, 1, y, LQ_KERNELS_AUTO, secs);
        result ps = run(t, copies, ncopies, wbytes, x, 64, y, LQ_KERNELS_SCALAR, secs);
        result pa = run(t, copies, ncopies, wbytes, x, 64, y, LQ_KERNELS_AUTO, secs);
        double gflops = 2.0 * N_OUT * N_IN * 64 / pa.secs_per_call / 1e9;
        printf("%-5s %9.2f | %6.2f / %6.2f (%5.1f%%)   | %6.3f / %6.3f            | %5.1fx / "
               "%5.1fx, %.1f\n",
               lq_type_name(t), (double)wbytes / 1e6, ds.gbs, da.gbs, 100.0 * da.gbs / rbw, ps.gbs,
               pa.gbs, da.gbs / ds.gbs, pa.gbs / ps.gbs, gflops);
        fflush(stdout);
        free(copies);
    }
    free(wf), free(x), free(y);
    return 0;
}
