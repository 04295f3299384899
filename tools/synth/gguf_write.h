/* gguf_write: a small GGUF v3 writer (version settable for tests).
 *
 * Metadata is serialized as it is added; tensors are recorded with their
 * shape and either a copy of their bytes or a fill callback that produces
 * them at write time, so a multi-gigabyte model never has to sit in memory.
 * The writer does NOT validate what it is given (duplicate keys, odd
 * alignments): tests use it to build malformed files on purpose. */
#ifndef LFM_GGUF_WRITE_H
#define LFM_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"
#include "engine/gguf.h"

typedef struct gguf_writer gguf_writer;

/* Produces tensor bytes at write time, a few rows at a time (a row is
 * dims[0] values; rows are counted over dims[1..]): fills buf with rows
 * [row0, row0 + n_rows), nbytes in all. Returns 0, or -1 to abort. */
typedef int (*gguf_w_fill_fn)(void *ctx, size_t tensor_index, uint64_t row0, uint64_t n_rows,
                              void *buf, size_t nbytes);

gguf_writer *gguf_w_new(void);
void gguf_w_free(gguf_writer *w);

/* Header version written (default 3). */
void gguf_w_set_version(gguf_writer *w, uint32_t version);
/* Padding used for the data section (default 32). Does NOT add the
 * general.alignment key: add it yourself when not 32. */
void gguf_w_set_alignment(gguf_writer *w, uint64_t alignment);

void gguf_w_add_u8(gguf_writer *w, const char *key, uint8_t v);
void gguf_w_add_i8(gguf_writer *w, const char *key, int8_t v);
void gguf_w_add_u16(gguf_writer *w, const char *key, uint16_t v);
void gguf_w_add_i16(gguf_writer *w, const char *key, int16_t v);
void gguf_w_add_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_w_add_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_w_add_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_w_add_i64(gguf_writer *w, const char *key, int64_t v);
void gguf_w_add_f32(gguf_writer *w, const char *key, float v);
void gguf_w_add_f64(gguf_writer *w, const char *key, double v);
void gguf_w_add_bool(gguf_writer *w, const char *key, bool v);
void gguf_w_add_str(gguf_writer *w, const char *key, const char *s);
void gguf_w_add_strn(gguf_writer *w, const char *key, const char *s, size_t len);
/* Numeric/bool array: n elements of elem_type, raw little-endian in data. */
void gguf_w_add_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data,
                    uint64_t n);
void gguf_w_add_i32_arr(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
void gguf_w_add_str_arr(gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* String array with explicit lengths (strings may hold any bytes). */
void gguf_w_add_strn_arr(gguf_writer *w, const char *key, const gguf_str *strs, uint64_t n);

/* Bytes of a tensor of this shape and ggml type, or 0 if the type is unknown
 * or dims[0] is not a multiple of its block size. */
uint64_t gguf_w_tensor_bytes(uint32_t type, uint32_t n_dims, const uint64_t *dims);

/* Adds a tensor whose bytes are copied now (nbytes must equal
 * gguf_w_tensor_bytes). Returns its index, or -1 on a bad shape/type/size. */
int gguf_w_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                      uint32_t type, const void *data, size_t nbytes);
/* Adds a tensor whose bytes come from fill(ctx, index, ...) during the write. */
int gguf_w_add_tensor_fill(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                           uint32_t type, gguf_w_fill_fn fill, void *ctx);

/* Writes the whole file. Returns 0, or -1 with a one-line message. */
int gguf_w_write_file(gguf_writer *w, const char *path, char *err, size_t errlen);
/* Same into memory (out is appended to). */
int gguf_w_write_buf(gguf_writer *w, tg_buf *out, char *err, size_t errlen);

#endif
