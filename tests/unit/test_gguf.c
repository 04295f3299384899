/* tg-test-links: lfm */
/* GGUF reader: every fixture model's known values and mixes, a writer
 * round-trip of all value types, every prefix of a small file, and a table of
 * malformed files (built with the writer, then patched) whose one-line errors
 * must name the right field at the right offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tg_buf.h"
#include "engine/gguf.h"
#include "tools/synth/gguf_write.h"
#include "engine/quant.h"

#define FIX TG_FIXTURES "/models/"

static bool streq(gguf_str s, const char *c) {
    return s.len == strlen(c) && !memcmp(s.ptr, c, s.len);
}

/* --------------------------------------------------------------- fixtures -- */

typedef struct {
    const char *file;
    uint32_t base; /* type of most 2-D weights */
    uint32_t embd; /* token_embd */
    int layers, n_tensors, vocab;
    bool untied;
    uint32_t output; /* output.weight when untied */
    bool m_mix;      /* _M: raised tensors are Q6_K */
} fixture;

static const fixture FIXTURES[] = {
    {"lfm2-tiny-f32.gguf", LQ_F32, LQ_F32, 6, 56, 1024, false, 0, false},
    {"lfm2-tiny-f16.gguf", LQ_F16, LQ_F16, 6, 56, 1024, false, 0, false},
    {"lfm2-tiny-bf16.gguf", LQ_BF16, LQ_BF16, 6, 56, 1024, false, 0, false},
    {"lfm2-tiny-q8_0.gguf", LQ_Q8_0, LQ_Q8_0, 6, 56, 1024, false, 0, false},
    {"lfm2-tiny-q4_0.gguf", LQ_Q4_0, LQ_Q6_K, 6, 56, 1024, false, 0, false},
    {"lfm2-tiny-q4_k_m.gguf", LQ_Q4_K, LQ_Q6_K, 6, 56, 1024, false, 0, true},
    {"lfm2-tiny-q5_k_m.gguf", LQ_Q5_K, LQ_Q6_K, 6, 56, 1024, false, 0, true},
    {"lfm2-tiny-q6_k.gguf", LQ_Q6_K, LQ_Q6_K, 6, 56, 1024, false, 0, false},
    {"lfm2-tiny-untied-f32.gguf", LQ_F32, LQ_F32, 4, 41, 768, true, LQ_F32, false},
    {"lfm2-tiny-untied-q8_0.gguf", LQ_Q8_0, LQ_Q8_0, 4, 41, 768, true, LQ_Q8_0, false},
    {"lfm2-tiny-untied-q4_0.gguf", LQ_Q4_0, LQ_Q4_0, 4, 41, 768, true, LQ_Q6_K, false},
};

static void check_fixture(const fixture *fx) {
    char path[512], err[512];
    snprintf(path, sizeof path, FIX "%s", fx->file);
    gguf_file *f = NULL;
    int rc = gguf_open(path, &f, err, sizeof err);
    if (rc) fail_msg("%s", err);
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_alignment(f), 32);
    assert_int_equal(gguf_data_offset(f) % 32, 0);

    uint64_t u;
    gguf_str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s, err, sizeof err), 0);
    assert_true(streq(s, "lfm2"));
    assert_int_equal(gguf_get_u64(f, "lfm2.block_count", &u, err, sizeof err), 0);
    assert_int_equal(u, fx->layers);
    assert_int_equal(gguf_get_u64(f, "lfm2.embedding_length", &u, err, sizeof err), 0);
    assert_int_equal(u, 256);
    assert_int_equal(gguf_get_u64(f, "lfm2.feed_forward_length", &u, err, sizeof err), 0);
    assert_int_equal(u, 512);
    assert_int_equal(gguf_get_u64(f, "lfm2.attention.head_count", &u, err, sizeof err), 0);
    assert_int_equal(u, 4);
    assert_int_equal(gguf_get_u64(f, "lfm2.shortconv.l_cache", &u, err, sizeof err), 0);
    assert_int_equal(u, 3);
    assert_int_equal(gguf_get_u64(f, "lfm2.vocab_size", &u, err, sizeof err), 0);
    assert_int_equal(u, fx->vocab);
    double d;
    assert_int_equal(gguf_get_f64(f, "lfm2.rope.freq_base", &d, err, sizeof err), 0);
    assert_true(d == (fx->untied ? 1e4 : 1e6));
    assert_int_equal(gguf_get_f64(f, "lfm2.attention.layer_norm_rms_epsilon", &d, err, sizeof err),
                     0);
    assert_true(d > 0.99e-5 && d < 1.01e-5);
    bool b;
    assert_int_equal(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b, err, sizeof err), 0);
    assert_true(b);
    assert_int_equal(gguf_get_str(f, "tokenizer.ggml.pre", &s, err, sizeof err), 0);
    assert_true(streq(s, "lfm2"));

    /* Per-block KV heads: tiny = attention at 2 and 4 (2 KV heads), untied =
     * attention at 1 and 3 (1 KV head). */
    const gguf_kv *hkv = gguf_find_kv(f, "lfm2.attention.head_count_kv");
    assert_non_null(hkv);
    assert_int_equal(hkv->type, GGUF_T_ARRAY);
    assert_int_equal(hkv->arr_n, fx->layers);
    static const int64_t want6[] = {0, 0, 2, 0, 2, 0}, want4[] = {0, 1, 0, 1};
    for (int l = 0; l < fx->layers; l++) {
        int64_t v;
        assert_int_equal(gguf_arr_get_i64(hkv, (uint64_t)l, &v), 0);
        assert_int_equal(v, fx->untied ? want4[l] : want6[l]);
    }
    const gguf_kv *toks = gguf_find_kv(f, "tokenizer.ggml.tokens");
    assert_non_null(toks);
    assert_int_equal(toks->arr_type, GGUF_T_STRING);
    assert_int_equal(toks->arr_n, fx->vocab);
    assert_true(streq(toks->arr_strs[1], "<|startoftext|>"));
    assert_true(streq(toks->arr_strs[7], "<|im_end|>"));
    const gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
    assert_non_null(tt);
    assert_int_equal(tt->arr_n, fx->vocab);

    /* Tensors: count, shapes, the published mix, and bytes inside the file. */
    assert_int_equal(gguf_tensor_count(f), fx->n_tensors);
    uint64_t end = 0;
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        assert_ptr_equal(gguf_find_tensor(f, name), t);
        uint64_t rows = t->dims[1] * t->dims[2] * t->dims[3];
        assert_int_equal(t->nbytes, lq_row_bytes((lq_type)t->type, (int64_t)t->dims[0]) * rows);
        assert_int_equal(t->n_elems, t->dims[0] * rows);
        assert_int_equal(t->offset % 32, 0);
        assert_true(gguf_data_offset(f) + t->offset + t->nbytes <= gguf_file_size(f));
        assert_non_null(t->data);
        if (t->offset + t->nbytes > end) end = t->offset + t->nbytes;
        uint32_t want;
        if (t->n_dims == 1 || strstr(name, "shortconv.conv"))
            want = LQ_F32;
        else if (!strcmp(name, "token_embd.weight"))
            want = fx->embd;
        else if (!strcmp(name, "output.weight"))
            want = fx->output;
        else if (fx->m_mix &&
                 (!strcmp(name, "blk.2.ffn_down.weight") ||
                  !strcmp(name, "blk.5.ffn_down.weight") || !strcmp(name, "blk.4.attn_v.weight")))
            want = LQ_Q6_K;
        else
            want = fx->base;
        if (t->type != want)
            fail_msg("%s: %s is %s, want %s", fx->file, name, lq_type_name(t->type),
                     lq_type_name(want));
    }
    assert_true(gguf_file_size(f) - gguf_data_offset(f) - end < 32);
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(te);
    assert_int_equal(te->n_dims, 2);
    assert_int_equal(te->dims[0], 256);
    assert_int_equal(te->dims[1], fx->vocab);
    const gguf_tensor *k =
        gguf_find_tensor(f, fx->untied ? "blk.1.attn_k.weight" : "blk.2.attn_k.weight");
    assert_non_null(k);
    assert_int_equal(k->dims[1], fx->untied ? 64 : 128); /* Hkv * head dim 64 */
    assert_int_equal(gguf_find_tensor(f, "output.weight") != NULL, fx->untied);
    assert_null(gguf_find_tensor(f, "blk.0.attn_q.weight")); /* conv block */
    gguf_close(f);
}

static void test_fixtures(void **st) {
    (void)st;
    for (size_t i = 0; i < sizeof FIXTURES / sizeof *FIXTURES; i++)
        check_fixture(&FIXTURES[i]);
}

static void test_getters(void **st) {
    (void)st;
    gguf_file *f;
    char err[512];
    assert_int_equal(gguf_open(FIX "lfm2-tiny-q8_0.gguf", &f, err, sizeof err), 0);
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    gguf_str s;
    assert_int_equal(gguf_get_u64(f, "no.such.key", &u, err, sizeof err), -1);
    assert_non_null(strstr(err, "no.such.key"));
    assert_int_equal(gguf_get_u64(f, "general.name", &u, err, sizeof err), -2);
    assert_non_null(strstr(err, "general.name"));
    assert_non_null(strstr(err, "str"));
    assert_int_equal(gguf_get_str(f, "lfm2.block_count", &s, err, sizeof err), -2);
    assert_int_equal(gguf_get_bool(f, "lfm2.block_count", &b, err, sizeof err), -2);
    assert_int_equal(gguf_get_i64(f, "lfm2.block_count", &i, err, sizeof err), 0);
    assert_int_equal(i, 6);
    assert_int_equal(gguf_get_f64(f, "lfm2.block_count", &d, err, sizeof err), 0); /* int -> f64 */
    assert_true(d == 6.0);
    assert_int_equal(gguf_get_u64(f, "general.file_type", &u, err, sizeof err), 0);
    assert_int_equal(u, 7);
    assert_null(gguf_kv_at(f, gguf_kv_count(f)));
    assert_null(gguf_tensor_at(f, gguf_tensor_count(f)));
    const gguf_kv *toks = gguf_find_kv(f, "tokenizer.ggml.tokens");
    int64_t v;
    assert_int_equal(gguf_arr_get_i64(toks, 0, &v), -1); /* string array */
    const gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
    assert_int_equal(gguf_arr_get_i64(tt, tt->arr_n, &v), -1); /* past the end */
    assert_string_equal(gguf_vtype_name(GGUF_T_FLOAT64), "f64");
    gguf_close(f);
}

/* ------------------------------------------------------------- round trip -- */

static void test_roundtrip(void **st) {
    (void)st;
    gguf_writer *w = gguf_w_new();
    gguf_w_add_u8(w, "t.u8", 200);
    gguf_w_add_i8(w, "t.i8", -100);
    gguf_w_add_u16(w, "t.u16", 60000);
    gguf_w_add_i16(w, "t.i16", -30000);
    gguf_w_add_u32(w, "t.u32", 4000000000u);
    gguf_w_add_i32(w, "t.i32", -2000000000);
    gguf_w_add_u64(w, "t.u64", UINT64_MAX);
    gguf_w_add_i64(w, "t.i64", INT64_MIN);
    gguf_w_add_f32(w, "t.f32", 0.25f);
    gguf_w_add_f64(w, "t.f64", -1e300);
    gguf_w_add_bool(w, "t.bool", true);
    gguf_w_add_str(w, "t.str", "héllo");
    gguf_w_add_strn(w, "t.nul", "a\0b", 3);
    gguf_w_add_str(w, "t.empty", "");
    int32_t ia[] = {-1, 0, 7, 2147483647};
    gguf_w_add_i32_arr(w, "t.i32arr", ia, 4);
    uint16_t ua[] = {1, 65535};
    gguf_w_add_arr(w, "t.u16arr", GGUF_T_UINT16, ua, 2);
    float fa[] = {1.5f, -2.0f};
    gguf_w_add_arr(w, "t.f32arr", GGUF_T_FLOAT32, fa, 2);
    uint8_t ba[] = {1, 0, 1};
    gguf_w_add_arr(w, "t.boolarr", GGUF_T_BOOL, ba, 3);
    const char *sa[] = {"x", "", "<|im_end|>"};
    gguf_w_add_str_arr(w, "t.strarr", sa, 3);
    gguf_w_add_str_arr(w, "t.emptyarr", NULL, 0);

    /* One tensor of every supported type, with recognizable bytes. */
    static const uint32_t types[] = {LQ_F32,  LQ_F16,  LQ_BF16, LQ_Q8_0,
                                     LQ_Q4_0, LQ_Q4_K, LQ_Q5_K, LQ_Q6_K};
    uint8_t *blobs[8];
    size_t sizes[8];
    for (int k = 0; k < 8; k++) {
        uint64_t dims[3] = {256, 3, 2};
        sizes[k] = (size_t)gguf_w_tensor_bytes(types[k], 3, dims);
        assert_int_equal(sizes[k], lq_row_bytes((lq_type)types[k], 256) * 6);
        blobs[k] = malloc(sizes[k]);
        for (size_t j = 0; j < sizes[k]; j++)
            blobs[k][j] = (uint8_t)(j * 7 + (size_t)k);
        char name[32];
        snprintf(name, sizeof name, "w.%s", lq_type_name(types[k]));
        assert_int_equal(gguf_w_add_tensor(w, name, 3, dims, types[k], blobs[k], sizes[k]), k);
    }
    uint64_t bad[1] = {33};
    assert_int_equal(gguf_w_add_tensor(w, "bad", 1, bad, LQ_Q8_0, blobs[0], 10), -1);

    tg_buf buf = TG_BUF_INIT;
    char err[512];
    assert_int_equal(gguf_w_write_buf(w, &buf, err, sizeof err), 0);
    gguf_file *f;
    if (gguf_open_mem(buf.data, buf.len, &f, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(gguf_kv_count(f), 20);
    const gguf_kv *kv;
    kv = gguf_find_kv(f, "t.u8");
    assert_int_equal(kv->type, GGUF_T_UINT8);
    assert_int_equal(kv->v.u, 200);
    kv = gguf_find_kv(f, "t.i8");
    assert_int_equal(kv->v.i, -100);
    kv = gguf_find_kv(f, "t.u16");
    assert_int_equal(kv->v.u, 60000);
    kv = gguf_find_kv(f, "t.i16");
    assert_int_equal(kv->v.i, -30000);
    kv = gguf_find_kv(f, "t.u32");
    assert_int_equal(kv->v.u, 4000000000u);
    kv = gguf_find_kv(f, "t.i32");
    assert_int_equal(kv->v.i, -2000000000);
    kv = gguf_find_kv(f, "t.u64");
    assert_true(kv->v.u == UINT64_MAX);
    kv = gguf_find_kv(f, "t.i64");
    assert_true(kv->v.i == INT64_MIN);
    kv = gguf_find_kv(f, "t.f32");
    assert_true(kv->v.f == 0.25);
    kv = gguf_find_kv(f, "t.f64");
    assert_true(kv->v.f == -1e300);
    kv = gguf_find_kv(f, "t.bool");
    assert_true(kv->v.b);
    kv = gguf_find_kv(f, "t.str");
    assert_true(streq(kv->v.s, "héllo"));
    kv = gguf_find_kv(f, "t.nul");
    assert_int_equal(kv->v.s.len, 3);
    assert_memory_equal(kv->v.s.ptr, "a\0b", 3);
    kv = gguf_find_kv(f, "t.empty");
    assert_int_equal(kv->v.s.len, 0);
    int64_t v;
    kv = gguf_find_kv(f, "t.i32arr");
    assert_int_equal(kv->arr_n, 4);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(gguf_arr_get_i64(kv, (uint64_t)k, &v), 0);
        assert_int_equal(v, ia[k]);
    }
    kv = gguf_find_kv(f, "t.u16arr");
    assert_int_equal(gguf_arr_get_i64(kv, 1, &v), 0);
    assert_int_equal(v, 65535);
    kv = gguf_find_kv(f, "t.f32arr");
    assert_int_equal(kv->arr_type, GGUF_T_FLOAT32);
    assert_memory_equal(kv->arr_data, fa, sizeof fa);
    kv = gguf_find_kv(f, "t.boolarr");
    assert_memory_equal(kv->arr_data, ba, 3);
    kv = gguf_find_kv(f, "t.strarr");
    assert_int_equal(kv->arr_n, 3);
    assert_true(streq(kv->arr_strs[0], "x") && streq(kv->arr_strs[1], "") &&
                streq(kv->arr_strs[2], "<|im_end|>"));
    kv = gguf_find_kv(f, "t.emptyarr");
    assert_int_equal(kv->arr_n, 0);
    uint64_t u;
    assert_int_equal(gguf_get_u64(f, "t.i8", &u, err, sizeof err), -2); /* negative */
    int64_t i;
    assert_int_equal(gguf_get_i64(f, "t.u64", &i, err, sizeof err), -2); /* too big */
    assert_int_equal(gguf_get_i64(f, "t.i16", &i, err, sizeof err), 0);
    assert_int_equal(i, -30000);

    assert_int_equal(gguf_tensor_count(f), 8);
    for (int k = 0; k < 8; k++) {
        const gguf_tensor *t = gguf_tensor_at(f, (size_t)k);
        assert_int_equal(t->type, types[k]);
        assert_int_equal(t->n_dims, 3);
        assert_int_equal(t->dims[2], 2);
        assert_int_equal(t->dims[3], 1);
        assert_int_equal(t->nbytes, sizes[k]);
        assert_memory_equal(t->data, blobs[k], sizes[k]);
    }
    gguf_close(f);

    /* The same through a real file and mmap. */
    char path[] = "/tmp/tg_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gguf_w_write_file(w, path, err, sizeof err), 0);
    if (gguf_open(path, &f, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(gguf_file_size(f), buf.len);
    assert_memory_equal(gguf_tensor_at(f, 7)->data, blobs[7], sizes[7]);
    gguf_close(f);
    unlink(path);

    for (int k = 0; k < 8; k++)
        free(blobs[k]);
    tg_buf_free(&buf);
    gguf_w_free(w);
}

static void test_v2_and_alignment(void **st) {
    (void)st;
    gguf_writer *w = gguf_w_new();
    gguf_w_set_version(w, 2);
    gguf_w_set_alignment(w, 256);
    gguf_w_add_u32(w, "general.alignment", 256);
    float x[32] = {1};
    uint64_t d[1] = {32};
    gguf_w_add_tensor(w, "a", 1, d, LQ_F32, x, sizeof x);
    gguf_w_add_tensor(w, "b", 1, d, LQ_F32, x, sizeof x);
    tg_buf buf = TG_BUF_INIT;
    char err[512];
    assert_int_equal(gguf_w_write_buf(w, &buf, err, sizeof err), 0);
    gguf_file *f;
    if (gguf_open_mem(buf.data, buf.len, &f, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(gguf_version(f), 2);
    assert_int_equal(gguf_alignment(f), 256);
    assert_int_equal(gguf_data_offset(f) % 256, 0);
    assert_int_equal(gguf_tensor_at(f, 1)->offset, 256);
    gguf_close(f);
    tg_buf_free(&buf);
    gguf_w_free(w);

    /* Metadata only, no tensors, no padding: valid. */
    w = gguf_w_new();
    gguf_w_add_str(w, "general.architecture", "lfm2");
    assert_int_equal(gguf_w_write_buf(w, &buf, err, sizeof err), 0);
    assert_int_equal(gguf_open_mem(buf.data, buf.len, &f, err, sizeof err), 0);
    assert_int_equal(gguf_tensor_count(f), 0);
    gguf_close(f);
    tg_buf_free(&buf);
    gguf_w_free(w);
}

/* -------------------------------------------------------------- malformed -- */

/* A small valid file: every patch below starts from it. */
static void make_base(tg_buf *out, int variant) {
    gguf_writer *w = gguf_w_new();
    gguf_w_add_str(w, "general.architecture", "lfm2");
    gguf_w_add_str(w, "general.name", "base");
    if (variant == 3)
        gguf_w_add_str(w, "general.alignment", "32");
    else
        gguf_w_add_u32(w, "general.alignment", 32);
    gguf_w_add_u32(w, "lfm2.block_count", 1);
    int32_t arr[] = {1, 2, 3};
    gguf_w_add_i32_arr(w, "arr", arr, 3);
    const char *strs[] = {"a", "bb"};
    gguf_w_add_str_arr(w, "strs", strs, 2);
    gguf_w_add_bool(w, "flag", true);
    if (variant == 1) gguf_w_add_str(w, "general.name", "again");
    if (variant == 2) gguf_w_add_u8(w, "", 1);
    static uint8_t q[2 * 68];
    static float n8[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    uint64_t dq[2] = {64, 2}, dn[1] = {8};
    gguf_w_add_tensor(w,
                      variant == 4
                          ? "a123456789b123456789c123456789d123456789e123456789f123456789g123"
                          : "tok.weight",
                      2, dq, LQ_Q8_0, q, sizeof q);
    gguf_w_add_tensor(w, variant == 5 ? "tok.weight" : "norm.weight", 1, dn, LQ_F32, n8, sizeof n8);
    char err[256];
    assert_int_equal(gguf_w_write_buf(w, out, err, sizeof err), 0);
    gguf_w_free(w);
}

static size_t find(const tg_buf *b, const char *needle) {
    const char *p = memmem(b->data, b->len, needle, strlen(needle));
    assert_non_null(p);
    return (size_t)(p - b->data);
}
static void put32(tg_buf *b, size_t off, uint32_t v) {
    for (int i = 0; i < 4; i++)
        b->data[off + (size_t)i] = (char)(v >> (8 * i));
}
static void put64(tg_buf *b, size_t off, uint64_t v) {
    for (int i = 0; i < 8; i++)
        b->data[off + (size_t)i] = (char)(v >> (8 * i));
}
static uint32_t get32(const tg_buf *b, size_t off) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | (uint8_t)b->data[off + (size_t)i];
    return v;
}
/* Offset of the type field of kv `key`, and of its value. */
static size_t kv_type(const tg_buf *b, const char *key) {
    return find(b, key) + strlen(key);
}
static size_t kv_val(const tg_buf *b, const char *key) {
    return kv_type(b, key) + 4;
}
/* Fields of tensor info `name`. */
static size_t t_ndims(const tg_buf *b, const char *name) {
    return find(b, name) + strlen(name);
}
static size_t t_dims(const tg_buf *b, const char *name) {
    return t_ndims(b, name) + 4;
}
static size_t t_type(const tg_buf *b, const char *name) {
    return t_dims(b, name) + 8 * get32(b, t_ndims(b, name));
}
static size_t t_off(const tg_buf *b, const char *name) {
    return t_type(b, name) + 4;
}

typedef struct {
    const char *what;
    int variant;
    const char *want1, *want2;
} bad_case;

static const bad_case BAD[] = {
    {"bad magic", 0, "magic at offset 0:", "bad magic"},
    {"version 1", 0, "version at offset 4:", "unsupported version 1 "},
    {"big-endian version", 0, "version at offset 4:", "big-endian"},
    {"huge tensor_count", 0, "tensor_count at offset 8:", "exceeds"},
    {"huge kv_count", 0, "kv_count at offset 16:", "exceeds"},
    {"kv_count one too many", 0, NULL, NULL},
    {"huge key length", 0, "kv[0].key at offset 24:", "string length"},
    {"huge string value", 0, "general.name at offset", "string length"},
    {"huge array count", 0, "arr at offset", "array count"},
    {"huge string array count", 0, "strs at offset", "array count"},
    {"unknown value type", 0, "flag at offset", "unknown value type 13"},
    {"nested array", 0, "arr at offset", "nested arrays"},
    {"unknown element type", 0, "arr at offset", "unknown array element type 77"},
    {"bool value 2", 0, "flag at offset", "not 0 or 1"},
    {"duplicate key", 1, "general.name at offset", "duplicate key"},
    {"empty key", 2, "kv[7].key at offset", "empty key"},
    {"alignment 3", 0, "general.alignment at offset", "power of two"},
    {"alignment 0", 0, "general.alignment at offset", "power of two"},
    {"alignment string", 3, "general.alignment at offset", "unsigned integer"},
    {"offset past end", 0, "tensor tok.weight at offset", "past the end"},
    {"offset wraps", 0, "tensor tok.weight at offset", "past the end"},
    {"misaligned offset", 0, "tensor norm.weight at offset", "alignment 32"},
    {"unknown type 99", 0, "tensor tok.weight at offset", "type id 99"},
    {"unsupported type 3", 0, "tensor tok.weight at offset", "type id 3"},
    {"n_dims 5", 0, "tensor tok.weight at offset", "n_dims 5 "},
    {"n_dims 0", 0, "tensor tok.weight at offset", "n_dims 0 "},
    {"dims overflow", 0, "tensor tok.weight at offset", "overflow"},
    {"zero dim", 0, "tensor tok.weight at offset", "dimension 1 is zero"},
    {"row not a block multiple", 0, "tensor tok.weight at offset", "not a multiple of Q8_0"},
    {"huge tensor name length", 0, "tensor[0].name at offset", "string length"},
    {"tensor name too long", 4, "tensor[0].name at offset", "max 63"},
    {"duplicate tensor", 5, "tensor tok.weight at offset", "duplicate tensor name"},
    {"data cut short", 0, "tensor norm.weight at offset", "past the end"},
};

/* Applies case i to b; returns the byte offset the error must name, or -1. */
static long apply(int i, tg_buf *b) {
    size_t o;
    switch (i) {
    case 0: b->data[0] = 'X'; return 0;
    case 1: put32(b, 4, 1); return 4;
    case 2: put32(b, 4, 0x03000000); return 4;
    case 3: put64(b, 8, 1ull << 40); return 8;
    case 4: put64(b, 16, 1ull << 40); return 16;
    case 5: put64(b, 16, 8); return -1;
    case 6: put64(b, 24, 1ull << 50); return 24;
    case 7:
        o = kv_val(b, "general.name");
        put64(b, o, UINT64_MAX);
        return (long)o;
    case 8:
        o = kv_val(b, "arr") + 4;
        put64(b, o, 1ull << 61);
        return (long)o;
    case 9:
        o = kv_val(b, "strs") + 4;
        put64(b, o, (uint64_t)b->len);
        return (long)o;
    case 10:
        o = kv_type(b, "flag");
        put32(b, o, 13);
        return (long)o;
    case 11:
        o = kv_val(b, "arr");
        put32(b, o, GGUF_T_ARRAY);
        return (long)o;
    case 12:
        o = kv_val(b, "arr");
        put32(b, o, 77);
        return (long)o;
    case 13:
        o = kv_val(b, "flag");
        b->data[o] = 2;
        return (long)o;
    case 14: return -1;
    case 15: return -1;
    case 16:
        o = kv_val(b, "general.alignment");
        put32(b, o, 3);
        return -1;
    case 17:
        o = kv_val(b, "general.alignment");
        put32(b, o, 0);
        return -1;
    case 18: return -1;
    case 19:
        o = t_off(b, "tok.weight");
        put64(b, o, 1ull << 40);
        return (long)o;
    case 20:
        o = t_off(b, "tok.weight");
        put64(b, o, UINT64_MAX - 31);
        return (long)o;
    case 21:
        o = t_off(b, "norm.weight");
        put64(b, o, 4 + 160);
        return (long)o;
    case 22:
        o = t_type(b, "tok.weight");
        put32(b, o, 99);
        return (long)o;
    case 23:
        o = t_type(b, "tok.weight");
        put32(b, o, 3);
        return (long)o;
    case 24:
        o = t_ndims(b, "tok.weight");
        put32(b, o, 5);
        return (long)o;
    case 25:
        o = t_ndims(b, "tok.weight");
        put32(b, o, 0);
        return (long)o;
    case 26:
        o = t_dims(b, "tok.weight");
        put64(b, o, 1ull << 40);
        put64(b, o + 8, 1ull << 40);
        return (long)(o + 8);
    case 27:
        o = t_dims(b, "tok.weight") + 8;
        put64(b, o, 0);
        return (long)o;
    case 28:
        o = t_dims(b, "tok.weight");
        put64(b, o, 33);
        return (long)o;
    case 29:
        o = find(b, "tok.weight") - 8;
        put64(b, o, 1ull << 40);
        return (long)o;
    case 30: return -1;
    case 31: return -1;
    case 32: b->len -= 40; return -1; /* norm.weight: 32 bytes + 0 pad, cut into */
    }
    return -1;
}

static void check_err(const char *what, const char *err, const char *want1, const char *want2,
                      long off) {
    if (strncmp(err, "<memory>: ", 10) || strchr(err, '\n'))
        fail_msg("%s: not a one-line error: '%s'", what, err);
    if (want1 && !strstr(err, want1)) fail_msg("%s: '%s' lacks '%s'", what, err, want1);
    if (want2 && !strstr(err, want2)) fail_msg("%s: '%s' lacks '%s'", what, err, want2);
    if (off >= 0) {
        char at[48];
        snprintf(at, sizeof at, " at offset %ld:", off);
        if (!strstr(err, at)) fail_msg("%s: '%s' lacks '%s'", what, err, at);
    }
}

static void test_malformed_table(void **st) {
    (void)st;
    for (int i = 0; i < (int)(sizeof BAD / sizeof *BAD); i++) {
        tg_buf b = TG_BUF_INIT;
        make_base(&b, BAD[i].variant);
        long off = apply(i, &b);
        /* Exact-size copy so any over-read hits ASan's redzone. */
        char *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        gguf_file *f = NULL;
        char err[512] = "";
        int rc = gguf_open_mem(copy, b.len, &f, err, sizeof err);
        if (rc == 0) fail_msg("%s: accepted", BAD[i].what);
        assert_null(f);
        check_err(BAD[i].what, err, BAD[i].want1, BAD[i].want2, off);
        free(copy);
        tg_buf_free(&b);
    }
    /* The unpatched base file is valid. */
    tg_buf b = TG_BUF_INIT;
    make_base(&b, 0);
    gguf_file *f;
    char err[512];
    assert_int_equal(gguf_open_mem(b.data, b.len, &f, err, sizeof err), 0);
    assert_int_equal(gguf_tensor_count(f), 2);
    gguf_close(f);
    tg_buf_free(&b);
}

/* Every prefix of a small file fails cleanly, or (padding cut only) succeeds
 * with every tensor still inside the bytes it was given. */
static void test_prefixes(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT;
    make_base(&b, 0);
    size_t ok = 0;
    for (size_t len = 0; len <= b.len; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, b.data, len);
        gguf_file *f = NULL;
        char err[512] = "";
        if (gguf_open_mem(copy, len, &f, err, sizeof err)) {
            check_err("prefix", err, " at offset ", NULL, -1);
        } else {
            ok++;
            for (size_t i = 0; i < gguf_tensor_count(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                assert_true(gguf_data_offset(f) + t->offset + t->nbytes <= len);
            }
            assert_int_equal(len, b.len); /* the writer adds no trailing padding here */
            gguf_close(f);
        }
        free(copy);
    }
    assert_int_equal(ok, 1);
    tg_buf_free(&b);
}

static void test_open_errors(void **st) {
    (void)st;
    gguf_file *f = (gguf_file *)1;
    char err[512];
    assert_int_equal(gguf_open("/nonexistent/x.gguf", &f, err, sizeof err), -1);
    assert_null(f);
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    assert_int_equal(gguf_open("/tmp", &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    char path[] = "/tmp/tg_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gguf_open(path, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "magic at offset 0: file truncated"));
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    unlink(path);
    /* NULL err buffer is allowed. */
    assert_int_equal(gguf_open_mem("GGUF", 4, &f, NULL, 0), -1);
}

/* Random byte flips in a small file: never a crash, and what opens is
 * walkable (ASan checks every byte touched). */
static void test_byte_flips(void **st) {
    (void)st;
    tg_buf b = TG_BUF_INIT;
    make_base(&b, 0);
    uint64_t rng = 42;
    int opened = 0;
    for (int it = 0; it < 4000; it++) {
        char *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        int flips = 1 + it % 3;
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            copy[(rng >> 33) % b.len] ^= (char)(1u << ((rng >> 20) % 8));
        }
        gguf_file *f;
        char err[512];
        if (gguf_open_mem(copy, b.len, &f, err, sizeof err) == 0) {
            opened++;
            unsigned sum = 0;
            for (size_t i = 0; i < gguf_kv_count(f); i++) {
                const gguf_kv *kv = gguf_kv_at(f, i);
                for (uint64_t j = 0; kv->arr_strs && j < kv->arr_n; j++)
                    for (uint64_t c = 0; c < kv->arr_strs[j].len; c++)
                        sum += (unsigned char)kv->arr_strs[j].ptr[c];
            }
            for (size_t i = 0; i < gguf_tensor_count(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                const uint8_t *p = t->data;
                sum += p[0] + p[t->nbytes - 1];
            }
            (void)sum;
            gguf_close(f);
        } else {
            check_err("flip", err, NULL, NULL, -1);
        }
        free(copy);
    }
    assert_true(opened > 0); /* flips in tensor data stay valid */
    tg_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),    cmocka_unit_test(test_getters),
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_v2_and_alignment),
        cmocka_unit_test(test_prefixes),    cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_open_errors), cmocka_unit_test(test_byte_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
