/* fuzz_http: arbitrary bytes through the HTTP connection's parser glue
 * (limits, pipelining, chunked bodies, error answers) exactly as they would
 * arrive on a socket, split at a fuzzer-chosen size; every complete
 * request's body then goes through the OpenAI chat-request parser, as the
 * API layer would. Crashes, leaks, sanitizer reports and hangs are bugs. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/tg_log.h"
#include "gateway/http/http_internal.h"
#include "gateway/api/openai_api.h"

static void on_request(const tg_http_request *req, void *arg) {
    (void)arg;
    /* What the handler may rely on. */
    if (!req->method || !req->path || !req->body || req->body[req->body_len] != 0) __builtin_trap();
    if (!tg_reqid_is_valid(req->request_id)) __builtin_trap();
    for (size_t i = 0; i < req->n_headers; i++) {
        const tg_http_header *h = &req->headers[i];
        if (strlen(h->name) != h->name_len || strlen(h->value) > h->value_len) __builtin_trap();
        for (size_t k = 0; k < h->name_len; k++)
            if (h->name[k] >= 'A' && h->name[k] <= 'Z') __builtin_trap();
    }
    tg_oai_request r;
    tg_oai_error e;
    memset(&r, 0, sizeof r);
    tg_oai_parse_request(req->body, req->body_len, &r, &e);
    tg_oai_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        tg_log_set_level(TG_LOG_OFF);
        init = 1;
    }
    if (size < 1) return 0;
    size_t split = data[0] & 0x1f; /* 0 = all at once, else pieces of 1..31 bytes */
    tg_buf out = TG_BUF_INIT;
    tg_http_conn_feed_for_fuzz(data + 1, size - 1, split, on_request, NULL, &out);
    tg_buf_free(&out);
    return 0;
}
