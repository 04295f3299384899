/* detok.c: ids -> text, streaming. A token may end in the middle of a
 * multi-byte UTF-8 character (byte-level BPE); those bytes wait in the
 * detok state until the character is complete, so every chunk handed out is
 * valid UTF-8. Ill-formed sequences become U+FFFD (one per maximal
 * ill-formed subpart, as Unicode recommends). */
#include <string.h>

#include "engine/tok_internal.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD";

void lfm_detok_init(lfm_detok *d) {
    memset(d, 0, sizeof *d);
}

/* Appends the valid UTF-8 of s[0..n) to out; an incomplete tail of at most
 * 3 bytes is kept in d->pending. */
static void emit(lfm_detok *d, const unsigned char *s, size_t n, tg_buf *out) {
    size_t i = 0, run = 0; /* run: start of the pending valid stretch */
    while (i < n) {
        uint32_t cp;
        int r = tok_utf8_next(s + i, n - i, &cp);
        if (r > 0) {
            i += (size_t)r;
            continue;
        }
        if (i > run) tg_buf_append(out, s + run, i - run);
        if (r == 0) { /* incomplete character at the end: keep for later */
            memcpy(d->pending, s + i, n - i);
            d->n_pending = (int)(n - i);
            return;
        }
        tg_buf_append(out, REPLACEMENT, 3);
        i += (size_t)-r;
        run = i;
    }
    if (n > run) tg_buf_append(out, s + run, n - run);
    d->n_pending = 0;
}

void lfm_detok_push(lfm_detok *d, const lfm_tokenizer *t, int32_t id, tg_buf *out) {
    if (!d || !out) return;
    const unsigned char *s = (const unsigned char *)"";
    size_t n = 0;
    if (t && id >= 0 && id < t->n_vocab) {
        s = (const unsigned char *)t->dec_pool + t->dec_off[id];
        n = t->dec_len[id];
    }
    if (d->n_pending <= 0 || d->n_pending > 3) {
        d->n_pending = 0;
        emit(d, s, n, out);
        return;
    }
    /* Complete the pending character with the first bytes of this token. */
    unsigned char head[8];
    size_t np = (size_t)d->n_pending, take = n < 4 ? n : 4;
    memcpy(head, d->pending, np);
    memcpy(head + np, s, take);
    size_t hn = np + take, used = 0;
    /* Resolve characters that start inside the pending bytes. */
    d->n_pending = 0;
    while (used < np) {
        uint32_t cp;
        int r = tok_utf8_next(head + used, hn - used, &cp);
        if (r > 0) {
            tg_buf_append(out, head + used, (size_t)r);
            used += (size_t)r;
        } else if (r == 0) { /* still incomplete: the token was too short */
            memcpy(d->pending, head + used, hn - used);
            d->n_pending = (int)(hn - used);
            return;
        } else {
            tg_buf_append(out, REPLACEMENT, 3);
            used += (size_t)-r;
        }
    }
    size_t from_tok = used - np; /* bytes of the token already consumed */
    emit(d, s + from_tok, n - from_tok, out);
}

void lfm_detok_flush(lfm_detok *d, tg_buf *out) {
    if (!d) return;
    if (d->n_pending > 0 && out) tg_buf_append(out, REPLACEMENT, 3);
    d->n_pending = 0;
}
