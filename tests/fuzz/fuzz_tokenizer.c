/* libFuzzer target: tokenizer (with a lossless round-trip check and the
 * streaming detokenizer), tool-call parser, the engine JSON scanner and the
 * chat renderer. The first input byte picks the target.
 * Vocabulary: the fixture model when TG_FUZZ_MODEL names a GGUF, else a
 * synthetic byte-level vocabulary with merges and special tokens. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "common/ljson.h"
#include "engine/lfm.h"
#include "engine/tokenizer.h"

static lfm_tokenizer *g_tok;

static lfm_tokenizer *synthetic(void) {
    static const char *const specials[] = {
        "<|pad|>",    "<|startoftext|>",     "<|im_start|>",
        "<|im_end|>", "<|tool_call_start|>", "<|tool_call_end|>"};
    static const char *const merges[] = {"Ġ t", "h e",   "Ġt he", "i n", "Ġ a", "e r", "o n",
                                         "Ġ Ġ", "ĠĠ ĠĠ", "r e",   "a n", "Ġ s", "Ġa n"};
    enum { NS = 6, NM = 13 };
    lfm_str toks[NS + 256 + NM];
    int32_t types[NS + 256 + NM];
    static char bytes[256][3];
    static char merged[NM][16];
    size_t n = 0;
    for (size_t i = 0; i < NS; i++) {
        toks[n] = (lfm_str){specials[i], strlen(specials[i])};
        types[n++] = 3;
    }
    for (int b = 0; b < 256; b++) {
        /* GPT-2 byte map, written out here independently of the engine. */
        unsigned cp = (unsigned)b;
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
            unsigned k = 0;
            for (int c = 0; c < b; c++)
                if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) k++;
            cp = 256 + k;
        }
        size_t l = 0;
        if (cp < 0x80)
            bytes[b][l++] = (char)cp;
        else {
            bytes[b][l++] = (char)(0xC0 | (cp >> 6));
            bytes[b][l++] = (char)(0x80 | (cp & 0x3F));
        }
        toks[n] = (lfm_str){bytes[b], l};
        types[n++] = 1;
    }
    lfm_str ms[NM];
    for (size_t i = 0; i < NM; i++) {
        const char *m = merges[i], *sp = strchr(m, ' ');
        size_t a = (size_t)(sp - m), bl = strlen(sp + 1);
        memcpy(merged[i], m, a);
        memcpy(merged[i] + a, sp + 1, bl);
        toks[n] = (lfm_str){merged[i], a + bl};
        types[n++] = 1;
        ms[i] = (lfm_str){m, strlen(m)};
    }
    lfm_tokenizer *t = NULL;
    char err[256];
    if (lfm_tokenizer_new(toks, types, n, ms, NM, 1, 3, true, &t, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
    return t;
}

static void init(void) {
    const char *path = getenv("TG_FUZZ_MODEL");
    if (path) {
        gguf_file *f = NULL;
        char err[256];
        if (gguf_open(path, &f, err, sizeof err) == 0) {
            if (lfm_tokenizer_from_gguf(f, &g_tok, err, sizeof err) != 0) g_tok = NULL;
            gguf_close(f);
        }
    }
    if (!g_tok) g_tok = synthetic();
}

static void fuzz_tokenize(const char *s, size_t n, bool special) {
    int32_t *ids = NULL;
    size_t m = 0;
    if (lfm_tokenize(g_tok, s, n, false, special, &ids, &m) != 0) abort();
    tg_buf cat = TG_BUF_INIT, text = TG_BUF_INIT;
    lfm_detok d;
    lfm_detok_init(&d);
    for (size_t i = 0; i < m; i++) {
        char tmp[256];
        size_t k = lfm_token_bytes(g_tok, ids[i], tmp, sizeof tmp);
        if (k > sizeof tmp) abort();
        tg_buf_append(&cat, tmp, k);
        lfm_detok_push(&d, g_tok, ids[i], &text);
    }
    lfm_detok_flush(&d, &text);
    if (cat.len != n || (n && memcmp(cat.data, s, n) != 0)) abort(); /* must be lossless */
    tg_buf_free(&cat);
    tg_buf_free(&text);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) init();
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: fuzz_tokenize(s, n, data[0] & 4); break;
    case 1: {
        tg_buf content = TG_BUF_INIT;
        lfm_tool_call *calls = NULL;
        size_t nc = 0;
        int rc = lfm_parse_tool_calls(s, n, &content, &calls, &nc);
        if (rc < 0 && (content.len != n || nc != 0)) abort();
        for (size_t i = 0; i < nc; i++) { /* arguments must be valid JSON objects */
            ljson *v =
                ljson_parse(calls[i].arguments_json, strlen(calls[i].arguments_json), NULL, 0);
            if (!v || v->type != LJ_OBJ) abort();
            ljson_free(v);
        }
        lfm_tool_calls_free(calls, nc);
        tg_buf_free(&content);
        break;
    }
    case 2: {
        ljson *v = ljson_parse(s, n, NULL, 0);
        if (v) { /* compact output re-parses to the same output */
            tg_buf a = TG_BUF_INIT, b = TG_BUF_INIT;
            ljson_write(&a, v, LJSON_COMPACT);
            ljson *w = ljson_parse(a.data, a.len, NULL, 0);
            if (!w) abort();
            ljson_write(&b, w, LJSON_COMPACT);
            if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
            ljson_free(w);
            tg_buf_free(&a);
            tg_buf_free(&b);
            ljson_free(v);
        }
        break;
    }
    default: {
        char *z = malloc(n + 1);
        if (!z) return 0;
        memcpy(z, s, n);
        z[n] = 0;
        lfm_chat_msg m[] = {{LFM_ROLE_SYSTEM, "sys", NULL},
                            {LFM_ROLE_USER, z, NULL},
                            {LFM_ROLE_ASSISTANT, z, z},
                            {LFM_ROLE_TOOL, z, NULL}};
        tg_buf out = TG_BUF_INIT;
        char err[128];
        (void)lfm_chat_render((data[0] & 4) ? LFM_TEMPLATE_LFM25 : LFM_TEMPLATE_LFM2, m, 4, z, true,
                              &out, err, sizeof err);
        tg_buf_free(&out);
        /* The gateway's path: caller text must never become control tokens. */
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (g_tok &&
            lfm_chat_tokenize(g_tok, (data[0] & 4) ? LFM_TEMPLATE_LFM25 : LFM_TEMPLATE_LFM2, m, 4,
                              z, true, &ids, &n_ids, err, sizeof err) == 0)
            free(ids);
        free(z);
        break;
    }
    }
    return 0;
}
