/* http_test_harness: shared by the HTTP server tests (test_http_server.c,
 * test_http_tls.c). Not a test itself (only test_*.c are).
 *
 * HTTP server tests run over real sockets.
 *
 * The server's loop runs in a second thread; the test (main thread) is the
 * client, using blocking POSIX sockets (and OpenSSL for the TLS case) with
 * receive timeouts, so a server bug fails an assertion instead of hanging.
 * Anything the test needs to do on the loop (read counters, start a
 * graceful close) goes through h_call, which runs a function on the loop
 * thread and waits for it. */
#ifndef TG_HTTP_TEST_HARNESS_H
#define TG_HTTP_TEST_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/tg_buf.h"
#include "common/tg_log.h"
#include "gateway/http/http_internal.h"
#include "gateway/http/http_server.h"
#include "gateway/http/reqid.h"
#include "gateway/api/openai_api.h"

/* Each test file uses a subset of these helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

/* ------------------------------------------------------------ harness -- */

typedef struct harness {
    uv_loop_t loop;
    uv_async_t ctl;
    pthread_t thread;
    bool running;
    tg_http_server *srv;
    int port;
    /* h_call */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*call_fn)(struct harness *, void *);
    void *call_arg;
    bool call_done;
    /* shutdown */
    bool closing, finished, stop_requested;
    atomic_int done_calls;
    /* what the handlers saw */
    atomic_int n_requests, n_aborts, n_stream_done, n_write_fail;
} harness;

typedef struct {
    uv_timer_t t;
    tg_http_exchange *ex;
    harness *h;
    int left, ms;
    bool aborted;
    bool flood;
} job;

static void job_closed(uv_handle_t *hd) {
    free(hd->data);
}

static void job_finish(job *j) {
    tg_http_stream_end(j->ex);
    uv_timer_stop(&j->t);
    uv_close((uv_handle_t *)&j->t, job_closed);
}

static void on_job_abort(void *arg) {
    job *j = arg;
    j->aborted = true;
    atomic_fetch_add(&j->h->n_aborts, 1);
    /* Not ending here on purpose: the exchange must stay valid until the
     * next tick ends it. */
}

static void on_job_tick(uv_timer_t *t) {
    job *j = t->data;
    if (j->aborted) {
        /* A write after the abort must report the client gone. */
        if (tg_http_stream_write(j->ex, "x", 1) == -1) atomic_fetch_add(&j->h->n_write_fail, 1);
        job_finish(j);
        return;
    }
    if (j->flood) {
        static char big[65536];
        memset(big, 'f', sizeof big);
        /* Big writes while little is queued (backpressure), then small
         * token-sized ones regardless: queuing more must not count as
         * progress, or a stalled client would never be cut off. */
        if (tg_http_stream_pending(j->ex) < (512u << 10))
            tg_http_stream_write(j->ex, big, sizeof big);
        else
            tg_http_stream_write(j->ex, "data: token\n\n", 13);
        return;
    }
    char line[64];
    int n = snprintf(line, sizeof line, "data: %d\n\n", j->left);
    tg_http_stream_write(j->ex, line, (size_t)n);
    if (--j->left == 0) {
        atomic_fetch_add(&j->h->n_stream_done, 1);
        job_finish(j);
    }
}

static int query_int(const char *q, const char *key, int def) {
    if (!q) return def;
    size_t kl = strlen(key);
    for (const char *p = q; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') return atoi(p + kl + 1);
    return def;
}

static void start_job(harness *h, tg_http_exchange *ex, const tg_http_request *req, bool flood) {
    job *j = calloc(1, sizeof *j);
    j->ex = ex;
    j->h = h;
    j->flood = flood;
    j->left = query_int(req->query, "n", 5);
    j->ms = query_int(req->query, "ms", 10);
    uv_timer_init(&h->loop, &j->t);
    j->t.data = j;
    tg_http_set_on_abort(ex, on_job_abort, j);
    tg_http_stream_begin(ex, 200, "text/event-stream");
    uv_timer_start(&j->t, on_job_tick, (uint64_t)j->ms, (uint64_t)j->ms);
}

static void on_slow(uv_timer_t *t) {
    tg_http_respond(t->data, 200, "text/plain", "slow", 4);
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void handler(tg_http_exchange *ex, const tg_http_request *req, void *user) {
    harness *h = user;
    atomic_fetch_add(&h->n_requests, 1);
    tg_http_set_tokens(ex, 3, 4);
    if (strcmp(req->path, "/hello") == 0) {
        tg_http_respond(ex, 200, "text/plain", "hello\n", 6);
    } else if (strcmp(req->path, "/echo") == 0) {
        char n[32];
        tg_http_add_header(ex, "x-seen-id", req->request_id);
        tg_http_add_header(ex, "x-seen-client",
                           req->client_request_id ? req->client_request_id : "-");
        tg_http_add_header(ex, "x-seen-bearer", req->bearer ? req->bearer : "-");
        tg_http_add_header(ex, "x-seen-method", req->method);
        tg_http_add_header(ex, "x-seen-query", req->query ? req->query : "-");
        tg_http_add_header(ex, "x-seen-loopback", req->peer_is_loopback ? "1" : "0");
        snprintf(n, sizeof n, "%zu", req->n_headers);
        tg_http_add_header(ex, "x-seen-nheaders", n);
        tg_http_add_header(ex, "x-evil", "a\r\nset-cookie: x=1"); /* must be dropped */
        tg_http_respond(ex, 200, "application/octet-stream", req->body, req->body_len);
    } else if (strcmp(req->path, "/slow") == 0) {
        uv_timer_t *t = malloc(sizeof *t);
        uv_timer_init(&h->loop, t);
        t->data = ex;
        uv_timer_start(t, on_slow, 100, 0);
    } else if (strcmp(req->path, "/stream") == 0) {
        start_job(h, ex, req, false);
    } else if (strcmp(req->path, "/flood") == 0) {
        start_job(h, ex, req, true);
    } else {
        tg_oai_error e;
        tg_oai_error_set(&e, 404, NULL, "not_found", "path", "no route for %s", req->path);
        tg_buf b = TG_BUF_INIT;
        tg_oai_error_json(&b, &e);
        tg_http_respond(ex, 404, "application/json", b.data, b.len);
        tg_buf_free(&b);
    }
}

static void on_ctl(uv_async_t *a) {
    harness *h = a->data;
    pthread_mutex_lock(&h->mu);
    if (h->call_fn && !h->call_done) {
        h->call_fn(h, h->call_arg);
        h->call_done = true;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
}

/* Runs fn on the loop thread and waits for it. */
static void h_call(harness *h, void (*fn)(harness *, void *), void *arg) {
    pthread_mutex_lock(&h->mu);
    h->call_fn = fn;
    h->call_arg = arg;
    h->call_done = false;
    uv_async_send(&h->ctl);
    while (!h->call_done)
        pthread_cond_wait(&h->cv, &h->mu);
    h->call_fn = NULL;
    pthread_mutex_unlock(&h->mu);
}

static void on_server_closed(void *arg) {
    harness *h = arg;
    h->finished = true;
    atomic_fetch_add(&h->done_calls, 1);
    if (h->stop_requested) uv_close((uv_handle_t *)&h->ctl, NULL);
}

static void do_graceful(harness *h, void *arg) {
    if (h->closing) return;
    h->closing = true;
    tg_http_server_close(h->srv, on_server_closed, h);
}

static void do_stop(harness *h, void *arg) {
    h->stop_requested = true;
    if (!h->closing) {
        h->closing = true;
        tg_http_server_abort_inflight(h->srv);
        tg_http_server_close(h->srv, on_server_closed, h);
    } else if (!h->finished) {
        tg_http_server_abort_inflight(h->srv);
    }
    if (h->finished) uv_close((uv_handle_t *)&h->ctl, NULL);
}

static void *loop_main(void *arg) {
    harness *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void h_start(harness *h, tg_http_opts *o) {
    char err[256] = "";
    assert_int_equal(uv_loop_init(&h->loop), 0);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    uv_async_init(&h->loop, &h->ctl, on_ctl);
    h->ctl.data = h;
    if (!o->host) o->host = "127.0.0.1";
    if (!o->error_body) o->error_body = tg_oai_http_error; /* as the gateway does */
    int rc = tg_http_server_start(&h->loop, o, handler, h, &h->srv, err, sizeof err);
    if (rc != 0) fprintf(stderr, "start: %s\n", err);
    assert_int_equal(rc, 0);
    h->port = tg_http_server_port(h->srv);
    assert_true(h->port > 0);
    assert_int_equal(pthread_create(&h->thread, NULL, loop_main, h), 0);
    h->running = true;
}

static void h_stop(harness *h) {
    if (!h->running) return;
    h->running = false;
    h_call(h, do_stop, NULL);
    pthread_join(h->thread, NULL);
    assert_int_equal(atomic_load(&h->done_calls), 1);
    assert_int_equal(uv_loop_close(&h->loop), 0); /* every handle closed */
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

static int setup(void **state) {
    *state = calloc(1, sizeof(harness));
    return *state ? 0 : -1;
}

static int teardown(void **state) {
    harness *h = *state;
    if (h->running) h_stop(h);
    free(h);
    return 0;
}

typedef struct {
    harness *h;
    size_t v;
} stat_q;

static void q_active(harness *h, void *arg) {
    ((stat_q *)arg)->v = tg_http_server_active_connections(h->srv);
}
static void q_inflight(harness *h, void *arg) {
    ((stat_q *)arg)->v = tg_http_server_inflight(h->srv);
}

static size_t h_stat(harness *h, void (*fn)(harness *, void *)) {
    stat_q q = {h, 0};
    h_call(h, fn, &q);
    return q.v;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls cond up to ms milliseconds. */
#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        for (int w_ = 0; w_ < (ms) / 10 && !(cond); w_++)                                          \
            sleep_ms(10);                                                                          \
    } while (0)

/* ------------------------------------------------------------- client -- */

typedef struct {
    int fd;
    SSL *ssl;
    char buf[1 << 17];
    size_t len;
} cl;

static int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static cl *cl_open(int port) {
    cl *c = calloc(1, sizeof *c);
    c->fd = tcp_connect(port);
    assert_true(c->fd >= 0);
    return c;
}

static void cl_close(cl *c) {
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
    free(c);
}

static void cl_send(cl *c, const char *data, size_t n) {
    while (n) {
        ssize_t w = c->ssl ? SSL_write(c->ssl, data, (int)n) : send(c->fd, data, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        data += w;
        n -= (size_t)w;
    }
}

static void cl_puts(cl *c, const char *s) {
    cl_send(c, s, strlen(s));
}

/* Reads more into the buffer: >0 bytes, 0 on EOF, -1 on error/timeout. */
static int cl_fill(cl *c) {
    if (c->len == sizeof c->buf) return -1;
    ssize_t n = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len))
                       : recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n > 0) {
        c->len += (size_t)n;
        return (int)n;
    }
    if (c->ssl) return SSL_get_error(c->ssl, (int)n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    return n == 0 ? 0 : -1;
}

/* True when the server closed the connection (EOF or reset) within 5 s. */
static bool cl_wait_closed(cl *c) {
    for (;;) {
        c->len = 0;
        int r = cl_fill(c);
        if (r == 0) return true;
        if (r < 0) return errno == ECONNRESET || (c->ssl != NULL);
    }
}

static void cl_consume(cl *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

typedef struct {
    int status;
    char head[16384];
    tg_buf body;
    int n_chunks;
} resp;

static void resp_free(resp *r) {
    tg_buf_free(&r->body);
}

/* Header value (names are lowercase on the wire from this server). */
static bool resp_header(const resp *r, const char *name, char *out, size_t cap) {
    char key[128];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strstr(r->head, key);
    if (!p) return false;
    p += strlen(key);
    const char *e = strstr(p, "\r\n");
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

static char *find_crlf(cl *c, size_t from) {
    for (size_t i = from; i + 1 < c->len; i++)
        if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') return c->buf + i;
    return NULL;
}

/* Reads one response (head + body by content-length, chunks, or EOF).
 * Returns 0 or -1. */
static int cl_read_resp(cl *c, resp *r) {
    memset(r->head, 0, sizeof r->head);
    tg_buf_clear(&r->body);
    r->n_chunks = 0;
    char *end;
    for (;;) {
        end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end) break;
        if (cl_fill(c) <= 0) return -1;
    }
    size_t hl = (size_t)(end - c->buf) + 4;
    if (hl >= sizeof r->head) return -1;
    memcpy(r->head, c->buf, hl);
    cl_consume(c, hl);
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1) return -1;
    char v[64];
    if (r->status < 200 || r->status == 204) return 0;
    if (resp_header(r, "content-length", v, sizeof v)) {
        size_t need = strtoul(v, NULL, 10);
        while (c->len < need)
            if (cl_fill(c) <= 0) return -1;
        tg_buf_append(&r->body, c->buf, need);
        cl_consume(c, need);
        return 0;
    }
    if (resp_header(r, "transfer-encoding", v, sizeof v)) {
        for (;;) {
            char *e;
            while (!(e = find_crlf(c, 0)))
                if (cl_fill(c) <= 0) return -1;
            size_t sz = strtoul(c->buf, NULL, 16);
            cl_consume(c, (size_t)(e - c->buf) + 2);
            while (c->len < sz + 2)
                if (cl_fill(c) <= 0) return -1;
            if (sz == 0) {
                cl_consume(c, 2);
                return 0;
            }
            tg_buf_append(&r->body, c->buf, sz);
            r->n_chunks++;
            cl_consume(c, sz + 2);
        }
    }
    for (;;) { /* until close */
        tg_buf_append(&r->body, c->buf, c->len);
        c->len = 0;
        int n = cl_fill(c);
        if (n == 0) return 0;
        if (n < 0) return -1;
    }
}

static int get(cl *c, const char *path, resp *r) {
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    cl_puts(c, req);
    return cl_read_resp(c, r);
}

static bool is_reqid(const char *s) {
    if (strlen(s) != 36 || strncmp(s, "req_", 4) != 0) return false;
    for (int i = 4; i < 36; i++)
        if (!strchr("0123456789abcdef", s[i])) return false;
    return true;
}

/* The OpenAI error shape, with the given code. */
static void assert_error_json(const resp *r, int status, const char *code) {
    assert_int_equal(r->status, status);
    char ct[64];
    assert_true(resp_header(r, "content-type", ct, sizeof ct));
    assert_string_equal(ct, "application/json");
    assert_non_null(r->body.data);
    const char *pre = "{\"error\":{\"message\":\"";
    assert_true(strncmp(r->body.data, pre, strlen(pre)) == 0);
    char want[128];
    snprintf(want, sizeof want, "\"code\":\"%s\"}}", code);
    assert_non_null(strstr(r->body.data, want));
    assert_non_null(strstr(r->body.data, "\"type\":\""));
    assert_non_null(strstr(r->body.data, "\"param\":"));
    char id[64];
    assert_true(resp_header(r, "x-request-id", id, sizeof id));
    assert_true(is_reqid(id));
}

#endif
