/* tg-test-links: tgjournal */
/* The journal core: record codec, append/read/scan round trips, group
 * commit through the loop, rotation, compaction, encryption at rest, the
 * directory lock, a write error (file size limit) and the invariant checker. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "gateway/journal/tg_crc32c.h"
#include "gateway/journal/tg_jcheck.h"
#include "gateway/journal/tg_jfile.h"
#include "tests/support/journal_test_util.h"

static const char k_body[] = "{\"scope\":\"k1\",\"idem\":null,\"body\":{\"messages\":[]}}";

static tg_journal *open_dir(const char *dir, const tg_jcrypt *key, uint64_t seg, uv_loop_t *loop,
                            tg_jfile_report *rep) {
    char err[512];
    tg_jfile_opts o = {.dir = dir, .segment_bytes = seg, .key = key, .loop = loop};
    tg_journal *j = tg_jfile_open(&o, rep, err, sizeof err);
    if (!j) fprintf(stderr, "open: %s\n", err);
    return j;
}

static void mkid(char *out, int i) {
    snprintf(out, 40, "req_%032d", i);
}

static void test_crc32c_known(void **st) {
    (void)st;
    /* RFC 3720 B.4 check value and the standard "123456789" check. */
    assert_int_equal(tg_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t z[32] = {0};
    assert_int_equal(tg_crc32c(0, z, 32), 0x8A9136AAu);
    assert_int_equal(tg_crc32c(tg_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void test_record_codec(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT, scratch = TG_BUF_INIT;
    assert_int_equal(tg_jrec_encode(&b, NULL, TG_JREC_COMPLETED, "req_x", 5, 42, "hello", 5), 0);
    tg_jrec r;
    assert_int_equal(tg_jrec_decode((uint8_t *)b.data, b.len, NULL, &scratch, &r), TG_JREC_OK);
    assert_int_equal(r.type, TG_JREC_COMPLETED);
    assert_int_equal(r.ts_us, 42);
    assert_int_equal(r.size, b.len);
    assert_memory_equal(r.id, "req_x", 5);
    assert_memory_equal(r.payload, "hello", 5);
    /* Every single-byte change and every truncation is caught. */
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x5a;
        assert_int_not_equal(tg_jrec_decode((uint8_t *)b.data, b.len, NULL, &scratch, &r),
                             TG_JREC_OK);
        b.data[i] ^= 0x5a;
        assert_int_not_equal(tg_jrec_decode((uint8_t *)b.data, i, NULL, &scratch, &r), TG_JREC_OK);
    }
    /* Invalid inputs are refused, nothing appended. */
    size_t len = b.len;
    assert_int_equal(tg_jrec_encode(&b, NULL, 0, "x", 1, 0, "", 0), -1);
    assert_int_equal(tg_jrec_encode(&b, NULL, TG_JREC_ACCEPTED, "", 0, 0, "", 0), -1);
    assert_int_equal(b.len, len);
    tg_buf_free(&b);
    tg_buf_free(&scratch);
}

static void test_sealed_codec(void **st) {
    (void)st;
    uint8_t k[32], k2[32];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)i, k2[i] = (uint8_t)(i + 1);
    tg_jcrypt *c = tg_jcrypt_from_bytes(k), *c2 = tg_jcrypt_from_bytes(k2);
    tg_buf b = TG_BUF_INIT, scratch = TG_BUF_INIT;
    assert_int_equal(tg_jrec_encode(&b, c, TG_JREC_ACCEPTED, "req_s", 5, 7, "secret body", 11), 0);
    assert_null(memmem(b.data, b.len, "secret", 6));
    tg_jrec r;
    assert_int_equal(tg_jrec_decode((uint8_t *)b.data, b.len, c, &scratch, &r), TG_JREC_OK);
    assert_int_equal(r.payload_len, 11);
    assert_memory_equal(r.payload, "secret body", 11);
    assert_int_equal(tg_jrec_decode((uint8_t *)b.data, b.len, c2, &scratch, &r), TG_JREC_BAD);
    assert_int_equal(tg_jrec_decode((uint8_t *)b.data, b.len, NULL, &scratch, &r), TG_JREC_BAD);
    assert_int_not_equal(tg_jcrypt_fingerprint(c), tg_jcrypt_fingerprint(c2));
    tg_buf_free(&b);
    tg_buf_free(&scratch);
    tg_jcrypt_free(c);
    tg_jcrypt_free(c2);
}

static void test_key_loading(void **st) {
    (void)st;
    char err[256];
    tg_jcrypt *c = NULL;
    assert_int_equal(tg_jcrypt_load(NULL, NULL, &c, err, sizeof err), 0);
    assert_null(c);
    assert_int_equal(tg_jcrypt_load(NULL, "abc", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "64 hex"));
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    assert_int_equal(tg_jcrypt_load(NULL, hex, &c, err, sizeof err), 0);
    assert_non_null(c);
    uint8_t k[32];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)i;
    tg_jcrypt *c2 = tg_jcrypt_from_bytes(k);
    assert_int_equal(tg_jcrypt_fingerprint(c), tg_jcrypt_fingerprint(c2));
    tg_jcrypt_free(c2);
    tg_jcrypt_free(c);
    /* A key file others can read is refused. */
    char *dir = jt_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/key", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "%s\n", hex);
    fclose(fp);
    chmod(path, 0644);
    assert_int_equal(tg_jcrypt_load(path, NULL, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 600"));
    chmod(path, 0600);
    assert_int_equal(tg_jcrypt_load(path, NULL, &c, err, sizeof err), 0);
    assert_non_null(c);
    tg_jcrypt_free(c);
    jt_rmdir(dir);
    free(dir);
}

static void test_roundtrip_reopen(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL, 0, NULL, NULL);
    assert_non_null(j);
    char id[40];
    for (int i = 0; i < 50; i++) {
        mkid(id, i);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, id, k_body, strlen(k_body)),
                         0);
        assert_int_equal(
            tg_journal_append_sync(j, TG_JREC_DISPATCHED, id, "{\"target\":\"edge\"}", 17), 0);
        if (i % 2 == 0)
            assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, id, "{\"r\":1}", 7), 0);
    }
    tg_journal_info info;
    mkid(id, 4);
    assert_int_equal(tg_journal_info_get(j, id, &info), 0);
    assert_true(info.terminal);
    assert_int_equal(info.state, TG_JREC_COMPLETED);
    assert_int_equal(info.n_records, 3);
    assert_int_equal(tg_journal_info_get(j, "req_nope", &info), -ENOENT);
    jt_list before = {0};
    assert_int_equal(tg_journal_scan(j, jt_collect, &before), 0);
    assert_int_equal(before.n, 125);
    tg_journal_close(j);

    tg_jfile_report rep;
    j = open_dir(dir, NULL, 0, NULL, &rep);
    assert_non_null(j);
    assert_int_equal(rep.records, 125);
    assert_int_equal(rep.requests, 50);
    assert_int_equal(rep.bad_seg, 0);
    jt_list after = {0}, one = {0};
    assert_int_equal(tg_journal_scan(j, jt_collect, &after), 0);
    assert_int_equal(after.n, before.n);
    for (size_t i = 0; i < after.n; i++)
        assert_string_equal(after.v[i], before.v[i]);
    mkid(id, 7);
    assert_int_equal(tg_journal_read(j, id, jt_collect, &one), 0);
    assert_int_equal(one.n, 2);
    assert_non_null(strstr(one.v[0], "\"body\""));
    assert_int_equal(tg_journal_read(j, "req_nope", jt_collect, &one), -ENOENT);
    mkid(id, 7);
    assert_int_equal(tg_journal_info_get(j, id, &info), 0);
    assert_false(info.terminal);
    assert_int_equal(info.state, TG_JREC_DISPATCHED);
    /* Files are private to the gateway's user. */
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    char p[700];
    snprintf(p, sizeof p, "%s/%020d.tgj", dir, 1);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    tg_jcheck_result res;
    assert_int_equal(tg_jcheck_run(j, false, NULL, 0, &res), 0);
    assert_int_equal(res.violations, 0);
    assert_int_equal(res.completed, 25);
    assert_int_equal(res.running, 25);
    assert_int_equal(tg_jcheck_run(j, true, NULL, 0, &res), 0);
    assert_int_equal(res.violations, 25); /* strict: 25 not terminal */
    tg_journal_close(j);
    jt_list_free(&before);
    jt_list_free(&after);
    jt_list_free(&one);
    jt_rmdir(dir);
    free(dir);
}

/* Loop appends: every callback runs on the loop, once, with status 0, and
 * the record is readable by then. */
typedef struct {
    tg_journal *j;
    int done, bad;
} loop_ctx;

static void on_durable(void *user, int status) {
    loop_ctx *c = user;
    if (status != 0) c->bad++;
    c->done++;
}

static void test_loop_group_commit(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    tg_journal *j = open_dir(dir, NULL, 0, &loop, NULL);
    assert_non_null(j);
    loop_ctx c = {j, 0, 0};
    char id[40];
    for (int i = 0; i < 2000; i++) {
        mkid(id, i);
        assert_int_equal(
            tg_journal_append(j, TG_JREC_ACCEPTED, id, k_body, strlen(k_body), on_durable, &c), 0);
    }
    while (c.done < 2000)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(c.bad, 0);
    tg_journal_info info;
    mkid(id, 1999);
    assert_int_equal(tg_journal_info_get(j, id, &info), 0);
    /* Appends queued at close still complete (their callbacks run). */
    for (int i = 0; i < 10; i++) {
        mkid(id, 5000 + i);
        assert_int_equal(
            tg_journal_append(j, TG_JREC_ACCEPTED, id, k_body, strlen(k_body), on_durable, &c), 0);
    }
    tg_journal_close(j);
    assert_int_equal(c.done, 2010);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    jt_rmdir(dir);
    free(dir);
}

/* A record nobody waits for starts no write of its own: it becomes durable
 * with the next waited-for record, or by itself within the lazy window
 * (5 ms; generous bounds here for a loaded machine). */
static void test_lazy_records(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL, 0, NULL, NULL);
    assert_non_null(j);
    tg_journal_info info;
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_a", k_body, strlen(k_body)),
                     0);
    assert_int_equal(tg_journal_append(j, TG_JREC_DISPATCHED, "req_a", "{}", 2, NULL, NULL), 0);
    /* Rides with the next waited-for record, in order. */
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, "req_a", "{}", 2), 0);
    assert_int_equal(tg_journal_info_get(j, "req_a", &info), 0);
    assert_int_equal(info.n_records, 3);
    assert_int_equal(info.state, TG_JREC_COMPLETED);
    /* Alone, it is written within the window. */
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_b", k_body, strlen(k_body)),
                     0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(tg_journal_append(j, TG_JREC_DISPATCHED, "req_b", "{}", 2, NULL, NULL), 0);
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(tg_journal_info_get(j, "req_b", &info), 0);
        if (info.n_records == 2) break;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(info.n_records, 2);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(waited < 1.0);
    /* And a lazy record still queued at close is written, not dropped. */
    assert_int_equal(tg_journal_append(j, TG_JREC_COMPLETED, "req_b", "{}", 2, NULL, NULL), 0);
    tg_journal_close(j);
    tg_jfile_report rep;
    j = open_dir(dir, NULL, 0, NULL, &rep);
    assert_non_null(j);
    assert_int_equal(rep.records, 6);
    assert_int_equal(tg_journal_info_get(j, "req_b", &info), 0);
    assert_true(info.terminal);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

static void test_rotation_and_compaction(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL, 4096, NULL, NULL);
    assert_non_null(j);
    char id[40];
    /* Request 0 stays open; it holds its segment (and all later ones,
     * which it does not touch, are still droppable only after it). */
    for (int i = 0; i < 200; i++) {
        mkid(id, i);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, id, k_body, strlen(k_body)),
                         0);
        if (i != 100)
            assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, id, "{}", 2), 0);
    }
    int nseg = jt_count_files(dir, ".tgj");
    assert_true(nseg > 4);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u;
    /* Within retention nothing goes. */
    assert_int_equal(tg_jfile_compact(j, now), 0);
    /* Past retention (24 h default), everything before request 100's segment goes. */
    int gone = tg_jfile_compact(j, now + 2 * 86400ull * 1000000u);
    assert_true(gone > 0);
    assert_int_equal(jt_count_files(dir, ".tgj"), nseg - gone);
    mkid(id, 100);
    tg_journal_info info;
    assert_int_equal(tg_journal_info_get(j, id, &info), 0);
    mkid(id, 0);
    assert_int_equal(tg_journal_info_get(j, id, &info), -ENOENT);
    /* What remains checks clean as a compacted journal: a request split by
     * the cut (ACCEPTED in a deleted segment, COMPLETED in a kept one)
     * leaves a remnant, never a violation. */
    tg_jcheck_result res;
    assert_int_equal(tg_jcheck_run_compacted(j, false, true, NULL, 0, &res), 0);
    assert_int_equal(res.violations, 0);
    assert_int_equal(res.running + res.accepted, 1);
    uint64_t remnants = res.remnants;
    assert_true(remnants <= 1);
    tg_journal_close(j);
    tg_jfile_report rep;
    j = open_dir(dir, NULL, 4096, NULL, &rep);
    assert_non_null(j);
    assert_true(rep.first_seg > 1);
    assert_int_equal(rep.orphans, remnants); /* recovery skips them */
    assert_int_equal(tg_jcheck_run_compacted(j, false, rep.first_seg > 1, NULL, 0, &res), 0);
    assert_int_equal(res.violations, 0);
    assert_int_equal(res.remnants, remnants);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

/* Steady traffic: a request that started in an old segment and ended in a
 * later one does not pin the old segment once it is past retention; its
 * COMPLETED stays behind as a remnant recovery skips. */
static void test_compaction_splits_old_requests(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL, 4096, NULL, NULL);
    assert_non_null(j);
    char id[40];
    assert_int_equal(
        tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_split", k_body, strlen(k_body)), 0);
    for (int i = 0; jt_count_files(dir, ".tgj") < 3; i++) {
        mkid(id, i);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, id, k_body, strlen(k_body)),
                         0);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, id, "{}", 2), 0);
    }
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, "req_split", "{}", 2), 0);
    assert_int_equal(
        tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_open", k_body, strlen(k_body)), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u;
    assert_true(tg_jfile_compact(j, now + 2 * 86400ull * 1000000u) >= 2);
    tg_journal_info info;
    assert_int_equal(tg_journal_info_get(j, "req_split", &info), -ENOENT);
    assert_int_equal(tg_journal_info_get(j, "req_open", &info), 0);
    tg_journal_close(j);
    tg_jfile_report rep;
    j = open_dir(dir, NULL, 4096, NULL, &rep);
    assert_non_null(j);
    assert_true(rep.first_seg >= 3);
    /* req_split's COMPLETED, and a filler request's if a rotation fell
     * between its two records. */
    assert_true(rep.orphans >= 1 && rep.orphans <= 2);
    assert_int_equal(tg_journal_info_get(j, "req_split", &info), -ENOENT);
    tg_jcheck_result res;
    assert_int_equal(tg_jcheck_run_compacted(j, false, true, NULL, 0, &res), 0);
    assert_int_equal(res.violations, 0);
    assert_int_equal(res.remnants, rep.orphans);
    assert_int_equal(res.accepted, 1);
    /* Not known to be compacted, the remnant is a violation. */
    assert_int_equal(tg_jcheck_run(j, false, NULL, 0, &res), 0);
    assert_int_equal(res.violations, rep.orphans);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

/* Compaction at rotation leaves the unlinking to a helper (tg_jreap): the
 * files of segments past retention go soon after, and what remains reopens
 * whole. */
static void test_compaction_off_the_writer(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    char err[512], id[40];
    tg_jfile_opts o = {.dir = dir, .segment_bytes = 4096, .retention_s = 1};
    tg_journal *j = tg_jfile_open(&o, NULL, err, sizeof err);
    assert_non_null(j);
    for (int i = 0; i < 200; i++) {
        mkid(id, i);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, id, k_body, strlen(k_body)),
                         0);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, id, "{}", 2), 0);
    }
    int before = jt_count_files(dir, ".tgj");
    assert_true(before > 4);
    struct timespec past = {1, 200000000L};
    nanosleep(&past, NULL); /* the first 200 requests are now past retention */
    for (int i = 200; i < 260; i++) {
        mkid(id, i);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, id, k_body, strlen(k_body)),
                         0);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, id, "{}", 2), 0);
    }
    int after = before;
    for (int i = 0; i < 300 && after >= before; i++) {
        struct timespec ms = {0, 10000000L};
        nanosleep(&ms, NULL);
        after = jt_count_files(dir, ".tgj");
    }
    assert_true(after < before);
    mkid(id, 0);
    tg_journal_info info;
    assert_int_equal(tg_journal_info_get(j, id, &info), -ENOENT);
    tg_journal_close(j);
    tg_jfile_report rep;
    j = open_dir(dir, NULL, 4096, NULL, &rep);
    assert_non_null(j);
    assert_int_equal(rep.orphans, 0);
    assert_int_equal(rep.bad_seg, 0);
    tg_jcheck_result res;
    assert_int_equal(tg_jcheck_run(j, false, NULL, 0, &res), 0);
    assert_int_equal(res.violations, 0);
    mkid(id, 259);
    assert_int_equal(tg_journal_info_get(j, id, &info), 0);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

static void test_encrypted_journal(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    uint8_t k[32], k2[32];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(7 * i), k2[i] = (uint8_t)(7 * i + 1);
    tg_jcrypt *c = tg_jcrypt_from_bytes(k), *c2 = tg_jcrypt_from_bytes(k2);
    tg_journal *j = open_dir(dir, c, 0, NULL, NULL);
    assert_non_null(j);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_e", k_body, strlen(k_body)),
                     0);
    tg_journal_close(j);
    char p[700];
    snprintf(p, sizeof p, "%s/%020d.tgj", dir, 1);
    tg_buf raw = TG_BUF_INIT;
    assert_int_equal(tg_buf_read_file(&raw, p), 0);
    assert_null(memmem(raw.data, raw.len, "messages", 8));
    tg_buf_free(&raw);
    char err[512];
    tg_jfile_opts o = {.dir = dir};
    assert_null(tg_jfile_open(&o, NULL, err, sizeof err));
    assert_non_null(strstr(err, "encrypted"));
    o.key = c2;
    assert_null(tg_jfile_open(&o, NULL, err, sizeof err));
    assert_non_null(strstr(err, "another key"));
    j = open_dir(dir, c, 0, NULL, NULL);
    assert_non_null(j);
    jt_list l = {0};
    assert_int_equal(tg_journal_read(j, "req_e", jt_collect, &l), 0);
    assert_int_equal(l.n, 1);
    assert_non_null(strstr(l.v[0], "messages"));
    tg_journal_close(j);
    jt_list_free(&l);
    tg_jcrypt_free(c);
    tg_jcrypt_free(c2);
    jt_rmdir(dir);
    free(dir);
}

static void test_lock_and_read_only(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL, 0, NULL, NULL);
    assert_non_null(j);
    char err[512];
    tg_jfile_opts o = {.dir = dir};
    assert_null(tg_jfile_open(&o, NULL, err, sizeof err));
    assert_non_null(strstr(err, "in use"));
    o.read_only = true; /* check/dump may look at a live journal */
    tg_journal *r = tg_jfile_open(&o, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(tg_journal_append_sync(r, TG_JREC_ACCEPTED, "req_r", "{}", 2), -EROFS);
    tg_journal_close(r);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

/* A write that fails (here: the file size limit, as a full disk would)
 * fails that append only, leaves no partial record, and later appends work. */
static void test_write_error(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL, 1ull << 30, NULL, NULL);
    assert_non_null(j);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_a", k_body, strlen(k_body)),
                     0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char big[8000];
    memset(big, 'x', sizeof big);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, "req_a", big, sizeof big),
                     -EFBIG);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, "req_a", "{}", 2), 0);
    tg_journal_close(j);
    tg_jfile_report rep;
    j = open_dir(dir, NULL, 0, NULL, &rep);
    assert_non_null(j);
    assert_int_equal(rep.bad_seg, 0);
    assert_int_equal(rep.records, 2);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

static void test_checker_finds_violations(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL, 0, NULL, NULL);
    assert_non_null(j);
    const char *idem = "{\"scope\":\"k1\",\"idem\":\"abc\",\"body\":{}}";
    /* orphan, double accept, record after terminal, second terminal,
     * accepted without body, one idempotency key on two requests */
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, "req_orphan", "{}", 2), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_a", k_body, strlen(k_body)),
                     0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_a", k_body, strlen(k_body)),
                     0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_FAILED, "req_a", "{}", 2), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_DISPATCHED, "req_a", "{}", 2), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_COMPLETED, "req_a", "{}", 2), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_b", "not json", 8), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_c", idem, strlen(idem)), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_d", idem, strlen(idem)), 0);
    /* Not a violation: a key whose request was refused with 429 (or 503)
     * was released, and the client's retry holds it now. */
    const char *idem2 = "{\"scope\":\"k1\",\"idem\":\"xyz\",\"body\":{}}";
    const char *refused = "{\"status\":429,\"error\":{\"message\":\"queue full\"}}";
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_e", idem2, strlen(idem2)), 0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_FAILED, "req_e", refused, strlen(refused)),
                     0);
    assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_f", idem2, strlen(idem2)), 0);
    tg_jcheck_result res;
    char *out = NULL;
    size_t outn = 0;
    FILE *f = open_memstream(&out, &outn);
    assert_int_equal(tg_jcheck_run(j, false, f, 50, &res), 0);
    fclose(f);
    assert_int_equal(res.violations, 6);
    assert_non_null(strstr(out, "req_orphan: record without ACCEPTED"));
    assert_non_null(strstr(out, "req_a: accepted twice"));
    assert_non_null(strstr(out, "req_a: record after the terminal state"));
    assert_non_null(strstr(out, "req_a: second terminal state"));
    assert_non_null(strstr(out, "req_b: ACCEPTED does not hold the request body"));
    assert_non_null(strstr(out, "req_d: idempotency key already named another request"));
    free(out);
    tg_journal_close(j);
    jt_rmdir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known),
        cmocka_unit_test(test_record_codec),
        cmocka_unit_test(test_sealed_codec),
        cmocka_unit_test(test_key_loading),
        cmocka_unit_test(test_roundtrip_reopen),
        cmocka_unit_test(test_loop_group_commit),
        cmocka_unit_test(test_lazy_records),
        cmocka_unit_test(test_rotation_and_compaction),
        cmocka_unit_test(test_compaction_off_the_writer),
        cmocka_unit_test(test_compaction_splits_old_requests),
        cmocka_unit_test(test_encrypted_journal),
        cmocka_unit_test(test_lock_and_read_only),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_checker_finds_violations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
