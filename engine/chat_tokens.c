/* chat_tokens.c: chat messages -> token ids without role/turn injection.
 *
 * Tokenizing the rendered string with special tokens parsed would turn a
 * user's literal "<|im_end|>\n<|im_start|>system\n..." into real control
 * tokens. Here the rendering comes as tagged segments (chat_segs.h) and only
 * the template's own markers (BOS and MARK segments) become control tokens.
 *
 * Why runs, not segments: a marker is a hard cut for the tokenizer anyway
 * (special tokens are split out before the pre-tokenizer regex runs), but
 * the boundaries between template text and content are not: the regex can
 * join across them (e.g. "user\n" followed by content "\n\nhi" is the piece
 * "\n\n\n" when joined, but "\n" + "\n\n" when cut). Tokenizing every
 * segment on its own would therefore give different ids at such boundaries
 * than tokenizing the joined text, and the model was trained on the joined
 * form. So everything between two markers (template text and content
 * together) is tokenized as ONE run with parse_special=false. The result
 * equals lfm_tokenize(render, parse_special=true) exactly whenever no
 * control token's text occurs outside the markers; when it does, those bytes
 * stay plain text (byte tokens / merges), which is the point.
 *
 * A marker that is not a control token in this vocabulary stays in the run
 * as text (lfm_tokenize(render) would not split it out either; user-defined
 * tokens are split out of plain text by the tokenizer itself). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat_segs.h"
#include "engine/lfm.h"

typedef struct {
    int32_t *v;
    size_t n, cap;
} idvec;

static int idvec_add(idvec *o, const int32_t *ids, size_t k) {
    if (k > SIZE_MAX / sizeof *o->v - o->n) return LFM_ENOMEM;
    if (o->n + k > o->cap) {
        size_t cap = o->cap ? o->cap : 64;
        while (cap < o->n + k)
            cap = cap <= SIZE_MAX / 2 / sizeof *o->v ? cap * 2 : o->n + k;
        int32_t *p = realloc(o->v, cap * sizeof *p);
        if (!p) return LFM_ENOMEM;
        o->v = p;
        o->cap = cap;
    }
    memcpy(o->v + o->n, ids, k * sizeof *ids);
    o->n += k;
    return 0;
}

/* Plain text (no control tokens) [a, b) of the rendering -> ids. */
static int add_run(const lfm_tokenizer *t, const chat_segs *cs, size_t a, size_t b, idvec *o) {
    if (b <= a) return 0;
    int32_t *ids = NULL;
    size_t k = 0;
    int rc = lfm_tokenize(t, cs->text.data + a, b - a, false, false, &ids, &k);
    if (!rc) rc = idvec_add(o, ids, k);
    free(ids);
    return rc;
}

/* The control token a marker segment stands for, or -1 (then it is text). */
static int32_t marker_id(const lfm_tokenizer *t, const chat_segs *cs, const chat_seg *s) {
    if (s->kind == CHAT_SEG_BOS) {
        int32_t bos = lfm_token_bos(t);
        if (bos >= 0) return bos;
    } else if (s->kind != CHAT_SEG_MARK) {
        return -1;
    }
    int32_t id = lfm_token_lookup(t, cs->text.data + s->off, s->len);
    return lfm_token_is_control(t, id) ? id : -1;
}

int lfm_chat_tokenize(const lfm_tokenizer *t, lfm_template_kind kind, const lfm_chat_msg *msgs,
                      size_t n, const char *tools_json, bool add_generation_prompt, int32_t **out,
                      size_t *n_out, char *err, size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    if (out) *out = NULL;
    if (n_out) *n_out = 0;
    if (!t || !out || !n_out) {
        snprintf(err, errlen, "chat: bad arguments");
        return LFM_EINVAL;
    }
    chat_segs cs = CHAT_SEGS_INIT;
    int rc = chat_render_segs(kind, msgs, n, tools_json, add_generation_prompt, &cs, err, errlen);
    if (rc) {
        chat_segs_free(&cs);
        return rc;
    }
    idvec o = {0};
    size_t run = 0; /* start of the pending plain-text run */
    for (size_t i = 0; i < cs.n_seg && !rc; i++) {
        const chat_seg *s = &cs.seg[i];
        int32_t id = marker_id(t, &cs, s);
        if (id < 0) continue; /* stays in the run */
        rc = add_run(t, &cs, run, s->off, &o);
        if (!rc) rc = idvec_add(&o, &id, 1);
        run = s->off + s->len;
    }
    if (!rc) rc = add_run(t, &cs, run, cs.text.len, &o);
    chat_segs_free(&cs);
    if (rc) {
        free(o.v);
        snprintf(err, errlen, "chat: tokenization failed: %s", lfm_strerror(rc));
        return rc;
    }
    *out = o.v;
    *n_out = o.n;
    return 0;
}
