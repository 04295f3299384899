/* pcache: the scheduler's prefix cache (engine-private; used by sched.c).
 *
 * Multi-turn chats resend their whole history, so most of a request's
 * prompt was evaluated before. An entry keeps the token ids a finished job
 * fed, the KV rows of every attention block for those positions, and the
 * conv state at a few positions ("checkpoints"). Attention state can be cut
 * at any position (a sequence only reads KV rows below its pos), but conv
 * blocks carry a rolling window of the last K-1 inputs, which exists only
 * where it was copied out: at each prefill step's end and at the job's end.
 *
 * A new prompt restores at the largest checkpoint p that lies inside its
 * common prefix with an entry and leaves at least one prompt token to
 * evaluate (the first sample needs logits). The restored state is the exact
 * bytes a fresh prefill of those p tokens produces (the engine's results do
 * not depend on batching or chunking), so tokens are identical with and
 * without reuse.
 *
 * Bounded by bytes (token ids + KV rows + conv copies), least recently used
 * entry evicted first. An entry whose tokens are a prefix of a new one is
 * merged into it (chat turn k is a prefix of turn k+1), so a conversation
 * holds one entry. Not thread-safe: the scheduler thread owns it. */
#ifndef LFM_PCACHE_H
#define LFM_PCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/lfm.h"
#include "engine/lfm_sched.h"

/* Conv-state copies a running job keeps (its prefill step ends); when full,
 * the newest replaces the last one. */
#define PC_MAX_MARKS 16
/* Checkpoints one entry keeps after merges; the oldest positions go first. */
#define PC_MAX_CKPT 64

typedef struct pc_cache pc_cache;

/* A running job's checkpoints, not yet in the cache. Zero-initialize. */
typedef struct {
    int n;
    int pos[PC_MAX_MARKS];
    float *conv[PC_MAX_MARKS];
} pc_marks;

typedef lfm_cache_stats pc_stats;

/* NULL when max_bytes is 0 (cache off) or out of memory. */
pc_cache *pc_new(lfm_model *m, size_t max_bytes);
void pc_free(pc_cache *c);

/* Restores the longest usable cached prefix of prompt into seq (which must
 * be freshly reset). Returns the position restored to (tokens that need no
 * evaluation), 0 when nothing matched or memory for the KV rows was short. */
int pc_restore(pc_cache *c, const int32_t *prompt, int n_prompt, lfm_seq *seq);

/* Copies seq's conv state at its current position into marks. */
void pc_mark(pc_cache *c, pc_marks *mk, const lfm_seq *seq);
void pc_marks_free(pc_marks *mk);

/* Stores seq's state: tokens[0..n) are what seq consumed (lfm_seq_pos(seq)
 * == n). Takes over mk's copies (mk is left empty). Evicts least recently
 * used entries to stay within the budget; an entry larger than the whole
 * budget is not kept. */
void pc_insert(pc_cache *c, const int32_t *tokens, int n, const lfm_seq *seq, pc_marks *mk);

void pc_get_stats(const pc_cache *c, pc_stats *st);

#endif
