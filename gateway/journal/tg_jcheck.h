/* tg_jcheck: verifies the journal's invariants over any backend (through
 * tg_journal_scan) and counts requests per state. Used by
 * `tidegate journal check` and by the crash and corruption tests.
 *
 * Invariants: every record of an id follows its one ACCEPTED; ACCEPTED
 * carries the request (a JSON object with "body"); at most one terminal
 * record per id and nothing after it; one idempotency key (per API-key
 * scope) names one request; a request's CHUNK records (tg_jchunk) are
 * numbered 1, 2, 3, ... with no gap or repeat; with strict, every request is terminal. */
#ifndef TG_JCHECK_H
#define TG_JCHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gateway/journal/tg_journal.h"

typedef struct {
    uint64_t records, requests;
    uint64_t accepted, running, deferred, completed, failed, cancelled; /* by current state */
    uint64_t chunks;
    uint64_t violations;
    uint64_t remnants; /* records of compacted requests (compacted journals only) */
} tg_jcheck_result;

/* 429 and 503: a refusal the client is told to retry. */
bool tg_jcheck_status_retryable(int status);
/* r is a FAILED record whose {"status": N} is retryable: the gateway
 * released the request's Idempotency-Key when it ended. */
bool tg_jcheck_is_refusal(const tg_jrec *r);

/* Scans j; prints each violation (at most max_print) to out when out is
 * non-NULL. Returns 0, or -errno if the scan itself failed. */
int tg_jcheck_run(tg_journal *j, bool strict, FILE *out, int max_print, tg_jcheck_result *res);
/* The same for a journal whose oldest segments compaction deleted
 * (tg_jfile_report.first_seg > 1): a record whose request has no ACCEPTED
 * is then a remnant of a request that ended past retention and was split
 * by the cut (counted in remnants), not a violation. */
int tg_jcheck_run_compacted(tg_journal *j, bool strict, bool compacted, FILE *out, int max_print,
                            tg_jcheck_result *res);

#endif
