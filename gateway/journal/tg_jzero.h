/* tg_jzero: writes zeros ahead of the journal writer, so that its appends
 * land on blocks that are already allocated, written and durable.
 *
 * Why: on ext4 an fdatasync after an append that grows the file must also
 * allocate the blocks (delayed allocation happens at writeback) and write
 * the inode (the size changed), and without a journal each of those is a
 * separate synchronous device write. Overwriting blocks that already hold
 * durable zeros leaves only the data to write: the fdatasync in the
 * request's path costs one device write and a cache flush (bench_journal's
 * first line prints both floors; bench/README.md has the figures).
 *
 * A helper thread fills the active segment with zeros in chunks, up to a
 * lead past the writer's end that grows with what the segment has taken
 * (a quiet journal writes no megabytes of zeros), never past the segment's
 * size limit, making each chunk durable before it counts. The writer claims
 * every range before writing it; the helper only ever claims ranges past
 * the writer's end, and the writer waits only when the one chunk in flight
 * overlaps its range (it caught up with the zeros): a zero write can never
 * land on a record.
 *
 * The zeros past the last record are the "zero tail" recovery reads as the
 * segment's clean end (tg_jfile.c). All calls come from the thread that owns
 * the segment's I/O (the journal writer, under its I/O lock). */
#ifndef TG_JZERO_H
#define TG_JZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_jzero tg_jzero;

/* Starts the helper. limit: the segment size past which nothing is filled.
 * NULL if the thread cannot start (the journal then simply appends). */
tg_jzero *tg_jzero_start(uint64_t limit);
/* Fills segment fd (duplicated; the caller keeps its own) from end on. */
void tg_jzero_attach(tg_jzero *z, int fd, uint64_t end);
/* Stops filling the current segment; returns once no zero write is in
 * flight, so the caller may seal, truncate or close it. */
void tg_jzero_detach(tg_jzero *z);
/* The writer is about to write [off, off + len) of the attached segment. */
void tg_jzero_claim(tg_jzero *z, uint64_t off, uint64_t len);
/* Where the durable zeros of the attached segment end (0 if none). */
uint64_t tg_jzero_end(tg_jzero *z);
/* True when n > 0 bytes are all zero: zeros written ahead that no record
 * reached (recovery's clean end of a segment). */
bool tg_jzero_is_tail(const uint8_t *p, size_t n);
/* Stops and joins the helper. NULL is fine. */
void tg_jzero_stop(tg_jzero *z);

#endif
