/* tg_jio: the journal's small file helpers (whole writes and reads at an
 * offset, retrying short transfers and EINTR; mkdir -p; cutting a file). */
#ifndef TG_JIO_H
#define TG_JIO_H

#include <stddef.h>
#include <stdint.h>

/* Writes all n bytes at off. 0 or -errno. */
int tg_jio_write_all(int fd, const void *p, size_t n, uint64_t off);
/* Reads up to n bytes at off; returns how many (fewer at the end of the
 * file or on an error). */
size_t tg_jio_read_at(int fd, void *p, size_t n, uint64_t off);
/* mkdir -p, mode 0700 for what it creates. 0 or -1 (errno set). */
int tg_jio_mkdirs(const char *dir);
/* Cuts dir/name to len bytes (not made durable). 0 or -errno. */
int tg_jio_truncate(int dirfd, const char *name, uint64_t len);

#endif
