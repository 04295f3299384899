/* ljson.c: see ljson.h. */
#include "common/ljson.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
    bool failed;
} parser;

__attribute__((format(printf, 2, 3))) static void fail(parser *p, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = true;
    if (!p->err || !p->errlen) return;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "JSON at offset %zu: %s", p->i, msg);
}

static void skip_ws(parser *p) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

void ljson_free(ljson *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items) ljson_free(v->items[i]);
        if (v->keys) ljson_free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static ljson *node(parser *p, ljson_type t) {
    ljson *v = calloc(1, sizeof *v);
    if (!v)
        fail(p, "out of memory");
    else
        v->type = t;
    return v;
}

static int hex4(parser *p, unsigned *out) {
    if (p->n - p->i < 4) return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i + (size_t)k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    p->i += 4;
    *out = v;
    return 0;
}

/* At the opening quote. Lone surrogates decode to U+FFFD. */
static ljson *parse_string(parser *p) {
    p->i++;
    tg_buf b = TG_BUF_INIT;
    tg_buf_reserve(&b, 16);
    for (;;) {
        if (p->i >= p->n) {
            fail(p, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            ljson *v = node(p, LJ_STR);
            if (!v) break;
            v->len = b.len;
            v->str = tg_buf_steal(&b);
            if (!v->str) v->str = calloc(1, 1);
            return v;
        }
        if (c < 0x20) {
            fail(p, "control character in string");
            break;
        }
        if (c != '\\') {
            size_t j = p->i;
            while (j < p->n && p->s[j] != '"' && p->s[j] != '\\' && (unsigned char)p->s[j] >= 0x20)
                j++;
            tg_buf_append(&b, p->s + p->i, j - p->i);
            p->i = j;
            continue;
        }
        p->i++;
        if (p->i >= p->n) {
            fail(p, "unterminated escape");
            break;
        }
        char e = p->s[p->i++];
        switch (e) {
        case '"': tg_buf_putc(&b, '"'); break;
        case '\\': tg_buf_putc(&b, '\\'); break;
        case '/': tg_buf_putc(&b, '/'); break;
        case 'b': tg_buf_putc(&b, '\b'); break;
        case 'f': tg_buf_putc(&b, '\f'); break;
        case 'n': tg_buf_putc(&b, '\n'); break;
        case 'r': tg_buf_putc(&b, '\r'); break;
        case 't': tg_buf_putc(&b, '\t'); break;
        case 'u': {
            unsigned u;
            if (hex4(p, &u)) {
                fail(p, "bad \\u escape");
                goto out;
            }
            if (u >= 0xD800 && u <= 0xDBFF && p->n - p->i >= 6 && p->s[p->i] == '\\' &&
                p->s[p->i + 1] == 'u') {
                size_t save = p->i;
                unsigned lo;
                p->i += 2;
                if (hex4(p, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                    tg_buf_put_utf8(&b, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                    break;
                }
                p->i = save;
            }
            tg_buf_put_utf8(&b, (u >= 0xD800 && u <= 0xDFFF) ? 0xFFFD : u);
            break;
        }
        default:
            p->i--;
            fail(p, "bad escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
            goto out;
        }
    }
out:
    tg_buf_free(&b);
    return NULL;
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static ljson *parse_number(parser *p) {
    size_t st = p->i;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || !is_digit(p->s[p->i])) {
        fail(p, "bad number");
        return NULL;
    }
    if (p->s[p->i] == '0')
        p->i++;
    else
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || !is_digit(p->s[p->i])) {
            fail(p, "bad number fraction");
            return NULL;
        }
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || !is_digit(p->s[p->i])) {
            fail(p, "bad number exponent");
            return NULL;
        }
        while (p->i < p->n && is_digit(p->s[p->i]))
            p->i++;
    }
    ljson *v = node(p, LJ_NUM);
    if (!v) return NULL;
    v->len = p->i - st;
    v->str = malloc(v->len + 1);
    if (!v->str) {
        free(v);
        fail(p, "out of memory");
        return NULL;
    }
    memcpy(v->str, p->s + st, v->len);
    v->str[v->len] = 0;
    return v;
}

static ljson *parse_value(parser *p, int depth);

static bool add_item(parser *p, ljson *v, ljson *key, ljson *item, size_t *cap) {
    if (v->n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        ljson **ni = realloc(v->items, c * sizeof *ni);
        if (ni) v->items = ni;
        ljson **nk = ni && v->type == LJ_OBJ ? realloc(v->keys, c * sizeof *nk) : NULL;
        if (nk) v->keys = nk;
        if (!ni || (v->type == LJ_OBJ && !nk)) {
            fail(p, "out of memory");
            ljson_free(key);
            ljson_free(item);
            return false;
        }
        *cap = c;
    }
    if (v->type == LJ_OBJ) v->keys[v->n] = key;
    v->items[v->n++] = item;
    return true;
}

static ljson *parse_container(parser *p, int depth, bool obj) {
    char close = obj ? '}' : ']';
    p->i++;
    ljson *v = node(p, obj ? LJ_OBJ : LJ_ARR);
    if (!v) return NULL;
    size_t cap = 0;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return v;
    }
    for (;;) {
        ljson *key = NULL;
        skip_ws(p);
        if (obj) {
            if (p->i >= p->n || p->s[p->i] != '"') {
                fail(p, "expected a string key");
                break;
            }
            key = parse_string(p);
            if (!key) break;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                ljson_free(key);
                fail(p, "expected ':'");
                break;
            }
            p->i++;
        }
        ljson *item = parse_value(p, depth + 1);
        if (!item) {
            ljson_free(key);
            break;
        }
        if (!add_item(p, v, key, item, &cap)) break;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return v;
        }
        fail(p, "expected ',' or '%c'", close);
        break;
    }
    ljson_free(v);
    return NULL;
}

static ljson *parse_value(parser *p, int depth) {
    if (depth > LJSON_MAX_DEPTH) {
        fail(p, "nested too deeply");
        return NULL;
    }
    skip_ws(p);
    if (p->i >= p->n) {
        fail(p, "unexpected end");
        return NULL;
    }
    char c = p->s[p->i];
    if (c == '{') return parse_container(p, depth, true);
    if (c == '[') return parse_container(p, depth, false);
    if (c == '"') return parse_string(p);
    if (c == '-' || is_digit(c)) return parse_number(p);
    static const struct {
        const char *w;
        ljson_type t;
    } lits[] = {{"null", LJ_NULL}, {"true", LJ_TRUE}, {"false", LJ_FALSE}};
    for (size_t k = 0; k < 3; k++) {
        size_t l = strlen(lits[k].w);
        if (p->n - p->i >= l && memcmp(p->s + p->i, lits[k].w, l) == 0) {
            p->i += l;
            return node(p, lits[k].t);
        }
    }
    fail(p, "unexpected character");
    return NULL;
}

ljson *ljson_parse(const char *s, size_t n, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    parser p = {s ? s : "", s ? n : 0, 0, err, errlen, false};
    ljson *v = parse_value(&p, 0);
    if (!v) return NULL;
    skip_ws(&p);
    if (p.i != p.n) {
        fail(&p, "trailing characters");
        ljson_free(v);
        return NULL;
    }
    return v;
}

const ljson *ljson_get(const ljson *obj, const char *key) {
    if (!obj || obj->type != LJ_OBJ) return NULL;
    size_t kl = strlen(key);
    for (size_t i = obj->n; i-- > 0;)
        if (obj->keys[i]->len == kl && memcmp(obj->keys[i]->str, key, kl) == 0)
            return obj->items[i];
    return NULL;
}

void ljson_write(tg_buf *b, const ljson *v, ljson_style style) {
    const char *comma = style == LJSON_PYTHON ? ", " : ",";
    const char *colon = style == LJSON_PYTHON ? ": " : ":";
    switch (v->type) {
    case LJ_NULL: tg_buf_puts(b, "null"); break;
    case LJ_TRUE: tg_buf_puts(b, "true"); break;
    case LJ_FALSE: tg_buf_puts(b, "false"); break;
    case LJ_NUM: tg_buf_append(b, v->str, v->len); break;
    case LJ_STR: tg_buf_json_str(b, v->str, v->len); break;
    case LJ_ARR:
    case LJ_OBJ:
        tg_buf_putc(b, v->type == LJ_ARR ? '[' : '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i) tg_buf_puts(b, comma);
            if (v->type == LJ_OBJ) {
                tg_buf_json_str(b, v->keys[i]->str, v->keys[i]->len);
                tg_buf_puts(b, colon);
            }
            ljson_write(b, v->items[i], style);
        }
        tg_buf_putc(b, v->type == LJ_ARR ? ']' : '}');
        break;
    }
}
