/* synth: random-weight and scripted LFM2 GGUF writers. See synth.h. */
#include "tools/synth/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tools/synth/gguf_write.h"
#include "engine/quant.h"
#include "tools/synth/synth_vocab.h"

/* Our own rendering of the LFM2 instruct template's shape (tool list between
 * <|tool_list_start|>/<|tool_list_end|>, tool turns wrapped in
 * <|tool_response_start|>/<|tool_response_end|>). */
static const char CHAT_TEMPLATE[] =
    "{{- bos_token -}}{%- set ns = namespace(system_prompt=\"\") -%}"
    "{%- if messages[0][\"role\"] == \"system\" -%}"
    "{%- set ns.system_prompt = messages[0][\"content\"] -%}"
    "{%- set messages = messages[1:] -%}{%- endif -%}"
    "{%- if tools -%}{%- set ns.system_prompt = ns.system_prompt + (\"\\n\" if ns.system_prompt "
    "else \"\") + \"List of tools: <|tool_list_start|>[\" -%}"
    "{%- for tool in tools -%}{%- if tool is not string -%}{%- set tool = tool | tojson -%}"
    "{%- endif -%}{%- set ns.system_prompt = ns.system_prompt + tool -%}"
    "{%- if not loop.last -%}{%- set ns.system_prompt = ns.system_prompt + \", \" -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- set ns.system_prompt = ns.system_prompt + \"]<|tool_list_end|>\" -%}{%- endif -%}"
    "{%- if ns.system_prompt -%}{{- \"<|im_start|>system\\n\" + ns.system_prompt + "
    "\"<|im_end|>\\n\" -}}{%- endif -%}"
    "{%- for message in messages -%}{{- \"<|im_start|>\" + message[\"role\"] + \"\\n\" -}}"
    "{%- set content = message[\"content\"] -%}"
    "{%- if content is not string -%}{%- set content = content | tojson -%}{%- endif -%}"
    "{%- if message[\"role\"] == \"tool\" -%}{%- set content = \"<|tool_response_start|>\" + "
    "content + \"<|tool_response_end|>\" -%}{%- endif -%}"
    "{{- content + \"<|im_end|>\\n\" -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- \"<|im_start|>assistant\\n\" -}}{%- endif -%}";

/* Our own rendering of the LFM2.5 instruct template's shape: "List of
 * tools: [...]" without list tokens, tool turns unwrapped, and past
 * assistant turns keep only what follows their last </think>. */
static const char CHAT_TEMPLATE_25[] =
    "{{- bos_token -}}{%- set ns = namespace(system_prompt=\"\", last_assistant=-1) -%}"
    "{%- if messages[0][\"role\"] == \"system\" -%}"
    "{%- set ns.system_prompt = messages[0][\"content\"] -%}"
    "{%- set messages = messages[1:] -%}{%- endif -%}"
    "{%- if tools -%}{%- set ns.system_prompt = ns.system_prompt + (\"\\n\" if ns.system_prompt "
    "else \"\") + \"List of tools: [\" + (tools | map(\"tojson\") | join(\", \")) + \"]\" -%}"
    "{%- endif -%}"
    "{%- if ns.system_prompt -%}{{- \"<|im_start|>system\\n\" + ns.system_prompt + "
    "\"<|im_end|>\\n\" -}}{%- endif -%}"
    "{%- for message in messages -%}{%- if message[\"role\"] == \"assistant\" -%}"
    "{%- set ns.last_assistant = loop.index0 -%}{%- endif -%}{%- endfor -%}"
    "{%- for message in messages -%}{{- \"<|im_start|>\" + message[\"role\"] + \"\\n\" -}}"
    "{%- set content = message[\"content\"] -%}"
    "{%- if content is not string -%}{%- set content = content | tojson -%}{%- endif -%}"
    "{%- if message[\"role\"] == \"assistant\" and loop.index0 != ns.last_assistant and "
    "\"</think>\" in content -%}{%- set content = content.split(\"</think>\")[-1] | trim -%}"
    "{%- endif -%}"
    "{{- content + \"<|im_end|>\\n\" -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- \"<|im_start|>assistant\\n\" -}}{%- endif -%}";

/* ------------------------------------------------------------ presets -- */

typedef struct {
    const char *name;
    int e, f, h, hkv, layers, vocab, ctx;
    float theta;
    int attn[8], n_attn;
    int experts, used, ff_exp, dense_lead; /* mixture of experts, 0 = dense */
} preset;

// clang-format off
static const preset PRESETS[] = {
    {"tiny", 256, 512, 4, 2, 6, 1024, 4096, 1e6f, {2, 4}, 2, 0, 0, 0, 0},
    {"350m", 1024, 4608, 16, 8, 16, 65536, 128000, 1e6f, {2, 5, 8, 10, 12, 14}, 6, 0, 0, 0, 0},
    {"700m", 1536, 6912, 24, 8, 16, 65536, 128000, 1e6f, {2, 5, 8, 10, 12, 14}, 6, 0, 0, 0, 0},
    {"1.2b", 2048, 8192, 32, 8, 16, 65536, 128000, 1e6f, {2, 5, 8, 10, 12, 14}, 6, 0, 0, 0, 0},
    {"2.6b", 2048, 10752, 32, 8, 30, 65536, 128000, 1e6f, {2, 5, 9, 13, 17, 21, 24, 27}, 8, 0, 0, 0, 0},
    {"tiny-moe", 256, 512, 4, 2, 6, 1024, 4096, 1e6f, {2, 4}, 2, 8, 2, 256, 2},
    /* LFM2-8B-A1B: dense FFN 7168 in blocks 0-1, then 32 experts of 1792. */
    {"8b-a1b", 2048, 7168, 32, 8, 24, 65536, 128000, 1e6f, {2, 6, 10, 14, 18, 21}, 6, 32, 4, 1792, 2},
};
// clang-format on

int synth_preset(const char *name, synth_opts *o) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof *PRESETS; i++) {
        const preset *p = &PRESETS[i];
        if (strcasecmp(name, p->name)) continue;
        o->n_embd = p->e;
        o->n_ff = p->f;
        o->n_head = p->h;
        o->n_head_kv = p->hkv;
        o->n_layer = p->layers;
        o->n_vocab = p->vocab;
        o->n_ctx = p->ctx;
        o->rope_theta = p->theta;
        o->n_attn = p->n_attn;
        memcpy(o->attn_layers, p->attn, sizeof p->attn);
        o->n_expert = p->experts;
        o->n_expert_used = p->used;
        o->n_ff_exp = p->ff_exp;
        o->n_dense_lead = p->dense_lead;
        snprintf(o->name, sizeof o->name, "lfm2-synth-%s", p->name);
        return 0;
    }
    return -1;
}

void synth_opts_default(synth_opts *o) {
    memset(o, 0, sizeof *o);
    synth_preset("tiny", o);
    o->rms_eps = 1e-5f;
    o->weight_std = 0.02f;
    o->seed = 1;
    snprintf(o->type, sizeof o->type, "f32");
    snprintf(o->arch, sizeof o->arch, "lfm2");
}

void synth_truncate(synth_opts *o, int n) {
    if (n < 0 || n >= o->n_layer) return;
    o->n_layer = n;
    int k = 0;
    for (int i = 0; i < o->n_attn; i++)
        if (o->attn_layers[i] < n) o->attn_layers[k++] = o->attn_layers[i];
    o->n_attn = k;
    if (o->n_dense_lead > n) o->n_dense_lead = n;
}

/* ---------------------------------------------------------------- mixes -- */

typedef struct {
    const char *name;
    uint32_t base;  /* 2-D weights */
    uint32_t head;  /* output head (token_embd when tied) */
    bool raise_m;   /* _M: some attn_v / ffn_down to Q6_K */
    uint32_t ftype; /* general.file_type; UINT32_MAX = not written */
} mix;

static const mix MIXES[] = {
    {"f32", LQ_F32, LQ_F32, false, UINT32_MAX}, {"f16", LQ_F16, LQ_F16, false, 1},
    {"bf16", LQ_BF16, LQ_BF16, false, 32},      {"q8_0", LQ_Q8_0, LQ_Q8_0, false, 7},
    {"q4_0", LQ_Q4_0, LQ_Q6_K, false, 2},       {"q4_k_m", LQ_Q4_K, LQ_Q6_K, true, 15},
    {"q5_k_m", LQ_Q5_K, LQ_Q6_K, true, 17},     {"q6_k", LQ_Q6_K, LQ_Q6_K, false, 18},
};

static const mix *find_mix(const char *t) {
    for (size_t i = 0; i < sizeof MIXES / sizeof *MIXES; i++)
        if (!strcasecmp(t, MIXES[i].name)) return &MIXES[i];
    return NULL;
}

bool synth_type_known(const char *type) {
    return find_mix(type) != NULL;
}

/* llama.cpp's rule for which layers of an _M mix get more bits. */
static bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* A quantized type needs rows that fill whole blocks; like llama.cpp, fall
 * back when they do not (K-quants -> Q8_0, else F32). */
static uint32_t fit_type(uint32_t t, uint64_t row) {
    if (row % (uint64_t)lq_block_values((lq_type)t) == 0) return t;
    if (row % 32 == 0 && t != LQ_Q4_0) return LQ_Q8_0;
    return LQ_F32;
}

/* ------------------------------------------------------------- tensors -- */

enum { K_MATRIX, K_NORM, K_CONV, K_ONES, K_ONEHOT, K_TRANSITION, K_BIAS };

typedef struct {
    int kind;
    uint32_t type;
    uint64_t cols; /* dims[0] */
    uint64_t seed;
    float std;
    uint8_t *pool; /* pre-quantized blocks for big quantized matrices */
} tspec;

#define POOL_BLOCKS 4096

typedef struct {
    tspec *t;
    size_t n, cap;
    float *row; /* scratch: one row of floats */
    size_t row_cap;
    const int32_t *dim_of; /* scripted: token -> one-hot dimension */
    const int32_t *src_of; /* scripted: token -> dim that leads to it, or -1 */
} synth_ctx;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Triangular noise with unit variance: cheap, bounded, "normal-ish". */
static inline float tri(uint64_t *s) {
    uint64_t u = mix64(*s += 0x9E3779B97F4A7C15ull);
    float t = ((float)(uint32_t)u + (float)(uint32_t)(u >> 32)) * (1.0f / 4294967296.0f) - 1.0f;
    return t * 2.4494897f; /* 1 / sqrt(1/6) */
}

static void gen_row(const synth_ctx *c, const tspec *t, uint64_t r, float *x) {
    uint64_t s = mix64(t->seed ^ (r * 0xD1B54A32D192ED03ull));
    switch (t->kind) {
    case K_MATRIX:
        for (uint64_t i = 0; i < t->cols; i++)
            x[i] = t->std * tri(&s);
        break;
    case K_NORM:
        for (uint64_t i = 0; i < t->cols; i++)
            x[i] = 1.0f + 0.05f * tri(&s);
        break;
    case K_CONV:
        for (uint64_t i = 0; i < t->cols; i++)
            x[i] = 0.3f * tri(&s);
        break;
    case K_BIAS: /* expert selection bias: small next to sigmoid gaps */
        for (uint64_t i = 0; i < t->cols; i++)
            x[i] = 0.01f * tri(&s);
        break;
    case K_ONES:
        for (uint64_t i = 0; i < t->cols; i++)
            x[i] = 1.0f;
        break;
    case K_ONEHOT:
        memset(x, 0, t->cols * sizeof *x);
        x[c->dim_of[r]] = 1.0f;
        break;
    case K_TRANSITION:
        memset(x, 0, t->cols * sizeof *x);
        if (c->src_of[r] >= 0) x[c->src_of[r]] = 2.0f;
        break;
    }
}

static void encode_row(uint32_t type, const float *x, uint64_t n, uint8_t *out) {
    switch (type) {
    case LQ_F32: memcpy(out, x, n * 4); break;
    case LQ_F16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = lq_f32_to_f16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
        break;
    case LQ_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = lq_f32_to_bf16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
        break;
    default: lq_quantize_row((lq_type)type, x, out, (int64_t)n); break;
    }
}

static int fill(void *vctx, size_t idx, uint64_t row0, uint64_t n_rows, void *buf, size_t nb) {
    synth_ctx *c = vctx;
    tspec *t = &c->t[idx];
    size_t rb = lq_row_bytes((lq_type)t->type, (int64_t)t->cols);
    uint8_t *out = buf;
    if (t->pool) {
        /* Big quantized matrix: each block is a random pick from a pool of
         * pre-quantized random blocks. Blocks are self-contained in every
         * format, so the rows stay valid and distinct, at memcpy speed. */
        size_t bb = lq_block_bytes((lq_type)t->type);
        uint64_t per_row = t->cols / (uint64_t)lq_block_values((lq_type)t->type);
        for (uint64_t r = 0; r < n_rows; r++) {
            uint64_t s = t->seed ^ ((row0 + r) * 0xD1B54A32D192ED03ull);
            for (uint64_t b = 0; b < per_row; b++) {
                uint64_t k = mix64(s += 0x9E3779B97F4A7C15ull) % POOL_BLOCKS;
                memcpy(out + r * rb + b * bb, t->pool + k * bb, bb);
            }
        }
    } else {
        for (uint64_t r = 0; r < n_rows; r++) {
            gen_row(c, t, row0 + r, c->row);
            encode_row(t->type, c->row, t->cols, out + r * rb);
        }
    }
    (void)nb;
    return 0;
}

/* Adds a d0 x d1 x d2 tensor (d2 > 1: a stack of d2 matrices, rows counted
 * over d1 * d2). */
static int add3(synth_ctx *c, gguf_writer *w, const char *name, uint64_t d0, uint64_t d1,
                uint64_t d2, int kind, uint32_t type, float std, uint64_t seed, char *err,
                size_t errlen) {
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->t = realloc(c->t, c->cap * sizeof *c->t);
        if (!c->t) abort();
    }
    tspec *t = &c->t[c->n];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->type = (kind == K_NORM || kind == K_CONV || kind == K_ONES || kind == K_BIAS)
                  ? LQ_F32
                  : fit_type(type, d0);
    t->cols = d0;
    t->std = std;
    t->seed = mix64(seed ^ (0x1234567ull * (c->n + 1)));
    if (d0 > c->row_cap) {
        c->row_cap = d0 > POOL_BLOCKS * 256 ? d0 : POOL_BLOCKS * 256;
        free(c->row);
        c->row = malloc(c->row_cap * sizeof *c->row);
        if (!c->row) abort();
    }
    uint64_t dims[3] = {d0, d1, d2};
    uint32_t n_dims = (kind == K_NORM || kind == K_ONES || kind == K_BIAS) ? 1 : d2 > 1 ? 3 : 2;
    int idx = gguf_w_add_tensor_fill(w, name, n_dims, dims, t->type, fill, c);
    if (idx < 0 || (size_t)idx != c->n) {
        snprintf(err, errlen, "tensor %s: cannot write shape [%llu, %llu] as %s", name,
                 (unsigned long long)d0, (unsigned long long)d1, lq_type_name(t->type));
        return -1;
    }
    bool quant = t->type != LQ_F32 && t->type != LQ_F16 && t->type != LQ_BF16;
    if (kind == K_MATRIX && quant && d0 * d1 * d2 >= (1u << 20)) {
        int64_t bv = lq_block_values((lq_type)t->type);
        t->pool = malloc(POOL_BLOCKS * lq_block_bytes((lq_type)t->type));
        if (!t->pool) abort();
        uint64_t s = t->seed;
        for (int64_t i = 0; i < POOL_BLOCKS * bv; i++)
            c->row[i] = t->std * tri(&s);
        lq_quantize_row((lq_type)t->type, c->row, t->pool, POOL_BLOCKS * bv);
    }
    c->n++;
    return 0;
}

static int add(synth_ctx *c, gguf_writer *w, const char *name, uint64_t d0, uint64_t d1, int kind,
               uint32_t type, float std, uint64_t seed, char *err, size_t errlen) {
    return add3(c, w, name, d0, d1, 1, kind, type, std, seed, err, errlen);
}

static void ctx_free(synth_ctx *c) {
    for (size_t i = 0; i < c->n; i++)
        free(c->t[i].pool);
    free(c->t);
    free(c->row);
}

/* ---------------------------------------------------------- metadata -- */

static void add_meta(gguf_writer *w, const synth_opts *o, const sv_vocab *v, int e, int f, int h,
                     int layers, const int32_t *hkv, const mix *m) {
    bool moe = o->n_expert > 0 && !o->script;
    gguf_w_add_str(w, "general.architecture",
                   moe && !strcmp(o->arch, "lfm2") ? "lfm2moe" : o->arch);
    gguf_w_add_str(w, "general.name", o->name[0] ? o->name : "lfm2-synth");
    gguf_w_add_u32(w, "general.alignment", 32);
    /* Keys keep the lfm2 (lfm2moe) prefix even when --arch overrides the
     * architecture, so a wrong-architecture test file differs in that one
     * field only. */
#define K(suffix) (moe ? "lfm2moe." suffix : "lfm2." suffix)
    gguf_w_add_u32(w, K("context_length"), (uint32_t)o->n_ctx);
    gguf_w_add_u32(w, K("embedding_length"), (uint32_t)e);
    gguf_w_add_u32(w, K("feed_forward_length"), (uint32_t)f);
    gguf_w_add_u32(w, K("block_count"), (uint32_t)layers);
    gguf_w_add_u32(w, K("attention.head_count"), (uint32_t)h);
    gguf_w_add_arr(w, K("attention.head_count_kv"), GGUF_T_UINT32, hkv, (uint64_t)layers);
    gguf_w_add_f32(w, K("rope.freq_base"), o->rope_theta);
    gguf_w_add_f32(w, K("attention.layer_norm_rms_epsilon"), o->rms_eps);
    gguf_w_add_u32(w, K("shortconv.l_cache"), 3);
    gguf_w_add_u32(w, K("vocab_size"), (uint32_t)v->n);
    if (moe) {
        gguf_w_add_u32(w, K("expert_count"), (uint32_t)o->n_expert);
        gguf_w_add_u32(w, K("expert_used_count"), (uint32_t)o->n_expert_used);
        gguf_w_add_u32(w, K("expert_feed_forward_length"), (uint32_t)o->n_ff_exp);
        gguf_w_add_u32(w, K("leading_dense_block_count"), (uint32_t)o->n_dense_lead);
        gguf_w_add_u32(w, K("expert_gating_func"), o->moe_gating ? (uint32_t)o->moe_gating : 2);
    }
#undef K
    gguf_w_add_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_w_add_str(w, "tokenizer.ggml.pre", "lfm2");
    gguf_w_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, v->n);
    gguf_w_add_i32_arr(w, "tokenizer.ggml.token_type", v->type, v->n);
    gguf_w_add_str_arr(w, "tokenizer.ggml.merges", (const char *const *)v->merge, v->n_merge);
    gguf_w_add_u32(w, "tokenizer.ggml.bos_token_id", SV_BOS);
    gguf_w_add_u32(w, "tokenizer.ggml.eos_token_id", SV_IM_END);
    gguf_w_add_u32(w, "tokenizer.ggml.padding_token_id", SV_PAD);
    gguf_w_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_w_add_str(w, "tokenizer.chat_template", o->lfm25 ? CHAT_TEMPLATE_25 : CHAT_TEMPLATE);
    if (m->ftype != UINT32_MAX) {
        gguf_w_add_u32(w, "general.quantization_version", 2);
        gguf_w_add_u32(w, "general.file_type", m->ftype);
    }
}

/* ---------------------------------------------------------------- build -- */

static int check_opts(const synth_opts *o, char *err, size_t errlen) {
    const char *bad = NULL;
    if (o->n_embd < 1 || o->n_embd > 65536)
        bad = "n_embd must be in 1..65536";
    else if (o->n_head < 1 || o->n_embd % o->n_head)
        bad = "n_embd must be a multiple of n_head";
    else if (o->n_head_kv < 1 || o->n_head % o->n_head_kv)
        bad = "n_head must be a multiple of n_head_kv";
    else if (o->n_ff < 1 || o->n_ff > 1 << 20)
        bad = "n_ff must be in 1..1048576";
    else if (o->n_layer < 0 || o->n_layer > SYNTH_MAX_LAYERS)
        bad = "layers must be in 0..64";
    else if (o->n_vocab < SV_N_SPECIAL + 256 || o->n_vocab > 1 << 20)
        bad = "vocab must be in 270..1048576";
    else if (o->n_ctx < 1)
        bad = "context length must be positive";
    else if (!find_mix(o->type))
        bad = "unknown --type";
    else if (o->n_expert < 0 || o->n_expert > 1024)
        bad = "experts must be in 0..1024";
    else if (o->n_expert > 0 && (o->n_expert_used < 1 || o->n_expert_used > o->n_expert))
        bad = "experts used must be in 1..experts";
    else if (o->n_expert > 0 && (o->n_ff_exp < 1 || o->n_ff_exp > 1 << 20))
        bad = "expert width must be in 1..1048576";
    else if (o->n_expert > 0 && (o->n_dense_lead < 0 || o->n_dense_lead > o->n_layer))
        bad = "leading dense blocks must be in 0..layers";
    if (!bad)
        for (int i = 0; i < o->n_attn; i++) {
            if (o->attn_layers[i] < 0 || o->attn_layers[i] >= o->n_layer)
                bad = "attention layer index out of range";
            for (int j = 0; j < i; j++)
                if (o->attn_layers[j] == o->attn_layers[i]) bad = "attention layer listed twice";
        }
    if (bad) snprintf(err, errlen, "synth-model: %s", bad);
    return bad ? -1 : 0;
}

static int build(const synth_opts *o, gguf_writer *w, synth_ctx *c, sv_vocab *v, int32_t **maps,
                 char *err, size_t errlen) {
    if (!o->script && check_opts(o, err, errlen)) return -1;
    const mix *m = find_mix(o->type);
    if (!m) {
        snprintf(err, errlen, "synth-model: unknown --type %s", o->type);
        return -1;
    }
    sv_init(v);
    int e = o->n_embd, f = o->n_ff, h = o->n_head, layers = o->n_layer;
    bool untied = o->untied;
    int32_t hkv[SYNTH_MAX_LAYERS] = {0};
    if (o->script) {
        sv_train_corpus(v, 1024);
        int32_t *chain;
        size_t n;
        if (sv_script_chain(v, o->script, o->script_len, &chain, &n, err, errlen)) return -1;
        /* One one-hot dimension per chain token, plus dimension 0 shared by
         * every other token (which all lead to the first piece). */
        e = (int)((n + 1 + 255) / 256 * 256);
        h = e / 64;
        f = e;
        layers = 0;
        untied = true;
        int32_t *dim_of = calloc(v->n, sizeof *dim_of), *src_of = malloc(v->n * sizeof *src_of);
        if (!dim_of || !src_of) abort();
        for (size_t t = 0; t < v->n; t++)
            src_of[t] = -1;
        for (size_t k = 0; k < n; k++) {
            dim_of[chain[k]] = (int32_t)k + 1;
            src_of[chain[k]] = (int32_t)k;
        }
        src_of[SV_IM_END] = (int32_t)n;
        free(chain);
        maps[0] = dim_of;
        maps[1] = src_of;
        c->dim_of = dim_of;
        c->src_of = src_of;
    } else {
        sv_train_corpus(v, (size_t)o->n_vocab);
        sv_fill_random(v, (size_t)o->n_vocab, 0x7ABE5EEDull);
        for (int i = 0; i < o->n_attn; i++)
            hkv[o->attn_layers[i]] = o->n_head_kv;
    }
    add_meta(w, o, v, e, f, h, layers, hkv, m);

    uint64_t V = v->n, E = (uint64_t)e, F = (uint64_t)f, hd = E / (uint64_t)h;
    float sd = o->weight_std > 0 ? o->weight_std : 0.02f;
    uint64_t seed = o->seed;
    char nm[96];
    int rc = 0;
    if (untied)
        rc |= add(c, w, "output.weight", E, V, o->script ? K_TRANSITION : K_MATRIX, m->head, sd,
                  seed, err, errlen);
    rc |= add(c, w, "token_embd.weight", E, V, o->script ? K_ONEHOT : K_MATRIX,
              untied ? m->base : m->head, sd, seed, err, errlen);
    rc |= add(c, w, "token_embd_norm.weight", E, 1, o->script ? K_ONES : K_NORM, LQ_F32, 0, seed,
              err, errlen);
    int n_attn_seen = 0, n_attn = 0;
    for (int l = 0; l < layers; l++)
        n_attn += hkv[l] > 0;
    for (int l = 0; l < layers && !rc; l++) {
        uint32_t down = m->raise_m && more_bits(l, layers) ? LQ_Q6_K : m->base;
#define T(suffix, d0, d1, kind, type)                                                              \
    (snprintf(nm, sizeof nm, "blk.%d." suffix, l),                                                 \
     rc |= add(c, w, nm, d0, d1, kind, type, kind == K_MATRIX ? sd : 0, seed, err, errlen))
#define T3(suffix, d0, d1, d2, type)                                                               \
    (snprintf(nm, sizeof nm, "blk.%d." suffix, l),                                                 \
     rc |= add3(c, w, nm, d0, d1, d2, K_MATRIX, type, sd, seed, err, errlen))
        /* Dense SwiGLU, or the stacked experts with their router and bias. */
#define FFN()                                                                                      \
    do {                                                                                           \
        if (o->n_expert > 0 && l >= o->n_dense_lead) {                                             \
            uint64_t X = (uint64_t)o->n_expert, Fx = (uint64_t)o->n_ff_exp;                        \
            T("exp_probs_b.bias", X, 1, K_BIAS, LQ_F32);                                           \
            T3("ffn_down_exps.weight", Fx, E, X, down);                                            \
            T3("ffn_gate_exps.weight", E, Fx, X, m->base);                                         \
            T("ffn_gate_inp.weight", E, X, K_MATRIX, LQ_F32);                                      \
            T("ffn_norm.weight", E, 1, K_NORM, LQ_F32);                                            \
            T3("ffn_up_exps.weight", E, Fx, X, m->base);                                           \
        } else {                                                                                   \
            T("ffn_down.weight", F, E, K_MATRIX, down);                                            \
            T("ffn_gate.weight", E, F, K_MATRIX, m->base);                                         \
            T("ffn_norm.weight", E, 1, K_NORM, LQ_F32);                                            \
            T("ffn_up.weight", E, F, K_MATRIX, m->base);                                           \
        }                                                                                          \
    } while (0)
        if (hkv[l] > 0) {
            uint64_t kvd = (uint64_t)hkv[l] * hd;
            uint32_t vt = m->raise_m && more_bits(n_attn_seen, n_attn) ? LQ_Q6_K : m->base;
            n_attn_seen++;
            T("attn_k.weight", E, kvd, K_MATRIX, m->base);
            T("attn_k_norm.weight", hd, 1, K_NORM, LQ_F32);
            T("attn_norm.weight", E, 1, K_NORM, LQ_F32);
            T("attn_output.weight", E, E, K_MATRIX, m->base);
            T("attn_q.weight", E, E, K_MATRIX, m->base);
            T("attn_q_norm.weight", hd, 1, K_NORM, LQ_F32);
            T("attn_v.weight", E, kvd, K_MATRIX, vt);
            FFN();
        } else {
            T("attn_norm.weight", E, 1, K_NORM, LQ_F32);
            FFN();
            T("shortconv.conv.weight", 3, E, K_CONV, LQ_F32);
            T("shortconv.in_proj.weight", E, 3 * E, K_MATRIX, m->base);
            T("shortconv.out_proj.weight", E, E, K_MATRIX, m->base);
        }
#undef FFN
#undef T3
#undef T
    }
    return rc ? -1 : 0;
}

static int run(const synth_opts *o, const char *path, tg_buf *out, char *err, size_t errlen) {
    char tmp[256] = "";
    if (!err || !errlen) {
        err = tmp;
        errlen = sizeof tmp;
    }
    gguf_writer *w = gguf_w_new();
    synth_ctx c = {0};
    sv_vocab v = {0};
    int32_t *maps[2] = {NULL, NULL};
    int rc = build(o, w, &c, &v, maps, err, errlen);
    if (!rc)
        rc = path ? gguf_w_write_file(w, path, err, errlen) : gguf_w_write_buf(w, out, err, errlen);
    gguf_w_free(w);
    ctx_free(&c);
    sv_free(&v);
    free(maps[0]);
    free(maps[1]);
    return rc;
}

int synth_write(const synth_opts *o, const char *path, char *err, size_t errlen) {
    return run(o, path, NULL, err, errlen);
}

int synth_write_buf(const synth_opts *o, tg_buf *out, char *err, size_t errlen) {
    return run(o, NULL, out, err, errlen);
}
