/* quant_quantize: reference quantizers, round-to-nearest. They only need to
 * produce a valid encoding with an error of about half a quantization step
 * (synth-model and the round-trip tests use them); llama.cpp's
 * error-minimizing searches are deliberately not reproduced.
 *
 * Scales are chosen from the rounded (f16) super-block scale so the rounding
 * of d itself never pushes a value out of range; 6/8-bit sub-scales are
 * rounded UP so each sub-block's range is covered without clipping. */
#include "engine/quant_impl.h"

#include <math.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* float -> f16 -> float, the value a decoder will see. */
static float f16r(float v) {
    return lq_f16_to_f32(lq_f32_to_f16(v));
}

/* round-to-nearest, clamped to [lo, hi]; NaN maps to lo. */
static int qround(float v, int lo, int hi) {
    float r = roundf(v);
    if (!(r >= (float)lo)) return lo;
    if (r > (float)hi) return hi;
    return (int)r;
}

/* ceil clamped to [0, hi]. */
static int qceil(float v, int hi) {
    float r = ceilf(v);
    if (!(r >= 0.0f)) return 0;
    if (r > (float)hi) return hi;
    return (int)r;
}

static void q_q8_0(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float d = f16r(amax / 127.0f);
    lq_wr16(b, lq_f32_to_f16(d));
    for (int i = 0; i < 32; i++)
        b[2 + i] = (uint8_t)(int8_t)(d > 0 ? qround(x[i] / d, -127, 127) : 0);
}

static void q_q4_0(const float *x, uint8_t *b) {
    /* The value of largest magnitude maps to q = 0 (-8 d), as in ggml. */
    float amax = 0.0f, ext = 0.0f;
    for (int i = 0; i < 32; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), ext = x[i];
    float d = f16r(ext / -8.0f);
    lq_wr16(b, lq_f32_to_f16(d));
    for (int i = 0; i < 16; i++) {
        int lo = d != 0 ? qround(x[i] / d + 8.0f, 0, 15) : 8;
        int hi = d != 0 ? qround(x[i + 16] / d + 8.0f, 0, 15) : 8;
        b[2 + i] = (uint8_t)(lo | (hi << 4));
    }
}

static void pack_k_scales(uint8_t *s, const int sc[8], const int m[8]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per 32-value sub-block,
 * value = d*sc*q - dmin*m with q in [0, nmax]. Writes d, dmin, scales and
 * the integer q's; the caller packs the q bits. */
static void q_kmin(const float *x, uint8_t *b, int nmax, uint8_t q[256]) {
    float mins[8], maxs[8], max_min = 0.0f, max_range = 0.0f;
    for (int j = 0; j < 8; j++) {
        float mn = 0.0f, mx = 0.0f; /* the range always contains 0 */
        for (int l = 0; l < 32; l++)
            mn = fminf(mn, x[32 * j + l]), mx = fmaxf(mx, x[32 * j + l]);
        mins[j] = -mn;
        maxs[j] = mx;
        max_min = fmaxf(max_min, -mn);
        max_range = fmaxf(max_range, mx - mn);
    }
    float d = f16r(max_range / (float)nmax / 63.0f), dmin = f16r(max_min / 63.0f);
    lq_wr16(b, lq_f32_to_f16(d));
    lq_wr16(b + 2, lq_f32_to_f16(dmin));
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        m[j] = dmin > 0 ? qceil(mins[j] / dmin, 63) : 0;
        float m1 = dmin * (float)m[j];
        sc[j] = d > 0 ? qceil((maxs[j] + m1) / ((float)nmax * d), 63) : 0;
        float d1 = d * (float)sc[j];
        for (int l = 0; l < 32; l++)
            q[32 * j + l] = (uint8_t)(d1 > 0 ? qround((x[32 * j + l] + m1) / d1, 0, nmax) : 0);
    }
    pack_k_scales(b + 4, sc, m);
}

static void q_q4_k(const float *x, uint8_t *b) {
    uint8_t q[256];
    q_kmin(x, b, 15, q);
    uint8_t *qs = b + 16;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
}

static void q_q5_k(const float *x, uint8_t *b) {
    uint8_t q[256];
    q_kmin(x, b, 31, q);
    uint8_t *qh = b + 16, *qs = b + 48;
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
            qs[32 * c + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
            qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
        }
}

static void q_q6_k(const float *x, uint8_t *b) {
    /* 16 sub-blocks of 16 with int8 scales; q in [-32, 31], symmetric use. */
    float amax[16], max_scale = 0.0f;
    for (int s = 0; s < 16; s++) {
        amax[s] = 0.0f;
        for (int l = 0; l < 16; l++)
            amax[s] = fmaxf(amax[s], fabsf(x[16 * s + l]));
        max_scale = fmaxf(max_scale, amax[s] / 31.0f);
    }
    float d = f16r(max_scale / 127.0f);
    uint8_t *ql = b, *qh = b + 128;
    int8_t *sc = (int8_t *)(b + 192);
    memset(b, 0, 192);
    lq_wr16(b + 208, lq_f32_to_f16(d));
    for (int s = 0; s < 16; s++)
        sc[s] = (int8_t)(d > 0 ? qceil(amax[s] / 31.0f / d, 127) : 0);
    for (int i = 0; i < 256; i++) {
        float d1 = d * (float)sc[i / 16];
        int u = (d1 > 0 ? qround(x[i] / d1, -32, 31) : 0) + 32;
        int n = i / 128, k = (i / 32) % 4, l = i % 32;
        ql[64 * n + 32 * (k & 1) + l] |= (uint8_t)((u & 15) << (4 * (k >> 1)));
        qh[32 * n + l] |= (uint8_t)((u >> 4) << (2 * k));
    }
}

void lq_quantize_row(lq_type t, const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    int64_t bv = lq_block_values(t);
    size_t bb = lq_block_bytes(t);
    if (bv <= 0) return;
    for (int64_t i = 0; i + bv <= n; i += bv, b += bb) {
        const float *x = src + i;
        switch (t) {
        case LQ_F32: memcpy(b, x, 4); break;
        case LQ_F16: lq_wr16(b, lq_f32_to_f16(x[0])); break;
        case LQ_BF16: lq_wr16(b, lq_f32_to_bf16(x[0])); break;
        case LQ_Q8_0: q_q8_0(x, b); break;
        case LQ_Q4_0: q_q4_0(x, b); break;
        case LQ_Q4_K: q_q4_k(x, b); break;
        case LQ_Q5_K: q_q5_k(x, b); break;
        case LQ_Q6_K: q_q6_k(x, b); break;
        }
    }
}
