/* forward: the LFM2 forward pass over a batch of token rows.
 *
 * Rows may belong to different sequences. Everything that mixes rows of one
 * sequence (the causal conv, attention) runs per row in order against that
 * row's sequence state; everything else (the matmuls, by far the most time)
 * runs over all rows of a chunk at once, which batches decode across
 * sequences and prefill within one. No row's arithmetic depends on the other
 * rows of the batch: quant.c guarantees that for matmuls and the per-row code
 * below keeps it, so a request gives the same bits alone or batched.
 *
 * Precision: norms, softmax, attention dot products, conv taps and RoPE
 * angles are computed in double; activations are stored as float. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

/* Rows per pass through the layers; bounds scratch memory on long prefills.
 * Chunking does not change results (rows are independent, state advances in
 * order). */
#define CHUNK_ROWS 256

/* ------------------------------------------------------------- matmul -- */

/* One matrix of a matmul job: y = x W^T. */
typedef struct {
    const lfm_mat *W;
    const float *x;     /* (n_rows, n_in) */
    const lq_q8blk *xa; /* x quantized for the integer kernels, or NULL */
    float *y;           /* (n_rows, n_out) */
    int64_t chunk;      /* output rows per grab, a multiple of 16 */
    int64_t end;        /* chunks of this part and the ones before it */
} mm_part;

/* Up to three matrices reading the same rows (q/k/v, gate/up) in one pool
 * run: one wake-up and one wait instead of one per matrix, which is most of
 * what a decode step spends outside the kernels when ~100 matmuls of a few
 * tens of microseconds each run back to back. */
typedef struct {
    mm_part p[3];
    int np;
    int64_t n_rows;
    lq_kernels k;
    /* SwiGLU fused in: parts 0 (gate) and 1 (up) have the same shape, and a
     * chunk is those output rows of both, after which the thread writes
     * silu(gate) * up over them into the gate rows (no extra pass, no extra
     * wait, and the elementwise work is shared out with the matmuls). */
    bool swiglu;
    _Atomic int64_t next; /* first chunk not yet taken, over all parts */
} mm_job;

static void mm_part_rows(const mm_job *j, const mm_part *p, int64_t o0, int64_t o1) {
    const int64_t n_out = p->W->n_out;
    if (p->xa && lq_q8_used(p->W->type, j->k))
        lq_matmul_q8_range(p->W->type, p->W->data, n_out, p->W->n_in, p->xa, j->n_rows, p->y, o0,
                           o1, j->k);
    else
        lq_matmul_range(p->W->type, p->W->data, n_out, p->W->n_in, p->x, j->n_rows, p->y, o0, o1,
                        j->k);
}

/* Threads take chunks of output rows until none is left. A static half each
 * made the whole step wait for the slower thread, and on a shared machine a
 * descheduled worker held up every matmul (over half of decode time went
 * to waiting). Every output row's value is computed the same way whichever
 * thread takes it (quant.h contract), so results do not depend on it. */
static void mm_worker(void *ctx, int i, int n) {
    (void)i, (void)n;
    mm_job *j = ctx;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        int pi = 0;
        while (pi < j->np && c >= j->p[pi].end)
            pi++;
        if (pi == j->np) break;
        const mm_part *p = &j->p[pi];
        const int64_t n_out = p->W->n_out;
        int64_t o0 = (c - (pi ? j->p[pi - 1].end : 0)) * p->chunk;
        int64_t o1 = o0 + p->chunk < n_out ? o0 + p->chunk : n_out;
        mm_part_rows(j, p, o0, o1);
        if (!j->swiglu) continue;
        mm_part_rows(j, &j->p[1], o0, o1);
        for (int64_t r = 0; r < j->n_rows; r++) {
            float *g = p->y + r * n_out, *u = j->p[1].y + r * n_out;
            for (int64_t o = o0; o < o1; o++) {
                double a = g[o];
                g[o] = (float)(a / (1.0 + exp(-a)) * u[o]);
            }
        }
    }
}

/* ys[i] = x Ws[i]^T over all rows for np (1..3) matrices; output rows are
 * shared out in chunks over the pool's threads (about 8 per thread per
 * matrix). The value of every y element is independent of the split
 * (quant.h contract). xas[i]: x already quantized by quant_acts, or NULL. */
static void matmul_n(lfm_model *m, int np, const lfm_mat *const *Ws, const float *x,
                     const lq_q8blk *const *xas, int64_t n_rows, float *const *ys, bool swiglu) {
    int nt = tp_size(m->pool);
    int64_t work = 0;
    for (int i = 0; i < np; i++)
        work += Ws[i]->n_out * Ws[i]->n_in * n_rows;
    bool one = nt == 1 || work < (1 << 17);
    mm_job j = {.np = np, .n_rows = n_rows, .k = m->kernels, .swiglu = swiglu};
    int64_t end = 0;
    for (int i = 0; i < np; i++) {
        int64_t n_out = Ws[i]->n_out;
        int64_t chunk = one ? n_out : (n_out / (8 * nt) + 15) & ~(int64_t)15;
        if (chunk < 16) chunk = 16;
        end += (n_out + chunk - 1) / chunk;
        m->weight_reads += (uint64_t)n_out * lq_row_bytes(Ws[i]->type, Ws[i]->n_in);
        j.p[i] = (mm_part){Ws[i], x, xas[i], ys[i], chunk, end};
        if (swiglu) { /* part 1 rides part 0's chunks */
            j.p[1] = (mm_part){Ws[1], x, xas[1], ys[1], chunk, end};
            m->weight_reads += (uint64_t)n_out * lq_row_bytes(Ws[1]->type, Ws[1]->n_in);
            break;
        }
    }
    atomic_init(&j.next, 0);
    if (one)
        mm_worker(&j, 0, 1);
    else
        tp_run(m->pool, mm_worker, &j);
}

static void matmul(lfm_model *m, const lfm_mat *W, const float *x, const lq_q8blk *xa,
                   int64_t n_rows, float *y) {
    matmul_n(m, 1, &W, x, &xa, n_rows, &y, false);
}

typedef struct {
    const float *x;
    int64_t n_rows, n_in;
    int group;
    lq_q8blk *xa;
} qa_job;

static void qa_worker(void *ctx, int i, int n) {
    qa_job *j = ctx;
    int64_t r0 = j->n_rows * i / n, r1 = j->n_rows * (i + 1) / n;
    int64_t nb = j->n_in / 32;
    lq_q8_quantize_g(j->x + r0 * j->n_in, r1 - r0, j->n_in, j->group, j->xa + r0 * nb);
}

/* x (n_rows, n_in) quantized for the integer kernels, once per activation
 * format (lq_q8_group: a scale per 32 values, or per 256 for K-quant
 * weights) that the matrices reading it need. */
typedef struct {
    const lq_q8blk *g32, *g256; /* NULL: not needed, or not possible */
} qacts;

static const lq_q8blk *quant_one(lfm_model *m, int group, const float *x, int64_t n_in,
                                 int64_t n_rows) {
    lq_q8blk *buf = group == 256 ? m->xq256 : m->xq;
    qa_job j = {x, n_rows, n_in, group, buf};
    /* A few rows (decode) quantize faster than a pool run wakes anyone. */
    if (tp_size(m->pool) == 1 || n_rows * n_in < (1 << 16))
        qa_worker(&j, 0, 1);
    else
        tp_run(m->pool, qa_worker, &j);
    return buf;
}

static qacts quant_acts(lfm_model *m, const lfm_mat *const *Ws, int nW, const float *x,
                        int64_t n_rows) {
    qacts a = {NULL, NULL};
    for (int i = 0; i < nW; i++) {
        const lfm_mat *W = Ws[i];
        int64_t n_in = W->n_in;
        if (!lq_q8_used(W->type, m->kernels) || n_in % 32 != 0 ||
            (size_t)(n_rows * n_in / 32) > m->xq_blocks)
            continue;
        int g = lq_q8_group(W->type);
        if (g == 256 && n_in % 256 != 0) g = 32;
        if (g == 256 && !a.g256) a.g256 = quant_one(m, 256, x, n_in, n_rows);
        if (g == 32 && !a.g32) a.g32 = quant_one(m, 32, x, n_in, n_rows);
    }
    return a;
}

/* The copy for W (NULL: matmul quantizes itself or runs in float). */
static const lq_q8blk *qa_for(const qacts *a, const lfm_mat *W) {
    return lq_q8_group(W->type) == 256 && W->n_in % 256 == 0 ? a->g256 : a->g32;
}

/* One matrix reading x. */
static void matmul_q(lfm_model *m, const lfm_mat *W, const float *x, int64_t n_rows, float *y) {
    const lfm_mat *Ws[1] = {W};
    qacts a = quant_acts(m, Ws, 1, x, n_rows);
    matmul(m, W, x, qa_for(&a, W), n_rows, y);
}

void lfm_fwd_matmul(lfm_model *m, const lfm_mat *W, const float *x, int64_t n_rows, float *y) {
    matmul_q(m, W, x, n_rows, y);
}

void lfm_fwd_matmul2(lfm_model *m, const lfm_mat *W1, float *y1, const lfm_mat *W2, float *y2,
                     const float *x, int64_t n_rows) {
    const lfm_mat *Ws[2] = {W1, W2};
    qacts a = quant_acts(m, Ws, 2, x, n_rows);
    const lq_q8blk *xas[2] = {qa_for(&a, W1), qa_for(&a, W2)};
    float *ys[2] = {y1, y2};
    matmul_n(m, 2, Ws, x, xas, n_rows, ys, false);
}

/* -------------------------------------------------------------- small -- */

/* out = x / sqrt(mean(x^2) + eps) * w, the sum in double. */
static void rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double scale = 1.0 / sqrt(ss / (double)n + (double)eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)((double)x[i] * scale * w[i]);
}

/* NEOX rotation: dim i pairs with i + hd/2. cs holds cos[hd/2] then sin[hd/2]. */
static void rope(float *v, const double *cs, int hd) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        double a = v[i], b = v[i + half], c = cs[i], s = cs[half + i];
        v[i] = (float)(a * c - b * s);
        v[i + half] = (float)(a * s + b * c);
    }
}

static void rope_table(double *cs, int pos, int hd, double theta) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        double ang = (double)pos * pow(theta, -2.0 * i / hd);
        cs[i] = cos(ang);
        cs[half + i] = sin(ang);
    }
}

/* f16 -> f32 through a 256 KB table: the attention inner loops read every
 * cached K/V element once per query head, so the conversion must be a load. */
static float g_f16_table[1 << 16];
static pthread_once_t g_f16_once = PTHREAD_ONCE_INIT;

static void f16_table_init(void) {
    for (uint32_t i = 0; i < (1u << 16); i++)
        g_f16_table[i] = lq_f16_to_f32((uint16_t)i);
}

static inline void kv_store(void *buf, size_t idx, size_t elt, float v) {
    if (elt == 4)
        ((float *)buf)[idx] = v;
    else
        ((uint16_t *)buf)[idx] = lq_f32_to_f16(v);
}

/* Dot products and axpy in double with four independent accumulators (a
 * fixed order, so still deterministic), one version per KV element type. */
static double dot_f32(const float *q, const float *k, int n) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += (double)q[i] * k[i];
        a1 += (double)q[i + 1] * k[i + 1];
        a2 += (double)q[i + 2] * k[i + 2];
        a3 += (double)q[i + 3] * k[i + 3];
    }
    for (; i < n; i++)
        a0 += (double)q[i] * k[i];
    return (a0 + a1) + (a2 + a3);
}

static double dot_f16(const float *q, const uint16_t *k, int n) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += (double)q[i] * g_f16_table[k[i]];
        a1 += (double)q[i + 1] * g_f16_table[k[i + 1]];
        a2 += (double)q[i + 2] * g_f16_table[k[i + 2]];
        a3 += (double)q[i + 3] * g_f16_table[k[i + 3]];
    }
    for (; i < n; i++)
        a0 += (double)q[i] * g_f16_table[k[i]];
    return (a0 + a1) + (a2 + a3);
}

static void axpy_f32(double *acc, double p, const float *v, int n) {
    for (int i = 0; i < n; i++)
        acc[i] += p * v[i];
}

static void axpy_f16(double *acc, double p, const uint16_t *v, int n) {
    for (int i = 0; i < n; i++)
        acc[i] += p * g_f16_table[v[i]];
}

/* ------------------------------------------------------------- blocks -- */

typedef struct {
    lfm_model *m;
    int n;                /* rows in this chunk */
    lfm_seq *const *seqs; /* (n) */
    const int *pos;       /* (n) position of each row in its sequence */
    float *x;             /* (n, E) residual stream */
    float *h;             /* (n, E) normalized input of the current sub-block */
    float *t;             /* (n, E) sub-block output before the residual add */
    float *big;           /* (n, big_cols) projections */
} fwd;

/* Short-conv block: t = out_proj(C * conv_K(B * X)), [B|C|X] = in_proj(h).
 * The conv is causal and depthwise; each sequence keeps its last K-1 u's. */
static void conv_block(fwd *f, const lfm_layer *L) {
    lfm_model *m = f->m;
    const int E = m->hp.n_embd, K = m->hp.conv_l_cache;
    float *bcx = f->big; /* (n, 3E) */
    matmul_q(m, &L->conv_in, f->h, f->n, bcx);
    for (int r = 0; r < f->n; r++) {
        const float *B = bcx + (size_t)r * 3 * E, *C = B + E, *X = B + 2 * E;
        float *st = f->seqs[r]->conv + (size_t)L->conv_index * (K - 1) * E; /* (K-1, E) */
        float *y = f->h + (size_t)r * E; /* h row r is no longer needed */
        for (int c = 0; c < E; c++) {
            const float *w = L->conv_w + (size_t)c * K;
            float u = (float)((double)B[c] * X[c]);
            double acc = (double)w[K - 1] * u;
            for (int k = 0; k < K - 1; k++)
                acc += (double)w[k] * st[(size_t)k * E + c];
            y[c] = (float)((double)C[c] * acc);
            /* Roll the window: drop the oldest, append u. */
            for (int k = 0; k + 1 < K - 1; k++)
                st[(size_t)k * E + c] = st[(size_t)(k + 1) * E + c];
            if (K > 1) st[(size_t)(K - 2) * E + c] = u;
        }
    }
    matmul_q(m, &L->conv_out, f->h, f->n, f->t);
}

typedef struct {
    fwd *f;
    const lfm_layer *L;
    const float *q; /* (n, E) rotated queries */
    float *out;     /* (n, E) */
    size_t stride;  /* doubles of dscratch per worker */
} attn_job;

/* One (row, head): softmax(q k^T / sqrt(hd)) v over positions [0, pos]. */
static void attn_head(attn_job *j, int r, int h, double *sc) {
    fwd *f = j->f;
    const lfm_model *m = f->m;
    const int hd = m->hp.head_dim, H = m->hp.n_head, Hkv = j->L->n_head_kv;
    const lfm_seq *s = f->seqs[r];
    const int kvh = h / (H / Hkv), p = f->pos[r];
    const size_t kvd = (size_t)Hkv * hd, elt = s->kv_elt;
    const void *Kc = s->k[j->L->attn_index], *Vc = s->v[j->L->attn_index];
    const float *q = j->q + (size_t)r * H * hd + (size_t)h * hd;
    double *acc = sc + p + 1; /* (hd) */
    const double scale = 1.0 / sqrt((double)hd);
    const int f16 = elt == 2;
    double mx = -INFINITY;
    for (int t = 0; t <= p; t++) {
        size_t base = (size_t)t * kvd + (size_t)kvh * hd;
        double d = f16 ? dot_f16(q, (const uint16_t *)Kc + base, hd)
                       : dot_f32(q, (const float *)Kc + base, hd);
        sc[t] = d * scale;
        if (sc[t] > mx) mx = sc[t];
    }
    double sum = 0;
    for (int t = 0; t <= p; t++)
        sum += (sc[t] = exp(sc[t] - mx));
    for (int i = 0; i < hd; i++)
        acc[i] = 0;
    for (int t = 0; t <= p; t++) {
        size_t base = (size_t)t * kvd + (size_t)kvh * hd;
        if (f16)
            axpy_f16(acc, sc[t], (const uint16_t *)Vc + base, hd);
        else
            axpy_f32(acc, sc[t], (const float *)Vc + base, hd);
    }
    float *o = j->out + (size_t)r * H * hd + (size_t)h * hd;
    for (int i = 0; i < hd; i++)
        o[i] = (float)(acc[i] / sum);
}

static void attn_worker(void *ctx, int i, int n) {
    attn_job *j = ctx;
    int H = j->f->m->hp.n_head;
    int64_t total = (int64_t)j->f->n * H;
    double *sc = j->f->m->dscratch + (size_t)i * j->stride;
    for (int64_t w = total * i / n; w < total * (i + 1) / n; w++)
        attn_head(j, (int)(w / H), (int)(w % H), sc);
}

/* Attention block: per-head RMSNorm on q and k, NEOX RoPE, GQA (query head h
 * reads KV head h / (H/Hkv)), causal softmax; t = Wo(attention). */
static void attn_block(fwd *f, const lfm_layer *L) {
    lfm_model *m = f->m;
    const int E = m->hp.n_embd, hd = m->hp.head_dim, H = m->hp.n_head, Hkv = L->n_head_kv;
    const size_t kvd = (size_t)Hkv * hd;
    float *q = f->big;                 /* (n, E) */
    float *k = q + (size_t)f->n * E;   /* (n, Hkv*hd) */
    float *v = k + (size_t)f->n * kvd; /* (n, Hkv*hd) */
    /* h is quantized once per activation format q, k and v need. */
    const lfm_mat *Ws[3] = {&L->wq, &L->wk, &L->wv};
    qacts ha = quant_acts(m, Ws, 3, f->h, f->n);
    const lq_q8blk *xas[3] = {qa_for(&ha, &L->wq), qa_for(&ha, &L->wk), qa_for(&ha, &L->wv)};
    float *ys[3] = {q, k, v};
    matmul_n(m, 3, Ws, f->h, xas, f->n, ys, false);
    /* Pass 1 (in row order): normalize, rotate, append K/V to each row's
     * sequence. After it every row's causal window is in its cache, so pass 2
     * can run rows and heads in parallel. */
    double *cs = m->dscratch; /* (hd) */
    for (int r = 0; r < f->n; r++) {
        lfm_seq *s = f->seqs[r];
        rope_table(cs, f->pos[r], hd, m->hp.rope_theta);
        for (int h = 0; h < H; h++) {
            float *qh = q + (size_t)r * E + (size_t)h * hd;
            rmsnorm(qh, qh, L->q_norm, hd, m->hp.rms_eps);
            rope(qh, cs, hd);
        }
        size_t base = (size_t)f->pos[r] * kvd;
        for (int h = 0; h < Hkv; h++) {
            float *kh = k + (size_t)r * kvd + (size_t)h * hd;
            rmsnorm(kh, kh, L->k_norm, hd, m->hp.rms_eps);
            rope(kh, cs, hd);
        }
        for (size_t i = 0; i < kvd; i++) {
            kv_store(s->k[L->attn_index], base + i, s->kv_elt, k[(size_t)r * kvd + i]);
            kv_store(s->v[L->attn_index], base + i, s->kv_elt, v[(size_t)r * kvd + i]);
        }
    }
    int max_pos = 0;
    for (int r = 0; r < f->n; r++)
        if (f->pos[r] > max_pos) max_pos = f->pos[r];
    attn_job j = {f, L, q, f->h, (size_t)max_pos + 1 + (size_t)hd};
    if (tp_size(m->pool) == 1 || (int64_t)f->n * H * (max_pos + 1) * hd < (1 << 15))
        attn_worker(&j, 0, 1);
    else
        tp_run(m->pool, attn_worker, &j);
    matmul_q(m, &L->wo, f->h, f->n, f->t);
}

/* FFN (SwiGLU): t = down(silu(gate(h)) * up(h)). */
static void ffn(fwd *f, const lfm_layer *L) {
    lfm_model *m = f->m;
    const size_t F = (size_t)m->hp.n_ff;
    float *g = f->big, *u = g + (size_t)f->n * F; /* (n, F) each */
    const lfm_mat *Ws[2] = {&L->ffn_gate, &L->ffn_up};
    qacts a = quant_acts(m, Ws, 2, f->h, f->n);
    const lq_q8blk *xas[2] = {qa_for(&a, Ws[0]), qa_for(&a, Ws[1])};
    float *ys[2] = {g, u};
    /* g = silu(g) * u inside the job (load_mat gave both F rows of E). */
    matmul_n(m, 2, Ws, f->h, xas, f->n, ys, true);
    matmul_q(m, &L->ffn_down, g, f->n, f->t);
}

/* --------------------------------------------------------------- eval -- */

static size_t big_cols(const lfm_model *m) {
    size_t E = (size_t)m->hp.n_embd, c = 2 * (size_t)m->hp.n_ff;
    if (3 * E > c) c = 3 * E;
    for (int l = 0; l < m->hp.n_layer; l++) {
        size_t a = E + 2 * (size_t)m->layers[l].n_head_kv * (size_t)m->hp.head_dim;
        if (a > c) c = a;
    }
    return c;
}

static int ensure_scratch(lfm_model *m, int rows, int max_pos) {
    size_t E = (size_t)m->hp.n_embd;
    size_t need = (size_t)rows * (3 * E + big_cols(m));
    if (need > m->scratch_floats) {
        float *p = realloc(m->scratch, need * sizeof *p);
        if (!p) return LFM_ENOMEM;
        m->scratch = p;
        m->scratch_floats = need;
    }
    size_t wide = E > (size_t)m->hp.n_ff ? E : (size_t)m->hp.n_ff;
    if ((size_t)m->hp.n_ff_exp > wide) wide = (size_t)m->hp.n_ff_exp;
    size_t qneed = (size_t)rows * (wide / 32);
    if (qneed > m->xq_blocks) {
        lq_q8blk *p = realloc(m->xq, qneed * sizeof *p);
        if (!p) return LFM_ENOMEM;
        m->xq = p;
        p = realloc(m->xq256, qneed * sizeof *p);
        if (!p) return LFM_ENOMEM;
        m->xq256 = p;
        m->xq_blocks = qneed;
    }
    size_t dneed = (size_t)tp_size(m->pool) * ((size_t)max_pos + 1 + (size_t)m->hp.head_dim);
    if (dneed > m->dscratch_doubles) {
        double *p = realloc(m->dscratch, dneed * sizeof *p);
        if (!p) return LFM_ENOMEM;
        m->dscratch = p;
        m->dscratch_doubles = dneed;
    }
    return 0;
}

/* Runs rows [0, n) (n <= CHUNK_ROWS) through every block; writes logits of
 * the wanted rows to `logits` in order. Sequence positions advance here. */
static void eval_chunk(lfm_model *m, int n, const int32_t *tokens, lfm_seq *const *seqs,
                       const uint8_t *want, float *logits, int *pos) {
    const int E = m->hp.n_embd;
    fwd f = {m, n, seqs, pos, NULL, NULL, NULL, NULL};
    f.x = m->scratch;
    f.h = f.x + (size_t)n * E;
    f.t = f.h + (size_t)n * E;
    f.big = f.t + (size_t)n * E;
    size_t erb = lq_row_bytes(m->tok_embd.type, E);
    m->weight_reads += (uint64_t)n * erb;
    for (int r = 0; r < n; r++) {
        pos[r] = seqs[r]->pos++;
        lq_dequant_row(m->tok_embd.type,
                       (const uint8_t *)m->tok_embd.data + (size_t)tokens[r] * erb,
                       f.x + (size_t)r * E, E);
    }
    for (int l = 0; l < m->hp.n_layer; l++) {
        const lfm_layer *L = &m->layers[l];
        for (int r = 0; r < n; r++)
            rmsnorm(f.h + (size_t)r * E, f.x + (size_t)r * E, L->attn_norm, E, m->hp.rms_eps);
        if (L->n_head_kv == 0)
            conv_block(&f, L);
        else
            attn_block(&f, L);
        for (size_t i = 0; i < (size_t)n * E; i++)
            f.x[i] += f.t[i];
        for (int r = 0; r < n; r++)
            rmsnorm(f.h + (size_t)r * E, f.x + (size_t)r * E, L->ffn_norm, E, m->hp.rms_eps);
        if (L->moe)
            lfm_moe_ffn(m, L, n, f.h, f.t);
        else
            ffn(&f, L);
        for (size_t i = 0; i < (size_t)n * E; i++)
            f.x[i] += f.t[i];
    }
    /* Final norm only for wanted rows, packed, then one matmul over the vocab. */
    int nw = 0;
    for (int r = 0; r < n; r++)
        if (want[r])
            rmsnorm(f.h + (size_t)nw++ * E, f.x + (size_t)r * E, m->final_norm, E, m->hp.rms_eps);
    if (nw > 0) matmul_q(m, &m->output, f.h, nw, logits);
}

static int eval_fail(char *err, size_t errlen, int code, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return code;
}

int lfm_eval(lfm_model *m, int n, const int32_t *tokens, lfm_seq *const *seqs,
             const uint8_t *want_logits, float *logits, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    pthread_once(&g_f16_once, f16_table_init);
    if (!m || n < 0 || (n > 0 && (!tokens || !seqs)))
        return eval_fail(err, errlen, LFM_EINVAL, "lfm_eval: bad arguments");
    if (n == 0) return 0;
    int n_want = 0;
    for (int i = 0; i < n; i++) {
        if (!seqs[i] || seqs[i]->m != m)
            return eval_fail(err, errlen, LFM_EINVAL,
                             "lfm_eval: row has no sequence of this model");
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab) {
            if (err && errlen)
                snprintf(err, errlen, "lfm_eval: token %d out of range [0, %d)", (int)tokens[i],
                         m->hp.n_vocab);
            return LFM_EINVAL;
        }
        n_want += want_logits ? want_logits[i] != 0 : i == n - 1;
    }
    if (n_want > 0 && !logits)
        return eval_fail(err, errlen, LFM_EINVAL, "lfm_eval: logits buffer is NULL");

    /* Rows per distinct sequence: check every context before touching state. */
    lfm_seq **ds = malloc((size_t)n * sizeof *ds);
    int *dn = malloc((size_t)n * sizeof *dn);
    int *pos = malloc(CHUNK_ROWS * sizeof *pos);
    uint8_t *want = malloc(CHUNK_ROWS);
    int nd = 0, rc = 0, max_pos = 0;
    if (!ds || !dn || !pos || !want) {
        rc = eval_fail(err, errlen, LFM_ENOMEM, "lfm_eval: out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int d = 0;
        while (d < nd && ds[d] != seqs[i])
            d++;
        if (d == nd) {
            ds[nd] = seqs[i];
            dn[nd++] = 0;
        }
        dn[d]++;
    }
    for (int d = 0; d < nd; d++) {
        if ((int64_t)ds[d]->pos + dn[d] > ds[d]->n_ctx) {
            if (err && errlen)
                snprintf(err, errlen, "context length exceeded: %d + %d tokens > n_ctx %d",
                         ds[d]->pos, dn[d], ds[d]->n_ctx);
            rc = LFM_ECTX;
            goto out;
        }
        if (ds[d]->pos + dn[d] - 1 > max_pos) max_pos = ds[d]->pos + dn[d] - 1;
    }
    for (int d = 0; d < nd && !rc; d++)
        if (lfm_seq_reserve(ds[d], ds[d]->pos + dn[d]) != 0)
            rc = eval_fail(err, errlen, LFM_ENOMEM, "lfm_eval: out of memory for the KV cache");
    if (rc) goto out;

    pthread_mutex_lock(&m->mu);
    if (ensure_scratch(m, n < CHUNK_ROWS ? n : CHUNK_ROWS, max_pos) != 0 ||
        lfm_moe_reserve(m, n < CHUNK_ROWS ? n : CHUNK_ROWS) != 0) {
        pthread_mutex_unlock(&m->mu);
        rc = eval_fail(err, errlen, LFM_ENOMEM, "lfm_eval: out of memory for scratch");
        goto out;
    }
    float *lo = logits;
    for (int r0 = 0; r0 < n; r0 += CHUNK_ROWS) {
        int c = n - r0 < CHUNK_ROWS ? n - r0 : CHUNK_ROWS, nw = 0;
        for (int i = 0; i < c; i++) {
            want[i] = want_logits ? want_logits[r0 + i] != 0 : r0 + i == n - 1;
            nw += want[i];
        }
        eval_chunk(m, c, tokens + r0, seqs + r0, want, lo, pos);
        if (nw) lo += (size_t)nw * m->hp.n_vocab;
    }
    pthread_mutex_unlock(&m->mu);
out:
    free(ds);
    free(dn);
    free(pos);
    free(want);
    return rc;
}
