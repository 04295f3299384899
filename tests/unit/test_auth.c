/* tg-test-links: tggateway */
/* Auth: SHA-256 known-answer vectors, bearer parsing, /v1 and /admin rules. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/api/auth.h"

/* FIPS 180-2 / well-known vectors. */
static void test_sha256_vectors(void **st) {
    (void)st;
    char hex[65];
    assert_int_equal(tg_auth_sha256_hex("", 0, hex), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(tg_auth_sha256_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(tg_auth_sha256_hex(two, strlen(two), hex), 0);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void add_key(tg_config_sha256 *arr, int *n, const char *token) {
    char hex[65];
    assert_int_equal(tg_auth_sha256_hex(token, strlen(token), hex), 0);
    assert_int_equal(tg_config_parse_sha256(hex, &arr[(*n)++]), 0);
}

static void test_parse_bearer(void **st) {
    (void)st;
    const char *t;
    size_t n;
    const char *v = "Bearer sk-abc";
    assert_int_equal(tg_auth_parse_bearer(v, strlen(v), &t, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "sk-abc", 6);
    v = "  bEaReR \t tok  ";
    assert_int_equal(tg_auth_parse_bearer(v, strlen(v), &t, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(t, "tok", 3);
    /* Length-bounded: bytes past len are not read. */
    assert_int_equal(tg_auth_parse_bearer("Bearer abcdef", 10, &t, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(tg_auth_parse_bearer("Bearer", 6, &t, &n), -1);
    assert_int_equal(tg_auth_parse_bearer("Bearer   ", 9, &t, &n), -1);
    assert_int_equal(tg_auth_parse_bearer("Basic abc", 9, &t, &n), -1);
    assert_int_equal(tg_auth_parse_bearer("Bearerabc", 9, &t, &n), -1);
    assert_int_equal(tg_auth_parse_bearer("Bearer a b", 10, &t, &n), -1);
    assert_int_equal(tg_auth_parse_bearer(NULL, 0, &t, &n), -1);
}

static void test_api_keys(void **st) {
    (void)st;
    tg_config c;
    tg_config_defaults(&c);
    /* No keys configured: open, even without a header. */
    assert_int_equal(tg_auth_check_bearer(&c, NULL, 0), TG_AUTH_ALLOW);
    assert_int_equal(tg_auth_check_bearer(&c, "x", 1), TG_AUTH_ALLOW);
    add_key(c.auth.api_keys, &c.auth.n_api_keys, "key-one");
    add_key(c.auth.api_keys, &c.auth.n_api_keys, "key-two");
    assert_int_equal(tg_auth_check_bearer(&c, "key-one", 7), TG_AUTH_ALLOW);
    assert_int_equal(tg_auth_check_bearer(&c, "key-two", 7), TG_AUTH_ALLOW);
    assert_int_equal(tg_auth_check_bearer(&c, "key-two", 6), TG_AUTH_NEED_KEY); /* prefix */
    assert_int_equal(tg_auth_check_bearer(&c, "key-twoo", 8), TG_AUTH_NEED_KEY);
    assert_int_equal(tg_auth_check_bearer(&c, "", 0), TG_AUTH_NEED_KEY);
    assert_int_equal(tg_auth_check_bearer(&c, NULL, 0), TG_AUTH_NEED_KEY);
    /* A key from the config file (hash of "password", from the vector). */
    tg_config_defaults(&c);
    assert_int_equal(
        tg_config_set(&c, "t", "auth.api_key_sha256",
                      "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", NULL, 0),
        0);
    assert_int_equal(tg_auth_check_bearer(&c, "password", 8), TG_AUTH_ALLOW);
    assert_int_equal(tg_auth_check_bearer(&c, "Password", 8), TG_AUTH_NEED_KEY);
    tg_config_free(&c);
}

static void test_admin(void **st) {
    (void)st;
    tg_config c;
    tg_config_defaults(&c);
    /* Defaults: loopback only, no key needed from loopback. */
    assert_int_equal(tg_auth_admin_allowed(&c, NULL, 0, 1), TG_AUTH_ALLOW);
    assert_int_equal(tg_auth_admin_allowed(&c, NULL, 0, 0), TG_AUTH_FORBIDDEN);
    /* loopback_only off but no admin keys: still loopback only. */
    c.auth.admin_loopback_only = 0;
    assert_int_equal(tg_auth_admin_allowed(&c, NULL, 0, 0), TG_AUTH_FORBIDDEN);
    assert_int_equal(tg_auth_admin_allowed(&c, NULL, 0, 1), TG_AUTH_ALLOW);
    /* With an admin key and loopback_only off: the key decides. */
    add_key(c.auth.admin_keys, &c.auth.n_admin_keys, "adm");
    assert_int_equal(tg_auth_admin_allowed(&c, "adm", 3, 0), TG_AUTH_ALLOW);
    assert_int_equal(tg_auth_admin_allowed(&c, "adx", 3, 0), TG_AUTH_NEED_KEY);
    assert_int_equal(tg_auth_admin_allowed(&c, NULL, 0, 1), TG_AUTH_NEED_KEY);
    /* An api key is not an admin key. */
    add_key(c.auth.api_keys, &c.auth.n_api_keys, "user");
    assert_int_equal(tg_auth_admin_allowed(&c, "user", 4, 1), TG_AUTH_NEED_KEY);
    assert_int_equal(tg_auth_check_bearer(&c, "adm", 3), TG_AUTH_NEED_KEY);
    /* loopback_only on: a right key from afar is still refused. */
    c.auth.admin_loopback_only = 1;
    assert_int_equal(tg_auth_admin_allowed(&c, "adm", 3, 0), TG_AUTH_FORBIDDEN);
    assert_int_equal(tg_auth_admin_allowed(&c, "adm", 3, 1), TG_AUTH_ALLOW);
    tg_config_free(&c);
}

static void test_loopback(void **st) {
    (void)st;
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
    assert_true(tg_auth_addr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "127.255.3.4", &a4.sin_addr);
    assert_true(tg_auth_addr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "128.0.0.1", &a4.sin_addr);
    assert_false(tg_auth_addr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "10.0.0.1", &a4.sin_addr);
    assert_false(tg_auth_addr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    assert_true(tg_auth_addr_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:127.0.0.9", &a6.sin6_addr);
    assert_true(tg_auth_addr_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:10.0.0.9", &a6.sin6_addr);
    assert_false(tg_auth_addr_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::2", &a6.sin6_addr);
    assert_false(tg_auth_addr_is_loopback((struct sockaddr *)&a6));
    assert_false(tg_auth_addr_is_loopback(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_parse_bearer),
        cmocka_unit_test(test_api_keys),       cmocka_unit_test(test_admin),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
