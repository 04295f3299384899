/* tg_jfile: the journal on local segment files (the default backend).
 *
 * DIR holds <number>.tgj segments (0600, DIR itself 0700) and a lock file
 * that keeps a second gateway out. Appends are encoded (and sealed) on the
 * caller's thread and queued; one writer thread writes whatever is queued
 * as one batch, fdatasyncs once (group commit) and completes the batch's
 * waiters: loop callbacks through a uv_async, blocking waiters through a
 * condition variable. A record is reported durable only after its
 * fdatasync returned; a failed fdatasync fails the journal for good (the
 * kernel may have dropped the dirty pages), a failed write (disk full)
 * fails that batch only, after cutting the partial write off. A helper
 * (tg_jzero.c) writes durable zeros ahead of the writer, so that a batch
 * overwrites allocated blocks and its fdatasync writes the data alone;
 * zeros that no record reached end a segment cleanly, and are cut off when
 * it is sealed.
 *
 * Open recovers: segments are read in order, the first bad or short
 * record ends the trusted journal, the torn tail is truncated, segments
 * after it are renamed aside (*.tgj.bad, never deleted), the index is
 * rebuilt, and appends go to a fresh segment. Rotation starts a new
 * segment past segment_bytes; then compaction deletes the oldest segments
 * whose requests all ended more than retention_s ago. */
#ifndef TG_JFILE_H
#define TG_JFILE_H

#include <stdint.h>

#include <uv.h>

#include "gateway/journal/tg_jcrypt.h"
#include "gateway/journal/tg_journal.h"

typedef struct {
    const char *dir;
    uint64_t segment_bytes; /* 0: 64 MiB */
    uint64_t retention_s;   /* 0: 24 h */
    const tg_jcrypt *key;   /* NULL: plaintext; borrowed, must outlive the journal */
    bool read_only;         /* inspect only: no lock, no repair, no appends */
    bool no_sync;           /* skip fdatasync (journal.fsync: false): survives a process
                               crash, not a power cut */
    uv_loop_t *loop;        /* where append callbacks run; NULL: append_sync only */
} tg_jfile_opts;

/* What open found. */
typedef struct {
    uint64_t segments, records, requests;
    uint64_t first_seg;      /* the oldest segment's number (> 1: compaction ran) */
    uint64_t orphans;        /* records whose id has no ACCEPTED (ignored) */
    uint64_t bad_seg;        /* segment holding the first bad record (0: none) */
    uint64_t bad_off;        /* its offset there */
    uint64_t torn_bytes;     /* bytes after it in that segment */
    uint64_t after_bad_segs; /* whole segments after it (renamed aside) */
    bool bad_is_short;       /* the tail ends inside a record (a torn write) */
} tg_jfile_report;

/* Returns a journal, or NULL with a message in err. report may be NULL. */
tg_journal *tg_jfile_open(const tg_jfile_opts *o, tg_jfile_report *report, char *err, size_t errsz);

/* Runs compaction now with "now" as given (tests; rotation runs it too).
 * Returns the number of segments deleted. */
int tg_jfile_compact(tg_journal *j, uint64_t now_us);
/* Closes the current segment and starts a new one (tests). */
int tg_jfile_rotate(tg_journal *j);

#endif
