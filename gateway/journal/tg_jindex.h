/* tg_jindex: the files backend's in-memory index, rebuilt from the segments
 * at every start: request id -> state and where each record lies. Not
 * thread-safe; tg_jfile guards it with its own mutex.
 *
 * It grows without pausing: the writer adds under the lock every append
 * waits for, so doubling the table by rehashing every entry at once stalled
 * all appends (20 ms at 64k entries, growing with the journal). The old
 * table is moved over a few buckets per add instead, and each entry keeps
 * its hash. The first records of a request sit inline in its entry: one
 * small array per request, freed by the million when a big journal closes,
 * made glibc's next large allocation in that arena stop for 185 ms to
 * merge them (malloc_consolidate). */
#ifndef TG_JINDEX_H
#define TG_JINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/journal/tg_jrec.h"

typedef struct {
    uint64_t seg;
    uint64_t off;
    uint32_t size;
} tg_jloc;

#define TG_JINDEX_INLINE_LOCS 4 /* ACCEPTED, DISPATCHED, a terminal: no malloc */

typedef struct tg_jentry {
    struct tg_jentry *next; /* hash chain */
    uint64_t hash;
    char id[TG_JREC_ID_MAX + 1];
    uint8_t state; /* last non-CHUNK type */
    uint8_t n_terminal;
    uint64_t chunk_n; /* tg_jcheck only: number of the last CHUNK seen */
    uint64_t created_us, updated_us, terminal_us;
    uint64_t first_seg, last_seg;
    tg_jloc *locs; /* inl, or malloc'd once there are more */
    uint32_t n_locs, cap_locs;
    tg_jloc inl[TG_JINDEX_INLINE_LOCS];
} tg_jentry;

/* What compaction needs of the requests whose first record lies in one
 * segment, kept up to date by every add: finding the cut then reads one of
 * these per segment instead of walking every entry (which, under the lock
 * the writer holds, stalled appends at each rotation, longer as the
 * retention window filled up). */
typedef struct {
    uint64_t seg;
    uint64_t live;        /* not terminal yet */
    uint64_t max_term_us; /* latest first-terminal time among the terminal ones */
} tg_jsegstat;

typedef struct {
    tg_jentry **slots;
    size_t n_slots, count;
    tg_jsegstat *stats; /* ascending seg */
    size_t n_stats, cap_stats;
    /* While growing: the previous table, whose buckets below mig are moved. */
    tg_jentry **old;
    size_t n_old, mig;
} tg_jindex;

void tg_jindex_init(tg_jindex *x);
void tg_jindex_free(tg_jindex *x);
tg_jentry *tg_jindex_find(const tg_jindex *x, const char *id, size_t id_len);
/* Records one durable record. A record other than ACCEPTED for an id with
 * no entry is an orphan: returns -1 and records nothing. */
int tg_jindex_add(tg_jindex *x, int type, const char *id, size_t id_len, uint64_t ts_us,
                  uint64_t seg, uint64_t off, uint32_t size);
/* The highest segment number that can be deleted, with every segment
 * before it: every request that starts in them is terminal since before
 * older_than_us (its records in later segments, if any, stay there as
 * remnants: skipped by recovery, counted apart by `journal check`). Never
 * reaches active_seg. Returns 0 when nothing can go. */
uint64_t tg_jindex_compact_cut(const tg_jindex *x, uint64_t older_than_us, uint64_t first_seg,
                               uint64_t active_seg);
/* Finishes a pending grow, so that every entry is in slots[0..n_slots). */
void tg_jindex_settle(tg_jindex *x);
/* Forgets every entry whose first record lies in a segment <= cut (cut
 * from tg_jindex_compact_cut). */
void tg_jindex_drop_through(tg_jindex *x, uint64_t cut);

#endif
