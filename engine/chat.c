/* chat.c: LFM2's chat template, rendered in C (no Jinja engine).
 *
 * Facts from the published LFM2 Jinja template (tokenizer.chat_template):
 *   - output starts with bos_token (<|startoftext|>);
 *   - a leading system message is taken out of the list; when tools are
 *     given, "List of tools: <|tool_list_start|>[t1, t2]<|tool_list_end|>"
 *     is appended to it (after "\n" when the system text is not empty); the
 *     system turn appears only when that text is not empty;
 *   - each tool is rendered with `tool | tojson` -- the WHOLE element of the
 *     OpenAI `tools` array (e.g. {"type": "function", "function": {...}}),
 *     in Python json.dumps spacing (", " and ": ", non-ASCII kept); a tool
 *     that is a JSON string is inserted verbatim;
 *   - every other message: <|im_start|>{role}\n{content}<|im_end|>\n, tool
 *     messages wrapped in <|tool_response_start|>...<|tool_response_end|>;
 *   - generation prompt: <|im_start|>assistant\n.
 * The LFM2 template ignores `tool_calls`; we render an assistant turn's
 * calls as the LFM2.5 template does (and as the model writes them), before
 * the content: <|tool_call_start|>[name(arg="v", n=1)]<|tool_call_end|>,
 * arguments formatted by the LFM2.5 template's rules: strings in double
 * quotes as they are (no escaping), numbers as written, booleans True/False,
 * null as `null`, lists and objects as tojson. Arguments given as JSON text
 * (the OpenAI wire form) are parsed first.
 * LFM2.5 (LFM2.5-1.2B-Instruct template) differs in three ways: "List of
 * tools: [...]" without the list tokens; tool turns are NOT wrapped in
 * <|tool_response_start|>/<|tool_response_end|>; and every assistant turn but
 * the last assistant turn keeps only what follows its last </think>,
 * trimmed (`content.split("</think>")[-1] | trim`).
 *
 * Rendering goes through tagged segments (chat_segs.h) so that
 * lfm_chat_tokenize can tell the template's own control markers from
 * caller-provided text; lfm_chat_render just concatenates them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat_segs.h"
#include "common/ljson.h"
#include "engine/lfm.h"

lfm_template_kind lfm_chat_template_kind(const char *jinja) {
    if (!jinja || strstr(jinja, "<|tool_list_start|>")) return LFM_TEMPLATE_LFM2;
    if (strstr(jinja, "List of tools: [") || strstr(jinja, "</think>")) return LFM_TEMPLATE_LFM25;
    return LFM_TEMPLATE_LFM2;
}

bool lfm_chat_template_opens_think(const char *jinja) {
    /* The generation prompt string, with the newline as written in Jinja
     * source (an escape) or as a real newline. */
    return jinja && (strstr(jinja, "assistant\\n<think>") || strstr(jinja, "assistant\n<think>"));
}

static const char *role_name(lfm_role r) {
    switch (r) {
    case LFM_ROLE_SYSTEM: return "system";
    case LFM_ROLE_USER: return "user";
    case LFM_ROLE_ASSISTANT: return "assistant";
    case LFM_ROLE_TOOL: return "tool";
    }
    return NULL;
}

/* ------------------------------------------------------------ segments -- */

void chat_segs_free(chat_segs *cs) {
    tg_buf_free(&cs->text);
    free(cs->seg);
    *cs = (chat_segs)CHAT_SEGS_INIT;
}

static void segs_clear(chat_segs *cs) {
    cs->text.len = 0;
    if (cs->text.data) cs->text.data[0] = 0;
    cs->n_seg = 0;
}

/* Tags the bytes appended since `start`. Neighbouring TEXT or CONTENT runs
 * of the same kind merge; markers stay one segment each (one token each).
 * Allocation failure aborts, as tg_buf does. */
static void seg_close(chat_segs *cs, chat_seg_kind kind, size_t start) {
    size_t len = cs->text.len - start;
    if (len == 0) return;
    chat_seg *last = cs->n_seg ? &cs->seg[cs->n_seg - 1] : NULL;
    if (last && last->kind == kind && (kind == CHAT_SEG_TEXT || kind == CHAT_SEG_CONTENT)) {
        last->len += len;
        return;
    }
    if (cs->n_seg == cs->cap_seg) {
        size_t cap = cs->cap_seg ? cs->cap_seg * 2 : 32;
        chat_seg *p = realloc(cs->seg, cap * sizeof *p);
        if (!p) abort();
        cs->seg = p;
        cs->cap_seg = cap;
    }
    cs->seg[cs->n_seg++] = (chat_seg){start, len, kind};
}

static void seg_put(chat_segs *cs, chat_seg_kind kind, const char *s, size_t n) {
    size_t start = cs->text.len;
    tg_buf_append(&cs->text, s, n);
    seg_close(cs, kind, start);
}

static void seg_puts(chat_segs *cs, chat_seg_kind kind, const char *s) {
    seg_put(cs, kind, s, strlen(s));
}

/* Appends all of src's segments to dst. */
static void segs_append(chat_segs *dst, const chat_segs *src) {
    for (size_t i = 0; i < src->n_seg; i++)
        seg_put(dst, src->seg[i].kind, src->text.data + src->seg[i].off, src->seg[i].len);
}

/* ----------------------------------------------------------- rendering -- */

/* One argument value, by the LFM2.5 template's format_arg rules. The quotes
 * around a string are template text; the value is the caller's. */
static void write_argval(chat_segs *cs, const ljson *v) {
    size_t start = cs->text.len;
    switch (v->type) {
    case LJ_NULL: tg_buf_puts(&cs->text, "null"); break;
    case LJ_TRUE: tg_buf_puts(&cs->text, "True"); break;
    case LJ_FALSE: tg_buf_puts(&cs->text, "False"); break;
    case LJ_NUM: tg_buf_append(&cs->text, v->str, v->len); break;
    case LJ_STR:
        seg_puts(cs, CHAT_SEG_TEXT, "\"");
        seg_put(cs, CHAT_SEG_CONTENT, v->str, v->len);
        seg_puts(cs, CHAT_SEG_TEXT, "\"");
        return;
    case LJ_ARR:
    case LJ_OBJ: ljson_write(&cs->text, v, LJSON_PYTHON); break;
    }
    seg_close(cs, CHAT_SEG_CONTENT, start);
}

/* OpenAI function names: [A-Za-z0-9_-]+ (dots allowed for namespaces). */
static bool is_ident(const char *s, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

/* OpenAI tool_calls array -> <|tool_call_start|>[f(a="x"), g()]<|tool_call_end|>. */
static int render_tool_calls(chat_segs *out, const char *json, char *err, size_t errlen) {
    char jerr[160];
    ljson *arr = ljson_parse(json, strlen(json), jerr, sizeof jerr);
    if (!arr || arr->type != LJ_ARR) {
        snprintf(err, errlen, "tool_calls: %s", arr ? "not a JSON array" : jerr);
        ljson_free(arr);
        return LFM_EINVAL;
    }
    int rc = 0;
    if (arr->n == 0) goto done;
    seg_puts(out, CHAT_SEG_MARK, "<|tool_call_start|>");
    seg_puts(out, CHAT_SEG_TEXT, "[");
    for (size_t i = 0; i < arr->n && !rc; i++) {
        const ljson *call = arr->items[i];
        const ljson *fn = ljson_get(call, "function");
        if (!fn) fn = call;
        const ljson *name = ljson_get(fn, "name"), *args = ljson_get(fn, "arguments");
        if (!name || name->type != LJ_STR || !is_ident(name->str, name->len)) {
            snprintf(err, errlen, "tool_calls[%zu]: missing or bad function name", i);
            rc = LFM_EINVAL;
            break;
        }
        ljson *parsed = NULL;
        if (args && args->type == LJ_STR) { /* OpenAI sends arguments as JSON text */
            size_t k = 0;
            while (k < args->len && strchr(" \t\r\n", args->str[k]))
                k++;
            if (k < args->len) {
                parsed = ljson_parse(args->str, args->len, jerr, sizeof jerr);
                if (!parsed) {
                    snprintf(err, errlen, "tool_calls[%zu].arguments: %s", i, jerr);
                    rc = LFM_EINVAL;
                    break;
                }
                args = parsed;
            } else {
                args = NULL;
            }
        }
        if (args && args->type == LJ_NULL) args = NULL;
        if (args && args->type != LJ_OBJ) {
            snprintf(err, errlen, "tool_calls[%zu].arguments: not a JSON object", i);
            ljson_free(parsed);
            rc = LFM_EINVAL;
            break;
        }
        if (i) seg_puts(out, CHAT_SEG_TEXT, ", ");
        seg_put(out, CHAT_SEG_CONTENT, name->str, name->len);
        seg_puts(out, CHAT_SEG_TEXT, "(");
        for (size_t a = 0; args && a < args->n; a++) {
            if (a) seg_puts(out, CHAT_SEG_TEXT, ", ");
            seg_put(out, CHAT_SEG_CONTENT, args->keys[a]->str, args->keys[a]->len);
            seg_puts(out, CHAT_SEG_TEXT, "=");
            write_argval(out, args->items[a]);
        }
        seg_puts(out, CHAT_SEG_TEXT, ")");
        ljson_free(parsed);
    }
    if (!rc) {
        seg_puts(out, CHAT_SEG_TEXT, "]");
        seg_puts(out, CHAT_SEG_MARK, "<|tool_call_end|>");
    }
done:
    ljson_free(arr);
    return rc;
}

/* Appends "List of tools: ..." for a non-empty tools array. */
static int render_tools(chat_segs *sys, lfm_template_kind kind, const char *json, char *err,
                        size_t errlen) {
    char jerr[160];
    ljson *arr = ljson_parse(json, strlen(json), jerr, sizeof jerr);
    if (!arr || arr->type != LJ_ARR) {
        snprintf(err, errlen, "tools: %s", arr ? "not a JSON array" : jerr);
        ljson_free(arr);
        return LFM_EINVAL;
    }
    if (arr->n > 0) { /* Jinja: an empty list is false */
        if (sys->text.len) seg_puts(sys, CHAT_SEG_TEXT, "\n");
        seg_puts(sys, CHAT_SEG_TEXT, "List of tools: ");
        if (kind == LFM_TEMPLATE_LFM2) seg_puts(sys, CHAT_SEG_MARK, "<|tool_list_start|>");
        seg_puts(sys, CHAT_SEG_TEXT, "[");
        for (size_t i = 0; i < arr->n; i++) {
            if (i) seg_puts(sys, CHAT_SEG_TEXT, ", ");
            const ljson *t = arr->items[i];
            size_t start = sys->text.len;
            if (t->type == LJ_STR)
                tg_buf_append(&sys->text, t->str, t->len);
            else
                ljson_write(&sys->text, t, LJSON_PYTHON);
            seg_close(sys, CHAT_SEG_CONTENT, start);
        }
        seg_puts(sys, CHAT_SEG_TEXT, "]");
        if (kind == LFM_TEMPLATE_LFM2) seg_puts(sys, CHAT_SEG_MARK, "<|tool_list_end|>");
    }
    ljson_free(arr);
    return 0;
}

static bool is_pyspace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* LFM2.5: keep what follows the last </think>, stripped. */
static void append_without_think(chat_segs *out, const char *c) {
    const char *p = NULL, *q = c;
    while ((q = strstr(q, "</think>")) != NULL)
        p = q++;
    if (!p) {
        seg_puts(out, CHAT_SEG_CONTENT, c);
        return;
    }
    p += 8;
    const char *e = p + strlen(p);
    while (p < e && is_pyspace(*p))
        p++;
    while (e > p && is_pyspace(e[-1]))
        e--;
    seg_put(out, CHAT_SEG_CONTENT, p, (size_t)(e - p));
}

int chat_render_segs(lfm_template_kind kind, const lfm_chat_msg *msgs, size_t n,
                     const char *tools_json, bool add_generation_prompt, chat_segs *out, char *err,
                     size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    if (!out || (n && !msgs) || (kind != LFM_TEMPLATE_LFM2 && kind != LFM_TEMPLATE_LFM25)) {
        snprintf(err, errlen, "chat: bad arguments");
        return LFM_EINVAL;
    }
    segs_clear(out);
    chat_segs sys = CHAT_SEGS_INIT;
    size_t first = 0;
    int rc = 0;
    seg_puts(out, CHAT_SEG_BOS, "<|startoftext|>");
    if (n > 0 && msgs[0].role == LFM_ROLE_SYSTEM) {
        if (msgs[0].content) seg_puts(&sys, CHAT_SEG_CONTENT, msgs[0].content);
        first = 1;
    }
    if (tools_json) rc = render_tools(&sys, kind, tools_json, err, errlen);
    if (!rc && sys.text.len) {
        seg_puts(out, CHAT_SEG_MARK, "<|im_start|>");
        seg_puts(out, CHAT_SEG_TEXT, "system\n");
        segs_append(out, &sys);
        seg_puts(out, CHAT_SEG_MARK, "<|im_end|>");
        seg_puts(out, CHAT_SEG_TEXT, "\n");
    }
    size_t last_asst = n; /* n: none */
    for (size_t i = first; i < n; i++)
        if (msgs[i].role == LFM_ROLE_ASSISTANT) last_asst = i;
    for (size_t i = first; i < n && !rc; i++) {
        const lfm_chat_msg *m = &msgs[i];
        const char *role = role_name(m->role);
        if (!role) {
            snprintf(err, errlen, "chat: message %zu has an unknown role", i);
            rc = LFM_EINVAL;
            break;
        }
        const char *content = m->content ? m->content : "";
        seg_puts(out, CHAT_SEG_MARK, "<|im_start|>");
        seg_puts(out, CHAT_SEG_TEXT, role);
        seg_puts(out, CHAT_SEG_TEXT, "\n");
        if (m->role == LFM_ROLE_ASSISTANT) {
            if (m->tool_calls_json) {
                rc = render_tool_calls(out, m->tool_calls_json, err, errlen);
                if (rc) break;
            }
            if (kind == LFM_TEMPLATE_LFM25 && i != last_asst)
                append_without_think(out, content);
            else
                seg_puts(out, CHAT_SEG_CONTENT, content);
        } else if (m->role == LFM_ROLE_TOOL && kind == LFM_TEMPLATE_LFM2) {
            seg_puts(out, CHAT_SEG_MARK, "<|tool_response_start|>");
            seg_puts(out, CHAT_SEG_CONTENT, content);
            seg_puts(out, CHAT_SEG_MARK, "<|tool_response_end|>");
        } else {
            seg_puts(out, CHAT_SEG_CONTENT, content);
        }
        seg_puts(out, CHAT_SEG_MARK, "<|im_end|>");
        seg_puts(out, CHAT_SEG_TEXT, "\n");
    }
    if (!rc && add_generation_prompt) {
        seg_puts(out, CHAT_SEG_MARK, "<|im_start|>");
        seg_puts(out, CHAT_SEG_TEXT, "assistant\n");
    }
    chat_segs_free(&sys);
    if (rc) segs_clear(out);
    return rc;
}

int lfm_chat_render(lfm_template_kind kind, const lfm_chat_msg *msgs, size_t n,
                    const char *tools_json, bool add_generation_prompt, tg_buf *out, char *err,
                    size_t errlen) {
    if (!out) {
        if (err && errlen) snprintf(err, errlen, "chat: bad arguments");
        return LFM_EINVAL;
    }
    chat_segs cs = CHAT_SEGS_INIT;
    int rc = chat_render_segs(kind, msgs, n, tools_json, add_generation_prompt, &cs, err, errlen);
    if (!rc) tg_buf_append(out, cs.text.data, cs.text.len); /* on error out stays as it was */
    chat_segs_free(&cs);
    return rc;
}
