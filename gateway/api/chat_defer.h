/* chat_defer: cloud-only requests that wait for the cloud.
 *
 * A policy rule with `defer:` (policies/README.md) marks its requests
 * cloud-only. When such a request finds no cloud target that can answer
 * (offline, forced edge-only, every cloud breaker open, or every cloud
 * attempt failed before the first token), it is journaled DEFERRED instead
 * of failing:
 *   - not streamed: 202 with the GET /v1/requests/{id} object ("status":
 *     "deferred") and `Location: /v1/requests/{id}`; the request goes on
 *     with no client, its result is journaled for GET and for a retry with
 *     its Idempotency-Key;
 *   - streamed: the SSE head goes out with the id (x-tidegate-request-id),
 *     then an SSE comment `: keep-alive` every keepalive_s until the answer
 *     streams as usual, or until max_wait_s: then an error event
 *     (code deferred_timeout) naming the id, and the request keeps waiting
 *     with no client.
 * Deferred requests wait in one queue in arrival order. A timer (only
 * while the queue is not empty) sends the keep-alives and, when a cloud
 * target can take work again (mode back to online/degraded/cloud-only, a
 * breaker closed or past its cool-down), re-plans them by the policy in
 * force, oldest first (after a policy reload, all of them at once, as the
 * new rule says): DISPATCHED, then the terminal record (GET:
 * deferred -> running -> completed). A re-plan that is still empty keeps
 * waiting; one whose targets all fail before the first token waits again
 * (a new DEFERRED record). A request never waits past the journal's
 * retention: then FAILED, code deferred_expired (504).
 *
 * A restart re-plans what was left deferred (tg_apij_recover) like any
 * unfinished request: dispatched when the cloud can answer, deferred again
 * when not. At shutdown, waiting streams get an error event naming their
 * id; nothing terminal is journaled for them, so the next start picks them
 * up.
 *
 * Also here: what a request does when its client goes away
 * (tg_chat_finish_when_gone). Loop thread only. */
#ifndef TG_CHAT_DEFER_H
#define TG_CHAT_DEFER_H

#include <stdbool.h>

#include "gateway/api/api_routes.h"

/* The request's plan says defer and it can still wait: journaled, a chat
 * completion, nothing of an answer sent yet. */
bool tg_defer_wanted(const tg_chat *c);
/* Puts c in the deferred queue (journals DEFERRED first, answers 202 or
 * opens the keep-alive stream once that is durable). c must be
 * journaled or on its way (dispatch() calls this after ACCEPTED). */
void tg_defer_request(tg_chat *c);
/* Takes c off the queue if it is there (tg_chat_free). */
void tg_defer_remove(tg_chat *c);
/* Ends a deferred stream whose head went out: the terminal record
 * (type FAILED or CANCELLED, unless type is 0), the error event, the end
 * of the exchange; frees c. */
void tg_defer_end(tg_chat *c, int type, int status, const char *err_type, const char *code,
                  const char *msg);
/* The client went away: should the request run on (no client; its result
 * is journaled for GET and a retry with its key) rather than be cancelled?
 * The rule's on_client_gone, or by default: when it has an Idempotency-Key. */
bool tg_chat_finish_when_gone(const tg_chat *c);
/* on_abort of a running request: when it should finish, ends the exchange
 * (the request runs on with a NULL one) and returns true. */
bool tg_chat_let_client_go(tg_chat *c);
/* The request's x-tidegate-hint (-1, 0, 1), read once: from the header, or
 * for a recovered request from ACCEPTED; a deferred request is re-planned
 * after its client's headers are gone. */
int tg_chat_hint(tg_chat *c);
/* The request outlives its exchange (a 202 ends it, a client leaves while
 * it runs on): its body moves into the chat (own_req, as a recovered
 * request keeps it). Call before the exchange ends. */
void tg_chat_own_request(tg_chat *c);
/* How many requests wait (metrics, state). */
size_t tg_defer_count(const tg_api *api);
/* Shutdown: frees the waiting requests (their journal stays DEFERRED) and
 * closes the timer; run the loop once after. */
void tg_defer_close(tg_api *api);

#endif
