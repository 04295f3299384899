/* Fuzzes the journal record reader as recovery drives it: a segment's bytes
 * after the header are decoded record by record until the first bad one.
 * The first input byte picks plaintext or sealed (a fixed key), so the GCM
 * path sees hostile input too. A decoded record must lie inside the input
 * and carry a valid type and id. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "gateway/journal/tg_jrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_jcrypt *key;
    if (!key) {
        uint8_t k[32];
        for (int i = 0; i < 32; i++)
            k[i] = (uint8_t)i;
        key = tg_jcrypt_from_bytes(k);
    }
    if (size == 0) return 0;
    const tg_jcrypt *c = data[0] & 1 ? key : NULL;
    data++, size--;
    if (size >= TG_JSEG_HDR) {
        uint64_t no;
        uint32_t flags, fp;
        (void)tg_jseg_header_read(data, &no, &flags, &fp);
    }
    tg_buf scratch = TG_BUF_INIT;
    for (size_t pos = 0; pos < size;) {
        tg_jrec r;
        if (tg_jrec_decode(data + pos, size - pos, c, &scratch, &r) != TG_JREC_OK) break;
        if (r.size == 0 || r.size > size - pos || r.type < 1 || r.type > TG_JREC_TYPE_MAX ||
            r.id_len == 0 || r.id_len > TG_JREC_ID_MAX)
            abort();
        pos += r.size;
    }
    tg_buf_free(&scratch);
    return 0;
}
