/* stopstr: stop-string matching over streamed text, with hold-back.
 *
 * Generated text arrives in chunks (one per token). A stop string may span
 * chunks, so text that could still turn out to be the start of a stop string
 * is held back until it is decided. Whatever is released is final: the stop
 * string itself and anything after it is never released.
 *
 * Matching is on bytes. Released text never ends inside a multi-byte UTF-8
 * character that the input had whole (the split point is moved back to a
 * character boundary), so complete-UTF-8 input gives complete-UTF-8 output. */
#ifndef LFM_STOPSTR_H
#define LFM_STOPSTR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/tg_buf.h"

typedef struct {
    char **stops; /* owned copies; empty strings are dropped */
    size_t *lens;
    size_t n;
    tg_buf held;  /* text received but not yet released */
    bool stopped; /* a stop string was found: everything after is dropped */
} lfm_stop;

/* Copies the stop strings (NULL entries and empty strings are ignored). */
void lfm_stop_init(lfm_stop *st, const char *const *stops, size_t n);
void lfm_stop_free(lfm_stop *st);

/* Feeds a chunk. Appends the text that is now safe to release to `out`.
 * Returns true when a stop string was found (now or earlier): `out` then got
 * the text before it and all later input is ignored. */
bool lfm_stop_push(lfm_stop *st, const char *text, size_t len, tg_buf *out);

/* End of stream without a stop string: releases what is held. */
void lfm_stop_flush(lfm_stop *st, tg_buf *out);

#endif
