/* toolstream: decides, while text streams, what may go to the client now
 * and what must wait because it may be a tool call.
 *
 * LFM2 writes a call as <|tool_call_start|>[f(a=1)]<|tool_call_end|>. Text
 * before the marker streams as it comes; the bytes at the end that could
 * still grow into the marker are held; once the marker appears, everything
 * from it on is held for the tool-call parser at the end. The result does
 * not depend on how the text is split into pushes. */
#ifndef TG_TOOLSTREAM_H
#define TG_TOOLSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/tg_buf.h"

#define TG_TOOLSTREAM_MARKER "<|tool_call_start|>"

typedef struct {
    tg_buf held;
    bool capturing; /* the marker was seen */
} tg_toolstream;

void tg_toolstream_init(tg_toolstream *t);
/* Takes the next piece of text; appends to out what can be sent now. */
void tg_toolstream_push(tg_toolstream *t, const char *s, size_t n, tg_buf *out);
/* What is held: from the marker on when capturing, else a partial marker. */
const char *tg_toolstream_held(const tg_toolstream *t, size_t *len);
void tg_toolstream_free(tg_toolstream *t);

/* Parses the tool calls out of a whole output (text and calls): content gets
 * the text outside them, calls_json the OpenAI tool_calls array (with
 * "index" when stream_form); parallel false keeps the first call. Returns
 * the number of calls; 0 with content = the text as is when there is none
 * or it does not parse. */
size_t tg_toolstream_parse_calls(const char *text, size_t len, tg_buf *content, tg_buf *calls_json,
                                 bool stream_form, bool parallel);

#endif
