/* model_load: opens an LFM2 GGUF (lfm2 or lfm2moe), reads its hyper-parameters from the
 * <arch>.* keys and checks every tensor the forward pass will touch (presence, type,
 * exact dims, byte size) before anything is evaluated. The file is untrusted:
 * every failure is one line naming the key or tensor. Matrices stay in the
 * mapping in their file type; small vectors (norms, conv taps) are
 * dequantized into owned f32 arrays. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

/* Sanity limits: far above any published LFM2, low enough that products of
 * sizes cannot overflow size_t / int64 in the forward pass. */
#define LIM_EMBD  (1 << 16)
#define LIM_FF    (1 << 20)
#define LIM_VOCAB (1 << 24)
#define LIM_HEADS 1024
#define LIM_CONV  64

/* ------------------------------------------------------------ errors -- */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ------------------------------------------------------------ hparams -- */

/* Reads an integer key into [lo, hi]. required=0: missing leaves *out alone. */
static int get_int(const gguf_file *f, const char *key, int required, long lo, long hi, int *out,
                   char *err, size_t errlen) {
    int64_t v;
    char e2[200] = "";
    int rc = gguf_get_i64(f, key, &v, e2, sizeof e2);
    if (rc == -1) {
        if (!required) return 0;
        return fail(err, errlen, LFM_EFORMAT, "missing key %s", key);
    }
    if (rc != 0) return fail(err, errlen, LFM_EFORMAT, "key %s: %s", key, e2[0] ? e2 : "bad type");
    if (v < lo || v > hi)
        return fail(err, errlen, LFM_EFORMAT, "key %s = %lld is out of range [%ld, %ld]", key,
                    (long long)v, lo, hi);
    *out = (int)v;
    return 0;
}

static int get_float(const gguf_file *f, const char *key, int required, double lo, double hi,
                     float *out, char *err, size_t errlen) {
    double v;
    char e2[200] = "";
    int rc = gguf_get_f64(f, key, &v, e2, sizeof e2);
    if (rc == -1) {
        if (!required) return 0;
        return fail(err, errlen, LFM_EFORMAT, "missing key %s", key);
    }
    if (rc != 0) return fail(err, errlen, LFM_EFORMAT, "key %s: %s", key, e2[0] ? e2 : "bad type");
    if (!(v >= lo && v <= hi))
        return fail(err, errlen, LFM_EFORMAT, "key %s = %g is out of range [%g, %g]", key, v, lo,
                    hi);
    *out = (float)v;
    return 0;
}

/* lfm2moe.*: expert count, experts per token, expert width, leading dense
 * blocks; only sigmoid gating (expert_gating_func 2) exists in LFM2. */
static int read_moe_hparams(const gguf_file *f, lfm_hparams *hp, char *err, size_t errlen) {
    int rc, gating = 2;
    if ((rc =
             get_int(f, "lfm2moe.expert_count", 1, 1, LIM_MOE_EXPERTS, &hp->n_expert, err, errlen)))
        return rc;
    if ((rc = get_int(f, "lfm2moe.expert_used_count", 1, 1, hp->n_expert, &hp->n_expert_used, err,
                      errlen)))
        return rc;
    if ((rc = get_int(f, "lfm2moe.expert_feed_forward_length", 1, 1, LIM_FF, &hp->n_ff_exp, err,
                      errlen)))
        return rc;
    if ((rc = get_int(f, "lfm2moe.leading_dense_block_count", 1, 0, hp->n_layer, &hp->n_dense_lead,
                      err, errlen)))
        return rc;
    if ((rc = get_int(f, "lfm2moe.expert_gating_func", 0, 0, 16, &gating, err, errlen))) return rc;
    if (gating != 2)
        return fail(err, errlen, LFM_EFORMAT,
                    "key lfm2moe.expert_gating_func = %d: only 2 (sigmoid) is supported", gating);
    return 0;
}

static int read_hparams(const gguf_file *f, const char *path, lfm_hparams *hp, char *err,
                        size_t errlen) {
    gguf_str s;
    int rc = gguf_get_str(f, "general.architecture", &s, NULL, 0);
    if (rc != 0)
        return fail(err, errlen, LFM_EFORMAT, "not an LFM2 model (no general.architecture)");
    int is_moe = s.len == 7 && memcmp(s.ptr, "lfm2moe", 7) == 0;
    if (!is_moe && (s.len != 4 || memcmp(s.ptr, "lfm2", 4) != 0))
        return fail(err, errlen, LFM_EFORMAT, "not an LFM2 model (general.architecture = %.*s)",
                    (int)(s.len > 64 ? 64 : s.len), s.ptr);
    snprintf(hp->arch, sizeof hp->arch, "%s", is_moe ? "lfm2moe" : "lfm2");
    /* Every hyper-parameter key is prefixed by the architecture name. */
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, hp->arch), k)

    if (gguf_get_str(f, "general.name", &s, NULL, 0) == 0 && s.len > 0) {
        size_t n = s.len < sizeof hp->name - 1 ? (size_t)s.len : sizeof hp->name - 1;
        memcpy(hp->name, s.ptr, n);
        hp->name[n] = 0;
    } else { /* file stem */
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        size_t n = strcspn(b, ".");
        if (n >= sizeof hp->name) n = sizeof hp->name - 1;
        memcpy(hp->name, b, n);
        hp->name[n] = 0;
    }

    if ((rc = get_int(f, KEY("block_count"), 1, 0, LFM_MAX_LAYERS, &hp->n_layer, err, errlen)))
        return rc;
    if ((rc = get_int(f, KEY("embedding_length"), 1, 1, LIM_EMBD, &hp->n_embd, err, errlen)))
        return rc;
    hp->n_expert = hp->n_expert_used = hp->n_ff_exp = hp->n_dense_lead = 0;
    if (is_moe && (rc = read_moe_hparams(f, hp, err, errlen))) return rc;
    hp->n_ff = 0;
    if ((rc = get_int(f, KEY("feed_forward_length"), hp->n_dense_lead > 0, 1, LIM_FF, &hp->n_ff,
                      err, errlen)))
        return rc;
    if ((rc = get_int(f, KEY("attention.head_count"), 1, 1, LIM_HEADS, &hp->n_head, err, errlen)))
        return rc;
    if (hp->n_embd % hp->n_head != 0 || (hp->n_embd / hp->n_head) % 2 != 0)
        return fail(err, errlen, LFM_EFORMAT,
                    "key %s.attention.head_count = %d: embedding_length %d is not a multiple "
                    "of 2 * head_count",
                    hp->arch, hp->n_head, hp->n_embd);
    hp->head_dim = hp->n_embd / hp->n_head;
    if ((rc = get_int(f, KEY("context_length"), 1, 1, INT_MAX, &hp->n_ctx_train, err, errlen)))
        return rc;
    if ((rc = get_float(f, KEY("attention.layer_norm_rms_epsilon"), 1, 0.0, 1.0, &hp->rms_eps, err,
                        errlen)))
        return rc;

    /* head_count_kv: per-block array (0 = conv block); a scalar means every
     * block is attention with that many KV heads. */
    const gguf_kv *kv = gguf_find_kv(f, KEY("attention.head_count_kv"));
    if (!kv && hp->n_layer > 0)
        return fail(err, errlen, LFM_EFORMAT, "missing key %s.attention.head_count_kv", hp->arch);
    int any_attn = 0, any_conv = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        int64_t v;
        if (kv->type == GGUF_T_ARRAY) {
            if (kv->arr_n != (uint64_t)hp->n_layer)
                return fail(err, errlen, LFM_EFORMAT,
                            "key %s.attention.head_count_kv: %llu entries, block_count is %d",
                            hp->arch, (unsigned long long)kv->arr_n, hp->n_layer);
            if (gguf_arr_get_i64(kv, (uint64_t)l, &v) != 0)
                return fail(err, errlen, LFM_EFORMAT,
                            "key %s.attention.head_count_kv: not an integer array", hp->arch);
        } else if (gguf_get_i64(f, KEY("attention.head_count_kv"), &v, NULL, 0) != 0) {
            return fail(err, errlen, LFM_EFORMAT, "key %s.attention.head_count_kv: bad type",
                        hp->arch);
        }
        if (v < 0 || v > hp->n_head || (v > 0 && hp->n_head % v != 0))
            return fail(err, errlen, LFM_EFORMAT,
                        "key %s.attention.head_count_kv[%d] = %lld: must be 0 or divide "
                        "head_count %d",
                        hp->arch, l, (long long)v, hp->n_head);
        hp->n_head_kv[l] = (int)v;
        if (v > 0)
            any_attn = 1;
        else
            any_conv = 1;
    }
    hp->conv_l_cache = 0;
    if ((rc = get_int(f, KEY("shortconv.l_cache"), any_conv, 1, LIM_CONV, &hp->conv_l_cache, err,
                      errlen)))
        return rc;
    hp->rope_theta = 0;
    if ((rc = get_float(f, KEY("rope.freq_base"), any_attn, 1e-3, 1e12, &hp->rope_theta, err,
                        errlen)))
        return rc;

    /* Vocabulary size: the key, else the token list's length. */
    hp->n_vocab = 0;
    if ((rc = get_int(f, KEY("vocab_size"), 0, 1, LIM_VOCAB, &hp->n_vocab, err, errlen))) return rc;
    if (hp->n_vocab == 0) {
        const gguf_kv *t = gguf_find_kv(f, "tokenizer.ggml.tokens");
        if (!t || t->type != GGUF_T_ARRAY || t->arr_n == 0 || t->arr_n > LIM_VOCAB)
            return fail(err, errlen, LFM_EFORMAT,
                        "missing key %s.vocab_size (and no usable tokenizer.ggml.tokens)",
                        hp->arch);
        hp->n_vocab = (int)t->arr_n;
    }
    return 0;
#undef KEY
}

/* ------------------------------------------------------------ tensors -- */

static void fmt_dims(const gguf_tensor *t, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (uint32_t i = 0; i < t->n_dims && i < 4 && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)t->dims[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* Finds `name` and checks that its dims are exactly d0 x d1 x d2 (innermost
 * first, 1 for absent dims), its type is supported and its data size matches. */
static int find_tensor3(const gguf_file *f, const char *name, int64_t d0, int64_t d1, int64_t d2,
                        const gguf_tensor **out, char *err, size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return fail(err, errlen, LFM_EFORMAT, "missing tensor %s", name);
    if (!lq_type_supported(t->type))
        return fail(err, errlen, LFM_EFORMAT, "tensor %s: unsupported type %s (id %u)", name,
                    lq_type_name(t->type), t->type);
    uint64_t want[4] = {(uint64_t)d0, (uint64_t)d1, (uint64_t)d2, 1};
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        uint64_t have = (uint32_t)i < t->n_dims ? t->dims[i] : 1;
        if (have != want[i]) ok = 0;
    }
    if (!ok) {
        char dims[96];
        fmt_dims(t, dims, sizeof dims);
        if (d2 != 1)
            return fail(err, errlen, LFM_EFORMAT, "tensor %s: dims %s, expected [%lld, %lld, %lld]",
                        name, dims, (long long)d0, (long long)d1, (long long)d2);
        if (d1 == 1)
            return fail(err, errlen, LFM_EFORMAT, "tensor %s: dims %s, expected [%lld]", name, dims,
                        (long long)d0);
        return fail(err, errlen, LFM_EFORMAT, "tensor %s: dims %s, expected [%lld, %lld]", name,
                    dims, (long long)d0, (long long)d1);
    }
    int64_t bv = lq_block_values((lq_type)t->type);
    if (bv <= 0 || d0 % bv != 0)
        return fail(err, errlen, LFM_EFORMAT,
                    "tensor %s: row length %lld is not a multiple of the %s block (%lld)", name,
                    (long long)d0, lq_type_name(t->type), (long long)bv);
    uint64_t need = (uint64_t)lq_row_bytes((lq_type)t->type, d0) * (uint64_t)d1 * (uint64_t)d2;
    if (!t->data || t->nbytes < need)
        return fail(err, errlen, LFM_EFORMAT, "tensor %s: %llu data bytes, expected %llu", name,
                    (unsigned long long)t->nbytes, (unsigned long long)need);
    *out = t;
    return 0;
}

static int find_tensor(const gguf_file *f, const char *name, int64_t d0, int64_t d1,
                       const gguf_tensor **out, char *err, size_t errlen) {
    return find_tensor3(f, name, d0, d1, 1, out, err, errlen);
}

/* A stacked expert tensor [n_in, n_out, X] as one (X * n_out, n_in) matrix:
 * expert x is the row range [x * n_out, (x + 1) * n_out). */
static int load_exps(const gguf_file *f, const char *name, int64_t n_in, int64_t n_out, int64_t X,
                     lfm_mat *m, char *err, size_t errlen) {
    const gguf_tensor *t;
    int rc = find_tensor3(f, name, n_in, n_out, X, &t, err, errlen);
    if (rc) return rc;
    m->type = (lq_type)t->type;
    m->data = t->data;
    m->n_in = n_in;
    m->n_out = n_out * X;
    return 0;
}

static int load_mat(const gguf_file *f, const char *name, int64_t n_in, int64_t n_out, lfm_mat *m,
                    char *err, size_t errlen) {
    const gguf_tensor *t;
    int rc = find_tensor(f, name, n_in, n_out, &t, err, errlen);
    if (rc) return rc;
    m->type = (lq_type)t->type;
    m->data = t->data;
    m->n_in = n_in;
    m->n_out = n_out;
    return 0;
}

/* Loads a d0 x d1 tensor as an owned f32 array. */
static int load_f32(const gguf_file *f, const char *name, int64_t d0, int64_t d1, float **out,
                    char *err, size_t errlen) {
    const gguf_tensor *t;
    int rc = find_tensor(f, name, d0, d1, &t, err, errlen);
    if (rc) return rc;
    float *v = malloc((size_t)(d0 * d1) * sizeof *v);
    if (!v) return fail(err, errlen, LFM_ENOMEM, "tensor %s: out of memory", name);
    size_t rb = lq_row_bytes((lq_type)t->type, d0);
    for (int64_t r = 0; r < d1; r++)
        lq_dequant_row((lq_type)t->type, (const uint8_t *)t->data + (size_t)r * rb, v + r * d0, d0);
    for (int64_t i = 0; i < d0 * d1; i++) {
        if (v[i] != v[i] || v[i] - v[i] != 0) { /* NaN or Inf: would poison every logit */
            free(v);
            return fail(err, errlen, LFM_EFORMAT, "tensor %s: non-finite value at %lld", name,
                        (long long)i);
        }
    }
    *out = v;
    return 0;
}

static int load_layer(lfm_model *m, int l, char *err, size_t errlen) {
    const gguf_file *f = m->gguf;
    const lfm_hparams *hp = &m->hp;
    lfm_layer *L = &m->layers[l];
    int64_t E = hp->n_embd, F = hp->n_ff, hd = hp->head_dim, K = hp->conv_l_cache;
    char n[96];
    int rc;
#define NAME(suffix) (snprintf(n, sizeof n, "blk.%d." suffix, l), n)
    L->n_head_kv = hp->n_head_kv[l];
    if ((rc = load_f32(f, NAME("attn_norm.weight"), E, 1, &L->attn_norm, err, errlen))) return rc;
    if ((rc = load_f32(f, NAME("ffn_norm.weight"), E, 1, &L->ffn_norm, err, errlen))) return rc;
    L->moe = hp->n_expert > 0 && l >= hp->n_dense_lead;
    if (L->moe) {
        int64_t X = hp->n_expert, Fx = hp->n_ff_exp;
        if ((rc = load_f32(f, NAME("ffn_gate_inp.weight"), E, X, &L->router, err, errlen)))
            return rc;
        /* The selection bias is optional in the format (absent = 0). */
        if (gguf_find_tensor(f, NAME("exp_probs_b.bias"))) {
            if ((rc = load_f32(f, n, X, 1, &L->exp_bias, err, errlen))) return rc;
        } else if (!(L->exp_bias = calloc((size_t)X, sizeof *L->exp_bias))) {
            return fail(err, errlen, LFM_ENOMEM, "out of memory");
        }
        if ((rc = load_exps(f, NAME("ffn_gate_exps.weight"), E, Fx, X, &L->gate_exps, err, errlen)))
            return rc;
        if ((rc = load_exps(f, NAME("ffn_up_exps.weight"), E, Fx, X, &L->up_exps, err, errlen)))
            return rc;
        if ((rc = load_exps(f, NAME("ffn_down_exps.weight"), Fx, E, X, &L->down_exps, err, errlen)))
            return rc;
    } else {
        if ((rc = load_mat(f, NAME("ffn_gate.weight"), E, F, &L->ffn_gate, err, errlen))) return rc;
        if ((rc = load_mat(f, NAME("ffn_up.weight"), E, F, &L->ffn_up, err, errlen))) return rc;
        if ((rc = load_mat(f, NAME("ffn_down.weight"), F, E, &L->ffn_down, err, errlen))) return rc;
    }
    if (L->n_head_kv == 0) {
        L->conv_index = m->n_conv++;
        L->attn_index = -1;
        if ((rc =
                 load_mat(f, NAME("shortconv.in_proj.weight"), E, 3 * E, &L->conv_in, err, errlen)))
            return rc;
        if ((rc = load_mat(f, NAME("shortconv.out_proj.weight"), E, E, &L->conv_out, err, errlen)))
            return rc;
        if ((rc = load_f32(f, NAME("shortconv.conv.weight"), K, E, &L->conv_w, err, errlen)))
            return rc;
    } else {
        int64_t kvd = (int64_t)L->n_head_kv * hd;
        L->attn_index = m->n_attn++;
        L->conv_index = -1;
        if ((rc = load_mat(f, NAME("attn_q.weight"), E, E, &L->wq, err, errlen))) return rc;
        if ((rc = load_mat(f, NAME("attn_k.weight"), E, kvd, &L->wk, err, errlen))) return rc;
        if ((rc = load_mat(f, NAME("attn_v.weight"), E, kvd, &L->wv, err, errlen))) return rc;
        if ((rc = load_mat(f, NAME("attn_output.weight"), E, E, &L->wo, err, errlen))) return rc;
        if ((rc = load_f32(f, NAME("attn_q_norm.weight"), hd, 1, &L->q_norm, err, errlen)))
            return rc;
        if ((rc = load_f32(f, NAME("attn_k_norm.weight"), hd, 1, &L->k_norm, err, errlen)))
            return rc;
    }
#undef NAME
    return 0;
}

/* -------------------------------------------------------------- model -- */

void lfm_model_opts_default(lfm_model_opts *o) {
    o->kernels = LFM_KERNELS_AUTO;
    o->kv_type = LFM_KV_F32;
    o->n_threads = 0;
}

static int load_all(lfm_model *m, const char *path, char *err, size_t errlen) {
    int rc = read_hparams(m->gguf, path, &m->hp, err, errlen);
    if (rc) return rc;
    lfm_hparams *hp = &m->hp;
    const gguf_file *f = m->gguf;
    /* Before load_f32 touches a norm next to an expert stack (moe.c). */
    if (hp->n_expert > 0) lfm_moe_advise_random(f);
    if ((rc = load_mat(f, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->tok_embd, err, errlen)))
        return rc;
    if ((rc = load_f32(f, "token_embd_norm.weight", hp->n_embd, 1, &m->final_norm, err, errlen)))
        return rc;
    hp->tied_output = gguf_find_tensor(f, "output.weight") == NULL;
    if (hp->tied_output) {
        m->output = m->tok_embd;
    } else if ((rc = load_mat(f, "output.weight", hp->n_embd, hp->n_vocab, &m->output, err,
                              errlen))) {
        return rc;
    }
    for (int l = 0; l < hp->n_layer; l++)
        if ((rc = load_layer(m, l, err, errlen))) return rc;

    for (size_t i = 0; i < gguf_tensor_count(f); i++)
        m->weight_bytes += gguf_tensor_at(f, i)->nbytes;
    if (hp->n_expert > 0 && lfm_moe_advise_loaded(m) != 0)
        return fail(err, errlen, LFM_ENOMEM, "out of memory");

    gguf_str s;
    if (gguf_get_str(f, "tokenizer.chat_template", &s, NULL, 0) == 0) {
        m->chat_template = malloc((size_t)s.len + 1);
        if (!m->chat_template) return fail(err, errlen, LFM_ENOMEM, "chat template: out of memory");
        memcpy(m->chat_template, s.ptr, (size_t)s.len);
        m->chat_template[s.len] = 0;
    }

    char e2[256] = "";
    rc = lfm_tokenizer_from_gguf(f, &m->tok, e2, sizeof e2);
    if (rc) return fail(err, errlen, rc < 0 ? rc : LFM_EFORMAT, "tokenizer: %s", e2);
    if (lfm_vocab_size(m->tok) > hp->n_vocab)
        return fail(err, errlen, LFM_EFORMAT,
                    "tokenizer.ggml.tokens: %d entries exceed vocab_size %d",
                    lfm_vocab_size(m->tok), hp->n_vocab);
    return 0;
}

int lfm_model_load(const char *path, const lfm_model_opts *opts, lfm_model **out, char *err,
                   size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!path || !out) return fail(err, errlen, LFM_EINVAL, "lfm_model_load: NULL argument");
    *out = NULL;
    lfm_model *m = calloc(1, sizeof *m);
    if (!m) return fail(err, errlen, LFM_ENOMEM, "out of memory");
    if (opts)
        m->opts = *opts;
    else
        lfm_model_opts_default(&m->opts);
    m->kernels = m->opts.kernels == LFM_KERNELS_SCALAR  ? LQ_KERNELS_SCALAR
                 : m->opts.kernels == LFM_KERNELS_FLOAT ? LQ_KERNELS_FLOAT
                                                        : LQ_KERNELS_AUTO;
    pthread_mutex_init(&m->mu, NULL);

    char e2[512] = "";
    if (gguf_open(path, &m->gguf, e2, sizeof e2) != 0) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        /* The reader's message already names the path. */
        int code = access(path, R_OK) != 0 ? LFM_EIO : LFM_EFORMAT;
        return fail(err, errlen, code, "%s", e2[0] ? e2 : "cannot open model");
    }
    int rc = load_all(m, path, e2, sizeof e2);
    if (rc == 0) {
        int nt = m->opts.n_threads;
        if (nt <= 0) nt = lfm_physical_cores();
        if (nt > 64) nt = 64;
        m->opts.n_threads = nt;
        m->pool = tp_new(nt);
        if (!m->pool) rc = fail(e2, sizeof e2, LFM_ENOMEM, "cannot start %d compute threads", nt);
    }
    if (rc) {
        fail(err, errlen, rc, "%s: %s", path, e2);
        lfm_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void lfm_model_free(lfm_model *m) {
    if (!m) return;
    for (int l = 0; l < LFM_MAX_LAYERS; l++) {
        lfm_layer *L = &m->layers[l];
        free(L->attn_norm);
        free(L->ffn_norm);
        free(L->conv_w);
        free(L->q_norm);
        free(L->k_norm);
        free(L->router);
        free(L->exp_bias);
    }
    free(m->moe_scratch);
    free(m->moe_paged);
    free(m->final_norm);
    if (m->tok) lfm_tokenizer_free(m->tok);
    free(m->chat_template);
    tp_free(m->pool);
    free(m->scratch);
    free(m->dscratch);
    free(m->xq);
    free(m->xq256);
    pthread_mutex_destroy(&m->mu);
    gguf_close(m->gguf);
    free(m);
}

const lfm_hparams *lfm_model_hparams(const lfm_model *m) {
    return &m->hp;
}
const lfm_tokenizer *lfm_model_tokenizer(const lfm_model *m) {
    return m->tok;
}
const char *lfm_model_chat_template(const lfm_model *m) {
    return m->chat_template;
}
bool lfm_model_is_lfm25(const lfm_model *m) {
    if (lfm_chat_template_kind(m->chat_template) == LFM_TEMPLATE_LFM25) return true;
    return strcasestr(m->hp.name, "lfm2.5") != NULL;
}

uint64_t lfm_model_weight_bytes(const lfm_model *m) {
    return m->weight_bytes;
}

static uint64_t mat_bytes(const lfm_mat *w) {
    return w->data ? (uint64_t)w->n_out * lq_row_bytes(w->type, w->n_in) : 0;
}

uint64_t lfm_model_weight_reads(const lfm_model *m) {
    return m->weight_reads;
}

uint64_t lfm_model_active_bytes(const lfm_model *m) {
    const lfm_hparams *hp = &m->hp;
    uint64_t b = mat_bytes(&m->output) + lq_row_bytes(m->tok_embd.type, hp->n_embd);
    for (int l = 0; l < hp->n_layer; l++) {
        const lfm_layer *L = &m->layers[l];
        b += mat_bytes(&L->conv_in) + mat_bytes(&L->conv_out) + mat_bytes(&L->wq) +
             mat_bytes(&L->wk) + mat_bytes(&L->wv) + mat_bytes(&L->wo);
        if (L->moe)
            b += (uint64_t)hp->n_expert * (uint64_t)hp->n_embd * sizeof *L->router +
                 (mat_bytes(&L->gate_exps) + mat_bytes(&L->up_exps) + mat_bytes(&L->down_exps)) /
                     (uint64_t)hp->n_expert * (uint64_t)hp->n_expert_used;
        else
            b += mat_bytes(&L->ffn_gate) + mat_bytes(&L->ffn_up) + mat_bytes(&L->ffn_down);
    }
    return b;
}

int lfm_model_threads(const lfm_model *m) {
    return m ? m->opts.n_threads : 0;
}
