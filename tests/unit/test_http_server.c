/* tg-test-links: tggateway */
/* HTTP server tests over real sockets.
 *
 * The server's loop runs in a second thread; the test (main thread) is the
 * client, using blocking POSIX sockets (and OpenSSL for the TLS case) with
 * receive timeouts, so a server bug fails an assertion instead of hanging.
 * Anything the test needs to do on the loop (read counters, start a
 * graceful close) goes through h_call, which runs a function on the loop
 * thread and waits for it. */
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
#include "gateway/http_internal.h"
#include "gateway/http_server.h"
#include "gateway/reqid.h"

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

static void job_closed(uv_handle_t *hd) { free(hd->data); }

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
        /* Backpressure as the API layer should do it: only write while
         * little is queued. */
        if (tg_http_stream_pending(j->ex) < (512u << 10)) tg_http_stream_write(j->ex, big, sizeof big);
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
        tg_http_add_header(ex, "x-seen-client", req->client_request_id ? req->client_request_id : "-");
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
        tg_http_respond_error(ex, 404, NULL, "not_found", "path", "no route for %s", req->path);
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
    while (!h->call_done) pthread_cond_wait(&h->cv, &h->mu);
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
        for (int w_ = 0; w_ < (ms) / 10 && !(cond); w_++) sleep_ms(10);                            \
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

static void cl_puts(cl *c, const char *s) { cl_send(c, s, strlen(s)); }

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

static void resp_free(resp *r) { tg_buf_free(&r->body); }

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

/* -------------------------------------------------------------- tests -- */

static void test_reqid(void **state) {
    char a[TG_REQID_LEN + 1], b[TG_REQID_LEN + 1];
    tg_reqid_new(a);
    tg_reqid_new(b);
    assert_true(tg_reqid_is_valid(a));
    assert_true(is_reqid(a));
    assert_string_not_equal(a, b);
    assert_false(tg_reqid_is_valid("req_123"));
    assert_false(tg_reqid_is_valid("req_0123456789ABCDEF0123456789abcdef"));
    char out[TG_REQID_CLIENT_MAX + 1];
    assert_int_equal(tg_reqid_sanitize_client("abc-1.2:x_y", 11, out, sizeof out), 11);
    assert_string_equal(out, "abc-1.2:x_y");
    assert_int_equal(tg_reqid_sanitize_client("a b", 3, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(tg_reqid_sanitize_client("a\"b", 3, out, sizeof out), 0);
    char longid[300];
    memset(longid, 'x', sizeof longid);
    assert_int_equal(tg_reqid_sanitize_client(longid, sizeof longid, out, sizeof out),
                     TG_REQID_CLIENT_MAX);
    assert_int_equal(strlen(out), TG_REQID_CLIENT_MAX);
}

static void test_get_and_keepalive(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    resp r = {0};
    assert_int_equal(get(c, "/hello", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 6);
    assert_memory_equal(r.body.data, "hello\n", 6);
    char id1[64], id2[64], v[64];
    assert_true(resp_header(&r, "x-request-id", id1, sizeof id1));
    assert_false(resp_header(&r, "connection", v, sizeof v)); /* keep-alive is the default */
    /* second request on the same connection */
    assert_int_equal(get(c, "/echo?a=1&b=2", &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_header(&r, "x-request-id", id2, sizeof id2));
    assert_true(is_reqid(id1) && is_reqid(id2));
    assert_string_not_equal(id1, id2);
    assert_true(resp_header(&r, "x-seen-query", v, sizeof v));
    assert_string_equal(v, "a=1&b=2");
    assert_true(resp_header(&r, "x-seen-loopback", v, sizeof v));
    assert_string_equal(v, "1");
    assert_false(resp_header(&r, "x-evil", v, sizeof v));
    assert_null(strstr(r.head, "set-cookie"));
    /* unknown path: the handler's OpenAI error */
    assert_int_equal(get(c, "/nope", &r), 0);
    assert_error_json(&r, 404, "not_found");
    assert_non_null(strstr(r.body.data, "\"param\":\"path\""));
    assert_non_null(strstr(r.body.data, "\"type\":\"invalid_request_error\""));
    assert_int_equal(atomic_load(&h->n_requests), 3);
    assert_int_equal(h_stat(h, q_active), 1);
    resp_free(&r);
    cl_close(c);
    WAIT_FOR(h_stat(h, q_active) == 0, 2000);
    assert_int_equal(h_stat(h, q_active), 0);
    h_stop(h);
}

static void test_http10(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    resp r = {0};
    cl_puts(c, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    char v[64];
    assert_true(resp_header(&r, "connection", v, sizeof v));
    assert_string_equal(v, "close");
    assert_true(cl_wait_closed(c));
    cl_close(c);
    /* HTTP/1.0 streaming: no chunked framing, the body ends at close */
    c = cl_open(h->port);
    cl_puts(c, "GET /stream?n=3&ms=5 HTTP/1.0\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_false(resp_header(&r, "transfer-encoding", v, sizeof v));
    assert_string_equal(r.body.data, "data: 3\n\ndata: 2\n\ndata: 1\n\n");
    resp_free(&r);
    cl_close(c);
    h_stop(h);
}

static void test_pipelining(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    /* /slow answers after 100 ms; the two after it must still come later,
     * in order, and the body-carrying one must keep its body. */
    cl_puts(c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"
               "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    resp r = {0};
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "slow");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_string_equal(r.body.data, "abcde");
    char m[16];
    assert_true(resp_header(&r, "x-seen-method", m, sizeof m));
    assert_string_equal(m, "POST");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_string_equal(r.body.data, "hello\n");
    resp_free(&r);
    cl_close(c);
    h_stop(h);
}

static void test_chunked_body_and_continue(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    resp r = {0};
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 12);
    assert_memory_equal(r.body.data, "hello, world", 12);
    /* Expect: 100-continue: the interim answer comes before the body is sent */
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 100);
    cl_puts(c, "body");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "body");
    resp_free(&r);
    cl_close(c);
    h_stop(h);
}

static void test_limits(void **state) {
    harness *h = *state;
    tg_http_opts o = {.max_body_bytes = 1024, .max_header_bytes = 4096, .max_headers = 16};
    h_start(h, &o);
    resp r = {0};
    char v[64];

    /* 413 from Content-Length alone: the body is never sent */
    cl *c = cl_open(h->port);
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 413, "request_too_large");
    assert_true(resp_header(&r, "connection", v, sizeof v));
    assert_string_equal(v, "close");
    assert_true(cl_wait_closed(c));
    cl_close(c);

    /* 413 with Expect: no 100 Continue is sent first */
    c = cl_open(h->port);
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
               "Content-Length: 5000\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 413, "request_too_large");
    cl_close(c);

    /* 413 on a chunked body that grows past the limit */
    c = cl_open(h->port);
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[700];
    memset(chunk, 'z', sizeof chunk);
    cl_puts(c, "2bc\r\n");
    cl_send(c, chunk, sizeof chunk);
    cl_puts(c, "\r\n2bc\r\n");
    cl_send(c, chunk, sizeof chunk);
    cl_puts(c, "\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 413, "request_too_large");
    cl_close(c);

    /* exactly at the limit is fine */
    c = cl_open(h->port);
    char body[1024];
    memset(body, 'b', sizeof body);
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n");
    cl_send(c, body, sizeof body);
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 1024);
    cl_close(c);

    /* 431: too many headers */
    c = cl_open(h->port);
    tg_buf req = TG_BUF_INIT;
    tg_buf_puts(&req, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 20; i++) tg_buf_printf(&req, "X-H%d: v\r\n", i);
    tg_buf_puts(&req, "\r\n");
    cl_send(c, req.data, req.len);
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 431, "request_header_fields_too_large");
    cl_close(c);

    /* 15 headers + Host = 16: allowed */
    c = cl_open(h->port);
    tg_buf_clear(&req);
    tg_buf_puts(&req, "GET /echo HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 15; i++) tg_buf_printf(&req, "X-H%d: v\r\n", i);
    tg_buf_puts(&req, "\r\n");
    cl_send(c, req.data, req.len);
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_header(&r, "x-seen-nheaders", v, sizeof v));
    assert_string_equal(v, "16");
    cl_close(c);

    /* 431: one huge header (sent in pieces, never completing the head) */
    c = cl_open(h->port);
    cl_puts(c, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    char big[6000];
    memset(big, 'a', sizeof big);
    cl_send(c, big, sizeof big);
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 431, "request_header_fields_too_large");
    cl_close(c);

    /* 400 on garbage */
    c = cl_open(h->port);
    cl_puts(c, "\x01\x02 garbage garbage\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 400, "bad_request");
    assert_true(cl_wait_closed(c));
    cl_close(c);

    /* 400: Content-Length together with chunked (request smuggling shape) */
    c = cl_open(h->port);
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 400, "bad_request");
    cl_close(c);

    /* handler never saw any of the refused requests */
    assert_int_equal(atomic_load(&h->n_requests), 2);
    tg_buf_free(&req);
    resp_free(&r);
    h_stop(h);
}

static void test_slow_client_timeouts(void **state) {
    harness *h = *state;
    tg_http_opts o = {.header_timeout_ms = 200, .body_timeout_ms = 200, .idle_timeout_ms = 300};
    h_start(h, &o);
    resp r = {0};
    /* a head that never completes: 408 then close */
    cl *c = cl_open(h->port);
    uint64_t t0 = uv_hrtime();
    cl_puts(c, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 408, "request_timeout");
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    assert_true(ms >= 150 && ms < 2000);
    assert_true(cl_wait_closed(c));
    cl_close(c);
    /* a body that stops arriving */
    c = cl_open(h->port);
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 408, "request_timeout");
    cl_close(c);
    /* a connection that says nothing is just closed */
    c = cl_open(h->port);
    t0 = uv_hrtime();
    assert_true(cl_wait_closed(c));
    ms = (double)(uv_hrtime() - t0) / 1e6;
    assert_true(ms >= 150 && ms < 2000);
    cl_close(c);
    /* idle keep-alive: closed after idle_timeout */
    c = cl_open(h->port);
    assert_int_equal(get(c, "/hello", &r), 0);
    t0 = uv_hrtime();
    assert_true(cl_wait_closed(c));
    ms = (double)(uv_hrtime() - t0) / 1e6;
    assert_true(ms >= 250 && ms < 2000);
    cl_close(c);
    resp_free(&r);
    h_stop(h);
}

static void test_request_ids(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    resp r = {0};
    char id[64], seen[64], client[160];
    cl_puts(c, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: my-id-1\r\n"
               "Authorization: Bearer sk-test-123\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_true(resp_header(&r, "x-request-id", id, sizeof id));
    assert_true(resp_header(&r, "x-seen-id", seen, sizeof seen));
    assert_true(resp_header(&r, "x-seen-client", client, sizeof client));
    assert_true(is_reqid(id));
    assert_string_equal(id, seen);        /* the handler sees the server's id */
    assert_string_equal(client, "my-id-1"); /* the client's only as client id */
    assert_true(resp_header(&r, "x-seen-bearer", seen, sizeof seen));
    assert_string_equal(seen, "sk-test-123");
    /* a client id shaped like a server id is still not used as the id */
    char forged[64];
    tg_reqid_new(forged);
    char req[256];
    snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: %s\r\n\r\n", forged);
    cl_puts(c, req);
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_true(resp_header(&r, "x-request-id", id, sizeof id));
    assert_string_not_equal(id, forged);
    /* an id with forbidden characters is dropped */
    cl_puts(c, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: a<script>\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_true(resp_header(&r, "x-seen-client", client, sizeof client));
    assert_string_equal(client, "-");
    assert_true(resp_header(&r, "x-seen-bearer", seen, sizeof seen));
    assert_string_equal(seen, "-");
    resp_free(&r);
    cl_close(c);
    h_stop(h);
}

static void test_access_log_has_no_secrets(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    char path[] = "/tmp/tg_http_log_XXXXXX";
    int lf = mkstemp(path);
    assert_true(lf >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(lf, STDERR_FILENO);
    cl *c = cl_open(h->port);
    resp r = {0};
    cl_puts(c, "POST /echo?api_key=QUERYSECRET HTTP/1.1\r\nHost: t\r\nX-Request-Id: cid-7\r\n"
               "Authorization: Bearer sk-SECRETKEY\r\nContent-Length: 13\r\n\r\nPROMPT-SECRET");
    assert_int_equal(cl_read_resp(c, &r), 0);
    char id[64];
    assert_true(resp_header(&r, "x-request-id", id, sizeof id));
    cl_close(c);
    /* the line may be written just after the response left: poll for it */
    tg_buf log = TG_BUF_INIT;
    for (int i = 0; i < 200; i++) {
        tg_buf_clear(&log);
        assert_int_equal(tg_buf_read_file(&log, path), 0);
        if (log.data && strstr(log.data, "http_access")) break;
        sleep_ms(10);
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    unlink(path);
    close(lf);
    assert_non_null(log.data);
    const char *line = strstr(log.data, "http_access");
    assert_non_null(line);
    assert_non_null(strstr(line, id));
    assert_non_null(strstr(line, "client_id=cid-7"));
    assert_non_null(strstr(line, "method=POST"));
    assert_non_null(strstr(line, "path=/echo "));
    assert_non_null(strstr(line, "status=200"));
    assert_non_null(strstr(line, "tokens_in=3 tokens_out=4"));
    assert_non_null(strstr(line, "bytes_in=13"));
    assert_null(strstr(log.data, "SECRETKEY"));
    assert_null(strstr(log.data, "PROMPT-SECRET"));
    assert_null(strstr(log.data, "QUERYSECRET"));
    tg_buf_free(&log);
    resp_free(&r);
    h_stop(h);
}

static void test_disconnect_fires_abort(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    cl_puts(c, "GET /stream?n=1000&ms=10 HTTP/1.1\r\nHost: t\r\n\r\n");
    /* wait for the head and a first chunk, then vanish */
    while (!memmem(c->buf, c->len, "data: ", 6)) assert_true(cl_fill(c) > 0);
    assert_int_equal(h_stat(h, q_inflight), 1);
    cl_close(c);
    WAIT_FOR(atomic_load(&h->n_aborts) == 1 && h_stat(h, q_inflight) == 0, 3000);
    assert_int_equal(atomic_load(&h->n_aborts), 1);
    assert_int_equal(atomic_load(&h->n_write_fail), 1); /* write after abort: -1 */
    assert_int_equal(h_stat(h, q_inflight), 0);
    assert_int_equal(atomic_load(&h->n_stream_done), 0);
    h_stop(h);
}

static void test_write_stall_aborts(void **state) {
    harness *h = *state;
    tg_http_opts o = {.write_timeout_ms = 300};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cl_puts(c, "GET /flood?ms=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    /* never read: the server's queue stops draining and it gives up */
    WAIT_FOR(atomic_load(&h->n_aborts) == 1, 5000);
    assert_int_equal(atomic_load(&h->n_aborts), 1);
    WAIT_FOR(h_stat(h, q_inflight) == 0, 2000);
    assert_int_equal(h_stat(h, q_inflight), 0);
    cl_close(c);
    h_stop(h);
}

static void test_max_connections(void **state) {
    harness *h = *state;
    tg_http_opts o = {.max_connections = 2};
    h_start(h, &o);
    resp r = {0};
    cl *a = cl_open(h->port), *b = cl_open(h->port);
    assert_int_equal(get(a, "/hello", &r), 0);
    assert_int_equal(get(b, "/hello", &r), 0);
    assert_int_equal(h_stat(h, q_active), 2);
    cl *x = cl_open(h->port);
    assert_int_equal(cl_read_resp(x, &r), 0); /* unsolicited 503 */
    assert_error_json(&r, 503, "too_many_connections");
    assert_true(cl_wait_closed(x));
    cl_close(x);
    cl_close(a);
    WAIT_FOR(h_stat(h, q_active) == 1, 2000);
    cl *d = cl_open(h->port);
    assert_int_equal(get(d, "/hello", &r), 0);
    assert_int_equal(r.status, 200);
    cl_close(d);
    cl_close(b);
    resp_free(&r);
    h_stop(h);
}

static void test_graceful_close(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    resp r = {0};
    cl *idle = cl_open(h->port);
    assert_int_equal(get(idle, "/hello", &r), 0);
    cl *s = cl_open(h->port);
    cl_puts(s, "GET /stream?n=20&ms=15 HTTP/1.1\r\nHost: t\r\n\r\n");
    while (!memmem(s->buf, s->len, "data: 20", 8)) assert_true(cl_fill(s) > 0);
    h_call(h, do_graceful, NULL);
    /* no new connections */
    int fd = tcp_connect(h->port);
    assert_true(fd < 0);
    /* the idle keep-alive connection is closed */
    assert_true(cl_wait_closed(idle));
    cl_close(idle);
    /* the in-flight stream finishes completely, then the connection closes */
    assert_int_equal(cl_read_resp(s, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "data: 1\n\n"));
    assert_int_equal(r.n_chunks, 20);
    assert_true(cl_wait_closed(s));
    cl_close(s);
    WAIT_FOR(atomic_load(&h->done_calls) == 1, 2000);
    assert_int_equal(atomic_load(&h->done_calls), 1);
    assert_int_equal(atomic_load(&h->n_stream_done), 1);
    assert_int_equal(atomic_load(&h->n_aborts), 0);
    resp_free(&r);
    h_stop(h);
}

/* ---------------------------------------------------------------- TLS -- */

static char g_tls_dir[64];

static bool make_cert(char *cert, char *key, size_t cap) {
    if (!g_tls_dir[0]) {
        strcpy(g_tls_dir, "/tmp/tg_http_tls_XXXXXX");
        if (!mkdtemp(g_tls_dir)) return false;
    }
    snprintf(cert, cap, "%s/cert.pem", g_tls_dir);
    snprintf(key, cap, "%s/key.pem", g_tls_dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 1 -subj /CN=localhost >/dev/null 2>&1",
             key, cert);
    return system(cmd) == 0;
}

static void test_tls_round_trip(void **state) {
    harness *h = *state;
    char cert[128], key[128];
    assert_true(make_cert(cert, key, sizeof cert));
    /* a bad key path is a clear start error */
    tg_http_opts bad = {.host = "127.0.0.1", .tls_cert_file = cert, .tls_key_file = "/nonexistent"};
    char err[256] = "";
    tg_http_server *bs = NULL;
    uv_loop_t l2;
    uv_loop_init(&l2);
    assert_int_equal(tg_http_server_start(&l2, &bad, handler, h, &bs, err, sizeof err), -1);
    assert_non_null(strstr(err, "TLS key"));
    assert_int_equal(uv_loop_close(&l2), 0);

    tg_http_opts o = {.tls_cert_file = cert, .tls_key_file = key};
    h_start(h, &o);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_load_verify_locations(ctx, cert, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    cl *c = cl_open(h->port);
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    assert_int_equal(SSL_connect(c->ssl), 1);
    resp r = {0};
    cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nover tls!");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "over tls!");
    /* keep-alive and a stream on the same TLS connection */
    assert_int_equal(get(c, "/stream?n=3&ms=5", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.n_chunks, 3);
    assert_string_equal(r.body.data, "data: 3\n\ndata: 2\n\ndata: 1\n\n");
    cl_close(c);
    /* plaintext HTTP to a TLS port is refused without crashing */
    cl *p = cl_open(h->port);
    cl_puts(p, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(cl_wait_closed(p));
    cl_close(p);
    SSL_CTX_free(ctx);
    resp_free(&r);
    h_stop(h);
    unlink(cert);
    unlink(key);
    rmdir(g_tls_dir);
}

/* ---------------------------------------------------- parser, no sockets -- */

typedef struct {
    int n;
    char paths[8][32];
} seen_reqs;

static void on_fuzz_req(const tg_http_request *req, void *arg) {
    seen_reqs *s = arg;
    if (s->n < 8) snprintf(s->paths[s->n], sizeof s->paths[0], "%s", req->path);
    s->n++;
}

static void test_feed_byte_by_byte(void **state) {
    static const char in[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                             "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                             "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n";
    for (size_t split = 0; split <= 7; split++) {
        seen_reqs s = {0};
        tg_buf out = TG_BUF_INIT;
        int n = tg_http_conn_feed_for_fuzz((const uint8_t *)in, sizeof in - 1, split, on_fuzz_req,
                                           &s, &out);
        assert_int_equal(n, 3);
        assert_string_equal(s.paths[0], "/a");
        assert_string_equal(s.paths[1], "/b");
        assert_string_equal(s.paths[2], "/c");
        /* three answers; the last body is "q" (streamed: odd length) */
        int k = 0;
        for (const char *p = out.data; (p = strstr(p, "HTTP/1.1 200 OK")); p++) k++;
        assert_int_equal(k, 3);
        tg_buf_free(&out);
    }
    /* garbage: no request reaches the handler, one 400 goes out */
    tg_buf out = TG_BUF_INIT;
    assert_int_equal(tg_http_conn_feed_for_fuzz((const uint8_t *)"\x00\xff\r\n\r\n", 6, 0, NULL,
                                                NULL, &out),
                     0);
    assert_non_null(strstr(out.data, "HTTP/1.1 400 "));
    tg_buf_free(&out);
}

/* Upgrade and CONNECT are answered like any request, then the connection
 * closes; the bytes after them are never parsed as HTTP. */
static void test_feed_upgrade_connect(void **state) {
    static const char up[] = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                             "Upgrade: websocket\r\n\r\n\x81\x05hello"
                             "GET /after HTTP/1.1\r\n\r\n";
    static const char conn[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /after HTTP/1.1\r\n\r\n";
    const char *cases[] = {up, conn};
    size_t lens[] = {sizeof up - 1, sizeof conn - 1};
    for (int i = 0; i < 2; i++) {
        for (size_t split = 0; split <= 3; split++) {
            seen_reqs s = {0};
            tg_buf out = TG_BUF_INIT;
            int n = tg_http_conn_feed_for_fuzz((const uint8_t *)cases[i], lens[i], split,
                                               on_fuzz_req, &s, &out);
            assert_int_equal(n, 1);
            assert_non_null(strstr(out.data, "connection: close\r\n"));
            tg_buf_free(&out);
        }
    }
}

static void test_ipv6(void **state) {
    harness *h = *state;
    tg_http_opts o = {.host = "::1"};
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have6 = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof a6) == 0;
    if (probe >= 0) close(probe);
    if (!have6) skip();
    h_start(h, &o);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    a6.sin6_port = htons((uint16_t)h->port);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a6, sizeof a6), 0);
    cl *c = calloc(1, sizeof *c);
    c->fd = fd;
    resp r = {0};
    assert_int_equal(get(c, "/echo", &r), 0);
    assert_int_equal(r.status, 200);
    char v[8];
    assert_true(resp_header(&r, "x-seen-loopback", v, sizeof v));
    assert_string_equal(v, "1");
    resp_free(&r);
    cl_close(c);
    /* a bad address is a clear error */
    tg_http_opts bad = {.host = "not-an-ip"};
    char err[256] = "";
    tg_http_server *bs = NULL;
    uv_loop_t l2;
    uv_loop_init(&l2);
    assert_int_equal(tg_http_server_start(&l2, &bad, handler, h, &bs, err, sizeof err), -1);
    assert_non_null(strstr(err, "not-an-ip"));
    /* a port in use too (the listener handle closes on the next loop run) */
    tg_http_opts busy = {.host = "::1", .port = h->port};
    assert_int_equal(tg_http_server_start(&l2, &busy, handler, h, &bs, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot listen"));
    uv_run(&l2, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&l2), 0);
    h_stop(h);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    tg_log_set_level(TG_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reqid),
        cmocka_unit_test(test_feed_byte_by_byte),
        cmocka_unit_test(test_feed_upgrade_connect),
        cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_and_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body_and_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_log_has_no_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_fires_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_stall_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
