/* quant_q8_neon: the aarch64 integer kernels: sdot (ARMv8.2 dot product,
 * Raspberry Pi 5 class) and plain NEON (vmull + pairwise adds, Pi 4 class),
 * instantiated from quant_q8_neon_tmpl.h and picked at run time from
 * AT_HWCAP. Built and tested under qemu-user (scripts/test-arm). */
#include "engine/quant_impl.h"
#include "engine/quant_q8.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

/* Plain NEON: 8 products in int16 (|w x| <= 128 * 127 fits), pairwise to
 * int32, then pairwise again so lane l holds bytes 4l..4l+3. */
static inline __attribute__((always_inline)) int32x4_t sum16_neon(int8x16_t w, int8x16_t x) {
    int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    int32x4_t hi = vpaddlq_s16(vmull_s8(vget_high_s8(w), vget_high_s8(x)));
    return vpaddq_s32(lo, hi);
}

#define ISA   neon
#define SUM16 sum16_neon
#include "engine/quant_q8_neon_tmpl.h"
#undef ISA
#undef SUM16

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
static inline __attribute__((always_inline)) int32x4_t sum16_sdot(int8x16_t w, int8x16_t x) {
    return vdotq_s32(vdupq_n_s32(0), w, x);
}
#define ISA   sdot
#define SUM16 sum16_sdot
#include "engine/quant_q8_neon_tmpl.h"
#undef ISA
#undef SUM16
#pragma GCC pop_options

static const lq_q8set q8_neon = {"neon", q8dot_neon, NULL, NULL};
static const lq_q8set q8_sdot = {"neon-sdot", q8dot_sdot, NULL, NULL};

const lq_q8set *lq_q8_neon(void) {
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? &q8_sdot : &q8_neon;
}

#else

const lq_q8set *lq_q8_neon(void) {
    return NULL;
}

#endif
