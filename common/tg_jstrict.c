/* tg_jstrict: strict JSON check (contract in tg_jstrict.h).
 *
 * A recursive-descent pass over the text, depth bounded by max_depth, that
 * builds nothing but the decoded keys of the objects still open (to find
 * duplicates when each object closes: sort its keys, compare neighbours). */
#include "common/tg_jstrict.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_buf.h"

typedef struct {
    size_t off, len; /* decoded key in the arena */
    size_t src;      /* where the key starts in the input */
    const char *p;   /* set just before sorting */
} key_span;

typedef struct {
    bool is_obj;
    size_t index;      /* arrays: current item */
    size_t key;        /* objects: span index of the current key (SIZE_MAX: none yet) */
    size_t first_span; /* objects: this object's keys start here */
    size_t arena_mark; /* objects: arena length when the object opened */
} frame;

typedef struct {
    const unsigned char *s;
    size_t n, i;
    int depth, max_depth;
    frame *stack; /* [max_depth] */
    tg_buf arena;
    key_span *spans;
    size_t n_spans, cap_spans;
    tg_jstrict_err *err;
} parser;

/* ---------------------------------------------------------------- UTF-8 -- */

static size_t utf8_seq(const unsigned char *s, size_t n) {
    return tg_buf_utf8_seq_len((const char *)s, n);
}

size_t tg_jstrict_utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k) break;
        i += k;
    }
    return i;
}

/* ---------------------------------------------------------------- errors -- */

static void path_of(const parser *p, char *out, size_t outlen) {
    size_t w = 0;
    out[0] = 0;
    for (int d = 0; d < p->depth && w + 1 < outlen; d++) {
        const frame *f = &p->stack[d];
        int r;
        if (!f->is_obj) {
            r = snprintf(out + w, outlen - w, "[%zu]", f->index);
        } else {
            if (f->key == SIZE_MAX) break;
            const key_span *k = &p->spans[f->key];
            /* an empty key may leave the arena unallocated (data NULL) */
            const char *key = p->arena.data ? p->arena.data + k->off : "";
            r = snprintf(out + w, outlen - w, "%s%.*s", w ? "." : "", (int)k->len, key);
        }
        if (r < 0) break;
        w += (size_t)r;
        if (w >= outlen) w = outlen - 1;
    }
}

static int fail(parser *p, tg_jstrict_kind kind, size_t at, const char *msg) {
    tg_jstrict_err *e = p->err;
    if (e->kind != TG_JSTRICT_OK) return -1;
    e->kind = kind;
    e->offset = at;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    path_of(p, e->path, sizeof e->path);
    /* A path cut inside a multi-byte character must still be valid text. */
    e->path[tg_jstrict_utf8_valid_prefix(e->path, strlen(e->path))] = 0;
    return -1;
}

/* --------------------------------------------------------------- grammar -- */

static void skip_ws(parser *p) {
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

static int hex4(parser *p, size_t at, unsigned *out) {
    if (p->n - at < 4) return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p->s[at + (size_t)k];
        unsigned d = (c >= '0' && c <= '9')   ? (unsigned)(c - '0')
                     : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                     : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10)
                                              : 16u;
        if (d == 16) return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* A string at p->i (the opening quote). When key is not NULL the decoded
 * text is appended to it. */
static int parse_string(parser *p, tg_buf *key) {
    p->i++; /* opening quote */
    for (;;) {
        if (p->i >= p->n) return fail(p, TG_JSTRICT_SYNTAX, p->i, "unterminated string");
        size_t at = p->i;
        unsigned char c = p->s[at];
        if (c == '"') {
            p->i++;
            return 0;
        }
        if (c < 0x20) return fail(p, TG_JSTRICT_SYNTAX, at, "control character in a string");
        if (c == '\\') {
            if (at + 1 >= p->n) return fail(p, TG_JSTRICT_SYNTAX, at, "unterminated string");
            unsigned char e = p->s[at + 1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                static const char dec[] = "\"\\/\b\f\n\r\t";
                if (key) tg_buf_putc(key, dec[simple - "\"\\/bfnrt"]);
                p->i = at + 2;
                continue;
            }
            if (e != 'u') return fail(p, TG_JSTRICT_SYNTAX, at, "invalid escape in a string");
            unsigned u;
            if (hex4(p, at + 2, &u) != 0)
                return fail(p, TG_JSTRICT_SYNTAX, at, "invalid \\u escape in a string");
            unsigned long cp = u;
            p->i = at + 6;
            if (u >= 0xDC00 && u <= 0xDFFF)
                return fail(p, TG_JSTRICT_UTF8, at, "lone surrogate \\u escape");
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo;
                if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
                    hex4(p, p->i + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(p, TG_JSTRICT_UTF8, at, "lone surrogate \\u escape");
                cp = 0x10000 + (((unsigned long)u - 0xD800) << 10) + (lo - 0xDC00);
                p->i += 6;
            }
            if (key) tg_buf_put_utf8(key, cp);
            continue;
        }
        size_t k = utf8_seq(p->s + at, p->n - at);
        if (!k) return fail(p, TG_JSTRICT_UTF8, at, "invalid UTF-8");
        if (key) tg_buf_append(key, p->s + at, k);
        p->i = at + k;
    }
}

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static int parse_number(parser *p) {
    size_t at = p->i;
    if (p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || !is_digit(p->s[p->i]))
        return fail(p, TG_JSTRICT_SYNTAX, at, "invalid number");
    if (p->s[p->i] == '0') {
        p->i++;
        if (p->i < p->n && is_digit(p->s[p->i]))
            return fail(p, TG_JSTRICT_SYNTAX, at, "number with a leading zero");
    } else {
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || !is_digit(p->s[p->i]))
            return fail(p, TG_JSTRICT_SYNTAX, at, "invalid number");
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || !is_digit(p->s[p->i]))
            return fail(p, TG_JSTRICT_SYNTAX, at, "invalid number");
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    }
    return 0;
}

static int parse_literal(parser *p, const char *word) {
    size_t k = strlen(word);
    if (p->n - p->i < k || memcmp(p->s + p->i, word, k) != 0)
        return fail(p, TG_JSTRICT_SYNTAX, p->i, "unexpected character");
    p->i += k;
    return 0;
}

static int span_cmp(const void *a, const void *b) {
    const key_span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->src < y->src ? -1 : x->src > y->src;
}

/* The object on top of the stack closes: any key twice? */
static int check_duplicates(parser *p, frame *f) {
    size_t first = f->first_span, cnt = p->n_spans - first;
    if (cnt < 2) return 0;
    key_span *v = p->spans + first;
    for (size_t k = 0; k < cnt; k++)
        v[k].p = p->arena.data ? p->arena.data + v[k].off : ""; /* all keys empty: no arena */
    /* Sorting moves spans: remember which one is the current key by value. */
    qsort(v, cnt, sizeof *v, span_cmp);
    for (size_t k = 1; k < cnt; k++) {
        if (v[k].len != v[k - 1].len || memcmp(v[k].p, v[k - 1].p, v[k].len) != 0) continue;
        f->key = first + k; /* the path names the repeated key */
        return fail(p, TG_JSTRICT_DUPLICATE, v[k].src, "duplicate key");
    }
    return 0;
}

static int parse_value(parser *p);

static int parse_container(parser *p, bool is_obj) {
    size_t open = p->i;
    if (p->depth >= p->max_depth) return fail(p, TG_JSTRICT_DEPTH, open, "nested too deeply");
    frame *f = &p->stack[p->depth++];
    *f = (frame){is_obj, 0, SIZE_MAX, p->n_spans, p->arena.len};
    p->i++;
    skip_ws(p);
    char close = is_obj ? '}' : ']';
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return 0;
    }
    for (;;) {
        if (is_obj) {
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != '"')
                return fail(p, TG_JSTRICT_SYNTAX, p->i, "expected a string key");
            if (p->n_spans == p->cap_spans) {
                p->cap_spans = p->cap_spans ? p->cap_spans * 2 : 32;
                p->spans = realloc(p->spans, p->cap_spans * sizeof *p->spans);
                if (!p->spans) abort();
            }
            f->key = SIZE_MAX; /* an error inside the key names the object */
            key_span *k = &p->spans[p->n_spans];
            k->src = p->i;
            k->off = p->arena.len;
            if (parse_string(p, &p->arena) != 0) return -1;
            k->len = p->arena.len - k->off;
            f->key = p->n_spans++;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return fail(p, TG_JSTRICT_SYNTAX, p->i, "expected ':'");
            p->i++;
        }
        if (parse_value(p) != 0) return -1;
        skip_ws(p);
        if (p->i >= p->n) return fail(p, TG_JSTRICT_SYNTAX, p->i, "unexpected end of input");
        if (p->s[p->i] == ',') {
            p->i++;
            if (!is_obj) f->index++;
            continue;
        }
        if (p->s[p->i] != close)
            return fail(p, TG_JSTRICT_SYNTAX, p->i,
                        is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        p->i++;
        break;
    }
    if (is_obj) {
        if (check_duplicates(p, f) != 0) return -1;
        p->n_spans = f->first_span;
        p->arena.len = f->arena_mark;
    }
    p->depth--;
    return 0;
}

static int parse_value(parser *p) {
    skip_ws(p);
    if (p->i >= p->n) return fail(p, TG_JSTRICT_SYNTAX, p->i, "unexpected end of input");
    unsigned char c = p->s[p->i];
    switch (c) {
    case '{': return parse_container(p, true);
    case '[': return parse_container(p, false);
    case '"': return parse_string(p, NULL);
    case 't': return parse_literal(p, "true");
    case 'f': return parse_literal(p, "false");
    case 'n': return parse_literal(p, "null");
    default:
        if (c == '-' || is_digit(c)) return parse_number(p);
        return fail(p, TG_JSTRICT_SYNTAX, p->i, "unexpected character");
    }
}

int tg_jstrict_check(const char *s, size_t n, int max_depth, tg_jstrict_err *err) {
    memset(err, 0, sizeof *err);
    if (max_depth < 1) max_depth = 1;
    parser p = {.s = (const unsigned char *)s, .n = n, .max_depth = max_depth, .err = err};
    p.stack = calloc((size_t)max_depth, sizeof *p.stack);
    if (!p.stack) abort();
    int rc = parse_value(&p);
    if (rc == 0) {
        skip_ws(&p);
        if (p.i < p.n) {
            p.depth = 0;
            rc = fail(&p, TG_JSTRICT_SYNTAX, p.i, "trailing data after the JSON value");
        }
    }
    free(p.stack);
    free(p.spans);
    tg_buf_free(&p.arena);
    return rc;
}
