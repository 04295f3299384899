/* moe: the lfm2moe mixture-of-experts FFN (LFM2-8B-A1B).
 *
 * Per row: router logits g = R h (F32 router, dot products in double),
 * p = sigmoid(g); the k experts with the largest p + bias are chosen (the
 * bias steers the choice only); their weights are the unbiased p normalised
 * to sum 1; t = sum_x w_x * down_x(silu(gate_x h) * up_x h).
 *
 * Speed: the expert tensors stay in the file mapping and only the chosen
 * experts' row ranges are passed to the matmul, so a decode step reads k/X
 * of the expert weights and experts never chosen are never paged in. A batch
 * (prefill, or decode across sequences) is grouped by expert: each chosen
 * expert runs one matmul over all rows that chose it, reading its weights
 * once per chunk.
 *
 * Paging (what "reads only its chosen experts" needs from the kernel): the
 * page cache reads around every fault (read_ahead_kb, 8 MiB on the bench
 * machine), and the GGUF interleaves small f32 tensors (norms, routers,
 * biases) with the expert stacks, so faulting in a norm or the first page of
 * a dense matrix used to page in megabytes of neighbouring experts nobody
 * chose (bench_moe: 1.41x the active bytes, 2.21x before expert tensors were
 * MADV_RANDOM). So for a MoE model the whole tensor region is MADV_RANDOM
 * (a fault reads one page), the dense matrices are asked for exactly
 * (MADV_WILLNEED over their byte ranges) once loaded, and an expert's three
 * slices are asked for exactly the first time a step chooses it: bulk reads
 * of what is used, nothing around it.
 *
 * Determinism: a row's output depends only on its own input. Its experts'
 * contributions are added in ascending expert order in double, whatever
 * other rows share the batch (matmul values do not depend on n_rows). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/model.h"

typedef struct {
    double *acc; /* (R, E) output accumulators */
    double *w;   /* (R, k) weights of the chosen experts */
    float *xe;   /* (R, E) rows gathered for one expert */
    float *g;    /* (R, Fx) gate, then silu(gate) * up */
    float *u;    /* (R, Fx) up */
    float *ye;   /* (R, E) expert output */
    int *sel;    /* (R, k) chosen experts, ascending */
    int *list;   /* (R * k) slots r * k + j grouped by expert */
    int *start;  /* (X + 1) offsets into list */
} moe_bufs;

static size_t al8(size_t n) {
    return (n + 7) & ~(size_t)7;
}

/* Byte offsets of each buffer for R rows; returns the total. */
static size_t layout(const lfm_hparams *hp, size_t R, void *base, moe_bufs *b) {
    size_t E = (size_t)hp->n_embd, Fx = (size_t)hp->n_ff_exp, k = (size_t)hp->n_expert_used,
           X = (size_t)hp->n_expert;
    size_t o = 0;
    char *p = base;
#define TAKE(field, type, count)                                                                   \
    do {                                                                                           \
        if (b) b->field = (type *)(void *)(p + o);                                                 \
        o += al8((count) * sizeof(type));                                                          \
    } while (0)
    TAKE(acc, double, R *E);
    TAKE(w, double, R *k);
    TAKE(xe, float, R *E);
    TAKE(g, float, R *Fx);
    TAKE(u, float, R *Fx);
    TAKE(ye, float, R *E);
    TAKE(sel, int, R *k);
    TAKE(list, int, R *k);
    TAKE(start, int, X + 1);
#undef TAKE
    return o;
}

/* madvise over [p, p + n) widened to whole pages. Advice only: an error
 * (e.g. memory that is not a file mapping, under the fuzzers) changes
 * nothing the forward pass relies on. */
static void advise(const void *p, size_t n, int advice) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !p || n == 0) return;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1), e = (uintptr_t)p + n;
    (void)madvise((void *)a, e - a, advice);
}

static size_t mat_len(const lfm_mat *w) {
    return w->data ? (size_t)w->n_out * lq_row_bytes(w->type, w->n_in) : 0;
}

void lfm_moe_advise_random(const gguf_file *f) {
    const uint8_t *lo = NULL, *hi = NULL;
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        if (!d || !t->nbytes) continue;
        if (!lo || d < lo) lo = d;
        if (!hi || d + t->nbytes > hi) hi = d + t->nbytes;
    }
    if (lo) advise(lo, (size_t)(hi - lo), MADV_RANDOM);
}

int lfm_moe_advise_loaded(lfm_model *m) {
    const lfm_hparams *hp = &m->hp;
    free(m->moe_paged);
    m->moe_paged = calloc((size_t)hp->n_layer * (size_t)hp->n_expert, 1);
    if (!m->moe_paged) return LFM_ENOMEM;
    /* Tied output: tok_embd is the output matrix, advised once. */
    advise(m->tok_embd.data, mat_len(&m->tok_embd), MADV_WILLNEED);
    if (m->output.data != m->tok_embd.data)
        advise(m->output.data, mat_len(&m->output), MADV_WILLNEED);
    for (int l = 0; l < hp->n_layer; l++) {
        const lfm_layer *L = &m->layers[l];
        const lfm_mat *d[] = {&L->ffn_gate, &L->ffn_up, &L->ffn_down, &L->conv_in, &L->conv_out,
                              &L->wq,       &L->wk,     &L->wv,       &L->wo};
        for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
            advise(d[i]->data, mat_len(d[i]), MADV_WILLNEED);
    }
    return 0;
}

int lfm_moe_reserve(lfm_model *m, int rows) {
    if (m->hp.n_expert == 0 || (size_t)rows <= m->moe_scratch_rows) return 0;
    size_t need = layout(&m->hp, (size_t)rows, NULL, NULL);
    void *p = realloc(m->moe_scratch, need);
    if (!p) return LFM_ENOMEM;
    m->moe_scratch = p;
    m->moe_scratch_rows = (size_t)rows;
    return 0;
}

void lfm_moe_route(const lfm_layer *L, int n_expert, int k, int E, const float *h, int *sel,
                   double *w) {
    double p[LIM_MOE_EXPERTS], s[LIM_MOE_EXPERTS];
    for (int x = 0; x < n_expert; x++) {
        const float *r = L->router + (size_t)x * E;
        double a0 = 0, a1 = 0;
        int i = 0;
        for (; i + 2 <= E; i += 2) {
            a0 += (double)r[i] * h[i];
            a1 += (double)r[i + 1] * h[i + 1];
        }
        for (; i < E; i++)
            a0 += (double)r[i] * h[i];
        p[x] = 1.0 / (1.0 + exp(-(a0 + a1)));
        s[x] = p[x] + L->exp_bias[x];
    }
    /* Top k by selection score; on a tie the lower index wins. */
    unsigned char taken[LIM_MOE_EXPERTS] = {0};
    for (int j = 0; j < k; j++) {
        int b = -1;
        for (int x = 0; x < n_expert; x++)
            if (!taken[x] && (b < 0 || s[x] > s[b])) b = x;
        taken[b] = 1;
    }
    double sum = 0;
    int j = 0;
    for (int x = 0; x < n_expert; x++)
        if (taken[x]) {
            sel[j++] = x;
            sum += p[x];
        }
    /* sigmoid > 0, so sum > 0 unless every chosen logit is below about -745. */
    for (j = 0; j < k; j++)
        w[j] = sum > 0 ? p[sel[j]] / sum : 1.0 / k;
}

/* Rows [x * n, (x + 1) * n) of a stacked expert matrix as its own matrix. */
static lfm_mat slice(const lfm_mat *W, int x, int64_t n) {
    lfm_mat s = *W;
    s.data = (const uint8_t *)W->data + (size_t)x * (size_t)n * lq_row_bytes(W->type, W->n_in);
    s.n_out = n;
    return s;
}

void lfm_moe_ffn(lfm_model *m, const lfm_layer *L, int n, const float *h, float *t) {
    const lfm_hparams *hp = &m->hp;
    const int E = hp->n_embd, X = hp->n_expert, k = hp->n_expert_used;
    const int64_t Fx = hp->n_ff_exp;
    moe_bufs b;
    layout(hp, (size_t)n, m->moe_scratch, &b);

    /* Route every row, then bucket the (row, slot) pairs by expert. */
    for (int x = 0; x <= X; x++)
        b.start[x] = 0;
    m->weight_reads += (uint64_t)n * (uint64_t)X * (uint64_t)E * sizeof *L->router;
    for (int r = 0; r < n; r++) {
        lfm_moe_route(L, X, k, E, h + (size_t)r * E, b.sel + (size_t)r * k, b.w + (size_t)r * k);
        for (int j = 0; j < k; j++)
            b.start[b.sel[(size_t)r * k + j] + 1]++;
    }
    for (int x = 0; x < X; x++)
        b.start[x + 1] += b.start[x];
    {
        /* Rows are visited in order, so each expert's list is in row order. */
        int cur[LIM_MOE_EXPERTS];
        memcpy(cur, b.start, (size_t)X * sizeof *cur);
        for (int r = 0; r < n; r++)
            for (int j = 0; j < k; j++)
                b.list[cur[b.sel[(size_t)r * k + j]]++] = r * k + j;
    }
    memset(b.acc, 0, (size_t)n * E * sizeof *b.acc);

    const size_t gate_rb = lq_row_bytes(L->gate_exps.type, E),
                 up_rb = lq_row_bytes(L->up_exps.type, E),
                 down_rb = lq_row_bytes(L->down_exps.type, Fx);
    for (int x = 0; x < X; x++) {
        int ne = b.start[x + 1] - b.start[x];
        if (ne == 0) continue;
        const int *lst = b.list + b.start[x];
        for (int i = 0; i < ne; i++)
            memcpy(b.xe + (size_t)i * E, h + (size_t)(lst[i] / k) * E, (size_t)E * sizeof *h);
        lfm_mat gw = slice(&L->gate_exps, x, Fx), uw = slice(&L->up_exps, x, Fx),
                dw = slice(&L->down_exps, x, E);
        unsigned char *paged = m->moe_paged ? m->moe_paged + (L - m->layers) * X + x : NULL;
        if (paged && !*paged) { /* first use: one bulk read of exactly its rows */
            *paged = 1;
            advise(gw.data, mat_len(&gw), MADV_WILLNEED);
            advise(uw.data, mat_len(&uw), MADV_WILLNEED);
            advise(dw.data, mat_len(&dw), MADV_WILLNEED);
        }
        lfm_fwd_matmul2(m, &gw, b.g, &uw, b.u, b.xe, ne);
        for (size_t i = 0; i < (size_t)ne * (size_t)Fx; i++) {
            double a = b.g[i];
            b.g[i] = (float)(a / (1.0 + exp(-a)) * b.u[i]);
        }
        lfm_fwd_matmul(m, &dw, b.g, ne, b.ye);
        m->moe_bytes_read += (uint64_t)Fx * (gate_rb + up_rb) + (uint64_t)E * down_rb;
        for (int i = 0; i < ne; i++) {
            int r = lst[i] / k;
            double wt = b.w[lst[i]];
            double *a = b.acc + (size_t)r * E;
            const float *y = b.ye + (size_t)i * E;
            for (int c = 0; c < E; c++)
                a[c] += wt * y[c];
        }
    }
    for (size_t i = 0; i < (size_t)n * E; i++)
        t[i] = (float)b.acc[i];
}
