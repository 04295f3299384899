/* think: splits LFM2.5 output into reasoning and answer as it streams.
 *
 * LFM2.5 models think aloud first: `<think>\n...\n</think>\n\nanswer`. Only
 * a `<think>` at the very start of the output (after whitespace), or a
 * generation prompt that already opened one, starts reasoning; it ends at
 * the first `</think>`. Whitespace around the reasoning and at the start of
 * the answer after it is dropped (the template strips it from past turns
 * too); output without reasoning passes unchanged.
 * Everything after `</think>` is answer, a later literal `<think>` included.
 *
 * Streaming: text arrives in arbitrary pieces (a marker may be split across
 * tokens), so anything that could still be the start of a marker, and
 * reasoning's trailing whitespace (dropped if `</think>` follows), is held
 * back until the next piece decides it. */
#include <string.h>

#include "engine/lfm.h"

enum { TH_START, TH_THINK, TH_ANSWER_START, TH_ANSWER };

static const char OPEN[] = "<think>", CLOSE[] = "</think>";

static bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void lfm_think_init(lfm_think *t, bool start_inside) {
    memset(t, 0, sizeof *t);
    t->pend = (tg_buf)TG_BUF_INIT;
    t->state = start_inside ? TH_THINK : TH_START;
    t->reasoning_started = false;
}

void lfm_think_free(lfm_think *t) {
    tg_buf_free(&t->pend);
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of m. */
static size_t partial_suffix(const char *s, size_t n, const char *m) {
    size_t ml = strlen(m);
    for (size_t k = ml - 1 < n ? ml - 1 : n; k > 0; k--)
        if (memcmp(s + n - k, m, k) == 0) return k;
    return 0;
}

static void emit_reasoning(lfm_think *t, const char *s, size_t n, tg_buf *reasoning) {
    if (!t->reasoning_started) { /* leading whitespace of the reasoning */
        while (n > 0 && is_ws(*s))
            s++, n--;
        if (n == 0) return;
        t->reasoning_started = true;
    }
    if (reasoning) tg_buf_append(reasoning, s, n);
}

/* Processes pend as far as it can be decided; final = no more text comes. */
static void run(lfm_think *t, tg_buf *reasoning, tg_buf *content, bool final) {
    tg_buf *p = &t->pend;
    size_t i = 0; /* consumed bytes of pend */
    for (;;) {
        const char *s = p->data ? p->data + i : "";
        size_t n = p->len - i;
        if (t->state == TH_ANSWER_START) {
            size_t k = 0;
            while (k < n && is_ws(s[k]))
                k++;
            i += k;
            if (k == n) break; /* only whitespace so far */
            t->state = TH_ANSWER;
            continue;
        }
        if (t->state == TH_START) {
            /* Leading whitespace is dropped before <think>, kept otherwise. */
            size_t k = 0, ol = sizeof OPEN - 1;
            while (k < n && is_ws(s[k]))
                k++;
            if (n - k >= ol && memcmp(s + k, OPEN, ol) == 0) {
                i += k + ol;
                t->state = TH_THINK;
                continue;
            }
            if (!final && n - k < ol && memcmp(s + k, OPEN, n - k) == 0) break; /* maybe */
            t->state = TH_ANSWER;
            continue;
        }
        if (t->state == TH_ANSWER) {
            if (content) tg_buf_append(content, s, n);
            i += n;
            break;
        }
        /* TH_THINK */
        const char *e = n ? memmem(s, n, CLOSE, sizeof CLOSE - 1) : NULL;
        if (e) {
            size_t r = (size_t)(e - s);
            while (r > 0 && is_ws(s[r - 1]))
                r--;
            emit_reasoning(t, s, r, reasoning);
            i += (size_t)(e - s) + sizeof CLOSE - 1;
            t->state = TH_ANSWER_START;
            continue;
        }
        /* Trailing whitespace waits (dropped if </think> follows, or at the
         * end), and so does what may be the start of </think>. */
        size_t keep = final ? 0 : partial_suffix(s, n, CLOSE);
        size_t r = n - keep;
        while (r > 0 && is_ws(s[r - 1]))
            r--;
        emit_reasoning(t, s, r, reasoning);
        i += final ? n : r;
        break;
    }
    tg_buf_consume(p, i);
}

void lfm_think_push(lfm_think *t, const char *s, size_t n, tg_buf *reasoning, tg_buf *content) {
    if (n == 0) return;
    if (t->state == TH_ANSWER && t->pend.len == 0) { /* the common case: no copy */
        if (content) tg_buf_append(content, s, n);
        return;
    }
    tg_buf_append(&t->pend, s, n);
    run(t, reasoning, content, false);
}

void lfm_think_flush(lfm_think *t, tg_buf *reasoning, tg_buf *content) {
    run(t, reasoning, content, true);
    tg_buf_clear(&t->pend);
}

bool lfm_think_in_reasoning(const lfm_think *t) {
    return t->state == TH_THINK;
}
