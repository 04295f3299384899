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
 * Every path (fused decode+dot for decode, decode-to-scratch then chunked
 * 4-row tiles for prefill) runs the same operation sequence per output, which
 * is what makes lq_matmul_range independent of n_rows and of the output split.
 * FP contraction must stay off (ISO C mode, as the build uses) so mul+sub in
 * the decoders is not fused differently in different places; test_quant
 * checks the decoders against the scalar ones bit for bit. */
#include "engine/quant_impl.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <stdatomic.h>
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
/* Decoders must inline and small fixed loops must unroll so w[]/p[] stay in
 * registers (GCC -O2 does neither by itself here). */
#define LQ_UNROLL _Pragma("GCC unroll 8")
#define TGI       static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* ---- block dot product and reduction ----------------------------------------- */

/* Adds one block's 8-lane float partial into the double accumulator; the two
 * 4-lane halves are added in float first (8 products per lane, still far
 * below the engine's error budget) to halve the widening work. */
TGI __m256d bacc(__m256d acc, __m256 p) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(h));
}

TGI float dfinish(__m256d acc, double tail) {
    lq_acc a;
    _mm256_storeu_pd(a.v, acc);
    a.tail = tail;
    return lq_acc_finish(&a);
}

/* f16 scale -> float with F16C (exact, like lq_f16_to_f32, and inline). */
TGI float rdf16(const uint8_t *p) {
    return _cvtsh_ss(lq_rd16(p));
}

/* ---- per-format group decoders ------------------------------------------------
 * A format block is walked in chunks of NB consecutive 32-value blocks; group
 * g (0..3) of a chunk yields w[k] = values 8g..8g+7 of block k of the chunk.
 * Decoding NB blocks together lets them share loads (the two nibbles of a
 * byte, Q6_K's shared high bits). Scales are prepared once per format block.
 * Each w value is computed with the float operations of the scalar decoder. */

typedef struct {
    __m256 d;     /* Q8_0 / Q4_0 scale */
    float d1[16]; /* K-quants: d * sub-block scale */
    float m1[8];  /* Q4_K / Q5_K: dmin * sub-block min */
} lq_hdr;

TGI __m256i ld8u(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

TGI void prep_none(const uint8_t *b, lq_hdr *h) {
    (void)b, (void)h;
}
TGI void prep_d(const uint8_t *b, lq_hdr *h) {
    h->d = _mm256_set1_ps(rdf16(b));
}

TGI void prep_kq(const uint8_t *b, lq_hdr *h) {
    float d = rdf16(b), dmin = rdf16(b + 2);
    LQ_UNROLL for (int j = 0; j < 8; j++) {
        int sc, m;
        lq_k_scale_min(b + 4, j, &sc, &m);
        h->d1[j] = d * (float)sc;
        h->m1[j] = dmin * (float)m;
    }
}

TGI void prep_q6_k(const uint8_t *b, lq_hdr *h) {
    float d = rdf16(b + 208);
    const int8_t *sc = (const int8_t *)(b + 192);
    __m128i s16 = _mm_loadu_si128((const __m128i *)sc);
    __m256 dv = _mm256_set1_ps(d);
    _mm256_storeu_ps(h->d1, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s16))));
    _mm256_storeu_ps(
        h->d1 + 8,
        _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(s16, 8)))));
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
    w[1] =
        _mm256_sub_ps(_mm256_mul_ps(_mm256_broadcast_ss(&h->d1[2 * c + 1]), _mm256_cvtepi32_ps(hi)),
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
    q[0] =
        _mm256_or_si256(_mm256_and_si256(a, m15), _mm256_and_si256(_mm256_slli_epi32(hb, 4), m48));
    q[1] =
        _mm256_or_si256(_mm256_and_si256(c, m15), _mm256_and_si256(_mm256_slli_epi32(hb, 2), m48));
    q[2] = _mm256_or_si256(_mm256_srli_epi32(a, 4), _mm256_and_si256(hb, m48));
    q[3] =
        _mm256_or_si256(_mm256_srli_epi32(c, 4), _mm256_and_si256(_mm256_srli_epi32(hb, 2), m48));
    LQ_UNROLL for (int k = 0; k < 4; k++) {
        __m256 d1 = _mm256_broadcast_ss(&h->d1[8 * n + 2 * k + (g >> 1)]);
        w[k] = _mm256_mul_ps(d1, _mm256_cvtepi32_ps(_mm256_sub_epi32(q[k], e32)));
    }
}

/* ---- per-format loops: fused dot and dequant-to-floats ------------------------- */

/* BV values / BB bytes per format block, NB blocks of 32 per chunk. Per block
 * the products run mul, fma, fma, fma over groups 0..3 and the partial goes
 * through bacc: the sequence of avx2_dot4_acc, so fused dot == dequant + dot. */
#define LQ_AVX2_FORMAT(NAME, BV, BB, NB, PREP, DEC)                                                \
    static TGT __m256d acc_##NAME(const uint8_t *b, const float *x, int64_t n, __m256d acc) {      \
        for (int64_t i = 0; i + (BV) <= n; i += (BV), b += (BB)) {                                 \
            lq_hdr h;                                                                              \
            PREP(b, &h);                                                                           \
            for (int ch = 0; ch < (BV) / (32 * (NB)); ch++) {                                      \
                const float *xc = x + i + 32 * (NB)*ch;                                            \
                __m256 p[NB], w[NB];                                                               \
                DEC(b, &h, ch, 0, w);                                                              \
                LQ_UNROLL for (int k = 0; k < (NB); k++) p[k] =                                    \
                    _mm256_mul_ps(w[k], _mm256_loadu_ps(xc + 32 * k));                             \
                LQ_UNROLL for (int g = 1; g < 4; g++) {                                            \
                    DEC(b, &h, ch, g, w);                                                          \
                    LQ_UNROLL for (int k = 0; k < (NB); k++) p[k] =                                \
                        _mm256_fmadd_ps(w[k], _mm256_loadu_ps(xc + 32 * k + 8 * g), p[k]);         \
                }                                                                                  \
                LQ_UNROLL for (int k = 0; k < (NB); k++) acc = bacc(acc, p[k]);                    \
            }                                                                                      \
        }                                                                                          \
        return acc;                                                                                \
    }                                                                                              \
    static TGT void deq_##NAME(const uint8_t *b, float *y, int64_t n) {                            \
        for (int64_t i = 0; i + (BV) <= n; i += (BV), b += (BB)) {                                 \
            lq_hdr h;                                                                              \
            PREP(b, &h);                                                                           \
            for (int ch = 0; ch < (BV) / (32 * (NB)); ch++)                                        \
                LQ_UNROLL for (int g = 0; g < 4; g++) {                                            \
                    __m256 w[NB];                                                                  \
                    DEC(b, &h, ch, g, w);                                                          \
                    LQ_UNROLL for (int k = 0; k < (NB); k++)                                       \
                        _mm256_storeu_ps(y + i + 32 * ((NB)*ch + k) + 8 * g, w[k]);                \
                }                                                                                  \
        }                                                                                          \
    }

LQ_AVX2_FORMAT(q8_0, 32, LQ_Q8_0_BYTES, 1, prep_d, dec_q8_0)
LQ_AVX2_FORMAT(q4_0, 32, LQ_Q4_0_BYTES, 1, prep_d, dec_q4_0)
LQ_AVX2_FORMAT(q4_k, 256, LQ_Q4_K_BYTES, 2, prep_kq, dec_q4_k)
LQ_AVX2_FORMAT(q5_k, 256, LQ_Q5_K_BYTES, 2, prep_kq, dec_q5_k)
LQ_AVX2_FORMAT(q6_k, 256, LQ_Q6_K_BYTES, 4, prep_q6_k, dec_q6_k)
LQ_AVX2_FORMAT(f16, 32, 64, 1, prep_none, dec_f16)
LQ_AVX2_FORMAT(bf16, 32, 64, 1, prep_none, dec_bf16)

/* Float formats may have rows that are not a multiple of 32: the tail is
 * summed in double and added last, exactly as in avx2_dot4_acc. */
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

/* Four float rows share each load of x (prefill tiles). Per row the
 * operations are those of the fused loops (per block: mul, fma, fma, fma,
 * bacc), so a row's result depends neither on the other three rows nor on
 * how the caller cuts it into chunks. */
static TGT void avx2_dot4_acc(const float *const w[4], const float *x, int64_t n, lq_acc acc[4]) {
    __m256d a[4];
    LQ_UNROLL for (int j = 0; j < 4; j++) a[j] = _mm256_loadu_pd(acc[j].v);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        __m256 x2 = _mm256_loadu_ps(x + i + 16), x3 = _mm256_loadu_ps(x + i + 24);
        LQ_UNROLL for (int j = 0; j < 4; j++) {
            const float *wj = w[j] + i;
            __m256 p = _mm256_mul_ps(_mm256_loadu_ps(wj), x0);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(wj + 8), x1, p);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(wj + 16), x2, p);
            p = _mm256_fmadd_ps(_mm256_loadu_ps(wj + 24), x3, p);
            a[j] = bacc(a[j], p);
        }
    }
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_pd(acc[j].v, a[j]);
        for (int64_t t = i; t < n; t++)
            acc[j].tail += (double)w[j][t] * (double)x[t];
    }
}

static TGT float avx2_dot_q(lq_type t, const void *w, const float *x, int64_t n) {
    const uint8_t *b = w;
    switch (t) {
    case LQ_F32: { /* not used by the driver (F32 goes through tiles); kept consistent */
        const float *r4[4] = {w, w, w, w};
        lq_acc acc[4];
        memset(acc, 0, sizeof(acc));
        avx2_dot4_acc(r4, x, n, acc);
        return lq_acc_finish(&acc[0]);
    }
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

static const lq_kset lq_avx2 = {"avx2", avx2_dequant, avx2_dot_q, avx2_dot4_acc};

/* F16C via CPUID leaf 1 (ECX bit 29): not every compiler's
 * __builtin_cpu_supports knows "f16c". The AVX2 check covers OS support for
 * the ymm state. */
static bool has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

const lq_kset *lq_kset_avx2(void) {
    static _Atomic int ok = -1; /* every thread computes the same answer */
    int v = atomic_load_explicit(&ok, memory_order_relaxed);
    if (v < 0) {
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
        atomic_store_explicit(&ok, v, memory_order_relaxed);
    }
    return v ? &lq_avx2 : NULL;
}

#else

const lq_kset *lq_kset_avx2(void) {
    return NULL;
}

#endif
