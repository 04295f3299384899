/* tg_file: opening files named by an operator (model, TLS cert and key,
 * config), refusing anything that is not a regular file.
 *
 * A FIFO given as a path would block open() (and then read()) until some
 * writer appeared, hanging startup for ever; a directory or a device makes
 * no sense as a model or certificate either. The file is opened with
 * O_NONBLOCK (so a FIFO cannot block the open itself), checked with fstat on
 * the open descriptor (no race between check and use), and only then made
 * blocking again. */
#ifndef TG_FILE_H
#define TG_FILE_H

#include <stddef.h>

/* Opens path read-only (O_CLOEXEC). Returns the fd, or -1 with a one-line
 * message in err: "PATH: cannot open: ...", "PATH: is a FIFO (named pipe),
 * not a regular file", "... is a directory ...", "... is a device ...". */
int tg_file_open_regular(const char *path, char *err, size_t errlen);

/* Checks without keeping the file open (for files a library opens by
 * name, such as OpenSSL's PEM loaders). 0, or -1 with err as above. */
int tg_file_check_regular(const char *path, char *err, size_t errlen);

#endif
