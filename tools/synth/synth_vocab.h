/* synth_vocab: deterministic byte-level BPE vocabularies for synth-model.
 *
 * Layout, like the fixtures: LFM2's control tokens at ids 0-13, the 256
 * GPT-2 byte tokens, then merges learned from a small built-in English text
 * (so ordinary prose tokenizes into word-sized pieces), then word-like random
 * merges up to the requested size. Token texts are stored byte-level encoded
 * (GPT-2 byte-to-unicode), exactly as tokenizer.ggml.tokens holds them. */
#ifndef LFM_SYNTH_VOCAB_H
#define LFM_SYNTH_VOCAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **tok;    /* byte-level encoded text, NUL-terminated */
    int32_t *type; /* 1 normal, 3 control */
    size_t n, cap;
    char **merge; /* "left right" in rank order */
    size_t n_merge, cap_merge;
    int32_t *hash; /* open addressing over tok: id + 1, 0 = empty */
    size_t hcap;
} sv_vocab;

/* Ids of the special tokens in every synthesized vocabulary. */
enum { SV_PAD = 0, SV_BOS = 1, SV_EOT = 2, SV_IM_START = 6, SV_IM_END = 7, SV_N_SPECIAL = 14 };

/* Control tokens + 256 byte tokens. */
void sv_init(sv_vocab *v);
void sv_free(sv_vocab *v);
/* Adds merges learned from the built-in text until the vocabulary has
 * max_size tokens or no pair occurs twice. */
void sv_train_corpus(sv_vocab *v, size_t max_size);
/* Adds word-like random merges until the vocabulary has `size` tokens. */
void sv_fill_random(sv_vocab *v, size_t size, uint64_t seed);
/* Id of an encoded text, or -1. */
int32_t sv_find(const sv_vocab *v, const char *enc);
/* Adds a token (encoded text); returns its id, or -1 if the text exists. */
int32_t sv_add(sv_vocab *v, const char *enc, int32_t type);
/* Byte-level encodes raw bytes into a malloc'd NUL-terminated string. */
char *sv_encode(const char *raw, size_t len);

/* Splits a script into unique tokens, adding new vocabulary entries for its
 * text pieces; control tokens in the script (<|tool_call_start|> ...) stand
 * for themselves. Fails (one-line err) if the script cannot be split into
 * pieces that each occur once, or contains an end-of-generation token. */
int sv_script_chain(sv_vocab *v, const char *script, size_t len, int32_t **chain, size_t *n,
                    char *err, size_t errlen);

#endif
