/* api_journal: how the API uses the request journal (tg_journal.h).
 *
 * A chat request is journaled ACCEPTED (scope, idempotency key, body hash,
 * the body) and dispatched only once that record is durable; then
 * DISPATCHED, FAILOVER (from the router's observe hook), and one terminal
 * record: COMPLETED (the chat.completion, also for streamed requests),
 * FAILED or CANCELLED ({"status", "error"}). Waiters (idempotent retries
 * attached to a running request) are answered from the journal once the
 * terminal record is durable, so every answer for one id is the same.
 *
 * Also here: the idempotency-key table (tg_jidem), GET /v1/requests/{id},
 * and the journal's life (open from the `journal:` config, on by default;
 * recovery of what an earlier run left unfinished). All calls are no-ops
 * (or say "off") when api->journal is NULL. Loop thread only. */
#ifndef TG_API_JOURNAL_H
#define TG_API_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/api/api_routes.h"
#include "gateway/journal/tg_jidem.h"
#include "gateway/journal/tg_journal.h"

/* What ACCEPTED records besides the body. */
typedef struct {
    const char *scope;    /* hash of the API key, "" without keys */
    const char *idem;     /* Idempotency-Key or NULL */
    const char *body_sha; /* SHA-256 of the body, hex */
    bool stream, include_usage;
    int hint; /* x-tidegate-hint (-1, 0, 1): a re-plan after a restart needs it */
} tg_apij_meta;

/* The caller's scope: SHA-256 hex of its bearer token when API keys are
 * configured, else "". */
void tg_apij_scope(const tg_api *api, const tg_http_request *req, char out[65]);

/* Appends ACCEPTED; cb runs once it is durable (status 0) or failed.
 * Returns non-zero (and cb never runs) if it cannot be queued. */
int tg_apij_accept(tg_api *api, const char *id, const tg_apij_meta *m, const char *body, size_t len,
                   tg_journal_done_cb cb, void *user);
/* Appends a non-terminal record; nobody waits for it. */
void tg_apij_note(tg_api *api, const char *id, int type, const char *payload, size_t len);
/* Appends a terminal record; cb (may be NULL) runs once it is durable or
 * failed, then the request's waiters are answered. Returns non-zero (cb
 * never runs; waiters get 503) if it cannot be queued. */
int tg_apij_finish(tg_api *api, const char *id, int type, const char *payload, size_t len,
                   tg_journal_done_cb cb, void *user);
/* FAILED or CANCELLED with {"status", "error": {message, type, param, code}}. */
void tg_apij_end(tg_api *api, const char *id, int type, int status, const char *err_type,
                 const char *code, const char *msg);

/* ---- idempotency ---- */
typedef enum {
    TG_APIJ_IDEM_NEW = 0,  /* unknown key: recorded now for id, run it */
    TG_APIJ_IDEM_SAME = 1, /* known, same body: *found_id is the request */
    TG_APIJ_IDEM_DIFF = 2, /* known, different body: 422 */
} tg_apij_idem;
tg_apij_idem tg_apij_idem_claim(tg_api *api, const char *scope, const char *key,
                                const char *body_sha, const char *id, const char **found_id);
/* Forgets a key: its ACCEPTED could not be journaled, or its request was
 * refused with a retryable status. */
void tg_apij_idem_drop(tg_api *api, const char *scope, const char *key);

/* Answers ex with id's result now when it is terminal, else once it is
 * (stream: the stored result as SSE); a non-streamed retry of a deferred
 * request gets the 202 its first call got. */
void tg_apij_serve_result(tg_api *api, tg_http_exchange *ex, const char *id, bool stream,
                          bool include_usage);

/* The x-tidegate-hint ACCEPTED recorded for id (0 when none or unreadable). */
int tg_apij_hint(tg_api *api, const char *id);
/* Appends the GET /v1/requests/{id} object of id; -ENOENT or -EIO. */
int tg_apij_view_json(tg_api *api, const char *id, tg_buf *out);
/* A deferred request's answer: 202, Location: /v1/requests/{id}, the
 * request object as the body. Ends ex. */
void tg_apij_respond_deferred(tg_api *api, tg_http_exchange *ex, const char *id);

/* GET /v1/requests/{id} (route prefix /v1/requests/). */
void tg_api_requests(tg_api *api, tg_http_exchange *ex, const tg_http_request *req);

/* Opens the journal the config names (on by default) into api->journal.
 * Returns 0 or -1 (logged). */
int tg_apij_open(tg_api *api);
/* Re-runs what an earlier run left unfinished (after the listeners are
 * up). */
void tg_apij_recover(tg_api *api);
void tg_apij_close(tg_api *api);

#endif
