/* sse: event-stream framing and an incremental parser. */
#include "gateway/api/sse.h"

#include <string.h>

void tg_sse_event(tg_buf *out, const char *event, const char *data, size_t len) {
    if (event && *event) {
        tg_buf_puts(out, "event: ");
        tg_buf_puts(out, event);
        tg_buf_putc(out, '\n');
    }
    /* One `data:` line per payload line; CR, LF and CRLF all end a line on
     * the reading side, so each of them starts a new data line here. */
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r') continue;
        tg_buf_puts(out, "data: ");
        tg_buf_append(out, data + start, i - start);
        tg_buf_putc(out, '\n');
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') i++;
        start = i + 1;
    }
    tg_buf_putc(out, '\n');
}

void tg_sse_data(tg_buf *out, const char *data, size_t len) {
    tg_sse_event(out, NULL, data, len);
}

void tg_sse_id(tg_buf *out, uint64_t n) {
    tg_buf_printf(out, "id: %llu\n", (unsigned long long)n);
}

void tg_sse_done(tg_buf *out) {
    tg_buf_puts(out, "data: [DONE]\n\n");
}

void tg_sse_comment(tg_buf *out, const char *text) {
    tg_buf_puts(out, ": ");
    for (const char *c = text; *c; c++)
        if (*c != '\n' && *c != '\r') tg_buf_putc(out, *c);
    tg_buf_puts(out, "\n\n");
}

/* ---------------------------------------------------------------- parse -- */

void tg_sse_parser_init(tg_sse_parser *p, size_t max_event) {
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : (1u << 20);
}

void tg_sse_parser_free(tg_sse_parser *p) {
    tg_buf_free(&p->line);
    tg_buf_free(&p->data);
    tg_buf_free(&p->event);
    tg_buf_free(&p->id);
}

static int dispatch(tg_sse_parser *p, tg_sse_cb cb, void *user) {
    int rc = 0;
    if (p->has_data) {
        /* Lines were stored each with a trailing LF; the last one goes. */
        if (p->data.len && p->data.data[p->data.len - 1] == '\n') p->data.len--;
        tg_buf_append(&p->data, "", 0);
        if (p->data.data) p->data.data[p->data.len] = 0;
        tg_sse_msg m = {
            .event = p->event.len ? p->event.data : "message",
            .data = p->data.data ? p->data.data : "",
            .data_len = p->data.len,
            .id = p->id.len ? p->id.data : "",
        };
        rc = cb ? cb(user, &m) : 0;
    }
    tg_buf_clear(&p->data);
    tg_buf_clear(&p->event);
    p->has_data = false;
    return rc;
}

static int process_line(tg_sse_parser *p, const char *l, size_t n, tg_sse_cb cb, void *user) {
    if (n == 0) return dispatch(p, cb, user);
    if (l[0] == ':') return 0; /* comment */
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen && *v == ' ') v++, vlen--;
    if (flen == 4 && !memcmp(l, "data", 4)) {
        tg_buf_append(&p->data, v, vlen);
        tg_buf_putc(&p->data, '\n');
        p->has_data = true;
    } else if (flen == 5 && !memcmp(l, "event", 5)) {
        /* A NUL inside the name would make it read as a different (or
         * empty) C string than the bytes received: ignore such a field. */
        if (!memchr(v, 0, vlen)) {
            tg_buf_clear(&p->event);
            tg_buf_append(&p->event, v, vlen);
        }
    } else if (flen == 2 && !memcmp(l, "id", 2)) {
        if (!memchr(v, 0, vlen)) {
            tg_buf_clear(&p->id);
            tg_buf_append(&p->id, v, vlen);
        }
    } /* retry and unknown fields are ignored */
    return 0;
}

int tg_sse_parser_feed(tg_sse_parser *p, const char *buf, size_t len, tg_sse_cb cb, void *user) {
    size_t i = 0;
    if (!p->seen_bom_check) {
        /* A UTF-8 BOM may open the stream; it can arrive split, so wait for
         * three bytes (or a mismatch) before deciding. */
        static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
        size_t have = p->line.len;
        while (have < 3 && i < len && buf[i] == bom[have])
            tg_buf_putc(&p->line, buf[i++]), have++;
        if (have == 3) {
            tg_buf_clear(&p->line);
            p->seen_bom_check = true;
        } else if (i < len) {
            p->seen_bom_check = true; /* not a BOM: those bytes are line text */
        } else {
            return 0;
        }
    }
    for (; i < len; i++) {
        char c = buf[i];
        if (c == '\n' && p->last_cr) { /* second half of CRLF */
            p->last_cr = false;
            continue;
        }
        p->last_cr = (c == '\r');
        if (c == '\r' || c == '\n') {
            int rc = process_line(p, p->line.data ? p->line.data : "", p->line.len, cb, user);
            tg_buf_clear(&p->line);
            if (rc) return rc;
            if (p->data.len > p->max_event) return -1;
            continue;
        }
        tg_buf_putc(&p->line, c);
        if (p->line.len + p->data.len > p->max_event) return -1;
    }
    return 0;
}
