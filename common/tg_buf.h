/* tg_buf: one growable byte string used everywhere instead of ad-hoc buffers.
 * Always NUL-terminated (data[len] == 0) once anything was appended, so the
 * contents can be handed to C string APIs. Allocation failure aborts: a
 * gateway that cannot allocate a few bytes cannot do anything useful. */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} tg_buf;

#define TG_BUF_INIT                                                                                \
    { NULL, 0, 0 }

void tg_buf_reserve(tg_buf *b, size_t extra);
void tg_buf_append(tg_buf *b, const void *p, size_t n);
void tg_buf_puts(tg_buf *b, const char *s);
void tg_buf_putc(tg_buf *b, char c);
void tg_buf_printf(tg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tg_buf_vprintf(tg_buf *b, const char *fmt, va_list ap);
/* Appends code point cp as UTF-8; surrogates and values past U+10FFFF
 * become U+FFFD, so the output is always valid UTF-8. */
void tg_buf_put_utf8(tg_buf *b, unsigned long cp);
/* Length (1..4) of the well-formed UTF-8 sequence at s (n > 0 bytes left),
 * or 0 when it is not one: overlong forms, surrogates, code points past
 * U+10FFFF and truncated sequences are all refused. */
size_t tg_buf_utf8_seq_len(const char *s, size_t n);
/* Appends s as a JSON string literal, quotes included. Escapes only what
 * JSON requires (quote, backslash, control characters), as Python's
 * json.dumps(ensure_ascii=False) does, so chat templates match byte for byte.
 * Bytes that are not well-formed UTF-8 become U+FFFD, one per byte: the
 * output is always valid JSON text, whatever s holds (error messages echo
 * client input). */
void tg_buf_json_str(tg_buf *b, const char *s, size_t n);
void tg_buf_clear(tg_buf *b);
/* Drops the first n bytes (consumed input). */
void tg_buf_consume(tg_buf *b, size_t n);
/* Hands the heap string to the caller (may be NULL when empty); b is reset. */
char *tg_buf_steal(tg_buf *b);
void tg_buf_free(tg_buf *b);

/* Reads a whole file; returns 0 or -1 with errno set. */
int tg_buf_read_file(tg_buf *b, const char *path);

#endif
