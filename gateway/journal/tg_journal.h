/* tg_journal: the request journal's interface. The rest of the gateway sees
 * the journal only through these calls, so a shared backend for a fleet
 * (Redis Streams, later) can stand in for the local segment files
 * (tg_jfile.c) without touching the request path.
 *
 * Contract:
 * - append: queues one record; cb(user, status) runs on the loop thread
 *   once the record is durable (status 0) or cannot be (status -errno;
 *   then nothing was promised). Records of one id are durable in append
 *   order. Call from the loop thread only.
 * - append_sync: the same, blocking the calling thread until durable (CLI,
 *   tests, benchmarks, recovery; any thread).
 * - info: what the index knows of an id (cheap, no I/O).
 * - read: every durable record of one id, in order.
 * - scan: every durable record, in journal order.
 * - close: flushes what is queued (running its callbacks), stops, frees.
 *   On the loop thread when a loop was given.
 * Record callbacks return non-zero to stop early (that value is returned).
 * A record's pointers are valid only during its callback. */
#ifndef TG_JOURNAL_H
#define TG_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/journal/tg_jrec.h"

typedef struct tg_journal tg_journal;

typedef void (*tg_journal_done_cb)(void *user, int status);
typedef int (*tg_journal_rec_cb)(void *user, const tg_jrec *rec);

typedef struct {
    int state;           /* type of the last state record (never CHUNK) */
    bool terminal;       /* reached COMPLETED, FAILED or CANCELLED */
    uint64_t created_us; /* ts of ACCEPTED */
    uint64_t updated_us; /* ts of the last record */
    uint32_t n_records;
} tg_journal_info;

typedef struct {
    int (*append)(tg_journal *j, int type, const char *id, const void *payload, size_t len,
                  tg_journal_done_cb cb, void *user);
    int (*append_sync)(tg_journal *j, int type, const char *id, const void *payload, size_t len);
    int (*info)(tg_journal *j, const char *id, tg_journal_info *out);
    int (*read)(tg_journal *j, const char *id, tg_journal_rec_cb cb, void *user);
    int (*scan)(tg_journal *j, tg_journal_rec_cb cb, void *user);
    void (*close)(tg_journal *j);
} tg_journal_ops;

struct tg_journal {
    const tg_journal_ops *ops;
};

/* All return 0 or -errno (-ENOENT: unknown id; -EIO: the journal failed),
 * or the non-zero value a record callback stopped with. */
static inline int tg_journal_append(tg_journal *j, int type, const char *id, const void *payload,
                                    size_t len, tg_journal_done_cb cb, void *user) {
    return j->ops->append(j, type, id, payload, len, cb, user);
}
static inline int tg_journal_append_sync(tg_journal *j, int type, const char *id,
                                         const void *payload, size_t len) {
    return j->ops->append_sync(j, type, id, payload, len);
}
static inline int tg_journal_info_get(tg_journal *j, const char *id, tg_journal_info *out) {
    return j->ops->info(j, id, out);
}
static inline int tg_journal_read(tg_journal *j, const char *id, tg_journal_rec_cb cb, void *user) {
    return j->ops->read(j, id, cb, user);
}
static inline int tg_journal_scan(tg_journal *j, tg_journal_rec_cb cb, void *user) {
    return j->ops->scan(j, cb, user);
}
static inline void tg_journal_close(tg_journal *j) {
    if (j) j->ops->close(j);
}

#endif
