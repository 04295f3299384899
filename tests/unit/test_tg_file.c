/* Unit tests for common/tg_file: what is not a regular file is refused,
 * promptly (a FIFO without a writer must not block). */
/* tg-test-links: tgcommon */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tg_file.h"

static void test_kinds(void **st) {
    (void)st;
    char dir[] = "/tmp/tg_file_XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(tg_file_open_regular(path, err, sizeof err), -1);
    assert_non_null(strstr(err, "is a FIFO (named pipe), not a regular file"));
    assert_int_equal(tg_file_check_regular(dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "is a directory, not a regular file"));
    assert_int_equal(tg_file_check_regular("/dev/null", err, sizeof err), -1);
    assert_string_equal(err, "/dev/null: is a device, not a regular file");
    unlink(path);
    assert_int_equal(tg_file_check_regular(path, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open: No such file"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    int fd = tg_file_open_regular(path, err, sizeof err);
    assert_true(fd >= 0);
    char c = 0;
    assert_int_equal(read(fd, &c, 1), 1); /* blocking again, readable */
    assert_int_equal(c, 'x');
    close(fd);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kinds)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
