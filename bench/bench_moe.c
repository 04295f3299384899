/* bench_moe: what a mixture-of-experts decode step really reads, and how
 * fast the engine runs the model (build Release).
 *
 *   bench_moe MODEL.gguf [--threads N] [--decode N] [--prefill N]
 *
 * Bytes read are measured, not computed: the file is dropped from the page
 * cache (fdatasync + POSIX_FADV_DONTNEED), the model is loaded, and after
 * each of the first decode steps mincore() over a private read-only mapping
 * of the file counts the pages that became resident -- exactly the bytes the
 * step faulted in -- beside /proc/self/io read_bytes (what this process
 * made the block layer read) and lfm_model_weight_reads (the weight bytes
 * the kernels were handed). They are compared with lfm_model_active_bytes
 * (every matrix a step reads, with only n_expert_used of n_expert experts):
 * a decode step that read whole expert tensors would show about n_expert /
 * n_expert_used times more. Then prefill and decode speed (after a warm-up
 * pass) and the process's peak RSS (getrusage), which includes the mapped
 * weight pages touched. Usable on dense models too (active = all). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/lfm.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    int fd;
    void *map;
    size_t len;
    unsigned char *vec;
    long page;
} residency;

/* Bytes of the file resident in the page cache now. */
static uint64_t resident_bytes(residency *r) {
    if (mincore(r->map, r->len, r->vec) != 0) return 0;
    size_t n = (r->len + (size_t)r->page - 1) / (size_t)r->page;
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += r->vec[i] & 1;
    return c * (uint64_t)r->page;
}

/* Bytes this process has caused to be read from storage (0 if unknown). */
static uint64_t io_read_bytes(void) {
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "read_bytes: %llu", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static double mib(uint64_t b) {
    return (double)b / (1 << 20);
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int n_threads = 0, n_decode = 32, n_prefill = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc)
            n_decode = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prefill") && i + 1 < argc)
            n_prefill = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            path = NULL, i = argc;
    }
    if (!path || n_decode < 1 || n_prefill < 1) {
        fprintf(stderr, "usage: bench_moe MODEL.gguf [--threads N] [--decode N] [--prefill N]\n");
        return 2;
    }

    residency r = {.fd = open(path, O_RDONLY), .page = sysconf(_SC_PAGESIZE)};
    struct stat st;
    if (r.fd < 0 || fstat(r.fd, &st) != 0) {
        perror(path);
        return 1;
    }
    r.len = (size_t)st.st_size;
    r.map = mmap(NULL, r.len, PROT_READ, MAP_SHARED, r.fd, 0);
    r.vec = malloc((r.len + (size_t)r.page - 1) / (size_t)r.page);
    if (r.map == MAP_FAILED || !r.vec) {
        perror("mmap");
        return 1;
    }
    /* Cold start: drop the file's cached pages (clean pages only, hence the
     * sync). Pages other processes have mapped stay; the number says so. */
    (void)fdatasync(r.fd);
    (void)posix_fadvise(r.fd, 0, 0, POSIX_FADV_DONTNEED);
    uint64_t cold = resident_bytes(&r);

    lfm_model_opts mo;
    lfm_model_opts_default(&mo);
    mo.n_threads = n_threads;
    lfm_model *m = NULL;
    char err[512];
    uint64_t io0 = io_read_bytes();
    double t0 = now_s();
    if (lfm_model_load(path, &mo, &m, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "bench_moe: %s\n", err);
        return 1;
    }
    double t_load = now_s() - t0;
    const lfm_hparams *hp = lfm_model_hparams(m);
    uint64_t wbytes = lfm_model_weight_bytes(m), active = lfm_model_active_bytes(m);
    uint64_t r_load = resident_bytes(&r), io_load = io_read_bytes();
    printf("model: %s (%s, %s, %d blocks, E=%d", path, hp->name, hp->arch, hp->n_layer, hp->n_embd);
    if (hp->n_expert)
        printf(", %d experts of %d, %d used, %d dense blocks first", hp->n_expert, hp->n_ff_exp,
               hp->n_expert_used, hp->n_dense_lead);
    printf(")\nweights %.1f MiB, active per token %.1f MiB (%.1f%%), load %.2f s\n", mib(wbytes),
           mib(active), 100.0 * (double)active / (double)wbytes, t_load);
    printf("page cache: %.1f MiB of the file resident after the drop, %.1f MiB after load "
           "(read_bytes %.1f MiB)\n",
           mib(cold), mib(r_load), mib(io_load - io0));
    fflush(stdout);

    /* The first decode steps, cold: what each one faults in. The first step
     * reads every dense matrix and its chosen experts; later steps add only
     * experts no earlier step chose. */
    lfm_seq *s = lfm_seq_new(m, n_prefill + n_decode + 16);
    float *logits = malloc((size_t)hp->n_vocab * sizeof *logits);
    if (!s || !logits) return 1;
    uint64_t prev = r_load, io_prev = io_load;
    for (int i = 0; i < 3; i++) {
        int32_t tok = i == 0 ? 1 : 14 + (int32_t)((i * 7919u) % (unsigned)(hp->n_vocab - 14));
        uint64_t wr0 = lfm_model_weight_reads(m);
        double ts = now_s();
        if (lfm_eval(m, 1, &tok, &s, NULL, logits, err, sizeof err) != LFM_OK) {
            fprintf(stderr, "decode: %s\n", err);
            return 1;
        }
        double dt = now_s() - ts;
        uint64_t cur = resident_bytes(&r), io = io_read_bytes(),
                 wr = lfm_model_weight_reads(m) - wr0;
        printf("decode step %d: kernels read %.1f MiB = %.4f x active; newly resident %.1f MiB "
               "(read_bytes %.1f MiB), %.2f s\n",
               i + 1, mib(wr), (double)wr / (double)active, mib(cur - prev), mib(io - io_prev), dt);
        if (i == 0)
            printf("load + step 1 from a cold cache: %.1f MiB resident = %.3f x active "
                   "(read_bytes %.1f MiB = %.3f x), RSS %.1f MiB\n",
                   mib(cur - cold), (double)(cur - cold) / (double)active, mib(io - io0),
                   (double)(io - io0) / (double)active, (double)rss_kib() / 1024);
        prev = cur, io_prev = io;
        fflush(stdout);
    }
    lfm_seq_free(s);

    /* Speed, warm: one untimed prefill pulls the weights in. */
    s = lfm_seq_new(m, n_prefill + n_decode + 16);
    int32_t *toks = malloc((size_t)n_prefill * sizeof *toks);
    lfm_seq **seqs = malloc((size_t)n_prefill * sizeof *seqs);
    for (int i = 0; i < n_prefill; i++) {
        toks[i] = 14 + (int32_t)((i * 7919u) % (unsigned)(hp->n_vocab - 14));
        seqs[i] = s;
    }
    double best_pf = 0;
    for (int rep = 0; rep < 2; rep++) {
        lfm_seq_reset(s);
        double ts = now_s();
        if (lfm_eval(m, n_prefill, toks, seqs, NULL, logits, err, sizeof err) != LFM_OK) {
            fprintf(stderr, "prefill: %s\n", err);
            return 1;
        }
        double rate = n_prefill / (now_s() - ts);
        if (rep > 0 && rate > best_pf) best_pf = rate; /* rep 0 is the warm-up */
    }
    printf("prefill (%d tokens, one batch, warm): %.1f tok/s\n", n_prefill, best_pf);
    fflush(stdout);
    double ts = now_s();
    for (int i = 0; i < n_decode; i++) {
        int32_t tok = 14 + (int32_t)((i * 31u) % (unsigned)(hp->n_vocab - 14));
        if (lfm_eval(m, 1, &tok, &s, NULL, logits, err, sizeof err) != LFM_OK) {
            fprintf(stderr, "decode: %s\n", err);
            return 1;
        }
    }
    double dec = n_decode / (now_s() - ts);
    printf("decode (%d tokens after the prefill, warm): %.2f tok/s = %.2f GB/s of active "
           "weights\n",
           n_decode, dec, (double)active * dec / 1e9);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.1f MiB (weights %.1f MiB; mapped weight pages count once touched)\n",
           (double)ru.ru_maxrss / 1024, mib(wbytes));
    free(toks);
    free(seqs);
    free(logits);
    lfm_seq_free(s);
    lfm_model_free(m);
    munmap(r.map, r.len);
    free(r.vec);
    close(r.fd);
    return 0;
}
