/* tok_internal.h: the tokenizer's data, shared by its modules
 * (tokenizer.c: construction and lookups, bpe.c: text -> ids,
 * detok.c: ids -> text). Not part of the public API. */
#ifndef LFM_TOK_INTERNAL_H
#define LFM_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/lfm.h"

/* GGUF token types. */
enum {
    TOK_T_NORMAL = 1,
    TOK_T_UNKNOWN = 2,
    TOK_T_CONTROL = 3,
    TOK_T_USER = 4,
    TOK_T_UNUSED = 5,
    TOK_T_BYTE = 6,
};

/* One node of the trie over special-token texts (used to find which special
 * tokens occur in a text in one pass). */
typedef struct {
    int32_t child;   /* first child node, -1 none */
    int32_t sibling; /* next sibling node, -1 none */
    int32_t token;   /* index into specials[] of the token ending here, -1 none */
    uint8_t byte;
} tok_trie_node;

typedef struct {
    uint32_t off;   /* into merge_pool: text of "a" followed by "b" */
    uint32_t len;   /* len(a) + len(b) */
    uint32_t split; /* len(a) */
    uint32_t rank;
} tok_merge;

struct lfm_tokenizer {
    int32_t n_vocab;
    char *text_pool;    /* all token texts, back to back */
    uint32_t *text_off; /* [n_vocab] */
    uint32_t *text_len; /* [n_vocab] */
    int8_t *types;      /* [n_vocab] GGUF token type */
    uint8_t *eog;       /* [n_vocab] 1 = ends generation */
    char *dec_pool;     /* byte-level decoded bytes of every token */
    uint32_t *dec_off;  /* [n_vocab] */
    uint32_t *dec_len;  /* [n_vocab] */

    int32_t *vocab_tab; /* open-addressing hash: text -> id, -1 empty */
    size_t vocab_mask;

    char *merge_pool;
    tok_merge *merges; /* [n_merges] */
    size_t n_merges;
    uint32_t max_merge_len; /* longest a||b of any merge */
    int32_t *merge_tab;     /* open-addressing hash: (a||b, split) -> index, -1 empty */
    size_t merge_mask;

    /* Special tokens (control, unknown, user-defined), longest text first. */
    int32_t *specials;
    size_t n_specials;
    tok_trie_node *trie;
    size_t n_trie;

    int32_t byte_tok[256]; /* id of each byte's mapped single-char token, -1 none */

    int32_t bos, eos;
    bool add_bos;

    pcre2_code *re; /* pre-tokenizer regex, compiled (and JIT'd) once */
};

/* GPT-2 byte <-> unicode mapping. tok_byte_enc writes the UTF-8 of byte b's
 * mapped character (1 or 2 bytes) and returns its length. tok_byte_dec maps
 * a code point back to its byte, or -1 when it is not a mapped character. */
int tok_byte_enc(uint8_t b, char out[2]);
int tok_byte_dec(uint32_t cp);

uint64_t tok_hash(const char *s, size_t n);
int32_t tok_lookup(const lfm_tokenizer *t, const char *s, size_t n);
/* Rank of merging the adjacent symbols s[0..split) and s[split..n), or
 * UINT32_MAX when there is no such merge. */
uint32_t tok_merge_rank(const lfm_tokenizer *t, const char *s, size_t n, size_t split);

/* Decodes one UTF-8 sequence at s (n > 0 bytes available). Returns:
 *  > 0: a valid sequence of that many bytes (*cp set);
 *  0: a valid but incomplete prefix (all n bytes; more are needed);
 *  < 0: invalid, -(length of the maximal ill-formed subpart, >= 1). */
int tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

#endif
