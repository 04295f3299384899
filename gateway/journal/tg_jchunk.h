/* tg_jchunk: the payload of a CHUNK record, one streamed SSE event of a
 * request: {"n":N,"data":DATA}. N (1, 2, 3, ...) is the event's number
 * within its request, the SSE `id:` the client saw; DATA is the event's
 * data, a JSON value written by the gateway. A fixed layout, so the checker
 * and a replay read N and DATA without a JSON parser; the whole payload is
 * still JSON, so `journal dump` shows it as it is. */
#ifndef TG_JCHUNK_H
#define TG_JCHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"

/* The largest event number: far past any stream (a 2^53 bound keeps it a
 * JSON number every reader takes exactly). */
#define TG_JCHUNK_N_MAX ((uint64_t)1 << 53)

/* Appends the payload for event n (1..TG_JCHUNK_N_MAX) carrying data. */
void tg_jchunk_encode(tg_buf *out, uint64_t n, const char *data, size_t len);

/* Reads a payload: 0 and *n, *data (into p), *len; -1 when it is not in
 * the layout above (the record is hostile input like any other). */
int tg_jchunk_decode(const uint8_t *p, size_t plen, uint64_t *n, const char **data, size_t *len);

/* Parses a decimal event number as sent in an SSE id or a Last-Event-ID
 * header: 1..19 digits, no sign or space, at most TG_JCHUNK_N_MAX; "0" is
 * allowed (nothing seen yet). 0 and *n, or -1. */
int tg_jchunk_parse_n(const char *s, size_t len, uint64_t *n);

#endif
