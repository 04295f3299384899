/* api_constrain: request -> engine constraint (see api_constrain.h). */
#include "gateway/api/api_constrain.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

static int schema_error(tg_oai_error *e, const char *param, const char *kw, const char *msg) {
    if (kw[0])
        tg_oai_error_set(e, 400, "invalid_request_error", "unsupported_schema_keyword", param, "%s",
                         msg);
    else
        tg_oai_error_set(e, 400, "invalid_request_error", "invalid_schema", param, "%s", msg);
    return -1;
}

static const lfm_vocab_index *vindex(tg_api *api) {
    if (!api->vindex && api->engine.tok) api->vindex = lfm_vocab_index_new(api->engine.tok);
    return api->vindex;
}

/* The tool-call wrapper: an array of 1 (or 1..n) call objects, each the
 * anyOf of {"name": const, "arguments": parameters} over the offered tools. */
static char *tool_schema(const tg_oai_request *r) {
    json_object *tools = json_tokener_parse(r->tools_json);
    if (!tools) return NULL;
    json_object *any = json_object_new_array();
    size_t n = json_object_array_length(tools);
    for (size_t i = 0; i < n; i++) {
        json_object *fn = NULL, *name = NULL, *params = NULL;
        json_object_object_get_ex(json_object_array_get_idx(tools, i), "function", &fn);
        if (!fn || !json_object_object_get_ex(fn, "name", &name)) continue;
        json_object_object_get_ex(fn, "parameters", &params);
        json_object *props = json_object_new_object();
        json_object *cn = json_object_new_object();
        json_object_object_add(cn, "const", json_object_get(name));
        json_object_object_add(props, "name", cn);
        if (params) {
            json_object_object_add(props, "arguments", json_object_get(params));
        } else {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "type", json_object_new_string("object"));
            json_object_object_add(props, "arguments", o);
        }
        json_object *call = json_object_new_object();
        json_object_object_add(call, "type", json_object_new_string("object"));
        json_object_object_add(call, "properties", props);
        json_object *req = json_object_new_array();
        json_object_array_add(req, json_object_new_string("name"));
        json_object_array_add(req, json_object_new_string("arguments"));
        json_object_object_add(call, "required", req);
        json_object_object_add(call, "additionalProperties", json_object_new_boolean(0));
        json_object_array_add(any, call);
    }
    json_object *items = json_object_new_object();
    json_object_object_add(items, "anyOf", any);
    json_object *arr = json_object_new_object();
    json_object_object_add(arr, "type", json_object_new_string("array"));
    json_object_object_add(arr, "items", items);
    json_object_object_add(arr, "minItems", json_object_new_int(1));
    if (!r->parallel_tool_calls) json_object_object_add(arr, "maxItems", json_object_new_int(1));
    char *s = strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    json_object_put(tools);
    return s;
}

int tg_api_constraint(tg_api *api, const tg_oai_request *r, const char *fmt_param,
                      lfm_constraint **out, tg_oai_error *err) {
    *out = NULL;
    bool forced = r->tools_json && (r->tool_choice == TG_OAI_TOOL_CHOICE_REQUIRED ||
                                    r->tool_choice == TG_OAI_TOOL_CHOICE_NAMED);
    if (!forced && r->rf_kind == TG_OAI_RF_TEXT) return 0;
    const lfm_vocab_index *vi = vindex(api);
    if (!vi) {
        tg_oai_error_set(err, 503, "server_error", "engine_unavailable", NULL,
                         "structured output needs the engine's vocabulary");
        return -1;
    }
    char kw[64] = "", msg[256] = "";
    lfm_schema *s = NULL;
    int32_t pre = -1, post = -1;
    if (forced) {
        pre = lfm_token_lookup(api->engine.tok, "<|tool_call_start|>", 19);
        post = lfm_token_lookup(api->engine.tok, "<|tool_call_end|>", 17);
        if (pre < 0 || post < 0) {
            tg_oai_error_set(err, 400, "invalid_request_error", "unsupported_value", "tool_choice",
                             "this model has no tool-call tokens; tool_choice cannot be forced");
            return -1;
        }
        char *js = tool_schema(r);
        int rc = js ? lfm_schema_compile(js, strlen(js), LFM_SCHEMA_INTERNAL, &s, kw, sizeof kw,
                                         msg, sizeof msg)
                    : LFM_EINVAL;
        free(js);
        if (rc != LFM_OK) {
            char m[300];
            snprintf(m, sizeof m, "a tool's parameters cannot be enforced: %s", msg);
            return schema_error(err, "tools", kw, m);
        }
    } else {
        unsigned flags = r->rf_kind == TG_OAI_RF_JSON_OBJECT || !r->rf_schema ? LFM_SCHEMA_ANY : 0;
        if (r->rf_kind == TG_OAI_RF_JSON_SCHEMA && !r->rf_schema) flags = 0;
        const char *txt = r->rf_schema ? r->rf_schema : "{}";
        int rc = lfm_schema_compile(txt, strlen(txt), flags, &s, kw, sizeof kw, msg, sizeof msg);
        if (rc != LFM_OK) return schema_error(err, fmt_param, kw, msg);
    }
    lfm_constraint *c = lfm_constraint_new(s, vi, pre, post);
    lfm_constraint_own_schema(c);
    *out = c;
    return 0;
}
