/* http_server: the gateway's HTTP/1.1 server on a libuv loop.
 *
 * One listener (IPv4 or IPv6, optional TLS via OpenSSL memory BIOs), llhttp
 * for parsing, keep-alive, HTTP/1.0, pipelining (requests on one connection
 * are answered strictly in order: the next one is not parsed before the
 * current response has ended), Expect: 100-continue, chunked and
 * Content-Length bodies. Limits are enforced before anything reaches the
 * handler: body -> 413 (without reading it), header size/count -> 431,
 * malformed -> 400, too many connections -> 503, slow clients -> timeouts.
 * Every response, errors included, carries `x-request-id`. The server knows
 * nothing of the API above it: the body of an error answer, its own
 * (400, 408, 413, 431, 503 at the connection limit) or tg_http_respond_error,
 * comes from the formatter the API passes in (tg_http_opts.error_body).
 *
 * Lifetime of an exchange (one request and its response):
 *   - the handler is called once the whole request (body included) is read;
 *   - it may answer at once or later (from any loop callback), but exactly
 *     one of tg_http_respond / tg_http_respond_error / tg_http_stream_end
 *     must end it; that call frees the exchange;
 *   - the tg_http_request and every string in it stay valid until then;
 *   - if the client goes away first (disconnect, write stall), the on_abort
 *     callback runs once; the exchange stays valid until the handler ends it
 *     (the end call then only frees it, nothing is sent). A failed
 *     tg_http_stream_write (-1) means the same; on_abort then still follows
 *     from a later loop callback, unless the handler ends the exchange
 *     first. Ending the exchange inside on_abort is fine.
 *
 * Threading: every function here must be called on the loop's thread
 * (engine tokens arrive there through uv_async_t). Nothing blocks the loop:
 * stream writes are queued and a client that stops reading for
 * write_timeout_ms is cut off (on_abort fires). */
#ifndef TG_HTTP_SERVER_H
#define TG_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/tg_buf.h"
#include "gateway/http/reqid.h"

typedef struct {
    const char *name; /* lowercased, NUL-terminated */
    size_t name_len;
    const char *value; /* NUL-terminated, surrounding whitespace trimmed */
    size_t value_len;
} tg_http_header;

typedef struct tg_http_server tg_http_server;
typedef struct tg_http_exchange tg_http_exchange;

typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query, NUL-terminated, not decoded */
    const char *query;  /* text after '?', or NULL when there is none */
    const tg_http_header *headers;
    size_t n_headers;
    const char *body; /* NUL-terminated (body[body_len] == 0); "" when empty */
    size_t body_len;
    /* "req_" + 32 hex chars of 128 random bits; generated here, never taken
     * from the client. */
    const char *request_id;
    /* The client's x-request-id (only [A-Za-z0-9._:-], at most
     * TG_REQID_CLIENT_MAX chars) or NULL. Logged and echoed, never trusted. */
    const char *client_request_id;
    /* Authorization: Bearer token, or NULL. Never log it. */
    const char *bearer;
    const char *peer_addr; /* client IP as text */
    bool peer_is_loopback;
    int http_minor;    /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    int listener;      /* tg_http_opts.listener of the server that read it */
    uint64_t start_ns; /* uv_hrtime() when the request's first byte arrived */
} tg_http_request;

typedef void (*tg_http_handler)(tg_http_exchange *ex, const tg_http_request *req, void *user);

/* One finished exchange, as the access log records it. Passed to
 * tg_http_opts.on_response exactly once per response the server makes,
 * whoever made it: the handler, or the server itself (413, 431, 400, 408,
 * 417, 505, and the 503 over max_connections). A request that was never
 * answered (the client left mid-head) is not reported. */
typedef struct {
    /* The request as far as it was parsed: method and path are "-" when the
     * head never completed. Valid only during the callback. */
    const tg_http_request *req;
    const char *route;         /* tg_http_set_route label, "" when none was set */
    int status;                /* status of the head sent (or meant to be); 499 when none */
    bool handled;              /* false: answered by the server, the handler never saw it */
    bool aborted;              /* the client was gone before the response ended */
    bool abort_notified;       /* on_abort ran: the handler was told the client left */
    int tokens_in, tokens_out; /* tg_http_set_tokens values */
    uint64_t bytes_out;        /* response body bytes */
    double ms;                 /* from the request's first byte to the end */
} tg_http_done;

typedef void (*tg_http_done_fn)(void *user, const tg_http_done *d);

/* Writes the body of an error answer into out and returns its content
 * type. code is a short machine-readable name ("body_too_large") or NULL. */
typedef const char *(*tg_http_error_fn)(tg_buf *out, int status, const char *code,
                                        const char *message);

/* A request refused at the end of its head (tg_http_opts.on_head). */
typedef struct tg_http_reject {
    int status;                   /* 401, 403, ... */
    const char *code;             /* OpenAI error code ("invalid_api_key") */
    const char *message;          /* static text */
    const char *www_authenticate; /* value of WWW-Authenticate, or NULL */
} tg_http_reject;

/* Zero fields mean the defaults (tg_http_opts_defaults fills them from
 * common/tg_defaults.h, the table the config starts from too). */
typedef struct {
    const char *host;        /* "127.0.0.1", "::", "0.0.0.0", "::1"; default 127.0.0.1 */
    int port;                /* 0 = ephemeral (see tg_http_server_port) */
    size_t max_body_bytes;   /* default 1 MiB */
    size_t max_header_bytes; /* request line + headers; default 16 KiB */
    size_t max_headers;      /* default 64 */
    int max_connections;     /* default 1024; beyond: 503 then close */
    /* Deadlines, not silence timers: a head must be complete header_timeout_ms
     * after its first byte (for a connection's first request: after the
     * accept), a body body_timeout_ms after its head; trickling bytes does
     * not extend them. Past one: 408, then close. */
    uint64_t header_timeout_ms; /* default 10 s */
    uint64_t body_timeout_ms;   /* default 30 s */
    uint64_t idle_timeout_ms;   /* idle keep-alive connection; default 60 s */
    uint64_t write_timeout_ms;  /* client not draining our writes; default 30 s */
    const char *tls_cert_file;  /* PEM; both set = TLS on the listener */
    const char *tls_key_file;
    int backlog; /* listen backlog; default 511 */
    /* Output bound: while a connection's unsent output is over this, its
     * next pipelined request is neither parsed nor dispatched and reading
     * from it pauses (a streaming response still writes). Default 1 MiB. */
    size_t conn_buffer_limit;
    /* Global budget: request bodies + unparsed input + unsent output of
     * every connection of this server. A request arriving past it gets 503
     * + Retry-After (and the connection closes) instead of the process
     * growing. Default 256 MiB. */
    size_t memory_budget;
    /* Copied into every tg_http_request.listener (tells the API which of
     * its listeners a request came in on). */
    int listener;
    /* Optional: called once a request's head is complete, before any body
     * byte is read and before 100 Continue. Returns 0 to go on, or fills
     * *rej and returns its status: the server then answers it as error JSON
     * and closes the connection without reading the body. Must not call
     * back into the server. */
    int (*on_head)(void *user, const tg_http_request *req, struct tg_http_reject *rej);
    void *on_head_user;
    /* Optional (user = on_head_user): called just before the server itself
     * answers a request whose head it has read with an error (an on_head
     * refusal, 408, 413, 503 over the memory budget, ...), to add the
     * headers the API puts on every answer (CORS), so that a browser can
     * read those errors too. Must only add headers. */
    void (*error_headers)(void *user, const tg_http_request *req, tg_http_exchange *ex);
    /* Optional: called on the loop thread when an exchange ends, right after
     * its access-log line (metrics). Must not call back into the exchange. */
    tg_http_done_fn on_response;
    void *on_response_user;
    /* Error bodies in the API's format; NULL: text/plain, the message. */
    tg_http_error_fn error_body;
} tg_http_opts;

void tg_http_opts_defaults(tg_http_opts *o);

/* Binds and listens. Returns 0, or -1 with a message in err (after a
 * failed bind the listener handle is still closing: run the loop once more
 * before uv_loop_close). */
int tg_http_server_start(uv_loop_t *loop, const tg_http_opts *o, tg_http_handler h, void *user,
                         tg_http_server **out, char *err, size_t errlen);

/* Graceful shutdown, step 1: close the listener (no new connections). */
void tg_http_server_stop_accepting(tg_http_server *s);

/* Step 2: stop accepting (if not done), close idle connections, let
 * requests already arriving finish reading (within their timeouts) and
 * in-flight exchanges finish (their responses go out with
 * `connection: close`), then free the server and call done(arg) once every
 * handle is closed. The serve layer decides a deadline; past it, it ends its
 * streams itself or calls tg_http_server_abort_inflight. */
void tg_http_server_close(tg_http_server *s, void (*done)(void *), void *arg);

/* Cuts every connection with an in-flight exchange (and, while draining,
 * any request still being read): on_abort callbacks fire (the handlers
 * still have to end the exchanges). */
void tg_http_server_abort_inflight(tg_http_server *s);

int tg_http_server_port(const tg_http_server *s);
/* Open client connections (for the metrics gauge). */
size_t tg_http_server_active_connections(const tg_http_server *s);
/* Exchanges handed to the handler and not yet ended. */
size_t tg_http_server_inflight(const tg_http_server *s);
/* Bytes counted against memory_budget right now (bodies, unparsed input,
 * unsent output). */
size_t tg_http_server_memory_used(const tg_http_server *s);
/* Totals since start (for metrics): accepted connections, rejected by the
 * connection limit, requests dispatched to the handler. */
uint64_t tg_http_server_total_connections(const tg_http_server *s);
uint64_t tg_http_server_rejected_connections(const tg_http_server *s);
uint64_t tg_http_server_total_requests(const tg_http_server *s);

/* ---------------------------------------------------------- requests -- */

/* The request of a live exchange. */
/* A NULL exchange is a request with no client (one the journal re-runs
 * after a restart): the calls below that answer or stream do nothing
 * (stream_write returns -1, exchange_aborted true). */
const tg_http_request *tg_http_exchange_request(const tg_http_exchange *ex);
/* First header with this (case-insensitive) name, or NULL. */
const char *tg_http_request_header(const tg_http_request *req, const char *name);
/* True once the client is gone (on_abort has fired or would have). */
bool tg_http_exchange_aborted(const tg_http_exchange *ex);

/* Client disconnected (or stalled) before the end. Set it from the handler;
 * it runs at most once, on the loop, never from inside a tg_http_* call. */
void tg_http_set_on_abort(tg_http_exchange *ex, void (*cb)(void *arg), void *arg);

/* For the access log (never prompt text or keys). route is a short label
 * the API layer chooses, e.g. "engine" or "cloud:openai"; copied. */
void tg_http_set_tokens(tg_http_exchange *ex, int tokens_in, int tokens_out);
void tg_http_set_route(tg_http_exchange *ex, const char *route);

/* --------------------------------------------------------- responses -- */

/* Adds a response header (copied). Call before respond/stream_begin.
 * Names are sent as given; content-type (an argument of respond and
 * stream_begin), content-length, transfer-encoding, connection and
 * x-request-id are managed here and ignored if added. CR/LF in a name
 * or value drops the header (no response splitting). */
void tg_http_add_header(tg_http_exchange *ex, const char *name, const char *value);

/* A complete response with content-length. Ends the exchange. */
void tg_http_respond(tg_http_exchange *ex, int status, const char *content_type, const char *body,
                     size_t len);

/* An error answer: the body comes from tg_http_opts.error_body (status, a
 * machine-readable code or NULL, the formatted message). Ends the exchange
 * (after stream_begin it can only end the stream: send an error event
 * through the stream first). */
void tg_http_respond_error(tg_http_exchange *ex, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Streaming: chunked transfer encoding on HTTP/1.1 (on HTTP/1.0 the body is
 * delimited by closing the connection). */
void tg_http_stream_begin(tg_http_exchange *ex, int status, const char *content_type);
/* Queues data (copied). Returns 0, or -1 once the client is gone. Never
 * blocks; a zero length is a no-op. */
int tg_http_stream_write(tg_http_exchange *ex, const char *data, size_t len);
/* Bytes queued to the socket and not yet written (for backpressure). */
size_t tg_http_stream_pending(const tg_http_exchange *ex);
/* Ends the exchange (terminating chunk when the client is still there). */
void tg_http_stream_end(tg_http_exchange *ex);

/* Status reason phrase ("OK", "Not Found", ...). */
const char *tg_http_status_text(int status);

#endif
