/* quant_q8: integer dot products against activations quantized to 8 bits.
 *
 * For Q4_0, Q8_0, Q4_K, Q5_K and Q6_K weights the fast path quantizes each
 * activation row once, in blocks of 32 values (a float scale, 32 int8 and
 * their int sum), with one scale per 32 values for Q4_0/Q8_0 weights and one
 * per 256 for the K-quants (lq_q8_group: what the reference implementation
 * does, which is what the fixtures' error figures already include), then multiplies weight and
 * activation integers with integer SIMD: AVX2 (maddubs), AVX-512 VNNI /
 * AVX-VNNI (vpdpbusd) on x86, NEON sdot on aarch64, picked at run time; the
 * portable scalar kernel is the reference.
 *
 * Bit-identical on every kernel set, by construction: a 32-value block gives
 * 8 lane integers (lane l = the exact sum of the products of elements
 * 4l..4l+3, times the Q6_K 16-value scale), every ISA computes exactly those
 * integers, and the float work is fixed: lane accumulator
 * acc[l] = fma((float)lane[l], scale, acc[l]) per block in element order,
 * Q4_K/Q5_K mins in one sequential fma accumulator, and the reduction
 * ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)) [- mins]. test_quant checks every
 * available set against the scalar one bit for bit, so the fixture bounds
 * proven on one path hold on all. Each output still depends only on its W row
 * and x row (quant.h's determinism contract). */
#ifndef LFM_QUANT_Q8_H
#define LFM_QUANT_Q8_H

#include "engine/quant.h"

/* One 32-value activation block: x[i] ~= d * q[i]; sum = sum of q. */
typedef struct {
    float d;
    int16_t sum;
    int8_t q[32];
} lq_q8blk;

/* Whether type t has integer kernels (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K). */
bool lq_q8_type(lq_type t);
/* Whether lq_matmul_range with kernels k uses 8-bit activations for type t
 * (AUTO and the Q8_* sets do for lq_q8_type types; SCALAR and FLOAT never). */
bool lq_q8_used(lq_type t, lq_kernels k);

/* Quantizes n_rows rows of n_in floats (n_in a multiple of 32) into
 * n_rows * n_in / 32 blocks, row-major, one scale per 32 values.
 * Deterministic per row; the same function serves every kernel set. */
void lq_q8_quantize(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa);
/* The definition, block by block (scalar), and a SIMD version giving the
 * same bytes (AVX2 on x86; NULL elsewhere or without it), which
 * lq_q8_quantize uses when present. test_quant compares them. */
void lq_q8_quantize_ref(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa);
void lq_q8_quantize_block(const float *v, lq_q8blk *o);
typedef void (*lq_q8quant_fn)(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa);
lq_q8quant_fn lq_q8_quantize_fast(void);

/* Values that share one activation scale for weights of type t: 256 (a
 * whole super-block) for the K-quants, 32 for Q4_0 and Q8_0. That is the
 * reference implementation's own pairing (q8_K activations for K-quant
 * weights, q8_0 for the 32-value formats), which the fixtures' error bounds
 * are measured against: with a scale per 32 values the K-quant paths were
 * more precise on average, but rounded differently enough to flip near-tie
 * expert choices of tiny-moe-q4_k_m that the reference keeps (see
 * docs/architecture.md, "Activation quantization"). */
int lq_q8_group(lq_type t);
/* lq_q8_quantize with one scale per `group` values (32 or 256; n_in a
 * multiple of it). Each 32-value block still carries its scale (the same for
 * the blocks of a group), so every kernel reads both layouts. */
void lq_q8_quantize_g(const float *x, int64_t n_rows, int64_t n_in, int group, lq_q8blk *xa);
/* Group 256's definition (scalar; n_in a multiple of 256) and its SIMD
 * version with the same bytes (NULL when unavailable), which
 * lq_q8_quantize_g uses when present. */
void lq_q8_quantize256_ref(const float *x, int64_t n_rows, int64_t n_in, lq_q8blk *xa);
lq_q8quant_fn lq_q8_quantize256_fast(void);

/* lq_matmul_range with x already quantized (xa from lq_q8_quantize); t must
 * be an lq_q8_type. Same determinism contract. */
void lq_matmul_q8_range(lq_type t, const void *W, int64_t n_out, int64_t n_in, const lq_q8blk *xa,
                        int64_t n_rows, float *y, int64_t o0, int64_t o1, lq_kernels k);

/* Integer kernel set: out[j] = dot(W row w, activation row x + j * xstride)
 * for j < nx (1..4), nb 32-value blocks. One weight row decoded once serves
 * nx activation rows (the prefill / batched-decode reuse). */
typedef void (*lq_q8dot_fn)(lq_type t, const uint8_t *w, const lq_q8blk *x, int64_t nb, int nx,
                            int64_t xstride, float *out);
/* Tile kernel: y[j * ys + r] = dot(W row r, activation row j) for r <
 * LQ_Q8_TR rows rb bytes apart from w and j < nt <= LQ_Q8_TT rows nb blocks
 * apart from x; the same bits as `dot` for every output. Returns 0 (and
 * writes nothing) for a type it does not handle or nt out of range; the
 * driver then uses `dot`. The x86 sets handle every lq_q8_type. */
#define LQ_Q8_TR 4
#define LQ_Q8_TT 64
typedef int (*lq_q8tile_fn)(lq_type t, const uint8_t *w, size_t rb, const lq_q8blk *x, int64_t nb,
                            int nt, float *y, int64_t ys);
/* Rows kernel (decode): y[j * ys + o] = dot(W row o, activation row j) for
 * o < nw rows rb bytes apart from w and j < nx (1..3) rows nb blocks
 * apart from x; the same bits as `dot`. Returns 0 (writing nothing) for
 * what it does not handle; the x86 sets handle Q4_0 (nb <= 256) and Q6_K. */
typedef int (*lq_q8rows_fn)(lq_type t, const uint8_t *w, size_t rb, int64_t nw, const lq_q8blk *x,
                            int64_t nb, int nx, float *y, int64_t ys);
typedef struct {
    const char *name;
    lq_q8dot_fn dot;
    lq_q8tile_fn tile; /* NULL: the set has none */
    lq_q8rows_fn rows; /* NULL: the set has none */
} lq_q8set;

extern const lq_q8set lq_q8_scalar;
/* NULL when not compiled in or the CPU lacks the instructions. */
const lq_q8set *lq_q8_avx2(void);
const lq_q8set *lq_q8_vnni(void);
const lq_q8set *lq_q8_neon(void);
/* The set kernels k resolve to (AUTO: the best available). */
const lq_q8set *lq_q8_pick(lq_kernels k);

/* The fixed final reduction of the 8 lane accumulators (see above). */
static inline float lq_q8_reduce(const float a[8]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

#endif
