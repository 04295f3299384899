/* tokenizer.h: engine-internal glue between the GGUF reader and the
 * byte-level BPE tokenizer (public API in lfm.h). */
#ifndef LFM_TOKENIZER_H
#define LFM_TOKENIZER_H

#include <stddef.h>

#include "engine/gguf.h"
#include "engine/lfm.h"

/* Builds the tokenizer from a GGUF file's tokenizer.ggml.* metadata
 * (tokens, token_type, merges, bos/eos ids, add_bos_token). The tokenizer
 * copies what it needs: it stays valid after gguf_close. Returns 0 or a
 * negative LFM_E* code (LFM_EFORMAT for missing/malformed metadata) with a
 * one-line message in err. */
int lfm_tokenizer_from_gguf(const gguf_file *f, lfm_tokenizer **out, char *err, size_t errlen);

#endif
