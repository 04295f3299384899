/* gguf_write: GGUF v3 writer. See gguf_write.h. */
#include "tools/synth/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"

typedef struct {
    char *name;
    uint32_t n_dims;
    uint64_t dims[4];
    uint32_t type;
    uint64_t nbytes;
    uint64_t offset; /* within the data section, set at write time */
    void *copy;      /* owned bytes, or NULL when fill is used */
    gguf_w_fill_fn fill;
    void *ctx;
} w_tensor;

struct gguf_writer {
    uint32_t version;
    uint64_t alignment;
    uint64_t n_kv;
    tg_buf kv; /* serialized kv pairs */
    w_tensor *t;
    size_t n_t, cap_t;
};

gguf_writer *gguf_w_new(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->version = 3;
    w->alignment = 32;
    return w;
}

void gguf_w_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].copy);
    }
    free(w->t);
    tg_buf_free(&w->kv);
    free(w);
}

void gguf_w_set_version(gguf_writer *w, uint32_t version) {
    w->version = version;
}
void gguf_w_set_alignment(gguf_writer *w, uint64_t alignment) {
    w->alignment = alignment ? alignment : 1; /* 0 would divide by zero */
}

/* ------------------------------------------------------------ encoding -- */

static void put_le(tg_buf *b, uint64_t v, int n) {
    unsigned char tmp[8];
    for (int i = 0; i < n; i++)
        tmp[i] = (unsigned char)(v >> (8 * i));
    tg_buf_append(b, tmp, (size_t)n);
}

static void put_str(tg_buf *b, const char *s, size_t len) {
    put_le(b, len, 8);
    if (len) tg_buf_append(b, s, len);
}

static void kv_head(gguf_writer *w, const char *key, gguf_vtype t) {
    put_str(&w->kv, key, strlen(key));
    put_le(&w->kv, (uint32_t)t, 4);
    w->n_kv++;
}

#define SCALAR(fn, ctype, vt, n)                                                                   \
    void fn(gguf_writer *w, const char *key, ctype v) {                                            \
        kv_head(w, key, vt);                                                                       \
        put_le(&w->kv, (uint64_t)v, n);                                                            \
    }
SCALAR(gguf_w_add_u8, uint8_t, GGUF_T_UINT8, 1)
SCALAR(gguf_w_add_i8, int8_t, GGUF_T_INT8, 1)
SCALAR(gguf_w_add_u16, uint16_t, GGUF_T_UINT16, 2)
SCALAR(gguf_w_add_i16, int16_t, GGUF_T_INT16, 2)
SCALAR(gguf_w_add_u32, uint32_t, GGUF_T_UINT32, 4)
SCALAR(gguf_w_add_i32, int32_t, GGUF_T_INT32, 4)
SCALAR(gguf_w_add_u64, uint64_t, GGUF_T_UINT64, 8)
SCALAR(gguf_w_add_i64, int64_t, GGUF_T_INT64, 8)
#undef SCALAR

void gguf_w_add_f32(gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    kv_head(w, key, GGUF_T_FLOAT32);
    put_le(&w->kv, bits, 4);
}

void gguf_w_add_f64(gguf_writer *w, const char *key, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    kv_head(w, key, GGUF_T_FLOAT64);
    put_le(&w->kv, bits, 8);
}

void gguf_w_add_bool(gguf_writer *w, const char *key, bool v) {
    kv_head(w, key, GGUF_T_BOOL);
    put_le(&w->kv, v ? 1 : 0, 1);
}

void gguf_w_add_str(gguf_writer *w, const char *key, const char *s) {
    gguf_w_add_strn(w, key, s, strlen(s));
}

void gguf_w_add_strn(gguf_writer *w, const char *key, const char *s, size_t len) {
    kv_head(w, key, GGUF_T_STRING);
    put_str(&w->kv, s, len);
}

void gguf_w_add_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data,
                    uint64_t n) {
    kv_head(w, key, GGUF_T_ARRAY);
    put_le(&w->kv, (uint32_t)elem_type, 4);
    put_le(&w->kv, n, 8);
    /* Host order is little-endian on every target we build for (x86-64,
     * aarch64); the reader decodes explicitly either way. */
    int es_signed = gguf_vtype_size(elem_type);
    size_t es = es_signed > 0 ? (size_t)es_signed : 0;
    if (n && es) tg_buf_append(&w->kv, data, (size_t)n * es);
}

void gguf_w_add_i32_arr(gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    kv_head(w, key, GGUF_T_ARRAY);
    put_le(&w->kv, GGUF_T_INT32, 4);
    put_le(&w->kv, n, 8);
    for (uint64_t i = 0; i < n; i++)
        put_le(&w->kv, (uint32_t)v[i], 4);
}

void gguf_w_add_str_arr(gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    kv_head(w, key, GGUF_T_ARRAY);
    put_le(&w->kv, GGUF_T_STRING, 4);
    put_le(&w->kv, n, 8);
    for (uint64_t i = 0; i < n; i++)
        put_str(&w->kv, strs[i], strlen(strs[i]));
}

void gguf_w_add_strn_arr(gguf_writer *w, const char *key, const gguf_str *strs, uint64_t n) {
    kv_head(w, key, GGUF_T_ARRAY);
    put_le(&w->kv, GGUF_T_STRING, 4);
    put_le(&w->kv, n, 8);
    for (uint64_t i = 0; i < n; i++)
        put_str(&w->kv, strs[i].ptr, (size_t)strs[i].len);
}

/* ------------------------------------------------------------- tensors -- */

uint64_t gguf_w_tensor_bytes(uint32_t type, uint32_t n_dims, const uint64_t *dims) {
    if (!lq_type_supported(type) || n_dims < 1 || n_dims > 4) return 0;
    int64_t bv = lq_block_values((lq_type)type);
    if (bv <= 0 || dims[0] == 0 || dims[0] % (uint64_t)bv) return 0;
    uint64_t rows = 1;
    for (uint32_t d = 1; d < n_dims; d++) {
        if (dims[d] == 0 || rows > UINT64_MAX / dims[d]) return 0;
        rows *= dims[d];
    }
    uint64_t row = (dims[0] / (uint64_t)bv) * lq_block_bytes((lq_type)type);
    if (row && rows > UINT64_MAX / row) return 0;
    return row * rows;
}

static int add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                      uint32_t type) {
    uint64_t nbytes = gguf_w_tensor_bytes(type, n_dims, dims);
    if (nbytes == 0) return -1;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        w_tensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) abort();
        w->t = t;
        w->cap_t = cap;
    }
    w_tensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) abort();
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++)
        t->dims[d] = d < (int)n_dims ? dims[d] : 1;
    t->type = type;
    t->nbytes = nbytes;
    return (int)w->n_t++;
}

int gguf_w_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                      uint32_t type, const void *data, size_t nbytes) {
    if (gguf_w_tensor_bytes(type, n_dims, dims) != nbytes) return -1;
    int i = add_tensor(w, name, n_dims, dims, type);
    if (i < 0) return -1;
    w->t[i].copy = malloc(nbytes);
    if (!w->t[i].copy) abort();
    memcpy(w->t[i].copy, data, nbytes);
    return i;
}

int gguf_w_add_tensor_fill(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                           uint32_t type, gguf_w_fill_fn fill, void *ctx) {
    int i = add_tensor(w, name, n_dims, dims, type);
    if (i < 0) return -1;
    w->t[i].fill = fill;
    w->t[i].ctx = ctx;
    return i;
}

/* --------------------------------------------------------------- write -- */

/* Output goes to a FILE or to a tg_buf through one tiny sink. */
typedef struct {
    FILE *fp;
    tg_buf *buf;
    uint64_t written;
} sink;

static int sink_put(sink *s, const void *p, size_t n) {
    s->written += n;
    if (s->buf) {
        tg_buf_append(s->buf, p, n);
        return 0;
    }
    return fwrite(p, 1, n, s->fp) == n ? 0 : -1;
}

static int sink_pad(sink *s, uint64_t align) {
    static const unsigned char zeros[64];
    uint64_t pad = (align - s->written % align) % align;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        if (sink_put(s, zeros, k)) return -1;
        pad -= k;
    }
    return 0;
}

static int write_all(gguf_writer *w, sink *s, char *err, size_t errlen) {
    tg_buf h = TG_BUF_INIT;
    tg_buf_append(&h, "GGUF", 4);
    put_le(&h, w->version, 4);
    put_le(&h, w->n_t, 8);
    put_le(&h, w->n_kv, 8);
    if (w->kv.len) tg_buf_append(&h, w->kv.data, w->kv.len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w_tensor *t = &w->t[i];
        t->offset = off;
        off += (t->nbytes + w->alignment - 1) / w->alignment * w->alignment;
        put_str(&h, t->name, strlen(t->name));
        put_le(&h, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_le(&h, t->dims[d], 8);
        put_le(&h, t->type, 4);
        put_le(&h, t->offset, 8);
    }
    int rc = sink_put(s, h.data, h.len);
    tg_buf_free(&h);
    if (rc || sink_pad(s, w->alignment)) goto io;
    uint64_t data_start = s->written;
    void *scratch = NULL;
    size_t scratch_cap = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const w_tensor *t = &w->t[i];
        if (s->written - data_start != t->offset) goto io_free;
        if (t->copy) {
            if (sink_put(s, t->copy, (size_t)t->nbytes)) goto io_free;
        } else {
            /* Chunks of whole rows, ~8 MiB, so huge tensors stream through. */
            uint64_t rows = t->dims[1] * t->dims[2] * t->dims[3];
            uint64_t row_bytes = t->nbytes / rows;
            uint64_t chunk = (8u << 20) / row_bytes;
            if (chunk == 0) chunk = 1;
            for (uint64_t r = 0; r < rows; r += chunk) {
                uint64_t n = rows - r < chunk ? rows - r : chunk;
                size_t nb = (size_t)(n * row_bytes);
                if (nb > scratch_cap) {
                    void *p = realloc(scratch, nb);
                    if (!p) abort();
                    scratch = p;
                    scratch_cap = nb;
                }
                if (t->fill(t->ctx, i, r, n, scratch, nb)) {
                    free(scratch);
                    if (err && errlen) snprintf(err, errlen, "tensor %s: fill failed", t->name);
                    return -1;
                }
                if (sink_put(s, scratch, nb)) goto io_free;
            }
        }
        if (sink_pad(s, w->alignment)) goto io_free;
    }
    free(scratch);
    return 0;
io_free:
    free(scratch);
io:
    if (err && errlen) snprintf(err, errlen, "write failed: %s", strerror(errno));
    return -1;
}

int gguf_w_write_buf(gguf_writer *w, tg_buf *out, char *err, size_t errlen) {
    sink s = {NULL, out, 0};
    return write_all(w, &s, err, errlen);
}

int gguf_w_write_file(gguf_writer *w, const char *path, char *err, size_t errlen) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    sink s = {fp, NULL, 0};
    int rc = write_all(w, &s, err, errlen);
    if (fclose(fp) != 0 && rc == 0) {
        if (err && errlen) snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err && errlen ? err : "");
        if (err && errlen) snprintf(err, errlen, "%s: %s", path, msg);
        remove(path);
    }
    return rc;
}
