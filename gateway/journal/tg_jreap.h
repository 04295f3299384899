/* tg_jreap: deletes compacted segment files off the journal writer's path.
 *
 * Why: deleting a 64 MiB segment frees its blocks, and on a filesystem
 * mounted with online discard (ext4 without a journal trims as it frees)
 * one unlink took 15-27 ms on the bench disk. Done by the writer at
 * rotation, that stalled every append queued behind it. Compaction still
 * decides (and drops the segments from the index) on the writer; a helper
 * thread unlinks the files in order, then syncs the directory. A crash
 * before that leaves whole, sealed, already compacted segments, which the
 * next open reads and compacts again. */
#ifndef TG_JREAP_H
#define TG_JREAP_H

typedef struct tg_jreap tg_jreap;

/* Starts the helper for the directory dirfd (borrowed: it must outlive the
 * helper). NULL if the thread cannot start (then delete inline). */
tg_jreap *tg_jreap_start(int dirfd);
/* Queues dirfd/name for deletion. */
void tg_jreap_add(tg_jreap *r, const char *name);
/* Deletes what is queued, stops and joins the helper. NULL is fine. */
void tg_jreap_stop(tg_jreap *r);

#endif
