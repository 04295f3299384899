/* quant: type table, f16/bf16 conversions, scalar reference dequantizers and
 * kernels, and the matmul driver (lq_matmul_range) that picks a kernel set.
 *
 * Block layouts follow ggml (see quant_impl.h for the byte maps). The scalar
 * kernels are the reference: every product is exact in double and summed in
 * double, so the only rounding is that of the dequantized weight itself. */
#include "engine/quant_impl.h"
#include "engine/quant_q8.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>

#ifdef __clang__
/* Keep a*b-c as two roundings, as the format definitions say. */
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- type table ------------------------------------------------------------ */

typedef struct {
    uint32_t id;
    const char *name;
    int64_t values;
    size_t bytes;
} lq_info;

static const lq_info lq_types[] = {
    {LQ_F32, "F32", 1, 4},
    {LQ_F16, "F16", 1, 2},
    {LQ_Q4_0, "Q4_0", 32, LQ_Q4_0_BYTES},
    {LQ_Q8_0, "Q8_0", 32, LQ_Q8_0_BYTES},
    {LQ_Q4_K, "Q4_K", 256, LQ_Q4_K_BYTES},
    {LQ_Q5_K, "Q5_K", 256, LQ_Q5_K_BYTES},
    {LQ_Q6_K, "Q6_K", 256, LQ_Q6_K_BYTES},
    {LQ_BF16, "BF16", 1, 2},
};
#define LQ_NTYPES (sizeof(lq_types) / sizeof(lq_types[0]))

static const lq_info *lq_find(uint32_t t) {
    for (size_t i = 0; i < LQ_NTYPES; i++)
        if (lq_types[i].id == t) return &lq_types[i];
    return NULL;
}

bool lq_type_supported(uint32_t t) {
    return lq_find(t) != NULL;
}

const char *lq_type_name(uint32_t t) {
    const lq_info *ti = lq_find(t);
    return ti ? ti->name : "?";
}

int lq_type_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < LQ_NTYPES; i++) {
        const char *a = lq_types[i].name, *b = name;
        while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b))
            a++, b++;
        if (!*a && !*b) return (int)lq_types[i].id;
    }
    return -1;
}

int64_t lq_block_values(lq_type t) {
    const lq_info *ti = lq_find(t);
    return ti ? ti->values : 0;
}

size_t lq_block_bytes(lq_type t) {
    const lq_info *ti = lq_find(t);
    return ti ? ti->bytes : 0;
}

size_t lq_row_bytes(lq_type t, int64_t n) {
    const lq_info *ti = lq_find(t);
    if (!ti || n < 0) return 0;
    return (size_t)(n / ti->values) * ti->bytes;
}

/* ---- f16 / bf16 ------------------------------------------------------------ */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float lq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return u2f(sign | 0x7f800000 | (mant << 13)); /* inf / nan (payload kept) */
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        float v = (float)mant * u2f(0x33800000); /* 2^-24 */
        return sign ? -v : v;
    }
    return u2f(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t lq_f32_to_f16(float f) {
    uint32_t x = f2u(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffff;
    if (x >= 0x7f800000) { /* inf stays inf; nan stays a (quiet) nan */
        if (x == 0x7f800000) return sign | 0x7c00;
        return (uint16_t)(sign | 0x7e00 | ((x >> 13) & 0x3ff));
    }
    if (x >= 0x477ff000) return sign | 0x7c00; /* >= 65520 rounds to inf */
    if (x >= 0x38800000) {                     /* normal in f16 (>= 2^-14) */
        x += 0xfff + ((x >> 13) & 1);          /* round half to even on bit 13 */
        return (uint16_t)(sign | ((x - 0x38000000) >> 13));
    }
    /* subnormal or zero: adding 0.5 (ulp 2^-24) rounds |f| to a multiple of
     * 2^-24 with round-half-even; the integer part of the mantissa is the
     * f16 subnormal code (0x400 = the smallest normal, also correct). */
    uint32_t r = f2u(u2f(x) + 0.5f) - 0x3f000000;
    return (uint16_t)(sign | r);
}

float lq_bf16_to_f32(uint16_t h) {
    return u2f((uint32_t)h << 16);
}

uint16_t lq_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- scalar dequantization --------------------------------------------------- */

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = lq_rdf16(b);
    for (int i = 0; i < 32; i++)
        y[i] = d * (float)(int8_t)b[2 + i];
}

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = lq_rdf16(b);
    const uint8_t *qs = b + 2;
    for (int i = 0; i < 16; i++) {
        y[i] = d * (float)((qs[i] & 0x0f) - 8);
        y[i + 16] = d * (float)((qs[i] >> 4) - 8);
    }
}

static void dq_q4_k(const uint8_t *b, float *y) {
    float d = lq_rdf16(b), dmin = lq_rdf16(b + 2);
    const uint8_t *s = b + 4, *qs = b + 16;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        lq_k_scale_min(s, j, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        const uint8_t *q = qs + 32 * (j / 2);
        int sh = 4 * (j & 1);
        for (int l = 0; l < 32; l++)
            y[32 * j + l] = d1 * (float)((q[l] >> sh) & 0x0f) - m1;
    }
}

static void dq_q5_k(const uint8_t *b, float *y) {
    float d = lq_rdf16(b), dmin = lq_rdf16(b + 2);
    const uint8_t *s = b + 4, *qh = b + 16, *qs = b + 48;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        lq_k_scale_min(s, j, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        const uint8_t *q = qs + 32 * (j / 2);
        int sh = 4 * (j & 1);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> sh) & 0x0f) | (((qh[l] >> j) & 1) << 4);
            y[32 * j + l] = d1 * (float)v - m1;
        }
    }
}

static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = lq_rdf16(b + 208);
    /* Output index i = 128n + 32k + l: low 4 bits from ql[64n + l + 32(k&1)]
     * (low nibble for k<2, high for k>=2), high 2 bits from qh[32n + l] at
     * bit 2k; scale sc[i / 16]. */
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 4; k++) {
            const uint8_t *lo = ql + 64 * n + 32 * (k & 1);
            const uint8_t *hi = qh + 32 * n;
            int sh = 4 * (k >> 1);
            for (int l = 0; l < 32; l++) {
                int i = 128 * n + 32 * k + l;
                int q = (((lo[l] >> sh) & 0x0f) | (((hi[l] >> (2 * k)) & 3) << 4)) - 32;
                float d1 = d * (float)sc[i / 16];
                y[i] = d1 * (float)q;
            }
        }
}

/* Dequantizes one block of block_values values. */
static void dq_block(lq_type t, const uint8_t *b, float *y) {
    switch (t) {
    case LQ_F32: memcpy(y, b, 4); break;
    case LQ_F16: y[0] = lq_rdf16(b); break;
    case LQ_BF16: y[0] = lq_bf16_to_f32(lq_rd16(b)); break;
    case LQ_Q8_0: dq_q8_0(b, y); break;
    case LQ_Q4_0: dq_q4_0(b, y); break;
    case LQ_Q4_K: dq_q4_k(b, y); break;
    case LQ_Q5_K: dq_q5_k(b, y); break;
    case LQ_Q6_K: dq_q6_k(b, y); break;
    }
}

static void scalar_dequant(lq_type t, const void *src, float *dst, int64_t n) {
    const lq_info *ti = lq_find(t);
    if (!ti) return;
    const uint8_t *b = src;
    if (t == LQ_F32) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    if (ti->values == 1) {
        for (int64_t i = 0; i < n; i++)
            dq_block(t, b + 2 * i, dst + i);
        return;
    }
    for (int64_t i = 0; i + ti->values <= n; i += ti->values, b += ti->bytes)
        dq_block(t, b, dst + i);
}

void lq_dequant_row(lq_type t, const void *src, float *dst, int64_t n) {
    const lq_kset *ks = lq_kset_avx2();
    (ks ? ks : &lq_kset_scalar)->dequant(t, src, dst, n);
}

/* ---- scalar kernels: exact products, double sums ------------------------------ */

/* The scalar sum is one sequential double in v[0]; chunking does not change
 * the order of the additions. */
static void scalar_dot4_acc(const float *const w[4], const float *x, int64_t n, lq_acc acc[4]) {
    for (int j = 0; j < 4; j++) {
        double s = acc[j].v[0];
        for (int64_t i = 0; i < n; i++)
            s += (double)w[j][i] * (double)x[i];
        acc[j].v[0] = s;
    }
}

static float scalar_dot_q(lq_type t, const void *wrow, const float *x, int64_t n) {
    const lq_info *ti = lq_find(t);
    if (!ti) return NAN;
    const uint8_t *b = wrow;
    float tmp[256];
    double acc = 0.0;
    for (int64_t i = 0; i + ti->values <= n; i += ti->values, b += ti->bytes) {
        dq_block(t, b, tmp);
        for (int64_t l = 0; l < ti->values; l++)
            acc += (double)tmp[l] * (double)x[i + l];
    }
    lq_acc a = {{acc, 0, 0, 0}, 0};
    return lq_acc_finish(&a);
}

const lq_kset lq_kset_scalar = {"scalar", scalar_dequant, scalar_dot_q, scalar_dot4_acc};

/* ---- matmul driver ------------------------------------------------------------ */

static const lq_kset *lq_pick(lq_kernels k) {
    if (k == LQ_KERNELS_SCALAR) return &lq_kset_scalar;
    const lq_kset *ks = lq_kset_avx2();
    return ks ? ks : &lq_kset_scalar;
}

const char *lq_kernels_active(void) {
    return lq_pick(LQ_KERNELS_AUTO)->name;
}

/* Tiles walk x rows in blocks of LQ_RBLOCK and the inputs in chunks of
 * LQ_CHUNK values: the 4 weight rows of a chunk (16 KB) stay in L1 while the
 * block's x chunks (256 KB) stay in L2. */
#define LQ_CHUNK  1024
#define LQ_RBLOCK 64
_Static_assert(LQ_CHUNK % 256 == 0, "chunks must end on block boundaries of every format");

/* One tile: float weight rows w[0..nw) (nw <= 4; missing rows repeat w[0])
 * against every x row, writing y[r][o + j]. acc holds 4 * n_rows entries. */
static void mm_tile(const lq_kset *ks, const float *w[4], int nw, const float *x, int64_t n_in,
                    int64_t n_rows, float *y, int64_t n_out, int64_t o, lq_acc *acc) {
    for (int j = nw; j < 4; j++)
        w[j] = w[0];
    memset(acc, 0, sizeof(lq_acc) * 4 * (size_t)n_rows);
    for (int64_t r0 = 0; r0 < n_rows; r0 += LQ_RBLOCK) {
        int64_t r1 = n_rows - r0 < LQ_RBLOCK ? n_rows : r0 + LQ_RBLOCK;
        for (int64_t c0 = 0; c0 < n_in; c0 += LQ_CHUNK) {
            int64_t len = n_in - c0 < LQ_CHUNK ? n_in - c0 : LQ_CHUNK;
            const float *const wc[4] = {w[0] + c0, w[1] + c0, w[2] + c0, w[3] + c0};
            for (int64_t r = r0; r < r1; r++)
                ks->dot4_acc(wc, x + r * n_in + c0, len, acc + 4 * r);
        }
    }
    for (int64_t r = 0; r < n_rows; r++)
        for (int j = 0; j < nw; j++)
            y[r * n_out + o + j] = lq_acc_finish(&acc[4 * r + j]);
}

/* Rows [o0, o1) for x rows one at a time, without heap memory: the decode
 * path, and the fallback when the batched scratch cannot be allocated. */
static void mm_rows_single(const lq_kset *ks, lq_type t, const uint8_t *Wb, size_t rb,
                           int64_t n_out, int64_t n_in, const float *x, int64_t n_rows, float *y,
                           int64_t o0, int64_t o1) {
    lq_acc acc[4];
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n_in;
        float *yr = y + r * n_out;
        if (t == LQ_F32) {
            for (int64_t o = o0; o < o1; o += 4) {
                int nw = (int)(o1 - o < 4 ? o1 - o : 4);
                const float *w[4];
                for (int j = 0; j < nw; j++)
                    w[j] = (const float *)(Wb + (size_t)(o + j) * rb);
                mm_tile(ks, w, nw, xr, n_in, 1, yr, n_out, o, acc);
            }
        } else {
            for (int64_t o = o0; o < o1; o++)
                yr[o] = ks->dot_q(t, Wb + (size_t)o * rb, xr, n_in);
        }
    }
}

void lq_matmul_range(lq_type t, const void *W, int64_t n_out, int64_t n_in, const float *x,
                     int64_t n_rows, float *y, int64_t o0, int64_t o1, lq_kernels k) {
    const lq_info *ti = lq_find(t);
    if (o0 < 0) o0 = 0;
    if (o1 > n_out) o1 = n_out;
    if (n_rows <= 0 || o0 >= o1) return;
    if (!ti || n_in <= 0 || n_in % ti->values != 0) {
        /* Callers validate shapes at load time; make a violation visible. */
        for (int64_t r = 0; r < n_rows; r++)
            for (int64_t o = o0; o < o1; o++)
                y[r * n_out + o] = NAN;
        return;
    }
    if (lq_q8_used(t, k)) {
        /* Callers that run several matmuls on one x (forward.c) quantize it
         * once and call lq_matmul_q8_range themselves. */
        lq_q8blk *xa = malloc(sizeof(lq_q8blk) * (size_t)(n_in / 32) * (size_t)n_rows);
        if (xa) {
            lq_q8_quantize_g(x, n_rows, n_in, lq_q8_group(t), xa);
            lq_matmul_q8_range(t, W, n_out, n_in, xa, n_rows, y, o0, o1, k);
            free(xa);
            return;
        }
        /* No memory: one row at a time through a stack buffer (same bits). */
        lq_q8blk one[256];
        for (int64_t r = 0; r < n_rows; r++) {
            if (n_in / 32 > 256) {
                for (int64_t o = o0; o < o1; o++)
                    y[r * n_out + o] = NAN;
                continue;
            }
            lq_q8_quantize_g(x + r * n_in, 1, n_in, lq_q8_group(t), one);
            lq_matmul_q8_range(t, W, n_out, n_in, one, 1, y + r * n_out, o0, o1, k);
        }
        return;
    }
    const lq_kset *ks = lq_pick(k);
    size_t rb = lq_row_bytes(t, n_in);
    const uint8_t *Wb = W;

    /* Batched: dequantize 4 W rows once into scratch and run them against
     * every x row in chunks. Every path gives the same bits per output (see
     * the kernel-set contract in quant_impl.h). */
    size_t wfloats = t == LQ_F32 ? 0 : 4 * (size_t)n_in;
    void *mem = NULL;
    if (n_rows > 1) {
        size_t bytes = wfloats * sizeof(float) + 4 * (size_t)n_rows * sizeof(lq_acc);
        mem = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    }
    if (!mem) {
        mm_rows_single(ks, t, Wb, rb, n_out, n_in, x, n_rows, y, o0, o1);
        return;
    }
    float *scratch = mem;
    lq_acc *acc = (lq_acc *)(scratch + wfloats);
    for (int64_t o = o0; o < o1; o += 4) {
        int nw = (int)(o1 - o < 4 ? o1 - o : 4);
        const float *w[4];
        for (int j = 0; j < nw; j++) {
            const uint8_t *row = Wb + (size_t)(o + j) * rb;
            if (t == LQ_F32) {
                w[j] = (const float *)row;
            } else {
                float *s = scratch + (size_t)j * (size_t)n_in;
                ks->dequant(t, row, s, n_in);
                w[j] = s;
            }
        }
        mm_tile(ks, w, nw, x, n_in, n_rows, y, n_out, o, acc);
    }
    free(mem);
}
