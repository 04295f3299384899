/* test_model: model loading (every validation error names its key or
 * tensor), sequence state and the contracts of lfm_eval: rows independent of
 * their batch (bitwise), prefill == decode (bitwise), threads do not change
 * bits, context overflow leaves state untouched, zero-block models, and a
 * 1,000-token prompt through a 350M-width quantized model under ASan;
 * lfm2moe: its keys and tensors validated, routing semantics, and a decode
 * step reading only the chosen experts.
 * Numerical agreement with the reference lives in test_fixtures.c. */
/* tg-test-links: lfm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "tools/synth/gguf_write.h"
#include "engine/lfm.h"
#include "engine/model.h"
#include "tools/synth/synth.h"
#include "engine/threadpool.h"

#define FX_MODEL(name) TG_FIXTURES "/models/" name

static char g_tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/tg_test_model_XXXXXX");
    return mkdtemp(g_tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static lfm_model *load(const char *path, int kernels, int kv, int threads) {
    lfm_model_opts o;
    lfm_model_opts_default(&o);
    o.kernels = kernels;
    o.kv_type = kv;
    o.n_threads = threads;
    lfm_model *m = NULL;
    char err[512];
    int rc = lfm_model_load(path, &o, &m, err, sizeof err);
    if (rc) fprintf(stderr, "load %s: %s\n", path, err);
    assert_int_equal(rc, 0);
    return m;
}

/* Runs toks through a fresh sequence in batches of `step` rows and returns
 * the logits of every row ((n, V), malloc'd). */
static float *run_steps(lfm_model *m, const int32_t *toks, int n, int step) {
    int V = lfm_model_hparams(m)->n_vocab;
    float *lg = malloc((size_t)n * V * sizeof *lg);
    lfm_seq *s = lfm_seq_new(m, 256);
    assert_non_null(s);
    lfm_seq *seqs[64];
    uint8_t want[64];
    for (int i = 0; i < 64; i++)
        seqs[i] = s, want[i] = 1;
    for (int i = 0; i < n; i += step) {
        int c = n - i < step ? n - i : step;
        assert_int_equal(lfm_eval(m, c, toks + i, seqs, want, lg + (size_t)i * V, NULL, 0), 0);
    }
    assert_int_equal(lfm_seq_pos(s), n);
    lfm_seq_free(s);
    return lg;
}

static const int32_t k_toks[20] = {1,   86,  115, 656, 125, 291, 273, 579, 712, 634,
                                   478, 195, 195, 726, 412, 100, 663, 663, 702, 5};

/* ------------------------------------------------------- threadpool -- */

typedef struct {
    int n_seen;
    int hits[8];
    int bad;
} tp_probe;

static void tp_probe_fn(void *ctx, int i, int n) {
    tp_probe *p = ctx;
    if (n != p->n_seen || i < 0 || i >= n)
        p->bad = 1;
    else
        __atomic_fetch_add(&p->hits[i], 1, __ATOMIC_RELAXED);
}

/* Every index runs exactly once per tp_run, with the pool's size as n. */
static void test_threadpool(void **state) {
    (void)state;
    for (int n = 1; n <= 4; n++) {
        tp_pool *p = tp_new(n);
        assert_non_null(p);
        assert_int_equal(tp_size(p), n);
        tp_probe pr = {.n_seen = n};
        for (int r = 0; r < 200; r++)
            tp_run(p, tp_probe_fn, &pr);
        assert_int_equal(pr.bad, 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(pr.hits[i], 200);
        tp_free(p);
    }
}

/* ---------------------------------------------------------- hparams -- */

static void test_hparams(void **state) {
    (void)state;
    lfm_model *m = load(FX_MODEL("lfm2-tiny-q4_k_m.gguf"), 0, 0, 1);
    const lfm_hparams *hp = lfm_model_hparams(m);
    assert_string_equal(hp->arch, "lfm2");
    assert_int_equal(hp->n_layer, 6);
    assert_int_equal(hp->n_embd, 256);
    assert_int_equal(hp->n_ff, 512);
    assert_int_equal(hp->n_head, 4);
    assert_int_equal(hp->head_dim, 64);
    assert_int_equal(hp->n_vocab, 1024);
    assert_int_equal(hp->conv_l_cache, 3);
    assert_int_equal(hp->n_ctx_train, 4096);
    int kv[6] = {0, 0, 2, 0, 2, 0};
    for (int l = 0; l < 6; l++)
        assert_int_equal(hp->n_head_kv[l], kv[l]);
    assert_true(hp->tied_output);
    assert_true(fabsf(hp->rope_theta - 1e6f) < 1);
    assert_true(fabsf(hp->rms_eps - 1e-5f) < 1e-9f);
    assert_non_null(lfm_model_tokenizer(m));
    assert_non_null(lfm_model_chat_template(m));
    assert_true(lfm_model_weight_bytes(m) > 1000000 && lfm_model_weight_bytes(m) < 4000000);
    /* State: 2 attention blocks x K,V x n_ctx x (2 heads x 64) floats, plus
     * 4 conv blocks x 2 past u's x 256 floats. */
    uint64_t b = lfm_seq_state_bytes(m, 100), b2 = lfm_seq_state_bytes(m, 200);
    assert_int_equal(b2 - b, 2 * 2 * 100 * 128 * 4);
    assert_true(b >= 2 * 2 * 100 * 128 * 4 + 4 * 2 * 256 * 4);
    lfm_model_free(m);

    m = load(FX_MODEL("lfm2-tiny-untied-f32.gguf"), 0, LFM_KV_F16, 1);
    hp = lfm_model_hparams(m);
    assert_false(hp->tied_output);
    assert_int_equal(hp->n_layer, 4);
    assert_int_equal(hp->n_vocab, 768);
    assert_int_equal(hp->n_head_kv[1], 1);
    assert_true(fabsf(hp->rope_theta - 1e4f) < 1e-3f);
    b = lfm_seq_state_bytes(m, 100), b2 = lfm_seq_state_bytes(m, 200);
    assert_int_equal(b2 - b, 2 * 2 * 100 * 64 * 2); /* f16 KV: 2 bytes */
    lfm_model_free(m);
}

/* ------------------------------------------------- loader validation -- */

typedef struct {
    const char *drop_kv;     /* key left out */
    const char *arch;        /* replaces general.architecture */
    const char *drop_tensor; /* tensor left out */
    const char *swap_tensor; /* tensor written with dims[0] and dims[1] swapped */
    int kv_short;            /* head_count_kv array written one entry short */
    const char *set_key;     /* integer key written with set_val instead */
    int64_t set_val;
    const char *src; /* fixture to mutate (default lfm2-tiny-q4_0.gguf) */
} mutation;

static void copy_kv(gguf_writer *w, const gguf_kv *kv, const mutation *mu) {
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
    if (mu->drop_kv && !strcmp(key, mu->drop_kv)) return;
    if (mu->set_key && !strcmp(key, mu->set_key)) {
        gguf_w_add_i64(w, key, mu->set_val);
        return;
    }
    if (mu->arch && !strcmp(key, "general.architecture")) {
        gguf_w_add_str(w, key, mu->arch);
        return;
    }
    switch (kv->type) {
    case GGUF_T_UINT8:
    case GGUF_T_UINT16:
    case GGUF_T_UINT32:
    case GGUF_T_UINT64: gguf_w_add_u64(w, key, kv->v.u); break;
    case GGUF_T_INT8:
    case GGUF_T_INT16:
    case GGUF_T_INT32:
    case GGUF_T_INT64: gguf_w_add_i64(w, key, kv->v.i); break;
    case GGUF_T_FLOAT32: gguf_w_add_f32(w, key, (float)kv->v.f); break;
    case GGUF_T_FLOAT64: gguf_w_add_f64(w, key, kv->v.f); break;
    case GGUF_T_BOOL: gguf_w_add_bool(w, key, kv->v.b); break;
    case GGUF_T_STRING: gguf_w_add_strn(w, key, kv->v.s.ptr, kv->v.s.len); break;
    case GGUF_T_ARRAY: {
        uint64_t n = kv->arr_n;
        if (mu->kv_short && strstr(key, ".attention.head_count_kv")) n--;
        if (kv->arr_type == GGUF_T_STRING)
            gguf_w_add_strn_arr(w, key, kv->arr_strs, n);
        else
            gguf_w_add_arr(w, key, kv->arr_type, kv->arr_data, n);
        break;
    }
    default: fail_msg("unexpected kv type %d", kv->type);
    }
}

/* Writes a mutated copy of a fixture and returns lfm_model_load's result. */
static int load_mutant(const char *src, const mutation *mu, char *err, size_t errlen) {
    gguf_file *f = NULL;
    char e[256];
    assert_int_equal(gguf_open(src, &f, e, sizeof e), 0);
    gguf_writer *w = gguf_w_new();
    for (size_t i = 0; i < gguf_kv_count(f); i++)
        copy_kv(w, gguf_kv_at(f, i), mu);
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (mu->drop_tensor && !strcmp(name, mu->drop_tensor)) continue;
        uint64_t dims[4] = {t->dims[0], t->dims[1], t->dims[2], t->dims[3]};
        if (mu->swap_tensor && !strcmp(name, mu->swap_tensor)) {
            dims[0] = t->dims[1];
            dims[1] = t->dims[0];
        }
        assert_true(gguf_w_add_tensor(w, name, t->n_dims, dims, t->type, t->data, t->nbytes) >= 0);
    }
    char path[400];
    snprintf(path, sizeof path, "%s/mutant.gguf", g_tmpdir);
    assert_int_equal(gguf_w_write_file(w, path, e, sizeof e), 0);
    gguf_w_free(w);
    gguf_close(f);
    lfm_model *m = NULL;
    int rc = lfm_model_load(path, NULL, &m, err, errlen);
    lfm_model_free(m);
    if (rc == 0)
        assert_non_null(m);
    else
        assert_null(m);
    unlink(path);
    return rc;
}

static void expect_load_error(const mutation *mu, const char *needle) {
    char err[512] = "";
    int rc = load_mutant(mu->src ? mu->src : FX_MODEL("lfm2-tiny-q4_0.gguf"), mu, err, sizeof err);
    assert_int_equal(rc, LFM_EFORMAT);
    if (!strstr(err, needle)) fail_msg("error '%s' lacks '%s'", err, needle);
    assert_null(strchr(err, '\n'));
}

static void test_load_errors(void **state) {
    (void)state;
    char err[512];
    lfm_model *m = (lfm_model *)1;
    assert_int_equal(lfm_model_load("/nonexistent/x.gguf", NULL, &m, err, sizeof err), LFM_EIO);
    assert_null(m);
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));

    /* The unmodified copy loads: the mutations below are what fails. */
    mutation none = {0};
    assert_int_equal(load_mutant(FX_MODEL("lfm2-tiny-q4_0.gguf"), &none, err, sizeof err), 0);

    mutation arch = {.arch = "llama"};
    expect_load_error(&arch, "not an LFM2 model (general.architecture = llama)");
    mutation nokey = {.drop_kv = "lfm2.embedding_length"};
    expect_load_error(&nokey, "missing key lfm2.embedding_length");
    mutation noctx = {.drop_kv = "lfm2.context_length"};
    expect_load_error(&noctx, "lfm2.context_length");
    mutation kvshort = {.kv_short = 1};
    expect_load_error(&kvshort, "lfm2.attention.head_count_kv");
    mutation noq = {.drop_tensor = "blk.2.attn_q.weight"};
    expect_load_error(&noq, "missing tensor blk.2.attn_q.weight");
    mutation nonorm = {.drop_tensor = "token_embd_norm.weight"};
    expect_load_error(&nonorm, "missing tensor token_embd_norm.weight");
    mutation swap = {.swap_tensor = "blk.3.ffn_up.weight"};
    expect_load_error(&swap, "tensor blk.3.ffn_up.weight: dims [512, 256], expected [256, 512]");

    /* vocab_size missing: taken from the token list. */
    mutation novocab = {.drop_kv = "lfm2.vocab_size"};
    assert_int_equal(load_mutant(FX_MODEL("lfm2-tiny-q4_0.gguf"), &novocab, err, sizeof err), 0);
}

/* ------------------------------------------------------------ lfm2moe -- */

#define MOE_Q4 FX_MODEL("lfm2-tiny-moe-q4_0.gguf")

static void test_moe_hparams_and_errors(void **state) {
    (void)state;
    lfm_model *m = load(FX_MODEL("lfm2-tiny-moe-q4_k_m.gguf"), 0, 0, 1);
    const lfm_hparams *hp = lfm_model_hparams(m);
    assert_string_equal(hp->arch, "lfm2moe");
    assert_int_equal(hp->n_layer, 6);
    assert_int_equal(hp->n_expert, 8);
    assert_int_equal(hp->n_expert_used, 2);
    assert_int_equal(hp->n_ff_exp, 256);
    assert_int_equal(hp->n_dense_lead, 2);
    assert_int_equal(hp->n_ff, 512);
    lfm_model_free(m);
    m = load(FX_MODEL("lfm2-tiny-q4_0.gguf"), 0, 0, 1);
    assert_int_equal(lfm_model_hparams(m)->n_expert, 0);
    lfm_model_free(m);

    char err[512];
    mutation none = {.src = MOE_Q4};
    assert_int_equal(load_mutant(MOE_Q4, &none, err, sizeof err), 0);
    /* The selection bias may be absent (then it is 0). */
    mutation nobias = {.src = MOE_Q4, .drop_tensor = "blk.4.exp_probs_b.bias"};
    assert_int_equal(load_mutant(MOE_Q4, &nobias, err, sizeof err), 0);

    mutation gating = {.src = MOE_Q4, .set_key = "lfm2moe.expert_gating_func", .set_val = 1};
    expect_load_error(&gating, "key lfm2moe.expert_gating_func = 1: only 2 (sigmoid) is supported");
    mutation used = {.src = MOE_Q4, .set_key = "lfm2moe.expert_used_count", .set_val = 9};
    expect_load_error(&used, "key lfm2moe.expert_used_count = 9 is out of range [1, 8]");
    mutation lead = {.src = MOE_Q4, .set_key = "lfm2moe.leading_dense_block_count", .set_val = 7};
    expect_load_error(&lead, "key lfm2moe.leading_dense_block_count = 7 is out of range [0, 6]");
    mutation nx = {.src = MOE_Q4, .drop_kv = "lfm2moe.expert_count"};
    expect_load_error(&nx, "missing key lfm2moe.expert_count");
    mutation nff = {.src = MOE_Q4, .drop_kv = "lfm2moe.expert_feed_forward_length"};
    expect_load_error(&nff, "missing key lfm2moe.expert_feed_forward_length");
    mutation width = {
        .src = MOE_Q4, .set_key = "lfm2moe.expert_feed_forward_length", .set_val = 128};
    expect_load_error(
        &width, "tensor blk.2.ffn_gate_exps.weight: dims [256, 256, 8], expected [256, 128, 8]");
    mutation count = {.src = MOE_Q4, .set_key = "lfm2moe.expert_count", .set_val = 4};
    expect_load_error(&count, "tensor blk.2.ffn_gate_inp.weight: dims [256, 8], expected [256, 4]");
    mutation noup = {.src = MOE_Q4, .drop_tensor = "blk.5.ffn_up_exps.weight"};
    expect_load_error(&noup, "missing tensor blk.5.ffn_up_exps.weight");
    mutation norouter = {.src = MOE_Q4, .drop_tensor = "blk.3.ffn_gate_inp.weight"};
    expect_load_error(&norouter, "missing tensor blk.3.ffn_gate_inp.weight");
    /* Leading dense blocks: one fewer makes block 1 a MoE block it is not. */
    mutation lead1 = {.src = MOE_Q4, .set_key = "lfm2moe.leading_dense_block_count", .set_val = 1};
    expect_load_error(&lead1, "missing tensor blk.1.ffn_gate_inp.weight");
    /* A dense file relabelled lfm2moe misses its lfm2moe.* keys. */
    mutation relabel = {.arch = "lfm2moe"};
    expect_load_error(&relabel, "missing key lfm2moe.block_count");
}

/* Routing: top-k by p + bias, weights = unbiased p normalised over the chosen. */
static void test_moe_route(void **state) {
    (void)state;
    enum { X = 4, E = 2 };
    /* Router rows give logits 2, 1, 0, -1 for h = (1, 0). */
    float router[X * E] = {2, 0, 1, 0, 0, 0, -1, 0}, bias[X] = {0, 0, 0, 0};
    lfm_layer L;
    memset(&L, 0, sizeof L);
    L.router = router;
    L.exp_bias = bias;
    const float h[E] = {1, 0};
    int sel[2];
    double w[2];
    lfm_moe_route(&L, X, 2, E, h, sel, w);
    assert_int_equal(sel[0], 0);
    assert_int_equal(sel[1], 1);
    double p0 = 1 / (1 + exp(-2.0)), p1 = 1 / (1 + exp(-1.0)), p3 = 1 / (1 + exp(1.0));
    assert_true(fabs(w[0] - p0 / (p0 + p1)) < 1e-12);
    assert_true(fabs(w[1] - p1 / (p0 + p1)) < 1e-12);
    /* A bias on expert 3 makes it chosen over 1, but its weight stays its own p. */
    bias[3] = 0.5f;
    lfm_moe_route(&L, X, 2, E, h, sel, w);
    assert_int_equal(sel[0], 0);
    assert_int_equal(sel[1], 3);
    assert_true(fabs(w[0] - p0 / (p0 + p3)) < 1e-12);
    assert_true(fabs(w[1] - p3 / (p0 + p3)) < 1e-12);
    /* k = 1: weight 1. */
    lfm_moe_route(&L, X, 1, E, h, sel, w);
    assert_int_equal(sel[0], 0);
    assert_true(fabs(w[0] - 1.0) < 1e-15);
}

/* A decode step reads exactly k experts' rows per MoE block; a prefill batch
 * reads each chosen expert once, not once per row. */
static void test_moe_reads_chosen_experts(void **state) {
    (void)state;
    lfm_model *m = load(FX_MODEL("lfm2-tiny-moe-q8_0.gguf"), 0, 0, 1);
    const lfm_hparams *hp = lfm_model_hparams(m);
    /* Q8_0: 34 bytes per 32 values; gate, up (Fx x E) and down (E x Fx). */
    uint64_t per_expert = 3ull * hp->n_ff_exp * (hp->n_embd / 32 * 34);
    int n_moe = hp->n_layer - hp->n_dense_lead;
    lfm_seq *s = lfm_seq_new(m, 64);
    float *lg = malloc((size_t)hp->n_vocab * sizeof *lg);
    for (int i = 0; i < 3; i++) {
        m->moe_bytes_read = 0;
        uint64_t r0 = lfm_model_weight_reads(m);
        assert_int_equal(lfm_eval(m, 1, k_toks + i, &s, NULL, lg, NULL, 0), 0);
        assert_int_equal(m->moe_bytes_read, (uint64_t)n_moe * hp->n_expert_used * per_expert);
        /* Everything the kernels were handed in one decode step is exactly
         * the active weights: no whole expert stack, no second matrix read. */
        assert_int_equal(lfm_model_weight_reads(m) - r0, lfm_model_active_bytes(m));
    }
    /* Each expert a step chose was asked of the page cache once, no other. */
    int paged = 0;
    for (int i = 0; i < hp->n_layer * hp->n_expert; i++)
        paged += m->moe_paged[i];
    assert_true(paged >= n_moe * hp->n_expert_used && paged <= 3 * n_moe * hp->n_expert_used);
    /* Active bytes leave out exactly the unused experts, plus the small f32
     * tensors kept as owned copies (norms, routers, biases, conv taps, a few
     * KB here) and all embedding rows but one. */
    uint64_t unused = (uint64_t)n_moe * (hp->n_expert - hp->n_expert_used) * per_expert;
    uint64_t wb = lfm_model_weight_bytes(m), ab = lfm_model_active_bytes(m);
    assert_true(wb - ab >= unused);
    assert_true(wb - ab - unused < 64 * 1024);
    /* 17 rows: at most every expert once per block, far below 17 * k reads. */
    m->moe_bytes_read = 0;
    lfm_seq **seqs = malloc(17 * sizeof *seqs);
    for (int i = 0; i < 17; i++)
        seqs[i] = s;
    assert_int_equal(lfm_eval(m, 17, k_toks + 3, seqs, NULL, lg, NULL, 0), 0);
    assert_true(m->moe_bytes_read <= (uint64_t)n_moe * hp->n_expert * per_expert);
    assert_true(m->moe_bytes_read >= (uint64_t)n_moe * hp->n_expert_used * per_expert);
    free(seqs);
    free(lg);
    lfm_seq_free(s);
    lfm_model_free(m);
}

/* LFM2.5 (by its template) gets its model card's sampling defaults. */
static void test_lfm25_defaults(void **state) {
    (void)state;
    synth_opts o;
    synth_opts_default(&o);
    o.lfm25 = true;
    o.script = "<think>hm</think>ok";
    o.script_len = strlen(o.script);
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/lfm25.gguf", g_tmpdir);
    assert_int_equal(synth_write(&o, path, err, sizeof err), 0);
    lfm_model *m = load(path, 0, 0, 1);
    assert_true(lfm_model_is_lfm25(m));
    assert_int_equal(lfm_chat_template_kind(lfm_model_chat_template(m)), LFM_TEMPLATE_LFM25);
    lfm_sampler_params p;
    lfm_sampler_defaults_for(m, &p);
    assert_true(fabsf(p.temperature - 0.1f) < 1e-6f);
    assert_int_equal(p.top_k, 50);
    assert_true(fabsf(p.top_p - 0.1f) < 1e-6f);
    assert_true(p.min_p == 0.0f);
    assert_true(fabsf(p.repeat_penalty - 1.05f) < 1e-6f);
    lfm_model_free(m);
    m = load(FX_MODEL("lfm2-tiny-q4_0.gguf"), 0, 0, 1);
    assert_false(lfm_model_is_lfm25(m));
    lfm_sampler_defaults_for(m, &p);
    assert_true(fabsf(p.temperature - 0.3f) < 1e-6f);
    assert_true(fabsf(p.min_p - 0.15f) < 1e-6f);
    assert_int_equal(p.top_k, 0);
    lfm_model_free(m);
}

/* ------------------------------------------------------ eval contract -- */

/* Prefill in one batch, in chunks, and token by token: identical bits. */
static void test_prefill_equals_decode(void **state) {
    (void)state;
    const char *models[] = {FX_MODEL("lfm2-tiny-q4_k_m.gguf"),
                            FX_MODEL("lfm2-tiny-untied-f32.gguf"),
                            FX_MODEL("lfm2-tiny-moe-q4_k_m.gguf")};
    for (int k = 0; k < 3; k++) {
        lfm_model *m = load(models[k], LFM_KERNELS_AUTO, LFM_KV_F32, 2);
        int V = lfm_model_hparams(m)->n_vocab;
        float *a = run_steps(m, k_toks, 20, 20);
        float *b = run_steps(m, k_toks, 20, 1);
        float *c = run_steps(m, k_toks, 20, 7);
        assert_memory_equal(a, b, 20 * (size_t)V * sizeof *a);
        assert_memory_equal(a, c, 20 * (size_t)V * sizeof *a);
        free(a);
        free(b);
        free(c);
        lfm_model_free(m);
    }
}

/* Interleaving two sequences in one batch changes no bit of either. */
static void batch_independence(const char *model) {
    lfm_model *m = load(model, LFM_KERNELS_AUTO, LFM_KV_F16, 2);
    int V = lfm_model_hparams(m)->n_vocab;
    const int32_t *ta = k_toks, *tb = k_toks + 10; /* two different 10-token prompts */
    lfm_seq *sa = lfm_seq_new(m, 64), *sb = lfm_seq_new(m, 64), *s1 = lfm_seq_new(m, 64);
    float *alone = malloc(10 * (size_t)V * sizeof *alone);
    float *mixed = malloc(20 * (size_t)V * sizeof *mixed);
    lfm_seq *seqs[20];
    int32_t toks[20];
    uint8_t want[20];
    /* Alone: A's 10 tokens in one batch, all rows wanted. */
    for (int i = 0; i < 10; i++)
        seqs[i] = s1, want[i] = 1;
    assert_int_equal(lfm_eval(m, 10, ta, seqs, want, alone, NULL, 0), 0);
    /* Mixed: A and B interleaved, rows of A wanted only. */
    for (int i = 0; i < 10; i++) {
        toks[2 * i] = ta[i], seqs[2 * i] = sa, want[2 * i] = 1;
        toks[2 * i + 1] = tb[i], seqs[2 * i + 1] = sb, want[2 * i + 1] = 0;
    }
    assert_int_equal(lfm_eval(m, 20, toks, seqs, want, mixed, NULL, 0), 0);
    assert_memory_equal(alone, mixed, 10 * (size_t)V * sizeof *alone);
    assert_int_equal(lfm_seq_pos(sa), 10);
    assert_int_equal(lfm_seq_pos(sb), 10);
    /* One decode step for both sequences at once vs A alone. */
    int32_t next[2] = {7, 9};
    lfm_seq *pair[2] = {sa, sb};
    assert_int_equal(lfm_eval(m, 2, next, pair, NULL, mixed, NULL, 0), 0); /* last row only: B */
    float *b_row = malloc((size_t)V * sizeof *b_row);
    memcpy(b_row, mixed, (size_t)V * sizeof *b_row);
    uint8_t w2[2] = {1, 1};
    lfm_seq_reset(sa);
    lfm_seq_reset(sb);
    lfm_seq_reset(s1);
    /* After reset the same work gives the same bits. */
    for (int i = 0; i < 10; i++)
        seqs[i] = s1;
    assert_int_equal(lfm_eval(m, 10, ta, seqs, NULL, mixed, NULL, 0), 0);
    assert_memory_equal(alone + 9 * (size_t)V, mixed, (size_t)V * sizeof *mixed);
    for (int i = 0; i < 10; i++)
        seqs[i] = sb;
    assert_int_equal(lfm_eval(m, 10, tb, seqs, NULL, mixed, NULL, 0), 0);
    for (int i = 0; i < 10; i++)
        seqs[i] = sa;
    assert_int_equal(lfm_eval(m, 10, ta, seqs, NULL, mixed, NULL, 0), 0);
    assert_int_equal(lfm_eval(m, 2, next, pair, w2, mixed, NULL, 0), 0);
    assert_memory_equal(b_row, mixed + V, (size_t)V * sizeof *mixed);
    free(b_row);
    free(alone);
    free(mixed);
    lfm_seq_free(sa);
    lfm_seq_free(sb);
    lfm_seq_free(s1);
    lfm_model_free(m);
}

/* Dense, and MoE (rows of both sequences share expert batches). */
static void test_batch_independence(void **state) {
    (void)state;
    batch_independence(FX_MODEL("lfm2-tiny-q4_k_m.gguf"));
    batch_independence(FX_MODEL("lfm2-tiny-moe-q4_k_m.gguf"));
}

/* 1, 2 and 3 threads, scalar and auto: the same bits per kernel set. */
static void test_threads_deterministic(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        float *ref = NULL;
        for (int t = 1; t <= 3; t++) {
            lfm_model *m = load(FX_MODEL("lfm2-tiny-q6_k.gguf"), k, LFM_KV_F32, t);
            float *lg = run_steps(m, k_toks, 12, 12);
            if (!ref)
                ref = lg;
            else {
                assert_memory_equal(ref, lg, 12 * 1024 * sizeof *lg);
                free(lg);
            }
            lfm_model_free(m);
        }
        free(ref);
    }
}

static void test_ctx_and_args(void **state) {
    (void)state;
    lfm_model *m = load(FX_MODEL("lfm2-tiny-f32.gguf"), 0, 0, 1);
    int V = lfm_model_hparams(m)->n_vocab;
    lfm_seq *s = lfm_seq_new(m, 8);
    assert_int_equal(lfm_seq_n_ctx(s), 8);
    lfm_seq *seqs[8];
    for (int i = 0; i < 8; i++)
        seqs[i] = s;
    float *lg = malloc(8 * (size_t)V * sizeof *lg);
    float *ref = run_steps(m, k_toks, 8, 8);
    assert_int_equal(lfm_eval(m, 6, k_toks, seqs, NULL, lg, NULL, 0), 0);
    char err[256] = "";
    assert_int_equal(lfm_eval(m, 3, k_toks + 6, seqs, NULL, lg, err, sizeof err), LFM_ECTX);
    assert_non_null(strstr(err, "context"));
    assert_int_equal(lfm_seq_pos(s), 6); /* untouched */
    int32_t bad = 5000;
    assert_int_equal(lfm_eval(m, 1, &bad, seqs, NULL, lg, err, sizeof err), LFM_EINVAL);
    assert_non_null(strstr(err, "5000"));
    assert_int_equal(lfm_eval(m, 1, k_toks, NULL, NULL, lg, NULL, 0), LFM_EINVAL);
    assert_int_equal(lfm_eval(m, 0, NULL, NULL, NULL, NULL, NULL, 0), 0);
    assert_int_equal(lfm_seq_pos(s), 6);
    /* The failed calls changed nothing: the rest matches an undisturbed run. */
    uint8_t want[2] = {1, 1};
    assert_int_equal(lfm_eval(m, 2, k_toks + 6, seqs, want, lg, NULL, 0), 0);
    assert_memory_equal(lg, ref + 6 * (size_t)V, 2 * (size_t)V * sizeof *lg);
    assert_int_equal(lfm_eval(m, 1, k_toks, seqs, NULL, lg, NULL, 0), LFM_ECTX);
    /* n_ctx above the model's context is capped at it. */
    lfm_seq *big = lfm_seq_new(m, 1 << 30);
    assert_int_equal(lfm_seq_n_ctx(big), 4096);
    lfm_seq_free(big);
    free(ref);
    free(lg);
    lfm_seq_free(s);
    lfm_model_free(m);
}

/* ------------------------------------------------ synthetic models -- */

/* A scripted model has zero blocks and an untied output; greedy from any
 * prompt spells the script. */
static void test_zero_block_model(void **state) {
    (void)state;
    synth_opts o;
    synth_opts_default(&o);
    const char *script = "The tide is turning.";
    o.script = script;
    o.script_len = strlen(script);
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/scripted.gguf", g_tmpdir);
    assert_int_equal(synth_write(&o, path, err, sizeof err), 0);
    lfm_model *m = load(path, 0, 0, 1);
    const lfm_hparams *hp = lfm_model_hparams(m);
    assert_int_equal(hp->n_layer, 0);
    assert_false(hp->tied_output);
    const lfm_tokenizer *tk = lfm_model_tokenizer(m);
    lfm_seq *s = lfm_seq_new(m, 64);
    float *lg = malloc((size_t)hp->n_vocab * sizeof *lg);
    int32_t tok = lfm_token_bos(tk);
    char text[128] = "";
    size_t len = 0;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(lfm_eval(m, 1, &tok, &s, NULL, lg, NULL, 0), 0);
        int best = 0;
        for (int v = 1; v < hp->n_vocab; v++)
            if (lg[v] > lg[best]) best = v;
        tok = best;
        if (lfm_token_is_eog(tk, tok)) break;
        len += lfm_token_bytes(tk, tok, text + len, sizeof text - 1 - len);
        assert_true(len < sizeof text - 1);
    }
    text[len] = 0;
    assert_string_equal(text, script);
    free(lg);
    lfm_seq_free(s);
    lfm_model_free(m);
}

/* 1,000 tokens through a 350M-width model (E 1024, 16 heads, 8 KV heads,
 * 65536 vocab, F 4608: the real preset) cut to one conv and one attention block, in Q4_K_M:
 * crosses chunk boundaries, grows the KV cache, runs every quantized kernel
 * at real widths. The point is ASan/UBSan/LSan silence; the value check is
 * that the logits are finite and not all equal. */
static void test_350m_long_prompt(void **state) {
    (void)state;
    synth_opts o;
    synth_opts_default(&o);
    assert_int_equal(synth_preset("350m", &o), 0);
    o.n_layer = 2;
    o.n_attn = 1;
    o.attn_layers[0] = 1;
    snprintf(o.type, sizeof o.type, "q4_k_m");
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/w350m.gguf", g_tmpdir);
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    assert_int_equal(synth_write(&o, path, err, sizeof err), 0);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    printf("350m-width synth write: %.2f s\n",
           (double)(w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) * 1e-9);
    lfm_model *m = load(path, LFM_KERNELS_AUTO, LFM_KV_F16, 2);
    const lfm_hparams *hp = lfm_model_hparams(m);
    assert_int_equal(hp->n_embd, 1024);
    assert_int_equal(hp->n_head_kv[0], 0);
    assert_int_equal(hp->n_head_kv[1], 8);
    enum { N = 1000 };
    int32_t *toks = malloc(N * sizeof *toks);
    lfm_seq **seqs = malloc(N * sizeof *seqs);
    lfm_seq *s = lfm_seq_new(m, 2048);
    for (int i = 0; i < N; i++) {
        toks[i] = (int32_t)((i * 7919u + 13) % (unsigned)hp->n_vocab);
        seqs[i] = s;
    }
    float *lg = malloc((size_t)hp->n_vocab * sizeof *lg);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(lfm_eval(m, N, toks, seqs, NULL, lg, err, sizeof err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("350m-width, 2 blocks, q4_k_m: %d-token prefill in %.2f s\n", N,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    assert_int_equal(lfm_seq_pos(s), N);
    float lo = lg[0], hi = lg[0];
    for (int v = 0; v < hp->n_vocab; v++) {
        assert_true(isfinite(lg[v]));
        lo = fminf(lo, lg[v]);
        hi = fmaxf(hi, lg[v]);
    }
    assert_true(hi > lo);
    free(lg);
    free(toks);
    free(seqs);
    lfm_seq_free(s);
    lfm_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threadpool),         cmocka_unit_test(test_hparams),
        cmocka_unit_test(test_load_errors),        cmocka_unit_test(test_prefill_equals_decode),
        cmocka_unit_test(test_batch_independence), cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_ctx_and_args),       cmocka_unit_test(test_zero_block_model),
        cmocka_unit_test(test_350m_long_prompt),   cmocka_unit_test(test_moe_hparams_and_errors),
        cmocka_unit_test(test_moe_route),          cmocka_unit_test(test_moe_reads_chosen_experts),
        cmocka_unit_test(test_lfm25_defaults),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
