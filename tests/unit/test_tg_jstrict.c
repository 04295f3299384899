/* Unit tests for common/tg_jstrict: the strict JSON check in front of
 * json-c. Each case names what a lenient parser would have accepted. */
/* tg-test-links: tgcommon */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/tg_jstrict.h"

static void ok(const char *s) {
    tg_jstrict_err e;
    if (tg_jstrict_check(s, strlen(s), 64, &e) != 0)
        fail_msg("refused %s: %s at %zu (%s)", s, e.msg, e.offset, e.path);
}

static void bad(const char *s, tg_jstrict_kind kind, const char *path) {
    tg_jstrict_err e;
    if (tg_jstrict_check(s, strlen(s), 64, &e) == 0) fail_msg("accepted %s", s);
    assert_int_equal(e.kind, kind);
    assert_string_equal(e.path, path);
    assert_true(e.msg[0] != 0);
}

static void test_valid(void **st) {
    (void)st;
    ok("{}");
    ok(" [ ] ");
    ok("{\"a\":[1,-0.5e+3,0,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\"],\"b\":{}}");
    ok("\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"");
    ok("{\"a\":{\"x\":1},\"b\":{\"x\":1}}"); /* same key in different objects */
}

static void test_syntax(void **st) {
    (void)st;
    bad("", TG_JSTRICT_SYNTAX, "");
    bad("{'a':1}", TG_JSTRICT_SYNTAX, "");
    bad("{\"a\":NaN}", TG_JSTRICT_SYNTAX, "a");
    bad("{\"a\":01}", TG_JSTRICT_SYNTAX, "a");
    bad("{\"a\":1.}", TG_JSTRICT_SYNTAX, "a");
    bad("[1,]", TG_JSTRICT_SYNTAX, "[1]");
    bad("{\"a\":\"x\ty\"}", TG_JSTRICT_SYNTAX, "a");
    bad("{\"a\":\"\\x\"}", TG_JSTRICT_SYNTAX, "a");
    bad("{} {}", TG_JSTRICT_SYNTAX, "");
    bad("{\"a\":1", TG_JSTRICT_SYNTAX, "a");
}

static void test_utf8(void **st) {
    (void)st;
    bad("{\"a\":[\"ok\",\"\xff\"]}", TG_JSTRICT_UTF8, "a[1]");
    bad("{\"a\":\"\xc0\xaf\"}", TG_JSTRICT_UTF8, "a");         /* overlong '/' */
    bad("{\"a\":\"\xe0\x80\xaf\"}", TG_JSTRICT_UTF8, "a");     /* overlong, 3 bytes */
    bad("{\"a\":\"\xed\xa0\x80\"}", TG_JSTRICT_UTF8, "a");     /* encoded surrogate */
    bad("{\"a\":\"\xf4\x90\x80\x80\"}", TG_JSTRICT_UTF8, "a"); /* past U+10FFFF */
    bad("{\"a\":\"\xe2\x82\"}", TG_JSTRICT_UTF8, "a");         /* truncated */
    bad("{\"a\":\"\\ud800\"}", TG_JSTRICT_UTF8, "a");          /* lone high */
    bad("{\"a\":\"\\udc00\\ud800\"}", TG_JSTRICT_UTF8, "a");   /* reversed */
    bad("{\"a\":\"\\ud800\\u0041\"}", TG_JSTRICT_UTF8, "a");   /* high + non-low */
    bad("{\"b\":{\"\xff\":1}}", TG_JSTRICT_UTF8, "b");         /* in a key */
    assert_int_equal(tg_jstrict_utf8_valid_prefix("ab\xc3\xa9\xc3", 5), 4);
    assert_int_equal(tg_jstrict_utf8_valid_prefix("", 0), 0);
}

static void test_duplicates(void **st) {
    (void)st;
    bad("{\"a\":1,\"a\":2}", TG_JSTRICT_DUPLICATE, "a");
    bad("{\"m\":[{\"r\":1,\"x\":0,\"r\":2}]}", TG_JSTRICT_DUPLICATE, "m[0].r");
    bad("{\"a\":1,\"\\u0061\":2}", TG_JSTRICT_DUPLICATE, "a"); /* same after decoding */
    ok("{\"a\":1,\"A\":2,\"a \":3}");
    tg_jstrict_err e;
    /* The offset points at the second occurrence. */
    assert_int_equal(tg_jstrict_check("{\"k\":1,\"k\":2}", 13, 64, &e), -1);
    assert_int_equal(e.offset, 7);
}

static void test_depth(void **st) {
    (void)st;
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    tg_jstrict_err e;
    assert_int_equal(tg_jstrict_check(deep, sizeof deep, 64, &e), -1);
    assert_int_equal(e.kind, TG_JSTRICT_DEPTH);
    assert_int_equal(tg_jstrict_check(deep + 40, 120, 64, &e), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid), cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_utf8),  cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
