/* toolstream: hold back possible tool calls in streamed text. */
#include "gateway/api/toolstream.h"

#include <stdlib.h>
#include <string.h>

#include "common/tg_log.h"
#include "engine/lfm.h"
#include "gateway/api/openai_api.h"

void tg_toolstream_init(tg_toolstream *t) {
    memset(t, 0, sizeof *t);
}

void tg_toolstream_free(tg_toolstream *t) {
    tg_buf_free(&t->held);
}

/* Length of the longest suffix of (s, n) that is a proper prefix of the
 * marker: those bytes must wait for the next piece. */
static size_t marker_suffix(const char *s, size_t n) {
    size_t m = strlen(TG_TOOLSTREAM_MARKER);
    size_t max = n < m - 1 ? n : m - 1;
    for (size_t k = max; k > 0; k--)
        if (!memcmp(s + n - k, TG_TOOLSTREAM_MARKER, k)) return k;
    return 0;
}

void tg_toolstream_push(tg_toolstream *t, const char *s, size_t n, tg_buf *out) {
    tg_buf_append(&t->held, s, n);
    if (t->capturing || !t->held.len) return;
    const char *hit =
        memmem(t->held.data, t->held.len, TG_TOOLSTREAM_MARKER, strlen(TG_TOOLSTREAM_MARKER));
    if (hit) {
        size_t pre = (size_t)(hit - t->held.data);
        tg_buf_append(out, t->held.data, pre);
        tg_buf_consume(&t->held, pre);
        t->capturing = true;
        return;
    }
    size_t keep = marker_suffix(t->held.data, t->held.len);
    tg_buf_append(out, t->held.data, t->held.len - keep);
    tg_buf_consume(&t->held, t->held.len - keep);
}

const char *tg_toolstream_held(const tg_toolstream *t, size_t *len) {
    *len = t->held.len;
    return t->held.data ? t->held.data : "";
}

/* Parses tool calls out of text; on success fills content and the calls
 * JSON (NULL when there are none). */
size_t tg_toolstream_parse_calls(const char *text, size_t len, tg_buf *content, tg_buf *calls_json,
                                 bool stream_form, bool parallel) {
    lfm_tool_call *calls = NULL;
    size_t n = 0;
    int rc = lfm_parse_tool_calls(text, len, content, &calls, &n);
    if (rc > 0 && !parallel && n > 1) { /* parallel_tool_calls false: the first call only */
        for (size_t i = 1; i < n; i++) {
            free(calls[i].name);
            free(calls[i].arguments_json);
        }
        n = 1;
    }
    if (rc <= 0 || n == 0) {
        /* No call, or a malformed one: the text goes back as plain content. */
        if (rc < 0) tg_log_warn("tool_call_unparsed", "bytes=%zu", len);
        tg_buf_clear(content);
        tg_buf_append(content, text, len);
        lfm_tool_calls_free(calls, n);
        return 0;
    }
    tg_oai_tool_calls_json(calls_json, calls, n, stream_form);
    lfm_tool_calls_free(calls, n);
    return n;
}
