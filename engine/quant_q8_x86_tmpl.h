/* quant_q8_x86_tmpl: the x86 integer kernels, instantiated once per ISA by
 * quant_q8_x86.c (no include guard on purpose). The includer defines
 *   ISA       suffix of the generated names (avx2, vnni, avxvnni)
 *   TGT_STR   the target attribute string
 *   SUM_US8   (u8 a, s8 b) -> 8 int32 lanes, lane l = sum of a[i]*b[i] over
 *             bytes 4l..4l+3 (exact: maddubs cannot saturate on our ranges)
 * Every kernel computes the lane integers, scales and fma order that
 * quant_q8.c's scalar reference defines, so the result bits are the same. */

#define Q8_CAT2(a, b) a##_##b
#define Q8_CAT(a, b)  Q8_CAT2(a, b)
#define FN(n)         Q8_CAT(n, ISA)
#define TGI           static inline __attribute__((always_inline, target(TGT_STR)))
#define TGF           static __attribute__((target(TGT_STR)))
/* GCC -O2 does not unroll the small row loops by itself; unrolled, the
 * accumulators live in registers. */
#define Q8_UNROLL _Pragma("GCC unroll 4")

TGI __m256i FN(sum_us8)(__m256i a, __m256i b) {
    return SUM_US8(a, b);
}

/* Signed x signed through the u8 x s8 instruction: |w| * (x with w's sign). */
TGI __m256i FN(sum_ss8)(__m256i w, __m256i x) {
    return FN(sum_us8)(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

TGI __m256 FN(lane_fma)(__m256i L, float s, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(L), _mm256_set1_ps(s), acc);
}

TGI float FN(finish)(__m256 acc, float accm) {
    float a[8];
    _mm256_storeu_ps(a, acc);
    return lq_q8_reduce(a) - accm;
}

TGI __m256i FN(ldx)(const lq_q8blk *b) {
    return _mm256_loadu_si256((const __m256i *)b->q);
}

/* Q8_0 and Q4_0: one scale per 32 values. */
TGI void FN(k_q4_0)(const uint8_t *w, const lq_q8blk *x, int64_t nb, const int nx, int64_t xs,
                    float *out, const int is_q8) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    const __m128i m4 = _mm_set1_epi8(15);
    const size_t bb = is_q8 ? LQ_Q8_0_BYTES : LQ_Q4_0_BYTES;
    for (int64_t b = 0; b < nb; b++, w += bb) {
        __m256i wq;
        if (is_q8) {
            wq = _mm256_loadu_si256((const __m256i *)(w + 2));
        } else {
            __m128i qs = _mm_loadu_si128((const __m128i *)(w + 2));
            wq = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), m4), _mm_and_si128(qs, m4));
            wq = _mm256_sub_epi8(wq, _mm256_set1_epi8(8));
        }
        const __m256i aw = _mm256_sign_epi8(wq, wq);
        const float dw = _cvtsh_ss(lq_rd16(w));
        Q8_UNROLL for (int j = 0; j < nx; j++) {
            const lq_q8blk *xb = x + j * xs + b;
            __m256i L = FN(sum_us8)(aw, _mm256_sign_epi8(FN(ldx)(xb), wq));
            acc[j] = FN(lane_fma)(L, dw * xb->d, acc[j]);
        }
    }
    for (int j = 0; j < nx; j++)
        out[j] = FN(finish)(acc[j], 0.0f);
}

/* Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scale and min. */
TGI void FN(k_q4_k)(const uint8_t *w, const lq_q8blk *x, int64_t nb, const int nx, int64_t xs,
                    float *out, const int five) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    float accm[4] = {0, 0, 0, 0};
    const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    const size_t bb = five ? LQ_Q5_K_BYTES : LQ_Q4_K_BYTES;
    for (int64_t sb = 0; sb < nb / 8; sb++, w += bb) {
        const float d = _cvtsh_ss(lq_rd16(w)), dmin = _cvtsh_ss(lq_rd16(w + 2));
        float d1[8], m1[8];
        for (int j = 0; j < 8; j++) {
            int sc, m;
            lq_k_scale_min(w + 4, j, &sc, &m);
            d1[j] = d * (float)sc;
            m1[j] = dmin * (float)m;
        }
        const uint8_t *qs = w + (five ? 48 : 16);
        const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(w + 16)) : one;
        const lq_q8blk *xsb = x + sb * 8;
        for (int p = 0; p < 4; p++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * p));
            __m256i qv[2] = {_mm256_and_si256(q, m4),
                             _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)};
            if (five) Q8_UNROLL for (int h = 0; h < 2; h++) {
                    __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * p + h), one);
                    qv[h] = _mm256_or_si256(qv[h], _mm256_slli_epi16(hb, 4));
                }
            Q8_UNROLL for (int h = 0; h < 2; h++) {
                const int jb = 2 * p + h;
                Q8_UNROLL for (int j = 0; j < nx; j++) {
                    const lq_q8blk *xb = xsb + j * xs + jb;
                    __m256i L = FN(sum_us8)(qv[h], FN(ldx)(xb));
                    acc[j] = FN(lane_fma)(L, d1[jb] * xb->d, acc[j]);
                    accm[j] = __builtin_fmaf((float)xb->sum, m1[jb] * xb->d, accm[j]);
                }
            }
        }
    }
    for (int j = 0; j < nx; j++)
        out[j] = FN(finish)(acc[j], accm[j]);
}

/* Q6_K: 6-bit values - 32, an int8 scale per 16 values (folded into the
 * lane integers), one f16 d per 256. */
TGI void FN(k_q6_k)(const uint8_t *w, const lq_q8blk *x, int64_t nb, const int nx, int64_t xs,
                    float *out) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    for (int64_t sb = 0; sb < nb / 8; sb++, w += LQ_Q6_K_BYTES) {
        const float d = _cvtsh_ss(lq_rd16(w + 208));
        const int8_t *sc = (const int8_t *)(w + 192);
        const lq_q8blk *xsb = x + sb * 8;
        for (int n = 0; n < 2; n++) {
            const __m256i hi = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * n));
            for (int k = 0; k < 4; k++) {
                const int jb = 4 * n + k;
                __m256i lo = _mm256_loadu_si256((const __m256i *)(w + 64 * n + 32 * (k & 1)));
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(lo, 4 * (k >> 1)), m4);
                __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * k), m2);
                q = _mm256_or_si256(q, _mm256_slli_epi16(h2, 4));
                q = _mm256_sub_epi8(q, _mm256_set1_epi8(32));
                const __m256i scv =
                    _mm256_set_m128i(_mm_set1_epi32(sc[2 * jb + 1]), _mm_set1_epi32(sc[2 * jb]));
                const __m256i aq = _mm256_sign_epi8(q, q);
                Q8_UNROLL for (int j = 0; j < nx; j++) {
                    const lq_q8blk *xb = xsb + j * xs + jb;
                    __m256i L = FN(sum_us8)(aq, _mm256_sign_epi8(FN(ldx)(xb), q));
                    L = _mm256_mullo_epi32(L, scv);
                    acc[j] = FN(lane_fma)(L, d * xb->d, acc[j]);
                }
            }
        }
    }
    for (int j = 0; j < nx; j++)
        out[j] = FN(finish)(acc[j], 0.0f);
}

/* nx as a constant in each instantiation keeps the accumulators in registers. */
#define Q8_NX(call)                                                                                \
    switch (nx) {                                                                                  \
    case 1: call(1); break;                                                                        \
    case 2: call(2); break;                                                                        \
    case 3: call(3); break;                                                                        \
    default: call(4); break;                                                                       \
    }

TGF void FN(q8dot)(lq_type t, const uint8_t *w, const lq_q8blk *x, int64_t nb, int nx, int64_t xs,
                   float *out) {
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

/* Software prefetch distance (bytes ahead in each weight row). The tile
 * walks TR rows side by side, rb bytes apart; the hardware prefetchers
 * followed those interleaved streams badly, so with few tokens per tile
 * (batched decode: 4..8) the kernel waited on DRAM latency and read 3-4
 * GB/s where the one-stream rows kernel reads 18 (a 65536 x 1024 Q4_0
 * matmul, 1 thread, 4 tokens: 10.6 ms, 4.4 ms with 4 KB ahead; 512 and
 * 1536 bytes gave 8.4 and 5.4). Addresses past the matrix are fine: a
 * prefetch never faults (the address is formed as an integer). */
#ifndef Q8_TILE_PF
#define Q8_TILE_PF 4096
#endif

/* ---- tile: LQ_Q8_TR weight rows x up to LQ_Q8_TT activation rows ---------------------
 * Prefill and batched decode. Each weight block is decoded once per tile
 * and serves every activation row of it; the 8-lane accumulators of all
 * (row, token) pairs live in a stack buffer (L1) across the block loop.
 * Every output gets exactly the lane integers, scale products and fma order
 * of the dot kernels above (and of quant_q8.c's scalar reference), so a
 * value does not depend on which tile, position or batch computed it. What
 * it saves per (row, token, block): the weight decode and its scale (once
 * per tile), the sign trick for Q4_0 (nibbles stay unsigned; DPACC starts
 * from -8 x the activation lane sums, computed once per token for all
 * rows), and the scalar scale product (two broadcasts multiplied). */
TGF int FN(q8tile)(lq_type t, const uint8_t *w, size_t rb, const lq_q8blk *x, int64_t nb, int nt,
                   float *y, int64_t ys) {
    if (!lq_q8_type(t) || nt < 1 || nt > LQ_Q8_TT) return 0;
    enum { TR = LQ_Q8_TR };
    _Alignas(32) float acc[TR][LQ_Q8_TT][8];
    float accm[TR][LQ_Q8_TT];
    /* Only the nt tokens in use are cleared (a decode tile has 4..8), with
     * vector stores: the memsets were `rep stos`, whose start-up cost was
     * 5% of an 8-sequence decode step. */
    for (int r = 0; r < TR; r++)
        for (int j = 0; j < nt; j++) {
            _mm256_store_ps(acc[r][j], _mm256_setzero_ps());
            accm[r][j] = 0;
        }
    const __m256i zero = _mm256_setzero_si256();
    if (t == LQ_Q4_0 || t == LQ_Q8_0) {
        const int q8 = t == LQ_Q8_0;
        const size_t bb = q8 ? LQ_Q8_0_BYTES : LQ_Q4_0_BYTES;
        const __m128i m4 = _mm_set1_epi8(15);
        const __m256i eight = _mm256_set1_epi8(8);
        for (int64_t b = 0; b < nb; b++) {
            __m256i wq[TR], aw[TR];
            __m256 bw[TR];
            Q8_UNROLL for (int r = 0; r < TR; r++) {
                const uint8_t *p = w + (size_t)r * rb + (size_t)b * bb;
                _mm_prefetch((const char *)((uintptr_t)p + Q8_TILE_PF), _MM_HINT_T0);
                if (q8) {
                    wq[r] = _mm256_loadu_si256((const __m256i *)(p + 2));
                    aw[r] = _mm256_sign_epi8(wq[r], wq[r]);
                } else {
                    __m128i qs = _mm_loadu_si128((const __m128i *)(p + 2));
                    wq[r] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), m4),
                                             _mm_and_si128(qs, m4));
                    aw[r] = wq[r];
                }
                /* cvtph keeps the broadcast opaque to GCC, which would
                 * otherwise turn bw * bx into mulss + broadcast per row. */
                bw[r] = _mm256_cvtph_ps(_mm_set1_epi16((short)lq_rd16(p)));
            }
            for (int j = 0; j < nt; j++) {
                const lq_q8blk *xb = x + j * nb + b;
                const __m256i xv = FN(ldx)(xb);
                const __m256 bx = _mm256_broadcast_ss(&xb->d);
                /* Q4_0: (q - 8) . x = q . x - 8 * (lane sums of x). */
                const __m256i base = q8 ? zero : _mm256_sub_epi32(zero, FN(sum_us8)(eight, xv));
                Q8_UNROLL for (int r = 0; r < TR; r++) {
                    __m256i L = q8 ? DPACC(zero, aw[r], _mm256_sign_epi8(xv, wq[r]))
                                   : DPACC(base, wq[r], xv);
                    __m256 a = _mm256_load_ps(acc[r][j]);
                    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(L), _mm256_mul_ps(bw[r], bx), a);
                    _mm256_store_ps(acc[r][j], a);
                }
            }
        }
    } else {
        /* K-quants: 8 sub-blocks of 32 per 256-value super-block. */
        const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
        const __m256i one = _mm256_set1_epi8(1), k32 = _mm256_set1_epi8(32);
        const size_t bb = lq_block_bytes(t);
        const int q6 = t == LQ_Q6_K, five = t == LQ_Q5_K;
        for (int64_t sb = 0; sb < nb / 8; sb++) {
            float d1[TR][8], m1[TR][8];
            for (int r = 0; r < TR; r++) {
                const uint8_t *p = w + (size_t)r * rb + (size_t)sb * bb;
                for (size_t l = 0; l < bb; l += 64)
                    _mm_prefetch((const char *)((uintptr_t)p + Q8_TILE_PF + l), _MM_HINT_T0);
                if (q6) {
                    const float d = _cvtsh_ss(lq_rd16(p + 208));
                    for (int k = 0; k < 8; k++)
                        d1[r][k] = d, m1[r][k] = 0;
                    continue;
                }
                const float d = _cvtsh_ss(lq_rd16(p)), dmin = _cvtsh_ss(lq_rd16(p + 2));
                for (int k = 0; k < 8; k++) {
                    int sc, m;
                    lq_k_scale_min(p + 4, k, &sc, &m);
                    d1[r][k] = d * (float)sc;
                    m1[r][k] = dmin * (float)m;
                }
            }
            for (int k = 0; k < 8; k++) {
                const int64_t b = sb * 8 + k;
                __m256i wq[TR], aw[TR], scv[TR];
                __m256 bw[TR];
                Q8_UNROLL for (int r = 0; r < TR; r++) {
                    const uint8_t *p = w + (size_t)r * rb + (size_t)sb * bb;
                    if (q6) {
                        const int n = k / 4, kk = k % 4;
                        const int8_t *sc = (const int8_t *)(p + 192);
                        __m256i lo =
                            _mm256_loadu_si256((const __m256i *)(p + 64 * n + 32 * (kk & 1)));
                        __m256i hi = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * n));
                        __m256i q = _mm256_and_si256(_mm256_srli_epi16(lo, 4 * (kk >> 1)), m4);
                        __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * kk), m2);
                        q = _mm256_sub_epi8(_mm256_or_si256(q, _mm256_slli_epi16(h2, 4)), k32);
                        wq[r] = q;
                        aw[r] = _mm256_sign_epi8(q, q);
                        scv[r] = _mm256_set_m128i(_mm_set1_epi32(sc[2 * k + 1]),
                                                  _mm_set1_epi32(sc[2 * k]));
                    } else {
                        const uint8_t *qs = p + (five ? 48 : 16) + 32 * (k / 2);
                        __m256i q = _mm256_loadu_si256((const __m256i *)qs);
                        q = _mm256_and_si256(k & 1 ? _mm256_srli_epi16(q, 4) : q, m4);
                        if (five) {
                            __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 16));
                            __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, k), one);
                            q = _mm256_or_si256(q, _mm256_slli_epi16(hb, 4));
                        }
                        wq[r] = aw[r] = q;
                        scv[r] = zero;
                    }
                    bw[r] = _mm256_set1_ps(d1[r][k]);
                }
                for (int j = 0; j < nt; j++) {
                    const lq_q8blk *xb = x + j * nb + b;
                    const __m256i xv = FN(ldx)(xb);
                    const __m256 bx = _mm256_broadcast_ss(&xb->d);
                    const float xd = xb->d, xs = (float)xb->sum;
                    Q8_UNROLL for (int r = 0; r < TR; r++) {
                        __m256i L;
                        if (q6)
                            L = _mm256_mullo_epi32(DPACC(zero, aw[r], _mm256_sign_epi8(xv, wq[r])),
                                                   scv[r]);
                        else
                            L = DPACC(zero, wq[r], xv);
                        __m256 a = _mm256_load_ps(acc[r][j]);
                        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(L), _mm256_mul_ps(bw[r], bx), a);
                        _mm256_store_ps(acc[r][j], a);
                        if (!q6) accm[r][j] = __builtin_fmaf(xs, m1[r][k] * xd, accm[r][j]);
                    }
                }
            }
        }
    }
    for (int j = 0; j < nt; j++)
        for (int r = 0; r < TR; r++)
            y[j * ys + r] = lq_q8_reduce(acc[r][j]) - accm[r][j];
    return 1;
}

/* ---- rows: Q4_0 weight rows against 1..3 activation rows (decode) ---------------
 * The dot kernel's bits with less work per (row, block): nibbles stay
 * unsigned and DPACC starts from -8 x the activation lane sums, computed
 * once per call for all rows (the tile kernel's trick), and the scale
 * product is one vmulps of two broadcasts. */
#define Q8_ROWS_MAXB 256 /* activation blocks per row (n_in <= 8192) */

TGI void FN(rows_q4_0)(const uint8_t *w, size_t rb, int64_t nw, const lq_q8blk *x, int64_t nb,
                       const int nx, const __m256i *base, float *y, int64_t ys) {
    const __m128i m4 = _mm_set1_epi8(15);
    for (int64_t o = 0; o < nw; o++, w += rb) {
        __m256 acc[3] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const uint8_t *p = w;
        for (int64_t b = 0; b < nb; b++, p += LQ_Q4_0_BYTES) {
            __m128i qs = _mm_loadu_si128((const __m128i *)(p + 2));
            const __m256i wq =
                _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), m4), _mm_and_si128(qs, m4));
            const __m256 bw = _mm256_cvtph_ps(_mm_set1_epi16((short)lq_rd16(p)));
            Q8_UNROLL for (int j = 0; j < nx; j++) {
                const lq_q8blk *xb = x + j * nb + b;
                __m256i L = DPACC(base[j * Q8_ROWS_MAXB + b], wq, FN(ldx)(xb));
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(L),
                                         _mm256_mul_ps(bw, _mm256_broadcast_ss(&xb->d)), acc[j]);
            }
        }
        for (int j = 0; j < nx; j++)
            y[j * ys + o] = FN(finish)(acc[j], 0.0f);
    }
}

/* Q6_K (the output head of the Q4_0 and Q4_K_M mixes): the 16-value int8
 * scale is applied to the converted lane integers as a float multiply,
 * exact because |lane x scale| <= 4 * 32 * 127 * 128 < 2^24, so the value is
 * the dot kernel's (float)(lane * scale) without its mullo. */
TGI void FN(rows_q6_k)(const uint8_t *w, size_t rb, int64_t nw, const lq_q8blk *x, int64_t nb,
                       const int nx, float *y, int64_t ys) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
    for (int64_t o = 0; o < nw; o++, w += rb) {
        __m256 acc[3] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const uint8_t *p = w;
        for (int64_t sb = 0; sb < nb / 8; sb++, p += LQ_Q6_K_BYTES) {
            const __m256 bd = _mm256_cvtph_ps(_mm_set1_epi16((short)lq_rd16(p + 208)));
            const __m128i sc16 = _mm_loadu_si128((const __m128i *)(p + 192));
            const __m256 scs[2] = {
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc16)),
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc16, 8)))};
            const lq_q8blk *xsb = x + sb * 8;
            for (int n = 0; n < 2; n++) {
                const __m256i hi = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * n));
                Q8_UNROLL for (int k = 0; k < 4; k++) {
                    const int jb = 4 * n + k;
                    __m256i lo = _mm256_loadu_si256((const __m256i *)(p + 64 * n + 32 * (k & 1)));
                    __m256i q = _mm256_and_si256(_mm256_srli_epi16(lo, 4 * (k >> 1)), m4);
                    __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(hi, 2 * k), m2);
                    q = _mm256_sub_epi8(_mm256_or_si256(q, _mm256_slli_epi16(h2, 4)), k32);
                    const __m256i aq = _mm256_sign_epi8(q, q);
                    /* lanes 0-3: scale 2jb, lanes 4-7: scale 2jb + 1 */
                    const int i0 = (2 * jb) & 7;
                    const __m256 scf = _mm256_permutevar8x32_ps(
                        scs[jb >> 2],
                        _mm256_setr_epi32(i0, i0, i0, i0, i0 + 1, i0 + 1, i0 + 1, i0 + 1));
                    Q8_UNROLL for (int j = 0; j < nx; j++) {
                        const lq_q8blk *xb = xsb + j * nb + jb;
                        __m256i L =
                            DPACC(_mm256_setzero_si256(), aq, _mm256_sign_epi8(FN(ldx)(xb), q));
                        __m256 lf = _mm256_mul_ps(_mm256_cvtepi32_ps(L), scf);
                        acc[j] = _mm256_fmadd_ps(lf, _mm256_mul_ps(bd, _mm256_broadcast_ss(&xb->d)),
                                                 acc[j]);
                    }
                }
            }
        }
        for (int j = 0; j < nx; j++)
            y[j * ys + o] = FN(finish)(acc[j], 0.0f);
    }
}

TGF int FN(q8rows)(lq_type t, const uint8_t *w, size_t rb, int64_t nw, const lq_q8blk *x,
                   int64_t nb, int nx, float *y, int64_t ys) {
    if (nx < 1 || nx > 3) return 0;
    if (t == LQ_Q6_K && nb % 8 == 0) {
        switch (nx) {
        case 1: FN(rows_q6_k)(w, rb, nw, x, nb, 1, y, ys); break;
        case 2: FN(rows_q6_k)(w, rb, nw, x, nb, 2, y, ys); break;
        default: FN(rows_q6_k)(w, rb, nw, x, nb, 3, y, ys); break;
        }
        return 1;
    }
    if (t != LQ_Q4_0 || nb > Q8_ROWS_MAXB) return 0;
    _Alignas(32) __m256i base[3 * Q8_ROWS_MAXB];
    const __m256i zero = _mm256_setzero_si256(), eight = _mm256_set1_epi8(8);
    for (int j = 0; j < nx; j++)
        for (int64_t b = 0; b < nb; b++)
            base[j * Q8_ROWS_MAXB + b] =
                _mm256_sub_epi32(zero, FN(sum_us8)(eight, FN(ldx)(x + j * nb + b)));
    switch (nx) {
    case 1: FN(rows_q4_0)(w, rb, nw, x, nb, 1, base, y, ys); break;
    case 2: FN(rows_q4_0)(w, rb, nw, x, nb, 2, base, y, ys); break;
    default: FN(rows_q4_0)(w, rb, nw, x, nb, 3, base, y, ys); break;
    }
    return 1;
}

#undef Q8_NX
#undef Q8_UNROLL
#undef FN
#undef TGI
#undef TGF
#undef Q8_CAT
#undef Q8_CAT2
