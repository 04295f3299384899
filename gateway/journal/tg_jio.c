/* tg_jio: the journal's small file helpers. See tg_jio.h. */
#include "gateway/journal/tg_jio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tg_jio_write_all(int fd, const void *p, size_t n, uint64_t off) {
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

size_t tg_jio_read_at(int fd, void *p, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (char *)p + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    return got;
}

int tg_jio_mkdirs(const char *dir) {
    char *p = strdup(dir);
    if (!p) abort();
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0700) != 0 && errno != EEXIST) rc = -1;
            *s = c;
            if (!c || rc) break;
        }
    }
    free(p);
    return rc;
}

int tg_jio_truncate(int dirfd, const char *name, uint64_t len) {
    int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = ftruncate(fd, (off_t)len) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}
