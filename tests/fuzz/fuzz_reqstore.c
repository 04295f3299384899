/* Fuzzes gateway/api/reqstore: the readers of payloads the journal stored
 * (a damaged or hostile journal must not crash GET /v1/requests or a
 * replay). Input: records as [u8 type][u16 len][len bytes]..., fed to a
 * request view, the tool-call merger and the SSE replay; the GET object
 * must always be one valid JSON object. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api/reqstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tg_reqview v;
    tg_reqview_init(&v);
    tg_toolacc *a = tg_toolacc_new();
    tg_buf out = TG_BUF_INIT;
    size_t i = 0;
    while (i + 3 <= size) {
        int type = data[i] % 11;
        size_t n = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
        i += 3;
        if (n > size - i) n = size - i;
        tg_reqview_add(&v, type, (uint64_t)i * 1000000u, data + i, n);
        tg_toolacc_add(a, (const char *)data + i, n);
        tg_buf_clear(&out);
        tg_replay_sse((const char *)data + i, n, type & 1, &out);
        i += n;
    }
    tg_buf_clear(&out);
    tg_toolacc_json(a, &out);
    if (out.len) {
        json_object *o = json_tokener_parse(out.data);
        if (!o) abort();
        json_object_put(o);
    }
    tg_buf_clear(&out);
    tg_reqview_json(&v, "req_fuzz", &out);
    json_object *o = json_tokener_parse(out.data);
    if (!o || !json_object_is_type(o, json_type_object)) abort();
    json_object_put(o);
    tg_buf_free(&out);
    tg_toolacc_free(a);
    tg_reqview_free(&v);
    return 0;
}
