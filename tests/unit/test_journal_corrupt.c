/* tg-test-links: tgjournal */
/* Corruption: a real journal (several segments, plaintext and encrypted)
 * has bytes flipped, zeroed or cut at pseudo-random offsets (fixed seeds,
 * so every run tests the same cases); recovery must never fail or crash,
 * must keep every record before the damage, and must return exactly a
 * prefix of the original records: it never invents one. Recovery is then
 * idempotent (a second open finds nothing to repair) and the result passes
 * the invariant checker. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/journal/tg_jcheck.h"
#include "gateway/journal/tg_jchunk.h"
#include "gateway/journal/tg_jfile.h"
#include "tests/support/journal_test_util.h"

#define SEG_BYTES 8192

static uint64_t g_rng;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static tg_journal *open_j(const char *dir, const tg_jcrypt *key, bool ro, tg_jfile_report *rep) {
    char err[512];
    tg_jfile_opts o = {.dir = dir, .segment_bytes = SEG_BYTES, .key = key, .read_only = ro};
    tg_journal *j = tg_jfile_open(&o, rep, err, sizeof err);
    if (!j) fprintf(stderr, "open %s: %s\n", dir, err);
    return j;
}

/* Writes a journal like the gateway's: ACCEPTED with a body, DISPATCHED,
 * stream chunks, a terminal state for most. */
static void build(const char *dir, const tg_jcrypt *key) {
    tg_journal *j = open_j(dir, key, false, NULL);
    assert_non_null(j);
    for (int i = 0; i < 120; i++) {
        char id[40], body[300];
        snprintf(id, sizeof id, "req_%032x", i * 2654435761u);
        snprintf(body, sizeof body,
                 "{\"scope\":\"k%d\",\"idem\":null,\"body\":{\"model\":\"tidegate/auto\","
                 "\"messages\":[{\"role\":\"user\",\"content\":\"question %d %*s\"}]}}",
                 i % 3, i, i % 97, "");
        assert_int_equal(tg_journal_append_sync(j, TG_JREC_ACCEPTED, id, body, strlen(body)), 0);
        assert_int_equal(
            tg_journal_append_sync(j, TG_JREC_DISPATCHED, id, "{\"target\":\"edge\"}", 17), 0);
        for (int k = 0; k < i % 4; k++) {
            tg_buf ch = TG_BUF_INIT;
            tg_jchunk_encode(&ch, (uint64_t)k + 1, "{\"delta\":\"tok\"}", 15);
            assert_int_equal(tg_journal_append_sync(j, TG_JREC_CHUNK, id, ch.data, ch.len), 0);
            tg_buf_free(&ch);
        }
        if (i % 5 != 4)
            assert_int_equal(
                tg_journal_append_sync(j, TG_JREC_COMPLETED, id, "{\"content\":\"ok\"}", 16), 0);
    }
    tg_journal_close(j);
}

typedef struct {
    char name[64];
    uint64_t size;
    size_t records_before; /* records in earlier segments */
} segfile;

static size_t list_segments(const char *dir, const tg_jcrypt *key, segfile *out, size_t max) {
    size_t n = 0, before = 0;
    for (uint64_t no = 1; n < max; no++) {
        segfile *s = &out[n];
        snprintf(s->name, sizeof s->name, "%020llu.tgj", (unsigned long long)no);
        char p[700];
        snprintf(p, sizeof p, "%s/%s", dir, s->name);
        tg_buf b = TG_BUF_INIT, scratch = TG_BUF_INIT;
        if (tg_buf_read_file(&b, p) != 0) {
            tg_buf_free(&b);
            break;
        }
        s->size = b.len;
        s->records_before = before;
        for (size_t pos = TG_JSEG_HDR; pos < b.len;) {
            tg_jrec r;
            assert_int_equal(
                tg_jrec_decode((uint8_t *)b.data + pos, b.len - pos, key, &scratch, &r),
                TG_JREC_OK);
            if (r.type != TG_JREC_SEAL) before++;
            pos += r.size;
        }
        tg_buf_free(&b);
        tg_buf_free(&scratch);
        n++;
    }
    return n;
}

static void damage(const char *path, uint64_t size, int op, uint64_t off) {
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (op == 0) { /* flip one byte */
        uint8_t c;
        assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
        c ^= (uint8_t)(1 + rnd() % 255);
        assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    } else if (op == 1) { /* cut the file there (a torn write) */
        assert_int_equal(ftruncate(fd, (off_t)off), 0);
    } else { /* zero a run, as a lost page would */
        uint8_t z[512] = {0};
        size_t n = 1 + rnd() % sizeof z;
        if (off + n > size) n = (size_t)(size - off);
        assert_int_equal(pwrite(fd, z, n, (off_t)off), (ssize_t)n);
    }
    close(fd);
}

static void run_corruptions(const tg_jcrypt *key, uint64_t seed, int rounds) {
    char *orig = jt_tmpdir();
    build(orig, key);
    segfile segs[64];
    size_t nseg = list_segments(orig, key, segs, 64);
    assert_true(nseg >= 3);
    jt_list ref = {0};
    tg_journal *j = open_j(orig, key, true, NULL);
    assert_non_null(j);
    assert_int_equal(tg_journal_scan(j, jt_collect, &ref), 0);
    tg_journal_close(j);
    assert_true(ref.n > segs[nseg - 1].records_before);

    g_rng = seed;
    char work[600];
    snprintf(work, sizeof work, "%s-work", orig);
    for (int round = 0; round < rounds; round++) {
        jt_rmdir(work);
        jt_copydir(orig, work);
        size_t si = rnd() % nseg;
        int op = (int)(rnd() % 3);
        uint64_t off = rnd() % segs[si].size;
        char p[700];
        snprintf(p, sizeof p, "%s/%s", work, segs[si].name);
        damage(p, segs[si].size, op, off);

        tg_jfile_report rep;
        j = open_j(work, key, false, &rep);
        assert_non_null(j);
        jt_list got = {0};
        assert_int_equal(tg_journal_scan(j, jt_collect, &got), 0);
        tg_jcheck_result res;
        assert_int_equal(tg_jcheck_run(j, false, NULL, 0, &res), 0);
        assert_int_equal(res.violations, 0);
        /* The journal still takes appends after repair. */
        assert_int_equal(
            tg_journal_append_sync(j, TG_JREC_ACCEPTED, "req_after", "{\"body\":{}}", 11), 0);
        tg_journal_close(j);
        /* Never invented, never reordered: a prefix of the original. */
        assert_true(got.n <= ref.n);
        for (size_t i = 0; i < got.n; i++)
            if (strcmp(got.v[i], ref.v[i]))
                fail_msg("round %d seg %zu op %d off %llu: record %zu of %zu differs", round, si,
                         op, (unsigned long long)off, i, got.n);
        /* Nothing before the damaged segment is lost. */
        if (got.n < segs[si].records_before)
            fail_msg("round %d: %zu records kept, %zu precede the damage", round, got.n,
                     segs[si].records_before);
        /* A flip or zeroed run was detected iff it changed a byte; a cut always
         * loses the records from there on. */
        if (op == 1 && off + 1 < segs[si].size) assert_true(got.n < ref.n);

        /* Recovery is idempotent: nothing more to repair. */
        tg_jfile_report rep2;
        j = open_j(work, key, false, &rep2);
        assert_non_null(j);
        if (rep2.bad_seg)
            fail_msg("round %d seg %zu op %d off %llu: second open: bad seg %llu off %llu short %d",
                     round, si, op, (unsigned long long)off, (unsigned long long)rep2.bad_seg,
                     (unsigned long long)rep2.bad_off, rep2.bad_is_short);
        assert_int_equal(rep2.records, got.n + 1);
        tg_journal_close(j);
        jt_list_free(&got);
    }
    jt_rmdir(work);
    jt_rmdir(orig);
    jt_list_free(&ref);
    free(orig);
}

static void test_corrupt_plain(void **st) {
    (void)st;
    run_corruptions(NULL, 0x9e3779b97f4a7c15ull, 150);
}

static void test_corrupt_sealed(void **st) {
    (void)st;
    uint8_t k[32];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(31 * i + 5);
    tg_jcrypt *c = tg_jcrypt_from_bytes(k);
    run_corruptions(c, 0x243f6a8885a308d3ull, 100);
    tg_jcrypt_free(c);
}

/* A segment header that never became durable (crash while rotating):
 * the empty last file is dropped, nothing else changes. */
static void test_torn_rotation(void **st) {
    (void)st;
    char *dir = jt_tmpdir();
    build(dir, NULL);
    segfile segs[64];
    size_t nseg = list_segments(dir, NULL, segs, 64);
    char p[700];
    snprintf(p, sizeof p, "%s/%020llu.tgj", dir, (unsigned long long)nseg + 1);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    assert_int_equal(write(fd, "TGJSEG", 6), 6);
    close(fd);
    tg_jfile_report rep;
    tg_journal *j = open_j(dir, NULL, false, &rep);
    assert_non_null(j);
    assert_int_equal(rep.bad_seg, nseg + 1);
    assert_true(rep.bad_is_short);
    assert_int_equal(rep.after_bad_segs, 0);
    tg_journal_close(j);
    assert_int_equal(jt_count_files(dir, ".bad"), 0);
    jt_rmdir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_plain),
        cmocka_unit_test(test_corrupt_sealed),
        cmocka_unit_test(test_torn_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
