/* quant_q8_neon_tmpl: the aarch64 integer kernels, instantiated by
 * quant_q8_neon.c (no include guard on purpose). The includer defines
 *   ISA    suffix of the generated names (sdot, neon)
 *   SUM16  (int8x16 w, int8x16 x) -> int32x4, lane l = exact sum of the
 *          products of bytes 4l..4l+3
 * The lane integers, scales and fma order are those of quant_q8.c's scalar
 * reference, so the result bits are the same. */

#define Q8_CAT2(a, b) a##_##b
#define Q8_CAT(a, b)  Q8_CAT2(a, b)
#define FN(n)         Q8_CAT(n, ISA)
#define TGI           static inline __attribute__((always_inline))
#define Q8_UNROLL     _Pragma("GCC unroll 4")

TGI void FN(lane_fma)(int32x4_t L0, int32x4_t L1, float s, float32x4_t acc[2]) {
    float32x4_t sv = vdupq_n_f32(s);
    acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(L0), sv);
    acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(L1), sv);
}

TGI float FN(finish)(const float32x4_t acc[2], float accm) {
    float a[8];
    vst1q_f32(a, acc[0]);
    vst1q_f32(a + 4, acc[1]);
    return lq_q8_reduce(a) - accm;
}

TGI void FN(k_q4_0)(const uint8_t *w, const lq_q8blk *x, int64_t nb, const int nx, int64_t xs,
                    float *out, const int is_q8) {
    float32x4_t acc[4][2];
    for (int j = 0; j < 4; j++)
        acc[j][0] = acc[j][1] = vdupq_n_f32(0);
    const size_t bb = is_q8 ? LQ_Q8_0_BYTES : LQ_Q4_0_BYTES;
    for (int64_t b = 0; b < nb; b++, w += bb) {
        int8x16_t w0, w1;
        if (is_q8) {
            w0 = vld1q_s8((const int8_t *)(w + 2));
            w1 = vld1q_s8((const int8_t *)(w + 18));
        } else {
            uint8x16_t qs = vld1q_u8(w + 2);
            w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(15))), vdupq_n_s8(8));
            w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), vdupq_n_s8(8));
        }
        const float dw = lq_rdf16(w);
        Q8_UNROLL for (int j = 0; j < nx; j++) {
            const lq_q8blk *xb = x + j * xs + b;
            int32x4_t L0 = SUM16(w0, vld1q_s8(xb->q)), L1 = SUM16(w1, vld1q_s8(xb->q + 16));
            FN(lane_fma)(L0, L1, dw * xb->d, acc[j]);
        }
    }
    for (int j = 0; j < nx; j++)
        out[j] = FN(finish)(acc[j], 0.0f);
}

TGI void FN(k_q4_k)(const uint8_t *w, const lq_q8blk *x, int64_t nb, const int nx, int64_t xs,
                    float *out, const int five) {
    float32x4_t acc[4][2];
    float accm[4] = {0, 0, 0, 0};
    for (int j = 0; j < 4; j++)
        acc[j][0] = acc[j][1] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(15), one = vdupq_n_u8(1);
    const size_t bb = five ? LQ_Q5_K_BYTES : LQ_Q4_K_BYTES;
    for (int64_t sb = 0; sb < nb / 8; sb++, w += bb) {
        const float d = lq_rdf16(w), dmin = lq_rdf16(w + 2);
        float d1[8], m1[8];
        for (int j = 0; j < 8; j++) {
            int sc, m;
            lq_k_scale_min(w + 4, j, &sc, &m);
            d1[j] = d * (float)sc;
            m1[j] = dmin * (float)m;
        }
        const uint8_t *qs = w + (five ? 48 : 16);
        uint8x16_t qh0 = one, qh1 = one;
        if (five) qh0 = vld1q_u8(w + 16), qh1 = vld1q_u8(w + 32);
        const lq_q8blk *xsb = x + sb * 8;
        for (int p = 0; p < 4; p++) {
            uint8x16_t q0 = vld1q_u8(qs + 32 * p), q1 = vld1q_u8(qs + 32 * p + 16);
            uint8x16_t v[2][2] = {{vandq_u8(q0, m4), vandq_u8(q1, m4)},
                                  {vshrq_n_u8(q0, 4), vshrq_n_u8(q1, 4)}};
            if (five)
                for (int h = 0; h < 2; h++) {
                    int8x16_t sh = vdupq_n_s8((int8_t) - (2 * p + h));
                    uint8x16_t b0 = vandq_u8(vshlq_u8(qh0, sh), one);
                    uint8x16_t b1 = vandq_u8(vshlq_u8(qh1, sh), one);
                    v[h][0] = vorrq_u8(v[h][0], vshlq_n_u8(b0, 4));
                    v[h][1] = vorrq_u8(v[h][1], vshlq_n_u8(b1, 4));
                }
            Q8_UNROLL for (int h = 0; h < 2; h++) {
                const int jb = 2 * p + h;
                const int8x16_t w0 = vreinterpretq_s8_u8(v[h][0]),
                                w1 = vreinterpretq_s8_u8(v[h][1]);
                Q8_UNROLL for (int j = 0; j < nx; j++) {
                    const lq_q8blk *xb = xsb + j * xs + jb;
                    int32x4_t L0 = SUM16(w0, vld1q_s8(xb->q)), L1 = SUM16(w1, vld1q_s8(xb->q + 16));
                    FN(lane_fma)(L0, L1, d1[jb] * xb->d, acc[j]);
                    accm[j] = __builtin_fmaf((float)xb->sum, m1[jb] * xb->d, accm[j]);
                }
            }
        }
    }
    for (int j = 0; j < nx; j++)
        out[j] = FN(finish)(acc[j], accm[j]);
}

TGI void FN(k_q6_k)(const uint8_t *w, const lq_q8blk *x, int64_t nb, const int nx, int64_t xs,
                    float *out) {
    float32x4_t acc[4][2];
    for (int j = 0; j < 4; j++)
        acc[j][0] = acc[j][1] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(15), m2 = vdupq_n_u8(3);
    for (int64_t sb = 0; sb < nb / 8; sb++, w += LQ_Q6_K_BYTES) {
        const float d = lq_rdf16(w + 208);
        const int8_t *sc = (const int8_t *)(w + 192);
        const lq_q8blk *xsb = x + sb * 8;
        for (int n = 0; n < 2; n++) {
            const uint8x16_t hi0 = vld1q_u8(w + 128 + 32 * n), hi1 = vld1q_u8(w + 144 + 32 * n);
            for (int k = 0; k < 4; k++) {
                const int jb = 4 * n + k;
                const uint8_t *lo = w + 64 * n + 32 * (k & 1);
                const int8x16_t sl = vdupq_n_s8((int8_t) - (4 * (k >> 1)));
                const int8x16_t sh = vdupq_n_s8((int8_t) - (2 * k));
                uint8x16_t a0 = vandq_u8(vshlq_u8(vld1q_u8(lo), sl), m4);
                uint8x16_t a1 = vandq_u8(vshlq_u8(vld1q_u8(lo + 16), sl), m4);
                a0 = vorrq_u8(a0, vshlq_n_u8(vandq_u8(vshlq_u8(hi0, sh), m2), 4));
                a1 = vorrq_u8(a1, vshlq_n_u8(vandq_u8(vshlq_u8(hi1, sh), m2), 4));
                const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(a0), vdupq_n_s8(32));
                const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(a1), vdupq_n_s8(32));
                const int32_t s0 = sc[2 * jb], s1 = sc[2 * jb + 1];
                Q8_UNROLL for (int j = 0; j < nx; j++) {
                    const lq_q8blk *xb = xsb + j * xs + jb;
                    int32x4_t L0 = vmulq_n_s32(SUM16(w0, vld1q_s8(xb->q)), s0);
                    int32x4_t L1 = vmulq_n_s32(SUM16(w1, vld1q_s8(xb->q + 16)), s1);
                    FN(lane_fma)(L0, L1, d * xb->d, acc[j]);
                }
            }
        }
    }
    for (int j = 0; j < nx; j++)
        out[j] = FN(finish)(acc[j], 0.0f);
}

#define Q8_NX(call)                                                                                \
    switch (nx) {                                                                                  \
    case 1: call(1); break;                                                                        \
    case 2: call(2); break;                                                                        \
    case 3: call(3); break;                                                                        \
    default: call(4); break;                                                                       \
    }

static void FN(q8dot)(lq_type t, const uint8_t *w, const lq_q8blk *x, int64_t nb, int nx,
                      int64_t xs, float *out) {
#define C_Q8(n) FN(k_q4_0)(w, x, nb, n, xs, out, 1)
#define C_Q4(n) FN(k_q4_0)(w, x, nb, n, xs, out, 0)
#define C_K4(n) FN(k_q4_k)(w, x, nb, n, xs, out, 0)
#define C_K5(n) FN(k_q4_k)(w, x, nb, n, xs, out, 1)
#define C_K6(n) FN(k_q6_k)(w, x, nb, n, xs, out)
    switch (t) {
    case LQ_Q8_0: Q8_NX(C_Q8); break;
    case LQ_Q4_0: Q8_NX(C_Q4); break;
    case LQ_Q4_K: Q8_NX(C_K4); break;
    case LQ_Q5_K: Q8_NX(C_K5); break;
    case LQ_Q6_K: Q8_NX(C_K6); break;
    default:
        for (int j = 0; j < nx; j++)
            out[j] = 0.0f / 0.0f;
    }
#undef C_Q8
#undef C_Q4
#undef C_K4
#undef C_K5
#undef C_K6
}

#undef Q8_NX
#undef Q8_UNROLL
#undef FN
#undef TGI
#undef Q8_CAT
#undef Q8_CAT2
