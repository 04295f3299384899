/* tg-test-links: tggateway */
/* HTTP server tests over real sockets: requests, keep-alive, pipelining,
 * bodies, limits, timeouts, request ids, access log, aborts, backpressure,
 * connection limit, graceful close; and the parser glue without sockets.
 * The harness (loop thread + blocking client) is in http_test_harness.h. */
#include "tests/support/http_test_harness.h"

#include <strings.h>

#include "config/config.h"
#include "gateway/api/api_routes.h"
#include "gateway/metrics.h"

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
    assert_true(resp_header(&r, "date", v, sizeof v));
    assert_int_equal(strlen(v), 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    assert_string_equal(v + 26, "GMT");
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
    cl_puts(c,
            "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
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
    for (int i = 0; i < 20; i++)
        tg_buf_printf(&req, "X-H%d: v\r\n", i);
    tg_buf_puts(&req, "\r\n");
    cl_send(c, req.data, req.len);
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 431, "request_header_fields_too_large");
    cl_close(c);

    /* 15 headers + Host = 16: allowed */
    c = cl_open(h->port);
    tg_buf_clear(&req);
    tg_buf_puts(&req, "GET /echo HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 15; i++)
        tg_buf_printf(&req, "X-H%d: v\r\n", i);
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
    assert_string_equal(id, seen);          /* the handler sees the server's id */
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
    while (!memmem(c->buf, c->len, "data: ", 6))
        assert_true(cl_fill(c) > 0);
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
    char ra[16];
    assert_true(resp_header(&r, "retry-after", ra, sizeof ra));
    assert_string_equal(ra, "1");
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
    while (!memmem(s->buf, s->len, "data: 20", 8))
        assert_true(cl_fill(s) > 0);
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

/* A client pipelining far more than the input buffer holds: reading
 * pauses, nothing is lost, every answer comes back in order. */
static void test_pipeline_flood(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    cl *c = cl_open(h->port);
    char pad[1000];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    tg_buf req = TG_BUF_INIT;
    tg_buf_puts(&req, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    const int n = 400; /* ~400 KB, beyond the 256 KB input buffer */
    for (int i = 0; i < n; i++)
        tg_buf_printf(&req,
                      "POST /echo HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\nContent-Length: %d\r\n\r\n%d",
                      pad, snprintf(NULL, 0, "%d", i), i);
    cl_send(c, req.data, req.len);
    resp r = {0};
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_string_equal(r.body.data, "slow");
    for (int i = 0; i < n; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        assert_int_equal(cl_read_resp(c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body.data, want);
    }
    assert_int_equal(atomic_load(&h->n_requests), n + 1);
    tg_buf_free(&req);
    resp_free(&r);
    cl_close(c);
    h_stop(h);
}

static void do_abort_inflight(harness *h, void *arg) {
    tg_http_server_abort_inflight(h->srv);
}

/* The serve layer's shutdown deadline: in-flight exchanges are cut, their
 * on_abort runs, other connections stay. */
static void test_abort_inflight(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    resp r = {0};
    cl *idle = cl_open(h->port);
    assert_int_equal(get(idle, "/hello", &r), 0);
    cl *s = cl_open(h->port);
    cl_puts(s, "GET /stream?n=1000&ms=10 HTTP/1.1\r\nHost: t\r\n\r\n");
    while (!memmem(s->buf, s->len, "data: ", 6))
        assert_true(cl_fill(s) > 0);
    h_call(h, do_abort_inflight, NULL);
    assert_true(cl_wait_closed(s));
    WAIT_FOR(atomic_load(&h->n_aborts) == 1 && h_stat(h, q_inflight) == 0, 3000);
    assert_int_equal(atomic_load(&h->n_aborts), 1);
    assert_int_equal(h_stat(h, q_inflight), 0);
    assert_int_equal(get(idle, "/hello", &r), 0); /* untouched */
    assert_int_equal(r.status, 200);
    cl_close(s);
    cl_close(idle);
    resp_free(&r);
    h_stop(h);
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

/* ------------------------------------------------------------ metrics -- */

/* The server reports every finished exchange to on_response, including the
 * answers it makes by itself; the gateway's hook (tg_api_on_response)
 * counts them. Exact counter values after each kind of answer. */
typedef struct {
    tg_api *api;
    tg_buf out;
} render_q;

static void q_render(harness *h, void *arg) {
    render_q *q = arg;
    tg_buf_clear(&q->out);
    tg_metrics_render(q->api->metrics, &q->out);
}

/* The value of the series line starting with `series` ("name{...}"), or -1. */
static double metric_value(harness *h, tg_api *api, const char *series) {
    render_q q = {api, TG_BUF_INIT};
    h_call(h, q_render, &q);
    double v = -1;
    size_t n = strlen(series);
    for (const char *p = q.out.data; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ') v = strtod(p + n + 1, NULL);
    tg_buf_free(&q.out);
    return v;
}

#define REQS(route, status)                                                                        \
    "tidegate_http_requests_total{route=\"" route "\",status=\"" status "\"}"

static void test_metrics_count_every_response(void **state) {
    harness *h = *state;
    tg_api api = {0};
    api.metrics = tg_metrics_new();
    tg_metrics_std_init(&api.std, api.metrics);
    tg_http_opts o = {.max_body_bytes = 1024,
                      .max_headers = 8,
                      .max_connections = 2,
                      .on_response = tg_api_on_response,
                      .on_response_user = &api};
    h_start(h, &o);
    resp r = {0};

    /* Handled: the harness answers /hello; not an API route -> "other". */
    cl *a = cl_open(h->port), *b = cl_open(h->port);
    assert_int_equal(get(a, "/hello", &r), 0);
    assert_int_equal(get(b, "/hello", &r), 0);
    /* 503 over max_connections, made by the server alone */
    cl *x = cl_open(h->port);
    assert_int_equal(cl_read_resp(x, &r), 0);
    assert_error_json(&r, 503, "too_many_connections");
    cl_close(x);
    cl_close(a);
    cl_close(b);
    WAIT_FOR(h_stat(h, q_active) == 0, 2000);
    assert_int_equal(h_stat(h, q_active), 0);

    /* 413 from Content-Length (the body is never read) */
    cl *c = cl_open(h->port);
    cl_puts(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 413, "request_too_large");
    cl_close(c);
    WAIT_FOR(h_stat(h, q_active) == 0, 2000);

    /* 431: too many headers */
    c = cl_open(h->port);
    tg_buf req = TG_BUF_INIT;
    tg_buf_puts(&req, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 12; i++)
        tg_buf_printf(&req, "X-H%d: v\r\n", i);
    tg_buf_puts(&req, "\r\n");
    cl_send(c, req.data, req.len);
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_error_json(&r, 431, "request_header_fields_too_large");
    cl_close(c);
    tg_buf_free(&req);
    WAIT_FOR(h_stat(h, q_active) == 0, 2000);

    /* A stream that completes: 200. Every handled exchange reports 3 in / 4
     * out (the harness), and all of them count: 4 handled -> 12 / 16. */
    c = cl_open(h->port);
    cl_puts(c, "GET /stream?n=2&ms=5 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cl_read_resp(c, &r), 0);
    assert_int_equal(r.status, 200);
    cl_close(c);

    /* A stream whose client vanishes: 499, and the tokens reported so far
     * (the harness sets 3 in, 4 out) count although it never finished. */
    c = cl_open(h->port);
    cl_puts(c, "GET /stream?n=1000&ms=10 HTTP/1.1\r\nHost: t\r\n\r\n");
    while (!memmem(c->buf, c->len, "data: ", 6))
        assert_true(cl_fill(c) > 0);
    cl_close(c);
    WAIT_FOR(metric_value(h, &api, REQS("other", "499")) == 1, 3000);

    assert_true(metric_value(h, &api, REQS("other", "200")) == 3);
    assert_true(metric_value(h, &api, REQS("-", "503")) == 1);
    assert_true(metric_value(h, &api, REQS("-", "413")) == 1);
    assert_true(metric_value(h, &api, REQS("-", "431")) == 1);
    assert_true(metric_value(h, &api, REQS("other", "499")) == 1);
    /* nothing counted under the raw path of a refused request */
    assert_true(metric_value(h, &api, REQS("/v1/chat/completions", "413")) == -1);
    assert_true(metric_value(h, &api, "tidegate_request_duration_seconds_count{route=\"-\"}") == 3);
    assert_true(metric_value(h, &api, "tidegate_tokens_total{direction=\"in\"}") == 12);
    assert_true(metric_value(h, &api, "tidegate_tokens_total{direction=\"out\"}") == 16);
    assert_int_equal(atomic_load(&h->n_requests), 4); /* the handler saw 2 + 2 */
    resp_free(&r);
    h_stop(h);
    tg_metrics_free(api.metrics);
}

/* A response header by name in any case (the API writes its own names as
 * given: "Access-Control-Allow-Origin"). */
static bool hdr_ci(const resp *r, const char *name, char *out, size_t cap) {
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) != 0 || p[2 + n] != ':') continue;
        const char *v = p + 2 + n + 1 + (p[3 + n] == ' ');
        const char *e = strstr(v, "\r\n");
        size_t k = e ? (size_t)(e - v) : strlen(v);
        if (k >= cap) k = cap - 1;
        memcpy(out, v, k);
        out[k] = 0;
        return true;
    }
    return false;
}

/* The errors the server answers before the handler (a head-time 401 that
 * never reads the body, a 413 from Content-Length) carry the same CORS
 * headers as every other answer to an allowed Origin, so that a browser
 * can read them; other origins get none. */
static void test_cors_on_server_errors(void **state) {
    harness *h = *state;
    static const char yaml[] =
        "server:\n  cors_origins: \"https://app.example\"\n"
        "auth:\n  api_key_sha256:\n"
        "    - a4a6d307ad00fa67176e1099fdbc4f4a09bb527a7f24718a5030f2f173d11f7f\n";
    tg_config cfg;
    char err[256];
    tg_config_defaults(&cfg);
    assert_int_equal(tg_config_load_mem(yaml, sizeof yaml - 1, "t.yaml", &cfg, err, sizeof err), 0);
    assert_int_equal(tg_config_finalize(&cfg, err, sizeof err), 0);
    tg_api api = {0};
    api.cfg = &cfg;
    tg_http_opts o = {.max_body_bytes = 1024,
                      .on_head = tg_api_on_head,
                      .on_head_user = &api,
                      .error_headers = tg_api_error_headers};
    h_start(h, &o);
    resp r = {0};
    char v[128];
    static const char *const heads[] = {
        /* no key: 401 before the body (never sent) is read */
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
        "Content-Length: 100\r\n\r\n",
        /* a wrong key */
        "GET /v1/models HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
        "Authorization: Bearer sk-b\r\n\r\n",
        /* the right key, a body over the limit: 413 from Content-Length */
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
        "Authorization: Bearer sk-a\r\nContent-Length: 5000\r\n\r\n",
    };
    static const int want[] = {401, 401, 413};
    for (int i = 0; i < 3; i++) {
        cl *c = cl_open(h->port);
        cl_puts(c, heads[i]);
        assert_int_equal(cl_read_resp(c, &r), 0);
        assert_error_json(&r, want[i], want[i] == 401 ? "invalid_api_key" : "request_too_large");
        assert_true(hdr_ci(&r, "access-control-allow-origin", v, sizeof v));
        assert_string_equal(v, "https://app.example");
        assert_true(hdr_ci(&r, "vary", v, sizeof v));
        assert_string_equal(v, "Origin");
        assert_true(hdr_ci(&r, "access-control-expose-headers", v, sizeof v));
        assert_non_null(strstr(v, "x-request-id"));
        if (want[i] == 401) assert_true(hdr_ci(&r, "www-authenticate", v, sizeof v));
        cl_close(c);
    }
    /* An origin not in the list, and no Origin at all: the error, no CORS. */
    static const char *const others[] = {
        "GET /v1/models HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n",
        "GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    for (int i = 0; i < 2; i++) {
        cl *c = cl_open(h->port);
        cl_puts(c, others[i]);
        assert_int_equal(cl_read_resp(c, &r), 0);
        assert_error_json(&r, 401, "invalid_api_key");
        assert_false(hdr_ci(&r, "access-control-allow-origin", v, sizeof v));
        cl_close(c);
    }
    assert_int_equal(atomic_load(&h->n_requests), 0); /* none reached the handler */
    resp_free(&r);
    h_stop(h);
    tg_config_free(&cfg);
}

static void test_feed_byte_by_byte(void **state) {
    static const char in[] =
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
        "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n";
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
        for (const char *p = out.data; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
            k++;
        assert_int_equal(k, 3);
        tg_buf_free(&out);
    }
    /* garbage: no request reaches the handler, one 400 goes out */
    tg_buf out = TG_BUF_INIT;
    assert_int_equal(
        tg_http_conn_feed_for_fuzz((const uint8_t *)"\x00\xff\r\n\r\n", 6, 0, NULL, NULL, &out), 0);
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

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    tg_log_set_level(TG_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reqid),
        cmocka_unit_test(test_feed_byte_by_byte),
        cmocka_unit_test(test_feed_upgrade_connect),
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
        cmocka_unit_test_setup_teardown(test_pipeline_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_count_every_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cors_on_server_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
