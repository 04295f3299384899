/* stopstr: stop strings with hold-back. See stopstr.h.
 *
 * Invariant: `held` never contains a whole stop string, and everything
 * already released ended at a point where no stop string could begin in it
 * and continue into later text. So after appending a chunk, the first match
 * (if any) lies wholly in `held`; otherwise the longest suffix of `held` that
 * is a proper prefix of some stop string is kept and the rest released. */
#include "engine/stopstr.h"

#include <stdlib.h>
#include <string.h>

void lfm_stop_init(lfm_stop *st, const char *const *stops, size_t n) {
    memset(st, 0, sizeof *st);
    if (!stops || n == 0) return;
    st->stops = calloc(n, sizeof *st->stops);
    st->lens = calloc(n, sizeof *st->lens);
    if (!st->stops || !st->lens) abort(); /* same policy as tg_buf */
    for (size_t i = 0; i < n; i++) {
        if (!stops[i] || !stops[i][0]) continue;
        size_t len = strlen(stops[i]);
        char *copy = malloc(len + 1);
        if (!copy) abort();
        memcpy(copy, stops[i], len + 1);
        st->stops[st->n] = copy;
        st->lens[st->n] = len;
        st->n++;
    }
}

void lfm_stop_free(lfm_stop *st) {
    for (size_t i = 0; i < st->n; i++)
        free(st->stops[i]);
    free(st->stops);
    free(st->lens);
    tg_buf_free(&st->held);
    memset(st, 0, sizeof *st);
}

/* Earliest start of any stop string in (s, n), or n when none. */
static size_t first_match(const lfm_stop *st, const char *s, size_t n) {
    size_t best = n;
    for (size_t i = 0; i < st->n; i++) {
        size_t l = st->lens[i];
        if (l > n) continue;
        const char *p = memmem(s, n, st->stops[i], l);
        if (p && (size_t)(p - s) < best) best = (size_t)(p - s);
    }
    return best;
}

/* Length of the longest suffix of (s, n) that is a proper prefix of some
 * stop string (0 when none). */
static size_t held_suffix(const lfm_stop *st, const char *s, size_t n) {
    size_t best = 0;
    for (size_t i = 0; i < st->n; i++) {
        size_t max = st->lens[i] - 1; /* proper prefix: a whole match was ruled out */
        if (max > n) max = n;
        for (size_t k = max; k > best; k--) {
            if (memcmp(s + n - k, st->stops[i], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

/* Moves a split point back so it does not fall inside a UTF-8 character. */
static size_t char_boundary(const char *s, size_t at) {
    while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80)
        at--;
    return at;
}

bool lfm_stop_push(lfm_stop *st, const char *text, size_t len, tg_buf *out) {
    if (st->stopped) return true;
    if (st->n == 0) {
        if (len) tg_buf_append(out, text, len);
        return false;
    }
    if (len) tg_buf_append(&st->held, text, len);
    const char *h = st->held.data;
    size_t n = st->held.len;
    if (n == 0) return false;
    size_t m = first_match(st, h, n);
    if (m < n) {
        if (m) tg_buf_append(out, h, m);
        st->stopped = true;
        tg_buf_clear(&st->held);
        return true;
    }
    size_t keep = held_suffix(st, h, n);
    size_t release = char_boundary(h, n - keep);
    if (release) {
        tg_buf_append(out, h, release);
        tg_buf_consume(&st->held, release);
    }
    return false;
}

void lfm_stop_flush(lfm_stop *st, tg_buf *out) {
    if (!st->stopped && st->held.len) tg_buf_append(out, st->held.data, st->held.len);
    tg_buf_clear(&st->held);
}
