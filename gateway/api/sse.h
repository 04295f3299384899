/* sse: Server-Sent Events framing (text/event-stream), both directions.
 *
 * Writing: each event is `data: <line>\n` per line of the payload and a
 * blank line; payloads with newlines are split so no line can end an event
 * early (JSON from our builders has none, but a relayed payload might).
 *
 * Reading: an incremental parser per the WHATWG event-stream rules (LF, CR
 * or CRLF line ends; `:` comments; `data` lines joined with LF; `event`,
 * `id`; an event is dispatched at a blank line only if it had data). It
 * accepts input split at any byte, and bounds how much it buffers, because a
 * cloud upstream's stream is untrusted input too. */
#ifndef TG_SSE_H
#define TG_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"

/* Appends one event carrying `data`; event may be NULL (default "message"). */
void tg_sse_event(tg_buf *out, const char *event, const char *data, size_t len);
/* Shorthand for tg_sse_event(out, NULL, data, len). */
void tg_sse_data(tg_buf *out, const char *data, size_t len);
/* An `id: n` line: put before an event's data, it is that event's id (the
 * value a reconnecting client sends back as Last-Event-ID). */
void tg_sse_id(tg_buf *out, uint64_t n);
/* The OpenAI end-of-stream marker: `data: [DONE]\n\n`. */
void tg_sse_done(tg_buf *out);
/* A comment line (keep-alive): `: text\n\n`. */
void tg_sse_comment(tg_buf *out, const char *text);

/* ---------------------------------------------------------------- parse -- */

typedef struct {
    const char *event; /* "message" unless an event field was given */
    const char *data;  /* data lines joined with '\n' (NUL-terminated) */
    size_t data_len;
    const char *id; /* last event id seen ("" if none) */
} tg_sse_msg;

/* Return nonzero from the callback to stop parsing (feed returns it). */
typedef int (*tg_sse_cb)(void *user, const tg_sse_msg *m);

typedef struct {
    tg_buf line;  /* the incomplete line */
    tg_buf data;  /* data of the event being built */
    tg_buf event; /* event name of the event being built */
    tg_buf id;    /* last event id */
    bool has_data;
    bool last_cr; /* previous chunk ended in CR: a leading LF is part of it */
    bool seen_bom_check;
    size_t max_event; /* bytes one event may hold (line + data); 0 = 1 MiB */
} tg_sse_parser;

void tg_sse_parser_init(tg_sse_parser *p, size_t max_event);
/* Feeds bytes. Returns 0, the callback's nonzero value, or -1 when an event
 * grew past max_event (the parser is then unusable). */
int tg_sse_parser_feed(tg_sse_parser *p, const char *buf, size_t len, tg_sse_cb cb, void *user);
void tg_sse_parser_free(tg_sse_parser *p);

#endif
