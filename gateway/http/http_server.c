/* http_server: the listener and the server's lifecycle.
 *
 * Accepts connections, enforces max_connections (an extra client still gets
 * a 503 in the OpenAI error shape, then the connection closes), and runs
 * the graceful shutdown: stop accepting, close what is idle, wait for every
 * in-flight exchange, then report done once the last handle is closed. The
 * per-connection work is in http_conn.c, responses in http_response.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_defaults.h"
#include "common/tg_log.h"
#include "gateway/http/http_internal.h"

void tg_http_opts_defaults(tg_http_opts *o) {
    if (!o->host || !*o->host) o->host = TG_DEFAULT_HOST;
    if (!o->max_body_bytes) o->max_body_bytes = TG_DEFAULT_MAX_BODY_BYTES;
    if (!o->max_header_bytes) o->max_header_bytes = TG_DEFAULT_MAX_HEADER_BYTES;
    if (!o->max_headers) o->max_headers = TG_DEFAULT_MAX_HEADERS;
    if (o->max_connections <= 0) o->max_connections = TG_DEFAULT_MAX_CONNECTIONS;
    if (!o->header_timeout_ms) o->header_timeout_ms = TG_DEFAULT_HEADER_TIMEOUT_MS;
    if (!o->body_timeout_ms) o->body_timeout_ms = TG_DEFAULT_BODY_TIMEOUT_MS;
    if (!o->idle_timeout_ms) o->idle_timeout_ms = TG_DEFAULT_IDLE_TIMEOUT_MS;
    if (!o->write_timeout_ms) o->write_timeout_ms = TG_DEFAULT_WRITE_TIMEOUT_MS;
    if (o->backlog <= 0) o->backlog = TG_DEFAULT_BACKLOG;
    if (!o->conn_buffer_limit) o->conn_buffer_limit = 1u << 20;
    if (!o->memory_budget) o->memory_budget = 256u << 20;
}

/* The server is freed once nothing refers to it: listener closed, every
 * connection gone, and tg_http_server_close asked for it. */
static void maybe_finish(tg_http_server *s) {
    if (s->finished || !s->draining || s->listener_open || s->conns) return;
    s->finished = true;
    if (s->tls) SSL_CTX_free(s->tls);
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    free(s);
    if (done) done(arg);
}

void tg_http_server_conn_freed(tg_http_server *s, tg_http_conn *c) {
    (void)c;
    maybe_finish(s);
}

static void on_listener_closed(uv_handle_t *h) {
    tg_http_server *s = h->data;
    s->listener_open = false;
    maybe_finish(s);
}

/* Over the limit: answer 503 and close. A flood of such clients must not
 * pile up lingering sockets, so past a second limit they are just closed. */
static void reject(tg_http_conn *c) {
    tg_http_server *s = c->srv;
    c->rejected = true;
    s->total_rejected++;
    s->n_rejected_open++;
    if (s->tls || s->n_rejected_open > (size_t)s->o.max_connections) {
        tg_http_conn_close(c); /* TLS: nothing can be said before a handshake */
        return;
    }
    snprintf(c->peer, sizeof c->peer, "-");
    c->cur = tg_http_ex_new(c);
    tg_log_warn("http_conn_limit", "max_connections=%d", s->o.max_connections);
    tg_http_add_header(c->cur, "retry-after", "1");
    tg_http_respond_error(c->cur, 503, "too_many_connections",
                          "server is at its connection limit, retry later");
}

static void on_connection(uv_stream_t *server, int status) {
    tg_http_server *s = server->data;
    if (status < 0) {
        tg_log_warn("http_accept", "error=%s", uv_strerror(status));
        return;
    }
    if (s->draining) return;
    tg_http_conn *c = tg_http_conn_new(s);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->read_timer);
    uv_timer_init(s->loop, &c->write_timer);
    c->tcp.data = c;
    c->read_timer.data = c;
    c->write_timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        tg_http_conn_close(c);
        return;
    }
    if (s->n_active >= (size_t)s->o.max_connections) {
        reject(c);
        return;
    }
    s->n_active++;
    s->total_conns++;
    c->counted = true;
    tg_http_conn_start(c);
}

int tg_http_server_start(uv_loop_t *loop, const tg_http_opts *opts, tg_http_handler h, void *user,
                         tg_http_server **out, char *err, size_t errlen) {
    *out = NULL;
    tg_http_server *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->loop = loop;
    s->o = *opts;
    tg_http_opts_defaults(&s->o);
    s->handler = h;
    s->user = user;

    if ((s->o.tls_cert_file && *s->o.tls_cert_file) || (s->o.tls_key_file && *s->o.tls_key_file)) {
        if (!s->o.tls_cert_file || !s->o.tls_key_file) {
            snprintf(err, errlen, "TLS needs both a certificate and a key file");
            free(s);
            return -1;
        }
        s->tls = tg_http_tls_ctx_new(s->o.tls_cert_file, s->o.tls_key_file, err, errlen);
        if (!s->tls) {
            free(s);
            return -1;
        }
    }

    struct sockaddr_storage addr;
    if (uv_ip4_addr(s->o.host, s->o.port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(s->o.host, s->o.port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, errlen, "listen address '%s' is not an IPv4 or IPv6 address", s->o.host);
        if (s->tls) SSL_CTX_free(s->tls);
        free(s);
        return -1;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, s->o.backlog, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", s->o.host, s->o.port, uv_strerror(rc));
        /* Close the handle, then free: the server is already draining with
         * no connections, so maybe_finish frees it once the close is back. */
        s->draining = true;
        s->listener_closing = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return -1;
    }
    struct sockaddr_storage bound;
    int bl = sizeof bound;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &bl) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    tg_log_debug("http_listen", "addr=%s port=%d tls=%s", s->o.host, s->port,
                 s->tls ? "on" : "off");
    *out = s;
    return 0;
}

void tg_http_server_stop_accepting(tg_http_server *s) {
    if (!s || s->listener_closing) return;
    s->listener_closing = true;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void tg_http_server_close(tg_http_server *s, void (*done)(void *), void *arg) {
    if (!s || s->draining) return;
    s->done = done;
    s->done_arg = arg;
    s->draining = true;
    tg_http_server_stop_accepting(s);
    /* Idle keep-alive connections have nothing in flight: close them. A
     * request whose first bytes already arrived finishes reading within its
     * header/body timeouts and gets an answer (the API says 503 draining to
     * anything new), so a client is never cut mid-request; dispatched ones
     * close after their responses (keep-alive is off while draining).
     * Closing only marks the conn; it is freed from a later callback, so
     * walking the list is safe. */
    for (tg_http_conn *c = s->conns; c; c = c->next) {
        if (c->closing) continue;
        if (c->cur && c->cur->dispatched) continue;
        if (c->phase == TG_CONN_LINGER) continue; /* already on its way out */
        if (c->phase == TG_CONN_HEAD || c->phase == TG_CONN_BODY) continue;
        tg_http_conn_close(c);
    }
    maybe_finish(s);
}

void tg_http_server_abort_inflight(tg_http_server *s) {
    /* Dispatched exchanges, and while draining also requests still being
     * read: past the deadline a slow client must not hold the exit. */
    for (tg_http_conn *c = s->conns; c; c = c->next) {
        if (c->closing) continue;
        bool reading = c->phase == TG_CONN_HEAD || c->phase == TG_CONN_BODY;
        if ((c->cur && c->cur->dispatched) || (s->draining && reading)) tg_http_conn_close(c);
    }
}

int tg_http_server_port(const tg_http_server *s) {
    return s->port;
}
size_t tg_http_server_active_connections(const tg_http_server *s) {
    return s->n_active;
}
size_t tg_http_server_inflight(const tg_http_server *s) {
    return s->n_inflight;
}
size_t tg_http_server_memory_used(const tg_http_server *s) {
    return s->mem_used;
}
uint64_t tg_http_server_total_connections(const tg_http_server *s) {
    return s->total_conns;
}
uint64_t tg_http_server_rejected_connections(const tg_http_server *s) {
    return s->total_rejected;
}
uint64_t tg_http_server_total_requests(const tg_http_server *s) {
    return s->total_requests;
}
