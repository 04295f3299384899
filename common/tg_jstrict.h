/* tg_jstrict: a strict RFC 8259 check of untrusted JSON text, run before
 * json-c builds a tree from it.
 *
 * Why not json-c alone: json-c 0.16 with JSON_TOKENER_STRICT and
 * JSON_TOKENER_VALIDATE_UTF8 still accepts single-quoted strings, raw
 * control characters in strings, NaN/Infinity, overlong and surrogate UTF-8
 * and lone \uD800 escapes, and keeps the last of duplicate keys without a
 * word. A proxy in front that reads the same body differently (first key
 * wins, or rejects it) would then disagree with us about what was asked.
 *
 * What is refused here: anything outside the RFC 8259 grammar; UTF-8 that
 * is not well-formed (overlong forms, surrogates, > U+10FFFF, truncated
 * sequences) anywhere in the text; \u escapes that do not form a scalar
 * value (lone or reversed surrogates); duplicate keys in one object
 * (compared after decoding escapes); nesting deeper than max_depth.
 *
 * Errors name the JSON path of the offending value in the OpenAI `param`
 * style ("messages[2].content") so the API can answer 400 naming the field.
 * No allocation proportional to anything but the input; O(n log n). */
#ifndef TG_JSTRICT_H
#define TG_JSTRICT_H

#include <stddef.h>

typedef enum {
    TG_JSTRICT_OK = 0,
    TG_JSTRICT_SYNTAX,    /* not JSON (or trailing data) */
    TG_JSTRICT_UTF8,      /* a string (or key) is not valid UTF-8 / a bad \u escape */
    TG_JSTRICT_DUPLICATE, /* the same key twice in one object */
    TG_JSTRICT_DEPTH,     /* nested deeper than max_depth */
} tg_jstrict_kind;

typedef struct {
    tg_jstrict_kind kind;
    size_t offset;  /* byte offset of the problem in the input */
    char path[128]; /* "" for the root, else e.g. "messages[0].role"; may be cut */
    char msg[96];   /* what is wrong, without the path, e.g. "duplicate key" */
} tg_jstrict_err;

/* Checks that s[0..n) is exactly one strict JSON value (whitespace around it
 * allowed). Returns 0, or -1 with err filled. */
int tg_jstrict_check(const char *s, size_t n, int max_depth, tg_jstrict_err *err);

/* Length of the longest prefix of s[0..n) that is well-formed UTF-8 (the
 * same rules as above). n when the whole text is valid. */
size_t tg_jstrict_utf8_valid_prefix(const char *s, size_t n);

#endif
