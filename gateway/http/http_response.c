/* http_response: one exchange's life after parsing. Heads, full bodies,
 * chunked streams, OpenAI error JSON, and the access-log line. Every
 * response leaves through here, so x-request-id and the connection header
 * are decided in one place. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/tg_log.h"
#include "gateway/http/http_internal.h"

/* ------------------------------------------------------------ lifetime -- */

tg_http_exchange *tg_http_ex_new(tg_http_conn *c) {
    tg_http_exchange *ex = calloc(1, sizeof *ex);
    if (!ex) abort();
    ex->conn = c;
    tg_reqid_new(ex->reqid);
    ex->req.request_id = ex->reqid;
    ex->req.peer_addr = c->peer;
    ex->req.peer_is_loopback = c->loopback;
    ex->req.listener = c->srv->o.listener;
    ex->req.start_ns = uv_hrtime();
    ex->req.method = "-";
    ex->req.path = "-";
    ex->req.body = "";
    ex->req.http_minor = 1;
    ex->keep_alive = true;
    return ex;
}

void tg_http_ex_free(tg_http_exchange *ex) {
    if (!ex) return;
    tg_buf_free(&ex->url);
    tg_buf_free(&ex->body);
    tg_buf_free(&ex->resp_headers);
    for (size_t i = 0; i < ex->n_headers; i++)
        free((char *)ex->headers[i].name);
    free(ex->headers);
    free(ex->bearer);
    free(ex->path);
    free(ex);
}

void tg_http_ex_abort(tg_http_exchange *ex) {
    ex->aborted = true;
    if (ex->abort_fired || !ex->on_abort) return;
    ex->abort_fired = true;
    ex->on_abort(ex->abort_arg);
}

/* ----------------------------------------------------------- accessors -- */

const tg_http_request *tg_http_exchange_request(const tg_http_exchange *ex) {
    return &ex->req;
}

const char *tg_http_request_header(const tg_http_request *req, const char *name) {
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    return NULL;
}

bool tg_http_exchange_aborted(const tg_http_exchange *ex) {
    if (!ex) return true;
    return ex->aborted;
}

void tg_http_set_on_abort(tg_http_exchange *ex, void (*cb)(void *), void *arg) {
    if (!ex) return;
    ex->on_abort = cb;
    ex->abort_arg = arg;
}

void tg_http_set_tokens(tg_http_exchange *ex, int tokens_in, int tokens_out) {
    if (!ex) return;
    ex->tokens_in = tokens_in;
    ex->tokens_out = tokens_out;
}

void tg_http_set_route(tg_http_exchange *ex, const char *route) {
    if (!ex) return;
    snprintf(ex->route, sizeof ex->route, "%s", route ? route : "");
}

size_t tg_http_stream_pending(const tg_http_exchange *ex) {
    if (!ex || ex->aborted) return 0;
    return tg_http_conn_write_queue(ex->conn);
}

const char *tg_http_status_text(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status >= 500 ? "Error" : status >= 400 ? "Client Error" : "Status";
    }
}

/* Header text must not carry CR, LF or NUL: a value taken from somewhere
 * else must not be able to start a second header or a second response. */
static bool header_text_ok(const char *s) {
    for (; *s; s++)
        if (*s == '\r' || *s == '\n') return false;
    return true;
}

static bool managed_header(const char *name) {
    static const char *const k[] = {"content-length", "transfer-encoding", "connection",
                                    "x-request-id",   "content-type",      "date"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcasecmp(name, k[i]) == 0) return true;
    return false;
}

void tg_http_add_header(tg_http_exchange *ex, const char *name, const char *value) {
    if (!ex || !name || !value || !*name || ex->status) return;
    if (!header_text_ok(name) || !header_text_ok(value) || strchr(name, ':')) return;
    if (managed_header(name)) return;
    tg_buf_printf(&ex->resp_headers, "%s: %s\r\n", name, value);
}

/* ---------------------------------------------------------- access log -- */

/* The access-log line and the on_response hook: both describe the same
 * finished exchange, so they are produced together, once, from ex_end. */
static void access_log(tg_http_exchange *ex) {
    uint64_t now = uv_hrtime();
    double ms = now > ex->req.start_ns ? (double)(now - ex->req.start_ns) / 1e6 : 0;
    int status = ex->status ? ex->status : 499;
    tg_log_level lvl = status >= 500 ? TG_LOG_WARN : TG_LOG_INFO;
    /* The path only (a query string may carry credentials), capped. */
    tg_log_write(lvl, "http_access",
                 "id=%s client_id=%s method=%s path=%.128s route=%s status=%d ms=%.1f "
                 "tokens_in=%d tokens_out=%d bytes_in=%zu bytes_out=%llu peer=%s%s",
                 ex->reqid, ex->req.client_request_id ? ex->req.client_request_id : "-",
                 ex->req.method, ex->req.path, ex->route[0] ? ex->route : "-", status, ms,
                 ex->tokens_in, ex->tokens_out, ex->req.body_len, (unsigned long long)ex->bytes_out,
                 ex->conn->peer, ex->aborted ? " aborted=1" : "");
    const tg_http_opts *o = &ex->conn->srv->o;
    if (o->on_response) {
        tg_http_done d = {
            .req = &ex->req,
            .route = ex->route,
            .status = status,
            .handled = ex->dispatched,
            .aborted = ex->aborted,
            .abort_notified = ex->abort_fired,
            .tokens_in = ex->tokens_in,
            .tokens_out = ex->tokens_out,
            .bytes_out = ex->bytes_out,
            .ms = ms,
        };
        o->on_response(o->on_response_user, &d);
    }
}

/* Ends the exchange: log, free, and let the connection go on. */
static void ex_end(tg_http_exchange *ex) {
    tg_http_conn *c = ex->conn;
    bool keep = ex->keep_alive && !ex->aborted && !c->srv->draining;
    bool dispatched = ex->dispatched;
    access_log(ex);
    if (c->cur == ex) c->cur = NULL;
    tg_http_ex_free(ex);
    if (dispatched) c->srv->n_inflight--;
    tg_http_conn_exchange_done(c, keep);
    if (dispatched) tg_http_conn_unref(c);
}

/* ------------------------------------------------------------ response -- */

/* Whether the connection may stay open after this response. */
static bool decide_keep_alive(tg_http_exchange *ex) {
    tg_http_conn *c = ex->conn;
    if (!ex->keep_alive || c->srv->draining || c->closing || c->rejected) return false;
    return true;
}

typedef enum { BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE } body_mode;

/* IMF-fixdate for the Date header (RFC 9110 asks origin servers with a
 * clock to send it), formatted once per second: one loop thread. */
static const char *http_date(void) {
    static char buf[40];
    static time_t last = -1;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

static void send_head(tg_http_exchange *ex, int status, const char *ctype, body_mode mode,
                      size_t len) {
    if (status < 100 || status > 999) status = 500;
    ex->status = status;
    ex->keep_alive = decide_keep_alive(ex) && mode != BODY_UNTIL_CLOSE;
    if (ex->aborted) return;
    tg_buf h = TG_BUF_INIT;
    tg_buf_printf(&h, "HTTP/1.1 %d %s\r\n", status, tg_http_status_text(status));
    if (ctype && *ctype && header_text_ok(ctype)) tg_buf_printf(&h, "content-type: %s\r\n", ctype);
    if (mode == BODY_LENGTH) tg_buf_printf(&h, "content-length: %zu\r\n", len);
    if (mode == BODY_CHUNKED) tg_buf_puts(&h, "transfer-encoding: chunked\r\n");
    tg_buf_printf(&h, "x-request-id: %s\r\n", ex->reqid);
    tg_buf_printf(&h, "date: %s\r\n", http_date());
    if (!ex->keep_alive)
        tg_buf_puts(&h, "connection: close\r\n");
    else if (ex->req.http_minor == 0)
        tg_buf_puts(&h, "connection: keep-alive\r\n");
    if (ex->resp_headers.len) tg_buf_append(&h, ex->resp_headers.data, ex->resp_headers.len);
    tg_buf_puts(&h, "\r\n");
    if (tg_http_conn_send(ex->conn, h.data, h.len) != 0) ex->aborted = true;
    tg_buf_free(&h);
}

void tg_http_respond(tg_http_exchange *ex, int status, const char *content_type, const char *body,
                     size_t len) {
    if (!ex) return;
    if (ex->streaming) { /* misuse: treat as the end of the stream */
        tg_http_stream_end(ex);
        return;
    }
    if (!body) len = 0;
    send_head(ex, status, content_type, BODY_LENGTH, len);
    /* 1xx, 204 and 304 carry no body whatever the length says; HEAD never. */
    bool no_body = ex->is_head || status == 204 || status == 304 || status < 200;
    if (!ex->aborted && len && !no_body) {
        if (tg_http_conn_send(ex->conn, body, len) != 0)
            ex->aborted = true;
        else
            ex->bytes_out += len;
    }
    ex_end(ex);
}

void tg_http_respond_error(tg_http_exchange *ex, int status, const char *code, const char *fmt,
                           ...) {
    if (!ex) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    va_end(ap);
    if (ex->streaming) { /* head already sent: nothing error-shaped can follow */
        tg_http_stream_end(ex);
        return;
    }
    tg_http_error_fn fn = ex->conn->srv->o.error_body;
    if (!fn) {
        tg_http_respond(ex, status, "text/plain; charset=utf-8", msg, strlen(msg));
        return;
    }
    tg_buf b = TG_BUF_INIT;
    const char *ctype = fn(&b, status, code, msg);
    tg_http_respond(ex, status, ctype, b.data, b.len);
    tg_buf_free(&b);
}

void tg_http_ex_fail(tg_http_exchange *ex, int status, const char *code, const char *msg) {
    ex->keep_alive = false; /* the rest of the input cannot be trusted */
    const tg_http_opts *o = &ex->conn->srv->o;
    if (o->error_headers && ex->path) /* the head was read: its headers are known */
        o->error_headers(o->on_head_user, &ex->req, ex);
    tg_http_respond_error(ex, status, code, "%s", msg);
}

/* ------------------------------------------------------------- streams -- */

void tg_http_stream_begin(tg_http_exchange *ex, int status, const char *content_type) {
    if (!ex || ex->streaming || ex->status) return;
    ex->streaming = true;
    ex->chunked = ex->req.http_minor >= 1;
    send_head(ex, status, content_type, ex->chunked ? BODY_CHUNKED : BODY_UNTIL_CLOSE, 0);
}

int tg_http_stream_write(tg_http_exchange *ex, const char *data, size_t len) {
    if (!ex || ex->aborted) return -1;
    if (!ex->streaming) tg_http_stream_begin(ex, 200, "text/event-stream");
    if (len == 0 || ex->is_head) return ex->aborted ? -1 : 0;
    int rc;
    if (ex->chunked) {
        /* One chunk per write, framed in one buffer so it goes out in one
         * write call. */
        tg_buf b = TG_BUF_INIT;
        tg_buf_reserve(&b, len + 24);
        tg_buf_printf(&b, "%zx\r\n", len);
        tg_buf_append(&b, data, len);
        tg_buf_puts(&b, "\r\n");
        rc = tg_http_conn_send(ex->conn, b.data, b.len);
        tg_buf_free(&b);
    } else {
        rc = tg_http_conn_send(ex->conn, data, len);
    }
    if (rc != 0) {
        ex->aborted = true;
        return -1;
    }
    ex->bytes_out += len;
    return 0;
}

void tg_http_stream_end(tg_http_exchange *ex) {
    if (!ex) return;
    if (!ex->streaming && !ex->status && !ex->aborted) {
        /* Never begun: an empty 200 stream is still a valid answer. */
        tg_http_stream_begin(ex, 200, "text/event-stream");
    }
    if (!ex->aborted && ex->chunked && !ex->is_head) {
        if (tg_http_conn_send(ex->conn, "0\r\n\r\n", 5) != 0) ex->aborted = true;
    }
    ex_end(ex);
}
