/* quant_impl: internals shared by the quant kernel files (quant.c = type table,
 * conversions, scalar reference and the matmul driver; quant_quantize.c =
 * reference quantizers; quant_avx2.c = AVX2+FMA+F16C kernels).
 *
 * Kernel-set contract (what makes lq_matmul_range deterministic): a dot
 * product is a running lq_acc fed 32-value blocks in order and finished by
 * lq_acc_finish. Within one kernel set, dot_q(W row, x) must give the bits of
 * dot4_acc over dequant(W row) -- whole or cut into chunks at multiples of
 * 256 values, with any other rows in the tile. The driver then may pick
 * either, tile and chunk as it likes, without changing an output bit. */
#ifndef LFM_QUANT_IMPL_H
#define LFM_QUANT_IMPL_H

#include "engine/quant.h"

#include <string.h>

/* Values per float partial sum: products are accumulated in float over one
 * block of LQ_FBLOCK values, and each block's partial is added in double. */
#define LQ_FBLOCK 32

/* Byte sizes of the block formats (ggml layouts, little-endian). */
#define LQ_Q8_0_BYTES 34  /* f16 d, int8 q[32] */
#define LQ_Q4_0_BYTES 18  /* f16 d, u8 qs[16]: low nibbles 0..15, high 16..31 */
#define LQ_Q4_K_BYTES 144 /* f16 d, f16 dmin, u8 scales[12], u8 qs[128] */
#define LQ_Q5_K_BYTES 176 /* f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128] */
#define LQ_Q6_K_BYTES 210 /* u8 ql[128], u8 qh[64], i8 scales[16], f16 d */

/* A dot product in progress: lane sums (kernel-set specific use) and the
 * double sum of a row's tail beyond its last full 32-value block. */
typedef struct {
    double v[4];
    double tail;
} lq_acc;

static inline float lq_acc_finish(const lq_acc *a) {
    return (float)(((a->v[0] + a->v[1]) + (a->v[2] + a->v[3])) + a->tail);
}

typedef struct {
    const char *name;
    /* Dequantize n values (n a multiple of the block size). */
    void (*dequant)(lq_type t, const void *src, float *dst, int64_t n);
    /* Fused dequantize+dot of one whole W row with x. */
    float (*dot_q)(lq_type t, const void *w, const float *x, int64_t n);
    /* Adds w[j][0..n) . x[0..n) into acc[j] for four float rows. n must be a
     * multiple of 32 except for the last chunk of a row. */
    void (*dot4_acc)(const float *const w[4], const float *x, int64_t n, lq_acc acc[4]);
} lq_kset;

extern const lq_kset lq_kset_scalar;
/* NULL when the AVX2 kernels are not compiled in (non-x86 builds). */
const lq_kset *lq_kset_avx2(void);

static inline uint16_t lq_rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline void lq_wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}
static inline float lq_rdf16(const uint8_t *p) {
    return lq_f16_to_f32(lq_rd16(p));
}

/* K-quant 6-bit scale/min of sub-block j (0..7) from the 12 packed bytes. */
static inline void lq_k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

#endif
