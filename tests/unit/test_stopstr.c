/* Unit tests for engine/stopstr: stop strings with hold-back, on pure strings. */
/* tg-test-links: lfm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/stopstr.h"

/* Feeds chunks one by one; records what was released after each push.
 * Returns whether a stop was hit; *out gets all released text. */
typedef struct {
    tg_buf out;
    size_t released_after[32]; /* cumulative released length after chunk i */
    bool stopped;
} run_result;

static void run(const char *const *stops, size_t n_stops, const char *const *chunks,
                size_t n_chunks, bool flush, run_result *r) {
    lfm_stop st;
    lfm_stop_init(&st, stops, n_stops);
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < n_chunks; i++) {
        bool s = lfm_stop_push(&st, chunks[i], strlen(chunks[i]), &r->out);
        if (s) r->stopped = true;
        r->released_after[i] = r->out.len;
    }
    if (flush) lfm_stop_flush(&st, &r->out);
    lfm_stop_free(&st);
    if (!r->out.data) tg_buf_puts(&r->out, ""); /* so asserts can strcmp */
}

static void test_no_stops_passthrough(void **state) {
    (void)state;
    const char *chunks[] = {"Hello", " wor", "ld"};
    run_result r;
    run(NULL, 0, chunks, 3, true, &r);
    assert_false(r.stopped);
    assert_string_equal(r.out.data, "Hello world");
    assert_int_equal(r.released_after[0], 5); /* nothing held without stops */
    tg_buf_free(&r.out);
}

static void test_stop_in_one_chunk(void **state) {
    (void)state;
    const char *stops[] = {"END"};
    const char *chunks[] = {"abc END def", "more"};
    run_result r;
    run(stops, 1, chunks, 2, true, &r);
    assert_true(r.stopped);
    assert_string_equal(r.out.data, "abc ");
    tg_buf_free(&r.out);
}

static void test_stop_spanning_chunks(void **state) {
    (void)state;
    const char *stops[] = {"</stop>"};
    const char *chunks[] = {"text </", "st", "op> after"};
    run_result r;
    run(stops, 1, chunks, 3, true, &r);
    assert_true(r.stopped);
    assert_string_equal(r.out.data, "text ");
    /* "</" held after chunk 0: only "text " released. */
    assert_int_equal(r.released_after[0], 5);
    assert_int_equal(r.released_after[1], 5);
    tg_buf_free(&r.out);
}

static void test_false_start_released(void **state) {
    (void)state;
    const char *stops[] = {"STOP"};
    const char *chunks[] = {"ST", "OX", "Y"};
    run_result r;
    run(stops, 1, chunks, 3, false, &r);
    assert_false(r.stopped);
    assert_int_equal(r.released_after[0], 0); /* "ST" could start STOP */
    assert_int_equal(r.released_after[1], 4); /* "STOX" cannot */
    assert_string_equal(r.out.data, "STOXY");
    tg_buf_free(&r.out);
}

static void test_held_then_flushed(void **state) {
    (void)state;
    const char *stops[] = {"\n\nUser:"};
    const char *chunks[] = {"answer\n", "\nUs"};
    run_result r;
    run(stops, 1, chunks, 2, false, &r);
    assert_string_equal(r.out.data, "answer");
    tg_buf_free(&r.out);
    run(stops, 1, chunks, 2, true, &r); /* end of stream: held text is not a stop */
    assert_false(r.stopped);
    assert_string_equal(r.out.data, "answer\n\nUs");
    tg_buf_free(&r.out);
}

static void test_earliest_of_several(void **state) {
    (void)state;
    const char *stops[] = {"bbb", "ab", ""};
    const char *chunks[] = {"xxa", "bbb"};
    run_result r;
    run(stops, 3, chunks, 2, true, &r);
    assert_true(r.stopped);
    assert_string_equal(r.out.data, "xx"); /* "ab" starts before "bbb" */
    tg_buf_free(&r.out);
}

static void test_overlapping_prefix(void **state) {
    (void)state;
    /* "aab" inside "aaab": a naive matcher that drops the held "aa" on the
     * third 'a' would miss it. */
    const char *stops[] = {"aab"};
    const char *chunks[] = {"a", "a", "a", "b", "c"};
    run_result r;
    run(stops, 1, chunks, 5, true, &r);
    assert_true(r.stopped);
    assert_string_equal(r.out.data, "a");
    tg_buf_free(&r.out);
}

static void test_multibyte_stop_split(void **state) {
    (void)state;
    /* Stop string "é!" (C3 A9 21); the text chunks are whole characters. */
    const char *stops[] = {"\xC3\xA9!"};
    const char *chunks[] = {"caf\xC3\xA9", "!", " no"};
    run_result r;
    run(stops, 1, chunks, 3, true, &r);
    assert_true(r.stopped);
    assert_string_equal(r.out.data, "caf");
    assert_int_equal(r.released_after[0], 3);
    tg_buf_free(&r.out);

    const char *chunks2[] = {"caf\xC3\xA9", "?"};
    run(stops, 1, chunks2, 2, true, &r);
    assert_false(r.stopped);
    assert_string_equal(r.out.data, "caf\xC3\xA9?");
    tg_buf_free(&r.out);
}

static void test_release_on_char_boundary(void **state) {
    (void)state;
    /* A (malformed) stop string starting with a continuation byte must not
     * make the released text end inside "é". */
    const char *stops[] = {"\xA9X"};
    const char *chunks[] = {"ab\xC3\xA9", "Y"};
    run_result r;
    run(stops, 1, chunks, 2, true, &r);
    assert_int_equal(r.released_after[0], 2); /* "ab", not "ab\xC3" */
    assert_false(r.stopped);
    assert_string_equal(r.out.data, "ab\xC3\xA9Y");
    tg_buf_free(&r.out);
}

static void test_after_stop_ignored(void **state) {
    (void)state;
    const char *stops[] = {"#"};
    lfm_stop st;
    lfm_stop_init(&st, stops, 1);
    tg_buf out = TG_BUF_INIT;
    assert_true(lfm_stop_push(&st, "x#y", 3, &out));
    assert_true(lfm_stop_push(&st, "zzz", 3, &out));
    lfm_stop_flush(&st, &out);
    assert_int_equal(out.len, 1);
    assert_memory_equal(out.data, "x", 1);
    lfm_stop_free(&st);
    tg_buf_free(&out);
}

static void test_stop_at_start(void **state) {
    (void)state;
    const char *stops[] = {"<|im_end|>"};
    const char *chunks[] = {"<|im", "_end|>tail"};
    run_result r;
    run(stops, 1, chunks, 2, true, &r);
    assert_true(r.stopped);
    assert_int_equal(r.out.len, 0);
    tg_buf_free(&r.out);
}

/* Random texts over a tiny alphabet (so stop strings really occur and
 * overlap), cut into random chunks at character boundaries: the streamed
 * result always equals the whole-text answer, and what was released at any
 * moment is a prefix of it. */
static uint32_t rng_next(uint32_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void test_random_chunkings(void **state) {
    (void)state;
    static const char *const alpha[] = {"a", "b", "\xC3\xA9", "\n"};
    uint32_t seed = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        char text[128] = "", stops_buf[3][16];
        const char *stops[3];
        size_t n_stops = 1 + rng_next(&seed) % 3;
        for (size_t i = 0; i < n_stops; i++) {
            stops_buf[i][0] = 0;
            int len = 1 + (int)(rng_next(&seed) % 3);
            for (int k = 0; k < len; k++)
                strcat(stops_buf[i], alpha[rng_next(&seed) % 4]);
            stops[i] = stops_buf[i];
        }
        int n_chars = (int)(rng_next(&seed) % 24);
        size_t cuts[64], n_cuts = 0;
        for (int k = 0; k < n_chars; k++) {
            if (rng_next(&seed) % 3 == 0) cuts[n_cuts++] = strlen(text);
            strcat(text, alpha[rng_next(&seed) % 4]);
        }
        size_t len = strlen(text);
        /* Whole-text answer: cut at the earliest occurrence of any stop. */
        size_t want = len;
        for (size_t i = 0; i < n_stops; i++) {
            const char *m = strstr(text, stops[i]);
            if (m && (size_t)(m - text) < want) want = (size_t)(m - text);
        }
        lfm_stop st;
        lfm_stop_init(&st, stops, n_stops);
        tg_buf out = TG_BUF_INIT;
        size_t from = 0;
        bool stopped = false;
        for (size_t c = 0; c <= n_cuts; c++) {
            size_t to = c < n_cuts ? cuts[c] : len;
            stopped = lfm_stop_push(&st, text + from, to - from, &out);
            from = to;
            assert_true(out.len <= want);
            if (out.len) assert_memory_equal(out.data, text, out.len);
        }
        if (!stopped) lfm_stop_flush(&st, &out);
        assert_int_equal(stopped, want < len);
        assert_int_equal(out.len, want);
        if (want) assert_memory_equal(out.data, text, want);
        lfm_stop_free(&st);
        tg_buf_free(&out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_stops_passthrough),
        cmocka_unit_test(test_stop_in_one_chunk),
        cmocka_unit_test(test_stop_spanning_chunks),
        cmocka_unit_test(test_false_start_released),
        cmocka_unit_test(test_held_then_flushed),
        cmocka_unit_test(test_earliest_of_several),
        cmocka_unit_test(test_overlapping_prefix),
        cmocka_unit_test(test_multibyte_stop_split),
        cmocka_unit_test(test_release_on_char_boundary),
        cmocka_unit_test(test_after_stop_ignored),
        cmocka_unit_test(test_stop_at_start),
        cmocka_unit_test(test_random_chunkings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
