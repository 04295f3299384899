/* quant_q8: activation quantizer, the scalar reference integer kernels, the
 * kernel-set choice and the blocked matmul driver (see quant_q8.h for the
 * numeric contract every set follows). */
#include "engine/quant_q8.h"

#include "engine/quant_impl.h"

#include <math.h>
#include <stdlib.h>

bool lq_q8_type(lq_type t) {
    return t == LQ_Q4_0 || t == LQ_Q8_0 || t == LQ_Q4_K || t == LQ_Q5_K || t == LQ_Q6_K;
}

bool lq_q8_used(lq_type t, lq_kernels k) {
    return lq_q8_type(t) && k != LQ_KERNELS_SCALAR && k != LQ_KERNELS_FLOAT;
}

/* ---- activation quantizer ---------------------------------------------------- */

int lq_q8_group(lq_type t) {
    return t == LQ_Q4_K || t == LQ_Q5_K || t == LQ_Q6_K ? 256 : 32;
}

/* d = amax / 127, q = round-half-even(x / d) computed as x * (1/d): one
 * definition for every ISA (lrintf and cvtps2dq both round half to even). A
 * non-finite amax gives d = 0 for a block that is all zero and NaN otherwise,
 * so a NaN activation still poisons its outputs. */
void lq_q8_quantize_block(const float *v, lq_q8blk *o) {
    float amax = 0;
    for (int i = 0; i < 32; i++) {
        float a = fabsf(v[i]);
        amax = a > amax ? a : amax;
        if (a != a) amax = a; /* NaN wins */
    }
    float d = amax / 127.0f;
    float id = d != 0 ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; i++) {
        long q = isfinite(d) ? lrintf(v[i] * id) : 0;
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        o->q[i] = (int8_t)q;
        sum += (int)q;
    }
    o->d = isfinite(d) ? d : NAN;
    o->sum = (int16_t)sum;
}

void lq_q8_quantize_ref(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa) {
    int64_t nb = n_in / 32;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < nb; b++)
            lq_q8_quantize_block(x + r * n_in + b * 32, xa + r * nb + b);
}

void lq_q8_quantize(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa) {
    lq_q8quant_fn f = lq_q8_quantize_fast();
    (f ? f : lq_q8_quantize_ref)(x, n_rows, n_in, xa);
}

/* One scale per 256 values (K-quant weights): the block definition above
 * with amax taken over the whole group. */
void lq_q8_quantize256_ref(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa) {
    int64_t nb = n_in / 32;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t g = 0; g < n_in / 256; g++) {
            const float *v = x + r * n_in + g * 256;
            float amax = 0;
            for (int i = 0; i < 256; i++) {
                float a = fabsf(v[i]);
                amax = a > amax ? a : amax;
                if (a != a) amax = a; /* NaN wins */
            }
            float d = amax / 127.0f;
            float id = d != 0 ? 1.0f / d : 0.0f;
            for (int b = 0; b < 8; b++) {
                lq_q8blk *o = xa + r * nb + g * 8 + b;
                const float *vb = v + b * 32;
                int sum = 0;
                for (int i = 0; i < 32; i++) {
                    long q = isfinite(d) ? lrintf(vb[i] * id) : 0;
                    q = q > 127 ? 127 : q < -127 ? -127 : q;
                    o->q[i] = (int8_t)q;
                    sum += (int)q;
                }
                o->d = isfinite(d) ? d : NAN;
                o->sum = (int16_t)sum;
            }
        }
}

void lq_q8_quantize_g(const float *x, int64_t n_rows, int64_t n_in, int group, lq_q8blk *xa) {
    if (group == 256 && n_in % 256 == 0) {
        lq_q8quant_fn f = lq_q8_quantize256_fast();
        (f ? f : lq_q8_quantize256_ref)(x, n_rows, n_in, xa);
    } else {
        lq_q8_quantize(x, n_rows, n_in, xa);
    }
}

/* ---- scalar reference ----------------------------------------------------------- */

/* Lane integers of one 32-value block: lane l sums elements 4l..4l+3. */
static void lanes(const int8_t w[32], const int8_t x[32], int32_t L[8]) {
    for (int l = 0; l < 8; l++) {
        int32_t s = 0;
        for (int i = 4 * l; i < 4 * l + 4; i++)
            s += (int32_t)w[i] * (int32_t)x[i];
        L[l] = s;
    }
}

static void fma8(float acc[8], const int32_t L[8], float s) {
    for (int l = 0; l < 8; l++)
        acc[l] = fmaf((float)L[l], s, acc[l]);
}

/* Decodes the integer weights of 32-block `blk` of a format block (the value
 * is scale * q [- min]); the scales are the caller's business. */
static void qblock(lq_type t, const uint8_t *b, int blk, int8_t q[32]) {
    switch (t) {
    case LQ_Q8_0: memcpy(q, b + 2, 32); break;
    case LQ_Q4_0:
        for (int i = 0; i < 16; i++) {
            q[i] = (int8_t)((b[2 + i] & 15) - 8);
            q[i + 16] = (int8_t)((b[2 + i] >> 4) - 8);
        }
        break;
    case LQ_Q4_K: {
        const uint8_t *qs = b + 16 + 32 * (blk / 2);
        for (int i = 0; i < 32; i++)
            q[i] = (int8_t)((qs[i] >> (4 * (blk & 1))) & 15);
        break;
    }
    case LQ_Q5_K: {
        const uint8_t *qh = b + 16, *qs = b + 48 + 32 * (blk / 2);
        for (int i = 0; i < 32; i++)
            q[i] = (int8_t)(((qs[i] >> (4 * (blk & 1))) & 15) | (((qh[i] >> blk) & 1) << 4));
        break;
    }
    case LQ_Q6_K: {
        int n = blk / 4, k = blk % 4;
        const uint8_t *lo = b + 64 * n + 32 * (k & 1), *hi = b + 128 + 32 * n;
        for (int i = 0; i < 32; i++)
            q[i] =
                (int8_t)((((lo[i] >> (4 * (k >> 1))) & 15) | (((hi[i] >> (2 * k)) & 3) << 4)) - 32);
        break;
    }
    default: memset(q, 0, 32);
    }
}

static float scalar_dot1(lq_type t, const uint8_t *w, const lq_q8blk *x, int64_t nb) {
    float acc[8] = {0}, accm = 0;
    int8_t q[32];
    int32_t L[8];
    if (t == LQ_Q8_0 || t == LQ_Q4_0) {
        size_t bb = t == LQ_Q8_0 ? LQ_Q8_0_BYTES : LQ_Q4_0_BYTES;
        for (int64_t b = 0; b < nb; b++, w += bb) {
            qblock(t, w, 0, q);
            lanes(q, x[b].q, L);
            fma8(acc, L, lq_rdf16(w) * x[b].d);
        }
        return lq_q8_reduce(acc);
    }
    size_t bb = lq_block_bytes(t);
    for (int64_t sb = 0; sb < nb / 8; sb++, w += bb) {
        const lq_q8blk *xs = x + sb * 8;
        if (t == LQ_Q6_K) {
            float d = lq_rdf16(w + 208);
            const int8_t *sc = (const int8_t *)(w + 192);
            for (int j = 0; j < 8; j++) {
                qblock(t, w, j, q);
                lanes(q, xs[j].q, L);
                for (int l = 0; l < 8; l++)
                    L[l] *= sc[2 * j + l / 4];
                fma8(acc, L, d * xs[j].d);
            }
            continue;
        }
        float d = lq_rdf16(w), dmin = lq_rdf16(w + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            lq_k_scale_min(w + 4, j, &sc, &m);
            qblock(t, w, j, q);
            lanes(q, xs[j].q, L);
            fma8(acc, L, (d * (float)sc) * xs[j].d);
            accm = fmaf((float)xs[j].sum, (dmin * (float)m) * xs[j].d, accm);
        }
    }
    return lq_q8_reduce(acc) - accm;
}

static void scalar_dot(lq_type t, const uint8_t *w, const lq_q8blk *x, int64_t nb, int nx,
                       int64_t xstride, float *out) {
    for (int j = 0; j < nx; j++)
        out[j] = scalar_dot1(t, w, x + j * xstride, nb);
}

const lq_q8set lq_q8_scalar = {"scalar", scalar_dot, NULL, NULL};

const lq_q8set *lq_q8_pick(lq_kernels k) {
    const lq_q8set *s = NULL;
    switch (k) {
    case LQ_KERNELS_Q8_AVX2: s = lq_q8_avx2(); break;
    case LQ_KERNELS_Q8_VNNI: s = lq_q8_vnni(); break;
    case LQ_KERNELS_Q8_NEON: s = lq_q8_neon(); break;
    case LQ_KERNELS_AUTO:
        s = lq_q8_vnni();
        if (!s) s = lq_q8_avx2();
        if (!s) s = lq_q8_neon();
        break;
    default: break;
    }
    return s ? s : &lq_q8_scalar;
}

/* ---- blocked driver ----------------------------------------------------------------- */

/* Three ways through, with the same bits (every output is what the set's dot
 * function gives for its W row and x row, whatever the tiling):
 * - 4 or more activation rows with a tile kernel (prefill, batched decode):
 *   LQ_Q8_TR weight rows x LQ_Q8_TT activation rows per call, each weight
 *   block decoded once per tile; the activation tile (64 rows, ~2.4 KB per
 *   32 columns) stays in L2 while the output rows advance, so each weight
 *   row is read once per 64 tokens.
 * - fewer (decode) with a rows kernel (Q4_0 on x86): all the weight rows
 *   against the 1..3 activation rows, their lane sums computed once.
 * - otherwise: LQ_OT weight rows (a few KB of Q4 weights, L1) against
 *   activation rows in groups of 4, activation rows in blocks of LQ_RT. */
#define LQ_OT       16
#define LQ_RT       LQ_Q8_TT
#define LQ_TILE_MIN 4

static void dot_rows(const lq_q8set *ks, lq_type t, const uint8_t *Wb, size_t rb, int64_t n_out,
                     const lq_q8blk *xa, int64_t nb, int64_t r0, int64_t r1, float *y, int64_t o0,
                     int64_t o1) {
    float out[4];
    for (int64_t ot = o0; ot < o1; ot += LQ_OT) {
        int64_t ot1 = o1 - ot < LQ_OT ? o1 : ot + LQ_OT;
        for (int64_t r = r0; r < r1; r += 4) {
            int nx = (int)(r1 - r < 4 ? r1 - r : 4);
            for (int64_t o = ot; o < ot1; o++) {
                ks->dot(t, Wb + (size_t)o * rb, xa + r * nb, nb, nx, nb, out);
                for (int j = 0; j < nx; j++)
                    y[(r + j) * n_out + o] = out[j];
            }
        }
    }
}

void lq_matmul_q8_range(lq_type t, const void *W, int64_t n_out, int64_t n_in, const lq_q8blk *xa,
                        int64_t n_rows, float *y, int64_t o0, int64_t o1, lq_kernels k) {
    if (o0 < 0) o0 = 0;
    if (o1 > n_out) o1 = n_out;
    if (n_rows <= 0 || o0 >= o1) return;
    if (!lq_q8_type(t) || n_in <= 0 || n_in % lq_block_values(t) != 0) {
        for (int64_t r = 0; r < n_rows; r++)
            for (int64_t o = o0; o < o1; o++)
                y[r * n_out + o] = NAN;
        return;
    }
    const lq_q8set *ks = lq_q8_pick(k);
    const int64_t nb = n_in / 32;
    const size_t rb = lq_row_bytes(t, n_in);
    const uint8_t *Wb = W;
    for (int64_t r0 = 0; r0 < n_rows; r0 += LQ_RT) {
        int64_t r1 = n_rows - r0 < LQ_RT ? n_rows : r0 + LQ_RT;
        int64_t o = o0;
        if (ks->rows && r1 - r0 < LQ_TILE_MIN &&
            ks->rows(t, Wb + (size_t)o0 * rb, rb, o1 - o0, xa + r0 * nb, nb, (int)(r1 - r0),
                     y + r0 * n_out + o0, n_out))
            continue;
        if (ks->tile && r1 - r0 >= LQ_TILE_MIN)
            for (; o + LQ_Q8_TR <= o1; o += LQ_Q8_TR)
                if (!ks->tile(t, Wb + (size_t)o * rb, rb, xa + r0 * nb, nb, (int)(r1 - r0),
                              y + r0 * n_out + o, n_out))
                    break;
        dot_rows(ks, t, Wb, rb, n_out, xa, nb, r0, r1, y, o, o1);
    }
}
