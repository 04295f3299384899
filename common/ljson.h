/* ljson: a small strict JSON reader and writer for the engine (which does
 * not link json-c). Used to re-serialize the OpenAI `tools` and
 * `tool_calls` JSON for the chat template and to build tool-call arguments.
 * Input is untrusted: sizes are checked, nesting is limited, and any syntax
 * error gives NULL with a one-line message. */
#ifndef LFM_LJSON_H
#define LFM_LJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "common/tg_buf.h"

#define LJSON_MAX_DEPTH 64

typedef enum { LJ_NULL, LJ_FALSE, LJ_TRUE, LJ_NUM, LJ_STR, LJ_ARR, LJ_OBJ } ljson_type;

typedef struct ljson ljson;
struct ljson {
    ljson_type type;
    char *str; /* LJ_STR: decoded UTF-8 (NUL-terminated, may hold NULs);
                  LJ_NUM: the number's literal text */
    size_t len;
    size_t n; /* LJ_ARR / LJ_OBJ: number of items */
    ljson **items;
    ljson **keys; /* LJ_OBJ: keys[i] (an LJ_STR) names items[i] */
};

/* Parses exactly one JSON value (surrounding whitespace allowed). */
ljson *ljson_parse(const char *s, size_t n, char *err, size_t errlen);
void ljson_free(ljson *v);
/* Object member by key (the last one when repeated), or NULL. */
const ljson *ljson_get(const ljson *obj, const char *key);

typedef enum {
    LJSON_COMPACT = 0, /* {"a":1,"b":[1,2]} */
    LJSON_PYTHON = 1,  /* {"a": 1, "b": [1, 2]}: Python json.dumps / Jinja tojson */
} ljson_style;

/* Writes v as JSON. Strings are escaped as Python's json.dumps with
 * ensure_ascii=False does: only quote, backslash and control characters. */
void ljson_write(tg_buf *b, const ljson *v, ljson_style style);

#endif
