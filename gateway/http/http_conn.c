/* http_conn: one client connection.
 *
 * Bytes come in (through TLS when on), are buffered in c->in and fed to
 * llhttp. The parser pauses at the end of each request; the request goes to
 * the handler and nothing more is parsed until its response has ended, so
 * pipelined requests are answered in order and a slow handler keeps the
 * rest of the input buffered (reading stops when that buffer is full).
 *
 * Limits are checked while parsing, before anything reaches the handler:
 * the head (request line + headers) may take max_header_bytes raw bytes and
 * max_headers headers (431), the body max_body_bytes (413, decided from
 * Content-Length before the body is read), and garbage gets 400. Those
 * errors close the connection after the answer: the rest of the stream is
 * not trustworthy.
 *
 * One read timer covers the phase the connection is in (head, body, idle
 * keep-alive, linger); a second one fires when queued writes make no
 * progress for write_timeout_ms (a client that stopped reading).
 *
 * Lifetime: c->refs counts the socket (dropped once every handle has closed)
 * and a dispatched exchange (dropped when the handler ends it), so an
 * exchange whose client vanished stays valid until the handler is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/tg_log.h"
#include "gateway/http/http_internal.h"

/* Buffered-but-unparsed input beyond which reading pauses (a client
 * pipelining faster than we answer). */
#define TG_CONN_INBUF_MAX (256 * 1024)
/* How long to keep draining input after a closing response was sent, so
 * the client sees the response instead of a reset. */
#define TG_CONN_LINGER_MS 2000

static const llhttp_settings_t *parser_settings(void);
static void conn_read_resume(tg_http_conn *c);

/* ---------------------------------------------------------- lifetime -- */

tg_http_conn *tg_http_conn_new(tg_http_server *s) {
    tg_http_conn *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->srv = s;
    c->refs = 1;
    llhttp_init(&c->parser, HTTP_REQUEST, parser_settings());
    c->parser.data = c;
    snprintf(c->peer, sizeof c->peer, "-");
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    return c;
}

void tg_http_conn_ref(tg_http_conn *c) {
    c->refs++;
}

void tg_http_conn_unref(tg_http_conn *c) {
    if (--c->refs > 0) return;
    if (c->cur) tg_http_ex_free(c->cur); /* never dispatched (half-read request) */
    c->srv->mem_used -= c->mem;
    c->mem = 0;
    tg_buf_free(&c->in);
    tg_buf_free(&c->out);
    tg_buf_free(&c->flying);
    tg_buf_free(&c->field);
    tg_buf_free(&c->value);
    if (c->ssl) SSL_free(c->ssl); /* frees both BIOs */
    tg_http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
    tg_http_server_conn_freed(s, NULL);
}

/* Every handle is closed: the client is gone for good. */
static void conn_socket_gone(tg_http_conn *c) {
    c->sock_gone = true;
    if (c->counted) {
        c->counted = false;
        c->srv->n_active--;
    }
    if (c->rejected) c->srv->n_rejected_open--;
    tg_http_exchange *ex = c->cur;
    if (ex && ex->dispatched) {
        /* The handler may end the exchange inside on_abort; the temporary
         * reference keeps c alive until we are done with it. */
        tg_http_conn_ref(c);
        tg_http_ex_abort(ex);
        tg_http_conn_unref(c);
    }
    tg_http_conn_unref(c);
}

static void on_handle_closed(uv_handle_t *h) {
    tg_http_conn *c = h->data;
    if (--c->handles_open == 0) conn_socket_gone(c);
}

void tg_http_conn_close(tg_http_conn *c) {
    if (c->closing) return;
    c->closing = true;
    if (c->cur && c->cur->dispatched) c->cur->aborted = true;
    if (c->fake) {
        conn_socket_gone(c);
        return;
    }
    c->handles_open = 3;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->read_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->write_timer, on_handle_closed);
}

/* ------------------------------------------------------------- output -- */

static void on_write_timeout(uv_timer_t *t) {
    tg_http_conn *c = t->data;
    tg_log_warn("http_write_stall", "peer=%s queued=%zu", c->peer, tg_http_conn_write_queue(c));
    tg_http_conn_close(c);
}

/* The stall clock runs while anything is queued. Only progress (a write
 * completing) restarts it; queuing more must not, or a handler that keeps
 * writing to a client that stopped reading would never be cut off. */
static void write_timer_update(tg_http_conn *c, bool progress) {
    if (c->closing || c->fake) return;
    if (tg_http_conn_write_queue(c) == 0)
        uv_timer_stop(&c->write_timer);
    else if (progress || !uv_is_active((uv_handle_t *)&c->write_timer))
        uv_timer_start(&c->write_timer, on_write_timeout, c->srv->o.write_timeout_ms, 0);
}

void tg_http_conn_account(tg_http_conn *c) {
    size_t m = c->in.len + c->out.len + c->flying.len + (c->cur ? c->cur->body.len : 0);
    c->srv->mem_used = c->srv->mem_used - c->mem + m;
    c->mem = m;
}

static bool output_over_limit(const tg_http_conn *c) {
    return tg_http_conn_write_queue(c) > c->srv->o.conn_buffer_limit;
}

static void on_write(uv_write_t *req, int status);
static void do_shutdown(tg_http_conn *c);

/* Hands `out` to libuv (when nothing is in flight): the buffers swap. */
static int flush(tg_http_conn *c) {
    if (c->writing || c->out.len == 0 || c->closing) return 0;
    tg_buf t = c->flying;
    c->flying = c->out;
    c->out = t;
    tg_buf_clear(&c->out);
    c->writing = true;
    c->wreq.data = c;
    uv_buf_t b = uv_buf_init(c->flying.data, (unsigned)c->flying.len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        c->writing = false;
        tg_http_conn_close(c);
        return -1;
    }
    return 0;
}

/* Large buffers are not kept around once drained: an idle connection
 * should cost little. */
static void buf_trim(tg_buf *b) {
    if (b->len == 0 && b->cap > (64u << 10)) tg_buf_free(b);
}

static void on_write(uv_write_t *req, int status) {
    tg_http_conn *c = req->data;
    c->writing = false;
    tg_buf_clear(&c->flying);
    buf_trim(&c->flying);
    if (c->closing) {
        tg_http_conn_account(c);
        return;
    }
    if (status < 0) {
        tg_http_conn_close(c);
        return;
    }
    if (flush(c) != 0) return;
    tg_http_conn_account(c);
    if (c->shutdown_pending && c->out.len == 0) do_shutdown(c);
    write_timer_update(c, true);
    /* Under the output bound again: pipelined input waiting (or a paused
     * read) may go on. */
    if (!c->closing && !output_over_limit(c) && c->phase != TG_CONN_LINGER) {
        if (c->phase != TG_CONN_DISPATCHED && c->in.len)
            tg_http_conn_process(c);
        else if (c->phase != TG_CONN_DISPATCHED || !c->reading)
            conn_read_resume(c);
    }
}

int tg_http_conn_send_raw(tg_http_conn *c, const char *data, size_t len) {
    if (c->closing) return -1;
    if (len == 0) return 0;
    if (c->fake) {
        if (c->sink) tg_buf_append(c->sink, data, len);
        return 0;
    }
    tg_buf_append(&c->out, data, len);
    if (flush(c) != 0) return -1;
    tg_http_conn_account(c);
    write_timer_update(c, false);
    return 0;
}

int tg_http_conn_send(tg_http_conn *c, const char *data, size_t len) {
    if (c->closing) return -1;
    if (c->ssl) return tg_http_tls_write(c, data, len);
    return tg_http_conn_send_raw(c, data, len);
}

size_t tg_http_conn_write_queue(const tg_http_conn *c) {
    if (c->closing || c->fake) return 0;
    return c->out.len + c->flying.len;
}

/* ------------------------------------------------------------- timers -- */

static void on_read_timeout(uv_timer_t *t) {
    tg_http_conn *c = t->data;
    switch (c->phase) {
    case TG_CONN_HEAD:
    case TG_CONN_BODY:
        if (c->cur) {
            tg_log_info("http_timeout", "peer=%s phase=%s", c->peer,
                        c->phase == TG_CONN_HEAD ? "head" : "body");
            tg_http_ex_fail(c->cur, 408, "request_timeout", "request not received in time");
            return;
        }
        tg_http_conn_close(c); /* nothing of a request yet */
        return;
    case TG_CONN_IDLE:
    case TG_CONN_LINGER:
    case TG_CONN_DISPATCHED: tg_http_conn_close(c); return;
    }
}

static void read_timer_set(tg_http_conn *c, uint64_t ms) {
    if (c->closing || c->fake) return;
    if (ms == 0)
        uv_timer_stop(&c->read_timer);
    else
        uv_timer_start(&c->read_timer, on_read_timeout, ms, 0);
}

/* ---------------------------------------------------------- parsing --- */

/* RFC 9112 5.2: obs-fold (a header line starting with SP or HTAB) must be
 * rejected; a folded Content-Length or Transfer-Encoding could frame the
 * message differently here and in a proxy. Scans the head bytes as they
 * are fed, up to the blank line that ends the head. */
enum { HS_START = 0, HS_LINE, HS_LF, HS_CR, HS_DONE };
static int head_scan(tg_http_conn *c, const char *d, size_t n) {
    for (size_t i = 0; i < n && c->hscan != HS_DONE; i++) {
        char ch = d[i];
        switch (c->hscan) {
        case HS_START: /* empty lines before a request line are tolerated */
            if (ch != '\r' && ch != '\n') c->hscan = HS_LINE;
            break;
        case HS_LINE:
            if (ch == '\n') c->hscan = HS_LF;
            break;
        case HS_LF: /* start of a header line */
            if (ch == ' ' || ch == '\t') return -1;
            c->hscan = ch == '\r' ? HS_CR : ch == '\n' ? HS_DONE : HS_LINE;
            break;
        case HS_CR: c->hscan = ch == '\n' ? HS_DONE : HS_LINE; break;
        }
    }
    return 0;
}

static tg_http_conn *P(llhttp_t *p) {
    return p->data;
}

/* Records an error to answer once llhttp_execute returns. */
static int parse_fail(tg_http_conn *c, int status, const char *code, const char *msg) {
    if (!c->err_status) {
        c->err_status = status;
        c->err_code = code;
        c->err_msg = msg;
    }
    return -1;
}

/* Past the global memory budget: 503 + Retry-After, connection closed. */
static int budget_fail(tg_http_conn *c) {
    if (c->cur && !c->err_status) tg_http_add_header(c->cur, "Retry-After", "1");
    tg_log_warn("http_memory_budget", "peer=%s used=%zu budget=%zu", c->peer, c->srv->mem_used,
                c->srv->o.memory_budget);
    return parse_fail(c, 503, "memory_budget_exceeded",
                      "the server is over its memory budget, retry later");
}

static int on_message_begin(llhttp_t *p) {
    tg_http_conn *c = P(p);
    if (!c->cur) c->cur = tg_http_ex_new(c);
    c->phase = TG_CONN_HEAD;
    c->trailer_bytes = 0;
    c->in_value = false;
    tg_buf_clear(&c->field);
    tg_buf_clear(&c->value);
    /* The head deadline: from the first byte, or for a connection's first
     * request from the accept (already running). */
    if (!c->first_head) read_timer_set(c, c->srv->o.header_timeout_ms);
    c->first_head = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
    tg_http_conn *c = P(p);
    tg_buf_append(&c->cur->url, at, n);
    return 0;
}

/* Trailers (after a chunked body) are read and dropped, but they count
 * against the head limit so they cannot grow without bound. */
static int trailer_bytes(tg_http_conn *c, size_t n) {
    c->trailer_bytes += n;
    if (c->trailer_bytes > c->srv->o.max_header_bytes)
        return parse_fail(c, 431, "request_header_fields_too_large", "trailers too large");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
    tg_http_conn *c = P(p);
    if (c->phase == TG_CONN_BODY) return trailer_bytes(c, n);
    tg_buf_append(&c->field, at, n);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
    tg_http_conn *c = P(p);
    if (c->phase == TG_CONN_BODY) return trailer_bytes(c, n);
    tg_buf_append(&c->value, at, n);
    return 0;
}

static int on_header_value_complete(llhttp_t *p) {
    tg_http_conn *c = P(p);
    if (c->phase == TG_CONN_BODY) return 0;
    tg_http_exchange *ex = c->cur;
    if (ex->n_headers >= c->srv->o.max_headers)
        return parse_fail(c, 431, "request_header_fields_too_large", "too many request headers");
    /* Trim optional whitespace around the value. */
    const char *v = c->value.data ? c->value.data : "";
    size_t vn = c->value.len;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    size_t fn = c->field.len;
    char *blk = malloc(fn + vn + 2);
    if (!blk) abort();
    for (size_t i = 0; i < fn; i++) {
        char ch = c->field.data[i];
        blk[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    blk[fn] = 0;
    memcpy(blk + fn + 1, v, vn);
    blk[fn + 1 + vn] = 0;
    if (ex->n_headers == ex->cap_headers) {
        size_t cap = ex->cap_headers ? ex->cap_headers * 2 : 16;
        tg_http_header *nh = realloc(ex->headers, cap * sizeof *nh);
        if (!nh) abort();
        ex->headers = nh;
        ex->cap_headers = cap;
    }
    ex->headers[ex->n_headers++] = (tg_http_header){blk, fn, blk + fn + 1, vn};
    tg_buf_clear(&c->field);
    tg_buf_clear(&c->value);
    return 0;
}

/* Fills the request fields that come from headers. */
static int finish_head(tg_http_conn *c) {
    tg_http_exchange *ex = c->cur;
    llhttp_t *p = &c->parser;
    tg_http_request *r = &ex->req;
    r->method = llhttp_method_name((llhttp_method_t)p->method);
    r->http_minor = p->http_minor;
    if (p->http_major != 1)
        return parse_fail(c, 505, "http_version_not_supported", "only HTTP/1.x is supported");
    ex->is_head = p->method == HTTP_HEAD;

    const char *url = ex->url.data ? ex->url.data : "";
    const char *q = strchr(url, '?');
    size_t plen = q ? (size_t)(q - url) : strlen(url);
    ex->path = strndup(url, plen);
    if (!ex->path) abort();
    r->path = ex->path;
    r->query = q ? q + 1 : NULL;
    r->headers = ex->headers;
    r->n_headers = ex->n_headers;

    /* RFC 9112 3.2: HTTP/1.1 needs exactly one Host; two are never valid
     * (a proxy and we could pick different ones). */
    int hosts = 0;
    for (size_t i = 0; i < ex->n_headers; i++)
        hosts += strcmp(ex->headers[i].name, "host") == 0;
    if (hosts > 1) return parse_fail(c, 400, "bad_request", "more than one Host header");
    if (hosts == 0 && p->http_minor >= 1)
        return parse_fail(c, 400, "bad_request", "HTTP/1.1 request without a Host header");

    const char *rid = tg_http_request_header(r, "x-request-id");
    if (rid && tg_reqid_sanitize_client(rid, strlen(rid), ex->client_id, sizeof ex->client_id))
        r->client_request_id = ex->client_id;
    const char *auth = tg_http_request_header(r, "authorization");
    if (auth && strncasecmp(auth, "bearer ", 7) == 0) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        if (*t) {
            ex->bearer = strdup(t);
            if (!ex->bearer) abort();
            r->bearer = ex->bearer;
        }
    }
    const char *expect = tg_http_request_header(r, "expect");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0)
            return parse_fail(c, 417, "expectation_failed", "unsupported Expect header");
        ex->expect_continue = p->http_minor >= 1;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    tg_http_conn *c = P(p);
    if (finish_head(c) != 0) return -1;
    tg_http_exchange *ex = c->cur;
    tg_http_server *s = c->srv;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > s->o.max_body_bytes)
        return parse_fail(c, 413, "request_too_large", "request body too large");
    /* Access is decided here, before a body byte is read or 100 Continue
     * is sent: a keyless client cannot make us hold its body. */
    if (s->o.on_head) {
        tg_http_reject rej = {0};
        if (s->o.on_head(s->o.on_head_user, &ex->req, &rej) != 0) {
            if (rej.www_authenticate)
                tg_http_add_header(ex, "WWW-Authenticate", rej.www_authenticate);
            return parse_fail(c, rej.status ? rej.status : 403, rej.code ? rej.code : "forbidden",
                              rej.message ? rej.message : "request refused");
        }
    }
    uint64_t want = (p->flags & F_CONTENT_LENGTH) ? p->content_length : 0;
    if (s->mem_used + want > s->o.memory_budget) return budget_fail(c);
    c->phase = TG_CONN_BODY;
    read_timer_set(c, s->o.body_timeout_ms); /* a deadline for the whole body */
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    if (ex->expect_continue && has_body) {
        static const char k100[] = "HTTP/1.1 100 Continue\r\n\r\n";
        tg_http_conn_send(c, k100, sizeof k100 - 1);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
    tg_http_conn *c = P(p);
    tg_http_exchange *ex = c->cur;
    if (n > c->srv->o.max_body_bytes - ex->body.len)
        return parse_fail(c, 413, "request_too_large", "request body too large");
    if (c->srv->mem_used + n > c->srv->o.memory_budget) return budget_fail(c);
    tg_buf_append(&ex->body, at, n);
    tg_http_conn_account(c);
    return 0;
}

static int on_message_complete(llhttp_t *p) {
    tg_http_conn *c = P(p);
    tg_http_exchange *ex = c->cur;
    ex->keep_alive = llhttp_should_keep_alive(p) != 0;
    if (ex->body.data) {
        ex->req.body = ex->body.data;
        ex->req.body_len = ex->body.len;
    }
    c->message_done = true;
    read_timer_set(c, 0);
    return HPE_PAUSED; /* one request at a time */
}

static const llhttp_settings_t *parser_settings(void) {
    static llhttp_settings_t s;
    static bool init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_header_value_complete = on_header_value_complete;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        init = true;
    }
    return &s;
}

/* ---------------------------------------------------------- dispatch -- */

static void dispatch(tg_http_conn *c) {
    tg_http_exchange *ex = c->cur;
    tg_http_server *s = c->srv;
    c->message_done = false;
    c->phase = TG_CONN_DISPATCHED;
    ex->dispatched = true;
    s->n_inflight++;
    s->total_requests++;
    tg_http_conn_ref(c);
    s->handler(ex, &ex->req, s->user);
}

/* Answers a parse or limit error; the connection closes after it. */
static void fail_current(tg_http_conn *c, int status, const char *code, const char *msg) {
    if (!c->cur) c->cur = tg_http_ex_new(c);
    c->phase = TG_CONN_DISPATCHED; /* no more parsing */
    tg_http_ex_fail(c->cur, status, code, msg);
}

/* Feeds one slice; returns bytes consumed, or -1 after answering an error. */
static long feed(tg_http_conn *c, const char *data, size_t len) {
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK) return (long)len;
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
        if (e == HPE_PAUSED)
            llhttp_resume(&c->parser);
        else
            llhttp_resume_after_upgrade(&c->parser);
        if (c->cur && (e == HPE_PAUSED_UPGRADE || c->parser.upgrade))
            c->cur->keep_alive = false; /* no protocol switches: answer, then close */
        if (c->message_done || used > 0) return (long)used;
        /* A pause without progress would spin forever. */
        fail_current(c, 400, "bad_request", "malformed HTTP request");
        return -1;
    }
    if (c->err_status) {
        fail_current(c, c->err_status, c->err_code, c->err_msg);
    } else {
        tg_log_debug("http_bad_request", "peer=%s reason=%s", c->peer, llhttp_errno_name(e));
        fail_current(c, 400, "bad_request", "malformed HTTP request");
    }
    return -1;
}

void tg_http_conn_process(tg_http_conn *c) {
    if (c->in_process) return; /* the running loop below picks up the change */
    c->in_process = true;
    tg_http_conn_ref(c);
    while (!c->closing && c->phase != TG_CONN_DISPATCHED && c->phase != TG_CONN_LINGER &&
           c->in.len > 0 && !output_over_limit(c)) {
        size_t n = c->in.len;
        bool in_head = c->phase == TG_CONN_IDLE || c->phase == TG_CONN_HEAD;
        if (in_head) {
            /* Feed no more than the head budget: if the head is still not
             * complete after that many bytes, it is too large. */
            size_t budget = c->srv->o.max_header_bytes - c->head_bytes;
            if (budget == 0) {
                fail_current(c, 431, "request_header_fields_too_large", "request head too large");
                break;
            }
            if (n > budget) n = budget;
            if (head_scan(c, c->in.data, n) != 0) {
                fail_current(c, 400, "bad_request",
                             "obsolete line folding (obs-fold) in the request head");
                break;
            }
        }
        long used = feed(c, c->in.data, n);
        if (used < 0) break;
        if (in_head) c->head_bytes += (size_t)used;
        tg_buf_consume(&c->in, (size_t)used);
        if (c->message_done) dispatch(c); /* may end at once and loop on */
    }
    c->in_process = false;
    tg_http_conn_account(c);
    if (!c->closing && !c->fake) conn_read_resume(c);
    tg_http_conn_unref(c);
}

/* Resets per-request state; the parser itself continues (keep-alive). */
void tg_http_conn_exchange_done(tg_http_conn *c, bool keep_alive) {
    c->cur = NULL;
    c->hscan = 0;
    tg_http_conn_account(c);
    if (c->closing) return;
    if (!keep_alive) {
        tg_http_conn_close_after_write(c);
        return;
    }
    c->phase = TG_CONN_IDLE;
    c->head_bytes = 0;
    c->err_status = 0;
    read_timer_set(c, c->srv->o.idle_timeout_ms);
    if (c->in.len) tg_http_conn_process(c);
}

/* -------------------------------------------------------------- input -- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    tg_http_conn *c = h->data;
    *buf = uv_buf_init(c->srv->readbuf, sizeof c->srv->readbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    tg_http_conn *c = st->data;
    if (nread == 0) return;
    if (nread < 0) {
        /* EOF or error. A client that goes away mid-exchange is gone: that
         * is how an abandoned stream is noticed. */
        c->eof = true;
        tg_http_conn_close(c);
        return;
    }
    if (c->phase == TG_CONN_LINGER) return; /* draining after a closing answer */
    if (c->ssl) {
        int rc = tg_http_tls_on_read(c, buf->base, (size_t)nread);
        if (rc != 0) {
            tg_http_conn_close(c);
            return;
        }
    } else {
        tg_buf_append(&c->in, buf->base, (size_t)nread);
    }
    tg_http_conn_account(c);
    if (c->closing) return;
    if (c->phase == TG_CONN_DISPATCHED) {
        conn_read_resume(c); /* may pause reading if too much is buffered */
        return;
    }
    tg_http_conn_process(c);
}

/* Reads while the buffer has room; a full buffer pauses the client. */
static void conn_read_resume(tg_http_conn *c) {
    bool want = c->in.len < TG_CONN_INBUF_MAX && !output_over_limit(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void tg_http_conn_start(tg_http_conn *c) {
    tg_http_server *s = c->srv;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, c->peer, sizeof c->peer);
            c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, c->peer, sizeof c->peer);
            static const unsigned char v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            c->loopback =
                IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                (memcmp(a->sin6_addr.s6_addr, v4map, 12) == 0 && a->sin6_addr.s6_addr[12] == 127);
        }
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->tls && tg_http_tls_conn_init(c) != 0) {
        tg_http_conn_close(c);
        return;
    }
    /* A new connection must deliver its first request head promptly. */
    c->phase = TG_CONN_IDLE;
    c->first_head = true;
    read_timer_set(c, s->o.header_timeout_ms);
    conn_read_resume(c);
}

/* ------------------------------------------------------ closing answer -- */

static void on_shutdown(uv_shutdown_t *req, int status) {
    tg_http_conn *c = req->data;
    if (c->closing) return;
    if (status < 0 || c->eof) {
        tg_http_conn_close(c);
        return;
    }
    /* Keep reading (and dropping) what the client still sends for a short
     * while: closing with unread input would reset the connection and the
     * client could lose the response it has not read yet. */
    read_timer_set(c, TG_CONN_LINGER_MS);
    if (!c->reading) conn_read_resume(c);
}

void tg_http_conn_close_after_write(tg_http_conn *c) {
    if (c->closing || c->phase == TG_CONN_LINGER) return;
    c->phase = TG_CONN_LINGER;
    tg_buf_clear(&c->in);
    if (c->fake) {
        tg_http_conn_close(c);
        return;
    }
    uv_timer_stop(&c->read_timer);
    if (c->ssl) tg_http_tls_shutdown(c);
    if (c->closing) return;
    /* uv_shutdown waits for writes already handed to libuv; what is still
     * in `out` goes first (on_write shuts down once it is handed over). */
    if (c->out.len)
        c->shutdown_pending = true;
    else
        do_shutdown(c);
}

static void do_shutdown(tg_http_conn *c) {
    c->shutdown_pending = false;
    c->shut_req.data = c;
    if (uv_shutdown(&c->shut_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) tg_http_conn_close(c);
}

/* ------------------------------------------------------------- fuzzing -- */

typedef struct {
    void (*cb)(const tg_http_request *, void *);
    void *arg;
    int n;
} fuzz_ctx;

static void fuzz_handler(tg_http_exchange *ex, const tg_http_request *req, void *user) {
    fuzz_ctx *f = user;
    f->n++;
    if (f->cb) f->cb(req, f->arg);
    /* Exercise the response paths too: stream odd requests, answer others. */
    if (req->body_len & 1) {
        tg_http_stream_begin(ex, 200, "text/plain");
        tg_http_stream_write(ex, req->body, req->body_len);
        tg_http_stream_end(ex);
    } else {
        tg_http_add_header(ex, "x-echo", req->path);
        tg_http_respond(ex, 200, "text/plain", req->body, req->body_len);
    }
}

int tg_http_conn_feed_for_fuzz(const uint8_t *buf, size_t len, size_t split,
                               void (*on_request)(const tg_http_request *, void *), void *arg,
                               tg_buf *out) {
    fuzz_ctx f = {on_request, arg, 0};
    tg_http_server *s = calloc(1, sizeof *s);
    if (!s) abort();
    tg_http_opts_defaults(&s->o);
    s->o.max_body_bytes = 4096;
    s->o.max_header_bytes = 2048;
    s->o.max_headers = 16;
    s->handler = fuzz_handler;
    s->user = &f;
    s->finished = true; /* not a real server: nothing to report when conns go */
    tg_http_conn *c = tg_http_conn_new(s);
    c->fake = true;
    c->sink = out;
    s->n_active = 1;
    c->counted = true;
    tg_http_conn_ref(c); /* ours, so c survives until we are done feeding */
    if (split == 0) split = len ? len : 1;
    for (size_t off = 0; off < len && !c->closing;) {
        size_t n = len - off < split ? len - off : split;
        tg_buf_append(&c->in, buf + off, n);
        off += n;
        tg_http_conn_process(c);
    }
    tg_http_conn_close(c); /* end of input */
    tg_http_conn_unref(c);
    free(s);
    return f.n;
}
