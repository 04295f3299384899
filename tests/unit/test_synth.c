/* tg-test-links: lfm */
/* synth-model: random models match the fixtures' key set and the published
 * mixes, vocabularies are consistent BPE, output is deterministic per seed,
 * and scripted models really generate their script through the engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tg_buf.h"
#include "engine/gguf.h"
#include "engine/lfm.h"
#include "engine/quant.h"
#include "tools/synth/synth.h"

static gguf_file *open_buf(const tg_buf *b) {
    gguf_file *f;
    char err[512];
    if (gguf_open_mem(b->data, b->len, &f, err, sizeof err)) fail_msg("%s", err);
    return f;
}

static uint32_t ttype(const gguf_file *f, const char *name) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) fail_msg("missing tensor %s", name);
    return t->type;
}

static bool streq(gguf_str s, const char *c) {
    return s.len == strlen(c) && !memcmp(s.ptr, c, s.len);
}

/* Same keys, same order, same types as the fixture of the same mix. */
static void same_keys_as(const gguf_file *f, const char *fixture) {
    gguf_file *g;
    char err[512];
    if (gguf_open(fixture, &g, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(gguf_kv_count(f), gguf_kv_count(g));
    for (size_t i = 0; i < gguf_kv_count(g); i++) {
        const gguf_kv *a = gguf_kv_at(f, i), *b = gguf_kv_at(g, i);
        if (a->key.len != b->key.len || memcmp(a->key.ptr, b->key.ptr, a->key.len))
            fail_msg("key %zu: %.*s vs fixture %.*s", i, (int)a->key.len, a->key.ptr,
                     (int)b->key.len, b->key.ptr);
        assert_int_equal(a->type, b->type);
        if (a->type == GGUF_T_ARRAY) assert_int_equal(a->arr_type, b->arr_type);
    }
    assert_int_equal(gguf_tensor_count(f), gguf_tensor_count(g));
    for (size_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *b = gguf_tensor_at(g, i);
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)b->name.len, b->name.ptr);
        const gguf_tensor *a = gguf_find_tensor(f, name);
        if (!a) fail_msg("synth lacks %s", name);
        assert_int_equal(a->n_dims, b->n_dims);
        assert_memory_equal(a->dims, b->dims, sizeof a->dims);
        if (a->type != b->type)
            fail_msg("%s: %s vs fixture %s", name, lq_type_name(a->type), lq_type_name(b->type));
    }
    gguf_close(g);
}

static void test_tiny_mixes_match_fixtures(void **st) {
    (void)st;
    static const char *types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        synth_opts o;
        synth_opts_default(&o);
        snprintf(o.type, sizeof o.type, "%s", types[k]);
        tg_buf b = TG_BUF_INIT;
        char err[512];
        if (synth_write_buf(&o, &b, err, sizeof err)) fail_msg("%s", err);
        gguf_file *f = open_buf(&b);
        char fx[512];
        snprintf(fx, sizeof fx, TG_FIXTURES "/models/lfm2-tiny-%s.gguf", types[k]);
        same_keys_as(f, fx);
        gguf_close(f);
        tg_buf_free(&b);
    }
    /* Untied Q4_0: output head Q6_K, token_embd Q4_0 (as the fixture). */
    synth_opts o;
    synth_opts_default(&o);
    o.untied = true;
    snprintf(o.type, sizeof o.type, "q4_0");
    tg_buf b = TG_BUF_INIT;
    assert_int_equal(synth_write_buf(&o, &b, NULL, 0), 0);
    gguf_file *f = open_buf(&b);
    assert_int_equal(ttype(f, "output.weight"), LQ_Q6_K);
    assert_int_equal(ttype(f, "token_embd.weight"), LQ_Q4_0);
    gguf_close(f);
    tg_buf_free(&b);
}

static void test_metadata_and_vocab(void **st) {
    (void)st;
    synth_opts o;
    synth_opts_default(&o);
    snprintf(o.type, sizeof o.type, "q4_k_m");
    tg_buf b = TG_BUF_INIT;
    assert_int_equal(synth_write_buf(&o, &b, NULL, 0), 0);
    gguf_file *f = open_buf(&b);
    uint64_t u;
    gguf_str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s, NULL, 0), 0);
    assert_true(streq(s, "lfm2"));
    assert_int_equal(gguf_get_u64(f, "lfm2.block_count", &u, NULL, 0), 0);
    assert_int_equal(u, 6);
    const gguf_kv *hkv = gguf_find_kv(f, "lfm2.attention.head_count_kv");
    int64_t want[] = {0, 0, 2, 0, 2, 0}, v;
    for (int l = 0; l < 6; l++) {
        assert_int_equal(gguf_arr_get_i64(hkv, (uint64_t)l, &v), 0);
        assert_int_equal(v, want[l]);
    }
    assert_int_equal(gguf_get_u64(f, "general.file_type", &u, NULL, 0), 0);
    assert_int_equal(u, 15);
    assert_int_equal(gguf_get_u64(f, "tokenizer.ggml.eos_token_id", &u, NULL, 0), 0);
    assert_int_equal(u, 7);
    assert_int_equal(gguf_get_str(f, "tokenizer.chat_template", &s, NULL, 0), 0);
    assert_true(memmem(s.ptr, s.len, "<|tool_list_start|>", 19) != NULL);

    /* Vocabulary: unique texts, specials typed 3, every merge's parts and
     * result in the vocabulary. */
    const gguf_kv *toks = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    const gguf_kv *merges = gguf_find_kv(f, "tokenizer.ggml.merges");
    assert_int_equal(toks->arr_n, 1024);
    assert_true(merges->arr_n > 500);
    assert_true(streq(toks->arr_strs[6], "<|im_start|>"));
    assert_true(streq(toks->arr_strs[10], "<|tool_call_start|>"));
    assert_true(streq(toks->arr_strs[14], "\xC4\x80")); /* byte 0 -> U+0100 */
    assert_true(streq(toks->arr_strs[14 + 'a'], "a"));
    for (uint64_t i = 0; i < toks->arr_n; i++) {
        assert_int_equal(gguf_arr_get_i64(types, i, &v), 0);
        assert_int_equal(v, i < 14 ? 3 : 1);
    }
    tg_buf all = TG_BUF_INIT; /* "\n"-joined texts for substring lookups */
    for (uint64_t i = 0; i < toks->arr_n; i++) {
        tg_buf_putc(&all, '\n');
        tg_buf_append(&all, toks->arr_strs[i].ptr, (size_t)toks->arr_strs[i].len);
    }
    tg_buf_putc(&all, '\n');
    for (uint64_t i = 0; i < toks->arr_n; i++) {
        char key[80];
        int n = snprintf(key, sizeof key, "\n%.*s\n", (int)toks->arr_strs[i].len,
                         toks->arr_strs[i].ptr);
        const char *first = memmem(all.data, all.len, key, (size_t)n);
        assert_non_null(first);
        assert_null(memmem(first + 1, all.len - (size_t)(first + 1 - all.data), key, (size_t)n));
    }
    for (uint64_t i = 0; i < merges->arr_n; i++) {
        gguf_str m = merges->arr_strs[i];
        const char *sp = memchr(m.ptr, ' ', m.len);
        assert_non_null(sp);
        char k1[80], k2[80], k3[80];
        int l = (int)(sp - m.ptr), r = (int)(m.len - (size_t)l - 1);
        int n1 = snprintf(k1, sizeof k1, "\n%.*s\n", l, m.ptr);
        int n2 = snprintf(k2, sizeof k2, "\n%.*s\n", r, sp + 1);
        int n3 = snprintf(k3, sizeof k3, "\n%.*s%.*s\n", l, m.ptr, r, sp + 1);
        assert_non_null(memmem(all.data, all.len, k1, (size_t)n1));
        assert_non_null(memmem(all.data, all.len, k2, (size_t)n2));
        assert_non_null(memmem(all.data, all.len, k3, (size_t)n3));
    }
    tg_buf_free(&all);

    /* Weights: matrices ~N(0, 0.02), norms near 1. */
    const gguf_tensor *up = gguf_find_tensor(f, "blk.0.ffn_up.weight");
    float row[256];
    double ss = 0, sum = 0;
    for (int r = 0; r < 64; r++) {
        lq_dequant_row((lq_type)up->type,
                       (const uint8_t *)up->data + (size_t)r * lq_row_bytes((lq_type)up->type, 256),
                       row, 256);
        for (int i = 0; i < 256; i++) {
            ss += (double)row[i] * row[i];
            sum += row[i];
        }
    }
    double sd = sqrt(ss / (64 * 256));
    assert_true(sd > 0.015 && sd < 0.025);
    assert_true(fabs(sum / (64 * 256)) < 0.002);
    const float *norm = gguf_find_tensor(f, "blk.0.attn_norm.weight")->data;
    for (int i = 0; i < 256; i++)
        assert_true(norm[i] > 0.8f && norm[i] < 1.2f);
    gguf_close(f);
    tg_buf_free(&b);
}

static void test_deterministic(void **st) {
    (void)st;
    synth_opts o;
    synth_opts_default(&o);
    snprintf(o.type, sizeof o.type, "q8_0");
    synth_truncate(&o, 3);
    tg_buf a = TG_BUF_INIT, b = TG_BUF_INIT, c = TG_BUF_INIT;
    assert_int_equal(synth_write_buf(&o, &a, NULL, 0), 0);
    assert_int_equal(synth_write_buf(&o, &b, NULL, 0), 0);
    o.seed = 2;
    assert_int_equal(synth_write_buf(&o, &c, NULL, 0), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(a.len, c.len);
    gguf_file *f = open_buf(&a);
    size_t hdr = (size_t)gguf_data_offset(f);
    assert_int_equal(gguf_tensor_count(f), 2 + 8 + 8 + 11); /* embd+norm, conv, conv, attn */
    gguf_close(f);
    assert_memory_equal(a.data, c.data, hdr);                         /* same metadata and vocab */
    assert_memory_not_equal(a.data + hdr, c.data + hdr, a.len - hdr); /* other weights */
    tg_buf_free(&a);
    tg_buf_free(&b);
    tg_buf_free(&c);
}

static void test_presets_and_errors(void **st) {
    (void)st;
    synth_opts o;
    synth_opts_default(&o);
    assert_int_equal(synth_preset("2.6b", &o), 0);
    assert_int_equal(o.n_layer, 30);
    assert_int_equal(o.n_ff, 10752);
    assert_int_equal(o.n_attn, 8);
    assert_int_equal(o.attn_layers[7], 27);
    assert_int_equal(synth_preset("9b", &o), -1);
    assert_true(synth_type_known("Q4_K_M"));
    assert_false(synth_type_known("q3_k"));

    /* The real 350M shape, cut to one block to stay small. */
    assert_int_equal(synth_preset("350m", &o), 0);
    snprintf(o.type, sizeof o.type, "q4_0");
    synth_truncate(&o, 1);
    tg_buf b = TG_BUF_INIT;
    char err[512];
    if (synth_write_buf(&o, &b, err, sizeof err)) fail_msg("%s", err);
    gguf_file *f = open_buf(&b);
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    assert_int_equal(te->dims[0], 1024);
    assert_int_equal(te->dims[1], 65536);
    assert_int_equal(te->type, LQ_Q6_K);
    assert_int_equal(gguf_find_tensor(f, "blk.0.ffn_up.weight")->dims[1], 4608);
    assert_int_equal(ttype(f, "blk.0.ffn_up.weight"), LQ_Q4_0);
    assert_int_equal(gguf_find_kv(f, "tokenizer.ggml.tokens")->arr_n, 65536);
    gguf_close(f);
    tg_buf_free(&b);

    synth_opts_default(&o);
    o.n_head = 3; /* 256 % 3 != 0 */
    assert_int_equal(synth_write_buf(&o, &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "n_head"));
    synth_opts_default(&o);
    o.attn_layers[0] = 9;
    assert_int_equal(synth_write_buf(&o, &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "attention layer"));
    tg_buf_free(&b);
}

/* ------------------------------------------------------------- scripted -- */

/* Greedy-generates from `prompt` through the real engine; returns the text. */
static char *generate(const char *path, const char *prompt) {
    lfm_model *m;
    char err[512];
    if (lfm_model_load(path, NULL, &m, err, sizeof err)) fail_msg("%s", err);
    const lfm_tokenizer *tok = lfm_model_tokenizer(m);
    int32_t *ids;
    size_t n;
    assert_int_equal(lfm_tokenize(tok, prompt, strlen(prompt), true, true, &ids, &n), 0);
    int nv = lfm_vocab_size(tok);
    lfm_seq *s = lfm_seq_new(m, 512);
    assert_non_null(s);
    float *logits = malloc((size_t)nv * sizeof *logits);
    lfm_seq **seqs = malloc(n * sizeof *seqs);
    for (size_t i = 0; i < n; i++)
        seqs[i] = s;
    assert_int_equal(lfm_eval(m, (int)n, ids, seqs, NULL, logits, err, sizeof err), 0);
    tg_buf out = TG_BUF_INIT;
    lfm_detok d;
    lfm_detok_init(&d);
    for (int step = 0; step < 200; step++) {
        int32_t best = 0;
        for (int v = 1; v < nv; v++)
            if (logits[v] > logits[best]) best = v;
        if (lfm_token_is_eog(tok, best)) {
            assert_int_equal(best, lfm_token_lookup(tok, "<|im_end|>", 10));
            break;
        }
        lfm_detok_push(&d, tok, best, &out);
        assert_int_equal(lfm_eval(m, 1, &best, &s, NULL, logits, err, sizeof err), 0);
    }
    lfm_detok_flush(&d, &out);
    free(logits);
    free(seqs);
    free(ids);
    lfm_seq_free(s);
    lfm_model_free(m);
    return out.data ? tg_buf_steal(&out) : strdup("");
}

static void check_script(const char *script) {
    synth_opts o;
    synth_opts_default(&o);
    o.script = script;
    o.script_len = strlen(script);
    char path[] = "/tmp/tg_test_synth_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char err[512];
    if (synth_write(&o, path, err, sizeof err)) fail_msg("%s", err);
    gguf_file *f;
    assert_int_equal(gguf_open(path, &f, err, sizeof err), 0);
    uint64_t u;
    assert_int_equal(gguf_get_u64(f, "lfm2.block_count", &u, NULL, 0), 0);
    assert_int_equal(u, 0);
    assert_int_equal(gguf_tensor_count(f), 3);
    assert_non_null(gguf_find_tensor(f, "output.weight"));
    gguf_close(f);
    static const char *prompts[] = {
        "<|startoftext|><|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n",
        "x",
        "<|im_start|>system\nList of tools: <|tool_list_start|>[]<|tool_list_end|><|im_end|>\n"
        "<|im_start|>user\nHello there! Done. la la<|im_end|>\n<|im_start|>assistant\n",
    };
    for (size_t i = 0; i < sizeof prompts / sizeof *prompts; i++) {
        char *got = generate(path, prompts[i]);
        assert_string_equal(got, script);
        free(got);
    }
    unlink(path);
}

static void test_scripted(void **st) {
    (void)st;
    check_script("Hello there! <|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|>"
                 "Done.");
    check_script("la la la la\nla la\n\nla — ünïcödé ✓");
    check_script("");
    check_script("<|tool_call_start|>[f(x=1)]<|tool_call_end|>");

    synth_opts o;
    synth_opts_default(&o);
    tg_buf b = TG_BUF_INIT;
    char err[512];
    static const char *bad[] = {"a<|im_end|>b", "<|tool_call_start|>a<|tool_call_start|>",
                                "<|tool_call_start|>.<|tool_call_end|>"};
    static const char *why[] = {"end generation", "occurs twice", "repeats"};
    for (int i = 0; i < 3; i++) {
        o.script = bad[i];
        o.script_len = strlen(bad[i]);
        assert_int_equal(synth_write_buf(&o, &b, err, sizeof err), -1);
        if (!strstr(err, why[i])) fail_msg("'%s' -> '%s'", bad[i], err);
    }
    tg_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_mixes_match_fixtures),
        cmocka_unit_test(test_metadata_and_vocab),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_presets_and_errors),
        cmocka_unit_test(test_scripted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
