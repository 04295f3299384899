/* openai_responses: Responses API <-> chat form (see openai_responses.h). */
#include "gateway/api/openai_responses.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_INVALID "invalid_request_error"

static json_object *get(json_object *o, const char *k) {
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    json_object_object_get_ex(o, k, &v);
    return json_object_is_type(v, json_type_null) ? NULL : v;
}

static const char *str(json_object *o, const char *k) {
    json_object *v = get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

void tg_resp_req_free(tg_resp_req *x) {
    free(x->previous_id);
    free(x->history_json);
    json_object_put(x->echo);
    memset(x, 0, sizeof *x);
}

/* Message content: a string, or parts with text (input_text, output_text,
 * text). Other parts (images, files) are refused. Returns new string json. */
static json_object *content_text(json_object *c, const char *param, tg_oai_error *e) {
    if (!c) return json_object_new_string("");
    if (json_object_is_type(c, json_type_string)) return json_object_get(c);
    if (!json_object_is_type(c, json_type_array)) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_type", param,
                         "%s must be a string or an array of content parts", param);
        return NULL;
    }
    tg_buf b = TG_BUF_INIT;
    for (size_t i = 0; i < json_object_array_length(c); i++) {
        json_object *p = json_object_array_get_idx(c, i);
        const char *ty = str(p, "type"), *t = str(p, "text");
        if (!ty || (strcmp(ty, "input_text") && strcmp(ty, "output_text") && strcmp(ty, "text")) ||
            !t) {
            tg_buf_free(&b);
            tg_oai_error_set(e, 400, ERR_INVALID, "unsupported_value", param,
                             "%s[%zu]: only text content parts are supported (got %s)", param, i,
                             ty ? ty : "no type");
            return NULL;
        }
        tg_buf_puts(&b, t);
    }
    json_object *r = json_object_new_string_len(b.data ? b.data : "", (int)b.len);
    tg_buf_free(&b);
    return r;
}

static json_object *msg(const char *role, json_object *content) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", content);
    return m;
}

/* input -> chat messages appended to msgs. */
static int convert_input(json_object *input, json_object *msgs, tg_oai_error *e) {
    if (json_object_is_type(input, json_type_string)) {
        json_object_array_add(msgs, msg("user", json_object_get(input)));
        return 0;
    }
    if (!json_object_is_type(input, json_type_array)) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_type", "input",
                         "input must be a string or an array of items");
        return -1;
    }
    json_object *pending_calls = NULL; /* assistant message collecting function_call items */
    char p[64];
    for (size_t i = 0; i < json_object_array_length(input); i++) {
        json_object *it = json_object_array_get_idx(input, i);
        snprintf(p, sizeof p, "input[%zu]", i);
        if (!json_object_is_type(it, json_type_object)) {
            tg_oai_error_set(e, 400, ERR_INVALID, "invalid_type", p, "%s must be an object", p);
            return -1;
        }
        const char *ty = str(it, "type");
        const char *role = str(it, "role");
        if (ty && !strcmp(ty, "function_call")) {
            const char *id = str(it, "call_id"), *name = str(it, "name"),
                       *args = str(it, "arguments");
            if (!id || !name) {
                tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p,
                                 "%s: a function_call needs call_id and name", p);
                return -1;
            }
            if (!pending_calls) {
                pending_calls = json_object_new_object();
                json_object_object_add(pending_calls, "role", json_object_new_string("assistant"));
                json_object_object_add(pending_calls, "content", NULL);
                json_object_object_add(pending_calls, "tool_calls", json_object_new_array());
                json_object_array_add(msgs, pending_calls);
            }
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_add(tc, "id", json_object_new_string(id));
            json_object_object_add(tc, "type", json_object_new_string("function"));
            json_object_object_add(fn, "name", json_object_new_string(name));
            json_object_object_add(fn, "arguments", json_object_new_string(args ? args : "{}"));
            json_object_object_add(tc, "function", fn);
            json_object *arr = NULL;
            json_object_object_get_ex(pending_calls, "tool_calls", &arr);
            json_object_array_add(arr, tc);
            continue;
        }
        pending_calls = NULL;
        if (ty && !strcmp(ty, "function_call_output")) {
            const char *id = str(it, "call_id");
            if (!id) {
                tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p,
                                 "%s: function_call_output needs call_id", p);
                return -1;
            }
            snprintf(p, sizeof p, "input[%zu].output", i);
            json_object *out = content_text(get(it, "output"), p, e);
            if (!out) return -1;
            json_object *m = msg("tool", out);
            json_object_object_add(m, "tool_call_id", json_object_new_string(id));
            json_object_array_add(msgs, m);
            continue;
        }
        if (ty && (!strcmp(ty, "reasoning"))) continue; /* nothing to render */
        if ((ty && strcmp(ty, "message") != 0) || !role) {
            tg_oai_error_set(e, 400, ERR_INVALID, "unsupported_value", p,
                             "%s: item type '%s' is not supported", p, ty ? ty : "(none)");
            return -1;
        }
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
            tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", p, "%s: unknown role '%s'", p,
                             role);
            return -1;
        }
        snprintf(p, sizeof p, "input[%zu].content", i);
        json_object *c = content_text(get(it, "content"), p, e);
        if (!c) return -1;
        json_object_array_add(msgs, msg(role, c));
    }
    return 0;
}

static int convert_tools(json_object *tools, json_object *chat, tg_oai_error *e) {
    if (!json_object_is_type(tools, json_type_array)) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_type", "tools", "tools must be an array");
        return -1;
    }
    json_object *out = json_object_new_array();
    json_object_object_add(chat, "tools", out);
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        const char *ty = str(t, "type");
        char p[48];
        snprintf(p, sizeof p, "tools[%zu].type", i);
        if (!ty || strcmp(ty, "function") != 0) {
            tg_oai_error_set(e, 400, ERR_INVALID, "unsupported_value", p,
                             "only function tools are supported (got %s)", ty ? ty : "no type");
            return -1;
        }
        json_object *fn = json_object_new_object();
        json_object *v;
        if ((v = get(t, "name"))) json_object_object_add(fn, "name", json_object_get(v));
        if ((v = get(t, "description")))
            json_object_object_add(fn, "description", json_object_get(v));
        if ((v = get(t, "parameters")))
            json_object_object_add(fn, "parameters", json_object_get(v));
        json_object *ct = json_object_new_object();
        json_object_object_add(ct, "type", json_object_new_string("function"));
        json_object_object_add(ct, "function", fn);
        json_object_array_add(out, ct);
    }
    return 0;
}

int tg_resp_to_chat(json_object *body, tg_resp_store *st, json_object **chat_out, tg_resp_req *x,
                    tg_oai_error *e) {
    memset(x, 0, sizeof *x);
    *chat_out = NULL;
    if (!json_object_is_type(body, json_type_object)) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_type", "body", "body must be a JSON object");
        return -1;
    }
    json_object *chat = json_object_new_object(), *msgs = json_object_new_array(), *v;
    x->echo = json_object_new_object();
    x->store = true;
    if ((v = get(body, "store"))) x->store = json_object_get_boolean(v);
    static const char *const echo_keys[] = {"instructions",
                                            "max_output_tokens",
                                            "temperature",
                                            "top_p",
                                            "tools",
                                            "tool_choice",
                                            "text",
                                            "parallel_tool_calls",
                                            "metadata",
                                            "user",
                                            "previous_response_id"};
    for (size_t i = 0; i < sizeof echo_keys / sizeof *echo_keys; i++)
        if ((v = get(body, echo_keys[i])))
            json_object_object_add(x->echo, echo_keys[i], json_object_get(v));
    json_object_object_add(x->echo, "store", json_object_new_boolean(x->store));

    const char *ins = str(body, "instructions");
    if (get(body, "instructions") && !ins) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_type", "instructions",
                         "instructions must be a string");
        goto fail;
    }
    if (ins) json_object_array_add(msgs, msg("system", json_object_new_string(ins)));
    json_object *hist = json_object_new_array(); /* without instructions */
    const char *prev = str(body, "previous_response_id");
    if (prev) {
        const char *pm = st ? tg_resp_store_messages(st, prev) : NULL;
        json_object *pj = pm ? json_tokener_parse(pm) : NULL;
        if (!pj) {
            json_object_put(hist);
            tg_oai_error_set(e, 400, ERR_INVALID, "previous_response_not_found",
                             "previous_response_id", "Previous response with id '%.60s' not found.",
                             prev);
            goto fail;
        }
        for (size_t i = 0; i < json_object_array_length(pj); i++)
            json_object_array_add(hist, json_object_get(json_object_array_get_idx(pj, i)));
        json_object_put(pj);
        x->previous_id = strdup(prev);
    }
    json_object *input = get(body, "input");
    if (!input) {
        json_object_put(hist);
        tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", "input",
                         "input is required");
        goto fail;
    }
    if (convert_input(input, hist, e) < 0) {
        json_object_put(hist);
        goto fail;
    }
    for (size_t i = 0; i < json_object_array_length(hist); i++)
        json_object_array_add(msgs, json_object_get(json_object_array_get_idx(hist, i)));
    x->history_json = strdup(json_object_to_json_string_ext(hist, JSON_C_TO_STRING_PLAIN));
    json_object_put(hist);
    json_object_object_add(chat, "messages", msgs);
    msgs = NULL;

    if ((v = get(body, "model"))) json_object_object_add(chat, "model", json_object_get(v));
    if ((v = get(body, "max_output_tokens")))
        json_object_object_add(chat, "max_tokens", json_object_get(v));
    if ((v = get(body, "temperature")))
        json_object_object_add(chat, "temperature", json_object_get(v));
    if ((v = get(body, "top_p"))) json_object_object_add(chat, "top_p", json_object_get(v));
    if ((v = get(body, "stream"))) json_object_object_add(chat, "stream", json_object_get(v));
    if ((v = get(body, "user"))) json_object_object_add(chat, "user", json_object_get(v));
    if ((v = get(body, "parallel_tool_calls")))
        json_object_object_add(chat, "parallel_tool_calls", json_object_get(v));
    if ((v = get(body, "tools")) && convert_tools(v, chat, e) < 0) goto fail;
    if ((v = get(body, "tool_choice"))) {
        if (json_object_is_type(v, json_type_object)) {
            const char *name = str(v, "name");
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_add(tc, "type", json_object_new_string("function"));
            if (name) json_object_object_add(fn, "name", json_object_new_string(name));
            json_object_object_add(tc, "function", fn);
            json_object_object_add(chat, "tool_choice", tc);
        } else {
            json_object_object_add(chat, "tool_choice", json_object_get(v));
        }
    }
    json_object *text = get(body, "text");
    json_object *fmt = get(text, "format");
    if (fmt) {
        /* Responses puts name/schema/strict beside type; chat nests them. */
        const char *ty = str(fmt, "type");
        json_object *rf = json_object_new_object();
        json_object_object_add(rf, "type", json_object_new_string(ty ? ty : ""));
        if (ty && !strcmp(ty, "json_schema")) {
            json_object *js = json_object_new_object();
            if ((v = get(fmt, "name"))) json_object_object_add(js, "name", json_object_get(v));
            if ((v = get(fmt, "schema"))) json_object_object_add(js, "schema", json_object_get(v));
            if ((v = get(fmt, "strict"))) json_object_object_add(js, "strict", json_object_get(v));
            json_object_object_add(rf, "json_schema", js);
        }
        json_object_object_add(chat, "response_format", rf);
    }
    *chat_out = chat;
    return 0;
fail:
    json_object_put(msgs);
    json_object_put(chat);
    return -1;
}

/* ------------------------------------------------------------ builders -- */

static json_object *jstrn(const char *s, size_t n) {
    return json_object_new_string_len(s ? s : "", (int)n);
}

json_object *tg_resp_message_item(const tg_resp_view *v, const char *status) {
    json_object *it = json_object_new_object();
    json_object_object_add(it, "id", json_object_new_string(v->msg_id));
    json_object_object_add(it, "type", json_object_new_string("message"));
    json_object_object_add(it, "status", json_object_new_string(status));
    json_object_object_add(it, "role", json_object_new_string("assistant"));
    json_object *content = json_object_new_array();
    if (strcmp(status, "in_progress") != 0) {
        json_object *part = json_object_new_object();
        json_object_object_add(part, "type", json_object_new_string("output_text"));
        json_object_object_add(part, "text", jstrn(v->text, v->text_len));
        json_object_object_add(part, "annotations", json_object_new_array());
        json_object_object_add(part, "logprobs", json_object_new_array());
        json_object_array_add(content, part);
    }
    json_object_object_add(it, "content", content);
    return it;
}

json_object *tg_resp_reasoning_item(const tg_resp_view *v, const char *status) {
    json_object *it = json_object_new_object();
    json_object_object_add(it, "id", json_object_new_string(v->rs_id ? v->rs_id : ""));
    json_object_object_add(it, "type", json_object_new_string("reasoning"));
    json_object_object_add(it, "status", json_object_new_string(status));
    /* No summary: the model's own text is given whole, as content. */
    json_object_object_add(it, "summary", json_object_new_array());
    json_object *content = json_object_new_array();
    if (strcmp(status, "in_progress") != 0) {
        json_object *part = json_object_new_object();
        json_object_object_add(part, "type", json_object_new_string("reasoning_text"));
        json_object_object_add(part, "text", jstrn(v->reasoning, v->reasoning_len));
        json_object_array_add(content, part);
    }
    json_object_object_add(it, "content", content);
    return it;
}

json_object *tg_resp_call_item(const tg_resp_view *v, size_t i, const char *status,
                               bool with_args) {
    json_object *it = json_object_new_object();
    const lfm_tool_call *c = &v->calls[i];
    json_object_object_add(it, "id", json_object_new_string(v->item_ids[i]));
    json_object_object_add(it, "type", json_object_new_string("function_call"));
    json_object_object_add(it, "status", json_object_new_string(status));
    json_object_object_add(it, "call_id", json_object_new_string(v->call_ids[i]));
    json_object_object_add(it, "name", json_object_new_string(c->name ? c->name : ""));
    json_object_object_add(it, "arguments",
                           json_object_new_string(with_args && c->arguments_json ? c->arguments_json
                                                  : with_args                    ? "{}"
                                                                                 : ""));
    return it;
}

json_object *tg_resp_object(const tg_resp_view *v) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(v->id));
    json_object_object_add(o, "object", json_object_new_string("response"));
    json_object_object_add(o, "created_at", json_object_new_int64(v->created));
    json_object_object_add(o, "status", json_object_new_string(v->status));
    if (v->error_code) {
        json_object *err = json_object_new_object();
        json_object_object_add(err, "code", json_object_new_string(v->error_code));
        json_object_object_add(err, "message",
                               json_object_new_string(v->error_message ? v->error_message : ""));
        json_object_object_add(o, "error", err);
    } else {
        json_object_object_add(o, "error", NULL);
    }
    if (v->incomplete_reason) {
        json_object *inc = json_object_new_object();
        json_object_object_add(inc, "reason", json_object_new_string(v->incomplete_reason));
        json_object_object_add(o, "incomplete_details", inc);
    } else {
        json_object_object_add(o, "incomplete_details", NULL);
    }
    json_object_object_add(o, "model", json_object_new_string(v->model));
    json_object *out = json_object_new_array();
    bool final = strcmp(v->status, "in_progress") != 0;
    if (final && v->reasoning) json_object_array_add(out, tg_resp_reasoning_item(v, "completed"));
    if (final && v->text) json_object_array_add(out, tg_resp_message_item(v, "completed"));
    for (size_t i = 0; final && i < v->n_calls; i++)
        json_object_array_add(out, tg_resp_call_item(v, i, "completed", true));
    json_object_object_add(o, "output", out);
    /* Defaults first; the caller's echoed values override them. */
    json_object_object_add(o, "instructions", NULL);
    json_object_object_add(o, "max_output_tokens", NULL);
    json_object_object_add(o, "parallel_tool_calls", json_object_new_boolean(1));
    json_object_object_add(o, "previous_response_id", NULL);
    json_object *reasoning = json_object_new_object();
    json_object_object_add(reasoning, "effort", NULL);
    json_object_object_add(reasoning, "summary", NULL);
    json_object_object_add(o, "reasoning", reasoning);
    json_object_object_add(o, "store", json_object_new_boolean(1));
    json_object_object_add(o, "temperature", NULL);
    json_object *text = json_object_new_object(), *fmt = json_object_new_object();
    json_object_object_add(fmt, "type", json_object_new_string("text"));
    json_object_object_add(text, "format", fmt);
    json_object_object_add(o, "text", text);
    json_object_object_add(o, "tool_choice", json_object_new_string("auto"));
    json_object_object_add(o, "tools", json_object_new_array());
    json_object_object_add(o, "top_p", NULL);
    json_object_object_add(o, "truncation", json_object_new_string("disabled"));
    json_object_object_add(o, "user", NULL);
    json_object_object_add(o, "metadata", json_object_new_object());
    if (v->echo) {
        json_object_object_foreach(v->echo, k, val) {
            json_object_object_add(o, k, json_object_get(val));
        }
    }
    if (v->usage) {
        json_object *u = json_object_new_object(), *d1 = json_object_new_object(),
                    *d2 = json_object_new_object();
        json_object_object_add(u, "input_tokens", json_object_new_int(v->usage->prompt_tokens));
        json_object_object_add(d1, "cached_tokens", json_object_new_int(v->usage->cached_tokens));
        json_object_object_add(u, "input_tokens_details", d1);
        json_object_object_add(u, "output_tokens",
                               json_object_new_int(v->usage->completion_tokens));
        json_object_object_add(d2, "reasoning_tokens", json_object_new_int(0));
        json_object_object_add(u, "output_tokens_details", d2);
        json_object_object_add(
            u, "total_tokens",
            json_object_new_int(v->usage->prompt_tokens + v->usage->completion_tokens));
        json_object_object_add(o, "usage", u);
    } else {
        json_object_object_add(o, "usage", NULL);
    }
    return o;
}

void tg_resp_object_json(tg_buf *out, const tg_resp_view *v) {
    json_object *o = tg_resp_object(v);
    tg_buf_puts(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

void tg_resp_event(tg_buf *out, const char *type, int *seq, json_object *obj) {
    json_object *e = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "sequence_number", json_object_new_int((*seq)++));
    json_object_object_foreach(obj, k, val) json_object_object_add(e, k, json_object_get(val));
    json_object_put(obj);
    tg_buf_printf(out, "event: %s\ndata: ", type);
    tg_buf_puts(out, json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    tg_buf_puts(out, "\n\n");
    json_object_put(e);
}

/* --------------------------------------------------------------- store -- */

typedef struct {
    char id[48];
    char *response, *messages; /* NULL: free slot, or a tombstone when id is set */
} st_entry;

struct tg_resp_store {
    st_entry *e;
    int cap, next; /* ring: next slot to fill (the oldest when full) */
};

tg_resp_store *tg_resp_store_new(int cap) {
    tg_resp_store *st = calloc(1, sizeof *st);
    if (!st) abort();
    st->cap = cap > 0 ? cap : 1;
    st->e = calloc((size_t)st->cap, sizeof *st->e);
    if (!st->e) abort();
    return st;
}

void tg_resp_store_free(tg_resp_store *st) {
    if (!st) return;
    for (int i = 0; i < st->cap; i++) {
        free(st->e[i].response);
        free(st->e[i].messages);
    }
    free(st->e);
    free(st);
}

static st_entry *find(tg_resp_store *st, const char *id) {
    for (int i = 0; st && id && i < st->cap; i++)
        if (st->e[i].response && !strcmp(st->e[i].id, id)) return &st->e[i];
    return NULL;
}

void tg_resp_store_put(tg_resp_store *st, const char *id, const char *response_json,
                       const char *messages_json) {
    st_entry *e = &st->e[st->next];
    st->next = (st->next + 1) % st->cap;
    free(e->response);
    free(e->messages);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->response = strdup(response_json);
    e->messages = strdup(messages_json ? messages_json : "[]");
    if (!e->response || !e->messages) abort();
}

const char *tg_resp_store_response(tg_resp_store *st, const char *id) {
    st_entry *e = find(st, id);
    return e ? e->response : NULL;
}

const char *tg_resp_store_messages(tg_resp_store *st, const char *id) {
    st_entry *e = find(st, id);
    return e ? e->messages : NULL;
}

bool tg_resp_store_delete(tg_resp_store *st, const char *id) {
    st_entry *e = find(st, id);
    if (!e) return false;
    free(e->response);
    free(e->messages);
    e->response = e->messages = NULL;
    /* The id stays as a tombstone: the journal's own record of the delete
     * may not be readable yet, and the response's COMPLETED record is. */
    return true;
}

bool tg_resp_store_deleted(tg_resp_store *st, const char *id) {
    for (int i = 0; st && id && i < st->cap; i++)
        if (!st->e[i].response && st->e[i].id[0] && !strcmp(st->e[i].id, id)) return true;
    return false;
}
