/* libFuzzer target: the JSON Schema compiler (engine/schema.c) and the
 * matcher it drives (engine/grammar.c). The input is schema text; when it
 * compiles, a constraint over the tiny fixture vocabulary (TG_FUZZ_MODEL,
 * default tests/fixtures/models/lfm2-tiny-q4_0.gguf from the repo root)
 * walks up to 48 steps choosing allowed tokens from the input's bytes, and
 * every choice the mask allows must be accepted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/lfm.h"
#include "engine/lfm_grammar.h"

static lfm_model *g_model;
static lfm_vocab_index *g_vi;
static uint32_t *g_bits;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *p = getenv("TG_FUZZ_MODEL");
    if (!p) p = "tests/fixtures/models/lfm2-tiny-q4_0.gguf";
    char err[256];
    if (lfm_model_load(p, NULL, &g_model, err, sizeof err) == LFM_OK) {
        g_vi = lfm_vocab_index_new(lfm_model_tokenizer(g_model));
        g_bits = calloc(((size_t)lfm_vocab_index_size(g_vi) + 31) / 32, sizeof *g_bits);
    } else {
        fprintf(stderr, "fuzz_schema: no model (%s): compiler only\n", err);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lfm_schema *s = NULL;
    char kw[64], err[256];
    /* A leading '!' selects the internal subset (minItems/maxItems). */
    unsigned flags = size && data[0] == '!' ? LFM_SCHEMA_INTERNAL : 0;
    size_t skip = flags ? 1 : 0;
    if (lfm_schema_compile((const char *)data + skip, size - skip, flags, &s, kw, sizeof kw, err,
                           sizeof err) != LFM_OK)
        return 0;
    if (g_vi) {
        int nv = lfm_vocab_index_size(g_vi);
        lfm_constraint *c = lfm_constraint_new(s, g_vi, -1, -1);
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < size; i++)
            h = (h ^ data[i]) * 16777619u;
        for (int step = 0; step < 48; step++) {
            int n = lfm_constraint_mask(c, g_bits);
            if (n <= 0) break;
            h = h * 1103515245u + 12345u;
            int pick = (int)(h % (uint32_t)n), id = -1;
            for (int i = 0; i < nv && id < 0; i++)
                if ((g_bits[i >> 5] >> (i & 31) & 1) && pick-- == 0) id = i;
            if (id < 0 || !lfm_constraint_accept(c, id)) abort(); /* mask and accept disagree */
            if (lfm_constraint_done(c)) break;
        }
        lfm_constraint_free(c);
    }
    lfm_schema_free(s);
    return 0;
}
