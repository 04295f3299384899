/* api_responses: POST/GET/DELETE /v1/responses and POST /v1/completions.
 *
 * Both go through the chat engine path (api_chat.c): a Responses body is
 * translated to chat form (openai_responses.c), a completions body keeps
 * its raw prompt (tokenized without a template). Only the output differs,
 * and is written here: the Responses object and its streaming event
 * sequence (response.created, response.in_progress, output_item.added,
 * content_part.added, output_text.delta..., output_text.done,
 * content_part.done, output_item.done, a thinking model's reasoning item
 * first with reasoning_text.delta/done in the same frame, function-call
 * items with
 * function_call_arguments.delta/done, then response.completed or
 * response.incomplete; response.failed on errors), and text_completion
 * objects / chunks. Stored responses (store, default true) keep the
 * conversation for previous_response_id, bounded in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tg_log.h"
#include "common/tg_str.h"
#include "gateway/api/api_journal.h"
#include "gateway/api/chat_internal.h"
#include "gateway/api/sse.h"

#define RESP_STORE_CAP 256

static tg_resp_store *store(tg_api *api) {
    if (!api->resp_store) api->resp_store = tg_resp_store_new(RESP_STORE_CAP);
    return api->resp_store;
}

void tg_api_free_resp_store(tg_api *api) {
    tg_resp_store_free(api->resp_store);
    api->resp_store = NULL;
}

static int parse_body(tg_chat *c, json_object **out) {
    json_tokener *tok = json_tokener_new_ex(TG_OAI_JSON_DEPTH);
    if (!tok) abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = c->req->body && c->req->body_len && c->req->body_len < INT32_MAX
                            ? json_tokener_parse_ex(tok, c->req->body, (int)c->req->body_len)
                            : NULL;
    bool ok = root && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == c->req->body_len;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(root);
        tg_chat_fail(c, 400, "invalid_request_error", "invalid_json", NULL,
                     "request body is not valid JSON");
        return -1;
    }
    *out = root;
    return 0;
}

/* Keeps the chat form we built (a cloud upstream gets it, each target
 * parses it again) and parses it: every field validated by the chat parser. */
static int parse_chat(tg_chat *c, json_object *chat) {
    size_t n = 0;
    const char *txt = json_object_to_json_string_length(chat, JSON_C_TO_STRING_PLAIN, &n);
    c->chat_body = malloc(n + 1);
    if (!c->chat_body) abort();
    memcpy(c->chat_body, txt, n + 1);
    c->chat_body_len = n;
    tg_oai_error e;
    if (tg_chat_parse(c, &e) < 0) {
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------- stored responses -- */

/* A stored response is in memory (bounded, newest kept) and, when the
 * journal is on, in the journal under the response id: its COMPLETED record
 * holds {"stored": bool, "response": {...}, "messages": [...]}. One that
 * left memory (evicted, or an earlier run) is read back from there and
 * kept in memory again. A DELETE is journaled as its own request
 * "del:<id>" (ACCEPTED + COMPLETED: the journal never rewrites a finished
 * id), which every later lookup checks first. The journal read is a
 * synchronous read of the segment files (index lookup, then the records of
 * that id only), on the loop thread. */
typedef struct {
    char *payload; /* the COMPLETED record's payload, NUL-terminated */
} stored_rec;

static int on_stored_rec(void *user, const tg_jrec *r) {
    stored_rec *s = user;
    if (r->type != TG_JREC_COMPLETED) return 0;
    free(s->payload);
    s->payload = malloc(r->payload_len + 1);
    if (!s->payload) abort();
    memcpy(s->payload, r->payload, r->payload_len);
    s->payload[r->payload_len] = 0;
    return 0;
}

static void del_key(const char *id, char *out, size_t cap) {
    snprintf(out, cap, "del:%s", id);
}

/* True when id names a stored response (loaded into memory if it was only
 * in the journal). */
static bool resp_load(tg_api *api, const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 100) return false;
    if (tg_resp_store_response(store(api), id)) return true;
    /* Deleted here: the journaled delete may still be in the writer's queue. */
    if (tg_resp_store_deleted(store(api), id)) return false;
    if (!api->journal || strncmp(id, "resp_", 5) != 0) return false;
    char del[128];
    del_key(id, del, sizeof del);
    tg_journal_info info;
    if (tg_journal_info_get(api->journal, del, &info) == 0) return false; /* deleted */
    stored_rec s = {0};
    if (tg_journal_read(api->journal, id, on_stored_rec, &s) != 0 || !s.payload) {
        free(s.payload);
        return false;
    }
    json_object *o = json_tokener_parse(s.payload), *st, *resp, *msgs;
    free(s.payload);
    bool ok = o && json_object_object_get_ex(o, "stored", &st) && json_object_get_boolean(st) &&
              json_object_object_get_ex(o, "response", &resp) &&
              json_object_object_get_ex(o, "messages", &msgs);
    if (ok)
        tg_resp_store_put(store(api), id,
                          json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN),
                          json_object_to_json_string_ext(msgs, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return ok;
}

static void resp_delete(tg_api *api, const char *id) {
    tg_resp_store_delete(store(api), id);
    if (!api->journal) return;
    char del[128];
    del_key(id, del, sizeof del);
    tg_buf b = TG_BUF_INIT;
    tg_buf_puts(&b, "{\"delete\":");
    tg_buf_json_str(&b, id, strlen(id));
    tg_buf_putc(&b, '}');
    tg_apij_meta meta = {.scope = ""};
    if (tg_apij_accept(api, del, &meta, b.data, b.len, NULL, NULL) == 0)
        tg_apij_note(api, del, TG_JREC_COMPLETED, b.data, b.len);
    tg_buf_free(&b);
}

void tg_api_responses(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_chat *c = tg_chat_new(api, ex, req);
    c->mode = TG_CHAT_RESPONSES;
    if (api->draining) {
        tg_chat_fail(c, 503, "server_error", "draining", NULL, "the server is shutting down");
        return;
    }
    json_object *body = NULL, *chat = NULL;
    if (parse_body(c, &body) < 0) return;
    json_object *prev = NULL;
    if (json_object_object_get_ex(body, "previous_response_id", &prev) &&
        json_object_is_type(prev, json_type_string))
        (void)resp_load(api, json_object_get_string(prev)); /* from the journal if need be */
    tg_oai_error e;
    int rc = tg_resp_to_chat(body, store(api), &chat, &c->rx, &e);
    json_object_put(body);
    if (rc < 0) {
        tg_chat_fail(c, e.status, e.type, e.code, e.param, e.message);
        return;
    }
    rc = parse_chat(c, chat);
    json_object_put(chat);
    if (rc == 0) tg_chat_run(c);
}

void tg_api_completions(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    tg_chat *c = tg_chat_new(api, ex, req);
    c->mode = TG_CHAT_COMPLETIONS;
    if (api->draining) {
        tg_chat_fail(c, 503, "server_error", "draining", NULL, "the server is shutting down");
        return;
    }
    json_object *body = NULL;
    if (parse_body(c, &body) < 0) return;
    json_object *prompt = NULL;
    json_object_object_get_ex(body, "prompt", &prompt);
    if (prompt && json_object_is_type(prompt, json_type_array) &&
        json_object_array_length(prompt) == 1)
        prompt = json_object_array_get_idx(prompt, 0);
    if (!prompt || !json_object_is_type(prompt, json_type_string)) {
        json_object_put(body);
        tg_chat_fail(c, 400, "invalid_request_error",
                     prompt ? "invalid_type" : "missing_required_parameter", "prompt",
                     "prompt must be a string (or a list of one string)");
        return;
    }
    if (json_object_get_string_len(prompt) == 0) {
        json_object_put(body);
        tg_chat_fail(c, 400, "invalid_request_error", "invalid_value", "prompt",
                     "prompt must not be empty");
        return;
    }
    /* Tokenized as is by the engine target (no template); a cloud upstream
     * gets it as the one user message. The chat parser checks every other
     * field. */
    c->raw_prompt = tg_xstrdup(json_object_get_string(prompt));
    json_object *chat = json_object_get(body);
    json_object *msgs = json_object_new_array(), *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("user"));
    json_object_object_add(m, "content", json_object_get(prompt));
    json_object_array_add(msgs, m);
    json_object_object_del(chat, "prompt");
    json_object_object_add(chat, "messages", msgs);
    int rc = parse_chat(c, chat);
    json_object_put(chat);
    json_object_put(body);
    if (rc == 0) tg_chat_run(c);
}

/* GET/DELETE /v1/responses/{id} */
void tg_api_response_by_id(tg_api *api, tg_http_exchange *ex, const tg_http_request *req) {
    const char *id = req->path + strlen("/v1/responses/");
    const char *stored = resp_load(api, id) ? tg_resp_store_response(store(api), id) : NULL;
    if (!stored) {
        tg_api_error(api, ex, 404, "invalid_request_error", "not_found", NULL,
                     "Response with id '%.60s' not found.", id);
        return;
    }
    if (!strcmp(req->method, "DELETE")) {
        tg_buf b = TG_BUF_INIT;
        tg_buf_puts(&b, "{\"id\":");
        tg_buf_json_str(&b, id, strlen(id));
        tg_buf_puts(&b, ",\"object\":\"response.deleted\",\"deleted\":true}");
        resp_delete(api, id);
        tg_http_respond(ex, 200, "application/json", b.data, b.len);
        tg_buf_free(&b);
        return;
    }
    tg_http_respond(ex, 200, "application/json", stored, strlen(stored));
}

/* ------------------------------------------------------------ responses -- */

static void write_events(tg_chat *c, tg_buf *b) {
    (void)tg_http_stream_write(c->ex, b->data, b->len);
    tg_buf_clear(b);
}

static tg_resp_view base_view(tg_chat *c, const char *status) {
    tg_resp_view v = {
        .id = c->id,
        .msg_id = c->msg_id,
        .model = c->model_out,
        .created = c->created,
        .status = status,
        .echo = c->rx.echo,
    };
    return v;
}

static json_object *with_response(json_object *resp) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "response", resp);
    return o;
}

void tg_resp_stream_start(tg_chat *c) {
    tg_buf b = TG_BUF_INIT;
    tg_resp_view v = base_view(c, "in_progress");
    tg_resp_event(&b, "response.created", &c->seq, with_response(tg_resp_object(&v)));
    tg_resp_event(&b, "response.in_progress", &c->seq, with_response(tg_resp_object(&v)));
    write_events(c, &b);
    tg_buf_free(&b);
}

static json_object *item_event(int index, json_object *item) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "output_index", json_object_new_int(index));
    json_object_object_add(o, "item", item);
    return o;
}

/* The message item follows the reasoning item when there is one. */
static int msg_index(const tg_chat *c) {
    return c->rs_id[0] ? 1 : 0;
}

/* An event about content part 0 of the message (reasoning: of the
 * reasoning item); with_part adds the part itself. */
static json_object *part_event_of(tg_chat *c, bool reasoning, const char *text, size_t len,
                                  bool with_part) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "item_id", json_object_new_string(reasoning ? c->rs_id : c->msg_id));
    json_object_object_add(o, "output_index", json_object_new_int(reasoning ? 0 : msg_index(c)));
    json_object_object_add(o, "content_index", json_object_new_int(0));
    if (with_part) {
        json_object *p = json_object_new_object();
        json_object_object_add(
            p, "type", json_object_new_string(reasoning ? "reasoning_text" : "output_text"));
        json_object_object_add(p, "text", json_object_new_string_len(text ? text : "", (int)len));
        if (!reasoning) json_object_object_add(p, "annotations", json_object_new_array());
        json_object_object_add(o, "part", p);
    }
    return o;
}

static json_object *part_event(tg_chat *c, const char *text, size_t len, bool with_part) {
    return part_event_of(c, false, text, len, with_part);
}

static tg_resp_view with_reasoning(tg_chat *c, tg_resp_view v) {
    if (c->rs_id[0]) {
        v.rs_id = c->rs_id;
        v.reasoning = c->reasoning.data ? c->reasoning.data : "";
        v.reasoning_len = c->reasoning.len;
    }
    return v;
}

/* Ends the streamed reasoning item: text done, part done, item done. */
static void close_reasoning(tg_chat *c, tg_buf *b) {
    if (!c->rs_open) return;
    c->rs_open = false;
    tg_resp_view v = with_reasoning(c, base_view(c, "in_progress"));
    json_object *d = part_event_of(c, true, NULL, 0, false);
    json_object_object_add(d, "text",
                           json_object_new_string_len(v.reasoning, (int)v.reasoning_len));
    tg_resp_event(b, "response.reasoning_text.done", &c->seq, d);
    tg_resp_event(b, "response.content_part.done", &c->seq,
                  part_event_of(c, true, v.reasoning, v.reasoning_len, true));
    tg_resp_event(b, "response.output_item.done", &c->seq,
                  item_event(0, tg_resp_reasoning_item(&v, "completed")));
}

void tg_resp_stream_reasoning(tg_chat *c, const char *s, size_t n) {
    /* Thinking comes before the answer; a late piece (after the message
     * item opened) would break the item order and is dropped. */
    if (c->msg_started || n == 0) return;
    tg_buf b = TG_BUF_INIT;
    if (!c->rs_id[0]) {
        tg_oai_new_id("rs_", c->rs_id, sizeof c->rs_id);
        c->rs_open = true;
        tg_resp_view v = with_reasoning(c, base_view(c, "in_progress"));
        tg_resp_event(&b, "response.output_item.added", &c->seq,
                      item_event(0, tg_resp_reasoning_item(&v, "in_progress")));
        tg_resp_event(&b, "response.content_part.added", &c->seq,
                      part_event_of(c, true, "", 0, true));
    }
    tg_buf_append(&c->reasoning, s, n);
    json_object *d = part_event_of(c, true, NULL, 0, false);
    json_object_object_add(d, "delta", json_object_new_string_len(s, (int)n));
    tg_resp_event(&b, "response.reasoning_text.delta", &c->seq, d);
    write_events(c, &b);
    tg_buf_free(&b);
}

static void start_message(tg_chat *c, tg_buf *b) {
    if (c->msg_started) return;
    close_reasoning(c, b);
    c->msg_started = true;
    tg_resp_view v = base_view(c, "in_progress");
    tg_resp_event(b, "response.output_item.added", &c->seq,
                  item_event(msg_index(c), tg_resp_message_item(&v, "in_progress")));
    tg_resp_event(b, "response.content_part.added", &c->seq, part_event(c, "", 0, true));
}

void tg_resp_stream_text(tg_chat *c, const char *s, size_t n) {
    tg_buf b = TG_BUF_INIT;
    start_message(c, &b);
    json_object *d = part_event(c, NULL, 0, false);
    json_object_object_add(d, "delta", json_object_new_string_len(s, (int)n));
    json_object_object_add(d, "logprobs", json_object_new_array());
    tg_resp_event(&b, "response.output_text.delta", &c->seq, d);
    write_events(c, &b);
    tg_buf_free(&b);
}

void tg_resp_stream_error(tg_chat *c, const char *code, const char *msg) {
    tg_buf b = TG_BUF_INIT;
    tg_resp_view v = base_view(c, "failed");
    v.error_code = code;
    v.error_message = msg;
    tg_resp_event(&b, "response.failed", &c->seq, with_response(tg_resp_object(&v)));
    write_events(c, &b);
    tg_buf_free(&b);
}

/* The conversation after this response, for previous_response_id. */
static char *history_after(tg_chat *c, const char *text, size_t len, const lfm_tool_call *calls,
                           size_t n, char (*call_ids)[48]) {
    json_object *h = json_tokener_parse(c->rx.history_json ? c->rx.history_json : "[]");
    if (!h) h = json_object_new_array();
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content",
                           text && len ? json_object_new_string_len(text, (int)len) : NULL);
    if (n) {
        json_object *tcs = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_add(tc, "id", json_object_new_string(call_ids[i]));
            json_object_object_add(tc, "type", json_object_new_string("function"));
            json_object_object_add(fn, "name",
                                   json_object_new_string(calls[i].name ? calls[i].name : ""));
            json_object_object_add(
                fn, "arguments",
                json_object_new_string(calls[i].arguments_json ? calls[i].arguments_json : "{}"));
            json_object_object_add(tc, "function", fn);
            json_object_array_add(tcs, tc);
        }
        json_object_object_add(m, "tool_calls", tcs);
    }
    json_object_array_add(h, m);
    char *s = strdup(json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN));
    json_object_put(h);
    return s;
}

static const char *jget_str(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* Tool calls in chat form, whole (an answer) or as stream deltas (with
 * "index": arguments arrive in pieces), merged into c->rcalls. */
void tg_resp_tool_calls(tg_chat *c, const char *json) {
    json_object *arr = json_tokener_parse(json);
    if (!arr || !json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        return;
    }
    if (!c->rcalls) c->rcalls = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *d = json_object_array_get_idx(arr, i), *iv, *fn = NULL;
        size_t idx = json_object_array_length(c->rcalls);
        if (json_object_object_get_ex(d, "index", &iv) && json_object_get_int(iv) >= 0)
            idx = (size_t)json_object_get_int(iv);
        if (idx > 64) continue; /* bounded */
        while (json_object_array_length(c->rcalls) <= idx) {
            json_object *n = json_object_new_object();
            json_object_object_add(n, "id", json_object_new_string(""));
            json_object_object_add(n, "name", json_object_new_string(""));
            json_object_object_add(n, "arguments", json_object_new_string(""));
            json_object_array_add(c->rcalls, n);
        }
        json_object *m = json_object_array_get_idx(c->rcalls, idx);
        const char *id = jget_str(d, "id");
        if (id && *id) json_object_object_add(m, "id", json_object_new_string(id));
        json_object_object_get_ex(d, "function", &fn);
        const char *name = fn ? jget_str(fn, "name") : NULL;
        if (name && *name) json_object_object_add(m, "name", json_object_new_string(name));
        const char *args = fn ? jget_str(fn, "arguments") : NULL;
        if (args) {
            tg_buf a = TG_BUF_INIT;
            tg_buf_puts(&a, jget_str(m, "arguments"));
            tg_buf_puts(&a, args);
            json_object_object_add(m, "arguments", json_object_new_string_len(a.data, (int)a.len));
            tg_buf_free(&a);
        }
    }
    json_object_put(arr);
}

void tg_resp_finish(tg_chat *c, const char *text, size_t len, const char *finish_reason,
                    const tg_oai_usage *usage) {
    tg_api *api = c->api;
    size_t n = c->rcalls ? json_object_array_length(c->rcalls) : 0;
    if (!c->parallel && n > 1) n = 1;
    lfm_tool_call *calls = calloc(n ? n : 1, sizeof *calls);
    char(*call_ids)[48] = calloc(n ? n : 1, 48), (*item_ids)[48] = calloc(n ? n : 1, 48);
    if (!calls || !call_ids || !item_ids) abort();
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(c->rcalls, i);
        const char *id = jget_str(m, "id"), *args = jget_str(m, "arguments");
        calls[i].name = tg_xstrdup(jget_str(m, "name"));
        calls[i].arguments_json = tg_xstrdup(args && *args ? args : "{}");
        if (id && *id)
            snprintf(call_ids[i], 48, "%s", id);
        else
            tg_oai_new_id("call_", call_ids[i], 48);
        tg_oai_new_id("fc_", item_ids[i], 48);
    }
    bool length = finish_reason && !strcmp(finish_reason, "length") && n == 0;
    /* Non-streaming: the whole reasoning is in c->reasoning (split_think). */
    if (!c->stream && c->reasoning.len && !c->rs_id[0])
        tg_oai_new_id("rs_", c->rs_id, sizeof c->rs_id);
    tg_resp_view v = with_reasoning(c, base_view(c, length ? "incomplete" : "completed"));
    v.incomplete_reason = length ? "max_output_tokens" : NULL;
    /* A message item when there is text, or when there is nothing else. */
    bool has_msg = len > 0 || n == 0;
    v.text = has_msg ? (text ? text : "") : NULL;
    v.text_len = len;
    v.calls = calls;
    v.n_calls = n;
    v.call_ids = call_ids;
    v.item_ids = item_ids;
    v.usage = usage;
    tg_buf body = TG_BUF_INIT, rec = TG_BUF_INIT;
    tg_resp_object_json(&body, &v);
    char *hist = c->rx.store ? history_after(c, text, len, calls, n, call_ids) : NULL;
    if (hist) tg_resp_store_put(store(api), c->id, body.data, hist);
    if (c->journaled) {
        tg_buf_printf(&rec, "{\"stored\":%s,\"response\":", hist ? "true" : "false");
        tg_buf_append(&rec, body.data, body.len);
        tg_buf_puts(&rec, ",\"messages\":");
        tg_buf_puts(&rec, hist ? hist : "null");
        tg_buf_putc(&rec, '}');
        if (c->stream) tg_apij_note(api, c->rid, TG_JREC_COMPLETED, rec.data, rec.len);
    }
    free(hist);
    if (c->stream) {
        tg_buf b = TG_BUF_INIT;
        close_reasoning(c, &b);
        if (has_msg) {
            start_message(c, &b);
            json_object *d = part_event(c, NULL, 0, false);
            json_object_object_add(d, "text", json_object_new_string_len(v.text, (int)v.text_len));
            json_object_object_add(d, "logprobs", json_object_new_array());
            tg_resp_event(&b, "response.output_text.done", &c->seq, d);
            tg_resp_event(&b, "response.content_part.done", &c->seq,
                          part_event(c, v.text, v.text_len, true));
            tg_resp_event(&b, "response.output_item.done", &c->seq,
                          item_event(msg_index(c), tg_resp_message_item(&v, "completed")));
        }
        for (size_t i = 0; i < n; i++) {
            int idx = (int)i + (has_msg ? 1 : 0) + msg_index(c);
            tg_resp_event(&b, "response.output_item.added", &c->seq,
                          item_event(idx, tg_resp_call_item(&v, i, "in_progress", false)));
            const char *args = calls[i].arguments_json;
            json_object *d = json_object_new_object();
            json_object_object_add(d, "item_id", json_object_new_string(item_ids[i]));
            json_object_object_add(d, "output_index", json_object_new_int(idx));
            json_object_object_add(d, "delta", json_object_new_string(args));
            tg_resp_event(&b, "response.function_call_arguments.delta", &c->seq, d);
            d = json_object_new_object();
            json_object_object_add(d, "item_id", json_object_new_string(item_ids[i]));
            json_object_object_add(d, "output_index", json_object_new_int(idx));
            json_object_object_add(d, "arguments", json_object_new_string(args));
            tg_resp_event(&b, "response.function_call_arguments.done", &c->seq, d);
            tg_resp_event(&b, "response.output_item.done", &c->seq,
                          item_event(idx, tg_resp_call_item(&v, i, "completed", true)));
        }
        tg_resp_event(&b, length ? "response.incomplete" : "response.completed", &c->seq,
                      with_response(tg_resp_object(&v)));
        write_events(c, &b);
        tg_buf_free(&b);
    } else if (c->journaled) {
        tg_chat_respond_durable(c, &body, rec.data, rec.len); /* 200 once durable */
    } else {
        tg_http_respond(c->ex, 200, "application/json", body.data, body.len);
    }
    tg_buf_free(&body);
    tg_buf_free(&rec);
    lfm_tool_calls_free(calls, n);
    free(call_ids);
    free(item_ids);
}

/* ---------------------------------------------------------- completions -- */

static void cmpl_json(tg_chat *c, tg_buf *out, const char *text, size_t len, const char *finish,
                      const tg_oai_usage *u) {
    tg_buf_puts(out, "{\"id\":");
    tg_buf_json_str(out, c->id, strlen(c->id));
    tg_buf_printf(
        out, ",\"object\":\"text_completion\",\"created\":%lld,\"model\":", (long long)c->created);
    tg_buf_json_str(out, c->model_out, strlen(c->model_out));
    tg_buf_puts(out, ",\"system_fingerprint\":null,\"choices\":[{\"text\":");
    tg_buf_json_str(out, text ? text : "", len);
    tg_buf_puts(out, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    if (finish)
        tg_buf_json_str(out, finish, strlen(finish));
    else
        tg_buf_puts(out, "null");
    tg_buf_putc(out, '}');
    tg_buf_putc(out, ']');
    if (u)
        tg_buf_printf(
            out, ",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}",
            u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens);
    tg_buf_putc(out, '}');
}

void tg_cmpl_stream_text(tg_chat *c, const char *s, size_t n) {
    tg_buf j = TG_BUF_INIT, ev = TG_BUF_INIT;
    cmpl_json(c, &j, s, n, NULL, NULL);
    tg_sse_data(&ev, j.data, j.len);
    (void)tg_http_stream_write(c->ex, ev.data, ev.len);
    tg_buf_free(&j);
    tg_buf_free(&ev);
}

void tg_cmpl_finish(tg_chat *c, const char *text, size_t len, const char *finish,
                    const tg_oai_usage *u) {
    tg_buf j = TG_BUF_INIT, sse = TG_BUF_INIT;
    if (!finish) finish = "stop";
    if (c->stream) {
        cmpl_json(c, &j, "", 0, finish, NULL);
        tg_sse_data(&sse, j.data, j.len);
        if (c->include_usage && u) {
            tg_buf_clear(&j);
            tg_buf_puts(&j, "{\"id\":");
            tg_buf_json_str(&j, c->id, strlen(c->id));
            tg_buf_printf(&j,
                          ",\"object\":\"text_completion\",\"created\":%lld,\"choices\":[],"
                          "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                          "\"total_tokens\":%d}}",
                          (long long)c->created, u->prompt_tokens, u->completion_tokens,
                          u->prompt_tokens + u->completion_tokens);
            tg_sse_data(&sse, j.data, j.len);
        }
        tg_sse_done(&sse);
        (void)tg_http_stream_write(c->ex, sse.data, sse.len);
    } else {
        cmpl_json(c, &j, text, len, finish, u);
        tg_http_respond(c->ex, 200, "application/json", j.data, j.len);
    }
    tg_buf_free(&j);
    tg_buf_free(&sse);
}
