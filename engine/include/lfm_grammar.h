/* lfm_grammar: constrained decoding to JSON (Schema) over a token vocabulary.
 *
 * Three pieces:
 *  - lfm_schema: a JSON Schema compiled to a small node graph. The subset is
 *    OpenAI's strict structured-output subset: type (object, array, string,
 *    number, integer, boolean, null, or a list of them), properties,
 *    required, additionalProperties (false; an object without properties
 *    and not closed is any object), items, enum, const, anyOf, $defs /
 *    definitions with $ref ("#", "#/$defs/x", "#/definitions/x"), and the
 *    descriptive keywords title, description, $schema, $id, $comment,
 *    default, examples, strict. Any other keyword is refused with its name
 *    (the API answers 400 naming it). LFM_SCHEMA_ANY is json_object mode:
 *    any JSON value whose top level is an object.
 *  - lfm_vocab_index: built once per tokenizer: every token's bytes in a
 *    byte trie, plus the "string-safe" tokens (no quote, backslash or
 *    control byte) and a second trie over the rest of each other token
 *    from its first special byte on. Inside a free string the mask is the
 *    string-safe set plus a walk of that small second trie, so computing a
 *    mask never walks the whole vocabulary there.
 *  - lfm_constraint: one generation's matcher, a pushdown automaton over
 *    bytes (a few parallel stacks where anyOf or enum prefixes are
 *    ambiguous). lfm_constraint_mask walks the trie from the current state,
 *    pruning at the first refused byte; lfm_constraint_accept advances by a
 *    sampled token.
 *
 * Output properties follow the schema's order (as OpenAI's strict mode
 * does); optional properties may be skipped. Whitespace between tokens of
 * the JSON is bounded (LFM_GRAMMAR_MAX_WS bytes per gap), numbers to
 * LFM_GRAMMAR_MAX_DIGITS digits per part. Control tokens never match bytes;
 * EOG is allowed exactly when the value is complete (and the optional
 * suffix token was produced). */
#ifndef LFM_GRAMMAR_H
#define LFM_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/lfm.h"

#define LFM_GRAMMAR_MAX_WS     16
#define LFM_GRAMMAR_MAX_DIGITS 15
#define LFM_GRAMMAR_MAX_DEPTH  32 /* nesting of objects/arrays in the output */

typedef struct lfm_schema lfm_schema;
typedef struct lfm_vocab_index lfm_vocab_index;
typedef struct lfm_constraint lfm_constraint;

enum {
    LFM_SCHEMA_ANY = 1,      /* ignore the text: any JSON object (json_object mode) */
    LFM_SCHEMA_INTERNAL = 2, /* also allow minItems/maxItems (tool-call wrappers) */
};

/* Compiles schema JSON text. On failure returns LFM_EINVAL with a message
 * in err and, when the cause is an unsupported keyword, its name in
 * keyword (else ""). Bounded: at most 4096 nodes, enum/anyOf of 64. */
int lfm_schema_compile(const char *json, size_t len, unsigned flags, lfm_schema **out,
                       char *keyword, size_t kwlen, char *err, size_t errlen);
void lfm_schema_free(lfm_schema *s);

/* Index of t's vocabulary (t must outlive it). NULL when out of memory. */
lfm_vocab_index *lfm_vocab_index_new(const lfm_tokenizer *t);
void lfm_vocab_index_free(lfm_vocab_index *vi);
int lfm_vocab_index_size(const lfm_vocab_index *vi); /* n_vocab */

/* A matcher for one generation. prefix_token / suffix_token (-1 = none) are
 * control tokens that must come before / after the JSON value (a tool-call
 * block's markers). The schema and index must outlive the constraint. */
lfm_constraint *lfm_constraint_new(const lfm_schema *s, const lfm_vocab_index *vi,
                                   int32_t prefix_token, int32_t suffix_token);
void lfm_constraint_free(lfm_constraint *c);
/* From now on c frees its schema (a job that outlives its request). */
void lfm_constraint_own_schema(lfm_constraint *c);
/* Fills bits (n_vocab bits, (n_vocab+31)/32 words) with the tokens allowed
 * next. Returns how many are allowed (0: dead end, should not happen). */
int lfm_constraint_mask(lfm_constraint *c, uint32_t *bits);
/* Advances by token. false when the token is not allowed (state unchanged). */
bool lfm_constraint_accept(lfm_constraint *c, int32_t token);
/* True once the value (and suffix) is complete: only EOG is allowed. */
bool lfm_constraint_done(const lfm_constraint *c);
/* True when the bytes so far are a complete value (EOG or suffix allowed). */
bool lfm_constraint_can_end(const lfm_constraint *c);

#endif
