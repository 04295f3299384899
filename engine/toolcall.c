/* toolcall.c: parsing LFM2's tool calls out of generated text.
 *
 * The model writes <|tool_call_start|>[f(a="x", n=1), g()]<|tool_call_end|>
 * (Pythonic call syntax in a list); some fine-tunes write a JSON list
 * [{"name": "f", "arguments": {...}}] instead. Arguments come out as compact
 * JSON object text. The parser is a small data-only recursive descent over
 * Python literals (strings in both quote styles with escapes, ints, floats,
 * True/False/None, lists, tuples, dicts): nothing is evaluated. */
#include <stdlib.h>
#include <string.h>

#include "common/ljson.h"
#include "engine/lfm.h"

#define TC_START     "<|tool_call_start|>"
#define TC_END       "<|tool_call_end|>"
#define TC_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t n, i;
} cur;

static void ws(cur *c) {
    while (c->i < c->n && strchr(" \t\r\n", c->s[c->i]) && c->s[c->i])
        c->i++;
}

static bool eat(cur *c, char ch) {
    ws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return true;
    }
    return false;
}

static bool is_alpha(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}
static bool is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}

static bool hexn(cur *c, int digits, unsigned long *out) {
    if (c->n - c->i < (size_t)digits) return false;
    unsigned long v = 0;
    for (int k = 0; k < digits; k++) {
        char h = c->s[c->i + (size_t)k];
        v <<= 4;
        if (is_digit(h))
            v |= (unsigned long)(h - '0');
        else if (h >= 'a' && h <= 'f')
            v |= (unsigned long)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            v |= (unsigned long)(h - 'A' + 10);
        else
            return false;
    }
    c->i += (size_t)digits;
    *out = v;
    return true;
}

/* A Python string literal ('..' or ".."), decoded into raw bytes. */
static bool py_string(cur *c, tg_buf *raw) {
    char q = c->s[c->i++];
    for (;;) {
        if (c->i >= c->n) return false;
        char ch = c->s[c->i++];
        if (ch == q) return true;
        if (ch == '\n') return false;
        if (ch != '\\') {
            tg_buf_putc(raw, ch);
            continue;
        }
        if (c->i >= c->n) return false;
        char e = c->s[c->i++];
        unsigned long v;
        switch (e) {
        case 'n': tg_buf_putc(raw, '\n'); break;
        case 't': tg_buf_putc(raw, '\t'); break;
        case 'r': tg_buf_putc(raw, '\r'); break;
        case 'b': tg_buf_putc(raw, '\b'); break;
        case 'f': tg_buf_putc(raw, '\f'); break;
        case 'v': tg_buf_putc(raw, '\v'); break;
        case 'a': tg_buf_putc(raw, '\a'); break;
        case '0': tg_buf_putc(raw, '\0'); break;
        case '\\':
        case '\'':
        case '"': tg_buf_putc(raw, e); break;
        case '\n': break; /* line continuation */
        case 'x':
            if (!hexn(c, 2, &v)) return false;
            tg_buf_put_utf8(raw, v);
            break;
        case 'u':
            if (!hexn(c, 4, &v)) return false;
            tg_buf_put_utf8(raw, v);
            break;
        case 'U':
            if (!hexn(c, 8, &v)) return false;
            tg_buf_put_utf8(raw, v);
            break;
        default: /* Python keeps unknown escapes as written */
            tg_buf_putc(raw, '\\');
            tg_buf_putc(raw, e);
        }
    }
}

/* A Python number, written as a JSON number. */
static bool py_number(cur *c, tg_buf *out) {
    size_t i = c->i;
    bool neg = false;
    if (i < c->n && (c->s[i] == '-' || c->s[i] == '+')) neg = c->s[i++] == '-';
    size_t is = i;
    while (i < c->n && is_digit(c->s[i]))
        i++;
    size_t ie = i, fs = i, fe = i;
    bool frac = false;
    if (i < c->n && c->s[i] == '.') {
        frac = true;
        fs = ++i;
        while (i < c->n && is_digit(c->s[i]))
            i++;
        fe = i;
    }
    if (ie == is && fe == fs) return false;
    size_t es = i, ee = i;
    if (i < c->n && (c->s[i] == 'e' || c->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < c->n && (c->s[j] == '+' || c->s[j] == '-')) j++;
        if (j >= c->n || !is_digit(c->s[j])) return false;
        while (j < c->n && is_digit(c->s[j]))
            j++;
        es = i;
        ee = i = j;
    }
    if (i < c->n && (is_alpha(c->s[i]) || is_digit(c->s[i]))) return false;
    if (neg) tg_buf_putc(out, '-');
    while (is + 1 < ie && c->s[is] == '0')
        is++; /* no leading zeros in JSON */
    if (ie > is)
        tg_buf_append(out, c->s + is, ie - is);
    else
        tg_buf_putc(out, '0');
    if (frac) {
        tg_buf_putc(out, '.');
        if (fe > fs)
            tg_buf_append(out, c->s + fs, fe - fs);
        else
            tg_buf_putc(out, '0');
    }
    if (ee > es) tg_buf_append(out, c->s + es, ee - es);
    c->i = i;
    return true;
}

static bool py_value(cur *c, tg_buf *out, int depth);

/* [a, b] / (a, b) -> JSON array; trailing comma allowed. */
static bool py_seq(cur *c, tg_buf *out, char close, int depth) {
    c->i++;
    tg_buf_putc(out, '[');
    bool first = true;
    for (;;) {
        if (eat(c, close)) break;
        if (!first) {
            if (!eat(c, ',')) return false;
            if (eat(c, close)) break;
            tg_buf_putc(out, ',');
        }
        if (!py_value(c, out, depth + 1)) return false;
        first = false;
    }
    tg_buf_putc(out, ']');
    return true;
}

static bool py_dict(cur *c, tg_buf *out, int depth) {
    c->i++;
    tg_buf_putc(out, '{');
    bool first = true;
    for (;;) {
        if (eat(c, '}')) break;
        if (!first) {
            if (!eat(c, ',')) return false;
            if (eat(c, '}')) break;
            tg_buf_putc(out, ',');
        }
        ws(c);
        if (c->i >= c->n || (c->s[c->i] != '"' && c->s[c->i] != '\'')) return false;
        tg_buf key = TG_BUF_INIT;
        bool ok = py_string(c, &key);
        if (ok) tg_buf_json_str(out, key.data ? key.data : "", key.len);
        tg_buf_free(&key);
        if (!ok || !eat(c, ':')) return false;
        tg_buf_putc(out, ':');
        if (!py_value(c, out, depth + 1)) return false;
        first = false;
    }
    tg_buf_putc(out, '}');
    return true;
}

static bool word(cur *c, const char *w) {
    size_t l = strlen(w);
    if (c->n - c->i < l || memcmp(c->s + c->i, w, l) != 0) return false;
    if (c->i + l < c->n && (is_alpha(c->s[c->i + l]) || is_digit(c->s[c->i + l]))) return false;
    c->i += l;
    return true;
}

static bool py_value(cur *c, tg_buf *out, int depth) {
    if (depth > TC_MAX_DEPTH) return false;
    ws(c);
    if (c->i >= c->n) return false;
    char ch = c->s[c->i];
    if (ch == '"' || ch == '\'') {
        tg_buf raw = TG_BUF_INIT;
        bool ok = py_string(c, &raw);
        if (ok) tg_buf_json_str(out, raw.data ? raw.data : "", raw.len);
        tg_buf_free(&raw);
        return ok;
    }
    if (ch == '[') return py_seq(c, out, ']', depth);
    if (ch == '(') return py_seq(c, out, ')', depth);
    if (ch == '{') return py_dict(c, out, depth);
    static const char *const lits[][2] = {{"True", "true"}, {"False", "false"}, {"None", "null"},
                                          {"true", "true"}, {"false", "false"}, {"null", "null"}};
    for (size_t k = 0; k < sizeof lits / sizeof *lits; k++)
        if (word(c, lits[k][0])) {
            tg_buf_puts(out, lits[k][1]);
            return true;
        }
    return py_number(c, out);
}

typedef struct {
    lfm_tool_call *v;
    size_t n, cap;
} callvec;

static bool add_call(callvec *cv, const char *name, size_t nl, tg_buf *args) {
    if (cv->n == cv->cap) {
        size_t cap = cv->cap ? cv->cap * 2 : 4;
        lfm_tool_call *p = realloc(cv->v, cap * sizeof *p);
        if (!p) return false;
        cv->v = p;
        cv->cap = cap;
    }
    char *nm = malloc(nl + 1);
    if (!nm) return false;
    memcpy(nm, name, nl);
    nm[nl] = 0;
    if (!args->data) tg_buf_puts(args, "{}");
    cv->v[cv->n].name = nm;
    cv->v[cv->n].arguments_json = tg_buf_steal(args);
    cv->n++;
    return true;
}

/* name(k=v, ...) */
static bool py_call(cur *c, callvec *cv) {
    ws(c);
    size_t ns = c->i;
    while (c->i < c->n &&
           (is_alpha(c->s[c->i]) || is_digit(c->s[c->i]) || c->s[c->i] == '-' || c->s[c->i] == '.'))
        c->i++;
    size_t ne = c->i;
    if (ne == ns || !eat(c, '(')) return false;
    tg_buf args = TG_BUF_INIT;
    tg_buf_putc(&args, '{');
    bool first = true, ok = false;
    for (;;) {
        if (eat(c, ')')) {
            ok = true;
            break;
        }
        if (!first) {
            if (!eat(c, ',')) break;
            if (eat(c, ')')) {
                ok = true;
                break;
            }
            tg_buf_putc(&args, ',');
        }
        ws(c);
        size_t ks = c->i;
        while (c->i < c->n && (is_alpha(c->s[c->i]) || (c->i > ks && is_digit(c->s[c->i]))))
            c->i++;
        if (c->i == ks) break;
        tg_buf_json_str(&args, c->s + ks, c->i - ks);
        if (!eat(c, '=')) break;
        tg_buf_putc(&args, ':');
        if (!py_value(c, &args, 1)) break;
        first = false;
    }
    if (ok) {
        tg_buf_putc(&args, '}');
        ok = add_call(cv, c->s + ns, ne - ns, &args);
    }
    tg_buf_free(&args);
    return ok;
}

static bool parse_pythonic(const char *s, size_t n, callvec *cv) {
    cur c = {s, n, 0};
    ws(&c);
    bool list = c.i < c.n && c.s[c.i] == '[';
    if (list) {
        c.i++;
        bool first = true;
        for (;;) {
            if (eat(&c, ']')) break;
            if (!first) {
                if (!eat(&c, ',')) return false;
                if (eat(&c, ']')) break;
            }
            if (!py_call(&c, cv)) return false;
            first = false;
        }
    } else if (!py_call(&c, cv)) {
        return false;
    }
    ws(&c);
    return c.i == c.n;
}

static bool json_call(const ljson *o, callvec *cv) {
    if (!o || o->type != LJ_OBJ) return false;
    const ljson *fn = ljson_get(o, "function");
    if (fn && fn->type == LJ_OBJ) o = fn;
    const ljson *name = ljson_get(o, "name"), *args = ljson_get(o, "arguments");
    if (!args) args = ljson_get(o, "parameters");
    if (!name || name->type != LJ_STR || name->len == 0 || memchr(name->str, 0, name->len))
        return false;
    ljson *parsed = NULL;
    if (args && args->type == LJ_STR) {
        parsed = ljson_parse(args->str, args->len, NULL, 0);
        args = parsed;
    }
    bool ok = false;
    if (!args || args->type == LJ_OBJ) {
        tg_buf b = TG_BUF_INIT;
        if (args) ljson_write(&b, args, LJSON_COMPACT);
        ok = add_call(cv, name->str, name->len, &b);
        tg_buf_free(&b);
    }
    ljson_free(parsed);
    return ok;
}

static bool parse_json_form(const char *s, size_t n, callvec *cv) {
    ljson *v = ljson_parse(s, n, NULL, 0);
    if (!v) return false;
    bool ok = true;
    if (v->type == LJ_ARR)
        for (size_t i = 0; i < v->n && ok; i++)
            ok = json_call(v->items[i], cv);
    else
        ok = json_call(v, cv);
    ljson_free(v);
    return ok;
}

/* Drops the calls a failed block added. */
static void rollback(callvec *cv, size_t keep) {
    for (size_t i = keep; i < cv->n; i++) {
        free(cv->v[i].name);
        free(cv->v[i].arguments_json);
    }
    cv->n = keep;
}

void lfm_tool_calls_free(lfm_tool_call *calls, size_t n) {
    if (!calls) return;
    for (size_t i = 0; i < n; i++) {
        free(calls[i].name);
        free(calls[i].arguments_json);
    }
    free(calls);
}

int lfm_parse_tool_calls(const char *text, size_t len, tg_buf *content, lfm_tool_call **calls,
                         size_t *n_calls) {
    if (!calls || !n_calls || (!text && len)) return LFM_EINVAL;
    *calls = NULL;
    *n_calls = 0;
    if (!text) text = "";
    size_t content_start = content ? content->len : 0;
    callvec cv = {0};
    const size_t sl = strlen(TC_START), el = strlen(TC_END);
    size_t pos = 0;
    bool bad = false;
    while (pos < len) {
        const char *st = memmem(text + pos, len - pos, TC_START, sl);
        if (!st) break;
        size_t a = (size_t)(st - text);
        if (content) tg_buf_append(content, text + pos, a - pos);
        size_t body = a + sl;
        const char *en = memmem(text + body, len - body, TC_END, el);
        /* A block cut off before its end marker still counts if it parses. */
        size_t be = en ? (size_t)(en - text) : len;
        size_t before = cv.n;
        if (!parse_pythonic(text + body, be - body, &cv)) {
            rollback(&cv, before);
            bad = !parse_json_form(text + body, be - body, &cv);
        }
        if (bad) break;
        pos = en ? be + el : len;
    }
    if (bad) {
        lfm_tool_calls_free(cv.v, cv.n);
        if (content) {
            content->len = content_start;
            tg_buf_append(content, text, len);
        }
        return LFM_EINVAL;
    }
    if (content && pos < len) tg_buf_append(content, text + pos, len - pos);
    if (content && !content->data) tg_buf_append(content, "", 0);
    *calls = cv.v;
    *n_calls = cv.n;
    return (int)cv.n;
}
