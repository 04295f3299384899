/* quant: weight formats and the matmul seam. Every weight type found in
 * Liquid's published LFM2 GGUFs: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K,
 * Q6_K (ids are ggml's). A portable scalar path exists for each and is the
 * reference; ISA fast paths (AVX2, ...) are selected at runtime and must pass
 * the same fixture bounds.
 *
 * Determinism contract: the value written for output (r, o) depends only on
 * row r of x and row o of W -- never on n_rows, on the [o0, o1) split or on
 * thread count. The gateway relies on this: a seeded request gives the same
 * text alone or batched with others. */
#ifndef LFM_QUANT_H
#define LFM_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LQ_F32 = 0,
    LQ_F16 = 1,
    LQ_Q4_0 = 2,
    LQ_Q8_0 = 8,
    LQ_Q4_K = 12,
    LQ_Q5_K = 13,
    LQ_Q6_K = 14,
    LQ_BF16 = 30,
} lq_type;

/* AUTO: the fastest available (8-bit activations with integer SIMD for the
 * quantized types, see quant_q8.h; float SIMD for F32/F16/BF16). SCALAR: the
 * exact float reference. FLOAT: exact float activations with SIMD (the
 * accuracy yardstick). Q8_*: force one integer kernel set (tests, benches);
 * an unavailable one falls back to Q8_SCALAR. */
typedef enum {
    LQ_KERNELS_AUTO = 0,
    LQ_KERNELS_SCALAR = 1,
    LQ_KERNELS_FLOAT = 2,
    LQ_KERNELS_Q8_SCALAR = 3,
    LQ_KERNELS_Q8_AVX2 = 4,
    LQ_KERNELS_Q8_VNNI = 5,
    LQ_KERNELS_Q8_NEON = 6,
} lq_kernels;

bool lq_type_supported(uint32_t t);
/* "F32", "Q4_K", ...; "?" for unknown ids. */
const char *lq_type_name(uint32_t t);
/* Parses a name as printed by lq_type_name (case-insensitive); -1 if unknown. */
int lq_type_from_name(const char *name);
/* Values per block (1 for float types, 32 or 256 for quants). */
int64_t lq_block_values(lq_type t);
/* Bytes per block. */
size_t lq_block_bytes(lq_type t);
/* Bytes of a row of n values; n must be a multiple of lq_block_values. */
size_t lq_row_bytes(lq_type t, int64_t n);

void lq_dequant_row(lq_type t, const void *src, float *dst, int64_t n);
/* Reference quantizers (round-to-nearest with the format's scale rules), used
 * by synth-model and by round-trip tests. */
void lq_quantize_row(lq_type t, const float *src, void *dst, int64_t n);

/* y[r * n_out + o] = sum_i W[o][i] * x[r * n_in + i], for r < n_rows and
 * o in [o0, o1). W is n_out rows of lq_row_bytes(t, n_in) bytes each. */
void lq_matmul_range(lq_type t, const void *W, int64_t n_out, int64_t n_in, const float *x,
                     int64_t n_rows, float *y, int64_t o0, int64_t o1, lq_kernels k);
static inline void lq_matmul(lq_type t, const void *W, int64_t n_out, int64_t n_in, const float *x,
                             int64_t n_rows, float *y, lq_kernels k) {
    lq_matmul_range(t, W, n_out, n_in, x, n_rows, y, 0, n_out, k);
}

/* Name of the float kernel set AUTO resolves to on this CPU ("avx2",
 * "scalar"); lq_q8_pick(LQ_KERNELS_AUTO)->name names the integer one. */
const char *lq_kernels_active(void);

float lq_f16_to_f32(uint16_t h);
uint16_t lq_f32_to_f16(float f);
float lq_bf16_to_f32(uint16_t h);
uint16_t lq_f32_to_bf16(float f);

#endif
