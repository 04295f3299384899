/* quant_q8_x86: the integer kernels for x86 (AVX2; AVX-512 VNNI and AVX-VNNI
 * with vpdpbusd), instantiated from quant_q8_x86_tmpl.h, and their run-time
 * CPU checks. */
#include "engine/quant_impl.h"
#include "engine/quant_q8.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <cpuid.h>
#include <stdatomic.h>

#define ISA           avx2
#define TGT_STR       "avx2,fma,f16c"
#define SUM_US8(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
#include "engine/quant_q8_x86_tmpl.h"
#undef ISA
#undef TGT_STR
#undef SUM_US8

#define ISA           vnni
#define TGT_STR       "avx2,fma,f16c,avx512f,avx512vl,avx512vnni"
#define SUM_US8(a, b) _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b)
#include "engine/quant_q8_x86_tmpl.h"
#undef ISA
#undef TGT_STR
#undef SUM_US8

#define ISA           avxvnni
#define TGT_STR       "avx2,fma,f16c,avxvnni"
#define SUM_US8(a, b) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), a, b)
#include "engine/quant_q8_x86_tmpl.h"
#undef ISA
#undef TGT_STR
#undef SUM_US8

static const lq_q8set q8_avx2 = {"avx2", q8dot_avx2};
static const lq_q8set q8_vnni = {"avx512vnni", q8dot_vnni};
static const lq_q8set q8_avxvnni = {"avxvnni", q8dot_avxvnni};

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

#else

const lq_q8set *lq_q8_avx2(void) {
    return NULL;
}
const lq_q8set *lq_q8_vnni(void) {
    return NULL;
}

#endif
