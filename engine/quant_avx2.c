/* quant_avx2: AVX2+FMA+F16C kernels, selected at runtime.
 *
 * Numerics: a weight block of 32 values is decoded into four 8-lane float
 * vectors with exactly the float operations of the scalar decoder (so the
 * dequantized weights are bitwise those of quant.c), multiplied with x using
 * float FMA (one mul then three FMAs: 4 products per lane); each block's
 * partial is folded to 4 lanes in float, widened and added into a double
 * accumulator. Error is the float rounding of 8-term sums per block (~1e-7
 * of sum|w x|), far below the engine's 2e-3 budget.
 *
 * Every path (fused decode+dot, decode-to-scratch then dot, 4-row tiles) runs
 * the same operation sequence per output, which is what makes lq_matmul_range
 * independent of n_rows and of the output split. */
#include "engine/quant_impl.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
/* Decoders must inline into the loops so w[] lives in registers. */
/* Small fixed loops must unroll so w[]/p[] stay in registers (GCC -O2 does
 * not unroll by itself). */
#define LQ_UNROLL _Pragma("GCC unroll 8")
#define TGI static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* ---- block dot product and reduction ----------------------------------------- */

/* Adds one block's 8-lane float partial into the double accumulator; the two
 * 4-lane halves are added in float first (8 products per lane, still far
 * below the engine's error budget) to halve the widening work. */
TGI __m256d bacc(__m256d acc, __m256 p) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(h));
}

/* One 32-value block: w[0..3] times x[0..31], one mul then three FMAs. */
TGI __m256d bdot(const __m256 w[4], const float *x, __m256d acc) {
    __m256 p = _mm256_mul_ps(w[0], _mm256_loadu_ps(x));
    p = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(x + 8), p);
    p = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(x + 16), p);
    p = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(x + 24), p);
    return bacc(acc, p);
}

TGI float dfinish(__m256d acc, double tail) {
    double v[4];
    _mm256_storeu_pd(v, acc);
    return (float)(((v[0] + v[1]) + (v[2] + v[3])) + tail);
}

/* f16 scale -> float with F16C (exact, like lq_f16_to_f32, and inline). */
TGI float rdf16(const uint8_t *p) { return _cvtsh_ss(lq_rd16(p)); }

/* ---- per-format group decoders ------------------------------------------------
 * A format block is walked in chunks of NB consecutive 32-value blocks; group
 * g (0..3) of a chunk yields w[k] = values 8g..8g+7 of block k of the chunk.
 * Decoding NB blocks together lets them share loads (the two nibbles of a
 * byte, Q6_K's shared high bits). Scales are prepared once per format block.
 * Each w value is computed with the float operations of the scalar decoder. */

typedef struct {
    __m256 d;        /* Q8_0 / Q4_0 scale */
    float d1[16];    /* K-quants: d * sub-block scale */
    float m1[8];     /* Q4_K / Q5_K: dmin * sub-block min */
} lq_hdr;

TGI __m256i ld8u(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

TGI void prep_none(const uint8_t *b, lq_hdr *h) { (void)b, (void)h; }
TGI void prep_d(const uint8_t *b, lq_hdr *h) { h->d = _mm256_set1_ps(rdf16(b)); }

TGI void prep_kq(const uint8_t *b, lq_hdr *h) {
    float d = rdf16(b), dmin = rdf16(b + 2);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        lq_k_scale_min(b + 4, j, &sc, &m);
        h->d1[j] = d * (float)sc;
        h->m1[j] = dmin * (float)m;
    }
}

TGI void prep_q6_k(const uint8_t *b, lq_hdr *h) {
    float d = rdf16(b + 208);
    const int8_t *sc = (const int8_t *)(b + 192);
    for (int s = 0; s < 16; s++) h->d1[s] = d * (float)sc[s];
}

TGI void dec_f16(const uint8_t *b, const lq_hdr *h, int ch, int g, __m256 w[1]) {
    (void)h, (void)ch;
    w[0] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 16 * g)));
}

TGI void dec_bf16(const uint8_t *b, const lq_hdr *h, int ch, int g, __m256 w[1]) {
    (void)h, (void)ch;
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b + 16 * g)));
    w[0] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

TGI void dec_q8_0(const uint8_t *b, const lq_hdr *h, int ch, int g, __m256 w[1]) {
    (void)ch;
    __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * g)));
    w[0] = _mm256_mul_ps(h->d, _mm256_cvtepi32_ps(q));
}

TGI void dec_q4_0(const uint8_t *b, const lq_hdr *h, int ch, int g, __m256 w[1]) {
    (void)ch;
    __m256i v = ld8u(b + 2 + 8 * (g & 1)); /* groups 0,1: low nibbles; 2,3: high */
    v = g < 2 ? _mm256_and_si256(v, _mm256_set1_epi32(15)) : _mm256_srli_epi32(v, 4);
    v = _mm256_sub_epi32(v, _mm256_set1_epi32(8));
    w[0] = _mm256_mul_ps(h->d, _mm256_cvtepi32_ps(v));
}

/* Q4_K / Q5_K chunk c = sub-blocks 2c (low nibbles) and 2c+1 (high nibbles):
 * value = (d*sc)*q - (dmin*m). */
TGI void dec_kq(const uint8_t *b, const lq_hdr *h, int c, int g, __m256 w[2], int five) {
    __m256i v = ld8u(b + (five ? 48 : 16) + 32 * c + 8 * g);
    __m256i lo = _mm256_and_si256(v, _mm256_set1_epi32(15));
    __m256i hi = _mm256_srli_epi32(v, 4);
    if (five) { /* 5th bit of element l: qh[l] bit 2c (low half), 2c+1 (high) */
        __m256i hs = _mm256_srlv_epi32(ld8u(b + 16 + 8 * g), _mm256_set1_epi32(2 * c));
        const __m256i b16 = _mm256_set1_epi32(16);
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi32(hs, 4), b16));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi32(hs, 3), b16));
    }
    w[0] = _mm256_sub_ps(_mm256_mul_ps(_mm256_broadcast_ss(&h->d1[2 * c]), _mm256_cvtepi32_ps(lo)),
                         _mm256_broadcast_ss(&h->m1[2 * c]));
    w[1] = _mm256_sub_ps(
        _mm256_mul_ps(_mm256_broadcast_ss(&h->d1[2 * c + 1]), _mm256_cvtepi32_ps(hi)),
        _mm256_broadcast_ss(&h->m1[2 * c + 1]));
}

TGI void dec_q4_k(const uint8_t *b, const lq_hdr *h, int c, int g, __m256 w[2]) {
    dec_kq(b, h, c, g, w, 0);
}
TGI void dec_q5_k(const uint8_t *b, const lq_hdr *h, int c, int g, __m256 w[2]) {
    dec_kq(b, h, c, g, w, 1);
}

/* Q6_K half n = blocks k = 0..3 (outputs 128n + 32k + l). Low 4 bits from
 * ql[64n + 32(k&1) + l] (low nibble for k < 2), high 2 bits from qh[32n + l]
 * at bit 2k; scale sc[(128n + 32k + l) / 16]. */
TGI void dec_q6_k(const uint8_t *b, const lq_hdr *h, int n, int g, __m256 w[4]) {
    __m256i a = ld8u(b + 64 * n + 8 * g), c = ld8u(b + 64 * n + 32 + 8 * g);
    __m256i hb = ld8u(b + 128 + 32 * n + 8 * g);
    const __m256i m15 = _mm256_set1_epi32(15), m48 = _mm256_set1_epi32(0x30);
    const __m256i e32 = _mm256_set1_epi32(32);
    __m256i q[4];
    q[0] = _mm256_or_si256(_mm256_and_si256(a, m15), _mm256_and_si256(_mm256_slli_epi32(hb, 4), m48));
    q[1] = _mm256_or_si256(_mm256_and_si256(c, m15), _mm256_and_si256(_mm256_slli_epi32(hb, 2), m48));
    q[2] = _mm256_or_si256(_mm256_srli_epi32(a, 4), _mm256_and_si256(hb, m48));
    q[3] = _mm256_or_si256(_mm256_srli_epi32(c, 4), _mm256_and_si256(_mm256_srli_epi32(hb, 2), m48));
    LQ_UNROLL for (int k = 0; k < 4; k++) {
        __m256 d1 = _mm256_broadcast_ss(&h->d1[8 * n + 2 * k + (g >> 1)]);
        w[k] = _mm256_mul_ps(d1, _mm256_cvtepi32_ps(_mm256_sub_epi32(q[k], e32)));
    }
}

/* ---- per-format loops: fused dot and dequant-to-floats ------------------------- */

/* BV values / BB bytes per format block, NB blocks of 32 per chunk. Per block
 * the products run mul, fma, fma, fma over groups 0..3 and the partial goes
 * through bacc: the sequence of bdot, so the fused dot equals dequant + dot. */
#define LQ_AVX2_FORMAT(NAME, BV, BB, NB, PREP, DEC)                                        \
    static TGT __m256d acc_##NAME(const uint8_t *b, const float *x, int64_t n, __m256d acc) { \
        for (int64_t i = 0; i + (BV) <= n; i += (BV), b += (BB)) {                         \
            lq_hdr h;                                                                      \
            PREP(b, &h);                                                                   \
            for (int ch = 0; ch < (BV) / (32 * (NB)); ch++) {                              \
                const float *xc = x + i + 32 * (NB) * ch;                                  \
                __m256 p[NB], w[NB];                                                       \
                DEC(b, &h, ch, 0, w);                                                      \
                LQ_UNROLL for (int k = 0; k < (NB); k++) p[k] = _mm256_mul_ps(w[k], _mm256_loadu_ps(xc + 32 * k)); \
                LQ_UNROLL for (int g = 1; g < 4; g++) {                                    \
                    DEC(b, &h, ch, g, w);                                                  \
                    LQ_UNROLL for (int k = 0; k < (NB); k++)                               \
                        p[k] = _mm256_fmadd_ps(w[k], _mm256_loadu_ps(xc + 32 * k + 8 * g), p[k]); \
                }                                                                          \
                LQ_UNROLL for (int k = 0; k < (NB); k++) acc = bacc(acc, p[k]);                      \
            }                                                                              \
        }                                                                                  \
        return acc;                                                                        \
    }                                                                                      \
    static TGT void deq_##NAME(const uint8_t *b, float *y, int64_t n) {                    \
        for (int64_t i = 0; i + (BV) <= n; i += (BV), b += (BB)) {                         \
            lq_hdr h;                                                                      \
            PREP(b, &h);                                                                   \
            for (int ch = 0; ch < (BV) / (32 * (NB)); ch++)                                \
                LQ_UNROLL for (int g = 0; g < 4; g++) {                                    \
                    __m256 w[NB];                                                          \
                    DEC(b, &h, ch, g, w);                                                  \
                    LQ_UNROLL for (int k = 0; k < (NB); k++)                               \
                        _mm256_storeu_ps(y + i + 32 * ((NB) * ch + k) + 8 * g, w[k]);      \
                }                                                                          \
        }                                                                                  \
    }

LQ_AVX2_FORMAT(q8_0, 32, LQ_Q8_0_BYTES, 1, prep_d, dec_q8_0)
LQ_AVX2_FORMAT(q4_0, 32, LQ_Q4_0_BYTES, 1, prep_d, dec_q4_0)
LQ_AVX2_FORMAT(q4_k, 256, LQ_Q4_K_BYTES, 2, prep_kq, dec_q4_k)
LQ_AVX2_FORMAT(q5_k, 256, LQ_Q5_K_BYTES, 2, prep_kq, dec_q5_k)
LQ_AVX2_FORMAT(q6_k, 256, LQ_Q6_K_BYTES, 4, prep_q6_k, dec_q6_k)
LQ_AVX2_FORMAT(f16, 32, 64, 1, prep_none, dec_f16)
LQ_AVX2_FORMAT(bf16, 32, 64, 1, prep_none, dec_bf16)

/* Float formats may have rows that are not a multiple of 32: the tail is
 * summed in double and added last, exactly as in avx2_dot_f32. */
static TGT float dot_half(lq_type t, const uint8_t *b, const float *x, int64_t n) {
    int64_t nb = n / 32 * 32;
    __m256d acc = t == LQ_F16 ? acc_f16(b, x, nb, _mm256_setzero_pd())
                              : acc_bf16(b, x, nb, _mm256_setzero_pd());
    double tail = 0.0;
    for (int64_t i = nb; i < n; i++) {
        uint16_t h = lq_rd16(b + 2 * i);
        float w = t == LQ_F16 ? lq_f16_to_f32(h) : lq_bf16_to_f32(h);
        tail += (double)w * (double)x[i];
    }
    return dfinish(acc, tail);
}

static TGT float avx2_dot_f32(const float *w, const float *x, int64_t n) {
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v[4];
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(w + i + 8 * k);
        acc = bdot(v, x + i, acc);
    }
    double tail = 0.0;
    for (; i < n; i++) tail += (double)w[i] * (double)x[i];
    return dfinish(acc, tail);
}

/* Four weight rows share each load of x (prefill tiles). Per row the
 * operations are exactly those of avx2_dot_f32. */
static TGT void avx2_dot4(const float *const w[4], const float *x, int64_t n, float out[4]) {
    __m256d acc[4];
    for (int j = 0; j < 4; j++) acc[j] = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        __m256 x2 = _mm256_loadu_ps(x + i + 16), x3 = _mm256_loadu_ps(x + i + 24);
        for (int j = 0; j < 4; j++) {
            const float *wj = w[j] + i;
            __m256 p = _mm256_mul_ps(_mm256_loadu_ps(wj), x0);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(wj + 8), x1, p);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(wj + 16), x2, p);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(wj + 24), x3, p);
            acc[j] = bacc(acc[j], p);
        }
    }
    for (int j = 0; j < 4; j++) {
        double tail = 0.0;
        for (int64_t t = i; t < n; t++) tail += (double)w[j][t] * (double)x[t];
        out[j] = dfinish(acc[j], tail);
    }
}

static TGT float avx2_dot_q(lq_type t, const void *w, const float *x, int64_t n) {
    const uint8_t *b = w;
    switch (t) {
    case LQ_F32: return avx2_dot_f32(w, x, n);
    case LQ_F16:
    case LQ_BF16: return dot_half(t, b, x, n);
    case LQ_Q8_0: return dfinish(acc_q8_0(b, x, n, _mm256_setzero_pd()), 0.0);
    case LQ_Q4_0: return dfinish(acc_q4_0(b, x, n, _mm256_setzero_pd()), 0.0);
    case LQ_Q4_K: return dfinish(acc_q4_k(b, x, n, _mm256_setzero_pd()), 0.0);
    case LQ_Q5_K: return dfinish(acc_q5_k(b, x, n, _mm256_setzero_pd()), 0.0);
    case LQ_Q6_K: return dfinish(acc_q6_k(b, x, n, _mm256_setzero_pd()), 0.0);
    }
    return 0.0f;
}

static TGT void avx2_dequant(lq_type t, const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    switch (t) {
    case LQ_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return;
    case LQ_F16:
    case LQ_BF16: {
        int64_t nb = n / 32 * 32;
        if (t == LQ_F16)
            deq_f16(b, dst, nb);
        else
            deq_bf16(b, dst, nb);
        for (int64_t i = nb; i < n; i++) {
            uint16_t h = lq_rd16(b + 2 * i);
            dst[i] = t == LQ_F16 ? lq_f16_to_f32(h) : lq_bf16_to_f32(h);
        }
        return;
    }
    case LQ_Q8_0: deq_q8_0(b, dst, n); return;
    case LQ_Q4_0: deq_q4_0(b, dst, n); return;
    case LQ_Q4_K: deq_q4_k(b, dst, n); return;
    case LQ_Q5_K: deq_q5_k(b, dst, n); return;
    case LQ_Q6_K: deq_q6_k(b, dst, n); return;
    }
}

static const lq_kset lq_avx2 = {"avx2", avx2_dequant, avx2_dot_q, avx2_dot_f32, avx2_dot4};

const lq_kset *lq_kset_avx2(void) {
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return &lq_avx2;
    return NULL;
}

#else

const lq_kset *lq_kset_avx2(void) { return NULL; }

#endif
