/* chat_resume: resumable chat completion streams.
 *
 * Every SSE event of a streamed chat completion carries `id: N`, its number
 * within the request (1 = the role chunk, then each delta, the final chunk,
 * the usage chunk; [DONE] or the error event is the last number + 1). When
 * the request is journaled, each event is a CHUNK record ({"n":N,"data":
 * chunk}, tg_jchunk) and reaches a client only once that record is durable
 * (the journal's group commit: many tokens of many streams share one
 * fdatasync), so whatever a client saw can be replayed.
 *
 * The clients of a stream are subscribers of its request id: the one that
 * started it (from its first event on) and any that resumed it. A resume
 * (POST with the same Idempotency-Key and body, or GET /v1/requests/{id}
 * with Accept: text/event-stream, each with Last-Event-ID: N) replays the
 * events after N from the journal and then follows the live ones; the end
 * ([DONE] or the error event) comes from the terminal record. A client that
 * leaves does not stop the run: it goes on, journaled, for a resume or a GET.
 *
 * After a crash, recovery re-runs a request that had streamed events
 * continuing from that durable prefix (on the engine, the text so far as
 * the start of the answer, as a mid-stream failover does), numbering on
 * from the last event, so the stored result is prefix + continuation.
 * Loop thread only. */
#ifndef TG_CHAT_RESUME_H
#define TG_CHAT_RESUME_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/api/api_routes.h"
#include "gateway/api/openai_api.h"

/* ---- the running request (chat_output.c, api_chat.c) ---- */

/* The stream's head is sent: a journaled request's events become durable
 * ones from now on and its client (if any) a subscriber. */
void tg_cres_adopt(tg_chat *c);
/* Sends one event (the data of a chat.completion.chunk) with the next
 * number: journaled and sent when durable, else sent now. */
void tg_cres_event(tg_chat *c, const char *data, size_t len);
/* Bytes of c's events appended but not yet durable (so not yet written to
 * any client): a relay adds them to its client's unsent output, so that a
 * fast upstream is paused while the journal catches up (chat_cloud.c). */
size_t tg_cres_unsent(const tg_chat *c);
/* Drops c's share of its event flow (tg_chat_free). */
void tg_cres_free(tg_chat *c);
/* Appends the id line the stream's end event ([DONE] / error) carries when
 * it is written by the request itself (not journaled streams). */
void tg_cres_end_id(tg_chat *c, tg_buf *out);
/* A recovered request that streamed before the crash: picks up its events
 * (ids, text so far, numbering) and sets it to continue on the engine.
 * Returns true when it was settled here instead (its end was already
 * streamed, or it cannot be continued); c is freed then. */
bool tg_cres_restore(tg_chat *c);
/* Shutdown: c's subscribers get what is durable and the error event now. */
void tg_cres_shutdown(tg_chat *c, const char *code, const char *msg);

/* What a request's CHUNK records say about its stream: where a re-run after
 * a crash starts (tg_cres_restore). Pure; the payloads are hostile input. */
typedef struct {
    uint64_t max_n; /* the last event's number (0: none) */
    int n_content;  /* events with content text */
    bool head;      /* id, created and model were read (from the first chunk) */
    char id[48];
    int64_t created;
    char model[RT_NAME_MAX];
    tg_buf text;   /* the content so far */
    bool tools;    /* a tool_calls delta went out */
    bool finished; /* the final chunk (finish_reason) went out */
    char finish[24];
    bool has_usage; /* ... and the usage chunk */
    tg_oai_usage usage;
    bool bad; /* a payload was unreadable or not the next number: stop */
} tg_cres_prefix;

void tg_cres_prefix_init(tg_cres_prefix *p);
void tg_cres_prefix_free(tg_cres_prefix *p);
/* Adds the next CHUNK payload; false (p->bad) when it cannot be read or is
 * not numbered max_n + 1. */
bool tg_cres_prefix_add(tg_cres_prefix *p, const uint8_t *payload, size_t len);

/* ---- resuming (api_chat.c idempotent retry, GET /v1/requests/{id}) ---- */

/* Answers ex with id's stream from the event after the request's
 * Last-Event-ID (400 when it is not a number). The caller checked the API
 * key's scope. Returns 0 when ex was answered, -1 when id was not a
 * streamed request with journaled events (the caller answers as before). */
int tg_cres_resume(tg_api *api, tg_http_exchange *ex, const tg_http_request *req, const char *id);

/* id's terminal record is durable (status 0) or could not be written: its
 * subscribers get the rest and the end. From api_journal.c. */
void tg_cres_wake(tg_api *api, const char *id, int status);
/* Registers tidegate_stream_event_durable_seconds (the journal is on). */
void tg_cres_metrics(tg_api *api);
/* Frees the subscribers (their exchanges are gone with the servers). */
void tg_cres_close(tg_api *api);

#endif
