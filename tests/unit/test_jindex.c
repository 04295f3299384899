/* Unit tests for gateway/journal/tg_jindex: lookups stay right while the
 * table grows a few buckets at a time (ids in the old and the new table at
 * once), records past the inline ones, compaction and drops mid-growth. */
/* tg-test-links: tgjournal */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/journal/tg_jindex.h"

static size_t id_of(char *buf, size_t n, unsigned i) {
    return (size_t)snprintf(buf, n, "req_%08x", i * 2654435761u);
}

static void add_n(tg_jindex *x, unsigned from, unsigned to, uint64_t seg) {
    char id[32];
    for (unsigned i = from; i < to; i++) {
        size_t n = id_of(id, sizeof id, i);
        assert_int_equal(tg_jindex_add(x, TG_JREC_ACCEPTED, id, n, 1000 + i, seg, i, 10), 0);
    }
}

static void finds_all_while_growing(void **st) {
    (void)st;
    tg_jindex x;
    tg_jindex_init(&x);
    char id[32];
    bool saw_growing = false;
    for (unsigned i = 0; i < 5000; i++) {
        add_n(&x, i, i + 1, 1);
        saw_growing |= x.old != NULL;
        /* Every id so far, every few steps (both tables while growing). */
        if (i % 97 == 0 || x.old)
            for (unsigned k = 0; k <= i; k += (x.old ? 37 : 1)) {
                size_t n = id_of(id, sizeof id, k);
                tg_jentry *e = tg_jindex_find(&x, id, n);
                assert_non_null(e);
                assert_int_equal(e->created_us, 1000 + k);
            }
    }
    assert_true(saw_growing);
    assert_int_equal(x.count, 5000);
    assert_null(tg_jindex_find(&x, "req_nope", 8));
    /* Records past the inline ones move to the heap, in order. */
    size_t n = id_of(id, sizeof id, 7);
    for (unsigned r = 0; r < 10; r++)
        assert_int_equal(tg_jindex_add(&x, TG_JREC_CHUNK, id, n, 5000 + r, 2, 100 + r, 20), 0);
    tg_jentry *e = tg_jindex_find(&x, id, n);
    assert_int_equal(e->n_locs, 11);
    assert_int_equal(e->locs[0].off, 7);
    for (unsigned r = 0; r < 10; r++)
        assert_int_equal(e->locs[1 + r].off, 100 + r);
    assert_int_equal(e->last_seg, 2);
    /* An orphan is refused. */
    assert_int_equal(tg_jindex_add(&x, TG_JREC_COMPLETED, "req_x", 5, 1, 1, 0, 1), -1);
    tg_jindex_settle(&x);
    assert_null(x.old);
    size_t seen = 0;
    for (size_t i = 0; i < x.n_slots; i++)
        for (tg_jentry *p = x.slots[i]; p; p = p->next)
            seen++;
    assert_int_equal(seen, 5000);
    tg_jindex_free(&x);
}

static void compact_and_drop_mid_growth(void **st) {
    (void)st;
    tg_jindex x;
    tg_jindex_init(&x);
    char id[32];
    /* Segment 1: 1024 terminal requests; segment 2: the next ones open. */
    add_n(&x, 0, 1024, 1);
    for (unsigned i = 0; i < 1024; i++) {
        size_t n = id_of(id, sizeof id, i);
        assert_int_equal(tg_jindex_add(&x, TG_JREC_COMPLETED, id, n, 2000, 1, 0, 1), 0);
    }
    add_n(&x, 1024, 1030, 2); /* starts a grow: most of segment 1 still in the old table */
    assert_non_null(x.old);
    assert_int_equal(tg_jindex_compact_cut(&x, 3000, 1, 3), 1);
    assert_int_equal(tg_jindex_compact_cut(&x, 1500, 1, 3), 0); /* not old enough */
    tg_jindex_drop_through(&x, 1);
    assert_int_equal(x.count, 6);
    assert_null(tg_jindex_find(&x, id, id_of(id, sizeof id, 5)));
    assert_non_null(tg_jindex_find(&x, id, id_of(id, sizeof id, 1025)));
    tg_jindex_free(&x);
}

/* The rule compact_cut keeps per segment, checked over every entry. */
static uint64_t cut_by_scan(const tg_jindex *x, uint64_t older, uint64_t first, uint64_t active) {
    if (active <= first) return 0;
    uint64_t cut = active - 1;
    for (int changed = 1; changed && cut >= first;) {
        changed = 0;
        for (int t = 0; t < 2; t++) {
            tg_jentry *const *s = t ? x->old : x->slots;
            size_t from = t ? x->mig : 0, n = t ? x->n_old : x->n_slots;
            for (size_t i = from; s && i < n; i++)
                for (const tg_jentry *e = s[i]; e; e = e->next)
                    if (e->first_seg <= cut && (!e->n_terminal || e->terminal_us >= older)) {
                        cut = e->first_seg - 1;
                        changed = 1;
                    }
        }
    }
    return cut >= first ? cut : 0;
}

/* Random request lives over rotating segments: the per-segment cut equals
 * the one found by walking every entry, before and after drops. */
static void cut_matches_scan(void **st) {
    (void)st;
    tg_jindex x;
    tg_jindex_init(&x);
    uint64_t rnd = 88172645463325252ull, seg = 1, first = 1, t = 1;
    unsigned next = 0, floor = 0, drops = 0, cuts = 0;
    char id[32];
    for (int step = 0; step < 40000; step++) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        t++;
        if (step % 700 == 699) {
            /* Rotation; every other one at a quiet moment (nothing in flight
             * crosses it, so a cut can fall there). */
            if ((step / 700) % 2 == 0) {
                for (unsigned i = floor; i < next; i++) {
                    size_t n = id_of(id, sizeof id, i);
                    tg_jindex_add(&x, TG_JREC_COMPLETED, id, n, t, seg, 0, 1);
                }
                floor = next;
            }
            seg++;
        }
        unsigned op = (unsigned)(rnd >> 20) % 4;
        if (op == 0 || next == floor) {
            size_t n = id_of(id, sizeof id, next++);
            assert_int_equal(tg_jindex_add(&x, TG_JREC_ACCEPTED, id, n, t, seg, 0, 1), 0);
            if (next >= floor + 64) { /* every request ends, some 64 requests later */
                n = id_of(id, sizeof id, next - 64);
                tg_jindex_add(&x, TG_JREC_COMPLETED, id, n, t, seg, 0, 1);
            }
        } else {
            /* Another record for a recent request. */
            unsigned back = (unsigned)(rnd >> 32) % (next - floor < 100 ? next - floor : 100);
            size_t n = id_of(id, sizeof id, next - 1 - back);
            int type = op == 1 ? TG_JREC_DISPATCHED : op == 2 ? TG_JREC_COMPLETED : TG_JREC_FAILED;
            assert_int_equal(tg_jindex_add(&x, type, id, n, t, seg, 0, 1), 0);
        }
        if (step % 97 == 0 && seg > first) {
            uint64_t older = t > 3000 ? t - 3000 : 0;
            uint64_t c = tg_jindex_compact_cut(&x, older, first, seg);
            assert_int_equal(c, cut_by_scan(&x, older, first, seg));
            cuts++;
            if (c) {
                tg_jindex_drop_through(&x, c);
                first = c + 1;
                drops++;
                assert_int_equal(tg_jindex_compact_cut(&x, older, first, seg),
                                 cut_by_scan(&x, older, first, seg));
            }
        }
    }
    assert_true(drops > 5);
    assert_true(cuts > 100);
    tg_jindex_free(&x);
}

/* Steady traffic: every segment boundary is crossed by a request that
 * started before it and ended after it. Once they are past retention the
 * cut still advances (splitting them), and drop_through forgets them. */
static void compacts_under_steady_traffic(void **st) {
    (void)st;
    tg_jindex x;
    tg_jindex_init(&x);
    char id[32];
    for (unsigned seg = 1; seg <= 10; seg++) {
        for (unsigned k = 0; k < 10; k++) {
            unsigned i = seg * 10 + k;
            size_t n = id_of(id, sizeof id, i);
            assert_int_equal(tg_jindex_add(&x, TG_JREC_ACCEPTED, id, n, 1000, seg, 0, 1), 0);
        }
        /* The last request of the previous segment ends in this one. */
        for (unsigned k = 0; k < 10; k++) {
            unsigned i = (k == 9 ? seg - 1 : seg) * 10 + k;
            if (seg == 1 && k == 9) continue;
            size_t n = id_of(id, sizeof id, i);
            assert_int_equal(tg_jindex_add(&x, TG_JREC_COMPLETED, id, n, 1000, seg, 0, 1), 0);
        }
    }
    /* Request 109 (segment 10) is still open: segments 1..9 may go. */
    assert_int_equal(tg_jindex_compact_cut(&x, 2000, 1, 11), 9);
    assert_int_equal(tg_jindex_compact_cut(&x, 500, 1, 11), 0); /* within retention */
    tg_jindex_drop_through(&x, 9);
    assert_int_equal(x.count, 10);
    assert_null(tg_jindex_find(&x, id, id_of(id, sizeof id, 99))); /* split: ended in 10 */
    assert_non_null(tg_jindex_find(&x, id, id_of(id, sizeof id, 100)));
    /* A remnant's record has no entry to join: the add says orphan. */
    assert_int_equal(
        tg_jindex_add(&x, TG_JREC_COMPLETED, id, id_of(id, sizeof id, 99), 1000, 10, 0, 1), -1);
    tg_jindex_free(&x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_all_while_growing),
        cmocka_unit_test(compact_and_drop_mid_growth),
        cmocka_unit_test(compacts_under_steady_traffic),
        cmocka_unit_test(cut_matches_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
