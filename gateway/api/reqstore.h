/* reqstore: the JSON shapes a journaled request is kept and served in.
 * Pure functions over payloads the journal stored (hostile input: a
 * payload may be anything, it is read with json-c and bounded), no I/O.
 *
 * - toolacc: merges streamed tool_call deltas (stream form, each with an
 *   "index") into the non-streamed "tool_calls" array, so a streamed
 *   request's COMPLETED record is the same chat.completion a non-streamed
 *   one gets.
 * - replay: turns a stored chat.completion back into SSE events (an
 *   idempotent retry of a streamed request gets the same answer streamed).
 * - view: the GET /v1/requests/{id} object from a request's records. */
#ifndef TG_REQSTORE_H
#define TG_REQSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"

/* ---- tool-call deltas ---- */
typedef struct tg_toolacc tg_toolacc;
tg_toolacc *tg_toolacc_new(void);
void tg_toolacc_free(tg_toolacc *a);
/* Adds one delta's "tool_calls" array (JSON text). Malformed input is
 * ignored. Returns the number of calls known so far. */
size_t tg_toolacc_add(tg_toolacc *a, const char *json, size_t len);
/* Appends the merged array (non-stream form, no "index") to out, or
 * nothing and returns false when no call was seen. */
bool tg_toolacc_json(const tg_toolacc *a, tg_buf *out);

/* ---- replay ---- */
/* Appends the SSE events of a stored chat.completion: the role chunk, the
 * content, the tool calls, the final chunk with its finish_reason, the
 * usage chunk when include_usage and the completion has usage, and
 * [DONE]. Returns 0, or -1 (nothing appended) if completion is not a
 * chat.completion. */
int tg_replay_sse(const char *completion, size_t len, bool include_usage, tg_buf *out);

/* ---- GET /v1/requests/{id} ---- */
typedef struct {
    char scope[65]; /* from ACCEPTED ("" = no api keys) */
    bool accepted;  /* an ACCEPTED record was seen */
    int state;      /* last non-CHUNK record type */
    uint64_t created_us;
    char route[64];     /* the target that runs or ran it */
    bool stream;        /* the request was streamed */
    bool include_usage; /* ... and asked for the usage chunk */
    tg_buf failovers;   /* JSON objects, comma-separated */
    tg_buf result;      /* COMPLETED payload (a chat.completion) */
    tg_buf error;       /* FAILED / CANCELLED payload's "error" object */
    int error_status;   /* its HTTP status (0: unknown) */
} tg_reqview;

void tg_reqview_init(tg_reqview *v);
void tg_reqview_free(tg_reqview *v);
/* Feeds one record (in journal order). */
void tg_reqview_add(tg_reqview *v, int type, uint64_t ts_us, const uint8_t *payload, size_t len);
/* The status name for the GET object: accepted|running|deferred|completed|
 * failed|cancelled. */
const char *tg_reqview_status(const tg_reqview *v);
/* Appends {"id","object":"tidegate.request","status","created","route",
 * "failovers":[...],"result","error"}. */
void tg_reqview_json(const tg_reqview *v, const char *id, tg_buf *out);

#endif
