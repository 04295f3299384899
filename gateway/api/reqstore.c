#include "gateway/api/reqstore.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api/openai_api.h"
#include "gateway/journal/tg_jrec.h"

/* Parses exactly len bytes as one JSON value (NULL when it is not). */
static json_object *parse_n(const void *p, size_t len) {
    if (!p || len == 0 || len > (size_t)TG_JREC_MAX) return NULL;
    json_tokener *tk = json_tokener_new_ex(64);
    if (!tk) return NULL;
    json_tokener_set_flags(tk, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tk, p, (int)len);
    if (json_tokener_get_error(tk) != json_tokener_success ||
        json_tokener_get_parse_end(tk) != len) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tk);
    return o;
}

static json_object *get(json_object *o, const char *k, json_type t) {
    json_object *v;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, k, &v) ||
        !json_object_is_type(v, t))
        return NULL;
    return v;
}

static const char *get_str(json_object *o, const char *k) {
    json_object *v = get(o, k, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

/* ------------------------------------------------------------ toolacc -- */

#define TOOLACC_MAX 64

typedef struct {
    tg_buf id, name, args;
    bool used;
} acc_call;

struct tg_toolacc {
    acc_call calls[TOOLACC_MAX];
    size_t n; /* 1 + highest index seen */
};

tg_toolacc *tg_toolacc_new(void) {
    tg_toolacc *a = calloc(1, sizeof *a);
    if (!a) abort();
    return a;
}

void tg_toolacc_free(tg_toolacc *a) {
    if (!a) return;
    for (size_t i = 0; i < TOOLACC_MAX; i++) {
        tg_buf_free(&a->calls[i].id);
        tg_buf_free(&a->calls[i].name);
        tg_buf_free(&a->calls[i].args);
    }
    free(a);
}

static void put_str(tg_buf *b, const char *s) {
    if (s) tg_buf_append(b, s, strlen(s));
}

size_t tg_toolacc_add(tg_toolacc *a, const char *json, size_t len) {
    json_object *arr = parse_n(json, len);
    if (arr && json_object_is_type(arr, json_type_array)) {
        size_t n = json_object_array_length(arr);
        for (size_t i = 0; i < n; i++) {
            json_object *d = json_object_array_get_idx(arr, i);
            if (!json_object_is_type(d, json_type_object)) continue;
            json_object *ix = get(d, "index", json_type_int);
            int64_t k = ix ? json_object_get_int64(ix) : (int64_t)i;
            if (k < 0 || k >= TOOLACC_MAX) continue;
            acc_call *c = &a->calls[k];
            c->used = true;
            if ((size_t)k + 1 > a->n) a->n = (size_t)k + 1;
            /* id and name come whole in the first delta of a call; the
             * arguments come in pieces. */
            const char *id = get_str(d, "id");
            if (id && !c->id.len) put_str(&c->id, id);
            json_object *fn = get(d, "function", json_type_object);
            const char *name = get_str(fn, "name");
            if (name && !c->name.len) put_str(&c->name, name);
            put_str(&c->args, get_str(fn, "arguments"));
        }
    }
    json_object_put(arr);
    size_t used = 0;
    for (size_t i = 0; i < a->n; i++)
        used += a->calls[i].used;
    return used;
}

bool tg_toolacc_json(const tg_toolacc *a, tg_buf *out) {
    bool any = false;
    for (size_t i = 0; i < a->n; i++) {
        const acc_call *c = &a->calls[i];
        if (!c->used) continue;
        tg_buf_puts(out, any ? "," : "[");
        any = true;
        tg_buf_puts(out, "{\"id\":");
        tg_buf_json_str(out, c->id.data ? c->id.data : "", c->id.len);
        tg_buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
        tg_buf_json_str(out, c->name.data ? c->name.data : "", c->name.len);
        tg_buf_puts(out, ",\"arguments\":");
        tg_buf_json_str(out, c->args.data ? c->args.data : "", c->args.len);
        tg_buf_puts(out, "}}");
    }
    if (any) tg_buf_putc(out, ']');
    return any;
}

/* ------------------------------------------------------------- replay -- */

static void sse_event(tg_buf *out, const tg_buf *j) {
    tg_buf_puts(out, "data: ");
    tg_buf_append(out, j->data, j->len);
    tg_buf_puts(out, "\n\n");
}

int tg_replay_sse(const char *completion, size_t len, bool include_usage, tg_buf *out) {
    json_object *root = parse_n(completion, len);
    const char *obj = get_str(root, "object");
    json_object *choices = get(root, "choices", json_type_array);
    json_object *ch = choices && json_object_array_length(choices) > 0
                          ? json_object_array_get_idx(choices, 0)
                          : NULL;
    json_object *msg = get(ch, "message", json_type_object);
    if (!obj || strcmp(obj, "chat.completion") != 0 || !msg) {
        json_object_put(root);
        return -1;
    }
    const char *id = get_str(root, "id");
    const char *model = get_str(root, "model");
    json_object *cr = get(root, "created", json_type_int);
    int64_t created = cr ? json_object_get_int64(cr) : 0;
    if (!id) id = "";
    if (!model) model = "";
    tg_buf j = TG_BUF_INIT;
    tg_oai_chunk role = {.role = "assistant", .content = "", .content_len = 0};
    tg_oai_chunk_json(&j, id, created, model, &role);
    sse_event(out, &j);
    json_object *content = get(msg, "content", json_type_string);
    if (content && json_object_get_string_len(content) > 0) {
        tg_buf_clear(&j);
        tg_oai_chunk k = {.content = json_object_get_string(content),
                          .content_len = (size_t)json_object_get_string_len(content)};
        tg_oai_chunk_json(&j, id, created, model, &k);
        sse_event(out, &j);
    }
    json_object *calls = get(msg, "tool_calls", json_type_array);
    if (calls && json_object_array_length(calls) > 0) {
        /* The stream form: each call with its index. */
        json_object *sc = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(calls); i++) {
            json_object *c = json_object_array_get_idx(calls, i);
            if (!json_object_is_type(c, json_type_object)) continue;
            json_object *d = json_object_new_object();
            json_object_object_add(d, "index", json_object_new_int((int)i));
            json_object_object_foreach(c, k, v) {
                json_object_object_add(d, k, json_object_get(v));
            }
            json_object_array_add(sc, d);
        }
        tg_buf_clear(&j);
        tg_oai_chunk k = {.tool_calls_json =
                              json_object_to_json_string_ext(sc, JSON_C_TO_STRING_PLAIN)};
        tg_oai_chunk_json(&j, id, created, model, &k);
        sse_event(out, &j);
        json_object_put(sc);
    }
    const char *fin = get_str(ch, "finish_reason");
    tg_buf_clear(&j);
    tg_oai_chunk f = {.finish_reason = fin ? fin : "stop"};
    tg_oai_chunk_json(&j, id, created, model, &f);
    sse_event(out, &j);
    json_object *usage = get(root, "usage", json_type_object);
    if (include_usage && usage) {
        json_object *pt = get(usage, "prompt_tokens", json_type_int);
        json_object *ct = get(usage, "completion_tokens", json_type_int);
        json_object *det = get(usage, "prompt_tokens_details", json_type_object);
        json_object *cached = det ? get(det, "cached_tokens", json_type_int) : NULL;
        tg_oai_usage u = {pt ? json_object_get_int(pt) : 0, ct ? json_object_get_int(ct) : 0,
                          cached ? json_object_get_int(cached) : 0};
        tg_buf_clear(&j);
        tg_oai_chunk k = {.usage_only = true, .usage = &u};
        tg_oai_chunk_json(&j, id, created, model, &k);
        sse_event(out, &j);
    }
    tg_buf_puts(out, "data: [DONE]\n\n");
    tg_buf_free(&j);
    json_object_put(root);
    return 0;
}

/* --------------------------------------------------------------- view -- */

void tg_reqview_init(tg_reqview *v) {
    memset(v, 0, sizeof *v);
    v->failovers = (tg_buf)TG_BUF_INIT;
    v->result = (tg_buf)TG_BUF_INIT;
    v->error = (tg_buf)TG_BUF_INIT;
}

void tg_reqview_free(tg_reqview *v) {
    tg_buf_free(&v->failovers);
    tg_buf_free(&v->result);
    tg_buf_free(&v->error);
}

static void set_route(tg_reqview *v, const char *r) {
    if (r && *r) snprintf(v->route, sizeof v->route, "%s", r);
}

static void add_json_str_field(tg_buf *b, const char *name, const char *s, bool comma) {
    if (comma) tg_buf_putc(b, ',');
    tg_buf_printf(b, "\"%s\":", name);
    if (s)
        tg_buf_json_str(b, s, strlen(s));
    else
        tg_buf_puts(b, "null");
}

void tg_reqview_add(tg_reqview *v, int type, uint64_t ts_us, const uint8_t *payload, size_t len) {
    if (type == TG_JREC_CHUNK || type == TG_JREC_SEAL) return;
    if (type < 1 || type > TG_JREC_TYPE_MAX) return;
    if (!v->accepted && type != TG_JREC_ACCEPTED) return; /* an orphan */
    json_object *o = parse_n(payload, len);
    switch (type) {
    case TG_JREC_ACCEPTED: {
        if (v->accepted) break; /* one ACCEPTED per id; a second is not trusted */
        v->accepted = true;
        v->created_us = ts_us;
        const char *scope = get_str(o, "scope");
        snprintf(v->scope, sizeof v->scope, "%s", scope ? scope : "");
        json_object *b = get(o, "stream", json_type_boolean);
        v->stream = b && json_object_get_boolean(b);
        b = get(o, "include_usage", json_type_boolean);
        v->include_usage = b && json_object_get_boolean(b);
        break;
    }
    case TG_JREC_DISPATCHED: set_route(v, get_str(o, "target")); break;
    case TG_JREC_FAILOVER: {
        const char *from = get_str(o, "from"), *to = get_str(o, "to");
        const char *reason = get_str(o, "reason");
        if (v->failovers.len) tg_buf_putc(&v->failovers, ',');
        tg_buf_putc(&v->failovers, '{');
        add_json_str_field(&v->failovers, "from", from, false);
        add_json_str_field(&v->failovers, "to", to, true);
        add_json_str_field(&v->failovers, "reason", reason, true);
        json_object *mid = get(o, "midstream", json_type_boolean);
        tg_buf_printf(&v->failovers, ",\"midstream\":%s,\"at\":%llu}",
                      mid && json_object_get_boolean(mid) ? "true" : "false",
                      (unsigned long long)(ts_us / 1000000));
        set_route(v, to);
        break;
    }
    case TG_JREC_COMPLETED:
        if (tg_jrec_is_terminal(v->state)) break; /* one result; a second is not trusted */
        tg_buf_clear(&v->result);
        /* Kept as stored when it is a JSON object (the chat.completion),
         * re-encoded otherwise. */
        if (o && json_object_is_type(o, json_type_object)) tg_buf_append(&v->result, payload, len);
        break;
    case TG_JREC_FAILED:
    case TG_JREC_CANCELLED: {
        if (tg_jrec_is_terminal(v->state)) break;
        json_object *st = get(o, "status", json_type_int);
        v->error_status = st ? json_object_get_int(st) : 0;
        json_object *e = get(o, "error", json_type_object);
        tg_buf_clear(&v->error);
        tg_buf_puts(&v->error, "{");
        add_json_str_field(&v->error, "message", get_str(e, "message"), false);
        add_json_str_field(&v->error, "type",
                           get_str(e, "type")          ? get_str(e, "type")
                           : type == TG_JREC_CANCELLED ? "cancelled"
                                                       : "server_error",
                           true);
        add_json_str_field(&v->error, "param", get_str(e, "param"), true);
        add_json_str_field(&v->error, "code", get_str(e, "code"), true);
        tg_buf_putc(&v->error, '}');
        break;
    }
    default: break;
    }
    json_object_put(o);
    if (!tg_jrec_is_terminal(v->state)) v->state = type;
}

const char *tg_reqview_status(const tg_reqview *v) {
    switch (v->state) {
    case TG_JREC_ACCEPTED: return "accepted";
    case TG_JREC_DISPATCHED:
    case TG_JREC_FAILOVER: return "running";
    case TG_JREC_DEFERRED: return "deferred";
    case TG_JREC_COMPLETED: return "completed";
    case TG_JREC_FAILED: return "failed";
    case TG_JREC_CANCELLED: return "cancelled";
    default: return "accepted";
    }
}

void tg_reqview_json(const tg_reqview *v, const char *id, tg_buf *out) {
    tg_buf_puts(out, "{\"id\":");
    tg_buf_json_str(out, id, strlen(id));
    tg_buf_printf(out, ",\"object\":\"tidegate.request\",\"status\":\"%s\",\"created\":%llu",
                  tg_reqview_status(v), (unsigned long long)(v->created_us / 1000000));
    tg_buf_puts(out, ",\"route\":");
    if (v->route[0])
        tg_buf_json_str(out, v->route, strlen(v->route));
    else
        tg_buf_puts(out, "null");
    tg_buf_puts(out, ",\"failovers\":[");
    if (v->failovers.len) tg_buf_append(out, v->failovers.data, v->failovers.len);
    tg_buf_puts(out, "],\"result\":");
    if (v->state == TG_JREC_COMPLETED && v->result.len)
        tg_buf_append(out, v->result.data, v->result.len);
    else
        tg_buf_puts(out, "null");
    tg_buf_puts(out, ",\"error\":");
    if ((v->state == TG_JREC_FAILED || v->state == TG_JREC_CANCELLED) && v->error.len)
        tg_buf_append(out, v->error.data, v->error.len);
    else
        tg_buf_puts(out, "null");
    tg_buf_putc(out, '}');
}
