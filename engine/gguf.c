/* gguf: validating GGUF v2/v3 reader.
 *
 * The file is parsed once, front to back, with a cursor that refuses to read
 * past the end. Every count is checked against the bytes that remain before
 * anything is allocated for it (a count can never exceed remaining bytes /
 * smallest encoding of one element), so a hostile header cannot make us
 * allocate more than about twice the file size. Tensor sizes are computed with
 * overflow checks and must lie inside the file. After gguf_open succeeds,
 * callers may use every pointer and size without further checks. */
#include "engine/gguf.h"

#include "common/tg_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/quant.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_COUNT         (1u << 24) /* kv / tensor count sanity cap */
#define GGUF_MAX_NAME          64         /* tensor names, as in ggml (incl. NUL) */
#define GGUF_MAX_ALIGNMENT     (1u << 16)

/* Where each tensor's fields sit in the file, for error messages raised after
 * the header has been read. */
typedef struct {
    uint64_t type_off, offset_off;
} tensor_pos;

struct gguf_file {
    const uint8_t *base;
    uint64_t size;
    void *map;
    size_t map_len;
    char *path;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    gguf_kv *kvs;
    uint64_t *kv_off;
    size_t n_kv;
    gguf_tensor *tensors;
    tensor_pos *tpos;
    size_t n_tensors;
    uint32_t *kv_hash; /* open addressing: index + 1, 0 = empty */
    size_t kv_hcap;
    uint32_t *t_hash;
    size_t t_hcap;
};

/* ------------------------------------------------------------ errors -- */

typedef struct {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    const char *path;
    char *err;
    size_t errlen;
} cursor;

/* Copies a file string into out for printing: non-printable bytes become '?'
 * and long names are cut, so an error stays one short line. */
static void printable(char *out, size_t cap, const char *s, uint64_t len) {
    size_t max = cap - 1, n = 0;
    bool cut = false;
    if (len > max) {
        len = max > 3 ? max - 3 : max;
        cut = true;
    }
    for (uint64_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (cut)
        for (int i = 0; i < 3 && n < max; i++)
            out[n++] = '.';
    out[n] = 0;
}

static int fail(cursor *c, uint64_t off, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(cursor *c, uint64_t off, const char *field, const char *fmt, ...) {
    if (!c->err || c->errlen == 0) return -1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s at offset %" PRIu64 ": %s", c->path, field, off, msg);
    return -1;
}

/* ------------------------------------------------------------ cursor -- */

static uint64_t remaining(const cursor *c) {
    return c->size - c->pos;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int rd_u32(cursor *c, const char *field, uint32_t *out) {
    if (remaining(c) < 4)
        return fail(c, c->pos, field, "file truncated (need 4 bytes, %" PRIu64 " left)",
                    remaining(c));
    *out = (uint32_t)le(c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, const char *field, uint64_t *out) {
    if (remaining(c) < 8)
        return fail(c, c->pos, field, "file truncated (need 8 bytes, %" PRIu64 " left)",
                    remaining(c));
    *out = le(c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int rd_str(cursor *c, const char *field, gguf_str *out) {
    uint64_t at = c->pos, len;
    if (rd_u64(c, field, &len)) return -1;
    if (len > remaining(c))
        return fail(c, at, field,
                    "string length %" PRIu64 " exceeds the %" PRIu64 " bytes left in the file", len,
                    remaining(c));
    out->ptr = (const char *)(c->p + c->pos);
    out->len = len;
    c->pos += len;
    return 0;
}

int gguf_vtype_size(uint32_t t) {
    switch (t) {
    case GGUF_T_UINT8:
    case GGUF_T_INT8:
    case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16:
    case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32:
    case GGUF_T_INT32:
    case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64:
    case GGUF_T_INT64:
    case GGUF_T_FLOAT64: return 8;
    case GGUF_T_STRING:
    case GGUF_T_ARRAY: return 0;
    default: return -1;
    }
}

static bool is_signed(gguf_vtype t) {
    return t == GGUF_T_INT8 || t == GGUF_T_INT16 || t == GGUF_T_INT32 || t == GGUF_T_INT64;
}
static bool is_unsigned(gguf_vtype t) {
    return t == GGUF_T_UINT8 || t == GGUF_T_UINT16 || t == GGUF_T_UINT32 || t == GGUF_T_UINT64;
}

/* Decodes one little-endian scalar into the kv value union. */
static void decode_scalar(gguf_kv *kv, const uint8_t *p) {
    switch (kv->type) {
    case GGUF_T_UINT8: kv->v.u = p[0]; break;
    case GGUF_T_UINT16: kv->v.u = le(p, 2); break;
    case GGUF_T_UINT32: kv->v.u = le(p, 4); break;
    case GGUF_T_UINT64: kv->v.u = le(p, 8); break;
    case GGUF_T_INT8: kv->v.i = (int8_t)p[0]; break;
    case GGUF_T_INT16: kv->v.i = (int16_t)(uint16_t)le(p, 2); break;
    case GGUF_T_INT32: kv->v.i = (int32_t)(uint32_t)le(p, 4); break;
    case GGUF_T_INT64: kv->v.i = (int64_t)le(p, 8); break;
    case GGUF_T_BOOL: kv->v.b = p[0] != 0; break;
    case GGUF_T_FLOAT32: {
        uint32_t b = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &b, 4);
        kv->v.f = f;
        break;
    }
    case GGUF_T_FLOAT64: {
        uint64_t b = le(p, 8);
        memcpy(&kv->v.f, &b, 8);
        break;
    }
    default: break;
    }
}

/* -------------------------------------------------------------- hash -- */

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t hash_cap(size_t n) {
    size_t cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    return cap;
}

/* Finds name in a table whose entries index names via get(); returns the slot. */
typedef const gguf_str *(*name_of_fn)(const gguf_file *f, size_t i);
static const gguf_str *kv_name(const gguf_file *f, size_t i) {
    return &f->kvs[i].key;
}
static const gguf_str *t_name(const gguf_file *f, size_t i) {
    return &f->tensors[i].name;
}

static size_t hash_slot(const gguf_file *f, const uint32_t *tab, size_t cap, name_of_fn get,
                        const char *s, uint64_t n) {
    size_t i = (size_t)hash_bytes(s, n) & (cap - 1);
    while (tab[i]) {
        const gguf_str *e = get(f, tab[i] - 1);
        if (e->len == n && memcmp(e->ptr, s, n) == 0) return i;
        i = (i + 1) & (cap - 1);
    }
    return i;
}

/* ------------------------------------------------------------ values -- */

static int read_value(cursor *c, gguf_file *f, gguf_kv *kv, const char *field) {
    uint64_t at = c->pos;
    uint32_t t;
    if (rd_u32(c, field, &t)) return -1;
    if (gguf_vtype_size(t) < 0) return fail(c, at, field, "unknown value type %" PRIu32, t);
    kv->type = (gguf_vtype)t;
    at = c->pos;
    if (t == GGUF_T_STRING) return rd_str(c, field, &kv->v.s);
    if (t != GGUF_T_ARRAY) {
        int sz = gguf_vtype_size(t);
        if (remaining(c) < (uint64_t)sz)
            return fail(c, at, field, "file truncated (need %d bytes, %" PRIu64 " left)", sz,
                        remaining(c));
        if (t == GGUF_T_BOOL && c->p[c->pos] > 1)
            return fail(c, at, field, "bool value %u is not 0 or 1", c->p[c->pos]);
        decode_scalar(kv, c->p + c->pos);
        c->pos += (uint64_t)sz;
        return 0;
    }
    uint32_t et;
    if (rd_u32(c, field, &et)) return -1;
    if (et == GGUF_T_ARRAY) return fail(c, at, field, "nested arrays are not supported");
    if (gguf_vtype_size(et) < 0)
        return fail(c, at, field, "unknown array element type %" PRIu32, et);
    kv->arr_type = (gguf_vtype)et;
    uint64_t n_at = c->pos, n;
    if (rd_u64(c, field, &n)) return -1;
    /* Smallest encoding of one element: 8 bytes for a string (its length). */
    uint64_t min = et == GGUF_T_STRING ? 8 : (uint64_t)gguf_vtype_size(et);
    if (n > remaining(c) / min)
        return fail(c, n_at, field,
                    "array count %" PRIu64 " exceeds what the %" PRIu64 " bytes left can hold", n,
                    remaining(c));
    kv->arr_n = n;
    if (et == GGUF_T_STRING) {
        kv->arr_strs = calloc(n ? n : 1, sizeof *kv->arr_strs);
        if (!kv->arr_strs) return fail(c, n_at, field, "out of memory for %" PRIu64 " strings", n);
        for (uint64_t i = 0; i < n; i++)
            if (rd_str(c, field, &kv->arr_strs[i])) return -1;
        return 0;
    }
    kv->arr_data = c->p + c->pos;
    if (et == GGUF_T_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (kv->arr_data[i] > 1)
                return fail(c, c->pos + i, field, "bool element %" PRIu64 " is %u, not 0 or 1", i,
                            kv->arr_data[i]);
    c->pos += n * min;
    (void)f;
    return 0;
}

static int read_kvs(cursor *c, gguf_file *f, uint64_t n_kv) {
    f->kvs = calloc(n_kv ? n_kv : 1, sizeof *f->kvs);
    f->kv_off = calloc(n_kv ? n_kv : 1, sizeof *f->kv_off);
    f->kv_hcap = hash_cap(n_kv);
    f->kv_hash = calloc(f->kv_hcap, sizeof *f->kv_hash);
    if (!f->kvs || !f->kv_off || !f->kv_hash) return fail(c, c->pos, "kv_count", "out of memory");
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        char field[96];
        uint64_t at = c->pos;
        snprintf(field, sizeof field, "kv[%" PRIu64 "].key", i);
        if (rd_str(c, field, &kv->key)) return -1;
        if (kv->key.len == 0) return fail(c, at, field, "empty key");
        if (memchr(kv->key.ptr, 0, kv->key.len)) return fail(c, at, field, "key contains NUL");
        f->kv_off[i] = at;
        char name[80];
        printable(name, sizeof name, kv->key.ptr, kv->key.len);
        size_t slot = hash_slot(f, f->kv_hash, f->kv_hcap, kv_name, kv->key.ptr, kv->key.len);
        if (f->kv_hash[slot]) return fail(c, at, name, "duplicate key");
        /* n_kv counts only entries parsed so far, which get() may index. */
        f->n_kv = i + 1;
        f->kv_hash[slot] = (uint32_t)(i + 1);
        if (read_value(c, f, kv, name)) return -1;
    }
    return 0;
}

/* ----------------------------------------------------------- tensors -- */

static int read_tensor_info(cursor *c, gguf_file *f, uint64_t i) {
    gguf_tensor *t = &f->tensors[i];
    char field[96];
    uint64_t at = c->pos;
    snprintf(field, sizeof field, "tensor[%" PRIu64 "].name", i);
    if (rd_str(c, field, &t->name)) return -1;
    if (t->name.len == 0) return fail(c, at, field, "empty tensor name");
    if (t->name.len >= GGUF_MAX_NAME)
        return fail(c, at, field, "tensor name is %" PRIu64 " bytes (max %d)", t->name.len,
                    GGUF_MAX_NAME - 1);
    if (memchr(t->name.ptr, 0, t->name.len)) return fail(c, at, field, "name contains NUL");
    char name[96], pn[80];
    printable(pn, sizeof pn, t->name.ptr, t->name.len);
    snprintf(name, sizeof name, "tensor %s", pn);
    size_t slot = hash_slot(f, f->t_hash, f->t_hcap, t_name, t->name.ptr, t->name.len);
    if (f->t_hash[slot]) return fail(c, at, name, "duplicate tensor name");
    f->n_tensors = i + 1;
    f->t_hash[slot] = (uint32_t)(i + 1);

    at = c->pos;
    if (rd_u32(c, name, &t->n_dims)) return -1;
    if (t->n_dims < 1 || t->n_dims > 4)
        return fail(c, at, name, "n_dims %" PRIu32 " is not in 1..4", t->n_dims);
    uint64_t dims_at = c->pos, elems = 1;
    for (int d = 0; d < 4; d++)
        t->dims[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t d_at = c->pos;
        if (rd_u64(c, name, &t->dims[d])) return -1;
        if (t->dims[d] == 0) return fail(c, d_at, name, "dimension %" PRIu32 " is zero", d);
        if (t->dims[d] > (uint64_t)INT64_MAX / elems)
            return fail(c, d_at, name, "element count overflows (dims product too large)");
        elems *= t->dims[d];
    }
    t->n_elems = elems;

    uint64_t type_at = c->pos;
    if (rd_u32(c, name, &t->type)) return -1;
    if (!lq_type_supported(t->type))
        return fail(c, type_at, name, "unknown or unsupported tensor type id %" PRIu32, t->type);
    int64_t bv = lq_block_values((lq_type)t->type);
    uint64_t bb = lq_block_bytes((lq_type)t->type);
    if (bv <= 0 || bb == 0) return fail(c, type_at, name, "type %" PRIu32 " has no size", t->type);
    if (t->dims[0] % (uint64_t)bv)
        return fail(c, dims_at, name,
                    "row length %" PRIu64 " is not a multiple of %s block "
                    "size %" PRId64,
                    t->dims[0], lq_type_name(t->type), bv);
    uint64_t blocks = elems / (uint64_t)bv;
    if (blocks > UINT64_MAX / bb) return fail(c, dims_at, name, "byte size overflows");
    t->nbytes = blocks * bb;
    /* Cross-check against the quant module's row size where it is cheap. */
    if (t->dims[0] <= (uint64_t)INT32_MAX &&
        lq_row_bytes((lq_type)t->type, (int64_t)t->dims[0]) * (elems / t->dims[0]) != t->nbytes)
        return fail(c, type_at, name, "inconsistent row size for type %s", lq_type_name(t->type));

    f->tpos[i].type_off = type_at;
    f->tpos[i].offset_off = c->pos;
    if (rd_u64(c, name, &t->offset)) return -1;
    return 0;
}

/* Checks what needs the data section's start: alignment and bounds. */
static int place_tensor(cursor *c, gguf_file *f, size_t i) {
    gguf_tensor *t = &f->tensors[i];
    char name[96], pn[80];
    printable(pn, sizeof pn, t->name.ptr, t->name.len);
    snprintf(name, sizeof name, "tensor %s", pn);
    uint64_t at = f->tpos[i].offset_off;
    if (t->offset % f->alignment)
        return fail(c, at, name, "data offset %" PRIu64 " is not a multiple of alignment %" PRIu64,
                    t->offset, f->alignment);
    uint64_t avail = f->size - f->data_offset;
    if (t->offset > avail || t->nbytes > avail - t->offset)
        return fail(c, at, name,
                    "data [%" PRIu64 ", +%" PRIu64 ") runs past the end of the "
                    "file (data section is %" PRIu64 " bytes)",
                    t->offset, t->nbytes, avail);
    t->data = f->base + f->data_offset + t->offset;
    return 0;
}

/* ------------------------------------------------------------- parse -- */

static int parse(gguf_file *f, char *err, size_t errlen) {
    cursor c = {f->base, f->size, 0, f->path, err, errlen};
    if (f->size < 4) return fail(&c, 0, "magic", "file truncated (%" PRIu64 " bytes)", f->size);
    if (memcmp(f->base, "GGUF", 4) != 0) return fail(&c, 0, "magic", "not a GGUF file (bad magic)");
    c.pos = 4;
    if (rd_u32(&c, "version", &f->version)) return -1;
    if (f->version != 2 && f->version != 3)
        return fail(&c, 4, "version", "unsupported version %" PRIu32 " (expected 2 or 3%s)",
                    f->version, f->version > 0xffff ? "; big-endian file?" : "");
    uint64_t n_tensors, n_kv;
    uint64_t at = c.pos;
    if (rd_u64(&c, "tensor_count", &n_tensors)) return -1;
    uint64_t kv_at = c.pos;
    if (rd_u64(&c, "kv_count", &n_kv)) return -1;
    /* Smallest kv: 8-byte key length + 1 key byte + 4-byte type + 1 byte. */
    if (n_kv > GGUF_MAX_COUNT || n_kv > remaining(&c) / 14)
        return fail(&c, kv_at, "kv_count",
                    "count %" PRIu64 " exceeds what the %" PRIu64 " bytes left can hold", n_kv,
                    remaining(&c));
    /* Smallest tensor info: name len + 1 byte + n_dims + one dim + type + offset. */
    if (n_tensors > GGUF_MAX_COUNT || n_tensors > remaining(&c) / 33)
        return fail(&c, at, "tensor_count",
                    "count %" PRIu64 " exceeds what the %" PRIu64 " bytes left can hold", n_tensors,
                    remaining(&c));
    if (read_kvs(&c, f, n_kv)) return -1;

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find_kv(f, "general.alignment");
    if (al) {
        uint64_t al_at = f->kv_off[al - f->kvs];
        if (!is_unsigned(al->type) && !(is_signed(al->type) && al->v.i >= 0))
            return fail(&c, al_at, "general.alignment", "must be an unsigned integer, is %s",
                        gguf_vtype_name(al->type));
        uint64_t a = is_unsigned(al->type) ? al->v.u : (uint64_t)al->v.i;
        if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
            return fail(&c, al_at, "general.alignment",
                        "%" PRIu64 " is not a power of two in 1..%u", a, GGUF_MAX_ALIGNMENT);
        f->alignment = a;
    }

    if (n_tensors > remaining(&c) / 33)
        return fail(&c, at, "tensor_count",
                    "count %" PRIu64 " exceeds what the %" PRIu64
                    " bytes left after the metadata can hold",
                    n_tensors, remaining(&c));
    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    f->tpos = calloc(n_tensors ? n_tensors : 1, sizeof *f->tpos);
    f->t_hcap = hash_cap(n_tensors);
    f->t_hash = calloc(f->t_hcap, sizeof *f->t_hash);
    if (!f->tensors || !f->tpos || !f->t_hash) return fail(&c, at, "tensor_count", "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++)
        if (read_tensor_info(&c, f, i)) return -1;

    /* The data section starts at the header's end rounded up to alignment. */
    uint64_t end = c.pos, pad = (f->alignment - end % f->alignment) % f->alignment;
    if (pad > f->size - end) {
        if (n_tensors == 0) {
            /* A metadata-only file may end right after the header. */
            f->data_offset = f->size;
            return 0;
        }
        return fail(&c, end, "data section",
                    "file ends before the aligned data section "
                    "(header ends at %" PRIu64 ", alignment %" PRIu64 ")",
                    end, f->alignment);
    }
    f->data_offset = end + pad;
    for (size_t i = 0; i < f->n_tensors; i++)
        if (place_tensor(&c, f, i)) return -1;
    return 0;
}

static int open_common(gguf_file *f, gguf_file **out, char *err, size_t errlen) {
    if (parse(f, err, errlen)) {
        gguf_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

int gguf_open_mem(const void *data, size_t size, gguf_file **out, char *err, size_t errlen) {
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup("<memory>"))) {
        free(f);
        if (err && errlen) snprintf(err, errlen, "<memory>: out of memory");
        return -1;
    }
    f->base = data;
    f->size = size;
    return open_common(f, out, err, errlen);
}

int gguf_open(const char *path, gguf_file **out, char *err, size_t errlen) {
    *out = NULL;
    /* A FIFO, directory or device is refused before anything reads it. */
    int fd = tg_file_open_regular(path, err, errlen);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        close(fd);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    f->size = (uint64_t)st.st_size;
    static const uint8_t empty[1];
    f->base = empty;
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            if (err && errlen) snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
            close(fd);
            free(f->path);
            free(f);
            return -1;
        }
        f->map = m;
        f->map_len = (size_t)st.st_size;
        f->base = m;
    }
    close(fd);
    return open_common(f, out, err, errlen);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (size_t i = 0; f->kvs && i < f->n_kv; i++)
        free(f->kvs[i].arr_strs);
    free(f->kvs);
    free(f->kv_off);
    free(f->kv_hash);
    free(f->tensors);
    free(f->tpos);
    free(f->t_hash);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    free(f);
}

/* ---------------------------------------------------------- accessors -- */

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
uint64_t gguf_file_size(const gguf_file *f) {
    return f->size;
}
uint64_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}
uint64_t gguf_data_offset(const gguf_file *f) {
    return f->data_offset;
}
size_t gguf_kv_count(const gguf_file *f) {
    return f->n_kv;
}
size_t gguf_tensor_count(const gguf_file *f) {
    return f->n_tensors;
}

const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i) {
    return i < f->n_kv ? &f->kvs[i] : NULL;
}
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f->kv_hash) return NULL;
    size_t s = hash_slot(f, f->kv_hash, f->kv_hcap, kv_name, key, strlen(key));
    return f->kv_hash[s] ? &f->kvs[f->kv_hash[s] - 1] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f->t_hash) return NULL;
    size_t s = hash_slot(f, f->t_hash, f->t_hcap, t_name, name, strlen(name));
    return f->t_hash[s] ? &f->tensors[f->t_hash[s] - 1] : NULL;
}

const char *gguf_tensor_type_name(uint32_t type) {
    return lq_type_name(type);
}

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *names[] = {"u8",   "i8",  "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "str", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

/* --------------------------------------------------------------- getters -- */

static int get_err(const gguf_file *f, char *err, size_t errlen, const char *key, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
static int get_err(const gguf_file *f, char *err, size_t errlen, const char *key, const char *fmt,
                   ...) {
    if (err && errlen) {
        char msg[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "%s: %s: %s", f->path, key, msg);
    }
    return -2;
}

static int lookup(const gguf_file *f, const char *key, const gguf_kv **kv, char *err,
                  size_t errlen) {
    *kv = gguf_find_kv(f, key);
    if (*kv) return 0;
    if (err && errlen) snprintf(err, errlen, "%s: %s: key missing", f->path, key);
    return -1;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, char *err, size_t errlen) {
    const gguf_kv *kv;
    if (lookup(f, key, &kv, err, errlen)) return -1;
    if (is_unsigned(kv->type)) {
        *out = kv->v.u;
        return 0;
    }
    if (is_signed(kv->type)) {
        if (kv->v.i < 0)
            return get_err(f, err, errlen, key, "value %" PRId64 " is negative", kv->v.i);
        *out = (uint64_t)kv->v.i;
        return 0;
    }
    return get_err(f, err, errlen, key, "expected an integer, found %s", gguf_vtype_name(kv->type));
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, char *err, size_t errlen) {
    const gguf_kv *kv;
    if (lookup(f, key, &kv, err, errlen)) return -1;
    if (is_signed(kv->type)) {
        *out = kv->v.i;
        return 0;
    }
    if (is_unsigned(kv->type)) {
        if (kv->v.u > (uint64_t)INT64_MAX)
            return get_err(f, err, errlen, key, "value %" PRIu64 " is out of range", kv->v.u);
        *out = (int64_t)kv->v.u;
        return 0;
    }
    return get_err(f, err, errlen, key, "expected an integer, found %s", gguf_vtype_name(kv->type));
}

int gguf_get_f64(const gguf_file *f, const char *key, double *out, char *err, size_t errlen) {
    const gguf_kv *kv;
    if (lookup(f, key, &kv, err, errlen)) return -1;
    if (kv->type == GGUF_T_FLOAT32 || kv->type == GGUF_T_FLOAT64)
        *out = kv->v.f;
    else if (is_signed(kv->type))
        *out = (double)kv->v.i;
    else if (is_unsigned(kv->type))
        *out = (double)kv->v.u;
    else
        return get_err(f, err, errlen, key, "expected a number, found %s",
                       gguf_vtype_name(kv->type));
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, char *err, size_t errlen) {
    const gguf_kv *kv;
    if (lookup(f, key, &kv, err, errlen)) return -1;
    if (kv->type != GGUF_T_BOOL)
        return get_err(f, err, errlen, key, "expected bool, found %s", gguf_vtype_name(kv->type));
    *out = kv->v.b;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, char *err, size_t errlen) {
    const gguf_kv *kv;
    if (lookup(f, key, &kv, err, errlen)) return -1;
    if (kv->type != GGUF_T_STRING)
        return get_err(f, err, errlen, key, "expected string, found %s", gguf_vtype_name(kv->type));
    *out = kv->v.s;
    return 0;
}

int gguf_arr_get_i64(const gguf_kv *kv, uint64_t i, int64_t *out) {
    if (!kv || kv->type != GGUF_T_ARRAY || i >= kv->arr_n || !kv->arr_data) return -1;
    int sz = gguf_vtype_size(kv->arr_type);
    const uint8_t *p = kv->arr_data + i * (uint64_t)sz;
    switch (kv->arr_type) {
    case GGUF_T_UINT8: *out = p[0]; return 0;
    case GGUF_T_UINT16: *out = (int64_t)le(p, 2); return 0;
    case GGUF_T_UINT32: *out = (int64_t)le(p, 4); return 0;
    case GGUF_T_UINT64: {
        uint64_t v = le(p, 8);
        if (v > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)v;
        return 0;
    }
    case GGUF_T_INT8: *out = (int8_t)p[0]; return 0;
    case GGUF_T_INT16: *out = (int16_t)(uint16_t)le(p, 2); return 0;
    case GGUF_T_INT32: *out = (int32_t)(uint32_t)le(p, 4); return 0;
    case GGUF_T_INT64: *out = (int64_t)le(p, 8); return 0;
    default: return -1;
    }
}
