/* tg_file: refuse FIFOs, directories and devices where a file is wanted. */
#include "common/tg_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    if (S_ISSOCK(m)) return "a socket";
    return NULL;
}

int tg_file_open_regular(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *k = kind_of(st.st_mode);
        if (err && errlen) {
            if (k)
                snprintf(err, errlen, "%s: is %s, not a regular file", path, k);
            else
                snprintf(err, errlen, "%s: not a regular file", path);
        }
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int tg_file_check_regular(const char *path, char *err, size_t errlen) {
    int fd = tg_file_open_regular(path, err, errlen);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}
