/* tg-test-links: lfm */
/* Tokenizer tests: every fixture model's tok_* and generation cases must
 * tokenize to the reference ids byte for byte; BPE merge order, invalid
 * UTF-8, BOS rules, large inputs and the streaming detokenizer. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/gguf.h"
#include "tools/synth/gguf_write.h"
#include "common/ljson.h"
#include "engine/lfm.h"
#include "engine/tokenizer.h"

static lfm_tokenizer *load_tok(const char *model_file) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/models/%s", TG_FIXTURES, model_file);
    gguf_file *f = NULL;
    if (gguf_open(path, &f, err, sizeof err) != 0) fail_msg("gguf_open %s: %s", path, err);
    lfm_tokenizer *t = NULL;
    int rc = lfm_tokenizer_from_gguf(f, &t, err, sizeof err);
    gguf_close(f);
    if (rc != 0) fail_msg("tokenizer %s: %s", path, err);
    return t;
}

static ljson *read_json(const char *path) {
    tg_buf b = TG_BUF_INIT;
    if (tg_buf_read_file(&b, path) != 0) fail_msg("cannot read %s", path);
    char err[200];
    ljson *v = ljson_parse(b.data, b.len, err, sizeof err);
    if (!v) fail_msg("%s: %s", path, err);
    tg_buf_free(&b);
    return v;
}

/* Every reference directory: each case's text must give prompt_tokens. */
static void test_fixture_cases(void **state) {
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/reference", TG_FIXTURES);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n_models = 0, n_cases = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char ipath[1400];
        snprintf(ipath, sizeof ipath, "%s/%s/index.json", dir, e->d_name);
        FILE *probe = fopen(ipath, "rb");
        if (!probe) continue;
        fclose(probe);
        ljson *index = read_json(ipath);
        const ljson *model = ljson_get(index, "model"), *cases = ljson_get(index, "cases");
        assert_non_null(model);
        assert_non_null(cases);
        lfm_tokenizer *t = load_tok(model->str);
        n_models++;
        for (size_t c = 0; c < cases->n; c++) {
            char cpath[1600];
            snprintf(cpath, sizeof cpath, "%s/%s/%s.json", dir, e->d_name, cases->items[c]->str);
            ljson *cj = read_json(cpath);
            const ljson *text = ljson_get(cj, "text"), *want = ljson_get(cj, "prompt_tokens");
            assert_non_null(text);
            assert_non_null(want);
            int32_t *ids = NULL;
            size_t n = 0;
            assert_int_equal(lfm_tokenize(t, text->str, text->len, true, true, &ids, &n), 0);
            bool same = n == want->n;
            for (size_t i = 0; same && i < n; i++)
                same = ids[i] == atoi(want->items[i]->str);
            if (!same) {
                fprintf(stderr, "MISMATCH %s/%s: got %zu tokens, want %zu\n", e->d_name,
                        cases->items[c]->str, n, want->n);
                for (size_t i = 0; i < n || i < want->n; i++)
                    fprintf(stderr, "  %zu: got %d want %s\n", i, i < n ? ids[i] : -1,
                            i < want->n ? want->items[i]->str : "-");
            }
            assert_true(same);
            free(ids);
            ljson_free(cj);
            n_cases++;
        }
        lfm_tokenizer_free(t);
        ljson_free(index);
    }
    closedir(d);
    assert_true(n_models >= 11);
    assert_true(n_cases >= 11 * 15);
}

/* Concatenated token bytes must give back the input exactly. */
static void assert_roundtrip(const lfm_tokenizer *t, const char *s, size_t n, bool special) {
    int32_t *ids = NULL;
    size_t m = 0;
    assert_int_equal(lfm_tokenize(t, s, n, false, special, &ids, &m), 0);
    tg_buf b = TG_BUF_INIT;
    for (size_t i = 0; i < m; i++) {
        char tmp[512];
        size_t k = lfm_token_bytes(t, ids[i], tmp, sizeof tmp);
        assert_true(k <= sizeof tmp);
        tg_buf_append(&b, tmp, k);
    }
    assert_int_equal(b.len, n);
    if (n) assert_memory_equal(b.data, s, n);
    tg_buf_free(&b);
    free(ids);
}

static void test_invalid_utf8_and_empty(void **state) {
    (void)state;
    lfm_tokenizer *t = load_tok("lfm2-tiny-f32.gguf");
    static const char bad[] = "ok \xff\xfe caf\xc3 \xe6\x97 \xed\xa0\x80 z\xf4\x90\x80\x80 end\xc3";
    assert_roundtrip(t, bad, sizeof bad - 1, true);
    /* A lone 0xFF is the byte token whose mapped text is U+00FF. */
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(lfm_tokenize(t, "\xff", 1, false, true, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], lfm_token_lookup(t, "\xc3\xbf", 2));
    free(ids);
    /* Random bytes (including NULs and special-token text) round-trip. */
    srand(7);
    char buf[4096];
    for (int r = 0; r < 50; r++) {
        size_t len = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(rand() & 0xff);
        if (len > 40) memcpy(buf + 10, "<|im_end|>", 10);
        assert_roundtrip(t, buf, len, r & 1);
    }
    /* Empty input: just BOS, or nothing. */
    assert_int_equal(lfm_tokenize(t, "", 0, true, true, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], lfm_token_bos(t));
    free(ids);
    assert_int_equal(lfm_tokenize(t, NULL, 0, false, true, &ids, &n), 0);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(lfm_tokenize(t, NULL, 3, false, true, &ids, &n), LFM_EINVAL);
    lfm_tokenizer_free(t);
}

static void test_bos_and_specials(void **state) {
    (void)state;
    lfm_tokenizer *t = load_tok("lfm2-tiny-f32.gguf");
    int32_t bos = lfm_token_lookup(t, "<|startoftext|>", 15);
    int32_t im_start = lfm_token_lookup(t, "<|im_start|>", 12);
    int32_t im_end = lfm_token_lookup(t, "<|im_end|>", 10);
    int32_t eot = lfm_token_lookup(t, "<|endoftext|>", 13);
    assert_true(bos >= 0 && im_start >= 0 && im_end >= 0 && eot >= 0);
    assert_int_equal(lfm_token_bos(t), bos);
    int32_t *ids = NULL;
    size_t n = 0;
    const char *s = "<|startoftext|><|im_start|>user";
    assert_int_equal(lfm_tokenize(t, s, strlen(s), true, true, &ids, &n), 0);
    assert_true(n >= 3);
    assert_int_equal(ids[0], bos);
    assert_int_equal(ids[1], im_start);
    free(ids);
    /* Without parse_special the text is plain text (and BOS is added). */
    assert_int_equal(lfm_tokenize(t, s, strlen(s), true, false, &ids, &n), 0);
    assert_int_equal(ids[0], bos);
    for (size_t i = 1; i < n; i++)
        assert_true(ids[i] != im_start && ids[i] != bos);
    free(ids);
    assert_true(lfm_token_is_eog(t, im_end));
    assert_true(lfm_token_is_eog(t, eot));
    assert_true(lfm_token_is_eog(t, lfm_token_eos(t)));
    assert_false(lfm_token_is_eog(t, im_start));
    assert_true(lfm_token_is_control(t, im_start));
    assert_false(lfm_token_is_control(t, lfm_token_lookup(t, "a", 1)));
    char buf[32];
    assert_int_equal(lfm_token_bytes(t, im_end, buf, sizeof buf), 10);
    assert_memory_equal(buf, "<|im_end|>", 10);
    assert_int_equal(lfm_token_bytes(t, -1, buf, sizeof buf), 0);
    assert_int_equal(lfm_token_bytes(t, 1 << 30, buf, sizeof buf), 0);
    lfm_tokenizer_free(t);
}

/* Hand-made vocabulary: merges apply lowest rank first; a piece that is a
 * whole vocabulary entry skips merging; longer special tokens win. */
static void test_merge_order(void **state) {
    (void)state;
    lfm_str toks[] = {{"a", 1},  {"b", 1},  {"c", 1},   {"d", 1},    {"ab", 2},
                      {"bc", 2}, {"cd", 2}, {"<s>", 3}, {"<s><", 4}, {"xy", 2}};
    int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 3, 4, 1};
    lfm_str m1[] = {{"b c", 3}, {"a b", 3}, {"c d", 3}};
    lfm_str m2[] = {{"a b", 3}, {"b c", 3}, {"c d", 3}};
    lfm_tokenizer *t = NULL;
    char err[128];
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(lfm_tokenizer_new(toks, types, 10, m1, 3, -1, -1, false, &t, err, sizeof err),
                     0);
    assert_int_equal(lfm_tokenize(t, "abcd", 4, true, true, &ids, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 3);
    free(ids);
    /* "xy" is in the vocabulary although no merge builds it. */
    assert_int_equal(lfm_tokenize(t, "xy", 2, true, true, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 9);
    free(ids);
    /* "<s><" (user-defined, longer) wins over "<s>"; user-defined tokens
     * split out even without parse_special, control ones do not. */
    assert_int_equal(lfm_tokenize(t, "a<s><d", 6, false, false, &ids, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 8);
    assert_int_equal(ids[2], 3);
    free(ids);
    assert_int_equal(lfm_tokenize(t, "<s>a", 4, false, true, &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 7);
    free(ids);
    lfm_tokenizer_free(t);
    assert_int_equal(lfm_tokenizer_new(toks, types, 10, m2, 3, -1, -1, false, &t, err, sizeof err),
                     0);
    assert_int_equal(lfm_tokenize(t, "abcd", 4, true, true, &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[1], 6);
    free(ids);
    lfm_tokenizer_free(t);
    /* Malformed inputs are rejected with a message. */
    lfm_str badm[] = {{"ab", 2}};
    assert_int_equal(
        lfm_tokenizer_new(toks, types, 10, badm, 1, -1, -1, false, &t, err, sizeof err),
        LFM_EFORMAT);
    assert_null(t);
    assert_true(strlen(err) > 0);
    assert_int_equal(lfm_tokenizer_new(toks, types, 10, m1, 3, 10, -1, false, &t, err, sizeof err),
                     LFM_EFORMAT);
    assert_int_equal(lfm_tokenizer_new(toks, types, 0, m1, 3, -1, -1, false, &t, err, sizeof err),
                     LFM_EINVAL);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_large_input(void **state) {
    (void)state;
    lfm_tokenizer *t = load_tok("lfm2-tiny-f32.gguf");
    static const char unit[] =
        "GNU General Public License, version 3; the Licensee shall be \"You\". "
        "naïve café 日本語のテキスト 🚀🔥 <|im_start|>user\n    return x**2  # c\r\n\t 12345 ";
    size_t ul = sizeof unit - 1, n = 1 << 20;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = unit[i % ul];
    double t0 = now_s();
    int32_t *ids = NULL;
    size_t m = 0;
    assert_int_equal(lfm_tokenize(t, big, n, true, true, &ids, &m), 0);
    double dt = now_s() - t0;
    fprintf(stderr, "tokenize 1 MiB: %zu tokens in %.3f s\n", m, dt);
    assert_true(m > n / 8);
    assert_true(dt < 20.0); /* Debug+ASan bound; Release is far below 1 s */
    free(ids);
    /* One piece of 200 KB letters (no spaces): the heap keeps BPE fast. */
    for (size_t i = 0; i < 200000; i++)
        big[i] = "etaoin"[i % 6];
    t0 = now_s();
    assert_int_equal(lfm_tokenize(t, big, 200000, false, true, &ids, &m), 0);
    fprintf(stderr, "tokenize 200 KB word: %zu tokens in %.3f s\n", m, now_s() - t0);
    free(ids);
    assert_roundtrip(t, big, 200000, true);
    free(big);
    lfm_tokenizer_free(t);
}

static bool valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!k || i + k > n) return false;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return false;
        i += k;
    }
    return true;
}

static void test_detok_stream(void **state) {
    (void)state;
    lfm_tokenizer *t = load_tok("lfm2-tiny-f32.gguf");
    const char *s = "Ünïcödé — 日本語 🚀🔥👍🏽 ok";
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(lfm_tokenize(t, s, strlen(s), false, true, &ids, &n), 0);
    /* Split characters exist in this vocabulary (CJK is byte tokens). */
    assert_true(n > strlen("Ünïcödé — 日本語 🚀🔥👍🏽 ok") / 2);
    lfm_detok d;
    lfm_detok_init(&d);
    tg_buf all = TG_BUF_INIT;
    int held = 0;
    for (size_t i = 0; i < n; i++) {
        tg_buf chunk = TG_BUF_INIT;
        lfm_detok_push(&d, t, ids[i], &chunk);
        assert_true(valid_utf8(chunk.data ? chunk.data : "", chunk.len));
        if (d.n_pending > 0) held++;
        tg_buf_append(&all, chunk.data ? chunk.data : "", chunk.len);
        tg_buf_free(&chunk);
    }
    lfm_detok_flush(&d, &all);
    assert_true(held > 0);
    assert_int_equal(all.len, strlen(s));
    assert_memory_equal(all.data, s, all.len);
    tg_buf_free(&all);
    free(ids);
    /* Invalid bytes become U+FFFD; an unfinished character too, at flush. */
    int32_t ff = lfm_token_lookup(t, "\xc3\xbf", 2); /* byte 0xFF */
    int32_t e6 = lfm_token_lookup(t, "\xc3\xa6", 2); /* byte 0xE6 */
    int32_t b9 = lfm_token_lookup(t, "\xc2\xb9", 2); /* byte 0xB9 */
    int32_t a = lfm_token_lookup(t, "a", 1);
    assert_true(ff >= 0 && e6 >= 0 && b9 >= 0 && a >= 0);
    lfm_detok_init(&d);
    tg_buf out = TG_BUF_INIT;
    lfm_detok_push(&d, t, a, &out);
    lfm_detok_push(&d, t, ff, &out);
    lfm_detok_push(&d, t, e6, &out);
    assert_string_equal(out.data, "a\xEF\xBF\xBD");
    lfm_detok_push(&d, t, b9, &out); /* E6 B9: still incomplete */
    assert_string_equal(out.data, "a\xEF\xBF\xBD");
    lfm_detok_push(&d, t, a, &out); /* E6 B9 'a': ill-formed */
    assert_string_equal(out.data, "a\xEF\xBF\xBD\xEF\xBF\xBD"
                                  "a");
    lfm_detok_push(&d, t, e6, &out);
    lfm_detok_flush(&d, &out);
    assert_string_equal(out.data, "a\xEF\xBF\xBD\xEF\xBF\xBD"
                                  "a\xEF\xBF\xBD");
    tg_buf_free(&out);
    lfm_tokenizer_free(t);
}

typedef enum { G_OK, G_NO_TOKENS, G_LLAMA, G_TYPES_SHORT, G_BOS_RANGE, G_BAD_MERGE } gcase;

static int tok_from_mem(gcase c, lfm_tokenizer **out, char *err, size_t errlen) {
    gguf_writer *w = gguf_w_new();
    gguf_w_add_str(w, "general.architecture", "lfm2");
    gguf_w_add_str(w, "tokenizer.ggml.model", c == G_LLAMA ? "llama" : "gpt2");
    const char *toks[] = {"<|startoftext|>", "a", "b", "ab", "\xc4\xa0"};
    int32_t types[] = {3, 1, 1, 1, 1};
    const char *merges[] = {c == G_BAD_MERGE ? "ab" : "a b"};
    if (c != G_NO_TOKENS) gguf_w_add_str_arr(w, "tokenizer.ggml.tokens", toks, 5);
    gguf_w_add_i32_arr(w, "tokenizer.ggml.token_type", types, c == G_TYPES_SHORT ? 4 : 5);
    gguf_w_add_str_arr(w, "tokenizer.ggml.merges", merges, 1);
    gguf_w_add_u32(w, "tokenizer.ggml.bos_token_id", c == G_BOS_RANGE ? 5 : 0);
    gguf_w_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    tg_buf b = TG_BUF_INIT;
    assert_int_equal(gguf_w_write_buf(w, &b, err, errlen), 0);
    gguf_w_free(w);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open_mem(b.data, b.len, &f, err, errlen), 0);
    int rc = lfm_tokenizer_from_gguf(f, out, err, errlen);
    gguf_close(f);
    tg_buf_free(&b);
    return rc;
}

static void test_from_gguf_errors(void **state) {
    (void)state;
    lfm_tokenizer *t = NULL;
    char err[256];
    assert_int_equal(tok_from_mem(G_OK, &t, err, sizeof err), 0);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(lfm_tokenize(t, "ab a", 4, true, true, &ids, &n), 0);
    assert_int_equal(n, 4); /* BOS, "ab", " " (byte token), "a" */
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 4);
    assert_int_equal(ids[3], 1);
    free(ids);
    lfm_tokenizer_free(t);
    static const struct {
        gcase c;
        const char *needle;
    } bad[] = {{G_NO_TOKENS, "tokenizer.ggml.tokens"},
               {G_LLAMA, "llama"},
               {G_TYPES_SHORT, "token_type"},
               {G_BOS_RANGE, "out of range"},
               {G_BAD_MERGE, "merge 0"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t = NULL;
        err[0] = 0;
        assert_int_equal(tok_from_mem(bad[i].c, &t, err, sizeof err), LFM_EFORMAT);
        assert_null(t);
        if (!strstr(err, bad[i].needle)) fail_msg("case %zu: error '%s'", i, err);
    }
}

/* Runs a shell command; returns its exit status and stdout (first 64 KB). */
static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `tidegate engine tokenize` prints exactly the fixture ids as one line. */
static void test_cli_tokenize(void **state) {
    (void)state;
    const char *bin = getenv("TIDEGATE_BIN");
    char binbuf[1024];
    if (!bin) {
        snprintf(binbuf, sizeof binbuf, "%s/tidegate", TG_BINARY_DIR);
        bin = binbuf;
    }
    FILE *probe = fopen(bin, "rb");
    if (!probe) skip();
    fclose(probe);
    static const char *const models[][2] = {{"tiny-f32", "lfm2-tiny-f32.gguf"},
                                            {"tiny-untied-q8_0", "lfm2-tiny-untied-q8_0.gguf"}};
    static const char *const cases[] = {"chat", "unicode", "tok_special", "tok_empty"};
    char tmp[] = "/tmp/tg_tok_cli_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    static char out[1 << 16];
    char cmd[4096], path[1024];
    for (size_t mi = 0; mi < 2; mi++) {
        for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
            snprintf(path, sizeof path, "%s/reference/%s/%s.json", TG_FIXTURES, models[mi][0],
                     cases[ci]);
            ljson *cj = read_json(path);
            const ljson *text = ljson_get(cj, "text"), *want = ljson_get(cj, "prompt_tokens");
            FILE *f = fopen(tmp, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(text->str, 1, text->len, f), text->len);
            fclose(f);
            tg_buf w = TG_BUF_INIT;
            tg_buf_putc(&w, '[');
            for (size_t i = 0; i < want->n; i++) {
                if (i) tg_buf_putc(&w, ',');
                tg_buf_append(&w, want->items[i]->str, want->items[i]->len);
            }
            tg_buf_puts(&w, "]\n");
            snprintf(cmd, sizeof cmd,
                     "'%s' engine tokenize -m '%s/models/%s' --text-file '%s' "
                     "2>/dev/null",
                     bin, TG_FIXTURES, models[mi][1], tmp);
            assert_int_equal(run(cmd, out, sizeof out), 0);
            assert_string_equal(out, w.data);
            tg_buf_free(&w);
            ljson_free(cj);
        }
    }
    /* Invalid UTF-8 is accepted too. */
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    fputs("a\xff\xfe", f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "'%s' engine tokenize -m '%s/models/lfm2-tiny-f32.gguf' "
             "--text-file '%s' 2>/dev/null",
             bin, TG_FIXTURES, tmp);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_true(out[0] == '[' && strchr(out, ']') != NULL);
    /* Bad flags: 2 with a usage line; unreadable model or text: 1. */
    snprintf(cmd, sizeof cmd, "'%s' engine tokenize --bogus 2>&1", bin);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "usage:"));
    snprintf(cmd, sizeof cmd, "'%s' engine tokenize -m 2>&1", bin);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s' engine tokenize -m /nonexistent.gguf --text-file '%s' 2>&1",
             bin, tmp);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "nonexistent"));
    snprintf(cmd, sizeof cmd, "'%s' engine tokenize -m '%s' --text-file '%s' 2>&1", bin, tmp, tmp);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    snprintf(cmd, sizeof cmd,
             "'%s' engine tokenize -m '%s/models/lfm2-tiny-f32.gguf' "
             "--text-file /nonexistent.txt 2>&1",
             bin, TG_FIXTURES);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    unlink(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases),    cmocka_unit_test(test_invalid_utf8_and_empty),
        cmocka_unit_test(test_bos_and_specials), cmocka_unit_test(test_merge_order),
        cmocka_unit_test(test_large_input),      cmocka_unit_test(test_detok_stream),
        cmocka_unit_test(test_cli_tokenize),     cmocka_unit_test(test_from_gguf_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
