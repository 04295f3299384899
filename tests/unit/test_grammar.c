/* Unit tests for engine/schema.c and engine/grammar.c: the schema subset
 * and its errors (the keyword is named), exact mask/accept agreement, and a
 * property test: for a set of schemas, random walks over the mask (many
 * seeds) and the random-weight fixture model through the scheduler produce
 * only outputs that parse and validate, or stop at the length limit. */
/* tg-test-links: lfm */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/ljson.h"
#include "engine/lfm_grammar.h"
#include "engine/lfm_sched.h"

#define F32_MODEL TG_FIXTURES "/models/lfm2-tiny-f32.gguf"

static const char *const k_schemas[] = {
    /* OpenAI strict style: every property required, closed objects. */
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":"
    "\"integer\"},\"ok\":{\"type\":\"boolean\"}},\"required\":[\"name\",\"age\",\"ok\"],"
    "\"additionalProperties\":false}",
    /* enum, const, nullable via type list, number, array of objects. */
    "{\"type\":\"object\",\"properties\":{\"unit\":{\"enum\":[\"c\",\"f\",\"kelvin\",1,12,null]},"
    "\"v\":{\"type\":\"number\"},\"tag\":{\"const\":\"x\\\"y\"},\"n\":{\"type\":[\"string\","
    "\"null\"]},\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"k\":{\"type\":\"string\"}},\"required\":[\"k\"],\"additionalProperties\":false}}},"
    "\"required\":[\"unit\",\"v\",\"tag\",\"n\",\"items\"],\"additionalProperties\":false}",
    /* anyOf of object shapes, $defs/$ref recursion, optional property. */
    "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"val\":{\"type\":\"integer\"},"
    "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"val\"],"
    "\"additionalProperties\":false}},\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":\"object\","
    "\"properties\":{\"err\":{\"type\":\"string\"}},\"required\":[\"err\"],"
    "\"additionalProperties\":false}]}",
    /* A bare array of numbers and a top-level string/number anyOf. */
    "{\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}}",
};
#define N_SCHEMAS (sizeof k_schemas / sizeof k_schemas[0])

/* ------------------------------------------------------- validator -- */

static bool json_equal(const ljson *a, const ljson *b) {
    tg_buf x = TG_BUF_INIT, y = TG_BUF_INIT;
    ljson_write(&x, a, LJSON_COMPACT);
    ljson_write(&y, b, LJSON_COMPACT);
    bool eq = x.len == y.len && !memcmp(x.data, y.data, x.len);
    tg_buf_free(&x);
    tg_buf_free(&y);
    return eq;
}

static bool validate(const ljson *v, const ljson *s, const ljson *root);

static bool type_ok(const ljson *v, const char *t, const ljson *s, const ljson *root) {
    if (!strcmp(t, "string")) return v->type == LJ_STR;
    if (!strcmp(t, "null")) return v->type == LJ_NULL;
    if (!strcmp(t, "boolean")) return v->type == LJ_TRUE || v->type == LJ_FALSE;
    if (!strcmp(t, "number")) return v->type == LJ_NUM;
    if (!strcmp(t, "integer")) return v->type == LJ_NUM && !strpbrk(v->str, ".eE");
    if (!strcmp(t, "array")) {
        if (v->type != LJ_ARR) return false;
        const ljson *it = ljson_get(s, "items");
        for (size_t i = 0; it && i < v->n; i++)
            if (!validate(v->items[i], it, root)) return false;
        return true;
    }
    if (!strcmp(t, "object")) {
        if (v->type != LJ_OBJ) return false;
        const ljson *props = ljson_get(s, "properties"), *req = ljson_get(s, "required"),
                    *ap = ljson_get(s, "additionalProperties");
        for (size_t i = 0; req && i < req->n; i++)
            if (!ljson_get(v, req->items[i]->str)) return false;
        for (size_t i = 0; i < v->n; i++) {
            const ljson *ps = props ? ljson_get(props, v->keys[i]->str) : NULL;
            if (!ps && ap && ap->type == LJ_FALSE) return false;
            if (ps && !validate(v->items[i], ps, root)) return false;
        }
        return true;
    }
    return false;
}

static bool validate(const ljson *v, const ljson *s, const ljson *root) {
    const ljson *x;
    if ((x = ljson_get(s, "$ref"))) {
        if (!strcmp(x->str, "#")) return validate(v, root, root);
        return validate(v, ljson_get(ljson_get(root, "$defs"), x->str + 8), root);
    }
    if ((x = ljson_get(s, "const"))) return json_equal(v, x);
    if ((x = ljson_get(s, "enum"))) {
        for (size_t i = 0; i < x->n; i++)
            if (json_equal(v, x->items[i])) return true;
        return false;
    }
    if ((x = ljson_get(s, "anyOf"))) {
        for (size_t i = 0; i < x->n; i++)
            if (validate(v, x->items[i], root)) return true;
        return false;
    }
    if ((x = ljson_get(s, "type"))) {
        if (x->type == LJ_STR) return type_ok(v, x->str, s, root);
        for (size_t i = 0; i < x->n; i++)
            if (type_ok(v, x->items[i]->str, s, root)) return true;
        return false;
    }
    return true;
}

static bool parses_and_validates(const char *text, size_t len, const char *schema) {
    ljson *s = ljson_parse(schema, strlen(schema), NULL, 0);
    ljson *v = ljson_parse(text, len, NULL, 0);
    bool ok = s && v && validate(v, s, s);
    if (!ok) fprintf(stderr, "invalid output: %.*s\n", (int)len, text);
    ljson_free(s);
    ljson_free(v);
    return ok;
}

/* ------------------------------------------------------------ setup -- */

typedef struct {
    lfm_model *m;
    lfm_vocab_index *vi;
} fx;

static int setup(void **st) {
    fx *f = calloc(1, sizeof *f);
    char err[256];
    if (lfm_model_load(F32_MODEL, NULL, &f->m, err, sizeof err) != LFM_OK) return -1;
    f->vi = lfm_vocab_index_new(lfm_model_tokenizer(f->m));
    *st = f;
    return f->vi ? 0 : -1;
}

static int teardown(void **st) {
    fx *f = *st;
    lfm_vocab_index_free(f->vi);
    lfm_model_free(f->m);
    free(f);
    return 0;
}

static lfm_schema *compile_ok(const char *json) {
    lfm_schema *s = NULL;
    char kw[64], err[256];
    int rc = lfm_schema_compile(json, strlen(json), 0, &s, kw, sizeof kw, err, sizeof err);
    if (rc != LFM_OK) fail_msg("compile failed: %s", err);
    return s;
}

/* -------------------------------------------------------------- tests -- */

static void test_unsupported_keywords_named(void **st) {
    (void)st;
    static const struct {
        const char *schema, *kw;
    } cases[] = {
        {"{\"type\":\"string\",\"pattern\":\"^a\"}", "pattern"},
        {"{\"type\":\"string\",\"minLength\":2}", "minLength"},
        {"{\"allOf\":[{\"type\":\"string\"}]}", "allOf"},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"email\"}}}",
         "format"},
        {"{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":2}", "maxItems"},
        {"{\"oneOf\":[{\"type\":\"string\"}]}", "oneOf"},
        {"{\"$ref\":\"#/$defs/missing\"}", "$ref"},
        {"{\"$ref\":\"http://x/y\"}", "$ref"},
        {"{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}", "required"},
        {"{\"type\":\"what\"}", "type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lfm_schema *s = NULL;
        char kw[64], err[256];
        int rc = lfm_schema_compile(cases[i].schema, strlen(cases[i].schema), 0, &s, kw, sizeof kw,
                                    err, sizeof err);
        if (rc != LFM_EINVAL) fail_msg("accepted: %s", cases[i].schema);
        assert_null(s);
        assert_string_equal(kw, cases[i].kw);
        assert_non_null(strstr(err, "at /"));
    }
    /* Not JSON: no keyword, a message. */
    lfm_schema *s = NULL;
    char kw[64], err[256];
    assert_int_equal(lfm_schema_compile("{", 1, 0, &s, kw, sizeof kw, err, sizeof err), LFM_EINVAL);
    assert_string_equal(kw, "");
    /* Internal wrappers may bound arrays. */
    const char *in =
        "{\"type\":\"array\",\"items\":{\"type\":\"null\"},\"minItems\":1,\"maxItems\":1}";
    assert_int_equal(
        lfm_schema_compile(in, strlen(in), LFM_SCHEMA_INTERNAL, &s, kw, sizeof kw, err, sizeof err),
        LFM_OK);
    lfm_schema_free(s);
}

/* Feeds text token by token (greedy longest vocabulary match is not
 * needed: single bytes exist in every byte-level vocabulary). */
static bool accepts_text(const lfm_vocab_index *vi, const lfm_tokenizer *t, const lfm_schema *s,
                         const char *text, bool *can_end) {
    lfm_constraint *c = lfm_constraint_new(s, vi, -1, -1);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(lfm_tokenize(t, text, strlen(text), false, false, &ids, &n), LFM_OK);
    bool ok = true;
    uint32_t *bits = calloc(((size_t)lfm_vocab_size(t) + 31) / 32, 4);
    for (size_t i = 0; i < n && ok; i++) {
        lfm_constraint_mask(c, bits);
        bool allowed = bits[ids[i] >> 5] >> (ids[i] & 31) & 1;
        ok = lfm_constraint_accept(c, ids[i]);
        assert_int_equal(allowed, ok); /* mask and accept agree */
    }
    *can_end = ok && lfm_constraint_can_end(c);
    free(bits);
    free(ids);
    lfm_constraint_free(c);
    return ok;
}

static void test_known_texts(void **st) {
    fx *f = *st;
    const lfm_tokenizer *t = lfm_model_tokenizer(f->m);
    lfm_schema *s0 = compile_ok(k_schemas[0]);
    bool end;
    assert_true(accepts_text(f->vi, t, s0,
                             "{\"name\":\"Bo\\u00e9 \\\"x\\\"\",\"age\":-12,\"ok\":true}", &end));
    assert_true(end);
    assert_true(
        accepts_text(f->vi, t, s0, "{ \"name\" : \"a\" ,\n \"age\": 0, \"ok\": false }", &end));
    assert_true(end);
    assert_true(accepts_text(f->vi, t, s0, "{\"name\":\"a\",\"age\":1", &end));
    assert_false(end);                                             /* unfinished */
    assert_false(accepts_text(f->vi, t, s0, "{\"age\":1}", &end)); /* order / required */
    assert_false(accepts_text(f->vi, t, s0, "{\"name\":\"a\",\"age\":1.5", &end)); /* integer */
    assert_false(accepts_text(f->vi, t, s0, "{\"name\":\"a\",\"age\":01", &end)); /* leading zero */
    assert_false(accepts_text(f->vi, t, s0, "{\"name\":\"a\nb\"", &end)); /* raw control char */
    assert_false(accepts_text(f->vi, t, s0, "{\"nam\":", &end));
    assert_false(accepts_text(f->vi, t, s0, "{                    \"name\"", &end)); /* ws bound */
    lfm_schema_free(s0);
    lfm_schema *s1 = compile_ok(k_schemas[1]);
    assert_true(accepts_text(f->vi, t, s1,
                             "{\"unit\":12,\"v\":-1.5e+3,\"tag\":\"x\\\"y\",\"n\":null,\"items\":[{"
                             "\"k\":\"\"}]}",
                             &end));
    assert_true(end);
    assert_false(accepts_text(f->vi, t, s1, "{\"unit\":13", &end));
    assert_false(accepts_text(f->vi, t, s1, "{\"unit\":\"kel\"", &end));
    lfm_schema_free(s1);
    lfm_schema *s3 = compile_ok(k_schemas[3]);
    assert_true(accepts_text(f->vi, t, s3, "[1,\"a\",2.5]", &end));
    assert_true(end);
    lfm_schema_free(s3);
    /* json_object mode: any object. */
    lfm_schema *any = NULL;
    assert_int_equal(lfm_schema_compile(NULL, 0, LFM_SCHEMA_ANY, &any, NULL, 0, NULL, 0), LFM_OK);
    assert_true(accepts_text(f->vi, t, any, "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", &end));
    assert_true(end);
    assert_false(accepts_text(f->vi, t, any, "[1]", &end));
    lfm_schema_free(any);
}

static uint64_t rng_next(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Random walks: pick uniformly among allowed tokens (an adversarial
 * "model"), often preferring to close (EOG when allowed) so walks finish. */
static void test_random_walks_validate(void **st) {
    fx *f = *st;
    const lfm_tokenizer *t = lfm_model_tokenizer(f->m);
    int nv = lfm_vocab_size(t);
    uint32_t *bits = calloc(((size_t)nv + 31) / 32, 4);
    int32_t *allowed = malloc((size_t)nv * sizeof *allowed);
    int finished = 0;
    for (size_t k = 0; k < N_SCHEMAS; k++) {
        lfm_schema *s = compile_ok(k_schemas[k]);
        for (uint64_t seed = 1; seed <= 150; seed++) {
            uint64_t r = seed * 1000 + k;
            lfm_constraint *c = lfm_constraint_new(s, f->vi, -1, -1);
            tg_buf out = TG_BUF_INIT;
            bool done = false;
            for (int step = 0; step < 300 && !done; step++) {
                int n = lfm_constraint_mask(c, bits);
                assert_true(n > 0);
                int m = 0;
                bool eog_ok = false;
                for (int i = 0; i < nv; i++)
                    if (bits[i >> 5] >> (i & 31) & 1) {
                        if (lfm_token_is_eog(t, i))
                            eog_ok = true;
                        else
                            allowed[m++] = i;
                    }
                assert_int_equal(eog_ok, lfm_constraint_can_end(c));
                if (eog_ok && (m == 0 || rng_next(&r) % 4 == 0)) {
                    done = true;
                    break;
                }
                assert_true(m > 0);
                int32_t tok = allowed[rng_next(&r) % (uint64_t)m];
                assert_true(lfm_constraint_accept(c, tok));
                char b[256];
                size_t bl = lfm_token_bytes(t, tok, b, sizeof b);
                tg_buf_append(&out, b, bl);
            }
            if (done) {
                finished++;
                assert_true(parses_and_validates(out.data, out.len, k_schemas[k]));
            }
            tg_buf_free(&out);
            lfm_constraint_free(c);
        }
        lfm_schema_free(s);
    }
    fprintf(stderr, "random walks: %d of %zu finished, all valid\n", finished, N_SCHEMAS * 150);
    assert_true(finished > (int)(N_SCHEMAS * 150) / 4);
    free(bits);
    free(allowed);
}

/* ---------------------------------------------------- through sched -- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_buf text;
    bool done;
    lfm_finish finish;
} sink;

static void on_event(void *user, const lfm_event *ev) {
    sink *k = user;
    pthread_mutex_lock(&k->mu);
    if (ev->type == LFM_EV_TEXT) tg_buf_append(&k->text, ev->text, ev->len);
    if (ev->type == LFM_EV_DONE) {
        k->done = true;
        k->finish = ev->finish;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
}

static void test_fixture_model_outputs_validate(void **st) {
    fx *f = *st;
    char err[256];
    lfm_sched_opts o;
    lfm_sched_opts_default(&o);
    o.max_active = 4;
    lfm_sched *sc = NULL;
    assert_int_equal(lfm_sched_new(f->m, &o, &sc, err, sizeof err), LFM_OK);
    static const int32_t prompt[] = {1, 300, 301, 302, 303};
    int n_valid = 0, n_length = 0;
    for (size_t k = 0; k < N_SCHEMAS; k++) {
        lfm_schema *s = compile_ok(k_schemas[k]);
        enum { SEEDS = 8 };
        sink ks[SEEDS];
        for (int i = 0; i < SEEDS; i++) {
            memset(&ks[i], 0, sizeof ks[i]);
            pthread_mutex_init(&ks[i].mu, NULL);
            pthread_cond_init(&ks[i].cv, NULL);
            lfm_job_params p = {0};
            p.prompt = prompt;
            p.n_prompt = 5;
            p.max_tokens = 96;
            lfm_sampler_defaults(&p.sampling);
            p.sampling.temperature = 1.5f; /* random weights: explore */
            p.sampling.min_p = 0;
            p.sampling.seed = 100 + (uint64_t)i;
            p.cb = on_event;
            p.user = &ks[i];
            p.constraint = lfm_constraint_new(s, f->vi, -1, -1);
            assert_int_equal(lfm_sched_submit(sc, &p, NULL), LFM_OK);
        }
        for (int i = 0; i < SEEDS; i++) {
            pthread_mutex_lock(&ks[i].mu);
            while (!ks[i].done)
                pthread_cond_wait(&ks[i].cv, &ks[i].mu);
            pthread_mutex_unlock(&ks[i].mu);
            if (ks[i].finish == LFM_FINISH_STOP) {
                assert_true(parses_and_validates(ks[i].text.data, ks[i].text.len, k_schemas[k]));
                n_valid++;
            } else {
                assert_int_equal(ks[i].finish, LFM_FINISH_LENGTH);
                n_length++;
            }
            tg_buf_free(&ks[i].text);
            pthread_mutex_destroy(&ks[i].mu);
            pthread_cond_destroy(&ks[i].cv);
        }
        lfm_schema_free(s);
    }
    fprintf(stderr, "fixture model: %d valid, %d cut at length\n", n_valid, n_length);
    lfm_sched_free(sc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsupported_keywords_named),
        cmocka_unit_test(test_known_texts),
        cmocka_unit_test(test_random_walks_validate),
        cmocka_unit_test(test_fixture_model_outputs_validate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
