/* schema: JSON Schema (OpenAI's strict subset) -> lfm_schema node graph.
 *
 * The text is parsed with the engine's own strict JSON reader (ljson) and
 * compiled node by node. $ref targets are compiled once each and may be
 * recursive: a node index is reserved before its body is compiled, so a
 * reference back to it resolves to that index. Everything is bounded
 * (nodes, set sizes, nesting via ljson's depth limit) because the schema is
 * caller input. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ljson.h"
#include "engine/grammar_impl.h"

typedef struct {
    lfm_schema *s;
    const ljson *root;
    unsigned flags;
    char *kw;
    size_t kwlen;
    char *err;
    size_t errlen;
    /* $ref memo: compiled ljson schema -> node */
    const ljson **memo_v;
    int32_t *memo_n;
    int n_memo, cap_memo;
    char path[256];
} cctx;

static int fail(cctx *c, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(cctx *c, const char *kw, const char *fmt, ...) {
    if (c->kw && c->kwlen) snprintf(c->kw, c->kwlen, "%s", kw ? kw : "");
    if (c->err && c->errlen) {
        char m[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof m, fmt, ap);
        va_end(ap);
        snprintf(c->err, c->errlen, "%s (at %s)", m, c->path[0] ? c->path : "/");
    }
    return -1;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            int nc_ = (cap) ? (cap)*2 : 16;                                                        \
            void *p_ = realloc((arr), (size_t)nc_ * sizeof *(arr));                                \
            if (!p_) abort();                                                                      \
            (arr) = p_;                                                                            \
            (cap) = nc_;                                                                           \
        }                                                                                          \
    } while (0)

static int new_node(cctx *c, gn_kind k) {
    lfm_schema *s = c->s;
    if (s->n_nodes >= GN_MAX_NODES)
        return fail(c, NULL, "schema too large (over %d nodes)", GN_MAX_NODES);
    GROW(s->nodes, s->n_nodes, s->cap_nodes);
    s->nodes[s->n_nodes] = (gnode){.kind = (uint8_t)k, .d = -1};
    return s->n_nodes++;
}

static int add_lit(cctx *c, const ljson *v) {
    tg_buf b = TG_BUF_INIT;
    ljson_write(&b, v, LJSON_COMPACT);
    GROW(c->s->lits, c->s->n_lits, c->s->cap_lits);
    c->s->lits[c->s->n_lits].len = (uint32_t)b.len;
    c->s->lits[c->s->n_lits].text = tg_buf_steal(&b);
    return c->s->n_lits++;
}

static const char *const k_descriptive[] = {"title",    "description", "$schema",  "$id",
                                            "$comment", "default",     "examples", "strict"};
static const char *const k_structural[] = {
    "type",  "properties", "required", "additionalProperties", "items", "enum",
    "const", "anyOf",      "$defs",    "definitions",          "$ref"};

static bool in_list(const char *k, const char *const *l, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, l[i])) return true;
    return false;
}

static int compile(cctx *c, const ljson *v, int32_t into);

/* Compiles v (or finds it compiled) and returns its node. */
static int compile_new(cctx *c, const ljson *v) {
    for (int i = 0; i < c->n_memo; i++)
        if (c->memo_v[i] == v) return c->memo_n[i];
    int n = new_node(c, GN_UNSET);
    if (n < 0) return -1;
    if (c->n_memo == c->cap_memo) {
        c->cap_memo = c->cap_memo ? c->cap_memo * 2 : 16;
        c->memo_v = realloc(c->memo_v, (size_t)c->cap_memo * sizeof *c->memo_v);
        c->memo_n = realloc(c->memo_n, (size_t)c->cap_memo * sizeof *c->memo_n);
        if (!c->memo_v || !c->memo_n) abort();
    }
    c->memo_v[c->n_memo] = v;
    c->memo_n[c->n_memo++] = n;
    return compile(c, v, n) < 0 ? -1 : n;
}

static int compile_child(cctx *c, const ljson *v, const char *seg) {
    size_t pl = strlen(c->path);
    snprintf(c->path + pl, sizeof c->path - pl, "/%s", seg);
    int n = compile_new(c, v);
    c->path[pl] = 0;
    return n;
}

static int resolve_ref(cctx *c, const ljson *ref) {
    if (ref->type != LJ_STR) return fail(c, "$ref", "$ref must be a string");
    const char *r = ref->str;
    if (!strcmp(r, "#")) return compile_new(c, c->root);
    const char *name = NULL, *sect = NULL;
    if (!strncmp(r, "#/$defs/", 8)) {
        sect = "$defs";
        name = r + 8;
    } else if (!strncmp(r, "#/definitions/", 14)) {
        sect = "definitions";
        name = r + 14;
    } else {
        return fail(c, "$ref",
                    "$ref '%.80s' is not supported (only #, #/$defs/NAME, #/definitions/NAME)", r);
    }
    const ljson *defs = ljson_get(c->root, sect);
    const ljson *d =
        defs && defs->type == LJ_OBJ && !strchr(name, '/') ? ljson_get(defs, name) : NULL;
    if (!d) return fail(c, "$ref", "$ref '%.80s' points nowhere", r);
    return compile_child(c, d, name);
}

static int type_node(cctx *c, const ljson *v, const char *t) {
    const ljson *x;
    if (!strcmp(t, "string")) return new_node(c, GN_STRING);
    if (!strcmp(t, "number")) return new_node(c, GN_NUMBER);
    if (!strcmp(t, "integer")) return new_node(c, GN_INTEGER);
    if (!strcmp(t, "boolean") || !strcmp(t, "null")) {
        int n = new_node(c, GN_LITERALS);
        if (n < 0) return -1;
        ljson lt = {.type = LJ_TRUE}, lf = {.type = LJ_FALSE}, ln = {.type = LJ_NULL};
        c->s->nodes[n].a = c->s->n_lits;
        if (!strcmp(t, "null")) {
            add_lit(c, &ln);
            c->s->nodes[n].b = 1;
        } else {
            add_lit(c, &lt);
            add_lit(c, &lf);
            c->s->nodes[n].b = 2;
        }
        return n;
    }
    if (!strcmp(t, "array")) {
        int n = new_node(c, GN_ARRAY);
        if (n < 0) return -1;
        c->s->nodes[n].a = GN_IDX_ANY;
        if ((x = ljson_get(v, "items"))) {
            if (x->type != LJ_OBJ && x->type != LJ_TRUE)
                return fail(c, "items", "items must be a schema object");
            if (x->type == LJ_OBJ) {
                int it = compile_child(c, x, "items");
                if (it < 0) return -1;
                c->s->nodes[n].a = it;
            }
        }
        static const char *const mm[2] = {"minItems", "maxItems"};
        for (int k = 0; k < 2; k++) {
            if (!(x = ljson_get(v, mm[k]))) continue;
            if (x->type != LJ_NUM || strspn(x->str, "0123456789") != x->len || x->len > 6)
                return fail(c, mm[k], "%s must be a small non-negative integer", mm[k]);
            if (k == 0)
                c->s->nodes[n].c = atoi(x->str);
            else
                c->s->nodes[n].d = atoi(x->str);
        }
        return n;
    }
    if (!strcmp(t, "object")) {
        const ljson *props = ljson_get(v, "properties"), *req = ljson_get(v, "required"),
                    *ap = ljson_get(v, "additionalProperties");
        if (ap && ap->type != LJ_FALSE && ap->type != LJ_TRUE && ap->type != LJ_OBJ)
            return fail(c, "additionalProperties",
                        "additionalProperties must be a boolean or schema");
        if (props && props->type != LJ_OBJ)
            return fail(c, "properties", "properties must be an object");
        if (req && req->type != LJ_ARR) return fail(c, "required", "required must be an array");
        /* No declared properties and not closed: any object. */
        if ((!props || props->n == 0) && !(ap && ap->type == LJ_FALSE)) {
            if (req && req->n) return fail(c, "required", "required names undeclared properties");
            return new_node(c, GN_ANYOBJ);
        }
        size_t np = props ? props->n : 0;
        if (np > GN_MAX_SET) return fail(c, "properties", "more than %d properties", GN_MAX_SET);
        for (size_t i = 0; req && i < req->n; i++) {
            bool found = false;
            if (req->items[i]->type != LJ_STR)
                return fail(c, "required", "required holds a non-string");
            for (size_t k = 0; k < np && !found; k++)
                found = !strcmp(props->keys[k]->str, req->items[i]->str);
            if (!found)
                return fail(c, "required", "required names '%.60s', which is not in properties",
                            req->items[i]->str);
        }
        int n = new_node(c, GN_OBJECT);
        if (n < 0) return -1;
        /* Props are contiguous: reserve them before compiling children. */
        int first = c->s->n_props;
        for (size_t k = 0; k < np; k++) {
            for (size_t j = 0; j < k; j++)
                if (!strcmp(props->keys[j]->str, props->keys[k]->str))
                    return fail(c, "properties", "property '%.60s' twice", props->keys[k]->str);
            GROW(c->s->props, c->s->n_props, c->s->cap_props);
            gprop *p = &c->s->props[c->s->n_props++];
            tg_buf b = TG_BUF_INIT;
            tg_buf_json_str(&b, props->keys[k]->str, props->keys[k]->len);
            p->len = (uint32_t)(b.len - 2);
            p->name = malloc(p->len + 1);
            if (!p->name) abort();
            memcpy(p->name, b.data + 1, p->len);
            p->name[p->len] = 0;
            tg_buf_free(&b);
            p->node = -1;
            p->required = false;
            for (size_t i = 0; req && i < req->n; i++)
                if (!strcmp(props->keys[k]->str, req->items[i]->str)) p->required = true;
        }
        c->s->nodes[n].a = first;
        c->s->nodes[n].b = (int32_t)np;
        for (size_t k = 0; k < np; k++) {
            const ljson *ps = props->items[k];
            if (ps->type != LJ_OBJ)
                return fail(c, "properties", "a property schema is not an object");
            char seg[96];
            snprintf(seg, sizeof seg, "properties/%.80s", props->keys[k]->str);
            int pn = compile_child(c, ps, seg);
            if (pn < 0) return -1;
            c->s->props[first + (int)k].node = pn;
        }
        return n;
    }
    return fail(c, "type", "type '%.40s' is not a JSON Schema type", t);
}

static int compile(cctx *c, const ljson *v, int32_t into) {
    if (v->type != LJ_OBJ) return fail(c, NULL, "a schema must be a JSON object");
    for (size_t i = 0; i < v->n; i++) {
        const char *k = v->keys[i]->str;
        if (in_list(k, k_descriptive, sizeof k_descriptive / sizeof *k_descriptive) ||
            in_list(k, k_structural, sizeof k_structural / sizeof *k_structural))
            continue;
        if ((c->flags & LFM_SCHEMA_INTERNAL) && (!strcmp(k, "minItems") || !strcmp(k, "maxItems")))
            continue;
        return fail(c, k, "JSON Schema keyword '%.60s' is not supported in structured outputs", k);
    }
    const ljson *x;
    int n = -1;
    lfm_schema *s = c->s;
    if ((x = ljson_get(v, "$ref"))) {
        n = resolve_ref(c, x);
    } else if ((x = ljson_get(v, "const"))) {
        n = new_node(c, GN_LITERALS);
        if (n >= 0) {
            s->nodes[n].a = add_lit(c, x);
            s->nodes[n].b = 1;
        }
    } else if ((x = ljson_get(v, "enum"))) {
        if (x->type != LJ_ARR || x->n == 0 || x->n > GN_MAX_SET)
            return fail(c, "enum", "enum must be an array of 1 to %d values", GN_MAX_SET);
        n = new_node(c, GN_LITERALS);
        if (n >= 0) {
            s->nodes[n].a = s->n_lits;
            s->nodes[n].b = (int32_t)x->n;
            for (size_t i = 0; i < x->n; i++)
                add_lit(c, x->items[i]);
        }
    } else if ((x = ljson_get(v, "anyOf"))) {
        if (x->type != LJ_ARR || x->n == 0 || x->n > GN_MAX_SET)
            return fail(c, "anyOf", "anyOf must be an array of 1 to %d schemas", GN_MAX_SET);
        int32_t kids[GN_MAX_SET];
        for (size_t i = 0; i < x->n; i++) {
            char seg[32];
            snprintf(seg, sizeof seg, "anyOf/%zu", i);
            if ((kids[i] = compile_child(c, x->items[i], seg)) < 0) return -1;
        }
        n = new_node(c, GN_ANYOF);
        if (n >= 0) {
            s->nodes[n].a = s->n_kids;
            s->nodes[n].b = (int32_t)x->n;
            for (size_t i = 0; i < x->n; i++) {
                GROW(s->kids, s->n_kids, s->cap_kids);
                s->kids[s->n_kids++] = kids[i];
            }
        }
    } else if ((x = ljson_get(v, "type"))) {
        if (x->type == LJ_STR) {
            n = type_node(c, v, x->str);
        } else if (x->type == LJ_ARR && x->n > 0 && x->n <= 7) {
            int32_t kids[7];
            for (size_t i = 0; i < x->n; i++) {
                if (x->items[i]->type != LJ_STR)
                    return fail(c, "type", "type list holds a non-string");
                if ((kids[i] = type_node(c, v, x->items[i]->str)) < 0) return -1;
            }
            n = new_node(c, GN_ANYOF);
            if (n >= 0) {
                s->nodes[n].a = s->n_kids;
                s->nodes[n].b = (int32_t)x->n;
                for (size_t i = 0; i < x->n; i++) {
                    GROW(s->kids, s->n_kids, s->cap_kids);
                    s->kids[s->n_kids++] = kids[i];
                }
            }
        } else {
            return fail(c, "type", "type must be a string or a list of strings");
        }
    } else if (ljson_get(v, "properties")) {
        n = type_node(c, v, "object");
    } else if (ljson_get(v, "items")) {
        n = type_node(c, v, "array");
    } else {
        n = GN_IDX_ANY; /* {}: any value */
    }
    if (n < 0) return -1;
    /* into becomes n: an alias when n is another node (a $ref, a type). */
    if (n != into) s->nodes[into] = (gnode){.kind = GN_ANYOF, .a = s->n_kids, .b = 1};
    if (n != into) {
        GROW(s->kids, s->n_kids, s->cap_kids);
        s->kids[s->n_kids++] = n;
    }
    return 0;
}

static lfm_schema *schema_base(void) {
    lfm_schema *s = calloc(1, sizeof *s);
    if (!s) abort();
    cctx c = {.s = s};
    new_node(&c, GN_ANY);
    new_node(&c, GN_ANYOBJ);
    int a = new_node(&c, GN_ARRAY);
    s->nodes[a].a = GN_IDX_ANY;
    int t = new_node(&c, GN_LITERALS);
    ljson lt = {.type = LJ_TRUE}, lf = {.type = LJ_FALSE}, ln = {.type = LJ_NULL};
    s->nodes[t].a = s->n_lits;
    s->nodes[t].b = 3;
    add_lit(&c, &lt);
    add_lit(&c, &lf);
    add_lit(&c, &ln);
    return s;
}

int lfm_schema_compile(const char *json, size_t len, unsigned flags, lfm_schema **out,
                       char *keyword, size_t kwlen, char *err, size_t errlen) {
    *out = NULL;
    if (keyword && kwlen) keyword[0] = 0;
    lfm_schema *s = schema_base();
    if (flags & LFM_SCHEMA_ANY) {
        s->root = GN_IDX_ANYOBJ;
        *out = s;
        return LFM_OK;
    }
    char perr[128] = "";
    ljson *v = ljson_parse(json ? json : "", len, perr, sizeof perr);
    cctx c = {.s = s,
              .root = v,
              .flags = flags,
              .kw = keyword,
              .kwlen = kwlen,
              .err = err,
              .errlen = errlen};
    int rc = LFM_OK;
    if (!v) {
        fail(&c, NULL, "schema is not valid JSON: %s", perr);
        rc = LFM_EINVAL;
    } else {
        int n = compile_new(&c, v);
        if (n < 0)
            rc = LFM_EINVAL;
        else
            s->root = n;
    }
    ljson_free(v);
    free(c.memo_v);
    free(c.memo_n);
    if (rc != LFM_OK) {
        lfm_schema_free(s);
        return rc;
    }
    *out = s;
    return LFM_OK;
}

void lfm_schema_free(lfm_schema *s) {
    if (!s) return;
    for (int i = 0; i < s->n_props; i++)
        free(s->props[i].name);
    for (int i = 0; i < s->n_lits; i++)
        free(s->lits[i].text);
    free(s->nodes);
    free(s->props);
    free(s->lits);
    free(s->kids);
    free(s);
}
