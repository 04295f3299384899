/* Unit tests for engine/quant: conversions, block layouts, quantizers,
 * matmul accuracy and the determinism contract, and the fixture GGUFs (the
 * same random weights in every format must dequantize close to the F32 file).
 */
/* tg-test-links: lfm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/quant_impl.h"
#include "engine/quant_q8.h"

static const lq_type all_types[] = {LQ_F32,  LQ_F16,  LQ_BF16, LQ_Q8_0,
                                    LQ_Q4_0, LQ_Q4_K, LQ_Q5_K, LQ_Q6_K};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

/* xorshift PRNG: deterministic data, no libc rand state. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* [0, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
/* Mostly uniform [-1, 1) with occasional outliers up to 4. */
static void fill_random(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = 2.0 * urand() - 1.0;
        if (urand() < 0.02) v *= 4.0;
        x[i] = (float)v;
    }
}

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- type table ------------------------------------------------------------ */

static void test_type_table(void **state) {
    (void)state;
    assert_int_equal(LQ_Q4_0, 2);
    assert_int_equal(LQ_Q6_K, 14);
    assert_int_equal(LQ_BF16, 30);
    assert_int_equal(lq_block_bytes(LQ_Q8_0), 34);
    assert_int_equal(lq_block_bytes(LQ_Q4_0), 18);
    assert_int_equal(lq_block_bytes(LQ_Q4_K), 144);
    assert_int_equal(lq_block_bytes(LQ_Q5_K), 176);
    assert_int_equal(lq_block_bytes(LQ_Q6_K), 210);
    assert_int_equal(lq_block_values(LQ_Q5_K), 256);
    assert_int_equal(lq_block_values(LQ_BF16), 1);
    assert_int_equal(lq_row_bytes(LQ_Q4_K, 1024), 4 * 144);
    assert_int_equal(lq_row_bytes(LQ_F16, 7), 14);
    assert_false(lq_type_supported(3)); /* Q4_1 */
    assert_false(lq_type_supported(6)); /* Q5_0 */
    assert_string_equal(lq_type_name(99), "?");
    for (size_t i = 0; i < N_TYPES; i++) {
        assert_true(lq_type_supported(all_types[i]));
        assert_int_equal(lq_type_from_name(lq_type_name(all_types[i])), (int)all_types[i]);
    }
    assert_int_equal(lq_type_from_name("q4_k"), LQ_Q4_K);
    assert_int_equal(lq_type_from_name("Q4_K_M"), -1);
    assert_int_equal(lq_type_from_name(""), -1);
    const char *k = lq_kernels_active();
    assert_true(strcmp(k, "avx2") == 0 || strcmp(k, "scalar") == 0);
}

/* ---- f16 / bf16 ------------------------------------------------------------ */

static void test_f16_known(void **state) {
    (void)state;
    struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.5f, 0x3800},
        {65504.0f, 0x7bff},
        {65519.0f, 0x7bff},
        {65520.0f, 0x7c00},
        {1e9f, 0x7c00},
        {-1e9f, 0xfc00},
        {0.1f, 0x2e66},
        {0.333333343f, 0x3555},
        {bits_f(0x33800000), 0x0001}, /* 2^-24 */
        {bits_f(0x33000000), 0x0000}, /* 2^-25: tie -> even 0 */
        {bits_f(0x33000001), 0x0001}, /* just above the tie */
        {bits_f(0x33c00000), 0x0002}, /* 1.5*2^-24: tie -> even 2 */
        {bits_f(0x34400000), 0x0003}, /* 3*2^-24 */
        {bits_f(0x38800000), 0x0400}, /* 2^-14 smallest normal */
        {bits_f(0x387fe000), 0x0400}, /* 2^-14 - 2^-25: tie -> 0x400 */
        {bits_f(0x387fdfff), 0x03ff},
        {bits_f(0x3f801000), 0x3c00}, /* 1 + 2^-11: tie -> even */
        {bits_f(0x3f803000), 0x3c02}, /* 1 + 3*2^-11: tie -> even */
        {bits_f(0x3f801001), 0x3c01},
        {bits_f(0x00000001), 0x0000}, /* f32 subnormal */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (lq_f32_to_f16(cases[i].f) != cases[i].h)
            fail_msg("f32 %a -> f16 %04x, want %04x", (double)cases[i].f, lq_f32_to_f16(cases[i].f),
                     cases[i].h);
    }
    assert_int_equal(lq_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(lq_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(lq_f32_to_f16(-INFINITY), 0xfc00);
    uint16_t hn = lq_f32_to_f16(NAN);
    assert_int_equal(hn & 0x7c00, 0x7c00);
    assert_true((hn & 0x3ff) != 0);
    assert_true(lq_f32_to_f16(bits_f(0x7f800001)) & 0x3ff); /* signalling nan stays nan */

    assert_true(lq_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    assert_true(lq_f16_to_f32(0x03ff) == 1023.0f * ldexpf(1.0f, -24));
    assert_true(lq_f16_to_f32(0x8001) == -ldexpf(1.0f, -24));
    assert_true(lq_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(lq_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(isinf(lq_f16_to_f32(0xfc00)) && lq_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(lq_f16_to_f32(0x7e00)));
    assert_int_equal(f_bits(lq_f16_to_f32(0x8000)), 0x80000000u);

    /* Every finite f16 round-trips; every midpoint between neighbours rounds
     * to the even one, and a hair either side rounds to the nearer one. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float v = lq_f16_to_f32((uint16_t)h);
        assert_int_equal(lq_f32_to_f16(v), h);
        assert_int_equal(lq_f32_to_f16(-v), h | 0x8000);
        if (h + 1 < 0x7c00) {
            double mid = ((double)v + (double)lq_f16_to_f32((uint16_t)(h + 1))) / 2.0;
            float m = (float)mid; /* exact: f16 midpoints fit in f32 */
            assert_true((double)m == mid);
            uint32_t even = (h & 1) ? h + 1 : h;
            assert_int_equal(lq_f32_to_f16(m), even);
            assert_int_equal(lq_f32_to_f16(nextafterf(m, 0.0f)), h);
            assert_int_equal(lq_f32_to_f16(nextafterf(m, INFINITY)), h + 1);
        }
    }
}

static void test_bf16_known(void **state) {
    (void)state;
    assert_int_equal(lq_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(lq_f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(lq_f32_to_bf16(bits_f(0x3f808000)), 0x3f80); /* tie -> even */
    assert_int_equal(lq_f32_to_bf16(bits_f(0x3f818000)), 0x3f82); /* tie -> even */
    assert_int_equal(lq_f32_to_bf16(bits_f(0x3f808001)), 0x3f81);
    assert_int_equal(lq_f32_to_bf16(bits_f(0x7f7fffff)), 0x7f80); /* FLT_MAX -> inf */
    assert_int_equal(lq_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(lq_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(lq_f32_to_bf16(bits_f(0x00000001)), 0x0000); /* subnormal rounds */
    assert_int_equal(lq_f32_to_bf16(bits_f(0x00018000)), 0x0002); /* subnormal tie -> even */
    uint16_t n = lq_f32_to_bf16(bits_f(0x7f800001));              /* nan with low payload only */
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f));
    assert_true(lq_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(lq_bf16_to_f32(0xc0a0) == -5.0f);
    assert_true(isnan(lq_bf16_to_f32(0x7fc0)));
}

/* ---- hand-built blocks: expected values straight from the format text ------ */

static void expect_row(lq_type t, const uint8_t *blk, const double *want, int n) {
    float got[256];
    const lq_kset *sets[2] = {&lq_kset_scalar, lq_kset_avx2()};
    for (int s = 0; s < 2; s++) {
        if (!sets[s]) continue;
        memset(got, 0, sizeof(got));
        sets[s]->dequant(t, blk, got, n);
        for (int i = 0; i < n; i++)
            if (fabs((double)got[i] - want[i]) > 1e-6 * (1.0 + fabs(want[i])))
                fail_msg("%s/%s value %d: got %.9g want %.9g", lq_type_name(t), sets[s]->name, i,
                         (double)got[i], want[i]);
    }
    float pub[256];
    lq_dequant_row(t, blk, pub, n);
    for (int i = 0; i < n; i++)
        assert_true(fabs((double)pub[i] - want[i]) <= 1e-6 * (1.0 + fabs(want[i])));
}

static void test_block_q8_0(void **state) {
    (void)state;
    uint8_t b[34];
    double want[32];
    b[0] = 0x00, b[1] = 0x38; /* d = 0.5 */
    for (int i = 0; i < 32; i++) {
        int q = (i * 9) % 256 - 128; /* covers -128..127 spread */
        b[2 + i] = (uint8_t)(int8_t)q;
        want[i] = 0.5 * q;
    }
    expect_row(LQ_Q8_0, b, want, 32);
}

static void test_block_q4_0(void **state) {
    (void)state;
    uint8_t b[18];
    double want[32];
    b[0] = 0x00, b[1] = 0x38; /* d = 0.5 */
    for (int i = 0; i < 16; i++) {
        b[2 + i] = (uint8_t)(i | ((15 - i) << 4));
        want[i] = 0.5 * (i - 8);      /* low nibbles: values 0..15 */
        want[i + 16] = 0.5 * (7 - i); /* high nibbles: values 16..31 */
    }
    expect_row(LQ_Q4_0, b, want, 32);
}

/* Packs 8 six-bit scales and mins per the K-quant scale layout. */
static void pack_scales(uint8_t s[12], const int sc[8], const int m[8]) {
    memset(s, 0, 12);
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

static void test_block_q4_k_q5_k(void **state) {
    (void)state;
    int sc[8], m[8];
    for (int j = 0; j < 8; j++)
        sc[j] = 10 + 7 * j, m[j] = 63 - 5 * j; /* > 15: high bits used */
    uint8_t b4[144], b5[176];
    double w4[256], w5[256];
    const double d = 0.125, dmin = 0.0625;
    b4[0] = 0x00, b4[1] = 0x30; /* 0.125 */
    b4[2] = 0x00, b4[3] = 0x2c; /* 0.0625 */
    pack_scales(b4 + 4, sc, m);
    memcpy(b5, b4, 16);
    uint8_t *qs4 = b4 + 16, *qh5 = b5 + 16, *qs5 = b5 + 48;
    for (int l = 0; l < 32; l++)
        qh5[l] = (uint8_t)(l * 37 + 11);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = l % 16, hi = (l + 3 * c) % 16;
            qs4[32 * c + l] = qs5[32 * c + l] = (uint8_t)(lo | (hi << 4));
            /* chunk c of 64: low nibbles are sub-block 2c, high nibbles 2c+1 */
            int j0 = 2 * c, j1 = 2 * c + 1;
            w4[64 * c + l] = d * sc[j0] * lo - dmin * m[j0];
            w4[64 * c + 32 + l] = d * sc[j1] * hi - dmin * m[j1];
            int h0 = (qh5[l] >> j0) & 1, h1 = (qh5[l] >> j1) & 1;
            w5[64 * c + l] = d * sc[j0] * (lo + 16 * h0) - dmin * m[j0];
            w5[64 * c + 32 + l] = d * sc[j1] * (hi + 16 * h1) - dmin * m[j1];
        }
    expect_row(LQ_Q4_K, b4, w4, 256);
    expect_row(LQ_Q5_K, b5, w5, 256);
}

static void test_block_q6_k(void **state) {
    (void)state;
    uint8_t b[210];
    double want[256];
    uint8_t *ql = b, *qh = b + 128;
    int8_t *sc = (int8_t *)(b + 192);
    for (int i = 0; i < 128; i++)
        ql[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 64; i++)
        qh[i] = (uint8_t)(i * 13 + 5);
    for (int s = 0; s < 16; s++)
        sc[s] = (int8_t)(s * 9 - 70);
    b[208] = 0x00, b[209] = 0x34; /* d = 0.25 */
    /* Written as the format is usually stated: per half, four outputs per l. */
    for (int n = 0; n < 2; n++) {
        const uint8_t *L = ql + 64 * n, *H = qh + 32 * n;
        const int8_t *S = sc + 8 * n;
        double *y = want + 128 * n;
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((L[l] & 15) | ((H[l] & 3) << 4)) - 32;
            int q2 = ((L[l + 32] & 15) | (((H[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32;
            y[l] = 0.25 * S[is] * q1;
            y[l + 32] = 0.25 * S[is + 2] * q2;
            y[l + 64] = 0.25 * S[is + 4] * q3;
            y[l + 96] = 0.25 * S[is + 6] * q4;
        }
    }
    expect_row(LQ_Q6_K, b, want, 256);
}

/* Arbitrary bytes (including inf/nan scales) decode without reading out of
 * bounds (ASan) and to the same values in both kernel sets. */
static void test_random_blocks(void **state) {
    (void)state;
    const lq_kset *fast = lq_kset_avx2();
    enum { N = 1024 };
    static float a[N], b[N];
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        lq_type t = all_types[ti];
        size_t nb = lq_row_bytes(t, N);
        for (int rep = 0; rep < 20; rep++) {
            uint8_t *blk = malloc(nb); /* exact size: ASan catches overreads */
            assert_non_null(blk);
            for (size_t i = 0; i < nb; i++)
                blk[i] = (uint8_t)(urand() * 256);
            lq_kset_scalar.dequant(t, blk, a, N);
            lq_dequant_row(t, blk, b, N);
            for (int i = 0; i < N; i++)
                if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], 4) != 0)
                    fail_msg("%s value %d: scalar %a, %s %a", lq_type_name(t), i, (double)a[i],
                             fast ? fast->name : "scalar", (double)b[i]);
            free(blk);
        }
    }
}

/* ---- quantize -> dequantize round trips ------------------------------------- */

/* Max error allowed for one block of the source, from the format's step. */
static double step_bound(lq_type t, const float *x, int64_t nb) {
    double amax = 0, worst = 0;
    for (int64_t i = 0; i < nb; i++)
        amax = fmax(amax, fabs(x[i]));
    switch (t) {
    case LQ_F32: return 0;
    case LQ_F16: return amax * ldexp(1.0, -11) + ldexp(1.0, -25);
    case LQ_BF16: return amax * ldexp(1.0, -8);
    case LQ_Q8_0: return 0.5 * amax / 127 * 1.01;
    case LQ_Q4_0: return amax / 8 * 1.01; /* the far side of the extreme clips by <= 1 step */
    case LQ_Q4_K:
    case LQ_Q5_K: {
        int nmax = t == LQ_Q4_K ? 15 : 31;
        for (int j = 0; j < 8; j++) {
            double mn = 0, mx = 0;
            for (int l = 0; l < 32; l++)
                mn = fmin(mn, x[32 * j + l]), mx = fmax(mx, x[32 * j + l]);
            worst = fmax(worst, mx - mn);
        }
        return 0.5 * worst / nmax * 1.05 + worst / nmax / 63;
    }
    case LQ_Q6_K: return 0.5 * amax / 31 * 1.05;
    }
    return 0;
}

static void test_roundtrip(void **state) {
    (void)state;
    enum { N = 8192 };
    static float x[N], y[N], yauto[N];
    static uint8_t q[N * 4];
    const double max_rel_rms[] = {0, 4e-4, 3e-3, 8e-3, 0.12, 0.09, 0.045, 0.025};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        lq_type t = all_types[ti];
        fill_random(x, N);
        /* Also a block of zeros and a block of tiny values. */
        memset(x, 0, 256 * sizeof(float));
        for (int i = 256; i < 512; i++)
            x[i] *= 1e-3f;
        lq_quantize_row(t, x, q, N);
        lq_kset_scalar.dequant(t, q, y, N);
        lq_dequant_row(t, q, yauto, N);
        assert_memory_equal(y, yauto, sizeof(y)); /* both decoders give the same bits */
        int64_t bv = lq_block_values(t) > 1 ? lq_block_values(t) : 32;
        double se = 0, sx = 0;
        for (int64_t b = 0; b < N; b += bv) {
            double bound = step_bound(t, x + b, bv);
            for (int64_t i = b; i < b + bv; i++) {
                double e = fabs((double)y[i] - x[i]);
                if (e > bound)
                    fail_msg("%s: value %lld err %.3g > bound %.3g", lq_type_name(t), (long long)i,
                             e, bound);
                se += e * e, sx += (double)x[i] * x[i];
            }
        }
        for (int i = 0; i < 256; i++)
            assert_true(y[i] == 0.0f);
        double rel = sqrt(se / sx);
        print_message("roundtrip %-5s rel rms err %.4g\n", lq_type_name(t), rel);
        assert_true(rel <= max_rel_rms[ti]);
        if (t != LQ_F32) assert_true(rel > 0); /* the test data is not trivially exact */
    }
}

/* ---- matmul accuracy and determinism ----------------------------------------- */

typedef struct {
    lq_type t;
    int64_t n_out, n_in, n_rows;
    float *w32, *x;
    uint8_t *wq;
    float *wd; /* dequantized weights */
} mm_case;

static void mm_setup(mm_case *c, lq_type t, int64_t n_out, int64_t n_in, int64_t n_rows) {
    c->t = t, c->n_out = n_out, c->n_in = n_in, c->n_rows = n_rows;
    c->w32 = malloc(sizeof(float) * n_out * n_in);
    c->wd = malloc(sizeof(float) * n_out * n_in);
    c->x = malloc(sizeof(float) * n_rows * n_in);
    c->wq = malloc(lq_row_bytes(t, n_in) * n_out + 1);
    assert_non_null(c->w32), assert_non_null(c->wd), assert_non_null(c->x), assert_non_null(c->wq);
    fill_random(c->w32, n_out * n_in);
    fill_random(c->x, n_rows * n_in);
    for (int64_t o = 0; o < n_out; o++) {
        uint8_t *row = c->wq + o * lq_row_bytes(t, n_in);
        lq_quantize_row(t, c->w32 + o * n_in, row, n_in);
        lq_kset_scalar.dequant(t, row, c->wd + o * n_in, n_in);
    }
}

static void mm_free(mm_case *c) {
    free(c->w32), free(c->wd), free(c->x), free(c->wq);
}

static void test_matmul_accuracy(void **state) {
    (void)state;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        lq_type t = all_types[ti];
        int64_t n_in = lq_block_values(t) == 1 ? 300 : 512; /* 300: float tails */
        mm_case c;
        mm_setup(&c, t, 37, n_in, 5);
        size_t ny = (size_t)c.n_rows * c.n_out;
        float *ys = malloc(ny * 4), *ya = malloc(ny * 4);
        lq_matmul(t, c.wq, c.n_out, n_in, c.x, c.n_rows, ys, LQ_KERNELS_SCALAR);
        lq_matmul(t, c.wq, c.n_out, n_in, c.x, c.n_rows, ya, LQ_KERNELS_FLOAT);
        double worst_s = 0, worst_a = 0;
        for (int64_t r = 0; r < c.n_rows; r++)
            for (int64_t o = 0; o < c.n_out; o++) {
                long double ref = 0, mag = 0; /* naive, extended precision */
                for (int64_t i = 0; i < n_in; i++) {
                    long double p = (long double)c.wd[o * n_in + i] * c.x[r * n_in + i];
                    ref += p, mag += fabsl(p);
                }
                double es = fabs((double)((long double)ys[r * c.n_out + o] - ref)) / (double)mag;
                double ea = fabs((double)((long double)ya[r * c.n_out + o] - ref)) / (double)mag;
                /* scalar: exact products, double sum, one float rounding */
                assert_true(es <= 1e-7);
                /* fast path: float 4-term partials -> a few float ulps of sum|w x| */
                assert_true(ea <= 3e-7);
                double eas = fabs((double)ya[r * c.n_out + o] - ys[r * c.n_out + o]) / (double)mag;
                assert_true(eas <= 3e-7);
                worst_s = fmax(worst_s, es), worst_a = fmax(worst_a, ea);
            }
        print_message("matmul %-5s err/sum|wx|: scalar %.3g, float %s %.3g\n", lq_type_name(t),
                      worst_s, lq_kernels_active(), worst_a);
        free(ys), free(ya);
        mm_free(&c);
    }
}

typedef struct {
    const mm_case *c;
    float *y;
    int64_t o0, o1;
    lq_kernels k;
} mm_job;

static void *mm_thread(void *arg) {
    mm_job *j = arg;
    lq_matmul_range(j->c->t, j->c->wq, j->c->n_out, j->c->n_in, j->c->x, j->c->n_rows, j->y, j->o0,
                    j->o1, j->k);
    return NULL;
}

static void test_matmul_determinism(void **state) {
    (void)state;
    const lq_kernels kinds[3] = {LQ_KERNELS_SCALAR, LQ_KERNELS_AUTO, LQ_KERNELS_Q8_SCALAR};
    /* The second size spans several of the driver's 1024-value chunks (and
     * ends in a partial block for the float formats). */
    for (size_t tz = 0; tz < 2 * N_TYPES; tz++) {
        lq_type t = all_types[tz % N_TYPES];
        bool big = tz >= N_TYPES, flt = lq_block_values(t) == 1;
        int64_t n_in = big ? (flt ? 2100 : 2304) : (flt ? 200 : 768);
        mm_case c;
        mm_setup(&c, t, 23, n_in, 7);
        size_t ny = (size_t)c.n_rows * c.n_out;
        float *full = malloc(ny * 4), *part = malloc(ny * 4), *one = malloc(c.n_out * 4);
        for (int kk = 0; kk < 3; kk++) {
            lq_kernels k = kinds[kk];
            lq_matmul(t, c.wq, c.n_out, n_in, c.x, c.n_rows, full, k);
            /* n_rows = 1, one x row at a time (the decode path). */
            for (int64_t r = 0; r < c.n_rows; r++) {
                lq_matmul(t, c.wq, c.n_out, n_in, c.x + r * n_in, 1, one, k);
                assert_memory_equal(one, full + r * c.n_out, c.n_out * 4);
            }
            /* Odd output splits that cut the 4-row tiles differently. */
            const int64_t cuts[][4] = {{0, 1, 6, 23}, {0, 3, 10, 23}, {0, 11, 22, 23}};
            for (int s = 0; s < 3; s++) {
                memset(part, 0xff, ny * 4);
                for (int p = 0; p < 3; p++)
                    lq_matmul_range(t, c.wq, c.n_out, n_in, c.x, c.n_rows, part, cuts[s][p],
                                    cuts[s][p + 1], k);
                assert_memory_equal(part, full, ny * 4);
            }
            /* Two threads, each half of the outputs. */
            memset(part, 0xff, ny * 4);
            pthread_t th[2];
            mm_job jobs[2] = {{&c, part, 0, 9, k}, {&c, part, 9, c.n_out, k}};
            for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_create(&th[i], NULL, mm_thread, &jobs[i]), 0);
            for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
            assert_memory_equal(part, full, ny * 4);
            /* A row batched with different neighbours gives the same bits. */
            lq_matmul(t, c.wq, c.n_out, n_in, c.x + 2 * n_in, 3, part, k);
            assert_memory_equal(part, full + 2 * c.n_out, 3 * c.n_out * 4);
        }
        free(full), free(part), free(one);
        mm_free(&c);
    }
}

/* More x rows than the driver's row block (64): every row still matches the
 * one-row (decode) result. */
static void test_matmul_many_rows(void **state) {
    (void)state;
    const lq_type types[2] = {LQ_F32, LQ_Q4_K};
    for (int ti = 0; ti < 2; ti++) {
        mm_case c;
        mm_setup(&c, types[ti], 9, 512, 150);
        float *full = malloc(sizeof(float) * 150 * 9), one[9];
        lq_matmul(c.t, c.wq, 9, 512, c.x, 150, full, LQ_KERNELS_AUTO);
        for (int64_t r = 0; r < 150; r++) {
            lq_matmul(c.t, c.wq, 9, 512, c.x + r * 512, 1, one, LQ_KERNELS_AUTO);
            assert_memory_equal(one, full + r * 9, sizeof(one));
        }
        free(full);
        mm_free(&c);
    }
}

/* 8-bit activations: each output is within the bound the activation
 * rounding allows, sum over blocks of sum|w| * d_x / 2 (plus float slack),
 * and not exact (the test would pass a float path by accident otherwise). */
static void test_q8_accuracy(void **state) {
    (void)state;
    const lq_type types[] = {LQ_Q8_0, LQ_Q4_0, LQ_Q4_K, LQ_Q5_K, LQ_Q6_K};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        lq_type t = types[ti];
        mm_case c;
        mm_setup(&c, t, 19, 768, 6);
        assert_true(lq_q8_used(t, LQ_KERNELS_AUTO));
        assert_false(lq_q8_used(t, LQ_KERNELS_SCALAR));
        size_t ny = (size_t)c.n_rows * c.n_out;
        float *y = malloc(ny * 4);
        lq_matmul(t, c.wq, c.n_out, c.n_in, c.x, c.n_rows, y, LQ_KERNELS_AUTO);
        double worst = 0, any_diff = 0;
        for (int64_t r = 0; r < c.n_rows; r++)
            for (int64_t o = 0; o < c.n_out; o++) {
                long double ref = 0, mag = 0, bound = 0;
                const int G = lq_q8_group(t); /* values sharing one activation scale */
                for (int64_t b = 0; b < c.n_in / 32; b++) {
                    double amax = 0, sw = 0;
                    for (int i = 0; i < G; i++)
                        amax = fmax(amax, fabs(c.x[r * c.n_in + b / (G / 32) * G + i]));
                    for (int i = 0; i < 32; i++) {
                        int64_t k = b * 32 + i;
                        sw += fabs(c.wd[o * c.n_in + k]);
                        long double p = (long double)c.wd[o * c.n_in + k] * c.x[r * c.n_in + k];
                        ref += p, mag += fabsl(p);
                    }
                    bound += sw * (amax / 127.0) * 0.5;
                }
                double e = fabs((double)((long double)y[r * c.n_out + o] - ref));
                assert_true(e <= (double)(bound * 1.001L + mag * 1e-6L));
                worst = fmax(worst, e / (double)bound);
                any_diff = fmax(any_diff, e);
            }
        assert_true(any_diff > 0);
        print_message("q8 %-5s worst err / rounding bound %.3f (%s)\n", lq_type_name(t), worst,
                      lq_q8_pick(LQ_KERNELS_AUTO)->name);
        free(y);
        mm_free(&c);
    }
}

/* Activation formats: K-quant weights meet one scale per 256 values (the
 * reference implementation's q8_K), Q4_0/Q8_0 one per 32 (its q8_0); a
 * group's blocks share the scale, every value is within half a step, the
 * block sums are the sums of the codes, and group 32 is lq_q8_quantize. */
static void test_q8_groups(void **state) {
    (void)state;
    assert_int_equal(lq_q8_group(LQ_Q4_K), 256);
    assert_int_equal(lq_q8_group(LQ_Q5_K), 256);
    assert_int_equal(lq_q8_group(LQ_Q6_K), 256);
    assert_int_equal(lq_q8_group(LQ_Q4_0), 32);
    assert_int_equal(lq_q8_group(LQ_Q8_0), 32);
    enum { N = 512 };
    float x[2 * N];
    for (int i = 0; i < 2 * N; i++)
        x[i] = (float)sin(i * 0.37) * (i % 97 == 3 ? 9.0f : 1.0f);
    lq_q8blk a[2 * N / 32], b[2 * N / 32];
    memset(a, 0, sizeof a); /* struct padding, for the memory compares */
    memset(b, 0, sizeof b);
    lq_q8_quantize_g(x, 2, N, 256, a);
    for (int r = 0; r < 2; r++)
        for (int g = 0; g < N / 256; g++) {
            float amax = 0;
            for (int i = 0; i < 256; i++)
                amax = fmaxf(amax, fabsf(x[r * N + g * 256 + i]));
            for (int k = 0; k < 8; k++) {
                const lq_q8blk *o = &a[r * (N / 32) + g * 8 + k];
                assert_true(o->d == amax / 127.0f);
                int sum = 0;
                for (int i = 0; i < 32; i++) {
                    float v = x[r * N + g * 256 + k * 32 + i];
                    assert_true(fabsf(o->q[i] * o->d - v) <= 0.5f * o->d * 1.0001f);
                    sum += o->q[i];
                }
                assert_int_equal(o->sum, sum);
            }
        }
    /* A length that is not a multiple of 256 falls back to 32-value scales. */
    lq_q8_quantize_g(x, 1, 288, 256, a);
    lq_q8_quantize(x, 1, 288, b);
    assert_memory_equal(a, b, 9 * sizeof *a);
    lq_q8_quantize_g(x, 2, N, 32, a);
    lq_q8_quantize(x, 2, N, b);
    assert_memory_equal(a, b, sizeof a);
}

/* Every integer kernel set this CPU runs gives the scalar reference's bits,
 * for 1..4 rows per weight decode, on random data and on extreme codes
 * (Q8_0 weights of -128, activations at +-127, zero rows). */
static void test_q8_sets_identical(void **state) {
    (void)state;
    const lq_type types[] = {LQ_Q8_0, LQ_Q4_0, LQ_Q4_K, LQ_Q5_K, LQ_Q6_K};
    const lq_kernels sets[] = {LQ_KERNELS_Q8_AVX2, LQ_KERNELS_Q8_VNNI, LQ_KERNELS_Q8_NEON,
                               LQ_KERNELS_AUTO};
    int compared = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        lq_type t = types[ti];
        mm_case c;
        mm_setup(&c, t, 13, 512, 9);
        if (t == LQ_Q8_0) /* extreme weight codes in row 0 */
            for (int64_t b = 0; b < c.n_in / 32; b++)
                memset(c.wq + b * LQ_Q8_0_BYTES + 2, b & 1 ? 0x80 : 0x7f, 32);
        for (int64_t i = 0; i < c.n_in; i++) { /* row 1: one big value per block */
            c.x[c.n_in + i] = i % 32 == 5 ? 1e3f : (float)(i % 7) - 3.0f;
            c.x[2 * c.n_in + i] = 0.0f; /* row 2: zeros */
        }
        size_t nbk = (size_t)(c.n_in / 32) * (size_t)c.n_rows;
        lq_q8blk *xa = malloc(sizeof(lq_q8blk) * nbk);
        lq_q8_quantize_g(c.x, c.n_rows, c.n_in, lq_q8_group(t), xa);
        for (int64_t i = 0; i < c.n_in / 32; i++)
            assert_true(xa[2 * (c.n_in / 32) + i].d == 0.0f);
        size_t ny = (size_t)c.n_rows * c.n_out;
        float *ref = malloc(ny * 4), *got = malloc(ny * 4);
        lq_matmul_q8_range(t, c.wq, c.n_out, c.n_in, xa, c.n_rows, ref, 0, c.n_out,
                           LQ_KERNELS_Q8_SCALAR);
        for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
            const lq_q8set *ks = lq_q8_pick(sets[s]);
            if (ks == &lq_q8_scalar) continue; /* not on this CPU */
            memset(got, 0xff, ny * 4);
            lq_matmul_q8_range(t, c.wq, c.n_out, c.n_in, xa, c.n_rows, got, 0, c.n_out, sets[s]);
            assert_memory_equal(got, ref, ny * 4);
            /* Direct kernel calls with every nx give the same bits too. */
            size_t rb = lq_row_bytes(t, c.n_in);
            int64_t nb = c.n_in / 32;
            for (int nx = 1; nx <= 4; nx++) {
                float out[4];
                ks->dot(t, c.wq + 3 * rb, xa + nb, nb, nx, nb, out);
                for (int j = 0; j < nx; j++)
                    assert_true(f_bits(out[j]) == f_bits(ref[(1 + j) * c.n_out + 3]));
            }
            compared++;
        }
        /* The float-input entry point quantizes the same way. */
        lq_matmul(t, c.wq, c.n_out, c.n_in, c.x, c.n_rows, got, LQ_KERNELS_Q8_SCALAR);
        assert_memory_equal(got, ref, ny * 4);
        free(ref), free(got), free(xa);
        mm_free(&c);
    }
    print_message("q8 kernel sets compared with scalar: %d (auto = %s)\n", compared,
                  lq_q8_pick(LQ_KERNELS_AUTO)->name);
}

/* The SIMD activation quantizer gives the definition's bytes: random
 * magnitudes, exact halves (round half to even), +-0, denormals, values
 * that clamp, NaN and infinities (those blocks take the scalar path). */
static void test_q8_quantize_fast_identical(void **state) {
    (void)state;
    lq_q8quant_fn fast = lq_q8_quantize_fast();
    if (!fast) {
        print_message("no SIMD quantizer on this CPU: skipped\n");
        return;
    }
    enum { NB = 4096 };
    float *x = malloc(sizeof(float) * NB * 32);
    uint32_t seed = 12345;
    for (int b = 0; b < NB; b++) {
        float scale = ldexpf(1.0f, (int)(b % 60) - 40); /* 2^-40 .. 2^19 */
        for (int i = 0; i < 32; i++) {
            seed = seed * 1664525u + 1013904223u;
            float u = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
            float v = u * scale;
            switch (b % 9) {
            case 1: v = ((float)(int)(u * 100) + 0.5f) * 127.0f / 100.5f; break; /* ties */
            case 2: v = i == 0 ? 127.0f : (float)(i - 16) + 0.5f; break;         /* d = 1 */
            case 3: v = i % 2 ? -0.0f : 0.0f; break;
            case 4: v = u * 1e-41f; break; /* denormal amax: 1/d overflows */
            case 5: v = i == 7 ? NAN : v; break;
            case 6: v = i == 30 ? -INFINITY : v; break;
            case 7: v = i == 3 ? 3e38f : v; break;
            default: break;
            }
            x[b * 32 + i] = v;
        }
    }
    lq_q8blk *a = calloc(NB, sizeof *a), *b = calloc(NB, sizeof *b);
    lq_q8_quantize_ref(x, 2, NB / 2 * 32, a);
    fast(x, 2, NB / 2 * 32, b);
    for (int k = 0; k < NB; k++) {
        assert_true(f_bits(a[k].d) == f_bits(b[k].d));
        assert_int_equal(a[k].sum, b[k].sum);
        assert_memory_equal(a[k].q, b[k].q, 32);
    }
    free(x), free(a), free(b);
}

static void test_matmul_bad_shape(void **state) {
    (void)state;
    float x[40] = {0}, y[2] = {1, 1};
    uint8_t w[2 * 18] = {0};
    lq_matmul(LQ_Q4_0, w, 2, 40, x, 1, y, LQ_KERNELS_AUTO); /* 40 is not a multiple of 32 */
    assert_true(isnan(y[0]) && isnan(y[1]));
    lq_matmul((lq_type)3, w, 2, 32, x, 1, y, LQ_KERNELS_AUTO); /* unsupported id */
    assert_true(isnan(y[0]));
    y[0] = 5;
    lq_matmul_range(LQ_Q4_0, w, 2, 32, x, 1, y, 1, 1, LQ_KERNELS_AUTO); /* empty range */
    assert_true(y[0] == 5);
}

/* ---- fixtures: every format of the same random weights ------------------------ */

/* Error allowed between a block dequantized from a fixture and the F32 file.
 * llama.cpp chooses scales by error search rather than min/max, so allow a
 * full step where our own quantizer gets half; a layout bug is off by a large
 * fraction of the block's range. */
static double fixture_bound(lq_type t, const float *x, int64_t nb) {
    double amax = 0, worst = 0;
    for (int64_t i = 0; i < nb; i++)
        amax = fmax(amax, fabs(x[i]));
    /* Every quant format rounds its scale to f16: up to 2^-11 of the value. */
    double dr = amax * ldexp(1.0, -10);
    switch (t) {
    case LQ_F16: return amax * ldexp(1.0, -11) + ldexp(1.0, -24);
    case LQ_BF16: return amax * ldexp(1.0, -8);
    case LQ_Q8_0: return 0.5 * amax / 127 + dr;
    case LQ_Q4_0: return amax / 8 + dr;
    case LQ_Q6_K: return amax / 31 + dr;
    case LQ_Q4_K:
    case LQ_Q5_K:
        for (int j = 0; j < 8; j++) {
            double mn = 0, mx = 0;
            for (int l = 0; l < 32; l++)
                mn = fmin(mn, x[32 * j + l]), mx = fmax(mx, x[32 * j + l]);
            worst = fmax(worst, mx - mn);
        }
        return worst / (t == LQ_Q4_K ? 15 : 31) + dr;
    default: return 0;
    }
}

static gguf_file *open_fixture(const char *name) {
    char path[512], err[256];
    snprintf(path, sizeof(path), "%s/models/%s.gguf", TG_FIXTURES, name);
    gguf_file *f = NULL;
    if (gguf_open(path, &f, err, sizeof(err)) != 0) fail_msg("%s", err);
    return f;
}

/* Compares every quantized tensor of `name` with the F32 file `ref`; returns
 * a bit set of the types seen. */
static uint64_t check_fixture(const char *name, const char *ref) {
    gguf_file *fq = open_fixture(name), *fr = open_fixture(ref);
    uint64_t seen = 0;
    double se[32] = {0}, sx[32] = {0};
    for (size_t ti = 0; ti < gguf_tensor_count(fq); ti++) {
        const gguf_tensor *tq = gguf_tensor_at(fq, ti);
        if (!lq_type_supported(tq->type))
            fail_msg("%s: tensor %.*s has unsupported type %u", name, (int)tq->name.len,
                     tq->name.ptr, tq->type);
        if (tq->type == LQ_F32) continue;
        char tn[128];
        snprintf(tn, sizeof(tn), "%.*s", (int)tq->name.len, tq->name.ptr);
        const gguf_tensor *tr = gguf_find_tensor(fr, tn);
        assert_non_null(tr);
        assert_int_equal(tr->type, LQ_F32);
        assert_int_equal(tr->n_elems, tq->n_elems);
        lq_type t = (lq_type)tq->type;
        seen |= 1ull << (t & 63);
        int64_t n_in = (int64_t)tq->dims[0], rows = (int64_t)(tq->n_elems / tq->dims[0]);
        size_t rb = lq_row_bytes(t, n_in);
        assert_int_equal(rb * (size_t)rows, tq->nbytes);
        float *y = malloc((size_t)n_in * sizeof(float)), *ys = malloc((size_t)n_in * sizeof(float));
        int64_t bv = lq_block_values(t) > 1 ? lq_block_values(t) : 32;
        for (int64_t r = 0; r < rows; r++) {
            const float *x = (const float *)tr->data + r * n_in;
            lq_dequant_row(t, (const uint8_t *)tq->data + (size_t)r * rb, y, n_in);
            /* The scalar reference decodes the file to the same bits. */
            lq_kset_scalar.dequant(t, (const uint8_t *)tq->data + (size_t)r * rb, ys, n_in);
            assert_memory_equal(y, ys, (size_t)n_in * sizeof(float));
            for (int64_t b = 0; b < n_in; b += bv) {
                double bound = fixture_bound(t, x + b, bv);
                for (int64_t i = b; i < b + bv; i++) {
                    double e = fabs((double)y[i] - x[i]);
                    if (!(e <= bound))
                        fail_msg("%s %s (%s) row %lld col %lld: %.6g vs f32 %.6g (bound %.3g)",
                                 name, tn, lq_type_name(t), (long long)r, (long long)i,
                                 (double)y[i], (double)x[i], bound);
                    se[t & 31] += e * e, sx[t & 31] += (double)x[i] * x[i];
                }
            }
        }
        free(y), free(ys);
    }
    for (int t = 0; t < 32; t++) {
        if (sx[t] <= 0) continue;
        double rel = sqrt(se[t] / sx[t]), lim = 0;
        switch (t) {
        case LQ_F16: lim = 3e-4; break;
        case LQ_BF16: lim = 2.5e-3; break;
        case LQ_Q8_0: lim = 8e-3; break;
        case LQ_Q4_0: lim = 0.12; break;
        case LQ_Q4_K: lim = 0.1; break;
        case LQ_Q5_K: lim = 0.05; break;
        case LQ_Q6_K: lim = 0.025; break;
        }
        print_message("fixture %-22s %-5s rel rms err %.4g\n", name, lq_type_name((uint32_t)t),
                      rel);
        if (!(rel <= lim))
            fail_msg("%s: %s rel rms err %.4g > %.4g", name, lq_type_name((uint32_t)t), rel, lim);
    }
    gguf_close(fq);
    gguf_close(fr);
    return seen;
}

#define BIT(t) (1ull << (t))

static void test_fixtures_dequant(void **state) {
    (void)state;
    /* Which formats each published-style mix must contain. */
    assert_int_equal(check_fixture("lfm2-tiny-f16", "lfm2-tiny-f32"), BIT(LQ_F16));
    assert_int_equal(check_fixture("lfm2-tiny-bf16", "lfm2-tiny-f32"), BIT(LQ_BF16));
    assert_int_equal(check_fixture("lfm2-tiny-q8_0", "lfm2-tiny-f32"), BIT(LQ_Q8_0));
    assert_int_equal(check_fixture("lfm2-tiny-q4_0", "lfm2-tiny-f32"), BIT(LQ_Q4_0) | BIT(LQ_Q6_K));
    assert_int_equal(check_fixture("lfm2-tiny-q4_k_m", "lfm2-tiny-f32"),
                     BIT(LQ_Q4_K) | BIT(LQ_Q6_K));
    assert_int_equal(check_fixture("lfm2-tiny-q5_k_m", "lfm2-tiny-f32"),
                     BIT(LQ_Q5_K) | BIT(LQ_Q6_K));
    assert_int_equal(check_fixture("lfm2-tiny-q6_k", "lfm2-tiny-f32"), BIT(LQ_Q6_K));
    assert_int_equal(check_fixture("lfm2-tiny-untied-q8_0", "lfm2-tiny-untied-f32"), BIT(LQ_Q8_0));
    assert_int_equal(check_fixture("lfm2-tiny-untied-q4_0", "lfm2-tiny-untied-f32"),
                     BIT(LQ_Q4_0) | BIT(LQ_Q6_K));
}

int main(void) {
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_f16_known),
        cmocka_unit_test(test_bf16_known),
        cmocka_unit_test(test_block_q8_0),
        cmocka_unit_test(test_block_q4_0),
        cmocka_unit_test(test_block_q4_k_q5_k),
        cmocka_unit_test(test_block_q6_k),
        cmocka_unit_test(test_random_blocks),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_matmul_accuracy),
        cmocka_unit_test(test_matmul_determinism),
        cmocka_unit_test(test_matmul_many_rows),
        cmocka_unit_test(test_q8_accuracy),
        cmocka_unit_test(test_q8_sets_identical),
        cmocka_unit_test(test_q8_groups),
        cmocka_unit_test(test_q8_quantize_fast_identical),
        cmocka_unit_test(test_matmul_bad_shape),
        cmocka_unit_test(test_fixtures_dequant),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
