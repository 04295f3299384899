/* tg-test-links: tggateway */
/* HTTP server tests for listener variants: TLS (OpenSSL over memory BIOs,
 * a throwaway self-signed certificate made with the openssl CLI) and IPv6,
 * plus start-up errors. Harness: http_test_harness.h. */
#include "tests/support/http_test_harness.h"

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
    h_stop(h);
}

/* Start-up failures are clear errors and leave nothing open. */
static void test_start_errors(void **state) {
    harness *h = *state;
    tg_http_opts o = {0};
    h_start(h, &o);
    tg_http_opts bad = {.host = "not-an-ip"};
    char err[256] = "";
    tg_http_server *bs = NULL;
    uv_loop_t l2;
    uv_loop_init(&l2);
    assert_int_equal(tg_http_server_start(&l2, &bad, handler, h, &bs, err, sizeof err), -1);
    assert_non_null(strstr(err, "not-an-ip"));
    assert_null(bs);
    /* a port in use (the listener handle closes on the next loop run) */
    tg_http_opts busy = {.host = "127.0.0.1", .port = h->port};
    assert_int_equal(tg_http_server_start(&l2, &busy, handler, h, &bs, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot listen"));
    /* TLS needs both files */
    tg_http_opts half = {.tls_cert_file = "/nonexistent.pem"};
    assert_int_equal(tg_http_server_start(&l2, &half, handler, h, &bs, err, sizeof err), -1);
    assert_non_null(strstr(err, "both"));
    uv_run(&l2, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&l2), 0);
    h_stop(h);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    tg_log_set_level(TG_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
