/* Unit tests for gateway/journal/tg_jidem: the idempotency-key table. */
/* tg-test-links: tgjournal */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/journal/tg_jidem.h"

static void keys_are_scoped(void **st) {
    (void)st;
    tg_jidem t;
    tg_jidem_init(&t);
    assert_int_equal(tg_jidem_put(&t, "A", "k", "req_1", "sha1", 10), 0);
    assert_int_equal(tg_jidem_put(&t, "B", "k", "req_2", "sha2", 10), 0);
    assert_int_equal(tg_jidem_put(&t, "A", "k", "req_3", "sha3", 10), -1); /* taken */
    tg_jidem_entry *e = tg_jidem_get(&t, "A", "k");
    assert_non_null(e);
    assert_string_equal(e->id, "req_1");
    assert_string_equal(e->body_sha, "sha1");
    assert_string_equal(tg_jidem_get(&t, "B", "k")->id, "req_2");
    assert_null(tg_jidem_get(&t, "", "k"));
    assert_null(tg_jidem_get(&t, "A", "K"));
    tg_jidem_del(&t, "A", "k");
    assert_null(tg_jidem_get(&t, "A", "k"));
    assert_int_equal(t.count, 1);
    tg_jidem_free(&t);
}

static int keep_odd(void *user, const tg_jidem_entry *e) {
    (void)user;
    return (e->created_us & 1) != 0;
}

static void grows_and_expires(void **st) {
    (void)st;
    tg_jidem t;
    tg_jidem_init(&t);
    char k[32], id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(id, sizeof id, "req_%d", i);
        assert_int_equal(tg_jidem_put(&t, "s", k, id, "x", (uint64_t)i), 0);
    }
    assert_int_equal(t.count, 5000);
    for (int i = 0; i < 5000; i += 499) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(id, sizeof id, "req_%d", i);
        assert_string_equal(tg_jidem_get(&t, "s", k)->id, id);
    }
    /* Older than 1000 and even go; odd ones are kept by the callback. */
    assert_int_equal(tg_jidem_expire(&t, 1000, keep_odd, NULL), 500);
    assert_null(tg_jidem_get(&t, "s", "key-2"));
    assert_non_null(tg_jidem_get(&t, "s", "key-3"));
    assert_non_null(tg_jidem_get(&t, "s", "key-1000"));
    assert_int_equal(tg_jidem_expire(&t, 1000, NULL, NULL), 500);
    assert_int_equal(t.count, 4000);
    tg_jidem_free(&t);
}

static void key_validation(void **st) {
    (void)st;
    assert_true(tg_jidem_key_valid("abc-123_XYZ:=/", 14));
    assert_false(tg_jidem_key_valid("", 0));
    assert_false(tg_jidem_key_valid("a b", 3));
    assert_false(tg_jidem_key_valid("a\x7f", 2));
    assert_false(tg_jidem_key_valid("\xc3\xa9", 2));
    char big[300];
    memset(big, 'a', sizeof big);
    assert_true(tg_jidem_key_valid(big, 255));
    assert_false(tg_jidem_key_valid(big, 256));
    /* Too long fields are refused, nothing stored. */
    tg_jidem t;
    tg_jidem_init(&t);
    big[299] = 0;
    assert_int_equal(tg_jidem_put(&t, "s", big, "id", "x", 0), -1);
    assert_int_equal(tg_jidem_put(&t, big, "k", "id", "x", 0), -1);
    assert_int_equal(t.count, 0);
    tg_jidem_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_scoped),
        cmocka_unit_test(grows_and_expires),
        cmocka_unit_test(key_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
