/* cli_inspect: `tidegate inspect -m MODEL [--json]` prints what a GGUF file
 * holds -- header, every metadata key with its type and value (long arrays
 * abbreviated), every tensor, and totals by type -- after full validation.
 * A malformed file exits 1 with the reader's one-line error. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/tg_buf.h"
#include "engine/gguf.h"
#include "cli/cli.h"

static const char USAGE[] = "tidegate inspect -m MODEL [--json]";

#define SHOW_ITEMS 8   /* array elements shown in text output */
#define JSON_ITEMS 16  /* ... and in JSON */
#define SHOW_STR   120 /* bytes of a string value shown in text output */

/* Non-finite floats are not JSON numbers. */
static void put_float(tg_buf *b, double v, int digits, bool json) {
    if (isfinite(v))
        tg_buf_printf(b, "%.*g", digits, v);
    else if (json)
        tg_buf_puts(b, "null");
    else
        tg_buf_printf(b, "%g", v);
}

/* Appends a string value quoted; text mode cuts long strings. */
static void put_str(tg_buf *b, gguf_str s, bool cut) {
    size_t n = (size_t)s.len;
    if (cut && n > SHOW_STR) n = SHOW_STR;
    tg_buf_json_str(b, s.ptr, n);
    if (n < s.len) tg_buf_printf(b, "...(%" PRIu64 " bytes)", s.len);
}

static void put_elem(tg_buf *b, const gguf_kv *kv, uint64_t i, bool cut) {
    if (kv->arr_type == GGUF_T_STRING) {
        put_str(b, kv->arr_strs[i], cut);
        return;
    }
    const uint8_t *p = kv->arr_data;
    int64_t v;
    switch (kv->arr_type) {
    case GGUF_T_FLOAT32: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        put_float(b, f, 9, !cut);
        break;
    }
    case GGUF_T_FLOAT64: {
        double d;
        memcpy(&d, p + 8 * i, 8);
        put_float(b, d, 17, !cut);
        break;
    }
    case GGUF_T_BOOL: tg_buf_puts(b, p[i] ? "true" : "false"); break;
    case GGUF_T_UINT64: {
        uint64_t u;
        memcpy(&u, p + 8 * i, 8);
        tg_buf_printf(b, "%" PRIu64, u);
        break;
    }
    default:
        if (gguf_arr_get_i64(kv, i, &v) == 0)
            tg_buf_printf(b, "%" PRId64, v);
        else
            tg_buf_puts(b, "null");
    }
}

static void put_value(tg_buf *b, const gguf_kv *kv, bool json) {
    switch (kv->type) {
    case GGUF_T_STRING: put_str(b, kv->v.s, !json); break;
    case GGUF_T_BOOL: tg_buf_puts(b, kv->v.b ? "true" : "false"); break;
    case GGUF_T_FLOAT32: put_float(b, kv->v.f, 9, json); break;
    case GGUF_T_FLOAT64: put_float(b, kv->v.f, 17, json); break;
    case GGUF_T_UINT8:
    case GGUF_T_UINT16:
    case GGUF_T_UINT32:
    case GGUF_T_UINT64: tg_buf_printf(b, "%" PRIu64, kv->v.u); break;
    case GGUF_T_ARRAY: {
        uint64_t show = kv->arr_n < (json ? JSON_ITEMS : SHOW_ITEMS)
                            ? kv->arr_n
                            : (json ? JSON_ITEMS : SHOW_ITEMS);
        if (json)
            tg_buf_printf(b, "{\"count\":%" PRIu64 ",\"items\":[", kv->arr_n);
        else
            tg_buf_putc(b, '[');
        for (uint64_t i = 0; i < show; i++) {
            if (i) tg_buf_puts(b, ", ");
            put_elem(b, kv, i, !json);
        }
        if (json)
            tg_buf_printf(b, "],\"truncated\":%s}", show < kv->arr_n ? "true" : "false");
        else if (show < kv->arr_n)
            tg_buf_printf(b, ", ... (%" PRIu64 " total)]", kv->arr_n);
        else
            tg_buf_putc(b, ']');
        break;
    }
    default: tg_buf_printf(b, "%" PRId64, kv->v.i); break;
    }
}

static void type_name(tg_buf *b, const gguf_kv *kv) {
    if (kv->type == GGUF_T_ARRAY)
        tg_buf_printf(b, "array<%s>[%" PRIu64 "]", gguf_vtype_name(kv->arr_type), kv->arr_n);
    else
        tg_buf_puts(b, gguf_vtype_name(kv->type));
}

/* Totals per ggml type id (ids are small; unknown ones were rejected). */
typedef struct {
    uint64_t count, bytes, elems;
} total;

static void report(const gguf_file *f, const char *path, bool json, tg_buf *b) {
    total tot[64] = {{0}};
    uint64_t all_bytes = 0, all_elems = 0;
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->type < 64) {
            tot[t->type].count++;
            tot[t->type].bytes += t->nbytes;
            tot[t->type].elems += t->n_elems;
        }
        all_bytes += t->nbytes;
        all_elems += t->n_elems;
    }
    if (json) {
        tg_buf_puts(b, "{\"file\":");
        tg_buf_json_str(b, path, strlen(path));
        tg_buf_printf(b,
                      ",\"version\":%" PRIu32 ",\"alignment\":%" PRIu64 ",\"data_offset\":%" PRIu64
                      ",\"file_size\":%" PRIu64 ",\"metadata\":[",
                      gguf_version(f), gguf_alignment(f), gguf_data_offset(f), gguf_file_size(f));
    } else {
        tg_buf_printf(b,
                      "file: %s\nversion: %" PRIu32 "\nalignment: %" PRIu64
                      "\ndata offset: %" PRIu64 "\nfile size: %" PRIu64 "\n\nmetadata (%zu):\n",
                      path, gguf_version(f), gguf_alignment(f), gguf_data_offset(f),
                      gguf_file_size(f), gguf_kv_count(f));
    }
    for (size_t i = 0; i < gguf_kv_count(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (json) {
            tg_buf_puts(b, i ? ",{\"key\":" : "{\"key\":");
            tg_buf_json_str(b, kv->key.ptr, (size_t)kv->key.len);
            tg_buf_puts(b, ",\"type\":\"");
            tg_buf_puts(b, gguf_vtype_name(kv->type));
            if (kv->type == GGUF_T_ARRAY)
                tg_buf_printf(b, "\",\"elem_type\":\"%s", gguf_vtype_name(kv->arr_type));
            tg_buf_puts(b, "\",\"value\":");
            put_value(b, kv, true);
            tg_buf_putc(b, '}');
        } else {
            tg_buf_printf(b, "  %.*s  ", (int)kv->key.len, kv->key.ptr);
            type_name(b, kv);
            tg_buf_puts(b, "  ");
            put_value(b, kv, false);
            tg_buf_putc(b, '\n');
        }
    }
    if (json)
        tg_buf_puts(b, "],\"tensors\":[");
    else
        tg_buf_printf(b, "\ntensors (%zu):\n", gguf_tensor_count(f));
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (json) {
            tg_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
            tg_buf_json_str(b, t->name.ptr, (size_t)t->name.len);
            tg_buf_puts(b, ",\"dims\":[");
        } else {
            tg_buf_printf(b, "  %-40.*s [", (int)t->name.len, t->name.ptr);
        }
        for (uint32_t d = 0; d < t->n_dims; d++)
            tg_buf_printf(b, "%s%" PRIu64, d ? ", " : "", t->dims[d]);
        if (json)
            tg_buf_printf(b, "],\"type\":\"%s\",\"bytes\":%" PRIu64 ",\"offset\":%" PRIu64 "}",
                          gguf_tensor_type_name(t->type), t->nbytes, t->offset);
        else
            tg_buf_printf(b, "]  %s  %" PRIu64 " bytes  @%" PRIu64 "\n",
                          gguf_tensor_type_name(t->type), t->nbytes, t->offset);
    }
    if (json)
        tg_buf_puts(b, "],\"totals\":{");
    else
        tg_buf_puts(b, "\ntotals:\n");
    bool first = true;
    for (int ty = 0; ty < 64; ty++) {
        if (!tot[ty].count) continue;
        if (json)
            tg_buf_printf(b,
                          "%s\"%s\":{\"tensors\":%" PRIu64 ",\"elements\":%" PRIu64
                          ",\"bytes\":%" PRIu64 "}",
                          first ? "" : ",", gguf_tensor_type_name((uint32_t)ty), tot[ty].count,
                          tot[ty].elems, tot[ty].bytes);
        else
            tg_buf_printf(
                b, "  %-6s %4" PRIu64 " tensors  %12" PRIu64 " elements  %12" PRIu64 " bytes\n",
                gguf_tensor_type_name((uint32_t)ty), tot[ty].count, tot[ty].elems, tot[ty].bytes);
        first = false;
    }
    if (json)
        tg_buf_printf(b, "},\"tensor_count\":%zu,\"elements\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n",
                      gguf_tensor_count(f), all_elems, all_bytes);
    else
        tg_buf_printf(b, "  all    %4zu tensors  %12" PRIu64 " elements  %12" PRIu64 " bytes\n",
                      gguf_tensor_count(f), all_elems, all_bytes);
}

int cmd_inspect(int argc, char **argv) {
    const char *model = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n  Validates a GGUF file and prints its header, metadata, tensors "
                   "and totals by type.\n  Exits 1 with a one-line error if the file is "
                   "malformed.\n",
                   USAGE);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else {
            return cli_usage_error("inspect", USAGE, "unknown or incomplete flag %s", argv[i]);
        }
    }
    if (!model) return cli_usage_error("inspect", USAGE, "-m MODEL is required");
    gguf_file *f;
    char err[512];
    if (gguf_open(model, &f, err, sizeof err)) {
        fprintf(stderr, "tidegate inspect: %s\n", err);
        return 1;
    }
    tg_buf b = TG_BUF_INIT;
    report(f, model, json, &b);
    gguf_close(f);
    fwrite(b.data, 1, b.len, stdout);
    tg_buf_free(&b);
    return fflush(stdout) == 0 ? 0 : 1;
}
