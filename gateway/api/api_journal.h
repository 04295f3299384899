/* api_journal: how the chat path uses the request journal (tg_journal.h).
 * A request is journaled ACCEPTED (with its body) and dispatched only once
 * that record is durable; its end is journaled COMPLETED (the response),
 * FAILED or CANCELLED. All calls are no-ops when api->journal is NULL.
 * Loop thread only. */
#ifndef TG_API_JOURNAL_H
#define TG_API_JOURNAL_H

#include <stddef.h>

#include "gateway/api/api_routes.h"
#include "gateway/journal/tg_journal.h"

/* Appends ACCEPTED for id: {"scope": <api key hash or "">, "idem": null,
 * "body": <the request body>}. cb runs once it is durable (status 0) or
 * failed; returns non-zero (and cb never runs) if it cannot be queued. */
int tg_apij_accept(tg_api *api, const char *id, const char *scope, const char *body, size_t len,
                   tg_journal_done_cb cb, void *user);
/* Appends a later record; nobody waits for it. */
void tg_apij_note(tg_api *api, const char *id, int type, const char *payload, size_t len);
/* Appends {"error": {"code": code, "message": msg}} as FAILED or CANCELLED. */
void tg_apij_end(tg_api *api, const char *id, int type, const char *code, const char *msg);

/* Opens the journal named by TIDEGATE_JOURNAL_DIR (key: TIDEGATE_JOURNAL_KEY
 * or TIDEGATE_JOURNAL_KEY_FILE) into api->journal; nothing when unset.
 * Requests an earlier run left unfinished are closed as FAILED ("restarted")
 * so each ends in exactly one terminal state. Returns 0 or -1 (logged). */
int tg_apij_open(tg_api *api);
void tg_apij_close(tg_api *api);

#endif
