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
 * trimmed (`content.split("</think>")[-1] | trim`). */
#include <stdio.h>
#include <string.h>

#include "engine/ljson.h"
#include "engine/lfm.h"

lfm_template_kind lfm_chat_template_kind(const char *jinja) {
    if (!jinja || strstr(jinja, "<|tool_list_start|>")) return LFM_TEMPLATE_LFM2;
    if (strstr(jinja, "List of tools: [") || strstr(jinja, "</think>")) return LFM_TEMPLATE_LFM25;
    return LFM_TEMPLATE_LFM2;
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

/* One argument value, by the LFM2.5 template's format_arg rules. */
static void write_argval(tg_buf *b, const ljson *v) {
    switch (v->type) {
    case LJ_NULL: tg_buf_puts(b, "null"); break;
    case LJ_TRUE: tg_buf_puts(b, "True"); break;
    case LJ_FALSE: tg_buf_puts(b, "False"); break;
    case LJ_NUM: tg_buf_append(b, v->str, v->len); break;
    case LJ_STR:
        tg_buf_putc(b, '"');
        tg_buf_append(b, v->str, v->len);
        tg_buf_putc(b, '"');
        break;
    case LJ_ARR:
    case LJ_OBJ: ljson_write(b, v, LJSON_PYTHON); break;
    }
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
static int render_tool_calls(tg_buf *out, const char *json, char *err, size_t errlen) {
    char jerr[160];
    ljson *arr = ljson_parse(json, strlen(json), jerr, sizeof jerr);
    if (!arr || arr->type != LJ_ARR) {
        snprintf(err, errlen, "tool_calls: %s", arr ? "not a JSON array" : jerr);
        ljson_free(arr);
        return LFM_EINVAL;
    }
    int rc = 0;
    if (arr->n == 0) goto done;
    tg_buf_puts(out, "<|tool_call_start|>[");
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
        if (i) tg_buf_puts(out, ", ");
        tg_buf_append(out, name->str, name->len);
        tg_buf_putc(out, '(');
        for (size_t a = 0; args && a < args->n; a++) {
            if (a) tg_buf_puts(out, ", ");
            tg_buf_append(out, args->keys[a]->str, args->keys[a]->len);
            tg_buf_putc(out, '=');
            write_argval(out, args->items[a]);
        }
        tg_buf_putc(out, ')');
        ljson_free(parsed);
    }
    if (!rc) tg_buf_puts(out, "]<|tool_call_end|>");
done:
    ljson_free(arr);
    return rc;
}

/* Appends "List of tools: ..." for a non-empty tools array. */
static int render_tools(tg_buf *sys, lfm_template_kind kind, const char *json, char *err,
                        size_t errlen) {
    char jerr[160];
    ljson *arr = ljson_parse(json, strlen(json), jerr, sizeof jerr);
    if (!arr || arr->type != LJ_ARR) {
        snprintf(err, errlen, "tools: %s", arr ? "not a JSON array" : jerr);
        ljson_free(arr);
        return LFM_EINVAL;
    }
    if (arr->n > 0) { /* Jinja: an empty list is false */
        if (sys->len) tg_buf_putc(sys, '\n');
        tg_buf_puts(sys, kind == LFM_TEMPLATE_LFM2 ? "List of tools: <|tool_list_start|>["
                                                   : "List of tools: [");
        for (size_t i = 0; i < arr->n; i++) {
            if (i) tg_buf_puts(sys, ", ");
            const ljson *t = arr->items[i];
            if (t->type == LJ_STR)
                tg_buf_append(sys, t->str, t->len);
            else
                ljson_write(sys, t, LJSON_PYTHON);
        }
        tg_buf_puts(sys, kind == LFM_TEMPLATE_LFM2 ? "]<|tool_list_end|>" : "]");
    }
    ljson_free(arr);
    return 0;
}

static bool is_pyspace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* LFM2.5: keep what follows the last </think>, stripped. */
static void append_without_think(tg_buf *out, const char *c) {
    const char *p = NULL, *q = c;
    while ((q = strstr(q, "</think>")) != NULL)
        p = q++;
    if (!p) {
        tg_buf_puts(out, c);
        return;
    }
    p += 8;
    const char *e = p + strlen(p);
    while (p < e && is_pyspace(*p))
        p++;
    while (e > p && is_pyspace(e[-1]))
        e--;
    tg_buf_append(out, p, (size_t)(e - p));
}

int lfm_chat_render(lfm_template_kind kind, const lfm_chat_msg *msgs, size_t n,
                    const char *tools_json, bool add_generation_prompt, tg_buf *out, char *err,
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
    size_t start_len = out->len;
    tg_buf sys = TG_BUF_INIT;
    size_t first = 0;
    int rc = 0;
    tg_buf_puts(out, "<|startoftext|>");
    if (n > 0 && msgs[0].role == LFM_ROLE_SYSTEM) {
        if (msgs[0].content) tg_buf_puts(&sys, msgs[0].content);
        first = 1;
    }
    if (tools_json) rc = render_tools(&sys, kind, tools_json, err, errlen);
    if (!rc && sys.len) {
        tg_buf_puts(out, "<|im_start|>system\n");
        tg_buf_append(out, sys.data, sys.len);
        tg_buf_puts(out, "<|im_end|>\n");
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
        tg_buf_puts(out, "<|im_start|>");
        tg_buf_puts(out, role);
        tg_buf_putc(out, '\n');
        if (m->role == LFM_ROLE_ASSISTANT) {
            if (m->tool_calls_json) {
                rc = render_tool_calls(out, m->tool_calls_json, err, errlen);
                if (rc) break;
            }
            if (kind == LFM_TEMPLATE_LFM25 && i != last_asst)
                append_without_think(out, content);
            else
                tg_buf_puts(out, content);
        } else if (m->role == LFM_ROLE_TOOL && kind == LFM_TEMPLATE_LFM2) {
            tg_buf_puts(out, "<|tool_response_start|>");
            tg_buf_puts(out, content);
            tg_buf_puts(out, "<|tool_response_end|>");
        } else {
            tg_buf_puts(out, content);
        }
        tg_buf_puts(out, "<|im_end|>\n");
    }
    if (!rc && add_generation_prompt) tg_buf_puts(out, "<|im_start|>assistant\n");
    tg_buf_free(&sys);
    if (rc) { /* leave out as it was */
        out->len = start_len;
        if (out->data) out->data[start_len] = 0;
    }
    return rc;
}
