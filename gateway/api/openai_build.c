/* openai_build: the response side of openai_api.h: completion, chunk,
 * model-list, tool-call and error JSON, and response ids. Strings go
 * through tg_buf_json_str, so any text (model output included) is escaped. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/lfm_sched.h"
#include "gateway/api/openai_api.h"
#include "gateway/http/reqid.h"

/* ------------------------------------------------------------- builders -- */

static void put_opt_str(tg_buf *b, const char *s) {
    if (s && *s)
        tg_buf_json_str(b, s, strlen(s));
    else
        tg_buf_puts(b, "null");
}

void tg_oai_error_json(tg_buf *out, const tg_oai_error *e) {
    tg_buf_puts(out, "{\"error\":{\"message\":");
    tg_buf_json_str(out, e->message, strlen(e->message));
    tg_buf_puts(out, ",\"type\":");
    tg_buf_json_str(out, e->type, strlen(e->type));
    tg_buf_puts(out, ",\"param\":");
    put_opt_str(out, e->param);
    tg_buf_puts(out, ",\"code\":");
    put_opt_str(out, e->code);
    tg_buf_puts(out, "}}");
}

const char *tg_oai_http_error(tg_buf *out, int status, const char *code, const char *message) {
    tg_oai_error e;
    tg_oai_error_set(&e, status, status >= 500 ? "server_error" : "invalid_request_error", code,
                     NULL, "%s", message);
    tg_oai_error_json(out, &e);
    return "application/json";
}

const char *tg_oai_finish_reason(int lfm_finish, bool has_tool_calls) {
    if (has_tool_calls) return "tool_calls";
    switch (lfm_finish) {
    case LFM_FINISH_STOP: return "stop";
    case LFM_FINISH_LENGTH: return "length";
    default: return NULL;
    }
}

void tg_oai_new_id(const char *prefix, char *out, size_t cap) {
    char h[2 * 12 + 1]; /* 96 random bits */
    tg_random_hex(h, 12);
    snprintf(out, cap, "%s%s", prefix, h);
}

void tg_oai_tool_calls_json(tg_buf *out, const lfm_tool_call *calls, size_t n, bool index) {
    tg_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        char id[48];
        tg_oai_new_id("call_", id, sizeof id);
        if (i) tg_buf_putc(out, ',');
        tg_buf_putc(out, '{');
        if (index) tg_buf_printf(out, "\"index\":%zu,", i);
        tg_buf_puts(out, "\"id\":");
        tg_buf_json_str(out, id, strlen(id));
        tg_buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
        const char *name = calls[i].name ? calls[i].name : "";
        const char *args = calls[i].arguments_json ? calls[i].arguments_json : "{}";
        tg_buf_json_str(out, name, strlen(name));
        tg_buf_puts(out, ",\"arguments\":");
        tg_buf_json_str(out, args, strlen(args));
        tg_buf_puts(out, "}}");
    }
    tg_buf_putc(out, ']');
}

static void put_head(tg_buf *out, const char *id, const char *object, int64_t created,
                     const char *model) {
    tg_buf_puts(out, "{\"id\":");
    tg_buf_json_str(out, id, strlen(id));
    tg_buf_printf(out, ",\"object\":\"%s\",\"created\":%" PRId64 ",\"model\":", object, created);
    tg_buf_json_str(out, model, strlen(model));
    tg_buf_puts(out, ",\"system_fingerprint\":null");
}

static void put_usage(tg_buf *out, const tg_oai_usage *u) {
    tg_buf_printf(out,
                  "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d",
                  u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens);
    /* OpenAI's field for prompt tokens served from a cache: here, the
     * engine's prefix cache (a multi-turn chat's resent history). */
    if (u->cached_tokens > 0)
        tg_buf_printf(out, ",\"prompt_tokens_details\":{\"cached_tokens\":%d}", u->cached_tokens);
    tg_buf_putc(out, '}');
}

/* {"content":[...],"refusal":null} or null. */
static void put_logprobs(tg_buf *out, const char *content) {
    if (!content) {
        tg_buf_puts(out, "null");
        return;
    }
    tg_buf_puts(out, "{\"content\":");
    tg_buf_puts(out, content);
    tg_buf_puts(out, ",\"refusal\":null}");
}

/* A token's text as a JSON string: its bytes with any invalid UTF-8 (a
 * token may hold part of a character) shown as U+FFFD, as OpenAI does; the
 * exact bytes go in "bytes". */
static void put_token_text(tg_buf *out, const char *s, size_t n) {
    tg_buf clean = TG_BUF_INIT;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) { /* no overlongs, surrogates or > U+10FFFF */
            unsigned long cp = len == 2 ? (c & 0x1Ful) : len == 3 ? (c & 0x0Ful) : (c & 0x07ul);
            for (size_t k = 1; k < len; k++)
                cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3Ful);
            ok = (len == 2 && cp >= 0x80) ||
                 (len == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
                 (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
        }
        if (ok) {
            tg_buf_append(&clean, s + i, len);
            i += len;
        } else {
            tg_buf_put_utf8(&clean, 0xFFFD);
            i++;
        }
    }
    tg_buf_json_str(out, clean.data ? clean.data : "", clean.len);
    tg_buf_free(&clean);
}

static void put_token_lp(tg_buf *out, const lfm_tokenizer *t, int32_t id, float lp) {
    char bytes[256];
    size_t n = lfm_token_bytes(t, id, bytes, sizeof bytes);
    if (n > sizeof bytes) n = sizeof bytes;
    tg_buf_puts(out, "{\"token\":");
    put_token_text(out, bytes, n);
    /* -inf is not JSON: OpenAI clients expect a number; -9999 is what
     * OpenAI itself reports for "impossible". */
    tg_buf_printf(out, ",\"logprob\":%.9g,\"bytes\":[", isfinite(lp) ? (double)lp : -9999.0);
    for (size_t i = 0; i < n; i++)
        tg_buf_printf(out, i ? ",%u" : "%u", (unsigned)(unsigned char)bytes[i]);
    tg_buf_putc(out, ']');
}

void tg_oai_logprob_entry(tg_buf *out, const lfm_tokenizer *t, const lfm_event *ev) {
    put_token_lp(out, t, ev->token, ev->logprob);
    tg_buf_puts(out, ",\"top_logprobs\":[");
    for (int i = 0; i < ev->n_top; i++) {
        if (i) tg_buf_putc(out, ',');
        put_token_lp(out, t, ev->top_ids[i], ev->top_logprobs[i]);
        tg_buf_putc(out, '}');
    }
    tg_buf_puts(out, "]}");
}

void tg_oai_completion_json(tg_buf *out, const char *id, int64_t created, const char *model,
                            const char *content, size_t content_len, const char *tool_calls_json,
                            const char *finish_reason, const tg_oai_usage *usage,
                            const char *logprobs_content) {
    tg_oai_completion_json_r(out, id, created, model, content, content_len, NULL, 0,
                             tool_calls_json, finish_reason, usage, logprobs_content);
}

void tg_oai_completion_json_r(tg_buf *out, const char *id, int64_t created, const char *model,
                              const char *content, size_t content_len, const char *reasoning,
                              size_t reasoning_len, const char *tool_calls_json,
                              const char *finish_reason, const tg_oai_usage *usage,
                              const char *logprobs_content) {
    put_head(out, id, "chat.completion", created, model);
    tg_buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (content)
        tg_buf_json_str(out, content, content_len);
    else
        tg_buf_puts(out, "null");
    if (reasoning) {
        tg_buf_puts(out, ",\"reasoning_content\":");
        tg_buf_json_str(out, reasoning, reasoning_len);
    }
    if (tool_calls_json) {
        tg_buf_puts(out, ",\"tool_calls\":");
        tg_buf_puts(out, tool_calls_json);
    }
    tg_buf_puts(out, "},\"logprobs\":");
    put_logprobs(out, logprobs_content);
    tg_buf_puts(out, ",\"finish_reason\":");
    put_opt_str(out, finish_reason);
    tg_buf_puts(out, "}],");
    tg_oai_usage zero = {0, 0, 0};
    put_usage(out, usage ? usage : &zero);
    tg_buf_putc(out, '}');
}

void tg_oai_chunk_json(tg_buf *out, const char *id, int64_t created, const char *model,
                       const tg_oai_chunk *c) {
    put_head(out, id, "chat.completion.chunk", created, model);
    if (c->usage_only) {
        tg_buf_puts(out, ",\"choices\":[],");
        tg_oai_usage zero = {0, 0, 0};
        put_usage(out, c->usage ? c->usage : &zero);
        tg_buf_putc(out, '}');
        return;
    }
    tg_buf_puts(out, ",\"choices\":[{\"index\":0,\"delta\":{");
    bool first = true;
    if (c->role) {
        tg_buf_puts(out, "\"role\":");
        tg_buf_json_str(out, c->role, strlen(c->role));
        first = false;
    }
    if (c->content) {
        tg_buf_puts(out, first ? "\"content\":" : ",\"content\":");
        tg_buf_json_str(out, c->content, c->content_len);
        first = false;
    }
    if (c->reasoning_content) {
        tg_buf_puts(out, first ? "\"reasoning_content\":" : ",\"reasoning_content\":");
        tg_buf_json_str(out, c->reasoning_content, c->reasoning_len);
        first = false;
    }
    if (c->tool_calls_json) {
        tg_buf_puts(out, first ? "\"tool_calls\":" : ",\"tool_calls\":");
        tg_buf_puts(out, c->tool_calls_json);
    }
    tg_buf_puts(out, "},\"logprobs\":");
    put_logprobs(out, c->logprobs_content);
    tg_buf_puts(out, ",\"finish_reason\":");
    put_opt_str(out, c->finish_reason);
    tg_buf_puts(out, "}]}");
}

void tg_oai_models_json(tg_buf *out, const char *const *ids, const char *const *owners, size_t n,
                        int64_t created) {
    tg_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) tg_buf_putc(out, ',');
        tg_buf_puts(out, "{\"id\":");
        tg_buf_json_str(out, ids[i], strlen(ids[i]));
        tg_buf_printf(out, ",\"object\":\"model\",\"created\":%" PRId64 ",\"owned_by\":", created);
        const char *o = owners && owners[i] ? owners[i] : "tidegate";
        tg_buf_json_str(out, o, strlen(o));
        tg_buf_putc(out, '}');
    }
    tg_buf_puts(out, "]}");
}
