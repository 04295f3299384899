/* tg-test-links: tgjournal */
/* Zeros ahead of the journal writer (tg_jzero): the helper fills past the
 * writer and never over what the writer claimed, however the two race; the
 * fill stops at the segment limit; and a journal left with a zero tail (a
 * crash while zeros were ahead) recovers it as a clean end, while any
 * non-zero byte in that tail is still a torn tail. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "gateway/journal/tg_jfile.h"
#include "gateway/journal/tg_jzero.h"
#include "tests/support/journal_test_util.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* The writer's bytes survive the helper: records of odd sizes written back
 * to back while the helper fills ahead (and is caught up with, so claims
 * meet the chunk in flight), then every byte checked. */
static void test_fill_never_overwrites_records(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/seg", dir);
    int fd = open(p, O_CREAT | O_RDWR, 0600);
    assert_true(fd >= 0);
    const uint64_t limit = 4u << 20, base = 64;
    uint8_t hdr[64];
    memset(hdr, 0xAB, sizeof hdr);
    assert_int_equal(pwrite(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
    tg_jzero *z = tg_jzero_start(limit);
    assert_non_null(z);
    tg_jzero_attach(z, fd, base);
    /* A quiet segment gets the minimum lead, made durable. */
    for (int i = 0; i < 200 && tg_jzero_end(z) < base + (256u << 10); i++)
        sleep_ms(10);
    assert_int_equal(tg_jzero_end(z), base + (256u << 10));
    assert_int_equal(file_size(p), base + (256u << 10));

    uint8_t rec[7000];
    uint64_t off = base;
    for (unsigned i = 0; off + sizeof rec < limit; i++) {
        size_t n = 1 + (i * 2654435761u) % sizeof rec;
        memset(rec, (int)(1 + i % 250), n);
        tg_jzero_claim(z, off, n);
        assert_int_equal(pwrite(fd, rec, n, (off_t)off), (ssize_t)n);
        off += n;
        if (i % 64 == 0) sleep_ms(1); /* let the helper run ahead at times */
    }
    tg_jzero_detach(z);
    assert_int_equal(tg_jzero_end(z), 0);
    /* Never past the limit, and everything the writer wrote is intact. */
    uint64_t size = file_size(p);
    assert_true(size >= off && size <= limit);
    uint8_t *all = malloc(size);
    assert_int_equal(pread(fd, all, size, 0), (ssize_t)size);
    assert_memory_equal(all, hdr, sizeof hdr);
    uint64_t pos = base;
    for (unsigned i = 0; pos < off; i++) {
        size_t n = 1 + (i * 2654435761u) % sizeof rec;
        for (size_t k = 0; k < n; k++)
            if (all[pos + k] != (uint8_t)(1 + i % 250))
                fail_msg("record %u byte %zu overwritten (offset %llu)", i, k,
                         (unsigned long long)(pos + k));
        pos += n;
    }
    assert_true(tg_jzero_is_tail(all + off, size - off) || size == off);
    free(all);
    tg_jzero_stop(z);
    close(fd);
    jt_rmdir(dir);
    free(dir);
}

static void test_is_tail(void **st) {
    (void)st;
    uint8_t b[100] = {0};
    assert_false(tg_jzero_is_tail(b, 0));
    assert_true(tg_jzero_is_tail(b, sizeof b));
    b[99] = 1;
    assert_false(tg_jzero_is_tail(b, sizeof b));
    assert_true(tg_jzero_is_tail(b, 99));
    tg_jzero_stop(NULL); /* NULL-safe, like the journal's use without a helper */
}

static tg_journal *open_dir(const char *dir, tg_jfile_report *rep) {
    char err[512];
    tg_jfile_opts o = {.dir = dir};
    tg_journal *j = tg_jfile_open(&o, rep, err, sizeof err);
    if (!j) fprintf(stderr, "open: %s\n", err);
    return j;
}

/* A copy of a live journal is what a crash leaves: records, then the zeros
 * written ahead of them. */
static void test_zero_tail_recovers_clean(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    tg_journal *j = open_dir(dir, NULL);
    assert_non_null(j);
    char id[40];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "req_%032d", i);
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, id, "{\"body\":{}}", 11), 0);
    }
    char seg[700];
    snprintf(seg, sizeof seg, "%s/%020d.tgj", dir, 1);
    for (int i = 0; i < 200 && file_size(seg) < (256u << 10); i++)
        sleep_ms(10);
    assert_true(file_size(seg) >= (256u << 10));
    char crash[600], torn[600];
    snprintf(crash, sizeof crash, "%s-crash", dir);
    snprintf(torn, sizeof torn, "%s-torn", dir);
    jt_copydir(dir, crash);
    jt_copydir(dir, torn);
    tg_journal_close(j);
    /* A clean close cuts the zeros off after the SEAL. */
    assert_true(file_size(seg) < 4096);

    tg_jfile_report rep;
    j = open_dir(crash, &rep);
    assert_non_null(j);
    assert_int_equal(rep.bad_seg, 0);
    assert_int_equal(rep.records, 20);
    tg_journal_close(j);
    snprintf(seg, sizeof seg, "%s/%020d.tgj", crash, 1);
    assert_true(file_size(seg) < 4096); /* sealed and cut */
    j = open_dir(crash, &rep);
    assert_non_null(j);
    assert_int_equal(rep.bad_seg, 0);
    assert_int_equal(rep.records, 20);
    tg_journal_close(j);

    /* One non-zero byte deep in the zeros: not a clean end, a torn tail;
     * the records before it stay. */
    snprintf(seg, sizeof seg, "%s/%020d.tgj", torn, 1);
    int fd = open(seg, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "x", 1, 200000), 1);
    close(fd);
    j = open_dir(torn, &rep);
    assert_non_null(j);
    assert_int_equal(rep.bad_seg, 1);
    assert_int_equal(rep.records, 20);
    tg_journal_close(j);

    jt_rmdir(torn);
    jt_rmdir(crash);
    jt_rmdir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_tail),
        cmocka_unit_test(test_fill_never_overwrites_records),
        cmocka_unit_test(test_zero_tail_recovers_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
