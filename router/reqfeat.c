/* reqfeat: request JSON -> features. See reqfeat.h. */
#include "router/reqfeat.h"

#include <stdlib.h>
#include <strings.h>
#include <string.h>

#define MAX_MSGS  4096
#define MAX_PARTS 64

static json_object *get(json_object *o, const char *k) {
    json_object *v = NULL;
    return json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v) ? v
                                                                                           : NULL;
}

void rt_reqfeat_extract(json_object *req, int hint, rt_features *out) {
    rt_score_input in = {.prompt_tokens = -1, .hint = hint};
    json_object *msgs = get(req, "messages"), *prompt = get(req, "prompt");
    size_t cap = 1;
    if (json_object_is_type(msgs, json_type_array)) {
        size_t n = json_object_array_length(msgs);
        size_t parts = 0;
        for (size_t i = 0; i < n && i < MAX_MSGS; i++) {
            json_object *c = get(json_object_array_get_idx(msgs, i), "content");
            parts += json_object_is_type(c, json_type_array)
                         ? (json_object_array_length(c) < MAX_PARTS ? json_object_array_length(c)
                                                                    : MAX_PARTS)
                         : 1;
        }
        cap += parts;
    }
    rt_msg *m = calloc(cap, sizeof *m);
    if (!m) abort();
    size_t nm = 0;
    if (json_object_is_type(prompt, json_type_string))
        m[nm++] = (rt_msg){"user", json_object_get_string(prompt),
                           (size_t)json_object_get_string_len(prompt)};
    if (json_object_is_type(msgs, json_type_array)) {
        size_t n = json_object_array_length(msgs);
        for (size_t i = 0; i < n && i < MAX_MSGS && nm < cap; i++) {
            json_object *msg = json_object_array_get_idx(msgs, i);
            json_object *role = get(msg, "role"), *c = get(msg, "content");
            const char *r =
                json_object_is_type(role, json_type_string) ? json_object_get_string(role) : "user";
            if (json_object_is_type(c, json_type_string)) {
                m[nm++] =
                    (rt_msg){r, json_object_get_string(c), (size_t)json_object_get_string_len(c)};
            } else if (json_object_is_type(c, json_type_array)) {
                size_t np = json_object_array_length(c);
                bool first = true;
                for (size_t j = 0; j < np && j < MAX_PARTS && nm < cap; j++) {
                    json_object *t = get(json_object_array_get_idx(c, j), "text");
                    if (!json_object_is_type(t, json_type_string)) continue;
                    /* Later parts of one message are not extra turns. */
                    m[nm++] = (rt_msg){first ? r : "part", json_object_get_string(t),
                                       (size_t)json_object_get_string_len(t)};
                    first = false;
                }
            } else {
                m[nm++] = (rt_msg){r, NULL, 0}; /* a turn without text (tool calls) */
            }
        }
    }
    in.msgs = m;
    in.n_msgs = nm;
    json_object *tools = get(req, "tools");
    if (json_object_is_type(tools, json_type_array))
        in.n_tools = (int)json_object_array_length(tools);
    json_object *rf = get(req, "response_format");
    json_object *rft = get(rf, "type");
    if (json_object_is_type(rft, json_type_string) && strcmp(json_object_get_string(rft), "text"))
        in.json_schema = true;
    json_object *mt = get(req, "max_completion_tokens");
    if (!mt) mt = get(req, "max_tokens");
    if (json_object_is_type(mt, json_type_int)) {
        int64_t v = json_object_get_int64(mt);
        in.max_tokens = v > 0 ? (v > 1 << 30 ? 1 << 30 : (int)v) : 0;
    }
    rt_features_extract(&in, out);
    free(m);
}

int rt_reqfeat_hint(const char *v) {
    if (!v) return 0;
    if (!strcasecmp(v, "edge")) return -1;
    if (!strcasecmp(v, "cloud")) return 1;
    return 0;
}
