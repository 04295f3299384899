/* Fuzzes the chat-completions request parser: any bytes must give either a
 * request or a 4xx error, never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api/openai_api.h"
#include "router/engine_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tg_oai_request r;
    tg_oai_error e;
    if (tg_oai_parse_request((const char *)data, size, &r, &e) == 0) {
        lfm_chat_msg *m = rt_engine_chat_msgs(&r);
        free(m);
    } else if (e.status < 400 || e.status > 499) {
        abort();
    }
    tg_oai_request_free(&r);
    return 0;
}
