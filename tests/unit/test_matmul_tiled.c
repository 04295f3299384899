/* Unit tests for the tiled integer matmul (engine/quant_q8.c driver and the
 * tile and rows kernels of quant_q8_x86_tmpl.h): every output of a many-row matmul
 * carries the scalar reference's bits, and a row's outputs do not depend on
 * the rest of the batch (its position in a token tile, the batch size, the
 * output-row range a thread took). */
/* tg-test-links: lfm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "engine/quant.h"
#include "engine/quant_q8.h"

static const lq_type q8_types[] = {LQ_Q4_0, LQ_Q8_0, LQ_Q4_K, LQ_Q5_K, LQ_Q6_K};
#define N_Q8_TYPES (sizeof q8_types / sizeof q8_types[0])
static const lq_kernels fast_sets[] = {LQ_KERNELS_Q8_AVX2, LQ_KERNELS_Q8_VNNI, LQ_KERNELS_Q8_NEON,
                                       LQ_KERNELS_AUTO};
#define N_SETS (sizeof fast_sets / sizeof fast_sets[0])

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double urand(void) { /* [0, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Uniform [-1, 1) with rare outliers, so block scales vary. */
static void fill(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = 2.0 * urand() - 1.0;
        x[i] = (float)(urand() < 0.03 ? v * 8.0 : v);
    }
}

typedef struct {
    lq_type t;
    int64_t n_out, n_in, n_rows, nb;
    uint8_t *w;
    lq_q8blk *xa;
} tcase;

static void tc_setup(tcase *c, lq_type t, int64_t n_out, int64_t n_in, int64_t n_rows) {
    c->t = t, c->n_out = n_out, c->n_in = n_in, c->n_rows = n_rows, c->nb = n_in / 32;
    size_t rb = lq_row_bytes(t, n_in);
    float *wf = malloc(sizeof(float) * (size_t)(n_out * n_in));
    float *x = malloc(sizeof(float) * (size_t)(n_rows * n_in));
    c->w = malloc(rb * (size_t)n_out);
    c->xa = malloc(sizeof(lq_q8blk) * (size_t)(n_rows * c->nb));
    assert_non_null(wf), assert_non_null(x), assert_non_null(c->w), assert_non_null(c->xa);
    fill(wf, n_out * n_in);
    fill(x, n_rows * n_in);
    for (int64_t i = 0; i < n_in; i++) /* row 1: zeros (scale 0 blocks) */
        x[n_in + i] = 0.0f;
    for (int64_t o = 0; o < n_out; o++)
        lq_quantize_row(t, wf + o * n_in, c->w + (size_t)o * rb, n_in);
    if (t == LQ_Q8_0) /* extreme weight codes in row 2 */
        for (int64_t b = 0; b < c->nb; b++)
            memset(c->w + 2 * rb + (size_t)b * 34 + 2, b & 1 ? 0x80 : 0x7f, 32);
    lq_q8_quantize_g(x, n_rows, n_in, lq_q8_group(t), c->xa);
    free(wf), free(x);
}

static void tc_free(tcase *c) {
    free(c->w), free(c->xa);
}

static float *run(const tcase *c, int64_t n_rows, const lq_q8blk *xa, int64_t o0, int64_t o1,
                  lq_kernels k) {
    float *y = malloc(sizeof(float) * (size_t)(n_rows * c->n_out));
    assert_non_null(y);
    memset(y, 0xff, sizeof(float) * (size_t)(n_rows * c->n_out));
    lq_matmul_q8_range(c->t, c->w, c->n_out, c->n_in, xa, n_rows, y, o0, o1, k);
    return y;
}

/* 150 activation rows (two full 64-row tiles and a 22-row rest), 21
 * output rows (five 4-row tiles and one left for the dot path): every fast
 * set gives the scalar reference's bits. */
static void test_tiled_equals_scalar(void **state) {
    (void)state;
    int compared = 0;
    for (size_t ti = 0; ti < N_Q8_TYPES; ti++) {
        tcase c;
        tc_setup(&c, q8_types[ti], 21, 512, 150);
        float *ref = run(&c, c.n_rows, c.xa, 0, c.n_out, LQ_KERNELS_Q8_SCALAR);
        for (size_t s = 0; s < N_SETS; s++) {
            if (lq_q8_pick(fast_sets[s]) == &lq_q8_scalar) continue; /* not on this CPU */
            float *got = run(&c, c.n_rows, c.xa, 0, c.n_out, fast_sets[s]);
            assert_memory_equal(got, ref, sizeof(float) * (size_t)(c.n_rows * c.n_out));
            free(got);
            compared++;
        }
        for (int64_t i = 0; i < c.n_rows * c.n_out; i++)
            assert_false(isnan(ref[i]));
        free(ref);
        tc_free(&c);
    }
    print_message("tiled sets compared with scalar: %d (auto = %s)\n", compared,
                  lq_q8_pick(LQ_KERNELS_AUTO)->name);
}

/* Batch invariance: each activation row alone (one-row decode path), in
 * batches of 2..70 at every position (tile or dot path, any place in a
 * tile) and over output ranges that split the 4-row tiles unevenly gives
 * the same bits. */
static void test_tiled_batch_invariant(void **state) {
    (void)state;
    for (size_t ti = 0; ti < N_Q8_TYPES; ti++) {
        tcase c;
        tc_setup(&c, q8_types[ti], 19, 256, 70);
        const int64_t no = c.n_out;
        float *full = run(&c, c.n_rows, c.xa, 0, no, LQ_KERNELS_AUTO);
        for (int64_t r = 0; r < c.n_rows; r += 7) {
            float *one = run(&c, 1, c.xa + r * c.nb, 0, no, LQ_KERNELS_AUTO);
            assert_memory_equal(one, full + r * no, sizeof(float) * (size_t)no);
            free(one);
        }
        const int64_t sizes[] = {2, 3, 4, 5, 9, 63, 64, 65};
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            int64_t n = sizes[si];
            for (int64_t start = 0; start + n <= c.n_rows; start += n / 2 + 1) {
                float *part = run(&c, n, c.xa + start * c.nb, 0, no, LQ_KERNELS_AUTO);
                assert_memory_equal(part, full + start * no, sizeof(float) * (size_t)(n * no));
                free(part);
            }
        }
        /* Output ranges [0,3) [3,10) [10,19): tiles start at odd rows. */
        float *split = malloc(sizeof(float) * (size_t)(c.n_rows * no));
        assert_non_null(split);
        const int64_t cuts[] = {0, 3, 10, 19};
        for (int i = 0; i < 3; i++)
            lq_matmul_q8_range(c.t, c.w, no, c.n_in, c.xa, c.n_rows, split, cuts[i], cuts[i + 1],
                               LQ_KERNELS_AUTO);
        assert_memory_equal(split, full, sizeof(float) * (size_t)(c.n_rows * no));
        free(split), free(full);
        tc_free(&c);
    }
}

/* The tile kernel called directly: every row count 1..64 writes exactly the
 * nt x 4 outputs asked for (the y stride is respected) with the dot
 * kernel's bits; a row count out of range returns 0. */
static void test_tile_kernel_direct(void **state) {
    (void)state;
    const lq_q8set *ks = lq_q8_pick(LQ_KERNELS_AUTO);
    if (!ks->tile) {
        print_message("no tile kernel on this CPU (%s): skipped\n", ks->name);
        return;
    }
    for (size_t ti = 0; ti < N_Q8_TYPES; ti++) {
        tcase c;
        tc_setup(&c, q8_types[ti], 4, 256, LQ_Q8_TT);
        size_t rb = lq_row_bytes(c.t, c.n_in);
        const int64_t ys = 7; /* wider than 4: the guard columns stay */
        float y[LQ_Q8_TT * 7];
        for (int nt = 1; nt <= LQ_Q8_TT; nt += nt < 8 ? 1 : 9) {
            for (int i = 0; i < LQ_Q8_TT * 7; i++)
                y[i] = -1234.5f;
            int ok = ks->tile(c.t, c.w, rb, c.xa, c.nb, nt, y, ys);
            bool tiled = lq_q8_type(c.t);
            assert_int_equal(ok, tiled);
            for (int j = 0; j < LQ_Q8_TT; j++)
                for (int r = 0; r < 7; r++) {
                    float v = y[j * ys + r];
                    if (!tiled || j >= nt || r >= 4) {
                        assert_true(v == -1234.5f);
                        continue;
                    }
                    float out[1];
                    ks->dot(c.t, c.w + (size_t)r * rb, c.xa + j * c.nb, c.nb, 1, c.nb, out);
                    assert_memory_equal(&v, out, sizeof v);
                }
        }
        /* Out-of-range row counts are refused. */
        assert_int_equal(ks->tile(c.t, c.w, rb, c.xa, c.nb, 0, y, ys), 0);
        assert_int_equal(ks->tile(c.t, c.w, rb, c.xa, c.nb, LQ_Q8_TT + 1, y, ys), 0);
        tc_free(&c);
    }
}

/* The rows kernel (decode) called directly: 1..3 activation rows against 6
 * weight rows give the dot kernel's bits at the y stride asked for; more
 * than 3 rows, or a type it does not take, return 0. */
static void test_rows_kernel_direct(void **state) {
    (void)state;
    const lq_q8set *ks = lq_q8_pick(LQ_KERNELS_AUTO);
    if (!ks->rows) {
        print_message("no rows kernel on this CPU (%s): skipped\n", ks->name);
        return;
    }
    for (size_t ti = 0; ti < N_Q8_TYPES; ti++) {
        tcase c;
        tc_setup(&c, q8_types[ti], 6, 512, 4);
        size_t rb = lq_row_bytes(c.t, c.n_in);
        float y[3 * 9];
        for (int nx = 1; nx <= 4; nx++) {
            for (int i = 0; i < 3 * 9; i++)
                y[i] = -7.0f;
            int ok = ks->rows(c.t, c.w, rb, 6, c.xa, c.nb, nx, y, 9);
            if (!ok) {
                assert_true((c.t != LQ_Q4_0 && c.t != LQ_Q6_K) || nx > 3);
                for (int i = 0; i < 3 * 9; i++)
                    assert_true(y[i] == -7.0f);
                continue;
            }
            assert_true(nx <= 3);
            for (int j = 0; j < 3; j++)
                for (int o = 0; o < 9; o++) {
                    float v = y[j * 9 + o], out[1];
                    if (j >= nx || o >= 6) {
                        assert_true(v == -7.0f);
                        continue;
                    }
                    ks->dot(c.t, c.w + (size_t)o * rb, c.xa + j * c.nb, c.nb, 1, c.nb, out);
                    assert_memory_equal(&v, out, sizeof v);
                }
        }
        tc_free(&c);
    }
}

/* The SIMD quantizer with one scale per 256 values gives the definition's
 * bytes: magnitudes 2^-40..2^19, exact halves, zeros, a value that sets
 * amax alone, and groups with NaN or infinity (those take the scalar path). */
static void test_quantize256_fast_identical(void **state) {
    (void)state;
    lq_q8quant_fn fast = lq_q8_quantize256_fast();
    if (!fast) {
        print_message("no SIMD 256-group quantizer on this CPU: skipped\n");
        return;
    }
    enum { NG = 512, N = NG * 256 };
    float *x = malloc(sizeof(float) * N);
    lq_q8blk *a = malloc(sizeof(lq_q8blk) * N / 32), *b = malloc(sizeof(lq_q8blk) * N / 32);
    assert_non_null(x), assert_non_null(a), assert_non_null(b);
    for (int g = 0; g < NG; g++) {
        float scale = ldexpf(1.0f, g % 60 - 40);
        for (int i = 0; i < 256; i++) {
            float *v = x + g * 256 + i;
            *v = (float)(2.0 * urand() - 1.0) * scale;
            if (g % 7 == 1) *v = (float)((int)(urand() * 9) - 4) * 0.5f * scale; /* halves */
            if (g % 11 == 2) *v = 0.0f;
        }
        if (g % 5 == 3) x[g * 256 + 17] = 1e4f * scale;
    }
    x[9 * 256 + 100] = NAN;
    x[13 * 256 + 3] = INFINITY;
    x[14 * 256 + 255] = -INFINITY;
    for (int rows = 1; rows <= 2; rows++) {
        int64_t n_in = N / rows;
        memset(a, 0x5a, sizeof(lq_q8blk) * N / 32);
        memset(b, 0x5a, sizeof(lq_q8blk) * N / 32);
        fast(x, rows, n_in, a);
        lq_q8_quantize256_ref(x, rows, n_in, b);
        for (int i = 0; i < N / 32; i++) {
            assert_memory_equal(a[i].q, b[i].q, 32);
            assert_int_equal(a[i].sum, b[i].sum);
            assert_true(memcmp(&a[i].d, &b[i].d, sizeof(float)) == 0 ||
                        (isnan(a[i].d) && isnan(b[i].d)));
        }
    }
    assert_true(isnan(a[9 * 8 + 3].d));
    free(x), free(a), free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiled_equals_scalar),
        cmocka_unit_test(test_tiled_batch_invariant),
        cmocka_unit_test(test_tile_kernel_direct),
        cmocka_unit_test(test_rows_kernel_direct),
        cmocka_unit_test(test_quantize256_fast_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
