#include "gateway/journal/tg_jrec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/journal/tg_crc32c.h"

static const char *const k_names[] = {NULL,     "ACCEPTED",  "DISPATCHED", "FAILOVER", "COMPLETED",
                                      "FAILED", "CANCELLED", "DEFERRED",   "CHUNK"};

const char *tg_jrec_type_name(int type) {
    return type >= 1 && type <= TG_JREC_TYPE_MAX ? k_names[type] : "UNKNOWN";
}

int tg_jrec_type_parse(const char *s) {
    for (int t = 1; t <= TG_JREC_TYPE_MAX; t++)
        if (!strcmp(s, k_names[t])) return t;
    return 0;
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int tg_jrec_encode(tg_buf *out, const tg_jcrypt *c, int type, const char *id, size_t id_len,
                   uint64_t ts_us, const void *payload, size_t len) {
    if (type < 1 || type > TG_JREC_TYPE_MAX || id_len == 0 || id_len > TG_JREC_ID_MAX) return -1;
    size_t body = TG_JREC_HDR - TG_JREC_PREFIX + id_len + len + (c ? TG_JCRYPT_OVERHEAD : 0);
    if (body + TG_JREC_PREFIX > TG_JREC_MAX) return -1;
    size_t start = out->len;
    tg_buf_reserve(out, TG_JREC_PREFIX + body);
    uint8_t *h = (uint8_t *)out->data + start;
    put_u32(h, (uint32_t)body);
    h[8] = (uint8_t)type;
    h[9] = c ? TG_JREC_SEALED : 0;
    put_u16(h + 10, (uint16_t)id_len);
    put_u64(h + 12, ts_us);
    memcpy(h + TG_JREC_HDR, id, id_len);
    out->len = start + TG_JREC_HDR + id_len;
    if (c) {
        /* AAD: the header fields and the id, so neither can be altered or swapped.
         * Copied out: sealing may grow (move) the buffer h points into. */
        uint8_t aad[TG_JREC_HDR - 8 + TG_JREC_ID_MAX];
        memcpy(aad, h + 8, TG_JREC_HDR - 8 + id_len);
        if (tg_jcrypt_seal(c, aad, TG_JREC_HDR - 8 + id_len, payload, len, out) != 0) {
            out->len = start;
            if (out->data) out->data[start] = 0;
            return -1;
        }
        h = (uint8_t *)out->data + start;
    } else if (len) {
        tg_buf_append(out, payload, len);
        h = (uint8_t *)out->data + start;
    }
    put_u32(h + 4, tg_crc32c(tg_crc32c(0, h, 4), h + 8, body));
    out->data[out->len] = 0;
    return 0;
}

tg_jrec_status tg_jrec_decode(const uint8_t *in, size_t n, const tg_jcrypt *c, tg_buf *scratch,
                              tg_jrec *rec) {
    if (n < TG_JREC_PREFIX) return TG_JREC_SHORT;
    uint32_t body = get_u32(in);
    if (body < TG_JREC_HDR - TG_JREC_PREFIX + 1 || body > TG_JREC_MAX - TG_JREC_PREFIX)
        return TG_JREC_BAD;
    if (n - TG_JREC_PREFIX < body) return TG_JREC_SHORT;
    if (tg_crc32c(tg_crc32c(0, in, 4), in + 8, body) != get_u32(in + 4)) return TG_JREC_BAD;
    uint8_t type = in[8], flags = in[9];
    uint16_t id_len = get_u16(in + 10);
    if (type < 1 || type > TG_JREC_TYPE_MAX || (flags & ~TG_JREC_SEALED) || id_len == 0 ||
        id_len > TG_JREC_ID_MAX || (size_t)id_len > body - (TG_JREC_HDR - TG_JREC_PREFIX))
        return TG_JREC_BAD;
    rec->type = type;
    rec->flags = flags;
    rec->ts_us = get_u64(in + 12);
    rec->id = (const char *)in + TG_JREC_HDR;
    rec->id_len = id_len;
    rec->size = TG_JREC_PREFIX + (size_t)body;
    const uint8_t *p = in + TG_JREC_HDR + id_len;
    size_t plen = body - (TG_JREC_HDR - TG_JREC_PREFIX) - id_len;
    if (flags & TG_JREC_SEALED) {
        if (!c || !scratch) return TG_JREC_BAD;
        tg_buf_clear(scratch);
        if (tg_jcrypt_open(c, in + 8, TG_JREC_HDR - 8 + id_len, p, plen, scratch) != 0)
            return TG_JREC_BAD;
        rec->payload = (const uint8_t *)(scratch->data ? scratch->data : "");
        rec->payload_len = scratch->len;
    } else {
        rec->payload = p;
        rec->payload_len = plen;
    }
    return TG_JREC_OK;
}

void tg_jseg_header_write(uint8_t out[TG_JSEG_HDR], uint64_t seg_no, uint32_t flags,
                          uint32_t key_fp) {
    memcpy(out, "TGJSEG01", 8);
    put_u32(out + 8, TG_JSEG_VERSION);
    put_u32(out + 12, flags);
    put_u64(out + 16, seg_no);
    put_u32(out + 24, key_fp);
    put_u32(out + 28, tg_crc32c(0, out, 28));
}

int tg_jseg_header_read(const uint8_t in[TG_JSEG_HDR], uint64_t *seg_no, uint32_t *flags,
                        uint32_t *key_fp) {
    if (memcmp(in, "TGJSEG01", 8) != 0 || tg_crc32c(0, in, 28) != get_u32(in + 28)) return -1;
    if (get_u32(in + 8) != TG_JSEG_VERSION || (get_u32(in + 12) & ~TG_JSEG_SEALED)) return -1;
    *seg_no = get_u64(in + 16);
    *flags = get_u32(in + 12);
    *key_fp = get_u32(in + 24);
    return 0;
}

void tg_jseg_name(char *out, size_t n, uint64_t no) {
    snprintf(out, n, "%020" PRIu64 ".tgj", no);
}

uint64_t tg_jseg_parse(const char *name, bool *bad) {
    size_t n = strlen(name);
    if (n < 24) return 0;
    for (int i = 0; i < 20; i++)
        if (name[i] < '0' || name[i] > '9') return 0;
    if (!strcmp(name + 20, ".tgj"))
        *bad = false;
    else if (!strcmp(name + 20, ".tgj.bad"))
        *bad = true;
    else
        return 0;
    return strtoull(name, NULL, 10);
}
