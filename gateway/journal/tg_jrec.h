/* tg_jrec: the journal's on-disk record and segment header formats.
 *
 * Record (little-endian):
 *   u32 len      bytes after this 8-byte prefix (type .. end of payload)
 *   u32 crc      CRC-32C of len's 4 bytes followed by those len bytes
 *   u8  type     tg_jrec_type
 *   u8  flags    bit 0: payload sealed with AES-256-GCM (tg_jcrypt)
 *   u16 id_len   1..TG_JREC_ID_MAX
 *   u64 ts_us    wall clock, microseconds since the epoch
 *   id_len bytes request id, then the payload (sealed: nonce|ct|tag, with
 *   the 12 header bytes and the id as associated data)
 *
 * Segment header (TG_JSEG_HDR bytes): "TGJSEG01", u32 version, u32 flags
 * (bit 0: records are sealed), u64 segment number, u32 key fingerprint,
 * u32 CRC-32C of the 28 bytes before it.
 *
 * Decoding trusts nothing: every length is bounded before use, and a record
 * is returned only when its CRC (and, sealed, its GCM tag) checks out. */
#ifndef TG_JREC_H
#define TG_JREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"
#include "gateway/journal/tg_jcrypt.h"

typedef enum {
    TG_JREC_ACCEPTED = 1,   /* payload: accepted-request JSON (with the body) */
    TG_JREC_DISPATCHED = 2, /* payload: {"target": ...} */
    TG_JREC_FAILOVER = 3,   /* payload: {"from", "to", "reason"} */
    TG_JREC_COMPLETED = 4,  /* terminal; payload: the full result */
    TG_JREC_FAILED = 5,     /* terminal; payload: the error */
    TG_JREC_CANCELLED = 6,  /* terminal; payload: why */
    TG_JREC_DEFERRED = 7,   /* waiting for a target (offline); not terminal */
    TG_JREC_CHUNK = 8,      /* one streamed event, durable before it is sent */
    TG_JREC_SEAL = 9,       /* internal: a segment's last record (id "-"), so a
                               segment cut at a record boundary is still caught */
    TG_JREC_TYPE_MAX = 9
} tg_jrec_type;

#define TG_JREC_PREFIX 8  /* len + crc */
#define TG_JREC_HDR    20 /* prefix + type, flags, id_len, ts */
#define TG_JREC_ID_MAX 255
#define TG_JREC_MAX    (64u << 20) /* largest record accepted, header included */
#define TG_JREC_SEALED 1u

#define TG_JSEG_HDR     32
#define TG_JSEG_VERSION 1u
#define TG_JSEG_SEALED  1u

typedef struct {
    uint8_t type;
    uint8_t flags;
    uint64_t ts_us;
    const char *id; /* not NUL-terminated */
    size_t id_len;
    const uint8_t *payload; /* plaintext */
    size_t payload_len;
    size_t size; /* bytes the record takes on disk */
} tg_jrec;

typedef enum {
    TG_JREC_OK = 0,
    TG_JREC_SHORT = 1, /* input ends inside the record: a torn tail */
    TG_JREC_BAD = 2,   /* bad length, CRC, type, id or tag */
} tg_jrec_status;

const char *tg_jrec_type_name(int type);
int tg_jrec_type_parse(const char *s); /* 0 if unknown */
static inline int tg_jrec_is_terminal(int type) {
    return type == TG_JREC_COMPLETED || type == TG_JREC_FAILED || type == TG_JREC_CANCELLED;
}

/* Appends one encoded record to out, sealing the payload when c is set.
 * Returns 0, or -1 for an invalid type, id or size (nothing appended). */
int tg_jrec_encode(tg_buf *out, const tg_jcrypt *c, int type, const char *id, size_t id_len,
                   uint64_t ts_us, const void *payload, size_t len);

/* Decodes the record at in[0..n). On TG_JREC_OK fills rec; rec->id points
 * into in and rec->payload into in (plain) or into scratch (sealed; scratch
 * is cleared first). A sealed record without a key c is TG_JREC_BAD. */
tg_jrec_status tg_jrec_decode(const uint8_t *in, size_t n, const tg_jcrypt *c, tg_buf *scratch,
                              tg_jrec *rec);

/* A segment's file name: "<20-digit no>.tgj". */
void tg_jseg_name(char *out, size_t n, uint64_t no);
/* Parses "<20 digits>.tgj" (*bad false) or ".tgj.bad" (*bad true); 0 if
 * the name is not a segment's. */
uint64_t tg_jseg_parse(const char *name, bool *bad);

/* Segment header: writes TG_JSEG_HDR bytes. */
void tg_jseg_header_write(uint8_t out[TG_JSEG_HDR], uint64_t seg_no, uint32_t flags,
                          uint32_t key_fp);
/* Returns 0 and fills the fields, or -1 if the header is not valid. */
int tg_jseg_header_read(const uint8_t in[TG_JSEG_HDR], uint64_t *seg_no, uint32_t *flags,
                        uint32_t *key_fp);

#endif
