/* Unit tests for gateway/journal/tg_jchunk (the CHUNK payload: a streamed
 * event's number and data) and the checker's rule over it: per request the
 * CHUNK records are numbered 1, 2, 3, ... with no gap or repeat. */
/* tg-test-links: tgjournal */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gateway/journal/tg_jcheck.h"
#include "gateway/journal/tg_jchunk.h"
#include "gateway/journal/tg_jfile.h"
#include "tests/support/journal_test_util.h"

static int decode_str(const char *p, uint64_t *n, const char **data, size_t *len) {
    return tg_jchunk_decode((const uint8_t *)p, strlen(p), n, data, len);
}

static void round_trip(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT;
    static const char data[] = "{\"id\":\"chatcmpl-1\",\"choices\":[]}";
    tg_jchunk_encode(&b, 42, data, sizeof data - 1);
    assert_string_equal(b.data, "{\"n\":42,\"data\":{\"id\":\"chatcmpl-1\",\"choices\":[]}}");
    uint64_t n = 0;
    const char *d = NULL;
    size_t len = 0;
    assert_int_equal(tg_jchunk_decode((const uint8_t *)b.data, b.len, &n, &d, &len), 0);
    assert_int_equal(n, 42);
    assert_int_equal(len, sizeof data - 1);
    assert_memory_equal(d, data, len);
    /* The largest number. */
    tg_buf_clear(&b);
    tg_jchunk_encode(&b, TG_JCHUNK_N_MAX, "1", 1);
    assert_int_equal(tg_jchunk_decode((const uint8_t *)b.data, b.len, &n, &d, &len), 0);
    assert_true(n == TG_JCHUNK_N_MAX);
    assert_int_equal(len, 1);
    tg_buf_free(&b);
}

static void decode_rejects(void **st) {
    (void)st;
    uint64_t n;
    const char *d;
    size_t len;
    static const char *const bad[] = {
        "",
        "{",
        "{\"n\":1}",
        "{\"n\":1,\"data\":}",                     /* no data */
        "{\"n\":0,\"data\":1}",                    /* events start at 1 */
        "{\"n\":01,\"data\":1}",                   /* one spelling per number */
        "{\"n\":-1,\"data\":1}",                   /* no sign */
        "{\"n\": 1,\"data\":1}",                   /* the fixed layout */
        "{\"n\":1,\"data\":1",                     /* not closed */
        "{\"n\":1,\"dat\":1}",                     /* another field */
        "{\"delta\":\"tok\"}",                     /* not a chunk payload */
        "{\"n\":9007199254740993,\"data\":1}",     /* past 2^53 */
        "{\"n\":99999999999999999999,\"data\":1}", /* 20 digits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (decode_str(bad[i], &n, &d, &len) == 0) fail_msg("accepted: %s", bad[i]);
    assert_int_equal(decode_str("{\"n\":7,\"data\":\"x\"}", &n, &d, &len), 0);
    assert_int_equal(n, 7);
    assert_int_equal(len, 3);
    assert_memory_equal(d, "\"x\"", 3);
}

static void parse_n(void **st) {
    (void)st;
    uint64_t n = 99;
    assert_int_equal(tg_jchunk_parse_n("0", 1, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tg_jchunk_parse_n("1234", 4, &n), 0);
    assert_int_equal(n, 1234);
    assert_int_equal(tg_jchunk_parse_n("9007199254740992", 16, &n), 0);
    assert_true(n == TG_JCHUNK_N_MAX);
    static const char *const bad[] = {"",
                                      "x",
                                      "1x",
                                      " 1",
                                      "1 ",
                                      "+1",
                                      "-1",
                                      "00",
                                      "012",
                                      "9007199254740993",
                                      "18446744073709551616",
                                      "1234567890123456789012"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tg_jchunk_parse_n(bad[i], strlen(bad[i]), &n) == 0) fail_msg("accepted: '%s'", bad[i]);
}

/* ---- the checker's numbering rule over a real journal ---- */

static void put(tg_journal *j, int type, const char *id, const char *payload) {
    assert_int_equal(tg_journal_append_sync(j, type, id, payload, strlen(payload)), 0);
}

static void chunk(tg_journal *j, const char *id, uint64_t n) {
    tg_buf b = TG_BUF_INIT;
    tg_jchunk_encode(&b, n, "{\"choices\":[]}", 14);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_CHUNK, id, b.data, b.len), 0);
    tg_buf_free(&b);
}

static uint64_t violations(const char *dir) {
    char err[256];
    tg_jfile_opts o = {.dir = dir, .read_only = true};
    tg_journal *j = tg_jfile_open(&o, NULL, err, sizeof err);
    assert_non_null(j);
    tg_jcheck_result res;
    assert_int_equal(tg_jcheck_run(j, true, NULL, 0, &res), 0);
    tg_journal_close(j);
    return res.violations;
}

/* Writes request id: ACCEPTED, the chunks numbered as given (0 ends the
 * list), COMPLETED. */
static void request(tg_journal *j, const char *id, const uint64_t *ns) {
    put(j, TG_JREC_ACCEPTED, id, "{\"scope\":\"\",\"idem\":null,\"body\":{}}");
    for (; *ns; ns++)
        chunk(j, id, *ns);
    put(j, TG_JREC_COMPLETED, id, "{}");
}

static void check_numbering(void **st) {
    (void)st;
    static const struct {
        uint64_t ns[6];
        uint64_t want;
    } cases[] = {
        {{1, 2, 3, 0}, 0},    {{0}, 0}, /* no events at all: fine */
        {{1, 3, 0}, 1},                 /* a gap */
        {{1, 2, 2, 3, 0}, 1},           /* a repeat */
        {{2, 3, 0}, 1},                 /* not from 1 */
        {{1, 2, 1, 2, 0}, 2},           /* numbered twice */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = jt_tmpdir();
        assert_non_null(dir);
        char err[256];
        tg_jfile_opts o = {.dir = dir, .no_sync = true};
        tg_journal *j = tg_jfile_open(&o, NULL, err, sizeof err);
        assert_non_null(j);
        request(j, "req_a", cases[i].ns);
        /* Another request's numbering is its own. */
        static const uint64_t other[] = {1, 2, 0};
        request(j, "req_b", other);
        tg_journal_close(j);
        uint64_t got = violations(dir);
        if (got != cases[i].want)
            fail_msg("case %zu: %llu violations, want %llu", i, (unsigned long long)got,
                     (unsigned long long)cases[i].want);
        jt_rmdir(dir);
        free(dir);
    }
    /* An unreadable CHUNK payload is a violation too. */
    char *dir = jt_tmpdir();
    char err[256];
    tg_jfile_opts o = {.dir = dir, .no_sync = true};
    tg_journal *j = tg_jfile_open(&o, NULL, err, sizeof err);
    assert_non_null(j);
    put(j, TG_JREC_ACCEPTED, "req_c", "{\"scope\":\"\",\"idem\":null,\"body\":{}}");
    put(j, TG_JREC_CHUNK, "req_c", "{\"delta\":\"tok\"}");
    put(j, TG_JREC_COMPLETED, "req_c", "{}");
    tg_journal_close(j);
    assert_int_equal(violations(dir), 1);
    jt_rmdir(dir);
    free(dir);
}

/* Compaction treats a request's CHUNKs like its other records: a running
 * stream's events keep every segment they are in, a finished one's go with
 * it once past retention, and what remains is whole and numbered. */
static int count_chunks(void *user, const tg_jrec *r) {
    if (r->type == TG_JREC_CHUNK) (*(int *)user)++;
    return 0;
}

static void compaction_keeps_a_running_stream(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    char err[256];
    tg_jfile_opts o = {.dir = dir, .no_sync = true, .segment_bytes = 4096};
    tg_journal *j = tg_jfile_open(&o, NULL, err, sizeof err);
    assert_non_null(j);
    static const char acc[] = "{\"scope\":\"\",\"idem\":null,\"body\":{}}";
    /* The stream's events interleave with finished requests over many
     * segments. */
    put(j, TG_JREC_ACCEPTED, "req_stream", acc);
    uint64_t n = 0;
    for (int i = 0; i < 120; i++) {
        char id[32];
        snprintf(id, sizeof id, "req_done_%d", i);
        put(j, TG_JREC_ACCEPTED, id, acc);
        put(j, TG_JREC_COMPLETED, id, "{}");
        chunk(j, "req_stream", ++n);
    }
    int nseg = jt_count_files(dir, ".tgj");
    assert_true(nseg > 4);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t later = (uint64_t)ts.tv_sec * 1000000u + 2 * 86400ull * 1000000u;
    /* Running: its first segment holds everything from there on. */
    assert_int_equal(tg_jfile_compact(j, later), 0);
    int got = 0;
    assert_int_equal(tg_journal_read(j, "req_stream", count_chunks, &got), 0);
    assert_int_equal(got, 120);
    /* Finished and past retention: its segments go like any request's. */
    put(j, TG_JREC_COMPLETED, "req_stream", "{}");
    for (int i = 0; i < 60; i++) { /* rotate past the segment it ended in */
        char id[32];
        snprintf(id, sizeof id, "req_late_%d", i);
        put(j, TG_JREC_ACCEPTED, id, acc);
        put(j, TG_JREC_COMPLETED, id, "{}");
    }
    assert_true(tg_jfile_compact(j, later) > 0);
    tg_journal_info info;
    assert_int_equal(tg_journal_info_get(j, "req_stream", &info), -ENOENT);
    tg_jcheck_result res;
    assert_int_equal(tg_jcheck_run(j, false, NULL, 0, &res), 0);
    assert_int_equal(res.violations, 0);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(decode_rejects),
        cmocka_unit_test(parse_n),
        cmocka_unit_test(check_numbering),
        cmocka_unit_test(compaction_keeps_a_running_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
