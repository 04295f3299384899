#include "common/tg_buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_buf_reserve(tg_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) abort();
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) abort();
    p[b->len] = 0; /* allocated data is always NUL-terminated, even when empty */
    b->data = p;
    b->cap = cap;
}

void tg_buf_append(tg_buf *b, const void *p, size_t n) {
    tg_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void tg_buf_puts(tg_buf *b, const char *s) {
    tg_buf_append(b, s, strlen(s));
}
void tg_buf_putc(tg_buf *b, char c) {
    tg_buf_append(b, &c, 1);
}

void tg_buf_vprintf(tg_buf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    tg_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void tg_buf_printf(tg_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tg_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void tg_buf_put_utf8(tg_buf *b, unsigned long cp) {
    char o[4];
    size_t k;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        o[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    tg_buf_append(b, o, k);
}

size_t tg_buf_utf8_seq_len(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < k || s[1] < lo || s[1] > hi) return 0;
    for (size_t j = 2; j < k; j++)
        if (s[j] < 0x80 || s[j] > 0xBF) return 0;
    return k;
}

void tg_buf_json_str(tg_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    tg_buf_reserve(b, n + 2);
    tg_buf_putc(b, '"');
    size_t run = 0; /* start of the bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t k = tg_buf_utf8_seq_len(s + i, n - i);
            if (k) {
                i += k - 1;
                continue;
            }
            tg_buf_append(b, s + run, i - run);
            run = i + 1;
            tg_buf_append(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        tg_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': tg_buf_append(b, "\\\"", 2); break;
        case '\\': tg_buf_append(b, "\\\\", 2); break;
        case '\n': tg_buf_append(b, "\\n", 2); break;
        case '\r': tg_buf_append(b, "\\r", 2); break;
        case '\t': tg_buf_append(b, "\\t", 2); break;
        case '\b': tg_buf_append(b, "\\b", 2); break;
        case '\f': tg_buf_append(b, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            tg_buf_append(b, u, 6);
        }
        }
    }
    tg_buf_append(b, s + run, n - run);
    tg_buf_putc(b, '"');
}

void tg_buf_clear(tg_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

void tg_buf_consume(tg_buf *b, size_t n) {
    if (n >= b->len) {
        tg_buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

char *tg_buf_steal(tg_buf *b) {
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void tg_buf_free(tg_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tg_buf_read_file(tg_buf *b, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        tg_buf_append(b, chunk, n);
    int err = ferror(f);
    fclose(f);
    if (err) {
        errno = EIO;
        return -1;
    }
    if (!b->data) tg_buf_append(b, "", 0);
    return 0;
}
