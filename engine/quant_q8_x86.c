/* quant_q8_x86: the integer kernels for x86 (AVX2; AVX-512 VNNI and AVX-VNNI
 * with vpdpbusd), instantiated from quant_q8_x86_tmpl.h, and their run-time
 * CPU checks. */
#include "engine/quant_impl.h"
#include "engine/quant_q8.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <cpuid.h>
#include <stdatomic.h>

#define ISA            avx2
#define TGT_STR        "avx2,fma,f16c"
#define SUM_US8(a, b)  _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
#define DPACC(c, a, b) _mm256_add_epi32(c, SUM_US8(a, b))
#include "engine/quant_q8_x86_tmpl.h"
#undef ISA
#undef TGT_STR
#undef SUM_US8
#undef DPACC

#define ISA            vnni
#define TGT_STR        "avx2,fma,f16c,avx512f,avx512vl,avx512vnni"
#define SUM_US8(a, b)  _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b)
#define DPACC(c, a, b) _mm256_dpbusd_epi32(c, a, b)
#include "engine/quant_q8_x86_tmpl.h"
#undef ISA
#undef TGT_STR
#undef SUM_US8
#undef DPACC

#define ISA            avxvnni
#define TGT_STR        "avx2,fma,f16c,avxvnni"
#define SUM_US8(a, b)  _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), a, b)
#define DPACC(c, a, b) _mm256_dpbusd_avx_epi32(c, a, b)
#include "engine/quant_q8_x86_tmpl.h"
#undef ISA
#undef TGT_STR
#undef SUM_US8
#undef DPACC

static const lq_q8set q8_avx2 = {"avx2", q8dot_avx2, q8tile_avx2, q8rows_avx2};
static const lq_q8set q8_vnni = {"avx512vnni", q8dot_vnni, q8tile_vnni, q8rows_vnni};
static const lq_q8set q8_avxvnni = {"avxvnni", q8dot_avxvnni, q8tile_avxvnni, q8rows_avxvnni};

/* -1 unknown, else a bit set: 1 avx2, 2 avx512vnni, 4 avxvnni. */
static int cpu_bits(void) {
    static _Atomic int bits = -1; /* every thread computes the same answer */
    int v = atomic_load_explicit(&bits, memory_order_relaxed);
    if (v < 0) {
        __builtin_cpu_init();
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   lq_kset_avx2() != NULL; /* lq_kset_avx2 also checks F16C */
        v = avx2;
        if (avx2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl"))
            v |= 2;
        /* AVX-VNNI is CPUID.(EAX=7,ECX=1):EAX[4]; read directly because
         * clang 14's __builtin_cpu_supports does not know "avxvnni". */
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (avx2 && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1u)) v |= 4;
        atomic_store_explicit(&bits, v, memory_order_relaxed);
    }
    return v;
}

const lq_q8set *lq_q8_avx2(void) {
    return cpu_bits() & 1 ? &q8_avx2 : NULL;
}

const lq_q8set *lq_q8_vnni(void) {
    int b = cpu_bits();
    return b & 2 ? &q8_vnni : b & 4 ? &q8_avxvnni : NULL;
}

/* lq_q8_quantize_block with AVX2: the same amax, d, 1/d (scalar), the
 * same float products rounded half to even by cvtps2dq (as lrintf in the
 * default rounding mode), the same clamp. Blocks with a NaN or infinity go
 * to the scalar definition. */
#define Q8Q_TGT __attribute__((target("avx2,fma")))

/* max |v[i]| over n (a multiple of 32) values; *bad set when one is NaN. */
Q8Q_TGT static inline float q8_amax_avx2(const float *v, int n, int *bad) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(v + i), v1 = _mm256_loadu_ps(v + i + 8);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
        m = _mm256_max_ps(m,
                          _mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    *bad = _mm256_movemask_ps(nan) != 0;
    return _mm_cvtss_f32(m4);
}

/* One 32-value block with scale d (finite) and id = 1/d (or 0). */
Q8Q_TGT static inline void q8_block_avx2(const float *v, float d, __m256 id, lq_q8blk *o) {
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v), id));
    __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 8), id));
    __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 16), id));
    __m256i q3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 24), id));
    q0 = _mm256_min_epi32(_mm256_max_epi32(q0, lo), hi);
    q1 = _mm256_min_epi32(_mm256_max_epi32(q1, lo), hi);
    q2 = _mm256_min_epi32(_mm256_max_epi32(q2, lo), hi);
    q3 = _mm256_min_epi32(_mm256_max_epi32(q3, lo), hi);
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    /* packs interleave 128-bit lanes; the permute restores order. */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    _mm256_storeu_si256((__m256i *)o->q, _mm256_permutevar8x32_epi32(p, perm));
    o->d = d;
    o->sum = (int16_t)_mm_cvtsi128_si32(s4);
}

Q8Q_TGT static void q8_quantize_avx2(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa) {
    const int64_t nb = n_in / 32;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            const float *v = x + r * n_in + b * 32;
            lq_q8blk *o = xa + r * nb + b;
            int bad;
            const float amax = q8_amax_avx2(v, 32, &bad);
            if (bad || !(amax <= 3.4028235e38f)) {
                lq_q8_quantize_block(v, o);
                continue;
            }
            const float d = amax / 127.0f;
            q8_block_avx2(v, d, _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f), o);
        }
}

/* The same with one scale per 256 values (lq_q8_quantize_g, group 256);
 * groups with a NaN or infinity go to the scalar definition. */
Q8Q_TGT static void q8_quantize256_avx2(const float *x, int64_t n_rows, int64_t n_in,
                                        lq_q8blk *xa) {
    const int64_t nb = n_in / 32;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t g = 0; g < n_in / 256; g++) {
            const float *v = x + r * n_in + g * 256;
            lq_q8blk *o = xa + r * nb + g * 8;
            int bad;
            const float amax = q8_amax_avx2(v, 256, &bad);
            if (bad || !(amax <= 3.4028235e38f)) {
                lq_q8_quantize256_ref(v, 1, 256, o);
                continue;
            }
            const float d = amax / 127.0f;
            const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
            for (int b = 0; b < 8; b++)
                q8_block_avx2(v + 32 * b, d, id, o + b);
        }
}

lq_q8quant_fn lq_q8_quantize256_fast(void) {
    return cpu_bits() & 1 ? q8_quantize256_avx2 : NULL;
}

lq_q8quant_fn lq_q8_quantize_fast(void) {
    return cpu_bits() & 1 ? q8_quantize_avx2 : NULL;
}

#else

lq_q8quant_fn lq_q8_quantize_fast(void) {
    return NULL;
}

lq_q8quant_fn lq_q8_quantize256_fast(void) {
    return NULL;
}

const lq_q8set *lq_q8_avx2(void) {
    return NULL;
}
const lq_q8set *lq_q8_vnni(void) {
    return NULL;
}

#endif
