/* http_tls: TLS for the listener with OpenSSL, never touching the socket.
 *
 * Each connection's SSL object sits between two memory BIOs: ciphertext
 * read by libuv is written into rbio, and whatever OpenSSL produces (the
 * handshake, records, alerts) is drained from wbio into ordinary libuv
 * writes. OpenSSL therefore never blocks and never sees a file descriptor;
 * the loop stays in charge of all I/O, timers and backpressure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/tg_file.h"
#include "common/tg_log.h"
#include "gateway/http/http_internal.h"

static void last_error(char *err, size_t errlen, const char *what, const char *file) {
    char e[256] = "unknown error";
    unsigned long code = ERR_get_error();
    if (code) ERR_error_string_n(code, e, sizeof e);
    snprintf(err, errlen, "%s %s: %s", what, file, e);
    ERR_clear_error();
}

SSL_CTX *tg_http_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen) {
    /* OpenSSL opens the files by name; a FIFO there would hang startup. */
    char why[512];
    if (tg_file_check_regular(cert, why, sizeof why) != 0) {
        snprintf(err, errlen, "cannot load TLS certificate: %s", why);
        return NULL;
    }
    if (tg_file_check_regular(key, why, sizeof why) != 0) {
        snprintf(err, errlen, "cannot load TLS key: %s", why);
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Renegotiation is a DoS lever and useless here. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        last_error(err, errlen, "cannot load TLS certificate", cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        last_error(err, errlen, "cannot load TLS key", key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        last_error(err, errlen, "TLS key does not match certificate", key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tg_http_tls_conn_init(tg_http_conn *c) {
    c->ssl = SSL_new(c->srv->tls);
    if (!c->ssl) return -1;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        return -1;
    }
    /* An empty rbio reports "retry" instead of EOF. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* ssl owns both now */
    SSL_set_accept_state(c->ssl);
    return 0;
}

/* Sends whatever OpenSSL queued in wbio. */
static int flush_wbio(tg_http_conn *c) {
    char buf[16384];
    for (;;) {
        int n = BIO_read(c->wbio, buf, sizeof buf);
        if (n <= 0) return 0;
        if (tg_http_conn_send_raw(c, buf, (size_t)n) != 0) return -1;
    }
}

int tg_http_tls_on_read(tg_http_conn *c, const char *data, size_t len) {
    while (len > 0) {
        int w = BIO_write(c->rbio, data, len > 65536 ? 65536 : (int)len);
        if (w <= 0) return -1;
        data += w;
        len -= (size_t)w;
    }
    if (!c->tls_ready) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            int fr = flush_wbio(c); /* an alert or the next flight */
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return fr;
            tg_log_debug("http_tls_handshake", "peer=%s error=%d", c->peer, e);
            ERR_clear_error();
            return -1;
        }
        c->tls_ready = true;
    }
    char buf[16384];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n > 0) {
            tg_buf_append(&c->in, buf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (flush_wbio(c) != 0) return -1;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        ERR_clear_error();
        return e == SSL_ERROR_ZERO_RETURN ? 1 : -1;
    }
}

int tg_http_tls_write(tg_http_conn *c, const char *data, size_t len) {
    if (!c->tls_ready) return -1;
    while (len > 0) {
        /* Writes into a memory BIO always complete. */
        int n = SSL_write(c->ssl, data, len > (1u << 30) ? (1 << 30) : (int)len);
        if (n <= 0) {
            ERR_clear_error();
            flush_wbio(c);
            tg_http_conn_close(c);
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return flush_wbio(c);
}

void tg_http_tls_shutdown(tg_http_conn *c) {
    if (!c->tls_ready) return;
    SSL_shutdown(c->ssl); /* queues close_notify; the peer's is not awaited */
    ERR_clear_error();
    flush_wbio(c);
}
