/* http_internal: structures shared by the HTTP server's files.
 *
 *   http_server.c    listener, accept, connection limit, graceful close
 *   http_conn.c      one connection: reads, llhttp glue, limits, timers,
 *                    pipelining, dispatch to the handler
 *   http_response.c  one exchange: response heads, bodies, streams, errors,
 *                    access log
 *   http_tls.c       OpenSSL over memory BIOs
 *
 * Not for use outside these files, except the fuzz hook at the end. */
#ifndef TG_HTTP_INTERNAL_H
#define TG_HTTP_INTERNAL_H

#include <llhttp.h>
#include <openssl/ssl.h>

#include "common/tg_buf.h"
#include "gateway/http/http_server.h"

typedef struct tg_http_conn tg_http_conn;

/* Where a connection is in its request cycle; decides which timeout runs. */
typedef enum {
    TG_CONN_IDLE = 0,   /* between requests (no byte of the next one yet) */
    TG_CONN_HEAD,       /* reading request line and headers */
    TG_CONN_BODY,       /* reading the body */
    TG_CONN_DISPATCHED, /* the handler has the exchange; no parsing */
    TG_CONN_LINGER,     /* response sent, write side shut, draining input */
} tg_conn_phase;

struct tg_http_exchange {
    tg_http_conn *conn; /* stays valid (referenced) until the exchange ends */
    tg_http_request req;

    /* Request storage; req's pointers point here. */
    tg_buf url;
    tg_http_header *headers;
    size_t n_headers, cap_headers;
    tg_buf body;
    char reqid[TG_REQID_LEN + 1];
    char client_id[TG_REQID_CLIENT_MAX + 1];
    char *bearer;
    char *path; /* copy of url up to '?' */
    bool expect_continue;
    bool is_head;

    /* Response state. */
    tg_buf resp_headers; /* extra "name: value\r\n" lines */
    char route[64];
    int tokens_in, tokens_out;
    int status;      /* 0 until the head is sent */
    bool keep_alive; /* decided when the request completes */
    bool streaming;  /* stream_begin called */
    bool chunked;    /* streaming with chunked framing */
    bool dispatched; /* handed to the handler */
    bool aborted;    /* the client is gone */
    bool abort_fired;
    uint64_t bytes_out; /* response body bytes */
    void (*on_abort)(void *);
    void *abort_arg;
};

struct tg_http_conn {
    tg_http_server *srv;
    tg_http_conn *prev, *next; /* server's list */
    uv_tcp_t tcp;
    uv_timer_t read_timer;  /* header / body / idle / linger timeout */
    uv_timer_t write_timer; /* stalled reader */
    uv_shutdown_t shut_req;
    int handles_open; /* closes still to come back before the socket is gone */
    int refs;         /* 1 for the socket + 1 while an exchange is dispatched */

    llhttp_t parser;
    tg_conn_phase phase;
    tg_buf in; /* plaintext received and not yet parsed */
    /* Output: one buffer chain of two. `out` collects what is sent while
     * `flying` is being written by libuv (one uv_write at a time); when it
     * completes the two swap, so a connection holds two buffers whose sizes
     * follow its unsent bytes, not one allocation per send. */
    tg_buf out, flying;
    uv_write_t wreq;
    bool writing;          /* wreq in flight with `flying` */
    bool shutdown_pending; /* close_after_write waits for `out` to be handed over */
    size_t mem;            /* bytes this conn counts in srv->mem_used */
    int hscan;             /* obs-fold scanner state for the head being read */
    bool first_head;       /* the first request's head deadline runs from accept */
    size_t head_bytes;     /* raw bytes fed while reading the current head */
    size_t trailer_bytes;  /* chunked trailers count against the head limit */
    tg_buf field, value;   /* header being assembled */
    bool in_value;
    bool message_done; /* on_message_complete fired, dispatch pending */
    tg_http_exchange *cur;

    /* Error found inside a parser callback (413/431/...), answered once
     * llhttp_execute returns. */
    int err_status;
    const char *err_code;
    const char *err_msg;

    bool closing;    /* uv_close issued (or fake conn closed) */
    bool sock_gone;  /* every handle closed */
    bool rejected;   /* over the connection limit: 503 then close */
    bool counted;    /* counted in srv->n_active */
    bool reading;    /* uv_read_start active */
    bool eof;        /* peer shut its side */
    bool in_process; /* conn_process on the stack */
    bool fake;       /* fuzz/test connection without a socket */
    tg_buf *sink;    /* fake: where output goes */

    char peer[64];
    bool loopback;

    /* TLS (NULL ssl = plain TCP). */
    SSL *ssl;
    BIO *rbio, *wbio; /* network side: rbio fed from reads, wbio drained to writes */
    bool tls_ready;   /* handshake finished */
};

struct tg_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open; /* handle initialised and not yet closed back */
    bool listener_closing;
    bool draining; /* tg_http_server_close called */
    tg_http_opts o;
    tg_http_handler handler;
    void *user;
    SSL_CTX *tls;
    int port;

    tg_http_conn *conns;
    size_t n_active; /* counted (not rejected) connections with an open socket */
    size_t n_rejected_open;
    size_t n_inflight;
    size_t mem_used; /* sum of every conn's mem: checked against o.memory_budget */
    uint64_t total_conns, total_rejected, total_requests;

    void (*done)(void *);
    void *done_arg;
    bool finished;
    char readbuf[65536]; /* one loop thread: reads are consumed before the next */
};

/* http_conn.c */
tg_http_conn *tg_http_conn_new(tg_http_server *s);
void tg_http_conn_start(tg_http_conn *c);             /* after uv_accept */
void tg_http_conn_close(tg_http_conn *c);             /* abrupt; fires on_abort if in flight */
void tg_http_conn_close_after_write(tg_http_conn *c); /* graceful: flush, shutdown, linger */
void tg_http_conn_ref(tg_http_conn *c);
void tg_http_conn_unref(tg_http_conn *c);
/* Raw output (through TLS when on). Returns 0 or -1 when the socket is gone. */
int tg_http_conn_send(tg_http_conn *c, const char *data, size_t len);
/* Parses buffered input until a request is dispatched or input runs out. */
void tg_http_conn_process(tg_http_conn *c);
/* The current exchange ended: next request or close. */
void tg_http_conn_exchange_done(tg_http_conn *c, bool keep_alive);
size_t tg_http_conn_write_queue(const tg_http_conn *c);
/* Recounts c's buffered bytes in the server's memory budget. */
void tg_http_conn_account(tg_http_conn *c);

/* http_response.c */
tg_http_exchange *tg_http_ex_new(tg_http_conn *c);
void tg_http_ex_free(tg_http_exchange *ex);
/* Answers an exchange the handler never saw (limit or parse errors). */
void tg_http_ex_fail(tg_http_exchange *ex, int status, const char *code, const char *msg);
/* The client is gone: mark, and run on_abort once. */
void tg_http_ex_abort(tg_http_exchange *ex);

/* http_server.c */
void tg_http_server_conn_freed(tg_http_server *s, tg_http_conn *c);

/* http_tls.c */
SSL_CTX *tg_http_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
int tg_http_tls_conn_init(tg_http_conn *c);
/* Ciphertext in; plaintext appended to c->in. Returns 0, 1 on clean
 * close_notify, -1 on a TLS error. Pending handshake output is sent. */
int tg_http_tls_on_read(tg_http_conn *c, const char *data, size_t len);
/* Plaintext out, encrypted and sent. Returns 0 or -1. */
int tg_http_tls_write(tg_http_conn *c, const char *data, size_t len);
/* Queues close_notify. */
void tg_http_tls_shutdown(tg_http_conn *c);
/* Raw socket write (no TLS), used by the TLS layer for ciphertext. */
int tg_http_conn_send_raw(tg_http_conn *c, const char *data, size_t len);

/* ---------------------------------------------------------- fuzz hook -- */

/* Runs the connection's parser glue over buf exactly as if it had arrived
 * on a socket in pieces of `split` bytes (0 = one piece), with small limits
 * (body 4 KiB, head 2 KiB, 16 headers). Each complete request goes to
 * on_request (may be NULL), then gets a 200 answer. The server's output is
 * appended to out when not NULL. Returns the number of requests handled. */
int tg_http_conn_feed_for_fuzz(const uint8_t *buf, size_t len, size_t split,
                               void (*on_request)(const tg_http_request *req, void *arg), void *arg,
                               tg_buf *out);

#endif
