/* synth_vocab: deterministic byte-level BPE vocabularies. See synth_vocab.h. */
#include "tools/synth/synth_vocab.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SPECIALS[SV_N_SPECIAL] = {
    "<|pad|>",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|fim_pre|>",
    "<|fim_mid|>",
    "<|fim_suf|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|tool_list_start|>",
    "<|tool_list_end|>",
    "<|tool_call_start|>",
    "<|tool_call_end|>",
    "<|tool_response_start|>",
    "<|tool_response_end|>",
};

/* A few paragraphs of plain prose: the merges learned from it make common
 * English words single tokens, so prompts have realistic token counts. */
static const char CORPUS[] =
    "The quick brown fox jumps over the lazy dog. This is a small model that was made "
    "for testing the gateway and the engine. It has the same shape as a real model, but "
    "the weights are random, so the text it writes is not useful. When you ask a question, "
    "the model will answer with words that do not mean anything. The weather in the city is "
    "nice today, and the people are out in the park. What is the capital of France? The "
    "capital of France is Paris. Please tell me about the history of the world and the "
    "things that happened in the past. We can use this model to check that the server works, "
    "that the tokens come out in the right order, and that the time to the first token is "
    "short. There are many ways to write a program, and some of them are better than others. "
    "I would like to know how to make a cup of tea. First you need to boil the water, then "
    "you put the tea in the cup and wait for a few minutes. You can add milk or sugar if you "
    "want. Hello, how are you? I am fine, thank you. Can you help me with my homework? Sure, "
    "what do you need help with? The answer is that there is no answer. It was a long day "
    "and everyone was tired. They went home and had dinner together. The system should be "
    "able to handle many requests at the same time without any problems. Each request has "
    "a prompt and a number of tokens to generate. Hello world, hello there, hello again.";

/* ------------------------------------------------------------- bytes -- */

/* GPT-2 byte-to-unicode: printable Latin-1 bytes map to themselves, the
 * rest to U+0100 onward in byte order. */
static unsigned byte_cp(unsigned char b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) n++;
    return 256 + n;
}

char *sv_encode(const char *raw, size_t len) {
    char *out = malloc(len * 2 + 1);
    if (!out) abort();
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned cp = byte_cp((unsigned char)raw[i]);
        if (cp < 0x80) {
            out[k++] = (char)cp;
        } else {
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[k] = 0;
    return out;
}

/* ------------------------------------------------------------- table -- */

static uint64_t hstr(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void rehash(sv_vocab *v, size_t cap) {
    free(v->hash);
    v->hcap = cap;
    v->hash = calloc(cap, sizeof *v->hash);
    if (!v->hash) abort();
    for (size_t i = 0; i < v->n; i++) {
        size_t s = (size_t)hstr(v->tok[i]) & (cap - 1);
        while (v->hash[s])
            s = (s + 1) & (cap - 1);
        v->hash[s] = (int32_t)i + 1;
    }
}

int32_t sv_find(const sv_vocab *v, const char *enc) {
    size_t s = (size_t)hstr(enc) & (v->hcap - 1);
    while (v->hash[s]) {
        if (!strcmp(v->tok[v->hash[s] - 1], enc)) return v->hash[s] - 1;
        s = (s + 1) & (v->hcap - 1);
    }
    return -1;
}

int32_t sv_add(sv_vocab *v, const char *enc, int32_t type) {
    if (sv_find(v, enc) >= 0) return -1;
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->tok = realloc(v->tok, v->cap * sizeof *v->tok);
        v->type = realloc(v->type, v->cap * sizeof *v->type);
        if (!v->tok || !v->type) abort();
    }
    v->tok[v->n] = strdup(enc);
    if (!v->tok[v->n]) abort();
    v->type[v->n] = type;
    v->n++;
    if (v->n * 2 > v->hcap) {
        rehash(v, v->hcap * 2);
    } else {
        size_t s = (size_t)hstr(enc) & (v->hcap - 1);
        while (v->hash[s])
            s = (s + 1) & (v->hcap - 1);
        v->hash[s] = (int32_t)v->n;
    }
    return (int32_t)v->n - 1;
}

static void add_merge(sv_vocab *v, int32_t a, int32_t b) {
    if (v->n_merge == v->cap_merge) {
        v->cap_merge = v->cap_merge ? v->cap_merge * 2 : 1024;
        v->merge = realloc(v->merge, v->cap_merge * sizeof *v->merge);
        if (!v->merge) abort();
    }
    size_t la = strlen(v->tok[a]), lb = strlen(v->tok[b]);
    char *m = malloc(la + lb + 2);
    if (!m) abort();
    memcpy(m, v->tok[a], la);
    m[la] = ' ';
    memcpy(m + la + 1, v->tok[b], lb + 1);
    v->merge[v->n_merge++] = m;
}

/* Concatenation of two tokens' texts (malloc'd). */
static char *concat(const sv_vocab *v, int32_t a, int32_t b) {
    size_t la = strlen(v->tok[a]), lb = strlen(v->tok[b]);
    char *s = malloc(la + lb + 1);
    if (!s) abort();
    memcpy(s, v->tok[a], la);
    memcpy(s + la, v->tok[b], lb + 1);
    return s;
}

void sv_init(sv_vocab *v) {
    memset(v, 0, sizeof *v);
    rehash(v, 1024);
    for (int i = 0; i < SV_N_SPECIAL; i++)
        sv_add(v, SPECIALS[i], 3);
    for (int b = 0; b < 256; b++) {
        char raw = (char)b;
        char *e = sv_encode(&raw, 1);
        sv_add(v, e, 1);
        free(e);
    }
}

void sv_free(sv_vocab *v) {
    for (size_t i = 0; i < v->n; i++)
        free(v->tok[i]);
    for (size_t i = 0; i < v->n_merge; i++)
        free(v->merge[i]);
    free(v->tok);
    free(v->type);
    free(v->merge);
    free(v->hash);
    memset(v, 0, sizeof *v);
}

/* ---------------------------------------------------------- training -- */

static bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

void sv_train_corpus(sv_vocab *v, size_t max_size) {
    /* Words: optional leading space + letters, as symbol id sequences. */
    size_t n = sizeof CORPUS - 1;
    int32_t *sym = malloc(n * sizeof *sym);
    size_t *wstart = malloc((n + 1) * sizeof *wstart);
    if (!sym || !wstart) abort();
    size_t ns = 0, nw = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + (CORPUS[i] == ' ');
        if (j < n && is_alpha(CORPUS[j])) {
            wstart[nw++] = ns;
            for (size_t k = i; k < j; k++)
                sym[ns++] = SV_N_SPECIAL + ' ';
            while (j < n && is_alpha(CORPUS[j]))
                sym[ns++] = SV_N_SPECIAL + (unsigned char)CORPUS[j++];
            i = j;
        } else {
            i++;
        }
    }
    wstart[nw] = ns;
    size_t *wlen = malloc((nw ? nw : 1) * sizeof *wlen);
    if (!wlen) abort();
    for (size_t w = 0; w < nw; w++)
        wlen[w] = wstart[w + 1] - wstart[w];

    enum { HC = 8192 };
    uint64_t *keys = malloc(HC * sizeof *keys);
    uint32_t *cnt = malloc(HC * sizeof *cnt);
    if (!keys || !cnt) abort();
    while (v->n < max_size) {
        memset(cnt, 0, HC * sizeof *cnt);
        uint64_t best = 0;
        uint32_t best_n = 0;
        for (size_t w = 0; w < nw; w++) {
            const int32_t *s = sym + wstart[w];
            for (size_t k = 0; k + 1 < wlen[w]; k++) {
                uint64_t key = ((uint64_t)(uint32_t)s[k] << 32) | (uint32_t)s[k + 1];
                size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 51) & (HC - 1);
                while (cnt[h] && keys[h] != key)
                    h = (h + 1) & (HC - 1);
                keys[h] = key;
                cnt[h]++;
                if (cnt[h] > best_n || (cnt[h] == best_n && key < best)) {
                    best_n = cnt[h];
                    best = key;
                }
            }
        }
        if (best_n < 2) break;
        int32_t a = (int32_t)(best >> 32), b = (int32_t)(best & 0xffffffffu);
        char *m = concat(v, a, b);
        int32_t id = sv_find(v, m);
        if (id < 0) id = sv_add(v, m, 1);
        free(m);
        add_merge(v, a, b);
        for (size_t w = 0; w < nw; w++) {
            int32_t *s = sym + wstart[w];
            size_t o = 0;
            for (size_t k = 0; k < wlen[w]; k++) {
                if (k + 1 < wlen[w] && s[k] == a && s[k + 1] == b) {
                    s[o++] = id;
                    k++;
                } else {
                    s[o++] = s[k];
                }
            }
            wlen[w] = o;
        }
    }
    free(keys);
    free(cnt);
    free(sym);
    free(wstart);
    free(wlen);
}

static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* "Ġ"-prefixed or bare ASCII-letter words: the only tokens random merges use,
 * so filler tokens look like word pieces. */
static int word_kind(const char *t) {
    if (!strncmp(t, "\xC4\xA0", 2))
        t += 2; /* Ġ */
    else if (!*t)
        return 0;
    for (const char *p = t; *p; p++)
        if (!is_alpha(*p)) return 0;
    return 1;
}

typedef struct {
    int32_t *ids;
    size_t n, cap;
} idvec;

static void idpush(idvec *v, int32_t id) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->ids = realloc(v->ids, v->cap * sizeof *v->ids);
        if (!v->ids) abort();
    }
    v->ids[v->n++] = id;
}

void sv_fill_random(sv_vocab *v, size_t size, uint64_t seed) {
    idvec left = {0}, right = {0};
    for (size_t i = SV_N_SPECIAL; i < v->n; i++) {
        if (!word_kind(v->tok[i])) continue;
        idpush(&left, (int32_t)i);
        if (strncmp(v->tok[i], "\xC4\xA0", 2) && strlen(v->tok[i]) <= 3) idpush(&right, (int32_t)i);
    }
    idpush(&left, SV_N_SPECIAL + ' ');
    uint64_t rng = seed ^ 0x5EEDF00Dull;
    size_t fails = 0;
    while (v->n < size) {
        int32_t a, b;
        if (fails < 1000) {
            a = left.ids[next_rand(&rng) % left.n];
            b = right.ids[next_rand(&rng) % right.n];
        } else {
            /* Word space exhausted (tiny vocabularies never get here): any
             * two normal tokens. */
            a = (int32_t)(SV_N_SPECIAL + next_rand(&rng) % (v->n - SV_N_SPECIAL));
            b = (int32_t)(SV_N_SPECIAL + next_rand(&rng) % (v->n - SV_N_SPECIAL));
        }
        char *m = concat(v, a, b);
        if (strlen(m) > 16 || sv_find(v, m) >= 0) {
            free(m);
            fails++;
            continue;
        }
        fails = 0;
        int32_t id = sv_add(v, m, 1);
        add_merge(v, a, b);
        if (word_kind(m)) idpush(&left, id);
        free(m);
    }
    free(left.ids);
    free(right.ids);
}

/* ------------------------------------------------------------ script -- */

static int serr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int serr(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define SV_MAX_CHAIN 2048

/* Control token whose text starts at s (within n bytes), or -1. */
static int32_t special_at(const char *s, size_t n) {
    if (n < 4 || s[0] != '<' || s[1] != '|') return -1;
    for (int i = 0; i < SV_N_SPECIAL; i++) {
        size_t l = strlen(SPECIALS[i]);
        if (l <= n && !memcmp(s, SPECIALS[i], l)) return i;
    }
    return -1;
}

static bool ws(char c) {
    return c == ' ' || c == '\n';
}

typedef struct {
    size_t start, end; /* raw byte range, or special token */
    int32_t special;   /* id, or -1 for text */
} piece;

/* Is the text piece p unused so far (vocabulary and earlier pieces)? */
static bool fresh(const sv_vocab *v, const char *s, const piece *ps, size_t np, size_t a,
                  size_t b) {
    char *e = sv_encode(s + a, b - a);
    bool ok = sv_find(v, e) < 0;
    free(e);
    for (size_t i = 0; ok && i < np; i++)
        if (ps[i].special < 0 && ps[i].end - ps[i].start == b - a &&
            !memcmp(s + ps[i].start, s + a, b - a))
            ok = false;
    return ok;
}

int sv_script_chain(sv_vocab *v, const char *s, size_t len, int32_t **chain, size_t *n_out,
                    char *err, size_t errlen) {
    *chain = NULL;
    *n_out = 0;
    if (len > 65536) return serr(err, errlen, "script: %zu bytes (max 65536)", len);
    /* Control tokens first: each may occur once, and none may end the turn. */
    bool used[SV_N_SPECIAL] = {0};
    for (size_t i = 0; i < len; i++) {
        int32_t sp = special_at(s + i, len - i);
        if (sp < 0) continue;
        if (sp == SV_IM_END || sp == SV_EOT)
            return serr(err, errlen, "script: %s would end generation early", SPECIALS[sp]);
        if (used[sp])
            return serr(err, errlen,
                        "script: %s occurs twice (a scripted model can use "
                        "each token once)",
                        SPECIALS[sp]);
        used[sp] = true;
        i += strlen(SPECIALS[sp]) - 1;
    }
    piece *ps = malloc((len + 1) * sizeof *ps);
    if (!ps) abort();
    size_t np = 0;
    size_t i = 0;
    while (i < len) {
        int32_t sp = special_at(s + i, len - i);
        if (sp >= 0) {
            ps[np++] = (piece){i, i + strlen(SPECIALS[sp]), sp};
            i += strlen(SPECIALS[sp]);
            continue;
        }
        /* A text segment runs to the next control token. */
        size_t seg_end = i, seg_first = np;
        while (seg_end < len && special_at(s + seg_end, len - seg_end) < 0)
            seg_end++;
        while (i < seg_end) {
            /* Chunks start where whitespace follows a non-space. */
            size_t e = i + 1;
            while (e < seg_end && !(ws(s[e]) && !ws(s[e - 1])))
                e++;
            while (!fresh(v, s, ps, np, i, e) && e < seg_end) {
                e++;
                while (e < seg_end && !(ws(s[e]) && !ws(s[e - 1])))
                    e++;
            }
            if (fresh(v, s, ps, np, i, e)) {
                ps[np++] = (piece){i, e, -1};
            } else if (np > seg_first && fresh(v, s, ps, np - 1, ps[np - 1].start, e)) {
                ps[np - 1].end = e; /* fold the repeated tail into the piece before */
            } else {
                free(ps);
                return serr(err, errlen,
                            "script: text '%.*s' repeats and cannot be made a "
                            "unique token",
                            (int)(e - i > 40 ? 40 : e - i), s + i);
            }
            i = e;
        }
    }
    if (np > SV_MAX_CHAIN) {
        free(ps);
        return serr(err, errlen, "script: %zu pieces (max %d)", np, SV_MAX_CHAIN);
    }
    int32_t *c = malloc((np ? np : 1) * sizeof *c);
    if (!c) abort();
    for (size_t k = 0; k < np; k++) {
        if (ps[k].special >= 0) {
            c[k] = ps[k].special;
        } else {
            char *e = sv_encode(s + ps[k].start, ps[k].end - ps[k].start);
            c[k] = sv_add(v, e, 1);
            free(e);
        }
    }
    free(ps);
    *chain = c;
    *n_out = np;
    return 0;
}
