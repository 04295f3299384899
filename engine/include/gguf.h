/* gguf: reader for GGUF v2/v3 model files over mmap (and over memory, for
 * fuzzing). A model file is untrusted input: every count, offset, size and
 * string length is checked before use, and any failure produces a one-line
 * error naming the field or tensor and the byte offset.
 *
 * All pointers returned point into the mapped file (or into arrays owned by
 * the gguf_file) and stay valid until gguf_close. Strings are NOT
 * NUL-terminated in the file: use gguf_str.len. */
#ifndef LFM_GGUF_H
#define LFM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GGUF_T_UINT8 = 0,
    GGUF_T_INT8 = 1,
    GGUF_T_UINT16 = 2,
    GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4,
    GGUF_T_INT32 = 5,
    GGUF_T_FLOAT32 = 6,
    GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8,
    GGUF_T_ARRAY = 9,
    GGUF_T_UINT64 = 10,
    GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12,
} gguf_vtype;

typedef struct {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct {
    gguf_str key;
    gguf_vtype type;
    union {
        uint64_t u; /* unsigned integer types */
        int64_t i;  /* signed integer types */
        double f;   /* FLOAT32 / FLOAT64 */
        bool b;     /* BOOL */
        gguf_str s; /* STRING */
    } v;
    /* type == GGUF_T_ARRAY: */
    gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data; /* raw little-endian elements (non-string arrays) */
    gguf_str *arr_strs;      /* string arrays: arr_n entries (owned by the file) */
} gguf_kv;

typedef struct {
    gguf_str name;
    uint32_t n_dims;
    uint64_t dims[4]; /* innermost first, unused dims are 1 */
    uint32_t type;    /* ggml type id (see quant.h lq_type) */
    uint64_t offset;  /* relative to the data section */
    const void *data; /* pointer into the mapping */
    uint64_t n_elems;
    uint64_t nbytes;
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Opens and validates a file. On failure returns -1 and writes a one-line
 * message into err ("<path>: <field> at offset N: <problem>"). */
int gguf_open(const char *path, gguf_file **out, char *err, size_t errlen);
/* Same over memory the caller keeps alive (fuzzing, tests). */
int gguf_open_mem(const void *data, size_t size, gguf_file **out, char *err, size_t errlen);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f);

size_t gguf_kv_count(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);

/* Typed getters: 0 on success, -1 when the key is missing, -2 when the value
 * has an incompatible type or range (err explains which). Integer getters
 * accept any integer type whose value fits; the float getter also accepts
 * integers. */
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, char *err, size_t errlen);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, char *err, size_t errlen);
int gguf_get_f64(const gguf_file *f, const char *key, double *out, char *err, size_t errlen);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, char *err, size_t errlen);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, char *err, size_t errlen);
/* Reads element i of an integer array (any integer element type) as int64. */
int gguf_arr_get_i64(const gguf_kv *kv, uint64_t i, int64_t *out);

size_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

const char *gguf_vtype_name(gguf_vtype t);
/* Name of a tensor's storage type ("f32", "q4_0", ...), for inspection
 * tools that do not link the quant kernels' header. */
const char *gguf_tensor_type_name(uint32_t type);
/* Bytes of one scalar value of type t; 0 for STRING/ARRAY, -1 if unknown. */
int gguf_vtype_size(uint32_t t);

#endif
