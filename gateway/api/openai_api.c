/* openai_api: parse and validate chat-completions requests (the builders
 * are in openai_build.c).
 * Parsing walks the json-c tree field by field; every accessor checks the
 * JSON type first, so a hostile body can only produce a 400. */
#include "gateway/api/openai_api.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_jstrict.h"
#include "common/tg_str.h"

#define ERR_INVALID "invalid_request_error"

/* ------------------------------------------------------------- helpers -- */

static const char *type_name(json_object *o) {
    switch (json_object_get_type(o)) {
    case json_type_null: return "null";
    case json_type_boolean: return "boolean";
    case json_type_double:
    case json_type_int: return "number";
    case json_type_object: return "object";
    case json_type_array: return "array";
    case json_type_string: return "string";
    }
    return "value";
}

static int wrong_type(tg_oai_error *e, const char *param, const char *want, json_object *got) {
    tg_oai_error_set(e, 400, ERR_INVALID, "invalid_type", param, "%s must be %s, got %s", param,
                     want, type_name(got));
    return -1;
}

/* Copies a JSON string; text with NUL bytes is refused because the engine
 * takes C strings and would silently cut it. */
static int dup_string(json_object *o, const char *param, char **out, tg_oai_error *e) {
    if (!json_object_is_type(o, json_type_string)) return wrong_type(e, param, "a string", o);
    size_t n = (size_t)json_object_get_string_len(o);
    const char *s = json_object_get_string(o);
    if (memchr(s, 0, n)) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", param,
                         "%s must not contain NUL characters", param);
        return -1;
    }
    char *d = malloc(n + 1);
    if (!d) abort();
    memcpy(d, s, n);
    d[n] = 0;
    *out = d;
    return 0;
}

/* Looks a field up; a present JSON null counts as absent. */
static json_object *field(json_object *obj, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v)) return NULL;
    if (!v || json_object_is_type(v, json_type_null)) return NULL;
    return v;
}

static int get_number(json_object *v, const char *param, double lo, double hi, double *out,
                      tg_oai_error *e) {
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return wrong_type(e, param, "a number", v);
    double d = json_object_get_double(v);
    if (!isfinite(d) || d < lo || d > hi) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", param,
                         "%s must be between %g and %g", param, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int get_int(json_object *v, const char *param, int64_t lo, int64_t hi, int64_t *out,
                   tg_oai_error *e) {
    if (!json_object_is_type(v, json_type_int)) return wrong_type(e, param, "an integer", v);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", param,
                         "%s must be between %" PRId64 " and %" PRId64, param, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int get_bool(json_object *v, const char *param, bool *out, tg_oai_error *e) {
    if (!json_object_is_type(v, json_type_boolean)) return wrong_type(e, param, "a boolean", v);
    *out = json_object_get_boolean(v);
    return 0;
}

static const char *to_json(json_object *o) {
    return json_object_to_json_string_ext(o,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ------------------------------------------------------------ messages -- */

/* content: a string, or an array of {type:"text", text} parts (joined with
 * newlines). Other part types (images, audio) are not supported by LFM2. */
static int parse_content(json_object *c, const char *param, char **out, tg_oai_error *e) {
    if (json_object_is_type(c, json_type_string)) return dup_string(c, param, out, e);
    if (!json_object_is_type(c, json_type_array))
        return wrong_type(e, param, "a string or an array of content parts", c);
    tg_buf b = TG_BUF_INIT;
    tg_buf_puts(&b, ""); /* "" rather than NULL for an empty array */
    size_t n = json_object_array_length(c);
    char p[64];
    for (size_t j = 0; j < n; j++) {
        json_object *part = json_object_array_get_idx(c, j);
        snprintf(p, sizeof p, "%s[%zu]", param, j);
        if (!json_object_is_type(part, json_type_object)) {
            tg_buf_free(&b);
            return wrong_type(e, p, "an object", part);
        }
        json_object *ty = field(part, "type");
        snprintf(p, sizeof p, "%s[%zu].type", param, j);
        if (!ty || !json_object_is_type(ty, json_type_string)) {
            tg_buf_free(&b);
            return ty ? wrong_type(e, p, "a string", ty)
                      : (tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p,
                                          "%s is required", p),
                         -1);
        }
        if (strcmp(json_object_get_string(ty), "text") != 0) {
            tg_oai_error_set(e, 400, ERR_INVALID, "unsupported_value", p,
                             "content part type '%.32s' is not supported (only 'text')",
                             json_object_get_string(ty));
            tg_buf_free(&b);
            return -1;
        }
        snprintf(p, sizeof p, "%s[%zu].text", param, j);
        json_object *tx = field(part, "text");
        char *s = NULL;
        if (!tx) {
            tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p, "%s is required",
                             p);
            tg_buf_free(&b);
            return -1;
        }
        if (dup_string(tx, p, &s, e) < 0) {
            tg_buf_free(&b);
            return -1;
        }
        if (j) tg_buf_putc(&b, '\n');
        tg_buf_puts(&b, s);
        free(s);
    }
    *out = tg_buf_steal(&b);
    if (!*out) *out = tg_xstrdup("");
    return 0;
}

/* Assistant tool_calls, normalized to [{id,type,function:{name,arguments}}]
 * with arguments as a JSON string, whatever form the caller used. */
static int parse_tool_calls(json_object *tc, const char *param, char **out, tg_oai_error *e) {
    if (!json_object_is_type(tc, json_type_array)) return wrong_type(e, param, "an array", tc);
    size_t n = json_object_array_length(tc);
    json_object *norm = json_object_new_array();
    char p[96];
    for (size_t j = 0; j < n; j++) {
        json_object *c = json_object_array_get_idx(tc, j);
        snprintf(p, sizeof p, "%s[%zu]", param, j);
        if (!json_object_is_type(c, json_type_object)) goto bad_type_obj;
        json_object *fn = field(c, "function");
        snprintf(p, sizeof p, "%s[%zu].function", param, j);
        if (!fn || !json_object_is_type(fn, json_type_object)) {
            c = fn;
            goto bad_type_obj;
        }
        json_object *name = field(fn, "name");
        snprintf(p, sizeof p, "%s[%zu].function.name", param, j);
        if (!name || !json_object_is_type(name, json_type_string)) {
            json_object_put(norm);
            return wrong_type(e, p, "a string", name);
        }
        json_object *args = field(fn, "arguments");
        const char *args_text = "{}";
        if (args) {
            if (json_object_is_type(args, json_type_string))
                args_text = json_object_get_string(args);
            else if (json_object_is_type(args, json_type_object))
                args_text = to_json(args);
            else {
                snprintf(p, sizeof p, "%s[%zu].function.arguments", param, j);
                json_object_put(norm);
                return wrong_type(e, p, "a string", args);
            }
        }
        json_object *id = field(c, "id");
        json_object *o = json_object_new_object();
        char idbuf[48];
        if (id && json_object_is_type(id, json_type_string)) {
            json_object_object_add(o, "id", json_object_get(id));
        } else {
            tg_oai_new_id("call_", idbuf, sizeof idbuf);
            json_object_object_add(o, "id", json_object_new_string(idbuf));
        }
        json_object_object_add(o, "type", json_object_new_string("function"));
        json_object *f = json_object_new_object();
        json_object_object_add(f, "name", json_object_get(name));
        json_object_object_add(f, "arguments", json_object_new_string(args_text));
        json_object_object_add(o, "function", f);
        json_object_array_add(norm, o);
        continue;
    bad_type_obj:
        json_object_put(norm);
        return c ? wrong_type(e, p, "an object", c)
                 : (tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p,
                                     "%s is required", p),
                    -1);
    }
    *out = tg_xstrdup(to_json(norm));
    json_object_put(norm);
    return 0;
}

static int parse_message(json_object *m, size_t i, tg_oai_msg *out, tg_oai_error *e) {
    char p[64];
    snprintf(p, sizeof p, "messages[%zu]", i);
    if (!json_object_is_type(m, json_type_object)) return wrong_type(e, p, "an object", m);
    snprintf(p, sizeof p, "messages[%zu].role", i);
    json_object *role = field(m, "role");
    if (!role) {
        tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p, "%s is required", p);
        return -1;
    }
    if (!json_object_is_type(role, json_type_string)) return wrong_type(e, p, "a string", role);
    const char *r = json_object_get_string(role);
    if (!strcmp(r, "system") || !strcmp(r, "developer"))
        out->role = LFM_ROLE_SYSTEM;
    else if (!strcmp(r, "user"))
        out->role = LFM_ROLE_USER;
    else if (!strcmp(r, "assistant"))
        out->role = LFM_ROLE_ASSISTANT;
    else if (!strcmp(r, "tool"))
        out->role = LFM_ROLE_TOOL;
    else {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", p,
                         "%s must be one of system, developer, user, assistant, tool", p);
        return -1;
    }
    json_object *c = field(m, "content");
    snprintf(p, sizeof p, "messages[%zu].content", i);
    if (c && parse_content(c, p, &out->content, e) < 0) return -1;
    if (out->role == LFM_ROLE_ASSISTANT) {
        json_object *tc = field(m, "tool_calls");
        snprintf(p, sizeof p, "messages[%zu].tool_calls", i);
        if (tc && parse_tool_calls(tc, p, &out->tool_calls_json, e) < 0) return -1;
        if (!out->content && !out->tool_calls_json) out->content = tg_xstrdup("");
    } else if (!out->content) {
        tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p, "%s is required", p);
        return -1;
    }
    if (out->role == LFM_ROLE_TOOL) {
        json_object *id = field(m, "tool_call_id");
        snprintf(p, sizeof p, "messages[%zu].tool_call_id", i);
        if (id && dup_string(id, p, &out->tool_call_id, e) < 0) return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- tools -- */

static int parse_tools(json_object *root, tg_oai_request *r, tg_oai_error *e) {
    json_object *tools = field(root, "tools");
    json_object *choice = field(root, "tool_choice");
    char p[64];
    if (choice) {
        if (json_object_is_type(choice, json_type_string)) {
            const char *c = json_object_get_string(choice);
            if (!strcmp(c, "auto"))
                r->tool_choice = TG_OAI_TOOL_CHOICE_AUTO;
            else if (!strcmp(c, "none"))
                r->tool_choice = TG_OAI_TOOL_CHOICE_NONE;
            else if (!strcmp(c, "required"))
                r->tool_choice = TG_OAI_TOOL_CHOICE_REQUIRED;
            else {
                tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "tool_choice",
                                 "tool_choice must be 'none', 'auto', 'required' or an object");
                return -1;
            }
        } else if (json_object_is_type(choice, json_type_object)) {
            json_object *fn = field(choice, "function");
            json_object *name =
                fn && json_object_is_type(fn, json_type_object) ? field(fn, "name") : NULL;
            if (!name) {
                tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter",
                                 "tool_choice.function.name",
                                 "tool_choice.function.name is required");
                return -1;
            }
            if (dup_string(name, "tool_choice.function.name", &r->tool_choice_name, e) < 0)
                return -1;
            r->tool_choice = TG_OAI_TOOL_CHOICE_NAMED;
        } else {
            return wrong_type(e, "tool_choice", "a string or an object", choice);
        }
    }
    if (!tools) {
        if (r->tool_choice == TG_OAI_TOOL_CHOICE_REQUIRED ||
            r->tool_choice == TG_OAI_TOOL_CHOICE_NAMED) {
            tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "tool_choice",
                             "tool_choice needs a non-empty tools array");
            return -1;
        }
        return 0;
    }
    if (!json_object_is_type(tools, json_type_array))
        return wrong_type(e, "tools", "an array", tools);
    size_t n = json_object_array_length(tools);
    if (n > TG_OAI_MAX_TOOLS) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "tools",
                         "tools may hold at most %d entries", TG_OAI_MAX_TOOLS);
        return -1;
    }
    json_object *keep = json_object_new_array();
    bool named_found = false;
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        snprintf(p, sizeof p, "tools[%zu]", i);
        if (!json_object_is_type(t, json_type_object)) {
            json_object_put(keep);
            return wrong_type(e, p, "an object", t);
        }
        json_object *ty = field(t, "type");
        if (ty && (!json_object_is_type(ty, json_type_string) ||
                   strcmp(json_object_get_string(ty), "function") != 0)) {
            snprintf(p, sizeof p, "tools[%zu].type", i);
            tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", p, "%s must be 'function'", p);
            json_object_put(keep);
            return -1;
        }
        json_object *fn = field(t, "function");
        snprintf(p, sizeof p, "tools[%zu].function", i);
        if (!fn || !json_object_is_type(fn, json_type_object)) {
            json_object_put(keep);
            if (!fn) {
                tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p,
                                 "%s is required", p);
                return -1;
            }
            return wrong_type(e, p, "an object", fn);
        }
        json_object *name = field(fn, "name");
        snprintf(p, sizeof p, "tools[%zu].function.name", i);
        if (!name || !json_object_is_type(name, json_type_string) ||
            json_object_get_string_len(name) == 0) {
            json_object_put(keep);
            if (name && !json_object_is_type(name, json_type_string))
                return wrong_type(e, p, "a string", name);
            tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p, "%s is required",
                             p);
            return -1;
        }
        json_object *params = field(fn, "parameters");
        if (params && !json_object_is_type(params, json_type_object)) {
            snprintf(p, sizeof p, "tools[%zu].function.parameters", i);
            json_object_put(keep);
            return wrong_type(e, p, "an object", params);
        }
        bool is_named =
            r->tool_choice_name && !strcmp(json_object_get_string(name), r->tool_choice_name);
        named_found |= is_named;
        if (r->tool_choice != TG_OAI_TOOL_CHOICE_NAMED || is_named)
            json_object_array_add(keep, json_object_get(t));
    }
    if (r->tool_choice == TG_OAI_TOOL_CHOICE_NAMED && !named_found) {
        json_object_put(keep);
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "tool_choice",
                         "tool_choice names a function that is not in tools");
        return -1;
    }
    r->n_tools = json_object_array_length(keep);
    /* tool_choice "none": the model is not shown the tools at all. */
    if (r->n_tools > 0 && r->tool_choice != TG_OAI_TOOL_CHOICE_NONE)
        r->tools_json = tg_xstrdup(to_json(keep));
    json_object_put(keep);
    return 0;
}

/* ---------------------------------------------------------------- stop -- */

static int add_stop(tg_oai_request *r, json_object *s, const char *param, tg_oai_error *e) {
    char *d = NULL;
    if (dup_string(s, param, &d, e) < 0) return -1;
    if (strlen(d) > TG_OAI_MAX_STOP_LEN) {
        free(d);
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", param, "%s is longer than %d bytes",
                         param, TG_OAI_MAX_STOP_LEN);
        return -1;
    }
    if (!*d) { /* an empty stop string would end every generation at once */
        free(d);
        return 0;
    }
    r->stop[r->n_stop++] = d;
    return 0;
}

/* logit_bias: {"<token id>": number in -100..100, ...}. Keys must be plain
 * decimal integers (no sign, spaces or exponent) so "1e3" or "-1" cannot
 * alias a token. */
static int parse_logit_bias(json_object *lb, tg_oai_request *r, tg_oai_error *e) {
    if (!json_object_is_type(lb, json_type_object))
        return wrong_type(e, "logit_bias", "an object", lb);
    size_t n = (size_t)json_object_object_length(lb);
    if (n > TG_OAI_MAX_BIAS) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "logit_bias",
                         "logit_bias may hold at most %d entries", TG_OAI_MAX_BIAS);
        return -1;
    }
    r->has_logit_bias = true;
    r->bias_tokens = calloc(n ? n : 1, sizeof *r->bias_tokens);
    r->bias_values = calloc(n ? n : 1, sizeof *r->bias_values);
    if (!r->bias_tokens || !r->bias_values) abort();
    json_object_object_foreach(lb, key, val) {
        size_t kl = strlen(key);
        bool ok = kl > 0 && kl <= 10;
        int64_t id = 0;
        for (size_t i = 0; ok && i < kl; i++) {
            if (key[i] < '0' || key[i] > '9')
                ok = false;
            else
                id = id * 10 + (key[i] - '0');
        }
        if (!ok || id > INT32_MAX) {
            tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "logit_bias",
                             "logit_bias keys must be token ids (decimal integers)");
            return -1;
        }
        if (!val || (!json_object_is_type(val, json_type_double) &&
                     !json_object_is_type(val, json_type_int)))
            return wrong_type(e, "logit_bias", "an object of numbers", val);
        double d = json_object_get_double(val);
        if (!isfinite(d) || d < -100 || d > 100) {
            tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "logit_bias",
                             "logit_bias values must be between -100 and 100");
            return -1;
        }
        r->bias_tokens[r->n_bias] = (int32_t)id;
        r->bias_values[r->n_bias] = (float)d;
        r->n_bias++;
    }
    return 0;
}

static int parse_stop(json_object *stop, tg_oai_request *r, tg_oai_error *e) {
    r->stop = calloc(TG_OAI_MAX_STOP, sizeof *r->stop);
    if (!r->stop) abort();
    if (json_object_is_type(stop, json_type_string)) return add_stop(r, stop, "stop", e);
    if (!json_object_is_type(stop, json_type_array))
        return wrong_type(e, "stop", "a string or an array of strings", stop);
    size_t n = json_object_array_length(stop);
    if (n > TG_OAI_MAX_STOP) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "stop",
                         "stop may hold at most %d strings", TG_OAI_MAX_STOP);
        return -1;
    }
    char p[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof p, "stop[%zu]", i);
        if (add_stop(r, json_object_array_get_idx(stop, i), p, e) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------- output format -- */

int tg_oai_parse_format(json_object *v, bool nested, const char *param, tg_oai_request *r,
                        tg_oai_error *e) {
    char p[96];
    if (!json_object_is_type(v, json_type_object)) return wrong_type(e, param, "an object", v);
    json_object *ty = field(v, "type");
    snprintf(p, sizeof p, "%s.type", param);
    if (!ty) {
        tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p, "%s is required", p);
        return -1;
    }
    if (!json_object_is_type(ty, json_type_string)) return wrong_type(e, p, "a string", ty);
    const char *t = json_object_get_string(ty);
    if (!strcmp(t, "text")) {
        r->rf_kind = TG_OAI_RF_TEXT;
        return 0;
    }
    if (!strcmp(t, "json_object")) {
        r->rf_kind = TG_OAI_RF_JSON_OBJECT;
        return 0;
    }
    if (strcmp(t, "json_schema") != 0) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", p,
                         "%s must be 'text', 'json_object' or 'json_schema'", p);
        return -1;
    }
    json_object *js = v;
    if (nested) {
        snprintf(p, sizeof p, "%s.json_schema", param);
        js = field(v, "json_schema");
        if (!js) {
            tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", p, "%s is required",
                             p);
            return -1;
        }
        if (!json_object_is_type(js, json_type_object)) return wrong_type(e, p, "an object", js);
    } else {
        snprintf(p, sizeof p, "%s", param);
    }
    char q[128];
    json_object *name = field(js, "name");
    snprintf(q, sizeof q, "%s.name", p);
    if (name && !json_object_is_type(name, json_type_string))
        return wrong_type(e, q, "a string", name);
    json_object *strict = field(js, "strict");
    snprintf(q, sizeof q, "%s.strict", p);
    bool sb = false;
    if (strict && !json_object_is_type(strict, json_type_null) && get_bool(strict, q, &sb, e) < 0)
        return -1;
    json_object *schema = field(js, "schema");
    snprintf(q, sizeof q, "%s.schema", p);
    if (schema && !json_object_is_type(schema, json_type_object))
        return wrong_type(e, q, "an object", schema);
    r->rf_kind = TG_OAI_RF_JSON_SCHEMA;
    free(r->rf_schema);
    r->rf_schema = schema ? tg_xstrdup(to_json(schema)) : NULL;
    return 0;
}

/* ---------------------------------------------------------------- parse -- */

static int parse_root(json_object *root, tg_oai_request *r, tg_oai_error *e) {
    if (!json_object_is_type(root, json_type_object))
        return wrong_type(e, "body", "a JSON object", root);
    json_object *v;

    if ((v = field(root, "model")) && dup_string(v, "model", &r->model, e) < 0) return -1;

    json_object *msgs = field(root, "messages");
    if (!msgs) {
        tg_oai_error_set(e, 400, ERR_INVALID, "missing_required_parameter", "messages",
                         "messages is required");
        return -1;
    }
    if (!json_object_is_type(msgs, json_type_array))
        return wrong_type(e, "messages", "an array", msgs);
    size_t n = json_object_array_length(msgs);
    if (n == 0 || n > TG_OAI_MAX_MESSAGES) {
        tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "messages",
                         "messages must hold 1 to %d entries", TG_OAI_MAX_MESSAGES);
        return -1;
    }
    r->msgs = calloc(n, sizeof *r->msgs);
    if (!r->msgs) abort();
    for (size_t i = 0; i < n; i++) {
        r->n_msgs = i + 1; /* so free() sees what was filled */
        if (parse_message(json_object_array_get_idx(msgs, i), i, &r->msgs[i], e) < 0) return -1;
    }

    if ((v = field(root, "stream")) && get_bool(v, "stream", &r->stream, e) < 0) return -1;
    if ((v = field(root, "stream_options"))) {
        if (!json_object_is_type(v, json_type_object))
            return wrong_type(e, "stream_options", "an object", v);
        json_object *iu = field(v, "include_usage");
        if (iu && get_bool(iu, "stream_options.include_usage", &r->include_usage, e) < 0) return -1;
    }

    int64_t x;
    /* max_completion_tokens is the newer name; it wins when both are given. */
    if ((v = field(root, "max_tokens"))) {
        if (get_int(v, "max_tokens", 1, 1 << 24, &x, e) < 0) return -1;
        r->has_max_tokens = true;
        r->max_tokens = (int)x;
    }
    if ((v = field(root, "max_completion_tokens"))) {
        if (get_int(v, "max_completion_tokens", 1, 1 << 24, &x, e) < 0) return -1;
        r->has_max_tokens = true;
        r->max_tokens = (int)x;
    }
    if ((v = field(root, "temperature"))) {
        if (get_number(v, "temperature", 0, 2, &r->temperature, e) < 0) return -1;
        r->has_temperature = true;
    }
    if ((v = field(root, "top_p"))) {
        if (get_number(v, "top_p", 0, 1, &r->top_p, e) < 0) return -1;
        r->has_top_p = true;
    }
    if ((v = field(root, "seed"))) {
        if (get_int(v, "seed", INT64_MIN, INT64_MAX, &r->seed, e) < 0) return -1;
        r->has_seed = true;
    }
    if ((v = field(root, "frequency_penalty"))) {
        if (get_number(v, "frequency_penalty", -2, 2, &r->frequency_penalty, e) < 0) return -1;
        r->has_frequency_penalty = true;
    }
    if ((v = field(root, "presence_penalty"))) {
        if (get_number(v, "presence_penalty", -2, 2, &r->presence_penalty, e) < 0) return -1;
        r->has_presence_penalty = true;
    }
    if ((v = field(root, "logit_bias")) && parse_logit_bias(v, r, e) < 0) return -1;
    if ((v = field(root, "n"))) {
        if (get_int(v, "n", 1, 1 << 20, &x, e) < 0) return -1;
        if (x != 1) {
            tg_oai_error_set(e, 400, ERR_INVALID, "unsupported_value", "n",
                             "only n=1 is supported");
            return -1;
        }
    }
    if ((v = field(root, "stop")) && parse_stop(v, r, e) < 0) return -1;
    if ((v = field(root, "user")) && dup_string(v, "user", &r->user, e) < 0) return -1;
    /* include_reasoning: false drops a thinking model's reasoning_content
     * (the model still thinks; the answer is unchanged). */
    if ((v = field(root, "include_reasoning")) && !json_object_is_type(v, json_type_null)) {
        bool inc = true;
        if (get_bool(v, "include_reasoning", &inc, e) < 0) return -1;
        r->exclude_reasoning = !inc;
    }
    if ((v = field(root, "logprobs")) && !json_object_is_type(v, json_type_null) &&
        get_bool(v, "logprobs", &r->logprobs, e) < 0)
        return -1;
    if ((v = field(root, "top_logprobs")) && !json_object_is_type(v, json_type_null)) {
        if (get_int(v, "top_logprobs", 0, LFM_MAX_TOP_LOGPROBS, &x, e) < 0) return -1;
        if (!r->logprobs) {
            tg_oai_error_set(e, 400, ERR_INVALID, "invalid_value", "top_logprobs",
                             "top_logprobs needs logprobs set to true");
            return -1;
        }
        r->top_logprobs = (int)x;
    }
    if ((v = field(root, "response_format")) && !json_object_is_type(v, json_type_null) &&
        tg_oai_parse_format(v, true, "response_format", r, e) < 0)
        return -1;
    r->parallel_tool_calls = true;
    if ((v = field(root, "parallel_tool_calls")) && !json_object_is_type(v, json_type_null) &&
        get_bool(v, "parallel_tool_calls", &r->parallel_tool_calls, e) < 0)
        return -1;
    return parse_tools(root, r, e);
}

int tg_oai_parse_request(const char *body, size_t len, tg_oai_request *out, tg_oai_error *err) {
    memset(out, 0, sizeof *out);
    if (!body || len == 0) {
        tg_oai_error_set(err, 400, ERR_INVALID, "invalid_json", "",
                         "request body is empty; expected a JSON object");
        return -1;
    }
    if (len > INT32_MAX) {
        tg_oai_error_set(err, 413, ERR_INVALID, "request_too_large", "", "request body too large");
        return -1;
    }
    /* json-c's strict mode is not strict enough (see common/tg_jstrict.h):
     * the text is checked first, so json-c only ever sees RFC 8259 JSON. */
    tg_jstrict_err je;
    if (tg_jstrict_check(body, len, TG_OAI_JSON_DEPTH, &je) != 0) {
        switch (je.kind) {
        case TG_JSTRICT_UTF8:
            tg_oai_error_set(err, 400, ERR_INVALID, "invalid_utf8", je.path,
                             "%s is not valid UTF-8: %s at byte %zu", je.path[0] ? je.path : "body",
                             je.msg, je.offset);
            break;
        case TG_JSTRICT_DUPLICATE:
            tg_oai_error_set(err, 400, ERR_INVALID, "duplicate_key", je.path,
                             "duplicate key %s at byte %zu", je.path, je.offset);
            break;
        default:
            tg_oai_error_set(err, 400, ERR_INVALID, "invalid_json", "",
                             "request body is not valid JSON: %s at byte %zu", je.msg, je.offset);
        }
        return -1;
    }
    json_tokener *tok = json_tokener_new_ex(TG_OAI_JSON_DEPTH);
    if (!tok) abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        json_object_put(root);
        tg_oai_error_set(err, 400, ERR_INVALID, "invalid_json", "",
                         "request body is not valid JSON: %s",
                         jerr == json_tokener_continue ? "unexpected end of input"
                                                       : json_tokener_error_desc(jerr));
        return -1;
    }
    for (size_t i = end; i < len; i++) {
        char c = body[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            json_object_put(root);
            tg_oai_error_set(err, 400, ERR_INVALID, "invalid_json", "",
                             "request body is not valid JSON: trailing data at byte %zu", i);
            return -1;
        }
    }
    out->raw = root;
    return parse_root(root, out, err);
}
