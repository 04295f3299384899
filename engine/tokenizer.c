/* tokenizer.c: building the byte-level BPE vocabulary (from arrays or from
 * GGUF metadata) and the per-token lookups. Tokenizing lives in bpe.c,
 * detokenizing in detok.c. */
#include "engine/tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

/* The LFM2 (llama3-style) pre-tokenizer regex, from LFM2.md. */
static const char TOK_REGEX[] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
                                "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
                                "|\\p{N}{1,3}"
                                "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                                "|\\s*[\\r\\n]+"
                                "|\\s+(?!\\S)"
                                "|\\s+";

/* Upper bounds that keep every offset in 32 bits with room to spare. */
#define TOK_MAX_VOCAB (1 << 24)
#define TOK_MAX_TEXT  65536u
#define TOK_MAX_POOL  (1u << 31)

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ byte map -- */

/* GPT-2's table: printable bytes (33..126, 161..172, 174..255) map to
 * themselves, every other byte to 256 + its index among the others. */
static bool byte_is_printable(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
}

static uint32_t byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    /* The non-printable bytes are 0..32, 127..160 and 173, in that order. */
    if (b <= 32) return 256u + b;
    if (b <= 160) return 256u + 33u + (b - 127u);
    return 256u + 67u; /* 173 */
}

int tok_byte_enc(uint8_t b, char out[2]) {
    uint32_t cp = byte_to_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int tok_byte_dec(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    uint32_t n = cp - 256;
    for (unsigned c = 0; c < 256; c++) {
        if (byte_is_printable(c)) continue;
        if (n == 0) return (int)c;
        n--;
    }
    return -1;
}

/* --------------------------------------------------------------- UTF-8 -- */

int tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int need;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return 0;
        unsigned b = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) return -i;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return need + 1;
}

/* ---------------------------------------------------------------- hash -- */

uint64_t tok_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

int32_t tok_lookup(const lfm_tokenizer *t, const char *s, size_t n) {
    size_t i = (size_t)tok_hash(s, n) & t->vocab_mask;
    for (;;) {
        int32_t id = t->vocab_tab[i];
        if (id < 0) return -1;
        if (t->text_len[id] == n && memcmp(t->text_pool + t->text_off[id], s, n) == 0) return id;
        i = (i + 1) & t->vocab_mask;
    }
}

static uint64_t merge_hash(const char *s, size_t n, size_t split) {
    return tok_hash(s, n) ^ ((uint64_t)split * 0x9E3779B97F4A7C15ULL);
}

uint32_t tok_merge_rank(const lfm_tokenizer *t, const char *s, size_t n, size_t split) {
    if (!t->merge_tab) return UINT32_MAX;
    size_t i = (size_t)merge_hash(s, n, split) & t->merge_mask;
    for (;;) {
        int32_t k = t->merge_tab[i];
        if (k < 0) return UINT32_MAX;
        const tok_merge *m = &t->merges[k];
        if (m->len == n && m->split == split && memcmp(t->merge_pool + m->off, s, n) == 0)
            return m->rank;
        i = (i + 1) & t->merge_mask;
    }
}

static size_t table_size(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

/* ---------------------------------------------------------- construction -- */

void lfm_tokenizer_free(lfm_tokenizer *t) {
    if (!t) return;
    free(t->text_pool);
    free(t->text_off);
    free(t->text_len);
    free(t->types);
    free(t->eog);
    free(t->dec_pool);
    free(t->dec_off);
    free(t->dec_len);
    free(t->vocab_tab);
    free(t->merge_pool);
    free(t->merges);
    free(t->merge_tab);
    free(t->specials);
    free(t->trie);
    if (t->re) pcre2_code_free(t->re);
    free(t);
}

static int build_vocab(lfm_tokenizer *t, const lfm_str *tokens, const int32_t *types, char *err,
                       size_t errlen) {
    size_t n = (size_t)t->n_vocab, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tokens[i].ptr && tokens[i].len) {
            seterr(err, errlen, "tokenizer: token %zu has no text", i);
            return LFM_EINVAL;
        }
        if (tokens[i].len > TOK_MAX_TEXT) {
            seterr(err, errlen, "tokenizer: token %zu is too long", i);
            return LFM_EFORMAT;
        }
        total += tokens[i].len;
        if (total > TOK_MAX_POOL) {
            seterr(err, errlen, "tokenizer: vocabulary text too large (%zu tokens)", n);
            return LFM_EFORMAT;
        }
    }
    t->text_pool = malloc(total + 1);
    t->text_off = malloc(n * sizeof *t->text_off);
    t->text_len = malloc(n * sizeof *t->text_len);
    t->types = malloc(n);
    t->eog = calloc(n, 1);
    t->vocab_mask = table_size(n) - 1;
    t->vocab_tab = malloc((t->vocab_mask + 1) * sizeof *t->vocab_tab);
    if (!t->text_pool || !t->text_off || !t->text_len || !t->types || !t->eog || !t->vocab_tab)
        return LFM_ENOMEM;
    memset(t->vocab_tab, 0xff, (t->vocab_mask + 1) * sizeof *t->vocab_tab);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i].len) memcpy(t->text_pool + off, tokens[i].ptr, tokens[i].len);
        t->text_off[i] = (uint32_t)off;
        t->text_len[i] = (uint32_t)tokens[i].len;
        off += tokens[i].len;
        int32_t ty = types ? types[i] : TOK_T_NORMAL;
        t->types[i] = (int8_t)((ty >= 1 && ty <= 6) ? ty : TOK_T_NORMAL);
        /* Insert; a duplicate text maps to the later id (as the reference does). */
        const char *s = t->text_pool + off - tokens[i].len;
        size_t h = (size_t)tok_hash(s, tokens[i].len) & t->vocab_mask;
        for (;;) {
            int32_t id = t->vocab_tab[h];
            if (id < 0 || (t->text_len[id] == tokens[i].len &&
                           memcmp(t->text_pool + t->text_off[id], s, tokens[i].len) == 0)) {
                t->vocab_tab[h] = (int32_t)i;
                break;
            }
            h = (h + 1) & t->vocab_mask;
        }
    }
    return 0;
}

static int build_merges(lfm_tokenizer *t, const lfm_str *merges, size_t n_merges, char *err,
                        size_t errlen) {
    if (n_merges == 0) return 0;
    size_t total = 0;
    for (size_t i = 0; i < n_merges; i++) {
        if ((!merges[i].ptr && merges[i].len) || merges[i].len > TOK_MAX_TEXT) {
            seterr(err, errlen, "tokenizer: merge %zu is malformed", i);
            return LFM_EFORMAT;
        }
        total += merges[i].len;
        if (total > TOK_MAX_POOL) {
            seterr(err, errlen, "tokenizer: merges text too large (%zu)", n_merges);
            return LFM_EFORMAT;
        }
    }
    t->merge_pool = malloc(total + 1);
    t->merges = malloc(n_merges * sizeof *t->merges);
    t->merge_mask = table_size(n_merges) - 1;
    t->merge_tab = malloc((t->merge_mask + 1) * sizeof *t->merge_tab);
    if (!t->merge_pool || !t->merges || !t->merge_tab) return LFM_ENOMEM;
    memset(t->merge_tab, 0xff, (t->merge_mask + 1) * sizeof *t->merge_tab);
    size_t off = 0, k = 0;
    for (size_t i = 0; i < n_merges; i++) {
        const char *s = merges[i].ptr;
        size_t len = merges[i].len, sp = 0;
        /* "a b": the separator is the first space after the first byte. */
        for (size_t j = 1; j < len; j++) {
            if (s[j] == ' ') {
                sp = j;
                break;
            }
        }
        if (sp == 0 || sp + 1 >= len) {
            seterr(err, errlen, "tokenizer: merge %zu is not \"a b\"", i);
            return LFM_EFORMAT;
        }
        tok_merge m = {(uint32_t)off, (uint32_t)(len - 1), (uint32_t)sp, (uint32_t)i};
        memcpy(t->merge_pool + off, s, sp);
        memcpy(t->merge_pool + off + sp, s + sp + 1, len - sp - 1);
        off += len - 1;
        size_t h = (size_t)merge_hash(t->merge_pool + m.off, m.len, m.split) & t->merge_mask;
        bool dup = false;
        for (;;) {
            int32_t e = t->merge_tab[h];
            if (e < 0) break;
            const tok_merge *o = &t->merges[e];
            if (o->len == m.len && o->split == m.split &&
                memcmp(t->merge_pool + o->off, t->merge_pool + m.off, m.len) == 0) {
                dup = true; /* the first (lowest) rank wins */
                break;
            }
            h = (h + 1) & t->merge_mask;
        }
        if (dup) continue;
        t->merges[k] = m;
        if (m.len > t->max_merge_len) t->max_merge_len = m.len;
        t->merge_tab[h] = (int32_t)k;
        k++;
    }
    t->n_merges = k;
    return 0;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xAB>" (SentencePiece-style byte token) -> 0xAB, else -1. */
static int byte_token_value(const unsigned char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

/* Decoded bytes of every token: byte-level decoding for ordinary tokens,
 * the raw text for control and user-defined ones. */
static int build_decoded(lfm_tokenizer *t) {
    size_t n = (size_t)t->n_vocab, total = 0;
    for (size_t i = 0; i < n; i++)
        total += t->text_len[i];
    t->dec_pool = malloc(total + 1);
    t->dec_off = malloc(n * sizeof *t->dec_off);
    t->dec_len = malloc(n * sizeof *t->dec_len);
    if (!t->dec_pool || !t->dec_off || !t->dec_len) return LFM_ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *s = (const unsigned char *)t->text_pool + t->text_off[i];
        size_t len = t->text_len[i];
        t->dec_off[i] = (uint32_t)off;
        int ty = t->types[i];
        int hx = ty == TOK_T_BYTE ? byte_token_value(s, len) : -1;
        if (hx >= 0) {
            t->dec_pool[off++] = (char)hx;
        } else if (ty == TOK_T_CONTROL || ty == TOK_T_USER) {
            memcpy(t->dec_pool + off, s, len);
            off += len;
        } else {
            size_t j = 0;
            while (j < len) {
                uint32_t cp = 0;
                int r = tok_utf8_next(s + j, len - j, &cp);
                int b = r > 0 ? tok_byte_dec(cp) : -1;
                size_t step = r > 0 ? (size_t)r : (r < 0 ? (size_t)-r : len - j);
                if (b >= 0) {
                    t->dec_pool[off++] = (char)b;
                } else { /* not a mapped character: keep its bytes */
                    memcpy(t->dec_pool + off, s + j, step);
                    off += step;
                }
                j += step;
            }
        }
        t->dec_len[i] = (uint32_t)(off - t->dec_off[i]);
    }
    return 0;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const lfm_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->text_len[x] != t->text_len[y]) return t->text_len[x] > t->text_len[y] ? -1 : 1;
    return x < y ? -1 : (x > y);
}

static int build_specials(lfm_tokenizer *t) {
    size_t n = (size_t)t->n_vocab, cnt = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        int ty = t->types[i];
        if ((ty == TOK_T_CONTROL || ty == TOK_T_USER || ty == TOK_T_UNKNOWN) && t->text_len[i]) {
            cnt++;
            bytes += t->text_len[i];
        }
    }
    t->specials = malloc((cnt ? cnt : 1) * sizeof *t->specials);
    t->trie = malloc((bytes + 1) * sizeof *t->trie);
    if (!t->specials || !t->trie) return LFM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int ty = t->types[i];
        if ((ty == TOK_T_CONTROL || ty == TOK_T_USER || ty == TOK_T_UNKNOWN) && t->text_len[i])
            t->specials[t->n_specials++] = (int32_t)i;
    }
    qsort_r(t->specials, t->n_specials, sizeof *t->specials, cmp_special, t);
    /* Trie: node 0 is the root. */
    t->trie[0] = (tok_trie_node){-1, -1, -1, 0};
    t->n_trie = 1;
    for (size_t k = 0; k < t->n_specials; k++) {
        int32_t id = t->specials[k];
        const unsigned char *s = (const unsigned char *)t->text_pool + t->text_off[id];
        int32_t node = 0;
        for (size_t j = 0; j < t->text_len[id]; j++) {
            int32_t c = t->trie[node].child;
            while (c >= 0 && t->trie[c].byte != s[j])
                c = t->trie[c].sibling;
            if (c < 0) {
                c = (int32_t)t->n_trie++;
                t->trie[c] = (tok_trie_node){-1, t->trie[node].child, -1, s[j]};
                t->trie[node].child = c;
            }
            node = c;
        }
        if (t->trie[node].token < 0) t->trie[node].token = (int32_t)k;
    }
    return 0;
}

static int compile_regex(lfm_tokenizer *t, char *err, size_t errlen) {
    int code;
    PCRE2_SIZE at;
    t->re = pcre2_compile((PCRE2_SPTR)TOK_REGEX, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &code, &at, NULL);
    if (!t->re) {
        char msg[128];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        seterr(err, errlen, "tokenizer: regex: %s (at %zu)", msg, (size_t)at);
        return LFM_EINVAL;
    }
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* optional: interpreter otherwise */
    return 0;
}

int lfm_tokenizer_new(const lfm_str *tokens, const int32_t *types, size_t n_vocab,
                      const lfm_str *merges, size_t n_merges, int32_t bos_id, int32_t eos_id,
                      bool add_bos, lfm_tokenizer **out, char *err, size_t errlen) {
    if (!out) return LFM_EINVAL;
    *out = NULL;
    if (!tokens || n_vocab == 0 || n_vocab > TOK_MAX_VOCAB || (n_merges && !merges)) {
        seterr(err, errlen, "tokenizer: bad vocabulary size %zu", n_vocab);
        return LFM_EINVAL;
    }
    if (n_merges > TOK_MAX_VOCAB * 4ULL) {
        seterr(err, errlen, "tokenizer: too many merges (%zu)", n_merges);
        return LFM_EFORMAT;
    }
    if (bos_id >= (int64_t)n_vocab || eos_id >= (int64_t)n_vocab) {
        seterr(err, errlen, "tokenizer: BOS/EOS id out of range (vocab %zu)", n_vocab);
        return LFM_EFORMAT;
    }
    lfm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return LFM_ENOMEM;
    t->n_vocab = (int32_t)n_vocab;
    t->bos = bos_id < 0 ? -1 : bos_id;
    t->eos = eos_id < 0 ? -1 : eos_id;
    t->add_bos = add_bos && t->bos >= 0;
    int rc = build_vocab(t, tokens, types, err, errlen);
    if (!rc) rc = build_merges(t, merges, n_merges, err, errlen);
    if (!rc) rc = build_decoded(t);
    if (!rc) rc = build_specials(t);
    if (!rc) rc = compile_regex(t, err, errlen);
    if (rc) {
        if (rc == LFM_ENOMEM) seterr(err, errlen, "tokenizer: out of memory");
        lfm_tokenizer_free(t);
        return rc;
    }
    for (int b = 0; b < 256; b++) {
        char enc[2];
        int n = tok_byte_enc((uint8_t)b, enc);
        t->byte_tok[b] = tok_lookup(t, enc, (size_t)n);
    }
    /* Generation ends at EOS and at these, looked up by text. */
    static const char *const eog_texts[] = {"<|im_end|>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof eog_texts / sizeof *eog_texts; i++) {
        int32_t id = tok_lookup(t, eog_texts[i], strlen(eog_texts[i]));
        if (id >= 0) t->eog[id] = 1;
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    *out = t;
    return 0;
}

/* --------------------------------------------------------------- GGUF -- */

int lfm_tokenizer_from_gguf(const gguf_file *f, lfm_tokenizer **out, char *err, size_t errlen) {
    if (!f || !out) return LFM_EINVAL;
    *out = NULL;
    gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, NULL, 0) == 0 &&
        !(model.len == 4 && memcmp(model.ptr, "gpt2", 4) == 0)) {
        int shown = model.len > 32 ? 32 : (int)model.len;
        seterr(err, errlen, "tokenizer.ggml.model: unsupported tokenizer '%.*s' (want gpt2)", shown,
               model.ptr);
        return LFM_EFORMAT;
    }
    const gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tk || tk->type != GGUF_T_ARRAY || tk->arr_type != GGUF_T_STRING || !tk->arr_strs ||
        tk->arr_n == 0 || tk->arr_n > TOK_MAX_VOCAB) {
        seterr(err, errlen, "tokenizer.ggml.tokens: missing or not a string array");
        return LFM_EFORMAT;
    }
    size_t n = (size_t)tk->arr_n;
    const gguf_kv *ty = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (ty && (ty->type != GGUF_T_ARRAY || ty->arr_n != tk->arr_n ||
               ty->arr_type == GGUF_T_STRING || ty->arr_type == GGUF_T_ARRAY)) {
        seterr(err, errlen, "tokenizer.ggml.token_type: not an integer array of n_vocab entries");
        return LFM_EFORMAT;
    }
    const gguf_kv *mg = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (mg && (mg->type != GGUF_T_ARRAY || mg->arr_type != GGUF_T_STRING || !mg->arr_strs ||
               mg->arr_n > TOK_MAX_VOCAB * 4ULL)) {
        seterr(err, errlen, "tokenizer.ggml.merges: not a string array");
        return LFM_EFORMAT;
    }
    size_t nm = mg ? (size_t)mg->arr_n : 0;
    int64_t bos = -1, eos = -1;
    bool add_bos = false;
    if (gguf_get_i64(f, "tokenizer.ggml.bos_token_id", &bos, NULL, 0) == -2 ||
        gguf_get_i64(f, "tokenizer.ggml.eos_token_id", &eos, NULL, 0) == -2 ||
        gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos, NULL, 0) == -2) {
        seterr(err, errlen, "tokenizer.ggml.bos_token_id/eos_token_id/add_bos_token: bad type");
        return LFM_EFORMAT;
    }
    if (bos < -1 || bos >= (int64_t)n || eos < -1 || eos >= (int64_t)n) {
        seterr(err, errlen, "tokenizer.ggml.bos/eos_token_id: id out of range (vocab %zu)", n);
        return LFM_EFORMAT;
    }
    lfm_str *toks = malloc(n * sizeof *toks);
    int32_t *types = ty ? malloc(n * sizeof *types) : NULL;
    lfm_str *merges = nm ? malloc(nm * sizeof *merges) : NULL;
    int rc = 0;
    if (!toks || (ty && !types) || (nm && !merges)) {
        rc = LFM_ENOMEM;
        seterr(err, errlen, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        toks[i].ptr = tk->arr_strs[i].ptr;
        toks[i].len = (size_t)tk->arr_strs[i].len;
        if (types) {
            int64_t v = 0;
            if (gguf_arr_get_i64(ty, i, &v) != 0) {
                rc = LFM_EFORMAT;
                seterr(err, errlen, "tokenizer.ggml.token_type: bad element %zu", i);
                goto done;
            }
            types[i] = (v >= 1 && v <= 6) ? (int32_t)v : TOK_T_NORMAL;
        }
    }
    for (size_t i = 0; i < nm; i++) {
        merges[i].ptr = mg->arr_strs[i].ptr;
        merges[i].len = (size_t)mg->arr_strs[i].len;
    }
    rc = lfm_tokenizer_new(toks, types, n, merges, nm, (int32_t)bos, (int32_t)eos, add_bos, out,
                           err, errlen);
done:
    free(toks);
    free(types);
    free(merges);
    return rc;
}

/* ------------------------------------------------------------- lookups -- */

int lfm_vocab_size(const lfm_tokenizer *t) {
    return t ? t->n_vocab : 0;
}
int32_t lfm_token_bos(const lfm_tokenizer *t) {
    return t ? t->bos : -1;
}
int32_t lfm_token_eos(const lfm_tokenizer *t) {
    return t ? t->eos : -1;
}

int32_t lfm_token_lookup(const lfm_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return -1;
    return tok_lookup(t, text ? text : "", len);
}

bool lfm_token_is_eog(const lfm_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && t->eog[id];
}

bool lfm_token_is_control(const lfm_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && t->types[id] == TOK_T_CONTROL;
}

size_t lfm_token_bytes(const lfm_tokenizer *t, int32_t id, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->n_vocab) return 0;
    size_t n = t->dec_len[id];
    if (buf && cap) memcpy(buf, t->dec_pool + t->dec_off[id], n < cap ? n : cap);
    return n;
}
