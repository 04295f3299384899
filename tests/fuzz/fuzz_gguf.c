/* fuzz_gguf: the GGUF reader on arbitrary bytes. Besides "never crash", it
 * checks what the reader promises: a failure always gives one line naming
 * the input and an offset; a success yields only in-bounds pointers (every
 * string, array and tensor byte is touched so ASan sees any overrun), unique
 * keys and tensor names, and sizes that agree with the quant module. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant.h"

static volatile unsigned sink;

static void in_bounds(const uint8_t *data, size_t size, const void *p, uint64_t n) {
    const uint8_t *q = p;
    if (n == 0) return;
    if (q < data || q > data + size || n > (uint64_t)(data + size - q)) abort();
    sink += q[0] + q[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    char err[512];
    err[0] = 0;
    if (gguf_open_mem(data, size, &f, err, sizeof err) != 0) {
        if (f || strncmp(err, "<memory>: ", 10) || strchr(err, '\n') || !strstr(err, " at offset "))
            abort();
        return 0;
    }
    if (gguf_alignment(f) == 0 || (gguf_alignment(f) & (gguf_alignment(f) - 1))) abort();
    if (gguf_data_offset(f) > size) abort();
    for (size_t i = 0; i < gguf_kv_count(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        in_bounds(data, size, kv->key.ptr, kv->key.len);
        char key[256];
        if (kv->key.len < sizeof key) {
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = 0;
            if (gguf_find_kv(f, key) != kv) abort(); /* keys are unique */
            uint64_t u;
            int64_t s;
            double d;
            bool b;
            gguf_str str;
            gguf_get_u64(f, key, &u, err, sizeof err);
            gguf_get_i64(f, key, &s, err, sizeof err);
            gguf_get_f64(f, key, &d, err, sizeof err);
            gguf_get_bool(f, key, &b, err, sizeof err);
            if (gguf_get_str(f, key, &str, err, sizeof err) == 0)
                in_bounds(data, size, str.ptr, str.len);
        }
        if (kv->type == GGUF_T_STRING) in_bounds(data, size, kv->v.s.ptr, kv->v.s.len);
        if (kv->type != GGUF_T_ARRAY) continue;
        if (kv->arr_type == GGUF_T_STRING) {
            for (uint64_t j = 0; j < kv->arr_n; j++)
                in_bounds(data, size, kv->arr_strs[j].ptr, kv->arr_strs[j].len);
        } else {
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                int64_t v;
                gguf_arr_get_i64(kv, j, &v);
            }
        }
    }
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        in_bounds(data, size, t->name.ptr, t->name.len);
        in_bounds(data, size, t->data, t->nbytes);
        if (!lq_type_supported(t->type) || t->n_dims < 1 || t->n_dims > 4) abort();
        uint64_t rows = t->dims[1] * t->dims[2] * t->dims[3];
        if (t->n_elems != t->dims[0] * rows) abort();
        if (t->dims[0] <= 4096) {
            if (t->nbytes != lq_row_bytes((lq_type)t->type, (int64_t)t->dims[0]) * rows) abort();
            /* The decoders must take any bytes (NaN scales and all). */
            float row[4096];
            lq_dequant_row((lq_type)t->type, t->data, row, (int64_t)t->dims[0]);
        }
        char name[64];
        memcpy(name, t->name.ptr, t->name.len); /* names are < 64 bytes */
        name[t->name.len] = 0;
        if (gguf_find_tensor(f, name) != t) abort();
    }
    gguf_close(f);
    return 0;
}
